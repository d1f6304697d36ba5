/**
 * Pins the error catalog (src/base/errors.ts): every entry's code, name, retriable flag and gRPC
 * status is written out below, so that
 * - adding an entry fails until its row is added here (a deliberate, reviewed change);
 * - changing a code, a name, the retriable flag or the gRPC status of an entry fails: clients in
 *   every language, and the Kafka listener (codes below 10000 are Kafka's own), depend on them;
 * - reusing a code fails: codes are unique, and a removed entry's code moves to RETIRED_CODES,
 *   which no entry may take again.
 * Kafka's rule, which Rill keeps: names can change only deliberately, codes never.
 */
import { describe, expect, it } from "vitest";
import { Errors, GrpcStatus, errorKindByCode, RillError, rillError, type ErrorName } from "../../../src/base/errors.ts";

type Row = readonly [key: string, code: number, name: string, retriable: boolean, grpc: keyof typeof GrpcStatus];

/** Every catalog entry, by code. Add a row when you add an entry; never edit a row's code. */
const CATALOG: readonly Row[] = [
  ["UNKNOWN_SERVER_ERROR", -1, "UNKNOWN_SERVER_ERROR", false, "INTERNAL"],
  ["OFFSET_OUT_OF_RANGE", 1, "OFFSET_OUT_OF_RANGE", false, "OUT_OF_RANGE"],
  ["CORRUPT_MESSAGE", 2, "CORRUPT_MESSAGE", true, "INVALID_ARGUMENT"],
  ["UNKNOWN_TOPIC_OR_PARTITION", 3, "UNKNOWN_TOPIC_OR_PARTITION", true, "NOT_FOUND"],
  ["INVALID_FETCH_SIZE", 4, "INVALID_FETCH_SIZE", false, "INVALID_ARGUMENT"],
  ["LEADER_NOT_AVAILABLE", 5, "LEADER_NOT_AVAILABLE", true, "UNAVAILABLE"],
  ["NOT_LEADER_OR_FOLLOWER", 6, "NOT_LEADER_OR_FOLLOWER", true, "FAILED_PRECONDITION"],
  ["REQUEST_TIMED_OUT", 7, "REQUEST_TIMED_OUT", true, "DEADLINE_EXCEEDED"],
  ["MESSAGE_TOO_LARGE", 10, "MESSAGE_TOO_LARGE", false, "INVALID_ARGUMENT"],
  ["OFFSET_METADATA_TOO_LARGE", 12, "OFFSET_METADATA_TOO_LARGE", false, "INVALID_ARGUMENT"],
  ["COORDINATOR_NOT_AVAILABLE", 15, "COORDINATOR_NOT_AVAILABLE", true, "UNAVAILABLE"],
  ["NOT_COORDINATOR", 16, "NOT_COORDINATOR", true, "FAILED_PRECONDITION"],
  ["INVALID_TOPIC", 17, "INVALID_TOPIC_EXCEPTION", false, "INVALID_ARGUMENT"],
  ["RECORD_LIST_TOO_LARGE", 18, "RECORD_LIST_TOO_LARGE", false, "INVALID_ARGUMENT"],
  ["NOT_ENOUGH_REPLICAS", 19, "NOT_ENOUGH_REPLICAS", true, "UNAVAILABLE"],
  ["NOT_ENOUGH_REPLICAS_AFTER_APPEND", 20, "NOT_ENOUGH_REPLICAS_AFTER_APPEND", true, "UNAVAILABLE"],
  ["INVALID_REQUIRED_ACKS", 21, "INVALID_REQUIRED_ACKS", false, "INVALID_ARGUMENT"],
  ["INCONSISTENT_GROUP_PROTOCOL", 23, "INCONSISTENT_GROUP_PROTOCOL", false, "FAILED_PRECONDITION"],
  ["INVALID_GROUP_ID", 24, "INVALID_GROUP_ID", false, "INVALID_ARGUMENT"],
  ["UNKNOWN_MEMBER_ID", 25, "UNKNOWN_MEMBER_ID", false, "NOT_FOUND"],
  ["INVALID_TIMESTAMP", 32, "INVALID_TIMESTAMP", false, "INVALID_ARGUMENT"],
  ["TOPIC_ALREADY_EXISTS", 36, "TOPIC_ALREADY_EXISTS", false, "ALREADY_EXISTS"],
  ["INVALID_PARTITIONS", 37, "INVALID_PARTITIONS", false, "INVALID_ARGUMENT"],
  ["INVALID_REPLICATION_FACTOR", 38, "INVALID_REPLICATION_FACTOR", false, "INVALID_ARGUMENT"],
  ["INVALID_CONFIG", 40, "INVALID_CONFIG", false, "INVALID_ARGUMENT"],
  ["NOT_CONTROLLER", 41, "NOT_CONTROLLER", true, "UNAVAILABLE"],
  ["INVALID_REQUEST", 42, "INVALID_REQUEST", false, "INVALID_ARGUMENT"],
  ["UNSUPPORTED_FOR_MESSAGE_FORMAT", 43, "UNSUPPORTED_FOR_MESSAGE_FORMAT", false, "INVALID_ARGUMENT"],
  ["OUT_OF_ORDER_SEQUENCE_NUMBER", 45, "OUT_OF_ORDER_SEQUENCE_NUMBER", false, "FAILED_PRECONDITION"],
  ["DUPLICATE_SEQUENCE_NUMBER", 46, "DUPLICATE_SEQUENCE_NUMBER", false, "ALREADY_EXISTS"],
  ["INVALID_PRODUCER_EPOCH", 47, "INVALID_PRODUCER_EPOCH", false, "FAILED_PRECONDITION"],
  ["KAFKA_STORAGE_ERROR", 56, "KAFKA_STORAGE_ERROR", true, "UNAVAILABLE"],
  ["UNKNOWN_PRODUCER_ID", 59, "UNKNOWN_PRODUCER_ID", false, "FAILED_PRECONDITION"],
  ["NON_EMPTY_GROUP", 68, "NON_EMPTY_GROUP", false, "FAILED_PRECONDITION"],
  ["GROUP_ID_NOT_FOUND", 69, "GROUP_ID_NOT_FOUND", false, "NOT_FOUND"],
  ["FENCED_LEADER_EPOCH", 74, "FENCED_LEADER_EPOCH", true, "FAILED_PRECONDITION"],
  ["UNKNOWN_LEADER_EPOCH", 75, "UNKNOWN_LEADER_EPOCH", true, "FAILED_PRECONDITION"],
  ["UNSUPPORTED_COMPRESSION_TYPE", 76, "UNSUPPORTED_COMPRESSION_TYPE", false, "INVALID_ARGUMENT"],
  ["STALE_BROKER_EPOCH", 77, "STALE_BROKER_EPOCH", false, "FAILED_PRECONDITION"],
  ["OFFSET_NOT_AVAILABLE", 78, "OFFSET_NOT_AVAILABLE", true, "UNAVAILABLE"],
  ["PREFERRED_LEADER_NOT_AVAILABLE", 80, "PREFERRED_LEADER_NOT_AVAILABLE", true, "UNAVAILABLE"],
  ["GROUP_MAX_SIZE_REACHED", 81, "GROUP_MAX_SIZE_REACHED", false, "RESOURCE_EXHAUSTED"],
  ["ELECTION_NOT_NEEDED", 84, "ELECTION_NOT_NEEDED", false, "FAILED_PRECONDITION"],
  ["GROUP_SUBSCRIBED_TO_TOPIC", 86, "GROUP_SUBSCRIBED_TO_TOPIC", false, "FAILED_PRECONDITION"],
  ["INVALID_RECORD", 87, "INVALID_RECORD", false, "INVALID_ARGUMENT"],
  ["PRODUCER_FENCED", 90, "PRODUCER_FENCED", false, "FAILED_PRECONDITION"],
  ["INVALID_UPDATE_VERSION", 95, "INVALID_UPDATE_VERSION", false, "FAILED_PRECONDITION"],
  ["DUPLICATE_BROKER_REGISTRATION", 101, "DUPLICATE_BROKER_REGISTRATION", false, "ALREADY_EXISTS"],
  ["BROKER_ID_NOT_REGISTERED", 102, "BROKER_ID_NOT_REGISTERED", false, "NOT_FOUND"],
  ["INCONSISTENT_CLUSTER_ID", 104, "INCONSISTENT_CLUSTER_ID", false, "FAILED_PRECONDITION"],
  ["INELIGIBLE_REPLICA", 107, "INELIGIBLE_REPLICA", false, "FAILED_PRECONDITION"],
  ["FENCED_MEMBER_EPOCH", 110, "FENCED_MEMBER_EPOCH", false, "FAILED_PRECONDITION"],
  ["UNRELEASED_INSTANCE_ID", 111, "UNRELEASED_INSTANCE_ID", false, "FAILED_PRECONDITION"],
  ["STALE_MEMBER_EPOCH", 113, "STALE_MEMBER_EPOCH", true, "FAILED_PRECONDITION"],
  ["INVALID_TXN_STATE", 48, "INVALID_TXN_STATE", false, "FAILED_PRECONDITION"],
  ["INVALID_PRODUCER_ID_MAPPING", 49, "INVALID_PRODUCER_ID_MAPPING", false, "FAILED_PRECONDITION"],
  ["INVALID_TRANSACTION_TIMEOUT", 50, "INVALID_TRANSACTION_TIMEOUT", false, "INVALID_ARGUMENT"],
  ["CONCURRENT_TRANSACTIONS", 51, "CONCURRENT_TRANSACTIONS", true, "UNAVAILABLE"],
  ["TRANSACTION_COORDINATOR_FENCED", 52, "TRANSACTION_COORDINATOR_FENCED", false, "FAILED_PRECONDITION"],
  ["TRANSACTIONAL_ID_NOT_FOUND", 105, "TRANSACTIONAL_ID_NOT_FOUND", false, "NOT_FOUND"],
  ["TRANSACTION_ABORTABLE", 120, "TRANSACTION_ABORTABLE", false, "FAILED_PRECONDITION"],
  ["UNSUPPORTED_SASL_MECHANISM", 33, "UNSUPPORTED_SASL_MECHANISM", false, "INVALID_ARGUMENT"],
  ["RESOURCE_NOT_FOUND", 91, "RESOURCE_NOT_FOUND", false, "NOT_FOUND"],
  ["DUPLICATE_RESOURCE", 92, "DUPLICATE_RESOURCE", false, "INVALID_ARGUMENT"],
  ["UNACCEPTABLE_CREDENTIAL", 93, "UNACCEPTABLE_CREDENTIAL", false, "INVALID_ARGUMENT"],
  ["BATCH_LENGTH_MISMATCH", 10001, "BATCH_LENGTH_MISMATCH", false, "INVALID_ARGUMENT"],
  ["RECORD_COUNT_MISMATCH", 10002, "RECORD_COUNT_MISMATCH", false, "INVALID_ARGUMENT"],
  ["LOG_DIR_LOCKED", 10003, "LOG_DIR_LOCKED", false, "FAILED_PRECONDITION"],
  ["INVALID_ARGUMENT", 10004, "INVALID_ARGUMENT", false, "INVALID_ARGUMENT"],
  ["LOG_CLOSED", 10005, "LOG_CLOSED", true, "UNAVAILABLE"],
  ["SHUTTING_DOWN", 10006, "SHUTTING_DOWN", true, "UNAVAILABLE"],
  ["FETCH_MEMORY_EXHAUSTED", 10040, "FETCH_MEMORY_EXHAUSTED", true, "RESOURCE_EXHAUSTED"],
  ["CLUSTER_MEMBERSHIP_REQUIRED", 10050, "CLUSTER_MEMBERSHIP_REQUIRED", false, "UNAUTHENTICATED"],
  // authentication and authorization (issue 13)
  ["TOPIC_AUTHORIZATION_FAILED", 29, "TOPIC_AUTHORIZATION_FAILED", false, "PERMISSION_DENIED"],
  ["GROUP_AUTHORIZATION_FAILED", 30, "GROUP_AUTHORIZATION_FAILED", false, "PERMISSION_DENIED"],
  ["CLUSTER_AUTHORIZATION_FAILED", 31, "CLUSTER_AUTHORIZATION_FAILED", false, "PERMISSION_DENIED"],
  ["TRANSACTIONAL_ID_AUTHORIZATION_FAILED", 53, "TRANSACTIONAL_ID_AUTHORIZATION_FAILED", false, "PERMISSION_DENIED"],
  ["SASL_AUTHENTICATION_FAILED", 58, "SASL_AUTHENTICATION_FAILED", false, "UNAUTHENTICATED"],
  ["MALFORMED_CREDENTIALS", 10130, "MALFORMED_CREDENTIALS", false, "UNAUTHENTICATED"],
  ["PLAINTEXT_PASSWORD_REFUSED", 10131, "PLAINTEXT_PASSWORD_REFUSED", false, "UNAUTHENTICATED"],
  ["UNSUPPORTED_AUTH_SCHEME", 10132, "UNSUPPORTED_AUTH_SCHEME", false, "UNAUTHENTICATED"],
  ["FETCH_SESSION_ID_NOT_FOUND", 70, "FETCH_SESSION_ID_NOT_FOUND", true, "NOT_FOUND"],
  ["UNKNOWN_TOPIC_ID", 100, "UNKNOWN_TOPIC_ID", true, "NOT_FOUND"],
  // The classic group protocol.
  ["ILLEGAL_GENERATION", 22, "ILLEGAL_GENERATION", false, "FAILED_PRECONDITION"],
  ["INVALID_SESSION_TIMEOUT", 26, "INVALID_SESSION_TIMEOUT", false, "INVALID_ARGUMENT"],
  ["REBALANCE_IN_PROGRESS", 27, "REBALANCE_IN_PROGRESS", true, "FAILED_PRECONDITION"],
  ["MEMBER_ID_REQUIRED", 79, "MEMBER_ID_REQUIRED", false, "FAILED_PRECONDITION"],
  ["FENCED_INSTANCE_ID", 82, "FENCED_INSTANCE_ID", false, "FAILED_PRECONDITION"],
  // DeleteRecords (issue 15)
  ["POLICY_VIOLATION", 44, "POLICY_VIOLATION", false, "FAILED_PRECONDITION"],
  // the Kafka listener's SASL (issue 15)
  ["ILLEGAL_SASL_STATE", 34, "ILLEGAL_SASL_STATE", false, "FAILED_PRECONDITION"],
  // controller voter changes (issue 21, KIP-853)
  ["INVALID_VOTER_KEY", 125, "INVALID_VOTER_KEY", false, "INVALID_ARGUMENT"],
  ["DUPLICATE_VOTER", 126, "DUPLICATE_VOTER", false, "ALREADY_EXISTS"],
  ["VOTER_NOT_FOUND", 127, "VOTER_NOT_FOUND", false, "NOT_FOUND"],
  ["RECONFIGURATION_IN_PROGRESS", 10210, "RECONFIGURATION_IN_PROGRESS", true, "FAILED_PRECONDITION"],
  // partition reassignment (issue 21, KIP-455)
  ["INVALID_REPLICA_ASSIGNMENT", 39, "INVALID_REPLICA_ASSIGNMENT", false, "INVALID_ARGUMENT"],
  ["NO_REASSIGNMENT_IN_PROGRESS", 85, "NO_REASSIGNMENT_IN_PROGRESS", false, "FAILED_PRECONDITION"],
];

