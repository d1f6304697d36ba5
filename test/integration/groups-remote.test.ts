/**
 * A group's Consume stream reads every assigned partition, also those of which its coordinator
 * holds no replica: a 3-node cluster (cluster-harness.ts), topics of 6 partitions with
 * replication factor 1 and 2, so each coordinator lacks a replica of some of them (the Consume
 * session reads those from their leaders, as Fetch forwards).
 * - One GroupConsumer (commits on) receives every record of every partition of the RF 1 topic
 *   exactly once.
 * - Two members of one group share the RF 2 topic: together they receive every record at least
 *   once (a rebalance may re-deliver what was not committed yet), and the group's committed
 *   offsets reach the end of every partition.
 * - READ_COMMITTED over partitions read at their leaders: committed transactions only.
 * Bounded waits only; one cluster for the file.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { SeededRandom, seedFromEnv } from "../../src/base/random.ts";
import type { Admin } from "../../src/client/admin.ts";
import { GroupConsumer } from "../../src/client/group-consumer.ts";
import { GroupAdmin } from "../../src/client/group-admin.ts";
import { Producer } from "../../src/client/producer.ts";
import { Cluster, until } from "./cluster-harness.ts";

const SEED = seedFromEnv();
const PARTITIONS = 6;
/** Records per partition. */
const N = 50;
console.log(`groups-remote SEED=${SEED}`);

let cluster: Cluster | null = null;
let admin: Admin | null = null;
const closers: (() => Promise<void>)[] = [];

afterEach((ctx) => {
  if (ctx.task.result?.state === "fail" && cluster !== null) console.log(cluster.tails(30));
});

afterAll(async () => {
  for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
  await cluster?.close();
}, 60_000);

beforeAll(async () => {
  cluster = await Cluster.start({ name: "rill-groups-remote-", nodes: 3 });
  await cluster.waitForStable(30_000);
  admin = cluster.node(1).admin();
  closers.push(() => admin!.close());
}, 90_000);

const bootstrap = (): string => cluster!.nodes.map((n) => n.address).join(",");

/** Creates `topic` and writes N values to each partition: "p<partition>-<i>". */
async function topicWithRecords(topic: string, replicationFactor: number): Promise<void> {
  await admin!.createTopics([{ name: topic, partitions: PARTITIONS, replicationFactor }]);
  await until(
    async () => {
      const d = (await admin!.describeTopics([topic], { includeConfigs: false }))[0];
      return d !== undefined && d.partitions.length === PARTITIONS && d.partitions.every((p) => p.leader >= 0);
    },
    20_000,
    `${topic}'s leaders`,
  );
  const producer = new Producer({ bootstrap: bootstrap(), lingerMs: 5, retry: { retries: 30, backoffMsMax: 500 } });
  closers.push(() => producer.close());
  const sends: Promise<unknown>[] = [];
  for (let p = 0; p < PARTITIONS; p++) for (let i = 0; i < N; i++) sends.push(producer.send({ topic, partition: p, value: `p${p}-${i}` }));
  await Promise.all(sends);
}

function consumer(groupId: string, seedOffset: number): GroupConsumer {
  const c = new GroupConsumer({
    bootstrap: bootstrap(),
    groupId,
    autoOffsetReset: "earliest",
    sessionTimeoutMs: 6000,
    requestTimeoutMs: 10_000,
    autoCommitIntervalMs: 200,
    random: new SeededRandom(SEED + seedOffset),
  });
  closers.push(() => c.close());
  return c;
}

/** Iterates `c` in the background, collecting "partition:offset:value". */
function drain(c: GroupConsumer): { seen: string[]; failed: () => unknown } {
  const seen: string[] = [];
  let error: unknown = null;
  void (async () => {
    for await (const r of c) seen.push(`${r.partition}:${r.offset}:${r.value!.toString()}`);
  })().catch((e: unknown) => {
    error = e;
  });
  return { seen, failed: () => error };
}

const expected = (): string[] => {
  const all: string[] = [];
  for (let p = 0; p < PARTITIONS; p++) for (let i = 0; i < N; i++) all.push(`${p}:${i}:p${p}-${i}`);
  return all.sort();
};

