/**
 * The group coordinator (KIP-848 consumer groups) as a pure state machine.
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
 * These timers (Kafka's timer wheel) are never written or replayed and are left out of
 * `toJSON`; an accepted heartbeat refreshes them, and a loaded coordinator starts every
 * member's timers at its first `tick`.
 *
 * Time comes in as `now` (milliseconds), member ids from the injected Random: no clock, no
 * Math.random, no timers.
 */
import { assert } from "../base/assert.ts";
import type { RillError } from "../base/errors.ts";
import { rillError } from "../base/errors.ts";
import type { Random } from "../base/random.ts";
import type { AssignorName } from "./assignors.ts";
import { ASSIGNOR_NAMES, DEFAULT_ASSIGNOR, assignorByName } from "./assignors.ts";
import type { GroupStateName, MemberMeta } from "./group-state.ts";
import { GroupState, LEFT_STATIC_MEMBER_EPOCH, ownedKeys } from "./group-state.ts";
import { GroupTx } from "./group-tx.ts";
import {
  GROUPS_MAX,
  GROUPS_PER_REQUEST_MAX,
  HEARTBEAT_INTERVAL_DEFAULT_MS,
  MEMBERS_PER_GROUP_MAX,
  OFFSETS_PER_REQUEST_MAX,
  REBALANCE_TIMEOUT_MAX_MS,
  SESSION_TIMEOUT_DEFAULT_MS,
  SESSION_TIMEOUT_MAX_MS,
  SESSION_TIMEOUT_MIN_MS,
  SUBSCRIBED_PARTITIONS_MAX,
} from "./limits.ts";
import { lagOf } from "./offsets.ts";
import type { TopicPartitions } from "./partitions.ts";
import { canonical, fromKeys, isSubset, keysOf, parseTpKey, samePartitions, tpKey } from "./partitions.ts";
import type { CurrentAssignment } from "./reconcile.ts";
import { reconcile, sameCurrent } from "./reconcile.ts";
import type { GroupRecord, MemberState } from "./records.ts";
import {
  assignmentRecord,
  assignmentTombstone,
  groupRecord,
  groupTombstone,
  memberRecord,
  memberTombstone,
  offsetRecord,
  offsetTombstone,
  targetEpochRecord,
  targetEpochTombstone,
  targetRecord,
  targetTombstone,
} from "./records.ts";
import {
  groupIdError,
  offsetEntryError,
  validateClientString,
  validateGroupId,
  validateInstanceId,
  validateInt,
  validateMemberId,
  validateSubscription,
  validateTopicPartitions,
} from "./validate.ts";

/** Partition counts of topics, as the broker's metadata knows them. */
export interface TopicsView {
  /** The topic's partition count, or undefined when it does not exist. */
  partitionCount(topic: string): number | undefined;
}

/** What a handler returns: records to append (then replay), and the response to send after. */
export interface CoordinatorResult<T> {
  readonly records: GroupRecord[];
  readonly response: T;
}

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
}

/** A Heartbeat request. */
export interface HeartbeatRequest {
  readonly groupId: string;
  /** "" to join (the coordinator picks an id), or an id the client chose (KIP-1082). */
  readonly memberId: string;
  /** 0 to join, the current epoch to stay, -1 to leave, -2 for a static member to leave for a while. */
  readonly memberEpoch: number;
  readonly instanceId?: string | undefined;
  /** Required to join; omitted: unchanged. */
  readonly subscribedTopics?: readonly string[] | undefined;
  /**
   * Partitions the member owns now; a revoked partition is acknowledged by leaving it out.
   * Omitted: unchanged since the last heartbeat, which acknowledges nothing (a joining member
   * owns nothing).
   */
  readonly ownedPartitions?: readonly TopicPartitions[] | undefined;
  /** Omitted or "": the group's (the default for a new group). */
  readonly assignor?: AssignorName | "" | undefined;
  /** Omitted or 0: unchanged, or the coordinator's default for a new member. */
  readonly sessionTimeoutMs?: number | undefined;
  /** Omitted or 0: unchanged, or the session timeout for a new member. */
  readonly rebalanceTimeoutMs?: number | undefined;
  readonly clientId?: string | undefined;
  readonly clientHost?: string | undefined;
}

/** A Heartbeat response. */
export interface HeartbeatResponse {
  readonly memberId: string;
  readonly memberEpoch: number;
  readonly heartbeatIntervalMs: number;
  /** The partitions the member should own now; null: unchanged since the last response. */
  readonly assignment: TopicPartitions[] | null;
}

/** One offset to commit (or to reset to). */
export interface OffsetToCommit {
  readonly topic: string;
  readonly partition: number;
  /** The next offset to read, as in Kafka. */
  readonly offset: number;
  readonly metadata?: string | undefined;
  /** Leader epoch of the last record processed; -1 (the default) when unknown. */
  readonly leaderEpoch?: number | undefined;
}

/** A CommitOffsets request. memberId "" with memberEpoch -1: a commit without membership. */
export interface CommitOffsetsRequest {
  readonly groupId: string;
  readonly memberId: string;
  readonly memberEpoch: number;
  readonly offsets: readonly OffsetToCommit[];
}

/** The outcome for one offset: error null when committed. */
export interface OffsetCommitResult {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly error: RillError | null;
}

/** A CommitOffsets response: `error` when the whole commit failed (every offset then carries it too). */
export interface CommitOffsetsResponse {
  readonly error: RillError | null;
  readonly offsets: OffsetCommitResult[];
}

/** A committed offset as FetchOffsets answers it (offset -1 and leaderEpoch -1 when none). */
export interface CommittedOffset {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly metadata: string;
  readonly leaderEpoch: number;
  /** -1 when none. */
  readonly commitTimestampMs: number;
}

/** A listed group. */
export interface GroupListing {
  readonly groupId: string;
  readonly state: GroupStateName;
  readonly members: number;
}

