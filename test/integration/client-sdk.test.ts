/**
 * The TypeScript SDK (src/client) against a real broker on 127.0.0.1 with a temporary data
 * directory: Admin, Producer (batching, LZ4, murmur2 and sticky partitioning, backpressure,
 * retries through a broker restart) and Consumer (seek, long-poll, pipelined fetches).
 */
import * as net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Errors, type RillError } from "../../src/base/errors.ts";
import { partitionForKey } from "../../src/base/murmur2.ts";
import { SeededRandom, seedFromEnv } from "../../src/base/random.ts";
import { Broker } from "../../src/broker/broker.ts";
import { Admin, ConnectionError, Consumer, type ConsumerRecord, Producer } from "../../src/client/index.ts";
import { ProduceRequestSchema, type ProduceResponse } from "../../src/gen/rill/v1/produce_service_pb.ts";
import { call, clients, msg, rmTmp, tmpDir } from "./rpc-helpers.ts";

const SEED = seedFromEnv();
console.log(`client-sdk SEED=${SEED}`);

let dir: string;
let broker: Broker;
let bootstrap: string;
let admin: Admin;

beforeAll(async () => {
  dir = tmpDir("rill-client-");
  broker = await Broker.start({ dataDir: dir, listen: "127.0.0.1:0" });
  bootstrap = broker.address;
  admin = new Admin({ bootstrap });
});

afterAll(async () => {
  await admin?.close();
  await broker?.close();
  rmTmp(dir);
});

const fastRetry = { retries: 3, initialBackoffMs: 20, backoffMsMax: 100 };

async function readAll(consumer: Consumer, n: number, timeoutMs = 15_000): Promise<ConsumerRecord[]> {
  const out: ConsumerRecord[] = [];
  const timer = setTimeout(() => void consumer.close(), timeoutMs);
  try {
    for await (const r of consumer) {
      out.push(r);
      if (out.length >= n) break;
    }
  } finally {
    clearTimeout(timer);
  }
  return out;
}

describe("Admin", () => {
  it("creates, lists, describes, grows, configures and deletes topics", async () => {
    const created = await admin.createTopics([{ name: "adm", partitions: 2, configs: { "retention.ms": "60000" } }]);
    expect(created).toEqual([{ name: "adm", partitions: 2, replicationFactor: 1 }]);
    expect((await admin.listTopics()).find((t) => t.name === "adm")).toEqual({
      name: "adm",
      partitions: 2,
      replicationFactor: 1,
      internal: false,
    });

    const [d] = await admin.describeTopics(["adm"]);
    expect(d!.configs["retention.ms"]).toBe("60000");
    expect(d!.partitions.map((p) => [p.partition, p.leader, p.logStartOffset, p.highWatermark])).toEqual([
      [0, 1, 0, 0],
      [1, 1, 0, 0],
    ]);

    await admin.createPartitions([{ name: "adm", count: 3 }]);
    expect((await admin.describeTopics(["adm"], { includeConfigs: false }))[0]!.partitions).toHaveLength(3);

    await admin.alterConfigs([
      { resource: { type: "topic", name: "adm" }, set: { "cleanup.policy": "compact" }, delete: ["retention.ms"] },
    ]);
    const [cfg] = await admin.describeConfigs([{ type: "topic", name: "adm" }], { names: ["cleanup.policy", "retention.ms"] });
    const byName = Object.fromEntries(cfg!.entries.map((e) => [e.name, e]));
    expect(byName["cleanup.policy"]).toMatchObject({ value: "compact", source: "dynamic-topic" });
    expect(byName["retention.ms"]!.source).toBe("default");

    await admin.deleteTopics(["adm"]);
    expect((await admin.listTopics()).map((t) => t.name)).not.toContain("adm");
  });

  it("reports per-topic errors as RillErrors of the catalog", async () => {
    await admin.createTopics([{ name: "dup", partitions: 1 }]);
    const dup = await admin.createTopics([{ name: "dup" }]).catch((e: unknown) => e);
    expect((dup as RillError).kind).toBe(Errors.TOPIC_ALREADY_EXISTS);
    const unknown = await admin.describeTopics(["no-such-topic"]).catch((e: unknown) => e);
    expect((unknown as RillError).kind).toBe(Errors.UNKNOWN_TOPIC_OR_PARTITION);
    expect((unknown as RillError).message).toContain('"no-such-topic"');
    const badConfig = await admin.createTopics([{ name: "bad-config", configs: { "retention.ms": "soon" } }]).catch((e: unknown) => e);
    expect((badConfig as RillError).kind).toBe(Errors.INVALID_CONFIG);
  });

  it("describes the cluster and looks offsets up", async () => {
    const c = await admin.describeCluster();
    expect(c.controllerId).toBe(1);
    expect(c.brokers).toEqual([expect.objectContaining({ nodeId: 1, address: bootstrap, fenced: false })]);
    await admin.createTopics([{ name: "offs", partitions: 1 }]);
    const [earliest, latest] = await admin.listOffsets([
      { topic: "offs", partition: 0, query: "earliest" },
      { topic: "offs", partition: 0, query: "latest" },
    ]);
    expect([earliest!.offset, latest!.offset]).toEqual([0, 0]);
  });
});

