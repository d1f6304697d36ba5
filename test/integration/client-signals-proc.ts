/**
 * A process for test/integration/client-run.test.ts: a Producer and a GroupConsumer with
 * `closeOnSignals: true`. It produces `COUNT` records to `TOPIC` without waiting for them (the
 * producer's close flushes), consumes them with `run` (commit "interval", so only the close
 * commits in time), prints "ready <n>" once it has handled every record, and waits for a signal.
 *
 *   bun test/integration/client-signals-proc.ts   (env: RILL_BOOTSTRAP, TOPIC, GROUP, COUNT)
 */
import { GroupConsumer } from "../../src/client/group-consumer.ts";
import { Producer } from "../../src/client/producer.ts";

const env = process.env;
const bootstrap = env.RILL_BOOTSTRAP!;
const topic = env.TOPIC!;
const count = Number(env.COUNT);

const producer = new Producer({ bootstrap, closeOnSignals: true, lingerMs: 1000 });
for (let i = 0; i < count; i++) void producer.send({ topic, value: `v${i}` });
const consumer = new GroupConsumer({
  bootstrap,
  groupId: env.GROUP!,
  autoOffsetReset: "earliest",
  autoCommitIntervalMs: 600_000,
  closeOnSignals: true,
});
consumer.subscribe([topic]);
let handled = 0;
await producer.flush();
await consumer.run({
  commit: "interval",
  eachMessage: () => {
    if (++handled === count) console.log(`ready ${handled}`);
  },
});
