/**
 * Errors at the RPC edge. A whole-call error becomes a gRPC status whose code comes from the
 * catalog entry, whose details carry the message (naming the field), and whose trailers carry the
 * catalog code (the trailer codec of src/protocol/grpc-errors.ts, shared with the SDK); a
 * per-partition error becomes an ErrorDetail.
 *
 * Bugs are not answers. An AssertionError that reaches the edge — a handler, `toServiceError`,
 * `toErrorDetail`, a serializer — stops the process (`crashOnBug`: the stack on stderr, exit
 * status 70), where a supervisor restarts it and the simulator reports the seed. Every catch of
 * an unknown value in src/rpc calls `crashOnBug` first.
 */
import { writeSync } from "node:fs";
import { create } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { AssertionError } from "../base/assert.ts";
import { RillError } from "../base/errors.ts";
import { ErrorDetailSchema, type ErrorDetail } from "../gen/rill/v1/common_pb.ts";
import { errorStatus, rillErrorFromStatus, trailerError, type StatusLike } from "../protocol/grpc-errors.ts";

/** The exit status of a process stopped by a bug (BSD's EX_SOFTWARE: internal software error). */
export const BUG_EXIT_CODE = 70;

/**
 * Stops the process when `e` is an AssertionError (a bug): writes it with its stack to stderr and
 * exits with status 70, so it is never answered as an error. Returns when `e` is anything else.
 * Call it first in every `catch` of an unknown value at the edge.
 */
export function crashOnBug(e: unknown): void {
  if (!(e instanceof AssertionError)) return;
  try {
    writeSync(2, `rill: a bug stopped the process: ${e.stack ?? `${e.name}: ${e.message}`}\n`);
  } finally {
    process.exit(BUG_EXIT_CODE);
  }
}

/** The gRPC error (status, details, trailers) for anything thrown by a handler; a bug stops the process. */
export function toServiceError(e: unknown): Partial<grpc.StatusObject> & Error {
  crashOnBug(e);
  const err = RillError.from(e);
  const out = new Error(err.message) as Partial<grpc.StatusObject> & Error;
  Object.assign(out, errorStatus(err));
  return out;
}

/** An ErrorDetail for a per-partition (or per-topic) result; a bug stops the process. */
export function toErrorDetail(e: unknown): ErrorDetail {
  crashOnBug(e);
  const err = RillError.from(e);
  return create(ErrorDetailSchema, { code: err.code, name: err.kind.name, message: err.message, retriable: err.retriable });
}

/**
 * A failed call's status as a RillError (see `rillErrorFromStatus` in src/protocol/grpc-errors.ts):
 * the catalog entry of its trailers, else one from its gRPC status.
 */
export function fromServiceError(e: StatusLike): RillError {
  return rillErrorFromStatus(e);
}

/**
 * What a failed call to another node means here: the catalog error in its trailers (the peer
 * answered with it), or `otherwise(details)` when it carries none (the peer could not be reached,
 * or the call failed before it answered). A bug stops the process.
 */
export function fromPeerError(e: unknown, otherwise: (details: string) => Error): Error {
  crashOnBug(e);
  const status = e as Partial<StatusLike> | null;
  if (typeof status?.code !== "number") return otherwise(e instanceof Error ? e.message : String(e));
  return trailerError(status as StatusLike) ?? otherwise(status.details || status.message || "");
}

/** Runs a unary handler body and answers its result or its error; a bug stops the process. */
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
