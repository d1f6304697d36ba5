/**
 * Fetch: what a fetch means, for every protocol (see README.md, "the life of a fetch").
 *
 * A fetch answers as soon as `minBytes` are available or `maxWaitMs` has passed. Each partition
 * returns whole batches up to its `maxBytes` (at least one batch, so a consumer never sticks on
 * a batch larger than its limit) within the request's `maxBytes`. BATCHES returns the stored
 * bytes as they are; RECORDS decodes them and drops records below the asked offset, and control
 * batches (transaction markers). READ_COMMITTED reads stop at the last stable offset; RECORDS
 * then also drops the records of aborted transactions, BATCHES lists those transactions
 * (`abortedTransactions`, Kafka's `aborted_transactions`) for the client to drop them.
 *
 * Whole-call errors (a negative offset, a bad format) are thrown; errors that concern one
 * partition (unknown topic, offset out of range, a stored batch that cannot be read:
 * CORRUPT_MESSAGE) come back in that partition's result; the other partitions are answered.
 * Partitions with no replica here are read from their leaders through the `FetchForwarder` port.
 *
 * A partition whose new leader does not know its high watermark yet (its followers have not
 * fetched up to the start of its leader epoch: ReplicaManager.hwKnown) answers neither a high
 * watermark nor a last stable offset, whatever the isolation level, since either could be lower
 * than one the previous leader answered: it waits like a partition with no data and, if the wait
 * ends first, answers the retriable OFFSET_NOT_AVAILABLE (high watermark and last stable offset
 * -1, as Kafka answers a partition error).
 */
import { requestMetricsOf } from "./request-metrics.ts";
import { Errors, RillError, rillError } from "../base/errors.ts";
import { MemoryBudget, type Reservation } from "../base/memory-budget.ts";
import type { FetchPosition, FetchedData, ReplicaManager } from "../replication/replica-manager.ts";
import type { PartitionLog, ReadAlloc } from "../storage/partition-log.ts";
import { publishCorruptRead } from "./corrupt-reads.ts";
import { checkFetched, corruptError } from "./fetch-records.ts";
import {
  IsolationLevel,
  RecordFormat,
  type Cancellation,
  type FetchForwarder,
  type FetchInput,
  type FetchPartitionInput,
  type FetchPartitionResult,
  type FetchResult,
  type ReadBuffers,
} from "./fetch-types.ts";

/** Defaults as Kafka's consumer: fetch.max.bytes, max.partition.fetch.bytes. */
export const FETCH_MAX_BYTES_DEFAULT = 50 * 1024 * 1024;
export const PARTITION_MAX_BYTES_DEFAULT = 1024 * 1024;
/** Longest `max_wait_ms` accepted. */
export const MAX_WAIT_MS_MAX = 300_000;
/** Partitions one fetch may name. */
export const PARTITIONS_MAX = 10_000;

/**
 * Memory a response holds per byte of batches while it is built and sent: the read buffer, the
 * encoded message, the gRPC frame and the HTTP/2 stream's copy of it (reads from the tail cache
 * and encodes into the transport's reused buffer hold less: the count is an upper bound).
 * Measured on Bun: six concurrent 60 MiB fetches peaked 145 MiB above the broker's idle size
 * with 3 and a 64 MiB budget, garbage not yet collected included.
 */
export const RESPONSE_COPIES = 4;
/** How long a read waits for room in the fetch memory budget before FETCH_MEMORY_EXHAUSTED. */
export const FETCH_MEMORY_WAIT_MS = 5000;
/** Bytes a partition adds to a response besides its batches (names, offsets, an error): a bound. */
const PARTITION_RESULT_BYTES_MAX = 512;

/**
 * The broker's limits on responses: the budget every Fetch response and Subscribe message
 * reserves from before it reads (`fetch.memory.max.bytes`), the largest message the
 * transport sends (`request.max.bytes`), and the most data one Fetch response or Subscribe
 * message carries (`fetch.response.max.bytes`).
 */
