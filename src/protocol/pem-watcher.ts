/**
 * PEM files (or PEM contents) as a grpc-js certificate provider, re-read when they change, so
 * certificates rotate without a restart. The broker's listeners and internal clients
 * (src/rpc/tls.ts) and the SDK's channels (src/client/tls.ts) share it.
 *
 * grpc-js's certificate-provider API (`grpc.experimental`) takes a `CertificateProvider` that
 * tells its listeners each new identity (certificate chain and private key) and CA bundle: a
 * server swaps its TLS context (`setSecureContext`) for the connections that follow, a channel
 * uses the newest set for each new connection. Connections already open keep the set they were
 * made with.
 *
 * grpc-js ships a provider of its own (`FileWatcherCertificateProvider`) that reads the files every
 * interval and passes on whatever it read. A rotation caught half-way (the new certificate next to
 * the old key, or a file being rewritten) then leaves a server with no usable credentials, and it
 * drops every new connection until the next read. `PemWatcher` checks the files' stat (inode, size,
 * mtime, ctime) every `refreshMs`, reads them only when one changed, and passes a set on only
 * when every certificate parses and the private key matches the certificate; otherwise the last
 * good set stays in use and `onError` hears why. The first set is read synchronously by the
 * constructor, which throws INVALID_CONFIG naming the file's option when it is unusable.
 *
 * The timer runs only while someone listens (a bound server, an open channel) and never keeps the
 * process alive.
 */
import type * as grpc from "@grpc/grpc-js";
import { X509Certificate, createPrivateKey } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { createSecureContext, rootCertificates } from "node:tls";
import { rillError } from "../base/errors.ts";

/** How often watched files are checked for a change, in ms. */
export const PEM_REFRESH_MS = 1000;

/** Where one PEM item comes from: a file (re-read when it changes) or contents given once. */
export type PemSource = { readonly file: string } | { readonly pem: Buffer };

/** What a `PemWatcher` provides. */
export interface PemWatcherOptions {
  /** The certificate chain of this side (with `key`); absent: no identity. */
  readonly cert?: PemSource | undefined;
  /** The private key of `cert`. */
  readonly key?: PemSource | undefined;
  /** CA bundle that peers' certificates must chain to; absent: the system's root certificates. */
  readonly ca?: PemSource | undefined;
  /** How each item is named in errors (a config key or an option); default "cert", "key", "ca". */
  readonly names?: { readonly cert?: string; readonly key?: string; readonly ca?: string } | undefined;
  /** Check interval in ms. Default PEM_REFRESH_MS. */
  readonly refreshMs?: number | undefined;
  /** Told why changed files were not taken (the previous set stays in use). */
  readonly onError?: ((e: Error) => void) | undefined;
  /** Told each time a changed set was taken. */
  readonly onReload?: (() => void) | undefined;
}

/** One loaded set. */
interface PemSet {
  readonly identity: grpc.experimental.IdentityCertificateUpdate | null;
  readonly ca: grpc.experimental.CaCertificateUpdate;
}

type Item = "cert" | "key" | "ca";

function invalid(name: string, why: string): Error {
  return rillError("INVALID_CONFIG", `${name}: ${why}`);
}

