/**
 * One simulated node (controller voter and broker in one process, `process.roles=broker,controller`),
 * built from the real modules the broker shell wires in src/broker/stages.ts — the partition logs
 * (LogManager over a crash-losing MemoryFileSystem), the metadata store over Raft
 * (QuorumMetadataStore), the controller runtime (ClusterController), the ReplicaManager and its
 * follower fetchers, the broker lifecycle (registration, heartbeats) and ISR maintenance — with
 * the simulator's timers, clock, randomness and network in place of the runtime's. Only the
 * transports are the simulator's: Raft messages go through the real codec, replica fetches are
 * answered by the real leader-side handler (src/rpc/replication-service.ts `answer`).
 */
import { fromBinary } from "@bufbuild/protobuf";
import { AssertionError } from "../../../src/base/assert.ts";
import { RillError, rillError } from "../../../src/base/errors.ts";
import type { SeededRandom } from "../../../src/base/random.ts";
import { BrokerLifecycle } from "../../../src/broker/broker-lifecycle.ts";
import { ClusterController } from "../../../src/broker/cluster-controller.ts";
import { type BrokerLog, silentLog } from "../../../src/broker/log.ts";
import { isrCheckIntervalMs, maintainIsr, runPeriodicWork } from "../../../src/broker/periodic.ts";
import { defaultBrokerConfig } from "../../../src/config/schema.ts";
import { GroupRuntime } from "../../../src/coordinator/group-runtime.ts";
import { ReplicaFetchResponseSchema } from "../../../src/gen/rill/v1/replication_service_pb.ts";
import { type MetadataFetchResult, ObserverMetadataStore } from "../../../src/metadata/observer-store.ts";
import { QuorumMetadataStore } from "../../../src/metadata/quorum-store.ts";
import { decodeMessage, encodeMessage } from "../../../src/raft/codec.ts";
import type { Message } from "../../../src/raft/types.ts";
import {
  type ReplicaFetchAnswer,
  ReplicaFetcherManager,
  type ReplicaFetchRound,
  type ReplicaFetchSession,
  type ReplicaFetchTransport,
} from "../../../src/replication/fetcher.ts";
import { LeaderFetchSession } from "../../../src/replication/fetch-session.ts";
import { ReplicaManager } from "../../../src/replication/replica-manager.ts";
import { ReplicationThrottle } from "../../../src/replication/throttle.ts";
import type { AlterPartitionItem, AlterPartitionOutcome, BrokerControl, RegisterBrokerInput } from "../../../src/rpc/controller-service.ts";
import { answer, fromReplicaFetchResponse, toReplicaFetchRequest } from "../../../src/rpc/replication-service.ts";
import { encodeReplicaFetchResponse } from "../../../src/rpc/replica-fetch-codec.ts";
import { UNBOUNDED_FETCH_MEMORY } from "../../../src/service/fetch.ts";
import { GroupsService } from "../../../src/service/groups.ts";
import { ProduceHandler } from "../../../src/service/produce.ts";
import { DiskFailureWatch, isDiskFailure } from "../../../src/storage/disk-failure.ts";
import { MemoryFileSystem } from "../../../src/storage/fs.ts";
import { LogManager } from "../../../src/storage/log-manager.ts";
import { type DiskFaults, SimDisk, tornPowerLoss } from "./disk.ts";
import { DiskSpace, FullableDisk } from "./disk-full.ts";
import { type DatedBatches, type OnCommitted, watchHighWatermarks } from "./hw-watch.ts";
import { type SimTxn, startSimTransactions } from "./txn-node.ts";
import { Incarnation, type SimNet, SimTimers, type World } from "./world.ts";

export const CLUSTER_ID = "sim-cluster";
const DATA_DIR = "/data";

/** Timing settings of the simulated brokers (shorter than the defaults, as in the tests of a cluster). */
export const SIM_BROKER = {
  electionTimeoutMs: 1000,
  raftHeartbeatIntervalMs: 100,
  snapshotIntervalRecords: 200,
  brokerHeartbeatIntervalMs: 500,
  brokerSessionTimeoutMs: 3000,
  replicaLagTimeMaxMs: 3000,
  replicaFetchWaitMaxMs: 500,
  controllerCallTimeoutMs: 1000,
} as const;

