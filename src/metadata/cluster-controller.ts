/**
 * The controller's decisions for a cluster of brokers (the KRaft model), as pure functions:
 * broker registration and heartbeats, fencing, ISR changes (AlterPartition) and leader
 * elections. Each takes the image and a request and returns the records to append, or throws a
 * RillError naming the field at fault; none changes the image. The caller (the active
 * controller) commits the records, which replay into the image on every node.
 *
 * Vocabulary:
 * - A broker's *epoch* is the metadata offset of its latest registration; requests carry it so
 *   a restarted or superseded process is told STALE_BROKER_EPOCH.
 * - An *active* broker is registered, unfenced and not in controlled shutdown: only active
 *   brokers are elected leader or added to an ISR.
 * - Every partition change bumps the partition epoch; a change of leader also bumps the leader
 *   epoch. Leader -1 means leaderless.
 *
 * Invariants the decisions keep: leader ∈ ISR ⊆ replicas (or leader = -1); a fenced broker leads
 * nothing; epochs never decrease.
 */
import { rillError, type RillError } from "../base/errors.ts";
import { parseTopicConfig } from "../config/schema.ts";
import type { BrokerState, MetadataImage, PartitionState, TopicState } from "./image.ts";
import { NO_LEADER, type MetadataRecord, type PartitionChangeRecord } from "./records.ts";
import { withCompletion } from "./reassignment.ts";

/** A RegisterBroker request. */
export interface BrokerRegistrationRequest {
  readonly nodeId: number;
  /** Random id of the broker process, new on every start. */
  readonly incarnationId: string;
  readonly address: string;
  readonly rack: string;
  readonly roles: readonly string[];
  /** The broker's effective `max.partitions` (its open-file limit lowers it); absent: unknown. */
  readonly maxPartitions?: number;
  /** The broker's internal listener; absent or "": none. */
  readonly internalAddress?: string;
  /** The broker's Kafka listener; absent or "": none. */
  readonly kafkaAddress?: string;
  /**
   * KIP-966: the broker's previous process may have lost writes it acknowledged (it did not stop
   * cleanly and the machine restarted since). Absent: false.
   */
  readonly uncleanShutdown?: boolean;
  /**
   * The incarnation id of the last process on the broker's data dir that registered. When it is
   * the registered one, that process is gone (the data dir's lock): the registration is replaced
   * at once, even while its session lasts. Absent: unknown.
   */
  readonly previousIncarnationId?: string;
}

/** How the decisions that change ISRs treat eligible leader replicas (KIP-966, issue 21). */
export interface ElrOptions {
  /** `eligible.leader.replicas.enable`; default true. */
  readonly eligibleLeaderReplicas?: boolean;
}

/** A BrokerHeartbeat request. */
export interface BrokerHeartbeatRequest {
  readonly nodeId: number;
  readonly brokerEpoch: number;
  /** The offset of the newest metadata record the broker has applied. */
  readonly currentMetadataOffset: number;
  /** The broker asks to be fenced (it cannot serve, e.g. its log dirs failed). */
  readonly wantFence: boolean;
  /** The broker asks for a controlled shutdown. */
  readonly wantShutDown: boolean;
}

/** What the controller answers a heartbeat. */
export interface BrokerHeartbeatResponse {
  /** The broker has applied the metadata log up to its own registration. */
  readonly isCaughtUp: boolean;
  /** Whether the broker is fenced once the decision's records are applied. */
  readonly isFenced: boolean;
  /** The broker may stop now: it leads no partition. */
  readonly shouldShutDown: boolean;
}

/** A heartbeat's decision. */
export interface BrokerHeartbeatDecision {
  readonly records: MetadataRecord[];
  readonly response: BrokerHeartbeatResponse;
}

/** One partition of an AlterPartition request, sent by its leader. */
export interface AlterPartitionItem {
  readonly topic: string;
  readonly partition: number;
  /** The leader epoch the leader is at. */
  readonly leaderEpoch: number;
  /** The partition epoch the leader's ISR view is based on. */
  readonly partitionEpoch: number;
  readonly newIsr: readonly number[];
  /** By position in newIsr: the broker epoch that member was caught up under (KIP-903); -1 or absent: not checked. */
  readonly newIsrBrokerEpochs?: readonly number[];
}

/** A partition named in a request. */
export interface PartitionRef {
  readonly topic: string;
  readonly partition: number;
}

