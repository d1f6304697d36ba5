/**
 * A protobuf wire-format reader and writer for hand-written codecs: the generic half of the
 * codecs of the batch-carrying messages (src/client/wire-codec.ts, src/rpc/wire-codec.ts). It
 * knows the wire format, not Rill's messages.
 *
 * - `Reader`: a bounded cursor over `buf[pos, end)`. `bytes` fields are views of the input (no
 *   copy); strings are UTF-8 validated as protobuf-es does for proto3; nested messages are read
 *   by a sub-reader or by protobuf-es (`message`); `skip` passes over unknown fields of every
 *   wire type, groups included. Every failure throws `WireFormatError` naming the message path,
 *   the field and the byte position.
 * - `Writer`: a cursor over an exactly sized Buffer, for codecs that measure first (the `size*`
 *   functions) and write second, so a payload is copied once, into the output.
 *
 * Wire format reminders: a field is a varint tag (field number << 3 | wire type) then a value;
 * wire type 0 = varint, 1 = 8 bytes, 2 = varint length + bytes, 5 = 4 bytes, 3/4 = group
 * start/end (obsolete, skipped). int32 and enums are varints of the value sign-extended to 64
 * bits (a negative value takes 10 bytes).
 */

import { fromBinary } from "@bufbuild/protobuf";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { assert } from "../base/assert.ts";

/** Malformed or truncated protobuf input; the message names the message, field and position. */
export class WireFormatError extends Error {
  override name = "WireFormatError";
}

/** Wire type of varints (int32, int64, uint64, bool, enum). */
export const VARINT = 0;
/** Wire type of 8-byte values (fixed64, double). */
export const I64 = 1;
/** Wire type of length-delimited values (bytes, string, messages, packed fields). */
export const LEN = 2;
/** Wire type of a group start (obsolete; skipped). */
export const SGROUP = 3;
/** Wire type of a group end (obsolete; skipped). */
export const EGROUP = 4;
/** Wire type of 4-byte values (fixed32, float). */
export const I32 = 5;
/** The empty `bytes` value (shared; never written to). */
export const EMPTY: Uint8Array = new Uint8Array(0);
/** How deeply groups may nest in skipped fields. */
const MAX_DEPTH = 100;
/** Strings up to this many bytes that are ASCII skip TextDecoder (names, ids). */
const ASCII_FAST_PATH_MAX = 64;
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Field names by number, for error messages about known fields with a wrong wire type. */
export type FieldNames = Readonly<Record<number, string>>;

/** A bounded read cursor over `buf[pos, end)`; `path` prefixes error messages. */
export class Reader {
  pos: number;

  constructor(
    readonly buf: Uint8Array,
    pos: number,
    readonly end: number,
    readonly path: string,
  ) {
    this.pos = pos;
  }

  /** Throws a WireFormatError naming `field` and the position. */
  fail(field: string, what: string): never {
    throw new WireFormatError(`${this.path}.${field}: ${what} (at byte ${this.pos})`);
  }

