/**
 * acks=ALL produces waiting for a partition's high watermark (Kafka's delayed-produce
 * purgatory). Each partition keeps its waiters in offset order, so a high watermark that moves
 * completes the ones it passed from the front of the queue and looks at no other; the timeouts
 * of all waiters share one timer, armed for the earliest deadline (a binary heap of deadlines),
 * instead of one timer per request.
 *
 * A waiter ends exactly once: resolved when the high watermark passes its offset with the ISR
 * still at `min.insync.replicas` or more; rejected when the ISR shrank below it first
 * (NOT_ENOUGH_REPLICAS_AFTER_APPEND), when the partition stops being led here, or at its
 * deadline (REQUEST_TIMED_OUT). The errors come from the caller (`HwPurgatory.complete`'s and
 * the constructor's functions), so this module only orders and times.
 *
 * Pure: time comes from the injected `Clock` and `Timers`.
 */
import type { Clock } from "../base/clock.ts";
import type { Timers } from "../base/timers.ts";

/** One produce waiting for its partition's high watermark to pass `offset`. */
export interface HwWaiter<P> {
  readonly partition: P;
  /** Last offset of the produce: done once the high watermark is above it. */
  readonly offset: number;
  readonly minIsr: number;
  readonly deadlineMs: number;
  readonly timeoutMs: number;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
  /** Ended (resolved or rejected): the heap drops it when it reaches the top. */
  done: boolean;
}

/** Where a partition stands when its waiters are looked at. */
export interface HwState {
  /** Still led here: when false every waiter ends with `lost`. */
  readonly leading: boolean;
  readonly hw: number;
  readonly isrSize: number;
}

/** The waiters of every partition of one broker. */
export class HwPurgatory<P> {
  /** Per partition, its waiters by increasing offset. */
  private readonly queues = new Map<P, HwWaiter<P>[]>();
  /** Every waiter not yet dropped, as a min-heap by deadline (ended ones are dropped lazily). */
  private readonly heap: HwWaiter<P>[] = [];
  private timer: unknown = null;
  private timerAtMs = Number.POSITIVE_INFINITY;
  private live = 0;

  constructor(
    private readonly clock: Clock,
    private readonly timers: Timers,
    /** The error of a waiter whose deadline passed. */
    private readonly timedOut: (w: HwWaiter<P>) => Error,
  ) {}

  /** Waiters not yet ended. */
  get size(): number {
    return this.live;
  }

  /** Adds a waiter for `partition` (its `state` is looked at once, at once). */
  wait(partition: P, offset: number, minIsr: number, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const ms = Math.max(1, timeoutMs);
      const w: HwWaiter<P> = {
        partition,
        offset,
        minIsr,
        deadlineMs: this.clock.nowMs() + ms,
        timeoutMs: ms,
        resolve,
        reject,
        done: false,
      };
      let q = this.queues.get(partition);
      if (!q) this.queues.set(partition, (q = []));
      // Offsets almost always arrive in order: the binary search is for the rest.
      if (q.length === 0 || q[q.length - 1]!.offset <= offset) q.push(w);
      else q.splice(upperBound(q, offset), 0, w);
      this.live++;
      this.push(w);
      this.arm();
    });
  }

  /**
   * Ends the waiters of `partition` that `state` decides: all of them with `lost(w)` when the
   * partition is no longer led here; else those the high watermark passed, resolved, or
   * rejected with `shrunk(w)` when the ISR is smaller than their min.insync.replicas.
   */
  complete(partition: P, state: HwState, lost: (w: HwWaiter<P>) => Error, shrunk: (w: HwWaiter<P>) => Error): void {
    const q = this.queues.get(partition);
    if (!q) return;
    if (!state.leading) {
      this.queues.delete(partition);
      for (const w of q) this.end(w, lost(w));
      return;
    }
    let n = 0;
    while (n < q.length && q[n]!.offset < state.hw) n++;
    if (n === 0) return;
    const passed = q.splice(0, n);
    if (q.length === 0) this.queues.delete(partition);
    for (const w of passed) this.end(w, state.isrSize < w.minIsr ? shrunk(w) : null);
  }

  /** Whether `partition` has waiters. */
  has(partition: P): boolean {
    return this.queues.has(partition);
  }

  private end(w: HwWaiter<P>, err: Error | null): void {
    if (w.done) return;
    w.done = true;
    this.live--;
    // The last wait ended: the heap holds only ended ones, and the timer has nothing to time.
    if (this.live === 0) {
      this.heap.length = 0;
      this.arm();
    }
    if (err) w.reject(err);
    else w.resolve();
  }

  // ---------------------------------------------------------------- the shared timer

  private arm(): void {
    while (this.heap.length > 0 && this.heap[0]!.done) this.pop();
    const first = this.heap[0];
    if (!first) {
      if (this.timer !== null) this.timers.clearTimeout(this.timer);
      this.timer = null;
      this.timerAtMs = Number.POSITIVE_INFINITY;
      return;
    }
    if (this.timer !== null && this.timerAtMs <= first.deadlineMs) return;
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timerAtMs = first.deadlineMs;
    this.timer = this.timers.setTimeout(() => this.expire(), Math.max(1, first.deadlineMs - this.clock.nowMs()));
  }

  private expire(): void {
    this.timer = null;
    this.timerAtMs = Number.POSITIVE_INFINITY;
    const now = this.clock.nowMs();
    while (this.heap.length > 0 && (this.heap[0]!.done || this.heap[0]!.deadlineMs <= now)) {
      const w = this.pop();
      if (w.done) continue;
      const q = this.queues.get(w.partition);
      if (q) {
        const i = q.indexOf(w);
        if (i >= 0) q.splice(i, 1);
        if (q.length === 0) this.queues.delete(w.partition);
      }
      this.end(w, this.timedOut(w));
    }
    this.arm();
  }

  private push(w: HwWaiter<P>): void {
    const h = this.heap;
    h.push(w);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent]!.deadlineMs <= w.deadlineMs) break;
      h[i] = h[parent]!;
      i = parent;
    }
    h[i] = w;
    // Ended waiters wait in the heap until their deadline: rebuild when they are most of it.
    if (h.length > 1024 && this.live * 2 < h.length) this.compact();
  }

  private pop(): HwWaiter<P> {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= h.length) break;
        const r = l + 1;
        const c = r < h.length && h[r]!.deadlineMs < h[l]!.deadlineMs ? r : l;
        if (h[c]!.deadlineMs >= last.deadlineMs) break;
        h[i] = h[c]!;
        i = c;
      }
      h[i] = last;
    }
    return top;
  }

  private compact(): void {
    const keep = this.heap.filter((w) => !w.done).sort((a, b) => a.deadlineMs - b.deadlineMs);
    this.heap.length = 0;
    // A sorted array is a valid min-heap.
    for (const w of keep) this.heap.push(w);
  }
}

/** Index of the first waiter with an offset above `offset`. */
function upperBound<P>(q: readonly HwWaiter<P>[], offset: number): number {
  let lo = 0;
  let hi = q.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (q[mid]!.offset <= offset) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
