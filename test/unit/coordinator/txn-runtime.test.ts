/**
 * The transaction coordinator's runtime over a real replica manager (in-memory files, manual
 * clock): what it appends to `__transaction_state` per transaction, and the markers. A
 * transaction in a loop costs two state appends (Ongoing, PrepareCommit): its CompleteCommit is
 * replayed at once and written with the shard's next append (the id's next record holds it), or
 * on its own after `completeWriteDelayMs`; a coordinator that loads the log without it writes the
 * markers again, which ends nothing twice.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { RillError } from "../../../src/base/errors.ts";
import { murmur2, toPositive } from "../../../src/base/murmur2.ts";
import {
  TXN_PARTITIONS,
  TXN_TOPIC,
  TXN_TOPIC_CONFIGS,
  type TxnMarkerSpec,
  TxnRuntime,
  txnPartitionFor,
} from "../../../src/coordinator/transactions/txn-runtime.ts";
import { type TxnRecord, type TxnStateRecord, txnFromKeyValue } from "../../../src/coordinator/transactions/txn-records.ts";
import type { TxnPartition } from "../../../src/coordinator/transactions/txn-records.ts";
import { readControlRecord } from "../../../src/protocol/control-record.ts";
import { HEADER_SIZE, type ProduceChecks, encodeBatch, readBatchHeader, records } from "../../../src/protocol/record-batch.ts";
import type { ReplicaManager } from "../../../src/replication/replica-manager.ts";
import { localMarker, txnMarkerRouter } from "../../../src/service/txn-service.ts";
import type { TxnMarkerWriter } from "../../../src/service/transactions.ts";
import { type Core, HERE, openCore, settle } from "../service/helpers.ts";

const TXN: ProduceChecks = { validation: "full", decompressedBytesMax: 1 << 20, transactional: true };
const TS = 1_700_000_000_000;

const cores: Core[] = [];
afterEach(async () => {
  for (const c of cores.splice(0)) await c.close();
});

/** A broker (node 1) leading every `__transaction_state` partition and topic "t" (two partitions). */
async function setUp(): Promise<{ core: Core; runtime: TxnRuntime; marked: TxnPartition[] }> {
  const core = openCore();
  cores.push(core);
  await core.topic(
    TXN_TOPIC,
    Array.from({ length: TXN_PARTITIONS }, () => HERE),
    TXN_TOPIC_CONFIGS,
  );
  await core.topic("t", [HERE, HERE]);
  const marked: TxnPartition[] = [];
  return { core, runtime: runtimeOn(core, marked), marked };
}

/** A coordinator runtime on `core` whose markers go to the local leader (and are noted in `marked`). */
function runtimeOn(core: Core, marked: TxnPartition[] = []): TxnRuntime {
  const runtime = new TxnRuntime(
    core.rm,
    core.clock,
    core.timers,
    HERE,
    {
      issueProducerId: (transactionalId, atLeastEpoch) =>
        core.rm.initProducerId({ transactionalId, producerEpoch: 0, epochAtLeast: atLeastEpoch }),
      writeMarker: async (tp, marker) => {
        marked.push(tp);
        await core.rm.writeTxnMarker(tp.topic, tp.partition, marker);
      },
    },
    { maxTimeoutMs: 900_000, expirationMs: 7 * 24 * 3_600_000 },
  );
  runtime.syncShards();
  return runtime;
}

/** The state records in `__transaction_state` partition `p`, batch by batch. */
function stateBatches(rm: ReplicaManager, p: number): TxnRecord[][] {
  const log = rm.leaderLog(TXN_TOPIC, p);
  const out: TxnRecord[][] = [];
  const r = log.read(log.logStartOffset, 64 << 20);
  for (const chunk of r.chunks)
    for (let pos = 0; pos + HEADER_SIZE <= chunk.length; pos += readBatchHeader(chunk, pos).size) {
      const batch: TxnRecord[] = [];
      for (const c = records(chunk, pos); c.next(); ) batch.push(txnFromKeyValue(c.keyString()!, c.value()));
      out.push(batch);
    }
  return out;
}

