/**
 * Cordoned brokers (issue 21, as Kafka's KIP-1066): the `broker-cordon` record, kept across a
 * broker's registrations and in snapshots; `decideAlterBrokerCordons`' refusals; placement of new
 * topics and partitions (internal ones too) passing cordoned brokers over, refusing by name when
 * too few others remain, and leaving existing replicas, leadership and explicit reassignments alone.
 */
import { describe, expect, it } from "vitest";
import { SeededRandom } from "../../../src/base/random.ts";
import { decideAlterReassignment, decideCreatePartitions, decideCreateTopic, decideFenceBroker } from "../../../src/metadata/controller.ts";
import { decideAlterBrokerCordons } from "../../../src/metadata/cordon.ts";
import { MetadataImage, snapshotRecords } from "../../../src/metadata/image.ts";
import { decodeMetadataRecord, encodeMetadataRecord, type MetadataRecord } from "../../../src/metadata/records.ts";
import { clusterOf, commit, createTopic, dump, expectRejected, heartbeat, pure, register } from "./cluster-helpers.ts";

/** Cordons (or uncordons) `ids`, expecting every one to succeed; returns the records written. */
function cordon(img: MetadataImage, ids: number[], cordoned = true): MetadataRecord[] {
  const d = pure(img, () => decideAlterBrokerCordons(img, ids, cordoned));
  expect(d.errors).toEqual(ids.map(() => null));
  commit(img, d.records);
  return d.records;
}

/** Every broker holding a replica of `topic`. */
function holders(img: MetadataImage, topic: string): Set<number> {
  return new Set(img.topics.get(topic)!.partitions.flatMap((p) => p.replicas));
}

const create = (img: MetadataImage, name: string, partitions: number, rf: number, seed = 7): MetadataRecord[] =>
  decideCreateTopic(
    img,
    { name, partitions, replicationFactor: rf, configs: {} },
    {
      partitions: 1,
      brokers: img.unfencedBrokers(),
      random: new SeededRandom(seed),
    },
  );

describe("the broker-cordon record", () => {
  it("cordons and uncordons; a re-registration, fencing and unfencing keep it", () => {
    const img = clusterOf([1, 2, 3, 4]);
    expect(cordon(img, [4])).toEqual([{ type: "broker-cordon", v: 1, nodeId: 4, cordoned: true }]);
    expect([...img.cordoned]).toEqual([4]);
    expect(img.placementBrokers()).toEqual([1, 2, 3]);
    expect(img.unfencedBrokers()).toEqual([1, 2, 3, 4]); // still live, still a broker
    // Fenced (its session expired), restarted (a new incarnation registers), unfenced: still cordoned.
    commit(img, decideFenceBroker(img, 4));
    register(img, 4, "inc-4-restarted");
    heartbeat(img, 4);
    expect(img.brokers.get(4)!.incarnationId).toBe("inc-4-restarted");
    expect(img.brokers.get(4)!.fenced).toBe(false);
    expect([...img.cordoned]).toEqual([4]);
    expect(img.placementBrokers()).toEqual([1, 2, 3]);
    // Already cordoned: nothing to write. Uncordoned: placed on again.
    expect(cordon(img, [4])).toEqual([]);
    expect(cordon(img, [4], false)).toEqual([{ type: "broker-cordon", v: 1, nodeId: 4, cordoned: false }]);
    expect(img.cordoned.size).toBe(0);
    expect(img.placementBrokers()).toEqual([1, 2, 3, 4]);
    expect(cordon(img, [4], false)).toEqual([]);
  });

  it("is written into snapshots: a replayed snapshot keeps the cordoned brokers", () => {
    const img = clusterOf([1, 2, 3, 4, 5]);
    cordon(img, [5, 2]);
    createTopic(img, "t", 6, 2);
    // Through the codec, as a store writes a snapshot.
    const records = snapshotRecords(img).map((r) => decodeMetadataRecord(encodeMetadataRecord(r)));
    expect(records.filter((r) => r.type === "broker-cordon")).toEqual([
      { type: "broker-cordon", v: 1, nodeId: 2, cordoned: true },
      { type: "broker-cordon", v: 1, nodeId: 5, cordoned: true },
    ]);
    const rebuilt = MetadataImage.fromSnapshot(records, img.offset);
    expect([...rebuilt.cordoned].sort()).toEqual([2, 5]);
    expect(dump(rebuilt)).toEqual(dump(img));
    expect(rebuilt.placementBrokers()).toEqual([1, 3, 4]);
    // And the rebuilt controller places as the original would.
    expect(create(rebuilt, "u", 6, 3)).toEqual(create(img, "u", 6, 3));
  });

  it("refuses, each broker on its own: a node that never registered, a negative id, one named twice; cordoning every broker is allowed", () => {
    const img = clusterOf([1, 2, 3]);
    const d = pure(img, () => decideAlterBrokerCordons(img, [9, 1, -1, 1, 2.5], true));
    expect(d.errors.map((e) => e?.kind.name ?? null)).toEqual([
      "BROKER_ID_NOT_REGISTERED",
      null,
      "INVALID_REQUEST",
      "INVALID_REQUEST",
      "INVALID_REQUEST",
    ]);
    expect(d.errors[0]!.message).toBe("broker_ids[0]: no broker with node id 9 ever registered");
    expect(d.errors[3]!.message).toBe("broker_ids[3]: broker 1 is named twice");
    expect(d.records).toEqual([{ type: "broker-cordon", v: 1, nodeId: 1, cordoned: true }]); // only the valid one
    // Uncordoning an unknown node is refused as well.
    expect(decideAlterBrokerCordons(img, [9], false).errors[0]!.kind.name).toBe("BROKER_ID_NOT_REGISTERED");
    // No broker left to place on is not the cordon's concern: placement refuses later, by name.
    cordon(img, [1, 2, 3]);
    expect(img.placementBrokers()).toEqual([]);
  });
});

