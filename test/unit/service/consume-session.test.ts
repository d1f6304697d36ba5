/**
 * ConsumeSession (src/service/consume-session.ts) driven by domain events over an in-memory
 * broker, its outputs captured by a sink: no gRPC, no generated code. The sessions heartbeat on
 * real timers, but group changes make them heartbeat at once, so each step settles quickly.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { RillError } from "../../../src/base/errors.ts";
import { systemTimers } from "../../../src/base/timers.ts";
import { encodeBatch } from "../../../src/protocol/record-batch.ts";
import {
  type AssignmentChange,
  type CommitResultOutput,
  type ConsumeSink,
  ConsumeSession,
  type ConsumeSubscription,
  type DeliveredRecords,
  REVOKE_GRACE_MS,
} from "../../../src/service/consume-session.ts";
import { GroupsService } from "../../../src/service/groups.ts";
import { type GroupWorld, groupWorld, recordsIn, subscription, until } from "./groups-fixture.ts";
import type { MetadataRecord } from "../../../src/metadata/records.ts";
import { brokerRecord } from "./helpers.ts";

type Event =
  | { readonly kind: "assignment"; readonly change: AssignmentChange }
  | { readonly kind: "records"; readonly records: DeliveredRecords; readonly values: Array<{ offset: number; value: string }> }
  | { readonly kind: "commit"; readonly result: CommitResultOutput }
  | { readonly kind: "end"; readonly error: RillError | null };

/** Captures a session's outputs in order; `full` makes `records` answer false (a full buffer). */
class TestSink implements ConsumeSink {
  readonly events: Event[] = [];
  full = false;

  assignment(change: AssignmentChange): void {
    this.events.push({ kind: "assignment", change });
  }
  records(records: DeliveredRecords): boolean {
    this.events.push({ kind: "records", records, values: recordsIn(records.chunks, records.firstOffset) });
    return !this.full;
  }
  commitResult(result: CommitResultOutput): void {
    this.events.push({ kind: "commit", result });
  }
  end(error: RillError | null): void {
    this.events.push({ kind: "end", error });
  }

  /** Partitions owned now, as "topic-partition", from the assignment events. */
  owned(): string[] {
    const owned = new Set<string>();
    for (const e of this.events) {
      if (e.kind !== "assignment") continue;
      for (const tp of e.change.revoked) owned.delete(`${tp.topic}-${tp.partition}`);
      for (const tp of e.change.assigned) owned.add(`${tp.topic}-${tp.partition}`);
    }
    return [...owned].sort();
  }
  /** Values delivered for `topic`-`partition`, in order. */
  values(topic: string, partition: number): string[] {
    return this.events.flatMap((e) =>
      e.kind === "records" && e.records.topic === topic && e.records.partition === partition ? e.values.map((v) => v.value) : [],
    );
  }
  commits(): CommitResultOutput[] {
    return this.events.flatMap((e) => (e.kind === "commit" ? [e.result] : []));
  }
  ends(): Array<RillError | null> {
    return this.events.flatMap((e) => (e.kind === "end" ? [e.error] : []));
  }
  /** The next offset to commit for `topic`-`partition`: after the last records delivered. */
  nextOffset(topic: string, partition: number): number {
    const last = this.events.filter((e) => e.kind === "records" && e.records.topic === topic && e.records.partition === partition).at(-1);
    return last?.kind === "records" ? last.records.nextOffset : -1;
  }
}

const offset = (topic: string, partition: number, o: number) => ({ topic, partition, offset: o, metadata: "", leaderEpoch: -1 });

let w: GroupWorld;
let groups: GroupsService;
const sessions: ConsumeSession[] = [];

function open(sub?: ConsumeSubscription): { session: ConsumeSession; sink: TestSink } {
  const sink = new TestSink();
  const session = new ConsumeSession(w.rt, w.rm, systemTimers, sink);
  sessions.push(session);
  if (sub) session.subscribe(sub);
  return { session, sink };
}
const members = (groupId = "cg") => groups.listGroups([]).find((g) => g.groupId === groupId)?.members ?? 0;