describe("Consume reads partitions of which the coordinator holds no replica", () => {
  it("one member of a group reads every record of a topic of replication factor 1 exactly once", async () => {
    await topicWithRecords("rf1", 1);
    const c = consumer("g-rf1", 1);
    c.subscribe(["rf1"]);
    const d = drain(c);
    await until(() => d.failed() !== null || d.seen.length >= PARTITIONS * N, 20_000, "every record of rf1").catch((e: unknown) => {
      throw new Error(`${String(e)}; ${d.seen.length} of ${PARTITIONS * N} records, per partition ${JSON.stringify(perPartition(d.seen))}`);
    });
    expect(d.failed()).toBeNull();
    // Nothing more comes (no duplicate) once all were read.
    await new Promise((r) => setTimeout(r, 500));
    expect([...d.seen].sort()).toEqual(expected());
    await c.close();
  }, 40_000);

  it("two members share a topic of replication factor 2: every record at least once, and commits reach every partition's end", async () => {
    await topicWithRecords("rf2", 2);
    const a = consumer("g-rf2", 2);
    const b = consumer("g-rf2", 3);
    a.subscribe(["rf2"]);
    b.subscribe(["rf2"]);
    const da = drain(a);
    const db = drain(b);
    const distinct = (): number => new Set([...da.seen, ...db.seen]).size;
    await until(() => da.failed() !== null || db.failed() !== null || distinct() >= PARTITIONS * N, 20_000, "every record of rf2").catch(
      (e: unknown) => {
        throw new Error(
          `${String(e)}; ${distinct()} of ${PARTITIONS * N}, a ${JSON.stringify(perPartition(da.seen))} b ${JSON.stringify(perPartition(db.seen))}`,
        );
      },
    );
    expect(da.failed()).toBeNull();
    expect(db.failed()).toBeNull();
    expect([...new Set([...da.seen, ...db.seen])].sort()).toEqual(expected());
    // Both took part, and the group committed the end of every partition.
    expect(da.seen.length).toBeGreaterThan(0);
    expect(db.seen.length).toBeGreaterThan(0);
    const groupAdmin = new GroupAdmin({ bootstrap: bootstrap() });
    closers.push(() => groupAdmin.close());
    await until(
      async () => {
        const offsets = await groupAdmin.fetchOffsets("g-rf2", [{ topic: "rf2", partitions: [] }]);
        return offsets.length === PARTITIONS && offsets.every((o) => o.offset === N);
      },
      10_000,
      "the group's commits at every partition's end",
    );
    await a.close();
    await b.close();
  }, 40_000);

  it("READ_COMMITTED: a member reads the committed transactions' records of every partition and none of an aborted one", async () => {
    const topic = "rf1txn";
    await admin!.createTopics([{ name: topic, partitions: PARTITIONS, replicationFactor: 1 }]);
    await until(
      async () => (await admin!.describeTopics([topic], { includeConfigs: false }))[0]?.partitions.every((p) => p.leader >= 0),
      20_000,
      `${topic}'s leaders`,
    );
    const tp = new Producer({
      bootstrap: bootstrap(),
      lingerMs: 0,
      transactionalId: "groups-remote",
      retry: { retries: 30, backoffMsMax: 500 },
    });
    closers.push(() => tp.close());
    const write = async (tx: { send(r: { topic: string; partition: number; value: string }): Promise<unknown> }, tag: string) => {
      await Promise.all(Array.from({ length: PARTITIONS }, (_, p) => tx.send({ topic, partition: p, value: `${tag}${p}` })));
    };
    await tp.transaction((tx) => write(tx, "c1-"));
    await tp
      .transaction(async (tx) => {
        await write(tx, "aborted-");
        throw new Error("abort this one");
      })
      .catch(() => undefined);
    await tp.transaction((tx) => write(tx, "c2-"));
    const c = new GroupConsumer({
      bootstrap: bootstrap(),
      groupId: "g-rf1txn",
      autoOffsetReset: "earliest",
      isolation: "read_committed",
      sessionTimeoutMs: 6000,
      requestTimeoutMs: 10_000,
      random: new SeededRandom(SEED + 4),
    });
    closers.push(() => c.close());
    c.subscribe([topic]);
    const d = drain(c);
    await until(() => d.failed() !== null || d.seen.length >= 2 * PARTITIONS, 20_000, "the committed records").catch((e: unknown) => {
      throw new Error(`${String(e)}; got ${JSON.stringify(d.seen)}`);
    });
    expect(d.failed()).toBeNull();
    await new Promise((r) => setTimeout(r, 300));
    const values = d.seen.map((s) => s.split(":")[2]!).sort();
    const want = Array.from({ length: PARTITIONS }, (_, p) => [`c1-${p}`, `c2-${p}`])
      .flat()
      .sort();
    expect(values).toEqual(want);
    await c.close();
  }, 40_000);
});

function perPartition(seen: readonly string[]): number[] {
  const n = new Array<number>(PARTITIONS).fill(0);
  for (const s of seen) n[Number(s.split(":")[0])]!++;
  return n;
}
