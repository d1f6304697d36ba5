/**
 * The broker's half of the hand-written codecs: ProduceRequest / ProduceStreamRequest decoders
 * and FetchResponse / SubscribeResponse encoders, byte for byte against protobuf-es. The SDK's
 * half is tested in test/unit/client/wire-codec.test.ts.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { WireType } from "@bufbuild/protobuf/wire";
import { describe, expect, it } from "vitest";
import { ConsumedRecordSchema, ErrorDetailSchema } from "../../../src/gen/rill/v1/common_pb.ts";
import { FetchResponseSchema, SubscribeResponseSchema } from "../../../src/gen/rill/v1/fetch_service_pb.ts";
import { ConsumeResponseSchema } from "../../../src/gen/rill/v1/group_service_pb.ts";
import {
  EndTransactionRequestSchema,
  ProduceRequestSchema,
  ProduceStreamRequestSchema,
} from "../../../src/gen/rill/v1/produce_service_pb.ts";
import {
  TRANSIENT_ENCODE_BYTES_MAX,
  decodeProduceRequest,
  decodeProduceStreamRequest,
  encodeConsumeRecords,
  encodeConsumeResponseTransient,
  encodeFetchResponse,
  encodeFetchResponseTransient,
  encodeSubscribeResponse,
} from "../../../src/rpc/wire-codec.ts";
import { decodeFetchResponse } from "../../../src/client/wire-codec.ts";
import { toConsumedRecord } from "../../../src/rpc/fetch-service.ts";
import { TimestampType } from "../../../src/protocol/record-batch.ts";
import { FetchedRecords } from "../../../src/service/fetched-records.ts";
import type { FetchedRecord } from "../../../src/service/fetch-types.ts";
import {
  bytes,
  concat,
  dec,
  enc,
  expectSameBytes,
  expectTruncationsFail,
  fullProduce,
  partitionInit,
  produceCases,
  rnd,
  randomPartitions,
  randomProduce,
  recordsProduce,
  seed,
  shuffled,
  unknownFields,
  written,
} from "../protocol/wire-fixtures.ts";

const pick = <T>(xs: readonly T[]): T => xs[rnd.int(xs.length)]!;

/** A random topic name, partition and records as the service reads them (edge values included). */
function randomFetchedPartition(): { topic: string; partition: number; records: FetchedRecord[] } {
  const maybeBytes = (): Uint8Array | null => pick([null, bytes(0), bytes(1 + rnd.int(300), rnd.int(256))]);
  const records: FetchedRecord[] = Array.from({ length: rnd.int(6) }, () => ({
    offset: pick([0, 1, 127, 128, 2 ** 31, 2 ** 40 + rnd.int(1000), Number.MAX_SAFE_INTEGER]),
    timestampMs: pick([0, -1, 1_700_000_000_000 + rnd.int(1e6), 5]),
    timestampType: pick([TimestampType.CREATE_TIME, TimestampType.LOG_APPEND_TIME]),
    leaderEpoch: pick([0, -1, 3, 300, 2 ** 31 - 1]),
    key: maybeBytes(),
    value: maybeBytes(),
    headers: Array.from({ length: pick([0, 0, 1, 3]) }, () => ({ key: pick(["", "h", "ключ"]), value: maybeBytes() })),
  }));
  return { topic: pick(["", "t", "orders-é", "x".repeat(200)]), partition: pick([0, 1, 127, 128, 99_999]), records };
}

