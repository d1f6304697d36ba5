/**
 * Kafka clients on a 3-node cluster (each node with its own Kafka listener): Metadata from any
 * node lists all three at their own Kafka addresses and auto-creates a topic from a node that is
 * not the controller (the change goes to the controller); Produce is appended by the leader only —
 * followers answer NOT_LEADER_OR_FOLLOWER, never forwarding; InitProducerId on any node is
 * issued by the controller; and librdkafka (kcat -P), bootstrapping from one node, follows the
 * leaders through Metadata: every record read back over gRPC.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Consumer } from "../../src/client/consumer.ts";
import { InitProducerIdRequest, InitProducerIdResponse } from "../../src/kafka/apis/init-producer-id.ts";
import { MetadataRequest, MetadataResponse } from "../../src/kafka/apis/metadata.ts";
import { ProduceRequest, ProduceResponse } from "../../src/kafka/apis/produce.ts";
import { Compression, encodeBatch } from "../../src/protocol/record-batch.ts";
import { Cluster, freePort, until } from "./cluster-harness.ts";
import { run } from "./kafka-clients.ts";
import { RawKafka } from "./kafka-helpers.ts";

let cluster: Cluster;
const kafkaPorts = new Map<number, number>();
const kafkaOf = (id: number) => `127.0.0.1:${kafkaPorts.get(id)}`;

beforeAll(async () => {
  for (const id of [1, 2, 3]) kafkaPorts.set(id, await freePort());
  cluster = await Cluster.start({
    name: "rill-kprod-cluster-",
    nodes: 3,
    nodeSet: (id) => ({ "kafka.listen": `127.0.0.1:${kafkaPorts.get(id)}`, "num.partitions": "3", "auto.create.topics.enable": "true" }),
  });
  await cluster.waitForStable(30_000);
}, 120_000);

afterEach((ctx) => {
  if (ctx.task.result?.state === "fail") console.log(cluster.tails(30));
});

afterAll(async () => {
  await cluster?.close();
}, 60_000);

/** The topic's partitions as node `id` answers Metadata v12, once each has a leader. */
async function partitionsOf(id: number, topic: string): Promise<{ partitionIndex: number; leaderId: number }[]> {
  const c = await RawKafka.connect(kafkaOf(id));
  try {
    let parts: { partitionIndex: number; leaderId: number }[] = [];
    await until(
      async () => {
        const md = await c.request(3, 12, MetadataRequest, { topics: [{ name: topic }], allowAutoTopicCreation: true }, MetadataResponse);
        const t = md.topics[0];
        parts = t?.partitions ?? [];
        return t?.errorCode === 0 && parts.length === 3 && parts.every((p) => p.leaderId > 0);
      },
      30_000,
      `${topic}: three partitions with leaders`,
      200,
    );
    return parts;
  } finally {
    c.close();
  }
}

describe("Kafka's data APIs on a cluster", () => {
  it("Metadata lists every node at its own Kafka address, from any node", async () => {
    for (const id of [1, 2, 3]) {
      const c = await RawKafka.connect(kafkaOf(id));
      const md = await c.request(3, 9, MetadataRequest, { topics: null }, MetadataResponse);
      c.close();
      expect(md.brokers.map((b) => [b.nodeId, `${b.host}:${b.port}`])).toEqual([1, 2, 3].map((n) => [n, kafkaOf(n)]));
      expect([1, 2, 3]).toContain(md.controllerId);
    }
  });

  it("auto-creates a topic from every node, and only the leader appends: followers answer NOT_LEADER_OR_FOLLOWER", async () => {
    // Created through whichever node is asked first (it may not be the controller).
    for (const id of [3, 2]) await partitionsOf(id, `auto-${id}`);
    const parts = await partitionsOf(1, "auto-3");
    const batch = encodeBatch([{ key: null, value: "v" }], { compression: Compression.NONE, nowMs: Date.now() });
    for (const p of parts) {
      for (const id of [1, 2, 3]) {
        const c = await RawKafka.connect(kafkaOf(id));
        const res = await c.request(
          0,
          9,
          ProduceRequest,
          {
            transactionalId: null,
            acks: -1,
            timeoutMs: 10_000,
            topicData: [{ name: "auto-3", partitionData: [{ index: p.partitionIndex, records: batch }] }],
          },
          ProduceResponse,
        );
        c.close();
        const answer = res.responses[0]?.partitionResponses[0];
        expect([p.partitionIndex, id, answer?.errorCode]).toEqual([p.partitionIndex, id, id === p.leaderId ? 0 : 6]);
      }
    }
  });

  it("issues producer ids on any node through the controller, each id once", async () => {
    const ids = new Set<bigint>();
    for (const id of [1, 2, 3]) {
      const c = await RawKafka.connect(kafkaOf(id));
      const r = await c.request(
        22,
        4,
        InitProducerIdRequest,
        { transactionalId: null, transactionTimeoutMs: 1000 },
        InitProducerIdResponse,
      );
      c.close();
      expect(r.errorCode, `node ${id}`).toBe(0);
      ids.add(r.producerId);
    }
    expect(ids.size).toBe(3);
  });

  it("kcat -P bootstrapping from one node reaches every partition's leader; all records read back over gRPC", async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "rill-kcat-")), "in.txt");
    const lines = Array.from({ length: 60 }, (_, i) => `k${i}:value-${i}`);
    fs.writeFileSync(file, `${lines.join("\n")}\n`);
    await partitionsOf(2, "spread");
    const r = await run("kcat", ["-P", "-b", kafkaOf(2), "-t", "spread", "-K:", "-z", "lz4", "-X", "acks=all", "-l", file], {
      timeoutMs: 60_000,
    });
    expect(r.code, r.stderr).toBe(0);
    const consumer = new Consumer({ bootstrap: cluster.nodes.map((n) => n.address).join(","), maxWaitMs: 100 });
    consumer.assign([0, 1, 2].map((partition) => ({ topic: "spread", partition, offset: "earliest" as const })));
    const got: string[] = [];
    const timer = setTimeout(() => void consumer.close(), 30_000);
    for await (const rec of consumer) {
      got.push(Buffer.from(rec.value as Uint8Array).toString());
      if (got.length >= lines.length) break;
    }
    clearTimeout(timer);
    await consumer.close();
    expect(got.sort()).toEqual(lines.map((l) => l.slice(l.indexOf(":") + 1)).sort());
  });
});
