/**
 * A partition leader whose metadata image has not applied a producer's InitProducerId yet (the
 * controller issued it elsewhere; issue 14's cluster soak) waits for it, bounded, before judging
 * the producer's batches — instead of refusing them with a final UNKNOWN_PRODUCER_ID.
 *
 * Here the lag is exact: the image of node 1 simply has not got the record yet when the produce
 * comes, and the test commits it (InitProducerId) while the produce waits. Time is manual, so
 * the bound is reached only when the test moves the clock.
 */
import { afterEach, describe, expect, it } from "vitest";
import { RillError } from "../../../src/base/errors.ts";
import { decodeRecords, encodeBatch, readBatchHeader } from "../../../src/protocol/record-batch.ts";
import { PRODUCER_METADATA_WAIT_MS_DEFAULT, ProduceHandler } from "../../../src/service/produce.ts";
import { ProduceAcks, type ProduceInput, type ProduceResult } from "../../../src/service/produce-types.ts";
import { initProducerId } from "../../../src/service/producer-id.ts";
import { type Core, openCore, settle } from "./helpers.ts";

const cores: Core[] = [];
afterEach(async () => {
  for (const c of cores.splice(0)) await c.close();
});

async function core(): Promise<Core> {
  const c = openCore();
  cores.push(c);
  await c.topic("t", [1]);
  return c;
}

