import { describe, expect, it } from "vitest";
import { ManualTimers } from "../../../src/base/timers.ts";
import { BUFFER_POOL_BYTES_MIN, BufferPool, type BufferPoolClock } from "../../../src/rpc/buffer-pool.ts";

/** A pool clock that moves only when told (ManualTimers fires the pool's sweep). */
function manualClock(): BufferPoolClock & { advance(ms: number): void; readonly pending: number } {
  const timers = new ManualTimers();
  let now = 0;
  return {
    now: () => now,
    schedule: (fn, ms) => timers.setTimeout(() => fn(), ms),
    cancel: (h) => timers.clearTimeout(h),
    advance(ms: number) {
      // Timers see the time they fire at.
      let left = ms;
      while (left > 0) {
        const step = Math.min(left, 100);
        now += step;
        timers.advance(step);
        left -= step;
      }
    },
    get pending() {
      return timers.pending;
    },
  };
}

describe("BufferPool", () => {
  it("hands out power-of-two buffers and reuses the ones given back", () => {
    const pool = new BufferPool(1 << 20);
    const a = pool.take(100_000);
    expect(a.length).toBe(131_072);
    expect(pool.take(1).length).toBe(BUFFER_POOL_BYTES_MIN);
    pool.give(a);
    expect(pool.bytes).toBe(131_072);
    const b = pool.take(131_072);
    expect(b).toBe(a);
    expect(pool.bytes).toBe(0);
    expect(pool.take(100_000)).not.toBe(a); // nothing idle of that size any more
    expect(pool.stats).toMatchObject({ taken: 4, reused: 1, given: 1 });
  });

  it("keeps at most bytesMax of idle buffers and refuses what it did not hand out", () => {
    const pool = new BufferPool(256 * 1024);
    const bufs = [pool.take(128 * 1024), pool.take(128 * 1024), pool.take(128 * 1024)];
    bufs.forEach((b) => pool.give(b));
    expect(pool.bytes).toBe(256 * 1024);
    pool.give(Buffer.alloc(100_000)); // not a pool size
    pool.give(Buffer.alloc(2 * BUFFER_POOL_BYTES_MIN).subarray(BUFFER_POOL_BYTES_MIN)); // a view
    expect(pool.stats.dropped).toBe(3);
    pool.clear();
    expect(pool.bytes).toBe(0);
  });

  // Issue 14's soak: the pools' idle buffers only ever grew (3 -> 5 -> 7 MiB in 6 minutes), to the
  // most the streams had ever held at once. Buffers not taken again within idleMs now go.
  it("lets go of buffers idle for idleMs, keeping those the streams still reuse", () => {
    const clock = manualClock();
    const pool = new BufferPool(32 << 20, 30_000, clock);
    const MiB = 1 << 20;
    // A burst: 6 streams hold a 1 MiB buffer each at once, then give them back.
    const burst = Array.from({ length: 6 }, () => pool.take(MiB));
    burst.forEach((b) => pool.give(b));
    expect(pool.bytes).toBe(6 * MiB);
    // Then steady use of 2 at a time for a minute: 4 of the 6 are never needed again.
    for (let s = 0; s < 60; s++) {
      const a = pool.take(MiB);
      const b = pool.take(MiB);
      expect(burst.includes(a) && burst.includes(b)).toBe(true);
      pool.give(a);
      pool.give(b);
      clock.advance(1000);
    }
    expect(pool.bytes).toBe(2 * MiB);
    expect(pool.stats.expired).toBe(4);
    // Nobody takes anything: the timer lets the rest go too, and stops.
    clock.advance(30_000);
    expect(pool.bytes).toBe(0);
    expect(pool.stats.expired).toBe(6);
    expect(clock.pending).toBe(0);
  });

  it("keeps a buffer given back just before its idle time would end", () => {
    const clock = manualClock();
    const pool = new BufferPool(32 << 20, 30_000, clock);
    const a = pool.take(1);
    pool.give(a);
    clock.advance(29_900);
    expect(pool.take(1)).toBe(a);
    pool.give(a);
    clock.advance(29_900);
    expect(pool.bytes).toBe(BUFFER_POOL_BYTES_MIN);
    clock.advance(200);
    expect(pool.bytes).toBe(0);
    expect(pool.take(1)).not.toBe(a);
  });
});
