import { describe, expect, it } from "vitest";
import { TestCluster, storageWithTerms } from "./harness.ts";

describe("raft election", () => {
  it("elects a leader on timeout, which commits a no-op of its term", () => {
    const c = new TestCluster([1, 2, 3]);
    c.tick(25);
    const leader = c.leader();
    expect(leader).toBeDefined();
    for (const id of [1, 2, 3]) {
      const st = c.node(id).status();
      expect(st.leader).toBe(leader);
      expect(st.term).toBe(1);
      expect(st.commit).toBe(1);
    }
    expect(c.member(leader!).applied.map((e) => e.kind)).toEqual(["noop"]);
  });

  it("a single voter elects itself and commits on its own", () => {
    const c = new TestCluster([1]);
    c.elect(1);
    expect(c.node(1).status().role).toBe("leader");
    const r = c.propose(1, "x");
    expect(r.ok).toBe(true);
    expect(c.member(1).applied.map((e) => e.index)).toEqual([1, 2]);
  });

  it("a candidate with a less up-to-date log cannot win", () => {
    const voters = [1, 2, 3];
    const storages = new Map([
      [1, storageWithTerms(voters, [1], 1)],
      [2, storageWithTerms(voters, [1, 1], 1)],
      [3, storageWithTerms(voters, [1, 1], 1)],
    ]);
    const c = new TestCluster(voters, { preVote: false }, storages);
    c.elect(1);
    expect(c.node(1).status().role).not.toBe("leader");
    expect(c.node(2).status().vote).toBe(0);
    c.elect(2);
    expect(c.leader()).toBe(2);
  });

  it("a vote is persisted in the Ready that carries the vote response", () => {
    const c = new TestCluster([1, 2, 3], { preVote: false });
    c.node(1).campaign();
    c.flush();
    const req = c.queue.find((m) => m.to === 2)!;
    c.node(2).step(req);
    const rd = c.node(2).ready()!;
    expect(rd.hardState).toEqual({ term: 1, vote: 1, commit: 0 });
    expect(rd.messages).toEqual([{ type: "vote-response", from: 2, to: 1, term: 1, reject: false }]);
    c.node(2).advance(rd);
  });

  it("grants at most one vote per term", () => {
    const c = new TestCluster([1, 2, 3], { preVote: false });
    c.node(1).campaign();
    c.node(3).campaign();
    c.flush();
    const to2 = c.queue.filter((m) => m.to === 2);
    for (const m of to2) c.node(2).step(m);
    const rd = c.node(2).ready()!;
    const grants = rd.messages.filter((m) => m.type === "vote-response" && !m.reject);
    expect(grants).toHaveLength(1);
    c.node(2).advance(rd);
  });

  it("ready() may not be called twice without advance()", () => {
    const c = new TestCluster([1]);
    c.node(1).campaign();
    c.node(1).ready();
    expect(() => c.node(1).ready()).toThrow(/advance/);
  });
});
