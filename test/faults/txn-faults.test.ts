/**
 * The transactional fault scenario in CI (issue 17, txn-engine.ts): consume–transform–produce
 * workers with transactional ids under a seeded nemesis aimed at transaction coordinators,
 * output partition leaders and the group's coordinator, with worker crashes and aborts on
 * purpose. Every input record must appear exactly once in each output read with READ_COMMITTED;
 * no aborted read, no lost committed write, no torn transaction, no LSO going down.
 *
 * SEED=n replays the schedule (printed); `npm run faults -- --scenario txn --rounds N` runs more.
 * No assertion rests on a measured duration: the waits are bounds.
 */
import { describe, expect, it } from "vitest";
import { seedFromEnv } from "../../src/base/random.ts";
import { formatTxnRound, runTxnRound, txnRoundOptions } from "./txn-engine.ts";

const SEED = seedFromEnv();
const WINDOW_MS = Number(process.env["FAULTS_WINDOW_MS"] ?? 15_000);
console.log(`txn faults SEED=${SEED} (window ${WINDOW_MS} ms)`);

describe("transactional fault test", () => {
  it(`exactly once, no aborted read, no lost commit, no torn transaction (SEED=${SEED})`, { timeout: WINDOW_MS + 300_000 }, async () => {
    const r = await runTxnRound(txnRoundOptions({ seed: SEED, windowMs: WINDOW_MS }));
    const report = formatTxnRound(r, 1);
    console.log(report);
    expect(r.unsettled, report).toBeNull();
    expect(r.divergent, report).toEqual([]);
    expect(r.check.counts.committed, report).toBeGreaterThan(0);
    expect(r.check.counts.inputsCommitted, report).toBe(r.check.counts.inputsTotal);
    expect(r.check.total, report).toBe(0);
  });
});
