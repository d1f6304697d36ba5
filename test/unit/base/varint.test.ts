import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { SeededRandom, seedFromEnv } from "../../../src/base/random.ts";
import { type Cursor, readVarint, readVarlong, varintSize, writeVarint } from "../../../src/base/varint.ts";

const require = createRequire(import.meta.url);
interface KafkajsEncoder {
  writeVarInt(v: number): KafkajsEncoder;
  writeVarLong(v: unknown): KafkajsEncoder;
  buffer: Buffer;
}
const Encoder = require("kafkajs/src/protocol/encoder.js") as new () => KafkajsEncoder;
const Long = require("kafkajs/src/utils/long.js") as { fromNumber(n: number): unknown };

function encode(v: number): Buffer {
  const b = Buffer.alloc(10);
  return b.subarray(0, writeVarint(b, 0, v));
}

function hex(v: number): string {
  return encode(v).toString("hex");
}

describe("zig-zag varints", () => {
  it("encode the known byte sequences", () => {
    expect(hex(0)).toBe("00");
    expect(hex(-1)).toBe("01");
    expect(hex(1)).toBe("02");
    expect(hex(-2)).toBe("03");
    expect(hex(63)).toBe("7e");
    expect(hex(-64)).toBe("7f");
    expect(hex(64)).toBe("8001");
    expect(hex(300)).toBe("d804");
    expect(hex(2147483647)).toBe("feffffff0f");
    expect(hex(-2147483648)).toBe("ffffffff0f");
    expect(hex(2 ** 31)).toBe("8080808010");
  });

  it("round-trip int32 boundaries and negatives through readVarint", () => {
    const values = [
      0,
      1,
      -1,
      63,
      -64,
      64,
      -65,
      8191,
      -8192,
      8192,
      2 ** 20,
      -(2 ** 20),
      2 ** 27,
      2 ** 30 - 1,
      -(2 ** 30),
      2 ** 30,
      -(2 ** 30) - 1,
      2147483647,
      -2147483648,
    ];
    for (const v of values) {
      const b = encode(v);
      const c: Cursor = { pos: 0 };
      expect(readVarint(b, c), `value ${v}`).toBe(v);
      expect(c.pos).toBe(b.length);
      expect(varintSize(v)).toBe(b.length);
    }
  });

  it("round-trip varlongs up to 2^52 through readVarlong", () => {
    const values = [0, -1, 1, 2 ** 31, -(2 ** 31) - 1, 1_700_000_000_000, -1_700_000_000_000, 2 ** 52 - 1, -(2 ** 52)];
    for (const v of values) {
      const b = encode(v);
      const c: Cursor = { pos: 0 };
      expect(readVarlong(b, c), `value ${v}`).toBe(v);
      expect(c.pos).toBe(b.length);
      expect(varintSize(v)).toBe(b.length);
    }
  });

  it("read at a position and leave the cursor after the value", () => {
    const b = Buffer.alloc(20);
    let p = writeVarint(b, 3, 300);
    p = writeVarint(b, p, -5);
    const c: Cursor = { pos: 3 };
    expect(readVarint(b, c)).toBe(300);
    expect(readVarint(b, c)).toBe(-5);
    expect(c.pos).toBe(p);
  });

  it("throw RangeError past the end and on over-long encodings", () => {
    expect(() => readVarint(Buffer.from([0x80, 0x80]), { pos: 0 })).toThrow(RangeError);
    expect(() => readVarint(Buffer.from([0x80, 0x01]), { pos: 0 }, 1)).toThrow(RangeError);
    expect(() => readVarint(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x01]), { pos: 0 })).toThrow(RangeError);
    expect(() => readVarlong(Buffer.from([]), { pos: 0 })).toThrow(RangeError);
    expect(() => readVarlong(Buffer.alloc(11, 0xff), { pos: 0 })).toThrow(RangeError);
  });

  it("agree byte for byte with kafkajs's encoder on random values", () => {
    const seed = seedFromEnv();
    console.log(`varint vs kafkajs: SEED=${seed}`);
    const rand = new SeededRandom(seed);
    for (let i = 0; i < 1000; i++) {
      const bits = rand.int(32);
      const v32 = ((rand.nextU32() >>> 1) >>> (31 - bits)) * (rand.int(2) === 0 ? 1 : -1);
      expect(encode(v32).toString("hex"), `varint ${v32}`).toBe(new Encoder().writeVarInt(v32).buffer.toString("hex"));
      const v64 = Math.floor(rand.next() * 2 ** (rand.int(52) + 1)) * (rand.int(2) === 0 ? 1 : -1);
      expect(encode(v64).toString("hex"), `varlong ${v64}`).toBe(new Encoder().writeVarLong(Long.fromNumber(v64)).buffer.toString("hex"));
    }
  });
});
