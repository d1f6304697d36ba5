/**
 * Per-partition producer state: what the idempotent producer needs from a partition so that a
 * retried batch is written once and in order.
 *
 * For every producer id seen in the partition it keeps the producer's epoch, the time of its last
 * write and the sequence ranges and offsets of its last N batches (N = `batchesPerProducer`, 5 as
 * in Kafka, which is also the bound on a producer's in-flight requests per partition). The state
 * is derived data: every field comes from the batch headers of the log (producerId,
 * producerEpoch, baseSequence, lastOffsetDelta), so recovery and followers rebuild it with
 * `replay`/`record`, and `snapshot`/`loadSnapshot` spare recovery a full rescan.
 *
 * Semantics (those of Kafka's ProducerStateManager / ProducerAppendInfo, client origin):
 * - producerId < 0 (-1 = not idempotent): not tracked; `check` answers `{kind: "none"}`.
 * - Producer with no state: any epoch and any sequence is accepted. Kafka answered
 *   UNKNOWN_PRODUCER_ID here until 2.4; since KIP-360 (2.5) it accepts ("If there is no current
 *   producer epoch (possibly because all producer records have been deleted due to retention or
 *   the DeleteRecords API) accept writes with any sequence number"), because an error makes the
 *   client reset its sequences and re-send, which brings back the duplicates idempotence exists to
 *   prevent. Refusing a producer id that was never issued is the broker's job (it knows the
 *   allocated id range), not this module's.
 * - Epoch older than the current one: INVALID_PRODUCER_EPOCH, as Kafka answers a produce since
 *   2.7 (KIP-588); PRODUCER_FENCED is what InitProducerId-style calls answer. A retry of a batch
 *   written under an older epoch is therefore INVALID_PRODUCER_EPOCH, not a duplicate.
 * - Epoch newer than the current one: its first batch must have baseSequence 0, else
 *   OUT_OF_ORDER_SEQUENCE_NUMBER; once recorded, the batches of the old epoch are forgotten.
 * - Same epoch: a batch whose [baseSequence, lastSequence] equals one of the last N batches is a
 *   duplicate and answers that batch's original offsets; otherwise baseSequence must be the next
 *   sequence (last + 1, wrapping from 2^31-1 to 0), else OUT_OF_ORDER_SEQUENCE_NUMBER. That
 *   includes a duplicate older than the last N batches and a partial overlap: current Kafka
 *   answers OUT_OF_ORDER_SEQUENCE_NUMBER for them too (DUPLICATE_SEQUENCE_NUMBER was the 0.11
 *   broker's answer; the client still accepts it, brokers no longer send it).
 * - A batch with producerId >= 0 but an epoch outside [0, 32767] or a sequence outside
 *   [0, 2^31-1] is malformed: INVALID_RECORD (Kafka's LogValidator rejects a negative sequence
 *   the same way).
 *
 * Using it on the produce path: call `checkAll` with every batch of the request, in order. It
 * checks each batch as if the ones before it in the request had been recorded and changes
 * nothing, so a request is accepted or refused whole. Then append the batches whose answer is
 * "append" (or "none"), and `record` each of them, in log order, with the offsets it got. A
 * request whose idempotent batches are all duplicates answers the original offsets. `check` is
 * the one-batch form; when it is used per batch, `record` must be called between two checks.
 *
 * Transactions (Kafka's KIP-98 model): a producer's transactional batch opens its transaction
 * in this partition if none is open (the transaction's first offset is that batch's base
 * offset); its control batch (a COMMIT or ABORT marker, `recordMarker`) ends it. While a
 * transaction is open, a non-transactional batch of the same producer is INVALID_TXN_STATE.
 * `firstUnstableOffset` is the smallest first offset of the open transactions: the last stable
 * offset of the partition is at most that. A marker older than the producer's epoch is
 * INVALID_PRODUCER_EPOCH, one from an older coordinator than the last marker's
 * TRANSACTION_COORDINATOR_FENCED (`checkMarker`). A marker with a newer epoch (Transaction
 * Version 2 bumps the epoch at every transaction end) makes it the producer's epoch and forgets
 * the old epoch's batches, so the next batch starts a new sequence at 0 and a late batch of the
 * old epoch is fenced. A producer with an open transaction never expires.
 *
 * Time: `record(batch, nowMs)` stamps the producer's last-write time with `nowMs` (kept
 * monotonic); `removeExpired(nowMs)` drops producers idle for at least `producerIdExpirationMs`.
 * Kafka stamps the batch's maxTimestamp instead, which a client clock can put anywhere; the
 * broker's own time cannot expire a producer early. When rebuilding from the log, pass the
 * recovery time: every rebuilt producer then lives at least one more expiration period, and
 * none expires before its time.
 */
