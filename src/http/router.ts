/**
 * The mount point of the broker's HTTP listener (DESIGN.md "Observability and console"): what a
 * route is, what it is told about the request, and the few answers every route writes the same
 * way. The listener (server.ts) serves `/metrics`, `/healthz` and `/readyz` itself and offers
 * every other request to its routes in order; the first route that answers `true` has handled
 * it (written the whole response), and when none does the listener answers 404.
 *
 * The life of a request:
 * 1. The listener parses the URL and, when authentication is on (`auth.methods`), authenticates
 *    the request's `authorization: Basic base64(name:password)` header with the same
 *    Authenticator as the gRPC and Kafka listeners (the SCRAM users of the metadata log; an
 *    mTLS client certificate on an HTTPS listener). The outcome is `ctx.requester` — or null,
 *    with `ctx.authError` saying why (no header, wrong password, too many failed logins).
 *    `/metrics`, `/healthz` and `/readyz` never look at it.
 * 2. Each route decides what needs a requester: the console's static files and login page need
 *    none; every `/api/v1` call calls `requireRequester` first (401 when null) and then the
 *    service layer's ACL checks (src/service/authorize.ts `RequestAccess`) with the requester.
 * 3. A route throws: a RillError is answered with `sendError` (its catalog code, HTTP status
 *    from the catalog's gRPC status); anything else is a 500 and logged.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { GrpcStatus as S, type RillError, rillError } from "../base/errors.ts";
import type { Requester } from "../security/requester.ts";

/** What the listener tells a route about one request. */
export interface HttpContext {
  /** The request's URL, parsed (path and query), relative to `http://<host header>`. */
  readonly url: URL;
  /**
   * Who is calling: the authenticated principal, the client's address, clientId "". Without
   * authentication configured, `User:ANONYMOUS`. Null when authentication is on and the
   * request carries no valid credentials (see `authError`).
   */
  readonly requester: Requester | null;
  /** Why `requester` is null (an UNAUTHENTICATED catalog error); null otherwise. */
  readonly authError: RillError | null;
  /** True when `auth.methods` is set: callers must authenticate (the console shows its login page). */
  readonly authRequired: boolean;
  /** True when the connection is TLS (HTTPS). */
  readonly tls: boolean;
}

/**
 * A route: answers `true` once it has written the whole response to `res`, `false` to let the
 * next route try (it must then not have touched `res`). May throw (see the module comment).
 */
export type HttpRoute = (req: IncomingMessage, res: ServerResponse, ctx: HttpContext) => boolean | Promise<boolean>;

/** HTTP status of a catalog error, from its gRPC status (the mapping of grpc-gateway). */
export function httpStatusOf(e: RillError): number {
  switch (e.kind.grpc) {
    case S.OK:
      return 200;
    case S.INVALID_ARGUMENT:
    case S.FAILED_PRECONDITION:
    case S.OUT_OF_RANGE:
      return 400;
    case S.UNAUTHENTICATED:
      return 401;
    case S.PERMISSION_DENIED:
      return 403;
    case S.NOT_FOUND:
      return 404;
    case S.ALREADY_EXISTS:
    case S.ABORTED:
      return 409;
    case S.RESOURCE_EXHAUSTED:
      return 429;
    case S.CANCELLED:
      return 499;
    case S.UNIMPLEMENTED:
      return 501;
    case S.UNAVAILABLE:
      return 503;
    case S.DEADLINE_EXCEEDED:
      return 504;
    default:
      return 500;
  }
}

/** Writes `body` as JSON with `status` (and `headers`). */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": String(Buffer.byteLength(text)),
    "cache-control": "no-store",
    ...headers,
  });
  res.end(text);
}

/**
 * Writes a catalog error as JSON: `{"error": {"code": 3, "name": "INVALID_ARGUMENT", "message": "..."}}`
 * with the status of `httpStatusOf` (or `status` when given). A 401 carries no
 * `WWW-Authenticate` challenge unless `challenge` (a browser would show its own password prompt
 * over the console's login page).
 */
export function sendError(res: ServerResponse, e: RillError, status = httpStatusOf(e), challenge = false): void {
  sendJson(
    res,
    status,
    { error: { code: e.kind.code, name: e.kind.name, message: e.message, retriable: e.kind.retriable } },
    challenge && status === 401 ? { "www-authenticate": 'Basic realm="rill", charset="UTF-8"' } : {},
  );
}

/**
 * The requester of a request that needs one: `ctx.requester`, or — when it is null — the 401
 * answer already written (with `ctx.authError`) and null returned, so a route does
 * `const who = requireRequester(res, ctx); if (!who) return true;`.
 */
export function requireRequester(res: ServerResponse, ctx: HttpContext, challenge = false): Requester | null {
  if (ctx.requester) return ctx.requester;
  sendError(res, ctx.authError ?? rillError("SASL_AUTHENTICATION_FAILED", "authentication required"), 401, challenge);
  return null;
}
