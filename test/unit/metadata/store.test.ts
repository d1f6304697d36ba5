import { describe, expect, it } from "vitest";
import { ManualClock } from "../../../src/base/clock.ts";
import { Errors, RillError } from "../../../src/base/errors.ts";
import { SeededRandom } from "../../../src/base/random.ts";
import {
  decideAlterConfigs,
  decideCreatePartitions,
  decideCreateTopic,
  decideDeleteTopic,
  validateTopicName,
} from "../../../src/metadata/controller.ts";
import { LocalMetadataStore } from "../../../src/metadata/store.ts";
import { MemoryFileSystem } from "../../../src/storage/fs.ts";

const rnd = new SeededRandom(1);
const defaults = { partitions: 1, brokers: [1], random: rnd };

async function codeOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
  } catch (e) {
    if (e instanceof RillError) return e.code;
    throw e;
  }
  throw new Error("expected a RillError");
}

describe("metadata store and controller decisions", () => {
  it("creates topics with partitions, survives a restart by replay, and deletes", async () => {
    const fs = new MemoryFileSystem();
    const clock = new ManualClock();
    const s = LocalMetadataStore.open(fs, "/data", clock);
    await s.commit((img) =>
      decideCreateTopic(img, { name: "orders", partitions: 6, replicationFactor: 1, configs: { "retention.ms": "1000" } }, defaults),
    );
    await s.commit((img) => decideCreateTopic(img, { name: "audit", partitions: 0, replicationFactor: 0, configs: {} }, defaults));
    await s.commit((img) => decideCreatePartitions(img, "audit", 3, [1], rnd));
    await s.commit((img) => decideAlterConfigs(img, "orders", { "cleanup.policy": "compact" }, ["retention.ms"]));
    await s.close();
    fs.crash(); // every commit was fsynced
    const again = LocalMetadataStore.open(fs, "/data", clock);
    const orders = again.image.topics.get("orders")!;
    expect(orders.partitions.length).toBe(6);
    expect(orders.partitions.map((p) => p.leader)).toEqual([1, 1, 1, 1, 1, 1]);
    expect(orders.configs).toEqual({ "cleanup.policy": "compact" });
    expect(again.image.topics.get("audit")!.partitions.length).toBe(3);
    await again.commit((img) => decideDeleteTopic(img, "orders"));
    expect(again.image.topicNames()).toEqual(["audit"]);
    await again.close();
  });

  it("rejects bad requests with specific errors and writes nothing", async () => {
    const fs = new MemoryFileSystem();
    const s = LocalMetadataStore.open(fs, "/data", new ManualClock());
    await s.commit((img) => decideCreateTopic(img, { name: "t", partitions: 2, replicationFactor: 1, configs: {} }, defaults));
    const offset = s.image.offset;
    const create = (name: string, partitions = 1, rf = 1, configs: Record<string, string> = {}) =>
      s.commit((img) => decideCreateTopic(img, { name, partitions, replicationFactor: rf, configs }, defaults));
    expect(await codeOf(create("t"))).toBe(Errors.TOPIC_ALREADY_EXISTS.code);
    expect(await codeOf(create("bad name"))).toBe(Errors.INVALID_TOPIC.code);
    expect(await codeOf(create("__internal"))).toBe(Errors.INVALID_TOPIC.code);
    expect(await codeOf(create("x".repeat(250)))).toBe(Errors.INVALID_TOPIC.code);
    expect(await codeOf(create("ok", -1))).toBe(Errors.INVALID_PARTITIONS.code);
    expect(await codeOf(create("ok", 1, 2))).toBe(Errors.INVALID_REPLICATION_FACTOR.code);
    expect(await codeOf(create("ok", 1, 1, { "segment.bytes": "tiny" }))).toBe(Errors.INVALID_CONFIG.code);
    expect(await codeOf(s.commit((img) => decideCreatePartitions(img, "t", 1, [1], rnd)))).toBe(Errors.INVALID_PARTITIONS.code);
    expect(await codeOf(s.commit((img) => decideDeleteTopic(img, "nope")))).toBe(Errors.UNKNOWN_TOPIC_OR_PARTITION.code);
    expect(await codeOf(s.commit((img) => decideAlterConfigs(img, "t", { "no.such": "1" }, [])))).toBe(Errors.INVALID_CONFIG.code);
    expect(s.image.offset).toBe(offset);
    expect(s.image.topicNames()).toEqual(["t"]);
    await s.close();
  });

  it("validates topic names as Kafka does", () => {
    for (const ok of ["a", "orders.v1", "my_topic-2", "x".repeat(249)]) expect(() => validateTopicName(ok)).not.toThrow();
    for (const bad of ["", ".", "..", "a/b", "ü", "x".repeat(250)]) expect(() => validateTopicName(bad)).toThrow(RillError);
  });
});