export interface FetchMemory {
  readonly budget: MemoryBudget;
  readonly responseBytesMax: number;
  /**
   * Most bytes of batches in one Fetch response or Subscribe message (`fetch.response.max.bytes`;
   * absent: only the other limits). Not applied to Consume messages (1 MiB each) or replica fetch.
   */
  readonly responseDataBytesMax?: number;
}

/** No budget and no send limit beyond the largest message size: for tests and tools only. */
export const UNBOUNDED_FETCH_MEMORY: FetchMemory = {
  budget: new MemoryBudget(Number.MAX_SAFE_INTEGER, {
    setTimeout: () => assertNever("an unbounded budget never waits"),
    clearTimeout: () => {},
    setInterval: () => assertNever("an unbounded budget never waits"),
    clearInterval: () => {},
  }),
  responseBytesMax: 2 ** 31 - 1,
};

function assertNever(why: string): never {
  throw new Error(why);
}

/** A fetch's validated parameters, defaults filled in. */
export interface FetchPlan {
  readonly positions: FetchPosition[];
  readonly requestBytesMax: number;
  readonly minBytes: number;
  readonly maxWaitMs: number;
  /** RECORDS format (else BATCHES). */
  readonly records: boolean;
  /** READ_COMMITTED (else READ_UNCOMMITTED). */
  readonly readCommitted: boolean;
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
  isolationLevel = 0,
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
  if (
    isolationLevel !== IsolationLevel.UNSPECIFIED &&
    isolationLevel !== IsolationLevel.READ_UNCOMMITTED &&
    isolationLevel !== IsolationLevel.READ_COMMITTED
  ) {
    throw rillError(
      "INVALID_REQUEST",
      `${what}.isolation_level: ${isolationLevel} is not ISOLATION_LEVEL_READ_UNCOMMITTED (1) or ISOLATION_LEVEL_READ_COMMITTED (2)`,
    );
  }
  const readCommitted = isolationLevel === IsolationLevel.READ_COMMITTED;
  return {
    positions: positionsOf(parts, what, readCommitted),
    requestBytesMax: maxBytes || FETCH_MAX_BYTES_DEFAULT,
    minBytes: Math.max(minBytes, 1),
    maxWaitMs,
    records: format === RecordFormat.RECORDS,
    readCommitted,
  };
}

/** Each partition's read position; a negative offset or size, or a partition named twice, fails the call. */
function positionsOf(parts: readonly FetchPartitionInput[], what: string, readCommitted: boolean): FetchPosition[] {
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
    const pos: FetchPosition = { topic: p.topic, partition: p.partition, offset, maxBytes: p.maxBytes || PARTITION_MAX_BYTES_DEFAULT };
    const epoch = p.currentLeaderEpoch;
    if (epoch !== undefined && epoch !== -1 && !(Number.isInteger(epoch) && epoch >= 0))
      throw rillError("INVALID_REQUEST", `${what}.partitions[${i}].current_leader_epoch: ${epoch} is not an epoch (-1: none)`);
    const withEpoch = epoch === undefined || epoch < 0 ? pos : { ...pos, currentLeaderEpoch: epoch };
    return readCommitted ? { ...withEpoch, readCommitted } : withEpoch;
  });
}

/** What one pass over a fetch's partitions read. */
export interface ReadPass {
  readonly data: FetchedData[];
  readonly bytes: number;
  /** Partitions that answered an error that ends a wait (all but `awaitsHw`'s). */
  readonly errors: number;
}

/**
 * Whether a partition's read found its leader not knowing the high watermark yet
 * (OFFSET_NOT_AVAILABLE: a new leader whose followers have not fetched up to the start of its
 * epoch, ReplicaManager.hwKnown). Such a partition waits as one with no data (the high
 * watermark's move wakes the wait, usually within a replica fetch): a Fetch answers the error
 * only if its wait ends first, a stream (Subscribe, Consume) delivers nothing until it is known.
 */
