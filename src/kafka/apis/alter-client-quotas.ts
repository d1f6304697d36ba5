/**
 * AlterClientQuotas (key 49), v0-1 (v1 flexible): the quota service's AlterClientQuotas
 * (src/service/quota-admin.ts) — on the active controller, each entry stored (or, with
 * validateOnly, checked) on its own. Entities as DescribeClientQuotas' (describe-client-quotas.ts);
 * keys `producer_byte_rate` and `consumer_byte_rate`. Needs ALTER_CONFIGS on the cluster
 * (src/service/authorize.ts); denied, every entry is answered CLUSTER_AUTHORIZATION_FAILED.
 */
import type { RillError } from "../../base/errors.ts";
import type { AlteredQuota, QuotaEntryInput } from "../../service/quota-admin-types.ts";
import { api } from "../api.ts";
import { answerOrError, authorizeEach, controllerPort, errorFields, kafkaAdmin, onAllowed } from "../admin.ts";
import { bool, float64, int16, int32, message, string, structs } from "../schema.ts";
import { entityFields, entityTypeOf, unknownType } from "./describe-client-quotas.ts";

export const AlterClientQuotasRequest = message("AlterClientQuotasRequest", "0-1", "1+", {
  entries: structs({ entity: entityFields, ops: structs({ key: string(), value: float64(), remove: bool() }) }),
  validateOnly: bool(),
});

export const AlterClientQuotasResponse = message("AlterClientQuotasResponse", "0-1", "1+", {
  throttleTimeMs: int32(),
  entries: structs({ errorCode: int16(), errorMessage: string().nullable("0+").default(null), entity: entityFields }),
});

export const alterClientQuotas = api(49, "0-1", AlterClientQuotasRequest, AlterClientQuotasResponse, async (req, ctx) => {
  const { quotas, access } = kafkaAdmin(ctx.deps);
  const entries = req.entries.map(
    (e): QuotaEntryInput => ({
      entity: e.entity.map((p) => ({ type: entityTypeOf(p.entityType), name: p.entityName })),
      ops: e.ops.map((o) => ({ key: o.key, value: o.value, remove: o.remove })),
    }),
  );
  const refusals = authorizeEach(req.entries, (e) => {
    access.cluster(ctx.session.requester, "AdminService/AlterClientQuotas");
    const odd = e.entity.find((p) => typeof entityTypeOf(p.entityType) !== "string");
    if (odd) throw unknownType(odd.entityType);
  });
  const results = await onAllowed(
    entries,
    refusals,
    (allowed) =>
      answerOrError<readonly AlteredQuota[]>(
        async () => (await quotas.alterClientQuotas({ entries: allowed, validateOnly: req.validateOnly }, controllerPort(ctx, 0))).results,
        (error) => allowed.map((e) => ({ entity: e.entity, error })),
      ),
    (e, error: RillError): AlteredQuota => ({ entity: e.entity, error }),
  );
  return {
    throttleTimeMs: 0,
    entries: results.map((r, i) => ({ ...errorFields(r.error), entity: req.entries[i]?.entity ?? [] })),
  };
});
