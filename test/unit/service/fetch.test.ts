import { afterEach, describe, expect, it } from "vitest";
import { RillError, rillError } from "../../../src/base/errors.ts";
import { TimestampType, decodeRecords, encodeBatch, readBatchHeader } from "../../../src/protocol/record-batch.ts";
import { MemoryBudget } from "../../../src/base/memory-budget.ts";
import { ManualTimers } from "../../../src/base/timers.ts";
import {
  FETCH_MAX_BYTES_DEFAULT,
  FETCH_MEMORY_WAIT_MS,
  type FetchMemory,
  MAX_WAIT_MS_MAX,
  PARTITION_MAX_BYTES_DEFAULT,
  RESPONSE_COPIES,
  fetch,
  planFetch,
} from "../../../src/service/fetch.ts";
import {
  OffsetSpec,
  RecordFormat,
  type Cancellation,
  type FetchForwarder,
  type FetchInput,
  type FetchPartitionInput,
  type FetchResult,
} from "../../../src/service/fetch-types.ts";
import { listOffsets } from "../../../src/service/list-offsets.ts";
import { subscribe } from "../../../src/service/subscribe.ts";
import { FetchedRecords } from "../../../src/service/fetched-records.ts";
import { type Core, openCore, settle } from "./helpers.ts";

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

const at = (topic: string, partition: number, offset = 0n, maxBytes = 0): FetchPartitionInput => ({ topic, partition, offset, maxBytes });

function fetchInput(partitions: FetchPartitionInput[], over: Partial<FetchInput> = {}): FetchInput {
  return { partitions, maxWaitMs: 0, minBytes: 0, maxBytes: 0, format: RecordFormat.RECORDS, isolationLevel: 0, ...over };
}

const noCancel = (): Cancellation => ({ aborted: false, onabort: null });

/** Appends one batch of `values` to a partition led here. */
function append(core: Core, topic: string, partition: number, values: string[], opts: { headers?: boolean } = {}): void {
  const records = values.map((v, i) => ({
    key: `k${i}`,
    value: v,
    ...(opts.headers
      ? {
          headers: [
            { key: "h", value: `hv${i}` },
            { key: "n", value: null },
          ],
        }
      : {}),
  }));
  core.rm.append(topic, partition, encodeBatch(records, { nowMs: 1000 }), "leader");
}

async function rejects(p: Promise<unknown>, name: string, text: string): Promise<void> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(RillError);
  expect((e as RillError).kind.name).toBe(name);
  expect((e as RillError).message).toContain(text);
}

const values = (r: FetchResult, i: number): string[] => (r.partitions[i]!.records ?? []).map((x) => Buffer.from(x.value!).toString());

