/**
 * Helpers for the cluster-decision tests: an image that commits decisions one record per offset
 * (as LocalMetadataStore does), and checks that a rejected decision leaves the image untouched.
 */
import { expect } from "vitest";
import { Errors, RillError, type ErrorName } from "../../../src/base/errors.ts";
import { SeededRandom } from "../../../src/base/random.ts";
import { decideBrokerHeartbeat, decideCreateTopic, decideRegisterBroker } from "../../../src/metadata/controller.ts";
import { MetadataImage, type PartitionState } from "../../../src/metadata/image.ts";
import type { MetadataRecord } from "../../../src/metadata/records.ts";

/** Every field of an image as plain data (Maps as entry lists, in order), for deep comparison. */
export function dump(image: MetadataImage): unknown {
  return JSON.parse(
    JSON.stringify({
      offset: image.offset,
      nextProducerId: image.nextProducerId,
      topics: [...image.topics.entries()],
      brokers: [...image.brokers.entries()],
      producerEpochs: [...image.producerEpochs.entries()],
      transactionalIds: [...image.transactionalIds.entries()],
      cordoned: [...image.cordoned].sort((a, b) => a - b), // issue 21
    }),
  );
}

/** Applies `records` to `image`, one offset each after the image's current one. */
export function commit(image: MetadataImage, records: readonly MetadataRecord[]): void {
  for (const r of records) image.apply(r, image.offset + 1);
}

/** Runs `decide`, expecting it to throw the RillError `name` and to leave `image` as it was. */
export function expectRejected(image: MetadataImage, name: ErrorName, decide: () => unknown): RillError {
  const before = dump(image);
  let thrown: unknown;
  try {
    decide();
  } catch (e) {
    thrown = e;
  }
  expect(thrown, `expected ${name}`).toBeInstanceOf(RillError);
  const err = thrown as RillError;
  expect(err.kind.name, err.message).toBe(Errors[name].name);
  expect(dump(image)).toEqual(before);
  return err;
}

/** Runs `decide` and checks it did not change `image` (decisions only return records). */
export function pure<T>(image: MetadataImage, decide: () => T): T {
  const before = dump(image);
  const out = decide();
  expect(dump(image)).toEqual(before);
  return out;
}

/** Registers broker `nodeId` (incarnation `inc-<nodeId>` unless given) and returns its epoch. */
export function register(
  image: MetadataImage,
  nodeId: number,
  incarnationId = `inc-${nodeId}`,
  isAlive: (id: number) => boolean = () => false,
  uncleanShutdown = false,
): number {
  commit(
    image,
    decideRegisterBroker(
      image,
      { nodeId, incarnationId, address: `h${nodeId}:9092`, rack: "", roles: ["broker"], uncleanShutdown },
      isAlive,
    ),
  );
  return image.brokers.get(nodeId)!.epoch;
}

/** A caught-up heartbeat from `nodeId`, committed; returns the response. */
export function heartbeat(image: MetadataImage, nodeId: number, opts: { wantFence?: boolean; wantShutDown?: boolean } = {}) {
  const b = image.brokers.get(nodeId)!;
  const d = decideBrokerHeartbeat(image, {
    nodeId,
    brokerEpoch: b.epoch,
    currentMetadataOffset: image.offset,
    wantFence: opts.wantFence ?? false,
    wantShutDown: opts.wantShutDown ?? false,
  });
  commit(image, d.records);
  return d.response;
}

/** An image with brokers `ids` registered and unfenced. */
export function clusterOf(ids: readonly number[]): MetadataImage {
  const image = new MetadataImage();
  for (const id of ids) register(image, id);
  for (const id of ids) heartbeat(image, id);
  return image;
}

/** Creates `name` over the image's unfenced brokers. */
export function createTopic(
  image: MetadataImage,
  name: string,
  partitions: number,
  rf: number,
  configs: Record<string, string> = {},
  random = new SeededRandom(7),
): void {
  commit(
    image,
    decideCreateTopic(
      image,
      { name, partitions, replicationFactor: rf, configs },
      { partitions: 1, brokers: image.unfencedBrokers(), random },
    ),
  );
}

/** The state of `topic`-`partition`. */
export function part(image: MetadataImage, topic: string, partition = 0): PartitionState {
  return image.topics.get(topic)!.partitions[partition]!;
}

/** Creates topic `name` with exactly these replica lists (ISR = replicas, leader = the first). */
export function topicWith(
  image: MetadataImage,
  name: string,
  replicas: readonly (readonly number[])[],
  configs: Record<string, string> = {},
): void {
  const records: MetadataRecord[] = [{ type: "topic", v: 1, name, topicId: `id-${name}`, configs }];
  replicas.forEach((r, partition) =>
    records.push({
      type: "partition",
      v: 1,
      topic: name,
      partition,
      replicas: r,
      isr: r,
      leader: r[0]!,
      leaderEpoch: 0,
      partitionEpoch: 0,
    }),
  );
  commit(image, records);
}
