/**
 * Checking and decoding of fetched batches. Every read that leaves the broker goes through
 * `checkFetched`: each batch's header and CRC are checked (BATCHES), and for RECORDS (thin
 * clients that do not parse record batches) its records are decoded too, into a flat
 * `FetchedRecords` (keys and values stay where they are in the read buffers, no copy and no
 * object per record).
 *
 * A batch that cannot be read (stored bytes damaged on disk, or a batch accepted before produce
 * validated compressed payloads) must not fail more than its own partition. The read is cut just
 * before it: the batches before it are answered as usual, and the next read, which starts at the
 * bad batch, answers its partition's CORRUPT_MESSAGE with the batch's offset (`CorruptBatch`).
 *
 * Decoding leaves out control batches (transaction markers are never records for a consumer) and,
 * given the aborted transactions of the read (READ_COMMITTED), the records of aborted
 * transactions: Kafka's consumer rule, applied in offset order — a producer's transactional
 * batches are dropped from its aborted transaction's first offset until its next marker.
 */
import { AssertionError } from "../base/assert.ts";
import { type RillError, rillError } from "../base/errors.ts";
import { crc32c } from "../base/crc32c.ts";
import {
  CRC_START,
  HEADER_SIZE,
  LOG_OVERHEAD,
  MAGIC,
  ATTRIBUTES_OFFSET,
  BATCH_LENGTH_OFFSET,
  COMPRESSION_CODEC_MASK,
  MAGIC_OFFSET,
  batchLastOffsetAt,
  RECORD_COUNT_OFFSET,
  type BatchHeader,
  RecordCursor,
  TimestampType,
  readBatchHeader,
} from "../protocol/record-batch.ts";
import { AbortedTxnFilter } from "../protocol/control-record.ts";
import type { AbortedTransaction, FetchedRecord } from "./fetch-types.ts";
import { FetchedRecords } from "./fetched-records.ts";

/** A batch that could not be read: where it is, where the log goes on after it, and why. */
export interface CorruptBatch {
  /** The bad batch's base offset (the read position when the header itself is unreadable). */
  readonly offset: number;
  /** The first offset after the bad batch: where a consumer that skips it goes on. */
  readonly skipTo: number;
  /** What is wrong, e.g. "gzip: invalid stored block lengths" or a CRC mismatch. */
  readonly reason: string;
}

/** What `checkFetched` kept of a read. */
export interface CheckedRead {
  /** The whole batches before the first bad one (slices of the read's chunks). */
  readonly chunks: Buffer[];
  readonly bytes: number;
  /** RECORDS: the records at or after `from` of those batches; null for BATCHES. */
  readonly records: FetchedRecords | null;
  /** Where the next read starts: the read's own next offset, or the bad batch's offset. */
  readonly nextOffset: number;
  /** The first batch that could not be read when it is the first of the read (else null: cut before it). */
  readonly corrupt: CorruptBatch | null;
}

/** Drops control batches only (READ_UNCOMMITTED). */
const CONTROL_ONLY = { drops: (h: { isControl: boolean }): boolean => h.isControl };

/**
 * Checks the batches of a read from `from` (whole batches, as a log read returns them), decoding
 * them with `decode`, without control batches and, when `aborted` is given (READ_COMMITTED), the
 * records of those aborted transactions. Stops at the first batch that fails: see the module comment.
 *
 * `offsetLimit`: stop before a batch (not the first) that ends more than this many offsets past
 * `from`, as a Consume session cuts a read to its credit: the rest is neither checked nor
 * decoded (the next read starts there). A session with a credit of 1,000 records read 1 MiB of
 * small records, decoded all ~18,000 of them and sent the first 1,000: with an SDK group catching
 * up (test/soak/records-probe.ts, GROUP=1) that took a Bun broker's RSS to 343 MiB; cut, 219.
 */
