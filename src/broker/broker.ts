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
import { defaultBrokerConfig, hasRole, quorumVoters, validateBrokerConfig, type BrokerConfig, type QuorumVoter } from "../config/schema.ts";
import { ControllerService } from "../gen/rill/v1/controller_service_pb.ts";
import { OFFSETS_TOPIC } from "../coordinator/group-runtime.ts";
import { snapshotRecords } from "../metadata/image.ts";
import { QuorumMetadataStore } from "../metadata/quorum-store.ts";
import { ObserverMetadataStore } from "../metadata/observer-store.ts";
import type { MetadataRecord } from "../metadata/records.ts";
import { controllerService } from "../rpc/controller-service.ts";
import { ControllerChannel } from "../rpc/controller-channel.ts";
import type { ControllerRoute } from "../rpc/forward.ts";
import { GrpcQuorumTransport } from "../rpc/quorum-transport.ts";
import { ReplicationService } from "../gen/rill/v1/replication_service_pb.ts";
import { grpcReplicaFetchTransport, replicationService } from "../rpc/replication-service.ts";
import { ReplicaFetcherManager } from "../replication/fetcher.ts";
import { BrokerLifecycle } from "./broker-lifecycle.ts";
import { ClusterController } from "./cluster-controller.ts";
import { AdminService } from "../gen/rill/v1/admin_service_pb.ts";
import { FetchService } from "../gen/rill/v1/fetch_service_pb.ts";
import { ProduceService } from "../gen/rill/v1/produce_service_pb.ts";
import { GroupService } from "../gen/rill/v1/group_service_pb.ts";
import { GroupRuntime } from "../coordinator/group-runtime.ts";
import { groupService } from "../rpc/group-service.ts";
import { LocalMetadataStore } from "../metadata/store.ts";
import { ReplicaManager } from "../replication/replica-manager.ts";
import { systemTimers } from "../base/timers.ts";
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
export const SERVICES = [
  AdminService.typeName,
  ProduceService.typeName,
  FetchService.typeName,
  GroupService.typeName,
  ControllerService.typeName,
  ReplicationService.typeName,
];

