/**
 * Sparse indexes of one segment: offset → file position, and max timestamp → offset.
 *
 * Indexes are derived data: they are kept in memory while a segment is active, written whole
 * when it rolls or the log closes, and rebuilt from the segment whenever the file is missing or
 * fails validation. They are never trusted blindly.
 *
 * File format (both indexes), big-endian:
 * ```
 *  0               8          12         16
 *  +---------------+----------+----------+------------------------------+
 *  | magic (8 B)   | count u32| crc32c   | count × entry                |
 *  | "RILLOFX1" or |          | of the   |                              |
 *  | "RILLTIX1"    |          | entries  |                              |
 *  +---------------+----------+----------+------------------------------+
 *  offset entry (8 B):  relativeOffset u32 | position u32
 *      relativeOffset = batch baseOffset - segment baseOffset; position = the batch's byte
 *      position in the .log file. Both strictly increasing.
 *  time entry (12 B):   timestamp i64 | relativeOffset u32
 *      timestamp = the largest record timestamp of the segment up to and including the batch at
 *      relativeOffset (its baseOffset). Both strictly increasing.
 * ```
 */
import { crc32c } from "../base/crc32c.ts";
import { assert } from "../base/assert.ts";

const HEADER = 16;
const OFFSET_MAGIC = Buffer.from("RILLOFX1", "latin1");
const TIME_MAGIC = Buffer.from("RILLTIX1", "latin1");

/** A growable pair of integer columns. */
class Columns {
  a: Float64Array;
  b: Float64Array;
  n = 0;

  constructor(capacity = 64) {
    this.a = new Float64Array(capacity);
    this.b = new Float64Array(capacity);
  }

  push(x: number, y: number): void {
    if (this.n === this.a.length) {
      const a = new Float64Array(this.n * 2);
      const b = new Float64Array(this.n * 2);
      a.set(this.a);
      b.set(this.b);
      this.a = a;
      this.b = b;
    }
    this.a[this.n] = x;
    this.b[this.n] = y;
    this.n++;
  }

  /** Index of the last entry whose `a` is <= key, or -1. */
  floor(key: number): number {
    let lo = 0;
    let hi = this.n - 1;
    let ans = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.a[mid]! <= key) {
        ans = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return ans;
  }
}

/** Offset → position. Lookups give the position of a batch at or before the target offset. */
export class OffsetIndex {
  private readonly cols = new Columns();

  constructor(readonly baseOffset: number) {}

  get entries(): number {
    return this.cols.n;
  }

  /** Adds an entry for the batch starting at `offset`, stored at `position`. */
  append(offset: number, position: number): void {
    const rel = offset - this.baseOffset;
    assert(rel >= 0 && rel <= 0xffffffff, `offset ${offset} out of index range`);
    const n = this.cols.n;
    if (n > 0) assert(rel > this.cols.a[n - 1]! && position > this.cols.b[n - 1]!, "offset index entries must increase");
    this.cols.push(rel, position);
  }

  /** Position of the last indexed batch whose base offset is <= `offset` (0 if none). */
  lookup(offset: number): number {
    const i = this.cols.floor(offset - this.baseOffset);
    return i < 0 ? 0 : this.cols.b[i]!;
  }

  /** Drops entries for batches at or after `position`. */
  truncateToPosition(position: number): void {
    while (this.cols.n > 0 && this.cols.b[this.cols.n - 1]! >= position) this.cols.n--;
  }

  /** The file image. */
  encode(): Uint8Array {
    const n = this.cols.n;
    const out = Buffer.alloc(HEADER + n * 8);
    for (let i = 0; i < n; i++) {
      out.writeUInt32BE(this.cols.a[i]!, HEADER + i * 8);
      out.writeUInt32BE(this.cols.b[i]!, HEADER + i * 8 + 4);
    }
    writeHeader(out, OFFSET_MAGIC, n);
    return out;
  }

