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
import { cordonedNote, placementPool } from "./cordon.ts";

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
// Partition reassignment (issue 21, KIP-455) lives in reassignment.ts.
export {
  decideAlterReassignment,
  decideCompleteReassignments,
  isReassigning,
  listReassignments,
  originalReplicas,
  targetReplicas,
  type OngoingReassignment,
  type ReassignmentRequest,
} from "./reassignment.ts";

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
 * Records that create `t`, or a RillError. `defaults.brokers` are the live brokers (the unfenced
 * ones); partitions are placed over those not cordoned (issue 21) by `placeReplicas`, so leaders
 * spread evenly across topics, and no broker is given more than its `max.partitions` (in
 * `defaults.limits`, else as it registered): INVALID_PARTITIONS only when no placement fits.
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
  // cordoned brokers (issue 21): they count for the default replication factor, but take no replica
  const { pool: brokers, cordoned } = placementPool(image, defaults.brokers);
  const live = brokers.length + cordoned.length;
  const rf = t.replicationFactor === 0 ? Math.min(live, 3) : t.replicationFactor;
  if (!Number.isInteger(rf) || rf < 1 || rf > brokers.length) {
    throw rillError(
      "INVALID_REPLICATION_FACTOR",
      cordoned.length > 0 && Number.isInteger(rf) && rf >= 1 && rf <= live
        ? `replication_factor: ${rf} needs ${rf} brokers that take new replicas, and ${brokers.length} of the ${live} live brokers do${cordonedNote(cordoned)}`
        : `replication_factor: ${t.replicationFactor} is not in [1, ${brokers.length}] (live brokers: ${live}${cordonedNote(cordoned)})`,
    );
  }
  effectiveConfig(t.configs); // throws INVALID_CONFIG naming the key
  const topicId = randomId(defaults.random);
  const records: MetadataRecord[] = [{ type: "topic", v: 1, name: t.name, topicId, configs: { ...t.configs } }];
  const placed = placeWithinLimits(image, brokers, rf, partitions, defaults.random, defaults.limits);
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
 *
 * `room[i]` (default: unbounded) is how many more replicas `brokers[i]` may hold. A broker is
 * passed over, as leader or follower, when taking it would leave the partitions still to place
 * no room (see `SlotRule`); so where the plain round-robin fits it is what comes out, and where
 * it does not the replicas move to the next brokers that have room. The caller checks first that
 * some placement fits (`roomFor`); this one then never fails.
 *
 * `racks[i]` (default: none) is `brokers[i]`'s rack: a partition's followers are then first the
 * next brokers of the ring in racks it has no replica in yet, and only then the next ones in any
 * rack, so with `rf` racks or more every replica of a partition is in its own rack. The caller
 * orders the ring with `rackAlternated` so that successive leaders change racks too.
 */
export function placeReplicas(
  image: MetadataImage,
  brokers: readonly number[],
  rf: number,
  count: number,
  random: Random,
  room?: readonly number[],
  racks?: readonly string[],
): number[][] {
  const n = brokers.length;
  const leads = leaderCounts(image, brokers);
  const left = room ? [...room] : brokers.map(() => Infinity);
  const out: number[][] = [];
  let prev = -1;
  for (let p = 0; p < count; p++) {
    const rule = new SlotRule(left, count - p, rf);
    const ok = (i: number) => rule.fits(i);
    const first = p === 0 ? randomLeastLoaded(brokers, leads, random, ok) : nextLeastLoaded(brokers, leads, prev, ok);
    if (first === -1) throw new Error(`placement: no broker has room for partition ${p} of ${count} (a placement was checked to fit)`);
    rule.take(first);
    leads[first]!++;
    const replicas: number[] = [brokers[first]!];
    // With racks: first the next brokers of racks this partition has no replica in yet, then any.
    const usedRacks = new Set([racks?.[first] ?? ""]);
    for (const spread of racks ? [true, false] : [false]) {
      for (let k = 1; k < n && replicas.length < rf; k++) {
        const i = (first + k) % n;
        if (spread && usedRacks.has(racks![i]!)) continue;
        if (rule.fits(i)) {
          rule.take(i);
          replicas.push(brokers[i]!);
          usedRacks.add(racks?.[i] ?? "");
        }
      }
    }
    if (replicas.length < rf) throw new Error(`placement: partition ${p} found ${replicas.length} of ${rf} brokers with room`);
    for (const b of replicas) left[brokers.indexOf(b)]!--;
    out.push(replicas);
    prev = first;
  }
  return out;
}

/**
 * Which brokers one partition may take, when `r` partitions (this one included) still need `rf`
 * replicas each and broker i has room for `left[i]` more. `r` partitions of `rf` distinct brokers
 * fit exactly when the sum over brokers of min(left, r) is at least rf * r (a broker holds at most
 * one replica of a partition). After this partition, a broker with left >= r keeps min(left - 1 or
 * left, r - 1) = r - 1 whether or not it is taken, while a "short" one (0 < left < r) loses one
 * when taken: so at most `slack` short brokers may be taken, and a broker fits when, with it, the
 * slots still open can be filled within that.
 */
