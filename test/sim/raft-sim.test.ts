/**
 * The Raft simulation in CI: every regression seed, then SIM_SEEDS seeds (default 1,000) of
 * SIM_STEPS steps (default 1,000) from SIM_FIRST_SEED (default 1). Any violation fails with the
 * seed, its fault settings and the command that replays it.
 */
import { describe, expect, it } from "vitest";
import { formatFailure, regressionSeeds, runRegression, sweep } from "./run.ts";

function envInt(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${v}`);
  return n;
}

const SEEDS = envInt("SIM_SEEDS", 1000);
const STEPS = envInt("SIM_STEPS", 1000);
const FIRST = envInt("SIM_FIRST_SEED", 1);

describe("raft simulation", () => {
  it.each(regressionSeeds().map((r) => [r.seed, r] as const))("regression seed %i", (_seed, entry) => {
    const r = runRegression(entry);
    expect(r.violation, formatFailure(r, true)).toBeNull();
  });

  it(`${SEEDS} seeds x ${STEPS} steps: no safety or liveness violation`, { timeout: 600_000 }, () => {
    const res = sweep(FIRST, SEEDS, STEPS);
    const report = res.failures.map((f) => formatFailure(f)).join("\n");
    if (report !== "") console.error(report);
    console.log(
      `raft sim: ${res.seeds} seeds x ${res.steps} steps from seed ${FIRST} in ${(res.ms / 1000).toFixed(1)}s, ` +
        `${res.failures.length} violations; ${res.totals.messages} messages, ${res.totals.applied} entries applied, ` +
        `${res.totals.crashes} crashes, ${res.totals.leaderTerms} leader terms, ` +
        `${res.totals.confChanges} voter changes committed in ${res.totals.seedsWithConfChanges} seeds`,
    );
    // Most seeds change the voters among their crashes and partitions (the others keep them fixed).
    expect(res.totals.seedsWithConfChanges).toBeGreaterThan(SEEDS / 2);
    expect(res.failures.length, report).toBe(0);
  });

  const DISK_SEEDS = envInt("SIM_DISK_SEEDS", 150);
  it(`${DISK_SEEDS} seeds x ${STEPS} steps on DiskRaftStorage over crash-losing disks: no violation`, { timeout: 600_000 }, () => {
    const res = sweep(FIRST, DISK_SEEDS, STEPS, undefined, { disk: true });
    const report = res.failures.map((f) => `${formatFailure(f)} (add --disk to the replay)`).join("\n");
    if (report !== "") console.error(report);
    console.log(
      `raft sim on disk storage: ${res.seeds} seeds x ${res.steps} steps in ${(res.ms / 1000).toFixed(1)}s, ${res.failures.length} violations, ${res.totals.crashes} crashes`,
    );
    expect(res.failures.length, report).toBe(0);
  });
});
