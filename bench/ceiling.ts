/**
 * The transport ceiling: a NO-OP grpc-js server with Rill's ProduceService shape and codecs
 * (src/rpc/wire-codec.ts, the same server options and 16 MiB windows as the broker) that answers
 * every produce request at once, as the broker would (offsets per partition, and per record on
 * the `records` path), without validating or storing anything. producer-perf run against it
 * (`--broker`) pushes exactly the bytes it pushes to the broker, so a broker result divided by
 * the ceiling result is the share of what the transport allows on that runtime.
 *
 *   bun bench/ceiling.ts [--server-runtime bun|node|deno] [producer-perf options, e.g. --records 2000000 --mode batches]
 *     runs producer-perf against a no-op server started on the given runtime (default bun)
 *   bun bench/ceiling.ts --serve
 *     runs the no-op server itself on 127.0.0.1:0 and prints {"address": ..., "msg": "noop started"}
 *
 * The server also answers AdminService.CreateTopics (with nothing) so that producer-perf's setup
 * call succeeds.
 *
 * `--protocol kafka`: the no-op server is a raw TCP server speaking Kafka's protocol instead
 * (src/kafka's schema, as the listener decodes and encodes): it answers ApiVersions, Metadata
 * (every topic asked for exists, one partition led by itself) and Produce (each request decoded,
 * offsets from a per-partition counter), nothing validated or stored; producer-perf
 * `--protocol kafka` runs against it, so the Kafka listener's results divided by this one are the
 * share of what a Kafka-protocol transport allows. `bun bench/ceiling.ts --serve --protocol kafka`
 * runs that server alone.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as net from "node:net";
import * as path from "node:path";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { AdminService, CreateTopicsResponseSchema } from "../src/gen/rill/v1/admin_service_pb.ts";
import {
  ProduceResponseSchema,
  ProduceService,
  ProduceStreamResponseSchema,
  type ProduceRequest,
  type ProduceResponse,
  type ProduceStreamRequest,
} from "../src/gen/rill/v1/produce_service_pb.ts";
import { addService } from "../src/rpc/grpc-service.ts";
import { createServer } from "../src/rpc/server-options.ts";
import { produceServiceCodecs } from "../src/rpc/wire-codec.ts";
import { ApiVersionsResponse } from "../src/kafka/apis/api-versions.ts";
import { MetadataRequest, MetadataResponse } from "../src/kafka/apis/metadata.ts";
import { ProduceRequest as KafkaProduceRequest, ProduceResponse as KafkaProduceResponse } from "../src/kafka/apis/produce.ts";
import { decode as kafkaDecode, encode as kafkaEncode } from "../src/kafka/schema.ts";
import { KafkaReader, KafkaWriter } from "../src/kafka/wire.ts";
import { RECORD_COUNT_OFFSET } from "../src/protocol/record-batch.ts";
import { addOptions, choice, givenArgs, scriptCommand } from "../scripts/lib/command-line.ts";
import { isMain } from "./lib.ts";
import { producerPerfDefaults } from "./producer-perf.ts";

type Runtime = "bun" | "node" | "deno";
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");

/** The no-op answer: offsets from a per-partition counter, shaped as the broker's. */
function answer(req: ProduceRequest, next: Map<string, number>): ProduceResponse {
  const partition = req.partition ?? 0;
  const key = `${req.topic}\0${partition}`;
  const base = next.get(key) ?? 0;
  if (req.recordBatch.length > 0) {
    const count =
      req.recordBatch.length >= RECORD_COUNT_OFFSET + 4
        ? Buffer.from(req.recordBatch.buffer, req.recordBatch.byteOffset, req.recordBatch.length).readInt32BE(RECORD_COUNT_OFFSET)
        : 0;
    next.set(key, base + count);
    return create(ProduceResponseSchema, {
      topic: req.topic,
      partitions: [{ partition, baseOffset: BigInt(base), logAppendTimeMs: -1n, logStartOffset: 0n }],
    });
  }
  next.set(key, base + req.records.length);
  return create(ProduceResponseSchema, {
    topic: req.topic,
    partitions: [{ partition, baseOffset: BigInt(base), logAppendTimeMs: -1n }],
    records: req.records.map((_, i) => ({ partition, offset: BigInt(base + i) })),
  });
}

