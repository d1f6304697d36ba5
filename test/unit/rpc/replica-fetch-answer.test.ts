/**
 * The leader's side of ReplicaFetch (`answer`, the handler the gRPC stream and the cluster
 * simulator call) on one broker's core: acks=ALL produces complete when the followers' next
 * fetches carry their log ends past them, a long-polling fetch wakes at an append, and a disk
 * read's pooled buffer goes back to its pool only when the response is released.
 */
import { create, fromBinary } from "@bufbuild/protobuf";
import { afterEach, describe, expect, it } from "vitest";
import { ReplicaFetchRequestSchema, ReplicaFetchResponseSchema } from "../../../src/gen/rill/v1/replication_service_pb.ts";
import { encodeBatch } from "../../../src/protocol/record-batch.ts";
import { BufferPool } from "../../../src/rpc/buffer-pool.ts";
import { encodeReplicaFetchResponse } from "../../../src/rpc/replica-fetch-codec.ts";
import { answer } from "../../../src/rpc/replication-service.ts";
import { UNBOUNDED_FETCH_MEMORY } from "../../../src/service/fetch.ts";
import { LeaderFetchSession } from "../../../src/replication/fetch-session.ts";
import { type Core, openCore, settle } from "../service/helpers.ts";

let core: Core | null = null;
afterEach(async () => {
  await core?.close();
  core = null;
});

const batch = (n: number, valueBytes = 10): Buffer =>
  encodeBatch(
    Array.from({ length: n }, (_, i) => ({ key: null, value: Buffer.alloc(valueBytes, i % 251), timestampMs: 1 })),
    { nowMs: 1 },
  );

function fetchReq(replicaId: number, fetchOffset: number, maxWaitMs: number) {
  return create(ReplicaFetchRequestSchema, {
    replicaId,
    brokerEpoch: 1n,
    maxWaitMs,
    minBytes: 1,
    maxBytes: 10 << 20,
    partitions: [
      { topic: "t", partition: 0, fetchOffset: BigInt(fetchOffset), lastFetchedEpoch: fetchOffset > 0 ? 0 : -1, currentLeaderEpoch: 0 },
    ],
  });
}

const noAbort = () => ({ aborted: false, onabort: null });

describe("ReplicaFetch, leader side", () => {
  it("an acks=ALL produce completes when both followers' next fetches carry their log ends past it", async () => {
    core = openCore();
    await core.brokers([1, 2, 3], 1); // the fetches' broker epoch (fetchReq)
    await core.topic("t", [{ leader: 1, followers: [2, 3] }]);
    const appended = batch(5);
    const res = core.rm.append("t", 0, appended, "all");
    let acked = false;
    void core.rm.replicated("t", 0, res.lastOffset, 30_000).then(() => (acked = true));
    const timersBefore = core.timers.size;
    for (const follower of [2, 3]) {
      const { res: out, release } = await answer(core.rm, fetchReq(follower, 0, 0), noAbort(), UNBOUNDED_FETCH_MEMORY);
      // What the follower decodes is the leader's batch as stored.
      const decoded = fromBinary(ReplicaFetchResponseSchema, encodeReplicaFetchResponse(out));
      expect(Buffer.from(decoded.partitions[0]!.recordBatches).equals(appended)).toBe(true);
      release();
    }
    await settle();
    expect(acked).toBe(false); // the high watermark is still 0
    await answer(core.rm, fetchReq(2, 5, 0), noAbort(), UNBOUNDED_FETCH_MEMORY);
    await settle();
    expect(acked).toBe(false); // follower 3 has not said it has them
    const { res: last } = await answer(core.rm, fetchReq(3, 5, 0), noAbort(), UNBOUNDED_FETCH_MEMORY);
    await settle();
    expect(acked).toBe(true);
    expect(last.partitions[0]!.highWatermark).toBe(5);
    expect(core.timers.size).toBe(timersBefore - 1); // the purgatory's one timer is gone with its last wait
  });

  it("a long-polling fetch answers at an append, without its wait running out", async () => {
    core = openCore();
    await core.topic("t", [{ leader: 1, followers: [2] }]);
    let answered: number | null = null;
    void answer(core.rm, fetchReq(2, 0, 10_000), noAbort(), UNBOUNDED_FETCH_MEMORY).then(({ res, release }) => {
      answered = res.partitions[0]!.recordBatches.reduce((n, c) => n + c.length, 0);
      release();
    });
    await settle();
    expect(answered).toBe(null);
    const b = batch(3);
    core.rm.append("t", 0, b, "all");
    await settle();
    expect(answered).toBe(b.length);
  });

  it("a disk read fills a pooled buffer that goes back only when the response is released", async () => {
    core = openCore();
    await core.topic("t", [{ leader: 1, followers: [2] }]);
    // Three batches of ~600 KiB: the 1 MiB tail cache keeps only the last, offset 0 is read from disk.
    for (let i = 0; i < 3; i++) core.rm.append("t", 0, batch(60, 10_000), "leader");
    const pool = new BufferPool(16 << 20);
    const { res, release } = await answer(core.rm, fetchReq(2, 0, 0), noAbort(), UNBOUNDED_FETCH_MEMORY, pool);
    expect(res.partitions[0]!.recordBatches.reduce((n, c) => n + c.length, 0)).toBeGreaterThan(0);
    expect(pool.stats.taken).toBe(1);
    expect(pool.stats.given).toBe(0);
    encodeReplicaFetchResponse(res);
    expect(pool.stats.given).toBe(0);
    release();
    expect(pool.stats.given).toBe(1);
    // The next disk read reuses it.
    const again = await answer(core.rm, fetchReq(2, 0, 0), noAbort(), UNBOUNDED_FETCH_MEMORY, pool);
    again.release();
    expect(pool.stats.reused).toBe(1);
  });
});