beforeEach(async () => {
  w = await groupWorld({ t: 2, other: 1 });
  groups = new GroupsService(w.rt, w.rm);
});
afterEach(async () => {
  for (const s of sessions.splice(0)) s.close();
  await w.close();
});

describe("ConsumeSession: a member's life", () => {
  it("subscribes, is assigned, receives records, commits, has a partition revoked (no records of it after), and leaves", async () => {
    w.produce("t", 0, ["a0", "a1", "a2"]);
    w.produce("t", 1, ["b0", "b1"]);
    const a = open(subscription());

    // Joined: the first assignment names every partition; then records of both, from the start.
    await until(() => a.sink.values("t", 0).length === 3 && a.sink.values("t", 1).length === 2, "a's first records");
    const first = a.sink.events[0]!;
    expect(first.kind).toBe("assignment");
    if (first.kind === "assignment") {
      expect(first.change.memberId).not.toBe("");
      expect(first.change.revoked).toEqual([]);
    }
    expect(a.sink.owned()).toEqual(["t-0", "t-1"]);
    expect(a.sink.values("t", 0)).toEqual(["a0", "a1", "a2"]);
    expect(a.sink.values("t", 1)).toEqual(["b0", "b1"]);

    // Commits are answered with the commit id, and stored.
    a.session.commit(1n, [offset("t", 0, 3), offset("t", 1, 2)]);
    await until(() => a.sink.commits().length === 1, "the first commit_result");
    expect(a.sink.commits()[0]).toEqual({
      commitId: 1n,
      offsets: [
        { topic: "t", partition: 0, offset: 3, error: null },
        { topic: "t", partition: 1, offset: 2, error: null },
      ],
      error: null,
    });
    expect((await groups.fetchOffsets("cg", null)).map((o) => [o.partition, o.offset])).toEqual([
      [0, 3],
      [1, 2],
    ]);

    // New records, not committed yet; then a second member joins and takes one partition away.
    w.produce("t", 0, ["a3"]);
    w.produce("t", 1, ["b2"]);
    await until(() => a.sink.values("t", 0).length === 4 && a.sink.values("t", 1).length === 3, "a's second records");
    const b = open(subscription({ clientId: "b" }));
    await until(() => a.sink.events.some((e) => e.kind === "assignment" && e.change.revoked.length > 0), "a revocation for a");
    const revokeAt = a.sink.events.findIndex((e) => e.kind === "assignment" && e.change.revoked.length > 0);
    const revokeEvent = a.sink.events[revokeAt]!;
    if (revokeEvent.kind !== "assignment") throw new Error("unreachable");
    expect(revokeEvent.change.revoked).toHaveLength(1);
    const gone = revokeEvent.change.revoked[0]!;
    const kept = gone.partition === 0 ? 1 : 0;

    // The revoked partition's uncommitted records can still be committed (its grace), which
    // hands it over to b at once.
    expect(b.sink.owned()).toEqual([]);
    a.session.commit(2n, [offset("t", gone.partition, a.sink.nextOffset("t", gone.partition))]);
    await until(() => a.sink.commits().length === 2, "the second commit_result");
    expect(a.sink.commits()[1]!.offsets.map((o) => o.error)).toEqual([null]);
    // Well within REVOKE_GRACE_MS: the commit, not the grace running out, released it.
    await until(() => b.sink.owned().length === 1, "b's assignment", REVOKE_GRACE_MS / 2);
    expect(b.sink.owned()).toEqual([`t-${gone.partition}`]);

    // Records keep coming for both partitions: a gets only the one it kept, b the other.
    w.produce("t", 0, ["a4", "a5"]);
    w.produce("t", 1, ["b3", "b4"]);
    await until(() => a.sink.values("t", kept).length === (kept === 0 ? 6 : 5), "a's records of the kept partition");
    await until(() => b.sink.values("t", gone.partition).length === 2, "b's records of the moved partition");
    const afterRevoke = a.sink.events.slice(revokeAt + 1);
    expect(afterRevoke.filter((e) => e.kind === "records" && e.records.partition === gone.partition)).toEqual([]);
    expect(b.sink.values("t", gone.partition)).toEqual(gone.partition === 0 ? ["a4", "a5"] : ["b3", "b4"]);

    // A commit of a partition a no longer owns gets an error in its result and is not applied.
    const before = (await groups.fetchOffsets("cg", null)).find((o) => o.partition === gone.partition)!.offset;
    a.session.commit(3n, [offset("t", gone.partition, before + 2)]);
    await until(() => a.sink.commits().length === 3, "the third commit_result");
    const refused = a.sink.commits()[2]!;
    expect(refused.commitId).toBe(3n);
    expect(refused.offsets[0]!.error?.kind.name).toBe("STALE_MEMBER_EPOCH");
    expect((await groups.fetchOffsets("cg", null)).find((o) => o.partition === gone.partition)!.offset).toBe(before);

    // Leaving: the session ends once, a is gone from the group and b takes everything.
    expect(members()).toBe(2);
    a.session.close();
    a.session.close();
    expect(a.sink.ends()).toEqual([null]);
    expect(members()).toBe(1);
    await until(() => b.sink.owned().length === 2, "b owning both partitions");
    const described = groups.describeGroups(["cg"])[0]!.group!;
    expect(described.members.map((m) => [m.clientId, m.clientHost])).toEqual([["b", "test-host"]]);
    const eventsAtEnd = a.sink.events.length;
    w.produce("t", kept, ["late"]);
    a.session.commit(4n, [offset("t", kept, 1)]);
    await new Promise((r) => setTimeout(r, 30));
    expect(a.sink.events.length).toBe(eventsAtEnd); // nothing after the end
    b.session.close();
    expect(members()).toBe(0);
  });

  it("starts where the group committed, or at the log end with autoOffsetReset latest", async () => {
    w.produce("t", 0, ["x0", "x1", "x2"]);
    await groups.commitOffsets({ groupId: "cg", memberId: "", memberEpoch: -1, offsets: [offset("t", 0, 2)] });
    const a = open(subscription({ autoOffsetReset: "latest" }));
    await until(() => a.sink.values("t", 0).length === 1, "records from the committed offset");
    expect(a.sink.values("t", 0)).toEqual(["x2"]);
    w.produce("t", 1, ["y0"]); // t-1 has no commit: started at its end (0), so this one comes
    await until(() => a.sink.values("t", 1).length === 1, "the new record of t-1");
    expect(a.sink.values("t", 1)).toEqual(["y0"]);
  });

  it("with autoOffsetReset none and no committed offset, ends with OFFSET_OUT_OF_RANGE naming the partition", async () => {
    const a = open(subscription({ autoOffsetReset: "none", topics: ["other"] }));
    await until(() => a.sink.ends().length === 1, "the end");
    expect(a.sink.ends()[0]?.kind.name).toBe("OFFSET_OUT_OF_RANGE");
    expect(a.sink.ends()[0]?.message).toMatch(/^other-0: has no committed offset/);
  });
});

