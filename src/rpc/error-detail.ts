/**
 * The way back from an ErrorDetail to a RillError, for answers another broker sent (a forwarded
 * request's per-partition errors): the service layer works on RillErrors, and the adapter turns
 * them into ErrorDetails again with `toErrorDetail` (errors.ts). The catalog code decides the
 * kind (an unknown code becomes UNKNOWN_SERVER_ERROR); the message is kept.
 */
import { Errors, RillError, errorKindByCode } from "../base/errors.ts";
import type { ErrorDetail } from "../gen/rill/v1/common_pb.ts";

/** The RillError an ErrorDetail describes. */
export function fromErrorDetail(detail: ErrorDetail): RillError {
  return new RillError(errorKindByCode(detail.code) ?? Errors.UNKNOWN_SERVER_ERROR, detail.message);
}
