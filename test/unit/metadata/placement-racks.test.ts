/**
 * Rack-aware placement (`broker.rack`, issue 21 item 5): a partition's replicas go to distinct
 * racks whenever there are as many racks as replicas, leaders rotate over racks, and a cluster
 * without racks places exactly as before. The randomised cases print their seed.
 */
import { describe, expect, it } from "vitest";
import { SeededRandom } from "../../../src/base/random.ts";
import { decideRegisterBroker } from "../../../src/metadata/cluster-controller.ts";
import { decideCreateTopic, placeWithinLimits, rackAlternated } from "../../../src/metadata/controller.ts";
import { MetadataImage } from "../../../src/metadata/image.ts";
import { clusterOf, commit, heartbeat } from "./cluster-helpers.ts";

/** An image with brokers registered in the given racks ("" = none), unfenced. */
function racked(racks: Record<number, string>): MetadataImage {
  const image = new MetadataImage();
  const ids = Object.keys(racks).map(Number);
  for (const id of ids)
    commit(
      image,
      decideRegisterBroker(
        image,
        { nodeId: id, incarnationId: `inc-${id}`, address: `h${id}:9092`, rack: racks[id]!, roles: ["broker"] },
        () => false,
      ),
    );
  for (const id of ids) heartbeat(image, id);
  return image;
}

const rackOf = (image: MetadataImage, b: number) => image.brokers.get(b)!.rack;

describe("rack-aware placement", () => {
  it("orders the ring to alternate racks, as Kafka's rack-alternated broker list", () => {
    const image = racked({ 1: "a", 2: "a", 3: "b", 4: "c", 5: "b", 6: "a" });
    expect(rackAlternated(image, [1, 2, 3, 4, 5, 6]).brokers).toEqual([1, 3, 4, 2, 5, 6]);
    // No racks: the brokers as given, and no racks passed on.
    expect(rackAlternated(clusterOf([1, 2, 3]), [1, 2, 3])).toEqual({ brokers: [1, 2, 3] });
  });

  it("every partition's replicas are in distinct racks when there are at least rf racks, even with uneven racks", () => {
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
      console.log(`seed ${seed}`);
      // 7 brokers: rack a has 3, b has 3, c has 1 (a plain ring of ids would put a's brokers side by side).
      const image = racked({ 1: "a", 2: "a", 3: "a", 4: "b", 5: "b", 6: "b", 7: "c" });
      const placed = placeWithinLimits(image, [1, 2, 3, 4, 5, 6, 7], 3, 12, new SeededRandom(seed), undefined);
      for (const replicas of placed) {
        expect(new Set(replicas).size).toBe(3);
        expect(new Set(replicas.map((b) => rackOf(image, b))).size, `replicas ${replicas.join(",")}`).toBe(3);
      }
      // Rack a has 4 of 6 brokers: the alternated ring is 1,5,6,2,3,4, so the ring alone would give
      // a partition led by 2 the followers 3 and 4 (rack a again); the spread takes 5 and 6.
      const lopsided = racked({ 1: "a", 2: "a", 3: "a", 4: "a", 5: "b", 6: "c" });
      for (const replicas of placeWithinLimits(lopsided, [1, 2, 3, 4, 5, 6], 3, 6, new SeededRandom(seed), undefined))
        expect(new Set(replicas.map((b) => rackOf(lopsided, b))).size, `replicas ${replicas.join(",")}`).toBe(3);
      // RF 2 over 2 racks of 2: both racks in every partition.
      const two = racked({ 1: "x", 2: "x", 3: "y", 4: "y" });
      for (const replicas of placeWithinLimits(two, [1, 2, 3, 4], 2, 8, new SeededRandom(seed), undefined))
        expect(new Set(replicas.map((b) => rackOf(two, b))).size).toBe(2);
    }
  });

  it("leaders rotate over racks and stay balanced over brokers", () => {
    const image = racked({ 1: "a", 2: "a", 3: "b", 4: "b", 5: "c", 6: "c" });
    const placed = placeWithinLimits(image, [1, 2, 3, 4, 5, 6], 3, 6, new SeededRandom(3), undefined);
    const leaders = placed.map((r) => r[0]!);
    expect(new Set(leaders).size).toBe(6);
    for (let i = 1; i < leaders.length; i++) expect(rackOf(image, leaders[i]!)).not.toBe(rackOf(image, leaders[i - 1]!));
  });

  it("more replicas than racks: every rack is used, the rest fill in ring order", () => {
    const image = racked({ 1: "a", 2: "a", 3: "b", 4: "b" });
    for (const replicas of placeWithinLimits(image, [1, 2, 3, 4], 3, 4, new SeededRandom(5), undefined)) {
      expect(new Set(replicas).size).toBe(3);
      expect(new Set(replicas.map((b) => rackOf(image, b)))).toEqual(new Set(["a", "b"]));
    }
  });

  it("without racks the placement is what it was: the same ring, the same replicas", () => {
    // Brokers registered with rack "" and a create through decideCreateTopic: the plain round-robin.
    const image = clusterOf([1, 2, 3]);
    const d = decideCreateTopic(
      image,
      { name: "t", partitions: 6, replicationFactor: 2, configs: {} },
      { partitions: 1, brokers: [1, 2, 3], random: new SeededRandom(9) },
    );
    commit(image, d);
    for (const p of image.topics.get("t")!.partitions) {
      const i = [1, 2, 3].indexOf(p.replicas[0]!);
      expect(p.replicas).toEqual([p.replicas[0], [1, 2, 3][(i + 1) % 3]]);
    }
  });
});
