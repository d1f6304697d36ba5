import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { crc32c } from "../../../src/base/crc32c.ts";
import { RillError } from "../../../src/base/errors.ts";
import { SeededRandom, seedFromEnv } from "../../../src/base/random.ts";
import { writeVarint } from "../../../src/base/varint.ts";
import { compress } from "../../../src/protocol/compression.ts";
import {
  ATTRIBUTES_OFFSET,
  BASE_OFFSET_OFFSET,
  BATCH_LENGTH_OFFSET,
  BATCH_OFFSETS,
  batches,
  Compression,
  CRC_OFFSET,
  type DecodedRecord,
  decodeRecords,
  encodeBatch,
  filterBatch,
  forEachBatch,
  HEADER_SIZE,
  LAST_OFFSET_DELTA_OFFSET,
  MAGIC_OFFSET,
  PARTITION_LEADER_EPOCH_OFFSET,
  RECORD_COUNT_OFFSET,
  type RecordInput,
  RECORDS_OFFSET,
  readBatchHeader,
  readBatchHeaderInto,
  records,
  setBaseOffset,
  setLogAppendTime,
  setPartitionLeaderEpoch,
  TimestampType,
  validateBatch,
  checkProducedBatch,
  validateBatchDeep,
} from "../../../src/protocol/record-batch.ts";
import { GOLDEN_TS, goldenOptions, goldenPath, goldenRecords } from "../../golden/fixtures.ts";

const require = createRequire(import.meta.url);

// kafkajs's own RecordBatch v2 codec (used only here, to check interop both ways).
interface KafkajsEncoder {
  buffer: Buffer;
}
interface KafkajsRecord {
  offset: string;
  timestamp: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer | null>;
}
interface KafkajsBatch {
  firstOffset: string;
  partitionLeaderEpoch: number;
  lastOffsetDelta: number;
  producerId: string;
  producerEpoch: number;
  firstSequence: number;
  maxTimestamp: string;
  inTransaction: boolean;
  records: KafkajsRecord[];
}
const { RecordBatch: kjsRecordBatch } = require("kafkajs/src/protocol/recordBatch/v0/index.js") as {
  RecordBatch: (args: Record<string, unknown>) => Promise<KafkajsEncoder>;
};
const kjsRecord = require("kafkajs/src/protocol/recordBatch/record/v0/index.js") as (args: Record<string, unknown>) => KafkajsEncoder;
const kjsDecodeBatch = require("kafkajs/src/protocol/recordBatch/v0/decoder.js") as (d: unknown) => Promise<KafkajsBatch>;
const KjsDecoder = require("kafkajs/src/protocol/decoder.js") as new (b: Buffer) => unknown;
const KjsLong = require("kafkajs/src/utils/long.js") as { fromNumber(n: number): unknown };

/** Asserts that `fn` throws a RillError with catalog name `name` and a message matching `msg`. */
function expectRill(fn: () => unknown, name: string, msg?: RegExp): RillError {
  let thrown: unknown;
  try {
    fn();
  } catch (e: unknown) {
    thrown = e;
  }
  expect(thrown, "expected a RillError").toBeInstanceOf(RillError);
  const e = thrown as RillError;
  expect(e.kind.name, e.message).toBe(name);
  if (msg) expect(e.message).toMatch(msg);
  return e;
}

