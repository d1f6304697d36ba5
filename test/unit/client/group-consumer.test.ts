/**
 * GroupConsumer against an in-memory GroupTransport: the test plays the broker's side of the
 * Consume stream (assignments, records, commit results, failures) and checks what the consumer
 * sends and yields.
 */
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { Errors, RillError } from "../../../src/base/errors.ts";
import { SeededRandom } from "../../../src/base/random.ts";
import { ConnectionError } from "../../../src/client/errors.ts";
import { GroupConsumer, type GroupConsumerOptions, type GroupTopicPartition } from "../../../src/client/group-consumer.ts";
import type { ConsumeListener, ConsumeRequestInit, GroupTransport } from "../../../src/client/group-transport.ts";
import { AutoOffsetReset, ConsumeResponseSchema } from "../../../src/gen/rill/v1/group_service_pb.ts";

/** One Consume stream opened by the consumer. */
class FakeStream {
  readonly written: ConsumeRequestInit[] = [];
  ended = false;
  cancelled = false;
  constructor(readonly listener: ConsumeListener) {}

  assignment(assigned: Array<[string, number]>, revoked: Array<[string, number]> = [], epoch = 1, memberId = "m-1"): void {
    const tp = ([topic, partition]: [string, number]) => ({ topic, partition });
    this.listener.onResponse(
      create(ConsumeResponseSchema, {
        kind: { case: "assignment", value: { memberId, memberEpoch: epoch, assigned: assigned.map(tp), revoked: revoked.map(tp) } },
      }),
    );
  }

  records(topic: string, partition: number, offsets: number[]): void {
    const records = offsets.map((o) => ({
      topic,
      partition,
      offset: BigInt(o),
      timestampMs: 1000n + BigInt(o),
      key: Buffer.from(`k${o}`),
      value: Buffer.from(`${topic}-${partition}@${o}`),
    }));
    const next = BigInt((offsets.at(-1) ?? -1) + 1);
    this.listener.onResponse(
      create(ConsumeResponseSchema, {
        kind: { case: "records", value: { topic, partition, records, highWatermark: next, nextOffset: next } },
      }),
    );
  }

  /** The broker cannot read the batch at `first` (it ends before `next`): the partition's CORRUPT_MESSAGE. */
  corrupt(topic: string, partition: number, first: number, next: number): void {
    const error = {
      code: Errors.CORRUPT_MESSAGE.code,
      name: "CORRUPT_MESSAGE",
      message: `${topic}-${partition}: the batch at offset ${first} cannot be read`,
      retriable: true,
    };
    this.listener.onResponse(
      create(ConsumeResponseSchema, {
        kind: {
          case: "records",
          value: { topic, partition, highWatermark: BigInt(next), firstOffset: BigInt(first), nextOffset: BigInt(next), error },
        },
      }),
    );
  }

  /** The commits sent so far, as [commitId, [[topic, partition, offset]]]. */
  commits(): Array<[bigint, Array<[string, number, number]>]> {
    return this.written
      .filter((w) => w.kind?.case === "commit")
      .map((w) => {
        const c = w.kind!.value as { commitId: bigint; offsets: Array<{ topic: string; partition: number; offset: bigint }> };
        return [c.commitId, c.offsets.map((o) => [o.topic, o.partition, Number(o.offset)] as [string, number, number])];
      });
  }

  /** Answers commit `id`: every offset committed, except those given an error name. */
  commitResult(id: bigint, errors: Record<string, string> = {}, whole?: string): void {
    const [, offsets] = this.commits().find(([cid]) => cid === id)!;
    const detail = (name: string) => ({
      code: Errors[name as keyof typeof Errors].code,
      name,
      message: `${name} for the test`,
      retriable: false,
    });
    this.listener.onResponse(
      create(ConsumeResponseSchema, {
        kind: {
          case: "commitResult",
          value: {
            commitId: id,
            offsets: offsets.map(([topic, partition, offset]) => ({
              topic,
              partition,
              offset: BigInt(offset),
              ...(errors[`${topic}-${partition}`] ? { error: detail(errors[`${topic}-${partition}`]!) } : {}),
            })),
            ...(whole ? { error: detail(whole) } : {}),
          },
        },
      }),
    );
  }
}

