/**
 * Micro-benchmarks of the record-batch codec, CRC32C and LZ4, as suites for the runner
 * (bench/micro.ts). Nothing runs at import: `codecSuites()` builds the inputs and returns the
 * cases; each `fn` does `perOp` units of work (records or bytes) per call.
 *
 * For the runner: lz4-napi frees the native memory of the Buffers returned by `compressSync` and
 * its frame functions only from the event loop (deferred napi finalizers). Yield between cycles
 * (benchmark's `defer`/async mode, or a setImmediate every few ms), or the LZ4 compress and
 * lz4-napi frame suites measure page faults of a growing heap, not LZ4: 600 -> 160 MiB/s and
 * 2,500 -> 350 MiB/s in synchronous loops (measured). Measure CPU time where the machine is shared.
 */
import { compressFrameSync, decompressFrameSync } from "lz4-napi";
import { crc32c } from "../../src/base/crc32c.ts";
import { Compression, lz4CompressFrame, lz4DecompressFrame, lz4DecompressFrameView } from "../../src/protocol/compression.ts";
import {
  decodeRecords,
  encodeBatch,
  type ProduceChecks,
  type RecordInput,
  records,
  validateBatch,
  validateProducedBatch,
} from "../../src/protocol/record-batch.ts";

/** One benchmark case: `fn` processes `perOp` records or bytes. */
export interface CodecSuite {
  name: string;
  unit: "records" | "bytes";
  perOp: number;
  fn: () => void;
}

/** Records per batch in the batch suites. */
export const BATCH_RECORDS = 1000;
/** Value size of the batch suites. */
export const VALUE_BYTES = 100;
/** Input size of the CRC and LZ4 suites. */
export const BLOCK_BYTES = 1 << 20;

const NOW_MS = 1_700_000_000_000;

/** `produce.validation` full and structure, with the broker's default bound. */
const FULL_CHECKS: ProduceChecks = { validation: "full", decompressedBytesMax: 64 * 1024 * 1024 };
const STRUCTURE_CHECKS: ProduceChecks = { validation: "structure", decompressedBytesMax: 64 * 1024 * 1024 };

/** Deterministic pseudo-random generator (xorshift32), so every run measures the same bytes. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

const WORDS = ["click", "view", "purchase", "scroll", "signup", "logout", "search", "share"];

/** One JSON-ish event of exactly `size` characters (ASCII). */
function event(rand: () => number, i: number, size: number): string {
  const s =
    `{"id":${i},"user":"u${Math.floor(rand() * 5000)}","type":"${WORDS[Math.floor(rand() * WORDS.length)]}",` +
    `"ts":${NOW_MS + i},"v":${Math.floor(rand() * 1e6)},"p":"`;
  let pad = "";
  while (s.length + pad.length + 2 < size) pad += String.fromCharCode(97 + Math.floor(rand() * 26));
  return (s + pad + '"}').slice(0, size);
}

/** `n` records with short string keys and `size`-character JSON-ish string values. */
export function sampleRecords(n: number, size = VALUE_BYTES, seed = 42): RecordInput[] {
  const rand = rng(seed);
  return Array.from({ length: n }, (_, i) => ({ key: `key-${i % 100}`, value: event(rand, i, size), timestampMs: NOW_MS + i }));
}

/** About `bytes` of newline-separated JSON-ish events: realistic record data for LZ4. */
export function sampleText(bytes: number, seed = 7): Buffer {
  const rand = rng(seed);
  const parts: string[] = [];
  let total = 0;
  for (let i = 0; total < bytes; i++) {
    const e = event(rand, i, 100 + Math.floor(rand() * 60));
    parts.push(e);
    total += e.length + 1;
  }
  return Buffer.from(parts.join("\n")).subarray(0, bytes);
}

