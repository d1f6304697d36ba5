/**
 * ConsumerGroupDescribe (key 69, KIP-848): consumer groups with their epochs, assignor and
 * members' subscriptions, current and target assignments (GroupsService.describeGroups). A
 * classic group is GROUP_ID_NOT_FOUND here ("not a consumer group"), as in Kafka.
 */
import { rillError } from "../../base/errors.ts";
import { api } from "../api.ts";
import type { KafkaRequestContext } from "../api.ts";
import { arrayOf, bool, int8, int16, int32, message, nested, string, structs, uuid } from "../schema.ts";
import { consumerStateName, deniedCode, errorCode, groupsOf, uuidOfTopic } from "./group-common.ts";

const assignment = () => nested({ topicPartitions: structs({ topicId: uuid(), topicName: string(), partitions: arrayOf(int32()) }) });

export const ConsumerGroupDescribeRequest = message("ConsumerGroupDescribeRequest", "0-1", "0+", {
  groupIds: arrayOf(string()),
  includeAuthorizedOperations: bool(),
});

export const ConsumerGroupDescribeResponse = message("ConsumerGroupDescribeResponse", "0-1", "0+", {
  throttleTimeMs: int32(),
  groups: structs({
    errorCode: int16(),
    errorMessage: string().nullable("0+").default(null),
    groupId: string(),
    groupState: string(),
    groupEpoch: int32(),
    assignmentEpoch: int32(),
    assignorName: string(),
    members: structs({
      memberId: string(),
      instanceId: string().nullable("0+").default(null),
      rackId: string().nullable("0+").default(null),
      memberEpoch: int32(),
      clientId: string(),
      clientHost: string(),
      subscribedTopicNames: arrayOf(string()),
      subscribedTopicRegex: string().nullable("0+").default(null),
      assignment: assignment(),
      targetAssignment: assignment(),
      memberType: int8().since(1).default(-1),
    }),
    authorizedOperations: int32().default(-2147483648),
  }),
});

/** Member type (v1): 1, a consumer (KIP-848) member. */
const CONSUMER_MEMBER = 1;

function toAssignment(ctx: KafkaRequestContext, tps: readonly { readonly topic: string; readonly partitions: readonly number[] }[]) {
  return { topicPartitions: tps.map((t) => ({ topicId: uuidOfTopic(ctx, t.topic), topicName: t.topic, partitions: [...t.partitions] })) };
}

export const consumerGroupDescribe = api(69, "0-1", ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, async (req, ctx) => {
  const groups = req.groupIds.map((groupId) => {
    const failed = (code: number, message: string) => ({ groupId, errorCode: code, errorMessage: message, groupState: "", members: [] });
    const denied = deniedCode(() => ctx.deps.access.describeGroups(ctx.session.requester, [groupId]));
    if (denied !== 0) return failed(denied, `group ${groupId}: not authorized`);
    const [d] = groupsOf(ctx).describeGroups([groupId]);
    if (d === undefined || d.error !== null) return failed(errorCode(d?.error), d?.error?.message ?? "");
    const g = d.group;
    if (g.classic !== null) {
      const e = rillError("GROUP_ID_NOT_FOUND", `group ${groupId} is not a consumer group (it uses the classic protocol)`);
      return failed(errorCode(e), e.message);
    }
    return {
      groupId,
      errorCode: 0,
      groupState: consumerStateName(g.state),
      groupEpoch: g.groupEpoch,
      assignmentEpoch: g.assignmentEpoch,
      assignorName: g.assignor,
      members: g.members.map((m) => ({
        memberId: m.memberId,
        instanceId: m.instanceId,
        memberEpoch: m.memberEpoch,
        clientId: m.clientId,
        clientHost: m.clientHost,
        subscribedTopicNames: [...m.topics],
        assignment: toAssignment(ctx, m.assignment),
        targetAssignment: toAssignment(ctx, m.targetAssignment),
        memberType: CONSUMER_MEMBER,
      })),
    };
  });
  return { throttleTimeMs: 0, groups };
});
