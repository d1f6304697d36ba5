/**
 * Which partition a record goes to, as Kafka's Java client decides:
 * - an explicit partition wins;
 * - a keyed record goes to `murmur2(key) % partitions` (src/base/murmur2.ts), so a key lands on
 *   the same partition as with Kafka;
 * - a record without a key goes to the topic's "sticky" partition, which changes (at random,
 *   never to the same one when there are several) each time a batch of that partition is sealed
 *   and handed to the sender — so null-key records fill whole batches instead of many small ones.
 */

import { partitionForKey } from "../base/murmur2.ts";
import type { Random } from "../base/random.ts";

/** Keyed and sticky partitioning for one producer. */
export class Partitioner {
  private readonly sticky = new Map<string, number>();

  /** @param random where sticky choices come from (seeded in tests). */
  constructor(private readonly random: Random) {}

  /** The partition for a record of `topic` with `key` (null: sticky), among `partitions`. */
  partition(topic: string, key: Uint8Array | null, partitions: number): number {
    if (key !== null) return partitionForKey(key, partitions);
    let p = this.sticky.get(topic);
    if (p === undefined || p >= partitions) {
      p = this.random.int(partitions);
      this.sticky.set(topic, p);
    }
    return p;
  }

  /** A batch of `topic`/`partition` was sealed: move the topic's sticky partition elsewhere. */
  onBatchSealed(topic: string, partition: number, partitions: number): void {
    if (this.sticky.get(topic) !== partition) return;
    if (partitions <= 1) return;
    const next = this.random.int(partitions - 1);
    this.sticky.set(topic, next >= partition ? next + 1 : next);
  }
}
