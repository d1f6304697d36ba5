/**
 * The benchmark suite: `npm run bench` (or `bun bench/suite.ts`). Runs every scenario against a
 * broker it starts on 127.0.0.1 with a fresh data dir, with the no-op transport ceiling of the
 * same runtime in the same run, then writes
 *   bench/results/<date>-<runtime>.json   every run's figures, the machine, the load averages
 *   bench/results/latest.md               the Markdown table (and the targets, met or missed)
 *   bench/results/latest.svg              throughput per scenario, and latency percentiles
 *
 *   bun bench/suite.ts [--broker-runtime bun[,node,deno]] [--runs 3] [--quick true]
 *     [--only produce,consume,e2e,peers,cluster,kafka] [--peers true|false] [--records-scale 1]
 *     [--cluster-brokers HOST:PORT,...] [--out bench/results] [--label latest]
 *   bun bench/suite.ts --from-json bench/results/<file>.json [--label latest]   (render again)
 *
 * Scenarios (1 broker, acks=leader): produce 100 B and 1 KiB records, LZ4 off and on, the SDK's
 * BATCHES path and the thin `records` path, each with its ceiling (the same client against
 * bench/ceiling.ts's no-op server on the same runtime) and the broker's peak RSS (VmRSS sampled
 * every 100 ms); consume (pipelined Fetch and Subscribe, BATCHES); end-to-end latency at 100k
 * records/s; and, with `--peers true` (the default when scripts/install-peers.sh has installed
 * them), Redis Streams, NATS JetStream and RabbitMQ Streams with the same record count and size.
 * Each figure is the median of `--runs` runs; every tool runs in its own process (the client
 * always on Bun) and is killed if it outlives its time bound.
 *
 * `kafka`: Rill's Kafka-protocol producer and consumer beside its gRPC ones on one broker with
 * both listeners (bench/kafka-produce-perf.ts: 100 B LZ4 batches; bench/kafka-consume-perf.ts:
 * 100 B uncompressed, pipelined Fetch loops), interleaved, with the ratios Kafka ÷ gRPC, and rows
 * for the real clients (kafkajs, librdkafka, @platformatic/kafka producers; kcat, kafkajs,
 * @platformatic/kafka consumers), each in its own process with a smaller record count
 * (5% of ours) so the suite stays short.
 *
 * `cluster`: produce 100 B batches into 3 partitions with RF=3 and acks=all from 3 producers,
 * one per broker, on 3 brokers that bench/cluster.ts starts (combined broker+controller nodes,
 * one controller quorum) or that `--cluster-brokers` names. When the cluster cannot start or
 * the produce fails, the row says "not available" and why.
 * `txn`: READ_COMMITTED ÷ READ_UNCOMMITTED consume (bench/txn-consume-perf.ts: a broker in the
 * tool's process on Bun, 100 B records in transactions of 1000, the SDK Consumer over the same
 * log at both isolation levels, interleaved); issue 17's goal ≥ 0.9.
 * `sweep` and `partitions` (issue 20; bench/suite-sweep.ts): latency against throughput for one
 * broker and for RF=3 acks=all (bench/producer-sweep.ts: the maximum, then 10%…100% of it and
 * 100k records/s, open loop), drawn into <label>-sweep.svg; and produce over 1,000 partitions by
 * 4 producers ÷ one partition by one (each after an untimed warm-up of the same producers,
 * `--warmup-records`), and consume (Subscribe) of 1,000 partitions and of one.
 * `--records-scale X` multiplies every record count (and e2e's duration, at least 2 s) by X:
 * `--quick true` is `--records-scale 0.25 --runs 1`; a smoke test uses 0.01 or less.
 */
import { spawn, spawnSync } from "node:child_process";
import * as nodeFs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { startNoopServer } from "./ceiling.ts";
import { ClusterUnavailable, startCluster, type Cluster } from "./cluster.ts";
import { isMain, loadAverage, median, parseArgs, sampleBrokerDescendantsRss, sampleRss } from "./lib.ts";
import { startBrokerProcess } from "./producer-perf.ts";
import { runtimeName } from "./runtime.ts";
import {
  issue20Targets,
  partitionsScenario,
  resummarize,
  suiteSweepSvg,
  sweepMarkdown,
  sweepScenario,
  type SuiteTools,
  type SweepSummary,
} from "./suite-sweep.ts";

type Runtime = "bun" | "node" | "deno";
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const BUN = path.join(root, "node_modules/.bin/bun");

/** Scenario groups `--only` takes. */
export const SCENARIOS = ["produce", "consume", "e2e", "peers", "cluster", "kafka", "txn", "sweep", "partitions"];

const defaults = {
  brokerRuntime: "bun",
  runs: 3,
  quick: false,
  only: "produce,consume,e2e,peers,cluster,kafka,txn,sweep,partitions",
  peers: true,
  /** Multiplies every record count (quick: a further 0.25). */
  recordsScale: 1,
  /** Addresses of a running 3-broker cluster for `cluster` (default: start one). */
  clusterBrokers: "",
  out: "bench/results",
  /** Basename of the Markdown table and the chart: <label>.md, <label>.svg. */
  label: "latest",
};
type Options = typeof defaults;

export interface Row {
  kind: "produce" | "consume" | "e2e" | "peer" | "cluster" | "kafka" | "txn" | "sweep" | "partitions";
  name: string;
  brokerRuntime: string;
  recordSize: number;
  compression: string;
  mode: string;
  records: number;
  recordsPerSec: number;
  payloadMiBPerSec: number;
  ceilingRecordsPerSec?: number;
  ceilingMiBPerSec?: number;
  ratioToCeiling?: number;
  latencyMs?: { avg: number; p50: number; p95: number; p99: number; p999: number; max?: number };
  latencyKind?: string;
  rssPeakMiB?: number;
  /** Consume rows: the broker's peak while consuming (rssPeakMiB also covers the pre-produce). */
  rssConsumePeakMiB?: number;
  durability?: string;
  /** Kafka rows: Rill's Kafka-protocol figure ÷ its gRPC one (on the row of Rill's own Kafka client). */
  kafkaOverGrpc?: number;
  /** Txn rows: READ_COMMITTED ÷ READ_UNCOMMITTED, log offsets read per second. */
  readCommittedRatio?: number;
  /** Sweep rows: the medians of every step (recordsPerSec is the closed-loop maximum). */
  sweep?: SweepSummary;
  /** Partitions rows: this figure ÷ the same scenario's one-partition figure, same run. */
  ratioToOnePartition?: number;
  /** Why the scenario could not run (its figures are then NaN). */
  unavailable?: string;
  runs: Record<string, unknown>[];
  loadAverage: number[];
  command: string;
}