export function awaitsHw(d: FetchedData): boolean {
  return d.error instanceof RillError && d.error.kind === Errors.OFFSET_NOT_AVAILABLE;
}

/**
 * Reads every position within the request budget, sized first (`planReads`: the first batch of
 * the first partition with data is whole, later partitions take only what fits); disk reads
 * fill buffers from `alloc` when given. No memory budget: `readWithinBudget` is the one that is.
 */
export function readAll(rm: ReplicaManager, p: FetchPlan, alloc?: ReadAlloc): ReadPass {
  return readPlanned(rm, p, planReads(rm, p, p.requestBytesMax), alloc);
}

/**
 * What one pass will read: per position, the bytes to ask for (0: nothing there, or an error,
 * which the read reports) or the answer already known without reading (data that did not fit).
 */
export interface ReadPlan {
  readonly reads: Array<number | FetchedData>;
  /** Bytes of batches the pass returns at most. */
  readonly bytes: number;
}

/**
 * The most bytes of batches one response may carry: what was asked, clamped to what one message
 * may carry (`request.max.bytes` less the partitions' own fields), to a share of the budget
 * one response may hold, and to `fetch.response.max.bytes`.
 *
 * That last one (issue 20): a Subscribe over 1,000 partitions filled each message to the budget's
 * share, 16 MiB, which then held the whole 64 MiB budget alone (counted four times) and was
 * sent one at a time (each more than the stream's 8 MiB send queue): under Bun the broker peaked at
 * 320-378 MiB, against ~210 for one partition, whose messages its 4 MiB `max_bytes` per
 * partition already kept at 4 MiB.
 */
export function responseBytesLimit(p: FetchPlan, memory: FetchMemory): number {
  const fields = p.positions.length * PARTITION_RESULT_BYTES_MAX;
  const share = Math.min(memory.responseBytesMax, Math.floor(memory.budget.bytesMax / RESPONSE_COPIES));
  const data = memory.responseDataBytesMax ?? Number.MAX_SAFE_INTEGER;
  return Math.max(1, Math.min(p.requestBytesMax, share - fields, data));
}

/**
 * Sizes a pass before it reads (from cache entries and batch headers): each partition's whole
 * batches within its `maxBytes` and what is left of `limitBytes`. Kafka's rule (KIP-74): the
 * first batch of the first partition with data is taken whole even when larger than both limits,
 * so a consumer never sticks; later partitions take a batch only while it fits the request.
 *
 * Once a partition's next batch did not fit, the pass is full: the partitions after it that have
 * data are answered without it, unsized. Sizing one from disk reads its first batch's header:
 * a Subscribe over 1,000 partitions read 1,000 headers for each message, and a message of
 * `fetch.response.max.bytes` (4 MiB) carries about 20 of those partitions' 100 KB batches
 * (issue 20).
 */
export function planReads(rm: ReplicaManager, p: FetchPlan, limitBytes: number): ReadPlan {
  let left = limitBytes;
  let bytes = 0;
  let full = false;
  const reads = p.positions.map((pos): number | FetchedData => {
    let log: PartitionLog;
    try {
      log = rm.readLog(pos.topic, pos.partition);
    } catch {
      return 1; // the read reports the error
    }
    if (!rm.hwKnown(log)) return 1; // the read reports OFFSET_NOT_AVAILABLE
    const hw = rm.highWatermark(log);
    const lso = rm.lastStableOffset(log);
    const upTo = pos.readCommitted === true ? lso : hw;
    const size = full
      ? log.hasDataAt(pos.offset, upTo)
        ? Number.POSITIVE_INFINITY
        : 0
      : log.readSize(pos.offset, Math.max(1, Math.min(pos.maxBytes, left)), upTo);
    if (size === 0) return 1; // nothing to read (or a bad offset, which the read reports)
    if (bytes > 0 && size > left) {
      full = true;
      const base = { topic: pos.topic, partition: pos.partition, highWatermark: hw, lastStableOffset: lso };
      return { ...base, logStartOffset: log.logStartOffset, read: null, error: null };
    }
    bytes += size;
    left = Math.max(0, left - size);
    return size;
  });
  return { reads, bytes };
}

