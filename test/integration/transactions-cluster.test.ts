/**
 * Transactions on a 3-node cluster (cluster-harness.ts: `rill broker start` processes, each a
 * broker and a controller voter), over gRPC to any node (requests are forwarded to the
 * transaction coordinator and to partition leaders):
 * - a transaction over partitions led by different brokers commits (markers written through
 *   each leader, remote ones over the internal WriteTxnMarkers) and another aborts;
 * - the coordinator's broker is killed (kill -9) in the middle of a transaction: the new
 *   coordinator (the new leader of the id's `__transaction_state` partition) rebuilds the state by
 *   replay, and the producer's EndTransaction, retried at another node, commits every partition.
 */
import { create } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AdminService } from "../../src/gen/rill/v1/admin_service_pb.ts";
import { IsolationLevel, RecordFormat } from "../../src/gen/rill/v1/common_pb.ts";
import { type FetchResponse, FetchService } from "../../src/gen/rill/v1/fetch_service_pb.ts";
import {
  Acks,
  type EndTransactionResponse,
  type InitProducerIdResponse,
  type ProduceResponse,
  ProduceService,
} from "../../src/gen/rill/v1/produce_service_pb.ts";
import { Producer } from "../../src/client/producer.ts";
import { Cluster, until } from "./cluster-harness.ts";
import { call, clients, errorName } from "./rpc-helpers.ts";

const TOPIC = "ctx";
const PARTITIONS = 3;

let cluster: Cluster | null = null;
const open: ReturnType<typeof clients>[] = [];

// biome-ignore lint/suspicious/noExplicitAny: a test helper over every unary method of the services
type AnyService = { method: Record<string, { input: any }> };
function rpc<R>(client: grpc.Client, svc: AnyService, method: string, init: object, ms = 15_000): Promise<R> {
  return call<unknown, R>(client, method, create(svc.method[method]!.input, init), ms);
}

function node(id: number): ReturnType<typeof clients> {
  const c = clients(cluster!.node(id).address);
  open.push(c);
  return c;
}

/** Retries `f` while it fails with a retriable routing error (a coordinator or leader moving). */
async function retrying<T>(f: () => Promise<T>, what: string): Promise<T> {
  return until(
    async () => {
      try {
        return { v: await f() };
      } catch (e) {
        const name = errorName(e);
        if (
          name &&
          ![
            "NOT_COORDINATOR",
            "COORDINATOR_NOT_AVAILABLE",
            "CONCURRENT_TRANSACTIONS",
            "NOT_LEADER_OR_FOLLOWER",
            "LEADER_NOT_AVAILABLE",
            "REQUEST_TIMED_OUT",
            "NOT_ENOUGH_REPLICAS",
            "UNKNOWN_TOPIC_OR_PARTITION",
          ].includes(name)
        )
          throw e;
        return null;
      }
    },
    30_000,
    what,
    200,
  ).then((r) => r.v);
}

interface Txp {
  id: string;
  producerId: bigint;
  producerEpoch: number;
  seq: Map<number, number>;
}

async function produceTo(c: ReturnType<typeof clients>, p: Txp, partition: number, values: string[]): Promise<void> {
  const seq = p.seq.get(partition) ?? 0;
  const r = await retrying(
    () =>
      rpc<ProduceResponse>(c.produce, ProduceService, "produce", {
        topic: TOPIC,
        partition,
        acks: Acks.ALL,
        producerId: p.producerId,
        producerEpoch: p.producerEpoch,
        baseSequence: seq,
        transactionalId: p.id,
        records: values.map((v) => ({ value: Buffer.from(v) })),
      }).then((x) => {
        const e = x.partitions[0]?.error;
        if (e?.retriable) throw Object.assign(new Error(e.message), { metadata: { get: () => [e.name] } });
        return x;
      }),
    `produce to ${TOPIC}-${partition}`,
  );
  expect(r.partitions[0]?.error).toBeUndefined();
  p.seq.set(partition, seq + values.length);
}

async function end(c: ReturnType<typeof clients>, p: Txp, commit: boolean): Promise<void> {
  const r = await retrying(
    () =>
      rpc<EndTransactionResponse>(c.produce, ProduceService, "endTransaction", {
        transactionalId: p.id,
        producerId: p.producerId,
        producerEpoch: p.producerEpoch,
        commit,
      }),
    "EndTransaction",
  );
  p.producerId = r.producerId;
  p.producerEpoch = r.producerEpoch;
  p.seq = new Map();
  await completed(c, p.id);
}

