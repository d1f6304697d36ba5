/**
 * Fetch and OffsetForLeaderEpoch on the Kafka listener, against a real broker with a raw client
 * (RawKafka): the stored batches byte for byte as gRPC's BATCHES fetch returns them, in every
 * version from v4 to v17 (topic ids from v13); the long poll woken by a produce; min_bytes;
 * max_bytes with a first batch larger than the limit (KIP-74); per-partition errors (offset out
 * of range, 2^63-1, unknown topic, unknown topic id, an epoch newer than the leader's);
 * sessions refused with session id 0 and incremental ones with FETCH_SESSION_ID_NOT_FOUND; the
 * fetch memory given back once answers are written, or their connection closed; a partition
 * with damaged stored bytes answering CORRUPT_MESSAGE while the healthy one beside it flows; the
 * throttle time of a client over its consumer quota; and TOPIC_AUTHORIZATION_FAILED for a topic
 * the client may not READ (DESCRIBE for OffsetForLeaderEpoch), with the authorizer on.
 */
import * as nodeFs from "node:fs";
import * as path from "node:path";
import { create } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Broker } from "../../src/broker/broker.ts";
import { Admin } from "../../src/client/admin.ts";
import { Producer } from "../../src/client/producer.ts";
import { CreateTopicsRequestSchema } from "../../src/gen/rill/v1/admin_service_pb.ts";
import {
  AclOperation,
  AclPatternType,
  AclPermission,
  AclResourceType,
  CreateAclsRequestSchema,
} from "../../src/gen/rill/v1/security_pb.ts";
import { RecordFormat } from "../../src/gen/rill/v1/common_pb.ts";
import { FetchRequestSchema, type FetchResponse as GrpcFetchResponse } from "../../src/gen/rill/v1/fetch_service_pb.ts";
import { FetchRequest, FetchResponse } from "../../src/kafka/apis/fetch.ts";
import { OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse } from "../../src/kafka/apis/offset-for-leader-epoch.ts";
import type { MetadataImage } from "../../src/metadata/image.ts";
import type { FetchMemory } from "../../src/service/fetch.ts";
import { decodeFetchedRecords } from "../../src/service/fetch-records.ts";
import { decode, encode } from "../../src/kafka/schema.ts";
import { KafkaReader, KafkaWriter } from "../../src/kafka/wire.ts";
import { RawKafka } from "./kafka-helpers.ts";
import { call, clients, rmTmp, tmpDir } from "./rpc-helpers.ts";

type Parts = { parts: { meta: { store: { image: MetadataImage } }; data: { fetchMemory: FetchMemory } } };

let broker: Broker;
let dir: string;
let address: string;

const image = (b: Broker) => (b as unknown as Parts).parts.meta.store.image;
const fetchMemory = (b: Broker) => (b as unknown as Parts).parts.data.fetchMemory;
const topicId = (b: Broker, name: string) => Buffer.from(image(b).topics.get(name)!.topicId, "hex");

async function createTopics(addr: string, topics: { name: string; partitions: number }[]): Promise<void> {
  const c = clients(addr);
  try {
    await call(c.admin, "createTopics", create(CreateTopicsRequestSchema, { topics }));
  } finally {
    c.close();
  }
}

async function produce(addr: string, records: { topic: string; partition: number; value: string }[]): Promise<void> {
  const p = new Producer({ bootstrap: addr, lingerMs: 0 });
  try {
    for (const r of records) await p.send(r);
  } finally {
    await p.close();
  }
}

interface Ask {
  topic: string;
  partition: number;
  offset: bigint;
  partitionMaxBytes?: number;
  currentLeaderEpoch?: number;
}

/** A sessionless consumer fetch of version `v` (topic ids from v13). */
function kfetch(
  c: RawKafka,
  v: number,
  asks: Ask[],
  o: { maxWaitMs?: number; minBytes?: number; maxBytes?: number; sessionId?: number; sessionEpoch?: number; b?: Broker } = {},
) {
  return c.request(
    1,
    v,
    FetchRequest,
    {
      replicaId: -1,
      maxWaitMs: o.maxWaitMs ?? 0,
      minBytes: o.minBytes ?? 1,
      maxBytes: o.maxBytes ?? 52428800,
      sessionId: o.sessionId ?? 0,
      sessionEpoch: o.sessionEpoch ?? -1,
      topics: asks.map((a) => ({
        topic: a.topic,
        ...(v >= 13 ? { topicId: topicId(o.b ?? broker, a.topic) } : {}),
        partitions: [
          {
            partition: a.partition,
            fetchOffset: a.offset,
            partitionMaxBytes: a.partitionMaxBytes ?? 1048576,
            currentLeaderEpoch: a.currentLeaderEpoch ?? -1,
          },
        ],
      })),
    },
    FetchResponse,
  );
}

