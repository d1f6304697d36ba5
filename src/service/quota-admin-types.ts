/**
 * AlterClientQuotas and DescribeClientQuotas as domain types (issue 13): what the requests mean,
 * independent of the protocol that carried them. They follow the gRPC contract
 * (`proto/rill/v1/admin_service.proto`); an entity travels as its parts, as Kafka's does, so the
 * service can refuse a part given twice or of an unknown type with a message naming it.
 */
import type { RillError } from "../base/errors.ts";
import type { QuotaEntity } from "../metadata/security-types.ts";
/** A protocol enum value the domain does not know (as admin-types.ts `Unrecognized`). */
interface Unrecognized {
  readonly unrecognized: number;
}

/** The type of one part of an entity. */
export type QuotaEntityType = "user" | "client-id";

/** One part of an entity: its name, or null for the default entity of its type. */
export interface QuotaEntityPart {
  readonly type: QuotaEntityType | Unrecognized;
  readonly name: string | null;
}

/** One change of AlterClientQuotas. */
export interface QuotaOpInput {
  readonly key: string;
  readonly value: number;
  readonly remove: boolean;
}

/** One entry of AlterClientQuotas. */
export interface QuotaEntryInput {
  readonly entity: readonly QuotaEntityPart[];
  readonly ops: readonly QuotaOpInput[];
}

/** AlterClientQuotas: each entry is stored (or, with `validateOnly`, checked) on its own. */
export interface AlterClientQuotasInput {
  readonly entries: readonly QuotaEntryInput[];
  readonly validateOnly: boolean;
}

/** The outcome of one entry. */
export interface AlteredQuota {
  readonly entity: readonly QuotaEntityPart[];
  /** Why nothing of the entry was stored (absent: stored, or valid). */
  readonly error?: RillError;
}

/** Answer of AlterClientQuotas: one result per entry, in request order. */
export interface AlterClientQuotasResult {
  readonly results: readonly AlteredQuota[];
}

/** How a component matches. */
export type QuotaMatchType = "exact" | "default" | "any";

/** One condition of DescribeClientQuotas. */
export interface QuotaComponentInput {
  readonly entityType: QuotaEntityType | Unrecognized;
  readonly matchType: QuotaMatchType | Unrecognized;
  /** The name, with `exact`. */
  readonly match: string;
}

/** DescribeClientQuotas. */
export interface DescribeClientQuotasInput {
  readonly components: readonly QuotaComponentInput[];
  readonly strict: boolean;
}

/** One entity and its quotas (key → bytes per second). */
export interface DescribedQuota {
  readonly entity: QuotaEntity;
  readonly values: Readonly<Record<string, number>>;
}

/** Answer of DescribeClientQuotas. */
export interface DescribeClientQuotasResult {
  readonly entries: readonly DescribedQuota[];
}
