/**
 * Who is calling: the one authentication decision every listener makes before it reads a request
 * (DESIGN.md "Security": Authentication). Pure: the credentials come from the metadata image, the
 * password check (PBKDF2 of SCRAM) is given, time is an injected Clock.
 *
 * The life of a call's credentials:
 * 1. No method configured (`auth.methods` empty): the caller is User:ANONYMOUS.
 * 2. `authorization: Basic base64(name:password)` (RFC 7617), when `password` is on: refused over a
 *    listener without TLS unless plaintext passwords are allowed; a malformed value, or another
 *    scheme ("Bearer …"), is refused with its own catalog code and a message saying what to send.
 * 3. The (name, password) pair is looked up in the cache of verified logins: a hit whose credential
 *    is still the user's current one answers at once (PBKDF2 runs once per login, not per call);
 *    a changed or removed credential makes the entry worthless.
 * 4. Otherwise the caller's address must have failed logins left in its token bucket (else it is
 *    refused without running PBKDF2), and the password is checked against the user's SCRAM
 *    credential — an unknown user against a fake one, so that both cost the same time and get the
 *    same answer (SASL_AUTHENTICATION_FAILED). A failure takes a token.
 * 5. No header and `mtls` on: the principal is `User:<CN>` of the client certificate.
 */
import { createHash } from "node:crypto";
import type { Clock } from "../base/clock.ts";
import { type RillError, rillError } from "../base/errors.ts";
import type { Random } from "../base/random.ts";
import { ANONYMOUS, type Principal, type ScramCredential } from "../metadata/security-types.ts";

/** An authentication method of `auth.methods`. */
export type AuthMethod = "password" | "mtls";

/** What the authenticator knows of a client certificate (Node's PeerCertificate has this shape). */
export interface PeerCertificateLike {
  readonly subject?: { readonly CN?: string | readonly string[] } | null;
}

/** One call's credentials, as the listener received them. */
export interface AuthRequest {
  /** The `authorization` call metadata (HTTP header), undefined when absent. */
  readonly authorization: string | undefined;
  /** The client's address (the rate limit's key). */
  readonly host: string;
  /** True when the connection is TLS. */
  readonly tls: boolean;
  /** The verified client certificate (mTLS), when the client presented one. */
  readonly peerCertificate?: PeerCertificateLike | null | undefined;
}

/** The outcome: the principal, or the refusal (an UNAUTHENTICATED catalog error). */
export type AuthResult = { readonly principal: Principal } | { readonly error: RillError };

/** Failed-login rate limit per client address: a token bucket. */
export interface LoginRateLimit {
  /** Failed logins an address may make in a burst. */
  readonly burst: number;
  /** Failed logins an address earns back per second. */
  readonly perSecond: number;
}

export const LOGIN_RATE_LIMIT_DEFAULT: LoginRateLimit = { burst: 10, perSecond: 1 };
/** Verified logins remembered (oldest forgotten first). */
export const VERIFIED_CACHE_MAX = 10_000;
/** Addresses whose failed logins are tracked at once (full buckets are dropped first). */
export const TRACKED_HOSTS_MAX = 100_000;
/** Longest `authorization` value read (HTTP/2 itself refuses headers beyond its own limit). */
export const AUTHORIZATION_CHARS_MAX = 4096;

export interface AuthenticatorOptions {
  readonly methods: readonly AuthMethod[];
  readonly allowPlaintextPasswords: boolean;
  readonly clock: Clock;
  /** Draws the salt of the fake credential that unknown users are checked against. */
  readonly random: Random;
  /** The user's current SCRAM credentials (from the metadata image); empty when unknown. */
  readonly credentials: (user: string) => readonly ScramCredential[];
  /**
   * True when `password` matches `credential` (SCRAM's PBKDF2 check); a promise when the check
   * runs off the event loop (a server's), and `authenticate` then answers a promise on a cache miss.
   */
  readonly verify: (credential: ScramCredential, password: string) => boolean | Promise<boolean>;
  readonly rateLimit?: LoginRateLimit;
}

interface Bucket {
  tokens: number;
  atMs: number;
}

/** The authentication decision of every listener. */
export class Authenticator {
  private readonly verified = new Map<string, string>();
  private readonly buckets = new Map<string, Bucket>();
  private readonly fake: ScramCredential;
  private readonly limit: LoginRateLimit;

  constructor(private readonly o: AuthenticatorOptions) {
    this.limit = o.rateLimit ?? LOGIN_RATE_LIMIT_DEFAULT;
    this.fake = fakeCredential(o.random);
  }

  /** True when no method is configured: every caller is User:ANONYMOUS. */
  get anonymous(): boolean {
    return this.o.methods.length === 0;
  }

