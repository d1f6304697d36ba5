/**
 * What the Raft core reads from stable storage, and an in-memory implementation of it.
 *
 * The core only reads through `RaftStorage`; the shell writes to its storage while handling a
 * Ready (see types.ts). `MemoryStorage` is the in-memory twin the simulator and unit tests use;
 * the broker backs the same interface with files.
 */
import { assert } from "../base/assert.ts";
import { storedConfigAt, voterMeta } from "./config.ts";
import type { Entry, HardState, NodeId, Snapshot } from "./types.ts";

/** The persisted state a node restarts from. */
export interface InitialState {
  readonly hardState: HardState;
  /** The voters of the snapshot's configuration (config entries in the log may change them since). */
  readonly voters: readonly NodeId[];
}

/**
 * Read access to stable storage. The log covers indexes [firstIndex(), lastIndex()]; the entry
 * just before firstIndex() is the last one covered by the snapshot, and its term is still known.
 */
export interface RaftStorage {
  /** Hard state and voters as last persisted. */
  initialState(): InitialState;
  /**
   * Entries [lo, hi) with firstIndex() <= lo <= hi <= lastIndex() + 1, cut after `maxBytes` of
   * entry data (but never fewer than one entry when lo < hi).
   */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /** The term of entry `i` for firstIndex() - 1 <= i <= lastIndex(); undefined otherwise. */
  term(i: number): number | undefined;
  /** The index of the first entry still in the log (snapshot index + 1). */
  firstIndex(): number;
  /** The index of the last entry (the snapshot index when the log is empty). */
  lastIndex(): number;
  /** The latest snapshot. */
  snapshot(): Snapshot;
}

/** Bytes an entry counts for against message and read size limits. */
export function entrySize(e: Entry): number {
  return e.data.length + 16;
}

/** The longest prefix of `ents` within `maxBytes` (never shorter than one entry). */
export function limitSize<T extends Entry>(ents: T[], maxBytes: number): T[] {
  if (ents.length === 0) return ents;
  let size = entrySize(ents[0]!);
  let n = 1;
  while (n < ents.length) {
    size += entrySize(ents[n]!);
    if (size > maxBytes) break;
    n++;
  }
  return n === ents.length ? ents : ents.slice(0, n);
}

/**
 * Stable storage held in memory: what survives a simulated crash. Writes are the shell's job
 * (`setHardState`, `append`, `applySnapshot`), as are snapshots of the applied state
 * (`createSnapshot`) and log compaction (`compact`).
 */
export class MemoryStorage implements RaftStorage {
  private hard: HardState = { term: 0, vote: 0, commit: 0 };
  private snap: Snapshot;
  /** ents[0] is a sentinel standing for the snapshot's last entry (its index and term). */
  private ents: Entry[];

  /** A fresh storage for a new cluster whose voters are `voters`. */
  constructor(voters: readonly NodeId[]) {
    assert(voters.length > 0, "a configuration needs at least one voter");
    this.snap = { meta: { index: 0, term: 0, voters: [...voters] }, data: new Uint8Array(0) };
    this.ents = [sentinel(0, 0)];
  }

  initialState(): InitialState {
    return { hardState: this.hard, voters: this.snap.meta.voters };
  }

  hardState(): HardState {
    return this.hard;
  }

  /** Persists the hard state. */
  setHardState(hs: HardState): void {
    this.hard = hs;
  }

  firstIndex(): number {
    return this.ents[0]!.index + 1;
  }

  lastIndex(): number {
    return this.ents[0]!.index + this.ents.length - 1;
  }

  term(i: number): number | undefined {
    const offset = this.ents[0]!.index;
    if (i < offset || i > this.lastIndex()) return undefined;
    return this.ents[i - offset]!.term;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const offset = this.ents[0]!.index;
    assert(lo > offset && lo <= hi && hi <= this.lastIndex() + 1, `entries [${lo}, ${hi}) out of range`);
    return limitSize(this.ents.slice(lo - offset, hi - offset), maxBytes);
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /**
   * Appends entries (contiguous, the first at most lastIndex() + 1), replacing any stored
   * entries at or after the first one's index. Entries already compacted away are skipped.
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[entries.length - 1]!.index;
    if (last < first) return;
    const from = entries[0]!.index < first ? first - entries[0]!.index : 0;
    const start = entries[from]!.index;
    assert(start <= this.lastIndex() + 1, `append at ${start} leaves a gap after ${this.lastIndex()}`);
    const offset = this.ents[0]!.index;
    this.ents.length = start - offset;
    for (let k = from; k < entries.length; k++) this.ents.push(entries[k]!);
  }

  /** Replaces the whole log with a snapshot received from a leader. */
  applySnapshot(snap: Snapshot): void {
    assert(snap.meta.index >= this.snap.meta.index, "snapshot older than the stored one");
    this.snap = snap;
    this.ents = [sentinel(snap.meta.index, snap.meta.term)];
  }

  /**
   * Records a snapshot of the state machine as of entry `index` (which the shell has applied).
   * The log is not compacted: call `compact` for that.
   */
  createSnapshot(index: number, data: Uint8Array): Snapshot {
    const term = this.term(index);
    assert(term !== undefined, `createSnapshot(${index}) outside the log`);
    assert(index >= this.snap.meta.index, "snapshot older than the stored one");
    assert(index <= this.hard.commit, "snapshot of an uncommitted entry");
    this.snap = { meta: { index, term, ...voterMeta(storedConfigAt(this, index)) }, data };
    return this.snap;
  }

  /**
   * Drops the entries up to and including `index`, which must be covered by the snapshot; its
   * term stays known, so firstIndex() becomes index + 1.
   */
  compact(index: number): void {
    const offset = this.ents[0]!.index;
    if (index <= offset) return;
    assert(index <= this.snap.meta.index, `compact(${index}) past the snapshot at ${this.snap.meta.index}`);
    const keep = this.ents[index - offset]!;
    this.ents = [sentinel(keep.index, keep.term), ...this.ents.slice(index - offset + 1)];
  }
}

function sentinel(index: number, term: number): Entry {
  return { index, term, kind: "noop", data: new Uint8Array(0) };
}
