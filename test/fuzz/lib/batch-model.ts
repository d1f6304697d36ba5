/**
 * Structure-aware record batches for the fuzzer: a batch is generated as a model (header fields,
 * records with keys, values and headers) that may carry "lies" — a length, count, varint or
 * delta that disagrees with the bytes around it — and is serialized by this file, not by
 * src/protocol, so the encoder under test is not the oracle of its own decoder. The frame stays
 * consistent (batchLength and CRC recomputed, compressed payloads recompressed) unless the model
 * says otherwise, so the lies reach the record walkers behind the CRC check. `rawMutations` then
 * flips, sets, inserts or deletes bytes (optionally recomputing the CRC again).
 */
import fc from "fast-check";
import { crc32c } from "../../../src/base/crc32c.ts";
import { compress } from "../../../src/protocol/compression.ts";
import { Compression, HEADER_SIZE, LOG_OVERHEAD } from "../../../src/protocol/record-batch.ts";

/** A record header of the model; `keyLen`/`valueLen` lie about the lengths when set. */
export interface HeaderModel {
  readonly key: Uint8Array;
  readonly value: Uint8Array | null;
  readonly keyLen?: number | undefined;
  readonly valueLen?: number | undefined;
}

/** What a record's frame may lie about. */
export interface RecordLies {
  readonly length?: number | undefined;
  readonly attributes?: number | undefined;
  readonly keyLen?: number | undefined;
  readonly valueLen?: number | undefined;
  readonly headerCount?: number | undefined;
  /** Bytes after the last field, inside the record's length. */
  readonly trailing?: Uint8Array | undefined;
  /** timestampDelta and offsetDelta written as given (they are not lies by themselves). */
  readonly timestampDelta?: number | undefined;
  readonly offsetDelta?: number | undefined;
}

/** One record of the model. */
export interface RecordModel {
  readonly timestampDelta: number;
  readonly key: Uint8Array | null;
  readonly value: Uint8Array | null;
  readonly headers: readonly HeaderModel[];
  readonly lies: RecordLies;
}

/** What the batch header may lie about. */
export interface BatchLies {
  readonly recordCount?: number | undefined;
  readonly lastOffsetDelta?: number | undefined;
  /** XORed into the attributes (bits 3-5 and above; the codec is `codec`). */
  readonly attributesXor?: number | undefined;
  readonly maxTimestamp?: number | undefined;
  readonly magic?: number | undefined;
  /** Added to the true batchLength (outside the CRC). */
  readonly batchLengthDelta?: number | undefined;
  /** Leave the CRC wrong. */
  readonly badCrc?: boolean | undefined;
  /** Bytes appended to the uncompressed records region (after the last record). */
  readonly regionTail?: Uint8Array | undefined;
  /** Bytes cut from the end of the records region before compression. */
  readonly regionCut?: number | undefined;
  /** Byte edits of the (compressed) payload after compression, CRC recomputed. */
  readonly payloadEdits?: readonly ByteEdit[] | undefined;
}

/** A batch of the model. `codec` may be 5-7 (no codec): the payload is then raw records. */
export interface BatchModel {
  readonly codec: number;
  readonly baseTimestamp: number;
  readonly records: readonly RecordModel[];
  readonly lies: BatchLies;
}

/** One raw byte edit: at `at` (taken modulo the length), set, xor, insert or delete. */
export interface ByteEdit {
  readonly op: "set" | "xor" | "insert" | "delete" | "truncate";
  readonly at: number;
  readonly byte: number;
}

/** True when the model tells no lie: it must be accepted (if its codec is supported) and read back. */
export function truthful(m: BatchModel): boolean {
  return Object.values(m.lies).every((v) => v === undefined) && m.records.every(recordTruthful);
}

function recordTruthful(r: RecordModel): boolean {
  return Object.values(r.lies).every((v) => v === undefined) && r.headers.every((h) => h.keyLen === undefined && h.valueLen === undefined);
}

// ---------------------------------------------------------------------------------------------
// Serialization

/** A zig-zag varint/varlong of any safe integer (more than 5 bytes when it is outside int32). */
export function zigzag(v: number): number[] {
  let raw = v >= 0 ? v * 2 : -v * 2 - 1;
  const out: number[] = [];
  while (raw >= 128) {
    out.push((raw % 128) | 0x80);
    raw = Math.floor(raw / 128);
  }
  out.push(raw);
  return out;
}