describe(`ProduceRequest decoder (SEED=${seed})`, () => {
  it.each(produceCases)("decodes like fromBinary: %s", (_name, init) => {
    const reference = enc(ProduceRequestSchema, init);
    expect(decodeProduceRequest(reference)).toEqual(dec(ProduceRequestSchema, reference));
  });

  it("slices record_batch out of the received buffer without a copy", () => {
    const wire = Buffer.from(enc(ProduceRequestSchema, fullProduce));
    const decoded = decodeProduceRequest(wire);
    expect(decoded.recordBatch.buffer).toBe(wire.buffer);
    expect(decoded.recordBatch.byteOffset).toBeGreaterThanOrEqual(wire.byteOffset);
    expect(decoded.recordBatch.byteOffset + decoded.recordBatch.length).toBeLessThanOrEqual(wire.byteOffset + wire.length);
    wire[wire.length - 1]! ^= 0xff; // the last byte of the batch (field 4 is followed by varints only)
    expect(decoded.recordBatch).not.toEqual(fullProduce.recordBatch);
  });

  it("accepts fields in any order and skips unknown fields", () => {
    const fields = [
      enc(ProduceRequestSchema, { topic: fullProduce.topic }),
      enc(ProduceRequestSchema, { partition: fullProduce.partition }),
      enc(ProduceRequestSchema, { recordBatch: fullProduce.recordBatch }),
      enc(ProduceRequestSchema, { acks: fullProduce.acks }),
      enc(ProduceRequestSchema, { timeoutMs: fullProduce.timeoutMs }),
      enc(ProduceRequestSchema, { producerId: fullProduce.producerId }),
      enc(ProduceRequestSchema, { producerEpoch: fullProduce.producerEpoch }),
      enc(ProduceRequestSchema, { baseSequence: fullProduce.baseSequence }),
      enc(ProduceRequestSchema, { records: recordsProduce.records }),
      unknownFields(),
      unknownFields(),
    ];
    for (let i = 0; i < 20; i++) {
      const wire = concat(shuffled(fields));
      expect(decodeProduceRequest(wire)).toEqual(create(ProduceRequestSchema, { ...fullProduce, records: recordsProduce.records }));
    }
  });

  it("keeps the last value of a repeated singular field", () => {
    const wire = concat([enc(ProduceRequestSchema, { topic: "a", partition: 1 }), enc(ProduceRequestSchema, { topic: "b", partition: 2 })]);
    expect(decodeProduceRequest(wire)).toMatchObject({ topic: "b", partition: 2 });
  });

  it("fails on truncated input with an error that names the field", () => {
    const wire = enc(ProduceRequestSchema, { ...fullProduce, records: recordsProduce.records });
    expectTruncationsFail(
      wire,
      decodeProduceRequest,
      /^rill\.v1\.ProduceRequest\.(topic|partition|records|record_batch|acks|timeout_ms|producer_id|producer_epoch|base_sequence|<tag>): .* \(at byte \d+\)$/,
    );
    expect(() => decodeProduceRequest(wire.subarray(0, wire.length - 1))).toThrow(
      /ProduceRequest\.base_sequence: varint runs past the end/,
    );
  });

  it("names the field of malformed input", () => {
    const w = written;
    const cases: Array<[Uint8Array, RegExp]> = [
      [w((x) => x.tag(4, WireType.Varint).int32(1)), /ProduceRequest\.record_batch: unexpected wire type 0/],
      [w((x) => x.tag(1, WireType.LengthDelimited).bytes(new Uint8Array([0x66, 0xff, 0xfe]))), /ProduceRequest\.topic: invalid UTF-8/],
      [
        w((x) => x.tag(4, WireType.LengthDelimited).uint32(100).raw(bytes(10))),
        /ProduceRequest\.record_batch: length 100 runs past the end/,
      ],
      [
        w((x) => x.tag(4, WireType.LengthDelimited).raw(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f]))),
        /ProduceRequest\.record_batch: length does not fit in 31 bits/,
      ],
      [
        w((x) => x.tag(4, WireType.LengthDelimited).raw(new Uint8Array([0x81, 0x80, 0x80, 0x80, 0x80, 0x00]))),
        /ProduceRequest\.record_batch: length does not fit in 31 bits/,
      ],
      [w((x) => x.tag(3, WireType.LengthDelimited).bytes(new Uint8Array([0x0a, 0x05]))), /ProduceRequest\.records: /],
      [w((x) => x.tag(2, WireType.Varint).raw(new Uint8Array(11).fill(0xff))), /ProduceRequest\.partition: varint is longer than 10 bytes/],
      [w((x) => x.tag(50, 7 as WireType)), /ProduceRequest\.<field 50>: invalid wire type 7/],
      [w((x) => x.tag(50, WireType.StartGroup).tag(51, WireType.EndGroup)), /ProduceRequest\.<field 50>: mismatched group end/],
      [new Uint8Array([0x00]), /ProduceRequest\.<field 0>: invalid field number 0/],
    ];
    for (const [data, message] of cases) expect(() => decodeProduceRequest(data)).toThrow(message);
  });

  it("matches protobuf-es on random messages", () => {
    for (let i = 0; i < 300; i++) {
      const reference = enc(ProduceRequestSchema, randomProduce());
      expect(decodeProduceRequest(reference)).toEqual(dec(ProduceRequestSchema, reference));
    }
  });
});

