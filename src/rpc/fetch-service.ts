/**
 * FetchService over gRPC: a thin adapter of src/service (fetch.ts, subscribe.ts,
 * list-offsets.ts), where what Fetch, Subscribe and ListOffsets mean lives. Each call decodes
 * its request into the service's domain input, calls the service and encodes the result: a
 * whole-call error becomes a gRPC status, a partition's error an ErrorDetail (errors.ts).
 *
 * - Fetch (unary long-poll): the service's `FetchForwarder` port reads partitions with no
 *   replica here from their leaders, implemented here with `LeaderClients` (forward.ts).
 * - Subscribe (server stream): the service writes into a `SubscribeSink`, here a `SendQueue`
 *   that counts the bytes handed to grpc-js and not yet written to the connection; above
 *   SUBSCRIBE_QUEUED_BYTES_MAX the service reads no more (about two messages). Its disk reads
 *   fill buffers from a pool that each message gives back once grpc-js has serialized it.
 * - Fetch and Subscribe reserve their responses' memory from the broker's `FetchMemory`
 *   (fetch.memory.max.bytes) before they read, and give it back once the response is written
 *   (Fetch: at the call's end, which grpc-js reports as 'cancelled' after the trailers; Subscribe:
 *   each message's write callback, or the stream's end). Fetch reads into the same pool.
 * - BATCHES chunks are copied once, into the response (wire-codec.ts); RECORDS become
 *   ConsumedRecord messages.
 */
import type { InternalClients } from "./internal-clients.ts";
import { create } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import {
  ConsumedRecordSchema,
  IsolationLevel as ProtoIsolationLevel,
  OffsetSpec,
  TimestampType as ProtoTimestampType,
  type ConsumedRecord,
} from "../gen/rill/v1/common_pb.ts";
import { rillError } from "../base/errors.ts";
import type { ConsumeRemote } from "../service/consume-session.ts";
import {
  FetchRequestSchema,
  FetchService,
  ListOffsetsResponseSchema,
  type FetchPartition,
  type FetchedPartition,
  type FetchRequest,
  type FetchResponse,
  type ListOffsetsRequest,
  type ListOffsetsResponse,
  ListOffsetsRequestSchema,
  type SubscribeRequest,
} from "../gen/rill/v1/fetch_service_pb.ts";
import { TimestampType } from "../protocol/record-batch.ts";
import type { ReplicaManager } from "../replication/replica-manager.ts";
import { type FetchMemory, UNBOUNDED_FETCH_MEMORY, fetch } from "../service/fetch.ts";
import { decodeFetchedRecords } from "../service/fetch-records.ts";
import { FetchedRecords } from "../service/fetched-records.ts";
import type {
  Cancellation,
  FetchForwarder,
  FetchInput,
  FetchPartitionInput,
  FetchPartitionResult,
  ListOffsetsPartitionInput,
  FetchResult,
  FetchedRecord,
  ListedOffset,
} from "../service/fetch-types.ts";
import { listOffsets } from "../service/list-offsets.ts";
import { subscribe } from "../service/subscribe.ts";
import { BufferPool } from "./buffer-pool.ts";
import { rillErrorFromDetail as fromErrorDetail } from "../protocol/grpc-errors.ts";
import { toErrorDetail, toServiceError, unary } from "./errors.ts";
import type { Requester } from "../security/requester.ts";
import { requesterOf } from "./call-context.ts";
import { LeaderClients, isForwarded } from "./forward.ts";
import { RequestAccess } from "../service/authorize.ts";
import { Access } from "../service/access.ts";
import type { ServiceImplementation } from "./grpc-service.ts";
import { type QuotaThrottle, fetchResultBytes, throttled } from "../service/quota-throttle.ts";
import type { FetchResponseOutput, FetchedPartitionOutput, fetchServiceCodecs } from "./wire-codec.ts";

export { FETCH_MAX_BYTES_DEFAULT, PARTITION_MAX_BYTES_DEFAULT } from "../service/fetch.ts";

/**
 * Bytes of a Subscribe stream's messages handed to grpc-js and not yet written to the
 * connection, above which the stream reads no more: the message being sent plus about one
 * ready behind it (a single larger message still goes). Without it grpc-js's object-mode
 * Writable buffers 16 messages before write() returns false, each holding its read buffers.
 */
