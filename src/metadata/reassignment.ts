/**
 * Partition reassignment (issue 21, Kafka's KIP-455), as pure decisions of the controller.
 *
 * A partition being reassigned keeps, in its metadata, the replicas being added and removed:
 * `replicas` is the target followed by the original replicas not in the target, `addingReplicas`
 * = target − original, `removingReplicas` = original − target. The added replicas are replicas
 * like any other: the brokers open their logs and follow the leader, and its ISR upkeep lets them
 * in once they caught up. The reassignment completes when every target replica is in the ISR
 * (checked with every ISR change, `withCompletion`, and by the controller's periodic check,
 * `decideCompleteReassignments`): the replica set becomes the target, the ISR loses the removed
 * replicas, leadership moves to the first target replica in the ISR when the leader is removed,
 * and the removed brokers delete their logs when they see they hold no replica any more.
 * Cancelling (a null target) reverts to the original replicas, the added ones leaving — refused
 * while the ISR left (with its eligible leader replicas) would be below min.insync.replicas
 * (`checkIsrKept`).
 *
 * Every change is one PartitionChangeRecord carrying `replicas`, `addingReplicas` and
 * `removingReplicas` (empty lists end the reassignment). Partition epoch + 1 each time, leader
 * epoch + 1 when the leader changes or a replica leaves the replica set (`removesReplica`).
 */
import { rillError } from "../base/errors.ts";
import { parseTopicConfig } from "../config/schema.ts";
import type { MetadataImage, PartitionState, TopicState } from "./image.ts";
import { NO_LEADER, type MetadataRecord, type PartitionChangeRecord } from "./records.ts";

/** One partition of an AlterPartitionReassignments request. */
export interface ReassignmentRequest {
  readonly topic: string;
  readonly partition: number;
  /** The target replicas, the first the preferred leader; null cancels the ongoing reassignment. */
  readonly replicas: readonly number[] | null;
}

/** An ongoing reassignment, as ListPartitionReassignments answers it. */
export interface OngoingReassignment {
  readonly topic: string;
  readonly partition: number;
  /** The replica set now: target ∪ original. */
  readonly replicas: readonly number[];
  readonly addingReplicas: readonly number[];
  readonly removingReplicas: readonly number[];
}

/** Whether the partition is being reassigned. */
export function isReassigning(state: PartitionState): boolean {
  return (state.addingReplicas?.length ?? 0) > 0 || (state.removingReplicas?.length ?? 0) > 0;
}

/** The replicas the partition had before its reassignment (all of them when there is none). */
export function originalReplicas(state: PartitionState): number[] {
  const adding = state.addingReplicas ?? [];
  return state.replicas.filter((r) => !adding.includes(r));
}

/** The replicas the partition will have once its reassignment completes. */
export function targetReplicas(state: PartitionState): number[] {
  const removing = state.removingReplicas ?? [];
  return state.replicas.filter((r) => !removing.includes(r));
}

/**
 * Checks one partition of a request and returns the records that start, replace, cancel or at
 * once complete its reassignment ([] when the target is the current replica set). Throws, and
 * decides nothing, on: UNKNOWN_TOPIC_OR_PARTITION; INVALID_REPLICA_ASSIGNMENT for an empty
 * target (replication factor 0), a broker named twice, an id that is not an integer or a broker
 * that is not registered; NO_REASSIGNMENT_IN_PROGRESS for a cancel of a partition not being
 * reassigned.
 *
 * A new target while a reassignment runs replaces it, from the same original replicas (as Kafka).
 */