describe("placement with cordoned brokers", () => {
  it("new topics and partitions get no replica on a cordoned broker; its replicas and leadership stay", () => {
    const img = clusterOf([1, 2, 3, 4]);
    createTopic(img, "old", 8, 3);
    expect(holders(img, "old").has(4)).toBe(true);
    const before = JSON.stringify(img.topics.get("old"));
    cordon(img, [4]);
    expect(JSON.stringify(img.topics.get("old"))).toBe(before); // nothing moved, no leader changed
    for (let seed = 1; seed <= 20; seed++) {
      const records = create(img, `t${seed}`, 8, 3, seed);
      for (const r of records) if (r.type === "partition") expect(r.replicas, `seed ${seed}`).not.toContain(4);
    }
    createTopic(img, "new", 8, 2);
    expect([...holders(img, "new")].sort()).toEqual([1, 2, 3]);
    commit(img, decideCreatePartitions(img, "old", 16, img.unfencedBrokers(), new SeededRandom(3)));
    const added = img.topics.get("old")!.partitions.slice(8);
    expect(added).toHaveLength(8);
    for (const p of added) expect(p.replicas).not.toContain(4);
    // Uncordoned: new replicas may go there again.
    cordon(img, [4], false);
    createTopic(img, "after", 8, 2);
    expect(holders(img, "after").has(4)).toBe(true);
  });

  it("the default replication factor counts cordoned brokers; too few others left is refused, naming the cordoned ones", () => {
    const img = clusterOf([1, 2, 3, 4]);
    createTopic(img, "grow", 2, 3);
    cordon(img, [3, 4]);
    let e = expectRejected(img, "INVALID_REPLICATION_FACTOR", () => create(img, "t", 1, 3));
    expect(e.message).toBe(
      "replication_factor: 3 needs 3 brokers that take new replicas, and 2 of the 4 live brokers do; cordoned, given no new replicas: 3, 4",
    );
    // Replication factor 0 (the default): 3 of 4 live brokers, not silently 2.
    e = expectRejected(img, "INVALID_REPLICATION_FACTOR", () => create(img, "t", 1, 0));
    expect(e.message).toMatch(/^replication_factor: 3 needs 3 brokers .*cordoned, given no new replicas: 3, 4$/);
    // More than there are live brokers: the usual message, with the cordoned ones named.
    e = expectRejected(img, "INVALID_REPLICATION_FACTOR", () => create(img, "t", 1, 5));
    expect(e.message).toBe("replication_factor: 5 is not in [1, 2] (live brokers: 4; cordoned, given no new replicas: 3, 4)");
    e = expectRejected(img, "INVALID_REPLICATION_FACTOR", () =>
      decideCreatePartitions(img, "grow", 3, img.unfencedBrokers(), new SeededRandom(1)),
    );
    expect(e.message).toBe(
      "topic grow needs 3 brokers that take new replicas, and 2 of the 4 live brokers do; cordoned, given no new replicas: 3, 4",
    );
    // Within what the others can hold it works.
    expect(pure(img, () => create(img, "t", 2, 2)).filter((r) => r.type === "partition")).toHaveLength(2);
  });

  it("max.partitions refusals name the cordoned brokers too", () => {
    const img = clusterOf([1, 2, 3]);
    cordon(img, [3]);
    const e = expectRejected(img, "INVALID_PARTITIONS", () =>
      decideCreateTopic(
        img,
        { name: "t", partitions: 3, replicationFactor: 2, configs: {} },
        {
          partitions: 1,
          brokers: img.unfencedBrokers(),
          random: new SeededRandom(1),
          limits: new Map([
            [1, { max: 2, why: "test" }],
            [2, { max: 2, why: "test" }],
          ]),
        },
      ),
    );
    expect(e.message).toMatch(/the brokers have room for 4 of them: .*; cordoned, given no new replicas: 3$/);
  });

  it("a reassignment that names a cordoned broker is allowed (the user chose it)", () => {
    const img = clusterOf([1, 2, 3]);
    createTopic(img, "t", 1, 2);
    cordon(img, [3]);
    const target = [3, ...img.topics.get("t")!.partitions[0]!.replicas.filter((r) => r !== 3)].slice(0, 2);
    const records = pure(img, () => decideAlterReassignment(img, { topic: "t", partition: 0, replicas: target }));
    expect(records.length).toBeGreaterThan(0);
    commit(img, records);
    expect(img.topics.get("t")!.partitions[0]!.replicas).toContain(3);
  });

  it("internal topics are placed the same way (test/unit/broker/controller-cordon.test.ts: the controller waits for enough brokers)", () => {
    const img = clusterOf([1, 2, 3]);
    cordon(img, [2]);
    expect(img.placementBrokers()).toEqual([1, 3]);
    const internal = (rf: number) =>
      decideCreateTopic(
        img,
        { name: "__consumer_offsets", partitions: 6, replicationFactor: rf, configs: {} },
        { partitions: 6, brokers: img.unfencedBrokers(), random: new SeededRandom(1), internal: true },
      );
    const e = expectRejected(img, "INVALID_REPLICATION_FACTOR", () => internal(3));
    expect(e.message).toMatch(/cordoned, given no new replicas: 2$/);
    for (const r of internal(2)) if (r.type === "partition") expect(r.replicas).not.toContain(2);
  });
});
