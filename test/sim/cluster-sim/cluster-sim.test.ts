/**
 * The whole-cluster simulator (issue 19): 3 nodes of the real metadata quorum, controller,
 * replica managers and fetchers over one simulated clock, network and crash-losing disks.
 * Determinism (same seed, same trace hash), the regression seeds, planted replication bugs
 * that the checkers must catch, and a sweep of as many seeds as fit in its time budget.
 */
import { describe, expect, it } from "vitest";
import { seedFromEnv } from "../../../src/base/random.ts";
import { type ClusterSimSettings, runClusterSim, clusterSettingsForSeed } from "./cluster.ts";
import { WriteCopies } from "./duplicates.ts";
import { History } from "./history.ts";
import { PLANTED_BUGS, plantBug } from "./plants.ts";
import { SPEED_WORKLOADS } from "./speed.ts";
import {
  LEGACY_SETTINGS,
  clusterOpenSeeds,
  clusterRegressionSeeds,
  clusterSweep,
  formatClusterFailure,
  regressionClusterSettings,
} from "./run.ts";

/** A shorter run than the default: 6 s of faults, 8 s healed. */
const SHORT: Partial<ClusterSimSettings> = { faultMs: 6000, healMs: 8000 };
/** Wall time the sweep may take, and the most seeds it runs (seeds 1..120 were checked by hand). */
const SWEEP_BUDGET_MS = 10_000;
const SWEEP_SEEDS_MAX = 120;
/** Partition reassignments by the admin, and 2 broker-only nodes besides the 3 voters. */
// Reassignments and broker-only nodes as their planted bugs' seeds were found: without message
// duplication, client cuts, full disks and transactions (the defaults they were found beside).
const REASSIGN_SETTINGS: Partial<ClusterSimSettings> = {
  duplicateRate: 0,
  clientCuts: false,
  fullDisks: false,
  transactionalProducers: 0,
  reassignments: true,
  brokerOnlyNodes: 2,
};

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

  it("keeps every check with duplicated messages, one-way client cuts and full disks, deterministically", async () => {
    const faults: Partial<ClusterSimSettings> = {
      ...SHORT,
      duplicateRate: 0.05,
      clientCuts: true,
      fullDisks: true,
      brokerOnlyNodes: 0,
      reassignments: false,
    };
    // Seed 6: one of the first seeds whose short run fills a disk (full disks are 3-10 s apart).
    const a = await runClusterSim(clusterSettingsForSeed(6, faults));
    const b = await runClusterSim(clusterSettingsForSeed(6, faults));
    expect(b.traceHash).toBe(a.traceHash);
    expect(a.violations, formatClusterFailure(a)).toEqual([]);
    expect(a.stats.duplicated).toBeGreaterThan(0);
    expect(a.stats.clientCuts).toBeGreaterThan(0);
    expect(a.stats.diskFullRefusals).toBeGreaterThan(0);
  }, 60_000);
  it("writes about 1,000 records/s through batching producers (the speed workload), every check kept, deterministically", async () => {
    const settings = clusterSettingsForSeed(7, { ...SPEED_WORKLOADS.batched, ...SHORT });
    let batches = 0;
    const a = await runClusterSim(settings, (line) => {
      if (/ ack p\d+-\d+ \+\d+ /.test(line)) batches++;
    });
    const b = await runClusterSim(settings);
    expect(b.traceHash).toBe(a.traceHash);
    expect(a.violations, formatClusterFailure(a)).toEqual([]);
    const perSecond = a.stats.acked / ((settings.faultMs + settings.healMs) / 1000);
    expect(perSecond).toBeGreaterThan(700);
    expect(perSecond).toBeLessThan(1100);
    expect(batches).toBeGreaterThan(100); // requests of several records
  }, 60_000);

  it("moves partitions, cancels moves and lets broker-only nodes lead, the same way for the same seed", async () => {
    const a = await runClusterSim(clusterSettingsForSeed(3, REASSIGN_SETTINGS));
    const b = await runClusterSim(clusterSettingsForSeed(3, REASSIGN_SETTINGS));
    expect(b.traceHash).toBe(a.traceHash);
    expect(a.violations, formatClusterFailure(a)).toEqual([]);
    expect(a.stats.reassignments).toBeGreaterThan(5);
    expect(a.stats.reassignCancels).toBeGreaterThan(0);
    expect(a.stats.brokerOnlyLeaderEpochs).toBeGreaterThan(0);
  }, 120_000);

  it("passes every regression seed, and still reproduces each open finding (a bug found, not fixed yet)", async () => {
    const fixed = clusterRegressionSeeds();
    expect(fixed.length).toBeGreaterThan(0);
    for (const e of fixed) {
      const r = await runClusterSim(regressionClusterSettings(e));
      expect(r.violations, formatClusterFailure(r)).toEqual([]);
    }
    for (const e of clusterOpenSeeds()) {
      const r = await runClusterSim(regressionClusterSettings(e));
      const checks = r.violations.map((v) => v.check);
      // When this fails, the bug was fixed: move the entry from "open" to "seeds".
      expect(checks, `seed ${e.seed} no longer breaks ${e.check}: move it to "seeds" in regression-seeds.json`).toContain(e.check);
    }
  }, 420_000);

  it("flags two leaders in one epoch and two values at one offset", () => {
    const h = new History();
    h.leaderSeen(0, 3, 1, 10);
    h.leaderSeen(0, 3, 1, 20);
    h.leaderSeen(0, 4, 2, 30);
    expect(h.violations).toEqual([]);
    h.leaderSeen(0, 3, 2, 40);
    const noLosses = () => 0;
    h.consumedAt(1, 5, "a", 50, noLosses);
    h.consumedAt(1, 5, "a", 60, noLosses);
    h.consumedAt(1, 5, "b", 70, noLosses);
    expect(h.violations.map((v) => v.check)).toEqual(["one-leader-per-epoch", "one-value-per-offset"]);
  });

  it("bounds the copies of a value without idempotence by the copies of its request handled (write-copies)", () => {
    const copies = new WriteCopies();
    const h = new History();
    copies.handle("p1-0"); // a single-record producer's value
    copies.handle("w0-7"); // an acks=leader/none producer's
    copies.handle("w0-7"); // its request arrived twice
    const batching = copies.producer(2); // a batching producer's values, counted by n
    batching.add(0);
    batching.add(1);
    batching.handled[0]!++;
    batching.handled[1]!++;
    batching.handled[1]!++; // a batch retried
    const log = (values: string[]): Map<number, string> => new Map(values.map((v, i) => [i, v]));
    // Values never handled (an idempotent producer's, or one that does not parse as p<id>-<n>) are not counted.
    copies.check(0, log(["p1-0", "w0-7", "w0-7", "p2-0", "p2-1", "p2-1", "i0-1", "i0-1", "p01-0", "p1-00"]), h, 10);
    expect(h.violations).toEqual([]);
    copies.check(1, log(["p1-0", "p1-0"]), h, 20); // each partition counted afresh
    copies.check(2, log(["w0-7", "w0-7", "w0-7"]), h, 30);
    copies.check(3, log(["p2-0", "p2-1", "p2-0"]), h, 40);
    copies.check(4, log(["p2-1", "p2-1"]), h, 50); // handled twice: allowed twice
    expect(h.violations.map((v) => v.detail)).toEqual([
      'partition 1: "p1-0" at offsets 0, 1, its produce request was handled 1 time(s)',
      'partition 2: "w0-7" at offsets 0, 1, 2, its produce request was handled 2 time(s)',
      'partition 3: "p2-0" at offsets 0, 2, its produce request was handled 1 time(s)',
    ]);
  });

  it("lets an offset hold another value only after two power losses since it was read (min.insync.replicas)", () => {
    const h = new History();
    const lossesAt = [100];
    const since = (t: number) => lossesAt.filter((x) => x >= t).length;
    h.consumedAt(0, 7, "a", 50, since);
    h.consumedAt(0, 7, "b", 120, since); // one loss since: a violation
    expect(h.violations.map((v) => v.check)).toEqual(["one-value-per-offset"]);
    lossesAt.push(110);
    h.consumedAt(0, 8, "c", 50, since);
    h.consumedAt(0, 8, "d", 130, since); // two losses since the read: excused, "d" kept
    h.consumedAt(0, 8, "e", 140, since); // none since "d": a violation
    expect(h.violations.map((v) => v.detail)).toEqual([
      'partition 0 offset 7: read "a" at 50 ms, then "b"',
      'partition 0 offset 8: read "d" at 130 ms, then "e"',
    ]);
  });

  it("dates a read record by its acknowledgement when that came first (seed 4647)", () => {
    const h = new History();
    const lossesAt = [100]; // one of the ISR lost power after the ack, before the read
    const since = (t: number) => lossesAt.filter((x) => x >= t).length;
    h.acked({ partition: 0, offset: 7, value: "a", atMs: 90 });
    h.consumedAt(0, 7, "a", 110, since);
    h.consumedAt(0, 8, "b", 110, since); // never acknowledged: dated by the read
    expect(h.committedBy(0, 7, "a", 110)).toBe(90);
    expect(h.committedBy(0, 7, "other", 110)).toBe(110); // another record at the offset
    expect(h.committedBy(0, 8, "b", 110)).toBe(110);
    lossesAt.push(120); // the second: 2 since the ack, 1 since the read
    h.consumedAt(0, 7, "c", 130, since); // excused: committed before both losses
    h.consumedAt(0, 8, "d", 130, since); // one loss since it was read: a violation
    expect(h.violations.map((v) => v.detail)).toEqual(['partition 0 offset 8: read "b" at 110 ms, then "d"']);
  });

  it("dates a read record by when a leader's high watermark passed it (seed 42 with reassignments)", () => {
    const h = new History();
    const lossesAt = [100]; // one of the ISR lost power after the commit of "a", before its read
    const since = (t: number) => lossesAt.filter((x) => x >= t).length;
    h.hwPassed(0, 7, "a", 97);
    h.hwPassed(0, 7, "a", 140); // passed again (a later leader): the first is kept
    h.hwPassed(0, 8, "b", 105); // committed after the first loss
    h.consumedAt(0, 7, "a", 110, since);
    h.consumedAt(0, 8, "b", 110, since);
    expect(h.committedBy(0, 7, "a", 110)).toBe(97);
    expect(h.committedBy(0, 7, "other", 110)).toBe(110); // another record at the offset
    expect(h.committedBy(0, 8, "b", 110)).toBe(105);
    expect(h.committedBy(0, 8, "b", 104)).toBe(104); // read before (a planted bug's early read): the read
    h.acked({ partition: 0, offset: 8, value: "b", atMs: 103 });
    expect(h.committedBy(0, 8, "b", 110)).toBe(103); // acknowledged earlier still (acks=all answered early): the ack
    lossesAt.push(120); // the second: 2 since "a" was committed, 1 since "b" was
    h.consumedAt(0, 7, "c", 130, since); // excused
    h.consumedAt(0, 8, "d", 130, since); // one loss since it was committed: a violation
    expect(h.violations.map((v) => v.detail)).toEqual(['partition 0 offset 8: read "b" at 110 ms, then "d"']);
  });

  describe("catches planted bugs", () => {
    /**
     * Each planted bug (plants.ts), the settings it runs with and the first seed of a sweep from
     * seed 1 that caught it (`npm run sim -- --cluster --plant N --seeds 20 [settings]`), which
     * passes without it.
     */
    // The default workload as the seeds below were found with: bugs 1-5 before message duplication,
    // client cuts, full disks and the transactional workload were on by default (they move every
    // seed's path; with the first three, seeds 3, 5, 6, 7 and 9 of 1..10 catch bug 1 and seed 9
    // catches bug 3), bugs 6-11 with transactions but before the three faults; all before
    // broker-only nodes and reassignments were on by default.
    const found: Partial<ClusterSimSettings> = {
      duplicateRate: 0,
      clientCuts: false,
      fullDisks: false,
      transactionalProducers: 0,
      brokerOnlyNodes: 0,
      reassignments: false,
    };
    const foundTxn: Partial<ClusterSimSettings> = { ...found, transactionalProducers: 2 };
    const planted: ReadonlyArray<{ bug: number; seed: number; settings: Partial<ClusterSimSettings>; checks: string[] }> = [
      { bug: 1, seed: 1, settings: found, checks: [] },
      // Seed 1 caught bugs 2 and 3 until a new leader stopped answering reads before it knows its
      // high watermark (issue 17, KIP-207): the consumers' retries moved the runs' paths.
      { bug: 2, seed: 3, settings: found, checks: [] },
      // Seeds 29, 11 and 56 of the foundation's workload caught it until fixes moved their runs'
      // paths (the controller's session fix of seed 1183; then the consumers' leader epochs,
      // KIP-320, which moved seed 11's). Seed 8 is the first of 1..40 that catches it since.
      { bug: 3, seed: 8, settings: found, checks: ["consumer-out-of-range", "isr-member-missing-acked"] },
      // The laggard fault schedule (a follower rejoining while its leader dies; cluster.ts
      // scheduleLaggards) over the foundation's workload with 20 producers.
      {
        bug: 4,
        seed: 1,
        settings: { ...LEGACY_SETTINGS, laggards: true, producers: 20, faultMs: 40_000 },
        checks: ["isr-member-missing-acked"],
      },
      { bug: 5, seed: 5, settings: found, checks: ["committed-offset-backwards"] },
      // The transactional workload (txn-workload.ts), two transactional producers; the first seed of 1..20 that catches each.
      { bug: 6, seed: 1, settings: foundTxn, checks: ["txn-torn"] },
      { bug: 7, seed: 1, settings: foundTxn, checks: ["txn-read-above-lso"] },
      { bug: 8, seed: 1, settings: foundTxn, checks: ["txn-aborted-read"] },
      // Seed 3 caught it until the seed-110 fix (a forwarded produce gate answered where it arrives) moved its path.
      { bug: 9, seed: 6, settings: { ...foundTxn, transactionalOffsets: false }, checks: ["txn-lso-backwards"] },
      { bug: 10, seed: 2, settings: foundTxn, checks: ["txn-acked-lost"] },
      {
        bug: 11,
        seed: 1,
        settings: { ...foundTxn, transactionalOffsets: true },
        checks: ["txn-aborted-offset", "txn-offset-lost"],
      },
      // Transactional bugs 16-20 (plants-txn.ts), one for each transactional check bugs 6-11 leave
      // unshown; the first seed of 1..20 that catches each with its check.
      { bug: 16, seed: 1, settings: foundTxn, checks: ["txn-fenced-write"] },
      { bug: 17, seed: 1, settings: foundTxn, checks: ["txn-fenced-commit"] },
      { bug: 18, seed: 3, settings: foundTxn, checks: ["txn-duplicate"] },
      { bug: 19, seed: 4, settings: foundTxn, checks: ["txn-read-lost"] },
      { bug: 20, seed: 2, settings: { ...foundTxn, transactionalOffsets: true }, checks: ["txn-offset-backwards"] },
      // Reassignments (plants-reassign.ts), with broker-only nodes so that moves add replicas.
      { bug: 12, seed: 1, settings: REASSIGN_SETTINGS, checks: ["reassignment-stuck"] },
      { bug: 13, seed: 1, settings: REASSIGN_SETTINGS, checks: ["reassignment-target"] },
      { bug: 14, seed: 1, settings: REASSIGN_SETTINGS, checks: ["reassignment-removed-data"] },
      { bug: 15, seed: 1, settings: REASSIGN_SETTINGS, checks: ["observer-metadata"] },
    ];
    for (const p of planted) {
      it(`bug ${p.bug}: ${PLANTED_BUGS[p.bug]} (seed ${p.seed})`, async () => {
        const settings = clusterSettingsForSeed(p.seed, p.settings);
        const revert = plantBug(p.bug);
        let r: Awaited<ReturnType<typeof runClusterSim>>;
        try {
          r = await runClusterSim(settings);
        } finally {
          revert();
        }
        const checks = [...new Set(r.violations.map((v) => v.check))];
        console.log(`planted bug ${p.bug}, seed ${p.seed}: ${JSON.stringify(checks)}`);
        expect(checks.length, `planted bug ${p.bug} not caught by seed ${p.seed}`).toBeGreaterThan(0);
        for (const c of p.checks) expect(checks).toContain(c);
      }, 120_000);
    }
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
