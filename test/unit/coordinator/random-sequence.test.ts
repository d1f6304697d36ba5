/**
 * Seeded random sequences of joins, leaves, static leaves and comebacks, heartbeats (some with
 * lost responses, some from members slow to give up partitions), commits (zombies included),
 * subscription changes, topic growth, clock jumps and session timeouts. After every step:
 *
 * - no two members own the same partition (the coordinator's view: assigned or pending
 *   revocation), and no two live clients hold the same partition (the clients' view);
 * - a commit is accepted only from the member that owns the partition;
 * - every 25 steps, a coordinator rebuilt by replaying the log equals the live one.
 *
 * At the end everyone heartbeats until the group is stable: every subscribed partition is held
 * by exactly one client, as the coordinator says. A failure names its seed; `SEED=n` reruns one.
 */
import { describe, expect, it } from "vitest";
import { RillError } from "../../../src/base/errors.ts";
import type { Random } from "../../../src/base/random.ts";
import { SeededRandom, seedFromEnv } from "../../../src/base/random.ts";
import type { HeartbeatResponse } from "../../../src/coordinator/coordinator.ts";
import type { TopicPartitions } from "../../../src/coordinator/partitions.ts";
import { keysOf, minus, parseTpKey, samePartitions, union } from "../../../src/coordinator/partitions.ts";
import { Harness, nameOf } from "./helpers.ts";

const G = "sim";

/** Events seen over every seed of this run: the sequences must reach the paths they test. */
const totals = new Map<string, number>();
function count(event: string): void {
  totals.set(event, (totals.get(event) ?? 0) + 1);
}
const TOPICS = ["a", "b"];
const CLIENTS_MAX = 8;

/** A client process as the coordinator sees it from outside. */
interface Client {
  readonly name: string;
  memberId: string;
  epoch: number;
  instanceId: string | undefined;
  topics: string[];
  /** What the client holds now (assigned plus revoked partitions it has not let go of yet). */
  held: TopicPartitions[];
  /** Revoked partitions it still holds, and for how many more heartbeats. */
  releasing: TopicPartitions[];
  releaseDelay: number;
  slow: boolean;
  paused: boolean;
  /** What the last heartbeat the coordinator saw said it held (null: unknown); unchanged may be omitted. */
  lastSent: TopicPartitions[] | null;
  /** Gone for good (left, or left for a while and replaced by a new process). */
  gone: boolean;
}

class Sim {
  readonly h: Harness;
  readonly rnd: Random;
  readonly clients: Client[] = [];
  awayInstances: string[] = [];
  private counter = 0;
  step = 0;

  constructor(readonly seed: number) {
    this.h = new Harness({}, seed);
    this.rnd = new SeededRandom(seed ^ 0x5eed);
    this.h.topics.set("a", 4);
    this.h.topics.set("b", 3);
  }

  pick<T>(xs: readonly T[]): T | undefined {
    return xs.length === 0 ? undefined : xs[this.rnd.int(xs.length)];
  }

  live(): Client[] {
    return this.clients.filter((c) => !c.gone);
  }

  randomTopics(): string[] {
    const t = TOPICS.filter(() => this.rnd.int(2) === 0);
    return t.length > 0 ? t : [this.pick(TOPICS) ?? "a"];
  }

  newClient(instanceId?: string): Client {
    const c: Client = {
      name: `c${this.counter++}`,
      memberId: "",
      epoch: 0,
      instanceId,
      topics: this.randomTopics(),
      held: [],
      releasing: [],
      releaseDelay: 0,
      slow: this.rnd.int(3) === 0,
      paused: false,
      lastSent: null,
      gone: false,
    };
    this.clients.push(c);
    return c;
  }

