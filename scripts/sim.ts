/**
 * Replays one seed of the Raft cluster simulator, or sweeps many.
 *
 *   npx tsx scripts/sim.ts --seed N [--steps S] [--voters 3|5] [--trace]
 *   npx tsx scripts/sim.ts --regression N [--trace]      (an entry of test/sim/regression-seeds.json)
 *   npx tsx scripts/sim.ts --sweep [--seeds 10000] [--first 1] [--steps 1000]
 *   --disk (with --seed or --sweep): voters on DiskRaftStorage over crash-losing in-memory disks
 *
 * A replay prints the settings, the trace (with --trace) and the outcome; the exit code is 1 on
 * a violation. A sweep prints progress, every failure with its replay command, and a summary.
 */
import { Simulation } from "../test/sim/cluster.ts";
import { choice, integer, scriptCommand } from "./lib/command-line.ts";
import { formatFailure, regressionSeeds, regressionSettings, sweep } from "../test/sim/run.ts";
import { formatSettings, settingsForSeed, type SimSettings } from "../test/sim/settings.ts";

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
    .option("--disk", "voters on DiskRaftStorage over crash-losing in-memory disks");
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
  }>();
  if (!o.sweep && o.seed === undefined && o.regression === undefined) command.error("give --seed N, --regression N or --sweep");
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
  };
}

function replay(a: Args): number {
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

function runSweep(a: Args): number {
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

const args = parseArgs(process.argv.slice(2));
process.exitCode = args.sweep ? runSweep(args) : replay(args);