/** The latest record of `id` in the log. */
function lastWritten(rm: ReplicaManager, id: string): TxnRecord | undefined {
  return stateBatches(rm, txnPartitionFor(id))
    .flat()
    .filter((r) => r.transactionalId === id)
    .at(-1);
}

/** The control records of partition t-`partition`: "COMMIT"/"ABORT" with the producer epoch. */
function markersOf(rm: ReplicaManager, partition: number): string[] {
  const log = rm.leaderLog("t", partition);
  const out: string[] = [];
  const r = log.read(0, 64 << 20);
  for (const chunk of r.chunks)
    for (let pos = 0; pos + HEADER_SIZE <= chunk.length; pos += readBatchHeader(chunk, pos).size) {
      const m = readControlRecord(chunk, pos);
      if (m !== null) out.push(`${m.commit ? "COMMIT" : "ABORT"}@${readBatchHeader(chunk, pos).producerEpoch}`);
    }
  return out;
}

/** One committed transaction of `id` writing `n` records to t-`partition`: the gate, the records, the end; returns the next identity. */
async function oneTxn(
  core: Core,
  runtime: TxnRuntime,
  id: string,
  who: { producerId: number; producerEpoch: number },
  partition = 0,
  commit = true,
): Promise<{ producerId: number; producerEpoch: number }> {
  await runtime.gate({ transactionalId: id, ...who, topic: "t", partition, mode: "add" });
  const batch = encodeBatch([{ key: "k", value: `v-${who.producerEpoch}` }], {
    producerId: who.producerId,
    producerEpoch: who.producerEpoch,
    baseSequence: 0,
    isTransactional: true,
    nowMs: TS,
  });
  core.rm.append("t", partition, batch, "all", TXN);
  const next = await runtime.endTransaction({ transactionalId: id, ...who, commit, bumpEpoch: true });
  await settle(); // the markers, in the background
  return next;
}

/** Two transactional ids coordinated by the same `__transaction_state` partition. */
function twoIdsOnOneShard(): [string, string] {
  const seen = new Map<number, string>();
  for (let i = 0; ; i++) {
    const id = `tx-${i}`;
    const other = seen.get(txnPartitionFor(id));
    if (other !== undefined) return [other, id];
    seen.set(txnPartitionFor(id), id);
  }
}

