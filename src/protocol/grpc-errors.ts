/**
 * Rill errors on gRPC, both ways, in one place: the broker writes them, its internal clients and
 * the SDK read them.
 *
 * A failed call ends with a gRPC status whose code is the catalog entry's `grpc`, whose details
 * are the message (naming the field), and whose trailing metadata carries the catalog entry:
 *
 *     rill-error-code       "3"                            the stable numeric code
 *     rill-error-name       "UNKNOWN_TOPIC_OR_PARTITION"   its name (for people and logs)
 *     rill-error-retriable  "true" | "false"               whether a retry can succeed
 *
 * so a generated client in any language can branch on the code. Only `rill-error-code` is
 * needed to decode: the name and the retriable flag matter for codes this side does not know
 * (a newer peer), which decode to a stand-in entry that keeps them.
 */

import * as grpc from "@grpc/grpc-js";
import { type ErrorKind, Errors, GrpcStatus, type GrpcStatusCode, RillError, errorKindByCode } from "../base/errors.ts";

/** Trailer key of the catalog code ("3"). */
export const ERROR_CODE_KEY = "rill-error-code";
/** Trailer key of the catalog name ("UNKNOWN_TOPIC_OR_PARTITION"). */
export const ERROR_NAME_KEY = "rill-error-name";
/** Trailer key of the retriable flag ("true" or "false"). */
export const ERROR_RETRIABLE_KEY = "rill-error-retriable";

/** One trailer entry: key and value. */
export type TrailerEntry = readonly [key: string, value: string];

/** The trailer entries that carry `err`'s catalog entry (code, name, retriable). */
export function errorTrailer(err: RillError): TrailerEntry[] {
  return [
    [ERROR_CODE_KEY, String(err.code)],
    [ERROR_NAME_KEY, err.kind.name],
    [ERROR_RETRIABLE_KEY, String(err.retriable)],
  ];
}

/** `errorTrailer(err)` as grpc-js metadata, ready to send as a status's trailers. */
export function errorMetadata(err: RillError): grpc.Metadata {
  const metadata = new grpc.Metadata();
  for (const [key, value] of errorTrailer(err)) metadata.set(key, value);
  return metadata;
}

/** The gRPC status of a failed call with `err`: code, details and trailers. */
export function errorStatus(err: RillError): { code: grpc.status; details: string; metadata: grpc.Metadata } {
  return { code: err.kind.grpc as grpc.status, details: err.message, metadata: errorMetadata(err) };
}

/**
 * The catalog entry of `code`; for a code this side does not know (a newer peer), a stand-in
 * that keeps the code, the name and the retriable flag the peer sent.
 */
export function kindOfCode(code: number, name = "", retriable = false, grpcCode: GrpcStatusCode = GrpcStatus.UNKNOWN): ErrorKind {
  return errorKindByCode(code) ?? { code, name: name || `ERROR_${code}`, retriable, grpc: grpcCode, doc: name || `error code ${code}` };
}

/** What a failed call ended with: a grpc-js `ServiceError` or `StatusObject` both fit. */
export interface StatusLike {
  readonly code: number;
  readonly details?: string | undefined;
  /** An Error's message, used when `details` is empty. */
  readonly message?: string | undefined;
  readonly metadata?: grpc.Metadata | undefined;
}

/** The status's details, or the error's message when the details are empty. */
export function statusDetails(status: StatusLike): string {
  return status.details || status.message || "";
}

/** True when `e` is what grpc-js fails a call with (an Error with a numeric status code and details). */
export function isServiceError(e: unknown): e is grpc.ServiceError {
  return e instanceof Error && typeof (e as Partial<grpc.ServiceError>).code === "number" && "details" in e;
}

/** The catalog error carried in `status`'s trailers; undefined when it carries no `rill-error-code`. */
export function trailerError(status: StatusLike): RillError | undefined {
  const trailer = (key: string): string | undefined => status.metadata?.get(key)[0]?.toString();
  const raw = trailer(ERROR_CODE_KEY);
  const code = raw === undefined || raw === "" ? Number.NaN : Number(raw);
  if (!Number.isInteger(code)) return undefined;
  const kind = kindOfCode(code, trailer(ERROR_NAME_KEY), trailer(ERROR_RETRIABLE_KEY) === "true", status.code as GrpcStatusCode);
  return new RillError(kind, statusDetails(status));
}

/** Catalog entries for gRPC statuses that come without a `rill-error-code`. */
const kindByStatus: Partial<Record<number, ErrorKind>> = {
  [GrpcStatus.INVALID_ARGUMENT]: Errors.INVALID_ARGUMENT,
  [GrpcStatus.DEADLINE_EXCEEDED]: Errors.REQUEST_TIMED_OUT,
};

/**
 * A failed call's status as a RillError: the catalog entry of its trailers; without them,
 * INVALID_ARGUMENT and DEADLINE_EXCEEDED map to INVALID_ARGUMENT and REQUEST_TIMED_OUT, any
 * other status to UNKNOWN_SERVER_ERROR with the status name before the details
 * ("UNIMPLEMENTED: ..."). Whether an UNAVAILABLE without a code is a connection failure is the
 * caller's call (the SDK's ConnectionError, a broker's own error).
 */
export function rillErrorFromStatus(status: StatusLike): RillError {
  const fromTrailer = trailerError(status);
  if (fromTrailer !== undefined) return fromTrailer;
  const details = statusDetails(status);
  const kind = kindByStatus[status.code];
  if (kind !== undefined) return new RillError(kind, details);
  const statusName = grpc.status[status.code] ?? String(status.code);
  return new RillError(Errors.UNKNOWN_SERVER_ERROR, `${statusName}: ${details}`);
}

/** The fields of an `ErrorDetail` (a per-item error inside an answer) that decoding needs. */
export interface DetailLike {
  readonly code: number;
  readonly name?: string;
  readonly message: string;
  readonly retriable?: boolean;
}

/**
 * A per-item error of an answer (an `ErrorDetail`) as a RillError: the catalog entry of its code
 * (a code this side does not know keeps its code, name and retriable flag). `context` (e.g.
 * `topic "orders"`) prefixes the message unless the message already names the item (its quoted
 * part). The broker's internal clients and the SDK both decode with this.
 */
export function rillErrorFromDetail(detail: DetailLike, context?: string): RillError {
  const kind = kindOfCode(detail.code, detail.name ?? "", detail.retriable ?? false);
  const message = detail.message || kind.doc;
  const named = context === undefined || message.includes(/"[^"]*"/.exec(context)?.[0] ?? context);
  return new RillError(kind, named ? message : `${context}: ${message}`);
}
