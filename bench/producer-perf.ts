/**
 * Producer throughput, like kafka-producer-perf-test: records/s, MiB/s, and latency percentiles
 * of each produce request (from send to acknowledgement), against a broker it starts on
 * 127.0.0.1 with a fresh data dir, or against running brokers (`--brokers`: then none is started).
 *
 *   bun bench/producer-perf.ts [--records 2000000] [--warmup-records 0] [--record-size 100] [--throughput -1]
 *     [--acks leader|all|none] [--compression none|lz4] [--partitions 1] [--replication-factor N] [--producers 1]
 *     [--brokers HOST:PORT,...] [--batch-records 1000] [--in-flight 8] [--mode batches|records]
 *     [--broker-runtime bun|node|deno] [--protocol grpc|kafka] [--topic-configs KEY=VALUE,...] [--json FILE]
 *
 * `--producers N` opens N producer connections (each its own HTTP/2 connection and
 * ProduceStream, `--in-flight` requests pipelined on each) that share the `--records` budget:
 * each takes the next request while any is left. With one broker, request n goes to partition
 * n mod `--partitions`. With several `--brokers`, the partitions' leaders are looked up once
 * (DescribeTopics, DescribeCluster) and producer i talks to leader i mod (number of leaders),
 * sending only to the partitions it leads, as a Kafka client routes. One histogram holds every
 * request's latency. `--throughput R` caps the total at R records/s (-1: as fast as possible).
 * `--broker HOST:PORT` is the one-broker spelling of `--brokers`.
 * `--warmup-records N`: the same producers first send N records to the same topic, untimed (as
 * Kafka's producer-perf-test's option of that name), so the measured run starts on a warm broker.
 * `--tls-ca FILE [--tls-server-name localhost]`: connect with TLS, verifying the brokers against
 * the CA bundle (with `--brokers` started with `--tls-cert/--tls-key`).
 *
 * `--protocol kafka` sends the same batches over Kafka's Produce to the Kafka listener instead,
 * with Rill's own Kafka-protocol producer (kafka-producer.ts): one socket per producer,
 * `--in-flight` requests pipelined on it, `--acks` as Kafka's 1, -1, 0 (0: no answers, so no
 * latency). It starts its broker with a Kafka listener; `--brokers` then names Kafka listeners
 * and the topic is created by Metadata's auto-creation (the brokers' `num.partitions`), each
 * producer sending to the partitions led by the broker it talks to. `--mode batches` only.
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
import * as hdr from "hdr-histogram-js";
import {
  AdminService,
  DescribeClusterRequestSchema,
  DescribeTopicsRequestSchema,
  type DescribeClusterResponse,
  type DescribeTopicsResponse,
} from "../src/gen/rill/v1/admin_service_pb.ts";
import { RecordSchema } from "../src/gen/rill/v1/common_pb.ts";
import { Acks, ProduceService, type ProduceStreamResponse } from "../src/gen/rill/v1/produce_service_pb.ts";
import { clientConstructor } from "../src/protocol/grpc-service.ts";
import { produceClientCodecs } from "../src/client/wire-codec.ts";
import { Compression, encodeBatch } from "../src/protocol/record-batch.ts";
import {
  channelOptions,
  createTopic,
  creds,
  freePort,
  isMain,
  loadAverage,
  makeValues,
  MiB,
  parseArgs,
  percentilesMs,
  useClientTls,
} from "./lib.ts";
import { startProgress } from "./progress.ts";
import { runtimeName } from "./runtime.ts";
import { KafkaProducerSocket } from "./kafka-producer.ts";

export const producerPerfDefaults = {
  records: 2_000_000,
  /**
   * Records sent first, untimed, by the same producers to the same topic (Kafka's
   * ProducerPerformance --warmup-records, KIP-1052): the broker's first appends to each partition,
   * its compilers' warm-up and the connections are then not in the measured run.
   */
  warmupRecords: 0,
  recordSize: 100,
  /** Target records/s over all producers; -1: as fast as possible. */
  throughput: -1,
  acks: "leader" as "leader" | "all" | "none",
  compression: "none" as "none" | "lz4",
  partitions: 1,
  /** Replication factor of the topic it creates; 0: the broker's default. */
  replicationFactor: 0,
  producers: 1,
  /** Comma-separated HOST:PORT of running brokers; empty: start one. */
  brokers: "",
  /** The one-broker spelling of `brokers`. */
  broker: "",
  batchRecords: 1000,
  /** Requests in flight per producer. */
  inFlight: 8,
  mode: "batches" as "batches" | "records",
  brokerRuntime: "bun" as "bun" | "node" | "deno",
  /** PEM CA bundle: connect with TLS, verifying the brokers against it; empty: plaintext. */
  tlsCa: "",
  /** With `tlsCa`: the name the brokers' certificates carry. */
  tlsServerName: "localhost",
  /** grpc: ProduceStream; kafka: Kafka's Produce on the Kafka listener. */
  protocol: "grpc" as "grpc" | "kafka",
  /** Configs of the topic it creates, KEY=VALUE,... (e.g. flush.ms=9007199254740991). */
  topicConfigs: "",
  json: "",
};
export type ProducerPerfOptions = typeof producerPerfDefaults;

