/**
 * The stages of `Broker.start`, in order; each returns what the next needs:
 *
 *   shellOf → openStorage → identify → openMetadata (openVoter | openObserver) → startData →
 *   RpcServer + newLifecycle → serviceDeps → joinCluster → startBackground → logStarted
 *
 * `Opened` remembers how to close what a stage opened, so a failed start closes it again.
 * Two pairs of parts call each other, each pair built in one function: a voter's Raft
 * transport reports snapshots to the store built right after it; an observer's store fetches
 * through the controller channel, which asks the store who leads (the store starts once the
 * channel exists).
 */
import { QuotaThrottle } from "../service/quota-throttle.ts";
import * as crypto from "node:crypto";
import { type Clock, systemClock } from "../base/clock.ts";
import { rillError } from "../base/errors.ts";
import type { Random } from "../base/random.ts";
import { MemoryBudget } from "../base/memory-budget.ts";
import { systemTimers } from "../base/timers.ts";
import { type BrokerConfig, defaultBrokerConfig, hasRole, type QuorumVoter, quorumVoters } from "../config/schema.ts";
import { GroupRuntime, OFFSETS_TOPIC } from "../coordinator/group-runtime.ts";
import { startTransactions } from "./transactions.ts";
import { ObserverMetadataStore } from "../metadata/observer-store.ts";
import { type QuorumLog, QuorumMetadataStore } from "../metadata/quorum-store.ts";
import type { MetadataChange } from "../metadata/store.ts";
import { ReplicaFetcherManager } from "../replication/fetcher.ts";
import { ReplicationThrottle } from "../replication/throttle.ts";
import { ReplicaManager } from "../replication/replica-manager.ts";
import { ControllerChannel } from "../rpc/controller-channel.ts";
import type { BrokerControl, RaftEndpoint } from "../rpc/controller-service.ts";
import { type ControllerRoute, peerAddress } from "../rpc/forward.ts";
import { GrpcQuorumTransport } from "../rpc/quorum-transport.ts";
import { grpcReplicaFetchTransportWith } from "../rpc/replication-service.ts";
import type { MemberSigner } from "../security/member-auth.ts";
import type { RpcServer, ServiceDeps } from "../rpc/server.ts";
import { BrokerTls } from "../rpc/tls.ts";
import type { FetchMemory } from "../service/fetch.ts";
import { DiskFailureWatch } from "../storage/disk-failure.ts";
import { type FileSystem, NodeFileSystem } from "../storage/fs.ts";
import { LogManager } from "../storage/log-manager.ts";
import { BrokerLifecycle } from "./broker-lifecycle.ts";
import { bootId, isProcessAlive, openFileLimit, type PartitionLimit, partitionLimit, processStartTime } from "./process-info.ts";
import { ClusterController } from "./cluster-controller.ts";
import { loadBootstrapUsers } from "./bootstrap-users.ts";
import { clusterIdOf, derivedClusterId, directoryIdOf, type LegacyMetadata, legacyMetadata } from "./identity.ts";
import { type BrokerLog, silentLog } from "./log.ts";
import { logCorruptReads } from "./metrics.ts";
import { isrCheckIntervalMs, maintainIsr, runPeriodicWork } from "./periodic.ts";
import { limitV8HeapGrowth, type RunningGcPacer, startGcPacer } from "./gc-pacer.ts";

/** What the shell is made from; everything but the data directory has a default. */
export interface ShellOptions {
  readonly dataDir: string;
  /** HOST:PORT; port 0 picks a free one. Default 127.0.0.1:50051. */
  readonly listen?: string;
  /** Broker settings (typed, already validated) over the defaults. */
  readonly config?: Partial<BrokerConfig>;
  readonly fs?: FileSystem;
  readonly clock?: Clock;
  /** Where the broker reports what it does; default: nothing. */
  readonly log?: BrokerLog;
  /**
   * Told once of the data directory's first disk failure (ENOSPC, EIO, ...;
   * storage/disk-failure.ts), after which the broker writes nothing more. Default: log it and
   * halt the process (exit code 1), as Kafka halts a broker whose only log directory failed; a
   * supervisor restarts it once the disk is fixed, and it recovers as after a crash.
   */
  readonly onDiskFailure?: (e: Error) => void;
}

