/**
 * The tail cache of a partition log: the newest appended batches, kept as the very slices that
 * were appended, so a consumer (or follower) at the head of the log is answered from memory
 * without a disk read.
 *
 * Invariants: entries are in rising offset order (asserted on every push: reads binary-search
 * them) and end at the log end (the log clears the cache when an append is not cached, and cuts
 * it on truncation); the bytes held never exceed `capacity`, the oldest entries going first.
 * Removed head entries are blanked and compacted away in bulk, so `push` stays O(1) amortised.
 */
import { assert } from "../base/assert.ts";

/** A read answered from the cache: whole batches back to back (the shape of a log read). */
export interface CachedRead {
  readonly chunks: Buffer[];
  readonly bytes: number;
  /** Offset after the last batch returned. */
  readonly nextOffset: number;
}

const EMPTY_BUF = Buffer.alloc(0);

/**
 * The newest appended batches, kept as the very slices that were appended, so a consumer at the
 * head of the log is answered from memory. Bounded by bytes; the oldest entries go first.
 */
export class TailCache {
  private bufs: Buffer[] = [];
  private bases: number[] = [];
  private lasts: number[] = [];
  private head = 0;
  private bytes = 0;

  /** `capacity`: bytes kept at most; 0 keeps nothing. */
  constructor(private readonly capacity: number) {}

  /**
   * Adds the batches just appended at the log end (`baseOffset`..`lastOffset`), dropping the
   * oldest entries past the capacity. A slice larger than the whole cache empties it.
   */
  push(buf: Buffer, baseOffset: number, lastOffset: number): void {
    assert(baseOffset <= lastOffset, `tail cache: batch offsets ${baseOffset}..${lastOffset} run backwards`);
    const last = this.bufs.length > this.head ? this.lasts[this.lasts.length - 1]! : -1;
    assert(baseOffset > last, `tail cache: batch at ${baseOffset} pushed after one ending at ${last}`);
    if (this.capacity <= 0 || buf.length > this.capacity) {
      this.clear();
      return;
    }
    this.bufs.push(buf);
    this.bases.push(baseOffset);
    this.lasts.push(lastOffset);
    this.bytes += buf.length;
    while (this.bytes > this.capacity) {
      this.bytes -= this.bufs[this.head]!.length;
      this.bufs[this.head] = EMPTY_BUF;
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.bufs.length) this.compact();
  }

  private compact(): void {
    this.bufs = this.bufs.slice(this.head);
    this.bases = this.bases.slice(this.head);
    this.lasts = this.lasts.slice(this.head);
    this.head = 0;
  }

  /**
   * Whole batches from the one holding `offset`, up to `maxBytes` (at least one entry) and below
   * `limit`, or null if the cache does not reach back to `offset`.
   */
  read(offset: number, maxBytes: number, limit: number): CachedRead | null {
    const n = this.bufs.length;
    if (this.head >= n || offset < this.bases[this.head]!) return null;
    let i = this.find(offset);
    const chunks: Buffer[] = [];
    let bytes = 0;
    let next = offset;
    for (; i < n && this.bases[i]! < limit; i++) {
      const b = this.bufs[i]!;
      if (chunks.length > 0 && bytes + b.length > maxBytes) break;
      chunks.push(b);
      bytes += b.length;
      next = this.lasts[i]! + 1;
    }
    return { chunks, bytes, nextOffset: next };
  }

  /** First entry whose last offset is >= offset. */
  private find(offset: number): number {
    let lo = this.head;
    let hi = this.bufs.length - 1;
    let ans = this.bufs.length;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.lasts[mid]! >= offset) {
        ans = mid;
        hi = mid - 1;
      } else lo = mid + 1;
    }
    return ans;
  }

  /** Drops entries with any offset >= `offset`. */
  truncateFrom(offset: number): void {
    while (this.bufs.length > this.head && this.lasts[this.lasts.length - 1]! >= offset) {
      this.bytes -= this.bufs.pop()!.length;
      this.bases.pop();
      this.lasts.pop();
    }
  }

  /** Drops entries that start below `offset`. */
  dropBelow(offset: number): void {
    while (this.head < this.bufs.length && this.bases[this.head]! < offset) {
      this.bytes -= this.bufs[this.head]!.length;
      this.bufs[this.head] = EMPTY_BUF;
      this.head++;
    }
  }

  /** Drops everything. */
  clear(): void {
    this.bufs = [];
    this.bases = [];
    this.lasts = [];
    this.head = 0;
    this.bytes = 0;
  }
}
