/**
 * DeleteGroups (key 42): deletes groups without members and their committed offsets
 * (GroupsService.deleteGroups, gRPC's DeleteGroups), each answered on its own: NON_EMPTY_GROUP,
 * GROUP_ID_NOT_FOUND, GROUP_AUTHORIZATION_FAILED.
 */
import { api } from "../api.ts";
import { arrayOf, int16, int32, message, string, structs } from "../schema.ts";
import { deniedCode, errorCode, groupsOf } from "./group-common.ts";

export const DeleteGroupsRequest = message("DeleteGroupsRequest", "0-2", "2+", {
  groupsNames: arrayOf(string()),
});

export const DeleteGroupsResponse = message("DeleteGroupsResponse", "0-2", "2+", {
  throttleTimeMs: int32(),
  results: structs({ groupId: string(), errorCode: int16() }),
});

export const deleteGroups = api(42, "0-2", DeleteGroupsRequest, DeleteGroupsResponse, async (req, ctx) => {
  const results = req.groupsNames.map((groupId) => {
    const denied = deniedCode(() => ctx.deps.access.deleteGroups(ctx.session.requester, [groupId]));
    if (denied !== 0) return { groupId, errorCode: denied };
    const [r] = groupsOf(ctx).deleteGroups([groupId]);
    return { groupId, errorCode: errorCode(r?.error) };
  });
  return { throttleTimeMs: 0, results };
});
