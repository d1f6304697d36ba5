/**
 * The partitions this broker holds, as the services see them: append as leader, read up to the
 * high watermark, wait for new data (long-poll), list offsets. It keeps the local logs in step
 * with the metadata image (creating and deleting partition logs as topics come and go).
 *
 * On a single node every partition is led here and the high watermark is the log end offset.
 * Replication (followers, ISR, acks=ALL waits) extends this class; the services do not change.
 *
 * Time is injected (`Clock`, `Timers`): no Date.now or setTimeout here.
 */
import type { Clock } from "../base/clock.ts";
import { type RillError, rillError } from "../base/errors.ts";
import { Waiters } from "../base/waiters.ts";
import { decideInitProducerId, effectiveConfig } from "../metadata/controller.ts";
import type { MetadataImage, TopicState } from "../metadata/image.ts";
import type { Timers } from "../base/timers.ts";
import type { MetadataChange, MetadataStore } from "../metadata/store.ts";
import type { LogManager } from "../storage/log-manager.ts";
import type { AppendResult, PartitionLog, ReadAlloc, ReadResult } from "../storage/partition-log.ts";
import type { TopicConfig } from "../config/schema.ts";
import type { TxnMarker } from "../protocol/control-record.ts";
import type { ProduceChecks } from "../protocol/record-batch.ts";
import { PartitionReplica, type IsrChange } from "./partition-replica.ts";
import { isThrottledReplica, type ReplicationThrottle } from "./throttle.ts";
import { HwPurgatory } from "./hw-purgatory.ts";

/** Produce acknowledgement levels. */
export type AckLevel = "none" | "leader" | "all";

/** One partition a fetch asks for. */
export interface FetchPosition {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly maxBytes: number;
  /** READ_COMMITTED: read below the last stable offset and list the aborted transactions. */
  readonly readCommitted?: boolean;
  /**
   * The leader epoch the reader believes current (Kafka's current_leader_epoch, KIP-320);
   * absent or -1: not checked. Older than this replica's: FENCED_LEADER_EPOCH (the reader's
   * metadata is stale); newer: UNKNOWN_LEADER_EPOCH (this broker is behind, or a fenced leader
   * that has not learnt it lost the partition).
   */
  readonly currentLeaderEpoch?: number;
}

/** A partition's answer to a fetch: data, or an error for that partition only. */
export interface FetchedData {
  readonly topic: string;
  readonly partition: number;
  readonly highWatermark: number;
  /** The last stable offset (absent: the high watermark). */
  readonly lastStableOffset?: number;
  readonly logStartOffset: number;
  readonly read: ReadResult | null;
  /** READ_COMMITTED: the aborted transactions overlapping the read; absent or null otherwise. */
  readonly abortedTransactions?: readonly { producerId: number; firstOffset: number }[] | null;
  readonly error: Error | null;
}

/** What a leader answers a follower's fetch of one partition. */
export interface ReplicaFetchResult {
  readonly highWatermark: number;
  readonly logStartOffset: number;
  readonly read: ReadResult | null;
  /** The follower's log diverges: truncate to this epoch's end offset. */
  readonly diverging: { epoch: number; endOffset: number } | null;
  readonly error: Error | null;
  /** Reassignment (issue 21): the follower is a throttled replica and the leader's throttle held this read back. */
  readonly throttled?: boolean;
}

/** The local replicas of this broker. */
export class ReplicaManager {
  private readonly waiters = new Set<() => void>();
  private readonly replicas = new Map<string, PartitionReplica>();
  /** `replicas` by topic, then partition: `replica()` runs for every partition of every fetch, without building a key. */
  private readonly byTopic = new Map<string, Map<number, PartitionReplica>>();
  private readonly byLog = new WeakMap<PartitionLog, PartitionReplica>();
  /** Parsed topic configs, by the image's configs object (see `effectiveConfig`). */
  private readonly parsedConfigs = new WeakMap<Readonly<Record<string, string>>, TopicConfig>();
  /** acks=ALL produces waiting for the high watermark, per partition in offset order (hw-purgatory.ts). */
  private readonly hwWaiters: HwPurgatory<PartitionReplica>;
  private readonly roleListeners = new Set<(r: PartitionReplica) => void>();
  private readonly unsubscribe: () => void;
  private _closed = false;
  /**
   * False from a restart in a cluster until this broker has caught up with the cluster's
   * metadata (`holdLeadership`): its image, replayed from its own metadata log, may still name
   * it leader of partitions moved while it was down, and acting on that (appending a producer's
   * batches, answering followers) would split a partition's history. Kafka's brokers likewise
   * publish metadata to their partitions only after the initial catch-up. Also false from a
   * heartbeat that finds the running broker fenced until it is unfenced again: the fencing moved
   * its leaderships, which its lagging image may not show yet (cluster-sim seed 6223).
   */
  private leadingAllowed = true;
  private readonly closeListeners = new Set<() => void>();
  /** Produce requests waiting for the image to apply their producer's InitProducerId. */
  private readonly producerWaiters: Waiters;
  /** Counters of those waits, for metrics: started, and ended by the bound (not caught up). */
  readonly producerMetadataWaits = { started: 0, timedOut: 0 };
  /** Per producer id, the last of its requests' waits (see `awaitProducer`). */
  private readonly producerQueues = new Map<number, Promise<void>>();

