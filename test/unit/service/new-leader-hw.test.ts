/**
 * A new leader that does not know the high watermark yet (issue 17, "LSO never moves backwards";
 * Kafka's KIP-207). Node 1 follows "t"-0 (leader 2, ISR 1,2,3) and holds offsets 0-9, but the
 * last high watermark it learned is 6, one replica fetch behind the 10 that node 2 answered its
 * readers. Node 2 fails and node 1 is elected (epoch 1, its epoch starts at offset 10). Until
 * its followers have fetched up to 10, no consumer answer may carry a high watermark or last
 * stable offset: Fetch (either isolation level) answers OFFSET_NOT_AVAILABLE, ListOffsets
 * LATEST too, Subscribe sends nothing; replica fetches are served as ever. The fault scenario
 * (`npm run faults -- --scenario txn --seed 2700`) saw node 1's answer go from 100 to 96.
 */
import { afterEach, describe, expect, it } from "vitest";
import { RillError } from "../../../src/base/errors.ts";
import type { MetadataRecord } from "../../../src/metadata/records.ts";
import { type ProduceChecks, encodeBatch } from "../../../src/protocol/record-batch.ts";
import { fetch } from "../../../src/service/fetch.ts";
import {
  type Cancellation,
  type FetchInput,
  type FetchResult,
  IsolationLevel,
  OffsetSpec,
  RecordFormat,
} from "../../../src/service/fetch-types.ts";
import { listOffsets } from "../../../src/service/list-offsets.ts";
import { initProducerId } from "../../../src/service/producer-id.ts";
import { subscribe } from "../../../src/service/subscribe.ts";
import { type Core, openCore, settle } from "./helpers.ts";

const RU = IsolationLevel.READ_UNCOMMITTED;
const RC = IsolationLevel.READ_COMMITTED;
const BROKER_EPOCH = 5;

const cores: Core[] = [];
afterEach(async () => {
  for (const c of cores.splice(0)) await c.close();
});

type Store = { commit(f: () => MetadataRecord[]): Promise<void> };
const storeOf = (c: Core): Store => (c.rm as unknown as { metadata: Store }).metadata;

/** Offsets 0-5 at timestamp 1000 + offset, 6-9 at 2000 + offset, as node 2 (epoch 0) wrote them. */
const leaderBatches = (): Buffer =>
  Buffer.concat([
    encodeBatch(
      Array.from({ length: 6 }, (_, i) => ({ value: `v${i}`, timestampMs: 1000 + i })),
      { baseOffset: 0, partitionLeaderEpoch: 0, nowMs: 1 },
    ),
    encodeBatch(
      Array.from({ length: 4 }, (_, i) => ({ value: `v${6 + i}`, timestampMs: 2006 + i })),
      { baseOffset: 6, partitionLeaderEpoch: 0, nowMs: 1 },
    ),
  ]);

/** Node 1 leads "t"-0 at epoch 1 with offsets 0-9 and the high watermark 6 it knew as a follower. */
async function newLeader(isr: readonly number[] = [1, 2, 3]): Promise<Core> {
  const c = openCore();
  cores.push(c);
  await c.brokers([1, 2, 3], BROKER_EPOCH);
  await c.topic("t", [{ leader: 2, followers: [1, 3] }]);
  const r = c.rm.replica("t", 0)!;
  expect(r.role).toBe("follower");
  c.rm.applyFetched(r, leaderBatches(), 6);
  expect([r.log.logEndOffset, r.hw]).toEqual([10, 6]);
  await storeOf(c).commit(() => [
    { type: "partition-change", v: 1, topic: "t", partition: 0, leader: 1, isr: [...isr], leaderEpoch: 1, partitionEpoch: 1 },
  ]);
  expect([r.role, r.leaderEpoch, r.epochStartOffset]).toEqual(["leader", 1, 10]);
  return c;
}

/** Follower `id` fetches "t"-0 from `offset` (its log end), as its current registration. */
function followerFetch(c: Core, id: number, offset: number) {
  return c.rm.fetchForFollower(id, {
    topic: "t",
    partition: 0,
    fetchOffset: offset,
    lastFetchedEpoch: 0,
    currentLeaderEpoch: 1,
    maxBytes: 1 << 20,
    brokerEpoch: BROKER_EPOCH,
  });
}

const noCancel = (): Cancellation => ({ aborted: false, onabort: null });

function input(isolationLevel: number, offset = 0n, maxWaitMs = 0): FetchInput {
  return {
    partitions: [{ topic: "t", partition: 0, offset, maxBytes: 0 }],
    maxWaitMs,
    minBytes: 1,
    maxBytes: 0,
    format: RecordFormat.RECORDS,
    isolationLevel,
  };
}

