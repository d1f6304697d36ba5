/**
 * The soak test (issue 14; DESIGN.md keeps Bun the broker's default runtime only while it
 * passes): one broker, or a 3-node cluster with --cluster, under steady load for N minutes.
 *
 *   npm run soak -- --minutes N [--runtime bun|node] [--cluster] [--seed S] [--out DIR] [--rate R] [--set k=v ...]
 *
 * Load: idempotent acks=all SDK producers at R records/s (bounded: a producer with 2,000 sends
 * outstanding skips a tick), GroupConsumer members joining and leaving a group, topics created,
 * written and deleted, raw Fetch/Subscribe/Consume/ProduceStream calls cancelled at seeded random
 * moments, and one idle connection per node kept alive by HTTP/2 keepalive pings only. Faults, at
 * seeded times in the first quarter (at least the first minute, at most the first half): broker restarts by SIGTERM (GOAWAY) and kill -9; the idle
 * connection must reconnect within 13 s.
 * Sampled each second: each broker's RSS (/proc/<pid>/status VmRSS), open descriptors
 * (/proc/<pid>/fd), event-loop lag (its /metrics), and produce p99.
 * Checks at the end: no error outside the injected faults (from 1 s before a restart to 15 s
 * after the node served again), every acknowledged record read back with its value, RSS and
 * descriptors below fixed bounds (300 MiB, 256), and over the second half (no faults there) a
 * least-squares slope of RSS less the tail caches' bytes (a bounded pool refilling after the
 * last restart) and of descriptors below a bound (3 MiB/min, 2/min; checked in runs of 8
 * minutes or more, printed always, with the slope of RSS itself).
 * Writes DIR/soak-<runtime>-<single|cluster>.json (the summary; errors the faults explain only
 * counted), .samples.json (every sample) and
 * .svg (the chart);
 * prints the seed; exits 1 when a check fails. --runtime node runs dist/ (npm run build first).
 */
import * as nodeFs from "node:fs";
import * as path from "node:path";
import { InvalidArgumentError } from "commander";
import { soakChart } from "../test/soak/chart.ts";
import { runSoak, type SoakBounds, type SoakResult } from "../test/soak/soak-run.ts";
import { choice, integer, scriptCommand } from "./lib/command-line.ts";

/** The bounds every run is held to (test/soak/README.md says why these). */
const BOUNDS: SoakBounds = { rssMiBMax: 300, fdsMax: 256, rssSlopeMiBPerMinMax: 3, fdSlopePerMinMax: 2, slopeCheckedFromHalfS: 240 };

function positive(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError("expected a number > 0");
  return n;
}

function parseArgs(argv: readonly string[]) {
  const command = scriptCommand(import.meta.url)
    .option("--minutes <n>", "how long the load runs (fractions allowed)", positive, 10)
    .option("--runtime <name>", "the brokers' runtime", choice(["bun", "node"] as const), "bun")
    .option("--cluster", "three nodes instead of one")
    .option("--seed <n>", "seed of the schedule (default: random, printed)", integer(0, 2 ** 32 - 1))
    .option("--out <dir>", "where the JSON and SVG go", ".tmp/soak")
    .option("--rate <n>", "records per second over all producers", integer(1, 100_000), 200)
    .option("--set <k=v...>", "broker settings for every node (e.g. log.tail.cache.total.bytes=8388608)", []);
  command.parse([...argv], { from: "user" });
  const o = command.opts<{
    minutes: number;
    runtime: "bun" | "node";
    cluster?: boolean;
    seed?: number;
    out: string;
    rate: number;
    set: string[];
  }>();
  const set = Object.fromEntries(
    o.set.map((kv) => {
      const at = kv.indexOf("=");
      if (at <= 0) throw new InvalidArgumentError(`--set ${kv}: expected key=value`);
      return [kv.slice(0, at), kv.slice(at + 1)];
    }),
  );
  return { ...o, set, cluster: o.cluster === true, seed: o.seed ?? Math.floor(Math.random() * 2 ** 32) };
}

function fmt(v: number | null, digits = 0): string {
  return v === null ? "-" : v.toFixed(digits);
}

