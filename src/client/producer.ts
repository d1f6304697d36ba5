/**
 * `Producer`: batches records per partition, encodes each batch as a Kafka RecordBatch v2 (LZ4
 * or gzip when asked) and sends it as `record_batch` bytes over a pipelined ProduceStream to the
 * partition's leader. Idempotent by default (Kafka >= 3.0): a retried batch is written once and
 * in order, also when it is re-sent to a new leader.
 *
 * Life of a record:
 * 1. `send(record)` checks it, stamps its timestamp (the producer's clock unless given) and
 *    queues it on the intake, a FIFO, so records keep the order of `send` calls even when the
 *    first send to a topic waits for its partition count (metadata.ts).
 * 2. The intake takes the record's size from the buffer budget (`bufferBytes`): while the
 *    buffer is full the record waits — the producer never holds more than `bufferBytes` of
 *    records in batches — and open batches are made ready at once (4), since lingering cannot
 *    help.
 * 3. The partitioner (partitioner.ts) picks the partition: explicit, murmur2 of the key, or the
 *    topic's sticky partition for null keys. The record joins that partition's open batch.
 * 4. A batch is sealed when it reaches `batchBytes`. Once it has lingered `lingerMs` (or on
 *    `flush`, or while the buffer is full) it is "ready": sealed and sent as soon as its
 *    partition has room in flight, and until then it keeps taking records, so a producer that is
 *    behind sends full batches rather than many small ones.
 * 5. Sending: a partition has at most `inFlightPerPartitionMax` batches in flight (5 when
 *    idempotent, as Kafka; 1 otherwise), counted from its oldest unanswered batch, so that a
 *    re-sent batch is always among the last 5 the broker remembers per producer. The first
 *    batch of a partition under a producer id and epoch goes alone (see `sendNext`). A batch is
 *    encoded when it is first sent, stamped with the producer id and epoch (idempotence.ts, from
 *    InitProducerId before the first batch) and the partition's next sequence number; from then
 *    on its bytes never change. A batch goes to its partition's leader (metadata.ts; the
 *    bootstrap broker while the leader is unknown): one ProduceChannel, one pipelined stream, per
 *    broker, carrying the batches of every partition that broker leads, up to
 *    `inFlightRequestsMax` at a time.
 * 6. Retries (retry.ts policy): a retriable failure (errors.ts `isRetriable`: connection lost,
 *    NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT, ...) marks the batch for a re-send; when the
 *    failure says the leader may have moved (errors.ts `isStaleMetadata`) the metadata is asked
 *    again. After a backoff, and once that refresh is done, the partition re-sends its marked
 *    batches in sequence order, with the same bytes, before any new batch — all to the leader
 *    known then, on one stream, so they arrive in order. The broker answers a batch it already
 *    wrote with its original offsets, so a lost response costs nothing; a new leader knows the
 *    producer's sequences too (they are replicated with the batches), so a batch written before
 *    the leader changed is recognised there. The broker answers OUT_OF_ORDER_SEQUENCE_NUMBER to
 *    a batch whose predecessor it does not have:
 *    - if an earlier batch of the partition is still unanswered or being retried, the batch is
 *      re-sent after it (not counted as a retry): it succeeds once the earlier one is written;
 *    - if every earlier batch was answered, the gap is real (an earlier batch failed for good,
 *      or the broker lost acknowledged records): the batch fails with an OUT_OF_ORDER_SEQUENCE
 *      error that names the cause. Records are failed, never written out of order.
 *    A batch that fails for good (an error that is not retriable, `retries` exhausted — then it
 *    may or may not have been written, as in Kafka — or a real gap) leaves its partition's
 *    sequence unresolved. The producer then sends no new batch
 *    until every batch in flight is answered, bumps its epoch (InitProducerId with its id:
 *    Kafka's KIP-360) and restarts every partition's sequence at 0; queued records then go out
 *    under the new epoch, after whatever was written before. Without idempotence a retry after
 *    a lost response may store a batch twice (at-least-once), and with more than one batch in
 *    flight per partition a retry may also reorder.
 * 7. INVALID_PRODUCER_EPOCH or PRODUCER_FENCED: a newer instance holds the producer id. The
 *    producer is fenced for good: nothing is retried, every record not on the wire fails at once
 *    with a PRODUCER_FENCED error, as do later sends; records on the wire end with their answer
 *    (stored, or PRODUCER_FENCED).
 * 8. The answer resolves each record's promise with its partition and offset (baseOffset + its
 *    index; -1 when the broker reports no offset, as acks "none" allows) and gives its bytes
 *    back to the budget.
 *
 * `flush()` makes every open batch ready and waits for everything sent before it; `close()`
 * flushes, refuses new records and closes the connection.
 */

import type { Clock } from "../base/clock.ts";
import { systemClock } from "../base/clock.ts";
import { Errors, RillError } from "../base/errors.ts";
import { Acks, type EndTransactionResponse, type ProduceResponse } from "../gen/rill/v1/produce_service_pb.ts";
import { codecUnavailable, initCodecs } from "../protocol/compression.ts";
import { Compression, HEADER_SIZE, encodeBatch } from "../protocol/record-batch.ts";
import type { RecordHeaderInput, RecordInput } from "../protocol/record-batch.ts";
import { ByteBudget } from "./byte-budget.ts";
import { type ClientOptions, type Connection, connect } from "./connection.ts";
import { checkChoice, checkInt, toNumber } from "./convert.ts";
import { ClientClosedError, fromErrorDetail, isRetriable, isStaleMetadata } from "./errors.ts";
import { Fifo } from "./fifo.ts";
import {
  type ProducerIdAndEpoch,
  ProducerIdentity,
  SequenceCounter,
  fencedError,
  isDuplicateSequence,
  isFencing,
  isOutOfOrderSequence,
  sequenceGapError,
  sequenceRange,
} from "./idempotence.ts";
import { MetadataCache } from "./metadata.ts";
import { GroupAdmin } from "./group-admin.ts";
import type { GroupOffset } from "./group-connection.ts";
import { Partitioner } from "../protocol/partitioner.ts";
import { ProduceChannel } from "./produce-channel.ts";
import type { EndTransactionStreamInput } from "./wire-codec.ts";
import { backoffMs, withRetries } from "./retry.ts";
import { type Serde, type Serializer, serializerOf } from "./serde.ts";
import { closeOnSignals, shutdownSignals } from "./shutdown.ts";

const MiB = 1024 * 1024;
/** Batches per partition in flight, at most, with idempotence: the broker remembers 5 per producer. */
export const IDEMPOTENT_IN_FLIGHT_MAX = 5;

/** The key and value types a producer takes without serializers. */
export type RecordBytes = Uint8Array | string;