import { AssertionError, assert } from "../base/assert.ts";
import { crc32c } from "../base/crc32c.ts";
import { rillError } from "../base/errors.ts";
import type { BatchHeader } from "../protocol/record-batch.ts";
import { incrementSequence, SEQUENCE_MAX } from "../protocol/sequence.ts";

/** Largest producer epoch (an i16). */
export const PRODUCER_EPOCH_MAX = 0x7fff;
/** Batches remembered per producer when not told otherwise (Kafka's 5). */
export const BATCHES_PER_PRODUCER_DEFAULT = 5;
/** Upper bound of `batchesPerProducer`. */
export const BATCHES_PER_PRODUCER_MAX = 1000;

/** One batch of an idempotent producer, as the producer state sees it. */
export interface ProducerBatch {
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  /** baseSequence + lastOffsetDelta, wrapping at 2^31-1 (see `incrementSequence`). */
  lastSequence: number;
  baseOffset: number;
  lastOffset: number;
  maxTimestamp: number;
  /** A batch of a transaction (attributes bit 4); absent: false. */
  isTransactional?: boolean;
}

/** A batch before it has offsets: what `check` and `checkAll` look at. */
export type SequencedBatch = Omit<ProducerBatch, "baseOffset" | "lastOffset">;

/** The answer of `check`: append it; a duplicate (do not append, answer these offsets); or not idempotent. */
export type SequenceCheck = { kind: "append" } | { kind: "duplicate"; baseOffset: number; lastOffset: number } | { kind: "none" };

/** The batch header fields the producer state is built from (a `BatchHeader` has them all). */
export type ProducerBatchHeader = Pick<
  BatchHeader,
  "baseOffset" | "lastOffsetDelta" | "maxTimestamp" | "producerId" | "producerEpoch" | "baseSequence" | "isControl" | "isTransactional"
>;

/** A transaction marker, as the producer state sees it (the control batch's header and record). */
export interface MarkerInput {
  readonly producerId: number;
  readonly producerEpoch: number;
  readonly coordinatorEpoch: number;
  /** True: COMMIT; false: ABORT. */
  readonly commit: boolean;
  /** The marker's offset in the log. */
  readonly offset: number;
}

/**
 * A transaction that a marker ended in this partition: its producer, first offset (the first
 * transactional batch) and last offset (the marker). Markers of producers without an open
 * transaction complete none.
 */
export interface CompletedTxn {
  readonly producerId: number;
  readonly firstOffset: number;
  readonly lastOffset: number;
  readonly aborted: boolean;
}

/** An open transaction of this partition. */
export interface OpenTxn {
  readonly producerId: number;
  readonly producerEpoch: number;
  readonly firstOffset: number;
}

/** How a ProducerStateManager behaves. */
export interface ProducerStateOptions {
  /** A producer idle for at least this long is dropped by `removeExpired` (producer.id.expiration.ms). */
  producerIdExpirationMs: number;
  /** Batches remembered per producer for duplicate detection; default 5, as Kafka. */
  batchesPerProducer?: number;
}

/** One public row of `producers()`. */
export interface ProducerInfo {
  producerId: number;
  producerEpoch: number;
  lastSequence: number;
  lastOffset: number;
  lastTimestamp: number;
}

/**
 * The producer-state view of a batch header, or null when the batch is not tracked (producerId
 * < 0, or a control batch: transaction markers carry no data sequence). `baseOffset` defaults to
 * the header's; pass the assigned one when the header was read before offsets were assigned.
 */
export function producerBatchOf(h: ProducerBatchHeader, baseOffset: number = h.baseOffset): ProducerBatch | null {
  if (h.producerId < 0 || h.isControl) return null;
  return {
    producerId: h.producerId,
    producerEpoch: h.producerEpoch,
    baseSequence: h.baseSequence,
    lastSequence: wellFormedSequence(h.baseSequence) ? incrementSequence(h.baseSequence, h.lastOffsetDelta) : h.baseSequence,
    baseOffset,
    lastOffset: baseOffset + h.lastOffsetDelta,
    maxTimestamp: h.maxTimestamp,
    isTransactional: h.isTransactional,
  };
}

/** A remembered batch. `pending` (checkAll only): index in the request of a batch not yet appended. */
interface CachedBatch {
  readonly baseSequence: number;
  readonly lastSequence: number;
  readonly baseOffset: number;
  readonly lastOffset: number;
  readonly maxTimestamp: number;
  readonly pending?: number;
}

/**
 * The state of one producer. Invariant: batches.length <= N, all of producerEpoch; no batches
 * only after a marker (a new epoch, or a producer first seen by its marker).
 */
interface ProducerEntry {
  readonly producerId: number;
  producerEpoch: number;
  lastTimestamp: number;
  batches: CachedBatch[];
  /** Epoch of the coordinator that wrote this producer's last marker; -1: none yet. */
  coordinatorEpoch: number;
  /** First offset of the producer's open transaction; -1: none open. */
  txnFirstOffset: number;
}