  /** Who sent the call, or why it is refused (a promise while a password is being checked). */
  authenticate(req: AuthRequest): AuthResult | Promise<AuthResult> {
    if (this.anonymous) return { principal: ANONYMOUS };
    if (req.authorization !== undefined) return this.password(req, req.authorization);
    if (this.o.methods.includes("mtls")) {
      const cn = commonName(req.peerCertificate);
      if (cn !== null) return { principal: `User:${cn}` };
      if (!this.o.methods.includes("password"))
        return refuse(
          "SASL_AUTHENTICATION_FAILED",
          "no client certificate: this listener authenticates callers by mTLS (auth.methods=mtls)",
        );
    }
    return refuse(
      "SASL_AUTHENTICATION_FAILED",
      `no credentials: send call metadata authorization: Basic base64(name:password)${this.o.methods.includes("mtls") ? " or a client certificate" : ""}`,
    );
  }

  /** Whether `password` is an authentication method here (Kafka's SASL mechanisms need it). */
  get passwords(): boolean {
    return this.o.methods.includes("password");
  }

  /** Whether `mtls` is an authentication method here (a client certificate names the caller). */
  get mtls(): boolean {
    return this.o.methods.includes("mtls");
  }

  private password(req: AuthRequest, authorization: string): AuthResult | Promise<AuthResult> {
    if (!this.o.methods.includes("password"))
      return refuse(
        "UNSUPPORTED_AUTH_SCHEME",
        "authorization: password authentication is off here (auth.methods=mtls): present a client certificate",
      );
    const parsed = parseBasic(authorization);
    if ("error" in parsed) return parsed;
    return this.checkPassword(parsed.name, parsed.password, req, "authorization: ");
  }

  /**
   * A name and password that arrived without an `authorization` header (Kafka's SASL PLAIN): the
   * same checks as a Basic password — password authentication on, TLS unless plaintext passwords
   * are allowed, the cache of verified logins, the failed-login rate limit, the same answer for an
   * unknown user and a wrong password.
   */
  authenticatePassword(name: string, password: string, req: Pick<AuthRequest, "host" | "tls">): AuthResult | Promise<AuthResult> {
    if (!this.o.methods.includes("password"))
      return refuse("UNSUPPORTED_AUTH_SCHEME", "password authentication is off here (auth.methods has no password)");
    return this.checkPassword(name, password, req, "");
  }

  /**
   * Spends one failed-login token of `host` for a login checked elsewhere (a SCRAM exchange):
   * the milliseconds until it may try again when it has none left (nothing spent), else 0.
   * `loginSucceeded` gives the token back.
   */
  beginLogin(host: string): number {
    const waitMs = this.takeWait(host);
    if (waitMs > 0) return waitMs;
    this.spend(host);
    return 0;
  }

  /** A login begun with `beginLogin` succeeded: its token goes back. */
  loginSucceeded(host: string): void {
    this.refund(host);
  }

  private checkPassword(
    name: string,
    password: string,
    req: Pick<AuthRequest, "host" | "tls">,
    field: string,
  ): AuthResult | Promise<AuthResult> {
    if (!req.tls && !this.o.allowPlaintextPasswords)
      return refuse(
        "PLAINTEXT_PASSWORD_REFUSED",
        `${field}a password is refused over a listener without TLS; connect with TLS (or set auth.allow.plaintext.passwords=true)`,
      );
    const credentials = this.o.credentials(name);
    const key = `${name}\u0000${createHash("sha256").update(password).digest("base64")}`;
    const seen = this.verified.get(key);
    if (seen !== undefined && credentials.some((c) => fingerprint(c) === seen)) {
      this.verified.delete(key);
      this.verified.set(key, seen);
      return { principal: `User:${name}` };
    }
    if (seen !== undefined) this.verified.delete(key);
    const waitMs = this.takeWait(req.host);
    if (waitMs > 0)
      return refuse("SASL_AUTHENTICATION_FAILED", `too many failed logins from ${req.host || "this address"}: retry in ${waitMs} ms`);
    const credential = credentials[0] ?? this.fake;
    // The attempt takes a token now (so concurrent attempts cannot exceed the burst); a success gives it back.
    this.spend(req.host);
    const decide = (ok: boolean): AuthResult => {
      if (ok && credentials.length > 0) {
        this.refund(req.host);
        this.remember(key, fingerprint(credential));
        return { principal: `User:${name}` };
      }
      return refuse("SASL_AUTHENTICATION_FAILED", "authentication failed: unknown user or wrong password");
    };
    const ok = this.o.verify(credential, password);
    return typeof ok === "boolean" ? decide(ok) : ok.then(decide, () => decide(false));
  }

  /** Milliseconds until `host` may try again (0: it may now). */
  private takeWait(host: string): number {
    const b = this.refill(host);
    if (!b || b.tokens >= 1) return 0;
    return Math.ceil(((1 - b.tokens) / this.limit.perSecond) * 1000);
  }