  constructor(
    private readonly logs: LogManager,
    private readonly metadata: MetadataStore,
    private readonly clock: Clock,
    private readonly timers: Timers,
    private readonly nodeId: number,
    /** Reassignment (issue 21): the limit on what this leader sends to replicas being added (`leader.replication.throttled.rate`). */
    readonly leaderThrottle: ReplicationThrottle | null = null,
  ) {
    this.hwWaiters = new HwPurgatory(clock, timers, (w) => {
      const r = w.partition;
      return rillError(
        "REQUEST_TIMED_OUT",
        `${r.topic}-${r.partition}: offset ${w.offset} was not replicated to the ISR within ${w.timeoutMs} ms (high watermark ${r.hw}, ISR ${r.isr.join(",")})`,
      );
    });
    this.producerWaiters = new Waiters(timers, {
      onTimeout: (what, ms) => rillError("REQUEST_TIMED_OUT", `${what}: not applied here within ${ms} ms`),
      onClose: () => rillError("SHUTTING_DOWN", `broker ${nodeId} is shutting down`),
    });
    this.syncLogs(metadata.image);
    this.unsubscribe = metadata.onChange((c) => this.onMetadata(c));
  }

  /** The metadata image the answers come from. */
  get image(): MetadataImage {
    return this.metadata.image;
  }

  private onMetadata(change: MetadataChange): void {
    for (const r of change.records) {
      if (r.type === "config") this.logs.updateTopicConfig(r.topic, this.topicConfig(r.topic));
    }
    this.syncLogs(this.metadata.image);
    this.producerWaiters.notify();
  }

  /**
   * Creates logs for partitions led or followed here, deletes logs of topics that are gone (once
   * the image is complete: see `MetadataStore.complete`), and moves each partition to the role and
   * epoch the image gives it.
   */
  private syncLogs(image: MetadataImage): void {
    const now = this.clock.nowMs();
    const changed: PartitionReplica[] = [];
    for (const t of image.topics.values()) {
      const cfg = this.effectiveConfig(t.configs);
      t.partitions.forEach((p, i) => {
        if (!p.replicas.includes(this.nodeId)) return;
        const log = this.logs.get(t.name, i) ?? this.logs.create(t.name, i, cfg);
        // `byTopic` holds what `replicas` does: every metadata change looks at every partition here.
        let r = this.byTopic.get(t.name)?.get(i);
        if (!r || r.log !== log || r.topicId !== t.topicId) {
          r = new PartitionReplica(t.name, i, log, this.nodeId, t.topicId);
          // A log recovered from disk was opened with the default topic config (the image came
          // later): min.insync.replicas and the rest come from the image (cluster sim seed 220).
          log.updateConfig(cfg);
          // A hole recovery found in a log that is not compacted goes before the log is used.
          log.cutRecoveryGap(cfg.cleanupPolicy.includes("compact"));
          this.replicas.set(`${t.name}\0${i}`, r);
          let parts = this.byTopic.get(t.name);
          if (!parts) this.byTopic.set(t.name, (parts = new Map()));
          parts.set(i, r);
          this.byLog.set(log, r);
        }
        const what = r.update(p, now);
        if (r.role === "leader") r.dropStaleFollowers(this.brokerEpochOf);
        if (what === "leader" || what === "follower") changed.push(r);
        if (what !== null) this.checkHwWaiters(r);
      });
    }
    // A broker-only node's image fills from the voters after a start: until it is complete, and
    // while the broker catches up after a restart (`holdLeadership`: the controller unfences it
    // once its image reaches its registration), a partition missing from it may just not be known
    // here yet, and its log stays; `releaseLeadership` looks again.
    const settled = this.metadata.complete !== false && this.leadingAllowed;
    for (const { tp } of settled ? this.logs.all() : []) {
      const t = image.topics.get(tp.topic);
      if (!t || tp.partition >= t.partitions.length || !t.partitions[tp.partition]!.replicas.includes(this.nodeId)) {
        const key = `${tp.topic}\0${tp.partition}`;
        const r = this.replicas.get(key);
        this.replicas.delete(key);
        this.byTopic.get(tp.topic)?.delete(tp.partition);
        if (r) {
          r.role = "none";
          this.checkHwWaiters(r);
          changed.push(r);
        }
        this.logs.delete(tp.topic, tp.partition);
      }
    }
    for (const r of changed) for (const fn of this.roleListeners) fn(r);
    this.wakeAll();
  }

  /** Calls `fn` when a hosted partition becomes leader, follower, or is removed. */
  onRoleChange(fn: (r: PartitionReplica) => void): () => void {
    this.roleListeners.add(fn);
    return () => this.roleListeners.delete(fn);
  }

  /** The partitions this broker follows, with their leaders. */
  followed(): PartitionReplica[] {
    return [...this.replicas.values()].filter((r) => r.role === "follower");
  }

  /** The partitions this broker leads. */
  led(): PartitionReplica[] {
    return [...this.replicas.values()].filter((r) => r.role === "leader");
  }

  /** The hosted replica of a partition, if any. */
  replica(topic: string, partition: number): PartitionReplica | undefined {
    return this.byTopic.get(topic)?.get(partition);
  }

  /**
   * Where consumers read (`replica.selector`): `leader`, or `rack-aware` (KIP-392, Kafka's
   * RackAwareReplicaSelector): see `preferredReadReplica`.
   */
  readReplicaSelector: "leader" | "rack-aware" = "leader";

  /**
   * The node a consumer in `clientRack` should read a partition this broker leads from instead
   * of here, or null to read here: with the `rack-aware` selector, when this broker's rack is not
   * the client's and an in-sync, unfenced follower is in it — of those, the one whose log end
   * this leader last saw highest (ties: the lowest id), so the reader lags least. Followers serve
   * reads up to their own high watermark (`readLog`).
   */
  preferredReadReplica(topic: string, partition: number, clientRack: string): number | null {
    if (this.readReplicaSelector !== "rack-aware" || clientRack === "") return null;
    const r = this.replica(topic, partition);
    // A new leader that does not know its high watermark yet answers the read itself (OFFSET_NOT_AVAILABLE).
    if (r?.role !== "leader" || !r.hwKnown) return null;
    const brokers = this.metadata.image.brokers;
    if ((brokers.get(this.nodeId)?.rack ?? "") === clientRack) return null;
    let best: number | null = null;
    let bestLeo = -2;
    for (const id of r.isr) {
      if (id === this.nodeId) continue;
      const b = brokers.get(id);
      if (!b || b.fenced || b.rack !== clientRack) continue;
      const leo = r.followers.get(id)?.leo ?? -1;
      if (leo > bestLeo || (leo === bestLeo && best !== null && id < best)) {
        best = id;
        bestLeo = leo;
      }
    }
    return best;
  }