type Answer = Awaited<ReturnType<typeof kfetch>>;
const part = (res: Answer, i: number) => res.responses[i]!.partitions[0]!;
const recordsOf = (res: Answer, i: number) => (part(res, i).records as Buffer | null) ?? Buffer.alloc(0);
const valuesOf = (res: Answer, i: number, from = 0n) =>
  decodeFetchedRecords([recordsOf(res, i)], Number(from)).map((r) => Buffer.from(r.value!).toString());

beforeAll(async () => {
  dir = tmpDir("rill-kfetch-");
  broker = await Broker.start({ dataDir: dir, listen: "127.0.0.1:0", config: { kafkaListen: "127.0.0.1:0" }, shutdownGraceMs: 500 });
  address = broker.kafkaAddress as string;
  await createTopics(broker.address, [
    { name: "f", partitions: 2 },
    { name: "poll", partitions: 1 },
    { name: "big", partitions: 2 },
  ]);
  await produce(broker.address, [
    { topic: "f", partition: 0, value: "a" },
    { topic: "f", partition: 0, value: "b" },
    { topic: "f", partition: 0, value: "c" },
    { topic: "f", partition: 1, value: "x" },
    { topic: "big", partition: 0, value: "B".repeat(100_000) },
    { topic: "big", partition: 1, value: "small" },
  ]);
}, 60_000);

afterAll(async () => {
  await broker?.close();
  rmTmp(dir);
});

