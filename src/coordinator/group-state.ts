/**
 * One group's state, built only by applying GroupRecords. Each record kind sets one entry of one
 * map and nothing else, so the state depends only on the latest record per key (what a
 * compacted topic keeps), in any order among keys. A few derived indexes (partition owners,
 * static instance ids, topic subscription counts) are kept in step by `apply`.
 *
 * The coordinator applies records to a clone when it computes what a request would write
 * (`clone`), and to the live state only in `replay`.
 *
 * Invariants, asserted on every record applied: a partition has at most one owner; a member's
 * epoch only rises (leaving for a while as a static member, epoch -2, and coming back are the
 * exceptions); a static instance id is held by one member; a committed offset is not negative.
 */
import { assert, unreachable } from "../base/assert.ts";
import type { AssignorName } from "./assignors.ts";
import type { TopicPartitions } from "./partitions.ts";
import { keysOf, tpKey } from "./partitions.ts";
import type { CurrentAssignment } from "./reconcile.ts";
import type { ClassicGroupRecord, GroupRecord, MemberRecord } from "./records.ts";

/** A classic group's last written generation (a ClassicGroupRecord's body). */
export type ClassicGroupMeta = Omit<ClassicGroupRecord, "type" | "v" | "key" | "groupId">;

/** The group epoch, assignor and partition counts (a GroupMetadataRecord's body). */
export interface GroupMeta {
  readonly epoch: number;
  readonly assignor: AssignorName;
  readonly topicPartitions: Readonly<Record<string, number>>;
}

/** A member's descriptive fields (a MemberRecord's body). */
export type MemberMeta = Omit<MemberRecord, "type" | "v" | "key" | "groupId" | "memberId">;

/** A committed offset (an OffsetCommitRecord's body). */
export interface CommittedOffsetState {
  readonly offset: number;
  readonly metadata: string;
  readonly leaderEpoch: number;
  readonly commitTimestampMs: number;
}

/** Lifecycle state of a group (GroupState in the proto, lower-case). */
export type GroupStateName = "empty" | "assigning" | "reconciling" | "stable" | "dead";

/** Member epoch of a static member that left temporarily (it keeps its partitions). */
export const LEFT_STATIC_MEMBER_EPOCH = -2;

/** One group. */
export class GroupState {
  readonly groupId: string;
  meta: GroupMeta | null = null;
  /** Epoch of the target assignment; null before the first one. */
  assignmentEpoch: number | null = null;
  readonly members = new Map<string, MemberMeta>();
  readonly targets = new Map<string, readonly TopicPartitions[]>();
  readonly current = new Map<string, CurrentAssignment>();
  /** A classic group's last written generation; null for a consumer (KIP-848) group. */
  classic: ClassicGroupMeta | null = null;
  /** Committed offsets by `topic:partition` (shared with clones until either side writes). */
  private offsetMap = new Map<string, CommittedOffsetState>();
  private offsetsShared = false;
  /** Offsets pending in transactions (issue 17), by `producerId:topic:partition`. */
  readonly txnOffsets = new Map<string, { producerId: number; topic: string; partition: number } & CommittedOffsetState>();

  /** Derived: the member that owns (assigned or pending revocation) each partition. */
  readonly owners = new Map<string, string>();
  /** Derived: the member holding each static instance id. */
  readonly instances = new Map<string, string>();
  /** Derived: how many members subscribe to each topic. */
  readonly subscriptions = new Map<string, number>();

  constructor(groupId: string) {
    this.groupId = groupId;
  }

  /** Committed offsets by `topic:partition`. */
  get offsets(): ReadonlyMap<string, CommittedOffsetState> {
    return this.offsetMap;
  }

  private writableOffsets(): Map<string, CommittedOffsetState> {
    if (this.offsetsShared) {
      this.offsetMap = new Map(this.offsetMap);
      this.offsetsShared = false;
    }
    return this.offsetMap;
  }

  /** The group epoch (0 before the first member). */
  get groupEpoch(): number {
    return this.meta?.epoch ?? 0;
  }