/** Checks option values, naming the option; returns the broker addresses given (maybe none). */
export function checkProducerPerfOptions(o: ProducerPerfOptions): string[] {
  const positive = (k: keyof ProducerPerfOptions): void => {
    const v = o[k] as number;
    if (!Number.isSafeInteger(v) || v < 1) throw new Error(`--${kebab(k)}: expected a positive integer, got ${String(o[k])}`);
  };
  (["records", "recordSize", "partitions", "producers", "batchRecords", "inFlight"] as const).forEach(positive);
  if (!Number.isSafeInteger(o.warmupRecords) || o.warmupRecords < 0)
    throw new Error(`--warmup-records: expected an integer >= 0, got ${String(o.warmupRecords)}`);
  if (!Number.isSafeInteger(o.replicationFactor) || o.replicationFactor < 0)
    throw new Error(`--replication-factor: expected an integer >= 0, got ${o.replicationFactor}`);
  if (!(o.throughput === -1 || (Number.isFinite(o.throughput) && o.throughput > 0)))
    throw new Error(`--throughput: expected records/s > 0 or -1 (no limit), got ${o.throughput}`);
  const choice = (k: keyof ProducerPerfOptions, values: readonly string[]): void => {
    if (!values.includes(String(o[k]))) throw new Error(`--${kebab(k)}: expected one of ${values.join(", ")}, got ${String(o[k])}`);
  };
  choice("acks", ["leader", "all", "none"]);
  choice("compression", ["none", "lz4"]);
  choice("mode", ["batches", "records"]);
  choice("brokerRuntime", ["bun", "node", "deno"]);
  choice("protocol", ["grpc", "kafka"]);
  if (o.protocol === "kafka" && o.mode !== "batches") throw new Error("--protocol kafka: sends batches only (--mode batches)");
  if (o.protocol === "kafka" && o.tlsCa !== "") throw new Error("--protocol kafka: the Kafka producer has no TLS");
  topicConfigsOf(o.topicConfigs);
  const brokers = [o.brokers, o.broker]
    .flatMap((s) => s.split(","))
    .map((s) => s.trim())
    .filter((s) => s !== "");
  for (const b of brokers)
    if (!/^[^\s:]+:\d+$/.test(b) && !/^\[[^\]]+\]:\d+$/.test(b))
      throw new Error(`--brokers: expected HOST:PORT[,HOST:PORT...], got "${b}"`);
  return brokers;
}

/** `--topic-configs KEY=VALUE,...` as an object. */
export function topicConfigsOf(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of s.split(",").filter((x) => x.trim() !== "")) {
    const i = kv.indexOf("=");
    if (i <= 0) throw new Error(`--topic-configs: expected KEY=VALUE[,KEY=VALUE...], got "${kv}"`);
    out[kv.slice(0, i).trim()] = kv.slice(i + 1).trim();
  }
  return out;
}