/** Waits until `id`'s last end has written its markers (EndTransaction answers before they are). */
async function completed(c: ReturnType<typeof clients>, id: string): Promise<void> {
  await until(
    async () => {
      const d = await rpc<{ transactions: { state: string; error?: unknown }[] }>(c.admin, AdminService, "describeTransactions", {
        transactionalIds: [id],
      }).catch(() => null);
      const t = d?.transactions[0];
      return t !== undefined && t.error === undefined && !t.state.startsWith("Prepare") ? true : null;
    },
    30_000,
    `${id} completed`,
    100,
  );
}

async function readAll(c: ReturnType<typeof clients>, isolationLevel: IsolationLevel): Promise<string[]> {
  const out: string[] = [];
  for (let partition = 0; partition < PARTITIONS; partition++) {
    const r = await retrying(
      () =>
        rpc<FetchResponse>(c.fetch, FetchService, "fetch", {
          partitions: [{ topic: TOPIC, partition, offset: 0n }],
          maxWaitMs: 0,
          format: RecordFormat.RECORDS,
          isolationLevel,
        }).then((x) => {
          const e = x.partitions[0]?.error;
          if (e) throw Object.assign(new Error(e.message), { metadata: { get: () => [e.name] } });
          return x;
        }),
      `fetch ${TOPIC}-${partition}`,
    );
    out.push(...r.partitions[0]!.records.map((x) => Buffer.from(x.value!).toString()));
  }
  return out.sort();
}

/**
 * `readAll` again until every value of `want` is in it (30 s at most), then its last answer: a
 * node that follows a partition answers from its own replica, whose high watermark (and with it
 * the last stable offset: a transaction is stable once its marker is below the high watermark)
 * follows the leader's by a replica fetch.
 */
async function readUntil(c: ReturnType<typeof clients>, isolationLevel: IsolationLevel, want: readonly string[]): Promise<string[]> {
  let last: string[] = [];
  await until(
    async () => {
      last = await readAll(c, isolationLevel);
      return want.every((v) => last.includes(v)) ? true : null;
    },
    30_000,
    `${want.join(", ")} readable`,
    100,
  ).catch(() => {});
  return last;
}

afterEach((ctx) => {
  if (ctx.task.result?.state === "fail" && cluster !== null) console.log(cluster.tails(30));
});

beforeAll(async () => {
  cluster = await Cluster.start({
    name: "rill-txn-cluster-",
    nodes: 3,
    set: {
      "broker.session.timeout.ms": 3000,
      "broker.heartbeat.interval.ms": 500,
      "replica.lag.time.max.ms": 3000,
      "transaction.abort.timed.out.transaction.cleanup.interval.ms": 500,
    },
  });
  await cluster.waitForStable(30_000);
  const c = node(1);
  await rpc(c.admin, AdminService, "createTopics", {
    topics: [{ name: TOPIC, partitions: PARTITIONS, replicationFactor: 3, configs: { "min.insync.replicas": "2" } }],
  });
}, 90_000);

afterAll(async () => {
  for (const c of open) c.close();
  await cluster?.close();
}, 60_000);

