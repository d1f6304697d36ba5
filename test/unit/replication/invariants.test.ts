/**
 * Replication's invariants crash (AssertionError) when broken: each is driven to fail here, both
 * through the assertion helpers and through the public API of PartitionReplica and
 * ReplicaManager, and each legal move next to it passes.
 */
import { describe, expect, it } from "vitest";
import { AssertionError } from "../../../src/base/assert.ts";
import { ManualClock } from "../../../src/base/clock.ts";
import { ManualTimers } from "../../../src/base/timers.ts";
import { defaultTopicConfig } from "../../../src/config/schema.ts";
import { MetadataImage } from "../../../src/metadata/image.ts";
import type { MetadataRecord } from "../../../src/metadata/records.ts";
import type { MetadataChange, MetadataStore } from "../../../src/metadata/store.ts";
import { encodeBatch } from "../../../src/protocol/record-batch.ts";
import { assertEpochRises, assertHwForward, assertHwWithinLog, assertIsrValid } from "../../../src/replication/invariants.ts";
import { PartitionReplica } from "../../../src/replication/partition-replica.ts";
import { ReplicaManager } from "../../../src/replication/replica-manager.ts";
import { MemoryFileSystem } from "../../../src/storage/fs.ts";
import { LogManager } from "../../../src/storage/log-manager.ts";
import { brokerRecord } from "../service/helpers.ts";
import { PartitionLog } from "../../../src/storage/partition-log.ts";

const batch = (n: number): Buffer =>
  encodeBatch(
    Array.from({ length: n }, (_, i) => ({ key: null, value: Buffer.from(`v${i}`), timestampMs: 1 })),
    { nowMs: 1 },
  );

/** `batches` batches of 2 records as a leader wrote them (offsets 0, 2, 4...): what a follower appends. */
function leaderBytes(batches: number): Buffer {
  const leader = newLog();
  for (let i = 0; i < batches; i++) leader.append(batch(2), 0);
  return Buffer.concat(leader.read(0, 1 << 20).chunks);
}

function newLog(): PartitionLog {
  return PartitionLog.open({
    fs: new MemoryFileSystem(),
    dir: "/p",
    clock: new ManualClock(0),
    config: { ...defaultTopicConfig },
    tailCacheBytes: 0,
    recover: true,
  });
}

const state = (over: Partial<{ leader: number; leaderEpoch: number; partitionEpoch: number; replicas: number[]; isr: number[] }>) => ({
  leader: 1,
  leaderEpoch: 0,
  partitionEpoch: 0,
  replicas: [1, 2, 3],
  isr: [1, 2, 3],
  ...over,
});

describe("replication assertion helpers", () => {
  it("high watermark within the log", () => {
    assertHwWithinLog("t-0", 0, 0);
    assertHwWithinLog("t-0", 5, 9);
    expect(() => assertHwWithinLog("t-0", 10, 9)).toThrow(AssertionError);
    expect(() => assertHwWithinLog("t-0", -1, 9)).toThrow(AssertionError);
    expect(() => assertHwWithinLog("t-0", 10, 9)).toThrow("t-0: high watermark 10 is past the log end offset 9");
  });

  it("high watermark forward", () => {
    assertHwForward("t-0", 4, 4);
    assertHwForward("t-0", 4, 7);
    expect(() => assertHwForward("t-0", 7, 4)).toThrow("t-0: high watermark moves backwards from 7 to 4");
  });

  it("epochs rise", () => {
    assertEpochRises("t-0", "leader epoch", -1, 0);
    assertEpochRises("t-0", "leader epoch", 3, 3);
    expect(() => assertEpochRises("t-0", "leader epoch", 3, 2)).toThrow("t-0: leader epoch goes backwards from 3 to 2");
  });

  it("ISR within the replicas, holding the leader", () => {
    assertIsrValid("t-0", [1, 2], [1, 2, 3], 1);
    assertIsrValid("t-0", [2], [1, 2, 3], -1);
    expect(() => assertIsrValid("t-0", [1, 4], [1, 2, 3], 1)).toThrow("ISR member 4 is not a replica");
    expect(() => assertIsrValid("t-0", [2, 3], [1, 2, 3], 1)).toThrow("leader 1 is not in its ISR");
    expect(() => assertIsrValid("t-0", [1, 1], [1, 2, 3], 1)).toThrow("lists a replica twice");
  });
});