  /**
   * Resolves once the high watermark passes `lastOffset` (acks=ALL), or rejects:
   * NOT_LEADER_OR_FOLLOWER when leadership moves, NOT_ENOUGH_REPLICAS_AFTER_APPEND when the
   * ISR shrank below min.insync.replicas before the batch was replicated, REQUEST_TIMED_OUT after
   * `timeoutMs` (the batch may still be replicated later).
   */
  replicated(topic: string, partition: number, lastOffset: number, timeoutMs: number): Promise<void> {
    const r = this.replica(topic, partition);
    if (!r) return Promise.reject(rillError("NOT_LEADER_OR_FOLLOWER", `${topic}-${partition}: not hosted on broker ${this.nodeId}`));
    const minIsr = r.log.topicConfig.minInsyncReplicas;
    // Already replicated (a single replica, or followers ahead): what the purgatory would decide at once, without its timer.
    if (r.role === "leader" && lastOffset < r.hw && r.isr.length >= minIsr) return Promise.resolve();
    const done = this.hwWaiters.wait(r, lastOffset, minIsr, timeoutMs);
    this.checkHwWaiters(r);
    return done;
  }

  /** Ends the acks=ALL waits of `r` that its high watermark, ISR or role decide (no scan of other partitions). */
  private checkHwWaiters(r: PartitionReplica): void {
    if (!this.hwWaiters.has(r)) return;
    this.hwWaiters.complete(
      r,
      { leading: r.role === "leader", hw: r.hw, isrSize: r.isr.length },
      // Written here but not known replicated when leadership moved: the new leader may well
      // keep it, so the outcome is unknown — not NOT_LEADER ("not written").
      (w) =>
        rillError(
          "REQUEST_TIMED_OUT",
          `${r.topic}-${r.partition}: broker ${this.nodeId} lost leadership before offset ${w.offset} was known replicated; it may or may not be kept`,
        ),
      (w) =>
        rillError(
          "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
          `${r.topic}-${r.partition}: written, but the ISR shrank to ${r.isr.length} (< min.insync.replicas ${w.minIsr}) before it was replicated`,
        ),
    );
  }

  private hwMoved(r: PartitionReplica): void {
    this.checkHwWaiters(r);
    this.wakeAll();
  }

  /** The current broker epoch (registration) of a broker in this node's image; undefined when unregistered. */
  private readonly brokerEpochOf = (nodeId: number): number | undefined => this.metadata.image.brokers.get(nodeId)?.epoch;

  /**
   * Leader side of ReplicaFetch for one partition: checks the follower's epoch and divergence,
   * records its progress (which may move the high watermark), and reads from its fetch offset.
   * Progress counts only when `p.brokerEpoch` (the follower's registration, -1 before its first) is
   * its broker's current one here (KIP-903): a restarted broker is served, so it catches up, but
   * is not the ISR member its previous registration was (cluster-sim seeds 32 and 186).
   */
  fetchForFollower(
    replicaId: number,
    p: {
      topic: string;
      partition: number;
      fetchOffset: number;
      lastFetchedEpoch: number;
      currentLeaderEpoch: number;
      maxBytes: number;
      /** The follower's broker epoch (its registration), -1 before its first. */
      brokerEpoch?: number;
      /** Fills a disk read's buffer (PartitionLog.read); a fresh buffer by default. */
      alloc?: ReadAlloc | undefined;
    },
  ): ReplicaFetchResult {
    const r = this.replica(p.topic, p.partition);
    if (r?.role !== "leader")
      return fetchFailure(r, rillError("NOT_LEADER_OR_FOLLOWER", `${p.topic}-${p.partition}: broker ${this.nodeId} does not lead it`));
    if (!this.leadingAllowed) return fetchFailure(r, this.catchingUp(p.topic, p.partition));
    if (p.currentLeaderEpoch < r.leaderEpoch)
      return fetchFailure(
        r,
        rillError("FENCED_LEADER_EPOCH", `current_leader_epoch: ${p.currentLeaderEpoch} is older than ${r.leaderEpoch}`),
      );
    if (p.currentLeaderEpoch > r.leaderEpoch)
      return fetchFailure(
        r,
        rillError("UNKNOWN_LEADER_EPOCH", `current_leader_epoch: ${p.currentLeaderEpoch} is newer than ${r.leaderEpoch} known here`),
      );
    if (!r.replicas.includes(replicaId) || replicaId === this.nodeId)
      return fetchFailure(r, rillError("INVALID_REQUEST", `replica_id: ${replicaId} is not a follower of ${p.topic}-${p.partition}`));
    const log = r.log;
    if (p.lastFetchedEpoch >= 0 && p.fetchOffset > 0) {
      const end = log.endOffsetForEpoch(p.lastFetchedEpoch);
      if (end.epoch < p.lastFetchedEpoch || end.endOffset < p.fetchOffset) {
        return {
          highWatermark: r.hw,
          logStartOffset: log.logStartOffset,
          read: null,
          diverging: end.epoch < 0 ? { epoch: -1, endOffset: Math.min(p.fetchOffset, log.logStartOffset) } : end,
          error: null,
        };
      }
    }
    if (p.fetchOffset > log.logEndOffset) {
      return {
        highWatermark: r.hw,
        logStartOffset: log.logStartOffset,
        read: null,
        diverging: { epoch: log.latestEpoch, endOffset: log.logEndOffset },
        error: null,
      };
    }
    if (p.fetchOffset < log.logStartOffset) {
      return fetchFailure(
        r,
        rillError("OFFSET_OUT_OF_RANGE", `fetch_offset: ${p.fetchOffset} is below the log start offset ${log.logStartOffset}`),
      );
    }
    this.recordFollowerFetch(replicaId, r, p.fetchOffset, p.brokerEpoch ?? -1);
    // reassignment (issue 21): a replica being added that is not in sync gets what the throttle allows
    const throttle =
      this.leaderThrottle?.limited && isThrottledReplica(this.metadata.image.topics.get(p.topic)?.partitions[p.partition], replicaId)
        ? this.leaderThrottle
        : null;
    const maxBytes = throttle ? Math.min(p.maxBytes, throttle.allowance()) : p.maxBytes;
    const read = maxBytes > 0 && p.fetchOffset < log.logEndOffset ? log.read(p.fetchOffset, maxBytes, undefined, p.alloc) : null;
    if (throttle) {
      throttle.record(read?.bytes ?? 0);
      if (maxBytes === 0 && p.maxBytes > 0 && p.fetchOffset < log.logEndOffset)
        return { highWatermark: r.hw, logStartOffset: log.logStartOffset, read: null, diverging: null, error: null, throttled: true };
    }
    return { highWatermark: r.hw, logStartOffset: log.logStartOffset, read, diverging: null, error: null };
  }

