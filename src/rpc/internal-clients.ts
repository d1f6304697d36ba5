/**
 * The one way a broker makes gRPC clients of other nodes: forwarding to the active controller
 * (forward.ts), produce and fetch forwarded to partition leaders (forward.ts), the broker
 * lifecycle calls to the controller (controller-channel.ts), Raft traffic between voters
 * (quorum-transport.ts) and follower fetches (replication-service.ts).
 *
 * An `InternalClients` holds one client, so one channel (one HTTP/2 connection), per (service,
 * address), made on first use with the same options everywhere (`internalChannelOptions`: the
 * SDK's windows and keepalive, fast reconnects, no message size limit — a peer's own limits
 * apply); `close()` closes them all. `unary` calls a method by name with a deadline (the
 * factory's default, `callTimeoutMs`, unless the call gives one) and rejects with what grpc-js
 * failed with; callers decide what a failure means (errors.ts `fromPeerError`).
 */
import type { DescService } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  type TransportConfig,
  clientChannelOptions,
  defaultTransportConfig,
  reconnectChannelOptions,
} from "../protocol/channel-options.ts";
import { type MethodName, type ServiceClient, type ServiceClientConstructor, serviceDefinition } from "../protocol/grpc-service.ts";
import type { MemberSigner } from "../security/member-auth.ts";
import { signingInterceptor } from "./member-auth.ts";

/** Deadline of an internal call that gives none. */
export const INTERNAL_CALL_TIMEOUT_MS = 30_000;

/**
 * Channel options of every internal client: `clientChannelOptions(cfg)` (windows, keepalive),
 * reconnects within a second of a peer's restart, and no message size limit.
 */
export function internalChannelOptions(cfg: TransportConfig = defaultTransportConfig): grpc.ChannelOptions {
  return {
    ...clientChannelOptions(cfg),
    ...reconnectChannelOptions,
    "grpc.max_send_message_length": -1,
    "grpc.max_receive_message_length": -1,
  };
}

/** Options of an `InternalClients`. */
export interface InternalClientsOptions {
  /** Transport settings of the channels. Default `defaultTransportConfig`. */
  readonly transport?: TransportConfig | undefined;
  /** Channel options applied over `internalChannelOptions(transport)`. */
  readonly channelOptions?: grpc.ChannelOptions | undefined;
  /** Deadline of a `unary` call that gives none. Default INTERNAL_CALL_TIMEOUT_MS. */
  readonly callTimeoutMs?: number | undefined;
  /** Signs every call with `cluster.secret` (member-auth.ts); none: calls go unsigned. */
  readonly signer?: MemberSigner | undefined;
  /** Credentials of the channels (tls.ts `internalChannelCredentials`). Default plaintext. */
  readonly credentials?: grpc.ChannelCredentials | undefined;
}

/** Options of one `unary` call. */
export interface InternalCallOptions {
  /** Request metadata (headers). */
  readonly metadata?: grpc.Metadata | undefined;
  /** Absolute deadline (a Date, or ms since the epoch). Default: `callTimeoutMs` from now. */
  readonly deadline?: grpc.Deadline | undefined;
  /** Told the response headers (sent before the response). */
  readonly onHeaders?: ((headers: grpc.Metadata) => void) | undefined;
  /** Aborting it cancels the call (it then rejects with CANCELLED). */
  readonly cancel?: { aborted: boolean; onabort: (() => void) | null } | undefined;
}

const constructors = new WeakMap<DescService, ServiceClientConstructor<DescService>>();

/**
 * The client class of `service`, whose request serializers pass a Buffer through unchanged (the
 * signing interceptor serializes a request itself, to sign its bytes, and sends those).
 */
export function constructorOf<S extends DescService>(service: S): ServiceClientConstructor<S> {
  let ctor = constructors.get(service);
  if (ctor === undefined) {
    const definition = serviceDefinition(service);
    for (const m of Object.values(definition)) {
      const serialize = m.requestSerialize;
      m.requestSerialize = (value: unknown) => (Buffer.isBuffer(value) ? value : serialize(value));
    }
    const generic = grpc.makeGenericClientConstructor(definition, service.name);
    ctor = generic as unknown as ServiceClientConstructor<DescService>;
    constructors.set(service, ctor);
  }
  return ctor as unknown as ServiceClientConstructor<S>;
}

type UnaryByName = (
  request: unknown,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (e: grpc.ServiceError | null, response?: unknown) => void,
) => grpc.ClientUnaryCall;

/** Clients of other nodes: one per (service, address), closed together. */
export class InternalClients {
  private readonly clients = new Map<string, grpc.Client>();
  private readonly channelOptions: grpc.ChannelOptions;
  private readonly interceptors: grpc.Interceptor[] = [];
  private readonly credentials: grpc.ChannelCredentials;
  /** Deadline of a `unary` call that gives none. */
  readonly callTimeoutMs: number;

  constructor(options: InternalClientsOptions = {}) {
    this.channelOptions = { ...internalChannelOptions(options.transport), ...options.channelOptions };
    if (options.signer !== undefined) this.interceptors = [signingInterceptor(options.signer)];
    this.callTimeoutMs = options.callTimeoutMs ?? INTERNAL_CALL_TIMEOUT_MS;
    this.credentials = options.credentials ?? grpc.credentials.createInsecure();
    if (!Number.isInteger(this.callTimeoutMs) || this.callTimeoutMs <= 0) {
      throw new RangeError(`callTimeoutMs: ${this.callTimeoutMs} is not a positive integer`);
    }
  }

  /** The client of `service` at `address` ("host:port"), made on first use; no I/O until a call. */
  client<S extends DescService>(service: S, address: string): ServiceClient<S> {
    const key = `${service.typeName} ${address}`;
    let c = this.clients.get(key);
    if (c === undefined) {
      const Ctor = constructorOf(service);
      c = new Ctor(address, this.credentials, { ...this.channelOptions, interceptors: this.interceptors });
      this.clients.set(key, c);
    }
    return c as ServiceClient<S>;
  }

  /** How many clients are open. */
  get size(): number {
    return this.clients.size;
  }

  /** An absolute deadline `timeoutMs` (default `callTimeoutMs`) from now. */
  deadline(timeoutMs: number = this.callTimeoutMs): number {
    return Date.now() + timeoutMs;
  }

  /**
   * Calls unary `method` of `service` at `address`. Resolves with the response; rejects with the
   * grpc-js ServiceError (a status from the peer, or one grpc-js made when it could not reach it).
   */
  unary<S extends DescService, Res>(
    service: S,
    address: string,
    method: MethodName<S>,
    request: unknown,
    options: InternalCallOptions = {},
  ): Promise<Res> {
    const client = this.client(service, address);
    const fn = (client as unknown as Record<string, UnaryByName>)[method];
    if (typeof fn !== "function") return Promise.reject(new TypeError(`${service.typeName} has no method ${method}`));
    const callOptions: grpc.CallOptions = { deadline: options.deadline ?? this.deadline() };
    return new Promise<Res>((resolve, reject) => {
      const call = fn.call(client, request, options.metadata ?? new grpc.Metadata(), callOptions, (e, res) =>
        e ? reject(e) : resolve(res as Res),
      );
      if (options.onHeaders !== undefined) call.on("metadata", options.onHeaders);
      const cancel = options.cancel;
      if (cancel !== undefined) {
        if (cancel.aborted) call.cancel();
        else cancel.onabort = () => call.cancel();
      }
    });
  }

  /** Closes every client (calls in progress fail with CANCELLED); a later `client()` opens a new one. */
  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
