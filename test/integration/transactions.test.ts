/**
 * Transactions over gRPC on one broker (issue 17), end to end through the transaction
 * coordinator: InitProducerId with a transactional id, transactional Produce (partitions join on
 * their first produce, TV2), CommitOffsets inside the transaction, EndTransaction (markers in
 * every partition, the epoch bumped), READ_COMMITTED vs READ_UNCOMMITTED reads; fencing by a new
 * InitProducerId, the timeout abort, the epoch overflow (a new producer id), and bad input.
 */
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Broker } from "../../src/broker/broker.ts";
import { AdminService } from "../../src/gen/rill/v1/admin_service_pb.ts";
import { IsolationLevel, RecordFormat } from "../../src/gen/rill/v1/common_pb.ts";
import type { FetchResponse } from "../../src/gen/rill/v1/fetch_service_pb.ts";
import {
  AutoOffsetReset,
  type CommitOffsetsResponse,
  ConsumeRequestSchema,
  type ConsumeResponse,
  type FetchOffsetsResponse,
  GroupService,
} from "../../src/gen/rill/v1/group_service_pb.ts";
import {
  Acks,
  type EndTransactionResponse,
  type InitProducerIdResponse,
  type ProduceResponse,
  type ProduceStreamResponse,
} from "../../src/gen/rill/v1/produce_service_pb.ts";
import { clientChannelOptions } from "../../src/protocol/channel-options.ts";
import { clientConstructor } from "../../src/protocol/grpc-service.ts";
import { encodeBatch } from "../../src/protocol/record-batch.ts";
import { encodeControlBatch } from "../../src/protocol/control-record.ts";
import { create } from "@bufbuild/protobuf";
import { ProduceService } from "../../src/gen/rill/v1/produce_service_pb.ts";
import { FetchService, SubscribeRequestSchema, type SubscribeResponse } from "../../src/gen/rill/v1/fetch_service_pb.ts";
import type { Transactions } from "../../src/broker/transactions.ts";
import { TXN_TOPIC, txnPartitionFor } from "../../src/coordinator/transactions/txn-runtime.ts";
import { type TxnStateRecord, txnToKeyValue } from "../../src/coordinator/transactions/txn-records.ts";
import type { ReplicaManager } from "../../src/replication/replica-manager.ts";
import { Producer, type RecordMetadata } from "../../src/client/producer.ts";
import { ConnectionError } from "../../src/client/errors.ts";
import type { ProduceStreamListener, Transport } from "../../src/client/transport.ts";
import type { ProduceChannel } from "../../src/client/produce-channel.ts";
import { Readable, Writable } from "node:stream";
import { run as runCli } from "../../src/cli/program.ts";
import { GroupAdmin } from "../../src/client/group-admin.ts";
import { call, clients, errorName, rmTmp, tmpDir } from "./rpc-helpers.ts";

// biome-ignore lint/suspicious/noExplicitAny: a test helper over every unary method of the services
type AnyService = { method: Record<string, { input: any }> };
/** A unary call with its request built by `create` from the method's input schema. */
function rpc<R>(client: grpc.Client, svc: AnyService, method: string, init: object): Promise<R> {
  return call<unknown, R>(client, method, create(svc.method[method]!.input, init));
}

let dir: string;
let broker: Broker;
let c: ReturnType<typeof clients>;
let groups: grpc.Client;

const enc = (s: string): Buffer => Buffer.from(s);

function init(transactionalId: string, transactionTimeoutMs = 60_000): Promise<InitProducerIdResponse> {
  return rpc(c.produce, ProduceService, "initProducerId", { transactionalId, transactionTimeoutMs, producerEpoch: 0 });
}

interface Txp {
  readonly id: string;
  producerId: bigint;
  producerEpoch: number;
  /** Next sequence per topic-partition, reset at every new epoch. */
  seq: Map<string, number>;
}

/**
 * A raw ProduceStream for transaction `p`: the answers as they come, `got(n)` waiting for n of
 * them, `request` building a transactional batch (base sequence 0 unless given) and `endOf` its commit.
 */
function txnStream(p: Txp) {
  const stream = (c.produce as unknown as { produceStream(): grpc.ClientDuplexStream<unknown, ProduceStreamResponse> }).produceStream();
  const answers: ProduceStreamResponse[] = [];
  const got = (n: number) => until(() => answers.length >= n, 10_000);
  stream.on("data", (m: ProduceStreamResponse) => answers.push(m));
  stream.on("error", () => undefined);
  const request = (topic: string, partition: number, values: string[], baseSequence = 0) => ({
    topic,
    partition,
    acks: Acks.ALL,
    transactionalId: p.id,
    recordBatch: encodeBatch(
      values.map((value) => ({ value })),
      { nowMs: Date.now(), producerId: Number(p.producerId), producerEpoch: p.producerEpoch, baseSequence, isTransactional: true },
    ),
  });
  const endOf = () => ({ transactionalId: p.id, producerId: p.producerId, producerEpoch: p.producerEpoch, commit: true });
  return { stream, answers, got, request, endOf };
}

async function open(id: string, timeoutMs?: number): Promise<Txp> {
  const r = await init(id, timeoutMs);
  return { id, producerId: r.producerId, producerEpoch: r.producerEpoch, seq: new Map() };
}

