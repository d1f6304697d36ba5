/**
 * ElectLeaders (key 43), v0-2 (v2 flexible): the admin service's ElectLeaders
 * (src/service/admin.ts) — preferred-leader elections on the active controller. Null partitions:
 * every partition of the cluster. An unclean election (type 1) is not offered: the answer's error
 * says so (per partition in v0, which has no top-level error). A named topic this node does not
 * know is answered UNKNOWN_TOPIC_OR_PARTITION for its partitions, the others are elected. Needs
 * ALTER on the cluster (src/service/authorize.ts).
 */
import { type RillError, rillError } from "../../base/errors.ts";
import type { ElectionOutcome } from "../../service/admin-types.ts";
import { api } from "../api.ts";
import { answerOrError, controllerPort, errorFields, kafkaAdmin } from "../admin.ts";
import { arrayOf, int8, int16, int32, message, string, structs } from "../schema.ts";

export const ElectLeadersRequest = message("ElectLeadersRequest", "0-2", "2+", {
  electionType: int8().since(1),
  topicPartitions: structs({ topic: string(), partitions: arrayOf(int32()) }).nullable("0+"),
  timeoutMs: int32().default(60000),
});

export const ElectLeadersResponse = message("ElectLeadersResponse", "0-2", "2+", {
  throttleTimeMs: int32(),
  errorCode: int16().since(1),
  replicaElectionResults: structs({
    topic: string(),
    partitionResult: structs({ partitionId: int32(), errorCode: int16(), errorMessage: string().nullable("0+").default(null) }),
  }),
});

type Asked = { topic: string; partitions: number[] };

/** Outcomes grouped by topic, in first-seen order. */
function byTopic(outcomes: readonly ElectionOutcome[]) {
  const topics = new Map<string, { partitionId: number; errorCode: number; errorMessage: string | null }[]>();
  for (const o of outcomes) {
    let list = topics.get(o.topic);
    if (!list) topics.set(o.topic, (list = []));
    list.push({ partitionId: o.partition, ...errorFields(o.error) });
  }
  return [...topics].map(([topic, partitionResult]) => ({ topic, partitionResult }));
}

/** Every named partition answered with `error`. */
function failEach(asked: readonly Asked[], error: RillError): ElectionOutcome[] {
  return asked.flatMap((t) => t.partitions.map((partition) => ({ topic: t.topic, partition, leader: -1, error })));
}

export const electLeaders = api(43, "0-2", ElectLeadersRequest, ElectLeadersResponse, async (req, ctx) => {
  const { admin, access } = kafkaAdmin(ctx.deps);
  const image = ctx.deps.services.replicas.image;
  const asked: Asked[] = req.topicPartitions ?? [];
  const whole = (e: RillError) =>
    ctx.apiVersion >= 1
      ? { throttleTimeMs: 0, errorCode: errorFields(e).errorCode, replicaElectionResults: [] }
      : { throttleTimeMs: 0, errorCode: 0, replicaElectionResults: byTopic(failEach(asked, e)) };
  return answerOrError(async () => {
    access.electLeaders(ctx.session.requester, { partitions: asked });
    if (req.electionType !== 0)
      throw rillError("INVALID_REQUEST", `electionType ${req.electionType}: only preferred-leader elections (0) are offered`);
    const known = asked.filter((t) => image.topics.has(t.topic));
    const unknown = asked.filter((t) => !image.topics.has(t.topic));
    const missing = failEach(unknown, rillError("UNKNOWN_TOPIC_OR_PARTITION", "topic does not exist"));
    const elected =
      req.topicPartitions === null || known.length > 0
        ? (await admin.electLeaders({ partitions: known }, controllerPort(ctx, req.timeoutMs))).results
        : [];
    return { throttleTimeMs: 0, errorCode: 0, replicaElectionResults: byTopic([...elected, ...missing]) };
  }, whole);
});
