/**
 * Cordoned brokers (issue 21) between AdminService messages and the domain types of
 * src/service/admin-cordon.ts, both ways (a forwarded request is encoded again, its answer
 * decoded).
 */
import { create } from "@bufbuild/protobuf";
import {
  type AlterBrokerCordonsRequest,
  AlterBrokerCordonsRequestSchema,
  type AlterBrokerCordonsResponse,
  AlterBrokerCordonsResponseSchema,
} from "../gen/rill/v1/admin_service_pb.ts";
import { rillErrorFromDetail } from "../protocol/grpc-errors.ts";
import type { AlterBrokerCordonsInput, AlterBrokerCordonsResult } from "../service/admin-cordon-types.ts";
import { toErrorDetail } from "./errors.ts";

/** AlterBrokerCordonsRequest -> domain. */
export function decodeAlterBrokerCordons(req: AlterBrokerCordonsRequest): AlterBrokerCordonsInput {
  return { brokerIds: [...req.brokerIds], cordoned: req.cordoned };
}

/** Domain -> AlterBrokerCordonsRequest (to forward it). */
export function encodeAlterBrokerCordonsInput(input: AlterBrokerCordonsInput): AlterBrokerCordonsRequest {
  return create(AlterBrokerCordonsRequestSchema, { brokerIds: [...input.brokerIds], cordoned: input.cordoned });
}

/** Domain -> AlterBrokerCordonsResponse. */
export function encodeAlterBrokerCordonsResult(r: AlterBrokerCordonsResult): AlterBrokerCordonsResponse {
  return create(AlterBrokerCordonsResponseSchema, {
    results: r.results.map((e) => ({ brokerId: e.brokerId, ...(e.error ? { error: toErrorDetail(e.error) } : {}) })),
  });
}

/** AlterBrokerCordonsResponse -> domain (a forwarded answer). */
export function decodeAlterBrokerCordonsResult(res: AlterBrokerCordonsResponse): AlterBrokerCordonsResult {
  return { results: res.results.map((e) => ({ brokerId: e.brokerId, ...(e.error ? { error: rillErrorFromDetail(e.error) } : {}) })) };
}
