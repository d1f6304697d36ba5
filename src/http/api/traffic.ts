/**
 * The console's live charts: a ring of samples, one every `intervalMs` over the last
 * `windowMs` (15 minutes), of each topic's records and bytes in and out per second and each
 * consumer group's lag per partition.
 *
 * Traffic comes from a `TrafficSource`: cumulative counts per topic read at each sample (the
 * metrics module's counters when the broker has them). Without one, `logTraffic` derives the
 * "in" counts from the partitions led here — the growth of each log end offset (records) and of
 * each log's size (bytes), counted only for partitions led here at both ends of an interval,
 * so a leadership move is not taken for traffic; "out" is then unknown (null). A rate is the
 * growth of a count between two samples over their distance in time; a count that went down
 * (a restart of the source, retention shrinking a log) counts as no growth.
 *
 * Bounded: at most `TOPICS_TRACKED_MAX` topics and `GROUPS_TRACKED_MAX` groups (of
 * `GROUP_PARTITIONS_MAX` partitions each) per sample, `windowMs / intervalMs` samples.
 */
import type { Timers } from "../../base/timers.ts";
import type { ReplicaManager } from "../../replication/replica-manager.ts";

/** Cumulative counts of one topic since some start (only growth between samples matters). */
export interface TopicTotals {
  readonly topic: string;
  readonly recordsIn: number;
  readonly bytesIn: number;
  /** Null when the source does not count it. */
  readonly recordsOut: number | null;
  readonly bytesOut: number | null;
}

/** Reads every topic's cumulative counts now. */
export type TrafficSource = () => Iterable<TopicTotals>;

/** One group's lag now: per partition (`topic-partition` → lag), and the total. */
export interface GroupLag {
  readonly group: string;
  readonly partitions: ReadonlyMap<string, number>;
}

/** Reads every group's lag now. */
export type LagSource = () => Iterable<GroupLag>;

/** The history's window: 15 minutes. */
export const HISTORY_WINDOW_MS = 15 * 60_000;
/** Topics kept per sample (the busiest when there are more). */
export const TOPICS_TRACKED_MAX = 500;
/** Groups kept per sample. */
export const GROUPS_TRACKED_MAX = 200;
/** Partitions kept per group per sample (the laggiest when there are more). */
export const GROUP_PARTITIONS_MAX = 64;

/** Per-second rates of one topic over one interval. */
export interface TopicRates {
  readonly recordsIn: number;
  readonly bytesIn: number;
  readonly recordsOut: number | null;
  readonly bytesOut: number | null;
}

interface Sample {
  readonly atMs: number;
  /** Null for a sample with nothing before it to measure rates against (the lag only). */
  readonly topics: ReadonlyMap<string, TopicRates> | null;
  readonly lag: ReadonlyMap<string, ReadonlyMap<string, number>>;
}

/** One topic's series, as the API answers it: parallel arrays over the samples. */
export interface TopicSeries {
  readonly topic: string;
  readonly t: number[];
  readonly recordsIn: number[];
  readonly bytesIn: number[];
  readonly recordsOut: (number | null)[];
  readonly bytesOut: (number | null)[];
}

/** One group's lag series: the total and each partition's, over the samples. */
export interface LagSeries {
  readonly group: string;
  readonly t: number[];
  readonly total: number[];
  /** `topic-partition` → lag per sample (null where the partition was not in the sample). */
  readonly partitions: Record<string, (number | null)[]>;
}

/** The ring of samples. */
export class TrafficHistory {
  private readonly samples: Sample[] = [];
  private last: { atMs: number; totals: Map<string, TopicTotals> } | null = null;
  private running: { readonly timers: Timers; readonly handle: unknown } | null = null;

  constructor(
    private readonly traffic: TrafficSource,
    private readonly lag: LagSource,
    readonly intervalMs: number,
    readonly windowMs = HISTORY_WINDOW_MS,
  ) {}

  /** Samples every `intervalMs` on `timers` until `stop`. */
  start(timers: Timers, nowMs: () => number): void {
    if (this.running !== null) return;
    this.sample(nowMs());
    const handle = timers.setInterval(() => this.sample(nowMs()), this.intervalMs);
    (handle as { unref?: () => void }).unref?.();
    this.running = { timers, handle };
  }

  /** Stops sampling (the samples stay). */
  stop(): void {
    this.running?.timers.clearInterval(this.running.handle);
    this.running = null;
  }

  /** Takes one sample at `atMs`: rates since the previous one, and the lag now. */
  sample(atMs: number): void {
    const totals = new Map<string, TopicTotals>();
    for (const t of this.traffic()) totals.set(t.topic, t);
    const prev = this.last;
    this.last = { atMs, totals };
    const lag = new Map<string, ReadonlyMap<string, number>>();
    for (const g of this.lag()) {
      if (lag.size >= GROUPS_TRACKED_MAX) break;
      lag.set(g.group, laggiest(g.partitions));
    }
    if (prev === null || atMs <= prev.atMs) {
      if (lag.size > 0) this.push({ atMs, topics: null, lag });
      return;
    }
    this.push({ atMs, topics: rates(prev.totals, totals, (atMs - prev.atMs) / 1000), lag });
  }

