/**
 * librdkafka across a leader's kill -9 on a 3-node cluster (issue 15, "What it must show"): each
 * node has its own Kafka listener; a topic of 3 partitions, replication factor 3,
 * min.insync.replicas 2. A confluent-kafka-python producer (Debian's /usr/bin/python3, its own
 * process: kafka-clients/python-failover-producer.py) with acks=all and enable.idempotence,
 * bootstrapping from node 1 only, sends RECORDS keyed, numbered values at a steady pace and prints
 * every delivery report. After a seeded number of acknowledgements the test kill -9s the leader
 * of a seeded partition, waits until the controller has moved that node's leaderships, and
 * starts it again. The producer must follow the new leaders through Metadata (the dead leader's
 * connection fails; a follower it still reaches answers NOT_LEADER_OR_FOLLOWER) and end without a
 * fatal error. Then every partition is read back over gRPC (the SDK Consumer) bootstrapping from
 * each node in turn, and:
 * - every acknowledged value is present exactly once, at the partition and offset librdkafka was
 *   told (idempotence: a re-sent batch is not appended twice);
 * - each partition's offsets run 0..high watermark without a gap, every value read is one the
 *   producer sent, in the partition its key maps to, at most once; values never acknowledged may
 *   be missing (or present once: a batch whose answer was lost with the leader).
 *
 * SEED=n replays the seeded choices (when to kill, which partition's leader); FAILOVER_RECORDS=n
 * changes the number of records.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { partitionForKey } from "../../src/base/murmur2.ts";
import { SeededRandom, seedFromEnv } from "../../src/base/random.ts";
import { Admin, type TopicDescription } from "../../src/client/admin.ts";
import { Consumer } from "../../src/client/consumer.ts";
import { Cluster, freePort, until } from "./cluster-harness.ts";
import { ROOT } from "./kafka-clients.ts";

const SEED = seedFromEnv();
const RECORDS = Number(process.env["FAILOVER_RECORDS"] ?? 3000);
const RATE_PER_S = Number(process.env["FAILOVER_RATE"] ?? 400);
const KEYS = 100;
/** FAILOVER_DEBUG=contexts: librdkafka's debug log (e.g. "msg,eos,topic"), written to a file in the temporary folder. */
const DEBUG = process.env["FAILOVER_DEBUG"] ?? "";
const TOPIC = "failover";
const PARTITIONS = 3;
const SCRIPT = path.join(ROOT, "test/integration/kafka-clients/python-failover-producer.py");

console.log(`kafka-failover SEED=${SEED} records=${RECORDS}`);

let cluster: Cluster | null = null;
const kafkaPorts = new Map<number, number>();
const kafkaOf = (id: number): string => `127.0.0.1:${kafkaPorts.get(id)}`;
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  for (const id of [1, 2, 3]) {
    let p = await freePort();
    while ([...kafkaPorts.values()].includes(p)) p = await freePort();
    kafkaPorts.set(id, p);
  }
  cluster = await Cluster.start({
    name: "rill-kafka-failover-",
    nodes: 3,
    nodeSet: (id) => ({ "kafka.listen": kafkaOf(id) }),
  });
  await cluster.waitForStable(20_000);
}, 40_000);

afterEach((ctx) => {
  if (ctx.task.result?.state === "fail" && cluster !== null) console.log(cluster.tails(30));
});

afterAll(async () => {
  for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
  await cluster?.close();
}, 30_000);

const valueAt = (i: number): string => `v${String(i).padStart(8, "0")}`;
const keyAt = (i: number): string => `k${i % KEYS}`;

/** What the producer process reported. */
interface ProducerRun {
  /** Acknowledged: value index → "partition/offset". */
  readonly acked: Map<number, string>;
  /** Not acknowledged: value index → error name. */
  readonly failed: Map<number, string>;
  /** Error callbacks ("NAME fatal=0|1"). */
  readonly errors: string[];
  /** The "D" line: messages left after flush and whether a fatal error came; null when it never ended. */
  end: { left: number; fatal: boolean } | null;
  code: number | null;
  stderr: string;
}

async function describeTopic(admin: Admin): Promise<TopicDescription> {
  return (await admin.describeTopics([TOPIC], { includeConfigs: false }))[0]!;
}

async function waitForFullIsr(admin: Admin, ms: number): Promise<TopicDescription> {
  return until(
    async () => {
      const t = await describeTopic(admin);
      return t.partitions.length === PARTITIONS && t.partitions.every((p) => p.leader >= 0 && p.isr.length === 3) ? t : false;
    },
    ms,
    `every partition of ${TOPIC} to have a leader and an ISR of 3`,
    200,
  );
}

