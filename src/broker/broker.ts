/**
 * The broker: the runtime shell that wires storage, metadata, the replica manager and the gRPC
 * services together, with the real clock, timers, files and sockets. Everything it starts, it
 * stops in `close()`: stop taking calls, let in-flight ones finish (long-polls and streams are
 * woken and end), flush every log, close the metadata log, release the data directory.
 *
 * `Broker.start` runs in stages, each a function that returns what the next needs:
 * open storage → identity → metadata (store, controller channel, controller) → replica manager
 * and group coordinators → RPC server → joining the cluster → replica fetchers and ISR
 * maintenance → metrics and the ticker. What a stage started is stopped again if a later one
 * fails. The stages themselves are in stages.ts.
 */
import type { Transactions } from "./transactions.ts";
import { type BrokerConfig, hasRole, validateBrokerConfig } from "../config/schema.ts";
import type { KafkaServer } from "../kafka/server.ts";
import { parseKafkaAddress } from "../kafka/deps.ts";
import { initCodecs } from "../protocol/compression.ts";
import { consoleRoutes } from "../http/console/console-routes.ts";
import type { HttpRoute } from "../http/router.ts";
import { requestMetricsOf } from "../service/request-metrics.ts";
import { InternalRpcServer } from "../rpc/internal-server.ts";
import { RpcServer, SERVED_SERVICES, type ServiceDeps } from "../rpc/server.ts";
import { Access } from "../service/access.ts";
import { RequestAccess } from "../service/authorize.ts";
import { QuotaThrottle } from "../service/quota-throttle.ts";
import type { LogManager } from "../storage/log-manager.ts";
import type { BrokerLifecycle } from "./broker-lifecycle.ts";
import { membershipOf } from "./membership.ts";
import type { HttpListener } from "../http/server.ts";
import { type Observability, startObservability } from "./observability.ts";
import { type Trust, trustOf } from "./security.ts";
import { certificatePrincipal, kafkaTls } from "../kafka/tls.ts";
import {
  type Background,
  type Data,
  type Identity,
  type Metadata,
  Opened,
  type Shell,
  type ShellOptions,
  handOverController,
  identify,
  joinCluster,
  logStarted,
  newLifecycle,
  openMetadata,
  openStorage,
  osRandom,
  serviceDeps,
  shellOf,
  startBackground,
  startData,
} from "./stages.ts";

export type { BrokerLog } from "./log.ts";

/** What a broker needs; everything but the data directory has a default. */
export interface BrokerOptions extends ShellOptions {
  /** How often periodic work (flush.ms, retention, compaction) is checked. Default 100 ms. */
  readonly tickMs?: number;
  /** How long close() lets in-flight calls finish before cutting them. Default 5 s. */
  readonly shutdownGraceMs?: number;
}

/** The services this broker serves, by full name (health and reflection list them). */
export const SERVICES: readonly string[] = SERVED_SERVICES;

/** Everything a running broker holds, for `close()`. */
interface Parts {
  readonly shell: Shell;
  readonly identity: Identity;
  readonly logs: LogManager;
  readonly meta: Metadata;
  readonly data: Data;
  /** The internal listener (`internal.listen`), if any. */
  readonly internal: InternalRpcServer | null;
  readonly rpc: RpcServer;
  /** The Kafka listener (`kafka.listen`), if any. */
  readonly kafka: KafkaServer | null;
  readonly lifecycle: BrokerLifecycle | null;
  readonly background: Background;
  /** The change log, metrics and HTTP listener. */
  readonly observability: Observability;
  readonly graceMs: number;
  /** The transaction coordinator and service (issue 17); null on a controller-only node. */
  readonly transactions?: Transactions | null;
}

/** A running broker. */
export class Broker {
  private closing: Promise<void> | null = null;
  /** Broker settings in effect. */
  readonly config: Readonly<BrokerConfig>;
  /** The cluster this broker belongs to. */
  readonly clusterId: string;
  /** The HTTP listener (/metrics, /healthz, /readyz, the console), when `http.listen` (or the deprecated `metrics.port`) is set. */
  readonly http: HttpListener | null;
  /** The same listener, by its old name (tests and tools that read `metrics.port`). */
  readonly metrics: HttpListener | null;

