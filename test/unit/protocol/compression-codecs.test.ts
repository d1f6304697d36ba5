/**
 * snappy (xerial framing and raw blocks) and zstd (frames with and without a content size, as
 * the reference `zstd` command writes them): round trips, structure checks, corrupt data and
 * decompression bounds.
 */
import { execFileSync } from "node:child_process";
import { compressSync as snappyRawCompress } from "snappy";
import { beforeAll, describe, expect, it } from "vitest";
import { RillError } from "../../../src/base/errors.ts";
import { isXerial, snappyBlocks, XERIAL_CHUNK_BYTES, XERIAL_MAGIC } from "../../../src/protocol/compression-snappy.ts";
import { walkZstdFrames } from "../../../src/protocol/compression-zstd.ts";
import {
  checkCompressedPayload,
  Compression,
  compress,
  decompress,
  initCodecs,
  isSupportedCodec,
} from "../../../src/protocol/compression.ts";
import { patternBytes } from "../../golden/fixtures.ts";

beforeAll(() => initCodecs());

function errorOf(fn: () => unknown): RillError {
  try {
    fn();
  } catch (e: unknown) {
    expect(e).toBeInstanceOf(RillError);
    return e as RillError;
  }
  throw new Error("expected a RillError, nothing was thrown");
}

function expectRill(fn: () => unknown, name: string, msg: RegExp): void {
  const e = errorOf(fn);
  expect(e.kind.name, e.message).toBe(name);
  expect(e.message).toMatch(msg);
}

/** Text-like bytes: compressible, not trivially. */
function text(n: number): Buffer {
  const words = ["page_view", "user", "click", "/items/", "session", '{"seq":', "}\n"];
  const r = patternBytes(Math.max(1, n), 5);
  const parts: string[] = [];
  let len = 0;
  for (let i = 0; len < n; i++) {
    const w = `${words[r[i % r.length]! % words.length]}${r[(i * 7) % r.length]}`;
    parts.push(w);
    len += w.length;
  }
  return Buffer.from(parts.join("")).subarray(0, n);
}

const SIZES = [0, 1, 100, XERIAL_CHUNK_BYTES - 1, XERIAL_CHUNK_BYTES, XERIAL_CHUNK_BYTES + 1, 200_000, 1 << 20];

describe("codecs 0-4 are Kafka's five, all supported", () => {
  it("isSupportedCodec takes 0-4 and nothing else", () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7, -1, 1.5].map(isSupportedCodec)).toEqual([
      true,
      true,
      true,
      true,
      true,
      false,
      false,
      false,
      false,
      false,
    ]);
  });
});

