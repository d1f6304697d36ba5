/**
 * Placement within `max.partitions`: new replicas go to brokers with room (leader balance kept),
 * and a create is refused only when no placement of the partitions fits, naming every broker
 * with its count and limit. The randomised cases print their seed.
 */
import { describe, expect, it } from "vitest";
import { SeededRandom } from "../../../src/base/random.ts";
import {
  checkPartitionLimits,
  decideCreatePartitions,
  decideCreateTopic,
  type PartitionLimits,
  placeReplicas,
  placeWithinLimits,
} from "../../../src/metadata/controller.ts";
import type { MetadataImage } from "../../../src/metadata/image.ts";
import { clusterOf, commit, expectRejected, pure } from "./cluster-helpers.ts";

const topic = (name: string, partitions: number, replicationFactor: number) => ({ name, partitions, replicationFactor, configs: {} });

/** Node id -> replicas it holds in the image. */
function held(image: MetadataImage): Map<number, number> {
  const out = new Map<number, number>();
  for (const t of image.topics.values()) for (const p of t.partitions) for (const b of p.replicas) out.set(b, (out.get(b) ?? 0) + 1);
  return out;
}

function leaders(image: MetadataImage, name: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const p of image.topics.get(name)!.partitions) out.set(p.leader, (out.get(p.leader) ?? 0) + 1);
  return out;
}

/** Whether `count` partitions of `rf` distinct brokers fit in `room`, by exhaustive search (the oracle). */
function fitsBySearch(room: number[], rf: number, count: number): boolean {
  if (count === 0) return true;
  const n = room.length;
  const pick = (from: number, chosen: number[]): boolean => {
    if (chosen.length === rf) {
      for (const i of chosen) room[i]!--;
      const ok = fitsBySearch(room, rf, count - 1);
      for (const i of chosen) room[i]!++;
      return ok;
    }
    for (let i = from; i < n; i++) if (room[i]! > 0 && pick(i + 1, [...chosen, i])) return true;
    return false;
  };
  return pick(0, []);
}