/** Randomness for ids and placement, from the OS. */
export const osRandom: Random = {
  next: () => crypto.randomInt(0, 2 ** 48) / 2 ** 48,
  int: (n) => crypto.randomInt(0, Math.max(1, Math.min(n, 2 ** 48 - 1))),
};

/** The shell's own pieces, resolved from the options. */
export interface Shell {
  readonly config: BrokerConfig;
  readonly fs: FileSystem;
  readonly clock: Clock;
  readonly log: BrokerLog;
  /** `max.partitions` as the open-file limit lowers it (process-info.ts `partitionLimit`). */
  readonly partitions: PartitionLimit;
  /** Credentials of the listeners and of the clients of other nodes (`tls.*`, `internal.tls.*`), made on first use. */
  readonly tls: BrokerTls;
}

/** Who this node is in its cluster. */
export interface Identity {
  readonly clusterId: string;
  readonly voters: readonly QuorumVoter[];
  /** Sorted `process.roles`. */
  readonly roles: string[];
  /** Random id of this process run (the controller tells restarts apart by it). */
  readonly incarnationId: string;
  /** Single-node metadata to carry into the quorum, on a voter whose data dir holds some. */
  readonly legacy: LegacyMetadata | null;
  /** The data directory's id (meta.properties `directory.id`), a controller's identity in the voter set (issue 21). */
  readonly directoryId?: string;
}

/**
 * The metadata side: the store (a voter's Raft quorum, or a broker's copy pulled from the
 * voters), the way to the active controller, and — on a voter — the controller runtime and the
 * Raft transport.
 */
export interface Metadata {
  readonly store: QuorumMetadataStore | ObserverMetadataStore;
  readonly channel: ControllerChannel;
  readonly controller: ClusterController | null;
  readonly transport: GrpcQuorumTransport | null;
}

/** What serves data: the local partitions and the group coordinators. */
export interface Data {
  readonly rm: ReplicaManager;
  readonly groups: GroupRuntime;
  /** fetch.memory.max.bytes: what Fetch responses and Subscribe messages hold while sent. */
  readonly fetchMemory: FetchMemory;
}

/** The background work of a running broker. */
export interface Background {
  readonly fetchers: ReplicaFetcherManager;
  readonly isrTimer: ReturnType<typeof setInterval>;
  readonly ticker: ReturnType<typeof setInterval>;
  /** Garbage collection paced by buffer memory (Bun), or null. */
  readonly gcPacer: RunningGcPacer | null;
}

/** Closers of what a failed start already opened, run newest first. */
export class Opened {
  private readonly closers: Array<() => unknown> = [];

  /** Remembers how to close something just opened; returns it. */
  add<T>(thing: T, close: (t: T) => unknown): T {
    this.closers.push(() => close(thing));
    return thing;
  }

  /** Closes everything, newest first, ignoring failures (the start's own error is what counts). */
  async closeAll(): Promise<void> {
    for (const close of this.closers.reverse())
      await Promise.resolve()
        .then(close)
        .catch(() => {});
  }
}

