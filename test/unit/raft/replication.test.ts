import { describe, expect, it } from "vitest";
import type { AppendMessage, AppendResponseMessage, Message } from "../../../src/raft/types.ts";
import { TestCluster, storageWithTerms, text } from "./harness.ts";

describe("raft log replication", () => {
  it("replicates and commits proposals in order on every node", () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    for (const v of ["a", "b", "c"]) expect(c.propose(1, v).ok).toBe(true);
    for (const id of [1, 2, 3]) {
      expect(
        c
          .member(id)
          .applied.filter((e) => e.kind === "data")
          .map(text),
      ).toEqual(["a", "b", "c"]);
    }
  });

  it("a follower refuses proposals with NOT_LEADER_OR_FOLLOWER", () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    const r = c.node(2).propose(new Uint8Array([1]));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.kind.name).toBe("NOT_LEADER_OR_FOLLOWER");
  });

  it("overwrites divergent follower logs, skipping a conflicting term per round trip", () => {
    // Figure 7 of the Raft paper, reduced: the leader's log vs. a follower with extra entries
    // from terms 2 and 3, and a follower that is missing entries.
    const voters = [1, 2, 3];
    const storages = new Map([
      [1, storageWithTerms(voters, [1, 1, 1, 4, 4, 5, 5, 6, 6, 6], 6)],
      [2, storageWithTerms(voters, [1, 1, 1, 4], 6)],
      [3, storageWithTerms(voters, [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3], 6)],
    ]);
    const c = new TestCluster(voters, {}, storages);
    c.elect(1);
    expect(c.leader()).toBe(1);
    const leaderTerms = c.logTerms(1);
    expect(leaderTerms).toEqual([1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7]);
    expect(c.logTerms(2)).toEqual(leaderTerms);
    expect(c.logTerms(3)).toEqual(leaderTerms);
    for (const id of voters) expect(c.node(id).status().commit).toBe(11);
    const rejects = c.sent.filter((m): m is AppendResponseMessage => m.type === "append-response" && m.reject && m.from === 3);
    // One rejection: n3 answers that its entry 10 has term 3, and the leader, whose log has no
    // term 2 or 3, jumps straight to index 3 (its last entry with term <= 3).
    expect(rejects).toHaveLength(1);
    expect(rejects[0]).toMatchObject({ index: 10, hintIndex: 10, hintTerm: 3 });
    const retry = c.sent.find((m): m is AppendMessage => m.type === "append" && m.to === 3 && m.prevIndex === 3);
    expect(retry?.entries).toHaveLength(8);
  });

  it("a stale, reordered Append does not truncate entries the follower already has", () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    const held: Message[] = [];
    c.intercept = (m) => {
      if (m.type === "append" && m.to === 2 && m.entries.length > 0 && held.length === 0) {
        held.push(m);
        return null;
      }
      return m;
    };
    c.propose(1, "a");
    c.propose(1, "b");
    c.heal();
    c.tick(2);
    expect(
      c
        .member(2)
        .applied.filter((e) => e.kind === "data")
        .map(text),
    ).toEqual(["a", "b"]);
    const last = c.node(2).status().lastIndex;
    c.node(2).step(held[0]!);
    c.flush();
    expect(c.node(2).status().lastIndex).toBe(last);
    expect((held[0] as AppendMessage).prevIndex).toBeLessThan(last);
  });

  it("an Append that only repeats a prefix truncates nothing", () => {
    const c = new TestCluster([1, 2, 3]);
    const e = (index: number) => ({ index, term: 1, kind: "data" as const, data: new Uint8Array([index]) });
    const base = { type: "append" as const, from: 1, to: 2, term: 1, prevIndex: 0, prevTerm: 0, commit: 0 };
    c.node(2).step({ ...base, entries: [e(1), e(2), e(3)] });
    c.node(2).step({ ...base, entries: [e(1)] });
    c.flush();
    expect(c.node(2).status().lastIndex).toBe(3);
    const acks = c.sent.filter((m): m is AppendResponseMessage => m.type === "append-response");
    expect(acks.map((m) => m.index)).toEqual([3, 1]);
  });

  it("an Append below the commit index is acknowledged only up to the commit index", () => {
    const c = new TestCluster([1, 2, 3]);
    const e = (index: number) => ({ index, term: 1, kind: "data" as const, data: new Uint8Array([index]) });
    const base = { type: "append" as const, from: 1, to: 2, term: 1 };
    c.node(2).step({ ...base, prevIndex: 0, prevTerm: 0, commit: 2, entries: [e(1), e(2), e(3), e(4)] });
    c.node(2).step({ ...base, prevIndex: 1, prevTerm: 1, commit: 2, entries: [] });
    c.flush();
    const acks = c.sent.filter((m): m is AppendResponseMessage => m.type === "append-response");
    expect(acks.map((m) => m.index)).toEqual([4, 2]);
  });

  it("splits replication by msgBytesMax", () => {
    const c = new TestCluster([1, 2, 3], { msgBytesMax: 40 });
    c.elect(1);
    c.isolate(3);
    for (let k = 0; k < 10; k++) c.propose(1, `v${k}`);
    c.heal();
    c.sent.length = 0;
    c.tick(20);
    const appends = c.sent.filter((m): m is AppendMessage => m.type === "append" && m.to === 3 && m.entries.length > 0);
    expect(Math.max(...appends.map((m) => m.entries.length))).toBeLessThanOrEqual(2);
    expect(c.member(3).applied.filter((e) => e.kind === "data")).toHaveLength(10);
  });
});