  /**
   * Records a follower's fetch of `r` (led here) from `fetchOffset` as its registration
   * `brokerEpoch` (-1: none): it counts only as its broker's current one (KIP-903), and may move
   * the high watermark. `fetchForFollower` does it after its checks; a fetch session calls it
   * alone for a partition whose read it knows finds the same as before (nothing past the
   * follower's position, which is this leader's log end, and nothing else moved: see
   * src/rpc/replication-service.ts).
   */
  recordFollowerFetch(replicaId: number, r: PartitionReplica, fetchOffset: number, brokerEpoch: number): void {
    if (
      brokerEpoch >= 0 &&
      brokerEpoch === this.brokerEpochOf(replicaId) &&
      r.onFollowerFetch(replicaId, fetchOffset, this.clock.nowMs(), brokerEpoch)
    )
      this.hwMoved(r);
  }

  /**
   * Follower side: appends what the leader sent, learns its high watermark and follows its log
   * start offset (DeleteRecords on the leader), as far as this log reaches.
   */
  applyFetched(r: PartitionReplica, batches: Buffer, leaderHw: number, leaderLogStart = -1): void {
    if (r.role !== "follower") return;
    if (batches.length > 0) r.log.appendWithOffsets(batches);
    const logStart = Math.min(leaderLogStart, r.log.logEndOffset);
    if (logStart > r.log.logStartOffset) r.log.advanceLogStartOffset(logStart);
    const hw = Math.min(leaderHw, r.log.logEndOffset);
    if (hw > r.hw) {
      r.hw = hw;
      this.wakeAll();
    }
  }

  /**
   * Follower side: the leader's log starts after this log's end (retention deleted what this
   * follower never had): restart the local log there.
   */
  restartFollowerAt(r: PartitionReplica, leaderLogStart: number): void {
    if (r.role !== "follower" || leaderLogStart <= r.log.logEndOffset) return;
    r.log.truncateFullyAndStartAt(leaderLogStart);
    r.hw = leaderLogStart;
  }

  /**
   * Leader side of DeleteRecords: raises the log start offset of a partition led here to
   * `offset` (-1: the high watermark) and returns the log start offset now (Kafka's low
   * watermark). OFFSET_OUT_OF_RANGE past the high watermark or below -1; POLICY_VIOLATION for a
   * topic whose cleanup.policy lacks `delete` (Kafka's rule: a compacted log keeps its keys);
   * the errors of `leaderLog` when the partition is not led here. Followers follow on their
   * next fetch.
   */
  deleteRecords(topic: string, partition: number, offset: number): number {
    const log = this.leaderLog(topic, partition);
    if (!log.topicConfig.cleanupPolicy.includes("delete")) {
      throw rillError(
        "POLICY_VIOLATION",
        `${topic}-${partition}: records of a topic with cleanup.policy ${log.topicConfig.cleanupPolicy} cannot be deleted (it needs "delete")`,
      );
    }
    const hw = this.highWatermark(log);
    const to = offset === -1 ? hw : offset;
    if (!Number.isSafeInteger(to) || to < 0 || to > hw) {
      throw rillError(
        "OFFSET_OUT_OF_RANGE",
        `offset: ${offset} is outside [0, ${hw}] (-1: the high watermark) of ${topic}-${partition}: records can be deleted up to the high watermark`,
      );
    }
    log.advanceLogStartOffset(to);
    this.wakeAll();
    return log.logStartOffset;
  }

  /** Follower side: cuts a divergent tail (or the whole log, when the leader's starts later). */
  truncateFollower(r: PartitionReplica, offset: number): void {
    if (r.role !== "follower") return;
    if (offset < r.log.logEndOffset) r.log.truncateTo(Math.max(0, offset));
    r.clampHwToLog();
  }

  /** The ISR changes led partitions want now (each marked in flight until answered). */
  isrChanges(lagMaxMs: number): IsrChange[] {
    const now = this.clock.nowMs();
    const img = this.metadata.image;
    // KIP-903: only as the registration whose fetches caught it up.
    const eligible = (id: number, brokerEpoch: number): boolean => {
      const b = img.brokers.get(id);
      return b !== undefined && !b.fenced && !b.inControlledShutdown && b.epoch === brokerEpoch;
    };
    const out: IsrChange[] = [];
    for (const r of this.replicas.values()) {
      const c = r.wantedIsrChange(now, lagMaxMs, eligible);
      if (c) {
        r.isrChangeInFlight = true;
        out.push(c);
      }
    }
    return out;
  }

