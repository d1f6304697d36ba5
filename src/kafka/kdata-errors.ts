/**
 * Kafka error codes of Rill's catalog, for the data APIs (Metadata, Produce, ListOffsets,
 * InitProducerId) until the shared table (src/kafka/error-codes.ts, from the ksvc branch) is
 * merged: codes below 10,000 are Kafka's own; Rill's own codes answer UNKNOWN_SERVER_ERROR (-1)
 * except the few these APIs meet, mapped as that table maps them.
 * TODO(issue 15): replace with error-codes.ts `kafkaErrorCode` once merged.
 */
import type { RillError } from "../base/errors.ts";

/** Rill's own codes these APIs answer, as the closest Kafka code. */
const OWN: ReadonlyMap<number, number> = new Map([
  [10001, 2], // BATCH_LENGTH_MISMATCH → CORRUPT_MESSAGE
  [10002, 87], // RECORD_COUNT_MISMATCH → INVALID_RECORD
  [10003, 56], // LOG_DIR_LOCKED → KAFKA_STORAGE_ERROR
  [10004, 42], // INVALID_ARGUMENT → INVALID_REQUEST
  [10005, 6], // LOG_CLOSED → NOT_LEADER_OR_FOLLOWER
  [10006, 6], // SHUTTING_DOWN → NOT_LEADER_OR_FOLLOWER
]);

/** The Kafka error code to answer for `e`: 0 (NONE) for null. */
export function kafkaErrorCode(e: RillError | null): number {
  if (e === null) return 0;
  const code = e.code;
  return code < 10_000 ? code : (OWN.get(code) ?? -1);
}

/** Kafka's codes these APIs answer by name. */
export const KafkaCode = {
  NONE: 0,
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  LEADER_NOT_AVAILABLE: 5,
  NOT_LEADER_OR_FOLLOWER: 6,
  INVALID_TOPIC_EXCEPTION: 17,
  TOPIC_AUTHORIZATION_FAILED: 29,
  CLUSTER_AUTHORIZATION_FAILED: 31,
  UNSUPPORTED_FOR_MESSAGE_FORMAT: 43,
  TRANSACTIONAL_ID_AUTHORIZATION_FAILED: 53,
  UNKNOWN_TOPIC_ID: 100,
  INVALID_REQUEST: 42,
} as const;
