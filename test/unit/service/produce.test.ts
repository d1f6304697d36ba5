import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { RillError, rillError } from "../../../src/base/errors.ts";
import { partitionForKey } from "../../../src/base/murmur2.ts";
import { initCodecs } from "../../../src/protocol/compression.ts";
import { COMPRESSION_CODEC_MASK, Compression, decodeRecords, encodeBatch, readBatchHeader } from "../../../src/protocol/record-batch.ts";
import { ProduceHandler } from "../../../src/service/produce.ts";
import {
  ProduceAcks,
  type LeaderForwarder,
  type ProduceInput,
  type ProduceRecord,
  type ProduceResult,
} from "../../../src/service/produce-types.ts";
import { RECORDS_MAX, TIMEOUT_MS_MAX } from "../../../src/service/produce-validate.ts";
import { checkInitProducerId, initProducerId } from "../../../src/service/producer-id.ts";
import { badBatches, goodBatch } from "../../fixtures/bad-batches.ts";
import { type Core, openCore, settle } from "./helpers.ts";

beforeAll(() => initCodecs()); // badBatches.garbageZstd compresses with zstd

const cores: Core[] = [];
afterEach(async () => {
  for (const c of cores.splice(0)) await c.close();
});

async function coreWith(topic: string, leaders: readonly number[], configs: Record<string, string> = {}): Promise<Core> {
  const core = openCore();
  cores.push(core);
  await core.topic(topic, leaders, configs);
  return core;
}

const rec = (key: string | null, value: string): ProduceRecord => ({
  key: key === null ? null : Buffer.from(key),
  value: Buffer.from(value),
  headers: [],
  timestampMs: null,
});

function input(over: Partial<ProduceInput> & { topic: string }): ProduceInput {
  return {
    partition: undefined,
    records: [],
    recordBatch: null,
    acks: ProduceAcks.LEADER,
    timeoutMs: 0,
    producerId: undefined,
    producerEpoch: 0,
    baseSequence: 0,
    ...over,
  };
}

/** The values stored in a partition, in offset order. */
function stored(core: Core, topic: string, partition: number): string[] {
  const d = core.rm.readPartition({ topic, partition, offset: 0, maxBytes: 1 << 20 });
  const out: string[] = [];
  for (const chunk of d.read?.chunks ?? []) {
    for (let pos = 0; pos < chunk.length; pos += readBatchHeader(chunk, pos).size) {
      for (const r of decodeRecords(chunk, pos)) out.push(r.value!.toString());
    }
  }
  return out;
}

/** Expects `p` to reject with a RillError of `name` whose message contains `text`. */
async function rejects(p: Promise<unknown>, name: string, text: string): Promise<void> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(RillError);
  expect((e as RillError).kind.name).toBe(name);
  expect((e as RillError).message).toContain(text);
}

