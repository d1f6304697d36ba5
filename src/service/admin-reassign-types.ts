/**
 * The domain types of partition reassignment (issue 21): AlterPartitionReassignments and
 * ListPartitionReassignments as every protocol's adapter gives and takes them
 * (src/service/admin-reassign.ts handles them).
 */
import type { RillError } from "../base/errors.ts";
import type { OngoingReassignment } from "../metadata/reassignment.ts";

/** One partition of AlterPartitionReassignments. */
export interface ReassignPartitionSpec {
  readonly topic: string;
  readonly partition: number;
  /** The target replicas; null cancels the partition's ongoing reassignment. */
  readonly replicas: readonly number[] | null;
}

/** AlterPartitionReassignments: partitions to move, or whose move to cancel. */
export interface AlterPartitionReassignmentsInput {
  readonly partitions: readonly ReassignPartitionSpec[];
}

/** The outcome for one partition: no error when its move started, was replaced, cancelled or done. */
export interface ReassignOutcome {
  readonly topic: string;
  readonly partition: number;
  readonly error?: RillError;
}

/** Answer of AlterPartitionReassignments: one outcome per partition, in the request's order. */
export interface AlterPartitionReassignmentsResult {
  readonly results: readonly ReassignOutcome[];
}

/** ListPartitionReassignments: empty, every partition; an entry with no partitions, all of its topic. */
export interface ListPartitionReassignmentsInput {
  readonly partitions: ReadonlyArray<{ readonly topic: string; readonly partitions: readonly number[] }>;
}

/** Answer of ListPartitionReassignments: the ongoing moves, by topic and partition. */
export interface ListPartitionReassignmentsResult {
  readonly reassignments: readonly OngoingReassignment[];
}

/** The reassignment request that changes metadata, with its input and result. */
export interface ReassignmentChanges {
  alterPartitionReassignments: { input: AlterPartitionReassignmentsInput; result: AlterPartitionReassignmentsResult };
}
