/**
 * Log compaction (`cleanup.policy=compact`): keeps the latest record of every key, drops
 * tombstones (null values) once they are older than `delete.retention.ms`, and keeps every
 * surviving record at its original offset (gaps are normal in a compacted log).
 *
 * It works on inactive segments only, one segment at a time, and hands control back through
 * `pause()` between chunks, so appends to the active segment never wait for it. Each cleaned
 * segment replaces the old one atomically (`PartitionLog.replaceSegment`).
 *
 * Batches whose records all survive are copied byte for byte; a batch that loses some is
 * re-encoded with the same base offset, codec, producer fields and record offsets; a batch that
 * loses all is dropped.
 *
 * Transactions (Kafka's rules): the cleaner stops before the first unstable offset (an open
 * transaction may still abort); records of aborted transactions (the `.txnindex` entries) are
 * dropped and never count as a key's latest value; a control batch is not a keyed record: a
 * marker stays while records of its transaction remain in the log before it, and once none
 * do, until `delete.retention.ms` has passed (as a tombstone), so a reader that was behind
 * still sees its transaction end.
 */
import { isCompacted } from "../config/schema.ts";
import type { PartitionLog } from "./partition-log.ts";
import { type BatchHeader, filterBatch, readBatchHeader, records, HEADER_SIZE, type RecordCursor } from "../protocol/record-batch.ts";
import type { Segment } from "./segment.ts";
import type { AbortedTxn } from "./txn-index.ts";

/** Hands control back to the event loop (or to a simulator) between chunks of work. */
export type Pause = () => Promise<void>;

/** What one compaction pass did. */
export interface CleanResult {
  readonly segments: number;
  readonly bytesBefore: number;
  readonly bytesAfter: number;
  readonly recordsRemoved: number;
}

/** Bytes processed between pauses. */
const CHUNK_BYTES = 1 << 20;

/** Per-log state the cleaner keeps between passes. */
const firstDirty = new WeakMap<PartitionLog, number>();

/**
 * Compacts `log` if it is compacted and dirty enough (or `force`). Returns null when there was
 * nothing to do.
 */
export async function compactLog(log: PartitionLog, nowMs: number, pause: Pause, force = false): Promise<CleanResult | null> {
  const cfg = log.topicConfig;
  if (!isCompacted(cfg) || log.cleaning) return null;
  const cleanable = cleanableSegments(log.inactiveSegments(), nowMs - cfg.minCompactionLagMs, log.firstUnstableOffset);
  if (cleanable.length === 0) return null;
  const dirtyFrom = firstDirty.get(log) ?? 0;
  if (!force && dirtyRatio(cleanable, dirtyFrom) < cfg.minCleanableDirtyRatio) return null;

  log.cleaning = true;
  try {
    const txns = new TxnTracker(log.abortedTxnEntries(cleanable[0]!.baseOffset, cleanable[cleanable.length - 1]!.nextOffset));
    const latest = await buildOffsetMap(cleanable, dirtyFrom, pause, txns);
    const tombstoneHorizon = nowMs - cfg.deleteRetentionMs;
    let before = 0;
    let after = 0;
    let removed = 0;
    let done = 0;
    for (const seg of cleanable) {
      const r = await cleanSegment(seg, latest, tombstoneHorizon, pause, txns);
      if (!(await log.replaceSegment(seg, r.cleaned))) break;
      before += seg.size;
      after += r.cleaned.length;
      removed += r.removed;
      done++;
    }
    if (done === cleanable.length) firstDirty.set(log, cleanable[cleanable.length - 1]!.nextOffset);
    return { segments: done, bytesBefore: before, bytesAfter: after, recordsRemoved: removed };
  } finally {
    log.cleaning = false;
  }
}

/**
 * Inactive segments from the oldest whose records are all older than the compaction lag and
 * that end at or before the first unstable offset (null: no transaction is open).
 */
function cleanableSegments(segs: readonly Segment[], lagHorizon: number, firstUnstable: number | null): Segment[] {
  const out: Segment[] = [];
  for (const s of segs) {
    if (s.maxTimestamp > lagHorizon || (firstUnstable !== null && s.nextOffset > firstUnstable)) break;
    out.push(s);
  }
  return out;
}

/**
 * What the cleaner knows of transactions: which producer batches were aborted (from the
 * aborted-transaction index) and, while it walks the segments in offset order, whether each
 * producer's current transaction still has records kept (so its marker must stay).
 */
class TxnTracker {
  private readonly aborted = new Map<number, AbortedTxn[]>();
  private readonly kept = new Map<number, boolean>();