function wellFormedSequence(s: number): boolean {
  return Number.isInteger(s) && s >= 0 && s <= SEQUENCE_MAX;
}

function wellFormedEpoch(e: number): boolean {
  return Number.isInteger(e) && e >= 0 && e <= PRODUCER_EPOCH_MAX;
}

function who(producerId: number, epoch: number, topicPartition: string | undefined): string {
  return `producer ${producerId} epoch ${epoch}${topicPartition === undefined ? "" : ` on ${topicPartition}`}`;
}

/** Throws INVALID_RECORD unless the idempotence fields of `b` (producerId >= 0) are in range. */
function validateFields(b: SequencedBatch, topicPartition: string | undefined): void {
  const at = `for producer ${b.producerId}${topicPartition === undefined ? "" : ` on ${topicPartition}`}`;
  if (!Number.isSafeInteger(b.producerId)) throw rillError("INVALID_RECORD", `producer_id: ${b.producerId} is not an integer`);
  if (!wellFormedEpoch(b.producerEpoch)) {
    throw rillError("INVALID_RECORD", `producer_epoch: ${b.producerEpoch} is not in [0, ${PRODUCER_EPOCH_MAX}] ${at}`);
  }
  if (!wellFormedSequence(b.baseSequence)) {
    throw rillError("INVALID_RECORD", `base_sequence: ${b.baseSequence} is not in [0, ${SEQUENCE_MAX}] ${at}`);
  }
  if (!wellFormedSequence(b.lastSequence)) {
    throw rillError("INVALID_RECORD", `last_sequence: ${b.lastSequence} is not in [0, ${SEQUENCE_MAX}] ${at}`);
  }
}

/** The producer's newest batch; undefined after a marker that started a new epoch. */
function lastBatch(e: ProducerEntry): CachedBatch | undefined {
  return e.batches[e.batches.length - 1];
}

/**
 * The pure check of one well-formed idempotent batch against one producer's state (undefined:
 * no state). Never changes `e`.
 */
function checkEntry(e: ProducerEntry | undefined, b: SequencedBatch, tp: string | undefined): SequenceCheck {
  if (e === undefined) return { kind: "append" };
  if (e.txnFirstOffset >= 0 && b.isTransactional !== true && b.producerEpoch <= e.producerEpoch) {
    throw rillError(
      "INVALID_TXN_STATE",
      `${who(b.producerId, b.producerEpoch, tp)}: a non-transactional batch while the producer's transaction (from offset ${e.txnFirstOffset}) is open`,
    );
  }
  if (b.producerEpoch < e.producerEpoch) {
    throw rillError(
      "INVALID_PRODUCER_EPOCH",
      `producer_epoch: ${b.producerEpoch} is older than the current epoch ${e.producerEpoch} of producer ${b.producerId}` +
        (tp === undefined ? "" : ` on ${tp}`),
    );
  }
  if (b.producerEpoch > e.producerEpoch) {
    if (b.baseSequence !== 0) {
      throw rillError(
        "OUT_OF_ORDER_SEQUENCE_NUMBER",
        `base_sequence: ${b.baseSequence} is not 0, the first sequence of a new epoch, for ${who(b.producerId, b.producerEpoch, tp)} (current epoch ${e.producerEpoch})`,
      );
    }
    return { kind: "append" };
  }
  for (const c of e.batches) {
    if (c.baseSequence !== b.baseSequence || c.lastSequence !== b.lastSequence) continue;
    if (c.pending !== undefined) {
      throw rillError(
        "OUT_OF_ORDER_SEQUENCE_NUMBER",
        `base_sequence: ${b.baseSequence}..${b.lastSequence} repeats batch ${c.pending} of the same request for ${who(b.producerId, b.producerEpoch, tp)}`,
      );
    }
    return { kind: "duplicate", baseOffset: c.baseOffset, lastOffset: c.lastOffset };
  }
  const last = lastBatch(e);
  if (last === undefined) return { kind: "append" }; // a new epoch begun by a marker: no sequence yet
  const next = incrementSequence(last.lastSequence, 1);
  if (b.baseSequence !== next) {
    throw rillError(
      "OUT_OF_ORDER_SEQUENCE_NUMBER",
      `base_sequence: ${b.baseSequence} is not the next sequence ${next} for ${who(b.producerId, b.producerEpoch, tp)}`,
    );
  }
  return { kind: "append" };
}

/** Adds `c` to `e` as its newest batch: a new epoch forgets the old one's batches; keeps the last `keep`. */
function applyBatch(e: ProducerEntry, epoch: number, c: CachedBatch, keep: number): void {
  if (epoch !== e.producerEpoch) {
    e.batches.length = 0;
    e.producerEpoch = epoch;
  }
  e.batches.push(c);
  if (e.batches.length > keep) e.batches.splice(0, e.batches.length - keep);
}

