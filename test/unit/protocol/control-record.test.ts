import { describe, expect, it } from "vitest";
import { RillError } from "../../../src/base/errors.ts";
import { ControlType, controlKey, encodeControlBatch, readControlRecord } from "../../../src/protocol/control-record.ts";
import {
  type ProduceChecks,
  decodeRecords,
  encodeBatch,
  readBatchHeader,
  validateBatchDeep,
  validateProducedBatch,
} from "../../../src/protocol/record-batch.ts";

const TS = 1_700_000_000_000;
const FULL: ProduceChecks = { validation: "full", decompressedBytesMax: 1 << 20 };

function errorOf(f: () => unknown): RillError {
  try {
    f();
  } catch (e) {
    if (e instanceof RillError) return e;
    throw e;
  }
  throw new Error("expected a RillError");
}

describe("control records (transaction markers)", () => {
  it("encodes Kafka's layout: a control + transactional batch of one record, key version/type, value version/coordinatorEpoch", () => {
    const b = encodeControlBatch({ producerId: 4242, producerEpoch: 7, commit: true, coordinatorEpoch: 3, timestampMs: TS });
    const h = validateBatchDeep(b);
    expect(h).toMatchObject({
      isControl: true,
      isTransactional: true,
      producerId: 4242,
      producerEpoch: 7,
      baseSequence: -1,
      recordCount: 1,
      lastOffsetDelta: 0,
      compression: 0,
      baseTimestamp: TS,
      maxTimestamp: TS,
    });
    expect(h.attributes).toBe(0x30);
    const [r] = decodeRecords(b);
    expect(Buffer.from(r!.key!).toString("hex")).toBe("00000001"); // version 0, type 1 COMMIT
    expect(Buffer.from(r!.value!).toString("hex")).toBe("000000000003"); // version 0, coordinatorEpoch 3
    expect(r!.headers).toEqual([]);
    expect(readControlRecord(b)).toEqual({ commit: true, coordinatorEpoch: 3 });
    const abort = encodeControlBatch({ producerId: 1, producerEpoch: 0, commit: false, coordinatorEpoch: 0, timestampMs: TS });
    expect(Buffer.from(decodeRecords(abort)[0]!.key!).toString("hex")).toBe("00000000");
    expect(readControlRecord(abort)).toEqual({ commit: false, coordinatorEpoch: 0 });
  });

  it("reads a marker at a position inside a buffer, and answers null for data batches and unknown control types or versions", () => {
    const data = encodeBatch([{ key: "k", value: "v" }], { nowMs: TS });
    const m = encodeControlBatch({ producerId: 9, producerEpoch: 1, commit: false, coordinatorEpoch: 12, timestampMs: TS });
    const both = Buffer.concat([data, m]);
    expect(readControlRecord(both, data.length)).toEqual({ commit: false, coordinatorEpoch: 12 });
    expect(readControlRecord(both, 0)).toBeNull();
    const value = Buffer.from("000000000001", "hex");
    const unknownType = encodeBatch([{ key: controlKey(5), value }], {
      producerId: 1,
      producerEpoch: 0,
      isControl: true,
      isTransactional: true,
      nowMs: TS,
    });
    expect(readControlRecord(unknownType)).toBeNull();
    const newerVersion = encodeBatch([{ key: Buffer.from("00010001", "hex"), value }], { producerId: 1, isControl: true, nowMs: TS });
    expect(readControlRecord(newerVersion)).toBeNull();
    const shortValue = encodeBatch([{ key: controlKey(ControlType.COMMIT), value: Buffer.from("0000", "hex") }], {
      producerId: 1,
      isControl: true,
      nowMs: TS,
    });
    expect(errorOf(() => readControlRecord(shortValue)).kind.name).toBe("CORRUPT_MESSAGE");
  });

  it("refuses markers with ids out of range", () => {
    const base = { producerId: 1, producerEpoch: 0, commit: true, coordinatorEpoch: 0, timestampMs: TS };
    expect(errorOf(() => encodeControlBatch({ ...base, producerId: -1 })).kind.name).toBe("INVALID_ARGUMENT");
    expect(errorOf(() => encodeControlBatch({ ...base, producerEpoch: 40_000 })).kind.name).toBe("INVALID_ARGUMENT");
    expect(errorOf(() => encodeControlBatch({ ...base, coordinatorEpoch: -2 })).kind.name).toBe("INVALID_ARGUMENT");
  });
});

describe("produce validation of the transactional and control bits", () => {
  const txn = (): Buffer =>
    encodeBatch([{ key: "k", value: "v" }], { producerId: 5, producerEpoch: 0, baseSequence: 0, isTransactional: true, nowMs: TS });

  it("a client can never write a control batch, verified transaction or not", () => {
    const marker = encodeControlBatch({ producerId: 5, producerEpoch: 0, commit: true, coordinatorEpoch: 0, timestampMs: TS });
    for (const checks of [FULL, { ...FULL, transactional: true }, { ...FULL, validation: "structure" as const, transactional: true }]) {
      const e = errorOf(() => validateProducedBatch(marker, 0, marker.length, checks, false));
      expect(e.kind.name).toBe("INVALID_RECORD");
      expect(e.message).toMatch(/control bit .* a client can never write a control batch/);
    }
  });

  it("accepts the transactional bit only in a verified transaction, and only with a producer id, epoch and sequence", () => {
    const b = txn();
    expect(errorOf(() => validateProducedBatch(b, 0, b.length, FULL, false)).message).toMatch(/not produced in a verified transaction/);
    expect(validateProducedBatch(b, 0, b.length, { ...FULL, transactional: true }, false).isTransactional).toBe(true);
    const noSeq = encodeBatch([{ key: "k", value: "v" }], { producerId: 5, producerEpoch: 0, isTransactional: true, nowMs: TS });
    expect(errorOf(() => validateProducedBatch(noSeq, 0, noSeq.length, { ...FULL, transactional: true }, false)).message).toMatch(
      /transactional batch needs a producer id, epoch and sequence/,
    );
    expect(readBatchHeader(b).isTransactional).toBe(true);
  });
});