describe("Kafka Fetch", () => {
  it("answers every version v4-v17 with the stored batches, byte for byte as gRPC's BATCHES fetch", async () => {
    const g = clients(broker.address);
    const grpc = await call<unknown, GrpcFetchResponse>(
      g.fetch,
      "fetch",
      create(FetchRequestSchema, { partitions: [{ topic: "f", partition: 0, offset: 1n }], format: RecordFormat.BATCHES }),
    );
    g.close();
    const stored = Buffer.from(grpc.partitions[0]!.recordBatches);
    expect(stored.length).toBeGreaterThan(0);
    const c = await RawKafka.connect(address);
    for (let v = 4; v <= 17; v++) {
      const res = await kfetch(c, v, [
        { topic: "f", partition: 0, offset: 1n },
        { topic: "f", partition: 1, offset: 0n },
      ]);
      expect(res.errorCode, `v${v}`).toBe(0);
      expect(res.sessionId).toBe(0);
      expect(res.responses.length).toBe(2);
      if (v >= 13) expect(res.responses[0]!.topicId.toString("hex")).toBe(topicId(broker, "f").toString("hex"));
      else expect(res.responses[0]!.topic).toBe("f");
      const p = part(res, 0);
      expect([p.errorCode, p.highWatermark, p.lastStableOffset]).toEqual([0, 3n, 3n]);
      expect(p.logStartOffset).toBe(v >= 5 ? 0n : -1n);
      expect(p.abortedTransactions).toBeNull();
      expect(recordsOf(res, 0).equals(stored), `v${v}`).toBe(true);
      expect(valuesOf(res, 0, 1n)).toEqual(["b", "c"]);
      expect(valuesOf(res, 1)).toEqual(["x"]);
    }
    c.close();
  });

  it("wakes a long poll when a record is produced", async () => {
    const c = await RawKafka.connect(address);
    // 120 s of max_wait: only the produce can answer this within the test's time.
    const polled = kfetch(c, 12, [{ topic: "poll", partition: 0, offset: 0n }], { maxWaitMs: 120_000 });
    await produce(broker.address, [{ topic: "poll", partition: 0, value: "woke" }]);
    const res = await polled;
    expect(valuesOf(res, 0)).toEqual(["woke"]);
    c.close();
  }, 30_000);

  it("waits for min_bytes, and min_bytes 0 answers at once", async () => {
    const c = await RawKafka.connect(address);
    const empty = await kfetch(c, 11, [{ topic: "poll", partition: 0, offset: 1n }], { maxWaitMs: 120_000, minBytes: 0 });
    expect(recordsOf(empty, 0).length).toBe(0);
    let answered = false;
    const polled = kfetch(c, 11, [{ topic: "poll", partition: 0, offset: 1n }], { maxWaitMs: 120_000, minBytes: 600 }).then((r) => {
      answered = true;
      return r;
    });
    // One small batch (~80 bytes) is not enough...
    await produce(broker.address, [{ topic: "poll", partition: 0, value: "small" }]);
    await produce(broker.address, [{ topic: "poll", partition: 0, value: "small-2" }]);
    expect(answered).toBe(false);
    // ... a large one is.
    await produce(broker.address, [{ topic: "poll", partition: 0, value: "L".repeat(1000) }]);
    const res = await polled;
    expect(recordsOf(res, 0).length).toBeGreaterThanOrEqual(600);
    expect(valuesOf(res, 0, 1n)).toEqual(["small", "small-2", "L".repeat(1000)]);
    c.close();
  }, 30_000);

  it("returns a first batch larger than max_bytes whole (KIP-74), and nothing more", async () => {
    const c = await RawKafka.connect(address);
    const res = await kfetch(
      c,
      12,
      [
        { topic: "big", partition: 0, offset: 0n, partitionMaxBytes: 1000 },
        { topic: "big", partition: 1, offset: 0n, partitionMaxBytes: 1000 },
      ],
      { maxBytes: 1000 },
    );
    expect(recordsOf(res, 0).length).toBeGreaterThan(100_000);
    expect(valuesOf(res, 0)).toEqual(["B".repeat(100_000)]);
    // The second partition's small batch does not fit what is left: it comes next time.
    expect([part(res, 1).errorCode, recordsOf(res, 1).length, part(res, 1).highWatermark]).toEqual([0, 0, 1n]);
    c.close();
  });

  it("answers per-partition errors beside a partition that is read", async () => {
    const c = await RawKafka.connect(address);
    const res = await kfetch(c, 12, [
      { topic: "f", partition: 0, offset: 1000n },
      { topic: "f", partition: 1, offset: 2n ** 63n - 1n },
      { topic: "nope", partition: 0, offset: 0n },
      { topic: "f", partition: 9, offset: 0n },
      { topic: "big", partition: 1, offset: 0n },
      { topic: "poll", partition: 0, offset: 0n, currentLeaderEpoch: 999 },
      // Named twice: answered once, as Kafka's fetch keeps one entry per partition.
      { topic: "f", partition: 0, offset: 0n },
    ]);
    expect(res.responses.map((t) => t.partitions[0]!.errorCode)).toEqual([1, 1, 3, 3, 0, 75]);
    expect(part(res, 0).highWatermark).toBe(3n);
    expect(valuesOf(res, 4)).toEqual(["small"]);
    const negative = await kfetch(c, 4, [{ topic: "f", partition: 0, offset: -5n }]);
    expect(part(negative, 0).errorCode).toBe(1);
    c.close();
  });

  it("answers UNKNOWN_TOPIC_ID for a topic id no topic has (v13+)", async () => {
    const c = await RawKafka.connect(address);
    const res = await c.request(
      1,
      13,
      FetchRequest,
      {
        maxWaitMs: 0,
        minBytes: 1,
        topics: [
          { topicId: Buffer.alloc(16, 7), partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1000 }] },
          { topicId: topicId(broker, "f"), partitions: [{ partition: 1, fetchOffset: 0n, partitionMaxBytes: 1000 }] },
        ],
      },
      FetchResponse,
    );
    expect(res.responses.map((t) => t.partitions[0]!.errorCode)).toEqual([100, 0]);
    expect(res.responses[0]!.topicId).toEqual(Buffer.alloc(16, 7));
    c.close();
  });

  it("opens no fetch session (session id 0) and answers an incremental fetch FETCH_SESSION_ID_NOT_FOUND", async () => {
    const c = await RawKafka.connect(address);
    const full = await kfetch(c, 12, [{ topic: "f", partition: 1, offset: 0n }], { sessionId: 0, sessionEpoch: 0 });
    expect([full.errorCode, full.sessionId]).toEqual([0, 0]);
    expect(valuesOf(full, 0)).toEqual(["x"]);
    const incremental = await kfetch(c, 12, [{ topic: "f", partition: 1, offset: 0n }], { sessionId: 12, sessionEpoch: 3 });
    expect([incremental.errorCode, incremental.sessionId, incremental.responses]).toEqual([70, 0, []]);
    c.close();
  });

  it("gives the fetch memory back once answered, and when the connection closes during a long poll", async () => {
    const budget = fetchMemory(broker).budget;
    const c = await RawKafka.connect(address);
    await kfetch(c, 12, [{ topic: "big", partition: 0, offset: 0n }]);
    expect(budget.bytesUsed).toBe(0);
    // A long poll waiting for data holds nothing; its connection closing ends it.
    void kfetch(c, 12, [{ topic: "big", partition: 0, offset: 1n }], { maxWaitMs: 120_000 }).catch(() => {});
    c.close();
    await c.closed;
    expect(budget.bytesUsed).toBe(0);
  });
});