/** What the cluster gives a node. */
/** The ISR changes of one AlterPartition a node sends, as the ISR checks read them. */
export type AlterPartitionChanges = ReadonlyArray<{
  readonly topic: string;
  readonly partition: number;
  readonly partitionEpoch: number;
  readonly newIsr: readonly number[];
  readonly newIsrBrokerEpochs?: readonly number[];
}>;

export interface NodeEnv {
  readonly world: World;
  readonly net: SimNet;
  readonly voters: readonly number[];
  readonly nodes: ReadonlyMap<number, SimNode>;
  /** Randomness of this node (Raft timeouts, placement), forked from the run's seed. */
  readonly random: SeededRandom;
  readonly trace: (line: string) => void;
  /** replica.fetch.max.bytes of the followers' fetches. */
  readonly replicaFetchMaxBytes: number;
  /** eligible.leader.replicas.enable of the controller (issue 21, KIP-966). */
  readonly eligibleLeaderReplicas: boolean;
  /** Whether the nodes run the transaction coordinator (txn-node.ts); off, a run is what it was before. */
  readonly transactions?: boolean;
  /** leader.replication.throttled.rate (bytes/s; 0: none): replicas a reassignment adds catch up at most this fast. */
  readonly leaderReplicationThrottledRate?: number;
  /** Told of every AlterPartition a node sends (before it leaves), for the ISR checks. */
  readonly onAlterPartition: (nodeId: number, changes: AlterPartitionChanges) => void;
  /** Told of every record of `topic` a leader's high watermark passes (hw-watch.ts), for dating read records. */
  readonly committed?: { readonly topic: string; readonly onCommitted: OnCommitted; readonly dated?: DatedBatches };
}

/** The parts of one running process. */
export interface Running {
  readonly inc: Incarnation;
  readonly timers: SimTimers;
  readonly logs: LogManager;
  /** A voter's Raft store, or a broker-only node's observer store (it follows the voters' log). */
  readonly store: QuorumMetadataStore | ObserverMetadataStore;
  /** The controller runtime of a voter (null on a broker-only node). */
  readonly controller: ClusterController | null;
  readonly rm: ReplicaManager;
  readonly lifecycle: BrokerLifecycle;
  readonly fetchers: ReplicaFetcherManager;
  /** The group coordinator shards this node leads, and the group service over them. */
  readonly groups: GroupRuntime;
  readonly groupsService: GroupsService;
  /** The real produce handler (no forwarder: clients send to the leader). */
  readonly produce: ProduceHandler;
  /** The transaction coordinator and service (txn-node.ts), when the run has transactions. */
  readonly txn: SimTxn | null;
}

/** A node: its disk survives restarts; its process (`running`) does not. */
export class SimNode {
  readonly fs = new MemoryFileSystem();
  /** This node's disk faults now (slow fsync). */
  readonly diskFaults: DiskFaults = { slowSyncMs: 0 };
  /** This node's free space (disk-full.ts): unlimited unless a full disk fault holds. */
  readonly space = new DiskSpace();
  running: Running | null = null;
  private incarnations = 0;
  /** Power losses so far (a crash that dropped unsynced writes), with their times. */
  readonly powerLosses: number[] = [];
  /**
   * Broker epochs (registrations) this node's processes fetched as since its last power loss: a
   * leader's view of this follower comes only from fetches carrying its epoch.
   */
  private readonly bootEpochs = new Set<number>();
  /**
   * Broker epochs this node fetched as before a power loss: what a leader recorded from their
   * fetches may be gone from the disk (the ISR check does not hold the log to it).
   */
  readonly powerLostEpochs = new Set<number>();
  /** ReplicaFetch streams this node opened, over all its processes: each stream's id. */
  private fetchStreams = 0;
  /**
   * Per follower, its latest ReplicaFetch stream to this node and that stream's fetch session (as
   * the gRPC handler keeps one per stream), while the process that holds it runs: a request of an
   * older stream is refused (a real stream is gone once its follower closed it).
   */
  private readonly fetchSessions = new Map<number, { stream: number; inc: Incarnation; session: LeaderFetchSession }>();

  constructor(
    readonly id: number,
    private readonly env: NodeEnv,
  ) {}

  get up(): boolean {
    return this.running !== null;
  }

  /** A controller voter (`process.roles=broker,controller`); else a broker-only node, a KRaft observer. */
  get voter(): boolean {
    return this.env.voters.includes(this.id);
  }

  /** The process's incarnation now (null while down): network deliveries check it on arrival. */
  readonly current = (): Incarnation | null => this.running?.inc ?? null;