export const SUBSCRIBE_QUEUED_BYTES_MAX = 8 * 1024 * 1024;
/** Idle read buffers kept for Subscribe streams to reuse (all streams of one broker together). */
const SUBSCRIBE_POOL_BYTES_MAX = 32 * 1024 * 1024;

/** The FetchService implementation; `clients`: the broker's shared internal clients (its own otherwise). */
export function fetchService(
  rm: ReplicaManager,
  clients?: InternalClients,
  memory: FetchMemory = UNBOUNDED_FETCH_MEMORY,
  quotas?: QuotaThrottle,
  access: RequestAccess = new RequestAccess(Access.allowAll()),
): ServiceImplementation<typeof FetchService, typeof fetchServiceCodecs> {
  const pool = new BufferPool(SUBSCRIBE_POOL_BYTES_MAX);
  const leaders = new LeaderClients(FetchService, rm, clients);
  return {
    fetch: unary(async (req: FetchRequest, call) => {
      const asked = toFetchInput(req);
      // Partitions of topics the caller may not READ are answered TOPIC_AUTHORIZATION_FAILED.
      const split = access.fetchPartitions(requesterOf(call), asked.partitions);
      if (!split.all && split.allowed.length === 0) return toFetchOutput({ partitions: split.merge([]) });
      const input = split.all ? asked : { ...asked, partitions: split.allowed };
      const cancel = abortOn(call);
      const forwarded = isForwarded(call);
      // Forwarded for this caller: the leader checks the caller's permissions, not this node's.
      const forwarder = forwarded ? null : fetchForwarder(leaders, requesterOf(call));
      // Client quotas (issue 13): a forwarded call was counted where the client sent it.
      const run = () => fetch(rm, input, cancel, forwarder, memory, pool);
      const { answer: read, throttleTimeMs } = await throttled(
        forwarded ? undefined : quotas,
        () => requesterOf(call),
        "consume",
        run,
        fetchResultBytes,
      );
      // grpc-js emits 'cancelled' when a call ends, whether cancelled or answered (after the
      // response was written and the trailers sent): the response's memory is free from then.
      if (cancel.aborted) read.release();
      else call.once("cancelled", read.release);
      return { ...toFetchOutput(split.all ? read : { partitions: split.merge(read.partitions) }), throttleTimeMs };
    }),
    subscribe: (call) => {
      // grpc-js sends a streaming call's status when the handler emits 'error' (destroy sends none).
      serveSubscribe(rm, call, pool, memory, access, quotas && !isForwarded(call) ? quotas : undefined).catch((e: unknown) =>
        call.emit("error", toServiceError(e)),
      );
    },
    listOffsets: unary(async (req: ListOffsetsRequest, call) => {
      const split = access.listOffsets(requesterOf(call), req.partitions);
      const local = split.all || split.allowed.length > 0 ? listOffsets(rm, split.allowed, req.isolationLevel) : [];
      // Partitions with no replica here are looked up at their leaders (any broker answers any
      // request); a forwarded call is answered here only.
      const answered = isForwarded(call)
        ? local
        : await withLeaders(leaders, rm, split.allowed, local, req.isolationLevel, requesterOf(call));
      return toListOffsetsResponse(split.merge(answered));
    }),
  };
}

