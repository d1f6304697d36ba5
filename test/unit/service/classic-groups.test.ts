/**
 * Classic groups through GroupsService (service/classic-groups.ts): JoinGroup and SyncGroup as
 * long polls on injected timers, over an in-memory broker whose clock moves with the timers.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ManualTimers } from "../../../src/base/timers.ts";
import { GroupRuntime } from "../../../src/coordinator/group-runtime.ts";
import { GroupsService, type JoinGroupInput, type JoinGroupOutput, type SyncGroupOutput } from "../../../src/service/groups.ts";
import { type GroupWorld, groupWorld } from "./groups-fixture.ts";

const G = "classic";
const DELAY = 200;

/** Kafka's ConsumerProtocolSubscription v0: the topics, no user data. */
function subscription(...topics: string[]): Uint8Array {
  const parts = [Buffer.from([0, 0]), int32(topics.length), ...topics.map(str), int32(-1)];
  return Buffer.concat(parts);
}

/** Kafka's ConsumerProtocolAssignment v0. */
function assignment(tps: Record<string, number[]>): Uint8Array {
  const parts: Buffer[] = [Buffer.from([0, 0]), int32(Object.keys(tps).length)];
  for (const [t, ps] of Object.entries(tps)) parts.push(str(t), int32(ps.length), ...ps.map(int32));
  parts.push(int32(-1));
  return Buffer.concat(parts);
}

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}

function str(s: string): Buffer {
  const b = Buffer.alloc(2);
  b.writeInt16BE(Buffer.byteLength(s));
  return Buffer.concat([b, Buffer.from(s)]);
}

let w: GroupWorld;
let timers: ManualTimers;
let groups: GroupsService;

beforeEach(async () => {
  w = await groupWorld({ t: 3 }, { initialRebalanceDelayMs: DELAY });
  timers = new ManualTimers();
  groups = new GroupsService(w.rt, w.rm, timers);
});
afterEach(async () => {
  await w.close();
});

/** Moves the broker's clock and its timers together. */
function advance(ms: number): void {
  w.clock.advance(ms);
  timers.advance(ms);
}

/** Lets resolved promises run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
}

function join(over: Partial<JoinGroupInput> = {}): Promise<JoinGroupOutput> {
  return groups.joinGroup({
    groupId: G,
    memberId: "",
    instanceId: null,
    protocolType: "consumer",
    protocols: [{ name: "range", metadata: subscription("t") }],
    sessionTimeoutMs: 10_000,
    rebalanceTimeoutMs: 5_000,
    clientId: "svc",
    clientHost: "/127.0.0.1",
    requireKnownMemberId: true,
    ...over,
  });
}

function sync(memberId: string, generation: number, assignments: Record<string, Uint8Array> = {}): Promise<SyncGroupOutput> {
  return groups.syncGroup({
    groupId: G,
    memberId,
    generation,
    instanceId: null,
    protocolType: "consumer",
    protocol: "range",
    assignments: Object.entries(assignments).map(([memberId, assignment]) => ({ memberId, assignment })),
  });
}

/** Tracks whether a promise has settled. */
function track<T>(p: Promise<T>): { done: () => boolean; value: () => T } {
  let done = false;
  let value: T;
  void p.then((v) => {
    done = true;
    value = v;
  });
  return { done: () => done, value: () => value };
}

/** Three members joined and synced (generation 1); returns their ids, the leader's first. */
async function stableThree(): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    const first = await join();
    expect(first.error?.kind.name).toBe("MEMBER_ID_REQUIRED");
    ids.push(first.memberId);
  }
  const joins = ids.map((memberId) => track(join({ memberId })));
  await settle();
  expect(joins.map((j) => j.done())).toEqual([false, false, false]);
  advance(DELAY);
  await settle();
  expect(joins.map((j) => j.done())).toEqual([true, true, true]);
  const leader = joins[0]!.value().leader;
  expect(leader).toBe(ids[0]);
  expect(joins.map((j) => [j.value().generation, j.value().members.length])).toEqual([
    [1, 3],
    [1, 0],
    [1, 0],
  ]);
  const followers = [track(sync(ids[1]!, 1)), track(sync(ids[2]!, 1))];
  await settle();
  expect(followers.map((f) => f.done())).toEqual([false, false]);
  const mine = await sync(leader, 1, {
    [ids[0]!]: assignment({ t: [0] }),
    [ids[1]!]: assignment({ t: [1] }),
    [ids[2]!]: assignment({ t: [2] }),
  });
  await settle();
  expect(mine.error).toBeNull();
  expect(followers.map((f) => f.value().assignment)).toEqual(
    [assignment({ t: [1] }), assignment({ t: [2] })].map((b) => new Uint8Array(b)),
  );
  return ids;
}