function copyEntry(e: ProducerEntry): ProducerEntry {
  return { ...e, batches: e.batches.slice() };
}

function resolveOptions(opts: ProducerStateOptions): { expirationMs: number; keep: number } {
  const keep = opts.batchesPerProducer ?? BATCHES_PER_PRODUCER_DEFAULT;
  assert(
    Number.isSafeInteger(opts.producerIdExpirationMs) && opts.producerIdExpirationMs >= 1,
    `producerIdExpirationMs: ${opts.producerIdExpirationMs} is not a positive integer`,
  );
  assert(
    Number.isInteger(keep) && keep >= 1 && keep <= BATCHES_PER_PRODUCER_MAX,
    `batchesPerProducer: ${keep} is not an integer in [1, ${BATCHES_PER_PRODUCER_MAX}]`,
  );
  return { expirationMs: opts.producerIdExpirationMs, keep };
}

/**
 * The producer state of one partition. Changes only through `record`, `replay`, `truncateFrom`
 * and `removeExpired`; `check` and `checkAll` are pure.
 */
export class ProducerStateManager {
  private readonly entries = new Map<number, ProducerEntry>();
  /** Producer id → first offset, of every open transaction. */
  private readonly ongoing = new Map<number, number>();
  private readonly expirationMs: number;
  private readonly keep: number;

  /** An empty state. */
  constructor(opts: ProducerStateOptions) {
    const o = resolveOptions(opts);
    this.expirationMs = o.expirationMs;
    this.keep = o.keep;
  }

  /** How many producers have state. */
  get producerCount(): number {
    return this.entries.size;
  }

  /**
   * Checks one batch against the state; changes nothing. `{kind: "none"}` for producerId < 0;
   * `{kind: "duplicate"}` with the original offsets for a retry of one of the producer's last N
   * batches; `{kind: "append"}` when it is the producer's next batch. Throws RillError
   * INVALID_RECORD (fields out of range), INVALID_PRODUCER_EPOCH (epoch older than the current)
   * or OUT_OF_ORDER_SEQUENCE_NUMBER (a gap, an older duplicate, or a new epoch not starting at 0).
   * Several batches in a row: use `checkAll`, or call `record` between two `check`s.
   */
  check(b: SequencedBatch, topicPartition?: string): SequenceCheck {
    if (b.producerId < 0) return { kind: "none" };
    validateFields(b, topicPartition);
    return checkEntry(this.entries.get(b.producerId), b, topicPartition);
  }

  /**
   * Checks the batches of one request in order, each as if the ones before it that answered
   * "append" had been recorded; changes nothing. Returns one answer per batch, or throws the
   * error of the first rejected batch (its message names the batch index). A batch that repeats
   * an earlier batch of the same request is OUT_OF_ORDER_SEQUENCE_NUMBER.
   */
  checkAll(batches: readonly SequencedBatch[], topicPartition?: string): SequenceCheck[] {
    const overlay = new Map<number, ProducerEntry>();
    const out: SequenceCheck[] = [];
    for (let i = 0; i < batches.length; i++) {
      const b = batches[i]!;
      if (b.producerId < 0) {
        out.push({ kind: "none" });
        continue;
      }
      const tp = `${topicPartition ?? "request"} batches[${i}]`;
      validateFields(b, tp);
      const current = overlay.get(b.producerId) ?? this.entries.get(b.producerId);
      const r = checkEntry(current, b, tp);
      out.push(r);
      if (r.kind !== "append") continue;
      const e = overlay.get(b.producerId) ?? (current === undefined ? this.newEntry(b, 0) : copyEntry(current));
      overlay.set(b.producerId, e);
      const pending: CachedBatch = {
        baseSequence: b.baseSequence,
        lastSequence: b.lastSequence,
        baseOffset: -1,
        lastOffset: -1,
        maxTimestamp: b.maxTimestamp,
        pending: i,
      };
      applyBatch(e, b.producerEpoch, pending, this.keep);
    }
    return out;
  }

