/**
 * The records of a RECORDS read, kept flat: one typed-array row per record (offset, timestamp,
 * where its key and value lie in the read's buffers) instead of an object and two views each.
 *
 * Why (issue 14, the 60-minute soak under Bun): consumers reading a long backlog in RECORDS
 * format (Subscribe, Consume) made the broker decode up to 1 MiB per partition per message into
 * a `FetchedRecord` with a key view and a value view each: for the soak's 10–20-byte records,
 * about ten times the bytes read in short-lived heap cells, turned over as fast as the client
 * reads. The collector runs behind such garbage, and RSS peaked above the 300 MiB bound. Here a
 * record costs 48 bytes in two typed arrays that grow by doubling, and no cell of its own; the
 * wire encoder (`src/rpc/wire-codec.ts`) writes keys and values straight from the buffers.
 *
 * A record's key and value are views only when asked for (`at`, iteration, `toArray`): for the
 * web console, forwarded answers and tests. Headers, rare, are decoded when the record is added.
 */
import type { RecordCursor, TimestampTypeValue } from "../protocol/record-batch.ts";

/** A header of a fetched record. */
export interface FetchedHeader {
  readonly key: string;
  readonly value: Uint8Array | null;
}

/** A fetched record, decoded (RECORDS format); key, value and header values are views. */
export interface FetchedRecord {
  readonly offset: number;
  /** The record's create time, or the batch's log append time (see `timestampType`). */
  readonly timestampMs: number;
  readonly timestampType: TimestampTypeValue;
  /** Leader epoch of the batch that holds it. */
  readonly leaderEpoch: number;
  readonly key: Uint8Array | null;
  readonly value: Uint8Array | null;
  readonly headers: readonly FetchedHeader[];
}

/** Int32 fields per record. */
const INTS = 8;
/** Offsets within a record's int32 row. */
const KEY_SRC = 0;
const KEY_START = 1;
const KEY_LEN = 2;
const VALUE_SRC = 3;
const VALUE_START = 4;
const VALUE_LEN = 5;
const EPOCH = 6;
const TS_TYPE = 7;
/** Float64 fields per record: offset, timestamp. */
const NUMS = 2;

/** The headers of a record that has none (shared). */
const NO_HEADERS: readonly FetchedHeader[] = Object.freeze([]);

/** Keys and values up to this many bytes are copied in a loop (cheaper than a native call). */
const SHORT_COPY = 32;

/** Rows allocated by the first add. */
const FIRST_CAPACITY = 64;

/** The records of one partition's read, in offset order. */
export class FetchedRecords implements Iterable<FetchedRecord> {
  /** How many records. */
  length = 0;
  private ints: Int32Array;
  private nums: Float64Array;
  /** The buffers keys and values lie in (a read's chunks, decompressed payloads, a forwarded record's fields). */
  private readonly sources: Uint8Array[] = [];
  /** Headers of the records that have any, by index. */
  private hdrs: Map<number, readonly FetchedHeader[]> | null = null;

  /** `capacity`: the rows to allocate at once (it grows past them by doubling). */
  constructor(capacity = 0) {
    this.ints = new Int32Array(capacity * INTS);
    this.nums = new Float64Array(capacity * NUMS);
  }

  /** A list of `records` (forwarded answers, tests). */
  static of(records: Iterable<FetchedRecord>): FetchedRecords {
    const out = new FetchedRecords();
    for (const r of records) out.push(r);
    return out;
  }

  /**
   * Adds the cursor's current record; its key and value stay where they are in `c.buf`.
   * `timestampMs` is the record's (or the batch's log append time).
   */
  addFromCursor(c: RecordCursor, timestampMs: number, timestampType: TimestampTypeValue, leaderEpoch: number): void {
    const i = this.grow();
    const src = this.sourceOf(c.buf);
    const row = i * INTS;
    const ints = this.ints;
    ints[row + KEY_SRC] = src;
    ints[row + KEY_START] = c.keyStart;
    ints[row + KEY_LEN] = c.keyLength;
    ints[row + VALUE_SRC] = src;
    ints[row + VALUE_START] = c.valueStart;
    ints[row + VALUE_LEN] = c.valueLength;
    ints[row + EPOCH] = leaderEpoch;
    ints[row + TS_TYPE] = timestampType;
    this.nums[i * NUMS] = c.offset;
    this.nums[i * NUMS + 1] = timestampMs;
    if (c.headerCount > 0) (this.hdrs ??= new Map()).set(i, c.headers());
  }

  /** Adds a record given whole (its key and value are kept as they are). */
  push(r: FetchedRecord): void {
    const i = this.grow();
    const row = i * INTS;
    const ints = this.ints;
    ints[row + KEY_SRC] = r.key === null ? -1 : this.sourceOf(r.key);
    ints[row + KEY_START] = 0;
    ints[row + KEY_LEN] = r.key === null ? -1 : r.key.length;
    ints[row + VALUE_SRC] = r.value === null ? -1 : this.sourceOf(r.value);
    ints[row + VALUE_START] = 0;
    ints[row + VALUE_LEN] = r.value === null ? -1 : r.value.length;
    ints[row + EPOCH] = r.leaderEpoch;
    ints[row + TS_TYPE] = r.timestampType;
    this.nums[i * NUMS] = r.offset;
    this.nums[i * NUMS + 1] = r.timestampMs;
    if (r.headers.length > 0) (this.hdrs ??= new Map()).set(i, r.headers);
  }

