import { describe, expect, it } from "vitest";
import { lagOf, resolveResetOffset, resolveStartOffset } from "../../../src/coordinator/offsets.ts";
import { Harness, TestMember, errorName, nameOf, stabilize } from "./helpers.ts";

const G = "order-processing";

function group(): { h: Harness; a: TestMember; b: TestMember } {
  const h = new Harness();
  h.topics.set("orders", 4);
  h.topics.set("audit", 2);
  const a = new TestMember(h, G, ["orders"]);
  const b = new TestMember(h, G, ["orders"]);
  a.join();
  b.join();
  stabilize(h, G, [a, b]);
  return { h, a, b };
}

function commit(h: Harness, m: TestMember, offsets: { topic: string; partition: number; offset: number; metadata?: string }[]) {
  return h.write(h.c.commitOffsets({ groupId: G, memberId: m.memberId, memberEpoch: m.epoch, offsets }, h.now));
}

describe("coordinator: committing and fetching offsets", () => {
  it("commits a member's owned partitions and fetches them back", () => {
    const { h, a } = group();
    const p = a!.owned[0]!.partitions[0];
    const r = commit(h, a, [{ topic: "orders", partition: p!, offset: 42, metadata: "m" }]);
    expect(r.error).toBeNull();
    expect(r.offsets).toEqual([{ topic: "orders", partition: p, offset: 42, error: null }]);
    expect(h.c.fetchOffsets(G, [{ topic: "orders", partitions: [p!] }])).toEqual([
      { topic: "orders", partition: p, offset: 42, metadata: "m", leaderEpoch: -1, commitTimestampMs: h.now },
    ]);
    const all = h.c.fetchOffsets(G, [{ topic: "orders", partitions: [] }]);
    expect(all.map((o) => [o.partition, o.offset])).toEqual([0, 1, 2, 3].map((i) => [i, i === p ? 42 : -1]));
    expect(h.c.fetchOffsets(G, null).map((o) => o.partition)).toEqual([p]);
    expect(h.c.fetchOffsets("unknown-group", null)).toEqual([]);
  });

  it("rejects a commit for a partition the member does not own, and applies the others", () => {
    const { h, a, b } = group();
    const mine = a!.owned[0]!.partitions[0];
    const theirs = b!.owned[0]!.partitions[0];
    const before = h.c.fetchOffsets(G, [{ topic: "orders", partitions: [] }]);
    const r = commit(h, a, [
      { topic: "orders", partition: theirs!, offset: 9 },
      { topic: "orders", partition: mine!, offset: 10 },
      { topic: "audit", partition: 0, offset: 1 },
    ]);
    expect(r.error).toBeNull();
    expect(r.offsets.map((o) => nameOf(o.error) ?? "ok")).toEqual(["STALE_MEMBER_EPOCH", "ok", "STALE_MEMBER_EPOCH"]);
    expect(r!.offsets[0]!.error?.message).toContain(`offsets[0]: orders/${theirs} is not owned`);
    const after = h.c.fetchOffsets(G, [{ topic: "orders", partitions: [] }]);
    expect(after.find((o) => o.partition === theirs)).toEqual(before.find((o) => o.partition === theirs));
    expect(after.find((o) => o.partition === mine)?.offset).toBe(10);
  });

  it("lets a member commit partitions it is revoking until it acks, and not after", () => {
    const { h, a, b } = group();
    const c = new TestMember(h, G, ["orders"]);
    c.join();
    // a and b are told to give something up (4 partitions over 3 members) but do not ack yet.
    for (const m of [a, b]) h.heartbeat({ groupId: G, memberId: m.memberId, memberEpoch: m.epoch, ownedPartitions: m.owned });
    const d = h.describe(G);
    const revoker = d.members.find((m) => m.pendingRevocation.length > 0);
    expect(revoker).toBeDefined();
    const m = revoker?.memberId === a.memberId ? a : b;
    const revoking = revoker?.pendingRevocation[0]?.partitions[0] ?? -1;
    // It still owns the partition: its commit is accepted.
    expect(commit(h, m, [{ topic: "orders", partition: revoking, offset: 77 }])!.offsets[0]!.error).toBeNull();
    stabilize(h, G, [a, b, c]);
    // After the ack it does not: refused, and the committed offset stays.
    expect(nameOf(commit(h, m, [{ topic: "orders", partition: revoking, offset: 78 }])!.offsets[0]!.error)).toBe("STALE_MEMBER_EPOCH");
    expect(h!.c.fetchOffsets(G, [{ topic: "orders", partitions: [revoking] }])[0]!.offset).toBe(77);
  });

  it("accepts commits without membership only while the group has no members", () => {
    const { h, a, b } = group();
    const admin = (offset: number, partition = 0) =>
      h.write(h.c.commitOffsets({ groupId: G, memberId: "", memberEpoch: -1, offsets: [{ topic: "orders", partition, offset }] }, h.now));
    const refused = admin(5);
    expect(nameOf(refused.error)).toBe("NON_EMPTY_GROUP");
    expect(nameOf(refused!.offsets[0]!.error)).toBe("NON_EMPTY_GROUP");
    expect(h!.c.fetchOffsets(G, [{ topic: "orders", partitions: [0] }])[0]!.offset).toBe(-1);
    a.leave();
    b.leave();
    expect(admin(5).error).toBeNull();
    expect(h!.c.fetchOffsets(G, [{ topic: "orders", partitions: [0] }])[0]!.offset).toBe(5);
    expect(nameOf(admin(5, 99)!.offsets[0]!.error)).toBe("UNKNOWN_TOPIC_OR_PARTITION");
    expect(errorName(() => h.c.commitOffsets({ groupId: G, memberId: "", memberEpoch: 3, offsets: [] }, h.now))).toBe("INVALID_ARGUMENT");
  });

  it("refuses bad offsets per partition with specific errors and invalid groups for the whole call", () => {
    const { h, a } = group();
    const p = a!.owned[0]!.partitions[0];
    const r = commit(h, a, [
      { topic: "orders", partition: p!, offset: -5 },
      { topic: "orders", partition: p!, offset: 1, metadata: "x".repeat(4097) },
      { topic: "bad topic", partition: 0, offset: 1 },
      { topic: "orders", partition: -1, offset: 1 },
    ]);
    expect(r.offsets.map((o) => nameOf(o.error))).toEqual([
      "INVALID_ARGUMENT",
      "OFFSET_METADATA_TOO_LARGE",
      "INVALID_TOPIC",
      "INVALID_ARGUMENT",
    ]);
    expect(r!.offsets[0]!.error?.message).toContain("offsets[0].offset");
    expect(h.c.fetchOffsets(G, null)).toEqual([]);
    for (const groupId of ["", "g".repeat(250)]) {
      expect(errorName(() => h.c.commitOffsets({ groupId, memberId: a.memberId, memberEpoch: a.epoch, offsets: [] }, h.now))).toBe(
        "INVALID_GROUP_ID",
      );
      expect(errorName(() => h.c.fetchOffsets(groupId, null))).toBe("INVALID_GROUP_ID");
    }
    const tooMany = Array.from({ length: 10_001 }, () => ({ topic: "orders", partition: 0, offset: 0 }));
    expect(errorName(() => h.c.commitOffsets({ groupId: G, memberId: a.memberId, memberEpoch: a.epoch, offsets: tooMany }, h.now))).toBe(
      "INVALID_ARGUMENT",
    );
    const unknown = h.c.commitOffsets(
      { groupId: G, memberId: "ghost", memberEpoch: 1, offsets: [{ topic: "orders", partition: 0, offset: 1 }] },
      h.now,
    );
    expect(nameOf(unknown.response.error)).toBe("UNKNOWN_MEMBER_ID");
    expect(unknown.records).toEqual([]);
  });
});

