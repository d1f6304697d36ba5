import { describe, expect, it } from "vitest";
import { SeededRandom, seedFromEnv } from "../../../src/base/random.ts";
import { MetadataImage, snapshotRecords } from "../../../src/metadata/image.ts";
import { decodeMetadataRecord, encodeMetadataRecord, type MetadataRecord } from "../../../src/metadata/records.ts";
import { commit, dump } from "./cluster-helpers.ts";

const broker = (nodeId: number, incarnationId: string): MetadataRecord => ({
  type: "broker",
  v: 1,
  nodeId,
  address: `h${nodeId}:1`,
  roles: ["broker"],
  fenced: true,
  incarnationId,
  rack: "r1",
});

describe("MetadataImage: brokers, fencing and partition changes", () => {
  it("sets a broker's epoch to the offset of its registration, and fences, unfences and shuts down by epoch", () => {
    const img = new MetadataImage();
    img.apply(broker(2, "a"), 10);
    img.apply(broker(1, "b"), 11);
    expect(img.brokers.get(2)).toEqual({
      nodeId: 2,
      address: "h2:1",
      roles: ["broker"],
      fenced: true,
      epoch: 10,
      fencedOffset: 10,
      incarnationId: "a",
      rack: "r1",
      inControlledShutdown: false,
    });
    expect(img.unfencedBrokers()).toEqual([]);
    img.apply({ type: "broker-fence", v: 1, nodeId: 2, brokerEpoch: 10, fenced: false }, 12);
    img.apply({ type: "broker-fence", v: 1, nodeId: 1, brokerEpoch: 11, fenced: false }, 13);
    expect(img.unfencedBrokers()).toEqual([1, 2]);
    img.apply({ type: "broker-shutdown", v: 1, nodeId: 2, brokerEpoch: 10 }, 14);
    expect(img.brokers.get(2)!.inControlledShutdown).toBe(true);
    // A new registration: new epoch, fenced, controlled shutdown cleared.
    img.apply(broker(2, "c"), 15);
    expect(img.brokers.get(2)).toMatchObject({ epoch: 15, fenced: true, incarnationId: "c", inControlledShutdown: false });
    // Records for the earlier registration change nothing.
    img.apply({ type: "broker-fence", v: 1, nodeId: 2, brokerEpoch: 10, fenced: false }, 16);
    img.apply({ type: "broker-shutdown", v: 1, nodeId: 2, brokerEpoch: 10 }, 17);
    expect(img.brokers.get(2)).toMatchObject({ epoch: 15, fenced: true, inControlledShutdown: false });
    expect(img.offset).toBe(17);
  });

  it("reads broker records written before incarnation ids and racks existed", () => {
    const old = Buffer.from(
      JSON.stringify({ type: "broker", v: 1, nodeId: 1, address: "h:1", roles: ["broker", "controller"], fenced: false }),
    );
    const img = new MetadataImage();
    img.apply(decodeMetadataRecord(old), 3);
    expect(img.brokers.get(1)).toEqual({
      nodeId: 1,
      address: "h:1",
      roles: ["broker", "controller"],
      fenced: false,
      epoch: 3,
      fencedOffset: 3,
      incarnationId: "",
      rack: "",
      inControlledShutdown: false,
    });
    expect(img.unfencedBrokers()).toEqual([1]);
  });

  it("encodes and decodes the new record types, and rejects unknown ones", () => {
    const rs: MetadataRecord[] = [
      broker(1, "x"),
      { type: "broker-fence", v: 1, nodeId: 1, brokerEpoch: 4, fenced: true },
      { type: "broker-shutdown", v: 1, nodeId: 1, brokerEpoch: 4 },
      { type: "partition-change", v: 1, topic: "t", partition: 0, leader: -1, isr: [1], leaderEpoch: 3, partitionEpoch: 5 },
    ];
    for (const r of rs) expect(decodeMetadataRecord(encodeMetadataRecord(r))).toEqual(r);
    expect(() => decodeMetadataRecord(Buffer.from(JSON.stringify({ type: "broker-vanish", v: 1 })))).toThrow(/unknown metadata record/);
    expect(() => decodeMetadataRecord(Buffer.from(JSON.stringify({ type: "broker-fence", v: 2 })))).toThrow(/unknown metadata record/);
  });

  it("applies a partition change: leader, ISR and epochs; replicas stay", () => {
    const img = new MetadataImage();
    commit(img, [
      { type: "topic", v: 1, name: "t", topicId: "i", configs: {} },
      {
        type: "partition",
        v: 1,
        topic: "t",
        partition: 0,
        replicas: [1, 2, 3],
        isr: [1, 2, 3],
        leader: 1,
        leaderEpoch: 0,
        partitionEpoch: 0,
      },
      { type: "partition-change", v: 1, topic: "t", partition: 0, leader: 2, isr: [2, 3], leaderEpoch: 1, partitionEpoch: 1 },
    ]);
    expect(img.topics.get("t")!.partitions[0]).toEqual({
      topic: "t",
      partition: 0,
      replicas: [1, 2, 3],
      isr: [2, 3],
      leader: 2,
      leaderEpoch: 1,
      partitionEpoch: 1,
    });
    // A change that does not move the partition epoch forward is a bug: it crashes.
    expect(() =>
      img.apply({ type: "partition-change", v: 1, topic: "t", partition: 0, leader: 2, isr: [2], leaderEpoch: 1, partitionEpoch: 1 }, 9),
    ).toThrow(/partition epoch/);
  });
});

