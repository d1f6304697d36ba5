/**
 * `rill broker decommission` and `rill cluster rebalance` (issue 21, item 2) on a real 4-node
 * cluster, under an acks=all idempotent load: decommissioning node 4 moves every replica off it
 * (and nothing else), a rebalance then spreads replicas and preferred leaders back over all four
 * (the balance printed before and after), and every acknowledged record is read back once.
 * Bad input — an unknown broker, a drain that would leave a partition too few brokers — is refused
 * before anything moves.
 *
 * Cordoned brokers (issue 21): the decommission cordons node 4 first, so a topic created while it
 * drains gets no replica there; a rebalance while 4 is cordoned plans nothing onto it; once
 * `broker uncordon 4` runs, a new topic uses it again.
 */
import * as nodeFs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Admin } from "../../src/client/admin.ts";
import { Consumer } from "../../src/client/consumer.ts";
import { Producer } from "../../src/client/producer.ts";
import { runRill } from "./cli-run.ts";
import { Cluster, until } from "./cluster-harness.ts";

const TOPIC = "bal";
const PARTITIONS = 8;

let cluster: Cluster;
let admin: Admin;

/** Runs `bin/rill args` against node 1. */
const rill = (args: readonly string[], timeoutMs = 120_000) => runRill(args, timeoutMs, { RILL_BOOTSTRAP: cluster.nodes[0]!.address });

async function replicasOf(topic: string): Promise<number[][]> {
  const [t] = await admin.describeTopics([topic], { includeConfigs: false });
  return t!.partitions.map((p) => [...p.replicas]);
}

beforeAll(async () => {
  cluster = await Cluster.start({ name: "rill-balance-", nodes: 4 });
  await cluster.waitForStable(30_000);
  admin = cluster.nodes[0]!.admin({ retries: 20 });
  await until(
    () =>
      admin.createTopics([{ name: TOPIC, partitions: PARTITIONS, replicationFactor: 2, configs: { "min.insync.replicas": "1" } }]).then(
        () => true,
        (e: unknown) => /TOPIC_ALREADY_EXISTS/.test(String(e)) || (/NOT_CONTROLLER/.test(String(e)) ? false : Promise.reject(e)),
      ),
    30_000,
    `topic ${TOPIC} created`,
    300,
  );
  await until(
    async () => {
      const [t] = await admin.describeTopics([TOPIC], { includeConfigs: false });
      return t!.partitions.every((p) => p.leader >= 0 && p.isr.length === 2);
    },
    30_000,
    `${TOPIC} led with full ISRs`,
    200,
  );
}, 120_000);

afterEach((ctx) => {
  if (ctx.task.result?.state === "fail") console.log(cluster.tails(30));
});

afterAll(async () => {
  await admin?.close();
  await cluster?.close();
}, 60_000);

