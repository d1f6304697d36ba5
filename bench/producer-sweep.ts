/**
 * Latency against throughput (`rill bench producer --sweep`): first the maximum, then a ladder of
 * fixed offered rates, each step's request and end-to-end latency percentiles, as a table, JSON
 * and an SVG chart.
 *
 *   bun bench/producer-sweep.ts [--local-brokers 1|3] [--acks leader|all|none] [--steps 10 (0: extra rates only)]
 *     [--step-seconds 4] [--warmup-seconds 1] [--max-seconds 4] [--extra-rates 100000,...]
 *     [--record-size 100] [--batch-records 1000] [--compression none|lz4] [--linger-ms 1]
 *     [--in-flight 8] [--in-flight-max 64] [--partitions 0] [--producers 0] [--replication-factor 0]
 *     [--brokers HOST:PORT,...] [--broker-runtime bun|node|deno] [--svg bench/results/sweep.svg]
 *     [--json FILE] [--title TEXT] [--broker-set KEY=VALUE,...]
 *
 * 1. It starts `--local-brokers` brokers on 127.0.0.1 (one, or a cluster of combined
 *    broker+controller nodes as bench/cluster.ts does), or uses `--brokers`, and creates a topic
 *    of `--partitions` partitions (0: one per broker) with `--replication-factor` (0: the number
 *    of brokers, at most 3; with `--brokers`, the brokers' default). One producer per partition
 *    leader (`--producers`, 0: that many) sends only to the partitions its broker leads, and a
 *    Subscribe stream per leader reads everything back in the same process.
 * 2. The maximum: `--warmup-seconds` then `--max-seconds` (measured) closed loop, each producer
 *    keeping `--in-flight` requests of `--batch-records` records in flight.
 * 3. The ladder: `--steps` steps at 1/steps … 100% of that maximum (plus `--extra-rates`, in
 *    records/s), in increasing order, each `--step-seconds` long on an open-loop schedule: every
 *    record has a scheduled send time, what is due is sent every `--linger-ms` (batches of at
 *    most `--batch-records`, at most `--in-flight-max` requests waiting per producer), and
 *    latency counts from the schedule, so a producer held back by a slow broker cannot hide it
 *    (no coordinated omission). See sweep-load.ts for what each histogram measures. A step ends
 *    when every request is answered and every record read back; its first `--warmup-seconds`
 *    are not measured.
 *
 * The topic keeps at most 256 MiB per partition (segment.bytes 64 MiB, retention.bytes 256 MiB;
 * brokers it starts check retention every 2 s), so a long sweep does not fill the disk. The
 * brokers' peak RSS (VmRSS every 100 ms) is in the result when it started them.
 */
import * as nodeFs from "node:fs";
import * as path from "node:path";
import { startCluster } from "./cluster.ts";
import { createTopic, isMain, loadAverage, parseArgs, sampleRss } from "./lib.ts";
import { leadersByAddress, startBrokerProcess } from "./producer-perf.ts";
import { runtimeName } from "./runtime.ts";
import { sweepSvg, type SweepSeries } from "./sweep-chart.ts";
import { SweepLoad, VALUE_HEADER_BYTES, type LoadTarget, type StepResult } from "./sweep-load.ts";

export const producerSweepDefaults = {
  /** Brokers to start on 127.0.0.1 (ignored with `brokers`). */
  localBrokers: 1,
  /** Comma-separated HOST:PORT of running brokers; empty: start `localBrokers`. */
  brokers: "",
  brokerRuntime: "bun" as "bun" | "node" | "deno",
  acks: "leader" as "leader" | "all" | "none",
  /** Ladder steps: 1/steps, 2/steps, … 1 of the measured maximum; 0: only `extraRates`. */
  steps: 10,
  stepSeconds: 4,
  warmupSeconds: 1,
  maxSeconds: 4,
  /** Further offered rates (records/s, comma-separated), e.g. 100000. */
  extraRates: "",
  recordSize: 100,
  batchRecords: 1000,
  compression: "none" as "none" | "lz4",
  lingerMs: 1,
  /** Requests in flight per producer while measuring the maximum (closed loop). */
  inFlight: 8,
  /** Requests in flight per producer at most on the open-loop schedule. */
  inFlightMax: 64,
  /** 0: one per broker. */
  partitions: 0,
  /** 0: one per partition leader. */
  producers: 0,
  /** 0: the number of brokers it starts (at most 3), or the brokers' default with `brokers`. */
  replicationFactor: 0,
  /** The chart; empty: none. */
  svg: "bench/results/sweep.svg",
  json: "",
  /** The chart's series name; empty: from the setup ("1 broker", "3 brokers RF=3 acks=all"). */
  title: "",
  /** Broker settings for the brokers it starts, `KEY=VALUE` comma-separated (each a `--set`). */
  brokerSet: "",
};
export type ProducerSweepOptions = typeof producerSweepDefaults;

