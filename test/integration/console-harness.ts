/**
 * A real broker with the console mounted, for the console's tests: `Broker.start` as the
 * broker runs it, its `ServiceDeps` (the ones the gRPC services are built from) taken as
 * `RpcServer.register` receives them, and a node:http listener that hands each request to
 * `consoleRoutes` with the HttpContext of src/http/router.ts — the requester authenticated by
 * the broker's Authenticator (SCRAM users of the metadata image) when `auth.methods` is set.
 *
 * Until the broker mounts the console on its own `http.listen` (src/http/server.ts), this is
 * where the two meet in tests; once it does, `startConsoleBroker` can ask the broker for its
 * HTTP address instead.
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { systemClock } from "../../src/base/clock.ts";
import { rillError } from "../../src/base/errors.ts";
import { Broker } from "../../src/broker/broker.ts";
import { credentialsOf } from "../../src/broker/security.ts";
import { osRandom } from "../../src/broker/stages.ts";
import type { BrokerConfig } from "../../src/config/schema.ts";
import { consoleRoutes } from "../../src/http/console/console-routes.ts";
import { sendJson, type HttpContext, type HttpRoute } from "../../src/http/router.ts";
import { RpcServer, type ServiceDeps } from "../../src/rpc/server.ts";
import { Authenticator } from "../../src/security/authenticator.ts";
import { ANONYMOUS } from "../../src/security/requester.ts";
import { verifyPasswordAsync } from "../../src/security/scram.ts";

/** A broker with the console. */
export interface ConsoleBroker {
  readonly broker: Broker;
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** Every API request as the console's `observe` was told of it: [api, code]. */
  readonly observed: Array<[string, string]>;
  close(): Promise<void>;
}

/** Starts a broker in `dataDir` with the console on a free port of 127.0.0.1. */
export async function startConsoleBroker(
  dataDir: string,
  config: Partial<BrokerConfig> = {},
  historyIntervalMs = 5000,
): Promise<ConsoleBroker> {
  const [b] = await startConsoleBrokers([{ dataDir, config: { listen: "127.0.0.1:0", ...config } }], historyIntervalMs);
  return b!;
}

/**
 * Starts brokers at once (the nodes of one cluster: each config with its own `listen`), each
 * with the console. Their `ServiceDeps` are told apart by the listen address `register` sees.
 */
export async function startConsoleBrokers(
  nodes: readonly { dataDir: string; config: Partial<BrokerConfig> & { listen: string } }[],
  historyIntervalMs = 5000,
): Promise<ConsoleBroker[]> {
  const deps = new Map<string, ServiceDeps>();
  const register = RpcServer.prototype.register;
  RpcServer.prototype.register = function (this: RpcServer, d: ServiceDeps) {
    deps.set(this.address, d);
    return register.call(this, d);
  };
  let brokers: Broker[];
  try {
    brokers = await Promise.all(nodes.map((n) => Broker.start({ dataDir: n.dataDir, listen: n.config.listen, config: n.config })));
  } finally {
    RpcServer.prototype.register = register;
  }
  return Promise.all(
    brokers.map((broker, i) => {
      const services = deps.get(nodes[i]!.config.listen);
      if (!services) throw new Error(`broker ${i + 1} registered no services`);
      return mount(broker, services, historyIntervalMs);
    }),
  );
}

async function mount(broker: Broker, services: ServiceDeps, historyIntervalMs: number): Promise<ConsoleBroker> {
  const observed: Array<[string, string]> = [];
  const routes = consoleRoutes({ services, historyIntervalMs, observe: (api, code) => observed.push([api, code]) });
  const authenticator =
    broker.config.authMethods.length === 0
      ? null
      : new Authenticator({
          methods: broker.config.authMethods,
          allowPlaintextPasswords: broker.config.authAllowPlaintextPasswords,
          clock: systemClock,
          random: osRandom,
          credentials: (user) => credentialsOf(services.replicas.image, user),
          verify: verifyPasswordAsync,
        });
  const server = http.createServer((req, res) => void serve(routes, authenticator, req, res));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    broker,
    url: `http://127.0.0.1:${port}`,
    observed,
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await broker.close();
    },
  };
}

async function serve(routes: readonly HttpRoute[], auth: Authenticator | null, req: http.IncomingMessage, res: http.ServerResponse) {
  const url = new URL(req.url ?? "/", "http://rill.invalid");
  const host = req.socket.remoteAddress ?? "";
  let ctx: HttpContext = { url, requester: { principal: ANONYMOUS, host, clientId: "" }, authError: null, authRequired: false, tls: false };
  if (auth) {
    const r = await auth.authenticate({ authorization: req.headers.authorization, host, tls: false, peerCertificate: null });
    ctx =
      "error" in r
        ? { url, requester: null, authError: r.error, authRequired: true, tls: false }
        : { url, requester: { principal: r.principal, host, clientId: "" }, authError: null, authRequired: true, tls: false };
  }
  try {
    for (const route of routes) if (await route(req, res, ctx)) return;
    sendJson(res, 404, { error: { code: 404, name: "NOT_FOUND", message: `no such path: ${url.pathname}` } });
  } catch (e) {
    if (!res.headersSent) sendJson(res, 500, { error: { message: rillError("UNKNOWN_SERVER_ERROR", String(e)).message } });
  }
}

/** A JSON call: status, body (parsed) and headers. */
// biome-ignore lint/suspicious/noExplicitAny: the tests read answers field by field
type Json = any;

export async function call(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Json; headers: Headers }> {
  const init: RequestInit = { method, headers: { ...(body !== undefined ? { "content-type": "application/json" } : {}), ...headers } };
  if (body !== undefined) init.body = typeof body === "string" ? body : JSON.stringify(body);
  const res = await fetch(`${base}${path}`, init);
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: res.status, body: parsed, headers: res.headers };
}
