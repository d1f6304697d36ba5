/**
 * LeaveGroup (key 13): members leave a classic group (GroupsService.leaveGroup). v0-2 name one
 * member and answer its error at the top; v3+ batch members (a static one may give only its
 * instance id) and answer each.
 */
import { api } from "../api.ts";
import { int16, int32, message, string, structs } from "../schema.ts";
import { errorCode, groupsOf, outcome } from "./group-common.ts";

export const LeaveGroupRequest = message("LeaveGroupRequest", "0-5", "4+", {
  groupId: string(),
  memberId: string().versions("0-2"),
  members: structs({
    memberId: string(),
    groupInstanceId: string().nullable("3+").default(null),
    reason: string().since(5).nullable("5+").default(null),
  }).since(3),
});

export const LeaveGroupResponse = message("LeaveGroupResponse", "0-5", "4+", {
  throttleTimeMs: int32().since(1),
  errorCode: int16(),
  members: structs({ memberId: string(), groupInstanceId: string().nullable("3+"), errorCode: int16() }).since(3),
});

export const leaveGroup = api(13, "0-5", LeaveGroupRequest, LeaveGroupResponse, async (req, ctx) => {
  const batched = ctx.apiVersion >= 3;
  const members = batched
    ? req.members.map((m) => ({ memberId: m.memberId, instanceId: m.groupInstanceId }))
    : [{ memberId: req.memberId, instanceId: null }];
  const r = await outcome(() => {
    ctx.deps.access.heartbeat(ctx.session.requester, req.groupId, null);
    return groupsOf(ctx).leaveGroup({ groupId: req.groupId, members });
  });
  if (r.error !== null) return { errorCode: errorCode(r.error), members: [] };
  const out = r.value.members;
  if (!batched) return { throttleTimeMs: 0, errorCode: errorCode(out[0]?.error) };
  return {
    throttleTimeMs: 0,
    errorCode: 0,
    members: out.map((m) => ({ memberId: m.memberId, groupInstanceId: m.instanceId, errorCode: errorCode(m.error) })),
  };
});
