/**
 * Group membership (Kafka's GroupMetadataManager): members join, stay and leave by heartbeat
 * (KIP-848), the group epoch and target assignment follow membership, subscriptions and topic
 * partition counts, and each member's current assignment reconciles toward its target one
 * heartbeat at a time (reconcile.ts). Session and revocation timeouts remove members (`tick`).
 *
 * Like every handler of the coordinator, these compute records from the groups as replayed and
 * change nothing; the GroupCoordinator facade replays the records. The only state of its own is
 * each member's timers (last heartbeat, revocation deadline), which are never written: an
 * accepted heartbeat refreshes them and `replayTimers` keeps them in step with replayed records.
 */
import { assert } from "../base/assert.ts";
import { rillError } from "../base/errors.ts";
import type { Random } from "../base/random.ts";
import type { AssignorName } from "./assignors.ts";
import { ASSIGNOR_NAMES, DEFAULT_ASSIGNOR, assignorByName } from "./assignors.ts";
import type { ClassicStateName } from "./classic.ts";
import type { GroupStateName, MemberMeta } from "./group-state.ts";
import { type GroupState, LEFT_STATIC_MEMBER_EPOCH, ownedKeys } from "./group-state.ts";
import { GroupTx } from "./group-tx.ts";
import { REBALANCE_TIMEOUT_MAX_MS, SUBSCRIBED_PARTITIONS_MAX } from "./limits.ts";
import type { TopicPartitions } from "./partitions.ts";
import { canonical, fromKeys, isSubset, samePartitions } from "./partitions.ts";
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
  targetEpochRecord,
  targetEpochTombstone,
  targetRecord,
  targetTombstone,
} from "./records.ts";
import type { CoordinatorResult, TopicsView } from "./types.ts";
import {
  validateClientString,
  validateGroupId,
  validateInstanceId,
  validateInt,
  validateMemberId,
  validateSubscription,
  validateTopicPartitions,
} from "./validate.ts";

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

/** A listed group. */
export interface GroupListing {
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

/** What the membership manager needs (limits already validated by the facade). */
export interface MembershipOptions {
  readonly random: Random;
  readonly topics: TopicsView;
  readonly heartbeatIntervalMs: number;
  readonly sessionTimeoutMs: number;
  readonly minSessionTimeoutMs: number;
  readonly maxSessionTimeoutMs: number;
  readonly groupsMax: number;
  readonly membersPerGroupMax: number;
}

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

/** Membership of the groups of one coordinator shard. */
export class MembershipManager {
  private readonly timers = new Map<string, Map<string, MemberTimers>>();
  private readonly random: Random;
  private readonly topics: TopicsView;
  private readonly heartbeatIntervalMs: number;
  private readonly sessionTimeoutMs: number;
  private readonly minSessionTimeoutMs: number;
  private readonly maxSessionTimeoutMs: number;
  private readonly groupsMax: number;
  private readonly membersPerGroupMax: number;

  /** `groups`: the shard's groups as replayed (read only here; the facade replays). */
  constructor(
    private readonly groups: ReadonlyMap<string, GroupState>,
    o: MembershipOptions,
  ) {
    this.random = o.random;
    this.topics = o.topics;
    this.heartbeatIntervalMs = o.heartbeatIntervalMs;
    this.sessionTimeoutMs = o.sessionTimeoutMs;
    this.minSessionTimeoutMs = o.minSessionTimeoutMs;
    this.maxSessionTimeoutMs = o.maxSessionTimeoutMs;
    this.groupsMax = o.groupsMax;
    this.membersPerGroupMax = o.membersPerGroupMax;
  }

  /** Keeps member timers in step with a replayed record (a removed member's go; an acknowledged revocation's deadline ends). */
  replayTimers(r: GroupRecord): void {
    if (r.type === "member-tombstone") {
      const t = this.timers.get(r.groupId);
      t?.delete(r.memberId);
      if (t?.size === 0) this.timers.delete(r.groupId);
    } else if (r.type === "assignment" && r.state !== "unrevoked-partitions") {
      const t = this.timers.get(r.groupId)?.get(r.memberId);
      if (t !== undefined) t.revokeDeadlineMs = null;
    }
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
   * Topics changed (`topics`: each changed topic's partition count now, 0 = deleted): a group
   * with members subscribed to one gets a new target assignment when its counts differ.
   */
  reassignForTopics(tx: GroupTx, topics: ReadonlyMap<string, number>): void {
    if (tx.g.members.size > 0 && [...topics.keys()].some((t) => tx.g.subscriptions.has(t)))
      this.maybeReassign(tx, false, undefined, topics);
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
      if (states === undefined || states.length === 0 || states.includes(state))
        out.push({ groupId, state, members: g.members.size, type: "consumer", protocolType: "consumer", classicState: null });
    }
    return out;
  }

  /** The members of a group as DescribeGroups shows them, sorted by id. */
  describeMembers(g: GroupState): MemberDescription[] {
    return [...g.members.keys()].sort().map((memberId): MemberDescription => {
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
  }

  /** Tombstones for every membership key of a group without members (deleting the group). */
  membershipTombstones(g: GroupState): GroupRecord[] {
    assert(g.members.size === 0, `group ${g.groupId}: deleted with ${g.members.size} members`);
    const out: GroupRecord[] = [];
    for (const id of [...g.current.keys()].sort()) out.push(assignmentTombstone(g.groupId, id));
    for (const id of [...g.targets.keys()].sort()) out.push(targetTombstone(g.groupId, id));
    if (g.assignmentEpoch !== null) out.push(targetEpochTombstone(g.groupId));
    if (g.meta !== null) out.push(groupTombstone(g.groupId));
    return out;
  }
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
