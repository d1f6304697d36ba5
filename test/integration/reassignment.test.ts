/**
 * Partition reassignment with real processes (issue 21, KIP-455): one cluster of four nodes
 * (1-3 controller voters, all four brokers) and a topic of two partitions, replication factor 3,
 * min.insync.replicas 2.
 *
 * 1. Bad input, each refused with its own error, nothing moved: an unregistered broker, a broker
 *    named twice, an empty list (RF 0), an unknown topic and partition, a cancel with no move.
 * 2. Under an acks=all load on both partitions (an idempotent producer), partition 0 moves off its
 *    leader onto the one broker that did not hold it: the new replica catches up, the replica set
 *    switches, leadership moves, and the removed broker deletes its log.
 * 3. Partition 1 is moved onto a broker that is down (killed): the move waits (listed, the new
 *    replica never in sync) and is cancelled: the original replicas stay, nothing is listed.
 * 2b. A 4 MiB move with both throttles at 1 MiB/s takes at least (4 MiB - one second's burst) / rate.
 * 4. kafkajs's admin over the Kafka listener: ListPartitionReassignments, a reorder through
 *    AlterPartitionReassignments, INVALID_REPLICA_ASSIGNMENT for an unknown broker.
 * 5. Every acknowledged record is read back from both partitions, exactly once.
 */
import * as nodeFs from "node:fs";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { RillError } from "../../src/base/errors.ts";
import { SeededRandom } from "../../src/base/random.ts";
import { Admin } from "../../src/client/admin.ts";
import { Consumer } from "../../src/client/consumer.ts";
import { Producer } from "../../src/client/producer.ts";
import kafkajs from "kafkajs";
import { Cluster, freePort, until } from "./cluster-harness.ts";

const SEED = Number(process.env.RILL_SEED ?? 2121);
const TOPIC = "moves";
/** The replication throttle of every node, bytes/s: it slows only replicas being added. */
const THROTTLE = 1 << 20;

let cluster: Cluster | null = null;
const closers: Array<() => Promise<unknown>> = [];

afterAll(async () => {
  for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
  await cluster?.close();
}, 60_000);

/** Whether `dir` (or a folder one level below it) holds the partition folder `name`. */
function holdsPartition(dir: string, name: string): boolean {
  if (!nodeFs.existsSync(dir)) return false;
  for (const e of nodeFs.readdirSync(dir, { withFileTypes: true })) {
    if (!e.isDirectory()) continue;
    if (e.name === name) return true;
    if (nodeFs.existsSync(path.join(dir, e.name, name))) return true;
  }
  return false;
}

async function errorOf(p: Promise<ReadonlyArray<{ error: RillError | null }>>): Promise<string> {
  const [r] = await p;
  return r!.error?.kind.name ?? "no error";
}

