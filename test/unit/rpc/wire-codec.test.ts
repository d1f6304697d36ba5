import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { DescMessage, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { describe, expect, it } from "vitest";
import { SeededRandom } from "../../../src/base/random.ts";
import { ConsumedRecordSchema, ErrorDetailSchema, RecordSchema } from "../../../src/gen/rill/v1/common_pb.ts";
import { FetchResponseSchema, FetchedPartitionSchema, SubscribeResponseSchema } from "../../../src/gen/rill/v1/fetch_service_pb.ts";
import { Acks, ProduceRequestSchema, ProduceStreamRequestSchema } from "../../../src/gen/rill/v1/produce_service_pb.ts";
import {
  WireFormatError,
  decodeProduceRequest,
  decodeProduceStreamRequest,
  TRANSIENT_ENCODE_BYTES_MAX,
  encodeFetchResponse,
  encodeFetchResponseTransient,
  encodeSubscribeResponse,
} from "../../../src/rpc/wire-codec.ts";
import {
  decodeFetchResponse,
  decodeSubscribeResponse,
  encodeProduceRequest,
  encodeProduceStreamRequest,
} from "../../../src/client/wire-codec.ts";

const seed = Number(process.env.SEED ?? Date.now() % 1_000_000);
const rnd = new SeededRandom(seed);

function bytes(n: number, fill = 0): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (fill + i * 31) & 0xff;
  return b;
}

function enc<D extends DescMessage>(schema: D, init: MessageInitShape<D>): Uint8Array {
  return toBinary(schema, create(schema, init));
}

function dec<D extends DescMessage>(schema: D, data: Uint8Array): MessageShape<D> {
  return fromBinary(schema, data, { readUnknownFields: false });
}

/** Concatenation as a plain Uint8Array (decoded `bytes` fields are views of the same type). */
function concat(parts: readonly Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

/** Byte equality (as hex, which vitest compares much faster than arrays of numbers). */
function expectSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(Buffer.from(actual).toString("hex")).toBe(Buffer.from(expected).toString("hex"));
}

/** Unknown fields of every wire type, including a nested group. */
function unknownFields(): Uint8Array {
  const w = new BinaryWriter();
  w.tag(99, WireType.Varint).int64(-5n);
  w.tag(100, WireType.LengthDelimited).bytes(bytes(300));
  w.tag(101, WireType.Bit32).fixed32(7);
  w.tag(102, WireType.Bit64).fixed64(9n);
  w.tag(103, WireType.StartGroup);
  w.tag(1, WireType.Varint).int32(1);
  w.tag(104, WireType.StartGroup).tag(2, WireType.LengthDelimited).string("x").tag(104, WireType.EndGroup);
  w.tag(103, WireType.EndGroup);
  return w.finish();
}

function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = rnd.int(i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Every prefix that cuts a field in half must fail with an error naming `path`. */
function expectTruncationsFail(data: Uint8Array, decode: (b: Uint8Array) => unknown, path: RegExp): void {
  let failures = 0;
  for (let n = 0; n < data.length; n++) {
    try {
      decode(data.subarray(0, n));
    } catch (e) {
      expect(e).toBeInstanceOf(WireFormatError);
      expect((e as Error).message).toMatch(path);
      failures++;
    }
  }
  expect(failures).toBeGreaterThan(0);
}

const fullProduce = {
  topic: "orders",
  partition: 3,
  recordBatch: bytes(1000, 7),
  acks: Acks.LEADER,
  timeoutMs: 30_000,
  producerId: 123_456_789_012n,
  producerEpoch: 2,
  baseSequence: 77,
} satisfies MessageInitShape<typeof ProduceRequestSchema>;

const recordsProduce = {
  topic: "tópico-ü", // non-ASCII
  records: [
    { key: bytes(3), value: bytes(10), headers: [{ key: "h", value: bytes(2) }], timestampMs: 1_700_000_000_000n },
    { value: new Uint8Array(0) },
    {},
  ],
} satisfies MessageInitShape<typeof ProduceRequestSchema>;

describe(`ProduceRequest codec (SEED=${seed})`, () => {
  const cases: Array<[string, MessageInitShape<typeof ProduceRequestSchema>]> = [
    ["empty", {}],
    ["batch", fullProduce],
    ["records", recordsProduce],
    ["partition 0 is written (explicit presence)", { topic: "t", partition: 0, producerId: 0n }],
    ["negative ints take 10 bytes", { topic: "t", partition: -1, timeoutMs: -2, producerId: -1n, baseSequence: -2147483648 }],
    ["int64 extremes", { producerId: 9223372036854775807n, producerEpoch: 2147483647 }],
  ];

  it.each(cases)("encodes like toBinary and decodes like fromBinary: %s", (_name, init) => {
    const reference = enc(ProduceRequestSchema, init);
    const msg = create(ProduceRequestSchema, init);
    expectSameBytes(encodeProduceRequest(msg), reference);
    expect(decodeProduceRequest(reference)).toEqual(dec(ProduceRequestSchema, reference));
  });

  it("encodes a plain object without protobuf-es bookkeeping", () => {
    const batch = bytes(64);
    const ours = encodeProduceRequest({ topic: "t", partition: 1, recordBatch: batch });
    expectSameBytes(ours, enc(ProduceRequestSchema, { topic: "t", partition: 1, recordBatch: batch }));
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
    const w = (f: (w: BinaryWriter) => void): Uint8Array => {
      const writer = new BinaryWriter();
      f(writer);
      return writer.finish();
    };
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
      const init = randomProduce();
      const reference = enc(ProduceRequestSchema, init);
      expectSameBytes(encodeProduceRequest(create(ProduceRequestSchema, init)), reference);
      expect(decodeProduceRequest(reference)).toEqual(dec(ProduceRequestSchema, reference));
    }
  });
});

