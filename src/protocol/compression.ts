/**
 * Compression codecs of Kafka's RecordBatch v2: none, gzip, snappy (compression-snappy.ts), LZ4
 * (below) and zstd (compression-zstd.ts); codec numbers 5-7 are rejected with
 * UNSUPPORTED_COMPRESSION_TYPE. zstd loads asynchronously: await `initCodecs()` once before the
 * first zstd batch (the broker does at start, the SDK before it sends or reads).
 *
 * LZ4 is the LZ4 *frame* format, as Kafka writes it (KafkaLZ4BlockOutputStream): the frame is
 * written and read here by hand around lz4-napi's *block* functions, because lz4-napi's own frame
 * API measured 2-7x slower (see "Memory" below: that gap shows in synchronous loops; with the event
 * loop turning, its frame functions run at block speed too). Writing the frame here also gives
 * Kafka's exact bytes and lets validateBatch check a frame's structure without decompressing it.
 * The frame, as written (https://github.com/lz4/lz4/blob/dev/doc/lz4_Frame_format.md):
 *
 * ```
 *   magic     u32 LE  0x184D2204           04 22 4D 18
 *   FLG       u8      0x60                 version 01, block independence; bit 4 block checksums,
 *                                          bit 3 content size, bit 2 content checksum, bit 0 dict id
 *   BD        u8      0x40                 block max size: 4 = 64 KiB, 5 = 256 KiB, 6 = 1 MiB, 7 = 4 MiB
 *   [content size u64 LE]                  when FLG bit 3
 *   [dict id  u32 LE]                      when FLG bit 0 (rejected: Kafka never uses one)
 *   HC        u8      (xxh32(FLG..end of descriptor, seed 0) >> 8) & 0xff
 *   blocks:   size u32 LE (high bit set: stored uncompressed), data, [xxh32(data) u32 LE]
 *   end mark  u32     0
 *   [content checksum u32 LE]              xxh32 of the whole content, when FLG bit 2
 * ```
 *
 * What Rill writes is what Kafka's Java producer writes: FLG 0x60, BD 0x40 (64 KiB independent
 * blocks), no checksums, no content size. The reader accepts every flag except a dictionary id,
 * including dependent ("linked") blocks, which liblz4 writes by default.
 *
 * lz4-napi's block functions behave as lz4_flex's `compress_prepend_size` and
 * `decompress_size_prepended`: `compressSync` returns a 4-byte little-endian *uncompressed* size
 * followed by a raw LZ4 block, and `uncompressSync` expects that prefix, reads it as the output
 * capacity, and returns only the bytes actually produced. A frame block has no such prefix, so the
 * reader copies each block behind a 4-byte capacity (the block max size) into a scratch buffer.
 * The capacity is allocated before decoding (a prefix of 0xffffffff took 22 s), so it is never
 * taken from the wire.
 *
 * lz4-napi, snappy (compression-snappy.ts) and zstd's WebAssembly (compression-zstd.ts) are loaded on
 * first use (base/optional-package.ts): the SDK's npm package has them as optional peer
 * dependencies, so an application that installs none of them uses none and gzip, and a batch of
 * a codec whose package is missing throws UNSUPPORTED_COMPRESSION_TYPE naming the package
 * (`codecUnavailable` tells beforehand). The broker depends on all three.
 *
 * Memory (measured, Node 20 and Bun 1.4): the native memory behind the Buffers that
 * `compressSync` and the frame functions return is freed by napi finalizers that run only when the
 * event loop turns. A synchronous loop of 20,000 64 KiB compressions held 500 MiB to 2.5 GiB of RSS
 * and ran 3-4x slower (page faults) than the same loop yielding every 16 calls (~1.2 GB/s).
 * `uncompressSync` does not show this. Callers that compress many batches in one go (compaction)
 * should yield to the event loop between batches.
 */