  private refill(host: string): Bucket | undefined {
    const b = this.buckets.get(host);
    if (!b) return undefined;
    const now = this.o.clock.nowMs();
    b.tokens = Math.min(this.limit.burst, b.tokens + (Math.max(0, now - b.atMs) / 1000) * this.limit.perSecond);
    b.atMs = now;
    return b;
  }

  private spend(host: string): void {
    const b = this.refill(host) ?? { tokens: this.limit.burst, atMs: this.o.clock.nowMs() };
    b.tokens = Math.max(0, b.tokens - 1);
    this.buckets.set(host, b);
    if (this.buckets.size > TRACKED_HOSTS_MAX) this.forgetFullBuckets();
  }

  private refund(host: string): void {
    const b = this.refill(host);
    if (b) b.tokens = Math.min(this.limit.burst, b.tokens + 1);
  }

  private forgetFullBuckets(): void {
    for (const [host] of this.buckets) {
      const b = this.refill(host);
      if (b && b.tokens >= this.limit.burst) this.buckets.delete(host);
    }
    // Still over: the oldest entries go (an attacker spraying addresses gains at most a reset).
    for (const [host] of this.buckets) {
      if (this.buckets.size <= TRACKED_HOSTS_MAX) break;
      this.buckets.delete(host);
    }
  }

  private remember(key: string, fp: string): void {
    this.verified.set(key, fp);
    if (this.verified.size > VERIFIED_CACHE_MAX) {
      const oldest = this.verified.keys().next();
      if (!oldest.done) this.verified.delete(oldest.value);
    }
  }
}

function refuse(
  name: "SASL_AUTHENTICATION_FAILED" | "UNSUPPORTED_AUTH_SCHEME" | "MALFORMED_CREDENTIALS" | "PLAINTEXT_PASSWORD_REFUSED",
  message: string,
): { readonly error: RillError } {
  return { error: rillError(name, message) };
}

/** What identifies one credential: a new password (or salt) gives another fingerprint. */
function fingerprint(c: ScramCredential): string {
  return `${c.mechanism}:${c.iterations}:${c.salt}:${c.storedKey}`;
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * Parses `Basic base64(name:password)`; the scheme is case-insensitive (RFC 7617), the name is
 * what precedes the first colon. Any other scheme is UNSUPPORTED_AUTH_SCHEME; a malformed value
 * MALFORMED_CREDENTIALS with what is wrong.
 */
export function parseBasic(value: string): { name: string; password: string } | { error: RillError } {
  if (value.length > AUTHORIZATION_CHARS_MAX)
    return refuse("MALFORMED_CREDENTIALS", `authorization: ${value.length} characters, more than ${AUTHORIZATION_CHARS_MAX}`);
  const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?: +(.*))?$/.exec(value.trim());
  if (!m) return refuse("MALFORMED_CREDENTIALS", "authorization: expected `Basic base64(name:password)`");
  const scheme = m[1] as string;
  const token = (m[2] ?? "").trim();
  if (scheme.toLowerCase() !== "basic")
    return refuse(
      "UNSUPPORTED_AUTH_SCHEME",
      `authorization: scheme ${scheme.slice(0, 32)} is not supported; send Basic base64(name:password)`,
    );
  if (token === "")
    return refuse("MALFORMED_CREDENTIALS", "authorization: Basic without credentials; expected Basic base64(name:password)");
  if (!BASE64.test(token) || token.length % 4 !== 0)
    return refuse("MALFORMED_CREDENTIALS", "authorization: the credentials after Basic are not valid base64");
  const bytes = Buffer.from(token, "base64");
  const text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  let decoded: string;
  try {
    decoded = text.decode(bytes);
  } catch {
    return refuse("MALFORMED_CREDENTIALS", "authorization: the decoded credentials are not UTF-8");
  }
  const colon = decoded.indexOf(":");
  if (colon < 0) return refuse("MALFORMED_CREDENTIALS", "authorization: the decoded credentials have no colon; expected name:password");
  const name = decoded.slice(0, colon);
  if (name === "") return refuse("MALFORMED_CREDENTIALS", "authorization: the user name before the colon is empty");
  if ([...name].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f))
    return refuse("MALFORMED_CREDENTIALS", "authorization: the user name holds a control character");
  return { name, password: decoded.slice(colon + 1) };
}

/** The certificate's subject CN (the first, if several), or null. */
export function commonName(cert: PeerCertificateLike | null | undefined): string | null {
  const cn = cert?.subject?.CN;
  const first = typeof cn === "string" ? cn : cn?.[0];
  return first && first.length > 0 ? first : null;
}

/** A credential no password matches, costing what a real one costs to check (4096 iterations, Kafka's minimum). */
function fakeCredential(random: Random): ScramCredential {
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => random.int(256))).toString("base64");
  return { mechanism: "SCRAM-SHA-256", salt: bytes(32), iterations: 4096, storedKey: bytes(32), serverKey: bytes(32) };
}
