/**
 * The SDK's one retry and backoff policy: which errors are retried (`isRetriable`), how many
 * times (`retries`), and how long to wait between attempts (exponential backoff with jitter,
 * capped). Producer, Consumer, Admin and the metadata cache all retry through this module, so
 * the policy lives here and nowhere else.
 *
 * Randomness (jitter) and sleeping are injected (`RetryContext`), so tests run the policy with a
 * seeded Random and without real waits.
 */

import { backoffDelayMs } from "../base/backoff.ts";
import type { Random } from "../base/random.ts";
import { SeededRandom } from "../base/random.ts";
import { isRetriable } from "./errors.ts";

/** How a client retries a failed request. */
export interface RetryPolicy {
  /** Retries after the first attempt (0: never retry). */
  readonly retries: number;
  /** Backoff before the first retry. */
  readonly initialBackoffMs: number;
  /** Upper bound of any backoff. */
  readonly backoffMsMax: number;
  /** Factor by which the backoff grows after each retry. */
  readonly multiplier: number;
  /** Random spread of each backoff, as a fraction: 0.2 draws from [0.8, 1.2] x the backoff. */
  readonly jitter: number;
}

/**
 * Defaults: 25 retries, 100 ms doubling up to 1 s, ±20% jitter — about 22 s of retrying in all:
 * longer than a leader failover (the controller fences a dead broker after
 * `broker.session.timeout.ms`, 9 s by default, then elects a new leader), as Kafka's
 * `delivery.timeout.ms` is. Tools that should fail fast (the CLI) pass a shorter policy.
 */
export const defaultRetryPolicy: RetryPolicy = {
  retries: 25,
  initialBackoffMs: 100,
  backoffMsMax: 1000,
  multiplier: 2,
  jitter: 0.2,
};

/** Fills a partial policy with the defaults and checks the bounds; throws RangeError naming the field. */
export function retryPolicy(p: Partial<RetryPolicy> = {}): RetryPolicy {
  const policy = { ...defaultRetryPolicy, ...p };
  const check = (name: keyof RetryPolicy, ok: boolean): void => {
    if (!ok) throw new RangeError(`retry.${name}: ${String(policy[name])} is out of range`);
  };
  check("retries", Number.isInteger(policy.retries) && policy.retries >= 0);
  check("initialBackoffMs", Number.isFinite(policy.initialBackoffMs) && policy.initialBackoffMs >= 0);
  check("backoffMsMax", Number.isFinite(policy.backoffMsMax) && policy.backoffMsMax >= policy.initialBackoffMs);
  check("multiplier", Number.isFinite(policy.multiplier) && policy.multiplier >= 1);
  check("jitter", policy.jitter >= 0 && policy.jitter <= 1);
  return policy;
}

/** The wait before retry number `retry` (0 = the first retry), jittered with `random`. */
export function backoffMs(policy: RetryPolicy, retry: number, random: Random): number {
  const { initialBackoffMs: initialDelayMs, backoffMsMax: delayMsMax, multiplier, jitter } = policy;
  return backoffDelayMs({ initialDelayMs, delayMsMax, multiplier, jitter }, retry, random);
}

/** A random source seeded from Math.random: clients are not core code, but tests pass their own. */
export function defaultRandom(): Random {
  return new SeededRandom(Math.floor(Math.random() * 2 ** 32));
}

/** Resolves after `ms`, or rejects with the signal's reason when `signal` aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** What `withRetries` needs besides the policy. */
export interface RetryContext {
  /** Jitter source. */
  readonly random: Random;
  /** How to wait; default `sleep` (real timers). */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Aborts the waits between attempts. */
  readonly signal?: AbortSignal | undefined;
  /** Called before each retry with the error and the retry number (0-based). */
  readonly onRetry?: (error: unknown, retry: number) => void;
  /** Which errors to retry; default `isRetriable` (errors.ts). */
  readonly retryIf?: (error: unknown) => boolean;
}

/**
 * Runs `attempt` until it succeeds, fails with an error that is not retriable, or has been
 * retried `policy.retries` times; between attempts it waits `backoffMs`. Rejects with the last
 * error.
 */
export async function withRetries<T>(attempt: () => Promise<T>, policy: RetryPolicy, ctx: RetryContext): Promise<T> {
  const wait = ctx.sleep ?? sleep;
  for (let retry = 0; ; retry++) {
    try {
      return await attempt();
    } catch (e) {
      if (retry >= policy.retries || !(ctx.retryIf ?? isRetriable)(e) || ctx.signal?.aborted) throw e;
      ctx.onRetry?.(e, retry);
      await wait(backoffMs(policy, retry, ctx.random), ctx.signal);
    }
  }
}