/** The outcome of one partition's election: `error` null when its leader changes. */
export interface ElectionResult extends PartitionRef {
  readonly error: RillError | null;
}

/**
 * RegisterBroker. The same incarnation registering again gets [] (the caller answers the
 * broker's existing epoch). A different incarnation of a node id whose broker is unfenced and
 * `isAlive` (its session has not expired) is DUPLICATE_BROKER_REGISTRATION, unless the new one
 * names it as its data dir's previous process (`previousIncarnationId`). Otherwise one
 * `broker` record, fenced until the broker catches up and heartbeats; if the old registration was
 * still unfenced, the partitions it led move first, as if it had been fenced.
 */
export function decideRegisterBroker(
  image: MetadataImage,
  req: BrokerRegistrationRequest,
  isAlive: (nodeId: number) => boolean,
  elrOpts: ElrOptions = {},
): MetadataRecord[] {
  if (!Number.isInteger(req.nodeId) || req.nodeId < 0)
    throw rillError("INVALID_REQUEST", `node_id: ${req.nodeId} is not a non-negative integer`);
  if (req.incarnationId === "") throw rillError("INVALID_REQUEST", "incarnation_id: empty");
  if (req.address === "") throw rillError("INVALID_REQUEST", "address: empty");
  const old = image.brokers.get(req.nodeId);
  if (old?.incarnationId === req.incarnationId) return [];
  // The same data dir's next process (it holds the dir's lock, so the registered one is gone)
  // replaces it at once: otherwise its old registration stays in ISRs and electable, though the
  // restart may have lost writes, until the session lapses (cluster-sim seeds 1335 and 6119).
  const replacesOwnPrevious =
    old !== undefined && req.previousIncarnationId !== undefined && req.previousIncarnationId === old.incarnationId;
  if (old && !old.fenced && isAlive(req.nodeId) && !replacesOwnPrevious) {
    throw rillError(
      "DUPLICATE_BROKER_REGISTRATION",
      `node_id: broker ${req.nodeId} is registered by another live process (incarnation ${old.incarnationId || "unknown"})`,
    );
  }
  // KIP-966: after an unclean shutdown the broker leaves every ISR and ELR (elrOf, uncleanShutdownChanges).
  const unclean = old !== undefined && req.uncleanShutdown === true && elrEnabled(elrOpts) ? req.nodeId : null;
  const moves = old && !old.fenced ? lossChanges(image, req.nodeId, true, elrOpts, unclean) : [];
  if (unclean !== null) moves.push(...uncleanShutdownChanges(image, unclean, moves));
  return [
    ...moves,
    {
      type: "broker",
      v: 1,
      nodeId: req.nodeId,
      address: req.address,
      roles: [...req.roles],
      fenced: true,
      incarnationId: req.incarnationId,
      rack: req.rack,
      ...(req.maxPartitions !== undefined ? { maxPartitions: req.maxPartitions } : {}),
      ...(req.internalAddress ? { internalAddress: req.internalAddress } : {}),
      ...(req.kafkaAddress ? { kafkaAddress: req.kafkaAddress } : {}),
      ...(req.uncleanShutdown ? { uncleanShutdown: true } : {}),
    },
  ];
}

/**
 * BrokerHeartbeat. The broker is caught up once `currentMetadataOffset` reaches its
 * registration (`opts.registeredOffset`, default its epoch) and the record that last fenced it
 * (`fencedOffset`): a broker whose session expired while it was cut off may still lead, in its
 * lagging image, the partitions that fencing moved away, so it is unfenced only once its image
 * holds those moves (KIP-631: only a broker whose metadata is current is unfenced; Kafka checks
 * the registration only; cluster-sim seed 6223). In order of precedence:
 * - `wantShutDown`: controlled shutdown (see `controlledShutdown`);
 * - `wantFence` on an unfenced broker: fenced as by decideFenceBroker;
 * - a fenced, caught-up broker not in controlled shutdown: unfenced, and it leads the
 *   leaderless partitions it can (see `unfenceChanges`).
 * Unknown node: BROKER_ID_NOT_REGISTERED; an epoch other than the current: STALE_BROKER_EPOCH.
 */
