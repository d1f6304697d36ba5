/**
 * Types the GroupConsumer (group-consumer.ts) and its `run` (group-run.ts) share: a partition's
 * positions, the items of the consumer's queue, and the record type with deserialized key and
 * value.
 */

import type { ConsumerRecord, CorruptBatchReport } from "./batch-reader.ts";
import type { GroupTopicPartition } from "./group-connection.ts";

/** A record as the group consumer hands it over: key and value through the `deserializers`, if any. */
export type GroupRecord<K = Buffer, V = Buffer> = Omit<ConsumerRecord, "key" | "value"> & {
  readonly key: K | null;
  readonly value: V | null;
};

/** @internal A partition's positions in the consumer. */
export interface PartitionState {
  readonly topic: string;
  readonly partition: number;
  /** One past the last record yielded; -1 before the first. */
  consumed: number;
  /** One past the last record the application is done with; -1 before the first. */
  processed: number;
  /** The last offset the broker confirmed committed by this member; -1 when none. */
  committed: number;
  /** The highest offset sent in a commit not answered yet; -1 when none. */
  committing: number;
  /** `next_offset` of the last records message: where delivery continues. */
  delivered: number;
  /** The first offset yielded (where the broker started this partition); -1 before. */
  base: number;
  highWatermark: number;
  /** Paused by `pause()`: its records are dropped here until `resume()`. */
  paused: boolean;
  /** The first offset dropped while paused (delivery resumes there); -1 when none. */
  dropFrom: number;
  /** The id of this partition's last `seek` (0: none); records of older seeks are dropped. */
  seekId: bigint;
}

/** @internal The consumer's queue: records of one Records message, corrupt batches, assignment changes. */
export type Item =
  | {
      readonly kind: "records";
      readonly st: PartitionState;
      readonly records: Iterator<GroupRecord<unknown, unknown>>;
      /** The message's first offset and the seek it follows. */
      readonly first: number;
      /** The message's next offset: past its last record and past any transaction markers or aborted records after it. */
      readonly next: number;
      readonly seekId: bigint;
    }
  | { readonly kind: "corrupt"; readonly st: PartitionState; readonly report: CorruptBatchReport }
  | { readonly kind: "assigned" | "revoked"; readonly partitions: GroupTopicPartition[] };
