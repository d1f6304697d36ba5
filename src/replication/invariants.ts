/**
 * The invariants of replication, as assertions. When one breaks, acknowledged data can be lost
 * or a consumer can read what is later truncated, so a broken invariant crashes the broker (a
 * supervisor restarts it; the simulator prints the seed) instead of being answered as an error.
 *
 * - The high watermark never passes the log end offset: nothing is committed that this
 *   replica does not hold.
 * - The high watermark never moves backwards, except on a follower cutting a divergent tail
 *   (which only an unclean leader election can make reach below it).
 * - Leader and partition epochs only rise, for a given incarnation of a topic.
 * - The ISR is a subset of the replicas, and a leader is in its own ISR.
 */
import { assert } from "../base/assert.ts";

/** Asserts that the high watermark `hw` of `where` does not pass the log end offset `leo`. */
export function assertHwWithinLog(where: string, hw: number, leo: number): void {
  assert(hw >= 0 && hw <= leo, `${where}: high watermark ${hw} is past the log end offset ${leo}`);
}

/** Asserts that a high watermark moving from `from` to `to` does not go backwards. */
export function assertHwForward(where: string, from: number, to: number): void {
  assert(to >= from, `${where}: high watermark moves backwards from ${from} to ${to}`);
}

/** Asserts that a leader or partition epoch (`what`) moving from `from` to `to` does not go backwards. */
export function assertEpochRises(where: string, what: string, from: number, to: number): void {
  assert(to >= from, `${where}: ${what} goes backwards from ${from} to ${to}`);
}

/**
 * Asserts that `isr` is a subset of `replicas` without duplicates and, when `leader` is set
 * (>= 0), that it holds the leader.
 */
export function assertIsrValid(where: string, isr: readonly number[], replicas: readonly number[], leader: number): void {
  assert(new Set(isr).size === isr.length, `${where}: ISR [${isr.join(",")}] lists a replica twice`);
  for (const r of isr) assert(replicas.includes(r), `${where}: ISR member ${r} is not a replica (replicas [${replicas.join(",")}])`);
  if (leader >= 0) assert(isr.includes(leader), `${where}: leader ${leader} is not in its ISR [${isr.join(",")}]`);
}
