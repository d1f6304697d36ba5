import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { compressFrameSync, compressSync, decompressFrameSync, uncompressSync } from "lz4-napi";
import { describe, expect, it } from "vitest";
import { RillError } from "../../../src/base/errors.ts";
import { xxhash32 } from "../../../src/base/xxhash32.ts";
import {
  checkCompressedPayload,
  checkLz4Frame,
  Compression,
  compress,
  decompress,
  LZ4_BLOCK_BYTES,
  lz4CompressFrame,
  lz4DecompressFrame,
  lz4DecompressFrameView,
} from "../../../src/protocol/compression.ts";
import { goldenPath, lz4Content, lz4IncompressibleContent, patternBytes } from "../../golden/fixtures.ts";

/** Asserts that `fn` throws a RillError with catalog name `name` and a message matching `msg`. */
function expectRill(fn: () => unknown, name: string, msg?: RegExp): void {
  let thrown: unknown;
  try {
    fn();
  } catch (e: unknown) {
    thrown = e;
  }
  expect(thrown, "expected a RillError").toBeInstanceOf(RillError);
  const e = thrown as RillError;
  expect(e.kind.name, e.message).toBe(name);
  if (msg) expect(e.message).toMatch(msg);
}

/** JSON-ish text of about `n` bytes. */
function text(n: number): Buffer {
  const parts: string[] = [];
  let len = 0;
  const r = patternBytes(n, 3);
  for (let i = 0; len < n; i++) {
    const s = `{"seq":${i},"user":"u${r[i % n]!}","event":"page_view","path":"/items/${r[(i + 1) % n]! * 7}"}\n`;
    parts.push(s);
    len += s.length;
  }
  return Buffer.from(parts.join("")).subarray(0, n);
}

/** Replaces frame header byte `i` and recomputes the header checksum (FLG and BD only). */
function withDescriptorByte(frame: Buffer, i: number, value: number): Buffer {
  const f = Buffer.from(frame);
  f[i] = value;
  f[6] = (xxhash32(f, 0, 4, 6) >>> 8) & 0xff;
  return f;
}

const SIZES = [0, 1, 15, 1000, LZ4_BLOCK_BYTES - 1, LZ4_BLOCK_BYTES, LZ4_BLOCK_BYTES + 1, 3 * LZ4_BLOCK_BYTES + 17, 1 << 20];

describe("lz4-napi block API (the contract the frame code relies on)", () => {
  it("compressSync prepends the uncompressed size (u32 LE) to a raw LZ4 block", () => {
    const data = text(5000);
    const c = compressSync(data);
    expect(c.readUInt32LE(0)).toBe(data.length);
    // The rest is a raw block: the reference decoder reads it inside a hand-made frame.
    const frame = Buffer.concat([Buffer.from([0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82]), u32le(c.length - 4), c.subarray(4), u32le(0)]);
    expect(decompressFrameSync(frame).equals(data)).toBe(true);
  });

  it("uncompressSync needs the size prefix, treats it as a capacity and returns what was produced", () => {
    const data = text(5000);
    const c = compressSync(data);
    // (Without the prefix it reads the block's first 4 bytes as the capacity and allocates that
    // much first: a prefix of 0xffffffff took 22 s. The frame reader always writes its own.)
    const roomy = Buffer.from(c);
    roomy.writeUInt32LE(LZ4_BLOCK_BYTES, 0);
    expect(uncompressSync(roomy).equals(data)).toBe(true);
    const tight = Buffer.from(c);
    tight.writeUInt32LE(data.length - 1, 0);
    expect(() => uncompressSync(tight)).toThrow();
  });
});

