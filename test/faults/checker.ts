/**
 * The log checker of a fault round (the Jepsen Kafka workload's properties, DESIGN.md
 * "Testing"), over a History: every write with its outcome and every read, including the final
 * read-back of every partition through every node after the cluster healed.
 *
 * Anomaly classes:
 * - lost: a value known to be committed — acknowledged, or read by a consumer (reads are below
 *   the high watermark) — that the final read-back does not hold;
 * - duplicate: one value read at two different (partition, offset) places;
 * - inconsistent: two different values read at one (partition, offset) (across nodes or across
 *   reads), or an acknowledged (partition, offset) that holds another value, or a value read in
 *   another partition than the one it was acknowledged in, or a value nobody wrote;
 * - aborted read: a value whose produce got a definite error answer, read anyway;
 * - nonmonotonic: a read whose offsets go backwards (or start below the offset asked for);
 * - skip: a read that jumps over offsets (the topic is not compacted, so offsets are dense).
 * Unknown-outcome writes may or may not appear; that is not an anomaly (counted for the report).
 *
 * Pure: no I/O, no clock; `check` is tested on synthetic histories (checker.test.ts).
 */
import type { History, Read, Write } from "./history.ts";

/** Where a value was seen: "p/o" and who saw it there. */
export interface Place {
  readonly partition: number;
  readonly offset: number;
  readonly seenBy: readonly string[];
}

export interface LostAnomaly {
  readonly value: string;
  /** Why it counts as committed. */
  readonly evidence: string;
  readonly write: Write | null;
}

export interface DuplicateAnomaly {
  readonly value: string;
  readonly places: readonly Place[];
}

export interface InconsistentAnomaly {
  readonly partition: number;
  readonly offset: number;
  readonly what: string;
  /** Values read at this place, with who read them. */
  readonly values: Readonly<Record<string, readonly string[]>>;
}

export interface AbortedReadAnomaly {
  readonly value: string;
  readonly write: Write;
  readonly places: readonly Place[];
}

export interface OrderAnomaly {
  readonly reader: string;
  readonly node: number;
  readonly partition: number;
  readonly from: number;
  readonly atMs: number;
  /** The offsets around the first fault in the read. */
  readonly offsets: readonly number[];
}

/** Every anomaly found, by class. */
export interface Anomalies {
  readonly lost: LostAnomaly[];
  readonly duplicate: DuplicateAnomaly[];
  readonly inconsistent: InconsistentAnomaly[];
  readonly abortedRead: AbortedReadAnomaly[];
  readonly nonmonotonic: OrderAnomaly[];
  readonly skip: OrderAnomaly[];
}

/** Counts of outcomes, for the report. */
export interface Counts {
  readonly attempted: number;
  readonly acknowledged: number;
  readonly failed: number;
  readonly unknown: number;
  /** Unknown-outcome values that the final read-back holds. */
  readonly unknownPresent: number;
  /** Failed values by error name and message (numbers blanked). */
  readonly failedBy: Readonly<Record<string, number>>;
  /** Unknown values by the start of their reason (error name or gRPC status). */
  readonly unknownBy: Readonly<Record<string, number>>;
  /** Records read by consumers during the run, and in the final read-back (all nodes). */
  readonly consumerRecords: number;
  readonly finalRecords: number;
}

export interface CheckResult {
  readonly counts: Counts;
  readonly anomalies: Anomalies;
  /** Sum of the anomaly counts of every class. */
  readonly total: number;
}

/** The reader name of the final read-back. */
export const FINAL_READER = "final";

function key(partition: number, offset: number): string {
  return `${partition}/${offset}`;
}

function bump(m: Record<string, number>, k: string): void {
  m[k] = (m[k] ?? 0) + 1;
}

/** Index of what was read where. */
class ReadIndex {
  /** "p/o" -> value -> readers. */
  readonly byPlace = new Map<string, Map<string, Set<string>>>();
  /** value -> "p/o" -> readers. */
  readonly byValue = new Map<string, Map<string, Set<string>>>();
  /** Values in the final read-back. */
  readonly finalValues = new Set<string>();
  consumerRecords = 0;
  finalRecords = 0;

  add(r: Read): void {
    const who = `${r.reader}@n${r.node}`;
    r.offsets.forEach((offset, i) => {
      const value = r.values[i]!;
      const k = key(r.partition, offset);
      addTo(this.byPlace, k, value, who);
      addTo(this.byValue, value, k, who);
    });
    if (r.reader === FINAL_READER) {
      for (const v of r.values) this.finalValues.add(v);
      this.finalRecords += r.values.length;
    } else {
      this.consumerRecords += r.values.length;
    }
  }

  places(value: string): Place[] {
    const m = this.byValue.get(value);
    if (!m) return [];
    return [...m].map(([k, who]) => {
      const [p, o] = k.split("/").map(Number) as [number, number];
      return { partition: p, offset: o, seenBy: [...who].sort() };
    });
  }

  /** Values at a place with their readers (for the report). */
  at(partition: number, offset: number): Record<string, string[]> {
    const m = this.byPlace.get(key(partition, offset));
    return Object.fromEntries([...(m ?? [])].map(([v, who]) => [v, [...who].sort()]));
  }
}

function addTo(m: Map<string, Map<string, Set<string>>>, a: string, b: string, who: string): void {
  let inner = m.get(a);
  if (!inner) m.set(a, (inner = new Map()));
  let s = inner.get(b);
  if (!s) inner.set(b, (s = new Set()));
  s.add(who);
}

