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
interface WriteCount {
  n: number;
  /** Copies of the value `check` found in the partition it checks (when `checked` is its pass). */
  seen: number;
  checked: number;
}

/**
 * The counts of one acks=all producer's values `p<id>-<n>`, by n (the single-record and the
 * batching producers number their values from 0 up): arrays rather than a string key per record.
 */
export class ProducerCounts {
  /** n → how many times a node handled a request carrying `p<id>-<n>`. */
  readonly handled: number[] = [];
  /** n → copies `check` found in its partition, when `checked[n]` is its pass. */
  readonly seen: number[] = [];
  readonly checked: number[] = [];

  /** Makes room for value n (0 handled so far). */
  add(n: number): void {
    while (this.handled.length <= n) {
      this.handled.push(0);
      this.seen.push(0);
      this.checked.push(0);
    }
  }
}

/** Per value written without idempotence: how many times a node handled its produce request. */
export class WriteCopies {
  /** value → how many times its produce request was handled (values not of the form `p<id>-<n>`). */
  private readonly handled = new Map<string, WriteCount>();
  /** id → the counts of the values `p<id>-<n>`. */
  private readonly producers = new Map<number, ProducerCounts>();
  /** `check` calls so far: each counts its partition's copies afresh. */
  private passes = 0;
  /** What `parse` found: the id and n of `p<id>-<n>`. */
  private id = 0;
  private n = 0;

  /** A node runs the produce request of `value` (once per copy that arrived). */
  handle(value: string): void {
    if (this.parse(value)) {
      const pc = this.producer(this.id);
      pc.add(this.n);
      pc.handled[this.n]!++;
      return;
    }
    let c = this.handled.get(value);
    if (c === undefined) this.handled.set(value, (c = { n: 0, seen: 0, checked: 0 }));
    c.n++;
  }

  /**
   * The counts of producer `id`'s values `p<id>-<n>`: a producer that sends a record many times
   * (a batch retried) bumps `handled[n]` itself, after `add(n)`.
   */
  producer(id: number): ProducerCounts {
    let pc = this.producers.get(id);
    if (pc === undefined) this.producers.set(id, (pc = new ProducerCounts()));
    return pc;
  }

  /**
   * Whether `v` is `p<id>-<n>` with both numbers written as `${number}` writes them (no sign, no
   * leading zero), so that each such string is one (id, n) and back; sets `id` and `n`.
   */
  private parse(v: string): boolean {
    const len = v.length;
    if (len < 4 || len > 32 || v.charCodeAt(0) !== 112 /* p */) return false;
    let i = 1;
    let id = 0;
    const idStart = i;
    for (; i < len; i++) {
      const c = v.charCodeAt(i);
      if (c === 45 /* - */) break;
      if (c < 48 || c > 57) return false;
      id = id * 10 + (c - 48);
    }
    const idLen = i - idStart;
    if (i >= len || idLen === 0 || idLen > 9 || (idLen > 1 && v.charCodeAt(idStart) === 48)) return false;
    i++;
    const nStart = i;
    let n = 0;
    for (; i < len; i++) {
      const c = v.charCodeAt(i);
      if (c < 48 || c > 57) return false;
      n = n * 10 + (c - 48);
    }
    const nLen = len - nStart;
    if (nLen === 0 || nLen > 15 || (nLen > 1 && v.charCodeAt(nStart) === 48)) return false;
    this.id = id;
    this.n = n;
    return true;
  }

  /** How many times the request of `v` was handled (0: never). */
  private handledOf(v: string): number {
    if (this.parse(v)) return this.producers.get(this.id)?.handled[this.n] ?? 0;
    return this.handled.get(v)?.n ?? 0;
  }

  /** Counts one copy of `v` in pass `pass` (after `handledOf(v)` > 0); returns the copies so far. */
  private see(v: string, pass: number): number {
    if (this.parse(v)) {
      const pc = this.producers.get(this.id)!;
      const n = this.n;
      if (pc.checked[n] !== pass) {
        pc.checked[n] = pass;
        pc.seen[n] = 0;
      }
      return ++pc.seen[n]!;
    }
    const c = this.handled.get(v)!;
    if (c.checked !== pass) {
      c.checked = pass;
      c.seen = 0;
    }
    return ++c.seen;
  }

  /** The copies of `v` the last `see` pass counted. */
  private seenOf(v: string): number {
    if (this.parse(v)) return this.producers.get(this.id)!.seen[this.n]!;
    return this.handled.get(v)!.seen;
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
      const handled = this.handledOf(v);
      if (handled === 0) continue;
      if (this.see(v, pass) > handled) over = true;
    }
    if (!over) return;
    const offsets = new Map<string, number[]>();
    for (const [offset, v] of records) {
      const handled = this.handledOf(v);
      if (handled === 0 || this.seenOf(v) <= handled) continue;
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