function kebab(k: string): string {
  return k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** The command line that runs `src/cli/main.ts` (the `rill` command) under `runtime`. */
export function rillCommand(runtime: "bun" | "node" | "deno"): string[] {
  return runtime === "bun"
    ? [path.join(root, "node_modules/.bin/bun"), "src/cli/main.ts"]
    : runtime === "deno"
      ? [path.join(root, "node_modules/.bin/deno"), "run", "-A", "src/cli/main.ts"]
      : ["node", process.env["RILL_BENCH_NODE_MAIN"] ?? "dist/src/cli/main.js"];
}

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");

/**
 * Starts `rill broker start` on a fresh data dir, listening on `listen` (default a free port of
 * 127.0.0.1) with `args` added; resolves with its address once it logs "broker started" (within
 * `startTimeoutMs`). `stop()` ends it by PID and removes the data dir.
 */
export async function startBrokerProcess(
  runtime: "bun" | "node" | "deno",
  opts: { listen?: string; args?: readonly string[]; startTimeoutMs?: number; env?: Readonly<Record<string, string>> } = {},
): Promise<{ address: string; proc: ChildProcess; dataDir: string; stop: () => Promise<void> }> {
  const dataDir = nodeFs.mkdtempSync(path.join(os.tmpdir(), "rill-bench-"));
  const cmd = rillCommand(runtime);
  const proc = spawn(
    cmd[0]!,
    [...cmd.slice(1), "broker", "start", "--data-dir", dataDir, "--listen", opts.listen ?? "127.0.0.1:0", ...(opts.args ?? [])],
    { cwd: root, stdio: ["ignore", "pipe", "pipe"], ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}) },
  );
  let exited = false;
  let stderrTail = "";
  proc.once("exit", () => (exited = true));
  proc.stderr!.on("data", (d: Buffer) => {
    process.stderr.write(d);
    stderrTail = (stderrTail + d.toString()).slice(-2000);
  });
  const stop = async (): Promise<void> => {
    if (!exited) {
      proc.kill("SIGTERM");
      await new Promise((r) => proc.once("exit", r));
    }
    nodeFs.rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    const address = await new Promise<string>((resolve, reject) => {
      let buf = "";
      const onData = (d: Buffer): void => {
        buf += d.toString();
        const m = /"address":"([^"]+)"[^\n]*"broker started"|"broker started"[^\n]*"address":"([^"]+)"/.exec(buf);
        if (m) {
          proc.stdout!.off("data", onData);
          proc.stdout!.resume(); // keep draining the broker's log, without keeping it
          resolve((m[1] ?? m[2])!);
        } else if (buf.length > 1 << 20) buf = buf.slice(-4096);
      };
      proc.stdout!.on("data", onData);
      proc.once("exit", (code) =>
        reject(new Error(`broker exited with ${code}${stderrTail ? `: ${stderrTail.trim().split("\n").pop()}` : ""}`)),
      );
      setTimeout(
        () => reject(new Error(`broker did not start within ${(opts.startTimeoutMs ?? 30_000) / 1000} s`)),
        opts.startTimeoutMs ?? 30_000,
      ).unref();
    });
    return { address, proc, dataDir, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

function acksOf(a: ProducerPerfOptions["acks"]): Acks {
  return a === "all" ? Acks.ALL : a === "none" ? Acks.NONE : Acks.LEADER;
}

/** What the producers share: the request budget, the clock, the histogram and the counters. */
interface Shared {
  readonly o: ProducerPerfOptions;
  readonly topic: string;
  readonly requests: number;
  readonly values: string[];
  readonly hist: ReturnType<typeof hdr.build>;
  readonly start: number;
  sent: number;
  acked: number;
  bytesSent: number;
  errors: number;
  /** The first error answered, as "NAME: message". */
  firstError: string;
}

/** The batch of one request, encoded now from fresh values (what every path sends). */
function requestBatch(s: Shared): Buffer {
  const now = Date.now();
  const batch = encodeBatch(
    s.values.map((v) => ({ key: null, value: v, timestampMs: now })),
    { compression: s.o.compression === "lz4" ? Compression.LZ4 : Compression.NONE, nowMs: now },
  );
  s.bytesSent += batch.length;
  return batch;
}

/** Kafka's acks of `--acks`. */
function kafkaAcks(a: ProducerPerfOptions["acks"]): number {
  return a === "all" ? -1 : a === "none" ? 0 : 1;
}

/**
 * One producer over Kafka's protocol (kafka-producer.ts), paced and pipelined as `runProducer`:
 * up to `inFlight` requests on one socket, request n to partition n mod partitions (or the next
 * of `partitions`). Resolves with the number of requests it sent.
 */
async function runKafkaProducer(s: Shared, address: string, _index: number, partitions: readonly number[] | null): Promise<number> {
  const [host, port] = [address.slice(0, address.lastIndexOf(":")), Number(address.slice(address.lastIndexOf(":") + 1))];
  const k = await KafkaProducerSocket.connect(host.replace(/^\[|\]$/g, ""), port);
  const perProducerRate = s.o.throughput > 0 ? s.o.throughput / s.o.producers : 0;
  const acks = kafkaAcks(s.o.acks);
  let mine = 0;
  let inFlight = 0;
  let timer: ReturnType<typeof setTimeout> | null = null;
  try {
    await new Promise<void>((resolve, reject) => {
      const pump = (): void => {
        timer = null;
        while (s.sent < s.requests && inFlight < s.o.inFlight) {
          if (perProducerRate > 0) {
            const wait = s.start + ((mine * s.o.batchRecords) / perProducerRate) * 1000 - performance.now();
            if (wait > 0) {
              timer ??= setTimeout(pump, Math.max(1, wait));
              return;
            }
          }
          const n = s.sent++;
          const partition = partitions ? partitions[mine % partitions.length]! : n % s.o.partitions;
          const t0 = performance.now();
          inFlight++;
          mine++;
          const sent = k.produce(s.topic, partition, requestBatch(s), acks);
          const done = acks === 0 ? sent.then(() => k.drained()) : sent;
          done.then(
            (r) => {
              inFlight--;
              if (acks !== 0) s.hist.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
              if (r && r.errorCode !== 0) {
                s.errors++;
                s.firstError ||= `Kafka error ${r.errorCode}: ${r.errorMessage ?? ""}`;
              }
              s.acked++;
              pump();
            },
            (e: unknown) => reject(e instanceof Error ? e : new Error(String(e))),
          );
        }
        if (inFlight === 0 && s.sent >= s.requests) resolve();
      };
      pump();
    });
  } finally {
    if (timer) clearTimeout(timer);
    k.close();
  }
  return mine;
}

/** Writes request `id` for `partition`, encoding its batch (or records) now. */
function writeRequest(s: Shared, stream: { write(m: unknown): boolean }, id: bigint, partition: number): void {
  const { o, topic, values } = s;
  const now = Date.now();
  const acks = acksOf(o.acks);
  if (o.mode === "batches") {
    const batch = requestBatch(s);
    stream.write({ requestId: id, request: { topic, partition, recordBatch: batch, acks } });
  } else {
    const records = values.map((v) => create(RecordSchema, { value: Buffer.from(v), timestampMs: BigInt(now) }));
    s.bytesSent += o.batchRecords * o.recordSize;
    stream.write({ requestId: id, request: { topic, partition, records, acks } } as never);
  }
}

/**
 * One producer connection: pipelines up to `inFlight` requests on one ProduceStream, taking
 * request numbers from the shared budget (and waiting when `--throughput` says it is early).
 * Request n goes to partition n mod partitions, or, given `partitions` (those its broker
 * leads), to the next of those. Resolves with the number of requests it sent.
 */
async function runProducer(s: Shared, address: string, index: number, partitions: readonly number[] | null): Promise<number> {
  const Producer = clientConstructor(ProduceService, produceClientCodecs);
  // A local subchannel pool: each producer gets its own connection, not a shared one.
  const client = new Producer(address, creds(), {
    ...channelOptions(),
    "grpc.use_local_subchannel_pool": 1,
    "rill.bench.producer": index,
  });
  const stream = client.produceStream();
  const sentAt = new Map<bigint, number>();
  const perProducerRate = s.o.throughput > 0 ? s.o.throughput / s.o.producers : 0;
  let mine = 0;
  let timer: ReturnType<typeof setTimeout> | null = null;
  try {
    await new Promise<void>((resolve, reject) => {
      const pump = (): void => {
        timer = null;
        while (s.sent < s.requests && sentAt.size < s.o.inFlight) {
          if (perProducerRate > 0) {
            const dueMs = s.start + ((mine * s.o.batchRecords) / perProducerRate) * 1000;
            const wait = dueMs - performance.now();
            if (wait > 0) {
              timer ??= setTimeout(pump, Math.max(1, wait));
              return;
            }
          }
          const n = s.sent++;
          const id = BigInt(n);
          sentAt.set(id, performance.now());
          writeRequest(s, stream, id, partitions ? partitions[mine % partitions.length]! : n % s.o.partitions);
          mine++;
        }
        if (sentAt.size === 0 && s.sent >= s.requests) {
          stream.end();
          resolve();
        }
      };
      stream.on("data", (m: ProduceStreamResponse) => {
        const t0 = sentAt.get(m.requestId);
        if (t0 === undefined) return reject(new Error(`producer ${index}: answer to unknown request ${m.requestId}`));
        sentAt.delete(m.requestId);
        s.hist.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
        if (m.result.case !== "response" || m.result.value.partitions.some((p) => p.error)) {
          s.errors++;
          const e = m.result.case === "response" ? m.result.value.partitions.find((p) => p.error)?.error : m.result.value;
          s.firstError ||= e && "name" in e ? `${e.name}: ${e.message}` : `answer ${m.result.case ?? "empty"}`;
        }
        s.acked++;
        pump();
      });
      stream.on("error", reject);
      pump();
    });
  } finally {
    if (timer) clearTimeout(timer);
    client.close();
  }
  return mine;
}

/**
 * Which partitions of `topic` each broker leads, by the broker's address (DescribeTopics and
 * DescribeCluster at `address`), once every partition has a leader (waiting up to 10 s).
 */
export async function leadersByAddress(address: string, topic: string): Promise<Map<string, number[]>> {
  const admin = new (clientConstructor(AdminService))(address, creds(), channelOptions());
  const call = <T>(f: (cb: (e: Error | null, r?: T) => void) => void): Promise<T> =>
    new Promise((resolve, reject) => f((e, r) => (e ? reject(e) : resolve(r!))));
  try {
    for (const deadline = Date.now() + 10_000; ; ) {
      const d = await call<DescribeTopicsResponse>((cb) =>
        admin.describeTopics(create(DescribeTopicsRequestSchema, { topics: [topic], excludeConfigs: true }), cb),
      );
      const parts = d.topics[0]?.partitions ?? [];
      if (parts.length > 0 && parts.every((p) => p.leader >= 0)) {
        const c = await call<DescribeClusterResponse>((cb) => admin.describeCluster(create(DescribeClusterRequestSchema, {}), cb));
        const addressOf = new Map(c.brokers.map((b) => [b.nodeId, b.address]));
        const out = new Map<string, number[]>();
        for (const p of parts) {
          const a = addressOf.get(p.leader);
          if (a === undefined) throw new Error(`partition ${p.partition}: leader ${p.leader} is not in DescribeCluster`);
          out.set(a, [...(out.get(a) ?? []), p.partition]);
        }
        return out;
      }
      if (Date.now() > deadline) throw new Error(`${topic}: not every partition has a leader after 10 s`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    admin.close();
  }
}

/** Which partitions of `topic` each Kafka listener leads (Metadata at `address`; auto-creates the topic). */
async function kafkaLeaders(address: string, topic: string): Promise<Map<string, number[]>> {
  const i = address.lastIndexOf(":");
  const k = await KafkaProducerSocket.connect(address.slice(0, i).replace(/^\[|\]$/g, ""), Number(address.slice(i + 1)));
  try {
    const out = new Map<string, number[]>();
    for (const [p, a] of await k.leaders(topic)) out.set(a, [...(out.get(a) ?? []), p]);
    return out;
  } finally {
    k.close();
  }
}

/**
 * Runs the producers against `--brokers` (or a broker it starts and stops) and returns the
 * result: records/s, MiB/s, request latency percentiles, per-producer request counts.
 */
export async function runProducerPerf(o: ProducerPerfOptions): Promise<Record<string, unknown>> {
  const given = checkProducerPerfOptions(o);
  useClientTls(o.tlsCa, o.tlsServerName);
  const kafka = o.protocol === "kafka";
  const kafkaPort = kafka && given.length === 0 ? await freePort() : 0;
  const broker =
    given.length > 0
      ? null
      : await startBrokerProcess(o.brokerRuntime, kafka ? { args: ["--set", `kafka.listen=127.0.0.1:${kafkaPort}`] } : {});
  try {
    const addresses = given.length > 0 ? given : kafka ? [`127.0.0.1:${kafkaPort}`] : [broker!.address];
    const topic = `perf-${Date.now()}`;
    // Kafka with --brokers: the topic comes from Metadata's auto-creation (kafkaLeaders).
    if (broker || !kafka)
      await createTopic(broker?.address ?? addresses[0]!, topic, o.partitions, topicConfigsOf(o.topicConfigs), o.replicationFactor);
    // Several brokers: each producer talks to a partition leader and sends only to the partitions
    // it leads, as a Kafka client routes (one broker: to it, round-robin over the partitions).
    const leaders =
      addresses.length > 1 || (kafka && !broker)
        ? [...(await (kafka ? kafkaLeaders(addresses[0]!, topic) : leadersByAddress(addresses[0]!, topic))).entries()]
        : null;
    const run = kafka ? runKafkaProducer : runProducer;
    const values = makeValues(o.batchRecords, o.recordSize);
    const phase = async (records: number, what: string): Promise<{ s: Shared; perProducer: number[] }> => {
      const s: Shared = {
        o,
        topic,
        requests: Math.ceil(records / o.batchRecords),
        values,
        hist: hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 }),
        start: performance.now(),
        sent: 0,
        acked: 0,
        bytesSent: 0,
        errors: 0,
        firstError: "",
      };
      const progress = startProgress(what, s.requests * o.batchRecords, () => s.acked * o.batchRecords);
      const perProducer = await Promise.all(
        Array.from({ length: o.producers }, (_, i) =>
          leaders ? run(s, leaders[i % leaders.length]![0], i, leaders[i % leaders.length]![1]) : run(s, addresses[0]!, i, null),
        ),
      ).finally(() => progress.stop());
      return { s, perProducer };
    };
    let warmupErrors = 0;
    if (o.warmupRecords > 0) warmupErrors = (await phase(o.warmupRecords, "warm-up")).s.errors;
    const { s, perProducer } = await phase(o.records, "producer");
    const secs = (performance.now() - s.start) / 1000;
    const total = s.requests * o.batchRecords;
    return {
      tool: "producer-perf",
      runtime: runtimeName(),
      ...o,
      brokers: addresses.join(","),
      brokerRuntime: given.length > 0 ? "external" : o.brokerRuntime,
      records: total,
      seconds: secs,
      recordsPerSec: total / secs,
      payloadMiBPerSec: (total * o.recordSize) / secs / MiB,
      wireMiBPerSec: s.bytesSent / secs / MiB,
      errors: s.errors,
      ...(s.firstError ? { firstError: s.firstError } : {}),
      ...(o.warmupRecords > 0 ? { warmupErrors } : {}),
      requestsPerProducer: perProducer,
      latencyMs: percentilesMs(s.hist),
      loadAverage: loadAverage(),
    };
  } finally {
    await broker?.stop();
  }
}

/** The one-line summary printed after a run. */
export function producerPerfSummary(r: Record<string, unknown>): string {
  const l = r["latencyMs"] as ReturnType<typeof percentilesMs>;
  return (
    `${r["records"]} records in ${(r["seconds"] as number).toFixed(2)} s by ${r["producers"]} producer(s), acks=${r["acks"]}, ${r["compression"]}: ` +
    `${((r["recordsPerSec"] as number) / 1e6).toFixed(2)}M records/s, ${(r["payloadMiBPerSec"] as number).toFixed(1)} MiB/s payload (${(r["wireMiBPerSec"] as number).toFixed(1)} MiB/s on the wire), ` +
    `request latency avg ${l.avg.toFixed(2)} ms, p50 ${l.p50.toFixed(2)}, p95 ${l.p95.toFixed(2)}, p99 ${l.p99.toFixed(2)}, p99.9 ${l.p999.toFixed(2)} ms; errors ${r["errors"]}${r["firstError"] ? ` (first: ${r["firstError"]})` : ""}${r["protocol"] === "kafka" ? "; over Kafka's protocol" : ""}`
  );
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2), producerPerfDefaults, import.meta.url);
  const result = await runProducerPerf(o);
  console.log(producerPerfSummary(result));
  if (o.json) nodeFs.writeFileSync(o.json, JSON.stringify(result, null, 2) + "\n");
  if ((result["errors"] as number) > 0) process.exitCode = 1;
}

if (isMain(import.meta.url, "producer-perf.ts")) await main();
