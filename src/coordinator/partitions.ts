/**
 * Sets of topic partitions in the one canonical form the coordinator stores, compares and
 * writes: topics sorted by name, each with its partitions sorted ascending, no duplicates and no
 * topic with an empty list. Two assignments are equal exactly when their canonical forms are.
 *
 * Topic names never contain ':' (they are `[a-zA-Z0-9._-]+`), so `topic:partition` is an
 * unambiguous key for one partition.
 */

/** Several partitions of one topic (the shape of rill.v1.TopicPartitions). */
export interface TopicPartitions {
  readonly topic: string;
  readonly partitions: readonly number[];
}

/** One partition of one topic. */
export interface TopicPartition {
  readonly topic: string;
  readonly partition: number;
}

/** The key of one partition: `topic:partition`. */
export function tpKey(topic: string, partition: number): string {
  return `${topic}:${partition}`;
}

/** The inverse of tpKey. */
export function parseTpKey(key: string): TopicPartition {
  const i = key.lastIndexOf(":");
  return { topic: key.slice(0, i), partition: Number(key.slice(i + 1)) };
}

/** The canonical form of any list of topic partitions (sorted, deduplicated, no empty topics). */
export function canonical(tps: readonly TopicPartitions[]): TopicPartitions[] {
  const byTopic = new Map<string, Set<number>>();
  for (const tp of tps) {
    let s = byTopic.get(tp.topic);
    if (s === undefined) byTopic.set(tp.topic, (s = new Set()));
    for (const p of tp.partitions) s.add(p);
  }
  return fromTopicMap(byTopic);
}

/** Canonical form of a topic → partitions map. */
export function fromTopicMap(byTopic: ReadonlyMap<string, Iterable<number>>): TopicPartitions[] {
  const out: TopicPartitions[] = [];
  for (const topic of [...byTopic.keys()].sort()) {
    const partitions = [...new Set(byTopic.get(topic))].sort((a, b) => a - b);
    if (partitions.length > 0) out.push({ topic, partitions });
  }
  return out;
}

/** The partition keys of a list. */
export function keysOf(tps: readonly TopicPartitions[]): Set<string> {
  const s = new Set<string>();
  for (const tp of tps) for (const p of tp.partitions) s.add(tpKey(tp.topic, p));
  return s;
}

/** Canonical form of a set of partition keys. */
export function fromKeys(keys: Iterable<string>): TopicPartitions[] {
  const byTopic = new Map<string, number[]>();
  for (const k of keys) {
    const { topic, partition } = parseTpKey(k);
    let list = byTopic.get(topic);
    if (list === undefined) byTopic.set(topic, (list = []));
    list.push(partition);
  }
  return fromTopicMap(byTopic);
}

/** Number of partitions in a list. */
export function countPartitions(tps: readonly TopicPartitions[]): number {
  let n = 0;
  for (const tp of tps) n += tp.partitions.length;
  return n;
}

/** True when two canonical lists hold the same partitions. */
export function samePartitions(a: readonly TopicPartitions[], b: readonly TopicPartitions[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.topic !== y.topic || x.partitions.length !== y.partitions.length) return false;
    for (let j = 0; j < x.partitions.length; j++) if (x.partitions[j] !== y.partitions[j]) return false;
  }
  return true;
}

/** Partitions of `a` that are not in `b`, canonical. */
export function minus(a: readonly TopicPartitions[], b: readonly TopicPartitions[]): TopicPartitions[] {
  const drop = keysOf(b);
  return fromKeys([...keysOf(a)].filter((k) => !drop.has(k)));
}

/** Partitions in both `a` and `b`, canonical. */
export function intersect(a: readonly TopicPartitions[], b: readonly TopicPartitions[]): TopicPartitions[] {
  const keep = keysOf(b);
  return fromKeys([...keysOf(a)].filter((k) => keep.has(k)));
}

/** Partitions in `a` or `b`, canonical. */
export function union(a: readonly TopicPartitions[], b: readonly TopicPartitions[]): TopicPartitions[] {
  return canonical([...a, ...b]);
}

/** True when every partition of `a` is in `b`. */
export function isSubset(a: readonly TopicPartitions[], b: readonly TopicPartitions[]): boolean {
  const inB = keysOf(b);
  for (const k of keysOf(a)) if (!inB.has(k)) return false;
  return true;
}

/** True when `a` and `b` share a partition. */
export function overlaps(a: readonly TopicPartitions[], b: readonly TopicPartitions[]): boolean {
  const inB = keysOf(b);
  for (const k of keysOf(a)) if (inB.has(k)) return true;
  return false;
}

/** Partition keys sorted by topic, then partition number. */
export function sortedTpKeys(keys: Iterable<string>): string[] {
  return [...keys].sort((a, b) => {
    const x = parseTpKey(a);
    const y = parseTpKey(b);
    return x.topic < y.topic ? -1 : x.topic > y.topic ? 1 : x.partition - y.partition;
  });
}