describe("ConsumeSession: credit and back-pressure", () => {
  it("sends at most maxOutstandingRecords beyond the last commit; flow credit and commits let more through", async () => {
    for (let i = 0; i < 8; i++) w.produce("other", 0, [`r${i}`]);
    const a = open(subscription({ topics: ["other"], maxOutstandingRecords: 2 }));
    await until(() => a.sink.values("other", 0).length === 2, "the first 2 records");
    await new Promise((r) => setTimeout(r, 50));
    expect(a.sink.values("other", 0)).toEqual(["r0", "r1"]);
    a.session.flow(3, 0);
    await until(() => a.sink.values("other", 0).length === 5, "3 more records for the flow credit");
    await new Promise((r) => setTimeout(r, 50));
    expect(a.sink.values("other", 0)).toHaveLength(5);
    a.session.commit(1n, [offset("other", 0, 2)]);
    await until(() => a.sink.values("other", 0).length === 7, "2 more records for the commit");
    await new Promise((r) => setTimeout(r, 50));
    expect(a.sink.values("other", 0)).toEqual(["r0", "r1", "r2", "r3", "r4", "r5", "r6"]);
  });

  it("bounds bytes by maxOutstandingBytes; flow bytes grant more", async () => {
    for (let i = 0; i < 4; i++) w.produce("other", 0, ["v".repeat(500)]);
    const batchBytes = encodeBatch([{ value: "v".repeat(500) }], { nowMs: 1 }).length;
    const a = open(subscription({ topics: ["other"], maxOutstandingBytes: batchBytes }));
    await until(() => a.sink.values("other", 0).length === 1, "one batch");
    await new Promise((r) => setTimeout(r, 50));
    expect(a.sink.values("other", 0)).toHaveLength(1);
    a.session.flow(0, batchBytes);
    await until(() => a.sink.values("other", 0).length === 2, "one more batch");
    await new Promise((r) => setTimeout(r, 50));
    expect(a.sink.values("other", 0)).toHaveLength(2);
  });

  it("a full transport holds records until drained()", async () => {
    w.produce("other", 0, ["r0"]);
    const a = open();
    a.sink.full = true;
    a.session.subscribe(subscription({ topics: ["other"] }));
    await until(() => a.sink.values("other", 0).length === 1, "the first message");
    w.produce("other", 0, ["r1"]);
    await new Promise((r) => setTimeout(r, 50));
    expect(a.sink.values("other", 0)).toEqual(["r0"]); // waiting for drained(), not for data
    a.session.drained();
    await until(() => a.sink.values("other", 0).length === 2, "r1 after drained()");
    w.produce("other", 0, ["r2"]);
    await new Promise((r) => setTimeout(r, 50));
    expect(a.sink.values("other", 0)).toEqual(["r0", "r1"]);
    a.sink.full = false;
    a.session.drained();
    await until(() => a.sink.values("other", 0).length === 3, "r2 after drained()");
    w.produce("other", 0, ["r3"]);
    await until(() => a.sink.values("other", 0).length === 4, "r3: the transport has room again");
  });
});

