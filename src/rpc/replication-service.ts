/**
 * ReplicationService (leader side) and the follower's gRPC transport for it.
 *
 * ReplicaFetch is a long-lived bidirectional stream: each request is answered by exactly one
 * response, in order. The leader reads each partition from the follower's log end offset
 * (batches exactly as stored, never decoded), records the follower's progress (which moves the
 * high watermark and decides ISR membership), and long-polls up to `max_wait_ms` when nothing is
 * new. A follower whose log diverges gets `diverging_epoch` and truncates before asking again.
 * A request that arrives while the previous one long-polls ends that long-poll (the previous is
 * answered at once, still in order): a follower that starts following another partition of this
 * leader asks again at once instead of waiting up to its `max_wait_ms` (fetcher.ts).
 *
 * Each response reserves its memory from the broker's `FetchMemory` (fetch.memory.max.bytes,
 * the budget of Fetch and Consume too) before it reads, and gives it back once written. A
 * response carries at most a share of the budget (it sends less); when the budget is spent the
 * leader waits in line for room as long as the stream lives (a follower is slowed, never failed).
 * A first batch larger than that share is still sent whole (the budget grants it alone).
 */
import { create } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { type RillError, rillError } from "../base/errors.ts";
import { type DetailLike, rillErrorFromDetail } from "../protocol/grpc-errors.ts";
import {
  OffsetsForLeaderEpochResponseSchema,
  ReplicaFetchRequestSchema,
  ReplicationService,
  type ReplicaFetchRequest,
  type ReplicaFetchResponse,
  type ReplicaFetchResponse_Partition,
} from "../gen/rill/v1/replication_service_pb.ts";
import type {
  FetchPartitionResponse,
  ReplicaFetchAnswer,
  ReplicaFetchRound,
  ReplicaFetchSession,
  ReplicaFetchTransport,
} from "../replication/fetcher.ts";
import type { ReplicaManager } from "../replication/replica-manager.ts";
import type { PartitionReplica } from "../replication/partition-replica.ts";
import { asBuffer, type ServiceClient } from "../protocol/grpc-service.ts";
import { crashOnBug, fromPeerError, toErrorDetail, toServiceError, unary } from "./errors.ts";
import type { ServiceImplementation } from "./grpc-service.ts";
import type { Reservation } from "../base/memory-budget.ts";
import { FETCH_MEMORY_WAIT_MS, type FetchMemory, RESPONSE_COPIES, UNBOUNDED_FETCH_MEMORY } from "../service/fetch.ts";
import { offsetsForLeaderEpoch } from "../service/leader-epoch.ts";
import { type TxnInternalDeps, txnInternalHandlers } from "./txn-rpc.ts";
import type { MemberSigner } from "../security/member-auth.ts";
import { InternalClients } from "./internal-clients.ts";
import { BufferPool } from "./buffer-pool.ts";
import type { ReplicaFetchPartitionOutput, ReplicaFetchResponseOutput, replicationServiceCodecs } from "./replica-fetch-codec.ts";
import { LeaderFetchSession, type QuietRead, type SessionPartition } from "../replication/fetch-session.ts";

/** Longest long-poll a follower may ask for. */
const MAX_WAIT_MS_MAX = 30_000;
/** Bytes read per partition per round (Kafka's replica.fetch.max.bytes). */
const PARTITION_MAX_BYTES = 1 << 20;
/** Response budget when the follower gives none (Kafka's replica.fetch.response.max.bytes). */
const RESPONSE_MAX_BYTES_DEFAULT = 10 << 20;

type Abort = { aborted: boolean; onabort?: (() => void) | null };

/** `bytes` of `memory`, waiting in line as long as it takes (null: aborted or shut down). */
async function reserveWaiting(rm: ReplicaManager, memory: FetchMemory, bytes: number, abort: Abort): Promise<Reservation | null> {
  const now = memory.budget.tryReserve(bytes);
  if (now) return now;
  while (!abort.aborted && !rm.closed) {
    const r = await memory.budget.reserve(bytes, FETCH_MEMORY_WAIT_MS, abort);
    if (r) return r;
  }
  return null;
}

/**
 * The leader's state a read of `p` saw when it found nothing to send (`SessionPartition.quiet`):
 * the follower stood at this leader's log end, and no error, divergence or throttle. Until the
 * replica, its epochs, replica set, log end or log start move (or this broker stops leading as it did), the
 * same read of the same position finds the same, so it is not done again: a long-poll that
 * wakes (an append or a high watermark anywhere on this broker) skips the partition, and a later
 * request of the session that does not list it only records the follower's fetch
 * (`recordFollowerFetch`, once per request, as Kafka records a follower's fetch once per
 * request, not at every check of its delayed fetch). Null: read it.
 */
