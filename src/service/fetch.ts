/**
 * Fetch: what a fetch means, for every protocol (see README.md, "the life of a fetch").
 *
 * A fetch answers as soon as `minBytes` are available or `maxWaitMs` has passed. Each partition
 * returns whole batches up to its `maxBytes` (at least one batch, so a consumer never sticks on
 * a batch larger than its limit) within the request's `maxBytes`. BATCHES returns the stored
 * bytes as they are; RECORDS decodes them and drops records below the asked offset.
 *
 * Whole-call errors (a negative offset, a bad format) are thrown; errors that concern one
 * partition (unknown topic, offset out of range, a stored batch that cannot be read:
 * CORRUPT_MESSAGE) come back in that partition's result; the other partitions are answered.
 * Partitions with no replica here are read from their leaders through the `FetchForwarder` port.
 */
import { RillError, rillError } from "../base/errors.ts";
import type { FetchPosition, FetchedData, ReplicaManager } from "../replication/replica-manager.ts";
import type { ReadAlloc } from "../storage/partition-log.ts";
import { publishCorruptRead } from "./corrupt-reads.ts";
import { checkFetched, corruptError } from "./fetch-records.ts";
import {
  RecordFormat,
  type Cancellation,
  type FetchForwarder,
  type FetchInput,
  type FetchPartitionInput,
  type FetchPartitionResult,
  type FetchResult,
} from "./fetch-types.ts";

/** Defaults as Kafka's consumer: fetch.max.bytes, max.partition.fetch.bytes. */
export const FETCH_MAX_BYTES_DEFAULT = 50 * 1024 * 1024;
export const PARTITION_MAX_BYTES_DEFAULT = 1024 * 1024;
/** Longest `max_wait_ms` accepted. */
export const MAX_WAIT_MS_MAX = 300_000;
/** Partitions one fetch may name. */
export const PARTITIONS_MAX = 10_000;

/** A fetch's validated parameters, defaults filled in. */
export interface FetchPlan {
  readonly positions: FetchPosition[];
  readonly requestBytesMax: number;
  readonly minBytes: number;
  readonly maxWaitMs: number;
  /** RECORDS format (else BATCHES). */
  readonly records: boolean;
}

/**
 * Validates the parts of a fetch that concern the whole call; `what` ("fetch", "subscribe")
 * prefixes the field names in error messages.
 */
export function planFetch(
  parts: readonly FetchPartitionInput[],
  maxBytes: number,
  minBytes: number,
  maxWaitMs: number,
  format: number,
  what: string,
): FetchPlan {
  if (parts.length === 0) throw rillError("INVALID_REQUEST", `${what}.partitions: at least one partition is required`);
  if (parts.length > PARTITIONS_MAX)
    throw rillError("INVALID_REQUEST", `${what}.partitions: ${parts.length} is more than ${PARTITIONS_MAX}`);
  if (maxBytes < 0) throw rillError("INVALID_FETCH_SIZE", `${what}.max_bytes: ${maxBytes} is negative`);
  if (minBytes < 0) throw rillError("INVALID_FETCH_SIZE", `${what}.min_bytes: ${minBytes} is negative`);
  if (maxWaitMs < 0 || maxWaitMs > MAX_WAIT_MS_MAX)
    throw rillError("INVALID_REQUEST", `${what}.max_wait_ms: ${maxWaitMs} is not in [0, ${MAX_WAIT_MS_MAX}]`);
  if (format !== RecordFormat.UNSPECIFIED && format !== RecordFormat.RECORDS && format !== RecordFormat.BATCHES) {
    throw rillError("INVALID_REQUEST", `${what}.format: ${format} is not RECORD_FORMAT_RECORDS or RECORD_FORMAT_BATCHES`);
  }
  return {
    positions: positionsOf(parts, what),
    requestBytesMax: maxBytes || FETCH_MAX_BYTES_DEFAULT,
    minBytes: Math.max(minBytes, 1),
    maxWaitMs,
    records: format === RecordFormat.RECORDS,
  };
}

