/**
 * Golden bytes written out field by field, independently of src/kafka/schema.ts: each API's test
 * lays out a version as Kafka's message definition says (which fields exist in it, compact or
 * classic forms, the tag section) with these helpers, and compares what the schema encodes and
 * decodes against them.
 */
import { expect } from "vitest";
import { decode, encode, type Fields, type Input, type Message, type ValueOf } from "../../../src/kafka/schema.ts";
import { KafkaReader, KafkaWriter } from "../../../src/kafka/wire.ts";

const b = (n: number, f: (x: Buffer) => void): Buffer => {
  const x = Buffer.alloc(n);
  f(x);
  return x;
};
export const i8 = (v: number) => b(1, (x) => x.writeInt8(v));
export const bool = (v: boolean) => i8(v ? 1 : 0);
export const i16 = (v: number) => b(2, (x) => x.writeInt16BE(v));
export const i32 = (v: number) => b(4, (x) => x.writeInt32BE(v));
export const i64 = (v: bigint) => b(8, (x) => x.writeBigInt64BE(v));

/** UNSIGNED_VARINT. */
export function uvar(v: number): Buffer {
  const out: number[] = [];
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return Buffer.from(out);
}

/** STRING / COMPACT_STRING (null: the null form). */
export function str(s: string | null, flex: boolean): Buffer {
  if (s === null) return flex ? uvar(0) : i16(-1);
  const body = Buffer.from(s, "utf8");
  return Buffer.concat([flex ? uvar(body.length + 1) : i16(body.length), body]);
}

/** BYTES / COMPACT_BYTES (null: the null form). */
export function bytes(v: Buffer | null, flex: boolean): Buffer {
  if (v === null) return flex ? uvar(0) : i32(-1);
  return Buffer.concat([flex ? uvar(v.length + 1) : i32(v.length), v]);
}

/** ARRAY / COMPACT_ARRAY of already laid-out elements (null: the null form). */
export function arr(items: readonly Buffer[] | null, flex: boolean): Buffer {
  if (items === null) return flex ? uvar(0) : i32(-1);
  return Buffer.concat([flex ? uvar(items.length + 1) : i32(items.length), ...items]);
}

/** An empty tag section when flexible, nothing otherwise. */
export const tags = (flex: boolean) => (flex ? uvar(0) : Buffer.alloc(0));

export const cat = (...parts: Buffer[]) => Buffer.concat(parts);

/** Encodes `value` as `version` of `m`. */
export function enc<F extends Fields>(m: Message<F>, value: Input<ValueOf<F>>, version: number): Buffer {
  const w = new KafkaWriter();
  encode(m, value, version, w);
  return w.toBuffer();
}

/** Decodes all of `bytes` as `version` of `m` (nothing may be left). */
export function dec<F extends Fields>(m: Message<F>, bytes: Buffer, version: number): ValueOf<F> {
  const r = new KafkaReader(bytes);
  const v = decode(m, r, version);
  expect(r.remaining).toBe(0);
  return v;
}

/** Asserts that `value` encodes to `golden` as `version` of `m`, and that `golden` decodes to a value that encodes back the same. */
export function golden<F extends Fields>(m: Message<F>, value: Input<ValueOf<F>>, version: number, expected: Buffer): ValueOf<F> {
  expect(enc(m, value, version).toString("hex"), `${m.name} v${version}`).toBe(expected.toString("hex"));
  const back = dec(m, expected, version);
  expect(enc(m, back as Input<ValueOf<F>>, version).toString("hex")).toBe(expected.toString("hex"));
  return back;
}