describe("placement within max.partitions", () => {
  it("a full broker is passed over: the replicas go to the brokers with room, leaders spread over them", () => {
    const seed = 11;
    console.log(`seed ${seed}`);
    const random = new SeededRandom(seed);
    const image = clusterOf([1, 2, 3]);
    const limits: PartitionLimits = new Map([[1, { max: 2, why: "2 configured" }]]);
    commit(image, decideCreateTopic(image, topic("first", 2, 1), { partitions: 1, brokers: [1, 2, 3], random, limits }));
    // the first topic may or may not have used broker 1; fill it up to its limit with a second one if needed
    const onOne = held(image).get(1) ?? 0;
    const full: PartitionLimits = new Map([[1, { max: onOne, why: `${onOne} configured` }]]);
    commit(image, decideCreateTopic(image, topic("wide", 6, 2), { partitions: 1, brokers: [1, 2, 3], random, limits: full }));
    const wide = image.topics.get("wide")!.partitions;
    expect(wide.every((p) => !p.replicas.includes(1))).toBe(true);
    expect(wide.every((p) => new Set(p.replicas).size === 2)).toBe(true);
    expect(held(image).get(1) ?? 0).toBe(onOne);
    expect(leaders(image, "wide")).toEqual(
      new Map([
        [2, 3],
        [3, 3],
      ]),
    );
    commit(image, decideCreatePartitions(image, "wide", 10, [1, 2, 3], random, full));
    expect(image.topics.get("wide")!.partitions.every((p) => !p.replicas.includes(1))).toBe(true);
    // an explicit placement naming the full broker is refused, not moved
    expect(() => checkPartitionLimits(image, [[1, 2]], full)).toThrow(/broker 1 holds \d+ partitions and may hold at most \d+/);
  });

  it("a broker with some room gets up to its limit and no more; the rest goes round the others", () => {
    const seed = 12;
    console.log(`seed ${seed}`);
    const random = new SeededRandom(seed);
    const image = clusterOf([1, 2, 3, 4]);
    const limits: PartitionLimits = new Map([[2, { max: 3, why: "3 configured" }]]);
    // rf 3 over 4 brokers puts 3/4 of 8 partitions' replicas on each broker: 6 on broker 2 without its limit
    commit(image, decideCreateTopic(image, topic("t", 8, 3), { partitions: 1, brokers: [1, 2, 3, 4], random, limits }));
    const count = held(image);
    expect(count.get(2)).toBe(3);
    expect(count.get(1)! + count.get(3)! + count.get(4)!).toBe(21);
    for (const b of [1, 3, 4]) expect(count.get(b)).toBe(7);
    expect(image.topics.get("t")!.partitions.every((p) => new Set(p.replicas).size === 3)).toBe(true);
  });

  it("refused only when nothing fits, naming every broker with its count and limit, and changing nothing", () => {
    const random = new SeededRandom(13);
    const image = clusterOf([1, 2, 3]);
    const limits: PartitionLimits = new Map([
      [1, { max: 1, why: "1 = open-file limit 64 - 60 reserved, 4 per partition" }],
      [2, { max: 2, why: "2 configured" }],
    ]);
    // rf 3 needs every broker for every partition: broker 1 takes one
    const err = expectRejected(image, "INVALID_PARTITIONS", () =>
      decideCreateTopic(image, topic("t", 2, 3), { partitions: 1, brokers: [1, 2, 3], random, limits }),
    );
    expect(err.message).toContain("2 new partitions with replication factor 3 need 6 replicas");
    expect(err.message).toContain("room for 5 of them");
    expect(err.message).toContain("broker 1 holds 0 partitions and may hold at most 1 (max.partitions: 1 = open-file limit 64");
    expect(err.message).toContain("broker 2 holds 0 partitions and may hold at most 2 (max.partitions: 2 configured)");
    expect(err.message).toContain("broker 3 holds 0 partitions (no limit known)");
    // one partition fits
    commit(image, decideCreateTopic(image, topic("t", 1, 3), { partitions: 1, brokers: [1, 2, 3], random, limits }));
    const e2 = expectRejected(image, "INVALID_PARTITIONS", () => decideCreatePartitions(image, "t", 2, [1, 2, 3], random, limits));
    expect(e2.message).toContain("broker 1 holds 1 partitions and may hold at most 1");
  });

  it("random clusters: it places exactly when some placement fits, within every limit, and as plain round-robin when that fits", () => {
    const seed = Number(process.env.PLACEMENT_SEED ?? Date.now() % 1_000_000);
    console.log(`placement seed ${seed} (PLACEMENT_SEED=${seed} to replay)`);
    const gen = new SeededRandom(seed);
    let placedCount = 0;
    let refusedCount = 0;
    let divertedCount = 0;
    for (let c = 0; c < 400; c++) {
      const n = 1 + gen.int(5);
      const ids = Array.from({ length: n }, (_, i) => i + 1);
      const image = clusterOf(ids);
      const rf = 1 + gen.int(Math.min(n, 3));
      // some existing replicas, placed without limits
      if (gen.int(2) === 0)
        commit(
          image,
          pure(image, () =>
            decideCreateTopic(image, topic("old", 1 + gen.int(4), 1 + gen.int(n)), { partitions: 1, brokers: ids, random: gen }),
          ),
        );
      const before = held(image);
      const limits = new Map<number, { max: number; why: string }>();
      for (const b of ids) if (gen.int(3) !== 0) limits.set(b, { max: (before.get(b) ?? 0) + gen.int(5), why: "random" });
      const count = 1 + gen.int(5);
      const room = ids.map((b) => {
        const l = limits.get(b);
        return l === undefined ? count : Math.max(0, l.max - (before.get(b) ?? 0));
      });
      const expected = fitsBySearch([...room], rf, count);
      const where = `case ${c} (seed ${seed}): brokers ${n}, rf ${rf}, count ${count}, room ${room.join(",")}`;
      const r = gen.int(1_000_000);
      let placed: number[][];
      try {
        placed = placeWithinLimits(image, ids, rf, count, new SeededRandom(r), limits);
      } catch (e) {
        expect(expected, `${where}: refused though a placement fits: ${(e as Error).message}`).toBe(false);
        expect((e as Error).message).toMatch(/INVALID_PARTITIONS|max\.partitions/);
        for (const b of ids) expect((e as Error).message).toContain(`broker ${b} holds ${before.get(b) ?? 0} partitions`);
        refusedCount++;
        continue;
      }
      expect(expected, `${where}: placed though nothing fits`).toBe(true);
      placedCount++;
      expect(placed.length).toBe(count);
      for (const replicas of placed) {
        expect(replicas.length, where).toBe(rf);
        expect(new Set(replicas).size, where).toBe(rf);
      }
      expect(() => checkPartitionLimits(image, placed, limits), where).not.toThrow();
      const plain = placeReplicas(image, ids, rf, count, new SeededRandom(r));
      let plainFits = true;
      try {
        checkPartitionLimits(image, plain, limits);
      } catch {
        plainFits = false;
      }
      if (plainFits) expect(placed, `${where}: round-robin fits, so it is what comes out`).toEqual(plain);
      else divertedCount++;
    }
    console.log(`placed ${placedCount} (${divertedCount} moved off a full broker), refused ${refusedCount}`);
    expect(placedCount).toBeGreaterThan(50);
    expect(refusedCount).toBeGreaterThan(10);
    expect(divertedCount).toBeGreaterThan(10);
  });
});
