/**
 * The group coordinator (KIP-848 consumer groups) as a pure state machine: a thin facade over
 * its two managers, as Kafka's GroupCoordinatorShard over GroupMetadataManager and
 * OffsetMetadataManager — membership (membership.ts: heartbeats, assignments, session timeouts)
 * and committed offsets (offsets-manager.ts). It owns the groups' state and its only writer,
 * `replay`; the managers read it.
 *
 * Handlers (`heartbeat`, `commitOffsets`, `resetOffsets`, `deleteGroups`, `deleteOffsets`,
 * `tick`, `onTopicsChanged`) compute the records a request writes, and the response it gets
 * once they are written, from the current state — and change nothing. The caller appends the
 * records to `__consumer_offsets` and, once they are durable, calls `replay` for each in order:
 * `replay` is the only writer of group state, so a coordinator that loads the topic after a
 * restart or a move runs the same code. If the append fails, the caller drops the records and
 * the response; the state is as before. The caller must replay a result's records before it
 * handles the next request, as every handler reads the replayed state.
 *
 * Not group state: when each member last heartbeated and when its revocation must be done.
 * These timers (Kafka's timer wheel, kept by the membership manager) are never written or
 * replayed and are left out of `toJSON`; an accepted heartbeat refreshes them, and a loaded
 * coordinator starts every member's timers at its first `tick`.
 *
 * Time comes in as `now` (milliseconds), member ids from the injected Random: no clock, no
 * Math.random, no timers.
 */
import type { RillError } from "../base/errors.ts";
import { rillError } from "../base/errors.ts";
import type { Random } from "../base/random.ts";
import type { AssignorName } from "./assignors.ts";
import type {
  ClassicDelivery,
  ClassicGroupDescription,
  ClassicHeartbeatRequest,
  ClassicOutcome,
  ClassicStateName,
  JoinGroupRequest,
  JoinGroupResponse,
  LeaveGroupRequest,
  LeaveGroupResponse,
  SyncGroupRequest,
  SyncGroupResponse,
} from "./classic.ts";
import { ClassicManager } from "./classic.ts";
import type { GroupStateName } from "./group-state.ts";
import { GroupState } from "./group-state.ts";
import { GroupTx } from "./group-tx.ts";
import {
  GROUPS_MAX,
  GROUPS_PER_REQUEST_MAX,
  HEARTBEAT_INTERVAL_DEFAULT_MS,
  INITIAL_REBALANCE_DELAY_DEFAULT_MS,
  MEMBERS_PER_GROUP_MAX,
  REBALANCE_TIMEOUT_MAX_MS,
  SESSION_TIMEOUT_DEFAULT_MS,
  SESSION_TIMEOUT_MAX_MS,
  SESSION_TIMEOUT_MIN_MS,
} from "./limits.ts";
import type { GroupListing, HeartbeatRequest, HeartbeatResponse, MemberDescription } from "./membership.ts";
import { MembershipManager } from "./membership.ts";
import type {
  CommitOffsetsRequest,
  CommitOffsetsResponse,
  CommittedOffset,
  DeleteOffsetResult,
  OffsetCommitResult,
  OffsetToCommit,
  PartitionOffsetDescription,
} from "./offsets-manager.ts";
import { OffsetsManager } from "./offsets-manager.ts";
import type { TopicPartitions } from "./partitions.ts";
import type { GroupRecord } from "./records.ts";
import { classicGroupTombstone } from "./records.ts";
import type { CoordinatorResult, LogEndOffsets, TopicsView } from "./types.ts";
import { checkListLength, groupIdError, validateInt } from "./validate.ts";

export type { GroupListing, HeartbeatRequest, HeartbeatResponse, MemberDescription } from "./membership.ts";
export type {
  CommitOffsetsRequest,
  CommitOffsetsResponse,
  CommittedOffset,
  DeleteOffsetResult,
  OffsetCommitResult,
  OffsetToCommit,
  PartitionOffsetDescription,
} from "./offsets-manager.ts";
export type { CoordinatorResult, LogEndOffsets, TopicsView } from "./types.ts";
export type {
  ClassicDelivery,
  ClassicGroupDescription,
  ClassicHeartbeatRequest,
  ClassicMemberDescription,
  ClassicOutcome,
  ClassicProtocol,
  ClassicStateName,
  JoinedMember,
  JoinGroupRequest,
  JoinGroupResponse,
  LeaveGroupRequest,
  LeaveGroupResponse,
  SyncGroupRequest,
  SyncGroupResponse,
} from "./classic.ts";