/** A member as DescribeGroups shows it. */
export interface MemberDescription {
  readonly memberId: string;
  readonly instanceId: string | null;
  readonly clientId: string;
  readonly clientHost: string;
  readonly memberEpoch: number;
  readonly state: MemberState;
  readonly topics: string[];
  /** What the member owns now (assigned and pending revocation). */
  readonly assignment: TopicPartitions[];
  /** Owned partitions it must give up. */
  readonly pendingRevocation: TopicPartitions[];
  readonly targetAssignment: TopicPartitions[];
}

/** A partition's committed offset and lag. */
export interface PartitionOffsetDescription {
  readonly topic: string;
  readonly partition: number;
  /** -1 when none. */
  readonly committedOffset: number;
  /** What the logEndOffset hook answered (-1: unknown). */
  readonly logEndOffset: number;
  /** logEndOffset - committedOffset, or -1 without a committed offset or a known end. */
  readonly lag: number;
  /** The owner, "" when unassigned. */
  readonly memberId: string;
}

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
}

/** The outcome of deleting one group: error null when deleted. */
export interface DeleteGroupResult {
  readonly groupId: string;
  readonly error: RillError | null;
}

/** The outcome of deleting one partition's offset: error null when deleted (or there was none). */
export interface DeleteOffsetResult {
  readonly topic: string;
  readonly partition: number;
  readonly error: RillError | null;
}

/** The log end offset (high watermark) of a partition, -1 when unknown; given by the caller. */
export type LogEndOffsets = (topic: string, partition: number) => number;

/** A heartbeat after validation. */
interface Heartbeat {
  readonly groupId: string;
  readonly memberId: string;
  readonly memberEpoch: number;
  readonly instanceId: string | null;
  readonly topics: string[] | undefined;
  readonly owned: TopicPartitions[] | undefined;
  readonly assignor: AssignorName | undefined;
  readonly sessionTimeoutMs: number | undefined;
  readonly rebalanceTimeoutMs: number | undefined;
  readonly clientId: string | undefined;
  readonly clientHost: string | undefined;
}

/** A member's timers (not group state). */
interface MemberTimers {
  lastHeartbeatMs: number;
  revokeDeadlineMs: number | null;
}

/** The current assignment of a member that is joining: owns nothing. */
const JOINING: CurrentAssignment = { memberEpoch: 0, previousMemberEpoch: -1, state: "stable", assigned: [], pendingRevocation: [] };

const MEMBER_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const MEMBER_ID_CHARS = 22;

/** Consumer groups of one coordinator (one `__consumer_offsets` partition). */
export class GroupCoordinator {
  private readonly groups = new Map<string, GroupState>();
  private readonly timers = new Map<string, Map<string, MemberTimers>>();
  private readonly random: Random;
  private readonly topics: TopicsView;
  private readonly heartbeatIntervalMs: number;
  private readonly sessionTimeoutMs: number;
  private readonly minSessionTimeoutMs: number;
  private readonly maxSessionTimeoutMs: number;
  private readonly groupsMax: number;
  private readonly membersPerGroupMax: number;

  constructor(opts: CoordinatorOptions) {
    this.random = opts.random;
    this.topics = opts.topics;
    this.minSessionTimeoutMs = validateInt(
      opts.minSessionTimeoutMs ?? SESSION_TIMEOUT_MIN_MS,
      "minSessionTimeoutMs",
      1,
      SESSION_TIMEOUT_MAX_MS,
    );
    this.maxSessionTimeoutMs = validateInt(
      opts.maxSessionTimeoutMs ?? SESSION_TIMEOUT_MAX_MS,
      "maxSessionTimeoutMs",
      this.minSessionTimeoutMs,
      SESSION_TIMEOUT_MAX_MS,
    );
    this.sessionTimeoutMs = validateInt(
      opts.sessionTimeoutMs ?? SESSION_TIMEOUT_DEFAULT_MS,
      "sessionTimeoutMs",
      this.minSessionTimeoutMs,
      this.maxSessionTimeoutMs,
    );
    this.heartbeatIntervalMs = validateInt(
      opts.heartbeatIntervalMs ?? HEARTBEAT_INTERVAL_DEFAULT_MS,
      "heartbeatIntervalMs",
      1,
      this.minSessionTimeoutMs,
    );
    this.groupsMax = validateInt(opts.groupsMax ?? GROUPS_MAX, "groupsMax", 1, GROUPS_MAX);
    this.membersPerGroupMax = validateInt(opts.membersPerGroupMax ?? MEMBERS_PER_GROUP_MAX, "membersPerGroupMax", 1, MEMBERS_PER_GROUP_MAX);
  }

  // -------------------------------------------------------------------------------------------
  // Replay: the only writer of group state.

  /** Applies one record (from this coordinator's handlers or read back from the log). */
  replay(record: GroupRecord): void {
    const g = this.groups.get(record.groupId) ?? new GroupState(record.groupId);
    g.apply(record);
    if (g.isVoid()) this.groups.delete(record.groupId);
    else this.groups.set(record.groupId, g);
    this.replayTimers(record);
  }

  private replayTimers(r: GroupRecord): void {
    if (r.type === "member-tombstone") {
      const t = this.timers.get(r.groupId);
      t?.delete(r.memberId);
      if (t?.size === 0) this.timers.delete(r.groupId);
    } else if (r.type === "assignment" && r.state !== "unrevoked-partitions") {
      const t = this.timers.get(r.groupId)?.get(r.memberId);
      if (t !== undefined) t.revokeDeadlineMs = null;
    }
  }

  /** The durable state as plain, deterministically ordered JSON: equal for equal states. */
  toJSON(): unknown {
    return { groups: [...this.groups.keys()].sort().map((id) => this.groups.get(id)?.toJSON()) };
  }

  // -------------------------------------------------------------------------------------------
  // Heartbeat

