import { beforeAll, describe, expect, it } from "vitest";
import { RillError } from "../../../src/base/errors.ts";
import { SeededRandom, seedFromEnv } from "../../../src/base/random.ts";
import { initCodecs } from "../../../src/protocol/compression.ts";
import { Compression, encodeBatch, type ProduceChecks, validateBatch, validateProducedBatch } from "../../../src/protocol/record-batch.ts";
import { badBatches, batchOf, goodBatch, TS, zipBomb } from "../../fixtures/bad-batches.ts";

beforeAll(() => initCodecs());

/** Kafka's five codecs. */
const CODECS = [Compression.NONE, Compression.GZIP, Compression.SNAPPY, Compression.LZ4, Compression.ZSTD];

const FULL: ProduceChecks = { validation: "full", decompressedBytesMax: 1 << 20 };
const STRUCTURE: ProduceChecks = { validation: "structure", decompressedBytesMax: 1 << 20 };

function errorOf(fn: () => unknown): RillError {
  try {
    fn();
  } catch (e: unknown) {
    expect(e).toBeInstanceOf(RillError);
    return e as RillError;
  }
  throw new Error("expected a RillError, nothing was thrown");
}

const full =
  (b: Buffer, keyRequired = false) =>
  () =>
    validateProducedBatch(b, 0, b.length, FULL, keyRequired);
const structure = (b: Buffer) => () => validateProducedBatch(b, 0, b.length, STRUCTURE, false);

/** [defect, the error `full` gives, what its message says]. */
const defects: Array<[keyof typeof badBatches, string, RegExp]> = [
  ["garbageDeflate", "CORRUPT_MESSAGE", /gzip: /],
  ["gzipOfNonRecords", "RECORD_COUNT_MISMATCH", /record 0 of 1: length 58 runs past the end/],
  ["garbageLz4", "CORRUPT_MESSAGE", /lz4 frame: block 0/],
  ["garbageSnappy", "CORRUPT_MESSAGE", /^snappy: block 0: /],
  ["garbageZstd", "CORRUPT_MESSAGE", /^zstd: frame 0: /],
  ["hugeKeyLength", "CORRUPT_MESSAGE", /record 0: key of 1000000 bytes runs past the record end/],
  ["hugeKeyLengthLz4", "CORRUPT_MESSAGE", /record 0: key of 1000000 bytes runs past the record end/],
  ["negativeHeaderCount", "CORRUPT_MESSAGE", /record 0: headerCount -3 is negative/],
  ["offsetDeltasShifted", "INVALID_RECORD", /record 0: offsetDelta 1, want 0/],
  ["timestampAfterMax", "INVALID_TIMESTAMP", /record 1: timestamp \d+ is after the batch's maxTimestamp/],
  ["negativeTimestamp", "INVALID_TIMESTAMP", /record 0: timestamp -5 .* negative/],
  ["control", "INVALID_RECORD", /control bit .* a client can never write a control batch/],
  ["transactional", "INVALID_RECORD", /transactional bit .* not produced in a verified transaction/],
];

describe("validateProducedBatch, full: the defects of issue 14", () => {
  for (const [name, code, msg] of defects) {
    it(`refuses ${name} with ${code}, naming what is wrong`, () => {
      const e = errorOf(full(badBatches[name]()));
      expect(e.kind.name, e.message).toBe(code);
      expect(e.message).toMatch(msg);
    });
  }

  it("each defect but the attribute bits passes the old structure check (so only the deep walk finds it)", () => {
    for (const [name] of defects) {
      const b = badBatches[name]();
      if (name === "control" || name === "transactional") continue;
      if (name === "negativeTimestamp" || name === "timestampAfterMax" || name === "offsetDeltasShifted" || name === "hugeKeyLength") {
        expect(() => validateBatch(b), name).not.toThrow();
      }
      expect(() => structure(b)(), name).not.toThrow();
    }
  });

  it("refuses the control and transactional bits with `structure` too", () => {
    expect(errorOf(structure(badBatches.control())).kind.name).toBe("INVALID_RECORD");
    expect(errorOf(structure(badBatches.transactional())).kind.name).toBe("INVALID_RECORD");
  });

  it("refuses a zip bomb at the bound, every codec, without expanding it", () => {
    for (const codec of CODECS.slice(1)) {
      const bomb = zipBomb(codec, 16 << 20); // 16 MiB of zeros, a few KiB compressed
      expect(bomb.length).toBeLessThan(codec === Compression.SNAPPY ? 1 << 20 : 100 << 10); // snappy's ratio tops out near 21:1
      const e = errorOf(full(bomb));
      expect(e.kind.name).toBe("MESSAGE_TOO_LARGE");
      expect(e.message).toMatch(/decompressed payload (of \d+ bytes )?exceeds 1048576/);
    }
  });

  it("refuses a record without a key only when keys are required (compacted topics)", () => {
    for (const codec of CODECS) {
      const b = batchOf(
        [
          { offsetDelta: 0, key: "k" },
          { offsetDelta: 1, key: null },
        ],
        codec,
      );
      expect(full(b)).not.toThrow();
      const e = errorOf(full(b, true));
      expect(e.kind.name).toBe("INVALID_RECORD");
      expect(e.message).toMatch(/record 1: has no key, but the topic is compacted/);
    }
  });

  it("accepts what encodeBatch writes, every codec, seeded random records", () => {
    const seed = seedFromEnv();
    const rnd = new SeededRandom(seed);
    for (let round = 0; round < 60; round++) {
      const codec = CODECS[round % CODECS.length]!;
      const n = 1 + rnd.int(40);
      const records = Array.from({ length: n }, (_, i) => ({
        key: rnd.int(3) === 0 ? null : `k${rnd.int(1000)}`,
        value: rnd.int(5) === 0 ? null : "x".repeat(rnd.int(300)),
        headers: Array.from({ length: rnd.int(3) }, (_, j) => ({ key: `h${j}`, value: rnd.int(2) === 0 ? null : "hv" })),
        timestampMs: TS + rnd.int(100_000) - (i === 0 ? 0 : 50_000),
      }));
      const b = encodeBatch(records, { compression: codec });
      expect(full(b), `seed ${seed} round ${round}`).not.toThrow();
    }
    expect(full(goodBatch())).not.toThrow();
  });
});
