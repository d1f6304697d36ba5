/**
 * The SDK against a 3-node cluster (cluster-harness.ts: real `rill broker start` processes on
 * 127.0.0.1, each a broker and a controller voter): the clients route to partition leaders and
 * ride out a leader's death.
 *
 * A topic of 6 partitions, replication factor 3, min.insync.replicas 2. An idempotent producer
 * (acks=all, bootstrap = all three nodes) sends N unique keyed values at a steady pace while the
 * test kill -9s the node that leads the most partitions (seeded tie-break), waits until the
 * controller has fenced it and moved its leaderships, and starts it again on the same port and
 * data dir; it truncates and rejoins the ISR while the producer keeps sending. Then:
 * - the producer reported no failure (every send resolved), and it did re-send to new leaders;
 * - a Consumer assigned to all 6 partitions (from the earliest offset) reads every acknowledged
 *   value exactly once, at the offset its send resolved with, in send order per partition (keys
 *   map to partitions with murmur2, so per-partition order is the send order of its values), and
 *   nothing else.
 *
 * A second scenario: a GroupConsumer given the address of a node that is not its group's
 * coordinator finds the coordinator (the leader of the group's `__consumer_offsets` partition)
 * and consumes; the coordinator is killed with kill -9; the consumer joins again at the new
 * coordinator and goes on from its committed offsets (nothing read again below them, nothing
 * missed). A GroupAdmin given the same node describes the group, lists it and reads its offsets
 * at whichever node coordinates it.
 *
 * SEED=n replays the seeded choices (keys, which node is killed on a tie, producer jitter);
 * CLUSTER_RECORDS=n changes N. Every wait is bounded; the cluster's processes are killed in
 * afterAll (and by the harness's exit hook should the test process die first).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { partitionForKey } from "../../src/base/murmur2.ts";
import { SeededRandom, seedFromEnv } from "../../src/base/random.ts";
import { Admin, type TopicDescription } from "../../src/client/admin.ts";
import { Consumer } from "../../src/client/consumer.ts";
import { GroupConsumer } from "../../src/client/group-consumer.ts";
import { GroupAdmin } from "../../src/client/group-admin.ts";
import { OFFSETS_TOPIC } from "../../src/client/metadata.ts";
import { offsetsPartitionFor } from "../../src/coordinator/group-runtime.ts";
import { Producer, type RecordMetadata } from "../../src/client/producer.ts";
import { Cluster, sleep, until } from "./cluster-harness.ts";

const SEED = seedFromEnv();
const RECORDS = Number(process.env["CLUSTER_RECORDS"] ?? 30_000);
const TOPIC = "orders";
const PARTITIONS = 6;
const KEYS = 600;
/** Sends per pacing step, and the pause after each: about 3k records/s at most (10 s of sending), so the
 * producer still sends while the killed node restarts and catches up. */
const STEP_RECORDS = 150;
const STEP_MS = 50;

console.log(`client-cluster SEED=${SEED} records=${RECORDS}`);

let cluster: Cluster | null = null;
const closers: (() => Promise<void>)[] = [];

afterEach((ctx) => {
  if (ctx.task.result?.state === "fail" && cluster !== null) console.log(cluster.tails(30));
});

afterAll(async () => {
  for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
  await cluster?.close();
}, 60_000);

beforeAll(async () => {
  cluster = await Cluster.start({
    name: "rill-client-cluster-",
    nodes: 3,
    set: { "broker.session.timeout.ms": 3000, "broker.heartbeat.interval.ms": 500, "replica.lag.time.max.ms": 3000 },
  });
  await cluster.waitForStable(30_000);
}, 90_000);

function bootstrapOf(c: Cluster): string {
  return c.nodes.map((n) => n.address).join(",");
}

/** Value `i`: unique, names its index. */
const valueAt = (i: number): string => `v${String(i).padStart(8, "0")}`;
const indexOfValue = (value: string): number => Number(value.slice(1));

async function describeTopic(admin: Admin, topic = TOPIC): Promise<TopicDescription> {
  return (await admin.describeTopics([topic], { includeConfigs: false }))[0]!;
}

/** Waits until every partition has a leader and all three replicas in its ISR. */
async function waitForFullIsr(admin: Admin, ms: number, topic = TOPIC): Promise<TopicDescription> {
  return until(
    async () => {
      const t = await describeTopic(admin, topic);
      return t.partitions.every((p) => p.leader >= 0 && p.isr.length === 3) ? t : false;
    },
    ms,
    `every partition of ${topic} to have a leader and an ISR of 3`,
    200,
  );
}