describe("lz4 frame: writing", () => {
  it("writes Kafka's header: magic, FLG 0x60 (v1, independent blocks), BD 0x40 (64 KiB), HC", () => {
    const f = lz4CompressFrame(text(100));
    expect(f.subarray(0, 7).toString("hex")).toBe("04224d18604082");
    expect((xxhash32(Buffer.from([0x60, 0x40])) >>> 8) & 0xff).toBe(0x82);
    expect(f.readUInt32LE(f.length - 4)).toBe(0); // end mark, no content checksum
  });

  it("writes an empty input as header + end mark", () => {
    const f = lz4CompressFrame(Buffer.alloc(0));
    expect(f.toString("hex")).toBe("04224d1860408200000000");
    expect(lz4DecompressFrame(f).length).toBe(0);
    expect(decompressFrameSync(f).length).toBe(0);
  });

  it("round-trips every size around the block boundaries", () => {
    for (const n of SIZES) {
      const data = text(n);
      const f = lz4CompressFrame(data);
      checkLz4Frame(f);
      expect(lz4DecompressFrame(f).equals(data), `size ${n}`).toBe(true);
      expect(f.length).toBeLessThan(n + 11 + 4 * Math.ceil(n / LZ4_BLOCK_BYTES) + 1);
    }
  });

  it("stores incompressible blocks uncompressed (high bit of the block size)", () => {
    const data = patternBytes(LZ4_BLOCK_BYTES + 100, 77);
    const f = lz4CompressFrame(data);
    expect(f.readUInt32LE(7)).toBe((0x80000000 | LZ4_BLOCK_BYTES) >>> 0);
    expect(f.length).toBe(7 + 4 + LZ4_BLOCK_BYTES + 4 + 100 + 4);
    expect(lz4DecompressFrame(f).equals(data)).toBe(true);
    expect(decompressFrameSync(f).equals(data)).toBe(true);
  });

  it("writes block and content checksums when asked", () => {
    const data = text(3 * LZ4_BLOCK_BYTES);
    const f = lz4CompressFrame(data, { blockChecksums: true, contentChecksum: true });
    expect(f[4]).toBe(0x60 | 0x10 | 0x04);
    expect(f.readUInt32LE(f.length - 4)).toBe(xxhash32(data));
    checkLz4Frame(f);
    expect(lz4DecompressFrame(f).equals(data)).toBe(true);
  });
});

describe("lz4 frame: interop", () => {
  it("frames we write decompress with lz4-napi's frame API", () => {
    for (const n of SIZES) {
      const data = text(n);
      expect(decompressFrameSync(lz4CompressFrame(data)).equals(data), `size ${n}`).toBe(true);
      expect(decompressFrameSync(lz4CompressFrame(data, { blockChecksums: true, contentChecksum: true })).equals(data)).toBe(true);
    }
  });

  it("frames lz4-napi writes decompress with ours (with and without checksums)", () => {
    for (const n of SIZES) {
      const data = text(n);
      expect(lz4DecompressFrame(compressFrameSync(data)).equals(data), `size ${n}`).toBe(true);
      const checked = compressFrameSync(data, { blockChecksums: true, contentChecksum: true });
      checkLz4Frame(checked);
      expect(lz4DecompressFrame(checked).equals(data)).toBe(true);
    }
  });

  it("reads the reference lz4 CLI's frames (test/golden/lz4): linked blocks, checksums, content size, stored blocks", () => {
    const content = lz4Content();
    const cases: Array<[string, Buffer, string]> = [
      ["cli-independent-content-checksum.lz4", content, "6440"],
      ["cli-linked-block-checksums-content-size.lz4", content, "5c40"],
      ["cli-linked-no-checksum.lz4", content, "4040"],
      ["cli-256k-blocks-no-checksum.lz4", content, "6050"],
      ["cli-incompressible.lz4", lz4IncompressibleContent(), "6440"],
    ];
    for (const [file, want, flgBd] of cases) {
      const frame = readFileSync(goldenPath(`lz4/${file}`));
      expect(frame.subarray(4, 6).toString("hex"), file).toBe(flgBd);
      checkLz4Frame(frame);
      expect(lz4DecompressFrame(frame).equals(want), file).toBe(true);
    }
  });

  it("needs the previous block as dictionary for linked blocks", () => {
    // The same frame with the independence bit set: block 1 refers back into block 0, so reading
    // it without the window fails (or yields bytes the content checksum rejects).
    const frame = readFileSync(goldenPath("lz4/cli-linked-block-checksums-content-size.lz4"));
    const f = Buffer.from(frame);
    f[4] = f[4]! | 0x20;
    f[14] = (xxhash32(f, 0, 4, 14) >>> 8) & 0xff; // descriptor: FLG, BD, 8-byte content size
    expectRill(() => lz4DecompressFrame(f), "CORRUPT_MESSAGE", /lz4 frame: (block 1|content checksum)/);
  });

  const cli = ["/usr/bin/lz4", "/usr/local/bin/lz4"].find((p) => existsSync(p));
  it.skipIf(cli === undefined)("frames we write decompress with the reference lz4 CLI", () => {
    for (const n of [0, 1000, 3 * LZ4_BLOCK_BYTES + 17]) {
      const data = Buffer.concat([text(n), patternBytes(n >> 2, 5)]);
      for (const opts of [{}, { blockChecksums: true, contentChecksum: true }]) {
        const out = execFileSync(cli!, ["-d", "-c", "-q"], { input: lz4CompressFrame(data, opts), maxBuffer: 1 << 24 });
        expect(out.equals(data), `size ${n}`).toBe(true);
      }
    }
  });
});

