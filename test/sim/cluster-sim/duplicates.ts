/**
 * Message duplication in the cluster simulator (settings.duplicateRate, `NetFaults.duplicateRate`
 * in world.ts): the network delivers some messages twice — Raft messages, replica fetches,
 * controller calls, client requests and the answers of each — the copy after its own delay, so
 * it may arrive after later messages.
 *
 * A produce request without idempotence that arrives twice may be written twice (at least once):
 * not a violation. What is checked is the bound: a value written by a producer without
 * idempotence is in a leader's log at most as many times as a node handled its produce request
 * (`WriteCopies`); with no duplication, once. An idempotent producer's value stays at most once
 * (the idempotent-duplicate check of cluster.ts), its copies deduplicated by their sequence.
 */
import type { History } from "./history.ts";

/** Per value written without idempotence: how many times a node handled its produce request. */
export class WriteCopies {
  private readonly handled = new Map<string, number>();

  /** A node runs the produce request of `value` (once per copy that arrived). */
  handle(value: string): void {
    this.handled.set(value, (this.handled.get(value) ?? 0) + 1);
  }

  /**
   * Checks a partition's records (offset → value, below the high watermark): each value written
   * without idempotence at most as often as its request was handled.
   */
  check(partition: number, records: ReadonlyMap<number, string>, history: History, nowMs: number): void {
    // Counted first (no array per record); the offsets are gathered only for a value found too often.
    const seen = new Map<string, number>();
    let over = false;
    for (const v of records.values()) {
      const handled = this.handled.get(v);
      if (handled === undefined) continue;
      const n = (seen.get(v) ?? 0) + 1;
      seen.set(v, n);
      if (n > handled) over = true;
    }
    if (!over) return;
    const offsets = new Map<string, number[]>();
    for (const [offset, v] of records) {
      const handled = this.handled.get(v);
      if (handled === undefined || seen.get(v)! <= handled) continue;
      let at = offsets.get(v);
      if (!at) offsets.set(v, (at = []));
      at.push(offset);
      if (at.length > handled)
        history.violation(
          "write-copies",
          `partition ${partition}: "${v}" at offsets ${at.join(", ")}, its produce request was handled ${handled} time(s)`,
          nowMs,
        );
    }
  }
}
