/**
 * The broker's HTTP listener (`http.listen`, DESIGN.md "Observability and console"):
 *
 *   GET /metrics   Prometheus text of the broker's registry (never authenticated)
 *   GET /healthz   200 while the process serves, 503 once it shuts down (never authenticated)
 *   GET /readyz    200 when the node is ready — registered with the controller, caught up with
 *                  the metadata and unfenced — else 503 with the reason (never authenticated)
 *   anything else  offered to the mounted routes in order (router.ts: the console and its
 *                  /api/v1), with the requester authenticated as on every listener; 404 when no
 *                  route takes it
 *
 * With `tls.cert.file` the listener serves HTTPS with the client listener's certificate (and asks
 * for client certificates as `tls.client.auth` says), so passwords are not sent in plaintext.
 *
 * Without authentication configured, a listener on an address other than loopback serves only
 * the three endpoints above unless `allow.anonymous.remote=true` (protected mode, as the gRPC
 * listener): anyone reaching it could otherwise use the console as User:ANONYMOUS.
 */
import * as http from "node:http";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import type { PemWatcher } from "../protocol/pem-watcher.ts";
import type { PeerCertificateLike } from "../security/authenticator.ts";
import { RillError, rillError } from "../base/errors.ts";
import type { Authenticator } from "../security/authenticator.ts";
import { ANONYMOUS, type Requester } from "../security/requester.ts";
import { type HttpContext, type HttpRoute, sendError, sendJson } from "./router.ts";

/** What the node says about its own health. */
export interface HealthState {
  /** False once the node shuts down. */
  readonly live: boolean;
  /** Null when ready; else why not (e.g. "fenced by the controller"). */
  readonly notReady: string | null;
}

/** The metrics the listener serves (a prom-client Registry has this shape). */
export interface MetricsSource {
  readonly contentType: string;
  metrics(): Promise<string>;
}

/** Where the listener reports what went wrong (pino's signature). */
export interface HttpLog {
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** What the listener is built from. */
export interface HttpListenerOptions {
  /** HOST:PORT; port 0 picks a free one. */
  readonly listen: string;
  readonly metrics: MetricsSource;
  readonly health: () => HealthState;
  /** Mounted after the built-in endpoints, tried in order (router.ts). */
  readonly routes?: readonly HttpRoute[];
  /** Who a request comes from (auth.methods); default: everyone is User:ANONYMOUS. */
  readonly authenticator?: Authenticator | null;
  /**
   * Whether `routes` are served: false on a non-loopback address without authentication unless
   * allow.anonymous.remote (see the module comment). Default true.
   */
  readonly routesAllowed?: boolean;
  /**
   * HTTPS (`tls.cert.file`): the certificate, key and CA, re-read when they change (the
   * listener's context is swapped for new connections); `clientAuth` as `tls.client.auth`
   * (`request`/`require` ask for a client certificate of the CA: mTLS callers). None: plain HTTP.
   */
  readonly tls?: { readonly pem: PemWatcher; readonly clientAuth: "none" | "request" | "require" } | undefined;
  /** Connections open at once; more wait in the kernel's backlog. Default 256. */
  readonly connectionsMax?: number;
  readonly log?: HttpLog;
}

/** Paths served without authentication by the listener itself. */
export const OPEN_PATHS: readonly string[] = ["/metrics", "/healthz", "/readyz"];

/** A running HTTP listener. */
export class HttpListener {
  private open = 0;
  private closing = false;

  private constructor(
    private readonly server: http.Server,
    private readonly o: HttpListenerOptions,
  ) {}

  /** Binds `o.listen`; INVALID_CONFIG naming `http.listen` when the address cannot be bound. */
  static async start(o: HttpListenerOptions): Promise<HttpListener> {
    const { host, port } = splitHostPort(o.listen);
    const server = o.tls ? await httpsServer(o.tls) : http.createServer();
    const listener = new HttpListener(server, o);
    server.maxConnections = o.connectionsMax ?? 256;
    server.on("connection", (socket) => {
      listener.open++;
      socket.once("close", () => listener.open--);
    });
    server.on("request", (req, res) => void listener.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once("error", (e) => reject(rillError("INVALID_CONFIG", `http.listen: cannot listen on ${o.listen}: ${e.message}`)));
      server.listen(port, host, () => resolve());
    });
    return listener;
  }

  /** The port actually bound. */
  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** HOST:PORT with the port actually bound. */
  get address(): string {
    return this.o.listen.replace(/:\d+$/, `:${this.port}`);
  }

  /** Connections open now (`rill_connections{listener="http"}`). */
  get connections(): number {
    return this.open;
  }

