/**
 * One segment of a partition log: `<20-digit base offset>.log` holding record batches back to
 * back exactly as they travel on the wire, with its sparse `.index` and `.timeindex`, and its
 * aborted-transaction index `.txnindex` (txn-index.ts; the log fills and rebuilds it, since its
 * entries need the producer state of the whole log).
 *
 * Descriptors: the active segment (created, or appended to) pins its `.log` open; writing its
 * indexes — which the log does when it rolls the segment, and at close — unpins it, so an idle
 * segment under a FileHandlePool holds no descriptor. The index files are read and written
 * whole and hold none. So a partition holds one descriptor, that of its active segment.
 *
 * A segment only appends. Every batch in it has baseOffset >= the segment's base offset and
 * greater than the previous batch's last offset (compaction may leave gaps, never overlaps).
 */
import { assert } from "../base/assert.ts";
import { type FileSystem, type LogFile, settleAll, writeFileAtomicAsync } from "./fs.ts";
import { OffsetIndex, TimeIndex } from "./indexes.ts";
import { type AbortedTxn, decodeTxnIndex, encodeTxnIndex } from "./txn-index.ts";
import { HEADER_SIZE, readBatchHeader, validateBatch, type BatchHeader } from "../protocol/record-batch.ts";

/** Width of the zero-padded base offset in segment file names, as Kafka. */
const NAME_DIGITS = 20;

/** `00000000000000000042` for 42. */
export function segmentName(baseOffset: number): string {
  return String(baseOffset).padStart(NAME_DIGITS, "0");
}

/** Base offset from a `.log` file name, or null if the name is not one of ours. */
export function parseSegmentName(name: string): number | null {
  const m = /^(\d{20})\.log$/.exec(name);
  return m ? Number(m[1]) : null;
}

/** Where one appended batch sits, as the segment needs to index it. */
export interface BatchPlacement {
  /** Byte offset of the batch within the appended buffer. */
  readonly at: number;
  readonly baseOffset: number;
  readonly lastOffset: number;
  readonly maxTimestamp: number;
}

/** What recovery found in a segment. */
export interface RecoveryResult {
  readonly validBytes: number;
  readonly truncatedBytes: number;
  readonly batches: number;
}

/** A segment and its indexes. */
export class Segment {
  /** Offset after the last batch (== baseOffset while empty). */
  nextOffset: number;
  /** Largest record timestamp in the segment, -1 while empty. */
  maxTimestamp = -1;
  /** Clock time of the first append since open, for segment.ms rolls. */
  firstAppendMs = -1;
  private offsetIndex: OffsetIndex;
  private timeIndex: TimeIndex;
  private bytesSinceIndexEntry = 0;
  private indexesDirty = false;
  /** Aborted transactions whose marker is in this segment, in marker order. */
  private txnEntries: AbortedTxn[] = [];
  /** False when `.txnindex` was missing, stale or invalid: the log must rebuild the entries. */
  txnIndexValid = true;
  private txnIndexDirty = false;
  private readonly scratch = Buffer.alloc(HEADER_SIZE);

  private constructor(
    private readonly fs: FileSystem,
    readonly dir: string,
    readonly baseOffset: number,
    private readonly file: LogFile,
    private readonly indexIntervalBytes: number,
  ) {
    this.nextOffset = baseOffset;
    this.offsetIndex = new OffsetIndex(baseOffset);
    this.timeIndex = new TimeIndex(baseOffset);
  }

  /** Paths of the segment's three files. */
  static paths(fs: FileSystem, dir: string, baseOffset: number): { log: string; index: string; timeindex: string; txnindex: string } {
    const stem = fs.join(dir, segmentName(baseOffset));
    return { log: `${stem}.log`, index: `${stem}.index`, timeindex: `${stem}.timeindex`, txnindex: `${stem}.txnindex` };
  }

  /** Creates a new, empty segment. */
  static create(fs: FileSystem, dir: string, baseOffset: number, indexIntervalBytes: number): Segment {
    const p = Segment.paths(fs, dir, baseOffset);
    fs.rm(p.index);
    fs.rm(p.timeindex);
    fs.rm(p.txnindex);
    const file = fs.open(p.log, true);
    file.truncate(0);
    file.setPinned?.(true);
    const seg = new Segment(fs, dir, baseOffset, file, indexIntervalBytes);
    seg.indexesDirty = true;
    seg.txnIndexDirty = true;
    return seg;
  }