  /** One heartbeat (or join) of a client, with its error handling. */
  heartbeat(c: Client, loseResponse: boolean, extraTopics?: string[]): void {
    const joining = c.epoch === 0;
    // Like Kafka's clients, sometimes leave `owned` out when it did not change.
    const omitOwned = !joining && c.lastSent !== null && samePartitions(c.lastSent, c.held) && this.rnd.int(3) === 0;
    let r: HeartbeatResponse;
    try {
      const res = this.h.c.heartbeat(
        {
          groupId: G,
          memberId: c.memberId,
          memberEpoch: c.epoch,
          instanceId: c.instanceId,
          ownedPartitions: omitOwned ? undefined : c.held,
          subscribedTopics: joining || extraTopics !== undefined ? (extraTopics ?? c.topics) : undefined,
        },
        this.h.now,
      );
      this.h.append(res.records);
      r = res.response;
      for (const rec of res.records) {
        if (rec.type === "assignment" && rec.state === "unrevoked-partitions") count("revocation");
        if (rec.type === "assignment" && rec.state === "unreleased-partitions") count("unreleased");
        if (rec.type === "member-tombstone" && joining) count("static comeback");
      }
      if (loseResponse) count("lost response");
      if (omitOwned) count("owned omitted");
      c.lastSent = c.held;
    } catch (e) {
      if (!(e instanceof RillError)) throw e;
      const name = nameOf(e);
      count(`heartbeat ${name ?? "?"}`);
      if (name === "FENCED_MEMBER_EPOCH" || name === "UNKNOWN_MEMBER_ID") {
        // Lose everything and join again.
        c.held = [];
        c.releasing = [];
        c.lastSent = null;
        c.epoch = 0;
        if (name === "UNKNOWN_MEMBER_ID") c.memberId = "";
        return;
      }
      if (name === "UNRELEASED_INSTANCE_ID") return; // the old incarnation has not timed out yet
      throw e;
    }
    if (extraTopics !== undefined) c.topics = extraTopics;
    if (loseResponse) return;
    c.memberId = r.memberId;
    c.epoch = r.memberEpoch;
    this.releaseStep(c);
    if (r.assignment !== null) {
      const revoked = minus(c.held, r.assignment);
      c.releasing = c.slow ? union(c.releasing, revoked) : [];
      c.releaseDelay = c.slow ? 1 + this.rnd.int(3) : 0;
      c.held = union(r.assignment, c.releasing);
    }
  }

  releaseStep(c: Client): void {
    if (c.releasing.length === 0) return;
    if (c.releaseDelay-- > 0) return;
    c.held = minus(c.held, c.releasing);
    c.releasing = [];
  }

  commit(c: Client): void {
    const parts = [...keysOf(c.held)];
    const k = this.pick(parts) ?? "a:0";
    const { topic, partition } = parseTpKey(k);
    const d = this.h.c.describeGroups([G])[0];
    // The owner as the coordinator holds it: the member whose assignment (including partitions
    // pending revocation, which it may still commit) contains the partition.
    const owner = d!.members.find((m) => m.assignment.some((t) => t.topic === topic && t.partitions.includes(partition)))?.memberId ?? "";
    const res = this.h.c.commitOffsets(
      {
        groupId: G,
        memberId: c.memberId === "" ? "x" : c.memberId,
        memberEpoch: Math.max(0, c.epoch),
        offsets: [{ topic, partition, offset: this.step }],
      },
      this.h.now,
    );
    const ok = res!.response.offsets[0]!.error === null;
    count(`commit ${nameOf(res!.response.offsets[0]!.error) ?? "accepted"}`);
    if (ok) {
      expect(owner, `commit of ${k} by ${c.name} (${c.memberId}) accepted, owner is ${owner}`).toBe(c.memberId);
      expect(this.isLiveMember(c), `commit by zombie ${c.name} accepted`).toBe(true);
    }
    this.h.append(res.records);
  }

  isLiveMember(c: Client): boolean {
    if (c.gone || c.memberId === "" || c.epoch <= 0) return false;
    const m = this!.h.c.describeGroups([G])[0]!.members.find((x) => x.memberId === c.memberId);
    return m !== undefined && m.memberEpoch !== -2;
  }