/** Codes of entries that were removed: never to be used again. */
const RETIRED_CODES: readonly number[] = [];

describe("the error catalog", () => {
  it("has exactly the pinned entries: code, name, retriable and gRPC status each", () => {
    const actual = Object.entries(Errors)
      .map(([key, k]): Row => {
        const grpc = (Object.keys(GrpcStatus) as (keyof typeof GrpcStatus)[]).find((s) => GrpcStatus[s] === k.grpc)!;
        return [key, k.code, k.name, k.retriable, grpc];
      })
      .sort((a, b) => a[1] - b[1]);
    expect(actual).toEqual([...CATALOG].sort((a, b) => a[1] - b[1]));
  });

  it("never reuses a code: codes are unique and none is a retired one", () => {
    const codes = CATALOG.map((r) => r[1]);
    expect(new Set(codes).size).toBe(codes.length);
    const names = CATALOG.map((r) => r[2]);
    expect(new Set(names).size).toBe(names.length);
    for (const code of RETIRED_CODES) expect(errorKindByCode(code), `retired code ${code}`).toBeUndefined();
  });

  it("keeps Kafka's codes below 10000 and Rill's own from 10000", () => {
    for (const [key, code] of CATALOG) {
      if (code >= 10_000) expect(code, key).toBeLessThan(20_000);
      else expect(code, key).toBeGreaterThanOrEqual(-1);
    }
  });

  it("looks every entry up by its code, and RillError carries it", () => {
    for (const [key, code, name, retriable] of CATALOG) {
      expect(errorKindByCode(code)?.name).toBe(name);
      const e = rillError(key as ErrorName, "why");
      expect(e).toBeInstanceOf(RillError);
      expect([e.code, e.retriable, e.message, e.name]).toEqual([code, retriable, "why", `RillError(${name})`]);
    }
    expect(errorKindByCode(9999)).toBeUndefined();
  });
});
