/**
 * TLS of the broker's gRPC listeners and of its clients of other nodes, from PEM files that are
 * re-read when they change (certificate rotation without restart; src/protocol/pem-watcher.ts).
 *
 * - The client listener (`listen`): `tls.cert.file` + `tls.key.file`, and `tls.client.auth`
 *   `none` (no client certificate asked), `request` (asked; a certificate of `tls.ca.file` makes
 *   the caller known by it, none is fine) or `require` (a certificate of `tls.ca.file` or no
 *   connection). No `tls.cert.file`: plaintext.
 * - The internal listener and internal clients: mutual TLS whenever `internal.tls.*` is set — a
 *   peer must present a certificate of `internal.tls.ca.file`, each side presents its own; not
 *   set: plaintext.
 *
 * Certificates name their nodes by DNS name (Bun's TLS refuses an IP address as the server name):
 * a client connects by that name, or keeps the address and names the server with the channel
 * option `grpc.ssl_target_name_override`.
 *
 * A grpc-js server swaps its TLS context on a change; a channel uses the newest files for each new
 * connection (connections already open keep theirs). A set of files that does not load (a file
 * missing or half-written, a key that does not match its certificate) is not taken: the previous
 * one stays in use until the files are good again.
 */
import * as grpc from "@grpc/grpc-js";
import { rillError } from "../base/errors.ts";
import type { BrokerConfig } from "../config/schema.ts";
import { PemWatcher, type PemWatcherOptions } from "../protocol/pem-watcher.ts";

/** A listener's PEM files: its certificate chain, its key, and the CA of the peers it accepts. */
export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile?: string | undefined;
}

/** Whether a listener asks clients for a certificate (`tls.client.auth`). */
export type ClientAuth = "none" | "request" | "require";

/** The files of a channel: the CA the server must chain to (default: system roots) and an optional client identity. */
export interface ChannelTlsFiles {
  readonly caFile?: string | undefined;
  readonly certFile?: string | undefined;
  readonly keyFile?: string | undefined;
}

/** How errors name the files (config keys), and who hears about rotations. */
export interface TlsWatchOptions {
  readonly names?: PemWatcherOptions["names"];
  /** Told why changed files were not taken. */
  readonly onError?: ((e: Error) => void) | undefined;
  /** Told each time changed files were taken. */
  readonly onReload?: (() => void) | undefined;
  /** Check interval in ms (default PEM_REFRESH_MS). */
  readonly refreshMs?: number | undefined;
}

const fileOf = (f: string | undefined) => (f === undefined || f === "" ? undefined : { file: f });

/**
 * Server credentials from `files` (null: plaintext). `clientAuth` `request`/`require` need
 * `files.caFile`. Reads the files now: throws INVALID_CONFIG naming the file's key when one is
 * unusable (missing, not PEM, key not matching the certificate).
 */
export function serverCredentials(files: TlsFiles | null, clientAuth: ClientAuth, watch: TlsWatchOptions = {}): grpc.ServerCredentials {
  if (files === null) return grpc.ServerCredentials.createInsecure();
  const names = { cert: "tls.cert.file", key: "tls.key.file", ca: "tls.ca.file", ...watch.names };
  const ca = clientAuth === "none" ? undefined : fileOf(files.caFile);
  if (clientAuth !== "none" && ca === undefined)
    throw rillError("INVALID_CONFIG", `${names.ca}: tls.client.auth=${clientAuth} needs the CA that client certificates chain to`);
  const provider = new PemWatcher({ cert: { file: files.certFile }, key: { file: files.keyFile }, ca, ...watch, names });
  // grpc-js 1.14.7 passes its first argument on as the identity provider and its second as the CA
  // provider (null: no client certificate asked for), whatever the declared parameter names say;
  // one provider serves both, so either reading works.
  return grpc.experimental.createCertificateProviderServerCredentials(provider, ca ? provider : null, clientAuth === "require");
}

/**
 * Channel credentials from `files` (null: plaintext): TLS verifying the server against
 * `caFile` (absent: the system's roots), presenting `certFile`/`keyFile` when given (mutual TLS).
 * Reads the files now (throws INVALID_CONFIG naming the key) and again when they change.
 */
export function channelCredentials(files: ChannelTlsFiles | null, watch: TlsWatchOptions = {}): grpc.ChannelCredentials {
  if (files === null) return grpc.credentials.createInsecure();
  const provider = new PemWatcher({ ca: fileOf(files.caFile), cert: fileOf(files.certFile), key: fileOf(files.keyFile), ...watch });
  return grpc.experimental.createCertificateProviderChannelCredentials(provider, provider.hasIdentity ? provider : null);
}

