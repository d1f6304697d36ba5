/**
 * Control records: the commit and abort markers a transaction coordinator writes into every
 * partition of a transaction (Kafka's EndTransactionMarker). A marker travels as a control batch:
 * a RecordBatch v2 with the transactional and control attribute bits set, the producer's id and
 * epoch, baseSequence -1 and exactly one record, whose key and value are:
 *
 * ```
 *  key (4 bytes)                        value (6 bytes)
 *  offset size field                    offset size field
 *       0    2 version  i16, 0               0    2 version           i16, 0
 *       2    2 type     i16                  2    4 coordinatorEpoch  i32
 *                       0 = ABORT, 1 = COMMIT
 * ```
 *
 * Readers skip a control record whose key version they do not know (Kafka's rule: newer control
 * types must not break old consumers); `readControlRecord` answers null for it. A value longer
 * than 6 bytes (a newer value version with more fields) is read for its first two fields.
 */
import { rillError } from "../base/errors.ts";
import { type BatchHeader, encodeBatch, NO_PRODUCER_ID, readBatchHeader, records } from "./record-batch.ts";

/** Control record types (the key's `type`). */
export const ControlType = { ABORT: 0, COMMIT: 1 } as const;

/** The key version this codec writes and understands. */
const KEY_VERSION = 0;
/** The value version this codec writes. */
const VALUE_VERSION = 0;
const KEY_SIZE = 4;
const VALUE_SIZE = 6;

/** A transaction marker, as a coordinator asks for it. */
export interface TxnMarker {
  readonly producerId: number;
  readonly producerEpoch: number;
  /** True: COMMIT; false: ABORT. */
  readonly commit: boolean;
  /** The epoch of the coordinator that wrote it (the `__transaction_state` partition's leader epoch). */
  readonly coordinatorEpoch: number;
}

/** What `encodeControlBatch` needs: the marker and the time it is written. */
export interface ControlBatchInput extends TxnMarker {
  readonly timestampMs: number;
}

/** A decoded control record. */
export interface ControlRecord {
  /** True: COMMIT; false: ABORT. */
  readonly commit: boolean;
  readonly coordinatorEpoch: number;
}

/** The key of a control record of `type`. */
export function controlKey(type: number): Buffer {
  const key = Buffer.allocUnsafe(KEY_SIZE);
  key.writeInt16BE(KEY_VERSION, 0);
  key.writeInt16BE(type, 2);
  return key;
}

/**
 * One control batch holding the marker: attributes transactional | control, the producer id and
 * epoch, baseSequence -1, one record at offset delta 0. Its baseOffset and partitionLeaderEpoch
 * are set by the leader when it appends it. Throws INVALID_ARGUMENT for a producer id < 0, an
 * epoch outside [0, 32767] or a coordinator epoch outside the i32 range.
 */
export function encodeControlBatch(m: ControlBatchInput): Buffer {
  if (!Number.isSafeInteger(m.producerId) || m.producerId < 0) {
    throw rillError("INVALID_ARGUMENT", `producerId: ${m.producerId}: a marker needs a producer id >= 0`);
  }
  if (!Number.isInteger(m.producerEpoch) || m.producerEpoch < 0 || m.producerEpoch > 0x7fff) {
    throw rillError("INVALID_ARGUMENT", `producerEpoch: ${m.producerEpoch} is not in [0, 32767]`);
  }
  if (!Number.isInteger(m.coordinatorEpoch) || m.coordinatorEpoch < -1 || m.coordinatorEpoch > 0x7fffffff) {
    throw rillError("INVALID_ARGUMENT", `coordinatorEpoch: ${m.coordinatorEpoch} is not an i32 >= -1`);
  }
  const value = Buffer.allocUnsafe(VALUE_SIZE);
  value.writeInt16BE(VALUE_VERSION, 0);
  value.writeInt32BE(m.coordinatorEpoch, 2);
  return encodeBatch([{ key: controlKey(m.commit ? ControlType.COMMIT : ControlType.ABORT), value, timestampMs: m.timestampMs }], {
    producerId: m.producerId,
    producerEpoch: m.producerEpoch,
    baseSequence: NO_PRODUCER_ID,
    isTransactional: true,
    isControl: true,
  });
}

/**
 * The control type of a control record's key: 0 ABORT, 1 COMMIT, another number for a type this
 * codec does not know; null when the key is not a control key of a known version. Throws
 * CORRUPT_MESSAGE for a key shorter than 4 bytes.
 */
export function controlTypeOf(key: Uint8Array | null): number | null {
  if (key === null || key.length < KEY_SIZE)
    throw rillError("CORRUPT_MESSAGE", `control record: key of ${key?.length ?? -1} bytes, want 4`);
  const k = Buffer.from(key.buffer, key.byteOffset, key.byteLength);
  if (k.readInt16BE(0) !== KEY_VERSION) return null;
  return k.readInt16BE(2);
}

/**
 * Reads the marker of the control batch at `pos`: null when the batch is not a control batch or
 * its record is of a type or version other than ABORT/COMMIT v0 (skipped by readers). Throws
 * CORRUPT_MESSAGE for a control batch whose record is malformed (no record, a short key or value).
 */
export function readControlRecord(batch: Buffer, pos = 0): ControlRecord | null {
  const h: BatchHeader = readBatchHeader(batch, pos);
  if (!h.isControl) return null;
  const c = records(batch, pos);
  if (!c.next()) throw rillError("CORRUPT_MESSAGE", `control batch at offset ${h.baseOffset}: no record`);
  const type = controlTypeOf(c.key());
  if (type !== ControlType.ABORT && type !== ControlType.COMMIT) return null;
  const value = c.value();
  if (value === null || value.length < VALUE_SIZE) {
    throw rillError("CORRUPT_MESSAGE", `control batch at offset ${h.baseOffset}: value of ${value?.length ?? -1} bytes, want 6`);
  }
  return { commit: type === ControlType.COMMIT, coordinatorEpoch: value.readInt32BE(2) };
}

/** An aborted transaction as a READ_COMMITTED fetch lists it (Kafka's `aborted_transactions`). */
export interface AbortedTxnRef {
  readonly producerId: number;
  readonly firstOffset: number;
}

/** The batch header fields `AbortedTxnFilter` looks at. */
export type FilteredBatch = Pick<BatchHeader, "baseOffset" | "producerId" | "isTransactional" | "isControl">;

/**
 * Kafka's consumer rule for READ_COMMITTED, fed the batches of a fetch in offset order: a
 * producer's transactional batches are dropped from the first offset of one of its aborted
 * transactions until its next control batch; control batches are always dropped (markers are
 * never records). With no aborted transactions only control batches are dropped.
 */
export class AbortedTxnFilter {
  private readonly pending: AbortedTxnRef[];
  private next = 0;
  private readonly active = new Set<number>();

  constructor(aborted: readonly AbortedTxnRef[] = []) {
    this.pending = [...aborted].sort((a, b) => a.firstOffset - b.firstOffset);
  }

  /** True when the batch is dropped. Call for every batch, in offset order. */
  drops(h: FilteredBatch): boolean {
    while (this.next < this.pending.length && this.pending[this.next]!.firstOffset <= h.baseOffset) {
      this.active.add(this.pending[this.next++]!.producerId);
    }
    if (h.isControl) {
      this.active.delete(h.producerId); // its marker ends the producer's transaction
      return true;
    }
    return h.isTransactional && this.active.size > 0 && this.active.has(h.producerId);
  }
}