export function decideBrokerHeartbeat(
  image: MetadataImage,
  req: BrokerHeartbeatRequest,
  opts: { readonly registeredOffset?: number | undefined } & ElrOptions = {},
): BrokerHeartbeatDecision {
  const b = registered(image, req.nodeId);
  if (req.brokerEpoch !== b.epoch)
    throw rillError("STALE_BROKER_EPOCH", `broker_epoch: ${req.brokerEpoch} is not broker ${b.nodeId}'s current epoch ${b.epoch}`);
  const isCaughtUp = req.currentMetadataOffset >= Math.max(opts.registeredOffset ?? b.epoch, b.fencedOffset);
  if (req.wantShutDown) return controlledShutdown(image, b, isCaughtUp, opts);
  if (req.wantFence) {
    return { records: b.fenced ? [] : fenceRecords(image, b, opts), response: { isCaughtUp, isFenced: true, shouldShutDown: false } };
  }
  if (b.fenced && isCaughtUp && !b.inControlledShutdown) {
    const records: MetadataRecord[] = [
      { type: "broker-fence", v: 1, nodeId: b.nodeId, brokerEpoch: b.epoch, fenced: false },
      ...unfenceChanges(image, b.nodeId, opts),
    ];
    return { records, response: { isCaughtUp, isFenced: false, shouldShutDown: false } };
  }
  return { records: [], response: { isCaughtUp, isFenced: b.fenced, shouldShutDown: false } };
}

/**
 * The broker's session expired: `broker-fence` true, and every partition it leads or is in the
 * ISR of changes as `lossChanges` says (unclean election where the topic enables it). [] if it
 * is fenced already; BROKER_ID_NOT_REGISTERED for an unknown node.
 */
export function decideFenceBroker(image: MetadataImage, nodeId: number, elrOpts: ElrOptions = {}): MetadataRecord[] {
  const b = registered(image, nodeId);
  return b.fenced ? [] : fenceRecords(image, b, elrOpts);
}

/**
 * AlterPartition from a partition's leader: the ISR becomes `p.newIsr` (partition epoch + 1,
 * leader epoch unchanged), or [] when it already is. Rejected, in this order:
 * STALE_BROKER_EPOCH (unknown node or not its current epoch), UNKNOWN_TOPIC_OR_PARTITION,
 * NOT_LEADER_OR_FOLLOWER (`nodeId` does not lead it), FENCED_LEADER_EPOCH (`leaderEpoch` not
 * the current), INVALID_UPDATE_VERSION (`partitionEpoch` not the current), INVALID_REQUEST
 * (`newIsr` lacks the leader, repeats a member or names a non-replica), INELIGIBLE_REPLICA (a
 * member being added is not active: unregistered, fenced or in controlled shutdown; or it was
 * caught up under a broker epoch that is not its broker's current one, KIP-903).
 */
export function decideAlterPartition(
  image: MetadataImage,
  nodeId: number,
  brokerEpoch: number,
  p: AlterPartitionItem,
  elrOpts: ElrOptions = {},
): MetadataRecord[] {
  const b = image.brokers.get(nodeId);
  if (!b || b.epoch !== brokerEpoch)
    throw rillError(
      "STALE_BROKER_EPOCH",
      `broker_epoch: ${brokerEpoch} is not the current epoch of broker ${nodeId} (${b ? b.epoch : "not registered"})`,
    );
  const name = `${p.topic}-${p.partition}`;
  const state = image.topics.get(p.topic)?.partitions[p.partition];
  if (!state) throw rillError("UNKNOWN_TOPIC_OR_PARTITION", `partition: ${name} does not exist`);
  if (state.leader !== nodeId)
    throw rillError("NOT_LEADER_OR_FOLLOWER", `node_id: broker ${nodeId} does not lead ${name} (leader: ${state.leader})`);
  if (p.leaderEpoch !== state.leaderEpoch)
    throw rillError("FENCED_LEADER_EPOCH", `leader_epoch: ${p.leaderEpoch} is not ${name}'s current leader epoch ${state.leaderEpoch}`);
  if (p.partitionEpoch !== state.partitionEpoch)
    throw rillError(
      "INVALID_UPDATE_VERSION",
      `partition_epoch: ${p.partitionEpoch} is not ${name}'s current partition epoch ${state.partitionEpoch}`,
    );
  validateNewIsr(name, state, p.newIsr);
  p.newIsr.forEach((r, i) => {
    if (state.isr.includes(r)) return;
    if (!isActive(image, r))
      throw rillError("INELIGIBLE_REPLICA", `new_isr: replica ${r} of ${name} is ${whyInactive(image, r)} and may not join the ISR`);
    const caughtUpAs = p.newIsrBrokerEpochs?.[i] ?? -1;
    const current = image.brokers.get(r)!.epoch;
    if (caughtUpAs >= 0 && caughtUpAs !== current)
      throw rillError(
        "INELIGIBLE_REPLICA",
        `new_isr_broker_epochs: replica ${r} of ${name} caught up as broker epoch ${caughtUpAs}, not its current epoch ${current}, and may not join the ISR`,
      );
  });
  if (sameList(p.newIsr, state.isr)) return [];
  const t = image.topics.get(p.topic)!;
  // reassignment (issue 21): the change that brings the last target replica into the ISR completes it
  return [
    withCompletion(
      image,
      state,
      change(p.topic, p.partition, state, state.leader, [...p.newIsr], elrOf(t, state, p.newIsr, elrOpts, null)),
    ),
  ];
}