describe("snappy", () => {
  it("writes the xerial framing (magic, version 1, compat 1, 32 KiB chunks) and reads it back", () => {
    for (const n of SIZES) {
      const data = text(n);
      const c = compress(Compression.SNAPPY, data);
      expect(c.subarray(0, 8).equals(XERIAL_MAGIC)).toBe(true);
      expect(c.readInt32BE(8)).toBe(1);
      expect(c.readInt32BE(12)).toBe(1);
      const blocks = snappyBlocks(c);
      expect(blocks).toHaveLength(Math.ceil(n / XERIAL_CHUNK_BYTES));
      expect(blocks.reduce((a, b) => a + b.length, 0)).toBe(n);
      checkCompressedPayload(Compression.SNAPPY, c);
      expect(decompress(Compression.SNAPPY, c).equals(data), `${n} bytes`).toBe(true);
    }
  });

  it("reads one raw snappy block (what librdkafka produces)", () => {
    for (const n of [1, 100, 200_000]) {
      const data = text(n);
      const raw = snappyRawCompress(data);
      expect(isXerial(raw)).toBe(false);
      checkCompressedPayload(Compression.SNAPPY, raw);
      expect(decompress(Compression.SNAPPY, raw).equals(data)).toBe(true);
    }
  });

  it("refuses corrupt data with CORRUPT_MESSAGE naming snappy", () => {
    const c = compress(Compression.SNAPPY, text(100_000));
    const garbage = Buffer.from(c);
    garbage.fill(0xee, 16 + 4 + 3, 16 + 4 + 200); // inside the first block, after its preamble
    expectRill(() => decompress(Compression.SNAPPY, garbage), "CORRUPT_MESSAGE", /^snappy: block 0: /);
    expectRill(
      () => decompress(Compression.SNAPPY, c.subarray(0, c.length - 10)),
      "CORRUPT_MESSAGE",
      /^snappy: xerial chunk \d+: \d+ bytes run past/,
    );
    const badLength = Buffer.from(c);
    badLength.writeInt32BE(-5, 16);
    expectRill(() => checkCompressedPayload(Compression.SNAPPY, badLength), "CORRUPT_MESSAGE", /^snappy: xerial chunk 0: length -5/);
    const badVersion = Buffer.from(c);
    badVersion.writeInt32BE(0, 8);
    expectRill(() => checkCompressedPayload(Compression.SNAPPY, badVersion), "CORRUPT_MESSAGE", /^snappy: xerial header: version 0/);
    expectRill(
      () => decompress(Compression.SNAPPY, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff])),
      "CORRUPT_MESSAGE",
      /^snappy: raw block: the length preamble is longer than 5 bytes/,
    );
    expectRill(
      () => decompress(Compression.SNAPPY, Buffer.alloc(0)),
      "CORRUPT_MESSAGE",
      /^snappy: raw block: the length preamble is cut off/,
    );
    // A raw block shorter than its preamble says.
    const raw = snappyRawCompress(text(1000));
    expectRill(() => decompress(Compression.SNAPPY, raw.subarray(0, raw.length - 5)), "CORRUPT_MESSAGE", /^snappy: block 0: /);
  });

  it("refuses output over the bound from the length preambles, before decompressing", () => {
    const bomb = compress(Compression.SNAPPY, Buffer.alloc(8 << 20));
    expect(bomb.length).toBeLessThan(500 << 10);
    expectRill(
      () => decompress(Compression.SNAPPY, bomb, 1 << 20),
      "MESSAGE_TOO_LARGE",
      /^snappy: decompressed payload of 8388608 bytes exceeds 1048576/,
    );
    // A preamble that claims 4 GiB in a 10-byte block is refused as too large, not allocated.
    const liar = Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0, 1, 2, 3, 4]);
    expectRill(() => decompress(Compression.SNAPPY, liar, 1 << 20), "MESSAGE_TOO_LARGE", /exceeds 1048576/);
  });
});

