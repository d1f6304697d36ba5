/**
 * Promoting a broker-only node to a controller voter (issue 21, "What to build" 3), with real
 * processes. As in Kafka (KIP-853), `process.roles` is static: a node that runs only the broker
 * role holds no copy of the metadata log, so it cannot vote. The operator restarts it with
 * `process.roles=broker,controller`; it then follows the log as an observer with its directory
 * id, and `AddRaftVoter` (`rill cluster add-controller`) makes it a voter.
 *
 * Cluster: nodes 1-3 are the configured voters, node 4 starts broker-only. Asked to add node 4
 * while it is broker-only, the controller refuses with a specific error and the voters stay
 * 1-3. Restarted with the controller role, node 4 is added; every node holds voters 1-4. Then
 * the active controller is killed with SIGKILL: with node 4 voting, the remaining three elect a
 * new controller and metadata changes still commit.
 */
import { describe, expect, it, onTestFinished } from "vitest";
import { NodeRole } from "../../src/gen/rill/v1/common_pb.ts";
import { Cluster, rillErrorName, until } from "./cluster-harness.ts";

describe("promoting a broker-only node to a controller voter", () => {
  it("refuses it while broker-only; restarted with the controller role it is added and votes", { timeout: 180_000 }, async () => {
    const c = await Cluster.start({
      nodes: 4,
      voters: 3,
      name: "rill-promote-",
      nodeSet: (id) => (id === 4 ? { "process.roles": "broker" } : {}),
    });
    onTestFinished(async (ctx) => {
      if (ctx.task.result?.state === "fail") console.log(c.tails(30));
      await c.close();
    });
    const agree = (ids: readonly number[], want: number[]) => c.votersAgree(ids, want, 30_000);
    const controller = (ids: readonly number[], not = -1) =>
      until(
        async () => {
          for (const id of ids) {
            const r = await c.node(id).tryDescribe();
            if (r && r.controllerId > 0 && r.controllerId !== not && r.brokers.length === 4) return r.controllerId;
          }
          return null;
        },
        30_000,
        "an active controller that knows every node",
      );
    await controller([1, 2, 3]);
    await agree([1, 2, 3], [1, 2, 3]);
    const admin = c.node(1).admin({ retries: 0, requestTimeoutMs: 30_000 });

    // Broker-only: no metadata log, no directory id; the controller refuses and nothing changes.
    const before = (await c.node(4).describe()).node!;
    expect([...before.roles]).toEqual([NodeRole.BROKER]);
    expect(await rillErrorName(admin.addController(4))).toBe("VOTER_NOT_FOUND");
    await agree([1, 2, 3], [1, 2, 3]);

    // Restarted with the controller role: an observer with a directory id, then a voter.
    c.node(4).reconfigure({ "process.roles": "broker,controller" });
    await c.node(4).restart();
    const dir4 = await until(
      async () => {
        const r = await c.node(4).tryDescribe();
        const n = r?.node;
        return n?.roles.includes(NodeRole.CONTROLLER) && n.raftRole === "observer" && /^[0-9a-f-]{36}$/.test(n.directoryId)
          ? n.directoryId
          : null;
      },
      30_000,
      "node 4 to follow the metadata log as an observer",
    );
    // Its new registration (roles broker and controller) reaches the active controller.
    await until(
      async () => {
        const r = await c.node(1).tryDescribe();
        return r?.brokers.some((b) => b.nodeId === 4 && b.roles.includes(NodeRole.CONTROLLER)) ?? false;
      },
      30_000,
      "node 4 registered with the controller role",
    );
    expect((await admin.addController(4, dir4)).map((v) => v.nodeId)).toEqual([1, 2, 3, 4]);
    await agree([1, 2, 3, 4], [1, 2, 3, 4]);
    expect((await c.node(4).describe()).node!.raftRole).not.toBe("observer");

    // With four voters the quorum is three: kill -9 the active controller; the others elect a
    // new one (node 4's vote counts) and a metadata change commits.
    const first = await controller([1, 2, 3, 4]);
    await c.node(first).kill();
    const rest = [1, 2, 3, 4].filter((id) => id !== first);
    const second = await until(
      async () => {
        for (const id of rest) {
          const r = await c.node(id).tryDescribe();
          if (r && r.controllerId > 0 && r.controllerId !== first) return r.controllerId;
        }
        return null;
      },
      30_000,
      "a new active controller",
    );
    expect(rest).toContain(second);
    const admin2 = c.node(rest[0]!).admin({ retries: 5, requestTimeoutMs: 30_000 });
    await admin2.createTopics([{ name: "after-promotion", partitions: 1, replicationFactor: 3 }]);
    const topics = await admin2.listTopics();
    expect(topics.map((t) => t.name)).toContain("after-promotion");
  });
});