const latest = (c: Core, level: number) =>
  listOffsets(c.rm, [{ topic: "t", partition: 0, spec: OffsetSpec.LATEST, timestampMs: 0n }], level)[0]!;

const values = (r: FetchResult): string[] =>
  r.partitions.flatMap((p) => (p.records ?? []).map((x) => Buffer.from(x.value ?? new Uint8Array()).toString()));

describe("a new leader's high watermark (KIP-207)", () => {
  it("answers no high watermark or last stable offset until it reaches the epoch's start: Fetch and ListOffsets say OFFSET_NOT_AVAILABLE", async () => {
    const c = await newLeader();
    for (const level of [RU, RC]) {
      const p = (await fetch(c.rm, input(level, 6n), noCancel(), null)).partitions[0]!;
      // (before the fix: no error, high watermark and last stable offset 6, below node 2's 10)
      expect([p.error?.kind.name, p.highWatermark, p.lastStableOffset, p.records]).toEqual(["OFFSET_NOT_AVAILABLE", -1, -1, null]);
      expect(p.error?.retriable).toBe(true);
      const l = latest(c, level);
      expect([l.error?.kind.name, l.offset]).toEqual(["OFFSET_NOT_AVAILABLE", -1]);
    }
    expect(c.rm.readPartition({ topic: "t", partition: 0, offset: 0, maxBytes: 100, readCommitted: true }).error).toBeInstanceOf(RillError);
    // EARLIEST needs no high watermark; a timestamp found below the one known is answered, one past it is not known yet.
    const spec = (s: number, ts: bigint) => listOffsets(c.rm, [{ topic: "t", partition: 0, spec: s, timestampMs: ts }], RC)[0]!;
    expect(spec(OffsetSpec.EARLIEST, 0n)).toMatchObject({ offset: 0, error: null });
    expect(spec(OffsetSpec.TIMESTAMP, 1003n)).toMatchObject({ offset: 3, error: null });
    expect(spec(OffsetSpec.TIMESTAMP, 2007n).error?.kind.name).toBe("OFFSET_NOT_AVAILABLE");
    // Replica fetches are served: they carry the followers' log ends that make the high watermark known.
    const f = followerFetch(c, 2, 10);
    expect([f.error, f.highWatermark]).toEqual([null, 6]);
    expect(c.rm.hwKnown(c.rm.replica("t", 0)!.log)).toBe(false); // 3 has not fetched
    followerFetch(c, 3, 10);
    expect(c.rm.replica("t", 0)!.hw).toBe(10);
    const p = (await fetch(c.rm, input(RC, 6n), noCancel(), null)).partitions[0]!;
    expect([p.error, p.highWatermark, p.lastStableOffset]).toEqual([null, 10, 10]);
    expect(latest(c, RC)).toMatchObject({ offset: 10, error: null });
    expect(spec(OffsetSpec.TIMESTAMP, 2007n)).toMatchObject({ offset: 7, error: null });
  });

  it("a waiting Fetch is answered with the records once the idle followers' fetches (their log ends) make it known", async () => {
    const c = await newLeader();
    let answered: FetchResult | null = null;
    const pending = fetch(c.rm, input(RC, 6n, 5_000), noCancel(), null).then((r) => (answered = r));
    await settle();
    expect(answered).toBeNull(); // waits, as for a partition with no data: no error yet
    followerFetch(c, 2, 10);
    followerFetch(c, 3, 10);
    await pending;
    const p = answered!.partitions[0]!;
    expect([p.error, p.highWatermark, p.lastStableOffset]).toEqual([null, 10, 10]);
    expect(values(answered!)).toEqual(["v6", "v7", "v8", "v9"]);
  });

  it("a Fetch whose wait ends first answers OFFSET_NOT_AVAILABLE", async () => {
    const c = await newLeader();
    const pending = fetch(c.rm, input(RU, 6n, 100), noCancel(), null);
    await settle();
    c.timers.advance(100);
    const p = (await pending).partitions[0]!;
    expect([p.error?.kind.name, p.highWatermark]).toEqual(["OFFSET_NOT_AVAILABLE", -1]);
  });

  it("Subscribe sends nothing and no error for the partition until it is known, then its records", async () => {
    const c = await newLeader();
    const sent: FetchResult[] = [];
    const sink = {
      send: (m: FetchResult, _bytes: number, onSent: () => void) => {
        sent.push(m);
        onSent();
      },
      room: async () => {},
    };
    const cancel = noCancel();
    const done = subscribe(
      c.rm,
      {
        partitions: [{ topic: "t", partition: 0, offset: 6n, maxBytes: 0 }],
        maxBytes: 0,
        maxWaitMs: 0,
        format: RecordFormat.RECORDS,
        isolationLevel: RC,
      },
      sink,
      cancel,
      { take: (size: number) => Buffer.alloc(size), give: () => {} },
    );
    await settle();
    expect(sent).toEqual([]);
    followerFetch(c, 2, 10);
    followerFetch(c, 3, 10);
    await settle();
    expect(sent.map(values)).toEqual([["v6", "v7", "v8", "v9"]]);
    expect(sent[0]!.partitions[0]).toMatchObject({ error: null, highWatermark: 10, lastStableOffset: 10 });
    cancel.aborted = true;
    cancel.onabort?.();
    await done;
  });

  it("a start position taken meanwhile is the least the high watermark will be: the epoch's start", async () => {
    const c = await newLeader();
    expect(() => c.rm.latestOffset("t", 0)).toThrow(/OFFSET_NOT_AVAILABLE|has not reached it yet/);
    expect(c.rm.startingLatestOffset("t", 0)).toBe(10);
    expect(c.rm.startingLatestOffset("t", 0, true)).toBe(10);
    // A rack-aware leader does not point a reader elsewhere before it knows: it answers itself.
    c.rm.readReplicaSelector = "rack-aware";
    expect(c.rm.preferredReadReplica("t", 0, "b")).toBeNull();
  });

  it("with itself the only in-sync replica it knows the high watermark at once (HW = its log end)", async () => {
    const c = await newLeader([1]);
    const r = c.rm.replica("t", 0)!;
    expect([r.hw, c.rm.hwKnown(r.log)]).toEqual([10, true]);
    const p = (await fetch(c.rm, input(RC, 6n), noCancel(), null)).partitions[0]!;
    expect([p.error, p.highWatermark, p.lastStableOffset]).toEqual([null, 10, 10]);
  });
});