describe("Kafka OffsetForLeaderEpoch", () => {
  it("answers where an epoch ends, and per-partition errors", async () => {
    const c = await RawKafka.connect(address);
    const epoch = image(broker).topics.get("f")!.partitions[0]!.leaderEpoch;
    for (const v of [2, 3, 4]) {
      const res = await c.request(
        23,
        v,
        OffsetForLeaderEpochRequest,
        {
          replicaId: -1,
          topics: [
            {
              topic: "f",
              partitions: [
                { partition: 0, currentLeaderEpoch: epoch, leaderEpoch: epoch },
                { partition: 1, currentLeaderEpoch: epoch + 1, leaderEpoch: epoch },
                { partition: 7, currentLeaderEpoch: -1, leaderEpoch: epoch },
              ],
            },
            { topic: "nope", partitions: [{ partition: 0, currentLeaderEpoch: -1, leaderEpoch: 0 }] },
          ],
        },
        OffsetForLeaderEpochResponse,
      );
      const [f, nope] = res.topics;
      expect(f!.partitions.map((p) => [p.partition, p.errorCode, p.leaderEpoch, p.endOffset])).toEqual([
        [0, 0, epoch, 3n],
        [1, 75, -1, -1n],
        [7, 3, -1, -1n],
      ]);
      expect(nope!.partitions[0]!.errorCode).toBe(3);
    }
    c.close();
  });
});

describe("Kafka Fetch of damaged stored data", () => {
  let b2: Broker;
  let dir2: string;

  beforeAll(async () => {
    dir2 = tmpDir("rill-kfetch-corrupt-");
    const first = await Broker.start({ dataDir: dir2, listen: "127.0.0.1:0" });
    await createTopics(first.address, [{ name: "c", partitions: 2 }]);
    await produce(first.address, [
      { topic: "c", partition: 0, value: "p0-first" },
      { topic: "c", partition: 0, value: "p0-second" },
      { topic: "c", partition: 1, value: "p1" },
    ]);
    await first.close();
    // Flip one byte of the first batch's record (after the CRC's start) while the broker is
    // stopped: a clean shutdown's restart does not re-validate, the read does.
    const seg = path.join(dir2, "c-0", "00000000000000000000.log");
    const bytes = nodeFs.readFileSync(seg);
    bytes[70] = (bytes[70] as number) ^ 0xff;
    nodeFs.writeFileSync(seg, bytes);
    b2 = await Broker.start({
      dataDir: dir2,
      listen: "127.0.0.1:0",
      config: { kafkaListen: "127.0.0.1:0" },
      shutdownGraceMs: 500,
      log: { info() {}, warn() {}, error() {} },
    });
  }, 60_000);

  afterAll(async () => {
    await b2?.close();
    rmTmp(dir2);
  });

  it("answers CORRUPT_MESSAGE for the damaged partition while the healthy one's data is returned", async () => {
    const c = await RawKafka.connect(b2.kafkaAddress as string);
    for (const v of [4, 11, 13]) {
      const res = await kfetch(
        c,
        v,
        [
          { topic: "c", partition: 0, offset: 0n },
          { topic: "c", partition: 1, offset: 0n },
        ],
        { b: b2 },
      );
      expect([part(res, 0).errorCode, recordsOf(res, 0).length]).toEqual([2, 0]);
      expect(valuesOf(res, 1)).toEqual(["p1"]);
    }
    // The batch after the damaged one is read as usual.
    const after = await kfetch(c, 12, [{ topic: "c", partition: 0, offset: 1n }], { b: b2 });
    expect(valuesOf(after, 0)).toEqual(["p0-second"]);
    c.close();
  });
});

