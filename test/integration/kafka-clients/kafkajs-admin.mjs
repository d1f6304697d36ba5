// kafkajs's admin client run as its own process by the Kafka admin integration tests.
// argv: BROKER SCENARIO JSON (JSON: {sasl?, ssl?: {ca}, topic, ...}). Prints one JSON line.
//   admin   → createTopics, createPartitions, describeConfigs, alterConfigs, describeCluster,
//             createAcls / describeAcls / deleteAcls, deleteTopicRecords, deleteTopics
//   produce / consume {topic, messages|count} with SASL options (authorization checks)
import { readFileSync } from "node:fs";
import kafkajs from "kafkajs";

const { Kafka, logLevel, ConfigResourceTypes, AclResourceTypes, AclOperationTypes, AclPermissionTypes, ResourcePatternTypes } = kafkajs;
const [broker, scenario, arg] = process.argv.slice(2);
const input = JSON.parse(arg ?? "{}");
const kafka = new Kafka({
  brokers: [broker],
  clientId: "kafkajs-admin-test",
  logLevel: process.env.KAFKAJS_DEBUG ? logLevel.DEBUG : logLevel.NOTHING,
  retry: { retries: 2 },
  ...(input.sasl ? { sasl: input.sasl } : {}),
  ...(input.ssl ? { ssl: { ca: [readFileSync(input.ssl.ca)], servername: "localhost" } } : {}),
});

async function admin() {
  const a = kafka.admin();
  await a.connect();
  const out = {};
  const t = input.topic;
  out.created = await a.createTopics({
    topics: [{ topic: t, numPartitions: 2, replicationFactor: 1, configEntries: [{ name: "retention.ms", value: "3600000" }] }],
    waitForLeaders: true,
  });
  out.createdAgain = await a.createTopics({ topics: [{ topic: t, numPartitions: 2 }] });
  await a.createPartitions({ topicPartitions: [{ topic: t, count: 3 }] });
  out.partitions = (await a.fetchTopicMetadata({ topics: [t] })).topics[0].partitions.length;
  const described = await a.describeConfigs({
    resources: [{ type: ConfigResourceTypes.TOPIC, name: t, configNames: ["retention.ms", "cleanup.policy"] }],
    includeSynonyms: false,
  });
  out.configs = Object.fromEntries(described.resources[0].configEntries.map((e) => [e.configName, e.configValue]));
  await a.alterConfigs({
    resources: [{ type: ConfigResourceTypes.TOPIC, name: t, configEntries: [{ name: "retention.ms", value: "7200000" }] }],
  });
  const after = await a.describeConfigs({
    resources: [{ type: ConfigResourceTypes.TOPIC, name: t, configNames: ["retention.ms"] }],
    includeSynonyms: false,
  });
  out.retentionAfter = after.resources[0].configEntries[0].configValue;
  const cluster = await a.describeCluster();
  out.cluster = {
    clusterId: cluster.clusterId,
    controller: cluster.controller,
    brokers: cluster.brokers.map((b) => `${b.host}:${b.port}`),
  };
  const acl = {
    resourceType: AclResourceTypes.TOPIC,
    resourceName: t,
    resourcePatternType: ResourcePatternTypes.LITERAL,
    principal: "User:reader",
    host: "*",
    operation: AclOperationTypes.READ,
    permissionType: AclPermissionTypes.ALLOW,
  };
  await a.createAcls({ acl: [acl] });
  out.acls = (
    await a.describeAcls({
      ...acl,
      operation: AclOperationTypes.ANY,
      permissionType: AclPermissionTypes.ANY,
      resourcePatternType: ResourcePatternTypes.ANY,
    })
  ).resources;
  out.deletedAcls = (await a.deleteAcls({ filters: [acl] })).filterResponses.map((f) => f.matchingAcls.length);
  if (input.produce) {
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: t, messages: [0, 1, 2, 3].map((i) => ({ value: `v${i}`, partition: 0 })) });
    await producer.disconnect();
    await a.deleteTopicRecords({ topic: t, partitions: [{ partition: 0, offset: "2" }] });
    out.offsetsAfterDelete = (await a.fetchTopicOffsets(t)).filter((p) => p.partition === 0).map((p) => [p.low, p.high]);
  }
  await a.deleteTopics({ topics: [t] });
  out.topicsAfter = (await a.listTopics()).includes(t);
  await a.disconnect();
  return out;
}

async function produce() {
  const p = kafka.producer({ allowAutoTopicCreation: false });
  await p.connect();
  const res = await p.send({ topic: input.topic, acks: -1, messages: input.messages.map((v) => ({ value: v })) });
  await p.disconnect();
  return res.map((r) => r.errorCode);
}

async function main() {
  if (scenario === "admin") return admin();
  if (scenario === "produce") return produce();
  throw new Error(`unknown scenario ${scenario}`);
}

main().then(
  (r) => {
    process.stdout.write(`${JSON.stringify(r)}\n`);
    process.exit(0);
  },
  (e) => {
    process.stdout.write(`${JSON.stringify({ error: String(e?.message ?? e), type: e?.type ?? null })}\n`);
    process.exit(1);
  },
);
