/**
 * Batches that pass the storage layer's checks but cannot be read, for the tests of corrupt
 * stored data (the produce path refuses them once it validates compressed payloads, so tests
 * append them below it).
 */
import { crc32c } from "../../../src/base/crc32c.ts";
import { Compression } from "../../../src/protocol/compression.ts";
import { CRC_OFFSET, CRC_START, RECORDS_OFFSET, encodeBatch } from "../../../src/protocol/record-batch.ts";

/** Rewrites the CRC of the batch `buf` so it matches its bytes again. */
export function fixCrc(buf: Buffer): Buffer {
  buf.writeUInt32BE(crc32c(buf.subarray(CRC_START)), CRC_OFFSET);
  return buf;
}

/**
 * A gzip batch of `values` with a valid gzip header and garbage deflate data (a stored block
 * whose LEN and NLEN disagree: "invalid stored block lengths"), its CRC consistent.
 */
export function badGzipBatch(values: readonly string[]): Buffer {
  const buf = encodeBatch(
    values.map((v) => ({ key: null, value: v.repeat(20) })),
    { compression: Compression.GZIP, nowMs: 1000 },
  );
  const deflate = RECORDS_OFFSET + 10; // after the 10-byte gzip header
  buf.fill(0, deflate, buf.length);
  buf[deflate + 3] = 0x12; // LEN 0x0000, NLEN 0x1200: not LEN's complement
  return fixCrc(buf);
}
