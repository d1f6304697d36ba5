/**
 * The domain types of Produce: what a producer asks (`ProduceInput`) and what it is answered
 * (`ProduceResult`), free of any wire format. A protocol adapter decodes its request into a
 * `ProduceInput` and encodes the `ProduceResult` it gets back.
 *
 * Int64 fields of an input (timestamps, the producer id) stay `bigint`, as every wire carries
 * them, so validation reports exactly the value that was sent. Offsets in results are numbers:
 * the log's offsets are safe integers.
 */
import type { Requester } from "../security/requester.ts";
import type { RillError } from "../base/errors.ts";

/**
 * The acknowledgement levels a producer may ask for. The numbers are those of the wire
 * contract's `rill.v1.Acks` (stable: renumbering breaks clients); another protocol maps its own
 * values onto them (Kafka: 0 → NONE, 1 → LEADER, -1 → ALL). Any other number is answered
 * INVALID_REQUIRED_ACKS.
 */
export const ProduceAcks = {
  /** Not set: the documented default, ALL for the append's in-sync check. */
  UNSPECIFIED: 0,
  /** No answer is awaited: offsets come back as -1. */
  NONE: 1,
  /** Answered once the leader has appended. */
  LEADER: 2,
  /** Answered once every in-sync replica has the records (the high watermark passed them). */
  ALL: 3,
} as const;

/** A record header to produce. */
export interface ProduceHeader {
  readonly key: string;
  /** null: the header has no value. */
  readonly value: Uint8Array | null;
}

/** A plain record for the broker to route and batch (thin clients). */
export interface ProduceRecord {
  /** null: no key (the record goes to the sticky partition unless one is named). */
  readonly key: Uint8Array | null;
  /** null: a tombstone. */
  readonly value: Uint8Array | null;
  readonly headers: readonly ProduceHeader[];
  /** Create time in ms since the epoch; null: the broker's clock when it builds the batch. */
  readonly timestampMs: bigint | null;
}

/** One produce request: exactly one of `records` and `recordBatch` carries the payload. */
export interface ProduceInput {
  readonly topic: string;
  /** The partition to write to; undefined: routed (murmur2 of the key, else sticky). */
  readonly partition: number | undefined;
  /** Plain records, routed and batched by the broker. */
  readonly records: readonly ProduceRecord[];
  /** Kafka RecordBatch v2 bytes, appended as they are; null: none. Never empty. */
  readonly recordBatch: Buffer | null;
  /** One of `ProduceAcks` (anything else is refused). */
  readonly acks: number;
  /** How long acks=ALL waits for the in-sync replicas; 0: 30 s. At most 300 000. */
  readonly timeoutMs: number;
  /** Idempotent producer id (from InitProducerId); undefined or negative: not idempotent. */
  readonly producerId: bigint | undefined;
  readonly producerEpoch: number;
  /** Sequence number of the first record (idempotence counts per partition). */
  readonly baseSequence: number;
  /** Who sent it: a request passed on to a partition's leader is authorized there for this caller. Absent: nobody in particular. */
  readonly requester?: Requester;
  /**
   * Transactions (issue 17): the producer's transactional id; its batches are transactional and
   * the leader appends them only once the transaction coordinator has admitted the partition
   * (`TxnProduceGate`, transactions.ts). Absent or null: not transactional.
   */
  readonly transactionalId?: string | null;
  /**
   * How the partition joins the transaction: 2 (gRPC, Kafka clients with TV2) = on its first
   * produce; 1 (older Kafka clients, KIP-890 part 1) = only if the client added it with
   * AddPartitionsToTxn, else INVALID_TXN_STATE. Absent: 2.
   */
  readonly transactionVersion?: 1 | 2;
}

/** The outcome for one partition a request wrote to. */
export interface ProducePartitionResult {
  readonly partition: number;
  /** Offset of the partition's first record; -1 on error or with acks NONE. */
  baseOffset: number;
  /** The broker time stamped on the batch for LogAppendTime topics, else -1. */
  readonly logAppendTimeMs: number;
  /** Why this partition was not written (or not acknowledged); null: it was. */
  error: RillError | null;
}

/** Where one input record went. */
export interface ProducedRecord {
  readonly partition: number;
  /** Its offset; -1 when its partition failed or the producer asked for no acks. */
  offset: number;
}

/** The answer to a produce request that was handled (whole-call errors are thrown instead). */
export interface ProduceResult {
  readonly topic: string;
  /** One entry per partition written, by partition. */
  readonly partitions: ProducePartitionResult[];
  /** One entry per input record, in input order; empty when a `recordBatch` was sent. */
  readonly records: ProducedRecord[];
}

/**
 * The port through which the service passes a request to the leader of its partition when that
 * is another broker (a thin client needs one address). `input` names its partition; the adapter
 * marks the request forwarded, so the leader never forwards it again. A failure to reach the
 * leader rejects with a RillError (retriable where the outcome is unknown).
 */
export interface LeaderForwarder {
  produce(leader: number, input: ProduceInput): Promise<ProduceResult>;
}
