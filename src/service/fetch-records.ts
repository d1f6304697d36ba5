/**
 * Decoding of fetched batches into records, for the RECORDS format (thin clients that do not
 * parse record batches). Keys, values and header values are views of the read buffers, no copy.
 */
import { HEADER_SIZE, TimestampType, readBatchHeader, records as recordCursor } from "../protocol/record-batch.ts";
import type { FetchedRecord } from "./fetch-types.ts";

/**
 * The records at or after `from` in `chunks` (whole batches, as a log read returns them). A
 * LogAppendTime batch gives every record the batch's time.
 */
export function decodeFetchedRecords(chunks: readonly Buffer[], from: number): FetchedRecord[] {
  const out: FetchedRecord[] = [];
  for (const chunk of chunks) {
    for (let pos = 0; pos + HEADER_SIZE <= chunk.length; ) {
      const h = readBatchHeader(chunk, pos);
      const logAppend = h.timestampType === TimestampType.LOG_APPEND_TIME;
      const c = recordCursor(chunk, pos);
      while (c.next()) {
        if (c.offset < from) continue;
        out.push({
          offset: c.offset,
          timestampMs: logAppend ? h.maxTimestamp : c.timestampMs,
          timestampType: h.timestampType,
          leaderEpoch: h.partitionLeaderEpoch,
          key: c.key(),
          value: c.value(),
          headers: c.headers(),
        });
      }
      pos += h.size;
    }
  }
  return out;
}
