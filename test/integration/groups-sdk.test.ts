/**
 * The SDK's GroupConsumer and GroupAdmin against a broker in this process: rebalance callbacks
 * and commits refused for revoked partitions, flow control (auto-commit keeps delivery going,
 * manual commits release it), static membership, and rejoining after a broker restart.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Errors, RillError } from "../../src/base/errors.ts";
import { Broker } from "../../src/broker/broker.ts";
import { Admin } from "../../src/client/admin.ts";
import { type ConsumerRecord, GroupConsumer, type GroupTopicPartition } from "../../src/client/group-consumer.ts";
import { GroupAdmin } from "../../src/client/group-admin.ts";
import { Producer } from "../../src/client/producer.ts";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";

let dir: string;
let broker: Broker;
let bootstrap: string;
let admin: Admin;
let groupAdmin: GroupAdmin;

async function until(pred: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Sends `n` records to `topic` (partition `partition`, or by key), one batch each when `oneByOne`. */
async function produce(topic: string, n: number, opts: { partition?: number; oneByOne?: boolean; prefix?: string } = {}): Promise<void> {
  const p = new Producer({ bootstrap, lingerMs: opts.oneByOne ? 0 : 5 });
  for (let i = 0; i < n; i++) {
    const send = p.send({
      topic,
      key: `${opts.prefix ?? "k"}${i}`,
      value: `${opts.prefix ?? "v"}${i}`,
      ...(opts.partition !== undefined ? { partition: opts.partition } : {}),
    });
    if (opts.oneByOne) await send;
  }
  await p.close();
}

/** Iterates `c` in the background, collecting records. */
function drain(c: GroupConsumer, onRecord?: (r: ConsumerRecord) => Promise<void> | void) {
  const got: ConsumerRecord[] = [];
  const done = (async () => {
    for await (const r of c) {
      got.push(r);
      await onRecord?.(r);
    }
  })();
  return { got, done };
}

const tps = (ps: readonly GroupTopicPartition[]) => ps.map((p) => p.partition).sort();

beforeAll(async () => {
  dir = tmpDir("rill-groups-sdk-");
  broker = await Broker.start({ dataDir: dir, listen: "127.0.0.1:0" });
  bootstrap = broker.address;
  admin = new Admin({ bootstrap });
  await admin.createTopics([
    { name: "rebalance", partitions: 4 },
    { name: "flow", partitions: 1 },
    { name: "static", partitions: 4 },
    { name: "restart", partitions: 2 },
  ]);
  groupAdmin = new GroupAdmin({ bootstrap });
});

afterAll(async () => {
  await groupAdmin?.close();
  await admin?.close();
  await broker?.close();
  rmTmp(dir);
});