function produce(p: Txp, topic: string, partition: number, values: string[]): Promise<ProduceResponse> {
  const k = `${topic}-${partition}`;
  const seq = p.seq.get(k) ?? 0;
  p.seq.set(k, seq + values.length);
  return rpc(c.produce, ProduceService, "produce", {
    topic,
    partition,
    acks: Acks.ALL,
    producerId: p.producerId,
    producerEpoch: p.producerEpoch,
    baseSequence: seq,
    transactionalId: p.id,
    records: values.map((v) => ({ value: enc(v) })),
  });
}

/**
 * EndTransaction. It answers once the outcome is durable; the markers follow (a READ_COMMITTED
 * reader waits for them), so this waits until the coordinator describes the id as completed.
 */
async function end(p: Txp, commit: boolean): Promise<EndTransactionResponse> {
  const r = await rpc<EndTransactionResponse>(c.produce, ProduceService, "endTransaction", {
    transactionalId: p.id,
    producerId: p.producerId,
    producerEpoch: p.producerEpoch,
    commit,
  });
  p.producerId = r.producerId;
  p.producerEpoch = r.producerEpoch;
  p.seq = new Map();
  await completed(p.id);
  return r;
}

/** The state of `id` as AdminService.DescribeTransactions reports it. */
async function stateOf(id: string): Promise<string> {
  const d = await rpc<{ transactions: { state: string }[] }>(c.admin, AdminService, "describeTransactions", { transactionalIds: [id] });
  return d.transactions[0]!.state;
}

/** Waits until `id`'s last end has written its markers (no longer PrepareCommit/PrepareAbort). */
function completed(id: string): Promise<void> {
  return until(async () => !(await stateOf(id)).startsWith("Prepare"));
}

async function read(topic: string, partition: number, isolationLevel: IsolationLevel): Promise<string[]> {
  const r = await rpc<FetchResponse>(c.fetch, FetchService, "fetch", {
    partitions: [{ topic, partition, offset: 0n }],
    maxWaitMs: 0,
    format: RecordFormat.RECORDS,
    isolationLevel,
  });
  const p = r.partitions[0]!;
  if (p.error) throw new Error(`${p.error.name}: ${p.error.message}`);
  return p.records.map((x) => Buffer.from(x.value!).toString());
}

const committed = (t: string, p: number) => read(t, p, IsolationLevel.READ_COMMITTED);
const uncommitted = (t: string, p: number) => read(t, p, IsolationLevel.READ_UNCOMMITTED);

async function failure(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    return errorName(e) ?? (e as Error).message;
  }
  throw new Error("expected a failure");
}

/** The produce's partition error (or the whole call's). */
async function produceError(p: Promise<ProduceResponse>): Promise<string | undefined> {
  try {
    const r = await p;
    return r.partitions[0]?.error?.name;
  } catch (e) {
    return errorName(e);
  }
}

async function until(pred: () => Promise<boolean> | boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 25));
  }
}

beforeAll(async () => {
  dir = tmpDir("rill-txn-");
  broker = await Broker.start({
    dataDir: dir,
    listen: "127.0.0.1:0",
    config: { transactionAbortTimedOutTransactionCleanupIntervalMs: 100, transactionMaxTimeoutMs: 120_000 },
  });
  c = clients(broker.address);
  groups = new (clientConstructor(GroupService))(broker.address, grpc.credentials.createInsecure(), clientChannelOptions());
  await rpc(c.admin, AdminService, "createTopics", {
    topics: [
      { name: "ta", partitions: 2 },
      { name: "tb", partitions: 1 },
      { name: "in", partitions: 1 },
    ],
  });
}, 60_000);

afterAll(async () => {
  groups?.close();
  c?.close();
  await broker?.close();
  rmTmp(dir);
});

