/**
 * The read path of transactions at the service level: transactional batches written with
 * `ProduceChecks.transactional` and ended by `ReplicaManager.writeTxnMarker` (the coordinator's
 * two calls), read by Fetch, Subscribe and ListOffsets at both isolation levels.
 */
import { afterEach, describe, expect, it } from "vitest";
import { RillError } from "../../../src/base/errors.ts";
import { encodeControlBatch, readControlRecord } from "../../../src/protocol/control-record.ts";
import { type ProduceChecks, encodeBatch, readBatchHeader } from "../../../src/protocol/record-batch.ts";
import { fetch } from "../../../src/service/fetch.ts";
import {
  type Cancellation,
  type FetchInput,
  type FetchPartitionResult,
  type FetchResult,
  IsolationLevel,
  OffsetSpec,
  RecordFormat,
} from "../../../src/service/fetch-types.ts";
import { listOffsets } from "../../../src/service/list-offsets.ts";
import { ProduceHandler } from "../../../src/service/produce.ts";
import { ProduceAcks } from "../../../src/service/produce-types.ts";
import { initProducerId } from "../../../src/service/producer-id.ts";
import { subscribe } from "../../../src/service/subscribe.ts";
import { type Core, openCore, settle } from "./helpers.ts";

const TS = 1_700_000_000_000;
const TXN: ProduceChecks = { validation: "full", decompressedBytesMax: 1 << 20, transactional: true };
const RU = IsolationLevel.READ_UNCOMMITTED;
const RC = IsolationLevel.READ_COMMITTED;

const cores: Core[] = [];
afterEach(async () => {
  for (const c of cores.splice(0)) await c.close();
});

/** A core with topic "t" (one partition, led here) and an issued producer id. */
async function setUp(): Promise<{ core: Core; pid: number; epoch: number }> {
  const core = openCore();
  cores.push(core);
  await core.topic("t", [1]);
  const id = await initProducerId(core.rm, { transactionalId: "", producerId: undefined, producerEpoch: 0 });
  return { core, pid: id.producerId, epoch: id.producerEpoch };
}

function plain(core: Core, values: string[]): void {
  core.rm.append(
    "t",
    0,
    encodeBatch(
      values.map((v) => ({ key: "k", value: v })),
      { nowMs: TS },
    ),
    "all",
  );
}

function txn(core: Core, pid: number, epoch: number, seq: number, values: string[]): void {
  const b = encodeBatch(
    values.map((v) => ({ key: "k", value: v })),
    { producerId: pid, producerEpoch: epoch, baseSequence: seq, isTransactional: true, nowMs: TS },
  );
  core.rm.append("t", 0, b, "all", TXN);
}

const noCancel = (): Cancellation => ({ aborted: false, onabort: null });

async function read(core: Core, isolationLevel: number, format: number, offset = 0n): Promise<FetchPartitionResult> {
  const input: FetchInput = {
    partitions: [{ topic: "t", partition: 0, offset, maxBytes: 0 }],
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 0,
    format,
    isolationLevel,
  };
  const res = await fetch(core.rm, input, noCancel(), null);
  res.release();
  return res.partitions[0]!;
}

const valuesOf = (p: FetchPartitionResult): string[] => (p.records ?? []).map((r) => Buffer.from(r.value!).toString());

/** The batches of a BATCHES answer: [baseOffset, "data" | "COMMIT" | "ABORT", transactional]. */
function batchesOf(p: FetchPartitionResult): Array<[number, string, boolean]> {
  const out: Array<[number, string, boolean]> = [];
  for (const chunk of p.batches ?? []) {
    const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    for (let pos = 0; pos < buf.length; ) {
      const h = readBatchHeader(buf, pos);
      const m = h.isControl ? readControlRecord(buf, pos) : null;
      out.push([h.baseOffset, m === null ? "data" : m.commit ? "COMMIT" : "ABORT", h.isTransactional]);
      pos += h.size;
    }
  }
  return out;
}

function errorOf(f: () => unknown): RillError {
  try {
    f();
  } catch (e) {
    if (e instanceof RillError) return e;
    throw e;
  }
  throw new Error("expected a RillError");
}

