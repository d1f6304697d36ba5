/**
 * ListOffsets: per partition, the earliest offset (the log start), the latest (the high
 * watermark: the offset the next consumed record will have) or the first offset at or after a
 * timestamp. Errors concern one partition and come back in its result.
 */
import { RillError, rillError } from "../base/errors.ts";
import type { ReplicaManager } from "../replication/replica-manager.ts";
import { OffsetSpec, type ListOffsetsPartitionInput, type ListedOffset } from "./fetch-types.ts";

/** Looks up each partition; an empty list fails the whole call. */
export function listOffsets(rm: ReplicaManager, partitions: readonly ListOffsetsPartitionInput[]): ListedOffset[] {
  if (partitions.length === 0) throw rillError("INVALID_REQUEST", "partitions: at least one partition is required");
  return partitions.map((p, i) => {
    try {
      return lookUp(rm, p, i);
    } catch (e) {
      return { topic: p.topic, partition: p.partition, offset: -1, timestampMs: -1, leaderEpoch: null, error: RillError.from(e) };
    }
  });
}

/** One partition's offset; throws its error. */
function lookUp(rm: ReplicaManager, p: ListOffsetsPartitionInput, i: number): ListedOffset {
  const base = { topic: p.topic, partition: p.partition, error: null };
  if (p.currentLeaderEpoch !== undefined && p.currentLeaderEpoch >= 0) checkLeaderEpoch(rm, p, i);
  switch (p.spec) {
    case OffsetSpec.EARLIEST: {
      const r = rm.earliestOffset(p.topic, p.partition);
      return { ...base, offset: r.offset, timestampMs: -1, leaderEpoch: r.epoch };
    }
    case OffsetSpec.UNSPECIFIED:
    case OffsetSpec.LATEST: {
      const r = rm.latestOffset(p.topic, p.partition);
      return { ...base, offset: r.offset, timestampMs: -1, leaderEpoch: r.epoch };
    }
    case OffsetSpec.TIMESTAMP: {
      if (p.timestampMs < 0n) throw rillError("INVALID_TIMESTAMP", `partitions[${i}].timestamp_ms: ${p.timestampMs} is negative`);
      const hit = rm.offsetForTimestamp(p.topic, p.partition, Number(p.timestampMs));
      return hit
        ? { ...base, offset: hit.offset, timestampMs: hit.timestampMs, leaderEpoch: null }
        : { ...base, offset: -1, timestampMs: -1, leaderEpoch: null };
    }
    default:
      throw rillError("INVALID_REQUEST", `partitions[${i}].spec: ${p.spec} is not EARLIEST, LATEST or TIMESTAMP`);
  }
}

/** The caller's leader epoch against the partition's (as Kafka fences a stale or too-new one). */
function checkLeaderEpoch(rm: ReplicaManager, p: ListOffsetsPartitionInput, i: number): void {
  const known = rm.topic(p.topic).partitions[p.partition]?.leaderEpoch;
  const asked = p.currentLeaderEpoch as number;
  if (known === undefined) return; // the lookup reports the unknown partition
  if (asked < known)
    throw rillError("FENCED_LEADER_EPOCH", `partitions[${i}].current_leader_epoch: ${asked} is older than the partition's ${known}`);
  if (asked > known)
    throw rillError("UNKNOWN_LEADER_EPOCH", `partitions[${i}].current_leader_epoch: ${asked} is newer than the partition's ${known} here`);
}
