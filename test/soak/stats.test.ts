/** The soak test's pure helpers: the slope it judges memory by, the fault windows, the seeded schedule. */
import { describe, expect, it } from "vitest";
import { inFault, quantile, restartWindowS, SeededRandom, slopePerMinute, windowMinima } from "./stats.ts";
import { endOffsets } from "./soak-run.ts";

describe("soak stats", () => {
  it("slopePerMinute is the least-squares slope per minute, flat and noisy series included", () => {
    expect(slopePerMinute([])).toBe(0);
    expect(slopePerMinute([{ t: 5, v: 1 }])).toBe(0);
    expect(slopePerMinute(Array.from({ length: 61 }, (_, t) => ({ t, v: 100 + t / 60 })))).toBeCloseTo(1, 9);
    const sawtooth = Array.from({ length: 600 }, (_, t) => ({ t, v: 100 + (t % 10) }));
    expect(Math.abs(slopePerMinute(sawtooth))).toBeLessThan(0.05);
  });

  it("windowMinima keeps each window's lowest point: a sawtooth's floor is flat, a leak under it is not", () => {
    const sawtooth = Array.from({ length: 600 }, (_, t) => ({ t, v: 100 + (t % 45) * 2 }));
    const floor = windowMinima(sawtooth, 60);
    expect(floor.length).toBe(10);
    expect(Math.abs(slopePerMinute(floor))).toBeLessThan(1.5);
    const leaking = sawtooth.map((p) => ({ t: p.t, v: p.v + p.t / 10 })); // +6 per minute under the same sawtooth
    expect(slopePerMinute(windowMinima(leaking, 60))).toBeGreaterThan(4.5);
    expect(windowMinima([], 30)).toEqual([]);
  });

  it("quantile is nearest-rank", () => {
    expect(quantile([], 0.99)).toBeNull();
    expect(quantile([3, 1, 2], 0.5)).toBe(2);
    expect(
      quantile(
        Array.from({ length: 100 }, (_, i) => i + 1),
        0.99,
      ),
    ).toBe(99);
  });

  it("inFault excuses from 1 s before a fault to the grace period after it ends, and an unfinished fault to the end", () => {
    const faults = [{ kind: "kill9" as const, node: 1, start: 20, end: 23 }];
    expect([18.9, 19, 23, 38, 38.1].map((t) => inFault(t, faults, 15))).toEqual([false, true, true, true, false]);
    expect(inFault(500, [{ kind: "sigterm", node: 1, start: 20, end: Number.POSITIVE_INFINITY }], 15)).toBe(true);
  });

  it("restartWindowS: the first quarter of a long run, at least the first minute, at most the first half", () => {
    expect(restartWindowS(60)).toBe(30); // CI cluster case: the first half, as before
    expect(restartWindowS(120)).toBe(60); // CI single case: the first half, as before
    expect(restartWindowS(600)).toBe(150); // 10 minutes: the last restart 7.5+ minutes before the end
    expect(restartWindowS(3600)).toBe(900);
  });

  it("SeededRandom repeats its sequence for a seed", () => {
    const a = new SeededRandom(42);
    const b = new SeededRandom(42);
    const xs = Array.from({ length: 5 }, () => a.int(0, 1000));
    expect(Array.from({ length: 5 }, () => b.int(0, 1000))).toEqual(xs);
    expect(new SeededRandom(43).int(0, 1000)).not.toBe(xs[0]);
  });
});

describe("endOffsets (the read-back of a long run)", () => {
  it("takes a 60-minute run's 300,000 acknowledged offsets of one partition without overflowing the stack", () => {
    const m = new Map<number, string>();
    for (let o = 0; o < 300_000; o++) m.set(o, "v");
    expect(
      endOffsets(
        new Map([
          [0, m],
          [1, new Map([[7, "x"]])],
        ]),
      ),
    ).toEqual(
      new Map([
        [0, 300_000],
        [1, 8],
      ]),
    );
  });
});
