/**
 * One partition's replication state on this broker (Kafka's `Partition`): whether it leads or
 * follows, in which leader epoch, and — as leader — each follower's log end offset, when it was
 * last caught up, and the high watermark.
 *
 * The high watermark is the smallest log end offset over the ISR (the leader's included): every
 * record below it is on every in-sync replica, so consumers read only below it and acks=ALL
 * answers once it passes the batch. It never goes backwards while this broker leads, and it does
 * not move while the ISR is smaller than min.insync.replicas (strict min ISR, as Kafka 3.9+).
 *
 * A follower is caught up when it fetched from at least the leader's log end offset as it was at
 * its previous fetch (Kafka's rule: a follower that keeps up with a busy leader is never exactly
 * at its end). A follower that has not been caught up for `replica.lag.time.max.ms` leaves the
 * ISR; an out-of-sync follower whose log end reaches the high watermark (and the start of the
 * current leader epoch) joins again. Both go to the controller as AlterPartition; the ISR here
 * changes only when the metadata log says so.
 *
 * Broker epochs (KIP-903): a follower's progress is that of one registration of its broker. The
 * replica manager records only fetches that carry the follower's current broker epoch, and
 * `dropStaleFollowers` forgets what an earlier registration fetched: a restarted broker (which may
 * have lost unsynced records) neither holds up nor moves the high watermark as the ISR member its
 * previous incarnation was, and joins the ISR again only once caught up under its new epoch.
 *
 * A new leader's high watermark is the one it learned as a follower, which lags the previous
 * leader's by up to one replica fetch. It does not know the committed point until its high
 * watermark reaches `epochStartOffset` (its log end when it became leader: everything a previous
 * leader could have called committed is below it, since that leader's high watermark never
 * passed this ISR member's log end). Until then `hwKnown` is false and consumers get no high
 * watermark or last stable offset from it (ReplicaManager, Kafka's KIP-207; Raft's rule that a
 * new leader learns the commit index only once an entry of its own term commits): one lower than
 * an answer before the election would move a reader's view backwards.
 *
 * Invariants (asserted, see invariants.ts): the high watermark never passes the log end offset
 * and never moves backwards (`hw` is set only forward; a follower cutting a divergent tail
 * lowers it with `clampHwToLog`); leader and partition epochs only rise; the ISR is a subset of
 * the replicas and holds this broker while it leads.
 *
 * Pure: time is passed in.
 */
import { assert } from "../base/assert.ts";
import type { PartitionLog } from "../storage/partition-log.ts";
import { assertEpochRises, assertHwForward, assertHwWithinLog, assertIsrValid } from "./invariants.ts";

/** What the leader knows of one follower. */
export interface FollowerState {
  /** The follower's log end offset (its latest fetch offset); -1 until it fetches. */
  leo: number;
  /** Last time the follower was caught up. */
  lastCaughtUpMs: number;
  /** The leader's log end offset at the follower's previous fetch. */
  leaderLeoAtLastFetch: number;
  /** The broker epoch (registration) of the follower's fetches that `leo` comes from; -1 until one. */
  brokerEpoch: number;
}

/** An ISR change the leader wants. */
export interface IsrChange {
  readonly topic: string;
  readonly partition: number;
  readonly leaderEpoch: number;
  readonly partitionEpoch: number;
  readonly newIsr: number[];
  /** By position in newIsr: the broker epoch a member being added was caught up under, else -1 (KIP-903). */
  readonly newIsrBrokerEpochs: number[];
}

