/**
 * Consumer groups, protocol-neutral: what each group request means, once, for every listener.
 *
 * The gRPC adapter (rpc/group-service.ts) and, later, the Kafka adapter decode their wire
 * messages into the plain inputs below, call `GroupsService`, and encode the outputs. Nothing
 * here knows a wire format: no protobuf types, no gRPC, no Kafka API versions.
 *
 * The life of a group request:
 * 1. Validate the input as a whole (group id, non-empty lists, non-negative offsets). A problem
 *    there is thrown as a RillError naming the field (INVALID_REQUEST, INVALID_GROUP_ID...):
 *    the adapter answers it as a whole-call error, and nothing is touched.
 * 2. Run the request on the group's coordinator shard through `GroupRuntime.run`: the shard
 *    computes records and a response, the records go to `__consumer_offsets` and are replayed,
 *    then the response is returned. A group this broker does not coordinate throws
 *    NOT_COORDINATOR (or COORDINATOR_NOT_AVAILABLE) before anything runs.
 * 3. Per-item problems (a partition that does not exist, one the member does not own, a group
 *    that cannot be deleted) come back in that item's `error`, never thrown.
 * 4. Commits are answered only once the ISR of the group's `__consumer_offsets` partition holds
 *    them (`GroupRuntime.replicated`), and FetchOffsets reports only replicated commits.
 *
 * Invariants:
 * - A commit by a member for a partition it does not own is refused in that partition's result
 *   and never applied (the coordinator decides; `commitChecked` adds the "does the partition
 *   exist" check in front of it, keeping the input order of results).
 * - Offsets of `__consumer_offsets` itself are neither committed nor reset through these calls.
 * - An AssertionError (a bug) is never turned into an answer: `RillError.from` rethrows it.
 *
 * The Consume stream's session logic (a whole member on one stream) is in consume-session.ts and
 * uses `commitChecked` and `currentAssignment` from here.
 */
import { RillError, rillError } from "../base/errors.ts";
import { type Timers, systemTimers } from "../base/timers.ts";
import { type GroupRuntime, OFFSETS_TOPIC, offsetsPartitionFor, validateGroupId } from "../coordinator/group-runtime.ts";
import {
  type ClassicGroupDescription,
  type ClassicStateName,
  type GroupStateName,
  type ResetSpec,
  type TopicPartitions,
  consumerSubscriptionTopics,
  resolveResetOffset,
} from "../coordinator/index.ts";
import type { ReplicaManager } from "../replication/replica-manager.ts";
import {
  type ClassicGroups,
  type ClassicHeartbeatInput,
  type JoinGroupInput,
  type JoinGroupOutput,
  type LeaveGroupInput,
  type LeaveGroupOutput,
  type SyncGroupInput,
  type SyncGroupOutput,
  classicGroupsOf,
} from "./classic-groups.ts";

export type {
  ClassicHeartbeatInput,
  ClassicProtocol,
  JoinedMember,
  JoinGroupInput,
  JoinGroupOutput,
  LeaveGroupInput,
  LeaveGroupOutput,
  SyncGroupInput,
  SyncGroupOutput,
} from "./classic-groups.ts";
export type { ClassicGroupDescription, ClassicMemberDescription, ClassicStateName } from "../coordinator/index.ts";

/** A heartbeat of a KIP-848 member (join with memberId "" or a chosen id and epoch 0). */
export interface HeartbeatInput {
  readonly groupId: string;
  readonly memberId: string;
  /** 0 to join, the current epoch to stay, -1 to leave, -2 for a static member to leave for a while. */
  readonly memberEpoch: number;
  /** Static membership id; null for a dynamic member. */
  readonly instanceId: string | null;
  /** Subscribed topics; null: unchanged since the last heartbeat (a joining member must give them). */
  readonly topics: readonly string[] | null;
  /**
   * Partitions the member owns now; leaving a revoked one out acknowledges its revocation. null:
   * unchanged since the last heartbeat (Kafka's ConsumerGroupHeartbeat), which acknowledges nothing.
   */
  readonly owned: readonly TopicPartitions[] | null;
  /** "uniform", "range", or "" for the group's; anything else is INVALID_REQUEST. */
  readonly assignor: string;
  /** 0 or less: unchanged, or the coordinator's default for a new member. */
  readonly sessionTimeoutMs: number;
  /** 0 or less: unchanged, or the session timeout for a new member. */
  readonly rebalanceTimeoutMs: number;
  readonly clientId: string;
  /** Where the member connects from, for DescribeGroups; omitted: unknown. */
  readonly clientHost?: string;
}