  /** Whether this broker holds a log of the partition (as leader or follower). */
  hasLocalLog(topic: string, partition: number): boolean {
    return this.logs.get(topic, partition) !== undefined;
  }

  /** The effective configuration of a topic. */
  topicConfig(topic: string): TopicConfig {
    const t = this.metadata.image.topics.get(topic);
    return t ? this.effectiveConfig(t.configs) : effectiveConfig({});
  }

  /**
   * `effectiveConfig` of a topic's configs in the image, parsed once per configs object: a config
   * record replaces the object (MetadataImage), never changes it. Parsing (the schema checks each
   * key) was a cost of every produce request.
   */
  private effectiveConfig(configs: Readonly<Record<string, string>>): TopicConfig {
    let cfg = this.parsedConfigs.get(configs);
    if (cfg === undefined) {
      cfg = effectiveConfig(configs);
      this.parsedConfigs.set(configs, cfg);
    }
    return cfg;
  }

  /** The topic, or UNKNOWN_TOPIC_OR_PARTITION naming `field`. */
  topic(name: string, field = "topic"): TopicState {
    const t = this.metadata.image.topics.get(name);
    if (!t) throw rillError("UNKNOWN_TOPIC_OR_PARTITION", `${field}: topic "${name}" does not exist`);
    return t;
  }

  /**
   * The local log of a partition this broker leads or follows, for reads: a follower serves
   * what is below its high watermark (committed, never truncated), as Kafka's fetch from
   * follower. A partition with no replica here: NOT_LEADER_OR_FOLLOWER (the caller forwards).
   */
  readLog(topic: string, partition: number, field = "partition"): PartitionLog {
    const t = this.topic(topic);
    if (!Number.isInteger(partition) || partition < 0 || partition >= t.partitions.length) {
      throw rillError(
        "UNKNOWN_TOPIC_OR_PARTITION",
        `${field}: partition ${partition} of topic "${topic}" does not exist (it has ${t.partitions.length})`,
      );
    }
    const r = this.replica(topic, partition);
    if (this._closed) throw rillError("SHUTTING_DOWN", `${field}: broker ${this.nodeId} is shutting down`);
    if (!r || (r.role !== "leader" && r.role !== "follower")) {
      const p = t.partitions[partition]!;
      throw rillError(
        "NOT_LEADER_OR_FOLLOWER",
        `${field}: broker ${this.nodeId} holds no replica of ${topic}-${partition} (leader: ${p.leader}, replicas: ${p.replicas.join(",")})`,
      );
    }
    return r.log;
  }

  /** Acts as no partition's leader until `releaseLeadership` (see `leadingAllowed`). */
  holdLeadership(): void {
    this.leadingAllowed = false;
  }

  /** Acts on the leaderships of its image again (the broker has caught up with the cluster's metadata). */
  releaseLeadership(): void {
    this.leadingAllowed = true;
    if (!this._closed) this.syncLogs(this.metadata.image);
  }

  /** Whether this broker acts as the leader its image says it is (false while catching up after a restart). */
  get leading(): boolean {
    return this.leadingAllowed;
  }

  private catchingUp(topic: string, partition: number, field = "partition"): RillError {
    return rillError(
      "NOT_LEADER_OR_FOLLOWER",
      `${field}: broker ${this.nodeId} is catching up with the cluster's metadata (after starting or being fenced); it leads ${topic}-${partition} only once caught up`,
    );
  }

  /** The local log of a partition this broker leads, or a RillError naming the field. */
  leaderLog(topic: string, partition: number, field = "partition"): PartitionLog {
    const t = this.topic(topic);
    if (!Number.isInteger(partition) || partition < 0 || partition >= t.partitions.length) {
      throw rillError(
        "UNKNOWN_TOPIC_OR_PARTITION",
        `${field}: partition ${partition} of topic "${topic}" does not exist (it has ${t.partitions.length})`,
      );
    }
    const p = t.partitions[partition]!;
    if (this._closed) throw rillError("SHUTTING_DOWN", `${field}: broker ${this.nodeId} is shutting down`);
    if (p.leader !== this.nodeId)
      throw rillError(
        "NOT_LEADER_OR_FOLLOWER",
        `${field}: broker ${this.nodeId} does not lead ${topic}-${partition} (leader: ${p.leader})`,
      );
    if (!this.leadingAllowed) throw this.catchingUp(topic, partition, field);
    const log = this.logs.get(topic, partition);
    if (!log) throw rillError("LEADER_NOT_AVAILABLE", `${field}: ${topic}-${partition} has no local log yet`);
    return log;
  }

  /**
   * Appends validated-in-the-log batches as leader. With acks=all, fails first with
   * NOT_ENOUGH_REPLICAS when the ISR is smaller than min.insync.replicas. `checks`: how deeply the
   * log validates the batches (PartitionLog.append); the broker's own batches by default.
   */
  append(topic: string, partition: number, batches: Buffer, acks: AckLevel, checks?: ProduceChecks): AppendResult {
    const log = this.leaderLog(topic, partition);
    const p = this.metadata.image.topics.get(topic)!.partitions[partition]!;
    if (acks === "all" && p.isr.length < log.topicConfig.minInsyncReplicas) {
      throw rillError(
        "NOT_ENOUGH_REPLICAS",
        `${topic}-${partition}: ${p.isr.length} in-sync replicas, min.insync.replicas is ${log.topicConfig.minInsyncReplicas}`,
      );
    }
    // A transactional batch's epoch is the transaction coordinator's (it bumps epochs at every end,
    // KIP-890), admitted by its produce gate: only the id must have been issued (issue 17).
    const res = log.append(batches, p.leaderEpoch, checks?.transactional === true ? this.checkProducerIssued : this.checkProducer, checks);
    const r = this.byLog.get(log);
    if (r?.maybeAdvanceHw()) this.checkHwWaiters(r);
    this.wakeAll();
    return res;
  }