/** One step of the ladder in the result. */
export interface SweepStep extends StepResult {
  /** Offered rate ÷ the measured maximum. */
  fraction: number;
  /** How the rate was chosen: a fraction of the maximum, or one of `--extra-rates`. */
  kind: "fraction" | "extra";
}

function kebab(k: string): string {
  return k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** Checks option values, naming the option; returns the extra rates and the brokers given. */
export function checkSweepOptions(o: ProducerSweepOptions): { extraRates: number[]; brokers: string[] } {
  const int = (k: keyof ProducerSweepOptions, min: number, max = Number.MAX_SAFE_INTEGER): void => {
    const v = o[k] as number;
    if (!Number.isSafeInteger(v) || v < min || v > max)
      throw new Error(`--${kebab(k)}: expected an integer in [${min}, ${max}], got ${String(o[k])}`);
  };
  int("localBrokers", 1, 9);
  int("steps", 0, 100);
  int("recordSize", VALUE_HEADER_BYTES);
  int("batchRecords", 1, 100_000);
  int("inFlight", 1, 1024);
  int("inFlightMax", 1, 4096);
  int("partitions", 0, 100_000);
  int("producers", 0, 64);
  int("replicationFactor", 0, 9);
  const secs = (k: keyof ProducerSweepOptions, min: number): void => {
    const v = o[k] as number;
    if (!Number.isFinite(v) || v < min || v > 3600)
      throw new Error(`--${kebab(k)}: expected seconds in [${min}, 3600], got ${String(o[k])}`);
  };
  secs("stepSeconds", 0.05);
  secs("maxSeconds", 0.05);
  secs("warmupSeconds", 0);
  secs("lingerMs", 0);
  if (o.warmupSeconds >= o.stepSeconds)
    throw new Error(`--warmup-seconds: must be shorter than --step-seconds (${o.warmupSeconds} >= ${o.stepSeconds})`);
  const choice = (k: keyof ProducerSweepOptions, values: readonly string[]): void => {
    if (!values.includes(String(o[k]))) throw new Error(`--${kebab(k)}: expected one of ${values.join(", ")}, got ${String(o[k])}`);
  };
  choice("acks", ["leader", "all", "none"]);
  choice("compression", ["none", "lz4"]);
  choice("brokerRuntime", ["bun", "node", "deno"]);
  if (o.acks === "none") throw new Error("--acks none: the sweep measures acknowledged requests (leader or all)");
  const extraRates = String(o.extraRates)
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
    .map((s) => {
      const r = Number(s);
      if (!Number.isFinite(r) || r <= 0) throw new Error(`--extra-rates: expected records/s > 0, comma-separated, got "${s}"`);
      return r;
    });
  brokerSetArgs(o.brokerSet);
  if (o.steps === 0 && extraRates.length === 0) throw new Error("--steps 0: give the rates to run with --extra-rates");
  const brokers = String(o.brokers)
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  for (const b of brokers)
    if (!/^[^\s:]+:\d+$/.test(b) && !/^\[[^\]]+\]:\d+$/.test(b))
      throw new Error(`--brokers: expected HOST:PORT[,HOST:PORT...], got "${b}"`);
  return { extraRates, brokers };
}

/** The ladder: fractions k/steps of `max`, and the extra rates, in increasing order of rate. */
export function ladder(
  max: number,
  steps: number,
  extraRates: readonly number[],
): { rate: number; fraction: number; kind: SweepStep["kind"] }[] {
  const out = [
    ...Array.from({ length: steps }, (_, i) => ({ rate: (max * (i + 1)) / steps, fraction: (i + 1) / steps, kind: "fraction" as const })),
    ...extraRates.map((rate) => ({ rate, fraction: rate / max, kind: "extra" as const })),
  ];
  return out.sort((a, b) => a.rate - b.rate);
}

