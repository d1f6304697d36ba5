/**
 * FetchService: Fetch (unary long-poll), Subscribe (server stream that follows the log end) and
 * ListOffsets.
 *
 * Fetch answers as soon as `min_bytes` are available or `max_wait_ms` has passed. Each partition
 * returns whole batches up to its `max_bytes` (at least one batch, so a consumer never sticks on
 * a batch larger than its limit) within the request's `max_bytes`. BATCHES sends the stored
 * bytes as they are (one copy, into the response); RECORDS decodes them for thin clients and
 * drops records below the asked offset.
 *
 * Subscribe writes a message whenever data arrives and reads more only while fewer than
 * SUBSCRIBE_QUEUED_BYTES_MAX bytes of its messages wait to be sent (about two messages), so a
 * slow client holds a bounded amount of the broker's memory. Its disk reads fill buffers from a
 * pool that each message gives back once grpc-js has serialized it.
 *
 * Whole-call errors (a negative offset, a bad enum) end the call with a status; errors that
 * concern one partition (unknown topic, offset out of range) come back in that partition.
 */
import { create } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { rillError } from "../base/errors.ts";
import { ConsumedRecordSchema, OffsetSpec, RecordFormat, TimestampType, type ConsumedRecord } from "../gen/rill/v1/common_pb.ts";
import {
  FetchRequestSchema,
  FetchService,
  ListOffsetsResponseSchema,
  type FetchPartition,
  type FetchRequest,
  type FetchResponse,
  type ListOffsetsRequest,
  type ListOffsetsResponse,
  type SubscribeRequest,
} from "../gen/rill/v1/fetch_service_pb.ts";
import type { FetchPosition, FetchedData, ReplicaManager } from "../replication/replica-manager.ts";
import type { ReadAlloc } from "../storage/partition-log.ts";
import { HEADER_SIZE, readBatchHeader, records as recordCursor } from "../protocol/record-batch.ts";
import { BufferPool } from "./buffer-pool.ts";
import { toErrorDetail, toServiceError, unary } from "./errors.ts";
import type { ServiceImplementation } from "./grpc-service.ts";
import { LeaderClients, isForwarded } from "./forward.ts";
import type { FetchResponseOutput, FetchedPartitionOutput, fetchServiceCodecs } from "./wire-codec.ts";

/** Defaults as Kafka's consumer: fetch.max.bytes, max.partition.fetch.bytes, fetch.max.wait.ms. */
export const FETCH_MAX_BYTES_DEFAULT = 50 * 1024 * 1024;
export const PARTITION_MAX_BYTES_DEFAULT = 1024 * 1024;
const MAX_WAIT_MS_MAX = 300_000;
/** Partitions one fetch may name. */
const PARTITIONS_MAX = 10_000;
/** How long an idle Subscribe waits between checks of a quiet log. */
const SUBSCRIBE_IDLE_MS = 30_000;
/**
 * Bytes of a Subscribe stream's messages handed to grpc-js and not yet written to the
 * connection, above which the stream reads no more: the message being sent plus about one
 * ready behind it (a single larger message still goes). Without it grpc-js's object-mode
 * Writable buffers 16 messages before write() returns false, each holding its read buffers.
 */
export const SUBSCRIBE_QUEUED_BYTES_MAX = 8 * 1024 * 1024;
/** Idle read buffers kept for Subscribe streams to reuse (all streams of one broker together). */
const SUBSCRIBE_POOL_BYTES_MAX = 32 * 1024 * 1024;

interface FetchPlan {
  readonly positions: FetchPosition[];
  readonly requestMaxBytes: number;
  readonly minBytes: number;
  readonly maxWaitMs: number;
  readonly records: boolean;
}

