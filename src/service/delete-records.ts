/**
 * DeleteRecords (Kafka's API 21, AdminService.DeleteRecords): raise partitions' log start
 * offsets, so that the records below are gone for readers (OFFSET_OUT_OF_RANGE) and whole
 * segments below are deleted from disk.
 *
 * Each partition is done by its leader (`ReplicaManager.deleteRecords`: offset -1 means the high
 * watermark; past the high watermark or below -1 is OFFSET_OUT_OF_RANGE), which writes the new
 * log start offset to its checkpoint file (it survives a restart) and serves it to its followers
 * in every replica fetch answer; they raise theirs as far as their own log reaches. A broker that
 * does not lead a partition passes the partitions of each leader to it through the
 * `DeleteRecordsForwarder` port (one call per leader, marked forwarded: a forwarded request is
 * answered where it lands, NOT_LEADER_OR_FOLLOWER if leadership moved meanwhile).
 *
 * Whole-call errors (thrown): no partitions, more than DELETE_RECORDS_PARTITIONS_MAX, a partition
 * named twice (INVALID_ARGUMENT). Everything else is that partition's error.
 */
import { RillError, rillError } from "../base/errors.ts";
import type { ReplicaManager } from "../replication/replica-manager.ts";
import type { RequestOrigin } from "./admin-ports.ts";

/** One partition of a DeleteRecords request. */
export interface DeleteRecordsPartitionInput {
  readonly topic: string;
  readonly partition: number;
  /** The new log start offset; -1: the high watermark. */
  readonly offset: bigint;
}

/** A DeleteRecords request. */
export interface DeleteRecordsInput {
  readonly partitions: readonly DeleteRecordsPartitionInput[];
}

/** One partition's outcome. */
export interface DeleteRecordsPartitionResult {
  readonly topic: string;
  readonly partition: number;
  /** The log start offset afterwards (Kafka's low watermark); -1 with an error. */
  readonly lowWatermark: number;
  readonly error: RillError | null;
}

/** The answer: one result per requested partition, in request order. */
export interface DeleteRecordsResult {
  readonly partitions: readonly DeleteRecordsPartitionResult[];
}

/**
 * Passes the partitions led by broker `leader` to it (marked forwarded) and resolves with its
 * answer for them, in order. Rejects with a RillError when the leader cannot be reached.
 */
export type DeleteRecordsForwarder = (leader: number, input: DeleteRecordsInput) => Promise<DeleteRecordsResult>;

/** Most partitions one request may name. */
export const DELETE_RECORDS_PARTITIONS_MAX = 10_000;

/** Checks the whole request (see the module comment). */
export function checkDeleteRecords(input: DeleteRecordsInput): void {
  const n = input.partitions.length;
  if (n === 0) throw rillError("INVALID_ARGUMENT", "partitions: empty; name at least one partition");
  if (n > DELETE_RECORDS_PARTITIONS_MAX) {
    throw rillError("INVALID_ARGUMENT", `partitions: ${n} partitions, more than the ${DELETE_RECORDS_PARTITIONS_MAX} allowed`);
  }
  const seen = new Set<string>();
  input.partitions.forEach((p, i) => {
    const key = `${p.topic}\u0000${p.partition}`;
    if (seen.has(key)) throw rillError("INVALID_ARGUMENT", `partitions[${i}]: ${p.topic}-${p.partition} is named twice`);
    seen.add(key);
  });
}

/** Deletes records below each named offset; see the module comment. */
export async function deleteRecords(
  rm: ReplicaManager,
  input: DeleteRecordsInput,
  origin: RequestOrigin,
  forwarder: DeleteRecordsForwarder | null,
): Promise<DeleteRecordsResult> {
  checkDeleteRecords(input);
  const results: DeleteRecordsPartitionResult[] = new Array(input.partitions.length);
  const remote = new Map<number, number[]>();
  input.partitions.forEach((p, i) => {
    const leader = origin.forwarded || forwarder === null ? rm.nodeIdOf() : leaderOf(rm, p);
    if (leader === rm.nodeIdOf() || leader < 0) {
      results[i] = deleteHere(rm, p);
      return;
    }
    let list = remote.get(leader);
    if (list === undefined) remote.set(leader, (list = []));
    list.push(i);
  });
  await Promise.all(
    [...remote].map(async ([leader, indexes]) => {
      const partitions = indexes.map((i) => input.partitions[i]!);
      try {
        const res = await forwarder!(leader, { partitions });
        indexes.forEach((idx, j) => {
          results[idx] = res.partitions[j] ?? failed(partitions[j]!, rillError("UNKNOWN_SERVER_ERROR", `broker ${leader} gave no answer`));
        });
      } catch (e) {
        const err = RillError.from(e);
        indexes.forEach((idx, j) => {
          results[idx] = failed(partitions[j]!, err);
        });
      }
    }),
  );
  return { partitions: results };
}

/** The partition's leader per this node's metadata, or -1 when the topic or partition is unknown (answered here). */
function leaderOf(rm: ReplicaManager, p: DeleteRecordsPartitionInput): number {
  const t = rm.image.topics.get(p.topic);
  const state = t === undefined || !Number.isInteger(p.partition) || p.partition < 0 ? undefined : t.partitions[p.partition];
  return state === undefined ? -1 : state.leader;
}

function deleteHere(rm: ReplicaManager, p: DeleteRecordsPartitionInput): DeleteRecordsPartitionResult {
  try {
    if (p.offset < -1n || p.offset > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw rillError("OFFSET_OUT_OF_RANGE", `offset: ${p.offset} is outside [-1, 2^53 - 1]`);
    }
    const lowWatermark = rm.deleteRecords(p.topic, p.partition, Number(p.offset));
    return { topic: p.topic, partition: p.partition, lowWatermark, error: null };
  } catch (e) {
    return failed(p, RillError.from(e));
  }
}

function failed(p: DeleteRecordsPartitionInput, error: RillError): DeleteRecordsPartitionResult {
  return { topic: p.topic, partition: p.partition, lowWatermark: -1, error };
}
