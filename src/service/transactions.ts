/**
 * Transactions (issue 17): the protocol-neutral service every adapter calls — gRPC
 * (ProduceService.InitProducerId / EndTransaction, GroupService.CommitOffsets with a transactional
 * id, AdminService List/Describe/AbortTransaction) and Kafka (InitProducerId, AddPartitionsToTxn,
 * AddOffsetsToTxn, TxnOffsetCommit, EndTxn, DescribeTransactions, ListTransactions,
 * FindCoordinator key_type 1).
 *
 * The life of a transaction (Kafka's model, KIP-98 / KIP-447 / KIP-890):
 * 1. `initProducerId` on the coordinator (leader of `__transaction_state` partition
 *    murmur2(transactional id) % 50) gives the producer its id and a new epoch, fencing an older
 *    instance and aborting a transaction it left open.
 * 2. Each produce of a transactional batch goes through `TxnProduceGate.ensure` on the
 *    partition's leader first: TV2 ("add") makes the partition join the transaction; TV1
 *    ("verify", KIP-890 part 1) only checks that the client added it (`addPartitions`).
 * 3. Offsets join with `addOffsets` (the group's `__consumer_offsets` partition) and are written
 *    pending with `txnOffsetCommit` (member id and generation/epoch checked, KIP-447).
 * 4. `endTransaction` writes PrepareCommit/PrepareAbort to `__transaction_state`, answers, and
 *    writes a commit/abort marker to every partition of the transaction through its leader,
 *    then CompleteCommit/CompleteAbort. TV2 bumps the epoch at every end; when that would
 *    overflow int16, the answer carries a new producer id at epoch 0.
 * 5. A transaction open longer than its timeout is aborted by the coordinator (epoch bumped, so
 *    the late producer is fenced).
 *
 * Errors are Kafka's (catalog codes): PRODUCER_FENCED, INVALID_PRODUCER_EPOCH,
 * INVALID_PRODUCER_ID_MAPPING, INVALID_TXN_STATE, CONCURRENT_TRANSACTIONS (retriable: the previous
 * end is still writing its markers), TRANSACTIONAL_ID_NOT_FOUND, INVALID_TRANSACTION_TIMEOUT,
 * COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR (the adapter forwards or the client looks the
 * coordinator up again), TRANSACTION_ABORTABLE.
 */
import type { RillError } from "../base/errors.ts";
import type { CommitInput, OffsetResult } from "./groups.ts";

/** The states of a transaction (Kafka's TransactionState names). */
export const TXN_STATES = [
  "Empty",
  "Ongoing",
  "PrepareCommit",
  "PrepareAbort",
  "CompleteCommit",
  "CompleteAbort",
  "Dead",
  "PrepareEpochFence",
] as const;
export type TxnStateName = (typeof TXN_STATES)[number];

/** A producer's id and epoch. */
export interface TxnProducer {
  readonly producerId: number;
  readonly producerEpoch: number;
}

/** InitProducerId with (or without: an idempotent producer) a transactional id. */
export interface TxnInitProducerIdInput {
  /** null or "": not transactional (a plain idempotent producer id, from the controller). */
  readonly transactionalId: string | null;
  /** In [1, transaction.max.timeout.ms]; else INVALID_TRANSACTION_TIMEOUT. */
  readonly transactionTimeoutMs: number;
  /** The id the instance holds (KIP-360 bump after an error); -1: none. */
  readonly producerId: bigint;
  /** Its epoch; -1: none. */
  readonly producerEpoch: number;
}

/** One partition a request names. */
export interface TxnTopicPartition {
  readonly topic: string;
  readonly partition: number;
}

/** AddPartitionsToTxn (TV1) or its KIP-890 verify form. */
export interface AddPartitionsInput {
  readonly transactionalId: string;
  readonly producerId: bigint;
  readonly producerEpoch: number;
  readonly partitions: readonly TxnTopicPartition[];
  /** true: only answer whether each partition is in the transaction (INVALID_TXN_STATE if not). */
  readonly verifyOnly: boolean;
}

/** The outcome for one partition of `addPartitions`. */
export interface AddPartitionResult {
  readonly topic: string;
  readonly partition: number;
  readonly error: RillError | null;
}

/** AddOffsetsToTxn: the group's offsets partition joins the transaction. */
export interface AddOffsetsInput {
  readonly transactionalId: string;
  readonly producerId: bigint;
  readonly producerEpoch: number;
  readonly groupId: string;
}

/** TxnOffsetCommit (and gRPC CommitOffsets with a transactional id). */
export interface TxnOffsetCommitInput {
  readonly transactionalId: string;
  readonly producerId: bigint;
  readonly producerEpoch: number;
  readonly groupId: string;
  /** The committing member (KIP-447); null or "": no membership check. */
  readonly memberId: string | null;
  /** Its generation (classic) or member epoch (consumer groups); -1: not checked. */
  readonly generationOrEpoch: number;
  readonly offsets: readonly CommitInput[];
}

