/**
 * The one error catalog of Rill.
 *
 * Every condition a caller can act on has an entry: a stable numeric code, a name, whether a
 * retry can succeed, and the gRPC status it maps to at the RPC edge. Codes below 10000 are Kafka's
 * own error codes (so the Kafka wire protocol can answer them unchanged); Rill's own start at
 * 10000. Names can change, codes never do, and a code is never reused.
 */

import { AssertionError } from "./assert.ts";

/** gRPC status codes (numbers from the gRPC spec), kept here so core code needs no gRPC import. */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type GrpcStatusCode = (typeof GrpcStatus)[keyof typeof GrpcStatus];

/** One catalog entry. */
export interface ErrorKind {
  readonly code: number;
  readonly name: string;
  readonly retriable: boolean;
  readonly grpc: GrpcStatusCode;
  readonly doc: string;
}

function kind(code: number, name: string, retriable: boolean, grpc: GrpcStatusCode, doc: string): ErrorKind {
  return { code, name, retriable, grpc, doc };
}

const S = GrpcStatus;

/** The catalog. Add entries at the end of their range; never renumber. */
export const Errors = {
  UNKNOWN_SERVER_ERROR: kind(-1, "UNKNOWN_SERVER_ERROR", false, S.INTERNAL, "An unexpected server error."),
  OFFSET_OUT_OF_RANGE: kind(1, "OFFSET_OUT_OF_RANGE", false, S.OUT_OF_RANGE, "The requested offset is outside the log's range."),
  CORRUPT_MESSAGE: kind(2, "CORRUPT_MESSAGE", true, S.INVALID_ARGUMENT, "A record batch failed its CRC check or is malformed."),
  UNKNOWN_TOPIC_OR_PARTITION: kind(3, "UNKNOWN_TOPIC_OR_PARTITION", true, S.NOT_FOUND, "The topic or partition does not exist."),
  INVALID_FETCH_SIZE: kind(4, "INVALID_FETCH_SIZE", false, S.INVALID_ARGUMENT, "The requested fetch size is invalid."),
  LEADER_NOT_AVAILABLE: kind(5, "LEADER_NOT_AVAILABLE", true, S.UNAVAILABLE, "The partition has no leader right now."),
  NOT_LEADER_OR_FOLLOWER: kind(6, "NOT_LEADER_OR_FOLLOWER", true, S.FAILED_PRECONDITION, "This broker does not lead the partition."),
  REQUEST_TIMED_OUT: kind(7, "REQUEST_TIMED_OUT", true, S.DEADLINE_EXCEEDED, "The request did not complete in time."),
  MESSAGE_TOO_LARGE: kind(10, "MESSAGE_TOO_LARGE", false, S.INVALID_ARGUMENT, "A record batch is larger than max.message.bytes."),
  INVALID_TOPIC: kind(17, "INVALID_TOPIC_EXCEPTION", false, S.INVALID_ARGUMENT, "The topic name is invalid."),
  RECORD_LIST_TOO_LARGE: kind(18, "RECORD_LIST_TOO_LARGE", false, S.INVALID_ARGUMENT, "The request carries more bytes than allowed."),
  NOT_ENOUGH_REPLICAS: kind(19, "NOT_ENOUGH_REPLICAS", true, S.UNAVAILABLE, "Fewer in-sync replicas than min.insync.replicas."),
  INVALID_REQUIRED_ACKS: kind(21, "INVALID_REQUIRED_ACKS", false, S.INVALID_ARGUMENT, "The acks value is invalid."),
  INVALID_TIMESTAMP: kind(32, "INVALID_TIMESTAMP", false, S.INVALID_ARGUMENT, "A timestamp is invalid."),
  TOPIC_ALREADY_EXISTS: kind(36, "TOPIC_ALREADY_EXISTS", false, S.ALREADY_EXISTS, "The topic already exists."),
  INVALID_PARTITIONS: kind(37, "INVALID_PARTITIONS", false, S.INVALID_ARGUMENT, "The partition count is invalid."),
  INVALID_REPLICATION_FACTOR: kind(38, "INVALID_REPLICATION_FACTOR", false, S.INVALID_ARGUMENT, "The replication factor is invalid."),
  INVALID_REQUEST: kind(42, "INVALID_REQUEST", false, S.INVALID_ARGUMENT, "The request is malformed."),
  UNSUPPORTED_FOR_MESSAGE_FORMAT: kind(43, "UNSUPPORTED_FOR_MESSAGE_FORMAT", false, S.INVALID_ARGUMENT, "The record batch magic is not 2."),
  INVALID_CONFIG: kind(40, "INVALID_CONFIG", false, S.INVALID_ARGUMENT, "A configuration value is invalid."),
  OUT_OF_ORDER_SEQUENCE_NUMBER: kind(
    45,
    "OUT_OF_ORDER_SEQUENCE_NUMBER",
    false,
    S.FAILED_PRECONDITION,
    "A producer sequence number is out of order.",
  ),
  DUPLICATE_SEQUENCE_NUMBER: kind(
    46,
    "DUPLICATE_SEQUENCE_NUMBER",
    false,
    S.ALREADY_EXISTS,
    "A producer sequence number was already written.",
  ),
  INVALID_PRODUCER_EPOCH: kind(47, "INVALID_PRODUCER_EPOCH", false, S.FAILED_PRECONDITION, "The producer epoch is stale."),
  UNKNOWN_PRODUCER_ID: kind(59, "UNKNOWN_PRODUCER_ID", false, S.FAILED_PRECONDITION, "The producer id is not known."),
  KAFKA_STORAGE_ERROR: kind(56, "KAFKA_STORAGE_ERROR", true, S.UNAVAILABLE, "A disk error happened while accessing the log."),
  GROUP_ID_NOT_FOUND: kind(69, "GROUP_ID_NOT_FOUND", false, S.NOT_FOUND, "The group does not exist."),
  FENCED_LEADER_EPOCH: kind(74, "FENCED_LEADER_EPOCH", true, S.FAILED_PRECONDITION, "The leader epoch is older than the current one."),
  UNSUPPORTED_COMPRESSION_TYPE: kind(
    76,
    "UNSUPPORTED_COMPRESSION_TYPE",
    false,
    S.INVALID_ARGUMENT,
    "The compression codec is not supported.",
  ),
  INVALID_RECORD: kind(87, "INVALID_RECORD", false, S.INVALID_ARGUMENT, "A record in the batch is invalid."),
  PRODUCER_FENCED: kind(90, "PRODUCER_FENCED", false, S.FAILED_PRECONDITION, "A newer producer with the same id has fenced this one."),
  OFFSET_METADATA_TOO_LARGE: kind(
    12,
    "OFFSET_METADATA_TOO_LARGE",
    false,
    S.INVALID_ARGUMENT,
    "The metadata committed with an offset is too long.",
  ),
  INCONSISTENT_GROUP_PROTOCOL: kind(
    23,
    "INCONSISTENT_GROUP_PROTOCOL",
    false,
    S.FAILED_PRECONDITION,
    "The member asks for an assignor other than the group's.",
  ),
  INVALID_GROUP_ID: kind(24, "INVALID_GROUP_ID", false, S.INVALID_ARGUMENT, "The group id is invalid."),
  UNKNOWN_MEMBER_ID: kind(25, "UNKNOWN_MEMBER_ID", false, S.NOT_FOUND, "The member id is not in the group; join again."),
  NON_EMPTY_GROUP: kind(68, "NON_EMPTY_GROUP", false, S.FAILED_PRECONDITION, "The group has members."),
  GROUP_MAX_SIZE_REACHED: kind(81, "GROUP_MAX_SIZE_REACHED", false, S.RESOURCE_EXHAUSTED, "The group (or the coordinator) is full."),
  GROUP_SUBSCRIBED_TO_TOPIC: kind(
    86,
    "GROUP_SUBSCRIBED_TO_TOPIC",
    false,
    S.FAILED_PRECONDITION,
    "A member of the group subscribes to the topic.",
  ),
  FENCED_MEMBER_EPOCH: kind(
    110,
    "FENCED_MEMBER_EPOCH",
    false,
    S.FAILED_PRECONDITION,
    "The member epoch is not the member's current one; join again with epoch 0.",
  ),
  UNRELEASED_INSTANCE_ID: kind(
    111,
    "UNRELEASED_INSTANCE_ID",
    false,
    S.FAILED_PRECONDITION,
    "An active member already holds the static instance id.",
  ),
  // The classic group protocol (JoinGroup/SyncGroup/Heartbeat/LeaveGroup).
  ILLEGAL_GENERATION: kind(22, "ILLEGAL_GENERATION", false, S.FAILED_PRECONDITION, "The generation id is not the group's current one."),
  INVALID_SESSION_TIMEOUT: kind(
    26,
    "INVALID_SESSION_TIMEOUT",
    false,
    S.INVALID_ARGUMENT,
    "The session timeout is out of the allowed range.",
  ),
  REBALANCE_IN_PROGRESS: kind(27, "REBALANCE_IN_PROGRESS", true, S.FAILED_PRECONDITION, "The group is rebalancing; join again."),
  MEMBER_ID_REQUIRED: kind(79, "MEMBER_ID_REQUIRED", false, S.FAILED_PRECONDITION, "Join again with the member id given in this answer."),
  FENCED_INSTANCE_ID: kind(82, "FENCED_INSTANCE_ID", false, S.FAILED_PRECONDITION, "Another member took over the static instance id."),
  COORDINATOR_NOT_AVAILABLE: kind(15, "COORDINATOR_NOT_AVAILABLE", true, S.UNAVAILABLE, "The group coordinator is not available yet."),
  NOT_COORDINATOR: kind(16, "NOT_COORDINATOR", true, S.FAILED_PRECONDITION, "This broker is not the group's coordinator."),
  NOT_ENOUGH_REPLICAS_AFTER_APPEND: kind(
    20,
    "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
    true,
    S.UNAVAILABLE,
    "The batch was written but fewer in-sync replicas than min.insync.replicas acknowledged it.",
  ),
  NOT_CONTROLLER: kind(41, "NOT_CONTROLLER", true, S.UNAVAILABLE, "This node is not the active controller."),
  UNKNOWN_LEADER_EPOCH: kind(75, "UNKNOWN_LEADER_EPOCH", true, S.FAILED_PRECONDITION, "The leader epoch is newer than this broker knows."),
  STALE_BROKER_EPOCH: kind(
    77,
    "STALE_BROKER_EPOCH",
    false,
    S.FAILED_PRECONDITION,
    "The broker epoch is not the broker's current registration.",
  ),
  // A new leader that does not know the committed offsets yet (issue 17, KIP-207).
  OFFSET_NOT_AVAILABLE: kind(
    78,
    "OFFSET_NOT_AVAILABLE",
    true,
    S.UNAVAILABLE,
    "The partition's new leader does not know its high watermark yet: its followers have not caught up with the start of its leader epoch.",
  ),
  PREFERRED_LEADER_NOT_AVAILABLE: kind(
    80,
    "PREFERRED_LEADER_NOT_AVAILABLE",
    true,
    S.UNAVAILABLE,
    "The preferred leader is not in the ISR or not alive.",
  ),
  ELECTION_NOT_NEEDED: kind(
    84,
    "ELECTION_NOT_NEEDED",
    false,
    S.FAILED_PRECONDITION,
    "The partition is already led by its preferred leader.",
  ),
  // The Kafka listener's Fetch (issue 15).
  FETCH_SESSION_ID_NOT_FOUND: kind(70, "FETCH_SESSION_ID_NOT_FOUND", true, S.NOT_FOUND, "The fetch session is not known to this broker."),
  UNKNOWN_TOPIC_ID: kind(100, "UNKNOWN_TOPIC_ID", true, S.NOT_FOUND, "No topic has this topic id."),
  INVALID_UPDATE_VERSION: kind(95, "INVALID_UPDATE_VERSION", false, S.FAILED_PRECONDITION, "The partition epoch of the change is stale."),
  DUPLICATE_BROKER_REGISTRATION: kind(
    101,
    "DUPLICATE_BROKER_REGISTRATION",
    false,
    S.ALREADY_EXISTS,
    "Another live broker is registered with this node id.",
  ),
  BROKER_ID_NOT_REGISTERED: kind(102, "BROKER_ID_NOT_REGISTERED", false, S.NOT_FOUND, "The broker id is not registered."),
  INCONSISTENT_CLUSTER_ID: kind(
    104,
    "INCONSISTENT_CLUSTER_ID",
    false,
    S.FAILED_PRECONDITION,
    "The cluster id does not match this cluster's.",
  ),
  INELIGIBLE_REPLICA: kind(107, "INELIGIBLE_REPLICA", false, S.FAILED_PRECONDITION, "A proposed ISR member is fenced or not a replica."),
  STALE_MEMBER_EPOCH: kind(
    113,
    "STALE_MEMBER_EPOCH",
    true,
    S.FAILED_PRECONDITION,
    "The member epoch is older than the member's current one, or the member does not own the partition.",
  ),
  // security: SCRAM users (issue 13), Kafka's codes of AlterUserScramCredentials
  UNSUPPORTED_SASL_MECHANISM: kind(
    33,
    "UNSUPPORTED_SASL_MECHANISM",
    false,
    S.INVALID_ARGUMENT,
    "The SASL/SCRAM mechanism is not supported.",
  ),
  RESOURCE_NOT_FOUND: kind(91, "RESOURCE_NOT_FOUND", false, S.NOT_FOUND, "The resource (e.g. a user's credential) does not exist."),
  DUPLICATE_RESOURCE: kind(92, "DUPLICATE_RESOURCE", false, S.INVALID_ARGUMENT, "The request names the same resource twice."),
  UNACCEPTABLE_CREDENTIAL: kind(
    93,
    "UNACCEPTABLE_CREDENTIAL",
    false,
    S.INVALID_ARGUMENT,
    "The user name, password or iteration count is not acceptable.",
  ),

  // Authentication and authorization (issue 13): Kafka's codes.
  TOPIC_AUTHORIZATION_FAILED: kind(
    29,
    "TOPIC_AUTHORIZATION_FAILED",
    false,
    S.PERMISSION_DENIED,
    "The caller may not do this on the topic.",
  ),
  GROUP_AUTHORIZATION_FAILED: kind(
    30,
    "GROUP_AUTHORIZATION_FAILED",
    false,
    S.PERMISSION_DENIED,
    "The caller may not do this on the group.",
  ),
  CLUSTER_AUTHORIZATION_FAILED: kind(
    31,
    "CLUSTER_AUTHORIZATION_FAILED",
    false,
    S.PERMISSION_DENIED,
    "The caller may not do this on the cluster.",
  ),
  TRANSACTIONAL_ID_AUTHORIZATION_FAILED: kind(
    53,
    "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
    false,
    S.PERMISSION_DENIED,
    "The caller may not use the transactional id.",
  ),
  SASL_AUTHENTICATION_FAILED: kind(
    58,
    "SASL_AUTHENTICATION_FAILED",
    false,
    S.UNAUTHENTICATED,
    "Authentication failed: unknown user, wrong password, or no credentials.",
  ),
  // the Kafka listener's SASL (issue 15)
  ILLEGAL_SASL_STATE: kind(34, "ILLEGAL_SASL_STATE", false, S.FAILED_PRECONDITION, "A SASL request came out of the exchange's order."),

  BATCH_LENGTH_MISMATCH: kind(
    10001,
    "BATCH_LENGTH_MISMATCH",
    false,
    S.INVALID_ARGUMENT,
    "A batch's length field disagrees with the bytes given.",
  ),
  RECORD_COUNT_MISMATCH: kind(
    10002,
    "RECORD_COUNT_MISMATCH",
    false,
    S.INVALID_ARGUMENT,
    "A batch's recordCount or lastOffsetDelta disagrees with its records.",
  ),
  LOG_DIR_LOCKED: kind(10003, "LOG_DIR_LOCKED", false, S.FAILED_PRECONDITION, "Another process holds the data directory."),
  INVALID_ARGUMENT: kind(10004, "INVALID_ARGUMENT", false, S.INVALID_ARGUMENT, "A request field is invalid."),
  LOG_CLOSED: kind(10005, "LOG_CLOSED", true, S.UNAVAILABLE, "The log is closed."),
  SHUTTING_DOWN: kind(10006, "SHUTTING_DOWN", true, S.UNAVAILABLE, "The broker is shutting down."),
  MALFORMED_CREDENTIALS: kind(
    10130,
    "MALFORMED_CREDENTIALS",
    false,
    S.UNAUTHENTICATED,
    "The authorization call metadata is not `Basic base64(name:password)`.",
  ),
  UNSUPPORTED_AUTH_SCHEME: kind(
    10132,
    "UNSUPPORTED_AUTH_SCHEME",
    false,
    S.UNAUTHENTICATED,
    "The authorization call metadata uses a scheme (or method) this listener does not accept.",
  ),
  PLAINTEXT_PASSWORD_REFUSED: kind(
    10131,
    "PLAINTEXT_PASSWORD_REFUSED",
    false,
    S.UNAUTHENTICATED,
    "A password was sent over a listener without TLS (auth.allow.plaintext.passwords is false).",
  ),
  FETCH_MEMORY_EXHAUSTED: kind(
    10040,
    "FETCH_MEMORY_EXHAUSTED",
    true,
    S.RESOURCE_EXHAUSTED,
    "Responses being sent hold all of fetch.memory.max.bytes and none gave room in time: fetch again.",
  ),
  // Cluster membership (issue 13): internal calls from anyone but an authenticated member.
  CLUSTER_MEMBERSHIP_REQUIRED: kind(
    10050,
    "CLUSTER_MEMBERSHIP_REQUIRED",
    false,
    S.UNAUTHENTICATED,
    "Only an authenticated cluster member (internal mTLS, or a call signed with cluster.secret) may send this call.",
  ),
  // DeleteRecords (issue 15)
  POLICY_VIOLATION: kind(
    44,
    "POLICY_VIOLATION",
    false,
    S.FAILED_PRECONDITION,
    "The topic's configured policy forbids this (e.g. deleting records of a compact-only topic).",
  ),
  // Transactions (issue 17): Kafka's codes.
  INVALID_TXN_STATE: kind(48, "INVALID_TXN_STATE", false, S.FAILED_PRECONDITION, "The request does not fit the transaction's state."),
  INVALID_PRODUCER_ID_MAPPING: kind(
    49,
    "INVALID_PRODUCER_ID_MAPPING",
    false,
    S.FAILED_PRECONDITION,
    "The producer id is not the one the transactional id holds.",
  ),
  INVALID_TRANSACTION_TIMEOUT: kind(
    50,
    "INVALID_TRANSACTION_TIMEOUT",
    false,
    S.INVALID_ARGUMENT,
    "The transaction timeout is out of range (transaction.max.timeout.ms).",
  ),
  CONCURRENT_TRANSACTIONS: kind(
    51,
    "CONCURRENT_TRANSACTIONS",
    true,
    S.UNAVAILABLE,
    "The previous transaction of this producer is still being completed; retry.",
  ),
  TRANSACTION_COORDINATOR_FENCED: kind(
    52,
    "TRANSACTION_COORDINATOR_FENCED",
    false,
    S.FAILED_PRECONDITION,
    "A newer transaction coordinator took over (its epoch is older than the partition's).",
  ),
  TRANSACTIONAL_ID_NOT_FOUND: kind(105, "TRANSACTIONAL_ID_NOT_FOUND", false, S.NOT_FOUND, "The transactional id is not known."),
  TRANSACTION_ABORTABLE: kind(
    120,
    "TRANSACTION_ABORTABLE",
    false,
    S.FAILED_PRECONDITION,
    "The transaction cannot go on; abort it and start another.",
  ),
  // Dynamic controller quorum (issue 21): Kafka's codes of AddRaftVoter / RemoveRaftVoter (KIP-853).
  INVALID_VOTER_KEY: kind(125, "INVALID_VOTER_KEY", false, S.INVALID_ARGUMENT, "The voter's directory id does not match the node's."),
  DUPLICATE_VOTER: kind(126, "DUPLICATE_VOTER", false, S.ALREADY_EXISTS, "The node is already a voter of the controller quorum."),
  VOTER_NOT_FOUND: kind(
    127,
    "VOTER_NOT_FOUND",
    false,
    S.NOT_FOUND,
    "The node is not a voter (or not a known node) of the controller quorum.",
  ),
  RECONFIGURATION_IN_PROGRESS: kind(
    10210,
    "RECONFIGURATION_IN_PROGRESS",
    true,
    S.FAILED_PRECONDITION,
    "Another change of the controller voters is not committed yet; one change at a time.",
  ),
  // Partition reassignment (issue 21): Kafka's codes of AlterPartitionReassignments (KIP-455).
  INVALID_REPLICA_ASSIGNMENT: kind(
    39,
    "INVALID_REPLICA_ASSIGNMENT",
    false,
    S.INVALID_ARGUMENT,
    "The replica assignment is invalid (empty, repeats a broker, or names an unknown one).",
  ),
  NO_REASSIGNMENT_IN_PROGRESS: kind(
    85,
    "NO_REASSIGNMENT_IN_PROGRESS",
    false,
    S.FAILED_PRECONDITION,
    "The partition is not being reassigned: there is nothing to cancel.",
  ),
} as const satisfies Record<string, ErrorKind>;

