/**
 * Kafka's snappy codec (attributes codec 2). Two layouts reach a broker:
 *
 * ```
 *   xerial framing (snappy-java's SnappyOutputStream: the Java client; Rill writes it, and every
 *   Kafka client reads it)
 *     magic    8 bytes  82 53 4E 41 50 50 59 00   ("\x82SNAPPY\0")
 *     version  i32 BE   1
 *     compat   i32 BE   1
 *     chunks:  length i32 BE, then one raw snappy block of that many bytes (Rill: 32 KiB of input each)
 *   raw snappy block (librdkafka and kafkajs-snappy write one when they produce; both read xerial)
 *     preamble varint   the uncompressed length (at most 2^32 - 1), then the block's elements
 * ```
 *
 * The payload is xerial when it holds the 16-byte header and starts with the magic (as librdkafka
 * decides when it reads; a header alone is an empty stream), else one raw block. Every block starts with its uncompressed
 * length, so the output of a whole payload is known before a byte is decompressed and is bounded
 * there (MESSAGE_TOO_LARGE). The blocks themselves are decoded by the npm `snappy` package
 * (napi-rs over the Rust `snap` crate), which checks each one against its preamble; it is loaded on
 * first use (an optional peer dependency of the SDK's package, see compression.ts).
 */
import { rillError } from "../base/errors.ts";
import { optionalPackage } from "../base/optional-package.ts";

type Snappy = typeof import("snappy");

/** The snappy package, loaded on first use; UNSUPPORTED_COMPRESSION_TYPE when it is not installed. */
function snappy(): Snappy {
  const p = optionalPackage<Snappy>("snappy");
  if (p.module === null) throw rillError("UNSUPPORTED_COMPRESSION_TYPE", `snappy: ${p.missing}`);
  return p.module;
}

/** The xerial stream magic. */
export const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
/** The xerial header: magic, version, compatible version. */
const XERIAL_HEADER_BYTES = 16;
/** Input bytes per xerial chunk Rill writes (snappy-java's default block size). */
export const XERIAL_CHUNK_BYTES = 32 * 1024;

/**
 * Output of the napi codec copied into a V8-owned Buffer. Without the copy it hands out native
 * "external" buffers that are freed only by finalizers when the event loop turns: a synchronous
 * loop of 32 KiB block decodes (produce validation) measured 60-210 MB/s that way, 515-570 MB/s
 * with the copy, on Node 20 and Bun 1.4 (the same effect as lz4-napi's, see compression.ts).
 */
const SNAPPY_OUTPUT = { asBuffer: true, copyOutputData: true } as const;

function corrupt(detail: string): Error {
  return rillError("CORRUPT_MESSAGE", `snappy: ${detail}`);
}

/** True when `data[start, end)` is in the xerial framing. */
export function isXerial(data: Uint8Array, start = 0, end: number = data.length): boolean {
  if (end - start < XERIAL_HEADER_BYTES) return false;
  for (let i = 0; i < XERIAL_MAGIC.length; i++) if (data[start + i] !== XERIAL_MAGIC[i]) return false;
  return true;
}

/** A raw block's position and declared uncompressed length. */
interface SnappyBlock {
  start: number;
  end: number;
  length: number;
}

/**
 * The raw blocks of a snappy payload in `data[start, end)`, each with its declared uncompressed
 * length, checked without decompressing: the xerial header and chunk lengths tile the payload
 * exactly, and each block's length preamble is a valid varint. Throws CORRUPT_MESSAGE.
 */