describe("GroupConsumer with a broker", () => {
  it("rebalances: onRevoked/onAssigned, disjoint ownership, commit() of a revoked partition is refused and not applied", async () => {
    await produce("rebalance", 40);
    const events: string[] = [];
    const a = new GroupConsumer({
      bootstrap,
      groupId: "rb",
      autoOffsetReset: "earliest",
      autoCommit: false,
      onAssigned: (ps) => void events.push(`a+${tps(ps)}`),
      onRevoked: (ps) => void events.push(`a-${tps(ps)}`),
    });
    a.subscribe(["rebalance"]);
    const ra = drain(a);
    await until(() => ra.got.length === 40);
    expect(a.assignment().map((p) => p.partition)).toEqual([0, 1, 2, 3]);
    // Commit two partitions only.
    const partial = a
      .assignment()
      .slice(0, 2)
      .map((tp) => ({ ...tp, offset: a.position(tp) }));
    expect(await a.commit(partial)).toEqual(partial);

    const b = new GroupConsumer({
      bootstrap,
      groupId: "rb",
      autoOffsetReset: "earliest",
      autoCommit: false,
      onAssigned: (ps) => void events.push(`b+${tps(ps)}`),
    });
    b.subscribe(["rebalance"]);
    const rb = drain(b);
    await until(() => a.assignment().length === 2 && b.assignment().length === 2);
    const [aOwns, bOwns] = [tps(a.assignment()), tps(b.assignment())];
    expect([...aOwns, ...bOwns].sort()).toEqual([0, 1, 2, 3]);
    expect(events[0]).toBe("a+0,1,2,3");
    expect(events).toContain(`a-${bOwns}`);
    expect(events).toContain(`b+${bOwns}`);

    // a cannot commit what it no longer owns.
    const stale = bOwns.map((partition) => ({ topic: "rebalance", partition, offset: 1 }));
    const before = await groupAdmin.fetchOffsets("rb");
    const e = await a.commit(stale).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RillError);
    expect((e as RillError).kind).toBe(Errors.STALE_MEMBER_EPOCH);
    expect(await groupAdmin.fetchOffsets("rb")).toEqual(before);

    // b re-read exactly the partitions of its share that a had not committed.
    const committedByA = new Set(partial.map((p) => p.partition));
    await until(
      () =>
        rb.got.length === bOwns.filter((p) => !committedByA.has(p)).reduce((n, p) => n + ra.got.filter((r) => r.partition === p).length, 0),
    );
    expect(new Set(rb.got.map((r) => r.partition))).toEqual(new Set(bOwns.filter((p) => !committedByA.has(p))));
    const [d] = await groupAdmin.describeGroups(["rb"]);
    expect(d!.members).toHaveLength(2);
    expect(d!.state).toBe("stable");
    await Promise.all([a.close(), b.close()]);
    await Promise.all([ra.done, rb.done]);
    await until(async () => (await groupAdmin.describeGroups(["rb"]))[0]!.members.length === 0);
  });

  it("flow control: without commits delivery stops at maxOutstandingRecords; a commit releases it; auto-commit never stalls", async () => {
    await produce("flow", 50, { partition: 0, oneByOne: true }); // 50 one-record batches
    const manual = new GroupConsumer({
      bootstrap,
      groupId: "flow-manual",
      autoOffsetReset: "earliest",
      autoCommit: false,
      maxOutstandingRecords: 10,
    });
    manual.subscribe(["flow"]);
    const m = drain(manual);
    await until(() => m.got.length === 10);
    await new Promise((r) => setTimeout(r, 300));
    expect(m.got.length).toBe(10);
    await manual.commit();
    await until(() => m.got.length === 20);
    await manual.close();
    await m.done;
    expect((await groupAdmin.fetchOffsets("flow-manual")).map((o) => o.offset)).toEqual([10]); // autoCommit off: close commits nothing

    const auto = new GroupConsumer({
      bootstrap,
      groupId: "flow-auto",
      autoOffsetReset: "earliest",
      maxOutstandingRecords: 10,
      autoCommitIntervalMs: 60_000,
    });
    auto.subscribe(["flow"]);
    const a = drain(auto);
    await until(() => a.got.length === 50, 10_000);
    expect(a.got.map((r) => r.offset)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    await auto.close();
    await a.done;
    expect((await groupAdmin.fetchOffsets("flow-auto")).map((o) => o.offset)).toEqual([50]);
  });

  it("static membership: a member that comes back with its instanceId gets its partitions back; the other member is not disturbed", async () => {
    const mk = (instanceId: string, events: string[]) =>
      new GroupConsumer({
        bootstrap,
        groupId: "static",
        instanceId,
        autoOffsetReset: "earliest",
        sessionTimeoutMs: 30_000,
        onAssigned: (ps) => void events.push(`+${tps(ps)}`),
        onRevoked: (ps) => void events.push(`-${tps(ps)}`),
      });
    const [ea, eb, ea2]: string[][] = [[], [], []];
    const a = mk("a", ea!);
    a.subscribe(["static"]);
    const ra = drain(a);
    await until(() => a.assignment().length === 4);
    const b = mk("b", eb!);
    b.subscribe(["static"]);
    const rb = drain(b);
    await until(() => a.assignment().length === 2 && b.assignment().length === 2);
    const aOwns = tps(a.assignment());
    const [d0] = await groupAdmin.describeGroups(["static"]);
    expect(d0!.members.map((m) => m.instanceId).sort()).toEqual(["a", "b"]);
    await a.close();
    await ra.done;
    const a2 = mk("a", ea2!);
    a2.subscribe(["static"]);
    const ra2 = drain(a2);
    await until(() => a2.assignment().length === 2);
    expect(tps(a2.assignment())).toEqual(aOwns);
    expect(eb).toHaveLength(1); // b's one assignment, nothing since
    await Promise.all([a2.close(), b.close()]);
    await Promise.all([ra2.done, rb.done]);
  });

  it("rejoins after a broker restart on the same address and continues after its committed offsets", async () => {
    await produce("restart", 10, { prefix: "before-" });
    const events: string[] = [];
    const c = new GroupConsumer({
      bootstrap,
      groupId: "restart",
      autoOffsetReset: "earliest",
      retry: { retries: 30, initialBackoffMs: 50, backoffMsMax: 200 },
      onAssigned: (ps) => void events.push(`+${tps(ps)}`),
      onRevoked: (ps) => void events.push(`-${tps(ps)}`),
    });
    c.subscribe(["restart"]);
    const r = drain(c);
    await until(() => r.got.length === 10);
    await until(async () => (await groupAdmin.fetchOffsets("restart")).reduce((n, o) => n + o.offset, 0) === 10);

    await groupAdmin.close();
    await admin.close();
    await broker.close();
    broker = await Broker.start({ dataDir: dir, listen: bootstrap });
    admin = new Admin({ bootstrap });
    groupAdmin = new GroupAdmin({ bootstrap });
    await until(() => c.assignment().length === 2);
    await produce("restart", 6, { prefix: "after-" });
    await until(() => r.got.length === 16);
    expect(
      r.got
        .slice(10)
        .map((x) => x.value!.toString())
        .sort(),
    ).toEqual(Array.from({ length: 6 }, (_, i) => `after-${i}`).sort());
    expect(events).toEqual(["+0,1", "-0,1", "+0,1"]);
    await c.close();
    await r.done;
    expect((await groupAdmin.fetchOffsets("restart")).reduce((n, o) => n + o.offset, 0)).toBe(16);
  }, 40_000);
});