  /**
   * Starts a process on this node's disk (recovering it), as `Broker.start` does. A start that
   * meets a failing disk (a full one: disk-full.ts) halts as the broker does: the node stays down.
   */
  start(): void {
    if (this.running) throw new Error(`node ${this.id} is already running`);
    try {
      this.launch();
    } catch (e) {
      if (!isDiskFailure(e)) throw e;
      this.env.trace(`node ${this.id} failed to start: ${(e as Error).message}`);
    }
  }

  /**
   * The broker's reaction to its disk's first failure (src/storage/disk-failure.ts; the shell
   * halts the process): the process dies at once, its page cache kept (a kill, not a power loss).
   */
  private halt(inc: Incarnation, e: Error): void {
    if (this.running?.inc !== inc) {
      inc.alive = false; // still starting (see `start`)
      return;
    }
    this.env.trace(`node ${this.id} halts: its disk failed (${e.message})`);
    this.crash(false);
  }

  private launch(): void {
    const { world, voters } = this.env;
    const inc = new Incarnation(this.id, ++this.incarnations);
    const timers = new SimTimers(world, inc);
    const clock = world.clock;
    const d = defaultBrokerConfig;
    this.fs.mkdirp(DATA_DIR);
    const disk = new DiskFailureWatch(new FullableDisk(new SimDisk(this.fs, timers, this.diskFaults), this.space), (e) =>
      this.halt(inc, e),
    );
    const logs = LogManager.open({
      fs: disk,
      dataDir: DATA_DIR,
      clock,
      topicConfig: () => undefined,
      tailCacheBytes: d.tailCacheBytes,
      tailCacheTotalBytes: d.tailCacheTotalBytes,
      retentionCheckIntervalMs: d.retentionCheckIntervalMs,
      cleanerBackoffMs: d.cleanerBackoffMs,
      cleanerEnable: false,
      producerIdExpirationMs: d.producerIdExpirationMs,
      pause: () => Promise.resolve(),
      pid: inc.n,
      // The previous process of this node is gone (crashed or stopped): its lock is stale.
      isProcessAlive: () => false,
      // A power loss restarts the machine (KIP-966's unclean shutdown); a process kill does not.
      bootId: `boot-${this.powerLosses.length}`,
    });
    const random = this.env.random.fork();
    // A broker-only node follows the voters' log (openObserver); a voter runs Raft and the controller.
    const observer = this.voter ? null : this.openObserver(inc, timers);
    const store =
      observer ??
      QuorumMetadataStore.open({
        fs: disk,
        dataDir: DATA_DIR,
        nodeId: this.id,
        voters,
        random,
        transport: { send: (to, messages) => this.sendRaft(inc, to, messages) },
        timers,
        tickMs: SIM_BROKER.raftHeartbeatIntervalMs,
        electionTicks: Math.max(2, Math.round(SIM_BROKER.electionTimeoutMs / SIM_BROKER.raftHeartbeatIntervalMs)),
        snapshotIntervalRecords: SIM_BROKER.snapshotIntervalRecords,
        commitTimeoutMs: 5000,
      });
    const incarnationId = `node-${this.id}-run-${inc.n}`;
    const log = process.env["SIM_LOG"] ? simLog(world, `n${this.id}r${inc.n}`) : silentLog;
    const controller =
      store instanceof QuorumMetadataStore
        ? new ClusterController({
            store,
            clock,
            random,
            clusterId: CLUSTER_ID,
            sessionTimeoutMs: SIM_BROKER.brokerSessionTimeoutMs,
            offsetsReplicationFactor: voters.length,
            log,
            localNodeId: this.id,
            localIncarnation: incarnationId,
            timers,
            eligibleLeaderReplicas: this.env.eligibleLeaderReplicas,
          })
        : null;
    const channel = new SimControllerChannel(this.id, inc, this.env, store, controller);
    const rate = this.env.leaderReplicationThrottledRate ?? 0;
    const rm = new ReplicaManager(logs, store, clock, timers, this.id, rate > 0 ? new ReplicationThrottle(clock, rate) : null);
    const committed = this.env.committed;
    if (committed)
      watchHighWatermarks(logs, committed.topic, (p) => rm.replica(committed.topic, p), committed.onCommitted, committed.dated);
    // As src/broker/stages.ts startData: the group coordinators follow the leaders of __consumer_offsets.
    const groups = GroupRuntime.start(rm, clock, random, this.id, { initialRebalanceDelayMs: d.groupInitialRebalanceDelayMs });
    const groupsService = new GroupsService(groups, rm, timers);
    store.onChange((c) => {
      if (
        c.snapshot === true ||
        c.records.some((r) => r.type === "partition" || r.type === "partition-change" || r.type === "remove-topic")
      ) {
        groups.syncShards();
        groups.topicsChanged();
      }
    });
    const lifecycle = new BrokerLifecycle({
      incarnationId,
      nodeId: this.id,
      clusterId: CLUSTER_ID,
      address: () => `node-${this.id}`,
      rack: "",
      roles: this.voter ? ["broker", "controller"] : ["broker"],
      controller: channel,
      metadataOffset: () => store.image.offset,
      heartbeatIntervalMs: SIM_BROKER.brokerHeartbeatIntervalMs,
      log,
      timers,
      uncleanShutdown: logs.uncleanShutdown,
      previousIncarnationId: logs.previousIncarnationId,
      onRegistered: (id) => logs.recordRegistration(id),
    });
    // As src/broker/broker.ts holdLeadershipUntilUnfenced: lead nothing until caught up with the
    // cluster, nor from a heartbeat that finds the running broker fenced until it is unfenced.
    // The group coordinators drop the shards they loaded from the stale image, and load the
    // ones they lead once released.
    let holding = false;
    const holdLeadership = (): void => {
      if (holding) return;
      holding = true;
      rm.holdLeadership();
      groups.syncShards();
      const hold = timers.setInterval(() => {
        if (lifecycle.state !== "running") return;
        timers.clearInterval(hold);
        holding = false;
        rm.releaseLeadership();
        groups.syncShards();
      }, 50);
    };
    holdLeadership();
    lifecycle.onLeftRunning(holdLeadership);
    lifecycle.start();
    const fetchers = new ReplicaFetcherManager(rm, {
      nodeId: this.id,
      brokerEpoch: () => {
        const e = lifecycle.brokerEpoch;
        if (e >= 0) this.bootEpochs.add(e);
        return e;
      },
      addressOf: (id) => (store.image.brokers.has(id) ? `node-${id}` : null),
      transport: this.fetchTransport(inc),
      maxWaitMs: SIM_BROKER.replicaFetchWaitMaxMs,
      maxBytes: this.env.replicaFetchMaxBytes,
      log,
      timers,
    });
    const isr = {
      rm,
      channel,
      nodeId: this.id,
      replicaLagTimeMaxMs: SIM_BROKER.replicaLagTimeMaxMs,
      brokerEpoch: () => lifecycle.brokerEpoch,
      log,
    };
    timers.setInterval(() => void maintainIsr(isr).catch((e: unknown) => this.bug(e)), isrCheckIntervalMs(SIM_BROKER.replicaLagTimeMaxMs));
    // The group coordinators' session timeouts and the logs' periodic work (flush.ms, retention),
    // on the broker's ticker (every raft.heartbeat.interval.ms).
    const work = { groups, logs, clock, log };
    timers.setInterval(() => void runPeriodicWork(work).catch((e: unknown) => this.bug(e)), SIM_BROKER.raftHeartbeatIntervalMs);
    const txn = this.env.transactions
      ? startSimTransactions({ id: this.id, inc, net: this.env.net, nodes: this.env.nodes, voters, rm, store, groups, clock, timers })
      : null;
    const produce = txn ? new ProduceHandler(rm, null, undefined, undefined, txn.service) : new ProduceHandler(rm);
    this.running = { inc, timers, logs, store, controller, rm, lifecycle, fetchers, groups, groupsService, produce, txn };
    this.env.trace(`node ${this.id} started (run ${inc.n})`);
  }

