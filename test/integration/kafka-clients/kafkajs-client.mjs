// A kafkajs client run as its own process by the Kafka integration tests.
// argv: BROKER COMMAND JSON. Prints one JSON line with the outcome.
//   metadata {topics}                      → admin.fetchTopicMetadata
//   produce {topic, messages:[{key,value}], acks, idempotent, compression}
//   produce-each {topic, keys}             → one send per key: the partition of each
import kafkajs from "kafkajs";

const { Kafka, logLevel, CompressionTypes } = kafkajs;
const [broker, command, arg] = process.argv.slice(2);
const input = JSON.parse(arg ?? "{}");
const kafka = new Kafka({ brokers: [broker], clientId: "kafkajs-test", logLevel: logLevel.NOTHING, retry: { retries: 5 } });

async function main() {
  if (command === "metadata") {
    const admin = kafka.admin();
    await admin.connect();
    const md = await admin.fetchTopicMetadata({ topics: input.topics });
    await admin.disconnect();
    return md;
  }
  if (command === "produce") {
    const producer = kafka.producer({
      idempotent: input.idempotent ?? false,
      allowAutoTopicCreation: true,
      maxInFlightRequests: input.idempotent ? 1 : 5,
    });
    await producer.connect();
    const res = await producer.send({
      topic: input.topic,
      acks: input.acks ?? -1,
      compression: CompressionTypes[input.compression ?? "None"],
      messages: input.messages.map((m) => ({
        key: m.key ?? null,
        value: m.value,
        ...(m.partition !== undefined ? { partition: m.partition } : {}),
      })),
    });
    await producer.disconnect();
    return res;
  }
  if (command === "produce-each") {
    // One send per key, default partitioner (Java-compatible murmur2): the partition of each.
    const producer = kafka.producer({ allowAutoTopicCreation: true });
    await producer.connect();
    const out = [];
    for (const key of input.keys) {
      const [r] = await producer.send({ topic: input.topic, acks: -1, messages: [{ key, value: "z" }] });
      out.push({ partition: r.partition });
    }
    await producer.disconnect();
    return out;
  }
  throw new Error(`unknown command ${command}`);
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