  /**
   * Records an appended batch: after `check` answered "append", and for every batch when
   * rebuilding from the log or following a leader (no check: the log is the truth). Keeps the
   * producer's last N batches; a different epoch replaces the producer's batches. Batches with
   * producerId < 0 are ignored, and so are malformed ones (epoch or sequence out of range, which
   * `check` never lets into the log). Offsets must grow: a batch at or below the producer's last
   * recorded offset is a bug and crashes.
   */
  record(b: ProducerBatch, nowMs: number): void {
    if (b.producerId < 0 || !Number.isSafeInteger(b.producerId)) return;
    if (!wellFormedEpoch(b.producerEpoch) || !wellFormedSequence(b.baseSequence) || !wellFormedSequence(b.lastSequence)) return;
    // Every appended batch comes here: the checks build their messages only when they fail.
    if (!(Number.isSafeInteger(b.baseOffset) && b.baseOffset >= 0 && Number.isSafeInteger(b.lastOffset) && b.lastOffset >= b.baseOffset))
      throw new AssertionError(`producer ${b.producerId}: bad offsets ${b.baseOffset}..${b.lastOffset}`);
    if (!Number.isSafeInteger(nowMs)) throw new AssertionError(`nowMs: ${nowMs} is not an integer`);
    let e = this.entries.get(b.producerId);
    if (e === undefined) {
      e = this.newEntry(b, nowMs);
      this.entries.set(b.producerId, e);
    } else {
      const prev = lastBatch(e)?.lastOffset ?? -1;
      if (!(b.baseOffset > prev))
        throw new AssertionError(`producer ${b.producerId}: batch at ${b.baseOffset} recorded after one ending at ${prev}`);
      e.lastTimestamp = Math.max(e.lastTimestamp, nowMs);
    }
    const c: CachedBatch = {
      baseSequence: b.baseSequence,
      lastSequence: b.lastSequence,
      baseOffset: b.baseOffset,
      lastOffset: b.lastOffset,
      maxTimestamp: b.maxTimestamp,
    };
    applyBatch(e, b.producerEpoch, c, this.keep);
    if (b.isTransactional === true && e.txnFirstOffset < 0) {
      e.txnFirstOffset = b.baseOffset;
      this.ongoing.set(e.producerId, b.baseOffset);
    }
  }

  /**
   * Checks a marker before the leader appends it; changes nothing. Throws INVALID_RECORD for an
   * id or epoch out of range, INVALID_PRODUCER_EPOCH when the marker's producer epoch is older
   * than the producer's (a fenced coordinator's late marker), TRANSACTION_COORDINATOR_FENCED
   * when its coordinator epoch is older than that of the producer's last marker.
   */
  checkMarker(m: Omit<MarkerInput, "offset" | "commit">, topicPartition?: string): void {
    const at = topicPartition === undefined ? "" : ` on ${topicPartition}`;
    if (!Number.isSafeInteger(m.producerId) || m.producerId < 0) {
      throw rillError("INVALID_RECORD", `producer_id: ${m.producerId}: a marker needs a producer id >= 0`);
    }
    if (!wellFormedEpoch(m.producerEpoch)) {
      throw rillError("INVALID_RECORD", `producer_epoch: ${m.producerEpoch} is not in [0, ${PRODUCER_EPOCH_MAX}]`);
    }
    const e = this.entries.get(m.producerId);
    if (e === undefined) return;
    if (m.producerEpoch < e.producerEpoch) {
      throw rillError(
        "INVALID_PRODUCER_EPOCH",
        `marker: producer_epoch ${m.producerEpoch} is older than the current epoch ${e.producerEpoch} of producer ${m.producerId}${at}`,
      );
    }
    if (m.coordinatorEpoch < e.coordinatorEpoch) {
      throw rillError(
        "TRANSACTION_COORDINATOR_FENCED",
        `marker: coordinator_epoch ${m.coordinatorEpoch} of producer ${m.producerId} is older than ${e.coordinatorEpoch}, that of its last marker${at}`,
      );
    }
  }

  /**
   * Records an appended marker (after `checkMarker`, or replayed from the log, unchecked): ends
   * the producer's open transaction and returns it (null when none was open: a retried marker,
   * or a transaction that wrote nothing here). A newer epoch becomes the producer's, forgetting
   * the old epoch's batches.
   */
  recordMarker(m: MarkerInput, nowMs: number): CompletedTxn | null {
    if (m.producerId < 0 || !Number.isSafeInteger(m.producerId) || !wellFormedEpoch(m.producerEpoch)) return null;
    let e = this.entries.get(m.producerId);
    if (e === undefined) {
      e = {
        producerId: m.producerId,
        producerEpoch: m.producerEpoch,
        lastTimestamp: nowMs,
        batches: [],
        coordinatorEpoch: -1,
        txnFirstOffset: -1,
      };
      this.entries.set(m.producerId, e);
    }
    if (m.producerEpoch > e.producerEpoch) {
      e.producerEpoch = m.producerEpoch;
      e.batches = [];
    }
    e.coordinatorEpoch = Math.max(e.coordinatorEpoch, m.coordinatorEpoch);
    e.lastTimestamp = Math.max(e.lastTimestamp, nowMs);
    if (e.txnFirstOffset < 0) return null;
    assert(m.offset > e.txnFirstOffset, `producer ${m.producerId}: marker at ${m.offset} before its transaction at ${e.txnFirstOffset}`);
    const done: CompletedTxn = { producerId: m.producerId, firstOffset: e.txnFirstOffset, lastOffset: m.offset, aborted: !m.commit };
    e.txnFirstOffset = -1;
    this.ongoing.delete(m.producerId);
    return done;
  }

