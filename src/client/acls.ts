/**
 * The SDK's types of the security admin calls (ACL bindings, filters, SCRAM users) as string
 * literals, and their conversion to and from the wire enums of proto/rill/v1/security.proto.
 * `Admin` (admin.ts) uses them; the CLI's `rill acl` and `rill user` too.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  type AclBinding as ProtoAclBinding,
  type AclBindingFilterSchema,
  type AclBindingSchema,
  AclOperation,
  AclPatternType,
  AclPermission,
  AclResourceType,
  ScramMechanism,
} from "../gen/rill/v1/security_pb.ts";

export const ACL_RESOURCE_TYPES = ["TOPIC", "GROUP", "CLUSTER", "TRANSACTIONAL_ID"] as const;
export type AclResourceTypeName = (typeof ACL_RESOURCE_TYPES)[number];
export const ACL_PATTERN_TYPES = ["LITERAL", "PREFIXED"] as const;
export type AclPatternTypeName = (typeof ACL_PATTERN_TYPES)[number];
/** Pattern types of a filter: a binding's own, or ANY (exactly the name) or MATCH (every binding that applies to the name). */
export type AclPatternFilterName = AclPatternTypeName | "ANY" | "MATCH";
export const ACL_OPERATIONS = [
  "READ",
  "WRITE",
  "CREATE",
  "DELETE",
  "ALTER",
  "DESCRIBE",
  "DESCRIBE_CONFIGS",
  "ALTER_CONFIGS",
  "IDEMPOTENT_WRITE",
  "ALL",
] as const;
export type AclOperationName = (typeof ACL_OPERATIONS)[number];
export type AclPermissionName = "ALLOW" | "DENY";
export const SCRAM_MECHANISM_NAMES = ["SCRAM-SHA-256", "SCRAM-SHA-512"] as const;
export type ScramMechanismName = (typeof SCRAM_MECHANISM_NAMES)[number];

/** An ACL binding (Kafka's): DENY wins; no matching ALLOW = denied. */
export interface AclBindingInfo {
  /** "User:<name>", or "User:*" for every principal. */
  readonly principal: string;
  /** Client IP address, or "*". */
  readonly host: string;
  readonly resourceType: AclResourceTypeName;
  /** The name or prefix; "*" with LITERAL = every resource of the type; CLUSTER's is "kafka-cluster". */
  readonly resourceName: string;
  readonly patternType: AclPatternTypeName;
  readonly operation: AclOperationName;
  readonly permission: AclPermissionName;
}

/** Which bindings a describe or delete means: an absent field matches any value. */
export interface AclFilter {
  readonly principal?: string | undefined;
  readonly host?: string | undefined;
  readonly resourceType?: AclResourceTypeName | undefined;
  readonly resourceName?: string | undefined;
  /** Default ANY. */
  readonly patternType?: AclPatternFilterName | undefined;
  readonly operation?: AclOperationName | undefined;
  readonly permission?: AclPermissionName | undefined;
}

/** A SCRAM credential to create or replace; the broker salts the password (send it over TLS). */
export interface ScramUpsertion {
  readonly name: string;
  readonly mechanism: ScramMechanismName;
  /** 4096 to 16384; default 4096. */
  readonly iterations?: number | undefined;
  readonly password: string;
}

/** A SCRAM credential to delete. */
export interface ScramDeletion {
  readonly name: string;
  readonly mechanism: ScramMechanismName;
}

/** A user and its SCRAM mechanisms (never salts or keys). */
export interface ScramUserInfo {
  readonly user: string;
  readonly credentials: readonly { readonly mechanism: ScramMechanismName; readonly iterations: number }[];
}

type EnumObject = Record<string, string | number>;

/** The wire number of an enum name (0, UNSPECIFIED, when undefined); a name the enum lacks is a RangeError. */
function wire(e: EnumObject, name: string | undefined, what: string): number {
  if (name === undefined) return 0;
  const n = e[name];
  if (typeof n !== "number" || n === 0) throw new RangeError(`${what}: unknown value "${name}"`);
  return n;
}

/** The name of a wire enum number ("UNKNOWN(n)" for a number this SDK does not know). */
function named<T extends string>(e: EnumObject, n: number): T {
  const name = e[n];
  return (typeof name === "string" ? name : `UNKNOWN(${n})`) as T;
}

/** A binding as the wire message. */
export function toProtoBinding(b: AclBindingInfo, field: string): MessageInitShape<typeof AclBindingSchema> {
  return {
    principal: b.principal,
    host: b.host,
    resourceType: wire(AclResourceType, b.resourceType, `${field}.resourceType`),
    resourceName: b.resourceName,
    patternType: wire(AclPatternType, b.patternType, `${field}.patternType`),
    operation: wire(AclOperation, b.operation, `${field}.operation`),
    permission: wire(AclPermission, b.permission, `${field}.permission`),
  };
}

/** A wire binding as the SDK's. */
export function fromProtoBinding(b: ProtoAclBinding): AclBindingInfo {
  return {
    principal: b.principal,
    host: b.host,
    resourceType: named(AclResourceType, b.resourceType),
    resourceName: b.resourceName,
    patternType: named(AclPatternType, b.patternType),
    operation: named(AclOperation, b.operation),
    permission: named(AclPermission, b.permission),
  };
}

/** A filter as the wire message. */
export function toProtoFilter(f: AclFilter, field: string): MessageInitShape<typeof AclBindingFilterSchema> {
  return {
    ...(f.principal !== undefined ? { principal: f.principal } : {}),
    ...(f.host !== undefined ? { host: f.host } : {}),
    ...(f.resourceName !== undefined ? { resourceName: f.resourceName } : {}),
    resourceType: wire(AclResourceType, f.resourceType, `${field}.resourceType`),
    patternType: wire(AclPatternType, f.patternType, `${field}.patternType`),
    operation: wire(AclOperation, f.operation, `${field}.operation`),
    permission: wire(AclPermission, f.permission, `${field}.permission`),
  };
}

/** A mechanism name as the wire enum. */
export function toProtoMechanism(m: ScramMechanismName, field: string): ScramMechanism {
  return wire(ScramMechanism, m.replaceAll("-", "_"), field);
}

/** A wire mechanism as its name. */
export function fromProtoMechanism(m: ScramMechanism): ScramMechanismName {
  return named<string>(ScramMechanism, m).replaceAll("_", "-") as ScramMechanismName;
}

/** A binding in one line, as `rill acl list` prints it. */
export function formatBinding(b: AclBindingInfo): string {
  const pattern = b.patternType === "PREFIXED" ? `${b.resourceName}*` : b.resourceName;
  return `${b.permission} ${b.principal} ${b.operation} ${b.resourceType}:${pattern} from ${b.host}`;
}