  /**
   * Writes a transaction marker (COMMIT or ABORT of `marker.producerId`'s open transaction) into
   * a partition this broker leads, as Kafka's WriteTxnMarkers: appends the control batch and
   * resolves once the ISR holds it (acks=all). Throws, with nothing written, what `append` throws
   * (NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS, UNKNOWN_TOPIC_OR_PARTITION, ...) and what
   * PartitionLog.appendControl refuses (INVALID_PRODUCER_EPOCH for a marker older than the
   * producer's epoch, TRANSACTION_COORDINATOR_FENCED); rejects as `replicated` when the marker
   * is written but not known replicated (the coordinator retries: a repeated marker ends nothing).
   */
  async writeTxnMarker(topic: string, partition: number, marker: TxnMarker, timeoutMs = 30_000): Promise<void> {
    const log = this.leaderLog(topic, partition);
    const p = this.metadata.image.topics.get(topic)!.partitions[partition]!;
    if (p.isr.length < log.topicConfig.minInsyncReplicas) {
      throw rillError(
        "NOT_ENOUGH_REPLICAS",
        `${topic}-${partition}: ${p.isr.length} in-sync replicas, min.insync.replicas is ${log.topicConfig.minInsyncReplicas}`,
      );
    }
    const res = log.appendControl(marker, p.leaderEpoch, this.clock.nowMs());
    const r = this.byLog.get(log);
    if (r?.maybeAdvanceHw()) this.checkHwWaiters(r);
    this.wakeAll();
    await this.replicated(topic, partition, res.lastOffset, timeoutMs);
    await this.durable(topic, partition);
  }

  /**
   * The last stable offset: the high watermark, or the first offset of the oldest transaction
   * still open or whose marker is not below the high watermark yet, if that is lower
   * (PartitionLog.firstUnstableOffsetAt, as Kafka). READ_COMMITTED consumers read below it.
   */
  lastStableOffset(log: PartitionLog): number {
    const hw = this.highWatermark(log);
    const unstable = log.firstUnstableOffsetAt(hw);
    return unstable === null ? hw : Math.min(unstable, hw);
  }

  /**
   * Resolves when the log holds `upTo` durably if the topic asks for an fsync before every
   * acknowledgement (`flush.messages=1` or `flush.ms=0`), at once otherwise. Concurrent callers
   * share fsyncs (group commit).
   */
  durable(topic: string, partition: number): Promise<void> {
    const log = this.logs.get(topic, partition);
    if (!log) return Promise.resolve();
    const cfg = log.topicConfig;
    return cfg.flushMessages === 1 || cfg.flushMs === 0 ? log.flush() : Promise.resolve();
  }

  /**
   * Rejects batches whose producer id the cluster never issued (UNKNOWN_PRODUCER_ID) or whose
   * epoch is newer than the newest issued (INVALID_PRODUCER_EPOCH: an epoch from the future).
   */
  private readonly checkProducerIssued = (producerId: number): void => {
    if (!this.metadata.image.producerEpochs.has(producerId))
      throw rillError("UNKNOWN_PRODUCER_ID", `producer_id: ${producerId} was never issued by InitProducerId`);
  };

  private readonly checkProducer = (producerId: number, producerEpoch: number): void => {
    const issued = this.metadata.image.producerEpochs.get(producerId);
    if (issued === undefined) throw rillError("UNKNOWN_PRODUCER_ID", `producer_id: ${producerId} was never issued by InitProducerId`);
    if (producerEpoch > issued)
      throw rillError(
        "INVALID_PRODUCER_EPOCH",
        `producer_epoch: ${producerEpoch} is newer than the issued epoch ${issued} of producer ${producerId}`,
      );
  };

  /**
   * Whether this node's image may simply not have applied yet the InitProducerId that issued
   * `producerId` at `producerEpoch`: producer ids are issued in order, so an id at or past the
   * image's next one, or an epoch newer than the image's, is either from the future or not known
   * here yet. An unknown id below the next one was never issued (judged at once).
   */
  producerAhead(producerId: number, producerEpoch: number): boolean {
    const img = this.metadata.image;
    const issued = img.producerEpochs.get(producerId);
    return issued === undefined ? producerId >= img.nextProducerId : producerEpoch > issued;
  }

  /**
   * Resolves once the image knows `producerId` at `producerEpoch` (see `producerAhead`), or after
   * `timeoutMs`, or when the broker stops: never rejects, the append judges afterwards (a final
   * UNKNOWN_PRODUCER_ID or INVALID_PRODUCER_EPOCH if the image is still behind). A partition
   * leader whose metadata lags the controller's so waits for the InitProducerId its producer
   * just got instead of refusing it. One producer's requests wait in a queue (a later one after
   * the earlier, within its own `timeoutMs` from now), so its pipelined requests still append
   * in the order they came.
   */
  awaitProducer(producerId: number, producerEpoch: number, timeoutMs: number): Promise<void> {
    const before = this.producerQueues.get(producerId);
    if (before === undefined && !this.producerAhead(producerId, producerEpoch)) return Promise.resolve();
    const deadline = this.clock.nowMs() + timeoutMs;
    const wait =
      before === undefined
        ? this.waitForProducer(producerId, producerEpoch, timeoutMs)
        : before.then(() => this.waitForProducer(producerId, producerEpoch, Math.max(0, deadline - this.clock.nowMs())));
    this.producerQueues.set(producerId, wait);
    void wait.then(() => {
      if (this.producerQueues.get(producerId) === wait) this.producerQueues.delete(producerId);
    });
    return wait;
  }

