/**
 * The broker: the runtime shell that wires storage, metadata, the replica manager and the gRPC
 * services together, with the real clock, timers, files and sockets. Everything it starts, it
 * stops in `close()`: stop taking calls, let in-flight ones finish (long-polls and streams are
 * woken and end), flush every log, close the metadata log, release the data directory.
 */
import * as crypto from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import { systemClock, type Clock } from "../base/clock.ts";
import { rillError } from "../base/errors.ts";
import type { Random } from "../base/random.ts";
import { defaultBrokerConfig, type BrokerConfig } from "../config/schema.ts";
import { AdminService } from "../gen/rill/v1/admin_service_pb.ts";
import { FetchService } from "../gen/rill/v1/fetch_service_pb.ts";
import { ProduceService } from "../gen/rill/v1/produce_service_pb.ts";
import { GroupService } from "../gen/rill/v1/group_service_pb.ts";
import { GroupRuntime } from "../coordinator/group-runtime.ts";
import { groupService } from "../rpc/group-service.ts";
import { LocalMetadataStore } from "../metadata/store.ts";
import { ReplicaManager, type Timers } from "../replication/replica-manager.ts";
import { adminService } from "../rpc/admin-service.ts";
import { fetchService } from "../rpc/fetch-service.ts";
import { addService } from "../rpc/grpc-service.ts";
import { produceService } from "../rpc/produce-service.ts";
import { addReflection } from "../rpc/reflection.ts";
import { createServer, defaultTransportConfig } from "../rpc/server-options.ts";
import { fetchServiceCodecs, produceServiceCodecs } from "../rpc/wire-codec.ts";
import { NodeFileSystem, type FileSystem } from "../storage/fs.ts";
import { LogManager } from "../storage/log-manager.ts";
import { startMetrics, type MetricsServer } from "./metrics.ts";

/** What a broker needs; everything but the data directory has a default. */
export interface BrokerOptions {
  readonly dataDir: string;
  /** HOST:PORT; port 0 picks a free one (see `address`). Default 127.0.0.1:50051. */
  readonly listen?: string;
  /** Broker settings (typed, already validated) over the defaults. */
  readonly config?: Partial<BrokerConfig>;
  readonly fs?: FileSystem;
  readonly clock?: Clock;
  /** Where the broker reports what it does; default: nothing. */
  readonly log?: BrokerLog;
  /** How often periodic work (flush.ms, retention, compaction) is checked. Default 100 ms. */
  readonly tickMs?: number;
  /** How long close() lets in-flight calls finish before cutting them. Default 5 s. */
  readonly shutdownGraceMs?: number;
}

/** The few log calls the broker makes (pino's signature). */
export interface BrokerLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const silent: BrokerLog = { info() {}, warn() {}, error() {} };

/** Services this broker serves, by full name (health and reflection list them). */
export const SERVICES = [AdminService.typeName, ProduceService.typeName, FetchService.typeName, GroupService.typeName];

const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** Randomness for ids and placement, from the OS. */
const osRandom: Random = {
  next: () => crypto.randomInt(0, 2 ** 48) / 2 ** 48,
  int: (n) => crypto.randomInt(0, Math.max(1, Math.min(n, 2 ** 48 - 1))),
};

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** A running broker. */
export class Broker {
  private closing: Promise<void> | null = null;

  private constructor(
    readonly config: Readonly<BrokerConfig>,
    readonly clusterId: string,
    private readonly server: grpc.Server,
    private readonly health: HealthImplementation,
    private readonly logs: LogManager,
    private readonly store: LocalMetadataStore,
    private readonly rm: ReplicaManager,
    private readonly ticker: ReturnType<typeof setInterval>,
    private readonly port: number,
    private readonly log: BrokerLog,
    private readonly graceMs: number,
    /** The Prometheus endpoint, when `metrics.port` >= 0. */
    readonly metrics: MetricsServer | null,
  ) {}