export function decideAlterReassignment(image: MetadataImage, req: ReassignmentRequest): MetadataRecord[] {
  const name = `${req.topic}-${req.partition}`;
  const t = image.topics.get(req.topic);
  const state = Number.isInteger(req.partition) && req.partition >= 0 ? t?.partitions[req.partition] : undefined;
  if (!state) throw rillError("UNKNOWN_TOPIC_OR_PARTITION", `partitions: ${name} does not exist`);
  const original = originalReplicas(state);
  let target: readonly number[];
  if (req.replicas === null) {
    if (!isReassigning(state)) throw rillError("NO_REASSIGNMENT_IN_PROGRESS", `partitions: ${name} is not being reassigned`);
    target = original;
  } else {
    target = req.replicas;
    checkTarget(image, name, target);
  }
  const adding = target.filter((r) => !original.includes(r));
  const removing = original.filter((r) => !target.includes(r));
  const replicas = [...target, ...removing];
  if (
    sameList(replicas, state.replicas) &&
    sameList(adding, state.addingReplicas ?? []) &&
    sameList(removing, state.removingReplicas ?? [])
  )
    return [];
  // Replicas that leave the replica set (added ones, on a cancel or a new target) leave the ISR.
  const isr = state.isr.filter((r) => replicas.includes(r));
  let leader = state.leader;
  if (leader !== NO_LEADER && !replicas.includes(leader)) {
    leader = firstLeader(image, replicas, isr);
    if (leader === NO_LEADER)
      throw rillError(
        "INVALID_REPLICA_ASSIGNMENT",
        `partitions: ${name} would have no leader: none of [${replicas.join(", ")}] is an active broker in its ISR [${state.isr.join(", ")}]`,
      );
  }
  if (isr.length === 0)
    throw rillError("INVALID_REPLICA_ASSIGNMENT", `partitions: ${name} would have an empty ISR (replicas [${replicas.join(", ")}])`);
  checkIsrKept(name, t!, state, replicas, isr);
  const rec = record(req.topic, req.partition, state, { leader, isr, replicas, adding, removing });
  return [withCompletion(image, state, rec)];
}

/**
 * ISR members that leave the replica set (added replicas, on a cancel or a new target) take their
 * copies of the committed records with them. Refused when the ISR left would be below
 * min.insync.replicas: an acknowledged acks=all write may then be held by fewer replicas than
 * the producer was promised — by one alone, which may have lost it in a power loss the
 * controller has not heard of yet (cluster sim seed 3 with reassignments: a cancel took the added
 * replica out of ISR {1,2} while node 2 was losing power, and node 2, elected alone, lacked three
 * acknowledged writes). Kafka's revert checks only that the ISR is not emptied; here the admin
 * asks again once the original replicas caught up (they join the ISR while the move runs).
 *
 * Eligible leader replicas (KIP-966) count as ISR members: each left an ISR below
 * min.insync.replicas holding every committed record, and is what an election falls back on
 * when the ISR's members turn out to have lost them. So one leaving is refused too while the ISR
 * and ELR left would be below min.insync.replicas (cluster sim seed 4952: ISR {2} ELR {3}, node 2
 * had lost power unknown to the controller; the revert of a move to {2,1} dropped node 3, the
 * other copy of eight acknowledged writes, and node 2 was elected as the last known leader).
 */
function checkIsrKept(name: string, t: TopicState, state: PartitionState, replicas: readonly number[], isr: readonly number[]): void {
  const leavingIsr = state.isr.filter((r) => !isr.includes(r));
  const leavingElr = (state.elr ?? []).filter((r) => !replicas.includes(r));
  const elr = (state.elr ?? []).filter((r) => replicas.includes(r) && !isr.includes(r));
  const minIsr = parseTopicConfig(t.configs).minInsyncReplicas;
  if (leavingIsr.length + leavingElr.length === 0 || isr.length + elr.length >= minIsr) return;
  const s = (n: number): string => (n > 1 ? "s" : "");
  const leaving = [
    ...(leavingIsr.length > 0 ? [`ISR member${s(leavingIsr.length)} ${leavingIsr.join(", ")}`] : []),
    ...(leavingElr.length > 0 ? [`eligible leader replica${s(leavingElr.length)} ${leavingElr.join(", ")}`] : []),
  ].join(" and ");
  const left = state.elr?.length ? `ISR [${isr.join(", ")}] with eligible replicas [${elr.join(", ")}]` : `ISR [${isr.join(", ")}]`;
  throw rillError(
    "INVALID_REPLICA_ASSIGNMENT",
    `partitions: ${name}: ${leaving} would leave, and ${left} would be below min.insync.replicas ${minIsr}; try again once the other replicas are in the ISR`,
  );
}

