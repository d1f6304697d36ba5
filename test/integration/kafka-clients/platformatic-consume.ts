// An @platformatic/kafka consumer run as its own process (under Bun: the library needs Node >=
// 22.19) by the Kafka fetch tests. argv: BROKER TOPIC COUNT GROUP PARTITIONS. Joins GROUP and
// reads TOPIC from offset 0 of each of its PARTITIONS (manual offsets) until COUNT records have
// arrived, then prints one JSON line: [[partition, offset, key, value], ...] (or {error}).
import { Consumer, MessagesStreamModes, stringDeserializers } from "@platformatic/kafka";

const [broker, topic, count, group, partitions] = process.argv.slice(2) as [string, string, string, string, string];
const want = Number(count);
const got: [number, number, string | null, string | null][] = [];
const consumer = new Consumer({
  groupId: group,
  clientId: "platformatic-fetch-test",
  bootstrapBrokers: [broker],
  deserializers: stringDeserializers,
  maxWaitTime: 200,
  autocommit: false,
});

const timer = setTimeout(() => {
  process.stdout.write(`${JSON.stringify({ error: `timed out with ${got.length} of ${want} records` })}\n`);
  process.exit(1);
}, 45_000);

try {
  const stream = await consumer.consume({
    topics: [topic],
    mode: MessagesStreamModes.MANUAL,
    offsets: Array.from({ length: Number(partitions) }, (_, partition) => ({ topic, partition, offset: 0n })),
  });
  for await (const m of stream) {
    got.push([m.partition, Number(m.offset), m.key ?? null, m.value ?? null]);
    if (got.length >= want) break;
  }
  await stream.close();
  await consumer.close(true);
  clearTimeout(timer);
  process.stdout.write(`${JSON.stringify(got)}\n`);
  process.exit(0);
} catch (e) {
  process.stdout.write(
    `${JSON.stringify({ error: String((e as Error)?.message ?? e), cause: String((e as { errors?: unknown })?.errors ?? "") })}\n`,
  );
  process.exit(1);
}