describe("lz4 frame: bad frames throw CORRUPT_MESSAGE naming the fault", () => {
  const data = text(2 * LZ4_BLOCK_BYTES + 500);
  const good = lz4CompressFrame(data, { blockChecksums: true, contentChecksum: true });
  const both = (f: Buffer, msg: RegExp): void => {
    expectRill(() => checkLz4Frame(f), "CORRUPT_MESSAGE", msg);
    expectRill(() => lz4DecompressFrame(f), "CORRUPT_MESSAGE", msg);
    expectRill(() => lz4DecompressFrameView(f), "CORRUPT_MESSAGE", msg);
  };

  it("bad magic", () => {
    const f = Buffer.from(good);
    f[0] = 0x05;
    both(f, /bad magic/);
  });

  it("shorter than a header", () => {
    both(good.subarray(0, 5), /shorter than a frame header/);
  });

  it("wrong version, reserved bits, dictionary id, block size id", () => {
    both(withDescriptorByte(good, 4, (good[4]! & 0x3f) | 0x80), /FLG version/);
    both(withDescriptorByte(good, 4, good[4]! | 0x02), /reserved bit/);
    both(withDescriptorByte(good, 4, good[4]! | 0x01), /dictionary id/);
    both(withDescriptorByte(good, 5, 0x30), /block max size id 3/);
    both(withDescriptorByte(good, 5, 0x41), /BD reserved/);
  });

  it("header checksum mismatch", () => {
    const f = Buffer.from(good);
    f[6] = f[6]! ^ 0xff;
    both(f, /header checksum/);
  });

  it("block size beyond the block max", () => {
    const f = Buffer.from(good);
    f.writeUInt32LE(LZ4_BLOCK_BYTES + 1, 7);
    both(f, /block 0 size 65537 exceeds the block max 65536/);
  });

  it("truncated: a block runs past the end, or no end mark", () => {
    both(good.subarray(0, 100), /block 0 of \d+ bytes runs past the payload end/);
    both(good.subarray(0, good.length - 6), /(cut off|runs past)/);
  });

  it("bytes after the frame", () => {
    const f = Buffer.concat([good, Buffer.from([0])]);
    both(f, /follow/);
  });

  it("block checksum mismatch", () => {
    const f = Buffer.from(good);
    f[7 + 4 + 10] = f[7 + 4 + 10]! ^ 0x01;
    both(f, /block 0 checksum/);
  });

  it("content checksum mismatch", () => {
    const f = Buffer.from(good);
    f[f.length - 1] = f[f.length - 1]! ^ 0x01;
    expectRill(() => lz4DecompressFrame(f), "CORRUPT_MESSAGE", /content checksum/);
    expectRill(() => lz4DecompressFrameView(f), "CORRUPT_MESSAGE", /content checksum/);
  });

  it("content size disagreeing with the blocks", () => {
    const frame = readFileSync(goldenPath("lz4/cli-linked-block-checksums-content-size.lz4"));
    const f = Buffer.from(frame);
    f.writeUInt32LE(f.readUInt32LE(6) + 1, 6);
    f[14] = (xxhash32(f, 0, 4, 14) >>> 8) & 0xff;
    expectRill(() => lz4DecompressFrame(f), "CORRUPT_MESSAGE", /content size field says/);
    expectRill(() => lz4DecompressFrameView(f), "CORRUPT_MESSAGE", /content size field says/);
  });

  it("a block whose LZ4 data does not decode", () => {
    const plain = lz4CompressFrame(data);
    const f = Buffer.from(plain);
    const size = f.readUInt32LE(7);
    f.fill(0xff, 11, 11 + Math.min(size, 64)); // garbage tokens in block 0
    expectRill(() => lz4DecompressFrame(f), "CORRUPT_MESSAGE", /lz4 frame: block 0: /);
    expectRill(() => lz4DecompressFrameView(f), "CORRUPT_MESSAGE", /lz4 frame: block 0: /);
  });

  it("output beyond the limit throws MESSAGE_TOO_LARGE", () => {
    expectRill(() => lz4DecompressFrame(good, 0, good.length, 1000), "MESSAGE_TOO_LARGE", /exceeds 1000 bytes/);
    expectRill(() => lz4DecompressFrameView(good, 0, good.length, 1000), "MESSAGE_TOO_LARGE", /exceeds 1000 bytes/);
  });
});