  /** The smallest first offset of the open transactions; null when none is open. */
  get firstUnstableOffset(): number | null {
    let min: number | null = null;
    for (const o of this.ongoing.values()) if (min === null || o < min) min = o;
    return min;
  }

  /** The open transactions, by first offset (for tools: hanging transactions). */
  openTransactions(): OpenTxn[] {
    const out: OpenTxn[] = [];
    for (const [id, first] of this.ongoing)
      out.push({ producerId: id, producerEpoch: this.entries.get(id)!.producerEpoch, firstOffset: first });
    return out.sort((a, b) => a.firstOffset - b.firstOffset);
  }

  /**
   * Rebuild helper: feed every batch header of the log in order (from a snapshot's offset on);
   * non-idempotent and control batches are skipped. `nowMs`: see "Time" above.
   */
  replay(h: ProducerBatchHeader, nowMs: number): void {
    const b = producerBatchOf(h);
    if (b !== null) this.record(b, nowMs);
  }

  /** Rebuild helper for a control batch: its header and its marker record. */
  replayMarker(h: ProducerBatchHeader, marker: { commit: boolean; coordinatorEpoch: number }, nowMs: number): CompletedTxn | null {
    return this.recordMarker({ producerId: h.producerId, producerEpoch: h.producerEpoch, offset: h.baseOffset, ...marker }, nowMs);
  }

  /**
   * Drops state for batches at or after `offset` (log truncation): a producer's batches that end
   * at or after `offset` are forgotten; a producer with none left is removed. Exact for a
   * producer that keeps a batch; one that keeps none is forgotten although the log may still hold
   * older batches of it, so its next batch is taken at any sequence. For exact state, load a
   * snapshot taken at or before `offset` and replay the log from it instead.
   */
  truncateFrom(offset: number): void {
    assert(Number.isSafeInteger(offset) && offset >= 0, `truncateFrom: bad offset ${offset}`);
    for (const [id, e] of this.entries) {
      if (e.txnFirstOffset >= offset) {
        e.txnFirstOffset = -1;
        this.ongoing.delete(id);
      }
      const last = lastBatch(e);
      if (last === undefined || last.lastOffset < offset) continue;
      e.batches = e.batches.filter((c) => c.lastOffset < offset);
      if (e.batches.length === 0 && e.txnFirstOffset < 0) this.entries.delete(id);
    }
  }

  /** Drops producers whose last write is `producerIdExpirationMs` or more before `nowMs`; returns how many. */
  removeExpired(nowMs: number): number {
    let removed = 0;
    for (const [id, e] of this.entries) {
      if (nowMs - e.lastTimestamp >= this.expirationMs && e.txnFirstOffset < 0) {
        this.entries.delete(id);
        removed++;
      }
    }
    return removed;
  }

  /**
   * The whole state as of `offset` (the log end offset when taken; every recorded batch must end
   * below it), in the snapshot format drawn in the "Snapshot codec" block below.
   */
  snapshot(offset: number): Uint8Array {
    assert(Number.isSafeInteger(offset) && offset >= 0, `snapshot: bad offset ${offset}`);
    return encodeSnapshot(this.sortedEntries(), offset);
  }

  /**
   * Loads a snapshot; returns null if it fails validation (bad magic, version, CRC, length or
   * contents): the caller then rebuilds from the log. Producers with more batches than
   * `opts.batchesPerProducer` keep their newest ones.
   */
  static loadSnapshot(data: Uint8Array, opts: ProducerStateOptions): { state: ProducerStateManager; offset: number } | null {
    const state = new ProducerStateManager(opts);
    const decoded = decodeSnapshot(data);
    if (decoded === null) return null;
    for (const e of decoded.entries) {
      if (e.batches.length > state.keep) e.batches.splice(0, e.batches.length - state.keep);
      state.entries.set(e.producerId, e);
      if (e.txnFirstOffset >= 0) state.ongoing.set(e.producerId, e.txnFirstOffset);
    }
    return { state, offset: decoded.offset };
  }

  /** A canonical, JSON-able view of the whole state (producers by id), for equality in tests. */
  toJSON(): unknown {
    return {
      producers: this.sortedEntries().map((e) => ({
        producerId: e.producerId,
        producerEpoch: e.producerEpoch,
        lastTimestamp: e.lastTimestamp,
        coordinatorEpoch: e.coordinatorEpoch,
        txnFirstOffset: e.txnFirstOffset,
        batches: e.batches.map((c) => ({
          baseSequence: c.baseSequence,
          lastSequence: c.lastSequence,
          baseOffset: c.baseOffset,
          lastOffset: c.lastOffset,
          maxTimestamp: c.maxTimestamp,
        })),
      })),
    };
  }

