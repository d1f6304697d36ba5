/**
 * The data APIs under the authorizer (authorizer.enable, no ACL for the caller — Kafka's "no
 * matching ACL = denied"): Metadata leaves the topic out of an "every topic" answer and answers
 * it TOPIC_AUTHORIZATION_FAILED when named (and does not create an unknown one), Produce answers
 * TOPIC_AUTHORIZATION_FAILED and appends nothing, ListOffsets likewise, InitProducerId
 * CLUSTER_AUTHORIZATION_FAILED — the same decisions gRPC's requests get.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Broker } from "../../src/broker/broker.ts";
import { InitProducerIdRequest, InitProducerIdResponse } from "../../src/kafka/apis/init-producer-id.ts";
import { ListOffsetsRequest, ListOffsetsResponse } from "../../src/kafka/apis/list-offsets.ts";
import { MetadataRequest, MetadataResponse } from "../../src/kafka/apis/metadata.ts";
import { ProduceRequest, ProduceResponse } from "../../src/kafka/apis/produce.ts";
import { Compression, encodeBatch } from "../../src/protocol/record-batch.ts";
import { RawKafka } from "./kafka-helpers.ts";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";

let broker: Broker;
let dir: string;

beforeAll(async () => {
  dir = tmpDir("rill-kafka-acl-");
  const open = await Broker.start({ dataDir: dir, listen: "127.0.0.1:0", config: { kafkaListen: "127.0.0.1:0" }, shutdownGraceMs: 500 });
  const c = await RawKafka.connect(open.kafkaAddress as string);
  await c.request(3, 4, MetadataRequest, { topics: [{ name: "secret" }], allowAutoTopicCreation: true }, MetadataResponse);
  c.close();
  await open.close();
  broker = await Broker.start({
    dataDir: dir,
    listen: "127.0.0.1:0",
    config: { kafkaListen: "127.0.0.1:0", authorizerEnable: true, autoCreateTopicsEnable: true },
    shutdownGraceMs: 500,
  });
}, 60_000);

afterAll(async () => {
  await broker?.close();
  rmTmp(dir);
});

describe("the data APIs without permission", () => {
  it("hide, refuse and store nothing", async () => {
    const c = await RawKafka.connect(broker.kafkaAddress as string);
    const all = await c.request(3, 12, MetadataRequest, { topics: null }, MetadataResponse);
    expect(all.topics.map((t) => t.name)).not.toContain("secret");
    const named = await c.request(
      3,
      12,
      MetadataRequest,
      { topics: [{ name: "secret" }, { name: "brand-new" }], allowAutoTopicCreation: true },
      MetadataResponse,
    );
    expect(named.topics.map((t) => [t.name, t.errorCode])).toEqual([
      ["secret", 29],
      ["brand-new", 29],
    ]);
    const batch = encodeBatch([{ key: null, value: "v" }], { compression: Compression.NONE, nowMs: Date.now() });
    const p = await c.request(
      0,
      9,
      ProduceRequest,
      { transactionalId: null, acks: -1, timeoutMs: 1000, topicData: [{ name: "secret", partitionData: [{ index: 0, records: batch }] }] },
      ProduceResponse,
    );
    expect(p.responses[0]?.partitionResponses[0]?.errorCode).toBe(29);
    const lo = await c.request(
      2,
      9,
      ListOffsetsRequest,
      { replicaId: -1, topics: [{ name: "secret", partitions: [{ partitionIndex: 0, timestamp: -1n }] }] },
      ListOffsetsResponse,
    );
    expect(lo.topics[0]?.partitions[0]?.errorCode).toBe(29);
    const pid = await c.request(
      22,
      4,
      InitProducerIdRequest,
      { transactionalId: null, transactionTimeoutMs: 1000 },
      InitProducerIdResponse,
    );
    expect(pid.errorCode).toBe(31);
    c.close();
    // Nothing was created or appended: seen again without the authorizer.
    await broker.close();
    broker = await Broker.start({ dataDir: dir, listen: "127.0.0.1:0", config: { kafkaListen: "127.0.0.1:0" }, shutdownGraceMs: 500 });
    const o = await RawKafka.connect(broker.kafkaAddress as string);
    const md = await o.request(3, 12, MetadataRequest, { topics: null }, MetadataResponse);
    expect(md.topics.map((t) => t.name).filter((n) => !(n ?? "").startsWith("__"))).toEqual(["secret"]);
    const end = await o.request(
      2,
      9,
      ListOffsetsRequest,
      { replicaId: -1, topics: [{ name: "secret", partitions: [{ partitionIndex: 0, timestamp: -1n }] }] },
      ListOffsetsResponse,
    );
    expect(end.topics[0]?.partitions[0]?.offset).toBe(0n);
    o.close();
  }, 60_000);
});