/** Subscribe: the service writes into a SendQueue over the call; the stream ends with it. */
async function serveSubscribe(
  rm: ReplicaManager,
  call: grpc.ServerWritableStream<SubscribeRequest, FetchResponseOutput>,
  pool: BufferPool,
  memory: FetchMemory,
  access: RequestAccess,
  quotas?: QuotaThrottle,
): Promise<void> {
  const req = call.request;
  const input = {
    partitions: req.partitions.map(toFetchPartitionInput),
    maxBytes: req.maxBytes,
    maxWaitMs: req.maxWaitMs,
    format: req.format,
    isolationLevel: req.isolationLevel,
  };
  const who = requesterOf(call);
  access.fetch(who, "FetchService/Subscribe", input.partitions);
  const topics = [...new Set(input.partitions.map((p) => p.topic))];
  const cancel = abortOn(call);
  let revoked = false;
  // A permission removed while the stream is open ends it with the denial.
  const unwatch = access.access.watch(
    who,
    "FetchService/Subscribe",
    () => ({ TOPIC: topics }),
    (e) => {
      revoked = true;
      cancel.aborted = true;
      cancel.onabort?.();
      call.emit("error", toServiceError(e));
    },
  );
  call.on("close", unwatch);
  const queue = new SendQueue<FetchResponseOutput>(call, SUBSCRIBE_QUEUED_BYTES_MAX);
  // Client quotas (issue 13): over quota, the stream pushes nothing for the throttle time.
  const pause = quotas?.streamPause();
  const sink = {
    send: (message: FetchResult, bytes: number, onSent: () => void) => {
      const throttleTimeMs = quotas ? quotas.record(who, "consume", () => fetchResultBytes(message)) : 0;
      pause?.pause(
        throttleTimeMs,
        () => {},
        () => {},
      );
      queue.write({ ...toFetchOutput(message), throttleTimeMs }, bytes, onSent);
    },
    room: async (cancel: Cancellation) => {
      await queue.room(cancel);
      const left = pause?.leftMs() ?? 0;
      if (quotas && left > 0) await quotas.sleep(left, cancel);
    },
  };
  try {
    await subscribe(rm, input, sink, cancel, pool, memory);
  } finally {
    unwatch();
    pause?.cancel();
  }
  if (!revoked) call.end();
}

/** A Cancellation set when the call is cancelled. */
function abortOn(call: { on(event: "cancelled", fn: () => void): unknown }): Cancellation {
  const a: Cancellation = { aborted: false, onabort: null };
  call.on("cancelled", () => {
    a.aborted = true;
    a.onabort?.();
  });
  return a;
}

/**
 * A Consume session's reads at partition leaders (its `ConsumeRemote` port) over gRPC: the
 * leader's FetchService.Fetch and ListOffsets, marked forwarded, on behalf of `requester`.
 */
export function consumeRemote(leaders: LeaderClients<typeof FetchService>, requester: Requester): ConsumeRemote {
  return {
    fetch: fetchForwarder(leaders, requester).fetch,
    listOffsets: async (leader, partitions, readCommitted, cancel) => {
      const req = create(ListOffsetsRequestSchema, {
        partitions: partitions.map((p) => ({
          topic: p.topic,
          partition: p.partition,
          spec: p.spec === "earliest" ? OffsetSpec.EARLIEST : p.spec === "latest" ? OffsetSpec.LATEST : OffsetSpec.TIMESTAMP,
          timestampMs: typeof p.spec === "object" ? BigInt(p.spec.timestampMs) : 0n,
        })),
        isolationLevel: readCommitted ? ProtoIsolationLevel.READ_COMMITTED : ProtoIsolationLevel.READ_UNCOMMITTED,
      });
      const res = await leaders.call<ListOffsetsResponse>(leader, "listOffsets", req, 0, requester, cancel);
      return partitions.map((_, i) => {
        const p = res.partitions[i];
        if (!p) return { offset: -1, error: rillError("NOT_LEADER_OR_FOLLOWER", "the leader answered no offset for this partition") };
        return { offset: Number(p.offset), error: p.error ? fromErrorDetail(p.error) : null };
      });
    },
  };
}

/** The service's FetchForwarder over gRPC: the leader's FetchService.Fetch, marked forwarded. */
export function fetchForwarder(leaders: LeaderClients<typeof FetchService>, requester: Requester): FetchForwarder {
  return {
    fetch: async (leader, input, cancel) => {
      const res = await leaders.call<FetchResponse>(leader, "fetch", toFetchRequest(input), input.maxWaitMs, requester, cancel);
      return { partitions: res.partitions.map(fromFetchedPartition) };
    },
  };
}

function toFetchPartitionInput(p: FetchPartition): FetchPartitionInput {
  const base = { topic: p.topic, partition: p.partition, offset: p.offset, maxBytes: p.maxBytes };
  return p.currentLeaderEpoch === undefined ? base : { ...base, currentLeaderEpoch: p.currentLeaderEpoch };
}

