/**
 * Hand-written protobuf codecs for the few messages that carry record batches.
 *
 * protobuf-es's `toBinary` copies a `bytes` field twice (into its growing writer, then out of
 * it), and its `fromBinary` walks reflection for every message. These codecs do the same work
 * by hand, byte-compatible with protobuf-es (fields written in field-number order, defaults of
 * implicit-presence fields left out, so the bytes are identical), for:
 *
 * - `ProduceRequest` / `ProduceStreamRequest`: the server DECODER returns `record_batch` as a
 *   view (`subarray`) of the received buffer, no copy; the client ENCODER writes an already
 *   encoded batch with one copy into the output.
 * - `FetchResponse` / `SubscribeResponse` (same layout: field 1 = repeated FetchedPartition):
 *   the server ENCODER writes `record_batches` from a list of chunks (slices of a log read) with
 *   one copy into the output — a buffer reused from call to call (`encodeFetchResponseTransient`),
 *   since grpc-js copies it into its frame at once; the client DECODER returns `record_batches`
 *   as a view.
 *
 * Small nested messages (`Record`, `ConsumedRecord`, `ErrorDetail`) go through protobuf-es.
 * Decoders skip unknown fields, accept fields in any order (last value wins, repeated fields
 * append, a repeated singular message merges) and throw `WireFormatError` naming the message,
 * the field and the byte position on truncated or malformed input. grpc-js adds its own 5-byte
 * frame with one more copy on each side; that copy is outside our reach.
 *
 * Wire format reminders: a field is a varint tag (field number << 3 | wire type) then a value;
 * wire type 0 = varint, 1 = 8 bytes, 2 = varint length + bytes, 5 = 4 bytes, 3/4 = group
 * start/end (obsolete, skipped). int32 and enums are varints of the value sign-extended to 64
 * bits (a negative value takes 10 bytes).
 */

import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { assert } from "../base/assert.ts";
import type { ConsumedRecord, ErrorDetail, Record as RecordMessage } from "../gen/rill/v1/common_pb.ts";
import { ConsumedRecordSchema, ErrorDetailSchema, RecordSchema } from "../gen/rill/v1/common_pb.ts";
import type { FetchResponse, FetchService, FetchedPartition, SubscribeResponse } from "../gen/rill/v1/fetch_service_pb.ts";
import type { Acks, ProduceRequest, ProduceService, ProduceStreamRequest } from "../gen/rill/v1/produce_service_pb.ts";
import type { CodecOverrides } from "./grpc-service.ts";

/** Malformed or truncated protobuf input; the message names the message, field and position. */
export class WireFormatError extends Error {
  override name = "WireFormatError";
}

const VARINT = 0;
const I64 = 1;
const LEN = 2;
const SGROUP = 3;
const EGROUP = 4;
const I32 = 5;
const EMPTY = new Uint8Array(0);
const MAX_DEPTH = 100;
/** Strings up to this many bytes that are ASCII skip TextDecoder (names, ids). */
const ASCII_FAST_PATH_MAX = 64;
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Field names by number, for error messages about known fields with a wrong wire type. */
type FieldNames = Readonly<Record<number, string>>;

/** A bounded read cursor over `buf[pos, end)`; `path` prefixes error messages. */
class Reader {
  pos: number;

  constructor(
    readonly buf: Uint8Array,
    pos: number,
    readonly end: number,
    readonly path: string,
  ) {
    this.pos = pos;
  }

  fail(field: string, what: string): never {
    throw new WireFormatError(`${this.path}.${field}: ${what} (at byte ${this.pos})`);
  }

