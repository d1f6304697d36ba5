/**
 * The transaction coordinators of this broker, wired to the log: one `TxnCoordinator` shard per
 * partition of the internal compacted topic `__transaction_state` that this broker leads. A
 * transactional id lives in partition `murmur2(id) % 50` (Kafka's rule).
 *
 * Every request runs as: the shard's handler checks it and computes records; the records are
 * appended to the shard's partition (acks=all) and replayed; the request continues once every
 * in-sync replica holds them, so a decision survives the coordinator's death. The requests of
 * one turn of the event loop on a shard share one append (group commit, `runWrites`). Requests of one
 * transactional id run one at a time (a per-id queue: InitProducerId and EndTransaction wait on
 * the controller). Loading a shard (a restart, a leader move) replays the partition from its
 * start, then resumes the ends that were decided but not completed: their markers are written
 * again (a marker is idempotent for the partition) and Complete* follows.
 *
 * EndTransaction answers once PrepareCommit/PrepareAbort is durable (Kafka's coordinator does
 * the same): the markers and Complete* follow in the background. Until they are done, the
 * id's next request (a produce's gate, AddPartitions, AddOffsets, InitProducerId, the next end)
 * waits for them here, up to `completionWaitMs`, then answers CONCURRENT_TRANSACTIONS
 * (retriable) — so no record of the next transaction reaches a partition before the marker
 * that ends the previous one (TV2 writes the marker at the epoch the producer continues with).
 * A completion that failed while this broker still coordinates (not a lost leadership: the next
 * coordinator resumes those) is started again by `tick()`.
 *
 * Once the markers are written, CompleteCommit/CompleteAbort is replayed at once but appended
 * later: with the shard's next append (the id's next record — Ongoing, Empty, the next Prepare* —
 * holds it and replaces it; another id's record carries it in the same batch), or on its own
 * after `completeWriteDelayMs`, at `tick()` and at `close()`. Nothing waits for it to be durable:
 * a coordinator that loads the log without it finds the Prepare* record and writes the markers
 * again, which ends nothing twice (no record of the id's next transaction can be in a partition
 * before its Ongoing record, which holds the Complete, is replicated). So a transaction in a
 * loop costs two state appends, Ongoing and Prepare*, plus one marker per partition.
 *
 * The ports: `issueProducerId` (the controller, which issues producer ids) and `writeMarker`
 * (a partition's leader, here or on another broker). Time comes from the injected Clock and
 * Timers; periodic work (timeouts, expiration) runs on `tick()`.
 */
import type { Clock } from "../../base/clock.ts";
import { RillError, rillError } from "../../base/errors.ts";
import { murmur2, toPositive } from "../../base/murmur2.ts";
import type { Timers } from "../../base/timers.ts";
import { encodeBatch, HEADER_SIZE, readBatchHeader, records as recordCursor } from "../../protocol/record-batch.ts";
import type { ReplicaManager } from "../../replication/replica-manager.ts";
import { type TxnCompletion, TxnCoordinator, type TxnCoordinatorOptions, type TxnIdentity, type TxnResult } from "./txn-coordinator.ts";
import { type TxnPartition, type TxnRecord, type TxnStateRecord, txnFromKeyValue, txnKey } from "./txn-records.ts";

/** The internal topic that holds transaction state. */
export const TXN_TOPIC = "__transaction_state";
/** Its partition count (Kafka's transaction.state.log.num.partitions default). */
export const TXN_PARTITIONS = 50;
/** Its topic configuration: compacted, 100 MiB segments (Kafka's transaction.state.log.segment.bytes). */
export const TXN_TOPIC_CONFIGS: Readonly<Record<string, string>> = {
  "cleanup.policy": "compact",
  "segment.bytes": String(100 * 1024 * 1024),
};

/** Partitions of recent transactional ids (each request asks several times); emptied when it grows past `PARTITION_CACHE_MAX`. */
const partitionCache = new Map<string, number>();
const PARTITION_CACHE_MAX = 10_000;

