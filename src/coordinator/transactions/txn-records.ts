/**
 * Transaction records: the only way the transaction coordinator's state changes. They live in
 * the internal compacted topic `__transaction_state`, one key per transactional id, so the
 * latest record of an id is its whole state (Kafka's TransactionLogValue) and compaction keeps
 * exactly what a new coordinator needs to replay.
 *
 *   txn:<transactional id>    TxnStateRecord (tombstone: the id expired)
 *
 * Bytes: the key as UTF-8; the value one JSON document (`v: 1`); a null value is the tombstone.
 * An unknown type or version fails loudly.
 */
import { rillError } from "../../base/errors.ts";

/** The states of a transaction (Kafka's TransactionState names). */
export const TXN_STATE_NAMES = [
  "Empty",
  "Ongoing",
  "PrepareCommit",
  "PrepareAbort",
  "CompleteCommit",
  "CompleteAbort",
  "Dead",
  "PrepareEpochFence",
] as const;
export type TxnState = (typeof TXN_STATE_NAMES)[number];

/** A partition of a transaction. */
export interface TxnPartition {
  readonly topic: string;
  readonly partition: number;
}

/** One transactional id's whole state. */
export interface TxnStateRecord {
  readonly type: "txn";
  readonly v: 1;
  readonly transactionalId: string;
  readonly producerId: number;
  readonly producerEpoch: number;
  /** The producer id before the last switch (epoch overflow), -1 when none. */
  readonly lastProducerId: number;
  /** The epoch the producer held before the last bump (TV2 end, fence), -1 when none. */
  readonly lastProducerEpoch: number;
  readonly timeoutMs: number;
  readonly state: TxnState;
  /** Partitions of the open (or ending) transaction, sorted. */
  readonly partitions: readonly TxnPartition[];
  /** Groups whose offsets are in the transaction, sorted. */
  readonly groups: readonly string[];
  /** When the open transaction started; -1 when none. */
  readonly startTimeMs: number;
  readonly updateTimeMs: number;
  /**
   * While PrepareCommit/PrepareAbort: the producer id and epoch the client continues with once
   * the markers are written (a new id when the bump overflowed); -1 otherwise.
   */
  readonly nextProducerId: number;
  readonly nextProducerEpoch: number;
  /** 1 or 2: how the transaction's partitions join (TV1 AddPartitionsToTxn, TV2 on produce). */
  readonly txnVersion: 1 | 2;
}

/** The id is forgotten (transactional.id.expiration.ms). */
export interface TxnTombstone {
  readonly type: "txn-tombstone";
  readonly v: 1;
  readonly transactionalId: string;
}

export type TxnRecord = TxnStateRecord | TxnTombstone;

const KEY_PREFIX = "txn:";

/** The compacted-topic key of a transactional id. */
export function txnKey(transactionalId: string): string {
  return KEY_PREFIX + transactionalId;
}

/** Key and value of a record (value null for the tombstone). */
export function txnToKeyValue(r: TxnRecord): { key: string; value: Buffer | null } {
  return { key: txnKey(r.transactionalId), value: r.type === "txn-tombstone" ? null : Buffer.from(JSON.stringify(r), "utf8") };
}

/** The record a key and value hold (throws INVALID_RECORD on anything else). */
export function txnFromKeyValue(key: string, value: Uint8Array | null): TxnRecord {
  if (!key.startsWith(KEY_PREFIX)) throw rillError("INVALID_RECORD", `__transaction_state: key "${key}" is not a transaction key`);
  const transactionalId = key.slice(KEY_PREFIX.length);
  if (value === null) return { type: "txn-tombstone", v: 1, transactionalId };
  const r = JSON.parse(Buffer.from(value).toString("utf8")) as Partial<TxnStateRecord>;
  if (r.type !== "txn" || r.v !== 1)
    throw rillError("INVALID_RECORD", `__transaction_state: unknown record ${String(r.type)} v${String(r.v)}`);
  if (r.transactionalId !== transactionalId)
    throw rillError("INVALID_RECORD", `__transaction_state: record of "${String(r.transactionalId)}" under key "${key}"`);
  if (!TXN_STATE_NAMES.includes(r.state as TxnState))
    throw rillError("INVALID_RECORD", `__transaction_state: unknown state ${String(r.state)}`);
  return r as TxnStateRecord;
}