/** Hex with whitespace and `# comments` removed. */
function hex(s: string): Buffer {
  return Buffer.from(s.replace(/#.*$/gm, "").replace(/\s+/g, ""), "hex");
}

/** Recomputes the CRC of the single batch in `b` after a test edited a covered field. */
function recrc(b: Buffer): Buffer {
  b.writeUInt32BE(crc32c(b.subarray(ATTRIBUTES_OFFSET)), CRC_OFFSET);
  return b;
}

/** A batch around hand-made record bytes, with consistent length and CRC. */
function batchAround(recordBytes: Buffer, fields: { recordCount: number; lastOffsetDelta: number; attributes?: number }): Buffer {
  const b = Buffer.concat([Buffer.alloc(HEADER_SIZE), recordBytes]);
  b.writeInt32BE(b.length - 12, BATCH_LENGTH_OFFSET);
  b.writeInt32BE(-1, PARTITION_LEADER_EPOCH_OFFSET);
  b[MAGIC_OFFSET] = 2;
  b.writeInt16BE(fields.attributes ?? 0, ATTRIBUTES_OFFSET);
  b.writeInt32BE(fields.lastOffsetDelta, LAST_OFFSET_DELTA_OFFSET);
  b.writeInt32BE(fields.recordCount, RECORD_COUNT_OFFSET);
  return recrc(b);
}

/** One uncompressed record frame: value `v`, no key, no headers. */
function frame(offsetDelta: number, v: string): Buffer {
  const body = Buffer.alloc(32 + v.length);
  let p = 0;
  body[p++] = 0; // attributes
  p = writeVarint(body, p, 0); // timestampDelta
  p = writeVarint(body, p, offsetDelta);
  p = writeVarint(body, p, -1); // null key
  p = writeVarint(body, p, v.length);
  p += body.write(v, p);
  p = writeVarint(body, p, 0); // headers
  const len = Buffer.alloc(5);
  return Buffer.concat([len.subarray(0, writeVarint(len, 0, p)), body.subarray(0, p)]);
}

function str(b: Uint8Array | null): string | null {
  return b === null ? null : Buffer.from(b).toString("utf8");
}

function asBuffer(x: Uint8Array | string | null | undefined): Buffer | null {
  if (x === null || x === undefined) return null;
  return typeof x === "string" ? Buffer.from(x, "utf8") : Buffer.from(x);
}

/** Checks that `got` holds exactly `want`'s keys, values, headers and timestamps, with offsets from `baseOffset`. */
function expectRecords(got: DecodedRecord[], want: RecordInput[], baseOffset: number, deltas?: number[]): void {
  const hexOf = (b: Uint8Array | null): string | null => (b === null ? null : Buffer.from(b).toString("hex"));
  const flat = (
    offset: number,
    ts: number | undefined,
    key: Uint8Array | null,
    value: Uint8Array | null,
    headers: Array<[string, Uint8Array | null]>,
  ): string => JSON.stringify([offset, ts, hexOf(key), hexOf(value), headers.map(([k, v]) => [k, hexOf(v)])]);
  expect(
    got.map((g) =>
      flat(
        g.offset,
        g.timestampMs,
        g.key,
        g.value,
        g.headers.map((h) => [h.key, h.value]),
      ),
    ),
  ).toEqual(
    want.map((w, i) =>
      flat(
        baseOffset + (deltas ? deltas[i]! : i),
        w.timestampMs,
        asBuffer(w.key),
        asBuffer(w.value),
        (w.headers ?? []).map((h) => [h.key, asBuffer(h.value)]),
      ),
    ),
  );
}

// ---------------------------------------------------------------------------------------------

/**
 * A batch written out by hand from the Kafka spec: two records, the first with a header, the
 * second with a null key. Only the CRC was computed (CRC32C of bytes 21..89; kafkajs's CRC32C
 * agrees).
 */
const HAND_WRITTEN = `
  0000000000000064   # baseOffset            100
  0000004e           # batchLength           78 (90-byte batch)
  00000007           # partitionLeaderEpoch  7
  02                 # magic                 2
  d95fffd2           # crc                   CRC32C of attributes..end
  0000               # attributes            no compression, CREATE_TIME, not transactional
  00000001           # lastOffsetDelta       1
  0000018bcfe56800   # baseTimestamp         1700000000000
  0000018bcfe56805   # maxTimestamp          1700000000005
  000000000000002a   # producerId            42
  0003               # producerEpoch         3
  00000009           # baseSequence          9
  00000002           # recordCount           2
  # record 0
  24                 # length                18 (zig-zag 0x24)
  00                 # attributes
  00                 # timestampDelta        0
  00                 # offsetDelta           0
  04 6b31            # key                   2 bytes "k1"
  0a 68656c6c6f      # value                 5 bytes "hello"
  02                 # headerCount           1
  02 68              #   header key          1 byte "h"
  04 7631            #   header value        2 bytes "v1"
  # record 1
  12                 # length                9
  00                 # attributes
  0a                 # timestampDelta        5
  02                 # offsetDelta           1
  01                 # key                   null (-1)
  06 627965          # value                 3 bytes "bye"
  00                 # headerCount           0
`;

const HAND_RECORDS: RecordInput[] = [
  { key: "k1", value: "hello", headers: [{ key: "h", value: "v1" }], timestampMs: 1_700_000_000_000 },
  { key: null, value: "bye", timestampMs: 1_700_000_000_005 },
];
const HAND_OPTIONS = { baseOffset: 100, partitionLeaderEpoch: 7, producerId: 42, producerEpoch: 3, baseSequence: 9 };

describe("golden: a batch written by hand", () => {
  const bytes = hex(HAND_WRITTEN);

  it("has the header the spec says", () => {
    expect(bytes.length).toBe(90);
    const h = validateBatchDeep(bytes);
    expect(h).toEqual({
      baseOffset: 100,
      batchLength: 78,
      size: 90,
      partitionLeaderEpoch: 7,
      magic: 2,
      crc: 0xd95fffd2,
      attributes: 0,
      compression: Compression.NONE,
      timestampType: TimestampType.CREATE_TIME,
      isTransactional: false,
      isControl: false,
      lastOffsetDelta: 1,
      baseTimestamp: 1_700_000_000_000,
      maxTimestamp: 1_700_000_000_005,
      producerId: 42,
      producerEpoch: 3,
      baseSequence: 9,
      recordCount: 2,
      lastOffset: 101,
    });
  });

  it("decodes to its two records", () => {
    const got = decodeRecords(bytes);
    expect(got.map((r) => [r.offset, r.timestampMs, str(r.key), str(r.value)])).toEqual([
      [100, 1_700_000_000_000, "k1", "hello"],
      [101, 1_700_000_000_005, null, "bye"],
    ]);
    expect(got[0]!.headers.map((h) => [h.key, str(h.value)])).toEqual([["h", "v1"]]);
    expect(got[1]!.headers).toEqual([]);
  });

  it("is what encodeBatch writes, byte for byte", () => {
    expect(encodeBatch(HAND_RECORDS, HAND_OPTIONS).toString("hex")).toBe(bytes.toString("hex"));
  });

  it("is what kafkajs reads", async () => {
    const b = await kjsDecodeBatch(new KjsDecoder(bytes));
    expect(b.firstOffset).toBe("100");
    expect(b.producerId).toBe("42");
    expect(b.records.map((r) => [r.offset, r.timestamp, str(r.key), str(r.value)])).toEqual([
      ["100", "1700000000000", "k1", "hello"],
      ["101", "1700000000005", null, "bye"],
    ]);
    expect(str(b.records[0]!.headers["h"]!)).toBe("v1");
  });
});

describe("golden files (test/golden/record-batch)", () => {
  const update = process.env["UPDATE_GOLDEN"] === "1";
  const cases = [
    { file: "v2-none.bin", compression: Compression.NONE, bytesStable: true },
    { file: "v2-gzip.bin", compression: Compression.GZIP, bytesStable: false },
    { file: "v2-lz4.bin", compression: Compression.LZ4, bytesStable: true },
  ];
  for (const c of cases) {
    const path = goldenPath(`record-batch/${c.file}`);
    const encodeToday = (): Buffer => encodeBatch(goldenRecords(), { ...goldenOptions, compression: c.compression });
    if (update || !existsSync(path)) writeFileSync(path, encodeToday());

    it(`${c.file} validates and decodes to the golden records`, () => {
      const golden = readFileSync(path);
      const h = validateBatchDeep(golden);
      expect(h.compression).toBe(c.compression);
      expect([h.baseOffset, h.partitionLeaderEpoch, h.producerId, h.producerEpoch, h.baseSequence]).toEqual([
        1_234_567_890_123, 17, 987_654_321_012, 5, 42,
      ]);
      expect([h.recordCount, h.lastOffsetDelta, h.baseTimestamp, h.maxTimestamp]).toEqual([6, 5, GOLDEN_TS, GOLDEN_TS + 1000]);
      expectRecords(decodeRecords(golden), goldenRecords(), 1_234_567_890_123);
    });

    it(`${c.file}: encoding today ${c.bytesStable ? "produces the same bytes" : "produces the same records"}`, () => {
      const golden = readFileSync(path);
      const today = encodeToday();
      if (c.bytesStable) {
        expect(today.toString("hex")).toBe(golden.toString("hex"));
      } else {
        // zlib's output may differ between zlib builds (Node vs Bun): compare what it holds.
        const strip = (b: Buffer): unknown => ({ ...readBatchHeader(b), crc: 0, batchLength: 0, size: 0 });
        expect(strip(today)).toEqual(strip(golden));
        expect(decodeRecords(today)).toEqual(decodeRecords(golden));
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------

describe("readBatchHeader", () => {
  it("reads i64 fields beyond 2^32 and negative ones exactly", () => {
    const b = encodeBatch([{ value: "x", timestampMs: -5 }], {
      baseOffset: 2 ** 53 - 1 - 10,
      producerId: -1,
      producerEpoch: -1,
      baseSequence: -1,
      partitionLeaderEpoch: -1,
    });
    const h = readBatchHeader(b);
    expect([h.baseOffset, h.producerId, h.producerEpoch, h.baseSequence, h.partitionLeaderEpoch]).toEqual([2 ** 53 - 11, -1, -1, -1, -1]);
    expect([h.baseTimestamp, h.maxTimestamp, h.lastOffset]).toEqual([-5, -5, 2 ** 53 - 11]);
    expect(b.readBigInt64BE(0)).toBe(BigInt(2 ** 53 - 11));
  });

  it("reads i64 fields at the edges of the int32 range exactly", () => {
    // readI64 answers values in int32 range by a shortcut: check both sides of each edge.
    const edges = [
      0,
      1,
      2 ** 31 - 1,
      2 ** 31,
      2 ** 32 - 1,
      2 ** 32,
      2 ** 32 + 1,
      -1,
      -(2 ** 31),
      -(2 ** 31) - 1,
      -(2 ** 32),
      -(2 ** 32) - 1,
      -(2 ** 53) + 1,
    ];
    for (const v of edges) {
      const b = encodeBatch([{ value: "x", timestampMs: v }], { baseOffset: Math.abs(v), producerId: Math.max(v, -1) });
      const h = readBatchHeader(b);
      expect([h.baseOffset, h.baseTimestamp, h.maxTimestamp, h.producerId]).toEqual([Math.abs(v), v, v, Math.max(v, -1)]);
      expect(b.readBigInt64BE(27)).toBe(BigInt(v)); // baseTimestamp as written
    }
  });

  it("reads the attribute flags", () => {
    const b = encodeBatch([{ value: "x" }], {
      nowMs: 1,
      isTransactional: true,
      isControl: true,
      timestampType: TimestampType.LOG_APPEND_TIME,
      compression: Compression.LZ4,
    });
    const h = readBatchHeader(b);
    expect(h.attributes).toBe(0x3b);
    expect([h.compression, h.timestampType, h.isTransactional, h.isControl]).toEqual([
      Compression.LZ4,
      TimestampType.LOG_APPEND_TIME,
      true,
      true,
    ]);
  });

  it("reads at a position and only checks bounds", () => {
    const b = Buffer.concat([Buffer.alloc(5), encodeBatch([{ value: "x" }], { nowMs: 1, baseOffset: 9 })]);
    expect(readBatchHeader(b, 5).baseOffset).toBe(9);
    expectRill(() => readBatchHeader(b.subarray(0, 5 + 60), 5), "BATCH_LENGTH_MISMATCH", /fewer than the 61-byte header/);
  });

  it("readBatchHeaderInto and validateBatch's `into` overwrite one header with exactly what readBatchHeader reads", () => {
    const seed = seedFromEnv();
    console.log(`readBatchHeaderInto SEED=${seed}`);
    const rnd = new SeededRandom(seed);
    const bufs = Array.from({ length: 50 }, (_, i) =>
      encodeBatch(
        Array.from({ length: 1 + rnd.int(4) }, (_, k) => ({
          value: `v${i}-${k}`,
          timestampMs: rnd.int(2) === 0 ? -1 - rnd.int(9) : 2 ** 40 + rnd.int(1e6),
        })),
        {
          baseOffset: rnd.int(2) === 0 ? rnd.int(100) : 2 ** 45 + rnd.int(1e6),
          producerId: rnd.int(3) === 0 ? -1 : rnd.int(2 ** 40),
          producerEpoch: rnd.int(100),
          baseSequence: rnd.int(1000),
          partitionLeaderEpoch: rnd.int(50),
          isTransactional: rnd.int(2) === 0,
          compression: rnd.int(2) === 0 ? Compression.NONE : Compression.LZ4,
        },
      ),
    );
    const all = Buffer.concat([Buffer.alloc(3), ...bufs]);
    const h = readBatchHeader(all, 3);
    const v = validateBatch(all, 3, 3 + h.size);
    for (let pos = 3, i = 0; pos < all.length; i++) {
      const want = readBatchHeader(all, pos);
      expect(readBatchHeaderInto(h, all, pos)).toBe(h);
      expect({ ...h }).toEqual(want);
      expect(validateBatch(all, pos, pos + want.size, v)).toBe(v);
      expect({ ...v }).toEqual(want);
      expect(want.baseOffset).toBe(readBatchHeader(bufs[i]!).baseOffset);
      pos += want.size;
    }
    // Too few bytes: the same error as readBatchHeader's, and the header is left as it was.
    const before = { ...h };
    expectRill(() => readBatchHeaderInto(h, all.subarray(0, 3 + 60), 3), "BATCH_LENGTH_MISMATCH", /fewer than the 61-byte header/);
    expect({ ...h }).toEqual(before);
  });

  it("exports the field offsets of the spec", () => {
    expect(BATCH_OFFSETS).toMatchObject({
      BASE_OFFSET: 0,
      BATCH_LENGTH: 8,
      PARTITION_LEADER_EPOCH: 12,
      MAGIC: 16,
      CRC: 17,
      ATTRIBUTES: 21,
    });
    expect(BATCH_OFFSETS).toMatchObject({ LAST_OFFSET_DELTA: 23, BASE_TIMESTAMP: 27, MAX_TIMESTAMP: 35, PRODUCER_ID: 43 });
    expect(BATCH_OFFSETS).toMatchObject({ PRODUCER_EPOCH: 51, BASE_SEQUENCE: 53, RECORD_COUNT: 57, RECORDS: 61 });
    expect([HEADER_SIZE, RECORDS_OFFSET, BASE_OFFSET_OFFSET]).toEqual([61, 61, 0]);
    expect(Compression).toEqual({ NONE: 0, GZIP: 1, SNAPPY: 2, LZ4: 3, ZSTD: 4 });
  });
});

describe("validateBatch: bad input gets a specific code naming the field", () => {
  const good = (): Buffer => encodeBatch([{ value: "a" }, { value: "b" }, { value: "c" }], { nowMs: 1 });

  it("accepts a good batch, also inside a larger buffer", () => {
    const b = good();
    expect(validateBatch(b).recordCount).toBe(3);
    const framed = Buffer.concat([Buffer.from("xyz"), b, Buffer.from("tail")]);
    expect(validateBatch(framed, 3, 3 + b.length).recordCount).toBe(3);
  });

  it("bad CRC -> CORRUPT_MESSAGE", () => {
    const b = good();
    b[b.length - 2]! ^= 0x40;
    expectRill(() => validateBatch(b), "CORRUPT_MESSAGE", /^crc: stored 0x[0-9a-f]+, computed 0x[0-9a-f]+$/);
  });

  it("wrong magic -> UNSUPPORTED_FOR_MESSAGE_FORMAT", () => {
    for (const magic of [0, 1, 3]) {
      const b = good();
      b[MAGIC_OFFSET] = magic;
      expectRill(() => validateBatch(b), "UNSUPPORTED_FOR_MESSAGE_FORMAT", new RegExp(`^magic: ${magic}`));
    }
  });

  it("fewer bytes than a header -> BATCH_LENGTH_MISMATCH", () => {
    expectRill(() => validateBatch(good().subarray(0, 60)), "BATCH_LENGTH_MISMATCH", /^batch: 60 bytes, fewer than the 61-byte header/);
    expectRill(() => validateBatch(Buffer.alloc(0)), "BATCH_LENGTH_MISMATCH");
  });

  it("batchLength saying more than the bytes given (too short) -> BATCH_LENGTH_MISMATCH", () => {
    const b = good();
    expectRill(
      () => validateBatch(b.subarray(0, b.length - 1)),
      "BATCH_LENGTH_MISMATCH",
      /^batchLength: \d+ makes a \d+-byte batch, but \d+ bytes were given/,
    );
  });

  it("batchLength saying less than the bytes given (too long) -> BATCH_LENGTH_MISMATCH", () => {
    const b = Buffer.concat([good(), Buffer.alloc(3)]);
    expectRill(() => validateBatch(b), "BATCH_LENGTH_MISMATCH", /^batchLength: /);
    const shrunk = good();
    shrunk.writeInt32BE(shrunk.readInt32BE(BATCH_LENGTH_OFFSET) - 1, BATCH_LENGTH_OFFSET);
    expectRill(() => validateBatch(shrunk), "BATCH_LENGTH_MISMATCH", /^batchLength: /);
  });

  it("recordCount larger than the records -> RECORD_COUNT_MISMATCH", () => {
    const b = good();
    b.writeInt32BE(4, RECORD_COUNT_OFFSET);
    b.writeInt32BE(3, LAST_OFFSET_DELTA_OFFSET);
    expectRill(() => validateBatch(recrc(b)), "RECORD_COUNT_MISMATCH", /^recordCount: 4, but the records end after 3/);
  });

  it("recordCount smaller than the records -> RECORD_COUNT_MISMATCH", () => {
    const b = good();
    b.writeInt32BE(2, RECORD_COUNT_OFFSET);
    expectRill(() => validateBatch(recrc(b)), "RECORD_COUNT_MISMATCH", /^records: \d+ bytes follow the last of 2 records/);
  });

  it("negative recordCount or lastOffsetDelta -> RECORD_COUNT_MISMATCH", () => {
    const b = good();
    b.writeInt32BE(-1, RECORD_COUNT_OFFSET);
    expectRill(() => validateBatch(recrc(b)), "RECORD_COUNT_MISMATCH", /^recordCount: -1 is negative/);
    const c = good();
    c.writeInt32BE(-1, LAST_OFFSET_DELTA_OFFSET);
    expectRill(() => validateBatch(recrc(c)), "RECORD_COUNT_MISMATCH", /^lastOffsetDelta: -1 is negative/);
  });

  it("lastOffsetDelta disagreeing with the last record -> RECORD_COUNT_MISMATCH", () => {
    // A stored batch may end after its last record (compaction keeps the original
    // lastOffsetDelta, as Kafka does); a produced one may not.
    const b = good();
    b.writeInt32BE(5, LAST_OFFSET_DELTA_OFFSET);
    expect(validateBatch(recrc(b)).lastOffsetDelta).toBe(5);
    expectRill(() => checkProducedBatch(validateBatch(b)), "RECORD_COUNT_MISMATCH", /^lastOffsetDelta: 5 does not match recordCount 3/);
    const c = good();
    c.writeInt32BE(1, LAST_OFFSET_DELTA_OFFSET);
    expectRill(() => validateBatch(recrc(c)), "RECORD_COUNT_MISMATCH", /^lastOffsetDelta: 1 is too small for recordCount 3/);
  });

  it("offset deltas that do not increase -> RECORD_COUNT_MISMATCH", () => {
    const b = batchAround(Buffer.concat([frame(0, "a"), frame(2, "b"), frame(2, "c")]), { recordCount: 3, lastOffsetDelta: 2 });
    expectRill(() => validateBatch(b), "RECORD_COUNT_MISMATCH", /^record 2: offsetDelta 2 does not follow the previous 2/);
  });

  it("codecs 5-7 -> UNSUPPORTED_COMPRESSION_TYPE", () => {
    for (const codec of [5, 6, 7]) {
      const b = good();
      b.writeInt16BE(codec, ATTRIBUTES_OFFSET);
      expectRill(() => validateBatch(recrc(b)), "UNSUPPORTED_COMPRESSION_TYPE", /^attributes: compression codec \d is not supported/);
    }
  });

  it("uncompressed records marked zstd -> CORRUPT_MESSAGE naming zstd", () => {
    const b = good();
    b.writeInt16BE(Compression.ZSTD, ATTRIBUTES_OFFSET);
    expectRill(() => validateBatch(recrc(b)), "CORRUPT_MESSAGE", /^zstd: frame 0: bad magic/);
  });

  it("a record frame that does not parse -> CORRUPT_MESSAGE", () => {
    const tooShort = batchAround(Buffer.from([0x04, 0, 0]), { recordCount: 1, lastOffsetDelta: 0 });
    expectRill(() => validateBatch(tooShort), "CORRUPT_MESSAGE", /^record 0: length 2 is below the 6-byte minimum/);
    const pastEnd = batchAround(Buffer.concat([frame(0, "a"), frame(1, "bb").subarray(0, 5)]), { recordCount: 2, lastOffsetDelta: 1 });
    expectRill(() => validateBatch(pastEnd), "RECORD_COUNT_MISMATCH", /^record 1 of 2: length \d+ runs past the end of the records/);
    const badVarint = batchAround(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), { recordCount: 1, lastOffsetDelta: 0 });
    expectRill(() => validateBatch(badVarint), "CORRUPT_MESSAGE", /^record 0: varint/);
  });

  it("validateBatchDeep also checks each record's fields", () => {
    // A frame whose value length claims more than the frame holds: the cheap walk cannot see it.
    const f = frame(0, "abc");
    const bad = Buffer.from(f);
    bad[5] = 0x0a; // valueLength 5 instead of 3
    const b = batchAround(bad, { recordCount: 1, lastOffsetDelta: 0 });
    expect(validateBatch(b).recordCount).toBe(1);
    expectRill(() => validateBatchDeep(b), "CORRUPT_MESSAGE", /^record 0: value of 5 bytes runs past the record end/);
  });

  it("compressed: checks the LZ4 frame without decompressing; validateBatchDeep checks the records", () => {
    const b = encodeBatch([{ value: "a" }, { value: "b" }], { nowMs: 1, compression: Compression.LZ4 });
    expect(validateBatch(b).recordCount).toBe(2);
    const badFrame = Buffer.from(b);
    badFrame[RECORDS_OFFSET + 6]! ^= 0xff; // header checksum byte of the frame
    expectRill(() => validateBatch(recrc(badFrame)), "CORRUPT_MESSAGE", /^lz4 frame: header checksum/);
    const lying = Buffer.from(b);
    lying.writeInt32BE(3, RECORD_COUNT_OFFSET);
    lying.writeInt32BE(2, LAST_OFFSET_DELTA_OFFSET);
    recrc(lying);
    expect(validateBatch(lying).recordCount).toBe(3); // not visible without decompressing
    expectRill(() => validateBatchDeep(lying), "RECORD_COUNT_MISMATCH", /^recordCount: 3, but the records end after 2/);
  });

  it("compressed gzip: checks the gzip header without decompressing", () => {
    const b = encodeBatch([{ value: "a" }], { nowMs: 1, compression: Compression.GZIP });
    expect(validateBatchDeep(b).recordCount).toBe(1);
    b[RECORDS_OFFSET] = 0;
    expectRill(() => validateBatch(recrc(b)), "CORRUPT_MESSAGE", /^gzip: bad magic/);
  });

  it("accepts batches as compaction leaves them: gaps in offset deltas, and empty batches", () => {
    const gaps = encodeBatch([{ value: "a" }, { value: "b" }, { value: "c" }], { nowMs: 1, offsetDeltas: [1, 4, 9] });
    expect(validateBatchDeep(gaps).lastOffsetDelta).toBe(9);
    const lz4Gaps = encodeBatch([{ value: "a" }, { value: "b" }], { nowMs: 1, offsetDeltas: [3, 7], compression: Compression.LZ4 });
    expect(validateBatchDeep(lz4Gaps).lastOffsetDelta).toBe(7);
    const empty = batchAround(Buffer.alloc(0), { recordCount: 0, lastOffsetDelta: 12 });
    expect(validateBatchDeep(empty).recordCount).toBe(0);
    const emptyWithBytes = batchAround(frame(0, "a"), { recordCount: 0, lastOffsetDelta: 0 });
    expectRill(() => validateBatch(emptyWithBytes), "RECORD_COUNT_MISMATCH", /bytes follow the last of 0 records/);
  });
});

describe("in-place rewrites", () => {
  it("setBaseOffset and setPartitionLeaderEpoch keep the CRC valid", () => {
    const b = encodeBatch(HAND_RECORDS, HAND_OPTIONS);
    const crc = b.readUInt32BE(CRC_OFFSET);
    setBaseOffset(b, 0, 5_000_000_000_123);
    setPartitionLeaderEpoch(b, 0, 99);
    expect(b.readUInt32BE(CRC_OFFSET)).toBe(crc);
    const h = validateBatchDeep(b);
    expect([h.baseOffset, h.partitionLeaderEpoch, h.lastOffset]).toEqual([5_000_000_000_123, 99, 5_000_000_000_124]);
    expect(decodeRecords(b).map((r) => r.offset)).toEqual([5_000_000_000_123, 5_000_000_000_124]);
  });

  it("rewrites the batch at a position, leaving its neighbours alone", () => {
    const a = encodeBatch([{ value: "a" }], { nowMs: 1 });
    const b = encodeBatch([{ value: "b" }], { nowMs: 1 });
    const buf = Buffer.concat([a, b]);
    setBaseOffset(buf, a.length, 77);
    expect(readBatchHeader(buf, 0).baseOffset).toBe(0);
    expect(validateBatch(buf, a.length).baseOffset).toBe(77);
  });

  it("setLogAppendTime marks the batch and makes maxTimestamp every record's timestamp", () => {
    const b = encodeBatch(HAND_RECORDS, HAND_OPTIONS);
    setLogAppendTime(b, 0, 1_800_000_000_000);
    const h = validateBatchDeep(b);
    expect([h.timestampType, h.maxTimestamp]).toEqual([TimestampType.LOG_APPEND_TIME, 1_800_000_000_000]);
    expect(decodeRecords(b).map((r) => r.timestampMs)).toEqual([1_800_000_000_000, 1_800_000_000_000]);
  });
});

describe("iterating concatenated batches", () => {
  const parts = [
    encodeBatch([{ value: "a" }], { nowMs: 1, baseOffset: 0 }),
    encodeBatch([{ value: "b" }, { value: "c" }], { nowMs: 1, baseOffset: 1, compression: Compression.LZ4 }),
    encodeBatch([{ value: "d" }], { nowMs: 1, baseOffset: 3 }),
  ];
  const all = Buffer.concat(parts);

  it("visits every whole batch with its position", () => {
    const seen: Array<[number, number]> = [];
    expect(forEachBatch(all, (h, pos) => void seen.push([h.baseOffset, pos]))).toBe(all.length);
    expect(seen).toEqual([
      [0, 0],
      [1, parts[0]!.length],
      [3, parts[0]!.length + parts[1]!.length],
    ]);
    expect([...batches(all)].map((x) => x.header.lastOffset)).toEqual([0, 2, 3]);
  });

  it("stops at a trailing partial batch (cut in the header or in the records)", () => {
    const twoAndAHalf = parts[0]!.length + parts[1]!.length;
    for (const cut of [twoAndAHalf + 5, twoAndAHalf + 30, all.length - 1]) {
      const seen: number[] = [];
      expect(forEachBatch(all.subarray(0, cut), (h) => void seen.push(h.baseOffset))).toBe(twoAndAHalf);
      expect(seen).toEqual([0, 1]);
      const it = batches(all.subarray(0, cut));
      expect([it.next().done, it.next().done, it.next()]).toEqual([false, false, { done: true, value: twoAndAHalf }]);
    }
  });

  it("stops when the callback returns false", () => {
    const seen: number[] = [];
    expect(
      forEachBatch(all, (h) => {
        seen.push(h.baseOffset);
        return false;
      }),
    ).toBe(parts[0]!.length);
    expect(seen).toEqual([0]);
  });

  it("throws on a batchLength too small to hold a header", () => {
    const bad = Buffer.from(all);
    bad.writeInt32BE(10, parts[0]!.length + BATCH_LENGTH_OFFSET);
    expectRill(() => forEachBatch(bad, () => {}), "BATCH_LENGTH_MISMATCH", /^batchLength: 10 at position \d+/);
  });
});

describe("encodeBatch", () => {
  it("writes strings and bytes identically, and UTF-8 byte lengths", () => {
    const s = encodeBatch([{ key: "ключ", value: "🚀 ok", headers: [{ key: "é", value: "ü" }] }], { nowMs: 5 });
    const b = encodeBatch(
      [{ key: Buffer.from("ключ"), value: new Uint8Array(Buffer.from("🚀 ok")), headers: [{ key: "é", value: Buffer.from("ü") }] }],
      { nowMs: 5 },
    );
    expect(s.equals(b)).toBe(true);
    const c = records(s);
    expect(c.next()).toBe(true);
    expect([c.keyString(), c.keyLength, c.valueString(), c.valueLength]).toEqual(["ключ", 8, "🚀 ok", 7]);
  });

  it("takes record timestamps, else nowMs; baseTimestamp is the first record's and maxTimestamp the largest", () => {
    const b = encodeBatch([{ value: "a", timestampMs: 50 }, { value: "b" }, { value: "c", timestampMs: 10 }], { nowMs: 70 });
    const h = readBatchHeader(b);
    expect([h.baseTimestamp, h.maxTimestamp]).toEqual([50, 70]);
    expect(decodeRecords(b).map((r) => r.timestampMs)).toEqual([50, 70, 10]);
  });

  it("refuses a record without timestamp when no nowMs is given (core code never reads the clock)", () => {
    expectRill(
      () => encodeBatch([{ value: "a", timestampMs: 1 }, { value: "b" }]),
      "INVALID_TIMESTAMP",
      /^records\[1\]\.timestampMs: absent/,
    );
    expectRill(() => encodeBatch([{ value: "a", timestampMs: 1.5 }]), "INVALID_TIMESTAMP", /not an integer/);
  });

  it("writes given offset deltas and checks them", () => {
    const b = encodeBatch([{ value: "a" }, { value: "b" }], { nowMs: 1, baseOffset: 10, offsetDeltas: [2, 5] });
    expect(decodeRecords(b).map((r) => r.offset)).toEqual([12, 15]);
    expect(readBatchHeader(b).lastOffsetDelta).toBe(5);
    expectRill(
      () => encodeBatch([{ value: "a" }], { nowMs: 1, offsetDeltas: [0, 1] }),
      "INVALID_ARGUMENT",
      /^offsetDeltas: 2 deltas for 1 records/,
    );
    expectRill(
      () => encodeBatch([{ value: "a" }, { value: "b" }], { nowMs: 1, offsetDeltas: [3, 3] }),
      "INVALID_ARGUMENT",
      /^offsetDeltas\[1\]/,
    );
    expectRill(() => encodeBatch([{ value: "a" }], { nowMs: 1, offsetDeltas: [-1] }), "INVALID_ARGUMENT", /^offsetDeltas\[0\]/);
  });

  it("checks the batch fields", () => {
    expectRill(() => encodeBatch([{ value: "a" }], { nowMs: 1, baseOffset: -1 }), "INVALID_ARGUMENT", /^baseOffset: -1/);
    expectRill(() => encodeBatch([{ value: "a" }], { nowMs: 1, producerEpoch: 40000 }), "INVALID_ARGUMENT", /^producerEpoch/);
    expectRill(() => encodeBatch([{ value: "a" }], { nowMs: 1, compression: 5 }), "UNSUPPORTED_COMPRESSION_TYPE");
    expectRill(
      () => encodeBatch([{ value: "a", headers: [{ key: null as unknown as string, value: "x" }] }], { nowMs: 1 }),
      "INVALID_ARGUMENT",
      /^records\[0\]\.headers\[0\]\.key: must be a string/,
    );
  });

  it("encodes an empty record list as an empty batch", () => {
    const b = encodeBatch([], { nowMs: 1 });
    expect(b.length).toBe(HEADER_SIZE);
    const h = validateBatchDeep(b);
    expect([h.recordCount, h.baseTimestamp, h.maxTimestamp]).toEqual([0, -1, -1]);
    expect(decodeRecords(b)).toEqual([]);
  });

  it("round-trips large batches in every codec (multi-block LZ4, 2-3 byte varints)", () => {
    const big: RecordInput[] = Array.from({ length: 700 }, (_, i) => ({
      key: i % 7 === 0 ? null : `key-${i}`,
      value: i % 11 === 0 ? null : `value-${i}-`.padEnd(40 + ((i * 37) % 500), "xyz"),
      headers: i % 3 === 0 ? [{ key: "n", value: String(i) }] : [],
      timestampMs: 1_000_000 + ((i * 7919) % 100_000) - 50_000,
    }));
    for (const compression of [Compression.NONE, Compression.GZIP, Compression.LZ4]) {
      const b = encodeBatch(big, { nowMs: 1, compression, baseOffset: 1 << 20 });
      validateBatchDeep(b);
      expectRecords(decodeRecords(b), big, 1 << 20);
    }
    expect(encodeBatch(big, { compression: Compression.LZ4 }).length).toBeLessThan(encodeBatch(big).length / 3);
  });
});

describe("lazy decoding", () => {
  const b = encodeBatch(goldenRecords(), goldenOptions);

  it("exposes positions into the batch; key/value are views, not copies", () => {
    const c = records(b);
    expect(c.next()).toBe(true);
    expect([c.index, c.offset, c.offsetDelta, c.timestampMs, c.attributes, c.headerCount]).toEqual([
      0,
      1_234_567_890_123,
      0,
      GOLDEN_TS,
      0,
      3,
    ]);
    expect(c.buf).toBe(b);
    expect(b.toString("utf8", c.keyStart, c.keyStart + c.keyLength)).toBe("user-1");
    const v = c.value()!;
    expect(v.buffer).toBe(b.buffer);
    expect(v.byteOffset).toBe(b.byteOffset + c.valueStart);
    expect(c.headers().map((h) => [h.key, str(h.value)])).toEqual([
      ["trace-id", "4bf92f3577b34da6"],
      ["empty", ""],
      ["null-value", null],
    ]);
    expect(c.next()).toBe(true);
    expect([c.keyLength, c.key(), c.keyString(), c.valueString()]).toEqual([-1, null, null, "no key"]);
    expect(c.next()).toBe(true);
    expect([c.valueLength, c.value(), c.valueString()]).toEqual([-1, null, null]);
  });

  it("iterates with for..of and stops after the last record", () => {
    const offsets: number[] = [];
    const c = records(b);
    for (const r of c) offsets.push(r.offset - 1_234_567_890_123);
    expect(offsets).toEqual([0, 1, 2, 3, 4, 5]);
    expect(c.next()).toBe(false);
  });

  it("reads compressed batches from their decompressed payload", () => {
    for (const compression of [Compression.GZIP, Compression.LZ4]) {
      const z = encodeBatch(goldenRecords(), { ...goldenOptions, compression });
      const c = records(z);
      expect(c.buf).not.toBe(z);
      expectRecords(decodeRecords(z), goldenRecords(), 1_234_567_890_123);
    }
  });

  it("a cursor can be reset onto another batch", () => {
    const c = records(b);
    while (c.next());
    const other = encodeBatch([{ value: "x" }], { nowMs: 1, baseOffset: 5 });
    c.reset(other);
    expect([c.next(), c.offset, c.valueString(), c.next()]).toEqual([true, 5, "x", false]);
  });

  it("reports trailing bytes and missing records when it reaches them", () => {
    const short = batchAround(frame(0, "a"), { recordCount: 2, lastOffsetDelta: 1 });
    const c = records(short);
    expect(c.next()).toBe(true);
    expectRill(() => c.next(), "RECORD_COUNT_MISMATCH", /recordCount: 2, but the records end after 1/);
    const long = batchAround(Buffer.concat([frame(0, "a"), frame(1, "b")]), { recordCount: 1, lastOffsetDelta: 0 });
    const d = records(long);
    expect(d.next()).toBe(true);
    expectRill(() => d.next(), "RECORD_COUNT_MISMATCH", /bytes follow the last of 1 records/);
  });

  it("never reads out of bounds: any mutation gives records or a RillError", () => {
    const seed = seedFromEnv();
    console.log(`record-batch mutation: SEED=${seed}`);
    const rand = new SeededRandom(seed);
    const sources = [b, encodeBatch(goldenRecords(), { ...goldenOptions, compression: Compression.LZ4 })];
    for (let i = 0; i < 3000; i++) {
      const src = sources[i % 2]!;
      const m = Buffer.from(src);
      const flips = 1 + rand.int(3);
      for (let k = 0; k < flips; k++) m[HEADER_SIZE + rand.int(m.length - HEADER_SIZE)] = rand.int(256);
      const cut = rand.int(4) === 0 ? m.subarray(0, HEADER_SIZE + rand.int(m.length - HEADER_SIZE)) : m;
      for (const attempt of [() => validateBatchDeep(recrcIfWhole(cut)), () => decodeRecords(cut)]) {
        try {
          attempt();
        } catch (e: unknown) {
          if (!(e instanceof RillError)) throw new Error(`SEED=${seed} iteration ${i}: ${String(e)}`);
        }
      }
    }
  });
});

/** Recomputes the CRC when `b` is one whole batch, so mutations reach the checks after the CRC. */
function recrcIfWhole(b: Buffer): Buffer {
  if (b.readInt32BE(BATCH_LENGTH_OFFSET) + 12 === b.length) recrc(b);
  return b;
}

describe("filterBatch (compaction)", () => {
  const input: RecordInput[] = Array.from({ length: 10 }, (_, i) => ({ key: `k${i % 3}`, value: `v${i}`, timestampMs: 1000 + i * 10 }));
  const opts = {
    nowMs: 1,
    baseOffset: 500,
    producerId: 8,
    producerEpoch: 2,
    baseSequence: 30,
    partitionLeaderEpoch: 4,
    isTransactional: true,
  };

  for (const compression of [Compression.NONE, Compression.GZIP, Compression.LZ4]) {
    it(`keeps offsets, timestamps and producer fields (${compression})`, () => {
      const b = encodeBatch(input, { ...opts, compression });
      const out = filterBatch(b, 0, (r) => r.offsetDelta % 3 === 1);
      const h = validateBatchDeep(out);
      const orig = readBatchHeader(b);
      expect([
        h.baseOffset,
        h.baseTimestamp,
        h.producerId,
        h.producerEpoch,
        h.baseSequence,
        h.partitionLeaderEpoch,
        h.isTransactional,
        h.compression,
      ]).toEqual([500, orig.baseTimestamp, 8, 2, 30, 4, true, compression]);
      expect([h.recordCount, h.lastOffsetDelta, h.maxTimestamp]).toEqual([3, 9, 1070]); // lastOffsetDelta kept, as Kafka
      expect(decodeRecords(out).map((r) => [r.offset, r.timestampMs, str(r.value)])).toEqual([
        [501, 1010, "v1"],
        [504, 1040, "v4"],
        [507, 1070, "v7"],
      ]);
    });
  }

  it("can change the codec", () => {
    const b = encodeBatch(input, { ...opts, compression: Compression.GZIP });
    const out = filterBatch(b, 0, () => true, { compression: Compression.LZ4 });
    expect(readBatchHeader(out).compression).toBe(Compression.LZ4);
    expect(decodeRecords(out)).toEqual(decodeRecords(b));
  });

  it("leaves an empty, uncompressed batch that keeps lastOffsetDelta when nothing is kept", () => {
    const b = encodeBatch(input, { ...opts, compression: Compression.LZ4 });
    const out = filterBatch(b, 0, () => false);
    expect(out.length).toBe(HEADER_SIZE);
    const h = validateBatchDeep(out);
    expect([h.recordCount, h.lastOffsetDelta, h.lastOffset, h.compression, h.producerId, h.baseSequence]).toEqual([
      0,
      9,
      509,
      Compression.NONE,
      8,
      30,
    ]);
  });

  it("reads the batch at a position", () => {
    const b = encodeBatch(input, opts);
    const buf = Buffer.concat([encodeBatch([{ value: "z" }], { nowMs: 1 }), b]);
    const out = filterBatch(buf, buf.length - b.length, (r) => r.valueString() === "v9");
    expect(decodeRecords(out).map((r) => r.offset)).toEqual([509]);
  });
});

describe("kafkajs interop", () => {
  const msgs = [
    {
      key: Buffer.from("k-1"),
      value: Buffer.from("first"),
      headers: { a: Buffer.from("1"), b: Buffer.from("two") },
      ts: 1_700_000_000_000,
    },
    { key: null, value: Buffer.from("second"), headers: {}, ts: 1_700_000_000_050 },
    { key: Buffer.from("k-3"), value: null, headers: { z: Buffer.from("") }, ts: 1_699_999_999_990 },
    { key: Buffer.from("ключ"), value: Buffer.from("x".repeat(400)), headers: {}, ts: 1_700_000_000_001 },
  ];
  const ours: RecordInput[] = msgs.map((m) => ({
    key: m.key,
    value: m.value,
    headers: Object.entries(m.headers).map(([key, value]) => ({ key, value })),
    timestampMs: m.ts,
  }));

  for (const compression of [Compression.NONE, Compression.GZIP]) {
    it(`reads what kafkajs encodes (codec ${compression})`, async () => {
      const first = msgs[0]!.ts;
      const enc = await kjsRecordBatch({
        compression,
        firstOffset: KjsLong.fromNumber(3_000_000_000),
        firstTimestamp: first,
        maxTimestamp: Math.max(...msgs.map((m) => m.ts)),
        partitionLeaderEpoch: 6,
        lastOffsetDelta: msgs.length - 1,
        producerId: KjsLong.fromNumber(123_456_789_012),
        producerEpoch: 4,
        firstSequence: 77,
        transactional: true,
        records: msgs.map((m, i) =>
          kjsRecord({ offsetDelta: i, timestampDelta: m.ts - first, key: m.key, value: m.value, headers: m.headers }),
        ),
      });
      const bytes = enc.buffer;
      const h = validateBatchDeep(bytes);
      expect([
        h.baseOffset,
        h.partitionLeaderEpoch,
        h.producerId,
        h.producerEpoch,
        h.baseSequence,
        h.isTransactional,
        h.compression,
      ]).toEqual([3_000_000_000, 6, 123_456_789_012, 4, 77, true, compression]);
      expect([h.recordCount, h.lastOffsetDelta, h.baseTimestamp, h.maxTimestamp]).toEqual([4, 3, first, 1_700_000_000_050]);
      expectRecords(decodeRecords(bytes), ours, 3_000_000_000);
    });

    it(`kafkajs reads what we encode (codec ${compression})`, async () => {
      const bytes = encodeBatch(ours, {
        compression,
        baseOffset: 3_000_000_000,
        partitionLeaderEpoch: 6,
        producerId: 123_456_789_012,
        producerEpoch: 4,
        baseSequence: 77,
      });
      const b = await kjsDecodeBatch(new KjsDecoder(bytes));
      expect([
        b.firstOffset,
        b.partitionLeaderEpoch,
        b.lastOffsetDelta,
        b.producerId,
        b.producerEpoch,
        b.firstSequence,
        b.maxTimestamp,
      ]).toEqual(["3000000000", 6, 3, "123456789012", 4, 77, "1700000000050"]);
      expect(b.records.length).toBe(msgs.length);
      b.records.forEach((r, i) => {
        const m = msgs[i]!;
        expect([r.offset, r.timestamp], `record ${i}`).toEqual([String(3_000_000_000 + i), String(m.ts)]);
        expect(r.key).toEqual(m.key);
        expect(r.value).toEqual(m.value);
        expect(r.headers).toEqual(m.headers);
      });
    });
  }

  it("our LZ4 batches carry the LZ4 frame Kafka's Java client writes", () => {
    const bytes = encodeBatch(ours, { nowMs: 1, compression: Compression.LZ4 });
    expect(bytes.subarray(RECORDS_OFFSET, RECORDS_OFFSET + 7).toString("hex")).toBe("04224d18604082");
    const region = encodeBatch(ours, { nowMs: 1 }).subarray(RECORDS_OFFSET);
    expect(bytes.subarray(RECORDS_OFFSET).equals(compress(Compression.LZ4, region))).toBe(true);
  });
});