describe("Producer and Consumer", () => {
  it("round-trips keyed LZ4 batches: Kafka's partition for each key, order kept per partition", async () => {
    await admin.createTopics([{ name: "orders", partitions: 6 }]);
    const producer = new Producer({ bootstrap, compression: "lz4", lingerMs: 10 });
    const n = 3000;
    const records = Array.from({ length: n }, (_, i) => ({ key: `order-${i % 97}`, value: JSON.stringify({ id: i, amount: i * 3 }) }));
    const results = await Promise.all(records.map((r) => producer.send({ topic: "orders", ...r, headers: { source: "test" } })));
    await producer.close();
    results.forEach((res, i) => expect(res.partition).toBe(partitionForKey(Buffer.from(records[i]!.key), 6)));

    // The broker's own `records` path routes the same key to the same partition.
    const c = clients(bootstrap);
    const viaBroker = await call<unknown, ProduceResponse>(
      c.produce,
      "produce",
      msg(ProduceRequestSchema, { topic: "orders", records: [{ key: Buffer.from("order-5"), value: Buffer.from("x") }] }),
    );
    c.close();
    expect(viaBroker.records[0]!.partition).toBe(results[5]!.partition);

    const consumer = new Consumer({ bootstrap, maxWaitMs: 100 });
    consumer.assign(Array.from({ length: 6 }, (_, partition) => ({ topic: "orders", partition, offset: "earliest" as const })));
    const got = await readAll(consumer, n + 1);
    await consumer.close();
    expect(got).toHaveLength(n + 1);
    for (let p = 0; p < 6; p++) {
      const inP = got.filter((r) => r.partition === p && r.value!.toString() !== "x");
      const sent = results.flatMap((res, i) => (res.partition === p ? [{ offset: res.offset, value: records[i]!.value }] : []));
      expect(inP.map((r) => ({ offset: r.offset, value: r.value!.toString() }))).toEqual(sent);
    }
    expect(got[0]!.headers).toEqual([{ key: "source", value: Buffer.from("test") }]);
  });

  it("round-trips snappy, zstd and gzip batches: the SDK's producer writes them, its consumer decodes them (BATCHES)", async () => {
    for (const compression of ["snappy", "zstd", "gzip"] as const) {
      const topic = `codec-${compression}`;
      await admin.createTopics([{ name: topic, partitions: 1 }]);
      const producer = new Producer({ bootstrap, compression, lingerMs: 10 });
      const values = Array.from({ length: 500 }, (_, i) => `${compression}-${i}-${"v".repeat(i % 50)}`);
      await Promise.all(values.map((value, i) => producer.send({ topic, key: `k${i}`, value })));
      await producer.close();
      const consumer = new Consumer({ bootstrap, maxWaitMs: 100 });
      consumer.assign([{ topic, partition: 0, offset: "earliest" }]);
      const got = await readAll(consumer, values.length);
      await consumer.close();
      expect(
        got.map((r) => r.value!.toString()),
        compression,
      ).toEqual(values);
    }
  });

  it("spreads null-key records over partitions in whole batches (sticky)", async () => {
    await admin.createTopics([{ name: "sticky", partitions: 4 }]);
    const producer = new Producer({ bootstrap, batchBytes: 4096, lingerMs: 1000, random: new SeededRandom(SEED) });
    const results = await Promise.all(
      Array.from({ length: 400 }, (_, i) => producer.send({ topic: "sticky", value: `v${i}`.padEnd(100, "-") })),
    );
    await producer.close();
    const partitions = new Set(results.map((r) => r.partition));
    expect(partitions.size).toBeGreaterThan(1);
    let switches = 0;
    for (let i = 1; i < results.length; i++) if (results[i]!.partition !== results[i - 1]!.partition) switches++;
    expect(switches).toBeLessThan(results.length / 10); // batches, not record-by-record
  });

  it("holds at most bufferBytes while the broker is slower than the application", async () => {
    await admin.createTopics([{ name: "bounded", partitions: 1 }]);
    const producer = new Producer({ bootstrap, bufferBytes: 64 * 1024, batchBytes: 16 * 1024, lingerMs: 0 });
    let maxBuffered = 0;
    const value = "b".repeat(1000);
    const sends: Promise<unknown>[] = [];
    for (let i = 0; i < 2000; i++) {
      await producer.ready();
      sends.push(producer.send({ topic: "bounded", value }));
      maxBuffered = Math.max(maxBuffered, producer.bufferedBytes);
    }
    await Promise.all(sends);
    await producer.close();
    expect(maxBuffered).toBeLessThanOrEqual(64 * 1024);
    const [hw] = await admin.listOffsets([{ topic: "bounded", partition: 0, query: "latest" }]);
    expect(hw!.offset).toBe(2000);
  });

  it("seeks by offset (inside a batch), by timestamp, to earliest and to latest", async () => {
    await admin.createTopics([{ name: "seek", partitions: 1 }]);
    const producer = new Producer({ bootstrap, lingerMs: 50 });
    const t0 = 1_700_000_000_000;
    await Promise.all(Array.from({ length: 20 }, (_, i) => producer.send({ topic: "seek", value: `s${i}`, timestampMs: t0 + i * 1000 })));
    await producer.close();
    const tp = { topic: "seek", partition: 0 };
    const consumer = new Consumer({ bootstrap, maxWaitMs: 50 });
    consumer.assign([{ ...tp, offset: 13 }]);
    expect((await readAll(consumer, 2)).map((r) => r.offset)).toEqual([13, 14]);
    consumer.seek(tp, { timestampMs: t0 + 4500 });
    expect((await readAll(consumer, 1))[0]).toMatchObject({ offset: 5, timestampMs: t0 + 5000 });
    consumer.seek(tp, "earliest");
    expect(await consumer.position(tp)).toBe(0);
    consumer.seek(tp, "latest");
    expect(await consumer.position(tp)).toBe(20);
    consumer.seek(tp, { timestampMs: t0 + 10_000_000 });
    expect(await consumer.position(tp)).toBe(20);
    await consumer.close();
  });

  it("long-polls: a waiting consumer gets a record produced later", async () => {
    await admin.createTopics([{ name: "tail", partitions: 1 }]);
    const consumer = new Consumer({ bootstrap, maxWaitMs: 2000 });
    consumer.assign([{ topic: "tail", partition: 0 }]); // latest
    await consumer.position({ topic: "tail", partition: 0 });
    const producer = new Producer({ bootstrap });
    setTimeout(() => void producer.send({ topic: "tail", key: "k", value: "late" }), 200);
    const [r] = await readAll(consumer, 1);
    expect(r!.value!.toString()).toBe("late");
    await Promise.all([consumer.close(), producer.close()]);
  });

  it("reads a partition's many batches through pipelined fetches", async () => {
    await admin.createTopics([{ name: "bulk", partitions: 1 }]);
    const producer = new Producer({ bootstrap, batchBytes: 32 * 1024, compression: "lz4" });
    const n = 20_000;
    const sends: Promise<unknown>[] = [];
    for (let i = 0; i < n; i++) {
      await producer.ready();
      sends.push(producer.send({ topic: "bulk", value: `${i}`.padStart(100, "0") }));
    }
    await Promise.all(sends);
    await producer.close();
    const consumer = new Consumer({ bootstrap, maxWaitMs: 100, partitionBytesMax: 64 * 1024 });
    consumer.assign([{ topic: "bulk", partition: 0, offset: "earliest" }]);
    let expected = 0;
    for await (const r of consumer) {
      expect(r.offset).toBe(expected);
      expect(Number(r.value!.toString())).toBe(expected);
      if (++expected === n) break;
    }
    await consumer.close();
  });

  it("fails fast for an unknown topic", async () => {
    const producer = new Producer({ bootstrap });
    const e = await producer.send({ topic: "never-created", value: "x" }).catch((x: unknown) => x);
    expect((e as RillError).kind).toBe(Errors.UNKNOWN_TOPIC_OR_PARTITION);
    await producer.close();
    const consumer = new Consumer({ bootstrap });
    consumer.assign([{ topic: "never-created", partition: 0, offset: "earliest" }]);
    await expect(readAll(consumer, 1)).rejects.toThrow(/never-created/);
    await consumer.close();
  });
});