  /**
   * Opens an existing segment. With `recover`, every batch is validated and the file cut at the
   * first torn or corrupt one; otherwise the index files are loaded and checked, and rebuilt by a
   * header scan if they do not validate.
   */
  static open(
    fs: FileSystem,
    dir: string,
    baseOffset: number,
    indexIntervalBytes: number,
    recover: boolean,
  ): { segment: Segment; recovery: RecoveryResult | null } {
    const p = Segment.paths(fs, dir, baseOffset);
    const seg = new Segment(fs, dir, baseOffset, fs.open(p.log, false), indexIntervalBytes);
    const recovery = recover ? seg.recover() : null;
    if (!recover && !seg.loadIndexes()) seg.rebuildIndexes();
    seg.loadTxnIndex();
    return { segment: seg, recovery };
  }

  /** Bytes in the .log file. */
  get size(): number {
    return this.file.size();
  }

  /** True when the segment holds no batch. */
  get isEmpty(): boolean {
    return this.size === 0;
  }

  /**
   * Appends `buf` (one or more whole, already validated batches with final offsets) at the end.
   */
  append(buf: Uint8Array, batches: readonly BatchPlacement[], nowMs: number): void {
    this.file.setPinned?.(true);
    const start = this.size;
    this.file.write(buf, start);
    for (let i = 0; i < batches.length; i++) {
      const b = batches[i]!;
      const end = i + 1 < batches.length ? batches[i + 1]!.at : buf.length;
      this.indexBatch(start + b.at, b.baseOffset, b.maxTimestamp, end - b.at);
    }
    const last = batches[batches.length - 1]!;
    this.nextOffset = last.lastOffset + 1;
    if (this.firstAppendMs < 0) this.firstAppendMs = nowMs;
  }

  private indexBatch(position: number, baseOffset: number, maxTimestamp: number, size: number): void {
    if (position === 0 || this.bytesSinceIndexEntry >= this.indexIntervalBytes) {
      this.offsetIndex.append(baseOffset, position);
      this.bytesSinceIndexEntry = 0;
    }
    this.bytesSinceIndexEntry += size;
    if (maxTimestamp > this.maxTimestamp) {
      this.maxTimestamp = maxTimestamp;
      this.timeIndex.maybeAppend(maxTimestamp, baseOffset);
    }
    this.indexesDirty = true;
  }

  /** Header of the batch at `position`, or null at or past the end. */
  headerAt(position: number): BatchHeader | null {
    if (position + HEADER_SIZE > this.size) return null;
    const n = this.file.read(this.scratch, 0, HEADER_SIZE, position);
    if (n < HEADER_SIZE) return null;
    return readBatchHeader(this.scratch, 0);
  }

  /**
   * Position of the first batch whose last offset is >= `offset` (the batch that holds it, or
   * the next one after a gap), or the segment size if there is none.
   */
  positionOf(offset: number): number {
    let pos = this.offsetIndex.lookup(offset);
    for (;;) {
      const h = this.headerAt(pos);
      if (!h || h.lastOffset >= offset) return h ? pos : this.size;
      pos += h.size;
    }
  }

  /**
   * Reads whole batches from `position`: as many as fit in `maxBytes`, but always at least one
   * (so a consumer makes progress past a batch larger than its limit). One read, into one
   * buffer from `alloc` (at least the size asked for; the result is a view of it).
   */
  read(position: number, maxBytes: number, alloc: (size: number) => Buffer = Buffer.allocUnsafe): Buffer {
    const available = this.size - position;
    if (available <= 0) return Buffer.alloc(0);
    const first = this.headerAt(position);
    if (!first) return Buffer.alloc(0);
    const want = Math.min(available, Math.max(maxBytes, first.size));
    const buf = alloc(want);
    const n = this.file.read(buf, 0, want, position);
    return buf.subarray(0, wholeBatchesLength(buf, n));
  }

