/**
 * Golden bytes of the group APIs, every version implemented: each request and response layout is
 * written out here field by field from Kafka's message definitions (clients/src/main/resources/
 * common/message/*.json: the versions each field lives in, nullable versions, flexible versions
 * with compact lengths and tag sections), independently of src/kafka/schema.ts. The test encodes
 * a sample with the API's message and compares the bytes, then decodes those bytes and encodes
 * them again.
 */
import { describe, expect, it } from "vitest";
import { ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse } from "../../../src/kafka/apis/consumer-group-describe.ts";
import { ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse } from "../../../src/kafka/apis/consumer-group-heartbeat.ts";
import { DeleteGroupsRequest, DeleteGroupsResponse } from "../../../src/kafka/apis/delete-groups.ts";
import { DescribeGroupsRequest, DescribeGroupsResponse } from "../../../src/kafka/apis/describe-groups.ts";
import { FindCoordinatorRequest, FindCoordinatorResponse } from "../../../src/kafka/apis/find-coordinator.ts";
import { HeartbeatRequest, HeartbeatResponse } from "../../../src/kafka/apis/heartbeat.ts";
import { JoinGroupRequest, JoinGroupResponse } from "../../../src/kafka/apis/join-group.ts";
import { LeaveGroupRequest, LeaveGroupResponse } from "../../../src/kafka/apis/leave-group.ts";
import { ListGroupsRequest, ListGroupsResponse } from "../../../src/kafka/apis/list-groups.ts";
import { OffsetCommitRequest, OffsetCommitResponse } from "../../../src/kafka/apis/offset-commit.ts";
import { OffsetDeleteRequest, OffsetDeleteResponse } from "../../../src/kafka/apis/offset-delete.ts";
import { OffsetFetchRequest, OffsetFetchResponse } from "../../../src/kafka/apis/offset-fetch.ts";
import { SyncGroupRequest, SyncGroupResponse } from "../../../src/kafka/apis/sync-group.ts";
import { type Fields, type Message, decode, encode } from "../../../src/kafka/schema.ts";
import { KafkaReader, KafkaWriter } from "../../../src/kafka/wire.ts";

/** Bytes written by hand: Kafka's primitive types in the classic and the flexible (compact) layout. */
class B {
  private readonly parts: Buffer[] = [];
  constructor(readonly flex: boolean) {}
  private n(size: number, f: (b: Buffer) => void): this {
    const b = Buffer.alloc(size);
    f(b);
    this.parts.push(b);
    return this;
  }
  i8(v: number) {
    return this.n(1, (b) => b.writeInt8(v));
  }
  i16(v: number) {
    return this.n(2, (b) => b.writeInt16BE(v));
  }
  i32(v: number) {
    return this.n(4, (b) => b.writeInt32BE(v));
  }
  i64(v: bigint) {
    return this.n(8, (b) => b.writeBigInt64BE(v));
  }
  bool(v: boolean) {
    return this.i8(v ? 1 : 0);
  }
  uuid(hex: string) {
    this.parts.push(Buffer.from(hex, "hex"));
    return this;
  }
  uv(v: number) {
    const out: number[] = [];
    let x = v >>> 0;
    while (x >= 0x80) {
      out.push((x & 0x7f) | 0x80);
      x >>>= 7;
    }
    out.push(x);
    this.parts.push(Buffer.from(out));
    return this;
  }
  /** A length (or count) prefix: INT16/INT32 classic, UNSIGNED_VARINT(n+1) flexible; null is -1 / 0. */
  private len(n: number | null, wide: boolean) {
    if (this.flex) return this.uv(n === null ? 0 : n + 1);
    return wide ? this.i32(n ?? -1) : this.i16(n ?? -1);
  }
  str(s: string | null) {
    if (s === null) return this.len(null, false);
    const b = Buffer.from(s);
    this.len(b.length, false);
    this.parts.push(b);
    return this;
  }
  bytes(b: Buffer) {
    this.len(b.length, true);
    this.parts.push(b);
    return this;
  }
  count(n: number | null) {
    return this.len(n, true);
  }
  /** An empty tag section (flexible versions only). */
  tags() {
    return this.flex ? this.uv(0) : this;
  }
  get buf(): Buffer {
    return Buffer.concat(this.parts);
  }
}

