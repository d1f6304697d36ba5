import { describe, expect, it } from "vitest";
import { MemoryBudget, type Reservation } from "../../../src/base/memory-budget.ts";
import { ManualTimers } from "../../../src/base/timers.ts";

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("MemoryBudget", () => {
  it("grants what fits at once and refuses what does not (tryReserve)", () => {
    const b = new MemoryBudget(100, new ManualTimers());
    const a = b.tryReserve(60)!;
    expect(b.bytesUsed).toBe(60);
    expect(b.tryReserve(41)).toBeNull();
    const c = b.tryReserve(40)!;
    expect(b.bytesUsed).toBe(100);
    a.release();
    a.release(); // a second release gives nothing back twice
    expect(b.bytesUsed).toBe(40);
    c.shrink(10);
    expect(c.bytes).toBe(10);
    expect(b.bytesUsed).toBe(10);
  });

  it("a waiter gets its bytes when a release makes room, in arrival order", async () => {
    const timers = new ManualTimers();
    const b = new MemoryBudget(100, timers);
    const first = b.tryReserve(100)!;
    const order: string[] = [];
    const noted = (name: string) => (r: Reservation | null) => {
      order.push(name);
      return r;
    };
    const big = b.reserve(80, 1000).then(noted("big"));
    const small = b.reserve(10, 1000).then(noted("small"));
    // Arrival order: the small one may not pass the big one, nor take bytes from tryReserve.
    expect(b.tryReserve(1)).toBeNull();
    expect(b.waiting).toBe(2);
    first.release();
    const [rb, rs] = await Promise.all([big, small]);
    expect(order).toEqual(["big", "small"]);
    expect(rb!.bytes).toBe(80);
    expect(rs!.bytes).toBe(10);
    expect(b.bytesUsed).toBe(90);
  });

  it("a wait ends with null after waitMs, or when its signal aborts, and lets those behind it through", async () => {
    const timers = new ManualTimers();
    const b = new MemoryBudget(100, timers);
    const held = b.tryReserve(50)!;
    const tooBig = b.reserve(90, 500);
    const fits = b.reserve(40, 5000);
    await flush();
    expect(b.waiting).toBe(2);
    timers.advance(500);
    expect(await tooBig).toBeNull();
    const r = (await fits) as Reservation;
    expect(r.bytes).toBe(40); // served as soon as the head of the line gave up
    const signal = { aborted: false, onabort: null as (() => void) | null };
    const aborted = b.reserve(90, 5000, signal);
    signal.aborted = true;
    signal.onabort?.();
    expect(await aborted).toBeNull();
    expect(b.stats.timedOut).toBe(2);
    held.release();
    r.release();
    expect(b.bytesUsed).toBe(0);
  });

  it("a request larger than the whole budget is granted alone, once nothing else is held", async () => {
    const b = new MemoryBudget(100, new ManualTimers());
    const small = b.tryReserve(1)!;
    const huge = b.reserve(250, 1000);
    await flush();
    expect(b.waiting).toBe(1);
    small.release();
    const h = (await huge)!;
    expect(h.bytes).toBe(250);
    expect(b.tryReserve(1)).toBeNull();
    h.release();
    expect(b.tryReserve(100)).not.toBeNull();
  });
});
