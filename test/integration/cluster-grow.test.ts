/**
 * Growing a cluster from 3 nodes to 5 and shrinking it back under load (issue 21, "What it must
 * show", first bullet), judged by the fault test's checker (test/faults/checker.ts).
 *
 * Nodes 1-3 are combined broker + controller voters; nodes 4 and 5 are broker-only nodes started
 * later. Topic `faults` (6 partitions, RF 3, min.insync.replicas 2) is filled with 12 MiB of bulk
 * records (32 KiB keys, short unique values) so that the moves last: every node throttles the
 * replicas being added at 1 MiB/s each way, as reassignment.test.ts does, so a move of B bytes
 * onto a broker takes at least (B - 1 MiB) / 1 MiB/s.
 *
 * 1. Load: an idempotent acks=all SDK producer (4 lanes, 1-3 records in flight each, seeded
 *    partitions and pauses) writes unique values; the fault workload's raw Fetch consumers
 *    (workload.ts) poll through random nodes; a GroupConsumer reads the topic in a group.
 *    Everything acknowledged and read goes into one History.
 * 2. Grow: nodes 4 and 5 start; `rill cluster rebalance --execute --json` plans and starts the
 *    moves (the balance before and after printed); right away one node that is a source or a
 *    target of a move in flight (chosen by the seed) is killed with SIGKILL, waited fenced, and
 *    started again; every move completes and a new plan finds the cluster balanced (replica and
 *    preferred-leader spreads <= 1, nothing to move, nodes 4 and 5 holding replicas).
 * 3. Shrink: `rill broker decommission 4 5` drains both; they are stopped (SIGTERM).
 * 4. The group made progress after each phase. The load stops, the cluster settles (every
 *    partition led with an ISR of 1-3 and one high watermark), every partition is read back
 *    through each of nodes 1-3, and the checker finds no lost, duplicated, inconsistent or
 *    reordered record.
 *
 * SEED=n replays the seeded choices (printed); the cluster's timing still varies. Waits are
 * bounds, never measurements.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { SeededRandom, seedFromEnv } from "../../src/base/random.ts";
import { Admin } from "../../src/client/admin.ts";
import { GroupConsumer } from "../../src/client/group-consumer.ts";
import { Producer } from "../../src/client/producer.ts";
import { check } from "../faults/checker.ts";
import { NodeClients } from "../faults/clients.ts";
import { createReplicatedTopic, finalRead, waitSettled } from "../faults/engine.ts";
import { newHistory, type Read, type Write } from "../faults/history.ts";
import { anomalyLine } from "../faults/report.ts";
import { startLoad } from "../faults/workload.ts";
import { runRill } from "./cli-run.ts";
import { Cluster, sleep, until } from "./cluster-harness.ts";

const SEED = seedFromEnv();
/** The fault engine's topic name: its settle wait and final read-back are reused. */
const TOPIC = "faults";
const PARTITIONS = 6;
/** Bulk records per partition (32 KiB keys): 2 MiB per partition, 12 MiB in all. */
const BULK_RECORDS = 64;
const BULK_KEY = "k".repeat(32 << 10);
/** Replication throttle of every node, bytes/s (reassignment.test.ts's). */
const THROTTLE = 1 << 20;
/** Most values the load attempts (bounded whatever the machine's speed). */
const LOAD_MAX = 150_000;
const LANES = 4;
const GROUP = "grow-group";

let cluster: Cluster | null = null;
const closers: Array<() => Promise<unknown>> = [];

afterEach((ctx) => {
  if (ctx.task.result?.state === "fail" && cluster) console.log(cluster.tails(25));
});

afterAll(async () => {
  for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
  await cluster?.close();
}, 60_000);

interface PlanJson {
  readonly moves: { topic: string; partition: number; replicas: number[]; current: number[] }[];
  readonly before: { replicas: Record<string, number>; leaders: Record<string, number>; replicaSpread: number; leaderSpread: number };
  readonly after: { replicas: Record<string, number>; leaders: Record<string, number>; replicaSpread: number; leaderSpread: number };
}

