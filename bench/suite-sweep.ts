/**
 * The suite's scenarios of issue 20 (bench/suite.ts runs them; they live here to keep suite.ts
 * readable):
 *
 * `sweep`: latency against throughput (bench/producer-sweep.ts) for one broker (acks=leader, one
 * partition) and for 3 brokers with RF=3 and acks=all (3 partitions, one producer per leader),
 * interleaved in each run: the closed-loop maximum, then 10%…100% of it and 100k records/s, on an
 * open-loop schedule. Per step the median over runs of each figure; the targets are the RF=3
 * request p99 at 70% of its maximum and the end-to-end p99 at 100k records/s.
 *
 * `partitions`: produce 100 B batches spread over 1,000 partitions by 4 producers beside one
 * partition by one producer (fresh broker each, interleaved runs, the ratio of the medians), and
 * consume (one Subscribe stream) of 1,000 partitions beside one partition. Each row carries the
 * broker's peak RSS.
 */
import { median } from "./lib.ts";
import { sweepSvg, type SweepSeries } from "./sweep-chart.ts";
import type { SweepStep } from "./producer-sweep.ts";
import type { Row } from "./suite.ts";

type Runtime = "bun" | "node" | "deno";

/** What the suite lends these scenarios: running a tool, a fresh broker, progress lines. */
export interface SuiteTools {
  runTool(file: string, args: string[], timeoutS: number, keepFailed?: boolean): Promise<Record<string, unknown>>;
  withBroker<T>(runtime: Runtime, fn: (address: string, pid: number) => Promise<T>): Promise<{ value: T; rssPeakMiB: number }>;
  progress(msg: string): void;
}

type Pcts = { avg: number; p50: number; p95: number; p99: number; p999: number; max: number };

/** One step of a sweep row: the medians over runs. */
export interface SweepRowStep {
  kind: SweepStep["kind"];
  fraction: number;
  offeredRecordsPerSec: number;
  achievedRecordsPerSec: number;
  requestMs: Pcts;
  e2eMs: Pcts;
}

/** The sweep of a suite row. */
export interface SweepSummary {
  maxRecordsPerSec: number;
  steps: SweepRowStep[];
}

const PCT_KEYS = ["avg", "p50", "p95", "p99", "p999", "max"] as const;

function medianPcts(xs: readonly Pcts[]): Pcts {
  return Object.fromEntries(PCT_KEYS.map((k) => [k, median(xs.map((x) => x[k]))])) as Pcts;
}

/**
 * Per step, the median over runs. Steps are matched by what they offered — a fraction of the
 * maximum, or a fixed rate — not by position: a fixed rate sorts among the fractions wherever
 * each run's maximum puts it. Steps missing from some run are left out.
 */
export function medianSweep(runs: readonly Record<string, unknown>[]): SweepSummary {
  const key = (s: SweepStep): string => (s.kind === "extra" ? `x${s.offeredRecordsPerSec}` : `f${s.fraction.toFixed(6)}`);
  const byKey = new Map<string, SweepStep[]>();
  for (const r of runs) for (const s of r["steps"] as SweepStep[]) byKey.set(key(s), [...(byKey.get(key(s)) ?? []), s]);
  const steps = [...byKey.values()]
    .filter((at) => at.length === runs.length)
    .map(
      (at): SweepRowStep => ({
        kind: at[0]!.kind,
        fraction: median(at.map((s) => s.fraction)),
        offeredRecordsPerSec: median(at.map((s) => s.offeredRecordsPerSec ?? NaN)),
        achievedRecordsPerSec: median(at.map((s) => s.achievedRecordsPerSec)),
        requestMs: medianPcts(at.map((s) => s.requestMs)),
        e2eMs: medianPcts(at.map((s) => s.e2eMs)),
      }),
    );
  return {
    maxRecordsPerSec: median(runs.map((r) => r["maxRecordsPerSec"] as number)),
    steps: steps.sort((a, b) => a.offeredRecordsPerSec - b.offeredRecordsPerSec),
  };
}

/** The step at `fraction` of the maximum (a ladder step), or the fixed step at `rate`. */
export function stepAt(s: SweepSummary, at: { fraction: number } | { rate: number }): SweepRowStep | undefined {
  return "fraction" in at
    ? s.steps.find((x) => x.kind === "fraction" && Math.abs(x.fraction - at.fraction) < 1e-6)
    : s.steps.find((x) => x.kind === "extra" && Math.abs(x.offeredRecordsPerSec - at.rate) < 1e-6);
}