describe("ConsumeSession: pause, resume, seek and a regex subscription", () => {
  it("a paused partition gets nothing (and holds no credit) until resumed; a seek moves it and tags what follows", async () => {
    for (let i = 0; i < 3; i++) w.produce("other", 0, [`o${i}`]);
    for (let i = 0; i < 3; i++) w.produce("t", 0, [`t${i}`]);
    const a = open(subscription({ topics: ["other", "t"], maxOutstandingRecords: 3 }));
    await until(() => a.sink.values("other", 0).length + a.sink.values("t", 0).length === 3, "the first 3 records (the credit)");
    const first = a.sink.values("other", 0).length > 0 ? "other" : "t";
    const second = first === "other" ? "t" : "other";
    // Pausing the partition that took the credit lets the other one have it.
    a.session.pause([{ topic: first, partition: 0 }], true);
    await until(() => a.sink.values(second, 0).length === 3, "the other partition's records");
    w.produce(first, 0, ["late"]);
    await new Promise((r) => setTimeout(r, 50));
    expect(a.sink.values(first, 0)).toHaveLength(3);
    a.session.pause([{ topic: first, partition: 0 }], false);
    a.session.commit(1n, [offset(first, 0, 3), offset(second, 0, 3)]);
    await until(() => a.sink.values(first, 0).length === 4, "the record written while paused, after resume");
    a.session.seek({ topic: first, partition: 0, to: 1, seekId: 7n });
    await until(() => a.sink.values(first, 0).length === 7, "records again from offset 1");
    const after = a.sink.events.filter((e) => e.kind === "records" && e.records.topic === first).at(-1);
    expect(after?.kind === "records" && after.records.firstOffset).toBe(1);
    expect(after?.kind === "records" && after.records.seekId).toBe(7n);
    a.session.seek({ topic: first, partition: 0, to: "latest", seekId: 8n });
    a.session.seek({ topic: "not-owned", partition: 0, to: 0, seekId: 9n }); // ignored
    w.produce(first, 0, ["newest"]);
    await until(() => a.sink.values(first, 0).at(-1) === "newest", "the record after the end it sought");
    expect(a.sink.ends()).toEqual([]);
  });

  it("a topic_regex subscription owns the matching topics only; a bad pattern is INVALID_REQUEST", async () => {
    const a = open(subscription({ topics: [], topicRegex: "oth.*" }));
    await until(() => a.sink.owned().length === 1, "the matching topic's partition");
    expect(a.sink.owned()).toEqual(["other-0"]);
    const b = open(subscription({ groupId: "cg2", topics: [], topicRegex: "(" }));
    await until(() => b.sink.ends().length === 1, "the bad pattern's end");
    expect(b.sink.ends()[0]!.kind.name).toBe("INVALID_REQUEST");
    expect(b.sink.ends()[0]!.message).toMatch(/^subscribe.topic_regex: /);
    const c = open(subscription({ groupId: "cg3", topics: ["t"], topicRegex: "t" }));
    await until(() => c.sink.ends().length === 1, "topics and a pattern");
    expect(c.sink.ends()[0]!.message).toMatch(/exclusive/);
  });
});