describe("ProduceHandler: routing of records", () => {
  it("sends a keyed record to murmur2(key) % partitions, and stores it there", async () => {
    const core = await coreWith("t", [1, 1, 1, 1, 1]);
    const h = new ProduceHandler(core.rm);
    const keys = Array.from({ length: 40 }, (_, i) => `key-${i}`);
    const res = await h.produce(input({ topic: "t", records: keys.map((k) => rec(k, `v-${k}`)) }));
    const expected = keys.map((k) => partitionForKey(Buffer.from(k), 5));
    expect(new Set(expected).size).toBeGreaterThan(1); // the keys do spread, so a fixed partition would fail
    expect(res.records.map((r) => r.partition)).toEqual(expected);
    for (let p = 0; p < 5; p++) {
      expect(stored(core, "t", p)).toEqual(keys.filter((_, i) => expected[i] === p).map((k) => `v-${k}`));
    }
    // Offsets count per partition in input order.
    const seen = new Map<number, number>();
    for (const r of res.records) {
      expect(r.offset).toBe(seen.get(r.partition) ?? 0);
      seen.set(r.partition, r.offset + 1);
    }
    expect(res.partitions.map((p) => p.partition)).toEqual([...new Set(expected)].sort((a, b) => a - b));
  });

  it("puts the null-key records of one request on one sticky partition, which moves on with the next request", async () => {
    const core = await coreWith("t", [1, 1, 1]);
    const h = new ProduceHandler(core.rm);
    const first = await h.produce(input({ topic: "t", records: [rec(null, "a"), rec(null, "b"), rec(null, "c")] }));
    const p1 = first.records[0]!.partition;
    expect(first.records).toEqual([
      { partition: p1, offset: 0 },
      { partition: p1, offset: 1 },
      { partition: p1, offset: 2 },
    ]);
    const second = await h.produce(input({ topic: "t", records: [rec(null, "d")] }));
    const third = await h.produce(input({ topic: "t", records: [rec(null, "e")] }));
    const fourth = await h.produce(input({ topic: "t", records: [rec(null, "f")] }));
    const ps = [p1, second.records[0]!.partition, third.records[0]!.partition];
    expect(new Set(ps).size).toBe(3); // round robin over the three partitions
    expect(fourth.records[0]!.partition).toBe(p1);
    expect(stored(core, "t", p1)).toEqual(["a", "b", "c", "f"]);
  });

  it("mixes keyed and null-key records: keys by murmur2, the others on the sticky partition", async () => {
    const core = await coreWith("t", [1, 1, 1, 1]);
    const h = new ProduceHandler(core.rm);
    const res = await h.produce(input({ topic: "t", records: [rec(null, "a"), rec("k1", "b"), rec(null, "c")] }));
    expect(res.records[1]!.partition).toBe(partitionForKey(Buffer.from("k1"), 4));
    expect(res.records[2]!.partition).toBe(res.records[0]!.partition);
  });

  it("an explicit partition wins over the key", async () => {
    const core = await coreWith("t", [1, 1, 1, 1]);
    const h = new ProduceHandler(core.rm);
    const keys = ["a", "b", "c", "d", "e", "f"];
    const res = await h.produce(input({ topic: "t", partition: 2, records: keys.map((k) => rec(k, k)) }));
    expect(res.records.every((r) => r.partition === 2)).toBe(true);
    expect(res.partitions).toEqual([{ partition: 2, baseOffset: 0, logAppendTimeMs: -1, error: null }]);
    expect(stored(core, "t", 2)).toEqual(keys);
  });

  it("builds the batch with the topic's compression.type", async () => {
    const core = await coreWith("t", [1], { "compression.type": "lz4" });
    const h = new ProduceHandler(core.rm);
    await h.produce(input({ topic: "t", records: [rec("k", "x".repeat(500))] }));
    const chunk = core.rm.readPartition({ topic: "t", partition: 0, offset: 0, maxBytes: 1 << 20 }).read!.chunks[0]!;
    expect(readBatchHeader(chunk, 0).attributes & COMPRESSION_CODEC_MASK).toBe(Compression.LZ4);
    expect(stored(core, "t", 0)).toEqual(["x".repeat(500)]);
  });
});