  /**
   * A broker-only node's metadata (src/broker/stages.ts openObserver): an observer store that
   * follows the committed metadata log by FetchMetadata long-polls to the voters (the known
   * leader, else each in turn), over the simulated network; nothing of it is on disk.
   */
  private openObserver(inc: Incarnation, timers: SimTimers): ObserverMetadataStore {
    const log = process.env["SIM_LOG"] ? simLog(this.env.world, `n${this.id}r${inc.n}`) : silentLog;
    const store = new ObserverMetadataStore({ nodeId: this.id, voters: this.env.voters, timers, maxWaitMs: 1000, log });
    store.start((voter, after, maxWaitMs) => {
      const target = this.env.nodes.get(voter)!;
      return this.env.net.call(this.id, voter, target.current, () => target.serveMetadata(after, maxWaitMs), inc, maxWaitMs + 2000);
    });
    return store;
  }

  /**
   * A voter's answer to an observer's FetchMetadata (src/rpc/controller-service.ts fetchMetadata):
   * the committed entries after `after` (or the snapshot they were truncated into), waiting up to
   * `maxWaitMs` for one; copies, as the wire gives them.
   */
  async serveMetadata(after: number, maxWaitMs: number): Promise<MetadataFetchResult> {
    const store = this.running?.store;
    if (!(store instanceof QuorumMetadataStore)) throw rillError("NOT_CONTROLLER", `node ${this.id} does not run the controller role`);
    let r = store.readCommitted(after, 4 << 20);
    if (r.snapshot === null && r.entries.length === 0 && maxWaitMs > 0) {
      await store.waitForOffset(after + 1, maxWaitMs).catch(() => {});
      if (this.running?.store !== store) throw rillError("NOT_CONTROLLER", `node ${this.id} is down`);
      r = store.readCommitted(after, 4 << 20);
    }
    return {
      snapshot: r.snapshot ? { offset: r.snapshot.offset, data: Uint8Array.from(r.snapshot.data) } : null,
      entries: r.entries.map((e) => ({ offset: e.offset, records: Uint8Array.from(e.records) })),
      leader: store.leader,
      commitOffset: Math.max(-1, store.status().commit),
    };
  }

