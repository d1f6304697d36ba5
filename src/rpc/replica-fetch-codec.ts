/**
 * The leader's hand-written encoder of `ReplicaFetchResponse` (ReplicationService.ReplicaFetch),
 * as wire-codec.ts writes FetchResponse: each partition's `record_batches` is given as chunks —
 * the tail cache's slices (views of the appended requests) or a disk read into a pooled buffer —
 * and copied once, into one buffer that every call reuses (`transientInto`), which grpc-js
 * copies into its message frame before `write` returns. protobuf-es would first join the
 * chunks (`Buffer.concat`), then copy the bytes into its growing writer and out of it again.
 *
 * The bytes equal protobuf-es's `toBinary` of the same message (fields in field-number order,
 * defaults of implicit-presence fields left out); the follower decodes them with protobuf-es,
 * whose `bytes` fields are views of the received message (no copy).
 *
 * What grpc-js allows (1.14, `serializeMessage` in server-interceptors.js): a serializer returns
 * one Buffer, which grpc-js copies into a fresh 5-byte-framed buffer for http2's `write`; there is
 * no way to hand it a list of buffers or a frame of our own. So a response costs one copy here
 * (chunks into the reused buffer) and one in grpc-js; a chunk must stay untouched until the
 * write's callback (the pooled buffers of disk reads go back to their pool only then).
 */
import { toBinary } from "@bufbuild/protobuf";
import { type ErrorDetail, ErrorDetailSchema } from "../gen/rill/v1/common_pb.ts";
import type { ReplicationService } from "../gen/rill/v1/replication_service_pb.ts";
import type { CodecOverrides } from "../protocol/grpc-service.ts";
import { LEN, Writer, sizeInt32, sizeInt64, sizeLen } from "../protocol/protobuf-wire.ts";
import { transientInto } from "./wire-codec.ts";

/** One partition of a ReplicaFetchResponse, with its batches as chunks. */
export interface ReplicaFetchPartitionOutput {
  readonly topic: string;
  readonly partition: number;
  readonly highWatermark: number;
  readonly logStartOffset: number;
  /** Whole batches, back to back across the chunks. */
  readonly recordBatches: readonly Uint8Array[];
  readonly error?: ErrorDetail | undefined;
  readonly divergingEpoch?: { readonly epoch: number; readonly endOffset: number } | undefined;
}

/** What `encodeReplicaFetchResponse` takes. */
export interface ReplicaFetchResponseOutput {
  readonly partitions: readonly ReplicaFetchPartitionOutput[];
  /** The leader keeps the stream's fetch session (absent: false). */
  readonly sessionKept?: boolean;
}

interface Plan {
  readonly size: number;
  readonly topicBytes: number;
  readonly batchBytes: number;
  readonly error: Uint8Array | undefined;
  readonly divergingSize: number;
}

function divergingSize(d: { epoch: number; endOffset: number }): number {
  return (d.epoch !== 0 ? 1 + sizeInt32(d.epoch) : 0) + (d.endOffset !== 0 ? 1 + sizeInt64(d.endOffset) : 0);
}

function plan(p: ReplicaFetchPartitionOutput): Plan {
  const topicBytes = Buffer.byteLength(p.topic, "utf8");
  let size = topicBytes > 0 ? sizeLen(1, topicBytes) : 0;
  if (p.partition !== 0) size += 1 + sizeInt32(p.partition);
  if (p.highWatermark !== 0) size += 1 + sizeInt64(p.highWatermark);
  if (p.logStartOffset !== 0) size += 1 + sizeInt64(p.logStartOffset);
  let batchBytes = 0;
  for (const c of p.recordBatches) batchBytes += c.length;
  if (batchBytes > 0) size += sizeLen(5, batchBytes);
  const error = p.error === undefined ? undefined : toBinary(ErrorDetailSchema, p.error);
  if (error !== undefined) size += sizeLen(6, error.length);
  const dSize = p.divergingEpoch === undefined ? -1 : divergingSize(p.divergingEpoch);
  if (dSize >= 0) size += sizeLen(7, dSize);
  return { size, topicBytes, batchBytes, error, divergingSize: dSize };
}

function encodeInto(m: ReplicaFetchResponseOutput, into: (size: number) => Buffer | undefined): Buffer {
  const plans = m.partitions.map(plan);
  let size = 0;
  for (const pl of plans) size += sizeLen(1, pl.size);
  if (m.sessionKept === true) size += 2;
  const w = new Writer(size, into(size));
  m.partitions.forEach((p, i) => {
    const pl = plans[i]!;
    w.tag(1, LEN);
    w.uint32(pl.size);
    if (pl.topicBytes > 0) w.string(1, p.topic, pl.topicBytes);
    if (p.partition !== 0) w.int32Field(2, p.partition);
    if (p.highWatermark !== 0) w.int64Field(3, p.highWatermark);
    if (p.logStartOffset !== 0) w.int64Field(4, p.logStartOffset);
    if (pl.batchBytes > 0) {
      w.tag(5, LEN);
      w.uint32(pl.batchBytes);
      for (const c of p.recordBatches) w.raw(c);
    }
    if (pl.error !== undefined) w.bytes(6, pl.error);
    if (pl.divergingSize >= 0) {
      const d = p.divergingEpoch!;
      w.tag(7, LEN);
      w.uint32(pl.divergingSize);
      if (d.epoch !== 0) w.int32Field(1, d.epoch);
      if (d.endOffset !== 0) w.int64Field(2, d.endOffset);
    }
  });
  if (m.sessionKept === true) w.int32Field(2, 1); // bool true: tag, varint 1
  return w.finish();
}

/** Encodes a ReplicaFetchResponse into a buffer of its own (the chunks copied once). */
export function encodeReplicaFetchResponse(m: ReplicaFetchResponseOutput): Buffer {
  return encodeInto(m, () => undefined);
}

/**
 * The server's serializer of ReplicaFetch: the bytes of `encodeReplicaFetchResponse` in the
 * buffer the Fetch encoders reuse (wire-codec.ts `transientInto`), valid until the next call —
 * grpc-js copies it into its frame before it returns.
 */
export function encodeReplicaFetchResponseTransient(m: ReplicaFetchResponseOutput): Buffer {
  return encodeInto(m, transientInto);
}

/** ReplicationService with the hand-written ReplicaFetchResponse encoder. */
export const replicationServiceCodecs = {
  replicaFetch: { serializeResponse: encodeReplicaFetchResponseTransient },
} satisfies CodecOverrides<typeof ReplicationService>;