describe("a transaction whose marker the high watermark has not passed yet (Kafka's unreplicated transactions)", () => {
  it("stays unstable until the ISR holds the marker: a new leader that lacks it would still see it open", async () => {
    const c = openCore();
    cores.push(c);
    await c.brokers([1, 2, 3], BROKER_EPOCH);
    await c.topic("t", [{ leader: 1, followers: [2, 3] }]);
    const { producerId, producerEpoch } = await initProducerId(c.rm, { transactionalId: "", producerId: undefined, producerEpoch: 0 });
    const TXN: ProduceChecks = { validation: "full", decompressedBytesMax: 1 << 20, transactional: true };
    const txnBatch = encodeBatch([{ value: "t0" }, { value: "t1" }], {
      producerId,
      producerEpoch,
      baseSequence: 0,
      isTransactional: true,
      nowMs: 1,
    });
    c.rm.append("t", 0, txnBatch, "leader", TXN); // offsets 0-1
    c.rm.append("t", 0, encodeBatch([{ value: "p2" }, { value: "p3" }], { nowMs: 1 }), "leader"); // 2-3
    const fetchAt = (offset: number) =>
      [2, 3].forEach((id) =>
        c.rm.fetchForFollower(id, {
          topic: "t",
          partition: 0,
          fetchOffset: offset,
          lastFetchedEpoch: 0,
          currentLeaderEpoch: 0,
          maxBytes: 1 << 20,
          brokerEpoch: BROKER_EPOCH,
        }),
      );
    fetchAt(4);
    const log = c.rm.replica("t", 0)!.log;
    expect([c.rm.highWatermark(log), c.rm.lastStableOffset(log)]).toEqual([4, 0]); // open
    const marker = c.rm.writeTxnMarker("t", 0, { producerId, producerEpoch, commit: true, coordinatorEpoch: 0 }); // offset 4
    expect(log.firstUnstableOffset).toBeNull(); // closed in this log...
    // ...but the followers do not have the marker yet (before the fix: 4, and the reader got t0, t1).
    expect(c.rm.lastStableOffset(log)).toBe(0);
    expect(values(await fetch(c.rm, input(RC, 0n), noCancel(), null))).toEqual([]);
    fetchAt(5);
    await marker;
    expect([c.rm.highWatermark(log), c.rm.lastStableOffset(log)]).toEqual([5, 5]);
    expect(values(await fetch(c.rm, input(RC, 0n), noCancel(), null))).toEqual(["t0", "t1", "p2", "p3"]);
  });
});