  /** A failed assertion inside this node's process stops the run. */
  private bug(e: unknown): void {
    if (e instanceof AssertionError) this.env.world.failure ??= e;
  }

  /**
   * Kills the process. `powerLoss`: the machine lost power too, so every write not fsynced is
   * gone (MemoryFileSystem.crash); otherwise the page cache survives (kill -9).
   */
  crash(powerLoss: boolean, tear: SeededRandom | null = null): void {
    const r = this.running;
    if (!r) return;
    r.inc.alive = false;
    this.running = null;
    let torn: string | null = null;
    if (powerLoss) {
      if (tear) torn = tornPowerLoss(this.fs, DATA_DIR, tear);
      else this.fs.crash();
      this.powerLosses.push(this.env.world.now);
      for (const e of this.bootEpochs) this.powerLostEpochs.add(e);
      this.bootEpochs.clear();
    }
    this.env.trace(
      `node ${this.id} crashed${powerLoss ? ` (power loss: unsynced writes lost${torn ? `; torn write ${torn}` : ""})` : " (process killed)"}`,
    );
  }

  private sendRaft(inc: Incarnation, to: number, messages: readonly Message[]): void {
    if (!inc.alive) return; // a process that halted sends nothing more
    const target = this.env.nodes.get(to)!;
    const wire = messages.map((m) => encodeMessage(m));
    const snapshot = messages.some((m) => m.type === "snapshot");
    this.env.net.send(
      this.id,
      to,
      target.current,
      () => {
        try {
          const store = target.running?.store;
          if (store instanceof QuorumMetadataStore) store.receive(wire.map((b) => decodeMessage(b)));
        } catch (e) {
          if (e instanceof AssertionError) throw e;
          if (!(e instanceof RillError)) throw e;
        }
      },
      inc,
      snapshot
        ? (ok) => inc.alive && this.running?.store instanceof QuorumMetadataStore && this.running.store.reportSnapshot(to, ok)
        : undefined,
    );
  }

  private fetchTransport(inc: Incarnation): ReplicaFetchTransport {
    return {
      open: (address: string): ReplicaFetchSession => {
        const leader = Number(address.slice("node-".length));
        const target = this.env.nodes.get(leader)!;
        const stream = ++this.fetchStreams;
        let closed = false;
        return {
          fetch: (req) => {
            if (closed) return Promise.reject(new Error("session closed"));
            return this.env.net.call(
              this.id,
              leader,
              target.current,
              () => target.serveFetch(this.id, stream, req),
              inc,
              req.maxWaitMs + 2000,
            );
          },
          close: () => {
            closed = true;
          },
        };
      },
    };
  }

