/**
 * The active controller's runtime: broker registration, heartbeats and sessions, fencing of
 * brokers whose session expired (with leader election from the ISR), AlterPartition from
 * partition leaders, creation of `__consumer_offsets` once enough brokers are up, and periodic
 * preferred-leader election. Every decision is a pure function of the image
 * (src/metadata/controller.ts); this class adds time and commits the records through the quorum.
 *
 * Session state (last heartbeat per broker) lives only in the active controller's memory, as in
 * KRaft: a newly elected controller gives every broker a fresh session before fencing anyone.
 * Calls on a voter that is not the active controller answer NOT_CONTROLLER.
 */
import type { RegisterBrokerInput } from "../rpc/controller-service.ts";
import { AssertionError } from "../base/assert.ts";
import { RillError, rillError } from "../base/errors.ts";
import type { Clock } from "../base/clock.ts";
import type { Random } from "../base/random.ts";
import { systemTimers, type Timers } from "../base/timers.ts";
import {
  decideAlterPartition,
  decideBrokerHeartbeat,
  decideCreateTopic,
  decideFenceBroker,
  decidePreferredLeaderElection,
  decideRegisterBroker,
} from "../metadata/controller.ts";
import { BrokerHeartbeats } from "../metadata/heartbeats.ts";
import type { MetadataImage } from "../metadata/image.ts";
import { decideCompleteReassignments, isReassigning } from "../metadata/reassignment.ts";
import type { QuorumMetadataStore } from "../metadata/quorum-store.ts";
import type { ScramCredentialRecord } from "../metadata/records.ts";
import type { ElrOptions } from "../metadata/cluster-controller.ts";
import { OFFSETS_PARTITIONS, OFFSETS_TOPIC, OFFSETS_TOPIC_CONFIGS } from "../coordinator/group-runtime.ts";
import { TXN_PARTITIONS, TXN_TOPIC, TXN_TOPIC_CONFIGS } from "../coordinator/transactions/txn-runtime.ts";
import type { AlterPartitionItem, AlterPartitionOutcome, BrokerControl } from "../rpc/controller-service.ts";
import type { BrokerLog } from "./log.ts";

/** Settings of the controller runtime. */
export interface ClusterControllerOptions {
  readonly store: QuorumMetadataStore;
  readonly clock: Clock;
  readonly random: Random;
  readonly clusterId: string;
  readonly sessionTimeoutMs: number;
  /** `__consumer_offsets` replication factor (already capped at the voter count). */
  readonly offsetsReplicationFactor: number;
  /** `__transaction_state` replication factor (already capped at the voter count); default that of the offsets topic. */
  readonly txnStateReplicationFactor?: number;
  /** How often sessions are checked; default 100 ms. */
  readonly checkIntervalMs?: number;
  /** How often leaders are moved back to their preferred replica; default 5 min, 0 = never. */
  readonly preferredElectionIntervalMs?: number;
  readonly log: BrokerLog;
  /** This node's id and the incarnation of its own broker process (null: no broker role). */
  readonly localNodeId: number;
  readonly localIncarnation: string | null;
  /** Credentials of `auth.bootstrap.users.file`, committed once before `__consumer_offsets` exists (a new cluster). */
  readonly bootstrapUsers?: readonly ScramCredentialRecord[];
  /** The session-check timer; default the runtime's (the cluster simulator injects its own). */
  readonly timers?: Timers;
  /** `eligible.leader.replicas.enable` (issue 21, KIP-966); default true. */
  readonly eligibleLeaderReplicas?: boolean;
}

/** The active controller's handling of brokers. */
export class ClusterController implements BrokerControl {
  private readonly sessions = new BrokerHeartbeats();
  private readonly timer: unknown;
  private readonly unsubscribe: () => void;
  private checking: Promise<void> | null = null;
  private lastPreferredElection: number;
  private closed = false;

