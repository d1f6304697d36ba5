/**
 * The log of one partition: an ordered list of segments under `<dir>`, the last one active.
 *
 * Invariants:
 * - logStartOffset <= logEndOffset; every offset in [logStartOffset, logEndOffset) that survived
 *   compaction is readable; offsets are assigned once and never reused.
 * - `append` validates every batch before it changes anything: a rejected append leaves the
 *   files, the offsets and the cache exactly as they were.
 * - The produce path never decodes records: it rewrites baseOffset and partitionLeaderEpoch in
 *   place (both outside the CRC) and writes the caller's bytes.
 * - Durability: appends reach the OS at once; fsync follows `flush.messages` / `flush.ms`, and
 *   one fsync covers every append that was waiting for it (group commit).
 *
 * Files: `<base>.log|.index|.timeindex|.txnindex` per segment, and `partition.checkpoint` (JSON: log start
 * offset and recovery point, written atomically) for what the segments cannot tell.
 *
 * Transactions: a producer's transactional batches open its transaction here; the coordinator's
 * marker (`appendControl` on the leader, a replicated control batch on a follower) ends it. The
 * producer state knows the open transactions (`firstUnstableOffset`); each ABORT goes into the
 * `.txnindex` of the segment holding the marker, which `abortedTransactions` searches. A
 * transaction whose marker the high watermark has not passed yet stays unstable
 * (`firstUnstableOffsetAt`, Kafka's unreplicated transactions): a new leader that lacks the
 * marker still has it open, so a last stable offset past its records could move backwards.
 */
import { assert } from "../base/assert.ts";
import type { Clock } from "../base/clock.ts";
import { RillError, rillError } from "../base/errors.ts";
import { isCompacted, isDeleting, type TopicConfig } from "../config/schema.ts";
import { type FileSystem, settleAll, writeFileAtomicAsync } from "./fs.ts";
import { LeaderEpochCache, type EpochEntry } from "./leader-epoch-cache.ts";
import { encodeControlBatch, readControlRecord, type TxnMarker } from "../protocol/control-record.ts";
import {
  ATTRIBUTES_OFFSET,
  BATCH_OFFSETS,
  type BatchHeader,
  CONTROL_MASK,
  HEADER_SIZE,
  type ProduceChecks,
  TRUSTED_CHECKS,
  decodeRecords,
  batchBaseOffsetAt,
  batchLastOffsetAt,
  batchSizeAt,
  readBatchHeader,
  readBatchHeaderInto,
  setBaseOffset,
  setLogAppendTime,
  setPartitionLeaderEpoch,
  validateBatch,
  validateProducedBatch,
} from "../protocol/record-batch.ts";
import { incrementSequence } from "../protocol/sequence.ts";
import { type CompletedTxn, ProducerStateManager, type SequencedBatch } from "./producer-state.ts";
import { Segment, parseSegmentName, segmentName, type BatchPlacement, type RecoveryResult } from "./segment.ts";
import { TailCache, type TailCacheBudget } from "./tail-cache.ts";
import type { AbortedTxn } from "./txn-index.ts";

/**
 * A read allocator that hands out one buffer again and again (grown when a read needs more): for
 * walks that are done with a chunk before they read the next (recovery's epoch scan, the
 * producer-state replay), so they leave no garbage per MiB read.
 */
function reusedBuffer(): ReadAlloc {
  let scratch = Buffer.allocUnsafe(0);
  return (n) => (scratch.length >= n ? scratch : (scratch = Buffer.allocUnsafe(n))).subarray(0, n);
}

/** Bytes a producer-state replay reads at a time (whole batches; at least the first batch). */
const REPLAY_CHUNK_BYTES = 1 << 20;

/** How a partition log is opened. */
export interface PartitionLogOptions {
  readonly fs: FileSystem;
  readonly dir: string;
  readonly clock: Clock;
  readonly config: TopicConfig;
  /** Bytes of newest batches kept in memory for tailing reads. */
  readonly tailCacheBytes: number;
  /** The budget all partitions' tail caches share (log.tail.cache.total.bytes); none: unshared. */
  readonly tailCacheBudget?: TailCacheBudget;
  /** True after an unclean shutdown: segments past the recovery point are validated. */
  readonly recover: boolean;
  /** How long an idle producer's sequence state is kept (producer.id.expiration.ms). */
  readonly producerIdExpirationMs?: number;
}

/** Checks a batch's producer id and epoch against what the cluster issued (broker-supplied). */
export type ProducerIdCheck = (producerId: number, producerEpoch: number) => void;

/** What an append did. */
export interface AppendResult {
  readonly baseOffset: number;
  readonly lastOffset: number;
  /** The broker time stamped on the batches with LogAppendTime, else -1. */
  readonly logAppendTimeMs: number;
  readonly recordCount: number;
  readonly bytes: number;
  /** True when the batches were a producer's retry of ones already written (nothing appended). */
  readonly duplicate?: boolean;
}

/** Allocates the buffer a read from disk fills: at least `size` bytes. */
export type ReadAlloc = (size: number) => Buffer;

/** Whole batches read from the log. */
export interface ReadResult {
  /** Batches back to back; each chunk holds whole batches. */
  readonly chunks: Buffer[];
  readonly bytes: number;
  /** Offset after the last batch returned (the next offset to ask for). */
  readonly nextOffset: number;
}

/** What opening found. */
export interface OpenReport {
  readonly segments: number;
  readonly recovered: RecoveryResult[];
  readonly deletedSegments: number;
}

const CHECKPOINT = "partition.checkpoint";
/** Producer-state snapshots: `<20-digit log end offset>.snapshot`; the newest two are kept. */
const SNAPSHOT_SUFFIX = ".snapshot";
const SNAPSHOTS_KEPT = 2;
/** Kafka's producer.id.expiration.ms default. */
export const PRODUCER_ID_EXPIRATION_MS_DEFAULT = 86_400_000;
const EMPTY: ReadResult = Object.freeze({ chunks: [], bytes: 0, nextOffset: 0 });

/** One partition's log. */
export class PartitionLog {
  private segments: Segment[] = [];
  private _logStartOffset = 0;
  private nextOffset = 0;
  private recoveryPoint = 0;
  /** See `recoveryGap`. */
  private gapAt: number | null = null;
  private checkpointedRecoveryPoint = -1;
  private closed = false;
  private failure: Error | null = null;
  private config: TopicConfig;
  readonly openReport: OpenReport;

  // Durability state.
  private unflushedMessages = 0;
  private unflushedSinceMs = -1;
  private readonly dirty = new Set<Segment>();
  private syncing: Promise<void> | null = null;
  private waiters: Array<{ upTo: number; resolve: () => void; reject: (e: Error) => void }> = [];

  // Tail cache: the newest appended batches, as the slices that were appended.
  private readonly cache: TailCache;