/** The `__transaction_state` partition that owns a transactional id. */
export function txnPartitionFor(transactionalId: string): number {
  let p = partitionCache.get(transactionalId);
  if (p === undefined) {
    p = toPositive(murmur2(Buffer.from(transactionalId, "utf8"))) % TXN_PARTITIONS;
    if (partitionCache.size >= PARTITION_CACHE_MAX) partitionCache.clear();
    partitionCache.set(transactionalId, p);
  }
  return p;
}

/** A commit/abort marker for one partition. */
export interface TxnMarkerSpec {
  readonly producerId: number;
  readonly producerEpoch: number;
  readonly commit: boolean;
  /** The leader epoch of the coordinator's `__transaction_state` partition. */
  readonly coordinatorEpoch: number;
}

/** What the runtime reaches outside itself. */
export interface TxnRuntimePorts {
  /** The controller: `transactionalId`'s producer id at an epoch >= `atLeastEpoch` (a fresh id at 0 past the int16 range). */
  issueProducerId(transactionalId: string, atLeastEpoch: number): Promise<TxnIdentity>;
  /** Writes a marker through the partition's leader; resolves once its ISR holds it. */
  writeMarker(tp: TxnPartition, marker: TxnMarkerSpec): Promise<void>;
}

/** Options of the runtime. */
export interface TxnRuntimeOptions extends TxnCoordinatorOptions {
  /** How long to wait between two tries of a marker whose leader could not take it. */
  readonly markerRetryMs?: number;
  /**
   * How long a request waits for the previous transaction's markers before it answers
   * CONCURRENT_TRANSACTIONS (retriable). Default 5000.
   */
  readonly completionWaitMs?: number;
  /** Told of what the coordinator does (the broker logs it). */
  readonly onEvent?: (e: TxnEvent) => void;
  /**
   * How long a CompleteCommit/CompleteAbort may wait to be written with the shard's next
   * append before it is written on its own (see the module comment). Default 20.
   */
  readonly completeWriteDelayMs?: number;
}

/** Something worth a log line. */
export type TxnEvent =
  | { readonly kind: "marker-retry"; readonly transactionalId: string; readonly tp: TxnPartition; readonly error: unknown }
  | { readonly kind: "timed-out"; readonly transactionalId: string }
  | { readonly kind: "completed"; readonly transactionalId: string; readonly commit: boolean; readonly partitions: number };

function isConcurrent(e: unknown): boolean {
  return e instanceof RillError && e.kind.name === "CONCURRENT_TRANSACTIONS";
}

/** A request's handler waiting for its shard's next append. */
interface WriteJob {
  readonly id: string;
  readonly handler: (shard: TxnCoordinator, now: number) => TxnResult<unknown>;
  readonly resolve: (r: { response: unknown; waitFor: number }) => void;
  readonly reject: (e: unknown) => void;
}

/** How long a write waits for the in-sync replicas. */
const REPLICATE_TIMEOUT_MS = 15_000;

/** The coordinator shards of this broker. */
export class TxnRuntime {
  private readonly shards = new Map<number, TxnCoordinator>();
  private readonly shardEpochs = new Map<number, number>();
  /** Per transactional id, the tail of its queue of requests. */
  private readonly queues = new Map<string, Promise<unknown>>();
  /** Completions being written (by transactional id), so a tick does not start a second one. */
  private readonly completing = new Map<string, Promise<void>>();
  /**
   * Per shard partition: CompleteCommit/CompleteAbort records already replayed but not appended
   * yet; the shard's next append carries them (unless it holds a newer record of the same id),
   * or `writeUnwritten` after `completeWriteDelayMs`.
   */
  private readonly unwritten = new Map<number, TxnRecord[]>();
  /** Per shard partition: when its oldest unwritten record became unwritten (clock ms). */
  private readonly unwrittenSince = new Map<number, number>();
  private unwrittenTimer: unknown = null;
  /** Per shard partition: the handlers waiting for its next append (group commit, `runWrites`). */
  private readonly writeJobs = new Map<number, WriteJob[]>();
  /** Per shard partition, per transactional id: the last offset this runtime appended a record of it at (what its answers wait to be replicated). */
  private readonly appendedAt = new Map<number, Map<string, number>>();
  /** Appends made to `__transaction_state` by this runtime (tests count them). */
  stateAppends = 0;
  private closed = false;