  /** A varint's low 32 bits as a signed int (int32, enum, tag, length); skips bits above 32. */
  varint(field: string): number {
    const buf = this.buf;
    let result = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      if (this.pos >= this.end) this.fail(field, "varint runs past the end of the message");
      const b = buf[this.pos++]!;
      if (shift < 32) result |= (b & 0x7f) << shift;
      if (b < 0x80) return result | 0;
    }
    return this.fail(field, "varint is longer than 10 bytes");
  }

  /**
   * A field's tag (field number << 3 | wire type) as a uint32. As protobuf-es, a tag whose varint
   * does not fit in 32 bits is refused (not cut to its low bits, which would name another field).
   */
  tag(field = "<tag>"): number {
    const at = this.pos;
    const v = this.varint(field);
    const n = this.pos - at;
    if (n > 5 || (n === 5 && this.buf[this.pos - 1]! > 0x0f)) this.fail(field, "tag varint overflows uint32");
    return v >>> 0;
  }

  /** A 64-bit varint as a bigint: signed (int64) or unsigned (uint64). */
  varint64(field: string, signed: boolean): bigint {
    const buf = this.buf;
    let lo = 0;
    let hi = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      if (this.pos >= this.end) this.fail(field, "varint runs past the end of the message");
      const b = buf[this.pos++]!;
      if (shift < 28) lo |= (b & 0x7f) << shift;
      else if (shift === 28) {
        lo |= (b & 0x0f) << 28;
        hi = (b & 0x7f) >> 4;
      } else hi |= (b & 0x7f) << (shift - 32);
      if (b < 0x80) {
        if (hi === 0) return BigInt(lo >>> 0);
        const v = (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
        return signed ? BigInt.asIntN(64, v) : BigInt.asUintN(64, v);
      }
    }
    return this.fail(field, "varint is longer than 10 bytes");
  }

  /** Reads a length prefix and skips the payload; returns the payload's start (it ends at pos). */
  len(field: string): number {
    const at = this.pos;
    const n = this.varint(field);
    if (n < 0 || this.pos - at > 5) this.fail(field, "length does not fit in 31 bits");
    const start = this.pos;
    if (n > this.end - start) this.fail(field, `length ${n} runs past the end of the message (${this.end - start} bytes left)`);
    this.pos = start + n;
    return start;
  }

  /** A `bytes` field: a view of the input, no copy. */
  bytes(field: string): Uint8Array {
    const start = this.len(field);
    return this.buf.subarray(start, this.pos);
  }

  /** A `string` field, with UTF-8 validation as protobuf-es does for proto3. */
  string(field: string): string {
    const start = this.len(field);
    const buf = this.buf;
    let ascii = this.pos - start <= ASCII_FAST_PATH_MAX;
    for (let i = start; ascii && i < this.pos; i++) {
      if (buf[i]! >= 0x80) ascii = false;
    }
    if (ascii) {
      return String.fromCharCode.apply(null, buf.subarray(start, this.pos) as unknown as number[]);
    }
    try {
      return utf8.decode(buf.subarray(start, this.pos));
    } catch {
      return this.fail(field, "invalid UTF-8");
    }
  }

  /** A length-delimited submessage decoded by protobuf-es. */
  message<D extends DescMessage>(schema: D, field: string): MessageShape<D> {
    const start = this.len(field);
    try {
      return fromBinary(schema, this.buf.subarray(start, this.pos), { readUnknownFields: false });
    } catch (e) {
      return this.fail(field, e instanceof Error ? e.message : String(e));
    }
  }

  /** A nested reader over the length-delimited field just read. */
  sub(field: string): Reader {
    const start = this.len(field);
    return new Reader(this.buf, start, this.pos, `${this.path}.${field}`);
  }

  /** Skips a field this codec does not decode; a known field with a wrong wire type fails. */
  skip(tag: number, names: FieldNames, depth = 0): void {
    const no = tag >>> 3;
    const wireType = tag & 7;
    const field = names[no] ?? `<field ${no}>`;
    if (names[no] !== undefined) this.fail(field, `unexpected wire type ${wireType}`);
    if (no === 0) this.fail(field, "invalid field number 0");
    switch (wireType) {
      case VARINT:
        this.varint(field);
        return;
      case I64:
        return this.advance(field, 8);
      case LEN:
        this.len(field);
        return;
      case I32:
        return this.advance(field, 4);
      case SGROUP:
        return this.skipGroup(no, field, depth);
      default:
        this.fail(field, `invalid wire type ${wireType}`);
    }
  }

  private advance(field: string, n: number): void {
    if (n > this.end - this.pos) this.fail(field, "value runs past the end of the message");
    this.pos += n;
  }

  private skipGroup(no: number, field: string, depth: number): void {
    if (depth >= MAX_DEPTH) this.fail(field, "groups nested too deeply");
    for (;;) {
      if (this.pos >= this.end) this.fail(field, "group runs past the end of the message");
      const tag = this.tag(field);
      if ((tag & 7) === EGROUP) {
        if (tag >>> 3 !== no) this.fail(field, "mismatched group end");
        return;
      }
      this.skip(tag, {}, depth + 1);
    }
  }
}