/** EndTxn / gRPC EndTransaction. */
export interface EndTransactionInput {
  readonly transactionalId: string;
  readonly producerId: bigint;
  readonly producerEpoch: number;
  readonly commit: boolean;
  /** TV2 (gRPC, Kafka EndTxn v5+): the epoch is bumped and returned (a new id when it would overflow). */
  readonly bumpEpoch: boolean;
}

/** DescribeTransactions: one transactional id. */
export interface TransactionDescription {
  readonly transactionalId: string;
  /** TRANSACTIONAL_ID_NOT_FOUND, NOT_COORDINATOR...; the fields below are then empty. */
  readonly error: RillError | null;
  readonly state: TxnStateName;
  readonly producerId: number;
  readonly producerEpoch: number;
  readonly timeoutMs: number;
  /** When the open transaction started (its first partition); -1 when none is open. */
  readonly startTimeMs: number;
  readonly partitions: readonly TxnTopicPartition[];
  /** Groups whose offsets are in the transaction. */
  readonly groups: readonly string[];
  /** The coordinator (node id). */
  readonly coordinatorId: number;
}

/** ListTransactions' filter (Kafka's, KIP-994 duration). Empty lists: any. */
export interface ListTransactionsFilter {
  readonly states: readonly string[];
  readonly producerIds: readonly bigint[];
  /** Only transactions open longer than this; <= 0: any. */
  readonly durationFilterMs: number;
}

/** One row of ListTransactions. */
export interface TransactionListing {
  readonly transactionalId: string;
  readonly producerId: number;
  readonly state: TxnStateName;
  /** How long the open transaction has been running; -1 when none is open. */
  readonly durationMs: number;
  readonly coordinatorId: number;
}

/**
 * AbortTransaction (kafka-transactions.sh abort): either the coordinator aborts a transactional
 * id's open transaction, or — for a hanging transaction the coordinator does not know (its
 * producer is gone) — an abort marker is written straight to one partition for that producer.
 */
export type AbortTransactionInput =
  | { readonly kind: "transactional-id"; readonly transactionalId: string }
  | {
      readonly kind: "partition";
      readonly topic: string;
      readonly partition: number;
      readonly producerId: bigint;
      readonly producerEpoch: number;
      /** The coordinator epoch the marker carries; -1: the partition accepts it from an admin. */
      readonly coordinatorEpoch: number;
    };

/** The transactions service (one per broker; answers NOT_COORDINATOR for ids coordinated elsewhere). */
export interface TransactionsService {
  /** The node that coordinates `transactionalId` (COORDINATOR_NOT_AVAILABLE while unknown). */
  coordinatorOf(transactionalId: string): number;
  initProducerId(i: TxnInitProducerIdInput): Promise<TxnProducer>;
  addPartitions(i: AddPartitionsInput): Promise<AddPartitionResult[]>;
  addOffsets(i: AddOffsetsInput): Promise<void>;
  txnOffsetCommit(i: TxnOffsetCommitInput): Promise<OffsetResult[]>;
  endTransaction(i: EndTransactionInput): Promise<TxnProducer>;
  /** Ids coordinated elsewhere answer NOT_COORDINATOR in their entry. */
  describeTransactions(ids: readonly string[]): TransactionDescription[];
  /** The transactions this broker coordinates. */
  listTransactions(f: ListTransactionsFilter): TransactionListing[];
  abortTransaction(i: AbortTransactionInput): Promise<void>;
}

/** What the produce gate is asked before a transactional batch is appended. */
export interface TxnProduceGateInput {
  readonly transactionalId: string;
  readonly producerId: number;
  readonly producerEpoch: number;
  readonly topic: string;
  readonly partition: number;
  /** "add": TV2, the partition joins implicitly; "verify": TV1, it must have been added. */
  readonly mode: "add" | "verify";
}

/**
 * The gate the ProduceHandler calls on the partition's leader before appending a transactional
 * batch; resolves once the coordinator (here or on another broker) admits the partition, rejects
 * with PRODUCER_FENCED, INVALID_PRODUCER_EPOCH, INVALID_TXN_STATE, CONCURRENT_TRANSACTIONS...
 */
export interface TxnProduceGate {
  ensure(i: TxnProduceGateInput): Promise<void>;
}

/**
 * Port: the transaction coordinator on another broker (implemented in src/rpc over the
 * inter-broker service). Used by the produce gate and by forwarding adapters.
 */
export interface RemoteTxnCoordinator {
  ensure(node: number, i: TxnProduceGateInput): Promise<void>;
}

/** A commit/abort marker for one partition. */
export interface TxnMarker {
  readonly producerId: number;
  readonly producerEpoch: number;
  readonly commit: boolean;
  /** The leader epoch of the coordinator's `__transaction_state` partition. */
  readonly coordinatorEpoch: number;
}

/**
 * Port: writes a marker to a partition led by another broker (src/rpc: an internal RPC on the
 * inter-broker service, authenticated like ReplicaFetch). Resolves once that leader's ISR holds it.
 */
export interface TxnMarkerWriter {
  writeMarkers(node: number, markers: readonly { topic: string; partition: number; marker: TxnMarker }[]): Promise<(RillError | null)[]>;
}
