/**
 * What Admin, Producer and Consumer share: where the brokers are, how to reach them, how to
 * retry, and where randomness comes from. `connect()` resolves `ClientOptions` into a
 * `Connection`:
 * - `pool`: one transport (grpc-js channel) per broker address, opened on first use
 *   (transport-pool.ts) — the producer and consumer reach partition leaders through it;
 * - `transport`: "any broker", the bootstrap addresses with failover (bootstrap-transport.ts),
 *   for metadata, Admin calls and InitProducerId.
 * Nothing connects until the first call. A client closes `transport` (and with it the pool) only
 * when it opened it itself (`owned`); a transport given in the options is never closed.
 */

import type { Random } from "../base/random.ts";
import { BootstrapTransport } from "./bootstrap-transport.ts";
import { type ChannelSecurity, type ClientCredentials, type ClientTlsOptions, channelSecurity } from "./channel-security.ts";
import { GrpcTransport } from "./grpc-transport.ts";
import { type Instrumentation, type InstrumentationOptions, instrumentation, requestInterceptor } from "./instrumentation.ts";
import { type RetryPolicy, defaultRandom, retryPolicy } from "./retry.ts";
import { type TransportFactory, TransportPool, parseBootstrap } from "./transport-pool.ts";
import type { Transport } from "./transport.ts";

/** The address clients use when none is given (the broker's default `--listen`). */
export const DEFAULT_BOOTSTRAP = "127.0.0.1:50051";

/** Metadata is refreshed at least this often (Kafka's metadata.max.age.ms). */
export const DEFAULT_METADATA_MAX_AGE_MS = 300_000;

/** Options every client takes. */
export interface ClientOptions extends InstrumentationOptions {
  /**
   * "host:port" of a broker, or a comma-separated list of them: the first reachable one answers
   * metadata and admin calls. Default `DEFAULT_BOOTSTRAP`. Ignored when `transport` is given.
   */
  readonly bootstrap?: string | undefined;
  /**
   * A transport to use for every broker instead of gRPC connections (a single broker, or an
   * in-memory one in tests); the client does not close it.
   */
  readonly transport?: Transport | undefined;
  /**
   * Opens the transport of one broker address instead of a GrpcTransport (in-memory clusters in
   * tests); the client closes what it opened. Ignored when `transport` is given.
   */
  readonly transportFactory?: TransportFactory | undefined;
  /** Retry policy (retry.ts); fields left out take the defaults. */
  readonly retry?: Partial<RetryPolicy> | undefined;
  /** Random source for backoff jitter and sticky partitions; default seeded from Math.random. */
  readonly random?: Random | undefined;
  /** Deadline of each request to the broker, in ms. Default 30 000. */
  readonly requestTimeoutMs?: number | undefined;
  /** Partition leaders are asked again at least this often, in ms. Default 300 000 (5 min). */
  readonly metadataMaxAgeMs?: number | undefined;
  /**
   * TLS to the brokers: `ca`, `cert`, `key` each PEM contents (a Buffer, or a string holding
   * "-----BEGIN") or a PEM file's path (re-read when it changes); no `ca`: the system's roots;
   * `cert` + `key`: mutual TLS; `serverName`: the name the broker's certificate carries when it is
   * not the address's host (needed under Bun for an IP address). Default: plaintext.
   */
  readonly tls?: ClientTlsOptions | undefined;
  /** User and password sent as `authorization: Basic ...` on every call (give `tls` too). */
  readonly credentials?: ClientCredentials | undefined;
  /** Sent as the `rill-client-id` header on every call (Kafka's client.id). */
  readonly clientId?: string | undefined;
}

/** ClientOptions, resolved. */
export interface Connection {
  /** Any broker: the bootstrap addresses with failover (or the given transport). */
  readonly transport: Transport;
  /** One transport per broker address. */
  readonly pool: TransportPool;
  /** True when the client opened `transport` and must close it (closing it closes the pool). */
  readonly owned: boolean;
  readonly retry: RetryPolicy;
  readonly random: Random;
  readonly requestTimeoutMs: number;
  readonly metadataMaxAgeMs: number;
  /** How the pool's gRPC channels are made (TLS, credentials and client id headers). */
  readonly security: ChannelSecurity;
  /** The `logger` and `onEvent` hooks (instrumentation.ts). */
  readonly instr: Instrumentation;
}

function positiveInt(v: number, field: string): number {
  if (!Number.isInteger(v) || v <= 0) throw new RangeError(`${field}: ${v} is not a positive integer`);
  return v;
}

/** Resolves `options`, opening a pool of GrpcTransports unless a transport is given. Throws RangeError on bad values. */
export function connect(options: ClientOptions = {}): Connection {
  const requestTimeoutMs = positiveInt(options.requestTimeoutMs ?? 30_000, "requestTimeoutMs");
  const metadataMaxAgeMs = positiveInt(options.metadataMaxAgeMs ?? DEFAULT_METADATA_MAX_AGE_MS, "metadataMaxAgeMs");
  const retry = retryPolicy(options.retry);
  const random = options.random ?? defaultRandom();
  const security = channelSecurity(options.tls, options.credentials, options.clientId);
  const instr = instrumentation(options);
  const common = { retry, random, requestTimeoutMs, metadataMaxAgeMs, security, instr };
  if (options.transport !== undefined) {
    return { transport: options.transport, pool: TransportPool.fixed(options.transport), owned: false, ...common };
  }
  const addresses = parseBootstrap(options.bootstrap ?? DEFAULT_BOOTSTRAP);
  const grpcFactory = (address: string): Transport => {
    if (!instr.active) return new GrpcTransport(address, { security });
    instr.emit({ type: "connect", address });
    const interceptors = [...security.interceptors, requestInterceptor(address, instr)];
    return new GrpcTransport(address, { security: { ...security, interceptors } });
  };
  const pool = TransportPool.owning(options.transportFactory ?? grpcFactory);
  return { transport: new BootstrapTransport(pool, addresses), pool, owned: true, ...common };
}
