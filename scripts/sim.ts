/**
 * Replays one seed of the Raft cluster simulator, or sweeps many.
 *
 *   npx tsx scripts/sim.ts --seed N [--steps S] [--voters 3|5] [--trace]
 *   npx tsx scripts/sim.ts --regression N [--trace]      (an entry of test/sim/regression-seeds.json)
 *   npx tsx scripts/sim.ts --sweep [--seeds 10000] [--first 1] [--steps 1000]
 *   --disk (with --seed or --sweep): voters on DiskRaftStorage over crash-losing in-memory disks
 *
 *   npx tsx scripts/sim.ts --cluster --seeds N [--first S] [--jobs J]   the whole-cluster simulator (issue 19), a
 *                                                             sweep (J processes, each a slice of the seeds)
 *   npx tsx scripts/sim.ts --cluster --seed N [--trace]      one seed, with its event trace
 *   npx tsx scripts/sim.ts --cluster --regression N          an entry of test/sim/cluster-sim/regression-seeds.json
 *   (with --cluster: --partitions P, --producers N, --produce-every MS, --linger-ms MS, --fault-ms MS, --heal-ms MS,
 *    --speed batched|single: issue 19's speed workload (test/sim/cluster-sim/speed.ts),
 *    --plant B: run with planted bug B of test/sim/cluster-sim/plants.ts, to see which seed catches it,
 *    --laggards: the laggard fault schedule, --legacy: the foundation's workload only,
 *    --set JSON: any ClusterSimSettings, e.g. '{"duplicateRate":0,"clientCuts":false,"fullDisks":false}')
 *
 * A replay prints the settings, the trace (with --trace) and the outcome; the exit code is 1 on
 * a violation. A sweep prints progress, every failure with its replay command, and a summary.
 */
import { spawn } from "node:child_process";
import { register } from "node:module";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { ClusterSimSettings } from "../test/sim/cluster-sim/cluster.ts";
import type { SimSettings } from "../test/sim/settings.ts";
import { SPEED_WORKLOADS, type SpeedWorkload } from "../test/sim/cluster-sim/speed.ts";
import { choice, integer, scriptCommand } from "./lib/command-line.ts";

// Under Node, the simulators (imported below, once registered) are compiled without tsx's
// keepNames: see lib/ts-hooks.mjs. SIM_TSX=1 leaves them to tsx.
if (process.versions.bun === undefined && !("Deno" in globalThis) && process.env.SIM_TSX !== "1")
  register(new URL("./lib/ts-hooks.mjs", import.meta.url));

interface Args {
  seed: number | null;
  regression: number | null;
  steps: number;
  voters: 3 | 5 | undefined;
  trace: boolean;
  sweep: boolean;
  seeds: number;
  first: number;
  disk: boolean;
  jobs: number;
  cluster: ClusterArgs | null;
}