/** Producer settings; every field is optional. `K`, `V`: what `serializers` take (bytes or strings without). */
export interface ProducerOptions<K = RecordBytes, V = RecordBytes> extends ClientOptions {
  /** Turn keys and values into bytes before a record is batched (serde.ts: `json()`, `protobuf(Schema)`). Default: none. */
  readonly serializers?:
    | { readonly key?: Serializer<K> | Serde<K> | undefined; readonly value?: Serializer<V> | Serde<V> | undefined }
    | undefined;
  /** Flush and close on SIGTERM/SIGINT (`true`) or the signals listed, then re-raise the signal (shutdown.ts). Default false. */
  readonly closeOnSignals?: boolean | readonly NodeJS.Signals[] | undefined;
  /**
   * How long a batch waits for more records before it is sent. Default 5 ms. 0: it goes once the
   * records handed over in the same turn of the event loop have joined it (a timer of 0 ms would
   * wait about 1 ms).
   */
  readonly lingerMs?: number | undefined;
  /** A batch is sent once it holds about this many bytes (a larger record gets its own batch). Default 1 MiB. */
  readonly batchBytes?: number | undefined;
  /** Records held by the producer (batching, in flight, retrying), at most. Default 32 MiB. */
  readonly bufferBytes?: number | undefined;
  /** Batch compression. Default "none". */
  readonly compression?: "none" | "gzip" | "snappy" | "lz4" | "zstd" | undefined;
  /** Acknowledgement level: all in-sync replicas, the leader only, or none. Default "all". */
  readonly acks?: "all" | "leader" | "none" | undefined;
  /**
   * Retries write each record once and in order (producer id, epoch and sequence numbers).
   * Default: true unless `acks` is not "all" or `inFlightPerPartitionMax` is above 5 (Kafka's
   * rule); true with either of those is an INVALID_ARGUMENT.
   */
  readonly idempotent?: boolean | undefined;
  /**
   * Stable identity of an idempotent producer across restarts (Kafka's transactional.id): a new
   * producer with the same value fences this one and aborts its open transaction. Needed by
   * `transaction()`. Default: none.
   */
  readonly transactionalId?: string | undefined;
  /** How long a transaction may stay open before the broker aborts it (ms). Default: the broker's, 60 s. */
  readonly transactionTimeoutMs?: number | undefined;
  /** Batches of one partition awaiting an answer, at most. Default 5 when idempotent (at most 5), else 1. */
  readonly inFlightPerPartitionMax?: number | undefined;
  /** Produce requests on the connection awaiting an answer, at most (all partitions). Default 64. */
  readonly inFlightRequestsMax?: number | undefined;
  /** Clock for the timestamps of records sent without one. Default the system clock. */
  readonly clock?: Clock | undefined;
}

/** A record header; keys may repeat. */
export interface ProducerHeader {
  readonly key: string;
  readonly value: Uint8Array | string | null;
}

/** What `Producer.transaction` hands its function. */
export interface Transaction<K = RecordBytes, V = RecordBytes> {
  /** Sends a record inside the transaction (resolves once written, still invisible to READ_COMMITTED readers). */
  send(record: ProducerRecord<K, V>): Promise<RecordMetadata>;
  /**
   * Commits a group's offsets with the transaction (consume–process–produce). With `member`, the
   * group checks that the member still owns its partitions at that epoch (KIP-447: a zombie
   * cannot commit).
   */
  sendOffsets(groupId: string, offsets: readonly GroupOffset[], member?: { memberId: string; memberEpoch: number }): Promise<void>;
}

/** A record to send. Strings are sent as UTF-8; `K`, `V` with serializers. */
export interface ProducerRecord<K = RecordBytes, V = RecordBytes> {
  readonly topic: string;
  /** Null or absent: spread over partitions (sticky). */
  readonly key?: K | null | undefined;
  /** Null is a tombstone on compacted topics. */
  readonly value: V | null;
  /** Headers as a list (keys may repeat) or an object. */
  readonly headers?: readonly ProducerHeader[] | Readonly<Record<string, Uint8Array | string | null>> | undefined;
  /** Explicit partition; overrides the key. */
  readonly partition?: number | undefined;
  /** Create time in ms since the epoch; default the producer's clock at `send`. */
  readonly timestampMs?: number | undefined;
}

/** Where a record was stored. */
export interface RecordMetadata {
  readonly topic: string;
  readonly partition: number;
  /** Offset of the record; -1 when the broker does not report it (allowed with acks "none"). */
  readonly offset: number;
  /** The record's timestamp (the broker's append time on LogAppendTime topics). */
  readonly timestampMs: number;
}

/** Counters of a producer since it was created. */
export interface ProducerStats {
  /** Produce requests made, first sends and re-sends. */
  requests: number;
  /** Re-sends of a batch (after a retriable failure, or behind an earlier batch being retried). */
  retries: number;
  /** Producer ids or epochs obtained with InitProducerId (1 after the first batch when idempotent). */
  producerIdsAcquired: number;
  /** Most batches of one partition in flight at once (counted from the oldest unanswered one). */
  inFlightPerPartitionPeak: number;
}

/** Framing bytes a record may take besides its key, value and headers (length, attributes, deltas). */
const RECORD_OVERHEAD = 26;
/** Framing bytes per header besides its key and value (two length varints). */
const HEADER_OVERHEAD = 10;

const acksByName = { all: Acks.ALL, leader: Acks.LEADER, none: Acks.NONE } as const;
const codecByName = {
  none: Compression.NONE,
  gzip: Compression.GZIP,
  snappy: Compression.SNAPPY,
  lz4: Compression.LZ4,
  zstd: Compression.ZSTD,
} as const;

/** A transaction of `Producer.transaction` (issue 17). */
interface TxnState {
  /** The group admin of `tx.sendOffsets`, once used. */
  offsets: GroupAdmin | null;
  /** The first failure of one of its records (noted when it happens, before any callback runs); null: none. */
  failed: unknown;
  /**
   * The commit sent with or behind the records got no answer (its stream broke, or timed out):
   * the broker may have committed. A record re-sent after that and fenced (the commit bumped
   * the epoch, KIP-890) is then no failure yet: `undecided` until the commit's retry tells.
   */
  endLost: boolean;
  /** Batches re-sent after `endLost` and fenced: written and committed if the commit's retry succeeds. */
  readonly undecided: Array<{ readonly batch: ProducerBatch; readonly error: unknown }>;
}

interface Delivery {
  readonly timestampMs: number;
  readonly resolve: (m: RecordMetadata) => void;
  /** Rejects the record's promise; use `failDelivery`, which tells its transaction too. */
  readonly reject: (e: unknown) => void;
  /** The transaction of a `tx.send` (its first failure is noted there), else undefined. */
  readonly txn: TxnState | undefined;
  /** The promise `tx.send` returned, once made: a failure marks it handled (the caller may leave it). */
  promise: Promise<RecordMetadata> | undefined;
  /** Failed before `promise` was made (`enqueue` marks it handled then). */
  failedEarly: boolean;
}

function noop(): void {}

/**
 * Rejects a record's promise with `e`. A record of a transaction notes the transaction's first
 * failure (`transaction()` reports it) and its rejection counts as handled: the caller of
 * `tx.send` may leave the promise. (Per failure, not per record: a transaction's records cost no
 * handler or closure of their own.)
 */
/** A `send` refused before it was queued: rejected with `e`, noted in (and handled for) transaction `txn` when given. */
function failedSend(e: unknown, txn: TxnState | undefined): Promise<never> {
  const p = Promise.reject(e);
  if (txn !== undefined) {
    txn.failed ??= e;
    p.catch(noop);
  }
  return p;
}

function failDelivery(d: Delivery, e: unknown): void {
  if (d.txn !== undefined) {
    d.txn.failed ??= e;
    if (d.promise !== undefined) d.promise.catch(noop);
    else d.failedEarly = true;
  }
  d.reject(e);
}

interface RecordItem {
  readonly kind: "record";
  readonly topic: string;
  readonly partition: number | undefined;
  /** Key bytes for the partitioner (null: sticky). */
  readonly keyBytes: Uint8Array | null;
  readonly input: RecordInput;
  readonly bytes: number;
  delivery: Delivery;
}

interface FlushItem {
  readonly kind: "flush";
  readonly resolve: (done: Promise<void>) => void;
}

type IntakeItem = RecordItem | FlushItem;