import { gunzipSync, gzipSync } from "node:zlib";
import { rillError } from "../base/errors.ts";
import { optionalPackage, optionalPackageMissing } from "../base/optional-package.ts";
import { xxhash32 } from "../base/xxhash32.ts";
import { liblz4 } from "./lz4-liblz4.ts";
import { checkSnappyPayload, snappyCompressXerial, snappyDecompress } from "./compression-snappy.ts";
import { checkZstdPayload, zstdCompress, zstdDecompress, zstdReady } from "./compression-zstd.ts";

/** Compression codecs, as numbered in bits 0-2 of a RecordBatch's attributes. */
export const Compression = {
  NONE: 0,
  GZIP: 1,
  SNAPPY: 2,
  LZ4: 3,
  ZSTD: 4,
} as const;

/** One of the `Compression` codec numbers (0-4). */
export type CompressionCodec = (typeof Compression)[keyof typeof Compression];

/** Default bound on the bytes one decompression may produce. */
export const DECOMPRESSED_BYTES_MAX_DEFAULT = 1 << 30;

const CODEC_NAMES = ["none", "gzip", "snappy", "lz4", "zstd"];

/** A codec number's name ("lz4"), or "codec N" for numbers outside the table. */
export function codecName(codec: number): string {
  return CODEC_NAMES[codec] ?? `codec ${codec}`;
}

/** True for the codecs Rill can read and write: Kafka's five, none, gzip, snappy, lz4 and zstd (0-4). */
export function isSupportedCodec(codec: number): boolean {
  return Number.isInteger(codec) && codec >= Compression.NONE && codec <= Compression.ZSTD;
}

/** What UNSUPPORTED_COMPRESSION_TYPE messages list. */
export const SUPPORTED_CODECS_TEXT = "supported: none, gzip, snappy, lz4, zstd";

function unsupported(codec: number): never {
  throw rillError("UNSUPPORTED_COMPRESSION_TYPE", `compression: ${codecName(codec)} is not supported (${SUPPORTED_CODECS_TEXT})`);
}

/**
 * Why `codec` cannot be used here — its optional npm package is not installed (see above) — or
 * null when it can (none, gzip, and the others with their package). Looks the package up without
 * loading it.
 */
export function codecUnavailable(codec: number): string | null {
  const pkg = CODEC_PACKAGES[codec];
  if (pkg === undefined) return null;
  const missing = optionalPackageMissing(pkg);
  return missing === null ? null : `${codecName(codec)}: ${missing}`;
}

/** The optional npm package behind each codec that has one. */
const CODEC_PACKAGES: Record<number, string> = {
  [Compression.SNAPPY]: "snappy",
  [Compression.LZ4]: "lz4-napi",
  [Compression.ZSTD]: "@bokuweb/zstd-wasm",
};

type Lz4Napi = typeof import("lz4-napi");

/** lz4-napi, loaded on the first LZ4 block; UNSUPPORTED_COMPRESSION_TYPE when it is not installed. */
function lz4Napi(): Lz4Napi {
  const p = optionalPackage<Lz4Napi>("lz4-napi");
  if (p.module === null) throw rillError("UNSUPPORTED_COMPRESSION_TYPE", `lz4: ${p.missing}`);
  return p.module;
}

/**
 * Loads the codecs that load asynchronously (zstd's WebAssembly); resolves at once after the
 * first time. Until it has resolved, zstd calls throw UNSUPPORTED_COMPRESSION_TYPE saying so.
 */
export function initCodecs(): Promise<void> {
  return zstdReady();
}

/** Compresses `data` with `codec`. NONE returns `data` itself. */
export function compress(codec: number, data: Buffer): Buffer {
  switch (codec) {
    case Compression.NONE:
      return data;
    case Compression.GZIP:
      return gzipSync(data);
    case Compression.SNAPPY:
      return snappyCompressXerial(data);
    case Compression.LZ4:
      return lz4CompressFrame(data);
    case Compression.ZSTD:
      return zstdCompress(data);
    default:
      return unsupported(codec);
  }
}

/**
 * Decompresses `data` with `codec`; throws CORRUPT_MESSAGE naming what is wrong when the input is
 * not valid for the codec, and MESSAGE_TOO_LARGE past `outputBytesMax`. NONE returns `data`.
 */
