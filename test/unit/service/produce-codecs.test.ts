/**
 * Kafka's five codecs through the service layer: a batch of each, produced as `record_batch` or
 * built by the broker from `records` with the topic's compression.type, is stored byte for byte
 * and read back (BATCHES: the same bytes; RECORDS: decoded); garbage in each codec and a
 * decompression bomb are refused, and nothing is stored.
 */
import { execFileSync } from "node:child_process";
import { compressSync as snappyRawCompress } from "snappy";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { initCodecs } from "../../../src/protocol/compression.ts";
import {
  COMPRESSION_CODEC_MASK,
  Compression,
  decodeRecords,
  encodeBatch,
  HEADER_SIZE,
  readBatchHeader,
  setBaseOffset,
} from "../../../src/protocol/record-batch.ts";
import { fetch } from "../../../src/service/fetch.ts";
import { type Cancellation, type FetchResult, RecordFormat } from "../../../src/service/fetch-types.ts";
import { ProduceHandler } from "../../../src/service/produce.ts";
import { ProduceAcks, type ProduceInput } from "../../../src/service/produce-types.ts";
import { badBatches, batchAround, rawRecord, zipBomb } from "../../fixtures/bad-batches.ts";
import { type Core, openCore } from "./helpers.ts";

beforeAll(() => initCodecs());

const cores: Core[] = [];
afterEach(async () => {
  for (const c of cores.splice(0)) await c.close();
});

const CODECS = [
  ["none", Compression.NONE],
  ["gzip", Compression.GZIP],
  ["snappy", Compression.SNAPPY],
  ["lz4", Compression.LZ4],
  ["zstd", Compression.ZSTD],
] as const;

