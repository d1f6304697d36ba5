/**
 * A Fetch whose partitions are led by other brokers holds their leaders' answers here until its
 * response is sent: they count against this node's `fetch.memory.max.bytes` too, and are asked
 * for no more than a response of ours may carry.
 */
import { afterEach, describe, expect, it } from "vitest";
import { RillError } from "../../../src/base/errors.ts";
import { MemoryBudget } from "../../../src/base/memory-budget.ts";
import { ManualTimers } from "../../../src/base/timers.ts";
import { encodeBatch } from "../../../src/protocol/record-batch.ts";
import { FetchedRecords } from "../../../src/service/fetched-records.ts";
import { FETCH_MEMORY_WAIT_MS, type FetchMemory, RESPONSE_COPIES, fetch, resultBytes } from "../../../src/service/fetch.ts";
import {
  type Cancellation,
  type FetchForwarder,
  type FetchInput,
  type FetchPartitionResult,
  RecordFormat,
} from "../../../src/service/fetch-types.ts";
import { type Core, openCore, settle } from "./helpers.ts";

const KiB = 1024;
const cores: Core[] = [];
afterEach(async () => {
  for (const c of cores.splice(0)) await c.close();
});

/** Partition 0 led here (node 1), partition 1 by node 2. */
async function core(): Promise<Core> {
  const c = openCore();
  cores.push(c);
  await c.topic("t", [1, 2]);
  return c;
}

const memoryOf = (bytesMax: number): FetchMemory & { timers: ManualTimers } => {
  const timers = new ManualTimers();
  return { budget: new MemoryBudget(bytesMax, timers), responseBytesMax: 1 << 30, timers };
};

const noCancel = (): Cancellation => ({ aborted: false, onabort: null });

function input(maxBytes: number, format: number = RecordFormat.BATCHES): FetchInput {
  return {
    partitions: [
      { topic: "t", partition: 0, offset: 0n, maxBytes },
      { topic: "t", partition: 1, offset: 0n, maxBytes },
    ],
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes,
    format,
    isolationLevel: 0,
  };
}

/** A leader answering `bytes` of batches (or, as RECORDS, one record of that value) for each partition asked. */
function leader(bytes: number): FetchForwarder & { asked: FetchInput[] } {
  const asked: FetchInput[] = [];
  return {
    asked,
    fetch: async (_leader, i) => {
      asked.push(i);
      const batch = encodeBatch([{ value: Buffer.alloc(bytes, 1), timestampMs: 1 }]);
      return {
        partitions: i.partitions.map(
          (p): FetchPartitionResult => ({
            topic: p.topic,
            partition: p.partition,
            highWatermark: 1,
            logStartOffset: 0,
            lastStableOffset: 1,
            nextOffset: 1,
            error: null,
            records:
              i.format === RecordFormat.RECORDS
                ? FetchedRecords.of([
                    { offset: 0, timestampMs: 0, timestampType: 0, leaderEpoch: 0, key: null, value: Buffer.alloc(bytes, 1), headers: [] },
                  ])
                : null,
            batches: i.format === RecordFormat.RECORDS ? null : [batch],
          }),
        ),
      };
    },
  };
}

describe("fetch: leaders' answers held here count against fetch.memory.max.bytes", () => {
  it("asks leaders for no more than a response of ours may carry (max_bytes 2^31-1 clamped)", async () => {
    const c = await core();
    const memory = memoryOf(1 << 20);
    const fwd = leader(10 * KiB);
    const res = await fetch(c.rm, input(2 ** 31 - 1), noCancel(), fwd, memory);
    res.release();
    const asked = fwd.asked[0]!;
    // Before: the client's 2^31-1 went to the leader as asked, whatever this node could hold.
    expect(asked.maxBytes).toBeLessThanOrEqual((1 << 20) / RESPONSE_COPIES);
    expect(asked.partitions[0]!.maxBytes).toBeLessThanOrEqual((1 << 20) / RESPONSE_COPIES);
  });

  it("holds the leader's answer in the budget until the response is sent", async () => {
    const c = await core();
    const memory = memoryOf(1 << 20);
    const res = await fetch(c.rm, input(0), noCancel(), leader(50 * KiB), memory);
    const held = resultBytes(res.partitions[1]!) * RESPONSE_COPIES;
    expect(held).toBeGreaterThan(200 * KiB);
    // Before: 0 — the forwarded answer was outside the budget.
    expect(memory.budget.bytesUsed).toBe(held);
    res.release();
    expect(memory.budget.bytesUsed).toBe(0);
  });

  it("counts RECORDS answers by their keys, values and headers", async () => {
    const c = await core();
    const memory = memoryOf(1 << 20);
    const res = await fetch(c.rm, input(0, RecordFormat.RECORDS), noCancel(), leader(40 * KiB), memory);
    expect(memory.budget.bytesUsed).toBeGreaterThanOrEqual(40 * KiB * RESPONSE_COPIES);
    res.release();
    expect(memory.budget.bytesUsed).toBe(0);
  });

  it("waits for room when the budget is spent, then holds local and forwarded parts as one; FETCH_MEMORY_EXHAUSTED when none comes", async () => {
    const c = await core();
    c.rm.append("t", 0, encodeBatch([{ value: Buffer.alloc(20 * KiB, 2), timestampMs: 1 }]), "leader");
    const memory = memoryOf(1 << 20);
    const hog = memory.budget.tryReserve((1 << 20) - 100 * KiB)!;
    let answered = false;
    const pending = fetch(c.rm, input(0), noCancel(), leader(50 * KiB), memory).then((r) => {
      answered = true;
      return r;
    });
    for (let i = 0; i < 5; i++) await settle();
    expect(answered).toBe(false); // the local part fits beside the hog, the leader's answer does not
    expect(memory.budget.waiting).toBe(1);
    hog.release();
    const res = await pending;
    expect(res.partitions[0]!.batches).not.toBeNull();
    expect(res.partitions[1]!.batches).not.toBeNull();
    expect(memory.budget.bytesUsed).toBe((resultBytes(res.partitions[0]!) + resultBytes(res.partitions[1]!)) * RESPONSE_COPIES);
    res.release();
    expect(memory.budget.bytesUsed).toBe(0);

    const hog2 = memory.budget.tryReserve(1 << 20)!;
    const late = fetch(c.rm, { ...input(0), partitions: [input(0).partitions[1]!] }, noCancel(), leader(50 * KiB), memory);
    for (let i = 0; i < 5; i++) await settle();
    memory.timers.advance(FETCH_MEMORY_WAIT_MS);
    const e = await late.then(
      () => null,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(RillError);
    expect((e as RillError).kind.name).toBe("FETCH_MEMORY_EXHAUSTED");
    hog2.release();
    expect(memory.budget.bytesUsed).toBe(0);
  });
});
