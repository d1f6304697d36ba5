/**
 * lz4DecompressFrameView, the LZ4 frame reader produce validation uses (blocks decoded into one
 * reused buffer: by liblz4 under Bun, lz4-napi elsewhere; lz4-liblz4.test.ts runs this file under
 * Bun too): the same output as lz4DecompressFrame and lz4-napi for every frame (ours, the lz4
 * CLI's golden frames, seeded data), and for truncated or corrupt input a specific CORRUPT_MESSAGE
 * naming the fault (MESSAGE_TOO_LARGE past the output bound), never another exception.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { uncompressSync } from "lz4-napi";
import { RillError, rillError } from "../../../src/base/errors.ts";
import { xxhash32 } from "../../../src/base/xxhash32.ts";
import {
  decompressTransient,
  Compression,
  LZ4_BLOCK_BYTES,
  LZ4_SCRATCH_KEEP_BYTES,
  lz4CompressFrame,
  lz4DecompressFrame,
  lz4DecompressFrameView,
} from "../../../src/protocol/compression.ts";
import { encodeBatch, type ProduceChecks, validateProducedBatch } from "../../../src/protocol/record-batch.ts";
import { badBatches, batchAround, TS } from "../../fixtures/bad-batches.ts";
import { goldenPath, lz4Content, lz4IncompressibleContent, patternBytes } from "../../golden/fixtures.ts";

/** The RillError `fn` throws (fails the test when it throws something else or nothing). */
function rillErrorOf(fn: () => unknown): RillError {
  let thrown: unknown;
  try {
    fn();
  } catch (e: unknown) {
    thrown = e;
  }
  expect(thrown, "expected a RillError").toBeInstanceOf(RillError);
  return thrown as RillError;
}

function expectRill(fn: () => unknown, name: string, msg: RegExp): void {
  const e = rillErrorOf(fn);
  expect(e.kind.name, e.message).toBe(name);
  expect(e.message).toMatch(msg);
}

/** Deterministic generator (xorshift32); tests print their seed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

/** Records-like text: short repeats, long repeats (runs of one byte) and fresh bytes mixed. */
function mixed(n: number, seed: number): Buffer {
  const r = rng(seed);
  const out = Buffer.alloc(n);
  let i = 0;
  while (i < n) {
    const kind = Math.floor(r() * 4);
    const len = Math.min(n - i, 1 + Math.floor(r() * (kind === 3 ? 300 : 40)));
    for (let k = 0; k < len; k++) {
      out[i + k] = kind === 0 ? Math.floor(r() * 256) : kind === 1 ? 97 + ((i + k) % 7) : kind === 2 ? 46 : 48 + Math.floor(r() * 10);
    }
    i += len;
  }
  return out;
}