/** Options of the whole-cluster simulator (--cluster). */
interface ClusterArgs {
  readonly over: Partial<ClusterSimSettings>;
  /** A planted bug (test/sim/cluster-sim/plants.ts) to run with, or null. */
  readonly plant: number | null;
  /** The foundation's workload (LEGACY_SETTINGS) under the other settings. */
  readonly legacy: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  const command = scriptCommand(import.meta.url)
    .option("--seed <n>", "replay this seed", integer(0))
    .option("--regression <n>", "replay this entry of test/sim/regression-seeds.json", integer(0))
    .option("--steps <n>", "steps per run", integer(0), 1000)
    .option("--voters <n>", "voters (3 or 5; default: chosen by the seed)", choice(["3", "5"] as const))
    .option("--trace", "print every step of a replay")
    .option("--sweep", "run many seeds")
    .option("--seeds <n>", "seeds of a sweep", integer(0), 10000)
    .option("--first <n>", "first seed of a sweep", integer(0), 1)
    .option("--disk", "voters on DiskRaftStorage over crash-losing in-memory disks")
    .option("--jobs <n>", "--cluster sweep: processes running slices of the seeds at once", integer(1), 1)
    .option("--cluster", "the whole-cluster simulator (3 nodes of real metadata, controller and replication)")
    .option("--partitions <n>", "--cluster: partitions of the topic", integer(1))
    .option("--producers <n>", "--cluster: acks=all producers (one write in flight each)", integer(1))
    .option("--produce-every <ms>", "--cluster: mean pause between one producer's writes", integer(1))
    .option(
      "--linger-ms <ms>",
      "--cluster: batching acks=all producers with this linger.ms (settings.lingerMs; default 0: one record per request)",
      integer(0),
    )
    .option(
      "--speed <workload>",
      "--cluster: issue 19's speed workload (test/sim/cluster-sim/speed.ts; other options apply over it): batched or single",
      choice(["batched", "single"] as const),
    )
    .option("--fault-ms <ms>", "--cluster: simulated time with faults", integer(0))
    .option("--heal-ms <ms>", "--cluster: simulated time after healing, before the checks", integer(0))
    .option("--power-loss-one-in <n>", "--cluster: one crash in N is a power loss (default 3)", integer(1))
    .option("--replica-fetch-max-bytes <n>", "--cluster: replica.fetch.max.bytes of the followers", integer(1))
    .option("--plant <n>", "--cluster: plant bug N of test/sim/cluster-sim/plants.ts and plants-reassign.ts (1-20)", integer(1))
    .option(
      "--transactional-producers <n>",
      "--cluster: transactional producers and READ_COMMITTED readers (settings.transactionalProducers; default 2, 0: none)",
      integer(0),
    )
    .option("--no-transactional-offsets", "--cluster: transactions commit no group offsets (settings.transactionalOffsets false)")
    .option("--laggards", "--cluster: the laggard fault schedule instead of the random one (settings.laggards)")
    .option("--reassignments", "--cluster: partition reassignments by the admin (settings.reassignments; on by default)")
    .option("--no-reassignments", "--cluster: no partition reassignments (settings.reassignments false)")
    .option("--broker-only-nodes <n>", "--cluster: broker-only nodes (observers) besides the 3 voters", integer(0))
    .option("--legacy", "--cluster: the foundation's workload only (acks=all producers and consumers; LEGACY_SETTINGS)")
    .option("--set <json>", "--cluster: settings to override, as JSON (e.g. '{\"duplicateRate\":0.05}')");
  command.parse([...argv], { from: "user" });
  const o = command.opts<{
    seed?: number;
    regression?: number;
    steps: number;
    voters?: "3" | "5";
    trace?: boolean;
    sweep?: boolean;
    seeds: number;
    first: number;
    disk?: boolean;
    jobs: number;
    cluster?: boolean;
    partitions?: number;
    producers?: number;
    produceEvery?: number;
    lingerMs?: number;
    speed?: SpeedWorkload;
    faultMs?: number;
    healMs?: number;
    plant?: number;
    powerLossOneIn?: number;
    replicaFetchMaxBytes?: number;
    laggards?: boolean;
    transactionalProducers?: number;
    transactionalOffsets?: boolean;
    reassignments?: boolean;
    brokerOnlyNodes?: number;
    legacy?: boolean;
    set?: string;
  }>();
  if (!o.sweep && !o.cluster && o.seed === undefined && o.regression === undefined)
    command.error("give --seed N, --regression N or --sweep");
  const over: { -readonly [K in keyof ClusterSimSettings]?: ClusterSimSettings[K] } = o.speed ? { ...SPEED_WORKLOADS[o.speed] } : {};
  if (o.partitions !== undefined) over.partitions = o.partitions;
  if (o.producers !== undefined) over.producers = o.producers;
  if (o.produceEvery !== undefined) over.produceEveryMs = o.produceEvery;
  if (o.lingerMs !== undefined) over.lingerMs = o.lingerMs;
  if (o.faultMs !== undefined) over.faultMs = o.faultMs;
  if (o.healMs !== undefined) over.healMs = o.healMs;
  if (o.powerLossOneIn !== undefined) over.powerLossOneIn = o.powerLossOneIn;
  if (o.replicaFetchMaxBytes !== undefined) over.replicaFetchMaxBytes = o.replicaFetchMaxBytes;
  if (o.laggards === true) over.laggards = true;
  if (o.reassignments !== undefined) over.reassignments = o.reassignments;
  if (o.brokerOnlyNodes !== undefined) over.brokerOnlyNodes = o.brokerOnlyNodes;
  if (o.transactionalProducers !== undefined) over.transactionalProducers = o.transactionalProducers;
  if (o.transactionalOffsets === false) over.transactionalOffsets = false;
  if (o.set !== undefined) Object.assign(over, JSON.parse(o.set) as Partial<ClusterSimSettings>);
  return {
    seed: o.seed ?? null,
    regression: o.regression ?? null,
    steps: o.steps,
    voters: o.voters === undefined ? undefined : o.voters === "3" ? 3 : 5,
    trace: o.trace === true,
    sweep: o.sweep === true,
    seeds: o.seeds,
    first: o.first,
    disk: o.disk === true,
    jobs: o.jobs,
    cluster: o.cluster ? { over, plant: o.plant ?? null, legacy: o.legacy === true } : null,
  };
}