  constructor(
    private readonly rm: ReplicaManager,
    private readonly clock: Clock,
    private readonly timers: Timers,
    readonly nodeId: number,
    private readonly ports: TxnRuntimePorts,
    private readonly opts: TxnRuntimeOptions,
  ) {}

  /** Stops: writes the unwritten Complete* records (while appends are still taken), then no new retries of markers. */
  close(): void {
    this.writeUnwritten();
    if (this.unwrittenTimer !== null) this.timers.clearTimeout(this.unwrittenTimer);
    this.unwrittenTimer = null;
    this.closed = true;
  }

  /**
   * Loads the shards of `__transaction_state` partitions this broker now leads (replaying each,
   * then resuming its decided ends) and drops the others. Call after every metadata change that
   * moves leaders.
   */
  syncShards(): void {
    if (this.rm.closed || this.closed) return;
    const t = this.rm.image.topics.get(TXN_TOPIC);
    for (let p = 0; p < TXN_PARTITIONS; p++) {
      const st = t?.partitions[p];
      const leads = this.rm.leading && st !== undefined && st.leader === this.nodeId && this.rm.hasLocalLog(TXN_TOPIC, p);
      const epoch = st?.leaderEpoch ?? -1;
      if (leads && (!this.shards.has(p) || this.shardEpochs.get(p) !== epoch)) {
        this.dropUnwritten(p); // what the log holds is the truth: its decided ends resume below
        this.appendedAt.delete(p);
        const shard = this.load(p);
        this.shards.set(p, shard);
        this.shardEpochs.set(p, epoch);
        for (const c of shard.pendingCompletions()) this.startCompletion(c);
      } else if (!leads && this.shards.has(p)) {
        this.dropUnwritten(p); // the next coordinator resumes those ends from their Prepare* record
        this.appendedAt.delete(p);
        this.shards.delete(p);
        this.shardEpochs.delete(p);
      }
    }
  }

  /**
   * Replays the shard of `transactionalId` from its partition again, as a coordinator that takes
   * the partition over does, and resumes its decided ends (tests of replay; an operator's repair
   * after writing a record by hand). NOT_COORDINATOR when not here.
   */
  reloadShardOf(transactionalId: string): void {
    const { p } = this.shardFor(transactionalId);
    this.writeUnwritten(p);
    this.dropUnwritten(p);
    const shard = this.load(p);
    this.shards.set(p, shard);
    for (const c of shard.pendingCompletions()) this.startCompletion(c);
  }

  private load(p: number): TxnCoordinator {
    const shard = new TxnCoordinator(this.opts);
    const log = this.rm.leaderLog(TXN_TOPIC, p);
    let offset = log.logStartOffset;
    while (offset < log.logEndOffset) {
      const r = log.read(offset, 4 << 20);
      if (r.bytes === 0) break;
      for (const chunk of r.chunks) {
        for (let pos = 0; pos + HEADER_SIZE <= chunk.length; ) {
          const h = readBatchHeader(chunk, pos);
          const c = recordCursor(chunk, pos);
          while (c.next()) {
            if (c.offset < offset || c.keyLength < 0) continue;
            shard.replay(txnFromKeyValue(c.keyString()!, c.value()));
          }
          pos += h.size;
        }
      }
      offset = r.nextOffset;
    }
    return shard;
  }

