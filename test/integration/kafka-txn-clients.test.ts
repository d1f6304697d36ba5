/**
 * Transactions over the Kafka listener (TV1 with KIP-890 part 1), driven by real clients, each its
 * own process — confluent-kafka-python (librdkafka 2.0.2, Debian's /usr/bin/python3), kafkajs and
 * @platformatic/kafka —
 * and by golden requests (RawKafka) for what a client will not send on purpose:
 * - a committed and an aborted transaction: READ_COMMITTED reads only the committed records,
 *   READ_UNCOMMITTED both (the markers are never records);
 * - consume–process–produce: a group consumer reading READ_COMMITTED (an input topic holding an
 *   aborted transaction too), each batch written to an output topic in one transaction with the
 *   consumer's offsets; the first transaction is aborted and its input processed again: every
 *   committed input record appears exactly once in the output and the group's offsets are the
 *   input's end;
 * - a client killed (SIGKILL) in the middle of a transaction, then a new instance with the same
 *   transactional id: the old transaction is aborted (its records invisible to READ_COMMITTED,
 *   readable uncommitted), the new one commits;
 * - a zombie (librdkafka): a second live instance with the same id fences the first, whose
 *   commit then fails with librdkafka's fatal _FENCED and whose records are never committed;
 * - @platformatic/kafka under Bun (AddPartitionsToTxn v5, the flexible EndTxn v4) commits and aborts;
 * - bad input on the TV1 path: a transactional batch for a partition not added to the transaction
 *   is INVALID_TXN_STATE with nothing stored; a control batch from a client is refused; a
 *   transaction open past its timeout is aborted by the coordinator and the late producer's
 *   produce and commit refused; an EndTxn from a fenced epoch or for an unknown id refused; and
 *   FindCoordinator key type 1, DescribeTransactions and ListTransactions on an open transaction.
 * One broker for the file.
 */
import { type ChildProcess, spawn } from "node:child_process";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Broker } from "../../src/broker/broker.ts";
import { AddPartitionsToTxnRequest, AddPartitionsToTxnResponse } from "../../src/kafka/apis/add-partitions-to-txn.ts";
import { CreateTopicsRequest, CreateTopicsResponse } from "../../src/kafka/apis/create-topics.ts";
import { DescribeTransactionsRequest, DescribeTransactionsResponse } from "../../src/kafka/apis/describe-transactions.ts";
import { EndTxnRequest, EndTxnResponse } from "../../src/kafka/apis/end-txn.ts";
import { FetchRequest, FetchResponse } from "../../src/kafka/apis/fetch.ts";
import { FindCoordinatorRequest, FindCoordinatorResponse } from "../../src/kafka/apis/find-coordinator.ts";
import { InitProducerIdRequest, InitProducerIdResponse } from "../../src/kafka/apis/init-producer-id.ts";
import { ListOffsetsRequest, ListOffsetsResponse } from "../../src/kafka/apis/list-offsets.ts";
import { ListTransactionsRequest, ListTransactionsResponse } from "../../src/kafka/apis/list-transactions.ts";
import { OffsetFetchRequest, OffsetFetchResponse } from "../../src/kafka/apis/offset-fetch.ts";
import { ProduceRequest, ProduceResponse } from "../../src/kafka/apis/produce.ts";
import { Compression, encodeBatch } from "../../src/protocol/record-batch.ts";
import { ROOT, run } from "./kafka-clients.ts";
import { RawKafka } from "./kafka-helpers.ts";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";

const PY = path.join(ROOT, "test/integration/kafka-clients/python-txn.py");
const KJS = path.join(ROOT, "test/integration/kafka-clients/kafkajs-txn.mjs");

let broker: Broker;
let dir: string;
let kafka: string;
let c: RawKafka;

const TOPICS = ["py-t", "py-in", "py-out", "py-crash", "kjs-t", "kjs-in", "kjs-out", "kjs-crash", "plat-t", "py-fence", "raw-t"];

