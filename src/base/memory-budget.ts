/**
 * A memory budget in bytes that callers reserve from before they allocate, and wait on (in
 * arrival order, for a bounded time) when it is spent, instead of allocating past it: the
 * broker's `fetch.memory.max.bytes` for the responses being built and sent.
 *
 * Invariants: `bytesUsed <= bytesMax`, except that one reservation larger than the whole budget
 * is granted alone, once nothing else is held (so a single oversized request still makes
 * progress, one at a time). Waiters are served first come, first served: a large request at
 * the head is not starved by smaller ones behind it. A reservation is released exactly once
 * (releasing again does nothing). Time comes from injected `Timers`.
 */
import { assert } from "./assert.ts";
import type { Timers } from "./timers.ts";

/** Bytes held from a `MemoryBudget` until `release()`. */
export interface Reservation {
  /** Bytes held (0 once released). */
  readonly bytes: number;
  /** Gives back all but `bytes` (a no-op when already at or below it). */
  shrink(bytes: number): void;
  /** Gives everything back; safe to call more than once. */
  release(): void;
}

/** Ends a wait early (its `onabort` is set while waiting). */
export interface AbortSignalLike {
  readonly aborted: boolean;
  onabort?: (() => void) | null;
}

interface Waiter {
  readonly bytes: number;
  readonly grant: (r: Reservation | null) => void;
}

/** A byte budget with first-come-first-served, bounded waits. */
export class MemoryBudget {
  private used = 0;
  private readonly queue: Waiter[] = [];
  /** Reservations granted, and waits that timed out or were aborted (for metrics and tests). */
  readonly stats = { granted: 0, waited: 0, timedOut: 0 };

  /** `bytesMax`: bytes that may be held together; `timers`: for the bounded waits. */
  constructor(
    readonly bytesMax: number,
    private readonly timers: Timers,
  ) {
    assert(Number.isSafeInteger(bytesMax) && bytesMax > 0, `memory budget: bad size ${bytesMax}`);
  }

  /** Bytes held now. */
  get bytesUsed(): number {
    return this.used;
  }

  /** Callers waiting for room. */
  get waiting(): number {
    return this.queue.length;
  }

  /** `bytes` at once if they fit and nobody waits before us, else null. */
  tryReserve(bytes: number): Reservation | null {
    assert(Number.isSafeInteger(bytes) && bytes >= 0, `memory budget: bad reservation ${bytes}`);
    if (this.queue.length > 0 || !this.fits(bytes)) return null;
    return this.take(bytes);
  }

  /**
   * `bytes`, waiting in line for at most `waitMs` (or until `signal` aborts): null if they did
   * not come in time. A request above `bytesMax` waits until nothing else is held.
   */
  reserve(bytes: number, waitMs: number, signal?: AbortSignalLike): Promise<Reservation | null> {
    const now = this.tryReserve(bytes);
    if (now || waitMs <= 0 || signal?.aborted) return Promise.resolve(now);
    this.stats.waited++;
    return new Promise((resolve) => {
      let timer: unknown = null;
      const w: Waiter = {
        bytes,
        grant: (r) => {
          if (timer !== null) this.timers.clearTimeout(timer);
          if (signal) signal.onabort = null;
          resolve(r);
        },
      };
      const giveUp = (): void => {
        const i = this.queue.indexOf(w);
        if (i < 0) return;
        this.queue.splice(i, 1);
        this.stats.timedOut++;
        w.grant(null);
        this.serve(); // a large waiter at the head may have held smaller ones back
      };
      this.queue.push(w);
      timer = this.timers.setTimeout(giveUp, waitMs);
      if (signal) signal.onabort = giveUp;
    });
  }

  private fits(bytes: number): boolean {
    return this.used + bytes <= this.bytesMax || this.used === 0;
  }

  private take(bytes: number): Reservation {
    this.used += bytes;
    this.stats.granted++;
    let held = bytes;
    const giveBack = (n: number): void => {
      if (n <= 0) return;
      held -= n;
      this.used -= n;
      assert(this.used >= 0, "memory budget: released more than reserved");
      this.serve();
    };
    return {
      get bytes() {
        return held;
      },
      shrink: (to) => giveBack(held - Math.max(0, to)),
      release: () => giveBack(held),
    };
  }

  /** Grants waiters in order while the one at the head fits. */
  private serve(): void {
    while (this.queue.length > 0 && this.fits(this.queue[0]!.bytes)) {
      const w = this.queue.shift()!;
      w.grant(this.take(w.bytes));
    }
  }
}