describe("lz4DecompressFrameView: the frame into a reused buffer", () => {
  it("gives what the lz4-napi path gives, for our frames of every size and both checksum options", () => {
    const sizes = [0, 1, 15, 1000, LZ4_BLOCK_BYTES - 1, LZ4_BLOCK_BYTES, LZ4_BLOCK_BYTES + 1, 3 * LZ4_BLOCK_BYTES + 17, 1 << 20];
    for (const n of sizes) {
      for (const data of [mixed(n, n + 1), patternBytes(n, 3), Buffer.alloc(n, 0x2e)]) {
        for (const opts of [{}, { blockChecksums: true, contentChecksum: true }]) {
          const f = lz4CompressFrame(data, opts);
          expect(lz4DecompressFrameView(f).equals(data), `size ${n}`).toBe(true);
          expect(lz4DecompressFrame(f).equals(data), `size ${n}`).toBe(true);
        }
      }
    }
  });

  it("reads the reference lz4 CLI's golden frames: linked blocks, 256 KiB blocks, checksums, stored blocks", () => {
    const content = lz4Content();
    const cases: Array<[string, Buffer]> = [
      ["cli-independent-content-checksum.lz4", content],
      ["cli-linked-block-checksums-content-size.lz4", content],
      ["cli-linked-no-checksum.lz4", content],
      ["cli-256k-blocks-no-checksum.lz4", content],
      ["cli-incompressible.lz4", lz4IncompressibleContent()],
    ];
    for (const [file, want] of cases) {
      const frame = readFileSync(goldenPath(`lz4/${file}`));
      expect(lz4DecompressFrameView(frame).equals(want), file).toBe(true);
      // Inside a larger buffer, as a batch's payload is.
      const framed = Buffer.concat([Buffer.alloc(61, 1), frame, Buffer.alloc(9, 2)]);
      expect(lz4DecompressFrameView(framed, 61, 61 + frame.length).equals(want), `${file} at 61`).toBe(true);
    }
  });

  it("a linked frame read as independent fails: block 1's matches may not reach into block 0", () => {
    const f = Buffer.from(readFileSync(goldenPath("lz4/cli-linked-block-checksums-content-size.lz4")));
    f[4] = f[4]! | 0x20;
    f[14] = (xxhash32(f, 0, 4, 14) >>> 8) & 0xff;
    expectRill(
      () => lz4DecompressFrameView(f),
      "CORRUPT_MESSAGE",
      // lz4-napi (Node) names the bad offset; liblz4 (Bun, lz4-liblz4.ts) the input byte.
      /lz4 frame: block 1: (the offset to copy is not contained in the decompressed buffer|malformed LZ4 block \(liblz4 error at input byte \d+ of \d+\))/,
    );
  });

  it("reuses its buffer up to LZ4_SCRATCH_KEEP_BYTES; a larger frame gets a buffer of its own, not kept", () => {
    const small = mixed(100_000, 1);
    const big = mixed(LZ4_SCRATCH_KEEP_BYTES + 3 * LZ4_BLOCK_BYTES, 2);
    const fs = lz4CompressFrame(small);
    const a = lz4DecompressFrameView(fs);
    const b = lz4DecompressFrameView(fs);
    expect(b.buffer).toBe(a.buffer); // the same memory: no allocation per call
    const v = lz4DecompressFrameView(lz4CompressFrame(big));
    expect(v.equals(big)).toBe(true);
    const c = lz4DecompressFrameView(fs);
    expect(c.equals(small)).toBe(true);
    expect(c.buffer).not.toBe(v.buffer);
    expect(lz4DecompressFrameView(fs).buffer).toBe(c.buffer); // and is reused again
    expect(c.buffer.byteLength).toBeLessThanOrEqual(LZ4_SCRATCH_KEEP_BYTES);
  });

  it("every truncation and seeded corruption of a frame is CORRUPT_MESSAGE or the same bytes as lz4-napi", () => {
    const seed = 0x14a2;
    console.log(`lz4 frame view corruption: seed ${seed}`);
    const r = rng(seed);
    const data = mixed(3 * LZ4_BLOCK_BYTES + 500, 9);
    const good = lz4CompressFrame(data);
    for (let n = 0; n < good.length; n += 97) {
      expectRill(() => lz4DecompressFrameView(good.subarray(0, n)), "CORRUPT_MESSAGE", /lz4 frame: /);
    }
    let agreed = 0;
    for (let c = 0; c < 300; c++) {
      const f = Buffer.from(good);
      for (let m = 1 + Math.floor(r() * 3); m > 0; m--) f[11 + Math.floor(r() * (f.length - 15))] = Math.floor(r() * 256);
      let mine: Buffer | RillError;
      try {
        mine = Buffer.from(lz4DecompressFrameView(f));
      } catch (e: unknown) {
        expect(e, `case ${c} (seed ${seed})`).toBeInstanceOf(RillError);
        expect((e as RillError).kind.name).toBe("CORRUPT_MESSAGE");
        continue;
      }
      // Decoded: lz4-napi's block decoder must decode it to the same bytes (or refuse where it
      // is stricter). Under Bun the view decodes with liblz4, so this compares two decoders.
      try {
        expect(mine.equals(napiReference(f)), `case ${c} (seed ${seed})`).toBe(true);
        agreed++;
      } catch (e: unknown) {
        expect(e, `case ${c}`).toBeInstanceOf(RillError);
      }
    }
    expect(agreed).toBeGreaterThan(0);
  });

  it("output past outputBytesMax is MESSAGE_TOO_LARGE", () => {
    const f = lz4CompressFrame(Buffer.alloc(200_000, 0x2e));
    expectRill(() => lz4DecompressFrameView(f, 0, f.length, 100_000), "MESSAGE_TOO_LARGE", /exceeds 100000 bytes/);
    expect(lz4DecompressFrameView(f, 0, f.length, 200_000).length).toBe(200_000);
  });

  it("decompressTransient: LZ4 through the view, the other codecs as decompress", () => {
    const data = mixed(150_000, 4);
    expect(decompressTransient(Compression.LZ4, lz4CompressFrame(data)).equals(data)).toBe(true);
    expect(decompressTransient(Compression.NONE, data)).toBe(data);
  });
});

/**
 * A frame of independent blocks without checksums (what lz4CompressFrame writes) decoded block by
 * block by lz4-napi's `uncompressSync` alone: the reference the view is compared with.
 */
function napiReference(f: Buffer): Buffer {
  if (f[4] !== 0x60 || f[5] !== 0x40) throw new Error("napiReference reads FLG 0x60, BD 0x40 frames only");
  const parts: Buffer[] = [];
  let p = 7;
  for (;;) {
    const field = f.readUInt32LE(p);
    p += 4;
    if (field === 0) break;
    const size = field & 0x7fffffff;
    if (p + size > f.length) throw rillError("CORRUPT_MESSAGE", "block runs past the frame");
    if (field >>> 31 === 1) parts.push(f.subarray(p, p + size));
    else {
      const input = Buffer.alloc(4 + size);
      input.writeUInt32LE(LZ4_BLOCK_BYTES, 0);
      f.copy(input, 4, p, p + size);
      try {
        parts.push(uncompressSync(input));
      } catch (e: unknown) {
        throw rillError("CORRUPT_MESSAGE", String(e));
      }
    }
    p += size;
  }
  return Buffer.concat(parts);
}

