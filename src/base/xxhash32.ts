/**
 * xxHash32 (Yann Collet), as the LZ4 frame format uses it: the frame descriptor's one-byte header
 * checksum is `(xxh32(descriptor, 0) >> 8) & 0xff`, and the optional block and content checksums
 * are full xxh32 values. Written by hand over 32-bit integer arithmetic (Math.imul); imports
 * nothing.
 */

const P1 = 0x9e3779b1;
const P2 = 0x85ebca77;
const P3 = 0xc2b2ae3d;
const P4 = 0x27d4eb2f;
const P5 = 0x165667b1;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

function round(acc: number, lane: number): number {
  acc = (acc + Math.imul(lane, P2)) | 0;
  return Math.imul(rotl(acc, 13), P1);
}

function readU32LE(b: Uint8Array, p: number): number {
  return b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24);
}

/**
 * xxh32 of `data[start, end)` with `seed`, as an unsigned 32-bit integer.
 * `xxhash32(new Uint8Array(0)) === 0x02cc5d05`.
 */
export function xxhash32(data: Uint8Array, seed = 0, start = 0, end: number = data.length): number {
  let p = start;
  const len = end - start;
  let h: number;
  if (len >= 16) {
    let v1 = (seed + P1 + P2) | 0;
    let v2 = (seed + P2) | 0;
    let v3 = seed | 0;
    let v4 = (seed - P1) | 0;
    const limit = end - 16;
    if (LITTLE_ENDIAN && ((data.byteOffset + p) & 3) === 0) {
      // Aligned: read the lanes through an Int32Array view (2-3x faster than byte by byte).
      const words = new Int32Array(data.buffer, data.byteOffset + p, (limit - p + 16) >>> 2);
      let w = 0;
      for (; p <= limit; p += 16, w += 4) {
        v1 = round(v1, words[w]!);
        v2 = round(v2, words[w + 1]!);
        v3 = round(v3, words[w + 2]!);
        v4 = round(v4, words[w + 3]!);
      }
    } else {
      for (; p <= limit; p += 16) {
        v1 = round(v1, readU32LE(data, p));
        v2 = round(v2, readU32LE(data, p + 4));
        v3 = round(v3, readU32LE(data, p + 8));
        v4 = round(v4, readU32LE(data, p + 12));
      }
    }
    h = (rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18)) | 0;
  } else {
    h = (seed + P5) | 0;
  }
  h = (h + len) | 0;
  while (p + 4 <= end) {
    h = (h + Math.imul(readU32LE(data, p), P3)) | 0;
    h = Math.imul(rotl(h, 17), P4);
    p += 4;
  }
  while (p < end) {
    h = (h + Math.imul(data[p]!, P5)) | 0;
    h = Math.imul(rotl(h, 11), P1);
    p++;
  }
  h ^= h >>> 15;
  h = Math.imul(h, P2);
  h ^= h >>> 13;
  h = Math.imul(h, P3);
  h ^= h >>> 16;
  return h >>> 0;
}
