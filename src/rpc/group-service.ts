/**
 * GroupService over gRPC: the unary group RPCs (KIP-848 heartbeats, offsets, admin) and Consume
 * (consume-stream.ts), as an adapter onto `GroupsService` (service/groups.ts), which holds what
 * each request means. This file only translates protobuf messages to the service's inputs and
 * its outputs back: bigint ↔ number, enums ↔ names, proto3 defaults (an empty list, a 0) ↔
 * "not given", a RillError ↔ an ErrorDetail. Per-partition outcomes come back in their result
 * with a catalog code; whole-call problems (an invalid group id, an unknown group) are statuses.
 */
import { BufferPool } from "./buffer-pool.ts";
import type { FetchMemory } from "../service/fetch.ts";
import { create } from "@bufbuild/protobuf";
import { rillError } from "../base/errors.ts";
import type { Timers } from "../base/timers.ts";
import type { GroupStateName, TopicPartitions } from "../coordinator/index.ts";
import type { GroupRuntime } from "../coordinator/group-runtime.ts";
import type { TxnService } from "../service/txn-service.ts";
import { OffsetSpec, type TopicPartitions as ProtoTopicPartitions } from "../gen/rill/v1/common_pb.ts";
import {
  CommitOffsetsResponseSchema,
  DeleteGroupsResponseSchema,
  DescribeGroupsResponseSchema,
  FetchOffsetsResponseSchema,
  type GroupService,
  GroupState,
  HeartbeatResponseSchema,
  ListGroupsResponseSchema,
  ResetOffsetsResponseSchema,
  type CommitOffsetsRequest,
  type DeleteGroupsRequest,
  type DescribeGroupsRequest,
  type FetchOffsetsRequest,
  type HeartbeatRequest,
  type ListGroupsRequest,
  type ResetOffsetsRequest,
} from "../gen/rill/v1/group_service_pb.ts";
import { type DeleteOffsetsRequest, DeleteOffsetsResponseSchema } from "../gen/rill/v1/group_service_pb.ts";
import type { ReplicaManager } from "../replication/replica-manager.ts";
import { type DescribeGroupResult, GroupsService, type OffsetResult, type ResetSpecName } from "../service/groups.ts";
import { serveConsume } from "./consume-stream.ts";
import { consumeRemote } from "./fetch-service.ts";
import type { Requester } from "../security/requester.ts";
import { LeaderClients } from "./forward.ts";
import type { InternalClients } from "./internal-clients.ts";
import { FetchService } from "../gen/rill/v1/fetch_service_pb.ts";
import type { QuotaThrottle } from "../service/quota-throttle.ts";
import { toErrorDetail, unary } from "./errors.ts";
import type { ServiceImplementation } from "./grpc-service.ts";
import type { groupServiceCodecs } from "./wire-codec.ts";
import { RequestAccess } from "../service/authorize.ts";
import { Access } from "../service/access.ts";
import { requesterOf } from "./call-context.ts";

const STATE: Record<GroupStateName, GroupState> = {
  empty: GroupState.EMPTY,
  assigning: GroupState.ASSIGNING,
  reconciling: GroupState.RECONCILING,
  stable: GroupState.STABLE,
  dead: GroupState.DEAD,
};
const STATE_NAME = new Map<GroupState, GroupStateName>(Object.entries(STATE).map(([k, v]) => [v, k as GroupStateName]));

const SPEC_NAME = new Map<OffsetSpec, ResetSpecName>([
  [OffsetSpec.EARLIEST, "earliest"],
  [OffsetSpec.LATEST, "latest"],
  [OffsetSpec.TIMESTAMP, "timestamp"],
]);

/** Proto TopicPartitions → the coordinator's. */
export function fromProtoPartitions(list: readonly ProtoTopicPartitions[]): TopicPartitions[] {
  return list.map((t) => ({ topic: t.topic, partitions: [...t.partitions] }));
}

/** The coordinator's TopicPartitions → proto init values. */
function toProtoPartitions(list: readonly TopicPartitions[]): Array<{ topic: string; partitions: number[] }> {
  return list.map((t) => ({ topic: t.topic, partitions: [...t.partitions] }));
}

/** Per-partition outcomes → proto OffsetCommitResult init values. */
function toOffsetResults(list: readonly OffsetResult[]) {
  return list.map((o) => ({
    topic: o.topic,
    partition: o.partition,
    offset: BigInt(o.offset),
    ...(o.error ? { error: toErrorDetail(o.error) } : {}),
  }));
}