  /**
   * Whether a request of this producer must go through `awaitProducer`: the image is behind on
   * it, or an earlier request of the same producer still waits (it appends first).
   */
  mustAwaitProducer(producerId: number, producerEpoch: number): boolean {
    return this.producerQueues.has(producerId) || this.producerAhead(producerId, producerEpoch);
  }

  private waitForProducer(producerId: number, producerEpoch: number, timeoutMs: number): Promise<void> {
    if (!this.producerAhead(producerId, producerEpoch) || this._closed) return Promise.resolve();
    this.producerMetadataWaits.started++;
    const what = `the InitProducerId of producer ${producerId} at epoch ${producerEpoch}`;
    return this.producerWaiters
      .waitUntil(() => !this.producerAhead(producerId, producerEpoch), what, timeoutMs)
      .catch(() => {
        if (!this._closed) this.producerMetadataWaits.timedOut++;
      });
  }

  /** Produce requests waiting now in `awaitProducer`. */
  get producerMetadataWaiting(): number {
    return this.producerWaiters.size;
  }

  /** Issues a producer id or bumps its epoch (InitProducerId), durably in the metadata log. */
  async initProducerId(req: {
    transactionalId: string;
    producerId?: number | undefined;
    producerEpoch: number;
    /** A transaction coordinator's request (issue 17): see decideInitProducerId. */
    epochAtLeast?: number | undefined;
  }): Promise<{ producerId: number; producerEpoch: number }> {
    const change = await this.metadata.commit((img) => decideInitProducerId(img, req));
    const r = change.records[0]!;
    if (r.type !== "producer-epoch") throw new Error("InitProducerId produced an unexpected record");
    return { producerId: r.producerId, producerEpoch: r.producerEpoch };
  }

  /** High watermark: what consumers may read. On a single node, the log end offset. */
  highWatermark(log: PartitionLog): number {
    return this.byLog.get(log)?.hw ?? log.logEndOffset;
  }

  /**
   * Whether consumers may be told this replica's high watermark and last stable offset: false
   * while this broker is a new leader of the partition whose high watermark has not reached the
   * start of its leader epoch yet (PartitionReplica.hwKnown, Kafka's KIP-207). What it knows
   * then lags what the previous leader may already have answered, so telling it would move a
   * reader's high watermark or last stable offset backwards. It becomes known as soon as the
   * ISR's fetches (which carry their log ends) reach the epoch's start; a partition with one
   * in-sync replica knows it at once.
   */
  hwKnown(log: PartitionLog): boolean {
    return this.byLog.get(log)?.hwKnown ?? true;
  }

  /**
   * What a consumer's answers publish: the high watermark and the last stable offset, or
   * OFFSET_NOT_AVAILABLE (retriable) while they are not known here (`hwKnown`). Fetch, Consume
   * and ListOffsets read through it; replica fetches and tools do not.
   */
  readableOffsets(log: PartitionLog, field = "partition"): { highWatermark: number; lastStableOffset: number } {
    const r = this.byLog.get(log);
    if (r !== undefined && !r.hwKnown) throw this.hwNotKnown(r, field);
    return { highWatermark: this.highWatermark(log), lastStableOffset: this.lastStableOffset(log) };
  }

  private hwNotKnown(r: PartitionReplica, field: string): RillError {
    return rillError(
      "OFFSET_NOT_AVAILABLE",
      `${field}: broker ${this.nodeId} became leader of ${r.topic}-${r.partition} at offset ${r.epochStartOffset} (leader epoch ${r.leaderEpoch}) and its high watermark (${r.hw}) has not reached it yet: retry shortly`,
    );
  }

  /** Reads one partition (a disk read fills a buffer from `alloc`, see PartitionLog.read); errors concern that partition only and are returned, not thrown. */
  readPartition(pos: FetchPosition, alloc?: ReadAlloc): FetchedData {
    let log: PartitionLog | null = null;
    try {
      log = this.readLog(pos.topic, pos.partition);
      const r = this.byLog.get(log);
      const fenced = r !== undefined ? this.readerEpochError(r, pos) : null;
      if (fenced !== null) {
        const base = { topic: pos.topic, partition: pos.partition, highWatermark: -1, lastStableOffset: -1 };
        return { ...base, logStartOffset: -1, read: null, error: fenced };
      }
      if (r !== undefined && !r.hwKnown) {
        // Neither offset is published (Kafka answers -1 with a partition error).
        const base = { topic: pos.topic, partition: pos.partition, highWatermark: -1, lastStableOffset: -1 };
        return { ...base, logStartOffset: log.logStartOffset, read: null, error: this.hwNotKnown(r, "partition") };
      }
      const hw = this.highWatermark(log);
      const lso = this.lastStableOffset(log);
      const read = log.read(pos.offset, pos.maxBytes, pos.readCommitted === true ? lso : hw, alloc);
      const abortedTransactions =
        pos.readCommitted === true && read.bytes > 0 ? log.abortedTransactions(pos.offset, read.nextOffset) : null;
      return {
        topic: pos.topic,
        partition: pos.partition,
        highWatermark: hw,
        lastStableOffset: lso,
        logStartOffset: log.logStartOffset,
        read,
        abortedTransactions,
        error: null,
      };
    } catch (e) {
      const hw = log ? this.highWatermark(log) : -1;
      return {
        topic: pos.topic,
        partition: pos.partition,
        highWatermark: hw,
        logStartOffset: log ? log.logStartOffset : -1,
        read: null,
        error: e as Error,
      };
    }
  }