  /** Applies one record of this group. */
  apply(r: GroupRecord): void {
    assert(r.groupId === this.groupId, `record of group ${r.groupId} applied to ${this.groupId}`);
    switch (r.type) {
      case "group":
        this.meta = { epoch: r.epoch, assignor: r.assignor, topicPartitions: { ...r.topicPartitions } };
        break;
      case "group-tombstone":
        this.meta = null;
        break;
      case "target-epoch":
        this.assignmentEpoch = r.assignmentEpoch;
        break;
      case "target-epoch-tombstone":
        this.assignmentEpoch = null;
        break;
      case "member": {
        this.setMember(r.memberId, {
          instanceId: r.instanceId,
          subscribedTopics: [...r.subscribedTopics],
          rebalanceTimeoutMs: r.rebalanceTimeoutMs,
          sessionTimeoutMs: r.sessionTimeoutMs,
          clientId: r.clientId,
          clientHost: r.clientHost,
        });
        break;
      }
      case "member-tombstone":
        this.setMember(r.memberId, undefined);
        break;
      case "target":
        this.targets.set(r.memberId, r.partitions);
        break;
      case "target-tombstone":
        this.targets.delete(r.memberId);
        break;
      case "assignment": {
        const { memberEpoch, previousMemberEpoch, state, assigned, pendingRevocation } = r;
        this.setCurrent(r.memberId, { memberEpoch, previousMemberEpoch, state, assigned, pendingRevocation });
        break;
      }
      case "assignment-tombstone":
        this.setCurrent(r.memberId, undefined);
        break;
      case "offset":
        assert(
          Number.isSafeInteger(r.offset) && r.offset >= 0,
          `group ${this.groupId}: committed offset ${r.offset} of ${r.topic}/${r.partition} is negative`,
        );
        this.writableOffsets().set(tpKey(r.topic, r.partition), {
          offset: r.offset,
          metadata: r.metadata,
          leaderEpoch: r.leaderEpoch,
          commitTimestampMs: r.commitTimestampMs,
        });
        break;
      case "offset-tombstone":
        this.writableOffsets().delete(tpKey(r.topic, r.partition));
        break;
      case "txn-offset": {
        const { producerId, topic, partition, offset, metadata, leaderEpoch, commitTimestampMs } = r;
        this.txnOffsets.set(`${producerId}:${tpKey(topic, partition)}`, {
          producerId,
          topic,
          partition,
          offset,
          metadata,
          leaderEpoch,
          commitTimestampMs,
        });
        break;
      }
      case "txn-offset-tombstone":
        this.txnOffsets.delete(`${r.producerId}:${tpKey(r.topic, r.partition)}`);
        break;
      case "classic-group": {
        const { protocolType, generation, protocol, leader, members } = r;
        assert(
          this.classic === null || generation >= this.classic.generation,
          `group ${this.groupId}: classic generation goes backwards from ${this.classic?.generation} to ${generation}`,
        );
        assert(this.members.size === 0, `group ${this.groupId}: classic generation written while it has consumer-group members`);
        this.classic = { protocolType, generation, protocol, leader, members };
        break;
      }
      case "classic-group-tombstone":
        this.classic = null;
        break;
      default:
        unreachable(r, "group record type");
    }
  }

  private setMember(memberId: string, meta: MemberMeta | undefined): void {
    const old = this.members.get(memberId);
    if (old !== undefined) {
      if (old.instanceId !== null && this.instances.get(old.instanceId) === memberId) this.instances.delete(old.instanceId);
      for (const t of old.subscribedTopics) {
        const n = (this.subscriptions.get(t) ?? 0) - 1;
        if (n > 0) this.subscriptions.set(t, n);
        else this.subscriptions.delete(t);
      }
      this.members.delete(memberId);
    }
    if (meta === undefined) return;
    this.members.set(memberId, meta);
    if (meta.instanceId !== null) {
      const holder = this.instances.get(meta.instanceId);
      assert(
        holder === undefined || holder === memberId,
        `group ${this.groupId}: instance ${meta.instanceId} held by ${holder} and ${memberId}`,
      );
      this.instances.set(meta.instanceId, memberId);
    }
    for (const t of meta.subscribedTopics) this.subscriptions.set(t, (this.subscriptions.get(t) ?? 0) + 1);
  }