  constructor(private readonly o: ClusterControllerOptions) {
    this.lastPreferredElection = o.clock.nowMs();
    this.unsubscribe = o.store.onLeaderChange(() => {
      if (o.store.isLeader && this.sessionsTerm !== o.store.status().term) {
        // A new controller: every broker gets a full session before anyone is fenced.
        this.sessionsTerm = o.store.status().term;
        this.sessions.reset([...o.store.image.brokers.keys()], o.clock.nowMs());
        this.lastPreferredElection = o.clock.nowMs();
      }
    });
    this.timer = (o.timers ?? systemTimers).setInterval(() => void this.runChecks(), o.checkIntervalMs ?? 100);
    (this.timer as { unref?: () => void }).unref?.();
  }

  private requireLeader(): void {
    if (this.closed) throw rillError("SHUTTING_DOWN", "the controller is shutting down");
    if (!this.o.store.isLeader) {
      const l = this.o.store.leader;
      throw rillError("NOT_CONTROLLER", `this node is not the active controller (${l === 0 ? "none is elected yet" : `node ${l} is`})`);
    }
  }

  /**
   * Whether the registered process of `nodeId` may still be running. Not when it announced a
   * controlled shutdown, nor when it is this node's own broker of an earlier run (this process
   * replaced it); otherwise while its session lasts.
   */
  private isAlive = (nodeId: number): boolean => {
    const b = this.o.store.image.brokers.get(nodeId);
    if (b?.inControlledShutdown) return false;
    if (nodeId === this.o.localNodeId && this.o.localIncarnation !== null) return b?.incarnationId === this.o.localIncarnation;
    return this.sessions.isAlive(nodeId, this.o.clock.nowMs(), this.o.sessionTimeoutMs);
  };

  async register(req: RegisterBrokerInput): Promise<{ brokerEpoch: number }> {
    this.requireLeader();
    if (req.clusterId !== this.o.clusterId)
      throw rillError("INCONSISTENT_CLUSTER_ID", `cluster_id: "${req.clusterId}" is not this cluster's "${this.o.clusterId}"`);
    await this.o.store.commit((img) =>
      decideRegisterBroker(
        img,
        {
          nodeId: req.nodeId,
          incarnationId: req.incarnationId,
          address: req.address,
          rack: req.rack,
          roles: req.roles,
          ...(req.maxPartitions !== undefined ? { maxPartitions: req.maxPartitions } : {}),
          ...(req.internalAddress !== undefined ? { internalAddress: req.internalAddress } : {}),
          ...(req.kafkaAddress !== undefined ? { kafkaAddress: req.kafkaAddress } : {}),
          ...(req.uncleanShutdown ? { uncleanShutdown: true } : {}),
          ...(req.previousIncarnationId ? { previousIncarnationId: req.previousIncarnationId } : {}),
        },
        this.isAlive,
        this.elr,
      ),
    );
    const b = this.o.store.image.brokers.get(req.nodeId);
    if (!b || b.incarnationId !== req.incarnationId)
      throw rillError("DUPLICATE_BROKER_REGISTRATION", `node_id: ${req.nodeId} was registered by another incarnation meanwhile`);
    this.sessions.touch(req.nodeId, this.o.clock.nowMs());
    this.o.log.info({ broker: req.nodeId, address: req.address, epoch: b.epoch }, "broker registered");
    return { brokerEpoch: b.epoch };
  }

  async heartbeat(req: {
    nodeId: number;
    brokerEpoch: number;
    currentMetadataOffset: number;
    wantFence: boolean;
    wantShutDown: boolean;
  }): Promise<{ isCaughtUp: boolean; isFenced: boolean; shouldShutDown: boolean }> {
    this.requireLeader();
    // The session lives from the moment a current-epoch heartbeat arrives, not from when its
    // (possibly queued) commit completes.
    if (this.o.store.image.brokers.get(req.nodeId)?.epoch === req.brokerEpoch) this.sessions.touch(req.nodeId, this.o.clock.nowMs());
    let response: { isCaughtUp: boolean; isFenced: boolean; shouldShutDown: boolean } | null = null;
    const change = await this.o.store.commit((img) => {
      const r = decideBrokerHeartbeat(img, req, this.elr);
      response = r.response;
      return r.records;
    });
    this.sessions.touch(req.nodeId, this.o.clock.nowMs());
    for (const r of change.records) {
      if (r.type === "broker-fence") this.o.log.info({ broker: r.nodeId }, r.fenced ? "broker fenced at its request" : "broker unfenced");
    }
    return response!;
  }

