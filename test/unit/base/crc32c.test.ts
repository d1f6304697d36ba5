import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { crc32c, crc32cImplementation, crc32cJs } from "../../../src/base/crc32c.ts";
import { SeededRandom, seedFromEnv } from "../../../src/base/random.ts";

const require = createRequire(import.meta.url);
const kafkajsCrc32c = require("kafkajs/src/protocol/recordBatch/crc32C/index.js") as (b: Buffer) => number;

describe("crc32c", () => {
  it("matches the check value of CRC-32C", () => {
    expect(crc32c(Buffer.from("123456789"))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(0))).toBe(0);
    // RFC 3720 (iSCSI) B.4: 32 bytes of zeros, of 0xff.
    expect(crc32c(Buffer.alloc(32, 0))).toBe(0x8a9136aa);
    expect(crc32c(Buffer.alloc(32, 0xff))).toBe(0x62a8ab43);
  });

  it("agrees with kafkajs's CRC32C on random buffers", () => {
    const seed = seedFromEnv();
    console.log(`crc32c vs kafkajs: SEED=${seed}`);
    const rand = new SeededRandom(seed);
    for (let i = 0; i < 200; i++) {
      const b = Buffer.alloc(rand.int(300));
      for (let j = 0; j < b.length; j++) b[j] = rand.int(256);
      expect(crc32c(b), `buffer ${b.toString("hex")}`).toBe(kafkajsCrc32c(b));
    }
  });

  it("uses the native CRC32C here (the broker depends on @node-rs/crc32)", () => {
    expect(crc32cImplementation).toBe("native");
  });

  it("computes the same CRC32C in JavaScript (the SDK's fallback) on every length and alignment", () => {
    expect(crc32cJs(Buffer.from("123456789"))).toBe(0xe3069283);
    expect(crc32cJs(new Uint8Array(0))).toBe(0);
    expect(crc32cJs(Buffer.alloc(32, 0xff))).toBe(0x62a8ab43);
    const seed = seedFromEnv();
    console.log(`crc32cJs vs native: SEED=${seed}`);
    const rand = new SeededRandom(seed);
    const big = Buffer.alloc(70_000);
    for (let j = 0; j < big.length; j++) big[j] = rand.int(256);
    for (let i = 0; i < 300; i++) {
      const start = rand.int(64);
      const b = big.subarray(start, start + (i < 100 ? i : rand.int(big.length - start)));
      expect(crc32cJs(b), `bytes ${start}..${start + b.length}`).toBe(crc32c(b));
    }
  });
});
