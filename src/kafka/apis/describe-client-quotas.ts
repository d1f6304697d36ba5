/**
 * DescribeClientQuotas (key 48), v0-1 (v1 flexible): the quota service's DescribeClientQuotas
 * (src/service/quota-admin.ts) — the entities matching the components and their quotas, from
 * this node's image. Entity types "user" and "client-id" (Kafka's names); match types EXACT (0),
 * DEFAULT (1), ANY (2). Needs DESCRIBE_CONFIGS on the cluster (src/service/authorize.ts); a
 * refusal or a bad component is the answer's error.
 */
import { rillError } from "../../base/errors.ts";
import type { QuotaEntity } from "../../metadata/security-types.ts";
import type { QuotaEntityPart, QuotaMatchType } from "../../service/quota-admin-types.ts";
import { api } from "../api.ts";
import { answerOrError, errorFields, kafkaAdmin } from "../admin.ts";
import { bool, float64, int8, int16, int32, message, string, structs } from "../schema.ts";

export const DescribeClientQuotasRequest = message("DescribeClientQuotasRequest", "0-1", "1+", {
  components: structs({ entityType: string(), matchType: int8(), match: string().nullable("0+") }),
  strict: bool(),
});

/** A quota entity's parts as Kafka carries them. */
export const entityFields = structs({ entityType: string(), entityName: string().nullable("0+") });

export const DescribeClientQuotasResponse = message("DescribeClientQuotasResponse", "0-1", "1+", {
  throttleTimeMs: int32(),
  errorCode: int16(),
  errorMessage: string().nullable("0+").default(null),
  entries: structs({ entity: entityFields, values: structs({ key: string(), value: float64() }) }).nullable("0+"),
});

/**
 * Kafka's entity type name as the domain's. A type Rill does not keep ("ip") travels as an
 * unrecognized value the service refuses; -1 stands for it (Kafka names types, it has no numbers).
 */
export function entityTypeOf(name: string): QuotaEntityPart["type"] {
  return name === "user" || name === "client-id" ? name : { unrecognized: -1 };
}

function matchTypeOf(n: number): QuotaMatchType | { unrecognized: number } {
  return n === 0 ? "exact" : n === 1 ? "default" : n === 2 ? "any" : { unrecognized: n };
}

/** One entry of DescribeClientQuotas' answer. */
interface DescribedEntry {
  entity: { entityType: string; entityName: string | null }[];
  values: { key: string; value: number }[];
}

/** A domain entity as Kafka's parts. */
export function entityParts(e: QuotaEntity): { entityType: string; entityName: string | null }[] {
  const parts: { entityType: string; entityName: string | null }[] = [];
  if (e.user !== undefined) parts.push({ entityType: "user", entityName: e.user });
  if (e.clientId !== undefined) parts.push({ entityType: "client-id", entityName: e.clientId });
  return parts;
}

export const describeClientQuotas = api(48, "0-1", DescribeClientQuotasRequest, DescribeClientQuotasResponse, (req, ctx) => {
  const { quotas, access } = kafkaAdmin(ctx.deps);
  return answerOrError(
    () => {
      access.cluster(ctx.session.requester, "AdminService/DescribeClientQuotas");
      for (const c of req.components) {
        if (typeof entityTypeOf(c.entityType) !== "string") throw unknownType(c.entityType);
      }
      const res = quotas.describeClientQuotas({
        components: req.components.map((c) => ({
          entityType: entityTypeOf(c.entityType),
          matchType: matchTypeOf(c.matchType),
          match: c.match ?? "",
        })),
        strict: req.strict,
      });
      const entries: DescribedEntry[] | null = res.entries.map((e) => ({
        entity: entityParts(e.entity),
        values: Object.entries(e.values).map(([key, value]) => ({ key, value })),
      }));
      return { throttleTimeMs: 0, errorCode: 0, errorMessage: null as string | null, entries: entries as DescribedEntry[] | null };
    },
    (e) => ({ throttleTimeMs: 0, ...errorFields(e), entries: null }),
  );
});

/** INVALID_REQUEST for an entity type Rill keeps no quotas for. */
export function unknownType(name: string) {
  return rillError("INVALID_REQUEST", `entity type "${name}" is not one Rill keeps quotas for (known: user, client-id)`);
}