export function decompress(codec: number, data: Buffer, outputBytesMax = DECOMPRESSED_BYTES_MAX_DEFAULT): Buffer {
  switch (codec) {
    case Compression.NONE:
      return data;
    case Compression.GZIP:
      return gunzip(data, outputBytesMax);
    case Compression.SNAPPY:
      return snappyDecompress(data, outputBytesMax);
    case Compression.LZ4:
      return lz4DecompressFrame(data, 0, data.length, outputBytesMax);
    case Compression.ZSTD:
      return zstdDecompress(data, outputBytesMax);
    default:
      return unsupported(codec);
  }
}

/**
 * decompress for a caller that only reads the content before its next call (produce validation):
 * LZ4 decodes into a buffer reused from call to call (lz4DecompressFrameView) and the result is a
 * view of it, valid until the next call; the other codecs return what decompress returns.
 */
export function decompressTransient(codec: number, data: Buffer, outputBytesMax = DECOMPRESSED_BYTES_MAX_DEFAULT): Buffer {
  if (codec === Compression.LZ4) return lz4DecompressFrameView(data, 0, data.length, outputBytesMax);
  return decompress(codec, data, outputBytesMax);
}

/**
 * Checks what can be checked of a compressed payload without decompressing it: for gzip the
 * member header; for snappy the xerial chunks and each block's length preamble; for LZ4 and zstd
 * the whole frame structure (see checkLz4Frame, walkZstdFrames). Throws CORRUPT_MESSAGE.
 */
export function checkCompressedPayload(codec: number, data: Uint8Array, start = 0, end: number = data.length): void {
  switch (codec) {
    case Compression.NONE:
      return;
    case Compression.GZIP:
      return checkGzipHeader(data, start, end);
    case Compression.SNAPPY:
      return checkSnappyPayload(data, start, end);
    case Compression.LZ4:
      return checkLz4Frame(data, start, end);
    case Compression.ZSTD:
      return checkZstdPayload(data, start, end);
    default:
      return unsupported(codec);
  }
}

// ---------------------------------------------------------------------------------------------
// gzip