describe("ProduceHandler: record batches", () => {
  it("appends a producer's batch as it is, to the named partition or else the sticky one", async () => {
    const core = await coreWith("t", [1, 1]);
    const h = new ProduceHandler(core.rm);
    const batch = encodeBatch([{ value: "one" }, { value: "two" }], { nowMs: 5 });
    const named = await h.produce(input({ topic: "t", partition: 1, recordBatch: batch }));
    expect(named).toEqual({ topic: "t", partitions: [{ partition: 1, baseOffset: 0, logAppendTimeMs: -1, error: null }], records: [] });
    const sticky = await h.produce(input({ topic: "t", recordBatch: encodeBatch([{ value: "three" }], { nowMs: 5 }) }));
    expect(sticky.partitions).toHaveLength(1);
    expect(stored(core, "t", 1)).toEqual(sticky.partitions[0]!.partition === 1 ? ["one", "two", "three"] : ["one", "two"]);
  });

  it("a batch the log refuses is the partition's error, as on the records path; nothing stored", async () => {
    const core = await coreWith("t", [1]);
    const h = new ProduceHandler(core.rm);
    const batch = encodeBatch([{ value: "x" }], { nowMs: 5 });
    batch[batch.length - 1]! ^= 0xff; // breaks the CRC
    const res = await h.produce(input({ topic: "t", partition: 0, recordBatch: batch }));
    expect(res.partitions).toHaveLength(1);
    expect(res.partitions[0]).toMatchObject({ partition: 0, baseOffset: -1 });
    expect(res.partitions[0]!.error?.kind.name).toBe("CORRUPT_MESSAGE");
    expect(res.partitions[0]!.error?.message).toMatch(/^record_batch: batch at byte 0: crc: /);
    expect(stored(core, "t", 0)).toEqual([]);
  });

  it("an oversized batch gets MESSAGE_TOO_LARGE in its partition's result on both paths (not a whole-call error)", async () => {
    const core = await coreWith("t", [1], { "max.message.bytes": "1024" });
    const h = new ProduceHandler(core.rm);
    const big = "x".repeat(2000);
    const viaBatch = await h.produce(input({ topic: "t", partition: 0, recordBatch: encodeBatch([{ value: big }], { nowMs: 5 }) }));
    const viaRecords = await h.produce(input({ topic: "t", partition: 0, records: [rec("k", big)] }));
    for (const res of [viaBatch, viaRecords]) {
      expect(res.partitions).toHaveLength(1);
      expect(res.partitions[0]!.baseOffset).toBe(-1);
      expect(res.partitions[0]!.error?.kind.name).toBe("MESSAGE_TOO_LARGE");
      expect(res.partitions[0]!.error?.message).toMatch(/exceeds max\.message\.bytes 1024/);
    }
    expect(stored(core, "t", 0)).toEqual([]);
  });

  it("validates a producer's batch fully by default: the defects of issue 14 are refused, nothing stored", async () => {
    const core = await coreWith("t", [1]);
    const h = new ProduceHandler(core.rm);
    for (const [name, make] of Object.entries(badBatches)) {
      const res = await h.produce(input({ topic: "t", partition: 0, recordBatch: make() }));
      expect(res.partitions[0]!.error, name).not.toBeNull();
      expect(res.partitions[0]!.error!.kind.name, name).toMatch(
        /^(CORRUPT_MESSAGE|INVALID_RECORD|INVALID_TIMESTAMP|RECORD_COUNT_MISMATCH)$/,
      );
    }
    expect(stored(core, "t", 0)).toEqual([]);
    expect((await h.produce(input({ topic: "t", partition: 0, recordBatch: goodBatch() }))).partitions[0]!.error).toBeNull();
    expect(stored(core, "t", 0)).toEqual(["good-0", "good-1", "good-2"]);
  });

  it("with produce.validation=structure, trusts what is inside a compressed batch", async () => {
    const core = await coreWith("t", [1]);
    const h = new ProduceHandler(core.rm, null, { validation: "structure", decompressedBytesMax: 1 << 20 });
    const res = await h.produce(input({ topic: "t", partition: 0, recordBatch: badBatches.hugeKeyLengthLz4() }));
    expect(res.partitions[0]!.error).toBeNull();
    const ctl = await h.produce(input({ topic: "t", partition: 0, recordBatch: badBatches.control() }));
    expect(ctl.partitions[0]!.error?.kind.name).toBe("INVALID_RECORD");
  });

  it("refuses records without a key on a compacted topic, on both paths (INVALID_RECORD)", async () => {
    const core = await coreWith("t", [1], { "cleanup.policy": "compact", "compression.type": "lz4" });
    const h = new ProduceHandler(core.rm);
    await rejects(
      h.produce(input({ topic: "t", records: [rec("k", "a"), rec(null, "b")] })),
      "INVALID_RECORD",
      'records[1].key: missing, but topic "t" is compacted',
    );
    const viaBatch = await h.produce(
      input({ topic: "t", partition: 0, recordBatch: encodeBatch([{ value: "x" }], { nowMs: 5, compression: Compression.LZ4 }) }),
    );
    expect(viaBatch.partitions[0]!.error?.kind.name).toBe("INVALID_RECORD");
    expect(stored(core, "t", 0)).toEqual([]);
    await h.produce(input({ topic: "t", records: [rec("k", "a")] }));
    expect(stored(core, "t", 0)).toEqual(["a"]);
  });
});