/** Reads every partition from offset 0 up to its high watermark, bootstrapping from `node` only. */
async function readAll(bootstrap: string, atLeast: readonly number[], ms: number): Promise<{ offset: number; value: string }[][]> {
  const consumer = new Consumer({ bootstrap, maxWaitMs: 100, requestTimeoutMs: 5_000, retry: { retries: 20, backoffMsMax: 300 } });
  closers.push(() => consumer.close());
  consumer.assign(Array.from({ length: PARTITIONS }, (_, partition) => ({ topic: TOPIC, partition, offset: "earliest" as const })));
  const got: { offset: number; value: string }[][] = Array.from({ length: PARTITIONS }, () => []);
  const hw = (p: number): number => consumer.highWatermark({ topic: TOPIC, partition: p });
  const done = (): boolean =>
    got.every((g, p) => {
      const next = (g.at(-1)?.offset ?? -1) + 1;
      return hw(p) >= 0 && next >= hw(p) && next >= atLeast[p]!;
    });
  const deadline = setTimeout(() => void consumer.close(), ms);
  try {
    for await (const r of consumer) {
      got[r.partition]!.push({ offset: r.offset, value: r.value!.toString() });
      if (done()) break;
    }
  } finally {
    clearTimeout(deadline);
    await consumer.close();
  }
  if (!done()) throw new Error(`${bootstrap}: read ${got.map((g, p) => `${p}:${g.length}/${hw(p)}`).join(" ")} within ${ms} ms`);
  return got;
}