describe("READ_COMMITTED: aborted transactions", () => {
  /** before(0) x1,x2(1-2, aborted) mid(3) ABORT(4) after(5) c1(6, committed) COMMIT(7). */
  async function withAbort(): Promise<{ core: Core; pid: number }> {
    const { core, pid, epoch } = await setUp();
    plain(core, ["before"]);
    txn(core, pid, epoch, 0, ["x1", "x2"]);
    plain(core, ["mid"]);
    await core.rm.writeTxnMarker("t", 0, { producerId: pid, producerEpoch: epoch, commit: false, coordinatorEpoch: 0 });
    plain(core, ["after"]);
    txn(core, pid, epoch, 2, ["c1"]);
    await core.rm.writeTxnMarker("t", 0, { producerId: pid, producerEpoch: epoch, commit: true, coordinatorEpoch: 0 });
    return { core, pid };
  }

  it("RECORDS: invisible to READ_COMMITTED, visible to READ_UNCOMMITTED; markers are never records", async () => {
    const { core } = await withAbort();
    const rc = await read(core, RC, RecordFormat.RECORDS);
    expect(valuesOf(rc)).toEqual(["before", "mid", "after", "c1"]);
    expect(rc).toMatchObject({ highWatermark: 8, lastStableOffset: 8, nextOffset: 8 });
    expect(rc.abortedTransactions ?? null).toBeNull(); // RECORDS: the broker dropped them itself
    const ru = await read(core, RU, RecordFormat.RECORDS);
    expect(valuesOf(ru)).toEqual(["before", "x1", "x2", "mid", "after", "c1"]);
    expect(ru.nextOffset).toBe(8);
    const unspecified = await read(core, IsolationLevel.UNSPECIFIED, RecordFormat.RECORDS);
    expect(valuesOf(unspecified)).toEqual(valuesOf(ru));
    // from inside the aborted transaction: its remaining records are still dropped
    expect(valuesOf(await read(core, RC, RecordFormat.RECORDS, 2n))).toEqual(["mid", "after", "c1"]);
  });

  it("BATCHES: READ_COMMITTED lists the aborted transaction with the stored batches; READ_UNCOMMITTED lists none", async () => {
    const { core, pid } = await withAbort();
    const rc = await read(core, RC, RecordFormat.BATCHES);
    expect(rc.abortedTransactions).toEqual([{ producerId: pid, firstOffset: 1 }]);
    expect(batchesOf(rc)).toEqual([
      [0, "data", false],
      [1, "data", true],
      [3, "data", false],
      [4, "ABORT", true],
      [5, "data", false],
      [6, "data", true],
      [7, "COMMIT", true],
    ]);
    // a range after the abort lists nothing
    expect((await read(core, RC, RecordFormat.BATCHES, 5n)).abortedTransactions).toEqual([]);
    const ru = await read(core, RU, RecordFormat.BATCHES);
    expect(ru.abortedTransactions ?? null).toBeNull();
    expect(batchesOf(ru)).toEqual(batchesOf(rc));
  });
});

describe("READ_COMMITTED: the last stable offset", () => {
  it("a read stops at the LSO while a transaction is open; ListOffsets LATEST answers it; the commit releases the rest", async () => {
    const { core, pid, epoch } = await setUp();
    plain(core, ["a"]);
    txn(core, pid, epoch, 0, ["open-1"]);
    plain(core, ["b"]);
    txn(core, pid, epoch, 1, ["open-2"]);
    let rc = await read(core, RC, RecordFormat.RECORDS);
    expect(valuesOf(rc)).toEqual(["a"]);
    expect(rc).toMatchObject({ highWatermark: 4, lastStableOffset: 1, nextOffset: 1 });
    expect((await read(core, RC, RecordFormat.RECORDS, 1n)).records).toBeNull(); // nothing below the LSO there
    expect(valuesOf(await read(core, RU, RecordFormat.RECORDS))).toEqual(["a", "open-1", "b", "open-2"]);
    const latest = (level: number): number =>
      listOffsets(core.rm, [{ topic: "t", partition: 0, spec: OffsetSpec.LATEST, timestampMs: 0n }], level)[0]!.offset;
    expect(latest(RC)).toBe(1);
    expect(latest(RU)).toBe(4);
    expect(latest(IsolationLevel.UNSPECIFIED)).toBe(4);
    await core.rm.writeTxnMarker("t", 0, { producerId: pid, producerEpoch: epoch, commit: true, coordinatorEpoch: 0 });
    rc = await read(core, RC, RecordFormat.RECORDS, 1n);
    expect(valuesOf(rc)).toEqual(["open-1", "b", "open-2"]);
    expect(rc).toMatchObject({ highWatermark: 5, lastStableOffset: 5, nextOffset: 5 });
    expect(latest(RC)).toBe(5);
  });

  it("Subscribe with READ_COMMITTED delivers a transaction's records only once it commits", async () => {
    const { core, pid, epoch } = await setUp();
    const sent: FetchResult[] = [];
    const sink = {
      send: (m: FetchResult, _bytes: number, onSent: () => void) => {
        sent.push(m);
        onSent();
      },
      room: async () => {},
    };
    const cancel = noCancel();
    const buffers = { take: (size: number) => Buffer.alloc(size), give: () => {} };
    const done = subscribe(
      core.rm,
      {
        partitions: [{ topic: "t", partition: 0, offset: 0n, maxBytes: 0 }],
        maxBytes: 0,
        maxWaitMs: 0,
        format: RecordFormat.RECORDS,
        isolationLevel: RC,
      },
      sink,
      cancel,
      buffers,
    );
    txn(core, pid, epoch, 0, ["t1", "t2"]);
    plain(core, ["p"]);
    await settle();
    expect(sent).toHaveLength(0);
    await core.rm.writeTxnMarker("t", 0, { producerId: pid, producerEpoch: epoch, commit: true, coordinatorEpoch: 0 });
    await settle();
    expect(sent.flatMap((m) => m.partitions.flatMap(valuesOf))).toEqual(["t1", "t2", "p"]);
    cancel.aborted = true;
    cancel.onabort?.();
    await done;
  });

  it("refuses an isolation level that is not one of the enum's", async () => {
    const { core } = await setUp();
    await expect(read(core, 3, RecordFormat.RECORDS)).rejects.toThrow(/isolation_level: 3 is not/);
    expect(() => listOffsets(core.rm, [{ topic: "t", partition: 0, spec: OffsetSpec.LATEST, timestampMs: 0n }], 7)).toThrow(
      /isolation_level: 7/,
    );
  });
});