describe("Kafka Fetch under client quotas", () => {
  it("answers with the throttle time of a client over its consumer_byte_rate, as gRPC's Fetch", async () => {
    const admin = new Admin({ bootstrap: broker.address });
    await admin.alterClientQuotas([{ entity: { clientId: "slow-consumer" }, set: { consumer_byte_rate: 50_000 } }]);
    await admin.close();
    const c = await RawKafka.connect(address);
    const w = new KafkaWriter();
    encode(
      FetchRequest,
      {
        maxWaitMs: 0,
        minBytes: 1,
        topics: [{ topic: "big", partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20 }] }],
      },
      12,
      w,
    );
    const answer = async () => {
      const r = new KafkaReader(await c.sendRaw(1, 12, w.toBuffer(), true, "slow-consumer"));
      r.uvarint();
      return decode(FetchResponse, r, 12);
    };
    // 100 KB read at 50 KB/s: the answer carries (and was held for) the time over the quota.
    const first = await answer();
    expect(first.responses[0]!.partitions[0]!.errorCode).toBe(0);
    expect(first.throttleTimeMs).toBeGreaterThan(0);
    // A throttled answer whose connection closes while it is held (its read memory reserved, the
    // answer waiting out the throttle time): the memory still goes back.
    const budget = fetchMemory(broker).budget;
    void answer().catch(() => {});
    for (let i = 0; i < 400 && budget.bytesUsed === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(budget.bytesUsed).toBeGreaterThan(0);
    c.close();
    for (let i = 0; i < 400 && budget.bytesUsed > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(budget.bytesUsed).toBe(0);
  }, 30_000);
});

describe("Kafka Fetch with the authorizer on", () => {
  let b3: Broker;
  let dir3: string;

  beforeAll(async () => {
    // Topics, records and ACLs are made with the authorizer off, then the broker restarts with it on.
    dir3 = tmpDir("rill-kfetch-acl-");
    const first = await Broker.start({ dataDir: dir3, listen: "127.0.0.1:0" });
    await createTopics(first.address, [
      { name: "readable", partitions: 1 },
      { name: "secret", partitions: 1 },
    ]);
    await produce(first.address, [
      { topic: "readable", partition: 0, value: "ok" },
      { topic: "secret", partition: 0, value: "hidden" },
    ]);
    const g = clients(first.address);
    await call(
      g.admin,
      "createAcls",
      create(CreateAclsRequestSchema, {
        creations: [
          {
            principal: "User:ANONYMOUS",
            host: "*",
            resourceType: AclResourceType.TOPIC,
            resourceName: "readable",
            patternType: AclPatternType.LITERAL,
            operation: AclOperation.READ,
            permission: AclPermission.ALLOW,
          },
        ],
      }),
    );
    g.close();
    await first.close();
    b3 = await Broker.start({
      dataDir: dir3,
      listen: "127.0.0.1:0",
      config: { kafkaListen: "127.0.0.1:0", authorizerEnable: true },
      shutdownGraceMs: 500,
    });
  }, 60_000);

  afterAll(async () => {
    await b3?.close();
    rmTmp(dir3);
  });

  it("answers TOPIC_AUTHORIZATION_FAILED for a topic the client may not READ, and the other's data", async () => {
    const c = await RawKafka.connect(b3.kafkaAddress as string);
    for (const v of [4, 12, 13]) {
      const res = await kfetch(
        c,
        v,
        [
          { topic: "secret", partition: 0, offset: 0n },
          { topic: "readable", partition: 0, offset: 0n },
        ],
        { b: b3 },
      );
      expect([part(res, 0).errorCode, recordsOf(res, 0).length]).toEqual([29, 0]);
      expect(valuesOf(res, 1)).toEqual(["ok"]);
    }
    const epochs = await c.request(
      23,
      4,
      OffsetForLeaderEpochRequest,
      {
        replicaId: -1,
        topics: ["secret", "readable"].map((topic) => ({ topic, partitions: [{ partition: 0, currentLeaderEpoch: -1, leaderEpoch: 0 }] })),
      },
      OffsetForLeaderEpochResponse,
    );
    expect(epochs.topics.map((t) => t.partitions[0]!.errorCode)).toEqual([29, 0]);
    c.close();
  });
});
