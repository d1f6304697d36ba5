/**
 * The SDK's hand-written protobuf codecs for the few messages that carry record batches — the
 * client's half; the broker's half is src/rpc/wire-codec.ts, the generic wire reader and writer
 * src/protocol/protobuf-wire.ts. Byte-compatible with protobuf-es (fields in field-number order,
 * implicit-presence defaults left out), with fewer copies:
 *
 * - `ProduceRequest` / `ProduceStreamRequest`: the ENCODER writes an already encoded batch with
 *   one copy into the output (protobuf-es's `toBinary` copies a `bytes` field twice).
 * - `ProduceStreamResponse`: the DECODER reads the ProduceResponse of every answer without
 *   protobuf-es's reflection.
 * - `FetchResponse` / `SubscribeResponse` (same layout: field 1 = repeated FetchedPartition):
 *   the DECODER returns `record_batches` as a view of the received buffer, no copy.
 *
 * Small nested messages (`Record`, `ConsumedRecord`, `ErrorDetail`) go through protobuf-es.
 * Decoders skip unknown fields, accept fields in any order and throw `WireFormatError` naming the
 * message, the field and the byte position on truncated or malformed input.
 */

import { toBinary } from "@bufbuild/protobuf";
import type { Record as RecordMessage } from "../gen/rill/v1/common_pb.ts";
import { AbortedTransactionSchema, ConsumedRecordSchema, ErrorDetailSchema, RecordSchema } from "../gen/rill/v1/common_pb.ts";
import type { FetchResponse, FetchService, FetchedPartition, SubscribeResponse } from "../gen/rill/v1/fetch_service_pb.ts";
import {
  type Acks,
  EndTransactionOutcomeSchema,
  EndTransactionResponseSchema,
  type ProduceResponse,
  type ProduceResponse_PartitionResult,
  type ProduceResponse_RecordResult,
  type ProduceService,
  type ProduceStreamResponse,
} from "../gen/rill/v1/produce_service_pb.ts";
import type { CodecOverrides } from "../protocol/grpc-service.ts";
import { EMPTY, type FieldNames, LEN, Reader, VARINT, Writer, isZero, sizeInt32, sizeInt64, sizeLen } from "../protocol/protobuf-wire.ts";

export { WireFormatError } from "../protocol/protobuf-wire.ts";

// ---------------------------------------------------------------------------------------------
// ProduceRequest and ProduceStreamRequest

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
  /** The producer's transactional id (issue 17); empty or absent: not transactional. */
  readonly transactionalId?: string | undefined;
}

/** What `encodeProduceStreamRequest` takes. */
export interface ProduceStreamRequestInput {
  readonly requestId?: bigint | number | undefined;
  readonly request: ProduceRequestInput;
  /**
   * The end of the producer's transaction, in the same message right after `request` (field 3
   * with field 2, issue 17): the broker ends it once `request` is answered.
   */
  readonly endTransaction?: EndTransactionStreamInput["endTransaction"] | undefined;
}

/** A ProduceStreamRequest that ends the producer's transaction (field 3, issue 17). */
export interface EndTransactionStreamInput {
  readonly requestId?: bigint | number | undefined;
  readonly endTransaction: {
    readonly transactionalId: string;
    readonly producerId: bigint;
    readonly producerEpoch: number;
    readonly commit: boolean;
  };
}

/** The size pass of a ProduceRequest: its byte length, and what the write pass reuses. */
interface ProducePlan {
  readonly size: number;
  readonly topicBytes: number;
  readonly txnIdBytes: number;
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
  const txnIdBytes = m.transactionalId ? Buffer.byteLength(m.transactionalId, "utf8") : 0;
  if (txnIdBytes > 0) size += sizeLen(13, txnIdBytes);
  return { size, topicBytes, txnIdBytes, records };
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
  if (plan.txnIdBytes > 0) w.string(13, m.transactionalId!, plan.txnIdBytes);
}

/** Encodes a ProduceRequest (client side), copying `recordBatch` once into the output. */
export function encodeProduceRequest(m: ProduceRequestInput): Buffer {
  const plan = planProduceRequest(m);
  const w = new Writer(plan.size);
  writeProduceRequest(w, m, plan);
  return w.finish();
}

/** Encodes a ProduceStreamRequest (client side), copying the batch once into the output. */
export function encodeProduceStreamRequest(m: ProduceStreamRequestInput | EndTransactionStreamInput): Buffer {
  if (!("request" in m)) return encodeEndTransactionStreamRequest(m);
  const plan = planProduceRequest(m.request);
  const end = m.endTransaction === undefined ? null : encodeEndTransactionRequest(m.endTransaction);
  const id = m.requestId ?? 0;
  const size = (isZero(id) ? 0 : 1 + sizeInt64(id)) + sizeLen(2, plan.size) + (end === null ? 0 : sizeLen(3, end.length));
  const w = new Writer(size);
  if (!isZero(id)) w.int64Field(1, id);
  w.tag(2, LEN);
  w.uint32(plan.size);
  writeProduceRequest(w, m.request, plan);
  if (end !== null) w.bytes(3, end);
  return w.finish();
}