/** Order faults inside one read: offsets going backwards, or jumping over offsets. */
function orderOf(r: Read): { nonmonotonic: OrderAnomaly | null; skip: OrderAnomaly | null } {
  let nonmonotonic: OrderAnomaly | null = null;
  let skip: OrderAnomaly | null = null;
  let prev = r.from - 1;
  for (let i = 0; i < r.offsets.length; i++) {
    const o = r.offsets[i]!;
    const around = r.offsets.slice(Math.max(0, i - 3), i + 3);
    const base = { reader: r.reader, node: r.node, partition: r.partition, from: r.from, atMs: r.atMs, offsets: around };
    if (o <= prev && !nonmonotonic) nonmonotonic = base;
    if (o > prev + 1 && !skip) skip = base;
    prev = Math.max(prev, o);
  }
  return { nonmonotonic, skip };
}

/** An error message with its numbers and addresses blanked, to count errors by kind. */
function gist(message: string): string {
  return message.replace(/\d+(\.\d+)*(:\d+)?/g, "N").slice(0, 80);
}

/** Checks a round's history (see the file comment). */
export function check(h: History): CheckResult {
  const idx = new ReadIndex();
  const anomalies: Anomalies = { lost: [], duplicate: [], inconsistent: [], abortedRead: [], nonmonotonic: [], skip: [] };
  for (const r of h.reads) {
    idx.add(r);
    const o = orderOf(r);
    if (o.nonmonotonic) anomalies.nonmonotonic.push(o.nonmonotonic);
    if (o.skip) anomalies.skip.push(o.skip);
  }

  // Two values at one place.
  for (const [k, values] of idx.byPlace) {
    if (values.size < 2) continue;
    const [p, o] = k.split("/").map(Number) as [number, number];
    anomalies.inconsistent.push({ partition: p, offset: o, what: `${values.size} different values read at ${k}`, values: idx.at(p, o) });
  }
  // One value at two places.
  for (const [value, places] of idx.byValue) {
    if (places.size > 1) anomalies.duplicate.push({ value, places: idx.places(value) });
  }

  const failedBy: Record<string, number> = {};
  const unknownBy: Record<string, number> = {};
  let acknowledged = 0;
  let failed = 0;
  let unknown = 0;
  let unknownPresent = 0;
  for (const w of h.writes.values()) {
    const out = w.outcome ?? { kind: "unknown" as const, reason: "no outcome recorded" };
    if (out.kind === "ok") {
      acknowledged++;
      checkAcknowledged(w, out.partition, out.offset, idx, anomalies);
    } else if (out.kind === "failed") {
      failed++;
      bump(failedBy, `${out.name} (${gist(out.message)})`);
      const places = idx.places(w.value);
      if (places.length > 0) anomalies.abortedRead.push({ value: w.value, write: w, places });
    } else {
      unknown++;
      bump(unknownBy, out.reason.split(":")[0]!);
      if (idx.finalValues.has(w.value)) unknownPresent++;
    }
  }

  // Read by a consumer during the run, gone afterwards.
  for (const [value, places] of idx.byValue) {
    const w = h.writes.get(value);
    if (!w) {
      const p = idx.places(value)[0]!;
      anomalies.inconsistent.push({
        partition: p.partition,
        offset: p.offset,
        what: `value ${JSON.stringify(value)} read, but no producer sent it`,
        values: idx.at(p.partition, p.offset),
      });
      continue;
    }
    if (w.outcome?.kind === "ok" || idx.finalValues.has(value)) continue;
    const seen = [...places].map(([k, who]) => `${k} by ${[...who].join(",")}`).join("; ");
    anomalies.lost.push({ value, evidence: `read during the run (${seen}), absent from the final read-back`, write: w });
  }

  const total = Object.values(anomalies).reduce((n, xs: unknown[]) => n + xs.length, 0);
  return {
    counts: {
      attempted: h.writes.size,
      acknowledged,
      failed,
      unknown,
      unknownPresent,
      failedBy,
      unknownBy,
      consumerRecords: idx.consumerRecords,
      finalRecords: idx.finalRecords,
    },
    anomalies,
    total,
  };
}

/** An acknowledged value must be in the final read-back, at the place it was acknowledged at. */
function checkAcknowledged(w: Write, partition: number, offset: number, idx: ReadIndex, anomalies: Anomalies): void {
  const places = idx.places(w.value);
  if (!idx.finalValues.has(w.value)) {
    const elsewhere = places.length > 0 ? `; read during the run at ${places.map((p) => `${p.partition}/${p.offset}`).join(", ")}` : "";
    anomalies.lost.push({ value: w.value, evidence: `acknowledged at ${partition}/${offset}${elsewhere}`, write: w });
  }
  if (partition !== w.partition) {
    anomalies.inconsistent.push({
      partition,
      offset,
      what: `${w.value} was sent to partition ${w.partition} but acknowledged in partition ${partition}`,
      values: idx.at(partition, offset),
    });
  }
  const there = idx.at(partition, offset);
  const others = Object.keys(there).filter((v) => v !== w.value);
  if (others.length > 0) {
    anomalies.inconsistent.push({
      partition,
      offset,
      what: `${w.value} was acknowledged at ${partition}/${offset}, which holds ${others.join(", ")}`,
      values: there,
    });
  } else if (places.some((p) => p.partition !== partition || p.offset !== offset) && !(w.value in there)) {
    anomalies.inconsistent.push({
      partition,
      offset,
      what: `${w.value} was acknowledged at ${partition}/${offset} but read only at ${places.map((p) => `${p.partition}/${p.offset}`).join(", ")}`,
      values: there,
    });
  }
}
