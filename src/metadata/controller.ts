/**
 * The controller's decisions, as pure functions: given the image and a request, the records to
 * append, or a RillError naming what is wrong. Nothing here writes; the metadata store (the Raft
 * quorum of controller voters, quorum-store.ts) makes the records durable and every node replays
 * them into its image.
 */
import { rillError } from "../base/errors.ts";
import type { Random } from "../base/random.ts";
import { defaultTopicConfig, parseTopicConfig, topicKey, type TopicConfig } from "../config/schema.ts";
import type { MetadataImage } from "./image.ts";
import type { MetadataRecord, PartitionRecord } from "./records.ts";

// The cluster decisions (brokers, fencing, ISR, elections) live in cluster-controller.ts.
export {
  decideAlterPartition,
  decideBrokerHeartbeat,
  decideFenceBroker,
  decidePreferredLeaderElection,
  decideRegisterBroker,
  isActive,
  type AlterPartitionItem,
  type BrokerHeartbeatDecision,
  type BrokerHeartbeatRequest,
  type BrokerHeartbeatResponse,
  type BrokerRegistrationRequest,
  type ElectionResult,
  type PartitionRef,
} from "./cluster-controller.ts";

/** Kafka's limit on topic name length. */
export const TOPIC_NAME_MAX = 249;
/** Partitions one topic may have. */
export const PARTITIONS_MAX = 100_000;

/** Throws INVALID_TOPIC unless `name` is a legal topic name (Kafka's rules). */
export function validateTopicName(name: string, field = "name"): void {
  if (name.length === 0) throw rillError("INVALID_TOPIC", `${field}: topic name is empty`);
  if (name.length > TOPIC_NAME_MAX) throw rillError("INVALID_TOPIC", `${field}: topic name is longer than ${TOPIC_NAME_MAX} characters`);
  if (name === "." || name === "..") throw rillError("INVALID_TOPIC", `${field}: topic name cannot be "." or ".."`);
  if (!/^[a-zA-Z0-9._-]+$/.test(name))
    throw rillError("INVALID_TOPIC", `${field}: topic name "${name}" may only contain ASCII letters, digits, '.', '_' and '-'`);
}

/** A topic to create. */
export interface NewTopic {
  readonly name: string;
  /** Partition count; 0 or absent means the broker default. */
  readonly partitions: number;
  /** Replication factor; 0 or absent means the default (1 on a single node). */
  readonly replicationFactor: number;
  readonly configs: Readonly<Record<string, string>>;
}

/** Topic configuration: the defaults with the topic's overrides. */
export function effectiveConfig(
  overrides: Readonly<Record<string, string>>,
  base: Readonly<TopicConfig> = defaultTopicConfig,
): TopicConfig {
  return parseTopicConfig(overrides, base);
}

/**
 * Records that create `t`, or a RillError. `defaults.brokers` are the brokers that may hold
 * replicas (the unfenced ones); partitions are placed over them by `placeReplicas`, so leaders
 * spread evenly across topics. A placement that passes a broker's `max.partitions` (in
 * `defaults.limits`) is refused with INVALID_PARTITIONS.
 */
export function decideCreateTopic(
  image: MetadataImage,
  t: NewTopic,
  defaults: { partitions: number; brokers: readonly number[]; random: Random; internal?: boolean; limits?: PartitionLimits | undefined },
): MetadataRecord[] {
  validateTopicName(t.name);
  if (t.name.startsWith("__") && !defaults.internal)
    throw rillError("INVALID_TOPIC", `name: topic names starting with "__" are reserved for internal topics`);
  if (image.topics.has(t.name)) throw rillError("TOPIC_ALREADY_EXISTS", `name: topic "${t.name}" already exists`);
  const partitions = t.partitions === 0 ? defaults.partitions : t.partitions;
  if (!Number.isInteger(partitions) || partitions < 1 || partitions > PARTITIONS_MAX) {
    throw rillError("INVALID_PARTITIONS", `partitions: ${t.partitions} is not in [1, ${PARTITIONS_MAX}]`);
  }
  const brokers = [...new Set(defaults.brokers)].sort((a, b) => a - b);
  const rf = t.replicationFactor === 0 ? Math.min(brokers.length, 3) : t.replicationFactor;
  if (!Number.isInteger(rf) || rf < 1 || rf > brokers.length) {
    throw rillError(
      "INVALID_REPLICATION_FACTOR",
      `replication_factor: ${t.replicationFactor} is not in [1, ${brokers.length}] (live brokers: ${brokers.length})`,
    );
  }
  effectiveConfig(t.configs); // throws INVALID_CONFIG naming the key
  const topicId = randomId(defaults.random);
  const records: MetadataRecord[] = [{ type: "topic", v: 1, name: t.name, topicId, configs: { ...t.configs } }];
  const placed = placeReplicas(image, brokers, rf, partitions, defaults.random);
  checkPartitionLimits(image, placed, defaults.limits);
  placed.forEach((replicas, p) => records.push(newPartition(t.name, p, replicas)));
  return records;
}