/** The domain input of a FetchRequest. */
export function toFetchInput(req: FetchRequest): FetchInput {
  return {
    partitions: req.partitions.map(toFetchPartitionInput),
    maxWaitMs: req.maxWaitMs,
    minBytes: req.minBytes,
    maxBytes: req.maxBytes,
    format: req.format,
    isolationLevel: req.isolationLevel,
    clientRack: req.rackId,
  };
}

/** The FetchRequest that passes `input` on to another broker. */
function toFetchRequest(input: FetchInput): FetchRequest {
  return create(FetchRequestSchema, {
    partitions: input.partitions.map((p) => ({
      topic: p.topic,
      partition: p.partition,
      offset: p.offset,
      maxBytes: p.maxBytes,
      ...(p.currentLeaderEpoch === undefined ? {} : { currentLeaderEpoch: p.currentLeaderEpoch }),
    })),
    maxWaitMs: input.maxWaitMs,
    minBytes: input.minBytes,
    maxBytes: input.maxBytes,
    format: input.format,
    isolationLevel: input.isolationLevel,
    rackId: input.clientRack ?? "",
  });
}

/** What the wire codec encodes for a fetch result (FetchResponse and SubscribeResponse alike). */
export function toFetchOutput(res: FetchResult): FetchResponseOutput {
  return { partitions: res.partitions.map(toPartitionOutput) };
}

function toPartitionOutput(p: FetchPartitionResult): FetchedPartitionOutput {
  return {
    topic: p.topic,
    partition: p.partition,
    highWatermark: p.highWatermark,
    logStartOffset: p.logStartOffset,
    lastStableOffset: p.lastStableOffset,
    nextOffset: p.nextOffset,
    ...(p.error ? { error: toErrorDetail(p.error) } : {}),
    ...(p.records ? { fetchedRecords: p.records } : {}),
    ...(p.batches ? { recordBatches: p.batches } : {}),
    ...(p.abortedTransactions ? { abortedTransactions: p.abortedTransactions } : {}),
    ...(p.preferredReadReplica !== undefined ? { preferredReadReplica: p.preferredReadReplica } : {}),
  };
}

/** A partition another broker answered (a forwarded fetch). */
function fromFetchedPartition(p: FetchedPartition): FetchPartitionResult {
  return {
    topic: p.topic,
    partition: p.partition,
    highWatermark: Number(p.highWatermark),
    logStartOffset: Number(p.logStartOffset),
    lastStableOffset: Number(p.lastStableOffset),
    nextOffset: Number(p.nextOffset),
    error: p.error ? fromErrorDetail(p.error) : null,
    records: p.records.length > 0 ? FetchedRecords.of(p.records.map(fromConsumedRecord)) : null,
    batches: p.recordBatches.length > 0 ? [p.recordBatches] : null,
    abortedTransactions: p.abortedTransactions.map((a) => ({ producerId: Number(a.producerId), firstOffset: Number(a.firstOffset) })),
    ...(p.preferredReadReplica !== undefined ? { preferredReadReplica: p.preferredReadReplica } : {}),
  };
}

/** A fetched record as a ConsumedRecord of `topic`-`partition`. */
export function toConsumedRecord(topic: string, partition: number, r: FetchedRecord): ConsumedRecord {
  return create(ConsumedRecordSchema, {
    topic,
    partition,
    offset: BigInt(r.offset),
    timestampMs: BigInt(r.timestampMs),
    timestampType: r.timestampType === TimestampType.LOG_APPEND_TIME ? ProtoTimestampType.LOG_APPEND_TIME : ProtoTimestampType.CREATE_TIME,
    leaderEpoch: r.leaderEpoch,
    ...(r.key !== null ? { key: r.key } : {}),
    ...(r.value !== null ? { value: r.value } : {}),
    headers: r.headers.map((h) => ({ key: h.key, ...(h.value !== null ? { value: h.value } : {}) })),
  });
}