describe("TxnRuntime: what a transaction appends", () => {
  it("two state appends per transaction in a loop: the CompleteCommit is written with the id's next record, or on its own after completeWriteDelayMs", async () => {
    const { core, runtime, marked } = await setUp();
    let who = await runtime.initProducerId({ transactionalId: "loop", transactionTimeoutMs: 60_000, producerId: -1, producerEpoch: -1 });
    const p = txnPartitionFor("loop");
    const log = core.rm.leaderLog(TXN_TOPIC, p);
    who = await oneTxn(core, runtime, "loop", who); // the first one (after Empty)
    const appends0 = runtime.stateAppends;
    const logAppends0 = log.stats.appends;
    for (let i = 0; i < 5; i++) {
      who = await oneTxn(core, runtime, "loop", who);
      // Complete in memory (the next transaction may start), its record not appended yet.
      expect(runtime.describe("loop").state?.state).toBe("CompleteCommit");
      expect((lastWritten(core.rm, "loop") as TxnStateRecord).state).toBe("PrepareCommit");
    }
    expect(runtime.stateAppends - appends0).toBe(10);
    expect(log.stats.appends - logAppends0).toBe(10);
    // Every Ongoing was written in one batch on its own (the Complete before it is held by it).
    const batches = stateBatches(core.rm, p);
    expect(batches.every((b) => b.length === 1)).toBe(true);
    expect(markersOf(core.rm, 0)).toEqual([1, 2, 3, 4, 5, 6].map((e) => `COMMIT@${e}`));
    expect(marked).toHaveLength(6);
    // Idle: written on its own after completeWriteDelayMs.
    core.timers.advance(19);
    expect((lastWritten(core.rm, "loop") as TxnStateRecord).state).toBe("PrepareCommit");
    core.timers.advance(1);
    expect(runtime.stateAppends - appends0).toBe(11);
    expect(lastWritten(core.rm, "loop")).toEqual(runtime.describe("loop").state);
    expect(runtime.describe("loop").state?.producerEpoch).toBe(who.producerEpoch);
    // A replay of the log has the same state.
    runtime.reloadShardOf("loop");
    expect(runtime.describe("loop").state).toEqual(lastWritten(core.rm, "loop"));
    expect(marked).toHaveLength(6);
    runtime.close();
  });

  it("another id's append on the same shard carries an unwritten CompleteCommit in its batch; close() writes what is left", async () => {
    const { core, runtime } = await setUp();
    const [a, b] = twoIdsOnOneShard();
    const p = txnPartitionFor(a);
    const wa = await runtime.initProducerId({ transactionalId: a, transactionTimeoutMs: 60_000, producerId: -1, producerEpoch: -1 });
    const wb = await runtime.initProducerId({ transactionalId: b, transactionTimeoutMs: 60_000, producerId: -1, producerEpoch: -1 });
    await oneTxn(core, runtime, a, wa, 0);
    const before = runtime.stateAppends;
    await runtime.gate({ transactionalId: b, ...wb, topic: "t", partition: 1, mode: "add" });
    expect(runtime.stateAppends - before).toBe(1);
    const last = stateBatches(core.rm, p).at(-1)!;
    expect(last.map((r) => [r.transactionalId, (r as TxnStateRecord).state])).toEqual([
      [a, "CompleteCommit"],
      [b, "Ongoing"],
    ]);
    // b's transaction ends: its Complete waits; close() writes it.
    await runtime.endTransaction({ transactionalId: b, ...wb, commit: false, bumpEpoch: true });
    await settle();
    expect((lastWritten(core.rm, b) as TxnStateRecord).state).toBe("PrepareAbort");
    expect(markersOf(core.rm, 1)).toEqual([`ABORT@${wb.producerEpoch + 1}`]);
    runtime.close();
    expect((lastWritten(core.rm, b) as TxnStateRecord).state).toBe("CompleteAbort");
    expect(core.timers.size).toBe(0);
  });

  it("an unwritten CompleteCommit is written on its own once it has waited completeWriteDelayMs, not when an older one of another shard is", async () => {
    const { core, runtime } = await setUp();
    const a = "age-a";
    let b = "age-b";
    for (let i = 0; txnPartitionFor(b) === txnPartitionFor(a); i++) b = `age-b${i}`;
    const wa = await runtime.initProducerId({ transactionalId: a, transactionTimeoutMs: 60_000, producerId: -1, producerEpoch: -1 });
    const wb = await runtime.initProducerId({ transactionalId: b, transactionTimeoutMs: 60_000, producerId: -1, producerEpoch: -1 });
    await oneTxn(core, runtime, a, wa, 0); // a's Complete waits from t0
    core.timers.advance(15);
    await oneTxn(core, runtime, b, wb, 1); // b's from t0 + 15
    const before = runtime.stateAppends;
    core.timers.advance(5); // t0 + 20: a's is due, b's is 5 ms old
    expect(runtime.stateAppends - before).toBe(1);
    expect((lastWritten(core.rm, a) as TxnStateRecord).state).toBe("CompleteCommit");
    expect((lastWritten(core.rm, b) as TxnStateRecord).state).toBe("PrepareCommit");
    core.timers.advance(14);
    expect((lastWritten(core.rm, b) as TxnStateRecord).state).toBe("PrepareCommit");
    core.timers.advance(1); // t0 + 35
    expect(runtime.stateAppends - before).toBe(2);
    expect((lastWritten(core.rm, b) as TxnStateRecord).state).toBe("CompleteCommit");
    expect(core.timers.size).toBe(0);
    runtime.close();
  });

  it("a new coordinator that loads the log without the CompleteCommit writes the markers again and completes; READ_COMMITTED sees the records once", async () => {
    const { core, runtime } = await setUp();
    let who = await runtime.initProducerId({ transactionalId: "fo", transactionTimeoutMs: 60_000, producerId: -1, producerEpoch: -1 });
    who = await oneTxn(core, runtime, "fo", who);
    expect((lastWritten(core.rm, "fo") as TxnStateRecord).state).toBe("PrepareCommit");
    const end = core.rm.leaderLog("t", 0).logEndOffset;
    // The next coordinator (the old one stops without writing: a crash).
    const marked: TxnPartition[] = [];
    const next = runtimeOn(core, marked);
    expect(next.describe("fo").state?.state).toBe("PrepareCommit");
    await settle();
    expect(marked).toEqual([{ topic: "t", partition: 0 }]);
    expect(next.describe("fo").state?.state).toBe("CompleteCommit");
    expect(markersOf(core.rm, 0)).toEqual(["COMMIT@1", "COMMIT@1"]); // the second ends nothing
    const log = core.rm.leaderLog("t", 0);
    expect(log.logEndOffset).toBe(end + 1);
    expect(core.rm.lastStableOffset(log)).toBe(log.logEndOffset);
    // The producer goes on with the new coordinator.
    who = await oneTxn(core, next, "fo", who);
    expect(markersOf(core.rm, 0)).toEqual(["COMMIT@1", "COMMIT@1", "COMMIT@2"]);
    expect(core.rm.lastStableOffset(log)).toBe(log.logEndOffset);
    next.close();
    expect(lastWritten(core.rm, "fo")).toEqual(next.describe("fo").state);
  });

  it("an id's next request waits for the markers only: an end retried after them is answered from the completed state", async () => {
    const { core, runtime } = await setUp();
    const who = await runtime.initProducerId({ transactionalId: "re", transactionTimeoutMs: 60_000, producerId: -1, producerEpoch: -1 });
    const next = await oneTxn(core, runtime, "re", who);
    const before = runtime.stateAppends;
    // A retry of the same end (TV2: the old epoch) is "done", writing nothing.
    await expect(runtime.endTransaction({ transactionalId: "re", ...who, commit: true, bumpEpoch: true })).resolves.toEqual(next);
    expect(runtime.stateAppends).toBe(before);
    // The old epoch is fenced; the new one starts the next transaction.
    await expect(runtime.gate({ transactionalId: "re", ...who, topic: "t", partition: 0, mode: "add" })).rejects.toMatchObject({
      kind: { name: "PRODUCER_FENCED" },
    });
    await runtime.gate({ transactionalId: "re", ...next, topic: "t", partition: 0, mode: "add" });
    expect((lastWritten(core.rm, "re") as TxnStateRecord).state).toBe("Ongoing");
    runtime.close();
  });
});