describe("coordinator: resetting and deleting offsets", () => {
  it("resets offsets only while the group has no members", () => {
    const { h, a, b } = group();
    commit(h, a, [{ topic: "orders", partition: a!.owned[0]!.partitions[0]!, offset: 50 }]);
    const before = JSON.stringify(h.c.toJSON());
    expect(errorName(() => h.c.resetOffsets(G, [{ topic: "orders", partition: 0, offset: 0 }], h.now))).toBe("NON_EMPTY_GROUP");
    expect(JSON.stringify(h.c.toJSON())).toBe(before);
    a.leave();
    b.leave();
    const r = h.write(
      h.c.resetOffsets(
        G,
        [0, 1, 2, 3].map((partition) => ({ topic: "orders", partition, offset: 7 })),
        h.now,
      ),
    );
    expect(r.every((o) => o.error === null)).toBe(true);
    expect(h.c.fetchOffsets(G, null).map((o) => o.offset)).toEqual([7, 7, 7, 7]);
    // Per-partition problems come back per partition; the rest is applied.
    const mixed = h.write(
      h.c.resetOffsets(
        G,
        [
          { topic: "orders", partition: 9, offset: 1 },
          { topic: "orders", partition: 1, offset: 3 },
        ],
        h.now,
      ),
    );
    expect(mixed.map((o) => nameOf(o.error) ?? "ok")).toEqual(["UNKNOWN_TOPIC_OR_PARTITION", "ok"]);
    // A dry run is a reset whose records are dropped.
    const dry = h.c.resetOffsets(G, [{ topic: "orders", partition: 2, offset: 0 }], h.now);
    expect(dry.records).toHaveLength(1);
    expect(h!.c.fetchOffsets(G, [{ topic: "orders", partitions: [2] }])[0]!.offset).toBe(7);
  });

  it("deletes offsets of topics nobody subscribes to", () => {
    const { h, a, b } = group();
    a.heartbeat({ subscribedTopics: ["orders", "audit"] });
    a.topics = ["orders", "audit"];
    stabilize(h, G, [a, b]);
    h.write(
      h.c.resetOffsets(
        "idle",
        [
          { topic: "audit", partition: 0, offset: 1 },
          { topic: "orders", partition: 0, offset: 1 },
        ],
        h.now,
      ),
    );
    const r = h.write(h.c.deleteOffsets("idle", [{ topic: "audit", partitions: [] }]));
    expect(r).toEqual([{ topic: "audit", partition: 0, error: null }]);
    expect(h.c.fetchOffsets("idle", null).map((o) => o.topic)).toEqual(["orders"]);
    const owned = a.owned.find((tp) => tp.topic === "audit");
    if (owned !== undefined) commit(h, a, [{ topic: "audit", partition: owned.partitions[0]!, offset: 2 }]);
    const refused = h.write(h.c.deleteOffsets(G, [{ topic: "audit", partitions: [0] }]));
    expect(nameOf(refused[0]!.error)).toBe("GROUP_SUBSCRIBED_TO_TOPIC");
    expect(errorName(() => h.c.deleteOffsets("never-existed", []))).toBe("GROUP_ID_NOT_FOUND");
  });

  it("deletes only empty groups, with their offsets", () => {
    const { h, a, b } = group();
    commit(h, a, [{ topic: "orders", partition: a!.owned[0]!.partitions[0]!, offset: 3 }]);
    const r1 = h.write(h.c.deleteGroups([G, "nope", ""]));
    expect(r1.map((r) => nameOf(r.error))).toEqual(["NON_EMPTY_GROUP", "GROUP_ID_NOT_FOUND", "INVALID_GROUP_ID"]);
    expect(h.c.listGroups().map((g) => g.groupId)).toEqual([G]);
    a.leave();
    b.leave();
    expect(h.c.listGroups()).toEqual([
      { groupId: G, state: "empty", members: 0, type: "consumer", protocolType: "consumer", classicState: null },
    ]);
    const del = h.c.deleteGroups([G, G]);
    expect(del.response.map((r) => nameOf(r.error) ?? "ok")).toEqual(["ok", "GROUP_ID_NOT_FOUND"]);
    h.write(del);
    expect(h.c.listGroups()).toEqual([]);
    expect(h.c.toJSON()).toEqual({ groups: [] });
    expect(h!.c.fetchOffsets(G, [{ topic: "orders", partitions: [0] }])[0]!.offset).toBe(-1);
    expect(h!.c.describeGroups([G])[0]!.error?.kind.name).toBe("GROUP_ID_NOT_FOUND");
    // A new group of the same name starts from scratch.
    const c = new TestMember(h, G, ["orders"]);
    expect(c.join().memberEpoch).toBe(1);
  });
});