/** An EndTransactionRequest's bytes, as protobuf-es's `toBinary` writes them. */
function encodeEndTransactionRequest(end: EndTransactionStreamInput["endTransaction"]): Uint8Array {
  const idBytes = Buffer.byteLength(end.transactionalId, "utf8");
  const size =
    (idBytes > 0 ? sizeLen(1, idBytes) : 0) +
    (isZero(end.producerId) ? 0 : 1 + sizeInt64(end.producerId)) +
    (end.producerEpoch ? 1 + sizeInt32(end.producerEpoch) : 0) +
    (end.commit ? 2 : 0);
  const w = new Writer(size);
  if (idBytes > 0) w.string(1, end.transactionalId, idBytes);
  if (!isZero(end.producerId)) w.int64Field(2, end.producerId);
  if (end.producerEpoch) w.int32Field(3, end.producerEpoch);
  if (end.commit) w.int32Field(4, 1);
  return w.finish();
}

function encodeEndTransactionStreamRequest(m: EndTransactionStreamInput): Buffer {
  const end = encodeEndTransactionRequest(m.endTransaction);
  const id = m.requestId ?? 0;
  const w = new Writer((isZero(id) ? 0 : 1 + sizeInt64(id)) + sizeLen(3, end.length));
  if (!isZero(id)) w.int64Field(1, id);
  w.bytes(3, end);
  return w.finish();
}

// ---------------------------------------------------------------------------------------------
// ProduceStreamResponse

const PRODUCE_STREAM_RESPONSE = "rill.v1.ProduceStreamResponse";
const PRODUCE_RESPONSE = "rill.v1.ProduceResponse";
const PARTITION_RESULT = "rill.v1.ProduceResponse.PartitionResult";
const RECORD_RESULT = "rill.v1.ProduceResponse.RecordResult";
const PRODUCE_STREAM_RESPONSE_FIELDS: FieldNames = {
  1: "request_id",
  2: "response",
  3: "error",
  4: "end_transaction",
  5: "end_transaction_outcome",
};
const PRODUCE_RESPONSE_FIELDS: FieldNames = { 1: "topic", 2: "partitions", 3: "records", 4: "throttle_time_ms" };
const PARTITION_RESULT_FIELDS: FieldNames = {
  1: "partition",
  2: "base_offset",
  3: "log_append_time_ms",
  4: "error",
  5: "log_start_offset",
};
const RECORD_RESULT_FIELDS: FieldNames = { 1: "partition", 2: "offset" };

function readPartitionResult(r: Reader): ProduceResponse_PartitionResult {
  const p: ProduceResponse_PartitionResult = {
    $typeName: PARTITION_RESULT,
    partition: 0,
    baseOffset: 0n,
    logAppendTimeMs: 0n,
    logStartOffset: 0n,
  };
  while (r.pos < r.end) {
    const tag = r.tag();
    if (tag === ((1 << 3) | VARINT)) p.partition = r.varint("partition");
    else if (tag === ((2 << 3) | VARINT)) p.baseOffset = r.varint64("base_offset", true);
    else if (tag === ((3 << 3) | VARINT)) p.logAppendTimeMs = r.varint64("log_append_time_ms", true);
    else if (tag === ((4 << 3) | LEN)) p.error = r.message(ErrorDetailSchema, "error");
    else if (tag === ((5 << 3) | VARINT)) p.logStartOffset = r.varint64("log_start_offset", true);
    else r.skip(tag, PARTITION_RESULT_FIELDS);
  }
  return p;
}

function readRecordResult(r: Reader): ProduceResponse_RecordResult {
  const x: ProduceResponse_RecordResult = { $typeName: RECORD_RESULT, partition: 0, offset: 0n };
  while (r.pos < r.end) {
    const tag = r.tag();
    if (tag === ((1 << 3) | VARINT)) x.partition = r.varint("partition");
    else if (tag === ((2 << 3) | VARINT)) x.offset = r.varint64("offset", true);
    else r.skip(tag, RECORD_RESULT_FIELDS);
  }
  return x;
}

function readProduceResponse(r: Reader): ProduceResponse {
  const m: ProduceResponse = { $typeName: PRODUCE_RESPONSE, topic: "", partitions: [], records: [], throttleTimeMs: 0 };
  while (r.pos < r.end) {
    const tag = r.tag();
    if (tag === ((1 << 3) | LEN)) m.topic = r.string("topic");
    else if (tag === ((2 << 3) | LEN)) m.partitions.push(readPartitionResult(r.sub("partitions")));
    else if (tag === ((3 << 3) | LEN)) m.records.push(readRecordResult(r.sub("records")));
    else if (tag === ((4 << 3) | VARINT)) m.throttleTimeMs = r.varint("throttle_time_ms");
    else r.skip(tag, PRODUCE_RESPONSE_FIELDS);
  }
  return m;
}