  /** Joins, stays in or leaves a group; throws a RillError (nothing changed) when refused. */
  heartbeat(req: HeartbeatRequest, now: number): CoordinatorResult<HeartbeatResponse> {
    const hb = this.validateHeartbeat(req);
    const tx = new GroupTx(hb.groupId, this.groups.get(hb.groupId));
    let response: HeartbeatResponse;
    if (hb.memberEpoch === -1) response = this.leave(tx, hb);
    else if (hb.memberEpoch === LEFT_STATIC_MEMBER_EPOCH) response = this.staticLeave(tx, hb, now);
    else response = this.joinOrStay(tx, hb, now);
    return { records: tx.records, response };
  }

  private validateHeartbeat(req: HeartbeatRequest): Heartbeat {
    const groupId = validateGroupId(req.groupId);
    const memberEpoch = validateInt(req.memberEpoch, "memberEpoch", -2, 2 ** 31 - 1);
    const memberId = validateMemberId(req.memberId, memberEpoch === 0);
    const instanceId = req.instanceId === undefined ? null : validateInstanceId(req.instanceId);
    if (memberEpoch === LEFT_STATIC_MEMBER_EPOCH && instanceId === null)
      throw rillError("INVALID_ARGUMENT", "instanceId: required with memberEpoch -2 (a static member's leave)");
    const topics = req.subscribedTopics === undefined ? undefined : validateSubscription(req.subscribedTopics);
    const owned =
      req.ownedPartitions === undefined
        ? undefined
        : canonical(validateTopicPartitions(req.ownedPartitions, "ownedPartitions", SUBSCRIBED_PARTITIONS_MAX));
    const assignor = req.assignor === undefined || req.assignor === "" ? undefined : req.assignor;
    if (assignor !== undefined && !ASSIGNOR_NAMES.includes(assignor))
      throw rillError("INVALID_ARGUMENT", `assignor: "${String(assignor)}" is not one of ${ASSIGNOR_NAMES.join(", ")}`);
    const s = req.sessionTimeoutMs;
    const sessionTimeoutMs =
      s === undefined || s === 0 ? undefined : validateInt(s, "sessionTimeoutMs", this.minSessionTimeoutMs, this.maxSessionTimeoutMs);
    const r = req.rebalanceTimeoutMs;
    const rebalanceTimeoutMs = r === undefined || r === 0 ? undefined : validateInt(r, "rebalanceTimeoutMs", 1, REBALANCE_TIMEOUT_MAX_MS);
    const clientId = req.clientId === undefined ? undefined : validateClientString(req.clientId, "clientId");
    const clientHost = req.clientHost === undefined ? undefined : validateClientString(req.clientHost, "clientHost");
    return {
      groupId,
      memberId,
      memberEpoch,
      instanceId,
      topics,
      owned,
      assignor,
      sessionTimeoutMs,
      rebalanceTimeoutMs,
      clientId,
      clientHost,
    };
  }

  private joinOrStay(tx: GroupTx, hb: Heartbeat, now: number): HeartbeatResponse {
    const joining = hb.memberEpoch === 0;
    let memberId: string;
    let reset = false;
    let lostResponse = false;
    if (joining) ({ memberId, reset } = this.join(tx, hb));
    else {
      memberId = hb.memberId;
      lostResponse = this.checkMemberEpoch(tx.g, hb);
    }
    this.checkAssignor(tx.g, hb, memberId);
    const subscriptionChanged = this.updateMember(tx, hb, memberId);
    this.maybeReassign(tx, subscriptionChanged, hb.assignor, null);

    const g = tx.g;
    assert(g.assignmentEpoch !== null, `group ${g.groupId}: no target assignment after a heartbeat`);
    const stored = g.current.get(memberId);
    const before = reset || stored === undefined ? JOINING : stored;
    const next = reconcile({
      memberId,
      current: before,
      targetEpoch: g.assignmentEpoch,
      target: g.targets.get(memberId) ?? [],
      ownerOf: (k) => g.owners.get(k),
      owned: joining ? (hb.owned ?? []) : hb.owned,
    });
    if (stored === undefined || !sameCurrent(next, stored)) tx.emit(assignmentRecord({ groupId: g.groupId, memberId, ...next }));

    const meta = tx.g.members.get(memberId);
    assert(meta);
    this.touch(
      g.groupId,
      memberId,
      now,
      next.state === "unrevoked-partitions" && stored?.state !== "unrevoked-partitions" ? now + meta.rebalanceTimeoutMs : undefined,
    );
    const changed = stored === undefined || !samePartitions(stored.assigned, next.assigned);
    const outOfStep = hb.owned !== undefined && !samePartitions(hb.owned, next.assigned);
    const send = joining || lostResponse || reset || changed || outOfStep;
    return {
      memberId,
      memberEpoch: next.memberEpoch,
      heartbeatIntervalMs: this.heartbeatIntervalMs,
      assignment: send ? [...next.assigned] : null,
    };
  }

  /** Works out who joins: a new member, a known member starting over, or a static member coming back. */
  private join(tx: GroupTx, hb: Heartbeat): { memberId: string; reset: boolean } {
    const g = tx.g;
    if (!this.groups.has(hb.groupId) && this.groups.size >= this.groupsMax) {
      throw rillError("GROUP_MAX_SIZE_REACHED", `groupId: this coordinator already holds ${this.groups.size} groups (the limit)`);
    }
    if (hb.topics === undefined) throw rillError("INVALID_ARGUMENT", "subscribedTopics: required to join (memberEpoch 0)");
    if (hb.instanceId !== null) {
      const holder = g.instances.get(hb.instanceId);
      if (holder !== undefined) {
        const away = g.current.get(holder)?.memberEpoch === LEFT_STATIC_MEMBER_EPOCH;
        if (away) return { memberId: this.replaceStaticMember(tx, holder, hb), reset: false };
        if (holder !== hb.memberId)
          throw rillError(
            "UNRELEASED_INSTANCE_ID",
            `instanceId: "${hb.instanceId}" is held by active member ${holder} of group ${hb.groupId}`,
          );
      }
    }
    if (hb.memberId !== "") {
      const existing = g.members.get(hb.memberId);
      if (existing !== undefined) {
        if (existing.instanceId !== hb.instanceId)
          throw rillError("INVALID_ARGUMENT", `instanceId: member ${hb.memberId} joined with instanceId ${String(existing.instanceId)}`);
        return { memberId: hb.memberId, reset: true };
      }
    }
    if (g.members.size >= this.membersPerGroupMax)
      throw rillError("GROUP_MAX_SIZE_REACHED", `groupId: group ${hb.groupId} already has ${g.members.size} members (the limit)`);
    return { memberId: hb.memberId !== "" ? hb.memberId : this.newMemberId(g), reset: false };
  }

