import { describe, expect, it } from "vitest";
import { SeededRandom } from "../../../src/base/random.ts";
import { RaftNode } from "../../../src/raft/node.ts";
import { MemoryStorage } from "../../../src/raft/storage.ts";
import { TestCluster, bytes } from "./harness.ts";

function single(): { node: RaftNode; storage: MemoryStorage } {
  const storage = new MemoryStorage([1]);
  const node = new RaftNode({ id: 1, storage, random: new SeededRandom(1), electionTicks: 10, heartbeatTicks: 1 });
  return { node, storage };
}

describe("raft Ready contract", () => {
  it("hands out committed entries only after they are durable", () => {
    const { node, storage } = single();
    node.campaign();
    let rd = node.ready()!;
    expect(rd.softState).toEqual({ leader: 1, role: "leader" });
    expect(rd.entries.map((e) => e.kind)).toEqual(["noop"]);
    expect(rd.committedEntries).toEqual([]);
    storage.append(rd.entries);
    storage.setHardState(rd.hardState!);
    node.advance(rd);
    rd = node.ready()!;
    expect(rd.hardState?.commit).toBe(1);
    expect(rd.committedEntries.map((e) => e.index)).toEqual([1]);
    storage.setHardState(rd.hardState!);
    node.advance(rd);
    expect(node.propose(bytes("x"))).toMatchObject({ ok: true, index: 2, term: 1 });
    rd = node.ready()!;
    expect(rd.entries.map((e) => e.index)).toEqual([2]);
    expect(rd.committedEntries).toEqual([]);
    storage.append(rd.entries);
    node.advance(rd);
    expect(node.ready()!.committedEntries.map((e) => e.index)).toEqual([2]);
  });

  it("an acknowledgement leaves in the same Ready as the entries it acknowledges", () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.node(1).propose(bytes("x"));
    c.flush();
    const app = c.queue.find((m) => m.type === "append" && m.to === 2)!;
    c.queue.length = 0;
    c.node(2).step(app);
    const rd = c.node(2).ready()!;
    expect(rd.entries.map((e) => e.index)).toEqual([2]);
    expect(rd.messages).toEqual([expect.objectContaining({ type: "append-response", index: 2, reject: false })]);
    c.node(2).advance(rd);
  });

  it("returns null when there is nothing to do", () => {
    const { node } = single();
    expect(node.hasReady()).toBe(false);
    expect(node.ready()).toBeNull();
  });
});

describe("raft restart", () => {
  it("keeps term and vote across a restart and does not vote twice in a term", () => {
    const c = new TestCluster([1, 2, 3], { preVote: false });
    c.intercept = (m) => (m.type === "vote-response" ? null : m);
    c.elect(1);
    expect(c.member(2).storage.hardState()).toMatchObject({ term: 1, vote: 1 });
    c.stop(2);
    c.start(2);
    expect(c.node(2).status()).toMatchObject({ term: 1, vote: 1 });
    c.heal();
    c.node(2).step({ type: "vote", from: 3, to: 2, term: 1, lastIndex: 0, lastTerm: 0, transfer: false });
    const rd = c.node(2).ready()!;
    expect(rd.messages).toEqual([{ type: "vote-response", from: 2, to: 3, term: 1, reject: true }]);
  });
});
