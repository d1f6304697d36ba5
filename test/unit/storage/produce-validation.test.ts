import { beforeAll, describe, expect, it } from "vitest";
import { RillError } from "../../../src/base/errors.ts";
import { initCodecs } from "../../../src/protocol/compression.ts";
import { Compression, type ProduceChecks } from "../../../src/protocol/record-batch.ts";
import { badBatches, batchOf, goodBatch, zipBomb } from "../../fixtures/bad-batches.ts";
import { ManualClock, MemoryFileSystem, type PartitionLog, openLog, readAll, snapshot } from "./helpers.ts";

beforeAll(() => initCodecs());

const FULL: ProduceChecks = { validation: "full", decompressedBytesMax: 1 << 20 };
const DIR = "/data/t-0";

/** What a rejected append must leave alone: offsets, files, readable records. */
function state(fs: MemoryFileSystem, log: PartitionLog): unknown {
  return { end: log.logEndOffset, size: log.sizeBytes, files: [...snapshot(fs, DIR)], records: readAll(log) };
}

function refused(log: PartitionLog, b: Buffer, checks: ProduceChecks = FULL): RillError {
  try {
    log.append(b, 0, undefined, checks);
  } catch (e: unknown) {
    expect(e).toBeInstanceOf(RillError);
    return e as RillError;
  }
  throw new Error("append accepted the batch");
}

describe("PartitionLog.append with produce.validation=full", () => {
  it("refuses every defect of issue 14, naming the batch's position; nothing stored; a good batch follows", () => {
    const fs = new MemoryFileSystem();
    const log = openLog(fs, new ManualClock(), { maxMessageBytes: 1 << 20 });
    log.append(goodBatch(), 0, undefined, FULL);
    const codes: Record<string, string> = {};
    for (const [name, make] of Object.entries(badBatches)) {
      const before = state(fs, log);
      // after a good batch in the same request: the bad one is the second, at byte 61+
      const good = goodBatch(Compression.LZ4);
      const e = refused(log, Buffer.concat([good, make()]));
      expect(e.message).toMatch(new RegExp(`^record_batch: batch at byte ${good.length}: `));
      codes[name] = e.kind.name;
      expect(state(fs, log), name).toEqual(before);
    }
    expect(codes).toEqual({
      garbageDeflate: "CORRUPT_MESSAGE",
      gzipOfNonRecords: "RECORD_COUNT_MISMATCH",
      garbageLz4: "CORRUPT_MESSAGE",
      garbageSnappy: "CORRUPT_MESSAGE",
      garbageZstd: "CORRUPT_MESSAGE",
      hugeKeyLength: "CORRUPT_MESSAGE",
      hugeKeyLengthLz4: "CORRUPT_MESSAGE",
      negativeHeaderCount: "CORRUPT_MESSAGE",
      offsetDeltasShifted: "INVALID_RECORD",
      timestampAfterMax: "INVALID_TIMESTAMP",
      negativeTimestamp: "INVALID_TIMESTAMP",
      control: "INVALID_RECORD",
      transactional: "INVALID_RECORD",
    });
    const r = log.append(goodBatch(Compression.GZIP), 0, undefined, FULL);
    expect(r.baseOffset).toBe(3);
    expect(readAll(log).map(([o, v]) => `${o}:${v}`)).toEqual(["0:good-0", "1:good-1", "2:good-2", "3:good-0", "4:good-1", "5:good-2"]);
  });

  it("refuses a zip bomb at the bound without storing it", () => {
    const fs = new MemoryFileSystem();
    const log = openLog(fs, new ManualClock(), { maxMessageBytes: 1 << 20 });
    const before = state(fs, log);
    expect(refused(log, zipBomb(Compression.GZIP, 8 << 20)).kind.name).toBe("MESSAGE_TOO_LARGE");
    expect(state(fs, log)).toEqual(before);
  });

  it("refuses a record without a key on a compacted topic (INVALID_RECORD), any codec", () => {
    const fs = new MemoryFileSystem();
    const log = openLog(fs, new ManualClock(), { cleanupPolicy: "compact" });
    for (const codec of [Compression.NONE, Compression.LZ4]) {
      const e = refused(
        log,
        batchOf(
          [
            { offsetDelta: 0, key: "k" },
            { offsetDelta: 1, key: null },
          ],
          codec,
        ),
      );
      expect(e.kind.name).toBe("INVALID_RECORD");
      expect(e.message).toMatch(/record 1: has no key, but the topic is compacted/);
    }
    expect(log.logEndOffset).toBe(0);
    expect(log.append(goodBatch(Compression.LZ4), 0, undefined, FULL).lastOffset).toBe(2);
  });

  it("structure (and the broker's own batches) keep today's checks, but not the attribute bits", () => {
    const fs = new MemoryFileSystem();
    const log = openLog(fs, new ManualClock());
    expect(refused(log, badBatches.control(), { validation: "structure", decompressedBytesMax: 1 << 20 }).kind.name).toBe("INVALID_RECORD");
    expect(() => log.append(badBatches.transactional())).toThrow(/not produced in a verified transaction/);
    log.append(badBatches.garbageDeflate(), 0, undefined, { validation: "structure", decompressedBytesMax: 1 << 20 });
    expect(log.logEndOffset).toBe(1);
  });
});