beforeAll(async () => {
  dir = tmpDir("rill-kafka-txn-");
  broker = await Broker.start({
    dataDir: dir,
    listen: "127.0.0.1:0",
    // Timed-out transactions are looked for every 200 ms (Kafka's default: 10 s).
    config: { kafkaListen: "127.0.0.1:0", numPartitions: 2, transactionAbortTimedOutTransactionCleanupIntervalMs: 200 },
    shutdownGraceMs: 500,
  });
  kafka = broker.kafkaAddress as string;
  c = await RawKafka.connect(kafka);
  const r = await c.request(
    19,
    5,
    CreateTopicsRequest,
    { topics: TOPICS.map((name) => ({ name, numPartitions: 2, replicationFactor: 1 })), timeoutMs: 30_000 },
    CreateTopicsResponse,
  );
  expect(r.topics.map((t) => t.errorCode)).toEqual(TOPICS.map(() => 0));
}, 60_000);

afterAll(async () => {
  c?.close();
  await broker?.close();
  rmTmp(dir);
});

/** The last JSON line a client printed. */
function lastJson<T>(out: string): T {
  return JSON.parse(out.trim().split("\n").pop() ?? "null") as T;
}

async function py<T>(args: readonly string[], timeoutMs = 60_000): Promise<T> {
  const r = await run("/usr/bin/python3", [PY, kafka, ...args], { timeoutMs });
  if (r.code !== 0) throw new Error(`python-txn ${args[0]} failed (${r.code}): ${r.stdout} ${r.stderr}`);
  return lastJson<T>(r.stdout);
}

async function kjs<T>(command: string, arg: unknown, timeoutMs = 60_000): Promise<T> {
  const r = await run("node", [KJS, kafka, command, JSON.stringify(arg)], { timeoutMs });
  if (r.code !== 0) throw new Error(`kafkajs-txn ${command} failed (${r.code}): ${r.stdout} ${r.stderr}`);
  return lastJson<T>(r.stdout);
}

/** Every record of `topic` to its end (librdkafka, partition EOF), at `isolation`: the values, sorted. */
async function read(topic: string, isolation: "read_committed" | "read_uncommitted"): Promise<string[]> {
  const rows = await py<[number, number, string][]>(["read", topic, isolation]);
  return rows.map((r) => r[2]).sort();
}

/** Starts a client that leaves a transaction open and resolves once it says so; the caller kills it. */
function hanging(cmd: string, args: readonly string[]): Promise<ChildProcess> {
  const child = spawn(cmd, args as string[], { stdio: ["ignore", "pipe", "pipe"] });
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`no "ready" within 45 s: ${out} ${err}`));
    }, 45_000);
    child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes('"ready"')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`exited ${code} before "ready": ${out} ${err}`));
    });
  });
}

function kill(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.removeAllListeners("exit");
    child.once("exit", () => resolve());
    child.kill("SIGKILL");
  });
}

