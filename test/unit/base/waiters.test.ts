import { describe, expect, it } from "vitest";
import { AssertionError } from "../../../src/base/assert.ts";
import { ManualTimers } from "../../../src/base/timers.ts";
import { Listeners, Waiters } from "../../../src/base/waiters.ts";

const errors = {
  onTimeout: (what: string, ms: number) => new Error(`timed out after ${ms} ms waiting for ${what}`),
  onClose: () => new Error("closed"),
};

/** Lets promise callbacks run. */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

/** The outcome of a promise once settled: "resolved", or the rejection's message. */
function outcome(p: Promise<void>): { value: string | null } {
  const o: { value: string | null } = { value: null };
  p.then(
    () => (o.value = "resolved"),
    (e: Error) => (o.value = e.message),
  );
  return o;
}

describe("Waiters", () => {
  it("resolves at once when the condition already holds, without a timer", async () => {
    const timers = new ManualTimers();
    const w = new Waiters(timers, errors);
    await w.waitUntil(() => true, "nothing", 10);
    expect(timers.pending).toBe(0);
    expect(w.size).toBe(0);
  });

  it("resolves on the notify after which the condition holds, and clears its timer", async () => {
    const timers = new ManualTimers();
    const w = new Waiters(timers, errors);
    let n = 0;
    const o = outcome(w.waitUntil(() => n >= 2, "n to reach 2", 1000));
    n = 1;
    w.notify();
    await settle();
    expect(o.value).toBeNull();
    n = 2;
    w.notify();
    await settle();
    expect(o.value).toBe("resolved");
    expect(timers.pending).toBe(0);
    expect(w.size).toBe(0);
  });

  it("rejects after the timeout, naming what it waited for", async () => {
    const timers = new ManualTimers();
    const w = new Waiters(timers, errors);
    const o = outcome(w.waitUntil(() => false, "the leader", 500));
    timers.advance(499);
    await settle();
    expect(o.value).toBeNull();
    timers.advance(1);
    await settle();
    expect(o.value).toBe("timed out after 500 ms waiting for the leader");
    expect(w.size).toBe(0);
  });

  it("a wait's own timeout error and failure check override the defaults", async () => {
    const timers = new ManualTimers();
    const w = new Waiters(timers, errors);
    const timedOut = outcome(w.waitUntil(() => false, "x", 10, { timeoutError: () => new Error("ask node 2") }));
    let broken: Error | null = null;
    const failed = outcome(w.waitUntil(() => false, "y", 1000, { failure: () => broken }));
    w.notify();
    await settle();
    expect(failed.value).toBeNull();
    broken = new Error("disk failed");
    w.notify();
    timers.advance(10);
    await settle();
    expect(failed.value).toBe("disk failed");
    expect(timedOut.value).toBe("ask node 2");
  });

  it("close rejects pending waits and later ones whose condition does not hold", async () => {
    const timers = new ManualTimers();
    const w = new Waiters(timers, errors);
    const pending = outcome(w.waitUntil(() => false, "x", 1000));
    w.close();
    await settle();
    expect(pending.value).toBe("closed");
    expect(timers.pending).toBe(0);
    await expect(w.waitUntil(() => false, "y", 1000)).rejects.toThrow("closed");
    await expect(w.waitUntil(() => true, "z", 1000)).resolves.toBeUndefined();
  });
});

describe("Listeners", () => {
  it("emit calls every listener until one throws; unsubscribe removes one", () => {
    const l = new Listeners<[number]>();
    const seen: string[] = [];
    const off = l.add((n) => seen.push(`a${n}`));
    l.add((n) => seen.push(`b${n}`));
    l.emit(1);
    off();
    l.emit(2);
    expect(seen).toEqual(["a1", "b1", "b2"]);
    l.add(() => {
      throw new Error("boom");
    });
    expect(() => l.emit(3)).toThrow("boom");
  });

  it("emitGuarded reports a failing listener and runs the rest, but rethrows an AssertionError", () => {
    const l = new Listeners<[string]>();
    const seen: string[] = [];
    const reported: unknown[] = [];
    l.add(() => {
      throw new Error("listener bug");
    });
    l.add((s) => seen.push(s));
    l.emitGuarded((e) => reported.push(e), "x");
    expect(seen).toEqual(["x"]);
    expect((reported[0] as Error).message).toBe("listener bug");
    l.add(() => {
      throw new AssertionError("invariant broken");
    });
    expect(() => l.emitGuarded((e) => reported.push(e), "y")).toThrow(AssertionError);
  });
});

describe("ManualTimers", () => {
  it("fires timeouts and intervals in time order, only when advanced", () => {
    const t = new ManualTimers();
    const fired: string[] = [];
    t.setTimeout(() => fired.push("t30"), 30);
    const every = t.setInterval(() => fired.push("i20"), 20);
    const cancelled = t.setTimeout(() => fired.push("never"), 10);
    t.clearTimeout(cancelled);
    t.advance(45);
    expect(fired).toEqual(["i20", "t30", "i20"]);
    t.clearInterval(every);
    t.advance(100);
    expect(fired).toHaveLength(3);
    expect(t.pending).toBe(0);
  });
});