export function checkFetched(
  chunks: readonly Buffer[],
  from: number,
  readNext: number,
  decode: boolean,
  aborted: readonly AbortedTransaction[] | null = null,
  offsetLimit: number = Number.POSITIVE_INFINITY,
): CheckedRead {
  const kept: Buffer[] = [];
  const out: FetchedRecords | null = decode ? new FetchedRecords(Math.max(0, Math.min(recordsHint(chunks), offsetLimit))) : null;
  const filter = aborted === null || aborted.length === 0 ? CONTROL_ONLY : new AbortedTxnFilter(aborted);
  let bytes = 0;
  let next = from;
  for (const chunk of chunks) {
    let pos = 0;
    while (pos + LOG_OVERHEAD <= chunk.length) {
      // Past the limit: whole batches only, and at least the first (a header read in place; a
      // damaged one either stops the read here or fails checkBatch below).
      if ((bytes > 0 || pos > 0) && pos + HEADER_SIZE <= chunk.length && batchLastOffsetAt(chunk, pos) + 1 - from > offsetLimit) {
        if (pos > 0) kept.push(chunk.subarray(0, pos));
        return { chunks: kept, bytes: bytes + pos, records: out, nextOffset: next, corrupt: null };
      }
      const bad = checkBatch(chunk, pos, from, out, filter);
      if (typeof bad !== "number") {
        if (pos > 0) kept.push(chunk.subarray(0, pos));
        bytes += pos;
        const first = bytes === 0;
        return { chunks: kept, bytes, records: out, nextOffset: first ? from : next, corrupt: first ? corruptAt(bad, next) : null };
      }
      next = bad;
      pos += chunk.readInt32BE(pos + BATCH_LENGTH_OFFSET) + LOG_OVERHEAD; // checked by checkBatch
    }
    kept.push(chunk);
    bytes += chunk.length;
  }
  return { chunks: kept, bytes, records: out, nextOffset: readNext, corrupt: null };
}

/**
 * About how many records the batches of `chunks` hold, from their headers' counts: the rows a
 * decode allocates at once instead of by doubling. Only a hint (a list grows past it), so each
 * count is bounded by its batch's bytes (an uncompressed record takes at least 7; a compressed
 * one at least 1) and the whole by PRESIZE_ROWS_MAX: a damaged header costs no large allocation.
 */
function recordsHint(chunks: readonly Buffer[]): number {
  let n = 0;
  for (const chunk of chunks) {
    let pos = 0;
    while (pos + HEADER_SIZE <= chunk.length) {
      const size = chunk.readInt32BE(pos + BATCH_LENGTH_OFFSET) + LOG_OVERHEAD;
      if (size < HEADER_SIZE) break;
      const body = size - HEADER_SIZE;
      const compressed = (chunk.readInt16BE(pos + ATTRIBUTES_OFFSET) & COMPRESSION_CODEC_MASK) !== 0;
      n += Math.max(0, Math.min(chunk.readInt32BE(pos + RECORD_COUNT_OFFSET), compressed ? body : Math.floor(body / 7)));
      if (n >= PRESIZE_ROWS_MAX) return PRESIZE_ROWS_MAX;
      pos += size;
    }
  }
  return n;
}

/** Most rows a decode allocates up front (3 MiB of rows). */
const PRESIZE_ROWS_MAX = 65_536;

/** The records at or after `from` in `chunks`; throws CORRUPT_MESSAGE at a batch that cannot be read. */
export function decodeFetchedRecords(chunks: readonly Buffer[], from: number): FetchedRecord[] {
  const r = checkFetched(chunks, from, from, true);
  if (r.corrupt) throw corruptError(r.corrupt, "fetch");
  return r.records?.toArray() ?? [];
}

/** The CORRUPT_MESSAGE of a bad batch of `where` (e.g. "orders-3"), naming its offset. */
export function corruptError(c: CorruptBatch, where: string): RillError {
  return rillError(
    "CORRUPT_MESSAGE",
    `${where}: the batch at offset ${c.offset} cannot be read (${c.reason}); the log goes on at offset ${c.skipTo}`,
  );
}