describe("fetch: several partitions", () => {
  it("reads each partition; a failing one carries its own error and the others their data", async () => {
    const core = await coreWith("t", [1, 1, 1]);
    append(core, "t", 0, ["a", "b"]);
    append(core, "t", 1, ["c"]);
    append(core, "t", 2, ["d"]);
    const res = await fetch(core.rm, fetchInput([at("t", 0), at("t", 1, 5n), at("t", 7), at("nope", 0), at("t", 2)]), noCancel(), null);
    expect(res.partitions.map((p) => [p.topic, p.partition])).toEqual([
      ["t", 0],
      ["t", 1],
      ["t", 7],
      ["nope", 0],
      ["t", 2],
    ]);
    expect(values(res, 0)).toEqual(["a", "b"]);
    expect(res.partitions[0]).toMatchObject({ error: null, highWatermark: 2, logStartOffset: 0, lastStableOffset: 2, nextOffset: 2 });
    expect(res.partitions[1]!.error?.kind.name).toBe("OFFSET_OUT_OF_RANGE");
    expect(res.partitions[1]!.nextOffset).toBe(5);
    expect(res.partitions[2]!.error?.kind.name).toBe("UNKNOWN_TOPIC_OR_PARTITION");
    expect(res.partitions[2]!.highWatermark).toBe(-1);
    expect(res.partitions[3]!.error?.message).toContain('topic "nope" does not exist');
    expect(values(res, 4)).toEqual(["d"]);
  });

  it("refuses whole-call faults, naming the field", async () => {
    const core = await coreWith("t", [1]);
    const f = (i: FetchInput) => fetch(core.rm, i, noCancel(), null);
    await rejects(f(fetchInput([])), "INVALID_REQUEST", "fetch.partitions: at least one partition is required");
    await rejects(f(fetchInput([at("t", 0, -1n)])), "INVALID_REQUEST", "fetch.partitions[0].offset: -1 is negative");
    await rejects(f(fetchInput([at("t", 0), at("t", 0, 3n)])), "INVALID_REQUEST", "fetch.partitions[1]: t-0 is named twice");
    await rejects(f(fetchInput([at("t", 0, 0n, -1)])), "INVALID_FETCH_SIZE", "fetch.partitions[0].max_bytes: -1 is negative");
    await rejects(
      f(fetchInput([at("t", 0)], { format: 9 })),
      "INVALID_REQUEST",
      "fetch.format: 9 is not RECORD_FORMAT_RECORDS or RECORD_FORMAT_BATCHES",
    );
    await rejects(f(fetchInput([at("t", 0)], { minBytes: -1 })), "INVALID_FETCH_SIZE", "fetch.min_bytes: -1 is negative");
    await rejects(
      f(fetchInput([at("t", 0)], { maxWaitMs: MAX_WAIT_MS_MAX + 1 })),
      "INVALID_REQUEST",
      `fetch.max_wait_ms: ${MAX_WAIT_MS_MAX + 1} is not in [0, 300000]`,
    );
  });

  it("checks the leader epoch the reader knows (KIP-320): older FENCED_LEADER_EPOCH, newer UNKNOWN_LEADER_EPOCH, no high watermark", async () => {
    const core = await coreWith("t", [1, 1]);
    append(core, "t", 0, ["a", "b"]);
    append(core, "t", 1, ["c"]);
    // A leader change here (epoch 0 -> 2): node 1 leads both partitions again at epoch 2.
    await core.store.commit(() => [
      { type: "partition", v: 1, topic: "t", partition: 0, replicas: [1], isr: [1], leader: 1, leaderEpoch: 2, partitionEpoch: 1 },
    ]);
    const read = (epochs: Array<number | undefined>) =>
      fetch(
        core.rm,
        fetchInput(epochs.map((e, i) => ({ ...at("t", i), ...(e === undefined ? {} : { currentLeaderEpoch: e }) }))),
        noCancel(),
        null,
      );
    const same = await read([2, 0]);
    expect([values(same, 0), values(same, 1)]).toEqual([["a", "b"], ["c"]]);
    const unchecked = await read([undefined, -1]);
    expect([values(unchecked, 0), values(unchecked, 1)]).toEqual([["a", "b"], ["c"]]);
    const stale = await read([1, 1]);
    expect(stale.partitions.map((p) => [p.error?.kind.name, p.highWatermark, p.records?.length ?? 0])).toEqual([
      ["FENCED_LEADER_EPOCH", -1, 0],
      ["UNKNOWN_LEADER_EPOCH", -1, 0],
    ]);
    expect(stale.partitions[0]!.error?.message).toBe("current_leader_epoch: 1 of t-0 is older than 2: refresh the metadata");
    expect(stale.partitions[1]!.error?.message).toBe("current_leader_epoch: 1 of t-1 is newer than 0, the newest broker 1 knows");
    expect(stale.partitions.map((p) => p.nextOffset)).toEqual([0, 0]);
    await rejects(read([-2, 0]), "INVALID_REQUEST", "fetch.partitions[0].current_leader_epoch: -2 is not an epoch (-1: none)");
  });

  it("fills Kafka's defaults for sizes left 0, and waits for at least one byte", () => {
    const plan = planFetch([at("t", 0, 3n)], 0, 0, 10, RecordFormat.UNSPECIFIED, "fetch");
    expect(plan).toEqual({
      positions: [{ topic: "t", partition: 0, offset: 3, maxBytes: PARTITION_MAX_BYTES_DEFAULT }],
      requestBytesMax: FETCH_MAX_BYTES_DEFAULT,
      minBytes: 1,
      maxWaitMs: 10,
      records: false,
      readCommitted: false,
    });
  });

  it("returns whole batches within a partition's max_bytes, at least one", async () => {
    const core = await coreWith("t", [1]);
    append(core, "t", 0, ["x".repeat(300)]);
    append(core, "t", 0, ["y".repeat(300)]);
    const small = await fetch(core.rm, fetchInput([at("t", 0, 0n, 10)]), noCancel(), null);
    expect(values(small, 0)).toEqual(["x".repeat(300)]);
    expect(small.partitions[0]!.nextOffset).toBe(1);
    const all = await fetch(core.rm, fetchInput([at("t", 0)]), noCancel(), null);
    expect(values(all, 0)).toEqual(["x".repeat(300), "y".repeat(300)]);
  });
});