function gunzip(data: Buffer, outputBytesMax: number): Buffer {
  try {
    return gunzipSync(data, { maxOutputLength: Math.min(outputBytesMax, 2 ** 32 - 1) });
  } catch (e: unknown) {
    const code = (e as { code?: unknown }).code;
    if (code === "ERR_BUFFER_TOO_LARGE") {
      throw rillError("MESSAGE_TOO_LARGE", `gzip: decompressed payload exceeds ${outputBytesMax} bytes`);
    }
    throw rillError("CORRUPT_MESSAGE", `gzip: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function checkGzipHeader(data: Uint8Array, start: number, end: number): void {
  // 10-byte member header + 8-byte trailer (CRC32, ISIZE) at least.
  if (end - start < 18) throw corrupt("gzip", `payload of ${end - start} bytes is shorter than a gzip member`);
  if (data[start] !== 0x1f || data[start + 1] !== 0x8b) throw corrupt("gzip", "bad magic (want 1f 8b)");
  if (data[start + 2] !== 8) throw corrupt("gzip", `compression method ${data[start + 2]} (want 8, deflate)`);
  if ((data[start + 3]! & 0xe0) !== 0) throw corrupt("gzip", "reserved flag bits are set");
}

// ---------------------------------------------------------------------------------------------
// LZ4 frame

/** The LZ4 frame magic number (little-endian on the wire: 04 22 4D 18). */
export const LZ4_FRAME_MAGIC = 0x184d2204;
/** Block size Rill (and Kafka) writes: 64 KiB (BD 0x40). */
export const LZ4_BLOCK_BYTES = 64 * 1024;

const FLG_VERSION_MASK = 0xc0;
const FLG_VERSION_01 = 0x40;
const FLG_BLOCK_INDEPENDENCE = 0x20;
const FLG_BLOCK_CHECKSUM = 0x10;
const FLG_CONTENT_SIZE = 0x08;
const FLG_CONTENT_CHECKSUM = 0x04;
const FLG_RESERVED = 0x02;
const FLG_DICT_ID = 0x01;
const BLOCK_UNCOMPRESSED = 0x80000000;
/** Back-reference window of dependent blocks. */
const LZ4_WINDOW_BYTES = 64 * 1024;

function corrupt(what: string, detail: string): Error {
  return rillError("CORRUPT_MESSAGE", `${what}: ${detail}`);
}

/** Options of lz4CompressFrame. Defaults write exactly what Kafka's Java producer writes. */
export interface Lz4FrameOptions {
  /** Append xxh32 of the whole content (FLG bit 2). Default false. */
  contentChecksum?: boolean;
  /** Append xxh32 of each block (FLG bit 4). Default false. */
  blockChecksums?: boolean;
}

/**
 * Writes `data` as one LZ4 frame of independent 64 KiB blocks. A block that does not shrink is
 * stored uncompressed (high bit of its size), as the reference implementation does.
 */
export function lz4CompressFrame(data: Buffer, opts: Lz4FrameOptions = {}): Buffer {
  const contentChecksum = opts.contentChecksum === true;
  const blockChecksums = opts.blockChecksums === true;
  const blockCount = Math.ceil(data.length / LZ4_BLOCK_BYTES);
  // Each entry is lz4-napi's [u32 LE uncompressed size][raw block], or null: store the chunk as is.
  const compressed = new Array<Buffer | null>(blockCount);
  const lz4BlockCompress = lz4Napi().compressSync;
  let total = 7 + 4 + (contentChecksum ? 4 : 0);
  for (let i = 0; i < blockCount; i++) {
    const chunk = chunkOf(data, i);
    const c = lz4BlockCompress(chunk);
    const shrinks = c.length - 4 < chunk.length;
    compressed[i] = shrinks ? c : null;
    total += 4 + (shrinks ? c.length - 4 : chunk.length) + (blockChecksums ? 4 : 0);
  }
  const out = Buffer.allocUnsafe(total);
  out.writeUInt32LE(LZ4_FRAME_MAGIC, 0);
  out[4] =
    FLG_VERSION_01 | FLG_BLOCK_INDEPENDENCE | (blockChecksums ? FLG_BLOCK_CHECKSUM : 0) | (contentChecksum ? FLG_CONTENT_CHECKSUM : 0);
  out[5] = 0x40; // BD: 64 KiB blocks
  out[6] = (xxhash32(out, 0, 4, 6) >>> 8) & 0xff;
  let p = 7;
  for (let i = 0; i < blockCount; i++) {
    const c = compressed[i]!;
    const dataStart = p + 4;
    if (c === null) {
      const chunk = chunkOf(data, i);
      out.writeUInt32LE((chunk.length | BLOCK_UNCOMPRESSED) >>> 0, p);
      p = dataStart + chunk.copy(out, dataStart);
    } else {
      out.writeUInt32LE(c.length - 4, p);
      p = dataStart + c.copy(out, dataStart, 4);
    }
    if (blockChecksums) {
      out.writeUInt32LE(xxhash32(out, 0, dataStart, p), p);
      p += 4;
    }
  }
  out.writeUInt32LE(0, p);
  if (contentChecksum) out.writeUInt32LE(xxhash32(data), p + 4);
  return out;
}

function chunkOf(data: Buffer, i: number): Buffer {
  return data.subarray(i * LZ4_BLOCK_BYTES, Math.min(data.length, (i + 1) * LZ4_BLOCK_BYTES));
}

/** The parsed frame descriptor of an LZ4 frame. */
interface Lz4Frame {
  flags: number;
  blockBytesMax: number;
  /** Content size from the descriptor, or -1 when absent. */
  contentSize: number;
  /** Position of the first block's size field. */
  blocksStart: number;
}

function readLz4Descriptor(data: Uint8Array, start: number, end: number): Lz4Frame {
  const what = "lz4 frame";
  if (end - start < 7) throw corrupt(what, `payload of ${end - start} bytes is shorter than a frame header`);
  if (readU32LE(data, start) !== LZ4_FRAME_MAGIC) {
    throw corrupt(what, `bad magic 0x${readU32LE(data, start).toString(16)} (want 0x184d2204)`);
  }
  const flg = data[start + 4]!;
  const bd = data[start + 5]!;
  if ((flg & FLG_VERSION_MASK) !== FLG_VERSION_01) throw corrupt(what, `FLG version ${flg >>> 6} (want 1)`);
  if ((flg & FLG_RESERVED) !== 0) throw corrupt(what, "FLG reserved bit 1 is set");
  if ((flg & FLG_DICT_ID) !== 0) throw corrupt(what, "FLG dictionary id is set (frames with a dictionary are not supported)");
  if ((bd & 0x8f) !== 0) throw corrupt(what, "BD reserved bits are set");
  const bsid = (bd >>> 4) & 0x07;
  if (bsid < 4) throw corrupt(what, `BD block max size id ${bsid} (want 4-7)`);
  let p = start + 6;
  let contentSize = -1;
  if ((flg & FLG_CONTENT_SIZE) !== 0) {
    if (end - p < 9) throw corrupt(what, "header is truncated in the content size");
    const hi = readU32LE(data, p + 4) >>> 0;
    if (hi >= 0x200000) throw corrupt(what, "content size is beyond 2^53 bytes");
    contentSize = hi * 2 ** 32 + (readU32LE(data, p) >>> 0);
    p += 8;
  }
  if (p >= end) throw corrupt(what, "header is truncated before its checksum");
  const hc = (xxhash32(data, 0, start + 4, p) >>> 8) & 0xff;
  if (data[p] !== hc) throw corrupt(what, `header checksum 0x${data[p]!.toString(16)} (want 0x${hc.toString(16)})`);
  return { flags: flg, blockBytesMax: 1 << (8 + 2 * bsid), contentSize, blocksStart: p + 1 };
}

/**
 * Walks one LZ4 frame's blocks by their size fields, without decompressing: checks the header,
 * its checksum, that every block fits its max size, the block checksums when present, and that the
 * blocks, end mark and content checksum end exactly at `end`. Throws CORRUPT_MESSAGE.
 */
export function checkLz4Frame(data: Uint8Array, start = 0, end: number = data.length): void {
  const f = readLz4Descriptor(data, start, end);
  const blockChecksums = (f.flags & FLG_BLOCK_CHECKSUM) !== 0;
  let p = f.blocksStart;
  for (let i = 0; ; i++) {
    if (end - p < 4) throw corrupt("lz4 frame", `block ${i} size is cut off at byte ${p - start} of ${end - start} (no end mark)`);
    const field = readU32LE(data, p) >>> 0;
    p += 4;
    if (field === 0) break;
    const size = field & 0x7fffffff;
    if (size > f.blockBytesMax) throw corrupt("lz4 frame", `block ${i} size ${size} exceeds the block max ${f.blockBytesMax}`);
    const next = p + size + (blockChecksums ? 4 : 0);
    if (next > end) throw corrupt("lz4 frame", `block ${i} of ${size} bytes runs past the payload end`);
    if (blockChecksums) checkBlockChecksum(data, p, size, i);
    p = next;
  }
  const tail = (f.flags & FLG_CONTENT_CHECKSUM) !== 0 ? 4 : 0;
  if (end - p !== tail) {
    throw corrupt("lz4 frame", `${end - p} bytes follow the end mark (want ${tail})`);
  }
}

function checkBlockChecksum(data: Uint8Array, p: number, size: number, i: number): void {
  const want = readU32LE(data, p + size) >>> 0;
  const got = xxhash32(data, 0, p, p + size);
  if (want !== got) throw corrupt("lz4 frame", `block ${i} checksum 0x${want.toString(16)} != computed 0x${got.toString(16)}`);
}

let scratch: Buffer = Buffer.allocUnsafe(4 + LZ4_BLOCK_BYTES);

/** Decompresses one raw LZ4 block of at most `capacity` output bytes, with an optional dictionary. */
function decompressBlock(data: Uint8Array, p: number, size: number, capacity: number, dict: Buffer | null, i: number): Buffer {
  if (scratch.length < 4 + size) scratch = Buffer.allocUnsafe(4 + Math.max(size, scratch.length * 2));
  scratch.writeUInt32LE(capacity, 0);
  scratch.set(data.subarray(p, p + size), 4);
  const lz4BlockUncompress = lz4Napi().uncompressSync; // outside the try: a missing package is not corruption
  try {
    const input = scratch.subarray(0, 4 + size);
    return dict === null ? lz4BlockUncompress(input) : lz4BlockUncompress(input, dict);
  } catch (e: unknown) {
    throw corrupt("lz4 frame", `block ${i}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/**
 * Decompresses one LZ4 frame in `data[start, end)` (see checkLz4Frame for what is checked), and
 * verifies the block checksums, content size and content checksum when the frame carries them.
 * Decodes as lz4DecompressFrameView does and copies the content out of the reused buffer (a frame
 * too large for that buffer decodes into one of its own, returned as it is).
 */
export function lz4DecompressFrame(
  data: Uint8Array,
  start = 0,
  end: number = data.length,
  outputBytesMax = DECOMPRESSED_BYTES_MAX_DEFAULT,
): Buffer {
  const b = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const view = lz4DecompressFrameView(b, start, end, outputBytesMax);
  return view.buffer === viewScratch.buffer ? Buffer.from(view) : view;
}

// ---------------------------------------------------------------------------------------------
// LZ4 frame into a reused buffer (produce validation)

/**
 * Output kept between calls of lz4DecompressFrameView: grown by doubling to the largest frame
 * seen, up to LZ4_SCRATCH_KEEP_BYTES; a larger frame decodes into a buffer of its own that is
 * garbage once the caller drops the view, so one huge batch does not pin its size in memory.
 */
let viewScratch: Buffer = Buffer.allocUnsafe(256 * 1024);
/** Largest output buffer lz4DecompressFrameView keeps between calls. */
export const LZ4_SCRATCH_KEEP_BYTES = 4 * 1024 * 1024;

/**
 * Decompresses one LZ4 frame in `data[start, end)` with lz4DecompressFrame's checks and errors,
 * but into a buffer reused from call to call, and returns a view of it: valid only until the next
 * call, for a caller that reads the content and lets it go (produce validation walks the records
 * and stores the producer's compressed bytes). Each block's output is copied into that buffer as it
 * comes, so a frame of n blocks costs lz4-napi's n block outputs and no joined copy (no
 * Buffer.concat, no window concat for linked blocks: the window is a view of the output so far).
 *
 * Under Bun with the system's liblz4 (lz4-liblz4.ts) each block decodes straight into that
 * buffer: no allocation and no copy at all, about 4x faster than lz4-napi per batch (measured).
 * Elsewhere lz4-napi decodes each block into memory of its own and it is copied in: lz4-napi
 * cannot decode into a caller's buffer. A block decoder written in TypeScript that did (no
 * allocation at all) was measured against lz4-napi, 1,000 x 100 B records per batch, CPU time:
 * 13-16 M records/s on Bun and 8 M on Node, against 35-38 M for lz4-napi into this buffer and
 * 25-29 M for lz4-napi joined with Buffer.concat (the path before). So the blocks stay native.
 */
export function lz4DecompressFrameView(
  data: Buffer,
  start = 0,
  end: number = data.length,
  outputBytesMax = DECOMPRESSED_BYTES_MAX_DEFAULT,
): Buffer {
  const f = readLz4Descriptor(data, start, end);
  const blockChecksums = (f.flags & FLG_BLOCK_CHECKSUM) !== 0;
  const linked = (f.flags & FLG_BLOCK_INDEPENDENCE) === 0;
  const native = liblz4();
  let out = viewScratch;
  let o = 0;
  let p = f.blocksStart;
  for (let i = 0; ; i++) {
    const field = lz4BlockField(data, p, end, f, i);
    p += 4;
    if (field === 0) break;
    const size = field & 0x7fffffff;
    if (o + f.blockBytesMax > out.length) {
      // o <= outputBytesMax here (checked after each block), so the cap still leaves room.
      let n = out.length * 2;
      while (n < o + f.blockBytesMax) n *= 2;
      const grown = Buffer.allocUnsafe(Math.min(n, outputBytesMax + f.blockBytesMax));
      out.copy(grown, 0, 0, o);
      out = grown;
      if (grown.length <= LZ4_SCRATCH_KEEP_BYTES) viewScratch = grown;
    }
    if ((field & BLOCK_UNCOMPRESSED) !== 0) {
      o += data.copy(out, o, p, p + size);
    } else if (native !== null) {
      const n = native.decode(data, p, size, out, o, f.blockBytesMax, linked ? Math.min(o, LZ4_WINDOW_BYTES) : 0);
      if (n < 0) throw corrupt("lz4 frame", `block ${i}: malformed LZ4 block (liblz4 error at input byte ${-n - 1} of ${size})`);
      o += n;
    } else {
      const window = linked && o > 0 ? out.subarray(Math.max(0, o - LZ4_WINDOW_BYTES), o) : null;
      o += decompressBlock(data, p, size, f.blockBytesMax, window, i).copy(out, o);
    }
    if (o > outputBytesMax) throw rillError("MESSAGE_TOO_LARGE", `lz4 frame: decompressed payload exceeds ${outputBytesMax} bytes`);
    p += size + (blockChecksums ? 4 : 0);
  }
  checkLz4FrameEnd(data, p, end, f, o, () => xxhash32(out, 0, 0, o));
  return out.subarray(0, o);
}

/**
 * The size field of block `i` of frame `f` at `data[p]` (0: the end mark), checked: the field
 * is there, the block fits the frame's block max and the payload, and its checksum (when the
 * frame has block checksums) is right.
 */
function lz4BlockField(data: Uint8Array, p: number, end: number, f: { flags: number; blockBytesMax: number }, i: number): number {
  if (end - p < 4) throw corrupt("lz4 frame", `block ${i} size is cut off (no end mark)`);
  const field = readU32LE(data, p) >>> 0;
  if (field === 0) return 0;
  const size = field & 0x7fffffff;
  const blockChecksums = (f.flags & FLG_BLOCK_CHECKSUM) !== 0;
  if (size > f.blockBytesMax) throw corrupt("lz4 frame", `block ${i} size ${size} exceeds the block max ${f.blockBytesMax}`);
  if (p + 4 + size + (blockChecksums ? 4 : 0) > end) throw corrupt("lz4 frame", `block ${i} of ${size} bytes runs past the payload end`);
  if (blockChecksums) checkBlockChecksum(data, p + 4, size, i);
  return field;
}

/**
 * What follows the end mark at `data[p]`: the content size (when the frame gives it) matches
 * `total`, the content checksum (when present) matches `checksum()`, and nothing follows.
 */
function checkLz4FrameEnd(
  data: Uint8Array,
  p: number,
  end: number,
  f: { flags: number; contentSize: number },
  total: number,
  checksum: () => number,
): void {
  if (f.contentSize >= 0 && f.contentSize !== total) {
    throw corrupt("lz4 frame", `content size field says ${f.contentSize} bytes, blocks hold ${total}`);
  }
  if ((f.flags & FLG_CONTENT_CHECKSUM) !== 0) {
    if (end - p < 4) throw corrupt("lz4 frame", "content checksum is cut off");
    const want = readU32LE(data, p) >>> 0;
    const got = checksum();
    if (want !== got) throw corrupt("lz4 frame", `content checksum 0x${want.toString(16)} != computed 0x${got.toString(16)}`);
    p += 4;
  }
  if (p !== end) throw corrupt("lz4 frame", `${end - p} bytes follow the end of the frame`);
}

function readU32LE(b: Uint8Array, p: number): number {
  return b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24);
}