/** Brokers it started (or none) and the addresses to use. */
interface Setup {
  readonly addresses: string[];
  readonly pids: number[];
  stop(): Promise<void>;
}

const RETENTION_ARGS = ["--set", "log.retention.check.interval.ms=2000"];

/** `--broker-set`'s settings as `--set` arguments. */
export function brokerSetArgs(spec: string): string[] {
  return String(spec)
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
    .flatMap((kv) => {
      if (!/^[a-z0-9.]+=.+$/.test(kv)) throw new Error(`--broker-set: expected KEY=VALUE[,KEY=VALUE...], got "${kv}"`);
      return ["--set", kv];
    });
}

async function setUp(o: ProducerSweepOptions, given: string[]): Promise<Setup> {
  if (given.length > 0) return { addresses: given, pids: [], stop: async () => {} };
  const args = [...RETENTION_ARGS, ...brokerSetArgs(o.brokerSet)];
  if (o.localBrokers === 1) {
    const b = await startBrokerProcess(o.brokerRuntime, { args });
    return { addresses: [b.address], pids: [b.proc.pid!], stop: b.stop };
  }
  const c = await startCluster(o.brokerRuntime, o.localBrokers, 60_000, args);
  return { addresses: c.addresses, pids: c.pids, stop: c.stop };
}

/** The topic, its producers (one per leader unless told) and readers (one per leader). */
async function target(o: ProducerSweepOptions, addresses: string[], started: boolean): Promise<LoadTarget> {
  const topic = `sweep-${Date.now()}`;
  const partitions = o.partitions || addresses.length;
  const rf = o.replicationFactor || (started ? Math.min(3, addresses.length) : 0);
  await createTopic(addresses[0]!, topic, partitions, { "segment.bytes": String(64 << 20), "retention.bytes": String(256 << 20) }, rf);
  const leaders =
    addresses.length > 1
      ? [...(await leadersByAddress(addresses[0]!, topic)).entries()]
      : [[addresses[0]!, Array.from({ length: partitions }, (_, i) => i)] as [string, number[]]];
  const producers = Array.from({ length: o.producers || leaders.length }, (_, i) => {
    const [address, parts] = leaders[i % leaders.length]!;
    return { address, partitions: parts };
  });
  return { topic, producers, readers: leaders.map(([address, parts]) => ({ address, partitions: parts })) };
}

/** The series name of a setup, for the table and the chart. */
export function setupName(o: ProducerSweepOptions, brokers: number, rf: number): string {
  const set = o.brokerSet ? ` (${o.brokerSet})` : "";
  return o.title || `${brokers} broker${brokers > 1 ? "s" : ""}${rf > 1 ? ` RF=${rf}` : ""} acks=${o.acks}${set}`;
}

function line(s: string, r: StepResult): string {
  const f = (x: number): string => x.toFixed(2).padStart(8);
  const rate = (x: number | null): string => (x === null ? "max" : Math.round(x).toString()).padStart(9);
  return (
    `${s.padEnd(7)} ${rate(r.offeredRecordsPerSec)} ${Math.round(r.achievedRecordsPerSec).toString().padStart(9)} ` +
    `${f(r.requestMs.p50)} ${f(r.requestMs.p99)} ${f(r.requestMs.p999)}   ${f(r.e2eMs.p50)} ${f(r.e2eMs.p99)} ${f(r.e2eMs.p999)}` +
    `   ${r.sendLagMsMax.toFixed(1).padStart(7)}${r.errors ? `  errors ${r.errors}` : ""}`
  );
}

