/**
 * A partition reassignment under the replication throttle (issue 21): how close the move's rate
 * stays to `leader.replication.throttled.rate` / `follower.replication.throttled.rate`, and how
 * much a steady producer loses while it runs.
 *
 *   bun bench/reassign-throttle.ts [--rate-mib 10] [--move-mib 1000] [--producer-mib 4]
 *     [--record-size 1024] [--window-s 30] [--runs 1] [--broker-runtime bun|node|deno] [--json FILE]
 *
 * Each run starts a fresh 3-node cluster (bench/cluster.ts: combined broker + controller nodes)
 * with both throttles at `--rate-mib` MiB/s on every node, then:
 * 1. topic `move` (1 partition, RF 2) is filled with `--move-mib` MiB (uncompressed records of
 *    `--record-size` bytes, 100 per batch, acks=leader to its leader) and waited in sync;
 * 2. a producer (the SDK's, acks=all, idempotent) writes `--producer-mib` MiB/s of records of
 *    `--record-size` bytes to topic `load` (3 partitions, RF 3, min.insync.replicas 2) on an
 *    open-loop schedule (every 10 ms what is due, at most 20,000 records waiting); `--producer-mib 0`:
 *    as fast as it can (closed loop, 5,000 records in flight);
 * 3. after a 5 s warm-up and a `--window-s` window "before", `move-0` gets the third broker as a
 *    new replica (AlterPartitionReassignments [a, b] -> [a, b, c]): only that replica is throttled;
 * 4. until ListPartitionReassignments is empty, every 500 ms the new replica's log size is read
 *    from its data dir (the sum of its `.log` segment files: the follower's log growth, not a
 *    broker metric — Rill has no replication byte counter); the move's rate over each whole
 *    `--window-s` window from the move's start, and its deviation from the throttle (goal within
 *    10%); the first window includes the throttle's burst (one second's worth);
 * 5. the producer's acknowledged MiB/s during the move ÷ in the window before it (goal >= 0.8),
 *    and per window.
 * The load average (`uptime`'s) is printed before and after each run. With `--runs` > 1, the
 * medians of the per-run figures. Nothing is asserted: a benchmark, run by hand (a run of the
 * defaults takes about 2.5 minutes and needs ~3.5 GiB of disk in the temporary folder).
 */
import * as nodeFs from "node:fs";
import * as path from "node:path";
import { Admin } from "../src/client/admin.ts";
import { Producer } from "../src/client/producer.ts";
import { startCluster, type Cluster } from "./cluster.ts";
import { isMain, loadAverage, makeValues, MiB, median, parseArgs, preProduce } from "./lib.ts";

const defaults = {
  rateMib: 10,
  moveMib: 1000,
  producerMib: 4,
  recordSize: 1024,
  windowS: 30,
  runs: 1,
  brokerRuntime: "bun" as "bun" | "node" | "deno",
  json: "",
};
type Options = typeof defaults;

const WARMUP_MS = 5_000;
const SAMPLE_MS = 500;

/** One window of the move. */
interface MoveWindow {
  readonly fromS: number;
  readonly toS: number;
  /** The new replica's log growth over the window, MiB/s. */
  readonly moveMibPerS: number;
  /** (moveMibPerS - rate) / rate. */
  readonly deviation: number;
  /** The producer's acknowledged MiB/s over the window. */
  readonly producerMibPerS: number;
}

