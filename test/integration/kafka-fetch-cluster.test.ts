/**
 * Kafka clients fetch from leaders: on a 3-node cluster (each node with its own Kafka listener),
 * the leader of a partition answers its data, and each follower answers NOT_LEADER_OR_FOLLOWER
 * naming the current leader and its epoch (Fetch v12+) and, from v16, the leader's Kafka
 * endpoint — never forwarding the read — and OffsetForLeaderEpoch likewise; a client that asks
 * the named leader gets the data.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Producer } from "../../src/client/producer.ts";
import { FetchRequest, FetchResponse } from "../../src/kafka/apis/fetch.ts";
import { MetadataRequest, MetadataResponse } from "../../src/kafka/apis/metadata.ts";
import { OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse } from "../../src/kafka/apis/offset-for-leader-epoch.ts";
import { decodeFetchedRecords } from "../../src/service/fetch-records.ts";
import { Cluster, freePort, until } from "./cluster-harness.ts";
import { RawKafka } from "./kafka-helpers.ts";

const TOPIC = "kc";
let cluster: Cluster;
const kafkaPorts = new Map<number, number>();

beforeAll(async () => {
  for (const id of [1, 2, 3]) kafkaPorts.set(id, await freePort());
  cluster = await Cluster.start({
    name: "rill-kfetch-cluster-",
    nodes: 3,
    nodeSet: (id) => ({ "kafka.listen": `127.0.0.1:${kafkaPorts.get(id)}` }),
  });
  await cluster.waitForStable(30_000);
  const admin = cluster.nodes[0]!.admin();
  await admin.createTopics([{ name: TOPIC, partitions: 1, replicationFactor: 3 }]);
  await until(
    async () => {
      const [t] = await admin.describeTopics([TOPIC], { includeConfigs: false });
      return t!.partitions[0]!.leader >= 0 && t!.partitions[0]!.isr.length === 3;
    },
    30_000,
    `${TOPIC}-0 to have a leader and an ISR of 3`,
    200,
  );
  const p = new Producer({ bootstrap: cluster.nodes.map((n) => n.address).join(","), acks: "all" });
  await p.send({ topic: TOPIC, partition: 0, value: "replicated" });
  await p.close();
}, 120_000);

afterEach((ctx) => {
  if (ctx.task.result?.state === "fail") console.log(cluster.tails(30));
});

afterAll(async () => {
  await cluster?.close();
}, 60_000);

describe("Kafka Fetch on a cluster", () => {
  it("is answered by the leader only; followers name the current leader", async () => {
    const [t] = await cluster.nodes[0]!.admin().describeTopics([TOPIC], { includeConfigs: false });
    const { leader, leaderEpoch } = t!.partitions[0]!;
    for (const node of cluster.nodes) {
      const c = await RawKafka.connect(`127.0.0.1:${kafkaPorts.get(node.id)}`);
      try {
        const res = await c.request(
          1,
          12,
          FetchRequest,
          {
            maxWaitMs: 0,
            minBytes: 1,
            topics: [{ topic: TOPIC, partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20 }] }],
          },
          FetchResponse,
        );
        const p = res.responses[0]!.partitions[0]!;
        // v16, by topic id (from Metadata v12): the same, and the leader's endpoint.
        const md = await c.request(3, 12, MetadataRequest, { topics: [{ name: TOPIC }] }, MetadataResponse);
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
          node.id === leader ? [] : [{ nodeId: leader, host: "127.0.0.1", port: kafkaPorts.get(leader), rack: null }],
        );
        if (node.id === leader) {
          expect(p.errorCode).toBe(0);
          const values = decodeFetchedRecords([p.records as Buffer], 0).map((r) => Buffer.from(r.value!).toString());
          expect(values).toEqual(["replicated"]);
        } else {
          expect([p.errorCode, p.currentLeader, (p.records as Buffer).length]).toEqual([6, { leaderId: leader, leaderEpoch }, 0]);
        }
        const epochs = await c.request(
          23,
          4,
          OffsetForLeaderEpochRequest,
          { replicaId: -1, topics: [{ topic: TOPIC, partitions: [{ partition: 0, currentLeaderEpoch: leaderEpoch, leaderEpoch }] }] },
          OffsetForLeaderEpochResponse,
        );
        const e = epochs.topics[0]!.partitions[0]!;
        expect(e.errorCode).toBe(node.id === leader ? 0 : 6);
        if (node.id === leader) expect(e.endOffset).toBe(1n);
      } finally {
        c.close();
      }
    }
  });
});