/** Construction options. */
export interface CoordinatorOptions {
  readonly random: Random;
  readonly topics: TopicsView;
  /** Told to members as their heartbeat interval. Default HEARTBEAT_INTERVAL_DEFAULT_MS. */
  readonly heartbeatIntervalMs?: number;
  /** Session timeout of a member that asks for none. Default SESSION_TIMEOUT_DEFAULT_MS. */
  readonly sessionTimeoutMs?: number;
  /** Bounds of a requested session timeout. Defaults SESSION_TIMEOUT_MIN_MS and SESSION_TIMEOUT_MAX_MS. */
  readonly minSessionTimeoutMs?: number;
  readonly maxSessionTimeoutMs?: number;
  /** At most GROUPS_MAX (the default). */
  readonly groupsMax?: number;
  /** At most MEMBERS_PER_GROUP_MAX (the default). */
  readonly membersPerGroupMax?: number;
  /**
   * How long an empty classic group's first rebalance waits for more members (Kafka's
   * group.initial.rebalance.delay.ms). Default INITIAL_REBALANCE_DELAY_DEFAULT_MS.
   */
  readonly initialRebalanceDelayMs?: number;
}

/** A classic group's state as the KIP-848 state names show it (ListGroups' and gRPC's view). */
export const CLASSIC_STATE_AS: Readonly<Record<ClassicStateName, GroupStateName>> = {
  PreparingRebalance: "assigning",
  CompletingRebalance: "reconciling",
  Stable: "stable",
  Empty: "empty",
  Dead: "dead",
};

/** A described group (`error` set, and the rest empty, when it could not be described). */
export interface GroupDescription {
  readonly groupId: string;
  readonly state: GroupStateName;
  readonly groupEpoch: number;
  readonly assignmentEpoch: number;
  readonly assignor: AssignorName | "";
  readonly members: MemberDescription[];
  readonly offsets: PartitionOffsetDescription[];
  readonly error: RillError | null;
  /** A classic group's generation and members (`members` is then empty); null for a consumer group. */
  readonly classic: ClassicGroupDescription | null;
}

/** The outcome of deleting one group: error null when deleted. */
export interface DeleteGroupResult {
  readonly groupId: string;
  readonly error: RillError | null;
}

/** Consumer groups of one coordinator (one `__consumer_offsets` partition). */
export class GroupCoordinator {
  private readonly groups = new Map<string, GroupState>();
  private readonly membership: MembershipManager;
  private readonly offsets: OffsetsManager;
  private readonly classic: ClassicManager;
  /** The `now` of the latest call, for the views that take none (describe, list). */
  private lastNow = 0;

  constructor(opts: CoordinatorOptions) {
    const minSessionTimeoutMs = validateInt(
      opts.minSessionTimeoutMs ?? SESSION_TIMEOUT_MIN_MS,
      "minSessionTimeoutMs",
      1,
      SESSION_TIMEOUT_MAX_MS,
    );
    const maxSessionTimeoutMs = validateInt(
      opts.maxSessionTimeoutMs ?? SESSION_TIMEOUT_MAX_MS,
      "maxSessionTimeoutMs",
      minSessionTimeoutMs,
      SESSION_TIMEOUT_MAX_MS,
    );
    const sessionTimeoutMs = validateInt(
      opts.sessionTimeoutMs ?? SESSION_TIMEOUT_DEFAULT_MS,
      "sessionTimeoutMs",
      minSessionTimeoutMs,
      maxSessionTimeoutMs,
    );
    const heartbeatIntervalMs = validateInt(
      opts.heartbeatIntervalMs ?? HEARTBEAT_INTERVAL_DEFAULT_MS,
      "heartbeatIntervalMs",
      1,
      minSessionTimeoutMs,
    );
    const groupsMax = validateInt(opts.groupsMax ?? GROUPS_MAX, "groupsMax", 1, GROUPS_MAX);
    const membersPerGroupMax = validateInt(
      opts.membersPerGroupMax ?? MEMBERS_PER_GROUP_MAX,
      "membersPerGroupMax",
      1,
      MEMBERS_PER_GROUP_MAX,
    );
    this.membership = new MembershipManager(this.groups, {
      random: opts.random,
      topics: opts.topics,
      heartbeatIntervalMs,
      sessionTimeoutMs,
      minSessionTimeoutMs,
      maxSessionTimeoutMs,
      groupsMax,
      membersPerGroupMax,
    });
    const initialRebalanceDelayMs = validateInt(
      opts.initialRebalanceDelayMs ?? INITIAL_REBALANCE_DELAY_DEFAULT_MS,
      "initialRebalanceDelayMs",
      0,
      REBALANCE_TIMEOUT_MAX_MS,
    );
    this.classic = new ClassicManager(this.groups, {
      random: opts.random,
      minSessionTimeoutMs,
      maxSessionTimeoutMs,
      initialRebalanceDelayMs,
      groupsMax,
      membersPerGroupMax,
      consumerLeftovers: (g) => this.membership.membershipTombstones(g),
    });
    this.offsets = new OffsetsManager(this.groups, {
      topics: opts.topics,
      groupsMax,
      classicCommitError: (groupId, memberId, generation, now) => this.classic.commitError(groupId, memberId, generation, now),
      classicSubscribed: (groupId) => this.classic.subscribedTopics(groupId, this.lastNow),
    });
  }