/** The configuration over the defaults, and the real clock, files and log unless given. */
export function shellOf(opts: ShellOptions): Shell {
  const config: BrokerConfig = {
    ...defaultBrokerConfig,
    ...opts.config,
    dataDir: opts.dataDir,
    listen: opts.listen ?? opts.config?.listen ?? defaultBrokerConfig.listen,
  };
  const log = opts.log ?? silentLog;
  const onDiskFailure =
    opts.onDiskFailure ??
    ((e: Error) => {
      log.error({ err: e.message, dataDir: config.dataDir }, "the data directory's disk failed: halting (restart once it is fixed)");
      process.exit(1);
    });
  return {
    config,
    fs: new DiskFailureWatch(opts.fs ?? new NodeFileSystem(), onDiskFailure),
    clock: opts.clock ?? systemClock,
    log,
    partitions: partitionLimit(config, openFileLimit()),
    tls: new BrokerTls(config, {
      onError: (e) => log.warn({ err: e.message }, "changed TLS files not taken; the previous certificates stay in use"),
      onReload: () => log.info({}, "TLS files reloaded"),
    }),
  };
}

/**
 * Opens (creating if needed) the data directory's partition logs, recovering after a crash;
 * idle segments share a pool of `log.file.handles.max` descriptors. A directory holding more
 * partitions than `max.partitions` allows is opened (the pool keeps it within the open-file
 * limit) with a warning: new partitions are refused until it is below.
 */
export function openStorage({ config, fs, clock, log, partitions }: Shell): LogManager {
  fs.mkdirp(config.dataDir);
  const logs = LogManager.open({
    fs,
    dataDir: config.dataDir,
    clock,
    topicConfig: () => undefined,
    tailCacheBytes: config.tailCacheBytes,
    tailCacheTotalBytes: config.tailCacheTotalBytes,
    retentionCheckIntervalMs: config.retentionCheckIntervalMs,
    cleanerBackoffMs: config.cleanerBackoffMs,
    cleanerEnable: config.cleanerEnable,
    producerIdExpirationMs: config.producerIdExpirationMs,
    pause: () => new Promise((resolve) => setImmediate(resolve)),
    pid: process.pid,
    isProcessAlive,
    processStartTime,
    fileHandlesMax: config.logFileHandlesMax,
    bootId: bootId(),
  });
  if (logs.partitionCount > partitions.max)
    log.warn(
      { partitions: logs.partitionCount, maxPartitions: partitions.max },
      `data directory holds more partitions than max.partitions (${partitions.why})`,
    );
  return logs;
}

/** The cluster id (checked against the data dir), the voters, the roles, and legacy metadata. */
export async function identify({ config, fs, clock }: Shell): Promise<Identity> {
  const voters = quorumVoters(config);
  const expected = config.clusterId || (config.controllerQuorumVoters === "" ? null : derivedClusterId(voters));
  const clusterId = clusterIdOf(fs, config.dataDir, config.nodeId, expected);
  const legacy = hasRole(config, "controller") ? await legacyMetadata(fs, config.dataDir, clock, voters.length) : null;
  const directoryId = directoryIdOf(fs, config.dataDir);
  return { clusterId, voters, roles: config.processRoles.split(",").sort(), incarnationId: crypto.randomUUID(), legacy, directoryId };
}

/** The metadata side of a voter or of a broker-only node (see `Metadata`). */
export function openMetadata(shell: Shell, identity: Identity, opened: Opened, signer?: MemberSigner): Metadata {
  return hasRole(shell.config, "controller") ? openVoter(shell, identity, opened, signer) : openObserver(shell, identity, opened, signer);
}

/** How long a call to the controller may take: a third of the broker session, within 100 ms..5 s. */
function controllerCallTimeoutMs(config: BrokerConfig): number {
  return Math.max(100, Math.min(5000, Math.floor(config.brokerSessionTimeoutMs / 3)));
}

function quorumLog(log: BrokerLog): QuorumLog {
  return { info: (o, m) => log.info(o, m), warn: (o, m) => log.warn(o, m), error: (o, m) => log.error(o, m) };
}

/**
 * A voter: the Raft quorum store, the controller runtime over it, and the channel that calls
 * the local controller while it leads. The transport tells the store how a snapshot it sent
 * fared, so it names the store built right after it (called only once the store sends).
 */
