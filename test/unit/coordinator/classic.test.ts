/**
 * Classic groups on the coordinator (classic.ts through the GroupCoordinator facade): JoinGroup
 * rounds with waiting members, the leader's SyncGroup, heartbeats, leaves, session expiry, what
 * is written and replayed, protocol selection, and one protocol per group.
 */
import { describe, expect, it } from "vitest";
import type {
  ClassicDelivery,
  ClassicOutcome,
  JoinGroupRequest,
  JoinGroupResponse,
  SyncGroupResponse,
} from "../../../src/coordinator/coordinator.ts";
import type { GroupRecord } from "../../../src/coordinator/records.ts";
import { Harness, nameOf } from "./helpers.ts";

const G = "classic-group";
const DELAY = 100;
const SESSION = 10_000;

const bytes = (s: string): Uint8Array => Buffer.from(s);
const text = (b: Uint8Array): string => Buffer.from(b).toString();

/** A harness whose classic answers that arrive later are collected in `delivered`. */
class ClassicHarness extends Harness {
  readonly delivered: ClassicDelivery[] = [];

  constructor() {
    super({ initialRebalanceDelayMs: DELAY });
  }

  join(req: Partial<JoinGroupRequest> & { memberId: string }): ClassicOutcome<JoinGroupResponse> {
    const out = this.write(
      this.c.joinGroup(
        {
          groupId: G,
          instanceId: null,
          protocolType: "consumer",
          protocols: [{ name: "range", metadata: bytes(`meta-${req.memberId}`) }],
          sessionTimeoutMs: SESSION,
          rebalanceTimeoutMs: 5_000,
          clientId: "c",
          clientHost: "/127.0.0.1",
          requireKnownMemberId: false,
          ...req,
        },
        this.now,
      ),
    );
    this.delivered.push(...out.deliveries);
    return out;
  }

  sync(memberId: string, generation: number, assignments: Record<string, string> = {}): ClassicOutcome<SyncGroupResponse> {
    const out = this.write(
      this.c.syncGroup(
        {
          groupId: G,
          memberId,
          generation,
          instanceId: null,
          protocolType: "consumer",
          protocol: null,
          assignments: Object.entries(assignments).map(([m, a]) => ({ memberId: m, assignment: bytes(a) })),
        },
        this.now,
      ),
    );
    this.delivered.push(...out.deliveries);
    return out;
  }

  hb(memberId: string, generation: number, instanceId: string | null = null): string {
    return nameOf(this.write(this.c.classicHeartbeat({ groupId: G, memberId, generation, instanceId }, this.now))) ?? "ok";
  }

  leave(...members: Array<{ memberId: string; instanceId?: string }>): string[] {
    const out = this.write(
      this.c.leaveGroup(
        { groupId: G, members: members.map((m) => ({ memberId: m.memberId, instanceId: m.instanceId ?? null })) },
        this.now,
      ),
    );
    this.delivered.push(...out.deliveries);
    return out.answer!.members.map((m) => nameOf(m.error) ?? "ok");
  }

  classicTick(): ClassicDelivery[] {
    const out = this.write(this.c.classicTick(this.now));
    this.delivered.push(...out);
    return out;
  }

  /** The delivered answers since the last call, by member. */
  take(kind: "join" | "sync"): Map<string, JoinGroupResponse | SyncGroupResponse> {
    const out = new Map<string, JoinGroupResponse | SyncGroupResponse>();
    for (const d of this.delivered.splice(0)) if (d.kind === kind) out.set(d.memberId, d.response);
    return out;
  }

  classicRecords(): GroupRecord[] {
    return this.log.filter((r) => r.type === "classic-group");
  }
}