// ---------------------------------------------------------------------------------------------
// Running tools

let step = 0;
let steps = 0;
const suiteStart = performance.now();

function progress(msg: string): void {
  const s = ((performance.now() - suiteStart) / 1000).toFixed(0);
  process.stderr.write(`[${step}/${steps} ${s}s load ${loadAverage()[0]}] ${msg}\n`);
}

/**
 * Runs `bun bench/<file> args --json TMP` (killed after `timeoutS`); returns its JSON. A tool
 * that fails throws, unless `keepFailed` and it wrote its JSON (then `exitCode` is in it). When
 * the tool starts brokers of its own, the largest one's peak RSS is added as
 * `spawnedBrokerRssPeakMiB`.
 */
async function runTool(file: string, args: string[], timeoutS: number, keepFailed = false): Promise<Record<string, unknown>> {
  const tmp = path.join(os.tmpdir(), `rill-bench-${process.pid}-${Date.now()}.json`);
  const child = spawn(BUN, [file, ...args, "--json", tmp], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  const indent = (d: Buffer): void => void process.stderr.write(d.toString().replace(/^(?=.)/gm, "    "));
  child.stdout.on("data", indent);
  child.stderr.on("data", indent);
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutS * 1000);
  const brokersRss = sampleBrokerDescendantsRss(child.pid!);
  try {
    const code = await new Promise<number | null>((r) => child.once("exit", r));
    const rss = brokersRss.stop();
    if (code !== 0 && !(keepFailed && nodeFs.existsSync(tmp))) throw new Error(`${file} ${args.join(" ")} exited with ${code}`);
    return {
      ...(JSON.parse(nodeFs.readFileSync(tmp, "utf8")) as Record<string, unknown>),
      ...(code !== 0 ? { exitCode: code } : {}),
      ...(rss !== null ? { spawnedBrokerRssPeakMiB: rss } : {}),
    };
  } finally {
    brokersRss.stop();
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    nodeFs.rmSync(tmp, { force: true });
  }
}