describe("markers and produce validation at the service", () => {
  it("a client batch with the control bit (or an unverified transactional one) is refused with nothing stored", async () => {
    const { core, pid, epoch } = await setUp();
    const h = new ProduceHandler(core.rm);
    const forged = encodeControlBatch({ producerId: pid, producerEpoch: epoch, commit: true, coordinatorEpoch: 0, timestampMs: TS });
    const unverified = encodeBatch([{ key: "k", value: "v" }], {
      producerId: pid,
      producerEpoch: epoch,
      baseSequence: 0,
      isTransactional: true,
      nowMs: TS,
    });
    for (const [batch, text] of [
      [forged, /a client can never write a control batch/],
      [unverified, /not produced in a verified transaction/],
    ] as const) {
      const outcome = await h
        .produce({
          topic: "t",
          partition: 0,
          records: [],
          recordBatch: batch,
          acks: ProduceAcks.ALL,
          timeoutMs: 0,
          producerId: BigInt(pid),
          producerEpoch: epoch,
          baseSequence: 0,
        })
        .then(
          (r) => r.partitions[0]!.error,
          (e: unknown) => e,
        );
      expect(outcome).toBeInstanceOf(RillError);
      expect((outcome as RillError).kind.name).toBe("INVALID_RECORD");
      expect((outcome as RillError).message).toMatch(text);
    }
    const log = core.rm.readLog("t", 0);
    expect(log.logEndOffset).toBe(0);
    expect(log.producers.producerCount).toBe(0);
  });

  it("TV2: after a marker with the coordinator's bumped epoch, the producer's next transaction writes at that epoch (not issued by the controller)", async () => {
    const { core, pid, epoch } = await setUp();
    txn(core, pid, epoch, 0, ["first"]);
    await core.rm.writeTxnMarker("t", 0, { producerId: pid, producerEpoch: epoch + 1, commit: true, coordinatorEpoch: 0 });
    txn(core, pid, epoch + 1, 0, ["second"]);
    // a non-transactional batch at an epoch the controller never issued is still refused
    const idempotent = encodeBatch([{ key: "k", value: "x" }], { producerId: pid, producerEpoch: epoch + 2, baseSequence: 0, nowMs: TS });
    expect(errorOf(() => core.rm.append("t", 0, idempotent, "all")).kind.name).toBe("INVALID_PRODUCER_EPOCH");
    // and a late batch of the old epoch is fenced by the partition
    expect(errorOf(() => txn(core, pid, epoch, 1, ["late"])).kind.name).toBe("INVALID_PRODUCER_EPOCH");
    expect(valuesOf(await read(core, RU, RecordFormat.RECORDS))).toEqual(["first", "second"]);
  });

  it("writeTxnMarker refuses a stale producer epoch and a partition led elsewhere, writing nothing", async () => {
    const { core, pid, epoch } = await setUp();
    await core.topic("elsewhere", [2]);
    txn(core, pid, epoch, 0, ["a"]);
    const bumped = await initProducerId(core.rm, { transactionalId: "", producerId: BigInt(pid), producerEpoch: epoch });
    await core.rm.writeTxnMarker("t", 0, { producerId: pid, producerEpoch: bumped.producerEpoch, commit: false, coordinatorEpoch: 1 });
    const end = core.rm.readLog("t", 0).logEndOffset;
    await expect(
      core.rm.writeTxnMarker("t", 0, { producerId: pid, producerEpoch: epoch, commit: true, coordinatorEpoch: 1 }),
    ).rejects.toMatchObject({ kind: { name: "INVALID_PRODUCER_EPOCH" } });
    await expect(
      core.rm.writeTxnMarker("elsewhere", 0, { producerId: pid, producerEpoch: bumped.producerEpoch, commit: true, coordinatorEpoch: 1 }),
    ).rejects.toMatchObject({ kind: { name: "NOT_LEADER_OR_FOLLOWER" } });
    expect(core.rm.readLog("t", 0).logEndOffset).toBe(end);
    expect(errorOf(() => core.rm.leaderLog("elsewhere", 0)).kind.name).toBe("NOT_LEADER_OR_FOLLOWER");
    // the abort went through: nothing of the transaction is visible to READ_COMMITTED
    expect((await read(core, RC, RecordFormat.RECORDS)).records?.length ?? 0).toBe(0);
  });
});
