/**
 * A bounded number of bytes, handed out in FIFO order: the producer's memory bound
 * (`bufferBytes`). Whoever asks while earlier askers wait queues behind them, so a large record
 * is not starved by a stream of small ones.
 */

import { assert } from "../base/assert.ts";

interface Waiter {
  readonly bytes: number;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

/** Bytes in use out of `capacity`, with FIFO waiters. */
export class ByteBudget {
  private used = 0;
  private readonly waiters: Waiter[] = [];
  private readonly idleWaiters: (() => void)[] = [];

  /** @param capacity the bound, in bytes. */
  constructor(readonly capacity: number) {
    assert(Number.isInteger(capacity) && capacity > 0, "capacity must be a positive integer");
  }

  /** Bytes handed out and not yet released. */
  get usedBytes(): number {
    return this.used;
  }

  /** True when someone waits for bytes. */
  get hasWaiters(): boolean {
    return this.waiters.length > 0;
  }

  /** Takes `bytes` now if they are free and nobody waits; false otherwise. */
  tryAcquire(bytes: number): boolean {
    assert(bytes >= 0 && bytes <= this.capacity, "bytes out of range");
    if (this.waiters.length > 0 || this.used + bytes > this.capacity) return false;
    this.used += bytes;
    return true;
  }

  /** Takes `bytes` once they are free, after earlier waiters. `bytes` must not exceed the capacity. */
  acquire(bytes: number): Promise<void> {
    if (this.tryAcquire(bytes)) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ bytes, resolve, reject }));
  }

  /** Gives `bytes` back and wakes the waiters that now fit, in order. */
  release(bytes: number): void {
    this.used -= bytes;
    assert(this.used >= 0, "released more bytes than acquired");
    while (this.waiters.length > 0 && this.used + this.waiters[0]!.bytes <= this.capacity) {
      const w = this.waiters.shift()!;
      this.used += w.bytes;
      w.resolve();
    }
    if (this.waiters.length === 0 && this.used < this.capacity) {
      for (const wake of this.idleWaiters.splice(0)) wake();
    }
  }

  /** Resolves once nobody waits and some bytes are free (a stream's 'drain'). */
  whenFree(): Promise<void> {
    if (this.waiters.length === 0 && this.used < this.capacity) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Rejects every waiter with `error` (on close). */
  failWaiters(error: unknown): void {
    for (const w of this.waiters.splice(0)) w.reject(error);
    for (const wake of this.idleWaiters.splice(0)) wake();
  }
}