export type ErrorName = keyof typeof Errors;

const byCode = new Map<number, ErrorKind>(Object.values(Errors).map((k) => [k.code, k]));

/** Looks an entry up by its numeric code. */
export function errorKindByCode(code: number): ErrorKind | undefined {
  return byCode.get(code);
}

/** A condition from the catalog, with a message that names the field or value at fault. */
export class RillError extends Error {
  readonly kind: ErrorKind;

  constructor(kind: ErrorKind, message?: string) {
    super(message ?? kind.doc);
    this.kind = kind;
    this.name = `RillError(${kind.name})`;
  }

  get code(): number {
    return this.kind.code;
  }

  get retriable(): boolean {
    return this.kind.retriable;
  }

  /**
   * Turns anything thrown into a RillError; unknown errors become UNKNOWN_SERVER_ERROR. An
   * AssertionError is a bug, not a condition: it is thrown on, never turned into an answer.
   */
  static from(e: unknown): RillError {
    if (e instanceof RillError) return e;
    if (e instanceof AssertionError) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    return new RillError(Errors.UNKNOWN_SERVER_ERROR, msg);
  }
}

/** Shorthand: `throw rillError("INVALID_CONFIG", "segment.bytes: must be ...")`. */
export function rillError(name: ErrorName, message?: string): RillError {
  return new RillError(Errors[name], message);
}
