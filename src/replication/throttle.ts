/**
 * The replication throttle of a partition reassignment (issue 21; Kafka's
 * `leader.replication.throttled.rate` / `follower.replication.throttled.rate` with
 * `*.replication.throttled.replicas` set to the moving replicas): bytes a leader sends to, and a
 * follower fetches for, a replica being added that is not yet in the ISR are limited to a rate, so
 * a move does not starve producers or the followers that acks=all waits for. In-sync replicas are
 * never throttled (as in Kafka: a throttled replica that caught up is not slowed down).
 *
 * A token bucket: `rate` bytes per second flow in, at most one second's worth is kept; a read
 * takes what it read, which may leave the bucket in debt; while it is empty or in debt the
 * throttled replicas get nothing. Over any window the bytes moved stay within rate × window plus
 * one second's worth. Time comes from the injected Clock.
 */
import type { Clock } from "../base/clock.ts";
import type { PartitionState } from "../metadata/image.ts";

/** Whether `replicaId` of the partition in `state` is throttled: being added by a reassignment and not in the ISR. */
export function isThrottledReplica(state: PartitionState | undefined, replicaId: number): boolean {
  return state?.addingReplicas?.includes(replicaId) === true && !state.isr.includes(replicaId);
}

/** One direction's byte-rate limit (a leader's sends, or a follower's fetches). */
export class ReplicationThrottle {
  private tokens: number;
  private lastMs: number;

  /** `rateBytesPerSec` 0: no limit. */
  constructor(
    private readonly clock: Clock,
    readonly rateBytesPerSec: number,
  ) {
    this.tokens = rateBytesPerSec;
    this.lastMs = clock.nowMs();
  }

  /** Whether a limit is set. */
  get limited(): boolean {
    return this.rateBytesPerSec > 0;
  }

  private refill(): void {
    const now = this.clock.nowMs();
    if (now > this.lastMs) {
      this.tokens = Math.min(this.rateBytesPerSec, this.tokens + ((now - this.lastMs) * this.rateBytesPerSec) / 1000);
      this.lastMs = now;
    }
  }

  /** Whether the throttled replicas must wait now (the bucket is empty or in debt). */
  exceeded(): boolean {
    if (!this.limited) return false;
    this.refill();
    return this.tokens <= 0;
  }

  /** Bytes the throttled replicas may take now (Infinity without a limit; 0 when exceeded). */
  allowance(): number {
    if (!this.limited) return Number.POSITIVE_INFINITY;
    this.refill();
    return Math.max(0, Math.floor(this.tokens));
  }

  /** Counts `bytes` moved for throttled replicas. */
  record(bytes: number): void {
    if (!this.limited || bytes <= 0) return;
    this.refill();
    this.tokens -= bytes;
  }

  /** Milliseconds until the throttled replicas may move bytes again (0: now). */
  waitMs(): number {
    if (!this.limited) return 0;
    this.refill();
    return this.tokens > 0 ? 0 : Math.ceil(((1 - this.tokens) * 1000) / this.rateBytesPerSec);
  }
}