class FakeGroupTransport implements GroupTransport {
  readonly address = "fake:1";
  readonly streams: FakeStream[] = [];
  closed = false;
  /** Called when the consumer half-closes a stream (default: the broker ends it). */
  onEndRequested = (s: FakeStream): void => s.listener.onEnd();

  get last(): FakeStream {
    return this.streams.at(-1)!;
  }

  openConsume(listener: ConsumeListener) {
    const s = new FakeStream(listener);
    this.streams.push(s);
    return {
      write: (r: ConsumeRequestInit) => void s.written.push(r),
      end: () => {
        s.ended = true;
        queueMicrotask(() => this.onEndRequested(s));
      },
      cancel: () => void (s.cancelled = true),
    };
  }

  readonly heartbeat = () => Promise.reject(new Error("unused"));
  readonly commitOffsets = () => Promise.reject(new Error("unused"));
  readonly fetchOffsets = () => Promise.reject(new Error("unused"));
  readonly listGroups = () => Promise.reject(new Error("unused"));
  readonly describeGroups = () => Promise.reject(new Error("unused"));
  readonly deleteGroups = () => Promise.reject(new Error("unused"));
  readonly resetOffsets = () => Promise.reject(new Error("unused"));
  readonly deleteOffsets = () => Promise.reject(new Error("unused"));
  close(): void {
    this.closed = true;
  }
}

function setup(options: Partial<GroupConsumerOptions> = {}) {
  const transport = new FakeGroupTransport();
  const events: string[] = [];
  const consumer = new GroupConsumer({
    groupId: "g",
    groupTransport: transport,
    autoOffsetReset: "earliest",
    autoCommit: false,
    random: new SeededRandom(7),
    retry: { retries: 2, initialBackoffMs: 1, backoffMsMax: 2 },
    onAssigned: (ps: GroupTopicPartition[]) => void events.push(`assigned ${ps.map((p) => `${p.topic}-${p.partition}`).join(",")}`),
    onRevoked: (ps: GroupTopicPartition[]) => void events.push(`revoked ${ps.map((p) => `${p.topic}-${p.partition}`).join(",")}`),
    ...options,
  });
  return { transport, consumer, events };
}

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

