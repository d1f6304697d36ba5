/**
 * The broker's hand-written protobuf codecs for the few messages that carry record batches —
 * the server's half; the client's half is src/client/wire-codec.ts, the generic wire reader and
 * writer src/protocol/protobuf-wire.ts.
 *
 * protobuf-es's `toBinary` copies a `bytes` field twice (into its growing writer, then out of
 * it), and its `fromBinary` walks reflection for every message. These codecs do the same work
 * by hand, byte-compatible with protobuf-es (fields written in field-number order, defaults of
 * implicit-presence fields left out, so the bytes are identical):
 *
 * - `ProduceRequest` / `ProduceStreamRequest`: the DECODER returns `record_batch` as a view
 *   (`subarray`) of the received buffer, no copy.
 * - `ProduceStreamResponse`: the ENCODER writes the ProduceResponse of every answer without
 *   protobuf-es's reflection.
 * - `FetchResponse` / `SubscribeResponse` (same layout: field 1 = repeated FetchedPartition):
 *   the ENCODER writes `record_batches` from a list of chunks (slices of a log read) with one
 *   copy into the output — a buffer reused from call to call (`encodeFetchResponseTransient`),
 *   since grpc-js copies it into its frame at once.
 *
 * Small nested messages (`Record`, `ConsumedRecord`, `ErrorDetail`) go through protobuf-es.
 * Decoders skip unknown fields, accept fields in any order (last value wins, repeated fields
 * append, a repeated singular message merges) and throw `WireFormatError` naming the message,
 * the field and the byte position on truncated or malformed input. grpc-js adds its own 5-byte
 * frame with one more copy on each side; that copy is outside our reach.
 */

import { toBinary } from "@bufbuild/protobuf";
import type { ConsumedRecord, ErrorDetail } from "../gen/rill/v1/common_pb.ts";
import { AbortedTransactionSchema, ConsumedRecordSchema, ErrorDetailSchema, RecordSchema } from "../gen/rill/v1/common_pb.ts";
import type { FetchService } from "../gen/rill/v1/fetch_service_pb.ts";
import { type ConsumeResponse, ConsumeResponseSchema, type GroupService } from "../gen/rill/v1/group_service_pb.ts";
import {
  type Acks,
  EndTransactionOutcomeSchema,
  type EndTransactionRequest,
  EndTransactionResponseSchema,
  type ProduceRequest,
  type ProduceResponse,
  type ProduceResponse_PartitionResult,
  type ProduceResponse_RecordResult,
  type ProduceService,
  type ProduceStreamRequest,
  type ProduceStreamResponse,
} from "../gen/rill/v1/produce_service_pb.ts";
import { type CodecOverrides, asBuffer } from "../protocol/grpc-service.ts";
import { TimestampType } from "../protocol/record-batch.ts";
import type { FetchedRecords } from "../service/fetched-records.ts";
import { EMPTY, type FieldNames, LEN, Reader, VARINT, Writer, isZero, sizeInt32, sizeInt64, sizeLen } from "../protocol/protobuf-wire.ts";

export { WireFormatError } from "../protocol/protobuf-wire.ts";

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
  13: "transactional_id",
};
const PRODUCE_STREAM_REQUEST_FIELDS: FieldNames = { 1: "request_id", 2: "request", 3: "end_transaction" };

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
    transactionalId: "",
  };
}