/** Builds an image from a random sequence of valid records. */
function randomImage(rnd: SeededRandom): MetadataImage {
  const img = new MetadataImage();
  const pick = <T>(xs: readonly T[]): T => xs[rnd.int(xs.length)]!;
  const steps = 50 + rnd.int(150);
  for (let i = 0; i < steps; i++) {
    const topics = [...img.topics.values()];
    const brokers = [...img.brokers.values()];
    const kind = rnd.int(9);
    let r: MetadataRecord | undefined;
    if (kind === 0 || topics.length === 0) {
      const name = `t${i}`;
      const configs: Record<string, string> =
        rnd.int(2) === 0 ? {} : { "retention.ms": String(rnd.int(100000)), "unclean.leader.election.enable": pick(["true", "false"]) };
      commit(img, [{ type: "topic", v: 1, name, topicId: `id${i}`, configs }]);
      const n = 1 + rnd.int(4);
      for (let p = 0; p < n; p++) {
        const replicas = [1, 2, 3, 4].filter(() => rnd.int(2) === 0);
        if (replicas.length === 0) replicas.push(1);
        r = {
          type: "partition",
          v: 1,
          topic: name,
          partition: p,
          replicas,
          isr: replicas,
          leader: replicas[0]!,
          leaderEpoch: rnd.int(5),
          partitionEpoch: rnd.int(5),
        };
        commit(img, [r]);
      }
      continue;
    }
    if (kind === 1) {
      const t = pick(topics);
      const p = pick(t.partitions);
      const isr = p.replicas.filter(() => rnd.int(3) > 0);
      r = {
        type: "partition-change",
        v: 1,
        topic: t.name,
        partition: p.partition,
        leader: isr[0] ?? -1,
        isr,
        leaderEpoch: p.leaderEpoch + rnd.int(2),
        partitionEpoch: p.partitionEpoch + 1 + rnd.int(2),
      };
    } else if (kind === 2) {
      r = { type: "config", v: 1, topic: pick(topics).name, configs: { "cleanup.policy": pick(["compact", "delete"]) } };
    } else if (kind === 3 && rnd.int(3) === 0) {
      const t = pick(topics);
      r = { type: "remove-topic", v: 1, name: t.name, topicId: t.topicId };
    } else if (kind === 4) {
      r = {
        type: "broker",
        v: 1,
        nodeId: 1 + rnd.int(5),
        address: `h${i}:1`,
        roles: rnd.int(2) === 0 ? ["broker"] : ["broker", "controller"],
        fenced: true,
        incarnationId: `inc${i}`,
        rack: pick(["", "a", "b"]),
      };
    } else if (kind === 5 && brokers.length > 0) {
      const b = pick(brokers);
      r = { type: "broker-fence", v: 1, nodeId: b.nodeId, brokerEpoch: b.epoch, fenced: rnd.int(2) === 0 };
    } else if (kind === 6 && brokers.length > 0) {
      const b = pick(brokers);
      r = { type: "broker-shutdown", v: 1, nodeId: b.nodeId, brokerEpoch: b.epoch };
    } else if (kind === 7) {
      const known = [...img.producerEpochs.keys()];
      const producerId = known.length > 0 && rnd.int(2) === 0 ? pick(known) : img.nextProducerId;
      r = {
        type: "producer-epoch",
        v: 1,
        producerId,
        producerEpoch: (img.producerEpochs.get(producerId) ?? -1) + 1,
        transactionalId: rnd.int(2) === 0 ? "" : `tx${rnd.int(6)}`,
      };
    } else {
      r = { type: "producer-ids", v: 1, nextProducerId: img.nextProducerId + rnd.int(1000) };
    }
    commit(img, [r]);
  }
  return img;
}

describe("metadata snapshots", () => {
  it("rebuild an equal image, epochs and fencing included (randomized)", () => {
    const seed = seedFromEnv();
    console.log(`metadata snapshot round trip: SEED=${seed}`);
    const rnd = new SeededRandom(seed);
    for (let run = 0; run < 30; run++) {
      const img = randomImage(rnd);
      // Through the codec, as a store writes them.
      const records = snapshotRecords(img).map((r) => decodeMetadataRecord(encodeMetadataRecord(r)));
      const rebuilt = MetadataImage.fromSnapshot(records, img.offset);
      expect(dump(rebuilt), `SEED=${seed} run ${run}`).toEqual(dump(img));
      expect(rebuilt, `SEED=${seed} run ${run}`).toEqual(img);
      // The snapshot does not alias the image.
      const again = snapshotRecords(rebuilt);
      expect(again).toEqual(snapshotRecords(img));
    }
  });

  it("sets the offset to the snapshot's, and an empty image snapshots to an empty image", () => {
    const img = MetadataImage.fromSnapshot(snapshotRecords(new MetadataImage()), 41);
    expect(img.offset).toBe(41);
    expect(img.topics.size + img.brokers.size + img.producerEpochs.size).toBe(0);
    expect(img.nextProducerId).toBe(0);
  });
});
