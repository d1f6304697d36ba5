/**
 * Deposed group coordinators, as the omniscient observer sees them (cluster seed 6114).
 *
 * A group's coordinator is the leader of its `__consumer_offsets` partition in the broker's own
 * metadata image. When the controller moves that leadership (here: the broker was cut off from
 * the voters, its session expired, it was fenced and another replica was elected), the old
 * leader keeps answering as the coordinator until its image applies the change: a broker cut
 * off from the voters learns nothing, and answers FetchOffsets from the state it last had.
 * Kafka does the same: its coordinator reads (OffsetFetch, also with require_stable) come from
 * the coordinator's own state at its last committed offset, with no lease and no check with the
 * controller or the followers, so a deposed coordinator's answer may be older than commits the
 * new coordinator has acknowledged since: late, not lost (what it answers was committed while
 * it led). What it takes while cut off is not acknowledged (a commit waits for its ISR, whose
 * members follow the new leader), and its commits, if any, would be checked as any other's.
 * The check of transactional offsets (`txn-offset-backwards`, txn-workload.ts) therefore does
 * not compare a deposed coordinator's answer with the answers before it; the check of plain
 * commits (`committed-offset-backwards`, history.ts) still does.
 */
import { OFFSETS_TOPIC, offsetsPartitionFor } from "../../../src/coordinator/group-runtime.ts";
import type { SimNode } from "./node.ts";

/** A coordinator's view of its partition against the latest one in the cluster. */
export interface Deposed {
  /** The group's `__consumer_offsets` partition. */
  readonly partition: number;
  /** The leader epoch in the answering node's image. */
  readonly epoch: number;
  /** The node whose image holds the latest leader epoch, its leader and epoch. */
  readonly by: number;
  readonly leader: number;
  readonly latestEpoch: number;
}

/**
 * Whether node `at`, answering for `group` now, is a deposed coordinator: another running node's
 * image (committed metadata only) holds a later leader epoch of the group's `__consumer_offsets`
 * partition than `at`'s own image does. Null when it is not (or `at` is down).
 */
export function deposedCoordinator(nodes: ReadonlyMap<number, SimNode>, at: number, group: string): Deposed | null {
  const p = offsetsPartitionFor(group);
  const epochAt = (n: SimNode) => n.running?.rm.image.topics.get(OFFSETS_TOPIC)?.partitions[p];
  const mine = nodes.get(at);
  const own = mine ? epochAt(mine) : undefined;
  if (own === undefined) return null;
  let latest: Deposed | null = null;
  for (const n of nodes.values()) {
    const st = epochAt(n);
    if (st === undefined || st.leaderEpoch <= (latest?.latestEpoch ?? own.leaderEpoch)) continue;
    latest = { partition: p, epoch: own.leaderEpoch, by: n.id, leader: st.leader, latestEpoch: st.leaderEpoch };
  }
  return latest;
}