  /** Opens the data directory and starts serving. */
  static async start(opts: BrokerOptions): Promise<Broker> {
    const config: BrokerConfig = { ...defaultBrokerConfig, ...opts.config, dataDir: opts.dataDir, listen: opts.listen ?? opts.config?.listen ?? defaultBrokerConfig.listen };
    const fs = opts.fs ?? new NodeFileSystem();
    const clock = opts.clock ?? systemClock;
    const log = opts.log ?? silent;
    fs.mkdirp(config.dataDir);
    const logs = LogManager.open({
      fs,
      dataDir: config.dataDir,
      clock,
      topicConfig: () => undefined,
      tailCacheBytes: config.tailCacheBytes,
      retentionCheckIntervalMs: config.retentionCheckIntervalMs,
      cleanerBackoffMs: config.cleanerBackoffMs,
      cleanerEnable: config.cleanerEnable,
      producerIdExpirationMs: config.producerIdExpirationMs,
      pause: () => new Promise((resolve) => setImmediate(resolve)),
      pid: process.pid,
      isProcessAlive,
    });
    let store: LocalMetadataStore | null = null;
    try {
      store = LocalMetadataStore.open(fs, config.dataDir, clock);
      const clusterId = clusterIdOf(fs, config.dataDir, config.nodeId);
      const rm = new ReplicaManager(logs, store, clock, realTimers, config.nodeId);
      const groups = await GroupRuntime.start(rm, store, clock, osRandom, config.nodeId);
      store.onChange((c) => {
        if (c.records.some((r) => r.type === "partition" || r.type === "remove-topic")) groups.topicsChanged();
      });
      const transport = { ...defaultTransportConfig, receiveMessageBytesMax: config.requestMaxBytes, sendMessageBytesMax: config.requestMaxBytes };
      const server = createServer(transport);
      let address = config.listen;
      addService(server, AdminService, adminService({ rm, store, random: osRandom, config, clusterId, address: () => address }));
      addService(server, ProduceService, produceService(rm), produceServiceCodecs);
      addService(server, FetchService, fetchService(rm), fetchServiceCodecs);
      addService(server, GroupService, groupService(groups, rm, realTimers));
      const health = new HealthImplementation(Object.fromEntries(["", ...SERVICES].map((s) => [s, "SERVING" as const])));
      health.addToServer(server);
      addReflection(server, SERVICES);
      const port = await bind(server, config.listen);
      const metrics = config.metricsPort >= 0 ? await startMetrics(config.metricsPort, logs) : null;
      address = config.listen.replace(/:\d+$/, `:${port}`);
      const tickMs = opts.tickMs ?? 100;
      const ticker = setInterval(() => {
        try {
          groups.tick();
        } catch (e) {
          log.error({ err: e }, "group coordinator tick failed");
        }
        logs.tick(clock.nowMs()).catch((e: unknown) => log.error({ err: e }, "periodic storage work failed"));
      }, tickMs);
      ticker.unref?.();
      log.info({ address, dataDir: config.dataDir, nodeId: config.nodeId, clusterId, recovered: !logs.openedClean, ...(metrics ? { metrics: `http://127.0.0.1:${metrics.port}/metrics` } : {}) }, "broker started");
      return new Broker(config, clusterId, server, health, logs, store, rm, ticker, port, log, opts.shutdownGraceMs ?? 5000, metrics);
    } catch (e) {
      await store?.close().catch(() => {});
      await logs.close().catch(() => {});
      throw e;
    }
  }

  /** The HOST:PORT clients reach this broker at (with the real port when 0 was asked). */
  get address(): string {
    return this.config.listen.replace(/:\d+$/, `:${this.port}`);
  }

  /** Graceful shutdown; safe to call more than once. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.log.info({}, "broker shutting down");
    for (const s of ["", ...SERVICES]) this.health.setStatus(s, "NOT_SERVING");
    clearInterval(this.ticker);
    this.rm.close();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, this.graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    await this.metrics?.close();
    await this.logs.close();
    await this.store.close();
    this.log.info({}, "broker stopped");
  }
}

function bind(server: grpc.Server, listen: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(listen, grpc.ServerCredentials.createInsecure(), (err, port) => {
      if (err) reject(rillError("INVALID_CONFIG", `listen: cannot listen on ${listen}: ${err.message}`));
      else resolve(port);
    });
  });
}

/**
 * The cluster id, from `<dataDir>/meta.properties` (created on first start, as Kafka's): it ties
 * the data to its cluster and node.
 */
function clusterIdOf(fs: FileSystem, dataDir: string, nodeId: number): string {
  const path = fs.join(dataDir, "meta.properties");
  if (fs.exists(path)) {
    const props = Object.fromEntries(
      Buffer.from(fs.readFile(path))
        .toString("utf8")
        .split("\n")
        .filter((l) => l.includes("=") && !l.startsWith("#"))
        .map((l) => [l.slice(0, l.indexOf("=")).trim(), l.slice(l.indexOf("=") + 1).trim()]),
    );
    if (props["node.id"] !== undefined && Number(props["node.id"]) !== nodeId) {
      throw rillError("INVALID_CONFIG", `node.id: ${nodeId} does not match node.id=${props["node.id"]} in ${path}`);
    }
    if (props["cluster.id"]) return props["cluster.id"];
  }
  const id = crypto.randomBytes(16).toString("base64url");
  fs.writeFileAtomic(path, Buffer.from(`# written by rill on first start\nversion=1\ncluster.id=${id}\nnode.id=${nodeId}\n`));
  return id;
}
