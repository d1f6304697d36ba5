/**
 * Server-side assignors: pure functions from the members (with their subscriptions), the
 * partition counts of the subscribed topics and the current target assignment to a new target.
 * Deterministic: the same input always gives the same output (members are taken in memberId
 * order, partitions in topic then partition order), so a coordinator that replays the log and
 * one that computed live agree.
 *
 * - `uniform` (the default, Kafka's UniformAssignor in spirit): sticky and balanced. Every
 *   member keeps the partitions it already had as far as balance allows; partition counts per
 *   member differ by at most one when all members subscribe to the same topics, and no
 *   partition can move to a member with two fewer partitions that also subscribes to its topic
 *   when they do not.
 * - `range` (Kafka's range, per topic): members subscribed to a topic, sorted by instance id
 *   (else member id), get contiguous ranges of its partitions, the first `n % m` one more. Not
 *   sticky; co-partitioned topics land on the same members.
 */
import { assert } from "../base/assert.ts";
import type { TopicPartitions } from "./partitions.ts";
import { fromKeys, parseTpKey, tpKey } from "./partitions.ts";

/** Names of the assignors a group can use. */
export type AssignorName = "uniform" | "range";

/** Every assignor name. */
export const ASSIGNOR_NAMES: readonly AssignorName[] = ["uniform", "range"];

/** The assignor a group uses unless its first member asks for another. */
export const DEFAULT_ASSIGNOR: AssignorName = "uniform";

/** One member as an assignor sees it. */
export interface AssignorMember {
  readonly memberId: string;
  readonly instanceId: string | null;
  /** Subscribed topics (topics that do not exist are ignored). */
  readonly topics: readonly string[];
}

/** What an assignor computes from. */
export interface AssignorInput {
  readonly members: readonly AssignorMember[];
  /** Partition count of every subscribed topic that exists. */
  readonly partitionCounts: ReadonlyMap<string, number>;
  /** The current target, by member id (absent: nothing). */
  readonly current: ReadonlyMap<string, readonly TopicPartitions[]>;
}

/** A new target assignment: every member of the input, each with a canonical list (maybe empty). */
export type TargetAssignment = Map<string, TopicPartitions[]>;

/** An assignor. */
export type Assignor = (input: AssignorInput) => TargetAssignment;

/** The assignor of that name. */
export function assignorByName(name: AssignorName): Assignor {
  return name === "range" ? rangeAssignor : uniformAssignor;
}

/** Kafka's range assignor, per topic. */
export function rangeAssignor(input: AssignorInput): TargetAssignment {
  const out = new Map<string, Set<string>>(input.members.map((m) => [m.memberId, new Set<string>()]));
  const rangeKey = (m: AssignorMember): string => m.instanceId ?? m.memberId;
  for (const topic of [...input.partitionCounts.keys()].sort()) {
    const n = input.partitionCounts.get(topic) ?? 0;
    const subs = input.members
      .filter((m) => m.topics.includes(topic))
      .sort((a, b) => cmp(rangeKey(a), rangeKey(b)) || cmp(a.memberId, b.memberId));
    if (subs.length === 0 || n === 0) continue;
    const base = Math.floor(n / subs.length);
    const extra = n % subs.length;
    let next = 0;
    subs.forEach((m, i) => {
      const take = base + (i < extra ? 1 : 0);
      const set = out.get(m.memberId);
      assert(set);
      for (let p = next; p < next + take; p++) set.add(tpKey(topic, p));
      next += take;
    });
  }
  return finish(out);
}

/** The sticky, balanced assignor (the default). */
export function uniformAssignor(input: AssignorInput): TargetAssignment {
  const members = [...input.members].sort((a, b) => cmp(a.memberId, b.memberId));
  const subs = new Map(members.map((m) => [m.memberId, new Set(m.topics.filter((t) => (input.partitionCounts.get(t) ?? 0) > 0))]));
  const all = allPartitions(input.partitionCounts, subs);
  const kept = keepCurrent(members, subs, input);
  const homogeneous = members.every((m) => sameSet(subs.get(m.memberId), subs.get(members[0]!.memberId)));
  if (homogeneous) assignHomogeneous(members, all, kept);
  else assignHeterogeneous(members, subs, all, kept);
  return finish(kept);
}

/** Every partition of every topic someone subscribes to, in topic then partition order. */
function allPartitions(counts: ReadonlyMap<string, number>, subs: ReadonlyMap<string, ReadonlySet<string>>): string[] {
  const topics = new Set<string>();
  for (const s of subs.values()) for (const t of s) topics.add(t);
  const out: string[] = [];
  for (const t of [...topics].sort()) for (let p = 0; p < (counts.get(t) ?? 0); p++) out.push(tpKey(t, p));
  return out;
}

/** Each member's current partitions that are still valid (subscribed, existing, not claimed by an earlier member). */
function keepCurrent(
  members: readonly AssignorMember[],
  subs: ReadonlyMap<string, ReadonlySet<string>>,
  input: AssignorInput,
): Map<string, Set<string>> {
  const claimed = new Set<string>();
  const kept = new Map<string, Set<string>>();
  for (const m of members) {
    const mine = new Set<string>();
    const sub = subs.get(m.memberId);
    for (const tp of input.current.get(m.memberId) ?? []) {
      if (!sub?.has(tp.topic)) continue;
      const n = input.partitionCounts.get(tp.topic) ?? 0;
      for (const p of tp.partitions) {
        const k = tpKey(tp.topic, p);
        if (p < n && !claimed.has(k)) {
          claimed.add(k);
          mine.add(k);
        }
      }
    }
    kept.set(m.memberId, mine);
  }
  return kept;
}