const SWEEP_SETUPS = [
  { key: "1", name: "sweep 100 B, 1 broker acks=leader", args: ["--local-brokers", "1", "--acks", "leader"] },
  { key: "3", name: "sweep 100 B, 3 brokers RF=3 acks=all", args: ["--local-brokers", "3", "--replication-factor", "3", "--acks", "all"] },
] as const;

/** The `sweep` rows: one per setup, the two setups interleaved in each run. */
export async function sweepScenario(t: SuiteTools, rt: Runtime, scale: number, runs: number): Promise<Row[]> {
  const stepSeconds = Math.min(4, Math.max(0.5, 4 * scale));
  const common = [
    "--steps",
    "10",
    "--step-seconds",
    String(stepSeconds),
    "--warmup-seconds",
    String(stepSeconds / 4),
    "--max-seconds",
    String(stepSeconds),
    "--extra-rates",
    "100000",
    "--record-size",
    "100",
    "--batch-records",
    "1000",
    "--compression",
    "none",
    "--broker-runtime",
    rt,
    "--svg",
    "",
  ];
  const results = new Map<string, Record<string, unknown>[]>(SWEEP_SETUPS.map((s) => [s.key, []]));
  const failures = new Map<string, string>();
  for (let run = 1; run <= runs; run++) {
    for (const s of SWEEP_SETUPS) {
      if (failures.has(s.key)) continue;
      t.progress(`${s.name} (${rt}) run ${run}/${runs}`);
      try {
        const r = await t.runTool("bench/producer-sweep.ts", [...s.args, ...common], 120 + 12 * (stepSeconds + 40));
        results.get(s.key)!.push(r);
      } catch (e) {
        failures.set(s.key, e instanceof Error ? e.message : String(e));
      }
    }
  }
  return SWEEP_SETUPS.map((s): Row => {
    const rs = results.get(s.key)!;
    const command = `bun bench/producer-sweep.ts ${[...s.args, ...common.slice(0, -2)].join(" ")}`;
    const base = {
      kind: "sweep" as const,
      name: s.name,
      brokerRuntime: rt,
      recordSize: 100,
      compression: "none",
      mode: "batches",
      records: 0,
      command,
      durability:
        s.key === "3" ? "acks=all (replicated to min.insync.replicas before the ack); fsync every 1 s" : "acks=leader; fsync every 1 s",
    };
    if (rs.length === 0)
      return {
        ...base,
        recordsPerSec: NaN,
        payloadMiBPerSec: NaN,
        unavailable: failures.get(s.key) ?? "no run",
        runs: [],
        loadAverage: [],
      };
    const sweep = medianSweep(rs);
    const at70 = stepAt(sweep, { fraction: 0.7 });
    return {
      ...base,
      records: median(rs.map((r) => (r["steps"] as SweepStep[]).reduce((a, x) => a + x.records, (r["max"] as SweepStep).records))),
      recordsPerSec: sweep.maxRecordsPerSec,
      payloadMiBPerSec: (sweep.maxRecordsPerSec * 100) / (1 << 20),
      ...(at70 ? { latencyMs: at70.requestMs, latencyKind: "produce request at 70% of the maximum (due to ack, open loop)" } : {}),
      ...(rs.some((r) => r["brokerRssPeakMiB"] !== undefined)
        ? { rssPeakMiB: Math.max(...rs.map((r) => (r["brokerRssPeakMiB"] as number | undefined) ?? 0)) }
        : {}),
      sweep,
      runs: rs,
      loadAverage: [median(rs.map((r) => (r["loadAverage"] as number[])[0]!))],
    };
  });
}

/** A sweep row's summary and 70% latency computed again from its runs (`--from-json` after a fix here). */
export function resummarize(rows: Row[]): void {
  for (const r of rows) {
    if (r.kind !== "sweep" || r.runs.length === 0) continue;
    r.sweep = medianSweep(r.runs);
    const at70 = stepAt(r.sweep, { fraction: 0.7 });
    if (at70) r.latencyMs = at70.requestMs;
  }
}