/** A batch of one partition: records until first sent, then their encoded bytes (never changed). */
class ProducerBatch {
  inputs: RecordInput[] = [];
  readonly deliveries: Delivery[] = [];
  bytes = HEADER_SIZE;
  encoded: Buffer | null = null;
  /** First sequence number (idempotent batches, from the first send on); -1 otherwise. */
  baseSequence = -1;
  /** Encoded inside a transaction: sent with the transactional id (issue 17). */
  transactional = false;
  /** Requests made with this batch. */
  attempts = 0;
  /** Retries counted against the policy's `retries`. */
  retries = 0;
  /** True while a request with this batch awaits its answer; false while it waits to be re-sent. */
  onWire = false;
  /** The stream its latest request went on (a transaction's end may follow it there, issue 17). */
  channel: ProduceChannel | null = null;
  /** Open, but to be sent as soon as its partition can (lingered, flushed, or the buffer is full). */
  ready = false;
  finished = false;
  readonly done: Promise<void>;
  markDone!: () => void;

  constructor(
    readonly topic: string,
    readonly partition: number,
  ) {
    this.done = new Promise((resolve) => (this.markDone = resolve));
  }
}

/** A batch's linger: a timer, or an immediate (lingerMs 0). */
type Linger = { readonly timer: ReturnType<typeof setTimeout> } | { readonly immediate: ReturnType<typeof setImmediate> };

function stopLinger(l: Linger | null): void {
  if (l === null) return;
  if ("timer" in l) clearTimeout(l.timer);
  else clearImmediate(l.immediate);
}

/** The batches of one partition: the open one, sealed ones in order, and the ones in flight. */
interface PartitionQueue {
  readonly topic: string;
  readonly partition: number;
  open: ProducerBatch | null;
  /** The open batch's linger: a timer, or (lingerMs 0) an immediate; cancel with `stopLinger`. */
  lingerTimer: Linger | null;
  /** Sealed and never sent, in order. */
  readonly sealed: Fifo<ProducerBatch>;
  /**
   * The batches in flight, in sequence order: from the oldest one not answered for good (on the
   * wire, or waiting to be re-sent) to the newest sent. Batches answered while an older one is
   * still open stay in it, finished, until the older ones are: at most
   * `inFlightPerPartitionMax` batches from the oldest open one, so that a re-send is always among
   * the last 5 batches the broker remembers.
   */
  readonly window: ProducerBatch[];
  /** Due when the batches waiting to be re-sent go out again. */
  retryTimer: ReturnType<typeof setTimeout> | null;
  /** The partition's next sequence number (idempotent). */
  readonly sequence: SequenceCounter;
  /** What failed for good since the last epoch, to explain the refusals of the batches after it. */
  gapCause: string | null;
  /** True once a batch of the current producer id and epoch was acknowledged (see `sendNext`). */
  acked: boolean;
}

function byteLength(x: Uint8Array | string | null | undefined): number {
  if (x === null || x === undefined) return 0;
  return typeof x === "string" ? Buffer.byteLength(x, "utf8") : x.byteLength;
}

function checkBytes(x: unknown, field: string): void {
  if (x !== null && x !== undefined && typeof x !== "string" && !(x instanceof Uint8Array)) {
    throw new RillError(Errors.INVALID_ARGUMENT, `${field}: must be a string, a Uint8Array or null`);
  }
}

function headersOf(h: ProducerRecord["headers"]): RecordHeaderInput[] | undefined {
  if (h === undefined) return undefined;
  const list = Array.isArray(h) ? (h as readonly ProducerHeader[]) : Object.entries(h).map(([key, value]) => ({ key, value }));
  return list.map((x, i) => {
    if (typeof x.key !== "string") throw new RillError(Errors.INVALID_ARGUMENT, `headers[${i}].key: must be a string`);
    checkBytes(x.value, `headers[${i}].value`);
    return { key: x.key, value: x.value ?? null };
  });
}

/** True for a sent batch that waits for its re-send. */
/**
 * Whether an end of a transaction was answered by the broker (a refusal, in band) rather than
 * lost with its stream (a ConnectionError) or left without an answer in time (REQUEST_TIMED_OUT):
 * after those the broker may or may not have acted on it.
 */
function answeredInBand(e: unknown): boolean {
  return e instanceof RillError && e.kind !== Errors.REQUEST_TIMED_OUT;
}

function waitingForResend(b: ProducerBatch): boolean {
  return !b.onWire && !b.finished;
}

/**
 * Resolves `idempotent` and the per-partition in-flight bound with Kafka's rule: idempotence is
 * on unless turned off, or left unset with settings it cannot work with (acks other than "all",
 * more than 5 batches in flight per partition); asked for with those settings, it is an error.
 */
function idempotenceOf(
  o: Pick<ProducerOptions, "idempotent" | "inFlightPerPartitionMax" | "transactionalId">,
  acks: "all" | "leader" | "none",
): { idempotent: boolean; perPartition: number } {
  if (o.idempotent !== undefined && typeof o.idempotent !== "boolean") {
    throw new RillError(Errors.INVALID_ARGUMENT, `idempotent: ${String(o.idempotent)} is not a boolean`);
  }
  const asked =
    o.inFlightPerPartitionMax === undefined ? undefined : checkInt(o.inFlightPerPartitionMax, "inFlightPerPartitionMax", 1, 1000);
  const fits = acks === "all" && (asked === undefined || asked <= IDEMPOTENT_IN_FLIGHT_MAX);
  if (o.idempotent === true && !fits) {
    const why =
      acks !== "all"
        ? `acks "${acks}" (idempotence needs "all")`
        : `inFlightPerPartitionMax ${asked} (idempotence allows at most ${IDEMPOTENT_IN_FLIGHT_MAX})`;
    throw new RillError(Errors.INVALID_ARGUMENT, `idempotent: true does not work with ${why}`);
  }
  const idempotent = o.idempotent ?? fits;
  return { idempotent, perPartition: asked ?? (idempotent ? IDEMPOTENT_IN_FLIGHT_MAX : 1) };
}

/** Sends records to topics in batches; see the module comment for the life of a record. */
export class Producer<K = RecordBytes, V = RecordBytes> {
  private readonly serializers: ProducerOptions<K, V>["serializers"];
  private readonly unregisterSignals: () => void;
  private readonly conn: Connection;
  private readonly metadata: MetadataCache;
  private readonly partitioner: Partitioner;
  private readonly budget: ByteBudget;
  /** One pipelined ProduceStream per broker address, opened on first use. */
  private readonly channels = new Map<string, ProduceChannel>();
  private readonly inFlightRequestsMax: number;
  private readonly clock: Clock;
  private readonly lingerMs: number;
  private readonly batchBytes: number;
  private readonly codec: number;
  private readonly acks: Acks;
  private readonly inFlightPerPartitionMax: number;
  /** The producer id and epoch; null without idempotence. */
  private readonly identity: ProducerIdentity | null;
  /** True while batches must wait for a producer id or a new epoch (idempotent). */
  private needsIdentity: boolean;
  /** True until zstd's WebAssembly has loaded (or failed to: then encoding fails with that reason). */
  private codecLoading = false;
  private acquiringIdentity = false;
  /** Set once fenced: every record not yet on the wire fails with it. */
  private fatal: RillError | null = null;
  /** Batches in flight over all partitions. */
  private inFlightBatches = 0;
  private readonly counters: ProducerStats = { requests: 0, retries: 0, producerIdsAcquired: 0, inFlightPerPartitionPeak: 0 };
  private readonly intake = new Fifo<IntakeItem>();
  /** Partition queues by topic, then partition. */
  private readonly queues = new Map<string, Map<number, PartitionQueue>>();
  /** Queues whose open batch is not ready yet. */
  private readonly lingering = new Set<PartitionQueue>();
  private intakeWaiters: (() => void)[] = [];
  private pumping = false;
  private state: "open" | "closing" | "closed" = "open";
  private closing: Promise<void> | null = null;

