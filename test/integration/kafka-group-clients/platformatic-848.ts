/**
 * A KIP-848 consumer (@platformatic/kafka with groupProtocol "consumer": ConsumerGroupHeartbeat,
 * server-side assignment) run under Bun by kafka-group-clients.test.ts. argv: broker, topic,
 * group, how many records; prints the values read, as JSON, once it has them all and committed.
 */
import { Consumer, MessagesStreamModes, MessagesStreamFallbackModes, stringDeserializers } from "@platformatic/kafka";

const [broker, topic, groupId, want] = process.argv.slice(2) as [string, string, string, string];
const consumer = new Consumer({
  clientId: "platformatic-848",
  bootstrapBrokers: [broker],
  groupId,
  groupProtocol: "consumer",
  groupRemoteAssignor: "uniform",
  deserializers: stringDeserializers,
});
const stream = await consumer.consume({
  topics: [topic],
  mode: MessagesStreamModes.COMMITTED,
  fallbackMode: MessagesStreamFallbackModes.EARLIEST,
  autocommit: false,
  maxWaitTime: 500,
});
const seen: string[] = [];
for await (const message of stream) {
  seen.push(String(message.value));
  await message.commit();
  if (seen.length >= Number(want)) break;
}
await stream.close();
await consumer.close();
console.log(JSON.stringify(seen));