describe("decommission and rebalance", () => {
  it("bad input is refused before anything moves", async () => {
    const before = await replicasOf(TOPIC);
    const unknown = await rill(["broker", "decommission", "9"]);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/broker 9 is not a registered, unfenced broker.*nothing moved/);
    const twice = await rill(["broker", "decommission", "4", "4"]);
    expect(twice.code).not.toBe(0);
    expect(twice.stderr).toMatch(/node 4 is named twice/);
    const wide = "bal-wide";
    await admin.createTopics([{ name: wide, partitions: 1, replicationFactor: 4 }]);
    const tooFew = await rill(["broker", "decommission", "2"]);
    expect(tooFew.code).not.toBe(0);
    expect(tooFew.stderr).toMatch(/bal-wide-0 has 4 replicas .* only 3 broker\(s\) would remain.*nothing moved/);
    await admin.deleteTopics([wide]);
    expect(await replicasOf(TOPIC)).toEqual(before);
    expect(await admin.listPartitionReassignments()).toEqual([]);
    // issue 21: a refused decommission cordons nothing; cordoning a node that never registered is refused
    expect((await admin.describeCluster()).brokers.filter((b) => b.cordoned)).toEqual([]);
    const ghost = await rill(["broker", "cordon", "9"]);
    expect(ghost.code).not.toBe(0);
    expect(ghost.stderr).toMatch(
      /broker cordon: broker 9: .*no broker with node id 9 ever registered \(BROKER_ID_NOT_REGISTERED\); nothing changed/,
    );
  }, 60_000);

  it("decommission 4 under load, then rebalance back over four brokers; every acknowledged record read once", async () => {
    const producer = new Producer({ bootstrap: cluster.nodes.map((n) => n.address).join(","), acks: "all", idempotent: true, lingerMs: 5 });
    const acked: string[] = [];
    let failed = 0;
    let stop = false;
    const load = (async () => {
      for (let i = 0; !stop; i++) {
        await producer.send({ topic: TOPIC, partition: i % PARTITIONS, value: `v${i}` }).then(
          () => acked.push(`v${i}`),
          () => failed++,
        );
      }
    })();
    try {
      const before = await replicasOf(TOPIC);
      const untouched = before.map((r, p) => (r.includes(4) ? -1 : p)).filter((p) => p >= 0);
      const decommissioning = rill(["broker", "decommission", "4", "--timeout-ms", "90000"]);
      // issue 21: once 4 is cordoned (the decommission's first change), a topic created meanwhile gets no replica there.
      await until(
        async () => (await admin.describeCluster()).brokers.find((b) => b.nodeId === 4)?.cordoned === true,
        60_000,
        "broker 4 cordoned by the decommission",
        100,
      );
      await admin.createTopics([{ name: "bal-during", partitions: 8, replicationFactor: 3 }]);
      for (const r of await replicasOf("bal-during")) expect(r).not.toContain(4);
      const dec = await decommissioning;
      expect(dec.code, dec.stderr).toBe(0);
      expect(dec.stdout).toMatch(/^Cordoned broker 4: new replicas go to other brokers/);
      expect(dec.stdout).toMatch(/Broker 4 holds no replica any more/);
      const drained = await replicasOf(TOPIC);
      for (const r of drained) expect(r).not.toContain(4);
      for (const p of untouched) expect(drained[p]).toEqual(before[p]); // a decommission moves nothing else
      // Still cordoned: `cluster status` says so, and a rebalance plans nothing onto 4.
      expect((await rill(["cluster", "status"])).stdout).toMatch(/^Cordoned \(given no new replicas\): 4$/m);
      const whileCordoned = await rill(["cluster", "rebalance", "--json"]);
      expect(whileCordoned.code, whileCordoned.stderr).toBe(0);
      for (const m of (JSON.parse(whileCordoned.stdout) as { moves: { replicas: number[] }[] }).moves) expect(m.replicas).not.toContain(4);
      await admin.deleteTopics(["bal-during"]);
      const uncordon = await rill(["broker", "uncordon", "4"]);
      expect(uncordon).toMatchObject({ code: 0, stdout: "Uncordoned broker 4: it takes new replicas again.\n" });
      // Uncordoned: a new topic may use 4 again (8 partitions of 3 replicas over 4 brokers: 6 of them there).
      await admin.createTopics([{ name: "bal-after", partitions: 8, replicationFactor: 3 }]);
      expect((await replicasOf("bal-after")).filter((r) => r.includes(4)).length).toBeGreaterThan(0);
      await admin.deleteTopics(["bal-after"]);

      const plan = await rill(["cluster", "rebalance", "--json"]);
      expect(plan.code, plan.stderr).toBe(0);
      const planned = JSON.parse(plan.stdout) as {
        moves: unknown[];
        before: { replicas: Record<string, number> };
        after: { replicaSpread: number; leaderSpread: number };
      };
      expect(planned.before.replicas["4"]).toBe(0);
      expect(planned.moves.length).toBeGreaterThan(0);
      expect(await replicasOf(TOPIC)).toEqual(drained); // a plan changes nothing
      // --plan FILE writes Kafka's reassignment JSON, which `partitions reassign --plan FILE` reads.
      const planFile = path.join(nodeFs.mkdtempSync(path.join(os.tmpdir(), "rill-rebalance-")), "plan.json");
      const both = await rill(["cluster", "rebalance", "--plan", planFile, "--execute"]);
      expect(both.code).not.toBe(0);
      expect(both.stderr).toMatch(/give one of them/);
      expect(nodeFs.existsSync(planFile)).toBe(false);
      const written = await rill(["cluster", "rebalance", "--plan", planFile]);
      expect(written.code, written.stderr).toBe(0);
      expect((JSON.parse(nodeFs.readFileSync(planFile, "utf8")) as { partitions: unknown[] }).partitions).toHaveLength(
        planned.moves.length,
      );
      const shown = await rill(["partitions", "reassign", "--plan", planFile]);
      expect(shown.code, shown.stderr).toBe(0);
      expect(await replicasOf(TOPIC)).toEqual(drained);
      const run = await rill(["cluster", "rebalance", "--execute"]);
      expect(run.code, run.stderr).toBe(0);
      await until(async () => (await admin.listPartitionReassignments()).length === 0, 90_000, "the rebalance's moves to complete", 500);
      const after = await rill(["cluster", "rebalance", "--json"]);
      const balanced = JSON.parse(after.stdout) as {
        moves: unknown[];
        before: { replicaSpread: number; leaderSpread: number; replicas: Record<string, number> };
      };
      expect(balanced.before.replicas["4"]).toBeGreaterThan(0);
      expect(balanced.before.replicaSpread).toBeLessThanOrEqual(1);
      expect(balanced.before.leaderSpread).toBeLessThanOrEqual(1);
      expect(balanced.moves).toEqual([]);
    } finally {
      stop = true;
      await load;
      await producer.close();
    }
    expect(acked.length).toBeGreaterThan(0);
    console.log(`balance: ${acked.length} records acknowledged, ${failed} sends failed`);
    // Every acknowledged record once: read until each is seen (bounded), then look for duplicates.
    const consumer = new Consumer({ bootstrap: cluster.nodes.map((n) => n.address).join(","), maxWaitMs: 200 });
    const seen = new Map<string, number>();
    const wanted = new Set(acked);
    try {
      consumer.assign(Array.from({ length: PARTITIONS }, (_, partition) => ({ topic: TOPIC, partition, offset: 0 })));
      const deadline = Date.now() + 60_000;
      for await (const r of consumer) {
        const v = Buffer.from(r.value!).toString();
        seen.set(v, (seen.get(v) ?? 0) + 1);
        wanted.delete(v);
        if (wanted.size === 0 || Date.now() > deadline) break;
      }
    } finally {
      await consumer.close();
    }
    for (const v of acked) expect(seen.get(v), v).toBe(1);
    for (const [v, n] of seen) expect(n, v).toBe(1);
  }, 240_000);
});
