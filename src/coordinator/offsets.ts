/**
 * Where reading starts and where a reset moves a committed offset: pure decisions over numbers
 * the caller reads from the partition log (log start offset, high watermark, the offset for a
 * timestamp). The coordinator stores offsets; these decide which ones.
 */
import { rillError } from "../base/errors.ts";

/** Kafka's auto.offset.reset. */
export type AutoOffsetReset = "earliest" | "latest" | "none";

/** A partition's readable range: [logStartOffset, logEndOffset]. */
export interface LogRange {
  readonly logStartOffset: number;
  /** The high watermark: the end a consumer can read to. */
  readonly logEndOffset: number;
}

/**
 * The offset a member starts reading a partition at: the committed one when it is inside the
 * log's range; else the log start (`earliest`) or the log end (`latest`); with `none`, an
 * OFFSET_OUT_OF_RANGE error naming the partition (as Kafka's NoOffsetForPartition and
 * OffsetOutOfRange conditions).
 */
export function resolveStartOffset(committed: number | null, policy: AutoOffsetReset, range: LogRange, where: string): number {
  if (committed !== null && committed >= 0 && committed >= range.logStartOffset && committed <= range.logEndOffset) return committed;
  if (policy === "earliest") return range.logStartOffset;
  if (policy === "latest") return range.logEndOffset;
  const why =
    committed === null || committed < 0
      ? "has no committed offset"
      : `committed offset ${committed} is outside [${range.logStartOffset}, ${range.logEndOffset}]`;
  throw rillError("OFFSET_OUT_OF_RANGE", `${where}: ${why} and auto_offset_reset is none`);
}

/** What a ResetOffsets request asks for, per partition. */
export type ResetSpec =
  | { readonly kind: "earliest" }
  | { readonly kind: "latest" }
  /** `offsetForTimestamp`: the first offset whose timestamp is at or after the request's, null when none is. */
  | { readonly kind: "timestamp"; readonly offsetForTimestamp: number | null }
  | { readonly kind: "offset"; readonly offset: number };

/**
 * The offset a reset commits: earliest → log start, latest → log end, timestamp → the first
 * offset at or after it (the log end when no record is that recent, as Kafka's tool), a given
 * offset → clamped into the log's range.
 */
export function resolveResetOffset(spec: ResetSpec, range: LogRange): number {
  switch (spec.kind) {
    case "earliest":
      return range.logStartOffset;
    case "latest":
      return range.logEndOffset;
    case "timestamp":
      return spec.offsetForTimestamp === null ? range.logEndOffset : clamp(spec.offsetForTimestamp, range);
    case "offset":
      return clamp(spec.offset, range);
  }
}

/** Lag of a partition: log end minus committed, or -1 without a committed offset or a known end. */
export function lagOf(committed: number, logEndOffset: number): number {
  if (committed < 0 || logEndOffset < 0) return -1;
  return Math.max(0, logEndOffset - committed);
}

function clamp(offset: number, range: LogRange): number {
  return Math.min(Math.max(offset, range.logStartOffset), range.logEndOffset);
}
