/**
 * The data APIs under the authorizer (authorizer.enable, no ACL for the caller — Kafka's "no
 * matching ACL = denied"): Metadata leaves the topic out of an "every topic" answer and answers
 * it TOPIC_AUTHORIZATION_FAILED when named (and does not create an unknown one), Produce answers
 * TOPIC_AUTHORIZATION_FAILED and appends nothing, ListOffsets likewise, InitProducerId
 * CLUSTER_AUTHORIZATION_FAILED, and the transaction APIs (InitProducerId with a transactional id,
 * FindCoordinator key type 1, AddPartitionsToTxn, Produce with a transactional id, EndTxn,
 * DescribeTransactions) TRANSACTIONAL_ID_AUTHORIZATION_FAILED — the same decisions gRPC's
 * requests get.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Broker } from "../../src/broker/broker.ts";
import { AddPartitionsToTxnRequest, AddPartitionsToTxnResponse } from "../../src/kafka/apis/add-partitions-to-txn.ts";
import { DescribeTransactionsRequest, DescribeTransactionsResponse } from "../../src/kafka/apis/describe-transactions.ts";
import { EndTxnRequest, EndTxnResponse } from "../../src/kafka/apis/end-txn.ts";
import { FindCoordinatorRequest, FindCoordinatorResponse } from "../../src/kafka/apis/find-coordinator.ts";
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
    // Transactions: WRITE (and DESCRIBE) on the TRANSACTIONAL_ID, else TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53).
    const txPid = await c.request(
      22,
      4,
      InitProducerIdRequest,
      { transactionalId: "tx-secret", transactionTimeoutMs: 1000 },
      InitProducerIdResponse,
    );
    expect(txPid.errorCode).toBe(53);
    const found = await c.request(10, 4, FindCoordinatorRequest, { keyType: 1, coordinatorKeys: ["tx-secret"] }, FindCoordinatorResponse);
    expect(found.coordinators[0]?.errorCode).toBe(53);
    const added = await c.request(
      24,
      1,
      AddPartitionsToTxnRequest,
      { v3AndBelowTransactionalId: "tx-secret", v3AndBelowProducerId: 1n, v3AndBelowTopics: [{ name: "secret", partitions: [0] }] },
      AddPartitionsToTxnResponse,
    );
    expect(added.resultsByTopicV3AndBelow[0]?.resultsByPartition[0]?.partitionErrorCode).toBe(53);
    const txProduce = await c.request(
      0,
      9,
      ProduceRequest,
      {
        transactionalId: "tx-secret",
        acks: -1,
        timeoutMs: 1000,
        topicData: [{ name: "secret", partitionData: [{ index: 0, records: batch }] }],
      },
      ProduceResponse,
    );
    expect(txProduce.responses[0]?.partitionResponses[0]?.errorCode).toBe(53);
    const ended = await c.request(26, 3, EndTxnRequest, { transactionalId: "tx-secret", producerId: 1n, committed: true }, EndTxnResponse);
    expect(ended.errorCode).toBe(53);
    const described = await c.request(
      65,
      0,
      DescribeTransactionsRequest,
      { transactionalIds: ["tx-secret"] },
      DescribeTransactionsResponse,
    );
    expect(described.transactionStates[0]?.errorCode).toBe(53);
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
