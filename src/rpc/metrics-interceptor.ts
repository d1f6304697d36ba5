/**
 * `rill_requests_total{api,protocol="grpc",code}` and `rill_request_duration_seconds` for every
 * gRPC call of a server: a server interceptor that notes when the call started and, as the
 * status goes out, records the method name (the `api`: "Produce", "CreateTopics", ...), the code
 * (the catalog name from the error trailer, else the gRPC status name, "OK" for success) and the
 * seconds since the start in the broker's RequestMetrics (src/service/request-metrics.ts). A
 * stream's duration is its whole life.
 */
import * as grpc from "@grpc/grpc-js";
import { ERROR_NAME_KEY } from "../protocol/grpc-errors.ts";
import type { RequestMetrics } from "../service/request-metrics.ts";

/** gRPC status names by number ("OK", "INVALID_ARGUMENT", ...). */
const STATUS_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(grpc.status)
    .filter(([, v]) => typeof v === "number")
    .map(([k, v]) => [v as number, k]),
);

/** The `code` label of a status: its catalog name when it carries one. */
export function codeOfStatus(status: { readonly code: number; readonly metadata?: grpc.Metadata | null | undefined }): string {
  if (status.code === grpc.status.OK) return "OK";
  const name = status.metadata?.get(ERROR_NAME_KEY)[0];
  if (typeof name === "string" && name !== "") return name;
  return STATUS_NAMES.get(status.code) ?? String(status.code);
}

/** The interceptor; `metrics()` is asked per call (null or not `enabled`: not counted, e.g. before the services are registered). */
export function metricsInterceptor(metrics: () => RequestMetrics | null): grpc.ServerInterceptor {
  return (method, call) => {
    // Not counting (no metrics served): the call goes on unwrapped.
    if (metrics()?.enabled !== true) return call as grpc.ServerInterceptingCall;
    const api = method.path.slice(method.path.lastIndexOf("/") + 1);
    const started = performance.now();
    return new grpc.ServerInterceptingCall(call, {
      sendStatus(status, next) {
        metrics()?.observeRequest(api, "grpc", codeOfStatus(status), (performance.now() - started) / 1000);
        next(status);
      },
    });
  };
}