  // -------------------------------------------------------------------------------------------
  // Replay: the only writer of group state.

  /** Applies one record (from this coordinator's handlers or read back from the log). */
  replay(record: GroupRecord): void {
    const g = this.groups.get(record.groupId) ?? new GroupState(record.groupId);
    g.apply(record);
    if (g.isVoid()) this.groups.delete(record.groupId);
    else this.groups.set(record.groupId, g);
    this.membership.replayTimers(record);
    if (record.type === "classic-group-tombstone") this.classic.forget(record.groupId);
  }

  /** The durable state as plain, deterministically ordered JSON: equal for equal states. */
  toJSON(): unknown {
    return { groups: [...this.groups.keys()].sort().map((id) => this.groups.get(id)?.toJSON()) };
  }

  // -------------------------------------------------------------------------------------------
  // Membership

  /** Joins, stays in or leaves a group; throws a RillError (nothing changed) when refused. */
  heartbeat(req: HeartbeatRequest, now: number): CoordinatorResult<HeartbeatResponse> {
    this.lastNow = now;
    const groupId = req.groupId;
    if (typeof groupId === "string" && this.classic.isClassic(groupId)) {
      if (this.classic.isActive(groupId))
        throw rillError(
          "INCONSISTENT_GROUP_PROTOCOL",
          `groupId: ${groupId} is a classic group (JoinGroup/SyncGroup) with members; a group uses one protocol at a time`,
        );
      // An empty classic group becomes a consumer group when a member joins.
      const res = this.membership.heartbeat(req, now);
      const written = this.groups.get(groupId)?.classic ?? null;
      return {
        records: written !== null ? [classicGroupTombstone(groupId), ...res.records] : res.records,
        response: res.response,
        effects: () => this.classic.forget(groupId),
      };
    }
    return this.membership.heartbeat(req, now);
  }

  // -------------------------------------------------------------------------------------------
  // Classic groups (classic.ts)

  /**
   * A JoinGroup. `response.answer` is the answer now, or null when the member waits for the
   * rebalance: its answer then comes as a delivery of a later call (another member's join,
   * a leave, or `classicTick`). `response.deliveries` answer other members' waiting requests.
   */
  joinGroup(req: JoinGroupRequest, now: number): CoordinatorResult<ClassicOutcome<JoinGroupResponse>> {
    this.lastNow = now;
    return this.classic.join(req, now);
  }

  /** A SyncGroup; answered now or (the members waiting for the leader's assignment) by a delivery. */
  syncGroup(req: SyncGroupRequest, now: number): CoordinatorResult<ClassicOutcome<SyncGroupResponse>> {
    this.lastNow = now;
    return this.classic.sync(req, now);
  }

  /** A classic member's heartbeat: null, or the error to answer (REBALANCE_IN_PROGRESS: join again). */
  classicHeartbeat(req: ClassicHeartbeatRequest, now: number): CoordinatorResult<RillError | null> {
    this.lastNow = now;
    return this.classic.heartbeat(req, now);
  }

  /** LeaveGroup: per member, null or the error. */
  leaveGroup(req: LeaveGroupRequest, now: number): CoordinatorResult<ClassicOutcome<LeaveGroupResponse>> {
    this.lastNow = now;
    return this.classic.leave(req, now);
  }

