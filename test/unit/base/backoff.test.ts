import { describe, expect, it } from "vitest";
import { Backoff, backoffDelayMs } from "../../../src/base/backoff.ts";
import { SeededRandom, seedFromEnv } from "../../../src/base/random.ts";

describe("backoffDelayMs", () => {
  it("doubles from the initial wait up to the cap", () => {
    const policy = { initialDelayMs: 50, delayMsMax: 1000 };
    expect([0, 1, 2, 3, 4, 5, 6, 40].map((n) => backoffDelayMs(policy, n))).toEqual([50, 100, 200, 400, 800, 1000, 1000, 1000]);
  });

  it("grows by the given multiplier", () => {
    expect([0, 1, 2, 3].map((n) => backoffDelayMs({ initialDelayMs: 10, delayMsMax: 500, multiplier: 3 }, n))).toEqual([10, 30, 90, 270]);
  });

  it("jitter spreads each wait within ±jitter and never past the cap", () => {
    const seed = seedFromEnv();
    const random = new SeededRandom(seed);
    const policy = { initialDelayMs: 100, delayMsMax: 1000, jitter: 0.2 };
    const seen = new Set<number>();
    for (let i = 0; i < 500; i++) {
      const retry = i % 6;
      const base = Math.min(1000, 100 * 2 ** retry);
      const ms = backoffDelayMs(policy, retry, random);
      expect(ms, `SEED=${seed}`).toBeGreaterThanOrEqual(Math.round(base * 0.8));
      expect(ms, `SEED=${seed}`).toBeLessThanOrEqual(Math.min(1000, Math.round(base * 1.2)));
      seen.add(ms);
    }
    expect(seen.size, "jitter actually varies the waits").toBeGreaterThan(50);
  });

  it("answers like the SDK's retry formula for the same draw", () => {
    const draw = { next: () => 0.9, int: () => 0 };
    // 200 * (1 - 0.2 + 0.4 * 0.9) = 232
    expect(backoffDelayMs({ initialDelayMs: 100, delayMsMax: 1000, jitter: 0.2 }, 1, draw)).toBe(232);
  });
});

describe("Backoff", () => {
  it("next() grows the wait until the cap and reset() starts over", () => {
    const b = new Backoff({ initialDelayMs: 50, delayMsMax: 1000 });
    expect(Array.from({ length: 8 }, () => b.next())).toEqual([50, 100, 200, 400, 800, 1000, 1000, 1000]);
    b.reset();
    expect(b.next()).toBe(50);
  });

  it("stays finite after very many retries, even from 0 or with multiplier 1", () => {
    for (const policy of [
      { initialDelayMs: 0, delayMsMax: 100 },
      { initialDelayMs: 5, delayMsMax: 100, multiplier: 1 },
      { initialDelayMs: 1, delayMsMax: 2 ** 40 },
    ]) {
      const b = new Backoff(policy);
      let last = 0;
      for (let i = 0; i < 5000; i++) last = b.next();
      expect(Number.isFinite(last)).toBe(true);
      expect(last).toBeLessThanOrEqual(policy.delayMsMax);
    }
  });

  it("refuses a policy that cannot work", () => {
    expect(() => new Backoff({ initialDelayMs: 100, delayMsMax: 50 })).toThrow(RangeError);
    expect(() => new Backoff({ initialDelayMs: 10, delayMsMax: 50, multiplier: 0.5 })).toThrow(RangeError);
    expect(() => new Backoff({ initialDelayMs: 10, delayMsMax: 50, jitter: 2 }, new SeededRandom(1))).toThrow(RangeError);
    expect(() => new Backoff({ initialDelayMs: 10, delayMsMax: 50, jitter: 0.1 })).toThrow(/needs a Random/);
  });
});
