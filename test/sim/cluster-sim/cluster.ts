/**
 * One run of the cluster simulator: 3 nodes (controller + broker each) from one seed, a topic
 * with replication factor 3 and min.insync.replicas=2, acks=all producers and consumers as
 * clients, faults (process kills, power losses, partitions, one-way cuts, message loss) for a
 * while, then healing, a quiet period, and the checks.
 */
import { createHash } from "node:crypto";
import { AssertionError } from "../../../src/base/assert.ts";
import { RillError } from "../../../src/base/errors.ts";
import { SeededRandom } from "../../../src/base/random.ts";
import { isDiskFailure } from "../../../src/storage/disk-failure.ts";
import { OFFSETS_TOPIC, offsetsPartitionFor } from "../../../src/coordinator/group-runtime.ts";
import { decidePreferredLeaderElection } from "../../../src/metadata/cluster-controller.ts";
import { decideAlterConfigs, decideCreatePartitions, decideCreateTopic, decideDeleteTopic } from "../../../src/metadata/controller.ts";
import type { MetadataImage } from "../../../src/metadata/image.ts";
import type { MetadataRecord } from "../../../src/metadata/records.ts";
import { encodeBatch, RecordCursor } from "../../../src/protocol/record-batch.ts";
import { ProduceAcks } from "../../../src/service/produce-types.ts";
import type { PartitionReplica } from "../../../src/replication/partition-replica.ts";
import { scheduleClientCuts } from "./client-cuts.ts";
import { scheduleFullDisks } from "./disk-full.ts";
import { DatedBatches } from "./hw-watch.ts";
import { WriteCopies } from "./duplicates.ts";
import { type Ack, batchCrcs, forEachRecordBut, History, recordsOf } from "./history.ts";
import { type AlterPartitionChanges, SIM_BROKER, SimNode } from "./node.ts";
import { REASSIGN_THROTTLE_BYTES_PER_SEC, Reassignments } from "./reassign.ts";
import { checkBrokerOnlyImages } from "./broker-only.ts";
import { CLIENT_ID, SimNet, World } from "./world.ts";
import { type BatchProducerEnv, batchProducer } from "./batch-producer.ts";
import { TxnWorkload } from "./txn-workload.ts";

export const TOPIC = "sim";

/** What a Fetch returned to a client. */
interface ReadResult {
  readonly hw: number;
  readonly records: ReadonlyArray<{ offset: number; value: string }>;
  /** Whether a settled leader answered (see readAt). */
  readonly settled: boolean;
  /**
   * When the node read it. The answer reaches the client later (network delay): a node may lose
   * power in between, and what it answered counts as held before that loss.
   */
  readonly servedAtMs: number;
  readonly error: Error | null;
}

/** What one run does; everything else follows from the seed. */
export interface ClusterSimSettings {
  readonly seed: number;
  readonly nodes: number;
  readonly partitions: number;
  readonly producers: number;
  /** Mean pause between one producer's writes. */
  readonly produceEveryMs: number;
  /**
   * linger.ms of the acks=all producers (batch-producer.ts): each batches the records its
   * application hands it every `produceEveryMs` (mean), one request in flight. Absent or 0: one
   * record per request, the next once it is answered (`producer`).
   */
  readonly lingerMs?: number;
  /** Faults are injected during [startup, faultMs). */
  readonly faultMs: number;
  /** After healing: how long everything runs fault-free before the liveness checks. */
  readonly healMs: number;
  readonly dropRate: number;
  /** Idempotent acks=all producers (retrying each batch with its sequence until acknowledged). */
  readonly idempotentProducers: number;
  /** Producers with acks=leader or acks=none (no durability promise; their records are checked as read). */
  readonly weakAcksProducers: number;
  /** replica.fetch.max.bytes: small values make a follower take many fetches to catch up. */
  readonly replicaFetchMaxBytes: number;
  /** Whether an admin changes the cluster during the faults (topics created, grown and deleted, configs, preferred elections). */
  readonly admin: boolean;
  /** Disk faults: torn last writes at power losses, slow fsyncs. */
  readonly diskFaults: boolean;
  /** One crash in this many is a power loss (unsynced writes lost); the rest are process kills. */
  readonly powerLossOneIn: number;
  /** Consumer groups (each subscribed to the topic) and members per group. */
  readonly groups: number;
  readonly groupMembers: number;
  /**
   * Laggard faults instead of the random fault schedule (scheduleLaggards): a follower of the
   * topic is cut off from its partition's leader until it leaves the ISR, the link comes back,
   * and while it catches up the leader is killed, so a new leader (whose high watermark may lag
   * its epoch's start) decides when it rejoins. Off unless asked for.
   */
  readonly laggards?: boolean;
  /** eligible.leader.replicas.enable of the controllers (issue 21, KIP-966); absent: true. */
  readonly eligibleLeaderReplicas?: boolean;
  /** Messages the network delivers twice during the faults (duplicates.ts); 0: none. */
  readonly duplicateRate: number;
  /** One-way cuts between the clients and a node during the faults (client-cuts.ts). */
  readonly clientCuts: boolean;
  /** A node's disk full for a while during the faults (disk-full.ts). */
  readonly fullDisks: boolean;
  /**
   * Transactional producers (txn-workload.ts: the nodes run the transaction coordinator, READ_COMMITTED
   * readers, exactly-once checks); absent or 0: none, and the nodes run no transaction coordinator.
   * Default 2 (off in LEGACY_SETTINGS).
   */
  readonly transactionalProducers?: number;
  /** Whether transactions commit a consumer group's offset too (TxnOffsetCommit; needs `groups` > 0 for __consumer_offsets' min.insync.replicas=2). */
  readonly transactionalOffsets?: boolean;
  /** With `admin`: partition reassignments during the faults (reassign.ts). */
  readonly reassignments: boolean;
  /**
   * Nodes with `process.roles=broker` besides the `nodes` voters (KRaft observers following the
   * metadata log from the voters): they hold and lead replicas and take the same faults.
   */
  readonly brokerOnlyNodes?: number;
}

export function clusterSettingsForSeed(seed: number, over: Partial<ClusterSimSettings> = {}): ClusterSimSettings {
  return {
    seed,
    nodes: 3,
    partitions: 3,
    producers: 3,
    produceEveryMs: 20,
    faultMs: 20_000,
    healMs: 15_000,
    dropRate: 0.02,
    powerLossOneIn: 3,
    diskFaults: true,
    admin: true,
    replicaFetchMaxBytes: 10 << 20,
    idempotentProducers: 2,
    weakAcksProducers: 1,
    groups: 1,
    groupMembers: 2,
    duplicateRate: 0.05,
    clientCuts: true,
    fullDisks: true,
    transactionalProducers: 2,
    transactionalOffsets: true,
    reassignments: true,
    brokerOnlyNodes: 1,
    ...over,
  };
}

export interface ClusterSimResult {
  readonly settings: ClusterSimSettings;
  readonly violations: History["violations"];
  /** sha256 of the event trace: the same seed gives the same hash. */
  readonly traceHash: string;
  readonly stats: {
    simMs: number;
    events: number;
    acked: number;
    produced: number;
    failedProduces: number;
    reads: number;
    staleHwReads: number;
    epochRefusedReads: number;
    consumed: number;
    crashes: number;
    powerLosses: number;
    partitions: number;
    leaderEpochs: number;
    messages: number;
    dropped: number;
    duplicated: number;
    clientCuts: number;
    diskFullRefusals: number;
    commits: number;
    committedReads: number;
    /** Committed-offset answers of a deposed coordinator, older than an earlier answer: not compared (deposed.ts). */
    deposedCoordinatorReads: number;
    /** Reassignment requests acknowledged (settings.reassignments), and of them cancels. */
    reassignments: number;
    reassignCancels: number;
    /** Leader epochs of the topic's partitions led by a broker-only node (settings.brokerOnlyNodes). */
    brokerOnlyLeaderEpochs: number;
  };
}

/** Runs one seed. `trace` receives every line of the event trace (for a replay). */
export async function runClusterSim(
  settings: ClusterSimSettings,
  trace: ((line: string) => void) | null = null,
): Promise<ClusterSimResult> {
  const sim = new ClusterSim(settings, trace);
  return sim.run();
}

