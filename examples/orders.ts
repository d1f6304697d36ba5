// The README's tour: keyed JSON orders into topic `orders`, then read back from every partition.
// Run with: bun examples/orders.ts   (RILL_BOOTSTRAP=host:port to use another broker)
import { Admin, Consumer, Producer } from "../src/client/index.ts";

const bootstrap = process.env.RILL_BOOTSTRAP ?? "127.0.0.1:50051";
const admin = new Admin({ bootstrap });
const topics = await admin.listTopics();
if (!topics.some((t) => t.name === "orders")) await admin.createTopics([{ name: "orders", partitions: 6 }]);

const producer = new Producer({ bootstrap, compression: "lz4" });
for (let i = 1; i <= 10; i++) {
  const order = { id: i, customer: `customer-${i % 3}`, amount: i * 10 };
  const { partition, offset } = await producer.send({ topic: "orders", key: order.customer, value: JSON.stringify(order) });
  console.log(`sent order ${i} to partition ${partition} at offset ${offset}`);
}
await producer.close();

const consumer = new Consumer({ bootstrap });
consumer.assign([0, 1, 2, 3, 4, 5].map((partition) => ({ topic: "orders", partition, offset: "earliest" as const })));
let seen = 0;
for await (const r of consumer) {
  console.log(`partition ${r.partition} offset ${r.offset} key ${r.key} ${r.value}`);
  if (++seen === 10) break;
}
await consumer.close();
await admin.close();