/** The answer to a heartbeat. */
export interface HeartbeatOutput {
  readonly memberId: string;
  readonly memberEpoch: number;
  readonly heartbeatIntervalMs: number;
  /** The member's whole current assignment (what it owns minus what it must give up). */
  readonly assignment: TopicPartitions[];
}

/** One offset to commit, as both commit paths (CommitOffsets and the Consume stream) receive it. */
export interface CommitInput {
  readonly topic: string;
  readonly partition: number;
  /** The next offset to read, as in Kafka. */
  readonly offset: number;
  readonly metadata: string;
  /** Leader epoch of the last record processed; -1 when unknown. */
  readonly leaderEpoch: number;
}

/** A CommitOffsets request. memberId "" with memberEpoch -1: a commit without membership. */
export interface CommitOffsetsInput {
  readonly groupId: string;
  readonly memberId: string;
  readonly memberEpoch: number;
  readonly offsets: readonly CommitInput[];
}

/** The outcome for one partition's offset: error null when it was applied. */
export interface OffsetResult {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly error: RillError | null;
}

/** The outcome of a commit: `error` when the whole commit failed (each offset then carries it too). */
export interface CommitOutput {
  readonly error: RillError | null;
  /** One entry per input offset, in input order. */
  readonly offsets: OffsetResult[];
}

/** A committed offset as FetchOffsets answers it (offset -1 and leaderEpoch -1 when none). */
export interface CommittedOffsetOutput {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly metadata: string;
  readonly leaderEpoch: number;
  /** When it was committed (coordinator clock), -1 when none. */
  readonly commitTimestampMs: number;
}

/** A listed group. */
export interface GroupListingOutput {
  readonly groupId: string;
  /** A classic group's state mapped onto these (PreparingRebalance: assigning, CompletingRebalance: reconciling). */
  readonly state: GroupStateName;
  readonly members: number;
  /** "consumer": KIP-848 heartbeats; "classic": JoinGroup/SyncGroup. */
  readonly type: "consumer" | "classic";
  /** "consumer" for a consumer group; a classic group's own ("" while it never had a member). */
  readonly protocolType: string;
  /** A classic group's state by Kafka's name; null for a consumer group. */
  readonly classicState: ClassicStateName | null;
}

/** A member as DescribeGroups shows it. */
export interface MemberOutput {
  readonly memberId: string;
  readonly instanceId: string | null;
  readonly clientId: string;
  readonly clientHost: string;
  readonly memberEpoch: number;
  readonly topics: readonly string[];
  /** What the member owns now (assigned and pending revocation). */
  readonly assignment: readonly TopicPartitions[];
  /** Owned partitions it must give up. */
  readonly pendingRevocation: readonly TopicPartitions[];
  readonly targetAssignment: readonly TopicPartitions[];
}

/** A partition's committed offset and lag. */
export interface PartitionLagOutput {
  readonly topic: string;
  readonly partition: number;
  /** -1 when none. */
  readonly committedOffset: number;
  /** The partition's high watermark, -1 when unknown here. */
  readonly logEndOffset: number;
  /** logEndOffset - committedOffset, or -1 without a committed offset or a known end. */
  readonly lag: number;
  /** The owner, "" when unassigned. */
  readonly memberId: string;
}

/** A described group. */
export interface GroupDescriptionOutput {
  readonly state: GroupStateName;
  readonly groupEpoch: number;
  readonly assignmentEpoch: number;
  readonly assignor: string;
  /** This broker: the group's coordinator. */
  readonly coordinatorId: number;
  /** A classic group's members are here too: memberEpoch the generation, topics and partitions read from "consumer" metadata. */
  readonly members: readonly MemberOutput[];
  readonly offsets: readonly PartitionLagOutput[];
  /** A classic group's protocol, generation, leader and members' metadata and assignment bytes; null for a consumer group. */
  readonly classic: ClassicGroupDescription | null;
}

/** One group's entry in DescribeGroups: its description, or why it has none. */
export type DescribeGroupResult =
  | { readonly groupId: string; readonly error: RillError; readonly group: null }
  | { readonly groupId: string; readonly error: null; readonly group: GroupDescriptionOutput };