  /** Why a read at `pos` is refused for its `currentLeaderEpoch` (see FetchPosition), or null. */
  private readerEpochError(r: PartitionReplica, pos: FetchPosition): RillError | null {
    const asked = pos.currentLeaderEpoch;
    if (asked === undefined || asked < 0 || asked === r.leaderEpoch) return null;
    const where = `${pos.topic}-${pos.partition}`;
    if (asked < r.leaderEpoch)
      return rillError(
        "FENCED_LEADER_EPOCH",
        `current_leader_epoch: ${asked} of ${where} is older than ${r.leaderEpoch}: refresh the metadata`,
      );
    return rillError(
      "UNKNOWN_LEADER_EPOCH",
      `current_leader_epoch: ${asked} of ${where} is newer than ${r.leaderEpoch}, the newest broker ${this.nodeId} knows`,
    );
  }

  /**
   * Resolves after `maxWaitMs`, or earlier when any append or metadata change happens. The
   * caller reads again and decides whether it has enough (min_bytes). `signal` ends the wait.
   */
  waitForData(maxWaitMs: number, signal?: { aborted: boolean; onabort?: (() => void) | null }): Promise<void> {
    if (maxWaitMs <= 0 || this._closed || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      let handle: unknown = null;
      const done = (): void => {
        this.waiters.delete(done);
        if (handle !== null) this.timers.clearTimeout(handle);
        resolve();
      };
      this.waiters.add(done);
      handle = this.timers.setTimeout(done, maxWaitMs);
      if (signal) signal.onabort = done;
    });
  }

  private wakeAll(): void {
    if (this.waiters.size === 0) return;
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w();
  }

  /** Earliest readable offset. */
  earliestOffset(topic: string, partition: number): { offset: number; epoch: number } {
    const log = this.readLog(topic, partition);
    return { offset: log.logStartOffset, epoch: this.leaderEpoch(topic, partition) };
  }

  /**
   * The high watermark (the offset the next consumed record will have); with `readCommitted`,
   * the last stable offset (Kafka's ListOffsets LATEST under READ_COMMITTED).
   */
  latestOffset(topic: string, partition: number, readCommitted = false): { offset: number; epoch: number } {
    const log = this.readLog(topic, partition);
    const known = this.readableOffsets(log);
    return { offset: readCommitted ? known.lastStableOffset : known.highWatermark, epoch: this.leaderEpoch(topic, partition) };
  }

  /**
   * Where a reader positioned at the latest offset starts (a Consume session's
   * auto_offset_reset or seek): `latestOffset`, or — while the high watermark is not known here
   * (`hwKnown`) — the least it will be once known, instead of an error: the start of this
   * leader's epoch (under READ_COMMITTED the first unstable offset if lower; a transaction opened
   * later starts past it). Every offset a previous leader published is at or below it, and the
   * reader gets nothing from the partition until it is known.
   */
  startingLatestOffset(topic: string, partition: number, readCommitted = false): number {
    const log = this.readLog(topic, partition);
    const r = this.byLog.get(log);
    if (r === undefined || r.hwKnown) return this.latestOffset(topic, partition, readCommitted).offset;
    const unstable = readCommitted ? log.firstUnstableOffsetAt(r.epochStartOffset) : null;
    return unstable === null ? r.epochStartOffset : Math.min(unstable, r.epochStartOffset);
  }

  /**
   * First offset whose record timestamp is >= ts, or null if none (Kafka answers -1). While the
   * high watermark is not known here (`hwKnown`), a record below it is still found; otherwise
   * OFFSET_NOT_AVAILABLE, as Kafka's ListOffsets (it cannot tell yet whether the record is
   * readable).
   */
  offsetForTimestamp(topic: string, partition: number, ts: number, readCommitted = false): { offset: number; timestampMs: number } | null {
    const log = this.readLog(topic, partition);
    const hit = log.offsetForTimestamp(ts);
    if (hit && hit.offset < (readCommitted ? this.lastStableOffset(log) : this.highWatermark(log))) return hit;
    this.readableOffsets(log);
    return null;
  }

  private leaderEpoch(topic: string, partition: number): number {
    return this.metadata.image.topics.get(topic)!.partitions[partition]!.leaderEpoch;
  }

  /** This broker's node id. */
  nodeIdOf(): number {
    return this.nodeId;
  }

  /** Current time, for record timestamps the broker sets. */
  nowMs(): number {
    return this.clock.nowMs();
  }

  /** Stops following metadata and wakes every waiting fetch. */
  /** True once the broker is shutting down: waits end at once. */
  get closed(): boolean {
    return this._closed;
  }

  /** Calls `fn` once when the broker starts shutting down (streams end themselves). */
  onClose(fn: () => void): () => void {
    if (this._closed) {
      // A stream opened while the broker stops ends at once.
      queueMicrotask(fn);
      return () => {};
    }
    this.closeListeners.add(fn);
    return () => this.closeListeners.delete(fn);
  }

  /**
   * Starts the broker's shutdown: open streams end (consumers leave their groups, which still
   * writes to `__consumer_offsets`), then appends are refused with SHUTTING_DOWN.
   */
  close(): void {
    for (const fn of [...this.closeListeners]) fn();
    this.closeListeners.clear();
    this._closed = true;
    this.unsubscribe();
    this.producerWaiters.close();
    this.wakeAll();
  }
}

/** A replica fetch's answer for a partition that failed (a function, not a closure per call: it is on every fetch's path). */
function fetchFailure(r: PartitionReplica | undefined, e: Error): ReplicaFetchResult {
  return { highWatermark: r?.hw ?? -1, logStartOffset: r?.log.logStartOffset ?? -1, read: null, diverging: null, error: e };
}