  /** Idempotent producers' sequence state, rebuilt from the batches' own headers. */
  producers: ProducerStateManager;

  /**
   * Transactions ended by a marker appended since the producer state was built, whose marker the
   * high watermark has not passed yet (`highWatermarkMoved` drops the others), in marker order.
   */
  private unreplicatedTxns: Array<{ readonly firstOffset: number; readonly lastOffset: number }> = [];

  /** Counters for metrics and tests. */
  readonly stats = { appends: 0, cacheReads: 0, diskReads: 0, fsyncs: 0, duplicates: 0 };

  /** Batches being compacted hold this to keep segments from being removed under them. */
  cleaning = false;

  /** Where each leader epoch starts (replication's divergence checks). */
  private epochs!: LeaderEpochCache;

  /** The producer-state snapshot files in the folder (see snapshotFiles); null until first listed. */
  private snapshots: Array<[number, string]> | null = null;

  private constructor(private readonly opts: PartitionLogOptions) {
    this.config = opts.config;
    this.cache = new TailCache(opts.tailCacheBytes, opts.tailCacheBudget ?? null);
    this.producers = this.newProducerState();
    this.openReport = this.load();
    this.loadEpochs();
    this.rebuildProducerState();
  }

  /**
   * Loads the leader epoch cache, cut to the log, or rebuilds it from the batch headers.
   *
   * The checkpoint is written when an epoch is assigned, before the segment data it describes is
   * fsynced, so after an unclean shutdown it may describe records a power loss took back (or a
   * truncation that never reached the disk). Only entries below the recovery point describe
   * durable data: the rest are dropped and re-derived from the recovered batches. Truncation keeps
   * this true by lowering the durable recovery point before it drops entries (`truncateTo`).
   */
  private loadEpochs(): void {
    const loaded = LeaderEpochCache.load(this.fs, this.opts.dir);
    if (loaded) {
      this.epochs = loaded;
      if (this.opts.recover) {
        this.epochs.truncateFromEnd(this.recoveryPoint);
        for (const e of this.scanEpochs(Math.max(this.recoveryPoint, this._logStartOffset))) this.epochs.assign(e.epoch, e.startOffset);
      }
      this.epochs.truncateFromEnd(this.nextOffset);
      return;
    }
    this.epochs = LeaderEpochCache.empty(this.fs, this.opts.dir);
    const entries = this.scanEpochs(this._logStartOffset);
    // A log without epochs needs no file (a missing one means "scan the log", which is empty): a
    // new partition's first append writes it. An fsynced empty file per new partition cost a
    // topic of 1,000 partitions ~1,000 synchronous file creations and fsyncs (issue 20).
    if (entries.length > 0) this.epochs.reset(entries);
  }

  /** The epochs the batches from `from` to the log end carry: where each newer one starts. */
  private scanEpochs(from: number): EpochEntry[] {
    const entries: EpochEntry[] = [];
    let offset = from;
    const alloc = reusedBuffer(); // each chunk is walked before the next read
    while (offset < this.nextOffset) {
      const r = this.readFromSegments(offset, 1 << 20, this.nextOffset, alloc);
      if (r.bytes === 0) break;
      for (const chunk of r.chunks) {
        // Two fields a batch, read in place (no header object per batch).
        for (let pos = 0; pos + HEADER_SIZE <= chunk.length; pos += batchSizeAt(chunk, pos)) {
          const epoch = chunk.readInt32BE(pos + BATCH_OFFSETS.PARTITION_LEADER_EPOCH);
          const last = entries[entries.length - 1];
          if (epoch >= 0 && (last === undefined || epoch > last.epoch)) entries.push({ epoch, startOffset: batchBaseOffsetAt(chunk, pos) });
        }
      }
      offset = r.nextOffset;
    }
    return entries;
  }

  /** The newest leader epoch that wrote to this log, -1 when none. */
  get latestEpoch(): number {
    return this.epochs.latestEpoch;
  }

  /** Where `epoch` ends in this log (the largest epoch at or below it, and its end offset). */
  endOffsetForEpoch(epoch: number): { epoch: number; endOffset: number } {
    return this.epochs.endOffsetFor(epoch, this.nextOffset);
  }

  /** The leader epochs of this log, oldest first (for tests and tools). */
  get leaderEpochs(): readonly EpochEntry[] {
    return this.epochs.all();
  }

  /** Opens (creating if needed) the log in `opts.dir`. */
  static open(opts: PartitionLogOptions): PartitionLog {
    return new PartitionLog(opts);
  }

  get logStartOffset(): number {
    return this._logStartOffset;
  }

  /** Offset the next appended record will get. */
  get logEndOffset(): number {
    return this.nextOffset;
  }

  /** Offsets below this are fsynced. */
  get flushedOffset(): number {
    return this.recoveryPoint;
  }