async function replay(a: Args): Promise<number> {
  const { Simulation } = await import("../test/sim/cluster.ts");
  const { formatFailure, regressionSeeds, regressionSettings } = await import("../test/sim/run.ts");
  const { formatSettings, settingsForSeed } = await import("../test/sim/settings.ts");
  const trace = a.trace ? (line: string) => console.log(line) : null;
  let settings: SimSettings;
  if (a.regression !== null) {
    const entry = regressionSeeds().find((e) => e.seed === a.regression);
    if (entry === undefined) throw new Error(`seed ${a.regression} is not in test/sim/regression-seeds.json`);
    console.log(`regression seed ${entry.seed}: ${entry.found}`);
    settings = regressionSettings(entry);
  } else {
    settings = { ...settingsForSeed(a.seed!, a.steps, a.voters), ...(a.disk ? { disk: true } : {}) };
  }
  console.log(`settings: ${formatSettings(settings)}`);
  const r = new Simulation(settings, trace).run();
  console.log(`stats: ${JSON.stringify(r.stats)}`);
  if (r.violation === null) {
    console.log(`seed ${r.settings.seed}: ok`);
    return 0;
  }
  console.log(formatFailure(r, a.regression !== null));
  return 1;
}

async function runSweep(a: Args): Promise<number> {
  const { formatFailure, sweep } = await import("../test/sim/run.ts");
  const every = Math.max(1, Math.floor(a.seeds / 20));
  let done = 0;
  const t0 = performance.now();
  const res = sweep(
    a.first,
    a.seeds,
    a.steps,
    (r) => {
      if (r.violation !== null) console.log(formatFailure(r));
      if (++done % every === 0) {
        const s = ((performance.now() - t0) / 1000).toFixed(1);
        console.log(`${done}/${a.seeds} seeds, ${s}s`);
      }
    },
    a.disk ? { disk: true } : {},
  );
  console.log(
    `sweep: ${res.seeds} seeds x ${res.steps} steps from seed ${a.first}: ${res.failures.length} failures ` +
      `in ${(res.ms / 1000).toFixed(1)}s; max liveness ticks ${res.maxLivenessTicks}; ${JSON.stringify(res.totals)}`,
  );
  return res.failures.length === 0 ? 0 : 1;
}

