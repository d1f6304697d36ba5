import { describe, expect, it } from "vitest";
import type { Message } from "../../../src/raft/types.ts";
import { TestCluster, text } from "./harness.ts";

describe("raft leadership transfer", () => {
  it("hands leadership to an up-to-date follower with TimeoutNow", () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    const term = c.node(1).status().term;
    expect(c.node(1).transferLeadership(2)).toBeNull();
    c.deliverAll();
    expect(c.sent.some((m) => m.type === "timeout-now" && m.to === 2)).toBe(true);
    expect(c.leader()).toBe(2);
    expect(c.node(2).status().term).toBe(term + 1);
    expect(c.node(1).status()).toMatchObject({ role: "follower", leader: 2 });
  });

  it("catches a lagging target up before TimeoutNow, refusing proposals meanwhile", () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.isolate(3);
    for (const v of ["a", "b"]) c.propose(1, v);
    const held: Message[] = [];
    c.intercept = (m) => {
      held.push(m);
      return null;
    };
    expect(c.node(1).transferLeadership(3)).toBeNull();
    const refused = c.node(1).propose(new Uint8Array([9]));
    expect(refused.ok).toBe(false);
    if (!refused.ok) expect(refused.error.kind.name).toBe("NOT_LEADER_OR_FOLLOWER");
    c.heal();
    c.queue.push(...held);
    c.deliverAll();
    expect(c.leader()).toBe(3);
    expect(
      c
        .member(3)
        .applied.filter((e) => e.kind === "data")
        .map(text),
    ).toEqual(["a", "b"]);
  });

  it("abandons a transfer that does not finish within an election timeout", () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.isolate(3);
    expect(c.node(1).transferLeadership(3)).toBeNull();
    expect(c.node(1).status().leadTransferee).toBe(3);
    c.tick(10, [1]);
    expect(c.node(1).status()).toMatchObject({ role: "leader", leadTransferee: 0 });
    expect(c.node(1).propose(new Uint8Array([1])).ok).toBe(true);
  });

  it("refuses a transfer from a follower or to a non-voter", () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    expect(c.node(2).transferLeadership(3)?.kind.name).toBe("NOT_LEADER_OR_FOLLOWER");
    expect(c.node(1).transferLeadership(7)?.kind.name).toBe("INVALID_REQUEST");
  });
});

describe("raft snapshots", () => {
  it("sends InstallSnapshot to a follower whose next entry was compacted, then replicates on", () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.isolate(3);
    for (let k = 0; k < 20; k++) c.propose(1, `v${k}`);
    const leader = c.member(1);
    const applied = leader.raft.status().applied;
    expect(applied).toBe(21);
    leader.storage.createSnapshot(applied, new TextEncoder().encode("image@21"));
    leader.storage.compact(applied);
    expect(leader.raft.status().firstIndex).toBe(22);
    c.heal();
    c.tick(3);
    const snaps = c.sent.filter((m) => m.type === "snapshot" && m.to === 3);
    expect(snaps).toHaveLength(1);
    const s3 = c.member(3).storage;
    expect(s3.snapshot().meta).toMatchObject({ index: 21, term: 1, voters: [1, 2, 3] });
    expect(new TextDecoder().decode(s3.snapshot().data)).toBe("image@21");
    expect(c.node(3).status()).toMatchObject({ commit: 21, applied: 21, leader: 1 });
    c.propose(1, "after");
    expect(
      c
        .member(3)
        .applied.filter((e) => e.kind === "data")
        .map(text),
    ).toEqual(["after"]);
    expect(c.node(3).status().applied).toBe(22);
  });

  it("a follower restarts from its snapshot and the log after it", () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    for (let k = 0; k < 5; k++) c.propose(1, `v${k}`);
    const m2 = c.member(2);
    m2.storage.createSnapshot(4, new Uint8Array([4]));
    m2.storage.compact(4);
    const restarted = new TestCluster([2], {}, new Map([[2, m2.storage]]));
    expect(restarted.node(2).status()).toMatchObject({ firstIndex: 5, lastIndex: 6, commit: 6, applied: 4, term: 1 });
  });
});