describe("fetch: long poll", () => {
  it("waits until min_bytes are there: a small append does not end it, a second one does", async () => {
    const core = await coreWith("t", [1, 1]);
    let answer: FetchResult | null = null;
    void fetch(core.rm, fetchInput([at("t", 0), at("t", 1)], { minBytes: 100, maxWaitMs: 5000 }), noCancel(), null).then(
      (r) => (answer = r),
    );
    await settle();
    expect(answer).toBeNull();
    append(core, "t", 0, ["a"]); // one batch of ~70 bytes: below min_bytes
    await settle();
    expect(answer).toBeNull();
    core.timers.advance(1000);
    await settle();
    expect(answer).toBeNull();
    append(core, "t", 1, ["b"]);
    await settle();
    expect(answer).not.toBeNull();
    expect(values(answer!, 0)).toEqual(["a"]);
    expect(values(answer!, 1)).toEqual(["b"]);
  });

  it("answers what there is when max_wait_ms passes", async () => {
    const core = await coreWith("t", [1]);
    append(core, "t", 0, ["a"]);
    let answer: FetchResult | null = null;
    void fetch(core.rm, fetchInput([at("t", 0)], { minBytes: 1 << 20, maxWaitMs: 500 }), noCancel(), null).then((r) => (answer = r));
    await settle();
    core.timers.advance(499);
    await settle();
    expect(answer).toBeNull();
    core.timers.advance(1);
    await settle();
    expect(values(answer!, 0)).toEqual(["a"]);
  });

  it("answers at once when the caller cancels", async () => {
    const core = await coreWith("t", [1]);
    const cancel = noCancel();
    let answer: FetchResult | null = null;
    void fetch(core.rm, fetchInput([at("t", 0)], { maxWaitMs: 10_000 }), cancel, null).then((r) => (answer = r));
    await settle();
    expect(answer).toBeNull();
    cancel.aborted = true;
    cancel.onabort?.();
    await settle();
    expect(answer!.partitions[0]).toMatchObject({ records: null, batches: null, nextOffset: 0, error: null });
  });
});

describe("fetch: RECORDS and BATCHES", () => {
  it("RECORDS decodes the records from the asked offset; BATCHES returns the stored bytes whole", async () => {
    const core = await coreWith("t", [1]);
    append(core, "t", 0, ["a", "b", "c"], { headers: true });
    const records = await fetch(core.rm, fetchInput([at("t", 0, 1n)], { format: RecordFormat.RECORDS }), noCancel(), null);
    const p = records.partitions[0]!;
    expect(p.batches).toBeNull();
    expect(p.records!.map((r) => r.offset)).toEqual([1, 2]); // offset 0 is in the same batch and dropped
    const r1 = p.records!.at(0)!;
    expect(Buffer.from(r1.key!).toString()).toBe("k1");
    expect(Buffer.from(r1.value!).toString()).toBe("b");
    expect(r1.headers.map((h) => [h.key, h.value === null ? null : Buffer.from(h.value).toString()])).toEqual([
      ["h", "hv1"],
      ["n", null],
    ]);
    expect(r1).toMatchObject({ timestampMs: 1000, timestampType: TimestampType.CREATE_TIME, leaderEpoch: 0 });

    const batches = await fetch(core.rm, fetchInput([at("t", 0, 1n)], { format: RecordFormat.BATCHES }), noCancel(), null);
    const b = batches.partitions[0]!;
    expect(b.records).toBeNull();
    expect(b.nextOffset).toBe(3);
    const bytes = Buffer.concat(b.batches!.map((c) => Buffer.from(c)));
    expect(readBatchHeader(bytes, 0).baseOffset).toBe(0); // the whole batch, from its first record
    expect(decodeRecords(bytes).map((r) => r.value!.toString())).toEqual(["a", "b", "c"]);
  });

  it("RECORDS gives every record of a LogAppendTime topic the broker's time", async () => {
    const core = await coreWith("t", [1], { "message.timestamp.type": "LogAppendTime" });
    core.clock.set(5_000_000);
    append(core, "t", 0, ["a"]);
    const res = await fetch(core.rm, fetchInput([at("t", 0)]), noCancel(), null);
    expect(res.partitions[0]!.records!.at(0)).toMatchObject({ timestampMs: 5_000_000, timestampType: TimestampType.LOG_APPEND_TIME });
  });
});