  /** The most bytes `read(position, maxBytes)` returns, found from the first batch's header alone. */
  readSize(position: number, maxBytes: number): number {
    const available = this.size - position;
    if (available <= 0) return 0;
    const first = this.headerAt(position);
    return first ? Math.min(available, Math.max(maxBytes, first.size)) : 0;
  }

  /** Offset of the first batch (at or after the time index's hint) whose max timestamp >= ts. */
  firstBatchAtOrAfter(ts: number): { position: number; header: BatchHeader } | null {
    if (this.maxTimestamp < ts) return null;
    let pos = this.positionOf(this.timeIndex.lookup(ts));
    for (;;) {
      const h = this.headerAt(pos);
      if (!h) return null;
      if (h.maxTimestamp >= ts) return { position: pos, header: h };
      pos += h.size;
    }
  }

  // ------------------------------------------------------------ aborted-transaction index

  /** Loads `.txnindex`; a missing, invalid or stale file leaves `txnIndexValid` false. */
  private loadTxnIndex(): void {
    const path = Segment.paths(this.fs, this.dir, this.baseOffset).txnindex;
    const entries = this.fs.exists(path) ? decodeTxnIndex(this.fs.readFile(path), this.baseOffset, this.nextOffset) : null;
    this.txnEntries = entries ?? [];
    this.txnIndexValid = entries !== null;
    this.txnIndexDirty = false;
  }

  /** Adds the aborted transaction whose marker was just appended to this segment. */
  addAbortedTxn(e: AbortedTxn): void {
    const last = this.txnEntries[this.txnEntries.length - 1];
    assert(e.lastOffset >= this.baseOffset && (last === undefined || e.lastOffset > last.lastOffset), `aborted txn at ${e.lastOffset}`);
    this.txnEntries.push(e);
    this.txnIndexDirty = true;
  }

  /** Forgets the entries (before the log rebuilds them); the index counts as valid again. */
  resetTxnIndex(entries: readonly AbortedTxn[] = []): void {
    this.txnEntries = entries.slice();
    this.txnIndexValid = true;
    this.txnIndexDirty = true;
  }

  /** The entries, in marker order (for tests, tools and compaction). */
  get abortedTxns(): readonly AbortedTxn[] {
    return this.txnEntries;
  }

