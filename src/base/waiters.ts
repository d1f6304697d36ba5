/**
 * Waiting for state to change, on injected timers. A component that changes state in steps (a
 * metadata store applying entries, a broker registering) owns a `Waiters` and calls `notify()`
 * after every step; callers wait with `waitUntil(cond, what, timeoutMs)`, which resolves once
 * `cond()` holds after some step, and rejects after `timeoutMs` or once the owner closes.
 *
 * `Listeners` is the other half of the same pattern: callbacks told of each change, where one
 * failing callback is reported and does not stop the others — unless it failed an assertion,
 * which is a bug and propagates (see assert.ts).
 */
import { AssertionError } from "./assert.ts";
import type { Timers } from "./timers.ts";

/** How one wait may end early or report its timeout. */
export interface WaitOptions {
  /** Checked after `cond` on every notify: an error ends the wait with it. */
  readonly failure?: () => Error | null;
  /** The error a timed-out wait rejects with; default: `onTimeout` of the Waiters. */
  readonly timeoutError?: () => Error;
}

/** What a Waiters answers when a wait times out or the owner closes. */
export interface WaitersOptions {
  /** The error of a wait that timed out, given what it waited for and how long. */
  readonly onTimeout: (what: string, timeoutMs: number) => Error;
  /** The error of a wait that was pending when the owner closed. */
  readonly onClose: () => Error;
}

/** Pending waits for a condition, re-checked on every `notify()`. */
export class Waiters {
  private readonly pending = new Set<() => void>();
  private closed = false;

  constructor(
    private readonly timers: Timers,
    private readonly o: WaitersOptions,
  ) {}

  /** How many waits are pending (for tests and metrics). */
  get size(): number {
    return this.pending.size;
  }

  /**
   * Resolves once `cond()` holds (checked now and after every `notify`), or rejects: after
   * `timeoutMs`, when `options.failure` reports an error, or when the owner closes.
   */
  waitUntil(cond: () => boolean, what: string, timeoutMs: number, options: WaitOptions = {}): Promise<void> {
    if (cond()) return Promise.resolve();
    if (this.closed) return Promise.reject(this.o.onClose());
    return new Promise((resolve, reject) => {
      const finish = (e: Error | null): void => {
        this.pending.delete(check);
        this.timers.clearTimeout(timer);
        if (e) reject(e);
        else resolve();
      };
      const check = (): void => {
        if (this.closed) return finish(this.o.onClose());
        if (cond()) return finish(null);
        const failed = options.failure?.() ?? null;
        if (failed) finish(failed);
      };
      const timer = this.timers.setTimeout(
        () => finish(options.timeoutError ? options.timeoutError() : this.o.onTimeout(what, timeoutMs)),
        timeoutMs,
      );
      this.pending.add(check);
    });
  }

  /** Re-checks every pending wait (call after each change of state). */
  notify(): void {
    for (const check of [...this.pending]) check();
  }

  /** Rejects every pending wait, and every later one whose condition does not hold at once. */
  close(): void {
    this.closed = true;
    this.notify();
  }
}

/** Callbacks told of every change; returns an unsubscribe function from `add`. */
export class Listeners<T extends unknown[]> {
  private readonly fns = new Set<(...args: T) => void>();

  /** Adds `fn`; the returned function removes it. */
  add(fn: (...args: T) => void): () => void {
    this.fns.add(fn);
    return () => this.fns.delete(fn);
  }

  /** Calls every listener with `args`; the first that throws stops the rest and the error propagates. */
  emit(...args: T): void {
    for (const fn of [...this.fns]) fn(...args);
  }

  /**
   * Calls every listener with `args`. A listener that throws is passed to `onError` and the
   * others still run; an AssertionError is rethrown at once (a bug stops the process).
   */
  emitGuarded(onError: (e: unknown) => void, ...args: T): void {
    for (const fn of [...this.fns]) {
      try {
        fn(...args);
      } catch (e) {
        if (e instanceof AssertionError) throw e;
        onError(e);
      }
    }
  }
}