describe("GroupsService: classic groups", () => {
  it("answers three waiting JoinGroups when the initial delay ends, and the followers' SyncGroups with the leader's assignment", async () => {
    const ids = await stableThree();
    expect(ids.map((memberId) => groups.classicHeartbeat({ groupId: G, memberId, generation: 1, instanceId: null }))).toEqual([
      null,
      null,
      null,
    ]);
    expect(timers.pending).toBeGreaterThan(0); // the group's session timer
  });

  it("shows classic groups in ListGroups and DescribeGroups: protocol type, Kafka's state, members' bytes and what they read", async () => {
    const ids = await stableThree();
    expect(groups.listGroups([])).toEqual([
      { groupId: G, state: "stable", members: 3, type: "classic", protocolType: "consumer", classicState: "Stable" },
    ]);
    const [d] = groups.describeGroups([G]);
    expect(d!.error).toBeNull();
    const g = d!.group!;
    expect(g.classic).toMatchObject({ state: "Stable", protocolType: "consumer", protocol: "range", generation: 1, leader: ids[0] });
    expect(g.classic!.members.map((m) => m.metadata)).toEqual(ids.map(() => new Uint8Array(subscription("t"))));
    expect(g.members.map((m) => [m.memberId, m.memberEpoch, m.topics, m.assignment])).toEqual([
      [ids[0], 1, ["t"], [{ topic: "t", partitions: [0] }]],
      [ids[1], 1, ["t"], [{ topic: "t", partitions: [1] }]],
      [ids[2], 1, ["t"], [{ topic: "t", partitions: [2] }]],
    ]);
  });

  it("rebalances when a member joins a Stable group: heartbeats answer REBALANCE_IN_PROGRESS until all rejoined", async () => {
    const ids = await stableThree();
    const newcomer = track(join({ requireKnownMemberId: false }));
    await settle();
    expect(newcomer.done()).toBe(false);
    expect(groups.classicHeartbeat({ groupId: G, memberId: ids[1]!, generation: 1, instanceId: null })?.kind.name).toBe(
      "REBALANCE_IN_PROGRESS",
    );
    const rejoins = ids.map((memberId) => track(join({ memberId })));
    await settle();
    expect([newcomer.done(), ...rejoins.map((r) => r.done())]).toEqual([true, true, true, true]);
    expect(rejoins[0]!.value()).toMatchObject({ generation: 2, leader: ids[0] });
    expect(rejoins[0]!.value().members.length).toBe(4);
  });

  it("expires a member whose session runs out on the group's own timer; the others' joins complete at the rebalance timeout", async () => {
    const ids = await stableThree();
    advance(6_000);
    for (const memberId of ids.slice(0, 2)) groups.classicHeartbeat({ groupId: G, memberId, generation: 1, instanceId: null });
    advance(4_000); // ids[2]'s 10 s session is over
    await settle();
    const [d] = groups.describeGroups([G]);
    expect(d!.group!.classic!.members.map((m) => m.memberId)).toEqual(ids.slice(0, 2));
    expect(d!.group!.classic!.state).toBe("PreparingRebalance");
    const rejoin = track(join({ memberId: ids[0]! }));
    await settle();
    expect(rejoin.done()).toBe(false);
    advance(5_000); // ids[1] never rejoins: dropped at the rebalance timeout
    await settle();
    expect(rejoin.value()).toMatchObject({ error: null, generation: 2, leader: ids[0] });
    expect(rejoin.value().members.map((m) => m.memberId)).toEqual([ids[0]]);
  });

  it("answers a waiting JoinGroup REBALANCE_IN_PROGRESS when the same member joins again meanwhile", async () => {
    const first = await join();
    const a = track(join({ memberId: first.memberId }));
    const b = track(join({ memberId: first.memberId }));
    await settle();
    expect(a.value().error?.kind.name).toBe("REBALANCE_IN_PROGRESS");
    expect(b.done()).toBe(false);
    advance(DELAY);
    await settle();
    expect(b.value()).toMatchObject({ error: null, generation: 1, leader: first.memberId });
  });

  it("leaves, commits with the classic generation, and fetches the commits", async () => {
    const ids = await stableThree();
    const ok = await groups.commitOffsets({
      groupId: G,
      memberId: ids[1]!,
      memberEpoch: 1,
      offsets: [{ topic: "t", partition: 1, offset: 4, metadata: "m", leaderEpoch: -1 }],
    });
    expect(ok.offsets[0]!.error).toBeNull();
    const stale = await groups.commitOffsets({
      groupId: G,
      memberId: ids[1]!,
      memberEpoch: 0,
      offsets: [{ topic: "t", partition: 1, offset: 9, metadata: "", leaderEpoch: -1 }],
    });
    expect(stale.error?.kind.name).toBe("ILLEGAL_GENERATION");
    expect((await groups.fetchOffsets(G, null)).map((o) => [o.partition, o.offset, o.metadata])).toEqual([[1, 4, "m"]]);
    const left = await groups.leaveGroup({ groupId: G, members: ids.map((memberId) => ({ memberId, instanceId: null })) });
    expect(left.members.map((m) => m.error)).toEqual([null, null, null]);
    expect(groups.listGroups([])[0]).toMatchObject({ classicState: "Empty", members: 0 });
    expect(groups.deleteGroups([G])).toEqual([{ groupId: G, error: null }]);
    expect(groups.listGroups([])).toEqual([]);
  });

  it("a new coordinator loading __consumer_offsets serves the Stable generation: SyncGroup answers the assignment", async () => {
    const ids = await stableThree();
    const loaded = GroupRuntime.start(w.rm, w.clock, { next: () => 0, int: () => 0 }, 1);
    const again = new GroupsService(loaded, w.rm, new ManualTimers());
    const r = await again.syncGroup({
      groupId: G,
      memberId: ids[2]!,
      generation: 1,
      instanceId: null,
      protocolType: null,
      protocol: null,
      assignments: [],
    });
    expect(r.assignment).toEqual(new Uint8Array(assignment({ t: [2] })));
    expect(again.describeGroups([G])[0]!.group!.classic!.state).toBe("Stable");
  });
});