  /**
   * A static member comes back while it is away: the new member id takes over the old one's
   * member, target and current assignment (at the epoch it had before it left), so it gets its
   * partitions back and nobody else's assignment moves.
   */
  private replaceStaticMember(tx: GroupTx, oldId: string, hb: Heartbeat): string {
    const g = tx.g;
    const meta = g.members.get(oldId);
    const cur = g.current.get(oldId);
    assert(meta && cur, `group ${g.groupId}: static member ${oldId} without member or assignment`);
    const target = g.targets.get(oldId) ?? [];
    const newId = hb.memberId !== "" ? hb.memberId : this.newMemberId(g);
    if (newId !== oldId) {
      if (g.members.has(newId)) throw rillError("INVALID_ARGUMENT", `memberId: ${newId} is another member of group ${g.groupId}`);
      tx.emit(assignmentTombstone(g.groupId, oldId));
      tx.emit(targetTombstone(g.groupId, oldId));
      tx.emit(memberTombstone(g.groupId, oldId));
      tx.emit(memberRecord({ groupId: g.groupId, memberId: newId, ...meta }));
      tx.emit(targetRecord(g.groupId, newId, target));
    }
    const epoch = cur.previousMemberEpoch;
    tx.emit(assignmentRecord({ groupId: g.groupId, memberId: newId, ...cur, memberEpoch: epoch, previousMemberEpoch: epoch }));
    return newId;
  }

  /** Accepts the member's epoch (true when it is the previous one, after a lost response) or throws. */
  private checkMemberEpoch(g: GroupState, hb: Heartbeat): boolean {
    const meta = g.members.get(hb.memberId);
    const cur = g.current.get(hb.memberId);
    if (meta === undefined || cur === undefined)
      throw rillError("UNKNOWN_MEMBER_ID", `memberId: ${hb.memberId} is not a member of group ${hb.groupId}`);
    if (hb.instanceId !== null && hb.instanceId !== meta.instanceId)
      throw rillError("INVALID_ARGUMENT", `instanceId: member ${hb.memberId} joined with instanceId ${String(meta.instanceId)}`);
    if (cur.memberEpoch === LEFT_STATIC_MEMBER_EPOCH) {
      throw rillError(
        "FENCED_MEMBER_EPOCH",
        `memberEpoch: member ${hb.memberId} left group ${hb.groupId} for a while; join again with memberEpoch 0`,
      );
    }
    if (hb.memberEpoch === cur.memberEpoch) return false;
    if (hb.memberEpoch === cur.previousMemberEpoch && hb.owned !== undefined && isSubset(hb.owned, cur.assigned)) return true;
    throw rillError(
      "FENCED_MEMBER_EPOCH",
      `memberEpoch: ${hb.memberEpoch} is not member ${hb.memberId}'s epoch ${cur.memberEpoch}; join again with memberEpoch 0`,
    );
  }

  private checkAssignor(g: GroupState, hb: Heartbeat, memberId: string): void {
    if (hb.assignor === undefined || g.meta === null || g.meta.assignor === hb.assignor) return;
    const others = [...g.members.keys()].filter((id) => id !== memberId).length;
    if (others > 0)
      throw rillError("INCONSISTENT_GROUP_PROTOCOL", `assignor: group ${g.groupId} uses "${g.meta.assignor}", not "${hb.assignor}"`);
  }

  /** Writes the member record when something about the member changed; true when its subscription did. */
  private updateMember(tx: GroupTx, hb: Heartbeat, memberId: string): boolean {
    const old = tx.g.members.get(memberId);
    const sessionTimeoutMs = hb.sessionTimeoutMs ?? old?.sessionTimeoutMs ?? this.sessionTimeoutMs;
    const meta: MemberMeta = {
      instanceId: hb.instanceId ?? old?.instanceId ?? null,
      subscribedTopics: hb.topics ?? old?.subscribedTopics ?? [],
      rebalanceTimeoutMs: hb.rebalanceTimeoutMs ?? old?.rebalanceTimeoutMs ?? sessionTimeoutMs,
      sessionTimeoutMs,
      clientId: hb.clientId ?? old?.clientId ?? "",
      clientHost: hb.clientHost ?? old?.clientHost ?? "",
    };
    const subscriptionChanged = old === undefined || !sameStrings(old.subscribedTopics, meta.subscribedTopics);
    if (old !== undefined && !subscriptionChanged && sameMeta(old, meta)) return false;
    tx.emit(memberRecord({ groupId: tx.groupId, memberId, ...meta }));
    if (subscriptionChanged) this.checkSubscribedPartitions(tx.g);
    return subscriptionChanged;
  }

  private checkSubscribedPartitions(g: GroupState): void {
    let n = 0;
    for (const t of g.subscriptions.keys()) n += this.topics.partitionCount(t) ?? 0;
    if (n > SUBSCRIBED_PARTITIONS_MAX)
      throw rillError(
        "INVALID_ARGUMENT",
        `subscribedTopics: group ${g.groupId} would subscribe to ${n} partitions, more than ${SUBSCRIBED_PARTITIONS_MAX}`,
      );
  }

