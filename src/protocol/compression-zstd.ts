/**
 * Kafka's zstd codec (attributes codec 4): the payload is one or more zstd frames (RFC 8878), as
 * zstd-jni's ZstdOutputStream (Java client) and librdkafka write them — usually one frame, often
 * without the content size field (a streaming encoder does not know it).
 *
 * The codec is `@bokuweb/zstd-wasm`: the reference C library compiled to WebAssembly, so it loads
 * on Node, Bun and Deno alike. It is imported (dynamically) and its one asynchronous `init()` (it
 * compiles the .wasm) run when this module is imported; `zstdReady()` is the promise of it, which
 * the broker awaits before it serves and the SDK before it sends or reads a batch. A call before it has settled throws
 * UNSUPPORTED_COMPRESSION_TYPE saying so (never a wrong answer), as every call does when the
 * package is not installed (an optional peer dependency of the SDK's package, see compression.ts).
 *
 * Its one-shot `decompress` writes into a buffer of the frame's declared content size (or of a
 * caller-given capacity when the frame has none) inside the wasm heap; it trusts that number. So
 * every frame is walked here first, without decompressing (`walkFrames`), and its output is
 * bounded before a byte is allocated:
 *
 * ```
 *   frame:   magic u32 LE 0xFD2FB528 (28 B5 2F FD)
 *            descriptor u8     bits 7-6 content size field size (0: 0 or 1 byte, 1: 2, 2: 4, 3: 8),
 *                              bit 5 single segment, bit 3 reserved (0), bit 2 content checksum,
 *                              bits 1-0 dictionary id field size (0, 1, 2, 4)
 *            [window u8]       absent when single segment: 2^(10 + exponent) + mantissa eighths
 *            [dictionary id]   must be 0: Kafka uses no dictionaries
 *            [content size]    LE; the 2-byte form is value + 256; single segment: also the window
 *            blocks:           header u24 LE: bit 0 last, bits 1-2 type (0 raw, 1 RLE,
 *                              2 compressed, 3 reserved), bits 3-23 size; then size bytes
 *                              (RLE: 1 byte, regenerated size times)
 *            [checksum u32]    when the descriptor says so
 *   skippable frame: magic 0x184D2A5? LE, size u32 LE, size bytes (ignored)
 * ```
 *
 * A block regenerates at most min(window, 128 KiB) bytes (raw and RLE: exactly its size), so a
 * frame's output is bounded by the sum over its blocks, and a declared content size above that
 * bound is a lie (CORRUPT_MESSAGE). Each frame is decompressed with capacity min(content size or
 * bound, what remains of the caller's maximum); a frame that needs more is MESSAGE_TOO_LARGE.
 */
import { rillError } from "../base/errors.ts";

const ZSTD_MAGIC = 0xfd2fb528;
const SKIPPABLE_MAGIC_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;
const BLOCK_BYTES_MAX = 128 * 1024;
/** Largest output one frame may decompress into: the wasm heap is at most 2 GiB. */
const FRAME_OUTPUT_BYTES_MAX = 1 << 30;
/** ZSTD_error_dstSize_tooSmall, as the wasm build returns it (a negated size_t). */
const ZSTD_ERROR_DST_SIZE_TOO_SMALL = -70;
/** Level Rill compresses at (zstd's default). */
export const ZSTD_LEVEL = 3;

/** Names of the zstd error codes a corrupt frame produces (zstd_errors.h). */
const ZSTD_ERRORS: Record<number, string> = {
  1: "generic",
  10: "prefix_unknown",
  12: "version_unsupported",
  14: "frameParameter_unsupported",
  16: "frameParameter_windowTooLarge",
  20: "corruption_detected",
  22: "checksum_wrong",
  24: "literals_headerWrong",
  30: "dictionary_corrupted",
  32: "dictionary_wrong",
  70: "dstSize_tooSmall",
  72: "srcSize_wrong",
};

type ZstdWasm = typeof import("@bokuweb/zstd-wasm");
type InitState = { ready: false; error: unknown } | { ready: true; codec: ZstdWasm };
let state: InitState = { ready: false, error: null };

/** Imports @bokuweb/zstd-wasm and compiles its WebAssembly; settles `state`. */
async function load(): Promise<void> {
  let codec: ZstdWasm;
  try {
    codec = await import("@bokuweb/zstd-wasm");
  } catch (e: unknown) {
    const code = (e as { code?: unknown }).code;
    state = {
      ready: false,
      error:
        code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND"
          ? "the npm package @bokuweb/zstd-wasm is not installed (npm install @bokuweb/zstd-wasm)"
          : e,
    };
    return;
  }
  try {
    await codec.init();
    state = { ready: true, codec };
  } catch (e: unknown) {
    state = { ready: false, error: e };
  }
}