/**
 * Decodes a ProduceStreamResponse (client side) as protobuf-es's `fromBinary` would: the
 * ProduceResponse by hand (every produce answer), the small rest through protobuf-es.
 */
export function decodeProduceStreamResponse(bytes: Uint8Array): ProduceStreamResponse {
  const r = new Reader(bytes, 0, bytes.length, PRODUCE_STREAM_RESPONSE);
  const m: ProduceStreamResponse = { $typeName: PRODUCE_STREAM_RESPONSE, requestId: 0n, result: { case: undefined } };
  while (r.pos < r.end) {
    const tag = r.tag();
    if (tag === ((1 << 3) | VARINT)) m.requestId = r.varint64("request_id", false);
    else if (tag === ((2 << 3) | LEN)) m.result = { case: "response", value: readProduceResponse(r.sub("response")) };
    else if (tag === ((3 << 3) | LEN)) m.result = { case: "error", value: r.message(ErrorDetailSchema, "error") };
    else if (tag === ((4 << 3) | LEN))
      m.result = { case: "endTransaction", value: r.message(EndTransactionResponseSchema, "end_transaction") };
    else if (tag === ((5 << 3) | LEN)) m.endTransactionOutcome = r.message(EndTransactionOutcomeSchema, "end_transaction_outcome");
    else r.skip(tag, PRODUCE_STREAM_RESPONSE_FIELDS);
  }
  return m;
}

// ---------------------------------------------------------------------------------------------
// FetchResponse and SubscribeResponse

const FETCH_RESPONSE = "rill.v1.FetchResponse";
const SUBSCRIBE_RESPONSE = "rill.v1.SubscribeResponse";
const FETCHED_PARTITION = "rill.v1.FetchedPartition";
const FETCH_RESPONSE_FIELDS: FieldNames = { 1: "partitions", 2: "throttle_time_ms" };
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
  10: "aborted_transactions",
  11: "preferred_read_replica",
};

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
    abortedTransactions: [],
  };
  while (r.pos < r.end) {
    const tag = r.tag();
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
      case (10 << 3) | LEN:
        p.abortedTransactions.push(r.message(AbortedTransactionSchema, "aborted_transactions"));
        break;
      case (11 << 3) | VARINT:
        p.preferredReadReplica = r.varint("preferred_read_replica");
        break;
      default:
        r.skip(tag, FETCHED_PARTITION_FIELDS);
    }
  }
  return p;
}

/** The partitions (field 1) and `throttle_time_ms` (field 2) of a FetchResponse or SubscribeResponse. */
function readPartitions(r: Reader): { partitions: FetchedPartition[]; throttleTimeMs: number } {
  const partitions: FetchedPartition[] = [];
  let throttleTimeMs = 0;
  while (r.pos < r.end) {
    const tag = r.tag();
    if (tag === ((1 << 3) | LEN)) partitions.push(readPartition(r.sub("partitions")));
    else if (tag === ((2 << 3) | VARINT)) throttleTimeMs = r.varint("throttle_time_ms");
    else r.skip(tag, FETCH_RESPONSE_FIELDS);
  }
  return { partitions, throttleTimeMs };
}

/** Decodes a FetchResponse (client side); `recordBatches` are views of `bytes`. */
export function decodeFetchResponse(bytes: Uint8Array): FetchResponse {
  return { $typeName: FETCH_RESPONSE, ...readPartitions(new Reader(bytes, 0, bytes.length, FETCH_RESPONSE)) };
}

/** Decodes one Subscribe stream message (client side); `recordBatches` are views of `bytes`. */
export function decodeSubscribeResponse(bytes: Uint8Array): SubscribeResponse {
  return { $typeName: SUBSCRIBE_RESPONSE, ...readPartitions(new Reader(bytes, 0, bytes.length, SUBSCRIBE_RESPONSE)) };
}

// ---------------------------------------------------------------------------------------------
// Codec overrides for clients (src/protocol/grpc-service.ts `clientConstructor`)

/** ProduceService with the hand-written ProduceRequest / ProduceStreamRequest encoders. */
export const produceClientCodecs = {
  produce: { serializeRequest: encodeProduceRequest },
  produceStream: { serializeRequest: encodeProduceStreamRequest, deserializeResponse: decodeProduceStreamResponse },
} satisfies CodecOverrides<typeof ProduceService>;

/** FetchService with the hand-written FetchResponse / SubscribeResponse decoders. */
export const fetchClientCodecs = {
  fetch: { deserializeResponse: decodeFetchResponse },
  subscribe: { deserializeResponse: decodeSubscribeResponse },
} satisfies CodecOverrides<typeof FetchService>;