  async alterPartition(
    nodeId: number,
    brokerEpoch: number,
    partitions: ReadonlyArray<AlterPartitionItem>,
  ): Promise<AlterPartitionOutcome[]> {
    this.requireLeader();
    const errors = new Map<number, Error>();
    await this.o.store.commit((img) => {
      errors.clear();
      const out = [];
      for (let i = 0; i < partitions.length; i++) {
        try {
          out.push(...decideAlterPartition(img, nodeId, brokerEpoch, partitions[i]!, this.elr));
        } catch (e) {
          if (!(e instanceof RillError)) throw e;
          errors.set(i, e);
        }
      }
      return out;
    });
    const img = this.o.store.image;
    return partitions.map((p, i) => {
      const st = img.topics.get(p.topic)?.partitions[p.partition];
      return {
        topic: p.topic,
        partition: p.partition,
        leader: st?.leader ?? -1,
        leaderEpoch: st?.leaderEpoch ?? -1,
        partitionEpoch: st?.partitionEpoch ?? -1,
        isr: st?.isr ?? [],
        error: errors.get(i) ?? null,
      };
    });
  }

  /** Periodic work of the active controller (runs on a timer; callers may run it now). */
  runChecks(): Promise<void> {
    if (this.closed || !this.o.store.isLeader) return Promise.resolve();
    this.checking ??= this.check().finally(() => {
      this.checking = null;
    });
    return this.checking;
  }

  /** The Raft term whose leadership the sessions were last reset for. */
  private sessionsTerm = -1;
  /**
   * When the last check ended and the Raft term it ran in (null before the first): the next
   * check of the same leadership should start within an interval.
   */
  private lastCheck: { readonly endMs: number; readonly term: number } | null = null;

  /**
   * Whether `nodeId` is this process's own broker (the registration of this incarnation). Its
   * heartbeats are late only when this process is, so its session never expires here.
   */
  private isLocalBroker(nodeId: number): boolean {
    return (
      nodeId === this.o.localNodeId &&
      this.o.localIncarnation !== null &&
      this.o.store.image.brokers.get(nodeId)?.incarnationId === this.o.localIncarnation
    );
  }

  private async check(): Promise<void> {
    const term = this.o.store.status().term;
    try {
      const now = this.o.clock.nowMs();
      // A check that starts late means this process was busy (a long synchronous task, a full
      // collection, SIGSTOP): heartbeats that arrived meanwhile wait unread, so that time does
      // not count against anyone's session. Without this a stalled controller fenced live
      // brokers, its own among them, the moment it ran again (issue 14, the Bun soak's stall).
      // Only a gap within one leadership (one term) is a stall: a check of an earlier term means
      // this node did not lead in between, and counting that time as late kept a dead broker's
      // session alive that long after it led again (issue 19, cluster-sim seed 1183).
      const intervalMs = this.o.checkIntervalMs ?? 100;
      const lateMs = this.lastCheck === null || this.lastCheck.term !== term ? 0 : now - this.lastCheck.endMs - intervalMs;
      if (lateMs > intervalMs) this.sessions.extend(lateMs);
      if (term !== this.sessionsTerm) {
        // Leadership just began (this can run before the leader-change notice): every broker
        // gets a full session first, since its heartbeats went to the previous controller.
        this.sessionsTerm = term;
        this.sessions.reset([...this.o.store.image.brokers.keys()], now);
        this.lastPreferredElection = now;
        return;
      }
      await this.bootstrapUsers();
      for (const id of this.sessions.expired(this.o.store.image, now, this.o.sessionTimeoutMs)) {
        if (this.isLocalBroker(id)) continue;
        await this.o.store.commit((img) => decideFenceBroker(img, id, this.elr));
        this.o.log.warn({ broker: id, sessionTimeoutMs: this.o.sessionTimeoutMs }, "broker session expired: fenced");
      }
      const img = this.o.store.image;
      if (!img.topics.has(OFFSETS_TOPIC) && img.placementBrokers().length >= this.o.offsetsReplicationFactor) {
        await this.o.store.commit((im) =>
          im.topics.has(OFFSETS_TOPIC)
            ? []
            : decideCreateTopic(
                im,
                {
                  name: OFFSETS_TOPIC,
                  partitions: OFFSETS_PARTITIONS,
                  replicationFactor: this.o.offsetsReplicationFactor,
                  configs: OFFSETS_TOPIC_CONFIGS,
                },
                { partitions: OFFSETS_PARTITIONS, brokers: im.unfencedBrokers(), random: this.o.random, internal: true },
              ),
        );
        this.o.log.info({ replicationFactor: this.o.offsetsReplicationFactor }, `created ${OFFSETS_TOPIC}`);
      }
      await this.createTxnStateTopic();
      // reassignment (issue 21): complete the moves a change of ISR alone did not complete
      if (now - this.lastReassignmentCheck >= 1000) {
        this.lastReassignmentCheck = now;
        if (hasReassignment(this.o.store.image)) await this.o.store.commit((im) => decideCompleteReassignments(im));
      }
      const every = this.o.preferredElectionIntervalMs ?? 300_000;
      if (every > 0 && now - this.lastPreferredElection >= every) {
        this.lastPreferredElection = now;
        await this.o.store.commit((im) => decidePreferredLeaderElection(im).records);
      }
    } catch (e) {
      if (e instanceof AssertionError) throw e; // a bug: the rejection stops the process
      if (!(e instanceof RillError) || (e.kind.name !== "NOT_CONTROLLER" && e.kind.name !== "SHUTTING_DOWN"))
        this.o.log.error({ err: e }, "controller periodic work failed");
    } finally {
      this.lastCheck = { endMs: this.o.clock.nowMs(), term };
    }
  }