describe("zstd", () => {
  it("round-trips one frame with its content size", () => {
    for (const n of SIZES) {
      const data = text(n);
      const c = compress(Compression.ZSTD, data);
      const frames = walkZstdFrames(c);
      expect(frames).toHaveLength(1);
      expect(frames[0]!.contentSize).toBe(n);
      checkCompressedPayload(Compression.ZSTD, c);
      expect(decompress(Compression.ZSTD, c).equals(data), `${n} bytes`).toBe(true);
    }
  });

  it("reads what the zstd command writes from a pipe: no content size, a checksum (as a streaming producer writes)", () => {
    const data = text(700_000);
    const c = execFileSync("zstd", ["-c", "-q", "-3"], { input: data, maxBuffer: 64 << 20 });
    const frames = walkZstdFrames(c);
    expect(frames[0]!.contentSize).toBe(-1);
    expect(frames[0]!.outputBound).toBeGreaterThanOrEqual(data.length);
    expect(decompress(Compression.ZSTD, c).equals(data)).toBe(true);
  });

  it("reads concatenated frames and skips skippable ones", () => {
    const a = text(50_000);
    const b = text(70_000).reverse();
    const skippable = Buffer.concat([Buffer.from([0x50, 0x2a, 0x4d, 0x18]), Buffer.from([3, 0, 0, 0]), Buffer.from("abc")]);
    const c = Buffer.concat([compress(Compression.ZSTD, a), skippable, compress(Compression.ZSTD, b)]);
    expect(walkZstdFrames(c).map((f) => f.skippable)).toEqual([false, true, false]);
    expect(decompress(Compression.ZSTD, c).equals(Buffer.concat([a, b]))).toBe(true);
  });

  it("refuses corrupt data with CORRUPT_MESSAGE naming zstd", () => {
    const c = compress(Compression.ZSTD, text(100_000));
    expectRill(
      () => decompress(Compression.ZSTD, Buffer.from("not a zstd frame")),
      "CORRUPT_MESSAGE",
      /^zstd: frame 0: bad magic 0x20746f6e/,
    );
    expectRill(
      () => decompress(Compression.ZSTD, c.subarray(0, c.length - 7)),
      "CORRUPT_MESSAGE",
      /^zstd: frame 0: block 0 of \d+ bytes runs past the payload end/,
    );
    expectRill(() => decompress(Compression.ZSTD, Buffer.alloc(0)), "CORRUPT_MESSAGE", /^zstd: the payload is empty/);
    expectRill(
      () => decompress(Compression.ZSTD, Buffer.concat([c, Buffer.from([1, 2])])),
      "CORRUPT_MESSAGE",
      /^zstd: frame 1: 2 bytes, too few/,
    );
    const garbled = Buffer.from(c);
    const blocksAt = frameHeaderEnd(c);
    garbled.fill(0xee, blocksAt + 3, blocksAt + 300); // the first block's content; its header kept
    checkCompressedPayload(Compression.ZSTD, garbled); // the structure still holds
    expectRill(() => decompress(Compression.ZSTD, garbled), "CORRUPT_MESSAGE", /^zstd: frame 0: \w+/);
    const reserved = Buffer.from(c);
    reserved[4]! |= 0x08;
    expectRill(() => checkCompressedPayload(Compression.ZSTD, reserved), "CORRUPT_MESSAGE", /^zstd: frame 0: descriptor reserved bit 3/);
  });

  it("refuses a content size that its blocks cannot hold, and a dictionary", () => {
    // Single segment, 2-byte content size: 256 + 0xffff, but one raw block of 4 bytes.
    const liar = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x60, 0xff, 0xff, 0x21, 0x00, 0x00, 0x61, 0x62, 0x63, 0x64]);
    expectRill(
      () => checkCompressedPayload(Compression.ZSTD, liar),
      "CORRUPT_MESSAGE",
      /content size field says 65791 bytes, its blocks hold at most 4/,
    );
    const withDict = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x21, 0x07, 0x01, 0x21, 0x00, 0x00, 0x61, 0x62, 0x63, 0x64]);
    expectRill(() => checkCompressedPayload(Compression.ZSTD, withDict), "CORRUPT_MESSAGE", /uses dictionary 7/);
  });

  it("refuses output over the bound: from the content size before decompressing, else when decoding passes it", () => {
    const zeros = Buffer.alloc(64 << 20);
    const bomb = compress(Compression.ZSTD, zeros);
    expect(bomb.length).toBeLessThan(64 << 10);
    expectRill(() => decompress(Compression.ZSTD, bomb, 1 << 20), "MESSAGE_TOO_LARGE", /^zstd: decompressed payload exceeds 1048576 bytes/);
    const streamed = execFileSync("zstd", ["-c", "-q"], { input: zeros, maxBuffer: 64 << 20 });
    expect(walkZstdFrames(streamed)[0]!.contentSize).toBe(-1);
    expectRill(
      () => decompress(Compression.ZSTD, streamed, 1 << 20),
      "MESSAGE_TOO_LARGE",
      /^zstd: decompressed payload exceeds 1048576 bytes/,
    );
    // Under the bound, both decode.
    expect(decompress(Compression.ZSTD, streamed, 64 << 20).length).toBe(64 << 20);
  });
});

/** Where the first block header of a single-frame payload written by compress() starts. */
function frameHeaderEnd(c: Buffer): number {
  const fhd = c[4]!;
  const single = (fhd & 0x20) !== 0;
  const fcsFlag = fhd >>> 6;
  const fcs = fcsFlag === 0 ? (single ? 1 : 0) : [0, 2, 4, 8][fcsFlag]!;
  return 5 + (single ? 0 : 1) + [0, 1, 2, 4][fhd & 3]! + fcs;
}
