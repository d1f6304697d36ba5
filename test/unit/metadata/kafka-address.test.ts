/**
 * A broker's Kafka address (issue 15): registered, kept in the image and its snapshot, and what
 * Kafka's Metadata lists (clusterMetadata): only brokers with one, not fenced; offline replicas
 * are those on fenced or unknown brokers.
 */
import { describe, expect, it } from "vitest";
import { decideRegisterBroker } from "../../../src/metadata/controller.ts";
import { MetadataImage, snapshotRecords } from "../../../src/metadata/image.ts";
import { clusterMetadata } from "../../../src/service/cluster-metadata.ts";
import { commit } from "./cluster-helpers.ts";

function registered(): MetadataImage {
  const image = new MetadataImage();
  for (const id of [1, 2, 3])
    commit(
      image,
      decideRegisterBroker(
        image,
        {
          nodeId: id,
          incarnationId: `i${id}`,
          address: `h${id}:50051`,
          rack: id === 1 ? "r1" : "",
          roles: ["broker"],
          ...(id !== 3 ? { kafkaAddress: `h${id}:9092` } : {}),
        },
        () => false,
      ),
    );
  return image;
}

describe("a broker's Kafka address", () => {
  it("is registered and survives a snapshot", () => {
    const image = registered();
    expect(image.brokers.get(1)?.kafkaAddress).toBe("h1:9092");
    expect(image.brokers.get(3)?.kafkaAddress).toBeUndefined();
    const copy = new MetadataImage();
    commit(copy, snapshotRecords(image));
    expect(copy.brokers.get(2)?.kafkaAddress).toBe("h2:9092");
    expect(copy.brokers.get(3)?.kafkaAddress).toBeUndefined();
  });

  it("is what Metadata lists: brokers with a Kafka listener that are not fenced", () => {
    const image = registered();
    // Registered brokers start fenced.
    expect(clusterMetadata(image, { clusterId: "c", controllerId: 1 }, null).brokers).toEqual([]);
    for (const id of [1, 2, 3]) {
      commit(image, [{ type: "broker-fence", v: 1, nodeId: id, brokerEpoch: image.brokers.get(id)!.epoch, fenced: false }]);
    }
    const md = clusterMetadata(image, { clusterId: "c", controllerId: 1 }, ["nope"]);
    expect(md.brokers).toEqual([
      { nodeId: 1, kafkaAddress: "h1:9092", rack: "r1" },
      { nodeId: 2, kafkaAddress: "h2:9092", rack: null },
    ]);
    expect(md.topics).toEqual([{ name: "nope", exists: false, topicId: "", internal: false, partitions: [] }]);
  });

  it("answers partitions with their offline replicas (fenced or unknown brokers)", () => {
    const image = registered();
    commit(image, [{ type: "broker-fence", v: 1, nodeId: 1, brokerEpoch: image.brokers.get(1)!.epoch, fenced: false }]);
    commit(image, [
      { type: "topic", v: 1, name: "t", topicId: "ab".repeat(16), configs: {} },
      { type: "partition", v: 1, topic: "t", partition: 0, replicas: [1, 2, 9], isr: [1], leader: 1, leaderEpoch: 4, partitionEpoch: 0 },
    ]);
    const [t] = clusterMetadata(image, { clusterId: "c", controllerId: 1 }, null).topics;
    expect(t).toEqual({
      name: "t",
      exists: true,
      topicId: "ab".repeat(16),
      internal: false,
      partitions: [{ partition: 0, leader: 1, leaderEpoch: 4, replicas: [1, 2, 9], isr: [1], offline: [2, 9] }],
    });
  });
});