  private constructor(private readonly parts: Parts) {
    this.config = parts.shell.config;
    this.clusterId = parts.identity.clusterId;
    this.http = parts.observability.http;
    this.metrics = this.http;
  }

  /** Opens the data directory and starts serving. */
  static async start(opts: BrokerOptions): Promise<Broker> {
    await initCodecs(); // zstd's WebAssembly, before any batch is read or written
    const shell = shellOf(opts);
    const opened = new Opened();
    const logs = opened.add(openStorage(shell), (l) => l.close());
    try {
      validateBrokerConfig(shell.config);
      shell.tls.load();
      const identity = await identify(shell);
      const membership = membershipOf(shell.config, shell.log);
      const meta = openMetadata(shell, identity, opened, membership.signer);
      const data = startData(shell, logs, meta);
      const { config } = shell;
      const trust = trustOf(config, meta.store, osRandom);
      const rpc = opened.add(
        new RpcServer(
          config.listen,
          config.requestBytesMax,
          config.maxConnections,
          { listener: shell.tls.listener(), internal: shell.tls.internalChannel() },
          membership.server,
          trust.authenticate,
        ),
        (r) => r.shutdown(0),
      );
      const internal = membership.internal
        ? opened.add(
            new InternalRpcServer(
              config.internalListen,
              config.requestBytesMax,
              membership.internal,
              shell.tls.internalServer(),
              config.maxConnections,
            ),
            (r) => r.shutdown(0),
          )
        : null;
      let kafka: KafkaServer | null = null;
      const lifecycle = hasRole(config, "broker")
        ? opened.add(
            newLifecycle(shell, identity, meta, rpc, internal, () => kafka, logs),
            (l) => l.stop(),
          )
        : null;
      // In a cluster, act on no leadership until caught up with the cluster's metadata (see ReplicaManager.holdLeadership).
      if (lifecycle && identity.voters.length !== 1) holdLeadershipUntilUnfenced(data, lifecycle);
      const deps = { ...serviceDeps(shell, identity, meta, data, rpc, lifecycle), access: trust.access };
      rpc.register(deps);
      internal?.register(deps, rpc.clients);
      kafka = config.kafkaListen === "" ? null : opened.add(await kafkaServer(shell, deps, rpc, trust), (k) => k.close());
      await rpc.bind();
      await internal?.bind();
      await kafka?.bind();
      // Observability (issue 16): routes mounted on the HTTP listener (the console and its API).
      const metrics = requestMetricsOf(deps.replicas);
      const routes: HttpRoute[] =
        config.httpListen === "" && config.metricsPort < 0
          ? []
          : consoleRoutes({
              services: deps,
              clients: rpc.clients,
              traffic: () =>
                [...metrics.topics].map(([topic, t]) => ({
                  topic,
                  recordsIn: t.recordsIn,
                  bytesIn: t.bytesIn,
                  recordsOut: null,
                  bytesOut: t.bytesOut,
                })),
              observe: (api, code, seconds) => metrics.observeRequest(api, "http", code, seconds),
            });
      const observability = opened.add(
        await startObservability(shell, logs, meta, data, {
          rpc,
          lifecycle,
          authenticator: trust.authenticator,
          quotas: deps.quotas ?? null,
          routes,
        }),
        (o) => o.close(),
      );
      await joinCluster(identity, meta, lifecycle);
      const background = await startBackground(shell, logs, meta, data, lifecycle, opts.tickMs ?? 100, membership.signer);
      logStarted(shell, identity, logs, rpc, observability.http);
      const graceMs = opts.shutdownGraceMs ?? 5000;
      return new Broker({
        shell,
        identity,
        logs,
        meta,
        data,
        rpc,
        kafka,
        internal,
        lifecycle,
        background,
        observability,
        graceMs,
        transactions: (deps.transactions as Transactions | undefined) ?? null,
      });
    } catch (e) {
      await opened.closeAll();
      throw e;
    }
  }

  /** The HOST:PORT clients reach this broker at (with the real port when 0 was asked). */
  get address(): string {
    return this.parts.rpc.address;
  }

  /** The HOST:PORT of the Kafka listener (`kafka.listen`, bound), or null without one. */
  get kafkaAddress(): string | null {
    return this.parts.kafka?.address ?? null;
  }