  /** Reads a file image; null if it is not a valid index for a log of `logSize` bytes. */
  static decode(data: Uint8Array, baseOffset: number, logSize: number): OffsetIndex | null {
    const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const n = checkHeader(buf, OFFSET_MAGIC, 8);
    if (n < 0) return null;
    const idx = new OffsetIndex(baseOffset);
    let prevRel = -1;
    let prevPos = -1;
    for (let i = 0; i < n; i++) {
      const rel = buf.readUInt32BE(HEADER + i * 8);
      const pos = buf.readUInt32BE(HEADER + i * 8 + 4);
      if (rel <= prevRel || pos <= prevPos || pos >= logSize) return null;
      idx.cols.push(rel, pos);
      prevRel = rel;
      prevPos = pos;
    }
    return idx;
  }
}

/** Max timestamp → offset. */
export class TimeIndex {
  private readonly cols = new Columns();

  constructor(readonly baseOffset: number) {}

  get entries(): number {
    return this.cols.n;
  }

  /** The largest timestamp indexed so far, or -Infinity. */
  get lastTimestamp(): number {
    return this.cols.n === 0 ? -Infinity : this.cols.a[this.cols.n - 1]!;
  }

  /** Adds an entry if `timestamp` is larger than every one before it. */
  maybeAppend(timestamp: number, offset: number): void {
    if (timestamp <= this.lastTimestamp) return;
    const rel = offset - this.baseOffset;
    const n = this.cols.n;
    if (n > 0 && rel <= this.cols.b[n - 1]!) return;
    this.cols.push(timestamp, rel);
  }

  /**
   * Offset of a batch from which to scan for the first record with timestamp >= `ts`: the batch
   * of the last entry whose timestamp is < ts (every batch before it is entirely older).
   */
  lookup(ts: number): number {
    const i = this.cols.floor(ts - 1);
    return i < 0 ? this.baseOffset : this.baseOffset + this.cols.b[i]!;
  }

  /** Drops entries for offsets >= `offset`. */
  truncateToOffset(offset: number): void {
    const rel = offset - this.baseOffset;
    while (this.cols.n > 0 && this.cols.b[this.cols.n - 1]! >= rel) this.cols.n--;
  }

  encode(): Uint8Array {
    const n = this.cols.n;
    const out = Buffer.alloc(HEADER + n * 12);
    for (let i = 0; i < n; i++) {
      out.writeBigInt64BE(BigInt(this.cols.a[i]!), HEADER + i * 12);
      out.writeUInt32BE(this.cols.b[i]!, HEADER + i * 12 + 8);
    }
    writeHeader(out, TIME_MAGIC, n);
    return out;
  }

  static decode(data: Uint8Array, baseOffset: number, maxRelOffset: number): TimeIndex | null {
    const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const n = checkHeader(buf, TIME_MAGIC, 12);
    if (n < 0) return null;
    const idx = new TimeIndex(baseOffset);
    let prevTs = -Infinity;
    let prevRel = -1;
    for (let i = 0; i < n; i++) {
      const ts = Number(buf.readBigInt64BE(HEADER + i * 12));
      const rel = buf.readUInt32BE(HEADER + i * 12 + 8);
      if (ts <= prevTs || rel <= prevRel || rel > maxRelOffset) return null;
      idx.cols.push(ts, rel);
      prevTs = ts;
      prevRel = rel;
    }
    return idx;
  }
}

function writeHeader(out: Buffer, magic: Buffer, n: number): void {
  magic.copy(out, 0);
  out.writeUInt32BE(n, 8);
  out.writeUInt32BE(crc32c(out.subarray(HEADER)), 12);
}

/** Entry count if the header, size and checksum agree; -1 otherwise. */
function checkHeader(buf: Buffer, magic: Buffer, entrySize: number): number {
  if (buf.length < HEADER || !buf.subarray(0, 8).equals(magic)) return -1;
  const n = buf.readUInt32BE(8);
  if (buf.length !== HEADER + n * entrySize) return -1;
  if (buf.readUInt32BE(12) !== crc32c(buf.subarray(HEADER))) return -1;
  return n;
}
