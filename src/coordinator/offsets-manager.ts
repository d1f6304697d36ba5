/**
 * Committed offsets (Kafka's OffsetMetadataManager): commit (by a member for the partitions it
 * owns, at its current epoch, or without membership while the group has none), fetch, reset
 * and delete offsets, and drop the offsets of partitions that no longer exist.
 *
 * Like every handler of the coordinator, these compute records from the groups as replayed and
 * change nothing; the GroupCoordinator facade replays the records. A committed offset is never
 * negative (validated per entry, asserted where the record is made and where it is replayed).
 */
import { assert } from "../base/assert.ts";
import type { RillError } from "../base/errors.ts";
import { rillError } from "../base/errors.ts";
import { type GroupState, LEFT_STATIC_MEMBER_EPOCH } from "./group-state.ts";
import type { GroupTx } from "./group-tx.ts";
import { OFFSETS_PER_REQUEST_MAX } from "./limits.ts";
import { lagOf } from "./offsets.ts";
import type { TopicPartitions } from "./partitions.ts";
import { keysOf, parseTpKey, sortedTpKeys, tpKey } from "./partitions.ts";
import type { GroupRecord, OffsetCommitRecord } from "./records.ts";
import { offsetRecord, offsetTombstone, txnOffsetRecord, txnOffsetTombstone } from "./records.ts";
import type { CoordinatorResult, LogEndOffsets, TopicsView } from "./types.ts";
import { checkListLength, offsetEntryError, validateGroupId, validateInt, validateMemberId, validateTopicPartitions } from "./validate.ts";

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

/** The outcome of deleting one partition's offset: error null when deleted (or there was none). */
export interface DeleteOffsetResult {
  readonly topic: string;
  readonly partition: number;
  readonly error: RillError | null;
}

/** What the offsets manager needs (limits already validated by the facade). */
export interface OffsetsOptions {
  readonly topics: TopicsView;
  readonly groupsMax: number;
  /**
   * For a classic group: whether (memberId, generation) may commit (null), why not (the error),
   * or undefined when the group is not classic.
   */
  readonly classicCommitError?: (groupId: string, memberId: string, generation: number, now: number) => RillError | null | undefined;
  /** Topics a classic group's members subscribe to (null: unknown, so every topic counts). */
  readonly classicSubscribed?: (groupId: string) => ReadonlySet<string> | null;
}

/** Committed offsets of the groups of one coordinator shard. */
export class OffsetsManager {
  private readonly topics: TopicsView;
  private readonly groupsMax: number;

  /** `groups`: the shard's groups as replayed (read only here; the facade replays). */
  constructor(
    private readonly groups: ReadonlyMap<string, GroupState>,
    o: OffsetsOptions,
  ) {
    this.topics = o.topics;
    this.groupsMax = o.groupsMax;
    this.classicCommitError = o.classicCommitError ?? (() => undefined);
    this.classicSubscribed = o.classicSubscribed ?? (() => new Set());
  }

  private readonly classicSubscribed: NonNullable<OffsetsOptions["classicSubscribed"]>;