describe("fetch: partitions with no replica here", () => {
  it("reads them from their leader through the FetchForwarder, merged in request order; a failure is that partition's error", async () => {
    const core = await coreWith("t", [1, 2, 3]);
    append(core, "t", 0, ["here"]);
    const calls: Array<[number, FetchInput]> = [];
    const forwarder: FetchForwarder = {
      fetch: async (leader, input) => {
        calls.push([leader, input]);
        if (leader === 3) throw rillError("REQUEST_TIMED_OUT", "broker 3 unreachable");
        return {
          partitions: input.partitions.map((p) => ({
            topic: p.topic,
            partition: p.partition,
            highWatermark: 9,
            logStartOffset: 0,
            lastStableOffset: 9,
            nextOffset: 9,
            error: null,
            records: new FetchedRecords(),
            batches: null,
          })),
        };
      },
    };
    const res = await fetch(core.rm, fetchInput([at("t", 2, 4n), at("t", 1, 7n), at("t", 0)], { maxWaitMs: 100 }), noCancel(), forwarder);
    expect(calls.map(([leader, i]) => [leader, i.partitions.map((p) => [p.partition, p.offset])]).sort()).toEqual([
      [2, [[1, 7n]]],
      [3, [[2, 4n]]],
    ]);
    expect(calls[0]![1]).toMatchObject({ maxWaitMs: 100, format: RecordFormat.RECORDS });
    expect(res.partitions.map((p) => p.partition)).toEqual([2, 1, 0]);
    expect(res.partitions[0]).toMatchObject({ nextOffset: 4 });
    expect(res.partitions[0]!.error?.kind.name).toBe("REQUEST_TIMED_OUT");
    expect(res.partitions[1]).toMatchObject({ highWatermark: 9, error: null });
    expect(values(res, 2)).toEqual(["here"]);
    // A forwarded fetch is read here only: the others answer NOT_LEADER_OR_FOLLOWER.
    const local = await fetch(core.rm, fetchInput([at("t", 1)]), noCancel(), null);
    expect(local.partitions[0]!.error?.kind.name).toBe("NOT_LEADER_OR_FOLLOWER");
    expect(calls).toHaveLength(2);
  });
});