describe("TxnRuntime: group commit", () => {
  it("requests of one turn on a shard share one append, each handler seeing the records of the ones before", async () => {
    const { core, runtime } = await setUp();
    const [a, b] = twoIdsOnOneShard();
    const wa = await runtime.initProducerId({ transactionalId: a, transactionTimeoutMs: 60_000, producerId: -1, producerEpoch: -1 });
    const wb = await runtime.initProducerId({ transactionalId: b, transactionTimeoutMs: 60_000, producerId: -1, producerEpoch: -1 });
    const before = runtime.stateAppends;
    // Both ids start a transaction at once; a joins two partitions at once (the second gate sees the first's record).
    await Promise.all([
      runtime.gate({ transactionalId: a, ...wa, topic: "t", partition: 0, mode: "add" }),
      runtime.gate({ transactionalId: b, ...wb, topic: "t", partition: 1, mode: "add" }),
      runtime.gate({ transactionalId: a, ...wa, topic: "t", partition: 1, mode: "add" }),
      runtime.gate({ transactionalId: a, ...wa, topic: "t", partition: 0, mode: "add" }),
    ]);
    expect(runtime.stateAppends - before).toBe(1);
    const last = stateBatches(core.rm, txnPartitionFor(a)).at(-1)!;
    expect(last.map((r) => r.transactionalId)).toEqual([a, b, a]);
    expect((runtime.describe(a).state as TxnStateRecord).partitions).toEqual([
      { topic: "t", partition: 0 },
      { topic: "t", partition: 1 },
    ]);
    // A replay of the log agrees.
    const replayed = runtimeOn(core);
    expect(replayed.describe(a).state).toEqual(runtime.describe(a).state);
    expect(replayed.describe(b).state).toEqual(runtime.describe(b).state);
    // A handler that fails answers its own request only.
    const results = await Promise.allSettled([
      runtime.gate({ transactionalId: a, ...wa, producerEpoch: wa.producerEpoch + 5, topic: "t", partition: 0, mode: "add" }),
      runtime.endTransaction({ transactionalId: b, ...wb, commit: true, bumpEpoch: true }),
    ]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "fulfilled"]);
    expect((results[0] as PromiseRejectedResult).reason).toMatchObject({ kind: { name: "INVALID_PRODUCER_EPOCH" } });
    runtime.close();
  });

  it("a failed append undoes the replays of its batch and refuses every request from the first that wrote on; nothing stays changed", async () => {
    const { core, runtime } = await setUp();
    const [a, b] = twoIdsOnOneShard();
    const wa = await runtime.initProducerId({ transactionalId: a, transactionTimeoutMs: 60_000, producerId: -1, producerEpoch: -1 });
    const wb = await runtime.initProducerId({ transactionalId: b, transactionTimeoutMs: 60_000, producerId: -1, producerEpoch: -1 });
    await runtime.gate({ transactionalId: b, ...wb, topic: "t", partition: 1, mode: "add" });
    const stateA = runtime.describe(a).state;
    const stateB = runtime.describe(b).state;
    const log = core.rm.leaderLog(TXN_TOPIC, txnPartitionFor(a));
    const logEnd = log.logEndOffset;
    const answers = Promise.allSettled([
      // writes nothing (b's partition is in its transaction) and runs before any write: answered
      runtime.gate({ transactionalId: b, ...wb, topic: "t", partition: 1, mode: "add" }),
      runtime.gate({ transactionalId: a, ...wa, topic: "t", partition: 0, mode: "add" }),
      // writes nothing, but only because of the record before it: refused with the append
      runtime.gate({ transactionalId: a, ...wa, topic: "t", partition: 0, mode: "add" }),
    ]);
    core.rm.close(); // the append of this turn fails (SHUTTING_DOWN)
    const results = await answers;
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "rejected"]);
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ kind: { name: "SHUTTING_DOWN" } });
    expect(runtime.describe(a).state).toEqual(stateA);
    expect(runtime.describe(b).state).toEqual(stateB);
    expect(log.logEndOffset).toBe(logEnd);
  });
});