describe("GroupConsumer", () => {
  it("checks its options and subscription", () => {
    const t = new FakeGroupTransport();
    expect(() => new GroupConsumer({ groupId: "", groupTransport: t })).toThrow(/groupId: group id is empty/);
    expect(() => new GroupConsumer({ groupId: "x".repeat(250), groupTransport: t })).toThrow(/250 characters/);
    expect(() => new GroupConsumer({ groupId: "g", groupTransport: t, autoOffsetReset: "middle" as never })).toThrow(/autoOffsetReset/);
    expect(() => new GroupConsumer({ groupId: "g", groupTransport: t, maxOutstandingRecords: -1 })).toThrow(/maxOutstandingRecords/);
    const c = new GroupConsumer({ groupId: "g", groupTransport: t });
    expect(() => c.subscribe([])).toThrow(RillError);
    c.subscribe(["a"]);
    expect(() => c.subscribe(["b"])).toThrow(/already subscribed/);
    void c.close();
  });

  it("sends subscribe first, with the options", async () => {
    const { transport, consumer } = setup({
      maxOutstandingRecords: 50,
      sessionTimeoutMs: 7000,
      instanceId: "i-1",
      assignor: "range",
      clientId: "me",
    });
    consumer.subscribe(["orders", "orders", "audit"]);
    const sub = transport.last.written[0]!.kind!;
    expect(sub.case).toBe("subscribe");
    expect(sub.value).toMatchObject({
      groupId: "g",
      topics: ["orders", "audit"],
      autoOffsetReset: AutoOffsetReset.EARLIEST,
      maxOutstandingRecords: 50,
      sessionTimeoutMs: 7000,
      instanceId: "i-1",
      assignor: "range",
      clientId: "me",
    });
    await consumer.close();
  });

  it("yields records in stream order after onAssigned; commit() commits one past the last yielded record, per partition", async () => {
    const { transport, consumer, events } = setup();
    consumer.subscribe(["t"]);
    const s = transport.last;
    s.assignment([
      ["t", 0],
      ["t", 1],
    ]);
    s.records("t", 0, [5, 6, 7]);
    s.records("t", 1, [0, 1]);
    const got: string[] = [];
    const it = consumer[Symbol.asyncIterator]();
    for (let i = 0; i < 4; i++) {
      const r = (await it.next()).value!;
      got.push(`${r.topic}-${r.partition}@${r.offset}`);
      expect(r.value!.toString()).toBe(`${r.topic}-${r.partition}@${r.offset}`);
    }
    expect(events).toEqual(["assigned t-0,t-1"]);
    expect(got).toEqual(["t-0@5", "t-0@6", "t-0@7", "t-1@0"]);
    expect(consumer.memberId).toBe("m-1");
    expect(consumer.assignment()).toEqual([
      { topic: "t", partition: 0 },
      { topic: "t", partition: 1 },
    ]);
    expect(consumer.position({ topic: "t", partition: 0 })).toBe(8);
    const committing = consumer.commit();
    const [id, offsets] = s.commits()[0]!;
    expect(offsets).toEqual([
      ["t", 0, 8],
      ["t", 1, 1],
    ]);
    s.commitResult(id!);
    expect(await committing).toEqual([
      { topic: "t", partition: 0, offset: 8 },
      { topic: "t", partition: 1, offset: 1 },
    ]);
    expect(consumer.committed({ topic: "t", partition: 0 })).toBe(8);
    // Nothing new consumed: nothing to commit, nothing sent.
    expect(await consumer.commit()).toEqual([]);
    expect(s.commits()).toHaveLength(1);
    await it.return(undefined);
    await consumer.close();
  });

  it("commit() rejects with the first partition's error; the other partitions are committed", async () => {
    const { transport, consumer } = setup();
    consumer.subscribe(["t"]);
    const s = transport.last;
    s.assignment([
      ["t", 0],
      ["t", 1],
    ]);
    s.records("t", 0, [0]);
    s.records("t", 1, [0]);
    const it = consumer[Symbol.asyncIterator]();
    await it.next();
    await it.next();
    const committing = consumer.commit();
    s.commitResult(s.commits()[0]![0], { "t-1": "STALE_MEMBER_EPOCH" });
    const e = await committing.catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RillError);
    expect((e as RillError).kind).toBe(Errors.STALE_MEMBER_EPOCH);
    expect((e as RillError).message).toMatch(/t-1/);
    expect(consumer.committed({ topic: "t", partition: 0 })).toBe(1);
    expect(consumer.committed({ topic: "t", partition: 1 })).toBe(-1);
    // A whole-commit error rejects too.
    s.records("t", 0, [1]);
    await it.next();
    const again = consumer.commit();
    s.commitResult(s.commits()[1]![0], {}, "FENCED_MEMBER_EPOCH");
    await expect(again).rejects.toMatchObject({ kind: Errors.FENCED_MEMBER_EPOCH });
    await it.return(undefined);
    await consumer.close();
  });

  it("a revoked partition's buffered records are dropped, onRevoked runs in order, and commit() leaves it out", async () => {
    const { transport, consumer, events } = setup();
    consumer.subscribe(["t"]);
    const s = transport.last;
    s.assignment([
      ["t", 0],
      ["t", 1],
    ]);
    s.records("t", 0, [0, 1, 2]);
    s.records("t", 1, [0, 1]);
    const it = consumer[Symbol.asyncIterator]();
    expect((await it.next()).value!.offset).toBe(0); // t-0@0, held by the application
    s.assignment([], [["t", 0]], 2); // revoked while t-0@1, @2 are buffered
    s.records("t", 1, [2]);
    const rest: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = (await it.next()).value!;
      rest.push(`${r.partition}@${r.offset}`);
    }
    expect(rest).toEqual(["1@0", "1@1", "1@2"]);
    expect(events).toEqual(["assigned t-0,t-1", "revoked t-0"]);
    expect(consumer.assignment()).toEqual([{ topic: "t", partition: 1 }]);
    expect(consumer.memberEpoch).toBe(2);
    void consumer.commit().catch(() => undefined);
    expect(s.commits().at(-1)![1]).toEqual([["t", 1, 3]]);
    await it.return(undefined);
    await consumer.close();
  });

  it("auto-commit commits what the application is done with (not the record it holds) when it has drained the stream, and on close everything yielded", async () => {
    const { transport, consumer } = setup({ autoCommit: true, autoCommitIntervalMs: 60_000 });
    consumer.subscribe(["t"]);
    const s = transport.last;
    s.assignment([["t", 0]]);
    s.records("t", 0, [0, 1, 2]);
    const it = consumer[Symbol.asyncIterator]();
    for (let i = 0; i < 3; i++) await it.next();
    expect(s.commits()).toEqual([]); // the application still holds t-0@2
    const waiting = it.next(); // done with @2; nothing buffered: commit, then wait
    await tick();
    expect(s.commits().map(([, o]) => o)).toEqual([[["t", 0, 3]]]);
    s.commitResult(s.commits()[0]![0]);
    s.records("t", 0, [3]);
    expect((await waiting).value!.offset).toBe(3);
    // close: commits t-0@3 (yielded), waits for the answer, then half-closes the stream.
    const closing = consumer.close();
    await tick();
    expect(s.commits().at(-1)![1]).toEqual([["t", 0, 4]]);
    expect(s.ended).toBe(false);
    s.commitResult(s.commits().at(-1)![0]);
    await closing;
    expect(s.ended).toBe(true);
    expect(transport.closed).toBe(false); // not the consumer's to close
    expect((await it.next()).done).toBe(true);
  });

  it("auto-commit also commits at half the outstanding credit, so delivery does not pause", async () => {
    const { transport, consumer } = setup({ autoCommit: true, autoCommitIntervalMs: 60_000, maxOutstandingRecords: 10 });
    consumer.subscribe(["t"]);
    const s = transport.last;
    s.assignment([["t", 0]]);
    s.records("t", 0, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const it = consumer[Symbol.asyncIterator]();
    for (let i = 0; i < 6; i++) await it.next(); // done with 0..4 when the sixth is asked for
    expect(s.commits().map(([, o]) => o)).toEqual([[["t", 0, 5]]]);
    await it.return(undefined);
    void consumer.close().catch(() => undefined);
  });

  it("a retriable stream failure loses the partitions (onRevoked) and joins again; pending commits fail", async () => {
    const { transport, consumer, events } = setup();
    consumer.subscribe(["t"]);
    const s = transport.last;
    s.assignment([["t", 0]]);
    s.records("t", 0, [0]);
    const it = consumer[Symbol.asyncIterator]();
    await it.next();
    const committing = consumer.commit();
    s.listener.onError(new ConnectionError("fake:1", "connection reset"));
    await expect(committing).rejects.toBeInstanceOf(ConnectionError);
    expect(consumer.assignment()).toEqual([]);
    await tick(20);
    expect(transport.streams).toHaveLength(2);
    const s2 = transport.last;
    expect(s2.written[0]!.kind!.case).toBe("subscribe");
    s2.assignment([["t", 0]], [], 1, "m-2");
    s2.records("t", 0, [0, 1]); // from the committed offset again: 0 was never committed
    expect((await it.next()).value!.offset).toBe(0);
    expect(events).toEqual(["assigned t-0", "revoked t-0", "assigned t-0"]);
    expect(consumer.memberId).toBe("m-2");
    await it.return(undefined);
    await consumer.close();
  });

  it("a non-retriable failure, records of a partition it does not own, or a silent broker end the iterator with the error", async () => {
    {
      const { transport, consumer } = setup();
      consumer.subscribe(["t"]);
      transport.last.listener.onError(new RillError(Errors.INVALID_GROUP_ID, "subscribe.group_id: bad"));
      await expect(consumer[Symbol.asyncIterator]().next()).rejects.toMatchObject({ kind: Errors.INVALID_GROUP_ID });
      await consumer.close();
    }
    {
      const { transport, consumer } = setup();
      consumer.subscribe(["t"]);
      transport.last.assignment([["t", 0]]);
      transport.last.records("t", 3, [0]);
      await expect(consumer[Symbol.asyncIterator]().next()).rejects.toThrow(/records of t-3, which this member does not own/);
      await consumer.close();
    }
    {
      const { consumer } = setup({ requestTimeoutMs: 30 });
      consumer.subscribe(["t"]);
      await expect(consumer[Symbol.asyncIterator]().next()).rejects.toMatchObject({ kind: Errors.REQUEST_TIMED_OUT });
      await consumer.close();
    }
  });

  it("gives up joining after the retry policy's retries", async () => {
    const { transport, consumer } = setup();
    consumer.subscribe(["t"]);
    const it = consumer[Symbol.asyncIterator]();
    const next = it.next();
    for (let i = 0; i < 3; i++) {
      await tick(10);
      transport.last.listener.onError(new ConnectionError("fake:1", "connection refused"));
    }
    await expect(next).rejects.toBeInstanceOf(ConnectionError);
    expect(transport.streams).toHaveLength(3);
    await consumer.close();
  });

  it("close() ends the stream even when the broker does not answer, and the iterator ends", async () => {
    const { transport, consumer } = setup({ requestTimeoutMs: 50 });
    transport.onEndRequested = () => undefined; // the broker never ends its side
    consumer.subscribe(["t"]);
    transport.last.assignment([["t", 0]]);
    const it = consumer[Symbol.asyncIterator]();
    const pending = it.next();
    await consumer.close();
    expect(transport.last.ended && transport.last.cancelled).toBe(true);
    expect((await pending).done).toBe(true);
    expect(() => consumer.subscribe(["t"])).toThrow(/closed/);
    await expect(consumer.commit()).rejects.toThrow(/closed/);
  });
});

