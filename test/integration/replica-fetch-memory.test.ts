/**
 * Replica fetch within `fetch.memory.max.bytes` (src/rpc/replication-service.ts): a 3-node
 * cluster with the smallest budget the schema allows (1 MiB: a response carries at most 256 KiB)
 * replicates 8 MiB of 200 KiB records with acks=all and min.insync.replicas=3, so every record
 * acknowledged is on all three nodes: the leaders' responses reserve from the budget (their
 * /metrics count the reservations), send less and wait for room, and no follower is failed
 * (no FETCH_MEMORY_EXHAUSTED in any log, every log end offset equal).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Admin } from "../../src/client/admin.ts";
import { Producer } from "../../src/client/producer.ts";
import { SeededRandom } from "../../src/base/random.ts";
import { Cluster, freePort, until } from "./cluster-harness.ts";

const MiB = 1024 * 1024;
const TOPIC = "rf";
const PARTITIONS = 2;
const RECORDS = 40;
const VALUE_BYTES = 200 * 1024;
const SEED = 1414;

let cluster: Cluster;
const metricsPorts = new Map<number, number>();

beforeAll(async () => {
  for (const id of [1, 2, 3]) metricsPorts.set(id, await freePort());
  cluster = await Cluster.start({
    nodes: 3,
    name: "rill-replica-memory-",
    set: { "fetch.memory.max.bytes": MiB },
    nodeSet: (id) => ({ "metrics.port": metricsPorts.get(id)! }),
  });
  await cluster.waitForStable(30_000);
}, 60_000);

afterAll(async () => {
  await cluster?.close();
});

/** One node's /metrics page. */
async function scrape(id: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${metricsPorts.get(id)}/metrics`)).text();
}

describe("replica fetch within fetch.memory.max.bytes", () => {
  it("a 1 MiB budget still replicates 8 MiB of 200 KiB records to every replica (acks=all, min.insync.replicas=3), slower, never failing", async () => {
    console.log(`seed ${SEED}`);
    const bootstrap = cluster.nodes.map((n) => n.address).join(",");
    const admin = new Admin({ bootstrap, requestTimeoutMs: 15_000 });
    const producer = new Producer({
      bootstrap,
      acks: "all",
      batchBytes: 16 * 1024, // each record its own batch
      requestTimeoutMs: 20_000,
      random: new SeededRandom(SEED),
      retry: { retries: 30, backoffMsMax: 500 },
    });
    try {
      await admin.createTopics([{ name: TOPIC, partitions: PARTITIONS, replicationFactor: 3, configs: { "min.insync.replicas": "3" } }]);
      await until(
        async () => (await admin.describeTopics([TOPIC], { includeConfigs: false }))[0]!.partitions.every((p) => p.isr.length === 3),
        30_000,
        "a full ISR",
        200,
      );
      const t0 = Date.now();
      const sent = await Promise.all(
        Array.from({ length: RECORDS }, (_, i) =>
          producer.send({ topic: TOPIC, partition: i % PARTITIONS, value: Buffer.alloc(VALUE_BYTES, i % 251) }),
        ),
      );
      console.log(`${RECORDS} records of ${VALUE_BYTES} B acknowledged by all three replicas in ${Date.now() - t0} ms`);
      expect(sent.every((m) => m.offset >= 0)).toBe(true);
      // Every node holds every record of both partitions.
      for (const n of cluster.nodes) {
        const body = await scrape(n.id);
        for (let p = 0; p < PARTITIONS; p++)
          expect(body).toMatch(new RegExp(`rill_log_end_offset\\{topic="${TOPIC}",partition="${p}"\\} ${RECORDS / PARTITIONS}\\b`));
        expect(body).toMatch(/rill_memory_budget_bytes\{pool="fetch"\} 1048576\b/);
      }
      // The leaders' replica-fetch responses reserved from the budget (nothing else reads here): a
      // response carries at most 256 KiB, one batch, so each follower took one response per record.
      let reservations = 0;
      for (const n of cluster.nodes) {
        const m = /rill_memory_budget_reservations_total\{pool="fetch"\} (\d+)/.exec(await scrape(n.id));
        reservations += Number(m?.[1] ?? 0);
      }
      console.log(`fetch budget reservations over the cluster: ${reservations}`);
      expect(reservations).toBeGreaterThanOrEqual(2 * RECORDS);
      for (const n of cluster.nodes) expect(n.tail(1_000_000)).not.toContain("FETCH_MEMORY_EXHAUSTED");
    } finally {
      await producer.close();
      await admin.close();
    }
  }, 120_000);
});
