/**
 * Rill's error catalog (src/base/errors.ts) as Kafka's numeric error codes, the one table the
 * Kafka listener answers errors from.
 *
 * Codes below 10,000 are Kafka's own already: they map to themselves. Rill's own codes (10,000
 * and up) map to the Kafka code whose meaning, and whose handling by Kafka clients (retry or
 * not, refresh metadata or not), comes closest; each choice is explained beside it. A code that
 * is neither (a newer peer's code this build does not know) answers UNKNOWN_SERVER_ERROR (-1).
 *
 * `KAFKA_ERROR_NAMES` is Kafka's list of codes (Errors.java, "names can change, codes cannot"),
 * -1 to 133, kept to check the mapping against.
 */
import type { RillError } from "../base/errors.ts";

/** Kafka's error codes and their names, from the protocol's error list. */
export const KAFKA_ERROR_NAMES: ReadonlyMap<number, string> = new Map(
  [
    "UNKNOWN_SERVER_ERROR",
    "NONE",
    "OFFSET_OUT_OF_RANGE",
    "CORRUPT_MESSAGE",
    "UNKNOWN_TOPIC_OR_PARTITION",
    "INVALID_FETCH_SIZE",
    "LEADER_NOT_AVAILABLE",
    "NOT_LEADER_OR_FOLLOWER",
    "REQUEST_TIMED_OUT",
    "BROKER_NOT_AVAILABLE",
    "REPLICA_NOT_AVAILABLE",
    "MESSAGE_TOO_LARGE",
    "STALE_CONTROLLER_EPOCH",
    "OFFSET_METADATA_TOO_LARGE",
    "NETWORK_EXCEPTION",
    "COORDINATOR_LOAD_IN_PROGRESS",
    "COORDINATOR_NOT_AVAILABLE",
    "NOT_COORDINATOR",
    "INVALID_TOPIC_EXCEPTION",
    "RECORD_LIST_TOO_LARGE",
    "NOT_ENOUGH_REPLICAS",
    "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
    "INVALID_REQUIRED_ACKS",
    "ILLEGAL_GENERATION",
    "INCONSISTENT_GROUP_PROTOCOL",
    "INVALID_GROUP_ID",
    "UNKNOWN_MEMBER_ID",
    "INVALID_SESSION_TIMEOUT",
    "REBALANCE_IN_PROGRESS",
    "INVALID_COMMIT_OFFSET_SIZE",
    "TOPIC_AUTHORIZATION_FAILED",
    "GROUP_AUTHORIZATION_FAILED",
    "CLUSTER_AUTHORIZATION_FAILED",
    "INVALID_TIMESTAMP",
    "UNSUPPORTED_SASL_MECHANISM",
    "ILLEGAL_SASL_STATE",
    "UNSUPPORTED_VERSION",
    "TOPIC_ALREADY_EXISTS",
    "INVALID_PARTITIONS",
    "INVALID_REPLICATION_FACTOR",
    "INVALID_REPLICA_ASSIGNMENT",
    "INVALID_CONFIG",
    "NOT_CONTROLLER",
    "INVALID_REQUEST",
    "UNSUPPORTED_FOR_MESSAGE_FORMAT",
    "POLICY_VIOLATION",
    "OUT_OF_ORDER_SEQUENCE_NUMBER",
    "DUPLICATE_SEQUENCE_NUMBER",
    "INVALID_PRODUCER_EPOCH",
    "INVALID_TXN_STATE",
    "INVALID_PRODUCER_ID_MAPPING",
    "INVALID_TRANSACTION_TIMEOUT",
    "CONCURRENT_TRANSACTIONS",
    "TRANSACTION_COORDINATOR_FENCED",
    "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
    "SECURITY_DISABLED",
    "OPERATION_NOT_ATTEMPTED",
    "KAFKA_STORAGE_ERROR",
    "LOG_DIR_NOT_FOUND",
    "SASL_AUTHENTICATION_FAILED",
    "UNKNOWN_PRODUCER_ID",
    "REASSIGNMENT_IN_PROGRESS",
    "DELEGATION_TOKEN_AUTH_DISABLED",
    "DELEGATION_TOKEN_NOT_FOUND",
    "DELEGATION_TOKEN_OWNER_MISMATCH",
    "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED",
    "DELEGATION_TOKEN_AUTHORIZATION_FAILED",
    "DELEGATION_TOKEN_EXPIRED",
    "INVALID_PRINCIPAL_TYPE",
    "NON_EMPTY_GROUP",
    "GROUP_ID_NOT_FOUND",
    "FETCH_SESSION_ID_NOT_FOUND",
    "INVALID_FETCH_SESSION_EPOCH",
    "LISTENER_NOT_FOUND",
    "TOPIC_DELETION_DISABLED",
    "FENCED_LEADER_EPOCH",
    "UNKNOWN_LEADER_EPOCH",
    "UNSUPPORTED_COMPRESSION_TYPE",
    "STALE_BROKER_EPOCH",
    "OFFSET_NOT_AVAILABLE",
    "MEMBER_ID_REQUIRED",
    "PREFERRED_LEADER_NOT_AVAILABLE",
    "GROUP_MAX_SIZE_REACHED",
    "FENCED_INSTANCE_ID",
    "ELIGIBLE_LEADERS_NOT_AVAILABLE",
    "ELECTION_NOT_NEEDED",
    "NO_REASSIGNMENT_IN_PROGRESS",
    "GROUP_SUBSCRIBED_TO_TOPIC",
    "INVALID_RECORD",
    "UNSTABLE_OFFSET_COMMIT",
    "THROTTLING_QUOTA_EXCEEDED",
    "PRODUCER_FENCED",
    "RESOURCE_NOT_FOUND",
    "DUPLICATE_RESOURCE",
    "UNACCEPTABLE_CREDENTIAL",
    "INCONSISTENT_VOTER_SET",
    "INVALID_UPDATE_VERSION",
    "FEATURE_UPDATE_FAILED",
    "PRINCIPAL_DESERIALIZATION_FAILURE",
    "SNAPSHOT_NOT_FOUND",
    "POSITION_OUT_OF_RANGE",
    "UNKNOWN_TOPIC_ID",
    "DUPLICATE_BROKER_REGISTRATION",
    "BROKER_ID_NOT_REGISTERED",
    "INCONSISTENT_TOPIC_ID",
    "INCONSISTENT_CLUSTER_ID",
    "TRANSACTIONAL_ID_NOT_FOUND",
    "FETCH_SESSION_TOPIC_ID_ERROR",
    "INELIGIBLE_REPLICA",
    "NEW_LEADER_ELECTED",
    "OFFSET_MOVED_TO_TIERED_STORAGE",
    "FENCED_MEMBER_EPOCH",
    "UNRELEASED_INSTANCE_ID",
    "UNSUPPORTED_ASSIGNOR",
    "STALE_MEMBER_EPOCH",
    "MISMATCHED_ENDPOINT_TYPE",
    "UNSUPPORTED_ENDPOINT_TYPE",
    "UNKNOWN_CONTROLLER_ID",
    "UNKNOWN_SUBSCRIPTION_ID",
    "TELEMETRY_TOO_LARGE",
    "INVALID_REGISTRATION",
    "TRANSACTION_ABORTABLE",
    "INVALID_RECORD_STATE",
    "SHARE_SESSION_NOT_FOUND",
    "INVALID_SHARE_SESSION_EPOCH",
    "FENCED_STATE_EPOCH",
    "INVALID_VOTER_KEY",
    "DUPLICATE_VOTER",
    "VOTER_NOT_FOUND",
    "INVALID_REGULAR_EXPRESSION",
    "REBOOTSTRAP_REQUIRED",
    "STREAMS_INVALID_TOPOLOGY",
    "STREAMS_INVALID_TOPOLOGY_EPOCH",
    "STREAMS_TOPOLOGY_FENCED",
    "SHARE_SESSION_LIMIT_REACHED",
  ].map((name, i) => [i - 1, name] as const),
);

