/**
 * Issue 14, "poisoned partition", through a real broker's gRPC Produce: each bad batch is refused
 * with its code in the partition's result, the log end offset and the stored bytes stay as they
 * were, and a good batch still appends after it. `produce.validation=structure` is plumbed through.
 */
import { create } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Broker } from "../../src/broker/broker.ts";
import { CreateTopicsRequestSchema } from "../../src/gen/rill/v1/admin_service_pb.ts";
import { OffsetSpec, RecordFormat } from "../../src/gen/rill/v1/common_pb.ts";
import {
  FetchRequestSchema,
  ListOffsetsRequestSchema,
  type FetchResponse,
  type ListOffsetsResponse,
} from "../../src/gen/rill/v1/fetch_service_pb.ts";
import { Acks, ProduceRequestSchema, type ProduceResponse } from "../../src/gen/rill/v1/produce_service_pb.ts";
import { initCodecs } from "../../src/protocol/compression.ts";
import { Compression, decodeRecords, encodeBatch, HEADER_SIZE } from "../../src/protocol/record-batch.ts";
import { badBatches, goodBatch, zipBomb } from "../fixtures/bad-batches.ts";
import { call, clients, errorName, rmTmp, tmpDir } from "./rpc-helpers.ts";

const dirs: string[] = [];
const brokers: Broker[] = [];
const conns: Array<ReturnType<typeof clients>> = [];

async function start(validation?: "full" | "structure"): Promise<ReturnType<typeof clients>> {
  const dir = tmpDir();
  dirs.push(dir);
  const b = await Broker.start({
    dataDir: dir,
    listen: "127.0.0.1:0",
    shutdownGraceMs: 500,
    ...(validation ? { config: { produceValidation: validation } } : {}),
  });
  brokers.push(b);
  const c = clients(b.address);
  conns.push(c);
  return c;
}

afterAll(async () => {
  for (const c of conns) c.close();
  for (const b of brokers) await b.close();
  for (const d of dirs) rmTmp(d);
});

type Conn = ReturnType<typeof clients>;

const createTopic = (c: Conn, name: string, configs: Record<string, string> = {}) =>
  call(c.admin, "createTopics", create(CreateTopicsRequestSchema, { topics: [{ name, partitions: 2, configs }] }));

const produceBatch = (c: Conn, topic: string, recordBatch: Buffer): Promise<ProduceResponse> =>
  call(c.produce, "produce", create(ProduceRequestSchema, { topic, partition: 0, recordBatch, acks: Acks.ALL }));

/** Log end offset and every stored byte of partition 0. */
async function stored(c: Conn, topic: string): Promise<{ end: bigint; bytes: string }> {
  const lo: ListOffsetsResponse = await call(
    c.fetch,
    "listOffsets",
    create(ListOffsetsRequestSchema, { partitions: [{ topic, partition: 0, spec: OffsetSpec.LATEST }] }),
  );
  const f: FetchResponse = await call(
    c.fetch,
    "fetch",
    create(FetchRequestSchema, { partitions: [{ topic, partition: 0, offset: 0n }], format: RecordFormat.BATCHES, maxBytes: 1 << 20 }),
  );
  return { end: lo.partitions[0]!.offset, bytes: Buffer.from(f.partitions[0]!.recordBatches).toString("hex") };
}