  /** Stops taking connections and closes the idle ones; resolves when all are closed. */
  close(): Promise<void> {
    this.closing = true;
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
    });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? "/", "http://rill.invalid");
      if (await this.builtIn(url.pathname, req, res)) return;
      const routes = this.o.routesAllowed === false ? [] : (this.o.routes ?? []);
      if (routes.length > 0) {
        const ctx = await this.context(url, req);
        for (const route of routes) if (await route(req, res, ctx)) return;
      }
      sendJson(res, 404, { error: { code: 404, name: "NOT_FOUND", message: `no such path: ${url.pathname}` } });
    } catch (e) {
      this.fail(res, e);
    }
  }

  /** /metrics, /healthz, /readyz; false for any other path. */
  private async builtIn(path: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<boolean> {
    if (!OPEN_PATHS.includes(path)) return false;
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end(`${req.method} not allowed on ${path}: use GET\n`);
      return true;
    }
    if (path === "/metrics") {
      const body = await this.o.metrics.metrics();
      res.writeHead(200, { "content-type": this.o.metrics.contentType }).end(req.method === "HEAD" ? undefined : body);
      return true;
    }
    const h = this.o.health();
    const live = h.live && !this.closing;
    if (path === "/healthz") {
      sendJson(res, live ? 200 : 503, { status: live ? "ok" : "shutting down" });
      return true;
    }
    const why = !live ? "shutting down" : h.notReady;
    sendJson(res, why === null ? 200 : 503, why === null ? { status: "ready" } : { status: "not ready", reason: why });
    return true;
  }

  /** The request's context: its URL and requester (authenticated when auth.methods is set). */
  private async context(url: URL, req: http.IncomingMessage): Promise<HttpContext> {
    const host = hostOf(req.socket.remoteAddress ?? "");
    const tls = this.o.tls !== undefined;
    const auth = this.o.authenticator;
    if (!auth || auth.anonymous)
      return { url, requester: { principal: ANONYMOUS, host, clientId: "" }, authError: null, authRequired: false, tls };
    const socket = req.socket as TLSSocket;
    const peerCertificate = tls && socket.authorized ? (socket.getPeerCertificate() as PeerCertificateLike) : null;
    const result = await auth.authenticate({ authorization: req.headers.authorization, host, tls, peerCertificate });
    if ("error" in result) return { url, requester: null, authError: result.error, authRequired: true, tls };
    const requester: Requester = { principal: result.principal, host, clientId: "" };
    return { url, requester, authError: null, authRequired: true, tls };
  }

  private fail(res: http.ServerResponse, e: unknown): void {
    if (e instanceof RillError) {
      if (!res.headersSent) sendError(res, e);
      else res.destroy();
      return;
    }
    this.o.log?.error({ err: e instanceof Error ? e.message : String(e) }, "HTTP request failed");
    if (!res.headersSent) sendJson(res, 500, { error: { code: -1, name: "UNKNOWN_SERVER_ERROR", message: "internal error" } });
    else res.destroy();
  }
}

/** An HTTPS server over `tls.pem`'s first set, its context swapped whenever the files change. */
async function httpsServer(tls: NonNullable<HttpListenerOptions["tls"]>): Promise<https.Server> {
  let key: Buffer | null = null;
  let cert: Buffer | null = null;
  let ca: Buffer | null = null;
  let server: https.Server | null = null;
  let stopWatching = (): void => {};
  const context = () => ({ key: key!, cert: cert!, ...(ca ? { ca } : {}) });
  await new Promise<void>((resolve) => {
    const ready = (): void => {
      if (key === null || (tls.clientAuth !== "none" && ca === null)) return;
      if (server) server.setSecureContext(context());
      else resolve();
    };
    const onIdentity = (id: { privateKey: Buffer; certificate: Buffer } | null): void => {
      if (!id) return;
      [key, cert] = [id.privateKey, id.certificate];
      ready();
    };
    const onCa = (update: { caCertificate: Buffer } | null): void => {
      ca = update?.caCertificate ?? null;
      ready();
    };
    tls.pem.addIdentityCertificateListener(onIdentity);
    tls.pem.addCaCertificateListener(onCa);
    stopWatching = () => {
      tls.pem.removeIdentityCertificateListener(onIdentity);
      tls.pem.removeCaCertificateListener(onCa);
    };
  });
  server = https.createServer({
    ...context(),
    requestCert: tls.clientAuth !== "none",
    rejectUnauthorized: tls.clientAuth === "require",
  });
  server.once("close", () => stopWatching());
  return server;
}

/** HOST and PORT of `HOST:PORT` (`[v6]:PORT` too). */
export function splitHostPort(hostPort: string): { host: string; port: number } {
  const colon = hostPort.lastIndexOf(":");
  const host = hostPort.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
  return { host, port: Number(hostPort.slice(colon + 1)) };
}

/** The client's IP address: an IPv4 address mapped into IPv6 is written as IPv4. */
function hostOf(remote: string): string {
  return remote.startsWith("::ffff:") ? remote.slice(7) : remote;
}