/** Validates the parts of a fetch that concern the whole call. */
function plan(
  parts: readonly FetchPartition[],
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
  const seen = new Set<string>();
  const positions = parts.map((p, i) => {
    if (p.offset < 0n) throw rillError("INVALID_REQUEST", `${what}.partitions[${i}].offset: ${p.offset} is negative`);
    if (p.maxBytes < 0) throw rillError("INVALID_FETCH_SIZE", `${what}.partitions[${i}].max_bytes: ${p.maxBytes} is negative`);
    const key = `${p.topic}\u0000${p.partition}`;
    if (seen.has(key)) throw rillError("INVALID_REQUEST", `${what}.partitions[${i}]: ${p.topic}-${p.partition} is named twice`);
    seen.add(key);
    return { topic: p.topic, partition: p.partition, offset: Number(p.offset), maxBytes: p.maxBytes || PARTITION_MAX_BYTES_DEFAULT };
  });
  return {
    positions,
    requestMaxBytes: maxBytes || FETCH_MAX_BYTES_DEFAULT,
    minBytes: Math.max(minBytes, 1),
    maxWaitMs,
    records: format === RecordFormat.RECORDS,
  };
}

/**
 * Reads every position within the request budget (the first partition with data always gets one
 * batch); disk reads fill buffers from `alloc` when given.
 */