/** Loading starts when this module is imported (load never rejects: it settles `state`). */
const loading: Promise<void> = load();

/**
 * Resolves once the zstd codec is loaded (it starts loading when this module is imported);
 * rejects with UNSUPPORTED_COMPRESSION_TYPE if it cannot load (its package is not installed, or
 * it fails).
 */
export async function zstdReady(): Promise<void> {
  await loading;
  if (!state.ready) throw notLoaded();
}

function notLoaded(): Error {
  const why = state.ready ? "" : state.error === null ? "it is still loading (await initCodecs() first)" : String(state.error);
  return rillError("UNSUPPORTED_COMPRESSION_TYPE", `zstd: the codec is not available: ${why}`);
}

function corrupt(detail: string): Error {
  return rillError("CORRUPT_MESSAGE", `zstd: ${detail}`);
}

/** One frame of a payload, as walkFrames found it. */
interface ZstdFrame {
  start: number;
  end: number;
  /** The declared content size, or -1. */
  contentSize: number;
  /** Most bytes its blocks can regenerate. */
  outputBound: number;
  /** A skippable frame (no content). */
  skippable: boolean;
}

/**
 * Walks the frames of `data[start, end)` by their headers and block headers, without
 * decompressing, and returns them. Throws CORRUPT_MESSAGE naming what is wrong.
 */
export function walkZstdFrames(data: Uint8Array, start = 0, end: number = data.length): ZstdFrame[] {
  if (end <= start) throw corrupt("the payload is empty (want at least one frame)");
  const frames: ZstdFrame[] = [];
  let p = start;
  while (p < end) {
    const frame = walkFrame(data, p, end, frames.length);
    frames.push(frame);
    p = frame.end;
  }
  return frames;
}

function walkFrame(data: Uint8Array, p: number, end: number, n: number): ZstdFrame {
  if (end - p < 4) throw corrupt(`frame ${n}: ${end - p} bytes, too few for a magic number`);
  const magic = readU32LE(data, p);
  if ((magic & SKIPPABLE_MAGIC_MASK) >>> 0 === SKIPPABLE_MAGIC) {
    if (end - p < 8) throw corrupt(`frame ${n}: skippable frame header is cut off`);
    const size = readU32LE(data, p + 4);
    if (size > end - p - 8) throw corrupt(`frame ${n}: skippable frame of ${size} bytes runs past the payload end`);
    return { start: p, end: p + 8 + size, contentSize: 0, outputBound: 0, skippable: true };
  }
  if (magic !== ZSTD_MAGIC) throw corrupt(`frame ${n}: bad magic 0x${magic.toString(16)} (want 0xfd2fb528)`);
  const h = readFrameHeader(data, p + 4, end, n);
  let q = h.blocksStart;
  let bound = 0;
  const blockMax = Math.min(h.windowBytes, BLOCK_BYTES_MAX);
  for (let i = 0; ; i++) {
    if (end - q < 3) throw corrupt(`frame ${n}: block ${i} header is cut off (no last block)`);
    const bh = data[q]! | (data[q + 1]! << 8) | (data[q + 2]! << 16);
    q += 3;
    const last = (bh & 1) !== 0;
    const type = (bh >>> 1) & 3;
    const size = bh >>> 3;
    if (type === 3) throw corrupt(`frame ${n}: block ${i} has the reserved type 3`);
    if (size > blockMax) throw corrupt(`frame ${n}: block ${i} of ${size} bytes exceeds the block max ${blockMax}`);
    const stored = type === 1 ? 1 : size;
    if (stored > end - q) throw corrupt(`frame ${n}: block ${i} of ${stored} bytes runs past the payload end`);
    bound += type === 2 ? blockMax : size;
    q += stored;
    if (last) break;
  }
  if (h.checksum) {
    if (end - q < 4) throw corrupt(`frame ${n}: content checksum is cut off`);
    q += 4;
  }
  if (h.contentSize > bound) {
    throw corrupt(`frame ${n}: content size field says ${h.contentSize} bytes, its blocks hold at most ${bound}`);
  }
  return { start: p, end: q, contentSize: h.contentSize, outputBound: bound, skippable: false };
}

interface FrameHeader {
  windowBytes: number;
  contentSize: number;
  checksum: boolean;
  blocksStart: number;
}

