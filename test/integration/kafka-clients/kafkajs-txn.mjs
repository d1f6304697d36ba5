// kafkajs transactional programs run as their own process by the Kafka transaction tests
// (test/integration/kafka-txn-clients.test.ts). argv: BROKER COMMAND JSON; prints one JSON line
// (a line {"ready": true} first for "hang").
//   txn {txid, topic, n, outcome: "commit"|"abort", prefix}   one transaction of n records prefix-i (keys k-i)
//   hang {txid, topic, n, prefix}                              n records in a transaction left open; waits to be killed
//   cpp {in, out, group, txid, n, abortFirst}                  consume-process-produce: a group consumer
//       (kafkajs reads READ_COMMITTED by default) on `in`; each batch goes to `out` as "<value>:done" in one
//       transaction with the batch's offsets (sendOffsets); with abortFirst the first transaction is aborted and
//       its batch, never resolved, is read again; stops once n input records are committed
import kafkajs from "kafkajs";

const { Kafka, logLevel } = kafkajs;
const [broker, command, arg] = process.argv.slice(2);
const input = JSON.parse(arg ?? "{}");
const kafka = new Kafka({ brokers: [broker], clientId: "kafkajs-txn-test", logLevel: logLevel.NOTHING, retry: { retries: 8 } });

function emit(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

async function transactional(txid) {
  const producer = kafka.producer({ transactionalId: txid, idempotent: true, maxInFlightRequests: 1, transactionTimeout: 60_000 });
  await producer.connect();
  return producer;
}

const records = (n, prefix) => Array.from({ length: n }, (_, i) => ({ key: `k-${i}`, value: `${prefix}-${i}` }));

async function main() {
  if (command === "txn") {
    const producer = await transactional(input.txid);
    const txn = await producer.transaction();
    await txn.send({ topic: input.topic, messages: records(input.n, input.prefix) });
    if (input.outcome === "commit") await txn.commit();
    else await txn.abort();
    await producer.disconnect();
    return { outcome: input.outcome };
  }
  if (command === "hang") {
    const producer = await transactional(input.txid);
    const txn = await producer.transaction();
    await txn.send({ topic: input.topic, messages: records(input.n, input.prefix) });
    emit({ ready: true });
    await new Promise((resolve) => setTimeout(resolve, 600_000));
    return {};
  }
  if (command === "cpp") {
    const producer = await transactional(input.txid);
    const consumer = kafka.consumer({ groupId: input.group, maxWaitTimeInMs: 200, sessionTimeout: 10_000 });
    await consumer.connect();
    await consumer.subscribe({ topic: input.in, fromBeginning: true });
    let processed = 0;
    let committedTxns = 0;
    let abortedTxns = 0;
    let abortNext = Boolean(input.abortFirst);
    await new Promise((resolve, reject) => {
      consumer
        .run({
          autoCommit: false,
          eachBatchAutoResolve: false,
          eachBatch: async ({ batch, resolveOffset }) => {
            if (batch.messages.length === 0) return;
            const txn = await producer.transaction();
            await txn.send({
              topic: input.out,
              messages: batch.messages.map((m) => ({ key: m.key, value: `${m.value.toString()}:done` })),
            });
            const next = (BigInt(batch.lastOffset()) + 1n).toString();
            await txn.sendOffsets({
              consumerGroupId: input.group,
              topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: next }] }],
            });
            if (abortNext) {
              abortNext = false;
              await txn.abort();
              abortedTxns++;
              // Not resolved: the batch is fetched again and processed in the next transaction.
              consumer.seek({ topic: batch.topic, partition: batch.partition, offset: batch.firstOffset() });
              return;
            }
            await txn.commit();
            committedTxns++;
            for (const m of batch.messages) resolveOffset(m.offset);
            processed += batch.messages.length;
            if (processed >= input.n) resolve();
          },
        })
        .catch(reject);
    });
    await consumer.disconnect();
    await producer.disconnect();
    return { processed, committedTxns, abortedTxns };
  }
  throw new Error(`unknown command ${command}`);
}

const timer = setTimeout(() => {
  emit({ error: "timed out" });
  process.exit(1);
}, 60_000);
main().then(
  (r) => {
    clearTimeout(timer);
    emit(r);
    process.exit(0);
  },
  (e) => {
    clearTimeout(timer);
    emit({ error: e?.type ?? e?.name ?? "Error", message: String(e?.message ?? e) });
    process.exit(1);
  },
);
