// @platformatic/kafka's producer, run under Bun by the Kafka integration tests.
// argv: BROKER TOPIC N — sends N keyed records (acks=all), prints one JSON line.
import { Producer, stringSerializers } from "@platformatic/kafka";

const [broker, topic, n] = process.argv.slice(2) as [string, string, string];
const producer = new Producer({
  clientId: "platformatic-test",
  bootstrapBrokers: [broker],
  serializers: stringSerializers,
  autocreateTopics: true,
});
try {
  const res = await producer.send({
    messages: Array.from({ length: Number(n) }, (_, i) => ({ topic, key: `pk${i}`, value: `platformatic ${i}` })),
    acks: -1,
  });
  console.log(JSON.stringify(res, (_k, v) => (typeof v === "bigint" ? String(v) : v)));
} finally {
  await producer.close();
}