describe("ProduceHandler: validation (whole-call errors)", () => {
  it("refuses an unknown acks value, naming the field", async () => {
    const core = await coreWith("t", [1]);
    const h = new ProduceHandler(core.rm);
    await rejects(
      h.produce(input({ topic: "t", acks: 7, records: [rec("k", "v")] })),
      "INVALID_REQUIRED_ACKS",
      "acks: 7 is not one of ACKS_NONE, ACKS_LEADER, ACKS_ALL",
    );
    expect(stored(core, "t", 0)).toEqual([]);
  });

  it("answers no offsets with acks NONE, though the records are written", async () => {
    const core = await coreWith("t", [1]);
    const h = new ProduceHandler(core.rm);
    const res = await h.produce(input({ topic: "t", acks: ProduceAcks.NONE, records: [rec("k", "v"), rec("k", "w")] }));
    expect(res.partitions).toEqual([{ partition: 0, baseOffset: -1, logAppendTimeMs: -1, error: null }]);
    expect(res.records).toEqual([
      { partition: 0, offset: -1 },
      { partition: 0, offset: -1 },
    ]);
    expect(stored(core, "t", 0)).toEqual(["v", "w"]);
  });

  it("refuses an unknown topic and a partition out of range", async () => {
    const core = await coreWith("t", [1, 1]);
    const h = new ProduceHandler(core.rm);
    await rejects(
      h.produce(input({ topic: "nope", records: [rec("k", "v")] })),
      "UNKNOWN_TOPIC_OR_PARTITION",
      'topic: topic "nope" does not exist',
    );
    await rejects(
      h.produce(input({ topic: "t", partition: 2, records: [rec("k", "v")] })),
      "UNKNOWN_TOPIC_OR_PARTITION",
      'partition: 2 is out of range for topic "t" (partitions 0..1)',
    );
  });

  it("takes timeout_ms in [0, 300000] only", async () => {
    const core = await coreWith("t", [1]);
    const h = new ProduceHandler(core.rm);
    for (const timeoutMs of [-1, TIMEOUT_MS_MAX + 1]) {
      await rejects(
        h.produce(input({ topic: "t", timeoutMs, records: [rec("k", "v")] })),
        "INVALID_REQUEST",
        `timeout_ms: ${timeoutMs} is not in [0, 300000]`,
      );
    }
    for (const timeoutMs of [0, TIMEOUT_MS_MAX]) {
      const res = await h.produce(input({ topic: "t", timeoutMs, records: [rec("k", "v")] }));
      expect(res.partitions[0]!.error).toBeNull();
    }
  });

  it("wants exactly one of records and record_batch", async () => {
    const core = await coreWith("t", [1]);
    const h = new ProduceHandler(core.rm);
    await rejects(h.produce(input({ topic: "t" })), "INVALID_REQUEST", "records, record_batch: one of them is required (both are empty)");
    await rejects(
      h.produce(input({ topic: "t", records: [rec("k", "v")], recordBatch: encodeBatch([{ value: "x" }], { nowMs: 5 }) })),
      "INVALID_REQUEST",
      "records, record_batch: send one of them, not both",
    );
  });

  it("checks each record and the idempotence fields", async () => {
    const core = await coreWith("t", [1]);
    const h = new ProduceHandler(core.rm);
    await rejects(
      h.produce(input({ topic: "t", records: [rec("k", "v"), { ...rec("k", "v"), timestampMs: -5n }] })),
      "INVALID_TIMESTAMP",
      "records[1].timestamp_ms: -5 is negative",
    );
    await rejects(
      h.produce(input({ topic: "t", records: [{ ...rec("k", "v"), headers: [{ key: "", value: null }] }] })),
      "INVALID_RECORD",
      "records[0].headers[0].key: header key is empty",
    );
    await rejects(
      h.produce(input({ topic: "t", producerId: 3n, records: [rec("k", "v")] })),
      "INVALID_REQUEST",
      "partition: required with producer_id",
    );
    await rejects(
      h.produce(input({ topic: "t", partition: 0, producerId: 3n, baseSequence: -1, records: [rec("k", "v")] })),
      "INVALID_REQUEST",
      "base_sequence, producer_epoch: must not be negative with producer_id (got -1, 0)",
    );
    expect(stored(core, "t", 0)).toEqual([]);
    expect(RECORDS_MAX).toBe(1_000_000);
  });
});

