/**
 * CreateAcls (key 30), v0-3 (v2+ flexible): the security service's CreateAcls
 * (src/service/admin-security.ts) — on the active controller, each binding created or refused on
 * its own. Needs ALTER on the cluster, as over gRPC (src/service/authorize.ts); denied, every
 * binding is answered CLUSTER_AUTHORIZATION_FAILED.
 *
 * Kafka's enum numbers (resource type, pattern type, operation, permission) are translated to the
 * domain's names here, for the three ACL APIs; a number the domain does not know travels as its
 * Kafka name (or its number), and the service refuses it by that name. v0 has no pattern type: a
 * binding is LITERAL.
 */
import type { RillError } from "../../base/errors.ts";
import type { AclBinding } from "../../metadata/security-types.ts";
import type { AclBindingSpec } from "../../service/admin-security-types.ts";
import { api } from "../api.ts";
import { answerOrError, controllerPort, errorFields, kafkaAdmin } from "../admin.ts";
import { int8, int16, int32, message, string, structs } from "../schema.ts";

export const CreateAclsRequest = message("CreateAclsRequest", "0-3", "2+", {
  creations: structs({
    resourceType: int8(),
    resourceName: string(),
    resourcePatternType: int8().since(1).default(3),
    principal: string(),
    host: string(),
    operation: int8(),
    permissionType: int8(),
  }),
});

export const CreateAclsResponse = message("CreateAclsResponse", "0-3", "2+", {
  throttleTimeMs: int32(),
  results: structs({ errorCode: int16(), errorMessage: string().nullable("0+").default(null) }),
});

const RESOURCE_TYPES = ["UNKNOWN", "ANY", "TOPIC", "GROUP", "CLUSTER", "TRANSACTIONAL_ID", "DELEGATION_TOKEN", "USER"];
const PATTERN_TYPES = ["UNKNOWN", "ANY", "MATCH", "LITERAL", "PREFIXED"];
const OPERATIONS = [
  "UNKNOWN",
  "ANY",
  "ALL",
  "READ",
  "WRITE",
  "CREATE",
  "DELETE",
  "ALTER",
  "DESCRIBE",
  "CLUSTER_ACTION",
  "DESCRIBE_CONFIGS",
  "ALTER_CONFIGS",
  "IDEMPOTENT_WRITE",
  "CREATE_TOKENS",
  "DESCRIBE_TOKENS",
];
const PERMISSIONS = ["UNKNOWN", "ANY", "DENY", "ALLOW"];

/** Kafka's ACL enum numbers ↔ names. */
export const AclEnums = {
  resourceType: RESOURCE_TYPES,
  patternType: PATTERN_TYPES,
  operation: OPERATIONS,
  permission: PERMISSIONS,
} as const;

/** The name of Kafka's enum value `n` (its number as text when Kafka has none). */
export function enumName(names: readonly string[], n: number): string {
  return names[n] ?? String(n);
}

/** The name of a filter's enum value: undefined for ANY (1), which matches every value. */
export function filterName(names: readonly string[], n: number, anyIsUndefined = true): string | undefined {
  return anyIsUndefined && n === 1 ? undefined : enumName(names, n);
}

/** Kafka's number of a domain enum name. */
export function enumCode(names: readonly string[], name: string): number {
  const i = names.indexOf(name);
  return Math.max(i, 0);
}

/** A binding as the ACL answers carry it. */
export function bindingFields(b: AclBinding) {
  return {
    resourceType: enumCode(RESOURCE_TYPES, b.resourceType),
    resourceName: b.resourceName,
    patternType: enumCode(PATTERN_TYPES, b.patternType),
    principal: b.principal,
    host: b.host,
    operation: enumCode(OPERATIONS, b.operation),
    permissionType: enumCode(PERMISSIONS, b.permission),
  };
}

export const createAcls = api(30, "0-3", CreateAclsRequest, CreateAclsResponse, async (req, ctx) => {
  const { security, access } = kafkaAdmin(ctx.deps);
  const creations = req.creations.map(
    (c): AclBindingSpec => ({
      principal: c.principal,
      host: c.host,
      resourceType: enumName(RESOURCE_TYPES, c.resourceType),
      resourceName: c.resourceName,
      patternType: enumName(PATTERN_TYPES, c.resourcePatternType),
      operation: enumName(OPERATIONS, c.operation),
      permission: enumName(PERMISSIONS, c.permissionType),
    }),
  );
  const all = (error: RillError) => creations.map(() => ({ error }));
  const results = await answerOrError<readonly { error?: RillError }[]>(async () => {
    access.cluster(ctx.session.requester, "AdminService/CreateAcls");
    if (creations.length === 0) return [];
    return (await security.createAcls({ creations }, controllerPort(ctx, 0))).results;
  }, all);
  return { throttleTimeMs: 0, results: results.map((r) => errorFields(r.error)) };
});
