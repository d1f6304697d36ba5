/**
 * Fetch on a 3-node cluster whose nodes sit in racks r1, r2, r3 (`broker.rack`, `replica.selector`
 * = rack-aware), each with its own Kafka listener:
 * - a node that holds no replica of a partition answers a Kafka Fetch NOT_LEADER_OR_FOLLOWER
 *   naming the current leader and its epoch (v12+) and, from v16, the leader's Kafka endpoint
 *   (with its rack) — never forwarding the read — and OffsetForLeaderEpoch likewise;
 * - KIP-392: a leader asked by a client in a follower's rack (Fetch v11+) answers no records and
 *   `preferred_read_replica`; a follower serves a v11+ consumer fetch itself, up to its high
 *   watermark, and refuses one from before client metadata (v10);
 * - the TypeScript consumer with `clientRack`, and librdkafka (confluent-kafka-python) with
 *   `client.rack`, follow the pointer: the records they read come from the follower in their rack
 *   (the brokers' `rill_bytes_out_total` say who answered them).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Consumer } from "../../src/client/consumer.ts";
import { Producer } from "../../src/client/producer.ts";
import { FetchRequest, FetchResponse } from "../../src/kafka/apis/fetch.ts";
import { MetadataRequest, MetadataResponse } from "../../src/kafka/apis/metadata.ts";
import { OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse } from "../../src/kafka/apis/offset-for-leader-epoch.ts";
import { decodeFetchedRecords } from "../../src/service/fetch-records.ts";
import { Cluster, freePort, until } from "./cluster-harness.ts";
import { python } from "./kafka-clients.ts";
import { RawKafka } from "./kafka-helpers.ts";
import { sample, scrape } from "./prom-text.ts";

/** RF 1: two of the three nodes hold no replica of it. */
const LONE = "kc";
/** RF 3: every node holds a replica, in its own rack. */
const SPREAD = "kr";
const RECORDS = 20;
let cluster: Cluster;
const kafkaPorts = new Map<number, number>();
const httpPorts = new Map<number, number>();
const rack = (id: number) => `r${id}`;

async function partitionState(topic: string) {
  const [t] = await cluster.nodes[0]!.admin().describeTopics([topic], { includeConfigs: false });
  return t!.partitions[0]!;
}

/** One partition-0 Kafka Fetch of `topic` at `version` from node `id`, with `rackId` (v11+). */
async function kafkaFetch(id: number, version: number, topic: string, rackId = "") {
  const c = await RawKafka.connect(`127.0.0.1:${kafkaPorts.get(id)}`);
  try {
    const res = await c.request(
      1,
      version,
      FetchRequest,
      {
        maxWaitMs: 0,
        minBytes: 1,
        rackId,
        topics: [{ topic, partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20 }] }],
      },
      FetchResponse,
    );
    return res.responses[0]!.partitions[0]!;
  } finally {
    c.close();
  }
}

const valuesOf = (records: unknown) => decodeFetchedRecords([records as Buffer], 0).map((r) => Buffer.from(r.value!).toString());

async function bytesOut(id: number, topic: string): Promise<number> {
  return sample(await scrape(`http://127.0.0.1:${httpPorts.get(id)}`), "rill_bytes_out_total", { topic }) ?? 0;
}

beforeAll(async () => {
  for (const id of [1, 2, 3]) {
    kafkaPorts.set(id, await freePort());
    httpPorts.set(id, await freePort());
  }
  cluster = await Cluster.start({
    name: "rill-kfetch-cluster-",
    nodes: 3,
    set: { "replica.selector": "rack-aware" },
    nodeSet: (id) => ({
      "kafka.listen": `127.0.0.1:${kafkaPorts.get(id)}`,
      "http.listen": `127.0.0.1:${httpPorts.get(id)}`,
      "broker.rack": rack(id),
    }),
  });
  await cluster.waitForStable(30_000);
  const admin = cluster.nodes[0]!.admin();
  // A controller change while the cluster settles may refuse a create (NOT_CONTROLLER): try again.
  for (const t of [
    { name: LONE, partitions: 1, replicationFactor: 1 },
    { name: SPREAD, partitions: 1, replicationFactor: 3 },
  ]) {
    await until(
      () =>
        admin.createTopics([t]).then(
          () => true,
          (e: unknown) => /TOPIC_ALREADY_EXISTS/.test(String(e)) || (/NOT_CONTROLLER/.test(String(e)) ? false : Promise.reject(e)),
        ),
      30_000,
      `topic ${t.name} created`,
      300,
    );
  }
  for (const [topic, isr] of [
    [LONE, 1],
    [SPREAD, 3],
  ] as const) {
    await until(
      async () => {
        const p = await partitionState(topic);
        return p.leader >= 0 && p.isr.length === isr;
      },
      30_000,
      `${topic}-0 to have a leader and an ISR of ${isr}`,
      200,
    );
  }
  const p = new Producer({ bootstrap: cluster.nodes.map((n) => n.address).join(","), acks: "all" });
  await p.send({ topic: LONE, partition: 0, value: "replicated" });
  for (let i = 0; i < RECORDS; i++) await p.send({ topic: SPREAD, partition: 0, value: `v${i}` });
  await p.close();
}, 120_000);

