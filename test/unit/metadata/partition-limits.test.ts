/** `max.partitions` in the controller's decisions: a placement past a broker's limit is refused. */
import { describe, expect, it } from "vitest";
import { SeededRandom } from "../../../src/base/random.ts";
import { decideCreatePartitions, decideCreateTopic, decideRegisterBroker, type PartitionLimits } from "../../../src/metadata/controller.ts";
import { MetadataImage, snapshotRecords } from "../../../src/metadata/image.ts";
import { commit, expectRejected, heartbeat, register } from "./cluster-helpers.ts";

function cluster(ids: number[]): MetadataImage {
  const image = new MetadataImage();
  for (const id of ids) register(image, id);
  for (const id of ids) heartbeat(image, id);
  return image;
}

const limits: PartitionLimits = new Map([[1, { max: 10, why: "10 = open-file limit 1024 - ..." }]]);
const topic = (name: string, partitions: number, replicationFactor = 1) => ({ name, partitions, replicationFactor, configs: {} });

describe("max.partitions", () => {
  it("a single broker: a topic that would pass the limit is refused naming max.partitions and why; up to it is fine", () => {
    const image = cluster([1]);
    const random = new SeededRandom(1);
    const err = expectRejected(image, "INVALID_PARTITIONS", () =>
      decideCreateTopic(image, topic("big", 11), { partitions: 1, brokers: [1], random, limits }),
    );
    expect(err.message).toMatch(/max\.partitions/);
    expect(err.message).toMatch(/open-file limit 1024/);
    expect(err.message).toMatch(/broker 1 holds 0 partitions and may hold at most 10/);
    commit(image, decideCreateTopic(image, topic("a", 6), { partitions: 1, brokers: [1], random, limits }));
    expectRejected(image, "INVALID_PARTITIONS", () => decideCreatePartitions(image, "a", 11, [1], random, limits));
    commit(image, decideCreatePartitions(image, "a", 10, [1], random, limits));
    expectRejected(image, "INVALID_PARTITIONS", () =>
      decideCreateTopic(image, topic("b", 1), { partitions: 1, brokers: [1], random, limits }),
    );
  });

  it("in a cluster, replicas count on every broker they are placed on; brokers without a known limit are not checked", () => {
    const image = cluster([1, 2, 3]);
    const random = new SeededRandom(2);
    // rf 3 puts a replica of each of 11 partitions on broker 1
    expectRejected(image, "INVALID_PARTITIONS", () =>
      decideCreateTopic(image, topic("r3", 11, 3), { partitions: 1, brokers: [1, 2, 3], random, limits }),
    );
    // rf 1 over three brokers: about a third of 24 on broker 1
    commit(image, decideCreateTopic(image, topic("r1", 24, 1), { partitions: 1, brokers: [1, 2, 3], random, limits }));
    // without limits nothing is checked
    commit(image, decideCreateTopic(image, topic("free", 100, 3), { partitions: 1, brokers: [1, 2, 3], random }));
  });

  it("a broker's limit sent at registration is kept in the image (and its snapshot) and checked for placements on it", () => {
    const image = new MetadataImage();
    for (const id of [1, 2])
      commit(
        image,
        decideRegisterBroker(
          image,
          {
            nodeId: id,
            incarnationId: `i${id}`,
            address: `h${id}:1`,
            rack: "",
            roles: ["broker"],
            ...(id === 2 ? { maxPartitions: 5 } : {}),
          },
          () => false,
        ),
      );
    for (const id of [1, 2]) heartbeat(image, id);
    expect(image.brokers.get(2)!.maxPartitions).toBe(5);
    expect(image.brokers.get(1)!.maxPartitions).toBeUndefined();
    const copy = new MetadataImage();
    commit(copy, snapshotRecords(image));
    expect(copy.brokers.get(2)!.maxPartitions).toBe(5);
    const random = new SeededRandom(3);
    const err = expectRejected(image, "INVALID_PARTITIONS", () =>
      decideCreateTopic(image, topic("wide", 6, 2), { partitions: 1, brokers: [1, 2], random }),
    );
    expect(err.message).toMatch(/broker 2 holds 0 partitions and may hold at most 5 \(max\.partitions: as the broker registered it\)/);
    commit(image, decideCreateTopic(image, topic("ok", 5, 2), { partitions: 1, brokers: [1, 2], random }));
    expectRejected(image, "INVALID_PARTITIONS", () => decideCreatePartitions(image, "ok", 6, [1, 2], random));
  });
});
