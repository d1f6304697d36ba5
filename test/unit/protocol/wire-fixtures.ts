/**
 * Shared fixtures of the hand-written codec tests (test/unit/rpc/wire-codec.test.ts for the
 * broker's half, test/unit/client/wire-codec.test.ts for the SDK's, protobuf-wire.test.ts for the
 * generic reader and writer): protobuf-es reference encodings, messages with unknown fields,
 * seeded random messages, and the truncation check.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { DescMessage, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { expect } from "vitest";
import { SeededRandom } from "../../../src/base/random.ts";
import { ConsumedRecordSchema } from "../../../src/gen/rill/v1/common_pb.ts";
import { FetchedPartitionSchema, type FetchedPartition } from "../../../src/gen/rill/v1/fetch_service_pb.ts";
import { Acks, type ProduceRequestSchema } from "../../../src/gen/rill/v1/produce_service_pb.ts";
import { WireFormatError } from "../../../src/protocol/protobuf-wire.ts";

/** The seed of this file's random messages (SEED=... replays a run). */
export const seed = Number(process.env.SEED ?? Date.now() % 1_000_000);
/** Randomness of this file's messages, from `seed`. */
export const rnd = new SeededRandom(seed);

/** `n` bytes of a recognisable pattern. */
export function bytes(n: number, fill = 0): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (fill + i * 31) & 0xff;
  return b;
}

/** protobuf-es's encoding of `init` (the reference bytes). */
export function enc<D extends DescMessage>(schema: D, init: MessageInitShape<D>): Uint8Array {
  return toBinary(schema, create(schema, init));
}

/** protobuf-es's decoding of `data` (the reference message). */
export function dec<D extends DescMessage>(schema: D, data: Uint8Array): MessageShape<D> {
  return fromBinary(schema, data, { readUnknownFields: false });
}

/** Concatenation as a plain Uint8Array (decoded `bytes` fields are views of the same type). */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

/** Byte equality (as hex, which vitest compares much faster than arrays of numbers). */
export function expectSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(Buffer.from(actual).toString("hex")).toBe(Buffer.from(expected).toString("hex"));
}

/** Unknown fields of every wire type, including a nested group. */
export function unknownFields(): Uint8Array {
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

/** The bytes `f` writes with protobuf-es's BinaryWriter. */
export function written(f: (w: BinaryWriter) => void): Uint8Array {
  const writer = new BinaryWriter();
  f(writer);
  return writer.finish();
}

/** `items` in a random order. */
export function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = rnd.int(i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Every prefix that cuts a field in half must fail with an error naming `path`. */
export function expectTruncationsFail(data: Uint8Array, decode: (b: Uint8Array) => unknown, path: RegExp): void {
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

/** A ProduceRequest with a batch and every scalar field set. */
export const fullProduce = {
  topic: "orders",
  partition: 3,
  recordBatch: bytes(1000, 7),
  acks: Acks.LEADER,
  timeoutMs: 30_000,
  producerId: 123_456_789_012n,
  producerEpoch: 2,
  baseSequence: 77,
} satisfies MessageInitShape<typeof ProduceRequestSchema>;

/** A ProduceRequest of plain records (the thin-client path), with a non-ASCII topic. */
export const recordsProduce = {
  topic: "tópico-ü", // non-ASCII
  records: [
    { key: bytes(3), value: bytes(10), headers: [{ key: "h", value: bytes(2) }], timestampMs: 1_700_000_000_000n },
    { value: new Uint8Array(0) },
    {},
  ],
} satisfies MessageInitShape<typeof ProduceRequestSchema>;

/** ProduceRequests at the edges of the encoding: empty, explicit presence, negatives, extremes. */
export const produceCases: Array<[string, MessageInitShape<typeof ProduceRequestSchema>]> = [
  ["empty", {}],
  ["batch", fullProduce],
  ["records", recordsProduce],
  ["partition 0 is written (explicit presence)", { topic: "t", partition: 0, producerId: 0n }],
  ["negative ints take 10 bytes", { topic: "t", partition: -1, timeoutMs: -2, producerId: -1n, baseSequence: -2147483648 }],
  ["int64 extremes", { producerId: 9223372036854775807n, producerEpoch: 2147483647 }],
];

/** A FetchedPartition with a batch and every offset set. */
export const partitionInit = {
  topic: "orders",
  partition: 5,
  highWatermark: 1_000_000n,
  logStartOffset: 10n,
  recordBatches: bytes(3000, 1),
  nextOffset: 999_999n,
  lastStableOffset: 1_000_000n,
} satisfies MessageInitShape<typeof FetchedPartitionSchema>;

/** 0, small, large or negative. */
export function randomInt32(): number {
  const r = rnd.int(4);
  return r === 0 ? 0 : r === 1 ? rnd.int(200) : r === 2 ? rnd.int(2 ** 31) : -rnd.int(2 ** 31);
}

/** 0, small, large or negative. */
export function randomInt64(): bigint {
  const r = rnd.int(4);
  if (r === 0) return 0n;
  if (r === 1) return BigInt(rnd.int(2 ** 30));
  const v = (BigInt(rnd.int(2 ** 31)) << 32n) | BigInt(rnd.int(2 ** 32));
  return r === 2 ? v : -v;
}

function maybe<T>(f: () => T): T | undefined {
  return rnd.int(2) === 0 ? undefined : f();
}

/** A random ProduceRequest (optional fields present or not). */
export function randomProduce(): MessageInitShape<typeof ProduceRequestSchema> {
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

/** Random partitions of a FetchResponse (batches, records, errors, any offsets). */
export function randomPartitions(): FetchedPartition[] {
  return Array.from({ length: rnd.int(4) }, () =>
    create(FetchedPartitionSchema, {
      topic: ["", "a", "ü"][rnd.int(3)]!,
      partition: randomInt32(),
      highWatermark: randomInt64(),
      logStartOffset: randomInt64(),
      recordBatches: bytes(rnd.int(2) * rnd.int(700)),
      nextOffset: randomInt64(),
      lastStableOffset: randomInt64(),
      records: Array.from({ length: rnd.int(2) }, () => create(ConsumedRecordSchema, { offset: randomInt64(), value: bytes(rnd.int(20)) })),
      ...(rnd.int(3) === 0 ? { error: { code: randomInt32(), name: "E", retriable: true } } : {}),
    }),
  );
}
