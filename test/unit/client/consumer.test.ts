import { afterEach, describe, expect, it, vi } from "vitest";
import { Errors, RillError } from "../../../src/base/errors.ts";
import { SeededRandom } from "../../../src/base/random.ts";
import { type ConsumerRecord, Consumer, type ConsumerOptions } from "../../../src/client/consumer.ts";
import { Compression, encodeBatch } from "../../../src/protocol/record-batch.ts";
import { badGzipBatch } from "../service/corrupt-batches.ts";
import { FakeTransport, detail } from "./fake-transport.ts";

const T0 = 1_700_000_000_000;
let open: Consumer[] = [];

afterEach(async () => {
  await Promise.allSettled(open.map((c) => c.close()));
  open = [];
});

function setup(opts: Partial<ConsumerOptions> = {}, partitions = 1): { fake: FakeTransport; consumer: Consumer } {
  const fake = new FakeTransport();
  fake.createTopic("t", partitions);
  const consumer = new Consumer({
    transport: fake,
    random: new SeededRandom(1),
    maxWaitMs: 20,
    retry: { retries: 2, initialBackoffMs: 1, backoffMsMax: 2 },
    ...opts,
  });
  open.push(consumer);
  return { fake, consumer };
}

/** Appends a batch of values `prefix-i` with timestamps T0 + `tsBase` + i. */
function appendValues(fake: FakeTransport, partition: number, values: string[], tsBase = 0, compression: number = Compression.NONE): void {
  const batch = encodeBatch(
    values.map((value, i) => ({ key: `k-${value}`, value, timestampMs: T0 + tsBase + i, headers: [{ key: "n", value: String(i) }] })),
    { compression },
  );
  fake.append("t", partition, batch);
}

async function take(consumer: Consumer, n: number): Promise<ConsumerRecord[]> {
  const out: ConsumerRecord[] = [];
  if (n === 0) return out;
  for await (const r of consumer) {
    out.push(r);
    if (out.length === n) break;
  }
  return out;
}

/** Answers the next `n` fetches OFFSET_NOT_AVAILABLE (a new leader not knowing its high watermark); counts them. */
function refuseFetches(fake: FakeTransport, n: number, message: string): { count: number } {
  const refusals = { count: 0 };
  fake.fetchHook = (req) => {
    if (refusals.count === n) return undefined;
    refusals.count++;
    return {
      partitions: (req.partitions ?? []).map((p) => ({
        topic: "t",
        partition: p.partition ?? 0,
        nextOffset: p.offset ?? 0n,
        highWatermark: -1n,
        error: detail(Errors.OFFSET_NOT_AVAILABLE, message),
      })),
    };
  };
  return refusals;
}

const range = (n: number, prefix = "v"): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

