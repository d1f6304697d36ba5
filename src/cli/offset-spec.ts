/**
 * Where `rill consume -o` starts, as kcat and rpk write it:
 *
 *   N                 offset N of each partition read
 *   -N                N records before the end of each partition (kcat `-o -10`), not before its start
 *   +N                N records after the start of each partition (rpk)
 *   beginning|start|earliest|oldest    the start; end|latest|newest   the end
 *   @TIME             the first record at or after TIME: milliseconds since the epoch, an ISO
 *                     date (`@2026-12-06T10:00:00Z`, `@2026-12-06`), or a duration before now
 *                     (`@-1h`, `@-90s`, `@-1h30m`, `@-2d`; units ms s m h d)
 */

import { InvalidArgumentError } from "commander";

/** A parsed `-o` value. */
export type OffsetSpec =
  | { readonly kind: "earliest" }
  | { readonly kind: "latest" }
  | { readonly kind: "offset"; readonly offset: number }
  | { readonly kind: "fromEnd"; readonly count: number }
  | { readonly kind: "fromStart"; readonly count: number }
  | { readonly kind: "time"; readonly timestampMs: number };

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration such as `1h30m`, `90s`, `250ms`, `2d`, in ms; null when `s` is not one. */
export function parseDurationMs(s: string): number | null {
  if (!/^(?:\d+(?:ms|s|m|h|d))+$/.test(s)) return null;
  let total = 0;
  for (const m of s.matchAll(/(\d+)(ms|s|m|h|d)/g)) total += Number(m[1]) * UNIT_MS[m[2]!]!;
  return Number.isSafeInteger(total) ? total : null;
}

/** A point in time (ms since the epoch, an ISO date, or `-DURATION` before `nowMs`); throws InvalidArgumentError. */
export function parseTime(s: string, nowMs: number): number {
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (Number.isSafeInteger(n)) return n;
  } else if (s.startsWith("-")) {
    const d = parseDurationMs(s.slice(1));
    if (d !== null) return Math.max(0, nowMs - d);
  } else if (/^\d{4}-\d{2}-\d{2}/.test(s)) {
    const t = Date.parse(s);
    if (!Number.isNaN(t) && t >= 0) return t;
  }
  throw new InvalidArgumentError(
    `expected a time: ms since the epoch, an ISO date (2026-12-06T10:00:00Z) or a duration before now (-1h, -30m), got "${s}"`,
  );
}

/** Parses a `-o` value (see the module comment); throws InvalidArgumentError naming the forms. */
export function parseOffsetSpec(value: string, nowMs: number = Date.now()): OffsetSpec {
  const v = value.trim();
  if (["beginning", "start", "earliest", "oldest"].includes(v)) return { kind: "earliest" };
  if (["end", "latest", "newest"].includes(v)) return { kind: "latest" };
  if (v.startsWith("@")) return { kind: "time", timestampMs: parseTime(v.slice(1), nowMs) };
  const m = /^([+-]?)(\d+)$/.exec(v);
  const n = m ? Number(m[2]) : Number.NaN;
  if (!m || !Number.isSafeInteger(n)) {
    throw new InvalidArgumentError(
      `expected N, -N (before the end), +N (after the start), beginning, end or @TIME (@-1h, @2026-12-06T10:00:00Z, @MS), got "${value}"`,
    );
  }
  if (m[1] === "-") return { kind: "fromEnd", count: n };
  if (m[1] === "+") return { kind: "fromStart", count: n };
  return { kind: "offset", offset: n };
}

/** A commander parser for `-o`. */
export function offsetSpec(value: string): OffsetSpec {
  return parseOffsetSpec(value);
}

/** A commander parser for a time option (`--timestamp`, `--to-datetime`). */
export function timeSpec(value: string): number {
  return parseTime(value.trim().replace(/^@/, ""), Date.now());
}