function openVoter({ config, fs, clock, log, tls }: Shell, identity: Identity, opened: Opened, signer?: MemberSigner): Metadata {
  const { voters, clusterId } = identity;
  const transport: GrpcQuorumTransport = opened.add(
    new GrpcQuorumTransport({
      clusterId,
      nodeId: config.nodeId,
      peers: new Map(voters.filter((v) => v.id !== config.nodeId).map((v) => [v.id, v.address] as const)),
      callTimeoutMs: config.electionTimeoutMs,
      credentials: tls.internalChannel(),
      onSnapshot: (to, ok) => store.reportSnapshot(to, ok),
      signer,
      // dynamic controller quorum (issue 21): voters added since, and observers, by their registration
      peerAddress: (id) => registeredAddress(store, id),
      directoryId: identity.directoryId ?? "",
    }),
    (t) => t.close(),
  );
  const store = opened.add(
    QuorumMetadataStore.open({
      fs,
      dataDir: config.dataDir,
      nodeId: config.nodeId,
      voters: voters.map((v) => v.id),
      random: osRandom,
      transport,
      timers: systemTimers,
      tickMs: config.raftHeartbeatIntervalMs,
      electionTicks: Math.max(2, Math.round(config.electionTimeoutMs / config.raftHeartbeatIntervalMs)),
      snapshotIntervalRecords: config.snapshotIntervalRecords,
      log: quorumLog(log),
      directoryId: identity.directoryId ?? "",
    }),
    (s) => s.close(),
  );
  const controller = opened.add(
    new ClusterController({
      store,
      clock,
      random: osRandom,
      clusterId,
      sessionTimeoutMs: config.brokerSessionTimeoutMs,
      offsetsReplicationFactor: Math.min(config.offsetsTopicReplicationFactor, voters.length),
      txnStateReplicationFactor: Math.min(config.transactionStateLogReplicationFactor, voters.length),
      log,
      localNodeId: config.nodeId,
      localIncarnation: hasRole(config, "broker") ? identity.incarnationId : null,
      bootstrapUsers: loadBootstrapUsers(config),
      eligibleLeaderReplicas: config.eligibleLeaderReplicasEnable,
    }),
    (c) => c.close(),
  );
  const channel = opened.add(
    new ControllerChannel({
      voters,
      local: controller,
      knownLeader: () => store.leader,
      isLocalLeader: () => store.isLeader,
      callTimeoutMs: controllerCallTimeoutMs(config),
      credentials: tls.internalChannel(),
      signer,
      moreVoters: () => registeredControllers(store),
    }),
    (c) => c.close(),
  );
  return { store, channel, controller, transport };
}

/**
 * A broker-only node (a KRaft observer): the store follows the voters' log through the channel,
 * and the channel asks the store who leads — so the store is built first and started once the
 * channel exists.
 */
function openObserver({ config, log, tls }: Shell, identity: Identity, opened: Opened, signer?: MemberSigner): Metadata {
  const { voters, clusterId } = identity;
  const store = opened.add(
    new ObserverMetadataStore({
      nodeId: config.nodeId,
      voters: voters.map((v) => v.id),
      timers: systemTimers,
      maxWaitMs: 1000,
      log: quorumLog(log),
    }),
    (s) => s.close(),
  );
  const channel = opened.add(
    new ControllerChannel({
      voters,
      local: null,
      knownLeader: () => store.leader,
      isLocalLeader: () => false,
      callTimeoutMs: controllerCallTimeoutMs(config),
      credentials: tls.internalChannel(),
      signer,
      moreVoters: () => registeredControllers(store),
    }),
    (c) => c.close(),
  );
  store.start((voter, after, maxWaitMs) => channel.fetchMetadata(clusterId, config.nodeId, voter, after, maxWaitMs));
  return { store, channel, controller: null, transport: null };
}