  /**
   * The leader side of one ReplicaFetch round of `follower`'s stream `stream`, through the real
   * handler, its wire types and the stream's fetch session.
   */
  async serveFetch(follower: number, stream: number, req: ReplicaFetchRound): Promise<ReplicaFetchAnswer> {
    const r = this.running;
    if (!r) throw new Error(`node ${this.id} is down`);
    let s = this.fetchSessions.get(follower);
    if (s !== undefined && s.inc !== r.inc) s = undefined; // a session dies with its process
    if (s !== undefined && stream < s.stream) throw new Error(`replica fetch stream ${stream} of node ${follower} was closed`);
    if (s === undefined || stream > s.stream) {
      s = { stream, inc: r.inc, session: new LeaderFetchSession() };
      this.fetchSessions.set(follower, s);
    }
    const pb = toReplicaFetchRequest(req);
    const { res, release } = await answer(r.rm, pb, { aborted: false, onabort: null }, UNBOUNDED_FETCH_MEMORY, undefined, s.session);
    // Serialized when sent, with the leader's real encoder, and decoded as the follower does: the
    // follower gets a copy, never a view of the leader's memory.
    const out = fromReplicaFetchResponse(fromBinary(ReplicaFetchResponseSchema, encodeReplicaFetchResponse(res)));
    release();
    return out;
  }
}

/**
 * The node's way to the active controller (src/rpc/controller-channel.ts over the simulated
 * network): the local controller while it leads, else the known leader, else the voters in turn.
 */
class SimControllerChannel implements BrokerControl {
  private guess = 0;
  private hint = 0;

  constructor(
    private readonly id: number,
    private readonly inc: Incarnation,
    private readonly env: NodeEnv,
    private readonly store: QuorumMetadataStore | ObserverMetadataStore,
    private readonly local: ClusterController | null,
  ) {}

  private async call<T>(fn: (c: ClusterController) => Promise<T>): Promise<T> {
    if (this.store.isLeader && this.local) return fn(this.local);
    const known = this.store.leader || this.hint;
    const to = this.env.voters.includes(known) ? known : this.env.voters[(this.guess = (this.guess + 1) % this.env.voters.length)]!;
    const target = this.env.nodes.get(to)!;
    try {
      return await this.env.net.call(
        this.id,
        to,
        target.current,
        () => {
          const c = target.running?.controller;
          return c ? fn(c) : Promise.reject(rillError("NOT_CONTROLLER", `node ${to} is down`));
        },
        this.inc,
        SIM_BROKER.controllerCallTimeoutMs,
      );
    } catch (e) {
      if (e instanceof AssertionError) throw e;
      const named = e instanceof RillError && e.kind.name === "NOT_CONTROLLER" ? /node (\d+) is/.exec(e.message) : null;
      this.hint = named ? Number(named[1]) : 0;
      if (e instanceof RillError) throw e;
      throw rillError("NOT_CONTROLLER", `cannot reach controller ${to}: ${(e as Error).message}`);
    }
  }

  register(req: RegisterBrokerInput): Promise<{ brokerEpoch: number }> {
    const copy = { ...req, roles: [...req.roles] };
    return this.call((c) => c.register(copy));
  }

  heartbeat(req: { nodeId: number; brokerEpoch: number; currentMetadataOffset: number; wantFence: boolean; wantShutDown: boolean }) {
    const copy = { ...req };
    return this.call((c) => c.heartbeat(copy));
  }

  alterPartition(nodeId: number, brokerEpoch: number, partitions: ReadonlyArray<AlterPartitionItem>): Promise<AlterPartitionOutcome[]> {
    const copy = partitions.map((p) => ({
      ...p,
      newIsr: [...p.newIsr],
      ...(p.newIsrBrokerEpochs ? { newIsrBrokerEpochs: [...p.newIsrBrokerEpochs] } : {}),
    }));
    this.env.onAlterPartition(this.id, copy);
    return this.call((c) => c.alterPartition(nodeId, brokerEpoch, copy));
  }
}

/**
 * A node process's log on stdout (SIM_LOG=1 in the environment), each line stamped with the
 * simulated time and the process (`n2r3`: node 2's third run). Not part of the trace or its hash.
 */
function simLog(world: World, who: string): BrokerLog {
  const line = (level: string) => (fields: object, msg?: string) => {
    const f = JSON.stringify(fields, (_k, v: unknown) => (v instanceof Error ? v.message : v));
    console.log(`${String(world.now).padStart(7)} [${who} ${level}] ${msg ?? ""} ${f}`);
  };
  return { info: line("info"), warn: line("warn"), error: line("error") };
}
