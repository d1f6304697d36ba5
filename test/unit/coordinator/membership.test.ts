import { describe, expect, it } from "vitest";
import { keysOf } from "../../../src/coordinator/partitions.ts";
import { Harness, SESSION_MS, TestMember, errorName, expectDisjointOwnership, keys, stabilize } from "./helpers.ts";

const G = "order-processing";

function threeOverSix(opts: { static?: boolean } = {}): { h: Harness; ms: TestMember[] } {
  const h = new Harness();
  h.topics.set("orders", 6);
  const ms = [1, 2, 3].map((i) => new TestMember(h, G, ["orders"], opts.static === true ? { instanceId: `consumer-${i}` } : {}));
  for (const m of ms) m.join();
  stabilize(h, G, ms);
  return { h, ms };
}

describe("coordinator: joining", () => {
  it("gives 3 members 2 of 6 partitions each, disjoint, and a stable group", () => {
    const { h, ms } = threeOverSix();
    const d = h.describe(G);
    expect(d.state).toBe("stable");
    expect(d.members).toHaveLength(3);
    expect(ms.map((m) => m.count())).toEqual([2, 2, 2]);
    const all = ms.flatMap((m) => keys(m.owned));
    expect(new Set(all).size).toBe(6);
    expectDisjointOwnership(d);
    for (const m of d.members) {
      expect(m.memberEpoch).toBe(d.assignmentEpoch);
      expect(keys(m.assignment)).toEqual(keys(m.targetAssignment));
    }
    expect(d.groupEpoch).toBe(3);
  });

  it("gives a member id from the injected Random, and the first member everything", () => {
    const h = new Harness();
    h.topics.set("orders", 6);
    const m = new TestMember(h, G, ["orders"]);
    const r = m.join();
    expect(r.memberId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(r.memberEpoch).toBe(1);
    expect(r.heartbeatIntervalMs).toBe(1_000);
    expect(keys(r.assignment ?? [])).toEqual(["orders:0", "orders:1", "orders:2", "orders:3", "orders:4", "orders:5"]);
    // The same seed gives the same id: no ambient randomness.
    const h2 = new Harness();
    h2.topics.set("orders", 6);
    expect(new TestMember(h2, G, ["orders"]).join().memberId).toBe(r.memberId);
  });

  it("accepts a member id chosen by the client (KIP-1082)", () => {
    const h = new Harness();
    h.topics.set("orders", 1);
    const m = new TestMember(h, G, ["orders"], { memberId: "client-chosen-id" });
    expect(m.join().memberId).toBe("client-chosen-id");
  });

  it("answers an unchanged heartbeat with no records and a null assignment", () => {
    const { h, ms } = threeOverSix();
    const res = h.c.heartbeat({ groupId: G, memberId: ms[0]!.memberId, memberEpoch: ms[0]!.epoch, ownedPartitions: ms[0]!.owned }, h.now);
    expect(res.records).toEqual([]);
    expect(res.response.assignment).toBeNull();
    const bare = h.c.heartbeat({ groupId: G, memberId: ms[0]!.memberId, memberEpoch: ms[0]!.epoch }, h.now);
    expect(bare.records).toEqual([]);
    expect(bare.response.assignment).toBeNull();
  });
});

describe("coordinator: revocation before reassignment", () => {
  it("gives a partition to its new owner only after the old owner acked its revocation", () => {
    const h = new Harness();
    h.topics.set("orders", 6);
    const a = new TestMember(h, G, ["orders"]);
    const b = new TestMember(h, G, ["orders"]);
    a.join();
    expect(a.count()).toBe(6);

    // b joins at the new epoch but gets nothing: a still owns all six.
    const rb = b.join();
    expect(rb.memberEpoch).toBe(2);
    expect(rb.assignment).toEqual([]);
    let d = h.describe(G);
    expect(d.state).toBe("reconciling");
    expect(d.members.find((m) => m.memberId === b.memberId)?.state).toBe("unreleased-partitions");
    expectDisjointOwnership(d);

    // a's next heartbeat tells it to give up three; it keeps its epoch until it acks.
    const ra1 = h.heartbeat({ groupId: G, memberId: a.memberId, memberEpoch: a.epoch, ownedPartitions: a.owned });
    expect(ra1.memberEpoch).toBe(1);
    expect(keysOf(ra1.assignment ?? []).size).toBe(3);
    d = h.describe(G);
    const am = d.members.find((m) => m.memberId === a.memberId);
    expect(am?.state).toBe("unrevoked-partitions");
    expect(keysOf(am?.pendingRevocation ?? []).size).toBe(3);
    expectDisjointOwnership(d);

    // b still gets nothing: the revocation is not acked yet.
    expect(b.heartbeat().assignment).toBeNull();
    expect(b.count()).toBe(0);

    // A heartbeat that still lists the revoked partitions, or that omits `owned`, acks nothing.
    expect(h.heartbeat({ groupId: G, memberId: a.memberId, memberEpoch: 1, ownedPartitions: a.owned }).memberEpoch).toBe(1);
    expect(h.heartbeat({ groupId: G, memberId: a.memberId, memberEpoch: 1 }).memberEpoch).toBe(1);
    expect(b.heartbeat().assignment).toBeNull();

    // a acks by leaving them out; it moves to epoch 2; then b gets them.
    a.take(ra1);
    expect(a.heartbeat().memberEpoch).toBe(2);
    const rb2 = b.heartbeat();
    expect(keysOf(rb2.assignment ?? []).size).toBe(3);
    expect(new Set([...keys(a.owned), ...keys(b.owned)]).size).toBe(6);
    expect(h.describe(G).state).toBe("stable");
  });

  it("removes a member that does not give up revoked partitions within its rebalance timeout", () => {
    const h = new Harness();
    h.topics.set("orders", 4);
    const a = new TestMember(h, G, ["orders"], { rebalanceTimeoutMs: 3_000 });
    const b = new TestMember(h, G, ["orders"]);
    a.join();
    b.join();
    // a heartbeats (and is told to revoke) but never acks.
    const stubborn = (): void => void h.heartbeat({ groupId: G, memberId: a.memberId, memberEpoch: a.epoch, ownedPartitions: a.owned });
    stubborn();
    for (let i = 0; i < 2; i++) {
      h.advance(1_000);
      stubborn();
      b.heartbeat();
      expect(h.tick()).toEqual([]);
    }
    h.advance(1_000);
    stubborn();
    const removed = h.tick();
    expect(removed.map((r) => r.type)).toContain("member-tombstone");
    expect(errorName(() => stubborn())).toBe("UNKNOWN_MEMBER_ID");
    b.heartbeat();
    expect(b.count()).toBe(4);
  });
});

describe("coordinator: leaving and timeouts", () => {
  it("reassigns a leaving member's partitions to the others", () => {
    const { h, ms } = threeOverSix();
    const before = h.describe(G).groupEpoch;
    const r = ms[2]!.leave();
    expect(r.memberEpoch).toBe(-1);
    const d = h.describe(G);
    expect(d.members).toHaveLength(2);
    expect(d.groupEpoch).toBe(before + 1);
    stabilize(h, G, ms.slice(0, 2));
    expect(ms[0]!.count() + ms[1]!.count()).toBe(6);
    expect([ms[0]!.count(), ms[1]!.count()]).toEqual([3, 3]);
    // Sticky: the survivors kept what they had.
    expect(errorName(() => ms[2]!.heartbeat())).toBe("UNKNOWN_MEMBER_ID");
  });

  it("removes a member whose session timed out, and only then", () => {
    const { h, ms } = threeOverSix();
    const [a, b, dead] = ms;
    for (let t = 0; t < 9; t++) {
      h.advance(1_000);
      a!.heartbeat();
      b!.heartbeat();
      expect(h.tick()).toEqual([]);
    }
    h.advance(1_000); // 10 s since dead's last heartbeat
    a!.heartbeat();
    b!.heartbeat();
    const records = h.tick();
    expect(records.filter((r) => r.type === "member-tombstone").map((r) => (r.type === "member-tombstone" ? r.memberId : ""))).toEqual([
      dead!.memberId,
    ]);
    expect(
      h
        .describe(G)
        .members.map((m) => m.memberId)
        .sort(),
    ).toEqual([a!.memberId, b!.memberId].sort());
    stabilize(h, G, [a!, b!]);
    expect(a!.count() + b!.count()).toBe(6);
    // The dead member is a zombie now: fenced from heartbeats and commits.
    expect(errorName(() => dead!.heartbeat())).toBe("UNKNOWN_MEMBER_ID");
    const c = h.c.commitOffsets(
      { groupId: G, memberId: dead!.memberId, memberEpoch: dead!.epoch, offsets: [{ topic: "orders", partition: 0, offset: 5 }] },
      h.now,
    );
    expect(c.records).toEqual([]);
    expect(c.response.error?.kind.name).toBe("UNKNOWN_MEMBER_ID");
  });

  it("starts timers at the first tick after a load, so a loaded coordinator does not expire everyone", () => {
    const { h } = threeOverSix();
    const loaded = h.replayed();
    h.advance(60_000);
    expect(loaded.tick(h.now)).toEqual([]);
    h.advance(SESSION_MS - 1);
    expect(loaded.tick(h.now)).toEqual([]);
    h.advance(1);
    expect(loaded.tick(h.now).filter((r) => r.type === "member-tombstone")).toHaveLength(3);
  });
});

describe("coordinator: epoch fencing", () => {
  it("rejects a zombie heartbeat and commit with an old epoch and changes nothing", () => {
    const h = new Harness();
    h.topics.set("orders", 6);
    const a = new TestMember(h, G, ["orders"]);
    a.join();
    const zombieEpoch = a.epoch;
    const b = new TestMember(h, G, ["orders"]);
    b.join();
    stabilize(h, G, [a, b]);
    expect(a.epoch).toBeGreaterThan(zombieEpoch + 0);
    const state = JSON.stringify(h.c.toJSON());
    const older = Math.max(1, a.epoch - 1);

    expect(
      errorName(() =>
        h.c.heartbeat(
          {
            groupId: G,
            memberId: a.memberId,
            memberEpoch: older,
            ownedPartitions: keysOf(a.owned).size ? [{ topic: "orders", partitions: [0, 1, 2, 3, 4, 5] }] : [],
          },
          h.now,
        ),
      ),
    ).toBe("FENCED_MEMBER_EPOCH");
    expect(errorName(() => h.c.heartbeat({ groupId: G, memberId: a.memberId, memberEpoch: a.epoch + 5 }, h.now))).toBe(
      "FENCED_MEMBER_EPOCH",
    );

    const stale = h.c.commitOffsets(
      {
        groupId: G,
        memberId: a.memberId,
        memberEpoch: older,
        offsets: [{ topic: a!.owned[0]!.topic, partition: a!.owned[0]!.partitions[0]!, offset: 7 }],
      },
      h.now,
    );
    expect(stale.records).toEqual([]);
    expect(stale.response.error?.kind.name).toBe("STALE_MEMBER_EPOCH");
    expect(stale!.response.offsets[0]!.error?.kind.name).toBe("STALE_MEMBER_EPOCH");
    const ahead = h.c.commitOffsets(
      { groupId: G, memberId: a.memberId, memberEpoch: a.epoch + 1, offsets: [{ topic: "orders", partition: 0, offset: 7 }] },
      h.now,
    );
    expect(ahead.response.error?.kind.name).toBe("FENCED_MEMBER_EPOCH");
    expect(ahead.records).toEqual([]);
    expect(JSON.stringify(h.c.toJSON())).toBe(state);

    // A fenced member starts over with epoch 0 and the same id.
    const r = h.heartbeat({ groupId: G, memberId: a.memberId, memberEpoch: 0, subscribedTopics: ["orders"] });
    expect(r.memberId).toBe(a.memberId);
    expect(r.assignment).not.toBeNull();
    a.take(r);
    stabilize(h, G, [a, b]);
    expectDisjointOwnership(h.describe(G));
  });

  it("accepts the previous epoch once when the response that bumped it was lost", () => {
    const h = new Harness();
    h.topics.set("orders", 6);
    const a = new TestMember(h, G, ["orders"]);
    a.join();
    const b = new TestMember(h, G, ["orders"]);
    b.join();
    stabilize(h, G, [a, b]);
    const c = new TestMember(h, G, ["orders"]);
    c.join();
    // a's response for the revocation arrives; the one with its new epoch is lost.
    a.heartbeat();
    const lostEpoch = a.epoch;
    const lost = h.heartbeat({ groupId: G, memberId: a.memberId, memberEpoch: a.epoch, ownedPartitions: a.owned });
    expect(lost.memberEpoch).toBeGreaterThan(lostEpoch);
    // a retries with its old epoch and what it owns: accepted, and told the full assignment.
    const retry = h.heartbeat({ groupId: G, memberId: a.memberId, memberEpoch: lostEpoch, ownedPartitions: a.owned });
    expect(retry.memberEpoch).toBe(lost.memberEpoch);
    expect(retry.assignment).not.toBeNull();
    // ...but not when it claims partitions it does not own.
    expect(
      errorName(() =>
        h.c.heartbeat(
          {
            groupId: G,
            memberId: a.memberId,
            memberEpoch: lostEpoch,
            ownedPartitions: [{ topic: "orders", partitions: [0, 1, 2, 3, 4, 5] }],
          },
          h.now,
        ),
      ),
    ).toBe("FENCED_MEMBER_EPOCH");
  });
});

describe("coordinator: static membership", () => {
  it("gives a static member that comes back within its session its partitions, with no reassignment of others", () => {
    const { h, ms } = threeOverSix({ static: true });
    const before = h.describe(G);
    const targetsByInstance = new Map(before.members.map((m) => [m.instanceId, keys(m.targetAssignment)]));
    const epochBefore = ms[1]!.epoch;
    const ownedBefore = keys(ms[1]!.owned);

    expect(ms[1]!.staticLeave().memberEpoch).toBe(-2);
    let d = h.describe(G);
    expect(d.groupEpoch).toBe(before.groupEpoch);
    expect(d.members).toHaveLength(3);
    // The others notice nothing.
    h.advance(5_000);
    for (const m of [ms[0], ms[2]]) expect(m!.heartbeat().assignment).toBeNull();
    expect(h.tick()).toEqual([]);

    // A new process with the same instance id comes back, 9 s after the leave.
    h.advance(4_000);
    const back = new TestMember(h, G, ["orders"], { instanceId: "consumer-2" });
    const r = back.join();
    expect(r.memberId).not.toBe(ms[1]!.memberId);
    expect(r.memberEpoch).toBe(epochBefore);
    expect(keys(r.assignment ?? [])).toEqual(ownedBefore);
    d = h.describe(G);
    expect(d.groupEpoch).toBe(before.groupEpoch);
    expect(d.state).toBe("stable");
    expect(new Map(d.members.map((m) => [m.instanceId, keys(m.targetAssignment)]))).toEqual(targetsByInstance);
    for (const m of [ms[0], ms[2]]) expect(m!.heartbeat().assignment).toBeNull();
    // The old member id is gone.
    expect(errorName(() => ms[1]!.heartbeat())).toBe("UNKNOWN_MEMBER_ID");
  });

  it("removes a static member that stays away past its session timeout, and reassigns", () => {
    const { h, ms } = threeOverSix({ static: true });
    const epoch = h.describe(G).groupEpoch;
    ms[1]!.staticLeave();
    for (let t = 0; t < 10; t++) {
      h.advance(1_000);
      ms[0]!.heartbeat();
      ms[2]!.heartbeat();
      h.tick();
    }
    const d = h.describe(G);
    expect(d.members).toHaveLength(2);
    expect(d.groupEpoch).toBe(epoch + 1);
    stabilize(h, G, [ms[0]!, ms[2]!]);
    expect(ms[0]!.count() + ms[2]!.count()).toBe(6);
  });

  it("refuses a second active holder of an instance id (UNRELEASED_INSTANCE_ID)", () => {
    const { h } = threeOverSix({ static: true });
    const before = JSON.stringify(h.c.toJSON());
    expect(
      errorName(() =>
        h.c.heartbeat({ groupId: G, memberId: "", memberEpoch: 0, instanceId: "consumer-1", subscribedTopics: ["orders"] }, h.now),
      ),
    ).toBe("UNRELEASED_INSTANCE_ID");
    expect(JSON.stringify(h.c.toJSON())).toBe(before);
  });

  it("needs an instance id to leave with epoch -2", () => {
    const { h, ms } = threeOverSix();
    expect(errorName(() => h.c.heartbeat({ groupId: G, memberId: ms[0]!.memberId, memberEpoch: -2 }, h.now))).toBe("INVALID_ARGUMENT");
  });
});

describe("coordinator: topics", () => {
  it("reassigns when a subscribed topic gains partitions (onTopicsChanged)", () => {
    const { h, ms } = threeOverSix();
    const epoch = h.describe(G).groupEpoch;
    h.topics.set("orders", 9);
    const records = h.c.onTopicsChanged(new Map([["orders", 9]]));
    expect(records.map((r) => r.type)).toContain("group");
    h.append(records);
    expect(h.describe(G).groupEpoch).toBe(epoch + 1);
    const before = ms.map((m) => keys(m.owned));
    stabilize(h, G, ms);
    expect(ms.map((m) => m.count())).toEqual([3, 3, 3]);
    // Sticky: nobody lost a partition it had.
    ms.forEach((m, i) => expect(keys(m.owned)).toEqual(expect.arrayContaining(before[i]!)));
    expect(h.c.onTopicsChanged(new Map([["orders", 9]]))).toEqual([]);
  });

  it("notices a partition count change at the next heartbeat even without onTopicsChanged", () => {
    const { h, ms } = threeOverSix();
    h.topics.set("orders", 12);
    stabilize(h, G, ms);
    expect(ms.map((m) => m.count())).toEqual([4, 4, 4]);
  });

  it("assigns a subscribed topic once it appears", () => {
    const h = new Harness();
    const m = new TestMember(h, G, ["later"]);
    expect(m.join().assignment).toEqual([]);
    h.topics.set("later", 2);
    h.append(h.c.onTopicsChanged(new Map([["later", 2]])));
    m.heartbeat();
    expect(keys(m.owned)).toEqual(["later:0", "later:1"]);
  });

  it("deletes offsets of a deleted topic", () => {
    const h = new Harness();
    h.topics.set("gone", 2);
    h.write(h.c.commitOffsets({ groupId: G, memberId: "", memberEpoch: -1, offsets: [{ topic: "gone", partition: 1, offset: 3 }] }, h.now));
    h.topics.delete("gone");
    const records = h.c.onTopicsChanged(new Map([["gone", 0]]));
    expect(records.map((r) => r.type)).toEqual(["offset-tombstone"]);
    h.append(records);
    expect(h.c.listGroups()).toEqual([]);
  });

  it("changes subscriptions: a member that drops a topic revokes it", () => {
    const h = new Harness();
    h.topics.set("a", 2);
    h.topics.set("b", 2);
    const m = new TestMember(h, G, ["a", "b"]);
    m.join();
    expect(m.count()).toBe(4);
    m.topics = ["a"];
    const r = m.heartbeat({ subscribedTopics: ["a"] });
    expect(keys(r.assignment ?? [])).toEqual(["a:0", "a:1"]);
    expect(h.describe(G).state).toBe("reconciling");
    m.heartbeat();
    expect(h.describe(G).state).toBe("stable");
  });
});

describe("coordinator: assignors per group", () => {
  it("uses the range assignor when the group asks for it", () => {
    const h = new Harness();
    h.topics.set("t", 5);
    const ms = ["x", "y"].map((i) => new TestMember(h, G, ["t"], { assignor: "range", instanceId: i }));
    for (const m of ms) m.join();
    stabilize(h, G, ms);
    expect(keys(ms[0]!.owned)).toEqual(["t:0", "t:1", "t:2"]);
    expect(keys(ms[1]!.owned)).toEqual(["t:3", "t:4"]);
    expect(h.describe(G).assignor).toBe("range");
    const other = new TestMember(h, G, ["t"], { assignor: "uniform" });
    expect(errorName(() => other.join())).toBe("INCONSISTENT_GROUP_PROTOCOL");
  });
});

describe("coordinator: limits and bad input", () => {
  it("refuses members beyond the group limit and groups beyond the coordinator limit", () => {
    const h = new Harness({ membersPerGroupMax: 2, groupsMax: 1 });
    h.topics.set("t", 1);
    new TestMember(h, G, ["t"]).join();
    new TestMember(h, G, ["t"]).join();
    expect(errorName(() => new TestMember(h, G, ["t"]).join())).toBe("GROUP_MAX_SIZE_REACHED");
    expect(errorName(() => new TestMember(h, "another", ["t"]).join())).toBe("GROUP_MAX_SIZE_REACHED");
  });

  it("rejects malformed heartbeats with specific errors and changes nothing", () => {
    const { h, ms } = threeOverSix();
    const before = JSON.stringify(h.c.toJSON());
    const logLength = h.log.length;
    const hb = (over: Record<string, unknown>): string =>
      errorName(() => h.c.heartbeat({ groupId: G, memberId: "", memberEpoch: 0, subscribedTopics: ["orders"], ...over } as never, h.now));
    expect(hb({ groupId: "" })).toBe("INVALID_GROUP_ID");
    expect(hb({ groupId: "g".repeat(250) })).toBe("INVALID_GROUP_ID");
    expect(hb({ groupId: "bad\u0000id" })).toBe("INVALID_GROUP_ID");
    expect(hb({ subscribedTopics: undefined })).toBe("INVALID_ARGUMENT");
    expect(hb({ subscribedTopics: ["no/such"] })).toBe("INVALID_TOPIC");
    expect(hb({ subscribedTopics: Array.from({ length: 101 }, (_, i) => `t${i}`) })).toBe("INVALID_ARGUMENT");
    expect(hb({ memberEpoch: -3 })).toBe("INVALID_ARGUMENT");
    expect(hb({ memberEpoch: 1.5 })).toBe("INVALID_ARGUMENT");
    expect(hb({ assignor: "sticky" })).toBe("INVALID_ARGUMENT");
    expect(hb({ sessionTimeoutMs: 10 })).toBe("INVALID_ARGUMENT");
    expect(hb({ rebalanceTimeoutMs: -1 })).toBe("INVALID_ARGUMENT");
    expect(hb({ memberId: "x".repeat(129) })).toBe("INVALID_ARGUMENT");
    expect(hb({ memberEpoch: 3, memberId: "" })).toBe("INVALID_ARGUMENT");
    expect(hb({ memberEpoch: 3, memberId: "nobody" })).toBe("UNKNOWN_MEMBER_ID");
    expect(hb({ memberEpoch: -1, memberId: "nobody" })).toBe("UNKNOWN_MEMBER_ID");
    expect(hb({ memberEpoch: ms[0]!.epoch, memberId: ms[0]!.memberId, ownedPartitions: [{ topic: "orders", partitions: [-1] }] })).toBe(
      "INVALID_ARGUMENT",
    );
    expect(JSON.stringify(h.c.toJSON())).toBe(before);
    expect(h.log.length).toBe(logLength);
  });

  it("lists and describes groups; unknown and invalid ids get errors in their entries", () => {
    const { h } = threeOverSix();
    expect(h.c.listGroups()).toEqual([
      { groupId: G, state: "stable", members: 3, type: "consumer", protocolType: "consumer", classicState: null },
    ]);
    expect(h.c.listGroups(["empty"])).toEqual([]);
    const [ok, unknown, invalid] = h.c.describeGroups([G, "nope", ""]);
    expect(ok!.error).toBeNull();
    expect(ok!.members.map((m) => m.clientId)).toEqual(["test", "test", "test"]);
    expect(unknown!.error?.kind.name).toBe("GROUP_ID_NOT_FOUND");
    expect(unknown!.error?.message).toContain("group_id: group nope");
    expect(invalid!.error?.kind.name).toBe("INVALID_GROUP_ID");
  });
});