function check<F extends Fields>(m: Message<F>, value: unknown, v: number, expected: Buffer): void {
  const w = new KafkaWriter();
  encode(m, value as never, v, w);
  const got = w.toBuffer();
  expect(got.toString("hex"), `${m.name} v${v}`).toBe(expected.toString("hex"));
  const r = new KafkaReader(expected);
  const back = decode(m, r, v);
  expect(r.remaining, `${m.name} v${v}: bytes left`).toBe(0);
  const w2 = new KafkaWriter();
  encode(m, back as never, v, w2);
  expect(w2.toBuffer().toString("hex"), `${m.name} v${v} again`).toBe(expected.toString("hex"));
}

const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

describe("golden bytes: FindCoordinator v0-4", () => {
  it.each(range(0, 4))("v%i", (v) => {
    const flex = v >= 3;
    const q = new B(flex);
    if (v <= 3) q.str("grp");
    if (v >= 1) q.i8(0);
    if (v >= 4) q.count(2).str("a").str("b");
    check(FindCoordinatorRequest, { key: "grp", keyType: 0, coordinatorKeys: ["a", "b"] }, v, q.tags().buf);

    const s = new B(flex);
    if (v >= 1) s.i32(0);
    if (v <= 3) {
      s.i16(0);
      if (v >= 1) s.str(null);
      s.i32(1).str("h").i32(9092);
    } else {
      s.count(1).str("a").i32(1).str("h").i32(9092).i16(0).str(null).tags();
    }
    check(
      FindCoordinatorResponse,
      {
        errorCode: 0,
        nodeId: 1,
        host: "h",
        port: 9092,
        coordinators: [{ key: "a", nodeId: 1, host: "h", port: 9092, errorCode: 0 }],
      },
      v,
      s.tags().buf,
    );
  });
});

describe("golden bytes: JoinGroup v0-9", () => {
  it.each(range(0, 9))("v%i", (v) => {
    const flex = v >= 6;
    const meta = Buffer.from([0, 1, 2]);
    const q = new B(flex);
    q.str("g").i32(10_000);
    if (v >= 1) q.i32(5_000);
    q.str("m");
    if (v >= 5) q.str(null);
    q.str("consumer").count(1).str("range").bytes(meta).tags();
    if (v >= 8) q.str("why");
    check(
      JoinGroupRequest,
      {
        groupId: "g",
        sessionTimeoutMs: 10_000,
        rebalanceTimeoutMs: 5_000,
        memberId: "m",
        groupInstanceId: null,
        protocolType: "consumer",
        protocols: [{ name: "range", metadata: meta }],
        reason: "why",
      },
      v,
      q.tags().buf,
    );

    const s = new B(flex);
    if (v >= 2) s.i32(0);
    s.i16(0).i32(3);
    if (v >= 7) s.str("consumer");
    s.str("range").str("L");
    if (v >= 9) s.bool(false);
    s.str("m").count(1).str("L");
    if (v >= 5) s.str("pod");
    s.bytes(meta).tags();
    check(
      JoinGroupResponse,
      {
        errorCode: 0,
        generationId: 3,
        protocolType: "consumer",
        protocolName: "range",
        leader: "L",
        memberId: "m",
        members: [{ memberId: "L", groupInstanceId: "pod", metadata: meta }],
      },
      v,
      s.tags().buf,
    );
  });
});

