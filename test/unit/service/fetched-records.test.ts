import { describe, expect, it } from "vitest";
import { crc32c } from "../../../src/base/crc32c.ts";
import { TimestampType, encodeBatch, records as recordCursor } from "../../../src/protocol/record-batch.ts";
import { checkFetched } from "../../../src/service/fetch-records.ts";
import type { FetchedRecord } from "../../../src/service/fetch-types.ts";
import { FetchedRecords } from "../../../src/service/fetched-records.ts";

const text = (b: Uint8Array | null): string | null => (b === null ? null : Buffer.from(b).toString());

function batchOf(
  base: number,
  values: Array<{ key: string | null; value: string | null; headers?: Array<{ key: string; value: string | null }> }>,
): Buffer {
  const b = encodeBatch(
    values.map((v) => ({ key: v.key, value: v.value, headers: v.headers ?? [] })),
    { nowMs: 1000 },
  );
  b.writeBigInt64BE(BigInt(base), 0);
  return b;
}

describe("FetchedRecords: a read's records without an object per record", () => {
  it("keeps key and value where they lie in the batch and materialises them on demand, nulls and empties kept apart", () => {
    const batch = batchOf(10, [
      { key: "k0", value: "v0" },
      { key: null, value: "" },
      {
        key: "",
        value: null,
        headers: [
          { key: "h", value: "hv" },
          { key: "n", value: null },
        ],
      },
    ]);
    const list = new FetchedRecords();
    const c = recordCursor(batch, 0);
    while (c.next()) list.addFromCursor(c, c.timestampMs, TimestampType.CREATE_TIME, 4);
    expect(list.length).toBe(3);
    expect(list.map((r) => [r.offset, text(r.key), text(r.value)])).toEqual([
      [10, "k0", "v0"],
      [11, null, ""],
      [12, "", null],
    ]);
    expect([list.keyLength(1), list.valueLength(1), list.keyLength(2), list.valueLength(2)]).toEqual([-1, 0, 0, -1]);
    expect(list.at(2)!.headers.map((h) => [h.key, text(h.value)])).toEqual([
      ["h", "hv"],
      ["n", null],
    ]);
    expect(list.at(0)).toMatchObject({ leaderEpoch: 4, timestampType: TimestampType.CREATE_TIME, timestampMs: 1000 });
    expect(list.at(-1)!.offset).toBe(12);
    expect(list.at(3)).toBeUndefined();
    const out = Buffer.alloc(4, 0xff);
    expect(list.copyKey(0, out, 1)).toBe(2);
    expect(list.copyValue(1, out, 0)).toBe(0);
    expect([...out]).toEqual([0xff, 0x6b, 0x30, 0xff]);
  });

  it("grows past its first capacity; copies long values natively and short ones by hand, the same bytes", () => {
    const long = "x".repeat(1000);
    const values = Array.from({ length: 200 }, (_, i) => ({ key: `k${i}`, value: i % 2 === 0 ? long + i : `v${i}` }));
    const list = FetchedRecords.of(
      values.map<FetchedRecord>((v, i) => ({
        offset: i,
        timestampMs: i * 2,
        timestampType: TimestampType.CREATE_TIME,
        leaderEpoch: 0,
        key: Buffer.from(v.key),
        value: new Uint8Array(Buffer.from(v.value)), // not a Buffer: copied through a view
        headers: [],
      })),
    );
    expect(list.length).toBe(200);
    for (let i = 0; i < 200; i++) {
      const out = Buffer.alloc(list.valueLength(i));
      list.copyValue(i, out, 0);
      expect(out.toString()).toBe(values[i]!.value);
      expect(list.timestampMs(i)).toBe(i * 2);
    }
  });

  it("truncate cuts the list (headers of cut records go too); payloadBytes counts what is left", () => {
    const batch = batchOf(0, [
      { key: "ab", value: "cde" },
      { key: null, value: "f", headers: [{ key: "hk", value: "hvv" }] },
      { key: "g", value: null },
    ]);
    const list = checkFetched([batch], 0, 3, true).records!;
    expect(list.payloadBytes(10)).toBe(10 + 5 + 10 + 1 + 2 + 3 + 10 + 1);
    list.truncate(2);
    expect(list.map((r) => r.offset)).toEqual([0, 1]);
    expect(list.payloadBytes(10)).toBe(10 + 5 + 10 + 1 + 2 + 3);
    list.truncate(1);
    expect(list.payloadBytes(0)).toBe(5);
    expect(list.headers(1)).toEqual([]);
  });

  it("a batch that fails half way adds no records to the read (checkFetched cuts before it)", () => {
    const good = batchOf(0, [{ key: "a", value: "1" }]);
    const bad = batchOf(1, [
      { key: "b", value: "2" },
      { key: "c", value: "3" },
    ]);
    // Break the second record's length varint inside the batch, then fix the CRC so only decoding fails.
    const broken = Buffer.from(bad);
    const c = recordCursor(broken, 0);
    c.next();
    c.next();
    broken[c.recordStart] = 0x7e; // a length far past the batch's end
    broken.writeUInt32BE(crc32c(broken.subarray(21)) >>> 0, 17);
    const read = checkFetched([Buffer.concat([good, broken])], 0, 3, true);
    expect(read.records!.map((r) => text(r.value))).toEqual(["1"]);
    expect(read.nextOffset).toBe(1);
  });
});

describe("checkFetched with an offset limit (a Consume session's credit)", () => {
  const tenEach = (base: number): Buffer =>
    encodeBatch(
      Array.from({ length: 10 }, (_, i) => ({ value: `v${base + i}`, timestampMs: 1 })),
      { baseOffset: base, nowMs: 1 },
    );
  const read = [Buffer.concat([tenEach(0), tenEach(10)]), Buffer.concat([tenEach(20), tenEach(30)])];

  it("stops before the first batch past the limit and decodes nothing after it", () => {
    const all = checkFetched(read, 0, 40, true);
    expect([all.records!.length, all.nextOffset, all.chunks.length]).toEqual([40, 40, 2]);
    const cut = checkFetched(read, 0, 40, true, null, 25);
    expect([cut.records!.length, cut.nextOffset, cut.bytes]).toEqual([20, 20, read[0]!.length]);
    expect(cut.records!.toArray().map((r) => r.offset)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    // A limit that falls at a chunk's end: the next chunk is not touched.
    const atEnd = checkFetched(read, 0, 40, true, null, 20);
    expect([atEnd.records!.length, atEnd.nextOffset, atEnd.chunks.length]).toEqual([20, 20, 1]);
    // From the middle of a batch: its records below `from` are left out, and the limit counts from `from`.
    const mid = checkFetched(read, 15, 40, true, null, 10);
    expect([mid.records!.length, mid.nextOffset]).toEqual([5, 20]);
  });

  it("returns the first batch whole even when it alone is past the limit", () => {
    const one = checkFetched(read, 0, 40, true, null, 3);
    expect([one.records!.length, one.nextOffset, one.bytes]).toEqual([10, 10, tenEach(0).length]);
    const raw = checkFetched(read, 0, 40, false, null, 3);
    expect([raw.records, raw.nextOffset, raw.bytes]).toEqual([null, 10, tenEach(0).length]);
  });
});
