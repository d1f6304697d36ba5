import { describe, expect, it } from "vitest";
import { TestCluster, storageWithTerms } from "./harness.ts";

describe("raft pre-vote", () => {
  it("an isolated follower campaigning for long does not raise its term or disrupt the leader", () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    const term = c.node(1).status().term;
    c.isolate(3);
    c.tick(100);
    expect(c.node(3).status().term).toBe(term);
    expect(c.node(3).status().role).toBe("precandidate");
    c.heal();
    c.tick(3);
    expect(c.leader()).toBe(1);
    for (const id of [1, 2, 3]) expect(c.node(id).status()).toMatchObject({ term, leader: 1 });
  });

  it("a connected follower's pre-vote is refused while the leader is alive", () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    const term = c.node(1).status().term;
    c.elect(3);
    expect(c.node(1).status()).toMatchObject({ role: "leader", term });
    expect(c.node(3).status().term).toBe(term);
    c.tick(2);
    expect(c.node(3).status()).toMatchObject({ role: "follower", leader: 1 });
  });

  it("a node with a stale log gets no pre-votes, so it never bumps the term", () => {
    const voters = [1, 2, 3];
    const storages = new Map([
      [1, storageWithTerms(voters, [1, 1], 1)],
      [2, storageWithTerms(voters, [1, 1], 1)],
      [3, storageWithTerms(voters, [1], 1)],
    ]);
    const c = new TestCluster(voters, {}, storages);
    c.elect(3);
    for (const id of voters) expect(c.node(id).status().term).toBe(1);
    expect(c.node(3).status().role).toBe("follower");
  });

  it("without pre-vote and check-quorum, the same campaign deposes the leader", () => {
    const c = new TestCluster([1, 2, 3], { preVote: false, checkQuorum: false });
    c.elect(1);
    const term = c.node(1).status().term;
    c.elect(3);
    expect(c.node(1).status().term).toBeGreaterThan(term);
    expect(c.node(1).status().role).toBe("follower");
  });
});

describe("raft check-quorum", () => {
  it("a leader cut off from a quorum steps down within two election timeouts", () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.isolate(1);
    c.tick(10, [1]);
    // The first check still counts contacts from before the cut.
    expect(c.node(1).status().role).toBe("leader");
    c.tick(10, [1]);
    expect(c.node(1).status()).toMatchObject({ role: "follower", leader: 0 });
  });

  it("the majority side elects a new leader and the old one follows it after healing", () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.isolate(1);
    c.tick(40);
    const leader = c.leader();
    expect(leader === 2 || leader === 3).toBe(true);
    expect(c.propose(leader!, "on the majority side").ok).toBe(true);
    c.heal();
    c.tick(3);
    expect(c.node(1).status()).toMatchObject({ role: "follower", leader });
    expect(c.member(1).applied.map((e) => e.index)).toEqual(c.member(leader!).applied.map((e) => e.index));
  });

  it("a leader keeps its role while it hears from a quorum", () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.isolate(3);
    c.tick(50, [1, 2]);
    expect(c.node(1).status().role).toBe("leader");
  });
});