  /** Bytes on disk over all segments. */
  get sizeBytes(): number {
    let n = 0;
    for (const s of this.segments) n += s.size;
    return n;
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  /**
   * After an unclean shutdown: the first offset past the recovery point where a segment ends
   * before the next one starts, or null. In a log that is not compacted that is a hole (cluster-
   * sim seeds 5137, 5480): a roll created the next segment, and a power loss took the old one's
   * unsynced tail but not the new file, so the log would end past offsets it lacks, and as a
   * follower its fetches from there would count as caught up.
   */
  get recoveryGap(): number | null {
    return this.gapAt;
  }

  /**
   * Cuts the log at `recoveryGap` (everything from the hole on goes, to be fetched again from
   * the leader), for a topic that is not compacted; a compacted topic's gaps are compaction's
   * and stay. Returns whether it cut. Call once the topic's config is known.
   */
  cutRecoveryGap(compacted: boolean): boolean {
    const at = this.gapAt;
    this.gapAt = null;
    if (at === null || compacted || at >= this.nextOffset) return false;
    this.truncateTo(at);
    return true;
  }

  /** Base offsets of the segments, oldest first (for tests and tools). */
  get segmentBaseOffsets(): number[] {
    return this.segments.map((s) => s.baseOffset);
  }

  get topicConfig(): Readonly<TopicConfig> {
    return this.config;
  }

  /** Applies a new topic configuration to later appends, rolls and retention. */
  updateConfig(config: TopicConfig): void {
    this.config = config;
  }

  private get fs(): FileSystem {
    return this.opts.fs;
  }

  private get active(): Segment {
    return this.segments[this.segments.length - 1]!;
  }

  // ---------------------------------------------------------------- open

  private load(): OpenReport {
    const { fs, dir } = this.opts;
    fs.mkdirp(dir);
    const bases: number[] = [];
    for (const name of fs.readdir(dir)) {
      if (name.endsWith(".cleaned") || name.endsWith(".tmp") || name.endsWith(".deleted")) {
        fs.rm(fs.join(dir, name));
        continue;
      }
      const base = parseSegmentName(name);
      if (base !== null) bases.push(base);
    }
    bases.sort((a, b) => a - b);
    const cp = this.readCheckpoint();
    const recovered: RecoveryResult[] = [];
    let deleted = 0;
    for (let i = 0; i < bases.length; i++) {
      const base = bases[i]!;
      const nextBase = i + 1 < bases.length ? bases[i + 1]! : Infinity;
      const mustRecover = this.opts.recover && nextBase > cp.recoveryPoint;
      const { segment, recovery } = Segment.open(fs, dir, base, this.config.indexIntervalBytes, mustRecover);
      this.segments.push(segment);
      if (recovery) recovered.push(recovery);
      if (segment.nextOffset > nextBase) {
        // The next segment starts at `nextBase`, so this one was truncated there (a follower's
        // truncation, then a roll) and the cut never reached the disk before a power loss: the
        // bytes past it are stale and must not be served to reads that start below `nextBase`.
        segment.truncateTo(nextBase);
        this.dirty.add(segment);
      }
      // A recovered segment that ends before the next one starts: its unsynced tail was lost
      // while a later segment's file survived (a roll shortly before a power loss), or
      // compaction emptied its end. Which one, only the topic's cleanup policy tells
      // (`recoveryGap`, `cutRecoveryGap`).
      if (mustRecover && this.gapAt === null && segment.nextOffset < nextBase && nextBase !== Infinity) this.gapAt = segment.nextOffset;
      if (recovery && recovery.truncatedBytes > 0 && i + 1 < bases.length) {
        // Everything after a corrupt batch is unreachable: offsets must stay contiguous.
        for (const later of bases.slice(i + 1)) {
          Segment.open(fs, dir, later, this.config.indexIntervalBytes, false).segment.delete();
          deleted++;
        }
        break;
      }
    }
    if (this.segments.length === 0) {
      this.segments.push(Segment.create(fs, dir, cp.logStartOffset, this.config.indexIntervalBytes));
    }
    this.nextOffset = this.active.nextOffset;
    this._logStartOffset = Math.min(Math.max(cp.logStartOffset, this.segments[0]!.baseOffset), this.nextOffset);
    this.recoveryPoint = this.opts.recover ? Math.min(cp.recoveryPoint, this.nextOffset) : this.nextOffset;
    if (this.recoveryPoint < this.nextOffset) {
      // What recovery kept past the recovery point may be in the page cache only (a killed
      // process): it is durable once fsynced, like an append of this process. Without this, a
      // flush would sync only the segments this process appended to and still move the recovery
      // point past the recovered ones; a power loss would then leave a hole (cluster-sim seed 2086).
      for (const s of this.segments) if (s.nextOffset > this.recoveryPoint) this.dirty.add(s);
      this.unflushedMessages = this.nextOffset - this.recoveryPoint;
      this.unflushedSinceMs = this.opts.clock.nowMs();
    }
    return { segments: this.segments.length, recovered, deletedSegments: deleted };
  }

  private readCheckpoint(): { logStartOffset: number; recoveryPoint: number } {
    const path = this.fs.join(this.opts.dir, CHECKPOINT);
    const fallback = { logStartOffset: 0, recoveryPoint: 0 };
    if (!this.fs.exists(path)) return fallback;
    try {
      const v = JSON.parse(Buffer.from(this.fs.readFile(path)).toString("utf8")) as Record<string, unknown>;
      if (v["version"] !== 1) return fallback;
      const ls = v["logStartOffset"];
      const rp = v["recoveryPoint"];
      if (!Number.isSafeInteger(ls) || !Number.isSafeInteger(rp) || (ls as number) < 0 || (rp as number) < 0) return fallback;
      return { logStartOffset: ls as number, recoveryPoint: rp as number };
    } catch {
      return fallback;
    }
  }

  private writeCheckpoint(): void {
    this.fs.writeFileAtomic(this.fs.join(this.opts.dir, CHECKPOINT), this.checkpointBody());
    this.checkpointedRecoveryPoint = this.recoveryPoint;
  }

  private checkpointBody(): Buffer {
    return Buffer.from(JSON.stringify({ version: 1, logStartOffset: this._logStartOffset, recoveryPoint: this.recoveryPoint }));
  }

  // ---------------------------------------------------------------- producer state

  private newProducerState(): ProducerStateManager {
    return new ProducerStateManager({ producerIdExpirationMs: this.opts.producerIdExpirationMs ?? PRODUCER_ID_EXPIRATION_MS_DEFAULT });
  }

  /**
   * Snapshot files, as [offset, name], oldest first: read from the folder once, then kept as this
   * log writes and removes them (nothing else touches them while it is open). A roll writes one,
   * and listing the folder each time (every segment's files) cost as much as the roll itself.
   */
  private snapshotFiles(): Array<[number, string]> {
    this.snapshots ??= this.fs
      .readdir(this.opts.dir)
      .filter((n) => /^\d{20}\.snapshot$/.test(n))
      .map((n): [number, string] => [Number(n.slice(0, 20)), n])
      .sort((a, b) => a[0] - b[0]);
    return this.snapshots;
  }

  /** Removes the snapshot file at `offset` (named `name`), from the folder and the list. */
  private removeSnapshot(offset: number, name: string): void {
    this.fs.rm(this.fs.join(this.opts.dir, name));
    const list = this.snapshotFiles();
    const i = list.findIndex(([o]) => o === offset);
    if (i >= 0) list.splice(i, 1);
  }

  /**
   * Rebuilds the producer state, and the aborted-transaction index of every segment from the
   * first whose `.txnindex` is not valid: the newest valid snapshot at or below both the log
   * end offset and that segment's base offset, then every batch after it (a header scan; a
   * control batch's one record is read for its marker). Snapshots past the log end (after a
   * truncation) are deleted.
   */
  private rebuildProducerState(): void {
    const nowMs = this.opts.clock.nowMs();
    // Markers replayed here count as replicated: a restarted leader publishes no last stable
    // offset before its high watermark reaches its epoch's start, and a follower after a
    // truncation learns its high watermark from the leader, whose last stable offset counts them.
    this.unreplicatedTxns = [];
    const firstInvalid = this.segments.findIndex((seg) => !seg.txnIndexValid);
    const bound = firstInvalid < 0 ? this.nextOffset : this.segments[firstInvalid]!.baseOffset;
    let from = this.segments[0]!.baseOffset;
    this.producers = this.newProducerState();
    for (const [offset, name] of [...this.snapshotFiles()].reverse()) {
      const path = this.fs.join(this.opts.dir, name);
      if (offset > this.nextOffset) {
        this.removeSnapshot(offset, name);
        continue;
      }
      if (offset > bound) continue;
      const loaded = ProducerStateManager.loadSnapshot(this.fs.readFile(path), {
        producerIdExpirationMs: this.opts.producerIdExpirationMs ?? PRODUCER_ID_EXPIRATION_MS_DEFAULT,
      });
      if (loaded && loaded.offset === offset) {
        this.producers = loaded.state;
        from = offset;
        break;
      }
    }
    this.segments.forEach((seg, i) => {
      if (firstInvalid >= 0 && i >= firstInvalid) seg.resetTxnIndex();
    });
    this.segments.forEach((seg, i) => {
      if (seg.nextOffset > from) this.replaySegment(seg, from, nowMs, firstInvalid >= 0 && i >= firstInvalid);
    });
  }

  /** Replays the batches of `seg` at or after `from` into the producer state (see rebuildProducerState). */
  private replaySegment(seg: Segment, from: number, nowMs: number, indexAborts: boolean): void {
    // Whole batches, up to REPLAY_CHUNK_BYTES a read into one reused buffer: a segment of small
    // batches costs a read per chunk, not a read per batch.
    const alloc = reusedBuffer();
    // One header for every batch: the producer state copies what it keeps.
    let h: BatchHeader | null = null;
    for (let pos = seg.positionOf(from); pos < seg.size; ) {
      const chunk = seg.read(pos, REPLAY_CHUNK_BYTES, alloc);
      if (chunk.length === 0) break;
      for (let at = 0; at + HEADER_SIZE <= chunk.length; ) {
        h = h === null ? readBatchHeader(chunk, at) : readBatchHeaderInto(h, chunk, at);
        if (h.baseOffset >= from) {
          if (!h.isControl) this.producers.replay(h, nowMs);
          else {
            const marker = readControlRecord(chunk, at);
            const done = marker === null ? null : this.producers.replayMarker(h, marker, nowMs);
            if (indexAborts) this.indexAbort(seg, done);
          }
        }
        at += h.size;
      }
      pos += chunk.length;
    }
  }

  /** Adds an aborted transaction to the index of `seg`, the segment that holds its marker. */
  private indexAbort(seg: Segment, done: CompletedTxn | null): void {
    if (done === null || !done.aborted) return;
    const lso = this.producers.firstUnstableOffset ?? done.lastOffset + 1;
    seg.addAbortedTxn({ producerId: done.producerId, firstOffset: done.firstOffset, lastOffset: done.lastOffset, lastStableOffset: lso });
  }

  /** The first offset of the oldest open transaction; null when none is open (the LSO is then the high watermark). */
  get firstUnstableOffset(): number | null {
    return this.producers.firstUnstableOffset;
  }

  /**
   * The first offset not yet stable under the high watermark `hw`: the oldest open
   * transaction's, or that of a transaction whose marker is at or past `hw` (Kafka's unreplicated
   * transactions: until the marker is on every in-sync replica, a new leader may not have it and
   * still see the transaction open); null when none (the last stable offset is then `hw`).
   */
  firstUnstableOffsetAt(hw: number): number | null {
    let min = this.producers.firstUnstableOffset;
    for (const t of this.unreplicatedTxns) if (t.lastOffset >= hw && (min === null || t.firstOffset < min)) min = t.firstOffset;
    return min;
  }

  /** The partition's high watermark moved (forward) to `hw`: transactions whose marker is below it are stable. */
  highWatermarkMoved(hw: number): void {
    let n = 0;
    while (n < this.unreplicatedTxns.length && this.unreplicatedTxns[n]!.lastOffset < hw) n++;
    if (n > 0) this.unreplicatedTxns.splice(0, n);
  }

  /**
   * The aborted transactions that overlap [fromOffset, upToOffset): those aborted at or after
   * `fromOffset` whose first offset is below `upToOffset` (what a READ_COMMITTED fetch returning
   * that range lists), by marker offset. Searches the segments from the one holding `fromOffset`
   * and stops at the first that proves no later abort can overlap.
   */
  abortedTransactions(fromOffset: number, upToOffset: number): { producerId: number; firstOffset: number }[] {
    return this.abortedTxnEntries(fromOffset, upToOffset).map((e) => ({ producerId: e.producerId, firstOffset: e.firstOffset }));
  }

  /** `abortedTransactions` with the whole index entries (marker offsets too): for the cleaner and tools. */
  abortedTxnEntries(fromOffset: number, upToOffset: number): AbortedTxn[] {
    const found: AbortedTxn[] = [];
    if (upToOffset <= fromOffset) return found;
    for (let i = this.segmentIndexFor(fromOffset); i < this.segments.length; i++) {
      if (this.segments[i]!.collectAbortedTxns(fromOffset, upToOffset, found)) break;
    }
    return found;
  }

  /** Writes a producer-state snapshot as of the log end offset and prunes old ones. */
  private writeProducerSnapshot(): void {
    const offset = this.nextOffset;
    const name = `${segmentName(offset)}${SNAPSHOT_SUFFIX}`;
    this.fs.writeFileAtomic(this.fs.join(this.opts.dir, name), this.producers.snapshot(offset));
    this.snapshotWritten(offset, name);
  }

  /** Keeps a snapshot just written in the list and prunes the oldest past SNAPSHOTS_KEPT. */
  private snapshotWritten(offset: number, name: string): void {
    const files = this.snapshotFiles();
    const at = files.findIndex(([o]) => o >= offset);
    if (at < 0) files.push([offset, name]);
    else if (files[at]![0] !== offset) files.splice(at, 0, [offset, name]);
    while (files.length > SNAPSHOTS_KEPT) {
      const [o, n] = files[0]!;
      this.removeSnapshot(o, n);
    }
  }

  /** Forgets producers idle for longer than producer.id.expiration.ms. */
  expireProducers(nowMs: number): number {
    return this.producers.removeExpired(nowMs);
  }

  // ---------------------------------------------------------------- append

  /**
   * Validates and appends one or more batches (back to back in `buf`) as the leader: offsets are
   * assigned from the log end offset by rewriting each batch's baseOffset and
   * partitionLeaderEpoch in `buf` itself. Throws a RillError, with nothing changed, on bad input.
   * `checks` says how deeply each batch is validated first (validateProducedBatch): the producer's
   * batches as `produce.validation` says, the broker's own (the default) by their structure.
   */
  append(buf: Buffer, leaderEpoch = 0, checkProducer?: ProducerIdCheck, checks: ProduceChecks = TRUSTED_CHECKS): AppendResult {
    this.checkWritable();
    const nowMs = this.opts.clock.nowMs();
    const { placements, records, sequenced } = this.plan(buf, this.nextOffset, checkProducer, checks);
    const duplicate = this.checkSequences(sequenced);
    if (duplicate) return duplicate;
    const stamp = this.config.timestampType === "LogAppendTime";
    for (const p of placements) {
      setBaseOffset(buf, p.at, p.baseOffset);
      setPartitionLeaderEpoch(buf, p.at, leaderEpoch);
      if (stamp) setLogAppendTime(buf, p.at, nowMs);
    }
    const final = stamp ? placements.map((p) => ({ ...p, maxTimestamp: nowMs })) : placements;
    this.epochs.assign(leaderEpoch, placements[0]!.baseOffset);
    this.write(buf, final, records, nowMs);
    this.recordSequences(buf, sequenced, final, nowMs);
    return {
      baseOffset: placements[0]!.baseOffset,
      lastOffset: placements[placements.length - 1]!.lastOffset,
      logAppendTimeMs: stamp ? nowMs : -1,
      recordCount: records,
      bytes: buf.length,
    };
  }

  /**
   * Appends batches that already carry their offsets (a follower copying its leader). Each batch
   * must start at or after the log end offset. Throws, with nothing changed, on bad input.
   */
  appendWithOffsets(buf: Buffer): AppendResult {
    this.checkWritable();
    const nowMs = this.opts.clock.nowMs();
    const { placements, records, sequenced } = this.plan(buf, -1);
    for (const p of placements) this.epochs.assign(readBatchHeader(buf, p.at).partitionLeaderEpoch, p.baseOffset);
    // A follower's batches are slices of large replication responses: caching them would keep
    // whole responses alive. Its reads come from the segment files (the OS page cache).
    this.write(buf, placements, records, nowMs, false);
    this.recordSequences(buf, sequenced, placements, nowMs);
    return {
      baseOffset: placements[0]!.baseOffset,
      lastOffset: placements[placements.length - 1]!.lastOffset,
      logAppendTimeMs: -1,
      recordCount: records,
      bytes: buf.length,
    };
  }

  /**
   * Validates every batch in `buf` and works out where each goes. With `assignFrom` >= 0 offsets
   * are assigned from it; otherwise the batches' own offsets must follow the log end.
   */
  private plan(
    buf: Buffer,
    assignFrom: number,
    checkProducer?: ProducerIdCheck,
    checks: ProduceChecks = TRUSTED_CHECKS,
  ): { placements: BatchPlacement[]; records: number; sequenced: Array<SequencedBatch | null> } {
    if (buf.length === 0) throw rillError("INVALID_REQUEST", "record_batch: no batch in an empty buffer");
    const placements: BatchPlacement[] = [];
    const sequenced: Array<SequencedBatch | null> = [];
    let records = 0;
    let next = assignFrom >= 0 ? assignFrom : this.nextOffset;
    for (let pos = 0; pos < buf.length; ) {
      if (buf.length - pos < HEADER_SIZE) {
        throw rillError(
          "BATCH_LENGTH_MISMATCH",
          `record_batch: ${buf.length - pos} trailing bytes after the last batch are shorter than a batch header (${HEADER_SIZE})`,
        );
      }
      const size = buf.readInt32BE(pos + BATCH_OFFSETS.BATCH_LENGTH) + 12;
      if (size < HEADER_SIZE || pos + size > buf.length) {
        throw rillError(
          "BATCH_LENGTH_MISMATCH",
          `record_batch: batchLength ${size - 12} at byte ${pos} disagrees with the ${buf.length - pos} bytes given`,
        );
      }
      if (size > this.config.maxMessageBytes) {
        throw rillError(
          "MESSAGE_TOO_LARGE",
          `record_batch: batch of ${size} bytes at byte ${pos} exceeds max.message.bytes ${this.config.maxMessageBytes}`,
        );
      }
      const h = this.validate(buf, pos, pos + size, assignFrom >= 0 ? checks : null);
      const base = assignFrom >= 0 ? next : h.baseOffset;
      if (base < next) {
        throw rillError("INVALID_RECORD", `record_batch: baseOffset ${base} is below the log end offset ${next}`);
      }
      placements.push({ at: pos, baseOffset: base, lastOffset: base + h.lastOffsetDelta, maxTimestamp: h.maxTimestamp });
      if (h.producerId >= 0 && !h.isControl) {
        checkProducer?.(h.producerId, h.producerEpoch);
        sequenced.push({
          producerId: h.producerId,
          producerEpoch: h.producerEpoch,
          baseSequence: h.baseSequence,
          lastSequence: incrementSequence(h.baseSequence, h.lastOffsetDelta),
          maxTimestamp: h.maxTimestamp,
          isTransactional: h.isTransactional,
        });
      } else sequenced.push(null);
      records += h.recordCount;
      next = base + h.lastOffsetDelta + 1;
      pos += size;
    }
    return { placements, records, sequenced };
  }

  /**
   * Validates the batch in `buf[pos, end)`: a produced one (`checks` given) as validateProducedBatch,
   * a replicated one as validateBatch. The error names the batch's position in `buf`.
   */
  private validate(buf: Buffer, pos: number, end: number, checks: ProduceChecks | null): BatchHeader {
    try {
      return checks === null
        ? validateBatch(buf, pos, end)
        : validateProducedBatch(buf, pos, end, checks, checks.validation === "full" && isCompacted(this.config));
    } catch (e: unknown) {
      if (e instanceof RillError) throw new RillError(e.kind, `record_batch: batch at byte ${pos}: ${e.message}`);
      throw e;
    }
  }

  /**
   * Checks idempotent batches against the producer state without changing it. Returns the
   * original offsets when every batch is a retry of one already written (the retry is answered,
   * not appended); throws OUT_OF_ORDER_SEQUENCE_NUMBER / INVALID_PRODUCER_EPOCH otherwise.
   */
  private checkSequences(sequenced: Array<SequencedBatch | null>): AppendResult | null {
    const batches = sequenced.filter((b): b is SequencedBatch => b !== null);
    if (batches.length === 0) return null;
    const checks = this.producers.checkAll(batches, this.opts.dir);
    const dups = checks.filter((c) => c.kind === "duplicate");
    if (dups.length === 0) return null;
    if (dups.length !== sequenced.length) {
      throw rillError("OUT_OF_ORDER_SEQUENCE_NUMBER", "record_batch: a request mixes batches already written with new ones");
    }
    const first = dups[0]!;
    const last = dups[dups.length - 1]!;
    this.stats.duplicates++;
    return { baseOffset: first.baseOffset, lastOffset: last.lastOffset, logAppendTimeMs: -1, recordCount: 0, bytes: 0, duplicate: true };
  }

  /**
   * Records the appended batches in the producer state, in log order: idempotent and
   * transactional batches by their sequences, control batches (a follower's copies of markers)
   * by their marker, an ABORT going into the active segment's aborted-transaction index.
   */
  private recordSequences(buf: Buffer, sequenced: Array<SequencedBatch | null>, placements: BatchPlacement[], nowMs: number): void {
    for (let i = 0; i < placements.length; i++) {
      const b = sequenced[i];
      const p = placements[i]!;
      if (b)
        this.producers.record(
          {
            producerId: b.producerId,
            producerEpoch: b.producerEpoch,
            baseSequence: b.baseSequence,
            lastSequence: b.lastSequence,
            baseOffset: p.baseOffset,
            lastOffset: p.lastOffset,
            maxTimestamp: b.maxTimestamp,
            isTransactional: b.isTransactional === true,
          },
          nowMs,
        );
      else if ((buf.readInt16BE(p.at + ATTRIBUTES_OFFSET) & CONTROL_MASK) !== 0) {
        const h = readBatchHeader(buf, p.at);
        const marker = readControlRecord(buf, p.at);
        const done = marker === null ? null : this.producers.replayMarker({ ...h, baseOffset: p.baseOffset }, marker, nowMs);
        if (done !== null) this.unreplicatedTxns.push({ firstOffset: done.firstOffset, lastOffset: done.lastOffset });
        this.indexAbort(this.active, done);
      }
    }
  }

  /**
   * Appends a transaction marker as the leader (the transaction coordinator's WriteTxnMarkers):
   * a control batch for the producer, ending its open transaction here. Throws, with nothing
   * changed, INVALID_PRODUCER_EPOCH when the marker's producer epoch is older than the
   * producer's, TRANSACTION_COORDINATOR_FENCED when its coordinator epoch is older than that of
   * the producer's last marker, INVALID_RECORD for ids out of range.
   */
  appendControl(marker: TxnMarker, leaderEpoch: number, nowMs: number = this.opts.clock.nowMs()): AppendResult {
    this.checkWritable();
    this.producers.checkMarker(marker, this.opts.dir);
    const buf = encodeControlBatch({ ...marker, timestampMs: nowMs });
    const baseOffset = this.nextOffset;
    setBaseOffset(buf, 0, baseOffset);
    setPartitionLeaderEpoch(buf, 0, leaderEpoch);
    const placements: BatchPlacement[] = [{ at: 0, baseOffset, lastOffset: baseOffset, maxTimestamp: nowMs }];
    this.epochs.assign(leaderEpoch, baseOffset);
    this.write(buf, placements, 1, nowMs);
    this.recordSequences(buf, [null], placements, nowMs);
    return { baseOffset, lastOffset: baseOffset, logAppendTimeMs: -1, recordCount: 1, bytes: buf.length };
  }

  private write(buf: Buffer, placements: BatchPlacement[], records: number, nowMs: number, cache = true): void {
    const last = placements[placements.length - 1]!;
    this.maybeRoll(buf.length, last.lastOffset, nowMs);
    const seg = this.active;
    seg.append(buf, placements, nowMs);
    this.nextOffset = last.lastOffset + 1;
    if (cache) {
      this.cache.pushAppend(buf, placements);
    } else {
      this.cache.clear(); // the cache must stay contiguous up to the log end
    }
    this.dirty.add(seg);
    this.stats.appends++;
    if (this.unflushedMessages === 0) this.unflushedSinceMs = nowMs;
    this.unflushedMessages += records;
    if (this.unflushedMessages >= this.config.flushMessages) void this.flush().catch(() => {});
  }

  private maybeRoll(bytes: number, lastOffset: number, nowMs: number): void {
    const seg = this.active;
    if (seg.isEmpty) return;
    const full = seg.size + bytes > this.config.segmentBytes;
    const old = seg.firstAppendMs >= 0 && nowMs - seg.firstAppendMs >= this.config.segmentMs;
    const wide = lastOffset - seg.baseOffset > 0xfffffffe;
    if (full || old || wide) this.roll();
  }

  /** Closes the active segment to appends and starts a new one at the log end offset. */
  roll(): void {
    const seg = this.active;
    if (seg.isEmpty) return;
    seg.writeIndexes();
    this.writeProducerSnapshot();
    this.segments.push(Segment.create(this.fs, this.opts.dir, this.nextOffset, this.config.indexIntervalBytes));
    // The rolled segment is fsynced in the background, as Kafka does.
    if (this.dirty.size > 0) void this.flush().catch(() => {});
  }

  private checkWritable(): void {
    if (this.closed) throw rillError("LOG_CLOSED", `log ${this.opts.dir} is closed`);
    if (this.failure) throw rillError("KAFKA_STORAGE_ERROR", `log ${this.opts.dir} failed: ${this.failure.message}`);
  }

  // ---------------------------------------------------------------- durability

  /**
   * Resolves once every append made before the call is on disk. Calls that arrive while an fsync
   * runs share the next one (group commit).
   */
  flush(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    const upTo = this.nextOffset;
    if (this.recoveryPoint >= upTo) return Promise.resolve();
    const p = new Promise<void>((resolve, reject) => this.waiters.push({ upTo, resolve, reject }));
    this.kickSync();
    return p;
  }

  private kickSync(): void {
    if (this.syncing) return;
    const target = this.nextOffset;
    const segs = [...this.dirty];
    this.dirty.clear();
    this.unflushedMessages = 0;
    this.unflushedSinceMs = -1;
    this.stats.fsyncs++;
    this.syncing = Promise.all([
      Promise.resolve().then(() => this.epochs.sync()),
      ...segs.map((s) => Promise.resolve().then(() => s.sync())),
    ]).then(
      () => this.synced(target),
      (e: unknown) => this.syncFailed(e instanceof Error ? e : new Error(String(e))),
    );
  }

  private synced(target: number): void {
    this.syncing = null;
    if (target > this.recoveryPoint) this.recoveryPoint = target;
    const still: typeof this.waiters = [];
    for (const w of this.waiters) w.upTo <= this.recoveryPoint ? w.resolve() : still.push(w);
    this.waiters = still;
    if (
      this.segments.length > 1 &&
      this.recoveryPoint >= this.active.baseOffset &&
      this.checkpointedRecoveryPoint < this.active.baseOffset &&
      !this.closed
    ) {
      this.writeCheckpoint();
    }
    if (this.waiters.length === 0) return;
    if (this.dirty.size > 0) {
      this.kickSync();
      return;
    }
    // Nothing left to sync: every waiter asked for offsets that are durable or no longer exist.
    for (const w of this.waiters) w.resolve();
    this.waiters = [];
  }

  private syncFailed(e: Error): void {
    this.syncing = null;
    this.failure = e;
    for (const w of this.waiters) w.reject(e);
    this.waiters = [];
  }

  /** Starts an fsync if the oldest unflushed append is older than flush.ms. */
  maybeFlush(nowMs: number): Promise<void> | null {
    if (this.unflushedMessages === 0 || this.unflushedSinceMs < 0) return null;
    if (nowMs - this.unflushedSinceMs < this.config.flushMs) return null;
    return this.flush();
  }

  // ---------------------------------------------------------------- read

  /**
   * Reads whole batches starting with the one that holds `offset`, up to `maxBytes` (but at
   * least one batch), stopping before any batch that starts at or after `maxOffset` (the high
   * watermark, for consumers). The first batch may start before `offset`: readers skip records
   * below the offset they asked for, as Kafka's do.
   *
   * A read from disk fills one buffer from `alloc` (a fresh one by default; a caller that
   * recycles buffers passes its own and must not recycle one while the result is in use); a
   * read from the tail cache returns the cached slices and allocates nothing.
   */
  read(offset: number, maxBytes: number, maxOffset: number = this.nextOffset, alloc?: ReadAlloc): ReadResult {
    if (this.closed) throw rillError("LOG_CLOSED", `log ${this.opts.dir} is closed`);
    if (!Number.isSafeInteger(offset) || offset < this._logStartOffset || offset > this.nextOffset) {
      throw rillError("OFFSET_OUT_OF_RANGE", `offset: ${offset} is outside the log's range [${this._logStartOffset}, ${this.nextOffset}]`);
    }
    const limit = Math.min(maxOffset, this.nextOffset);
    if (offset >= limit) return { ...EMPTY, nextOffset: offset };
    const cached = this.cache.read(offset, maxBytes, limit);
    if (cached) {
      this.stats.cacheReads++;
      return cached;
    }
    this.stats.diskReads++;
    return this.readFromSegments(offset, maxBytes, limit, alloc);
  }

  /**
   * Whether there are batches to read at `offset` below `maxOffset` (and the log end): what
   * `readSize` answers non-zero for, short of reading a header. Nothing is read.
   */
  hasDataAt(offset: number, maxOffset: number = this.nextOffset): boolean {
    if (this.closed || !Number.isSafeInteger(offset) || offset < this._logStartOffset) return false;
    return offset < Math.min(maxOffset, this.nextOffset);
  }

  /**
   * The most bytes `read(offset, maxBytes, maxOffset)` would return now, from the cache's entries
   * or the first batch's header, without reading any data: what a fetch reserves memory for
   * before it reads. 0 when there is nothing to read; a bad offset is left to `read` to report.
   */
  readSize(offset: number, maxBytes: number, maxOffset: number = this.nextOffset): number {
    if (!this.hasDataAt(offset, maxOffset)) return 0;
    const limit = Math.min(maxOffset, this.nextOffset);
    const cached = this.cache.readSize(offset, maxBytes, limit);
    if (cached !== null) return cached;
    for (let i = this.segmentIndexFor(offset); i < this.segments.length; i++) {
      const seg = this.segments[i]!;
      const pos = seg.positionOf(offset);
      if (pos < seg.size) return seg.readSize(pos, maxBytes);
    }
    return 0;
  }

  private readFromSegments(offset: number, maxBytes: number, limit: number, alloc?: ReadAlloc): ReadResult {
    for (let i = this.segmentIndexFor(offset); i < this.segments.length; i++) {
      const seg = this.segments[i]!;
      const pos = seg.positionOf(offset);
      if (pos >= seg.size) continue;
      const buf = trimAtOffset(seg.read(pos, maxBytes, alloc), limit);
      if (buf.length === 0) return { ...EMPTY, nextOffset: offset };
      const lastBatch = lastBatchEnd(buf);
      return { chunks: [buf], bytes: buf.length, nextOffset: lastBatch };
    }
    return { ...EMPTY, nextOffset: offset };
  }

  /** Index of the segment whose range holds `offset` (the last with baseOffset <= offset). */
  private segmentIndexFor(offset: number): number {
    let lo = 0;
    let hi = this.segments.length - 1;
    let ans = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.segments[mid]!.baseOffset <= offset) {
        ans = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return ans;
  }

  /**
   * The first record whose timestamp is >= `ts`: its offset and timestamp, or null if every
   * record is older (ListOffsets by timestamp). Decodes one batch at most.
   */
  offsetForTimestamp(ts: number): { offset: number; timestampMs: number } | null {
    for (const seg of this.segments) {
      const hit = seg.firstBatchAtOrAfter(ts);
      if (!hit) continue;
      const batch = seg.read(hit.position, hit.header.size);
      const logAppend = (hit.header.attributes & 0x08) !== 0;
      for (const r of decodeRecords(batch)) {
        const t = logAppend ? hit.header.maxTimestamp : r.timestampMs;
        if (t >= ts && r.offset >= this._logStartOffset) return { offset: r.offset, timestampMs: t };
      }
    }
    return null;
  }

  // ---------------------------------------------------------------- truncation and deletion

  /**
   * Removes every batch that holds an offset >= `offset` (replication truncates a divergent
   * tail). Batches are never split, so the new log end may be below `offset` if it fell inside a
   * batch. Returns the new log end offset.
   */
  truncateTo(offset: number): number {
    this.checkWritable();
    if (offset >= this.nextOffset) return this.nextOffset;
    assert(offset >= 0, "truncate to a negative offset");
    while (this.segments.length > 1 && this.active.baseOffset >= offset) this.dropSegment(this.segments.pop()!);
    if (this.active.baseOffset >= offset) {
      this.dropSegment(this.segments.pop()!);
      this.segments.push(Segment.create(this.fs, this.opts.dir, offset, this.config.indexIntervalBytes));
      this.nextOffset = offset;
    } else {
      this.nextOffset = this.active.truncateTo(offset);
      // The cut is durable only once fsynced: the next flush must sync this segment before the
      // recovery point moves past `offset`, or a power loss brings the cut records back beside
      // the new ones (cluster-sim seed 2075).
      this.dirty.add(this.active);
    }
    this.cache.truncateFrom(this.nextOffset);
    // Flushes waiting for removed offsets now wait only for what remains.
    for (const w of this.waiters) if (w.upTo > this.nextOffset) w.upTo = this.nextOffset;
    if (this._logStartOffset > this.nextOffset) this._logStartOffset = this.nextOffset;
    if (this.recoveryPoint > this.nextOffset) this.recoveryPoint = this.nextOffset;
    // The lower recovery point is durable before the epoch entries go: if the truncated bytes
    // come back after a power loss, recovery re-derives their epochs (see loadEpochs).
    this.writeCheckpoint();
    this.epochs.truncateFromEnd(this.nextOffset);
    this.rebuildProducerState();
    return this.nextOffset;
  }

  /**
   * Empties the log and restarts it at `offset` (a follower whose leader's log now starts after
   * this log's end: the records in between were deleted by retention on the leader). Every
   * segment is removed; the next append must start at `offset`.
   */
  truncateFullyAndStartAt(offset: number): void {
    this.checkWritable();
    assert(Number.isSafeInteger(offset) && offset >= 0, "restart at a negative offset");
    while (this.segments.length > 0) this.dropSegment(this.segments.pop()!);
    this.segments.push(Segment.create(this.fs, this.opts.dir, offset, this.config.indexIntervalBytes));
    this.nextOffset = offset;
    this._logStartOffset = offset;
    this.recoveryPoint = offset;
    this.cache.clear();
    for (const w of this.waiters) if (w.upTo > offset) w.upTo = offset;
    this.writeCheckpoint();
    this.epochs.reset([]);
    this.rebuildProducerState();
  }

  /**
   * Moves the log start offset forward (delete-records): offsets below it become unreadable and
   * whole segments below it are deleted. Throws OFFSET_OUT_OF_RANGE past the log end.
   */
  advanceLogStartOffset(offset: number): void {
    this.checkWritable();
    if (!Number.isSafeInteger(offset) || offset > this.nextOffset || offset < 0) {
      throw rillError("OFFSET_OUT_OF_RANGE", `log start offset ${offset} is outside [0, ${this.nextOffset}]`);
    }
    if (offset <= this._logStartOffset) return;
    this._logStartOffset = offset;
    this.deleteSegmentsWhile((_seg, next) => next !== undefined && next.baseOffset <= offset);
    this.writeCheckpoint();
  }

  /** Deletes old segments by retention.ms and retention.bytes. Returns segments deleted. */
  applyRetention(nowMs: number): number {
    if (this.closed || !isDeleting(this.config) || this.cleaning) return 0;
    const { retentionMs, retentionBytes } = this.config;
    let deleted = 0;
    if (retentionMs >= 0) {
      const expired = (s: Segment): boolean => !s.isEmpty && s.maxTimestamp >= 0 && s.maxTimestamp < nowMs - retentionMs;
      if (this.segments.every(expired)) this.roll();
      deleted += this.deleteSegmentsWhile((seg, next) => next !== undefined && expired(seg));
    }
    if (retentionBytes >= 0) {
      let size = this.sizeBytes;
      deleted += this.deleteSegmentsWhile((seg, next) => {
        if (next === undefined || size - seg.size < retentionBytes) return false;
        size -= seg.size;
        return true;
      });
    }
    if (deleted > 0) this.writeCheckpoint();
    return deleted;
  }

  /** Deletes segments from the oldest while `pred` holds; the active segment always stays. */
  private deleteSegmentsWhile(pred: (seg: Segment, next: Segment | undefined) => boolean): number {
    let n = 0;
    while (this.segments.length > 1 && pred(this.segments[0]!, this.segments[1])) {
      this.dropSegment(this.segments.shift()!);
      n++;
    }
    if (n > 0) {
      this._logStartOffset = Math.max(this._logStartOffset, this.segments[0]!.baseOffset);
      this.cache.dropBelow(this._logStartOffset);
    }
    return n;
  }

  private dropSegment(seg: Segment): void {
    this.dirty.delete(seg);
    seg.delete();
  }

  // ---------------------------------------------------------------- compaction hooks

  /** Segments the cleaner may rewrite: every one but the active one. */
  inactiveSegments(): readonly Segment[] {
    return this.segments.slice(0, -1);
  }

  /**
   * Replaces segment `old` with the compacted bytes `cleaned` (whole batches, same offsets or a
   * subset). Crash-safe: the new file is written beside the old one, synced, its stale indexes
   * removed, and renamed over it. Returns false if `old` is no longer part of the log.
   */
  async replaceSegment(old: Segment, cleaned: Buffer): Promise<boolean> {
    const i = this.segments.indexOf(old);
    if (i < 0 || i === this.segments.length - 1) return false;
    const paths = Segment.paths(this.fs, this.opts.dir, old.baseOffset);
    const tmp = `${paths.log}.cleaned`;
    const f = this.fs.open(tmp, true);
    f.truncate(0);
    if (cleaned.length > 0) f.write(cleaned, 0);
    await f.sync();
    f.close();
    // Appends and retention may have run while we awaited: check again.
    const j = this.segments.indexOf(old);
    if (j < 0 || j === this.segments.length - 1) {
      this.fs.rm(tmp);
      return false;
    }
    this.dirty.delete(old);
    old.close();
    old.dropIndexFiles();
    this.fs.rename(tmp, paths.log);
    const { segment } = Segment.open(this.fs, this.opts.dir, old.baseOffset, this.config.indexIntervalBytes, false);
    segment.resetTxnIndex(old.abortedTxns);
    segment.writeIndexes();
    this.segments[j] = segment;
    this.cache.dropBelow(this.active.baseOffset);
    return true;
  }

  // ---------------------------------------------------------------- lifecycle

  /**
   * Flushes, writes indexes, the checkpoint and a producer snapshot, and closes every file. The
   * files are written and fsynced at once, the fsyncs off the event loop: a broker closing 1,000
   * partitions (LogManager.close runs many of these together) took ~20 s fsyncing some 5,000 files
   * one after another on the loop.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    if (!this.failure) await this.flush();
    while (this.syncing) await this.syncing;
    this.closed = true;
    const writes: Promise<void>[] = [];
    if (!this.failure) writes.push(this.epochs.sync());
    for (const s of this.segments) writes.push(s.writeIndexesAsync());
    writes.push(
      writeFileAtomicAsync(this.fs, this.fs.join(this.opts.dir, CHECKPOINT), this.checkpointBody()).then(() => {
        this.checkpointedRecoveryPoint = this.recoveryPoint;
      }),
    );
    if (this.producers.producerCount > 0) {
      const offset = this.nextOffset;
      const name = `${segmentName(offset)}${SNAPSHOT_SUFFIX}`;
      writes.push(
        writeFileAtomicAsync(this.fs, this.fs.join(this.opts.dir, name), this.producers.snapshot(offset)).then(() =>
          this.snapshotWritten(offset, name),
        ),
      );
    }
    try {
      await settleAll(writes);
    } finally {
      for (const s of this.segments) s.close();
      this.cache.clear();
    }
  }

  /** Closes without flushing and removes the partition's folder. */
  delete(): void {
    this.closed = true;
    for (const s of this.segments) s.close();
    this.segments = [];
    this.cache.clear();
    this.fs.rm(this.opts.dir);
  }
}

/** The prefix of `buf` made of batches whose baseOffset is < `limit`. */
function trimAtOffset(buf: Buffer, limit: number): Buffer {
  // Every read walks its batches here and in lastBatchEnd: two fields each, no header object.
  let pos = 0;
  while (pos + HEADER_SIZE <= buf.length) {
    if (batchBaseOffsetAt(buf, pos) >= limit) break;
    pos += batchSizeAt(buf, pos);
  }
  return pos === buf.length ? buf : buf.subarray(0, pos);
}

/** Offset after the last batch in `buf`. */
function lastBatchEnd(buf: Buffer): number {
  let pos = 0;
  let next = 0;
  while (pos + HEADER_SIZE <= buf.length) {
    next = batchLastOffsetAt(buf, pos) + 1;
    pos += batchSizeAt(buf, pos);
  }
  return next;
}