/** Three members through MEMBER_ID_REQUIRED, the initial delay, and the leader's sync. */
function stableGroupOfThree(h: ClassicHarness): { ids: string[]; leader: string } {
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    const first = h.join({ memberId: "", requireKnownMemberId: true, clientId: `client${i}` });
    expect(nameOf(first.answer!.error)).toBe("MEMBER_ID_REQUIRED");
    expect(first.answer!.memberId).toMatch(new RegExp(`^client${i}-`));
    const second = h.join({ memberId: first.memberId, requireKnownMemberId: true, clientId: `client${i}` });
    expect(second.answer).toBeNull(); // waits for the rebalance
    ids.push(first.memberId);
  }
  expect(h.c.listGroups()[0]).toMatchObject({ groupId: G, classicState: "PreparingRebalance", members: 3, type: "classic" });
  h.advance(DELAY);
  expect(h.classicTick().length).toBe(3);
  const joins = h.take("join") as Map<string, JoinGroupResponse>;
  const leader = joins.get(ids[0]!)!.leader;
  expect(leader).toBe(ids[0]);
  for (const id of ids) {
    const r = joins.get(id)!;
    expect([r.error, r.generation, r.protocolType, r.protocol, r.memberId]).toEqual([null, 1, "consumer", "range", id]);
    expect(r.members.length).toBe(id === leader ? 3 : 0);
  }
  expect(joins.get(leader)!.members.map((m) => text(m.metadata))).toEqual(ids.map((id) => `meta-${id}`));
  // Followers wait for the leader's assignment; the leader's sync hands it out.
  expect(h.sync(ids[1]!, 1).answer).toBeNull();
  expect(h.sync(ids[2]!, 1).answer).toBeNull();
  const own = h.sync(leader, 1, Object.fromEntries(ids.map((id, i) => [id, `assignment-${i}`])));
  expect(text(own.answer!.assignment)).toBe("assignment-0");
  const syncs = h.take("sync") as Map<string, SyncGroupResponse>;
  expect([...syncs].map(([id, r]) => [id, text(r.assignment)])).toEqual([
    [ids[1], "assignment-1"],
    [ids[2], "assignment-2"],
  ]);
  return { ids, leader };
}

