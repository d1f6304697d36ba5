/**
 * The Kafka group APIs against a real broker, spoken byte for byte by a raw client
 * (kafka-helpers.ts): FindCoordinator, a classic rebalance of three members through JoinGroup
 * (MEMBER_ID_REQUIRED, the long poll), SyncGroup, Heartbeat, OffsetCommit/OffsetFetch (also
 * across gRPC), DescribeGroups, ListGroups, LeaveGroup and DeleteGroups.
 */
import { create } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Broker } from "../../src/broker/broker.ts";
import { CreateTopicsRequestSchema } from "../../src/gen/rill/v1/admin_service_pb.ts";
import {
  CommitOffsetsRequestSchema,
  type CommitOffsetsResponse,
  FetchOffsetsRequestSchema,
  type FetchOffsetsResponse,
  GroupService,
} from "../../src/gen/rill/v1/group_service_pb.ts";
import { ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse } from "../../src/kafka/apis/consumer-group-describe.ts";
import { ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse } from "../../src/kafka/apis/consumer-group-heartbeat.ts";
import { DeleteGroupsRequest, DeleteGroupsResponse } from "../../src/kafka/apis/delete-groups.ts";
import { DescribeGroupsRequest, DescribeGroupsResponse } from "../../src/kafka/apis/describe-groups.ts";
import { FindCoordinatorRequest, FindCoordinatorResponse } from "../../src/kafka/apis/find-coordinator.ts";
import { HeartbeatRequest, HeartbeatResponse } from "../../src/kafka/apis/heartbeat.ts";
import { JoinGroupRequest, JoinGroupResponse } from "../../src/kafka/apis/join-group.ts";
import { LeaveGroupRequest, LeaveGroupResponse } from "../../src/kafka/apis/leave-group.ts";
import { ListGroupsRequest, ListGroupsResponse } from "../../src/kafka/apis/list-groups.ts";
import { OffsetCommitRequest, OffsetCommitResponse } from "../../src/kafka/apis/offset-commit.ts";
import { OffsetDeleteRequest, OffsetDeleteResponse } from "../../src/kafka/apis/offset-delete.ts";
import { OffsetFetchRequest, OffsetFetchResponse } from "../../src/kafka/apis/offset-fetch.ts";
import { SyncGroupRequest, SyncGroupResponse } from "../../src/kafka/apis/sync-group.ts";
import { clientConstructor } from "../../src/protocol/grpc-service.ts";
import { RawKafka } from "./kafka-helpers.ts";
import { call, clients, rmTmp, tmpDir } from "./rpc-helpers.ts";
import * as grpcJs from "@grpc/grpc-js";

let broker: Broker;
let dir: string;
let address: string;
let grpcGroups: grpc.Client;
let admin: ReturnType<typeof clients>;

beforeAll(async () => {
  dir = tmpDir("rill-kgroups-");
  broker = await Broker.start({
    dataDir: dir,
    listen: "127.0.0.1:0",
    config: { kafkaListen: "127.0.0.1:0", groupInitialRebalanceDelayMs: 300 },
    shutdownGraceMs: 500,
  });
  address = broker.kafkaAddress as string;
  admin = clients(broker.address);
  await call(admin.admin, "createTopics", create(CreateTopicsRequestSchema, { topics: [{ name: "kg", partitions: 3 }] }));
  const Groups = clientConstructor(GroupService);
  grpcGroups = new Groups(broker.address, grpcJs.credentials.createInsecure());
});

afterAll(async () => {
  grpcGroups?.close();
  admin?.close();
  await broker?.close();
  rmTmp(dir);
});