describe("GroupConsumer: a partition the broker cannot read", () => {
  it("throws the partition's CORRUPT_MESSAGE without skipCorrupt", async () => {
    const { transport, consumer } = setup();
    consumer.subscribe(["t"]);
    const s = transport.last;
    s.assignment([["t", 0]]);
    s.corrupt("t", 0, 3, 6);
    const it = consumer[Symbol.asyncIterator]();
    const e = await it.next().then(
      () => null,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(RillError);
    expect((e as RillError).kind).toBe(Errors.CORRUPT_MESSAGE);
    expect((e as RillError).message).toContain("the batch at offset 3 cannot be read");
    await consumer.close();
  });

  it("with skipCorrupt reports the batch, commits the offset after it and goes on; other partitions keep flowing", async () => {
    const reports: string[] = [];
    const { transport, consumer } = setup({
      skipCorrupt: true,
      onCorrupt: (r) => void reports.push(`${r.topic}-${r.partition} ${r.offset}..${r.nextOffset} ${r.error.kind.name}`),
    });
    consumer.subscribe(["t"]);
    const s = transport.last;
    s.assignment([
      ["t", 0],
      ["t", 1],
    ]);
    s.records("t", 0, [0, 1, 2]);
    s.corrupt("t", 0, 3, 6);
    s.records("t", 1, [0]);
    const it = consumer[Symbol.asyncIterator]();
    const got: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = (await it.next()).value!;
      got.push(`${r.topic}-${r.partition}@${r.offset}`);
    }
    expect(got).toEqual(["t-0@0", "t-0@1", "t-0@2", "t-1@0"]);
    expect(reports).toEqual(["t-0 3..6 CORRUPT_MESSAGE"]);
    expect(s.commits().map(([, o]) => o)).toContainEqual([["t", 0, 6]]);
    expect(consumer.position({ topic: "t", partition: 0 })).toBe(6);
    s.records("t", 0, [6]);
    const after = (await it.next()).value!;
    expect(`${after.partition}@${after.offset}`).toBe("0@6");
    await consumer.close();
  });
});