  /**
   * Bumps the group epoch and computes a new target assignment when membership or subscriptions
   * changed (`force`), the assignor changes, or a subscribed topic's partition count differs from
   * the one the current target was computed from.
   */
  private maybeReassign(tx: GroupTx, force: boolean, assignor: AssignorName | undefined, counts: ReadonlyMap<string, number> | null): void {
    const g = tx.g;
    const name = assignor ?? g.meta?.assignor ?? DEFAULT_ASSIGNOR;
    const topicPartitions = this.subscribedCounts(g, counts);
    if (!force && g.meta !== null && g.meta.assignor === name && sameCounts(g.meta.topicPartitions, topicPartitions)) return;
    tx.emit(groupRecord({ groupId: g.groupId, epoch: g.groupEpoch + 1, assignor: name, topicPartitions }));
    this.computeTarget(tx);
  }

  private subscribedCounts(g: GroupState, counts: ReadonlyMap<string, number> | null): Record<string, number> {
    const out: Record<string, number> = {};
    for (const t of [...g.subscriptions.keys()].sort()) {
      const n = counts?.has(t) === true ? counts.get(t) : this.topics.partitionCount(t);
      if (n !== undefined && n > 0) out[t] = n;
    }
    return out;
  }

  private computeTarget(tx: GroupTx): void {
    const g = tx.g;
    assert(g.meta !== null);
    const members = [...g.members].map(([memberId, m]) => ({ memberId, instanceId: m.instanceId, topics: m.subscribedTopics }));
    const target = assignorByName(g.meta.assignor)({
      members,
      partitionCounts: new Map(Object.entries(g.meta.topicPartitions)),
      current: g.targets,
    });
    for (const id of [...target.keys()].sort()) {
      const parts = target.get(id) ?? [];
      const old = tx.g.targets.get(id);
      if (old === undefined || !samePartitions(old, parts)) tx.emit(targetRecord(tx.groupId, id, parts));
    }
    tx.emit(targetEpochRecord(tx.groupId, g.meta.epoch));
  }

  private leave(tx: GroupTx, hb: Heartbeat): HeartbeatResponse {
    const meta = tx.g.members.get(hb.memberId);
    if (meta === undefined) throw rillError("UNKNOWN_MEMBER_ID", `memberId: ${hb.memberId} is not a member of group ${hb.groupId}`);
    if (hb.instanceId !== null && hb.instanceId !== meta.instanceId)
      throw rillError("INVALID_ARGUMENT", `instanceId: member ${hb.memberId} joined with instanceId ${String(meta.instanceId)}`);
    this.removeMembers(tx, [hb.memberId]);
    return { memberId: hb.memberId, memberEpoch: -1, heartbeatIntervalMs: 0, assignment: [] };
  }

  /**
   * A static member leaves for a while: it keeps its assigned partitions (nobody else gets them)
   * until it comes back or its session times out; what it was revoking is released at once, as
   * it stopped reading everything.
   */
  private staticLeave(tx: GroupTx, hb: Heartbeat, now: number): HeartbeatResponse {
    const g = tx.g;
    const meta = g.members.get(hb.memberId);
    const cur = g.current.get(hb.memberId);
    if (meta === undefined || cur === undefined)
      throw rillError("UNKNOWN_MEMBER_ID", `memberId: ${hb.memberId} is not a member of group ${hb.groupId}`);
    if (hb.instanceId !== meta.instanceId)
      throw rillError("INVALID_ARGUMENT", `instanceId: member ${hb.memberId} joined with instanceId ${String(meta.instanceId)}`);
    if (cur.memberEpoch !== LEFT_STATIC_MEMBER_EPOCH) {
      tx.emit(
        assignmentRecord({
          groupId: g.groupId,
          memberId: hb.memberId,
          memberEpoch: LEFT_STATIC_MEMBER_EPOCH,
          previousMemberEpoch: cur.memberEpoch,
          state: cur.state === "unrevoked-partitions" ? "stable" : cur.state,
          assigned: cur.assigned,
          pendingRevocation: [],
        }),
      );
    }
    this.touch(g.groupId, hb.memberId, now, undefined);
    return { memberId: hb.memberId, memberEpoch: LEFT_STATIC_MEMBER_EPOCH, heartbeatIntervalMs: 0, assignment: null };
  }

  /** Removes members (tombstones for their assignment, target and member) and reassigns. */
  private removeMembers(tx: GroupTx, memberIds: readonly string[]): void {
    for (const id of memberIds) {
      if (tx.g.current.has(id)) tx.emit(assignmentTombstone(tx.groupId, id));
      if (tx.g.targets.has(id)) tx.emit(targetTombstone(tx.groupId, id));
      tx.emit(memberTombstone(tx.groupId, id));
    }
    this.maybeReassign(tx, true, undefined, null);
  }

  private newMemberId(g: GroupState): string {
    for (let attempt = 0; attempt < 100; attempt++) {
      let id = "";
      for (let i = 0; i < MEMBER_ID_CHARS; i++) id += MEMBER_ID_ALPHABET[this.random.int(MEMBER_ID_ALPHABET.length)];
      if (!g.members.has(id)) return id;
    }
    assert(false, "100 random member ids collided");
  }

  // -------------------------------------------------------------------------------------------
  // Timers

  private touch(groupId: string, memberId: string, now: number, revokeDeadlineMs: number | undefined): void {
    let byMember = this.timers.get(groupId);
    if (byMember === undefined) this.timers.set(groupId, (byMember = new Map()));
    const t = byMember.get(memberId);
    if (t === undefined) byMember.set(memberId, { lastHeartbeatMs: now, revokeDeadlineMs: revokeDeadlineMs ?? null });
    else {
      t.lastHeartbeatMs = now;
      if (revokeDeadlineMs !== undefined) t.revokeDeadlineMs = revokeDeadlineMs;
    }
  }