describe("ProduceHandler: acks=ALL", () => {
  it("answers once the ISR has the records, or the partition's error after timeout_ms", async () => {
    const core = openCore();
    cores.push(core);
    await core.topic("t", [{ leader: 1, followers: [2] }]); // broker 2 never fetches: the high watermark stays
    const h = new ProduceHandler(core.rm);
    let answer: ProduceResult | null = null;
    void h.produce(input({ topic: "t", acks: ProduceAcks.ALL, timeoutMs: 1000, records: [rec("k", "v")] })).then((r) => (answer = r));
    await settle();
    core.timers.advance(999);
    await settle();
    expect(answer).toBeNull();
    core.timers.advance(1);
    await settle();
    expect(answer).not.toBeNull();
    const p = answer!.partitions[0]!;
    expect(p.error?.kind.name).toBe("REQUEST_TIMED_OUT");
    expect(p.baseOffset).toBe(-1);
    expect(answer!.records).toEqual([{ partition: 0, offset: -1 }]);
    expect(stored(core, "t", 0)).toEqual([]); // written, but not readable above the high watermark
  });

  it("waits 30 s when timeout_ms is 0; acks LEADER does not wait", async () => {
    const core = openCore();
    cores.push(core);
    await core.topic("t", [{ leader: 1, followers: [2] }]);
    const h = new ProduceHandler(core.rm);
    const leader = await h.produce(input({ topic: "t", acks: ProduceAcks.LEADER, records: [rec("k", "v")] }));
    expect(leader.partitions[0]).toMatchObject({ baseOffset: 0, error: null });
    let answer: ProduceResult | null = null;
    void h.produce(input({ topic: "t", acks: ProduceAcks.ALL, records: [rec("k", "w")] })).then((r) => (answer = r));
    await settle();
    core.timers.advance(29_999);
    await settle();
    expect(answer).toBeNull();
    core.timers.advance(1);
    await settle();
    expect(answer!.partitions[0]!.error?.kind.name).toBe("REQUEST_TIMED_OUT");
  });
});

/** A LeaderForwarder that records what it was given and answers as `answer` says. */
function fakeForwarder(
  answer: (leader: number, input: ProduceInput) => Promise<ProduceResult>,
): LeaderForwarder & { calls: Array<[number, ProduceInput]> } {
  const calls: Array<[number, ProduceInput]> = [];
  return {
    calls,
    produce: (leader, i) => {
      calls.push([leader, i]);
      return answer(leader, i);
    },
  };
}

/** What a leader would answer: base offset 100 on the input's partition. */
const leaderAnswer = async (_leader: number, i: ProduceInput): Promise<ProduceResult> => ({
  topic: i.topic,
  partitions: [{ partition: i.partition!, baseOffset: 100, logAppendTimeMs: -1, error: null }],
  records: i.records.map((_, k) => ({ partition: i.partition!, offset: 100 + k })),
});