function checkTarget(image: MetadataImage, name: string, target: readonly number[]): void {
  if (target.length === 0)
    throw rillError("INVALID_REPLICA_ASSIGNMENT", `partitions: ${name}: an empty replica list (replication factor 0); cancel instead`);
  const bad = target.find((r) => !Number.isInteger(r) || r < 0);
  if (bad !== undefined) throw rillError("INVALID_REPLICA_ASSIGNMENT", `partitions: ${name}: ${bad} is not a broker id`);
  if (new Set(target).size !== target.length)
    throw rillError("INVALID_REPLICA_ASSIGNMENT", `partitions: ${name}: [${target.join(", ")}] names a broker twice`);
  const unknown = target.filter((r) => !image.brokers.has(r));
  if (unknown.length > 0)
    throw rillError(
      "INVALID_REPLICA_ASSIGNMENT",
      `partitions: ${name}: broker${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")} ${unknown.length > 1 ? "are" : "is"} not registered (brokers: ${[...image.brokers.keys()].sort((a, b) => a - b).join(", ")})`,
    );
}

/**
 * `rec` (a change of a partition whose state was `before`), completing the reassignment when the
 * change leaves every target replica in the ISR and a target replica can lead: the replica set
 * becomes the target, the ISR loses the removed replicas and, when the leader is removed, the
 * first active target replica in the ISR leads. Any other change is returned as it is.
 */
export function withCompletion(image: MetadataImage, before: PartitionState, rec: PartitionChangeRecord): PartitionChangeRecord {
  const replicas = rec.replicas ?? before.replicas;
  const adding = rec.addingReplicas ?? before.addingReplicas ?? [];
  const removing = rec.removingReplicas ?? before.removingReplicas ?? [];
  if (adding.length === 0 && removing.length === 0) return rec;
  const target = replicas.filter((r) => !removing.includes(r));
  if (!target.every((r) => rec.isr.includes(r))) return rec;
  const isr = rec.isr.filter((r) => target.includes(r));
  const leader = target.includes(rec.leader) ? rec.leader : firstLeader(image, target, isr);
  if (leader === NO_LEADER) return rec;
  return record(rec.topic, rec.partition, before, { leader, isr, replicas: target, adding: [], removing: [] }, rec);
}

/**
 * Completes every reassignment that can complete now (the controller's periodic check: a target
 * replica that joined the ISR while no target replica could lead, or a leader that came back).
 */
export function decideCompleteReassignments(image: MetadataImage): PartitionChangeRecord[] {
  const out: PartitionChangeRecord[] = [];
  for (const t of image.topics.values()) {
    t.partitions.forEach((state, partition) => {
      if (!isReassigning(state)) return;
      const same: PartitionChangeRecord = {
        type: "partition-change",
        v: 1,
        topic: t.name,
        partition,
        leader: state.leader,
        isr: [...state.isr],
        leaderEpoch: state.leaderEpoch,
        partitionEpoch: state.partitionEpoch + 1,
        ...(state.elr?.length ? { elr: [...state.elr] } : {}),
        ...(state.lastKnownElr?.length ? { lastKnownElr: [...state.lastKnownElr] } : {}),
        ...(state.lastKnownLeader !== undefined ? { lastKnownLeader: state.lastKnownLeader } : {}),
      };
      const done = withCompletion(image, state, same);
      if (done !== same) out.push(done);
    });
  }
  return out;
}