class SlotRule {
  private readonly slack: number;
  private readonly taken = new Set<number>();
  /** Brokers with room, long (left >= r) and short, not taken yet. */
  private long = 0;
  private short = 0;
  private shortTaken = 0;

  constructor(
    private readonly left: readonly number[],
    private readonly r: number,
    private readonly rf: number,
  ) {
    let after = 0;
    for (const l of left) {
      after += Math.min(l, r - 1);
      if (l >= r) this.long++;
      else if (l > 0) this.short++;
    }
    this.slack = after - rf * (r - 1);
  }

  private isShort(i: number): boolean {
    return this.left[i]! < this.r;
  }

  fits(i: number): boolean {
    if (this.taken.has(i) || this.left[i]! <= 0) return false;
    const short = this.isShort(i);
    const shortTaken = this.shortTaken + (short ? 1 : 0);
    if (shortTaken > this.slack) return false;
    const open = this.rf - this.taken.size - 1;
    return open <= this.long - (short ? 0 : 1) + Math.min(this.slack - shortTaken, this.short - (short ? 1 : 0));
  }

  take(i: number): void {
    this.taken.add(i);
    if (this.isShort(i)) {
      this.shortTaken++;
      this.short--;
    } else this.long--;
  }
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

/**
 * Index of a broker with the fewest leaders, chosen at random among the ties; when the one drawn
 * is not `ok`, the first `ok` one with the fewest leaders in ring order after it (so the draw, and
 * with it the placement, is the same as without `ok` whenever the broker drawn fits); -1 if none is ok.
 */
function randomLeastLoaded(brokers: readonly number[], leads: readonly number[], random: Random, ok: (i: number) => boolean): number {
  const min = Math.min(...leads);
  const ties = brokers.map((_, i) => i).filter((i) => leads[i] === min);
  const drawn = ties[random.int(ties.length)]!;
  return ok(drawn) ? drawn : nextLeastLoaded(brokers, leads, drawn, ok);
}

/** Index of the first broker (among those `ok`) with the fewest leaders in ring order after index `prev`; -1 if none is ok. */
function nextLeastLoaded(brokers: readonly number[], leads: readonly number[], prev: number, ok: (i: number) => boolean): number {
  let best = -1;
  for (let k = 1; k <= brokers.length; k++) {
    const i = (prev + k) % brokers.length;
    if (ok(i) && (best === -1 || leads[i]! < leads[best]!)) best = i;
  }
  return best;
}

/**
 * `placeReplicas` within the brokers' `max.partitions` (`given`, else as each registered), or
 * INVALID_PARTITIONS naming every broker with its count and limit when no placement of `count`
 * partitions of `rf` distinct brokers fits.
 */
export function placeWithinLimits(
  image: MetadataImage,
  unordered: readonly number[],
  rf: number,
  count: number,
  random: Random,
  given: PartitionLimits | undefined,
): number[][] {
  const ring = rackAlternated(image, unordered);
  const brokers = ring.brokers;
  const limits = knownLimits(image, given);
  if (limits.size === 0) return placeReplicas(image, brokers, rf, count, random, undefined, ring.racks);
  const held = replicaCounts(image);
  const room = brokers.map((b) => {
    const limit = limits.get(b);
    return limit === undefined ? Infinity : Math.max(0, limit.max - (held.get(b) ?? 0));
  });
  let fits = 0;
  for (const l of room) fits += Math.min(l, count);
  if (fits < rf * count) {
    const each = brokers.map((b) => {
      const limit = limits.get(b);
      const now = held.get(b) ?? 0;
      return limit === undefined
        ? `broker ${b} holds ${now} partitions (no limit known)`
        : `broker ${b} holds ${now} partitions and may hold at most ${limit.max} (max.partitions: ${limit.why})`;
    });
    throw rillError(
      "INVALID_PARTITIONS",
      `partitions: ${count} new partitions with replication factor ${rf} need ${rf * count} replicas, at most one per broker per partition, ` +
        `and the brokers have room for ${fits} of them: ${each.join("; ")}${cordonedNote([...image.cordoned].sort((a, b) => a - b))}`,
    );
  }
  const placed = placeReplicas(image, brokers, rf, count, random, room, ring.racks);
  checkPartitionLimits(image, placed, given);
  return placed;
}

/**
 * `brokers` (sorted) as a ring that alternates racks, as Kafka's rack-aware assignment orders
 * it: the racks sorted by name (a broker with none counts as rack ""), each rack's brokers by id,
 * then the first broker of each rack, the second of each, and so on — with the racks of that
 * order, for `placeReplicas`. When no broker has a rack, `brokers` as they are and no racks.
 */
export function rackAlternated(
  image: MetadataImage,
  brokers: readonly number[],
): { brokers: readonly number[]; racks?: readonly string[] } {
  const rackOf = (b: number): string => image.brokers.get(b)?.rack ?? "";
  if (brokers.every((b) => rackOf(b) === "")) return { brokers };
  const byRack = new Map<string, number[]>();
  for (const b of brokers) {
    const list = byRack.get(rackOf(b));
    if (list) list.push(b);
    else byRack.set(rackOf(b), [b]);
  }
  const groups = [...byRack.keys()].sort().map((r) => byRack.get(r)!.sort((x, y) => x - y));
  const out: number[] = [];
  for (let k = 0; out.length < brokers.length; k++) for (const g of groups) if (k < g.length) out.push(g[k]!);
  return { brokers: out, racks: out.map(rackOf) };
}

/** The limits in `given`, and for brokers not in it the one each registered with. */
function knownLimits(
  image: MetadataImage,
  given: PartitionLimits | undefined,
): Map<number, { readonly max: number; readonly why: string }> {
  const limits = new Map(given ?? []);
  for (const b of image.brokers.values())
    if (b.maxPartitions !== undefined && !limits.has(b.nodeId))
      limits.set(b.nodeId, { max: b.maxPartitions, why: "as the broker registered it" });
  return limits;
}

/** Node id -> partition replicas it holds in the image. */
function replicaCounts(image: MetadataImage): Map<number, number> {
  const held = new Map<number, number>();
  for (const t of image.topics.values()) for (const p of t.partitions) for (const b of p.replicas) held.set(b, (held.get(b) ?? 0) + 1);
  return held;
}

/**
 * `max.partitions` of the brokers whose limit the controller knows: node id -> how many
 * partition replicas it may hold, and why (the text names the key and the open-file limit).
 */
export type PartitionLimits = ReadonlyMap<number, { readonly max: number; readonly why: string }>;

/**
 * Throws INVALID_PARTITIONS naming `max.partitions` if placing `added` (replica lists of new
 * partitions, as given: an explicit assignment naming a full broker is refused, not moved) would
 * give a broker more replicas than its limit: the one in `given`, else the one it registered
 * with (BrokerRecord.maxPartitions).
 */
export function checkPartitionLimits(
  image: MetadataImage,
  added: readonly (readonly number[])[],
  given: PartitionLimits | undefined,
): void {
  const limits = knownLimits(image, given);
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
 * (the unfenced ones) less the cordoned ones (issue 21) by `placeReplicas`, within every broker's
 * `max.partitions`.
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
  // cordoned brokers (issue 21) take no new replica
  const { pool: sorted, cordoned } = placementPool(image, brokers);
  if (rf > sorted.length)
    throw rillError(
      "INVALID_REPLICATION_FACTOR",
      cordoned.length > 0
        ? `topic ${name} needs ${rf} brokers that take new replicas, and ${sorted.length} of the ${sorted.length + cordoned.length} live brokers do${cordonedNote(cordoned)}`
        : `topic ${name} needs ${rf} brokers, ${sorted.length} are live`,
    );
  const placed = placeWithinLimits(image, sorted, rf, count - current, random, limits);
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
  req: { transactionalId: string; producerId?: number | undefined; producerEpoch: number; epochAtLeast?: number | undefined },
): MetadataRecord[] {
  if (req.transactionalId.length > 249) throw rillError("INVALID_REQUEST", "transactional_id: longer than 249 characters");
  if (req.epochAtLeast !== undefined) return decideTransactionalProducerId(image, req.transactionalId, req.epochAtLeast);
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

/**
 * For a transaction coordinator (issue 17), which bumps its producers' epochs itself between two
 * InitProducerIds: `transactionalId`'s producer id at max(issued + 1, `epochAtLeast`), or a fresh
 * id at epoch 0 when that passes PRODUCER_EPOCH_MAX or the id has none yet.
 */
function decideTransactionalProducerId(image: MetadataImage, transactionalId: string, epochAtLeast: number): MetadataRecord[] {
  if (transactionalId === "") throw rillError("INVALID_REQUEST", "transactional_id: needed with epoch_at_least");
  const current = image.transactionalIds.get(transactionalId);
  const epoch = current === undefined ? PRODUCER_EPOCH_MAX + 1 : Math.max(image.producerEpochs.get(current)! + 1, epochAtLeast);
  if (epoch > PRODUCER_EPOCH_MAX)
    return [{ type: "producer-epoch", v: 1, producerId: image.nextProducerId, producerEpoch: 0, transactionalId }];
  return [{ type: "producer-epoch", v: 1, producerId: current!, producerEpoch: epoch, transactionalId }];
}