/** Reads what `plan` sized (synchronously after planning, so the log has not moved since). */
export function readPlanned(rm: ReplicaManager, p: FetchPlan, plan: ReadPlan, alloc?: ReadAlloc): ReadPass {
  let bytes = 0;
  let errors = 0;
  const data = p.positions.map((pos, i) => {
    const r = plan.reads[i]!;
    if (typeof r !== "number") return r;
    const d = rm.readPartition({ ...pos, maxBytes: r }, alloc);
    if (d.error && !awaitsHw(d)) errors++;
    bytes += d.read?.bytes ?? 0;
    return d;
  });
  return { data, bytes, errors };
}

/** A read pass and the memory its data holds until the response is sent. */
export interface HeldPass extends ReadPass {
  /** Release once the response is sent (null: nothing held). */
  readonly held: Reservation | null;
}

/**
 * Sizes a pass, reserves memory for it (waiting up to FETCH_MEMORY_WAIT_MS, in line), then
 * reads. Throws FETCH_MEMORY_EXHAUSTED when no room came in time; answers an empty pass when
 * `cancel` fired while waiting.
 */
export async function readWithinBudget(
  rm: ReplicaManager,
  p: FetchPlan,
  memory: FetchMemory,
  cancel: Cancellation,
  alloc?: ReadAlloc,
): Promise<HeldPass> {
  const limit = responseBytesLimit(p, memory);
  let plan = planReads(rm, p, limit);
  if (plan.bytes === 0) return { ...readPlanned(rm, p, plan, alloc), held: null };
  const now = memory.budget.tryReserve(plan.bytes * RESPONSE_COPIES);
  if (now) return { ...readPlanned(rm, p, plan, alloc), held: now };
  const held = await memory.budget.reserve(plan.bytes * RESPONSE_COPIES, FETCH_MEMORY_WAIT_MS, cancel);
  if (!held) {
    if (cancel.aborted || rm.closed) return { data: [], bytes: 0, errors: 0, held: null };
    throw rillError(
      "FETCH_MEMORY_EXHAUSTED",
      `fetch: ${plan.bytes * RESPONSE_COPIES} bytes of fetch.memory.max.bytes (${memory.budget.bytesMax}) did not come free in ${FETCH_MEMORY_WAIT_MS} ms`,
    );
  }
  // The log moved while we waited: size again, within what we hold (the first batch may still
  // need more than that; the budget lets it through alone).
  plan = planReads(rm, p, Math.min(limit, Math.floor(held.bytes / RESPONSE_COPIES)));
  if (plan.bytes * RESPONSE_COPIES > held.bytes) {
    held.release();
    return readWithinBudget(rm, p, memory, cancel, alloc);
  }
  held.shrink(plan.bytes * RESPONSE_COPIES);
  return { ...readPlanned(rm, p, plan, alloc), held: held.bytes > 0 ? held : null };
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
    lastStableOffset: d.lastStableOffset ?? d.highWatermark,
  };
  if (d.error) return { ...base, error: RillError.from(d.error), nextOffset: pos.offset, records: null, batches: null };
  const read = d.read;
  const none = pos.readCommitted === true && !asRecords ? [] : null;
  if (!read || read.bytes === 0)
    return { ...base, error: null, nextOffset: pos.offset, records: null, batches: null, abortedTransactions: none };
  const aborted = pos.readCommitted === true ? (d.abortedTransactions ?? []) : null;
  const checked = checkFetched(read.chunks, pos.offset, read.nextOffset, asRecords, aborted);
  if (checked.corrupt) {
    const c = checked.corrupt;
    if (rm) publishCorruptRead({ ...c, source: rm, topic: d.topic, partition: d.partition, api });
    const error = corruptError(c, `${d.topic}-${d.partition}`);
    return { ...base, error, nextOffset: c.skipTo, records: null, batches: null };
  }
  if (rm) requestMetricsOf(rm).bytesOut(d.topic, checked.bytes, checked.nextOffset - pos.offset);
  if (!asRecords)
    return { ...base, error: null, nextOffset: checked.nextOffset, records: null, batches: checked.chunks, abortedTransactions: aborted };
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
  memory: FetchMemory = UNBOUNDED_FETCH_MEMORY,
  buffers?: ReadBuffers,
): Promise<FetchResult & { readonly release: () => void }> {
  const all = planFetch(input.partitions, input.maxBytes, input.minBytes, input.maxWaitMs, input.format, "fetch", input.isolationLevel);
  const remote = forwarder ? remoteLeaders(rm, all.positions) : new Map<number, number[]>();
  // A leader's answer is held here too: asked for no more than a response of ours may carry.
  const clamped = remote.size > 0 ? clampedForLeaders(input, responseBytesLimit(all, memory)) : input;
  const forwarded = forwarder ? [...remote].map(([leader, idx]) => fetchFrom(forwarder, leader, clamped, all, idx)) : [];
  const isRemote = new Set([...remote.values()].flat());
  const elsewhere = preferredElsewhere(rm, all.positions, input.clientRack ?? "", isRemote);
  const localIdx = all.positions.map((_, i) => i).filter((i) => !isRemote.has(i) && !elsewhere.has(i));
  const polled = await longPoll(
    rm,
    { ...all, positions: localIdx.map((i) => all.positions[i]!) },
    cancel,
    remote.size > 0,
    memory,
    buffers,
  );
  if (remote.size === 0 && elsewhere.size === 0) return { partitions: polled.out, release: polled.release };
  const out = new Array<FetchPartitionResult>(all.positions.length);
  localIdx.forEach((i, k) => (out[i] = polled.out[k]!));
  for (const [i, result] of elsewhere) out[i] = result;
  if (remote.size === 0) return { partitions: out, release: polled.release };
  const answers = await Promise.all(forwarded);
  [...remote.values()].forEach((idx, g) => idx.forEach((i, k) => (out[i] = answers[g]![k]!)));
  const release = await holdForwarded(answers.flat(), polled, memory, cancel);
  return { partitions: out, release };
}

