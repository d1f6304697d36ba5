/**
 * The primitive types of Kafka's wire protocol, read from one received frame and written into a
 * list of chunks.
 *
 * Kafka's types (`protocol/types` in its docs): big-endian INT8/16/32/64, UINT16, FLOAT64,
 * BOOLEAN; STRING (INT16 length, -1 for null) and its flexible form COMPACT_STRING (UNSIGNED_VARINT
 * length + 1, 0 for null); BYTES (INT32 length) and COMPACT_BYTES; ARRAY (INT32 count, -1 null) and
 * COMPACT_ARRAY (UNSIGNED_VARINT count + 1); UUID (16 bytes); tagged fields (UNSIGNED_VARINT count,
 * then per field UNSIGNED_VARINT tag, UNSIGNED_VARINT size, the bytes).
 *
 * Reading never trusts a length: every read checks the bytes left and throws `KafkaDecodeError`
 * (the connection answers that by closing, as Kafka does). Byte fields are views of the frame,
 * never copies: a produce request's record batches reach the log as the bytes received.
 *
 * Writing collects small values in a growing scratch buffer and hands large byte fields (a
 * fetch answer's batches) over as their own chunks, so they go to the socket without a copy.
 */

/** A frame that does not parse as the message it claims to be. */
export class KafkaDecodeError extends Error {
  override readonly name = "KafkaDecodeError";
}

/** Largest count or length accepted before the bytes left are even looked at (Kafka's own limit is the frame). */
const COUNT_MAX = 0x7fffffff;

/** Reads Kafka's primitive types from one buffer, front to back. */
export class KafkaReader {
  private pos: number;

  constructor(
    private readonly buf: Buffer,
    start = 0,
    private readonly end = buf.length,
  ) {
    this.pos = start;
  }

  /** Where the next read starts. */
  get offset(): number {
    return this.pos;
  }

