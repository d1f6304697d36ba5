/**
 * The group coordinators of this broker, wired to the log: one `GroupCoordinator` shard per
 * partition of the internal compacted topic `__consumer_offsets` that this broker leads. A group
 * lives in partition `murmur2(groupId) % 50` (Kafka's rule).
 *
 * Every request runs as: the shard's handler computes records and a response without changing
 * state; the records are appended to the shard's partition (key = the record's key, value = the
 * record, null for tombstones, so compaction keeps the latest per key); then they are replayed
 * into the shard; then the response is answered. Loading a shard after a restart (or, with
 * replication, a coordinator move) is the same replay, from the start of the partition. With
 * `defer` (the broker: setImmediate) a large partition loads in slices of `loadSliceBytes` with
 * other work between them, as Kafka loads group metadata in the background: a 20 MiB partition
 * replayed in one go blocked the event loop for about a second (test/soak/README.md). Meanwhile
 * that shard's groups answer COORDINATOR_NOT_AVAILABLE (retriable: "loading") and every other
 * shard, and every other request, is served.
 *
 * Time comes from the injected Clock; periodic work (session timeouts) runs on `tick(now)`.
 */
import type { Clock } from "../base/clock.ts";
import { rillError } from "../base/errors.ts";
import { toPositive, murmur2 } from "../base/murmur2.ts";
import type { Random } from "../base/random.ts";
import type { ReplicaManager } from "../replication/replica-manager.ts";
import { encodeBatch, records as recordCursor, HEADER_SIZE, readBatchHeader } from "../protocol/record-batch.ts";
import { type ClassicDelivery, GroupCoordinator, type CoordinatorResult } from "./coordinator.ts";
import { fromKeyValue, toKeyValue, type GroupRecord } from "./records.ts";

/** The internal topic that holds group state and committed offsets. */
export const OFFSETS_TOPIC = "__consumer_offsets";
/** Its partition count (Kafka's offsets.topic.num.partitions default). */
export const OFFSETS_PARTITIONS = 50;
/** Its topic configuration: compacted, 100 MiB segments (Kafka's offsets.topic.segment.bytes). */
export const OFFSETS_TOPIC_CONFIGS: Readonly<Record<string, string>> = {
  "cleanup.policy": "compact",
  "segment.bytes": String(100 * 1024 * 1024),
};
/** Longest a group id may be. */
export const GROUP_ID_MAX_CHARS = 249;

/** The `__consumer_offsets` partition that owns a group. */
export function offsetsPartitionFor(groupId: string): number {
  return toPositive(murmur2(Buffer.from(groupId, "utf8"))) % OFFSETS_PARTITIONS;
}

/** INVALID_GROUP_ID unless `groupId` is usable. */
export function validateGroupId(groupId: string, field = "group_id"): void {
  if (groupId.length === 0) throw rillError("INVALID_GROUP_ID", `${field}: group id is empty`);
  if (groupId.length > GROUP_ID_MAX_CHARS)
    throw rillError("INVALID_GROUP_ID", `${field}: group id is longer than ${GROUP_ID_MAX_CHARS} characters`);
}

/** Options of the runtime's shards. */
export interface GroupRuntimeOptions {
  /** Kafka's group.initial.rebalance.delay.ms for classic groups (default 3000). */
  readonly initialRebalanceDelayMs?: number;
  /**
   * Runs `fn` after the work already queued (the broker passes setImmediate): a shard's load
   * yields through it between slices. Without it every shard loads at once, synchronously.
   */
  readonly defer?: (fn: () => void) => void;
  /** Bytes of `__consumer_offsets` a load replays before it yields (default LOAD_SLICE_BYTES). */
  readonly loadSliceBytes?: number;
}

/** Bytes a shard's load replays between yields: about 50 ms of replay (1 s per 20 MiB measured). */
export const LOAD_SLICE_BYTES = 1 << 20;

/** A shard being loaded: where its replay is, and whether a newer leadership made it moot. */
interface ShardLoad {
  readonly epoch: number;
  readonly shard: GroupCoordinator;
  /** Next offset to replay. */
  offset: number;
  /** Bytes replayed so far. */
  bytes: number;
  cancelled: boolean;
  /** Why a deferred slice failed (the shard then answers with it until syncShards starts over). */
  failed: string | null;
}

/** The coordinator shards of this broker. */
export class GroupRuntime {
  /** Who is told of classic answers produced by another request or by `tick` (the group services). */
  private readonly deliverySinks = new Set<(d: readonly ClassicDelivery[]) => void>();
  private readonly shards = new Map<number, GroupCoordinator>();
  /** Told the records of every write (the broker logs group-membership changes from them). */
  private readonly writeListeners = new Set<(records: readonly GroupRecord[]) => void>();
  /** Sessions (Consume streams) per group, told when the group's records change. */
  private readonly watchers = new Map<string, Set<() => void>>();