/** `input` with its and each partition's `maxBytes` (0: the default) clamped to `limit`. */
function clampedForLeaders(input: FetchInput, limit: number): FetchInput {
  return {
    ...input,
    maxBytes: Math.min(input.maxBytes || FETCH_MAX_BYTES_DEFAULT, limit),
    partitions: input.partitions.map((p) => ({ ...p, maxBytes: Math.min(p.maxBytes || PARTITION_MAX_BYTES_DEFAULT, limit) })),
  };
}

/** Bytes a record adds to an answer besides its key, value and headers (offsets, timestamps, framing): a bound. */
const RECORD_FIELDS_BYTES = 64;

/** Bytes of data in a partition's answer: its batches, or its records' keys, values and headers. */
export function resultBytes(p: FetchPartitionResult): number {
  let n = 0;
  for (const b of p.batches ?? []) n += b.length;
  return n + (p.records?.payloadBytes(RECORD_FIELDS_BYTES) ?? 0);
}

/**
 * Reserves the memory of the leaders' answers (held here until the response is sent) beside
 * what the local part holds. When they do not fit at once, the whole response waits in line as
 * one reservation (the local part's given back first, so a response never waits on itself);
 * FETCH_MEMORY_EXHAUSTED when no room comes in time, as for a local read. Answers the release
 * of everything the response holds.
 */