/**
 * Everyone subscribes to the same topics: quotas of floor(N/M), the `N % M` members that hold
 * the most already get one more; members over quota give back their highest partitions; the
 * freed and new partitions go round-robin (in member id order) to members under quota.
 */
function assignHomogeneous(members: readonly AssignorMember[], all: readonly string[], kept: Map<string, Set<string>>): void {
  if (members.length === 0) return;
  const base = Math.floor(all.length / members.length);
  const extra = all.length % members.length;
  const byHolding = [...members].sort(
    (a, b) => (kept.get(b.memberId)?.size ?? 0) - (kept.get(a.memberId)?.size ?? 0) || cmp(a.memberId, b.memberId),
  );
  const quota = new Map(byHolding.map((m, i) => [m.memberId, base + (i < extra ? 1 : 0)]));
  for (const m of members) {
    const mine = kept.get(m.memberId);
    const q = quota.get(m.memberId) ?? 0;
    assert(mine);
    if (mine.size > q) {
      const sorted = sortKeys([...mine]);
      for (const k of sorted.slice(q)) mine.delete(k);
    }
  }
  const owned = new Set<string>();
  for (const s of kept.values()) for (const k of s) owned.add(k);
  let cursor = 0;
  for (const k of all) {
    if (owned.has(k)) continue;
    for (let tries = 0; tries < members.length; tries++) {
      const m = members[cursor]!;
      cursor = (cursor + 1) % members.length;
      const mine = kept.get(m.memberId);
      assert(mine);
      if (mine.size < (quota.get(m.memberId) ?? 0)) {
        mine.add(k);
        break;
      }
    }
  }
}

/**
 * Members subscribe to different topics: free partitions go, topics with the fewest eligible
 * members first, to the least loaded eligible member; then single partitions move from a member
 * to an eligible one with at least two fewer until none can. Each move lowers the sum of
 * squared loads, so this ends; it is quadratic in members, which the member limit bounds.
 */
function assignHeterogeneous(
  members: readonly AssignorMember[],
  subs: ReadonlyMap<string, ReadonlySet<string>>,
  all: readonly string[],
  kept: Map<string, Set<string>>,
): void {
  const owned = new Set<string>();
  for (const s of kept.values()) for (const k of s) owned.add(k);
  const eligible = (topic: string): AssignorMember[] => members.filter((m) => subs.get(m.memberId)?.has(topic));
  const load = (m: AssignorMember): number => kept.get(m.memberId)?.size ?? 0;
  const free = all.filter((k) => !owned.has(k));
  const eligibleCount = new Map<string, number>();
  for (const k of free) {
    const t = parseTpKey(k).topic;
    if (!eligibleCount.has(t)) eligibleCount.set(t, eligible(t).length);
  }
  free.sort((a, b) => {
    const ta = parseTpKey(a).topic;
    const tb = parseTpKey(b).topic;
    return (eligibleCount.get(ta) ?? 0) - (eligibleCount.get(tb) ?? 0) || cmp(ta, tb) || parseTpKey(a).partition - parseTpKey(b).partition;
  });
  for (const k of free) {
    const cands = eligible(parseTpKey(k).topic);
    if (cands.length === 0) continue;
    let best = cands[0]!;
    for (const m of cands) if (load(m) < load(best)) best = m;
    kept.get(best.memberId)?.add(k);
  }
  for (;;) {
    const sorted = [...members].sort((a, b) => load(b) - load(a) || cmp(a.memberId, b.memberId));
    if (!moveOne(sorted, subs, kept, load)) return;
  }
}

function moveOne(
  sorted: readonly AssignorMember[],
  subs: ReadonlyMap<string, ReadonlySet<string>>,
  kept: Map<string, Set<string>>,
  load: (m: AssignorMember) => number,
): boolean {
  for (const from of sorted) {
    for (let j = sorted.length - 1; j >= 0; j--) {
      const to = sorted[j]!;
      if (load(from) - load(to) <= 1) break;
      const toSubs = subs.get(to.memberId);
      const mine = kept.get(from.memberId);
      assert(mine && toSubs);
      const movable = sortKeys([...mine].filter((k) => toSubs.has(parseTpKey(k).topic)));
      const k = movable[movable.length - 1];
      if (k !== undefined) {
        mine.delete(k);
        kept.get(to.memberId)?.add(k);
        return true;
      }
    }
  }
  return false;
}

function finish(out: Map<string, Set<string>>): TargetAssignment {
  return new Map([...out].map(([id, keys]) => [id, fromKeys(keys)]));
}

function sortKeys(keys: string[]): string[] {
  return keys.sort((a, b) => {
    const x = parseTpKey(a);
    const y = parseTpKey(b);
    return cmp(x.topic, y.topic) || x.partition - y.partition;
  });
}

function sameSet(a: ReadonlySet<string> | undefined, b: ReadonlySet<string> | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
