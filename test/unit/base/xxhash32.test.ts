import { describe, expect, it } from "vitest";
import { xxhash32 } from "../../../src/base/xxhash32.ts";

const PRIME32 = 2654435761;

/** xxHash's own sanity buffer (xxhsum's fillTestBuffer): byteGen = PRIME32, byteGen *= PRIME64. */
function sanityBuffer(len: number): Uint8Array {
  const b = new Uint8Array(len);
  let g = BigInt(PRIME32);
  for (let i = 0; i < len; i++) {
    b[i] = Number(g >> 56n) & 0xff;
    g = (g * 11400714785074694797n) & 0xffffffffffffffffn;
  }
  return b;
}

describe("xxhash32", () => {
  it("matches the known vectors", () => {
    expect(xxhash32(Buffer.from(""), 0)).toBe(0x02cc5d05);
    expect(xxhash32(Buffer.from("a"), 0)).toBe(0x550d7456);
    expect(xxhash32(Buffer.from("abc"), 0)).toBe(0x32d153ff);
    expect(xxhash32(Buffer.from("Nobody inspects the spammish repetition"))).toBe(0xe2293b2f);
    expect(xxhash32(new Uint8Array(0), PRIME32)).toBe(0x36b78ae7);
  });

  it("matches xxhsum's sanity vectors (every length path, with and without a seed)", () => {
    const b = sanityBuffer(222);
    const cases: Array<[number, number, number]> = [
      [1, 0, 0xcf65b03e],
      [1, PRIME32, 0xb4545aa4],
      [14, 0, 0x1208e7e2],
      [14, PRIME32, 0x6af1d1fe],
      [222, 0, 0x5bd11dbd],
      [222, PRIME32, 0x58803c5f],
    ];
    for (const [len, seed, want] of cases) expect(xxhash32(b.subarray(0, len), seed), `len ${len} seed ${seed}`).toBe(want);
  });

  it("hashes a sub-range exactly as the same bytes on their own", () => {
    const b = sanityBuffer(222);
    for (const [s, e] of [
      [0, 0],
      [3, 4],
      [5, 21],
      [7, 200],
      [100, 222],
    ] as const) {
      expect(xxhash32(b, 7, s, e)).toBe(xxhash32(b.slice(s, e), 7));
    }
  });

  it("gives the same hash at every memory alignment (word-view and byte paths)", () => {
    const data = sanityBuffer(1000);
    const want = xxhash32(data);
    for (let shift = 0; shift < 8; shift++) {
      const host = new Uint8Array(data.length + 8);
      host.set(data, shift);
      expect(xxhash32(host.subarray(shift, shift + data.length)), `shift ${shift}`).toBe(want);
      expect(xxhash32(host, 0, shift, shift + data.length), `range at ${shift}`).toBe(want);
    }
  });

  it("returns an unsigned 32-bit integer", () => {
    const b = sanityBuffer(64);
    for (let n = 0; n <= 64; n++) {
      const h = xxhash32(b.subarray(0, n));
      expect(Number.isInteger(h) && h >= 0 && h <= 0xffffffff).toBe(true);
    }
  });
});
