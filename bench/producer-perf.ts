/**
 * Producer throughput, like kafka-producer-perf-test: records/s, MiB/s, and latency percentiles
 * of each produce request (from send to acknowledgement), against a broker it starts on
 * 127.0.0.1 with a fresh data dir (or `--broker HOST:PORT`).
 *
 *   bun bench/producer-perf.ts --records 5000000 --record-size 100 [--batch-records 1000]
 *     [--compression none|lz4] [--acks leader|all|none] [--in-flight 8] [--partitions 1]
 *     [--mode batches|records] [--broker-runtime bun|node|deno] [--broker HOST:PORT] [--json FILE]
 *
 * `batches` sends Kafka RecordBatch bytes over ProduceStream (what the TypeScript SDK does);
 * `records` sends plain records (what a thin generated client does). Batches are encoded per
 * request from fresh values, so client-side encoding is part of the measured cost.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as nodeFs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import * as hdr from "hdr-histogram-js";
import { AdminService, CreateTopicsRequestSchema } from "../src/gen/rill/v1/admin_service_pb.ts";
import { Acks, ProduceService, type ProduceStreamResponse } from "../src/gen/rill/v1/produce_service_pb.ts";
import { RecordSchema } from "../src/gen/rill/v1/common_pb.ts";
import { clientConstructor } from "../src/rpc/grpc-service.ts";
import { clientChannelOptions } from "../src/rpc/server-options.ts";
import { produceServiceCodecs } from "../src/rpc/wire-codec.ts";
import { Compression, encodeBatch } from "../src/storage/record-batch.ts";
import { runtimeName } from "./runtime.ts";

interface Options {
  records: number;
  recordSize: number;
  batchRecords: number;
  compression: "none" | "lz4";
  acks: "leader" | "all" | "none";
  inFlight: number;
  partitions: number;
  mode: "batches" | "records";
  brokerRuntime: "bun" | "node" | "deno";
  broker: string | null;
  json: string | null;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { records: 2_000_000, recordSize: 100, batchRecords: 1000, compression: "none", acks: "leader", inFlight: 8, partitions: 1, mode: "batches", brokerRuntime: "bun", broker: null, json: null };
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i]!.replace(/^--/, "").replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()) as keyof Options;
    const v = argv[i + 1];
    if (!(k in o) || v === undefined) throw new Error(`unknown or incomplete option ${argv[i]}`);
    (o as unknown as Record<string, unknown>)[k] = typeof o[k] === "number" ? Number(v) : v;
  }
  return o;
}

/** Starts `rill broker start` on a free port and a fresh data dir; resolves with its address. */
export async function startBrokerProcess(runtime: "bun" | "node" | "deno", extraArgs: string[] = []): Promise<{ address: string; proc: ChildProcess; dataDir: string; stop: () => Promise<void> }> {
  const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
  const dataDir = nodeFs.mkdtempSync(path.join(os.tmpdir(), "rill-bench-"));
  const cmd =
    runtime === "bun"
      ? [path.join(root, "node_modules/.bin/bun"), "src/cli/main.ts"]
      : runtime === "deno"
        ? [path.join(root, "node_modules/.bin/deno"), "run", "-A", "src/cli/main.ts"]
        : ["node", process.env["RILL_BENCH_NODE_MAIN"] ?? "dist/src/cli/main.js"];
  const proc = spawn(cmd[0]!, [...cmd.slice(1), "broker", "start", "--data-dir", dataDir, "--listen", "127.0.0.1:0", ...extraArgs], { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
  const address = await new Promise<string>((resolve, reject) => {
    let buf = "";
    proc.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      const m = /"address":"([^"]+)"[^\n]*"broker started"|"broker started"[^\n]*"address":"([^"]+)"/.exec(buf);
      if (m) resolve((m[1] ?? m[2])!);
    });
    proc.on("exit", (code) => reject(new Error(`broker exited with ${code}`)));
  });
  const stop = async (): Promise<void> => {
    proc.kill("SIGTERM");
    await new Promise((r) => proc.once("exit", r));
    nodeFs.rmSync(dataDir, { recursive: true, force: true });
  };
  return { address, proc, dataDir, stop };
}

function acksOf(a: Options["acks"]): Acks {
  return a === "all" ? Acks.ALL : a === "none" ? Acks.NONE : Acks.LEADER;
}

