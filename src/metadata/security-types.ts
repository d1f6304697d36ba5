/**
 * The security facts the metadata log holds, as plain values: ACL bindings, SCRAM credentials and
 * client quotas (DESIGN.md "Security"). They are replicated and snapshotted like every other
 * metadata record; the decisions over them (who may do what, whose password is right, how long
 * to throttle) live in src/security.
 */

/** A principal: `User:<name>` (Kafka's form). `User:*` in an ACL binding matches every principal. */
export type Principal = `User:${string}`;

/** The principal of a caller when no authentication is configured. */
export const ANONYMOUS: Principal = "User:ANONYMOUS";

/** What an ACL binding protects. */
export const RESOURCE_TYPES = ["TOPIC", "GROUP", "CLUSTER", "TRANSACTIONAL_ID"] as const;
export type ResourceType = (typeof RESOURCE_TYPES)[number];

/** How a binding's resource name matches: the exact name (`*` = every name) or a prefix. */
export const PATTERN_TYPES = ["LITERAL", "PREFIXED"] as const;
export type PatternType = (typeof PATTERN_TYPES)[number];

/** Kafka's ACL operations (ALL matches every operation). */
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
export type AclOperation = (typeof ACL_OPERATIONS)[number];

export const ACL_PERMISSIONS = ["ALLOW", "DENY"] as const;
export type AclPermission = (typeof ACL_PERMISSIONS)[number];

/** One ACL binding, as Kafka's: DENY wins; `*` host matches every client address. */
export interface AclBinding {
  readonly principal: Principal;
  /** Client address (IP) the binding applies to, `*` for every one. */
  readonly host: string;
  readonly resourceType: ResourceType;
  /** The resource's name; `*` with LITERAL = every resource of the type; `kafka-cluster` for CLUSTER. */
  readonly resourceName: string;
  readonly patternType: PatternType;
  readonly operation: AclOperation;
  readonly permission: AclPermission;
}

/** The name of the one CLUSTER resource (Kafka's). */
export const CLUSTER_RESOURCE = "kafka-cluster";

export const SCRAM_MECHANISMS = ["SCRAM-SHA-256", "SCRAM-SHA-512"] as const;
export type ScramMechanism = (typeof SCRAM_MECHANISMS)[number];

/** A SCRAM credential (RFC 5802) as Kafka stores it: never the password. Bytes as base64. */
export interface ScramCredential {
  readonly mechanism: ScramMechanism;
  readonly salt: string;
  readonly iterations: number;
  readonly storedKey: string;
  readonly serverKey: string;
}

/**
 * A client-quota entity, Kafka's: a user and/or a client id; a part that is null means "the
 * default" for that part (Kafka's `<default>` entity), a part that is absent means "not part of
 * this entity".
 */
export interface QuotaEntity {
  readonly user?: string | null;
  readonly clientId?: string | null;
}

/** Byte-rate quotas (bytes per second); absent = no quota. */
export interface QuotaValues {
  readonly producerByteRate?: number;
  readonly consumerByteRate?: number;
}

/** The quota keys (Kafka's names), bytes per second. */
export const QUOTA_KEYS = ["producer_byte_rate", "consumer_byte_rate"] as const;
export type QuotaKey = (typeof QUOTA_KEYS)[number];