describe("ConsumeSession: bad events end the session", () => {
  const endOf = async (a: { sink: TestSink }): Promise<RillError> => {
    await until(() => a.sink.ends().length > 0, "the end");
    expect(a.sink.ends()).toHaveLength(1);
    return a.sink.ends()[0]!;
  };

  it("a commit or flow before subscribe: INVALID_REQUEST naming subscribe", async () => {
    const a = open();
    a.session.commit(1n, [offset("t", 0, 1)]);
    const e = await endOf(a);
    expect([e.kind.name, e.message]).toEqual(["INVALID_REQUEST", "commit: the first message must be subscribe"]);
    const b = open();
    b.session.flow(1, 0);
    expect((await endOf(b)).message).toBe("flow: the first message must be subscribe");
    expect(await groups.fetchOffsets("cg", null)).toEqual([]);
  });

  it("a second subscribe: INVALID_REQUEST; the member leaves", async () => {
    const a = open(subscription());
    await until(() => a.sink.owned().length === 2, "the assignment");
    a.session.subscribe(subscription());
    expect((await endOf(a)).message).toBe("subscribe: sent twice on one stream");
    expect(members()).toBe(0);
  });

  it("an invalid subscription names its field and creates no group", async () => {
    const cases: Array<[Partial<ConsumeSubscription>, string, RegExp]> = [
      [{ topics: ["nope"] }, "UNKNOWN_TOPIC_OR_PARTITION", /^subscribe\.topics\[0\]/],
      [{ topics: [] }, "INVALID_REQUEST", /^subscribe\.topics: at least one topic is required$/],
      [{ groupId: "" }, "INVALID_GROUP_ID", /^subscribe\.group_id: /],
      [{ maxOutstandingRecords: -1 }, "INVALID_REQUEST", /^subscribe\.max_outstanding_records: -1 is negative$/],
      [{ maxOutstandingBytes: -1 }, "INVALID_REQUEST", /^subscribe\.max_outstanding_bytes: -1 is negative$/],
      [{ isolationLevel: 3 }, "INVALID_REQUEST", /^subscribe\.isolation_level: 3 is not ISOLATION_LEVEL_READ_UNCOMMITTED/],
    ];
    for (const [over, name, message] of cases) {
      const e = await endOf(open(subscription(over)));
      expect(e.kind.name).toBe(name);
      expect(e.message).toMatch(message);
    }
    expect(groups.listGroups([])).toEqual([]);
  });

  it("negative flow credit and a negative commit offset", async () => {
    const a = open(subscription());
    await until(() => a.sink.owned().length === 2, "the assignment");
    a.session.commit(9n, [offset("t", 0, 0), offset("t", 1, -3)]);
    await until(() => a.sink.commits().length === 1, "the commit_result");
    const c = a.sink.commits()[0]!;
    expect([c.commitId, c.offsets, c.error?.kind.name, c.error?.message]).toEqual([
      9n,
      [],
      "INVALID_REQUEST",
      "commit.offsets[1].offset: -3 is negative",
    ]);
    expect(await groups.fetchOffsets("cg", null)).toEqual([]);
    a.session.flow(0, -1);
    expect((await endOf(a)).message).toBe("flow.bytes: -1 is negative");
  });

  it("abort ends with the given error; a broker already shutting down ends a new session with SHUTTING_DOWN", async () => {
    const a = open(subscription());
    await until(() => a.sink.owned().length === 2, "the assignment");
    a.session.abort(new Error("boom"));
    expect((await endOf(a)).kind.name).toBe("UNKNOWN_SERVER_ERROR");
    expect(members()).toBe(0);
    w.rm.close();
    const b = open();
    expect(b.session.ended).toBe(true);
    expect((await endOf(b)).kind.name).toBe("SHUTTING_DOWN");
  });

  it("the broker shutting down closes open sessions: they leave and end without error", async () => {
    const a = open(subscription());
    await until(() => a.sink.owned().length === 2, "the assignment");
    w.rm.close();
    expect(a.sink.ends()).toEqual([null]);
    expect(members()).toBe(0);
  });
});