describe("Produce with produce.validation=full (the default)", () => {
  let c: Conn;
  beforeAll(async () => {
    await initCodecs();
    c = await start();
    await createTopic(c, "poison");
    await createTopic(c, "compacted", { "cleanup.policy": "compact" });
    await createTopic(c, "small", { "max.message.bytes": "1024" });
    expect((await produceBatch(c, "poison", goodBatch())).partitions[0]!.error).toBeUndefined();
  });

  const expected: Array<[keyof typeof badBatches, string]> = [
    ["garbageDeflate", "CORRUPT_MESSAGE"],
    ["gzipOfNonRecords", "RECORD_COUNT_MISMATCH"],
    ["garbageLz4", "CORRUPT_MESSAGE"],
    ["garbageSnappy", "CORRUPT_MESSAGE"],
    ["garbageZstd", "CORRUPT_MESSAGE"],
    ["hugeKeyLength", "CORRUPT_MESSAGE"],
    ["hugeKeyLengthLz4", "CORRUPT_MESSAGE"],
    ["negativeHeaderCount", "CORRUPT_MESSAGE"],
    ["offsetDeltasShifted", "INVALID_RECORD"],
    ["timestampAfterMax", "INVALID_TIMESTAMP"],
    ["negativeTimestamp", "INVALID_TIMESTAMP"],
    ["control", "INVALID_RECORD"],
    ["transactional", "INVALID_RECORD"],
  ];

  it("refuses each bad batch in the partition's result; nothing stored; a good batch still appends", async () => {
    for (const [name, code] of expected) {
      const before = await stored(c, "poison");
      const res = await produceBatch(c, "poison", badBatches[name]());
      expect(res.partitions[0]!.error?.name, name).toBe(code);
      expect(res.partitions[0]!.error?.message, name).toMatch(/^record_batch: batch at byte 0: /);
      expect(res.partitions[0]!.baseOffset).toBe(-1n);
      expect(await stored(c, "poison"), name).toEqual(before);
    }
    const before = await stored(c, "poison");
    const ok = await produceBatch(c, "poison", goodBatch(Compression.LZ4));
    expect(ok.partitions[0]!.error).toBeUndefined();
    expect(ok.partitions[0]!.baseOffset).toBe(before.end);
    expect((await stored(c, "poison")).end).toBe(before.end + 3n);
  });

  it("stores a batch of each of Kafka's codecs as sent and serves it back, BATCHES as stored, RECORDS decoded", async () => {
    for (const codec of [Compression.NONE, Compression.GZIP, Compression.SNAPPY, Compression.LZ4, Compression.ZSTD]) {
      const topic = `codec-${codec}`;
      await createTopic(c, topic);
      const batch = encodeBatch(
        Array.from({ length: 40 }, (_, i) => ({ key: `k${i}`, value: `value ${i} ${"z".repeat(i * 5)}` })),
        { nowMs: 1000, compression: codec },
      );
      const res = await produceBatch(c, topic, Buffer.from(batch));
      expect(res.partitions[0]!.error, `codec ${codec}`).toBeUndefined();
      const got = Buffer.from((await stored(c, topic)).bytes, "hex");
      expect(got.subarray(HEADER_SIZE).equals(batch.subarray(HEADER_SIZE)), `codec ${codec}`).toBe(true);
      const asRecords: FetchResponse = await call(
        c.fetch,
        "fetch",
        create(FetchRequestSchema, { partitions: [{ topic, partition: 0, offset: 0n }], format: RecordFormat.RECORDS, maxBytes: 1 << 20 }),
      );
      expect(asRecords.partitions[0]!.records.map((r) => Buffer.from(r.value!).toString())).toEqual(
        decodeRecords(batch).map((r) => r.value!.toString()),
      );
    }
  });

  it("refuses a zip bomb (gzip of 80 MiB of zeros) past request.max.bytes without storing it", async () => {
    const before = await stored(c, "poison");
    const res = await produceBatch(c, "poison", zipBomb(Compression.GZIP, 80 << 20));
    expect(res.partitions[0]!.error?.name).toBe("MESSAGE_TOO_LARGE");
    expect(res.partitions[0]!.error?.message).toMatch(/decompressed payload exceeds 67108864 bytes/);
    expect(await stored(c, "poison")).toEqual(before);
  });

  it("refuses a record without a key on a compacted topic, on both paths", async () => {
    const viaBatch = await produceBatch(c, "compacted", encodeBatch([{ value: "no key" }], { nowMs: 1 }));
    expect(viaBatch.partitions[0]!.error?.name).toBe("INVALID_RECORD");
    const whole = await call(
      c.produce,
      "produce",
      create(ProduceRequestSchema, { topic: "compacted", partition: 0, records: [{ value: Buffer.from("x") }] }),
    ).then(
      () => null,
      (e: unknown) => e,
    );
    expect(errorName(whole)).toBe("INVALID_RECORD");
    expect((whole as Error).message).toMatch(/records\[0\]\.key: missing/);
    expect((await stored(c, "compacted")).end).toBe(0n);
    expect((await produceBatch(c, "compacted", goodBatch())).partitions[0]!.error).toBeUndefined();
  });

  it("answers an oversized batch in the partition's result on the record_batch path, as on the records path", async () => {
    const big = "x".repeat(2000);
    const viaBatch = await produceBatch(c, "small", encodeBatch([{ value: big }], { nowMs: 1 }));
    const viaRecords: ProduceResponse = await call(
      c.produce,
      "produce",
      create(ProduceRequestSchema, { topic: "small", partition: 0, records: [{ value: Buffer.from(big) }] }),
    );
    for (const res of [viaBatch, viaRecords]) {
      expect(res.partitions[0]!.error?.name).toBe("MESSAGE_TOO_LARGE");
      expect(res.partitions[0]!.error?.message).toMatch(/max\.message\.bytes 1024/);
    }
    expect((await stored(c, "small")).end).toBe(0n);
  });
});

describe("Produce with produce.validation=structure", () => {
  it("trusts the inside of a compressed batch, still refuses the control bit", async () => {
    const c = await start("structure");
    await createTopic(c, "trusted");
    expect((await produceBatch(c, "trusted", badBatches.hugeKeyLengthLz4())).partitions[0]!.error).toBeUndefined();
    expect((await produceBatch(c, "trusted", badBatches.control())).partitions[0]!.error?.name).toBe("INVALID_RECORD");
    expect((await stored(c, "trusted")).end).toBe(1n);
  });
});
