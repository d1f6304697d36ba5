/**
 * The Raft log as the core sees it: durable entries in storage followed by the unstable tail,
 * with the commit and applied indexes. Invariant: applied <= committed <= lastIndex(), and
 * committed entries are never truncated.
 */
import { assert } from "../base/assert.ts";
import { type Configuration, decodeVoterSet, snapshotVoters, type VoterInfo } from "./config.ts";
import { limitSize, type RaftStorage } from "./storage.ts";
import type { Entry, Snapshot } from "./types.ts";
import { Unstable } from "./unstable.ts";

/** An entry position: index and term (term 0 when unknown or before the log). */
export interface LogPosition {
  readonly index: number;
  readonly term: number;
}

/** Storage plus unstable tail, with commit and applied indexes. */
export class RaftLog {
  readonly storage: RaftStorage;
  readonly unstable: Unstable;
  committed: number;
  applied: number;
  /**
   * The configurations of the log, oldest first: the snapshot's, then one per config entry.
   * The last one is in effect (it may be uncommitted); a truncation drops those it removes.
   */
  private configs: Configuration[];

  constructor(storage: RaftStorage, committed: number, applied: number) {
    this.storage = storage;
    this.unstable = new Unstable(storage.lastIndex() + 1);
    const first = storage.firstIndex();
    assert(committed >= first - 1 && committed <= storage.lastIndex(), `commit ${committed} outside the stored log`);
    assert(applied >= first - 1 && applied <= committed, `applied ${applied} outside [snapshot, commit]`);
    this.committed = committed;
    this.applied = applied;
    const snap = storage.snapshot();
    this.configs = [{ index: snap.meta.index, voters: snapshotVoters(snap) }];
    let lo = Math.max(first, snap.meta.index + 1);
    const hi = storage.lastIndex() + 1;
    while (lo < hi) {
      const ents = storage.entries(lo, hi, 1 << 20);
      this.trackConfigs(ents);
      lo = ents[ents.length - 1]!.index + 1;
    }
  }

  /** The configuration in effect: the last one in the log, committed or not. */
  config(): Configuration {
    return this.configs[this.configs.length - 1]!;
  }

  /** The voters in effect at `index` (at or after the snapshot). */
  configAt(index: number): readonly VoterInfo[] {
    let c = this.configs[0]!;
    for (const x of this.configs) if (x.index <= index) c = x;
    return c.voters;
  }