  private setCurrent(memberId: string, cur: CurrentAssignment | undefined): void {
    const old = this.current.get(memberId);
    if (old !== undefined && cur !== undefined) assertMemberEpochRises(this.groupId, memberId, old.memberEpoch, cur.memberEpoch);
    if (old !== undefined) {
      for (const k of ownedKeys(old)) {
        assert(this.owners.get(k) === memberId, `group ${this.groupId}: ${k} owner index out of step`);
        this.owners.delete(k);
      }
      this.current.delete(memberId);
    }
    if (cur === undefined) return;
    for (const k of ownedKeys(cur)) {
      const owner = this.owners.get(k);
      assert(owner === undefined, `group ${this.groupId}: partition ${k} given to ${memberId} while ${owner} owns it`);
      this.owners.set(k, memberId);
    }
    this.current.set(memberId, cur);
  }

  /** True when no record of this group is in effect (the coordinator then forgets the group). */
  isVoid(): boolean {
    return (
      this.meta === null &&
      this.assignmentEpoch === null &&
      this.members.size === 0 &&
      this.targets.size === 0 &&
      this.current.size === 0 &&
      this.offsets.size === 0 &&
      this.txnOffsets.size === 0 &&
      this.classic === null
    );
  }

  /** The group's lifecycle state. */
  state(): GroupStateName {
    if (this.members.size === 0) return "empty";
    if (this.assignmentEpoch === null || this.groupEpoch > this.assignmentEpoch) return "assigning";
    for (const c of this.current.values()) {
      if (c.memberEpoch === LEFT_STATIC_MEMBER_EPOCH) continue;
      if (c.state !== "stable" || c.memberEpoch !== this.assignmentEpoch) return "reconciling";
    }
    return "stable";
  }

  /** A deep-enough copy: records applied to it leave this one alone (offsets are copied on write). */
  clone(): GroupState {
    const g = new GroupState(this.groupId);
    g.meta = this.meta;
    g.assignmentEpoch = this.assignmentEpoch;
    g.classic = this.classic;
    for (const [k, v] of this.members) g.members.set(k, v);
    for (const [k, v] of this.targets) g.targets.set(k, v);
    for (const [k, v] of this.current) g.current.set(k, v);
    for (const [k, v] of this.txnOffsets) g.txnOffsets.set(k, v);
    g.offsetMap = this.offsetMap;
    g.offsetsShared = true;
    this.offsetsShared = true;
    for (const [k, v] of this.owners) g.owners.set(k, v);
    for (const [k, v] of this.instances) g.instances.set(k, v);
    for (const [k, v] of this.subscriptions) g.subscriptions.set(k, v);
    return g;
  }

  /** The durable state as plain, deterministically ordered JSON (derived indexes left out). */
  toJSON(): unknown {
    const sorted = <V>(m: ReadonlyMap<string, V>): [string, V][] => [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return {
      groupId: this.groupId,
      meta: this.meta,
      assignmentEpoch: this.assignmentEpoch,
      members: Object.fromEntries(sorted(this.members)),
      targets: Object.fromEntries(sorted(this.targets)),
      current: Object.fromEntries(sorted(this.current)),
      offsets: Object.fromEntries(sorted(this.offsets)),
      classic: this.classic,
    };
  }
}

/** Partition keys a member owns: assigned and pending revocation. */
export function ownedKeys(c: CurrentAssignment): Set<string> {
  const s = keysOf(c.assigned);
  for (const k of keysOf(c.pendingRevocation)) s.add(k);
  return s;
}

/**
 * Asserts that a member's epoch moving from `from` to `to` does not go backwards. A static member
 * leaving for a while (to LEFT_STATIC_MEMBER_EPOCH) and coming back (from it, to the epoch it
 * had) are the two moves that may.
 */
export function assertMemberEpochRises(groupId: string, memberId: string, from: number, to: number): void {
  if (from === LEFT_STATIC_MEMBER_EPOCH || to === LEFT_STATIC_MEMBER_EPOCH) return;
  assert(to >= from, `group ${groupId}: member ${memberId}'s epoch goes backwards from ${from} to ${to}`);
}