function readFrameHeader(data: Uint8Array, p: number, end: number, n: number): FrameHeader {
  if (p >= end) throw corrupt(`frame ${n}: header is cut off`);
  const fhd = data[p]!;
  const fcsFlag = fhd >>> 6;
  const singleSegment = (fhd & 0x20) !== 0;
  if ((fhd & 0x08) !== 0) throw corrupt(`frame ${n}: descriptor reserved bit 3 is set`);
  const didBytes = [0, 1, 2, 4][fhd & 3]!;
  const fcsBytes = fcsFlag === 0 ? (singleSegment ? 1 : 0) : [0, 2, 4, 8][fcsFlag]!;
  let q = p + 1;
  const headerEnd = q + (singleSegment ? 0 : 1) + didBytes + fcsBytes;
  if (headerEnd > end) throw corrupt(`frame ${n}: header is cut off`);
  let windowBytes = 0;
  if (!singleSegment) {
    const wd = data[q++]!;
    const base = 2 ** (10 + (wd >>> 3));
    windowBytes = base + (base / 8) * (wd & 7);
  }
  let dictId = 0;
  for (let i = 0; i < didBytes; i++) dictId += data[q + i]! * 2 ** (8 * i);
  if (dictId !== 0) throw corrupt(`frame ${n}: uses dictionary ${dictId} (Kafka's zstd uses none)`);
  q += didBytes;
  let contentSize = -1;
  if (fcsBytes > 0) {
    contentSize = 0;
    for (let i = 0; i < fcsBytes; i++) contentSize += data[q + i]! * 2 ** (8 * i);
    if (fcsBytes === 2) contentSize += 256;
  }
  if (singleSegment) windowBytes = contentSize;
  return { windowBytes, contentSize, checksum: (fhd & 0x04) !== 0, blocksStart: headerEnd };
}

/** Checks the frame structure of a zstd payload without decompressing it (see walkZstdFrames). */
export function checkZstdPayload(data: Uint8Array, start = 0, end: number = data.length): void {
  walkZstdFrames(data, start, end);
}

/**
 * Decompresses the zstd frames of `data`, at most `outputBytesMax` bytes in all (else
 * MESSAGE_TOO_LARGE, found from the frame headers before decompressing where they tell).
 */
export function zstdDecompress(data: Uint8Array, outputBytesMax: number): Buffer {
  if (!state.ready) throw notLoaded();
  const codec = state.codec;
  const frames = walkZstdFrames(data);
  const parts: Buffer[] = [];
  let total = 0;
  for (let n = 0; n < frames.length; n++) {
    const f = frames[n]!;
    if (f.skippable) continue;
    const left = outputBytesMax - total;
    if (f.contentSize > left) throw tooLarge(outputBytesMax);
    if (f.contentSize > FRAME_OUTPUT_BYTES_MAX) throw tooLarge(FRAME_OUTPUT_BYTES_MAX);
    const wanted = f.contentSize >= 0 ? f.contentSize : f.outputBound;
    const capacity = Math.min(wanted, left, FRAME_OUTPUT_BYTES_MAX);
    const out = decompressFrame(codec, data.subarray(f.start, f.end), capacity, n, capacity < wanted, outputBytesMax);
    total += out.length;
    parts.push(out);
  }
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, total);
}

function decompressFrame(
  codec: ZstdWasm,
  frame: Uint8Array,
  capacity: number,
  n: number,
  clamped: boolean,
  outputBytesMax: number,
): Buffer {
  try {
    // The wasm codec uses the frame's content size as the capacity when the frame has one (it
    // was checked against the bound above), else `defaultHeapSize`.
    const out = codec.decompress(frame, { defaultHeapSize: Math.max(1, capacity) });
    return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  } catch (e: unknown) {
    const code = zstdErrorCode(e);
    if (clamped && code === ZSTD_ERROR_DST_SIZE_TOO_SMALL) throw tooLarge(outputBytesMax);
    const name = code === null ? String(e) : (ZSTD_ERRORS[-code] ?? `error ${-code}`);
    throw corrupt(`frame ${n}: ${name}`);
  }
}

/** The zstd error code in the wasm wrapper's message ("Failed to compress with code -20"). */
function zstdErrorCode(e: unknown): number | null {
  const m = /code (-?\d+)/.exec(e instanceof Error ? e.message : "");
  return m === null ? null : Number(m[1]);
}

function tooLarge(outputBytesMax: number): Error {
  return rillError("MESSAGE_TOO_LARGE", `zstd: decompressed payload exceeds ${outputBytesMax} bytes`);
}

/** Compresses `data` as one zstd frame (content size included) at ZSTD_LEVEL. */
export function zstdCompress(data: Uint8Array): Buffer {
  if (!state.ready) throw notLoaded();
  const out = state.codec.compress(data, ZSTD_LEVEL);
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}

function readU32LE(b: Uint8Array, p: number): number {
  return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
}
