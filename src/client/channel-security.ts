/**
 * How the SDK's channels are secured and who they say the caller is: `ClientOptions.tls`,
 * `credentials` and `clientId`, resolved once per client into a `ChannelSecurity` that every
 * channel the client opens uses (GrpcTransport, GrpcGroupTransport).
 *
 * - `tls` — TLS to the brokers. Each of `ca`, `cert`, `key` is PEM contents (a Buffer, or a
 *   string holding "-----BEGIN") or else the path of a PEM file; files are re-read when they
 *   change, so a rotated CA bundle or client certificate is used by the next connection
 *   (src/protocol/pem-watcher.ts). No `ca`: the system's root certificates. `cert` with `key`:
 *   mutual TLS. `serverName`: the name the broker's certificate must carry, when it is not the
 *   host of the address (connecting to 127.0.0.1 with a certificate for `localhost`; Bun's TLS
 *   refuses an IP address as server name, so under Bun give one whenever the address is an IP).
 * - `credentials` — `authorization: Basic base64(user:password)` on every call (the broker's
 *   `password` authentication). Sent over plaintext too if asked (the broker refuses plaintext
 *   passwords unless told otherwise): give `tls` with it.
 * - `clientId` — the `rill-client-id` header on every call (Kafka's client.id: quotas and logs).
 */
import * as grpc from "@grpc/grpc-js";
import { PemWatcher, type PemSource } from "../protocol/pem-watcher.ts";

// Header names as the broker reads them (src/rpc/call-context.ts; the SDK does not import rpc).
/** The call metadata key of HTTP Basic credentials. */
export const AUTHORIZATION_KEY = "authorization";
/** The call metadata key naming the client (Kafka's client.id). */
export const CLIENT_ID_KEY = "rill-client-id";

/** TLS to the brokers (see the file comment for what each field takes). */
export interface ClientTlsOptions {
  /** CA bundle the broker's certificate must chain to: PEM contents or a file path. Default: system roots. */
  readonly ca?: string | Buffer | undefined;
  /** Client certificate chain (mutual TLS), with `key`: PEM contents or a file path. */
  readonly cert?: string | Buffer | undefined;
  /** Private key of `cert`: PEM contents or a file path. */
  readonly key?: string | Buffer | undefined;
  /** The name the broker's certificate must carry, instead of the address's host. */
  readonly serverName?: string | undefined;
}

/** A user and password sent as HTTP Basic credentials on every call. */
export interface ClientCredentials {
  readonly user: string;
  readonly password: string;
}

/** What a client's channels are made with. */
export interface ChannelSecurity {
  readonly credentials: grpc.ChannelCredentials;
  /** Channel options added to the transport's own (the TLS server name). */
  readonly channelOptions: grpc.ChannelOptions;
  /** Client interceptors of every call (the credentials and client id headers). */
  readonly interceptors: grpc.Interceptor[];
}

/** Plaintext, no headers: what a client without `tls`, `credentials` or `clientId` uses. */
export const plaintext: ChannelSecurity = Object.freeze({
  credentials: grpc.credentials.createInsecure(),
  channelOptions: {},
  interceptors: [],
});

function pemSource(v: string | Buffer | undefined): PemSource | undefined {
  if (v === undefined) return undefined;
  if (Buffer.isBuffer(v)) return { pem: v };
  return v.includes("-----BEGIN") ? { pem: Buffer.from(v) } : { file: v };
}

/** Printable ASCII: what an HTTP/2 header value may hold as is. */
const PRINTABLE = /^[\x20-\x7e]+$/;

function headersOf(credentials: ClientCredentials | undefined, clientId: string | undefined): [string, string][] {
  const out: [string, string][] = [];
  if (credentials !== undefined) {
    const { user, password } = credentials;
    if (typeof user !== "string" || user === "" || user.includes(":"))
      throw new RangeError("credentials.user: must be a non-empty name without ':'");
    if (typeof password !== "string" || password === "") throw new RangeError("credentials.password: must not be empty");
    out.push([AUTHORIZATION_KEY, `Basic ${Buffer.from(`${user}:${password}`, "utf8").toString("base64")}`]);
  }
  if (clientId !== undefined) {
    if (!PRINTABLE.test(clientId)) throw new RangeError(`clientId: ${JSON.stringify(clientId)} must be non-empty printable ASCII`);
    out.push([CLIENT_ID_KEY, clientId]);
  }
  return out;
}

/** An interceptor that sets `headers` on every call. */
function headerInterceptor(headers: readonly [string, string][]): grpc.Interceptor {
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        for (const [k, v] of headers) metadata.set(k, v);
        next(metadata, listener);
      },
    });
}

/**
 * Resolves the options into what every channel of one client uses. Reads the PEM files now:
 * throws INVALID_CONFIG naming `tls.ca`/`tls.cert`/`tls.key` when one is unusable, RangeError on
 * other bad values.
 */
export function channelSecurity(
  tls: ClientTlsOptions | undefined,
  credentials?: ClientCredentials | undefined,
  clientId?: string | undefined,
): ChannelSecurity {
  const headers = headersOf(credentials, clientId);
  const interceptors = headers.length > 0 ? [headerInterceptor(headers)] : [];
  if (tls === undefined) return headers.length === 0 ? plaintext : { ...plaintext, interceptors };
  if (tls.serverName !== undefined && !/^[A-Za-z0-9.-]+$/.test(tls.serverName))
    throw new RangeError(`tls.serverName: ${JSON.stringify(tls.serverName)} is not a DNS name`);
  const provider = new PemWatcher({
    ca: pemSource(tls.ca),
    cert: pemSource(tls.cert),
    key: pemSource(tls.key),
    names: { ca: "tls.ca", cert: "tls.cert", key: "tls.key" },
  });
  return {
    credentials: grpc.experimental.createCertificateProviderChannelCredentials(provider, provider.hasIdentity ? provider : null),
    channelOptions: tls.serverName !== undefined ? { "grpc.ssl_target_name_override": tls.serverName } : {},
    interceptors,
  };
}