describe("Consumer", () => {
  it("reads assigned partitions from the earliest offset, decoding keys, values, headers", async () => {
    const { fake, consumer } = setup({}, 2);
    appendValues(fake, 0, range(5, "a"));
    appendValues(fake, 1, range(3, "b"), 0, Compression.LZ4);
    consumer.assign([
      { topic: "t", partition: 0, offset: "earliest" },
      { topic: "t", partition: 1, offset: "earliest" },
    ]);
    const got = await take(consumer, 8);
    const p0 = got.filter((r) => r.partition === 0);
    const p1 = got.filter((r) => r.partition === 1);
    expect(p0.map((r) => [r.offset, r.value!.toString()])).toEqual(range(5, "a").map((v, i) => [i, v]));
    expect(p1.map((r) => r.value!.toString())).toEqual(range(3, "b"));
    expect(p1[2]).toMatchObject({ topic: "t", partition: 1, offset: 2, timestampMs: T0 + 2 });
    expect(p1[2]!.key!.toString()).toBe("k-b2");
    expect(p1[2]!.headers).toEqual([{ key: "n", value: Buffer.from("2") }]);
  });

  it("skips the records of a fetched batch below the position it seeks to", async () => {
    const { fake, consumer } = setup();
    appendValues(fake, 0, range(10));
    consumer.assign([{ topic: "t", partition: 0, offset: 6 }]);
    const got = await take(consumer, 4);
    expect(got.map((r) => r.offset)).toEqual([6, 7, 8, 9]);
    expect(await consumer.position({ topic: "t", partition: 0 })).toBe(10);
  });

  it("starts at the end by default (autoOffsetReset latest) and sees only new records", async () => {
    const { fake, consumer } = setup();
    appendValues(fake, 0, range(3, "old"));
    consumer.assign([{ topic: "t", partition: 0 }]);
    expect(await consumer.position({ topic: "t", partition: 0 })).toBe(3);
    setTimeout(() => appendValues(fake, 0, ["new0"]), 30);
    const got = await take(consumer, 1);
    expect(got.map((r) => [r.offset, r.value!.toString()])).toEqual([[3, "new0"]]);
  });

  it("seeks to the first record at or after a timestamp, and to the end when none is that recent", async () => {
    const { fake, consumer } = setup();
    appendValues(fake, 0, range(3, "x"), 0);
    appendValues(fake, 0, range(3, "y"), 1000);
    consumer.assign([{ topic: "t", partition: 0, offset: { timestampMs: T0 + 500 } }]);
    expect(await consumer.position({ topic: "t", partition: 0 })).toBe(3);
    consumer.seek({ topic: "t", partition: 0 }, { timestampMs: T0 + 99_999 });
    expect(await consumer.position({ topic: "t", partition: 0 })).toBe(6);
  });

  it("keeps the next fetch in flight while the application consumes", async () => {
    const { fake, consumer } = setup({ partitionBytesMax: 1 });
    for (let i = 0; i < 4; i++) appendValues(fake, 0, [`b${i}`]);
    consumer.assign([{ topic: "t", partition: 0, offset: 0 }]);
    const it = consumer[Symbol.asyncIterator]();
    const first = await it.next();
    expect(first.value!.offset).toBe(0);
    // One batch per fetch (partitionBytesMax 1): while record 0 is held, fetch 2 is already sent.
    await new Promise((r) => setTimeout(r, 10));
    expect(fake.fetches).toHaveLength(2);
    expect(Number(fake.fetches[1]!.partitions![0]!.offset)).toBe(1);
    const rest = [await it.next(), await it.next(), await it.next()].map((r) => r.value!.offset);
    expect(rest).toEqual([1, 2, 3]);
    await it.return();
  });

  it("drops data fetched before a seek made during iteration", async () => {
    const { fake, consumer } = setup({ partitionBytesMax: 1 });
    for (let i = 0; i < 6; i++) appendValues(fake, 0, [`s${i}`]);
    consumer.assign([{ topic: "t", partition: 0, offset: 0 }]);
    const seen: number[] = [];
    for await (const r of consumer) {
      seen.push(r.offset);
      if (r.offset === 1) consumer.seek({ topic: "t", partition: 0 }, 4);
      if (r.offset === 5) break;
    }
    expect(seen).toEqual([0, 1, 4, 5]);
  });

  it("resets to earliest on OFFSET_OUT_OF_RANGE when told to", async () => {
    const { fake, consumer } = setup({ autoOffsetReset: "earliest" });
    appendValues(fake, 0, range(3));
    consumer.assign([{ topic: "t", partition: 0, offset: 50 }]);
    const got = await take(consumer, 3);
    expect(got.map((r) => r.offset)).toEqual([0, 1, 2]);
  });

  it("throws OFFSET_OUT_OF_RANGE with autoOffsetReset none", async () => {
    const { fake, consumer } = setup({ autoOffsetReset: "none" });
    appendValues(fake, 0, range(3));
    consumer.assign([{ topic: "t", partition: 0, offset: 50 }]);
    const e = await take(consumer, 1).catch((x: unknown) => x);
    expect((e as RillError).kind).toBe(Errors.OFFSET_OUT_OF_RANGE);
  });

  it("throws CORRUPT_MESSAGE for a batch whose CRC does not match", async () => {
    const { fake, consumer } = setup();
    appendValues(fake, 0, range(3));
    const stored = fake.log("t", 0)[0]!.bytes;
    stored[stored.length - 1]! ^= 0xff;
    consumer.assign([{ topic: "t", partition: 0, offset: 0 }]);
    const e = await take(consumer, 1).catch((x: unknown) => x);
    expect((e as RillError).kind).toBe(Errors.CORRUPT_MESSAGE);
  });

  it("throws an unknown topic's error from the iterator", async () => {
    const { consumer } = setup();
    consumer.assign([{ topic: "missing", partition: 0, offset: "earliest" }]);
    const e = await take(consumer, 1).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RillError);
    expect((e as RillError).kind).toBe(Errors.UNKNOWN_TOPIC_OR_PARTITION);
  });

  it("retries fetches through a short outage, then gives up with a ConnectionError", async () => {
    const { fake, consumer } = setup();
    appendValues(fake, 0, range(2));
    consumer.assign([{ topic: "t", partition: 0, offset: 0 }]);
    fake.down = true;
    setTimeout(() => (fake.down = false), 2);
    expect((await take(consumer, 2)).map((r) => r.offset)).toEqual([0, 1]);
    fake.down = true;
    await expect(take(consumer, 1)).rejects.toThrow(/cannot reach broker at 127\.0\.0\.1:1/);
  });

  it("asks a partition whose new leader does not know its high watermark yet (OFFSET_NOT_AVAILABLE) again, beyond its retries", async () => {
    const { fake, consumer } = setup(); // 2 retries
    appendValues(fake, 0, range(2));
    const refusals = refuseFetches(fake, 5, "t-0: broker 1 became leader at offset 2 and its high watermark (0) has not reached it yet");
    consumer.assign([{ topic: "t", partition: 0, offset: 0 }]);
    expect((await take(consumer, 2)).map((r) => r.offset)).toEqual([0, 1]);
    expect(refusals.count).toBe(5);
  });

  it("fetches a partition again after its backoff even when the backoff ends between two clock readings (it waited for good)", async () => {
    const { fake, consumer } = setup({}, 1); // backoffs of 1-2 ms
    appendValues(fake, 0, range(2));
    const refusals = refuseFetches(fake, 3, "t-0: not yet");
    // A pause of one second (a collection on a loaded machine) just before the consumer looks for
    // the end of the next backoff, after it found the partition still backing off: it must not
    // then wait for a wake-up that never comes.
    const realNow = Date.now.bind(Date);
    let skew = 0;
    const spy = vi.spyOn(Date, "now").mockImplementation(() => {
      if (new Error().stack?.includes("nextBackoffEndMs")) skew += 1000;
      return realNow() + skew;
    });
    consumer.assign([{ topic: "t", partition: 0, offset: 0 }]);
    try {
      const got = await Promise.race([
        take(consumer, 2).then((rs) => rs.map((r) => r.offset)),
        new Promise<string>((resolve) => setTimeout(() => resolve(`stuck after ${refusals.count} refusals`), 5_000)),
      ]);
      expect(got).toEqual([0, 1]);
      expect(refusals.count).toBe(3);
    } finally {
      spy.mockRestore();
    }
  });

  it("ends the iteration on close(), even while a fetch is waiting", async () => {
    const { consumer } = setup({ maxWaitMs: 60_000 });
    consumer.assign([{ topic: "t", partition: 0, offset: 0 }]);
    setTimeout(() => void consumer.close(), 30);
    const started = Date.now();
    expect(await take(consumer, 1)).toEqual([]);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(() => consumer.assign([])).toThrow(/consumer is closed/);
  });

  it("resumes from the last record given after the application leaves the loop", async () => {
    const { fake, consumer } = setup();
    appendValues(fake, 0, range(10));
    consumer.assign([{ topic: "t", partition: 0, offset: 0 }]);
    expect((await take(consumer, 3)).map((r) => r.offset)).toEqual([0, 1, 2]);
    expect((await take(consumer, 3)).map((r) => r.offset)).toEqual([3, 4, 5]);
  });

  it("checks its input", () => {
    const { consumer } = setup();
    expect(() => consumer.assign([{ topic: "t", partition: -1 }])).toThrow(/partition/);
    expect(() => consumer.assign([{ topic: "t", partition: 0, offset: -5 }])).toThrow(/offset/);
    expect(() => consumer.seek({ topic: "t", partition: 9 }, 0)).toThrow(/not assigned/);
    expect(() => new Consumer({ transport: new FakeTransport(), autoOffsetReset: "sometimes" as "none" })).toThrow(/autoOffsetReset/);
  });
});

