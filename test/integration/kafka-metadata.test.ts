/**
 * Metadata (key 3) against a real broker: the answer kcat -L and kafkajs read (separate
 * processes), each version's layout over the listener, auto-creation with num.partitions,
 * "every topic" in v0 and v1+, topic ids, and unknown topics.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Broker } from "../../src/broker/broker.ts";
import { MetadataRequest, MetadataResponse } from "../../src/kafka/apis/metadata.ts";
import { kafkajs, run } from "./kafka-clients.ts";
import { RawKafka } from "./kafka-helpers.ts";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";

let broker: Broker;
let dir: string;
let address: string;

beforeAll(async () => {
  dir = tmpDir("rill-kafka-md-");
  broker = await Broker.start({
    dataDir: dir,
    listen: "127.0.0.1:0",
    config: { kafkaListen: "127.0.0.1:0", numPartitions: 3, autoCreateTopicsEnable: true },
    shutdownGraceMs: 500,
  });
  address = broker.kafkaAddress as string;
});

afterAll(async () => {
  await broker?.close();
  rmTmp(dir);
});

describe("Metadata over the Kafka listener", () => {
  it("answers every version 0-12 with this node at its Kafka address and the cluster id", async () => {
    const c = await RawKafka.connect(address);
    const [host, port] = address.split(":");
    for (let v = 0; v <= 12; v++) {
      const res = await c.request(3, v, MetadataRequest, { topics: v === 0 ? [] : null }, MetadataResponse);
      expect(res.brokers, `v${v}`).toEqual([{ nodeId: 1, host, port: Number(port), rack: null }]);
      if (v >= 2) expect(res.clusterId).toBe(broker.clusterId);
      if (v >= 1) expect(res.controllerId).toBe(1);
      if (v >= 8) expect(res.topics.every((t) => t.topicAuthorizedOperations === -2147483648)).toBe(true);
    }
    c.close();
  });

  it("auto-creates a named topic with num.partitions, gives it an id, and answers it to v10+ by id", async () => {
    const c = await RawKafka.connect(address);
    const res = await c.request(3, 9, MetadataRequest, { topics: [{ name: "md-auto" }], allowAutoTopicCreation: true }, MetadataResponse);
    const t = res.topics[0];
    expect(t?.name).toBe("md-auto");
    // Kafka answers LEADER_NOT_AVAILABLE until the new partitions have leaders; here they have at once.
    expect([0, 5]).toContain(t?.errorCode);
    const again = await c.request(3, 12, MetadataRequest, { topics: [{ name: "md-auto" }] }, MetadataResponse);
    const t2 = again.topics[0];
    expect(t2?.errorCode).toBe(0);
    expect(t2?.partitions.map((p) => [p.partitionIndex, p.leaderId, p.errorCode])).toEqual([
      [0, 1, 0],
      [1, 1, 0],
      [2, 1, 0],
    ]);
    expect(t2?.topicId.equals(Buffer.alloc(16))).toBe(false);
    const byId = await c.request(3, 12, MetadataRequest, { topics: [{ topicId: t2?.topicId as Buffer, name: null }] }, MetadataResponse);
    expect(byId.topics[0]?.name).toBe("md-auto");
    const unknownId = await c.request(3, 12, MetadataRequest, { topics: [{ topicId: Buffer.alloc(16, 9), name: null }] }, MetadataResponse);
    expect(unknownId.topics[0]?.errorCode).toBe(100); // UNKNOWN_TOPIC_ID
    c.close();
  });

  it("does not create a topic when the request (v4+) does not allow it, and lists none for an empty v1 list", async () => {
    const c = await RawKafka.connect(address);
    const res = await c.request(3, 4, MetadataRequest, { topics: [{ name: "md-no" }], allowAutoTopicCreation: false }, MetadataResponse);
    expect(res.topics).toEqual([expect.objectContaining({ name: "md-no", errorCode: 3, partitions: [] })]);
    const none = await c.request(3, 1, MetadataRequest, { topics: [] }, MetadataResponse);
    expect(none.topics).toEqual([]);
    const all = await c.request(3, 0, MetadataRequest, { topics: [] }, MetadataResponse);
    expect(all.topics.map((t) => t.name)).not.toContain("md-no");
    c.close();
  });

  it("is what kcat -L prints", async () => {
    const r = await run("kcat", ["-L", "-b", address, "-t", "md-kcat"], { timeoutMs: 30_000 });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`broker 1 at ${address} (controller)`);
    expect(r.stdout).toContain('topic "md-kcat" with 3 partitions');
    expect(r.stdout).toContain("partition 2, leader 1, replicas: 1, isrs: 1");
  });

  it("is what kafkajs admin.fetchTopicMetadata reads", async () => {
    const c = await RawKafka.connect(address);
    await c.request(3, 4, MetadataRequest, { topics: [{ name: "md-kjs" }], allowAutoTopicCreation: true }, MetadataResponse);
    c.close();
    const md = await kafkajs<{ topics: { name: string; partitions: { partitionId: number; leader: number; isr: number[] }[] }[] }>(
      address,
      "metadata",
      { topics: ["md-kjs"] },
    );
    expect(md.topics[0]?.name).toBe("md-kjs");
    expect(md.topics[0]?.partitions.map((p) => [p.partitionId, p.leader]).sort()).toEqual([
      [0, 1],
      [1, 1],
      [2, 1],
    ]);
  });
});