describe("partition reassignment (4 nodes, acks=all load)", () => {
  it("moves a partition off its leader without losing an acknowledged record, cancels a move, refuses bad input", {
    timeout: 180_000,
  }, async () => {
    console.log(`seed ${SEED} (RILL_SEED)`);
    const t0 = Date.now();
    const kafkaPorts = new Map<number, number>();
    for (const id of [1, 2, 3, 4]) kafkaPorts.set(id, await freePort());
    cluster = await Cluster.start({
      nodeSet: (id) => ({ "kafka.listen": `127.0.0.1:${kafkaPorts.get(id)!}` }),
      name: "rill-reassign-",
      nodes: 4,
      voters: 3,
      set: {
        "broker.session.timeout.ms": 3000,
        "broker.heartbeat.interval.ms": 300,
        "replica.lag.time.max.ms": 3000,
        "leader.replication.throttled.rate": THROTTLE,
        "follower.replication.throttled.rate": THROTTLE,
      },
    });
    const c = cluster;
    await c.waitForStable(40_000);
    const bootstrap = c.nodes.map((n) => n.address).join(",");
    const admin = new Admin({ bootstrap, requestTimeoutMs: 15_000, retry: { retries: 10, backoffMsMax: 500 } });
    closers.push(() => admin.close());
    await until(async () => (await admin.describeCluster()).brokers.filter((b) => !b.fenced).length === 4, 30_000, "4 unfenced brokers");
    await admin.createTopics([{ name: TOPIC, partitions: 2, replicationFactor: 3, configs: { "min.insync.replicas": "2" } }]);
    const describe = async () => (await admin.describeTopics([TOPIC], { includeConfigs: false }))[0]!.partitions;
    const before = await until(
      async () => {
        const ps = await describe();
        return ps.every((p) => p.leader >= 0 && p.isr.length === 3) ? ps : false;
      },
      30_000,
      "both partitions fully in sync",
    );
    const p0 = before[0]!;
    const p1 = before[1]!;

    // 1. Bad input: each a specific error; nothing listed, nothing moved.
    const one = (topic: string, partition: number, replicas: number[] | null) =>
      admin.alterPartitionReassignments([{ topic, partition, replicas }]);
    expect(await errorOf(one(TOPIC, 0, [1, 2, 9]))).toBe("INVALID_REPLICA_ASSIGNMENT");
    expect(await errorOf(one(TOPIC, 0, [1, 2, 2]))).toBe("INVALID_REPLICA_ASSIGNMENT");
    expect(await errorOf(one(TOPIC, 0, []))).toBe("INVALID_REPLICA_ASSIGNMENT");
    expect(await errorOf(one("no-such-topic", 0, [1, 2, 3]))).toBe("UNKNOWN_TOPIC_OR_PARTITION");
    expect(await errorOf(one(TOPIC, 7, [1, 2, 3]))).toBe("UNKNOWN_TOPIC_OR_PARTITION");
    expect(await errorOf(one(TOPIC, 0, null))).toBe("NO_REASSIGNMENT_IN_PROGRESS");
    expect(await admin.listPartitionReassignments()).toEqual([]);
    expect((await describe()).map((p) => p.replicas)).toEqual([p0.replicas, p1.replicas]);

    // 2. An acks=all load on both partitions while partition 0 moves off its leader.
    const producer = new Producer({
      bootstrap,
      acks: "all",
      requestTimeoutMs: 15_000,
      random: new SeededRandom(SEED),
      retry: { retries: 60, backoffMsMax: 500 },
    });
    closers.push(() => producer.close());
    const acked: string[][] = [[], []];
    let failed = 0;
    let stop = false;
    let sent = 0;
    const load = (async () => {
      while (!stop) {
        const batch = Array.from({ length: 10 }, () => sent++);
        await Promise.all(
          batch.map(async (i) => {
            const partition = i % 2;
            const value = `v${i}`;
            try {
              await producer.send({ topic: TOPIC, partition, value });
              acked[partition]!.push(value);
            } catch {
              failed++;
            }
          }),
        );
      }
    })();
    await until(() => acked[0]!.length >= 200, 30_000, "200 acknowledged records before the move");

    const spare = [1, 2, 3, 4].find((id) => !p0.replicas.includes(id))!;
    const target = [spare, ...p0.replicas.filter((r) => r !== p0.leader)];
    console.log(`partition 0: [${p0.replicas.join(",")}] led by ${p0.leader} -> [${target.join(",")}]`);
    expect(await errorOf(one(TOPIC, 0, target))).toBe("no error");
    const moved = await until(
      async () => {
        const p = (await describe())[0]!;
        return (await admin.listPartitionReassignments()).length === 0 && p.isr.length === 3 ? p : false;
      },
      60_000,
      "partition 0's move to complete",
      200,
    );
    expect(moved.replicas).toEqual(target);
    expect([...moved.isr].sort()).toEqual([...target].sort());
    expect(target).toContain(moved.leader);
    expect(moved.leader).not.toBe(p0.leader);
    const removed = c.node(p0.leader);
    await until(() => !holdsPartition(removed.dataDir, `${TOPIC}-0`), 20_000, `node ${p0.leader} to delete its log of ${TOPIC}-0`);
    expect(holdsPartition(c.node(spare).dataDir, `${TOPIC}-0`)).toBe(true);
    const ackedAtMove = acked[0]!.length;
    await until(() => acked[0]!.length >= ackedAtMove + 100, 30_000, "100 more acknowledged records after the move");

    // 2b. A throttled move: 4 MiB onto a new replica take at least (4 MiB - one second's burst) / rate.
    await admin.createTopics([{ name: "bulk", partitions: 1, replicationFactor: 2, configs: { "min.insync.replicas": "1" } }]);
    const bulk0 = await until(
      async () => {
        const p = (await admin.describeTopics(["bulk"], { includeConfigs: false }))[0]!.partitions[0]!;
        return p.isr.length === 2 ? p : false;
      },
      30_000,
      "bulk-0 in sync",
    );
    const chunk = Buffer.alloc(64 << 10, 7);
    for (let i = 0; i < 64; i += 8)
      await Promise.all(Array.from({ length: 8 }, () => producer.send({ topic: "bulk", partition: 0, value: chunk })));
    const bulkBytes = 64 * chunk.length;
    const added = [1, 2, 3, 4].find((id) => !bulk0.replicas.includes(id))!;
    const moveStart = Date.now();
    expect(await errorOf(one("bulk", 0, [...bulk0.replicas, added]))).toBe("no error");
    await until(async () => (await admin.listPartitionReassignments([{ topic: "bulk" }])).length === 0, 60_000, "the throttled move", 50);
    const moveMs = Date.now() - moveStart;
    const rate = (bulkBytes / moveMs) * 1000;
    console.log(
      `throttled move: ${bulkBytes} bytes in ${moveMs} ms = ${(rate / 1048576).toFixed(2)} MiB/s (throttle ${(THROTTLE / 1048576).toFixed(2)} MiB/s)`,
    );
    expect(moveMs).toBeGreaterThanOrEqual(((bulkBytes - THROTTLE) / THROTTLE) * 1000 * 0.95);

    // 3. A move onto a broker that is down waits, and is cancelled.
    const down = [1, 2, 3, 4].find((id) => !p1.replicas.includes(id))!;
    await c.node(down).kill();
    await until(
      async () => (await admin.describeCluster()).brokers.find((b) => b.nodeId === down)?.fenced === true,
      30_000,
      `broker ${down} fenced`,
    );
    const p1Now = (await describe())[1]!;
    const target1 = [down, ...p1Now.replicas.slice(1)];
    expect(await errorOf(one(TOPIC, 1, target1))).toBe("no error");
    const listed = await admin.listPartitionReassignments([{ topic: TOPIC }]);
    expect(listed).toEqual([
      {
        topic: TOPIC,
        partition: 1,
        replicas: [...target1, p1Now.replicas[0]!],
        addingReplicas: [down],
        removingReplicas: [p1Now.replicas[0]!],
      },
    ]);
    expect((await describe())[1]!.isr).not.toContain(down);
    const cancelled = await admin.alterPartitionReassignments([{ topic: TOPIC, partition: 1, replicas: null }]);
    expect(cancelled[0]!.error).toBeNull();
    expect(await admin.listPartitionReassignments()).toEqual([]);
    const back = (await describe())[1]!;
    expect([...back.replicas].sort()).toEqual([...p1.replicas].sort());
    expect(back.isr).not.toContain(down);

    stop = true;
    await load;
    await c.node(down).start();

    // The Kafka listener (AlterPartitionReassignments 45, ListPartitionReassignments 46) with kafkajs's admin.
    const kjs = new kafkajs.Kafka({
      brokers: [...kafkaPorts.values()].map((p) => `127.0.0.1:${p}`),
      logLevel: kafkajs.logLevel.NOTHING,
      retry: { retries: 10 },
    }).admin();
    await kjs.connect();
    closers.push(() => kjs.disconnect());
    expect((await kjs.listPartitionReassignments({})).topics).toEqual([]);
    const bulkNow = (await admin.describeTopics(["bulk"], { includeConfigs: false }))[0]!.partitions[0]!;
    const reversed = [...bulkNow.replicas].reverse();
    await kjs.alterPartitionReassignments({ topics: [{ topic: "bulk", partitionAssignment: [{ partition: 0, replicas: reversed }] }] });
    // A reorder completes at once on the controller; the other brokers learn it from the metadata log.
    await until(
      async () => {
        const r = (await admin.describeTopics(["bulk"], { includeConfigs: false }))[0]!.partitions[0]!.replicas;
        return r.join() === reversed.join();
      },
      10_000,
      `the replicas of bulk-0 to become ${reversed.join()}`,
    );
    const refused = await kjs
      .alterPartitionReassignments({ topics: [{ topic: "bulk", partitionAssignment: [{ partition: 0, replicas: [1, 9] }] }] })
      .then(
        () => "no error",
        (e: { errors?: { type?: string }[] }) => e.errors?.[0]?.type ?? String(e),
      );
    expect(refused).toBe("INVALID_REPLICA_ASSIGNMENT");

    // 5. Every acknowledged record is in its partition, once.
    const ends = (await describe()).map((p) => p.highWatermark);
    const consumer = new Consumer({ bootstrap, maxWaitMs: 200, requestTimeoutMs: 10_000, retry: { retries: 20, backoffMsMax: 500 } });
    closers.push(() => consumer.close());
    consumer.assign([0, 1].map((partition) => ({ topic: TOPIC, partition, offset: "earliest" as const })));
    const got: string[][] = [[], []];
    const timer = setTimeout(() => void consumer.close(), 30_000);
    for await (const r of consumer) {
      got[r.partition]!.push(r.value!.toString());
      if (got.every((g, p) => g.length >= ends[p]!)) break;
    }
    clearTimeout(timer);
    for (const p of [0, 1]) {
      const inLog = new Set(got[p]);
      expect(inLog.size, `partition ${p}: no record twice`).toBe(got[p]!.length);
      const lost = acked[p]!.filter((v) => !inLog.has(v));
      if (lost.length > 0)
        console.log(
          `partition ${p}: read ${got[p]!.length} of high watermark ${ends[p]}; lost ${lost.join(",")} at acked positions ${lost.map((v) => acked[p]!.indexOf(v)).join(",")} of ${acked[p]!.length}; log tail ${got[p]!.slice(-8).join(",")}`,
        );
      expect(lost, `partition ${p}: acknowledged records missing`).toEqual([]);
    }
    console.log(
      `acknowledged ${acked[0]!.length} + ${acked[1]!.length} records (${failed} sends failed), all read back; ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );
  });
});