function field(out: number[], len: number, bytes: Uint8Array | null): void {
  out.push(...zigzag(len));
  if (bytes !== null) for (const b of bytes) out.push(b);
}

/** The record frame of `r` (index `i`): length varint, then the body. */
export function recordBytes(r: RecordModel, i: number): number[] {
  const body: number[] = [r.lies.attributes ?? 0];
  body.push(...zigzag(r.lies.timestampDelta ?? r.timestampDelta));
  body.push(...zigzag(r.lies.offsetDelta ?? i));
  field(body, r.lies.keyLen ?? (r.key === null ? -1 : r.key.length), r.key);
  field(body, r.lies.valueLen ?? (r.value === null ? -1 : r.value.length), r.value);
  body.push(...zigzag(r.lies.headerCount ?? r.headers.length));
  for (const h of r.headers) {
    field(body, h.keyLen ?? h.key.length, h.key);
    field(body, h.valueLen ?? (h.value === null ? -1 : h.value.length), h.value);
  }
  if (r.lies.trailing !== undefined) body.push(...r.lies.trailing);
  return [...zigzag(r.lies.length ?? body.length), ...body];
}

/** The last record's offsetDelta as written (or 0 for an empty batch). */
function lastDelta(m: BatchModel): number {
  const n = m.records.length;
  if (n === 0) return 0;
  return m.records[n - 1]!.lies.offsetDelta ?? n - 1;
}

/** The uncompressed records region of `m`. */
export function recordsRegion(m: BatchModel): Buffer {
  const bytes: number[] = [];
  m.records.forEach((r, i) => {
    for (const b of recordBytes(r, i)) bytes.push(b);
  });
  if (m.lies.regionTail !== undefined) bytes.push(...m.lies.regionTail);
  const region = Buffer.from(bytes);
  const cut = m.lies.regionCut ?? 0;
  return region.subarray(0, Math.max(0, region.length - cut));
}

/** The batch bytes of `m`: header fields from the model, CRC over [21, end) unless badCrc. */
export function serializeBatch(m: BatchModel): Buffer {
  const region = recordsRegion(m);
  let payload = m.codec >= Compression.GZIP && m.codec <= Compression.ZSTD ? compress(m.codec, region) : region;
  if (m.lies.payloadEdits !== undefined) payload = applyEdits(payload, m.lies.payloadEdits);
  const out = Buffer.alloc(HEADER_SIZE + payload.length);
  payload.copy(out, HEADER_SIZE);
  const timestamps = m.records.map((r) => m.baseTimestamp + r.timestampDelta);
  const maxTs = m.lies.maxTimestamp ?? (timestamps.length === 0 ? -1 : Math.max(...timestamps));
  writeI64(out, 0, 0);
  out.writeInt32BE(i32(out.length - LOG_OVERHEAD + (m.lies.batchLengthDelta ?? 0)), 8);
  out.writeInt32BE(-1, 12);
  out.writeInt8(m.lies.magic ?? 2, 16);
  out.writeUInt16BE((m.codec | (m.lies.attributesXor ?? 0)) & 0xffff, 21);
  out.writeInt32BE(i32(m.lies.lastOffsetDelta ?? lastDelta(m)), 23);
  writeI64(out, 27, m.records.length === 0 ? -1 : m.baseTimestamp);
  writeI64(out, 35, maxTs);
  writeI64(out, 43, -1);
  out.writeInt16BE(-1, 51);
  out.writeInt32BE(-1, 53);
  out.writeInt32BE(i32(m.lies.recordCount ?? m.records.length), 57);
  const crc = crc32c(out.subarray(21));
  out.writeUInt32BE(m.lies.badCrc === true ? (crc ^ 0x5a5a5a5a) >>> 0 : crc, 17);
  return out;
}

/** `v` wrapped to an int32, as a lie that does not fit is written. */
function i32(v: number): number {
  return Number(BigInt.asIntN(32, BigInt(v)));
}

function writeI64(buf: Buffer, p: number, v: number): void {
  buf.writeBigInt64BE(BigInt(v), p);
}

