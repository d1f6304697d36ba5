/**
 * SyncGroup (key 14): the leader sends the generation's assignments; every member waits for its
 * own (GroupsService.syncGroup, a long poll). v5+ names the protocol type and name, checked
 * against the group's.
 */
import { api } from "../api.ts";
import { bytes, int16, int32, message, string, structs } from "../schema.ts";
import { errorCode, groupsOf, outcome } from "./group-common.ts";

export const SyncGroupRequest = message("SyncGroupRequest", "0-5", "4+", {
  groupId: string(),
  generationId: int32(),
  memberId: string(),
  groupInstanceId: string().since(3).nullable("3+").default(null),
  protocolType: string().since(5).nullable("5+").default(null),
  protocolName: string().since(5).nullable("5+").default(null),
  assignments: structs({ memberId: string(), assignment: bytes() }),
});

export const SyncGroupResponse = message("SyncGroupResponse", "0-5", "4+", {
  throttleTimeMs: int32().since(1),
  errorCode: int16(),
  protocolType: string().since(5).nullable("5+").default(null),
  protocolName: string().since(5).nullable("5+").default(null),
  assignment: bytes(),
});

export const syncGroup = api(14, "0-5", SyncGroupRequest, SyncGroupResponse, async (req, ctx) => {
  const r = await outcome(() => {
    ctx.deps.access.heartbeat(ctx.session.requester, req.groupId, null);
    return groupsOf(ctx).syncGroup({
      groupId: req.groupId,
      memberId: req.memberId,
      generation: req.generationId,
      instanceId: req.groupInstanceId,
      protocolType: req.protocolType,
      protocol: req.protocolName,
      assignments: req.assignments.map((a) => ({ memberId: a.memberId, assignment: a.assignment })),
    });
  });
  if (r.error !== null) return { errorCode: errorCode(r.error), assignment: Buffer.alloc(0) };
  const a = r.value;
  return {
    throttleTimeMs: 0,
    errorCode: errorCode(a.error),
    protocolType: a.protocolType,
    protocolName: a.protocol,
    assignment: Buffer.from(a.assignment),
  };
});