/** Kafka's NONE. */
export const KAFKA_NONE = 0;
/** Kafka's UNKNOWN_SERVER_ERROR. */
export const KAFKA_UNKNOWN_SERVER_ERROR = -1;

/** Rill's own codes (>= 10,000), by catalog code, as the closest Kafka code. */
export const RILL_TO_KAFKA: ReadonlyMap<number, number> = new Map([
  // BATCH_LENGTH_MISMATCH: Kafka finds a batch whose size field lies a corrupt record.
  [10001, 2], // CORRUPT_MESSAGE
  // RECORD_COUNT_MISMATCH: Kafka's validator refuses a batch whose records disagree with its
  // header as an invalid record (not retriable, unlike CORRUPT_MESSAGE).
  [10002, 87], // INVALID_RECORD
  // LOG_DIR_LOCKED: the log cannot be opened — Kafka's offline log directory.
  [10003, 56], // KAFKA_STORAGE_ERROR
  // INVALID_ARGUMENT: a field Rill refuses is Kafka's malformed request.
  [10004, 42], // INVALID_REQUEST
  // LOG_CLOSED: the replica is going away (deleted, moved, broker stopping); a client refreshes
  // its metadata and finds the partition where it is now.
  [10005, 6], // NOT_LEADER_OR_FOLLOWER
  // SHUTTING_DOWN: the same — what a Kafka broker in controlled shutdown answers.
  [10006, 6], // NOT_LEADER_OR_FOLLOWER
  // FETCH_MEMORY_EXHAUSTED: nothing could be read in time; retriable, the client fetches again.
  [10040, 7], // REQUEST_TIMED_OUT
  // CLUSTER_MEMBERSHIP_REQUIRED: a peer-only call from a caller that is not a peer.
  [10050, 31], // CLUSTER_AUTHORIZATION_FAILED
  // MALFORMED_CREDENTIALS: credentials that do not parse fail authentication.
  [10130, 58], // SASL_AUTHENTICATION_FAILED
  // PLAINTEXT_PASSWORD_REFUSED: a password over a listener without TLS is refused as a failed
  // authentication (the message says why).
  [10131, 58], // SASL_AUTHENTICATION_FAILED
  // UNSUPPORTED_AUTH_SCHEME: a scheme this listener does not take.
  [10132, 33], // UNSUPPORTED_SASL_MECHANISM
  // RECONFIGURATION_IN_PROGRESS: another controller voter change is not committed yet; Kafka's
  // AddRaftVoter/RemoveRaftVoter answer REQUEST_TIMED_OUT then (KIP-853), which clients retry.
  [10210, 7], // REQUEST_TIMED_OUT
]);

