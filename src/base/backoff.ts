/**
 * Exponential backoff with a cap: the wait before retry n is `initialDelayMs * multiplier^n`, at most
 * `delayMsMax`, optionally spread by `jitter` (0.2 draws from [0.8, 1.2] x the wait, still capped)
 * with an injected Random. Used wherever a loop retries a failed call (the metadata observer,
 * the replica fetchers); pure arithmetic, no timers.
 */
import type { Random } from "./random.ts";

/** How waits grow between retries. */
export interface BackoffPolicy {
  /** The wait before the first retry. */
  readonly initialDelayMs: number;
  /** Upper bound of any wait. */
  readonly delayMsMax: number;
  /** Factor by which the wait grows after each retry; default 2. */
  readonly multiplier?: number;
  /** Random spread of each wait as a fraction in [0, 1]; default 0 (needs a Random when > 0). */
  readonly jitter?: number;
}

/** The wait before retry number `retry` (0 = the first retry), jittered with `random` when the policy asks. */
export function backoffDelayMs(policy: BackoffPolicy, retry: number, random?: Random): number {
  const base = Math.min(policy.delayMsMax, policy.initialDelayMs * (policy.multiplier ?? 2) ** retry);
  if (random === undefined) return Math.round(base);
  // One draw per delay even without jitter, so a seeded caller's sequence does not depend on it.
  const jitter = policy.jitter ?? 0;
  const spread = 1 - jitter + 2 * jitter * random.next();
  return Math.round(Math.min(policy.delayMsMax, base * spread));
}

/** Retries counted at most: far past any cap, far below an overflowing exponent. */
const RETRY_COUNT_MAX = 64;

/** The waits of one retry loop: `next()` after each failure, `reset()` after a success. */
export class Backoff {
  private retry = 0;

  constructor(
    private readonly policy: BackoffPolicy,
    private readonly random?: Random,
  ) {
    if (!(policy.initialDelayMs >= 0 && policy.delayMsMax >= policy.initialDelayMs && (policy.multiplier ?? 2) >= 1))
      throw new RangeError(`backoff: need 0 <= initialDelayMs <= delayMsMax and multiplier >= 1, got ${JSON.stringify(policy)}`);
    const jitter = policy.jitter ?? 0;
    if (!(jitter >= 0 && jitter <= 1)) throw new RangeError(`backoff: jitter must be in [0, 1], got ${jitter}`);
    if (jitter > 0 && random === undefined) throw new RangeError("backoff: jitter needs a Random");
  }

  /** The wait before the next retry; each call grows the following one, up to the cap. */
  next(): number {
    const ms = backoffDelayMs(this.policy, this.retry, this.random);
    // Stop counting once the cap is reached, so the exponent never overflows.
    if (this.retry < RETRY_COUNT_MAX && this.policy.initialDelayMs * (this.policy.multiplier ?? 2) ** this.retry < this.policy.delayMsMax)
      this.retry++;
    return ms;
  }

  /** Starts over from `initialDelayMs` (after a success). */
  reset(): void {
    this.retry = 0;
  }
}