describe("ConsumeSession: a partition whose new leader does not know its high watermark yet (issue 17, KIP-207)", () => {
  it("delivers nothing for it and ends nothing; its records come once the followers' fetches make the high watermark known; a 'latest' start is the epoch's start", async () => {
    type Store = { commit(f: () => MetadataRecord[]): Promise<void> };
    const store = (w.rm as unknown as { metadata: Store }).metadata;
    await store.commit(() => [1, 2, 3].map((id) => brokerRecord(id, 5)));
    await store.commit(() => [
      { type: "topic", v: 1, name: "nl", topicId: "0".repeat(31) + "9", configs: {} },
      {
        type: "partition",
        v: 1,
        topic: "nl",
        partition: 0,
        replicas: [2, 1, 3],
        isr: [2, 1, 3],
        leader: 2,
        leaderEpoch: 0,
        partitionEpoch: 0,
      },
    ]);
    const r = w.rm.replica("nl", 0)!;
    // As a follower: offsets 0-3 held, high watermark 2 learned (node 2 had answered 4 already).
    const batchAt = (baseOffset: number, values: string[]) =>
      encodeBatch(
        values.map((value) => ({ value })),
        { baseOffset, partitionLeaderEpoch: 0, nowMs: 1 },
      );
    w.rm.applyFetched(r, Buffer.concat([batchAt(0, ["n0", "n1"]), batchAt(2, ["n2", "n3"])]), 2);
    await store.commit(() => [
      { type: "partition-change", v: 1, topic: "nl", partition: 0, leader: 1, isr: [1, 2, 3], leaderEpoch: 1, partitionEpoch: 1 },
    ]);
    expect([r.role, r.hw, r.epochStartOffset]).toEqual(["leader", 2, 4]);
    const a = open(subscription({ topics: ["nl"] }));
    const late = open(subscription({ groupId: "cg-late", topics: ["nl"], autoOffsetReset: "latest" }));
    await until(() => a.sink.owned().length === 1 && late.sink.owned().length === 1, "both assigned");
    await new Promise((done) => setTimeout(done, 50));
    // (before: n0 and n1 were delivered at once, below the lagging high watermark 2)
    expect([a.sink.values("nl", 0), a.sink.ends(), late.sink.ends()]).toEqual([[], [], []]);
    const fetched = (id: number) =>
      w.rm.fetchForFollower(id, {
        topic: "nl",
        partition: 0,
        fetchOffset: 4,
        lastFetchedEpoch: 0,
        currentLeaderEpoch: 1,
        maxBytes: 1 << 20,
        brokerEpoch: 5,
      });
    fetched(2);
    fetched(3);
    await until(() => a.sink.values("nl", 0).length === 4, "the records once the high watermark is known");
    expect(a.sink.values("nl", 0)).toEqual(["n0", "n1", "n2", "n3"]);
    // The "latest" member started at 4, the epoch's start: it gets what comes after.
    w.produce("nl", 0, ["n4"]);
    fetched(2);
    expect(late.sink.values("nl", 0)).toEqual([]);
    w.rm.fetchForFollower(2, {
      topic: "nl",
      partition: 0,
      fetchOffset: 5,
      lastFetchedEpoch: 1,
      currentLeaderEpoch: 1,
      maxBytes: 1 << 20,
      brokerEpoch: 5,
    });
    w.rm.fetchForFollower(3, {
      topic: "nl",
      partition: 0,
      fetchOffset: 5,
      lastFetchedEpoch: 1,
      currentLeaderEpoch: 1,
      maxBytes: 1 << 20,
      brokerEpoch: 5,
    });
    await until(() => late.sink.values("nl", 0).length === 1, "the late member's first record");
    expect(late.sink.values("nl", 0)).toEqual(["n4"]);
    expect([a.sink.ends(), late.sink.ends()]).toEqual([[], []]);
  });
});