  /** The HOST:PORT of the internal listener (`internal.listen`, bound), or null without one. */
  get internalAddress(): string | null {
    return this.parts.internal?.address ?? null;
  }

  /** Graceful shutdown; safe to call more than once. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const { shell, identity, logs, meta, data, rpc, kafka, internal, lifecycle, background, observability, graceMs } = this.parts;
    shell.log.info({}, "broker shutting down");
    rpc.stopServing();
    // Streams and long-polls end first: consumers leave their groups while this broker still
    // coordinates them. Then leadership of partitions moves away, then the controller role.
    data.rm.close();
    await kafka?.close();
    await lifecycle?.shutdown(Math.min(graceMs, 5000));
    await handOverController(meta.store, identity.voters, shell.config.nodeId);
    clearInterval(background.ticker);
    clearInterval(background.isrTimer);
    background.gcPacer?.stop();
    background.fetchers.close();
    await rpc.shutdown(graceMs);
    await internal?.shutdown(graceMs);
    await observability.close();
    meta.controller?.close();
    meta.channel.close();
    meta.transport?.close();
    await logs.close();
    await meta.store.close();
    shell.log.info({}, "broker stopped");
  }
}

/**
 * The Kafka listener over the same services as the gRPC server (`kafka.listen`), with the same
 * TLS files (`tls.*`) and the same trust: any `auth.methods` makes SASL required before other
 * requests, except for a connection whose client certificate names it (`mtls`).
 */
async function kafkaServer(shell: Shell, deps: ServiceDeps, rpc: RpcServer, trust: Trust): Promise<KafkaServer> {
  const { config, log } = shell;
  // Loaded only when configured: its code is about half of what a broker process loads, and a
  // full collection of the heap scans all of it (Bun: ~10 ms with it, measured by bench/README.md's
  // "The 100k records/s tail and the collector").
  const { KafkaServer } = await import("../kafka/server.ts");
  const secure = kafkaTls(config, { onError: (e) => log.warn({ err: e.message }, "kafka listener: new TLS files not taken") });
  const server: KafkaServer = new KafkaServer(
    {
      listen: config.kafkaListen,
      requestBytesMax: config.requestBytesMax,
      maxConnections: config.maxConnections,
      ...(secure ? { tls: secure.options, rotate: (apply) => secure.watch(apply) } : {}),
      saslRequired: trust.authenticator !== null,
      ...(trust.authenticator?.mtls ? { principalOf: certificatePrincipal } : {}),
    },
    {
      services: deps,
      clients: rpc.clients,
      access: deps.access ?? new RequestAccess(Access.allowAll()),
      quotas: deps.quotas ?? new QuotaThrottle(() => deps.replicas.image, { nowMs: () => deps.replicas.nowMs() }, deps.timers),
      config,
      nodeId: config.nodeId,
      advertised: () => parseKafkaAddress(config.kafkaAdvertisedAddress || server.address),
      log,
      authenticator: trust.authenticator ?? undefined,
    },
  );
  return server;
}

/**
 * From a restart until the controller unfences this broker (which it does once the broker has
 * caught up with the metadata log), the replica manager acts as no partition's leader and the
 * group coordinators load no shard: a stale image may name this broker leader of partitions
 * moved while it was down (a producer that followed it there got OUT_OF_ORDER_SEQUENCE_NUMBER,
 * test/integration/kafka-failover.test.ts). The same from the moment a heartbeat finds the
 * running broker fenced (its session expired while it was cut off) until it is unfenced again,
 * which the controller does only once its image has reached the fencing: until then the image
 * can still name it leader of what the fencing moved, and its group coordinators answered
 * FetchOffsets from a shard the new coordinator had moved past (cluster-sim seed 6223).
 */
function holdLeadershipUntilUnfenced(data: Data, lifecycle: BrokerLifecycle): void {
  let holding = false;
  const hold = (): void => {
    if (holding || data.rm.closed) return;
    holding = true;
    data.rm.holdLeadership();
    data.groups.syncShards();
    const timer = setInterval(() => {
      if (data.rm.closed) return clearInterval(timer);
      if (lifecycle.state !== "running") return;
      clearInterval(timer);
      holding = false;
      data.rm.releaseLeadership();
      data.groups.syncShards();
    }, 50);
    timer.unref?.();
  };
  hold();
  lifecycle.onLeftRunning(hold);
}
