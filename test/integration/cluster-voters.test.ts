/**
 * The dynamic controller quorum with real processes (issue 21, "What it must show"): one
 * cluster of five nodes, each broker and controller, of which nodes 1-3 are the configured
 * voters (`controller.quorum.voters` of every node names them) and 4-5 start as observers.
 *
 * Bad input first, each a specific error that changes nothing: an unknown node, a node already
 * a voter, a wrong directory id, removing a non-voter. Then 3 → 5 → 3: node 4 is added; the
 * active controller is killed with SIGKILL (node 5 too, so it is down); node 5 is added while it
 * is down (the change waits for it to follow the log) and a second change meanwhile is refused
 * with RECONFIGURATION_IN_PROGRESS; node 5 starts and the change completes; nodes 1 and 2 are
 * removed (whichever leads steps down once its removal commits). Last, every node is stopped
 * and started again with its original configuration (still naming 1-3): every node keeps the
 * voter set of the log, {3, 4, 5}, nodes 1 and 2 are observers, and the cluster works. Then
 * node 3's data directory is wiped: it comes back with a new directory id and is refused as
 * voter 3, so with node 4 killed nothing commits.
 */
import * as nodeFs from "node:fs";
import { describe, expect, it, onTestFinished } from "vitest";
import { Cluster, rillErrorName, sleep, until } from "./cluster-harness.ts";

describe("dynamic controller quorum (3 -> 5 -> 3 with kill -9, restart with stale configuration)", () => {
  it("adds and removes voters one at a time; the log's voters survive restarts", { timeout: 300_000 }, async () => {
    const t0 = Date.now();
    const c = await Cluster.start({ nodes: 5, voters: 3, name: "rill-voters-" });
    onTestFinished(async (ctx) => {
      if (ctx.task.result?.state === "fail") console.log(c.tails(30));
      await c.close();
    });
    const controllerOf = async (ids: readonly number[]): Promise<number> =>
      until(
        async () => {
          for (const id of ids) {
            const r = await c.node(id).tryDescribe();
            if (r && r.controllerId > 0 && ids.includes(r.controllerId) && r.brokers.length === 5) return r.controllerId;
          }
          return null;
        },
        30_000,
        "an active controller that knows every node",
      );
    const agree = (ids: readonly number[], want: number[]) => c.votersAgree(ids, want, 20_000);
    await controllerOf([1, 2, 3]);
    await agree([1, 2, 3, 4, 5], [1, 2, 3]);
    const admin = c.node(3).admin({ retries: 0, requestTimeoutMs: 30_000 });
    const dir4 = (await c.node(4).describe()).node!.directoryId;
    expect(dir4).toMatch(/^[0-9a-f-]{36}$/);

    // Bad input: each refused with its own error; the voters stay 1-3.
    expect(await rillErrorName(admin.addController(9))).toBe("VOTER_NOT_FOUND");
    expect(await rillErrorName(admin.addController(2))).toBe("DUPLICATE_VOTER");
    expect(await rillErrorName(admin.addController(4, "00000000-0000-0000-0000-000000000000"))).toBe("INVALID_VOTER_KEY");
    expect(await rillErrorName(admin.removeController(4))).toBe("VOTER_NOT_FOUND");
    await agree([1, 2, 3, 4, 5], [1, 2, 3]);

    // 3 -> 4.
    expect((await admin.addController(4, dir4)).map((v) => v.nodeId)).toEqual([1, 2, 3, 4]);
    await agree([1, 2, 3, 4, 5], [1, 2, 3, 4]);
    expect((await c.node(4).describe()).node!.raftRole).not.toBe("observer");

    // kill -9 the active controller (and node 5, so that its addition must wait for it).
    const first = await controllerOf([1, 2, 3, 4]);
    await c.node(5).kill();
    await c.node(first).kill();
    const survivors = [1, 2, 3, 4].filter((id) => id !== first);
    const second = await until(
      async () => {
        const r = await c.node(survivors[0]!).tryDescribe();
        return r && r.controllerId > 0 && r.controllerId !== first ? r.controllerId : null;
      },
      30_000,
      "a new active controller",
    );
    await c.node(first).start();
    const admin2 = c.node(survivors.find((id) => id !== second) ?? second).admin({ retries: 0, requestTimeoutMs: 30_000 });

    // 4 -> 5 while node 5 is down: the change waits for it; another change meanwhile is refused.
    const adding = admin2.addController(5);
    await sleep(500);
    expect(await rillErrorName(admin2.removeController(1))).toBe("RECONFIGURATION_IN_PROGRESS");
    await c.node(5).start();
    const five = await adding.catch(async (e: unknown) => {
      console.log(`add-controller 5 failed while node 5 started (${String(e)}); asked again`);
      return admin2.addController(5);
    });
    expect(five.map((v) => v.nodeId)).toEqual([1, 2, 3, 4, 5]);
    await agree([1, 2, 3, 4, 5], [1, 2, 3, 4, 5]);

    // 5 -> 3: nodes 1 and 2 leave (a leader among them steps down once its removal commits).
    const admin3 = c.node(4).admin({ retries: 2, requestTimeoutMs: 30_000 });
    expect((await admin3.removeController(1)).map((v) => v.nodeId)).toEqual([2, 3, 4, 5]);
    expect((await admin3.removeController(2)).map((v) => v.nodeId)).toEqual([3, 4, 5]);
    await agree([1, 2, 3, 4, 5], [3, 4, 5]);
    console.log(`cluster-voters: 3 -> 5 -> 3 done after ${Date.now() - t0} ms`);

    // Every node restarted with its original configuration keeps the voters of the log.
    await Promise.all(c.nodes.map((n) => n.terminate()));
    await Promise.all(c.nodes.map((n) => n.start()));
    await controllerOf([3, 4, 5]);
    await agree([1, 2, 3, 4, 5], [3, 4, 5]);
    for (const id of [1, 2]) expect((await c.node(id).describe()).node!.raftRole).toBe("observer");
    // (once the restarted brokers are unfenced: RF 3 needs three live brokers)
    await until(
      () =>
        c
          .node(1)
          .admin()
          .createTopics([{ name: "after-restart", partitions: 3, replicationFactor: 3 }]),
      30_000,
      "a topic created after the restart",
      300,
    );
    const [topic] = await until(() => c.node(2).admin().describeTopics(["after-restart"]), 10_000, "the new topic on node 2");
    expect(topic!.partitions).toHaveLength(3);

    // A node whose disk was wiped cannot rejoin as itself: node 3 comes back with a new
    // directory id, the other voters refuse its messages (INVALID_VOTER_KEY), so with node 4
    // down, nodes 3 and 5 are not a quorum of {3, 4, 5}: nothing commits.
    const oldDir3 = (await c.node(3).describe()).node!.directoryId;
    await c.node(3).terminate();
    nodeFs.rmSync(c.node(3).dataDir, { recursive: true, force: true });
    await c.node(3).start();
    expect((await c.node(3).describe()).node!.directoryId).not.toBe(oldDir3);
    await c.node(4).kill();
    expect(
      await rillErrorName(
        c
          .node(5)
          .admin({ retries: 0, requestTimeoutMs: 8000 })
          .createTopics([{ name: "no-quorum", partitions: 1, replicationFactor: 1 }]),
      ),
    ).toMatch(/REQUEST_TIMED_OUT|NOT_CONTROLLER/);
    console.log(`cluster-voters: whole test ${Date.now() - t0} ms`);
  });
});
