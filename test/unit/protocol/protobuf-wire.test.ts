/**
 * The generic protobuf wire reader and writer under the hand-written codecs: varints and sizes
 * against protobuf-es's BinaryWriter, views, strings, skipping, and errors that name the field.
 */
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { describe, expect, it } from "vitest";
import { AssertionError } from "../../../src/base/assert.ts";
import { RecordSchema } from "../../../src/gen/rill/v1/common_pb.ts";
import {
  LEN,
  Reader,
  VARINT,
  WireFormatError,
  Writer,
  sizeInt32,
  sizeInt64,
  sizeLen,
  sizeUint32,
} from "../../../src/protocol/protobuf-wire.ts";
import { bytes, enc, expectSameBytes, randomInt32, randomInt64, rnd, seed, unknownFields, written } from "./wire-fixtures.ts";

function reader(data: Uint8Array, path = "test.Message"): Reader {
  return new Reader(data, 0, data.length, path);
}

describe(`Writer (SEED=${seed})`, () => {
  it("writes int32 and int64 varints as protobuf-es does, in the sizes the size functions plan", () => {
    const ints = [0, 1, 127, 128, 16_383, 16_384, 2 ** 31 - 1, -1, -(2 ** 31), ...Array.from({ length: 200 }, randomInt32)];
    const longs = [0n, 1n, 2n ** 32n, 2n ** 63n - 1n, -(2n ** 63n), -1n, ...Array.from({ length: 200 }, randomInt64)];
    for (const v of ints) {
      const w = new Writer(sizeInt32(v));
      w.int32(v);
      expectSameBytes(
        w.finish(),
        written((x) => x.int32(v)),
      );
    }
    for (const v of longs) {
      const w = new Writer(sizeInt64(v));
      w.int64(v);
      expectSameBytes(
        w.finish(),
        written((x) => x.int64(v)),
      );
    }
    for (const v of [0, 1, 300, 2 ** 32 - 1]) expect(sizeUint32(v)).toBe(written((x) => x.uint32(v)).length);
  });

  it("writes int64 numbers and bigints of [2^32, 2^53) with number arithmetic, byte for byte as protobuf-es", () => {
    const edges = [2 ** 32, 2 ** 35 - 1, 2 ** 35, 2 ** 42 - 1, 2 ** 42, 2 ** 49 - 1, 2 ** 49, Number.MAX_SAFE_INTEGER, 1_765_000_000_123];
    const randoms = Array.from({ length: 300 }, () => 2 ** 32 + Math.floor(rnd.next() * (Number.MAX_SAFE_INTEGER - 2 ** 32)));
    for (const v of [...edges, ...randoms]) {
      const reference = written((x) => x.int64(BigInt(v)));
      for (const input of [v, BigInt(v)]) {
        expect(sizeInt64(input), `size of ${v}`).toBe(reference.length);
        const w = new Writer(sizeInt64(input));
        w.int64(input);
        expectSameBytes(w.finish(), reference);
      }
    }
    // Past 2^53 and below 0 the bigint path still runs.
    for (const v of [2n ** 53n, 2n ** 63n - 1n, -1n, -(2n ** 40n)]) {
      const w = new Writer(sizeInt64(v));
      w.int64(v);
      expectSameBytes(
        w.finish(),
        written((x) => x.int64(v)),
      );
    }
    const max = new Writer(sizeInt64(2n ** 64n - 1n));
    max.int64(2n ** 64n - 1n);
    expectSameBytes(
      max.finish(),
      written((x) => x.uint64(2n ** 64n - 1n)),
    );
  });

  it("writes length-delimited fields and strings with their tags", () => {
    const topic = "tópico";
    const n = Buffer.byteLength(topic);
    const w = new Writer(sizeLen(1, n) + sizeLen(4, 300));
    w.string(1, topic, n);
    w.bytes(4, bytes(300));
    expectSameBytes(
      w.finish(),
      written((x) => x.tag(1, WireType.LengthDelimited).string(topic).tag(4, WireType.LengthDelimited).bytes(bytes(300))),
    );
  });

  it("asserts that exactly the planned size was written (a codec bug, not bad input)", () => {
    const w = new Writer(3);
    w.int32Field(1, 5);
    expect(() => w.finish()).toThrow(AssertionError);
    expect(() => new Writer(4, Buffer.alloc(5))).toThrow(AssertionError);
  });
});

describe("Reader", () => {
  it("reads varints: int32 from the low 32 bits, int64 signed or unsigned", () => {
    const data = written((x) =>
      x
        .int32(-2)
        .int64(-5n)
        .uint64(2n ** 64n - 1n)
        .int32(300),
    );
    const r = reader(data);
    expect([r.varint("a"), r.varint64("b", true), r.varint64("c", false), r.varint("d")]).toEqual([-2, -5n, 2n ** 64n - 1n, 300]);
    expect(r.pos).toBe(r.end);
  });

  it("returns bytes fields as views and validates UTF-8 strings", () => {
    const data = Buffer.from(written((x) => x.bytes(bytes(10)).string("ascii").string("ü".repeat(40))));
    const r = reader(data);
    const view = r.bytes("b");
    expect(view.buffer).toBe(data.buffer);
    expect([r.string("s"), r.string("t")]).toEqual(["ascii", "ü".repeat(40)]);
    const bad = reader(written((x) => x.bytes(new Uint8Array([0x66, 0xff]))));
    expect(() => bad.string("name")).toThrow(/^test\.Message\.name: invalid UTF-8 \(at byte 3\)$/);
  });

  it("decodes a nested message with protobuf-es and names nested fields by path", () => {
    const record = enc(RecordSchema, { key: bytes(3), value: bytes(5) });
    const r = reader(written((x) => x.bytes(record)));
    expect(r.message(RecordSchema, "records")).toMatchObject({ key: bytes(3), value: bytes(5) });
    const outer = reader(written((x) => x.bytes(new Uint8Array([0x80])).int32(1)));
    const inner = outer.sub("request");
    expect(() => inner.varint("partition")).toThrow(/^test\.Message\.request\.partition: varint runs past the end/);
  });

  it("skips unknown fields of every wire type, groups included, and refuses a known field of the wrong type", () => {
    const data = unknownFields();
    const r = reader(data);
    while (r.pos < r.end) r.skip(r.varint("<tag>") >>> 0, {});
    expect(r.pos).toBe(data.length);
    const known = reader(written((x) => x.tag(4, WireType.Varint).int32(1)));
    expect(() => known.skip(known.varint("<tag>") >>> 0, { 4: "record_batch" })).toThrow(
      /^test\.Message\.record_batch: unexpected wire type 0/,
    );
    expect([VARINT, LEN]).toEqual([WireType.Varint, WireType.LengthDelimited]);
  });

  it("fails with WireFormatError on a length that runs past the end", () => {
    const data = written((x) => x.tag(2, WireType.LengthDelimited).uint32(50).raw(bytes(3)));
    const r = reader(data);
    r.varint("<tag>");
    expect(() => r.bytes("data")).toThrow(WireFormatError);
    expect(() => reader(data).skip(reader(data).varint("<tag>"), {})).toThrow(WireFormatError);
  });

  it("never reads past `end` even when the buffer goes on", () => {
    const data = new BinaryWriter().int32(300).finish();
    const r = new Reader(data, 0, 1, "test.Message");
    expect(() => r.varint("x")).toThrow(/varint runs past the end of the message/);
  });
});
