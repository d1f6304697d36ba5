/**
 * Fetch (key 1), versions 4-17: a consumer's long poll over `src/service/fetch.ts` in the
 * BATCHES format — the stored batches, whole, as they are (the first may start before the asked
 * offset, as Kafka's do; clients skip the records below it).
 *
 * Versions: v7 adds fetch sessions (KIP-227), v9 the current leader epoch (KIP-320), v11 the
 * rack id and preferred read replica, v12 flexible encoding with tagged fields (the partition's
 * current leader), v13 topic ids instead of names, v15 the replica state in a tag, v16 the
 * leaders' endpoints in a tag, v17 a replica directory id (replicas only).
 *
 * The life of a fetch here:
 * 1. Sessions. Rill keeps no fetch sessions: a sessionless request (session 0, epoch -1) and a
 *    request to open one (epoch 0) are both answered in full with session id 0, which KIP-227
 *    lets a broker answer when it creates no session; librdkafka and kafkajs fetch sessionless,
 *    @platformatic/kafka asks for a session on every fetch and takes the full answer. A request
 *    inside a session (epoch above 0) names one Rill never created: FETCH_SESSION_ID_NOT_FOUND.
 * 2. Each partition asked, in order (a partition named twice is answered once): topic id to name
 *    (v13+; unknown: UNKNOWN_TOPIC_ID), READ on the topic (else TOPIC_AUTHORIZATION_FAILED), the
 *    partition exists and is led here at the epoch the client believes current (else
 *    UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER or FENCED/UNKNOWN_LEADER_EPOCH; from v12
 *    the answer names the current leader, and from v16 its endpoint when known). Kafka clients
 *    fetch from leaders: a partition led elsewhere is never forwarded. A negative offset:
 *    OFFSET_OUT_OF_RANGE.
 * 3. The partitions led here go to the service's `fetch` in one call, with the broker's fetch
 *    memory budget and read-buffer pool: long poll until `min_bytes` or `max_wait_ms` (a
 *    partition answered an error above ends the wait at once, as in Kafka), `max_bytes` and each
 *    partition's max bytes with KIP-74's rule (the first batch is whole even when larger). Its
 *    partition errors (OFFSET_OUT_OF_RANGE, CORRUPT_MESSAGE for stored data that cannot be read,
 *    while the other partitions still flow) become Kafka's codes. A new leader that does not
 *    know its high watermark yet (issue 17, KIP-207) holds its partition like one with no data
 *    and, if the wait ends first, answers OFFSET_NOT_AVAILABLE (v11+, where Kafka's fetch from
 *    followers introduced it; LEADER_NOT_AVAILABLE before), with no high watermark (-1).
 * 4. Client quotas: the answer is held for the throttle time and carries it, as gRPC's Fetch.
 * 5. The answer's batches are the read buffers themselves, written to the socket without a copy;
 *    buffers and memory reservation go back once the socket has written them (`afterSent`).
 *
 * Isolation: Kafka's 0 (READ_UNCOMMITTED) and 1 (READ_COMMITTED) are the service's 1 and 2.
 * READ_COMMITTED reads stop at the last stable offset (below the first open transaction) and the
 * answer lists the aborted transactions of the batches returned (producer id, first offset), from
 * which the client drops aborted records, as Kafka's Fetch; READ_UNCOMMITTED gets null. Control
 * batches (commit/abort markers) go to clients as stored: Kafka's clients skip them.
 *
 * Racks (KIP-392): from v11 the request names the client's rack; with `replica.selector` =
 * `rack-aware` a partition led here whose in-sync follower is in that rack (and this broker is
 * not) answers no records and `preferred_read_replica`, and the client fetches it there. From
 * v11 a consumer may fetch from a follower, which serves up to its own high watermark; before
 * v11 only the leader answers. Divergence (`last_fetched_epoch`, for replicas) is
 * not checked: consumers validate positions with OffsetForLeaderEpoch. Rill's replicas
 * replicate over gRPC: a Kafka follower fetch (replica id >= 0) is refused with INVALID_REQUEST.
 */
