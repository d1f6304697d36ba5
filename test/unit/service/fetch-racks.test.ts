/**
 * KIP-392 at the service level: which replica a leader points a reader at
 * (`ReplicaManager.preferredReadReplica`, `replica.selector` = rack-aware), and a Fetch that
 * answers those partitions at once with no data and `preferredReadReplica` while the others are
 * read as usual.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { MetadataRecord } from "../../../src/metadata/records.ts";
import { encodeBatch } from "../../../src/protocol/record-batch.ts";
import { fetch } from "../../../src/service/fetch.ts";
import { type FetchInput, IsolationLevel, RecordFormat } from "../../../src/service/fetch-types.ts";
import { type Core, HERE, brokerRecord, openCore } from "./helpers.ts";

const cores: Core[] = [];
afterEach(async () => {
  for (const c of cores.splice(0)) await c.close();
});

/** Node 1 (here, rack a) leads "t"-0 with followers 2 (rack b) and 3 (rack b) and "t"-1 alone; 4 is in rack c. */
async function setUp(): Promise<Core> {
  const core = openCore();
  cores.push(core);
  const racks: Record<number, string> = { 1: "a", 2: "b", 3: "b", 4: "c" };
  const store = (core.rm as unknown as { metadata: { commit(f: () => MetadataRecord[]): Promise<void> } }).metadata;
  await store.commit(() => [1, 2, 3, 4].map((id) => ({ ...brokerRecord(id, 5), rack: racks[id]! }) as MetadataRecord));
  await core.topic("t", [{ leader: HERE, followers: [2, 3] }, HERE]);
  // (partition 0's high watermark stays 0 until its followers fetch; partition 1's moves at once)
  for (const p of [0, 1]) core.rm.append("t", p, encodeBatch([{ value: `v${p}` }], { nowMs: 1 }), "leader");
  core.rm.readReplicaSelector = "rack-aware";
  return core;
}

function input(clientRack: string): FetchInput {
  return {
    partitions: [0, 1].map((partition) => ({ topic: "t", partition, offset: 0n, maxBytes: 0 })),
    maxWaitMs: 0,
    minBytes: 1,
    maxBytes: 0,
    format: RecordFormat.RECORDS,
    isolationLevel: IsolationLevel.READ_UNCOMMITTED,
    clientRack,
  };
}

const noCancel = () => ({ aborted: false, onabort: null });

describe("preferred read replica (KIP-392)", () => {
  it("points a reader in a follower's rack at an in-sync follower there; otherwise reads here", async () => {
    const c = await setUp();
    expect(c.rm.preferredReadReplica("t", 0, "b")).toBe(2); // 2 and 3 both in b, no progress known: the lowest id
    expect(c.rm.preferredReadReplica("t", 0, "a")).toBeNull(); // the leader's own rack
    expect(c.rm.preferredReadReplica("t", 0, "c")).toBeNull(); // no replica there
    expect(c.rm.preferredReadReplica("t", 0, "")).toBeNull(); // no rack given
    expect(c.rm.preferredReadReplica("t", 1, "b")).toBeNull(); // no follower at all
    c.rm.readReplicaSelector = "leader";
    expect(c.rm.preferredReadReplica("t", 0, "b")).toBeNull(); // the default selector: always the leader
  });

  it("prefers the follower this leader saw furthest along, and never one out of the ISR or fenced", async () => {
    const c = await setUp();
    const r = c.rm.replica("t", 0)!;
    r.followers.get(3)!.leo = 1;
    expect(c.rm.preferredReadReplica("t", 0, "b")).toBe(3);
    r.isr = [1, 2];
    expect(c.rm.preferredReadReplica("t", 0, "b")).toBe(2);
    const store = (c.rm as unknown as { metadata: { commit(f: () => MetadataRecord[]): Promise<void> } }).metadata;
    await store.commit(() => [{ type: "broker-fence", v: 1, nodeId: 2, brokerEpoch: 5, fenced: true }]);
    r.isr = [1, 2]; // (the commit applied the image's ISR again)
    expect(c.rm.preferredReadReplica("t", 0, "b")).toBeNull();
  });

  it("a Fetch answers the pointed partition with no data and the follower, and reads the others", async () => {
    const c = await setUp();
    const res = await fetch(c.rm, input("b"), noCancel(), null);
    const [p0, p1] = res.partitions;
    expect([p0!.preferredReadReplica, p0!.records, p0!.batches, p0!.error, p0!.highWatermark, p0!.nextOffset]).toEqual([
      2,
      null,
      null,
      null,
      0,
      0,
    ]);
    expect(p1!.preferredReadReplica).toBeUndefined();
    expect(p1!.records!.map((r) => Buffer.from(r.value!).toString())).toEqual(["v1"]);
    // Without a rack both are read here.
    const plain = await fetch(c.rm, input(""), noCancel(), null);
    // (partition 0 has nothing below its high watermark yet: read here, empty)
    expect(plain.partitions.map((p) => [p.preferredReadReplica, p.error, p.records?.length ?? 0])).toEqual([
      [undefined, null, 0],
      [undefined, null, 1],
    ]);
  });
});
