/**
 * The broker's observability stage (DESIGN.md "Observability and console"), started once the
 * gRPC listener is bound and before the node joins its cluster (so /readyz answers while it
 * registers):
 *
 * - the change log: one info line per metadata change and group-membership change (log.ts);
 * - the metrics registry: storage and limits (metrics.ts `storageRegistry`), requests and traffic
 *   (`requestMetricsOnScrape`), cluster state and consumer groups (`clusterMetricsOnScrape`);
 * - the HTTP listener on `http.listen` (src/http/server.ts) serving them with /healthz, /readyz
 *   and the mounted routes (the console). `metrics.port` is the deprecated way to ask for it:
 *   read as 127.0.0.1:<port> when `http.listen` is empty, with a warning.
 */
import { type BrokerConfig, hasRole, isLoopbackListen } from "../config/schema.ts";
import type { HttpRoute } from "../http/router.ts";
import { type HealthState, HttpListener } from "../http/server.ts";
import { leaderOffsetsVia } from "../rpc/leader-offsets.ts";
import type { RpcServer } from "../rpc/server.ts";
import type { Authenticator } from "../security/authenticator.ts";
import type { QuotaThrottle } from "../service/quota-throttle.ts";
import { requestMetricsOf } from "../service/request-metrics.ts";
import type { LogManager } from "../storage/log-manager.ts";
import type { BrokerLifecycle } from "./broker-lifecycle.ts";
import { PemWatcher } from "../protocol/pem-watcher.ts";
import { type IsrCounters, groupChangeLogger, logMetadataChanges } from "./log.ts";
import { clusterMetricsOnScrape, requestMetricsOnScrape, storageRegistry } from "./metrics.ts";
import type { Data, Metadata, Shell } from "./stages.ts";

/** What the stage started. */
export interface Observability {
  /** The HTTP listener, when `http.listen` (or the deprecated `metrics.port`) asks for one. */
  readonly http: HttpListener | null;
  /** Stops the listener and the change log. */
  close(): Promise<void>;
}

/** The address the HTTP listener binds: `http.listen`, else 127.0.0.1:`metrics.port` (deprecated), else none. */
export function httpAddress(config: Pick<BrokerConfig, "httpListen" | "metricsPort">, warn: (msg: string) => void): string | null {
  if (config.metricsPort >= 0 && config.httpListen !== "") {
    warn(`metrics.port is deprecated and ignored: http.listen (${config.httpListen}) serves /metrics`);
    return config.httpListen;
  }
  if (config.httpListen !== "") return config.httpListen;
  if (config.metricsPort < 0) return null;
  warn(`metrics.port is deprecated: set http.listen=127.0.0.1:${config.metricsPort} instead`);
  return `127.0.0.1:${config.metricsPort}`;
}

/** Readiness of the node (see /readyz in src/http/server.ts). */
export function healthOf(lifecycle: BrokerLifecycle | null, meta: Metadata): () => HealthState {
  return () => {
    if (!lifecycle) return { live: true, notReady: meta.store.leader > 0 ? null : "no active controller known yet" };
    switch (lifecycle.state) {
      case "running":
        return { live: true, notReady: null };
      case "registering":
        return { live: true, notReady: "registering with the controller" };
      case "fenced":
        return { live: true, notReady: "fenced by the controller (catching up with the metadata)" };
      default:
        return { live: false, notReady: "shutting down" };
    }
  };
}

/**
 * HTTPS with the client listener's files when `tls.cert.file` is set (certificate, key, and the CA
 * of client certificates for `tls.client.auth`), re-read when they change.
 */
function httpTls(config: BrokerConfig, log: Shell["log"]): NonNullable<Parameters<typeof HttpListener.start>[0]["tls"]> | undefined {
  if (config.tlsCertFile === "") return undefined;
  const pem = new PemWatcher({
    cert: { file: config.tlsCertFile },
    key: { file: config.tlsKeyFile },
    ca: config.tlsCaFile === "" ? undefined : { file: config.tlsCaFile },
    names: { cert: "tls.cert.file", key: "tls.key.file", ca: "tls.ca.file" },
    onError: (e) => log.warn({ err: e.message, listener: "http" }, "changed TLS files not taken; the previous certificates stay in use"),
  });
  return { pem, clientAuth: config.tlsClientAuth };
}

/** What the stage is built from, besides the earlier stages' results. */
export interface ObservabilityInputs {
  readonly rpc: RpcServer;
  readonly lifecycle: BrokerLifecycle | null;
  /** The client listeners' authenticator (auth.methods); null: everyone is User:ANONYMOUS. */
  readonly authenticator: Authenticator | null;
  readonly quotas: QuotaThrottle | null;
  /** Mounted on the HTTP listener after /metrics, /healthz and /readyz (the console and its API). */
  readonly routes: readonly HttpRoute[];
}

/** Starts the change log, the metrics and the HTTP listener (see the module comment). */
export async function startObservability(
  shell: Shell,
  logs: LogManager,
  meta: Metadata,
  data: Data,
  inputs: ObservabilityInputs,
): Promise<Observability> {
  const { config, log } = shell;
  const isr: IsrCounters = { shrinks: 0, expands: 0 };
  const traffic = requestMetricsOf(data.rm);
  const stops: Array<() => unknown> = [
    logMetadataChanges(meta.store, log, config.nodeId, isr),
    data.groups.onWrite(groupChangeLogger(log)),
    meta.store.onChange((c) => {
      for (const r of c.records) if (r.type === "remove-topic") traffic.forgetTopic(r.name);
    }),
  ];
  traffic.countConnections("grpc", () => inputs.rpc.connections.open);
  const address = httpAddress(config, (msg) => log.warn({ key: "metrics.port" }, msg));
  if (address === null) return { http: null, close: async () => stops.forEach((s) => s()) };
  traffic.enabled = true;
  const limits = { connections: inputs.rpc.connections, partitionsMax: shell.partitions.max };
  const { exposition: registry, stop } = storageRegistry(logs, data.rm, limits, data.fetchMemory.budget);
  stops.push(stop);
  requestMetricsOnScrape(registry, traffic, inputs.quotas);
  clusterMetricsOnScrape(registry, {
    nodeId: config.nodeId,
    rm: data.rm,
    groups: data.groups,
    store: meta.store,
    voter: hasRole(config, "controller"),
    isr,
    leaderOffsets: leaderOffsetsVia(data.rm, inputs.rpc.clients),
  });
  const anonymousRemote = config.authMethods.length === 0 && !config.allowAnonymousRemote && !isLoopbackListen(address);
  if (anonymousRemote && inputs.routes.length > 0)
    log.warn(
      { key: "http.listen", address },
      "http.listen is reachable from other machines without auth.methods: only /metrics, /healthz and /readyz are served (set auth.methods, or allow.anonymous.remote=true, for the console)",
    );
  let http: HttpListener;
  try {
    http = await HttpListener.start({
      listen: address,
      metrics: registry,
      health: healthOf(inputs.lifecycle, meta),
      routes: inputs.routes,
      authenticator: inputs.authenticator,
      routesAllowed: !anonymousRemote,
      tls: httpTls(config, log),
      connectionsMax: config.maxConnections,
      log,
    });
  } catch (e) {
    traffic.enabled = false;
    stops.forEach((s) => s());
    throw e;
  }
  traffic.countConnections("http", () => http.connections);
  return {
    http,
    close: async () => {
      stops.forEach((s) => s());
      traffic.enabled = false;
      await http.close();
    },
  };
}