/** The stat fingerprint of a file: changes when it is replaced or rewritten. */
function fingerprint(file: string): string {
  const s = statSync(file);
  return `${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
}

/** A grpc-js CertificateProvider over PEM files, reloaded when they change (see the file comment). */
export class PemWatcher implements grpc.experimental.CertificateProvider {
  private current: PemSet;
  private stamps: string;
  private readonly caListeners = new Set<grpc.experimental.CaCertificateUpdateListener>();
  private readonly identityListeners = new Set<grpc.experimental.IdentityCertificateUpdateListener>();
  private timer: ReturnType<typeof setInterval> | null = null;
  private lastError = "";
  private readonly refreshMs: number;

  /** Reads and checks the first set now; throws INVALID_CONFIG naming the item when it is unusable. */
  constructor(private readonly o: PemWatcherOptions) {
    if ((o.cert === undefined) !== (o.key === undefined)) {
      const missing = o.cert === undefined ? "cert" : "key";
      const other = missing === "cert" ? "key" : "cert";
      throw invalid(this.nameOf(missing), `must be set with ${this.nameOf(other)}`);
    }
    this.refreshMs = o.refreshMs ?? PEM_REFRESH_MS;
    if (!Number.isInteger(this.refreshMs) || this.refreshMs <= 0)
      throw new RangeError(`refreshMs: ${this.refreshMs} is not a positive integer`);
    this.stamps = this.fingerprints();
    this.current = this.load();
  }

  /** True when the set includes a certificate and key. */
  get hasIdentity(): boolean {
    return this.current.identity !== null;
  }

  /** The certificate in use now (the first of its chain), or null without an identity. */
  get certificate(): X509Certificate | null {
    return this.current.identity === null ? null : new X509Certificate(this.current.identity.certificate);
  }

  addCaCertificateListener(listener: grpc.experimental.CaCertificateUpdateListener): void {
    this.caListeners.add(listener);
    this.started();
    // Later than now: a grpc-js server reads its first context after adding its listener.
    process.nextTick(() => {
      if (this.caListeners.has(listener)) listener(this.current.ca);
    });
  }

  removeCaCertificateListener(listener: grpc.experimental.CaCertificateUpdateListener): void {
    this.caListeners.delete(listener);
    this.stopped();
  }

  addIdentityCertificateListener(listener: grpc.experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.add(listener);
    this.started();
    process.nextTick(() => {
      if (this.identityListeners.has(listener)) listener(this.current.identity);
    });
  }

  removeIdentityCertificateListener(listener: grpc.experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.delete(listener);
    this.stopped();
  }

  /** Checks the files now; takes and announces a changed set that is good. Returns whether it took one. */
  refresh(): boolean {
    let stamps: string;
    try {
      stamps = this.fingerprints();
    } catch (e) {
      this.report(e);
      return false;
    }
    if (stamps === this.stamps) return false;
    let next: PemSet;
    try {
      next = this.load();
    } catch (e) {
      this.report(e);
      return false;
    }
    this.stamps = stamps;
    this.current = next;
    this.lastError = "";
    for (const l of this.identityListeners) l(next.identity);
    for (const l of this.caListeners) l(next.ca);
    this.o.onReload?.();
    return true;
  }

  private nameOf(item: Item): string {
    return this.o.names?.[item] ?? item;
  }

  private report(e: unknown): void {
    const err = e instanceof Error ? e : new Error(String(e));
    if (err.message === this.lastError) return;
    this.lastError = err.message;
    this.o.onError?.(err);
  }

  private started(): void {
    if (this.timer !== null || !this.watchesFiles()) return;
    this.timer = setInterval(() => this.refresh(), this.refreshMs);
    this.timer.unref?.();
  }

  private stopped(): void {
    if (this.caListeners.size > 0 || this.identityListeners.size > 0 || this.timer === null) return;
    clearInterval(this.timer);
    this.timer = null;
  }

  private watchesFiles(): boolean {
    return [this.o.cert, this.o.key, this.o.ca].some((s) => s !== undefined && "file" in s);
  }

  private fingerprints(): string {
    const out: string[] = [];
    for (const item of ["cert", "key", "ca"] as const) {
      const s = this.o[item];
      if (s === undefined || !("file" in s)) continue;
      try {
        out.push(fingerprint(s.file));
      } catch (e) {
        throw invalid(this.nameOf(item), `cannot read ${s.file}: ${(e as Error).message}`);
      }
    }
    return out.join("|");
  }

  private read(item: Item): Buffer | null {
    const s = this.o[item];
    if (s === undefined) return null;
    if ("pem" in s) return s.pem;
    try {
      return readFileSync(s.file);
    } catch (e) {
      throw invalid(this.nameOf(item), `cannot read ${s.file}: ${(e as Error).message}`);
    }
  }

  private where(item: Item): string {
    const s = this.o[item];
    return s !== undefined && "file" in s ? ` (${s.file})` : "";
  }

  /** Reads every item and checks that they make a usable set. */
  private load(): PemSet {
    const cert = this.read("cert");
    const key = this.read("key");
    const caPem = this.read("ca");
    let identity: grpc.experimental.IdentityCertificateUpdate | null = null;
    if (cert !== null && key !== null) {
      const x509 = this.parseCertificate("cert", cert);
      let privateKey: ReturnType<typeof createPrivateKey>;
      try {
        privateKey = createPrivateKey(key);
      } catch (e) {
        throw invalid(this.nameOf("key"), `not a PEM private key${this.where("key")}: ${(e as Error).message}`);
      }
      if (!x509.checkPrivateKey(privateKey))
        throw invalid(this.nameOf("key"), `the private key${this.where("key")} does not match the certificate of ${this.nameOf("cert")}`);
      identity = { certificate: cert, privateKey: key };
    }
    if (caPem !== null) this.parseCertificate("ca", caPem);
    const ca = caPem ?? Buffer.from(rootCertificates.join("\n"));
    try {
      createSecureContext({ ca, ...(identity ? { cert: identity.certificate, key: identity.privateKey } : {}) });
    } catch (e) {
      throw invalid(this.nameOf(identity ? "cert" : "ca"), `unusable for TLS: ${(e as Error).message}`);
    }
    return { identity, ca: { caCertificate: ca } };
  }

  private parseCertificate(item: Item, pem: Buffer): X509Certificate {
    try {
      return new X509Certificate(pem);
    } catch (e) {
      throw invalid(this.nameOf(item), `not a PEM certificate${this.where(item)}: ${(e as Error).message}`);
    }
  }
}
