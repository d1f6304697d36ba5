// @platformatic/kafka's transactional producer, run under Bun by the Kafka transaction tests
// (AddPartitionsToTxn v5, EndTxn v4: the flexible versions). argv: BROKER TOPIC TXID — one
// transaction of 3 records pc-i committed, then one of 2 records pa-i aborted; prints one JSON line.
import { Producer, stringSerializers } from "@platformatic/kafka";

const [broker, topic, txid] = process.argv.slice(2) as [string, string, string];
const producer = new Producer({
  clientId: "platformatic-txn-test",
  bootstrapBrokers: [broker],
  serializers: stringSerializers,
  idempotent: true,
  transactionalId: txid,
  // Its first InitProducerId names producer id 0 epoch 0: a new transactional id takes it (Kafka's rule).
});
const records = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => ({ topic, key: `k-${i}`, value: `${prefix}-${i}` }));
try {
  const committed = await producer.beginTransaction();
  await committed.send({ messages: records("pc", 3) });
  await committed.commit();
  const aborted = await producer.beginTransaction();
  await aborted.send({ messages: records("pa", 2) });
  await aborted.abort();
  console.log(JSON.stringify({ ok: true }));
} finally {
  await producer.close();
}