/** The node leading the most partitions (ties: seeded pick). */
function busiestLeader(t: TopicDescription, rnd: SeededRandom): number {
  const counts = new Map<number, number>();
  for (const p of t.partitions) if (p.leader >= 0) counts.set(p.leader, (counts.get(p.leader) ?? 0) + 1);
  const most = Math.max(...counts.values());
  const tied = [...counts]
    .filter(([, n]) => n === most)
    .map(([id]) => id)
    .sort();
  return tied[rnd.int(tied.length)]!;
}

/** What a Consumer read: records per partition, and each partition's high watermark at its leader as last fetched. */
interface ReadBack {
  readonly log: { offset: number; value: string }[][];
  readonly highWatermarks: number[];
}

/** Reads every partition from the earliest offset up to `ends` (per partition) with one Consumer. */
async function readAll(bootstrap: string, ends: readonly number[], ms: number): Promise<ReadBack> {
  const consumer = new Consumer({ bootstrap, maxWaitMs: 200, requestTimeoutMs: 10_000, retry: { retries: 20, backoffMsMax: 500 } });
  closers.push(() => consumer.close());
  consumer.assign(Array.from({ length: PARTITIONS }, (_, partition) => ({ topic: TOPIC, partition, offset: "earliest" as const })));
  const got: { offset: number; value: string }[][] = Array.from({ length: PARTITIONS }, () => []);
  const done = (): boolean => got.every((g, p) => (g.at(-1)?.offset ?? -1) + 1 >= ends[p]!);
  const deadline = setTimeout(() => void consumer.close(), ms);
  const highWatermarks = (): number[] => got.map((_, partition) => consumer.highWatermark({ topic: TOPIC, partition }));
  try {
    for await (const r of consumer) {
      got[r.partition]!.push({ offset: r.offset, value: r.value!.toString() });
      if (done() && highWatermarks().every((hw) => hw >= 0)) break;
    }
  } finally {
    clearTimeout(deadline);
    await consumer.close();
  }
  if (!done()) throw new Error(`read ${got.map((g, p) => `${p}:${g.length}/${ends[p]}`).join(" ")} within ${ms} ms`);
  return { log: got, highWatermarks: highWatermarks() };
}