export function snappyBlocks(data: Uint8Array, start = 0, end: number = data.length): SnappyBlock[] {
  if (!isXerial(data, start, end)) return [rawBlock(data, start, end, "raw block")];
  const version = readI32BE(data, start + 8);
  const compat = readI32BE(data, start + 12);
  if (version < 1 || compat < 1) throw corrupt(`xerial header: version ${version}, compatible version ${compat} (want >= 1)`);
  const blocks: SnappyBlock[] = [];
  let p = start + XERIAL_HEADER_BYTES;
  while (p < end) {
    const what = `xerial chunk ${blocks.length}`;
    if (end - p < 4) throw corrupt(`${what}: length is cut off`);
    const length = readI32BE(data, p);
    p += 4;
    if (length <= 0) throw corrupt(`${what}: length ${length} (want > 0)`);
    if (length > end - p) throw corrupt(`${what}: ${length} bytes run past the payload end`);
    blocks.push(rawBlock(data, p, p + length, what));
    p += length;
  }
  return blocks;
}

function rawBlock(data: Uint8Array, start: number, end: number, what: string): SnappyBlock {
  let length = 0;
  for (let i = 0, p = start; ; i++, p++) {
    if (p >= end) throw corrupt(`${what}: the length preamble is cut off`);
    if (i === 5) throw corrupt(`${what}: the length preamble is longer than 5 bytes`);
    const b = data[p]!;
    length += (b & 0x7f) * 2 ** (7 * i);
    if (b < 0x80) break;
  }
  if (length > 0xffffffff) throw corrupt(`${what}: uncompressed length ${length} is beyond 2^32 - 1`);
  return { start, end, length };
}

/** Checks a snappy payload's structure without decompressing it (see snappyBlocks). */
export function checkSnappyPayload(data: Uint8Array, start = 0, end: number = data.length): void {
  snappyBlocks(data, start, end);
}

/**
 * Decompresses a snappy payload (xerial or one raw block), at most `outputBytesMax` bytes (else
 * MESSAGE_TOO_LARGE, decided from the blocks' length preambles before decompressing).
 */
export function snappyDecompress(data: Uint8Array, outputBytesMax: number): Buffer {
  const blocks = snappyBlocks(data);
  let total = 0;
  for (const b of blocks) total += b.length;
  if (total > outputBytesMax)
    throw rillError("MESSAGE_TOO_LARGE", `snappy: decompressed payload of ${total} bytes exceeds ${outputBytesMax}`);
  if (blocks.length === 1) return uncompressBlock(data, blocks[0]!, 0);
  const out = Buffer.allocUnsafe(total);
  let o = 0;
  for (let i = 0; i < blocks.length; i++) o += uncompressBlock(data, blocks[i]!, i).copy(out, o);
  return out;
}

function uncompressBlock(data: Uint8Array, b: SnappyBlock, i: number): Buffer {
  let out: Buffer;
  const snappyBlockUncompress = snappy().uncompressSync; // outside the try: a missing package is not corruption
  try {
    out = snappyBlockUncompress(data.subarray(b.start, b.end), SNAPPY_OUTPUT) as Buffer;
  } catch (e: unknown) {
    throw corrupt(`block ${i}: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (out.length !== b.length) throw corrupt(`block ${i}: decoded ${out.length} bytes, its preamble says ${b.length}`);
  return out;
}

/** Compresses `data` in the xerial framing, 32 KiB of input per chunk (what snappy-java writes). */
export function snappyCompressXerial(data: Uint8Array): Buffer {
  const chunks: Buffer[] = [Buffer.from(XERIAL_MAGIC), u32be(1), u32be(1)];
  let total = XERIAL_HEADER_BYTES;
  const snappyBlockCompress = snappy().compressSync;
  for (let p = 0; p < data.length; p += XERIAL_CHUNK_BYTES) {
    const block = snappyBlockCompress(data.subarray(p, Math.min(data.length, p + XERIAL_CHUNK_BYTES)), SNAPPY_OUTPUT);
    chunks.push(u32be(block.length), block);
    total += 4 + block.length;
  }
  return Buffer.concat(chunks, total);
}

function u32be(v: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(v, 0);
  return b;
}

function readI32BE(b: Uint8Array, p: number): number {
  return (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;
}