describe("ConsumeSession: a partition assigned while this broker holds no replica of it (issue 17: cluster-grow)", () => {
  it("announces the whole assignment, sends records only of announced partitions, and starts the partition once a replica is here", async () => {
    type Store = { commit(f: () => MetadataRecord[]): Promise<void> };
    const store = (w.rm as unknown as { metadata: Store }).metadata;
    await store.commit(() => [1, 2].map((id) => brokerRecord(id, 5)));
    const partition = (p: number, at: number) => ({
      type: "partition" as const,
      v: 1 as const,
      topic: "far",
      partition: p,
      replicas: [at],
      isr: [at],
      leader: at,
      leaderEpoch: 0,
      partitionEpoch: 0,
    });
    // far-0 is held here (broker 1); far-1 only by broker 2, as after a reassignment moved it away.
    await store.commit(() => [
      { type: "topic", v: 1, name: "far", topicId: "0".repeat(31) + "8", configs: {} },
      partition(0, 1),
      partition(1, 2),
    ]);
    w.produce("far", 0, ["x0", "x1"]);
    const a = open(subscription({ topics: ["far"] }));
    await until(() => a.sink.values("far", 0).length === 2, "far-0's records");
    // Before: the start of far-1 failed (NOT_LEADER_OR_FOLLOWER) half-way through the assignment,
    // which was never announced, while far-0's records went out: the client refused them.
    const owned = new Set<string>();
    for (const e of a.sink.events) {
      if (e.kind === "assignment") {
        for (const tp of e.change.revoked) owned.delete(`${tp.topic}-${tp.partition}`);
        for (const tp of e.change.assigned) owned.add(`${tp.topic}-${tp.partition}`);
      } else if (e.kind === "records")
        expect(owned.has(`${e.records.topic}-${e.records.partition}`), "records of an announced partition").toBe(true);
    }
    expect(a.sink.owned()).toEqual(["far-0", "far-1"]);
    expect(a.sink.ends()).toEqual([]);
    // far-1 comes here (broker 1 leads it): it is read from its start, with no new assignment.
    await store.commit(() => [
      { type: "partition-change", v: 1, topic: "far", partition: 1, leader: 1, isr: [1], leaderEpoch: 1, partitionEpoch: 1, replicas: [1] },
    ]);
    w.produce("far", 1, ["y0"]);
    await until(() => a.sink.values("far", 1).length === 1, "far-1's record once a replica is here");
    expect(a.sink.values("far", 1)).toEqual(["y0"]);
    expect(a.sink.events.filter((e) => e.kind === "assignment")).toHaveLength(1);
    expect(a.sink.ends()).toEqual([]);
  });
});
