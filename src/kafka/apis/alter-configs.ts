/**
 * AlterConfigs (key 33), v0-2 (v2 flexible): the admin service's AlterConfigs
 * (src/service/admin.ts) — on the active controller, each resource's changes applied together or
 * not at all.
 *
 * Kafka's AlterConfigs replaces a resource's whole set of overrides: the keys it names are set (a
 * null value: back to the default), and every other key the topic overrides now goes back to its
 * default. That is the domain's "set" and "delete" operations, the overrides read from this
 * node's image. Only topics' configs change (a broker's are static: the service refuses them).
 * Each resource needs ALTER_CONFIGS (src/service/authorize.ts); a denied one is answered with its
 * authorization error and the others are altered. The shared translation of the answer is here;
 * IncrementalAlterConfigs (incremental-alter-configs.ts) uses it too.
 */
import type { RillError } from "../../base/errors.ts";
import type { AlterConfigOp, AlteredResource, ResourceAlteration } from "../../service/admin-types.ts";
import { type KafkaRequestContext, api } from "../api.ts";
import { answerOrError, authorizeEach, controllerPort, errorFields, kafkaAdmin, onAllowed } from "../admin.ts";
import { bool, int8, int16, int32, message, string, structs } from "../schema.ts";
import { configResource } from "./describe-configs.ts";

export const AlterConfigsRequest = message("AlterConfigsRequest", "0-2", "2+", {
  resources: structs({
    resourceType: int8(),
    resourceName: string(),
    configs: structs({ name: string(), value: string().nullable("0+") }),
  }),
  validateOnly: bool(),
});

export const AlterConfigsResponse = message("AlterConfigsResponse", "0-2", "2+", {
  throttleTimeMs: int32(),
  responses: structs({
    errorCode: int16(),
    errorMessage: string().nullable("0+").default(null),
    resourceType: int8(),
    resourceName: string(),
  }),
});

/** One resource of the request as the answer echoes it. */
export interface AskedResource {
  readonly resourceType: number;
  readonly resourceName: string;
}

/**
 * Runs the alterations (one per asked resource, in order) through the service, each authorized
 * on its own, and answers Kafka's per-resource results.
 */
export async function alterResources(
  ctx: KafkaRequestContext,
  asked: readonly AskedResource[],
  alterations: readonly ResourceAlteration[],
  validateOnly: boolean,
) {
  const { admin, access } = kafkaAdmin(ctx.deps);
  const who = ctx.session.requester;
  const refusals = authorizeEach(alterations, (a) => access.alterConfigs(who, { resources: [a], validateOnly }));
  const results = await onAllowed(
    alterations,
    refusals,
    (allowed) =>
      answerOrError(
        async () => (await admin.alterConfigs({ resources: allowed, validateOnly }, controllerPort(ctx, 0))).results,
        (error) => allowed.map((a): AlteredResource => ({ ...(a.resource ? { resource: a.resource } : {}), error })),
      ),
    (a, error: RillError): AlteredResource => ({ ...(a.resource ? { resource: a.resource } : {}), error }),
  );
  return {
    throttleTimeMs: 0,
    responses: results.map((r, i) => ({
      ...errorFields(r.error),
      resourceType: asked[i]?.resourceType ?? 0,
      resourceName: asked[i]?.resourceName ?? "",
    })),
  };
}

export const alterConfigs = api(33, "0-2", AlterConfigsRequest, AlterConfigsResponse, async (req, ctx) => {
  const image = ctx.deps.services.replicas.image;
  const alterations = req.resources.map((r): ResourceAlteration => {
    const resource = configResource(r.resourceType, r.resourceName);
    const named = new Set(r.configs.map((c) => c.name));
    const ops: AlterConfigOp[] = r.configs.map((c) =>
      c.value === null ? { name: c.name, operation: "delete", value: "" } : { name: c.name, operation: "set", value: c.value },
    );
    const overrides = resource.type === "topic" ? Object.keys(image.topics.get(r.resourceName)?.configs ?? {}) : [];
    for (const key of overrides) if (!named.has(key)) ops.push({ name: key, operation: "delete", value: "" });
    return { resource, operations: ops };
  });
  return alterResources(ctx, req.resources, alterations, req.validateOnly);
});