async function coreWith(configs: Record<string, string> = {}): Promise<Core> {
  const core = openCore();
  cores.push(core);
  await core.topic("t", [1], configs);
  return core;
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

const noCancel = (): Cancellation => ({ aborted: false, onabort: null });

async function read(core: Core, format: number): Promise<FetchResult> {
  return fetch(
    core.rm,
    {
      partitions: [{ topic: "t", partition: 0, offset: 0n, maxBytes: 0 }],
      maxWaitMs: 0,
      minBytes: 0,
      maxBytes: 0,
      format,
      isolationLevel: 0,
    },
    noCancel(),
    null,
  );
}

/** The stored bytes of partition t-0 (BATCHES format), joined. */
async function storedBytes(core: Core): Promise<Buffer> {
  const r = await read(core, RecordFormat.BATCHES);
  expect(r.partitions[0]!.error).toBeNull();
  return Buffer.concat((r.partitions[0]!.batches ?? []).map((c) => Buffer.from(c)));
}

/** Values of partition t-0 as the RECORDS format decodes them. */
async function storedValues(core: Core): Promise<string[]> {
  const r = await read(core, RecordFormat.RECORDS);
  return (r.partitions[0]!.records ?? []).map((x) => Buffer.from(x.value!).toString());
}

const values = Array.from({ length: 50 }, (_, i) => `value-${i}-${"x".repeat(i * 10)}`);

describe("every Kafka codec, stored as sent", () => {
  for (const [name, codec] of CODECS) {
    it(`${name}: a producer's record_batch is stored byte for byte and decoded for RECORDS consumers`, async () => {
      const core = await coreWith();
      const h = new ProduceHandler(core.rm);
      const batch = encodeBatch(
        values.map((v, i) => ({ key: `k${i}`, value: v, headers: [{ key: "h", value: `${i}` }] })),
        { nowMs: 1000, compression: codec },
      );
      const sent = Buffer.from(batch);
      const res = await h.produce(input({ recordBatch: batch }));
      expect(res.partitions[0]!.error).toBeNull();
      const stored = await storedBytes(core);
      // The leader stamps baseOffset and the leader epoch (outside the CRC); every other byte is the producer's.
      const want = Buffer.from(sent);
      setBaseOffset(want, 0, 0);
      want.writeInt32BE(readBatchHeader(stored).partitionLeaderEpoch, 12);
      expect(stored.equals(want)).toBe(true);
      expect(stored.subarray(HEADER_SIZE).equals(sent.subarray(HEADER_SIZE))).toBe(true);
      expect(await storedValues(core)).toEqual(values);
    });

    it(`${name}: the topic's compression.type=${name} builds batches of that codec from records`, async () => {
      const core = await coreWith({ "compression.type": name });
      const h = new ProduceHandler(core.rm);
      const res = await h.produce(
        input({ records: values.map((v) => ({ key: Buffer.from("k"), value: Buffer.from(v), headers: [], timestampMs: null })) }),
      );
      expect(res.partitions[0]!.error).toBeNull();
      const stored = await storedBytes(core);
      expect(readBatchHeader(stored).attributes & COMPRESSION_CODEC_MASK).toBe(codec);
      expect(decodeRecords(stored).map((r) => r.value!.toString())).toEqual(values);
      expect(await storedValues(core)).toEqual(values);
    });
  }

  it("takes the other writers' layouts: a raw snappy block (librdkafka, kafkajs-snappy), a zstd frame without content size (streaming encoders)", async () => {
    const core = await coreWith();
    const h = new ProduceHandler(core.rm);
    const frames = Buffer.concat(values.slice(0, 10).map((v, i) => rawRecord({ offsetDelta: i, key: `k${i}`, value: v })));
    const rawSnappy = batchAround(snappyRawCompress(frames), 10, Compression.SNAPPY);
    const zstdStream = batchAround(execFileSync("zstd", ["-c", "-q"], { input: frames }), 10, Compression.ZSTD);
    for (const batch of [rawSnappy, zstdStream]) {
      const res = await h.produce(input({ recordBatch: Buffer.from(batch) }));
      expect(res.partitions[0]!.error).toBeNull();
    }
    const stored = await storedBytes(core);
    expect(stored.subarray(HEADER_SIZE, rawSnappy.length).equals(rawSnappy.subarray(HEADER_SIZE))).toBe(true);
    expect(stored.subarray(rawSnappy.length + HEADER_SIZE).equals(zstdStream.subarray(HEADER_SIZE))).toBe(true);
    expect(await storedValues(core)).toEqual([...values.slice(0, 10), ...values.slice(0, 10)]);
  });

  it("garbage in each codec is refused with CORRUPT_MESSAGE naming the codec; nothing is stored", async () => {
    const core = await coreWith();
    const h = new ProduceHandler(core.rm);
    const garbage: Array<[Buffer, RegExp]> = [
      [badBatches.garbageDeflate(), /gzip: /],
      [badBatches.garbageSnappy(), /snappy: /],
      [badBatches.garbageLz4(), /lz4 frame: /],
      [badBatches.garbageZstd(), /zstd: /],
      // Bytes that are no payload of the codec at all.
      [batchAround(Buffer.from("0123456789abcdef0123"), 1, Compression.SNAPPY), /snappy: /],
      [batchAround(Buffer.from("0123456789abcdef0123"), 1, Compression.ZSTD), /zstd: frame 0: bad magic/],
    ];
    for (const [batch, msg] of garbage) {
      const res = await h.produce(input({ recordBatch: batch }));
      const e = res.partitions[0]!.error;
      expect(e?.kind.name, String(msg)).toBe("CORRUPT_MESSAGE");
      expect(e?.message).toMatch(msg);
    }
    expect(core.rm.readPartition({ topic: "t", partition: 0, offset: 0, maxBytes: 1 << 20 }).read?.chunks ?? []).toEqual([]);
  });

  it("a decompression bomb over the bound is refused in each codec (MESSAGE_TOO_LARGE); nothing is stored", async () => {
    const core = await coreWith();
    const h = new ProduceHandler(core.rm, null, { validation: "full", decompressedBytesMax: 4 << 20 });
    for (const [name, codec] of CODECS.slice(1)) {
      const res = await h.produce(input({ recordBatch: zipBomb(codec, 32 << 20) }));
      expect(res.partitions[0]!.error?.kind.name, name).toBe("MESSAGE_TOO_LARGE");
      expect(res.partitions[0]!.error?.message).toMatch(new RegExp(`${name === "lz4" ? "lz4 frame" : name}: decompressed payload`));
    }
    expect(core.rm.readPartition({ topic: "t", partition: 0, offset: 0, maxBytes: 1 << 20 }).read?.chunks ?? []).toEqual([]);
  });
});