function quietNow(rm: ReplicaManager, p: SessionPartition): QuietRead | null {
  const r = rm.replica(p.topic, p.partition);
  if (r === undefined || r.role !== "leader" || p.fetchOffset !== r.log.logEndOffset) return null;
  return {
    replica: r,
    leaderEpoch: r.leaderEpoch,
    partitionEpoch: r.partitionEpoch,
    replicas: r.replicas,
    logEnd: r.log.logEndOffset,
    logStart: r.log.logStartOffset,
  };
}

/** The replica of `p` when nothing its quiet read saw has moved (the same read would find nothing again), else null. */
function stillQuiet(rm: ReplicaManager, p: SessionPartition): PartitionReplica | null {
  const q = p.quiet;
  if (q === null) return null;
  const r = q.replica;
  return rm.leading &&
    rm.replica(p.topic, p.partition) === r &&
    r.role === "leader" &&
    r.leaderEpoch === q.leaderEpoch &&
    r.partitionEpoch === q.partitionEpoch &&
    r.replicas === q.replicas &&
    r.log.logEndOffset === q.logEnd &&
    r.log.logStartOffset === q.logStart
    ? r
    : null;
}

/** Bytes of batches a round of `partitions` will read at most, within `budget` (0: nothing new); quiet ones are skipped. */
function sizeRound(rm: ReplicaManager, partitions: readonly SessionPartition[], budget: number): number {
  let left = budget;
  let bytes = 0;
  for (const p of partitions) {
    if (left <= 0) break;
    if (stillQuiet(rm, p) !== null) continue;
    try {
      const size = rm.readLog(p.topic, p.partition).readSize(p.fetchOffset, Math.min(PARTITION_MAX_BYTES, left));
      bytes += size;
      left -= size;
    } catch {
      // The read answers the partition's error.
    }
  }
  return bytes;
}

/**
 * A response and what it holds until written: its memory (null: none) and the pooled buffers its
 * disk reads filled (`release` gives both back: call it in the write's callback, once grpc-js
 * has copied the response into its frame, or when it is never written).
 */
interface HeldResponse {
  readonly res: ReplicaFetchResponseOutput;
  readonly held: Reservation | null;
  readonly release: () => void;
}

/** Idle read buffers the replica fetch streams of one broker keep for their disk reads. */
const REPLICA_FETCH_POOL_BYTES_MAX = 16 * 1024 * 1024;

/**
 * Answers one ReplicaFetch request (long-polling up to its max_wait_ms; `abort` ends the
 * long-poll: the stream's end, or its next request); exported for the cluster simulator
 * (test/sim/cluster-sim). `session`: the stream's fetch session (fetch-session.ts); without one,
 * a full request is answered as such and an incremental one fails.
 */
