/**
 * The aborted-transaction index of one segment (`<base>.txnindex`, Kafka's TransactionIndex):
 * one entry per transaction whose ABORT marker lies in the segment, in marker order. A
 * READ_COMMITTED fetch lists the entries that overlap what it returns, so a consumer drops the
 * aborted records (Kafka's `aborted_transactions`).
 *
 * Derived data: the entries come from the producer state as markers are appended (leader and
 * follower alike), are kept in memory, written whole when the segment rolls and at close, and
 * rebuilt by replaying the log (from a producer-state snapshot) when the file is missing, fails
 * its checks, or covers less of the segment than the `.log` holds (a crash before it was written).
 *
 * File format, big-endian:
 * ```
 *  offset size field
 *  ------ ---- ---------------------------------------------------------------------------
 *       0    8 magic          "RILLTXX1"
 *       8    4 count          u32
 *      12    4 crc            u32, CRC32C of bytes [16, end)
 *      16    8 coveredOffset  i64, the segment's next offset when written: a file for fewer
 *                             offsets than the segment holds is stale
 *      24    - count entries of 32 bytes, in marker order (lastOffset strictly increasing):
 *              +0   8 producerId        i64, >= 0
 *              +8   8 firstOffset       i64, the transaction's first batch (may be in an earlier segment)
 *             +16   8 lastOffset        i64, the ABORT marker, > firstOffset, in the segment
 *             +24   8 lastStableOffset  i64, the partition's LSO just after the abort
 * ```
 */
import { crc32c } from "../base/crc32c.ts";

/** One aborted transaction (Kafka's AbortedTxn). */
export interface AbortedTxn {
  readonly producerId: number;
  readonly firstOffset: number;
  /** Offset of the ABORT marker. */
  readonly lastOffset: number;
  /** The last stable offset just after the abort (lets a search stop early). */
  readonly lastStableOffset: number;
}

const MAGIC = Buffer.from("RILLTXX1", "latin1");
const HEADER = 24;
const ENTRY = 32;
const TWO_32 = 4294967296;

function writeI64(buf: Buffer, p: number, v: number): void {
  const hi = Math.floor(v / TWO_32);
  buf.writeInt32BE(hi, p);
  buf.writeUInt32BE(v - hi * TWO_32, p + 4);
}

function readI64(buf: Buffer, p: number): number {
  return buf.readInt32BE(p) * TWO_32 + buf.readUInt32BE(p + 4);
}

/** The index file of `entries`, covering the segment up to `coveredOffset`. */
export function encodeTxnIndex(entries: readonly AbortedTxn[], coveredOffset: number): Uint8Array {
  const buf = Buffer.alloc(HEADER + ENTRY * entries.length);
  MAGIC.copy(buf, 0);
  buf.writeUInt32BE(entries.length, 8);
  writeI64(buf, 16, coveredOffset);
  let p = HEADER;
  for (const e of entries) {
    writeI64(buf, p, e.producerId);
    writeI64(buf, p + 8, e.firstOffset);
    writeI64(buf, p + 16, e.lastOffset);
    writeI64(buf, p + 24, e.lastStableOffset);
    p += ENTRY;
  }
  buf.writeUInt32BE(crc32c(buf.subarray(16)), 12);
  return buf;
}

/**
 * The entries of an index file of the segment [baseOffset, nextOffset), or null when the file
 * fails a check: magic, length, CRC, a covered offset other than `nextOffset`, or an entry
 * out of order or outside the segment.
 */
export function decodeTxnIndex(data: Uint8Array, baseOffset: number, nextOffset: number): AbortedTxn[] | null {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (buf.length < HEADER || !buf.subarray(0, 8).equals(MAGIC)) return null;
  const count = buf.readUInt32BE(8);
  if (buf.length !== HEADER + ENTRY * count) return null;
  if (buf.readUInt32BE(12) !== crc32c(buf.subarray(16))) return null;
  if (readI64(buf, 16) !== nextOffset) return null;
  const out: AbortedTxn[] = [];
  let prev = baseOffset - 1;
  for (let p = HEADER; p < buf.length; p += ENTRY) {
    const e: AbortedTxn = {
      producerId: readI64(buf, p),
      firstOffset: readI64(buf, p + 8),
      lastOffset: readI64(buf, p + 16),
      lastStableOffset: readI64(buf, p + 24),
    };
    if (!Number.isSafeInteger(e.producerId) || e.producerId < 0 || !Number.isSafeInteger(e.firstOffset) || e.firstOffset < 0) return null;
    if (e.lastOffset <= prev || e.lastOffset >= nextOffset || e.firstOffset >= e.lastOffset) return null;
    if (!Number.isSafeInteger(e.lastStableOffset) || e.lastStableOffset > nextOffset) return null;
    prev = e.lastOffset;
    out.push(e);
  }
  return out;
}