function input(over: Partial<ProduceInput>): ProduceInput {
  return {
    topic: "t",
    partition: 0,
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

const values = (...v: string[]) => v.map((value) => ({ key: null, value: Buffer.from(value), headers: [], timestampMs: null }));

/** A promise's outcome, observable without awaiting it. */
function track<T>(p: Promise<T>): { done: () => boolean; result: Promise<T> } {
  let done = false;
  const result = p.finally(() => (done = true));
  return { done: () => done, result };
}

function stored(c: Core): string[] {
  const d = c.rm.readPartition({ topic: "t", partition: 0, offset: 0, maxBytes: 1 << 20 });
  const out: string[] = [];
  for (const chunk of d.read?.chunks ?? []) {
    for (let pos = 0; pos < chunk.length; pos += readBatchHeader(chunk, pos).size) {
      for (const r of decodeRecords(chunk, pos)) out.push(r.value!.toString());
    }
  }
  return out;
}

const newProducer = (c: Core) => initProducerId(c.rm, { transactionalId: "", producerId: undefined, producerEpoch: 0 });

function errorOf(r: ProduceResult): string | null {
  return r.partitions[0]!.error?.kind.name ?? null;
}

describe("a produce whose producer id this node's metadata does not know yet", () => {
  it("waits for the InitProducerId to be applied, then appends (records path)", async () => {
    const c = await core();
    const h = new ProduceHandler(c.rm);
    expect(c.rm.image.nextProducerId).toBe(0);
    const p = track(h.produce(input({ producerId: 0n, records: values("a", "b") })));
    await settle();
    expect(p.done()).toBe(false);
    expect(c.rm.producerMetadataWaiting).toBe(1);
    expect(stored(c)).toEqual([]);
    expect(await newProducer(c)).toEqual({ producerId: 0, producerEpoch: 0 });
    const r = await p.result;
    expect(errorOf(r)).toBe(null);
    expect(r.records.map((x) => x.offset)).toEqual([0, 1]);
    expect(stored(c)).toEqual(["a", "b"]);
    expect(c.rm.producerMetadataWaits).toEqual({ started: 1, timedOut: 0 });
    expect(c.rm.producerMetadataWaiting).toBe(0);
  });

  it("waits on the record_batch path too (the producer fields of the batch)", async () => {
    const c = await core();
    const h = new ProduceHandler(c.rm);
    const batch = encodeBatch([{ value: "via-batch" }], { producerId: 0, producerEpoch: 0, baseSequence: 0, nowMs: 1 });
    const p = track(h.produce(input({ recordBatch: batch })));
    await settle();
    expect(p.done()).toBe(false);
    await newProducer(c);
    expect(errorOf(await p.result)).toBe(null);
    expect(stored(c)).toEqual(["via-batch"]);
  });

  it("keeps one producer's pipelined requests in order; others are not held up", async () => {
    const c = await core();
    const h = new ProduceHandler(c.rm);
    const first = track(h.produce(input({ producerId: 0n, baseSequence: 0, records: values("p0", "p1") })));
    const second = track(h.produce(input({ producerId: 0n, baseSequence: 2, records: values("p2") })));
    const plain = await h.produce(input({ records: values("plain") }));
    expect(errorOf(plain)).toBe(null);
    await settle();
    expect([first.done(), second.done()]).toEqual([false, false]);
    await newProducer(c);
    const [r1, r2] = await Promise.all([first.result, second.result]);
    expect([errorOf(r1), errorOf(r2)]).toEqual([null, null]);
    expect(stored(c)).toEqual(["plain", "p0", "p1", "p2"]);
  });

  it("waits for an epoch newer than this node's (a bump not applied yet)", async () => {
    const c = await core();
    const h = new ProduceHandler(c.rm);
    const { producerId } = await newProducer(c);
    const p = track(h.produce(input({ producerId: BigInt(producerId), producerEpoch: 1, records: values("e1") })));
    await settle();
    expect(p.done()).toBe(false);
    expect(await initProducerId(c.rm, { transactionalId: "", producerId: BigInt(producerId), producerEpoch: 0 })).toEqual({
      producerId,
      producerEpoch: 1,
    });
    expect(errorOf(await p.result)).toBe(null);
    expect(stored(c)).toEqual(["e1"]);
  });

  it("after the bound (timeout_ms, at most PRODUCER_METADATA_WAIT_MS_DEFAULT) answers the final error and appends nothing", async () => {
    const c = await core();
    const h = new ProduceHandler(c.rm);
    const { producerId } = await newProducer(c);
    const unknown = track(h.produce(input({ producerId: 7n, timeoutMs: 800, records: values("x") })));
    const future = track(h.produce(input({ producerId: BigInt(producerId), producerEpoch: 3, records: values("y") })));
    await settle();
    c.timers.advance(799);
    await settle();
    expect([unknown.done(), future.done()]).toEqual([false, false]);
    c.timers.advance(1);
    const u = await unknown.result;
    expect(u.partitions[0]!.error).toBeInstanceOf(RillError);
    expect(u.partitions[0]!.error!.kind.name).toBe("UNKNOWN_PRODUCER_ID");
    expect(u.partitions[0]!.error!.message).toMatch(/producer_id: 7 was never issued by InitProducerId/);
    await settle();
    expect(future.done()).toBe(false);
    c.timers.advance(PRODUCER_METADATA_WAIT_MS_DEFAULT - 800);
    expect(errorOf(await future.result)).toBe("INVALID_PRODUCER_EPOCH");
    expect(stored(c)).toEqual([]);
    expect(c.rm.producerMetadataWaits).toEqual({ started: 2, timedOut: 2 });
  });

  it("does not wait for a known producer, nor for a bad request (refused at once)", async () => {
    const c = await core();
    const h = new ProduceHandler(c.rm);
    const { producerId } = await newProducer(c);
    expect(errorOf(await h.produce(input({ producerId: BigInt(producerId), records: values("k") })))).toBe(null);
    await expect(h.produce(input({ producerId: 9n, partition: undefined, records: values("z") }))).rejects.toThrow(
      /partition: required with producer_id/,
    );
    await expect(h.produce(input({ producerId: 9n, timeoutMs: -1, records: values("z") }))).rejects.toThrow(/timeout_ms: -1/);
    await expect(h.produce(input({ topic: "nope", producerId: 9n, records: values("z") }))).rejects.toThrow(/topic "nope" does not exist/);
    expect(c.rm.producerMetadataWaits.started).toBe(0);
  });

  it("with producer.id.metadata.wait.ms = 0 judges at once", async () => {
    const c = await core();
    const h = new ProduceHandler(c.rm, null, undefined, 0);
    expect(errorOf(await h.produce(input({ producerId: 0n, records: values("now") })))).toBe("UNKNOWN_PRODUCER_ID");
    expect(c.rm.producerMetadataWaits.started).toBe(0);
    expect(stored(c)).toEqual([]);
  });

  it("answers SHUTTING_DOWN when the broker stops during the wait", async () => {
    const c = await core();
    const h = new ProduceHandler(c.rm);
    const p = track(h.produce(input({ producerId: 0n, records: values("s") })));
    await settle();
    expect(p.done()).toBe(false);
    c.rm.close();
    expect(errorOf(await p.result)).toBe("SHUTTING_DOWN");
  });
});