describe("compress / decompress by codec", () => {
  it("round-trips none, gzip and lz4", () => {
    const data = text(200_000);
    for (const codec of [Compression.NONE, Compression.GZIP, Compression.LZ4]) {
      const c = compress(codec, data);
      checkCompressedPayload(codec, c);
      expect(decompress(codec, c).equals(data), `codec ${codec}`).toBe(true);
    }
    expect(compress(Compression.NONE, data)).toBe(data);
  });

  it("reads gzip written by zlib with other settings (level 9, multiple members)", () => {
    const a = text(1000);
    const b = text(3000);
    const twoMembers = Buffer.concat([gzipSync(a, { level: 9 }), gzipSync(b, { level: 1 })]);
    expect(decompress(Compression.GZIP, twoMembers).equals(Buffer.concat([a, b]))).toBe(true);
  });

  it("rejects bad gzip with CORRUPT_MESSAGE and oversized output with MESSAGE_TOO_LARGE", () => {
    const gz = gzipSync(text(10_000));
    const bad = Buffer.from(gz);
    bad[0] = 0;
    expectRill(() => checkCompressedPayload(Compression.GZIP, bad), "CORRUPT_MESSAGE", /gzip: bad magic/);
    expectRill(() => checkCompressedPayload(Compression.GZIP, gz.subarray(0, 10)), "CORRUPT_MESSAGE", /gzip: payload of 10 bytes/);
    expectRill(() => decompress(Compression.GZIP, bad), "CORRUPT_MESSAGE", /^gzip: /);
    expectRill(() => decompress(Compression.GZIP, gz.subarray(0, gz.length - 20)), "CORRUPT_MESSAGE", /^gzip: /);
    expectRill(() => decompress(Compression.GZIP, gz, 100), "MESSAGE_TOO_LARGE", /exceeds 100 bytes/);
  });

  it("rejects codecs 5-7 with UNSUPPORTED_COMPRESSION_TYPE", () => {
    const data = text(10);
    for (const codec of [5, 6, 7]) {
      expectRill(() => compress(codec, data), "UNSUPPORTED_COMPRESSION_TYPE", /compression: /);
      expectRill(() => decompress(codec, data), "UNSUPPORTED_COMPRESSION_TYPE");
      expectRill(() => checkCompressedPayload(codec, data), "UNSUPPORTED_COMPRESSION_TYPE");
    }
  });
});

function u32le(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
}
