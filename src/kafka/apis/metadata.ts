/**
 * Metadata (key 3), versions 0–12 (9+ flexible): the brokers Kafka clients reach (each node at
 * its own advertised Kafka address, from its registration; nodes without a Kafka listener are
 * left out), the cluster and controller ids, and the topics asked for with their partitions —
 * over `clusterMetadata` (src/service/cluster-metadata.ts), a read of this node's image.
 *
 * - Which topics: v0 an empty list means every topic; v1+ null means every topic (an empty list:
 *   none). v10+ may name a topic by id (v12: with a null name); an unknown id is
 *   UNKNOWN_TOPIC_ID.
 * - Auto-creation: an unknown topic named by name is created when the request allows it
 *   (`allowAutoTopicCreation`, v4+; always for v0–3 as Kafka does) and `auto.create.topics.enable`
 *   is on — through `AdminHandlers.createTopics`, the call CreateTopics makes, with
 *   `num.partitions` and the default replication — after the same CreateTopics ACL check
 *   (refused: TOPIC_AUTHORIZATION_FAILED). A topic just created whose partitions have no leader
 *   yet is answered LEADER_NOT_AVAILABLE, as Kafka does; the client asks again.
 * - ACLs: from an "every topic" answer the topics the requester may not DESCRIBE are left out;
 *   named, they are answered TOPIC_AUTHORIZATION_FAILED (`RequestAccess.describeTopics`' rule).
 * - Authorized operations (v8+): the bit field of Kafka's operation codes the requester may do
 *   on each topic (and, v8–10, on the cluster) when asked, else -2147483648.
 * - The controller id is the active controller when it has a Kafka listener, else this node:
 *   Kafka clients send admin requests there, and any Rill node passes changes to the controller.
 */
import { CLUSTER_RESOURCE } from "../../metadata/security-types.ts";
import type { AclOperation, ResourceType } from "../../metadata/security-types.ts";
import { type MetadataTopic, clusterMetadata } from "../../service/cluster-metadata.ts";
import { api, type KafkaRequestContext } from "../api.ts";
import { kafkaErrorCode } from "../error-codes.ts";
import { KafkaCode } from "../kdata-errors.ts";
import { arrayOf, bool, type Encodable, int16, int32, message, string, structs, uuid } from "../schema.ts";
import { dataServices } from "../services.ts";
import { CLUSTER_OPERATIONS, OPERATIONS_NOT_ASKED, TOPIC_OPERATIONS, authorizedOperations } from "../authorized-operations.ts";
import { RillError } from "../../base/errors.ts";
import { parseKafkaAddress } from "../deps.ts";

export const MetadataRequest = message("MetadataRequest", "0-12", "9+", {
  topics: structs({ topicId: uuid().since(10), name: string().nullable("10+") }).nullable("1+"),
  allowAutoTopicCreation: bool().since(4).default(true),
  includeClusterAuthorizedOperations: bool().versions("8-10"),
  includeTopicAuthorizedOperations: bool().since(8),
});

export const MetadataResponse = message("MetadataResponse", "0-12", "9+", {
  throttleTimeMs: int32().since(3),
  brokers: structs({ nodeId: int32(), host: string(), port: int32(), rack: string().since(1).nullable("1+").default(null) }),
  clusterId: string().since(2).nullable("2+").default(null),
  controllerId: int32().since(1).default(-1),
  topics: structs({
    errorCode: int16(),
    name: string().nullable("12+"),
    topicId: uuid().since(10),
    isInternal: bool().since(1),
    partitions: structs({
      errorCode: int16(),
      partitionIndex: int32(),
      leaderId: int32(),
      leaderEpoch: int32().since(7).default(-1),
      replicaNodes: arrayOf(int32()),
      isrNodes: arrayOf(int32()),
      offlineReplicas: arrayOf(int32()).since(5),
    }),
    topicAuthorizedOperations: int32().since(8).default(-2147483648),
  }),
  clusterAuthorizedOperations: int32().versions("8-10").default(-2147483648),
});

type Response = Encodable<typeof MetadataResponse>;
type ResponseTopic = NonNullable<Response["topics"]>[number];

/** The image's topic id (32 hex digits) as Kafka's 16-byte UUID; zero when there is none. */
export function topicIdBytes(id: string): Buffer {
  return /^[0-9a-f]{32}$/i.test(id) ? Buffer.from(id, "hex") : Buffer.alloc(16);
}

const ZERO_ID = "00000000000000000000000000000000";