import { RillError, rillError } from "../../base/errors.ts";
import type { MetadataImage } from "../../metadata/image.ts";
import { BufferPool } from "../../rpc/buffer-pool.ts";
import { UNBOUNDED_FETCH_MEMORY, fetch as serviceFetch } from "../../service/fetch.ts";
import {
  type FetchInput,
  type FetchPartitionInput,
  type FetchPartitionResult,
  IsolationLevel,
  RecordFormat,
} from "../../service/fetch-types.ts";
import { checkLeaderEpoch } from "../../service/leader-epoch.ts";
import { fetchResultBytes, throttled } from "../../service/quota-throttle.ts";
import { api, type KafkaRequestContext } from "../api.ts";
import { type KafkaDeps, parseKafkaAddress } from "../deps.ts";
import { kafkaErrorCode, offsetNotAvailableFor } from "../error-codes.ts";
import {
  type Encodable,
  type ValueOf,
  arrayOf,
  int8,
  int16,
  int32,
  int64,
  message,
  nested,
  records,
  string,
  structs,
  uuid,
} from "../schema.ts";

export const FetchRequest = message("FetchRequest", "4-17", "12+", {
  clusterId: string().nullable("12+").default(null).tagged(0, "12+"),
  replicaId: int32().versions("0-14").default(-1),
  replicaState: nested({ replicaId: int32().default(-1), replicaEpoch: int64().default(-1n) }).tagged(1, "15+"),
  maxWaitMs: int32(),
  minBytes: int32(),
  maxBytes: int32().since(3).default(0x7fffffff),
  isolationLevel: int8().since(4),
  sessionId: int32().since(7),
  sessionEpoch: int32().since(7).default(-1),
  topics: structs({
    topic: string().versions("0-12"),
    topicId: uuid().since(13),
    partitions: structs({
      partition: int32(),
      currentLeaderEpoch: int32().since(9).default(-1),
      fetchOffset: int64(),
      lastFetchedEpoch: int32().since(12).default(-1),
      logStartOffset: int64().since(5).default(-1n),
      partitionMaxBytes: int32(),
      replicaDirectoryId: uuid().tagged(0, "17+"),
    }),
  }),
  forgottenTopicsData: structs({
    topic: string().versions("7-12"),
    topicId: uuid().since(13),
    partitions: arrayOf(int32()),
  }).since(7),
  rackId: string().since(11),
});

export const FetchResponse = message("FetchResponse", "4-17", "12+", {
  throttleTimeMs: int32().since(1),
  errorCode: int16().since(7),
  sessionId: int32().since(7),
  responses: structs({
    topic: string().versions("0-12"),
    topicId: uuid().since(13),
    partitions: structs({
      partitionIndex: int32(),
      errorCode: int16(),
      highWatermark: int64(),
      lastStableOffset: int64().since(4).default(-1n),
      logStartOffset: int64().since(5).default(-1n),
      divergingEpoch: nested({ epoch: int32().default(-1), endOffset: int64().default(-1n) }).tagged(0, "12+"),
      currentLeader: nested({ leaderId: int32().default(-1), leaderEpoch: int32().default(-1) }).tagged(1, "12+"),
      snapshotId: nested({ endOffset: int64().default(-1n), epoch: int32().default(-1) }).tagged(2, "12+"),
      abortedTransactions: structs({ producerId: int64(), firstOffset: int64() }).since(4).nullable("4+").default(null),
      preferredReadReplica: int32().since(11).default(-1),
      records: records(),
    }),
  }),
  nodeEndpoints: structs({
    nodeId: int32(),
    host: string(),
    port: int32(),
    rack: string().nullable("16+").default(null),
  }).tagged(0, "16+"),
});

type Request = ValueOf<(typeof FetchRequest)["body"]["fields"]>;
type Response = Encodable<typeof FetchResponse>;
type PartitionAnswer = NonNullable<NonNullable<Response["responses"]>[number]["partitions"]>[number];

