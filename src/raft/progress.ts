/**
 * The leader's view of one follower: how far its log matches (`match`), what to send next
 * (`next`), and how to send it.
 *
 * - probe: one Append at a time, waiting for the answer (or a heartbeat answer) before the next;
 *   used after election and after a rejection, while the match point is unknown.
 * - replicate: Appends are pipelined, `next` advances optimistically, at most `inflightMax`
 *   messages unacknowledged.
 * - snapshot: an InstallSnapshot is in flight; nothing else is sent until it is acknowledged,
 *   reported failed, or times out.
 */
import { assert } from "../base/assert.ts";

/** How the leader currently sends to a follower. */
export type ProgressState = "probe" | "replicate" | "snapshot";

/** A bounded queue of the last indexes of unacknowledged Appends. */
export class Inflights {
  private readonly items: number[] = [];
  readonly capacity: number;

  constructor(capacity: number) {
    assert(capacity >= 1, "inflight capacity must be at least 1");
    this.capacity = capacity;
  }

  get count(): number {
    return this.items.length;
  }

  full(): boolean {
    return this.items.length >= this.capacity;
  }

  add(lastIndex: number): void {
    assert(!this.full(), "inflights overflow");
    this.items.push(lastIndex);
  }

  /** Frees every message whose last index is <= `index`. */
  freeLE(index: number): void {
    let n = 0;
    while (n < this.items.length && this.items[n]! <= index) n++;
    if (n > 0) this.items.splice(0, n);
  }

  freeFirstOne(): void {
    this.items.shift();
  }

  reset(): void {
    this.items.length = 0;
  }
}

/** Replication progress of one follower, kept by the leader. */
export class Progress {
  match = 0;
  next: number;
  state: ProgressState = "probe";
  /** In probe state: an Append was sent and not yet answered. */
  paused = false;
  /** In snapshot state: the index of the snapshot sent. */
  pendingSnapshot = 0;
  /** Ticks spent in snapshot state. */
  snapshotTicks = 0;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  /** `match` at the previous heartbeat answer (-1: none yet in this state); detects stalls. */
  heartbeatMatch = -1;
  readonly inflights: Inflights;

  constructor(next: number, inflightMax: number) {
    this.next = next;
    this.inflights = new Inflights(inflightMax);
  }

  becomeProbe(): void {
    const base = this.state === "snapshot" ? Math.max(this.match, this.pendingSnapshot) : this.match;
    this.next = base + 1;
    this.resetState("probe");
  }

  becomeReplicate(): void {
    this.next = this.match + 1;
    this.resetState("replicate");
  }

  becomeSnapshot(index: number): void {
    this.resetState("snapshot");
    this.pendingSnapshot = index;
  }

  private resetState(state: ProgressState): void {
    this.state = state;
    this.paused = false;
    this.pendingSnapshot = 0;
    this.snapshotTicks = 0;
    this.heartbeatMatch = -1;
    this.inflights.reset();
  }

  /** The follower acknowledged up to `n`; returns whether that is news. */
  maybeUpdate(n: number): boolean {
    if (n <= this.match) return false;
    this.match = n;
    this.paused = false;
    if (this.next < n + 1) this.next = n + 1;
    return true;
  }

  /**
   * The follower rejected an Append at prevIndex `rejected`, hinting that its log matches at
   * most up to `matchHint`. Returns false for a stale rejection.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === "replicate") {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.paused = false;
    return true;
  }

  /** An Append ending at `lastIndex` (or empty: `lastIndex` = next - 1) was sent. */
  sentAppend(lastIndex: number): void {
    if (this.state === "replicate") {
      if (lastIndex >= this.next) {
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex);
      }
    } else {
      this.paused = true;
    }
  }

  /** Whether the leader must hold Appends for now. */
  isPaused(): boolean {
    switch (this.state) {
      case "probe":
        return this.paused;
      case "replicate":
        return this.inflights.full();
      case "snapshot":
        return true;
    }
  }
}