  checkInvariants(): void {
    const [d] = this.h.c.describeGroups([G]);
    if (d!.error !== null) return;
    const owner = new Map<string, string>();
    for (const m of d!.members) {
      for (const k of keysOf(m.assignment)) {
        expect(owner.get(k), `partition ${k}: members ${owner.get(k)} and ${m.memberId}`).toBeUndefined();
        owner.set(k, m.memberId);
      }
    }
    const holder = new Map<string, string>();
    for (const c of this.clients) {
      if (!this.isLiveMember(c)) continue;
      const m = d!.members.find((x) => x.memberId === c.memberId);
      for (const k of keysOf(c.held)) {
        expect(holder.get(k), `partition ${k}: clients ${holder.get(k)} and ${c.name}`).toBeUndefined();
        holder.set(k, c.name);
        expect(keysOf(m?.assignment ?? []).has(k), `${c.name} holds ${k} but the coordinator does not know`).toBe(true);
      }
    }
  }

  action(): void {
    const x = this.rnd.int(100);
    const live = this.live();
    const active = live.filter((c) => !c.paused);
    if (x < 40) {
      const c = this.pick(active);
      if (c !== undefined) this.heartbeat(c, this.rnd.int(20) === 0);
    } else if (x < 48) {
      if (live.length < CLIENTS_MAX) {
        const isStatic = this.rnd.int(3) === 0;
        this.heartbeat(this.newClient(isStatic ? `inst-${this.counter}` : undefined), this.rnd.int(20) === 0);
      }
    } else if (x < 52) {
      const c = this.pick(active.filter((c) => c.epoch > 0));
      if (c !== undefined) this.leave(c);
    } else if (x < 56) {
      const c = this.pick(active.filter((c) => c.epoch > 0 && c.instanceId !== undefined));
      if (c !== undefined) this.staticLeave(c);
    } else if (x < 61) {
      const inst = this.pick(this.awayInstances);
      if (inst !== undefined) {
        this.awayInstances = this.awayInstances.filter((i) => i !== inst);
        this.heartbeat(this.newClient(inst), false);
      }
    } else if (x < 64) {
      const c = this.pick(live);
      if (c !== undefined) c.paused = !c.paused;
    } else if (x < 79) {
      const c = this.pick(this.clients.filter((c) => c.memberId !== ""));
      if (c !== undefined) this.commit(c);
    } else if (x < 94) {
      this.h.advance(this.rnd.int(1_500));
      if (this.h.tick().some((r) => r.type === "member-tombstone")) count("timeout");
    } else if (x < 95) {
      this.grow();
    } else if (x < 98) {
      const c = this.pick(active.filter((c) => c.epoch > 0));
      if (c !== undefined) this.heartbeat(c, false, this.randomTopics());
    } else {
      const c = this.pick(active);
      if (c !== undefined) c.slow = !c.slow;
    }
  }

  leave(c: Client): void {
    try {
      this.h.write(this.h.c.heartbeat({ groupId: G, memberId: c.memberId, memberEpoch: -1 }, this.h.now));
    } catch (e) {
      if (nameOf(e as RillError) !== "UNKNOWN_MEMBER_ID") throw e;
    }
    c.gone = true;
    c.held = [];
  }

  staticLeave(c: Client): void {
    try {
      this.h.write(this.h.c.heartbeat({ groupId: G, memberId: c.memberId, memberEpoch: -2, instanceId: c.instanceId }, this.h.now));
      if (c.instanceId !== undefined) this.awayInstances.push(c.instanceId);
    } catch (e) {
      if (nameOf(e as RillError) !== "UNKNOWN_MEMBER_ID") throw e;
      if (c.instanceId !== undefined) this.awayInstances.push(c.instanceId);
    }
    c.gone = true;
    c.held = [];
  }