  /** A varint's low 32 bits as a signed int (int32, enum, tag, length); skips bits above 32. */
  varint(field: string): number {
    const buf = this.buf;
    let result = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      if (this.pos >= this.end) this.fail(field, "varint runs past the end of the message");
      const b = buf[this.pos++]!;
      if (shift < 32) result |= (b & 0x7f) << shift;
      if (b < 0x80) return result | 0;
    }
    return this.fail(field, "varint is longer than 10 bytes");
  }

  /** A 64-bit varint as a bigint: signed (int64) or unsigned (uint64). */
  varint64(field: string, signed: boolean): bigint {
    const buf = this.buf;
    let lo = 0;
    let hi = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      if (this.pos >= this.end) this.fail(field, "varint runs past the end of the message");
      const b = buf[this.pos++]!;
      if (shift < 28) lo |= (b & 0x7f) << shift;
      else if (shift === 28) {
        lo |= (b & 0x0f) << 28;
        hi = (b & 0x7f) >> 4;
      } else hi |= (b & 0x7f) << (shift - 32);
      if (b < 0x80) {
        if (hi === 0) return BigInt(lo >>> 0);
        const v = (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
        return signed ? BigInt.asIntN(64, v) : BigInt.asUintN(64, v);
      }
    }
    return this.fail(field, "varint is longer than 10 bytes");
  }

  /** Reads a length prefix and skips the payload; returns the payload's start (it ends at pos). */
  len(field: string): number {
    const at = this.pos;
    const n = this.varint(field);
    if (n < 0 || this.pos - at > 5) this.fail(field, "length does not fit in 31 bits");
    const start = this.pos;
    if (n > this.end - start) this.fail(field, `length ${n} runs past the end of the message (${this.end - start} bytes left)`);
    this.pos = start + n;
    return start;
  }

  /** A `bytes` field: a view of the input, no copy. */
  bytes(field: string): Uint8Array {
    const start = this.len(field);
    return this.buf.subarray(start, this.pos);
  }

  /** A `string` field, with UTF-8 validation as protobuf-es does for proto3. */
  string(field: string): string {
    const start = this.len(field);
    const buf = this.buf;
    let ascii = this.pos - start <= ASCII_FAST_PATH_MAX;
    for (let i = start; ascii && i < this.pos; i++) {
      if (buf[i]! >= 0x80) ascii = false;
    }
    if (ascii) {
      return String.fromCharCode.apply(null, buf.subarray(start, this.pos) as unknown as number[]);
    }
    try {
      return utf8.decode(buf.subarray(start, this.pos));
    } catch {
      return this.fail(field, "invalid UTF-8");
    }
  }

  /** A length-delimited submessage decoded by protobuf-es. */
  message<D extends DescMessage>(schema: D, field: string): MessageShape<D> {
    const start = this.len(field);
    try {
      return fromBinary(schema, this.buf.subarray(start, this.pos), { readUnknownFields: false });
    } catch (e) {
      return this.fail(field, e instanceof Error ? e.message : String(e));
    }
  }

  /** A nested reader over the length-delimited field just read. */
  sub(field: string): Reader {
    const start = this.len(field);
    return new Reader(this.buf, start, this.pos, `${this.path}.${field}`);
  }

  /** Skips a field this codec does not decode; a known field with a wrong wire type fails. */
  skip(tag: number, names: FieldNames, depth = 0): void {
    const no = tag >>> 3;
    const wireType = tag & 7;
    const field = names[no] ?? `<field ${no}>`;
    if (names[no] !== undefined) this.fail(field, `unexpected wire type ${wireType}`);
    if (no === 0) this.fail(field, "invalid field number 0");
    switch (wireType) {
      case VARINT:
        this.varint(field);
        return;
      case I64:
        return this.advance(field, 8);
      case LEN:
        this.len(field);
        return;
      case I32:
        return this.advance(field, 4);
      case SGROUP:
        return this.skipGroup(no, field, depth);
      default:
        this.fail(field, `invalid wire type ${wireType}`);
    }
  }

  private advance(field: string, n: number): void {
    if (n > this.end - this.pos) this.fail(field, "value runs past the end of the message");
    this.pos += n;
  }

  private skipGroup(no: number, field: string, depth: number): void {
    if (depth >= MAX_DEPTH) this.fail(field, "groups nested too deeply");
    for (;;) {
      if (this.pos >= this.end) this.fail(field, "group runs past the end of the message");
      const tag = this.varint(field) >>> 0;
      if ((tag & 7) === EGROUP) {
        if (tag >>> 3 !== no) this.fail(field, "mismatched group end");
        return;
      }
      this.skip(tag, {}, depth + 1);
    }
  }
}