describe("ProduceStreamRequest decoder", () => {
  it("decodes like fromBinary, the batch a view of the input", () => {
    for (const requestId of [0n, 1n, 2n ** 64n - 1n]) {
      const reference = enc(ProduceStreamRequestSchema, { requestId, request: fullProduce });
      const decoded = decodeProduceStreamRequest(reference);
      expect(decoded).toEqual(dec(ProduceStreamRequestSchema, reference));
      expect(decoded.request?.recordBatch.buffer).toBe(reference.buffer);
    }
  });

  it("merges a repeated nested request and skips unknown fields", () => {
    const wire = concat([
      enc(ProduceStreamRequestSchema, { request: { topic: "a", recordBatch: bytes(5) } }),
      unknownFields(),
      enc(ProduceStreamRequestSchema, { requestId: 9n, request: { partition: 4 } }),
    ]);
    expect(decodeProduceStreamRequest(wire)).toEqual(
      create(ProduceStreamRequestSchema, { requestId: 9n, request: { topic: "a", recordBatch: bytes(5), partition: 4 } }),
    );
  });

  it("decodes an end_transaction request (issue 17) like fromBinary", () => {
    const reference = enc(ProduceStreamRequestSchema, {
      requestId: 3n,
      endTransaction: { transactionalId: "tx-1", producerId: 12n, producerEpoch: 4, commit: true },
    });
    expect(decodeProduceStreamRequest(reference)).toEqual(dec(ProduceStreamRequestSchema, reference));
    const truncated = reference.subarray(0, reference.length - 1);
    expect(() => decodeProduceStreamRequest(truncated)).toThrow(/^rill\.v1\.ProduceStreamRequest\.end_transaction/);
  });

  it("decodes end_transaction by hand like fromBinary: defaults, extremes, unknown fields, a repeated field merged, with a request", () => {
    const ends = [
      {},
      { transactionalId: "tx-é", producerId: 2n ** 53n - 1n, producerEpoch: 32_767, commit: true },
      { transactionalId: "a", producerId: -1n, producerEpoch: -1, commit: false },
    ];
    for (const endTransaction of ends) {
      const reference = enc(ProduceStreamRequestSchema, { requestId: 1n, endTransaction });
      expect(decodeProduceStreamRequest(reference)).toEqual(dec(ProduceStreamRequestSchema, reference));
    }
    const inner = concat([unknownFields(), enc(EndTransactionRequestSchema, { transactionalId: "x", commit: true })]);
    const merged = concat([
      enc(ProduceStreamRequestSchema, { endTransaction: { producerId: 7n } }),
      written((w) => w.tag(3, WireType.LengthDelimited).bytes(inner)),
      enc(ProduceStreamRequestSchema, { request: { topic: "t", recordBatch: bytes(9) } }),
    ]);
    expect(decodeProduceStreamRequest(merged)).toEqual(dec(ProduceStreamRequestSchema, merged));
    expect(decodeProduceStreamRequest(merged).endTransaction).toMatchObject({ transactionalId: "x", producerId: 7n, commit: true });
  });

  it("names the nested field of malformed input", () => {
    const wire = enc(ProduceStreamRequestSchema, { requestId: 1n, request: { topic: "t", recordBatch: bytes(100) } });
    const broken = Buffer.from(wire);
    broken[wire.length - 101] = 0x7f; // batch length prefix (1 byte) -> 127, past the nested end
    expect(() => decodeProduceStreamRequest(broken)).toThrow(
      /^rill\.v1\.ProduceStreamRequest\.request\.record_batch: length 127 runs past/,
    );
    expectTruncationsFail(wire, decodeProduceStreamRequest, /^rill\.v1\.ProduceStreamRequest\.(request_id|request|<tag>)/);
  });
});