class ClusterSim {
  private readonly world = new World();
  private readonly random: SeededRandom;
  private readonly net: SimNet;
  private readonly nodes = new Map<number, SimNode>();
  private readonly ids: number[];
  private readonly history = new History();
  /** Produce requests without idempotence, per value: how many times a node handled one (duplicates.ts). */
  private readonly copies = new WriteCopies();
  private readonly hash = createHash("sha256");
  /** Trace lines not hashed yet (see `trace`). */
  private traceChunk = "";
  private stopping = false;
  private crashes = 0;
  private partitionsMade = 0;
  private clientCutsMade = 0;
  /** Clients' belief of each partition's leader. */
  private readonly leaderGuess = new Map<number, number>();
  /**
   * The newest leader epoch clients have seen per partition. As a Kafka client's metadata
   * (KIP-320), an answer naming an older epoch is ignored, and reads send this epoch as
   * current_leader_epoch, so a fenced leader cut off from the cluster answers
   * UNKNOWN_LEADER_EPOCH rather than its stale high watermark.
   */
  private readonly leaderEpochGuess = new Map<number, number>();
  /** Per producer, acknowledged writes after healing (liveness). */
  private readonly ackedAfterHeal = new Map<number, number>();
  private healedAt = Number.POSITIVE_INFINITY;
  /** Group members that heartbeated after healing, and groups with a commit acknowledged after healing (liveness). */
  private readonly heartbeatsAfterHeal = new Set<string>();
  /** Topics the admin created, and those it deleted. */
  private readonly adminTopics = new Set<string>();
  private readonly deletedTopics = new Set<string>();
  /** The __consumer_offsets partitions of the groups (their leader changes are traced). */
  private readonly groupPartitions: ReadonlySet<number>;
  private readonly commitsAfterHeal = new Set<string>();
  /** The reassigning admin (settings.reassignments). */
  private reassign: Reassignments | null = null;
  /** The newest metadata offset traced. */
  private metadataTraced = 0;
  /** Per consumer (one per partition): next offset and the highest high watermark seen. */
  private readonly consumers = new Map<number, { offset: number; hw: number; hwNode: number; readAtMs: number }>();
  /** The transactional workload (settings.transactionalProducers). */
  private txn: TxnWorkload | null = null;

  constructor(
    private readonly s: ClusterSimSettings,
    private readonly traceOut: ((line: string) => void) | null,
  ) {
    this.random = new SeededRandom(s.seed);
    this.net = new SimNet(this.world, this.random.fork(), { dropRate: 0, minDelayMs: 1, maxDelayMs: 5, duplicateRate: s.duplicateRate });
    // Voters 1..nodes, then the broker-only nodes (observers).
    this.ids = Array.from({ length: s.nodes + (s.brokerOnlyNodes ?? 0) }, (_, i) => i + 1);
    this.groupPartitions = new Set(Array.from({ length: s.groups }, (_, g) => offsetsPartitionFor(`group-${g}`)));
    const nodeRandom = this.random.fork();
    const dated = new DatedBatches();
    for (const id of this.ids) {
      this.nodes.set(
        id,
        new SimNode(id, {
          world: this.world,
          net: this.net,
          voters: this.ids.slice(0, s.nodes),
          nodes: this.nodes,
          random: nodeRandom.fork(),
          trace: (l) => this.trace(l),
          onAlterPartition: (id, changes) => this.checkIsrExpansion(id, changes),
          committed: {
            topic: TOPIC,
            onCommitted: (p, offset, value) => this.history.hwPassed(p, offset, value, this.world.now),
            dated,
          },
          replicaFetchMaxBytes: s.replicaFetchMaxBytes,
          eligibleLeaderReplicas: s.eligibleLeaderReplicas ?? true,
          transactions: (s.transactionalProducers ?? 0) > 0,
          // Reassignments: added replicas catch up over seconds, so moves are cancelled and faulted midway.
          leaderReplicationThrottledRate: s.admin && s.reassignments ? REASSIGN_THROTTLE_BYTES_PER_SEC : 0,
        }),
      );
    }
  }

  private trace(line: string): void {
    const l = `${String(this.world.now).padStart(7)} ${line}`;
    // Hashed in chunks (the same bytes, so the same hash): a hash update per line cost more than the line.
    this.traceChunk += `${l}\n`;
    if (this.traceChunk.length > 1 << 16) this.hashTrace();
    this.traceOut?.(l);
  }

  /** Hashes the trace lines not hashed yet. */
  private hashTrace(): void {
    this.hash.update(this.traceChunk);
    this.traceChunk = "";
  }

  async run(): Promise<ClusterSimResult> {
    const onRejection = (e: unknown): void => {
      if (isDiskFailure(e)) return; // its process halted (see World.burst)
      this.world.failure ??= e instanceof Error ? e : new Error(String(e));
    };
    process.on("unhandledRejection", onRejection);
    // Errors are made by the thousand on ordinary paths (a follower fetching from a restarted
    // leader, a call timing out), and capturing each one's stack was ~4% of a run. A failed
    // assertion keeps its stack (AssertionError); SIM_STACKS=1 keeps every error's.
    const stackTraceLimit = Error.stackTraceLimit;
    if (process.env.SIM_STACKS !== "1") Error.stackTraceLimit = 0;
    try {
      for (const n of this.nodes.values()) this.startNode(n);
      let created = false;
      void this.createTopic().then(() => {
        created = true;
      });
      while (!created && this.world.failure === null) {
        if (this.world.now > 60_000) throw new Error("the topic could not be created within 60 s");
        await this.world.runUntil(this.world.now + 100);
      }
      for (let p = 0; p < this.s.producers; p++) void ((this.s.lingerMs ?? 0) > 0 ? batchProducer(this.batchEnv(), p) : this.producer(p));
      for (let p = 0; p < this.s.idempotentProducers; p++) void this.idempotentProducer(p);
      for (let p = 0; p < this.s.weakAcksProducers; p++) void this.weakAcksProducer(p);
      for (let p = 0; p < this.s.partitions; p++) void this.consumer(p);
      if (this.s.groups > 0)
        void this.configureOffsetsTopic().then(() => {
          for (let g = 0; g < this.s.groups; g++) {
            for (let m = 0; m < this.s.groupMembers; m++) void this.groupMember(`group-${g}`, m);
            void this.committedChecker(`group-${g}`);
          }
        });
      if (this.s.laggards === true) this.scheduleLaggards();
      else this.scheduleFaults();
      if (this.s.clientCuts)
        scheduleClientCuts({
          world: this.world,
          net: this.net,
          random: this.random.fork(),
          ids: this.ids,
          faultMs: this.s.faultMs,
          trace: (l) => this.trace(l),
          onCut: () => this.clientCutsMade++,
        });
      if (this.s.fullDisks)
        scheduleFullDisks({
          world: this.world,
          random: this.random.fork(),
          nodes: this.nodes,
          faultMs: this.s.faultMs,
          trace: (l) => this.trace(l),
        });
      if (this.s.admin) void this.adminClient();
      if ((this.s.transactionalProducers ?? 0) > 0) {
        this.txn = new TxnWorkload({
          world: this.world,
          random: this.random.fork(),
          nodes: this.nodes,
          history: this.history,
          producers: this.s.transactionalProducers!,
          offsets: this.s.transactionalOffsets === true && this.s.groups > 0,
          faultMs: this.s.faultMs,
          healMs: this.s.healMs,
          trace: (l) => this.trace(l),
          call: (to, fn, timeoutMs) => this.call(to, fn, timeoutMs),
          powerLossesSince: (t) => this.powerLossesSince(t),
          healedAt: () => this.healedAt,
        });
        this.txn.start();
      }
      if (this.s.admin && this.s.reassignments) void this.reassignments().run();
      await this.world.runUntil(this.s.faultMs);
      this.heal();
      await this.world.runUntil(this.s.faultMs + this.s.healMs);
      this.stopping = true;
      // Let the in-flight produces finish and replication settle.
      await this.world.runUntil(this.s.faultMs + this.s.healMs + 3000);
      if (this.world.failure) this.failure(this.world.failure);
      else this.finalChecks();
    } catch (e) {
      // Thrown outside an event (a node `heal` starts failed an assertion opening its disk, say):
      // the run stops with it as a violation, as one inside an event would, not the sweep. A
      // failure that stopped the events first (the run goes on to `heal` then) comes before it.
      if (this.world.failure) this.failure(this.world.failure);
      this.failure(e instanceof Error ? e : new Error(String(e)));
    } finally {
      process.off("unhandledRejection", onRejection);
      Error.stackTraceLimit = stackTraceLimit;
    }
    for (const v of this.history.violations) this.trace(`VIOLATION ${v.check}: ${v.detail}`);
    this.hashTrace();
    const h = this.history;
    const powerLosses = [...this.nodes.values()].reduce((n, x) => n + x.powerLosses.length, 0);
    return {
      settings: this.s,
      violations: h.violations,
      traceHash: this.hash.digest("hex"),
      stats: {
        simMs: this.world.now,
        events: this.world.events,
        acked: h.acks.length,
        produced: h.produced,
        failedProduces: h.failedProduces,
        reads: h.reads,
        staleHwReads: h.staleHwReads,
        epochRefusedReads: h.epochRefusedReads,
        consumed: [...h.consumed.values()].reduce((n, m) => n + m.size, 0),
        crashes: this.crashes,
        powerLosses,
        partitions: this.partitionsMade,
        leaderEpochs: h.leaders.size,
        messages: this.net.sent,
        dropped: this.net.dropped,
        duplicated: this.net.duplicated,
        clientCuts: this.clientCutsMade,
        diskFullRefusals: [...this.nodes.values()].reduce((n, x) => n + x.space.refused, 0),
        commits: h.commitCount,
        committedReads: h.committedReads,
        deposedCoordinatorReads: h.deposedCoordinatorReads,
        reassignments: this.reassign?.acked ?? 0,
        reassignCancels: this.reassign?.cancels ?? 0,
        brokerOnlyLeaderEpochs: [...h.leaders.values()].filter((id) => id > this.s.nodes).length,
      },
    };
  }