/** One group's entry in DeleteGroups: error null when deleted. */
export interface DeleteGroupOutput {
  readonly groupId: string;
  readonly error: RillError | null;
}

/** The names `ResetOffsetsInput.spec` accepts. */
export type ResetSpecName = "earliest" | "latest" | "timestamp";

/** A ResetOffsets request: move a group's committed offsets (the group must have no members). */
export interface ResetOffsetsInput {
  readonly groupId: string;
  /** Topics, each with the partitions to reset (an empty list: all of the topic's). At least one. */
  readonly partitions: readonly TopicPartitions[];
  /**
   * Where to move: a `ResetSpecName`, or null when `offset` is given instead. Exactly one of
   * `spec` and `offset` is required; any other name is INVALID_REQUEST naming it.
   */
  readonly spec: string | null;
  /** An explicit offset (clamped into each partition's range), or null when `spec` is given. */
  readonly offset: number | null;
  /** With spec "timestamp": the first offset whose record is at least this recent. */
  readonly timestampMs: number;
  /** Compute and answer the new offsets, but commit nothing. */
  readonly dryRun: boolean;
}

/** Throws INVALID_REQUEST naming `${field}[i].offset` for the first negative offset. */
export function checkCommitOffsets(offsets: readonly CommitInput[], field: string): void {
  offsets.forEach((o, i) => {
    if (o.offset < 0) throw rillError("INVALID_REQUEST", `${field}[${i}].offset: ${o.offset} is negative`);
  });
}

/** Log end offsets for lag: the high watermark of each partition, -1 when unknown. */
export function logEndOffsetOf(rm: ReplicaManager): (topic: string, partition: number) => number {
  return (topic, partition) => {
    const d = rm.readPartition({ topic, partition, offset: 0, maxBytes: 0 });
    return d.error ? -1 : d.highWatermark;
  };
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
): CommitOutput {
  const unknown = offsets.map((o, i) => unknownPartitionError(rm, o, i));
  const known = offsets.filter((_, i) => unknown[i] === null);
  const res =
    known.length === 0
      ? { error: null, offsets: [] }
      : rt.run(groupId, (shard, now) => shard.commitOffsets({ groupId, memberId, memberEpoch, offsets: known }, now));
  let k = 0;
  return {
    error: res.error,
    offsets: offsets.map((o, i) => {
      const err = unknown[i];
      return err ? { topic: o.topic, partition: o.partition, offset: o.offset, error: err } : res.offsets[k++]!;
    }),
  };
}