describe("transactions on a 3-node cluster", () => {
  it("commits and aborts across partitions led by different brokers, through any node", async () => {
    const leaders = await until(
      async () => {
        const d = await rpc<{ topics: { partitions: { leader: number }[] }[] }>(node(1).admin, AdminService, "describeTopics", {
          topics: [TOPIC],
        });
        const ls = d.topics[0]?.partitions.map((p) => p.leader) ?? [];
        return ls.length === PARTITIONS && ls.every((l) => l > 0) ? ls : null;
      },
      30_000,
      "leaders",
    );
    expect(new Set(leaders).size).toBeGreaterThan(1); // different leaders (placement spreads them)
    const c1 = node(1);
    const c2 = node(2);
    const init = await retrying(
      () =>
        rpc<InitProducerIdResponse>(c1.produce, ProduceService, "initProducerId", {
          transactionalId: "cluster-1",
          transactionTimeoutMs: 60_000,
        }),
      "InitProducerId",
    );
    const p: Txp = { id: "cluster-1", producerId: init.producerId, producerEpoch: init.producerEpoch, seq: new Map() };
    for (let i = 0; i < PARTITIONS; i++) await produceTo(i % 2 === 0 ? c1 : c2, p, i, [`c-${i}`]);
    expect(await readAll(c2, IsolationLevel.READ_COMMITTED)).toEqual([]);
    await end(c2, p, true);
    expect(await readUntil(c1, IsolationLevel.READ_COMMITTED, ["c-0", "c-1", "c-2"])).toEqual(["c-0", "c-1", "c-2"]);
    for (let i = 0; i < PARTITIONS; i++) await produceTo(c1, p, i, [`a-${i}`]);
    await end(c1, p, false);
    expect(await readAll(c2, IsolationLevel.READ_COMMITTED)).toEqual(["c-0", "c-1", "c-2"]);
    expect(await readUntil(c2, IsolationLevel.READ_UNCOMMITTED, ["a-0", "a-1", "a-2"])).toEqual(["a-0", "a-1", "a-2", "c-0", "c-1", "c-2"]);
  }, 90_000);

  it("SDK: the end travels on the ProduceStream to a partition leader that is not the coordinator, which forwards it", async () => {
    const c1 = node(1);
    const id = "cluster-sdk";
    const first = new Producer({ bootstrap: cluster!.node(1).address, transactionalId: id, lingerMs: 0 });
    await first.transaction(async (tx) => {
      await tx.send({ topic: TOPIC, partition: 0, value: "sdk-0" });
    });
    await first.close();
    await completed(c1, id);
    const d = await rpc<{ transactions: { coordinatorId: number }[] }>(c1.admin, AdminService, "describeTransactions", {
      transactionalIds: [id],
    });
    const coordinator = d.transactions[0]!.coordinatorId;
    const t = await rpc<{ topics: { partitions: { leader: number }[] }[] }>(c1.admin, AdminService, "describeTopics", { topics: [TOPIC] });
    const away = t.topics[0]!.partitions.findIndex((q) => q.leader !== coordinator);
    expect(away).toBeGreaterThanOrEqual(0);
    const producer = new Producer({ bootstrap: cluster!.node(1).address, transactionalId: id, lingerMs: 0 });
    const transport = (producer as unknown as { conn: { transport: { endTransaction: (...a: unknown[]) => unknown } } }).conn.transport;
    const unary = transport.endTransaction;
    let unaryEnds = 0;
    transport.endTransaction = (...a: unknown[]) => {
      unaryEnds++;
      return unary.apply(transport, a);
    };
    try {
      await producer.transaction(async (tx) => {
        await tx.send({ topic: TOPIC, partition: away, value: "sdk-away" }); // its stream goes to that leader first
        for (let i = 0; i < PARTITIONS; i++) await tx.send({ topic: TOPIC, partition: i, value: `sdk-${i}-b` });
      });
      expect(unaryEnds).toBe(0); // ended on the stream, forwarded to the coordinator
      await completed(c1, id);
      const want = ["sdk-0", "sdk-away", "sdk-0-b", "sdk-1-b", "sdk-2-b"];
      const rc = await readUntil(c1, IsolationLevel.READ_COMMITTED, want);
      for (const v of want) expect(rc).toContain(v);
    } finally {
      await producer.close();
    }
  }, 90_000);

  it("survives the coordinator's death mid-transaction: the new coordinator replays the state and commits", async () => {
    const c1 = node(1);
    const init = await retrying(
      () =>
        rpc<InitProducerIdResponse>(c1.produce, ProduceService, "initProducerId", {
          transactionalId: "cluster-failover",
          transactionTimeoutMs: 60_000,
        }),
      "InitProducerId",
    );
    const p: Txp = { id: "cluster-failover", producerId: init.producerId, producerEpoch: init.producerEpoch, seq: new Map() };
    for (let i = 0; i < PARTITIONS; i++) await produceTo(c1, p, i, [`f-${i}`]);
    const d = await rpc<{ transactions: { coordinatorId: number; state: string }[] }>(c1.admin, AdminService, "describeTransactions", {
      transactionalIds: ["cluster-failover"],
    });
    const coordinator = d.transactions[0]!.coordinatorId;
    expect(d.transactions[0]!.state).toBe("Ongoing");
    console.log(`killing the coordinator, node ${coordinator}`);
    await cluster!.node(coordinator).kill();
    const survivor = node(coordinator === 1 ? 2 : 1);
    await end(survivor, p, true);
    const after = await rpc<{ transactions: { coordinatorId: number; state: string }[] }>(
      survivor.admin,
      AdminService,
      "describeTransactions",
      {
        transactionalIds: ["cluster-failover"],
      },
    );
    expect(after.transactions[0]!.coordinatorId).not.toBe(coordinator);
    expect(after.transactions[0]!.state).toBe("CompleteCommit");
    const want = Array.from({ length: PARTITIONS }, (_, i) => `f-${i}`);
    const rc = await readUntil(survivor, IsolationLevel.READ_COMMITTED, want);
    for (const v of want) expect(rc).toContain(v);
    await cluster!.node(coordinator).start();
  }, 120_000);
});