describe("listOffsets", () => {
  it("answers earliest, latest and by timestamp per partition; a bad spec is that partition's error", async () => {
    const core = await coreWith("t", [1]);
    core.rm.append(
      "t",
      0,
      encodeBatch(
        [
          { value: "a", timestampMs: 100 },
          { value: "b", timestampMs: 200 },
        ],
        { nowMs: 0 },
      ),
      "leader",
    );
    const spec = (s: number, timestampMs = 0n) => ({ topic: "t", partition: 0, spec: s, timestampMs });
    const out = listOffsets(core.rm, [
      spec(OffsetSpec.EARLIEST),
      spec(OffsetSpec.LATEST),
      spec(OffsetSpec.UNSPECIFIED),
      spec(OffsetSpec.TIMESTAMP, 150n),
      spec(OffsetSpec.TIMESTAMP, 201n),
      spec(OffsetSpec.TIMESTAMP, -1n),
      spec(8),
      { topic: "nope", partition: 0, spec: OffsetSpec.LATEST, timestampMs: 0n },
    ]);
    expect(out.slice(0, 5)).toEqual([
      { topic: "t", partition: 0, offset: 0, timestampMs: -1, leaderEpoch: 0, error: null },
      { topic: "t", partition: 0, offset: 2, timestampMs: -1, leaderEpoch: 0, error: null },
      { topic: "t", partition: 0, offset: 2, timestampMs: -1, leaderEpoch: 0, error: null },
      { topic: "t", partition: 0, offset: 1, timestampMs: 200, leaderEpoch: null, error: null },
      { topic: "t", partition: 0, offset: -1, timestampMs: -1, leaderEpoch: null, error: null },
    ]);
    expect(out[5]!.error?.message).toBe("partitions[5].timestamp_ms: -1 is negative");
    expect(out[6]!.error?.message).toBe("partitions[6].spec: 8 is not EARLIEST, LATEST or TIMESTAMP");
    expect(out[7]!.error?.kind.name).toBe("UNKNOWN_TOPIC_OR_PARTITION");
    expect(() => listOffsets(core.rm, [])).toThrow("partitions: at least one partition is required");
  });
});

describe("subscribe", () => {
  it("sends a message whenever data arrives, answers a failing partition once, and ends on cancel", async () => {
    const core = await coreWith("t", [1]);
    append(core, "t", 0, ["a"]);
    const sent: FetchResult[] = [];
    const given: Buffer[] = [];
    const cancel = noCancel();
    const sink = {
      send: (m: FetchResult, _bytes: number, onSent: () => void) => {
        sent.push(m);
        onSent();
      },
      room: async () => {},
    };
    const buffers = { take: (size: number) => Buffer.alloc(size), give: (b: Buffer) => given.push(b) };
    const done = subscribe(
      core.rm,
      { partitions: [at("t", 0), at("t", 5)], maxBytes: 0, maxWaitMs: 0, format: RecordFormat.RECORDS },
      sink,
      cancel,
      buffers,
    );
    await settle();
    expect(sent).toHaveLength(1);
    expect(values(sent[0]!, 0)).toEqual(["a"]);
    expect(sent[0]!.partitions[1]!.error?.kind.name).toBe("UNKNOWN_TOPIC_OR_PARTITION");
    append(core, "t", 0, ["b"]);
    await settle();
    expect(sent).toHaveLength(2);
    expect(sent[1]!.partitions.map((p) => p.partition)).toEqual([0]); // the failing partition was dropped
    expect(values(sent[1]!, 0)).toEqual(["b"]);
    cancel.aborted = true;
    cancel.onabort?.();
    await done;
    expect(sent).toHaveLength(2);
  });

  it("refuses a bad request before it starts", async () => {
    const core = await coreWith("t", [1]);
    const sink = { send: () => {}, room: async () => {} };
    const buffers = { take: (size: number) => Buffer.alloc(size), give: () => {} };
    await rejects(
      subscribe(core.rm, { partitions: [], maxBytes: 0, maxWaitMs: 0, format: 0 }, sink, noCancel(), buffers),
      "INVALID_REQUEST",
      "subscribe.partitions: at least one partition is required",
    );
  });
});