  private trackConfigs(ents: readonly Entry[]): void {
    if (ents.length === 0) return;
    const from = ents[0]!.index;
    while (this.configs.length > 1 && this.config().index >= from) this.configs.pop();
    for (const e of ents) if (e.kind === "config") this.configs.push({ index: e.index, voters: decodeVoterSet(e.data) });
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /** The term of entry `i`, for firstIndex() - 1 <= i <= lastIndex(); undefined otherwise. */
  term(i: number): number | undefined {
    if (i < this.firstIndex() - 1 || i > this.lastIndex()) return undefined;
    return this.unstable.maybeTerm(i) ?? this.storage.term(i);
  }

  lastTerm(): number {
    const t = this.term(this.lastIndex());
    assert(t !== undefined, "the last entry has no term");
    return t;
  }

  matchTerm(i: number, t: number): boolean {
    return this.term(i) === t;
  }

  /** Whether a log ending at (lastIndex, lastTerm) is at least as up to date as this one. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ours = this.lastTerm();
    return lastTerm > ours || (lastTerm === ours && lastIndex >= this.lastIndex());
  }

  /**
   * Appends a leader's entries after (prevIndex, prevTerm) if that entry matches, truncating
   * the first conflicting suffix; advances commit. Returns the last index now known to match
   * the leader, or undefined if prevIndex does not match.
   */
  maybeAppend(prevIndex: number, prevTerm: number, commit: number, ents: readonly Entry[]): number | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const lastNew = prevIndex + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      assert(ci > this.committed, `entry ${ci} conflicts with committed entry (commit ${this.committed})`);
      this.append(ents.slice(ci - prevIndex - 1));
    }
    this.commitTo(Math.min(commit, lastNew));
    return lastNew;
  }

  /** Appends entries (the first at most lastIndex() + 1 and after the commit index). */
  append(ents: readonly Entry[]): void {
    if (ents.length === 0) return;
    const after = ents[0]!.index - 1;
    assert(after >= this.committed, `append after ${after} would truncate committed ${this.committed}`);
    assert(after <= this.lastIndex(), `append after ${after} leaves a gap after ${this.lastIndex()}`);
    this.unstable.truncateAndAppend(ents);
    this.trackConfigs(ents);
  }

  /** The index of the first entry whose term differs from ours (or that we lack); 0 if none. */
  findConflict(ents: readonly Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * The largest position at or below `index` whose term is <= `term` (term 0 if the search
   * reaches the compacted prefix). Used to skip a conflicting term in one round trip.
   */
  findConflictByTerm(index: number, term: number): LogPosition {
    assert(index <= this.lastIndex(), `findConflictByTerm(${index}) past the last index`);
    for (let i = index; i > 0; i--) {
      const t = this.term(i);
      if (t === undefined) return { index: i, term: 0 };
      if (t <= term) return { index: i, term: t };
    }
    return { index: 0, term: 0 };
  }

  /** Entries from `lo` on, cut at `maxBytes`; undefined if `lo` was compacted away. */
  entriesFrom(lo: number, maxBytes: number): Entry[] | undefined {
    if (lo < this.firstIndex()) return undefined;
    const last = this.lastIndex();
    if (lo > last) return [];
    return this.slice(lo, last + 1, maxBytes);
  }

  /** Entries [lo, hi), all present, cut at `maxBytes` (but at least one). */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    assert(lo >= this.firstIndex() && hi <= this.lastIndex() + 1, `slice [${lo}, ${hi}) outside the log`);
    if (lo >= hi) return [];
    const off = this.unstable.offset;
    let out: Entry[] = [];
    if (lo < off) {
      out = this.storage.entries(lo, Math.min(hi, off), maxBytes);
      if (out.length < Math.min(hi, off) - lo) return out;
    }
    if (hi > off) {
      const tail = this.unstable.slice(Math.max(lo, off), hi);
      out = out.length === 0 ? tail : out.concat(tail);
    }
    return limitSize(out, maxBytes);
  }

  /** Raises the commit index to `i` (never lowers it). */
  commitTo(i: number): void {
    if (i <= this.committed) return;
    assert(i <= this.lastIndex(), `commit ${i} is past the last index ${this.lastIndex()}: log lost or corrupt`);
    this.committed = i;
  }

  /** Commits `index` if its entry is from `term` (Raft commits only current-term entries by counting). */
  maybeCommit(index: number, term: number): boolean {
    if (index > this.committed && this.term(index) === term) {
      this.commitTo(index);
      return true;
    }
    return false;
  }

  /** Replaces the log with a snapshot from the leader. */
  restore(s: Snapshot): void {
    assert(s.meta.index > this.committed, "restoring a snapshot at or below the commit index");
    this.committed = s.meta.index;
    this.unstable.restore(s);
    this.configs = [{ index: s.meta.index, voters: snapshotVoters(s) }];
  }

  /** The latest snapshot: a pending one from the leader, else the stored one. */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  /** The highest index that is durable here (entries below the unstable tail). */
  persistedLastIndex(): number {
    if (this.unstable.snapshot !== null) return this.applied;
    return this.unstable.offset - 1;
  }

  /** Whether committed, durable entries wait to be applied. */
  hasNextCommittedEntries(): boolean {
    if (this.unstable.snapshot !== null) return false;
    return this.applied < Math.min(this.committed, this.unstable.offset - 1);
  }

  /** Committed, durable entries after `applied`, cut at `maxBytes`. */
  nextCommittedEntries(maxBytes: number): Entry[] {
    if (!this.hasNextCommittedEntries()) return [];
    const hi = Math.min(this.committed, this.unstable.offset - 1) + 1;
    return this.slice(this.applied + 1, hi, maxBytes);
  }

  appliedTo(i: number): void {
    assert(i >= this.applied && i <= this.committed, `applied ${i} outside [${this.applied}, ${this.committed}]`);
    this.applied = i;
  }
}