describe("librdkafka on a 3-node cluster", () => {
  it("an idempotent acks=all producer bootstrapping from one node loses and duplicates no acknowledged record across a leader's kill -9", async () => {
    const c = cluster!;
    const rnd = new SeededRandom(SEED);
    const admin = new Admin({ bootstrap: c.nodes.map((n) => n.address).join(","), requestTimeoutMs: 5_000 });
    closers.push(() => admin.close());
    await admin.createTopics([{ name: TOPIC, partitions: PARTITIONS, replicationFactor: 3, configs: { "min.insync.replicas": "2" } }]);
    const before = await waitForFullIsr(admin, 15_000);
    console.log(`leaders before: ${before.partitions.map((p) => `${p.partition}@${p.leader}(e${p.leaderEpoch})`).join(" ")}`);

    const killAfter = Math.floor(RECORDS * (0.15 + 0.35 * rnd.next()));
    const victimPartition = rnd.int(PARTITIONS);
    const t0 = Date.now();
    const timeline: string[] = [];
    const run: ProducerRun = { acked: new Map(), failed: new Map(), errors: [], end: null, code: null, stderr: "" };
    const mark = (what: string): void =>
      void timeline.push(`${((Date.now() - t0) / 1000).toFixed(1)}s ${what} (${run.acked.size} acked, ${run.failed.size} failed)`);

    const child = spawn("/usr/bin/python3", [SCRIPT, kafkaOf(1), TOPIC, String(RECORDS), String(RATE_PER_S), String(KEYS), DEBUG], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    closers.push(async () => void child.kill("SIGKILL"));
    let chaos: Promise<number> | null = null;
    /** Whether the victim was killed, and how many acknowledgements its partition had since. */
    let killed = false;
    let ackedAfterKill = 0;
    const startChaos = async (): Promise<number> => {
      const victim = (await describeTopic(admin)).partitions[victimPartition]!.leader;
      const node = c.node(victim);
      mark(`kill -9 node ${victim} (leader of partition ${victimPartition})`);
      killed = true;
      await node.kill();
      await until(
        async () => (await describeTopic(admin)).partitions.every((p) => p.leader >= 0 && p.leader !== victim),
        15_000,
        `leaders of ${TOPIC} to move off node ${victim}`,
        100,
      );
      mark(`leaders moved off node ${victim}`);
      await node.start();
      mark(`node ${victim} restarted`);
      return victim;
    };
    let buf = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const [kind, a, b, c2] = buf.slice(0, nl).split(" ");
        buf = buf.slice(nl + 1);
        if (kind === "A") {
          run.acked.set(Number(a), `${b}/${c2}`);
          if (killed && Number(b) === victimPartition) ackedAfterKill++;
        } else if (kind === "N") run.failed.set(Number(a), b!);
        else if (kind === "F") run.errors.push(`${a} ${b}`);
        else if (kind === "D") run.end = { left: Number(a), fatal: b === "fatal=1" };
        if (chaos === null && run.acked.size >= killAfter) {
          chaos = startChaos();
          chaos.catch(() => undefined); // awaited below
        }
      }
    });
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (d: string) => void (run.stderr += d));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    const timer = setTimeout(() => child.kill("SIGKILL"), 90_000); // a bound: two test files share 2 cores
    run.code = await exited;
    clearTimeout(timer);
    mark(`producer exited ${run.code}`);
    if (DEBUG !== "") {
      const file = path.join(os.tmpdir(), `rill-kafka-failover-${SEED}-librdkafka.log`);
      fs.writeFileSync(file, run.stderr);
      console.log(`librdkafka debug log: ${file}`);
    }
    expect(chaos, `the kill was due after ${killAfter} acknowledgements`).not.toBeNull();
    const victim = await chaos!;
    console.log(`victim: node ${victim}, after ${killAfter} acks; timeline: ${timeline.join("; ")}`);
    console.log(`producer: ${run.acked.size} acked, ${run.failed.size} failed, errors: ${run.errors.join(", ") || "none"}`);
    const failedNames = new Map<string, number>();
    for (const e of run.failed.values()) failedNames.set(e, (failedNames.get(e) ?? 0) + 1);
    if (failedNames.size > 0) console.log(`not acknowledged: ${JSON.stringify(Object.fromEntries(failedNames))}`);

    // The producer ended on its own, nothing left queued, no fatal error (the idempotent producer did not give up).
    expect([run.code, run.end], run.stderr.slice(-2000)).toEqual([0, { left: 0, fatal: false }]);
    expect(run.errors.filter((e) => e.endsWith("fatal=1"))).toEqual([]);
    expect(run.acked.size + run.failed.size).toBe(RECORDS);
    // It followed the partition's new leader: acknowledgements for that partition went on after the kill
    // (all but a last few answers in flight as the leader died came from the new leader).
    console.log(`partition ${victimPartition}: ${ackedAfterKill} acknowledged after its leader was killed`);
    expect(ackedAfterKill).toBeGreaterThan(0);

    const after = await waitForFullIsr(admin, 20_000);
    console.log(`leaders after: ${after.partitions.map((p) => `${p.partition}@${p.leader}(e${p.leaderEpoch})`).join(" ")}`);
    expect(after.partitions[victimPartition]!.leaderEpoch).toBeGreaterThan(before.partitions[victimPartition]!.leaderEpoch);

    const atLeast = Array.from({ length: PARTITIONS }, () => 0);
    for (const at of run.acked.values()) {
      const [p, o] = at.split("/").map(Number) as [number, number];
      atLeast[p] = Math.max(atLeast[p]!, o + 1);
    }
    for (const node of c.running) {
      const log = await readAll(node.address, atLeast, 15_000);
      const problems: string[] = [];
      const where = new Map<number, string>();
      log.forEach((records, partition) => {
        records.forEach((r, k) => {
          const at = `${partition}/${r.offset}`;
          const i = Number(r.value.slice(1));
          if (r.offset !== k) problems.push(`${at}: offset ${r.offset} at position ${k} (gap or repeat)`);
          if (!(Number.isInteger(i) && i >= 0 && i < RECORDS) || r.value !== valueAt(i))
            problems.push(`${at}: unexpected value ${r.value}`);
          else if (partitionForKey(Buffer.from(keyAt(i)), PARTITIONS) !== partition)
            problems.push(`${at}: value ${i} in the wrong partition`);
          if (where.has(i)) problems.push(`${at}: value ${i} also at ${where.get(i)} (duplicate)`);
          where.set(i, at);
        });
      });
      for (const [i, at] of run.acked) {
        const read = where.get(i);
        if (read === undefined) problems.push(`value ${i}: acknowledged at ${at} but not read (lost)`);
        else if (read !== at) problems.push(`value ${i}: acknowledged at ${at} but read at ${read}`);
      }
      const extra = [...where.keys()].filter((i) => !run.acked.has(i)).length;
      console.log(
        `read back via node ${node.id}: ${log.map((g, p) => `${p}:${g.length}`).join(" ")}; ${extra} present but not acknowledged`,
      );
      expect(problems.slice(0, 10), `via node ${node.id}: ${problems.length} problems`).toEqual([]);
    }
  }, 110_000);
});
