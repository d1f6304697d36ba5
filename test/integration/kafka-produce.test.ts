/**
 * Produce, ListOffsets and InitProducerId over the Kafka listener with golden requests
 * (RawKafka): appends and their offsets, pipelined requests appended in order, acks=0 answered
 * with nothing, and each refusal with its Kafka code and nothing stored — unknown topic, acks 2,
 * a corrupt batch, a sequence gap; InitProducerId issuing ids and bumping
 * epochs; an idempotent retry answered with its original offset; ListOffsets earliest, latest,
 * by timestamp, -3, leader epochs.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Broker } from "../../src/broker/broker.ts";
import { InitProducerIdRequest, InitProducerIdResponse } from "../../src/kafka/apis/init-producer-id.ts";
import { ListOffsetsRequest, ListOffsetsResponse } from "../../src/kafka/apis/list-offsets.ts";
import { MetadataRequest, MetadataResponse } from "../../src/kafka/apis/metadata.ts";
import { ProduceRequest, ProduceResponse } from "../../src/kafka/apis/produce.ts";
import { encode } from "../../src/kafka/schema.ts";
import { KafkaWriter } from "../../src/kafka/wire.ts";
import { Compression, encodeBatch } from "../../src/protocol/record-batch.ts";
import { RawKafka } from "./kafka-helpers.ts";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";

let broker: Broker;
let dir: string;
let c: RawKafka;

beforeAll(async () => {
  dir = tmpDir("rill-kafka-prod-");
  broker = await Broker.start({
    dataDir: dir,
    listen: "127.0.0.1:0",
    config: { kafkaListen: "127.0.0.1:0", numPartitions: 1, autoCreateTopicsEnable: true },
    shutdownGraceMs: 500,
  });
  c = await RawKafka.connect(broker.kafkaAddress as string);
  for (const name of ["p", "pipe", "acks0", "bad", "idem", "lo"]) {
    await c.request(3, 4, MetadataRequest, { topics: [{ name }], allowAutoTopicCreation: true }, MetadataResponse);
  }
});

afterAll(async () => {
  c?.close();
  await broker?.close();
  rmTmp(dir);
});

const batch = (values: string[], o: { producerId?: number; producerEpoch?: number; baseSequence?: number; timestampMs?: number } = {}) =>
  encodeBatch(
    values.map((v) => ({ key: null, value: v, ...(o.timestampMs !== undefined ? { timestampMs: o.timestampMs } : {}) })),
    {
      compression: Compression.NONE,
      nowMs: Date.now(),
      ...(o.producerId !== undefined
        ? { producerId: o.producerId, producerEpoch: o.producerEpoch ?? 0, baseSequence: o.baseSequence ?? 0 }
        : {}),
    },
  );

const produce = (
  topic: string,
  records: Buffer | null,
  o: { version?: number; acks?: number; transactionalId?: string | null; partition?: number } = {},
) =>
  c.request(
    0,
    o.version ?? 9,
    ProduceRequest,
    {
      transactionalId: o.transactionalId ?? null,
      acks: o.acks ?? -1,
      timeoutMs: 5000,
      topicData: [{ name: topic, partitionData: [{ index: o.partition ?? 0, records }] }],
    },
    ProduceResponse,
  );

const part = (res: Awaited<ReturnType<typeof produce>>) => res.responses[0]?.partitionResponses[0];

const latest = async (topic: string): Promise<bigint> => {
  const r = await c.request(
    2,
    5,
    ListOffsetsRequest,
    { replicaId: -1, topics: [{ name: topic, partitions: [{ partitionIndex: 0, timestamp: -1n }] }] },
    ListOffsetsResponse,
  );
  return r.topics[0]?.partitions[0]?.offset as bigint;
};

describe("Produce", () => {
  it("appends each version's batch and answers its base offset and the log start", async () => {
    let next = 0n;
    for (let v = 3; v <= 11; v++) {
      const p = part(await produce("p", batch([`a${v}`, `b${v}`]), { version: v }));
      expect(p, `v${v}`).toMatchObject({ index: 0, errorCode: 0, baseOffset: next });
      if (v >= 5) expect(p?.logStartOffset).toBe(0n);
      next += 2n;
    }
    expect(await latest("p")).toBe(next);
  });

  it("appends requests pipelined on one connection in the order they were sent", async () => {
    const sends = Array.from({ length: 30 }, (_, i) => produce("pipe", batch([`r${i}`]), { acks: 1 }));
    const answers = await Promise.all(sends);
    expect(answers.map((a) => part(a)?.baseOffset)).toEqual(answers.map((_, i) => BigInt(i)));
  });

  it("answers acks=0 with nothing: the next answer on the connection is the next request's", async () => {
    const w = new KafkaWriter();
    encode(
      ProduceRequest,
      {
        transactionalId: null,
        acks: 0,
        timeoutMs: 1000,
        topicData: [{ name: "acks0", partitionData: [{ index: 0, records: batch(["x"]) }] }],
      },
      7,
      w,
    );
    const none = c.sendRaw(0, 7, w.toBuffer(), false);
    const after = await produce("acks0", batch(["y"]), { version: 7 });
    expect(part(after)).toMatchObject({ errorCode: 0, baseOffset: 1n });
    const raced = await Promise.race([none.then(() => "answered"), new Promise((r) => setTimeout(() => r("silent"), 200))]);
    expect(raced).toBe("silent");
  });

  it("refuses, per partition and storing nothing: an unknown topic, acks 2, a corrupt batch", async () => {
    const before = await latest("bad");
    expect(part(await produce("no-such-topic", batch(["x"])))?.errorCode).toBe(3); // UNKNOWN_TOPIC_OR_PARTITION
    const acks2 = part(await produce("bad", batch(["x"]), { acks: 2 }));
    expect(acks2).toMatchObject({ errorCode: 21, baseOffset: -1n }); // INVALID_REQUIRED_ACKS
    expect(acks2?.errorMessage).toMatch(/acks: 2/);
    const corrupt = batch(["x", "y"]);
    corrupt.writeUInt8((corrupt.at(-1) as number) ^ 0xff, corrupt.length - 1); // the CRC no longer matches
    expect(part(await produce("bad", corrupt))?.errorCode).toBe(2); // CORRUPT_MESSAGE
    expect(part(await produce("bad", batch(["x"]), { partition: 7 }))?.errorCode).toBe(3);
    expect(await latest("bad")).toBe(before);
  });
});

describe("InitProducerId and idempotent Produce", () => {
  it("issues an id, bumps its epoch (v3+), answers a retried batch with its original offset and a gap with OUT_OF_ORDER_SEQUENCE_NUMBER", async () => {
    const init = await c.request(
      22,
      4,
      InitProducerIdRequest,
      { transactionalId: null, transactionTimeoutMs: 60_000 },
      InitProducerIdResponse,
    );
    expect(init.errorCode).toBe(0);
    expect(init.producerEpoch).toBe(0);
    const pid = Number(init.producerId);
    const first = batch(["i0", "i1"], { producerId: pid, producerEpoch: 0, baseSequence: 0 });
    expect(part(await produce("idem", first))).toMatchObject({ errorCode: 0, baseOffset: 0n });
    // The same batch again (a retry): its original offset, nothing appended.
    expect(part(await produce("idem", first))).toMatchObject({ errorCode: 0, baseOffset: 0n });
    const gap = batch(["i5"], { producerId: pid, producerEpoch: 0, baseSequence: 5 });
    expect(part(await produce("idem", gap))?.errorCode).toBe(45); // OUT_OF_ORDER_SEQUENCE_NUMBER
    expect(await latest("idem")).toBe(2n);
    const bumped = await c.request(
      22,
      3,
      InitProducerIdRequest,
      { transactionalId: null, producerId: init.producerId, producerEpoch: 0 },
      InitProducerIdResponse,
    );
    expect(bumped).toMatchObject({ errorCode: 0, producerId: init.producerId, producerEpoch: 1 });
    // Once the new epoch has written to the partition, the old one is fenced there (as Kafka's).
    const fresh = batch(["n0"], { producerId: pid, producerEpoch: 1, baseSequence: 0 });
    expect(part(await produce("idem", fresh))).toMatchObject({ errorCode: 0, baseOffset: 2n });
    const stale = batch(["old"], { producerId: pid, producerEpoch: 0, baseSequence: 2 });
    expect(part(await produce("idem", stale))?.errorCode).toBe(47); // INVALID_PRODUCER_EPOCH
  });

  it("answers every version 0-5, and refuses an empty transactional id", async () => {
    for (let v = 0; v <= 5; v++) {
      const r = await c.request(
        22,
        v,
        InitProducerIdRequest,
        { transactionalId: null, transactionTimeoutMs: 1000 },
        InitProducerIdResponse,
      );
      expect(r.errorCode, `v${v}`).toBe(0);
    }
    const tx = await c.request(22, 4, InitProducerIdRequest, { transactionalId: "", transactionTimeoutMs: 1000 }, InitProducerIdResponse);
    expect(tx).toMatchObject({ errorCode: 42, producerId: -1n }); // INVALID_REQUEST, as Kafka's
  });
});

describe("ListOffsets", () => {
  it("answers earliest, latest, by timestamp, -3 (not supported) and leader epochs", async () => {
    const t0 = 1_700_000_000_000;
    for (let i = 0; i < 4; i++) await produce("lo", batch([`t${i}`], { timestampMs: t0 + i * 1000 }));
    const ask = (timestamp: bigint, currentLeaderEpoch = -1, v = 9) =>
      c
        .request(
          2,
          v,
          ListOffsetsRequest,
          { replicaId: -1, topics: [{ name: "lo", partitions: [{ partitionIndex: 0, timestamp, currentLeaderEpoch }] }] },
          ListOffsetsResponse,
        )
        .then((r) => r.topics[0]?.partitions[0]);
    expect(await ask(-2n)).toMatchObject({ errorCode: 0, offset: 0n, leaderEpoch: 0 });
    expect(await ask(-1n)).toMatchObject({ errorCode: 0, offset: 4n });
    expect(await ask(BigInt(t0 + 1500))).toMatchObject({ errorCode: 0, offset: 2n, timestamp: BigInt(t0 + 2000) });
    expect(await ask(BigInt(t0 + 99_000))).toMatchObject({ errorCode: 0, offset: -1n });
    expect((await ask(-3n))?.errorCode).toBe(35); // UNSUPPORTED_VERSION
    expect(await ask(-4n)).toMatchObject({ errorCode: 0, offset: 0n }); // earliest local: no tiered storage
    expect(await ask(-5n)).toMatchObject({ errorCode: 0, offset: -1n }); // latest tiered: none
    expect((await ask(-1n, 0))?.errorCode).toBe(0);
    expect((await ask(-1n, 5))?.errorCode).toBe(75); // UNKNOWN_LEADER_EPOCH
    for (let v = 1; v <= 9; v++) expect((await ask(-1n, -1, v))?.offset, `v${v}`).toBe(4n);
    const unknown = await c.request(
      2,
      9,
      ListOffsetsRequest,
      { replicaId: -1, topics: [{ name: "nope", partitions: [{ partitionIndex: 0, timestamp: -1n }] }] },
      ListOffsetsResponse,
    );
    expect(unknown.topics[0]?.partitions[0]?.errorCode).toBe(3);
  });
});