function newPartition(topic: string, partition: number, replicas: readonly number[]): PartitionRecord {
  return { type: "partition", v: 1, topic, partition, replicas, isr: replicas, leader: replicas[0]!, leaderEpoch: 0, partitionEpoch: 0 };
}

/**
 * Replica lists for `count` new partitions over `brokers` (sorted, ids unique), round-robin:
 * each partition is led by the broker that leads the fewest partitions (those in the image plus
 * those placed so far), ties going to the next broker in ring order after the previous leader,
 * and at random for the first partition; its followers are the next `rf - 1` brokers of the
 * ring. On a fresh cluster this is plain round-robin from a random start; on a busy one it fills
 * the least-loaded brokers first, so successive topics keep leader counts within one of each
 * other. A broker in controlled shutdown is given no leadership while another broker can take it.
 */
export function placeReplicas(image: MetadataImage, brokers: readonly number[], rf: number, count: number, random: Random): number[][] {
  const n = brokers.length;
  const leads = leaderCounts(image, brokers);
  const out: number[][] = [];
  let prev = -1;
  for (let p = 0; p < count; p++) {
    const first = p === 0 ? randomLeastLoaded(brokers, leads, random) : nextLeastLoaded(brokers, leads, prev);
    leads[first]!++;
    const replicas: number[] = [];
    for (let r = 0; r < rf; r++) replicas.push(brokers[(first + r) % n]!);
    out.push(replicas);
    prev = first;
  }
  return out;
}

/**
 * How many partitions each of `brokers` leads in the image, by index into `brokers`; Infinity
 * for a broker in controlled shutdown, so it leads a new partition only if every broker is.
 */
function leaderCounts(image: MetadataImage, brokers: readonly number[]): number[] {
  const index = new Map(brokers.map((b, i) => [b, i]));
  const counts = brokers.map((b) => (image.brokers.get(b)?.inControlledShutdown ? Infinity : 0));
  for (const t of image.topics.values()) {
    for (const p of t.partitions) {
      const i = index.get(p.leader);
      if (i !== undefined) counts[i]!++;
    }
  }
  return counts;
}

/** Index of a broker with the fewest leaders, chosen at random among the ties. */
function randomLeastLoaded(brokers: readonly number[], leads: readonly number[], random: Random): number {
  const min = Math.min(...leads);
  const ties = brokers.map((_, i) => i).filter((i) => leads[i] === min);
  return ties[random.int(ties.length)]!;
}

/** Index of the first broker with the fewest leaders in ring order after index `prev`. */
function nextLeastLoaded(brokers: readonly number[], leads: readonly number[], prev: number): number {
  let best = -1;
  for (let k = 1; k <= brokers.length; k++) {
    const i = (prev + k) % brokers.length;
    if (best === -1 || leads[i]! < leads[best]!) best = i;
  }
  return best;
}

/**
 * `max.partitions` of the brokers whose limit the controller knows: node id -> how many
 * partition replicas it may hold, and why (the text names the key and the open-file limit).
 */
export type PartitionLimits = ReadonlyMap<number, { readonly max: number; readonly why: string }>;

/**
 * Throws INVALID_PARTITIONS naming `max.partitions` if placing `added` (replica lists of new
 * partitions) would give a broker more replicas than its limit: the one in `given`, else the
 * one it registered with (BrokerRecord.maxPartitions).
 */
export function checkPartitionLimits(
  image: MetadataImage,
  added: readonly (readonly number[])[],
  given: PartitionLimits | undefined,
): void {
  const limits = new Map(given ?? []);
  for (const b of image.brokers.values())
    if (b.maxPartitions !== undefined && !limits.has(b.nodeId))
      limits.set(b.nodeId, { max: b.maxPartitions, why: "as the broker registered it" });
  if (limits.size === 0) return;
  const adding = new Map<number, number>();
  for (const replicas of added) for (const b of replicas) if (limits.has(b)) adding.set(b, (adding.get(b) ?? 0) + 1);
  if (adding.size === 0) return;
  const held = new Map<number, number>();
  for (const t of image.topics.values())
    for (const p of t.partitions) for (const b of p.replicas) if (adding.has(b)) held.set(b, (held.get(b) ?? 0) + 1);
  for (const [b, n] of adding) {
    const limit = limits.get(b)!;
    const now = held.get(b) ?? 0;
    if (now + n > limit.max) {
      throw rillError(
        "INVALID_PARTITIONS",
        `partitions: broker ${b} holds ${now} partitions and may hold at most ${limit.max} (max.partitions: ${limit.why}); ${n} more would pass it`,
      );
    }
  }
}