/** `partitions`: produce over 1,000 partitions by 4 producers ÷ 1 partition by 1, and consume of both. */
export async function partitionsScenario(t: SuiteTools, rt: Runtime, records: number, runs: number): Promise<Row[]> {
  const base = [
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
    // Untimed first: the broker's first append to each of the 1,000 partitions (its epoch
    // entry, its cache) and its compilers' warm-up are not in the measured run (1,000 requests of
    // 1,000 records reach every partition once).
    "--warmup-records",
    String(Math.min(records, 1_000_000)),
  ];
  const setups = [
    { key: "1", name: "produce 100 B batches none, 1 partition, 1 producer", args: ["--partitions", "1", "--producers", "1"] },
    { key: "1000", name: "produce 100 B batches none, 1,000 partitions, 4 producers", args: ["--partitions", "1000", "--producers", "4"] },
  ];
  const produced = new Map<string, { r: Record<string, unknown>; rss: number }[]>(setups.map((s) => [s.key, []]));
  for (let run = 1; run <= runs; run++) {
    for (const s of setups) {
      t.progress(`${s.name} (${rt}) run ${run}/${runs}`);
      const b = await t.withBroker(rt, (address) => t.runTool("bench/producer-perf.ts", [...base, ...s.args, "--broker", address], 600));
      produced.get(s.key)!.push({ r: b.value, rss: b.rssPeakMiB });
    }
  }
  const rows: Row[] = setups.map((s) => {
    const rs = produced.get(s.key)!;
    const lat = (k: string): number => median(rs.map((x) => (x.r["latencyMs"] as Record<string, number>)[k]!));
    const rps = median(rs.map((x) => x.r["recordsPerSec"] as number));
    return {
      kind: "partitions",
      name: s.name,
      brokerRuntime: rt,
      recordSize: 100,
      compression: "none",
      mode: "batches",
      records,
      recordsPerSec: rps,
      payloadMiBPerSec: (rps * 100) / (1 << 20),
      latencyMs: { avg: lat("avg"), p50: lat("p50"), p95: lat("p95"), p99: lat("p99"), p999: lat("p999") },
      latencyKind: "produce request (send to ack, 8 in flight per producer)",
      rssPeakMiB: Math.max(...rs.map((x) => x.rss)),
      durability: "acks=leader, ack before fsync; fsync every 1 s",
      runs: rs.map((x) => ({ ...x.r, brokerRssPeakMiB: x.rss })),
      loadAverage: [median(rs.map((x) => (x.r["loadAverage"] as number[])[0]!))],
      command: `bun bench/producer-perf.ts ${[...base, ...s.args].join(" ")} --broker-runtime ${rt}`,
    };
  });
  rows[1]!.ratioToOnePartition = rows[1]!.recordsPerSec / rows[0]!.recordsPerSec;
  for (const partitions of [1, 1000]) {
    const name = `consume 100 B subscribe none, ${partitions === 1 ? "1 partition" : "1,000 partitions"}`;
    const args = [...base.slice(0, 8), "--partitions", String(partitions), "--mode", "subscribe", "--runs", String(runs)];
    t.progress(`${name} (${rt})`);
    const b = await t.withBroker(rt, (address, pid) =>
      t.runTool("bench/consumer-perf.ts", [...args, "--broker", address, "--broker-pid", String(pid)], 600),
    );
    rows.push({
      kind: "partitions",
      name,
      brokerRuntime: rt,
      recordSize: 100,
      compression: "none",
      mode: "subscribe",
      records,
      recordsPerSec: b.value["recordsPerSec"] as number,
      payloadMiBPerSec: b.value["payloadMiBPerSec"] as number,
      rssPeakMiB: b.rssPeakMiB,
      ...(b.value["brokerRssMiB"] ? { rssConsumePeakMiB: (b.value["brokerRssMiB"] as { consumePeak: number }).consumePeak } : {}),
      runs: b.value["runResults"] as Record<string, unknown>[],
      loadAverage: [(b.value["loadAverage"] as number[])[0]!],
      command: `bun bench/consumer-perf.ts ${args.join(" ")} --broker-runtime ${rt}`,
    });
  }
  const [c1, c1000] = rows.slice(2);
  c1000!.ratioToOnePartition = c1000!.recordsPerSec / c1!.recordsPerSec;
  return rows;
}

interface Target {
  what: string;
  goal: string;
  measured: string;
  met: boolean | null;
}

const ms = (x: number): string => `${x.toFixed(2)} ms`;