/** The replica manager over the logs and the group coordinators over it, kept in step with metadata. */
export function startData({ config, clock }: Shell, logs: LogManager, meta: Metadata): Data {
  const rm = new ReplicaManager(
    logs,
    meta.store,
    clock,
    systemTimers,
    config.nodeId,
    new ReplicationThrottle(clock, config.leaderReplicationThrottledRate), // reassignment (issue 21)
  );
  rm.readReplicaSelector = config.replicaSelector;
  const groups = GroupRuntime.start(rm, clock, osRandom, config.nodeId, {
    initialRebalanceDelayMs: config.groupInitialRebalanceDelayMs,
    // A large __consumer_offsets partition loads in slices, other requests served between them.
    defer: (fn) => setImmediate(fn),
  });
  const fetchMemory = {
    budget: new MemoryBudget(config.fetchMemoryBytesMax, systemTimers),
    responseBytesMax: config.requestBytesMax,
    responseDataBytesMax: config.fetchResponseBytesMax,
  };
  meta.store.onChange((c) => {
    if (movesPartitions(c)) {
      groups.syncShards();
      groups.topicsChanged();
    }
  });
  return { rm, groups, fetchMemory };
}

/** Whether a metadata change can move leaders or change topics (the coordinators then follow). */
function movesPartitions(c: MetadataChange): boolean {
  return c.snapshot === true || c.records.some((r) => r.type === "partition" || r.type === "partition-change" || r.type === "remove-topic");
}

/** Registration and heartbeats to the controller (not started yet: the server binds first). */
export function newLifecycle(
  { config, log, partitions }: Shell,
  identity: Identity,
  meta: Metadata,
  rpc: RpcServer,
  internal?: { readonly address: string } | null,
  kafka?: () => { readonly address: string } | null,
  logs?: Pick<LogManager, "uncleanShutdown" | "previousIncarnationId" | "recordRegistration">,
): BrokerLifecycle {
  return new BrokerLifecycle({
    incarnationId: identity.incarnationId,
    nodeId: config.nodeId,
    clusterId: identity.clusterId,
    address: () => config.advertisedAddress || rpc.address,
    internalAddress: () => (internal ? config.internalAdvertisedAddress || internal.address : ""),
    // The Kafka listener is built after the lifecycle but bound before the registration.
    kafkaAddress: () => {
      const k = kafka?.() ?? null;
      return k ? config.kafkaAdvertisedAddress || k.address : "";
    },
    rack: config.brokerRack,
    roles: identity.roles,
    maxPartitions: partitions.max,
    controller: meta.channel,
    metadataOffset: () => meta.store.image.offset,
    heartbeatIntervalMs: config.brokerHeartbeatIntervalMs,
    log,
    uncleanShutdown: logs?.uncleanShutdown ?? false,
    previousIncarnationId: logs?.previousIncarnationId ?? null,
    ...(logs ? { onRegistered: (id: string) => logs.recordRegistration(id) } : {}),
  });
}

