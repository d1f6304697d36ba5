import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../../src/base/clock.ts";
import { Errors, RillError } from "../../../src/base/errors.ts";
import { partitionForKey } from "../../../src/base/murmur2.ts";
import { SeededRandom, seedFromEnv } from "../../../src/base/random.ts";
import { SequenceCounter, sequenceRange } from "../../../src/client/idempotence.ts";
import { Producer, type ProducerOptions, type RecordMetadata } from "../../../src/client/producer.ts";
import { Acks } from "../../../src/gen/rill/v1/produce_service_pb.ts";
import { Compression, decodeRecords, readBatchHeader } from "../../../src/protocol/record-batch.ts";
import { FakeTransport } from "./fake-transport.ts";

const SEED = seedFromEnv();
beforeAll(() => console.log(`producer tests SEED=${SEED}`));

const fastRetry = { retries: 3, initialBackoffMs: 1, backoffMsMax: 5, jitter: 0 };
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
    expect([h.recordCount, h.compression]).toEqual([100, Compression.NONE]);
    expect([h.producerId, h.producerEpoch, h.baseSequence]).toEqual([1000, 0, 0]); // idempotent by default
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
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        producer.send({ topic: "t", key: `k${i}`, value: "abc".repeat(50), headers: [{ key: "h", value: "1" }] }),
      ),
    );
    const h = readBatchHeader(fake.produced[0]!.batch);
    expect(h.compression).toBe(Compression.LZ4);
    const records = decodeRecords(fake.log("t", 0)[0]!.bytes);
    expect(records[7]).toMatchObject({ offset: 7, key: Buffer.from("k7"), value: Buffer.from("abc".repeat(50)) });
    expect(records[7]!.headers).toEqual([{ key: "h", value: Buffer.from("1") }]);
  });

  it("stamps records with the producer's clock unless they carry a timestamp", async () => {
    const clock = new ManualClock(1_234_000);
    const { fake, producer } = setup({ clock });
    const [a, b] = await Promise.all([
      producer.send({ topic: "t", value: "a" }),
      producer.send({ topic: "t", value: "b", timestampMs: 99 }),
    ]);
    expect([a.timestampMs, b.timestampMs]).toEqual([1_234_000, 99]);
    expect(decodeRecords(fake.log("t", 0)[0]!.bytes).map((r) => r.timestampMs)).toEqual([1_234_000, 99]);
  });

  it("maps acks to the request and resolves offset -1 with acks none", async () => {
    for (const [acks, wire] of [
      ["all", Acks.ALL],
      ["leader", Acks.LEADER],
      ["none", Acks.NONE],
    ] as const) {
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
    await expect(producer.send({ topic: "t", value: "v", headers: [{ key: 1 as unknown as string, value: null }] })).rejects.toThrow(
      /headers\[0\]\.key/,
    );
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

  it("without idempotence keeps per-partition order while a batch is retried: one batch in flight per partition", async () => {
    const rnd = new SeededRandom(SEED);
    const { fake, producer } = setup({ batchBytes: 1024, lingerMs: 1, idempotent: false }, 2);
    const inFlight = new Map<number, number>();
    let inFlightMax = 0;
    fake.produceHook = (r) => {
      const p = r.request.partition!;
      inFlight.set(p, (inFlight.get(p) ?? 0) + 1);
      inFlightMax = Math.max(inFlightMax, inFlight.get(p)!);
      setImmediate(() => inFlight.set(p, inFlight.get(p)! - 1));
      return rnd.next() < 0.3 ? { kind: "partition-error", error: Errors.NOT_LEADER_OR_FOLLOWER } : { kind: "append" };
    };
    const sends = Array.from({ length: 200 }, (_, i) =>
      producer.send({ topic: "t", partition: i % 2, value: `${i % 2}:${i}`.padEnd(100, ".") }),
    );
    const settled = await Promise.allSettled(sends);
    expect(inFlightMax).toBe(1);
    for (const partition of [0, 1]) {
      const ok = settled.flatMap((s, i) => (s.status === "fulfilled" && i % 2 === partition ? [`${partition}:${i}`.padEnd(100, ".")] : []));
      expect(storedValues(fake, partition)).toEqual(ok); // stored in send order, nothing twice
    }
  });
});

describe("Producer pipelining and backpressure", () => {
  it("pipelines batches of different partitions on one stream, up to inFlightRequestsMax", async () => {
    const { fake, producer } = setup({ inFlightRequestsMax: 3 }, 5);
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

describe("Idempotent producer", () => {
  /** Sends `n` records of about 100 bytes to `partition` at once (metadata cached first), tagged `tag`. */
  async function burst(producer: Producer, n: number, tag: string, partition = 0): Promise<PromiseSettledResult<RecordMetadata>[]> {
    await producer.partitionCount("t");
    return Promise.allSettled(
      Array.from({ length: n }, (_, i) => producer.send({ topic: "t", partition, value: `${tag}${i}`.padEnd(100, ".") })),
    );
  }
  const headerOf = (r: { batch: Buffer }) => readBatchHeader(r.batch);

  it("stamps each batch with the producer id, epoch and the partition's next sequence", async () => {
    const { fake, producer } = setup({ batchBytes: 1024, lingerMs: 1 }, 2);
    await Promise.all(
      Array.from({ length: 100 }, (_, i) => producer.send({ topic: "t", partition: i % 2, value: `v${i}`.padEnd(100, ".") })),
    );
    expect(fake.inits).toEqual([{ transactionalId: "", producerId: undefined, producerEpoch: 0 }]);
    expect(producer.producerIdAndEpoch).toEqual({ producerId: 1000, producerEpoch: 0 });
    for (const partition of [0, 1]) {
      const headers = fake.produced.filter((r) => r.request.partition === partition).map(headerOf);
      let next = 0;
      for (const h of headers) {
        expect([h.producerId, h.producerEpoch, h.baseSequence]).toEqual([1000, 0, next]);
        next += h.recordCount;
      }
      expect(next).toBe(50);
    }
  });

  it("is off with idempotent: false (producer id -1, no InitProducerId) and follows Kafka's rule for acks and in-flight", async () => {
    const { fake, producer } = setup({ idempotent: false });
    await producer.send({ topic: "t", value: "a" });
    expect([headerOf(fake.produced[0]!).producerId, fake.inits.length, producer.idempotent]).toEqual([-1, 0, false]);
    expect(setup({ acks: "leader" }).producer.idempotent).toBe(false);
    expect(setup({ inFlightPerPartitionMax: 6 }).producer.idempotent).toBe(false);
    expect(setup({ inFlightPerPartitionMax: 5 }).producer.idempotent).toBe(true);
    expect(() => setup({ idempotent: true, acks: "leader" })).toThrow(/idempotent: true does not work with acks "leader"/);
    expect(() => setup({ idempotent: true, inFlightPerPartitionMax: 6 })).toThrow(
      /inFlightPerPartitionMax 6 \(idempotence allows at most 5\)/,
    );
    expect(() => setup({ idempotent: false, transactionalId: "x" })).toThrow(/transactionalId: needs an idempotent producer/);
  });

  it("sends a partition's first batch alone, then keeps up to 5 in flight (inFlightPerPartitionMax)", async () => {
    for (const [opts, expected] of [
      [{}, 5],
      [{ inFlightPerPartitionMax: 2 }, 2],
    ] as const) {
      const { fake, producer } = setup({ batchBytes: 1024, ...opts });
      fake.produceHook = () => ({ kind: "hold" });
      const first = burst(producer, 20, "f");
      await new Promise((r) => setTimeout(r, 30));
      expect(fake.produced).toHaveLength(1); // the broker takes any sequence from a producer it does not know yet
      fake.releaseHeld();
      while (producer.bufferedBytes > 0) {
        fake.releaseHeld();
        await new Promise((r) => setTimeout(r, 2));
      }
      await first;
      const before = fake.produced.length;
      const sends = burst(producer, 100, "h");
      await new Promise((r) => setTimeout(r, 30));
      expect(fake.produced.length - before).toBe(expected);
      fake.produceHook = () => ({ kind: "append" });
      while (fake.heldCount > 0 || producer.bufferedBytes > 0) {
        fake.releaseHeld();
        await new Promise((r) => setTimeout(r, 2));
      }
      expect((await sends).every((s) => s.status === "fulfilled")).toBe(true);
      expect(producer.stats.inFlightPerPartitionPeak).toBe(expected);
      expect(storedValues(fake).slice(20)).toEqual(Array.from({ length: 100 }, (_, i) => `h${i}`.padEnd(100, ".")));
    }
  });

  it("writes every record once and in order when answers are lost, streams break and batches fail retriably", { repeats: 4 }, async () => {
    const rnd = new SeededRandom(SEED);
    const { fake, producer } = setup({ batchBytes: 1024, lingerMs: 0, retry: { ...fastRetry, retries: 1000 } }, 3);
    fake.produceHook = () => {
      const x = rnd.next();
      if (x < 0.1) return { kind: "append-and-break" }; // written, answer lost
      if (x < 0.2) return { kind: "break-stream" }; // not written
      if (x < 0.25) return { kind: "partition-error", error: Errors.NOT_LEADER_OR_FOLLOWER };
      if (x < 0.3) return { kind: "append-then-error", error: Errors.REQUEST_TIMED_OUT }; // written anyway
      return { kind: "append" };
    };
    const values = Array.from({ length: 1500 }, (_, i) => `${i % 3}:${i}`.padEnd(100, "."));
    const results = await Promise.all(values.map((value, i) => producer.send({ topic: "t", partition: i % 3, value })));
    for (const partition of [0, 1, 2]) {
      const sent = values.filter((_, i) => i % 3 === partition);
      expect(storedValues(fake, partition)).toEqual(sent); // each once, in send order
      const offsets = results.filter((r) => r.partition === partition).map((r) => r.offset);
      expect(offsets).toEqual(sent.map((_, i) => i)); // a re-sent batch is answered with its original offsets
    }
    // Every re-send carried the same bytes as the first send of its sequence.
    const firstBytes = new Map<string, Buffer>();
    for (const r of fake.produced) {
      const key = `${r.request.partition}/${headerOf(r).baseSequence}`;
      const first = firstBytes.get(key);
      if (first === undefined) firstBytes.set(key, r.batch);
      else expect(r.batch.equals(first)).toBe(true);
    }
    expect(producer.stats.retries).toBeGreaterThan(0);
    expect(fake.inits).toHaveLength(1); // never needed a new epoch
  });

  it("re-sends the batches refused behind a failed one after it, in order (OUT_OF_ORDER_SEQUENCE is not a failure then)", async () => {
    const { fake, producer } = setup({ batchBytes: 1024, lingerMs: 0 });
    let n = 0;
    fake.produceHook = () => (++n === 2 ? { kind: "partition-error", error: Errors.NOT_LEADER_OR_FOLLOWER } : { kind: "append" });
    const settled = await burst(producer, 40, "r");
    expect(settled.every((s) => s.status === "fulfilled")).toBe(true);
    expect(storedValues(fake)).toEqual(Array.from({ length: 40 }, (_, i) => `r${i}`.padEnd(100, ".")));
    // The first batch went alone, then up to five; those behind the failed second one were
    // refused (OUT_OF_ORDER_SEQUENCE) and re-sent after it, in order.
    const sequences = fake.produced.map(headerOf).map((h) => h.baseSequence);
    const failed = sequences[1]!;
    const resent = sequences.slice(2).indexOf(failed) + 2;
    const refused = sequences.slice(2, resent);
    expect(refused.length).toBeGreaterThanOrEqual(2);
    expect(sequences.slice(resent, resent + refused.length + 1)).toEqual([failed, ...refused]);
    expect(sequences.slice(resent)).toEqual([...sequences.slice(resent)].sort((x, y) => x - y));
    expect(fake.inits).toHaveLength(1);
    expect(producer.stats.retries).toBeGreaterThanOrEqual(4);
  });

  it("fails the batches behind one that failed for good with a clear error, then bumps the epoch and goes on", async () => {
    const { fake, producer } = setup({ batchBytes: 1024, lingerMs: 0 });
    let n = 0;
    fake.produceHook = () => (++n === 2 ? { kind: "partition-error", error: Errors.MESSAGE_TOO_LARGE } : { kind: "append" });
    const settled = await burst(producer, 70, "g");
    // The first batch goes alone; then five are in flight when the second fails for good.
    const old = fake.produced.map(headerOf).filter((h) => h.producerEpoch === 0);
    expect(old).toHaveLength(6);
    const ends = old.map((_, k) => old.slice(0, k + 1).reduce((s, h) => s + h.recordCount, 0));
    const [firstBatch, failedEnd, gapEnd] = [ends[0]!, ends[1]!, ends[5]!];
    const reasons = settled.map((s) => (s.status === "rejected" ? (s.reason as RillError) : null));
    expect(reasons.slice(0, firstBatch).every((r) => r === null)).toBe(true);
    expect(reasons.slice(firstBatch, failedEnd).every((r) => r?.kind === Errors.MESSAGE_TOO_LARGE)).toBe(true);
    for (const r of reasons.slice(failedEnd, gapEnd)) {
      expect(r?.kind).toBe(Errors.OUT_OF_ORDER_SEQUENCE_NUMBER);
      expect(r?.message).toMatch(
        new RegExp(
          `^t-0: records not written: an earlier batch of the partition failed \\(sequences ${firstBatch}\\.\\.${failedEnd - 1}: .*\\), and the broker refuses later sequences rather than store them out of order; producer 1000 epoch 0, sequences `,
        ),
      );
    }
    expect(reasons.slice(gapEnd).every((r) => r === null)).toBe(true); // sent under the new epoch
    expect(fake.inits.map((i) => [i.producerId, i.producerEpoch])).toEqual([
      [undefined, 0],
      [1000n, 0],
    ]);
    const later = fake.produced.slice(6).map(headerOf);
    expect(later[0]).toMatchObject({ producerId: 1000, producerEpoch: 1, baseSequence: 0 });
    const ok = settled.flatMap((s, i) => (s.status === "fulfilled" ? [`g${i}`.padEnd(100, ".")] : []));
    expect(storedValues(fake)).toEqual(ok); // what was written is in send order
  });

  it("is fenced by a newer instance with the same transactionalId: pending and later sends fail, nothing retried", async () => {
    const { fake, producer: a } = setup({ transactionalId: "orders-writer", lingerMs: 0 });
    await a.send({ topic: "t", value: "a1" });
    const b = new Producer({ transport: fake, retry: fastRetry, transactionalId: "orders-writer", lingerMs: 0 });
    open.push(b);
    await b.send({ topic: "t", value: "b1" }); // epoch 1 written: epoch 0 is stale on this partition
    const requestsBefore = fake.produced.length;
    const settled = await burst(a, 20, "a");
    expect(settled.every((s) => s.status === "rejected" && (s.reason as RillError).kind === Errors.PRODUCER_FENCED)).toBe(true);
    expect(((settled[0] as PromiseRejectedResult).reason as Error).message).toMatch(
      /^producer 1000 epoch 0 is fenced: a newer instance holds its producer id.*INVALID_PRODUCER_EPOCH|producer_epoch: 0 is older/,
    );
    expect(fake.produced.length - requestsBefore).toBeLessThanOrEqual(5); // the ones in flight, no retry
    await expect(a.send({ topic: "t", value: "late" })).rejects.toMatchObject({ kind: Errors.PRODUCER_FENCED });
    await a.close(); // a fenced producer still closes
    expect(storedValues(fake)).toEqual(["a1", "b1"]);
  });

  it("starts over with a new producer id when the broker no longer knows the old one", async () => {
    const { fake, producer } = setup({ lingerMs: 0 });
    await producer.send({ topic: "t", value: "x1" });
    fake.producerEpochs.delete(1000);
    await expect(producer.send({ topic: "t", value: "x2" })).rejects.toMatchObject({ kind: Errors.UNKNOWN_PRODUCER_ID });
    await expect(producer.send({ topic: "t", value: "x3" })).resolves.toMatchObject({ offset: 1 });
    expect(producer.producerIdAndEpoch).toEqual({ producerId: 1001, producerEpoch: 0 });
    expect(fake.inits.map((i) => i.producerId)).toEqual([undefined, 1000n, undefined]);
  });

  it("fails the waiting sends when InitProducerId fails, and asks again for the next batch", async () => {
    const { fake, producer } = setup({ lingerMs: 0 });
    fake.initProducerIdHook = () => new RillError(Errors.INVALID_REQUEST, "not allowed");
    await expect(producer.send({ topic: "t", value: "a" })).rejects.toThrow(/^InitProducerId: not allowed/);
    fake.initProducerIdHook = null;
    await expect(producer.send({ topic: "t", value: "b" })).resolves.toMatchObject({ offset: 0 });
  });
});

describe("SequenceCounter", () => {
  it("hands out base sequences and wraps from 2^31-1 to 0, as Kafka", () => {
    const c = new SequenceCounter();
    expect([c.take(3), c.take(2), c.next]).toEqual([0, 3, 5]);
    const w = new SequenceCounter(2 ** 31 - 2);
    expect([w.take(5), w.next]).toEqual([2 ** 31 - 2, 3]);
    expect(sequenceRange(2 ** 31 - 2, 5)).toBe(`${2 ** 31 - 2}..2`);
  });
});
