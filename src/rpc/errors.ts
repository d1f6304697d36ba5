/**
 * Errors at the RPC edge. A whole-call error becomes a gRPC status whose code comes from the
 * catalog entry, whose details carry the message (naming the field), and whose trailing metadata
 * carries the catalog code: `rill-error-code` (e.g. "3"), `rill-error-name`
 * ("UNKNOWN_TOPIC_OR_PARTITION") and `rill-error-retriable` ("true"/"false"), so a generated
 * client in any language can branch on the code. A per-partition error becomes an ErrorDetail.
 */
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { Errors, RillError, errorKindByCode } from "../base/errors.ts";
import { AssertionError } from "../base/assert.ts";
import { ErrorDetailSchema, type ErrorDetail } from "../gen/rill/v1/common_pb.ts";

/** Metadata keys of the catalog code on a failed call. */
export const ERROR_CODE_KEY = "rill-error-code";
export const ERROR_NAME_KEY = "rill-error-name";
export const ERROR_RETRIABLE_KEY = "rill-error-retriable";

/** The gRPC error (status, details, trailers) for anything thrown by a handler. */
export function toServiceError(e: unknown): Partial<grpc.StatusObject> & Error {
  if (e instanceof AssertionError) throw e; // a bug: crash loudly rather than answer
  const err = RillError.from(e);
  const metadata = new grpc.Metadata();
  metadata.set(ERROR_CODE_KEY, String(err.code));
  metadata.set(ERROR_NAME_KEY, err.kind.name);
  metadata.set(ERROR_RETRIABLE_KEY, String(err.retriable));
  const out = new Error(err.message) as Partial<grpc.StatusObject> & Error;
  out.code = err.kind.grpc as grpc.status;
  out.details = err.message;
  out.metadata = metadata;
  return out;
}

/** An ErrorDetail for a per-partition (or per-topic) result. */
export function toErrorDetail(e: unknown): ErrorDetail {
  const err = RillError.from(e);
  return create(ErrorDetailSchema, { code: err.code, name: err.kind.name, message: err.message, retriable: err.retriable });
}

/** The RillError a client sees in a failed call's trailers, if the broker sent one. */
export function fromServiceError(e: grpc.ServiceError): RillError {
  const code = Number(e.metadata?.get(ERROR_CODE_KEY)[0]);
  const kind = Number.isInteger(code) ? errorKindByCode(code) : undefined;
  return new RillError(kind ?? Errors.UNKNOWN_SERVER_ERROR, e.details || e.message);
}

/** Runs a unary handler body and answers its result or its error. */
export function unary<Req, Res>(
  fn: (req: Req, call: grpc.ServerUnaryCall<Req, Res>) => Res | Promise<Res>,
): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => fn(call.request, call))
      .then(
        (res) => callback(null, res),
        (e: unknown) => callback(toServiceError(e)),
      );
  };
}
