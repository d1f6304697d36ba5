/**
 * ConsumeSession reading partitions this broker holds no replica of at their leaders (its
 * `ConsumeRemote` port). Broker 1 runs the group (groups-fixture.ts); broker 2 is a second real
 * ReplicaManager with its own logs and metadata store, fed the same metadata records. The remote
 * port is implemented over broker 2 with the real service calls a forwarded request runs there
 * (service/fetch.ts `fetch`, service/list-offsets.ts `listOffsets`): no gRPC, no mocks.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { RillError } from "../../../src/base/errors.ts";
import { ManualClock, systemClock } from "../../../src/base/clock.ts";
import { systemTimers } from "../../../src/base/timers.ts";
import type { MetadataRecord } from "../../../src/metadata/records.ts";
import { LocalMetadataStore } from "../../../src/metadata/store.ts";
import { encodeBatch } from "../../../src/protocol/record-batch.ts";
import { ReplicaManager } from "../../../src/replication/replica-manager.ts";
import {
  type AssignmentChange,
  type ConsumeRemote,
  type ConsumeSink,
  ConsumeSession,
  type ConsumeSubscription,
  type DeliveredRecords,
} from "../../../src/service/consume-session.ts";
import { fetch } from "../../../src/service/fetch.ts";
import { type Cancellation, OffsetSpec } from "../../../src/service/fetch-types.ts";
import { listOffsets } from "../../../src/service/list-offsets.ts";
import { MemoryFileSystem } from "../../../src/storage/fs.ts";
import { openMemoryLogs } from "../storage/helpers.ts";
import { type GroupWorld, groupWorld, recordsIn, subscription, until } from "./groups-fixture.ts";
import { brokerRecord } from "./helpers.ts";
import { badGzipBatch } from "./corrupt-batches.ts";

type Event =
  | { readonly kind: "assignment"; readonly change: AssignmentChange }
  | { readonly kind: "records"; readonly records: DeliveredRecords; readonly values: string[] }
  | { readonly kind: "end"; readonly error: RillError | null };

class Sink implements ConsumeSink {
  readonly events: Event[] = [];
  /** Set when records came of a partition not owned at that moment. */
  strayRecords: string | null = null;
  private readonly owned = new Set<string>();
  assignment(change: AssignmentChange): void {
    for (const tp of change.revoked) this.owned.delete(`${tp.topic}-${tp.partition}`);
    for (const tp of change.assigned) this.owned.add(`${tp.topic}-${tp.partition}`);
    this.events.push({ kind: "assignment", change });
  }
  records(records: DeliveredRecords): boolean {
    const k = `${records.topic}-${records.partition}`;
    if (!this.owned.has(k)) this.strayRecords ??= k;
    this.events.push({ kind: "records", records, values: recordsIn(records.chunks, records.firstOffset).map((v) => v.value) });
    return true;
  }
  commitResult(): void {}
  end(error: RillError | null): void {
    this.events.push({ kind: "end", error });
  }
  ownedNow(): string[] {
    return [...this.owned].sort();
  }
  values(topic: string, partition: number): string[] {
    return this.events.flatMap((e) =>
      e.kind === "records" && e.records.topic === topic && e.records.partition === partition ? e.values : [],
    );
  }
  ends(): Array<RillError | null> {
    return this.events.flatMap((e) => (e.kind === "end" ? [e.error] : []));
  }
}

type Store = { commit(f: () => MetadataRecord[]): Promise<void> };

/** Broker 2: its own logs, metadata store and ReplicaManager. */
interface Broker2 {
  readonly rm: ReplicaManager;
  readonly store: LocalMetadataStore;
  close(): Promise<void>;
}

async function broker2(): Promise<Broker2> {
  const fs = new MemoryFileSystem();
  const clock = new ManualClock(1_000_000);
  const logs = openMemoryLogs(fs, clock);
  const store = LocalMetadataStore.open(fs, "/d", clock);
  // A real clock: a fetch there long-polls until its deadline passes.
  const rm = new ReplicaManager(logs, store, systemClock, systemTimers, 2);
  return {
    rm,
    store,
    close: async () => {
      rm.close();
      await logs.close();
      await store.close();
    },
  };
}

