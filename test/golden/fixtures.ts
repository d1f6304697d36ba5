/**
 * The deterministic inputs behind the golden files in this directory (see README.md): what the
 * record-batch goldens encode, and the content the LZ4 reference frames hold.
 */
import { fileURLToPath } from "node:url";
import type { EncodeOptions, RecordInput } from "../../src/protocol/record-batch.ts";

/** Absolute path of a file under test/golden. */
export function goldenPath(name: string): string {
  return fileURLToPath(new URL(name, import.meta.url));
}

/** First record's timestamp of the golden batches. */
export const GOLDEN_TS = 1_700_000_000_000;

/** A deterministic byte pattern (xorshift32), so goldens never depend on Math.random. */
export function patternBytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/**
 * The records of the record-batch goldens: headers (with empty and null values), a null key, a
 * tombstone, empty key and value, a timestamp before the first (negative delta), multi-byte
 * UTF-8, binary key bytes and a 300-byte value (two-byte length varints).
 */
export function goldenRecords(): RecordInput[] {
  return [
    {
      key: "user-1",
      value: '{"action":"login","ok":true}',
      headers: [
        { key: "trace-id", value: "4bf92f3577b34da6" },
        { key: "empty", value: "" },
        { key: "null-value", value: null },
      ],
      timestampMs: GOLDEN_TS,
    },
    { key: null, value: "no key", timestampMs: GOLDEN_TS + 1 },
    { key: "tomb", value: null, timestampMs: GOLDEN_TS + 2 },
    { key: "", value: "", timestampMs: GOLDEN_TS - 10 },
    { key: "ünïcödé-🔑", value: "välue ✓ 🚀", headers: [{ key: "ключ", value: "значение" }], timestampMs: GOLDEN_TS + 3 },
    { key: new Uint8Array([0, 1, 2, 255]), value: patternBytes(300, 11), timestampMs: GOLDEN_TS + 1000 },
  ];
}

/** Batch fields of the record-batch goldens: offsets and producer ids beyond 2^32. */
export const goldenOptions: EncodeOptions = {
  baseOffset: 1_234_567_890_123,
  partitionLeaderEpoch: 17,
  producerId: 987_654_321_012,
  producerEpoch: 5,
  baseSequence: 42,
};

/**
 * Content of the LZ4 reference frames: 72 KiB of JSON-ish lines, repeating across the 64 KiB
 * block boundary so dependent ("linked") blocks refer back into the block before them.
 */
export function lz4Content(): Buffer {
  const lines: string[] = [];
  const rand = patternBytes(4000, 5);
  for (let i = 0; i < 900; i++) {
    lines.push(`{"id":${i % 300},"user":"u${rand[i]!}","type":"${["click", "view", "buy"][rand[i + 1]! % 3]}","v":${rand[i + 2]!}}`);
  }
  const text = Buffer.from(lines.join("\n"));
  return Buffer.concat([text, text, text, text]).subarray(0, 72 * 1024);
}

/** Content of the incompressible LZ4 reference frame (its one block is stored uncompressed). */
export function lz4IncompressibleContent(): Buffer {
  return patternBytes(4096, 9);
}