describe("FetchResponse / SubscribeResponse encoder", () => {
  it("writes record_batches from chunks, byte for byte as toBinary of the concatenation", () => {
    const whole = partitionInit.recordBatches;
    const chunks = [whole.subarray(0, 100), whole.subarray(100, 100), whole.subarray(100, 2500), whole.subarray(2500)];
    const error = create(ErrorDetailSchema, { code: 1, name: "OFFSET_OUT_OF_RANGE", message: "offset 5 < 10", retriable: false });
    const partitions = [
      { ...partitionInit, recordBatches: chunks },
      { topic: "other", partition: 0, highWatermark: -1, logStartOffset: 0, error },
      { topic: "", partition: 0 },
    ];
    const reference = enc(FetchResponseSchema, {
      partitions: [partitionInit, { topic: "other", highWatermark: -1n, error }, {}],
    });
    expectSameBytes(encodeFetchResponse({ partitions }), reference);
    expectSameBytes(
      encodeSubscribeResponse({ partitions }),
      enc(SubscribeResponseSchema, { partitions: [partitionInit, { topic: "other", highWatermark: -1n, error }, {}] }),
    );
  });

  it("encodes RECORDS-format partitions through protobuf-es", () => {
    const records = [
      create(ConsumedRecordSchema, {
        topic: "t",
        partition: 1,
        offset: 7n,
        timestampMs: 5n,
        key: bytes(2),
        value: bytes(9),
        headers: [{ key: "a" }],
      }),
      create(ConsumedRecordSchema, { topic: "t", partition: 1, offset: 8n }),
    ];
    const msg = create(FetchResponseSchema, { partitions: [{ topic: "t", partition: 1, records, nextOffset: 9n }] });
    expectSameBytes(encodeFetchResponse(msg), toBinary(FetchResponseSchema, msg));
  });

  it("encodes the service's records (fetchedRecords) by hand, byte for byte as protobuf-es encodes them as ConsumedRecords", () => {
    for (let i = 0; i < 300; i++) {
      const { topic, partition, records } = randomFetchedPartition();
      const out = encodeFetchResponse({ partitions: [{ topic, partition, nextOffset: 9, fetchedRecords: FetchedRecords.of(records) }] });
      const reference = create(FetchResponseSchema, {
        partitions: [{ topic, partition, nextOffset: 9n, records: records.map((r) => toConsumedRecord(topic, partition, r)) }],
      });
      expectSameBytes(out, toBinary(FetchResponseSchema, reference));
    }
  });

  it("encodes Consume's records (ConsumeResponse.records, RECORDS) by hand, byte for byte as protobuf-es; other Consume answers through protobuf-es", () => {
    for (let i = 0; i < 300; i++) {
      const { topic, partition, records } = randomFetchedPartition();
      const m = {
        topic,
        partition,
        highWatermark: pick([0, -1, 5, 2 ** 35]),
        nextOffset: pick([0, 9, 2 ** 33]),
        firstOffset: pick([0, 7, 128]),
        seekId: pick([0n, 1n, 300n, 2n ** 64n - 1n]),
        throttleTimeMs: pick([0, 1, 30_000]),
        fetchedRecords: FetchedRecords.of(records),
      };
      const reference = create(ConsumeResponseSchema, {
        kind: {
          case: "records",
          value: {
            topic,
            partition,
            records: records.map((r) => toConsumedRecord(topic, partition, r)),
            highWatermark: BigInt(m.highWatermark),
            nextOffset: BigInt(m.nextOffset),
            firstOffset: BigInt(m.firstOffset),
            throttleTimeMs: m.throttleTimeMs,
            seekId: m.seekId,
          },
        },
      });
      expectSameBytes(encodeConsumeRecords(m), toBinary(ConsumeResponseSchema, reference));
      expectSameBytes(encodeConsumeResponseTransient(m), toBinary(ConsumeResponseSchema, reference));
      expect(fromBinary(ConsumeResponseSchema, new Uint8Array(encodeConsumeRecords(m)))).toEqual(reference);
    }
    const assignment = create(ConsumeResponseSchema, { kind: { case: "assignment", value: { memberId: "m", memberEpoch: 3 } } });
    expectSameBytes(encodeConsumeResponseTransient(assignment), toBinary(ConsumeResponseSchema, assignment));
  });

  it("writes aborted_transactions (field 10) byte for byte as protobuf-es, and the SDK decoder reads them back", () => {
    const msg = create(FetchResponseSchema, {
      partitions: [
        {
          ...partitionInit,
          lastStableOffset: 7n,
          abortedTransactions: [
            { producerId: 3n, firstOffset: 0n },
            { producerId: 2n ** 40n, firstOffset: 12_345_678_901n },
          ],
        },
      ],
    });
    const out = encodeFetchResponse({
      partitions: [
        {
          ...partitionInit,
          lastStableOffset: 7,
          abortedTransactions: [
            { producerId: 3, firstOffset: 0 },
            { producerId: 2 ** 40, firstOffset: 12_345_678_901 },
          ],
        },
      ],
    });
    expectSameBytes(out, toBinary(FetchResponseSchema, msg));
    const back = decodeFetchResponse(out).partitions[0]!;
    expect(back.abortedTransactions.map((a) => [a.producerId, a.firstOffset])).toEqual([
      [3n, 0n],
      [2n ** 40n, 12_345_678_901n],
    ]);
  });

  it("writes preferred_read_replica (field 11, KIP-392) byte for byte as protobuf-es, 0 included (it has presence), and the SDK decoder reads it back", () => {
    for (const preferredReadReplica of [0, 1, 3, 200, 2 ** 31 - 1]) {
      const msg = create(FetchResponseSchema, { partitions: [{ ...partitionInit, highWatermark: 20n, preferredReadReplica }] });
      const out = encodeFetchResponse({ partitions: [{ ...partitionInit, highWatermark: 20, preferredReadReplica }] });
      expectSameBytes(out, toBinary(FetchResponseSchema, msg));
      expect(decodeFetchResponse(out).partitions[0]!.preferredReadReplica).toBe(preferredReadReplica);
    }
    // Absent: not written, and absent when read back.
    const none = encodeFetchResponse({ partitions: [partitionInit] });
    expect(decodeFetchResponse(none).partitions[0]!.preferredReadReplica).toBeUndefined();
  });

  it("writes throttle_time_ms (field 2) after the partitions, as protobuf-es does", () => {
    for (const throttleTimeMs of [1, 127, 128, 11_000, 0x7fffffff]) {
      const msg = create(FetchResponseSchema, { partitions: [partitionInit], throttleTimeMs });
      expectSameBytes(encodeFetchResponse(msg), toBinary(FetchResponseSchema, msg));
      expectSameBytes(encodeFetchResponse({ partitions: [], throttleTimeMs }), toBinary(FetchResponseSchema, { ...msg, partitions: [] }));
    }
  });

  it("matches protobuf-es on random messages", () => {
    for (let i = 0; i < 200; i++) {
      const msg = create(FetchResponseSchema, { partitions: randomPartitions(), throttleTimeMs: i % 3 === 0 ? i * 97 : 0 });
      expectSameBytes(encodeFetchResponse(msg), toBinary(FetchResponseSchema, msg));
    }
  });

  it("the server's transient encoder writes the same bytes into one reused buffer", () => {
    const small = create(FetchResponseSchema, { partitions: [partitionInit] });
    const other = create(FetchResponseSchema, { partitions: [{ ...partitionInit, topic: "other", recordBatches: bytes(3000, 7) }] });
    const a = encodeFetchResponseTransient(small);
    expectSameBytes(a, toBinary(FetchResponseSchema, small));
    const b = encodeFetchResponseTransient(other);
    expectSameBytes(b, toBinary(FetchResponseSchema, other));
    expect(b.buffer).toBe(a.buffer); // reused: `a` is only valid until this call
    const huge = { partitions: [{ topic: "t", partition: 0, recordBatches: [new Uint8Array(TRANSIENT_ENCODE_BYTES_MAX)] }] };
    const c = encodeFetchResponseTransient(huge);
    expect(c.buffer).not.toBe(a.buffer); // larger than the reused buffer may grow: its own
    expect(c.length).toBeGreaterThan(TRANSIENT_ENCODE_BYTES_MAX);
  });
});