/** --cluster: one seed with its trace, a regression entry, or a sweep. */
async function runCluster(a: Args, c: ClusterArgs): Promise<number> {
  const { clusterSettingsForSeed, runClusterSim } = await import("../test/sim/cluster-sim/cluster.ts");
  const { LEGACY_SETTINGS, clusterOpenSeeds, clusterRegressionSeeds, clusterSweep, formatClusterFailure, regressionClusterSettings } =
    await import("../test/sim/cluster-sim/run.ts");
  const over = c.legacy ? { ...LEGACY_SETTINGS, ...c.over } : c.over;
  if (c.plant !== null) {
    const { PLANTED_BUGS, plantBug } = await import("../test/sim/cluster-sim/plants.ts");
    plantBug(c.plant);
    console.log(`planted bug ${c.plant}: ${PLANTED_BUGS[c.plant]}`);
  }
  if (a.seed !== null || a.regression !== null) {
    let settings: ClusterSimSettings;
    if (a.regression !== null) {
      const entry = [...clusterRegressionSeeds(), ...clusterOpenSeeds()].find((e) => e.seed === a.regression);
      if (entry === undefined) throw new Error(`seed ${a.regression} is not in test/sim/cluster-sim/regression-seeds.json`);
      console.log(`regression seed ${entry.seed}: ${entry.found}`);
      settings = { ...regressionClusterSettings(entry), ...c.over };
    } else settings = clusterSettingsForSeed(a.seed!, over);
    console.log(`settings: ${JSON.stringify(settings)}`);
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const r = await runClusterSim(settings, a.trace ? (line) => console.log(line) : null);
    const wall = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    console.log(`stats: ${JSON.stringify(r.stats)}`);
    console.log(`trace hash: ${r.traceHash}`);
    // The producers write for faultMs + healMs (then stop; 3 s quiet before the checks).
    const writingS = (settings.faultMs + settings.healMs) / 1000;
    console.log(
      `${(r.stats.produced / writingS).toFixed(0)} records/s produced (${(r.stats.acked / writingS).toFixed(0)}/s acknowledged) ` +
        `over ${writingS.toFixed(1)} simulated s; ${r.stats.events} events, ${((cpuMs * 1000) / r.stats.events).toFixed(1)} µs CPU per event`,
    );
    console.log(
      `${(r.stats.simMs / 1000).toFixed(1)} simulated s in ${(wall / 1000).toFixed(1)} s: ${(r.stats.simMs / wall).toFixed(1)}x ` +
        `(CPU ${(cpuMs / 1000).toFixed(1)} s: ${(r.stats.simMs / cpuMs).toFixed(1)}x per CPU second)`,
    );
    if (r.violations.length === 0) {
      console.log(`seed ${settings.seed}: ok`);
      return 0;
    }
    console.log(formatClusterFailure(r));
    return 1;
  }
  const slice = process.env[SLICE_ENV];
  if (slice !== undefined) {
    // One job of a parallel sweep: its slice of the seeds, reported to the parent.
    const [first, count] = slice.split(":").map(Number) as [number, number];
    const cpu0 = process.cpuUsage();
    const res = await clusterSweep(first, count, over, (r) => {
      if (r.violations.length > 0) report({ failure: formatClusterFailure(r) });
      report({ seed: r.settings.seed });
    });
    const cpu = process.cpuUsage(cpu0);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    report({ done: { seeds: res.seeds, failures: res.failures.length, simMs: res.simMs, cpuMs, totals: res.totals } });
    return 0;
  }
  if (a.jobs > 1) return parallelSweep(a);
  const every = Math.max(1, Math.floor(a.seeds / 20));
  let done = 0;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const res = await clusterSweep(a.first, a.seeds, over, (r) => {
    if (r.violations.length > 0) console.log(formatClusterFailure(r));
    if (++done % every === 0) console.log(`${done}/${a.seeds} seeds, ${((performance.now() - t0) / 1000).toFixed(1)}s`);
  });
  const secs = res.wallMs / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  console.log(
    `cluster sweep: ${res.seeds} seeds from seed ${a.first}: ${res.failures.length} failing in ${secs.toFixed(1)}s ` +
      `(${(res.seeds / secs).toFixed(2)} seeds/s, ${(res.simMs / res.wallMs).toFixed(1)} simulated s per s; ` +
      `CPU ${(cpuMs / 1000).toFixed(1)} s, ${(res.simMs / cpuMs).toFixed(1)} simulated s per CPU s); ${JSON.stringify(res.totals)}`,
  );
  return res.failures.length === 0 ? 0 : 1;
}

