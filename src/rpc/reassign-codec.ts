/**
 * Partition reassignment (issue 21) between AdminService messages and the domain types of
 * src/service/admin-reassign.ts, both ways (a forwarded request is encoded again, its answer
 * decoded).
 */
import { create } from "@bufbuild/protobuf";
import { type RillError, rillError } from "../base/errors.ts";
import {
  type AlterPartitionReassignmentsRequest,
  AlterPartitionReassignmentsRequestSchema,
  type AlterPartitionReassignmentsResponse,
  AlterPartitionReassignmentsResponseSchema,
  type ListPartitionReassignmentsRequest,
  type ListPartitionReassignmentsResponse,
  ListPartitionReassignmentsResponseSchema,
} from "../gen/rill/v1/admin_service_pb.ts";
import type { ErrorDetail } from "../gen/rill/v1/common_pb.ts";
import { rillErrorFromDetail } from "../protocol/grpc-errors.ts";
import type {
  AlterPartitionReassignmentsInput,
  AlterPartitionReassignmentsResult,
  ListPartitionReassignmentsInput,
  ListPartitionReassignmentsResult,
} from "../service/admin-reassign-types.ts";
import { toErrorDetail } from "./errors.ts";

/** AlterPartitionReassignmentsRequest -> domain; INVALID_REQUEST for a cancel that also names replicas. */
export function decodeAlterPartitionReassignments(req: AlterPartitionReassignmentsRequest): AlterPartitionReassignmentsInput {
  return {
    partitions: req.partitions.map((p, i) => {
      if (p.cancel && p.replicas.length > 0)
        throw rillError("INVALID_REQUEST", `partitions[${i}]: cancel with replicas [${p.replicas.join(", ")}]; give one or the other`);
      return { topic: p.topic, partition: p.partition, replicas: p.cancel ? null : [...p.replicas] };
    }),
  };
}

/** Domain -> AlterPartitionReassignmentsRequest (to forward it). */
export function encodeAlterPartitionReassignmentsInput(input: AlterPartitionReassignmentsInput): AlterPartitionReassignmentsRequest {
  return create(AlterPartitionReassignmentsRequestSchema, {
    partitions: input.partitions.map((p) => ({
      topic: p.topic,
      partition: p.partition,
      replicas: p.replicas === null ? [] : [...p.replicas],
      cancel: p.replicas === null,
    })),
  });
}

/** Domain -> AlterPartitionReassignmentsResponse. */
export function encodeAlterPartitionReassignmentsResult(r: AlterPartitionReassignmentsResult): AlterPartitionReassignmentsResponse {
  return create(AlterPartitionReassignmentsResponseSchema, {
    results: r.results.map((e) => ({ topic: e.topic, partition: e.partition, ...errorField(e.error) })),
  });
}

/** AlterPartitionReassignmentsResponse -> domain (a forwarded answer). */
export function decodeAlterPartitionReassignmentsResult(res: AlterPartitionReassignmentsResponse): AlterPartitionReassignmentsResult {
  return {
    results: res.results.map((e) => ({ topic: e.topic, partition: e.partition, ...domainError(e.error) })),
  };
}

/** ListPartitionReassignmentsRequest -> domain. */
export function decodeListPartitionReassignments(req: ListPartitionReassignmentsRequest): ListPartitionReassignmentsInput {
  return { partitions: req.partitions.map((tp) => ({ topic: tp.topic, partitions: [...tp.partitions] })) };
}

/** Domain -> ListPartitionReassignmentsResponse. */
export function encodeListPartitionReassignmentsResult(r: ListPartitionReassignmentsResult): ListPartitionReassignmentsResponse {
  return create(ListPartitionReassignmentsResponseSchema, {
    reassignments: r.reassignments.map((x) => ({
      topic: x.topic,
      partition: x.partition,
      replicas: [...x.replicas],
      addingReplicas: [...x.addingReplicas],
      removingReplicas: [...x.removingReplicas],
    })),
  });
}

function errorField(error: RillError | undefined): { error?: ErrorDetail } {
  return error ? { error: toErrorDetail(error) } : {};
}

function domainError(d: ErrorDetail | undefined): { error?: RillError } {
  return d ? { error: rillErrorFromDetail(d) } : {};
}
