/**
 * The whole-cluster simulator (issue 19): 3 nodes of the real metadata quorum, controller,
 * replica managers and fetchers over one simulated clock, network and crash-losing disks.
 * Determinism (same seed, same trace hash), the regression seeds, planted replication bugs
 * that the checkers must catch, and a sweep of as many seeds as fit in its time budget.
 */
import { afterEach, describe, expect, it } from "vitest";
import { seedFromEnv } from "../../../src/base/random.ts";
import { PartitionReplica } from "../../../src/replication/partition-replica.ts";
import { ReplicaManager } from "../../../src/replication/replica-manager.ts";
import { type ClusterSimSettings, runClusterSim, clusterSettingsForSeed } from "./cluster.ts";
import { History } from "./history.ts";
import { clusterOpenSeeds, clusterRegressionSeeds, clusterSweep, formatClusterFailure, regressionClusterSettings } from "./run.ts";

/** A shorter run than the default: 6 s of faults, 8 s healed. */
const SHORT: Partial<ClusterSimSettings> = { faultMs: 6000, healMs: 8000 };
/** Wall time the sweep may take, and the most seeds it runs (seeds 1..120 were checked by hand). */
const SWEEP_BUDGET_MS = 15_000;
const SWEEP_SEEDS_MAX = 120;

describe("cluster simulator", () => {
  it("gives the same event trace for the same seed", async () => {
    const a = await runClusterSim(clusterSettingsForSeed(7, SHORT));
    const b = await runClusterSim(clusterSettingsForSeed(7, SHORT));
    const c = await runClusterSim(clusterSettingsForSeed(8, SHORT));
    expect(b.traceHash).toBe(a.traceHash);
    expect(b.stats).toEqual(a.stats);
    expect(c.traceHash).not.toBe(a.traceHash);
    expect(a.stats.acked).toBeGreaterThan(100);
    expect(a.violations).toEqual([]);
  }, 60_000);

  it("passes every regression seed", async () => {
    for (const e of clusterRegressionSeeds()) {
      const r = await runClusterSim(regressionClusterSettings(e));
      expect(r.violations, formatClusterFailure(r)).toEqual([]);
    }
  }, 300_000);

  it("still reproduces each open finding (a bug found, not fixed yet)", async () => {
    for (const e of clusterOpenSeeds()) {
      const r = await runClusterSim(regressionClusterSettings(e));
      const checks = r.violations.map((v) => v.check);
      // When this fails, the bug was fixed: move the entry from "open" to "seeds".
      expect(checks, `seed ${e.seed} no longer breaks ${e.check}: move it to "seeds" in regression-seeds.json`).toContain(e.check);
    }
  }, 120_000);

  it("flags two leaders in one epoch and two values at one offset", () => {
    const h = new History();
    h.leaderSeen(0, 3, 1, 10);
    h.leaderSeen(0, 3, 1, 20);
    h.leaderSeen(0, 4, 2, 30);
    expect(h.violations).toEqual([]);
    h.leaderSeen(0, 3, 2, 40);
    h.consumedAt(1, 5, "a", 50);
    h.consumedAt(1, 5, "a", 60);
    h.consumedAt(1, 5, "b", 70);
    expect(h.violations.map((v) => v.check)).toEqual(["one-leader-per-epoch", "one-value-per-offset"]);
  });

  describe("catches planted bugs", () => {
    const restore: Array<() => void> = [];
    afterEach(() => {
      for (const r of restore.splice(0)) r();
    });

    /** Replaces a method of a prototype for one test. */
    function plant<T extends object, K extends keyof T>(proto: T, name: K, impl: T[K]): void {
      const orig = proto[name];
      proto[name] = impl;
      restore.push(() => {
        proto[name] = orig;
      });
    }

    /** Runs seeds from 1 until one fails (at most `max`); returns the failing seed and its checks. */
    async function firstFailure(max: number): Promise<{ seed: number; checks: string[] } | null> {
      for (let seed = 1; seed <= max; seed++) {
        const r = await runClusterSim(clusterSettingsForSeed(seed));
        if (r.violations.length > 0) return { seed, checks: [...new Set(r.violations.map((v) => v.check))] };
      }
      return null;
    }

    it("a high watermark as the max over the ISR instead of the min", async () => {
      plant(PartitionReplica.prototype, "maybeAdvanceHw", function (this: PartitionReplica): boolean {
        if (this.role !== "leader") return false;
        const hw = this.log.logEndOffset; // planted: ignores the followers
        if (hw > this.hw) {
          this.hw = hw;
          return true;
        }
        return false;
      });
      const found = await firstFailure(3);
      console.log(`planted hw-as-max: ${JSON.stringify(found)}`);
      expect(found).not.toBeNull();
    }, 120_000);

    it("a follower that skips truncation on a leader change", async () => {
      plant(ReplicaManager.prototype, "truncateFollower", () => {});
      const found = await firstFailure(3);
      console.log(`planted no-truncation: ${JSON.stringify(found)}`);
      expect(found).not.toBeNull();
    }, 120_000);
  });

  it(
    "runs as many seeds as fit in its budget without a violation",
    async () => {
      // Fixed seeds (1, 2, ...) keep the suite deterministic; SEED=n starts elsewhere. Wider
      // exploration: npm run sim -- --cluster --seeds N --first S.
      const first = process.env["SEED"] ? seedFromEnv() : 1;
      console.log(`cluster sim sweep from seed ${first} (SEED=${first} to repeat)`);
      const res = await clusterSweep(
        first,
        SWEEP_SEEDS_MAX,
        SHORT,
        (r) => {
          if (r.violations.length > 0) console.log(formatClusterFailure(r));
        },
        SWEEP_BUDGET_MS,
      );
      const secs = res.wallMs / 1000;
      console.log(
        `cluster sim: ${res.seeds} seeds in ${secs.toFixed(1)} s (${(res.seeds / secs).toFixed(2)} seeds/s, ${(res.simMs / res.wallMs).toFixed(1)} simulated s per s)`,
      );
      expect(res.seeds).toBeGreaterThan(0);
      expect(res.failures.map((f) => f.settings.seed)).toEqual([]);
    },
    SWEEP_BUDGET_MS + 60_000,
  );
});