function readProduceRequest(r: Reader, msg: ProduceRequest): ProduceRequest {
  while (r.pos < r.end) {
    const tag = r.tag();
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
      case (13 << 3) | LEN:
        msg.transactionalId = r.string("transactional_id");
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

const END_TRANSACTION_REQUEST_FIELDS: FieldNames = { 1: "transactional_id", 2: "producer_id", 3: "producer_epoch", 4: "commit" };

/** An EndTransactionRequest (`into`: a previous occurrence of the field, merged as protobuf-es does). */
function readEndTransactionRequest(r: Reader, into: EndTransactionRequest | undefined): EndTransactionRequest {
  const m: EndTransactionRequest = into ?? {
    $typeName: "rill.v1.EndTransactionRequest",
    transactionalId: "",
    producerId: 0n,
    producerEpoch: 0,
    commit: false,
  };
  while (r.pos < r.end) {
    const tag = r.tag();
    if (tag === ((1 << 3) | LEN)) m.transactionalId = r.string("transactional_id");
    else if (tag === ((2 << 3) | VARINT)) m.producerId = r.varint64("producer_id", true);
    else if (tag === ((3 << 3) | VARINT)) m.producerEpoch = r.varint("producer_epoch");
    else if (tag === ((4 << 3) | VARINT)) m.commit = r.varint64("commit", false) !== 0n;
    else r.skip(tag, END_TRANSACTION_REQUEST_FIELDS);
  }
  return m;
}

/** Decodes a ProduceStreamRequest (server side); the nested request as `decodeProduceRequest`. */
export function decodeProduceStreamRequest(bytes: Uint8Array): ProduceStreamRequest {
  const r = new Reader(bytes, 0, bytes.length, PRODUCE_STREAM_REQUEST);
  const msg: ProduceStreamRequest = { $typeName: PRODUCE_STREAM_REQUEST, requestId: 0n };
  while (r.pos < r.end) {
    const tag = r.tag();
    if (tag === ((1 << 3) | VARINT)) msg.requestId = r.varint64("request_id", false);
    else if (tag === ((2 << 3) | LEN)) msg.request = readProduceRequest(r.sub("request"), msg.request ?? newProduceRequest());
    else if (tag === ((3 << 3) | LEN)) msg.endTransaction = readEndTransactionRequest(r.sub("end_transaction"), msg.endTransaction);
    else r.skip(tag, PRODUCE_STREAM_REQUEST_FIELDS);
  }
  return msg;
}

// ---------------------------------------------------------------------------------------------
// FetchResponse and SubscribeResponse

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
  /**
   * Field 5 as well, from the records the service read: each encoded as a ConsumedRecord of this
   * partition's topic and number without building the message (after `records`, if both).
   */
  readonly fetchedRecords?: FetchedRecords | undefined;
  readonly recordBatches?: Uint8Array | readonly Uint8Array[] | undefined;
  readonly error?: ErrorDetail | undefined;
  readonly nextOffset?: bigint | number | undefined;
  readonly lastStableOffset?: bigint | number | undefined;
  /** Field 10 (READ_COMMITTED, BATCHES): the aborted transactions of the batches. */
  readonly abortedTransactions?: readonly { readonly producerId: bigint | number; readonly firstOffset: bigint | number }[] | undefined;
  /** Field 11 (KIP-392): the node to read this partition from instead; written when given (0 included). */
  readonly preferredReadReplica?: number | undefined;
}

/** What `encodeFetchResponse` and `encodeSubscribeResponse` take. */
export interface FetchResponseOutput {
  readonly partitions: readonly FetchedPartitionOutput[];
  /** Field 2: the client-quota throttle of this answer; 0 or absent is left out. */
  readonly throttleTimeMs?: number | undefined;
}

interface PartitionPlan {
  readonly size: number;
  readonly topicBytes: number;
  readonly batchBytes: number;
  readonly records: readonly Uint8Array[];
  /** The encoded size of each of `fetchedRecords`. */
  readonly fetchedSizes: Int32Array;
  readonly error: Uint8Array | undefined;
  readonly aborted: readonly Uint8Array[];
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
  const fetched = p.fetchedRecords;
  const fetchedSizes = new Int32Array(fetched?.length ?? 0);
  for (let i = 0; i < fetchedSizes.length; i++) {
    const n = consumedRecordSize(topicBytes, p.partition, fetched!, i);
    fetchedSizes[i] = n;
    size += sizeLen(5, n);
  }
  let batchBytes = 0;
  for (const chunk of chunksOf(p.recordBatches)) batchBytes += chunk.length;
  if (batchBytes > 0) size += sizeLen(6, batchBytes);
  const error = p.error === undefined ? undefined : toBinary(ErrorDetailSchema, p.error);
  if (error !== undefined) size += sizeLen(7, error.length);
  if (p.nextOffset !== undefined && !isZero(p.nextOffset)) size += 1 + sizeInt64(p.nextOffset);
  if (p.lastStableOffset !== undefined && !isZero(p.lastStableOffset)) size += 1 + sizeInt64(p.lastStableOffset);
  const aborted = (p.abortedTransactions ?? []).map((a) =>
    toBinary(AbortedTransactionSchema, {
      $typeName: "rill.v1.AbortedTransaction",
      producerId: BigInt(a.producerId),
      firstOffset: BigInt(a.firstOffset),
    }),
  );
  for (const a of aborted) size += sizeLen(10, a.length);
  if (p.preferredReadReplica !== undefined) size += 1 + sizeInt32(p.preferredReadReplica);
  return { size, topicBytes, batchBytes, records, fetchedSizes, error, aborted };
}

/** ConsumedRecord.timestamp_type of a record's timestamp type. */
function protoTimestampType(t: number): number {
  return t === TimestampType.LOG_APPEND_TIME ? 2 : 1; // TIMESTAMP_TYPE_LOG_APPEND_TIME, TIMESTAMP_TYPE_CREATE_TIME
}

/** Bytes of a Header message. */
function headerSize(keyBytes: number, value: Uint8Array | null): number {
  return (keyBytes > 0 ? sizeLen(1, keyBytes) : 0) + (value !== null ? sizeLen(2, value.length) : 0);
}

/** Bytes of record `i` of `rs` as a ConsumedRecord of a topic whose name is `topicBytes` long and of `partition`. */
function consumedRecordSize(topicBytes: number, partition: number, rs: FetchedRecords, i: number): number {
  let n = topicBytes > 0 ? sizeLen(1, topicBytes) : 0;
  if (partition) n += 1 + sizeInt32(partition);
  const offset = rs.offset(i);
  if (offset) n += 1 + sizeInt64(offset);
  const ts = rs.timestampMs(i);
  if (ts) n += 1 + sizeInt64(ts);
  const keyLength = rs.keyLength(i);
  if (keyLength >= 0) n += sizeLen(5, keyLength);
  const valueLength = rs.valueLength(i);
  if (valueLength >= 0) n += sizeLen(6, valueLength);
  for (const h of rs.headers(i)) n += sizeLen(7, headerSize(Buffer.byteLength(h.key, "utf8"), h.value));
  n += 2; // timestamp_type, never 0
  const epoch = rs.leaderEpoch(i);
  if (epoch) n += 1 + sizeInt32(epoch);
  return n;
}

/**
 * Writes record `i` of `rs` as a ConsumedRecord, field by field as protobuf-es would (a `fieldNo`
 * payload of `size` bytes); key and value are copied from the read's buffers, no view made.
 */
function writeConsumedRecord(
  w: Writer,
  topic: string,
  topicBytes: number,
  partition: number,
  rs: FetchedRecords,
  i: number,
  size: number,
  fieldNo = 5,
): void {
  w.tag(fieldNo, LEN);
  w.uint32(size);
  if (topicBytes > 0) w.string(1, topic, topicBytes);
  if (partition) w.int32Field(2, partition);
  const offset = rs.offset(i);
  if (offset) w.int64Field(3, offset);
  const ts = rs.timestampMs(i);
  if (ts) w.int64Field(4, ts);
  const keyLength = rs.keyLength(i);
  if (keyLength >= 0) {
    w.tag(5, LEN);
    w.uint32(keyLength);
    w.pos += rs.copyKey(i, w.buf, w.pos);
  }
  const valueLength = rs.valueLength(i);
  if (valueLength >= 0) {
    w.tag(6, LEN);
    w.uint32(valueLength);
    w.pos += rs.copyValue(i, w.buf, w.pos);
  }
  for (const h of rs.headers(i)) {
    const keyBytes = Buffer.byteLength(h.key, "utf8");
    w.tag(7, LEN);
    w.uint32(headerSize(keyBytes, h.value));
    if (keyBytes > 0) w.string(1, h.key, keyBytes);
    if (h.value !== null) w.bytes(2, h.value);
  }
  w.int32Field(8, protoTimestampType(rs.timestampType(i)));
  const epoch = rs.leaderEpoch(i);
  if (epoch) w.int32Field(9, epoch);
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
  const fetched = p.fetchedRecords;
  for (let i = 0; i < plan.fetchedSizes.length; i++)
    writeConsumedRecord(w, p.topic, plan.topicBytes, p.partition, fetched!, i, plan.fetchedSizes[i]!);
  if (plan.batchBytes > 0) {
    w.tag(6, LEN);
    w.uint32(plan.batchBytes);
    for (const chunk of chunksOf(p.recordBatches)) w.raw(chunk);
  }
  if (plan.error !== undefined) w.bytes(7, plan.error);
  writeOffset(w, 8, p.nextOffset);
  writeOffset(w, 9, p.lastStableOffset);
  for (const a of plan.aborted) w.bytes(10, a);
  if (p.preferredReadReplica !== undefined) w.int32Field(11, p.preferredReadReplica);
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
  const throttle = m.throttleTimeMs ?? 0;
  if (throttle !== 0) size += 1 + sizeInt32(throttle);
  const w = new Writer(size, into(size));
  for (let i = 0; i < plans.length; i++) writePartition(w, m.partitions[i]!, plans[i]!);
  if (throttle !== 0) w.int32Field(2, throttle);
  return w.finish();
}

/** Largest message the transient encoder writes into its reused buffer (larger ones get their own). */
export const TRANSIENT_ENCODE_BYTES_MAX = 16 * 1024 * 1024;
/** Smallest reused buffer: it grows in powers of two from here. */
const TRANSIENT_ENCODE_BYTES_MIN = 64 * 1024;
let transientBuffer = Buffer.alloc(0);

/**
 * The reused output buffer of `size` bytes (undefined above TRANSIENT_ENCODE_BYTES_MAX): for
 * serializers whose output grpc-js copies before it returns (also replica-fetch-codec.ts).
 */
export function transientInto(size: number): Buffer | undefined {
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

// ---------------------------------------------------------------------------------------------
// ConsumeResponse

/**
 * ConsumeResponse.Records with RECORD_FORMAT_RECORDS as the Consume session delivers them: the
 * records the service decoded, each written as a ConsumedRecord without building the message
 * (a group member reading a long backlog otherwise built a message, two bigints and a header list
 * per record, and under Bun that garbage swung the heap by 100 MiB between collections).
 */
export interface ConsumeRecordsOutput {
  readonly topic: string;
  readonly partition: number;
  readonly highWatermark: number;
  readonly nextOffset: number;
  readonly firstOffset: number;
  readonly seekId: bigint;
  readonly throttleTimeMs: number;
  readonly fetchedRecords: FetchedRecords;
}

/** What the server's Consume serializer takes: a ConsumeResponse message, or records to encode by hand. */
export type ConsumeResponseOutput = ConsumeResponse | ConsumeRecordsOutput;

/** Encodes `{ records: m }` as a ConsumeResponse; the bytes equal protobuf-es's of the same message. */
export function encodeConsumeRecords(m: ConsumeRecordsOutput): Buffer {
  return encodeConsumeRecordsInto(m, () => undefined);
}

function encodeConsumeRecordsInto(m: ConsumeRecordsOutput, into: (size: number) => Buffer | undefined): Buffer {
  const topicBytes = Buffer.byteLength(m.topic, "utf8");
  let body = topicBytes > 0 ? sizeLen(1, topicBytes) : 0;
  if (m.partition) body += 1 + sizeInt32(m.partition);
  const sizes = new Int32Array(m.fetchedRecords.length);
  for (let i = 0; i < sizes.length; i++) {
    const n = consumedRecordSize(topicBytes, m.partition, m.fetchedRecords, i);
    sizes[i] = n;
    body += sizeLen(3, n);
  }
  if (m.highWatermark) body += 1 + sizeInt64(m.highWatermark);
  if (m.nextOffset) body += 1 + sizeInt64(m.nextOffset);
  if (m.firstOffset) body += 1 + sizeInt64(m.firstOffset);
  if (m.throttleTimeMs) body += 1 + sizeInt32(m.throttleTimeMs);
  if (m.seekId) body += 1 + sizeInt64(m.seekId);
  const size = sizeLen(2, body);
  const w = new Writer(size, into(size));
  w.tag(2, LEN);
  w.uint32(body);
  if (topicBytes > 0) w.string(1, m.topic, topicBytes);
  if (m.partition) w.int32Field(2, m.partition);
  for (let i = 0; i < sizes.length; i++) writeConsumedRecord(w, m.topic, topicBytes, m.partition, m.fetchedRecords, i, sizes[i]!, 3);
  if (m.highWatermark) w.int64Field(4, m.highWatermark);
  if (m.nextOffset) w.int64Field(6, m.nextOffset);
  if (m.firstOffset) w.int64Field(7, m.firstOffset);
  if (m.throttleTimeMs) w.int32Field(9, m.throttleTimeMs);
  if (m.seekId) w.int64Field(11, m.seekId);
  return w.finish();
}

/**
 * The server's Consume serializer: records by hand into the reused buffer (`transientInto`, as
 * FetchResponse), every other message through protobuf-es.
 */
export function encodeConsumeResponseTransient(m: ConsumeResponseOutput): Buffer {
  if ("fetchedRecords" in m) return encodeConsumeRecordsInto(m, transientInto);
  return asBuffer(toBinary(ConsumeResponseSchema, m));
}

// ---------------------------------------------------------------------------------------------
// ProduceStreamResponse

interface PartitionResultPlan {
  readonly size: number;
  readonly error: Uint8Array | undefined;
}

function planPartitionResult(p: ProduceResponse_PartitionResult): PartitionResultPlan {
  let size = p.partition ? 1 + sizeInt32(p.partition) : 0;
  if (!isZero(p.baseOffset)) size += 1 + sizeInt64(p.baseOffset);
  if (!isZero(p.logAppendTimeMs)) size += 1 + sizeInt64(p.logAppendTimeMs);
  const error = p.error === undefined ? undefined : toBinary(ErrorDetailSchema, p.error);
  if (error !== undefined) size += sizeLen(4, error.length);
  if (!isZero(p.logStartOffset)) size += 1 + sizeInt64(p.logStartOffset);
  return { size, error };
}

function recordResultSize(r: ProduceResponse_RecordResult): number {
  return (r.partition ? 1 + sizeInt32(r.partition) : 0) + (isZero(r.offset) ? 0 : 1 + sizeInt64(r.offset));
}

/** The payload size of a ProduceResponse and what writing it needs. */
function planProduceResponse(m: ProduceResponse): { size: number; topicBytes: number; partitions: PartitionResultPlan[] } {
  const topicBytes = Buffer.byteLength(m.topic, "utf8");
  let size = topicBytes > 0 ? sizeLen(1, topicBytes) : 0;
  const partitions = m.partitions.map(planPartitionResult);
  for (const p of partitions) size += sizeLen(2, p.size);
  for (const r of m.records) size += sizeLen(3, recordResultSize(r));
  if (m.throttleTimeMs) size += 1 + sizeInt32(m.throttleTimeMs);
  return { size, topicBytes, partitions };
}

function writeProduceResponse(w: Writer, m: ProduceResponse, plan: ReturnType<typeof planProduceResponse>): void {
  if (plan.topicBytes > 0) w.string(1, m.topic, plan.topicBytes);
  m.partitions.forEach((p, i) => {
    const pp = plan.partitions[i]!;
    w.tag(2, LEN);
    w.uint32(pp.size);
    if (p.partition) w.int32Field(1, p.partition);
    if (!isZero(p.baseOffset)) w.int64Field(2, p.baseOffset);
    if (!isZero(p.logAppendTimeMs)) w.int64Field(3, p.logAppendTimeMs);
    if (pp.error !== undefined) w.bytes(4, pp.error);
    if (!isZero(p.logStartOffset)) w.int64Field(5, p.logStartOffset);
  });
  for (const r of m.records) {
    w.tag(3, LEN);
    w.uint32(recordResultSize(r));
    if (r.partition) w.int32Field(1, r.partition);
    if (!isZero(r.offset)) w.int64Field(2, r.offset);
  }
  if (m.throttleTimeMs) w.int32Field(4, m.throttleTimeMs);
}

/**
 * Encodes a ProduceStreamResponse (server side), the bytes of protobuf-es's `toBinary`: the
 * ProduceResponse by hand (every produce answer), the small rest (an error, an end's answer or
 * outcome) through protobuf-es.
 */
export function encodeProduceStreamResponse(m: ProduceStreamResponse): Buffer {
  let size = isZero(m.requestId) ? 0 : 1 + sizeInt64(m.requestId);
  const result = m.result;
  const response = result.case === "response" ? planProduceResponse(result.value) : null;
  const other =
    result.case === "error"
      ? toBinary(ErrorDetailSchema, result.value)
      : result.case === "endTransaction"
        ? toBinary(EndTransactionResponseSchema, result.value)
        : null;
  if (response !== null) size += sizeLen(2, response.size);
  if (other !== null) size += sizeLen(result.case === "error" ? 3 : 4, other.length);
  const outcome = m.endTransactionOutcome === undefined ? null : toBinary(EndTransactionOutcomeSchema, m.endTransactionOutcome);
  if (outcome !== null) size += sizeLen(5, outcome.length);
  const w = new Writer(size);
  if (!isZero(m.requestId)) w.int64Field(1, m.requestId);
  if (response !== null) {
    w.tag(2, LEN);
    w.uint32(response.size);
    writeProduceResponse(w, (result as { value: ProduceResponse }).value, response);
  }
  if (other !== null) w.bytes(result.case === "error" ? 3 : 4, other);
  if (outcome !== null) w.bytes(5, outcome);
  return w.finish();
}

// ---------------------------------------------------------------------------------------------
// Codec overrides for the server (src/rpc/grpc-service.ts `addService`)

/** ProduceService with the hand-written ProduceRequest decoders. */
export const produceServiceCodecs = {
  produce: { deserializeRequest: decodeProduceRequest },
  produceStream: { deserializeRequest: decodeProduceStreamRequest, serializeResponse: encodeProduceStreamResponse },
} satisfies CodecOverrides<typeof ProduceService>;

/** GroupService with the hand-written encoder of Consume's records. */
export const groupServiceCodecs = {
  consume: { serializeResponse: encodeConsumeResponseTransient },
} satisfies CodecOverrides<typeof GroupService>;

/** FetchService with the hand-written FetchResponse / SubscribeResponse encoders. */
export const fetchServiceCodecs = {
  fetch: { serializeResponse: encodeFetchResponseTransient },
  subscribe: { serializeResponse: encodeFetchResponseTransient },
} satisfies CodecOverrides<typeof FetchService>;
