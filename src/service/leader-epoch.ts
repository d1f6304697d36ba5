/**
 * Leader epochs as readers see them, for every protocol: whether this broker leads a partition
 * at the epoch a caller believes current (KIP-320's fencing, which Kafka's Fetch and
 * OffsetsForLeaderEpoch check), and where a given epoch ends in the leader's log (KIP-101's
 * OffsetsForLeaderEpoch: a follower truncates a diverged log there; a consumer checks, after a
 * leader change, that the position it holds was not truncated away).
 *
 * The answers come from the partition's leader epoch cache (storage/leader-epoch-cache.ts): the
 * largest epoch at or below the one asked for, and the start offset of the next epoch (the log
 * end offset for the newest); `{epoch: -1, endOffset: -1}` when no epoch that old is known.
 */
import { type RillError, rillError } from "../base/errors.ts";
import type { ReplicaManager } from "../replication/replica-manager.ts";

/** One partition of an OffsetsForLeaderEpoch. */
export interface LeaderEpochQuery {
  readonly topic: string;
  readonly partition: number;
  /** The epoch whose end offset is wanted. */
  readonly leaderEpoch: number;
  /** The leader epoch the caller believes current; -1: not checked. */
  readonly currentLeaderEpoch: number;
}

/** Where one asked epoch ends, or why it could not be answered. */
export interface EpochEnd {
  readonly topic: string;
  readonly partition: number;
  /** The largest epoch at or below the asked one; -1 when none is known (or on error). */
  readonly epoch: number;
  /** Where that epoch ends (the next epoch's start, or the log end); -1 when none is known (or on error). */
  readonly endOffset: number;
  readonly error: RillError | null;
}

/**
 * Null when this broker leads `topic`-`partition` at `currentLeaderEpoch` (-1: any epoch), or,
 * with `followerReads` (a consumer's fetch from a follower, KIP-392), follows it at that epoch;
 * otherwise why not: UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH
 * (the caller's epoch is older: it must refresh its metadata) or UNKNOWN_LEADER_EPOCH (newer:
 * this broker has not learnt it yet).
 */
export function checkLeaderEpoch(
  rm: ReplicaManager,
  topic: string,
  partition: number,
  currentLeaderEpoch: number,
  followerReads = false,
): RillError | null {
  const t = rm.image.topics.get(topic);
  if (!t) return rillError("UNKNOWN_TOPIC_OR_PARTITION", `topic "${topic}" does not exist`);
  if (!Number.isInteger(partition) || partition < 0 || partition >= t.partitions.length) {
    return rillError(
      "UNKNOWN_TOPIC_OR_PARTITION",
      `partition ${partition} of topic "${topic}" does not exist (it has ${t.partitions.length})`,
    );
  }
  const r = rm.replica(topic, partition);
  if (r?.role !== "leader" && !(followerReads && r?.role === "follower"))
    return rillError(
      "NOT_LEADER_OR_FOLLOWER",
      `${topic}-${partition}: broker ${rm.nodeIdOf()} does not ${followerReads ? "host" : "lead"} it`,
    );
  if (currentLeaderEpoch >= 0 && currentLeaderEpoch < r.leaderEpoch)
    return rillError("FENCED_LEADER_EPOCH", `current_leader_epoch: ${currentLeaderEpoch} < ${r.leaderEpoch}`);
  if (currentLeaderEpoch > r.leaderEpoch)
    return rillError("UNKNOWN_LEADER_EPOCH", `current_leader_epoch: ${currentLeaderEpoch} > ${r.leaderEpoch}`);
  return null;
}

/** OffsetsForLeaderEpoch: per partition, on its leader, where the asked epoch ends (see the module comment). */
export function offsetsForLeaderEpoch(rm: ReplicaManager, queries: readonly LeaderEpochQuery[]): EpochEnd[] {
  return queries.map((q) => {
    const error = checkLeaderEpoch(rm, q.topic, q.partition, q.currentLeaderEpoch);
    if (error) return { topic: q.topic, partition: q.partition, epoch: -1, endOffset: -1, error };
    const end = rm.replica(q.topic, q.partition)!.log.endOffsetForEpoch(q.leaderEpoch);
    return { topic: q.topic, partition: q.partition, epoch: end.epoch, endOffset: end.endOffset, error: null };
  });
}