describe("failures", () => {
  it("reports a broker that is not running, naming the address", async () => {
    const s = net.createServer();
    await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
    const port = (s.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => s.close(() => resolve()));
    const producer = new Producer({ bootstrap: `127.0.0.1:${port}`, retry: fastRetry });
    const e = await producer.send({ topic: "t", value: "x" }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ConnectionError);
    expect((e as Error).message).toBe(`cannot reach broker at 127.0.0.1:${port}: connection refused`);
    await producer.close();
  });

  it("retries sends through a broker restart on the same address", async () => {
    const restartDir = tmpDir("rill-client-restart-");
    let b = await Broker.start({ dataDir: restartDir, listen: "127.0.0.1:0" });
    const address = b.address;
    const a = new Admin({ bootstrap: address });
    await a.createTopics([{ name: "r", partitions: 1 }]);
    await a.close();
    const producer = new Producer({ bootstrap: address, retry: { retries: 20, initialBackoffMs: 50, backoffMsMax: 200 } });
    await producer.send({ topic: "r", value: "before" });
    await b.close();
    const during = producer.send({ topic: "r", value: "during" });
    await new Promise((r) => setTimeout(r, 300));
    b = await Broker.start({ dataDir: restartDir, listen: address });
    try {
      await expect(during).resolves.toMatchObject({ partition: 0, offset: 1 });
      await producer.close();
      const consumer = new Consumer({ bootstrap: address, maxWaitMs: 50 });
      consumer.assign([{ topic: "r", partition: 0, offset: "earliest" }]);
      expect((await readAll(consumer, 2)).map((r) => r.value!.toString())).toEqual(["before", "during"]);
      await consumer.close();
    } finally {
      await b.close();
      rmTmp(restartDir);
    }
  });
});