/** The codec suites. */
export function codecSuites(): CodecSuite[] {
  const input = sampleRecords(BATCH_RECORDS);
  const batch = encodeBatch(input, { nowMs: NOW_MS });
  const lz4Batch = encodeBatch(input, { nowMs: NOW_MS, compression: Compression.LZ4 });
  const text = sampleText(BLOCK_BYTES);
  const frame = lz4CompressFrame(text);
  const napiFrame = compressFrameSync(text);
  let sink = 0;
  const suites: CodecSuite[] = [
    {
      name: "batch encode (strings, 100 B values)",
      unit: "records",
      perOp: BATCH_RECORDS,
      fn: () => {
        sink += encodeBatch(input, { nowMs: NOW_MS }).length;
      },
    },
    {
      name: "batch encode + lz4",
      unit: "records",
      perOp: BATCH_RECORDS,
      fn: () => {
        sink += encodeBatch(input, { nowMs: NOW_MS, compression: Compression.LZ4 }).length;
      },
    },
    {
      name: "batch validate (header, CRC, record walk)",
      unit: "records",
      perOp: BATCH_RECORDS,
      fn: () => {
        sink += validateBatch(batch).recordCount;
      },
    },
    {
      name: "batch validate lz4 (header, CRC, frame walk)",
      unit: "records",
      perOp: BATCH_RECORDS,
      fn: () => {
        sink += validateBatch(lz4Batch).recordCount;
      },
    },
    {
      name: "produce validation full, lz4 (decompress, walk every record)",
      unit: "records",
      perOp: BATCH_RECORDS,
      fn: () => {
        sink += validateProducedBatch(lz4Batch, 0, lz4Batch.length, FULL_CHECKS, false).recordCount;
      },
    },
    {
      name: "produce validation structure, lz4",
      unit: "records",
      perOp: BATCH_RECORDS,
      fn: () => {
        sink += validateProducedBatch(lz4Batch, 0, lz4Batch.length, STRUCTURE_CHECKS, false).recordCount;
      },
    },
    {
      name: "lazy decode to offsets",
      unit: "records",
      perOp: BATCH_RECORDS,
      fn: () => {
        const c = records(batch);
        while (c.next()) sink += c.offset;
      },
    },
    {
      name: "lazy decode to offsets, lz4",
      unit: "records",
      perOp: BATCH_RECORDS,
      fn: () => {
        const c = records(lz4Batch);
        while (c.next()) sink += c.offset;
      },
    },
    {
      name: "materialised decode (views, headers)",
      unit: "records",
      perOp: BATCH_RECORDS,
      fn: () => {
        sink += decodeRecords(batch).length;
      },
    },
    {
      name: "decode to value strings",
      unit: "records",
      perOp: BATCH_RECORDS,
      fn: () => {
        const c = records(batch);
        while (c.next()) sink += c.valueString()!.length;
      },
    },
    {
      name: "crc32c 1 MiB",
      unit: "bytes",
      perOp: text.length,
      fn: () => {
        sink += crc32c(text);
      },
    },
    {
      name: "lz4 frame compress (block API)",
      unit: "bytes",
      perOp: text.length,
      fn: () => {
        sink += lz4CompressFrame(text).length;
      },
    },
    {
      name: "lz4 frame decompress (block API)",
      unit: "bytes",
      perOp: text.length,
      fn: () => {
        sink += lz4DecompressFrame(frame).length;
      },
    },
    {
      name: "lz4 frame decompress into the reused buffer (view)",
      unit: "bytes",
      perOp: text.length,
      fn: () => {
        sink += lz4DecompressFrameView(frame).length;
      },
    },
    {
      name: "lz4-napi compressFrameSync",
      unit: "bytes",
      perOp: text.length,
      fn: () => {
        sink += compressFrameSync(text).length;
      },
    },
    {
      name: "lz4-napi decompressFrameSync",
      unit: "bytes",
      perOp: text.length,
      fn: () => {
        sink += decompressFrameSync(napiFrame).length;
      },
    },
  ];
  // Keep `sink` observable so no engine can drop the work as dead code.
  suites.push({
    name: "sink",
    unit: "records",
    perOp: 0,
    fn: () => {
      if (sink === -1) console.log(sink);
    },
  });
  return suites.filter((s) => s.perOp > 0);
}