/** The summary lines printed at the end (and kept in the JSON). */
function summaryLines(r: SoakResult): string[] {
  const lines = [
    `soak ${r.options.runtime} ${r.options.cluster ? "cluster" : "single"} ${r.options.minutes} min seed ${r.options.seed}`,
    `produce: ${r.produce.acked} acked, ${r.produce.failed} failed, p99 ${fmt(r.produce.p99Ms, 1)} ms (worst second ${fmt(r.produce.maxSecondP99Ms, 1)} ms); consumed ${r.consumed}`,
    `soak process event-loop delay (its clients time the produce latencies): p99 of each second's longest ${fmt(r.harnessLagMs.p99, 1)} ms, max ${fmt(r.harnessLagMs.max, 1)} ms`,
    `read back: ${r.readBack.checked} checked, ${r.readBack.missing} missing, ${r.readBack.wrong} wrong`,
    `faults: ${r.faults.map((f) => `${f.kind} n${f.node} @${f.start.toFixed(0)}s (${(f.end - f.start).toFixed(1)} s)`).join(", ") || "none"}`,
    `counts: ${Object.entries(r.counts)
      .sort()
      .map(([k, v]) => `${k}=${v}`)
      .join(" ")}`,
    `errors: ${r.errors.length} (${r.errors.filter((e) => !e.excused).length} outside faults)`,
  ];
  for (const n of r.nodes) {
    lines.push(
      `node ${n.id}: RSS start ${fmt(n.rssMiB.start)} end ${fmt(n.rssMiB.end)} max ${fmt(n.rssMiB.max)} MiB, slope ${n.rssSlopeMiBPerMin.toFixed(2)} MiB/min; fds start ${fmt(n.fds.start)} end ${fmt(n.fds.end)} max ${fmt(n.fds.max)}, slope ${n.fdSlopePerMin.toFixed(2)}/min; lag p99 ${fmt(n.lagMs.p99, 1)} max ${fmt(n.lagMs.max, 1)} ms; JS heap start ${fmt(n.heapMiB.start)} end ${fmt(n.heapMiB.end)} max ${fmt(n.heapMiB.max)} MiB, slope ${n.heapSlopeMiBPerMin.toFixed(2)} MiB/min; tail caches start ${fmt(n.tailCacheMiB.start, 1)} end ${fmt(n.tailCacheMiB.end, 1)} MiB, slope ${n.tailCacheSlopeMiBPerMin.toFixed(2)} MiB/min; RSS less tail caches slope ${n.rssLessTailCacheSlopeMiBPerMin.toFixed(2)} MiB/min, of its 30 s minima ${n.rssLessTailCacheFloorSlopeMiBPerMin.toFixed(2)} MiB/min`,
    );
  }
  return lines;
}

/** The errors the faults explain, counted by source and status (the summary JSON stays small). */
function errorsInFaults(errors: SoakResult["errors"]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const e of errors.filter((x) => x.excused)) {
    const status = /\b([A-Z][A-Z_]{3,})\b/.exec(e.message)?.[1] ?? e.message.slice(0, 40);
    const key = `${e.source}: ${status}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

function writeOutputs(r: SoakResult, out: string): string {
  nodeFs.mkdirSync(out, { recursive: true });
  const base = path.join(out, `soak-${r.options.runtime}-${r.options.cluster ? "cluster" : "single"}`);
  const series = (f: (n: SoakResult["samples"][number]["nodes"][number]) => number | null) =>
    r.nodes.map((nd) => ({
      name: `node ${nd.id}`,
      points: r.samples.flatMap((s) => {
        const v = f(s.nodes.find((x) => x.id === nd.id)!);
        return v === null ? [] : [{ t: s.t, v }];
      }),
    }));
  const p99 = r.samples.flatMap((s) => (s.produceP99Ms === null ? [] : [{ t: s.t, v: s.produceP99Ms }]));
  const title = `rill soak: ${r.options.runtime}, ${r.options.cluster ? "3 nodes" : "1 node"}, ${r.options.minutes} min, seed ${r.options.seed} — ${r.failures.length === 0 ? "pass" : "FAIL"}`;
  const svg = soakChart(
    title,
    r.durationS,
    [
      { title: "broker RSS (MiB)", series: series((n) => n.rssMiB) },
      { title: "broker JS heap, heapTotal (MiB)", series: series((n) => n.heapMiB) },
      { title: "tail caches (MiB)", series: series((n) => n.tailCacheMiB ?? null) },
      { title: "open descriptors", series: series((n) => n.fds) },
      { title: "produce p99 per second (ms)", series: [{ name: "p99", points: p99 }] },
      { title: "event-loop lag (ms)", series: series((n) => n.lagMs) },
    ],
    r.faults,
  );
  nodeFs.writeFileSync(`${base}.svg`, svg);
  const { samples, errors, ...rest } = r;
  const summary = { summary: summaryLines(r), ...rest, errors: errors.filter((e) => !e.excused), errorsInFaults: errorsInFaults(errors) };
  nodeFs.writeFileSync(`${base}.json`, `${JSON.stringify(summary, null, 1)}\n`);
  nodeFs.writeFileSync(`${base}.samples.json`, `${JSON.stringify(samples)}\n`);
  return base;
}

async function main(): Promise<number> {
  const a = parseArgs(process.argv.slice(2));
  console.log(
    `soak: seed ${a.seed} (replay: npm run soak -- --minutes ${a.minutes} --runtime ${a.runtime}${a.cluster ? " --cluster" : ""} --seed ${a.seed})`,
  );
  const r = await runSoak({ ...a, bounds: BOUNDS, log: (line) => console.log(line) });
  const base = writeOutputs(r, a.out);
  for (const line of summaryLines(r)) console.log(line);
  for (const e of r.errors.filter((x) => !x.excused).slice(0, 20)) console.log(`error t=${e.t.toFixed(1)}s ${e.source}: ${e.message}`);
  console.log(`wrote ${base}.json, ${base}.samples.json and ${base}.svg`);
  for (const f of r.failures) console.log(`FAIL: ${f}`);
  console.log(`${r.failures.length === 0 ? "PASS" : "FAIL"} (seed ${a.seed})`);
  return r.failures.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
