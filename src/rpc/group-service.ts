/**
 * GroupService: the unary group RPCs (KIP-848 heartbeats, offsets, admin) mapped onto the group
 * runtime, and Consume (consume-stream.ts). Per-partition outcomes come back in their result with
 * a catalog code; whole-call problems (an invalid group id, an unknown group) are statuses.
 */
import { create } from "@bufbuild/protobuf";
import { RillError, rillError } from "../base/errors.ts";
import type { TopicPartitions } from "../coordinator/index.ts";
import { type GroupRuntime, OFFSETS_TOPIC, validateGroupId } from "../coordinator/group-runtime.ts";
import { resolveResetOffset, type ResetSpec } from "../coordinator/offsets.ts";
import type { GroupStateName } from "../coordinator/index.ts";
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
import type { Timers } from "../base/timers.ts";
import type { ReplicaManager } from "../replication/replica-manager.ts";
import { serveConsume } from "./consume-stream.ts";
import { toErrorDetail, unary } from "./errors.ts";
import type { ServiceImplementation } from "./grpc-service.ts";

const STATE: Record<GroupStateName, GroupState> = {
  empty: GroupState.EMPTY,
  assigning: GroupState.ASSIGNING,
  reconciling: GroupState.RECONCILING,
  stable: GroupState.STABLE,
  dead: GroupState.DEAD,
};
const STATE_NAME = new Map<GroupState, GroupStateName>(Object.entries(STATE).map(([k, v]) => [v, k as GroupStateName]));

/** Proto TopicPartitions → the coordinator's. */
export function fromProtoPartitions(list: readonly ProtoTopicPartitions[]): TopicPartitions[] {
  return list.map((t) => ({ topic: t.topic, partitions: [...t.partitions] }));
}

function assignorOf(name: string, field: string): "uniform" | "range" | "" {
  if (name === "" || name === "uniform" || name === "range") return name;
  throw rillError("INVALID_REQUEST", `${field}: unknown assignor "${name}" (uniform or range)`);
}

/** Log end offsets for lag: the high watermark of each partition, -1 when unknown. */
export function logEndOffsetOf(rm: ReplicaManager): (topic: string, partition: number) => number {
  return (topic, partition) => {
    const d = rm.readPartition({ topic, partition, offset: 0, maxBytes: 0 });
    return d.error ? -1 : d.highWatermark;
  };
}

/** One offset to commit, as both commit paths receive it. */
export interface CommitInput {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly metadata: string;
  readonly leaderEpoch: number;
}

/**
 * Commits offsets for a member (or, with memberId "" and epoch -1, for an empty group). Offsets
 * of topics or partitions that do not exist get UNKNOWN_TOPIC_OR_PARTITION each; the rest go to
 * the coordinator, which refuses partitions the member does not own. Results keep input order.
 */
export function commitChecked(
  rt: GroupRuntime,
  rm: ReplicaManager,
  groupId: string,
  memberId: string,
  memberEpoch: number,
  offsets: readonly CommitInput[],
): { error: RillError | null; offsets: Array<{ topic: string; partition: number; offset: number; error: RillError | null }> } {
  const unknown = offsets.map((o, i) => {
    const t = rm.image.topics.get(o.topic);
    if (!t || o.topic === OFFSETS_TOPIC)
      return rillError("UNKNOWN_TOPIC_OR_PARTITION", `offsets[${i}].topic: topic "${o.topic}" does not exist`);
    if (o.partition < 0 || o.partition >= t.partitions.length)
      return rillError(
        "UNKNOWN_TOPIC_OR_PARTITION",
        `offsets[${i}].partition: ${o.partition} is out of range for topic "${o.topic}" (partitions 0..${t.partitions.length - 1})`,
      );
    return null;
  });
  const known = offsets.filter((_, i) => unknown[i] === null);
  const res =
    known.length === 0
      ? { error: null, offsets: [] }
      : rt.run(groupId, (shard, now) => shard.commitOffsets({ groupId, memberId, memberEpoch, offsets: known }, now));
  let k = 0;
  return {
    error: res.error,
    offsets: offsets.map((o, i) =>
      unknown[i] ? { topic: o.topic, partition: o.partition, offset: o.offset, error: unknown[i] } : res.offsets[k++]!,
    ),
  };
}