/** Set in the jobs of a parallel sweep (`--jobs`): "first:count", the job's seeds. */
const SLICE_ENV = "SIM_SWEEP_SLICE";
/** How a job's lines to its parent start (each then one JSON value: a JobReport). */
const JOB_LINE = "sim-job ";

type JobReport =
  | { failure: string }
  | { seed: number }
  | { done: { seeds: number; failures: number; simMs: number; cpuMs: number; totals: Record<string, number> } };

function report(r: JobReport): void {
  console.log(JOB_LINE + JSON.stringify(r));
}

/**
 * A cluster sweep over `a.jobs` processes, each running this script on a slice of the seeds (as
 * the same command: same settings and planted bug). A seed's run is the same in any process, so
 * the sweep finds what one process would; failures print as they come, the summary sums the jobs.
 */
async function parallelSweep(a: Args): Promise<number> {
  const jobs = Math.min(a.jobs, a.seeds);
  const every = Math.max(1, Math.floor(a.seeds / 20));
  const t0 = performance.now();
  let done = 0;
  let seeds = 0;
  let failures = 0;
  let simMs = 0;
  let cpuMs = 0;
  const totals: Record<string, number> = {};
  const job = (lo: number, count: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
        env: { ...process.env, [SLICE_ENV]: `${lo}:${count}` },
        stdio: ["ignore", "pipe", "inherit"],
      });
      let finished = false;
      createInterface({ input: child.stdout }).on("line", (line) => {
        if (!line.startsWith(JOB_LINE)) return;
        const r = JSON.parse(line.slice(JOB_LINE.length)) as JobReport;
        if ("failure" in r) console.log(r.failure);
        else if ("seed" in r) {
          if (++done % every === 0) console.log(`${done}/${a.seeds} seeds, ${((performance.now() - t0) / 1000).toFixed(1)}s`);
        } else {
          finished = true;
          seeds += r.done.seeds;
          failures += r.done.failures;
          simMs += r.done.simMs;
          cpuMs += r.done.cpuMs;
          for (const [k, v] of Object.entries(r.done.totals)) totals[k] = (totals[k] ?? 0) + v;
        }
      });
      child.on("close", (code) =>
        finished ? resolve() : reject(new Error(`the job of seeds ${lo}..${lo + count - 1} ended (${code}) without its report`)),
      );
    });
  await Promise.all(
    Array.from({ length: jobs }, (_, k) => {
      const lo = a.first + Math.floor((a.seeds * k) / jobs);
      const hi = a.first + Math.floor((a.seeds * (k + 1)) / jobs);
      return job(lo, hi - lo);
    }),
  );
  const wallMs = performance.now() - t0;
  const secs = wallMs / 1000;
  console.log(
    `cluster sweep: ${seeds} seeds from seed ${a.first}: ${failures} failing in ${secs.toFixed(1)}s with ${jobs} jobs ` +
      `(${(seeds / secs).toFixed(2)} seeds/s, ${(simMs / wallMs).toFixed(1)} simulated s per s; ` +
      `CPU ${(cpuMs / 1000).toFixed(1)} s, ${(simMs / cpuMs).toFixed(1)} simulated s per CPU s); ${JSON.stringify(totals)}`,
  );
  return failures === 0 ? 0 : 1;
}

const args = parseArgs(process.argv.slice(2));
if (args.cluster) process.exitCode = await runCluster(args, args.cluster);
else process.exitCode = args.sweep ? await runSweep(args) : await replay(args);