  /** Classic session timeouts and rebalance deadlines (of one group, or all): records and deliveries. */
  classicTick(now: number, groupId?: string): CoordinatorResult<ClassicDelivery[]> {
    this.lastNow = now;
    return this.classic.tick(now, groupId);
  }

  /** When `classicTick` next has work for the group (null: none pending). */
  classicDeadline(groupId: string): number | null {
    return this.classic.nextDeadline(groupId);
  }

  /**
   * Removes members whose session timed out (a static member that left included, once its
   * session runs out) and members that did not give up revoked partitions within their rebalance
   * timeout. Returns the records; members first seen here (after a load) start their timers now.
   */
  tick(now: number): GroupRecord[] {
    this.lastNow = now;
    return this.membership.tick(now);
  }

  /**
   * Topics were created, grew or were deleted (count 0): groups subscribed to them get a new
   * target assignment, and offsets of partitions that no longer exist are deleted. `topics`
   * maps each changed topic to its partition count now; the TopicsView must agree with it.
   */
  onTopicsChanged(topics: ReadonlyMap<string, number>): GroupRecord[] {
    const records: GroupRecord[] = [];
    for (const groupId of [...this.groups.keys()].sort()) {
      const tx = new GroupTx(groupId, this.groups.get(groupId));
      this.offsets.expireDeletedPartitions(tx, topics);
      this.membership.reassignForTopics(tx, topics);
      records.push(...tx.records);
    }
    return records;
  }

  // -------------------------------------------------------------------------------------------
  // Offsets

  /**
   * Commits offsets. A member commits partitions it owns (assigned or being revoked) with its
   * current epoch; memberId "" with memberEpoch -1 commits without membership, only while the
   * group has no members. Refusals come back per offset (and in `error` when the whole commit is
   * refused); a refused offset is never applied. Malformed requests throw.
   */
  /** TxnOffsetCommit (issue 17): offsets pending in producer `producerId`'s transaction (offsets-manager.ts). */
  txnCommitOffsets(req: CommitOffsetsRequest & { producerId: number }, now: number): CoordinatorResult<CommitOffsetsResponse> {
    return this.offsets.txnCommitOffsets(req, now);
  }

  /** A transaction marker of `producerId` reached this shard: its pending offsets commit or drop. */
  completeTxnOffsets(producerId: number, commit: boolean, now: number): CoordinatorResult<void> {
    return { records: this.offsets.completeTxnOffsets(producerId, commit, now), response: undefined };
  }

  commitOffsets(req: CommitOffsetsRequest, now: number): CoordinatorResult<CommitOffsetsResponse> {
    this.lastNow = now;
    return this.offsets.commitOffsets(req, now);
  }

  /**
   * Committed offsets of a group: of the given partitions (an entry with no partitions: every
   * partition of its topic), or of every partition with one (null). Offset -1 where none.
   */
  fetchOffsets(groupId: string, partitions: readonly TopicPartitions[] | null): CommittedOffset[] {
    return this.offsets.fetchOffsets(groupId, partitions);
  }

  /**
   * Sets committed offsets (already resolved from earliest/latest/timestamp by the caller, see
   * offsets.ts), only while the group has no members: NON_EMPTY_GROUP otherwise, nothing
   * changed. For a dry run, drop the records.
   */
  resetOffsets(groupId: string, offsets: readonly OffsetToCommit[], now: number): CoordinatorResult<OffsetCommitResult[]> {
    this.lastNow = now;
    const n = typeof groupId === "string" ? this.classic.memberCount(groupId) : 0;
    if (n > 0)
      throw rillError("NON_EMPTY_GROUP", `groupId: classic group ${groupId} has ${n} members; offsets are reset only while it has none`);
    return this.offsets.resetOffsets(groupId, offsets, now);
  }

  /**
   * Deletes committed offsets (an entry with no partitions: all of its topic's), except for
   * topics a member subscribes to (GROUP_SUBSCRIBED_TO_TOPIC). Throws GROUP_ID_NOT_FOUND for an
   * unknown group.
   */
  deleteOffsets(groupId: string, partitions: readonly TopicPartitions[]): CoordinatorResult<DeleteOffsetResult[]> {
    return this.offsets.deleteOffsets(groupId, partitions);
  }

  // -------------------------------------------------------------------------------------------
  // Groups

