/**
 * Logs of partitions missing from the metadata image are deleted only once the image can be
 * trusted: a broker-only node starts from an empty image that fills from the voters
 * (`MetadataStore.complete` false until then), and a restarted broker catches up before the
 * controller unfences it (`holdLeadership`). Before the fix, a broker-only node deleted every
 * partition log it held at each restart (the empty image named none of them).
 */
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../../src/base/clock.ts";
import { defaultTopicConfig } from "../../../src/config/schema.ts";
import type { MetadataRecord } from "../../../src/metadata/records.ts";
import { LocalMetadataStore, type MetadataStore } from "../../../src/metadata/store.ts";
import { ReplicaManager } from "../../../src/replication/replica-manager.ts";
import { MemoryFileSystem } from "../../../src/storage/fs.ts";
import { ManualTimers } from "../service/helpers.ts";
import { openMemoryLogs } from "../storage/helpers.ts";

const HERE = 1;

function topicRecords(name: string, n: number): MetadataRecord[] {
  return [
    { type: "topic", v: 1, name, topicId: name.padStart(32, "0"), configs: {} },
    {
      type: "partition",
      v: 1,
      topic: name,
      partition: 0,
      replicas: [HERE],
      isr: [HERE],
      leader: HERE,
      leaderEpoch: 0,
      partitionEpoch: n,
    },
  ];
}

/** Node 1's logs holding partitions a-0 and b-0 on disk, and a store whose `complete` the test sets. */
function setUp() {
  const fs = new MemoryFileSystem();
  const clock = new ManualClock();
  const logs = openMemoryLogs(fs, clock);
  for (const t of ["a", "b"]) logs.create(t, 0, defaultTopicConfig);
  const inner = LocalMetadataStore.open(fs, "/d", clock);
  const state = { complete: false };
  const store: MetadataStore = {
    get image() {
      return inner.image;
    },
    commit: (decide) => inner.commit(decide),
    onChange: (fn) => inner.onChange(fn),
    close: () => inner.close(),
    get complete() {
      return state.complete;
    },
  };
  const rm = new ReplicaManager(logs, store, clock, new ManualTimers(clock), HERE);
  const held = () =>
    logs
      .all()
      .map((l) => l.tp.topic)
      .sort();
  return { logs, inner, state, rm, held };
}

describe("stray partition logs", () => {
  it("an incomplete image deletes no log; once complete, only the logs of partitions it does not name go", async () => {
    const c = setUp();
    expect(c.held()).toEqual(["a", "b"]); // empty image, incomplete: both kept at construction
    await c.inner.commit(() => topicRecords("a", 0)); // a change while incomplete: still both
    expect(c.held()).toEqual(["a", "b"]);
    c.state.complete = true;
    await c.inner.commit(() => topicRecords("c", 0));
    expect(c.held()).toEqual(["a", "c"]); // b is in no image: deleted; a and the new c stay
    c.rm.close();
  });

  it("while the broker holds leadership (catching up after a restart) no log goes; releasing it deletes the strays", async () => {
    const c = setUp();
    c.state.complete = true;
    c.rm.holdLeadership();
    await c.inner.commit(() => topicRecords("a", 0));
    expect(c.held()).toEqual(["a", "b"]);
    c.rm.releaseLeadership();
    expect(c.held()).toEqual(["a"]);
    c.rm.close();
  });
});