/** What the RPC services are built from. */
export function serviceDeps(
  shell: Shell,
  identity: Identity,
  meta: Metadata,
  data: Data,
  rpc: RpcServer,
  lifecycle: BrokerLifecycle | null,
): ServiceDeps {
  const { config, partitions } = shell;
  const { store, channel, controller } = meta;
  const route: ControllerRoute = {
    isActive: () => store.isLeader,
    leaderAddress: () => (store.isLeader ? null : channel.leaderAddress()),
    metadataOffset: () => store.image.offset,
    waitForOffset: (offset, ms) => store.waitForOffset(offset, ms).catch(() => {}),
  };
  return {
    admin: {
      rm: data.rm,
      store,
      random: osRandom,
      config,
      clusterId: identity.clusterId,
      address: () => rpc.address,
      route,
      controllerId: () => store.leader || -1,
      voters: identity.voters,
      quorum: store instanceof QuorumMetadataStore ? store : null,
      partitionLimits: () => (hasRole(config, "broker") ? new Map([[config.nodeId, partitions]]) : new Map()),
      nodeState: () => {
        const st = store.status();
        return {
          roles: identity.roles,
          raftRole: store instanceof ObserverMetadataStore || !st.isVoter ? "observer" : st.role,
          raftTerm: st.term,
          commitOffset: st.commit,
          brokerState: lifecycle?.state ?? "",
        };
      },
    },
    replicas: data.rm,
    fetchMemory: data.fetchMemory,
    route,
    produceChecks: { validation: config.produceValidation, decompressedBytesMax: config.requestBytesMax },
    producerIdMetadataWaitMs: config.producerIdMetadataWaitMs,
    groups: data.groups,
    timers: systemTimers,
    // client quotas (issue 13)
    quotas: new QuotaThrottle(() => data.rm.image, { nowMs: () => data.rm.nowMs() }, systemTimers, {
      samples: config.quotaWindowNum,
      sampleMs: config.quotaWindowSizeSeconds * 1000,
    }),
    controller: {
      clusterId: identity.clusterId,
      raft: store instanceof QuorumMetadataStore ? raftEndpoint(store, config.nodeId, identity.voters) : null,
      control: controller ?? notAController,
    },
    // transactions (issue 17)
    transactions: hasRole(config, "broker")
      ? startTransactions(shell, data.rm, data.groups, (fn) => store.onChange(fn), route, rpc.clients)
      : undefined,
  };
}

/** Where a registered node is reached (issue 21: controllers beyond the configured voters). */
function registeredAddress(
  store: { image: { brokers: ReadonlyMap<number, { address: string; internalAddress?: string | undefined }> } },
  id: number,
): string | undefined {
  const b = store.image.brokers.get(id);
  return b === undefined ? undefined : peerAddress(b);
}

/** Every registered node with the controller role, as a possible active controller (issue 21). */
function registeredControllers(store: QuorumMetadataStore | ObserverMetadataStore): QuorumVoter[] {
  const out: QuorumVoter[] = [];
  for (const [id, b] of store.image.brokers) if (b.roles.includes("controller")) out.push({ id, address: peerAddress(b) });
  return out;
}

/** A voter's Raft side as the controller service delivers to it. */
function raftEndpoint(store: QuorumMetadataStore, nodeId: number, voters: readonly QuorumVoter[]): RaftEndpoint {
  return {
    nodeId,
    voters: voters.map((v) => v.id),
    checkPeer: (from, directoryId) => store.checkPeer(from, directoryId),
    receive: (m) => store.receive(m),
    readCommitted: (after, maxBytes) => store.readCommitted(after, maxBytes),
    waitNewer: (after, ms) => store.waitForOffset(after + 1, ms).catch(() => {}),
    leader: () => store.leader,
    commitOffset: () => store.status().commit,
  };
}

/** The broker lifecycle calls on a node without the controller role. */
const notAController: BrokerControl = {
  register: () => Promise.reject(rillError("NOT_CONTROLLER", "this node is a broker, not a controller; ask a voter")),
  heartbeat: () => Promise.reject(rillError("NOT_CONTROLLER", "this node is a broker, not a controller; ask a voter")),
  alterPartition: () => Promise.reject(rillError("NOT_CONTROLLER", "this node is a broker, not a controller; ask a voter")),
};

/**
 * Carries single-node metadata into the quorum, then registers with the controller. A single
 * node serves only once it is a full broker of its own cluster: unfenced, with
 * `__consumer_offsets` created.
 */