export async function answer(
  rm: ReplicaManager,
  req: ReplicaFetchRequest,
  abort: Abort,
  memory: FetchMemory,
  pool?: BufferPool,
  session: LeaderFetchSession = new LeaderFetchSession(),
): Promise<HeldResponse> {
  if (req.maxWaitMs < 0 || req.maxWaitMs > MAX_WAIT_MS_MAX)
    throw rillError("INVALID_REQUEST", `max_wait_ms: ${req.maxWaitMs} is not in [0, ${MAX_WAIT_MS_MAX}]`);
  if (req.maxBytes < 0) throw rillError("INVALID_REQUEST", `max_bytes: ${req.maxBytes} is negative`);
  if (req.replicaId < 0) throw rillError("INVALID_REQUEST", `replica_id: ${req.replicaId} is negative`);
  const round = session.accept({
    replicaId: req.replicaId,
    sessionEpoch: req.sessionEpoch,
    incremental: req.incremental,
    partitions: req.partitions.map((p) => ({
      topic: p.topic,
      partition: p.partition,
      fetchOffset: Number(p.fetchOffset),
      lastFetchedEpoch: p.lastFetchedEpoch,
      currentLeaderEpoch: p.currentLeaderEpoch,
      logStartOffset: Number(p.logStartOffset),
    })),
    forgotten: req.forgottenPartitions,
  });
  const sessionKept = round.epoch > 0;
  const share = Math.min(memory.responseBytesMax, Math.floor(memory.budget.bytesMax / RESPONSE_COPIES));
  const budget = Math.max(1, Math.min(req.maxBytes > 0 ? req.maxBytes : RESPONSE_MAX_BYTES_DEFAULT, share));
  const deadline = rm.nowMs() + req.maxWaitMs;
  const taken: Buffer[] = [];
  const alloc = pool
    ? (size: number): Buffer => {
        const b = pool.take(size);
        taken.push(b);
        return b;
      }
    : undefined;
  const giveBack = (): void => {
    if (pool) for (const b of taken.splice(0)) pool.give(b);
  };
  const holding = (held: Reservation | null): (() => void) => {
    const mine = taken.splice(0);
    return () => {
      held?.release();
      if (pool) for (const b of mine.splice(0)) pool.give(b);
    };
  };
  const brokerEpoch = Number(req.brokerEpoch);
  // The first pass over the round records the follower's fetch of every partition; later ones
  // (a long-poll woken) only read what moved (`quietNow`).
  let firstPass = true;
  for (;;) {
    // Sized before it reads (from the logs' cache entries and batch headers), reserved, then read
    // within what was reserved.
    const sized = sizeRound(rm, round.partitions, budget);
    let held = sized > 0 ? await reserveWaiting(rm, memory, sized * RESPONSE_COPIES, abort) : null;
    if (sized > 0 && !held) return { res: { partitions: [], sessionKept }, held: null, release: () => {} };
    let left = held ? Math.min(budget, Math.floor(held.bytes / RESPONSE_COPIES)) : budget;
    let bytes = 0;
    let stop = false;
    let throttled = false; // reassignment (issue 21): a throttled replica was held back this round
    // A full round lists every partition; an incremental one those with something new
    // (`listed`: their session entries, to remember what the answer said once it is final).
    const partitions: ReplicaFetchPartitionOutput[] = [];
    const listed: SessionPartition[] = [];
    for (const p of round.partitions) {
      const same = stillQuiet(rm, p);
      if (same !== null) {
        // Nothing to read: the follower's fetch counts (once per request), the answer lists the
        // partition if the high watermark or log start moved since the last answer told it.
        if (firstPass) rm.recordFollowerFetch(req.replicaId, same, p.fetchOffset, brokerEpoch);
        const highWatermark = Math.max(same.hw, 0);
        const logStartOffset = Math.max(same.log.logStartOffset, 0);
        if (round.full || LeaderFetchSession.lists(p, highWatermark, logStartOffset, false)) {
          partitions.push({ topic: p.topic, partition: p.partition, highWatermark, logStartOffset, recordBatches: [] });
          listed.push(p);
        }
        continue;
      }
      const r = rm.fetchForFollower(req.replicaId, {
        topic: p.topic,
        partition: p.partition,
        fetchOffset: p.fetchOffset,
        lastFetchedEpoch: p.lastFetchedEpoch,
        currentLeaderEpoch: p.currentLeaderEpoch,
        maxBytes: Math.max(0, Math.min(PARTITION_MAX_BYTES, left)),
        brokerEpoch,
        alloc,
      });
      // The tail cache's slices or the disk read's buffer, as they are: the encoder copies them once.
      const chunks = r.read && r.read.bytes > 0 ? r.read.chunks : [];
      const n = r.read?.bytes ?? 0;
      left -= n;
      bytes += n;
      if (r.error || r.diverging) stop = true;
      if (r.throttled) throttled = true;
      const highWatermark = Math.max(r.highWatermark, 0);
      const logStartOffset = Math.max(r.logStartOffset, 0);
      const nothing = n === 0 && r.error === null && r.diverging === null && r.throttled !== true;
      p.quiet = nothing ? quietNow(rm, p) : null;
      if (!round.full && !LeaderFetchSession.lists(p, highWatermark, logStartOffset, !nothing)) continue;
      partitions.push({
        topic: p.topic,
        partition: p.partition,
        highWatermark,
        logStartOffset,
        recordBatches: chunks,
        error: r.error ? toErrorDetail(r.error) : undefined,
        divergingEpoch: r.diverging ? { epoch: r.diverging.epoch, endOffset: r.diverging.endOffset } : undefined,
      });
      listed.push(p);
    }
    firstPass = false;
    const res: ReplicaFetchResponseOutput = { partitions, sessionKept };
    if (held && bytes * RESPONSE_COPIES <= held.bytes) held.shrink(bytes * RESPONSE_COPIES);
    else if (bytes > 0) {
      // More came than was sized (appended meanwhile): account for it before sending it.
      held?.release();
      held = await reserveWaiting(rm, memory, bytes * RESPONSE_COPIES, abort);
    }
    const now = rm.nowMs();
    if (bytes > 0 || stop || now >= deadline || abort.aborted || rm.closed) {
      listed.forEach((p, i) => session.answered(round, p, partitions[i]!.highWatermark, partitions[i]!.logStartOffset));
      return { res, held, release: holding(held) };
    }
    held?.release();
    giveBack();
    // A throttled replica held back is served again once the throttle allows it, not only on an append.
    const throttleWaitMs = throttled && rm.leaderThrottle ? Math.max(1, rm.leaderThrottle.waitMs()) : Number.POSITIVE_INFINITY;
    await rm.waitForData(Math.min(deadline - now, throttleWaitMs), abort);
  }
}

