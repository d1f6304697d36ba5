/**
 * READ_COMMITTED end to end over gRPC: a broker in this process, transactions written in its
 * partition the way the transaction coordinator writes them (transactional batches appended
 * with `ProduceChecks.transactional`, markers by `ReplicaManager.writeTxnMarker`), read by the
 * SDK's Consumer (BATCHES: the SDK drops aborted batches from `aborted_transactions`) and
 * GroupConsumer (the Consume stream, RECORDS: the broker drops them), at both isolation levels.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Broker } from "../../src/broker/broker.ts";
import { Admin } from "../../src/client/admin.ts";
import { Consumer, type ConsumerRecord } from "../../src/client/consumer.ts";
import { GroupConsumer } from "../../src/client/group-consumer.ts";
import { Producer } from "../../src/client/producer.ts";
import { type ProduceChecks, encodeBatch } from "../../src/protocol/record-batch.ts";
import type { ReplicaManager } from "../../src/replication/replica-manager.ts";
import { initProducerId } from "../../src/service/producer-id.ts";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";

const TXN: ProduceChecks = { validation: "full", decompressedBytesMax: 1 << 20, transactional: true };
const TOPIC = "txn-read";

let dir: string;
let broker: Broker;
let rm: ReplicaManager;
let admin: Admin;
let producer: Producer;
let pid: number;
let epoch: number;
let seq = 0;

async function until(pred: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

function txn(values: string[]): void {
  const b = encodeBatch(
    values.map((v) => ({ key: "k", value: v })),
    { producerId: pid, producerEpoch: epoch, baseSequence: seq, isTransactional: true, nowMs: Date.now() },
  );
  seq += values.length;
  rm.append(TOPIC, 0, b, "all", TXN);
}

const end = (commit: boolean): Promise<void> =>
  rm.writeTxnMarker(TOPIC, 0, { producerId: pid, producerEpoch: epoch, commit, coordinatorEpoch: 0 });

/** Reads from `iter` in the background into `got`. */
function drain(iter: AsyncIterable<ConsumerRecord>): string[] {
  const got: string[] = [];
  void (async () => {
    for await (const r of iter) got.push(r.value!.toString());
  })().catch(() => {});
  return got;
}

beforeAll(async () => {
  dir = tmpDir("rill-txn-read-");
  broker = await Broker.start({ dataDir: dir, listen: "127.0.0.1:0" });
  // The coordinator's side of the broker (txcoord builds the real one): its replica manager.
  rm = (broker as unknown as { parts: { data: { rm: ReplicaManager } } }).parts.data.rm;
  admin = new Admin({ bootstrap: broker.address });
  await admin.createTopics([{ name: TOPIC, partitions: 1 }]);
  await until(() => {
    try {
      rm.leaderLog(TOPIC, 0);
      return true;
    } catch {
      return false;
    }
  });
  const id = await initProducerId(rm, { transactionalId: "", producerId: undefined, producerEpoch: 0 });
  pid = id.producerId;
  epoch = id.producerEpoch;
  producer = new Producer({ bootstrap: broker.address, lingerMs: 0 });
  // p0 | x1 x2 (aborted) | p1 | c1 (committed) | o1 (open) | p2
  await producer.send({ topic: TOPIC, partition: 0, value: "p0" });
  txn(["x1", "x2"]);
  await end(false);
  await producer.send({ topic: TOPIC, partition: 0, value: "p1" });
  txn(["c1"]);
  await end(true);
  txn(["o1"]);
  await producer.send({ topic: TOPIC, partition: 0, value: "p2" });
}, 30_000);

afterAll(async () => {
  await producer?.close();
  await admin?.close();
  await broker?.close();
  rmTmp(dir);
});

describe("READ_COMMITTED through the SDK", () => {
  it("Consumer: read_committed skips the aborted records and stops at the open transaction until it commits; read_uncommitted sees all", async () => {
    const committed = new Consumer({ bootstrap: broker.address, isolation: "read_committed", maxWaitMs: 50 });
    const uncommitted = new Consumer({ bootstrap: broker.address, maxWaitMs: 50 });
    const group = new GroupConsumer({
      bootstrap: broker.address,
      groupId: "txn-read",
      autoOffsetReset: "earliest",
      isolation: "read_committed",
    });
    try {
      committed.assign([{ topic: TOPIC, partition: 0, offset: "earliest" }]);
      uncommitted.assign([{ topic: TOPIC, partition: 0, offset: "earliest" }]);
      group.subscribe([TOPIC]);
      const rc = drain(committed);
      const ru = drain(uncommitted);
      const rg = drain(group);
      await until(() => ru.length === 7 && rc.length === 3 && rg.length === 3);
      expect(ru).toEqual(["p0", "x1", "x2", "p1", "c1", "o1", "p2"]);
      expect(rc).toEqual(["p0", "p1", "c1"]);
      expect(rg).toEqual(["p0", "p1", "c1"]);
      // nothing past the last stable offset while the transaction is open
      await new Promise((r) => setTimeout(r, 300));
      expect(rc).toEqual(["p0", "p1", "c1"]);
      expect(rg).toEqual(["p0", "p1", "c1"]);
      await end(true);
      await until(() => rc.length === 5 && rg.length === 5);
      expect(rc).toEqual(["p0", "p1", "c1", "o1", "p2"]);
      expect(rg).toEqual(["p0", "p1", "c1", "o1", "p2"]);
      expect(ru).toHaveLength(7); // markers are never records
    } finally {
      await Promise.allSettled([committed.close(), uncommitted.close(), group.close()]);
    }
  }, 30_000);
});

describe("a partition that ends with a transaction marker", () => {
  it("GroupConsumer: the position reaches the end offset once the transaction's records are read (rill consume --group -e ends)", async () => {
    const topic = "txn-ends-with-marker";
    await admin.createTopics([{ name: topic, partitions: 1 }]);
    const tp = new Producer({ bootstrap: broker.address, lingerMs: 0, transactionalId: "ends-with-marker" });
    await tp.transaction(async (tx) => {
      await tx.send({ topic, partition: 0, value: "a" });
      await tx.send({ topic, partition: 0, value: "b" });
    });
    await tp.close();
    // Offsets 0 and 1 hold the records, 2 the commit marker: the end offset is 3.
    await until(() => rm.leaderLog(topic, 0).logEndOffset === 3);
    const gc = new GroupConsumer({
      bootstrap: broker.address,
      groupId: "ends-with-marker",
      autoOffsetReset: "earliest",
      isolation: "read_committed",
    });
    gc.subscribe([topic]);
    const it = gc[Symbol.asyncIterator]();
    const got: string[] = [];
    for (let i = 0; i < 2; i++) got.push((await it.next()).value!.value!.toString());
    // Asking for the next record, as `rill consume -e` does, finishes the message (and waits for more).
    const pending = it.next();
    expect(got).toEqual(["a", "b"]);
    // Before the fix the position stayed at 2 (the last record + 1), below the end offset 3.
    await until(() => gc.position({ topic, partition: 0 }) === 3, 5_000).catch(() => undefined);
    expect(gc.position({ topic, partition: 0 })).toBe(3);
    await gc.close();
    await pending;
  }, 30_000);
});