/** Kafka's isolation level 1; 0 is READ_UNCOMMITTED. */
const KAFKA_READ_COMMITTED = 1;
/** FETCH_SESSION_ID_NOT_FOUND: an incremental fetch in a session this broker does not have. */
const FETCH_SESSION_ID_NOT_FOUND = 70;
/** Longest wait honoured: the service's limit (a Kafka consumer waits 500 ms by default). */
const MAX_WAIT_MS_MAX = 300_000;
/** Idle read buffers kept for Kafka fetches to reuse (all connections of one listener together). */
const FETCH_POOL_BYTES_MAX = 32 * 1024 * 1024;
const NO_RECORDS: readonly Buffer[] = [];

/** The read-buffer pool of each listener's fetches. */
const pools = new WeakMap<KafkaDeps, BufferPool>();

function poolOf(deps: KafkaDeps): BufferPool {
  let pool = pools.get(deps);
  if (!pool) pools.set(deps, (pool = new BufferPool(FETCH_POOL_BYTES_MAX)));
  return pool;
}

/** One partition asked for, as resolved before reading. */
interface Asked {
  /** The index of its topic entry in the request (the answer keeps the request's grouping). */
  readonly entry: number;
  readonly topic: string;
  readonly partition: number;
  readonly offset: bigint;
  readonly maxBytes: number;
  readonly currentLeaderEpoch: number;
  /** Known before reading: its answer is this error. */
  error: RillError | null;
  /** Its answer once read. */
  result: FetchPartitionResult | null;
}

export const fetch = api(1, "4-17", FetchRequest, FetchResponse, async (req, ctx): Promise<Response> => {
  const v = ctx.apiVersion;
  // 1. Sessions: none are kept (see the module comment).
  if (v >= 7 && req.sessionEpoch > 0) {
    return { throttleTimeMs: 0, errorCode: FETCH_SESSION_ID_NOT_FOUND, sessionId: 0, responses: [] };
  }
  const asked = resolve(req, ctx);
  const whole = wholeRequestError(req, v);
  if (whole) return answer(ctx, req, asked, whole, 0);
  // 2. What is known without reading.
  authorize(ctx, asked);
  const rm = ctx.deps.services.replicas;
  for (const a of asked) {
    if (a.error) continue;
    // v11+ carries client metadata: a consumer may read from a follower (KIP-392), as in Kafka.
    a.error = checkLeaderEpoch(rm, a.topic, a.partition, a.currentLeaderEpoch, v >= 11);
    if (!a.error && a.offset < 0n) a.error = rillError("OFFSET_OUT_OF_RANGE", `fetch_offset: ${a.offset} is negative`);
  }
  // 3. Read the partitions led here; an error above answers at once, as Kafka does.
  const reading = asked.filter((a) => a.error === null);
  if (reading.length === 0) return answer(ctx, req, asked, null, 0);
  const input = fetchInput(req, reading, reading.length < asked.length, v);
  const pool = ctx.afterSent ? poolOf(ctx.deps) : undefined;
  const memory = ctx.deps.services.fetchMemory ?? UNBOUNDED_FETCH_MEMORY;
  let read: Awaited<ReturnType<typeof serviceFetch>>;
  let throttleTimeMs: number;
  try {
    // 4. Client quotas, as gRPC's Fetch.
    ({ answer: read, throttleTimeMs } = await throttled(
      ctx.deps.quotas,
      () => ctx.session.requester,
      "consume",
      () => serviceFetch(rm, input, ctx.cancel, null, memory, pool),
      fetchResultBytes,
    ));
  } catch (e) {
    // A whole-call failure (no fetch memory came free in time): every partition answers it.
    return answer(ctx, req, asked, RillError.from(e), 0);
  }
  // 5. The read buffers and the reservation go back once the answer is written.
  if (ctx.afterSent) ctx.afterSent(read.release);
  else read.release();
  reading.forEach((a, i) => {
    a.result = read.partitions[i] ?? null;
    // No result: the broker began shutting down while the fetch waited (a client goes elsewhere).
    if (!a.result) a.error = rillError("SHUTTING_DOWN", `broker ${ctx.deps.nodeId} is shutting down`);
  });
  return answer(ctx, req, asked, null, throttleTimeMs);
});

