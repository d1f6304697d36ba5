import { describe, expect, it } from "vitest";
import { RillError } from "../../../src/base/errors.ts";
import type { GroupRecord } from "../../../src/coordinator/records.ts";
import {
  assignmentRecord,
  assignmentTombstone,
  decodeGroupRecord,
  encodeGroupRecord,
  fromKeyValue,
  groupRecord,
  groupRecordKey,
  groupTombstone,
  memberRecord,
  memberTombstone,
  offsetRecord,
  offsetTombstone,
  targetEpochRecord,
  targetEpochTombstone,
  targetRecord,
  targetTombstone,
  toKeyValue,
} from "../../../src/coordinator/records.ts";

const G = "shop:eu%1";
const M = "m:1";

const samples: GroupRecord[] = [
  groupRecord({ groupId: G, epoch: 3, assignor: "uniform", topicPartitions: { orders: 6, audit: 2 } }),
  targetEpochRecord(G, 3),
  memberRecord({
    groupId: G,
    memberId: M,
    instanceId: "i-1",
    subscribedTopics: ["orders", "audit", "orders"],
    rebalanceTimeoutMs: 1000,
    sessionTimeoutMs: 2000,
    clientId: "c",
    clientHost: "h",
  }),
  targetRecord(G, M, [
    { topic: "orders", partitions: [3, 1, 1] },
    { topic: "audit", partitions: [0] },
  ]),
  assignmentRecord({
    groupId: G,
    memberId: M,
    memberEpoch: 3,
    previousMemberEpoch: 2,
    state: "unrevoked-partitions",
    assigned: [{ topic: "orders", partitions: [1] }],
    pendingRevocation: [{ topic: "orders", partitions: [3] }],
  }),
  offsetRecord({ groupId: G, topic: "orders", partition: 3, offset: 42, metadata: "md", leaderEpoch: -1, commitTimestampMs: 1 }),
  groupTombstone(G),
  targetEpochTombstone(G),
  memberTombstone(G, M),
  targetTombstone(G, M),
  assignmentTombstone(G, M),
  offsetTombstone(G, "orders", 3),
];

describe("group records", () => {
  it("have documented keys, with ids escaped so ':' in a group or member id cannot collide", () => {
    expect(samples.map((r) => r.key)).toEqual([
      "group:shop%3Aeu%251",
      "target-epoch:shop%3Aeu%251",
      "member:shop%3Aeu%251:m%3A1",
      "target:shop%3Aeu%251:m%3A1",
      "assignment:shop%3Aeu%251:m%3A1",
      "offset:shop%3Aeu%251:orders:3",
      "group:shop%3Aeu%251",
      "target-epoch:shop%3Aeu%251",
      "member:shop%3Aeu%251:m%3A1",
      "target:shop%3Aeu%251:m%3A1",
      "assignment:shop%3Aeu%251:m%3A1",
      "offset:shop%3Aeu%251:orders:3",
    ]);
    for (const r of samples) expect(groupRecordKey(r)).toBe(r.key);
    expect(memberRecord({ ...memberBody(), groupId: "a:b", memberId: "c" }).key).not.toBe(
      memberRecord({ ...memberBody(), groupId: "a", memberId: "b:c" }).key,
    );
  });

  it("are canonical: sorted topics and partitions, no duplicates", () => {
    const m = samples[2];
    expect(m!.type === "member" && m.subscribedTopics).toEqual(["audit", "orders"]);
    const t = samples[3];
    expect(t!.type === "target" && t.partitions).toEqual([
      { topic: "audit", partitions: [0] },
      { topic: "orders", partitions: [1, 3] },
    ]);
    const g = samples[0];
    expect(g!.type === "group" && Object.keys(g.topicPartitions)).toEqual(["audit", "orders"]);
  });

  it("round-trip through JSON bytes and through the compacted key/value form (null value = tombstone)", () => {
    for (const r of samples) {
      expect(decodeGroupRecord(encodeGroupRecord(r))).toEqual(r);
      const kv = toKeyValue(r);
      expect(kv.key).toBe(r.key);
      expect(kv.value === null).toBe(r.type.endsWith("-tombstone"));
      expect(fromKeyValue(kv.key, kv.value)).toEqual(r);
    }
  });

  it("keeps a stable JSON layout (v1)", () => {
    expect(encodeGroupRecord(samples[5]!).toString("utf8")).toBe(
      '{"type":"offset","v":1,"key":"offset:shop%3Aeu%251:orders:3","groupId":"shop:eu%1","topic":"orders","partition":3,"offset":42,"metadata":"md","leaderEpoch":-1,"commitTimestampMs":1}',
    );
  });

  it("refuses anything that is not a valid record, loudly", () => {
    const bad = (s: string): string => {
      try {
        decodeGroupRecord(Buffer.from(s));
      } catch (e) {
        if (e instanceof RillError) return e.kind.name;
        throw e;
      }
      return "accepted";
    };
    const ok = JSON.parse(encodeGroupRecord(samples[5]!).toString()) as Record<string, unknown>;
    expect(bad("not json")).toBe("CORRUPT_MESSAGE");
    expect(bad(JSON.stringify({ ...ok, type: "nope" }))).toBe("CORRUPT_MESSAGE");
    expect(bad(JSON.stringify({ ...ok, type: "toString" }))).toBe("CORRUPT_MESSAGE");
    expect(bad(JSON.stringify({ ...ok, v: 2 }))).toBe("CORRUPT_MESSAGE");
    expect(bad(JSON.stringify({ ...ok, offset: "42" }))).toBe("CORRUPT_MESSAGE");
    expect(bad(JSON.stringify({ ...ok, key: "offset:other:orders:3" }))).toBe("CORRUPT_MESSAGE");
    const target = JSON.parse(encodeGroupRecord(samples[3]!).toString()) as Record<string, unknown>;
    expect(bad(JSON.stringify({ ...target, partitions: [{ topic: "orders", partitions: [3, 1] }] }))).toBe("CORRUPT_MESSAGE");
    expect(() => fromKeyValue("offset:g:orders:x", null)).toThrow(RillError);
    expect(() => fromKeyValue("weird:g", null)).toThrow(RillError);
    expect(() => fromKeyValue("member:g:other", encodeGroupRecord(samples[2]!))).toThrow(/does not match/);
  });
});

function memberBody() {
  return { instanceId: null, subscribedTopics: [], rebalanceTimeoutMs: 1, sessionTimeoutMs: 1, clientId: "", clientHost: "" };
}