const realTimers = systemTimers;

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
    private readonly store: QuorumMetadataStore | ObserverMetadataStore,
    private readonly rm: ReplicaManager,
    private readonly cluster: {
      controller: ClusterController | null;
      channel: ControllerChannel;
      transport: GrpcQuorumTransport;
      lifecycle: BrokerLifecycle | null;
      voters: readonly QuorumVoter[];
      fetchers: ReplicaFetcherManager;
      isrTimer: ReturnType<typeof setInterval>;
    },
    private readonly ticker: ReturnType<typeof setInterval>,
    private readonly port: number,
    private readonly log: BrokerLog,
    private readonly graceMs: number,
    /** The Prometheus endpoint, when `metrics.port` >= 0. */
    readonly metrics: MetricsServer | null,
  ) {}

  /** Opens the data directory and starts serving. */
  static async start(opts: BrokerOptions): Promise<Broker> {
    const config: BrokerConfig = {
      ...defaultBrokerConfig,
      ...opts.config,
      dataDir: opts.dataDir,
      listen: opts.listen ?? opts.config?.listen ?? defaultBrokerConfig.listen,
    };
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
    let store: QuorumMetadataStore | ObserverMetadataStore | null = null;
    let transport: GrpcQuorumTransport | null = null;
    try {
      validateBrokerConfig(config);
      const voters = quorumVoters(config);
      const isVoter = hasRole(config, "controller");
      const clusterId = clusterIdOf(
        fs,
        config.dataDir,
        config.nodeId,
        config.clusterId || (config.controllerQuorumVoters === "" ? null : derivedClusterId(voters)),
      );
      const legacy = isVoter ? await legacyMetadata(fs, config.dataDir, clock, voters.length) : null;
      const peers = new Map(voters.filter((v) => v.id !== config.nodeId).map((v) => [v.id, v.address] as const));
      transport = new GrpcQuorumTransport({
        clusterId,
        nodeId: config.nodeId,
        peers,
        callTimeoutMs: config.electionTimeoutMs,
        onSnapshot: (to, ok) => store?.reportSnapshot(to, ok),
      });
      // The channel to the active controller; it asks the store, set just below, who leads.
      let leaderOf = (): number => 0;
      let leading = (): boolean => false;
      let localControl: ClusterController | null = null;
      const channel = new ControllerChannel({
        voters,
        local: {
          register: (r) => localControl!.register(r),
          heartbeat: (r) => localControl!.heartbeat(r),
          alterPartition: (n, e, p) => localControl!.alterPartition(n, e, p),
        },
        knownLeader: () => leaderOf(),
        isLocalLeader: () => localControl !== null && leading(),
        callTimeoutMs: Math.max(100, Math.min(5000, Math.floor(config.brokerSessionTimeoutMs / 3))),
      });
      store = isVoter
        ? QuorumMetadataStore.open({
            fs,
            dataDir: config.dataDir,
            nodeId: config.nodeId,
            voters: voters.map((v) => v.id),
            random: osRandom,
            transport,
            timers: realTimers,
            tickMs: config.raftHeartbeatIntervalMs,
            electionTicks: Math.max(2, Math.round(config.electionTimeoutMs / config.raftHeartbeatIntervalMs)),
            snapshotIntervalRecords: config.snapshotIntervalRecords,
            log: { info: (o, m) => log.info(o, m), warn: (o, m) => log.warn(o, m), error: (o, m) => log.error(o, m) },
          })
        : new ObserverMetadataStore({
            nodeId: config.nodeId,
            voters: voters.map((v) => v.id),
            timers: realTimers,
            maxWaitMs: 1000,
            log: { info: (o, m) => log.info(o, m), warn: (o, m) => log.warn(o, m), error: (o, m) => log.error(o, m) },
          });
      if (store instanceof ObserverMetadataStore)
        store.start((voter, after, maxWaitMs) => channel.fetchMetadata(clusterId, config.nodeId, voter, after, maxWaitMs));
      const quorum = store;
      leaderOf = () => quorum.leader;
      leading = () => quorum.isLeader;
      const rm = new ReplicaManager(logs, quorum, clock, realTimers, config.nodeId);
      const groups = GroupRuntime.start(rm, clock, osRandom, config.nodeId);
      quorum.onChange((c) => {
        if (c.snapshot || c.records.some((r) => r.type === "partition" || r.type === "partition-change" || r.type === "remove-topic")) {
          groups.syncShards();
          groups.topicsChanged();
        }
      });
      const incarnationId = crypto.randomUUID();
      const controller =
        quorum instanceof QuorumMetadataStore
          ? new ClusterController({
              store: quorum,
              clock,
              random: osRandom,
              clusterId,
              sessionTimeoutMs: config.brokerSessionTimeoutMs,
              offsetsReplicationFactor: Math.min(config.offsetsTopicReplicationFactor, voters.length),
              log,
              localNodeId: config.nodeId,
              localIncarnation: hasRole(config, "broker") ? incarnationId : null,
            })
          : null;
      localControl = controller;
      const route: ControllerRoute = {
        isActive: () => quorum.isLeader,
        leaderAddress: () => (quorum.isLeader ? null : channel.leaderAddress()),
        metadataOffset: () => quorum.image.offset,
        waitForOffset: (offset, ms) => quorum.waitForOffset(offset, ms).catch(() => {}),
      };
      const roles = config.processRoles.split(",").sort();
      let lifecycle: BrokerLifecycle | null = null;
      const transportCfg = {
        ...defaultTransportConfig,
        receiveMessageBytesMax: config.requestMaxBytes,
        sendMessageBytesMax: config.requestMaxBytes,
      };
      const server = createServer(transportCfg);
      let address = config.listen;
      addService(
        server,
        AdminService,
        adminService({
          rm,
          store: quorum,
          random: osRandom,
          config,
          clusterId,
          address: () => address,
          route,
          controllerId: () => quorum.leader || -1,
          voters,
          nodeState: () => {
            const st = quorum.status();
            return {
              roles,
              raftRole: quorum instanceof ObserverMetadataStore ? "observer" : st.role,
              raftTerm: st.term,
              commitOffset: st.commit,
              brokerState: lifecycle?.state ?? "",
            };
          },
        }),
      );
      addService(server, ProduceService, produceService(rm, route), produceServiceCodecs);
      addService(server, FetchService, fetchService(rm), fetchServiceCodecs);
      addService(server, GroupService, groupService(groups, rm, realTimers));
      addService(server, ReplicationService, replicationService(rm));
      addService(
        server,
        ControllerService,
        controllerService({
          clusterId,
          raft:
            quorum instanceof QuorumMetadataStore
              ? {
                  nodeId: config.nodeId,
                  voters: voters.map((v) => v.id),
                  receive: (m) => quorum.receive(m),
                  readCommitted: (after, maxBytes) => quorum.readCommitted(after, maxBytes),
                  waitNewer: (after, ms) => quorum.waitForOffset(after + 1, ms).catch(() => {}),
                  leader: () => quorum.leader,
                  commitOffset: () => quorum.status().commit,
                }
              : null,
          control: controller ?? {
            register: () => Promise.reject(rillError("NOT_CONTROLLER", "this node is a broker, not a controller; ask a voter")),
            heartbeat: () => Promise.reject(rillError("NOT_CONTROLLER", "this node is a broker, not a controller; ask a voter")),
            alterPartition: () => Promise.reject(rillError("NOT_CONTROLLER", "this node is a broker, not a controller; ask a voter")),
          },
        }),
      );
      const health = new HealthImplementation(Object.fromEntries(["", ...SERVICES].map((s) => [s, "SERVING" as const])));
      health.addToServer(server);
      addReflection(server, SERVICES);
      const port = await bind(server, config.listen);
      address = config.listen.replace(/:\d+$/, `:${port}`);
      if (legacy) {
        // Metadata written by a single node before the quorum existed: carry it over once.
        await quorum.waitUntil(() => quorum.isLeader, "the single voter to lead", 10_000);
        if (quorum.image.topics.size === 0) await quorum.commit(() => legacy.records);
        legacy.retire();
      }
      if (hasRole(config, "broker")) {
        lifecycle = new BrokerLifecycle({
          incarnationId,
          nodeId: config.nodeId,
          clusterId,
          address: () => config.advertisedAddress || address,
          rack: "",
          roles,
          controller: channel,
          metadataOffset: () => quorum.image.offset,
          heartbeatIntervalMs: config.brokerHeartbeatIntervalMs,
          log,
        });
        lifecycle.start();
        if (voters.length === 1) {
          // A single node serves only once it is a full broker of its own cluster.
          await lifecycle.whenUnfenced(10_000);
          await controller?.runChecks();
          await quorum.waitUntil(() => quorum.image.topics.has(OFFSETS_TOPIC), `${OFFSETS_TOPIC} to exist`, 10_000);
        }
      }
      const fetchers = new ReplicaFetcherManager(rm, {
        nodeId: config.nodeId,
        brokerEpoch: () => lifecycle?.brokerEpoch ?? -1,
        addressOf: (id) => quorum.image.brokers.get(id)?.address ?? null,
        transport: grpcReplicaFetchTransport,
        maxWaitMs: config.replicaFetchWaitMaxMs,
        maxBytes: 10 << 20,
        log,
        timers: realTimers,
      });
      const isrTimer = setInterval(
        () => void maintainIsr(rm, channel, config, () => lifecycle?.brokerEpoch ?? -1, log),
        Math.max(50, Math.min(1000, Math.floor(config.replicaLagTimeMaxMs / 4))),
      );
      isrTimer.unref?.();
      const metrics = config.metricsPort >= 0 ? await startMetrics(config.metricsPort, logs) : null;
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
      log.info(
        {
          address,
          dataDir: config.dataDir,
          nodeId: config.nodeId,
          roles,
          voters: voters.map((v) => `${v.id}@${v.address}`).join(","),
          clusterId,
          recovered: !logs.openedClean,
          ...(metrics ? { metrics: `http://127.0.0.1:${metrics.port}/metrics` } : {}),
        },
        "broker started",
      );
      return new Broker(
        config,
        clusterId,
        server,
        health,
        logs,
        quorum,
        rm,
        { controller, channel, transport, lifecycle, voters, fetchers, isrTimer },
        ticker,
        port,
        log,
        opts.shutdownGraceMs ?? 5000,
        metrics,
      );
    } catch (e) {
      transport?.close();
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
    const { controller, channel, transport, lifecycle, voters, fetchers, isrTimer } = this.cluster;
    // Streams and long-polls end first: consumers leave their groups while this broker still
    // coordinates them. Then leadership of partitions moves away, then the controller role.
    this.rm.close();
    await lifecycle?.shutdown(Math.min(this.graceMs, 5000));
    if (this.store.isLeader && voters.length > 1) {
      const next = voters.find((v) => v.id !== this.config.nodeId)!;
      if (this.store.transferLeadership(next.id) === null) {
        await this.store.waitUntil(() => !this.store.isLeader, "leadership to move", 2000).catch(() => {});
      }
    }
    clearInterval(this.ticker);
    clearInterval(isrTimer);
    fetchers.close();
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
    controller?.close();
    channel.close();
    transport.close();
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
 * the data to its cluster and node. `expected` (configured, or derived from the quorum) must
 * match what the data dir holds; a fresh single node picks a random id.
 */
function clusterIdOf(fs: FileSystem, dataDir: string, nodeId: number, expected: string | null): string {
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
    const stored = props["cluster.id"];
    if (stored) {
      if (expected !== null && stored !== expected) {
        throw rillError(
          "INCONSISTENT_CLUSTER_ID",
          `cluster.id: the data in ${dataDir} belongs to cluster ${stored}, not ${expected} (check controller.quorum.voters / cluster.id, or use another data.dir)`,
        );
      }
      return stored;
    }
  }
  const id = expected ?? crypto.randomBytes(16).toString("base64url");
  fs.writeFileAtomic(path, Buffer.from(`# written by rill on first start\nversion=1\ncluster.id=${id}\nnode.id=${nodeId}\n`));
  return id;
}

/** The cluster id every voter of a quorum computes alike when none is configured. */
function derivedClusterId(voters: readonly QuorumVoter[]): string {
  const canonical = [...voters]
    .sort((a, b) => a.id - b.id)
    .map((v) => `${v.id}@${v.address}`)
    .join(",");
  return crypto.createHash("sha256").update(`rill-cluster:${canonical}`).digest("base64url").slice(0, 22);
}

/**
 * Metadata of a data dir written before the Raft quorum (a local metadata log): its records,
 * to be committed once as the quorum's first change, and `retire` to rename the old log.
 */
async function legacyMetadata(
  fs: FileSystem,
  dataDir: string,
  clock: Clock,
  voterCount: number,
): Promise<{ records: MetadataRecord[]; retire: () => void } | null> {
  const dir = fs.join(dataDir, "metadata", "__cluster_metadata-0");
  if (!fs.exists(dir) || fs.exists(fs.join(dataDir, "metadata", "raft"))) return null;
  if (voterCount !== 1)
    throw rillError(
      "INVALID_CONFIG",
      `controller.quorum.voters: ${dir} holds single-node metadata; start it once as a single node to carry it over, or use a fresh data.dir`,
    );
  const old = LocalMetadataStore.open(fs, dataDir, clock);
  const records = snapshotRecords(old.image).filter((r) => r.type !== "broker");
  await old.close();
  return { records, retire: () => fs.rename(dir, `${dir}.migrated`) };
}

/**
 * Asks the controller for the ISR changes this broker's led partitions want (laggards out,
 * caught-up followers in). A refused or failed change is asked again on the next round.
 */
async function maintainIsr(
  rm: ReplicaManager,
  channel: ControllerChannel,
  config: BrokerConfig,
  brokerEpoch: () => number,
  log: BrokerLog,
): Promise<void> {
  if (rm.closed || brokerEpoch() < 0) return;
  const changes = rm.isrChanges(config.replicaLagTimeMaxMs);
  if (changes.length === 0) return;
  const release = (): void => {
    for (const c of changes) {
      const r = rm.replica(c.topic, c.partition);
      if (r) r.isrChangeInFlight = false;
    }
  };
  try {
    const res = await channel.alterPartition(config.nodeId, brokerEpoch(), changes);
    res.forEach((o, i) => {
      const c = changes[i]!;
      if (o.error) {
        log.warn({ topic: c.topic, partition: c.partition, newIsr: c.newIsr, err: o.error.message }, "ISR change refused");
        const r = rm.replica(c.topic, c.partition);
        if (r) r.isrChangeInFlight = false;
      } else {
        log.info({ topic: c.topic, partition: c.partition, isr: o.isr }, "ISR changed");
      }
    });
    release();
  } catch (e) {
    log.warn({ err: (e as Error).message }, "AlterPartition failed; retrying");
    release();
  }
}