describe("classic groups: rebalances", () => {
  it("takes three members through MEMBER_ID_REQUIRED, the initial delay, JoinGroup and SyncGroup to Stable", () => {
    const h = new ClassicHarness();
    const { ids } = stableGroupOfThree(h);
    const d = h.describe(G);
    expect(d.classic).toMatchObject({ state: "Stable", protocolType: "consumer", protocol: "range", generation: 1, leader: ids[0] });
    expect(d.classic!.members.map((m) => text(m.assignment))).toEqual(["assignment-0", "assignment-1", "assignment-2"]);
    expect(ids.map((id) => h.hb(id, 1))).toEqual(["ok", "ok", "ok"]);
    // One record for the generation, written at the leader's sync.
    expect(h.classicRecords().length).toBe(1);
    expect(h.classicRecords()[0]).toMatchObject({ generation: 1, protocol: "range", leader: ids[0] });
  });

  it("waits for the initial delay while members keep coming, then completes at once on later rebalances", () => {
    const h = new ClassicHarness();
    const a = h.join({ memberId: "" });
    expect(a.answer).toBeNull();
    h.advance(DELAY - 1);
    const b = h.join({ memberId: "" }); // restarts the delay
    expect(b.answer).toBeNull();
    h.advance(DELAY - 1);
    expect(h.classicTick()).toEqual([]);
    h.advance(1);
    expect(h.classicTick().length).toBe(2);
    const leader = (h.take("join").get(a.memberId) as JoinGroupResponse).leader;
    h.sync(leader, 1, {});
    h.take("sync");
    // Rejoining members complete a later rebalance as soon as all are in, no delay.
    const other = leader === a.memberId ? b.memberId : a.memberId;
    expect(h.join({ memberId: leader }).answer).toBeNull();
    expect(h.hb(other, 1)).toBe("REBALANCE_IN_PROGRESS");
    const last = h.join({ memberId: other });
    expect(last.answer!.generation).toBe(2);
    expect((h.take("join").get(leader) as JoinGroupResponse).generation).toBe(2);
  });

  it("rebalances when a member joins a Stable group; members that do not rejoin in time are dropped", () => {
    const h = new ClassicHarness();
    const { ids, leader } = stableGroupOfThree(h);
    const d = h.join({ memberId: "" });
    expect(d.answer).toBeNull();
    expect(h.describe(G).classic!.state).toBe("PreparingRebalance");
    expect(h.hb(ids[1]!, 1)).toBe("REBALANCE_IN_PROGRESS");
    expect(h.sync(ids[1]!, 1).answer!.error?.kind.name).toBe("REBALANCE_IN_PROGRESS");
    expect(h.join({ memberId: ids[0]! }).answer).toBeNull();
    expect(h.join({ memberId: ids[1]! }).answer).toBeNull();
    // ids[2] never rejoins: at the rebalance timeout (5 s) the generation goes on without it.
    h.advance(5_000);
    h.classicTick();
    const joins = h.take("join") as Map<string, JoinGroupResponse>;
    expect([...joins.keys()].sort()).toEqual([ids[0], ids[1], d.memberId].sort());
    expect(joins.get(leader)!.generation).toBe(2);
    expect(
      joins
        .get(leader)!
        .members.map((m) => m.memberId)
        .sort(),
    ).toEqual([ids[0], ids[1], d.memberId].sort());
    expect(h.hb(ids[2]!, 1)).toBe("UNKNOWN_MEMBER_ID");
  });

  it("expires members whose session runs out, and rebalances the rest", () => {
    const h = new ClassicHarness();
    const { ids } = stableGroupOfThree(h);
    h.advance(SESSION / 2);
    expect(h.hb(ids[0]!, 1)).toBe("ok");
    expect(h.hb(ids[1]!, 1)).toBe("ok");
    h.advance(SESSION / 2);
    h.classicTick();
    expect(h.describe(G).classic!.members.map((m) => m.memberId)).toEqual([ids[0], ids[1]]);
    expect(h.describe(G).classic!.state).toBe("PreparingRebalance");
    expect(h.c.classicDeadline(G)).toBe(h.now + 5_000);
    expect(h.hb(ids[2]!, 1)).toBe("UNKNOWN_MEMBER_ID");
    expect(h.hb(ids[0]!, 1)).toBe("REBALANCE_IN_PROGRESS");
  });

  it("answers leaves per member (v3 batches), rebalances, and writes an Empty generation when the last leaves", () => {
    const h = new ClassicHarness();
    const { ids } = stableGroupOfThree(h);
    expect(h.leave({ memberId: ids[2]! }, { memberId: "nobody" })).toEqual(["ok", "UNKNOWN_MEMBER_ID"]);
    expect(h.describe(G).classic!.state).toBe("PreparingRebalance");
    // A member waiting for its join is answered UNKNOWN_MEMBER_ID when it leaves meanwhile.
    expect(h.join({ memberId: ids[0]! }).answer).toBeNull();
    expect(h.leave({ memberId: ids[0]! }, { memberId: ids[1]! })).toEqual(["ok", "ok"]);
    const joins = h.take("join") as Map<string, JoinGroupResponse>;
    expect(nameOf(joins.get(ids[0]!)!.error)).toBe("UNKNOWN_MEMBER_ID");
    const d = h.describe(G).classic!;
    expect([d.state, d.generation, d.members.length]).toEqual(["Empty", 2, 0]);
    expect(h.classicRecords().at(-1)).toMatchObject({ generation: 2, protocol: null, leader: null, members: [] });
  });

  it("answers heartbeat errors as Kafka does", () => {
    const h = new ClassicHarness();
    expect(h.hb("nobody", 0)).toBe("UNKNOWN_MEMBER_ID");
    const { ids } = stableGroupOfThree(h);
    expect(h.hb(ids[0]!, 7)).toBe("ILLEGAL_GENERATION");
    expect(h.hb(ids[0]!, 1, "someone")).toBe("FENCED_INSTANCE_ID");
    expect(h.hb("nobody", 1)).toBe("UNKNOWN_MEMBER_ID");
    expect(nameOf(h.sync(ids[0]!, 3).answer!.error)).toBe("ILLEGAL_GENERATION");
    expect(nameOf(h.join({ memberId: "nobody" }).answer!.error)).toBe("UNKNOWN_MEMBER_ID");
    expect(nameOf(h.join({ memberId: "", sessionTimeoutMs: 10 }).answer!.error)).toBe("INVALID_SESSION_TIMEOUT");
  });
});