function heartbeat(groups: GroupsService, req: HeartbeatRequest) {
  const res = groups.heartbeat({
    groupId: req.groupId,
    memberId: req.memberId,
    memberEpoch: req.memberEpoch,
    instanceId: req.instanceId ?? null,
    // proto3 cannot tell an absent list from an empty one: empty means unchanged, except to join.
    topics: req.topics.length > 0 || req.memberEpoch === 0 ? req.topics : null,
    owned: fromProtoPartitions(req.owned),
    assignor: req.assignor,
    sessionTimeoutMs: req.sessionTimeoutMs,
    rebalanceTimeoutMs: req.rebalanceTimeoutMs,
    clientId: req.clientId,
  });
  return create(HeartbeatResponseSchema, { ...res, assignment: toProtoPartitions(res.assignment) });
}

async function commitOffsets(groups: GroupsService, req: CommitOffsetsRequest) {
  const res = await groups.commitOffsets({
    groupId: req.groupId,
    memberId: req.memberId,
    memberEpoch: req.memberEpoch,
    offsets: req.offsets.map((o) => ({
      topic: o.topic,
      partition: o.partition,
      offset: Number(o.offset),
      metadata: o.metadata,
      leaderEpoch: o.leaderEpoch,
    })),
  });
  // A whole-commit error is carried by every offset too (see CommitOutput).
  return create(CommitOffsetsResponseSchema, { offsets: toOffsetResults(res.offsets) });
}

async function fetchOffsets(groups: GroupsService, req: FetchOffsetsRequest) {
  const offsets = await groups.fetchOffsets(req.groupId, req.partitions.length > 0 ? fromProtoPartitions(req.partitions) : null);
  return create(FetchOffsetsResponseSchema, {
    offsets: offsets.map((o) => ({
      topic: o.topic,
      partition: o.partition,
      offset: BigInt(o.offset),
      metadata: o.metadata,
      leaderEpoch: o.leaderEpoch,
    })),
  });
}

function listGroups(groups: GroupsService, req: ListGroupsRequest) {
  const states = req.states.map((s, i) => {
    const n = STATE_NAME.get(s);
    if (!n) throw rillError("INVALID_REQUEST", `states[${i}]: ${s} is not a group state`);
    return n;
  });
  return create(ListGroupsResponseSchema, {
    groups: groups.listGroups(states).map((g) => ({
      groupId: g.groupId,
      state: STATE[g.state],
      members: g.members,
      type: g.type,
      protocolType: g.protocolType,
      classicState: g.classicState ?? "",
    })),
  });
}

/** One DescribeGroups entry as proto init values. */
function toProtoDescription(d: DescribeGroupResult) {
  if (d.error) return { groupId: d.groupId, error: toErrorDetail(d.error) };
  const g = d.group;
  return {
    groupId: d.groupId,
    state: STATE[g.state],
    groupEpoch: g.groupEpoch,
    assignmentEpoch: g.assignmentEpoch,
    assignor: g.assignor,
    coordinatorId: g.coordinatorId,
    members: g.members.map((m) => ({
      memberId: m.memberId,
      ...(m.instanceId !== null ? { instanceId: m.instanceId } : {}),
      clientId: m.clientId,
      clientHost: m.clientHost,
      memberEpoch: m.memberEpoch,
      topics: [...m.topics],
      assignment: toProtoPartitions(m.assignment),
      targetAssignment: toProtoPartitions(m.targetAssignment),
    })),
    offsets: g.offsets.map((o) => ({
      topic: o.topic,
      partition: o.partition,
      committedOffset: BigInt(o.committedOffset),
      logEndOffset: BigInt(o.logEndOffset),
      lag: BigInt(o.lag),
      memberId: o.memberId,
    })),
  };
}

function resetOffsets(groups: GroupsService, req: ResetOffsetsRequest) {
  const results = groups.resetOffsets({
    groupId: req.groupId,
    partitions: fromProtoPartitions(req.partitions),
    // An enum value this broker does not know keeps its number, so the service's error names it.
    spec: req.spec === OffsetSpec.UNSPECIFIED ? null : (SPEC_NAME.get(req.spec) ?? String(req.spec)),
    offset: req.offset === undefined ? null : Number(req.offset),
    timestampMs: Number(req.timestampMs),
    dryRun: req.dryRun,
  });
  return create(ResetOffsetsResponseSchema, { offsets: toOffsetResults(results) });
}