  /** Groups (optionally only those in `states`), sorted by id. */
  listGroups(states?: readonly GroupStateName[]): GroupListing[] {
    const all = this.membership.listGroups();
    for (const groupId of this.classic.liveOnlyGroupIds())
      all.push({ groupId, state: "empty", members: 0, type: "classic", protocolType: "", classicState: null });
    const out: GroupListing[] = [];
    for (const l of all.sort((a, b) => (a.groupId < b.groupId ? -1 : a.groupId > b.groupId ? 1 : 0))) {
      const c = this.classic.describe(l.groupId, this.lastNow);
      const listing: GroupListing =
        c === null
          ? l
          : {
              groupId: l.groupId,
              state: CLASSIC_STATE_AS[c.state],
              members: c.members.length,
              type: "classic",
              protocolType: c.protocolType,
              classicState: c.state,
            };
      if (states === undefined || states.length === 0 || states.includes(listing.state)) out.push(listing);
    }
    return out;
  }

  /**
   * Describes groups, in request order: members (sorted by id) with their owned and target
   * partitions, and per partition (of subscribed topics, and any with a committed offset) the
   * committed offset, the log end offset (from the caller's hook) and the lag. Unknown groups
   * get GROUP_ID_NOT_FOUND, invalid ids INVALID_GROUP_ID, in their entry.
   */
  describeGroups(groupIds: readonly string[], logEndOffset: LogEndOffsets = () => -1): GroupDescription[] {
    checkListLength(groupIds, "groupIds", GROUPS_PER_REQUEST_MAX);
    return groupIds.map((groupId) => {
      const invalid = groupIdError(groupId, "group_id");
      const g = invalid === null ? this.groups.get(groupId) : undefined;
      const classic = invalid === null ? this.classic.describe(groupId, this.lastNow) : null;
      if (classic !== null) {
        return {
          groupId,
          state: CLASSIC_STATE_AS[classic.state],
          groupEpoch: classic.generation,
          assignmentEpoch: classic.generation,
          assignor: "",
          members: [],
          offsets: g === undefined ? [] : this.offsets.describeOffsets(g, logEndOffset),
          error: null,
          classic,
        };
      }
      if (g === undefined) {
        const error = invalid ?? rillError("GROUP_ID_NOT_FOUND", `group_id: group ${groupId} does not exist`);
        return { groupId, state: "dead", groupEpoch: 0, assignmentEpoch: 0, assignor: "", members: [], offsets: [], error, classic: null };
      }
      return {
        classic: null,
        groupId: g.groupId,
        state: g.state(),
        groupEpoch: g.groupEpoch,
        assignmentEpoch: g.assignmentEpoch ?? 0,
        assignor: g.meta?.assignor ?? "",
        members: this.membership.describeMembers(g),
        offsets: this.offsets.describeOffsets(g, logEndOffset),
        error: null,
      };
    });
  }

  /**
   * Deletes groups and their committed offsets, in request order. Only groups without members:
   * NON_EMPTY_GROUP otherwise; GROUP_ID_NOT_FOUND, INVALID_GROUP_ID per entry.
   */
  deleteGroups(groupIds: readonly string[]): CoordinatorResult<DeleteGroupResult[]> {
    checkListLength(groupIds, "groupIds", GROUPS_PER_REQUEST_MAX);
    const records: GroupRecord[] = [];
    const deleted = new Set<string>();
    const response = groupIds.map((groupId): DeleteGroupResult => {
      const invalid = groupIdError(groupId, "group_id");
      if (invalid !== null) return { groupId, error: invalid };
      const g = this.groups.get(groupId);
      const classicMembers = this.classic.memberCount(groupId);
      if (classicMembers > 0)
        return { groupId, error: rillError("NON_EMPTY_GROUP", `group_id: classic group ${groupId} has ${classicMembers} members`) };
      if (g === undefined || deleted.has(groupId))
        return { groupId, error: rillError("GROUP_ID_NOT_FOUND", `group_id: group ${groupId} does not exist`) };
      if (g.members.size > 0)
        return { groupId, error: rillError("NON_EMPTY_GROUP", `group_id: group ${groupId} has ${g.members.size} members`) };
      records.push(...this.offsets.offsetTombstones(g), ...this.membership.membershipTombstones(g));
      if (g.classic !== null) records.push(classicGroupTombstone(groupId));
      deleted.add(groupId);
      return { groupId, error: null };
    });
    return { records, response };
  }
}