/** The partitions asked, in request order, each resolved to a topic name (v13+: from its id). */
function resolve(req: Request, ctx: KafkaRequestContext): Asked[] {
  const byId =
    ctx.apiVersion >= 13
      ? topicNamesById(
          ctx.deps.services.replicas.image,
          req.topics.map((t) => t.topicId),
        )
      : null;
  const seen = new Set<string>();
  const out: Asked[] = [];
  req.topics.forEach((t, entry) => {
    const id = byId ? t.topicId.toString("hex") : "";
    const name = byId ? byId.get(id) : t.topic;
    for (const p of t.partitions) {
      const key = `${byId ? id : t.topic}\u0000${p.partition}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({
        entry,
        topic: name ?? "",
        partition: p.partition,
        offset: p.fetchOffset,
        maxBytes: p.partitionMaxBytes,
        currentLeaderEpoch: p.currentLeaderEpoch,
        error: name === undefined ? rillError("UNKNOWN_TOPIC_ID", `topic id ${id} is not known`) : null,
        result: null,
      });
    }
  });
  return out;
}

/** What fails a whole request (answered in every partition, and at the top from v7). */
function wholeRequestError(req: Request, v: number): RillError | null {
  const replicaId = v >= 15 ? req.replicaState.replicaId : req.replicaId;
  if (replicaId >= 0) {
    return rillError("INVALID_REQUEST", `replica_id: ${replicaId}: Rill's replicas replicate over gRPC, not with Kafka's Fetch`);
  }
  if (req.isolationLevel !== 0 && req.isolationLevel !== 1) {
    return rillError("INVALID_REQUEST", `isolation_level: ${req.isolationLevel} is not 0 (READ_UNCOMMITTED) or 1 (READ_COMMITTED)`);
  }
  return null;
}

/** Partitions of topics the caller may not READ answer TOPIC_AUTHORIZATION_FAILED. */
function authorize(ctx: KafkaRequestContext, asked: readonly Asked[]): void {
  const pending = asked.filter((a) => a.error === null);
  const split = ctx.deps.access.fetchPartitions(
    ctx.session.requester,
    pending.map((a) => ({ topic: a.topic, partition: a.partition, offset: a.offset, maxBytes: a.maxBytes })),
  );
  if (split.all) return;
  const merged = split.merge(split.allowed.map(() => null as unknown as FetchPartitionResult));
  pending.forEach((a, i) => {
    const denied = merged[i];
    if (denied) a.error = denied.error;
  });
}

/** The service's input for the partitions read here; `now`: answer without waiting. */
function fetchInput(req: Request, reading: readonly Asked[], now: boolean, v: number): FetchInput {
  const partitions: FetchPartitionInput[] = reading.map((a) => ({
    topic: a.topic,
    partition: a.partition,
    offset: a.offset,
    // 0 is the service's default (1 MiB): a Kafka client asking for 0 gets the first batch only (KIP-74).
    maxBytes: Math.max(1, a.maxBytes),
  }));
  // min_bytes 0 answers at once in Kafka, as max_wait_ms 0 does.
  const wait = now || req.minBytes <= 0 ? 0 : Math.min(Math.max(req.maxWaitMs, 0), MAX_WAIT_MS_MAX);
  return {
    partitions,
    maxWaitMs: wait,
    minBytes: Math.max(req.minBytes, 1),
    maxBytes: Math.max(req.maxBytes, 1),
    format: RecordFormat.BATCHES,
    isolationLevel: req.isolationLevel === KAFKA_READ_COMMITTED ? IsolationLevel.READ_COMMITTED : IsolationLevel.READ_UNCOMMITTED,
    clientRack: v >= 11 ? req.rackId : "",
  };
}

/** The answer: the request's topic entries, each partition asked once, in order. */
function answer(
  ctx: KafkaRequestContext,
  req: Request,
  asked: readonly Asked[],
  whole: RillError | null,
  throttleTimeMs: number,
): Response {
  const v = ctx.apiVersion;
  const rm = ctx.deps.services.replicas;
  const leaders = new Set<number>();
  const byEntry = new Map<number, PartitionAnswer[]>();
  for (const a of asked) {
    const p = partitionAnswer(a, whole ?? a.error, rm.image, leaders, v);
    let list = byEntry.get(a.entry);
    if (!list) byEntry.set(a.entry, (list = []));
    list.push(p);
  }
  const responses = [...byEntry].map(([entry, partitions]) => {
    const t = req.topics[entry]!;
    return { topic: t.topic, topicId: t.topicId, partitions };
  });
  const nodeEndpoints = v >= 16 ? [...leaders].flatMap((id) => nodeEndpoint(ctx.deps, id) ?? []) : [];
  return {
    throttleTimeMs,
    errorCode: whole ? kafkaErrorCode(whole) : 0,
    sessionId: 0,
    responses,
    ...(nodeEndpoints.length > 0 ? { nodeEndpoints } : {}),
  };
}

/** One partition's answer; the leaders named in it are added to `leaders` (for v16's endpoints). */
function partitionAnswer(a: Asked, error: RillError | null, image: MetadataImage, leaders: Set<number>, v: number): PartitionAnswer {
  const r = error ? null : a.result;
  if (!r || r.error) {
    const e = error ?? r?.error ?? null;
    const code = offsetNotAvailableFor(kafkaErrorCode(e), v >= 11);
    const st = image.topics.get(a.topic)?.partitions[a.partition];
    const leader = st && st.leader >= 0 && (code === NOT_LEADER_OR_FOLLOWER || code === FENCED_LEADER_EPOCH) ? st : null;
    if (leader) leaders.add(leader.leader);
    return {
      partitionIndex: a.partition,
      errorCode: code,
      highWatermark: BigInt(r?.highWatermark ?? -1),
      lastStableOffset: BigInt(r?.lastStableOffset ?? -1),
      logStartOffset: BigInt(r?.logStartOffset ?? -1),
      ...(leader ? { currentLeader: { leaderId: leader.leader, leaderEpoch: leader.leaderEpoch } } : {}),
      records: NO_RECORDS,
    };
  }
  return {
    partitionIndex: a.partition,
    errorCode: 0,
    highWatermark: BigInt(r.highWatermark),
    lastStableOffset: BigInt(r.lastStableOffset),
    logStartOffset: BigInt(r.logStartOffset),
    abortedTransactions: abortedOf(r),
    preferredReadReplica: r.preferredReadReplica ?? -1,
    records: r.batches ? r.batches.map(asBuffer) : NO_RECORDS,
  };
}

/** The aborted transactions of a READ_COMMITTED answer (null for READ_UNCOMMITTED), as Kafka's. */
function abortedOf(r: FetchPartitionResult): { producerId: bigint; firstOffset: bigint }[] | null {
  const list = r.abortedTransactions;
  if (list === undefined || list === null) return null;
  return list.map((a) => ({ producerId: BigInt(a.producerId), firstOffset: BigInt(a.firstOffset) }));
}

/** A view of `u` as a Buffer (no copy). */
function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/** NOT_LEADER_OR_FOLLOWER and FENCED_LEADER_EPOCH: the answers that name the current leader (v12+). */
const NOT_LEADER_OR_FOLLOWER = 6;
const FENCED_LEADER_EPOCH = 74;

/** The names of the topics with these ids (16-byte UUIDs; the image keeps them as 32 hex digits), by hex id. */
export function topicNamesById(image: MetadataImage, ids: readonly Buffer[]): Map<string, string> {
  const wanted = new Set(ids.map((id) => id.toString("hex")));
  const out = new Map<string, string>();
  for (const t of image.topics.values()) {
    if (wanted.has(t.topicId)) out.set(t.topicId, t.name);
  }
  return out;
}

/**
 * The Kafka endpoint of node `nodeId` for v16's node endpoints: the Kafka address it registered
 * (this node's own advertised one for itself); null when not known (a client then refreshes its
 * metadata).
 */
function nodeEndpoint(deps: KafkaDeps, nodeId: number): { nodeId: number; host: string; port: number; rack: string | null } | null {
  const b = deps.services.replicas.image.brokers.get(nodeId);
  const rack = b?.rack ? b.rack : null;
  if (nodeId === deps.nodeId) {
    const a = deps.advertised();
    return { nodeId, host: a.host, port: a.port, rack };
  }
  if (!b?.kafkaAddress) return null;
  const a = parseKafkaAddress(b.kafkaAddress);
  return { nodeId, host: a.host, port: a.port, rack };
}