/** What the remote port was asked, for the assertions. */
interface Calls {
  fetches: number;
  lookups: number;
  /** Fetches in flight. */
  readonly inflight: Set<Cancellation>;
}

/** The port over broker 2, as the rpc layer's forwarded Fetch and ListOffsets run there. */
function remoteOver(b2: Broker2, calls: Calls): ConsumeRemote {
  return {
    fetch: async (leader, input, cancel) => {
      if (leader !== 2) throw new Error(`asked broker ${leader}`);
      calls.fetches++;
      calls.inflight.add(cancel);
      try {
        const r = await fetch(b2.rm, input, cancel, null);
        r.release();
        return r;
      } finally {
        calls.inflight.delete(cancel);
      }
    },
    listOffsets: async (leader, partitions, readCommitted) => {
      if (leader !== 2) throw new Error(`asked broker ${leader}`);
      calls.lookups++;
      const asked = partitions.map((p) => ({
        topic: p.topic,
        partition: p.partition,
        spec: p.spec === "earliest" ? OffsetSpec.EARLIEST : p.spec === "latest" ? OffsetSpec.LATEST : OffsetSpec.TIMESTAMP,
        timestampMs: typeof p.spec === "object" ? BigInt(p.spec.timestampMs) : 0n,
      }));
      return listOffsets(b2.rm, asked, readCommitted ? 2 : 1).map((o) => ({ offset: o.offset, error: o.error }));
    },
  };
}

let w: GroupWorld;
let b2: Broker2;
let calls: Calls;
const sessions: ConsumeSession[] = [];

/** Metadata records on both brokers. */
async function both(records: () => MetadataRecord[]): Promise<void> {
  await (w.rm as unknown as { metadata: Store }).metadata.commit(records);
  await b2.store.commit(records);
}

const placed = (topic: string, p: number, at: number) => ({
  type: "partition" as const,
  v: 1 as const,
  topic,
  partition: p,
  replicas: [at],
  isr: [at],
  leader: at,
  leaderEpoch: 0,
  partitionEpoch: 0,
});

function produce2(topic: string, partition: number, values: readonly string[]): void {
  b2.rm.append(
    topic,
    partition,
    encodeBatch(
      values.map((value) => ({ value })),
      { nowMs: 1_000_000 },
    ),
    "leader",
  );
}

function open(sub: ConsumeSubscription): { session: ConsumeSession; sink: Sink } {
  const sink = new Sink();
  const session = new ConsumeSession(w.rt, w.rm, systemTimers, sink, undefined, undefined, remoteOver(b2, calls));
  sessions.push(session);
  session.subscribe(sub);
  return { session, sink };
}

const offset = (topic: string, partition: number, o: number) => ({ topic, partition, offset: o, metadata: "", leaderEpoch: -1 });
const range = (prefix: string, n: number, from = 0) => Array.from({ length: n }, (_, i) => `${prefix}${from + i}`);

beforeEach(async () => {
  w = await groupWorld({});
  b2 = await broker2();
  calls = { fetches: 0, lookups: 0, inflight: new Set() };
  await both(() => [1, 2].map((id) => brokerRecord(id, 5)));
  // far-0 is held here (broker 1); far-1 and far-2 only by broker 2.
  await both(() => [
    { type: "topic", v: 1, name: "far", topicId: `${"0".repeat(31)}8`, configs: {} },
    placed("far", 0, 1),
    placed("far", 1, 2),
    placed("far", 2, 2),
  ]);
});
afterEach(async () => {
  for (const s of sessions.splice(0)) s.close();
  await w.close();
  await b2.close();
});

