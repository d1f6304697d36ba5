/**
 * DescribeAcls (key 29), v0-3 (v2+ flexible): the security service's DescribeAcls
 * (src/service/admin-security.ts) — the bindings matching one filter, from this node's image,
 * grouped by resource as Kafka answers them. Filter fields: ANY (1) or null match every value;
 * v0 has no pattern type (LITERAL). A bad filter, or a caller without DESCRIBE on the cluster
 * (src/service/authorize.ts), is the answer's error.
 */
import type { AclBinding } from "../../metadata/security-types.ts";
import type { AclFilterSpec } from "../../service/admin-security-types.ts";
import { api } from "../api.ts";
import { answerOrError, errorFields, kafkaAdmin } from "../admin.ts";
import { int8, int16, int32, message, string, structs } from "../schema.ts";
import { AclEnums, bindingFields, filterName } from "./create-acls.ts";

/** An ACL filter as Kafka's DescribeAcls and DeleteAcls carry it. */
export const aclFilterFields = {
  resourceTypeFilter: int8(),
  resourceNameFilter: string().nullable("0+"),
  patternTypeFilter: int8().since(1).default(3),
  principalFilter: string().nullable("0+"),
  hostFilter: string().nullable("0+"),
  operation: int8(),
  permissionType: int8(),
};

export const DescribeAclsRequest = message("DescribeAclsRequest", "0-3", "2+", aclFilterFields);

export const DescribeAclsResponse = message("DescribeAclsResponse", "0-3", "2+", {
  throttleTimeMs: int32(),
  errorCode: int16(),
  errorMessage: string().nullable("0+").default(null),
  resources: structs({
    resourceType: int8(),
    resourceName: string(),
    patternType: int8().since(1).default(3),
    acls: structs({ principal: string(), host: string(), operation: int8(), permissionType: int8() }),
  }),
});

/** A Kafka filter as the domain's: null and ANY are left undefined (they match every value). */
export function aclFilter(f: {
  resourceTypeFilter: number;
  resourceNameFilter: string | null;
  patternTypeFilter: number;
  principalFilter: string | null;
  hostFilter: string | null;
  operation: number;
  permissionType: number;
}): AclFilterSpec {
  return {
    resourceType: filterName(AclEnums.resourceType, f.resourceTypeFilter),
    resourceName: f.resourceNameFilter ?? undefined,
    patternType: filterName(AclEnums.patternType, f.patternTypeFilter, false),
    principal: f.principalFilter ?? undefined,
    host: f.hostFilter ?? undefined,
    operation: filterName(AclEnums.operation, f.operation),
    permission: filterName(AclEnums.permission, f.permissionType),
  };
}

/** One resource of DescribeAcls' answer with its bindings. */
interface DescribedResource {
  resourceType: number;
  resourceName: string;
  patternType: number;
  acls: { principal: string; host: string; operation: number; permissionType: number }[];
}

/** Bindings grouped by resource (type, name, pattern), in first-seen order. */
function byResource(bindings: readonly AclBinding[]): DescribedResource[] {
  const out = new Map<string, DescribedResource>();
  for (const b of bindings) {
    const f = bindingFields(b);
    const key = `${f.resourceType}\0${f.patternType}\0${f.resourceName}`;
    let r = out.get(key);
    if (!r) out.set(key, (r = { resourceType: f.resourceType, resourceName: f.resourceName, patternType: f.patternType, acls: [] }));
    r.acls.push({ principal: f.principal, host: f.host, operation: f.operation, permissionType: f.permissionType });
  }
  return [...out.values()];
}

export const describeAcls = api(29, "0-3", DescribeAclsRequest, DescribeAclsResponse, (req, ctx) => {
  const { security, access } = kafkaAdmin(ctx.deps);
  return answerOrError(
    () => {
      access.cluster(ctx.session.requester, "AdminService/DescribeAcls");
      const res = security.describeAcls({ filter: aclFilter(req) });
      return { throttleTimeMs: 0, errorCode: 0, errorMessage: null as string | null, resources: byResource(res.bindings) };
    },
    (e) => ({ throttleTimeMs: 0, ...errorFields(e), resources: [] }),
  );
});
