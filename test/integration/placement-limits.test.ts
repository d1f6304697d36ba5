/**
 * A 3-node cluster whose node 3 runs with `max.partitions=2`: a topic that would put more
 * replicas on node 3 by plain round-robin is placed on the other brokers instead (node 3 gets at
 * most its limit), and one that cannot fit anywhere is refused naming node 3, its count and its
 * limit. Only 127.0.0.1; every process is stopped in afterAll.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Admin } from "../../src/client/admin.ts";
import { Cluster } from "./cluster-harness.ts";

let cluster: Cluster | undefined;
let admin: Admin;

beforeAll(async () => {
  cluster = await Cluster.start({ name: "rill-placement-", nodes: 3, nodeSet: (id) => (id === 3 ? { "max.partitions": 2 } : {}) });
  await cluster.waitForStable(30_000);
  admin = cluster.node(1).admin();
}, 90_000);

afterAll(async () => {
  await admin?.close().catch(() => undefined);
  await cluster?.close();
}, 60_000);

async function replicasOn(node: number): Promise<number> {
  let n = 0;
  for (const t of await admin.describeTopics([], { includeConfigs: false }))
    for (const p of t.partitions) n += p.replicas.filter((r) => r === node).length;
  return n;
}

describe("placement within a broker's max.partitions", () => {
  it("places around a broker at its limit and refuses only what cannot fit, naming it", async () => {
    // 6 partitions × rf 2 over 3 brokers: round-robin would put 4 replicas on node 3
    await admin.createTopics([{ name: "spread", partitions: 6, replicationFactor: 2 }]);
    const spread = (await admin.describeTopics(["spread"], { includeConfigs: false }))[0]!;
    expect(spread.partitions).toHaveLength(6);
    for (const p of spread.partitions) expect(new Set(p.replicas).size).toBe(2);
    const on3 = await replicasOn(3);
    expect(on3).toBeLessThanOrEqual(2);
    // rf 3 needs node 3 in every partition: it has room for at most 2 - on3 more
    const err = await admin.createTopics([{ name: "everywhere", partitions: 3, replicationFactor: 3 }]).then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(/INVALID_PARTITIONS|max\.partitions/);
    expect(err?.message).toContain(`broker 3 holds ${on3} partitions and may hold at most 2 (max.partitions:`);
    expect((await admin.listTopics()).map((t) => t.name)).not.toContain("everywhere");
    // growing the topic also goes around node 3
    await admin.createPartitions([{ name: "spread", count: 9 }]);
    expect(await replicasOn(3)).toBeLessThanOrEqual(2);
  }, 60_000);
});