describe("fetch: memory (fetch.memory.max.bytes) and size limits", () => {
  const batchBytes = (core: Core, topic: string, partition: number): number => core.rm.readLog(topic, partition).sizeBytes;
  const memoryOf = (bytesMax: number, responseBytesMax = 1 << 30): FetchMemory & { timers: ManualTimers } => {
    const timers = new ManualTimers();
    return { budget: new MemoryBudget(bytesMax, timers), responseBytesMax, timers };
  };
  const big = (n: number): string[] => [Buffer.alloc(n, 97).toString()];

  it("returns the first batch of the first partition with data whole, and later partitions only what fits (KIP-74)", async () => {
    const core = await coreWith("t", [1, 1, 1]);
    append(core, "t", 1, big(2000));
    append(core, "t", 2, big(2000));
    const res = await fetch(
      core.rm,
      fetchInput([at("t", 0), at("t", 1, 0n, 100), at("t", 2, 0n, 100)], { maxBytes: 100, format: RecordFormat.BATCHES }),
      noCancel(),
      null,
    );
    expect(res.partitions[0]!.batches).toBeNull();
    expect(res.partitions[1]!.batches!.reduce((n, b) => n + b.length, 0)).toBe(batchBytes(core, "t", 1));
    expect(res.partitions[2]!.batches).toBeNull(); // it did not fit: no data, no error, same offset
    expect(res.partitions[2]!.error).toBeNull();
    expect(res.partitions[2]!.nextOffset).toBe(0);
    expect(res.partitions[2]!.highWatermark).toBe(1);
  });

  it("once a partition's batch did not fit, answers the partitions after it without data, unsized", async () => {
    const core = await coreWith("t", [1, 1, 1]);
    append(core, "t", 0, big(2000));
    append(core, "t", 1, big(3000));
    append(core, "t", 2, big(10));
    const small = batchBytes(core, "t", 2);
    const maxBytes = batchBytes(core, "t", 0) + small + 1; // p2's batch would fit after p0's
    const res = await fetch(
      core.rm,
      fetchInput([at("t", 0), at("t", 1), at("t", 2)], { maxBytes, format: RecordFormat.BATCHES }),
      noCancel(),
      null,
    );
    expect(res.partitions.map((p) => p.batches?.length ?? 0)).toEqual([1, 0, 0]);
    expect(res.partitions[2]!.nextOffset).toBe(0);
    expect(res.partitions[2]!.highWatermark).toBe(1);
    expect(res.partitions[2]!.error).toBeNull();
  });

  it("clamps max_bytes to what one message may carry and to a share of the budget", async () => {
    const core = await coreWith("t", [1]);
    for (let i = 0; i < 10; i++) append(core, "t", 0, big(3000));
    const one = batchBytes(core, "t", 0) / 10;
    const memory = memoryOf(1 << 30, 10_000);
    const res = await fetch(
      core.rm,
      fetchInput([at("t", 0, 0n, 2 ** 31 - 1)], { maxBytes: 2 ** 31 - 1, format: RecordFormat.BATCHES }),
      noCancel(),
      null,
      memory,
    );
    const got = res.partitions[0]!.batches!.reduce((n, b) => n + b.length, 0);
    expect(got).toBe(Math.floor((10_000 - 512) / one) * one);
    res.release();
    const share = memoryOf(RESPONSE_COPIES * 2 * one);
    const res2 = await fetch(core.rm, fetchInput([at("t", 0)], { format: RecordFormat.BATCHES }), noCancel(), null, share);
    expect(res2.partitions[0]!.batches!.reduce((n, b) => n + b.length, 0)).toBe(one); // 2 batches less the fields' bound
    expect(share.budget.bytesUsed).toBe(RESPONSE_COPIES * one);
    res2.release();
    expect(share.budget.bytesUsed).toBe(0);
  });

  it("carries at most fetch.response.max.bytes of batches per Fetch response and Subscribe message, a larger first batch whole", async () => {
    const core = await coreWith("t", [1, 1, 1, 1, 1, 1, 1, 1]);
    for (let p = 0; p < 8; p++) append(core, "t", p, big(3000));
    const one = batchBytes(core, "t", 0);
    const all = Array.from({ length: 8 }, (_, p) => at("t", p, 0n, 2 ** 31 - 1));
    const dataOf = (r: FetchResult): number[] => r.partitions.map((p) => (p.batches ?? []).reduce((n, b) => n + b.length, 0));
    const memory = { ...memoryOf(1 << 30), responseDataBytesMax: 3 * one + 100 };
    const res = await fetch(core.rm, fetchInput(all, { maxBytes: 2 ** 31 - 1, format: RecordFormat.BATCHES }), noCancel(), null, memory);
    expect(dataOf(res)).toEqual([one, one, one, 0, 0, 0, 0, 0]);
    expect(memory.budget.bytesUsed).toBe(RESPONSE_COPIES * 3 * one);
    res.release();
    // A Subscribe over the 8 partitions: three messages, each within the limit.
    const sent: number[][] = [];
    const sink = {
      send: (m: FetchResult, _b: number, onSent: () => void) => {
        sent.push(dataOf(m));
        onSent();
      },
      room: async () => {},
    };
    const cancel = noCancel();
    const done = subscribe(
      core.rm,
      { partitions: all, maxBytes: 0, maxWaitMs: 0, format: RecordFormat.BATCHES },
      sink,
      cancel,
      { take: (size: number) => Buffer.alloc(size), give: () => {} },
      memory,
    );
    await settle();
    expect(sent.map((m) => m.reduce((a, b) => a + b, 0))).toEqual([3 * one, 3 * one, 2 * one]);
    cancel.aborted = true;
    cancel.onabort?.();
    await done;
    expect(memory.budget.bytesUsed).toBe(0);
    // Below one batch: the first batch still comes whole (KIP-74), nothing after it.
    const tiny = { ...memoryOf(1 << 30), responseDataBytesMax: 100 };
    const res2 = await fetch(core.rm, fetchInput(all, { format: RecordFormat.BATCHES }), noCancel(), null, tiny);
    expect(dataOf(res2)).toEqual([one, 0, 0, 0, 0, 0, 0, 0]);
    res2.release();
  });

  it("waits for room in the budget instead of reading past it; FETCH_MEMORY_EXHAUSTED when none comes in time", async () => {
    const core = await coreWith("t", [1]);
    append(core, "t", 0, big(1000));
    const memory = memoryOf(1 << 20);
    const hog = memory.budget.tryReserve(1 << 20)!;
    let answered = false;
    const pending = fetch(core.rm, fetchInput([at("t", 0)], { format: RecordFormat.BATCHES }), noCancel(), null, memory).then((r) => {
      answered = true;
      return r;
    });
    await settle();
    expect(answered).toBe(false);
    expect(memory.budget.waiting).toBe(1);
    hog.release();
    const res = await pending;
    expect(res.partitions[0]!.batches).not.toBeNull();
    expect(memory.budget.bytesUsed).toBe(RESPONSE_COPIES * batchBytes(core, "t", 0));
    res.release();
    const hog2 = memory.budget.tryReserve(1 << 20)!;
    const late = fetch(core.rm, fetchInput([at("t", 0)], { format: RecordFormat.BATCHES }), noCancel(), null, memory);
    await settle();
    memory.timers.advance(FETCH_MEMORY_WAIT_MS);
    await rejects(late, "FETCH_MEMORY_EXHAUSTED", "fetch.memory.max.bytes");
    hog2.release();
    expect(memory.budget.bytesUsed).toBe(0);
  });

  it("a Subscribe holds each message's memory until it is sent, and gives back what unsent messages held when it ends", async () => {
    const core = await coreWith("t", [1]);
    append(core, "t", 0, big(1000));
    const memory = memoryOf(1 << 20);
    const sent: Array<() => void> = [];
    const sink = { send: (_m: FetchResult, _b: number, onSent: () => void) => sent.push(onSent), room: async () => {} };
    const buffers = { take: (size: number) => Buffer.alloc(size), give: () => {} };
    const cancel = noCancel();
    const done = subscribe(
      core.rm,
      { partitions: [at("t", 0)], maxBytes: 0, maxWaitMs: 0, format: RecordFormat.BATCHES },
      sink,
      cancel,
      buffers,
      memory,
    );
    await settle();
    const one = RESPONSE_COPIES * batchBytes(core, "t", 0);
    expect(memory.budget.bytesUsed).toBe(one);
    sent[0]!();
    expect(memory.budget.bytesUsed).toBe(0);
    append(core, "t", 0, big(1000));
    await settle();
    expect(sent).toHaveLength(2);
    expect(memory.budget.bytesUsed).toBe(one); // the second message is not sent yet
    cancel.aborted = true;
    cancel.onabort?.();
    await done;
    expect(memory.budget.bytesUsed).toBe(0);
  });
});
