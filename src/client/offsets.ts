/**
 * ListOffsets, shared by Admin and Consumer: where a partition starts, ends, or first reaches a
 * timestamp. Admin asks any broker (`listOffsets`); the Consumer asks each partition's leader
 * (`listLeaderOffsets`), whose high watermark is the latest — a follower's may lag behind it.
 */

import { OffsetSpec } from "../gen/rill/v1/common_pb.ts";
import type { ListOffsetsResponse } from "../gen/rill/v1/fetch_service_pb.ts";
import type { Connection } from "./connection.ts";
import { checkInt, toInt64, toNumber } from "./convert.ts";
import { Errors, RillError } from "../base/errors.ts";
import { fromErrorDetail, isRetriable, isStaleMetadata } from "./errors.ts";
import type { MetadataCache } from "./metadata.ts";
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
  const partitions = requestOf(lookups);
  if (partitions.length === 0) return [];
  const res = await withRetries(() => conn.transport.listOffsets({ partitions }, { timeoutMs: conn.requestTimeoutMs }), conn.retry, {
    random: conn.random,
  });
  return listed(res);
}

/**
 * Looks the offsets up at each partition's leader: one ListOffsets call per leader, in
 * parallel. A routing error (a partition's or a whole call's, `isStaleMetadata`) refreshes the
 * metadata, and the lookup is retried per the client's policy; other per-partition errors throw
 * as RillErrors naming the partition.
 */
export async function listLeaderOffsets(
  conn: Connection,
  metadata: MetadataCache,
  lookups: readonly OffsetLookup[],
): Promise<ListedOffset[]> {
  const partitions = requestOf(lookups);
  if (partitions.length === 0) return [];
  // Learn the leaders of topics not cached yet (an unknown topic is answered per partition below).
  await Promise.all([...new Set(partitions.map((p) => p.topic))].map((t) => metadata.partitionCount(t).catch(() => undefined)));
  const attempt = async (): Promise<ListedOffset[]> => {
    await metadata.settled();
    const byAddress = new Map<string, number[]>();
    partitions.forEach((p, i) => {
      const address = metadata.addressOf(p.topic, p.partition);
      byAddress.set(address, [...(byAddress.get(address) ?? []), i]);
    });
    const out = new Array<ListedOffset>(partitions.length);
    await Promise.all(
      [...byAddress].map(async ([address, indexes]) => {
        const res = await conn.pool.get(address).listOffsets(
          {
            partitions: indexes.map((i) => {
              // The leader epoch the metadata holds (KIP-320): a stale leader answers an error, not its offsets.
              const p = partitions[i]!;
              const epoch = metadata.leaderOf(p.topic, p.partition)?.leaderEpoch ?? -1;
              return epoch >= 0 ? { ...p, currentLeaderEpoch: epoch } : p;
            }),
          },
          { timeoutMs: conn.requestTimeoutMs },
        );
        listed(res).forEach((l, j) => (out[indexes[j]!] = l));
      }),
    );
    return out;
  };
  // An unknown topic gets a few quick tries (a topic just created may not have reached every
  // broker yet), not the whole failover budget of the retry policy.
  let unknownTries = 0;
  return withRetries(attempt, conn.retry, {
    random: conn.random,
    retryIf: (e) => isRetriable(e) && !(e instanceof RillError && e.kind === Errors.UNKNOWN_TOPIC_OR_PARTITION && ++unknownTries > 3),
    onRetry: (e) => {
      if (isStaleMetadata(e)) void metadata.requestRefresh();
    },
  });
}

/** One partition of a ListOffsets request. */
interface PartitionQuery {
  readonly topic: string;
  readonly partition: number;
  readonly spec: OffsetSpec;
  readonly timestampMs: bigint;
}

function requestOf(lookups: readonly OffsetLookup[]): PartitionQuery[] {
  return lookups.map((l, i) => {
    checkInt(l.partition, `lookups[${i}].partition`, 0, 0x7fffffff);
    return { topic: l.topic, partition: l.partition, ...specOf(l.query, `lookups[${i}].query`) };
  });
}

/** The answers, in request order; throws the first per-partition error. */
function listed(res: ListOffsetsResponse): ListedOffset[] {
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