/** Heartbeat as a unary call: the member's whole current assignment is always answered. */
function heartbeat(rt: GroupRuntime, req: HeartbeatRequest) {
  validateGroupId(req.groupId);
  const res = rt.run(req.groupId, (shard, now) =>
    shard.heartbeat(
      {
        groupId: req.groupId,
        memberId: req.memberId,
        memberEpoch: req.memberEpoch,
        ...(req.instanceId !== undefined ? { instanceId: req.instanceId } : {}),
        ...(req.topics.length > 0 || req.memberEpoch === 0 ? { subscribedTopics: req.topics } : {}),
        ownedPartitions: fromProtoPartitions(req.owned),
        assignor: assignorOf(req.assignor, "assignor"),
        ...(req.sessionTimeoutMs > 0 ? { sessionTimeoutMs: req.sessionTimeoutMs } : {}),
        ...(req.rebalanceTimeoutMs > 0 ? { rebalanceTimeoutMs: req.rebalanceTimeoutMs } : {}),
        clientId: req.clientId,
      },
      now,
    ),
  );
  const assignment = res.assignment ?? currentAssignment(rt, req.groupId, res.memberId);
  return create(HeartbeatResponseSchema, {
    memberId: res.memberId,
    memberEpoch: res.memberEpoch,
    heartbeatIntervalMs: res.heartbeatIntervalMs,
    assignment: assignment.map((t) => ({ topic: t.topic, partitions: [...t.partitions] })),
  });
}

/** What a member should own now: its assignment minus what it must give up. */
export function currentAssignment(rt: GroupRuntime, groupId: string, memberId: string): TopicPartitions[] {
  if (memberId === "") return [];
  const g = rt.shardFor(groupId).describeGroups([groupId])[0];
  const m = g?.members.find((x) => x.memberId === memberId);
  if (!m) return [];
  const pending = new Set(m.pendingRevocation.flatMap((t) => t.partitions.map((p) => `${t.topic}\u0000${p}`)));
  return m.assignment
    .map((t) => ({ topic: t.topic, partitions: t.partitions.filter((p) => !pending.has(`${t.topic}\u0000${p}`)) }))
    .filter((t) => t.partitions.length > 0);
}

