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
  const a: Args = {
    seed: null,
    regression: null,
    steps: 1000,
    voters: undefined,
    trace: false,
    sweep: false,
    seeds: 10000,
    first: 1,
    disk: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 0) throw new Error(`${flag} needs a non-negative integer`);
      return v;
    };
    switch (flag) {
      case "--seed":
        a.seed = value();
        break;
      case "--regression":
        a.regression = value();
        break;
      case "--steps":
        a.steps = value();
        break;
      case "--voters": {
        const v = value();
        if (v !== 3 && v !== 5) throw new Error("--voters must be 3 or 5");
        a.voters = v;
        break;
      }
      case "--trace":
        a.trace = true;
        break;
      case "--sweep":
        a.sweep = true;
        break;
      case "--seeds":
        a.seeds = value();
        break;
      case "--first":
        a.first = value();
        break;
      case "--disk":
        a.disk = true;
        break;
      default:
        throw new Error(`unknown argument ${flag}`);
    }
  }
  if (!a.sweep && a.seed === null && a.regression === null) throw new Error("give --seed N, --regression N or --sweep");
  return a;
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