  constructor(entries: readonly AbortedTxn[]) {
    for (const e of entries) {
      let list = this.aborted.get(e.producerId);
      if (!list) this.aborted.set(e.producerId, (list = []));
      list.push(e);
    }
  }

  /** True for a transactional batch of an aborted transaction. */
  isAborted(h: BatchHeader): boolean {
    if (!h.isTransactional || h.isControl) return false;
    for (const e of this.aborted.get(h.producerId) ?? []) if (e.firstOffset <= h.baseOffset && h.baseOffset < e.lastOffset) return true;
    return false;
  }

  /** Notes that a transactional batch of the producer keeps records. */
  keptData(h: BatchHeader): void {
    if (h.isTransactional && !h.isControl) this.kept.set(h.producerId, true);
  }

  /** At the producer's marker: whether records of its transaction were kept before it; then forgets them. */
  endTxn(producerId: number): boolean {
    const kept = this.kept.get(producerId) === true;
    this.kept.delete(producerId);
    return kept;
  }
}

function dirtyRatio(segs: readonly Segment[], dirtyFrom: number): number {
  let total = 0;
  let dirty = 0;
  for (const s of segs) {
    total += s.size;
    if (s.nextOffset > dirtyFrom) dirty += s.size;
  }
  return total === 0 ? 0 : dirty / total;
}

/** Calls `fn` for every batch of a segment, pausing every CHUNK_BYTES. */
async function forEachBatch(seg: Segment, pause: Pause, fn: (batch: Buffer) => void): Promise<void> {
  let pos = 0;
  let sincePause = 0;
  while (pos < seg.size) {
    const buf = seg.read(pos, CHUNK_BYTES);
    if (buf.length === 0) break;
    for (let at = 0; at + HEADER_SIZE <= buf.length; ) {
      const h = readBatchHeader(buf, at);
      fn(buf.subarray(at, at + h.size));
      at += h.size;
    }
    pos += buf.length;
    sincePause += buf.length;
    if (sincePause >= CHUNK_BYTES) {
      sincePause = 0;
      await pause();
    }
  }
}

/**
 * Key (as a binary string) → offset of its latest record, over the dirty segments; control
 * batches and aborted records are no keyed records.
 */
async function buildOffsetMap(segs: readonly Segment[], dirtyFrom: number, pause: Pause, txns: TxnTracker): Promise<Map<string, number>> {
  const latest = new Map<string, number>();
  for (const seg of segs) {
    if (seg.nextOffset <= dirtyFrom) continue;
    await forEachBatch(seg, pause, (batch) => {
      const h = readBatchHeader(batch, 0);
      if (h.isControl || txns.isAborted(h)) return;
      const c = records(batch);
      while (c.next()) if (c.keyLength >= 0) latest.set(keyOf(c), c.offset);
    });
  }
  return latest;
}

/** The record's key as a binary string: a Map key that compares bytes. */
function keyOf(c: RecordCursor): string {
  return c.buf.toString("latin1", c.keyStart, c.keyStart + c.keyLength);
}

async function cleanSegment(
  seg: Segment,
  latest: Map<string, number>,
  tombstoneHorizon: number,
  pause: Pause,
  txns: TxnTracker,
): Promise<{ cleaned: Buffer; removed: number }> {
  const out: Buffer[] = [];
  let removed = 0;
  const dropTombstones = seg.maxTimestamp < tombstoneHorizon;
  await forEachBatch(seg, pause, (batch) => {
    const h = readBatchHeader(batch, 0);
    if (h.isControl) {
      // A marker goes once its transaction has no records left and delete.retention.ms passed.
      if (txns.endTxn(h.producerId) || !dropTombstones) out.push(Buffer.from(batch));
      else removed += h.recordCount;
      return;
    }
    if (txns.isAborted(h)) {
      removed += h.recordCount;
      return;
    }
    let total = 0;
    let kept = 0;
    const filtered = filterBatch(batch, 0, (c) => {
      total++;
      const k = keep(c, latest, dropTombstones);
      if (k) kept++;
      return k;
    });
    removed += total - kept;
    if (kept > 0) txns.keptData(h);
    if (kept === total) out.push(Buffer.from(batch));
    else if (kept > 0) out.push(filtered);
  });
  return { cleaned: Buffer.concat(out), removed };
}

function keep(c: RecordCursor, latest: Map<string, number>, dropTombstones: boolean): boolean {
  if (c.keyLength < 0) return true;
  const newest = latest.get(keyOf(c));
  if (newest !== undefined && newest > c.offset) return false;
  return !(c.valueLength < 0 && dropTombstones);
}