/**
 * Preferred leader election: each partition whose leader is not its first replica, while that
 * replica is active and in the ISR, gets it as leader. Without `partitions`, every partition
 * that can is elected and `results` lists those; with them, each named partition gets a result:
 * null, UNKNOWN_TOPIC_OR_PARTITION, ELECTION_NOT_NEEDED (already led by its preferred replica)
 * or PREFERRED_LEADER_NOT_AVAILABLE. A partition named twice counts once.
 */
export function decidePreferredLeaderElection(
  image: MetadataImage,
  partitions?: readonly PartitionRef[],
): { records: MetadataRecord[]; results: ElectionResult[] } {
  const records: MetadataRecord[] = [];
  const results: ElectionResult[] = [];
  if (partitions === undefined) {
    for (const t of image.topics.values()) {
      t.partitions.forEach((state, partition) => {
        if (preferredElectionError(image, t.name, partition, state) !== null) return;
        records.push(change(t.name, partition, state, state.replicas[0]!, state.isr));
        results.push({ topic: t.name, partition, error: null });
      });
    }
    return { records, results };
  }
  const seen = new Set<string>();
  for (const { topic, partition } of partitions) {
    const key = `${topic}\u0000${partition}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const state = image.topics.get(topic)?.partitions[partition];
    const error = state
      ? preferredElectionError(image, topic, partition, state)
      : rillError("UNKNOWN_TOPIC_OR_PARTITION", `partitions: ${topic}-${partition} does not exist`);
    if (state && error === null) records.push(change(topic, partition, state, state.replicas[0]!, state.isr));
    results.push({ topic, partition, error });
  }
  return { records, results };
}

function preferredElectionError(image: MetadataImage, topic: string, partition: number, state: PartitionState): RillError | null {
  const preferred = state.replicas[0]!;
  if (state.leader === preferred)
    return rillError("ELECTION_NOT_NEEDED", `partitions: ${topic}-${partition} is already led by its preferred replica ${preferred}`);
  if (!isActive(image, preferred))
    return rillError(
      "PREFERRED_LEADER_NOT_AVAILABLE",
      `partitions: the preferred replica ${preferred} of ${topic}-${partition} is ${whyInactive(image, preferred)}`,
    );
  if (!state.isr.includes(preferred))
    return rillError(
      "PREFERRED_LEADER_NOT_AVAILABLE",
      `partitions: the preferred replica ${preferred} of ${topic}-${partition} is not in the ISR`,
    );
  return null;
}

/** Whether `nodeId` may lead or join an ISR: registered, unfenced, not in controlled shutdown. */
export function isActive(image: MetadataImage, nodeId: number): boolean {
  const b = image.brokers.get(nodeId);
  return b !== undefined && !b.fenced && !b.inControlledShutdown;
}

function whyInactive(image: MetadataImage, nodeId: number): string {
  const b = image.brokers.get(nodeId);
  if (!b) return "not registered";
  if (b.fenced) return "fenced";
  return b.inControlledShutdown ? "in controlled shutdown" : "active";
}

function registered(image: MetadataImage, nodeId: number): BrokerState {
  const b = image.brokers.get(nodeId);
  if (!b) throw rillError("BROKER_ID_NOT_REGISTERED", `node_id: broker ${nodeId} is not registered`);
  return b;
}

function validateNewIsr(name: string, state: PartitionState, newIsr: readonly number[]): void {
  if (!newIsr.includes(state.leader))
    throw rillError("INVALID_REQUEST", `new_isr: [${newIsr.join(", ")}] of ${name} lacks the leader ${state.leader}`);
  if (new Set(newIsr).size !== newIsr.length)
    throw rillError("INVALID_REQUEST", `new_isr: [${newIsr.join(", ")}] of ${name} repeats a replica`);
  const stranger = newIsr.find((r) => !state.replicas.includes(r));
  if (stranger !== undefined)
    throw rillError("INVALID_REQUEST", `new_isr: ${stranger} is not a replica of ${name} (replicas: [${state.replicas.join(", ")}])`);
}

/** Fences `b`: the fence record, then the partitions that lose it. */
function fenceRecords(image: MetadataImage, b: BrokerState, elrOpts: ElrOptions): MetadataRecord[] {
  return [
    { type: "broker-fence", v: 1, nodeId: b.nodeId, brokerEpoch: b.epoch, fenced: true },
    ...lossChanges(image, b.nodeId, true, elrOpts, null),
  ];
}

/**
 * Controlled shutdown of `b`: marks it (`broker-shutdown`, once) and moves every partition it
 * leads or follows in sync as `lossChanges` says, without unclean elections. It may stop once
 * the image shows it leading nothing, which is from its next heartbeat on when it leads
 * something now: so it never waits for a replica that cannot take over.
 */
function controlledShutdown(image: MetadataImage, b: BrokerState, isCaughtUp: boolean, elrOpts: ElrOptions): BrokerHeartbeatDecision {
  const records: MetadataRecord[] = [];
  if (!b.inControlledShutdown) records.push({ type: "broker-shutdown", v: 1, nodeId: b.nodeId, brokerEpoch: b.epoch });
  records.push(...lossChanges(image, b.nodeId, false, elrOpts, null));
  return { records, response: { isCaughtUp, isFenced: b.fenced, shouldShutDown: !leadsAny(image, b.nodeId) } };
}

function leadsAny(image: MetadataImage, nodeId: number): boolean {
  for (const t of image.topics.values()) if (t.partitions.some((p) => p.leader === nodeId)) return true;
  return false;
}

/**
 * The partition changes when `gone` stops serving (fenced, shutting down, or replaced by a new
 * incarnation). It leaves every ISR where it is not the last member; with eligible leader
 * replicas (KIP-966) it leaves the last too, and the ISR may become empty. Where it leads, the
 * new leader is the first active ISR member in replica order; failing that, with an empty ISR,
 * the first active eligible leader replica (`elrOf`), whose ISR becomes just itself; failing
 * that, when `unclean` and the topic enables `unclean.leader.election.enable`, the first active
 * replica, whose ISR becomes just itself; failing that, none (-1).
 * `uncleanShutdown`: a broker that registers after an unclean shutdown (`gone` itself), which
 * no ELR keeps.
 */
function lossChanges(
  image: MetadataImage,
  gone: number,
  unclean: boolean,
  elrOpts: ElrOptions = {},
  uncleanShutdown: number | null = null,
): PartitionChangeRecord[] {
  const out: PartitionChangeRecord[] = [];
  const keepLast = !elrEnabled(elrOpts);
  for (const t of image.topics.values()) {
    t.partitions.forEach((state, partition) => {
      if (state.leader !== gone && !state.isr.includes(gone)) return;
      const isr = state.isr.length > 1 || !keepLast ? state.isr.filter((r) => r !== gone) : [...state.isr];
      const elr = elrOf(t, state, isr, elrOpts, uncleanShutdown);
      const next = state.leader === gone ? electAfterLoss(image, t, state, gone, isr, unclean, elr) : { leader: state.leader, isr, elr };
      if (next.leader !== state.leader || !sameList(next.isr, state.isr) || elrChanged(state, next.elr))
        out.push(change(t.name, partition, state, next.leader, next.isr, next.elr));
    });
  }
  return out;
}

function electAfterLoss(
  image: MetadataImage,
  t: TopicState,
  state: PartitionState,
  gone: number,
  isr: number[],
  unclean: boolean,
  elr: ElrSets | undefined,
): { leader: number; isr: number[]; elr: ElrSets | undefined } {
  const eligible = (r: number): boolean => r !== gone && isActive(image, r);
  const clean = state.replicas.find((r) => eligible(r) && isr.includes(r));
  if (clean !== undefined) return { leader: clean, isr, elr };
  if (isr.length === 0 && elr !== undefined) {
    const fromElr = state.replicas.find((r) => eligible(r) && elr.elr.includes(r));
    if (fromElr !== undefined) return { leader: fromElr, isr: [fromElr], elr: elrOf(t, { ...state, isr, ...elr }, [fromElr], {}, null) };
    // No eligible replica left (each had an unclean shutdown): the last known leader, as Kafka's.
    const last = elr.lastKnownLeader;
    if (elr.elr.length === 0 && last !== undefined && eligible(last) && state.replicas.includes(last))
      return { leader: last, isr: [last], elr: elrOf(t, { ...state, isr, ...elr }, [last], {}, null) };
  }
  if (unclean && uncleanAllowed(t)) {
    const any = state.replicas.find(eligible);
    if (any !== undefined) return { leader: any, isr: [any], elr: elr && elrOf(t, { ...state, isr, ...elr }, [any], {}, null) };
  }
  return { leader: NO_LEADER, isr, elr };
}

/**
 * When `nodeId` is unfenced it leads every leaderless partition whose ISR holds it (with an empty
 * ISR: whose ELR holds it, or, the ELR empty too, whose last known leader it is), and, where
 * the topic enables unclean election and no ISR member is active, every leaderless partition it
 * is a replica of (its ISR becoming just `nodeId`).
 */
function unfenceChanges(image: MetadataImage, nodeId: number, elrOpts: ElrOptions): PartitionChangeRecord[] {
  const out: PartitionChangeRecord[] = [];
  const withElr = elrEnabled(elrOpts);
  for (const t of image.topics.values()) {
    t.partitions.forEach((state, partition) => {
      if (state.leader !== NO_LEADER || !state.replicas.includes(nodeId)) return;
      if (state.isr.includes(nodeId)) {
        out.push(change(t.name, partition, state, nodeId, state.isr, elrOf(t, state, state.isr, elrOpts, null)));
      } else if (withElr && state.isr.length === 0 && (state.elr ?? []).includes(nodeId)) {
        // KIP-966: an empty ISR elects an eligible leader replica.
        out.push(change(t.name, partition, state, nodeId, [nodeId], elrOf(t, state, [nodeId], elrOpts, null)));
      } else if (withElr && state.isr.length === 0 && !state.elr?.length && state.lastKnownLeader === nodeId) {
        // KIP-966: with no eligible replica left, the last known leader (the ISR's last member).
        out.push(change(t.name, partition, state, nodeId, [nodeId], elrOf(t, state, [nodeId], elrOpts, null)));
      } else if (
        !state.isr.some((r) => isActive(image, r)) &&
        !(withElr && (state.elr ?? []).some((r) => isActive(image, r))) &&
        uncleanAllowed(t)
      ) {
        out.push(change(t.name, partition, state, nodeId, [nodeId], elrOf(t, state, [nodeId], elrOpts, null)));
      }
    });
  }
  return out;
}

// ---- eligible leader replicas (KIP-966, issue 21) -------------------------------------------

/** A partition's eligible leader replicas and last known ones, as a change record carries them. */
interface ElrSets {
  readonly elr: readonly number[];
  readonly lastKnownElr: readonly number[];
  readonly lastKnownLeader?: number;
}

function elrEnabled(o: ElrOptions): boolean {
  return o.eligibleLeaderReplicas ?? true;
}

/**
 * The ELR of `state` once its ISR is `isr` (Kafka's PartitionChangeBuilder rules). While the ISR
 * has at least `min.insync.replicas` members, both sets are empty. Below it, the ELR is every
 * replica of the old ISR or ELR that is not in the new ISR, except `uncleanShutdown` (a broker
 * that may have lost acknowledged writes) — unless the ISR is empty, it is the last candidate and
 * it is the last known leader (the ISR's last member): then it stays eligible, as the last ISR
 * member did before KIP-966 (every candidate lost its unsynced writes; Kafka would keep the
 * partition offline until an unclean election, which Rill cannot trigger by hand). Any other
 * unclean-shutdown replica leaves: it may have left the ISR long before the last member, and
 * lack records committed since (seed 673). The last known ELR is every replica of the old ISR,
 * ELR or last known ELR that is in neither. Both in replica order. The last known leader: while
 * the ISR is empty, its last member (the old ISR's leader, else its first member; kept while it
 * stays empty). Disabled: all empty (undefined when `state` has none either, so the record
 * carries nothing).
 */
function elrOf(
  t: TopicState,
  state: PartitionState,
  isr: readonly number[],
  elrOpts: ElrOptions,
  uncleanShutdown: number | null,
): ElrSets | undefined {
  const none =
    !state.elr?.length && !state.lastKnownElr?.length && state.lastKnownLeader === undefined ? undefined : { elr: [], lastKnownElr: [] };
  if (!elrEnabled(elrOpts)) return none;
  if (isr.length >= parseTopicConfig(t.configs).minInsyncReplicas) return none;
  const lastKnownLeader = isr.length > 0 ? undefined : lastIsrMember(state);
  const was = new Set([...state.isr, ...(state.elr ?? [])]);
  const candidates = state.replicas.filter((r) => was.has(r) && !isr.includes(r));
  const clean = candidates.filter((r) => r !== uncleanShutdown);
  // (a partition emptied before the last known leader was recorded keeps the last candidate)
  const notLast = lastKnownLeader !== undefined && uncleanShutdown !== lastKnownLeader;
  const elr = clean.length > 0 || isr.length > 0 || notLast ? clean : candidates;
  for (const r of state.lastKnownElr ?? []) was.add(r);
  const lastKnownElr = state.replicas.filter((r) => was.has(r) && !isr.includes(r) && !elr.includes(r));
  return { elr, lastKnownElr, ...(lastKnownLeader !== undefined ? { lastKnownLeader } : {}) };
}

/** The last member of `state`'s ISR: its leader if in it, else its first member; the recorded one once it is empty. */
function lastIsrMember(state: PartitionState): number | undefined {
  if (state.isr.length === 0) return state.lastKnownLeader;
  return state.isr.includes(state.leader) ? state.leader : state.isr[0];
}

function elrChanged(state: PartitionState, next: ElrSets | undefined): boolean {
  return (
    !sameList(next?.elr ?? [], state.elr ?? []) ||
    !sameList(next?.lastKnownElr ?? [], state.lastKnownElr ?? []) ||
    next?.lastKnownLeader !== state.lastKnownLeader
  );
}

/**
 * A broker registered after an unclean shutdown: it leaves the ELR (and, if it is still there,
 * the ISR) of every partition `moves` did not already change; a leaderless partition whose ISR
 * becomes empty elects from its ELR as `lossChanges` does.
 */
function uncleanShutdownChanges(image: MetadataImage, nodeId: number, moves: readonly PartitionChangeRecord[]): PartitionChangeRecord[] {
  const out: PartitionChangeRecord[] = [];
  const moved = new Set(moves.map((m) => `${m.topic}\u0000${m.partition}`));
  for (const t of image.topics.values()) {
    t.partitions.forEach((state, partition) => {
      if (moved.has(`${t.name}\u0000${partition}`)) return;
      if (!state.isr.includes(nodeId) && !(state.elr ?? []).includes(nodeId)) return;
      const isr = state.isr.filter((r) => r !== nodeId);
      const elr = elrOf(t, state, isr, {}, nodeId);
      const next =
        state.leader === NO_LEADER || state.leader === nodeId
          ? electAfterLoss(image, t, state, nodeId, isr, false, elr)
          : { leader: state.leader, isr, elr };
      if (next.leader !== state.leader || !sameList(next.isr, state.isr) || elrChanged(state, next.elr))
        out.push(change(t.name, partition, state, next.leader, next.isr, next.elr));
    });
  }
  return out;
}

function uncleanAllowed(t: TopicState): boolean {
  return parseTopicConfig(t.configs).uncleanLeaderElectionEnable;
}

/**
 * The record for a partition's new `leader` and `isr`: partition epoch + 1, leader epoch + 1 if
 * the leader changes. `elr`: the new eligible leader replicas; absent: the current ones stay.
 */
function change(
  topic: string,
  partition: number,
  state: PartitionState,
  leader: number,
  isr: readonly number[],
  elr?: ElrSets,
): PartitionChangeRecord {
  const e = elr ?? state;
  return {
    type: "partition-change",
    v: 1,
    topic,
    partition,
    leader,
    isr: [...isr],
    leaderEpoch: leader === state.leader ? state.leaderEpoch : state.leaderEpoch + 1,
    partitionEpoch: state.partitionEpoch + 1,
    ...(e.elr?.length ? { elr: [...e.elr] } : {}),
    ...(e.lastKnownElr?.length ? { lastKnownElr: [...e.lastKnownElr] } : {}),
    ...(e.lastKnownLeader !== undefined ? { lastKnownLeader: e.lastKnownLeader } : {}),
  };
}

function sameList(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