function fromConsumedRecord(r: ConsumedRecord): FetchedRecord {
  return {
    offset: Number(r.offset),
    timestampMs: Number(r.timestampMs),
    timestampType: r.timestampType === ProtoTimestampType.LOG_APPEND_TIME ? TimestampType.LOG_APPEND_TIME : TimestampType.CREATE_TIME,
    leaderEpoch: r.leaderEpoch,
    key: r.key ?? null,
    value: r.value ?? null,
    headers: r.headers.map((h) => ({ key: h.key, value: h.value ?? null })),
  };
}

/** Materialises the records at or after `from` (thin clients' RECORDS format). */
export function decodeFetched(topic: string, partition: number, chunks: readonly Buffer[], from: number): ConsumedRecord[] {
  return decodeFetchedRecords(chunks, from).map((r) => toConsumedRecord(topic, partition, r));
}

/**
 * `local` (the answers read here, one per partition of `asked`) with the partitions that have no
 * replica here answered by their leaders instead: one ListOffsets per leader, marked forwarded. A
 * follower answers from its own log (its log start offset, and its own high watermark, which may
 * lag the leader's by a replication round). A leader that cannot be reached leaves its
 * partitions' local answers (NOT_LEADER_OR_FOLLOWER).
 */
async function withLeaders(
  leaders: LeaderClients<typeof FetchService>,
  rm: ReplicaManager,
  asked: readonly ListOffsetsPartitionInput[],
  local: readonly ListedOffset[],
  isolationLevel: ListOffsetsRequest["isolationLevel"],
  requester: Requester,
): Promise<readonly ListedOffset[]> {
  const byLeader = new Map<number, number[]>();
  asked.forEach((p, i) => {
    const st = rm.image.topics.get(p.topic)?.partitions[p.partition];
    if (!st || st.leader < 0 || st.leader === rm.nodeIdOf() || rm.replica(p.topic, p.partition) !== undefined) return;
    const list = byLeader.get(st.leader) ?? [];
    list.push(i);
    byLeader.set(st.leader, list);
  });
  if (byLeader.size === 0) return local;
  const out = [...local];
  await Promise.all(
    [...byLeader].map(async ([leader, idx]) => {
      try {
        const res = await leaders.call<ListOffsetsResponse>(
          leader,
          "listOffsets",
          create(ListOffsetsRequestSchema, {
            partitions: idx.map((i) => {
              const p = asked[i]!;
              return {
                topic: p.topic,
                partition: p.partition,
                spec: p.spec,
                timestampMs: p.timestampMs,
              };
            }),
            isolationLevel,
          }),
          0,
          requester,
        );
        idx.forEach((i, k) => {
          const p = res.partitions[k];
          if (p)
            out[i] = {
              topic: p.topic,
              partition: p.partition,
              offset: Number(p.offset),
              timestampMs: Number(p.timestampMs),
              leaderEpoch: p.leaderEpoch,
              error: p.error ? fromErrorDetail(p.error) : null,
            };
        });
      } catch {
        // keep the local answers: the client refreshes its metadata and asks again
      }
    }),
  );
  return out;
}

function toListOffsetsResponse(offsets: readonly ListedOffset[]): ListOffsetsResponse {
  return create(ListOffsetsResponseSchema, {
    partitions: offsets.map((o) => ({
      topic: o.topic,
      partition: o.partition,
      offset: BigInt(o.offset),
      timestampMs: BigInt(o.timestampMs),
      ...(o.leaderEpoch !== null ? { leaderEpoch: o.leaderEpoch } : {}),
      ...(o.error ? { error: toErrorDetail(o.error) } : {}),
    })),
  });
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

  /**
   * Resolves once there is room, or when `abort` fires; never before the event loop has had a
   * turn. With room at once, the writer would otherwise go from message to message in
   * microtasks until `maxBytes` were queued: a Subscribe of RECORDS catching up from offset 0
   * encoded ~8 MiB in one go and held the broker 1.1–1.5 s (issue 14's soak: other calls and
   * /metrics unanswered, produce p99 in seconds), its cancellation unseen until then.
   */
  async room(abort: Cancellation): Promise<void> {
    let yielded = false;
    while (!this.hasRoom && !abort.aborted) {
      yielded = true;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        abort.onabort = resolve;
      });
    }
    if (!yielded) await new Promise<void>((resolve) => setImmediate(resolve));
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }
}
