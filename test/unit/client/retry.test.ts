import { describe, expect, it } from "vitest";
import { Errors, RillError } from "../../../src/base/errors.ts";
import { SeededRandom, seedFromEnv } from "../../../src/base/random.ts";
import { ConnectionError, isRetriable } from "../../../src/client/errors.ts";
import { backoffMs, defaultRetryPolicy, retryPolicy, withRetries } from "../../../src/client/retry.ts";

const SEED = seedFromEnv();
console.log(`retry tests SEED=${SEED}`);

describe("retry policy", () => {
  it("backs off exponentially up to the cap, jittered within bounds", () => {
    const random = new SeededRandom(SEED);
    const policy = retryPolicy({ initialBackoffMs: 100, backoffMsMax: 1000, multiplier: 2, jitter: 0.2 });
    for (let retry = 0; retry < 8; retry++) {
      const base = Math.min(1000, 100 * 2 ** retry);
      for (let i = 0; i < 50; i++) {
        const ms = backoffMs(policy, retry, random);
        expect(ms).toBeGreaterThanOrEqual(Math.floor(base * 0.8));
        expect(ms).toBeLessThanOrEqual(1000);
        expect(ms).toBeLessThanOrEqual(Math.ceil(base * 1.2));
      }
    }
    const exact = retryPolicy({ jitter: 0 });
    expect([0, 1, 2, 3, 4, 5].map((r) => backoffMs(exact, r, random))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it("rejects out-of-range settings, naming the field", () => {
    expect(() => retryPolicy({ retries: -1 })).toThrow(/retry\.retries/);
    expect(() => retryPolicy({ initialBackoffMs: 500, backoffMsMax: 100 })).toThrow(/retry\.backoffMsMax/);
    expect(() => retryPolicy({ jitter: 2 })).toThrow(/retry\.jitter/);
    expect(retryPolicy()).toEqual(defaultRetryPolicy);
  });

  it("retries only retriable errors, at most `retries` times, waiting the backoff between", async () => {
    const waits: number[] = [];
    const ctx = { random: new SeededRandom(SEED), sleep: async (ms: number) => void waits.push(ms) };
    const policy = retryPolicy({ retries: 3, jitter: 0 });
    let calls = 0;
    const flaky = (): Promise<string> =>
      ++calls < 3 ? Promise.reject(new ConnectionError("h:1", "connection refused")) : Promise.resolve("ok");
    await expect(withRetries(flaky, policy, ctx)).resolves.toBe("ok");
    expect([calls, waits]).toEqual([3, [100, 200]]);

    calls = 0;
    const fatal = (): Promise<never> => {
      calls++;
      return Promise.reject(new RillError(Errors.INVALID_CONFIG, "x"));
    };
    await expect(withRetries(fatal, policy, ctx)).rejects.toThrow("x");
    expect(calls).toBe(1);

    calls = 0;
    const down = (): Promise<never> => {
      calls++;
      return Promise.reject(new RillError(Errors.LEADER_NOT_AVAILABLE));
    };
    await expect(withRetries(down, policy, ctx)).rejects.toBeInstanceOf(RillError);
    expect(calls).toBe(4);
  });

  it("classifies errors: catalog retriable flag, connection errors retriable, others not", () => {
    expect(isRetriable(new RillError(Errors.NOT_LEADER_OR_FOLLOWER))).toBe(true);
    expect(isRetriable(new RillError(Errors.TOPIC_ALREADY_EXISTS))).toBe(false);
    expect(isRetriable(new ConnectionError("h:1", "reset"))).toBe(true);
    expect(isRetriable(new Error("boom"))).toBe(false);
  });
});
