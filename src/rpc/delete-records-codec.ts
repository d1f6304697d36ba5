/**
 * AdminService.DeleteRecords messages <-> the service's domain types (src/service/delete-records.ts),
 * both ways: a broker decodes a request and encodes its answer, and a broker that passes the
 * request to a partition's leader encodes it and decodes the leader's answer.
 */
import { create } from "@bufbuild/protobuf";
import {
  type DeleteRecordsRequest,
  DeleteRecordsRequestSchema,
  type DeleteRecordsResponse,
  DeleteRecordsResponseSchema,
} from "../gen/rill/v1/admin_service_pb.ts";
import { rillErrorFromDetail } from "../protocol/grpc-errors.ts";
import type { DeleteRecordsInput, DeleteRecordsResult } from "../service/delete-records.ts";
import { toErrorDetail } from "./errors.ts";

/** DeleteRecordsRequest -> domain. */
export function decodeDeleteRecords(req: DeleteRecordsRequest): DeleteRecordsInput {
  return { partitions: req.partitions.map((p) => ({ topic: p.topic, partition: p.partition, offset: p.offset })) };
}

/** Domain -> DeleteRecordsRequest (to pass it to a leader). */
export function encodeDeleteRecordsInput(input: DeleteRecordsInput): DeleteRecordsRequest {
  return create(DeleteRecordsRequestSchema, {
    partitions: input.partitions.map((p) => ({ topic: p.topic, partition: p.partition, offset: p.offset })),
  });
}

/** Domain -> DeleteRecordsResponse. */
export function encodeDeleteRecordsResult(r: DeleteRecordsResult): DeleteRecordsResponse {
  return create(DeleteRecordsResponseSchema, {
    results: r.partitions.map((p) => ({
      topic: p.topic,
      partition: p.partition,
      lowWatermark: BigInt(p.lowWatermark),
      ...(p.error ? { error: toErrorDetail(p.error) } : {}),
    })),
  });
}

/** DeleteRecordsResponse -> domain (a leader's answer). */
export function decodeDeleteRecordsResult(res: DeleteRecordsResponse): DeleteRecordsResult {
  return {
    partitions: res.results.map((p) => ({
      topic: p.topic,
      partition: p.partition,
      lowWatermark: Number(p.lowWatermark),
      error: p.error ? rillErrorFromDetail(p.error) : null,
    })),
  };
}
