/**
 * A process for test/integration/client-run.test.ts: a Producer and a GroupConsumer with
 * `closeOnSignals: true`. The consumer handles `COUNT` records of `TOPIC` with `run`; then the
 * producer sends `COUNT` records to `TOPIC_OUT` with a linger of a minute — so only a flush on
 * close gets them out — and the process prints "ready" and waits for a signal.
 *
 *   bun test/integration/client-signals-proc.ts   (env: RILL_BOOTSTRAP, TOPIC, TOPIC_OUT, GROUP, COUNT)
 */
import { GroupConsumer } from "../../src/client/group-consumer.ts";
import { Producer } from "../../src/client/producer.ts";

const env = process.env;
const bootstrap = env.RILL_BOOTSTRAP!;
const count = Number(env.COUNT);

const producer = new Producer({ bootstrap, closeOnSignals: true, lingerMs: 60_000 });
const consumer = new GroupConsumer({ bootstrap, groupId: env.GROUP!, autoOffsetReset: "earliest", closeOnSignals: true });
consumer.subscribe([env.TOPIC!]);
let handled = 0;
await consumer.run({
  eachMessage: () => {
    if (++handled !== count) return;
    for (let i = 0; i < count; i++) void producer.send({ topic: env.TOPIC_OUT!, partition: 0, value: `out${i}` });
    console.log("ready");
  },
});
