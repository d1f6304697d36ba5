/**
 * The part of the log not yet durable: entries (and possibly a snapshot received from a leader)
 * that the next Ready hands to the shell to persist. Entries below `offset` live in storage.
 */
import { assert } from "../base/assert.ts";
import type { Entry, Snapshot } from "./types.ts";

/** Unpersisted entries starting at `offset`, and an unpersisted snapshot if one arrived. */
export class Unstable {
  snapshot: Snapshot | null = null;
  entries: Entry[] = [];
  /** Index of entries[0]; everything below it is in storage (or the snapshot). */
  offset: number;

  constructor(offset: number) {
    this.offset = offset;
  }

  /** The first log index if a pending snapshot determines it. */
  maybeFirstIndex(): number | undefined {
    return this.snapshot === null ? undefined : this.snapshot.meta.index + 1;
  }

  /** The last log index if this part determines it. */
  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot === null ? undefined : this.snapshot.meta.index;
  }

  /** The term of entry `i` if this part holds it. */
  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      const s = this.snapshot;
      return s !== null && s.meta.index === i ? s.meta.term : undefined;
    }
    const k = i - this.offset;
    return k < this.entries.length ? this.entries[k]!.term : undefined;
  }

  /**
   * Entries up to `i` became durable, provided entry `i` still has term `t` (entries written
   * while a newer leader truncated the log are not the ones now held here).
   */
  stableTo(i: number, t: number): void {
    if (i < this.offset || this.maybeTerm(i) !== t) return;
    this.entries = this.entries.slice(i + 1 - this.offset);
    this.offset = i + 1;
  }

  /** The pending snapshot at index `i` became durable. */
  stableSnapTo(i: number): void {
    if (this.snapshot !== null && this.snapshot.meta.index === i) this.snapshot = null;
  }

  /** Replaces everything with a snapshot from the leader. */
  restore(s: Snapshot): void {
    this.offset = s.meta.index + 1;
    this.entries = [];
    this.snapshot = s;
  }

  /** Appends `ents`, first dropping any held entries at or after the first one's index. */
  truncateAndAppend(ents: readonly Entry[]): void {
    assert(ents.length > 0, "truncateAndAppend of nothing");
    const after = ents[0]!.index;
    if (after === this.offset + this.entries.length) {
      for (const e of ents) this.entries.push(e);
    } else if (after <= this.offset) {
      this.offset = after;
      this.entries = ents.slice();
    } else {
      this.entries = this.entries.slice(0, after - this.offset).concat(ents);
    }
  }

  /** Entries [lo, hi), all of which this part must hold. */
  slice(lo: number, hi: number): Entry[] {
    assert(lo >= this.offset && hi <= this.offset + this.entries.length, `unstable slice [${lo}, ${hi})`);
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}
