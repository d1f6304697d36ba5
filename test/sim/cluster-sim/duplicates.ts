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

/** How many times a node handled the produce request of one value (WriteCopies). */
export interface WriteCount {
  n: number;
  /** Copies of the value `check` found in the partition it checks (when `checked` is its pass). */
  seen: number;
  checked: number;
}

/** Per value written without idempotence: how many times a node handled its produce request. */
export class WriteCopies {
  /** value → how many times its produce request was handled (0: not yet, as if absent). */
  private readonly handled = new Map<string, WriteCount>();
  /** `check` calls so far: each counts its partition's copies afresh. */
  private passes = 0;

  /** A node runs the produce request of `value` (once per copy that arrived). */
  handle(value: string): void {
    this.counter(value).n++;
  }

  /**
   * The count of `value`'s handled requests, to bump (`n++`) once per copy handled: a producer
   * that sends a record many times (a batch retried) looks it up once.
   */
  counter(value: string): WriteCount {
    let c = this.handled.get(value);
    if (c === undefined) this.handled.set(value, (c = { n: 0, seen: 0, checked: 0 }));
    return c;
  }

  /**
   * Checks a partition's records (offset → value, below the high watermark): each value written
   * without idempotence at most as often as its request was handled.
   */
  check(partition: number, records: ReadonlyMap<number, string>, history: History, nowMs: number): void {
    // Counted first, on the values' own counts (no array nor map per record); the offsets are
    // gathered only for a value found too often.
    const pass = ++this.passes;
    let over = false;
    for (const v of records.values()) {
      const c = this.handled.get(v);
      if (c === undefined || c.n === 0) continue;
      if (c.checked !== pass) {
        c.checked = pass;
        c.seen = 0;
      }
      if (++c.seen > c.n) over = true;
    }
    if (!over) return;
    const offsets = new Map<string, number[]>();
    for (const [offset, v] of records) {
      const c = this.handled.get(v);
      const handled = c?.n ?? 0;
      if (c === undefined || handled === 0 || c.seen <= handled) continue;
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
