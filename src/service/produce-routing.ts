/**
 * Where a produce request's records go, and which broker appends them.
 *
 * - An explicit partition wins; a keyed record goes to Kafka's `murmur2(key) % partitions`, so a
 *   key lands where Kafka's Java client would put it; records without a key share the topic's
 *   sticky partition for the request.
 * - The sticky partition moves on with every request that needs one (round robin). A broker
 *   that forwards prefers partitions it leads, so null-key records are appended here rather
 *   than passed on.
 * - A partition led by another broker is that broker's to append: the request (or its part for
 *   that partition) is forwarded.
 */
import { partitionForKey } from "../base/murmur2.ts";
import type { ReplicaManager } from "../replication/replica-manager.ts";
import type { ProduceRecord } from "./produce-types.ts";

/** The leader of a partition when it is another broker, else null (led here, or unknown). */
export function remoteLeader(rm: ReplicaManager, topic: string, partition: number): number | null {
  const p = rm.image.topics.get(topic)?.partitions[partition];
  if (!p || p.leader < 0 || p.leader === rm.nodeIdOf()) return null;
  return p.leader;
}

/** Each record's partition: `explicit` if given, else murmur2 of its key, else `sticky`. */
export function recordTargets(
  records: readonly ProduceRecord[],
  partitions: number,
  explicit: number | undefined,
  sticky: number,
): number[] {
  return records.map((r) => explicit ?? (r.key !== null ? partitionForKey(r.key, partitions) : sticky));
}

/** The indexes of `targets` grouped by partition, partitions in order of first appearance. */
export function groupByPartition(targets: readonly number[]): Map<number, number[]> {
  const groups = new Map<number, number[]>();
  targets.forEach((p, i) => {
    let g = groups.get(p);
    if (!g) groups.set(p, (g = []));
    g.push(i);
  });
  return groups;
}

/** Per-topic sticky partitions for records that name no partition and carry no key. */
export class StickyPartitions {
  private readonly last = new Map<string, number>();

  /** @param preferLed pick partitions this broker leads when there are any (set when forwarding). */
  constructor(
    private readonly rm: ReplicaManager,
    private readonly preferLed: boolean,
  ) {}

  /** The topic's next sticky partition among `partitions`. */
  next(topic: string, partitions: number): number {
    const prev = this.last.get(topic) ?? -1;
    const led = this.rm.image.topics.get(topic)?.partitions;
    for (let k = 1; k <= partitions; k++) {
      const p = (prev + k) % partitions;
      if (!this.preferLed || led?.[p]?.leader === this.rm.nodeIdOf()) {
        this.last.set(topic, p);
        return p;
      }
    }
    const next = (prev + 1) % partitions;
    this.last.set(topic, next);
    return next;
  }
}
