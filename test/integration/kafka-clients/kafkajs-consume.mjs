// A kafkajs consumer run as its own process by the Kafka fetch tests.
// argv: BROKER TOPIC COUNT GROUP. Joins GROUP, reads TOPIC from the beginning until COUNT records
// have arrived, then prints one JSON line: [[partition, offset, key, value], ...] (or {error}).
import kafkajs from "kafkajs";

const { Kafka, logLevel } = kafkajs;
const [broker, topic, count, group] = process.argv.slice(2);
const want = Number(count);
const kafka = new Kafka({ brokers: [broker], clientId: "kafkajs-fetch-test", logLevel: logLevel.NOTHING, retry: { retries: 5 } });
const consumer = kafka.consumer({ groupId: group, maxWaitTimeInMs: 200 });
const got = [];

async function main() {
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await new Promise((resolve, reject) => {
    consumer
      .run({
        eachMessage: async ({ partition, message }) => {
          got.push([partition, Number(message.offset), message.key?.toString() ?? null, message.value?.toString() ?? null]);
          if (got.length >= want) resolve();
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
  return got;
}

const timer = setTimeout(() => {
  process.stdout.write(`${JSON.stringify({ error: `timed out with ${got.length} of ${want} records` })}\n`);
  process.exit(1);
}, 45_000);
main().then(
  (r) => {
    clearTimeout(timer);
    process.stdout.write(`${JSON.stringify(r)}\n`);
    process.exit(0);
  },
  (e) => {
    process.stdout.write(`${JSON.stringify({ error: String(e?.message ?? e), type: e?.type ?? null })}\n`);
    process.exit(1);
  },
);
