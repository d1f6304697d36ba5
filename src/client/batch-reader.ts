/**
 * Reading the `record_batches` of a BATCHES fetch: concatenated Kafka RecordBatch v2 batches, of
 * which the first may start before the requested offset and the last may be cut short by the
 * byte budget. Records are decoded lazily, one at a time, as the consumer asks for them (keys,
 * values and header values are views of the received bytes, or of a batch's decompressed
 * payload — no copies).
 *
 * A batch that cannot be read (CRC mismatch, a compressed payload that does not decompress, a
 * malformed record) throws CORRUPT_MESSAGE; a reader given `onCorrupt` (the consumers'
 * `skipCorrupt`) reports it there instead and goes on after the batch.
 */

import { crc32c } from "../base/crc32c.ts";
import { Errors, RillError } from "../base/errors.ts";
import { codecUnavailable } from "../protocol/compression.ts";
import { AbortedTxnFilter, type AbortedTxnRef } from "../protocol/control-record.ts";
import { CRC_START, type BatchHeader, forEachBatch, type RecordHeader, records } from "../protocol/record-batch.ts";

/** A consumed record. `key`, `value` and header values are views of the fetched bytes. */
export interface ConsumerRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  /** Create time, or the broker's append time on LogAppendTime topics. */
  readonly timestampMs: number;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: readonly RecordHeader[];
}

const NO_HEADERS: readonly RecordHeader[] = Object.freeze([]);

/** What a scan of fetched batches found. */
export interface BatchScan {
  /** The offset after the last whole batch; -1 when there is none. */
  readonly nextOffset: number;
  /** True when the bytes are whole batches only (no trailing partial batch). */
  readonly whole: boolean;
}

/** Finds where the whole batches of `bytes` end (headers only; nothing is decoded). */
export function scanBatches(bytes: Buffer): BatchScan {
  let nextOffset = -1;
  const end = forEachBatch(bytes, (h) => {
    nextOffset = h.lastOffset + 1;
  });
  return { nextOffset, whole: end === bytes.length };
}

/** A batch a consumer skipped because it cannot be read (the consumers' `onCorrupt`). */
export interface CorruptBatchReport {
  readonly topic: string;
  readonly partition: number;
  /** The bad batch's first offset. */
  readonly offset: number;
  /** The offset after it: where the consumer goes on. */
  readonly nextOffset: number;
  /** CORRUPT_MESSAGE, saying what is wrong. */
  readonly error: RillError;
}

/**
 * Yields the records of the whole batches of `bytes` whose offset is at least `fromOffset`,
 * skipping control batches and, given the fetch's `aborted` transactions (READ_COMMITTED), the
 * batches of those transactions (Kafka's consumer rule, see AbortedTxnFilter); with `checkCrcs`, a batch whose CRC32C does not match fails before
 * any of its records is yielded. A batch that fails (CRC, decompression, a malformed record)
 * throws CORRUPT_MESSAGE, or with `onCorrupt` is reported there and skipped (records of it
 * already yielded stay yielded).
 */
export function* readRecords(
  topic: string,
  partition: number,
  bytes: Buffer,
  fromOffset: number,
  checkCrcs: boolean,
  onCorrupt?: (report: CorruptBatchReport) => void,
  aborted: readonly AbortedTxnRef[] = [],
): Generator<ConsumerRecord, void, undefined> {
  const found: { pos: number; h: BatchHeader }[] = [];
  const filter = new AbortedTxnFilter(aborted);
  forEachBatch(bytes, (h, pos) => {
    if (!filter.drops(h) && h.lastOffset >= fromOffset) found.push({ pos, h });
  });
  for (const { pos, h } of found) {
    if (!onCorrupt) {
      yield* batchRecords(topic, partition, bytes, pos, h, fromOffset, checkCrcs);
      continue;
    }
    try {
      yield* batchRecords(topic, partition, bytes, pos, h, fromOffset, checkCrcs);
    } catch (e) {
      if (!(e instanceof RillError) || e.kind !== Errors.CORRUPT_MESSAGE) throw e;
      onCorrupt({ topic, partition, offset: h.baseOffset, nextOffset: h.lastOffset + 1, error: e });
    }
  }
}

/** The records at or after `fromOffset` of the batch at `pos`; CORRUPT_MESSAGE when it cannot be read. */
function* batchRecords(
  topic: string,
  partition: number,
  bytes: Buffer,
  pos: number,
  h: BatchHeader,
  fromOffset: number,
  checkCrcs: boolean,
): Generator<ConsumerRecord, void, undefined> {
  const where = `${topic}-${partition}`;
  if (checkCrcs) checkCrc(bytes, pos, h.size, h.crc, where);
  // A codec whose optional npm package is not installed is the application's to fix, not a corrupt batch to skip.
  const unavailable = codecUnavailable(h.compression);
  if (unavailable !== null) {
    throw new RillError(
      Errors.UNSUPPORTED_COMPRESSION_TYPE,
      `${where}: the batch at offset ${h.baseOffset} cannot be read: ${unavailable}`,
    );
  }
  let c: ReturnType<typeof records>;
  try {
    c = records(bytes, pos);
  } catch (e) {
    throw asCorrupt(e, where, h.baseOffset);
  }
  for (;;) {
    let more: boolean;
    try {
      more = c.next();
    } catch (e) {
      throw asCorrupt(e, where, h.baseOffset);
    }
    if (!more) return;
    if (c.offset < fromOffset) continue;
    yield {
      topic,
      partition,
      offset: c.offset,
      timestampMs: c.timestampMs,
      key: c.key(),
      value: c.value(),
      headers: c.headerCount === 0 ? NO_HEADERS : c.headers(),
    };
  }
}

/** A decoding failure of the batch at `offset` as CORRUPT_MESSAGE naming it (other errors go on). */
function asCorrupt(e: unknown, where: string, offset: number): unknown {
  if (!(e instanceof RillError) && !(e instanceof RangeError)) return e;
  return new RillError(Errors.CORRUPT_MESSAGE, `${where}: the batch at offset ${offset} cannot be read (${e.message})`);
}

function checkCrc(bytes: Buffer, pos: number, size: number, stored: number, where: string): void {
  const actual = crc32c(bytes.subarray(pos + CRC_START, pos + size));
  if (stored !== actual) {
    throw new RillError(Errors.CORRUPT_MESSAGE, `${where}: batch at byte ${pos} has crc ${stored}, computed ${actual}`);
  }
}
