/**
 * The server's side of the grpc-js service definitions of src/protocol/grpc-service.ts: typed
 * implementations, `addService`, and the handling of requests that cannot be decoded.
 *
 * Malformed requests: grpc-js answers INTERNAL ("Error deserializing request") when a server
 * deserializer throws, but bad input must get INVALID_ARGUMENT with a message naming the field.
 * So server-side deserializers here never throw: they return a `MalformedMessage`, and
 * `malformedMessageInterceptor` (installed by `serverOptions()` in server-options.ts) ends the
 * call with INVALID_ARGUMENT (catalog entry INVALID_REQUEST) before any handler sees it.
 *
 * Bugs: grpc-js also turns a throwing response serializer into an INTERNAL answer. Server codecs
 * are wrapped so that an AssertionError in either direction stops the process instead
 * (`crashOnBug`, errors.ts).
 */

import type { DescService } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { rillError } from "../base/errors.ts";
import {
  type CodecOverrides,
  type Method,
  type MethodName,
  type ServerRequest,
  type ServerResponse,
  serviceDefinition,
} from "../protocol/grpc-service.ts";
import { errorStatus } from "../protocol/grpc-errors.ts";
import { crashOnBug } from "./errors.ts";

// Re-exported for src/rpc/admin-service.ts (owned elsewhere), which imports it from here.
export type { MethodName } from "../protocol/grpc-service.ts";

/**
 * What a server-side deserializer returns for bytes it cannot decode. It never reaches a
 * handler when the server runs `malformedMessageInterceptor`.
 */
export class MalformedMessage {
  /** @param typeName full protobuf name of the expected message; @param reason names the field. */
  constructor(
    readonly typeName: string,
    readonly reason: string,
  ) {}

  /** The status detail: `rill.v1.ProduceRequest.record_batch: length ... runs past ...`. */
  get details(): string {
    return this.reason.startsWith(this.typeName) ? this.reason : `${this.typeName}: ${this.reason}`;
  }
}

type Handler<Kind, Req, Res> = Kind extends "unary"
  ? grpc.handleUnaryCall<Req, Res>
  : Kind extends "server_streaming"
    ? grpc.handleServerStreamingCall<Req, Res>
    : Kind extends "client_streaming"
      ? grpc.handleClientStreamingCall<Req, Res>
      : grpc.handleBidiStreamingCall<Req, Res>;

/** A typed implementation of service `S` (with codec overrides `O`) for `Server.addService`. */
export type ServiceImplementation<S extends DescService, O = object> = {
  [K in MethodName<S>]: Handler<Method<S, K>["methodKind"], ServerRequest<S, O, K>, ServerResponse<S, O, K>>;
};

/**
 * The grpc-js definition of `service` for a server: `serviceDefinition` with request
 * deserializers that return `MalformedMessage` instead of throwing, and a bug in any server codec
 * stopping the process.
 */
export function serverDefinition<S extends DescService>(service: S, overrides: CodecOverrides<S> = {}): grpc.ServiceDefinition {
  const plain = serviceDefinition(service, overrides);
  const definition: { [name: string]: grpc.MethodDefinition<unknown, unknown> } = {};
  for (const m of service.methods) {
    const method = plain[m.localName]!;
    definition[m.localName] = {
      ...method,
      requestDeserialize: lenient(m.input.typeName, method.requestDeserialize),
      responseSerialize: bugsCrash(method.responseSerialize),
    };
  }
  return definition;
}

/**
 * `server.addService` with a typed implementation, over `serverDefinition` (passed through
 * `wrap`, e.g. member-auth.ts `memberDefinition`, when given).
 */
export function addService<S extends DescService, O extends CodecOverrides<S> = object>(
  server: grpc.Server,
  service: S,
  implementation: ServiceImplementation<S, O>,
  overrides?: O,
  wrap: (definition: grpc.ServiceDefinition) => grpc.ServiceDefinition = (d) => d,
): void {
  server.addService(wrap(serverDefinition(service, overrides)), implementation as grpc.UntypedServiceImplementation);
}

function lenient<T>(typeName: string, decode: (bytes: Buffer) => T): (bytes: Buffer) => T | MalformedMessage {
  return (bytes) => {
    try {
      return decode(bytes);
    } catch (e) {
      crashOnBug(e);
      return new MalformedMessage(typeName, e instanceof Error ? e.message : String(e));
    }
  };
}

function bugsCrash<T>(serialize: (value: T) => Buffer): (value: T) => Buffer {
  return (value) => {
    try {
      return serialize(value);
    } catch (e) {
      crashOnBug(e);
      throw e;
    }
  };
}

/** A status a server interceptor sends (grpc-js's PartialStatusObject, which it does not export). */
export type StatusToSend = Parameters<grpc.ServerInterceptingCallInterface["sendStatus"]>[0];

/** The default status for a malformed request: INVALID_ARGUMENT (INVALID_REQUEST) naming the message and field. */
export function malformedStatus(message: MalformedMessage): StatusToSend {
  return errorStatus(rillError("INVALID_REQUEST", message.details));
}

/**
 * A server interceptor that ends a call with `toStatus(message)` (INVALID_ARGUMENT by default)
 * when a request message could not be decoded, so handlers only ever see decoded messages.
 */
export function malformedMessageInterceptor(
  toStatus: (message: MalformedMessage) => StatusToSend = malformedStatus,
): grpc.ServerInterceptor {
  return (_method, call) => {
    const intercepting: grpc.ServerInterceptingCall = new grpc.ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMessage(message, nextMessage) {
            if (message instanceof MalformedMessage) intercepting.sendStatus(toStatus(message));
            else nextMessage(message);
          },
        });
      },
    });
    return intercepting;
  };
}
