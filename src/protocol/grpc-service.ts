/**
 * grpc-js service definitions and clients built from protobuf-es service descriptors — what the
 * SDK and the broker's internal clients share; the server's side (lenient request decoding,
 * `addService`) is in src/rpc/grpc-service.ts.
 *
 * `serviceDefinition(AdminService)` turns the generated `GenService` into the grpc-js
 * `ServiceDefinition` that `makeGenericClientConstructor` (and, wrapped, `Server.addService`)
 * take: path `/rill.v1.AdminService/CreateTopics`, streaming flags from the method kind, and
 * protobuf-es `toBinary`/`fromBinary` as codecs. Methods keyed by their protobuf-es `localName`
 * (`createTopics`), so implementations and clients use lowerCamel names.
 *
 * The codec of any method can be replaced per direction (`CodecOverrides`), which is how the few
 * messages that carry record batches use hand-written codecs (src/client/wire-codec.ts on the
 * client, src/rpc/wire-codec.ts on the server); the types of handlers and clients follow the
 * overrides.
 */

import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { DescMessage, DescService, MessageShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";

/** Wraps bytes as a Buffer over the same memory (grpc-js serializers must return a Buffer). */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Replacement codec functions for one method. Each is optional and replaces protobuf-es's codec
 * in one direction only. Deserializers may throw; on the server the throw becomes an
 * INVALID_ARGUMENT answer (src/rpc/grpc-service.ts), on a client grpc-js fails the call with
 * INTERNAL.
 */
export interface MethodCodec<ClientReq = never, ServerReq = unknown, ServerRes = never, ClientRes = unknown> {
  /** Client side: request value to bytes. */
  readonly serializeRequest?: (value: ClientReq) => Buffer;
  /** Server side: request bytes to value. */
  readonly deserializeRequest?: (bytes: Buffer) => ServerReq;
  /** Server side: response value to bytes. */
  readonly serializeResponse?: (value: ServerRes) => Buffer;
  /** Client side: response bytes to value. */
  readonly deserializeResponse?: (bytes: Buffer) => ClientRes;
}

// `any` lets overrides narrow or widen message types; the Req/Res types below recover them.
type AnyCodec = MethodCodec<any, any, any, any>;

/** Codec replacements for some methods of service `S`, keyed by method localName. */
export type CodecOverrides<S extends DescService> = { readonly [K in MethodName<S>]?: AnyCodec };

/** The localNames of the methods of `S` (`"produce" | "produceStream" | ...`). */
export type MethodName<S extends DescService> = keyof S["method"] & string;

/** The descriptor of method `K` of `S`. */
export type Method<S extends DescService, K extends MethodName<S>> = S["method"][K];
type In<S extends DescService, K extends MethodName<S>> = MessageShape<Method<S, K>["input"]>;
type Out<S extends DescService, K extends MethodName<S>> = MessageShape<Method<S, K>["output"]>;
type Ov<O, K extends PropertyKey> = K extends keyof O ? O[K] : undefined;

/** The request type a server handler of method `K` receives. */
export type ServerRequest<S extends DescService, O, K extends MethodName<S>> =
  Ov<O, K> extends { deserializeRequest: (bytes: Buffer) => infer R } ? R : In<S, K>;
/** The response type a server handler of method `K` sends. */
export type ServerResponse<S extends DescService, O, K extends MethodName<S>> =
  Ov<O, K> extends { serializeResponse: (value: infer R) => Buffer } ? R : Out<S, K>;
/** The request type a client of method `K` sends. */
export type ClientRequest<S extends DescService, O, K extends MethodName<S>> =
  Ov<O, K> extends { serializeRequest: (value: infer R) => Buffer } ? R : In<S, K>;
/** The response type a client of method `K` receives. */
export type ClientResponse<S extends DescService, O, K extends MethodName<S>> =
  Ov<O, K> extends { deserializeResponse: (bytes: Buffer) => infer R } ? R : Out<S, K>;

/**
 * Builds the grpc-js definition of `service`, with protobuf-es codecs unless `overrides` replace
 * them. Its deserializers throw on bytes they cannot decode (a server wraps them, see
 * `serverDefinition` in src/rpc/grpc-service.ts).
 */
export function serviceDefinition<S extends DescService>(service: S, overrides: CodecOverrides<S> = {}): grpc.ServiceDefinition {
  const definition: { [name: string]: grpc.MethodDefinition<any, any> } = {};
  for (const method of service.methods) {
    const codec: AnyCodec = overrides[method.localName as MethodName<S>] ?? {};
    definition[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: codec.serializeRequest ?? serializer(method.input),
      requestDeserialize: codec.deserializeRequest ?? deserializer(method.input),
      responseSerialize: codec.serializeResponse ?? serializer(method.output),
      responseDeserialize: codec.deserializeResponse ?? deserializer(method.output),
    };
  }
  return definition;
}

/** A grpc-js serializer from protobuf-es: the Uint8Array of `toBinary`, as a Buffer, no copy. */
export function serializer<D extends DescMessage>(schema: D): (value: MessageShape<D>) => Buffer {
  return (value) => asBuffer(toBinary(schema, value));
}

/** A grpc-js deserializer from protobuf-es; `bytes` fields are views of the received buffer. */
export function deserializer<D extends DescMessage>(schema: D): (bytes: Buffer) => MessageShape<D> {
  return (bytes) => fromBinary(schema, bytes, { readUnknownFields: false });
}

/** grpc-js call options (deadline, parent, credentials, ...). */
export type CallOptions = Partial<grpc.CallOptions>;

/** A unary method of a generated client, with grpc-js's overloads. */
export interface UnaryMethod<Req, Res> {
  (request: Req, metadata: grpc.Metadata, options: CallOptions, callback: grpc.requestCallback<Res>): grpc.ClientUnaryCall;
  (request: Req, metadata: grpc.Metadata, callback: grpc.requestCallback<Res>): grpc.ClientUnaryCall;
  (request: Req, options: CallOptions, callback: grpc.requestCallback<Res>): grpc.ClientUnaryCall;
  (request: Req, callback: grpc.requestCallback<Res>): grpc.ClientUnaryCall;
}

/** A server-streaming method of a generated client. */
export interface ServerStreamingMethod<Req, Res> {
  (request: Req, metadata?: grpc.Metadata, options?: CallOptions): grpc.ClientReadableStream<Res>;
  (request: Req, options?: CallOptions): grpc.ClientReadableStream<Res>;
}

/** A client-streaming method of a generated client. */
export interface ClientStreamingMethod<Req, Res> {
  (metadata: grpc.Metadata, options: CallOptions, callback: grpc.requestCallback<Res>): grpc.ClientWritableStream<Req>;
  (metadata: grpc.Metadata, callback: grpc.requestCallback<Res>): grpc.ClientWritableStream<Req>;
  (options: CallOptions, callback: grpc.requestCallback<Res>): grpc.ClientWritableStream<Req>;
  (callback: grpc.requestCallback<Res>): grpc.ClientWritableStream<Req>;
}

/** A bidirectional-streaming method of a generated client. */
export interface BidiStreamingMethod<Req, Res> {
  (metadata?: grpc.Metadata, options?: CallOptions): grpc.ClientDuplexStream<Req, Res>;
  (options?: CallOptions): grpc.ClientDuplexStream<Req, Res>;
}

type ClientMethod<Kind, Req, Res> = Kind extends "unary"
  ? UnaryMethod<Req, Res>
  : Kind extends "server_streaming"
    ? ServerStreamingMethod<Req, Res>
    : Kind extends "client_streaming"
      ? ClientStreamingMethod<Req, Res>
      : BidiStreamingMethod<Req, Res>;

/** A client of service `S` (with codec overrides `O`): a grpc-js Client with one method per rpc. */
export type ServiceClient<S extends DescService, O = object> = grpc.Client & {
  [K in MethodName<S>]: ClientMethod<Method<S, K>["methodKind"], ClientRequest<S, O, K>, ClientResponse<S, O, K>>;
};

/** The constructor `clientConstructor` returns. */
export type ServiceClientConstructor<S extends DescService, O = object> = new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ClientOptions,
) => ServiceClient<S, O>;

/**
 * A typed client class for `service` (grpc-js `makeGenericClientConstructor`); pass the client
 * codec overrides for the hand-written codecs to apply.
 */
export function clientConstructor<S extends DescService, O extends CodecOverrides<S> = object>(
  service: S,
  overrides?: O,
): ServiceClientConstructor<S, O> {
  const ctor = grpc.makeGenericClientConstructor(serviceDefinition(service, overrides), service.name);
  return ctor as unknown as ServiceClientConstructor<S, O>;
}