  grow(): void {
    const t = this.pick(TOPICS) ?? "a";
    const n = (this.h.topics.get(t) ?? 0) + 1 + this.rnd.int(2);
    this.h.topics.set(t, n);
    if (this.rnd.int(2) === 0) this.h.append(this.h.c.onTopicsChanged(new Map([[t, n]])));
  }

  /** Everyone comes back and heartbeats until the group is stable. */
  settle(): void {
    for (const inst of this.awayInstances) this.newClient(inst);
    this.awayInstances = [];
    for (const c of this.clients) {
      c.paused = false;
      c.slow = false;
    }
    for (let round = 0; round < 60; round++) {
      for (const c of this.live()) this.heartbeat(c, false);
      this.checkInvariants();
      const d = this.h.c.describeGroups([G])[0];
      if (d!.state === "stable" && this.live().every((c) => this.isLiveMember(c)) && d!.members.length === this.live().length) return;
      this.h.advance(1_000);
      this.h.tick();
    }
    throw new Error(`not stable: ${JSON.stringify(this.h.c.describeGroups([G])[0])}`);
  }

  checkSettled(): void {
    const d = this.h.c.describeGroups([G])[0];
    const subscribed = new Set(d!.members.flatMap((m) => m.topics));
    const expected: string[] = [];
    for (const t of [...subscribed].sort()) for (let p = 0; p < (this.h.topics.get(t) ?? 0); p++) expected.push(`${t}:${p}`);
    const held = this.live().flatMap((c) => [...keysOf(c.held)]);
    expect(held.sort()).toEqual(expected.sort());
    for (const c of this.live()) {
      const m = d!.members.find((x) => x.memberId === c.memberId);
      expect([...keysOf(m?.assignment ?? [])].sort()).toEqual([...keysOf(c.held)].sort());
      expect([...keysOf(m?.targetAssignment ?? [])].sort()).toEqual([...keysOf(c.held)].sort());
    }
  }
}

function run(seed: number, steps: number): void {
  const sim = new Sim(seed);
  try {
    for (sim.step = 0; sim.step < steps; sim.step++) {
      sim.action();
      sim.checkInvariants();
      if (sim.step % 25 === 0) expect(sim.h.replayed().toJSON()).toEqual(sim.h.c.toJSON());
    }
    sim.settle();
    sim.checkSettled();
    expect(sim.h.replayed().toJSON()).toEqual(sim.h.c.toJSON());
  } catch (e) {
    throw new Error(`SEED=${seed} step ${sim.step}: ${(e as Error).message}`, { cause: e });
  }
}

describe("coordinator: random sequences", () => {
  const fixed = Array.from({ length: 12 }, (_, i) => i + 1);
  const extra = seedFromEnv();
  const seeds = process.env["SEED"] !== undefined ? [extra] : [...fixed, extra];
  console.log(`coordinator random sequences: seeds ${seeds.join(", ")} (rerun one with SEED=n)`);
  for (const seed of seeds) {
    it(`keeps every partition with at most one owner (seed ${seed})`, () => run(seed, 800));
  }
  it("reached every path it means to test", () => {
    console.log(
      `coordinator random sequences: ${[...totals]
        .sort()
        .map(([k, v]) => `${k} ${v}`)
        .join(", ")}`,
    );
    if (process.env["SEED"] !== undefined) return;
    for (const event of [
      "revocation",
      "unreleased",
      "owned omitted",
      "static comeback",
      "lost response",
      "timeout",
      "commit accepted",
      "commit STALE_MEMBER_EPOCH",
      "commit UNKNOWN_MEMBER_ID",
      "heartbeat FENCED_MEMBER_EPOCH",
      "heartbeat UNKNOWN_MEMBER_ID",
    ]) {
      expect(totals.get(event) ?? 0, event).toBeGreaterThan(0);
    }
  });
});