/** `b` with `edits` applied in order (positions modulo the current length). */
export function applyEdits(b: Uint8Array, edits: readonly ByteEdit[]): Buffer {
  let out = Buffer.from(b);
  for (const e of edits) {
    const n = out.length;
    if (e.op === "insert") {
      const at = n === 0 ? 0 : e.at % (n + 1);
      out = Buffer.concat([out.subarray(0, at), Buffer.from([e.byte]), out.subarray(at)]);
      continue;
    }
    if (n === 0) continue;
    const at = e.at % n;
    if (e.op === "set") out[at] = e.byte;
    else if (e.op === "xor") out[at] = out[at]! ^ (e.byte === 0 ? 1 : e.byte);
    else if (e.op === "delete") out = Buffer.concat([out.subarray(0, at), out.subarray(at + 1)]);
    else out = out.subarray(0, at);
  }
  return out;
}

/** Sets batchLength to the buffer's length and recomputes the CRC (when there is a header). */
export function refreshFrame(b: Buffer): Buffer {
  if (b.length < HEADER_SIZE) return b;
  const out = Buffer.from(b);
  out.writeInt32BE(out.length - LOG_OVERHEAD, 8);
  out.writeUInt32BE(crc32c(out.subarray(21)), 17);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Arbitraries

/** Integers that sit on boundaries decoders get wrong, and some random ones. */
export const edgyInt: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(-(2 ** 31), -(2 ** 31) + 1, -1000, -2, -1, 0, 1, 2, 5, 6, 7, 63, 64, 127, 128, 255, 16383, 16384),
  fc.constantFrom(2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 35, 2 ** 53 - 1, -(2 ** 53) + 1, 1_000_000),
  fc.integer({ min: -300, max: 300 }),
  fc.integer(),
);

const smallBytes = fc.uint8Array({ maxLength: 24 });
const nullableBytes = fc.option(smallBytes, { nil: null, freq: 4 });
const nullableSmall = fc.option(fc.uint8Array({ maxLength: 8 }), { nil: null, freq: 4 });

const headerModel = (liar: boolean): fc.Arbitrary<HeaderModel> =>
  liar
    ? fc.record(
        { key: fc.uint8Array({ maxLength: 8 }), value: nullableSmall, keyLen: edgyInt, valueLen: edgyInt },
        { requiredKeys: ["key", "value"] },
      )
    : fc.record({ key: fc.uint8Array({ maxLength: 8 }), value: nullableSmall });

/** One or two of the given lies at a time, so that one does not always mask the others. */
function someOf<T extends object>(lies: { [K in keyof T]-?: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> {
  const single = Object.entries(lies).map(([k, arb]) => (arb as fc.Arbitrary<unknown>).map((v) => ({ [k]: v })));
  return fc.array(fc.oneof(...single), { minLength: 1, maxLength: 2 }).map((parts) => Object.assign({}, ...parts) as T);
}

const recordLies: fc.Arbitrary<RecordLies> = someOf<RecordLies>({
  length: edgyInt,
  attributes: fc.integer({ min: 0, max: 255 }),
  keyLen: edgyInt,
  valueLen: edgyInt,
  headerCount: edgyInt,
  trailing: fc.uint8Array({ minLength: 1, maxLength: 4 }),
  timestampDelta: edgyInt,
  offsetDelta: edgyInt,
});

const recordModel = (liar: boolean): fc.Arbitrary<RecordModel> =>
  fc.record({
    timestampDelta: liar ? fc.integer({ min: -1000, max: 100_000 }) : fc.integer({ min: 0, max: 100_000 }),
    key: nullableBytes,
    value: nullableBytes,
    headers: fc.array(headerModel(liar), { maxLength: 3 }),
    lies: liar ? fc.oneof({ weight: 1, arbitrary: fc.constant({}) }, { weight: 1, arbitrary: recordLies }) : fc.constant({}),
  });

const byteEdit: fc.Arbitrary<ByteEdit> = fc.record({
  op: fc.constantFrom("set", "xor", "insert", "delete", "truncate"),
  at: fc.nat(),
  byte: fc.integer({ min: 0, max: 255 }),
});

/** A few raw byte edits. */
export const byteEdits: fc.Arbitrary<ByteEdit[]> = fc.array(byteEdit, { minLength: 1, maxLength: 4 });

const batchLies: fc.Arbitrary<BatchLies> = someOf<BatchLies>({
  recordCount: edgyInt,
  lastOffsetDelta: edgyInt,
  attributesXor: fc.constantFrom(0x08, 0x10, 0x20, 0x40, 0x80, 0x100, 0x8000, 0x30),
  maxTimestamp: edgyInt,
  magic: fc.constantFrom(-1, 0, 1, 3, 127),
  batchLengthDelta: fc.constantFrom(-62, -61, -1, 1, 2 ** 30),
  badCrc: fc.constant(true),
  regionTail: fc.uint8Array({ minLength: 1, maxLength: 8 }),
  regionCut: fc.integer({ min: 1, max: 8 }),
  payloadEdits: byteEdits,
});

/** The codecs: Kafka's five mostly; the unassigned 5-7 (refused) sometimes. */
export const codecArb: fc.Arbitrary<number> = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(Compression.NONE, Compression.GZIP, Compression.SNAPPY, Compression.LZ4, Compression.ZSTD) },
  { weight: 1, arbitrary: fc.constantFrom(5, 6, 7) },
);

