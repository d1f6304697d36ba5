/**
 * How the SDK reports failures: every error a client method throws is either
 * - a `RillError` from the catalog (src/base/errors.ts), carrying the broker's code and message
 *   (whole-call errors arrive as gRPC statuses with the catalog code in their trailers, decoded
 *   by src/protocol/grpc-errors.ts as the broker writes them; per-item errors as `ErrorDetail`
 *   fields), or
 * - a `ConnectionError`: the broker at `address` could not be reached or the connection broke
 *   (always retriable), or
 * - a `ClientClosedError` when the producer or consumer was closed, or a plain `RillError`
 *   (INVALID_ARGUMENT) for bad input caught before anything is sent.
 *
 * `isRetriable(e)` is the one predicate the retry policy asks.
 */

import { type ErrorKind, Errors, GrpcStatus, type GrpcStatusCode, RillError } from "../base/errors.ts";
import type { ErrorDetail } from "../gen/rill/v1/common_pb.ts";
import {
  isServiceError,
  kindOfCode,
  rillErrorFromDetail,
  rillErrorFromStatus,
  statusDetails,
  trailerError,
} from "../protocol/grpc-errors.ts";

/** The broker could not be reached, or the connection to it broke mid-call. Retriable. */
export class ConnectionError extends Error {
  override name = "ConnectionError";
  /** Always true: a later attempt may find the broker up. */
  readonly retriable = true;

  /** @param address "host:port" of the broker; @param reason what went wrong, e.g. "connection refused". */
  constructor(
    readonly address: string,
    readonly reason: string,
  ) {
    super(`cannot reach broker at ${address}: ${reason}`);
  }
}

/** The client was closed: pending sends fail with it, and new calls are refused. */
export class ClientClosedError extends Error {
  override name = "ClientClosedError";
  /** Never retriable. */
  readonly retriable = false;

  /** @param what which client, e.g. "producer". */
  constructor(what: string) {
    super(`${what} is closed`);
  }
}

/** True when a retry of the same request can succeed (catalog `retriable`, or a connection error). */
export function isRetriable(e: unknown): boolean {
  if (e instanceof RillError) return e.retriable;
  return e instanceof ConnectionError;
}

/** Errors that say the client sent a request to the wrong broker: its leaders or coordinator may have moved. */
const staleMetadataKinds: readonly ErrorKind[] = [
  Errors.NOT_LEADER_OR_FOLLOWER,
  Errors.FENCED_LEADER_EPOCH,
  Errors.UNKNOWN_LEADER_EPOCH,
  Errors.LEADER_NOT_AVAILABLE,
  Errors.UNKNOWN_TOPIC_OR_PARTITION,
  Errors.NOT_COORDINATOR,
  Errors.COORDINATOR_NOT_AVAILABLE,
  Errors.REQUEST_TIMED_OUT,
];

/**
 * True when `e` suggests the client's metadata is out of date, so it should ask the cluster
 * again before retrying: a routing error (NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH, ...), a
 * broker that cannot be reached, or one that did not answer in time (it may have lost its role).
 */
export function isStaleMetadata(e: unknown): boolean {
  if (e instanceof ConnectionError) return true;
  return e instanceof RillError && staleMetadataKinds.some((k) => k.code === e.kind.code);
}

/** The catalog entry of `code`, or a stand-in for codes this client does not know (newer brokers). */
export function kindOf(code: number, name = "", retriable = false, grpcCode: GrpcStatusCode = GrpcStatus.UNKNOWN): ErrorKind {
  return kindOfCode(code, name, retriable, grpcCode);
}

/**
 * A per-item `ErrorDetail` from a response as a RillError. `context` (e.g. `topic "orders"`)
 * prefixes the message unless the broker's message already names the item (its quoted part).
 */
export function fromErrorDetail(detail: ErrorDetail, context?: string): RillError {
  return rillErrorFromDetail(detail, context);
}

/** Why a connection failed, in a few words ("connection refused" rather than grpc-js's paragraph). */
function connectionReason(details: string): string {
  if (/ECONNREFUSED|connection refused/i.test(details)) return "connection refused";
  if (/ECONNRESET|connection reset/i.test(details)) return "connection reset";
  if (/ETIMEDOUT|timed out/i.test(details)) return "connection timed out";
  if (/ENOTFOUND|EAI_AGAIN|getaddrinfo/i.test(details)) return "host not found";
  const tls = tlsReason(details);
  if (tls !== undefined) return tls;
  // grpc-js wraps the cause: "No connection established. Last error: X (time). Resolution note: "
  const bare = details
    .replace(/^No connection established\. Last error: /, "")
    .replace(/ \(\d{4}-\d\d-\d\dT[\d:.]+Z\)/, "")
    .replace(/\.? ?Resolution note: ?$/, "")
    .trim();
  return bare || "unavailable";
}

/** What a failed TLS handshake means, in words; undefined when `details` is not one. */
function tlsReason(details: string): string | undefined {
  const d = details.toLowerCase();
  if (d.includes("certificate_required") || d.includes("certificate required"))
    return "TLS: the broker requires a client certificate (tls.cert, tls.key)";
  if (d.includes("alert certificate expired") || d.includes("alert_certificate_expired"))
    return "TLS: the broker refused the client certificate: it has expired";
  if (d.includes("certificate has expired") || d.includes("cert_has_expired")) return "TLS: the broker's certificate has expired";
  if (/alert (unknown ca|bad certificate)|alert_(unknown_ca|bad_certificate)/.test(d))
    return "TLS: the broker refused the client certificate (not of its tls.ca.file)";
  if (/unable to (get local issuer|verify)|self[- ]signed|unknown ca/.test(d))
    return "TLS: the broker's certificate is not signed by a trusted CA (tls.ca)";
  if (d.includes("altnames")) {
    const why = /Host: [^ ]+ is not in the cert's altnames: [^(]*/
      .exec(details)?.[0]
      .replace(/\.? ?Resolution note:.*$/s, "")
      .trim();
    return `TLS: the broker's certificate is not for this name (tls.serverName)${why ? `: ${why}` : ""}`;
  }
  if (d.includes("ip address is not permitted"))
    return "TLS: this runtime refuses an IP address as the TLS server name: give the name the broker's certificate carries (tls.serverName)";
  if (/wrong[ _]version[ _]number|packet[ _]length[ _]too[ _]long|http_request|unknown[ _]protocol/.test(d))
    return "TLS: the broker does not speak TLS here (a plaintext listener?)";
  return undefined;
}

/**
 * Converts what a grpc-js call failed with into a client error: the catalog entry of its
 * trailers when present; UNAVAILABLE without a code is a `ConnectionError`; other statuses map
 * to INVALID_ARGUMENT, REQUEST_TIMED_OUT or UNKNOWN_SERVER_ERROR (`rillErrorFromStatus`).
 */
export function fromGrpcError(e: unknown, address: string): Error {
  if (!isServiceError(e)) return e instanceof Error ? e : new Error(String(e));
  const fromTrailer = trailerError(e);
  if (fromTrailer !== undefined) return fromTrailer;
  if (e.code === GrpcStatus.UNAVAILABLE) return new ConnectionError(address, connectionReason(statusDetails(e)));
  return rillErrorFromStatus(e);
}
