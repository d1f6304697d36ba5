/**
 * Zig-zag varints as Kafka's record format uses them (protobuf's sint32/sint64 encoding).
 *
 * Readers return the value and leave the position after it in `cursor.pos`, so hot loops do not
 * allocate a result object per call.
 */

/** A read position shared by the varint readers. */
export interface Cursor {
  pos: number;
}

/** Reads a zig-zag varint of at most 5 bytes (int32). Throws RangeError past `end`. */
export function readVarint(buf: Uint8Array, c: Cursor, end: number = buf.length): number {
  let pos = c.pos;
  let raw = 0;
  let shift = 0;
  for (;;) {
    if (pos >= end) throw new RangeError("varint runs past the end of its buffer");
    const b = buf[pos++]!;
    raw |= (b & 0x7f) << shift;
    if ((b & 0x80) === 0) break;
    shift += 7;
    if (shift > 28) throw new RangeError("varint is longer than 5 bytes");
  }
  c.pos = pos;
  return (raw >>> 1) ^ -(raw & 1);
}

/**
 * Reads a zig-zag varlong of at most 10 bytes as a JS number. Values are exact up to 2^53, which
 * covers every timestamp delta and length Rill meets; larger values throw.
 */
export function readVarlong(buf: Uint8Array, c: Cursor, end: number = buf.length): number {
  let pos = c.pos;
  let raw = 0;
  let mul = 1;
  for (;;) {
    if (pos >= end) throw new RangeError("varlong runs past the end of its buffer");
    const b = buf[pos++]!;
    raw += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) break;
    mul *= 128;
    if (mul > 2 ** 56) throw new RangeError("varlong is out of the exact number range");
  }
  c.pos = pos;
  // zig-zag decode without 32-bit operators: odd raw values are negative.
  return raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2;
}

/** Bytes a zig-zag varint (or varlong within 2^53) of `v` takes. */
export function varintSize(v: number): number {
  let raw = v >= 0 ? v * 2 : -v * 2 - 1;
  let n = 1;
  while (raw >= 128) {
    raw = Math.floor(raw / 128);
    n++;
  }
  return n;
}

/** Writes zig-zag varint or varlong `v` (|v| < 2^52) at `pos`; returns the position after it. */
export function writeVarint(buf: Uint8Array, pos: number, v: number): number {
  if (v >= -0x40000000 && v < 0x40000000) {
    let raw = ((v << 1) ^ (v >> 31)) >>> 0;
    while (raw >= 0x80) {
      buf[pos++] = (raw & 0x7f) | 0x80;
      raw >>>= 7;
    }
    buf[pos++] = raw;
    return pos;
  }
  let raw = v >= 0 ? v * 2 : -v * 2 - 1;
  while (raw >= 128) {
    buf[pos++] = (raw % 128) | 0x80;
    raw = Math.floor(raw / 128);
  }
  buf[pos++] = raw;
  return pos;
}