  /**
   * Creates `__transaction_state` (issue 17) as `__consumer_offsets` is, once enough brokers are
   * up — lazily, as Kafka does: once the first transactional id got a producer id (a broker
   * asks for one when a transactional InitProducerId or FindCoordinator finds no topic).
   */
  private async createTxnStateTopic(): Promise<void> {
    const rf = this.o.txnStateReplicationFactor ?? this.o.offsetsReplicationFactor;
    const img = this.o.store.image;
    if (img.topics.has(TXN_TOPIC) || img.transactionalIds.size === 0 || img.placementBrokers().length < rf) return;
    await this.o.store.commit((im) =>
      im.topics.has(TXN_TOPIC)
        ? []
        : decideCreateTopic(
            im,
            { name: TXN_TOPIC, partitions: TXN_PARTITIONS, replicationFactor: rf, configs: TXN_TOPIC_CONFIGS },
            { partitions: TXN_PARTITIONS, brokers: im.unfencedBrokers(), random: this.o.random, internal: true },
          ),
    );
    this.o.log.info({ replicationFactor: rf }, `created ${TXN_TOPIC}`);
  }

  /** When the periodic check last looked for reassignments to complete (issue 21). */
  private lastReassignmentCheck = 0;

  /** How the decisions treat eligible leader replicas (issue 21, KIP-966). */
  private get elr(): ElrOptions {
    return { eligibleLeaderReplicas: this.o.eligibleLeaderReplicas ?? true };
  }

  /** Whether the bootstrap users were written, or found unneeded (the cluster existed). */
  private bootstrapped = false;

  /**
   * Commits the bootstrap users' credentials when the cluster is new (no `__consumer_offsets`
   * yet, which this controller creates only after this step), skipping any already there.
   */
  private async bootstrapUsers(): Promise<void> {
    const records = this.o.bootstrapUsers ?? [];
    if (this.bootstrapped || records.length === 0) return;
    let written = 0;
    await this.o.store.commit((im) => {
      if (im.topics.has(OFFSETS_TOPIC)) return [];
      const missing = records.filter((r) => !im.scramCredential(r.name, r.credential.mechanism));
      written = missing.length;
      return missing;
    });
    this.bootstrapped = true;
    if (written > 0) this.o.log.info({ credentials: written }, "created the users of auth.bootstrap.users.file");
  }

  close(): void {
    this.closed = true;
    (this.o.timers ?? systemTimers).clearInterval(this.timer);
    this.unsubscribe();
  }
}

/** Whether any partition is being reassigned (issue 21): the periodic check has work only then. */
function hasReassignment(image: MetadataImage): boolean {
  for (const t of image.topics.values()) if (t.partitions.some(isReassigning)) return true;
  return false;
}
