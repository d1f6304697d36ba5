/**
 * The active controller's internal topics with cordoned brokers (issue 21): `__consumer_offsets`
 * is placed only on brokers that are not cordoned, and while too few of them remain for its
 * replication factor the controller waits (no failed attempt at every check) and creates it once
 * a broker is uncordoned. And the cordon outlives a restart of the quorum store whose log was
 * compacted behind a snapshot. A real single-voter quorum store on an in-memory file system; time
 * is a ManualClock and the checks are run by hand.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../../src/base/clock.ts";
import { SeededRandom } from "../../../src/base/random.ts";
import { ManualTimers } from "../../../src/base/timers.ts";
import { ClusterController } from "../../../src/broker/cluster-controller.ts";
import { OFFSETS_TOPIC } from "../../../src/coordinator/group-runtime.ts";
import { QuorumMetadataStore } from "../../../src/metadata/quorum-store.ts";
import { MemoryFileSystem } from "../../../src/storage/fs.ts";

const open: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  for (const close of open.splice(0).reverse()) await close();
});

/** A single-voter quorum store of node 1 on `fs`, snapshotting every `snapshotIntervalRecords` entries. */
function openStore(fs: MemoryFileSystem, snapshotIntervalRecords = 1000): QuorumMetadataStore {
  const store = QuorumMetadataStore.open({
    fs,
    dataDir: "/data",
    nodeId: 1,
    voters: [1],
    random: new SeededRandom(14),
    transport: { send() {} },
    timers: new ManualTimers(),
    tickMs: 100,
    electionTicks: 10,
    snapshotIntervalRecords,
  });
  open.push(() => store.close());
  return store;
}

/** Node 1 leads a single-voter quorum; brokers 1, 2, 3 are registered and unfenced; broker `cordoned` is cordoned first. */
async function start(offsetsReplicationFactor: number, cordoned: number) {
  const clock = new ManualClock();
  const store = openStore(new MemoryFileSystem());
  const errors: string[] = [];
  const controller = new ClusterController({
    store,
    clock,
    random: new SeededRandom(15),
    clusterId: "c",
    sessionTimeoutMs: 60_000,
    offsetsReplicationFactor,
    checkIntervalMs: 100,
    log: { info() {}, warn() {}, error: (obj, msg) => errors.push(`${msg}: ${JSON.stringify(obj)}`) },
    localNodeId: 1,
    localIncarnation: "inc-1",
  });
  open.push(() => controller.close());
  for (const nodeId of [1, 2, 3]) {
    const r = await controller.register({
      nodeId,
      clusterId: "c",
      incarnationId: `inc-${nodeId}`,
      address: `127.0.0.1:${nodeId}`,
      rack: "",
      roles: ["broker"],
    });
    await controller.heartbeat({
      nodeId,
      brokerEpoch: r.brokerEpoch,
      currentMetadataOffset: store.image.offset,
      wantFence: false,
      wantShutDown: false,
    });
  }
  await store.commit(() => [{ type: "broker-cordon", v: 1, nodeId: cordoned, cordoned: true }]);
  const check = async () => {
    clock.advance(100);
    await controller.runChecks();
  };
  await check(); // the first check of the term gives every broker a fresh session
  return { store, check, errors };
}

describe("internal topics and cordoned brokers", () => {
  it("__consumer_offsets gets no replica on a cordoned broker", async () => {
    const { store, check, errors } = await start(2, 3);
    await check();
    const t = store.image.topics.get(OFFSETS_TOPIC);
    expect(t).toBeDefined();
    const holders = new Set(t!.partitions.flatMap((p) => p.replicas));
    expect([...holders].sort()).toEqual([1, 2]);
    expect(errors).toEqual([]);
  });

  it("waits while too few brokers are not cordoned, then creates it once one is uncordoned", async () => {
    const { store, check, errors } = await start(3, 2);
    for (let i = 0; i < 5; i++) await check();
    expect(store.image.topics.has(OFFSETS_TOPIC)).toBe(false);
    expect(errors).toEqual([]); // it waits; it does not fail at every check
    await store.commit(() => [{ type: "broker-cordon", v: 1, nodeId: 2, cordoned: false }]);
    await check();
    expect(store.image.topics.get(OFFSETS_TOPIC)?.partitions[0]?.replicas).toHaveLength(3);
  });
});

describe("the cordon across a restart", () => {
  it("a store reopened from a snapshot, its log compacted past the cordon record, keeps the cordon", async () => {
    const fs = new MemoryFileSystem();
    const store = openStore(fs, 4);
    await store.commit(() =>
      [1, 2, 3].map((id) => ({ type: "broker", v: 1, nodeId: id, address: `h:${id}`, roles: ["broker"], fenced: false })),
    );
    await store.commit(() => [{ type: "broker-cordon", v: 1, nodeId: 3, cordoned: true }]);
    await store.commit(() => [{ type: "broker-cordon", v: 1, nodeId: 2, cordoned: true }]);
    await store.commit(() => [{ type: "broker-cordon", v: 1, nodeId: 2, cordoned: false }]);
    // Enough entries after them for a snapshot and a compaction past them.
    for (let i = 1; i <= 12; i++) await store.commit(() => [{ type: "producer-ids", v: 1, nextProducerId: i * 1000 }]);
    await store.close();
    const files = JSON.stringify(fs.readdir("/data/metadata/raft"));
    expect(files).toMatch(/snapshot/);
    const reopened = openStore(fs, 4);
    expect(reopened.image.nextProducerId).toBe(12_000);
    expect([...reopened.image.cordoned]).toEqual([3]);
    expect(reopened.image.placementBrokers()).toEqual([1, 2]);
  });
});
