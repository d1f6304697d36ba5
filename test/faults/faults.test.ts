/**
 * The Jepsen-style fault test in CI (issue 6): two short rounds of engine.ts — each a fresh
 * 3-node cluster, topic RF=3 min.insync.replicas=2, producers writing unique values with
 * acks=ALL through random nodes, consumers polling, seeded faults (kill -9, SIGSTOP/SIGCONT,
 * restarts, isolated nodes, cut links) for FAULTS_WINDOW_MS (default 20 s) — then the group
 * coordinator failover scenario (group-failover.ts). Every round must end with 0 anomalies,
 * settle, and take writes again through every node.
 *
 * SEED=n replays the fault schedules (round i uses n + i; printed); `npm run faults -- --rounds
 * N` runs more rounds. No assertion rests on a measured duration: the waits are bounds (90 s to
 * settle, 60 s per failover step) far above what the cluster needs.
 */
import { describe, expect, it } from "vitest";
import { seedFromEnv } from "../../src/base/random.ts";
import { runRound, roundOptions } from "./engine.ts";
import { groupOptions, runGroupFailover } from "./group-failover.ts";
import { formatGroup, formatRound } from "./report.ts";

const SEED = seedFromEnv();
const WINDOW_MS = Number(process.env["FAULTS_WINDOW_MS"] ?? 20_000);
const ROUNDS = 2;
console.log(`faults SEED=${SEED} (window ${WINDOW_MS} ms, ${ROUNDS} rounds)`);

describe("fault test", () => {
  for (let i = 0; i < ROUNDS; i++) {
    const seed = (SEED + i) >>> 0;
    it(`round ${i + 1}: no anomaly under kill -9, pauses, restarts and partitions (SEED=${seed})`, {
      timeout: WINDOW_MS + 240_000,
    }, async () => {
      const r = await runRound(roundOptions({ seed, windowMs: WINDOW_MS }));
      const report = formatRound(r, i + 1);
      console.log(report);
      expect(r.unsettled, report).toBeNull();
      expect(r.probeFailures, report).toEqual([]);
      expect(r.check.counts.acknowledged, report).toBeGreaterThan(0);
      expect(r.check.total, report).toBe(0);
    });
  }

  it(`committed offsets survive coordinator failovers (SEED=${SEED})`, { timeout: 300_000 }, async () => {
    const g = await runGroupFailover(groupOptions({ seed: SEED }));
    const report = formatGroup(g);
    console.log(report);
    expect(g.commits.acknowledged, report).toBeGreaterThan(0);
    expect(g.violations, report).toEqual([]);
  });
});