/** A partition hosted on this broker. */
export class PartitionReplica {
  role: "leader" | "follower" | "none" = "none";
  leader = -1;
  leaderEpoch = -1;
  partitionEpoch = -1;
  replicas: readonly number[] = [];
  isr: readonly number[] = [];
  private _hw = 0;
  /** Names this replica in assertion messages. */
  private readonly where: string;
  /** Followers' progress, while this broker leads. */
  readonly followers = new Map<number, FollowerState>();
  /** Offset where the current leader epoch started on this leader. */
  epochStartOffset = 0;
  /** An AlterPartition is on its way: no second one until it is answered. */
  isrChangeInFlight = false;
  /**
   * Members this leader proposed to add to the ISR whose change it has not seen in its metadata
   * yet (Kafka's "maximal ISR", KIP-497): the high watermark waits for them too from the moment
   * they are proposed. The controller may commit the change, and elect one of them (a
   * reassignment's completion moves leadership to a new replica in the same change, issue 21),
   * before this leader applies it: a record acknowledged meanwhile must be on them as well.
   * Cleared when the partition's ISR or leader epoch changes in the metadata (which settles the
   * proposal: it named the partition epoch it changes) or the controller refused it in a way that
   * proves nothing was committed (`isrChangeRefused`). A call that failed or timed out may have
   * been committed: the proposal stays, and is asked again as it was (`wantedIsrChange`), as
   * Kafka's leader stays in its pending ISR state until the change is settled (cluster-sim seed
   * 6472: an expansion answered late was dropped and the leader acknowledged writes the new
   * member lacked; that member became leader).
   */
  pendingIsrAdds: readonly number[] = [];
  /** The last ISR change proposed and not settled yet; null when none. */
  private unsettledIsrChange: IsrChange | null = null;

  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly log: PartitionLog,
    private readonly nodeId: number,
    /** The topic's id: a topic deleted and created again under its name is another partition. */
    readonly topicId = "",
  ) {
    this.where = `${topic}-${partition} on broker ${nodeId}`;
  }

  /** High watermark as this broker knows it (a follower learns it from its leader). */
  get hw(): number {
    return this._hw;
  }

  /** Moves the high watermark; asserts that it moves forward and stays within the log. */
  set hw(hw: number) {
    assertHwForward(this.where, this._hw, hw);
    assertHwWithinLog(this.where, hw, this.log.logEndOffset);
    this._hw = hw;
    this.log.highWatermarkMoved(hw);
  }

  /**
   * Whether this replica's high watermark is at least every one a leader of the partition
   * published before: a follower's always (it learns its leader's, only forward), a leader's
   * once it reached `epochStartOffset` (its followers fetched up to where its epoch began).
   * Once true it stays so for the epoch: the high watermark only moves forward.
   */
  get hwKnown(): boolean {
    return this.role !== "leader" || this._hw >= this.epochStartOffset;
  }

  /**
   * Follower only: after its log was cut (a divergent tail), the high watermark comes down to
   * the log end if it was past it — the one way it moves backwards.
   */
  clampHwToLog(): void {
    assert(this.role !== "leader", `${this.where}: a leader's log was cut below its high watermark`);
    if (this._hw > this.log.logEndOffset) this._hw = this.log.logEndOffset;
  }

  /**
   * Applies the partition's state from the metadata image. Returns what changed: a new role or
   * epoch ("leader"/"follower"), or only the ISR/epoch bookkeeping ("isr"), or nothing.
   */
  update(
    st: { leader: number; leaderEpoch: number; partitionEpoch: number; replicas: readonly number[]; isr: readonly number[] },
    nowMs: number,
  ): "leader" | "follower" | "isr" | null {
    assertEpochRises(this.where, "leader epoch", this.leaderEpoch, st.leaderEpoch);
    assertEpochRises(this.where, "partition epoch", this.partitionEpoch, st.partitionEpoch);
    assertIsrValid(this.where, st.isr, st.replicas, st.leader === this.nodeId ? this.nodeId : -1);
    const newRole = st.leader === this.nodeId ? "leader" : st.replicas.includes(this.nodeId) ? "follower" : "none";
    const epochChanged = st.leaderEpoch !== this.leaderEpoch || newRole !== this.role || st.leader !== this.leader;
    const isrChanged = st.partitionEpoch !== this.partitionEpoch;
    if (isrChanged || epochChanged) {
      this.pendingIsrAdds = [];
      this.unsettledIsrChange = null;
    }
    this.replicas = st.replicas;
    this.isr = st.isr;
    this.partitionEpoch = st.partitionEpoch;
    this.isrChangeInFlight = false;
    if (epochChanged) {
      this.role = newRole;
      this.leader = st.leader;
      this.leaderEpoch = st.leaderEpoch;
      if (newRole === "leader") {
        this.becomeLeader(nowMs);
        return "leader";
      }
      this.followers.clear();
      assertHwWithinLog(this.where, this._hw, this.log.logEndOffset);
      return newRole === "follower" ? "follower" : null;
    }
    if (isrChanged && this.role === "leader") {
      this.syncFollowers(nowMs);
      this.maybeAdvanceHw();
      return "isr";
    }
    return null;
  }

  /**
   * Reassignment (issue 21): the replica set changed under the same leader. A replica being
   * added gets a follower entry (so its fetches count and it may join the ISR); one removed loses
   * its entry.
   */
  private syncFollowers(nowMs: number): void {
    for (const r of this.replicas) {
      if (r !== this.nodeId && !this.followers.has(r))
        this.followers.set(r, { leo: -1, lastCaughtUpMs: nowMs, leaderLeoAtLastFetch: -1, brokerEpoch: -1 });
    }
    for (const r of [...this.followers.keys()]) if (!this.replicas.includes(r)) this.followers.delete(r);
  }

  private becomeLeader(nowMs: number): void {
    this.epochStartOffset = this.log.logEndOffset;
    this.followers.clear();
    for (const r of this.replicas) {
      if (r !== this.nodeId) this.followers.set(r, { leo: -1, lastCaughtUpMs: nowMs, leaderLeoAtLastFetch: -1, brokerEpoch: -1 });
    }
    // The high watermark carries over from what this broker knew as a follower, and moves
    // forward as the ISR fetches; it never exceeds this log's end.
    assertHwWithinLog(this.where, this._hw, this.log.logEndOffset);
    this.maybeAdvanceHw();
  }

  /**
   * Recomputes the high watermark from the ISR. Returns true when it moved forward. It stays
   * while the ISR is smaller than min.insync.replicas (Kafka's strict min ISR, KIP-966): a record
   * committed by fewer replicas would be lost with one power loss of them (cluster-sim seeds
   * 1106 and 1109: the last ISR member lost the committed tail and was elected again).
   */
  maybeAdvanceHw(): boolean {
    if (this.role !== "leader") return false;
    if (this.isr.length < this.log.topicConfig.minInsyncReplicas) return false;
    let hw = this.log.logEndOffset;
    for (const r of this.pendingIsrAdds.length > 0 ? [...this.isr, ...this.pendingIsrAdds] : this.isr) {
      if (r === this.nodeId) continue;
      const f = this.followers.get(r);
      // An ISR member that has not fetched yet in this epoch holds the high watermark back.
      hw = Math.min(hw, f ? Math.max(f.leo, 0) : 0);
    }
    if (hw > this.hw) {
      this.hw = hw;
      return true;
    }
    return false;
  }

  /**
   * A follower fetched from `fetchOffset` (its log end), as the registration `brokerEpoch` of its
   * broker (the caller checked it is the current one). Returns true when the HW moved.
   */
  onFollowerFetch(replicaId: number, fetchOffset: number, nowMs: number, brokerEpoch = -1): boolean {
    const f = this.followers.get(replicaId);
    if (!f) return false;
    if (f.brokerEpoch !== brokerEpoch) {
      // Another registration of the broker: nothing its previous one fetched counts.
      f.brokerEpoch = brokerEpoch;
      f.leo = -1;
      f.leaderLeoAtLastFetch = -1;
    }
    const leo = this.log.logEndOffset;
    if (fetchOffset >= leo || (f.leaderLeoAtLastFetch >= 0 && fetchOffset >= f.leaderLeoAtLastFetch)) f.lastCaughtUpMs = nowMs;
    f.leaderLeoAtLastFetch = leo;
    f.leo = Math.min(fetchOffset, leo);
    return this.maybeAdvanceHw();
  }

  /**
   * Forgets the progress of followers recorded under a broker epoch that is no longer their
   * broker's current one (`epochOf`: undefined for an unregistered broker): a restarted broker's
   * log may have lost what its previous registration fetched. An ISR member so forgotten holds
   * the high watermark back until it fetches again as its current registration (or leaves the
   * ISR); when it was last caught up is kept, so a silent one still leaves after the lag time.
   */
  dropStaleFollowers(epochOf: (nodeId: number) => number | undefined): void {
    for (const [id, f] of this.followers) {
      if (f.brokerEpoch < 0 || f.brokerEpoch === epochOf(id)) continue;
      f.brokerEpoch = -1;
      f.leo = -1;
      f.leaderLeoAtLastFetch = -1;
    }
  }

  /**
   * The ISR change this leader wants now, if any: laggards out (not caught up for `lagMaxMs`),
   * caught-up followers in. One change in flight at a time. `eligible` says whether a follower,
   * as the registration whose fetches caught it up (`brokerEpoch`), may join the ISR.
   */
  wantedIsrChange(nowMs: number, lagMaxMs: number, eligible: (nodeId: number, brokerEpoch: number) => boolean): IsrChange | null {
    if (this.role !== "leader" || this.isrChangeInFlight) return null;
    // A proposal whose outcome is unknown is asked again unchanged until the metadata settles it.
    if (this.unsettledIsrChange !== null) return this.unsettledIsrChange;
    const next = new Set(this.isr);
    for (const r of this.isr) {
      if (r === this.nodeId) continue;
      const f = this.followers.get(r);
      if (!f || nowMs - f.lastCaughtUpMs > lagMaxMs) next.delete(r);
    }
    for (const [r, f] of this.followers) {
      if (next.has(r) || !eligible(r, f.brokerEpoch)) continue;
      if (f.leo >= this.hw && f.leo >= this.epochStartOffset && nowMs - f.lastCaughtUpMs <= lagMaxMs) next.add(r);
    }
    if (next.size === this.isr.length && [...next].every((r) => this.isr.includes(r))) return null;
    const ordered = this.replicas.filter((r) => next.has(r));
    assertIsrValid(this.where, ordered, this.replicas, this.nodeId);
    this.pendingIsrAdds = ordered.filter((r) => !this.isr.includes(r));
    this.unsettledIsrChange = {
      topic: this.topic,
      partition: this.partition,
      leaderEpoch: this.leaderEpoch,
      partitionEpoch: this.partitionEpoch,
      newIsr: ordered,
      newIsrBrokerEpochs: ordered.map((id) => (this.isr.includes(id) ? -1 : (this.followers.get(id)?.brokerEpoch ?? -1))),
    };
    return this.unsettledIsrChange;
  }

  /**
   * The controller refused the last proposal after finding its partition epoch current
   * (INVALID_REQUEST, INELIGIBLE_REPLICA): neither it nor an earlier try of it was committed, so
   * the members it would add no longer hold the high watermark back.
   */
  isrChangeRefused(): void {
    this.pendingIsrAdds = [];
    this.unsettledIsrChange = null;
  }
}
