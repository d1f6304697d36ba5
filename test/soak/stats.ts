/**
 * Small pure helpers of the soak test (scripts/soak.ts): a seeded random source, a
 * least-squares slope, percentiles and the fault-window test. No I/O, no clock.
 */

/** A seeded pseudo-random source (mulberry32): the same seed gives the same soak schedule. */
export class SeededRandom {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** One element of `xs` (not empty). */
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)]!;
  }
}

/**
 * Seconds from the start within which a soak of `durationS` restarts nodes: its first quarter,
 * but at least the first minute and at most the first half. A restart empties the restarted
 * broker's memory-only caches (the tail caches refill at the rate the log is written), so the
 * later the last restart, the more of the second half (where the slope is measured) is that
 * refill rather than a steady state; runs of 4 minutes or less keep the first half, so a short
 * run still has both a SIGTERM and a kill -9.
 */
export function restartWindowS(durationS: number): number {
  return Math.min(durationS / 2, Math.max(60, durationS / 4));
}

/** A point of a time series: `t` in seconds since the soak started. */
export interface Point {
  readonly t: number;
  readonly v: number;
}

/** The least-squares slope of `points` in units per minute; 0 with fewer than two distinct t. */
export function slopePerMinute(points: readonly Point[]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mt = points.reduce((s, p) => s + p.t, 0) / n;
  const mv = points.reduce((s, p) => s + p.v, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.t - mt) * (p.v - mv);
    den += (p.t - mt) ** 2;
  }
  return den === 0 ? 0 : (num / den) * 60;
}

/**
 * The lowest point of each `windowS`-second window of `points` (from the first point's time): the
 * floor a collector's sawtooth comes back to. A leak raises the floor; garbage between two
 * collections (the Bun pacer's 64 MiB step, V8's growing factor) does not, but a least-squares
 * slope over a few minutes of the sawtooth itself depends on where its peaks fall.
 */
export function windowMinima(points: readonly Point[], windowS: number): Point[] {
  const out: Point[] = [];
  if (points.length === 0) return out;
  const t0 = points[0]!.t;
  for (const p of points) {
    const w = Math.floor((p.t - t0) / windowS);
    const last = out.at(-1);
    const lastW = last === undefined ? -1 : Math.floor((last.t - t0) / windowS);
    if (last === undefined || lastW !== w) out.push(p);
    else if (p.v < last.v) out[out.length - 1] = p;
  }
  return out;
}

/** The `q`-quantile (0..1) of `xs` by nearest rank; null when empty. */
export function quantile(xs: readonly number[], q: number): number | null {
  if (xs.length === 0) return null;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** A fault the soak injected, in seconds since the start: from the signal to the node serving again. */
export interface FaultWindow {
  readonly kind: "sigterm" | "kill9";
  readonly node: number;
  readonly start: number;
  end: number;
}

/**
 * Whether an error at `t` seconds is explained by a fault: it happened between one second before
 * a fault began and `graceS` seconds after the node served again (clients retry, groups rebalance).
 */
export function inFault(t: number, faults: readonly FaultWindow[], graceS: number): boolean {
  return faults.some((f) => t >= f.start - 1 && t <= (Number.isFinite(f.end) ? f.end : Number.POSITIVE_INFINITY) + graceS);
}
