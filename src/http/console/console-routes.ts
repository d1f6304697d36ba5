/**
 * The web console's routes on the broker's HTTP listener: the JSON API under `/api/v1/` and the
 * single-page app at `/` (its script and style under `/console/`).
 *
 * The life of a console visit: the browser loads `/` (no authentication needed for the page, its
 * script or its style), the script asks `/api/v1/session`; when authentication is on and the
 * browser has no credentials yet, the API answers 401 and the app shows its login page, which
 * keeps the name and password for the tab (sessionStorage) and sends them as
 * `authorization: Basic …` on every API call — checked by the listener with the broker's
 * Authenticator, then by the same ACLs as gRPC.
 */
import type { ServerResponse } from "node:http";
import { listenerPorts } from "../../rpc/listener-ports.ts";
import { Access } from "../../service/access.ts";
import { RequestAccess } from "../../service/authorize.ts";
import { GroupsService } from "../../service/groups.ts";
import { apiRoute } from "../api/api-router.ts";
import type { ApiContext, ConsoleDeps } from "../api/deps.ts";
import { endpoints } from "../api/endpoints.ts";
import { groupsLag } from "../api/groups.ts";
import { badRequest, sendProblem } from "../api/http-io.ts";
import { logTraffic, TrafficHistory } from "../api/traffic.ts";
import type { HttpRoute } from "../router.ts";
import { ConsoleAssets, INDEX_HTML } from "./assets.ts";

export type { ConsoleDeps } from "../api/deps.ts";

/** Default sampling interval of the traffic and lag history. */
export const HISTORY_INTERVAL_MS_DEFAULT = 5000;

/** The console's security headers: only this origin's script and style, no framing. */
const PAGE_HEADERS = {
  "content-security-policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-cache",
};

function send(res: ServerResponse, type: string, body: string, head: boolean): void {
  res.writeHead(200, { ...PAGE_HEADERS, "content-type": type, "content-length": String(Buffer.byteLength(body)) });
  res.end(head ? undefined : body);
}

/** The route of the app's page and files. */
function pageRoute(assets: ConsoleAssets): HttpRoute {
  return async (req, res, ctx) => {
    const path = ctx.url.pathname;
    const file =
      path === "/" || path === "/index.html" ? "html" : path === "/console/app.js" ? "js" : path === "/console/app.css" ? "css" : null;
    if (file === null) return false;
    const method = req.method ?? "GET";
    if (method !== "GET" && method !== "HEAD") {
      sendProblem(res, badRequest(`${path}: method ${method} is not served here (allowed: GET, HEAD)`, 405, { allow: "GET, HEAD" }));
      return true;
    }
    const head = method === "HEAD";
    if (file === "html") {
      send(res, "text/html; charset=utf-8", INDEX_HTML, head);
      return true;
    }
    const bundle = await assets.get();
    if (file === "js") send(res, "text/javascript; charset=utf-8", bundle.js, head);
    else send(res, "text/css; charset=utf-8", bundle.css, head);
    return true;
  };
}

/**
 * The console's routes over the broker's services (see `ConsoleDeps`). Starts sampling the
 * traffic and lag history; it stops, and the API's own clients close, when the broker's replica
 * manager closes.
 */
export function consoleRoutes(deps: ConsoleDeps): HttpRoute[] {
  const s = deps.services;
  const ports = listenerPorts({ ...s.admin, ...(deps.clients ? { clients: deps.clients } : {}) });
  const groups = new GroupsService(s.groups, s.replicas);
  const history = new TrafficHistory(
    deps.traffic ?? logTraffic(s.replicas),
    groupsLag(groups),
    deps.historyIntervalMs ?? HISTORY_INTERVAL_MS_DEFAULT,
  );
  history.start(deps.timers ?? s.timers, () => s.replicas.nowMs());
  s.replicas.onClose(() => {
    history.stop();
    ports.close();
  });
  const ctx: ApiContext = {
    rm: s.replicas,
    ports,
    groups,
    access: s.access ?? new RequestAccess(Access.allowAll()),
    history,
    fetchMemory: s.fetchMemory,
  };
  return [apiRoute(endpoints(ctx), deps.observe), pageRoute(new ConsoleAssets())];
}