/** Every ongoing reassignment, by topic and partition; `only` limits it to those partitions. */
export function listReassignments(
  image: MetadataImage,
  only?: ReadonlyArray<{ readonly topic: string; readonly partition: number }>,
): OngoingReassignment[] {
  const out: OngoingReassignment[] = [];
  const want = only && only.length > 0 ? new Set(only.map((p) => `${p.topic}\u0000${p.partition}`)) : null;
  for (const name of image.topicNames()) {
    image.topics.get(name)!.partitions.forEach((state, partition) => {
      if (!isReassigning(state) || (want && !want.has(`${name}\u0000${partition}`))) return;
      out.push({
        topic: name,
        partition,
        replicas: [...state.replicas],
        addingReplicas: [...(state.addingReplicas ?? [])],
        removingReplicas: [...(state.removingReplicas ?? [])],
      });
    });
  }
  return out;
}

/** The first of `candidates` that is in `isr` and an active broker (registered, unfenced, not shutting down); NO_LEADER if none. */
function firstLeader(image: MetadataImage, candidates: readonly number[], isr: readonly number[]): number {
  const ok = (r: number): boolean => {
    const b = image.brokers.get(r);
    return isr.includes(r) && b !== undefined && !b.fenced && !b.inControlledShutdown;
  };
  return candidates.find(ok) ?? NO_LEADER;
}

function record(
  topic: string,
  partition: number,
  state: PartitionState,
  next: { leader: number; isr: readonly number[]; replicas: readonly number[]; adding: readonly number[]; removing: readonly number[] },
  elrFrom: { readonly elr?: readonly number[]; readonly lastKnownElr?: readonly number[]; readonly lastKnownLeader?: number } = state,
): PartitionChangeRecord {
  // Eligible leader replicas (KIP-966) carry over (a partition-change record states them whole),
  // less replicas leaving the partition or in the new ISR.
  const keep = (list: readonly number[] | undefined): number[] =>
    (list ?? []).filter((r) => next.replicas.includes(r) && !next.isr.includes(r));
  const elr = keep(elrFrom.elr);
  const lastKnownElr = keep(elrFrom.lastKnownElr);
  // the last known leader (the empty ISR's last member) stays while the ISR is empty and it a replica
  const lastKnownLeader = next.isr.length === 0 ? elrFrom.lastKnownLeader : undefined;
  return {
    type: "partition-change",
    v: 1,
    topic,
    partition,
    leader: next.leader,
    isr: [...next.isr],
    leaderEpoch: next.leader === state.leader && !removesReplica(state, next.replicas) ? state.leaderEpoch : state.leaderEpoch + 1,
    partitionEpoch: state.partitionEpoch + 1,
    replicas: [...next.replicas],
    addingReplicas: [...next.adding],
    removingReplicas: [...next.removing],
    ...(elr.length > 0 ? { elr } : {}),
    ...(lastKnownElr.length > 0 ? { lastKnownElr } : {}),
    ...(lastKnownLeader !== undefined && next.replicas.includes(lastKnownLeader) ? { lastKnownLeader } : {}),
  };
}

/**
 * Whether `replicas` leaves out a replica of `state` (a completion dropping the removed ones, a
 * cancel or a new target dropping added ones): the leader epoch goes up even when the leader
 * stays, as Kafka's PartitionChangeBuilder does, so the leader fences the fetches of a replica no
 * longer in the set. A broker whose metadata lags keeps fetching as the replica it was; without
 * the bump, once it was added back its fetches from the log it had not yet deleted counted for the
 * new replica, which joined the ISR, then deleted that log for an empty one and was elected
 * (cluster sim seed 174 with 2 broker-only nodes).
 */
function removesReplica(state: PartitionState, replicas: readonly number[]): boolean {
  return state.replicas.some((r) => !replicas.includes(r));
}

function sameList(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
