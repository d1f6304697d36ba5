/**
 * The `/api/v1/` router: a table of paths, each with the methods it serves. A request is matched
 * by path first (404 naming the path when none matches), then by method (405 with `Allow`),
 * then it needs a requester (401 when authentication is on and the request has none), then the
 * endpoint runs — the ACL checks of src/service/authorize.ts first, as gRPC runs them. An
 * endpoint returns the JSON body of a 200 (or `created(body)` for a 201); anything it throws is
 * answered by `sendProblem` with its catalog code and the status the catalog maps it to.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { RillError } from "../../base/errors.ts";
import { anonymous } from "../../security/requester.ts";
import { type HttpContext, type HttpRoute, requireRequester, sendJson } from "../router.ts";
import type { ApiCall, RequestObserver } from "./deps.ts";
import { ApiProblem, badRequest, sendProblem } from "./http-io.ts";

/** The prefix of every API path. */
export const API_PREFIX = "/api/v1/";

/** An HTTP method the API serves. */
export type Method = "GET" | "POST" | "PATCH" | "DELETE";

/** A 201 answer. */
export class Created {
  constructor(readonly body: unknown) {}
}

/** Wraps a body answered with 201 Created. */
export const created = (body: unknown): Created => new Created(body);

/** One endpoint's handler: reads the request (body included) and answers its JSON body. */
export type Handler = (call: ApiCall, req: IncomingMessage) => unknown | Promise<unknown>;

/** A path of the API and the methods it serves. */
export interface Endpoint {
  /** The path as documented (`topics/{name}`): with the method, the `api` a request is counted under. */
  readonly name: string;
  /** The path after `/api/v1/`, anchored; capture groups are the parameters (URL-encoded). */
  readonly path: RegExp;
  readonly methods: Readonly<Partial<Record<Method, Handler>>>;
  /** Served without credentials too (the session endpoint says whether the caller is signed in). */
  readonly open?: true;
}

/** The route serving `endpoints` under `/api/v1/`, each request told to `observe`. */
export function apiRoute(endpoints: readonly Endpoint[], observe?: RequestObserver): HttpRoute {
  return async (req, res, ctx) => {
    const path = ctx.url.pathname;
    if (!path.startsWith(API_PREFIX) && path !== API_PREFIX.slice(0, -1)) return false;
    const started = performance.now();
    const outcome = await serve(endpoints, path.slice(API_PREFIX.length), req, res, ctx);
    observe?.(outcome.api, outcome.code, (performance.now() - started) / 1000);
    return true;
  };
}

/** Serves one request; answers what it was counted as. */
async function serve(
  endpoints: readonly Endpoint[],
  rest: string,
  req: IncomingMessage,
  res: ServerResponse,
  ctx: HttpContext,
): Promise<{ api: string; code: string }> {
  let api = "unknown";
  try {
    const found = match(endpoints, rest);
    if (!found) throw badRequest(`${ctx.url.pathname}: no such API path (see GET ${API_PREFIX})`, 404);
    const method = (req.method ?? "GET").toUpperCase();
    api = `${method} ${found.endpoint.name}`;
    const handler = found.endpoint.methods[method === "HEAD" ? "GET" : (method as Method)];
    if (!handler) {
      const allow = Object.keys(found.endpoint.methods).join(", ");
      throw badRequest(`${ctx.url.pathname}: method ${method} is not served here (allowed: ${allow})`, 405, { allow });
    }
    const call = callOf(found.endpoint, found.params, res, ctx);
    if (!call) return { api, code: ctx.authError?.kind.name ?? "SASL_AUTHENTICATION_FAILED" };
    const answer = await handler(call, req);
    if (answer instanceof Created) sendJson(res, 201, answer.body);
    else sendJson(res, 200, answer);
    return { api, code: "OK" };
  } catch (e) {
    if (res.headersSent) res.destroy();
    else sendProblem(res, e);
    return { api, code: e instanceof ApiProblem ? e.error.kind.name : RillError.from(e).kind.name };
  }
}

/** The call's caller: the requester, or (401 written, null answered) none unless the endpoint is open. */
function callOf(endpoint: Endpoint, params: string[], res: ServerResponse, ctx: HttpContext): ApiCall | null {
  const base = { params, query: ctx.url.searchParams, authRequired: ctx.authRequired };
  if (ctx.requester) return { ...base, who: ctx.requester, authenticated: true, authError: null };
  if (!endpoint.open) {
    requireRequester(res, ctx);
    return null;
  }
  return { ...base, who: anonymous(), authenticated: false, authError: ctx.authError?.message ?? "no credentials" };
}

function match(endpoints: readonly Endpoint[], rest: string): { endpoint: Endpoint; params: string[] } | null {
  for (const endpoint of endpoints) {
    const m = endpoint.path.exec(rest);
    if (!m) continue;
    const params = m.slice(1).map((p, i) => {
      try {
        return decodeURIComponent(p ?? "");
      } catch {
        throw badRequest(`path parameter ${i + 1}: "${p}" is not valid percent-encoding`);
      }
    });
    return { endpoint, params };
  }
  return null;
}
