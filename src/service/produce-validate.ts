/**
 * Validation of a produce request's fields. Each check throws a RillError whose message names
 * the field (as the wire contract spells it) and the value sent; the caller turns it into a
 * whole-call error. The checks run in the order `ProduceHandler` calls them, which fixes which
 * error a request with several faults gets.
 */
import { rillError } from "../base/errors.ts";
import type { AckLevel } from "../replication/replica-manager.ts";
import { ProduceAcks, type ProduceInput, type ProduceRecord } from "./produce-types.ts";

/** Largest `timeout_ms` accepted (as Kafka's request.timeout.ms bounds). */
export const TIMEOUT_MS_MAX = 300_000;
/** Records one `records` request may carry. */
export const RECORDS_MAX = 1_000_000;

/** The replica manager's level for `acks`; INVALID_REQUIRED_ACKS for unknown values. */
export function ackLevel(acks: number): AckLevel {
  switch (acks) {
    case ProduceAcks.UNSPECIFIED:
    case ProduceAcks.ALL:
      return "all";
    case ProduceAcks.LEADER:
      return "leader";
    case ProduceAcks.NONE:
      return "none";
    default:
      throw rillError("INVALID_REQUIRED_ACKS", `acks: ${acks} is not one of ACKS_NONE, ACKS_LEADER, ACKS_ALL`);
  }
}

/** `timeout_ms` within [0, TIMEOUT_MS_MAX]. */
export function checkTimeout(timeoutMs: number): void {
  if (timeoutMs < 0 || timeoutMs > TIMEOUT_MS_MAX)
    throw rillError("INVALID_REQUEST", `timeout_ms: ${timeoutMs} is not in [0, ${TIMEOUT_MS_MAX}]`);
}

/** Exactly one of `records` and `record_batch`. */
export function checkPayload(input: ProduceInput): void {
  const hasBatch = input.recordBatch !== null;
  const hasRecords = input.records.length > 0;
  if (hasBatch === hasRecords) {
    throw rillError(
      "INVALID_REQUEST",
      hasBatch ? "records, record_batch: send one of them, not both" : "records, record_batch: one of them is required (both are empty)",
    );
  }
}

/** An explicit partition must exist. */
export function checkPartition(input: ProduceInput, partitions: number): void {
  if (input.partition !== undefined && (input.partition < 0 || input.partition >= partitions)) {
    throw rillError(
      "UNKNOWN_TOPIC_OR_PARTITION",
      `partition: ${input.partition} is out of range for topic "${input.topic}" (partitions 0..${partitions - 1})`,
    );
  }
}

/** At most RECORDS_MAX records. */
export function checkRecordCount(count: number): void {
  if (count > RECORDS_MAX) throw rillError("RECORD_LIST_TOO_LARGE", `records: ${count} records is more than ${RECORDS_MAX}`);
}

/** Producer fields of a batch built from `records`. */
export interface BatchProducer {
  readonly producerId?: number;
  readonly producerEpoch?: number;
  readonly baseSequence?: number;
}

/**
 * The producer fields for the batches built from `records`: none unless `producer_id` is set
 * (>= 0); then the partition is required (sequences count per partition) and the epoch and base
 * sequence must not be negative.
 */
export function batchProducer(input: ProduceInput): BatchProducer {
  const idempotent = input.producerId !== undefined && input.producerId >= 0n;
  if (!idempotent) return {};
  if (input.partition === undefined) {
    throw rillError("INVALID_REQUEST", "partition: required with producer_id (sequence numbers count per partition)");
  }
  if (input.baseSequence < 0 || input.producerEpoch < 0) {
    throw rillError(
      "INVALID_REQUEST",
      `base_sequence, producer_epoch: must not be negative with producer_id (got ${input.baseSequence}, ${input.producerEpoch})`,
    );
  }
  return { producerId: Number(input.producerId), producerEpoch: input.producerEpoch, baseSequence: input.baseSequence };
}

/**
 * A record's timestamp is not negative nor above 2^53 - 1 (the batch encoder's range: checked
 * here, before any partition is appended, so a bad record cannot fail the call after another
 * partition was written), and its header keys are not empty.
 */
export function checkRecord(r: ProduceRecord, i: number): void {
  if (r.timestampMs !== null && r.timestampMs < 0n)
    throw rillError("INVALID_TIMESTAMP", `records[${i}].timestamp_ms: ${r.timestampMs} is negative`);
  if (r.timestampMs !== null && r.timestampMs > BigInt(Number.MAX_SAFE_INTEGER))
    throw rillError("INVALID_TIMESTAMP", `records[${i}].timestamp_ms: ${r.timestampMs} is above ${Number.MAX_SAFE_INTEGER}`);
  for (let h = 0; h < r.headers.length; h++) {
    if (r.headers[h]!.key.length === 0) throw rillError("INVALID_RECORD", `records[${i}].headers[${h}].key: header key is empty`);
  }
}

/**
 * Every record has a key: a compacted topic keeps the latest record per key, so Kafka refuses
 * keyless records there (INVALID_RECORD).
 */
export function checkKeys(records: readonly ProduceRecord[], topic: string): void {
  const i = records.findIndex((r) => r.key === null);
  if (i >= 0) {
    throw rillError(
      "INVALID_RECORD",
      `records[${i}].key: missing, but topic "${topic}" is compacted (cleanup.policy compact needs a key on every record)`,
    );
  }
}