/** Each partition's read position; a negative offset or size, or a partition named twice, fails the call. */
function positionsOf(parts: readonly FetchPartitionInput[], what: string): FetchPosition[] {
  const seen = new Set<string>();
  return parts.map((p, i) => {
    if (p.offset < 0n) throw rillError("INVALID_REQUEST", `${what}.partitions[${i}].offset: ${p.offset} is negative`);
    if (p.maxBytes < 0) throw rillError("INVALID_FETCH_SIZE", `${what}.partitions[${i}].max_bytes: ${p.maxBytes} is negative`);
    const key = `${p.topic}\u0000${p.partition}`;
    if (seen.has(key)) throw rillError("INVALID_REQUEST", `${what}.partitions[${i}]: ${p.topic}-${p.partition} is named twice`);
    seen.add(key);
    // No log reaches 2^53: a larger offset is read as 2^53-1, past every log end, so the
    // partition answers OFFSET_OUT_OF_RANGE (as Kafka does) and next_offset stays in int64.
    const offset = p.offset > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(p.offset);
    return { topic: p.topic, partition: p.partition, offset, maxBytes: p.maxBytes || PARTITION_MAX_BYTES_DEFAULT };
  });
}

/** What one pass over a fetch's partitions read. */
export interface ReadPass {
  readonly data: FetchedData[];
  readonly bytes: number;
  /** Partitions that answered an error. */
  readonly errors: number;
}

/**
 * Reads every position within the request budget (the first partition with data always gets one
 * batch); disk reads fill buffers from `alloc` when given.
 */
export function readAll(rm: ReplicaManager, p: FetchPlan, alloc?: ReadAlloc): ReadPass {
  let budget = p.requestBytesMax;
  let bytes = 0;
  let errors = 0;
  const data = p.positions.map((pos) => {
    const d = rm.readPartition({ ...pos, maxBytes: Math.max(1, Math.min(pos.maxBytes, budget)) }, alloc);
    if (d.error) errors++;
    const n = d.read?.bytes ?? 0;
    bytes += n;
    budget = Math.max(0, budget - n);
    return budget === 0 && n === 0 ? { ...d, read: null } : d;
  });
  return { data, bytes, errors };
}

/**
 * One partition's result from what was read at `pos`. The read is checked batch by batch
 * (fetch-records.ts): a batch that cannot be read ends the data before it, and when it is the
 * first, the partition answers CORRUPT_MESSAGE naming its offset, with `nextOffset` just after
 * it (where a consumer that skips it goes on); the read is published as a `CorruptRead` of
 * `rm` for `api`. Other partitions are not affected.
 */
export function partitionResult(
  d: FetchedData,
  pos: FetchPosition,
  asRecords: boolean,
  rm: ReplicaManager | null = null,
  api = "fetch",
): FetchPartitionResult {
  const base = {
    topic: d.topic,
    partition: d.partition,
    highWatermark: d.highWatermark,
    logStartOffset: d.logStartOffset,
    lastStableOffset: d.highWatermark,
  };
  if (d.error) return { ...base, error: RillError.from(d.error), nextOffset: pos.offset, records: null, batches: null };
  const read = d.read;
  if (!read || read.bytes === 0) return { ...base, error: null, nextOffset: pos.offset, records: null, batches: null };
  const checked = checkFetched(read.chunks, pos.offset, read.nextOffset, asRecords);
  if (checked.corrupt) {
    const c = checked.corrupt;
    if (rm) publishCorruptRead({ ...c, source: rm, topic: d.topic, partition: d.partition, api });
    const error = corruptError(c, `${d.topic}-${d.partition}`);
    return { ...base, error, nextOffset: c.skipTo, records: null, batches: null };
  }
  if (!asRecords) return { ...base, error: null, nextOffset: checked.nextOffset, records: null, batches: checked.chunks };
  return { ...base, error: null, nextOffset: checked.nextOffset, records: checked.records, batches: null };
}

/**
 * Fetch: reads, and while there is less than `minBytes`, waits for appends until `maxWaitMs`.
 * Partitions with no replica here go to their leaders through `forwarder` (null: a forwarded
 * fetch, read here only); the answer merges both, in request order.
 */
