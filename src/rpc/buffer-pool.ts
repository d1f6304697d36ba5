/**
 * Recycled read buffers for the streams that serve consumers. A Subscribe message holds the
 * buffers its log reads filled until grpc-js has serialized it (copied it into its frame); the
 * stream then gives them back here, and the next read refills one instead of allocating a fresh
 * buffer the garbage collector must find later. At ~600 MiB/s of consumption, fresh 4 MiB read
 * buffers were most of the broker's transient memory.
 *
 * Buffers come in power-of-two sizes from BUFFER_POOL_BYTES_MIN up; a pool keeps at most
 * `bytesMax` bytes of idle buffers and lets the rest go. Whoever takes a buffer may give it back
 * only once nothing refers to it (or to a view of it) any more.
 *
 * Idle buffers also expire: one not taken again within `idleMs` (BUFFER_POOL_IDLE_MS) of being
 * given back is let go. Without that the pool only ever grew, to the most buffers the streams
 * had ever held at once: in issue 14's soak (Subscribe and Consume streams started and cancelled
 * all the time) the two pools' idle 1 MiB buffers went 3 → 5 → 7 MiB over 6 minutes of steady
 * load (heap snapshots), rising with every new high of buffers held at once, toward their
 * 32 MiB bounds (four pools: 112 MiB of a 300 MiB budget). Each size keeps
 * its idle buffers as a stack (the last given is the first taken), so the bottom one has been
 * idle longest: it expired means the streams never needed that many in the last `idleMs`.
 * Expiry is checked on every take and give, and by a timer (unref'd) while buffers are idle.
 */
import { assert } from "../base/assert.ts";

/** Smallest pooled buffer; smaller requests get one of this size. */
export const BUFFER_POOL_BYTES_MIN = 64 * 1024;

/** How long an idle buffer is kept for reuse before the pool lets it go. */
export const BUFFER_POOL_IDLE_MS = 30_000;

/** The clock and timer a pool runs on (tests pass their own). */
export interface BufferPoolClock {
  /** Milliseconds, monotonic. */
  now(): number;
  /** Calls `fn` after `ms` without keeping the process alive; returns a handle for `cancel`. */
  schedule(fn: () => void, ms: number): unknown;
  cancel(handle: unknown): void;
}

/** performance.now and unref'd timers. */
const systemClock: BufferPoolClock = {
  now: () => performance.now(),
  schedule: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  cancel: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** An idle buffer and when it was given back. */
interface Idle {
  readonly buf: Buffer;
  readonly sinceMs: number;
}

/** Idle buffers of a few power-of-two sizes, at most `bytesMax` bytes in all, each for at most `idleMs`. */
export class BufferPool {
  /** By size: a stack, the most recently given last. */
  private readonly free = new Map<number, Idle[]>();
  private idleBytes = 0;
  private timer: unknown = null;
  readonly stats = { taken: 0, reused: 0, given: 0, dropped: 0, expired: 0 };

  constructor(
    readonly bytesMax: number,
    readonly idleMs: number = BUFFER_POOL_IDLE_MS,
    private readonly clock: BufferPoolClock = systemClock,
  ) {
    assert(Number.isFinite(idleMs) && idleMs > 0, `BufferPool: bad idle time ${idleMs}`);
  }

  /** Bytes of idle buffers kept. */
  get bytes(): number {
    return this.idleBytes;
  }

  /** A buffer of at least `size` bytes (its contents are whatever was there). */
  take(size: number): Buffer {
    assert(size >= 0 && Number.isSafeInteger(size), "BufferPool.take: bad size");
    this.expire();
    const cls = sizeClass(size);
    this.stats.taken++;
    const idle = this.free.get(cls)?.pop();
    if (idle) {
      this.idleBytes -= idle.buf.length;
      this.stats.reused++;
      return idle.buf;
    }
    return Buffer.allocUnsafeSlow(cls);
  }

  /** Takes back a buffer from `take` that nothing refers to any more. */
  give(buf: Buffer): void {
    this.expire();
    if (buf.length !== sizeClass(buf.length) || buf.byteOffset !== 0 || this.idleBytes + buf.length > this.bytesMax) {
      this.stats.dropped++;
      return;
    }
    let list = this.free.get(buf.length);
    if (!list) this.free.set(buf.length, (list = []));
    list.push({ buf, sinceMs: this.clock.now() });
    this.idleBytes += buf.length;
    this.stats.given++;
    if (this.timer === null) this.timer = this.clock.schedule(() => this.sweep(), this.idleMs);
  }

  /** Lets go of every buffer idle for `idleMs` or more. */
  expire(): void {
    if (this.idleBytes === 0) return;
    const cutoff = this.clock.now() - this.idleMs;
    for (const [cls, list] of this.free) {
      let n = 0;
      while (n < list.length && list[n]!.sinceMs <= cutoff) n++;
      if (n === 0) continue;
      list.splice(0, n);
      this.idleBytes -= n * cls;
      this.stats.expired += n;
      if (list.length === 0) this.free.delete(cls);
    }
  }

  /** The timer: expires, and comes back while anything is idle (when the oldest would expire). */
  private sweep(): void {
    this.timer = null;
    this.expire();
    if (this.idleBytes === 0) return;
    let oldest = Number.POSITIVE_INFINITY;
    for (const list of this.free.values()) if (list.length > 0) oldest = Math.min(oldest, list[0]!.sinceMs);
    this.timer = this.clock.schedule(() => this.sweep(), Math.max(1, oldest + this.idleMs - this.clock.now()));
  }

  /** Drops every idle buffer. */
  clear(): void {
    this.free.clear();
    this.idleBytes = 0;
    if (this.timer !== null) this.clock.cancel(this.timer);
    this.timer = null;
  }
}

/** The power of two >= max(size, BUFFER_POOL_BYTES_MIN). */
function sizeClass(size: number): number {
  return size <= BUFFER_POOL_BYTES_MIN ? BUFFER_POOL_BYTES_MIN : 2 ** Math.ceil(Math.log2(size));
}
