/**
 * ListOffsets, shared by Admin and Consumer: where a partition starts, ends, or first reaches a
 * timestamp.
 */

import { OffsetSpec } from "../gen/rill/v1/common_pb.ts";
import type { Connection } from "./connection.ts";
import { checkInt, toInt64, toNumber } from "./convert.ts";
import { fromErrorDetail } from "./errors.ts";
import { withRetries } from "./retry.ts";

/** Which offset to look up: the first stored, the end, or the first at or after a timestamp. */
export type OffsetQuery = "earliest" | "latest" | { readonly timestampMs: number };

/** One lookup: a partition and what to find in it. */
export interface OffsetLookup {
  readonly topic: string;
  readonly partition: number;
  readonly query: OffsetQuery;
}

/** What a lookup found. */
export interface ListedOffset {
  readonly topic: string;
  readonly partition: number;
  /** The offset; -1 for a timestamp lookup when no record is that recent (as in Kafka). */
  readonly offset: number;
  /** For timestamp lookups, the timestamp of the record at `offset`; otherwise -1. */
  readonly timestampMs: number;
}

function specOf(query: OffsetQuery, field: string): { spec: OffsetSpec; timestampMs: bigint } {
  if (query === "earliest") return { spec: OffsetSpec.EARLIEST, timestampMs: 0n };
  if (query === "latest") return { spec: OffsetSpec.LATEST, timestampMs: 0n };
  return { spec: OffsetSpec.TIMESTAMP, timestampMs: toInt64(query.timestampMs, `${field}.timestampMs`) };
}

/**
 * Looks the offsets up in one ListOffsets call (retried on retriable errors); throws the first
 * per-partition error as a RillError naming the partition.
 */
export async function listOffsets(conn: Connection, lookups: readonly OffsetLookup[]): Promise<ListedOffset[]> {
  const partitions = lookups.map((l, i) => {
    checkInt(l.partition, `lookups[${i}].partition`, 0, 0x7fffffff);
    return { topic: l.topic, partition: l.partition, ...specOf(l.query, `lookups[${i}].query`) };
  });
  if (partitions.length === 0) return [];
  const res = await withRetries(
    () => conn.transport.listOffsets({ partitions }, { timeoutMs: conn.requestTimeoutMs }),
    conn.retry,
    { random: conn.random },
  );
  return res.partitions.map((p) => {
    if (p.error !== undefined) throw fromErrorDetail(p.error, `${p.topic}-${p.partition}`);
    return {
      topic: p.topic,
      partition: p.partition,
      offset: toNumber(p.offset, "offset"),
      timestampMs: toNumber(p.timestampMs, "timestampMs"),
    };
  });
}