export const metadata = api(3, "0-12", MetadataRequest, MetadataResponse, async (req, ctx) => {
  const { deps, session, apiVersion: v } = ctx;
  const who = session.requester;
  const access = deps.access.access;
  const image = () => deps.services.replicas.image;

  // The topics asked for: null = every topic. Ids (v10+) are resolved to names first.
  const everyTopic = req.topics === null || (v === 0 && req.topics.length === 0);
  const byId = new Map<number, string>(); // index in req.topics → unknown id (hex)
  const asked: string[] = [];
  if (!everyTopic) {
    const ids = new Map<string, string>();
    for (const t of image().topics.values()) ids.set(t.topicId.toLowerCase(), t.name);
    (req.topics ?? []).forEach((t, i) => {
      const id = t.topicId.toString("hex");
      if (t.name !== null && t.name !== "") asked.push(t.name);
      else if (id !== ZERO_ID && ids.has(id)) asked.push(ids.get(id) as string);
      else byId.set(i, id);
    });
  }

  const autoCreate = (v < 4 || req.allowAutoTopicCreation) && deps.config.autoCreateTopicsEnable;
  const created = new Map<string, number>(); // topic → error code of its creation (0: created)
  if (autoCreate && asked.length > 0) {
    const missing = [...new Set(asked)].filter((n) => !image().topics.has(n) && access.allowed(who, "DESCRIBE", "TOPIC", n));
    if (missing.length > 0) for (const [n, code] of await createTopics(missing, ctx)) created.set(n, code);
  }

  const controllerOf = (brokers: readonly { nodeId: number }[], active: number): number => {
    if (brokers.some((b) => b.nodeId === active)) return active;
    if (brokers.some((b) => b.nodeId === deps.nodeId)) return deps.nodeId;
    return brokers[0]?.nodeId ?? -1;
  };
  const md = clusterMetadata(
    image(),
    { clusterId: deps.services.admin.clusterId, controllerId: deps.services.admin.controllerId() },
    everyTopic ? null : asked,
  );
  const brokers = md.brokers.map((b) => {
    const a = parseKafkaAddress(b.kafkaAddress);
    return { nodeId: b.nodeId, host: a.host, port: a.port, rack: b.rack };
  });
  const listed = new Set(brokers.map((b) => b.nodeId));
  const ops = (type: ResourceType, name: string, list: readonly AclOperation[]): number =>
    authorizedOperations(access, who, type, name, list);

  const topics: ResponseTopic[] = [];
  for (const t of md.topics) {
    const allowed = access.allowed(who, "DESCRIBE", "TOPIC", t.name);
    if (everyTopic && !allowed) continue;
    topics.push(
      allowed
        ? topicAnswer(
            t,
            created.get(t.name),
            listed,
            req.includeTopicAuthorizedOperations && v >= 8 ? ops("TOPIC", t.name, TOPIC_OPERATIONS) : OPERATIONS_NOT_ASKED,
          )
        : { errorCode: KafkaCode.TOPIC_AUTHORIZATION_FAILED, name: t.name, isInternal: t.internal, partitions: [] },
    );
  }
  // Topics named by an id this image does not know, in the request's order among the others.
  for (const [i, id] of byId) {
    topics.splice(Math.min(i, topics.length), 0, {
      errorCode: KafkaCode.UNKNOWN_TOPIC_ID,
      name: v >= 12 ? null : "",
      topicId: Buffer.from(id, "hex"),
      partitions: [],
    });
  }
  return {
    throttleTimeMs: 0,
    brokers,
    clusterId: md.clusterId,
    controllerId: controllerOf(brokers, md.controllerId),
    topics,
    clusterAuthorizedOperations:
      req.includeClusterAuthorizedOperations && v >= 8 ? ops("CLUSTER", CLUSTER_RESOURCE, CLUSTER_OPERATIONS) : OPERATIONS_NOT_ASKED,
  };
});

/** One topic's answer; `createdCode`: the outcome of creating it in this request, if it was. */
function topicAnswer(t: MetadataTopic, createdCode: number | undefined, listed: ReadonlySet<number>, operations: number): ResponseTopic {
  const base = { name: t.name, topicId: topicIdBytes(t.topicId), isInternal: t.internal, topicAuthorizedOperations: operations };
  if (!t.exists) {
    const code = createdCode === undefined || createdCode === 0 ? KafkaCode.UNKNOWN_TOPIC_OR_PARTITION : createdCode;
    // Created but not in this node's image yet: Kafka's answer for a topic being created.
    return { ...base, errorCode: createdCode === 0 ? KafkaCode.LEADER_NOT_AVAILABLE : code, partitions: [] };
  }
  const leaderless = t.partitions.some((p) => p.leader < 0 || !listed.has(p.leader));
  if (createdCode !== undefined && leaderless) return { ...base, errorCode: KafkaCode.LEADER_NOT_AVAILABLE, partitions: [] };
  return {
    ...base,
    errorCode: 0,
    partitions: t.partitions.map((p) => {
      const led = p.leader >= 0 && listed.has(p.leader);
      return {
        errorCode: led ? 0 : KafkaCode.LEADER_NOT_AVAILABLE,
        partitionIndex: p.partition,
        leaderId: led ? p.leader : -1,
        leaderEpoch: p.leaderEpoch,
        replicaNodes: [...p.replicas],
        isrNodes: [...p.isr],
        offlineReplicas: [...p.offline],
      };
    }),
  };
}

/**
 * Creates `names` as CreateTopics would (num.partitions, the default replication), after the
 * CreateTopics ACL check; answers each topic's Kafka error code (0: created or already there).
 */
async function createTopics(names: readonly string[], ctx: KafkaRequestContext): Promise<Map<string, number>> {
  const { deps, session } = ctx;
  const out = new Map<string, number>();
  const s = dataServices(deps);
  const allowed: string[] = [];
  for (const name of names) {
    try {
      deps.access.createTopics(session.requester, {
        topics: [{ name, partitions: 0, replicationFactor: 0, configs: {} }],
        validateOnly: false,
        timeoutMs: 0,
      });
      allowed.push(name);
    } catch (e) {
      out.set(name, kafkaErrorCode(RillError.from(e)) || KafkaCode.TOPIC_AUTHORIZATION_FAILED);
    }
  }
  if (allowed.length === 0) return out;
  const input = {
    topics: allowed.map((name) => ({ name, partitions: deps.config.numPartitions, replicationFactor: 0, configs: {} })),
    validateOnly: false,
    timeoutMs: 0,
  };
  try {
    const res = await s.admin.createTopics(input, s.controller(session.requester, 30_000));
    for (const t of res.topics) {
      const code = t.error ? kafkaErrorCode(t.error) : 0;
      out.set(t.name, code === 36 /* TOPIC_ALREADY_EXISTS */ ? 0 : code);
    }
  } catch (e) {
    const code = kafkaErrorCode(RillError.from(e));
    for (const name of allowed) out.set(name, code);
  }
  return out;
}