  /**
   * Adds to `out` the aborted transactions of this segment that overlap [fromOffset, upToOffset)
   * and returns true when the search may stop here: an entry's LSO at its abort reached
   * `upToOffset`, so every transaction that touches the range ended no later (Kafka's rule).
   */
  collectAbortedTxns(fromOffset: number, upToOffset: number, out: AbortedTxn[]): boolean {
    const entries = this.txnEntries;
    // Entries are in marker order: skip those aborted before `fromOffset` by binary search.
    let lo = 0;
    let hi = entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (entries[mid]!.lastOffset < fromOffset) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < entries.length; i++) {
      const e = entries[i]!;
      if (e.firstOffset < upToOffset) out.push(e);
      // Every transaction touching the range had ended when this one did: later ones start after it.
      if (e.lastStableOffset >= upToOffset) return true;
    }
    return false;
  }

  /**
   * Removes every batch whose last offset is >= `offset`. Returns the new next offset, which is
   * the base offset of the first removed batch (a batch is never split).
   */
  truncateTo(offset: number): number {
    const pos = this.positionOf(offset);
    if (pos >= this.size) return this.nextOffset;
    const h = this.headerAt(pos)!;
    this.file.truncate(pos);
    this.offsetIndex.truncateToPosition(pos);
    this.timeIndex.truncateToOffset(h.baseOffset);
    this.nextOffset = pos === 0 ? this.baseOffset : h.baseOffset;
    this.recomputeMaxTimestamp();
    this.bytesSinceIndexEntry = this.indexIntervalBytes;
    this.indexesDirty = true;
    this.txnEntries = this.txnEntries.filter((e) => e.lastOffset < this.nextOffset);
    this.txnIndexDirty = true;
    // A file written before the cut could cover the same offsets again after new appends.
    this.fs.rm(Segment.paths(this.fs, this.dir, this.baseOffset).txnindex);
    return this.nextOffset;
  }

  private recomputeMaxTimestamp(): void {
    this.maxTimestamp = -1;
    for (let pos = 0; ; ) {
      const h = this.headerAt(pos);
      if (!h) break;
      if (h.maxTimestamp > this.maxTimestamp) this.maxTimestamp = h.maxTimestamp;
      pos += h.size;
    }
  }

  /**
   * Validates every batch from the start, rebuilding both indexes, and truncates the file at the
   * first batch that is torn (runs past the end), corrupt (fails validation), or out of order.
   */
  recover(): RecoveryResult {
    this.resetIndexes();
    const fileSize = this.size;
    const reader = new WindowReader(this.file, fileSize);
    let pos = 0;
    let batches = 0;
    let prevLast = this.baseOffset - 1;
    while (pos < fileSize) {
      const h = reader.batchAt(pos);
      if (!h || h.baseOffset <= prevLast) break;
      this.indexBatch(pos, h.baseOffset, h.maxTimestamp, h.size);
      prevLast = h.lastOffset;
      pos += h.size;
      batches++;
    }
    if (pos < fileSize) this.file.truncate(pos);
    this.nextOffset = prevLast + 1;
    this.indexesDirty = true;
    return { validBytes: pos, truncatedBytes: fileSize - pos, batches };
  }

  private resetIndexes(): void {
    this.offsetIndex = new OffsetIndex(this.baseOffset);
    this.timeIndex = new TimeIndex(this.baseOffset);
    this.bytesSinceIndexEntry = 0;
    this.maxTimestamp = -1;
  }

  /** Rebuilds both indexes from batch headers (no CRC check: for segments closed cleanly). */
  rebuildIndexes(): void {
    this.resetIndexes();
    let last = this.baseOffset - 1;
    for (let pos = 0; ; ) {
      const h = this.headerAt(pos);
      if (!h) break;
      this.indexBatch(pos, h.baseOffset, h.maxTimestamp, h.size);
      last = h.lastOffset;
      pos += h.size;
    }
    this.nextOffset = last + 1;
    this.indexesDirty = true;
  }

  /** Loads both index files; false if either is missing or invalid. */
  private loadIndexes(): boolean {
    const p = Segment.paths(this.fs, this.dir, this.baseOffset);
    if (!this.fs.exists(p.index) || !this.fs.exists(p.timeindex)) return false;
    const size = this.size;
    const oi = OffsetIndex.decode(this.fs.readFile(p.index), this.baseOffset, size);
    if (!oi || (size > 0 && oi.entries === 0)) return false;
    // The last indexed batch must parse, and the tail after it must chain to the file's end.
    let pos = oi.lookup(Number.MAX_SAFE_INTEGER);
    let last = this.baseOffset - 1;
    let maxTs = -1;
    while (pos < size) {
      const h = this.headerAt(pos);
      if (!h || pos + h.size > size) return false;
      last = h.lastOffset;
      pos += h.size;
    }
    const ti = TimeIndex.decode(this.fs.readFile(p.timeindex), this.baseOffset, Math.max(0, last - this.baseOffset));
    if (!ti) return false;
    if (ti.entries > 0) maxTs = ti.lastTimestamp;
    this.offsetIndex = oi;
    this.timeIndex = ti;
    this.nextOffset = size === 0 ? this.baseOffset : last + 1;
    this.maxTimestamp = maxTs;
    this.bytesSinceIndexEntry = this.indexIntervalBytes;
    this.indexesDirty = false;
    return true;
  }

  /**
   * Writes the index files if they changed, and unpins the file: the log writes them when the
   * segment stops being active (roll, close), so its descriptor may go back to the pool.
   */
  writeIndexes(): void {
    for (const [path, data] of this.dirtyIndexFiles()) this.fs.writeFileAtomic(path, data);
  }

  /** As `writeIndexes`, with the files' fsyncs off the event loop and at once (a log closing). */
  writeIndexesAsync(): Promise<void> {
    return settleAll(this.dirtyIndexFiles().map(([path, data]) => writeFileAtomicAsync(this.fs, path, data)));
  }

  /** The index files that changed since they were last written, with their bytes; marked written. */
  private dirtyIndexFiles(): Array<[string, Uint8Array]> {
    this.file.setPinned?.(false);
    const p = Segment.paths(this.fs, this.dir, this.baseOffset);
    const out: Array<[string, Uint8Array]> = [];
    if (this.txnIndexDirty && this.txnIndexValid) {
      out.push([p.txnindex, encodeTxnIndex(this.txnEntries, this.nextOffset)]);
      this.txnIndexDirty = false;
    }
    if (this.indexesDirty) {
      out.push([p.index, this.offsetIndex.encode()], [p.timeindex, this.timeIndex.encode()]);
      this.indexesDirty = false;
    }
    return out;
  }

  /** Removes the index files (before the .log is replaced, so stale ones are never trusted). */
  dropIndexFiles(): void {
    const p = Segment.paths(this.fs, this.dir, this.baseOffset);
    this.fs.rm(p.index);
    this.fs.rm(p.timeindex);
    this.fs.rm(p.txnindex);
    this.indexesDirty = true;
    this.txnIndexDirty = true;
  }

  sync(): Promise<void> {
    return this.file.sync();
  }

  close(): void {
    this.file.close();
  }

  /** Closes and removes all three files. */
  delete(): void {
    this.file.close();
    const p = Segment.paths(this.fs, this.dir, this.baseOffset);
    this.fs.rm(p.log);
    this.fs.rm(p.index);
    this.fs.rm(p.timeindex);
    this.fs.rm(p.txnindex);
  }
}

