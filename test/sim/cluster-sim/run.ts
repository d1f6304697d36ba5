/**
 * Runs of the cluster simulator: one seed, a sweep of many, and the regression seeds kept in
 * test/sim/cluster-sim/regression-seeds.json (seeds that once found a bug, replayed by the test).
 */
import * as fs from "node:fs";
import { type ClusterSimResult, type ClusterSimSettings, clusterSettingsForSeed, runClusterSim } from "./cluster.ts";

/** An entry of regression-seeds.json: the seed, what it found, and the settings it ran with. */
export interface ClusterRegressionSeed {
  readonly seed: number;
  readonly found: string;
  readonly settings?: Partial<ClusterSimSettings>;
}

/** A seed that found a bug not fixed yet, and the check it breaks. */
export interface ClusterOpenSeed extends ClusterRegressionSeed {
  readonly check: string;
}

function regressionFile(): { seeds: ClusterRegressionSeed[]; open: ClusterOpenSeed[] } {
  const url = new URL("./regression-seeds.json", import.meta.url);
  return JSON.parse(fs.readFileSync(url, "utf8")) as { seeds: ClusterRegressionSeed[]; open: ClusterOpenSeed[] };
}

/** Seeds of fixed bugs: each must pass. */
export function clusterRegressionSeeds(): ClusterRegressionSeed[] {
  return regressionFile().seeds;
}

/** Seeds of bugs found and not fixed yet. */
export function clusterOpenSeeds(): ClusterOpenSeed[] {
  return regressionFile().open;
}

/**
 * What an entry's settings leave out is off: the workloads added after it was found (groups,
 * idempotent producers, admin changes, disk faults) would change its run.
 */
export const LEGACY_SETTINGS: Partial<ClusterSimSettings> = {
  groups: 0,
  idempotentProducers: 0,
  weakAcksProducers: 0,
  admin: false,
  diskFaults: false,
  duplicateRate: 0,
  clientCuts: false,
  fullDisks: false,
  transactionalProducers: 0,
  reassignments: false,
  brokerOnlyNodes: 0,
  lingerMs: 0,
};

export function regressionClusterSettings(e: ClusterRegressionSeed): ClusterSimSettings {
  return clusterSettingsForSeed(e.seed, { ...LEGACY_SETTINGS, ...(e.settings ?? {}) });
}

/** A failed seed with its violations and the command that replays it. */
export function formatClusterFailure(r: ClusterSimResult): string {
  const lines = [
    `seed ${r.settings.seed}: ${r.violations.length} violation(s); replay: npm run sim -- --cluster --seed ${r.settings.seed} --trace`,
  ];
  for (const v of r.violations.slice(0, 10)) lines.push(`  [${v.atMs} ms] ${v.check}: ${v.detail}`);
  if (r.violations.length > 10) lines.push(`  ... and ${r.violations.length - 10} more`);
  return lines.join("\n");
}

/** What a sweep found and how fast it ran. */
export interface ClusterSweepResult {
  readonly seeds: number;
  readonly failures: ClusterSimResult[];
  readonly wallMs: number;
  readonly simMs: number;
  readonly totals: Record<string, number>;
}

/** Runs seeds first..first+count-1 (or until `deadlineMs` of wall time passes). */
export async function clusterSweep(
  first: number,
  count: number,
  over: Partial<ClusterSimSettings> = {},
  onResult: (r: ClusterSimResult) => void = () => {},
  deadlineMs = Number.POSITIVE_INFINITY,
): Promise<ClusterSweepResult> {
  const t0 = performance.now();
  const failures: ClusterSimResult[] = [];
  const totals: Record<string, number> = {};
  let seeds = 0;
  let simMs = 0;
  for (let seed = first; seed < first + count; seed++) {
    if (performance.now() - t0 > deadlineMs) break;
    const r = await runClusterSim(clusterSettingsForSeed(seed, over));
    seeds++;
    simMs += r.stats.simMs;
    for (const [k, v] of Object.entries(r.stats)) totals[k] = (totals[k] ?? 0) + v;
    if (r.violations.length > 0) failures.push(r);
    onResult(r);
  }
  return { seeds, failures, wallMs: performance.now() - t0, simMs, totals };
}