/** The GroupService implementation. */
export function groupService(rt: GroupRuntime, rm: ReplicaManager, timers: Timers): ServiceImplementation<typeof GroupService> {
  const lag = logEndOffsetOf(rm);
  return {
    heartbeat: unary((req: HeartbeatRequest) => heartbeat(rt, req)),

    commitOffsets: unary(async (req: CommitOffsetsRequest) => {
      validateGroupId(req.groupId);
      if (req.offsets.length === 0) throw rillError("INVALID_REQUEST", "offsets: at least one offset is required");
      req.offsets.forEach((o, i) => {
        if (o.offset < 0n) throw rillError("INVALID_REQUEST", `offsets[${i}].offset: ${o.offset} is negative`);
      });
      const res = commitChecked(
        rt,
        rm,
        req.groupId,
        req.memberId,
        req.memberEpoch,
        req.offsets.map((o) => ({
          topic: o.topic,
          partition: o.partition,
          offset: Number(o.offset),
          metadata: o.metadata,
          leaderEpoch: o.leaderEpoch,
        })),
      );
      // Acknowledged only once the ISR of the group's __consumer_offsets partition holds it.
      await rt.replicated(req.groupId);
      return create(CommitOffsetsResponseSchema, {
        offsets: res.offsets.map((o) => ({
          topic: o.topic,
          partition: o.partition,
          offset: BigInt(o.offset),
          ...(o.error ? { error: toErrorDetail(o.error) } : {}),
        })),
      });
    }),

    fetchOffsets: unary(async (req: FetchOffsetsRequest) => {
      validateGroupId(req.groupId);
      // Answer only what is replicated: a commit this coordinator wrote but could still lose
      // (its ISR has not confirmed it) is not reported as committed.
      rt.shardFor(req.groupId);
      await rt.replicated(req.groupId);
      const offsets = rt
        .shardFor(req.groupId)
        .fetchOffsets(req.groupId, req.partitions.length > 0 ? fromProtoPartitions(req.partitions) : null);
      return create(FetchOffsetsResponseSchema, {
        offsets: offsets.map((o) => ({
          topic: o.topic,
          partition: o.partition,
          offset: BigInt(o.offset),
          metadata: o.metadata,
          leaderEpoch: o.leaderEpoch,
        })),
      });
    }),

    listGroups: unary((req: ListGroupsRequest) => {
      const states = req.states.map((s, i) => {
        const n = STATE_NAME.get(s);
        if (!n) throw rillError("INVALID_REQUEST", `states[${i}]: ${s} is not a group state`);
        return n;
      });
      const groups = rt.allShards().flatMap((s) => s.listGroups(states.length > 0 ? states : undefined));
      groups.sort((a, b) => a.groupId.localeCompare(b.groupId));
      return create(ListGroupsResponseSchema, {
        groups: groups.map((g) => ({ groupId: g.groupId, state: STATE[g.state], members: g.members })),
      });
    }),

    describeGroups: unary((req: DescribeGroupsRequest) => {
      if (req.groupIds.length === 0) throw rillError("INVALID_REQUEST", "group_ids: at least one group is required");
      return create(DescribeGroupsResponseSchema, {
        groups: req.groupIds.map((id, i) => {
          try {
            validateGroupId(id, `group_ids[${i}]`);
            const g = rt.shardFor(id).describeGroups([id], lag)[0]!;
            if (g.error) return { groupId: id, error: toErrorDetail(g.error) };
            return {
              groupId: id,
              state: STATE[g.state],
              groupEpoch: g.groupEpoch,
              assignmentEpoch: g.assignmentEpoch,
              assignor: g.assignor,
              coordinatorId: rm.nodeIdOf(),
              members: g.members.map((m) => ({
                memberId: m.memberId,
                ...(m.instanceId !== null ? { instanceId: m.instanceId } : {}),
                clientId: m.clientId,
                clientHost: m.clientHost,
                memberEpoch: m.memberEpoch,
                topics: m.topics,
                assignment: m.assignment.map((t) => ({ topic: t.topic, partitions: [...t.partitions] })),
                targetAssignment: m.targetAssignment.map((t) => ({ topic: t.topic, partitions: [...t.partitions] })),
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
          } catch (e) {
            return { groupId: id, error: toErrorDetail(e) };
          }
        }),
      });
    }),

    deleteGroups: unary((req: DeleteGroupsRequest) => {
      if (req.groupIds.length === 0) throw rillError("INVALID_REQUEST", "group_ids: at least one group is required");
      return create(DeleteGroupsResponseSchema, {
        results: req.groupIds.map((id, i) => {
          try {
            validateGroupId(id, `group_ids[${i}]`);
            const r = rt.run(id, (shard) => shard.deleteGroups([id]))[0]!;
            return { groupId: id, ...(r.error ? { error: toErrorDetail(r.error) } : {}) };
          } catch (e) {
            return { groupId: id, error: toErrorDetail(e) };
          }
        }),
      });
    }),

    resetOffsets: unary((req: ResetOffsetsRequest) => {
      validateGroupId(req.groupId);
      if (req.partitions.length === 0) throw rillError("INVALID_REQUEST", "partitions: at least one topic is required");
      const targets = req.partitions.flatMap((t, i) => {
        const topic = rm.topic(t.topic, `partitions[${i}].topic`);
        if (t.topic === OFFSETS_TOPIC)
          throw rillError("INVALID_REQUEST", `partitions[${i}].topic: cannot reset offsets of ${OFFSETS_TOPIC}`);
        const parts = t.partitions.length > 0 ? [...t.partitions] : topic.partitions.map((p) => p.partition);
        return parts.map((p) => ({ topic: t.topic, partition: p }));
      });
      const offsets = targets.map((tp) => {
        const range = {
          logStartOffset: rm.earliestOffset(tp.topic, tp.partition).offset,
          logEndOffset: rm.latestOffset(tp.topic, tp.partition).offset,
        };
        return { ...tp, offset: resolveResetOffset(resetSpec(rm, req, tp), range) };
      });
      const apply = (shard: Parameters<Parameters<GroupRuntime["run"]>[1]>[0], now: number) => {
        const r = shard.resetOffsets(req.groupId, offsets, now);
        return req.dryRun ? { records: [], response: r.response } : r;
      };
      const results = rt.run(req.groupId, apply);
      return create(ResetOffsetsResponseSchema, {
        offsets: results.map((o) => ({
          topic: o.topic,
          partition: o.partition,
          offset: BigInt(o.offset),
          ...(o.error ? { error: toErrorDetail(o.error) } : {}),
        })),
      });
    }),

    consume: (call) => serveConsume(rt, rm, timers, call),
  };
}

function resetSpec(rm: ReplicaManager, req: ResetOffsetsRequest, tp: { topic: string; partition: number }): ResetSpec {
  if (req.offset !== undefined && req.spec !== OffsetSpec.UNSPECIFIED)
    throw rillError("INVALID_REQUEST", "spec, offset: give one of them, not both");
  if (req.offset === undefined && req.spec === OffsetSpec.UNSPECIFIED)
    throw rillError("INVALID_REQUEST", "spec, offset: one of them is required");
  if (req.offset !== undefined) {
    if (req.offset < 0n) throw rillError("INVALID_REQUEST", `offset: ${req.offset} is negative`);
    return { kind: "offset", offset: Number(req.offset) };
  }
  switch (req.spec) {
    case OffsetSpec.EARLIEST:
      return { kind: "earliest" };
    case OffsetSpec.LATEST:
      return { kind: "latest" };
    case OffsetSpec.TIMESTAMP: {
      if (req.timestampMs < 0n) throw rillError("INVALID_TIMESTAMP", `timestamp_ms: ${req.timestampMs} is negative`);
      const hit = rm.offsetForTimestamp(tp.topic, tp.partition, Number(req.timestampMs));
      return { kind: "timestamp", offsetForTimestamp: hit ? hit.offset : null };
    }
    default:
      throw rillError("INVALID_REQUEST", `spec: ${req.spec} is not EARLIEST, LATEST or TIMESTAMP`);
  }
}

export { RillError };