  /** The last offset written to each `__consumer_offsets` partition by this broker. */
  private readonly lastWritten = new Map<number, number>();

  /**
   * Resolves once everything written for `groupId`'s shard is on every in-sync replica of its
   * `__consumer_offsets` partition, so an acknowledged commit survives the coordinator's death.
   */
  replicated(groupId: string, timeoutMs = 10_000): Promise<void> {
    const p = offsetsPartitionFor(groupId);
    const last = this.lastWritten.get(p);
    if (last === undefined) return Promise.resolve();
    return this.rm.replicated(OFFSETS_TOPIC, p, last, timeoutMs);
  }

  /** The leader epoch of `__consumer_offsets` each shard was loaded at. */
  private readonly shardEpochs = new Map<number, number>();
  /** Shards whose load has yielded and goes on later (only with `defer`). */
  private readonly loading = new Map<number, ShardLoad>();

  private constructor(
    private readonly rm: ReplicaManager,
    private readonly clock: Clock,
    private readonly random: Random,
    private readonly nodeId: number,
    private readonly opts: GroupRuntimeOptions = {},
  ) {}

  /**
   * The coordinator runtime of broker `nodeId`: loads every shard this broker leads by
   * replaying its partition. `__consumer_offsets` itself is created by the active controller
   * once enough brokers are up; until then group calls answer COORDINATOR_NOT_AVAILABLE.
   */
  static start(rm: ReplicaManager, clock: Clock, random: Random, nodeId: number, opts: GroupRuntimeOptions = {}): GroupRuntime {
    const rt = new GroupRuntime(rm, clock, random, nodeId, opts);
    rt.syncShards();
    return rt;
  }

  /**
   * Loads the shards of `__consumer_offsets` partitions this broker now leads and drops the
   * ones it no longer leads (call after every metadata change that moves leaders).
   */
  syncShards(): void {
    if (this.rm.closed) return;
    const t = this.rm.image.topics.get(OFFSETS_TOPIC);
    for (let p = 0; p < OFFSETS_PARTITIONS; p++) {
      const st = t?.partitions[p];
      // Not while the broker catches up after a restart: its image may name it leader of a partition moved meanwhile.
      const leads = this.rm.leading && st !== undefined && st.leader === this.nodeId && this.rm.hasLocalLog(OFFSETS_TOPIC, p);
      const epoch = st?.leaderEpoch ?? -1;
      const loading = this.loading.get(p);
      if (leads && (!this.shards.has(p) || this.shardEpochs.get(p) !== epoch)) {
        if (loading?.epoch === epoch && loading.failed === null) continue; // already loading for this leadership
        this.stopLoading(p);
        this.shards.delete(p); // the old leadership's state: stale until the replay is done
        this.shardEpochs.delete(p);
        this.load(p, epoch);
      } else if (!leads) {
        this.stopLoading(p);
        this.shards.delete(p);
        this.shardEpochs.delete(p);
      }
    }
  }

  /** Bytes replayed so far by the load of partition `p` in progress, or null when none is. */
  loadProgress(p: number): number | null {
    return this.loading.get(p)?.bytes ?? null;
  }

  private stopLoading(p: number): void {
    const l = this.loading.get(p);
    if (l === undefined) return;
    l.cancelled = true;
    this.loading.delete(p);
  }

  private newShard(): GroupCoordinator {
    return new GroupCoordinator({
      random: this.random,
      topics: { partitionCount: (topic) => this.rm.image.topics.get(topic)?.partitions.length },
      ...(this.opts.initialRebalanceDelayMs !== undefined ? { initialRebalanceDelayMs: this.opts.initialRebalanceDelayMs } : {}),
    });
  }