afterEach((ctx) => {
  if (ctx.task.result?.state === "fail") console.log(cluster.tails(30));
});

afterAll(async () => {
  await cluster?.close();
}, 60_000);

describe("Kafka Fetch on a cluster", () => {
  it("is answered by a replica only; a node without one names the current leader", async () => {
    const { leader, leaderEpoch } = await partitionState(LONE);
    for (const node of cluster.nodes) {
      const c = await RawKafka.connect(`127.0.0.1:${kafkaPorts.get(node.id)}`);
      try {
        const p = await kafkaFetch(node.id, 12, LONE);
        // v16, by topic id (from Metadata v12): the same, and the leader's endpoint with its rack.
        const md = await c.request(3, 12, MetadataRequest, { topics: [{ name: LONE }] }, MetadataResponse);
        expect(md.brokers.map((b) => [b.nodeId, b.rack])).toEqual(
          expect.arrayContaining([
            [1, "r1"],
            [2, "r2"],
            [3, "r3"],
          ]),
        );
        const byId = await c.request(
          1,
          16,
          FetchRequest,
          {
            maxWaitMs: 0,
            minBytes: 1,
            topics: [{ topicId: md.topics[0]!.topicId, partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20 }] }],
          },
          FetchResponse,
        );
        expect(byId.responses[0]!.partitions[0]!.errorCode).toBe(p.errorCode);
        expect(byId.nodeEndpoints).toEqual(
          node.id === leader ? [] : [{ nodeId: leader, host: "127.0.0.1", port: kafkaPorts.get(leader), rack: rack(leader) }],
        );
        if (node.id === leader) {
          expect(p.errorCode).toBe(0);
          expect(valuesOf(p.records)).toEqual(["replicated"]);
        } else {
          expect([p.errorCode, p.currentLeader, (p.records as Buffer).length]).toEqual([6, { leaderId: leader, leaderEpoch }, 0]);
        }
        const epochs = await c.request(
          23,
          4,
          OffsetForLeaderEpochRequest,
          { replicaId: -1, topics: [{ topic: LONE, partitions: [{ partition: 0, currentLeaderEpoch: leaderEpoch, leaderEpoch }] }] },
          OffsetForLeaderEpochResponse,
        );
        const e = epochs.topics[0]!.partitions[0]!;
        expect(e.errorCode).toBe(node.id === leader ? 0 : 6);
        if (node.id === leader) expect(e.endOffset).toBe(1n);
        // gRPC ListOffsets, unlike Kafka's, is answered by any broker: one without a replica asks the leader.
        const listed = await node.admin().listOffsets([{ topic: LONE, partition: 0, query: "latest" }]);
        expect(listed[0]!.offset, `ListOffsets at node ${node.id}`).toBe(1);
      } finally {
        c.close();
      }
    }
  });

  it("KIP-392: the leader points a client in a follower's rack at that follower, which serves the read itself", async () => {
    const { leader, isr } = await partitionState(SPREAD);
    const follower = isr.find((id) => id !== leader)!;
    const all = Array.from({ length: RECORDS }, (_, i) => `v${i}`);
    // The leader, asked from the follower's rack: no records, the follower named.
    const pointed = await kafkaFetch(leader, 11, SPREAD, rack(follower));
    expect([pointed.errorCode, pointed.preferredReadReplica, (pointed.records as Buffer).length]).toEqual([0, follower, 0]);
    expect(pointed.highWatermark).toBe(BigInt(RECORDS));
    // From its own rack, or with no rack: the data, and no pointer.
    for (const rackId of [rack(leader), ""]) {
      const own = await kafkaFetch(leader, 12, SPREAD, rackId);
      expect([own.errorCode, own.preferredReadReplica, valuesOf(own.records)]).toEqual([0, -1, all]);
    }
    // The follower serves v11+ consumer fetches up to its high watermark (which follows the leader's).
    await until(
      async () => {
        const p = await kafkaFetch(follower, 12, SPREAD, rack(follower));
        return p.errorCode === 0 && valuesOf(p.records).length === RECORDS;
      },
      15_000,
      `follower ${follower} to serve all ${RECORDS} records`,
      100,
    );
    const served = await kafkaFetch(follower, 12, SPREAD, rack(follower));
    expect([served.preferredReadReplica, valuesOf(served.records)]).toEqual([-1, all]);
    // Before client metadata (v10), only the leader answers.
    expect((await kafkaFetch(follower, 10, SPREAD)).errorCode).toBe(6);
  });

  it("the TypeScript consumer with clientRack reads from the follower in its rack", async () => {
    const { leader, isr } = await partitionState(SPREAD);
    const follower = isr.find((id) => id !== leader)!;
    const before = new Map<number, number>();
    for (const id of [1, 2, 3]) before.set(id, await bytesOut(id, SPREAD));
    const read = async (clientRack: string) => {
      // Bootstrapped at the leader: a follower asked first (before the consumer knows the leader)
      // serves the read itself, as followers do, and the test could not tell who pointed where.
      const consumer = new Consumer({ bootstrap: cluster.nodes.find((n) => n.id === leader)!.address, clientRack, maxWaitMs: 100 });
      try {
        consumer.assign([{ topic: SPREAD, partition: 0, offset: 0 }]);
        const values: string[] = [];
        for await (const r of consumer) {
          values.push(Buffer.from(r.value!).toString());
          if (values.length === RECORDS) break;
        }
        return values;
      } finally {
        await consumer.close();
      }
    };
    expect(await read(rack(follower))).toEqual(Array.from({ length: RECORDS }, (_, i) => `v${i}`));
    const after = new Map<number, number>();
    for (const id of [1, 2, 3]) after.set(id, await bytesOut(id, SPREAD));
    // The follower answered the records; the leader answered none of them (only the pointer).
    expect(
      after.get(follower)! - before.get(follower)!,
      `bytes out before ${JSON.stringify([...before])} after ${JSON.stringify([...after])}, leader ${leader}, follower ${follower}`,
    ).toBeGreaterThan(0);
    expect(after.get(leader)! - before.get(leader)!).toBe(0);
    // Without a rack the same consumer reads from the leader.
    expect(await read("")).toHaveLength(RECORDS);
    expect((await bytesOut(leader, SPREAD)) - after.get(leader)!).toBeGreaterThan(0);
  });

  it("librdkafka with client.rack reads from the follower in its rack", async () => {
    const { leader, isr } = await partitionState(SPREAD);
    const follower = isr.find((id) => id !== leader)!;
    const before = new Map<number, number>();
    for (const id of [1, 2, 3]) before.set(id, await bytesOut(id, SPREAD));
    const script = `
import sys, json
from confluent_kafka import Consumer, TopicPartition
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": "rack-read", "client.rack": sys.argv[3],
              "enable.auto.commit": False, "auto.offset.reset": "earliest"})
c.assign([TopicPartition(sys.argv[2], 0, 0)])
values = []
while len(values) < int(sys.argv[4]):
    m = c.poll(10.0)
    if m is None: break
    if m.error(): print(json.dumps({"error": str(m.error())})); sys.exit(1)
    values.append(m.value().decode())
c.close()
print(json.dumps({"values": values}))
`;
    const r = await python(script, [`127.0.0.1:${kafkaPorts.get(leader)}`, SPREAD, rack(follower), String(RECORDS)]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim().split("\n").pop()!)).toEqual({ values: Array.from({ length: RECORDS }, (_, i) => `v${i}`) });
    expect((await bytesOut(follower, SPREAD)) - before.get(follower)!).toBeGreaterThan(0);
    expect((await bytesOut(leader, SPREAD)) - before.get(leader)!).toBe(0);
  });
});