  /**
   * Removes members whose session timed out (a static member that left included, once its
   * session runs out) and members that did not give up revoked partitions within their rebalance
   * timeout. Returns the records; members first seen here (after a load) start their timers now.
   */
  tick(now: number): GroupRecord[] {
    const records: GroupRecord[] = [];
    for (const groupId of [...this.groups.keys()].sort()) {
      const g = this.groups.get(groupId);
      assert(g);
      const expired = this.expiredMembers(g, now);
      if (expired.length === 0) continue;
      const tx = new GroupTx(groupId, g);
      this.removeMembers(tx, expired);
      records.push(...tx.records);
    }
    this.pruneTimers(now);
    return records;
  }

  private expiredMembers(g: GroupState, now: number): string[] {
    const expired: string[] = [];
    for (const memberId of [...g.members.keys()].sort()) {
      const meta = g.members.get(memberId);
      assert(meta);
      const t = this.timers.get(g.groupId)?.get(memberId);
      if (t === undefined) {
        this.touch(g.groupId, memberId, now, undefined);
        continue;
      }
      if (now - t.lastHeartbeatMs >= meta.sessionTimeoutMs) expired.push(memberId);
      else if (g.current.get(memberId)?.state === "unrevoked-partitions") {
        if (t.revokeDeadlineMs === null) t.revokeDeadlineMs = now + meta.rebalanceTimeoutMs;
        else if (now >= t.revokeDeadlineMs) expired.push(memberId);
      }
    }
    return expired;
  }