  private failure(e: Error): void {
    const kind = e instanceof AssertionError ? "assertion" : "crash";
    const frames = e.stack?.split("\n").slice(1, 6) ?? [];
    const where = frames.length > 0 ? `\n${frames.join("\n")}` : " (SIM_STACKS=1 for its stack)";
    this.history.violation(kind, `${e.name}: ${e.message}${where}`, this.world.now);
  }

  private startNode(n: SimNode): void {
    n.start();
    if (!n.up) return; // its disk failed (disk-full.ts)
    const rm = n.running!.rm;
    const seen = (r: PartitionReplica): void => {
      if (r.topic !== TOPIC) return;
      this.trace(
        `node ${n.id}: ${TOPIC}-${r.partition} ${r.role} epoch ${r.leaderEpoch} isr ${r.isr.join(",")} (log end ${r.log.logEndOffset}, last epoch ${r.log.latestEpoch}, hw ${r.hw})`,
      );
      if (r.role === "leader") this.history.leaderSeen(r.partition, r.leaderEpoch, n.id, this.world.now);
    };
    rm.onRoleChange(seen);
    // The metadata log as it commits (each offset traced once, by the first node to apply it).
    n.running!.store.onChange((c) => {
      if (c.snapshot === true || c.offset <= this.metadataTraced) return;
      this.metadataTraced = c.offset;
      for (const r of c.records) {
        if (r.type === "partition-change" && r.topic === OFFSETS_TOPIC && this.groupPartitions.has(r.partition))
          this.trace(
            `metadata@${c.offset}: ${OFFSETS_TOPIC}-${r.partition} leader ${r.leader} epoch ${r.leaderEpoch} isr ${r.isr.join(",")} (partition epoch ${r.partitionEpoch})`,
          );
        else if (r.type === "partition-change" && r.topic === TOPIC)
          this.trace(
            `metadata@${c.offset}: ${TOPIC}-${r.partition} leader ${r.leader} epoch ${r.leaderEpoch} isr ${r.isr.join(",")}` +
              `${r.elr ? ` elr ${r.elr.join(",")}` : ""}${r.lastKnownElr ? ` last known elr ${r.lastKnownElr.join(",")}` : ""}` +
              `${r.replicas ? ` replicas ${r.replicas.join(",")} adding ${(r.addingReplicas ?? []).join(",")} removing ${(r.removingReplicas ?? []).join(",")}` : ""} (partition epoch ${r.partitionEpoch})`,
          );
        else if (r.type === "broker-fence") this.trace(`metadata@${c.offset}: broker ${r.nodeId} ${r.fenced ? "fenced" : "unfenced"}`);
        else if (r.type === "broker")
          this.trace(
            `metadata@${c.offset}: broker ${r.nodeId} registered (${r.incarnationId ?? ""}${r.uncleanShutdown ? ", unclean shutdown" : ""})`,
          );
      }
    });
    // The roles its image gave it on opening (before anyone could listen).
    for (const r of [...rm.led(), ...rm.followed()]) seen(r);
  }