  /** The node that coordinates `transactionalId` (COORDINATOR_NOT_AVAILABLE while unknown). */
  coordinatorOf(transactionalId: string): number {
    const p = txnPartitionFor(transactionalId);
    const st = this.rm.image.topics.get(TXN_TOPIC)?.partitions[p];
    if (st === undefined)
      throw rillError(
        "COORDINATOR_NOT_AVAILABLE",
        `transactional_id: ${TXN_TOPIC} does not exist yet (it is created once enough brokers are up)`,
      );
    if (st.leader < 0)
      throw rillError(
        "COORDINATOR_NOT_AVAILABLE",
        `transactional_id: ${TXN_TOPIC}-${p}, which coordinates "${transactionalId}", has no leader right now`,
      );
    return st.leader;
  }

  /** Whether this broker coordinates `transactionalId` now. */
  isLocal(transactionalId: string): boolean {
    return this.shards.has(txnPartitionFor(transactionalId));
  }

  /** The shard of `transactionalId` (NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE when not here). */
  private shardFor(transactionalId: string): { p: number; shard: TxnCoordinator; epoch: number } {
    const p = txnPartitionFor(transactionalId);
    const shard = this.shards.get(p);
    if (shard === undefined) {
      const leader = this.coordinatorOf(transactionalId);
      throw rillError(
        "NOT_COORDINATOR",
        `transactional_id: the coordinator of "${transactionalId}" is broker ${leader} (leader of ${TXN_TOPIC}-${p}), not this broker`,
      );
    }
    return { p, shard, epoch: this.shardEpochs.get(p) ?? -1 };
  }