  /** Checks the options (RangeError or RillError naming the field); connects lazily. */
  constructor(options: ProducerOptions<K, V> = {}) {
    this.serializers = options.serializers;
    this.lingerMs = checkInt(options.lingerMs ?? 5, "lingerMs", 0, 3_600_000);
    this.batchBytes = checkInt(options.batchBytes ?? MiB, "batchBytes", 1024, 1 << 30);
    const bufferBytes = checkInt(options.bufferBytes ?? 32 * MiB, "bufferBytes", 1024, 2 ** 40);
    const inFlightMax = checkInt(options.inFlightRequestsMax ?? 64, "inFlightRequestsMax", 1, 1000);
    this.codec = codecByName[checkChoice(options.compression ?? "none", "compression", ["none", "gzip", "snappy", "lz4", "zstd"])];
    const unavailable = codecUnavailable(this.codec); // lz4, snappy, zstd: optional npm packages of @rill/client
    if (unavailable !== null) throw new RillError(Errors.UNSUPPORTED_COMPRESSION_TYPE, `compression: ${unavailable}`);
    if (this.codec === Compression.ZSTD) this.waitForCodec();
    const acks = checkChoice(options.acks ?? "all", "acks", ["all", "leader", "none"]);
    this.acks = acksByName[acks];
    const { idempotent, perPartition } = idempotenceOf(options, acks);
    this.inFlightPerPartitionMax = perPartition;
    const transactionalId = options.transactionalId ?? "";
    if (typeof transactionalId !== "string" || transactionalId.length > 249) {
      throw new RillError(Errors.INVALID_ARGUMENT, "transactionalId: must be a string of at most 249 characters");
    }
    if (transactionalId !== "" && !idempotent)
      throw new RillError(Errors.INVALID_ARGUMENT, "transactionalId: needs an idempotent producer");
    this.clock = options.clock ?? systemClock;
    this.conn = connect(options);
    this.metadata = new MetadataCache(this.conn);
    this.partitioner = new Partitioner(this.conn.random);
    this.budget = new ByteBudget(bufferBytes);
    this.inFlightRequestsMax = inFlightMax;
    const txnTimeoutMs = checkInt(options.transactionTimeoutMs ?? 0, "transactionTimeoutMs", 0, 0x7fffffff);
    this.transactionalId = transactionalId;
    this.options = options;
    this.identity = idempotent ? new ProducerIdentity(this.conn, transactionalId, txnTimeoutMs) : null;
    this.needsIdentity = idempotent;
    this.unregisterSignals = closeOnSignals(this, shutdownSignals(options.closeOnSignals, "closeOnSignals"));
  }

  // -------------------------------------------------------------------------------------------
  // Transactions (issue 17)

  private readonly transactionalId: string;
  private readonly options: ProducerOptions<K, V>;
  /** The open transaction, if any (one at a time). */
  private txn: TxnState | null = null;
  /**
   * While the commit is being sent: the batch whose message may carry it (`dispatch` sets
   * `carried` to the end's answer when it does).
   */
  private endRider: { readonly batch: ProducerBatch; carried: Promise<EndTransactionResponse> | undefined } | null = null;

  /**
   * Runs `fn` as one transaction: every record sent through `tx.send` and every offset given to
   * `tx.sendOffsets` is committed together when `fn` resolves, or aborted when it throws (the
   * error is rethrown). READ_COMMITTED consumers see all of it or none. Needs `transactionalId`;
   * one transaction at a time. Records sent before are flushed first.
   */
  async transaction<T>(fn: (tx: Transaction<K, V>) => Promise<T>): Promise<T> {
    if (this.identity === null || this.transactionalId === "")
      throw new RillError(Errors.INVALID_ARGUMENT, "transaction: needs a producer with a transactionalId");
    if (this.txn !== null) throw new RillError(Errors.INVALID_TXN_STATE, "transaction: another transaction of this producer is open");
    if (!this.idle()) await this.flush();
    if (this.identity.current === null) await this.identity.acquire();
    const state: TxnState = { offsets: null, failed: null, endLost: false, undecided: [] };
    this.txn = state;
    const tx: Transaction<K, V> = {
      // The caller may leave the promise: transaction() reports its failure (`failDelivery` marks it handled).
      send: (record) => this.sendIn(record, state),
      sendOffsets: async (groupId, offsets, member) => {
        state.offsets ??= new GroupAdmin(this.options);
        const id = this.identity!.current!;
        await state.offsets.commitOffsetsInTransaction(groupId, offsets, {
          transactionalId: this.transactionalId,
          producerId: id.producerId,
          producerEpoch: id.producerEpoch,
          memberId: member?.memberId ?? "",
          memberEpoch: member?.memberEpoch ?? -1,
        });
      },
    };
    let result: T;
    try {
      result = await fn(tx);
    } catch (e) {
      await this.flush().catch(() => undefined);
      await this.endTransaction(false).catch(() => undefined);
      await this.finishTransaction(state);
      throw e;
    }
    try {
      // The commit goes right behind the records when they are all on one stream (the broker
      // commits only if every one of them is written); else, or when that end is refused or lost,
      // once every record is acknowledged. A record that failed for good aborts the transaction.
      const behind = this.endBehindRecords(state);
      const answer = behind?.then(
        (r) => r,
        (e: unknown) => {
          // Refused in band (END_REFUSED: a record failed): not committed. No answer at all: unknown.
          if (!answeredInBand(e)) state.endLost = true;
          return null;
        },
      );
      if (!this.idle()) await this.flush(); // then every record of the transaction is answered
      const failed = state.failed;
      const ended = answer === undefined ? null : await answer;
      if (ended !== null) {
        this.adoptEnd(ended);
        if (failed !== null)
          throw new RillError(
            Errors.UNKNOWN_SERVER_ERROR,
            `transaction: committed, although a record failed: ${failed instanceof Error ? failed.message : String(failed)}`,
          );
      } else if (failed !== null) {
        this.settleUndecided(state, false);
        await this.endTransaction(false).catch(() => undefined);
        throw failed;
      } else {
        // Every record acknowledged; or, after a commit whose answer was lost, re-sent and fenced by
        // the epoch that commit bumped. Then the commit's retry answers the outcome (the
        // coordinator answers a retried end of a completed transaction with its result, KIP-890);
        // it cannot commit anew: the transaction is no longer open at this epoch.
        try {
          // After a lost end, unary: a stream that carried a fenced re-send refuses an end behind it.
          await this.endTransaction(true, state.endLost);
        } catch (e) {
          this.settleUndecided(state, false);
          throw e;
        }
        this.settleUndecided(state, true);
      }
    } finally {
      await this.finishTransaction(state);
    }
    return result;
  }

