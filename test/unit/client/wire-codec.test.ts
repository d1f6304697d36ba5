/**
 * The SDK's half of the hand-written codecs: ProduceRequest / ProduceStreamRequest encoders and
 * FetchResponse / SubscribeResponse decoders, byte for byte against protobuf-es, and round trips
 * with the broker's half (src/rpc/wire-codec.ts).
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { describe, expect, it } from "vitest";
import {
  decodeFetchResponse,
  decodeSubscribeResponse,
  encodeProduceRequest,
  encodeProduceStreamRequest,
} from "../../../src/client/wire-codec.ts";
import { RecordSchema } from "../../../src/gen/rill/v1/common_pb.ts";
import { FetchResponseSchema, FetchedPartitionSchema, SubscribeResponseSchema } from "../../../src/gen/rill/v1/fetch_service_pb.ts";
import { ProduceRequestSchema, ProduceStreamRequestSchema } from "../../../src/gen/rill/v1/produce_service_pb.ts";
import { decodeProduceRequest, decodeProduceStreamRequest, encodeFetchResponse } from "../../../src/rpc/wire-codec.ts";
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
  randomPartitions,
  randomProduce,
  seed,
  shuffled,
  unknownFields,
} from "../protocol/wire-fixtures.ts";

describe(`ProduceRequest encoder (SEED=${seed})`, () => {
  it.each(produceCases)("encodes like toBinary: %s", (_name, init) => {
    expectSameBytes(encodeProduceRequest(create(ProduceRequestSchema, init)), enc(ProduceRequestSchema, init));
  });

  it("encodes a plain object without protobuf-es bookkeeping", () => {
    const batch = bytes(64);
    const ours = encodeProduceRequest({ topic: "t", partition: 1, recordBatch: batch });
    expectSameBytes(ours, enc(ProduceRequestSchema, { topic: "t", partition: 1, recordBatch: batch }));
  });

  it("matches protobuf-es on random messages", () => {
    for (let i = 0; i < 300; i++) {
      const init = randomProduce();
      expectSameBytes(encodeProduceRequest(create(ProduceRequestSchema, init)), enc(ProduceRequestSchema, init));
    }
  });
});

describe("ProduceStreamRequest encoder", () => {
  it("encodes like toBinary", () => {
    for (const requestId of [0n, 1n, 2n ** 64n - 1n]) {
      const reference = enc(ProduceStreamRequestSchema, { requestId, request: fullProduce });
      expectSameBytes(encodeProduceStreamRequest({ requestId, request: fullProduce }), reference);
    }
  });

  it("takes request_id as a number", () => {
    const ours = encodeProduceStreamRequest({ requestId: 42, request: { topic: "t" } });
    expectSameBytes(ours, enc(ProduceStreamRequestSchema, { requestId: 42n, request: { topic: "t" } }));
  });

  it("encodes an end_transaction request (issue 17) like toBinary", () => {
    const endTransaction = { transactionalId: "tx-é", producerId: 2n ** 40n, producerEpoch: 32_767, commit: true };
    for (const requestId of [0n, 7n]) {
      expectSameBytes(
        encodeProduceStreamRequest({ requestId, endTransaction }),
        enc(ProduceStreamRequestSchema, { requestId, endTransaction }),
      );
    }
    const abort = { ...endTransaction, commit: false, producerEpoch: 0 };
    expectSameBytes(
      encodeProduceStreamRequest({ requestId: 1, endTransaction: abort }),
      enc(ProduceStreamRequestSchema, { requestId: 1n, endTransaction: abort }),
    );
    for (const odd of [
      { transactionalId: "", producerId: 0n, producerEpoch: 0, commit: false },
      { transactionalId: "x", producerId: -1n, producerEpoch: -1, commit: true },
    ])
      expectSameBytes(
        encodeProduceStreamRequest({ requestId: 2, endTransaction: odd }),
        enc(ProduceStreamRequestSchema, { requestId: 2n, endTransaction: odd }),
      );
  });

  it("encodes a request and the end of its transaction in one message (fields 2 and 3) like toBinary; the broker decodes both", () => {
    const endTransaction = { transactionalId: "tx-1", producerId: 5n, producerEpoch: 3, commit: true };
    const request = { ...fullProduce, transactionalId: "tx-1" };
    for (const requestId of [0n, 9n]) {
      const ours = encodeProduceStreamRequest({ requestId, request, endTransaction });
      expectSameBytes(ours, enc(ProduceStreamRequestSchema, { requestId, request, endTransaction }));
      const back = decodeProduceStreamRequest(ours);
      expect(back.requestId).toBe(requestId);
      expect(back.request?.transactionalId).toBe("tx-1");
      expect(Buffer.from(back.request!.recordBatch).equals(Buffer.from(request.recordBatch))).toBe(true);
      expect(back.endTransaction).toMatchObject(endTransaction);
    }
  });
});

describe("FetchResponse / SubscribeResponse decoder", () => {
  it("decodes like fromBinary, with record_batches as views", () => {
    const init = {
      partitions: [
        partitionInit,
        { topic: "t", records: [{ topic: "t", offset: 3n, value: bytes(4) }], error: { code: 3, name: "UNKNOWN_TOPIC_OR_PARTITION" } },
      ],
      throttleTimeMs: 1234,
    };
    const wire = Buffer.from(enc(FetchResponseSchema, init));
    const decoded = decodeFetchResponse(wire);
    expect(decoded).toEqual(dec(FetchResponseSchema, wire));
    expect(decoded.partitions[0]!.recordBatches.buffer).toBe(wire.buffer);
    expect(decodeSubscribeResponse(wire)).toEqual(dec(SubscribeResponseSchema, wire));
    expect(decoded.throttleTimeMs).toBe(1234);
  });

  it("accepts fields in any order and skips unknown fields", () => {
    const fields = [
      enc(FetchedPartitionSchema, { topic: partitionInit.topic }),
      enc(FetchedPartitionSchema, { partition: partitionInit.partition }),
      enc(FetchedPartitionSchema, { highWatermark: partitionInit.highWatermark }),
      enc(FetchedPartitionSchema, { logStartOffset: partitionInit.logStartOffset }),
      enc(FetchedPartitionSchema, { recordBatches: partitionInit.recordBatches }),
      enc(FetchedPartitionSchema, { nextOffset: partitionInit.nextOffset }),
      enc(FetchedPartitionSchema, { lastStableOffset: partitionInit.lastStableOffset }),
      unknownFields(),
    ];
    for (let i = 0; i < 20; i++) {
      const partition = concat(shuffled(fields));
      const w = new BinaryWriter();
      w.raw(unknownFields());
      w.tag(1, WireType.LengthDelimited).bytes(partition);
      w.raw(unknownFields());
      expect(decodeFetchResponse(w.finish())).toEqual(create(FetchResponseSchema, { partitions: [partitionInit] }));
    }
  });

  it("fails on truncated input with an error that names the field", () => {
    const wire = enc(FetchResponseSchema, {
      partitions: [partitionInit, { topic: "x", records: [{ value: bytes(3) }], error: { code: 1 } }],
    });
    expectTruncationsFail(
      wire,
      decodeFetchResponse,
      /^rill\.v1\.FetchResponse\.(partitions|<tag>|partitions\.(topic|partition|high_watermark|log_start_offset|records|record_batches|error|next_offset|last_stable_offset|<tag>)): /,
    );
    const broken = Buffer.from(enc(FetchResponseSchema, { partitions: [{ recordBatches: bytes(10) }] }));
    broken[3] = 0x30; // record_batches length 10 -> 48
    expect(() => decodeFetchResponse(broken)).toThrow(/^rill\.v1\.FetchResponse\.partitions\.record_batches: length 48 runs past the end/);
  });

  it("matches protobuf-es on random messages", () => {
    for (let i = 0; i < 200; i++) {
      const reference = toBinary(FetchResponseSchema, create(FetchResponseSchema, { partitions: randomPartitions() }));
      expect(decodeFetchResponse(reference)).toEqual(dec(FetchResponseSchema, reference));
    }
  });
});

describe("round trips with the broker's codecs", () => {
  it("a FetchResponse the broker encodes decodes to the same message", () => {
    const msg = create(FetchResponseSchema, { partitions: [partitionInit] });
    expect(decodeFetchResponse(new Uint8Array(encodeFetchResponse(msg)))).toEqual(msg);
  });

  it("a ProduceRequest and a ProduceStreamRequest the SDK encodes decode to the same messages", () => {
    const produce = create(ProduceRequestSchema, { ...fullProduce, records: [create(RecordSchema, { key: bytes(1) })] });
    expect(decodeProduceRequest(new Uint8Array(encodeProduceRequest(produce)))).toEqual(produce);
    const stream = encodeProduceStreamRequest({ requestId: 5n, request: produce });
    expect(decodeProduceStreamRequest(new Uint8Array(stream))).toEqual(
      create(ProduceStreamRequestSchema, { requestId: 5n, request: produce }),
    );
  });
});