describe("coordinator: describe with lag", () => {
  it("reports committed offsets, log end offsets and lag per partition, with owners", () => {
    const { h, a } = group();
    const p = a!.owned[0]!.partitions[0];
    commit(h, a, [{ topic: "orders", partition: p!, offset: 40 }]);
    const d = h.c.describeGroups([G], (topic, partition) => (topic === "orders" ? 100 + partition : -1))[0];
    expect(d!.offsets).toHaveLength(4);
    const row = d!.offsets.find((o) => o.partition === p);
    expect(row).toEqual({ topic: "orders", partition: p, committedOffset: 40, logEndOffset: 100 + p!, lag: 60 + p!, memberId: a.memberId });
    expect(d!.offsets.filter((o) => o.committedOffset === -1).every((o) => o.lag === -1)).toBe(true);
  });
});

describe("offsets: where reading starts and where resets go", () => {
  const range = { logStartOffset: 10, logEndOffset: 100 };
  it("starts at the committed offset when it is in range, else by auto.offset.reset", () => {
    expect(resolveStartOffset(50, "none", range, "t/0")).toBe(50);
    expect(resolveStartOffset(null, "earliest", range, "t/0")).toBe(10);
    expect(resolveStartOffset(null, "latest", range, "t/0")).toBe(100);
    expect(resolveStartOffset(5, "earliest", range, "t/0")).toBe(10);
    expect(errorName(() => resolveStartOffset(null, "none", range, "orders/3"))).toBe("OFFSET_OUT_OF_RANGE");
    expect(errorName(() => resolveStartOffset(200, "none", range, "orders/3"))).toBe("OFFSET_OUT_OF_RANGE");
  });
  it("resolves reset specs, clamping into the log's range", () => {
    expect(resolveResetOffset({ kind: "earliest" }, range)).toBe(10);
    expect(resolveResetOffset({ kind: "latest" }, range)).toBe(100);
    expect(resolveResetOffset({ kind: "offset", offset: 3 }, range)).toBe(10);
    expect(resolveResetOffset({ kind: "offset", offset: 300 }, range)).toBe(100);
    expect(resolveResetOffset({ kind: "timestamp", offsetForTimestamp: 42 }, range)).toBe(42);
    expect(resolveResetOffset({ kind: "timestamp", offsetForTimestamp: null }, range)).toBe(100);
    expect(lagOf(40, 100)).toBe(60);
    expect(lagOf(-1, 100)).toBe(-1);
    expect(lagOf(120, 100)).toBe(0);
  });
});
