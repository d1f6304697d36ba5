/**
 * TLS of the Kafka listener from the client listener's keys (`tls.cert.file`, `tls.key.file`,
 * `tls.ca.file`, `tls.client.auth`), with the gRPC listener's rotation: the files are watched by
 * the same `PemWatcher` (src/protocol/pem-watcher.ts) and a changed set that loads is taken for
 * the connections that follow (`KafkaServer.setSecureContext`); a set that does not load leaves
 * the previous one in use.
 *
 * `tls.client.auth`: `none` asks no certificate; `request` asks one and a certificate of
 * `tls.ca.file` names the caller (mTLS, when `auth.methods` has `mtls`), none is fine; `require`
 * refuses a connection without one.
 */
import { readFileSync } from "node:fs";
import type * as tls from "node:tls";
import { rillError } from "../base/errors.ts";
import { PemWatcher, type PemWatcherOptions } from "../protocol/pem-watcher.ts";
import { type TlsConfig, listenerTlsFiles } from "../rpc/tls.ts";
import { commonName, type PeerCertificateLike } from "../security/authenticator.ts";
import type { Principal } from "../security/requester.ts";

/** The Kafka listener's TLS: the options to start with and the watch that rotates them. */
export interface KafkaTls {
  readonly options: tls.TlsOptions;
  /** Starts passing changed files to `apply`; returns the stop. */
  watch(apply: (context: tls.SecureContextOptions) => void): () => void;
}

/** TLS of the Kafka listener from `tls.*`, or null when `tls.cert.file` is empty (plaintext). */
export function kafkaTls(cfg: TlsConfig, watch: Pick<PemWatcherOptions, "onError" | "onReload" | "refreshMs"> = {}): KafkaTls | null {
  const files = listenerTlsFiles(cfg);
  if (files === null) return null;
  const asks = cfg.tlsClientAuth !== "none";
  if (asks && files.caFile === undefined)
    throw rillError("INVALID_CONFIG", `tls.ca.file: tls.client.auth=${cfg.tlsClientAuth} needs the CA that client certificates chain to`);
  const watcher = new PemWatcher({
    cert: { file: files.certFile },
    key: { file: files.keyFile },
    ca: asks && files.caFile ? { file: files.caFile } : undefined,
    names: { cert: "tls.cert.file", key: "tls.key.file", ca: "tls.ca.file" },
    ...watch,
  });
  const initial = loadOnce(files.certFile, files.keyFile, asks ? files.caFile : undefined);
  let context: tls.SecureContextOptions = initial;
  return {
    options: { ...initial, requestCert: asks, rejectUnauthorized: cfg.tlsClientAuth === "require" },
    watch(apply) {
      const onIdentity = (u: { certificate: Buffer; privateKey: Buffer } | null) => {
        if (u === null) return;
        context = { ...context, cert: u.certificate, key: u.privateKey };
        apply(context);
      };
      const onCa = (u: { caCertificate: Buffer } | null) => {
        if (!asks || u === null) return;
        context = { ...context, ca: u.caCertificate };
        apply(context);
      };
      watcher.addIdentityCertificateListener(onIdentity);
      watcher.addCaCertificateListener(onCa);
      return () => {
        watcher.removeIdentityCertificateListener(onIdentity);
        watcher.removeCaCertificateListener(onCa);
      };
    },
  };
}

/** The files as they are now (PemWatcher checked that they load). */
function loadOnce(cert: string, key: string, ca: string | undefined): { cert: Buffer; key: Buffer; ca?: Buffer } {
  return { cert: readFileSync(cert), key: readFileSync(key), ...(ca ? { ca: readFileSync(ca) } : {}) };
}

/** The principal of a TLS socket's verified client certificate: `User:<CN>`, or undefined. */
export function certificatePrincipal(socket: tls.TLSSocket): Principal | undefined {
  if (!socket.authorized) return undefined;
  const cn = commonName(socket.getPeerCertificate() as PeerCertificateLike);
  return cn === null ? undefined : `User:${cn}`;
}