async function serve(): Promise<void> {
  const server = createServer();
  const next = new Map<string, number>();
  addService(
    server,
    ProduceService,
    {
      produce: (call: grpc.ServerUnaryCall<ProduceRequest, ProduceResponse>, cb: grpc.sendUnaryData<ProduceResponse>) =>
        cb(null, answer(call.request, next)),
      produceStream: (call: grpc.ServerDuplexStream<ProduceStreamRequest, unknown>) => {
        call.on("data", (m: ProduceStreamRequest) => {
          call.write(
            create(ProduceStreamResponseSchema, { requestId: m.requestId, result: { case: "response", value: answer(m.request!, next) } }),
          );
        });
        call.on("end", () => call.end());
        call.on("error", () => {});
      },
    } as never,
    produceServiceCodecs,
  );
  addService(server, AdminService, {
    createTopics: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, create(CreateTopicsResponseSchema, {})),
  } as never);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  process.stdout.write(JSON.stringify({ address: `127.0.0.1:${port}`, msg: "noop started" }) + "\n");
  const stop = (): void => {
    server.forceShutdown();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

/** Offsets from a per-partition counter for one Kafka Produce request's batches. */
function kafkaProduced(
  req: {
    readonly topicData: readonly {
      readonly name: string;
      readonly partitionData: readonly { readonly index: number; readonly records: unknown }[];
    }[];
  },
  next: Map<string, number>,
) {
  return {
    responses: req.topicData.map((t) => ({
      name: t.name,
      partitionResponses: t.partitionData.map((p) => {
        const key = `${t.name}\0${p.index}`;
        const base = next.get(key) ?? 0;
        const b = p.records as Buffer | null;
        next.set(key, base + (b && b.length >= RECORD_COUNT_OFFSET + 4 ? b.readInt32BE(RECORD_COUNT_OFFSET) : 0));
        return { index: p.index, errorCode: 0, baseOffset: BigInt(base), logStartOffset: 0n };
      }),
    })),
  };
}

/** The no-op Kafka-protocol server: one answer per request, in order, on each connection. */
async function serveKafka(): Promise<void> {
  const next = new Map<string, number>();
  let port = 0;
  const answer = (frame: Buffer): Buffer[] | null => {
    const r = new KafkaReader(frame);
    const key = r.int16();
    const version = r.int16();
    const correlationId = r.int32();
    r.string(false); // client id
    const m = key === 0 ? KafkaProduceRequest : key === 3 ? MetadataRequest : null;
    if (m && version >= m.flexibleFrom) {
      for (let n = r.uvarint(); n > 0; n--) {
        r.uvarint(); // tag
        r.skip(r.uvarint());
      }
    }
    const w = new KafkaWriter();
    w.int32(0).int32(correlationId);
    if (key === 18) {
      // ApiVersions: header v0; v0-v2 answer with a non-flexible body, v3 flexible.
      kafkaEncode(
        ApiVersionsResponse,
        {
          errorCode: 0,
          apiKeys: [
            { apiKey: 0, minVersion: 3, maxVersion: 11 },
            { apiKey: 3, minVersion: 1, maxVersion: 12 },
            { apiKey: 18, minVersion: 0, maxVersion: 3 },
          ],
        },
        Math.min(version, 3),
        w,
      );
    } else if (key === 3) {
      const req = kafkaDecode(MetadataRequest, r, version);
      if (version >= MetadataResponse.flexibleFrom) w.uvarint(0);
      kafkaEncode(
        MetadataResponse,
        {
          brokers: [{ nodeId: 1, host: "127.0.0.1", port }],
          clusterId: "noop",
          controllerId: 1,
          topics: (req.topics ?? []).map((t) => ({
            errorCode: 0,
            name: t.name,
            partitions: [{ errorCode: 0, partitionIndex: 0, leaderId: 1, leaderEpoch: 0, replicaNodes: [1], isrNodes: [1] }],
          })),
        },
        version,
        w,
      );
    } else if (key === 0) {
      const req = kafkaDecode(KafkaProduceRequest, r, version);
      if (req.acks === 0) return null;
      if (version >= KafkaProduceResponse.flexibleFrom) w.uvarint(0);
      kafkaEncode(KafkaProduceResponse, kafkaProduced(req, next), version, w);
    } else {
      throw new Error(`the no-op Kafka server answers ApiVersions, Metadata and Produce only, not API key ${key}`);
    }
    const total = w.length;
    const chunks = w.finish();
    (chunks[0] as Buffer).writeInt32BE(total - 4, 0);
    return chunks;
  };
  const server = net.createServer((sock) => {
    sock.setNoDelay(true);
    let pending: Buffer[] = [];
    let bytes = 0;
    sock.on("error", () => {});
    sock.on("data", (d: Buffer) => {
      pending.push(d);
      bytes += d.length;
      sock.cork();
      while (bytes >= 4) {
        if (pending.length > 1) pending = [Buffer.concat(pending)];
        const buf = pending[0] as Buffer;
        const size = buf.readInt32BE(0);
        if (buf.length < 4 + size) break;
        const rest = buf.subarray(4 + size);
        pending = rest.length > 0 ? [rest] : [];
        bytes = rest.length;
        for (const c of answer(buf.subarray(4, 4 + size)) ?? []) sock.write(c);
      }
      process.nextTick(() => sock.uncork());
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  port = (server.address() as net.AddressInfo).port;
  process.stdout.write(JSON.stringify({ address: `127.0.0.1:${port}`, msg: "noop started" }) + "\n");
  const stop = (): void => process.exit(0);
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

/** The command line that runs a bench/*.ts file under `runtime`. */
export function tsCommand(runtime: Runtime, file: string): string[] {
  return runtime === "bun"
    ? [path.join(root, "node_modules/.bin/bun"), file]
    : runtime === "deno"
      ? [path.join(root, "node_modules/.bin/deno"), "run", "-A", file]
      : ["node", "--import", "tsx", file];
}

/** Starts the no-op server on `runtime`; resolves with its address and a stop function. */
export async function startNoopServer(
  runtime: Runtime,
  protocol: "grpc" | "kafka" = "grpc",
): Promise<{ address: string; proc: ChildProcess; stop: () => Promise<void> }> {
  const cmd = tsCommand(runtime, "bench/ceiling.ts");
  const proc = spawn(cmd[0]!, [...cmd.slice(1), "--serve", "--protocol", protocol], { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
  let exited = false;
  proc.once("exit", () => (exited = true));
  try {
    const address = await new Promise<string>((resolve, reject) => {
      let buf = "";
      proc.stdout!.on("data", (d: Buffer) => {
        buf += d.toString();
        const m = /"address":"([^"]+)"/.exec(buf);
        if (m) resolve(m[1]!);
      });
      proc.once("exit", (code) => reject(new Error(`no-op server exited with ${code}`)));
      setTimeout(() => reject(new Error("no-op server did not start within 30 s")), 30_000).unref();
    });
    const stop = async (): Promise<void> => {
      if (exited) return;
      proc.kill("SIGTERM");
      await new Promise((r) => proc.once("exit", r));
    };
    return { address, proc, stop };
  } catch (e) {
    if (!exited) proc.kill("SIGKILL");
    throw e;
  }
}

async function main(): Promise<void> {
  // producer-perf's options (but the broker, which is the no-op server), passed on as given.
  const { broker: _broker, brokers: _brokers, ...forwarded } = producerPerfDefaults;
  const command = scriptCommand(import.meta.url)
    .option("--serve", "run the no-op server itself")
    .option("--server-runtime <runtime>", "runtime of the no-op server", choice(["bun", "node", "deno"] as const), "bun");
  addOptions(command, forwarded).parse(process.argv.slice(2), { from: "user" });
  const o = command.opts<{ serve?: boolean; serverRuntime: Runtime; protocol: "grpc" | "kafka" }>();
  if (o.serve) return o.protocol === "kafka" ? serveKafka() : serve();
  const rest = givenArgs(command, Object.keys(forwarded));
  const server = await startNoopServer(o.serverRuntime, o.protocol);
  try {
    const cmd = tsCommand("bun", "bench/producer-perf.ts");
    // Kafka: --brokers (topic and leader from the no-op server's Metadata); gRPC: --broker.
    const target = o.protocol === "kafka" ? ["--brokers", server.address] : ["--broker", server.address];
    const child = spawn(cmd[0]!, [...cmd.slice(1), ...rest, ...target], { cwd: root, stdio: "inherit" });
    const code = await new Promise<number | null>((r) => child.once("exit", r));
    if (code !== 0) throw new Error(`producer-perf exited with ${code}`);
  } finally {
    await server.stop();
  }
}

if (isMain(import.meta.url, "ceiling.ts")) await main();