/** Campaigns until `id` leads (a candidate that split the vote campaigns again at a new term). */
function campaignUntilLeader(c: TestCluster, id: number): void {
  for (let k = 0; k < 5 && c.node(id).status().role !== "leader"; k++) c.elect(id);
}

describe("raft commit rule", () => {
  it("never commits an entry of an earlier term by counting replicas (figure 8)", () => {
    const c = new TestCluster([1, 2, 3, 4, 5], { preVote: false, checkQuorum: false });
    c.elect(1);
    expect(c.leader()).toBe(1);
    // (a) n1 (term 1) replicates "x" at index 2 to n2 only.
    c.intercept = (m) => ((m.from === 1 && m.to !== 2) || (m.to === 1 && m.from !== 2) ? null : m);
    expect(c.propose(1, "x")).toMatchObject({ ok: true, index: 2, term: 1 });
    expect(c.logTerms(2)).toEqual([1, 1]);
    // (b) n1 stops; n5 wins term 2 with n3, n4 and appends its no-op at index 2, unreplicated.
    c.stop(1);
    c.intercept = (m) => (m.from === 5 && m.type === "append" ? null : m);
    c.elect(5);
    expect(c.node(5).status()).toMatchObject({ role: "leader", term: 2 });
    expect(c.logTerms(5)).toEqual([1, 2]);
    // (c) n5 stops; n1 restarts and wins term 3; it gets "x" (term 1) onto n3 but not its own
    // term-3 no-op: "x" is on a majority (1, 2, 3) yet must stay uncommitted.
    c.stop(5);
    c.start(1);
    c.intercept = (m) => {
      if (m.type !== "append" || m.from !== 1) return m;
      return { ...m, entries: m.entries.filter((e) => e.index <= 2) };
    };
    campaignUntilLeader(c, 1);
    expect(c.node(1).status()).toMatchObject({ role: "leader", term: 3 });
    expect(c.logTerms(3)).toEqual([1, 1]);
    expect(c.node(1).status().commit).toBe(1);
    // (d) n1 stops; n5 returns and wins term 4 (its last term 2 beats 1): "x" is overwritten,
    // which is safe only because it was never committed.
    c.stop(1);
    c.start(5);
    c.heal();
    campaignUntilLeader(c, 5);
    expect(c.node(5).status()).toMatchObject({ role: "leader", term: 4 });
    for (const id of [2, 3, 4, 5]) {
      expect(c.logTerms(id)).toEqual([1, 2, 4]);
      expect(c.member(id).applied.some((e) => e.kind === "data" && text(e) === "x")).toBe(false);
    }
  });

  it("commits an earlier-term entry once an entry of the current term is on a majority", () => {
    const c = new TestCluster([1, 2, 3, 4, 5], { preVote: false, checkQuorum: false });
    c.elect(1);
    c.intercept = (m) => ((m.from === 1 && m.to !== 2) || (m.to === 1 && m.from !== 2) ? null : m);
    c.propose(1, "x");
    expect(c.node(1).status().commit).toBe(1);
    c.isolate(1);
    c.elect(2);
    expect(c.node(2).status()).toMatchObject({ role: "leader", term: 2, commit: 3 });
    for (const id of [2, 3, 4, 5]) {
      expect(
        c
          .member(id)
          .applied.filter((e) => e.kind === "data")
          .map(text),
      ).toEqual(["x"]);
    }
  });
});