/** Bytes of a varint of a uint32 value. */
export function sizeUint32(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

/** Bytes of an int32 varint (a negative value takes 10). */
export function sizeInt32(v: number): number {
  return v < 0 ? 10 : sizeUint32(v);
}

/** Bytes of an int64 varint. */
export function sizeInt64(v: bigint | number): number {
  const n = smallInt(v);
  if (n >= 0) return sizeUint32(n);
  const safe = safeNonNegative(v);
  if (safe >= 0) {
    let size = 5; // safe >= 2^32: at least five 7-bit groups
    for (let x = Math.floor(safe / 2 ** 35); x > 0; x = Math.floor(x / 128)) size++;
    return size;
  }
  let x = BigInt.asUintN(64, BigInt(v));
  let size = 1;
  while (x >= 0x80n) {
    x >>= 7n;
    size++;
  }
  return size;
}

/**
 * `v` as a number when it is an integer in [0, 2^53), else -1. Varints of such values (offsets,
 * millisecond timestamps) are written with number arithmetic: the bigint path allocates a bigint
 * per 7 bits, about 17 per timestamp sized and written.
 */
function safeNonNegative(v: bigint | number): number {
  if (typeof v === "number") return v >= 0 && Number.isSafeInteger(v) ? v : -1;
  return v >= 0n && v <= 9007199254740991n ? Number(v) : -1;
}

/** `v` as a number when it is an integer in [0, 2^32), else -1 (then the bigint path runs). */
function smallInt(v: bigint | number): number {
  if (typeof v === "number") return v >= 0 && v < 0x100000000 && Number.isInteger(v) ? v : -1;
  return v >= 0n && v < 0x100000000n ? Number(v) : -1;
}

/** Tag plus length prefix plus payload of a length-delimited field. */
export function sizeLen(fieldNo: number, n: number): number {
  return sizeUint32(fieldNo << 3) + sizeUint32(n) + n;
}

/** A write cursor over an exactly sized Buffer (a fresh one, or `into` of exactly that size). */
export class Writer {
  pos = 0;
  readonly buf: Buffer;

  constructor(size: number, into?: Buffer) {
    assert(into === undefined || into.length === size, "Writer: `into` is not of the planned size");
    this.buf = into ?? Buffer.allocUnsafe(size);
  }

  /** A varint of a uint32 value. */
  uint32(v: number): void {
    const buf = this.buf;
    while (v >= 0x80) {
      buf[this.pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    buf[this.pos++] = v;
  }

  /** An int32 varint (a negative value takes 10 bytes). */
  int32(v: number): void {
    if (v >= 0) this.uint32(v);
    else this.int64(v);
  }

  /** An int64 or uint64 varint. */
  int64(v: bigint | number): void {
    const n = smallInt(v);
    if (n >= 0) return this.uint32(n);
    const buf = this.buf;
    let safe = safeNonNegative(v);
    if (safe >= 0) {
      while (safe >= 0x80) {
        buf[this.pos++] = (safe % 128) | 0x80;
        safe = Math.floor(safe / 128);
      }
      buf[this.pos++] = safe;
      return;
    }
    let x = BigInt.asUintN(64, BigInt(v));
    while (x >= 0x80n) {
      buf[this.pos++] = Number(x & 0x7fn) | 0x80;
      x >>= 7n;
    }
    buf[this.pos++] = Number(x);
  }

  /** A field's tag. */
  tag(fieldNo: number, wireType: number): void {
    this.uint32((fieldNo << 3) | wireType);
  }

  /** An int32 or enum field. */
  int32Field(fieldNo: number, v: number): void {
    this.tag(fieldNo, VARINT);
    this.int32(v);
  }

  /** An int64 or uint64 field. */
  int64Field(fieldNo: number, v: bigint | number): void {
    this.tag(fieldNo, VARINT);
    this.int64(v);
  }

  /** Bytes as they are (the one copy of a payload). */
  raw(bytes: Uint8Array): void {
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** A length-delimited field whose payload is `bytes`. */
  bytes(fieldNo: number, bytes: Uint8Array): void {
    this.tag(fieldNo, LEN);
    this.uint32(bytes.length);
    this.raw(bytes);
  }

  /** A string field whose UTF-8 length `n` was measured by the size pass. */
  string(fieldNo: number, s: string, n: number): void {
    this.tag(fieldNo, LEN);
    this.uint32(n);
    this.pos += this.buf.write(s, this.pos, n, "utf8");
  }

  /** The output; asserts that exactly the planned size was written. */
  finish(): Buffer {
    assert(this.pos === this.buf.length, `wire codec wrote ${this.pos} of ${this.buf.length} bytes`);
    return this.buf;
  }
}

/** True for 0 and 0n (implicit-presence defaults are not written). */
export function isZero(v: bigint | number): boolean {
  return v === 0 || v === 0n;
}