  /**
   * Replays partition `p` of the offsets topic into a fresh shard, which serves once the replay
   * reaches the log end. The first slice runs now; with `defer` each further one runs after the
   * work queued meanwhile (a small partition still loads at once).
   */
  private load(p: number, epoch: number): void {
    const job: ShardLoad = {
      epoch,
      shard: this.newShard(),
      offset: this.rm.leaderLog(OFFSETS_TOPIC, p).logStartOffset,
      bytes: 0,
      cancelled: false,
      failed: null,
    };
    const defer = this.opts.defer;
    const sliceBytes = this.opts.loadSliceBytes ?? LOAD_SLICE_BYTES;
    const step = (): void => {
      if (job.cancelled || this.rm.closed) return;
      let done: boolean;
      try {
        done = this.replaySlice(p, job, defer === undefined ? Number.POSITIVE_INFINITY : sliceBytes);
      } catch (e: unknown) {
        if (this.rm.closed || job.cancelled) return;
        if (!this.loading.has(p)) throw e; // the first slice, inside syncShards: its caller sees it
        // A later slice, run by `defer`: nobody to throw to. The log went away under the load
        // (leadership moved: syncShards, told of it, starts over or drops the shard) or could
        // not be read; the shard's groups are told why until the next syncShards retries.
        job.failed = e instanceof Error ? e.message : String(e);
        this.shardEpochs.delete(p);
        return;
      }
      if (!done) {
        this.loading.set(p, job);
        defer!(step);
        return;
      }
      this.loading.delete(p);
      this.shards.set(p, job.shard);
      this.shardEpochs.set(p, epoch);
      // What the load replayed past the high watermark (the previous leader's last writes) is
      // not committed yet: `replicated` waits for it as for this broker's own writes, so
      // FetchOffsets answers no offset a failover could still take back (cluster-sim seed 5277).
      // An earlier leadership's writes past the log end were truncated away: not waited for.
      if (job.offset > 0) this.lastWritten.set(p, job.offset - 1);
      else this.lastWritten.delete(p);
    };
    step();
  }

  /** Replays records of partition `p` from `job.offset` on, about `sliceBytes` of them; true at the log end. */
  private replaySlice(p: number, job: ShardLoad, sliceBytes: number): boolean {
    const log = this.rm.leaderLog(OFFSETS_TOPIC, p);
    let replayed = 0;
    while (job.offset < log.logEndOffset) {
      if (replayed >= sliceBytes) return false;
      const r = log.read(job.offset, Math.min(4 << 20, sliceBytes));
      if (r.bytes === 0) break;
      for (const chunk of r.chunks) {
        for (let pos = 0; pos + HEADER_SIZE <= chunk.length; ) {
          const h = readBatchHeader(chunk, pos);
          if (h.isControl) {
            pos += h.size; // a transaction marker (issue 17) is no group record
            continue;
          }
          const c = recordCursor(chunk, pos);
          while (c.next()) {
            if (c.offset < job.offset || c.keyLength < 0) continue;
            job.shard.replay(fromKeyValue(c.keyString()!, c.value()));
          }
          pos += h.size;
        }
      }
      replayed += r.bytes;
      job.bytes += r.bytes;
      job.offset = r.nextOffset;
    }
    return true;
  }

  /** The shard that owns `groupId`. */
  shardFor(groupId: string): GroupCoordinator {
    const p = offsetsPartitionFor(groupId);
    const shard = this.shards.get(p);
    if (!shard) {
      const loading = this.loading.get(p);
      if (loading !== undefined)
        throw rillError(
          "COORDINATOR_NOT_AVAILABLE",
          loading.failed === null
            ? `group_id: ${OFFSETS_TOPIC}-${p}, which coordinates "${groupId}", is loading on this broker (${loading.bytes} bytes replayed so far); retry shortly`
            : `group_id: ${OFFSETS_TOPIC}-${p}, which coordinates "${groupId}", failed to load on this broker (${loading.failed}); it is retried at the next metadata change`,
        );
      const st = this.rm.image.topics.get(OFFSETS_TOPIC)?.partitions[p];
      if (!st)
        throw rillError(
          "COORDINATOR_NOT_AVAILABLE",
          `group_id: ${OFFSETS_TOPIC} does not exist yet (it is created once enough brokers are up)`,
        );
      if (st.leader < 0)
        throw rillError(
          "COORDINATOR_NOT_AVAILABLE",
          `group_id: ${OFFSETS_TOPIC}-${p}, which coordinates "${groupId}", has no leader right now`,
        );
      throw rillError(
        "NOT_COORDINATOR",
        `group_id: the coordinator of "${groupId}" is broker ${st.leader} (leader of ${OFFSETS_TOPIC}-${p}), not this broker`,
      );
    }
    return shard;
  }

  /**
   * Runs a handler on the group's shard: its records are written to `__consumer_offsets`, then
   * replayed, then its response is returned. Synchronous: requests of a shard never interleave.
   */
  run<T>(groupId: string, handler: (shard: GroupCoordinator, nowMs: number) => CoordinatorResult<T>): T {
    const p = offsetsPartitionFor(groupId);
    const shard = this.shardFor(groupId);
    const res = handler(shard, this.clock.nowMs());
    this.write(p, shard, res.records);
    res.effects?.();
    if (res.records.length > 0) this.notify(groupId);
    return res.response;
  }

  /** The clock's time now (what handlers are given). */
  nowMs(): number {
    return this.clock.nowMs();
  }