  /** The producers and their state, by producer id (for DescribeProducers-like tools). */
  producers(): ProducerInfo[] {
    return this.sortedEntries().map((e) => {
      const last = lastBatch(e);
      return {
        producerId: e.producerId,
        producerEpoch: e.producerEpoch,
        lastSequence: last?.lastSequence ?? -1,
        lastOffset: last?.lastOffset ?? -1,
        lastTimestamp: e.lastTimestamp,
      };
    });
  }

  private newEntry(b: SequencedBatch, nowMs: number): ProducerEntry {
    return {
      producerId: b.producerId,
      producerEpoch: b.producerEpoch,
      lastTimestamp: nowMs,
      batches: [],
      coordinatorEpoch: -1,
      txnFirstOffset: -1,
    };
  }

  private sortedEntries(): ProducerEntry[] {
    return [...this.entries.values()].sort((a, b) => a.producerId - b.producerId);
  }
}

// ---------------------------------------------------------------------------------------------
// Snapshot codec.

/**
 * Snapshot format, version 2 (version 1, without the transaction fields, is no longer read: a
 * snapshot is derived data, and the log is replayed instead). Integers big-endian; an i64 is written as hi i32, lo u32 and must
 * be exact in a JS number (|v| <= 2^53).
 *
 * ```
 *  offset size field
 *  ------ ---- -----------------------------------------------------------------------------
 *       0    4 magic          "RLPS" (0x52 0x4c 0x50 0x53)
 *       4    2 version        u16, 1
 *       6    4 crc            u32, CRC32C of bytes [10, end)
 *      10    4 length         u32, bytes after this field (total size - 14)
 *      14    8 offset         i64, log end offset when taken: every batch below ends before it
 *      22    4 producerCount  u32
 *      26    - producers, by strictly ascending producerId, each 32 + 32 * batchCount bytes:
 *              +0   8 producerId        i64, >= 0
 *              +8   2 producerEpoch     i16, 0..32767
 *             +10   8 lastTimestamp     i64, last write time (the nowMs given to record)
 *             +18   4 coordinatorEpoch  i32, of the producer's last marker; -1: none
 *             +22   8 txnFirstOffset    i64, first offset of its open transaction, < offset; -1: none
 *             +30   2 batchCount        u16 (0 only after a marker that began a new epoch)
 *             +32   - batches, oldest first, offsets strictly increasing, 32 bytes each:
 *                     +0  4 baseSequence  i32, 0..2^31-1
 *                     +4  4 lastSequence  i32, 0..2^31-1
 *                     +8  8 baseOffset    i64, >= 0
 *                    +16  8 lastOffset    i64, >= baseOffset, < offset
 *                    +24  8 maxTimestamp  i64
 * ```
 *
 * A reader rejects (loadSnapshot answers null) a wrong magic, an unknown version, a length that
 * disagrees with the bytes, a CRC mismatch, and contents that break the rules above.
 */
const SNAPSHOT_MAGIC = 0x524c5053;
const SNAPSHOT_VERSION = 2;
const SNAPSHOT_CRC_AT = 6;
const SNAPSHOT_LENGTH_AT = 10;
const SNAPSHOT_CRC_START = 10;
const SNAPSHOT_HEADER_SIZE = 26;
const PRODUCER_HEADER_SIZE = 32;
const BATCH_SIZE = 32;
const TWO_32 = 4294967296;

function writeI64(buf: Buffer, p: number, v: number): void {
  const hi = Math.floor(v / TWO_32);
  buf.writeInt32BE(hi, p);
  buf.writeUInt32BE(v - hi * TWO_32, p + 4);
}

function readI64(buf: Buffer, p: number): number {
  return buf.readInt32BE(p) * TWO_32 + buf.readUInt32BE(p + 4);
}

function encodeSnapshot(entries: readonly ProducerEntry[], offset: number): Uint8Array {
  let size = SNAPSHOT_HEADER_SIZE;
  for (const e of entries) size += PRODUCER_HEADER_SIZE + BATCH_SIZE * e.batches.length;
  const buf = Buffer.alloc(size);
  buf.writeUInt32BE(SNAPSHOT_MAGIC, 0);
  buf.writeUInt16BE(SNAPSHOT_VERSION, 4);
  buf.writeUInt32BE(size - SNAPSHOT_LENGTH_AT - 4, SNAPSHOT_LENGTH_AT);
  writeI64(buf, 14, offset);
  buf.writeUInt32BE(entries.length, 22);
  let p = SNAPSHOT_HEADER_SIZE;
  for (const e of entries) {
    writeI64(buf, p, e.producerId);
    buf.writeInt16BE(e.producerEpoch, p + 8);
    writeI64(buf, p + 10, e.lastTimestamp);
    buf.writeInt32BE(e.coordinatorEpoch, p + 18);
    assert(e.txnFirstOffset < offset, `snapshot(${offset}): producer ${e.producerId} has a transaction from ${e.txnFirstOffset}`);
    writeI64(buf, p + 22, e.txnFirstOffset);
    buf.writeUInt16BE(e.batches.length, p + 30);
    p += PRODUCER_HEADER_SIZE;
    for (const c of e.batches) {
      assert(c.lastOffset < offset, `snapshot(${offset}): producer ${e.producerId} has a batch ending at ${c.lastOffset}`);
      buf.writeInt32BE(c.baseSequence, p);
      buf.writeInt32BE(c.lastSequence, p + 4);
      writeI64(buf, p + 8, c.baseOffset);
      writeI64(buf, p + 16, c.lastOffset);
      writeI64(buf, p + 24, c.maxTimestamp);
      p += BATCH_SIZE;
    }
  }
  assert(p === size, "snapshot size");
  buf.writeUInt32BE(crc32c(buf.subarray(SNAPSHOT_CRC_START)), SNAPSHOT_CRC_AT);
  return buf;
}

