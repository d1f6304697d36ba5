/**
 * What Admin, Producer and Consumer share: where the broker is, how to reach it (a Transport),
 * how to retry, and where randomness comes from. `connect()` resolves `ClientOptions` into a
 * `Connection`; a client closes the transport only when it opened it itself.
 */

import type { Random } from "../base/random.ts";
import { GrpcTransport } from "./grpc-transport.ts";
import { type RetryPolicy, defaultRandom, retryPolicy } from "./retry.ts";
import type { Transport } from "./transport.ts";

/** The address clients use when none is given (the broker's default `--listen`). */
export const DEFAULT_BOOTSTRAP = "127.0.0.1:50051";

/** Options every client takes. */
export interface ClientOptions {
  /** "host:port" of a broker. Default `DEFAULT_BOOTSTRAP`. Ignored when `transport` is given. */
  readonly bootstrap?: string | undefined;
  /** A transport to use instead of opening a gRPC connection; the client does not close it. */
  readonly transport?: Transport | undefined;
  /** Retry policy (retry.ts); fields left out take the defaults. */
  readonly retry?: Partial<RetryPolicy> | undefined;
  /** Random source for backoff jitter and sticky partitions; default seeded from Math.random. */
  readonly random?: Random | undefined;
  /** Deadline of each request to the broker, in ms. Default 30 000. */
  readonly requestTimeoutMs?: number | undefined;
}

/** ClientOptions, resolved. */
export interface Connection {
  readonly transport: Transport;
  /** True when the client opened `transport` and must close it. */
  readonly owned: boolean;
  readonly retry: RetryPolicy;
  readonly random: Random;
  readonly requestTimeoutMs: number;
}

/** Resolves `options`, opening a GrpcTransport unless one is given. Throws RangeError on bad values. */
export function connect(options: ClientOptions = {}): Connection {
  const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  if (!Number.isInteger(requestTimeoutMs) || requestTimeoutMs <= 0) {
    throw new RangeError(`requestTimeoutMs: ${requestTimeoutMs} is not a positive integer`);
  }
  const retry = retryPolicy(options.retry);
  const random = options.random ?? defaultRandom();
  if (options.transport !== undefined) return { transport: options.transport, owned: false, retry, random, requestTimeoutMs };
  const transport = new GrpcTransport(options.bootstrap ?? DEFAULT_BOOTSTRAP);
  return { transport, owned: true, retry, random, requestTimeoutMs };
}