describe("TxnRuntime: answers wait for the id's records to be replicated", () => {
  it("a gate that writes nothing (the partition already joined) answers only once the record that added it is on the in-sync replicas", async () => {
    const core = openCore();
    cores.push(core);
    await core.brokers([2], 7);
    await core.topic(
      TXN_TOPIC,
      Array.from({ length: TXN_PARTITIONS }, () => ({ leader: HERE, followers: [2] })),
      TXN_TOPIC_CONFIGS,
    );
    await core.topic("t", [HERE]);
    const runtime = runtimeOn(core);
    const id = "repl";
    const p = txnPartitionFor(id);
    // Broker 2 fetches what the shard holds: the high watermark moves past it.
    const follow = () =>
      core.rm.fetchForFollower(2, {
        topic: TXN_TOPIC,
        partition: p,
        fetchOffset: core.rm.leaderLog(TXN_TOPIC, p).logEndOffset,
        lastFetchedEpoch: 0,
        currentLeaderEpoch: 0,
        maxBytes: 1 << 20,
        brokerEpoch: 7,
      });
    const settled = <T>(x: Promise<T>) => {
      const s = { done: false };
      void x.then(
        () => (s.done = true),
        () => (s.done = true),
      );
      return s;
    };
    const init = runtime.initProducerId({ transactionalId: id, transactionTimeoutMs: 60_000, producerId: -1, producerEpoch: -1 });
    const initDone = settled(init);
    for (let i = 0; i < 20 && !initDone.done; i++) {
      await settle();
      follow();
      await settle();
    }
    const who = await init;
    const first = runtime.gate({ transactionalId: id, ...who, topic: "t", partition: 0, mode: "add" });
    await settle();
    const second = runtime.gate({ transactionalId: id, ...who, topic: "t", partition: 0, mode: "add" });
    const [a, b] = [settled(first), settled(second)];
    await settle();
    expect([a.done, b.done]).toEqual([false, false]);
    follow();
    await settle();
    expect([a.done, b.done]).toEqual([true, true]);
    await Promise.all([first, second]);
    // Replicated: the next such answer comes at once.
    const third = settled(runtime.gate({ transactionalId: id, ...who, topic: "t", partition: 0, mode: "add" }));
    await settle();
    expect(third.done).toBe(true);
    runtime.close();
  });
});