/** The table printed at the end (also the lines printed as steps complete). */
export function sweepTable(r: Record<string, unknown>): string {
  const head =
    `step    offered/s achieved/s  request ms: p50      p99    p99.9   e2e ms:  p50      p99    p99.9   lag ms\n` + `${"-".repeat(112)}\n`;
  const max = r["max"] as StepResult;
  const steps = r["steps"] as SweepStep[];
  return (
    `${r["name"]}: ${r["recordSize"]} B records, ${r["compression"]}, ${r["partitions"]} partition(s), ${r["producerCount"]} producer(s); ` +
    `maximum ${Math.round(max.achievedRecordsPerSec)} records/s\n` +
    head +
    [line("closed", max), ...steps.map((s) => line(s.kind === "extra" ? "fixed" : `${Math.round(s.fraction * 100)}%`, s))].join("\n") +
    "\n"
  );
}

/** Runs the sweep and returns its result (JSON-ready). */
export async function runProducerSweep(o: ProducerSweepOptions): Promise<Record<string, unknown>> {
  const { extraRates, brokers: given } = checkSweepOptions(o);
  const setup = await setUp(o, given);
  const rss = setup.pids.map((pid) => sampleRss(pid, 100));
  let load: SweepLoad | null = null;
  try {
    const t = await target(o, setup.addresses, given.length === 0);
    const rf = o.replicationFactor || (given.length === 0 ? Math.min(3, setup.addresses.length) : 0);
    const name = setupName(o, setup.addresses.length, rf);
    load = await SweepLoad.open(t, { ...o, closedInFlight: o.inFlight });
    process.stderr.write(`${name}: measuring the maximum (${o.warmupSeconds} s warm-up, then ${o.maxSeconds} s closed loop)\n`);
    const max = await load.step({ rate: null, seconds: o.warmupSeconds + o.maxSeconds, warmupSeconds: o.warmupSeconds });
    process.stderr.write(`  ${line("closed", max)}\n`);
    const steps: SweepStep[] = [];
    for (const s of ladder(max.achievedRecordsPerSec, o.steps, extraRates)) {
      const r = await load.step({ rate: s.rate, seconds: o.stepSeconds, warmupSeconds: o.warmupSeconds });
      steps.push({ ...r, fraction: s.fraction, kind: s.kind });
      process.stderr.write(`  ${line(s.kind === "extra" ? "fixed" : `${Math.round(s.fraction * 100)}%`, r)}\n`);
    }
    const peaks = rss.map((x) => x.stop().peakMiB);
    return {
      tool: "producer-sweep",
      runtime: runtimeName(),
      ...o,
      name,
      brokers: setup.addresses.join(","),
      brokerCount: setup.addresses.length,
      brokerRuntime: given.length > 0 ? "external" : o.brokerRuntime,
      replicationFactor: rf,
      partitions: t.producers.length === 0 ? 0 : new Set(t.producers.flatMap((p) => p.partitions)).size,
      producerCount: t.producers.length,
      maxRecordsPerSec: max.achievedRecordsPerSec,
      max,
      steps,
      errors: max.errors + steps.reduce((a, s) => a + s.errors, 0),
      ...(peaks.length ? { brokerRssPeakMiB: Math.max(...peaks) } : {}),
      loadAverage: loadAverage(),
    };
  } finally {
    load?.close();
    rss.forEach((x) => x.stop());
    await setup.stop();
  }
}

/** The chart's series of a result. */
export function sweepSeries(r: Record<string, unknown>): SweepSeries {
  return { name: String(r["name"]), points: r["steps"] as SweepStep[] };
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2), producerSweepDefaults, import.meta.url);
  const r = await runProducerSweep(o);
  process.stdout.write(sweepTable(r));
  if (r["brokerRssPeakMiB"] !== undefined) process.stdout.write(`broker peak RSS ${(r["brokerRssPeakMiB"] as number).toFixed(0)} MiB\n`);
  if (o.svg) {
    nodeFs.mkdirSync(path.dirname(path.resolve(o.svg)), { recursive: true });
    nodeFs.writeFileSync(
      o.svg,
      sweepSvg([sweepSeries(r)], `Latency against throughput: ${r["name"]}, ${o.recordSize} B records, ${o.compression}`),
    );
    process.stdout.write(`wrote ${o.svg}\n`);
  }
  if (o.json) nodeFs.writeFileSync(o.json, JSON.stringify(r, null, 2) + "\n");
  if ((r["errors"] as number) > 0) process.exitCode = 1;
}

if (isMain(import.meta.url, "producer-sweep.ts")) await main();
