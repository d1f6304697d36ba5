/**
 * Broker sessions as the active controller sees them: when each broker was last heard from.
 * Pure: the caller passes `now` (ms) and does the fencing (decideFenceBroker) for what
 * `expired` returns. Not metadata: it lives only in the active controller's memory, and a newly
 * elected controller `reset`s it so every broker gets a full session timeout to reach it.
 */
import type { MetadataImage } from "./image.ts";

/** Last contact per broker. */
export class BrokerHeartbeats {
  private readonly lastContactMs = new Map<number, number>();

  /** The broker registered or heartbeat at `now`. */
  touch(nodeId: number, now: number): void {
    this.lastContactMs.set(nodeId, now);
  }

  /** Forgets every broker, then counts each of `nodeIds` as heard from at `now`. */
  reset(nodeIds: Iterable<number>, now: number): void {
    this.lastContactMs.clear();
    for (const id of nodeIds) this.lastContactMs.set(id, now);
  }

  /**
   * Moves every broker's last contact `ms` later: time the controller could not listen (its
   * process stalled; heartbeats that arrived meanwhile wait unread) does not count against a session.
   */
  extend(ms: number): void {
    for (const [id, last] of this.lastContactMs) this.lastContactMs.set(id, last + ms);
  }

  /** Whether the broker was heard from within the last `sessionTimeoutMs`. */
  isAlive(nodeId: number, now: number, sessionTimeoutMs: number): boolean {
    const last = this.lastContactMs.get(nodeId);
    return last !== undefined && now - last <= sessionTimeoutMs;
  }

  /** Unfenced brokers of `image` not heard from within `sessionTimeoutMs` (or ever since the last reset), sorted. */
  expired(image: MetadataImage, now: number, sessionTimeoutMs: number): number[] {
    return image.unfencedBrokers().filter((id) => !this.isAlive(id, now, sessionTimeoutMs));
  }
}
