/**
 * DeleteAcls (key 31), v0-3 (v2+ flexible): the security service's DeleteAcls
 * (src/service/admin-security.ts) — on the active controller, each filter deleting the bindings it
 * matches (a bad filter deletes nothing and is that filter's error). Filters as DescribeAcls'
 * (describe-acls.ts). Needs ALTER on the cluster (src/service/authorize.ts); denied, every filter
 * is answered CLUSTER_AUTHORIZATION_FAILED.
 */
import type { RillError } from "../../base/errors.ts";
import type { AclBinding } from "../../metadata/security-types.ts";
import { api } from "../api.ts";
import { answerOrError, controllerPort, errorFields, kafkaAdmin } from "../admin.ts";
import { int8, int16, int32, message, string, structs } from "../schema.ts";
import { bindingFields } from "./create-acls.ts";
import { aclFilter, aclFilterFields } from "./describe-acls.ts";

export const DeleteAclsRequest = message("DeleteAclsRequest", "0-3", "2+", {
  filters: structs(aclFilterFields),
});

export const DeleteAclsResponse = message("DeleteAclsResponse", "0-3", "2+", {
  throttleTimeMs: int32(),
  filterResults: structs({
    errorCode: int16(),
    errorMessage: string().nullable("0+").default(null),
    matchingAcls: structs({
      errorCode: int16(),
      errorMessage: string().nullable("0+").default(null),
      resourceType: int8(),
      resourceName: string(),
      patternType: int8().since(1).default(3),
      principal: string(),
      host: string(),
      operation: int8(),
      permissionType: int8(),
    }),
  }),
});

type FilterResult = { readonly matched: readonly AclBinding[]; readonly error?: RillError };

export const deleteAcls = api(31, "0-3", DeleteAclsRequest, DeleteAclsResponse, async (req, ctx) => {
  const { security, access } = kafkaAdmin(ctx.deps);
  const filters = req.filters.map(aclFilter);
  const results = await answerOrError<readonly FilterResult[]>(
    async () => {
      access.cluster(ctx.session.requester, "AdminService/DeleteAcls");
      if (filters.length === 0) return [];
      return (await security.deleteAcls({ filters }, controllerPort(ctx, 0))).results;
    },
    (error) => filters.map(() => ({ matched: [], error })),
  );
  return {
    throttleTimeMs: 0,
    filterResults: results.map((r) => ({
      ...errorFields(r.error),
      matchingAcls: r.matched.map((b) => ({ errorCode: 0, errorMessage: null, ...bindingFields(b) })),
    })),
  };
});