  private readonly classicCommitError: NonNullable<OffsetsOptions["classicCommitError"]>;

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
    // A classic group checks the member and generation; its assignments are the clients' own, so
    // only a partition's existence is checked per offset.
    const classic = this.classicCommitError(groupId, memberId, memberEpoch, now);
    const callError = classic !== undefined ? classic : this.commitCallError(g, groupId, memberId, memberEpoch);
    const records: GroupRecord[] = [];
    const offsets = req.offsets.map((o, i) => {
      const error =
        callError ??
        offsetEntryError(o, `offsets[${i}]`) ??
        (classic !== undefined ? this.commitPartitionError(g, "", -1, o, i) : this.commitPartitionError(g, memberId, memberEpoch, o, i));
      if (error === null) records.push(this.offsetRecordOf(groupId, o, now));
      return { topic: o.topic, partition: o.partition, offset: o.offset, error };
    });
    return { records, response: { error: callError, offsets } };
  }

  /**
   * TxnOffsetCommit (issue 17): the offsets are checked as a commit's — the member id and epoch
   * (or a classic member's generation) so a zombie cannot commit (KIP-447); without a member id
   * only each partition's existence — and written pending in producer `producerId`'s transaction
   * (TxnOffsetRecords), invisible until its marker commits them (`completeTxnOffsets`).
   */
  txnCommitOffsets(req: CommitOffsetsRequest & { producerId: number }, now: number): CoordinatorResult<CommitOffsetsResponse> {
    const res = req.memberId === "" ? this.commitWithoutMembership(req, now) : this.commitOffsets(req, now);
    const records = res.records.map((r) => {
      assert(r.type === "offset", "a commit writes only offset records");
      const { groupId, topic, partition, offset, metadata, leaderEpoch, commitTimestampMs } = r;
      return txnOffsetRecord({ groupId, producerId: req.producerId, topic, partition, offset, metadata, leaderEpoch, commitTimestampMs });
    });
    return { records, response: res.response };
  }

  private commitWithoutMembership(req: CommitOffsetsRequest, now: number): CoordinatorResult<CommitOffsetsResponse> {
    const groupId = validateGroupId(req.groupId);
    checkListLength(req.offsets, "offsets", OFFSETS_PER_REQUEST_MAX);
    const g = this.groups.get(groupId);
    const records: GroupRecord[] = [];
    const offsets = req.offsets.map((o, i) => {
      const error = offsetEntryError(o, `offsets[${i}]`) ?? this.commitPartitionError(g, "", -1, o, i);
      if (error === null) records.push(this.offsetRecordOf(groupId, o, now));
      return { topic: o.topic, partition: o.partition, offset: o.offset, error };
    });
    return { records, response: { error: null, offsets } };
  }

  /**
   * A transaction marker of producer `producerId` reached this coordinator's partition: its
   * pending offsets in every group become committed offsets (commit) or are dropped (abort).
   */
  completeTxnOffsets(producerId: number, commit: boolean, now: number): GroupRecord[] {
    const records: GroupRecord[] = [];
    for (const g of this.groups.values()) {
      for (const p of g.txnOffsets.values()) {
        if (p.producerId !== producerId) continue;
        if (commit)
          records.push(
            offsetRecord({
              groupId: g.groupId,
              topic: p.topic,
              partition: p.partition,
              offset: p.offset,
              metadata: p.metadata,
              leaderEpoch: p.leaderEpoch,
              commitTimestampMs: Math.max(p.commitTimestampMs, now),
            }),
          );
        records.push(txnOffsetTombstone(g.groupId, producerId, p.topic, p.partition));
      }
    }
    return records;
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
    return sortedTpKeys(wanted).map((k) => {
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
      if (error === null) records.push(this.offsetRecordOf(groupId, o, now));
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
    const classic = this.classicSubscribed(groupId);
    for (const tp of tps) {
      const keys =
        tp.partitions.length > 0
          ? sortedTpKeys(keysOf([tp]))
          : sortedTpKeys([...g.offsets.keys()].filter((k) => parseTpKey(k).topic === tp.topic));
      const error =
        g.subscriptions.has(tp.topic) || classic === null || classic.has(tp.topic)
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

  /** The record committing `o` for `groupId` at `now` (the entry already validated). */
  private offsetRecordOf(groupId: string, o: OffsetToCommit, now: number): OffsetCommitRecord {
    assert(
      Number.isSafeInteger(o.offset) && o.offset >= 0,
      `group ${groupId}: offset ${o.offset} of ${o.topic}/${o.partition} passed validation`,
    );
    return offsetRecord({
      groupId,
      topic: o.topic,
      partition: o.partition,
      offset: o.offset,
      metadata: o.metadata ?? "",
      leaderEpoch: o.leaderEpoch ?? -1,
      commitTimestampMs: now,
    });
  }

  /**
   * Topics changed (`topics`: each changed topic's partition count now, 0 = deleted): tombstones
   * for the group's offsets of partitions that no longer exist.
   */
  expireDeletedPartitions(tx: GroupTx, topics: ReadonlyMap<string, number>): void {
    for (const key of [...tx.g.offsets.keys()].sort()) {
      const { topic, partition } = parseTpKey(key);
      const n = topics.get(topic);
      if (n !== undefined && partition >= n) tx.emit(offsetTombstone(tx.groupId, topic, partition));
    }
  }

  /**
   * Per partition of a group (subscribed topics, partitions still owned, any with a committed
   * offset): the committed offset, the log end offset from the caller's hook, the lag and owner.
   */
  describeOffsets(g: GroupState, logEndOffset: LogEndOffsets): PartitionOffsetDescription[] {
    const keys = new Set<string>(g.offsets.keys());
    for (const topic of g.subscriptions.keys()) for (const k of this.allPartitionKeys(undefined, topic)) keys.add(k);
    // Also partitions still owned (e.g. pending revocation after an unsubscribe).
    for (const k of g.owners.keys()) keys.add(k);
    return sortedTpKeys(keys).map((k): PartitionOffsetDescription => {
      const { topic, partition } = parseTpKey(k);
      const committedOffset = g.offsets.get(k)?.offset ?? -1;
      const end = logEndOffset(topic, partition);
      return { topic, partition, committedOffset, logEndOffset: end, lag: lagOf(committedOffset, end), memberId: g.owners.get(k) ?? "" };
    });
  }

  /** Tombstones for every committed offset of a group (deleting the group). */
  offsetTombstones(g: GroupState): GroupRecord[] {
    return sortedTpKeys(g.offsets.keys()).map((k) => {
      const { topic, partition } = parseTpKey(k);
      return offsetTombstone(g.groupId, topic, partition);
    });
  }
}
