/**
 * JoinGroup (key 11): a classic member joins or rejoins; the answer waits until the rebalance
 * completes (GroupsService.joinGroup, a long poll). v4+ asks a new member to join again with the
 * id it is given (MEMBER_ID_REQUIRED); v0 has no rebalance timeout (the session timeout is used).
 */
import { api } from "../api.ts";
import { bool, bytes, int16, int32, message, string, structs } from "../schema.ts";
import { errorCode, groupsOf, outcome } from "./group-common.ts";

export const JoinGroupRequest = message("JoinGroupRequest", "0-9", "6+", {
  groupId: string(),
  sessionTimeoutMs: int32(),
  rebalanceTimeoutMs: int32().since(1).default(-1),
  memberId: string(),
  groupInstanceId: string().since(5).nullable("5+").default(null),
  protocolType: string(),
  protocols: structs({ name: string(), metadata: bytes() }),
  reason: string().since(8).nullable("8+").default(null),
});

export const JoinGroupResponse = message("JoinGroupResponse", "0-9", "6+", {
  throttleTimeMs: int32().since(2),
  errorCode: int16(),
  generationId: int32().default(-1),
  protocolType: string().since(7).nullable("7+").default(null),
  protocolName: string().nullable("7+"),
  leader: string(),
  skipAssignment: bool().since(9),
  memberId: string(),
  members: structs({ memberId: string(), groupInstanceId: string().since(5).nullable("5+").default(null), metadata: bytes() }),
});

export const joinGroup = api(11, "0-9", JoinGroupRequest, JoinGroupResponse, async (req, ctx) => {
  const v = ctx.apiVersion;
  const r = await outcome(() => {
    ctx.deps.access.heartbeat(ctx.session.requester, req.groupId, null);
    return groupsOf(ctx).joinGroup({
      groupId: req.groupId,
      memberId: req.memberId,
      instanceId: req.groupInstanceId,
      protocolType: req.protocolType,
      protocols: req.protocols.map((p) => ({ name: p.name, metadata: p.metadata })),
      sessionTimeoutMs: req.sessionTimeoutMs,
      rebalanceTimeoutMs: v >= 1 ? req.rebalanceTimeoutMs : req.sessionTimeoutMs,
      clientId: ctx.clientId ?? "",
      clientHost: `/${ctx.session.requester.host}`,
      requireKnownMemberId: v >= 4,
    });
  });
  // A null protocol name is written as "" where the version cannot say null.
  const noName = v >= 7 ? null : "";
  if (r.error !== null) return { errorCode: errorCode(r.error), generationId: -1, protocolName: noName, memberId: req.memberId };
  const a = r.value;
  return {
    throttleTimeMs: 0,
    errorCode: errorCode(a.error),
    generationId: a.generation,
    protocolType: a.protocolType,
    protocolName: a.protocol ?? noName,
    leader: a.leader,
    memberId: a.memberId,
    members: a.members.map((m) => ({ memberId: m.memberId, groupInstanceId: m.instanceId, metadata: Buffer.from(m.metadata) })),
  };
});