/** Sizes of varints: a uint32 value, an int32 (negative = 10 bytes), an int64. */
function sizeUint32(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

function sizeInt32(v: number): number {
  return v < 0 ? 10 : sizeUint32(v);
}

function sizeInt64(v: bigint | number): number {
  const n = smallInt(v);
  if (n >= 0) return sizeUint32(n);
  let x = BigInt.asUintN(64, BigInt(v));
  let size = 1;
  while (x >= 0x80n) {
    x >>= 7n;
    size++;
  }
  return size;
}

/** `v` as a number when it is an integer in [0, 2^32), else -1 (then the bigint path runs). */
function smallInt(v: bigint | number): number {
  if (typeof v === "number") return v >= 0 && v < 0x100000000 && Number.isInteger(v) ? v : -1;
  return v >= 0n && v < 0x100000000n ? Number(v) : -1;
}

/** Tag plus length prefix plus payload of a length-delimited field. */
function sizeLen(fieldNo: number, n: number): number {
  return sizeUint32(fieldNo << 3) + sizeUint32(n) + n;
}

/** A write cursor over an exactly sized Buffer (a fresh one, or `into` of exactly that size). */
class Writer {
  pos = 0;
  readonly buf: Buffer;

  constructor(size: number, into?: Buffer) {
    assert(into === undefined || into.length === size, "Writer: `into` is not of the planned size");
    this.buf = into ?? Buffer.allocUnsafe(size);
  }

  uint32(v: number): void {
    const buf = this.buf;
    while (v >= 0x80) {
      buf[this.pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    buf[this.pos++] = v;
  }

  int32(v: number): void {
    if (v >= 0) this.uint32(v);
    else this.int64(v);
  }

  int64(v: bigint | number): void {
    const n = smallInt(v);
    if (n >= 0) return this.uint32(n);
    const buf = this.buf;
    let x = BigInt.asUintN(64, BigInt(v));
    while (x >= 0x80n) {
      buf[this.pos++] = Number(x & 0x7fn) | 0x80;
      x >>= 7n;
    }
    buf[this.pos++] = Number(x);
  }

  tag(fieldNo: number, wireType: number): void {
    this.uint32((fieldNo << 3) | wireType);
  }

  /** An int32 or enum field. */
  int32Field(fieldNo: number, v: number): void {
    this.tag(fieldNo, VARINT);
    this.int32(v);
  }

  /** An int64 or uint64 field. */
  int64Field(fieldNo: number, v: bigint | number): void {
    this.tag(fieldNo, VARINT);
    this.int64(v);
  }

  /** Bytes as they are (the one copy of a payload). */
  raw(bytes: Uint8Array): void {
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** A length-delimited field whose payload is `bytes`. */
  bytes(fieldNo: number, bytes: Uint8Array): void {
    this.tag(fieldNo, LEN);
    this.uint32(bytes.length);
    this.raw(bytes);
  }

  /** A string field whose UTF-8 length `n` was measured by the size pass. */
  string(fieldNo: number, s: string, n: number): void {
    this.tag(fieldNo, LEN);
    this.uint32(n);
    this.pos += this.buf.write(s, this.pos, n, "utf8");
  }

  finish(): Buffer {
    assert(this.pos === this.buf.length, `wire codec wrote ${this.pos} of ${this.buf.length} bytes`);
    return this.buf;
  }
}

function isZero(v: bigint | number): boolean {
  return v === 0 || v === 0n;
}

// ---------------------------------------------------------------------------------------------
// ProduceRequest and ProduceStreamRequest

const PRODUCE_REQUEST = "rill.v1.ProduceRequest";
const PRODUCE_STREAM_REQUEST = "rill.v1.ProduceStreamRequest";
const PRODUCE_REQUEST_FIELDS: FieldNames = {
  1: "topic",
  2: "partition",
  3: "records",
  4: "record_batch",
  5: "acks",
  6: "timeout_ms",
  10: "producer_id",
  11: "producer_epoch",
  12: "base_sequence",
};
const PRODUCE_STREAM_REQUEST_FIELDS: FieldNames = { 1: "request_id", 2: "request" };

function newProduceRequest(): ProduceRequest {
  return {
    $typeName: PRODUCE_REQUEST,
    topic: "",
    records: [],
    recordBatch: EMPTY,
    acks: 0,
    timeoutMs: 0,
    producerEpoch: 0,
    baseSequence: 0,
  };
}

function readProduceRequest(r: Reader, msg: ProduceRequest): ProduceRequest {
  while (r.pos < r.end) {
    const tag = r.varint("<tag>") >>> 0;
    switch (tag) {
      case (1 << 3) | LEN:
        msg.topic = r.string("topic");
        break;
      case (2 << 3) | VARINT:
        msg.partition = r.varint("partition");
        break;
      case (3 << 3) | LEN:
        msg.records.push(r.message(RecordSchema, "records"));
        break;
      case (4 << 3) | LEN:
        msg.recordBatch = r.bytes("record_batch");
        break;
      case (5 << 3) | VARINT:
        msg.acks = r.varint("acks") as Acks;
        break;
      case (6 << 3) | VARINT:
        msg.timeoutMs = r.varint("timeout_ms");
        break;
      case (10 << 3) | VARINT:
        msg.producerId = r.varint64("producer_id", true);
        break;
      case (11 << 3) | VARINT:
        msg.producerEpoch = r.varint("producer_epoch");
        break;
      case (12 << 3) | VARINT:
        msg.baseSequence = r.varint("base_sequence");
        break;
      default:
        r.skip(tag, PRODUCE_REQUEST_FIELDS);
    }
  }
  return msg;
}

/**
 * Decodes a ProduceRequest (server side). `recordBatch` is a view of `bytes`: it stays valid as
 * long as `bytes` is not reused, which holds for grpc-js's per-message buffers.
 */
export function decodeProduceRequest(bytes: Uint8Array): ProduceRequest {
  return readProduceRequest(new Reader(bytes, 0, bytes.length, PRODUCE_REQUEST), newProduceRequest());
}

/** Decodes a ProduceStreamRequest (server side); the nested request as `decodeProduceRequest`. */
export function decodeProduceStreamRequest(bytes: Uint8Array): ProduceStreamRequest {
  const r = new Reader(bytes, 0, bytes.length, PRODUCE_STREAM_REQUEST);
  const msg: ProduceStreamRequest = { $typeName: PRODUCE_STREAM_REQUEST, requestId: 0n };
  while (r.pos < r.end) {
    const tag = r.varint("<tag>") >>> 0;
    if (tag === ((1 << 3) | VARINT)) msg.requestId = r.varint64("request_id", false);
    else if (tag === ((2 << 3) | LEN)) msg.request = readProduceRequest(r.sub("request"), msg.request ?? newProduceRequest());
    else r.skip(tag, PRODUCE_STREAM_REQUEST_FIELDS);
  }
  return msg;
}

/**
 * What `encodeProduceRequest` takes: a `ProduceRequest`, or the same fields without the
 * protobuf-es bookkeeping and with defaults left out.
 */
export interface ProduceRequestInput {
  readonly topic: string;
  readonly partition?: number | undefined;
  readonly records?: readonly RecordMessage[] | undefined;
  readonly recordBatch?: Uint8Array | undefined;
  readonly acks?: Acks | undefined;
  readonly timeoutMs?: number | undefined;
  readonly producerId?: bigint | undefined;
  readonly producerEpoch?: number | undefined;
  readonly baseSequence?: number | undefined;
}

/** What `encodeProduceStreamRequest` takes. */
export interface ProduceStreamRequestInput {
  readonly requestId?: bigint | number | undefined;
  readonly request: ProduceRequestInput;
}

/** The size pass of a ProduceRequest: its byte length, and what the write pass reuses. */
interface ProducePlan {
  readonly size: number;
  readonly topicBytes: number;
  readonly records: readonly Uint8Array[];
}

function planProduceRequest(m: ProduceRequestInput): ProducePlan {
  const topicBytes = Buffer.byteLength(m.topic, "utf8");
  let size = topicBytes > 0 ? sizeLen(1, topicBytes) : 0;
  if (m.partition !== undefined) size += 1 + sizeInt32(m.partition);
  const records = (m.records ?? []).map((rec) => toBinary(RecordSchema, rec));
  for (const rec of records) size += sizeLen(3, rec.length);
  const batchBytes = m.recordBatch?.length ?? 0;
  if (batchBytes > 0) size += sizeLen(4, batchBytes);
  if (m.acks) size += 1 + sizeInt32(m.acks);
  if (m.timeoutMs) size += 1 + sizeInt32(m.timeoutMs);
  if (m.producerId !== undefined) size += 1 + sizeInt64(m.producerId);
  if (m.producerEpoch) size += 1 + sizeInt32(m.producerEpoch);
  if (m.baseSequence) size += 1 + sizeInt32(m.baseSequence);
  return { size, topicBytes, records };
}

function writeProduceRequest(w: Writer, m: ProduceRequestInput, plan: ProducePlan): void {
  if (plan.topicBytes > 0) w.string(1, m.topic, plan.topicBytes);
  if (m.partition !== undefined) w.int32Field(2, m.partition);
  for (const rec of plan.records) w.bytes(3, rec);
  if (m.recordBatch !== undefined && m.recordBatch.length > 0) w.bytes(4, m.recordBatch);
  if (m.acks) w.int32Field(5, m.acks);
  if (m.timeoutMs) w.int32Field(6, m.timeoutMs);
  if (m.producerId !== undefined) w.int64Field(10, m.producerId);
  if (m.producerEpoch) w.int32Field(11, m.producerEpoch);
  if (m.baseSequence) w.int32Field(12, m.baseSequence);
}

/** Encodes a ProduceRequest (client side), copying `recordBatch` once into the output. */
export function encodeProduceRequest(m: ProduceRequestInput): Buffer {
  const plan = planProduceRequest(m);
  const w = new Writer(plan.size);
  writeProduceRequest(w, m, plan);
  return w.finish();
}

/** Encodes a ProduceStreamRequest (client side), copying the batch once into the output. */
export function encodeProduceStreamRequest(m: ProduceStreamRequestInput): Buffer {
  const plan = planProduceRequest(m.request);
  const id = m.requestId ?? 0;
  const size = (isZero(id) ? 0 : 1 + sizeInt64(id)) + sizeLen(2, plan.size);
  const w = new Writer(size);
  if (!isZero(id)) w.int64Field(1, id);
  w.tag(2, LEN);
  w.uint32(plan.size);
  writeProduceRequest(w, m.request, plan);
  return w.finish();
}

// ---------------------------------------------------------------------------------------------
// FetchResponse and SubscribeResponse

const FETCH_RESPONSE = "rill.v1.FetchResponse";
const SUBSCRIBE_RESPONSE = "rill.v1.SubscribeResponse";
const FETCHED_PARTITION = "rill.v1.FetchedPartition";
const FETCH_RESPONSE_FIELDS: FieldNames = { 1: "partitions" };
const FETCHED_PARTITION_FIELDS: FieldNames = {
  1: "topic",
  2: "partition",
  3: "high_watermark",
  4: "log_start_offset",
  5: "records",
  6: "record_batches",
  7: "error",
  8: "next_offset",
  9: "last_stable_offset",
};

/**
 * One partition for `encodeFetchResponse`: a `FetchedPartition`, or the same fields with
 * `recordBatches` given as chunks (e.g. slices of one log read) that are concatenated into the
 * single bytes field, int64 fields as numbers or bigints, and defaults left out.
 */
export interface FetchedPartitionOutput {
  readonly topic: string;
  readonly partition: number;
  readonly highWatermark?: bigint | number | undefined;
  readonly logStartOffset?: bigint | number | undefined;
  readonly records?: readonly ConsumedRecord[] | undefined;
  readonly recordBatches?: Uint8Array | readonly Uint8Array[] | undefined;
  readonly error?: ErrorDetail | undefined;
  readonly nextOffset?: bigint | number | undefined;
  readonly lastStableOffset?: bigint | number | undefined;
}

/** What `encodeFetchResponse` and `encodeSubscribeResponse` take. */
export interface FetchResponseOutput {
  readonly partitions: readonly FetchedPartitionOutput[];
}

interface PartitionPlan {
  readonly size: number;
  readonly topicBytes: number;
  readonly batchBytes: number;
  readonly records: readonly Uint8Array[];
  readonly error: Uint8Array | undefined;
}

function chunksOf(batches: FetchedPartitionOutput["recordBatches"]): readonly Uint8Array[] {
  if (batches === undefined) return [];
  return batches instanceof Uint8Array ? [batches] : batches;
}

function planPartition(p: FetchedPartitionOutput): PartitionPlan {
  const topicBytes = Buffer.byteLength(p.topic, "utf8");
  let size = topicBytes > 0 ? sizeLen(1, topicBytes) : 0;
  if (p.partition) size += 1 + sizeInt32(p.partition);
  if (p.highWatermark !== undefined && !isZero(p.highWatermark)) size += 1 + sizeInt64(p.highWatermark);
  if (p.logStartOffset !== undefined && !isZero(p.logStartOffset)) size += 1 + sizeInt64(p.logStartOffset);
  const records = (p.records ?? []).map((rec) => toBinary(ConsumedRecordSchema, rec));
  for (const rec of records) size += sizeLen(5, rec.length);
  let batchBytes = 0;
  for (const chunk of chunksOf(p.recordBatches)) batchBytes += chunk.length;
  if (batchBytes > 0) size += sizeLen(6, batchBytes);
  const error = p.error === undefined ? undefined : toBinary(ErrorDetailSchema, p.error);
  if (error !== undefined) size += sizeLen(7, error.length);
  if (p.nextOffset !== undefined && !isZero(p.nextOffset)) size += 1 + sizeInt64(p.nextOffset);
  if (p.lastStableOffset !== undefined && !isZero(p.lastStableOffset)) size += 1 + sizeInt64(p.lastStableOffset);
  return { size, topicBytes, batchBytes, records, error };
}

function writeOffset(w: Writer, fieldNo: number, v: bigint | number | undefined): void {
  if (v !== undefined && !isZero(v)) w.int64Field(fieldNo, v);
}

function writePartition(w: Writer, p: FetchedPartitionOutput, plan: PartitionPlan): void {
  w.tag(1, LEN);
  w.uint32(plan.size);
  if (plan.topicBytes > 0) w.string(1, p.topic, plan.topicBytes);
  if (p.partition) w.int32Field(2, p.partition);
  writeOffset(w, 3, p.highWatermark);
  writeOffset(w, 4, p.logStartOffset);
  for (const rec of plan.records) w.bytes(5, rec);
  if (plan.batchBytes > 0) {
    w.tag(6, LEN);
    w.uint32(plan.batchBytes);
    for (const chunk of chunksOf(p.recordBatches)) w.raw(chunk);
  }
  if (plan.error !== undefined) w.bytes(7, plan.error);
  writeOffset(w, 8, p.nextOffset);
  writeOffset(w, 9, p.lastStableOffset);
}

/**
 * Encodes a FetchResponse (server side): each partition's batch chunks are copied once, into the
 * output. The bytes equal protobuf-es's `toBinary` of the same message.
 */
export function encodeFetchResponse(m: FetchResponseOutput): Buffer {
  return encodeFetchInto(m, () => undefined);
}

/** Encodes one Subscribe stream message; same layout and cost as `encodeFetchResponse`. */
export const encodeSubscribeResponse: (m: FetchResponseOutput) => Buffer = encodeFetchResponse;

function encodeFetchInto(m: FetchResponseOutput, into: (size: number) => Buffer | undefined): Buffer {
  const plans = m.partitions.map(planPartition);
  let size = 0;
  for (const plan of plans) size += sizeLen(1, plan.size);
  const w = new Writer(size, into(size));
  for (let i = 0; i < plans.length; i++) writePartition(w, m.partitions[i]!, plans[i]!);
  return w.finish();
}

/** Largest message the transient encoder writes into its reused buffer (larger ones get their own). */
export const TRANSIENT_ENCODE_BYTES_MAX = 16 * 1024 * 1024;
/** Smallest reused buffer: it grows in powers of two from here. */
const TRANSIENT_ENCODE_BYTES_MIN = 64 * 1024;
let transientBuffer = Buffer.alloc(0);

function transientInto(size: number): Buffer | undefined {
  if (size > TRANSIENT_ENCODE_BYTES_MAX) return undefined;
  if (transientBuffer.length < size) {
    transientBuffer = Buffer.allocUnsafe(
      Math.min(TRANSIENT_ENCODE_BYTES_MAX, Math.max(TRANSIENT_ENCODE_BYTES_MIN, 2 ** Math.ceil(Math.log2(size)))),
    );
  }
  return transientBuffer.subarray(0, size);
}

/**
 * The server's serializer of FetchResponse and SubscribeResponse: the bytes of
 * `encodeFetchResponse`, written into one buffer that every call reuses (up to
 * TRANSIENT_ENCODE_BYTES_MAX), so serving a consumer allocates no response-sized buffer of its
 * own. The result is valid only until the next call: grpc-js copies a serializer's output into
 * its message frame before it returns (`serializeMessage` in server-interceptors), and nothing
 * else may call this.
 */
export function encodeFetchResponseTransient(m: FetchResponseOutput): Buffer {
  return encodeFetchInto(m, transientInto);
}

function readPartition(r: Reader): FetchedPartition {
  const p: FetchedPartition = {
    $typeName: FETCHED_PARTITION,
    topic: "",
    partition: 0,
    highWatermark: 0n,
    logStartOffset: 0n,
    records: [],
    recordBatches: EMPTY,
    nextOffset: 0n,
    lastStableOffset: 0n,
  };
  while (r.pos < r.end) {
    const tag = r.varint("<tag>") >>> 0;
    switch (tag) {
      case (1 << 3) | LEN:
        p.topic = r.string("topic");
        break;
      case (2 << 3) | VARINT:
        p.partition = r.varint("partition");
        break;
      case (3 << 3) | VARINT:
        p.highWatermark = r.varint64("high_watermark", true);
        break;
      case (4 << 3) | VARINT:
        p.logStartOffset = r.varint64("log_start_offset", true);
        break;
      case (5 << 3) | LEN:
        p.records.push(r.message(ConsumedRecordSchema, "records"));
        break;
      case (6 << 3) | LEN:
        p.recordBatches = r.bytes("record_batches");
        break;
      case (7 << 3) | LEN:
        p.error = r.message(ErrorDetailSchema, "error");
        break;
      case (8 << 3) | VARINT:
        p.nextOffset = r.varint64("next_offset", true);
        break;
      case (9 << 3) | VARINT:
        p.lastStableOffset = r.varint64("last_stable_offset", true);
        break;
      default:
        r.skip(tag, FETCHED_PARTITION_FIELDS);
    }
  }
  return p;
}

function readPartitions(r: Reader): FetchedPartition[] {
  const partitions: FetchedPartition[] = [];
  while (r.pos < r.end) {
    const tag = r.varint("<tag>") >>> 0;
    if (tag === ((1 << 3) | LEN)) partitions.push(readPartition(r.sub("partitions")));
    else r.skip(tag, FETCH_RESPONSE_FIELDS);
  }
  return partitions;
}

/** Decodes a FetchResponse (client side); `recordBatches` are views of `bytes`. */
export function decodeFetchResponse(bytes: Uint8Array): FetchResponse {
  const partitions = readPartitions(new Reader(bytes, 0, bytes.length, FETCH_RESPONSE));
  return { $typeName: FETCH_RESPONSE, partitions };
}

/** Decodes one Subscribe stream message (client side); `recordBatches` are views of `bytes`. */
export function decodeSubscribeResponse(bytes: Uint8Array): SubscribeResponse {
  const partitions = readPartitions(new Reader(bytes, 0, bytes.length, SUBSCRIBE_RESPONSE));
  return { $typeName: SUBSCRIBE_RESPONSE, partitions };
}

// ---------------------------------------------------------------------------------------------
// Codec overrides for grpc-service.ts (the same object serves servers and clients)

/** ProduceService with the hand-written ProduceRequest codecs. */
export const produceServiceCodecs = {
  produce: { deserializeRequest: decodeProduceRequest, serializeRequest: encodeProduceRequest },
  produceStream: { deserializeRequest: decodeProduceStreamRequest, serializeRequest: encodeProduceStreamRequest },
} satisfies CodecOverrides<typeof ProduceService>;

/** FetchService with the hand-written FetchResponse / SubscribeResponse codecs. */
export const fetchServiceCodecs = {
  fetch: { serializeResponse: encodeFetchResponseTransient, deserializeResponse: decodeFetchResponse },
  subscribe: { serializeResponse: encodeFetchResponseTransient, deserializeResponse: decodeSubscribeResponse },
} satisfies CodecOverrides<typeof FetchService>;