/** A request of stream session `epoch` (fetch-session.ts) for the partitions at the given offsets. */
function sessionReq(epoch: number, incremental: boolean, offsets: Record<string, number>, forgotten: string[] = []) {
  return create(ReplicaFetchRequestSchema, {
    replicaId: 2,
    brokerEpoch: 1n,
    maxWaitMs: 0,
    minBytes: 1,
    maxBytes: 10 << 20,
    sessionEpoch: epoch,
    incremental,
    partitions: Object.entries(offsets).map(([topic, o]) => ({
      topic,
      partition: 0,
      fetchOffset: BigInt(o),
      lastFetchedEpoch: o > 0 ? 0 : -1,
      currentLeaderEpoch: 0,
    })),
    forgottenPartitions: forgotten.map((topic) => ({ topic, partition: 0 })),
  });
}

const listed = (res: { partitions: readonly { topic: string }[] }): string[] => res.partitions.map((p) => p.topic);

describe("ReplicaFetch, leader side: fetch sessions", () => {
  it("answers an older follower's request (no session epoch) in full and keeps no session", async () => {
    core = openCore();
    await core.brokers([1, 2], 1);
    await core.topic("a", [{ leader: 1, followers: [2] }]);
    await core.topic("b", [{ leader: 1, followers: [2] }]);
    const session = new LeaderFetchSession();
    const old = await answer(core.rm, sessionReq(0, false, { a: 0, b: 0 }), noAbort(), UNBOUNDED_FETCH_MEMORY, undefined, session);
    expect([listed(old.res), old.res.sessionKept]).toEqual([["a", "b"], false]);
    expect(session.size).toBe(0);
    await expect(answer(core.rm, sessionReq(1, true, {}), noAbort(), UNBOUNDED_FETCH_MEMORY, undefined, session)).rejects.toThrow(
      /FETCH_SESSION_ID_NOT_FOUND|no fetch session/,
    );
  });

  it("refuses an incremental request that does not follow the previous one, and keeps the session as it was", async () => {
    core = openCore();
    await core.brokers([1, 2], 1);
    await core.topic("a", [{ leader: 1, followers: [2] }]);
    await core.topic("b", [{ leader: 1, followers: [2] }]);
    const session = new LeaderFetchSession();
    const ask = (req: ReturnType<typeof sessionReq>) => answer(core!.rm, req, noAbort(), UNBOUNDED_FETCH_MEMORY, undefined, session);
    const full = await ask(sessionReq(5, false, { a: 0, b: 0 }));
    expect([listed(full.res), full.res.sessionKept]).toEqual([["a", "b"], true]);
    // Nothing new: an empty answer.
    expect(listed((await ask(sessionReq(6, true, {}))).res)).toEqual([]);
    for (const bad of [sessionReq(6, true, {}), sessionReq(8, true, {}), sessionReq(6, false, { a: 0 })])
      await expect(ask(bad)).rejects.toThrow(/session_epoch/);
    await expect(ask(sessionReq(7, false, { a: 0 }, ["b"]))).rejects.toThrow(/forgotten_partitions/);
    // The session still holds a-0 and b-0 at 0: b-0's record is answered though no request names it.
    core.rm.append("b", 0, batch(2), "leader");
    const next = await ask(sessionReq(7, true, {}));
    expect(listed(next.res)).toEqual(["b"]);
    expect(next.res.partitions[0]!.recordBatches.length).toBeGreaterThan(0);
    // b-0 leaves: no answer lists it again, though it has records.
    expect(listed((await ask(sessionReq(8, true, {}, ["b"]))).res)).toEqual([]);
    expect(session.size).toBe(1);
  });
});
