/**
 * Reading the `record_batches` of a BATCHES fetch: concatenated Kafka RecordBatch v2 batches, of
 * which the first may start before the requested offset and the last may be cut short by the
 * byte budget. Records are decoded lazily, one at a time, as the consumer asks for them (keys,
 * values and header values are views of the received bytes, or of a batch's decompressed
 * payload — no copies).
 */

import { crc32c } from "../base/crc32c.ts";
import { Errors, RillError } from "../base/errors.ts";
import { CRC_START, forEachBatch, type RecordHeader, records } from "../protocol/record-batch.ts";

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

/**
 * Yields the records of the whole batches of `bytes` whose offset is at least `fromOffset`,
 * skipping control batches; with `checkCrcs`, a batch whose CRC32C does not match throws
 * CORRUPT_MESSAGE before any of its records is yielded.
 */
export function* readRecords(
  topic: string,
  partition: number,
  bytes: Buffer,
  fromOffset: number,
  checkCrcs: boolean,
): Generator<ConsumerRecord, void, undefined> {
  const found: { pos: number; size: number; crc: number }[] = [];
  forEachBatch(bytes, (h, pos) => {
    if (h.lastOffset >= fromOffset && !h.isControl) found.push({ pos, size: h.size, crc: h.crc });
  });
  for (const { pos, size, crc } of found) {
    if (checkCrcs) checkCrc(bytes, pos, size, crc, `${topic}-${partition}`);
    const c = records(bytes, pos);
    while (c.next()) {
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
}

function checkCrc(bytes: Buffer, pos: number, size: number, stored: number, where: string): void {
  const actual = crc32c(bytes.subarray(pos + CRC_START, pos + size));
  if (stored !== actual) {
    throw new RillError(Errors.CORRUPT_MESSAGE, `${where}: batch at byte ${pos} has crc ${stored}, computed ${actual}`);
  }
}
