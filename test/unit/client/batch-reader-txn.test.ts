import { describe, expect, it } from "vitest";
import { readRecords } from "../../../src/client/batch-reader.ts";
import { AbortedTxnFilter, encodeControlBatch } from "../../../src/protocol/control-record.ts";
import { encodeBatch, setBaseOffset } from "../../../src/protocol/record-batch.ts";

const TS = 1_700_000_000_000;

/** A batch at `offset`: transactional of `pid` when given, else plain. */
function at(offset: number, values: string[], pid?: number): Buffer {
  const b = encodeBatch(
    values.map((v) => ({ key: "k", value: v })),
    pid === undefined ? { nowMs: TS } : { producerId: pid, producerEpoch: 0, baseSequence: 0, isTransactional: true, nowMs: TS },
  );
  setBaseOffset(b, 0, offset);
  return b;
}

function markerAt(offset: number, pid: number, commit: boolean): Buffer {
  const b = encodeControlBatch({ producerId: pid, producerEpoch: 0, commit, coordinatorEpoch: 0, timestampMs: TS });
  setBaseOffset(b, 0, offset);
  return b;
}

/** Two producers interleaved: 1 aborts [0, 4], 2 commits [1, 5], then 1 starts again and commits. */
const log = Buffer.concat([
  at(0, ["a1"], 1),
  at(1, ["b1"], 2),
  at(2, ["plain"]),
  at(3, ["a2"], 1),
  markerAt(4, 1, false),
  markerAt(5, 2, true),
  at(6, ["a3"], 1),
  markerAt(7, 1, true),
]);

const values = (fromOffset: number, aborted: { producerId: number; firstOffset: number }[] = []): string[] =>
  [...readRecords("t", 0, log, fromOffset, true, undefined, aborted)].map((r) => r.value!.toString());

describe("SDK batch reader: transactions", () => {
  it("never yields control batches; READ_UNCOMMITTED (no aborted list) yields every data record", () => {
    expect(values(0)).toEqual(["a1", "b1", "plain", "a2", "a3"]);
  });

  it("drops the aborted transaction's batches, only that producer's, up to its marker (Kafka's consumer rule)", () => {
    expect(values(0, [{ producerId: 1, firstOffset: 0 }])).toEqual(["b1", "plain", "a3"]);
    expect(values(3, [{ producerId: 1, firstOffset: 0 }])).toEqual(["a3"]); // from inside the transaction
    expect(values(6, [])).toEqual(["a3"]);
  });

  it("the filter takes aborted transactions in any order and drops every control batch", () => {
    const f = new AbortedTxnFilter([
      { producerId: 2, firstOffset: 10 },
      { producerId: 1, firstOffset: 0 },
    ]);
    const h = (baseOffset: number, producerId: number, isTransactional = true, isControl = false) => ({
      baseOffset,
      producerId,
      isTransactional,
      isControl,
    });
    expect(f.drops(h(0, 1))).toBe(true);
    expect(f.drops(h(1, 2))).toBe(false); // producer 2's abort starts at 10
    expect(f.drops(h(2, 1, false))).toBe(false); // not transactional
    expect(f.drops(h(3, 1, true, true))).toBe(true); // marker of 1: ends its abort
    expect(f.drops(h(4, 1))).toBe(false);
    expect(f.drops(h(10, 2))).toBe(true);
  });
});
