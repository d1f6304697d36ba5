/**
 * Raft safety checkers, fed by the simulator as nodes take Readies and apply entries.
 *
 * - election safety: at most one leader per term;
 * - log matching: an (index, term) pair names one entry, with one predecessor term, across all
 *   nodes and all time (so equal entries imply equal prefixes, by induction);
 * - leader completeness: a leader of term T holds every entry committed in a term before T
 *   (an index counts as committed "by term t" once a node at term t reported commit >= index);
 * - state-machine safety: every node applies the same entry, and reaches the same state, at
 *   each index; and it applies indexes in order without gaps.
 */
import { decodeVoterSet } from "../../src/raft/config.ts";
import type { Entry, NodeId } from "../../src/raft/types.ts";

/** A broken invariant: the simulation stops and reports it with the seed. */
export class Violation extends Error {
  override name = "Violation";
}

/**
 * The state-machine key of an entry: 0 for a no-op, a hash of the voter ids (with the top bit
 * set) for a configuration, else 1 + the proposal id in its data.
 */
export function entryKey(e: Entry): number {
  if (e.kind === "noop") return 0;
  if (e.kind === "config") {
    let h = 0x811c9dc5;
    for (const v of decodeVoterSet(e.data)) h = Math.imul(h ^ v.id, 0x01000193) >>> 0;
    return (h | 0x80000000) >>> 0;
  }
  const d = e.data;
  return (1 + ((d[0]! << 24) | (d[1]! << 16) | (d[2]! << 8) | d[3]!)) >>> 0;
}

/** Folds an applied entry into a state hash (FNV-style mixing; 32 bits). */
export function mixHash(hash: number, index: number, key: number): number {
  let h = Math.imul(hash ^ index, 0x01000193) >>> 0;
  h = Math.imul(h ^ key, 0x01000193) >>> 0;
  return (h ^ (h >>> 15)) >>> 0;
}

const TERM_BITS = 2 ** 20;

/** Records what nodes report and throws Violation on the first inconsistency. */
export class SafetyChecker {
  private readonly leaders = new Map<number, NodeId>();
  /** (index, term) -> entry key and predecessor term. */
  private readonly entries = new Map<number, { key: number; prevTerm: number }>();
  /** index -> key applied and state hash after it. */
  private readonly applied: Array<{ key: number; hash: number } | undefined> = [];
  /** index -> lowest term at which some node reported it committed, and its entry term. */
  private readonly committed: Array<{ byTerm: number; term: number } | undefined> = [];
  private maxCommitted = 0;
  private readonly checkedLeaders = new Set<number>();
  /** Indexes of configuration entries applied somewhere. */
  private readonly configIndexes = new Set<number>();

  /** Node `id` is leader in `term`; `termAt` reads its log. */
  leader(id: NodeId, term: number, termAt: (i: number) => number | undefined, firstIndex: number): void {
    const other = this.leaders.get(term);
    if (other !== undefined && other !== id) {
      throw new Violation(`election safety: nodes ${other} and ${id} both lead term ${term}`);
    }
    this.leaders.set(term, id);
    const key = term * 1000 + id;
    if (this.checkedLeaders.has(key)) return;
    this.checkedLeaders.add(key);
    this.leaderCompleteness(id, term, termAt, firstIndex);
  }

  private leaderCompleteness(id: NodeId, term: number, termAt: (i: number) => number | undefined, firstIndex: number): void {
    for (let i = Math.max(firstIndex, 1); i <= this.maxCommitted; i++) {
      const c = this.committed[i];
      if (c === undefined || c.byTerm >= term) continue;
      const t = termAt(i);
      if (t !== c.term) {
        throw new Violation(
          `leader completeness: leader ${id} of term ${term} has term ${String(t)} at index ${i}, ` +
            `committed with term ${c.term} by term ${c.byTerm}`,
        );
      }
    }
  }

  /** Node `id`, at `term`, reports commit index `commit`. */
  commit(id: NodeId, term: number, commit: number, termAt: (i: number) => number | undefined): void {
    for (let i = commit; i > 0; i--) {
      const c = this.committed[i];
      if (c !== undefined && c.byTerm <= term) break;
      const t = termAt(i);
      if (t === undefined) break; // compacted here; someone reported it before
      if (c !== undefined && c.term !== t) {
        throw new Violation(`commit: node ${id} has term ${t} at committed index ${i}, others term ${c.term}`);
      }
      this.committed[i] = { byTerm: term, term: t };
    }
    if (commit > this.maxCommitted) this.maxCommitted = commit;
  }

  /** Node `id` is about to persist `ents`; the entry before them has term `prevTerm` there. */
  append(id: NodeId, ents: readonly Entry[], prevTerm: number | undefined): void {
    let prev = prevTerm ?? -1;
    for (const e of ents) {
      if (e.term >= TERM_BITS) throw new Violation(`term ${e.term} too large for the checker`);
      const k = e.index * TERM_BITS + e.term;
      const key = entryKey(e);
      const seen = this.entries.get(k);
      if (seen === undefined) {
        this.entries.set(k, { key, prevTerm: prev });
      } else if (seen.key !== key || (prev !== -1 && seen.prevTerm !== -1 && seen.prevTerm !== prev)) {
        throw new Violation(
          `log matching: node ${id} holds entry ${e.index}/${e.term} key ${key} after term ${prev}, ` +
            `elsewhere key ${seen.key} after term ${seen.prevTerm}`,
        );
      }
      prev = e.term;
    }
  }

  /** Node `id` applied entry `e`, reaching state `hash`. */
  apply(id: NodeId, e: Entry, hash: number): void {
    const key = entryKey(e);
    const seen = this.applied[e.index];
    if (seen === undefined) {
      this.applied[e.index] = { key, hash };
    } else if (seen.key !== key || seen.hash !== hash) {
      throw new Violation(
        `state-machine safety: node ${id} applied key ${key} (state ${hash}) at ${e.index}, ` +
          `another node key ${seen.key} (state ${seen.hash})`,
      );
    }
  }

  /** Node `id` restored a snapshot of state `hash` at `index`. */
  restore(id: NodeId, index: number, hash: number): void {
    const seen = this.applied[index];
    if (seen !== undefined && seen.hash !== hash) {
      throw new Violation(`state-machine safety: node ${id} restored state ${hash} at ${index}, expected ${seen.hash}`);
    }
  }

  /**
   * Node `id` applied the configuration `next` after `prev`: a committed change adds or removes
   * exactly one voter (single-server changes), and never leaves the quorum empty.
   */
  configApplied(id: NodeId, index: number, prev: readonly NodeId[], next: readonly NodeId[]): void {
    this.configIndexes.add(index);
    const added = next.filter((v) => !prev.includes(v));
    const removed = prev.filter((v) => !next.includes(v));
    if (next.length === 0 || added.length + removed.length !== 1) {
      throw new Violation(
        `membership: node ${id} applied voters {${next.join(",")}} at ${index} after {${prev.join(",")}}: not a single-server change`,
      );
    }
  }

  /** The number of configuration entries applied somewhere. */
  configCount(): number {
    return this.configIndexes.size;
  }

  /** Whether some node applied `key` at `index`. */
  isApplied(index: number, key: number): boolean {
    return this.applied[index]?.key === key;
  }

  /** The number of terms that had a leader. */
  leaderTermCount(): number {
    return this.leaders.size;
  }

  /** The number of indexes applied somewhere. */
  appliedCount(): number {
    return this.applied.length === 0 ? 0 : this.applied.length - 1;
  }
}
