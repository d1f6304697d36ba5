/**
 * ListOffsets: per partition, the earliest offset (the log start), the latest (the high
 * watermark: the offset the next consumed record will have) or the first offset at or after a
 * timestamp. Under READ_COMMITTED (Kafka's rule) the latest is the last stable offset and a
 * timestamp lookup finds only offsets below it. Errors concern one partition and come back in
 * its result; an isolation level other than IsolationLevel's fails the call.
 */
import { RillError, rillError } from "../base/errors.ts";
import type { ReplicaManager } from "../replication/replica-manager.ts";
import { IsolationLevel, OffsetSpec, type ListOffsetsPartitionInput, type ListedOffset } from "./fetch-types.ts";

/** Looks up each partition; an empty list fails the whole call. `isolationLevel`: one of IsolationLevel. */
export function listOffsets(rm: ReplicaManager, partitions: readonly ListOffsetsPartitionInput[], isolationLevel = 0): ListedOffset[] {
  if (partitions.length === 0) throw rillError("INVALID_REQUEST", "partitions: at least one partition is required");
  if (isolationLevel < IsolationLevel.UNSPECIFIED || isolationLevel > IsolationLevel.READ_COMMITTED || !Number.isInteger(isolationLevel)) {
    throw rillError(
      "INVALID_REQUEST",
      `isolation_level: ${isolationLevel} is not ISOLATION_LEVEL_READ_UNCOMMITTED (1) or ISOLATION_LEVEL_READ_COMMITTED (2)`,
    );
  }
  const committed = isolationLevel === IsolationLevel.READ_COMMITTED;
  return partitions.map((p, i) => {
    try {
      return lookUp(rm, p, i, committed);
    } catch (e) {
      return { topic: p.topic, partition: p.partition, offset: -1, timestampMs: -1, leaderEpoch: null, error: RillError.from(e) };
    }
  });
}

/** One partition's offset; throws its error. */
function lookUp(rm: ReplicaManager, p: ListOffsetsPartitionInput, i: number, committed: boolean): ListedOffset {
  const base = { topic: p.topic, partition: p.partition, error: null };
  if (p.currentLeaderEpoch !== undefined && p.currentLeaderEpoch !== -1) checkLeaderEpoch(rm, p, i);
  switch (p.spec) {
    case OffsetSpec.EARLIEST: {
      const r = rm.earliestOffset(p.topic, p.partition);
      return { ...base, offset: r.offset, timestampMs: -1, leaderEpoch: r.epoch };
    }
    case OffsetSpec.UNSPECIFIED:
    case OffsetSpec.LATEST: {
      const r = rm.latestOffset(p.topic, p.partition, committed);
      return { ...base, offset: r.offset, timestampMs: -1, leaderEpoch: r.epoch };
    }
    case OffsetSpec.TIMESTAMP: {
      if (p.timestampMs < 0n) throw rillError("INVALID_TIMESTAMP", `partitions[${i}].timestamp_ms: ${p.timestampMs} is negative`);
      const hit = rm.offsetForTimestamp(p.topic, p.partition, Number(p.timestampMs), committed);
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
  if (!Number.isInteger(asked) || asked < 0)
    throw rillError("INVALID_REQUEST", `partitions[${i}].current_leader_epoch: ${asked} is not an epoch (-1: none)`);
  if (known === undefined) return; // the lookup reports the unknown partition
  if (asked < known)
    throw rillError("FENCED_LEADER_EPOCH", `partitions[${i}].current_leader_epoch: ${asked} is older than the partition's ${known}`);
  if (asked > known)
    throw rillError("UNKNOWN_LEADER_EPOCH", `partitions[${i}].current_leader_epoch: ${asked} is newer than the partition's ${known} here`);
}