/** Records that delete a topic. */
export function decideDeleteTopic(image: MetadataImage, name: string): MetadataRecord[] {
  const t = image.topics.get(name);
  if (!t) throw rillError("UNKNOWN_TOPIC_OR_PARTITION", `name: topic "${name}" does not exist`);
  return [{ type: "remove-topic", v: 1, name, topicId: t.topicId }];
}

/**
 * Records that grow a topic to `count` partitions (never shrink, as Kafka), placed over `brokers`
 * (the unfenced ones) by `placeReplicas`.
 */
export function decideCreatePartitions(
  image: MetadataImage,
  name: string,
  count: number,
  brokers: readonly number[],
  random: Random,
  limits?: PartitionLimits,
): MetadataRecord[] {
  const t = image.topics.get(name);
  if (!t) throw rillError("UNKNOWN_TOPIC_OR_PARTITION", `topic: topic "${name}" does not exist`);
  const current = t.partitions.length;
  if (!Number.isInteger(count) || count <= current || count > PARTITIONS_MAX) {
    throw rillError("INVALID_PARTITIONS", `count: ${count} must be larger than the current ${current} and at most ${PARTITIONS_MAX}`);
  }
  const rf = t.partitions[0]?.replicas.length ?? 1;
  const sorted = [...new Set(brokers)].sort((a, b) => a - b);
  if (rf > sorted.length) throw rillError("INVALID_REPLICATION_FACTOR", `topic ${name} needs ${rf} brokers, ${sorted.length} are live`);
  const placed = placeReplicas(image, sorted, rf, count - current, random);
  checkPartitionLimits(image, placed, limits);
  return placed.map((replicas, i) => newPartition(name, current + i, replicas));
}

/**
 * Records that change a topic's config overrides: `set` adds or replaces keys, `remove` drops
 * them (back to the default). The result is validated as a whole.
 */
export function decideAlterConfigs(
  image: MetadataImage,
  name: string,
  set: Readonly<Record<string, string>>,
  remove: readonly string[],
): MetadataRecord[] {
  const t = image.topics.get(name);
  if (!t) throw rillError("UNKNOWN_TOPIC_OR_PARTITION", `topic: topic "${name}" does not exist`);
  const next: Record<string, string> = { ...t.configs, ...set };
  for (const k of remove) {
    if (!topicKey(k)) throw rillError("INVALID_CONFIG", `${k}: unknown topic config key`);
    delete next[k];
  }
  effectiveConfig(next);
  return [{ type: "config", v: 1, topic: name, configs: next }];
}

/** 128 random bits as 32 hex digits. */
function randomId(random: Random): string {
  let s = "";
  for (let i = 0; i < 4; i++) s += (random.int(2 ** 32) >>> 0).toString(16).padStart(8, "0");
  return s;
}

/** Largest producer epoch (int16), as Kafka. */
export const PRODUCER_EPOCH_MAX = 0x7fff;

/**
 * InitProducerId: a new producer id at epoch 0; or, for a known `transactionalId` or a caller
 * that names its current `producerId`/`producerEpoch`, the same id at the next epoch, which
 * fences every older instance. An exhausted epoch gets a fresh id.
 */
export function decideInitProducerId(
  image: MetadataImage,
  req: { transactionalId: string; producerId?: number | undefined; producerEpoch: number },
): MetadataRecord[] {
  if (req.transactionalId.length > 249) throw rillError("INVALID_REQUEST", "transactional_id: longer than 249 characters");
  let current = req.transactionalId !== "" ? image.transactionalIds.get(req.transactionalId) : undefined;
  if (req.producerId !== undefined) {
    const issued = image.producerEpochs.get(req.producerId);
    if (issued === undefined) throw rillError("UNKNOWN_PRODUCER_ID", `producer_id: ${req.producerId} was never issued`);
    if (current !== undefined && current !== req.producerId)
      throw rillError("INVALID_PRODUCER_EPOCH", `producer_id: ${req.producerId} does not own transactional_id "${req.transactionalId}"`);
    if (req.producerEpoch !== issued)
      throw rillError(
        "INVALID_PRODUCER_EPOCH",
        `producer_epoch: ${req.producerEpoch} is not the current epoch ${issued} of producer ${req.producerId}`,
      );
    current = req.producerId;
  }
  const fresh = (): MetadataRecord[] => [
    { type: "producer-epoch", v: 1, producerId: image.nextProducerId, producerEpoch: 0, transactionalId: req.transactionalId },
  ];
  if (current === undefined) return fresh();
  const epoch = image.producerEpochs.get(current)! + 1;
  if (epoch > PRODUCER_EPOCH_MAX) return fresh();
  return [{ type: "producer-epoch", v: 1, producerId: current, producerEpoch: epoch, transactionalId: req.transactionalId }];
}