/** A truthful batch: every length, count and delta agrees with the bytes. */
export const validBatch: fc.Arbitrary<BatchModel> = fc.record({
  codec: codecArb,
  baseTimestamp: fc.oneof(fc.constant(1_700_000_000_000), fc.integer({ min: 0, max: 2 ** 42 })),
  records: fc
    .array(recordModel(false), { minLength: 1, maxLength: 6 })
    .map((rs) => rs.map((r, i) => (i === 0 ? { ...r, timestampDelta: 0 } : r))),
  lies: fc.constant({}),
});

/** A batch whose frame may lie inside (record lies, header lies), still CRC-consistent mostly. */
export const lyingBatch: fc.Arbitrary<BatchModel> = fc.record({
  codec: codecArb,
  baseTimestamp: fc.integer({ min: -1, max: 2 ** 42 }),
  records: fc.array(recordModel(true), { minLength: 0, maxLength: 5 }),
  lies: fc.oneof({ weight: 2, arbitrary: fc.constant({}) }, { weight: 1, arbitrary: batchLies }),
});

const RECORD_LIE_KINDS = [
  "length",
  "attributes",
  "keyLen",
  "valueLen",
  "headerCount",
  "trailing",
  "timestampDelta",
  "offsetDelta",
] as const;

/**
 * A valid batch with exactly one lie in one record (the classic structure-aware mutation: one
 * field of a well-formed frame set to an edge value), so that no other fault masks it.
 */
export const oneLieBatch: fc.Arbitrary<BatchModel> = fc
  .tuple(validBatch, fc.nat(), fc.constantFrom(...RECORD_LIE_KINDS), edgyInt, fc.uint8Array({ minLength: 1, maxLength: 3 }))
  .map(([m, at, kind, value, bytes]) => {
    const i = at % m.records.length;
    const lie: RecordLies =
      kind === "trailing" ? { trailing: bytes } : kind === "attributes" ? { attributes: value & 0xff } : { [kind]: value };
    return { ...m, records: m.records.map((r, k) => (k === i ? { ...r, lies: lie } : r)) };
  });

/** A batch input: a model, plus raw edits of the whole batch (with the frame refreshed or not). */
export interface BatchInput {
  readonly model: BatchModel;
  readonly edits: readonly ByteEdit[];
  readonly refresh: boolean;
}

/** Valid batches, one-lie batches, lying batches and raw byte mutations, in about equal parts. */
export const batchInput: fc.Arbitrary<BatchInput> = fc.oneof(
  fc.record({ model: validBatch, edits: fc.constant([]), refresh: fc.constant(false) }),
  fc.record({ model: oneLieBatch, edits: fc.constant([]), refresh: fc.constant(false) }),
  fc.record({ model: lyingBatch, edits: fc.constant([]), refresh: fc.constant(false) }),
  fc.record({ model: fc.oneof(validBatch, lyingBatch), edits: byteEdits, refresh: fc.boolean() }),
);

/** The bytes of a batch input. */
export function batchBytes(input: BatchInput): Buffer {
  const b = serializeBatch(input.model);
  if (input.edits.length === 0) return b;
  const edited = applyEdits(b, input.edits);
  return input.refresh ? refreshFrame(edited) : edited;
}