/** The Kafka error code of a catalog code: itself below 10,000, else RILL_TO_KAFKA's. */
export function kafkaCodeOf(code: number): number {
  if (code < 10_000) return KAFKA_ERROR_NAMES.has(code) ? code : KAFKA_UNKNOWN_SERVER_ERROR;
  return RILL_TO_KAFKA.get(code) ?? KAFKA_UNKNOWN_SERVER_ERROR;
}

/** The Kafka error code to answer for `e`: 0 (NONE) for null. */
export function kafkaErrorCode(e: RillError | null): number {
  return e === null ? KAFKA_NONE : kafkaCodeOf(e.code);
}

/** OFFSET_NOT_AVAILABLE: a new leader whose high watermark has not reached its epoch's start (KIP-207). */
const OFFSET_NOT_AVAILABLE = 78;
/** LEADER_NOT_AVAILABLE. */
const LEADER_NOT_AVAILABLE = 5;

/**
 * `code` for a request version that may predate OFFSET_NOT_AVAILABLE (`knowsIt` false: ListOffsets
 * below v5, Fetch below v11): LEADER_NOT_AVAILABLE instead, retriable with a metadata refresh, as
 * Kafka answers those versions (KafkaApis: "only V5 and newer ListOffset calls should get
 * OFFSET_NOT_AVAILABLE").
 */
export function offsetNotAvailableFor(code: number, knowsIt: boolean): number {
  return code === OFFSET_NOT_AVAILABLE && !knowsIt ? LEADER_NOT_AVAILABLE : code;
}