/** Checks the envelope (magic, version, length, CRC); true when the body may be parsed. */
function envelopeValid(buf: Buffer): boolean {
  if (buf.length < SNAPSHOT_HEADER_SIZE) return false;
  if (buf.readUInt32BE(0) !== SNAPSHOT_MAGIC) return false;
  if (buf.readUInt16BE(4) !== SNAPSHOT_VERSION) return false;
  if (buf.readUInt32BE(SNAPSHOT_LENGTH_AT) !== buf.length - SNAPSHOT_LENGTH_AT - 4) return false;
  return buf.readUInt32BE(SNAPSHOT_CRC_AT) === crc32c(buf.subarray(SNAPSHOT_CRC_START));
}

function decodeSnapshot(data: Uint8Array): { entries: ProducerEntry[]; offset: number } | null {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (!envelopeValid(buf)) return null;
  const offset = readI64(buf, 14);
  if (!Number.isSafeInteger(offset) || offset < 0) return null;
  const count = buf.readUInt32BE(22);
  if (count > (buf.length - SNAPSHOT_HEADER_SIZE) / (PRODUCER_HEADER_SIZE + BATCH_SIZE)) return null;
  const entries: ProducerEntry[] = [];
  let p = SNAPSHOT_HEADER_SIZE;
  let prevId = -1;
  for (let i = 0; i < count; i++) {
    const e = decodeProducer(buf, p, offset);
    if (e === null || e.producerId <= prevId) return null;
    prevId = e.producerId;
    entries.push(e);
    p += PRODUCER_HEADER_SIZE + BATCH_SIZE * e.batches.length;
  }
  return p === buf.length ? { entries, offset } : null;
}

/** One producer at `p`, or null when it runs past the end or breaks the format's rules. */
function decodeProducer(buf: Buffer, p: number, snapshotOffset: number): ProducerEntry | null {
  if (p + PRODUCER_HEADER_SIZE > buf.length) return null;
  const producerId = readI64(buf, p);
  const producerEpoch = buf.readInt16BE(p + 8);
  const lastTimestamp = readI64(buf, p + 10);
  const coordinatorEpoch = buf.readInt32BE(p + 18);
  const txnFirstOffset = readI64(buf, p + 22);
  const n = buf.readUInt16BE(p + 30);
  if (!Number.isSafeInteger(producerId) || producerId < 0 || !wellFormedEpoch(producerEpoch)) return null;
  if (!Number.isSafeInteger(lastTimestamp) || coordinatorEpoch < -1) return null;
  if (!Number.isSafeInteger(txnFirstOffset) || txnFirstOffset < -1 || txnFirstOffset >= snapshotOffset) return null;
  if (p + PRODUCER_HEADER_SIZE + BATCH_SIZE * n > buf.length) return null;
  const batches: CachedBatch[] = [];
  let prevLast = -1;
  for (let q = p + PRODUCER_HEADER_SIZE; batches.length < n; q += BATCH_SIZE) {
    const c = decodeBatch(buf, q);
    if (c === null || c.baseOffset <= prevLast || c.lastOffset >= snapshotOffset) return null;
    prevLast = c.lastOffset;
    batches.push(c);
  }
  return { producerId, producerEpoch, lastTimestamp, batches, coordinatorEpoch, txnFirstOffset };
}

function decodeBatch(buf: Buffer, q: number): CachedBatch | null {
  const c: CachedBatch = {
    baseSequence: buf.readInt32BE(q),
    lastSequence: buf.readInt32BE(q + 4),
    baseOffset: readI64(buf, q + 8),
    lastOffset: readI64(buf, q + 16),
    maxTimestamp: readI64(buf, q + 24),
  };
  if (!wellFormedSequence(c.baseSequence) || !wellFormedSequence(c.lastSequence)) return null;
  if (!Number.isSafeInteger(c.baseOffset) || c.baseOffset < 0 || !Number.isSafeInteger(c.lastOffset)) return null;
  if (c.lastOffset < c.baseOffset || !Number.isSafeInteger(c.maxTimestamp)) return null;
  return c;
}
