/**
 * The client's view of topic metadata: partition counts, asked of the broker with
 * DescribeTopics and cached. A producer refreshes a topic (`invalidate`) when the broker answers
 * UNKNOWN_TOPIC_OR_PARTITION, or when a record names a partition beyond the cached count (the
 * topic may have grown).
 *
 * Invariants: one lookup per topic at a time (concurrent askers share it); a failed lookup is
 * not cached; an unknown topic fails at once (no retries: the SDK does not wait for topics to
 * appear), connection errors are retried with the client's policy.
 */

import { Errors, RillError } from "../base/errors.ts";
import type { Connection } from "./connection.ts";
import { fromErrorDetail, isRetriable } from "./errors.ts";
import { withRetries } from "./retry.ts";

/** Partition counts of topics, cached. */
export class MetadataCache {
  private readonly counts = new Map<string, number>();
  private readonly lookups = new Map<string, Promise<number>>();

  /** @param conn where to ask and how to retry. */
  constructor(private readonly conn: Connection) {}

  /** The cached partition count of `topic`, if any (no I/O). */
  cachedPartitionCount(topic: string): number | undefined {
    return this.counts.get(topic);
  }

  /** The partition count of `topic`, from the cache or the broker. */
  partitionCount(topic: string): Promise<number> {
    const cached = this.counts.get(topic);
    if (cached !== undefined) return Promise.resolve(cached);
    let lookup = this.lookups.get(topic);
    if (lookup === undefined) {
      lookup = this.lookup(topic).finally(() => this.lookups.delete(topic));
      this.lookups.set(topic, lookup);
    }
    return lookup;
  }

  /** Forgets `topic`, so the next `partitionCount` asks the broker. */
  invalidate(topic: string): void {
    this.counts.delete(topic);
  }

  private async lookup(topic: string): Promise<number> {
    const { transport, retry, random, requestTimeoutMs } = this.conn;
    const unknownTopic = (e: unknown): boolean => e instanceof RillError && e.kind === Errors.UNKNOWN_TOPIC_OR_PARTITION;
    const count = await withRetries(async () => {
      const res = await transport.describeTopics({ topics: [topic], excludeConfigs: true }, { timeoutMs: requestTimeoutMs });
      const t = res.topics.find((x) => x.name === topic);
      if (t === undefined) throw new RillError(Errors.UNKNOWN_TOPIC_OR_PARTITION, `topic "${topic}" does not exist`);
      if (t.error !== undefined) throw fromErrorDetail(t.error, `topic "${topic}"`);
      if (t.partitions.length === 0) throw new RillError(Errors.LEADER_NOT_AVAILABLE, `topic "${topic}" has no partitions yet`);
      return t.partitions.length;
    }, retry, { random, retryIf: (e) => !unknownTopic(e) && isRetriable(e) });
    this.counts.set(topic, count);
    return count;
  }
}
