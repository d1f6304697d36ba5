/**
 * Fuzz target "wire": the hand-written protobuf codecs (src/protocol/protobuf-wire.ts under
 * src/rpc/wire-codec.ts and src/client/wire-codec.ts) against protobuf-es, on messages built as
 * field lists whose length prefixes may lie (too long, too short, negative, over 31 bits), with
 * unknown fields, groups and wrong wire types mixed in, and on raw byte edits of those.
 *
 * Properties: the hand decoders throw nothing but WireFormatError (or a catalog RillError); what
 * they accept, protobuf-es accepts too and decodes to the same message (compared re-encoded).
 */
import { type DescMessage, fromBinary, type MessageShape, toBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import { decodeFetchResponse, decodeSubscribeResponse } from "../../../src/client/wire-codec.ts";
import { FetchResponseSchema, SubscribeResponseSchema } from "../../../src/gen/rill/v1/fetch_service_pb.ts";
import { ProduceRequestSchema, ProduceStreamRequestSchema } from "../../../src/gen/rill/v1/produce_service_pb.ts";
import { decodeProduceRequest, decodeProduceStreamRequest, WireFormatError } from "../../../src/rpc/wire-codec.ts";
import { applyEdits, type ByteEdit, byteEdits, edgyInt } from "../lib/batch-model.ts";
import { attempt, describeError, type FuzzTarget, hex, holds, showJson } from "../lib/harness.ts";

/** One field of a generated message. */
type Field =
  | { readonly kind: "varint"; readonly no: number; readonly value: bigint }
  | { readonly kind: "len"; readonly no: number; readonly body: Field[] | Uint8Array; readonly lenLie?: number | undefined }
  | { readonly kind: "fixed"; readonly no: number; readonly bytes: 4 | 8 }
  | { readonly kind: "group"; readonly no: number; readonly endNo: number };

const DECODERS = {
  ProduceRequest: { hand: decodeProduceRequest, schema: ProduceRequestSchema as DescMessage },
  ProduceStreamRequest: { hand: decodeProduceStreamRequest, schema: ProduceStreamRequestSchema as DescMessage },
  FetchResponse: { hand: decodeFetchResponse, schema: FetchResponseSchema as DescMessage },
  SubscribeResponse: { hand: decodeSubscribeResponse, schema: SubscribeResponseSchema as DescMessage },
} as const;

/** One case: which decoder, the fields, raw edits. */
export interface WireCase {
  readonly message: keyof typeof DECODERS;
  readonly fields: Field[];
  readonly edits: readonly ByteEdit[];
}

function tag(no: number, wireType: number): number[] {
  return uvarint(BigInt(no) * 8n + BigInt(wireType));
}

function uvarint(v: bigint): number[] {
  let raw = BigInt.asUintN(64, v);
  const out: number[] = [];
  while (raw >= 128n) {
    out.push(Number(raw & 127n) | 0x80);
    raw >>= 7n;
  }
  out.push(Number(raw));
  return out;
}

/** Serializes fields; a `lenLie` replaces the true length prefix. */
export function serialize(fields: readonly Field[]): number[] {
  const out: number[] = [];
  for (const f of fields) {
    switch (f.kind) {
      case "varint":
        out.push(...tag(f.no, 0), ...uvarint(f.value));
        break;
      case "fixed":
        out.push(...tag(f.no, f.bytes === 8 ? 1 : 5), ...new Array<number>(f.bytes).fill(0x41));
        break;
      case "group":
        out.push(...tag(f.no, 3), ...tag(f.endNo, 4));
        break;
      case "len": {
        const body = f.body instanceof Uint8Array ? [...f.body] : serialize(f.body);
        out.push(...tag(f.no, 2), ...uvarint(BigInt(f.lenLie ?? body.length)), ...body);
        break;
      }
    }
  }
  return out;
}

const fieldNo = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 1, max: 12 }) },
  { weight: 1, arbitrary: fc.constantFrom(0, 13, 100, 536870911) },
);
const varintValue = fc.oneof(
  fc.bigInt({ min: 0n, max: 300n }),
  fc.constantFrom(2n ** 31n - 1n, 2n ** 31n, 2n ** 32n, 2n ** 63n, 2n ** 64n - 1n),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
);
const lenLie = fc.option(
  edgyInt.filter((v) => v >= 0 && v < 2 ** 53),
  { nil: undefined, freq: 5 },
);

const { field } = fc.letrec<{ field: Field; fields: Field[] }>((tie) => ({
  field: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.record({ kind: fc.constant("varint" as const), no: fieldNo, value: varintValue }),
    fc.record({ kind: fc.constant("len" as const), no: fieldNo, body: fc.uint8Array({ maxLength: 80 }), lenLie }),
    fc.record({ kind: fc.constant("len" as const), no: fieldNo, body: tie("fields"), lenLie }),
    fc.record({ kind: fc.constant("fixed" as const), no: fieldNo, bytes: fc.constantFrom(4 as const, 8 as const) }),
    fc.record({ kind: fc.constant("group" as const), no: fieldNo, endNo: fc.oneof(fieldNo, fc.constant(1)) }),
  ),
  fields: fc.array(tie("field"), { maxLength: 4 }),
}));

const wireCase: fc.Arbitrary<WireCase> = fc.record({
  message: fc.constantFrom("ProduceRequest", "ProduceStreamRequest", "FetchResponse", "SubscribeResponse"),
  fields: fc.array(field as fc.Arbitrary<Field>, { maxLength: 6 }),
  edits: fc.oneof({ weight: 3, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: byteEdits }),
});

function bytesOf(c: WireCase): Buffer {
  const b = Buffer.from(serialize(c.fields));
  return c.edits.length === 0 ? b : applyEdits(b, c.edits);
}

function check(c: WireCase): void {
  const bytes = bytesOf(c);
  const { hand, schema } = DECODERS[c.message];
  const mine = attempt(() => hand(bytes) as MessageShape<DescMessage>, [WireFormatError]);
  if ("err" in mine) return;
  let theirs: MessageShape<DescMessage>;
  try {
    theirs = fromBinary(schema, bytes, { readUnknownFields: false });
  } catch (e) {
    holds(false, `the hand decoder accepted what protobuf-es refuses (${describeError(e)})`);
    return;
  }
  const a = toBinary(schema, mine.ok);
  const b = toBinary(schema, theirs);
  holds(Buffer.from(a).equals(Buffer.from(b)), () => `decoded differently: hand ${hex(a)}, protobuf-es ${hex(b)}`);
}

/** The "wire" target. */
export const wireTarget: FuzzTarget<WireCase> = {
  name: "wire",
  doc: "hand-written protobuf decoders (Produce/ProduceStream requests, Fetch/Subscribe responses) vs protobuf-es on lying length prefixes",
  ciCases: 2000,
  arbitrary: wireCase,
  open: () => null,
  check,
  show: (c) => `${c.message} ${hex(bytesOf(c))}\ncase ${showJson(c)}`,
};