function balanceText(label: string, b: PlanJson["before"]): string {
  const per = (m: Record<string, number>) =>
    Object.entries(m)
      .map(([id, n]) => `${id}:${n}`)
      .join(" ");
  return `${label}: replicas ${per(b.replicas)} (spread ${b.replicaSpread}); preferred leaders ${per(b.leaders)} (spread ${b.leaderSpread})`;
}

describe("grow 3 -> 5 -> 3 under an acks=all idempotent load (issue 21)", () => {
  it("rebalances onto two new brokers through a kill -9 mid-move, decommissions them, loses nothing", { timeout: 300_000 }, async () => {
    console.log(`cluster-grow SEED=${SEED} (SEED=n replays the seeded choices)`);
    const rnd = new SeededRandom(SEED);
    const laneRnd = rnd.fork();
    const consumerRnd = rnd.fork();
    const victimRnd = rnd.fork();
    const t00 = Date.now();
    const phase = (what: string) => console.log(`+${((Date.now() - t00) / 1000).toFixed(1)} s ${what}`);

    cluster = await Cluster.start({
      name: "rill-grow-",
      nodes: 5,
      voters: 3,
      deferred: [4, 5],
      nodeSet: (id) => (id > 3 ? { "process.roles": "broker" } : {}),
      set: {
        "replica.lag.time.max.ms": 3000,
        "leader.replication.throttled.rate": THROTTLE,
        "follower.replication.throttled.rate": THROTTLE,
        "group.initial.rebalance.delay.ms": 0,
      },
    });
    const c = cluster;
    await c.waitForStable(60_000);
    const bootstrap = [1, 2, 3].map((id) => c.node(id).address).join(",");
    const rill = (args: readonly string[]) => runRill(args, 150_000, { RILL_BOOTSTRAP: bootstrap });
    // Every node of 1-3 as bootstrap: the victim of the kill may be any of them.
    const admin = new Admin({ bootstrap, requestTimeoutMs: 15_000, retry: { retries: 30, backoffMsMax: 500 } });
    closers.push(() => admin.close());
    await createReplicatedTopic(admin, TOPIC, PARTITIONS);
    const clients = new Map([1, 2, 3, 4, 5].map((id) => [id, new NodeClients(id, c.node(id).address)]));
    closers.push(async () => {
      for (const cl of clients.values()) cl.close();
    });
    const first3 = new Map([1, 2, 3].map((id) => [id, clients.get(id)!]));
    await waitSettled(first3, PARTITIONS, 60_000);
    phase("3 nodes up, topic in sync");

    const h = newHistory();
    const t0 = Date.now();
    const producer = new Producer({
      bootstrap,
      acks: "all",
      idempotent: true,
      lingerMs: 2,
      requestTimeoutMs: 15_000,
      random: rnd.fork(),
      retry: { retries: 100, backoffMsMax: 500 },
    });
    closers.push(() => producer.close());
    const record = (w: Write, p: Promise<{ partition: number; offset: number }>) =>
      p
        .then(
          (md) => (w.outcome = { kind: "ok", partition: md.partition, offset: md.offset }),
          // The SDK retried (idempotently) and gave up: whether some attempt was written is unknown.
          (e: unknown) => (w.outcome = { kind: "unknown", reason: `SDK: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}` }),
        )
        .finally(() => (w.doneAtMs = Date.now() - t0));
    const newWrite = (value: string, producerId: number, partition: number): Write => {
      const w: Write = { value, producer: producerId, partition, node: 0, sentAtMs: Date.now() - t0, doneAtMs: -1, outcome: null };
      h.writes.set(value, w);
      return w;
    };

    // Bulk: what the moves carry (the short values are checked like any other).
    for (let p = 0; p < PARTITIONS; p++) {
      await Promise.all(
        Array.from({ length: BULK_RECORDS }, (_, i) => {
          const w = newWrite(`b${p}-${i}`, 0, p);
          return record(w, producer.send({ topic: TOPIC, partition: p, key: BULK_KEY, value: w.value }));
        }),
      );
    }
    const bulkFailed = [...h.writes.values()].filter((w) => w.outcome?.kind !== "ok").length;
    expect(bulkFailed, "bulk records not acknowledged").toBe(0);
    phase(`bulk: ${PARTITIONS * BULK_RECORDS} records of 32 KiB acknowledged`);

    // The load: idempotent lanes, the workload's raw Fetch consumers, a group consumer.
    let stopped = false;
    let attempted = 0;
    const lanes = Array.from({ length: LANES }, async (_, k) => {
      const id = k + 1;
      const r = laneRnd.fork();
      let n = 0;
      while (!stopped && attempted < LOAD_MAX) {
        const partition = r.int(PARTITIONS);
        const count = 1 + r.int(3);
        attempted += count;
        await Promise.all(
          Array.from({ length: count }, () => {
            const w = newWrite(`p${id}-${n++}`, id, partition);
            return record(w, producer.send({ topic: TOPIC, partition, value: w.value }));
          }),
        );
        const pause = r.int(21);
        if (pause > 0) await sleep(pause);
      }
    });
    const readers = startLoad(
      {
        topic: TOPIC,
        partitions: PARTITIONS,
        producers: 0,
        consumers: 2,
        batchMax: 1,
        produceTimeoutMs: 2_000,
        produceDeadlineMs: 5_000,
        pauseMaxMs: 10,
      },
      clients,
      h,
      t0,
      consumerRnd,
    );
    /** The group's current read of each partition (one History read per partition and assignment). */
    const segments = new Map<number, { offsets: number[]; values: string[] }>();
    const group = new GroupConsumer({
      bootstrap,
      groupId: GROUP,
      autoOffsetReset: "earliest",
      sessionTimeoutMs: 6_000,
      requestTimeoutMs: 15_000,
      random: rnd.fork(),
      retry: { retries: 1000, backoffMsMax: 1_000 },
      // A new assignment starts new reads: within one, the group's offsets must be dense and rising.
      onAssigned: () => segments.clear(),
      onRevoked: () => segments.clear(),
    });
    closers.push(() => group.close());
    group.subscribe([TOPIC]);
    let groupRecords = 0;
    let groupError: unknown = null;
    const groupLoop = (async () => {
      for await (const r of group) {
        let seg = segments.get(r.partition);
        if (!seg) {
          seg = { offsets: [], values: [] };
          segments.set(r.partition, seg);
          const read: Read = { reader: "group", node: 0, partition: r.partition, from: r.offset, atMs: Date.now() - t0, ...seg };
          h.reads.push(read);
        }
        seg.offsets.push(r.offset);
        seg.values.push(r.value!.toString("utf8"));
        groupRecords++;
      }
    })().catch((e: unknown) => (groupError = e));
    const acked = () => [...h.writes.values()].filter((w) => w.outcome?.kind === "ok").length;
    /** Waits until the group has read more than `mark` records (the phase's progress). */
    const groupProgress = async (mark: number, what: string) => {
      // A failed group consumer fails the phase at once, with its own error (not a timeout).
      await until(() => groupError !== null || groupRecords > mark + 50, 60_000, `the group to keep consuming ${what}`, 200);
      if (groupError !== null) throw groupError;
      phase(`group consumer progressed ${what}: ${groupRecords} records read (${groupRecords - mark} in the phase)`);
      return groupRecords;
    };

    let mark = await groupProgress(0, "on 3 nodes");
    await until(() => acked() >= PARTITIONS * BULK_RECORDS + 300, 60_000, "300 load records acknowledged on 3 nodes", 200);

    try {
      // 2. Grow: nodes 4 and 5 join; the rebalance moves replicas onto them.
      await Promise.all([c.node(4).start(), c.node(5).start()]);
      await until(
        async () => (await admin.describeCluster()).brokers.filter((b) => !b.fenced).length === 5,
        60_000,
        "5 unfenced brokers",
        200,
      );
      phase("nodes 4 and 5 registered");
      const execute = await rill(["cluster", "rebalance", "--execute", "--json"]);
      expect(execute.code, execute.stderr).toBe(0);
      const plan = JSON.parse(execute.stdout) as PlanJson;
      const inFlight = await admin.listPartitionReassignments();
      console.log(balanceText("balance before the rebalance", plan.before));
      console.log(balanceText("planned balance", plan.after));
      console.log(`${plan.moves.length} moves started (${plan.moves.filter((m) => m.topic === TOPIC).length} of ${TOPIC})`);
      expect(plan.before.replicas["4"]).toBe(0);
      expect(plan.before.replicas["5"]).toBe(0);
      expect(plan.after.replicaSpread).toBeLessThanOrEqual(1);
      expect(plan.after.leaderSpread).toBeLessThanOrEqual(1);

      // Kill a source or target of a move of the topic still in flight (the throttle keeps them going for seconds).
      const moving = inFlight.filter((m) => m.topic === TOPIC);
      expect(moving.length, `moves of ${TOPIC} in flight right after --execute`).toBeGreaterThan(0);
      const involved = [...new Set(moving.flatMap((m) => [...m.addingReplicas, ...m.removingReplicas]))].sort((a, b) => a - b);
      const victim = involved[victimRnd.int(involved.length)]!;
      const roles = moving
        .filter((m) => m.addingReplicas.includes(victim) || m.removingReplicas.includes(victim))
        .map((m) => `${m.topic}-${m.partition} ${m.addingReplicas.includes(victim) ? "target" : "source"}`);
      await c.node(victim).kill();
      phase(`killed node ${victim} (kill -9) mid-move: ${roles.join(", ")}`);
      await until(
        async () => (await admin.describeCluster()).brokers.find((b) => b.nodeId === victim)?.fenced === true,
        30_000,
        `node ${victim} fenced`,
        200,
      );
      await c.node(victim).start();
      phase(`node ${victim} started again`);
      await until(async () => (await admin.listPartitionReassignments()).length === 0, 120_000, "every move to complete", 500);
      phase("every move completed");
      const balanced = await rill(["cluster", "rebalance", "--json"]);
      expect(balanced.code, balanced.stderr).toBe(0);
      const now = JSON.parse(balanced.stdout) as PlanJson;
      console.log(balanceText("balance after the rebalance", now.before));
      expect(now.before.replicaSpread).toBeLessThanOrEqual(1);
      expect(now.before.leaderSpread).toBeLessThanOrEqual(1);
      expect(now.before.replicas["4"]).toBeGreaterThan(0);
      expect(now.before.replicas["5"]).toBeGreaterThan(0);
      expect(now.moves).toEqual([]);
      mark = await groupProgress(mark, "through the rebalance and the kill");

      // 3. Shrink: drain 4 and 5 together, then stop them.
      const dec = await rill(["broker", "decommission", "4", "5", "--timeout-ms", "120000"]);
      expect(dec.code, dec.stderr).toBe(0);
      expect(dec.stdout).toMatch(/Brokers 4, 5 hold no replica any more/);
      const [t] = await admin.describeTopics([TOPIC], { includeConfigs: false });
      for (const p of t!.partitions) expect([...p.replicas].sort()).toEqual([1, 2, 3]);
      expect(await c.node(4).terminate()).toBe(0);
      expect(await c.node(5).terminate()).toBe(0);
      phase("nodes 4 and 5 decommissioned and stopped");
      mark = await groupProgress(mark, "through the decommission");
    } finally {
      stopped = true;
      await Promise.all(lanes);
      await readers.stop();
    }
    const loadMs = Date.now() - t0;

    // 4. Settle on nodes 1-3, read everything back through each, check.
    const hws = await waitSettled(first3, PARTITIONS, 90_000);
    await finalRead(first3, h, hws, t0);
    await group.close().catch(() => undefined); // a last commit refused does not matter here
    await groupLoop;
    const result = check(h);
    const co = result.counts;
    console.log(
      `load ${(loadMs / 1000).toFixed(1)} s: ${co.attempted} values attempted, ${co.acknowledged} acknowledged, ${co.unknown} unknown ` +
        `(${co.unknownPresent} of them in the log) ${JSON.stringify(co.unknownBy)}; consumers read ${co.consumerRecords} ` +
        `(group ${groupRecords}); read back ${co.finalRecords} through 3 nodes; ${anomalyLine(result.anomalies)}; total ${((Date.now() - t00) / 1000).toFixed(1)} s`,
    );
    if (result.total > 0) console.log(JSON.stringify(result.anomalies, null, 1).slice(0, 4000));
    expect(co.acknowledged).toBeGreaterThan(PARTITIONS * BULK_RECORDS + 300);
    expect(result.total, anomalyLine(result.anomalies)).toBe(0);
  });
});