  /** Bytes not read yet. */
  get remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number, what: string): void {
    if (n > this.end - this.pos) {
      throw new KafkaDecodeError(`${what} needs ${n} bytes at byte ${this.pos}, ${this.end - this.pos} left`);
    }
  }

  int8(): number {
    this.need(1, "INT8");
    return this.buf.readInt8(this.pos++);
  }

  bool(): boolean {
    this.need(1, "BOOLEAN");
    return this.buf[this.pos++] !== 0;
  }

  int16(): number {
    this.need(2, "INT16");
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  uint16(): number {
    this.need(2, "UINT16");
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  int32(): number {
    this.need(4, "INT32");
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  uint32(): number {
    this.need(4, "UINT32");
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  int64(): bigint {
    this.need(8, "INT64");
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  float64(): number {
    this.need(8, "FLOAT64");
    const v = this.buf.readDoubleBE(this.pos);
    this.pos += 8;
    return v;
  }

  /** UNSIGNED_VARINT (at most 5 bytes, a 32-bit value). */
  uvarint(): number {
    let v = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      this.need(1, "UNSIGNED_VARINT");
      const b = this.buf[this.pos++] as number;
      v += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) {
        if (v > 0xffffffff) throw new KafkaDecodeError(`UNSIGNED_VARINT ${v} is over 32 bits`);
        return v;
      }
    }
    throw new KafkaDecodeError(`UNSIGNED_VARINT longer than 5 bytes at byte ${this.pos}`);
  }

  /** VARINT (zigzag, 32 bits). */
  varint(): number {
    const u = this.uvarint();
    return u % 2 === 0 ? u / 2 : -(u + 1) / 2;
  }

  uuid(): Buffer {
    this.need(16, "UUID");
    const v = this.buf.subarray(this.pos, this.pos + 16);
    this.pos += 16;
    return v;
  }

  /** `n` bytes as a view of the frame. */
  raw(n: number, what = "bytes"): Buffer {
    this.need(n, what);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /** A length: INT16/INT32 (-1 = null) or, flexible, UNSIGNED_VARINT - 1 (-1 = null). */
  private length(kind: "int16" | "int32", flexible: boolean, what: string): number {
    const n = flexible ? this.uvarint() - 1 : kind === "int16" ? this.int16() : this.int32();
    if (n < -1) throw new KafkaDecodeError(`${what} length ${n} is negative`);
    return n;
  }

  /** STRING / COMPACT_STRING; null when the length is -1. */
  string(flexible: boolean): string | null {
    const n = this.length("int16", flexible, "STRING");
    if (n < 0) return null;
    return this.raw(n, "STRING").toString("utf8");
  }

  /** BYTES / COMPACT_BYTES as a view; null when the length is -1. */
  bytes(flexible: boolean): Buffer | null {
    const n = this.length("int32", flexible, "BYTES");
    if (n < 0) return null;
    return this.raw(n, "BYTES");
  }

  /** An array's count (-1 = null), checked against the bytes left (every element takes at least one byte unless `elementMin` is 0). */
  count(flexible: boolean, elementMin = 1): number {
    const n = this.length("int32", flexible, "ARRAY");
    if (n > COUNT_MAX || (elementMin > 0 && n * elementMin > this.remaining)) {
      throw new KafkaDecodeError(`ARRAY of ${n} elements at byte ${this.pos} cannot fit in the ${this.remaining} bytes left`);
    }
    return n;
  }

  /** Skips `n` bytes (an unknown tagged field). */
  skip(n: number): void {
    this.need(n, "tagged field");
    this.pos += n;
  }
}

/** Scratch bytes grow in steps of this at least. */
const SCRATCH_MIN = 256;
/** Byte fields at least this long are passed on as their own chunk instead of copied. */
export const CHUNK_MIN = 1024;

/** Writes Kafka's primitive types into chunks (see the module comment). */
export class KafkaWriter {
  private readonly chunks: Buffer[] = [];
  private scratch: Buffer;
  /** Start of the part of `scratch` not yet moved to `chunks`. */
  private from = 0;
  private pos = 0;
  /** Bytes in `chunks`. */
  private flushed = 0;

  constructor(sizeHint = SCRATCH_MIN) {
    this.scratch = Buffer.allocUnsafe(Math.max(sizeHint, SCRATCH_MIN));
  }

  /** Bytes written so far. */
  get length(): number {
    return this.flushed + this.pos - this.from;
  }

  private room(n: number): void {
    if (this.pos + n <= this.scratch.length) return;
    this.cut();
    this.scratch = Buffer.allocUnsafe(Math.max(n, this.scratch.length * 2));
    this.from = 0;
    this.pos = 0;
  }

  /** Moves what was written into `scratch` to the chunk list. */
  private cut(): void {
    if (this.pos > this.from) {
      this.chunks.push(this.scratch.subarray(this.from, this.pos));
      this.flushed += this.pos - this.from;
      this.from = this.pos;
    }
  }

  int8(v: number): this {
    this.room(1);
    this.scratch.writeInt8(v, this.pos++);
    return this;
  }

  bool(v: boolean): this {
    this.room(1);
    this.scratch[this.pos++] = v ? 1 : 0;
    return this;
  }

  int16(v: number): this {
    this.room(2);
    this.pos = this.scratch.writeInt16BE(v, this.pos);
    return this;
  }

  uint16(v: number): this {
    this.room(2);
    this.pos = this.scratch.writeUInt16BE(v, this.pos);
    return this;
  }

  int32(v: number): this {
    this.room(4);
    this.pos = this.scratch.writeInt32BE(v, this.pos);
    return this;
  }

  uint32(v: number): this {
    this.room(4);
    this.pos = this.scratch.writeUInt32BE(v, this.pos);
    return this;
  }

  int64(v: bigint): this {
    this.room(8);
    this.pos = this.scratch.writeBigInt64BE(v, this.pos);
    return this;
  }

  float64(v: number): this {
    this.room(8);
    this.pos = this.scratch.writeDoubleBE(v, this.pos);
    return this;
  }

  uvarint(v: number): this {
    this.room(5);
    let x = v >>> 0;
    while (x >= 0x80) {
      this.scratch[this.pos++] = (x & 0x7f) | 0x80;
      x >>>= 7;
    }
    this.scratch[this.pos++] = x;
    return this;
  }

  varint(v: number): this {
    return this.uvarint(v >= 0 ? v * 2 : -v * 2 - 1);
  }

  /** Bytes as they are: copied when small, passed on as a chunk when large. */
  raw(b: Uint8Array): this {
    if (b.length >= CHUNK_MIN) {
      this.cut();
      this.chunks.push(Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.length));
      this.flushed += b.length;
      return this;
    }
    this.room(b.length);
    this.scratch.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  uuid(v: Uint8Array): this {
    if (v.length !== 16) throw new RangeError(`a UUID has 16 bytes, not ${v.length}`);
    return this.raw(v);
  }

  private lengthField(kind: "int16" | "int32", flexible: boolean, n: number): this {
    if (flexible) return this.uvarint(n + 1);
    return kind === "int16" ? this.int16(n) : this.int32(n);
  }

  string(v: string | null, flexible: boolean): this {
    if (v === null) return this.lengthField("int16", flexible, -1);
    const n = Buffer.byteLength(v, "utf8");
    if (n > 0x7fff) throw new RangeError(`a STRING holds at most 32767 bytes, not ${n}`);
    this.lengthField("int16", flexible, n);
    this.room(n);
    this.pos += this.scratch.write(v, this.pos, "utf8");
    return this;
  }

  bytes(v: Uint8Array | null, flexible: boolean): this {
    if (v === null) return this.lengthField("int32", flexible, -1);
    return this.lengthField("int32", flexible, v.length).raw(v);
  }

  /** BYTES made of several chunks (a fetch answer's batches), none copied when large. */
  chunked(v: readonly Uint8Array[], flexible: boolean): this {
    let n = 0;
    for (const c of v) n += c.length;
    this.lengthField("int32", flexible, n);
    for (const c of v) this.raw(c);
    return this;
  }

  count(n: number, flexible: boolean): this {
    return this.lengthField("int32", flexible, n);
  }

  /** Everything written, as chunks in order (the writer is not used after this). */
  finish(): Buffer[] {
    this.cut();
    return this.chunks;
  }

  /** Everything written as one buffer (tests, small messages). */
  toBuffer(): Buffer {
    const c = this.finish();
    return c.length === 1 ? (c[0] as Buffer) : Buffer.concat(c);
  }
}