/** An LZ4 frame as Kafka writes it (FLG 0x60, BD 0x40) around the given raw blocks. */
function frameOf(...blocks: Buffer[]): Buffer {
  const head = Buffer.from([0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0]);
  head[6] = (xxhash32(head, 0, 4, 6) >>> 8) & 0xff;
  const parts: Buffer[] = [head];
  for (const b of blocks) {
    const size = Buffer.alloc(4);
    size.writeUInt32LE(b.length);
    parts.push(size, b);
  }
  parts.push(Buffer.alloc(4));
  return Buffer.concat(parts);
}

describe("lz4DecompressFrameView: corrupt blocks inside a well-formed frame", () => {
  it("a crafted valid block decodes (the frame builder is right)", () => {
    // "abcd", then a 4-byte match at offset 4, then the last literals "efghijkl": the format's
    // end-of-block rules (the last 5 bytes literals, the last match 12 bytes or more before the
    // end) hold, which liblz4 enforces and lz4-napi does not.
    const block = [0x40, 0x61, 0x62, 0x63, 0x64, 0x04, 0x00, 0x80, ...Buffer.from("efghijkl")];
    const f = frameOf(Buffer.from(block));
    expect(lz4DecompressFrameView(f).toString()).toBe("abcdabcdefghijkl");
    expect(lz4DecompressFrame(f).toString()).toBe("abcdabcdefghijkl");
  });

  it("truncated block, literals past its end, offset 0, offset before the output, match length cut off: CORRUPT_MESSAGE for block 0", () => {
    const cases: Array<[string, number[]]> = [
      ["literal length cut off", [0xf0]],
      ["literals past the block end", [0x50, 0x61, 0x62]],
      ["match offset cut off", [0x10, 0x61, 0x01]],
      ["offset 0", [0x10, 0x61, 0x00, 0x00, 0x00]],
      ["offset before the output start", [0x10, 0x61, 0x09, 0x00, 0x00]],
      ["match length cut off", [0x1f, 0x61, 0x01, 0x00]],
      ["match past the block max", [0x1f, 0x61, 0x01, 0x00, ...new Array<number>(300).fill(0xff), 0x00, 0x00]],
    ];
    for (const [what, bytes] of cases) {
      const f = frameOf(Buffer.from(bytes));
      const e = rillErrorOf(() => lz4DecompressFrameView(f));
      expect(e.kind.name, what).toBe("CORRUPT_MESSAGE");
      expect(e.message, what).toMatch(/^lz4 frame: block 0: /);
    }
  });

  it("a corrupt second block names block 1", () => {
    const good = Buffer.from([0x30, 0x61, 0x62, 0x63]);
    expectRill(() => lz4DecompressFrameView(frameOf(good, Buffer.from([0x50, 0x61]))), "CORRUPT_MESSAGE", /^lz4 frame: block 1: /);
  });
});

describe("produce validation through the reused buffer", () => {
  const FULL: ProduceChecks = { validation: "full", decompressedBytesMax: 64 << 20 };
  const validate = (b: Buffer) => validateProducedBatch(b, 0, b.length, FULL, false);
  const recordsOf = (n: number, size: number) =>
    Array.from({ length: n }, (_, i) => ({ key: `k${i}`, value: patternBytes(size, i), timestampMs: TS }));

  it("one batch's bytes never leak into the next: good, bad, huge, good again", () => {
    const good = encodeBatch(recordsOf(1000, 100), { compression: Compression.LZ4 });
    const huge = encodeBatch(recordsOf(60, 100_000), { compression: Compression.LZ4 }); // 6 MB of records: past the kept size
    expect(validate(good).recordCount).toBe(1000);
    expectRill(() => validate(badBatches.hugeKeyLengthLz4()), "CORRUPT_MESSAGE", /key of 1000000 bytes runs past the record end/);
    expect(validate(good).recordCount).toBe(1000);
    expect(validate(huge).recordCount).toBe(60);
    expect(validate(good).recordCount).toBe(1000);
  });

  it("a frame holding fewer bytes than the records claim, right after a longer one: RECORD_COUNT_MISMATCH, not the old bytes", () => {
    const long = encodeBatch(recordsOf(1000, 100), { compression: Compression.LZ4 });
    expect(validate(long).recordCount).toBe(1000);
    // The first 10 records of `long`'s content, but a header that says 1000 records.
    const content = lz4DecompressFrame(long, 61, long.length);
    let p = 0;
    for (let r = 0; r < 10; r++) {
      let len = 0;
      let shift = 0;
      let b: number;
      let q = p;
      do {
        b = content[q++]!;
        len |= (b & 0x7f) << shift;
        shift += 7;
      } while (b >= 0x80);
      p = q + ((len >>> 1) ^ -(len & 1));
    }
    const short = batchAround(lz4CompressFrame(content.subarray(0, p)), 1000, Compression.LZ4);
    expectRill(() => validate(short), "RECORD_COUNT_MISMATCH", /records end after 10/);
  });
});