  /**
   * Sends the commit on the stream of the transaction's records when every record of the
   * transaction is in a batch on that one stream (none failed, waits, or is retried): in the
   * message of the last batch when that one was still to be sent (one message for both), else
   * right behind them; undefined otherwise. The broker acts on it once those requests are
   * answered, and commits only when all were written (else it refuses, and the transaction stays open).
   */
  private endBehindRecords(state: TxnState): Promise<EndTransactionResponse> | undefined {
    // When one batch is left to send, the end rides in its message (`dispatch` checks that every
    // other record of the transaction is on that stream); else it follows them as a message of its own.
    const riding = this.quiet(state) ? this.lastUnsent() : null;
    this.endRider = riding === null ? null : { batch: riding, carried: undefined };
    this.readyAll(); // lingering cannot help: the open batches go now
    const carried = this.endRider?.carried;
    this.endRider = null;
    if (carried !== undefined) return carried;
    if (!this.quiet(state)) return undefined;
    let channel: ProduceChannel | null = null;
    for (const q of this.allQueues()) {
      if (q.open !== null || q.sealed.length > 0 || q.retryTimer !== null) return undefined;
      for (const b of q.window) {
        if (b.finished) continue;
        if (!b.onWire || b.channel === null || (channel !== null && b.channel !== channel)) return undefined;
        channel = b.channel;
      }
    }
    if (channel === null) return undefined;
    return channel.endTransaction(this.endRequest(true));
  }

  /**
   * The batches re-sent after a lost commit and fenced (`TxnState.undecided`): `committed`, their
   * records were written (offsets unknown, as for a duplicate: -1); else they fail with their
   * fencing error, and the producer is fenced as that error says.
   */
  private settleUndecided(state: TxnState, committed: boolean): void {
    const undecided = state.undecided.splice(0);
    for (const { batch, error } of undecided) {
      for (const d of batch.deliveries) {
        if (committed) d.resolve({ topic: batch.topic, partition: batch.partition, offset: -1, timestampMs: d.timestampMs });
        else failDelivery(d, error);
      }
    }
    if (!committed && undecided.length > 0) this.fence(undecided[0]!.error);
  }

  /** Nothing failed, no identity awaited, nothing waiting in the intake: the end may go with or behind the records. */
  private quiet(state: TxnState): boolean {
    if (state.failed !== null || this.fatal !== null || this.needsIdentity || this.acquiringIdentity) return false;
    return this.intake.length === 0 && !this.pumping;
  }

  /** The open batch when it is the only batch not yet sent (of any partition); else null. */
  private lastUnsent(): ProducerBatch | null {
    let last: ProducerBatch | null = null;
    for (const byPartition of this.queues.values())
      for (const q of byPartition.values()) {
        if (q.sealed.length > 0 || q.retryTimer !== null) return null;
        if (q.open === null) continue;
        if (last !== null) return null;
        last = q.open;
      }
    return last;
  }

  /**
   * Whether the end of the transaction may go in the message of `b`, about to go on `channel`:
   * every other batch is answered or on that stream (the broker ends the transaction only after
   * the stream's earlier requests of it are answered), none waits to be sent or re-sent.
   */
  private mayCarryEnd(b: ProducerBatch, channel: ProduceChannel): boolean {
    if (!b.transactional || b.attempts !== 1 || this.txn === null || !this.quiet(this.txn)) return false;
    for (const byPartition of this.queues.values())
      for (const q of byPartition.values()) {
        if (q.open !== null || q.sealed.length > 0 || q.retryTimer !== null) return false;
        for (const x of q.window) if (x !== b && !x.finished && (!x.onWire || x.channel !== channel)) return false;
      }
    return true;
  }

  /** Nothing queued, batched or in flight: a flush would have nothing to wait for. */
  private idle(): boolean {
    if (this.intake.length > 0 || this.inFlightBatches > 0) return false;
    for (const q of this.allQueues()) if (q.open !== null || q.sealed.length > 0 || q.window.length > 0) return false;
    return true;
  }

  private async finishTransaction(state: TxnState): Promise<void> {
    this.txn = null;
    await state.offsets?.close();
  }

  /**
   * EndTransaction — on the ProduceStream the transaction's records went over when there is one
   * (any broker answers: it forwards to the coordinator), so the end costs no call of its own;
   * else, and on a retry, a unary call. Then every partition's sequence starts again at 0 under the answered id
   * and epoch.
   */
  private async endTransaction(commit: boolean, unary = false): Promise<void> {
    const end = this.endRequest(commit);
    let attempt = unary ? 1 : 0;
    const r = await withRetries(
      () => {
        // A retry goes unary: the bootstrap transport finds a live broker if the stream's is gone.
        const channel = attempt++ === 0 ? this.channels.values().next().value : undefined;
        return channel !== undefined
          ? channel.endTransaction(end)
          : this.conn.transport.endTransaction(end, { timeoutMs: this.conn.requestTimeoutMs });
      },
      this.conn.retry,
      { random: this.conn.random },
    );
    this.adoptEnd(r);
  }

  private endRequest(commit: boolean): EndTransactionStreamInput["endTransaction"] {
    const id = this.identity!.current!;
    return { transactionalId: this.transactionalId, producerId: BigInt(id.producerId), producerEpoch: id.producerEpoch, commit };
  }

  /** After an end: the answered id and epoch, and every partition's sequence from 0. */
  private adoptEnd(r: EndTransactionResponse): void {
    this.identity!.adopt({ producerId: toNumber(r.producerId, "producer_id"), producerEpoch: r.producerEpoch });
    for (const q of this.allQueues()) {
      q.sequence.next = 0;
      q.acked = false;
    }
  }

  /** The partition count of `topic` (from the broker, cached); rejects for an unknown topic. */
  partitionCount(topic: string): Promise<number> {
    return this.metadata.partitionCount(topic);
  }

  /** True when retries write each record once and in order (see `ProducerOptions.idempotent`). */
  get idempotent(): boolean {
    return this.identity !== null;
  }

  /** The producer id and epoch in use; null without idempotence or before the first batch is sent. */
  get producerIdAndEpoch(): ProducerIdAndEpoch | null {
    return this.identity?.current ?? null;
  }

  /** A copy of the producer's counters. */
  get stats(): ProducerStats {
    return { ...this.counters };
  }

  /**
   * Bytes of records held by the producer (batching, in flight, retrying), as estimated from
   * their keys, values and headers plus a few bytes of framing each; never above `bufferBytes`.
   */
  get bufferedBytes(): number {
    return this.budget.usedBytes;
  }

  /**
   * Sends one record; resolves once the broker has acknowledged it (as `acks` asks) with its
   * partition and offset, or rejects with why it could not be stored. Waits for buffer space
   * first when the producer holds `bufferBytes` already.
   */
  send(record: ProducerRecord<K, V>): Promise<RecordMetadata> {
    return this.sendIn(record, undefined);
  }

  /** `send`, for `tx.send` of transaction `txn` when given: a failure is noted there at once. */
  private sendIn(record: ProducerRecord<K, V>, txn: TxnState | undefined): Promise<RecordMetadata> {
    if (this.state !== "open") return failedSend(new ClientClosedError("producer"), txn);
    if (this.fatal !== null) return failedSend(this.fatal, txn);
    let item: RecordItem;
    try {
      item = this.prepare(this.serialize(record));
    } catch (e) {
      return failedSend(e, txn);
    }
    return this.enqueue(item, txn);
  }