describe("classic groups: protocols", () => {
  it("picks the protocol most members prefer among those all support, and refuses members with none in common", () => {
    const h = new ClassicHarness();
    const p = (...names: string[]) => names.map((name) => ({ name, metadata: bytes(name) }));
    const a = h.join({ memberId: "", protocols: p("range", "roundrobin") });
    h.join({ memberId: "", protocols: p("roundrobin", "range") });
    h.join({ memberId: "", protocols: p("sticky", "roundrobin") });
    const refused = h.join({ memberId: "", protocols: p("sticky") });
    expect(nameOf(refused.answer!.error)).toBe("INCONSISTENT_GROUP_PROTOCOL");
    const otherType = h.join({ memberId: "", protocolType: "connect", protocols: p("range") });
    expect(nameOf(otherType.answer!.error)).toBe("INCONSISTENT_GROUP_PROTOCOL");
    h.advance(DELAY);
    h.classicTick();
    const r = h.take("join").get(a.memberId) as JoinGroupResponse;
    expect(r.protocol).toBe("roundrobin");
    expect(r.members.map((m) => text(m.metadata))).toEqual(["roundrobin", "roundrobin", "roundrobin"]);
  });
});

describe("classic groups: what is written", () => {
  it("rebuilds the Stable generation from the log: members, assignments, and a SyncGroup answer", () => {
    const h = new ClassicHarness();
    const { ids } = stableGroupOfThree(h);
    const c = h.replayed();
    expect(c.toJSON()).toEqual(h.c.toJSON());
    const d = c.describeGroups([G])[0]!;
    expect(d.classic).toEqual(h.describe(G).classic);
    const sync = c.syncGroup(
      { groupId: G, memberId: ids[1]!, generation: 1, instanceId: null, protocolType: null, protocol: null, assignments: [] },
      h.now,
    );
    expect(text(sync.response.answer!.assignment)).toBe("assignment-1");
    // Loaded members' sessions start at the first tick.
    const first = c.classicTick(h.now + SESSION - 1);
    first.effects?.();
    expect([first.records, first.response]).toEqual([[], []]);
    expect(c.describeGroups([G])[0]!.classic!.members.length).toBe(3);
    // Without heartbeats, their sessions (started at that first tick) run out: the group is Empty, written.
    const expired = c.classicTick(h.now + 2 * SESSION - 1);
    expired.effects?.();
    for (const r of expired.records) c.replay(r);
    expect(c.describeGroups([G])[0]!.classic).toMatchObject({ state: "Empty", generation: 2, members: [] });
    expect(expired.records.map((r) => r.type)).toEqual(["classic-group"]);
  });

  it("keeps a static member's place and assignment when it rejoins with a new member id, without a rebalance", () => {
    const h = new ClassicHarness();
    const a = h.join({ memberId: "", instanceId: "pod-a" });
    const b = h.join({ memberId: "", instanceId: "pod-b" });
    h.advance(DELAY);
    h.classicTick();
    const leader = (h.take("join").get(a.memberId) as JoinGroupResponse).leader;
    h.sync(leader, 1, { [a.memberId]: "A", [b.memberId]: "B" });
    h.take("sync");
    // pod-b restarts: joins with no member id and the same protocols.
    const again = h.join({ memberId: "", instanceId: "pod-b", protocols: [{ name: "range", metadata: bytes(`meta-${""}`) }] });
    expect(again.memberId).not.toBe(b.memberId);
    // Its metadata changed (meta- vs meta-<id>): that is a rebalance; with the same metadata it is not.
    const h2 = new ClassicHarness();
    const meta = [{ name: "range", metadata: bytes("same") }];
    const x = h2.join({ memberId: "", instanceId: "pod-x", protocols: meta });
    h2.advance(DELAY);
    h2.classicTick();
    h2.take("join");
    h2.sync(x.memberId, 1, { [x.memberId]: "X" });
    const back = h2.join({ memberId: "", instanceId: "pod-x", protocols: meta });
    expect(back.answer).toMatchObject({ error: null, generation: 1, memberId: back.memberId });
    expect(h2.hb(x.memberId, 1)).toBe("UNKNOWN_MEMBER_ID");
    expect(text(h2.sync(back.memberId, 1).answer!.assignment)).toBe("X");
    expect(h2.classicRecords().at(-1)).toMatchObject({ generation: 1, members: [{ memberId: back.memberId, instanceId: "pod-x" }] });
  });
});