/** Runs `fn` against a fresh broker on `runtime`, sampling its RSS; always stops the broker. */
async function withBroker<T>(
  runtime: Runtime,
  fn: (address: string, pid: number) => Promise<T>,
): Promise<{ value: T; rssPeakMiB: number }> {
  const broker = await startBrokerProcess(runtime);
  const rss = sampleRss(broker.proc.pid!, 100);
  try {
    const value = await fn(broker.address, broker.proc.pid!);
    return { value, rssPeakMiB: rss.stop().peakMiB };
  } finally {
    rss.stop();
    await broker.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// Scenarios

interface ProduceScenario {
  recordSize: number;
  compression: "none" | "lz4";
  mode: "batches" | "records";
  records: number;
  batchRecords: number;
}

function produceScenarios(scale: number): ProduceScenario[] {
  const out: ProduceScenario[] = [];
  for (const recordSize of [100, 1024]) {
    for (const mode of ["batches", "records"] as const) {
      for (const compression of ["none", "lz4"] as const) {
        const records = scaled(
          recordSize === 100 ? (mode === "batches" ? 4_000_000 : 1_000_000) : mode === "batches" ? 1_000_000 : 400_000,
          scale,
          recordSize === 100 ? 1000 : 500,
        );
        out.push({ recordSize, compression, mode, records, batchRecords: recordSize === 100 ? 1000 : 500 });
      }
    }
  }
  return out;
}

/** `n × scale` records, a whole number of batches of `batch`, at least one batch. */
function scaled(n: number, scale: number, batch: number): number {
  return Math.max(1, Math.round((n * scale) / batch)) * batch;
}

const sizeName = (n: number): string => (n >= 1024 ? `${n / 1024} KiB` : `${n} B`);

async function produce(rt: Runtime, s: ProduceScenario, runs: number): Promise<Row> {
  const args = [
    "--records",
    String(s.records),
    "--record-size",
    String(s.recordSize),
    "--batch-records",
    String(s.batchRecords),
    "--compression",
    s.compression,
    "--mode",
    s.mode,
  ];
  const name = `produce ${sizeName(s.recordSize)} ${s.mode} ${s.compression}`;
  const brokerRuns: Record<string, unknown>[] = [];
  const ceilingRuns: Record<string, unknown>[] = [];
  const rss: number[] = [];
  const loads: number[] = [];
  for (let run = 1; run <= runs; run++) {
    progress(`${name} (${rt}) run ${run}/${runs}: broker`);
    const b = await withBroker(rt, (address) => runTool("bench/producer-perf.ts", [...args, "--broker", address], 300));
    brokerRuns.push({ ...b.value, brokerRssPeakMiB: b.rssPeakMiB, loadAverage: loadAverage() });
    rss.push(b.rssPeakMiB);
    loads.push(loadAverage()[0]!);
    progress(`${name} (${rt}) run ${run}/${runs}: no-op ceiling`);
    const noop = await startNoopServer(rt);
    try {
      ceilingRuns.push({
        ...(await runTool("bench/producer-perf.ts", [...args, "--broker", noop.address], 300)),
        loadAverage: loadAverage(),
      });
    } finally {
      await noop.stop();
    }
  }
  const m = (rs: Record<string, unknown>[], k: string): number => median(rs.map((r) => r[k] as number));
  const lat = (k: string): number => median(brokerRuns.map((r) => (r["latencyMs"] as Record<string, number>)[k]!));
  const mib = m(brokerRuns, "payloadMiBPerSec");
  const ceilingMiB = m(ceilingRuns, "payloadMiBPerSec");
  return {
    kind: "produce",
    name,
    brokerRuntime: rt,
    recordSize: s.recordSize,
    compression: s.compression,
    mode: s.mode,
    records: s.records,
    recordsPerSec: m(brokerRuns, "recordsPerSec"),
    payloadMiBPerSec: mib,
    ceilingRecordsPerSec: m(ceilingRuns, "recordsPerSec"),
    ceilingMiBPerSec: ceilingMiB,
    ratioToCeiling: mib / ceilingMiB,
    latencyMs: { avg: lat("avg"), p50: lat("p50"), p95: lat("p95"), p99: lat("p99"), p999: lat("p999") },
    latencyKind: "produce request (send to ack, 8 in flight)",
    rssPeakMiB: Math.max(...rss),
    durability: "acks=leader, ack before fsync; fsync every 1 s (flush.ms=1000, as Redis everysec)",
    runs: [...brokerRuns.map((r) => ({ target: "broker", ...r })), ...ceilingRuns.map((r) => ({ target: "ceiling", ...r }))],
    loadAverage: [median(loads)],
    command: `bun bench/producer-perf.ts ${args.join(" ")} --broker-runtime ${rt}; bun bench/ceiling.ts --server-runtime ${rt} ${args.join(" ")}`,
  };
}

async function consume(
  rt: Runtime,
  recordSize: number,
  compression: "none" | "lz4",
  mode: "fetch" | "subscribe",
  records: number,
  runs: number,
): Promise<Row> {
  const name = `consume ${sizeName(recordSize)} ${mode} ${compression}`;
  const args = [
    "--records",
    String(records),
    "--record-size",
    String(recordSize),
    "--batch-records",
    String(recordSize === 100 ? 1000 : 500),
    "--compression",
    compression,
    "--mode",
    mode,
    "--runs",
    String(runs),
  ];
  progress(`${name} (${rt})`);
  // --broker-pid: consumer-perf samples the broker's RSS while it pre-produces and while it consumes.
  const b = await withBroker(rt, (address, pid) =>
    runTool("bench/consumer-perf.ts", [...args, "--broker", address, "--broker-pid", String(pid)], 300),
  );
  const r = b.value;
  return {
    kind: "consume",
    name,
    brokerRuntime: rt,
    recordSize,
    compression,
    mode,
    records,
    recordsPerSec: r["recordsPerSec"] as number,
    payloadMiBPerSec: r["payloadMiBPerSec"] as number,
    rssPeakMiB: b.rssPeakMiB,
    ...(r["brokerRssMiB"] ? { rssConsumePeakMiB: (r["brokerRssMiB"] as { consumePeak: number }).consumePeak } : {}),
    runs: r["runResults"] as Record<string, unknown>[],
    loadAverage: [(r["loadAverage"] as number[])[0]!],
    command: `bun bench/consumer-perf.ts ${args.join(" ")} --broker-runtime ${rt}`,
  };
}

/** Kafka-protocol rows: bench/kafka-produce-perf.ts and bench/kafka-consume-perf.ts, one broker each. */
async function kafka(rt: Runtime, records: number, clientRecords: number, runs: number): Promise<Row[]> {
  const MiB = 1024 * 1024;
  const out: Row[] = [];
  const pArgs = ["--records", String(records), "--record-size", "100", "--batch-records", "1000", "--compression", "lz4"];
  const clients = "kafkajs,librdkafka,platformatic";
  const pCommand = `bun bench/kafka-produce-perf.ts ${pArgs.join(" ")} --clients ${clients} --client-records ${clientRecords} --runs ${runs} --broker-runtime ${rt}`;
  progress(`kafka produce (${rt})`);
  const p = await runTool(
    "bench/kafka-produce-perf.ts",
    [...pArgs, "--clients", clients, "--client-records", String(clientRecords), "--runs", String(runs), "--broker-runtime", rt],
    600,
  );
  const pRuns = p["runs"] as Record<string, Record<string, unknown>[]>;
  const pRss = p["spawnedBrokerRssPeakMiB"] as number | undefined;
  const pLoad = [(p["loadAverage"] as number[])[0]!];
  const pLabels: Record<string, string> = {
    grpc: "gRPC producer (ours)",
    kafka: "Kafka producer (ours)",
    kafkajs: "kafkajs producer (none)",
    librdkafka: "librdkafka producer (lz4)",
    platformatic: "@platformatic/kafka producer (lz4)",
  };
  for (const who of ["grpc", "kafka", ...clients.split(",")]) {
    const rps =
      who === "grpc"
        ? (p["grpcRecordsPerSec"] as number)
        : who === "kafka"
          ? (p["kafkaRecordsPerSec"] as number)
          : (p["clients"] as Record<string, number>)[who]!;
    out.push({
      kind: "kafka",
      name: `kafka produce 100 B lz4: ${pLabels[who]}`,
      brokerRuntime: rt,
      recordSize: 100,
      compression: who === "kafkajs" ? "none" : "lz4",
      mode: who,
      records: who === "grpc" || who === "kafka" ? records : clientRecords,
      recordsPerSec: rps,
      payloadMiBPerSec: (rps * 100) / MiB,
      ...(who === "kafka" ? { kafkaOverGrpc: p["kafkaOverGrpc"] as number } : {}),
      ...(pRss !== undefined ? { rssPeakMiB: pRss } : {}),
      runs: pRuns[who] ?? [],
      loadAverage: pLoad,
      command: pCommand,
    });
  }
  const cArgs = ["--records", String(records), "--record-size", "100", "--batch-records", "1000", "--compression", "none"];
  const modes = "grpc,kafka,kcat,kafkajs,platformatic";
  const cCommand = `bun bench/kafka-consume-perf.ts ${cArgs.join(" ")} --modes ${modes} --client-records ${clientRecords} --runs ${runs} --broker-runtime ${rt}`;
  progress(`kafka consume (${rt})`);
  const c = await runTool(
    "bench/kafka-consume-perf.ts",
    [...cArgs, "--modes", modes, "--client-records", String(clientRecords), "--runs", String(runs), "--broker-runtime", rt],
    600,
  );
  const medians = c["medians"] as Record<string, { recordsPerSec: number; payloadMiBPerSec: number }>;
  const cRuns = c["runResults"] as Record<string, Record<string, unknown>[]>;
  const cRss = c["spawnedBrokerRssPeakMiB"] as number | undefined;
  const cLabels: Record<string, string> = {
    grpc: "gRPC Fetch (ours)",
    kafka: "Kafka Fetch (ours)",
    kcat: "kcat -C (librdkafka)",
    kafkajs: "kafkajs consumer",
    platformatic: "@platformatic/kafka consumer",
  };
  for (const who of modes.split(",")) {
    out.push({
      kind: "kafka",
      name: `kafka consume 100 B none: ${cLabels[who]}`,
      brokerRuntime: rt,
      recordSize: 100,
      compression: "none",
      mode: who,
      records: who === "grpc" || who === "kafka" ? (c["records"] as number) : (c["clientRecords"] as number),
      recordsPerSec: medians[who]!.recordsPerSec,
      payloadMiBPerSec: medians[who]!.payloadMiBPerSec,
      ...(who === "kafka" && c["kafkaOverGrpc"] !== null ? { kafkaOverGrpc: c["kafkaOverGrpc"] as number } : {}),
      ...(cRss !== undefined ? { rssPeakMiB: cRss } : {}),
      runs: cRuns[who] ?? [],
      loadAverage: [(c["loadAverage"] as number[])[0]!],
      command: cCommand,
    });
  }
  return out;
}

async function e2e(rt: Runtime, rate: number, seconds: number, compression: "none" | "lz4", runs: number): Promise<Row> {
  const name = `e2e 100 B at ${rate / 1000}k/s ${compression}`;
  const args = [
    "--rate",
    String(rate),
    "--seconds",
    String(seconds),
    "--record-size",
    "100",
    "--linger-ms",
    "1",
    "--compression",
    compression,
  ];
  const rs: Record<string, unknown>[] = [];
  const rss: number[] = [];
  for (let run = 1; run <= runs; run++) {
    progress(`${name} (${rt}) run ${run}/${runs}`);
    const b = await withBroker(rt, (address) => runTool("bench/e2e-latency.ts", [...args, "--broker", address], seconds + 120));
    rs.push({ ...b.value, brokerRssPeakMiB: b.rssPeakMiB });
    rss.push(b.rssPeakMiB);
  }
  const lat = (k: string): number => median(rs.map((r) => (r["latencyMs"] as Record<string, number>)[k]!));
  return {
    kind: "e2e",
    name,
    brokerRuntime: rt,
    recordSize: 100,
    compression,
    mode: "subscribe",
    records: rate * seconds,
    recordsPerSec: median(rs.map((r) => r["achievedRate"] as number)),
    payloadMiBPerSec: (median(rs.map((r) => r["achievedRate"] as number)) * 100) / (1 << 20),
    latencyMs: { avg: lat("avg"), p50: lat("p50"), p95: lat("p95"), p99: lat("p99"), p999: lat("p999"), max: lat("max") },
    latencyKind: "end to end (scheduled send to consumed)",
    rssPeakMiB: Math.max(...rss),
    runs: rs,
    loadAverage: [median(rs.map((r) => (r["loadAverage"] as number[])[0]!))],
    command: `bun bench/e2e-latency.ts ${args.join(" ")} --broker-runtime ${rt}`,
  };
}

/**
 * The replicated scenario: 3 brokers, a topic of 3 partitions with RF=3, acks=all, 3 producers
 * (one per broker). Reported as "not available", with the reason, while the cluster cannot
 * start or the produce fails; the RSS figure is the largest node's peak.
 */
async function cluster(rt: Runtime, given: string, records: number, runs: number): Promise<Row> {
  const name = "produce 100 B batches none, 3 brokers RF=3 acks=all";
  const args = [
    "--records",
    String(records),
    "--record-size",
    "100",
    "--batch-records",
    "1000",
    "--compression",
    "none",
    "--mode",
    "batches",
    "--acks",
    "all",
    "--partitions",
    "3",
    "--replication-factor",
    "3",
    "--producers",
    "3",
  ];
  const row: Row = {
    kind: "cluster",
    name,
    brokerRuntime: given ? "external" : rt,
    recordSize: 100,
    compression: "none",
    mode: "batches",
    records,
    recordsPerSec: NaN,
    payloadMiBPerSec: NaN,
    durability: "acks=all (replicated to min.insync.replicas before the ack); fsync every 1 s",
    runs: [],
    loadAverage: [loadAverage()[0]!],
    command: `bun bench/cluster.ts --brokers 3 --broker-runtime ${rt}; bun bench/producer-perf.ts ${args.join(" ")} --brokers <the three>`,
  };
  let c: Cluster | null = null;
  let rss: ReturnType<typeof sampleRss>[] = [];
  try {
    progress(`${name} (${rt}): ${given ? `cluster at ${given}` : "starting 3 brokers"}`);
    const addresses = given ? given.split(",").map((x) => x.trim()) : (c = await startCluster(rt, 3)).addresses;
    rss = c ? c.pids.map((pid) => sampleRss(pid, 100)) : [];
    const rs: Record<string, unknown>[] = [];
    for (let run = 1; run <= runs; run++) {
      progress(`${name} (${rt}) run ${run}/${runs}`);
      const r = await runTool("bench/producer-perf.ts", [...args, "--brokers", addresses.join(",")], 300, true);
      if ((r["errors"] as number) > 0 || r["exitCode"] !== undefined) {
        throw new ClusterUnavailable(
          `${r["errors"]} of ${Math.ceil(records / 1000)} produce requests failed${r["firstError"] ? `, first: ${r["firstError"]}` : ""}`,
        );
      }
      rs.push({ ...r, loadAverage: loadAverage() });
    }
    const peaks = rss.map((x) => x.stop().peakMiB);
    const lat = (k: string): number => median(rs.map((r) => (r["latencyMs"] as Record<string, number>)[k]!));
    return {
      ...row,
      recordsPerSec: median(rs.map((r) => r["recordsPerSec"] as number)),
      payloadMiBPerSec: median(rs.map((r) => r["payloadMiBPerSec"] as number)),
      latencyMs: { avg: lat("avg"), p50: lat("p50"), p95: lat("p95"), p99: lat("p99"), p999: lat("p999") },
      latencyKind: "produce request (send to ack, 8 in flight per producer)",
      ...(peaks.length ? { rssPeakMiB: Math.max(...peaks) } : {}),
      runs: rs,
      loadAverage: [median(rs.map((r) => (r["loadAverage"] as number[])[0]!))],
    };
  } catch (e) {
    if (!(e instanceof ClusterUnavailable)) progress(`${name} (${rt}) failed: ${e instanceof Error ? e.message : String(e)}`);
    return { ...row, unavailable: e instanceof Error ? e.message : String(e) };
  } finally {
    rss.forEach((x) => x.stop());
    await c?.stop();
  }
}

/**
 * Node runs compiled JavaScript: the working tree is compiled into .tmp/bench-dist (gitignored,
 * private to the suite, so dist/ is left alone) and the broker started from there, so Node runs
 * the same code as Bun and Deno, which run src/ directly.
 */
function buildForNode(): void {
  progress("compiling src/ for the Node broker into .tmp/bench-dist");
  const out = path.join(root, ".tmp/bench-dist");
  nodeFs.rmSync(out, { recursive: true, force: true });
  const r = spawnSync(path.join(root, "node_modules/.bin/tsc"), ["-p", "tsconfig.build.json", "--outDir", out], {
    cwd: root,
    stdio: "inherit",
  });
  if (r.status !== 0 || !nodeFs.existsSync(path.join(out, "src/cli/main.js")))
    throw new Error("tsc -p tsconfig.build.json failed: cannot run the broker on Node");
  process.env["RILL_BENCH_NODE_MAIN"] = path.join(out, "src/cli/main.js");
}

/** Peer benchmarks (bench/peers/<name>.ts), when their servers are installed. */
async function peers(o: Options): Promise<Row[]> {
  const rows: Row[] = [];
  const dir = path.join(root, "bench/peers");
  if (!nodeFs.existsSync(dir)) return rows;
  for (const file of nodeFs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".ts") && !f.startsWith("_"))
    .sort()) {
    // NATS's client publishes ~30k records/s: fewer records keep its runs as short as the others'.
    const records = scaled(file === "nats.ts" ? 200_000 : 1_000_000, o.recordsScale * (o.quick ? 0.25 : 1), 1000);
    const args = ["--records", String(records), "--record-size", "100", "--runs", String(o.quick ? 1 : o.runs)];
    progress(`peer ${file}`);
    try {
      const r = await runTool(`bench/peers/${file}`, args, 300);
      if (r["skipped"]) {
        progress(`peer ${file}: skipped (${r["skipped"]})`);
        continue;
      }
      rows.push({
        kind: "peer",
        name: `peer ${r["peer"]} 100 B`,
        brokerRuntime: String(r["server"]),
        recordSize: 100,
        compression: "none",
        mode: String(r["mode"]),
        records: r["records"] as number,
        recordsPerSec: r["recordsPerSec"] as number,
        payloadMiBPerSec: r["payloadMiBPerSec"] as number,
        ...(r["rssPeakMiB"] ? { rssPeakMiB: r["rssPeakMiB"] as number } : {}),
        durability: String(r["durability"]),
        runs: r["runResults"] as Record<string, unknown>[],
        loadAverage: [(r["loadAverage"] as number[])[0]!],
        command: `bun bench/peers/${file} ${args.join(" ")}`,
      });
    } catch (e) {
      progress(`peer ${file} failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return rows;
}

/** `txn`: bench/txn-consume-perf.ts (its broker runs in the tool's process, on Bun). */
async function txnConsume(records: number, runs: number): Promise<Row> {
  const args = ["--records", String(records), "--record-size", "100", "--txn-records", "1000", "--runs", String(Math.max(runs, 3))];
  progress("txn consume READ_COMMITTED vs READ_UNCOMMITTED");
  const r = await runTool("bench/txn-consume-perf.ts", args, 600);
  const rps = r["readCommittedRecordsPerSec"] as number;
  return {
    kind: "txn",
    name: "consume 100 B in transactions of 1000, READ_COMMITTED (SDK Consumer)",
    brokerRuntime: "bun",
    recordSize: 100,
    compression: "none",
    mode: "read_committed",
    records,
    recordsPerSec: rps,
    payloadMiBPerSec: (rps * 100) / (1024 * 1024),
    readCommittedRatio: r["ratio"] as number,
    runs: [{ readUncommittedSec: r["readUncommittedSec"], readCommittedSec: r["readCommittedSec"] }],
    loadAverage: loadAverage(),
    command: `bun bench/txn-consume-perf.ts ${args.join(" ")}`,
  };
}

// ---------------------------------------------------------------------------------------------
// Targets, table, chart

interface Target {
  what: string;
  goal: string;
  measured: string;
  met: boolean | null;
}

function targets(rows: Row[]): Target[] {
  const find = (f: (r: Row) => boolean): Row | undefined => rows.find((r) => r.brokerRuntime === "bun" && f(r)) ?? rows.find(f);
  const out: Target[] = [];
  const m = (x: number): string => `${(x / 1e6).toFixed(2)}M records/s`;
  const p = (r: Row | undefined, goal: number, what: string, target: string): void => {
    if (r) out.push({ what, goal: target, measured: m(r.recordsPerSec), met: r.recordsPerSec >= goal });
  };
  p(
    find((r) => r.kind === "produce" && r.recordSize === 100 && r.compression === "lz4" && r.mode === "batches"),
    2.5e6,
    "produce 100 B, LZ4, 1 broker",
    "≥ 2.5M records/s",
  );
  p(
    find((r) => r.kind === "produce" && r.recordSize === 100 && r.compression === "none" && r.mode === "batches"),
    1.5e6,
    "produce 100 B, uncompressed, 1 broker",
    "≥ 1.5M records/s",
  );
  const cons = rows.filter((r) => r.kind === "consume" && r.recordSize === 100 && r.compression === "none");
  const consBun = cons.some((r) => r.brokerRuntime === "bun") ? cons.filter((r) => r.brokerRuntime === "bun") : cons;
  const bestCons = [...consBun].sort((a, b) => b.recordsPerSec - a.recordsPerSec)[0];
  if (bestCons)
    out.push({
      what: `consume 100 B, uncompressed (best path: ${bestCons.mode}, ${bestCons.brokerRuntime})`,
      goal: "≥ 5M records/s",
      measured: m(bestCons.recordsPerSec),
      met: bestCons.recordsPerSec >= 5e6,
    });
  const c = find((r) => r.kind === "cluster");
  if (c) {
    out.push(
      c.unavailable
        ? { what: "3 brokers, RF=3, acks=all", goal: "≥ 800k records/s", measured: `not available: ${c.unavailable}`, met: null }
        : { what: "3 brokers, RF=3, acks=all", goal: "≥ 800k records/s", measured: m(c.recordsPerSec), met: c.recordsPerSec >= 0.8e6 },
    );
  }
  const e = find((r) => r.kind === "e2e");
  if (e?.latencyMs) {
    out.push({
      what: "end-to-end p50 at 100k records/s",
      goal: "≤ 2 ms",
      measured: `${e.latencyMs.p50.toFixed(2)} ms`,
      met: e.latencyMs.p50 <= 2,
    });
    out.push({
      what: "end-to-end p99 at 100k records/s",
      goal: "≤ 5 ms",
      measured: `${e.latencyMs.p99.toFixed(2)} ms`,
      met: e.latencyMs.p99 <= 5,
    });
  }
  for (const r of rows.filter((x) => x.kind === "produce" && x.ratioToCeiling !== undefined)) {
    out.push({
      what: `${r.name} (${r.brokerRuntime}) / no-op ceiling`,
      goal: "≥ 0.6",
      measured: r.ratioToCeiling!.toFixed(2),
      met: r.ratioToCeiling! >= 0.6,
    });
  }
  const first = find((r) => r.kind === "produce" && r.recordSize === 100 && r.compression === "none" && r.mode === "batches");
  if (first?.rssPeakMiB !== undefined) {
    out.push({
      what: `broker peak RSS under the first load (${first.name}, ${first.brokerRuntime})`,
      goal: "≤ 300 MiB",
      measured: `${first.rssPeakMiB.toFixed(0)} MiB`,
      met: first.rssPeakMiB <= 300,
    });
  }
  const rssRows = rows.filter((r) => r.kind !== "peer" && r.rssPeakMiB !== undefined);
  if (rssRows.length) {
    const worst = rssRows.reduce((a, b) => (b.rssPeakMiB! > a.rssPeakMiB! ? b : a));
    out.push({
      what: `broker peak RSS, worst scenario (${worst.name}, ${worst.brokerRuntime})`,
      goal: "≤ 300 MiB",
      measured: `${worst.rssPeakMiB!.toFixed(0)} MiB`,
      met: worst.rssPeakMiB! <= 300,
    });
  }
  for (const r of rows.filter((x) => x.kind === "kafka" && x.kafkaOverGrpc !== undefined)) {
    out.push({
      what: `${r.name.split(":")[0]} (${r.brokerRuntime}): Rill's Kafka-protocol client ÷ its gRPC one, same batches`,
      goal: "≥ 1.5",
      measured: r.kafkaOverGrpc!.toFixed(2),
      met: r.kafkaOverGrpc! >= 1.5,
    });
  }
  for (const r of rows.filter((x) => x.kind === "txn" && x.readCommittedRatio !== undefined)) {
    out.push({
      what: "consume READ_COMMITTED ÷ READ_UNCOMMITTED (transactions of 1000, same log)",
      goal: "≥ 0.9",
      measured: r.readCommittedRatio!.toFixed(2),
      met: r.readCommittedRatio! >= 0.9,
    });
  }
  out.push(...issue20Targets(rows));
  const peerRows = rows.filter((r) => r.kind === "peer");
  const rill = find((r) => r.kind === "produce" && r.recordSize === 100 && r.compression === "none" && r.mode === "batches");
  if (peerRows.length && rill) {
    const best = peerRows.reduce((a, b) => (b.recordsPerSec > a.recordsPerSec ? b : a));
    out.push({
      what: `produce 100 B vs best peer (${best.name}, ${best.durability})`,
      goal: "≥ 4×",
      measured: `${(rill.recordsPerSec / best.recordsPerSec).toFixed(1)}× (not at identical durability: see the durability column)`,
      met: rill.recordsPerSec >= 4 * best.recordsPerSec,
    });
  }
  return out;
}

