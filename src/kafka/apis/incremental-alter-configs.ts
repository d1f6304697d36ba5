/**
 * IncrementalAlterConfigs (key 44), v0-1 (v1 flexible): the admin service's AlterConfigs
 * (src/service/admin.ts) with Kafka's operations SET (0) and DELETE (1) as the domain's "set" and
 * "delete"; APPEND (2) and SUBTRACT (3), which only list-valued keys take, are refused by the
 * service by number, for that resource. Authorization and answers as AlterConfigs
 * (alter-configs.ts).
 */
import type { AlterConfigOp, ResourceAlteration } from "../../service/admin-types.ts";
import { api } from "../api.ts";
import { bool, int8, int16, int32, message, string, structs } from "../schema.ts";
import { alterResources } from "./alter-configs.ts";
import { configResource } from "./describe-configs.ts";

export const IncrementalAlterConfigsRequest = message("IncrementalAlterConfigsRequest", "0-1", "1+", {
  resources: structs({
    resourceType: int8(),
    resourceName: string(),
    configs: structs({ name: string(), configOperation: int8(), value: string().nullable("0+") }),
  }),
  validateOnly: bool(),
});

export const IncrementalAlterConfigsResponse = message("IncrementalAlterConfigsResponse", "0-1", "1+", {
  throttleTimeMs: int32(),
  responses: structs({
    errorCode: int16(),
    errorMessage: string().nullable("0+").default(null),
    resourceType: int8(),
    resourceName: string(),
  }),
});

/** Kafka's operation number as the domain's. */
function operationOf(op: number): AlterConfigOp["operation"] {
  if (op === 0) return "set";
  if (op === 1) return "delete";
  return { unrecognized: op };
}

export const incrementalAlterConfigs = api(44, "0-1", IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, (req, ctx) => {
  const alterations = req.resources.map(
    (r): ResourceAlteration => ({
      resource: configResource(r.resourceType, r.resourceName),
      operations: r.configs.map((c) => ({ name: c.name, operation: operationOf(c.configOperation), value: c.value ?? "" })),
    }),
  );
  return alterResources(ctx, req.resources, alterations, req.validateOnly);
});