describe("transactions over gRPC, one broker", () => {
  it("commits across partitions and topics: invisible to READ_COMMITTED until EndTransaction, then all at once", async () => {
    const p = await open("commit-1");
    expect(p.producerEpoch).toBeGreaterThanOrEqual(0);
    await produce(p, "ta", 0, ["a0-1", "a0-2"]);
    await produce(p, "ta", 1, ["a1-1"]);
    await produce(p, "tb", 0, ["b0-1"]);
    expect(await committed("ta", 0)).toEqual([]);
    expect(await uncommitted("ta", 0)).toEqual(["a0-1", "a0-2"]);
    const before = p.producerEpoch;
    const r = await end(p, true);
    expect([r.producerId, r.producerEpoch]).toEqual([p.producerId, before + 1]); // TV2: bumped at every end
    expect(await committed("ta", 0)).toEqual(["a0-1", "a0-2"]);
    expect(await committed("ta", 1)).toEqual(["a1-1"]);
    expect(await committed("tb", 0)).toEqual(["b0-1"]);
    // the next transaction at the bumped epoch
    await produce(p, "ta", 0, ["a0-3"]);
    await end(p, true);
    expect(await committed("ta", 0)).toEqual(["a0-1", "a0-2", "a0-3"]);
  });

  it("EndTransaction answers once the decision is durable; the markers follow, and the next transaction's first produce waits for them", async () => {
    const parts = (broker as unknown as { parts: { transactions: Transactions } }).parts;
    const ports = (parts.transactions.runtime as unknown as { ports: { writeMarker: (tp: unknown, m: unknown) => Promise<void> } }).ports;
    const writeMarker = ports.writeMarker;
    let release = (): void => undefined;
    const held = new Promise<void>((r) => {
      release = r;
    });
    ports.writeMarker = async (tp, m) => {
      await held;
      return writeMarker(tp, m);
    };
    try {
      const p = await open("async-end-1");
      await produce(p, "ta", 0, ["ae-1"]);
      const before = p.producerEpoch;
      const r = await rpc<EndTransactionResponse>(c.produce, ProduceService, "endTransaction", {
        transactionalId: p.id,
        producerId: p.producerId,
        producerEpoch: p.producerEpoch,
        commit: true,
      });
      // Answered with the markers held back: decided (PrepareCommit), not yet visible.
      expect(r.producerEpoch).toBe(before + 1);
      expect(await stateOf(p.id)).toBe("PrepareCommit");
      expect(await committed("ta", 0)).not.toContain("ae-1");
      p.producerId = r.producerId;
      p.producerEpoch = r.producerEpoch;
      p.seq = new Map();
      // The next transaction's first produce (the same epoch as the held marker) waits for it.
      let produced = false;
      const next = produce(p, "ta", 0, ["ae-2"]).then((x) => {
        produced = true;
        return x;
      });
      await new Promise((res) => setTimeout(res, 100));
      expect(produced).toBe(false);
      release();
      expect((await next).partitions[0]?.error).toBeUndefined();
      expect(await stateOf(p.id)).toBe("Ongoing");
      const rc = await committed("ta", 0);
      expect(rc).toContain("ae-1");
      expect(rc).not.toContain("ae-2"); // after the commit marker: in the new, open transaction
      await end(p, false);
      expect(await committed("ta", 0)).not.toContain("ae-2");
      expect(await uncommitted("ta", 0)).toContain("ae-2");
    } finally {
      ports.writeMarker = writeMarker;
      release();
    }
  });

  it("Subscribe and Consume send a message for a read that holds only the transaction marker (next_offset moves past it)", async () => {
    const topic = "marker-only";
    await rpc(c.admin, AdminService, "createTopics", { topics: [{ name: topic, partitions: 1 }] });
    /** next_offset and record count of every message with data for `topic`-0. */
    type Seen = { nextOffset: bigint; records: number }[];
    const waitFor = (seen: Seen, pred: (s: Seen) => boolean) => until(() => pred(seen), 10_000);
    const subSeen: Seen = [];
    const sub = (c.fetch as unknown as { subscribe(r: unknown): grpc.ClientReadableStream<SubscribeResponse> }).subscribe(
      create(SubscribeRequestSchema, {
        partitions: [{ topic, partition: 0, offset: 0n }],
        format: RecordFormat.RECORDS,
        isolationLevel: IsolationLevel.READ_UNCOMMITTED,
      }),
    );
    sub.on("data", (m: SubscribeResponse) => {
      for (const q of m.partitions) subSeen.push({ nextOffset: q.nextOffset, records: q.records.length });
    });
    sub.on("error", () => undefined);
    const conSeen: Seen = [];
    const con = (groups as unknown as { consume(): grpc.ClientDuplexStream<unknown, ConsumeResponse> }).consume();
    con.on("data", (m: ConsumeResponse) => {
      if (m.kind.case === "records" && m.kind.value.topic === topic)
        conSeen.push({ nextOffset: m.kind.value.nextOffset, records: m.kind.value.records.length });
    });
    con.on("error", () => undefined);
    con.write(
      create(ConsumeRequestSchema, {
        kind: {
          case: "subscribe",
          value: {
            groupId: "marker-only-g",
            topics: [topic],
            autoOffsetReset: AutoOffsetReset.EARLIEST,
            isolationLevel: IsolationLevel.READ_UNCOMMITTED,
          },
        },
      }),
    );
    try {
      const p = await open("marker-only-1");
      await produce(p, topic, 0, ["m-1", "m-2"]);
      // READ_UNCOMMITTED readers get the open transaction's records (offsets 0 and 1)...
      const both = (s: Seen) => s.reduce((n, x) => n + x.records, 0) === 2;
      await waitFor(subSeen, both);
      await waitFor(conSeen, both);
      expect(subSeen.at(-1)!.nextOffset).toBe(2n);
      expect(conSeen.at(-1)!.nextOffset).toBe(2n);
      // ...then the commit marker alone at offset 2: a message with no record moves next_offset to 3.
      await end(p, true);
      const past = (s: Seen) => s.some((x) => x.nextOffset === 3n);
      await waitFor(subSeen, past);
      await waitFor(conSeen, past);
      expect(subSeen.at(-1)).toEqual({ nextOffset: 3n, records: 0 });
      expect(conSeen.at(-1)).toEqual({ nextOffset: 3n, records: 0 });
    } finally {
      sub.cancel();
      con.end();
    }
  });

  it("EndTransaction on a ProduceStream (end_transaction): answered in order, in band; an error answers that request only", async () => {
    const p = await open("stream-end-1");
    await produce(p, "tb", 0, ["se-1"]);
    const stream = (c.produce as unknown as { produceStream(): grpc.ClientDuplexStream<unknown, ProduceStreamResponse> }).produceStream();
    const answers: ProduceStreamResponse[] = [];
    const got = (n: number) => until(() => answers.length >= n, 10_000);
    stream.on("data", (m: ProduceStreamResponse) => answers.push(m));
    stream.on("error", () => undefined);
    try {
      const endOf = (producerEpoch: number, transactionalId = p.id) => ({
        transactionalId,
        producerId: p.producerId,
        producerEpoch,
        commit: true,
      });
      stream.write({ requestId: 1n, endTransaction: endOf(p.producerEpoch) });
      stream.write({ requestId: 2n, endTransaction: endOf(0, "never-initialized") });
      stream.write({
        requestId: 3n,
        request: { topic: "tb", partition: 0, recordBatch: encodeBatch([{ value: "plain" }], { nowMs: Date.now() }) },
      });
      await got(3);
      expect(answers.map((a) => [a.requestId, a.result.case])).toEqual([
        [1n, "endTransaction"],
        [2n, "error"],
        [3n, "response"],
      ]);
      const ended = answers[0]!.result.value as EndTransactionResponse;
      expect([ended.producerId, ended.producerEpoch]).toEqual([p.producerId, p.producerEpoch + 1]);
      expect((answers[1]!.result.value as { name: string }).name).toBe("TRANSACTIONAL_ID_NOT_FOUND");
      await completed(p.id);
      expect(await committed("tb", 0)).toContain("se-1");
    } finally {
      stream.end();
    }
  });

  it("end_transaction right behind its records on a ProduceStream: acts once they are written; after a failed one the commit is refused and the transaction stays open", async () => {
    const p = await open("stream-behind-1");
    const { stream, answers, got, request, endOf } = txnStream(p);
    try {
      // Two partitions' records and the commit, written at once: the commit covers both.
      stream.write({ requestId: 1n, request: request("ta", 0, ["sb-1", "sb-2"], 0) });
      stream.write({ requestId: 2n, request: request("ta", 1, ["sb-3"], 0) });
      stream.write({ requestId: 3n, endTransaction: endOf() });
      await got(3);
      expect(answers.map((a) => [a.requestId, a.result.case])).toEqual([
        [1n, "response"],
        [2n, "response"],
        [3n, "endTransaction"],
      ]);
      const ended = answers[2]!.result.value as EndTransactionResponse;
      expect(ended.producerEpoch).toBe(p.producerEpoch + 1);
      p.producerEpoch = ended.producerEpoch;
      await completed(p.id);
      expect(await committed("ta", 0)).toEqual(expect.arrayContaining(["sb-1", "sb-2"]));
      expect(await committed("ta", 1)).toContain("sb-3");
      // One request of the transaction fails (no partition 9): its commit is refused, nothing ends.
      stream.write({ requestId: 4n, request: request("tb", 0, ["sb-4"], 0) });
      stream.write({ requestId: 5n, request: request("ta", 9, ["sb-5"], 0) });
      stream.write({ requestId: 6n, endTransaction: endOf() });
      await got(6);
      expect(answers[3]!.result.case).toBe("response");
      const refused = answers[5]!;
      expect([refused.requestId, refused.result.case]).toEqual([6n, "error"]);
      const detail = refused.result.value as { name: string; message: string };
      expect(detail.name).toBe("INVALID_TXN_STATE");
      expect(detail.message).toMatch(/request 5 \(ta-9\).*failed.*stays open/);
      expect(await stateOf(p.id)).toBe("Ongoing");
      expect(await committed("tb", 0)).not.toContain("sb-4");
      // It is still open: a later end commits what was written.
      await end({ ...p, seq: new Map() }, true);
      expect(await committed("tb", 0)).toContain("sb-4");
    } finally {
      stream.end();
    }
  });

  it("a request and its end_transaction in one ProduceStreamRequest: one answer for both (end_transaction_outcome); after a failed request the commit is refused in that answer", async () => {
    const p = await open("stream-one-1");
    const { stream, answers, got, request, endOf } = txnStream(p);
    try {
      // One partition's records before, the other's with the commit: it covers both.
      stream.write({ requestId: 1n, request: request("ta", 0, ["so-1"]) });
      stream.write({ requestId: 2n, request: request("ta", 1, ["so-2", "so-3"]), endTransaction: endOf() });
      await got(2);
      expect(answers.map((a) => [a.requestId, a.result.case, a.endTransactionOutcome?.result.case])).toEqual([
        [1n, "response", undefined],
        [2n, "response", "response"],
      ]);
      const produced = answers[1]!.result.value as ProduceResponse;
      expect(produced.partitions[0]!.error).toBeUndefined();
      const ended = answers[1]!.endTransactionOutcome!.result.value as EndTransactionResponse;
      expect([ended.producerId, ended.producerEpoch]).toEqual([p.producerId, p.producerEpoch + 1]);
      p.producerEpoch = ended.producerEpoch;
      await completed(p.id);
      expect(await committed("ta", 0)).toContain("so-1");
      expect(await committed("ta", 1)).toEqual(expect.arrayContaining(["so-2", "so-3"]));
      // The request fails (no partition 9): the answer says so, and that the commit was refused; nothing ends.
      stream.write({ requestId: 3n, request: request("tb", 0, ["so-4"]) });
      stream.write({ requestId: 4n, request: request("ta", 9, ["so-5"]), endTransaction: endOf() });
      await got(4);
      const refused = answers[3]!;
      expect(refused.requestId).toBe(4n);
      expect(refused.endTransactionOutcome?.result.case).toBe("error");
      const detail = refused.endTransactionOutcome!.result.value as { name: string; message: string };
      expect(detail.name).toBe("INVALID_TXN_STATE");
      expect(detail.message).toMatch(/request 4 \(ta-9\).*failed.*stays open/);
      expect(await stateOf(p.id)).toBe("Ongoing");
      expect(await committed("tb", 0)).not.toContain("so-4");
      await end({ ...p, seq: new Map() }, true);
      expect(await committed("tb", 0)).toContain("so-4");
    } finally {
      stream.end();
    }
  });

  it("aborts: the records stay invisible to READ_COMMITTED and visible to READ_UNCOMMITTED", async () => {
    const p = await open("abort-1");
    await produce(p, "tb", 0, ["aborted-1", "aborted-2"]);
    await end(p, false);
    await produce(p, "tb", 0, ["kept"]);
    await end(p, true);
    const rc = await committed("tb", 0);
    expect(rc).not.toContain("aborted-1");
    expect(rc).toContain("kept");
    const ru = await uncommitted("tb", 0);
    expect(ru).toEqual(expect.arrayContaining(["aborted-1", "aborted-2", "kept"]));
  });

  it("commits offsets with the transaction (CommitOffsets with a transactional id), and drops them on abort", async () => {
    const fetchOffset = async (): Promise<bigint> => {
      const r = await rpc<FetchOffsetsResponse>(groups, GroupService, "fetchOffsets", {
        groupId: "g-txn",
        partitions: [{ topic: "in", partitions: [0] }],
      });
      return r.offsets[0]?.offset ?? -1n;
    };
    const commitIn = (p: Txp, offset: bigint) =>
      rpc<CommitOffsetsResponse>(groups, GroupService, "commitOffsets", {
        groupId: "g-txn",
        memberId: "",
        memberEpoch: -1,
        offsets: [{ topic: "in", partition: 0, offset, leaderEpoch: -1 }],
        transactionalId: p.id,
        producerId: p.producerId,
        producerEpoch: p.producerEpoch,
      });
    const p = await open("offsets-1");
    await produce(p, "ta", 1, ["out-1"]);
    const res = await commitIn(p, 7n);
    expect(res.offsets[0]?.error).toBeUndefined();
    expect(await fetchOffset()).toBe(-1n); // pending until the commit
    await end(p, true);
    expect(await fetchOffset()).toBe(7n);
    await commitIn(p, 9n);
    await end(p, false);
    expect(await fetchOffset()).toBe(7n); // the abort dropped 9
  });

  it("a new InitProducerId fences the old instance and aborts its open transaction", async () => {
    const a = await open("fence-1");
    await produce(a, "ta", 0, ["zombie-1"]);
    const b = await open("fence-1");
    expect(b.producerId).toBe(a.producerId);
    expect(b.producerEpoch).toBeGreaterThan(a.producerEpoch);
    expect(await produceError(produce(a, "ta", 0, ["zombie-2"]))).toMatch(/PRODUCER_FENCED|INVALID_PRODUCER_EPOCH/);
    expect(await failure(end(a, true))).toBe("PRODUCER_FENCED");
    await produce(b, "ta", 0, ["fresh-1"]);
    await end(b, true);
    const rc = await committed("ta", 0);
    expect(rc).toContain("fresh-1");
    expect(rc).not.toContain("zombie-1");
    expect(rc).not.toContain("zombie-2");
  });

  it("aborts a transaction open longer than its timeout; the late producer is fenced", async () => {
    const p = await open("timeout-1", 300);
    await produce(p, "tb", 0, ["late-1"]);
    await until(async () => {
      const r = await rpc<{ transactions: { state: string }[] }>(c.admin, AdminService, "describeTransactions", {
        transactionalIds: ["timeout-1"],
      });
      return r.transactions[0]?.state === "CompleteAbort";
    });
    expect(await produceError(produce(p, "tb", 0, ["late-2"]))).toMatch(/PRODUCER_FENCED|INVALID_PRODUCER_EPOCH/);
    expect(await failure(end(p, true))).toBe("PRODUCER_FENCED");
    expect(await committed("tb", 0)).not.toContain("late-1");
  });

  it("lists and describes transactions (AdminService)", async () => {
    const p = await open("describe-1");
    await produce(p, "ta", 1, ["d-1"]);
    const d = await rpc<{ transactions: { state: string; partitions: { topic: string; partition: number }[]; producerId: bigint }[] }>(
      c.admin,
      AdminService,
      "describeTransactions",
      { transactionalIds: ["describe-1", "never-seen"] },
    );
    expect(d.transactions[0]!.state).toBe("Ongoing");
    expect(d.transactions[0]!.partitions).toEqual([expect.objectContaining({ topic: "ta", partition: 1 })]);
    expect((d.transactions[1] as unknown as { error?: { name: string } }).error?.name).toBe("TRANSACTIONAL_ID_NOT_FOUND");
    const l = await rpc<{ transactions: { transactionalId: string; state: string }[] }>(c.admin, AdminService, "listTransactions", {
      states: ["Ongoing"],
    });
    expect(l.transactions.map((t) => t.transactionalId)).toContain("describe-1");
    await rpc(c.admin, AdminService, "abortTransaction", { transactionalId: "describe-1" });
    expect(await failure(end(p, true))).toBe("PRODUCER_FENCED");
    expect(await committed("ta", 1)).not.toContain("d-1");
  });

  it("refuses bad input with Kafka's errors and stores nothing", async () => {
    const lenBefore = (await uncommitted("tb", 0)).length;
    expect(
      await failure(
        rpc(c.produce, ProduceService, "endTransaction", { transactionalId: "unknown-id", producerId: 1n, producerEpoch: 0, commit: true }),
      ),
    ).toBe("TRANSACTIONAL_ID_NOT_FOUND");
    expect(await failure(init("bad-timeout", 10_000_000))).toBe("INVALID_TRANSACTION_TIMEOUT");
    const p = await open("bad-1");
    // an epoch from the future, another producer id
    expect(
      await failure(
        rpc(c.produce, ProduceService, "endTransaction", {
          transactionalId: "bad-1",
          producerId: p.producerId,
          producerEpoch: p.producerEpoch + 3,
          commit: true,
        }),
      ),
    ).toBe("INVALID_PRODUCER_EPOCH");
    expect(
      await failure(
        rpc(c.produce, ProduceService, "endTransaction", {
          transactionalId: "bad-1",
          producerId: p.producerId + 1000n,
          producerEpoch: 0,
          commit: true,
        }),
      ),
    ).toBe("INVALID_PRODUCER_ID_MAPPING");
    // a marker forged by a client: a control batch is never accepted
    const forged = encodeControlBatch({
      producerId: Number(p.producerId),
      producerEpoch: p.producerEpoch,
      commit: true,
      coordinatorEpoch: 0,
      timestampMs: Date.now(),
    });
    expect(await produceError(rpc(c.produce, ProduceService, "produce", { topic: "tb", partition: 0, recordBatch: forged }))).toBe(
      "INVALID_RECORD",
    );
    // a transactional batch without a transactional id
    const txnBatch = encodeBatch([{ value: "sneaky" }], {
      producerId: Number(p.producerId),
      producerEpoch: p.producerEpoch,
      baseSequence: 0,
      isTransactional: true,
      nowMs: Date.now(),
    });
    expect(await produceError(rpc(c.produce, ProduceService, "produce", { topic: "tb", partition: 0, recordBatch: txnBatch }))).toBe(
      "INVALID_RECORD",
    );
    // a transactional id with another producer's id
    expect(await produceError(produce({ ...p, producerId: p.producerId + 1000n, seq: new Map() }, "tb", 0, ["x"]))).toBe(
      "INVALID_PRODUCER_ID_MAPPING",
    );
    // a transactional produce without a partition
    expect(
      await failure(
        rpc(c.produce, ProduceService, "produce", {
          topic: "tb",
          acks: Acks.ALL,
          producerId: p.producerId,
          producerEpoch: p.producerEpoch,
          transactionalId: "bad-1",
          records: [{ value: enc("y") }],
        }),
      ),
    ).toBe("INVALID_REQUEST");
    expect((await uncommitted("tb", 0)).length).toBe(lenBefore);
  });

  it("SDK: producer.transaction commits sends and offsets on success, aborts on a throw", async () => {
    const producer = new Producer({ bootstrap: broker.address, transactionalId: "sdk-1", lingerMs: 0 });
    const ga = new GroupAdmin({ bootstrap: broker.address });
    try {
      await producer.transaction(async (tx) => {
        await tx.send({ topic: "tb", partition: 0, value: "sdk-c1" });
        await tx.send({ topic: "ta", partition: 0, value: "sdk-c2" });
        expect(await committed("tb", 0)).not.toContain("sdk-c1");
        await tx.sendOffsets("g-sdk", [{ topic: "in", partition: 0, offset: 3 }]);
      });
      await completed("sdk-1");
      expect(await committed("tb", 0)).toContain("sdk-c1");
      expect(await committed("ta", 0)).toContain("sdk-c2");
      expect((await ga.fetchOffsets("g-sdk")).find((o) => o.topic === "in")?.offset).toBe(3);
      const boom = new Error("processing failed");
      await expect(
        producer.transaction(async (tx) => {
          await tx.send({ topic: "tb", partition: 0, value: "sdk-a1" });
          await tx.sendOffsets("g-sdk", [{ topic: "in", partition: 0, offset: 5 }]);
          throw boom;
        }),
      ).rejects.toBe(boom);
      await completed("sdk-1");
      expect(await committed("tb", 0)).not.toContain("sdk-a1");
      expect(await uncommitted("tb", 0)).toContain("sdk-a1");
      expect((await ga.fetchOffsets("g-sdk")).find((o) => o.topic === "in")?.offset).toBe(3);
      // the next transaction of the same producer works (new epoch, sequences from 0)
      await producer.transaction(async (tx) => {
        await tx.send({ topic: "tb", partition: 0, value: "sdk-c3" });
      });
      await completed("sdk-1");
      expect(await committed("tb", 0)).toContain("sdk-c3");
    } finally {
      await producer.close();
      await ga.close();
    }
  });

  it("SDK: the commit follows the records on their stream without waiting for them; a record that fails aborts the transaction", async () => {
    const producer = new Producer({ bootstrap: broker.address, transactionalId: "sdk-behind-1", lingerMs: 0 });
    const ends = { unary: 0 };
    const transport = (producer as unknown as { conn: { transport: { endTransaction: (...a: unknown[]) => unknown } } }).conn.transport;
    const unary = transport.endTransaction.bind(transport);
    transport.endTransaction = (...a: unknown[]) => {
      ends.unary++;
      return unary(...a);
    };
    try {
      for (let n = 0; n < 3; n++) {
        let sends: Promise<unknown>[] = [];
        await producer.transaction(async (tx) => {
          sends = ["x", "y"].map((v) => tx.send({ topic: "tb", partition: 0, value: `sdk-b${n}-${v}` }));
        });
        await Promise.all(sends);
      }
      const channels = (producer as unknown as { channels: Map<string, ProduceChannel> }).channels;
      expect(channels.size).toBe(1);
      expect(ends.unary).toBe(0); // every commit went on the stream, behind its records
      // ... in the message of its one batch: one message per transaction (issue 17); with two
      // partitions' batches, in a message of its own right behind them.
      const channel = [...channels.values()][0]!;
      const sent = { withEnd: 0, endAlone: 0 };
      const withEnd = channel.sendWithEnd.bind(channel);
      const endAlone = channel.endTransaction.bind(channel);
      channel.sendWithEnd = (...a) => {
        sent.withEnd++;
        return withEnd(...a);
      };
      channel.endTransaction = (...a) => {
        sent.endAlone++;
        return endAlone(...a);
      };
      await producer.transaction(async (tx) => {
        void tx.send({ topic: "tb", partition: 0, value: "sdk-one-1" });
      });
      expect(sent).toEqual({ withEnd: 1, endAlone: 0 });
      await producer.transaction(async (tx) => {
        void tx.send({ topic: "ta", partition: 0, value: "sdk-two-1" });
        void tx.send({ topic: "ta", partition: 1, value: "sdk-two-2" });
      });
      expect(sent).toEqual({ withEnd: 1, endAlone: 1 });
      expect(ends.unary).toBe(0);
      await completed("sdk-behind-1");
      expect(await committed("tb", 0)).toContain("sdk-one-1");
      expect(await committed("ta", 0)).toContain("sdk-two-1");
      expect(await committed("ta", 1)).toContain("sdk-two-2");
      await completed("sdk-behind-1");
      expect(await committed("tb", 0)).toEqual(expect.arrayContaining(["sdk-b0-x", "sdk-b1-y", "sdk-b2-x"]));
      // A record for a partition that does not exist fails: the transaction aborts, and says why.
      let bad: Promise<unknown> = Promise.resolve();
      const err = await failure(
        producer.transaction(async (tx) => {
          void tx.send({ topic: "tb", partition: 0, value: "sdk-b-aborted" });
          bad = tx.send({ topic: "ta", partition: 7, value: "nowhere" });
        }),
      );
      expect(err).toMatch(/UNKNOWN_TOPIC_OR_PARTITION|partition: 7/);
      await expect(bad).rejects.toThrow();
      await completed("sdk-behind-1");
      expect(await committed("tb", 0)).not.toContain("sdk-b-aborted");
      expect(await uncommitted("tb", 0)).toContain("sdk-b-aborted");
      // and the producer goes on
      await producer.transaction(async (tx) => {
        void tx.send({ topic: "tb", partition: 0, value: "sdk-b-after" });
      });
      await completed("sdk-behind-1");
      expect(await committed("tb", 0)).toContain("sdk-b-after");
    } finally {
      await producer.close();
    }
  });

  it("SDK: a commit whose answer is lost with its stream after the broker committed still resolves: the re-sent batch is fenced by that commit and the commit's retry answers it (no PRODUCER_FENCED)", async () => {
    const producer = new Producer({ bootstrap: broker.address, transactionalId: "sdk-lost-end", lingerMs: 1000 }); // the batch waits: the commit rides with it
    // Every ProduceStream of the producer: the first answer that carries an end's outcome is
    // dropped and the stream breaks instead, as a connection lost just after the broker committed.
    let broken = 1; // armed below, once the producer has its id and the partition's leader
    const pool = (producer as unknown as { conn: { pool: { get(address: string): Transport } } }).conn.pool;
    const get = pool.get.bind(pool);
    const patched = new WeakSet<Transport>();
    pool.get = (address: string) => {
      const t = get(address);
      if (patched.has(t)) return t;
      patched.add(t);
      const open = t.openProduceStream.bind(t);
      t.openProduceStream = (listener: ProduceStreamListener) => {
        const stream = open({
          ...listener,
          onResponse: (m) => {
            if (broken === 0 && (m.endTransactionOutcome !== undefined || m.result.case === "endTransaction")) {
              broken++;
              stream.cancel();
              listener.onError(new ConnectionError(address, "test: the stream broke before the end's answer arrived"));
              return;
            }
            listener.onResponse(m);
          },
        });
        return stream;
      };
      return t;
    };
    try {
      await producer.transaction(async (tx) => {
        void tx.send({ topic: "tb", partition: 0, value: "sdk-lost-0" });
      });
      broken = 0;
      let sent: Promise<RecordMetadata> = Promise.resolve({ topic: "", partition: 0, offset: 0, timestampMs: 0 });
      await producer.transaction(async (tx) => {
        sent = tx.send({ topic: "tb", partition: 0, value: "sdk-lost-1" }); // one batch: the commit rides in its message
      });
      expect(broken).toBe(1);
      expect((await sent).offset).toBe(-1); // written and committed; its offset went with the lost answer
      await completed("sdk-lost-end");
      expect((await committed("tb", 0)).filter((v) => v === "sdk-lost-1")).toEqual(["sdk-lost-1"]); // once
      // The producer goes on at the epoch the commit bumped.
      await producer.transaction(async (tx) => {
        void tx.send({ topic: "tb", partition: 0, value: "sdk-lost-after" });
      });
      await completed("sdk-lost-end");
      expect(await committed("tb", 0)).toContain("sdk-lost-after");
      // An abort whose answer is lost the same way: its retry answers the abort as done.
      broken = 0;
      const boom = new Error("processing failed");
      await expect(
        producer.transaction(async (tx) => {
          await tx.send({ topic: "tb", partition: 0, value: "sdk-lost-aborted" });
          throw boom;
        }),
      ).rejects.toBe(boom);
      expect(broken).toBe(1);
      await completed("sdk-lost-end");
      expect(await committed("tb", 0)).not.toContain("sdk-lost-aborted");
      await producer.transaction(async (tx) => {
        void tx.send({ topic: "tb", partition: 0, value: "sdk-lost-after-abort" });
      });
      await completed("sdk-lost-end");
      expect(await committed("tb", 0)).toContain("sdk-lost-after-abort");
    } finally {
      await producer.close();
    }
  });

  it("CLI: rill transaction list, describe, find-hanging and abort", async () => {
    const cli = async (...args: string[]): Promise<{ code: number; out: string; err: string }> => {
      let out = "";
      let err = "";
      const sink = (f: (s: string) => void) =>
        new Writable({
          write: (c, _e, cb) => {
            f(c.toString());
            cb();
          },
        });
      const io = {
        stdout: sink((s) => (out += s)),
        stderr: sink((s) => (err += s)),
        stdin: Readable.from([]),
        env: { RILL_BOOTSTRAP: broker.address },
      };
      const r = await runCli(["node", "rill", ...args, "--bootstrap", broker.address], io);
      return { code: r.exitCode, out, err };
    };
    const p = await open("cli-1");
    await produce(p, "ta", 0, ["cli-x"]);
    const list = await cli("transaction", "list", "--state", "Ongoing");
    expect(list.err).toBe("");
    expect(list.code).toBe(0);
    expect(list.out).toMatch(/cli-1\s+\d+\s+Ongoing/);
    const desc = await cli("transaction", "describe", "cli-1", "--json");
    expect(JSON.parse(desc.out)).toMatchObject({ transactionalId: "cli-1", state: "Ongoing", partitions: [{ topic: "ta", partition: 0 }] });
    const hanging = await cli("transaction", "find-hanging", "--max-transaction-timeout-ms", "0", "--json");
    expect((JSON.parse(hanging.out) as { transactionalId: string }[]).map((t) => t.transactionalId)).toContain("cli-1");
    expect((await cli("transaction", "abort", "cli-1")).code).toBe(0);
    expect(await failure(end(p, true))).toBe("PRODUCER_FENCED");
    const unknown = await cli("transaction", "describe", "no-such-id");
    expect(unknown.code).toBe(1);
    expect(unknown.err).toMatch(/TRANSACTIONAL_ID_NOT_FOUND|not known/);
    expect((await cli("transaction", "abort")).code).toBe(1);
  });

  it("more than 32,767 transactions on one id: the epoch overflows, a new producer id is handed out, the old one is refused", async () => {
    // Start near the limit through the coordinator's own state: after an InitProducerId, the
    // state of the id after 32,700 ended transactions is written to __transaction_state as the
    // coordinator writes it, and the shard replays its partition (what a new coordinator does).
    const p = await open("overflow-1");
    const parts = (broker as unknown as { parts: { data: { rm: ReplicaManager }; transactions: Transactions } }).parts;
    const now = Date.now();
    const skipped: TxnStateRecord = {
      ...(parts.transactions.runtime.describe("overflow-1").state as TxnStateRecord),
      producerEpoch: 32_700,
      lastProducerEpoch: 32_699,
      state: "CompleteCommit",
      updateTimeMs: now,
    };
    const kv = txnToKeyValue(skipped);
    parts.data.rm.append(
      TXN_TOPIC,
      txnPartitionFor("overflow-1"),
      encodeBatch([{ key: kv.key, value: kv.value, timestampMs: now }], { nowMs: now }),
      "all",
    );
    parts.transactions.runtime.reloadShardOf("overflow-1");
    p.producerEpoch = 32_700;
    const t0 = Date.now();
    let ends = 0;
    // every EndTransaction of an empty transaction bumps the epoch (TV2); run them until the id changes
    const first = p.producerId;
    const firstEpoch = p.producerEpoch;
    expect(firstEpoch).toBe(32_700);
    while (p.producerId === first) {
      const old = { id: p.producerId, epoch: p.producerEpoch };
      if (old.epoch >= 32_760 || old.epoch === firstEpoch) await produce(p, "ta", 1, [`e${old.epoch}`]);
      await end(p, true);
      ends++;
      if (p.producerId === first) expect(p.producerEpoch).toBe(old.epoch + 1);
    }
    expect(ends).toBe(32_767 - 32_700);
    expect(p.producerEpoch).toBe(0);
    expect(p.producerId).not.toBe(first);
    // the old id at any epoch is refused; the new one works
    const old: Txp = { id: "overflow-1", producerId: first, producerEpoch: 32_766, seq: new Map() };
    expect(await produceError(produce(old, "ta", 1, ["old"]))).toMatch(/PRODUCER_FENCED|INVALID_PRODUCER_ID_MAPPING/);
    // a retry of the last end is answered again (the new id), never ends anything else
    const retry = await end({ ...old, seq: new Map() }, true);
    expect([retry.producerId, retry.producerEpoch]).toEqual([p.producerId, 0]);
    expect(await failure(end({ ...old, producerEpoch: 32_700, seq: new Map() }, true))).toBe("PRODUCER_FENCED");
    expect(await failure(end({ ...old, producerEpoch: 32_766, seq: new Map() }, false))).toBe("PRODUCER_FENCED");
    await produce(p, "ta", 1, ["after-overflow"]);
    await end(p, true);
    expect(await committed("ta", 1)).toContain("after-overflow");
    expect(await committed("ta", 1)).not.toContain("old");
    console.log(`overflow: ${ends} transactions in ${Date.now() - t0} ms`);
  }, 120_000);
});