function fmt(x: number | undefined, digits = 1): string {
  return x === undefined || !Number.isFinite(x) ? "–" : x.toFixed(digits);
}

function markdown(rows: Row[], meta: Record<string, unknown>): string {
  const lines: string[] = [];
  lines.push(`# Rill benchmark results`, ``);
  lines.push(
    `${meta["date"]} · ${meta["machine"]} · client ${meta["clientRuntime"]} · \`${meta["command"]}\` · median of ${meta["runs"]} run(s) · load average at start ${(meta["loadAverageStart"] as number[]).join(", ")}, at end ${(meta["loadAverageEnd"] as number[]).join(", ")}`,
    ``,
  );
  lines.push(
    `Client and servers on the same 2-core machine, over 127.0.0.1. Produce: acks=leader, one partition, 8 requests in flight, batches encoded by the client per request. "Ceiling": the same client and bytes against a no-op gRPC server (bench/ceiling.ts) on the same runtime.`,
    ``,
  );
  const busiest = Math.max(...rows.map((r) => r.loadAverage[0] ?? 0));
  if (busiest > os.cpus().length) {
    lines.push(
      `**Note:** the 1-minute load average reached ${busiest.toFixed(2)} on ${os.cpus().length} cores during this run (other work on the machine): rows with a high load are depressed, latency tails most of all.`,
      ``,
    );
  }
  lines.push(
    `| scenario | broker | records/s | MiB/s | ceiling MiB/s | ratio | latency p50 / p99 / p99.9 ms | broker RSS peak MiB | durability | load (1 min) |`,
  );
  lines.push(`|---|---|---:|---:|---:|---:|---|---:|---|---:|`);
  for (const r of rows) {
    if (r.unavailable) {
      lines.push(
        `| ${r.name} | ${r.brokerRuntime} | not available: ${r.unavailable.replace(/\|/g, "\\|")} | – | – | – | – | – | ${r.durability ?? "–"} | ${r.loadAverage.map((x) => x.toFixed(2)).join(", ")} |`,
      );
      continue;
    }
    const lat = r.latencyMs
      ? `${fmt(r.latencyMs.p50, 2)} / ${fmt(r.latencyMs.p99, 2)} / ${fmt(r.latencyMs.p999, 2)}${r.kind === "e2e" ? " (e2e)" : r.kind === "produce" || r.kind === "cluster" || r.kind === "partitions" ? " (request)" : r.kind === "sweep" ? " (request at 70%)" : ""}`
      : "–";
    lines.push(
      `| ${r.name} | ${r.brokerRuntime} | ${(r.recordsPerSec / 1e6).toFixed(2)}M | ${fmt(r.payloadMiBPerSec)} | ${fmt(r.ceilingMiBPerSec)} | ${fmt(r.ratioToCeiling, 2)} | ${lat} | ${fmt(r.rssPeakMiB, 0)} | ${r.durability ?? "–"} | ${r.loadAverage.map((x) => x.toFixed(2)).join(", ")} |`,
    );
  }
  const t = targets(rows);
  if (t.length) {
    lines.push(``, `## Targets (issues 7 and 15)`, ``, `| target | goal | measured | |`, `|---|---|---|---|`);
    for (const x of t) lines.push(`| ${x.what} | ${x.goal} | ${x.measured} | ${x.met === null ? "–" : x.met ? "met" : "**missed**"} |`);
  }
  lines.push(...sweepMarkdown(rows, `${meta["label"]}-sweep.svg`));
  lines.push(
    ``,
    `Chart: [${meta["label"]}.svg](${meta["label"]}.svg). Full figures (every run, latency avg/p95/max, commands): \`${meta["json"] ?? "the run's JSON"}\` (gitignored; kept on the machine that ran it).`,
    ``,
  );
  return lines.join("\n");
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** Two horizontal bar charts: throughput (M records/s, with the ceiling) and latency percentiles. */
export function svgChart(allRows: Row[], title: string): string {
  const rows = allRows.filter((r) => !r.unavailable);
  const thr = rows.filter((r) => r.kind !== "e2e");
  const latRows = rows.filter((r) => r.latencyMs);
  const W = 900;
  const label = 300;
  const barW = W - label - 90;
  const rowH = 26;
  const parts: string[] = [];
  let y = 30;
  parts.push(`<text x="10" y="20" font-size="15" font-weight="bold">${esc(title)}</text>`);
  y += 10;
  parts.push(`<text x="10" y="${y}" font-size="13" font-weight="bold">Throughput (M records/s; grey: no-op gRPC ceiling)</text>`);
  y += 10;
  const maxT = Math.max(1, ...thr.map((r) => Math.max(r.recordsPerSec, r.ceilingRecordsPerSec ?? 0))) / 1e6;
  const colour = (r: Row): string =>
    r.kind === "peer"
      ? "#d9822b"
      : r.kind === "consume"
        ? "#2b8a3e"
        : r.kind === "cluster"
          ? "#7048e8"
          : r.kind === "kafka"
            ? "#c2255c"
            : "#1971c2";
  for (const r of thr) {
    const v = r.recordsPerSec / 1e6;
    parts.push(`<text x="${label - 6}" y="${y + 16}" font-size="11" text-anchor="end">${esc(`${r.name} (${r.brokerRuntime})`)}</text>`);
    if (r.ceilingRecordsPerSec)
      parts.push(
        `<rect x="${label}" y="${y + 3}" width="${((r.ceilingRecordsPerSec / 1e6 / maxT) * barW).toFixed(1)}" height="${rowH - 6}" fill="#ced4da"/>`,
      );
    parts.push(`<rect x="${label}" y="${y + 7}" width="${((v / maxT) * barW).toFixed(1)}" height="${rowH - 14}" fill="${colour(r)}"/>`);
    parts.push(
      `<text x="${label + (Math.max(v, (r.ceilingRecordsPerSec ?? 0) / 1e6) / maxT) * barW + 4}" y="${y + 16}" font-size="11">${v.toFixed(2)}${r.ceilingRecordsPerSec ? ` / ${(r.ceilingRecordsPerSec / 1e6).toFixed(2)}` : ""}</text>`,
    );
    y += rowH;
  }
  y += 30;
  parts.push(`<text x="10" y="${y}" font-size="13" font-weight="bold">Latency percentiles (ms, log scale): p50, p95, p99, p99.9</text>`);
  y += 10;
  const pcts = ["p50", "p95", "p99", "p999"] as const;
  const colours = ["#1971c2", "#4dabf7", "#f08c00", "#e03131"];
  const maxL = Math.max(1, ...latRows.map((r) => r.latencyMs!.p999));
  const scale = (ms: number): number => (Math.log10(1 + ms * 10) / Math.log10(1 + maxL * 10)) * barW;
  for (const r of latRows) {
    parts.push(
      `<text x="${label - 6}" y="${y + 20}" font-size="11" text-anchor="end">${esc(`${r.name} (${r.brokerRuntime}) ${r.kind === "e2e" ? "e2e" : "request"}`)}</text>`,
    );
    pcts.forEach((k, i) => {
      const v = r.latencyMs![k];
      parts.push(`<rect x="${label}" y="${y + 3 + i * 7}" width="${scale(v).toFixed(1)}" height="6" fill="${colours[i]}"/>`);
      parts.push(`<text x="${label + scale(v) + 4}" y="${y + 9 + i * 7}" font-size="8">${v.toFixed(2)}</text>`);
    });
    y += 34;
  }
  y += 10;
  pcts.forEach((k, i) =>
    parts.push(
      `<rect x="${label + i * 80}" y="${y}" width="10" height="10" fill="${colours[i]}"/><text x="${label + i * 80 + 14}" y="${y + 9}" font-size="11">${k === "p999" ? "p99.9" : k}</text>`,
    ),
  );
  y += 20;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" viewBox="0 0 ${W} ${y}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>${parts.join("")}</svg>\n`;
}

// ---------------------------------------------------------------------------------------------

export async function runSuite(o: Options): Promise<Row[]> {
  const runtimes = o.brokerRuntime.split(",").map((s) => s.trim()) as Runtime[];
  const only = new Set(o.only.split(",").map((s) => s.trim()));
  const unknown = [...only].filter((x) => !SCENARIOS.includes(x));
  if (unknown.length) throw new Error(`--only: unknown scenario(s) ${unknown.join(", ")} (scenarios: ${SCENARIOS.join(", ")})`);
  const runs = o.quick ? 1 : o.runs;
  const scale = o.recordsScale * (o.quick ? 0.25 : 1);
  const prods = only.has("produce") ? produceScenarios(scale) : [];
  type Job = () => Promise<Row | Row[]>;
  const jobs: Job[] = [];
  for (const rt of runtimes) {
    for (const s of prods) jobs.push(() => produce(rt, s, runs));
    if (only.has("consume")) {
      jobs.push(() => consume(rt, 100, "none", "fetch", scaled(4_000_000, scale, 1000), runs));
      jobs.push(() => consume(rt, 100, "none", "subscribe", scaled(4_000_000, scale, 1000), runs));
      jobs.push(() => consume(rt, 100, "lz4", "subscribe", scaled(4_000_000, scale, 1000), runs));
      jobs.push(() => consume(rt, 1024, "none", "subscribe", scaled(1_000_000, scale, 500), runs));
    }
    if (only.has("e2e")) jobs.push(() => e2e(rt, 100_000, Math.max(2, Math.round(10 * scale)), "none", runs));
    if (only.has("cluster")) jobs.push(() => cluster(rt, o.clusterBrokers, scaled(2_000_000, scale, 1000), runs));
    if (only.has("kafka")) jobs.push(() => kafka(rt, scaled(2_000_000, scale, 1000), scaled(100_000, scale, 1000), runs));
  }
  if (only.has("peers") && o.peers) jobs.push(() => peers(o));
  if (only.has("txn")) jobs.push(() => txnConsume(scaled(1_000_000, scale, 1000), runs));
  const tools: SuiteTools = { runTool, withBroker, progress };
  for (const rt of runtimes) {
    if (only.has("sweep")) jobs.push(() => sweepScenario(tools, rt, scale, runs));
    if (only.has("partitions")) jobs.push(() => partitionsScenario(tools, rt, scaled(4_000_000, scale, 1000), runs));
  }
  if (runtimes.includes("node") && !process.env["RILL_BENCH_NODE_MAIN"]) buildForNode();
  steps = jobs.length;
  const rows: Row[] = [];
  for (const job of jobs) {
    step++;
    const r = await job();
    rows.push(...(Array.isArray(r) ? r : [r]));
    for (const x of Array.isArray(r) ? r : [r])
      progress(
        x.unavailable
          ? `=> ${x.name} (${x.brokerRuntime}): not available (${x.unavailable})`
          : `=> ${x.name} (${x.brokerRuntime}): ${(x.recordsPerSec / 1e6).toFixed(2)}M records/s${x.ratioToCeiling ? `, ${x.ratioToCeiling.toFixed(2)} of the ceiling` : ""}${x.latencyMs ? `, p50 ${x.latencyMs.p50.toFixed(2)} ms, p99 ${x.latencyMs.p99.toFixed(2)} ms` : ""}${x.rssPeakMiB !== undefined ? `, broker RSS peak ${x.rssPeakMiB.toFixed(0)} MiB` : ""}`,
      );
  }
  return rows;
}

/** Writes `<label>-sweep.svg` (latency against throughput) when the sweep ran. */
function writeSweepSvg(out: string, label: string, rows: Row[], date: string): void {
  const svg = suiteSweepSvg(rows, `Latency against throughput, 100 B records, ${date.slice(0, 10)} (medians per step)`);
  if (svg) nodeFs.writeFileSync(path.join(out, `${label}-sweep.svg`), svg);
}

/** `--from-json FILE`: renders the table and chart of an earlier run again (e.g. after a fix here). */
function rerender(file: string, o: Options): void {
  const j = JSON.parse(nodeFs.readFileSync(file, "utf8")) as Record<string, unknown> & { rows: Row[] };
  resummarize(j.rows);
  const meta = { ...j, label: o.label, json: path.relative(root, path.resolve(file)) };
  const out = path.resolve(root, o.out);
  nodeFs.writeFileSync(path.join(out, `${o.label}.md`), markdown(j.rows, meta));
  nodeFs.writeFileSync(
    path.join(out, `${o.label}.svg`),
    svgChart(j.rows, `Rill benchmarks, ${String(j["date"]).slice(0, 10)}, ${String(j["machine"]).split(",")[0]}`),
  );
  writeSweepSvg(out, o.label, j.rows, String(j["date"]));
  process.stderr.write(`rendered ${file} to ${o.out}/${o.label}.md and .svg\n`);
}

async function main(): Promise<void> {
  const fromJson = process.argv.indexOf("--from-json");
  if (fromJson >= 0) {
    const argv = process.argv.slice(2).filter((_, i) => i + 2 !== fromJson && i + 2 !== fromJson + 1);
    return rerender(process.argv[fromJson + 1]!, parseArgs(argv, defaults, import.meta.url));
  }
  const o = parseArgs(process.argv.slice(2), defaults, import.meta.url);
  const loadStart = loadAverage();
  const date = new Date().toISOString();
  const rows = await runSuite(o);
  const meta = {
    date,
    machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, ${os.type()} ${os.release()}`,
    clientRuntime: runtimeName(),
    command: `bun bench/suite.ts ${process.argv.slice(2).join(" ")}`.trim(),
    runs: o.quick ? 1 : o.runs,
    label: o.label,
    loadAverageStart: loadStart,
    loadAverageEnd: loadAverage(),
  };
  const out = path.resolve(root, o.out);
  nodeFs.mkdirSync(out, { recursive: true });
  const jsonFile = path.join(out, `${date.slice(0, 19).replace(/:/g, "")}-${o.brokerRuntime.replace(/,/g, "+")}.json`);
  nodeFs.writeFileSync(jsonFile, JSON.stringify({ ...meta, targets: targets(rows), rows }, null, 2) + "\n");
  const md = markdown(rows, { ...meta, json: path.relative(root, jsonFile) });
  nodeFs.writeFileSync(path.join(out, `${o.label}.md`), md);
  nodeFs.writeFileSync(
    path.join(out, `${o.label}.svg`),
    svgChart(rows, `Rill benchmarks, ${date.slice(0, 10)}, broker ${o.brokerRuntime}, ${meta.machine.split(",")[0]}`),
  );
  writeSweepSvg(out, o.label, rows, date);
  process.stdout.write(md);
  process.stderr.write(`wrote ${path.relative(root, jsonFile)}, ${o.out}/${o.label}.md, ${o.out}/${o.label}.svg\n`);
}

if (isMain(import.meta.url, "suite.ts")) await main();