  /** Forgets timers of members that never made it into a group (their join was not written). */
  private pruneTimers(now: number): void {
    for (const [groupId, byMember] of this.timers) {
      const g = this.groups.get(groupId);
      for (const [memberId, t] of byMember) {
        if (g?.members.has(memberId) !== true && now - t.lastHeartbeatMs > this.maxSessionTimeoutMs) byMember.delete(memberId);
      }
      if (byMember.size === 0) this.timers.delete(groupId);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Topics

  /**
   * Topics were created, grew or were deleted (count 0): groups subscribed to them get a new
   * target assignment, and offsets of partitions that no longer exist are deleted. `topics`
   * maps each changed topic to its partition count now; the TopicsView must agree with it.
   */
  onTopicsChanged(topics: ReadonlyMap<string, number>): GroupRecord[] {
    const records: GroupRecord[] = [];
    for (const groupId of [...this.groups.keys()].sort()) {
      const tx = new GroupTx(groupId, this.groups.get(groupId));
      for (const key of [...tx.g.offsets.keys()].sort()) {
        const { topic, partition } = parseTpKey(key);
        const n = topics.get(topic);
        if (n !== undefined && partition >= n) tx.emit(offsetTombstone(groupId, topic, partition));
      }
      if (tx.g.members.size > 0 && [...topics.keys()].some((t) => tx.g.subscriptions.has(t)))
        this.maybeReassign(tx, false, undefined, topics);
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
  commitOffsets(req: CommitOffsetsRequest, now: number): CoordinatorResult<CommitOffsetsResponse> {
    const groupId = validateGroupId(req.groupId);
    const memberId = validateMemberId(req.memberId, true);
    const memberEpoch = validateInt(req.memberEpoch, "memberEpoch", -1, 2 ** 31 - 1);
    if (memberId === "" && memberEpoch !== -1)
      throw rillError("INVALID_ARGUMENT", "memberEpoch: must be -1 for a commit without membership (memberId empty)");
    if (memberId !== "" && memberEpoch < 0) throw rillError("INVALID_ARGUMENT", `memberEpoch: ${memberEpoch} is not a member epoch`);
    checkListLength(req.offsets, "offsets", OFFSETS_PER_REQUEST_MAX);
    const g = this.groups.get(groupId);
    const callError = this.commitCallError(g, groupId, memberId, memberEpoch);
    const records: GroupRecord[] = [];
    const offsets = req.offsets.map((o, i) => {
      const error = callError ?? offsetEntryError(o, `offsets[${i}]`) ?? this.commitPartitionError(g, memberId, memberEpoch, o, i);
      if (error === null)
        records.push(
          offsetRecord({
            groupId,
            topic: o.topic,
            partition: o.partition,
            offset: o.offset,
            metadata: o.metadata ?? "",
            leaderEpoch: o.leaderEpoch ?? -1,
            commitTimestampMs: now,
          }),
        );
      return { topic: o.topic, partition: o.partition, offset: o.offset, error };
    });
    return { records, response: { error: callError, offsets } };
  }

  private commitCallError(g: GroupState | undefined, groupId: string, memberId: string, memberEpoch: number): RillError | null {
    if (memberId === "") {
      if (g !== undefined && g.members.size > 0) {
        return rillError("NON_EMPTY_GROUP", `memberId: empty, but group ${groupId} has ${g.members.size} members; only they can commit`);
      }
      if (g === undefined && this.groups.size >= this.groupsMax)
        return rillError("GROUP_MAX_SIZE_REACHED", `groupId: this coordinator already holds ${this.groups.size} groups (the limit)`);
      return null;
    }
    const cur = g?.members.has(memberId) === true ? g.current.get(memberId) : undefined;
    if (cur === undefined) return rillError("UNKNOWN_MEMBER_ID", `memberId: ${memberId} is not a member of group ${groupId}`);
    if (cur.memberEpoch === LEFT_STATIC_MEMBER_EPOCH)
      return rillError("FENCED_MEMBER_EPOCH", `memberEpoch: member ${memberId} left group ${groupId} for a while`);
    if (memberEpoch > cur.memberEpoch)
      return rillError("FENCED_MEMBER_EPOCH", `memberEpoch: ${memberEpoch} is newer than member ${memberId}'s epoch ${cur.memberEpoch}`);
    if (memberEpoch < cur.memberEpoch)
      return rillError(
        "STALE_MEMBER_EPOCH",
        `memberEpoch: ${memberEpoch} is older than member ${memberId}'s epoch ${cur.memberEpoch}; heartbeat and retry`,
      );
    return null;
  }

  private commitPartitionError(
    g: GroupState | undefined,
    memberId: string,
    memberEpoch: number,
    o: OffsetToCommit,
    i: number,
  ): RillError | null {
    const where = `offsets[${i}]`;
    if (memberId === "") {
      const n = this.topics.partitionCount(o.topic);
      if (n === undefined || o.partition >= n)
        return rillError("UNKNOWN_TOPIC_OR_PARTITION", `${where}: ${o.topic}/${o.partition} does not exist`);
      return null;
    }
    if (g?.owners.get(tpKey(o.topic, o.partition)) !== memberId) {
      return rillError(
        "STALE_MEMBER_EPOCH",
        `${where}: ${o.topic}/${o.partition} is not owned by member ${memberId} at epoch ${memberEpoch}`,
      );
    }
    return null;
  }

  /**
   * Committed offsets of a group: of the given partitions (an entry with no partitions: every
   * partition of its topic), or of every partition with one (null). Offset -1 where none.
   */
  fetchOffsets(groupId: string, partitions: readonly TopicPartitions[] | null): CommittedOffset[] {
    validateGroupId(groupId);
    const g = this.groups.get(groupId);
    const wanted = new Set<string>();
    if (partitions === null) for (const k of g?.offsets.keys() ?? []) wanted.add(k);
    else {
      for (const tp of validateTopicPartitions(partitions, "partitions", OFFSETS_PER_REQUEST_MAX)) {
        for (const k of tp.partitions.length > 0 ? keysOf([tp]) : this.allPartitionKeys(g, tp.topic)) wanted.add(k);
      }
    }
    return sortedKeys(wanted).map((k) => {
      const { topic, partition } = parseTpKey(k);
      const o = g?.offsets.get(k);
      return o === undefined
        ? { topic, partition, offset: -1, metadata: "", leaderEpoch: -1, commitTimestampMs: -1 }
        : { topic, partition, offset: o.offset, metadata: o.metadata, leaderEpoch: o.leaderEpoch, commitTimestampMs: o.commitTimestampMs };
    });
  }

  /** Every partition of a topic: those the TopicsView knows and those with a committed offset. */
  private allPartitionKeys(g: GroupState | undefined, topic: string): string[] {
    const keys = new Set<string>();
    const n = this.topics.partitionCount(topic) ?? 0;
    for (let p = 0; p < n; p++) keys.add(tpKey(topic, p));
    for (const k of g?.offsets.keys() ?? []) if (parseTpKey(k).topic === topic) keys.add(k);
    return [...keys];
  }

  /**
   * Sets committed offsets (already resolved from earliest/latest/timestamp by the caller, see
   * offsets.ts), only while the group has no members: NON_EMPTY_GROUP otherwise, nothing
   * changed. For a dry run, drop the records.
   */
  resetOffsets(groupId: string, offsets: readonly OffsetToCommit[], now: number): CoordinatorResult<OffsetCommitResult[]> {
    validateGroupId(groupId);
    checkListLength(offsets, "offsets", OFFSETS_PER_REQUEST_MAX);
    const g = this.groups.get(groupId);
    if (g !== undefined && g.members.size > 0)
      throw rillError(
        "NON_EMPTY_GROUP",
        `groupId: group ${groupId} has ${g.members.size} members; offsets are reset only while it has none`,
      );
    if (g === undefined && this.groups.size >= this.groupsMax)
      throw rillError("GROUP_MAX_SIZE_REACHED", `groupId: this coordinator already holds ${this.groups.size} groups (the limit)`);
    const records: GroupRecord[] = [];
    const response = offsets.map((o, i) => {
      const error = offsetEntryError(o, `offsets[${i}]`) ?? this.commitPartitionError(g, "", -1, o, i);
      if (error === null)
        records.push(
          offsetRecord({
            groupId,
            topic: o.topic,
            partition: o.partition,
            offset: o.offset,
            metadata: o.metadata ?? "",
            leaderEpoch: o.leaderEpoch ?? -1,
            commitTimestampMs: now,
          }),
        );
      return { topic: o.topic, partition: o.partition, offset: o.offset, error };
    });
    return { records, response };
  }

  /**
   * Deletes committed offsets (an entry with no partitions: all of its topic's), except for
   * topics a member subscribes to (GROUP_SUBSCRIBED_TO_TOPIC). Throws GROUP_ID_NOT_FOUND for an
   * unknown group.
   */
  deleteOffsets(groupId: string, partitions: readonly TopicPartitions[]): CoordinatorResult<DeleteOffsetResult[]> {
    validateGroupId(groupId);
    const tps = validateTopicPartitions(partitions, "partitions", OFFSETS_PER_REQUEST_MAX);
    const g = this.groups.get(groupId);
    if (g === undefined) throw rillError("GROUP_ID_NOT_FOUND", `groupId: group ${groupId} does not exist`);
    const records: GroupRecord[] = [];
    const deleted = new Set<string>();
    const response: DeleteOffsetResult[] = [];
    for (const tp of tps) {
      const keys =
        tp.partitions.length > 0
          ? sortedKeys(keysOf([tp]))
          : sortedKeys([...g.offsets.keys()].filter((k) => parseTpKey(k).topic === tp.topic));
      const error = g.subscriptions.has(tp.topic)
        ? rillError("GROUP_SUBSCRIBED_TO_TOPIC", `partitions: a member of group ${groupId} subscribes to ${tp.topic}`)
        : null;
      for (const k of keys) {
        const { topic, partition } = parseTpKey(k);
        if (error === null && g.offsets.has(k) && !deleted.has(k)) {
          deleted.add(k);
          records.push(offsetTombstone(groupId, topic, partition));
        }
        response.push({ topic, partition, error });
      }
    }
    return { records, response };
  }

  // -------------------------------------------------------------------------------------------
  // Groups

  /** Groups (optionally only those in `states`), sorted by id. */
  listGroups(states?: readonly GroupStateName[]): GroupListing[] {
    const out: GroupListing[] = [];
    for (const groupId of [...this.groups.keys()].sort()) {
      const g = this.groups.get(groupId);
      assert(g);
      const state = g.state();
      if (states === undefined || states.length === 0 || states.includes(state)) out.push({ groupId, state, members: g.members.size });
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
    return groupIds.map((groupId, _i) => {
      const invalid = groupIdError(groupId, "group_id");
      const g = invalid === null ? this.groups.get(groupId) : undefined;
      if (g === undefined) {
        const error = invalid ?? rillError("GROUP_ID_NOT_FOUND", `group_id: group ${groupId} does not exist`);
        return { groupId, state: "dead", groupEpoch: 0, assignmentEpoch: 0, assignor: "", members: [], offsets: [], error };
      }
      return this.describe(g, logEndOffset);
    });
  }

  private describe(g: GroupState, logEndOffset: LogEndOffsets): GroupDescription {
    const members = [...g.members.keys()].sort().map((memberId): MemberDescription => {
      const m = g.members.get(memberId);
      assert(m);
      const cur = g.current.get(memberId) ?? JOINING;
      return {
        memberId,
        instanceId: m.instanceId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        memberEpoch: cur.memberEpoch,
        state: cur.state,
        topics: [...m.subscribedTopics],
        assignment: fromKeys(ownedKeys(cur)),
        pendingRevocation: [...cur.pendingRevocation],
        targetAssignment: [...(g.targets.get(memberId) ?? [])],
      };
    });
    const keys = new Set<string>(g.offsets.keys());
    for (const topic of g.subscriptions.keys()) for (const k of this.allPartitionKeys(undefined, topic)) keys.add(k);
    // Also partitions still owned (e.g. pending revocation after an unsubscribe).
    for (const k of g.owners.keys()) keys.add(k);
    const offsets = sortedKeys(keys).map((k): PartitionOffsetDescription => {
      const { topic, partition } = parseTpKey(k);
      const committedOffset = g.offsets.get(k)?.offset ?? -1;
      const end = logEndOffset(topic, partition);
      return { topic, partition, committedOffset, logEndOffset: end, lag: lagOf(committedOffset, end), memberId: g.owners.get(k) ?? "" };
    });
    return {
      groupId: g.groupId,
      state: g.state(),
      groupEpoch: g.groupEpoch,
      assignmentEpoch: g.assignmentEpoch ?? 0,
      assignor: g.meta?.assignor ?? "",
      members,
      offsets,
      error: null,
    };
  }

  /**
   * Deletes groups and their committed offsets, in request order. Only groups without members:
   * NON_EMPTY_GROUP otherwise; GROUP_ID_NOT_FOUND, INVALID_GROUP_ID per entry.
   */
  deleteGroups(groupIds: readonly string[]): CoordinatorResult<DeleteGroupResult[]> {
    checkListLength(groupIds, "groupIds", GROUPS_PER_REQUEST_MAX);
    const records: GroupRecord[] = [];
    const deleted = new Set<string>();
    const response = groupIds.map((groupId, _i): DeleteGroupResult => {
      const invalid = groupIdError(groupId, "group_id");
      if (invalid !== null) return { groupId, error: invalid };
      const g = this.groups.get(groupId);
      if (g === undefined || deleted.has(groupId))
        return { groupId, error: rillError("GROUP_ID_NOT_FOUND", `group_id: group ${groupId} does not exist`) };
      if (g.members.size > 0)
        return { groupId, error: rillError("NON_EMPTY_GROUP", `group_id: group ${groupId} has ${g.members.size} members`) };
      records.push(...groupTombstones(g));
      deleted.add(groupId);
      return { groupId, error: null };
    });
    return { records, response };
  }
}

/** Tombstones for every key a member-less group still has. */
function groupTombstones(g: GroupState): GroupRecord[] {
  const out: GroupRecord[] = [];
  for (const k of sortedKeys(g.offsets.keys())) {
    const { topic, partition } = parseTpKey(k);
    out.push(offsetTombstone(g.groupId, topic, partition));
  }
  for (const id of [...g.current.keys()].sort()) out.push(assignmentTombstone(g.groupId, id));
  for (const id of [...g.targets.keys()].sort()) out.push(targetTombstone(g.groupId, id));
  if (g.assignmentEpoch !== null) out.push(targetEpochTombstone(g.groupId));
  if (g.meta !== null) out.push(groupTombstone(g.groupId));
  return out;
}

function checkListLength(list: unknown, field: string, max: number): void {
  if (!Array.isArray(list)) throw rillError("INVALID_ARGUMENT", `${field}: must be a list`);
  if (list.length > max) throw rillError("INVALID_ARGUMENT", `${field}: ${list.length} entries, more than ${max}`);
}

function sortedKeys(keys: Iterable<string>): string[] {
  return [...keys].sort((a, b) => {
    const x = parseTpKey(a);
    const y = parseTpKey(b);
    return x.topic < y.topic ? -1 : x.topic > y.topic ? 1 : x.partition - y.partition;
  });
}

function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function sameMeta(a: MemberMeta, b: MemberMeta): boolean {
  return (
    a.instanceId === b.instanceId &&
    sameStrings(a.subscribedTopics, b.subscribedTopics) &&
    a.rebalanceTimeoutMs === b.rebalanceTimeoutMs &&
    a.sessionTimeoutMs === b.sessionTimeoutMs &&
    a.clientId === b.clientId &&
    a.clientHost === b.clientHost
  );
}

function sameCounts(a: Readonly<Record<string, number>>, b: Readonly<Record<string, number>>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}