describe("ProduceHandler: partitions led by other brokers", () => {
  it("passes a request for a partition led elsewhere to its leader through the LeaderForwarder", async () => {
    const core = await coreWith("t", [1, 2]);
    const fwd = fakeForwarder(leaderAnswer);
    const h = new ProduceHandler(core.rm, fwd);
    const batch = encodeBatch([{ value: "x" }], { nowMs: 5 });
    const res = await h.produce(input({ topic: "t", partition: 1, recordBatch: batch }));
    expect(fwd.calls).toHaveLength(1);
    expect(fwd.calls[0]![0]).toBe(2);
    expect(fwd.calls[0]![1]).toMatchObject({ topic: "t", partition: 1, recordBatch: batch });
    expect(res.partitions[0]!.baseOffset).toBe(100);
    // A forwarded request is appended here, never forwarded again.
    await h.produce(input({ topic: "t", partition: 0, recordBatch: encodeBatch([{ value: "y" }], { nowMs: 5 }) }), true);
    expect(fwd.calls).toHaveLength(1);
    expect(stored(core, "t", 0)).toEqual(["y"]);
  });

  it("prefers partitions led here for null-key records", async () => {
    const core = await coreWith("t", [2, 1, 2, 1]);
    const fwd = fakeForwarder(leaderAnswer);
    const h = new ProduceHandler(core.rm, fwd);
    const ps: number[] = [];
    for (let i = 0; i < 4; i++) ps.push((await h.produce(input({ topic: "t", records: [rec(null, `v${i}`)] }))).records[0]!.partition);
    expect(ps).toEqual([1, 3, 1, 3]);
    expect(fwd.calls).toHaveLength(0);
  });

  it("splits records by partition: local ones appended here, the others forwarded; answers in input order", async () => {
    const core = await coreWith("t", [1, 2, 1, 2]);
    const keys = Array.from({ length: 30 }, (_, i) => `k${i}`);
    const targets = keys.map((k) => partitionForKey(Buffer.from(k), 4));
    const fwd = fakeForwarder(async (leader, i) => {
      if (i.partition === 3) throw rillError("REQUEST_TIMED_OUT", "leader 2 unreachable");
      return leaderAnswer(leader, i);
    });
    const h = new ProduceHandler(core.rm, fwd);
    const res = await h.produce(input({ topic: "t", records: keys.map((k) => rec(k, k)) }));
    expect(fwd.calls.map(([leader, i]) => [leader, i.partition]).sort()).toEqual(
      [...new Set(targets.filter((p) => p % 2 === 1))].sort().map((p) => [2, p]),
    );
    for (const [, i] of fwd.calls) expect(i.records.map((r) => partitionForKey(r.key!, 4))).toEqual(i.records.map(() => i.partition));
    expect(res.partitions.map((p) => p.partition)).toEqual([...new Set(targets)].sort((a, b) => a - b));
    expect(res.partitions.find((p) => p.partition === 3)?.error?.kind.name).toBe("REQUEST_TIMED_OUT");
    const counts = new Map<number, number>();
    res.records.forEach((r, n) => {
      expect(r.partition).toBe(targets[n]);
      const k = counts.get(r.partition) ?? 0;
      counts.set(r.partition, k + 1);
      const want = r.partition === 3 ? -1 : r.partition === 1 ? 100 + k : k;
      expect(r.offset).toBe(want);
    });
    expect(stored(core, "t", 0)).toEqual(keys.filter((_, n) => targets[n] === 0));
    expect(stored(core, "t", 2)).toEqual(keys.filter((_, n) => targets[n] === 2));
  });
});

describe("InitProducerId", () => {
  it("refuses an epoch outside [0, 32767] and issues ids otherwise", async () => {
    const core = await coreWith("t", [1]);
    expect(() => checkInitProducerId({ transactionalId: "", producerId: undefined, producerEpoch: 32768 })).toThrow(
      "producer_epoch: 32768 is not in [0, 32767]",
    );
    await rejects(
      initProducerId(core.rm, { transactionalId: "", producerId: undefined, producerEpoch: -1 }),
      "INVALID_REQUEST",
      "producer_epoch",
    );
    const a = await initProducerId(core.rm, { transactionalId: "", producerId: undefined, producerEpoch: 0 });
    const b = await initProducerId(core.rm, { transactionalId: "", producerId: undefined, producerEpoch: 0 });
    expect(a.producerId).not.toBe(b.producerId);
    const bumped = await initProducerId(core.rm, { transactionalId: "", producerId: BigInt(a.producerId), producerEpoch: a.producerEpoch });
    expect(bumped).toEqual({ producerId: a.producerId, producerEpoch: a.producerEpoch + 1 });
  });
});
