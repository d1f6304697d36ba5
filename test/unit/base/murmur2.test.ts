import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { murmur2, partitionForKey, toPositive } from "../../../src/base/murmur2.ts";
import { SeededRandom, seedFromEnv } from "../../../src/base/random.ts";

const require = createRequire(import.meta.url);
const kafkajsMurmur2 = require("kafkajs/src/producer/partitioners/default/murmur2.js") as (key: Buffer | string) => number;

describe("murmur2", () => {
  it("matches Kafka's UtilsTest.testMurmur2 vectors", () => {
    const cases: Array<[Uint8Array, number]> = [
      [Buffer.from("21"), -973932308],
      [Buffer.from("foobar"), -790332482],
      [Buffer.from("a-little-bit-long-string"), -985981536],
      [Buffer.from("a-little-bit-longer-string"), -1486304829],
      [Buffer.from("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58897971],
      [new Uint8Array([0x61, 0x62, 0x63]), 479470107],
    ];
    for (const [key, want] of cases) expect(murmur2(key), Buffer.from(key).toString()).toBe(want);
  });

  it("agrees with kafkajs's murmur2 on random keys of every length class", () => {
    const seed = seedFromEnv();
    console.log(`murmur2 vs kafkajs: SEED=${seed}`);
    const rand = new SeededRandom(seed);
    for (let i = 0; i < 500; i++) {
      const key = Buffer.alloc(rand.int(64));
      for (let j = 0; j < key.length; j++) key[j] = rand.int(256);
      expect(murmur2(key), `key ${key.toString("hex")}`).toBe(kafkajsMurmur2(key));
    }
  });

  it("partitions as Kafka's default partitioner: toPositive(murmur2) % n", () => {
    expect(toPositive(-973932308)).toBe(-973932308 & 0x7fffffff);
    expect(toPositive(-1)).toBe(0x7fffffff);
    const key = Buffer.from("foobar");
    expect(partitionForKey(key, 12)).toBe((-790332482 & 0x7fffffff) % 12);
    for (let n = 1; n < 50; n++) {
      const p = partitionForKey(key, n);
      expect(p >= 0 && p < n).toBe(true);
    }
  });
});