describe("Consumer: batches that cannot be read", () => {
  /** A gzip batch whose deflate data is garbage, CRC consistent (it passes the fake broker's checks). */
  function appendBadGzip(fake: FakeTransport, partition: number, n: number): void {
    fake.append("t", partition, badGzipBatch(range(n, "x")));
  }

  it("throws CORRUPT_MESSAGE naming the partition and the batch's offset without skipCorrupt", async () => {
    const { fake, consumer } = setup();
    appendValues(fake, 0, range(2));
    appendBadGzip(fake, 0, 3);
    consumer.assign([{ topic: "t", partition: 0, offset: "earliest" }]);
    const got: string[] = [];
    const e = await (async () => {
      for await (const r of consumer) got.push(r.value!.toString());
    })().then(
      () => null,
      (err: unknown) => err,
    );
    expect(got).toEqual(["v0", "v1"]);
    expect((e as RillError).kind).toBe(Errors.CORRUPT_MESSAGE);
    expect((e as RillError).message).toContain("t-0: the batch at offset 2 cannot be read");
  });

  it("with skipCorrupt reports a batch it cannot decode and goes on after it", async () => {
    const reports: string[] = [];
    const { fake, consumer } = setup({
      skipCorrupt: true,
      onCorrupt: (r) => void reports.push(`${r.topic}-${r.partition} ${r.offset}..${r.nextOffset} ${r.error.kind.name}`),
    });
    appendValues(fake, 0, range(2));
    appendBadGzip(fake, 0, 3);
    appendValues(fake, 0, ["after"]);
    consumer.assign([{ topic: "t", partition: 0, offset: "earliest" }]);
    const got = await take(consumer, 3);
    expect(got.map((r) => `${r.offset}:${r.value}`)).toEqual(["0:v0", "1:v1", "5:after"]);
    expect(reports).toEqual(["t-0 2..5 CORRUPT_MESSAGE"]);
  });

  it("with skipCorrupt moves past a batch the broker reports corrupt (to its next_offset); other partitions keep flowing", async () => {
    const reports: string[] = [];
    const { fake, consumer } = setup(
      { skipCorrupt: true, onCorrupt: (r) => void reports.push(`${r.partition} ${r.offset}..${r.nextOffset}`) },
      2,
    );
    appendValues(fake, 0, range(3));
    appendValues(fake, 0, ["after"]);
    appendValues(fake, 1, ["h"]);
    let answered = false;
    fake.fetchHook = (req) => {
      const p0 = req.partitions?.find((p) => p.partition === 0);
      if (answered || p0 === undefined || p0.offset !== 0n) return undefined;
      answered = true;
      return {
        partitions: (req.partitions ?? []).map((p) =>
          p.partition === 0
            ? {
                topic: "t",
                partition: 0,
                nextOffset: 3n,
                error: detail(Errors.CORRUPT_MESSAGE, "t-0: the batch at offset 0 cannot be read"),
              }
            : { topic: "t", partition: p.partition ?? 0, nextOffset: p.offset ?? 0n },
        ),
      };
    };
    consumer.assign([
      { topic: "t", partition: 0, offset: "earliest" },
      { topic: "t", partition: 1, offset: "earliest" },
    ]);
    const got = await take(consumer, 2);
    expect(got.map((r) => `${r.partition}:${r.offset}:${r.value}`).sort()).toEqual(["0:3:after", "1:0:h"]);
    expect(reports).toEqual(["0 0..3"]);
  });
});
