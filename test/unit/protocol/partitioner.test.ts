import { describe, expect, it } from "vitest";
import { murmur2, partitionForKey } from "../../../src/base/murmur2.ts";
import { SeededRandom, seedFromEnv } from "../../../src/base/random.ts";
import { ByteBudget } from "../../../src/client/byte-budget.ts";
import { Partitioner } from "../../../src/protocol/partitioner.ts";

const SEED = seedFromEnv();
console.log(`partitioner tests SEED=${SEED}`);

describe("Partitioner", () => {
  it("routes keys like Kafka's default partitioner", () => {
    const p = new Partitioner(new SeededRandom(SEED));
    // Kafka's Utils.murmur2("21".getBytes()) = -973932308 (from Kafka's UtilsTest).
    expect(murmur2(Buffer.from("21"))).toBe(-973932308);
    for (const key of ["a", "order-17", "", "ключ"]) {
      const bytes = Buffer.from(key);
      expect(p.partition("t", bytes, 6)).toBe(partitionForKey(bytes, 6));
      expect(p.partition("t", bytes, 6)).toBe((murmur2(bytes) & 0x7fffffff) % 6);
    }
  });

  it("sticks null keys to one partition per topic until that partition's batch is sealed", () => {
    const p = new Partitioner(new SeededRandom(SEED));
    const first = p.partition("t", null, 5);
    for (let i = 0; i < 10; i++) expect(p.partition("t", null, 5)).toBe(first);
    p.onBatchSealed("t", (first + 1) % 5, 5); // another partition's batch: no switch
    expect(p.partition("t", null, 5)).toBe(first);
    const seen = new Set<number>([first]);
    let current = first;
    for (let i = 0; i < 200; i++) {
      p.onBatchSealed("t", current, 5);
      const next = p.partition("t", null, 5);
      expect(next).not.toBe(current);
      seen.add(next);
      current = next;
    }
    expect(seen.size).toBe(5);
    p.onBatchSealed("solo", p.partition("solo", null, 1), 1);
    expect(p.partition("solo", null, 1)).toBe(0);
  });

  it("is deterministic for a seed", () => {
    const run = (): number[] => {
      const p = new Partitioner(new SeededRandom(SEED));
      const out: number[] = [];
      for (let i = 0; i < 20; i++) {
        const q = p.partition("t", null, 7);
        out.push(q);
        p.onBatchSealed("t", q, 7);
      }
      return out;
    };
    expect(run()).toEqual(run());
  });
});

describe("ByteBudget", () => {
  it("hands bytes out in FIFO order and never beyond its capacity", async () => {
    const b = new ByteBudget(100);
    expect(b.tryAcquire(60)).toBe(true);
    const order: string[] = [];
    const big = b.acquire(80).then(() => order.push("big"));
    expect(b.tryAcquire(10)).toBe(false); // would jump the queue
    const small = b.acquire(10).then(() => order.push("small"));
    b.release(60);
    await Promise.all([big, small]);
    expect(order).toEqual(["big", "small"]);
    expect(b.usedBytes).toBe(90);
    let free = false;
    const drained = b.whenFree().then(() => (free = true));
    await Promise.resolve();
    expect(free).toBe(true);
    await drained;
    expect(b.tryAcquire(20)).toBe(false);
    b.release(90);
    expect(b.usedBytes).toBe(0);
  });

  it("fails its waiters on close", async () => {
    const b = new ByteBudget(10);
    b.tryAcquire(10);
    const w = b.acquire(5);
    b.failWaiters(new Error("closed"));
    await expect(w).rejects.toThrow("closed");
  });
});
