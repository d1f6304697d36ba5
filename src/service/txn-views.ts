/**
 * How the transaction coordinator's state is shown: DescribeTransactions entries and
 * ListTransactions rows (transactions.ts types) from a transactional id's record.
 */
import type { RillError } from "../base/errors.ts";
import type { TxnStateRecord } from "../coordinator/transactions/txn-records.ts";
import type { TransactionDescription, TransactionListing } from "./transactions.ts";

/** A transactional id's state record. */
export type TxnRecordState = TxnStateRecord;

/** The DescribeTransactions entry of `id` (`s` null with an error). */
export function describeOf(id: string, s: TxnRecordState | null, error: RillError | null, coordinatorId: number): TransactionDescription {
  if (s === null)
    return {
      transactionalId: id,
      error,
      state: "Dead",
      producerId: -1,
      producerEpoch: -1,
      timeoutMs: 0,
      startTimeMs: -1,
      partitions: [],
      groups: [],
      coordinatorId,
    };
  return {
    transactionalId: id,
    error: null,
    state: s.state,
    producerId: s.producerId,
    producerEpoch: s.producerEpoch,
    timeoutMs: s.timeoutMs,
    startTimeMs: s.startTimeMs,
    partitions: s.partitions,
    groups: s.groups,
    coordinatorId,
  };
}

/** The ListTransactions row of a state at `now`. */
export function listingOf(s: TxnRecordState, now: number, coordinatorId: number): TransactionListing {
  return {
    transactionalId: s.transactionalId,
    producerId: s.producerId,
    state: s.state,
    durationMs: s.startTimeMs >= 0 ? Math.max(0, now - s.startTimeMs) : -1,
    coordinatorId,
  };
}