describe("golden bytes: SyncGroup v0-5", () => {
  it.each(range(0, 5))("v%i", (v) => {
    const flex = v >= 4;
    const a = Buffer.from("asg");
    const q = new B(flex);
    q.str("g").i32(3).str("m");
    if (v >= 3) q.str("pod");
    if (v >= 5) q.str("consumer").str("range");
    q.count(1).str("m").bytes(a).tags();
    check(
      SyncGroupRequest,
      {
        groupId: "g",
        generationId: 3,
        memberId: "m",
        groupInstanceId: "pod",
        protocolType: "consumer",
        protocolName: "range",
        assignments: [{ memberId: "m", assignment: a }],
      },
      v,
      q.tags().buf,
    );
    const s = new B(flex);
    if (v >= 1) s.i32(0);
    s.i16(27);
    if (v >= 5) s.str(null).str(null);
    s.bytes(a);
    check(SyncGroupResponse, { errorCode: 27, assignment: a }, v, s.tags().buf);
  });
});

describe("golden bytes: Heartbeat v0-4", () => {
  it.each(range(0, 4))("v%i", (v) => {
    const flex = v >= 4;
    const q = new B(flex);
    q.str("g").i32(2).str("m");
    if (v >= 3) q.str(null);
    check(HeartbeatRequest, { groupId: "g", generationId: 2, memberId: "m" }, v, q.tags().buf);
    const s = new B(flex);
    if (v >= 1) s.i32(0);
    s.i16(27);
    check(HeartbeatResponse, { errorCode: 27 }, v, s.tags().buf);
  });
});

describe("golden bytes: LeaveGroup v0-5", () => {
  it.each(range(0, 5))("v%i", (v) => {
    const flex = v >= 4;
    const q = new B(flex);
    q.str("g");
    if (v <= 2) q.str("m");
    else {
      q.count(1).str("m").str("pod");
      if (v >= 5) q.str(null);
      q.tags();
    }
    check(LeaveGroupRequest, { groupId: "g", memberId: "m", members: [{ memberId: "m", groupInstanceId: "pod" }] }, v, q.tags().buf);
    const s = new B(flex);
    if (v >= 1) s.i32(0);
    s.i16(0);
    if (v >= 3) s.count(1).str("m").str(null).i16(25).tags();
    check(LeaveGroupResponse, { errorCode: 0, members: [{ memberId: "m", groupInstanceId: null, errorCode: 25 }] }, v, s.tags().buf);
  });
});

describe("golden bytes: OffsetCommit v0-9", () => {
  it.each(range(0, 9))("v%i", (v) => {
    const flex = v >= 8;
    const q = new B(flex);
    q.str("g");
    if (v >= 1) q.i32(4).str("m");
    if (v >= 7) q.str(null);
    if (v >= 2 && v <= 4) q.i64(-1n);
    q.count(1).str("t").count(1).i32(0).i64(42n);
    if (v >= 6) q.i32(5);
    if (v === 1) q.i64(-1n);
    q.str("md").tags().tags();
    check(
      OffsetCommitRequest,
      {
        groupId: "g",
        generationIdOrMemberEpoch: 4,
        memberId: "m",
        topics: [
          { name: "t", partitions: [{ partitionIndex: 0, committedOffset: 42n, committedLeaderEpoch: 5, committedMetadata: "md" }] },
        ],
      },
      v,
      q.tags().buf,
    );
    const s = new B(flex);
    if (v >= 3) s.i32(0);
    s.count(1).str("t").count(1).i32(0).i16(22).tags().tags();
    check(OffsetCommitResponse, { topics: [{ name: "t", partitions: [{ partitionIndex: 0, errorCode: 22 }] }] }, v, s.tags().buf);
  });
});