/** Decides which batches a decode leaves out. */
interface BatchFilter {
  drops(h: { baseOffset: number; producerId: number; isTransactional: boolean; isControl: boolean }): boolean;
}

/** A failed batch: its header (null when unreadable) and the reason. */
interface BadBatch {
  readonly header: { baseOffset: number; lastOffset: number } | null;
  readonly reason: string;
}

/**
 * Checks (and with `out`, decodes into it) the batch at `pos`; returns the offset after it, or
 * what is wrong with it. A batch that fails half way adds no records (the list is cut back).
 */
function checkBatch(chunk: Buffer, pos: number, from: number, out: FetchedRecords | null, filter: BatchFilter): number | BadBatch {
  let header: BadBatch["header"] = null;
  const mark = out?.length ?? 0;
  try {
    if (chunk.length - pos < HEADER_SIZE) throw rillError("BATCH_LENGTH_MISMATCH", "the batch is shorter than its header");
    const size = chunk.readInt32BE(pos + 8) + LOG_OVERHEAD;
    const h = readBatchHeader(chunk, pos);
    header = h;
    if (size < HEADER_SIZE || pos + size > chunk.length)
      throw rillError("BATCH_LENGTH_MISMATCH", `batchLength ${h.batchLength} does not fit the read`);
    checkStored(chunk, pos, pos + size, h.crc);
    if (out && !filter.drops(h)) decodeBatch(chunk, pos, h, from, out);
    return h.lastOffset + 1;
  } catch (e) {
    // Bad bytes give RillErrors, RangeErrors (reads past a buffer) and codec Errors (zlib, lz4);
    // an AssertionError is a bug and goes on.
    if (e instanceof AssertionError) throw e;
    out?.truncate(mark);
    return { header, reason: e instanceof Error ? e.message : String(e) };
  }
}

/**
 * What a read checks of every stored batch: magic and CRC (not the record frames: the CRC covers
 * them, and RECORDS decoding checks them anyway), so BATCHES reads stay at CRC speed.
 */
function checkStored(chunk: Buffer, pos: number, end: number, stored: number): void {
  const magic = chunk.readInt8(pos + MAGIC_OFFSET);
  if (magic !== MAGIC) throw rillError("UNSUPPORTED_FOR_MESSAGE_FORMAT", `magic: ${magic} (only magic 2 is supported)`);
  const crc = crc32c(chunk.subarray(pos + CRC_START, end));
  if (crc !== stored) throw rillError("CORRUPT_MESSAGE", `crc: stored 0x${stored.toString(16)}, computed 0x${crc.toString(16)}`);
}

/** The cursor every decode uses (decoding is synchronous: one at a time). */
const cursor = new RecordCursor();

/** Decodes the records at or after `from` of the batch at `pos`, whose header is `h`, into `out`. */
function decodeBatch(chunk: Buffer, pos: number, h: BatchHeader, from: number, out: FetchedRecords): void {
  const logAppend = h.timestampType === TimestampType.LOG_APPEND_TIME;
  const c = cursor.reset(chunk, pos, h);
  while (c.next()) {
    if (c.offset < from) continue;
    out.addFromCursor(c, logAppend ? h.maxTimestamp : c.timestampMs, h.timestampType, h.partitionLeaderEpoch);
  }
  c.buf = NO_BYTES; // holds no read buffer (or decompressed payload) until the next decode
}

const NO_BYTES = Buffer.alloc(0);

/** The CorruptBatch of a failed first batch read from `from`; offsets a damaged header gives are used only when plausible. */
function corruptAt(bad: BadBatch, from: number): CorruptBatch {
  const h = bad.header;
  const sane = h !== null && Number.isSafeInteger(h.baseOffset) && h.baseOffset >= 0 && h.baseOffset <= from;
  const offset = sane ? h.baseOffset : from;
  const end = sane && Number.isSafeInteger(h.lastOffset) && h.lastOffset >= from ? h.lastOffset + 1 : from + 1;
  return { offset, skipTo: end, reason: bad.reason };
}