  /** Runs `fn` after the earlier requests of `id` (one at a time per transactional id). */
  private serial<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const before = this.queues.get(id) ?? Promise.resolve();
    const run = before.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.queues.set(id, tail);
    void tail.then(() => {
      if (this.queues.get(id) === tail) this.queues.delete(id);
    });
    return run;
  }

  /**
   * Runs `handler` on `id`'s shard, appends and replays its records, then waits for the in-sync
   * replicas — also when it wrote nothing, for the last record of `id` appended before (an answer
   * from memory vouches for state that must be durable). The handlers of one turn of the event loop
   * on a shard run in order and share one append (group commit, `runWrites`).
   */
  private commit<T>(id: string, handler: (shard: TxnCoordinator, now: number) => TxnResult<T>): Promise<T> {
    let p: number;
    try {
      p = this.shardFor(id).p;
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<{ response: unknown; waitFor: number }>((resolve, reject) => {
      let jobs = this.writeJobs.get(p);
      if (jobs === undefined) {
        jobs = [];
        this.writeJobs.set(p, jobs);
        queueMicrotask(() => this.runWrites(p));
      }
      jobs.push({ id, handler, resolve, reject });
    }).then(({ response, waitFor }) =>
      waitFor >= 0 ? this.rm.replicated(TXN_TOPIC, p, waitFor, REPLICATE_TIMEOUT_MS).then(() => response as T) : (response as T),
    );
  }

  /**
   * Runs the handlers waiting on shard `p`, in order, each replaying its records before the next
   * one runs (so it sees them), then appends every record in one batch. When the append fails,
   * the replays are undone and every handler from the first one that wrote on is refused with
   * the append's error (the later ones may have relied on its records); the earlier ones stand.
   */
  private runWrites(p: number): void {
    const jobs = this.writeJobs.get(p) ?? [];
    this.writeJobs.delete(p);
    const now = this.clock.nowMs();
    const before = new Map<string, TxnStateRecord | undefined>();
    const records: TxnRecord[] = [];
    const ran: { job: WriteJob; response: unknown; afterWrite: boolean }[] = [];
    let shard: TxnCoordinator | undefined;
    for (const job of jobs) {
      let res: TxnResult<unknown>;
      try {
        const s = this.shardFor(job.id);
        if (shard !== undefined && s.shard !== shard) throw rillError("NOT_COORDINATOR", `${TXN_TOPIC}-${p} was loaded again; retry`);
        shard = s.shard;
        res = job.handler(shard, now);
      } catch (e) {
        job.reject(e);
        continue;
      }
      const afterWrite = records.length > 0 || res.records.length > 0;
      for (const r of res.records) {
        if (!before.has(r.transactionalId)) before.set(r.transactionalId, shard.get(r.transactionalId));
        shard.replay(r);
        records.push(r);
      }
      ran.push({ job, response: res.response, afterWrite });
    }
    if (records.length > 0 && shard !== undefined) {
      try {
        this.appendRecords(p, records);
      } catch (e) {
        for (const [id, prev] of before) shard.replay(prev ?? { type: "txn-tombstone", v: 1, transactionalId: id });
        for (const r of ran) {
          if (r.afterWrite) r.job.reject(e);
          else r.job.resolve({ response: r.response, waitFor: this.appendedAt.get(p)?.get(r.job.id) ?? -1 });
        }
        return;
      }
    }
    const at = this.appendedAt.get(p);
    for (const r of ran) r.job.resolve({ response: r.response, waitFor: at?.get(r.job.id) ?? -1 });
  }

  /** Appends `records` to shard `p` and replays them; throws, with nothing changed, what the append throws. */
  private write(p: number, shard: TxnCoordinator, records: readonly TxnRecord[]): number {
    const last = this.appendRecords(p, records);
    for (const r of records) shard.replay(r);
    return last;
  }

  /**
   * Appends `records` (with the shard's unwritten Complete* records that no record of `records`
   * supersedes) in one batch; returns its last offset. Replays nothing. Throws, with nothing
   * changed, what the append throws.
   */
  private appendRecords(p: number, records: readonly TxnRecord[]): number {
    const now = this.clock.nowMs();
    const all = this.withUnwritten(p, records);
    // The bytes of txnToKeyValue, the value's JSON written straight into the batch (no Buffer of its own).
    const batch = encodeBatch(
      all.map((r) => ({ key: txnKey(r.transactionalId), value: r.type === "txn-tombstone" ? null : JSON.stringify(r), timestampMs: now })),
      { nowMs: now },
    );
    const res = this.rm.append(TXN_TOPIC, p, batch, "all");
    this.stateAppends++;
    this.dropUnwritten(p);
    let at = this.appendedAt.get(p);
    if (at === undefined) this.appendedAt.set(p, (at = new Map()));
    for (const r of all) {
      if (r.type === "txn-tombstone") at.delete(r.transactionalId);
      else at.set(r.transactionalId, res.lastOffset);
    }
    return res.lastOffset;
  }

  private dropUnwritten(p: number): void {
    this.unwritten.delete(p);
    this.unwrittenSince.delete(p);
  }

  /** `records` after the unwritten records of shard `p` of other ids (an id's newer record holds all its state). */
  private withUnwritten(p: number, records: readonly TxnRecord[]): readonly TxnRecord[] {
    const pending = this.unwritten.get(p);
    if (pending === undefined) return records;
    if (records.length === 1) {
      const id = records[0]!.transactionalId;
      return [...pending.filter((r) => r.transactionalId !== id), records[0]!];
    }
    const ids = new Set(records.map((r) => r.transactionalId));
    return [...pending.filter((r) => !ids.has(r.transactionalId)), ...records];
  }

  /**
   * Marks `id`'s decided end complete (its markers are all written): CompleteCommit/CompleteAbort
   * is replayed now and appended with the shard's next write — the id's next request writes a
   * record that holds it anyway — or on its own after `completeWriteDelayMs`. Until then a new
   * coordinator would find the Prepare* record and write the markers again, which is harmless
   * (a marker ends nothing twice); nothing waits for this record to be durable.
   */
  private completeLater(id: string): void {
    const { p, shard } = this.shardFor(id);
    const { records } = shard.complete(id, this.clock.nowMs());
    if (records.length === 0) return;
    for (const r of records) shard.replay(r);
    const pending = this.unwritten.get(p);
    if (pending === undefined) {
      this.unwritten.set(p, [...records]);
      this.unwrittenSince.set(p, this.clock.nowMs());
    } else pending.push(...records);
    if (this.unwrittenTimer === null) this.armUnwrittenTimer(this.opts.completeWriteDelayMs ?? 20);
  }

  private armUnwrittenTimer(ms: number): void {
    this.unwrittenTimer = this.timers.setTimeout(() => {
      this.unwrittenTimer = null;
      this.writeOldUnwritten();
    }, ms);
  }

  /**
   * The timer of `completeLater`: appends the unwritten records of the shards whose oldest one has
   * waited `completeWriteDelayMs`, and waits again for the others. A transaction in a loop writes
   * its id's next record within that time (which carries the Complete*), so a busy coordinator
   * appends nothing here; only an id that stays idle costs an append of its own.
   */
  private writeOldUnwritten(): void {
    const delay = this.opts.completeWriteDelayMs ?? 20;
    const now = this.clock.nowMs();
    let next = Number.POSITIVE_INFINITY;
    for (const [p, since] of [...this.unwrittenSince]) {
      if (now - since >= delay) this.writeUnwritten(p);
      else next = Math.min(next, since + delay);
    }
    // A shard whose append failed keeps its records (and their age): the next tick tries again.
    if (!this.closed && next !== Number.POSITIVE_INFINITY && this.unwrittenTimer === null) this.armUnwrittenTimer(Math.max(1, next - now));
  }

  /** Appends the unwritten Complete* records of shard `only` (or of every shard); a shard whose append fails keeps them for its next write or tick. */
  private writeUnwritten(only?: number): void {
    for (const p of only === undefined ? [...this.unwritten.keys()] : [only]) {
      const shard = this.shards.get(p);
      if (shard === undefined) {
        this.dropUnwritten(p);
        continue;
      }
      if (!this.unwritten.has(p)) continue;
      try {
        const last = this.write(p, shard, []);
        void this.rm.replicated(TXN_TOPIC, p, last, REPLICATE_TIMEOUT_MS).catch(() => undefined);
      } catch {
        // kept: the shard's next write, or the next tick, tries again
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Requests

  /** InitProducerId with a transactional id: fences an older instance (aborting its open transaction) and issues the id. */
  initProducerId(req: {
    transactionalId: string;
    transactionTimeoutMs: number;
    producerId: number;
    producerEpoch: number;
  }): Promise<TxnIdentity> {
    this.shardFor(req.transactionalId);
    return this.serial(req.transactionalId, async () => {
      const deadline = this.clock.nowMs() + (this.opts.completionWaitMs ?? 5000);
      for (;;) {
        await this.waitCompletionUntil(req.transactionalId, deadline);
        const { shard } = this.shardFor(req.transactionalId);
        let plan: ReturnType<TxnCoordinator["beginInit"]>;
        try {
          plan = shard.beginInit(req, this.clock.nowMs());
        } catch (e) {
          if (this.completing.has(req.transactionalId) && this.clock.nowMs() < deadline && isConcurrent(e)) continue;
          throw e;
        }
        if (plan.kind === "fence") {
          // Planned again when its append runs (a request of the same turn may have changed the state).
          const completion = await this.commit(req.transactionalId, (s, now): TxnResult<TxnCompletion | null> => {
            const again = s.beginInit(req, now);
            return again.kind === "fence" ? again.result : { records: [], response: null };
          });
          if (completion !== null) await this.runCompletion(completion);
          continue;
        }
        const issued = await this.ports.issueProducerId(req.transactionalId, plan.atLeastEpoch);
        return this.commit(req.transactionalId, (s, now) => s.completeInit(req, issued, now));
      }
    });
  }

  /**
   * Runs `commit(id, handler)` once `id`'s previous end is complete (waiting for its markers up
   * to `completionWaitMs`); a CONCURRENT_TRANSACTIONS from the handler while a completion still
   * runs waits for it again, within the same bound.
   */
  private async afterCompletion<T>(id: string, handler: (shard: TxnCoordinator, now: number) => TxnResult<T>): Promise<T> {
    const deadline = this.clock.nowMs() + (this.opts.completionWaitMs ?? 5000);
    for (;;) {
      if (this.completing.has(id)) await this.waitCompletionUntil(id, deadline);
      try {
        return await this.commit(id, handler);
      } catch (e) {
        if (!isConcurrent(e) || !this.completing.has(id)) throw e;
        if (this.clock.nowMs() >= deadline) throw e;
      }
    }
  }

  /** Waits for `id`'s running completion (its failure too), or until `deadline`. */
  private async waitCompletionUntil(id: string, deadline: number): Promise<void> {
    const running = this.completing.get(id);
    if (running === undefined) return;
    const left = deadline - this.clock.nowMs();
    if (left <= 0) return;
    let timer: unknown;
    await Promise.race([
      running.catch(() => undefined),
      new Promise<void>((resolve) => {
        timer = this.timers.setTimeout(resolve, left);
      }),
    ]);
    this.timers.clearTimeout(timer);
  }

  /** The produce gate: the partition joins the transaction (TV2) or is verified to be in it (TV1). */
  gate(req: {
    transactionalId: string;
    producerId: number;
    producerEpoch: number;
    topic: string;
    partition: number;
    mode: "add" | "verify";
  }): Promise<void> {
    if (!this.completing.has(req.transactionalId)) return this.commit(req.transactionalId, (s, now) => s.gate(req, now));
    return this.afterCompletion(req.transactionalId, (s, now) => s.gate(req, now));
  }

  /** AddPartitionsToTxn (TV1) or verify-only. */
  addPartitions(req: {
    transactionalId: string;
    producerId: number;
    producerEpoch: number;
    partitions: readonly TxnPartition[];
    verifyOnly: boolean;
  }): Promise<(Error | null)[]> {
    return this.afterCompletion(req.transactionalId, (s, now) => s.addPartitions(req, now));
  }

  /** AddOffsetsToTxn: the group's offsets partition joins. */
  addOffsets(req: {
    transactionalId: string;
    producerId: number;
    producerEpoch: number;
    groupId: string;
    offsetsPartition: TxnPartition;
    txnVersion: 1 | 2;
  }): Promise<void> {
    return this.afterCompletion(req.transactionalId, (s, now) => s.addOffsets(req, now));
  }

  /**
   * EndTransaction: waits for the previous end's markers (if still being written), decides
   * (durably: PrepareCommit/PrepareAbort replicated) and answers the identity to continue with;
   * the markers and Complete* are written in the background (see the module comment).
   */
  endTransaction(req: {
    transactionalId: string;
    producerId: number;
    producerEpoch: number;
    commit: boolean;
    bumpEpoch: boolean;
  }): Promise<TxnIdentity> {
    this.shardFor(req.transactionalId);
    return this.serial(req.transactionalId, async () => {
      await this.waitCompletionUntil(req.transactionalId, this.clock.nowMs() + (this.opts.completionWaitMs ?? 5000));
      const plan = this.shardFor(req.transactionalId).shard.planEnd(req);
      if (plan.kind === "done") return plan.identity;
      const fresh = plan.freshId ? await this.ports.issueProducerId(req.transactionalId, Number.MAX_SAFE_INTEGER) : null;
      const { completion, identity } = await this.commit(req.transactionalId, (s, now) => s.endTxn(req, fresh, now));
      if (completion !== null) void this.runCompletion(completion).catch(() => undefined);
      return identity;
    });
  }

  /** Aborts `id`'s open transaction from the coordinator (admin, timeout); false when none is open. */
  abortOpen(transactionalId: string): Promise<boolean> {
    this.shardFor(transactionalId);
    return this.serial(transactionalId, async () => {
      const completion = await this.commit(
        transactionalId,
        (s, now): TxnResult<TxnCompletion | null> => s.abortOpen(transactionalId, now) ?? { records: [], response: null },
      );
      if (completion === null) return false;
      await this.runCompletion(completion);
      return true;
    });
  }

  /** The state of `id` on this broker (NOT_COORDINATOR when coordinated elsewhere; undefined: unknown). */
  describe(transactionalId: string): { state: TxnStateRecord | undefined; coordinatorEpoch: number } {
    const { shard, epoch } = this.shardFor(transactionalId);
    return { state: shard.get(transactionalId), coordinatorEpoch: epoch };
  }

  /** Every transactional id this broker coordinates. */
  all(): TxnStateRecord[] {
    const out: TxnStateRecord[] = [];
    for (const s of this.shards.values()) out.push(...s.all());
    return out;
  }

  /** The clock's time now. */
  nowMs(): number {
    return this.clock.nowMs();
  }

  // ---------------------------------------------------------------------------------------------
  // Markers

  private startCompletion(c: TxnCompletion): void {
    if (this.completing.has(c.transactionalId)) return;
    void this.serial(c.transactionalId, () => this.runCompletion(c)).catch(() => undefined);
  }

  /** Writes every marker of `c` (retrying each until its leader has it), then Complete*. */
  private runCompletion(c: TxnCompletion): Promise<void> {
    const running = this.completing.get(c.transactionalId);
    if (running) return running;
    const run = (async () => {
      const { epoch } = this.shardFor(c.transactionalId);
      const marker: TxnMarkerSpec = { producerId: c.producerId, producerEpoch: c.producerEpoch, commit: c.commit, coordinatorEpoch: epoch };
      if (c.partitions.length === 1) await this.markUntilDone(c.transactionalId, c.partitions[0]!, marker);
      else await Promise.all(c.partitions.map((tp) => this.markUntilDone(c.transactionalId, tp, marker)));
      this.completeLater(c.transactionalId);
      this.opts.onEvent?.({ kind: "completed", transactionalId: c.transactionalId, commit: c.commit, partitions: c.partitions.length });
    })();
    this.completing.set(c.transactionalId, run);
    void run.then(
      () => this.completing.delete(c.transactionalId),
      () => this.completing.delete(c.transactionalId),
    );
    return run;
  }

  private async markUntilDone(id: string, tp: TxnPartition, marker: TxnMarkerSpec): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      if (this.closed || this.rm.closed)
        throw rillError("SHUTTING_DOWN", "the broker is stopping; the next coordinator completes the transaction");
      this.shardFor(id); // still the coordinator (else NOT_COORDINATOR: the next one resumes)
      try {
        await this.ports.writeMarker(tp, marker);
        return;
      } catch (e) {
        if (!(e instanceof RillError)) throw e;
        // A deleted topic needs no marker; a newer epoch already there means a later end wrote over it.
        if (["UNKNOWN_TOPIC_OR_PARTITION", "UNKNOWN_TOPIC_ID", "PRODUCER_FENCED", "INVALID_PRODUCER_EPOCH"].includes(e.kind.name)) {
          if (e.kind.name !== "UNKNOWN_TOPIC_OR_PARTITION" || !this.rm.image.topics.has(tp.topic)) return;
        }
        if (e.kind.name === "TRANSACTION_COORDINATOR_FENCED") throw e;
        this.opts.onEvent?.({ kind: "marker-retry", transactionalId: id, tp, error: e });
        await new Promise<void>((resolve) =>
          this.timers.setTimeout(resolve, Math.min(1000, (this.opts.markerRetryMs ?? 50) * 2 ** Math.min(attempt, 5))),
        );
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Periodic work

  /** Aborts transactions open longer than their timeout; forgets ids idle for transactional.id.expiration.ms. */
  tick(): void {
    if (this.closed || this.rm.closed) return;
    const now = this.clock.nowMs();
    this.writeUnwritten();
    for (const [p, shard] of this.shards) {
      // A decided end whose completion failed here (a marker's leader was away too long...): again.
      for (const c of shard.pendingCompletions())
        if (!this.completing.has(c.transactionalId) && !this.queues.has(c.transactionalId)) this.startCompletion(c);
      for (const id of shard.timedOut(now)) {
        if (this.queues.has(id)) continue;
        this.opts.onEvent?.({ kind: "timed-out", transactionalId: id });
        void this.abortOpen(id).catch(() => undefined);
      }
      const dead = shard.expire(now).filter((r) => !this.queues.has(r.transactionalId));
      if (dead.length > 0) this.write(p, shard, dead);
    }
  }
}