  /** Drops the records from index `n` on (a batch that failed half way adds none). */
  truncate(n: number): void {
    if (n >= this.length) return;
    if (this.hdrs !== null) for (const k of [...this.hdrs.keys()]) if (k >= n) this.hdrs.delete(k);
    this.length = n;
  }

  offset(i: number): number {
    return this.nums[i * NUMS]!;
  }

  timestampMs(i: number): number {
    return this.nums[i * NUMS + 1]!;
  }

  timestampType(i: number): TimestampTypeValue {
    return this.ints[i * INTS + TS_TYPE]! as TimestampTypeValue;
  }

  leaderEpoch(i: number): number {
    return this.ints[i * INTS + EPOCH]!;
  }

  /** The key's length; -1 for a null key. */
  keyLength(i: number): number {
    return this.ints[i * INTS + KEY_LEN]!;
  }

  /** The value's length; -1 for a null value. */
  valueLength(i: number): number {
    return this.ints[i * INTS + VALUE_LEN]!;
  }

  /** Copies the key into `out` at `pos` (nothing for a null or empty key); the bytes written. */
  copyKey(i: number, out: Uint8Array, pos: number): number {
    return this.copy(i * INTS + KEY_SRC, out, pos);
  }

  /** Copies the value into `out` at `pos`; the bytes written. */
  copyValue(i: number, out: Uint8Array, pos: number): number {
    return this.copy(i * INTS + VALUE_SRC, out, pos);
  }

  headers(i: number): readonly FetchedHeader[] {
    return this.hdrs?.get(i) ?? NO_HEADERS;
  }

  key(i: number): Uint8Array | null {
    return this.view(i * INTS + KEY_SRC);
  }

  value(i: number): Uint8Array | null {
    return this.view(i * INTS + VALUE_SRC);
  }

  /** The record at `i`, materialised (key and value as views). */
  at(i: number): FetchedRecord | undefined {
    if (i < 0) i += this.length;
    if (i < 0 || i >= this.length) return undefined;
    return {
      offset: this.offset(i),
      timestampMs: this.timestampMs(i),
      timestampType: this.timestampType(i),
      leaderEpoch: this.leaderEpoch(i),
      key: this.key(i),
      value: this.value(i),
      headers: this.headers(i),
    };
  }

  *[Symbol.iterator](): Generator<FetchedRecord, void, undefined> {
    for (let i = 0; i < this.length; i++) yield this.at(i)!;
  }

  toArray(): FetchedRecord[] {
    return [...this];
  }

  map<T>(f: (r: FetchedRecord, i: number) => T): T[] {
    const out = new Array<T>(this.length);
    for (let i = 0; i < this.length; i++) out[i] = f(this.at(i)!, i);
    return out;
  }

  /** Bytes of keys, values and headers (keys as UTF-16 length, as before), plus `perRecord` each. */
  payloadBytes(perRecord: number): number {
    let n = 0;
    const ints = this.ints;
    for (let i = 0; i < this.length; i++) {
      const row = i * INTS;
      n += perRecord + Math.max(0, ints[row + KEY_LEN]!) + Math.max(0, ints[row + VALUE_LEN]!);
    }
    if (this.hdrs !== null)
      for (const [i, hs] of this.hdrs) if (i < this.length) for (const h of hs) n += h.key.length + (h.value?.length ?? 0);
    return n;
  }

  private view(at: number): Uint8Array | null {
    const src = this.ints[at]!;
    const len = this.ints[at + 2]!;
    if (len < 0 || src < 0) return null;
    const start = this.ints[at + 1]!;
    return this.sources[src]!.subarray(start, start + len);
  }

  /** Copies without a view: short fields byte by byte, longer ones natively. */
  private copy(at: number, out: Uint8Array, pos: number): number {
    const src = this.ints[at]!;
    const len = this.ints[at + 2]!;
    if (len <= 0 || src < 0) return 0;
    const start = this.ints[at + 1]!;
    const s = this.sources[src]!;
    if (len <= SHORT_COPY) for (let k = 0; k < len; k++) out[pos + k] = s[start + k]!;
    else if (Buffer.isBuffer(s)) s.copy(out, pos, start, start + len);
    else out.set(s.subarray(start, start + len), pos);
    return len;
  }

  /** The index of `buf` among the sources (consecutive records mostly share the last one). */
  private sourceOf(buf: Uint8Array): number {
    const n = this.sources.length;
    if (n > 0 && this.sources[n - 1] === buf) return n - 1;
    this.sources.push(buf);
    return n;
  }

  /** Makes room for one more row; its index. */
  private grow(): number {
    const i = this.length;
    if (i * INTS >= this.ints.length) {
      const capacity = Math.max(FIRST_CAPACITY, i * 2);
      const ints = new Int32Array(capacity * INTS);
      ints.set(this.ints.subarray(0, i * INTS));
      const nums = new Float64Array(capacity * NUMS);
      nums.set(this.nums.subarray(0, i * NUMS));
      this.ints = ints;
      this.nums = nums;
    }
    this.length = i + 1;
    return i;
  }
}
