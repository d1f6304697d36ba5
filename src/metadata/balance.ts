/**
 * Balancing and decommission plans (issue 21, item 2): which partitions to move where so that
 * replicas and preferred leaders spread evenly over the brokers (and a partition's replicas over
 * racks), or so that a broker holds nothing any more. Pure: it takes the brokers and the
 * partitions' replica lists and returns KIP-455 reassignments (the full new replica list of each
 * partition that changes), carried out by AlterPartitionReassignments.
 *
 * The plan moves as little as it can:
 * 1. every replica on a broker being drained goes to the least-loaded other broker not already in
 *    the partition, one in a rack the partition has no replica in when there is one;
 * 2. while some broker holds two replicas more than another, one replica moves from the most to
 *    the least loaded broker (a partition where that keeps or improves its rack spread);
 * 3. while some broker is the preferred (first) replica of two partitions more than another, a
 *    partition holding both swaps which of them comes first — only the order changes, so that
 *    move completes at once and the periodic preferred-leader election moves the leadership.
 * In steps 2 and 3 the partition moved is one of the topic with the most replicas (preferred
 * leaders) on the giving broker less those on the receiving one: each topic spreads over the
 * brokers too, so a grown cluster takes a share of every topic's data and load, not only of the
 * topic that happens to come first (`__consumer_offsets`, 50 small partitions, could otherwise
 * absorb every move of a 3 -> 5 growth and leave the data topics where they were).
 */
import { rillError } from "../base/errors.ts";

/** A broker that may hold replicas. */
export interface BalanceBroker {
  readonly id: number;
  /** "" for none. */
  readonly rack: string;
}

/** A partition and its replicas, the first being its preferred leader. */
export interface BalancePartition {
  readonly topic: string;
  readonly partition: number;
  readonly replicas: readonly number[];
}

/** How evenly replicas and preferred leaders are spread over the brokers that may hold them. */
export interface Balance {
  /** Replicas per broker, by broker id. */
  readonly replicas: Readonly<Record<number, number>>;
  /** Partitions whose preferred (first) replica each broker is. */
  readonly leaders: Readonly<Record<number, number>>;
  /** Most minus fewest replicas over those brokers (0 or 1: balanced). */
  readonly replicaSpread: number;
  readonly leaderSpread: number;
  /** Partitions with two replicas in one rack although the brokers span enough racks for all. */
  readonly rackViolations: number;
  /** Replicas on brokers being drained. */
  readonly onDrained: number;
}

/** A plan: the moves, and the balance before and after them. */
export interface BalancePlan {
  readonly moves: BalancePartition[];
  readonly before: Balance;
  readonly after: Balance;
}

/**
 * The plan for `partitions` over `brokers` (those that may hold replicas: registered, unfenced,
 * with the broker role), draining `drain` (ids among them); with `drainOnly`, only step 1 (a
 * decommission moves nothing that is not on the drained brokers). Throws INVALID_REPLICA_ASSIGNMENT
 * naming the partition when a drained broker's replica has nowhere to go (fewer brokers left
 * than the partition's replication factor), and INVALID_REQUEST for a broker to drain that is
 * not among `brokers`; nothing is planned then.
 */
