/**
 * A test harness for the group coordinator: a fake clock (a number), topics in a Map, and a log.
 * Every handler result goes through the codec, is appended to the log and then replayed — the
 * caller's contract — so tests see exactly what a broker would.
 */
import { expect } from "vitest";
import { Errors, RillError } from "../../../src/base/errors.ts";
import { SeededRandom } from "../../../src/base/random.ts";
import type {
  CoordinatorOptions,
  CoordinatorResult,
  GroupDescription,
  HeartbeatRequest,
  HeartbeatResponse,
  TopicsView,
} from "../../../src/coordinator/coordinator.ts";
import { GroupCoordinator } from "../../../src/coordinator/coordinator.ts";
import type { TopicPartitions } from "../../../src/coordinator/partitions.ts";
import { keysOf } from "../../../src/coordinator/partitions.ts";
import type { GroupRecord } from "../../../src/coordinator/records.ts";
import { decodeGroupRecord, encodeGroupRecord, fromKeyValue, toKeyValue } from "../../../src/coordinator/records.ts";

/** Test defaults: 10 s sessions, 1 s heartbeats. */
export const SESSION_MS = 10_000;

/** The coordinator, its topics, its log and its clock. */
export class Harness {
  readonly topics = new Map<string, number>();
  readonly view: TopicsView = { partitionCount: (t) => this.topics.get(t) };
  readonly log: GroupRecord[] = [];
  readonly c: GroupCoordinator;
  now = 1_700_000_000_000;
  private flip = false;

  constructor(opts: Partial<CoordinatorOptions> = {}, seed = 1) {
    this.c = new GroupCoordinator({
      random: new SeededRandom(seed),
      topics: this.view,
      sessionTimeoutMs: SESSION_MS,
      minSessionTimeoutMs: 1_000,
      heartbeatIntervalMs: 1_000,
      ...opts,
    });
  }

  /** Appends a result's records to the log (through one of the two codecs) and replays them. */
  write<T>(r: CoordinatorResult<T>): T {
    this.append(r.records);
    r.effects?.();
    return r.response;
  }

  /** Appends records and replays them. */
  append(records: readonly GroupRecord[]): void {
    for (const rec of records) {
      this.flip = !this.flip;
      let back: GroupRecord;
      if (this.flip) back = decodeGroupRecord(encodeGroupRecord(rec));
      else {
        const kv = toKeyValue(rec);
        back = fromKeyValue(kv.key, kv.value);
      }
      expect(back).toEqual(rec);
      this.log.push(back);
      this.c.replay(back);
    }
  }

  heartbeat(req: HeartbeatRequest): HeartbeatResponse {
    return this.write(this.c.heartbeat(req, this.now));
  }

  tick(): GroupRecord[] {
    const records = this.c.tick(this.now);
    this.append(records);
    return records;
  }

  advance(ms: number): void {
    this.now += ms;
  }

  describe(groupId: string): GroupDescription {
    const [d] = this.c.describeGroups([groupId]);
    expect(d!.error).toBeNull();
    return d!;
  }

  /** A fresh coordinator fed the whole log, replay only. */
  replayed(records: readonly GroupRecord[] = this.log): GroupCoordinator {
    const c = new GroupCoordinator({
      random: new SeededRandom(999),
      topics: this.view,
      sessionTimeoutMs: SESSION_MS,
      minSessionTimeoutMs: 1_000,
      heartbeatIntervalMs: 1_000,
    });
    for (const r of records) c.replay(r);
    return c;
  }
}

/** Options of a TestMember. */
export interface MemberOptions {
  instanceId?: string;
  assignor?: "uniform" | "range";
  sessionTimeoutMs?: number;
  rebalanceTimeoutMs?: number;
  memberId?: string;
}

/** A well-behaved client: owns what it was last told, acks revocations at its next heartbeat. */
export class TestMember {
  memberId = "";
  epoch = 0;
  owned: TopicPartitions[] = [];
  constructor(
    readonly h: Harness,
    readonly groupId: string,
    public topics: string[],
    readonly opts: MemberOptions = {},
  ) {
    this.memberId = opts.memberId ?? "";
  }

  join(): HeartbeatResponse {
    const r = this.h.heartbeat({
      groupId: this.groupId,
      memberId: this.memberId,
      memberEpoch: 0,
      subscribedTopics: this.topics,
      instanceId: this.opts.instanceId,
      assignor: this.opts.assignor,
      sessionTimeoutMs: this.opts.sessionTimeoutMs,
      rebalanceTimeoutMs: this.opts.rebalanceTimeoutMs,
      clientId: "test",
      clientHost: "127.0.0.1",
    });
    return this.take(r);
  }

  heartbeat(extra: Partial<HeartbeatRequest> = {}): HeartbeatResponse {
    const r = this.h.heartbeat({
      groupId: this.groupId,
      memberId: this.memberId,
      memberEpoch: this.epoch,
      ownedPartitions: this.owned,
      instanceId: this.opts.instanceId,
      ...extra,
    });
    return this.take(r);
  }

  leave(): HeartbeatResponse {
    return this.h.heartbeat({ groupId: this.groupId, memberId: this.memberId, memberEpoch: -1 });
  }

  staticLeave(): HeartbeatResponse {
    return this.h.heartbeat({ groupId: this.groupId, memberId: this.memberId, memberEpoch: -2, instanceId: this.opts.instanceId });
  }

  take(r: HeartbeatResponse): HeartbeatResponse {
    this.memberId = r.memberId;
    this.epoch = r.memberEpoch;
    if (r.assignment !== null) this.owned = r.assignment;
    return r;
  }

  count(): number {
    return keysOf(this.owned).size;
  }
}

/** Heartbeats every member until the group is stable (at most `rounds` rounds). */
export function stabilize(h: Harness, groupId: string, members: readonly TestMember[], rounds = 10): void {
  for (let i = 0; i < rounds; i++) {
    for (const m of members) m.heartbeat();
    if (h.describe(groupId).state === "stable") return;
  }
  throw new Error(`group ${groupId} not stable after ${rounds} rounds: ${JSON.stringify(h.describe(groupId))}`);
}

/** The catalog name of what `fn` throws (fails when it throws something else or nothing). */
export function errorName(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof RillError) return nameOf(e) ?? e.kind.name;
    throw e;
  }
  throw new Error("expected a RillError");
}

/** The catalog key of an error (e.g. INVALID_TOPIC, whose Kafka name is INVALID_TOPIC_EXCEPTION). */
export function nameOf(e: RillError | null | undefined): string | undefined {
  if (e === null || e === undefined) return undefined;
  return Object.entries(Errors).find(([, k]) => k === e.kind)?.[0];
}

/** Asserts that no two members own (assigned or pending revocation) the same partition. */
export function expectDisjointOwnership(d: GroupDescription): void {
  const seen = new Map<string, string>();
  for (const m of d.members) {
    for (const k of keysOf(m.assignment)) {
      expect(seen.get(k), `${k} owned by ${seen.get(k)} and ${m.memberId}`).toBeUndefined();
      seen.set(k, m.memberId);
    }
  }
}

/** Partition keys, sorted, for readable equality. */
export function keys(tps: readonly TopicPartitions[]): string[] {
  return [...keysOf(tps)].sort();
}