describe("PartitionReplica invariants", () => {
  it("a leader's high watermark going backwards crashes", () => {
    const log = newLog();
    const r = new PartitionReplica("t", 0, log, 1);
    r.update(state({ replicas: [1, 2], isr: [1, 2] }), 0);
    log.append(batch(10), 0);
    r.onFollowerFetch(2, 6, 1);
    expect(r.hw).toBe(6);
    expect(() => {
      r.hw = 5;
    }).toThrow(AssertionError);
    expect(r.hw).toBe(6);
  });

  it("a high watermark past the log end crashes", () => {
    const log = newLog();
    const r = new PartitionReplica("t", 0, log, 2);
    r.update(state({ leader: 1, replicas: [1, 2], isr: [1, 2] }), 0);
    log.appendWithOffsets(batch(4));
    r.hw = 4;
    expect(() => {
      r.hw = 5;
    }).toThrow(/past the log end offset 4/);
  });

  it("a leader or partition epoch going backwards crashes", () => {
    const r = new PartitionReplica("t", 0, newLog(), 1);
    r.update(state({ leaderEpoch: 5, partitionEpoch: 8 }), 0);
    expect(() => r.update(state({ leaderEpoch: 4, partitionEpoch: 9 }), 1)).toThrow(/leader epoch goes backwards from 5 to 4/);
    expect(() => r.update(state({ leaderEpoch: 5, partitionEpoch: 7 }), 1)).toThrow(/partition epoch goes backwards from 8 to 7/);
    expect(r.update(state({ leaderEpoch: 5, partitionEpoch: 9, isr: [1, 2] }), 1)).toBe("isr");
  });

  it("an ISR outside the replicas, or a leader outside its own ISR, crashes", () => {
    const r = new PartitionReplica("t", 0, newLog(), 1);
    expect(() => r.update(state({ isr: [1, 2, 4] }), 0)).toThrow(AssertionError);
    expect(() => r.update(state({ isr: [2, 3] }), 0)).toThrow(/leader 1 is not in its ISR/);
    // Another broker's leadership is that broker's to check; a follower here takes it.
    expect(r.update(state({ leader: 2, isr: [2, 3] }), 0)).toBe("follower");
  });

  it("only a follower may lower its high watermark, after its log was cut", () => {
    const log = newLog();
    const r = new PartitionReplica("t", 0, log, 2);
    r.update(state({ leader: 1, replicas: [1, 2], isr: [1, 2] }), 0);
    log.appendWithOffsets(leaderBytes(4));
    r.hw = 8;
    log.truncateTo(4);
    r.clampHwToLog();
    expect(r.hw).toBe(4);
    r.update(state({ leader: 2, leaderEpoch: 1, partitionEpoch: 1, replicas: [1, 2], isr: [2] }), 1);
    expect(r.role).toBe("leader");
    expect(() => r.clampHwToLog()).toThrow(/a leader's log was cut/);
  });
});

/** A metadata store whose image the test replaces wholesale (as a snapshot does). */
class FakeStore implements MetadataStore {
  image = new MetadataImage();
  private readonly listeners = new Set<(c: MetadataChange) => void>();
  commit(): Promise<MetadataChange> {
    return Promise.reject(new Error("not here"));
  }
  onChange(fn: (c: MetadataChange) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
  /** Replaces the image with one built from `records` and tells the listeners, errors and all. */
  load(records: MetadataRecord[]): void {
    this.image = MetadataImage.fromSnapshot(records, this.image.offset + 1);
    for (const fn of this.listeners) fn({ records, offset: this.image.offset, snapshot: true });
  }
  async close(): Promise<void> {}
}

function topic(topicId: string, p: { leader: number; leaderEpoch: number; partitionEpoch: number; isr: number[] }): MetadataRecord[] {
  return [
    { type: "topic", v: 1, name: "t", topicId, configs: {} },
    { type: "partition", v: 1, topic: "t", partition: 0, replicas: [1, 2], ...p },
  ];
}

function replicaManager(): { rm: ReplicaManager; store: FakeStore } {
  const clock = new ManualClock();
  const logs = LogManager.open({
    fs: new MemoryFileSystem(),
    dataDir: "/d",
    clock,
    topicConfig: () => undefined,
    tailCacheBytes: 0,
    retentionCheckIntervalMs: 1e9,
    cleanerBackoffMs: 1e9,
    cleanerEnable: false,
    pause: () => Promise.resolve(),
    pid: 1,
    isProcessAlive: () => false,
  });
  const store = new FakeStore();
  return { rm: new ReplicaManager(logs, store, clock, new ManualTimers(), 1), store };
}

describe("ReplicaManager invariants", () => {
  it("metadata that moves a partition's leader epoch backwards crashes the broker", () => {
    const { rm, store } = replicaManager();
    store.load(topic("a", { leader: 1, leaderEpoch: 4, partitionEpoch: 4, isr: [1, 2] }));
    expect(rm.replica("t", 0)?.role).toBe("leader");
    expect(() => store.load(topic("a", { leader: 2, leaderEpoch: 3, partitionEpoch: 5, isr: [1, 2] }))).toThrow(AssertionError);
  });

  it("a topic deleted and created again under its name starts its epochs over without crashing", () => {
    const { rm, store } = replicaManager();
    store.load(topic("a", { leader: 1, leaderEpoch: 4, partitionEpoch: 4, isr: [1, 2] }));
    const before = rm.replica("t", 0);
    store.load(topic("b", { leader: 2, leaderEpoch: 0, partitionEpoch: 0, isr: [1, 2] }));
    const after = rm.replica("t", 0)!;
    expect(after).not.toBe(before);
    expect([after.topicId, after.role, after.leaderEpoch]).toEqual(["b", "follower", 0]);
  });

  it("a follower follows its leader's log start offset (DeleteRecords), as far as its own log reaches", () => {
    const { rm, store } = replicaManager();
    store.load(topic("a", { leader: 2, leaderEpoch: 0, partitionEpoch: 0, isr: [1, 2] }));
    const r = rm.replica("t", 0)!;
    rm.applyFetched(r, leaderBytes(3), 6, 0);
    expect([r.log.logStartOffset, r.log.logEndOffset]).toEqual([0, 6]);
    rm.applyFetched(r, Buffer.alloc(0), 6, 4);
    expect(r.log.logStartOffset).toBe(4);
    expect(() => r.log.read(3, 100)).toThrow(/outside the log's range/);
    rm.applyFetched(r, Buffer.alloc(0), 6, 2); // an older answer: never moves back
    expect(r.log.logStartOffset).toBe(4);
    rm.applyFetched(r, Buffer.alloc(0), 6, 9); // past this log's end: as far as it reaches
    expect(r.log.logStartOffset).toBe(6);
  });

  it("a follower learns the high watermark forward only and lowers it only by truncation", () => {
    const { rm, store } = replicaManager();
    store.load(topic("a", { leader: 2, leaderEpoch: 0, partitionEpoch: 0, isr: [1, 2] }));
    const r = rm.replica("t", 0)!;
    rm.applyFetched(r, leaderBytes(3), 5);
    expect(r.hw).toBe(5);
    rm.applyFetched(r, Buffer.alloc(0), 3); // a new leader that knows less: kept at 5
    expect(r.hw).toBe(5);
    rm.truncateFollower(r, 2); // unclean election: the divergent tail goes, and the HW with it
    expect([r.log.logEndOffset, r.hw]).toEqual([2, 2]);
  });
});

describe("ReplicaManager broker epochs in replica fetches (KIP-903)", () => {
  const broker = brokerRecord;
  const fetch = (fetchOffset: number, brokerEpoch?: number) => ({
    topic: "t",
    partition: 0,
    fetchOffset,
    lastFetchedEpoch: 0,
    currentLeaderEpoch: 0,
    maxBytes: 1 << 20,
    ...(brokerEpoch !== undefined ? { brokerEpoch } : {}),
  });

  it("a follower's fetch moves the high watermark only under its broker's current epoch, and is served either way", () => {
    const { rm, store } = replicaManager();
    const leaderState = { leader: 1, leaderEpoch: 0, partitionEpoch: 0, isr: [1, 2] };
    store.load([broker(1, 3), broker(2, 5), ...topic("a", leaderState)]);
    rm.append("t", 0, batch(4), "leader");
    // cluster-sim seed 32: broker 2 restarted and has not registered yet (-1), or its leader has
    // not applied its new registration (6): it catches up, but as no ISR member.
    for (const stale of [undefined, -1, 4, 6]) {
      const res = rm.fetchForFollower(2, fetch(4, stale));
      expect(res.error).toBeNull();
      expect(rm.replica("t", 0)!.hw).toBe(0);
    }
    expect(rm.fetchForFollower(2, fetch(0, -1)).read?.bytes).toBeGreaterThan(0);
    rm.fetchForFollower(2, fetch(4, 5));
    expect(rm.replica("t", 0)!.hw).toBe(4);
  });

  it("forgets what a follower fetched under its previous registration once the image has a new one", () => {
    const { rm, store } = replicaManager();
    const image = (epoch2: number): MetadataRecord[] => [
      broker(1, 3),
      broker(2, epoch2),
      broker(3, 4),
      { type: "topic", v: 1, name: "t", topicId: "a", configs: {} },
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
    ];
    store.load(image(5));
    rm.append("t", 0, batch(6), "leader");
    rm.fetchForFollower(2, fetch(6, 5)); // broker 2's epoch-5 process holds 0..5
    rm.fetchForFollower(3, fetch(4, 4));
    const r = rm.replica("t", 0)!;
    expect(r.hw).toBe(4);
    // Broker 2 restarted (it may have lost 4 and 5, unsynced) and registered as epoch 8.
    store.load(image(8));
    expect(r.followers.get(2)).toMatchObject({ leo: -1, brokerEpoch: -1 });
    rm.fetchForFollower(3, fetch(6, 4));
    expect(r.hw).toBe(4); // not on the word of broker 2's previous process
    rm.fetchForFollower(2, fetch(6, 8));
    expect(r.hw).toBe(6);
  });

  it("asks for a restarted follower in the ISR only once it caught up under the registration the image holds", () => {
    const { rm, store } = replicaManager();
    store.load([broker(1, 3), broker(2, 5), ...topic("a", { leader: 1, leaderEpoch: 0, partitionEpoch: 1, isr: [1] })]);
    rm.append("t", 0, batch(4), "leader");
    rm.fetchForFollower(2, fetch(4, 5));
    // Broker 2 restarts before the leader proposes it; its new registration (epoch 8) is in the image.
    store.load([broker(1, 3), broker(2, 8), ...topic("a", { leader: 1, leaderEpoch: 0, partitionEpoch: 1, isr: [1] })]);
    expect(rm.isrChanges(30_000)).toEqual([]);
    rm.fetchForFollower(2, fetch(4, -1)); // the new process before its registration answered
    expect(rm.isrChanges(30_000)).toEqual([]);
    rm.fetchForFollower(2, fetch(4, 8));
    expect(rm.isrChanges(30_000).map((c) => c.newIsr)).toEqual([[1, 2]]);
  });

  it("counts a follower it asked to add to the ISR in the high watermark from the moment it asks (maximal ISR, KIP-497)", () => {
    const { rm, store } = replicaManager();
    const image = (partitionEpoch: number, isr: number[], epoch2 = 5): MetadataRecord[] => [
      broker(1, 3),
      broker(2, epoch2),
      broker(3, 4),
      { type: "topic", v: 1, name: "t", topicId: "a", configs: {} },
      { type: "partition", v: 1, topic: "t", partition: 0, replicas: [1, 2, 3], isr, leader: 1, leaderEpoch: 0, partitionEpoch },
    ];
    store.load(image(1, [1, 2]));
    rm.append("t", 0, batch(4), "leader");
    rm.fetchForFollower(2, fetch(4, 5));
    rm.fetchForFollower(3, fetch(4, 4)); // 3, out of the ISR, caught up with the high watermark
    const r = rm.replica("t", 0)!;
    expect(r.hw).toBe(4);
    expect(rm.isrChanges(30_000).map((c) => c.newIsr)).toEqual([[1, 2, 3]]);
    // The controller may commit ISR {1,2,3} any time now and elect 3 later: nothing 3 lacks may
    // be acknowledged (cluster-sim laggard seed 2), though the ISR this leader knows is {1,2}.
    rm.append("t", 0, batch(2), "leader");
    rm.fetchForFollower(2, fetch(6, 5));
    expect(r.hw).toBe(4);
    store.load(image(1, [1, 2], 6)); // other metadata: the partition's state is the same
    rm.fetchForFollower(2, fetch(6, 6));
    expect(r.hw).toBe(4);
    store.load(image(2, [1, 2, 3], 6)); // the change, committed
    expect(r.hw).toBe(4);
    rm.fetchForFollower(3, fetch(6, 4));
    expect(r.hw).toBe(6);
  });
});