/** UNKNOWN_TOPIC_OR_PARTITION naming `offsets[i]` when `o` is not a partition offsets can be committed for. */
function unknownPartitionError(rm: ReplicaManager, o: CommitInput, i: number): RillError | null {
  const t = rm.image.topics.get(o.topic);
  if (!t || o.topic === OFFSETS_TOPIC)
    return rillError("UNKNOWN_TOPIC_OR_PARTITION", `offsets[${i}].topic: topic "${o.topic}" does not exist`);
  if (o.partition < 0 || o.partition >= t.partitions.length)
    return rillError(
      "UNKNOWN_TOPIC_OR_PARTITION",
      `offsets[${i}].partition: ${o.partition} is out of range for topic "${o.topic}" (partitions 0..${t.partitions.length - 1})`,
    );
  return null;
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

function assignorOf(name: string, field: string): "uniform" | "range" | "" {
  if (name === "" || name === "uniform" || name === "range") return name;
  throw rillError("INVALID_REQUEST", `${field}: unknown assignor "${name}" (uniform or range)`);
}

/**
 * The partitions of a ConsumerProtocolAssignment (int16 version, then an int32 count of topics,
 * each an int16-length name and an int32 count of int32 partitions); [] when the bytes are not one.
 */
export function consumerAssignmentPartitions(bytes: Uint8Array): TopicPartitions[] {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: TopicPartitions[] = [];
  try {
    let pos = 2;
    const n = b.readInt32BE(pos);
    pos += 4;
    for (let i = 0; i < n; i++) {
      const len = b.readInt16BE(pos);
      pos += 2;
      if (len < 0 || pos + len > b.length) return [];
      const topic = b.toString("utf8", pos, pos + len);
      pos += len;
      const count = b.readInt32BE(pos);
      pos += 4;
      if (count < 0 || pos + 4 * count > b.length) return [];
      const partitions: number[] = [];
      for (let j = 0; j < count; j++, pos += 4) partitions.push(b.readInt32BE(pos));
      out.push({ topic, partitions });
    }
  } catch {
    return [];
  }
  return out;
}

/** A classic group's members as MemberOutput (the "consumer" protocol's bytes read where they can be). */
function classicMembersOutput(c: ClassicGroupDescription): MemberOutput[] {
  const consumer = c.protocolType === "consumer";
  return c.members.map((m) => {
    const assignment = consumer ? consumerAssignmentPartitions(m.assignment) : [];
    return {
      memberId: m.memberId,
      instanceId: m.instanceId,
      clientId: m.clientId,
      clientHost: m.clientHost,
      memberEpoch: c.generation,
      topics: consumer ? (consumerSubscriptionTopics(m.metadata) ?? []) : [],
      assignment,
      pendingRevocation: [],
      targetAssignment: assignment,
    };
  });
}

/** The group requests of this broker, on domain types. */
export class GroupsService {
  private readonly lag: (topic: string, partition: number) => number;
  private readonly classic: ClassicGroups;

  /**
   * Serves the groups whose coordinator shards `rt` holds, reading partitions through `rm`;
   * classic groups' long polls wait on `timers` (shared by every GroupsService of `rt`: the
   * first one's timers are used).
   */
  constructor(
    private readonly rt: GroupRuntime,
    private readonly rm: ReplicaManager,
    timers: Timers = systemTimers,
  ) {
    this.lag = logEndOffsetOf(rm);
    this.classic = classicGroupsOf(rt, timers);
  }

  /**
   * The node that coordinates `groupId` (the leader of its `__consumer_offsets` partition), for
   * clients that route group requests themselves (Kafka's FindCoordinator). Throws
   * INVALID_GROUP_ID, or COORDINATOR_NOT_AVAILABLE while the topic or the partition's leader is missing.
   */
  coordinatorOf(groupId: string): number {
    validateGroupId(groupId);
    const p = offsetsPartitionFor(groupId);
    const st = this.rm.image.topics.get(OFFSETS_TOPIC)?.partitions[p];
    if (st === undefined)
      throw rillError(
        "COORDINATOR_NOT_AVAILABLE",
        `group_id: ${OFFSETS_TOPIC} does not exist yet (it is created once enough brokers are up)`,
      );
    if (st.leader < 0)
      throw rillError(
        "COORDINATOR_NOT_AVAILABLE",
        `group_id: ${OFFSETS_TOPIC}-${p}, which coordinates "${groupId}", has no leader right now`,
      );
    return st.leader;
  }

  // -------------------------------------------------------------------------------------------
  // Classic groups (classic-groups.ts): JoinGroup/SyncGroup long polls, heartbeats, leaves.

  /** Joins (or rejoins) a classic group; resolves once the rebalance completes (or at once with an error, MEMBER_ID_REQUIRED...). */
  joinGroup(req: JoinGroupInput): Promise<JoinGroupOutput> {
    return this.classic.join(req);
  }

  /** Resolves with the member's assignment once the leader has sent the generation's assignments. */
  syncGroup(req: SyncGroupInput): Promise<SyncGroupOutput> {
    return this.classic.sync(req);
  }

  /** A classic member's heartbeat: null, or the error to answer (REBALANCE_IN_PROGRESS: join again). */
  classicHeartbeat(req: ClassicHeartbeatInput): RillError | null {
    return this.classic.heartbeat(req);
  }

  /** Members leave a classic group (each with its outcome); the rest rebalance. */
  leaveGroup(req: LeaveGroupInput): Promise<LeaveGroupOutput> {
    return this.classic.leave(req);
  }

  /** A member's heartbeat; the answer always carries its whole current assignment. */
  heartbeat(req: HeartbeatInput): HeartbeatOutput {
    validateGroupId(req.groupId);
    const res = this.rt.run(req.groupId, (shard, now) =>
      shard.heartbeat(
        {
          groupId: req.groupId,
          memberId: req.memberId,
          memberEpoch: req.memberEpoch,
          ...(req.instanceId !== null ? { instanceId: req.instanceId } : {}),
          ...(req.topics !== null ? { subscribedTopics: req.topics } : {}),
          ...(req.owned !== null ? { ownedPartitions: req.owned } : {}),
          assignor: assignorOf(req.assignor, "assignor"),
          ...(req.sessionTimeoutMs > 0 ? { sessionTimeoutMs: req.sessionTimeoutMs } : {}),
          ...(req.rebalanceTimeoutMs > 0 ? { rebalanceTimeoutMs: req.rebalanceTimeoutMs } : {}),
          clientId: req.clientId,
          ...(req.clientHost !== undefined ? { clientHost: req.clientHost } : {}),
        },
        now,
      ),
    );
    return {
      memberId: res.memberId,
      memberEpoch: res.memberEpoch,
      heartbeatIntervalMs: res.heartbeatIntervalMs,
      assignment: res.assignment ?? currentAssignment(this.rt, req.groupId, res.memberId),
    };
  }

  /**
   * Commits offsets (see `commitChecked`); resolves once the commit is on every in-sync replica
   * of the group's `__consumer_offsets` partition.
   */
  async commitOffsets(req: CommitOffsetsInput): Promise<CommitOutput> {
    validateGroupId(req.groupId);
    if (req.offsets.length === 0) throw rillError("INVALID_REQUEST", "offsets: at least one offset is required");
    checkCommitOffsets(req.offsets, "offsets");
    const res = commitChecked(this.rt, this.rm, req.groupId, req.memberId, req.memberEpoch, req.offsets);
    // Acknowledged only once the ISR of the group's __consumer_offsets partition holds it.
    await this.rt.replicated(req.groupId);
    return res;
  }

  /** The group's committed offsets, of `partitions` or (null) of every partition it has one for. */
  async fetchOffsets(groupId: string, partitions: readonly TopicPartitions[] | null): Promise<CommittedOffsetOutput[]> {
    validateGroupId(groupId);
    // Answer only what is replicated: a commit this coordinator wrote but could still lose
    // (its ISR has not confirmed it) is not reported as committed. The answer is read first and
    // sent once everything written until then is replicated: read after the wait, it could hold
    // a commit written meanwhile, not replicated yet (cluster-sim seed 1167).
    const answer = this.rt.shardFor(groupId).fetchOffsets(groupId, partitions);
    await this.rt.replicated(groupId);
    return answer;
  }

  /** The groups of every shard of this broker, by group id; `states` empty: all. */
  listGroups(states: readonly GroupStateName[]): GroupListingOutput[] {
    const groups = this.rt.allShards().flatMap((s) => s.listGroups(states.length > 0 ? states : undefined));
    groups.sort((a, b) => a.groupId.localeCompare(b.groupId));
    return groups;
  }

  /** Each group's members, assignments and per-partition lag, in request order. */
  describeGroups(groupIds: readonly string[]): DescribeGroupResult[] {
    if (groupIds.length === 0) throw rillError("INVALID_REQUEST", "group_ids: at least one group is required");
    return groupIds.map((id, i): DescribeGroupResult => {
      try {
        validateGroupId(id, `group_ids[${i}]`);
        const g = this.rt.shardFor(id).describeGroups([id], this.lag)[0]!;
        if (g.error) return { groupId: id, error: g.error, group: null };
        const { state, groupEpoch, assignmentEpoch, assignor, offsets, classic } = g;
        const members = classic !== null ? classicMembersOutput(classic) : g.members;
        return {
          groupId: id,
          error: null,
          group: { state, groupEpoch, assignmentEpoch, assignor, coordinatorId: this.rm.nodeIdOf(), members, offsets, classic },
        };
      } catch (e) {
        return { groupId: id, error: RillError.from(e), group: null };
      }
    });
  }

  /** Deletes groups without members (and their offsets), in request order. */
  deleteGroups(groupIds: readonly string[]): DeleteGroupOutput[] {
    if (groupIds.length === 0) throw rillError("INVALID_REQUEST", "group_ids: at least one group is required");
    return groupIds.map((id, i) => {
      try {
        validateGroupId(id, `group_ids[${i}]`);
        const r = this.rt.run(id, (shard) => shard.deleteGroups([id]))[0]!;
        return { groupId: id, error: r.error };
      } catch (e) {
        return { groupId: id, error: RillError.from(e) };
      }
    });
  }

  /** Moves an empty group's committed offsets (or, with `dryRun`, only says where to). */
  resetOffsets(req: ResetOffsetsInput): OffsetResult[] {
    validateGroupId(req.groupId);
    if (req.partitions.length === 0) throw rillError("INVALID_REQUEST", "partitions: at least one topic is required");
    const targets = req.partitions.flatMap((t, i) => {
      const topic = this.rm.topic(t.topic, `partitions[${i}].topic`);
      if (t.topic === OFFSETS_TOPIC) throw rillError("INVALID_REQUEST", `partitions[${i}].topic: cannot reset offsets of ${OFFSETS_TOPIC}`);
      const parts = t.partitions.length > 0 ? [...t.partitions] : topic.partitions.map((p) => p.partition);
      return parts.map((p) => ({ topic: t.topic, partition: p }));
    });
    const offsets = targets.map((tp) => {
      const range = {
        logStartOffset: this.rm.earliestOffset(tp.topic, tp.partition).offset,
        logEndOffset: this.rm.latestOffset(tp.topic, tp.partition).offset,
      };
      return { ...tp, offset: resolveResetOffset(this.resetSpec(req, tp), range) };
    });
    return this.rt.run(req.groupId, (shard, now) => {
      const r = shard.resetOffsets(req.groupId, offsets, now);
      return req.dryRun ? { records: [], response: r.response } : r;
    });
  }

  private resetSpec(req: ResetOffsetsInput, tp: { topic: string; partition: number }): ResetSpec {
    if (req.offset !== null && req.spec !== null) throw rillError("INVALID_REQUEST", "spec, offset: give one of them, not both");
    if (req.offset === null && req.spec === null) throw rillError("INVALID_REQUEST", "spec, offset: one of them is required");
    if (req.offset !== null) {
      if (req.offset < 0) throw rillError("INVALID_REQUEST", `offset: ${req.offset} is negative`);
      return { kind: "offset", offset: req.offset };
    }
    switch (req.spec) {
      case "earliest":
        return { kind: "earliest" };
      case "latest":
        return { kind: "latest" };
      case "timestamp": {
        if (req.timestampMs < 0) throw rillError("INVALID_TIMESTAMP", `timestamp_ms: ${req.timestampMs} is negative`);
        const hit = this.rm.offsetForTimestamp(tp.topic, tp.partition, req.timestampMs);
        return { kind: "timestamp", offsetForTimestamp: hit ? hit.offset : null };
      }
      default:
        throw rillError("INVALID_REQUEST", `spec: ${req.spec} is not EARLIEST, LATEST or TIMESTAMP`);
    }
  }

  /**
   * Deletes the group's committed offsets of the named partitions (Kafka's OffsetDelete); one
   * result per partition, in request order. A partition that does not exist gets
   * UNKNOWN_TOPIC_OR_PARTITION; one of a topic a live member subscribes to,
   * GROUP_SUBSCRIBED_TO_TOPIC (its offset stays); the others are deleted (or had none). Throws
   * INVALID_REQUEST for an empty list or a topic without partitions, GROUP_ID_NOT_FOUND for an
   * unknown group. Resolves once the deletions are on every in-sync replica of the group's
   * `__consumer_offsets` partition.
   */
  async deleteOffsets(
    groupId: string,
    partitions: readonly TopicPartitions[],
  ): Promise<{ topic: string; partition: number; error: RillError | null }[]> {
    validateGroupId(groupId);
    if (partitions.length === 0) throw rillError("INVALID_REQUEST", "partitions: at least one topic is required");
    partitions.forEach((t, i) => {
      if (t.partitions.length === 0) throw rillError("INVALID_REQUEST", `partitions[${i}].partitions: name at least one partition`);
    });
    const items = partitions.flatMap((t) => t.partitions.map((partition) => ({ topic: t.topic, partition })));
    const unknown = items.map((o, i) => unknownPartitionError(this.rm, { ...o, offset: 0, metadata: "", leaderEpoch: -1 }, i));
    const known = items.filter((_, i) => unknown[i] === null);
    const byTopic = new Map<string, number[]>();
    for (const o of known) {
      const list = byTopic.get(o.topic);
      if (list === undefined) byTopic.set(o.topic, [o.partition]);
      else list.push(o.partition);
    }
    const res =
      known.length === 0
        ? []
        : this.rt.run(groupId, (shard) =>
            shard.deleteOffsets(
              groupId,
              [...byTopic].map(([topic, ps]) => ({ topic, partitions: ps })),
            ),
          );
    const outcome = new Map(res.map((r) => [`${r.topic}\u0000${r.partition}`, r.error] as const));
    await this.rt.replicated(groupId);
    return items.map((o, i) => ({
      topic: o.topic,
      partition: o.partition,
      error: unknown[i] ?? outcome.get(`${o.topic}\u0000${o.partition}`) ?? null,
    }));
  }
}
