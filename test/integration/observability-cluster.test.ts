/**
 * Observability of a 3-node cluster (issue 16), real broker processes with an HTTP listener
 * each: `rill_controller_active` is 1 on exactly one node; a stalled group's
 * `rill_consumer_group_lag` equals high watermark − committed on its coordinator, which neither
 * leads nor holds the partition; `rill_under_replicated_partitions` rises when a follower stops
 * and falls back to 0 when it returns.
 */
import { create } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GroupAdmin } from "../../src/client/group-admin.ts";
import { OFFSETS_TOPIC, offsetsPartitionFor } from "../../src/coordinator/group-runtime.ts";
import { ProduceRequestSchema } from "../../src/gen/rill/v1/produce_service_pb.ts";
import { Cluster, freePort, until } from "./cluster-harness.ts";
import { scrape, sample } from "./prom-text.ts";
import { call, clients } from "./rpc-helpers.ts";

let cluster: Cluster;
const httpPorts = new Map<number, number>();
const base = (id: number): string => `http://127.0.0.1:${httpPorts.get(id)!}`;

beforeAll(async () => {
  for (const id of [1, 2, 3]) {
    let p = await freePort();
    while ([...httpPorts.values()].includes(p)) p = await freePort();
    httpPorts.set(id, p);
  }
  cluster = await Cluster.start({
    nodes: 3,
    name: "rill-obs-",
    set: { "replica.lag.time.max.ms": 1500 },
    nodeSet: (id) => ({ "http.listen": `127.0.0.1:${httpPorts.get(id)!}` }),
  });
  await cluster.waitForStable(30_000);
}, 60_000);

afterAll(async () => {
  await cluster?.close();
});

/** The sum of `name` over the nodes `ids` (a node that does not answer counts as an error). */
async function clusterSum(ids: readonly number[], name: string): Promise<number> {
  const bodies = await Promise.all(ids.map((id) => scrape(base(id))));
  return bodies.reduce((n, b) => n + (sample(b, name) ?? 0), 0);
}

describe("cluster metrics", () => {
  it("controller_active is 1 on exactly one node, the one every node names; raft_term agrees", async () => {
    const stable = await cluster.waitForStable(20_000);
    const bodies = await Promise.all([1, 2, 3].map((id) => scrape(base(id))));
    const active = bodies.map((b) => sample(b, "rill_controller_active"));
    expect(active.filter((v) => v === 1)).toHaveLength(1);
    expect(active.filter((v) => v === 0)).toHaveLength(2);
    expect(active[stable.leader - 1]).toBe(1);
    for (const b of bodies) expect(sample(b, "rill_raft_term")).toBe(stable.term);
  });

  it("lag = high watermark - committed for a stalled group whose coordinator does not hold the partition", async () => {
    const admin = cluster.node(1).admin();
    const c = clients(cluster.node(1).address);
    const groups = new GroupAdmin({ bootstrap: cluster.node(1).address, requestTimeoutMs: 10_000 });
    try {
      await admin.createTopics([{ name: "lagged", partitions: 1, replicationFactor: 1 }]);
      const leaderOf = async (topic: string, p: number): Promise<number> =>
        until(
          async () => {
            const [t] = await admin.describeTopics([topic]);
            const l = t?.partitions[p]?.leader ?? -1;
            return l > 0 ? l : null;
          },
          10_000,
          `a leader of ${topic}-${p}`,
        );
      const leader = await leaderOf("lagged", 0);
      // A group whose coordinator (the leader of its __consumer_offsets partition) is another node.
      let group = "";
      let coordinator = -1;
      for (let i = 0; group === "" && i < 200; i++) {
        const g = `stalled-${i}`;
        const l = await leaderOf(OFFSETS_TOPIC, offsetsPartitionFor(g));
        if (l !== leader) [group, coordinator] = [g, l];
      }
      expect(coordinator).toBeGreaterThan(0);
      expect(coordinator).not.toBe(leader);
      for (let i = 0; i < 10; i++)
        await call(
          c.produce,
          "produce",
          create(ProduceRequestSchema, { topic: "lagged", partition: 0, records: [{ value: Buffer.from(`r${i}`) }] }),
        );
      await groups.commitOffsets(group, [{ topic: "lagged", partition: 0, offset: 4 }]);
      const lagOn = async (id: number): Promise<number | undefined> =>
        sample(await scrape(base(id)), "rill_consumer_group_lag", { group, topic: "lagged", partition: "0" });
      // The coordinator holds no replica of lagged-0 (replication factor 1 on another node): it asks the leader.
      const body = await scrape(base(coordinator));
      expect(sample(body, "rill_log_end_offset", { topic: "lagged", partition: "0" })).toBeUndefined();
      expect(await lagOn(coordinator)).toBe(6);
      // Computed at scrape time: more records, more lag; the other nodes do not coordinate the group.
      for (let i = 0; i < 5; i++)
        await call(
          c.produce,
          "produce",
          create(ProduceRequestSchema, { topic: "lagged", partition: 0, records: [{ value: Buffer.from(`s${i}`) }] }),
        );
      expect(await lagOn(coordinator)).toBe(11);
      for (const id of [1, 2, 3].filter((n) => n !== coordinator)) expect(await lagOn(id)).toBeUndefined();
      expect(sample(await scrape(base(coordinator)), "rill_consumer_group_members", { group })).toBe(0);
      // The leader counted the records it appended; the others none.
      expect(sample(await scrape(base(leader)), "rill_records_in_total", { topic: "lagged" })).toBe(15);
    } finally {
      c.close();
      await groups.close();
    }
  }, 60_000);

  it("under_replicated_partitions rises when a follower stops and falls back to 0 when it returns", async () => {
    const stable = await cluster.waitForStable(20_000);
    const admin = cluster.node(stable.leader).admin();
    await admin.createTopics([{ name: "replicated", partitions: 3, replicationFactor: 3 }]);
    await until(async () => (await clusterSum([1, 2, 3], "rill_under_replicated_partitions")) === 0, 20_000, "every ISR full");
    const shrinksBefore = await clusterSum([1, 2, 3], "rill_isr_shrinks_total");
    const expandsBefore = await clusterSum([1, 2, 3], "rill_isr_expands_total");
    // Stop a node that is not the active controller; its partitions' leaders lose a follower.
    const follower = [1, 2, 3].find((id) => id !== stable.leader)!;
    const live = [1, 2, 3].filter((id) => id !== follower);
    await cluster.node(follower).kill();
    const under = await until(
      async () => {
        const n = await clusterSum(live, "rill_under_replicated_partitions");
        return n > 0 ? n : null;
      },
      30_000,
      "under-replicated partitions on the live nodes",
    );
    expect(under).toBeGreaterThan(0);
    expect(await clusterSum(live, "rill_isr_shrinks_total")).toBeGreaterThan(shrinksBefore);
    await cluster.node(follower).start();
    await until(async () => (await clusterSum([1, 2, 3], "rill_under_replicated_partitions")) === 0, 60_000, "every ISR full again");
    expect(await clusterSum([1, 2, 3], "rill_isr_expands_total")).toBeGreaterThan(expandsBefore);
    expect(await clusterSum([1, 2, 3], "rill_offline_partitions")).toBe(0);
    // Every node logged the ISR changes with their fields.
    const shrunk = cluster.node(stable.leader).logs("ISR shrunk");
    expect(shrunk.some((l) => Array.isArray(l["removed"]) && (l["removed"] as number[]).includes(follower))).toBe(true);
  }, 120_000);
});