describe("SDK on a 3-node cluster", () => {
  it("an idempotent acks=all producer loses, duplicates and reorders nothing across a leader's kill -9 and restart", async () => {
    const c = cluster!;
    const rnd = new SeededRandom(SEED);
    const bootstrap = bootstrapOf(c);
    const admin = new Admin({ bootstrap, requestTimeoutMs: 15_000 });
    closers.push(() => admin.close());
    await admin.createTopics([{ name: TOPIC, partitions: PARTITIONS, replicationFactor: 3, configs: { "min.insync.replicas": "2" } }]);
    const before = await waitForFullIsr(admin, 30_000);
    console.log(`leaders before: ${before.partitions.map((p) => `${p.partition}@${p.leader}(e${p.leaderEpoch})`).join(" ")}`);

    // Retries cover a failover: the dead leader is fenced after broker.session.timeout.ms (3 s).
    const producer = new Producer({
      bootstrap,
      acks: "all",
      idempotent: true,
      lingerMs: 5,
      batchBytes: 16 * 1024,
      requestTimeoutMs: 15_000,
      random: new SeededRandom(SEED + 1),
      retry: { retries: 60, initialBackoffMs: 100, backoffMsMax: 500 },
    });
    closers.push(() => producer.close());

    const keys = Array.from({ length: RECORDS }, () => `k${rnd.int(KEYS)}`);
    const sends: Promise<RecordMetadata>[] = [];
    let acked = 0;
    let victim = -1;
    let chaos: Promise<void> = Promise.resolve();
    const timeline: string[] = [];
    const t0 = Date.now();
    const mark = (what: string): void =>
      void timeline.push(`${((Date.now() - t0) / 1000).toFixed(1)}s ${what} (${sends.length} sent, ${acked} acked)`);
    const progress = setInterval(
      () =>
        console.log(`  ${((Date.now() - t0) / 1000).toFixed(1)}s: ${sends.length} sent, ${acked} acked, ${JSON.stringify(producer.stats)}`),
      2000,
    );
    try {
      for (let i = 0; i < RECORDS; i++) {
        if (i === Math.floor(RECORDS * 0.2)) {
          victim = busiestLeader(await describeTopic(admin), rnd);
          chaos = (async () => {
            const node = c.node(victim);
            mark(`kill -9 node ${victim}`);
            await node.kill();
            await until(
              async () => (await describeTopic(admin)).partitions.every((p) => p.leader >= 0 && p.leader !== victim),
              30_000,
              `leaders of ${TOPIC} to move off node ${victim}`,
              200,
            );
            mark(`leaders moved off node ${victim}`);
            await node.start();
            mark(`node ${victim} restarted`);
          })();
          chaos.catch(() => undefined); // awaited below
        }
        await producer.ready();
        const sent = producer.send({ topic: TOPIC, key: keys[i]!, value: valueAt(i) });
        sent.then(
          () => acked++,
          () => undefined,
        );
        sends.push(sent);
        if (i % STEP_RECORDS === STEP_RECORDS - 1) await sleep(STEP_MS);
      }
      mark("all sent");
      await chaos;
      await producer.flush();
      mark("flushed");
    } finally {
      clearInterval(progress);
    }
    const results = await Promise.allSettled(sends);
    console.log(`timeline: ${timeline.join("; ")}`);
    console.log(`producer: ${JSON.stringify(producer.stats)}`);

    // No failure: every send resolved.
    const failed = results.flatMap((r, i) =>
      r.status === "rejected" ? [`send ${i}: ${String((r.reason as Error)?.message ?? r.reason)}`] : [],
    );
    expect(failed.slice(0, 5), `${failed.length} sends failed`).toEqual([]);
    expect(producer.stats.retries, "the producer re-sent batches after the leader died").toBeGreaterThan(0);
    expect(producer.stats.producerIdsAcquired, "no sequence was left unresolved").toBe(1);

    // The restarted node truncated and rejoined: every ISR is full again; the victim's partitions have new epochs.
    const after = await waitForFullIsr(admin, 60_000);
    console.log(`leaders after: ${after.partitions.map((p) => `${p.partition}@${p.leader}(e${p.leaderEpoch})`).join(" ")}`);
    for (const p of before.partitions) {
      if (p.leader === victim)
        expect(after.partitions[p.partition]!.leaderEpoch, `partition ${p.partition}'s leader epoch`).toBeGreaterThan(p.leaderEpoch);
    }

    // Read everything back from the leaders, up to the last acknowledged offset of each partition.
    const metas = results.map((r) => (r as PromiseFulfilledResult<RecordMetadata>).value);
    const ends = Array.from({ length: PARTITIONS }, () => 0);
    for (const m of metas) ends[m.partition] = Math.max(ends[m.partition]!, m.offset + 1);
    const { log, highWatermarks } = await readAll(bootstrap, ends, 60_000);
    expect(highWatermarks, "nothing beyond the acknowledged records (leaders' high watermarks)").toEqual(ends);

    const problems: string[] = [];
    const where = new Map<number, string>();
    log.forEach((records, partition) => {
      let previous = -1;
      records.forEach((r, k) => {
        const at = `${partition}/${r.offset}`;
        const i = indexOfValue(r.value);
        if (r.offset !== k) problems.push(`${at}: offset ${r.offset} at position ${k} (gap or repeat)`);
        if (!(i >= 0 && i < RECORDS) || r.value !== valueAt(i)) problems.push(`${at}: unexpected value ${r.value}`);
        else if (partitionForKey(Buffer.from(keys[i]!), PARTITIONS) !== partition)
          problems.push(`${at}: value ${i} (key ${keys[i]}) in the wrong partition`);
        if (where.has(i)) problems.push(`${at}: value ${i} also at ${where.get(i)}`);
        if (i <= previous) problems.push(`${at}: value ${i} after value ${previous}`);
        where.set(i, at);
        previous = i;
      });
    });
    metas.forEach((m, i) => {
      const at = where.get(i);
      if (at === undefined) problems.push(`value ${i}: acknowledged at ${m.partition}/${m.offset} but not read`);
      else if (at !== `${m.partition}/${m.offset}`)
        problems.push(`value ${i}: acknowledged at ${m.partition}/${m.offset} but read at ${at}`);
    });
    expect(problems.slice(0, 10), `${problems.length} problems`).toEqual([]);
    expect(where.size).toBe(RECORDS);
  }, 240_000);

  it("a GroupConsumer finds its coordinator from another node, and rejoins the new one after a kill -9, from its committed offsets", async () => {
    const c = cluster!;
    const topic = "events";
    const group = `g-${SEED}`;
    const bootstrap = bootstrapOf(c);
    const admin = new Admin({ bootstrap, requestTimeoutMs: 15_000 });
    closers.push(() => admin.close());
    await admin.createTopics([{ name: topic, partitions: 3, replicationFactor: 3, configs: { "min.insync.replicas": "2" } }]);
    await waitForFullIsr(admin, 30_000, topic);
    const coordinator = (await waitForFullIsr(admin, 60_000, OFFSETS_TOPIC)).partitions[offsetsPartitionFor(group)]!.leader;
    const other = c.nodes.find((n) => n.id !== coordinator)!;
    console.log(`group ${group}: coordinator node ${coordinator}; the consumer is given node ${other.id} only`);

    const producer = new Producer({
      bootstrap,
      requestTimeoutMs: 15_000,
      random: new SeededRandom(SEED + 2),
      retry: { retries: 60, backoffMsMax: 500 },
    });
    closers.push(() => producer.close());
    const send = (from: number, n: number) =>
      Promise.all(Array.from({ length: n }, (_, k) => producer.send({ topic, key: `k${from + k}`, value: valueAt(from + k) })));
    await send(0, 600);

    const consumer = new GroupConsumer({
      bootstrap: other.address,
      groupId: group,
      autoOffsetReset: "earliest",
      sessionTimeoutMs: 6000,
      requestTimeoutMs: 15_000,
      random: new SeededRandom(SEED + 3),
      retry: { retries: 60, backoffMsMax: 1000 },
    });
    closers.push(() => consumer.close());
    consumer.subscribe([topic]);
    const seen: { partition: number; offset: number; value: string }[] = [];
    const reading = (async () => {
      for await (const r of consumer) seen.push({ partition: r.partition, offset: r.offset, value: r.value!.toString() });
    })();
    reading.catch(() => undefined); // awaited below
    const distinct = (): number => new Set(seen.map((r) => r.value)).size;
    // A broker that is not the coordinator would leave the join unanswered for requestTimeoutMs (15 s).
    await until(() => distinct() === 600, 10_000, "the group consumer to read the first 600 values");
    const tps = [0, 1, 2].map((partition) => ({ topic, partition }));
    const committed = await until(
      () => {
        const cs = tps.map((tp) => consumer.committed(tp));
        return cs.reduce((a, b) => a + b, 0) === 600 ? cs : false;
      },
      20_000,
      "auto-commit of everything read",
    );

    // GroupAdmin, given the same non-coordinator node, reaches the coordinator.
    const groupAdmin = new GroupAdmin({ bootstrap: other.address, requestTimeoutMs: 15_000, retry: { retries: 60, backoffMsMax: 1000 } });
    closers.push(() => groupAdmin.close());
    const described = (await groupAdmin.describeGroups([group]))[0]!;
    expect([described.coordinatorId, described.members.length]).toEqual([coordinator, 1]);
    expect((await groupAdmin.listGroups()).map((g) => g.groupId)).toContain(group);
    const fetched = await groupAdmin.fetchOffsets(group, [{ topic, partitions: [0, 1, 2] }]);
    expect(fetched.map((o) => o.offset)).toEqual(committed);

    const t0 = Date.now();
    const mark = seen.length;
    await c.node(coordinator).kill();
    await send(600, 600);
    await until(() => distinct() === 1200, 90_000, "the group consumer to read all 1200 values after the coordinator's death");
    console.log(`rejoined and read 600 more in ${Date.now() - t0} ms; ${seen.length - 1200} records delivered twice`);
    for (const tp of tps) {
      const again = seen
        .slice(mark)
        .filter((r) => r.partition === tp.partition)
        .map((r) => r.offset);
      expect(
        Math.min(...again),
        `partition ${tp.partition}: first offset after rejoining (committed ${committed[tp.partition]})`,
      ).toBeGreaterThanOrEqual(committed[tp.partition]!);
    }
    const after = (await groupAdmin.describeGroups([group]))[0]!;
    expect(after.coordinatorId).not.toBe(coordinator);
    await consumer.close();
    await reading;
    await c.node(coordinator).start();
  }, 180_000);
});