/** What one run measured. */
interface RunResult {
  readonly loadBefore: number[];
  readonly loadAfter: number[];
  readonly moveBytes: number;
  readonly moveSeconds: number;
  /** Whole-move average, MiB/s. */
  readonly moveMibPerS: number;
  readonly windows: MoveWindow[];
  /** Largest |deviation| over the whole windows. */
  readonly worstDeviation: number;
  readonly producerBeforeMibPerS: number;
  readonly producerDuringMibPerS: number;
  /** During ÷ before. */
  readonly producerRatio: number;
  readonly producerErrors: number;
  readonly firstProducerError: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The folder of partition `name` under `dataDir` (or one folder below it), or null. */
function findPartitionDir(dataDir: string, name: string): string | null {
  if (!nodeFs.existsSync(dataDir)) return null;
  for (const e of nodeFs.readdirSync(dataDir, { withFileTypes: true })) {
    if (!e.isDirectory()) continue;
    if (e.name === name) return path.join(dataDir, e.name);
    const below = path.join(dataDir, e.name, name);
    if (nodeFs.existsSync(below)) return below;
  }
  return null;
}

/** Bytes of the `.log` segment files in `dir` (0 when it does not exist yet). */
function logBytes(dir: string | null): number {
  if (dir === null) return 0;
  let n = 0;
  try {
    for (const f of nodeFs.readdirSync(dir)) if (f.endsWith(".log")) n += nodeFs.statSync(path.join(dir, f)).size;
  } catch {
    // removed or renamed meanwhile
  }
  return n;
}

/** Linear interpolation of the sampled (t, bytes) series at `t`. */
function bytesAt(samples: readonly (readonly [number, number])[], t: number): number {
  let prev = samples[0]!;
  for (const s of samples) {
    if (s[0] >= t) {
      if (s[0] === prev[0]) return s[1];
      return prev[1] + ((s[1] - prev[1]) * (t - prev[0])) / (s[0] - prev[0]);
    }
    prev = s;
  }
  return prev[1];
}

/**
 * The load: acks=all records of `recordSize` bytes to topic `load`, `mibPerS` MiB/s on an
 * open-loop schedule (0: closed loop); acknowledged bytes per 100 ms bucket since `t0`.
 */
function startProducer(
  bootstrap: string,
  o: Options,
  t0: number,
): { ackedBetween: (fromMs: number, toMs: number) => number; errors: () => number; firstError: () => string; stop: () => Promise<void> } {
  const producer = new Producer({ bootstrap, acks: "all", lingerMs: 5, requestTimeoutMs: 30_000 });
  const values = makeValues(1000, o.recordSize);
  const buckets: number[] = [];
  let errors = 0;
  let firstError = "";
  let stopped = false;
  let waiting = 0;
  let issued = 0;
  const chunk = 50;
  const send = (): Promise<void> => {
    const records = Array.from({ length: chunk }, (_, i) => ({ topic: "load", value: values[(issued + i) % values.length]! }));
    issued += chunk;
    waiting += chunk;
    return producer
      .sendBatch(records)
      .then(
        () => {
          const b = Math.floor((Date.now() - t0) / 100);
          buckets[b] = (buckets[b] ?? 0) + chunk * o.recordSize;
        },
        (e: unknown) => {
          errors++;
          if (firstError === "") firstError = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
        },
      )
      .finally(() => (waiting -= chunk));
  };
  const perSecond = (o.producerMib * MiB) / o.recordSize;
  const loop = (async () => {
    const start = Date.now();
    while (!stopped) {
      if (o.producerMib > 0) {
        const due = Math.floor(((Date.now() - start) / 1000) * perSecond);
        while (issued + chunk <= due && waiting < 20_000) void send();
        if (issued + chunk <= due && waiting >= 20_000) issued = due - (due % chunk); // too far behind: skip, do not burst later
        await sleep(10);
      } else {
        while (waiting < 5_000) void send();
        await sleep(1);
      }
    }
  })();
  return {
    ackedBetween: (fromMs, toMs) => {
      let n = 0;
      for (let b = Math.floor(fromMs / 100); b < Math.floor(toMs / 100); b++) n += buckets[b] ?? 0;
      return n;
    },
    errors: () => errors,
    firstError: () => firstError,
    stop: async () => {
      stopped = true;
      await loop;
      await producer.close();
    },
  };
}

async function waitFor<T>(what: string, ms: number, fn: () => Promise<T | null | false>): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown = null;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== null && v !== false) return v;
    } catch (e) {
      last = e;
    }
    await sleep(250);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? ` (${String(last)})` : ""}`);
}

async function runOnce(o: Options, run: number): Promise<RunResult> {
  const rate = o.rateMib * MiB;
  const loadBefore = loadAverage();
  console.log(`run ${run + 1}: load average ${loadBefore.join(" ")}; starting 3 nodes with both throttles at ${o.rateMib} MiB/s`);
  const c: Cluster = await startCluster(o.brokerRuntime, 3, 60_000, [
    "--set",
    `leader.replication.throttled.rate=${rate}`,
    "--set",
    `follower.replication.throttled.rate=${rate}`,
  ]);
  const bootstrap = c.addresses.join(",");
  const admin = new Admin({ bootstrap, requestTimeoutMs: 30_000, retry: { retries: 20, backoffMsMax: 500 } });
  let producer: ReturnType<typeof startProducer> | null = null;
  try {
    await admin.createTopics([
      { name: "move", partitions: 1, replicationFactor: 2, configs: { "min.insync.replicas": "1" } },
      { name: "load", partitions: 3, replicationFactor: 3, configs: { "min.insync.replicas": "2" } },
    ]);
    const describe = async (topic: string) => (await admin.describeTopics([topic], { includeConfigs: false }))[0]!.partitions;
    const move0 = await waitFor("move-0 led with 2 in sync", 60_000, async () => {
      const p = (await describe("move"))[0]!;
      return p.leader >= 0 && p.isr.length === 2 ? p : null;
    });
    await waitFor("load led with 3 in sync", 60_000, async () =>
      (await describe("load")).every((p) => p.leader >= 0 && p.isr.length === 3),
    );
    const tf = Date.now();
    const records = Math.ceil((o.moveMib * MiB) / o.recordSize / 100) * 100;
    await preProduce(c.addresses[move0.leader - 1]!, {
      topic: "move",
      records,
      recordSize: o.recordSize,
      batchRecords: 100,
      partitions: 1,
      compression: "none",
    });
    const leaderDir = findPartitionDir(c.dataDirs[move0.leader - 1]!, "move-0");
    const followerId = move0.replicas.find((r) => r !== move0.leader)!;
    const followerDir = findPartitionDir(c.dataDirs[followerId - 1]!, "move-0");
    const moveBytes = logBytes(leaderDir);
    await waitFor("the follower of move-0 to hold the whole log", 300_000, async () => logBytes(followerDir) >= moveBytes);
    console.log(
      `  move-0 on [${move0.replicas.join(",")}] (leader ${move0.leader}) filled with ${(moveBytes / MiB).toFixed(0)} MiB in ${((Date.now() - tf) / 1000).toFixed(1)} s`,
    );

    const t0 = Date.now();
    producer = startProducer(bootstrap, o, t0);
    const windowMs = o.windowS * 1000;
    await sleep(WARMUP_MS + windowMs);
    const target = [1, 2, 3].find((id) => !move0.replicas.includes(id))!;
    const targetData = c.dataDirs[target - 1]!;
    const moveStart = Date.now() - t0;
    const [altered] = await admin.alterPartitionReassignments([{ topic: "move", partition: 0, replicas: [...move0.replicas, target] }]);
    if (altered!.error) throw altered!.error;
    console.log(`  moving move-0 onto broker ${target} at +${(moveStart / 1000).toFixed(1)} s`);
    const samples: [number, number][] = [[moveStart, 0]];
    let targetDir: string | null = null;
    let done = false;
    const watcher = (async () => {
      while (!done) {
        const listed = await admin.listPartitionReassignments([{ topic: "move" }]).catch(() => null);
        if (listed !== null && listed.length === 0) done = true;
        await sleep(1000);
      }
    })();
    let lastPrint = moveStart;
    while (!done) {
      await sleep(SAMPLE_MS);
      targetDir ??= findPartitionDir(targetData, "move-0");
      const now = Date.now() - t0;
      samples.push([now, logBytes(targetDir)]);
      if (now - lastPrint >= 10_000) {
        lastPrint = now;
        const [ta, ba] = samples[Math.max(0, samples.length - 21)]!;
        console.log(
          `  +${((now - moveStart) / 1000).toFixed(0)} s: ${(logBytes(targetDir) / MiB).toFixed(0)} of ${(moveBytes / MiB).toFixed(0)} MiB moved, ${((logBytes(targetDir) - ba) / MiB / ((now - ta) / 1000)).toFixed(2)} MiB/s over the last 10 s`,
        );
      }
    }
    await watcher;
    const moveEnd = Date.now() - t0;
    const moved = logBytes(targetDir);
    samples.push([moveEnd, moved]);
    await sleep(1000);
    const p = producer;
    producer = null;
    await p.stop();

    const windows: MoveWindow[] = [];
    for (let from = moveStart; from + windowMs <= moveEnd; from += windowMs) {
      const mibPerS = (bytesAt(samples, from + windowMs) - bytesAt(samples, from)) / MiB / o.windowS;
      windows.push({
        fromS: (from - moveStart) / 1000,
        toS: (from + windowMs - moveStart) / 1000,
        moveMibPerS: mibPerS,
        deviation: (mibPerS - o.rateMib) / o.rateMib,
        producerMibPerS: p.ackedBetween(from, from + windowMs) / MiB / o.windowS,
      });
    }
    const moveSeconds = (moveEnd - moveStart) / 1000;
    const before = p.ackedBetween(moveStart - windowMs, moveStart) / MiB / o.windowS;
    const during = p.ackedBetween(moveStart, moveEnd) / MiB / moveSeconds;
    return {
      loadBefore,
      loadAfter: loadAverage(),
      moveBytes: moved,
      moveSeconds,
      moveMibPerS: moved / MiB / moveSeconds,
      windows,
      worstDeviation: windows.reduce((w, x) => Math.max(w, Math.abs(x.deviation)), 0),
      producerBeforeMibPerS: before,
      producerDuringMibPerS: during,
      producerRatio: during / before,
      producerErrors: p.errors(),
      firstProducerError: p.firstError(),
    };
  } finally {
    await producer?.stop().catch(() => undefined);
    await admin.close();
    await c.stop();
  }
}

function pct(x: number): string {
  return `${x >= 0 ? "+" : ""}${(x * 100).toFixed(1)}%`;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2), defaults, import.meta.url);
  const results: RunResult[] = [];
  for (let run = 0; run < o.runs; run++) {
    const r = await runOnce(o, run);
    results.push(r);
    console.log(
      `run ${run + 1}: moved ${(r.moveBytes / MiB).toFixed(0)} MiB in ${r.moveSeconds.toFixed(1)} s = ${r.moveMibPerS.toFixed(2)} MiB/s (throttle ${o.rateMib} MiB/s)`,
    );
    for (const w of r.windows)
      console.log(
        `  window ${w.fromS}-${w.toS} s: move ${w.moveMibPerS.toFixed(2)} MiB/s (${pct(w.deviation)}), producer ${w.producerMibPerS.toFixed(2)} MiB/s`,
      );
    console.log(
      `  largest window deviation ±${(r.worstDeviation * 100).toFixed(1)}% (goal within 10%); producer ${r.producerDuringMibPerS.toFixed(2)} MiB/s during the move ÷ ${r.producerBeforeMibPerS.toFixed(2)} MiB/s in the ${o.windowS} s before = ${r.producerRatio.toFixed(3)} (goal >= 0.8); ${r.producerErrors} failed sends${r.firstProducerError ? ` (first: ${r.firstProducerError})` : ""}; load average ${r.loadBefore.join(" ")} -> ${r.loadAfter.join(" ")}`,
    );
  }
  if (results.length > 1)
    console.log(
      `medians of ${results.length} runs: move ${median(results.map((r) => r.moveMibPerS)).toFixed(2)} MiB/s, largest window deviation ±${(median(results.map((r) => r.worstDeviation)) * 100).toFixed(1)}%, producer ratio ${median(results.map((r) => r.producerRatio)).toFixed(3)}`,
    );
  if (o.json) nodeFs.writeFileSync(o.json, `${JSON.stringify({ options: o, results }, null, 2)}\n`);
  if (results.some((r) => r.producerErrors > 0)) process.exitCode = 1;
}

if (isMain(import.meta.url, "reassign-throttle.ts")) await main();