  private push(s: Sample): void {
    this.samples.push(s);
    while (this.samples.length > 0 && this.samples[0]!.atMs <= s.atMs - this.windowMs) this.samples.shift();
  }

  /** The series of every topic in the window (those `visible` says yes to), by name. */
  topics(visible: (topic: string) => boolean): TopicSeries[] {
    const names = new Set<string>();
    for (const s of this.samples) for (const n of s.topics?.keys() ?? []) if (visible(n)) names.add(n);
    return [...names].sort().map((topic) => this.topic(topic));
  }

  /** One topic's series (samples without it count as zero traffic). */
  topic(topic: string): TopicSeries {
    const out: TopicSeries = { topic, t: [], recordsIn: [], bytesIn: [], recordsOut: [], bytesOut: [] };
    for (const s of this.samples) {
      if (s.topics === null) continue;
      const r = s.topics.get(topic);
      out.t.push(s.atMs);
      out.recordsIn.push(r?.recordsIn ?? 0);
      out.bytesIn.push(r?.bytesIn ?? 0);
      out.recordsOut.push(r ? r.recordsOut : null);
      out.bytesOut.push(r ? r.bytesOut : null);
    }
    return out;
  }

  /** One group's lag series. */
  groupLag(group: string): LagSeries {
    const out: LagSeries = { group, t: [], total: [], partitions: {} };
    const withGroup = this.samples.filter((s) => s.lag.has(group));
    withGroup.forEach((s, i) => {
      const parts = s.lag.get(group)!;
      out.t.push(s.atMs);
      let total = 0;
      for (const [tp, v] of parts) {
        total += v;
        const series = (out.partitions[tp] ??= new Array<number | null>(withGroup.length).fill(null));
        series[i] = v;
      }
      out.total.push(total);
    });
    return out;
  }
}

/** Per-second growth of each topic's counts between two readings (the busiest TOPICS_TRACKED_MAX). */
function rates(prev: ReadonlyMap<string, TopicTotals>, now: ReadonlyMap<string, TopicTotals>, seconds: number): Map<string, TopicRates> {
  const growth = (a: number, b: number): number => Math.max(0, b - a) / seconds;
  const out: Array<[string, TopicRates]> = [];
  for (const [topic, n] of now) {
    const p = prev.get(topic);
    if (!p) continue;
    out.push([
      topic,
      {
        recordsIn: growth(p.recordsIn, n.recordsIn),
        bytesIn: growth(p.bytesIn, n.bytesIn),
        recordsOut: n.recordsOut === null || p.recordsOut === null ? null : growth(p.recordsOut, n.recordsOut),
        bytesOut: n.bytesOut === null || p.bytesOut === null ? null : growth(p.bytesOut, n.bytesOut),
      },
    ]);
  }
  if (out.length > TOPICS_TRACKED_MAX) out.sort((a, b) => b[1].bytesIn - a[1].bytesIn).length = TOPICS_TRACKED_MAX;
  return new Map(out);
}

function laggiest(partitions: ReadonlyMap<string, number>): ReadonlyMap<string, number> {
  if (partitions.size <= GROUP_PARTITIONS_MAX) return partitions;
  return new Map([...partitions].sort((a, b) => b[1] - a[1]).slice(0, GROUP_PARTITIONS_MAX));
}

/**
 * Records and bytes in of each topic from the partitions led here: the sum of the growth of each
 * log end offset and log size, counted while the partition was led here at both readings.
 */
export function logTraffic(rm: ReplicaManager): TrafficSource {
  const last = new Map<string, { leo: number; size: number }>();
  const totals = new Map<string, { records: number; bytes: number }>();
  return () => {
    const seen = new Set<string>();
    for (const r of rm.led()) {
      const key = `${r.topic}\u0000${r.partition}`;
      seen.add(key);
      const now = { leo: r.log.logEndOffset, size: r.log.sizeBytes };
      const prev = last.get(key);
      last.set(key, now);
      let t = totals.get(r.topic);
      if (!t) totals.set(r.topic, (t = { records: 0, bytes: 0 }));
      if (!prev) continue;
      t.records += Math.max(0, now.leo - prev.leo);
      t.bytes += Math.max(0, now.size - prev.size);
    }
    for (const key of last.keys()) if (!seen.has(key)) last.delete(key);
    const topics = new Set([...seen].map((k) => k.slice(0, k.indexOf("\u0000"))));
    for (const name of totals.keys()) if (!topics.has(name)) totals.delete(name);
    return [...totals].map(([topic, t]) => ({ topic, recordsIn: t.records, bytesIn: t.bytes, recordsOut: null, bytesOut: null }));
  };
}
