/**
 * Types the group coordinator's managers share (membership.ts, offsets-manager.ts) and its
 * facade (coordinator.ts) re-exports.
 */
import type { GroupRecord } from "./records.ts";

/** Partition counts of topics, as the broker's metadata knows them. */
export interface TopicsView {
  /** The topic's partition count, or undefined when it does not exist. */
  partitionCount(topic: string): number | undefined;
}

/** What a handler returns: records to append (then replay), and the response to send after. */
export interface CoordinatorResult<T> {
  readonly records: GroupRecord[];
  readonly response: T;
  /**
   * Changes to live (never written) state, such as a classic group's rebalance in progress: the
   * caller runs it once the records are written and replayed, and drops it with them otherwise.
   */
  readonly effects?: () => void;
}

/** The log end offset (high watermark) of a partition, -1 when unknown; given by the caller. */
export type LogEndOffsets = (topic: string, partition: number) => number;
