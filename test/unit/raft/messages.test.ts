import { describe, expect, it } from "vitest";
import { RillError } from "../../../src/base/errors.ts";
import type { Message } from "../../../src/raft/types.ts";
import { TestCluster } from "./harness.ts";

/** A 3-node cluster where n1 leads at term 2 (after n2 led at term 1). */
function clusterAtTerm2(): TestCluster {
  const c = new TestCluster([1, 2, 3]);
  c.elect(2);
  c.node(2).transferLeadership(1);
  c.deliverAll();
  expect(c.node(1).status()).toMatchObject({ role: "leader", term: 2 });
  return c;
}

function snapshotOf(c: TestCluster, id: number): unknown {
  const st = c.node(id).status();
  return { ...st, voters: [...st.voters], hard: c.member(id).storage.hardState(), terms: c.logTerms(id) };
}

describe("raft stale-term messages", () => {
  it("a stale leader's Append is answered with the current term and changes nothing", () => {
    const c = clusterAtTerm2();
    const before = snapshotOf(c, 3);
    const stale: Message = {
      type: "append",
      from: 2,
      to: 3,
      term: 1,
      prevIndex: 1,
      prevTerm: 1,
      commit: 1,
      entries: [{ index: 2, term: 1, kind: "data", data: new Uint8Array([1]) }],
    };
    c.node(3).step(stale);
    const rd = c.node(3).ready()!;
    expect(rd.entries).toEqual([]);
    expect(rd.hardState).toBeNull();
    expect(rd.messages).toEqual([{ type: "append-response", from: 3, to: 2, term: 2, index: 0, reject: true, hintIndex: 0, hintTerm: 0 }]);
    c.node(3).advance(rd);
    expect(snapshotOf(c, 3)).toEqual(before);
  });

  it("stale votes, heartbeats and answers are ignored", () => {
    const c = clusterAtTerm2();
    const before = snapshotOf(c, 1);
    const stale: Message[] = [
      { type: "vote", from: 3, to: 1, term: 1, lastIndex: 9, lastTerm: 1, transfer: false },
      { type: "vote-response", from: 3, to: 1, term: 1, reject: false },
      { type: "append-response", from: 3, to: 1, term: 1, index: 99, reject: false, hintIndex: 0, hintTerm: 0 },
      { type: "timeout-now", from: 3, to: 1, term: 1 },
    ];
    for (const m of stale) c.node(1).step(m);
    expect(c.node(1).hasReady()).toBe(false);
    expect(snapshotOf(c, 1)).toEqual(before);
  });

  it("a stale pre-vote is refused with the current term", () => {
    const c = clusterAtTerm2();
    c.node(3).step({ type: "prevote", from: 2, to: 3, term: 2, lastIndex: 1, lastTerm: 1 });
    const rd = c.node(3).ready()!;
    expect(rd.messages).toEqual([{ type: "prevote-response", from: 3, to: 2, term: 2, reject: true }]);
    c.node(3).advance(rd);
  });
});

describe("raft malformed messages", () => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ["sender id zero", { type: "heartbeat", from: 0, to: 2, term: 5, commit: 0 }],
    ["from itself", { type: "heartbeat", from: 2, to: 2, term: 5, commit: 0 }],
    ["wrong recipient", { type: "heartbeat", from: 1, to: 3, term: 5, commit: 0 }],
    ["term zero", { type: "heartbeat", from: 1, to: 2, term: 0, commit: 0 }],
    ["fractional term", { type: "heartbeat", from: 1, to: 2, term: 2.5, commit: 0 }],
    ["negative commit", { type: "heartbeat", from: 1, to: 2, term: 5, commit: -1 }],
    ["NaN commit", { type: "heartbeat", from: 1, to: 2, term: 5, commit: Number.NaN }],
    ["unknown type", { type: "gossip", from: 1, to: 2, term: 5 }],
    ["vote lastTerm above term", { type: "vote", from: 1, to: 2, term: 5, lastIndex: 3, lastTerm: 6, transfer: false }],
    ["vote without transfer flag", { type: "vote", from: 1, to: 2, term: 5, lastIndex: 3, lastTerm: 2 }],
    [
      "append with a gap",
      {
        type: "append",
        from: 1,
        to: 2,
        term: 5,
        prevIndex: 2,
        prevTerm: 1,
        commit: 0,
        entries: [{ index: 4, term: 5, kind: "data", data: new Uint8Array() }],
      },
    ],
    [
      "append entry term above message term",
      {
        type: "append",
        from: 1,
        to: 2,
        term: 5,
        prevIndex: 2,
        prevTerm: 1,
        commit: 0,
        entries: [{ index: 3, term: 6, kind: "data", data: new Uint8Array() }],
      },
    ],
    [
      "append entry terms going down",
      {
        type: "append",
        from: 1,
        to: 2,
        term: 5,
        prevIndex: 2,
        prevTerm: 3,
        commit: 0,
        entries: [{ index: 3, term: 2, kind: "data", data: new Uint8Array() }],
      },
    ],
    [
      "append entry data not bytes",
      {
        type: "append",
        from: 1,
        to: 2,
        term: 5,
        prevIndex: 2,
        prevTerm: 1,
        commit: 0,
        entries: [{ index: 3, term: 5, kind: "data", data: "x" }],
      },
    ],
    ["append prevIndex 0 with a term", { type: "append", from: 1, to: 2, term: 5, prevIndex: 0, prevTerm: 1, commit: 0, entries: [] }],
    [
      "snapshot without voters",
      {
        type: "snapshot",
        from: 1,
        to: 2,
        term: 5,
        snapshot: { meta: { index: 9, term: 5, voters: [] }, data: new Uint8Array() },
      },
    ],
    [
      "snapshot term above message term",
      {
        type: "snapshot",
        from: 1,
        to: 2,
        term: 5,
        snapshot: { meta: { index: 9, term: 6, voters: [1, 2, 3] }, data: new Uint8Array() },
      },
    ],
    [
      "append-response hint above term",
      { type: "append-response", from: 1, to: 2, term: 5, index: 3, reject: true, hintIndex: 2, hintTerm: 9 },
    ],
  ];

  it.each(cases)("rejects %s with INVALID_REQUEST and changes nothing", (_name, m) => {
    const c = clusterAtTerm2();
    const before = snapshotOf(c, 2);
    let err: unknown;
    try {
      c.node(2).step(m as unknown as Message);
    } catch (e: unknown) {
      err = e;
    }
    expect(err).toBeInstanceOf(RillError);
    expect((err as RillError).kind.name).toBe("INVALID_REQUEST");
    expect(c.node(2).hasReady()).toBe(false);
    expect(snapshotOf(c, 2)).toEqual(before);
  });
});