  private upNodes(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.up);
  }

  private pick<T>(xs: readonly T[]): T {
    return xs[this.random.int(xs.length)]!;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((r) => this.world.schedule(ms, r, null));
  }

  /** A client call to node `to`. */
  private call<T>(to: number, fn: (n: SimNode) => T | Promise<T>, timeoutMs = 6000): Promise<T> {
    const n = this.nodes.get(to)!;
    return this.net.call(CLIENT_ID, to, n.current, async () => fn(n), null, timeoutMs);
  }

  /** CreateTopics through the active controller (retried until it is done). */
  private async createTopic(): Promise<void> {
    for (let attempt = 0; !this.stopping; attempt++) {
      const leader = this.upNodes().find((n) => n.running!.store.isLeader);
      // With broker-only nodes, placement waits (up to 10 s) for every broker to register and be unfenced.
      const waiting = (this.s.brokerOnlyNodes ?? 0) > 0 && this.world.now < 10_000;
      if (leader && (!waiting || leader.running!.store.image.unfencedBrokers().length === this.ids.length)) {
        try {
          await this.call(leader.id, (n) =>
            n.running!.store.commit((img) =>
              img.topics.has(TOPIC)
                ? []
                : decideCreateTopic(
                    img,
                    { name: TOPIC, partitions: this.s.partitions, replicationFactor: 3, configs: { "min.insync.replicas": "2" } },
                    { partitions: this.s.partitions, brokers: img.unfencedBrokers(), random: this.random },
                  ),
            ),
          );
          this.trace(`topic ${TOPIC} created: ${this.s.partitions} partitions, replication factor 3, min.insync.replicas 2`);
          return;
        } catch (e) {
          this.trace(`create topic failed: ${(e as Error).message}`);
        }
      }
      await this.sleep(attempt === 0 ? 2000 : 500);
    }
  }

  /**
   * Sets min.insync.replicas=2 on __consumer_offsets once the controller created it (an admin's
   * AlterConfigs, as a cluster that keeps commits through one power loss is configured), so an
   * acknowledged commit survives a power loss of its coordinator.
   */
  private async configureOffsetsTopic(): Promise<void> {
    while (!this.stopping) {
      const leader = this.upNodes().find((n) => n.running!.store.isLeader);
      if (leader?.running?.store.image.topics.has(OFFSETS_TOPIC)) {
        try {
          await this.call(leader.id, (n) =>
            n.running!.store.commit((img) => decideAlterConfigs(img, OFFSETS_TOPIC, { "min.insync.replicas": "2" }, [])),
          );
          this.trace(`topic ${OFFSETS_TOPIC}: min.insync.replicas 2`);
          return;
        } catch (e) {
          this.trace(`alter configs of ${OFFSETS_TOPIC} failed: ${(e as Error).message}`);
        }
      }
      await this.sleep(500);
    }
  }

  /** Runs a controller decision at the active controller (as the admin service does). */
  private async atController(what: string, decide: (img: MetadataImage) => MetadataRecord[]): Promise<boolean> {
    const leader = this.upNodes().find((n) => n.running!.store.isLeader);
    if (!leader) return false;
    try {
      await this.call(leader.id, (n) => n.running!.store.commit(decide));
      this.trace(`admin: ${what}`);
      return true;
    } catch (e) {
      this.trace(`admin: ${what} failed: ${e instanceof RillError ? e.kind.name : (e as Error).message}`);
      return false;
    }
  }

  /**
   * An admin during the faults: creates topics (replication factor 3), adds partitions to them,
   * deletes them, changes the main topic's segment size (segments roll under the writers) and
   * runs preferred leader elections. Topics deleted must be gone from every node after healing;
   * topics kept must have a leader for every partition.
   */
  private async adminClient(): Promise<void> {
    let n = 0;
    while (this.world.now < this.s.faultMs) {
      await this.sleep(1000 + this.random.int(2000));
      const live = [...this.adminTopics].filter((t) => !this.deletedTopics.has(t));
      const roll = this.random.int(5);
      if (roll === 0 || live.length === 0) {
        const name = `admin-${n++}`;
        const partitions = 1 + this.random.int(2);
        if (
          await this.atController(`create topic ${name} (${partitions} partitions)`, (img) =>
            decideCreateTopic(
              img,
              { name, partitions, replicationFactor: 3, configs: {} },
              { partitions, brokers: img.unfencedBrokers(), random: this.random },
            ),
          )
        )
          this.adminTopics.add(name);
      } else if (roll === 1) {
        const name = this.pick(live);
        if (await this.atController(`delete topic ${name}`, (img) => decideDeleteTopic(img, name))) this.deletedTopics.add(name);
      } else if (roll === 2) {
        const name = this.pick(live);
        await this.atController(`add a partition to ${name}`, (img) =>
          decideCreatePartitions(img, name, (img.topics.get(name)?.partitions.length ?? 0) + 1, img.unfencedBrokers(), this.random),
        );
      } else if (roll === 3) {
        const bytes = this.random.int(2) === 0 ? 2048 : 1 << 20;
        await this.atController(`${TOPIC} segment.bytes ${bytes}`, (img) =>
          decideAlterConfigs(img, TOPIC, { "segment.bytes": String(bytes) }, []),
        );
      } else {
        await this.atController("preferred leader election", (img) => decidePreferredLeaderElection(img).records);
      }
    }
  }

  /** The reassigning admin (settings.reassignments), over this run's controller calls. */
  private reassignments(): Reassignments {
    this.reassign = new Reassignments({
      random: this.random,
      now: () => this.world.now,
      untilMs: this.s.faultMs,
      brokers: this.ids,
      mainTopic: TOPIC,
      otherTopics: () => [...this.adminTopics].filter((t) => !this.deletedTopics.has(t)),
      image: () => this.upNodes()[0]?.running?.store.image,
      atController: (what, decide) => this.atController(what, decide),
      sleep: (ms) => this.sleep(ms),
      trace: (l) => this.trace(l),
    });
    return this.reassign;
  }

  /** Asks a random up node which broker leads `partition` (a Metadata request). */
  private async refreshLeader(partition: number): Promise<void> {
    const up = this.upNodes();
    if (up.length === 0) return;
    const at = this.pick(up).id;
    try {
      const { leader, epoch } = await this.call(
        at,
        (n) => {
          const p = n.running!.store.image.topics.get(TOPIC)?.partitions[partition];
          return { leader: p?.leader ?? -1, epoch: p?.leaderEpoch ?? -1 };
        },
        1000,
      );
      if (leader > 0 && epoch >= (this.leaderEpochGuess.get(partition) ?? -1)) {
        this.leaderGuess.set(partition, leader);
        this.leaderEpochGuess.set(partition, epoch);
      }
    } catch {
      // ask again later
    }
  }

  /** One acks=all producer: one write in flight, values unique per run. */
  private async producer(id: number): Promise<void> {
    let seq = 0;
    while (!this.stopping) {
      await this.sleep(1 + this.random.int(2 * this.s.produceEveryMs));
      if (this.stopping) break;
      const partition = this.random.int(this.s.partitions);
      const leader = this.leaderGuess.get(partition);
      if (leader === undefined) {
        await this.refreshLeader(partition);
        continue;
      }
      const value = `p${id}-${seq++}`;
      this.history.produced++;
      try {
        const { offset, decidedAt } = await this.call(leader, async (n) => {
          this.copies.handle(value);
          const r = n.running!;
          const batch = encodeBatch([{ value }], { nowMs: this.world.clock.nowMs() });
          const res = r.rm.append(TOPIC, partition, batch, "all");
          await r.rm.replicated(TOPIC, partition, res.lastOffset, 5000);
          await r.rm.durable(TOPIC, partition);
          return { offset: res.baseOffset, decidedAt: this.world.now };
        });
        const ack: Ack = { partition, offset, value, atMs: decidedAt };
        this.history.acked(ack);
        this.trace(`ack ${value} -> ${TOPIC}-${partition}@${offset} (leader ${leader})`);
        if (this.world.now >= this.healedAt) this.ackedAfterHeal.set(id, (this.ackedAfterHeal.get(id) ?? 0) + 1);
      } catch (e) {
        this.history.failedProduces++;
        const why = e instanceof RillError ? e.kind.name : (e as Error).message;
        this.trace(`produce ${value} -> ${TOPIC}-${partition} at node ${leader} failed: ${why}`);
        await this.refreshLeader(partition);
      }
    }
  }

  /** What the batching producers (settings.lingerMs) use of this run. */
  private batchEnv(): BatchProducerEnv {
    return {
      world: this.world,
      random: this.random,
      topic: TOPIC,
      partitions: this.s.partitions,
      produceEveryMs: this.s.produceEveryMs,
      lingerMs: this.s.lingerMs ?? 0,
      history: this.history,
      copies: this.copies,
      stopping: () => this.stopping,
      leaderOf: (p) => this.leaderGuess.get(p),
      refreshLeader: (p) => this.refreshLeader(p),
      call: (to, fn) => this.call(to, fn),
      sleep: (ms) => this.sleep(ms),
      trace: (l) => this.trace(l),
      onAck: (id) => {
        if (this.world.now >= this.healedAt) this.ackedAfterHeal.set(id, (this.ackedAfterHeal.get(id) ?? 0) + 1);
      },
    };
  }

  /** A Fetch of `partition` from `offset` at node `at` (below the high watermark), decoded. */
  private readAt(at: number, partition: number, offset: number): Promise<ReadResult> {
    return this.call(
      at,
      (n) => {
        const currentLeaderEpoch = this.leaderEpochGuess.get(partition) ?? -1;
        const d = n.running!.rm.readPartition({ topic: TOPIC, partition, offset, maxBytes: 64 << 10, currentLeaderEpoch });
        // The leader acting now, past the by-design lag of a new leader's high watermark
        // (KIP-207): until it reaches its epoch's start it may answer a lower one.
        const r = n.running!.rm.replica(TOPIC, partition);
        const settled = r?.role === "leader" && n.running!.rm.leading && r.hw >= r.epochStartOffset;
        const servedAtMs = this.world.now;
        if (d.error) return { hw: -1, records: [], settled, error: d.error, servedAtMs };
        const records: Array<{ offset: number; value: string }> = [];
        const cursor = new RecordCursor();
        for (const chunk of d.read?.chunks ?? []) {
          let pos = 0;
          while (pos < chunk.length) {
            const c = cursor.reset(chunk, pos);
            while (c.next()) records.push({ offset: c.offset, value: c.valueString() ?? "" });
            pos += chunk.readInt32BE(pos + 8) + 12;
          }
        }
        return { hw: d.highWatermark, records, settled, error: null, servedAtMs };
      },
      2000,
    );
  }

  /** InitProducerId at the active controller (retried until issued); null once stopping. */
  private async initProducerId(): Promise<{ producerId: number; producerEpoch: number } | null> {
    while (!this.stopping) {
      const leader = this.upNodes().find((n) => n.running!.store.isLeader);
      if (leader) {
        try {
          return await this.call(leader.id, (n) => n.running!.rm.initProducerId({ transactionalId: "", producerEpoch: -1 }));
        } catch {
          // ask again
        }
      }
      await this.sleep(300);
    }
    return null;
  }

  /**
   * An idempotent acks=all producer (Kafka's enable.idempotence): a producer id from
   * InitProducerId, one batch in flight, each sent through the leader's real produce handler
   * with its partition's next sequence and retried as it is — same sequence — until acknowledged,
   * so the log must hold it exactly once. Its values start with "i".
   *
   * Once min.insync.replicas nodes have lost power since its last acknowledgement on a partition,
   * acknowledged batches may be gone and the leader answers OUT_OF_ORDER_SEQUENCE_NUMBER to every
   * retry. Then, as Kafka's producer does since KIP-360, it gives that write up and starts over
   * with a new producer id and sequence 0 (seed 3175); without such losses the answer is a bug
   * and it keeps retrying (the liveness check reports it).
   */
  private async idempotentProducer(id: number): Promise<void> {
    const first = await this.initProducerId();
    if (first === null) return;
    let pid = first;
    this.trace(`idempotent producer ${id}: producer id ${pid.producerId} epoch ${pid.producerEpoch}`);
    const seqs = new Map<number, number>();
    /** When each partition's last write was acknowledged (0: none yet). */
    const lastAckAt = new Map<number, number>();
    const key = 1000 + id;
    let n = 0;
    while (!this.stopping) {
      await this.sleep(1 + this.random.int(2 * this.s.produceEveryMs));
      if (this.stopping) break;
      const partition = this.random.int(this.s.partitions);
      const seq = seqs.get(partition) ?? 0;
      const value = `i${id}-${n++}`;
      const batch = encodeBatch([{ value }], {
        nowMs: this.world.clock.nowMs(),
        producerId: pid.producerId,
        producerEpoch: pid.producerEpoch,
        baseSequence: seq,
      });
      this.history.produced++;
      this.history.idempotentValues.add(value);
      for (let attempt = 0; ; attempt++) {
        const leader = this.leaderGuess.get(partition);
        if (leader === undefined || attempt > 0) await this.refreshLeader(partition);
        const to = this.leaderGuess.get(partition);
        if (to === undefined) {
          await this.sleep(100);
          continue;
        }
        try {
          const { res, decidedAt } = await this.call(to, async (nd) => {
            const answer = await nd.running!.produce.produce({
              topic: TOPIC,
              partition,
              records: [],
              recordBatch: batch,
              acks: ProduceAcks.ALL,
              timeoutMs: 5000,
              producerId: BigInt(pid.producerId),
              producerEpoch: pid.producerEpoch,
              baseSequence: seq,
            });
            return { res: answer, decidedAt: this.world.now };
          });
          const r = res.partitions[0]!;
          if (r.error) throw r.error;
          seqs.set(partition, seq + 1);
          lastAckAt.set(partition, decidedAt);
          this.history.acked({ partition, offset: r.baseOffset, value, atMs: decidedAt });
          this.trace(`ack ${value} -> ${TOPIC}-${partition}@${r.baseOffset} (leader ${to}, attempt ${attempt + 1})`);
          if (this.world.now >= this.healedAt) this.ackedAfterHeal.set(key, (this.ackedAfterHeal.get(key) ?? 0) + 1);
          break;
        } catch (e) {
          this.history.failedProduces++;
          const why = e instanceof RillError ? e.kind.name : (e as Error).message;
          this.trace(`produce ${value} -> ${TOPIC}-${partition} at node ${to} failed (attempt ${attempt + 1}): ${why}`);
          if (why === "OUT_OF_ORDER_SEQUENCE_NUMBER" && this.powerLossesSince(lastAckAt.get(partition) ?? 0) >= 2) {
            const next = await this.initProducerId();
            if (next === null) return;
            pid = next;
            seqs.clear();
            lastAckAt.clear();
            this.trace(`idempotent producer ${id}: acknowledged writes may be lost; gives ${value} up, new producer id ${pid.producerId}`);
            break;
          }
          // Past the end of the run: the outcome stays unknown.
          if (this.stopping && this.world.now > this.s.faultMs + this.s.healMs + 1500) return;
          await this.sleep(50 + this.random.int(100));
        }
      }
    }
  }

  /** A producer with acks=leader or acks=none (chosen per write): nothing promised, its records are checked as read. */
  private async weakAcksProducer(id: number): Promise<void> {
    let n = 0;
    while (!this.stopping) {
      await this.sleep(1 + this.random.int(4 * this.s.produceEveryMs));
      if (this.stopping) break;
      const partition = this.random.int(this.s.partitions);
      const leader = this.leaderGuess.get(partition);
      if (leader === undefined) {
        await this.refreshLeader(partition);
        continue;
      }
      const acks = this.random.int(2) === 0 ? ProduceAcks.LEADER : ProduceAcks.NONE;
      const value = `w${id}-${n++}`;
      this.history.produced++;
      try {
        const res = await this.call(leader, (nd) => {
          this.copies.handle(value);
          return nd.running!.produce.produce({
            topic: TOPIC,
            partition,
            records: [{ key: null, value: Buffer.from(value), headers: [], timestampMs: null }],
            recordBatch: null,
            acks,
            timeoutMs: 5000,
            producerId: undefined,
            producerEpoch: -1,
            baseSequence: -1,
          });
        });
        if (res.partitions[0]?.error) throw res.partitions[0].error;
      } catch {
        this.history.failedProduces++;
        await this.refreshLeader(partition);
      }
    }
  }

  /** One consumer per partition, reading from the leader below the high watermark. */
  private async consumer(partition: number): Promise<void> {
    // readAtMs: when the record below `offset` (lastValue) was read.
    const c = { offset: 0, hw: 0, hwNode: 0, hwAtMs: 0, readAtMs: 0, lastValue: "" };
    this.consumers.set(partition, c);
    for (;;) {
      await this.sleep(10 + this.random.int(40));
      if (this.stopping && this.world.now > this.s.faultMs + this.s.healMs + 2000) return;
      const leader = this.leaderGuess.get(partition);
      if (leader === undefined) {
        await this.refreshLeader(partition);
        continue;
      }
      try {
        const got = await this.readAt(leader, partition, c.offset);
        this.history.reads++;
        if (got.error) {
          // Out of range at a settled leader: it lost what this consumer read below a high
          // watermark (unless two nodes lost power since it was committed). Elsewhere: a stale replica.
          const name = got.error instanceof RillError ? got.error.kind.name : got.error.message;
          const committedAt = this.history.committedBy(partition, c.offset - 1, c.lastValue, c.readAtMs);
          if (name === "OFFSET_OUT_OF_RANGE" && got.settled && this.powerLossesSince(committedAt) < 2)
            this.history.violation(
              "consumer-out-of-range",
              `partition ${partition}: offset ${c.offset} is out of range at leader ${leader}`,
              this.world.now,
            );
          else if (name === "OFFSET_OUT_OF_RANGE") this.history.staleHwReads++;
          else if (name === "FENCED_LEADER_EPOCH" || name === "UNKNOWN_LEADER_EPOCH") this.history.epochRefusedReads++;
          await this.refreshLeader(partition);
          continue;
        }
        if (got.hw < c.hw && !got.settled) this.history.staleHwReads++;
        else if (got.hw < c.hw && this.powerLossesSince(c.hwAtMs) >= 2) {
          // min.insync.replicas (2) nodes lost power since that high watermark was read: what
          // lay below it may be gone. Followed from here.
          this.history.staleHwReads++;
          [c.hw, c.hwNode, c.hwAtMs] = [got.hw, leader, got.servedAtMs];
        } else if (got.hw < c.hw)
          this.history.violation(
            "hw-backwards",
            `partition ${partition}: a consumer saw high watermark ${c.hw} from node ${c.hwNode}, then ${got.hw} from node ${leader}`,
            this.world.now,
          );
        if (got.hw > c.hw) [c.hw, c.hwNode, c.hwAtMs] = [got.hw, leader, got.servedAtMs];
        for (const r of got.records) {
          if (r.offset < c.offset) continue;
          if (r.offset >= got.hw) {
            this.history.violation(
              "read-above-hw",
              `partition ${partition}: offset ${r.offset} returned with high watermark ${got.hw}`,
              this.world.now,
            );
            break;
          }
          this.history.consumedAt(partition, r.offset, r.value, got.servedAtMs, (t) => this.powerLossesSince(t));
          c.offset = r.offset + 1;
          c.readAtMs = got.servedAtMs;
          c.lastValue = r.value;
        }
      } catch {
        await this.refreshLeader(partition);
      }
    }
  }

  /** The node that coordinates `group` (FindCoordinator at a random up node), or -1. */
  private async findCoordinator(group: string): Promise<number> {
    const up = this.upNodes();
    if (up.length === 0) return -1;
    try {
      return await this.call(this.pick(up).id, (n) => n.running!.groupsService.coordinatorOf(group), 1000);
    } catch {
      return -1;
    }
  }

  /**
   * One member of a consumer group (KIP-848 heartbeats to the real group coordinator): it reads
   * the partitions it is assigned from their leaders, from the committed offset on, commits its
   * position, and commits a revoked partition before it acknowledges the revocation. Sequential,
   * as a client's poll loop.
   */
  private async groupMember(group: string, id: number): Promise<void> {
    const name = `${group}/member-${id}`;
    let memberId = "";
    let epoch = 0;
    let coordinator = -1;
    let lastHeartbeat = Number.NEGATIVE_INFINITY;
    let lastCommit = 0;
    let turn = 0;
    /** Owned partition → position (next offset to read) and the last committed position. */
    const owned = new Map<number, { position: number; committed: number }>();
    const reset = (why: string): void => {
      this.trace(`${name}: rejoins (${why})`);
      memberId = "";
      epoch = 0;
      owned.clear();
    };
    const failed = (e: unknown): void => {
      const kind = e instanceof RillError ? e.kind.name : "";
      if (kind === "FENCED_MEMBER_EPOCH" || kind === "UNKNOWN_MEMBER_ID") reset(kind);
      else coordinator = -1;
    };
    const commit = async (partitions: readonly number[]): Promise<void> => {
      const offsets = partitions
        .map((p) => ({ p, o: owned.get(p)! }))
        .filter(({ o }) => o.position > o.committed)
        .map(({ p, o }) => ({ topic: TOPIC, partition: p, offset: o.position, metadata: "", leaderEpoch: -1 }));
      if (offsets.length === 0) return;
      // When the coordinator decided (its answer may arrive after it lost power).
      const { res, decidedAt } = await this.call(coordinator, async (n) => {
        const r = await n.running!.groupsService.commitOffsets({ groupId: group, memberId, memberEpoch: epoch, offsets });
        return { res: r, decidedAt: this.world.now };
      });
      if (res.error) throw res.error;
      for (const o of res.offsets) {
        if (o.error) continue;
        owned.get(o.partition)!.committed = o.offset;
        this.history.commitAcked(group, o.partition, o.offset, this.world.now, decidedAt);
        this.trace(`${name}: committed ${TOPIC}-${o.partition}@${o.offset} (coordinator ${coordinator})`);
        if (this.world.now >= this.healedAt) this.commitsAfterHeal.add(group);
      }
    };
    while (!(this.stopping && this.world.now > this.s.faultMs + this.s.healMs + 2000)) {
      await this.sleep(20 + this.random.int(60));
      if (coordinator < 0) {
        coordinator = await this.findCoordinator(group);
        if (coordinator < 0) await this.sleep(200);
        continue;
      }
      try {
        if (epoch === 0 || this.world.now - lastHeartbeat >= 500) {
          const res = await this.call(
            coordinator,
            (n) =>
              n.running!.groupsService.heartbeat({
                groupId: group,
                memberId,
                memberEpoch: epoch,
                instanceId: null,
                topics: epoch === 0 ? [TOPIC] : null,
                owned: [{ topic: TOPIC, partitions: [...owned.keys()].sort((a, b) => a - b) }],
                assignor: "",
                sessionTimeoutMs: 6000,
                rebalanceTimeoutMs: 6000,
                clientId: name,
              }),
            2000,
          );
          lastHeartbeat = this.world.now;
          if (memberId !== res.memberId || epoch !== res.memberEpoch) this.trace(`${name}: ${res.memberId} epoch ${res.memberEpoch}`);
          memberId = res.memberId;
          epoch = res.memberEpoch;
          if (this.world.now >= this.healedAt) this.heartbeatsAfterHeal.add(name);
          const assigned = new Set(res.assignment.filter((t) => t.topic === TOPIC).flatMap((t) => t.partitions));
          // Revoked: commit, then let go (the next heartbeat acknowledges it).
          const revoked = [...owned.keys()].filter((p) => !assigned.has(p));
          if (revoked.length > 0) {
            await commit(revoked);
            for (const p of revoked) owned.delete(p);
            this.trace(`${name}: gave up ${TOPIC}-${revoked.join(",")}`);
            lastHeartbeat = Number.NEGATIVE_INFINITY;
          }
          const added = [...assigned].filter((p) => !owned.has(p));
          if (added.length > 0) {
            const sentAt = this.world.now;
            const { got, servedAt } = await this.call(coordinator, async (n) => {
              const r = await n.running!.groupsService.fetchOffsets(group, [{ topic: TOPIC, partitions: added }]);
              return { got: r, servedAt: this.world.now };
            });
            for (const c of got) {
              const losses = (t: number) => this.powerLossesSince(t);
              this.history.committedRead(group, c.partition, c.offset, sentAt, this.world.now, losses, servedAt);
              const start = Math.max(c.offset, 0);
              owned.set(c.partition, { position: start, committed: start });
            }
            this.trace(`${name}: took ${TOPIC}-${added.join(",")} at ${got.map((c) => c.offset).join(",")}`);
          }
          continue;
        }
        if (owned.size > 0 && this.world.now - lastCommit >= 300) {
          lastCommit = this.world.now;
          await commit([...owned.keys()]);
          continue;
        }
        // Reads one owned partition per round, from its leader.
        const ps = [...owned.keys()].sort((a, b) => a - b);
        if (ps.length === 0) continue;
        const p = ps[turn++ % ps.length]!;
        const leader = this.leaderGuess.get(p);
        if (leader === undefined) {
          await this.refreshLeader(p);
          continue;
        }
        const o = owned.get(p)!;
        const got = await this.readAt(leader, p, o.position).catch(() => null);
        if (got === null || got.error) {
          await this.refreshLeader(p);
          continue;
        }
        for (const r of got.records) {
          if (r.offset < o.position || r.offset >= got.hw) continue;
          this.history.consumedAt(p, r.offset, r.value, got.servedAtMs, (t) => this.powerLossesSince(t));
          o.position = r.offset + 1;
        }
      } catch (e) {
        failed(e);
      }
    }
  }

  /**
   * Fetches the group's committed offsets from its coordinator now and then (as an admin tool
   * or a lag monitor would): every answer is checked against the commits acknowledged before
   * it was asked and the answers before it.
   */
  private async committedChecker(group: string): Promise<void> {
    let coordinator = -1;
    while (!(this.stopping && this.world.now > this.s.faultMs + this.s.healMs + 2000)) {
      await this.sleep(300 + this.random.int(400));
      if (coordinator < 0) {
        coordinator = await this.findCoordinator(group);
        continue;
      }
      const sentAt = this.world.now;
      try {
        const { got, servedAt } = await this.call(
          coordinator,
          async (n) => {
            const r = await n.running!.groupsService.fetchOffsets(group, null);
            return { got: r, servedAt: this.world.now };
          },
          2000,
        );
        this.trace(`${group}: committed ${got.map((c) => `${c.partition}@${c.offset}`).join(" ")} (coordinator ${coordinator})`);
        for (const c of got)
          if (c.topic === TOPIC)
            this.history.committedRead(group, c.partition, c.offset, sentAt, this.world.now, (t) => this.powerLossesSince(t), servedAt);
      } catch {
        coordinator = -1;
      }
    }
  }

  /** Faults at random moments until `faultMs`: at most one node down at a time (a majority stays). */
  private scheduleFaults(): void {
    const step = (): void => {
      if (this.world.now >= this.s.faultMs) return;
      const down = [...this.nodes.values()].filter((n) => !n.up);
      const roll = this.random.int(100);
      if (down.length > 0 && roll < 40) {
        const n = this.pick(down);
        this.trace(`fault: restart node ${n.id}`);
        this.startNode(n);
      } else if (down.length === 0 && roll < 45) {
        const n = this.pick([...this.nodes.values()]);
        const power = this.random.int(this.s.powerLossOneIn) === 0;
        this.crashes++;
        this.trace(`fault: crash node ${n.id}`);
        n.crash(power, power && this.s.diskFaults && this.random.int(2) === 0 ? this.random : null);
      } else if (roll < 60 && !this.net.partitioned) {
        const n = this.pick(this.ids);
        this.partitionsMade++;
        if (this.random.int(2) === 0) {
          this.trace(`fault: isolate node ${n}`);
          this.net.isolate([n], this.ids);
        } else {
          const m = this.pick(this.ids.filter((x) => x !== n));
          this.trace(`fault: cut link ${n} -> ${m}`);
          this.net.cutLink(n, m);
        }
      } else if (roll < 80 && this.net.partitioned) {
        this.trace("fault: heal the network");
        this.net.heal();
      } else if (roll < 90) {
        this.net.faults.dropRate = this.random.int(2) === 0 ? 0 : this.s.dropRate;
        this.net.faults.maxDelayMs = this.random.int(2) === 0 ? 5 : 50;
        this.trace(`fault: network drop ${this.net.faults.dropRate}, delay 1..${this.net.faults.maxDelayMs} ms`);
      }
      if (this.s.diskFaults && this.random.int(8) === 0) {
        const n = this.pick([...this.nodes.values()]);
        n.diskFaults.slowSyncMs = n.diskFaults.slowSyncMs > 0 ? 0 : 100 + this.random.int(900);
        this.trace(`fault: node ${n.id} fsync takes ${n.diskFaults.slowSyncMs} ms`);
      }
      this.world.schedule(200 + this.random.int(1800), step, null);
    };
    this.world.schedule(500 + this.random.int(1000), step, null);
  }

  /**
   * Laggard faults (settings.laggards, instead of the random fault schedule): a follower X of a
   * partition of the topic is cut off from its leader (both ways) for longer than
   * replica.lag.time.max.ms, so the leader drops it from the ISR; the link comes back, and once X
   * caught up with the high watermark the leader's answers to X are lost, and the leader is killed
   * as soon as its high watermark passes X (restarted 4-6 s later). The next leader's high watermark lags its epoch's start by
   * what the killed one acknowledged last (and stays there while its ISR is below
   * min.insync.replicas); its answers to X are lost until 1-2 s after the election, so it sees X
   * fetch from where X stood. X must not rejoin the ISR before it holds the new epoch's start.
   */
  private scheduleLaggards(): void {
    const partitionState = (p: number) => this.upNodes()[0]?.running?.store.image.topics.get(TOPIC)?.partitions[p];
    const step = (): void => {
      if (this.world.now >= this.s.faultMs - 10_000) return;
      const next = (ms: number): void => void this.world.schedule(ms + this.random.int(2000), step, null);
      const p = this.random.int(this.s.partitions);
      const st = partitionState(p);
      // Neither is the active controller: both keep their sessions through the cut.
      const controller = this.upNodes()[0]?.running?.store.leader ?? 0;
      const followers = st ? st.isr.filter((id) => id !== st.leader && id !== controller) : [];
      if (!st || this.upNodes().length < this.nodes.size || st.leader === controller || followers.length === 0) return next(500);
      const x = this.pick(followers);
      const l = st.leader;
      this.trace(`fault: laggard: cut ${TOPIC}-${p}'s follower ${x} off from its leader ${l}`);
      this.net.cutLink(l, x);
      this.net.cutLink(x, l);
      const killLeader = (): void => {
        const leader = this.nodes.get(partitionState(p)?.leader ?? -1);
        if (!leader || leader.id === x || this.upNodes().length < this.nodes.size) return next(1000);
        this.crashes++;
        this.trace(`fault: laggard: kill ${TOPIC}-${p}'s leader ${leader.id}`);
        leader.crash(false);
        // X's fetches reach the next leader (the third node: the ISR had L and it), which takes
        // X to be where it stood when L died; its answers do not reach X until 1-2 s after the
        // election (the session timeout fences L first).
        const y = this.ids.find((id) => id !== leader.id && id !== x)!;
        this.trace(`fault: laggard: answers of ${y} to ${x} are lost`);
        this.net.cutAnswers(y, x);
        this.world.schedule(
          SIM_BROKER.brokerSessionTimeoutMs + 1500 + this.random.int(1000),
          () => {
            this.trace(`fault: laggard: answers of ${y} to ${x} are back`);
            this.net.heal();
          },
          null,
        );
        const downMs = 4000 + this.random.int(2000);
        this.world.schedule(
          downMs,
          () => {
            if (leader.up) return;
            this.trace(`fault: restart node ${leader.id}`);
            this.startNode(leader);
          },
          null,
        );
        next(downMs + 2000);
      };
      this.world.schedule(
        SIM_BROKER.replicaLagTimeMaxMs + 500 + this.random.int(1500),
        () => {
          this.trace(`fault: laggard: the link ${l} <-> ${x} is back`);
          this.net.heal();
          // Once X caught up with the high watermark (before L takes it back), L's answers to X
          // are lost, so X stays there while the other follower fetches on and moves the high
          // watermark; L is killed a round or so later.
          const whenCaughtUp = (triesLeft: number): void => {
            const leo = this.nodes.get(x)?.running?.rm.replica(TOPIC, p)?.log.logEndOffset ?? -1;
            const hw = this.nodes.get(l)?.running?.rm.replica(TOPIC, p)?.hw ?? Number.POSITIVE_INFINITY;
            if (leo >= hw || triesLeft === 0) {
              this.trace(`fault: laggard: answers of ${l} to ${x} are lost`);
              this.net.cutAnswers(l, x);
              whenHwPasses(leo, 150);
            } else this.world.schedule(10, () => whenCaughtUp(triesLeft - 1), null);
          };
          // L is killed as soon as it acknowledged past X (before the other follower hears of it).
          const whenHwPasses = (offset: number, triesLeft: number): void => {
            const hw = this.nodes.get(l)?.running?.rm.replica(TOPIC, p)?.hw ?? Number.POSITIVE_INFINITY;
            if (hw > offset || triesLeft === 0) killLeader();
            else this.world.schedule(2, () => whenHwPasses(offset, triesLeft - 1), null);
          };
          whenCaughtUp(500);
        },
        null,
      );
    };
    this.world.schedule(3000 + this.random.int(2000), step, null);
  }

  private heal(): void {
    this.trace("heal: every node up, network whole, no loss");
    this.net.heal();
    this.net.faults.dropRate = 0;
    this.net.faults.maxDelayMs = 5;
    this.net.faults.duplicateRate = 0;
    for (const n of this.nodes.values()) {
      n.diskFaults.slowSyncMs = 0;
      n.space.free();
      if (!n.up) this.startNode(n);
    }
    this.healedAt = this.world.now;
  }

  /**
   * A leader asks to add replicas to a partition's ISR: each must hold every acknowledged acks=all
   * write of the partition (an ISR member may be elected leader). Not checked for a replica that
   * is down, nor for writes that min.insync.replicas (2) power losses since may have lost, nor
   * when the proposal names a registration (broker epoch, KIP-903) that the node fetched as before
   * a power loss: the leader's view of it is from fetches of a process whose unsynced writes are
   * gone since. The leader cannot know (the proposal stays pending and is asked again unchanged
   * until the metadata settles it, seed 6472), and the controller may commit it while that
   * registration stands, as Kafka's would; what keeps the lost writes safe is that no process of
   * the node leads until it registered again, and that registration reports the unclean shutdown
   * and takes the node out of every ISR and ELR (KIP-966; seed 9144).
   */
  private checkIsrExpansion(leader: number, changes: AlterPartitionChanges): void {
    for (const c of changes) {
      if (c.topic !== TOPIC) continue;
      // Asked at a partition epoch the metadata has left behind: the controller refuses it
      // (INVALID_UPDATE_VERSION), and the member it names may be another log by now (reassignments:
      // removed, its log deleted, added again with an empty one; seed 205 with reassignments).
      if (c.partitionEpoch < this.newestPartitionEpoch(c.partition)) continue;
      const current = this.nodes.get(leader)?.running?.rm.replica(TOPIC, c.partition)?.isr ?? [];
      c.newIsr.forEach((id, i) => {
        if (current.includes(id)) return;
        const n = this.nodes.get(id)!;
        const log = n.running?.rm.replica(TOPIC, c.partition)?.log;
        if (!log || n.powerLostEpochs.has(c.newIsrBrokerEpochs?.[i] ?? -1)) return;
        const missing = this.history.highestAckedFrom(c.partition, log.logEndOffset);
        if (missing && this.powerLossesSince(missing.atMs) < 2)
          this.history.violation(
            "isr-member-missing-acked",
            `partition ${c.partition}: leader ${leader} asks to add node ${id} to ISR ${current.join(",")}, but its log ends at ${log.logEndOffset} and offset ${missing.offset} was acknowledged at ${missing.atMs} ms`,
            this.world.now,
          );
      });
    }
  }

  /** The newest partition epoch of the topic's `partition` committed so far (in any node's image). */
  private newestPartitionEpoch(partition: number): number {
    let e = -1;
    for (const n of this.upNodes()) e = Math.max(e, n.running!.store.image.topics.get(TOPIC)?.partitions[partition]?.partitionEpoch ?? -1);
    return e;
  }

  /** Nodes whose power failed after `atMs` (they may have lost what they held then). */
  private powerLossesSince(atMs: number): number {
    // Asked for every acknowledged write and every record read: no arrays made per question.
    let n = 0;
    for (const node of this.nodes.values()) {
      const losses = node.powerLosses;
      if (losses.length > 0 && losses[losses.length - 1]! >= atMs) n++;
    }
    return n;
  }

  private finalChecks(): void {
    const h = this.history;
    const now = this.world.now;
    const img = this.upNodes()[0]?.running?.store.image;
    const t = img?.topics.get(TOPIC);
    if (!t) {
      h.violation("liveness", `topic ${TOPIC} is unknown after healing`, now);
      return;
    }
    for (let p = 0; p < this.s.partitions; p++) {
      const st = t.partitions[p]!;
      const leaderNode = this.nodes.get(st.leader);
      const leader = leaderNode?.running?.rm.replica(TOPIC, p);
      if (leader?.role !== "leader") {
        h.violation(
          "liveness",
          `partition ${p} has no serving leader ${this.s.healMs} ms after healing (metadata names ${st.leader})`,
          now,
        );
        continue;
      }
      if (st.isr.length !== st.replicas.length)
        h.violation(
          "liveness",
          `partition ${p}: ISR ${st.isr.join(",")} of replicas ${st.replicas.join(",")} ${this.s.healMs} ms after healing`,
          now,
        );
      const leaderRecords = recordsOf(leader.log, leader.log.logStartOffset, leader.hw);
      // Acknowledged acks=all writes are kept, unless min.insync.replicas (2) nodes lost power since.
      for (const a of h.acksOfPartition(p)) {
        if (this.powerLossesSince(a.atMs) >= 2) continue;
        const got = leaderRecords.get(a.offset);
        if (got !== a.value)
          h.violation(
            "acked-write-lost",
            `partition ${p} offset ${a.offset}: acknowledged "${a.value}" at ${a.atMs} ms, the leader (node ${st.leader}) has ${got === undefined ? "nothing" : `"${got}"`} (hw ${leader.hw})`,
            now,
          );
      }
      // Without idempotence, a value is written at most once per copy of its request a node handled.
      this.copies.check(p, leaderRecords, h, now);
      // Idempotent producers' retries wrote each of their values once.
      const at = new Map<string, number>();
      for (const [offset, v] of leaderRecords) {
        if (!h.idempotentValues.has(v)) continue;
        const prev = at.get(v);
        if (prev !== undefined) h.violation("idempotent-duplicate", `partition ${p}: "${v}" at offsets ${prev} and ${offset}`, now);
        else at.set(v, offset);
      }
      // What consumers read below the high watermark stays, unless min.insync.replicas (2) nodes
      // lost power since it was committed (read, or acknowledged before).
      for (const [offset, c] of h.consumed.get(p) ?? []) {
        if (this.powerLossesSince(h.committedBy(p, offset, c.value, c.atMs)) >= 2) continue;
        const got = leaderRecords.get(offset);
        if (got !== c.value)
          h.violation(
            "consumed-write-lost",
            `partition ${p} offset ${offset}: read "${c.value}" at ${c.atMs} ms, the leader has ${got === undefined ? "nothing" : `"${got}"`}`,
            now,
          );
      }
      // Every follower's log below its high watermark equals the leader's.
      let leaderBatches: Map<number, number> | undefined;
      for (const id of st.replicas) {
        if (id === st.leader) continue;
        const f = this.nodes.get(id)?.running?.rm.replica(TOPIC, p);
        if (!f) continue;
        // Healed and quiet: every follower has caught up with its leader.
        if (f.log.logEndOffset !== leader.log.logEndOffset || f.hw !== leader.hw)
          h.violation(
            "convergence",
            `partition ${p}: follower ${id} ends at ${f.log.logEndOffset} (hw ${f.hw}), its leader ${st.leader} at ${leader.log.logEndOffset} (hw ${leader.hw}), after healing`,
            now,
          );
        const upTo = Math.min(f.hw, leader.hw);
        // The follower's batches that are the leader's (same base offset and CRC) hold its records: not decoded.
        leaderBatches ??= batchCrcs(leader.log, leader.log.logStartOffset, leader.hw);
        forEachRecordBut(f.log, Math.max(f.log.logStartOffset, leader.log.logStartOffset), upTo, leaderBatches, (offset, v) => {
          const lv = leaderRecords.get(offset);
          if (lv === v) return true;
          h.violation(
            "follower-diverges",
            `partition ${p} offset ${offset}: follower ${id} has "${v}" below its hw ${f.hw}, leader ${st.leader} has "${lv}"`,
            now,
          );
          return false;
        });
      }
      const c = this.consumers.get(p);
      if (c && c.offset < leader.hw)
        h.violation("liveness", `partition ${p}: the consumer is at ${c.offset}, the high watermark is ${leader.hw}`, now);
    }
    for (let id = 0; id < this.s.producers; id++) {
      if ((this.ackedAfterHeal.get(id) ?? 0) === 0) h.violation("liveness", `producer ${id} got no acknowledgement after healing`, now);
    }
    for (const name of this.adminTopics) {
      const at = img!.topics.get(name);
      if (this.deletedTopics.has(name)) {
        if (at) h.violation("liveness", `topic ${name} was deleted and is still in the metadata`, now);
        for (const nd of this.upNodes())
          if (nd.running!.logs.get(name, 0)) h.violation("admin", `topic ${name} was deleted, node ${nd.id} still has its log`, now);
        continue;
      }
      at?.partitions.forEach((st, p) => {
        if (!this.nodes.get(st.leader)?.running?.rm.replica(name, p) || st.isr.length !== st.replicas.length)
          h.violation("liveness", `${name}-${p}: leader ${st.leader}, ISR ${st.isr.join(",")} after healing`, now);
      });
    }
    this.reassign?.finalChecks(img!, this.nodes.values(), this.deletedTopics, h, now);
    const liveTopics = [TOPIC, ...[...this.adminTopics].filter((t) => !this.deletedTopics.has(t))];
    const controllerImage = this.upNodes().find((n) => n.running!.store.isLeader)?.running?.store.image ?? img!;
    checkBrokerOnlyImages(controllerImage, this.nodes.values(), liveTopics, h, now);
    for (let id = 0; id < this.s.idempotentProducers; id++) {
      if ((this.ackedAfterHeal.get(1000 + id) ?? 0) === 0)
        h.violation("liveness", `idempotent producer ${id} got no acknowledgement after healing`, now);
    }
    for (let g = 0; g < this.s.groups; g++) {
      const group = `group-${g}`;
      if (!this.commitsAfterHeal.has(group)) h.violation("liveness", `${group}: no commit acknowledged after healing`, now);
      for (let m = 0; m < this.s.groupMembers; m++)
        if (!this.heartbeatsAfterHeal.has(`${group}/member-${m}`))
          h.violation("liveness", `${group}/member-${m}: no heartbeat answered after healing`, now);
    }
    this.txn?.finalChecks();
  }
}