async function holdForwarded(
  answers: readonly FetchPartitionResult[],
  local: { readonly release: () => void; readonly held: number },
  memory: FetchMemory,
  cancel: Cancellation,
): Promise<() => void> {
  const bytes = answers.reduce((n, p) => n + resultBytes(p), 0) * RESPONSE_COPIES;
  if (bytes === 0) return local.release;
  const now = memory.budget.tryReserve(bytes);
  if (now) {
    return () => {
      now.release();
      local.release();
    };
  }
  local.release();
  const all = await memory.budget.reserve(local.held + bytes, FETCH_MEMORY_WAIT_MS, cancel);
  if (all) return () => all.release();
  if (cancel.aborted) return () => {};
  throw rillError(
    "FETCH_MEMORY_EXHAUSTED",
    `fetch: ${local.held + bytes} bytes of fetch.memory.max.bytes (${memory.budget.bytesMax}) for an answer read from other brokers did not come free in ${FETCH_MEMORY_WAIT_MS} ms`,
  );
}

/**
 * The local part of a fetch: reads until `minBytes` are there (or an error, the deadline, a
 * cancel, the broker's shutdown). With `answerEarly` (other partitions are being read from
 * their leaders, whose answers are awaited anyway) any data ends the wait.
 */
async function longPoll(
  rm: ReplicaManager,
  p: FetchPlan,
  cancel: Cancellation,
  answerEarly: boolean,
  memory: FetchMemory,
  buffers: ReadBuffers | undefined,
): Promise<{ out: FetchPartitionResult[]; release: () => void; held: number }> {
  const deadline = rm.nowMs() + p.maxWaitMs;
  let taken: Buffer[] = [];
  const alloc = buffers
    ? (size: number): Buffer => {
        const b = buffers.take(size);
        taken.push(b);
        return b;
      }
    : undefined;
  const holding = (held: Reservation | null): (() => void) => {
    const mine = taken;
    taken = [];
    return () => {
      held?.release();
      for (const b of mine.splice(0)) buffers?.give(b);
    };
  };
  let out: FetchPartitionResult[] = [];
  while (p.positions.length > 0) {
    const r = await readWithinBudget(rm, p, memory, cancel, alloc);
    if (r.data.length === 0) break; // cancelled or shut down while waiting for memory
    const left = deadline - rm.nowMs();
    const done = r.bytes >= p.minBytes || r.errors > 0 || left <= 0 || cancel.aborted || rm.closed;
    if (done || answerEarly) {
      out = r.data.map((d, i) => partitionResult(d, p.positions[i]!, p.records, rm));
      if (done || r.bytes > 0) return { out, release: holding(r.held), held: r.held?.bytes ?? 0 };
    }
    holding(r.held)();
    await rm.waitForData(left, cancel);
  }
  return { out, release: () => {}, held: 0 };
}

/**
 * The positions led here that a reader in `clientRack` should read from another replica
 * (`ReplicaManager.preferredReadReplica`, KIP-392), each answered at once with no data, the
 * leader's offsets and `preferredReadReplica`, as Kafka's Fetch does.
 */
function preferredElsewhere(
  rm: ReplicaManager,
  positions: readonly FetchPosition[],
  clientRack: string,
  isRemote: ReadonlySet<number>,
): Map<number, FetchPartitionResult> {
  const out = new Map<number, FetchPartitionResult>();
  if (clientRack === "") return out;
  positions.forEach((pos, i) => {
    if (isRemote.has(i)) return;
    const node = rm.preferredReadReplica(pos.topic, pos.partition, clientRack);
    const log = node === null ? undefined : rm.replica(pos.topic, pos.partition)?.log;
    if (node === null || log === undefined) return;
    out.set(i, {
      topic: pos.topic,
      partition: pos.partition,
      highWatermark: rm.highWatermark(log),
      logStartOffset: log.logStartOffset,
      lastStableOffset: rm.lastStableOffset(log),
      nextOffset: pos.offset,
      error: null,
      records: null,
      batches: null,
      preferredReadReplica: node,
    });
  });
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