export async function fetch(
  rm: ReplicaManager,
  input: FetchInput,
  cancel: Cancellation,
  forwarder: FetchForwarder | null,
): Promise<FetchResult> {
  const all = planFetch(input.partitions, input.maxBytes, input.minBytes, input.maxWaitMs, input.format, "fetch");
  const remote = forwarder ? remoteLeaders(rm, all.positions) : new Map<number, number[]>();
  const forwarded = forwarder ? [...remote].map(([leader, idx]) => fetchFrom(forwarder, leader, input, all, idx)) : [];
  const isRemote = new Set([...remote.values()].flat());
  const localIdx = all.positions.map((_, i) => i).filter((i) => !isRemote.has(i));
  const local = await longPoll(rm, { ...all, positions: localIdx.map((i) => all.positions[i]!) }, cancel, remote.size > 0);
  if (remote.size === 0) return { partitions: local };
  const out = new Array<FetchPartitionResult>(all.positions.length);
  localIdx.forEach((i, k) => (out[i] = local[k]!));
  const answers = await Promise.all(forwarded);
  [...remote.values()].forEach((idx, g) => idx.forEach((i, k) => (out[i] = answers[g]![k]!)));
  return { partitions: out };
}

/**
 * The local part of a fetch: reads until `minBytes` are there (or an error, the deadline, a
 * cancel, the broker's shutdown). With `answerEarly` (other partitions are being read from
 * their leaders, whose answers are awaited anyway) any data ends the wait.
 */
async function longPoll(rm: ReplicaManager, p: FetchPlan, cancel: Cancellation, answerEarly: boolean): Promise<FetchPartitionResult[]> {
  const deadline = rm.nowMs() + p.maxWaitMs;
  let out: FetchPartitionResult[] = [];
  while (p.positions.length > 0) {
    const r = readAll(rm, p);
    const left = deadline - rm.nowMs();
    const done = r.bytes >= p.minBytes || r.errors > 0 || left <= 0 || cancel.aborted || rm.closed;
    if (done || answerEarly) {
      out = r.data.map((d, i) => partitionResult(d, p.positions[i]!, p.records, rm));
      if (done || r.bytes > 0) break;
    }
    await rm.waitForData(left, cancel);
  }
  return out;
}

/** The request's positions grouped by the broker that leads them, for those with no replica here. */
function remoteLeaders(rm: ReplicaManager, positions: readonly FetchPosition[]): Map<number, number[]> {
  const remote = new Map<number, number[]>();
  positions.forEach((pos, i) => {
    const st = rm.image.topics.get(pos.topic)?.partitions[pos.partition];
    if (st && st.leader >= 0 && st.leader !== rm.nodeIdOf() && rm.replica(pos.topic, pos.partition) === undefined) {
      let list = remote.get(st.leader);
      if (!list) remote.set(st.leader, (list = []));
      list.push(i);
    }
  });
  return remote;
}

/** Reads the positions `idx` from `leader`; a failure becomes each partition's error. */
async function fetchFrom(
  forwarder: FetchForwarder,
  leader: number,
  input: FetchInput,
  all: FetchPlan,
  idx: readonly number[],
): Promise<FetchPartitionResult[]> {
  try {
    const res = await forwarder.fetch(leader, { ...input, partitions: idx.map((i) => input.partitions[i]!) });
    return idx.map(
      (i, k) =>
        res.partitions[k] ??
        unread(all.positions[i]!, rillError("NOT_LEADER_OR_FOLLOWER", "the leader answered no result for this partition"), 0),
    );
  } catch (e) {
    return idx.map((i) => unread(all.positions[i]!, RillError.from(e), all.positions[i]!.offset));
  }
}

/** A partition that could not be read from its leader (offsets unknown: left at 0). */
function unread(pos: FetchPosition, error: RillError, nextOffset: number): FetchPartitionResult {
  return {
    topic: pos.topic,
    partition: pos.partition,
    highWatermark: 0,
    logStartOffset: 0,
    lastStableOffset: 0,
    nextOffset,
    error,
    records: null,
    batches: null,
  };
}
