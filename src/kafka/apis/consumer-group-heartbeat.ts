/**
 * ConsumerGroupHeartbeat (key 68, KIP-848): a member of a consumer group joins, stays or leaves
 * by heartbeat and gets its partitions from the broker (GroupsService.heartbeat, the call gRPC's
 * Heartbeat makes). Topics travel as ids (the metadata image's, as Metadata answers them). v1's
 * member ids chosen by the client are accepted; regex subscriptions are not implemented and are
 * answered INVALID_REQUEST. The answer always carries the member's whole assignment.
 */
import { rillError } from "../../base/errors.ts";
import { api } from "../api.ts";
import { arrayOf, int16, int32, message, nested, string, structs, uuid } from "../schema.ts";
import { errorCode, groupsOf, outcome, topicByUuid, uuidOfTopic } from "./group-common.ts";

const topicPartitions = () => structs({ topicId: uuid(), partitions: arrayOf(int32()) });

export const ConsumerGroupHeartbeatRequest = message("ConsumerGroupHeartbeatRequest", "0-1", "0+", {
  groupId: string(),
  memberId: string(),
  memberEpoch: int32(),
  instanceId: string().nullable("0+").default(null),
  rackId: string().nullable("0+").default(null),
  rebalanceTimeoutMs: int32().default(-1),
  subscribedTopicNames: arrayOf(string()).nullable("0+").default(null),
  subscribedTopicRegex: string().since(1).nullable("1+").default(null),
  serverAssignor: string().nullable("0+").default(null),
  topicPartitions: topicPartitions().nullable("0+").default(null),
});

export const ConsumerGroupHeartbeatResponse = message("ConsumerGroupHeartbeatResponse", "0-1", "0+", {
  throttleTimeMs: int32(),
  errorCode: int16(),
  errorMessage: string().nullable("0+").default(null),
  memberId: string().nullable("0+").default(null),
  memberEpoch: int32(),
  heartbeatIntervalMs: int32(),
  assignment: nested({ topicPartitions: topicPartitions() }).nullable("0+").default(null),
});

export const consumerGroupHeartbeat = api(68, "0-1", ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, async (req, ctx) => {
  const r = await outcome(() => {
    if (req.subscribedTopicRegex !== null)
      throw rillError("INVALID_REQUEST", "subscribedTopicRegex: regex subscriptions are not supported; give subscribedTopicNames");
    ctx.deps.access.heartbeat(ctx.session.requester, req.groupId, req.subscribedTopicNames);
    const owned =
      req.topicPartitions === null
        ? null
        : req.topicPartitions.flatMap((t) => {
            const topic = topicByUuid(ctx, t.topicId);
            return topic === undefined ? [] : [{ topic, partitions: [...t.partitions] }];
          });
    return groupsOf(ctx).heartbeat({
      groupId: req.groupId,
      memberId: req.memberId,
      memberEpoch: req.memberEpoch,
      instanceId: req.instanceId,
      topics: req.subscribedTopicNames,
      owned,
      assignor: req.serverAssignor ?? "",
      sessionTimeoutMs: 0,
      rebalanceTimeoutMs: Math.max(req.rebalanceTimeoutMs, 0),
      clientId: ctx.clientId ?? "",
      clientHost: `/${ctx.session.requester.host}`,
    });
  });
  if (r.error !== null) return { throttleTimeMs: 0, errorCode: errorCode(r.error), errorMessage: r.error.message, memberEpoch: -1 };
  const h = r.value;
  return {
    throttleTimeMs: 0,
    errorCode: 0,
    memberId: h.memberId,
    memberEpoch: h.memberEpoch,
    heartbeatIntervalMs: h.heartbeatIntervalMs,
    assignment:
      h.memberEpoch < 0
        ? null
        : { topicPartitions: h.assignment.map((t) => ({ topicId: uuidOfTopic(ctx, t.topic), partitions: [...t.partitions] })) },
  };
});
