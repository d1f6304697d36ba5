import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../../src/base/clock.ts";
import { Errors, RillError } from "../../../src/base/errors.ts";
import { partitionForKey } from "../../../src/base/murmur2.ts";
import { SeededRandom, seedFromEnv } from "../../../src/base/random.ts";
import { Producer, type ProducerOptions } from "../../../src/client/producer.ts";
import { Acks } from "../../../src/gen/rill/v1/produce_service_pb.ts";
import { Compression, decodeRecords, readBatchHeader } from "../../../src/storage/record-batch.ts";
import { FakeTransport } from "./fake-transport.ts";

const SEED = seedFromEnv();
beforeAll(() => console.log(`producer tests SEED=${SEED}`));

const fastRetry = { retries: 3, initialBackoffMs: 1, maxBackoffMs: 5, jitter: 0 };
let open: Producer[] = [];

function setup(opts: Partial<ProducerOptions> = {}, partitions = 1): { fake: FakeTransport; producer: Producer } {
  const fake = new FakeTransport();
  fake.createTopic("t", partitions);
  const producer = new Producer({ transport: fake, random: new SeededRandom(SEED), retry: fastRetry, lingerMs: 5, ...opts });
  open.push(producer);
  return { fake, producer };
}

afterEach(async () => {
  await Promise.allSettled(open.map((p) => p.close()));
  open = [];
});

/** Values of every record stored in a partition, in offset order. */
function storedValues(fake: FakeTransport, partition = 0, topic = "t"): string[] {
  return fake.log(topic, partition).flatMap((b) => decodeRecords(b.bytes).map((r) => r.value!.toString()));
}

describe("Producer batching", () => {
  it("puts records sent together into one batch per partition, offsets in send order", async () => {
    const { fake, producer } = setup({ lingerMs: 20 });
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => producer.send({ topic: "t", value: `v${i}` })));
    expect(results.map((r) => r.offset)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(fake.produced).toHaveLength(1);
    expect(storedValues(fake)).toEqual(Array.from({ length: 100 }, (_, i) => `v${i}`));
    const h = readBatchHeader(fake.produced[0]!.batch);
    expect([h.recordCount, h.producerId, h.compression]).toEqual([100, -1, Compression.NONE]);
  });

  it("seals a batch at batchBytes", async () => {
    const { fake, producer } = setup({ batchBytes: 4096, lingerMs: 1000 });
    const value = "x".repeat(1000);
    await Promise.all(Array.from({ length: 10 }, () => producer.send({ topic: "t", value })));
    expect(fake.produced.length).toBeGreaterThanOrEqual(3);
    for (const p of fake.produced) expect(p.batch.length).toBeLessThanOrEqual(4096);
    expect(fake.log("t", 0).reduce((n, b) => n + readBatchHeader(b.bytes).recordCount, 0)).toBe(10);
  });

  it("gives a record larger than batchBytes a batch of its own", async () => {
    const { fake, producer } = setup({ batchBytes: 1024 });
    const r = await producer.send({ topic: "t", value: "y".repeat(5000) });
    expect(r.offset).toBe(0);
    expect(readBatchHeader(fake.produced[0]!.batch).recordCount).toBe(1);
  });

  it("waits lingerMs before sending a lone record, and flush() sends at once", async () => {
    const { fake, producer } = setup({ lingerMs: 10_000 });
    const sent = producer.send({ topic: "t", value: "a" });
    await new Promise((r) => setTimeout(r, 50));
    expect(fake.produced).toHaveLength(0);
    await producer.flush();
    expect(fake.produced).toHaveLength(1);
    await expect(sent).resolves.toMatchObject({ partition: 0, offset: 0 });
  });

  it("compresses with LZ4 when asked, and the batch decodes to the records", async () => {
    const { fake, producer } = setup({ compression: "lz4" });
    await Promise.all(Array.from({ length: 50 }, (_, i) => producer.send({ topic: "t", key: `k${i}`, value: "abc".repeat(50), headers: [{ key: "h", value: "1" }] })));
    const h = readBatchHeader(fake.produced[0]!.batch);
    expect(h.compression).toBe(Compression.LZ4);
    const records = decodeRecords(fake.log("t", 0)[0]!.bytes);
    expect(records[7]).toMatchObject({ offset: 7, key: Buffer.from("k7"), value: Buffer.from("abc".repeat(50)) });
    expect(records[7]!.headers).toEqual([{ key: "h", value: Buffer.from("1") }]);
  });

  it("stamps records with the producer's clock unless they carry a timestamp", async () => {
    const clock = new ManualClock(1_234_000);
    const { fake, producer } = setup({ clock });
    const [a, b] = await Promise.all([producer.send({ topic: "t", value: "a" }), producer.send({ topic: "t", value: "b", timestampMs: 99 })]);
    expect([a.timestampMs, b.timestampMs]).toEqual([1_234_000, 99]);
    expect(decodeRecords(fake.log("t", 0)[0]!.bytes).map((r) => r.timestampMs)).toEqual([1_234_000, 99]);
  });

  it("maps acks to the request and resolves offset -1 with acks none", async () => {
    for (const [acks, wire] of [["all", Acks.ALL], ["leader", Acks.LEADER], ["none", Acks.NONE]] as const) {
      const { fake, producer } = setup({ acks });
      const r = await producer.send({ topic: "t", value: "a" });
      expect(fake.produced[0]!.request.acks).toBe(wire);
      expect(r.offset).toBe(acks === "none" ? -1 : 0);
    }
  });
});