describe("txnMarkerRouter", () => {
  it("sends the markers asked for in one turn to each other leader in one WriteTxnMarkers request; local ones are written here", async () => {
    const here = openCore();
    const there = openCore();
    cores.push(here, there);
    await here.topic("t", [2, 2, HERE, 2]); // partitions 0, 1, 3 are led by broker 2
    await there.topic("t", [HERE, HERE, 3, HERE]); // broker 2's own view: it leads them
    const calls: number[][] = [];
    const remote: TxnMarkerWriter = {
      writeMarkers: async (node, markers) => {
        expect(node).toBe(2);
        calls.push(markers.map((m) => m.partition));
        return Promise.all(
          markers.map((m) =>
            localMarker(there.rm, null, m, m.marker).then(
              () => null,
              (e: unknown) => e as RillError,
            ),
          ),
        );
      },
    };
    const route = txnMarkerRouter(here.rm, HERE, remote, null);
    const pid = (await here.rm.initProducerId({ transactionalId: "", producerEpoch: 0 })).producerId;
    const marker: TxnMarkerSpec = { producerId: pid, producerEpoch: 0, commit: true, coordinatorEpoch: 0 };
    await Promise.all([0, 1, 2, 3].map((partition) => route({ topic: "t", partition }, marker)));
    expect(calls).toEqual([[0, 1, 3]]);
    expect(there.rm.leaderLog("t", 0).logEndOffset).toBe(1);
    expect(there.rm.leaderLog("t", 3).logEndOffset).toBe(1);
    expect(here.rm.leaderLog("t", 2).logEndOffset).toBe(1);
    // A partition that does not exist fails its own call only.
    const results = await Promise.allSettled([route({ topic: "t", partition: 0 }, marker), route({ topic: "t", partition: 9 }, marker)]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected"]);
    expect(calls).toEqual([[0, 1, 3], [0]]);
  });
});

describe("ReplicaManager.replicated", () => {
  it("resolves at once, arming no timer, for an offset below the high watermark with enough in-sync replicas; else waits", async () => {
    const core = openCore();
    cores.push(core);
    await core.topic("t", [HERE, { leader: HERE, followers: [2] }]);
    let armed = 0;
    const setTimeout = core.timers.setTimeout.bind(core.timers);
    core.timers.setTimeout = (fn, ms) => {
      armed++;
      return setTimeout(fn, ms);
    };
    const one = core.rm.append("t", 0, encodeBatch([{ value: "a" }], { nowMs: TS }), "all");
    await core.rm.replicated("t", 0, one.lastOffset, 30_000);
    expect(armed).toBe(0);
    // A follower has not fetched it yet: the wait is timed.
    const two = core.rm.append("t", 1, encodeBatch([{ value: "b" }], { nowMs: TS }), "all");
    let done = false;
    const waiting = core.rm.replicated("t", 1, two.lastOffset, 30_000).then(
      () => (done = true),
      (e: unknown) => e,
    );
    await settle();
    expect(done).toBe(false);
    expect(armed).toBe(1);
    core.timers.advance(30_000);
    expect(await waiting).toMatchObject({ kind: { name: "REQUEST_TIMED_OUT" } });
  });
});

describe("txnPartitionFor", () => {
  it("is murmur2(id) % 50 (Kafka's rule), the same when answered from its cache, past the cache's bound too", () => {
    const direct = (id: string) => toPositive(murmur2(Buffer.from(id, "utf8"))) % TXN_PARTITIONS;
    const ids = Array.from({ length: 12_000 }, (_, i) => `id-${i}-é`);
    for (const id of ids) expect(txnPartitionFor(id)).toBe(direct(id));
    for (const id of ids) expect(txnPartitionFor(id)).toBe(direct(id));
  });
});
