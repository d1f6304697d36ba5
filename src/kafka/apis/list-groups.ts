/**
 * ListGroups (key 16): the groups this node coordinates (GroupsService.listGroups), with their
 * protocol type, state (v4+: Kafka's names, classic or consumer) and type (v5+: "classic" or
 * "consumer"), filtered by state and type (case-insensitive, as Kafka), and to the groups the
 * caller may DESCRIBE.
 */
import { api } from "../api.ts";
import { arrayOf, int16, int32, message, string, structs } from "../schema.ts";
import { consumerStateName, errorCode, groupsOf, outcome } from "./group-common.ts";

export const ListGroupsRequest = message("ListGroupsRequest", "0-5", "3+", {
  statesFilter: arrayOf(string()).since(4),
  typesFilter: arrayOf(string()).since(5),
});

export const ListGroupsResponse = message("ListGroupsResponse", "0-5", "3+", {
  throttleTimeMs: int32().since(1),
  errorCode: int16(),
  groups: structs({ groupId: string(), protocolType: string(), groupState: string().since(4), groupType: string().since(5) }),
});

export const listGroups = api(16, "0-5", ListGroupsRequest, ListGroupsResponse, async (req, ctx) => {
  const states = new Set(req.statesFilter.map((s) => s.toLowerCase()));
  const types = new Set(req.typesFilter.map((s) => s.toLowerCase()));
  const r = await outcome(() => ctx.deps.access.listGroups(ctx.session.requester, groupsOf(ctx).listGroups([])));
  if (r.error !== null) return { errorCode: errorCode(r.error), groups: [] };
  const groups = r.value
    .map((g) => ({
      groupId: g.groupId,
      protocolType: g.protocolType,
      groupState: g.classicState ?? consumerStateName(g.state),
      groupType: g.type,
    }))
    .filter((g) => (states.size === 0 || states.has(g.groupState.toLowerCase())) && (types.size === 0 || types.has(g.groupType)));
  return { throttleTimeMs: 0, errorCode: 0, groups };
});
