/**
 * CreateTopics (key 19), v0-7 (v5+ flexible): the admin service's CreateTopics
 * (src/service/admin.ts) — on the active controller, each topic created or refused on its own.
 *
 * Kafka's request → the domain input: -1 partitions or replication factor = the broker's default
 * (0); a config whose value is null is left out (the default); a manual replica assignment is
 * refused for that topic (Rill places replicas itself). Each topic needs the CreateTopics
 * permission of src/service/authorize.ts; a denied topic is answered TOPIC_AUTHORIZATION_FAILED
 * and the others are created. v5+ answers the created topic's partition count, replication
 * factor and configs; v7 its topic id.
 */
import { rillError, type RillError } from "../../base/errors.ts";
import type { CreatedTopic, NewTopicSpec } from "../../service/admin-types.ts";
import { api } from "../api.ts";
import { authorizeEach, controllerPort, errorFields, kafkaAdmin, onAllowed, answerOrError, topicIdBytes } from "../admin.ts";
import { arrayOf, bool, type Decoded, int8, int16, int32, message, string, structs, uuid } from "../schema.ts";
import { configSourceCode } from "./describe-configs.ts";

export const CreateTopicsRequest = message("CreateTopicsRequest", "0-7", "5+", {
  topics: structs({
    name: string(),
    numPartitions: int32(),
    replicationFactor: int16(),
    assignments: structs({ partitionIndex: int32(), brokerIds: arrayOf(int32()) }),
    configs: structs({ name: string(), value: string().nullable("0+") }),
  }),
  timeoutMs: int32().default(60000),
  validateOnly: bool().since(1),
});

export const CreateTopicsResponse = message("CreateTopicsResponse", "0-7", "5+", {
  throttleTimeMs: int32().since(2),
  topics: structs({
    name: string(),
    topicId: uuid().since(7),
    errorCode: int16(),
    errorMessage: string().since(1).nullable("0+").default(null),
    topicConfigErrorCode: int16().tagged(0, "5+"),
    numPartitions: int32().since(5).default(-1),
    replicationFactor: int16().since(5).default(-1),
    configs: structs({
      name: string(),
      value: string().nullable("0+"),
      readOnly: bool(),
      configSource: int8().default(-1),
      isSensitive: bool(),
    })
      .since(5)
      .nullable("5+"),
  }),
});

type Requested = Decoded<typeof CreateTopicsRequest>["topics"][number];

/** A requested topic as the service's spec, or why it cannot be created as asked. */
function specOf(t: Requested): NewTopicSpec | RillError {
  if (t.assignments.length > 0) {
    return rillError("INVALID_REQUEST", `topic "${t.name}": manual replica assignments are not supported; Rill places replicas itself`);
  }
  const configs: Record<string, string> = {};
  for (const c of t.configs) if (c.value !== null) configs[c.name] = c.value;
  return {
    name: t.name,
    partitions: Math.max(t.numPartitions, 0),
    replicationFactor: Math.max(t.replicationFactor, 0),
    configs,
  };
}

export const createTopics = api(19, "0-7", CreateTopicsRequest, CreateTopicsResponse, async (req, ctx) => {
  const { admin, access } = kafkaAdmin(ctx.deps);
  const who = ctx.session.requester;
  const specs = req.topics.map(specOf);
  const refusals = authorizeEach(specs, (s) => {
    if (s instanceof Error) throw s;
    access.createTopics(who, { topics: [s], validateOnly: req.validateOnly, timeoutMs: req.timeoutMs });
  });
  const created = await onAllowed(
    specs as NewTopicSpec[],
    refusals,
    (topics) =>
      answerOrError(
        async () =>
          (
            await admin.createTopics(
              { topics, validateOnly: req.validateOnly, timeoutMs: Math.max(0, req.timeoutMs) },
              controllerPort(ctx, req.timeoutMs),
            )
          ).topics,
        (error) => topics.map((t): CreatedTopic => ({ name: t.name, error, partitions: 0, replicationFactor: 0 })),
      ),
    (_t, error): CreatedTopic => ({ name: "", error, partitions: 0, replicationFactor: 0 }),
  );
  const image = ctx.deps.services.replicas.image;
  return {
    throttleTimeMs: 0,
    topics: created.map((t, i) => {
      const name = req.topics[i]?.name ?? t.name;
      if (t.error) return { name, ...errorFields(t.error), configs: [] };
      const topic = image.topics.get(name);
      return {
        name,
        topicId: topicIdBytes(topic?.topicId),
        errorCode: 0,
        errorMessage: null,
        numPartitions: t.partitions,
        replicationFactor: t.replicationFactor,
        configs: ctx.apiVersion >= 5 && !req.validateOnly && topic ? topicConfigs(ctx.deps, name) : [],
      };
    }),
  };
});

/** The configs CreateTopics v5+ answers for a created topic: DescribeConfigs' entries. */
function topicConfigs(deps: Parameters<typeof kafkaAdmin>[0], name: string) {
  const res = kafkaAdmin(deps).admin.describeConfigs({
    resources: [{ type: "topic", name }],
    names: [],
    includeDocumentation: false,
  });
  const entries = res.results[0]?.entries ?? [];
  return entries.map((e) => ({
    name: e.name,
    value: e.sensitive ? null : e.value,
    readOnly: e.readOnly,
    configSource: configSourceCode(e.source),
    isSensitive: e.sensitive,
  }));
}
