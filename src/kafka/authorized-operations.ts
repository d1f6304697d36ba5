/**
 * Kafka's "authorized operations" bit fields (Metadata, DescribeCluster, DescribeGroups): bit n
 * set when the requester may perform the operation whose AclOperation number is n. The numbers are
 * the indexes of Kafka's AclOperation enum, kept once in `AclEnums` (apis/create-acls.ts).
 */
import type { AclOperation, ResourceType } from "../metadata/security-types.ts";
import type { Requester } from "../security/requester.ts";
import type { Access } from "../service/access.ts";
import { AclEnums } from "./apis/create-acls.ts";

/** Kafka's value of an authorized-operations field that was not asked for. */
export const OPERATIONS_NOT_ASKED = -2147483648;

/** The operations Kafka lists for a topic. */
export const TOPIC_OPERATIONS: readonly AclOperation[] = [
  "READ",
  "WRITE",
  "CREATE",
  "DELETE",
  "ALTER",
  "DESCRIBE",
  "DESCRIBE_CONFIGS",
  "ALTER_CONFIGS",
];

/** The operations Kafka lists for the cluster (those Rill's ACLs know). */
export const CLUSTER_OPERATIONS: readonly AclOperation[] = [
  "CREATE",
  "ALTER",
  "DESCRIBE",
  "DESCRIBE_CONFIGS",
  "ALTER_CONFIGS",
  "IDEMPOTENT_WRITE",
];

/** Kafka's AclOperation number of `op`. */
export function aclOperationCode(op: AclOperation): number {
  const n = AclEnums.operation.indexOf(op);
  if (n < 0) throw new RangeError(`${op} is not one of Kafka's ACL operations`);
  return n;
}

/** The bit field of the operations of `ops` that `who` may perform on resource `type` `name`. */
export function authorizedOperations(
  access: Access,
  who: Requester,
  type: ResourceType,
  name: string,
  ops: readonly AclOperation[],
): number {
  let bits = 0;
  for (const op of ops) if (access.allowed(who, op, type, name)) bits |= 1 << aclOperationCode(op);
  return bits;
}