/** A value of `size` bytes that changes per record (so LZ4 sees realistic, not constant, data). */
function makeValues(n: number, size: number): string[] {
  const words = ["click", "view", "purchase", "scroll", "signup", "search"];
  return Array.from({ length: n }, (_, i) => `{"user":${(i * 7919) % 100000},"event":"${words[i % words.length]}","seq":${i}}`.padEnd(size, ".").slice(0, size));
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const broker = o.broker ? null : await startBrokerProcess(o.brokerRuntime);
  const address = o.broker ?? broker!.address;
  const creds = grpc.credentials.createInsecure();
  const admin = new (clientConstructor(AdminService))(address, creds, clientChannelOptions());
  const topic = `perf-${Date.now()}`;
  await new Promise<void>((resolve, reject) =>
    admin.createTopics(create(CreateTopicsRequestSchema, { topics: [{ name: topic, partitions: o.partitions }] }), (e) => (e ? reject(e) : resolve())),
  );
  admin.close();

  const Producer = clientConstructor(ProduceService, produceServiceCodecs);
  const client = new Producer(address, creds, clientChannelOptions());
  const stream = client.produceStream();
  const values = makeValues(o.batchRecords, o.recordSize);
  const codec = o.compression === "lz4" ? Compression.LZ4 : Compression.NONE;
  const hist = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  const requests = Math.ceil(o.records / o.batchRecords);
  const sentAt = new Map<bigint, number>();
  let sent = 0;
  let acked = 0;
  let bytesSent = 0;
  let errors = 0;
  const start = performance.now();
  let lastReport = start;

  await new Promise<void>((resolve, reject) => {
    const pump = (): void => {
      while (sent < requests && sent - acked < o.inFlight) {
        const id = BigInt(sent);
        const partition = sent % o.partitions;
        const now = Date.now();
        if (o.mode === "batches") {
          const batch = encodeBatch(
            values.map((v) => ({ key: null, value: v, timestampMs: now })),
            { compression: codec, nowMs: now },
          );
          bytesSent += batch.length;
          sentAt.set(id, performance.now());
          stream.write({ requestId: id, request: { topic, partition, recordBatch: batch, acks: acksOf(o.acks) } });
        } else {
          const records = values.map((v) => create(RecordSchema, { value: Buffer.from(v), timestampMs: BigInt(now) }));
          bytesSent += o.batchRecords * o.recordSize;
          sentAt.set(id, performance.now());
          stream.write({ requestId: id, request: { topic, partition, records, acks: acksOf(o.acks) } } as never);
        }
        sent++;
      }
    };
    stream.on("data", (m: ProduceStreamResponse) => {
      const t0 = sentAt.get(m.requestId)!;
      sentAt.delete(m.requestId);
      hist.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
      if (m.result.case !== "response" || m.result.value.partitions.some((p) => p.error)) errors++;
      acked++;
      const now = performance.now();
      if (now - lastReport > 2000) {
        lastReport = now;
        process.stderr.write(`  ${((acked * o.batchRecords) / ((now - start) / 1000) / 1e6).toFixed(2)}M records/s, ${acked}/${requests} requests\n`);
      }
      if (acked === requests) {
        stream.end();
        resolve();
      } else pump();
    });
    stream.on("error", reject);
    pump();
  });
  const secs = (performance.now() - start) / 1000;
  client.close();
  const total = requests * o.batchRecords;
  const result = {
    runtime: runtimeName(),
    ...o,
    brokerRuntime: o.broker ? "external" : o.brokerRuntime,
    records: total,
    seconds: secs,
    recordsPerSec: total / secs,
    payloadMiBPerSec: (total * o.recordSize) / secs / (1 << 20),
    wireMiBPerSec: bytesSent / secs / (1 << 20),
    errors,
    latencyMs: {
      avg: hist.mean / 1000,
      p50: hist.getValueAtPercentile(50) / 1000,
      p95: hist.getValueAtPercentile(95) / 1000,
      p99: hist.getValueAtPercentile(99) / 1000,
      p999: hist.getValueAtPercentile(99.9) / 1000,
    },
  };
  console.log(
    `${total} records in ${secs.toFixed(2)} s: ${(result.recordsPerSec / 1e6).toFixed(2)}M records/s, ${result.payloadMiBPerSec.toFixed(1)} MiB/s payload (${result.wireMiBPerSec.toFixed(1)} MiB/s on the wire), ` +
      `request latency avg ${result.latencyMs.avg.toFixed(2)} ms, p50 ${result.latencyMs.p50.toFixed(2)}, p95 ${result.latencyMs.p95.toFixed(2)}, p99 ${result.latencyMs.p99.toFixed(2)}, p99.9 ${result.latencyMs.p999.toFixed(2)} ms; errors ${errors}`,
  );
  if (o.json) nodeFs.writeFileSync(o.json, JSON.stringify(result, null, 2) + "\n");
  await broker?.stop();
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith("producer-perf.ts")) await main();