describe("classic groups: offsets and one protocol per group", () => {
  it("checks commits against the classic generation; a commit without membership only while Empty", () => {
    const h = new ClassicHarness();
    h.topics.set("t", 2);
    const { ids } = stableGroupOfThree(h);
    const commit = (memberId: string, generation: number) =>
      h.write(
        h.c.commitOffsets({ groupId: G, memberId, memberEpoch: generation, offsets: [{ topic: "t", partition: 1, offset: 5 }] }, h.now),
      );
    expect(nameOf(commit(ids[1]!, 1).offsets[0]!.error) ?? "ok").toBe("ok");
    expect(nameOf(commit(ids[1]!, 2).error)).toBe("ILLEGAL_GENERATION");
    expect(nameOf(commit("nobody", 1).error)).toBe("UNKNOWN_MEMBER_ID");
    expect(nameOf(commit("", -1).error)).toBe("UNKNOWN_MEMBER_ID");
    h.leave(...ids.map((memberId) => ({ memberId })));
    expect(commit("", -1).error).toBeNull();
    expect(h.c.fetchOffsets(G, null).map((o) => o.offset)).toEqual([5]);
  });

  it("refuses a KIP-848 member in a classic group with members, and a classic member in a consumer group with members", () => {
    const h = new ClassicHarness();
    h.topics.set("t", 2);
    const a = h.join({ memberId: "" });
    expect(a.answer).toBeNull();
    expect(() => h.heartbeat({ groupId: G, memberId: "", memberEpoch: 0, subscribedTopics: ["t"] })).toThrow(/classic group/);
    const other = new ClassicHarness();
    other.topics.set("t", 2);
    other.heartbeat({ groupId: G, memberId: "", memberEpoch: 0, subscribedTopics: ["t"] });
    expect(nameOf(other.join({ memberId: "" }).answer!.error)).toBe("INCONSISTENT_GROUP_PROTOCOL");
  });

  it("turns an empty classic group into a consumer group when a KIP-848 member joins, and back when it is empty again", () => {
    const h = new ClassicHarness();
    h.topics.set("t", 2);
    stableGroupOfThree(h);
    const ids = h.describe(G).classic!.members.map((m) => m.memberId);
    h.leave(...ids.map((memberId) => ({ memberId })));
    const r = h.heartbeat({ groupId: G, memberId: "", memberEpoch: 0, subscribedTopics: ["t"] });
    expect(h.log.at(-1)?.type).not.toBe("classic-group-tombstone");
    expect(h.log.some((x) => x.type === "classic-group-tombstone")).toBe(true);
    expect(h.describe(G).classic).toBeNull();
    expect(h.c.listGroups()[0]).toMatchObject({ type: "consumer", members: 1 });
    h.heartbeat({ groupId: G, memberId: r.memberId, memberEpoch: -1 });
    const again = h.join({ memberId: "" });
    expect(again.answer).toBeNull();
    expect(h.c.listGroups()[0]).toMatchObject({ type: "classic", classicState: "PreparingRebalance" });
    expect(h.replayed().toJSON()).toEqual(h.c.toJSON());
  });
});