/** The ReplicationService implementation. */
export function replicationService(
  rm: ReplicaManager,
  memory: FetchMemory = UNBOUNDED_FETCH_MEMORY,
  txn: TxnInternalDeps | null = null,
): ServiceImplementation<typeof ReplicationService, typeof replicationServiceCodecs> {
  const pool = new BufferPool(REPLICA_FETCH_POOL_BYTES_MAX);
  return {
    replicaFetch: (call: grpc.ServerDuplexStream<ReplicaFetchRequest, ReplicaFetchResponseOutput>) => {
      let chain: Promise<void> = Promise.resolve();
      // The stream is the follower's fetch session (fetch-session.ts): its requests are answered in order.
      const session = new LeaderFetchSession();
      // The stream's end; each request has a signal of its own (`live` while received and not
      // yet answered), which the stream's end and the next request both raise.
      const abort: Abort = { aborted: false, onabort: null };
      const live = new Set<Abort>();
      const end = (signal: Abort): void => {
        signal.aborted = true;
        signal.onabort?.();
      };
      const abortAll = (): void => {
        abort.aborted = true;
        for (const signal of live) end(signal);
      };
      const stopListening = rm.onClose(() => {
        abortAll();
        if (call.writable) call.end();
      });
      // Responses grpc-js never wrote give their memory and buffers back when the stream ends.
      const unsent = new Set<() => void>();
      // `releaseUnsent` false: responses still queued in grpc-js will be serialized (their chunks
      // read) when the stream flushes, so they give their buffers back in their write callbacks.
      const stop = (releaseUnsent = true): void => {
        if (releaseUnsent) {
          for (const release of unsent) release();
          unsent.clear();
        }
        abortAll();
        stopListening();
      };
      call.on("data", (req: ReplicaFetchRequest) => {
        // A request that comes while earlier ones are unanswered ends their long-polls: they are
        // answered at once with what they have (in order, one response each), and this one
        // waits in its turn. A follower sends it when it starts following a partition its
        // outstanding fetch does not ask for (fetcher.ts); it drops the earlier answers.
        for (const signal of live) end(signal);
        const signal: Abort = { aborted: abort.aborted, onabort: null };
        live.add(signal);
        chain = chain.then(async () => {
          try {
            if (abort.aborted) return;
            const { res, release } = await answer(rm, req, signal, memory, pool, session);
            if (!abort.aborted && call.writable) {
              // The response's chunks (pooled buffers among them) stay untouched until grpc-js
              // has copied it into its frame: they go back in the write's callback only.
              unsent.add(release);
              call.write(res, () => {
                if (unsent.delete(release)) release();
              });
            } else release();
          } catch (e) {
            crashOnBug(e);
            abortAll();
            call.emit("error", toServiceError(e));
          } finally {
            live.delete(signal);
          }
        });
      });
      call.on("end", () => {
        void chain.then(() => {
          stop(false);
          if (call.writable) call.end();
        });
      });
      // Cancelled or failed, grpc-js serializes nothing more: what was not written is given back.
      call.on("cancelled", () => stop());
      call.on("error", () => stop());
      call.on("close", () => stop());
    },
    offsetsForLeaderEpoch: unary((req) => {
      if (req.replicaId < 0) throw rillError("INVALID_REQUEST", `replica_id: ${req.replicaId} is negative`);
      return create(OffsetsForLeaderEpochResponseSchema, {
        partitions: offsetsForLeaderEpoch(rm, req.partitions).map((e) =>
          e.error
            ? { topic: e.topic, partition: e.partition, error: toErrorDetail(e.error) }
            : { topic: e.topic, partition: e.partition, end: { epoch: e.epoch, endOffset: BigInt(e.endOffset) } },
        ),
      });
    }),
    // transactions (issue 17): the coordinator's markers and the leaders' produce gate
    ...txnInternalHandlers(() => txn),
  };
}

