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
 */
import { assert } from "../base/assert.ts";

/** Smallest pooled buffer; smaller requests get one of this size. */
export const BUFFER_POOL_BYTES_MIN = 64 * 1024;

/** Idle buffers of a few power-of-two sizes, at most `bytesMax` bytes in all. */
export class BufferPool {
  private readonly free = new Map<number, Buffer[]>();
  private idleBytes = 0;
  readonly stats = { taken: 0, reused: 0, given: 0, dropped: 0 };

  constructor(readonly bytesMax: number) {}

  /** Bytes of idle buffers kept. */
  get bytes(): number {
    return this.idleBytes;
  }

  /** A buffer of at least `size` bytes (its contents are whatever was there). */
  take(size: number): Buffer {
    assert(size >= 0 && Number.isSafeInteger(size), "BufferPool.take: bad size");
    const cls = sizeClass(size);
    this.stats.taken++;
    const list = this.free.get(cls);
    const buf = list?.pop();
    if (buf) {
      this.idleBytes -= buf.length;
      this.stats.reused++;
      return buf;
    }
    return Buffer.allocUnsafeSlow(cls);
  }

  /** Takes back a buffer from `take` that nothing refers to any more. */
  give(buf: Buffer): void {
    if (buf.length !== sizeClass(buf.length) || buf.byteOffset !== 0 || this.idleBytes + buf.length > this.bytesMax) {
      this.stats.dropped++;
      return;
    }
    let list = this.free.get(buf.length);
    if (!list) this.free.set(buf.length, (list = []));
    list.push(buf);
    this.idleBytes += buf.length;
    this.stats.given++;
  }

  /** Drops every idle buffer. */
  clear(): void {
    this.free.clear();
    this.idleBytes = 0;
  }
}

/** The power of two >= max(size, BUFFER_POOL_BYTES_MIN). */
function sizeClass(size: number): number {
  return size <= BUFFER_POOL_BYTES_MIN ? BUFFER_POOL_BYTES_MIN : 2 ** Math.ceil(Math.log2(size));
}