  /**
   * Sends many records, of any topics, in one call (kafkajs' `sendBatch`): a list of records, or
   * `{topicMessages: [{topic, messages}]}`. Every record is checked (and serialized) first — one
   * bad record rejects the call with an INVALID_ARGUMENT naming its index and sends nothing;
   * then all are queued in order (per partition they keep it). Resolves with each record's
   * metadata, in input order, once all are acknowledged; rejects with the first failure once all
   * are settled.
   */
  async sendBatch(
    batch:
      | readonly ProducerRecord<K, V>[]
      | {
          readonly topicMessages: readonly { readonly topic: string; readonly messages: readonly Omit<ProducerRecord<K, V>, "topic">[] }[];
        },
  ): Promise<RecordMetadata[]> {
    if (this.state !== "open") throw new ClientClosedError("producer");
    if (this.fatal !== null) throw this.fatal;
    const records = Array.isArray(batch)
      ? (batch as readonly ProducerRecord<K, V>[])
      : (
          batch as { topicMessages: readonly { topic: string; messages: readonly Omit<ProducerRecord<K, V>, "topic">[] }[] }
        ).topicMessages.flatMap((t) => t.messages.map((m) => ({ ...m, topic: t.topic })));
    const items = records.map((r, i) => {
      try {
        return this.prepare(this.serialize(r));
      } catch (e) {
        throw e instanceof RillError ? new RillError(e.kind, `records[${i}]: ${e.message}`) : e;
      }
    });
    const settled = await Promise.allSettled(items.map((item) => this.enqueue(item)));
    const failed = settled.find((s) => s.status === "rejected");
    if (failed !== undefined) throw failed.reason;
    return settled.map((s) => (s as PromiseFulfilledResult<RecordMetadata>).value);
  }

  /** The record with its key and value through `serializers` (nulls untouched). */
  private serialize(r: ProducerRecord<K, V>): ProducerRecord {
    const ser = this.serializers;
    if (ser === undefined) return r as ProducerRecord;
    const key =
      r.key === undefined || r.key === null || ser.key === undefined
        ? r.key
        : serializerOf(ser.key)(r.key, { topic: r.topic, field: "key" });
    const value =
      r.value === null || ser.value === undefined ? r.value : serializerOf(ser.value)(r.value, { topic: r.topic, field: "value" });
    return { ...r, key, value } as ProducerRecord;
  }

  private enqueue(item: RecordItem, txn?: TxnState): Promise<RecordMetadata> {
    const p = new Promise<RecordMetadata>((resolve, reject) => {
      item.delivery = { timestampMs: item.input.timestampMs!, resolve, reject, txn, promise: undefined, failedEarly: false };
      if (this.intake.length === 0 && this.tryAppendNow(item)) return;
      this.intake.push(item);
      void this.pump();
    });
    if (txn !== undefined) {
      item.delivery.promise = p;
      if (item.delivery.failedEarly) p.catch(noop);
    }
    return p;
  }

  /**
   * Resolves when a `send` would be taken without waiting: nothing queued before it and room in
   * the buffer. A loop that does not await each `send` awaits this instead, like a stream's
   * 'drain', so that the records it has not handed over yet stay its own, bounded, business.
   */
  async ready(): Promise<void> {
    while (this.state === "open") {
      if (this.intake.length > 0) await new Promise<void>((resolve) => this.intakeWaiters.push(resolve));
      else if (this.budget.usedBytes >= this.budget.capacity) await this.budget.whenFree();
      else return;
    }
  }

  /** Sends every open batch now and waits until all records sent before this call are answered. */
  async flush(): Promise<void> {
    if (this.state === "closed") return;
    const done = await new Promise<Promise<void>>((resolve) => {
      this.intake.push({ kind: "flush", resolve });
      void this.pump();
    });
    await done;
  }

  /** Flushes, then closes: later sends reject with ClientClosedError. Idempotent. */
  close(): Promise<void> {
    if (this.closing !== null) return this.closing;
    this.unregisterSignals();
    this.closing = (async () => {
      try {
        await this.flush();
      } finally {
        this.state = "closed";
        this.budget.failWaiters(new ClientClosedError("producer"));
        await Promise.all([...this.channels.values()].map((c) => c.close()));
        this.metadata.close();
        if (this.conn.owned) this.conn.transport.close();
      }
    })();
    this.state = "closing";
    return this.closing;
  }

  // -------------------------------------------------------------------------------------------
  // Intake

  private prepare(r: ProducerRecord): RecordItem {
    if (typeof r.topic !== "string" || r.topic === "") throw new RillError(Errors.INVALID_ARGUMENT, "topic: must be a non-empty string");
    checkBytes(r.key, "key");
    checkBytes(r.value, "value");
    const partition = r.partition === undefined ? undefined : checkInt(r.partition, "partition", 0, 0x7fffffff);
    const timestampMs =
      r.timestampMs === undefined ? this.clock.nowMs() : checkInt(r.timestampMs, "timestampMs", 0, Number.MAX_SAFE_INTEGER);
    const headers = headersOf(r.headers);
    const key = r.key ?? null;
    const value = r.value ?? null;
    let bytes = RECORD_OVERHEAD + byteLength(key) + byteLength(value);
    for (const h of headers ?? []) bytes += HEADER_OVERHEAD + byteLength(h.key) + byteLength(h.value);
    if (bytes > this.budget.capacity) {
      throw new RillError(Errors.MESSAGE_TOO_LARGE, `record: about ${bytes} bytes, more than bufferBytes (${this.budget.capacity})`);
    }
    const keyBytes = key === null ? null : typeof key === "string" ? Buffer.from(key, "utf8") : key;
    const input: RecordInput = { key, value, headers, timestampMs };
    return { kind: "record", topic: r.topic, partition, keyBytes, input, bytes, delivery: undefined as unknown as Delivery };
  }

  /** The record's partition if it can be known without I/O, else undefined. */
  private partitionNow(item: RecordItem): number | undefined {
    const count = this.metadata.cachedPartitionCount(item.topic);
    if (count === undefined) return undefined;
    if (item.partition !== undefined) return item.partition < count ? item.partition : undefined;
    return this.partitioner.partition(item.topic, item.keyBytes, count);
  }

  private async partitionLater(item: RecordItem): Promise<number> {
    let count = await this.metadata.partitionCount(item.topic);
    if (item.partition === undefined) return this.partitioner.partition(item.topic, item.keyBytes, count);
    if (item.partition >= count) {
      this.metadata.invalidate(item.topic); // the topic may have grown
      count = await this.metadata.partitionCount(item.topic);
    }
    if (item.partition >= count) {
      throw new RillError(
        Errors.UNKNOWN_TOPIC_OR_PARTITION,
        `partition: ${item.partition} is not in [0, ${count}) (topic "${item.topic}" has ${count} partitions)`,
      );
    }
    return item.partition;
  }

  /** Appends at once when the partition is known and the buffer has room (the common case). */
  private tryAppendNow(item: RecordItem): boolean {
    const partition = this.partitionNow(item);
    if (partition === undefined || !this.budget.tryAcquire(item.bytes)) return false;
    this.append(item, partition);
    return true;
  }