function fromDetail(d: DetailLike | undefined): RillError | null {
  return d ? rillErrorFromDetail(d) : null;
}

/**
 * The follower's view of a decoded ReplicaFetchResponse: each partition's `recordBatches` a view
 * of the received message (protobuf-es decodes `bytes` as a subarray), appended as it is.
 * Exported for the cluster simulator, whose followers decode the real bytes too.
 */
export function fromReplicaFetchResponse(res: ReplicaFetchResponse): ReplicaFetchAnswer {
  return { partitions: res.partitions.map(fromPartition), sessionKept: res.sessionKept };
}

function fromPartition(p: ReplicaFetchResponse_Partition): FetchPartitionResponse {
  return {
    topic: p.topic,
    partition: p.partition,
    highWatermark: Number(p.highWatermark),
    logStartOffset: Number(p.logStartOffset),
    recordBatches: asBuffer(p.recordBatches),
    error: fromDetail(p.error),
    diverging: p.divergingEpoch ? { epoch: p.divergingEpoch.epoch, endOffset: Number(p.divergingEpoch.endOffset) } : null,
  };
}

/** The protobuf request of one fetch round (the gRPC transport's, and the cluster simulator's). */
export function toReplicaFetchRequest(req: ReplicaFetchRound): ReplicaFetchRequest {
  return create(ReplicaFetchRequestSchema, {
    replicaId: req.replicaId,
    brokerEpoch: BigInt(Math.max(req.brokerEpoch, -1)),
    maxWaitMs: req.maxWaitMs,
    minBytes: 1,
    maxBytes: req.maxBytes,
    partitions: req.partitions.map((p) => ({ ...p, fetchOffset: BigInt(p.fetchOffset), logStartOffset: BigInt(p.logStartOffset) })),
    sessionEpoch: req.sessionEpoch,
    incremental: req.incremental,
    forgottenPartitions: req.forgotten.map((f) => ({ topic: f.topic, partition: f.partition })),
  });
}

/** A ReplicaFetch stream to one leader. */
class GrpcFetchSession implements ReplicaFetchSession {
  private readonly call: grpc.ClientDuplexStream<ReplicaFetchRequest, ReplicaFetchResponse>;
  private readonly pending: Array<{ resolve: (r: ReplicaFetchResponse) => void; reject: (e: Error) => void }> = [];
  private failed: Error | null = null;

  /** @param release called by `close()` after the stream is cancelled (closes a channel of its own). */
  constructor(
    client: ServiceClient<typeof ReplicationService>,
    private readonly release: () => void,
  ) {
    this.call = client.replicaFetch();
    this.call.on("data", (res: ReplicaFetchResponse) => this.pending.shift()?.resolve(res));
    const fail = (e: Error): void => {
      this.failed ??= e;
      for (const p of this.pending.splice(0)) p.reject(this.failed);
    };
    this.call.on("error", (e: grpc.ServiceError) => fail(fromPeerError(e, (details) => new Error(`replica fetch stream: ${details}`))));
    this.call.on("end", () => fail(new Error("the leader ended the replica fetch stream")));
  }

  fetch(req: ReplicaFetchRound): Promise<ReplicaFetchAnswer> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise<ReplicaFetchResponse>((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.call.write(toReplicaFetchRequest(req));
    }).then(fromReplicaFetchResponse);
  }

  close(): void {
    this.call.cancel();
    this.release();
  }
}

/**
 * A follower's transport over `clients`: sessions to one leader share its channel, and closing
 * a session cancels its stream only (the channel is the owner's of `clients` to close).
 */
export function replicaFetchTransport(clients: InternalClients): ReplicaFetchTransport {
  return {
    open: (address) => new GrpcFetchSession(clients.client(ReplicationService, address), () => undefined),
  };
}

/**
 * The follower's transport with `credentials` (tls.ts `internalChannelCredentials`; default
 * plaintext) and `signer` (`cluster.secret`, member-auth.ts; default unsigned): each session
 * opens its own channel to the leader and closes it with the session.
 */
export function grpcReplicaFetchTransportWith(credentials?: grpc.ChannelCredentials, signer?: MemberSigner): ReplicaFetchTransport {
  return {
    open(address: string): ReplicaFetchSession {
      const clients = new InternalClients({ credentials, signer });
      return new GrpcFetchSession(clients.client(ReplicationService, address), () => clients.close());
    },
  };
}

/** The follower's transport over plaintext channels (`grpcReplicaFetchTransportWith()`). */
export const grpcReplicaFetchTransport: ReplicaFetchTransport = grpcReplicaFetchTransportWith();
