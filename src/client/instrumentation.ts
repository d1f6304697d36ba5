/**
 * The SDK's logger hook and instrumentation events. Every client takes `logger` and `onEvent`
 * (ClientOptions); `connect()` turns them into one `Instrumentation` that the client's code calls:
 *
 * - `connect`: a connection (gRPC channel) to a broker address is opened (the pool's first use
 *   of that address);
 * - `request`: a call to a broker ended — a unary call when it is answered, a stream
 *   (ProduceStream, Fetch, Consume) when it ends — with its method, address, duration and error
 *   code (gRPC status; the catalog name when the broker sent one). Measured by a grpc-js client
 *   interceptor on every channel the client opens;
 * - `rebalance`: a group member's partitions changed (assigned and revoked, member epoch);
 * - `commit`: a group member's commit was answered (offsets, duration, error).
 *
 * A listener or logger that throws is ignored (its error is dropped): instrumentation never
 * changes what the client does. Nothing is logged or emitted when neither is given.
 */

import * as grpc from "@grpc/grpc-js";
import { ERROR_NAME_KEY } from "../protocol/grpc-errors.ts";

/** Where the SDK's log lines go; pino, console and winston fit. Each level is optional. */
export interface Logger {
  debug?(message: string, fields?: Record<string, unknown>): void;
  info?(message: string, fields?: Record<string, unknown>): void;
  warn?(message: string, fields?: Record<string, unknown>): void;
  error?(message: string, fields?: Record<string, unknown>): void;
}

/** A partition, as events name it. */
export interface EventTopicPartition {
  readonly topic: string;
  readonly partition: number;
}

/** What the SDK reports to `onEvent`. */
export type ClientEvent =
  | { readonly type: "connect"; readonly address: string }
  | {
      readonly type: "request";
      /** gRPC method path, e.g. "/rill.v1.AdminService/CreateTopics". */
      readonly method: string;
      readonly address: string;
      readonly durationMs: number;
      /** null when it succeeded; else the broker's catalog name (e.g. "NOT_LEADER_OR_FOLLOWER") or the gRPC status name. */
      readonly error: string | null;
    }
  | {
      readonly type: "rebalance";
      readonly groupId: string;
      readonly memberId: string;
      readonly memberEpoch: number;
      readonly assigned: readonly EventTopicPartition[];
      readonly revoked: readonly EventTopicPartition[];
    }
  | {
      readonly type: "commit";
      readonly groupId: string;
      readonly offsets: readonly (EventTopicPartition & { readonly offset: number })[];
      readonly durationMs: number;
      /** null when every offset was committed; else the first error's message. */
      readonly error: string | null;
    };

/** The `logger` and `onEvent` options. */
export interface InstrumentationOptions {
  /** Receives the SDK's log lines (connections, failed requests, rebalances, failed commits). Default: none. */
  readonly logger?: Logger | undefined;
  /** Receives every `ClientEvent`, synchronously. Default: none. */
  readonly onEvent?: ((event: ClientEvent) => void) | undefined;
}

/** What the client code calls; cheap no-ops when nothing listens. */
export interface Instrumentation {
  /** True when a listener or logger is set (callers may skip building events otherwise). */
  readonly active: boolean;
  emit(event: ClientEvent): void;
  log(level: keyof Logger, message: string, fields?: Record<string, unknown>): void;
}

const silent: Instrumentation = Object.freeze({ active: false, emit: () => undefined, log: () => undefined });

/** Logs an event at the level it deserves: failures warn, the rest info (requests debug). */
function logEvent(log: Instrumentation["log"], e: ClientEvent): void {
  switch (e.type) {
    case "connect":
      return log("info", `connecting to broker ${e.address}`, { address: e.address });
    case "request":
      if (e.error === null) return log("debug", `${e.method} at ${e.address}: ${e.durationMs} ms`, { ...e });
      return log("warn", `${e.method} at ${e.address} failed: ${e.error}`, { ...e });
    case "rebalance":
      return log("info", `group "${e.groupId}": ${e.assigned.length} partition(s) assigned, ${e.revoked.length} revoked`, { ...e });
    case "commit":
      if (e.error === null) return log("debug", `group "${e.groupId}": committed ${e.offsets.length} offset(s)`, { ...e });
      return log("warn", `group "${e.groupId}": commit failed: ${e.error}`, { ...e });
  }
}

/** The Instrumentation of `options` (a shared silent one when neither hook is given). */
export function instrumentation(options: InstrumentationOptions): Instrumentation {
  const { logger, onEvent } = options;
  if (logger === undefined && onEvent === undefined) return silent;
  if (onEvent !== undefined && typeof onEvent !== "function") throw new RangeError("onEvent: must be a function");
  const log: Instrumentation["log"] = (level, message, fields) => {
    try {
      logger?.[level]?.(message, fields);
    } catch {
      // a logger's failure is not the client's
    }
  };
  return {
    active: true,
    log,
    emit(event) {
      try {
        onEvent?.(event);
      } catch {
        // a listener's failure is not the client's
      }
      if (logger !== undefined) logEvent(log, event);
    },
  };
}

/** The catalog name a failed call's trailers carry (src/protocol/grpc-errors.ts), else the status name. */
function errorName(status: grpc.StatusObject): string {
  const name = status.metadata.get(ERROR_NAME_KEY)[0];
  if (typeof name === "string" && name !== "") return name;
  return grpc.status[status.code] ?? String(status.code);
}

/** A grpc-js client interceptor emitting one `request` event per call to `address`. */
export function requestInterceptor(address: string, instr: Instrumentation): grpc.Interceptor {
  return (options, nextCall) => {
    const started = performance.now();
    const method = options.method_definition.path;
    return new grpc.InterceptingCall(nextCall(options), {
      start(metadata, _listener, next) {
        next(metadata, {
          onReceiveStatus(status, nextStatus) {
            instr.emit({
              type: "request",
              method,
              address,
              durationMs: Math.round((performance.now() - started) * 1000) / 1000,
              error: status.code === grpc.status.OK ? null : errorName(status),
            });
            nextStatus(status);
          },
        });
      },
    });
  };
}
