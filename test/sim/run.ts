/**
 * Entry points shared by the sim test and scripts/sim.ts: run one seed, run many, and describe
 * a failure so that it can be replayed.
 */
import { readFileSync } from "node:fs";
import { Simulation, type SimResult } from "./cluster.ts";
import { formatSettings, settingsForSeed, type SimSettings } from "./settings.ts";

/** A seed that once failed: replayed by every test run. */
export interface RegressionSeed {
  readonly seed: number;
  readonly steps: number;
  /** What it found, and what was fixed. */
  readonly found: string;
  /** Settings at the time, overriding the ones the seed derives today. */
  readonly settings?: Partial<SimSettings>;
}

/** The regression list, test/sim/regression-seeds.json. */
export function regressionSeeds(): RegressionSeed[] {
  const url = new URL("./regression-seeds.json", import.meta.url);
  return (JSON.parse(readFileSync(url, "utf8")) as { seeds: RegressionSeed[] }).seeds;
}

/** The settings of a regression entry: derived from its seed, overridden by those recorded. */
export function regressionSettings(r: RegressionSeed): SimSettings {
  return { ...settingsForSeed(r.seed, r.steps), ...r.settings, seed: r.seed, steps: r.steps };
}

/** Runs a regression entry with its recorded settings. */
export function runRegression(r: RegressionSeed, trace: ((line: string) => void) | null = null): SimResult {
  return new Simulation(regressionSettings(r), trace).run();
}

/** Runs `seed` for `steps` steps (voters chosen by the seed unless given). */
export function runSeed(
  seed: number,
  steps: number,
  voters?: 3 | 5,
  trace: ((line: string) => void) | null = null,
  extra: { disk?: boolean } = {},
): SimResult {
  return new Simulation({ ...settingsForSeed(seed, steps, voters), ...extra }, trace).run();
}

/** A failure report: the seed, the settings, the violation and the command that replays it. */
export function formatFailure(r: SimResult, regression = false): string {
  const s = r.settings;
  const how = regression ? `--regression ${s.seed}` : `--seed ${s.seed} --steps ${s.steps} --voters ${s.voters}`;
  return [
    `SIM FAILURE seed=${s.seed} step=${r.step}`,
    `  settings: ${formatSettings(s)}`,
    `  violation: ${r.violation ?? "none"}`,
    `  replay: npx tsx scripts/sim.ts ${how} --trace`,
  ].join("\n");
}

/** Summary of a sweep. */
export interface SweepResult {
  readonly seeds: number;
  readonly steps: number;
  readonly failures: SimResult[];
  readonly ms: number;
  readonly maxLivenessTicks: number;
  readonly totals: {
    messages: number;
    applied: number;
    crashes: number;
    leaderTerms: number;
    /** Voter changes committed, and seeds that committed at least one. */
    confChanges: number;
    seedsWithConfChanges: number;
    byType: Record<string, number>;
  };
}

/** Runs seeds [first, first + count) for `steps` steps each. */
export function sweep(
  first: number,
  count: number,
  steps: number,
  onResult?: (r: SimResult) => void,
  extra: { disk?: boolean } = {},
): SweepResult {
  const t0 = performance.now();
  const failures: SimResult[] = [];
  let maxLivenessTicks = 0;
  const totals = {
    messages: 0,
    applied: 0,
    crashes: 0,
    leaderTerms: 0,
    confChanges: 0,
    seedsWithConfChanges: 0,
    byType: {} as Record<string, number>,
  };
  for (let seed = first; seed < first + count; seed++) {
    const r = runSeed(seed, steps, undefined, null, extra);
    if (r.violation !== null) failures.push(r);
    maxLivenessTicks = Math.max(maxLivenessTicks, r.stats.livenessTicks);
    totals.messages += r.stats.messagesSent;
    totals.applied += r.stats.applied;
    totals.crashes += r.stats.crashes;
    totals.leaderTerms += r.stats.leaderTerms;
    totals.confChanges += r.stats.confChangesApplied;
    if (r.stats.confChangesApplied > 0) totals.seedsWithConfChanges++;
    for (const [t, n] of Object.entries(r.stats.messagesByType)) totals.byType[t] = (totals.byType[t] ?? 0) + n;
    onResult?.(r);
  }
  return { seeds: count, steps, failures, ms: performance.now() - t0, maxLivenessTicks, totals };
}