function readAll(rm: ReplicaManager, p: FetchPlan, alloc?: ReadAlloc): { data: FetchedData[]; bytes: number; errors: number } {
  let budget = p.requestMaxBytes;
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

/** One partition's part of the response. */
function output(d: FetchedData, pos: FetchPosition, asRecords: boolean): FetchedPartitionOutput {
  const base = {
    topic: d.topic,
    partition: d.partition,
    highWatermark: d.highWatermark,
    logStartOffset: d.logStartOffset,
    lastStableOffset: d.highWatermark,
  };
  if (d.error) return { ...base, error: toErrorDetail(d.error), nextOffset: pos.offset };
  const read = d.read;
  if (!read || read.bytes === 0) return { ...base, nextOffset: pos.offset };
  if (!asRecords) return { ...base, recordBatches: read.chunks, nextOffset: read.nextOffset };
  return { ...base, records: decodeFetched(d.topic, d.partition, read.chunks, pos.offset), nextOffset: read.nextOffset };
}

/** Materialises the records at or after `from` (thin clients' RECORDS format). */
export function decodeFetched(topic: string, partition: number, chunks: readonly Buffer[], from: number): ConsumedRecord[] {
  const out: ConsumedRecord[] = [];
  for (const chunk of chunks) {
    for (let pos = 0; pos + HEADER_SIZE <= chunk.length; ) {
      const h = readBatchHeader(chunk, pos);
      const logAppend = h.timestampType === 1;
      const c = recordCursor(chunk, pos);
      while (c.next()) {
        if (c.offset < from) continue;
        out.push(
          create(ConsumedRecordSchema, {
            topic,
            partition,
            offset: BigInt(c.offset),
            timestampMs: BigInt(logAppend ? h.maxTimestamp : c.timestampMs),
            timestampType: logAppend ? TimestampType.LOG_APPEND_TIME : TimestampType.CREATE_TIME,
            leaderEpoch: h.partitionLeaderEpoch,
            ...(c.keyLength >= 0 ? { key: c.key()! } : {}),
            ...(c.valueLength >= 0 ? { value: c.value()! } : {}),
            headers: c.headers().map((hd) => ({ key: hd.key, ...(hd.value !== null ? { value: hd.value } : {}) })),
          }),
        );
      }
      pos += h.size;
    }
  }
  return out;
}

/** A cancellation flag that also ends a pending wait. */
interface Abort {
  aborted: boolean;
  onabort: (() => void) | null;
}

function abortOn(call: { on(event: "cancelled", fn: () => void): unknown }): Abort {
  const a: Abort = { aborted: false, onabort: null };
  call.on("cancelled", () => {
    a.aborted = true;
    a.onabort?.();
  });
  return a;
}

/** Fetch: read, and if there is less than min_bytes, wait for appends until max_wait_ms. */
async function fetch(
  rm: ReplicaManager,
  req: FetchRequest,
  call: { on(event: "cancelled", fn: () => void): unknown },
  leaders: LeaderClients<typeof FetchService> | null,
): Promise<FetchResponseOutput> {
  const all = plan(req.partitions, req.maxBytes, req.minBytes, req.maxWaitMs, req.format, "fetch");
  // Partitions with no replica here go to their leaders (thin clients need one address); the
  // answer merges both, in request order.
  const remote = new Map<number, number[]>();
  if (leaders) {
    all.positions.forEach((pos, i) => {
      const st = rm.image.topics.get(pos.topic)?.partitions[pos.partition];
      if (st && st.leader >= 0 && st.leader !== rm.nodeIdOf() && rm.replica(pos.topic, pos.partition) === undefined) {
        let list = remote.get(st.leader);
        if (!list) remote.set(st.leader, (list = []));
        list.push(i);
      }
    });
  }
  const forwarded = [...remote].map(async ([leader, idx]) => {
    const sub = create(FetchRequestSchema, { ...req, partitions: idx.map((i) => req.partitions[i]!) });
    try {
      const res = await leaders!.call<FetchResponse>(leader, "fetch", sub, req.maxWaitMs);
      return idx.map(
        (i, k): FetchedPartitionOutput =>
          res.partitions[k] ?? {
            topic: all.positions[i]!.topic,
            partition: all.positions[i]!.partition,
            error: toErrorDetail(rillError("NOT_LEADER_OR_FOLLOWER", "the leader answered no result for this partition")),
          },
      );
    } catch (e) {
      return idx.map(
        (i): FetchedPartitionOutput => ({
          topic: all.positions[i]!.topic,
          partition: all.positions[i]!.partition,
          error: toErrorDetail(e),
          nextOffset: all.positions[i]!.offset,
        }),
      );
    }
  });
  const isRemote = new Set([...remote.values()].flat());
  const localIdx = all.positions.map((_, i) => i).filter((i) => !isRemote.has(i));
  const p = { ...all, positions: localIdx.map((i) => all.positions[i]!) };
  const abort = abortOn(call);
  const deadline = rm.nowMs() + p.maxWaitMs;
  let local: FetchedPartitionOutput[] = [];
  for (;;) {
    if (p.positions.length === 0) break;
    const r = readAll(rm, p);
    const left = deadline - rm.nowMs();
    if (r.bytes >= p.minBytes || r.errors > 0 || left <= 0 || abort.aborted || rm.closed || remote.size > 0) {
      local = r.data.map((d, i) => output(d, p.positions[i]!, p.records));
      if (r.bytes >= p.minBytes || r.errors > 0 || left <= 0 || abort.aborted || rm.closed || r.bytes > 0) break;
    }
    await rm.waitForData(left, abort);
  }
  if (remote.size === 0) return { partitions: local };
  const out = new Array<FetchedPartitionOutput>(all.positions.length);
  localIdx.forEach((i, k) => (out[i] = local[k]!));
  const answers = await Promise.all(forwarded);
  [...remote.values()].forEach((idx, g) => idx.forEach((i, k) => (out[i] = answers[g]![k]!)));
  return { partitions: out };
}

/** ListOffsets: earliest, latest (the high watermark) or the first offset at a timestamp. */
function listOffsets(rm: ReplicaManager, req: ListOffsetsRequest): ListOffsetsResponse {
  if (req.partitions.length === 0) throw rillError("INVALID_REQUEST", "partitions: at least one partition is required");
  return create(ListOffsetsResponseSchema, {
    partitions: req.partitions.map((p, i) => {
      const base = { topic: p.topic, partition: p.partition };
      try {
        switch (p.spec) {
          case OffsetSpec.EARLIEST: {
            const r = rm.earliestOffset(p.topic, p.partition);
            return { ...base, offset: BigInt(r.offset), timestampMs: -1n, leaderEpoch: r.epoch };
          }
          case OffsetSpec.UNSPECIFIED:
          case OffsetSpec.LATEST: {
            const r = rm.latestOffset(p.topic, p.partition);
            return { ...base, offset: BigInt(r.offset), timestampMs: -1n, leaderEpoch: r.epoch };
          }
          case OffsetSpec.TIMESTAMP: {
            if (p.timestampMs < 0n) throw rillError("INVALID_TIMESTAMP", `partitions[${i}].timestamp_ms: ${p.timestampMs} is negative`);
            const hit = rm.offsetForTimestamp(p.topic, p.partition, Number(p.timestampMs));
            return hit
              ? { ...base, offset: BigInt(hit.offset), timestampMs: BigInt(hit.timestampMs) }
              : { ...base, offset: -1n, timestampMs: -1n };
          }
          default:
            throw rillError("INVALID_REQUEST", `partitions[${i}].spec: ${p.spec} is not EARLIEST, LATEST or TIMESTAMP`);
        }
      } catch (e) {
        return { ...base, offset: -1n, timestampMs: -1n, error: toErrorDetail(e) };
      }
    }),
  });
}

/**
 * Subscribe: follows the log end of each partition, writing whenever data arrives. A partition
 * with an error is answered once and dropped; the stream ends when none are left or the client
 * cancels.
 */
async function subscribe(
  rm: ReplicaManager,
  call: grpc.ServerWritableStream<SubscribeRequest, FetchResponseOutput>,
  pool: BufferPool,
): Promise<void> {
  const req = call.request;
  const p = plan(req.partitions, req.maxBytes, 1, req.maxWaitMs, req.format, "subscribe");
  const abort = abortOn(call);
  const idleMs = p.maxWaitMs || SUBSCRIBE_IDLE_MS;
  let positions = p.positions;
  const queue = new SendQueue<FetchResponseOutput>(call, SUBSCRIBE_QUEUED_BYTES_MAX);
  while (!abort.aborted && !rm.closed && positions.length > 0) {
    // The message's read buffers go back to the pool once grpc-js has serialized it.
    const taken: Buffer[] = [];
    const r = readAll(rm, { ...p, positions }, (size) => {
      const b = pool.take(size);
      taken.push(b);
      return b;
    });
    const giveBack = (): void => taken.forEach((b) => pool.give(b));
    if (r.bytes === 0 && r.errors === 0) {
      giveBack();
      await rm.waitForData(idleMs, abort);
      continue;
    }
    const parts: FetchedPartitionOutput[] = [];
    const next: FetchPosition[] = [];
    r.data.forEach((d, i) => {
      const pos = positions[i]!;
      if (d.error || (d.read && d.read.bytes > 0)) parts.push(output(d, pos, p.records));
      if (!d.error) next.push(d.read && d.read.bytes > 0 ? { ...pos, offset: d.read.nextOffset } : pos);
    });
    positions = next;
    queue.write({ partitions: parts }, r.bytes, giveBack);
    await queue.room(abort);
  }
  call.end();
}

/**
 * The messages of one server stream that grpc-js has not written to the connection yet,
 * counted in bytes from write() to its callback, so the writer can wait for room before it
 * reads more.
 */
export class SendQueue<T> {
  private queuedBytes = 0;
  /** write() returned false: grpc-js's buffer is full until 'drain'. */
  private blocked = false;
  private wake: (() => void) | null = null;

  constructor(
    private readonly call: { write(msg: T, cb: () => void): boolean; once(event: "drain", fn: () => void): unknown },
    private readonly maxBytes: number,
  ) {}

  /** Bytes written and not yet sent. */
  get bytes(): number {
    return this.queuedBytes;
  }

  /**
   * Hands `msg` (about `bytes` long) to grpc-js; `onSent` runs once grpc-js has serialized it
   * and written it to the connection (never, if the call is cancelled first).
   */
  write(msg: T, bytes: number, onSent?: () => void): void {
    this.queuedBytes += bytes;
    const more = this.call.write(msg, () => {
      this.queuedBytes -= bytes;
      onSent?.();
      this.notify();
    });
    if (!more && !this.blocked) {
      this.blocked = true;
      this.call.once("drain", () => {
        this.blocked = false;
        this.notify();
      });
    }
  }

  /** True while the stream takes more: fewer than maxBytes queued and no 'drain' pending. */
  get hasRoom(): boolean {
    return this.queuedBytes < this.maxBytes && !this.blocked;
  }

  /** Resolves once there is room, or when `abort` fires. */
  async room(abort: Abort): Promise<void> {
    while (!this.hasRoom && !abort.aborted) {
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        abort.onabort = resolve;
      });
    }
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }
}

/** The FetchService implementation. */
export function fetchService(rm: ReplicaManager): ServiceImplementation<typeof FetchService, typeof fetchServiceCodecs> {
  const pool = new BufferPool(SUBSCRIBE_POOL_BYTES_MAX);
  const leaders = new LeaderClients(FetchService, rm);
  return {
    fetch: unary((req: FetchRequest, call) => fetch(rm, req, call, isForwarded(call) ? null : leaders)),
    subscribe: (call) => {
      subscribe(rm, call, pool).catch((e: unknown) => call.destroy(toServiceError(e)));
    },
    listOffsets: unary((req: ListOffsetsRequest) => listOffsets(rm, req)),
  };
}