/** Issue 20's targets of these scenarios (none when they did not run). */
export function issue20Targets(rows: readonly Row[]): Target[] {
  const out: Target[] = [];
  const sweep = (key: "1" | "3"): Row | undefined =>
    rows.find((r) => r.kind === "sweep" && r.name === SWEEP_SETUPS.find((s) => s.key === key)!.name && r.sweep);
  const rf3 = sweep("3");
  const at70 = rf3?.sweep && stepAt(rf3.sweep, { fraction: 0.7 });
  if (at70)
    out.push({
      what: `RF=3 acks=all per-request p99 at 70% of its measured maximum (${Math.round(at70.offeredRecordsPerSec)} of ${Math.round(rf3!.sweep!.maxRecordsPerSec)} records/s offered)`,
      goal: "≤ 50 ms",
      measured: ms(at70.requestMs.p99),
      met: at70.requestMs.p99 <= 50,
    });
  for (const [key, goal, what] of [
    ["1", 5, "one broker"],
    ["3", 10, "RF=3 acks=all"],
  ] as const) {
    const r = sweep(key);
    const at = r?.sweep && stepAt(r.sweep, { rate: 100_000 });
    if (at)
      out.push({
        what: `end-to-end p99 at 100k records/s, ${what} (sweep, open loop)`,
        goal: `≤ ${goal} ms`,
        measured: ms(at.e2eMs.p99),
        met: at.e2eMs.p99 <= goal,
      });
  }
  const one = sweep("1");
  if (one?.sweep && rf3?.sweep)
    out.push({
      what: "RF=3 acks=all ÷ one broker, closed-loop maximum of the sweep (reader running; same run)",
      goal: "(≥ 0.40 for produce alone)",
      measured: (rf3.sweep.maxRecordsPerSec / one.sweep.maxRecordsPerSec).toFixed(2),
      met: null,
    });
  const spread = rows.find((r) => r.kind === "partitions" && r.mode === "batches" && r.ratioToOnePartition !== undefined);
  if (spread)
    out.push({
      what: "1,000 partitions, 4 producers ÷ one partition, one producer (produce 100 B, same run)",
      goal: "≥ 0.7",
      measured: spread.ratioToOnePartition!.toFixed(2),
      met: spread.ratioToOnePartition! >= 0.7,
    });
  const cons = rows.find((r) => r.kind === "partitions" && r.mode === "subscribe" && r.ratioToOnePartition !== undefined);
  if (cons)
    out.push({
      what: "consume (Subscribe) 1,000 partitions ÷ one partition, same run",
      goal: "–",
      measured: cons.ratioToOnePartition!.toFixed(2),
      met: null,
    });
  return out;
}

/** The sweep section of the Markdown table: per setup, its steps' medians. */
export function sweepMarkdown(rows: readonly Row[], svgName: string): string[] {
  const sweeps = rows.filter((r) => r.kind === "sweep" && r.sweep);
  if (sweeps.length === 0) return [];
  const f = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : "–");
  const lines = [
    ``,
    `## Latency against throughput (sweep)`,
    ``,
    `The maximum is measured closed loop; each step then offers a fixed rate on an open-loop schedule (latency from each record's scheduled time: bench/sweep-load.ts). Medians over runs per step. Chart: [${svgName}](${svgName}).`,
    ``,
  ];
  for (const r of sweeps) {
    lines.push(`**${r.name}** (${r.brokerRuntime}): maximum ${(r.sweep!.maxRecordsPerSec / 1e6).toFixed(3)}M records/s`, ``);
    lines.push(`| step | offered records/s | achieved records/s | request p50 / p99 / p99.9 ms | end-to-end p50 / p99 / p99.9 ms |`);
    lines.push(`|---|---:|---:|---|---|`);
    for (const s of r.sweep!.steps)
      lines.push(
        `| ${s.kind === "extra" ? "fixed" : `${Math.round(s.fraction * 100)}%`} | ${Math.round(s.offeredRecordsPerSec)} | ${Math.round(s.achievedRecordsPerSec)} | ${f(s.requestMs.p50)} / ${f(s.requestMs.p99)} / ${f(s.requestMs.p999)} | ${f(s.e2eMs.p50)} / ${f(s.e2eMs.p99)} / ${f(s.e2eMs.p999)} |`,
      );
    lines.push(``);
  }
  return lines;
}

/** The sweep chart of the suite's rows (both setups), or null when the sweep did not run. */
export function suiteSweepSvg(rows: readonly Row[], title: string): string | null {
  const series: SweepSeries[] = rows
    .filter((r) => r.kind === "sweep" && r.sweep)
    .map((r) => ({ name: `${r.name.replace(/^sweep 100 B, /, "")} (${r.brokerRuntime})`, points: r.sweep!.steps }));
  return series.length ? sweepSvg(series, title) : null;
}
