/**
 * AlterBrokerCordons in the service layer (issue 21): the handler on an in-memory metadata store
 * refuses a node that never registered (changing nothing), passes the request to the active
 * controller from any other node, and CreateTopics / DescribeCluster through AdminHandlers see
 * the cordon (the gRPC codec: test/unit/rpc/cordon-codec.test.ts).
 */
import { afterEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../../src/base/clock.ts";
import { SeededRandom } from "../../../src/base/random.ts";
import { systemTimers } from "../../../src/base/timers.ts";
import { defaultBrokerConfig } from "../../../src/config/schema.ts";
import { LocalMetadataStore } from "../../../src/metadata/store.ts";
import { ReplicaManager } from "../../../src/replication/replica-manager.ts";
import { AdminHandlers } from "../../../src/service/admin.ts";
import { CordonHandlers } from "../../../src/service/admin-cordon.ts";
import type { ControllerPort } from "../../../src/service/admin-ports.ts";
import type { AdminChange, AdminChanges } from "../../../src/service/admin-types.ts";
import { MemoryFileSystem } from "../../../src/storage/fs.ts";
import { openMemoryLogs } from "../storage/helpers.ts";

/** A ControllerPort: the active controller unless `active` is false, then it records what it forwards. */
class Port implements ControllerPort {
  forwarded = false;
  committed = 0;
  readonly forwardedChanges: { change: AdminChange; input: unknown }[] = [];
  constructor(private readonly active = true) {}
  isActive(): boolean {
    return this.active;
  }
  async forward<K extends AdminChange>(change: K, input: AdminChanges[K]["input"]): Promise<AdminChanges[K]["result"]> {
    this.forwardedChanges.push({ change, input });
    return { results: [] } as unknown as AdminChanges[K]["result"];
  }
  committedHere(): void {
    this.committed++;
  }
}

const open: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of open.splice(0)) await close();
});

/** Node 1 of a cluster of unfenced brokers 1..4. */
async function node() {
  const fs = new MemoryFileSystem();
  const clock = new ManualClock();
  const logs = openMemoryLogs(fs, clock);
  const store = LocalMetadataStore.open(fs, "/d", clock);
  await store.commit(() =>
    [1, 2, 3, 4].map((id) => ({ type: "broker", v: 1, nodeId: id, address: `127.0.0.1:${9000 + id}`, roles: ["broker"], fenced: false })),
  );
  const rm = new ReplicaManager(logs, store, clock, systemTimers, 1);
  open.push(async () => {
    rm.close();
    await logs.close();
    await store.close();
  });
  const admin = new AdminHandlers({
    rm,
    store,
    random: new SeededRandom(7),
    config: { ...defaultBrokerConfig, nodeId: 1, numPartitions: 2 },
    clusterId: "c",
    controllerId: () => 1,
    voters: [{ id: 1, address: "127.0.0.1:9001" }],
    nodeState: () => ({ roles: ["broker", "controller"], raftRole: "leader", raftTerm: 1, commitOffset: 0, brokerState: "running" }),
    leaderOffsets: async () => {
      throw new Error("no leader offsets in this test");
    },
  });
  return { store, admin, cordons: new CordonHandlers({ store }) };
}

describe("AlterBrokerCordons", () => {
  it("cordons on the controller; new topics avoid the broker; DescribeCluster names it; uncordon undoes it", async () => {
    const n = await node();
    const port = new Port();
    expect(await n.cordons.alterBrokerCordons({ brokerIds: [4], cordoned: true }, port)).toEqual({ results: [{ brokerId: 4 }] });
    expect(port.committed).toBe(1);
    expect([...n.store.image.cordoned]).toEqual([4]);
    expect(n.admin.describeCluster().brokers.map((b) => [b.nodeId, b.cordoned])).toEqual([
      [1, false],
      [2, false],
      [3, false],
      [4, true],
    ]);
    const created = await n.admin.createTopics(
      { topics: [{ name: "t", partitions: 8, replicationFactor: 3, configs: {} }], validateOnly: false, timeoutMs: 0 },
      new Port(),
    );
    expect(created.topics[0]!.error).toBeUndefined();
    for (const p of n.store.image.topics.get("t")!.partitions) expect(p.replicas).not.toContain(4);
    // Four replicas need four brokers that take new ones: refused, naming the cordoned one.
    const wide = await n.admin.createTopics(
      { topics: [{ name: "w", partitions: 1, replicationFactor: 4, configs: {} }], validateOnly: false, timeoutMs: 0 },
      new Port(),
    );
    expect(wide.topics[0]!.error?.kind.name).toBe("INVALID_REPLICATION_FACTOR");
    expect(wide.topics[0]!.error?.message).toMatch(/cordoned, given no new replicas: 4$/);
    const grown = await n.admin.createPartitions({ topics: [{ name: "t", count: 12 }], validateOnly: false, timeoutMs: 0 }, new Port());
    expect(grown.topics[0]!.error).toBeUndefined();
    for (const p of n.store.image.topics.get("t")!.partitions) expect(p.replicas).not.toContain(4);
    // Uncordoned: a new topic over all four brokers fits again.
    await n.cordons.alterBrokerCordons({ brokerIds: [4], cordoned: false }, new Port());
    const again = await n.admin.createTopics(
      { topics: [{ name: "w", partitions: 1, replicationFactor: 4, configs: {} }], validateOnly: false, timeoutMs: 0 },
      new Port(),
    );
    expect(again.topics[0]!.error).toBeUndefined();
  });

  it("refuses a node that never registered and changes nothing; an empty request is refused as a whole", async () => {
    const n = await node();
    const offset = n.store.image.offset;
    const res = await n.cordons.alterBrokerCordons({ brokerIds: [9, 3], cordoned: true }, new Port());
    expect(res.results.map((r) => [r.brokerId, r.error?.kind.name ?? null])).toEqual([
      [9, "BROKER_ID_NOT_REGISTERED"],
      [3, null],
    ]);
    expect([...n.store.image.cordoned]).toEqual([3]); // 3 on its own; nothing for 9
    expect(n.store.image.offset).toBe(offset + 1);
    const unknownOnly = await n.cordons.alterBrokerCordons({ brokerIds: [9], cordoned: true }, new Port());
    expect(unknownOnly.results[0]!.error?.message).toBe("broker_ids[0]: no broker with node id 9 ever registered");
    expect(n.store.image.offset).toBe(offset + 1);
    await expect(n.cordons.alterBrokerCordons({ brokerIds: [], cordoned: true }, new Port())).rejects.toThrow(
      "broker_ids: at least one is required",
    );
  });

  it("a node that is not the active controller passes the request on, unless it was passed here", async () => {
    const n = await node();
    const follower = new Port(false);
    await n.cordons.alterBrokerCordons({ brokerIds: [2], cordoned: true }, follower);
    expect(follower.forwardedChanges).toEqual([{ change: "alterBrokerCordons", input: { brokerIds: [2], cordoned: true } }]);
    expect(n.store.image.cordoned.size).toBe(0);
    const passedHere = new Port(false);
    passedHere.forwarded = true;
    await n.cordons.alterBrokerCordons({ brokerIds: [2], cordoned: true }, passedHere);
    expect(passedHere.forwardedChanges).toEqual([]);
    expect([...n.store.image.cordoned]).toEqual([2]);
  });
});