  /** Works through the intake in order; only one pump runs at a time. */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (let item = this.intake.peek(); item !== undefined; item = this.intake.peek()) {
        if (item.kind === "flush") {
          this.intake.shift();
          item.resolve(this.sealAll());
        } else {
          if (!this.tryAppendNow(item)) await this.admit(item); // await only when it must wait
          this.intake.shift();
        }
      }
    } finally {
      this.pumping = false;
      for (const wake of this.intakeWaiters.splice(0)) wake();
    }
  }

  /** Resolves the partition and buffer space of the first intake record, then appends it. */
  private async admit(item: RecordItem): Promise<void> {
    let partition = this.partitionNow(item);
    try {
      if (partition === undefined) partition = await this.partitionLater(item);
      if (!this.budget.tryAcquire(item.bytes)) {
        this.readyAll(); // lingering cannot help while the buffer is full
        await this.budget.acquire(item.bytes);
      }
    } catch (e) {
      failDelivery(item.delivery, e);
      return;
    }
    this.append(item, partition);
  }

  // -------------------------------------------------------------------------------------------
  // Batching

  private queueOf(topic: string, partition: number): PartitionQueue {
    let byPartition = this.queues.get(topic);
    if (byPartition === undefined) {
      byPartition = new Map();
      this.queues.set(topic, byPartition);
    }
    let q = byPartition.get(partition);
    if (q === undefined) {
      q = {
        topic,
        partition,
        open: null,
        lingerTimer: null,
        sealed: new Fifo(),
        window: [],
        retryTimer: null,
        sequence: new SequenceCounter(),
        gapCause: null,
        acked: false,
      };
      byPartition.set(partition, q);
    }
    return q;
  }

  private allQueues(): PartitionQueue[] {
    return [...this.queues.values()].flatMap((m) => [...m.values()]);
  }

  private append(item: RecordItem, partition: number): void {
    if (this.fatal !== null) {
      this.budget.release(item.bytes);
      failDelivery(item.delivery, this.fatal);
      return;
    }
    const q = this.queueOf(item.topic, partition);
    if (q.open !== null && q.open.bytes + item.bytes > this.batchBytes) this.sealAndSend(q);
    let b = q.open;
    if (b === null) {
      b = new ProducerBatch(item.topic, partition);
      q.open = b;
      this.lingering.add(q);
      const batch = b;
      const expire = (): void => {
        if (q.open === batch) this.markReady(q);
      };
      q.lingerTimer = this.lingerMs === 0 ? { immediate: setImmediate(expire) } : { timer: setTimeout(expire, this.lingerMs) };
    }
    b.inputs.push(item.input);
    b.deliveries.push(item.delivery);
    b.bytes += item.bytes;
    if (b.bytes >= this.batchBytes) this.sealAndSend(q);
  }

  /**
   * The open batch may go as it is: it is sealed and sent as soon as its partition has room in
   * flight. Until then it keeps taking records (up to `batchBytes`): sealing a batch that has to
   * wait anyway would only make batches smaller, and the producer slower, when it is behind.
   */
  private markReady(q: PartitionQueue): void {
    q.open!.ready = true;
    this.lingering.delete(q);
    stopLinger(q.lingerTimer);
    q.lingerTimer = null;
    this.sendNext(q);
  }

  /** Marks every open batch ready. */
  private readyAll(): void {
    for (const q of [...this.lingering]) this.markReady(q);
  }

  /** Marks every open batch ready; resolves when every batch existing now is answered. */
  private sealAll(): Promise<void> {
    this.readyAll();
    const done: Promise<void>[] = [];
    for (const q of this.allQueues()) {
      for (const b of q.window) done.push(b.done);
      for (const b of q.sealed.toArray()) done.push(b.done);
      if (q.open !== null) done.push(q.open.done);
    }
    return Promise.all(done).then(() => undefined);
  }

  /** Closes the open batch: no more records join it; it waits in `sealed` for its turn. */
  private seal(q: PartitionQueue): void {
    const b = q.open!;
    q.open = null;
    this.lingering.delete(q);
    stopLinger(q.lingerTimer);
    q.lingerTimer = null;
    this.partitioner.onBatchSealed(q.topic, q.partition, this.metadata.cachedPartitionCount(q.topic) ?? 1);
    q.sealed.push(b);
  }

  private sealAndSend(q: PartitionQueue): void {
    this.seal(q);
    this.sendNext(q);
  }

  // -------------------------------------------------------------------------------------------
  // Sending

  /**
   * Sends the partition's sealed batches, then its open batch if it is ready, while it has room
   * in flight — unless a batch waits to be re-sent (it goes first), the producer waits for a
   * producer id or epoch, or it is fenced.
   *
   * The first batch of a partition under a producer id and epoch goes alone: the broker takes a
   * producer it has no state for at any sequence (Kafka's rule since KIP-360), so had that batch
   * failed retriably while the next one was in flight, the next one would be written first.
   */
  private sendNext(q: PartitionQueue): void {
    if (this.fatal !== null || this.codecLoading || (q.sealed.length === 0 && q.open?.ready !== true)) return;
    if (q.retryTimer !== null || q.window.some(waitingForResend)) return;
    if (this.needsIdentity) {
      this.acquireIdentity();
      return;
    }
    const limit = this.identity === null || q.acked ? this.inFlightPerPartitionMax : 1;
    while (q.window.length < limit) {
      if (q.sealed.length === 0) {
        if (q.open?.ready !== true) break;
        this.seal(q);
      }
      const b = q.sealed.shift()!;
      if (!this.encode(q, b)) continue;
      q.window.push(b);
      this.inFlightBatches++;
      this.counters.inFlightPerPartitionPeak = Math.max(this.counters.inFlightPerPartitionPeak, q.window.length);
      this.dispatch(q, b);
    }
  }

  /** Holds batches back until the zstd codec has loaded, then sends what waited. */
  private waitForCodec(): void {
    this.codecLoading = true;
    const resume = (): void => {
      this.codecLoading = false;
      for (const partitions of this.queues.values()) for (const q of partitions.values()) this.sendNext(q);
    };
    initCodecs().then(resume, resume);
  }

  /** Encodes a batch for its first send, stamped with the producer id, epoch and next sequence. */
  private encode(q: PartitionQueue, b: ProducerBatch): boolean {
    const id = this.identity?.current ?? null;
    try {
      const producer = id === null ? {} : { producerId: id.producerId, producerEpoch: id.producerEpoch, baseSequence: q.sequence.next };
      b.transactional = this.txn !== null;
      b.encoded = encodeBatch(b.inputs, { compression: this.codec, ...producer, isTransactional: b.transactional });
    } catch (e) {
      this.complete(b, e);
      return false;
    }
    if (id !== null) b.baseSequence = q.sequence.take(b.deliveries.length);
    b.inputs = []; // the encoded bytes are all that is needed from here on
    return true;
  }

  /** The ProduceChannel of the broker at `address`. */
  private channelFor(address: string): ProduceChannel {
    let c = this.channels.get(address);
    if (c === undefined) {
      // The broker answers REQUEST_TIMED_OUT after timeout_ms; the stream is given up a little later.
      c = new ProduceChannel(this.conn.pool.get(address), {
        inFlightMax: this.inFlightRequestsMax,
        responseTimeoutMs: this.conn.requestTimeoutMs + 5000,
      });
      this.channels.set(address, c);
    }
    return c;
  }

  /** Sends a batch to its partition's leader (as the metadata knows it now). */
  private dispatch(q: PartitionQueue, b: ProducerBatch): void {
    b.attempts++;
    b.onWire = true;
    this.counters.requests++;
    const request = {
      topic: b.topic,
      partition: b.partition,
      recordBatch: b.encoded!,
      acks: this.acks,
      timeoutMs: this.conn.requestTimeoutMs,
      ...(b.transactional ? { transactionalId: this.transactionalId } : {}),
    };
    let sent: Promise<ProduceResponse>;
    try {
      const channel = this.channelFor(this.metadata.addressOf(b.topic, b.partition));
      b.channel = channel;
      const rider = this.endRider;
      if (rider !== null && rider.batch === b && this.mayCarryEnd(b, channel)) {
        // The transaction's last records and its commit in one message (issue 17).
        const both = channel.sendWithEnd(request, this.endRequest(true));
        rider.carried = both.ended;
        sent = both.produced;
      } else {
        sent = channel.send(request);
      }
    } catch (e) {
      sent = Promise.reject(e);
    }
    sent.then(
      (res) => {
        const r = res.partitions.find((p) => p.partition === b.partition) ?? res.partitions[0];
        if (r === undefined)
          this.onFailure(q, b, new RillError(Errors.UNKNOWN_SERVER_ERROR, `${b.topic}-${b.partition}: response has no partition result`));
        else if (r.error !== undefined) this.onFailure(q, b, fromErrorDetail(r.error, `${b.topic}-${b.partition}`));
        else this.onSuccess(q, b, toNumber(r.baseOffset, "baseOffset"), toNumber(r.logAppendTimeMs, "logAppendTimeMs"));
      },
      (e: unknown) => this.onFailure(q, b, e),
    );
  }

  private onSuccess(q: PartitionQueue, b: ProducerBatch, baseOffset: number, logAppendTimeMs: number): void {
    b.onWire = false;
    q.acked = true;
    const { topic, partition } = b;
    b.deliveries.forEach((d, i) => {
      const offset = baseOffset < 0 ? -1 : baseOffset + i;
      d.resolve({ topic, partition, offset, timestampMs: logAppendTimeMs >= 0 ? logAppendTimeMs : d.timestampMs });
    });
    this.finish(q, b);
  }

  /** Decides what a failed request means for its batch: re-send, fail it, or fence the producer. */
  private onFailure(q: PartitionQueue, b: ProducerBatch, e: unknown): void {
    b.onWire = false;
    if (this.fatal !== null) return this.fail(q, b, this.fatal);
    if (this.identity !== null) {
      if (isFencing(e)) {
        if (b.transactional && this.txn?.endLost === true) {
          // Re-sent after the transaction's commit went unanswered: that commit may be what fenced it.
          this.txn.undecided.push({ batch: b, error: e });
          return this.finish(q, b);
        }
        this.fence(e);
        return this.fail(q, b, this.fatal!);
      }
      if (isDuplicateSequence(e)) return this.onSuccess(q, b, -1, -1); // written before; offsets unknown
      if (isOutOfOrderSequence(e)) {
        // An earlier batch still unanswered (or waiting for its re-send) fills the gap: go after it.
        if (q.window.slice(0, q.window.indexOf(b)).some((x) => !x.finished)) return this.scheduleRetry(q, b, false);
        return this.fail(
          q,
          b,
          sequenceGapError(
            `${b.topic}-${b.partition}`,
            this.identity.current,
            sequenceRange(b.baseSequence, b.deliveries.length),
            q.gapCause,
            e,
          ),
        );
      }
    }
    if (this.state !== "closed" && isRetriable(e) && b.retries < this.conn.retry.retries) {
      if (e instanceof RillError && e.kind === Errors.UNKNOWN_TOPIC_OR_PARTITION) this.metadata.invalidate(b.topic);
      if (isStaleMetadata(e)) void this.metadata.requestRefresh();
      return this.scheduleRetry(q, b, true);
    }
    this.fail(q, b, e);
  }

  /**
   * Marks `b` for a re-send; the partition re-sends its marked batches, in order, after a backoff
   * and after any metadata refresh under way (so they go to the leader it finds). `retryTimer`
   * stays set until then: nothing else of the partition is sent meanwhile.
   */
  private scheduleRetry(q: PartitionQueue, b: ProducerBatch, counted: boolean): void {
    if (counted) b.retries++;
    this.counters.retries++;
    if (q.retryTimer !== null) return;
    const waitMs = backoffMs(this.conn.retry, Math.max(0, b.retries - 1), this.conn.random);
    const timer = setTimeout(() => {
      void this.metadata.settled().then(() => {
        if (q.retryTimer !== timer) return; // cleared (fenced)
        q.retryTimer = null;
        if (this.fatal !== null) return;
        for (const x of q.window) if (waitingForResend(x)) this.dispatch(q, x);
        this.sendNext(q);
      });
    }, waitMs);
    q.retryTimer = timer;
  }

  /** Fails an in-flight batch for good; with idempotence its partition's sequence is now unresolved. */
  private fail(q: PartitionQueue, b: ProducerBatch, e: unknown): void {
    if (this.identity !== null && this.fatal === null) {
      this.needsIdentity = true; // a new epoch restarts the sequences once nothing is in flight
      if (q.gapCause === null && b.baseSequence >= 0) {
        q.gapCause = `sequences ${sequenceRange(b.baseSequence, b.deliveries.length)}: ${e instanceof Error ? e.message : String(e)}`;
      }
    }
    for (const d of b.deliveries) failDelivery(d, e);
    this.finish(q, b);
  }

  /** An in-flight batch was answered for good: it leaves the window once no older batch is open. */
  private finish(q: PartitionQueue, b: ProducerBatch): void {
    if (!b.finished) this.inFlightBatches--;
    this.complete(b);
    while (q.window.length > 0 && q.window[0]!.finished) q.window.shift();
    this.sendNext(q);
    if (this.needsIdentity && this.inFlightBatches === 0) this.acquireIdentity();
  }

  /** Gives the batch's bytes back, fails its records when `error` is given, and marks it done. */
  private complete(b: ProducerBatch, error?: unknown): void {
    if (b.finished) return;
    b.finished = true;
    if (error !== undefined) for (const d of b.deliveries) failDelivery(d, error);
    this.budget.release(b.bytes - HEADER_SIZE);
    b.markDone();
  }

  // -------------------------------------------------------------------------------------------
  // Idempotence: producer id and epoch, fencing

  /**
   * Gets a producer id (first batch) or a new epoch (after a sequence was left unresolved) once
   * no batch is in flight, so no batch of the old epoch can land after one of the new; then
   * restarts every partition's sequence at 0 and sends what waited.
   */
  private acquireIdentity(): void {
    if (this.acquiringIdentity || this.inFlightBatches > 0 || this.fatal !== null || this.identity === null) return;
    this.acquiringIdentity = true;
    this.identity.acquire().then(
      () => {
        this.acquiringIdentity = false;
        this.needsIdentity = false;
        this.counters.producerIdsAcquired++;
        const queues = this.allQueues();
        for (const q of queues) {
          q.sequence.next = 0;
          q.gapCause = null;
          q.acked = false;
        }
        for (const q of queues) this.sendNext(q);
      },
      (e: unknown) => {
        this.acquiringIdentity = false;
        if (isFencing(e)) return this.fence(e);
        // Nothing can be sent without an id: fail what waits; the next batch asks again.
        for (const q of this.allQueues()) {
          if (q.open?.ready === true) this.seal(q);
          for (const b of q.sealed.drain()) this.complete(b, e);
        }
      },
    );
  }

  /**
   * A newer instance holds the producer id: from now on every send fails with PRODUCER_FENCED.
   * Records not on the wire fail at once; those on the wire end with their own answer.
   */
  private fence(cause: unknown): void {
    if (this.fatal !== null) return;
    const error = fencedError(this.identity?.current ?? null, cause);
    this.fatal = error;
    for (const q of this.allQueues()) {
      if (q.retryTimer !== null) clearTimeout(q.retryTimer);
      q.retryTimer = null;
      stopLinger(q.lingerTimer);
      q.lingerTimer = null;
      const open = q.open;
      q.open = null;
      this.lingering.delete(q);
      if (open !== null) this.complete(open, error);
      for (const b of q.sealed.drain()) this.complete(b, error);
      for (const b of q.window.filter(waitingForResend)) {
        this.inFlightBatches--;
        this.complete(b, error);
      }
      const onWire = q.window.filter((x) => !x.finished);
      q.window.splice(0, q.window.length, ...onWire);
    }
  }
}