describe("golden bytes: OffsetFetch v0-9", () => {
  it.each(range(0, 9))("v%i", (v) => {
    const flex = v >= 6;
    const q = new B(flex);
    if (v <= 7) q.str("g").count(1).str("t").count(2).i32(0).i32(1).tags();
    else {
      q.count(2).str("g");
      if (v >= 9) q.str(null).i32(-1);
      q.count(1).str("t").count(1).i32(0).tags().tags();
      q.str("h");
      if (v >= 9) q.str(null).i32(-1);
      q.count(null).tags();
    }
    if (v >= 7) q.bool(false);
    check(
      OffsetFetchRequest,
      {
        groupId: "g",
        topics: [{ name: "t", partitionIndexes: [0, 1] }],
        groups: [
          { groupId: "g", topics: [{ name: "t", partitionIndexes: [0] }] },
          { groupId: "h", topics: null },
        ],
      },
      v,
      q.tags().buf,
    );
    const s = new B(flex);
    if (v >= 3) s.i32(0);
    const partition = (b: B, withEpoch: boolean) => {
      b.i32(0).i64(42n);
      if (withEpoch) b.i32(5);
      b.str("md").i16(0).tags();
    };
    if (v <= 7) {
      s.count(1).str("t").count(1);
      partition(s, v >= 5);
      s.tags(); // the topic's
      if (v >= 2) s.i16(0);
    } else {
      s.count(1).str("g").count(1).str("t").count(1);
      partition(s, true);
      s.tags().i16(0).tags(); // the topic's; the group's error code and tags
    }
    const topics = [
      { name: "t", partitions: [{ partitionIndex: 0, committedOffset: 42n, committedLeaderEpoch: 5, metadata: "md", errorCode: 0 }] },
    ];
    check(OffsetFetchResponse, { topics, errorCode: 0, groups: [{ groupId: "g", topics, errorCode: 0 }] }, v, s.tags().buf);
  });
});

describe("golden bytes: OffsetDelete v0", () => {
  it("v0", () => {
    const q = new B(false).str("g").count(1).str("t").count(1).i32(2);
    check(OffsetDeleteRequest, { groupId: "g", topics: [{ name: "t", partitions: [{ partitionIndex: 2 }] }] }, 0, q.buf);
    const s = new B(false).i16(0).i32(0).count(1).str("t").count(1).i32(2).i16(86);
    check(OffsetDeleteResponse, { errorCode: 0, topics: [{ name: "t", partitions: [{ partitionIndex: 2, errorCode: 86 }] }] }, 0, s.buf);
  });
});

describe("golden bytes: DescribeGroups v0-5", () => {
  it.each(range(0, 5))("v%i", (v) => {
    const flex = v >= 5;
    const q = new B(flex);
    q.count(1).str("g");
    if (v >= 3) q.bool(false);
    check(DescribeGroupsRequest, { groups: ["g"] }, v, q.tags().buf);
    const s = new B(flex);
    if (v >= 1) s.i32(0);
    s.count(1).i16(0).str("g").str("Stable").str("consumer").str("range").count(1).str("m");
    if (v >= 4) s.str(null);
    s.str("cid")
      .str("/1.2.3.4")
      .bytes(Buffer.from([1]))
      .bytes(Buffer.from([2]))
      .tags();
    if (v >= 3) s.i32(-2147483648);
    s.tags();
    check(
      DescribeGroupsResponse,
      {
        groups: [
          {
            errorCode: 0,
            groupId: "g",
            groupState: "Stable",
            protocolType: "consumer",
            protocolData: "range",
            members: [
              {
                memberId: "m",
                clientId: "cid",
                clientHost: "/1.2.3.4",
                memberMetadata: Buffer.from([1]),
                memberAssignment: Buffer.from([2]),
              },
            ],
          },
        ],
      },
      v,
      s.tags().buf,
    );
  });
});

describe("golden bytes: ListGroups v0-5", () => {
  it.each(range(0, 5))("v%i", (v) => {
    const flex = v >= 3;
    const q = new B(flex);
    if (v >= 4) q.count(1).str("Stable");
    if (v >= 5) q.count(1).str("classic");
    check(ListGroupsRequest, { statesFilter: ["Stable"], typesFilter: ["classic"] }, v, q.tags().buf);
    const s = new B(flex);
    if (v >= 1) s.i32(0);
    s.i16(0).count(1).str("g").str("consumer");
    if (v >= 4) s.str("Stable");
    if (v >= 5) s.str("classic");
    s.tags();
    check(
      ListGroupsResponse,
      { errorCode: 0, groups: [{ groupId: "g", protocolType: "consumer", groupState: "Stable", groupType: "classic" }] },
      v,
      s.tags().buf,
    );
  });
});