describe("Producer partitioning", () => {
  it("routes keyed records with Kafka's murmur2 partitioner", async () => {
    const { producer } = setup({}, 6);
    const keys = Array.from({ length: 40 }, (_, i) => `key-${i}`);
    const results = await Promise.all(keys.map((key) => producer.send({ topic: "t", key, value: "v" })));
    results.forEach((r, i) => expect(r.partition).toBe(partitionForKey(Buffer.from(keys[i]!), 6)));
    // Byte keys hash the same as their UTF-8 string.
    const bytes = await producer.send({ topic: "t", key: Buffer.from("key-3"), value: "v" });
    expect(bytes.partition).toBe(results[3]!.partition);
  });

  it("keeps null-key records on one sticky partition until a batch is sealed, then moves", async () => {
    const { producer } = setup({ lingerMs: 1000, batchBytes: 2048 }, 4);
    const value = "z".repeat(300);
    const results = await Promise.all(Array.from({ length: 40 }, () => producer.send({ topic: "t", value })));
    // Runs of consecutive records share a partition; a run ends only when its batch was sealed.
    const runs: number[][] = [];
    for (const r of results) {
      if (runs.length === 0 || runs[runs.length - 1]![0] !== r.partition) runs.push([r.partition]);
      else runs[runs.length - 1]!.push(r.partition);
    }
    expect(runs.length).toBeGreaterThan(1);
    for (const run of runs.slice(0, -1)) expect(run.length).toBeGreaterThanOrEqual(5); // a full batch each
    for (let i = 1; i < runs.length; i++) expect(runs[i]![0]).not.toBe(runs[i - 1]![0]);
  });

  it("sends to an explicit partition, and rejects one beyond the topic", async () => {
    const { producer } = setup({}, 3);
    await expect(producer.send({ topic: "t", key: "k", value: "v", partition: 2 })).resolves.toMatchObject({ partition: 2 });
    const e = await producer.send({ topic: "t", value: "v", partition: 3 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RillError);
    expect((e as RillError).message).toMatch(/partition: 3 is not in \[0, 3\)/);
  });

  it("rejects records for an unknown topic at once", async () => {
    const { fake, producer } = setup();
    const e = await producer.send({ topic: "nope", value: "v" }).catch((x: unknown) => x);
    expect((e as RillError).kind).toBe(Errors.UNKNOWN_TOPIC_OR_PARTITION);
    expect(fake.describeTopicsCalls).toBe(1);
  });

  it("rejects bad input before queuing it", async () => {
    const { producer } = setup();
    await expect(producer.send({ topic: "", value: "v" })).rejects.toThrow(/topic/);
    await expect(producer.send({ topic: "t", value: 5 as unknown as string })).rejects.toThrow(/value/);
    await expect(producer.send({ topic: "t", value: "v", partition: -1 })).rejects.toThrow(/partition/);
    await expect(producer.send({ topic: "t", value: "v", headers: [{ key: 1 as unknown as string, value: null }] })).rejects.toThrow(/headers\[0\]\.key/);
  });
});

describe("Producer retries", () => {
  it("retries retriable partition errors with the same bytes, then succeeds", async () => {
    const { fake, producer } = setup();
    let n = 0;
    fake.produceHook = () => (++n <= 2 ? { kind: "partition-error", error: Errors.NOT_LEADER_OR_FOLLOWER } : { kind: "append" });
    await expect(producer.send({ topic: "t", value: "a" })).resolves.toMatchObject({ offset: 0 });
    expect(fake.produced).toHaveLength(3);
    expect(fake.produced[1]!.batch.equals(fake.produced[0]!.batch)).toBe(true);
    expect(storedValues(fake)).toEqual(["a"]);
  });

  it("fails at once on an error that is not retriable", async () => {
    const { fake, producer } = setup();
    fake.produceHook = () => ({ kind: "partition-error", error: Errors.MESSAGE_TOO_LARGE });
    const e = await producer.send({ topic: "t", value: "a" }).catch((x: unknown) => x);
    expect((e as RillError).kind).toBe(Errors.MESSAGE_TOO_LARGE);
    expect(fake.produced).toHaveLength(1);
  });

  it("gives up after `retries` retries", async () => {
    const { fake, producer } = setup();
    fake.produceHook = () => ({ kind: "request-error", error: Errors.LEADER_NOT_AVAILABLE });
    const e = await producer.send({ topic: "t", value: "a" }).catch((x: unknown) => x);
    expect((e as RillError).kind).toBe(Errors.LEADER_NOT_AVAILABLE);
    expect(fake.produced).toHaveLength(1 + fastRetry.retries);
  });

  it("re-sends on a new stream when the stream breaks", async () => {
    const { fake, producer } = setup();
    let n = 0;
    fake.produceHook = () => (++n === 1 ? { kind: "break-stream" } : { kind: "append" });
    await expect(producer.send({ topic: "t", value: "a" })).resolves.toMatchObject({ offset: 0 });
    expect(fake.streamsOpened).toBe(2);
  });

  it("treats a response with a request_id that is not outstanding as a broken stream", async () => {
    const { fake, producer } = setup();
    let n = 0;
    fake.produceHook = () => (++n === 1 ? { kind: "wrong-id" } : { kind: "append" });
    await expect(producer.send({ topic: "t", value: "a" })).resolves.toBeDefined();
    expect(fake.streamsOpened).toBe(2);
  });

  it("refreshes metadata when the broker says the partition is unknown", async () => {
    const { fake, producer } = setup();
    await producer.send({ topic: "t", value: "warm-up" });
    const before = fake.describeTopicsCalls;
    let n = 0;
    fake.produceHook = () => (++n === 1 ? { kind: "partition-error", error: Errors.UNKNOWN_TOPIC_OR_PARTITION } : { kind: "append" });
    await producer.send({ topic: "t", value: "a" });
    await producer.send({ topic: "t", value: "b" });
    expect(fake.describeTopicsCalls).toBe(before + 1);
  });

  it("keeps per-partition order while a batch is retried: one batch in flight per partition", async () => {
    const rnd = new SeededRandom(SEED);
    const { fake, producer } = setup({ batchBytes: 1024, lingerMs: 1 }, 2);
    const inFlight = new Map<number, number>();
    let maxInFlight = 0;
    fake.produceHook = (r) => {
      const p = r.request.partition!;
      inFlight.set(p, (inFlight.get(p) ?? 0) + 1);
      maxInFlight = Math.max(maxInFlight, inFlight.get(p)!);
      setImmediate(() => inFlight.set(p, inFlight.get(p)! - 1));
      return rnd.next() < 0.3 ? { kind: "partition-error", error: Errors.NOT_LEADER_OR_FOLLOWER } : { kind: "append" };
    };
    const sends = Array.from({ length: 200 }, (_, i) => producer.send({ topic: "t", partition: i % 2, value: `${i % 2}:${i}`.padEnd(100, ".") }));
    const settled = await Promise.allSettled(sends);
    expect(maxInFlight).toBe(1);
    for (const partition of [0, 1]) {
      const ok = settled.flatMap((s, i) => (s.status === "fulfilled" && i % 2 === partition ? [`${partition}:${i}`.padEnd(100, ".")] : []));
      expect(storedValues(fake, partition)).toEqual(ok); // stored in send order, nothing twice
    }
  });
});

describe("Producer pipelining and backpressure", () => {
  it("pipelines batches of different partitions on one stream, up to maxInFlightRequests", async () => {
    const { fake, producer } = setup({ maxInFlightRequests: 3 }, 5);
    fake.produceHook = () => ({ kind: "hold" });
    const sends = [0, 1, 2, 3, 4].map((partition) => producer.send({ topic: "t", partition, value: "v" }));
    await new Promise((r) => setTimeout(r, 50));
    expect(fake.produced).toHaveLength(3);
    expect(fake.streamsOpened).toBe(1);
    fake.produceHook = () => ({ kind: "append" });
    fake.releaseHeld();
    await Promise.all(sends);
    expect(fake.produced).toHaveLength(5);
  });

  it("never holds more than bufferBytes: send waits for space, ready() too", async () => {
    const { fake, producer } = setup({ bufferBytes: 4096, batchBytes: 1024, lingerMs: 0 }, 1);
    fake.produceHook = () => ({ kind: "hold" });
    const value = "w".repeat(400);
    let maxBuffered = 0;
    const sends = Array.from({ length: 40 }, () => producer.send({ topic: "t", value }));
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 10));
      maxBuffered = Math.max(maxBuffered, producer.bufferedBytes);
    }
    expect(producer.bufferedBytes).toBeGreaterThan(3000);
    expect(maxBuffered).toBeLessThanOrEqual(4096);
    let ready = false;
    const readyP = producer.ready().then(() => (ready = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(ready).toBe(false);
    fake.produceHook = () => ({ kind: "append" });
    while (fake.heldCount > 0 || producer.bufferedBytes > 0) {
      fake.releaseHeld();
      maxBuffered = Math.max(maxBuffered, producer.bufferedBytes);
      await new Promise((r) => setTimeout(r, 5));
    }
    await readyP;
    const results = await Promise.all(sends);
    expect(results.map((r) => r.offset)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(maxBuffered).toBeLessThanOrEqual(4096);
  });

  it("rejects a record larger than the whole buffer", async () => {
    const { producer } = setup({ bufferBytes: 2048 });
    const e = await producer.send({ topic: "t", value: "q".repeat(5000) }).catch((x: unknown) => x);
    expect((e as RillError).kind).toBe(Errors.MESSAGE_TOO_LARGE);
  });

  it("close() flushes what was sent, then refuses new records", async () => {
    const { fake, producer } = setup({ lingerMs: 10_000 });
    const sent = producer.send({ topic: "t", value: "last" });
    await producer.close();
    await expect(sent).resolves.toMatchObject({ offset: 0 });
    await expect(producer.send({ topic: "t", value: "late" })).rejects.toThrow(/producer is closed/);
    expect(fake.closed).toBe(false); // a transport given in the options is not closed
  });

  it("flush() waits only for records sent before it", async () => {
    const { fake, producer } = setup({ lingerMs: 10_000 }, 2);
    const first = producer.send({ topic: "t", partition: 0, value: "a" });
    const flushed = producer.flush();
    const second = producer.send({ topic: "t", partition: 1, value: "b" }); // lingers
    await flushed;
    await expect(first).resolves.toBeDefined();
    expect(fake.log("t", 1)).toHaveLength(0);
    await producer.flush();
    await expect(second).resolves.toMatchObject({ partition: 1, offset: 0 });
  });
});