  /**
   * Registers a receiver of classic answers that `tick` and `classicTick` produce (answers
   * produced by a call come back in its response). Returns an unsubscribe function.
   */
  onClassicDeliveries(fn: (d: readonly ClassicDelivery[]) => void): () => void {
    this.deliverySinks.add(fn);
    return () => this.deliverySinks.delete(fn);
  }

  /** Hands classic answers to every receiver. */
  deliver(deliveries: readonly ClassicDelivery[]): void {
    if (deliveries.length === 0) return;
    for (const fn of this.deliverySinks) fn(deliveries);
  }

  /** Runs the classic group's timeouts now (a timer set for its `classicDeadline` fired). */
  classicTick(groupId: string): void {
    const deliveries = this.run(groupId, (shard, now) => shard.classicTick(now, groupId));
    this.deliver(deliveries);
  }

  /** When the classic group next needs `classicTick` (null: nothing pending, or not coordinated here). */
  classicDeadline(groupId: string): number | null {
    const shard = this.shards.get(offsetsPartitionFor(groupId));
    return shard === undefined ? null : shard.classicDeadline(groupId);
  }

  /**
   * Calls `fn` whenever the group's state changes (a member joined, left, acknowledged a
   * revocation...), so members served by this broker heartbeat at once instead of waiting for
   * their interval. Returns an unsubscribe function.
   */
  watch(groupId: string, fn: () => void): () => void {
    let set = this.watchers.get(groupId);
    if (!set) this.watchers.set(groupId, (set = new Set()));
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0) this.watchers.delete(groupId);
    };
  }

  private notify(groupId: string): void {
    for (const fn of this.watchers.get(groupId) ?? []) fn();
  }

  private notifyGroupsOf(records: readonly GroupRecord[]): void {
    const groups = new Set(records.map((r) => (r as { groupId?: string }).groupId).filter((g): g is string => typeof g === "string"));
    for (const g of groups) this.notify(g);
  }

  private write(p: number, shard: GroupCoordinator, records: readonly GroupRecord[]): void {
    if (records.length === 0) return;
    const now = this.clock.nowMs();
    const batch = encodeBatch(
      records.map((r) => {
        const kv = toKeyValue(r);
        return { key: kv.key, value: kv.value, timestampMs: now };
      }),
      { nowMs: now },
    );
    const res = this.rm.append(OFFSETS_TOPIC, p, batch, "all");
    this.lastWritten.set(p, res.lastOffset);
    for (const r of records) shard.replay(r);
    for (const fn of this.writeListeners) fn(records);
  }

  /** Calls `fn` with the records of each write to `__consumer_offsets` (after they are applied); returns the function that stops it. */
  onWrite(fn: (records: readonly GroupRecord[]) => void): () => void {
    this.writeListeners.add(fn);
    return () => this.writeListeners.delete(fn);
  }

  /** Session timeouts and other periodic work of every shard. */
  tick(): void {
    const now = this.clock.nowMs();
    for (const [p, shard] of this.shards) {
      const records = shard.tick(now);
      this.write(p, shard, records);
      if (records.length > 0) this.notifyGroupsOf(records);
      const classic = shard.classicTick(now);
      this.write(p, shard, classic.records);
      classic.effects?.();
      if (classic.records.length > 0) this.notifyGroupsOf(classic.records);
      this.deliver(classic.response);
    }
  }

  /** Topic partition counts changed: every shard recomputes the assignments that depend on them. */
  topicsChanged(): void {
    const counts = new Map<string, number>();
    for (const t of this.rm.image.topics.values()) if (t.name !== OFFSETS_TOPIC) counts.set(t.name, t.partitions.length);
    for (const [p, shard] of this.shards) {
      const records = shard.onTopicsChanged(counts);
      this.write(p, shard, records);
      if (records.length > 0) this.notifyGroupsOf(records);
    }
  }

  /**
   * A transaction marker for `__consumer_offsets` partition `p` (issue 17): producer
   * `producerId`'s pending offsets in the shard's groups are committed (or dropped), written and
   * replicated before this resolves. NOT_COORDINATOR when the shard is not here.
   */
  async completeTxnOffsets(p: number, producerId: number, commit: boolean): Promise<void> {
    const shard = this.shards.get(p);
    if (shard === undefined)
      throw rillError("NOT_LEADER_OR_FOLLOWER", `${OFFSETS_TOPIC}-${p}: its group coordinator is not on this broker`);
    const res = shard.completeTxnOffsets(producerId, commit, this.clock.nowMs());
    this.write(p, shard, res.records);
    const last = this.lastWritten.get(p);
    if (res.records.length > 0 && last !== undefined) await this.rm.replicated(OFFSETS_TOPIC, p, last, 15_000);
  }

  /** Every shard (for ListGroups). */
  allShards(): GroupCoordinator[] {
    return [...this.shards.values()];
  }
}