/** Idle read buffers kept for Consume streams to reuse (all streams of one broker together). */
const CONSUME_POOL_BYTES_MAX = 32 * 1024 * 1024;

/** The GroupService implementation. */
export function groupService(
  rt: GroupRuntime,
  rm: ReplicaManager,
  timers: Timers,
  quotas?: QuotaThrottle,
  access: RequestAccess = new RequestAccess(Access.allowAll()),
  memory?: FetchMemory,
  txn: TxnService | null = null,
  clients?: InternalClients,
): ServiceImplementation<typeof GroupService, typeof groupServiceCodecs> {
  const groups = new GroupsService(rt, rm);
  // Consume reads partitions with no replica here at their leaders (forwarded, as Fetch does).
  const leaders = new LeaderClients(FetchService, rm, clients);
  const remote = (who: Requester) => consumeRemote(leaders, who);
  // Consume's disk reads fill buffers from a pool, given back once each message is written.
  const pool = new BufferPool(CONSUME_POOL_BYTES_MAX);
  return {
    heartbeat: unary((req: HeartbeatRequest, call) => {
      access.heartbeat(requesterOf(call), req.groupId, req.topics);
      return heartbeat(groups, req);
    }),
    commitOffsets: unary(async (req: CommitOffsetsRequest, call) => {
      access.commitOffsets(requesterOf(call), req.groupId, req.offsets);
      if (req.transactionalId === "") return commitOffsets(groups, req);
      // Offsets committed with a producer's transaction (issue 17).
      access.transactionalWrite(requesterOf(call), "GroupService/CommitOffsets", req.transactionalId);
      if (txn === null) throw rillError("INVALID_REQUEST", "transactional_id: transactions are not served by this broker");
      const offsets = await txn.txnOffsetCommit({
        transactionalId: req.transactionalId,
        producerId: req.producerId,
        producerEpoch: req.producerEpoch,
        groupId: req.groupId,
        memberId: req.memberId === "" ? null : req.memberId,
        generationOrEpoch: req.memberEpoch,
        offsets: req.offsets.map((o) => ({
          topic: o.topic,
          partition: o.partition,
          offset: Number(o.offset),
          metadata: o.metadata,
          leaderEpoch: o.leaderEpoch,
        })),
      });
      return create(CommitOffsetsResponseSchema, { offsets: toOffsetResults(offsets) });
    }),
    fetchOffsets: unary(async (req: FetchOffsetsRequest, call) => {
      const offsets = await access.fetchOffsets(requesterOf(call), req.groupId, async () => (await fetchOffsets(groups, req)).offsets);
      return create(FetchOffsetsResponseSchema, { offsets });
    }),
    listGroups: unary((req: ListGroupsRequest, call) => {
      const res = listGroups(groups, req);
      return create(ListGroupsResponseSchema, { groups: access.listGroups(requesterOf(call), res.groups) });
    }),
    describeGroups: unary((req: DescribeGroupsRequest, call) => {
      access.describeGroups(requesterOf(call), req.groupIds);
      return create(DescribeGroupsResponseSchema, { groups: groups.describeGroups(req.groupIds).map(toProtoDescription) });
    }),
    deleteGroups: unary((req: DeleteGroupsRequest, call) => {
      access.deleteGroups(requesterOf(call), req.groupIds);
      return create(DeleteGroupsResponseSchema, {
        results: groups
          .deleteGroups(req.groupIds)
          .map((r) => ({ groupId: r.groupId, ...(r.error ? { error: toErrorDetail(r.error) } : {}) })),
      });
    }),
    resetOffsets: unary((req: ResetOffsetsRequest, call) => {
      access.resetOffsets(requesterOf(call), req.groupId, fromProtoPartitions(req.partitions));
      return resetOffsets(groups, req);
    }),
    consume: (call) => serveConsume(rt, rm, timers, call, access, quotas, memory, pool, remote),
    // Kafka's OffsetDelete (issue 15)
    deleteOffsets: unary(async (req: DeleteOffsetsRequest, call) => {
      const partitions = fromProtoPartitions(req.partitions);
      access.deleteOffsets(requesterOf(call), req.groupId, partitions);
      const results = await groups.deleteOffsets(req.groupId, partitions);
      return create(DeleteOffsetsResponseSchema, {
        results: results.map((r) => ({ topic: r.topic, partition: r.partition, ...(r.error ? { error: toErrorDetail(r.error) } : {}) })),
      });
    }),
  };
}
