import { describe, expect, it } from "vitest";
import { ManualClock } from "../../../src/base/clock.ts";
import { ManualTimers } from "../../../src/base/timers.ts";
import { HwPurgatory } from "../../../src/replication/hw-purgatory.ts";

/** Manual time: the clock and the timers move together. */
function setup() {
  const clock = new ManualClock(0);
  const timers = new ManualTimers();
  const advance = (ms: number): void => {
    clock.advance(ms);
    timers.advance(ms);
  };
  const purgatory = new HwPurgatory<string>(clock, timers, (w) => new Error(`timeout ${w.partition} ${w.offset}`));
  return { clock, timers, advance, purgatory };
}

/** A promise's outcome once the microtasks ran: "ok", the error message, or "pending". */
function outcome(p: Promise<void>): () => string {
  let s = "pending";
  p.then(
    () => (s = "ok"),
    (e: Error) => (s = e.message),
  );
  return () => s;
}

const flush = () => new Promise((r) => setImmediate(r));
const lost = () => new Error("lost");
const shrunk = () => new Error("shrunk");

describe("HwPurgatory (acks=ALL waits keyed by offset)", () => {
  it("a high watermark completes the waits it passed, in offset order, and no other", async () => {
    const { purgatory } = setup();
    const a = outcome(purgatory.wait("p", 9, 1, 1000));
    const c = outcome(purgatory.wait("p", 29, 1, 1000));
    const b = outcome(purgatory.wait("p", 19, 1, 1000)); // out of order: sorted in
    const other = outcome(purgatory.wait("q", 0, 1, 1000));
    purgatory.complete("p", { leading: true, hw: 20, isrSize: 3 }, lost, shrunk);
    await flush();
    expect([a(), b(), c(), other()]).toEqual(["ok", "ok", "pending", "pending"]);
    expect(purgatory.size).toBe(2);
    purgatory.complete("p", { leading: true, hw: 29, isrSize: 3 }, lost, shrunk); // hw must pass the offset
    await flush();
    expect(c()).toBe("pending");
    purgatory.complete("p", { leading: true, hw: 30, isrSize: 3 }, lost, shrunk);
    await flush();
    expect(c()).toBe("ok");
    expect(purgatory.has("p")).toBe(false);
  });

  it("an ISR below min.insync.replicas when the high watermark passes rejects; losing leadership rejects every wait", async () => {
    const { purgatory } = setup();
    const small = outcome(purgatory.wait("p", 5, 2, 1000));
    const fine = outcome(purgatory.wait("p", 6, 1, 1000));
    const later = outcome(purgatory.wait("p", 50, 1, 1000));
    purgatory.complete("p", { leading: true, hw: 10, isrSize: 1 }, lost, shrunk);
    await flush();
    expect([small(), fine(), later()]).toEqual(["shrunk", "ok", "pending"]);
    purgatory.complete("p", { leading: false, hw: 10, isrSize: 1 }, lost, shrunk);
    await flush();
    expect(later()).toBe("lost");
    expect(purgatory.size).toBe(0);
  });

  it("timeouts share one timer armed for the earliest deadline, and each wait ends once", async () => {
    const { purgatory, timers, advance } = setup();
    const long = outcome(purgatory.wait("p", 1, 1, 500));
    const short = outcome(purgatory.wait("p", 2, 1, 100));
    const done = outcome(purgatory.wait("q", 3, 1, 50));
    expect(timers.pending).toBe(1);
    purgatory.complete("q", { leading: true, hw: 4, isrSize: 1 }, lost, shrunk);
    advance(99);
    await flush();
    expect([long(), short(), done()]).toEqual(["pending", "pending", "ok"]);
    advance(1);
    await flush();
    expect(short()).toBe("timeout p 2");
    expect(long()).toBe("pending");
    expect(timers.pending).toBe(1);
    advance(400);
    await flush();
    expect(long()).toBe("timeout p 1");
    expect(timers.pending).toBe(0);
    // Completing after the timeout changes nothing.
    purgatory.complete("p", { leading: true, hw: 100, isrSize: 1 }, lost, shrunk);
    await flush();
    expect(long()).toBe("timeout p 1");
    expect(purgatory.size).toBe(0);
  });

  it("after thousands of completed waits a timeout still fires on time, and then no timer is left", async () => {
    const { purgatory, timers, advance } = setup();
    for (let i = 0; i < 5000; i++) {
      const p = purgatory.wait("p", i, 1, 30_000);
      purgatory.complete("p", { leading: true, hw: i + 1, isrSize: 1 }, lost, shrunk);
      await p;
    }
    expect(purgatory.size).toBe(0);
    expect(timers.pending).toBe(0); // no timer outlives the last wait
    const last = outcome(purgatory.wait("p", 10_000, 1, 10));
    advance(10);
    await flush();
    expect(last()).toBe("timeout p 10000");
    advance(30_000);
    expect(timers.pending).toBe(0);
  });
});
