import { describe, expect, it } from "vitest";
import { type BrokerLog, type ChangeSource, groupChangeLogger, type IsrCounters, logMetadataChanges } from "../../../src/broker/log.ts";
import { MetadataImage } from "../../../src/metadata/image.ts";
import type { MetadataRecord } from "../../../src/metadata/records.ts";
import type { MetadataChange } from "../../../src/metadata/store.ts";

/** A metadata store stand-in: an image, and changes applied to it then announced. */
class Store implements ChangeSource {
  image = new MetadataImage();
  private offset = 0;
  private readonly listeners = new Set<(c: MetadataChange) => void>();
  onChange(fn: (c: MetadataChange) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
  apply(...records: MetadataRecord[]): void {
    for (const r of records) this.image.apply(r, ++this.offset);
    for (const fn of this.listeners) fn({ records, offset: this.offset });
  }
}

class Lines implements BrokerLog {
  readonly lines: Array<[string, Record<string, unknown>]> = [];
  info(obj: object, msg = ""): void {
    this.lines.push([msg, obj as Record<string, unknown>]);
  }
  warn(obj: object, msg = ""): void {
    this.lines.push([msg, obj as Record<string, unknown>]);
  }
  error(obj: object, msg = ""): void {
    this.lines.push([msg, obj as Record<string, unknown>]);
  }
  msgs(): string[] {
    return this.lines.map(([m]) => m);
  }
}

const broker = (nodeId: number): MetadataRecord => ({
  type: "broker",
  v: 1,
  nodeId,
  address: `h:${nodeId}`,
  roles: ["broker"],
  fenced: false,
});
const change = (leader: number, isr: number[], epoch: number): MetadataRecord => ({
  type: "partition-change",
  v: 1,
  topic: "t",
  partition: 0,
  leader,
  isr,
  leaderEpoch: epoch,
  partitionEpoch: epoch,
});

describe("logMetadataChanges", () => {
  it("logs each change once with its fields, and counts the ISR changes of partitions this node leads", () => {
    const store = new Store();
    store.apply(broker(1), broker(2), broker(3));
    const log = new Lines();
    const isr: IsrCounters = { shrinks: 0, expands: 0 };
    const stop = logMetadataChanges(store, log, 1, isr);
    store.apply(
      { type: "topic", v: 1, name: "t", topicId: "ab", configs: {} },
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
    );
    store.apply(change(1, [1, 2], 1)); // node 3 leaves the ISR of a partition node 1 leads
    store.apply(change(2, [2], 2)); // leadership moves to node 2, node 1 leaves the ISR
    store.apply(change(2, [2, 1], 3)); // node 1 is back, under node 2: not node 1's to count
    store.apply({ type: "config", v: 1, topic: "t", configs: { "retention.ms": "1000" } });
    const binding = {
      principal: "User:bob",
      host: "*",
      resourceType: "TOPIC",
      resourceName: "t",
      patternType: "LITERAL",
      operation: "READ",
      permission: "ALLOW",
    } as const;
    store.apply({ type: "acl", v: 1, id: "acl-1", binding });
    store.apply({ type: "remove-acl", v: 1, id: "acl-1" });
    store.apply({ type: "remove-topic", v: 1, name: "t", topicId: "ab" });
    stop();
    store.apply({ type: "topic", v: 1, name: "after", topicId: "cd", configs: {} });
    expect(log.msgs()).toEqual([
      "topic created",
      "partition created",
      "ISR shrunk",
      "leader changed",
      "ISR shrunk",
      "ISR expanded",
      "topic config changed",
      "ACL created",
      "ACL deleted",
      "topic deleted",
    ]);
    expect(log.lines[2]![1]).toMatchObject({ topic: "t", partition: 0, isr: [1, 2], previousIsr: [1, 2, 3], removed: [3], leader: 1 });
    expect(log.lines[3]![1]).toMatchObject({ topic: "t", partition: 0, leader: 2, previousLeader: 1, leaderEpoch: 2 });
    expect(log.lines[8]![1]).toMatchObject({ aclId: "acl-1", principal: "User:bob", operation: "READ", resourceName: "t" });
    expect(isr).toEqual({ shrinks: 1, expands: 0 });
  });

  it("after a snapshot, compares with the snapshot's image (no line per partition it held)", () => {
    const store = new Store();
    store.apply(
      broker(1),
      { type: "topic", v: 1, name: "t", topicId: "ab", configs: {} },
      { type: "partition", v: 1, topic: "t", partition: 0, replicas: [1], isr: [1], leader: 1, leaderEpoch: 0, partitionEpoch: 0 },
    );
    const log = new Lines();
    logMetadataChanges(store, log, 1, { shrinks: 0, expands: 0 });
    store.apply({
      type: "partition",
      v: 1,
      topic: "t",
      partition: 0,
      replicas: [1, 2],
      isr: [1],
      leader: 1,
      leaderEpoch: 1,
      partitionEpoch: 1,
    });
    expect(log.msgs()).toEqual(["partition reassigned"]);
    expect(log.lines[0]![1]).toMatchObject({ replicas: [1, 2], previousReplicas: [1] });
  });
});

describe("groupChangeLogger", () => {
  it("logs a member's first record as joined, its tombstone as left, new epochs as rebalances", () => {
    const log = new Lines();
    const write = groupChangeLogger(log);
    const member = {
      type: "member",
      v: 1,
      key: "member:g:m1",
      groupId: "g",
      memberId: "m1",
      instanceId: null,
      subscribedTopics: ["t"],
      rebalanceTimeoutMs: 1000,
      sessionTimeoutMs: 1000,
      clientId: "c",
      clientHost: "127.0.0.1",
    } as const;
    write([member, { type: "group", v: 1, key: "group:g", groupId: "g", epoch: 1, assignor: "uniform", topicPartitions: { t: 1 } }]);
    write([member]); // a heartbeat rewriting the member: no second line
    write([{ type: "member-tombstone", v: 1, key: "member:g:m1", groupId: "g", memberId: "m1" }]);
    expect(log.msgs()).toEqual(["group member joined", "group rebalanced", "group member left"]);
    expect(log.lines[0]![1]).toMatchObject({ group: "g", member: "m1", clientId: "c", clientHost: "127.0.0.1", topics: ["t"] });
  });
});
