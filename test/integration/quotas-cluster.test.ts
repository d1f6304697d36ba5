/**
 * Client quotas on a 3-node cluster (issue 13): AlterClientQuotas sent to a node that is not the
 * active controller is passed there, answered once the node holds the change, and every node
 * then describes (and enforces) the same quotas; a bad entry is refused by the controller with
 * the same specific error, and nothing is stored.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { RillError } from "../../src/base/errors.ts";
import { Cluster, until } from "./cluster-harness.ts";

let cluster: Cluster | null = null;

afterEach((ctx) => {
  if (ctx.task.result?.state === "fail" && cluster !== null) console.log(cluster.tails(30));
});

afterAll(async () => {
  await cluster?.close();
}, 60_000);

beforeAll(async () => {
  cluster = await Cluster.start({ name: "rill-quotas-cluster-", nodes: 3 });
  await cluster.waitForStable(30_000);
}, 90_000);

describe("client quotas on a cluster", () => {
  it("are changed through any node and seen by every node", async () => {
    const c = cluster!;
    const controller = (await c.node(1).describe()).controllerId;
    const follower = c.nodes.find((n) => n.id !== controller)!;
    const admin = follower.admin();
    await admin.alterClientQuotas([
      { entity: { user: "alice" }, set: { producer_byte_rate: 1048576 } },
      { entity: { user: null, clientId: "app" }, set: { consumer_byte_rate: 2048 } },
    ]);
    // read-your-writes on the node that forwarded it
    expect(await admin.describeClientQuotas()).toEqual([
      { entity: { user: "alice" }, values: { producer_byte_rate: 1048576 } },
      { entity: { user: null, clientId: "app" }, values: { consumer_byte_rate: 2048 } },
    ]);
    for (const n of c.nodes) {
      await until(
        async () => (await n.admin().describeClientQuotas({ user: { name: "alice" } })).length === 1,
        10_000,
        `node ${n.id} has alice's quota`,
      );
    }
    // a bad entry, through the follower: the controller's specific error, nothing stored
    const bad = await admin.alterClientQuotas([{ entity: { user: "bob" }, set: { producer_byte_rate: -1 } }]).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(RillError);
    expect((bad as RillError).kind.name).toBe("INVALID_REQUEST");
    expect((bad as RillError).message).toMatch(/entries\[0\]\.ops\[0\]\.value: -1 is not a byte rate/);
    expect(
      await c
        .node(controller)
        .admin()
        .describeClientQuotas({ user: { name: "bob" } }),
    ).toEqual([]);
  }, 60_000);
});
