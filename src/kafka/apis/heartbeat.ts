/**
 * Heartbeat (key 12): a classic member is alive (GroupsService.classicHeartbeat);
 * REBALANCE_IN_PROGRESS tells it to join again.
 */
import { api } from "../api.ts";
import { int16, int32, message, string } from "../schema.ts";
import { errorCode, groupsOf, outcome } from "./group-common.ts";

export const HeartbeatRequest = message("HeartbeatRequest", "0-4", "4+", {
  groupId: string(),
  generationId: int32(),
  memberId: string(),
  groupInstanceId: string().since(3).nullable("3+").default(null),
});

export const HeartbeatResponse = message("HeartbeatResponse", "0-4", "4+", {
  throttleTimeMs: int32().since(1),
  errorCode: int16(),
});

export const heartbeat = api(12, "0-4", HeartbeatRequest, HeartbeatResponse, async (req, ctx) => {
  const r = await outcome(() => {
    ctx.deps.access.heartbeat(ctx.session.requester, req.groupId, null);
    return groupsOf(ctx).classicHeartbeat({
      groupId: req.groupId,
      memberId: req.memberId,
      generation: req.generationId,
      instanceId: req.groupInstanceId,
    });
  });
  return { throttleTimeMs: 0, errorCode: errorCode(r.error ?? r.value) };
});