/** FindCoordinator until `__consumer_offsets` has its leaders (bounded). */
async function coordinator(c: RawKafka, group: string) {
  for (let i = 0; i < 100; i++) {
    const r = await c.request(10, 3, FindCoordinatorRequest, { key: group, keyType: 0 }, FindCoordinatorResponse);
    if (r.errorCode === 0) return r;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error("no coordinator within 10 s");
}

const meta = (topics: string[]) => {
  const parts = [Buffer.from([0, 0]), Buffer.alloc(4)];
  parts[1]!.writeInt32BE(topics.length);
  for (const t of topics) {
    const len = Buffer.alloc(2);
    len.writeInt16BE(t.length);
    parts.push(len, Buffer.from(t));
  }
  parts.push(Buffer.from([0xff, 0xff, 0xff, 0xff]));
  return Buffer.concat(parts);
};

describe("Kafka group APIs", () => {
  it("FindCoordinator answers this node, in v0-3 and batched in v4; key type 1 is refused", async () => {
    const c = await RawKafka.connect(address);
    const r = await coordinator(c, "g1");
    const [host, port] = [address.split(":")[0], Number(address.split(":")[1])];
    expect([r.host, r.port]).toEqual([host, port]);
    const v0 = await c.request(10, 0, FindCoordinatorRequest, { key: "g1" }, FindCoordinatorResponse);
    expect([v0.errorCode, v0.port]).toEqual([0, port]);
    const v4 = await c.request(10, 4, FindCoordinatorRequest, { keyType: 0, coordinatorKeys: ["a", "b"] }, FindCoordinatorResponse);
    expect(v4.coordinators.map((x) => [x.key, x.errorCode, x.port])).toEqual([
      ["a", 0, port],
      ["b", 0, port],
    ]);
    // Key type 2 (share groups) is not served (1, transactions: kafka-txn-clients.test.ts).
    const share = await c.request(10, 4, FindCoordinatorRequest, { keyType: 2, coordinatorKeys: ["t"] }, FindCoordinatorResponse);
    expect(share.coordinators[0]!.errorCode).toBe(42);
    c.close();
  });

  it("takes three members through a classic rebalance, commits over Kafka and reads the offsets over gRPC", async () => {
    const G = "kg-classic";
    const conns = await Promise.all([0, 1, 2].map(() => RawKafka.connect(address)));
    await coordinator(conns[0]!, G);
    const join = (c: RawKafka, memberId: string, version = 5) =>
      c.request(
        11,
        version,
        JoinGroupRequest,
        {
          groupId: G,
          sessionTimeoutMs: 10_000,
          rebalanceTimeoutMs: 5_000,
          memberId,
          protocolType: "consumer",
          protocols: [{ name: "range", metadata: meta(["kg"]) }],
        },
        JoinGroupResponse,
      );
    const ids: string[] = [];
    for (const c of conns) {
      const first = await join(c, "");
      expect(first.errorCode).toBe(79); // MEMBER_ID_REQUIRED
      ids.push(first.memberId);
    }
    const joined = await Promise.all(conns.map((c, i) => join(c, ids[i]!)));
    expect(joined.map((j) => [j.errorCode, j.generationId, j.protocolName])).toEqual([
      [0, 1, "range"],
      [0, 1, "range"],
      [0, 1, "range"],
    ]);
    const leader = joined[0]!.leader;
    const li = ids.indexOf(leader);
    expect(joined[li]!.members.map((m) => m.memberId).sort()).toEqual([...ids].sort());
    const sync = (i: number, assignments: { memberId: string; assignment: Buffer }[]) =>
      conns[i]!.request(
        14,
        5,
        SyncGroupRequest,
        { groupId: G, generationId: 1, memberId: ids[i]!, protocolType: "consumer", protocolName: "range", assignments },
        SyncGroupResponse,
      );
    const followers = ids.map((_, i) => i).filter((i) => i !== li);
    const waiting = followers.map((i) => sync(i, []));
    const mine = await sync(
      li,
      ids.map((memberId, i) => ({ memberId, assignment: Buffer.from(`a${i}`) })),
    );
    expect(mine.errorCode).toBe(0);
    const got = await Promise.all(waiting);
    expect(got.map((g) => g.assignment.toString())).toEqual(followers.map((i) => `a${i}`));
    // Heartbeats (flexible v4) are fine; another generation is ILLEGAL_GENERATION.
    const hb = await conns[1]!.request(12, 4, HeartbeatRequest, { groupId: G, generationId: 1, memberId: ids[1]! }, HeartbeatResponse);
    expect(hb.errorCode).toBe(0);
    const bad = await conns[1]!.request(12, 1, HeartbeatRequest, { groupId: G, generationId: 9, memberId: ids[1]! }, HeartbeatResponse);
    expect(bad.errorCode).toBe(22);

    // Commit with the generation over Kafka; a stale generation is refused per partition.
    const commit = await conns[2]!.request(
      8,
      8,
      OffsetCommitRequest,
      {
        groupId: G,
        generationIdOrMemberEpoch: 1,
        memberId: ids[2]!,
        topics: [{ name: "kg", partitions: [{ partitionIndex: 2, committedOffset: 7n, committedMetadata: "m" }] }],
      },
      OffsetCommitResponse,
    );
    expect(commit.topics[0]!.partitions[0]).toEqual({ partitionIndex: 2, errorCode: 0 });
    const stale = await conns[2]!.request(
      8,
      2,
      OffsetCommitRequest,
      {
        groupId: G,
        generationIdOrMemberEpoch: 0,
        memberId: ids[2]!,
        topics: [{ name: "kg", partitions: [{ partitionIndex: 1, committedOffset: 3n }] }],
      },
      OffsetCommitResponse,
    );
    expect(stale.topics[0]!.partitions[0]!.errorCode).toBe(22);
    const viaGrpc: FetchOffsetsResponse = await call(grpcGroups, "fetchOffsets", create(FetchOffsetsRequestSchema, { groupId: G }));
    expect(viaGrpc.offsets.map((o) => [o.topic, o.partition, Number(o.offset), o.metadata])).toEqual([["kg", 2, 7, "m"]]);

    // DescribeGroups and ListGroups show the classic group.
    const d = await conns[0]!.request(15, 5, DescribeGroupsRequest, { groups: [G, "nope"] }, DescribeGroupsResponse);
    expect(d.groups[0]).toMatchObject({ errorCode: 0, groupId: G, groupState: "Stable", protocolType: "consumer", protocolData: "range" });
    expect(d.groups[0]!.members.map((m) => m.memberAssignment.toString()).sort()).toEqual(["a0", "a1", "a2"]);
    expect(d.groups[1]).toMatchObject({ errorCode: 0, groupId: "nope", groupState: "Dead" });
    const l = await conns[0]!.request(16, 5, ListGroupsRequest, { statesFilter: ["stable"], typesFilter: ["classic"] }, ListGroupsResponse);
    expect(l.groups).toContainEqual({ groupId: G, protocolType: "consumer", groupState: "Stable", groupType: "classic" });

    // Everyone leaves (v3 batch); then the group can be deleted.
    const left = await conns[0]!.request(
      13,
      3,
      LeaveGroupRequest,
      { groupId: G, members: ids.map((memberId) => ({ memberId })) },
      LeaveGroupResponse,
    );
    expect(left.members.map((m) => m.errorCode)).toEqual([0, 0, 0]);
    const del = await conns[0]!.request(42, 2, DeleteGroupsRequest, { groupsNames: [G, "nope"] }, DeleteGroupsResponse);
    expect(del.results).toEqual([
      { groupId: G, errorCode: 0 },
      { groupId: "nope", errorCode: 69 },
    ]);
    for (const c of conns) c.close();
  });

  it("reads offsets committed over gRPC with OffsetFetch v1 and v8 (several groups at once)", async () => {
    const c = await RawKafka.connect(address);
    await coordinator(c, "kg-grpc");
    const res: CommitOffsetsResponse = await call(
      grpcGroups,
      "commitOffsets",
      create(CommitOffsetsRequestSchema, {
        groupId: "kg-grpc",
        memberId: "",
        memberEpoch: -1,
        offsets: [{ topic: "kg", partition: 0, offset: 12n, metadata: "from-grpc", leaderEpoch: -1 }],
      }),
    );
    expect(res.offsets[0]!.error).toBeUndefined();
    const v1 = await c.request(
      9,
      1,
      OffsetFetchRequest,
      { groupId: "kg-grpc", topics: [{ name: "kg", partitionIndexes: [0, 1] }] },
      OffsetFetchResponse,
    );
    expect(v1.topics[0]!.partitions.map((p) => [p.partitionIndex, p.committedOffset, p.metadata, p.errorCode])).toEqual([
      [0, 12n, "from-grpc", 0],
      [1, -1n, "", 0],
    ]);
    const v8 = await c.request(
      9,
      8,
      OffsetFetchRequest,
      {
        groups: [
          { groupId: "kg-grpc", topics: null },
          { groupId: "kg-empty", topics: null },
        ],
      },
      OffsetFetchResponse,
    );
    expect(v8.groups.map((g) => [g.groupId, g.errorCode, g.topics.flatMap((t) => t.partitions.map((p) => p.committedOffset))])).toEqual([
      ["kg-grpc", 0, [12n]],
      ["kg-empty", 0, []],
    ]);
    // OffsetDelete over Kafka removes it; gRPC no longer sees it. An unknown group is GROUP_ID_NOT_FOUND.
    const del = await c.request(
      47,
      0,
      OffsetDeleteRequest,
      { groupId: "kg-grpc", topics: [{ name: "kg", partitions: [{ partitionIndex: 0 }] }] },
      OffsetDeleteResponse,
    );
    expect([del.errorCode, del.topics[0]!.partitions[0]!.errorCode]).toEqual([0, 0]);
    const gone: FetchOffsetsResponse = await call(grpcGroups, "fetchOffsets", create(FetchOffsetsRequestSchema, { groupId: "kg-grpc" }));
    expect(gone.offsets).toEqual([]);
    const unknown = await c.request(
      47,
      0,
      OffsetDeleteRequest,
      { groupId: "kg-nobody", topics: [{ name: "kg", partitions: [{ partitionIndex: 0 }] }] },
      OffsetDeleteResponse,
    );
    expect(unknown.errorCode).toBe(69);
    c.close();
  });

  it("serves KIP-848 members with ConsumerGroupHeartbeat and ConsumerGroupDescribe; a classic JoinGroup to that group is refused", async () => {
    const G = "kg-848";
    const c = await RawKafka.connect(address);
    await coordinator(c, G);
    const hb = await c.request(
      68,
      0,
      ConsumerGroupHeartbeatRequest,
      {
        groupId: G,
        memberId: "",
        memberEpoch: 0,
        rebalanceTimeoutMs: 10_000,
        subscribedTopicNames: ["kg"],
        serverAssignor: "uniform",
        topicPartitions: [],
      },
      ConsumerGroupHeartbeatResponse,
    );
    expect([hb.errorCode, hb.memberEpoch]).toEqual([0, 1]);
    expect(hb.assignment!.topicPartitions.flatMap((t) => t.partitions).sort()).toEqual([0, 1, 2]);
    const topicId = hb.assignment!.topicPartitions[0]!.topicId;
    const d = await c.request(69, 1, ConsumerGroupDescribeRequest, { groupIds: [G, "kg-none"] }, ConsumerGroupDescribeResponse);
    expect(d.groups[0]).toMatchObject({ errorCode: 0, groupId: G, groupState: "Stable", groupEpoch: 1, assignorName: "uniform" });
    expect(d.groups[0]!.members[0]!.assignment.topicPartitions[0]).toMatchObject({ topicId, topicName: "kg" });
    expect(d.groups[1]!.errorCode).toBe(69); // GROUP_ID_NOT_FOUND
    const classic = await c.request(
      11,
      5,
      JoinGroupRequest,
      {
        groupId: G,
        sessionTimeoutMs: 10_000,
        rebalanceTimeoutMs: 5_000,
        memberId: "m",
        protocolType: "consumer",
        protocols: [{ name: "range", metadata: meta(["kg"]) }],
      },
      JoinGroupResponse,
    );
    expect(classic.errorCode).toBe(23); // INCONSISTENT_GROUP_PROTOCOL
    // The member acknowledges with what it owns, then leaves.
    const stay = await c.request(
      68,
      0,
      ConsumerGroupHeartbeatRequest,
      { groupId: G, memberId: hb.memberId!, memberEpoch: 1, topicPartitions: [{ topicId, partitions: [0, 1, 2] }] },
      ConsumerGroupHeartbeatResponse,
    );
    expect([stay.errorCode, stay.memberEpoch]).toEqual([0, 1]);
    const leave = await c.request(
      68,
      0,
      ConsumerGroupHeartbeatRequest,
      { groupId: G, memberId: hb.memberId!, memberEpoch: -1 },
      ConsumerGroupHeartbeatResponse,
    );
    expect([leave.errorCode, leave.memberEpoch]).toEqual([0, -1]);
    c.close();
  });

  it("expires a member that stops heartbeating: the other is told to rejoin and gets a generation of its own", async () => {
    const G = "kg-expire";
    const [a, b] = await Promise.all([RawKafka.connect(address), RawKafka.connect(address)]);
    await coordinator(a, G);
    const join = (c: RawKafka, memberId: string) =>
      c.request(
        11,
        3, // no MEMBER_ID_REQUIRED before v4
        JoinGroupRequest,
        {
          groupId: G,
          sessionTimeoutMs: 6_000,
          rebalanceTimeoutMs: 6_000,
          memberId,
          protocolType: "consumer",
          protocols: [{ name: "range", metadata: meta(["kg"]) }],
        },
        JoinGroupResponse,
      );
    const [ja, jb] = await Promise.all([join(a, ""), join(b, "")]);
    expect([ja.generationId, jb.generationId]).toEqual([1, 1]);
    const leader = ja.leader === ja.memberId ? a : b;
    const leaderId = ja.leader;
    const other = leader === a ? b : a;
    const otherId = leader === a ? jb.memberId : ja.memberId;
    await Promise.all([
      other.request(14, 1, SyncGroupRequest, { groupId: G, generationId: 1, memberId: otherId, assignments: [] }, SyncGroupResponse),
      leader.request(14, 1, SyncGroupRequest, { groupId: G, generationId: 1, memberId: leaderId, assignments: [] }, SyncGroupResponse),
    ]);
    // Only the leader heartbeats; the other's 6 s session runs out (the group's own timer).
    let code = 0;
    for (let i = 0; i < 20 && code === 0; i++) {
      await new Promise((r) => setTimeout(r, 500));
      code = (await leader.request(12, 1, HeartbeatRequest, { groupId: G, generationId: 1, memberId: leaderId }, HeartbeatResponse))
        .errorCode;
    }
    expect(code).toBe(27); // REBALANCE_IN_PROGRESS
    const again = await join(leader, leaderId);
    expect([again.errorCode, again.generationId, again.members.map((m) => m.memberId)]).toEqual([0, 2, [leaderId]]);
    const late = await other.request(12, 1, HeartbeatRequest, { groupId: G, generationId: 1, memberId: otherId }, HeartbeatResponse);
    expect(late.errorCode).toBe(25); // UNKNOWN_MEMBER_ID
    a.close();
    b.close();
  }, 30_000);

  it("answers bad group input with an error, and the connection stays usable", async () => {
    const c = await RawKafka.connect(address);
    const long = "x".repeat(300);
    const j = await c.request(
      11,
      5,
      JoinGroupRequest,
      {
        groupId: long,
        sessionTimeoutMs: 10_000,
        memberId: "",
        protocolType: "consumer",
        protocols: [{ name: "range", metadata: meta([]) }],
      },
      JoinGroupResponse,
    );
    expect(j.errorCode).toBe(24); // INVALID_GROUP_ID
    const s = await c.request(
      14,
      3,
      SyncGroupRequest,
      { groupId: "kg-none", generationId: 1, memberId: "ghost", assignments: [] },
      SyncGroupResponse,
    );
    expect(s.errorCode).toBe(25); // UNKNOWN_MEMBER_ID
    const t = await c.request(
      11,
      5,
      JoinGroupRequest,
      {
        groupId: "kg-bad-timeout",
        sessionTimeoutMs: 10,
        memberId: "",
        protocolType: "consumer",
        protocols: [{ name: "range", metadata: meta([]) }],
      },
      JoinGroupResponse,
    );
    expect(t.errorCode).toBe(26); // INVALID_SESSION_TIMEOUT
    const commit = await c.request(
      8,
      2,
      OffsetCommitRequest,
      {
        groupId: "kg-none",
        generationIdOrMemberEpoch: -1,
        memberId: "",
        topics: [{ name: "no-such-topic", partitions: [{ partitionIndex: 0, committedOffset: 1n }] }],
      },
      OffsetCommitResponse,
    );
    expect(commit.topics[0]!.partitions[0]!.errorCode).toBe(3); // UNKNOWN_TOPIC_OR_PARTITION
    const hb = await c.request(12, 0, HeartbeatRequest, { groupId: "kg-none", generationId: 0, memberId: "" }, HeartbeatResponse);
    expect(hb.errorCode).toBe(25);
    c.close();
  });
});
