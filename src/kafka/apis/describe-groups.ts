/**
 * DescribeGroups (key 15): groups with their state, protocol and members
 * (GroupsService.describeGroups). A classic group shows Kafka's state names and each member's
 * metadata and assignment bytes (Stable only, as Kafka); a consumer (KIP-848) group shows
 * protocol type "consumer" and its members' subscriptions and assignments in the consumer
 * protocol's layout. An unknown group is state "Dead" with error 0, as Kafka answers before v6.
 */
import { api } from "../api.ts";
import { bool, bytes, int16, int32, message, string, structs, arrayOf } from "../schema.ts";
import { consumerAssignmentBytes, consumerStateName, consumerSubscriptionBytes, deniedCode, errorCode, groupsOf } from "./group-common.ts";

export const DescribeGroupsRequest = message("DescribeGroupsRequest", "0-5", "5+", {
  groups: arrayOf(string()),
  includeAuthorizedOperations: bool().since(3),
});

export const DescribeGroupsResponse = message("DescribeGroupsResponse", "0-5", "5+", {
  throttleTimeMs: int32().since(1),
  groups: structs({
    errorCode: int16(),
    groupId: string(),
    groupState: string(),
    protocolType: string(),
    protocolData: string(),
    members: structs({
      memberId: string(),
      groupInstanceId: string().since(4).nullable("4+").default(null),
      clientId: string(),
      clientHost: string(),
      memberMetadata: bytes(),
      memberAssignment: bytes(),
    }),
    authorizedOperations: int32().since(3).default(-2147483648),
  }),
});

const EMPTY = Buffer.alloc(0);

export const describeGroups = api(15, "0-5", DescribeGroupsRequest, DescribeGroupsResponse, async (req, ctx) => {
  const groups = req.groups.map((groupId) => {
    const dead = { groupId, errorCode: 0, groupState: "Dead", protocolType: "", protocolData: "", members: [] };
    const denied = deniedCode(() => ctx.deps.access.describeGroups(ctx.session.requester, [groupId]));
    if (denied !== 0) return { ...dead, errorCode: denied, groupState: "" };
    const [d] = groupsOf(ctx).describeGroups([groupId]);
    if (d === undefined || d.error !== null) {
      return d?.error?.kind.name === "GROUP_ID_NOT_FOUND" ? dead : { ...dead, groupState: "", errorCode: errorCode(d?.error) };
    }
    const g = d.group;
    const c = g.classic;
    if (c !== null) {
      const stable = c.state === "Stable";
      return {
        groupId,
        errorCode: 0,
        groupState: c.state,
        protocolType: c.protocolType,
        protocolData: stable ? c.protocol : "",
        members: c.members.map((m) => ({
          memberId: m.memberId,
          groupInstanceId: m.instanceId,
          clientId: m.clientId,
          clientHost: m.clientHost,
          memberMetadata: stable ? Buffer.from(m.metadata) : EMPTY,
          memberAssignment: stable ? Buffer.from(m.assignment) : EMPTY,
        })),
      };
    }
    return {
      groupId,
      errorCode: 0,
      groupState: consumerStateName(g.state),
      protocolType: "consumer",
      protocolData: g.assignor,
      members: g.members.map((m) => ({
        memberId: m.memberId,
        groupInstanceId: m.instanceId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        memberMetadata: consumerSubscriptionBytes(m.topics),
        memberAssignment: consumerAssignmentBytes(m.assignment),
      })),
    };
  });
  return { throttleTimeMs: 0, groups };
});