/** Length of the prefix of buf[0..n) made of whole batches (at least the first if complete). */
function wholeBatchesLength(buf: Buffer, n: number): number {
  let pos = 0;
  while (pos + 12 <= n) {
    const size = buf.readInt32BE(pos + 8) + 12;
    if (size < HEADER_SIZE || pos + size > n) break;
    pos += size;
  }
  return pos;
}

/**
 * Reads a file through a moving window, so recovery scans a large segment with few reads and
 * without loading it whole. The window is one buffer, reused for every read (grown only for a
 * batch larger than it): a view it returned is valid until the next call. A new buffer per MiB
 * read left as much garbage as the segment's size, outside the JavaScript heap, which the
 * collector saw late: Bun's RSS rose by about that much while a broker recovered after kill -9.
 */
class WindowReader {
  private buffer = Buffer.alloc(0);
  /** The header `batchAt` returns, reused for every batch (made by the first one it reads). */
  private header: BatchHeader | null = null;
  /** The file's bytes [windowStart, windowStart + windowLength) are buffer[0, windowLength). */
  private windowStart = 0;
  private windowLength = 0;
  private static readonly CHUNK = 1 << 20;

  constructor(
    private readonly file: LogFile,
    private readonly fileSize: number,
  ) {}

  /**
   * The header of the validated batch at `pos`, or null if it is torn or invalid; overwritten by
   * the next call. Validated in place in the window, into one header: no object per batch (a
   * broker restarted after kill -9 made three per batch of its unflushed segments; under Bun
   * that was about 80 MiB of heap at once for 24 MB of small batches).
   */
  batchAt(pos: number): BatchHeader | null {
    if (pos + 12 > this.fileSize) return null;
    let at = this.load(pos, 12);
    const size = this.buffer.readInt32BE(at + 8) + 12;
    if (size < HEADER_SIZE || pos + size > this.fileSize) return null;
    at = this.load(pos, size);
    try {
      this.header = validateBatch(this.buffer, at, at + size, this.header ?? undefined);
      return this.header;
    } catch {
      return null;
    }
  }

  /** Where the file's bytes [pos, pos + len) lie in the buffer, read into it if they are not there. */
  private load(pos: number, len: number): number {
    const off = pos - this.windowStart;
    if (off >= 0 && off + len <= this.windowLength) return off;
    const want = Math.min(Math.max(len, WindowReader.CHUNK), this.fileSize - pos);
    if (this.buffer.length < want) this.buffer = Buffer.allocUnsafe(Math.max(want, WindowReader.CHUNK));
    const n = this.file.read(this.buffer, 0, want, pos);
    assert(n >= len, "short read inside the file's size");
    this.windowStart = pos;
    this.windowLength = n;
    return 0;
  }
}