export function planBalance(
  brokers: readonly BalanceBroker[],
  partitions: readonly BalancePartition[],
  drain: readonly number[] = [],
  options: { readonly drainOnly?: boolean } = {},
): BalancePlan {
  const known = new Set(brokers.map((b) => b.id));
  for (const d of drain)
    if (!known.has(d)) throw rillError("INVALID_REQUEST", `broker ${d} is not a registered, unfenced broker: nothing to drain from it`);
  const drained = new Set(drain);
  const pool = brokers.filter((b) => !drained.has(b.id)).sort((a, b) => a.id - b.id);
  const rackOf = new Map(brokers.map((b) => [b.id, b.rack]));
  const racks = new Set(pool.map((b) => b.rack)).size;
  const current = partitions.map((p) => ({ ...p, replicas: [...p.replicas] }));
  const before = balanceOf(pool, drained, rackOf, racks, current);
  const load = new Map(pool.map((b) => [b.id, 0]));
  for (const p of current) for (const r of p.replicas) if (load.has(r)) load.set(r, load.get(r)! + 1);
  const rackSpread = (replicas: readonly number[]): number => new Set(replicas.map((r) => rackOf.get(r) ?? "")).size;

  // 1. Drain.
  for (const p of current) {
    p.replicas.forEach((r, i) => {
      if (!drained.has(r)) return;
      const others = p.replicas.filter((x) => x !== r);
      const candidates = pool.filter((b) => !p.replicas.includes(b.id));
      if (candidates.length === 0)
        throw rillError(
          "INVALID_REPLICA_ASSIGNMENT",
          `${p.topic}-${p.partition} has ${p.replicas.length} replicas (${p.replicas.join(",")}) and only ${pool.length} broker(s) would remain (${pool.map((b) => b.id).join(",") || "none"}): broker ${r} cannot be drained`,
        );
      const usedRacks = new Set(others.map((x) => rackOf.get(x) ?? ""));
      const best = leastLoaded(candidates, load, (b) => !usedRacks.has(b.rack));
      p.replicas[i] = best.id;
      load.set(best.id, load.get(best.id)! + 1);
    });
  }

  // Replicas and preferred leaders of each topic per broker, for the choice of the partition to move.
  const perTopic = (first: boolean): Map<string, Map<number, number>> => {
    const m = new Map<string, Map<number, number>>();
    for (const p of current)
      for (const r of first ? p.replicas.slice(0, 1) : p.replicas) {
        let t = m.get(p.topic);
        if (!t) m.set(p.topic, (t = new Map()));
        t.set(r, (t.get(r) ?? 0) + 1);
      }
    return m;
  };
  const bump = (m: Map<string, Map<number, number>>, topic: string, broker: number, by: number): void => {
    let t = m.get(topic);
    if (!t) m.set(topic, (t = new Map()));
    t.set(broker, (t.get(broker) ?? 0) + by);
  };
  /** Of the partitions `ok`, one of the topic most lopsided from `hi` to `lo` (ties: the first). */
  const mostLopsided = (
    counts: Map<string, Map<number, number>>,
    hi: number,
    lo: number,
    ok: (p: (typeof current)[number]) => boolean,
  ): (typeof current)[number] | undefined => {
    let best: (typeof current)[number] | undefined;
    let bestScore = Number.NEGATIVE_INFINITY;
    for (const p of current) {
      if (!ok(p)) continue;
      const t = counts.get(p.topic);
      const score = (t?.get(hi) ?? 0) - (t?.get(lo) ?? 0);
      if (score > bestScore) {
        best = p;
        bestScore = score;
      }
    }
    return best;
  };

  // 2. Replicas: from the most to the least loaded broker, one at a time.
  const topicReplicas = perTopic(false);
  for (let guard = 0; guard < 100_000 && pool.length > 1 && options.drainOnly !== true; guard++) {
    const byLoad = [...pool].sort((a, b) => load.get(b.id)! - load.get(a.id)! || a.id - b.id);
    let moved = false;
    for (const hi of byLoad) {
      for (const lo of [...byLoad].reverse()) {
        if (load.get(hi.id)! - load.get(lo.id)! < 2) break;
        // A partition on `hi` without `lo` whose rack spread the move does not reduce.
        const p = mostLopsided(topicReplicas, hi.id, lo.id, (x) => {
          if (!x.replicas.includes(hi.id) || x.replicas.includes(lo.id)) return false;
          return rackSpread(x.replicas.map((r) => (r === hi.id ? lo.id : r))) >= rackSpread(x.replicas);
        });
        if (!p) continue;
        p.replicas[p.replicas.indexOf(hi.id)] = lo.id;
        bump(topicReplicas, p.topic, hi.id, -1);
        bump(topicReplicas, p.topic, lo.id, 1);
        load.set(hi.id, load.get(hi.id)! - 1);
        load.set(lo.id, load.get(lo.id)! + 1);
        moved = true;
        break;
      }
      if (moved) break;
    }
    if (!moved) break;
  }

  // 3. Preferred leaders: reorder within a partition's replicas.
  const topicLeaders = perTopic(true);
  const leads = new Map(pool.map((b) => [b.id, 0]));
  for (const p of current) if (leads.has(p.replicas[0]!)) leads.set(p.replicas[0]!, leads.get(p.replicas[0]!)! + 1);
  for (let guard = 0; guard < 100_000 && options.drainOnly !== true; guard++) {
    const byLeads = [...pool].sort((a, b) => leads.get(b.id)! - leads.get(a.id)! || a.id - b.id);
    let moved = false;
    for (const hi of byLeads) {
      for (const lo of [...byLeads].reverse()) {
        if (leads.get(hi.id)! - leads.get(lo.id)! < 2) break;
        const p = mostLopsided(topicLeaders, hi.id, lo.id, (x) => x.replicas[0] === hi.id && x.replicas.includes(lo.id));
        if (!p) continue;
        const i = p.replicas.indexOf(lo.id);
        p.replicas[i] = hi.id;
        p.replicas[0] = lo.id;
        bump(topicLeaders, p.topic, hi.id, -1);
        bump(topicLeaders, p.topic, lo.id, 1);
        leads.set(hi.id, leads.get(hi.id)! - 1);
        leads.set(lo.id, leads.get(lo.id)! + 1);
        moved = true;
        break;
      }
      if (moved) break;
    }
    if (!moved) break;
  }

  const moves = current.filter((p, i) => !sameList(p.replicas, partitions[i]!.replicas));
  return { moves, before, after: balanceOf(pool, drained, rackOf, racks, current) };
}

/** The broker of `candidates` with the fewest replicas, preferring those `better` (ties: lowest id). */
function leastLoaded(
  candidates: readonly BalanceBroker[],
  load: ReadonlyMap<number, number>,
  better: (b: BalanceBroker) => boolean,
): BalanceBroker {
  const sorted = [...candidates].sort((a, b) => Number(better(b)) - Number(better(a)) || load.get(a.id)! - load.get(b.id)! || a.id - b.id);
  return sorted[0]!;
}

function balanceOf(
  pool: readonly BalanceBroker[],
  drained: ReadonlySet<number>,
  rackOf: ReadonlyMap<number, string>,
  racks: number,
  partitions: readonly BalancePartition[],
): Balance {
  const replicas: Record<number, number> = {};
  const leaders: Record<number, number> = {};
  for (const b of pool) {
    replicas[b.id] = 0;
    leaders[b.id] = 0;
  }
  let rackViolations = 0;
  let onDrained = 0;
  for (const p of partitions) {
    for (const r of p.replicas) {
      if (r in replicas) replicas[r]!++;
      if (drained.has(r)) onDrained++;
    }
    const first = p.replicas[0];
    if (first !== undefined && first in leaders) leaders[first]!++;
    const spread = new Set(p.replicas.map((r) => rackOf.get(r) ?? "")).size;
    if (spread < Math.min(p.replicas.length, racks)) rackViolations++;
  }
  const spread = (m: Record<number, number>): number => {
    const v = Object.values(m);
    return v.length === 0 ? 0 : Math.max(...v) - Math.min(...v);
  };
  return { replicas, leaders, replicaSpread: spread(replicas), leaderSpread: spread(leaders), rackViolations, onDrained };
}

function sameList(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
