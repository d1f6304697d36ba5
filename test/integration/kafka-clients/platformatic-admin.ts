// @platformatic/kafka's Admin (flexible versions: CreateTopics v7, DescribeConfigs v4,
// IncrementalAlterConfigs v1, CreatePartitions v3, DeleteTopics v6) run under Bun by the Kafka
// admin integration tests. argv: BROKER TOPIC. Prints one JSON line.
import { Admin } from "@platformatic/kafka";

const [broker, topic] = process.argv.slice(2) as [string, string];
const admin = new Admin({ clientId: "platformatic-admin-test", bootstrapBrokers: [broker] });
try {
  const created = await admin.createTopics({
    topics: [topic],
    partitions: 2,
    replicas: 1,
    configs: [{ name: "retention.ms", value: "3600000" }],
  });
  await admin.createPartitions({ topics: [{ name: topic, count: 3, assignments: [] }] });
  await admin.incrementalAlterConfigs({
    resources: [{ resourceType: 2, resourceName: topic, configs: [{ name: "retention.ms", configOperation: 0, value: "7200000" }] }],
  });
  const described = await admin.describeConfigs({
    resources: [{ resourceType: 2, resourceName: topic, configurationKeys: ["retention.ms"] }],
  });
  const before = (await admin.listTopics()).includes(topic);
  await admin.deleteTopics({ topics: [topic] });
  const after = (await admin.listTopics()).includes(topic);
  const out = {
    created: created.map((t) => ({ name: t.name, partitions: t.partitions, replicas: t.replicas })),
    retention: described[0]?.configs.find((c) => c.name === "retention.ms")?.value,
    before,
    after,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
} catch (e) {
  process.stdout.write(
    `${JSON.stringify({ error: String((e as Error)?.message ?? e), cause: JSON.stringify((e as { errors?: unknown }).errors ?? null) })}\n`,
  );
  process.exitCode = 1;
} finally {
  await admin.close();
}