describe("ConsumeSession: partitions with no replica here are read at their leaders", () => {
  it("delivers every record of local and remote partitions in order; later appends come by long poll; a new member starts at the committed offset the leader's log holds", async () => {
    w.produce("far", 0, ["x0", "x1"]);
    produce2("far", 1, range("y", 5));
    produce2("far", 2, ["z0"]);
    const a = open(subscription({ topics: ["far"] }));
    await until(() => a.sink.values("far", 1).length === 5 && a.sink.values("far", 2).length === 1, "the remote partitions' records");
    expect(a.sink.values("far", 0)).toEqual(["x0", "x1"]);
    expect(a.sink.values("far", 1)).toEqual(range("y", 5));
    expect(a.sink.values("far", 2)).toEqual(["z0"]);
    expect(calls.lookups).toBeGreaterThan(0); // the starts were looked up at broker 2

    produce2("far", 1, ["y5"]);
    await until(() => a.sink.values("far", 1).length === 6, "an append at the leader");
    expect(a.sink.values("far", 1).at(-1)).toBe("y5");
    a.session.commit(1n, [offset("far", 1, 3)]);
    a.session.close();
    expect(a.sink.strayRecords).toBeNull();
    expect(a.sink.ends()).toEqual([null]);

    // Committed 3: the next member starts there (the leader's log holds 0..6), not at the earliest.
    const b = open(subscription({ topics: ["far"] }));
    await until(() => b.sink.values("far", 1).length === 3, "far-1 from the committed offset");
    expect(b.sink.values("far", 1)).toEqual(["y3", "y4", "y5"]);
    expect(b.sink.ends()).toEqual([]);
  });

  it("sends no more than maxOutstandingRecords of remote partitions beyond the commits; each commit lets more through", async () => {
    for (let i = 0; i < 10; i++) produce2("far", 1, [`y${i}`]); // one batch per record: the window holds exactly
    const a = open(subscription({ topics: ["far"], maxOutstandingRecords: 4 }));
    await until(() => a.sink.values("far", 1).length === 4, "the first window");
    await new Promise((r) => setTimeout(r, 150));
    expect(a.sink.values("far", 1)).toEqual(range("y", 4));
    a.session.commit(1n, [offset("far", 1, 4)]);
    await until(() => a.sink.values("far", 1).length === 8, "the second window");
    await new Promise((r) => setTimeout(r, 150));
    expect(a.sink.values("far", 1)).toEqual(range("y", 8));
    a.session.commit(2n, [offset("far", 1, 8)]);
    await until(() => a.sink.values("far", 1).length === 10, "the rest");
    expect(a.sink.values("far", 1)).toEqual(range("y", 10));
    expect(a.sink.ends()).toEqual([]);
  });

  it("a seek to earliest is looked up at the leader; a partition whose leadership comes here is read here from where it was", async () => {
    produce2("far", 1, range("y", 3));
    const a = open(subscription({ topics: ["far"], autoOffsetReset: "latest" }));
    await until(() => a.sink.ownedNow().length === 3, "the assignment");
    // "latest" at the leader: nothing of the 3 records already there.
    produce2("far", 1, ["y3"]);
    await until(() => a.sink.values("far", 1).length === 1, "the record after the start");
    expect(a.sink.values("far", 1)).toEqual(["y3"]);
    a.session.seek({ topic: "far", partition: 1, to: "earliest", seekId: 7n });
    await until(() => a.sink.values("far", 1).length === 5, "far-1 again from the earliest offset").catch((e: unknown) => {
      throw new Error(`${String(e)}: ${JSON.stringify(a.sink.values("far", 1))} ${JSON.stringify(calls)} ${JSON.stringify(a.sink.ends())}`);
    });
    expect(a.sink.values("far", 1)).toEqual(["y3", "y0", "y1", "y2", "y3"]);
    const last = a.sink.events.filter((e) => e.kind === "records").at(-1);
    expect(last?.kind === "records" && last.records.seekId).toBe(7n);

    // far-2's leadership comes to broker 1 (with no data there: a fresh replica of an empty partition).
    const fetchesBefore = calls.fetches;
    await both(() => [
      { type: "partition-change", v: 1, topic: "far", partition: 2, leader: 1, isr: [1], leaderEpoch: 1, partitionEpoch: 1, replicas: [1] },
    ]);
    w.produce("far", 2, ["local"]);
    await until(() => a.sink.values("far", 2).length === 1, "far-2 read here");
    expect(a.sink.values("far", 2)).toEqual(["local"]);
    expect(calls.fetches).toBeGreaterThanOrEqual(fetchesBefore);
    expect(a.sink.strayRecords).toBeNull();
    expect(a.sink.ends()).toEqual([]);
  });

  it("a revoked remote partition sends nothing after its revocation; closing the session cancels its remote reads", async () => {
    produce2("far", 1, ["y0"]);
    produce2("far", 2, ["z0"]);
    const a = open(subscription({ topics: ["far"] }));
    await until(() => a.sink.values("far", 1).length === 1 && a.sink.values("far", 2).length === 1, "a's records");
    a.session.commit(1n, [offset("far", 1, 1), offset("far", 2, 1)]);
    const b = open(subscription({ topics: ["far"] }));
    await until(() => b.sink.ownedNow().length > 0 && a.sink.ownedNow().length + b.sink.ownedNow().length === 3, "the split");
    for (let i = 1; i <= 5; i++) {
      produce2("far", 1, [`y${i}`]);
      produce2("far", 2, [`z${i}`]);
    }
    await until(
      () =>
        a.sink.values("far", 1).length + b.sink.values("far", 1).length >= 6 &&
        a.sink.values("far", 2).length + b.sink.values("far", 2).length >= 6,
      "the appends, each at its owner",
    );
    expect(a.sink.strayRecords).toBeNull();
    expect(b.sink.strayRecords).toBeNull();
    // Each partition from the committed offset on, once.
    for (const p of [1, 2]) {
      const prefix = p === 1 ? "y" : "z";
      const got = [...a.sink.values("far", p), ...b.sink.values("far", p)];
      expect(new Set(got)).toEqual(new Set(range(prefix, 6)));
    }
    await until(() => calls.inflight.size > 0, "a remote long poll in flight");
    a.session.close();
    b.session.close();
    const inFlight = [...calls.inflight];
    expect(inFlight.length).toBeGreaterThan(0);
    expect(inFlight.every((c) => c.aborted)).toBe(true);
    const fetches = calls.fetches;
    await until(() => calls.inflight.size === 0, "the cancelled reads to end", 1000);
    await new Promise((r) => setTimeout(r, 100));
    expect(calls.fetches).toBe(fetches); // no read after the end
  });

  it("NOT_LEADER_OR_FOLLOWER at the old leader: tried again with a doubling backoff, then read where the metadata names the leader", async () => {
    produce2("far", 1, ["y0"]);
    const a = open(subscription({ topics: ["far"] }));
    await until(() => a.sink.values("far", 1).length === 1 && a.sink.ownedNow().length === 3, "far-1's first record");
    // Broker 2 learns first that far-2 (empty so far) moved to broker 1; broker 1 does not know yet.
    const moved = () => [
      {
        type: "partition-change" as const,
        v: 1 as const,
        topic: "far",
        partition: 2,
        leader: 1,
        isr: [1],
        leaderEpoch: 1,
        partitionEpoch: 1,
        replicas: [1],
      },
    ];
    await b2.store.commit(moved);
    const before = calls.fetches;
    await new Promise((r) => setTimeout(r, 400));
    // Each answer is NOT_LEADER_OR_FOLLOWER at once: without the backoff (50, 100, 200 ms...) this were hundreds.
    expect(calls.fetches - before).toBeLessThanOrEqual(8);
    expect(a.sink.ends()).toEqual([]);
    await (w.rm as unknown as { metadata: Store }).metadata.commit(moved);
    w.produce("far", 2, ["here0"]);
    await until(() => a.sink.values("far", 2).length === 1, "far-2 read here");
    expect(a.sink.values("far", 2)).toEqual(["here0"]);
    // far-1 is still read at broker 2.
    produce2("far", 1, ["y1"]);
    await until(() => a.sink.values("far", 1).length === 2, "far-1 after the backoff");
    expect(a.sink.strayRecords).toBeNull();
  });

  it("a committed offset past a local follower's high watermark waits for the follower; it is not out of range (no re-delivery from the earliest)", async () => {
    // lag-0: broker 2 leads, broker 1 follows.
    const lag = () => [
      { type: "topic" as const, v: 1 as const, name: "lag", topicId: `${"0".repeat(31)}9`, configs: {} },
      { ...placed("lag", 0, 2), replicas: [2, 1], isr: [2, 1] },
    ];
    await both(lag);
    const follower = w.rm.replica("lag", 0)!;
    expect(follower.role).toBe("follower");
    const batch = (from: number) =>
      encodeBatch(
        range("v", 5, from).map((value) => ({ value })),
        { nowMs: 1_000_000, baseOffset: from, partitionLeaderEpoch: 0 },
      );
    // The follower holds offsets 0..4, but the high watermark it knows is 2.
    w.rm.applyFetched(follower, batch(0), 2);
    const c = w.rt.run("cg", (shard, now) =>
      shard.commitOffsets({ groupId: "cg", memberId: "", memberEpoch: -1, offsets: [offset("lag", 0, 3)] }, now),
    );
    expect(c.error).toBeNull();
    const a = open(subscription({ topics: ["lag"] }));
    await until(() => a.sink.ownedNow().length === 1, "the assignment");
    await new Promise((r) => setTimeout(r, 100));
    // Before: 3 > 2 looked out of range, and "earliest" re-delivered v0, v1, v2.
    expect(a.sink.values("lag", 0)).toEqual([]);
    w.rm.applyFetched(follower, Buffer.alloc(0), 5);
    await until(() => a.sink.values("lag", 0).length === 2, "the records from the committed offset");
    expect(a.sink.values("lag", 0)).toEqual(["v3", "v4"]);
    expect(a.sink.ends()).toEqual([]);
  });

  it("a batch of a remote partition that cannot be read: that partition's CORRUPT_MESSAGE once, the others go on; a commit past it resumes it", async () => {
    produce2("far", 1, ["a", "b"]); // offsets 0-1
    b2.rm.append("far", 1, badGzipBatch(["x", "y", "z"]), "leader"); // offsets 2-4
    produce2("far", 1, ["c"]); // offset 5
    produce2("far", 2, ["z0"]);
    const a = open(subscription({ topics: ["far"], decode: true }));
    const corrupt = () => a.sink.events.flatMap((e) => (e.kind === "records" && e.records.error !== null ? [e.records] : []));
    await until(() => corrupt().length === 1 && a.sink.values("far", 2).length === 1, "far-1's CORRUPT_MESSAGE and far-2's record");
    expect(a.sink.values("far", 1)).toEqual(["a", "b"]);
    const bad = corrupt()[0]!;
    expect([bad.partition, bad.firstOffset, bad.nextOffset, bad.error!.kind.name]).toEqual([1, 2, 5, "CORRUPT_MESSAGE"]);
    produce2("far", 2, ["z1"]);
    await until(() => a.sink.values("far", 2).length === 2, "far-2 goes on");
    expect(corrupt()).toHaveLength(1); // reported once, far-1 paused
    expect(a.sink.values("far", 1)).toEqual(["a", "b"]);
    a.session.commit(1n, [offset("far", 1, 5)]);
    await until(() => a.sink.values("far", 1).length === 3, "far-1 after the skipped batch");
    expect(a.sink.values("far", 1)).toEqual(["a", "b", "c"]);
    expect(a.sink.ends()).toEqual([]);
  });
});
