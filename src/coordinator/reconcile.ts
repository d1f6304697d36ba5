/**
 * Reconciliation (KIP-848): how a member's current assignment moves toward its target, one
 * heartbeat of that member at a time. A pure function of the member's current assignment, its
 * target, who owns each partition now, and what the member says it owns.
 *
 * - Partitions the member owns but its target does not hold are revoked first: they move to
 *   `pendingRevocation`, the member keeps its epoch, and its state is `unrevoked-partitions`
 *   until a heartbeat's `owned` no longer lists any of them (omitted `owned` acks nothing).
 * - Only then does the member take the target's epoch and the target's partitions that nobody
 *   else owns (owned = assigned or pending revocation, by any member); the rest wait in
 *   `unreleased-partitions` until their owners give them up.
 * So a partition never has two owners: the new owner gets it only after the old one has acked.
 */
import type { CurrentAssignmentRecord, MemberState } from "./records.ts";
import type { TopicPartitions } from "./partitions.ts";
import { fromKeys, intersect, keysOf, minus, overlaps, samePartitions } from "./partitions.ts";

/** A member's current assignment (the body of a CurrentAssignmentRecord). */
export type CurrentAssignment = Pick<
  CurrentAssignmentRecord,
  "memberEpoch" | "previousMemberEpoch" | "state" | "assigned" | "pendingRevocation"
>;

/** What reconcile needs. */
export interface ReconcileInput {
  readonly memberId: string;
  readonly current: CurrentAssignment;
  readonly targetEpoch: number;
  readonly target: readonly TopicPartitions[];
  /** The member id that owns a partition key (`topic:partition`), if any. */
  readonly ownerOf: (key: string) => string | undefined;
  /** What the member says it owns; undefined: unchanged since its last heartbeat. */
  readonly owned: readonly TopicPartitions[] | undefined;
}

/** The member's next current assignment (the same object when nothing changes). */
export function reconcile(inp: ReconcileInput): CurrentAssignment {
  const c = inp.current;
  if (c.state === "unrevoked-partitions") {
    if (inp.owned === undefined || overlaps(inp.owned, c.pendingRevocation)) return c;
    return next(inp);
  }
  if (c.state === "stable" && c.memberEpoch === inp.targetEpoch) return c;
  return next(inp);
}

function next(inp: ReconcileInput): CurrentAssignment {
  const c = inp.current;
  const keep = intersect(c.assigned, inp.target);
  const revoke = minus(c.assigned, inp.target);
  if (revoke.length > 0) {
    return {
      memberEpoch: c.memberEpoch,
      previousMemberEpoch: c.previousMemberEpoch,
      state: "unrevoked-partitions",
      assigned: keep,
      pendingRevocation: revoke,
    };
  }
  const keepKeys = keysOf(keep);
  const assigned = new Set(keepKeys);
  let unreleased = false;
  for (const k of keysOf(inp.target)) {
    if (keepKeys.has(k)) continue;
    const owner = inp.ownerOf(k);
    if (owner === undefined || owner === inp.memberId) assigned.add(k);
    else unreleased = true;
  }
  const state: MemberState = unreleased ? "unreleased-partitions" : "stable";
  const result: CurrentAssignment = {
    memberEpoch: inp.targetEpoch,
    previousMemberEpoch: inp.targetEpoch === c.memberEpoch ? c.previousMemberEpoch : c.memberEpoch,
    state,
    assigned: fromKeys(assigned),
    pendingRevocation: [],
  };
  return sameCurrent(result, c) ? c : result;
}

/** True when two current assignments are the same. */
export function sameCurrent(a: CurrentAssignment, b: CurrentAssignment): boolean {
  return (
    a.memberEpoch === b.memberEpoch &&
    a.previousMemberEpoch === b.previousMemberEpoch &&
    a.state === b.state &&
    samePartitions(a.assigned, b.assigned) &&
    samePartitions(a.pendingRevocation, b.pendingRevocation)
  );
}