function randomInt32(): number {
  const r = rnd.int(4);
  return r === 0 ? 0 : r === 1 ? rnd.int(200) : r === 2 ? rnd.int(2 ** 31) : -rnd.int(2 ** 31);
}

function randomInt64(): bigint {
  const r = rnd.int(4);
  if (r === 0) return 0n;
  if (r === 1) return BigInt(rnd.int(2 ** 30));
  const v = (BigInt(rnd.int(2 ** 31)) << 32n) | BigInt(rnd.int(2 ** 32));
  return r === 2 ? v : -v;
}

function maybe<T>(f: () => T): T | undefined {
  return rnd.int(2) === 0 ? undefined : f();
}

function randomProduce(): MessageInitShape<typeof ProduceRequestSchema> {
  const init: MessageInitShape<typeof ProduceRequestSchema> = {
    topic: ["", "t", "orders", "ñ".repeat(rnd.int(100))][rnd.int(4)]!,
    recordBatch: bytes(rnd.int(3) * rnd.int(700)),
    acks: rnd.int(5),
    timeoutMs: randomInt32(),
    producerEpoch: randomInt32(),
    baseSequence: randomInt32(),
    records: Array.from({ length: rnd.int(3) }, () => ({ value: bytes(rnd.int(50)) })),
  };
  const partition = maybe(randomInt32);
  if (partition !== undefined) init.partition = partition;
  const producerId = maybe(randomInt64);
  if (producerId !== undefined) init.producerId = producerId;
  return init;
}

describe("ProduceStreamRequest codec", () => {
  it("encodes like toBinary and decodes like fromBinary", () => {
    for (const requestId of [0n, 1n, 2n ** 64n - 1n]) {
      const init = { requestId, request: fullProduce };
      const reference = enc(ProduceStreamRequestSchema, init);
      expectSameBytes(encodeProduceStreamRequest({ requestId, request: fullProduce }), reference);
      const decoded = decodeProduceStreamRequest(reference);
      expect(decoded).toEqual(dec(ProduceStreamRequestSchema, reference));
      expect(decoded.request?.recordBatch.buffer).toBe(reference.buffer);
    }
  });

  it("takes request_id as a number", () => {
    const ours = encodeProduceStreamRequest({ requestId: 42, request: { topic: "t" } });
    expectSameBytes(ours, enc(ProduceStreamRequestSchema, { requestId: 42n, request: { topic: "t" } }));
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

const partitionInit = {
  topic: "orders",
  partition: 5,
  highWatermark: 1_000_000n,
  logStartOffset: 10n,
  recordBatches: bytes(3000, 1),
  nextOffset: 999_999n,
  lastStableOffset: 1_000_000n,
} satisfies MessageInitShape<typeof FetchedPartitionSchema>;

describe("FetchResponse / SubscribeResponse codec", () => {
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

  it("decodes like fromBinary, with record_batches as views", () => {
    const init = {
      partitions: [
        partitionInit,
        { topic: "t", records: [{ topic: "t", offset: 3n, value: bytes(4) }], error: { code: 3, name: "UNKNOWN_TOPIC_OR_PARTITION" } },
      ],
    };
    const wire = Buffer.from(enc(FetchResponseSchema, init));
    const decoded = decodeFetchResponse(wire);
    expect(decoded).toEqual(dec(FetchResponseSchema, wire));
    expect(decoded.partitions[0]!.recordBatches.buffer).toBe(wire.buffer);
    expect(decodeSubscribeResponse(wire)).toEqual(dec(SubscribeResponseSchema, wire));
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
      const partitions = Array.from({ length: rnd.int(4) }, () =>
        create(FetchedPartitionSchema, {
          topic: ["", "a", "ü"][rnd.int(3)]!,
          partition: randomInt32(),
          highWatermark: randomInt64(),
          logStartOffset: randomInt64(),
          recordBatches: bytes(rnd.int(2) * rnd.int(700)),
          nextOffset: randomInt64(),
          lastStableOffset: randomInt64(),
          records: Array.from({ length: rnd.int(2) }, () =>
            create(ConsumedRecordSchema, { offset: randomInt64(), value: bytes(rnd.int(20)) }),
          ),
          ...(rnd.int(3) === 0 ? { error: { code: randomInt32(), name: "E", retriable: true } } : {}),
        }),
      );
      const msg = create(FetchResponseSchema, { partitions });
      const reference = toBinary(FetchResponseSchema, msg);
      expectSameBytes(encodeFetchResponse(msg), reference);
      expect(decodeFetchResponse(reference)).toEqual(dec(FetchResponseSchema, reference));
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

  it("round-trips through its own encoder and decoder", () => {
    const msg = create(FetchResponseSchema, { partitions: [partitionInit] });
    expect(decodeFetchResponse(new Uint8Array(encodeFetchResponse(msg)))).toEqual(msg);
    const produce = create(ProduceRequestSchema, { ...fullProduce, records: [create(RecordSchema, { key: bytes(1) })] });
    expect(decodeProduceRequest(new Uint8Array(encodeProduceRequest(produce)))).toEqual(produce);
  });
});