/** The TLS keys of a broker configuration. */
export type TlsConfig = Pick<
  BrokerConfig,
  "tlsCertFile" | "tlsKeyFile" | "tlsCaFile" | "tlsClientAuth" | "internalTlsCertFile" | "internalTlsKeyFile" | "internalTlsCaFile"
>;

/** The client listener's files (`tls.*`), or null when it is plaintext. */
export function listenerTlsFiles(cfg: TlsConfig): TlsFiles | null {
  if (cfg.tlsCertFile === "") return null;
  return { certFile: cfg.tlsCertFile, keyFile: cfg.tlsKeyFile, caFile: cfg.tlsCaFile === "" ? undefined : cfg.tlsCaFile };
}

/** Credentials of the client listener (`listen`) from `tls.*`; plaintext when `tls.cert.file` is empty. */
export function listenerCredentials(cfg: TlsConfig, watch: TlsWatchOptions = {}): grpc.ServerCredentials {
  return serverCredentials(listenerTlsFiles(cfg), cfg.tlsClientAuth, watch);
}

const INTERNAL_NAMES = { cert: "internal.tls.cert.file", key: "internal.tls.key.file", ca: "internal.tls.ca.file" } as const;

/** True when `internal.tls.*` is set (the internal listener and internal clients use mutual TLS). */
export function internalTlsEnabled(cfg: TlsConfig): boolean {
  return cfg.internalTlsCertFile !== "" || cfg.internalTlsKeyFile !== "" || cfg.internalTlsCaFile !== "";
}

function internalFiles(cfg: TlsConfig): Required<TlsFiles> {
  for (const [key, value] of [
    [INTERNAL_NAMES.cert, cfg.internalTlsCertFile],
    [INTERNAL_NAMES.key, cfg.internalTlsKeyFile],
    [INTERNAL_NAMES.ca, cfg.internalTlsCaFile],
  ] as const) {
    if (value === "")
      throw rillError("INVALID_CONFIG", `${key}: internal mutual TLS needs all of ${Object.values(INTERNAL_NAMES).join(", ")}`);
  }
  return { certFile: cfg.internalTlsCertFile, keyFile: cfg.internalTlsKeyFile, caFile: cfg.internalTlsCaFile };
}

/** Credentials of the internal listener: mutual TLS (a certificate of `internal.tls.ca.file` required) when `internal.tls.*` is set, else plaintext. */
export function internalServerCredentials(cfg: TlsConfig, watch: TlsWatchOptions = {}): grpc.ServerCredentials {
  if (!internalTlsEnabled(cfg)) return grpc.ServerCredentials.createInsecure();
  return serverCredentials(internalFiles(cfg), "require", { ...watch, names: INTERNAL_NAMES });
}

/**
 * Credentials of this node's clients of other nodes: mutual TLS (this node's `internal.tls`
 * certificate, peers verified against `internal.tls.ca.file`) when `internal.tls.*` is set, else
 * plaintext.
 */
export function internalChannelCredentials(cfg: TlsConfig, watch: TlsWatchOptions = {}): grpc.ChannelCredentials {
  if (!internalTlsEnabled(cfg)) return grpc.credentials.createInsecure();
  return channelCredentials(internalFiles(cfg), { ...watch, names: INTERNAL_NAMES });
}

/**
 * A broker's credentials, each made on first use and then shared (one watcher of the files per
 * use, however many channels): the client listener's (`tls.*`), the internal listener's and the
 * internal clients' (`internal.tls.*`). `load()` makes them all now, so a bad file fails the start.
 */
export class BrokerTls {
  private listenerCreds: grpc.ServerCredentials | null = null;
  private internalServerCreds: grpc.ServerCredentials | null = null;
  private internalChannelCreds: grpc.ChannelCredentials | null = null;

  constructor(
    private readonly cfg: TlsConfig,
    private readonly watch: TlsWatchOptions = {},
  ) {}

  /** Credentials of the client listener (`listen`). */
  listener(): grpc.ServerCredentials {
    this.listenerCreds ??= listenerCredentials(this.cfg, this.watch);
    return this.listenerCreds;
  }

  /** Credentials of the internal listener. */
  internalServer(): grpc.ServerCredentials {
    this.internalServerCreds ??= internalServerCredentials(this.cfg, this.watch);
    return this.internalServerCreds;
  }

  /** Credentials of every client of another node. */
  internalChannel(): grpc.ChannelCredentials {
    this.internalChannelCreds ??= internalChannelCredentials(this.cfg, this.watch);
    return this.internalChannelCreds;
  }

  /** Reads every configured file now; throws INVALID_CONFIG naming the key of an unusable one. */
  load(): void {
    this.listener();
    this.internalServer();
    this.internalChannel();
  }
}