export async function joinCluster(identity: Identity, meta: Metadata, lifecycle: BrokerLifecycle | null): Promise<void> {
  const { store, controller } = meta;
  if (identity.legacy) {
    // Metadata written by a single node before the quorum existed: carry it over once.
    const legacy = identity.legacy;
    await store.waitUntil(() => store.isLeader, "the single voter to lead", 10_000);
    if (store.image.topics.size === 0) await store.commit(() => legacy.records);
    legacy.retire();
  }
  if (!lifecycle) return;
  lifecycle.start();
  if (identity.voters.length !== 1) return;
  await lifecycle.whenUnfenced(10_000);
  await controller?.runChecks();
  await store.waitUntil(() => store.image.topics.has(OFFSETS_TOPIC), `${OFFSETS_TOPIC} to exist`, 10_000);
}

/** Replica fetchers, ISR maintenance and the ticker of periodic work (metrics: observability.ts). */
export async function startBackground(
  { config, clock, log, tls }: Shell,
  logs: LogManager,
  meta: Metadata,
  data: Data,
  lifecycle: BrokerLifecycle | null,
  tickMs: number,
  signer?: MemberSigner,
): Promise<Background> {
  const brokerEpoch = (): number => lifecycle?.brokerEpoch ?? -1;
  const fetchers = new ReplicaFetcherManager(data.rm, {
    nodeId: config.nodeId,
    brokerEpoch,
    addressOf: (id) => {
      const b = meta.store.image.brokers.get(id);
      return b === undefined ? null : peerAddress(b);
    },
    transport: grpcReplicaFetchTransportWith(tls.internalChannel(), signer),
    maxWaitMs: config.replicaFetchWaitMaxMs,
    maxBytes: 10 << 20,
    log,
    timers: systemTimers,
    throttle: new ReplicationThrottle(clock, config.followerReplicationThrottledRate), // reassignment (issue 21)
  });
  const isr = {
    rm: data.rm,
    channel: meta.channel,
    nodeId: config.nodeId,
    replicaLagTimeMaxMs: config.replicaLagTimeMaxMs,
    brokerEpoch,
    log,
  };
  const isrTimer = setInterval(() => void maintainIsr(isr), isrCheckIntervalMs(config.replicaLagTimeMaxMs));
  isrTimer.unref?.();
  const work = { groups: data.groups, logs, clock, log };
  data.rm.onClose(logCorruptReads(data.rm, log));
  const ticker = setInterval(() => void runPeriodicWork(work), tickMs);
  ticker.unref?.();
  limitV8HeapGrowth(config.gcHeapGrowingPercent);
  return {
    fetchers,
    isrTimer,
    ticker,
    gcPacer: startGcPacer(config.gcExternalStepBytes, {
      soft: { bytes: config.gcMemorySoftLimitBytes, intervalMs: config.gcMemorySoftIntervalMs },
      nowMs: () => clock.nowMs(),
    }),
  };
}

export function logStarted(
  { config, log }: Shell,
  identity: Identity,
  logs: LogManager,
  rpc: RpcServer,
  http: { address: string } | null,
): void {
  log.info(
    {
      address: rpc.address,
      ...(config.internalListen !== "" ? { internalListen: config.internalListen } : {}),
      dataDir: config.dataDir,
      nodeId: config.nodeId,
      roles: identity.roles,
      voters: identity.voters.map((v) => `${v.id}@${v.address}`).join(","),
      clusterId: identity.clusterId,
      recovered: !logs.openedClean,
      ...(logs.uncleanShutdown ? { uncleanShutdown: true } : {}),
      ...(http ? { http: `http://${http.address}/` } : {}),
    },
    "broker started",
  );
}

/** The active controller of a multi-voter quorum hands leadership to another voter before it stops. */
export async function handOverController(store: Metadata["store"], voters: readonly QuorumVoter[], nodeId: number): Promise<void> {
  // The voters of the log (issue 21), not the configured ones.
  const ids = store.status().voters.filter((id) => id !== nodeId);
  if (!store.isLeader || ids.length === 0 || voters.length === 0) return;
  if (store.transferLeadership(ids[0]!) === null) {
    await store.waitUntil(() => !store.isLeader, "leadership to move", 2000).catch(() => {});
  }
}