const values = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`).sort();

/** The group's committed offsets of `topic` (partitions 0 and 1), -1 where none. */
async function committed(group: string, topic: string): Promise<number[]> {
  const r = await c.request(
    9,
    5,
    OffsetFetchRequest,
    { groupId: group, topics: [{ name: topic, partitionIndexes: [0, 1] }] },
    OffsetFetchResponse,
  );
  const parts = r.topics[0]?.partitions ?? [];
  return [0, 1].map((p) => Number(parts.find((x) => x.partitionIndex === p)?.committedOffset ?? -1n));
}

/** The high watermark of each partition (0, 1) of `topic`. */
async function ends(topic: string): Promise<number[]> {
  const r = await c.request(
    2,
    5,
    ListOffsetsRequest,
    { replicaId: -1, isolationLevel: 0, topics: [{ name: topic, partitions: [0, 1].map((p) => ({ partitionIndex: p, timestamp: -1n })) }] },
    ListOffsetsResponse,
  );
  return [0, 1].map((p) => Number(r.topics[0]?.partitions.find((x) => x.partitionIndex === p)?.offset ?? -1n));
}

/**
 * The group's offsets, committed with the transactions, are past every committed input record of
 * each partition (none would be processed again) and at most its end (what follows a client's last
 * record — the markers, an aborted transaction — may or may not be counted, as clients differ).
 */
async function expectOffsetsPastInput(group: string, topic: string): Promise<void> {
  const rows = await py<[number, number, string][]>(["read", topic, "read_committed"]);
  const [got, end] = [await committed(group, topic), await ends(topic)];
  for (const p of [0, 1]) {
    const last = Math.max(-1, ...rows.filter((r) => r[0] === p).map((r) => r[1]));
    expect(got[p], `${group} ${topic}-${p}`).toBeGreaterThan(last);
    expect(got[p]).toBeLessThanOrEqual(end[p]!);
  }
}

describe("confluent-kafka-python (librdkafka 2.0.2)", () => {
  it("a committed and an aborted transaction: READ_COMMITTED reads the committed records only, READ_UNCOMMITTED both", async () => {
    expect(await py(["txn", "py-tx-1", "py-t", "6", "commit", "c"])).toEqual({ outcome: "commit", errors: [] });
    expect(await py(["txn", "py-tx-1", "py-t", "4", "abort", "a"])).toEqual({ outcome: "abort", errors: [] });
    expect(await read("py-t", "read_committed")).toEqual(values("c", 6));
    expect(await read("py-t", "read_uncommitted")).toEqual([...values("a", 4), ...values("c", 6)].sort());
  });

  it("consume-process-produce with offsets in the transaction; the first transaction aborted and redone: each input record once in the output", async () => {
    // Input: 20 committed records and an aborted transaction of 5 (never to be processed).
    await py(["txn", "py-in-w", "py-in", "20", "commit", "in"]);
    await py(["txn", "py-in-w", "py-in", "5", "abort", "junk"]);
    const r = await py<{ processed: number; committedTxns: number; abortedTxns: number }>([
      "cpp",
      "py-in",
      "py-out",
      "py-cpp",
      "py-cpp-tx",
      "20",
      "1",
    ]);
    expect(r.processed).toBe(20);
    expect(r.abortedTxns).toBe(1);
    expect(await read("py-out", "read_committed")).toEqual(
      values("in", 20)
        .map((v) => `${v}:done`)
        .sort(),
    );
    await expectOffsetsPastInput("py-cpp", "py-in");
  });

  it("killed in the middle of a transaction: a new instance with the same id aborts it and commits its own", async () => {
    const child = await hanging("/usr/bin/python3", [PY, kafka, "hang", "py-crash-tx", "py-crash", "5", "h"]);
    // The open transaction holds READ_COMMITTED readers below it.
    expect(await read("py-crash", "read_committed")).toEqual([]);
    await kill(child);
    expect(await py(["txn", "py-crash-tx", "py-crash", "3", "commit", "n"])).toEqual({ outcome: "commit", errors: [] });
    expect(await read("py-crash", "read_committed")).toEqual(values("n", 3));
    expect(await read("py-crash", "read_uncommitted")).toEqual([...values("h", 5), ...values("n", 3)].sort());
  });
});

describe("confluent-kafka-python: a zombie", () => {
  it("a second instance with the same transactional id fences the first: the first's commit fails, its records are never committed", async () => {
    const r = await py<{ zombie: string | null; fatal?: boolean }>(["fence", "py-fence-tx", "py-fence"]);
    expect(r.zombie).toBe("_FENCED"); // librdkafka's fatal error for PRODUCER_FENCED / INVALID_PRODUCER_EPOCH
    expect(r.fatal).toBe(true);
    expect(await read("py-fence", "read_committed")).toEqual(values("w", 3));
  });
});

describe("kafkajs", () => {
  it("a committed and an aborted transaction: READ_COMMITTED reads the committed records only", async () => {
    expect(await kjs("txn", { txid: "kjs-tx-1", topic: "kjs-t", n: 5, outcome: "commit", prefix: "c" })).toEqual({ outcome: "commit" });
    expect(await kjs("txn", { txid: "kjs-tx-1", topic: "kjs-t", n: 3, outcome: "abort", prefix: "a" })).toEqual({ outcome: "abort" });
    expect(await read("kjs-t", "read_committed")).toEqual(values("c", 5));
    expect(await read("kjs-t", "read_uncommitted")).toEqual([...values("a", 3), ...values("c", 5)].sort());
  });

  it("consume-process-produce (kafkajs reads READ_COMMITTED) with sendOffsets; the first transaction aborted and redone", async () => {
    await kjs("txn", { txid: "kjs-in-w", topic: "kjs-in", n: 12, outcome: "commit", prefix: "in" });
    await kjs("txn", { txid: "kjs-in-w", topic: "kjs-in", n: 4, outcome: "abort", prefix: "junk" });
    const r = await kjs<{ processed: number; abortedTxns: number }>("cpp", {
      in: "kjs-in",
      out: "kjs-out",
      group: "kjs-cpp",
      txid: "kjs-cpp-tx",
      n: 12,
      abortFirst: true,
    });
    expect(r).toMatchObject({ processed: 12, abortedTxns: 1 });
    expect(await read("kjs-out", "read_committed")).toEqual(
      values("in", 12)
        .map((v) => `${v}:done`)
        .sort(),
    );
    await expectOffsetsPastInput("kjs-cpp", "kjs-in");
  });

  it("killed in the middle of a transaction: a new instance with the same id aborts it and commits its own", async () => {
    const child = await hanging("node", [
      KJS,
      kafka,
      "hang",
      JSON.stringify({ txid: "kjs-crash-tx", topic: "kjs-crash", n: 4, prefix: "h" }),
    ]);
    await kill(child);
    expect(await kjs("txn", { txid: "kjs-crash-tx", topic: "kjs-crash", n: 2, outcome: "commit", prefix: "n" })).toEqual({
      outcome: "commit",
    });
    expect(await read("kjs-crash", "read_committed")).toEqual(values("n", 2));
    expect(await read("kjs-crash", "read_uncommitted")).toEqual([...values("h", 4), ...values("n", 2)].sort());
  });
});

describe("@platformatic/kafka (under Bun: AddPartitionsToTxn v5, EndTxn v4)", () => {
  it("a committed and an aborted transaction: READ_COMMITTED reads the committed records only", async () => {
    const r = await run(
      path.join(ROOT, "node_modules/.bin/bun"),
      [path.join(ROOT, "test/integration/kafka-clients/platformatic-txn.ts"), kafka, "plat-t", "plat-tx"],
      {
        timeoutMs: 60_000,
      },
    );
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(await read("plat-t", "read_committed")).toEqual(values("pc", 3));
    expect(await read("plat-t", "read_uncommitted")).toEqual([...values("pa", 2), ...values("pc", 3)].sort());
  });
});

describe("golden requests: TV1 verification, markers, describe and list", () => {
  const txBatch = (pid: bigint, epoch: number, seq: number, v: string, control = false) =>
    encodeBatch([{ key: null, value: v }], {
      compression: Compression.NONE,
      nowMs: Date.now(),
      producerId: Number(pid),
      producerEpoch: epoch,
      baseSequence: seq,
      isTransactional: true,
      ...(control ? { isControl: true } : {}),
    });
  const produce = (txid: string | null, partition: number, records: Buffer) =>
    c
      .request(
        0,
        9,
        ProduceRequest,
        {
          transactionalId: txid,
          acks: -1,
          timeoutMs: 5000,
          topicData: [{ name: "raw-t", partitionData: [{ index: partition, records }] }],
        },
        ProduceResponse,
      )
      .then((r) => r.responses[0]!.partitionResponses[0]!);

  it("a transactional batch for a partition not added is INVALID_TXN_STATE, nothing stored; added, it is appended; a client's control batch is refused", async () => {
    // The first lookup may find __transaction_state not created yet (COORDINATOR_NOT_AVAILABLE, 15): a client asks again.
    const find = () => c.request(10, 4, FindCoordinatorRequest, { keyType: 1, coordinatorKeys: ["raw-tx"] }, FindCoordinatorResponse);
    let found = await find();
    for (let i = 0; i < 150 && found.coordinators[0]?.errorCode === 15; i++) {
      await new Promise((r) => setTimeout(r, 200));
      found = await find();
    }
    expect(found.coordinators[0]).toMatchObject({ key: "raw-tx", errorCode: 0, port: Number(kafka.split(":").pop()) });
    const init = await c.request(
      22,
      4,
      InitProducerIdRequest,
      { transactionalId: "raw-tx", transactionTimeoutMs: 60_000 },
      InitProducerIdResponse,
    );
    expect(init.errorCode).toBe(0);
    const { producerId: pid, producerEpoch: epoch } = init;
    const before = await ends("raw-t");

    const refused = await produce("raw-tx", 0, txBatch(pid, epoch, 0, "not added"));
    expect(refused.errorCode).toBe(48); // INVALID_TXN_STATE
    expect(await ends("raw-t")).toEqual(before);

    const added = await c.request(
      24,
      1,
      AddPartitionsToTxnRequest,
      {
        v3AndBelowTransactionalId: "raw-tx",
        v3AndBelowProducerId: pid,
        v3AndBelowProducerEpoch: epoch,
        v3AndBelowTopics: [{ name: "raw-t", partitions: [0] }],
      },
      AddPartitionsToTxnResponse,
    );
    expect(added.resultsByTopicV3AndBelow).toEqual([{ name: "raw-t", resultsByPartition: [{ partitionIndex: 0, partitionErrorCode: 0 }] }]);
    // v0-3: an unknown partition fails and the others are not attempted, as Kafka answers.
    const mixed = await c.request(
      24,
      3,
      AddPartitionsToTxnRequest,
      {
        v3AndBelowTransactionalId: "raw-tx",
        v3AndBelowProducerId: pid,
        v3AndBelowProducerEpoch: epoch,
        v3AndBelowTopics: [{ name: "raw-t", partitions: [1, 9] }],
      },
      AddPartitionsToTxnResponse,
    );
    expect(mixed.resultsByTopicV3AndBelow[0]?.resultsByPartition).toEqual([
      { partitionIndex: 1, partitionErrorCode: 55 }, // OPERATION_NOT_ATTEMPTED
      { partitionIndex: 9, partitionErrorCode: 3 }, // UNKNOWN_TOPIC_OR_PARTITION
    ]);
    // Partition 1 was not added: still refused there.
    expect((await produce("raw-tx", 1, txBatch(pid, epoch, 0, "p1"))).errorCode).toBe(48);

    const ok = await produce("raw-tx", 0, txBatch(pid, epoch, 0, "added"));
    expect(ok.errorCode).toBe(0);
    // A control batch (a forged marker) from a client: refused, nothing stored.
    const forged = await produce("raw-tx", 0, txBatch(pid, epoch, 1, "forged", true));
    expect(forged.errorCode).toBe(87); // INVALID_RECORD
    expect(await ends("raw-t")).toEqual([before[0]! + 1, before[1]!]);

    // Described and listed while open.
    const d = await c.request(
      65,
      0,
      DescribeTransactionsRequest,
      { transactionalIds: ["raw-tx", "no-such-tx"] },
      DescribeTransactionsResponse,
    );
    expect(d.transactionStates[0]).toMatchObject({
      errorCode: 0,
      transactionalId: "raw-tx",
      transactionState: "Ongoing",
      producerId: pid,
      producerEpoch: epoch,
      transactionTimeoutMs: 60_000,
      topics: [{ topic: "raw-t", partitions: [0] }],
    });
    expect(d.transactionStates[1]?.errorCode).toBe(105); // TRANSACTIONAL_ID_NOT_FOUND
    const l = await c.request(
      66,
      1,
      ListTransactionsRequest,
      { stateFilters: ["Ongoing", "Bogus"], producerIdFilters: [] },
      ListTransactionsResponse,
    );
    expect(l.unknownStateFilters).toEqual(["Bogus"]);
    expect(l.transactionStates).toContainEqual({ transactionalId: "raw-tx", producerId: pid, transactionState: "Ongoing" });

    const end = await c.request(
      26,
      1,
      EndTxnRequest,
      { transactionalId: "raw-tx", producerId: pid, producerEpoch: epoch, committed: false },
      EndTxnResponse,
    );
    expect(end.errorCode).toBe(0);
    // READ_COMMITTED Fetch once the abort marker is in: the aborted transaction listed (the
    // client drops its records), the last stable offset at the high watermark; READ_UNCOMMITTED: null.
    const fetchP0 = (isolationLevel: number) =>
      c
        .request(
          1,
          11,
          FetchRequest,
          {
            replicaId: -1,
            maxWaitMs: 0,
            minBytes: 0,
            maxBytes: 1 << 20,
            isolationLevel,
            sessionEpoch: -1,
            topics: [{ topic: "raw-t", partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20 }] }],
          },
          FetchResponse,
        )
        .then((r) => r.responses[0]!.partitions[0]!);
    let rc = await fetchP0(1);
    for (let i = 0; i < 100 && rc.lastStableOffset < rc.highWatermark; i++) {
      await new Promise((r) => setTimeout(r, 100));
      rc = await fetchP0(1);
    }
    expect(rc.errorCode).toBe(0);
    expect(rc.lastStableOffset).toBe(rc.highWatermark);
    expect(rc.highWatermark).toBe(BigInt(before[0]! + 2)); // the record and the ABORT marker
    expect(rc.abortedTransactions).toEqual([{ producerId: pid, firstOffset: BigInt(before[0]!) }]);
    expect((await fetchP0(0)).abortedTransactions).toBeNull();

    // A new instance (InitProducerId again) fences the old epoch: its EndTxn is refused.
    const again = await c.request(
      22,
      4,
      InitProducerIdRequest,
      { transactionalId: "raw-tx", transactionTimeoutMs: 60_000 },
      InitProducerIdResponse,
    );
    expect(again).toMatchObject({ errorCode: 0, producerId: pid, producerEpoch: epoch + 1 });
    const stale = await c.request(
      26,
      3,
      EndTxnRequest,
      { transactionalId: "raw-tx", producerId: pid, producerEpoch: epoch, committed: true },
      EndTxnResponse,
    );
    expect([47, 90]).toContain(stale.errorCode); // INVALID_PRODUCER_EPOCH / PRODUCER_FENCED
    const unknown = await c.request(
      26,
      3,
      EndTxnRequest,
      { transactionalId: "never-seen", producerId: 1n, producerEpoch: 0, committed: true },
      EndTxnResponse,
    );
    expect([49, 105]).toContain(unknown.errorCode); // INVALID_PRODUCER_ID_MAPPING / TRANSACTIONAL_ID_NOT_FOUND
  });

  it("a transaction open past its timeout is aborted by the coordinator: the late producer's writes and commit are refused, nothing of it committed", async () => {
    const init = await c.request(
      22,
      4,
      InitProducerIdRequest,
      { transactionalId: "raw-late", transactionTimeoutMs: 300 },
      InitProducerIdResponse,
    );
    expect(init.errorCode).toBe(0);
    const { producerId: pid, producerEpoch: epoch } = init;
    const added = await c.request(
      24,
      1,
      AddPartitionsToTxnRequest,
      {
        v3AndBelowTransactionalId: "raw-late",
        v3AndBelowProducerId: pid,
        v3AndBelowProducerEpoch: epoch,
        v3AndBelowTopics: [{ name: "raw-t", partitions: [1] }],
      },
      AddPartitionsToTxnResponse,
    );
    expect(added.resultsByTopicV3AndBelow[0]?.resultsByPartition[0]?.partitionErrorCode).toBe(0);
    expect((await produce("raw-late", 1, txBatch(pid, epoch, 0, "late-0"))).errorCode).toBe(0);
    // The coordinator aborts it once the timeout has passed (checked every 200 ms here).
    const state = async () =>
      (await c.request(65, 0, DescribeTransactionsRequest, { transactionalIds: ["raw-late"] }, DescribeTransactionsResponse))
        .transactionStates[0];
    let st = await state();
    for (let i = 0; i < 100 && st?.transactionState !== "CompleteAbort"; i++) {
      await new Promise((r) => setTimeout(r, 100));
      st = await state();
    }
    expect(st?.transactionState).toBe("CompleteAbort");
    const before = await ends("raw-t");
    const late = await produce("raw-late", 1, txBatch(pid, epoch, 1, "late-1"));
    expect([47, 90]).toContain(late.errorCode); // INVALID_PRODUCER_EPOCH / PRODUCER_FENCED
    expect(await ends("raw-t")).toEqual(before);
    const commit = await c.request(
      26,
      3,
      EndTxnRequest,
      { transactionalId: "raw-late", producerId: pid, producerEpoch: epoch, committed: true },
      EndTxnResponse,
    );
    expect([47, 90]).toContain(commit.errorCode);
    expect(await read("raw-t", "read_committed")).not.toContain("late-0");
  });
});