describe("golden bytes: DeleteGroups v0-2", () => {
  it.each(range(0, 2))("v%i", (v) => {
    const flex = v >= 2;
    check(DeleteGroupsRequest, { groupsNames: ["g", "h"] }, v, new B(flex).count(2).str("g").str("h").tags().buf);
    const s = new B(flex).i32(0).count(1).str("g").i16(68).tags();
    check(DeleteGroupsResponse, { results: [{ groupId: "g", errorCode: 68 }] }, v, s.tags().buf);
  });
});

describe("golden bytes: ConsumerGroupHeartbeat v0-1", () => {
  const id = "00112233445566778899aabbccddeeff";
  it.each(range(0, 1))("v%i", (v) => {
    const q = new B(true);
    q.str("g").str("m").i32(0).str(null).str(null).i32(30_000).count(1).str("t");
    if (v >= 1) q.str(null);
    q.str("uniform").count(1).uuid(id).count(2).i32(0).i32(1).tags();
    check(
      ConsumerGroupHeartbeatRequest,
      {
        groupId: "g",
        memberId: "m",
        memberEpoch: 0,
        rebalanceTimeoutMs: 30_000,
        subscribedTopicNames: ["t"],
        serverAssignor: "uniform",
        topicPartitions: [{ topicId: Buffer.from(id, "hex"), partitions: [0, 1] }],
      },
      v,
      q.tags().buf,
    );
    // Assignment is a nullable struct: INT8 -1 for null, 1 then the struct otherwise.
    const s = new B(true).i32(0).i16(0).str(null).str("m").i32(3).i32(5_000).i8(1).count(1).uuid(id).count(1).i32(2).tags().tags();
    check(
      ConsumerGroupHeartbeatResponse,
      {
        errorCode: 0,
        memberId: "m",
        memberEpoch: 3,
        heartbeatIntervalMs: 5_000,
        assignment: { topicPartitions: [{ topicId: Buffer.from(id, "hex"), partitions: [2] }] },
      },
      v,
      s.tags().buf,
    );
    const none = new B(true).i32(0).i16(25).str("gone").str(null).i32(-1).i32(0).i8(-1).tags();
    check(
      ConsumerGroupHeartbeatResponse,
      { errorCode: 25, errorMessage: "gone", memberId: null, memberEpoch: -1, assignment: null },
      v,
      none.buf,
    );
  });
});

describe("golden bytes: ConsumerGroupDescribe v0-1", () => {
  const id = "00112233445566778899aabbccddeeff";
  it.each(range(0, 1))("v%i", (v) => {
    check(
      ConsumerGroupDescribeRequest,
      { groupIds: ["g"], includeAuthorizedOperations: true },
      v,
      new B(true).count(1).str("g").bool(true).tags().buf,
    );
    const s = new B(true).i32(0).count(1).i16(0).str(null).str("g").str("Stable").i32(4).i32(4).str("uniform");
    s.count(1).str("m").str(null).str(null).i32(4).str("c").str("/h").count(1).str("t").str(null);
    const assignment = (b: B) => b.count(1).uuid(id).str("t").count(1).i32(0).tags().tags();
    assignment(s);
    assignment(s);
    if (v >= 1) s.i8(1);
    s.tags().i32(-2147483648).tags();
    const tps = { topicPartitions: [{ topicId: Buffer.from(id, "hex"), topicName: "t", partitions: [0] }] };
    check(
      ConsumerGroupDescribeResponse,
      {
        groups: [
          {
            errorCode: 0,
            groupId: "g",
            groupState: "Stable",
            groupEpoch: 4,
            assignmentEpoch: 4,
            assignorName: "uniform",
            members: [
              {
                memberId: "m",
                memberEpoch: 4,
                clientId: "c",
                clientHost: "/h",
                subscribedTopicNames: ["t"],
                assignment: tps,
                targetAssignment: tps,
                memberType: 1,
              },
            ],
          },
        ],
      },
      v,
      s.tags().buf,
    );
  });
});
