import { describe, expect, it } from "vitest";
import { ManualClock } from "../../../src/base/clock.ts";
import type { PartitionState } from "../../../src/metadata/image.ts";
import { isThrottledReplica, ReplicationThrottle } from "../../../src/replication/throttle.ts";

describe("the replication throttle (issue 21)", () => {
  it("lets through at most the rate plus one second's worth over any window", () => {
    const clock = new ManualClock();
    const t = new ReplicationThrottle(clock, 1000);
    let moved = 0;
    // A reader that takes 300-byte chunks whenever allowed, polled every 10 ms for 10 s.
    for (let ms = 0; ms < 10_000; ms += 10) {
      if (!t.exceeded()) {
        t.record(300);
        moved += 300;
      }
      clock.advance(10);
    }
    expect(moved).toBeLessThanOrEqual(1000 * 10 + 1000 + 300);
    expect(moved).toBeGreaterThanOrEqual(1000 * 10 - 300);
  });

  it("in debt, says how long to wait; without a limit, never waits", () => {
    const clock = new ManualClock();
    const t = new ReplicationThrottle(clock, 1000);
    t.record(3000); // 1000 in the bucket, 2000 taken: 2000 in debt
    expect(t.exceeded()).toBe(true);
    expect(t.allowance()).toBe(0);
    expect(t.waitMs()).toBe(2001);
    clock.advance(2001);
    expect(t.exceeded()).toBe(false);
    const none = new ReplicationThrottle(clock, 0);
    none.record(1e12);
    expect(none.limited).toBe(false);
    expect(none.exceeded()).toBe(false);
    expect(none.waitMs()).toBe(0);
    expect(none.allowance()).toBe(Number.POSITIVE_INFINITY);
  });

  it("throttles only replicas being added that are not in the ISR", () => {
    const state = (isr: number[], adding?: number[]): PartitionState => ({
      topic: "t",
      partition: 0,
      replicas: [4, 2, 3, 1],
      isr,
      leader: 1,
      leaderEpoch: 0,
      partitionEpoch: 0,
      ...(adding ? { addingReplicas: adding, removingReplicas: [1] } : {}),
    });
    expect(isThrottledReplica(state([1, 2, 3], [4]), 4)).toBe(true);
    expect(isThrottledReplica(state([1, 2, 3, 4], [4]), 4)).toBe(false);
    expect(isThrottledReplica(state([1, 2, 3], [4]), 2)).toBe(false);
    expect(isThrottledReplica(state([1, 2, 3]), 4)).toBe(false);
    expect(isThrottledReplica(undefined, 4)).toBe(false);
  });
});
