/**
 * The domain types of Fetch, Subscribe and ListOffsets, free of any wire format. Int64 fields of
 * inputs (offsets, timestamps) stay `bigint` as the wire carries them, so validation reports
 * exactly the value sent; offsets in results are numbers (the log's offsets are safe integers).
 */
import type { RillError } from "../base/errors.ts";
import type { FetchedRecords } from "./fetched-records.ts";

/**
 * How fetched data is returned. The numbers are those of the wire contract's
 * `rill.v1.RecordFormat`; any other number is refused.
 */
export const RecordFormat = {
  /** Not set: RECORDS. */
  UNSPECIFIED: 0,
  /** Decoded records (thin clients that do not parse record batches). */
  RECORDS: 1,
  /** The stored RecordBatch v2 bytes, as they are. */
  BATCHES: 2,
} as const;

/**
 * What ListOffsets looks up. The numbers are those of the wire contract's `rill.v1.OffsetSpec`;
 * any other number is refused (in that partition's result).
 */
export const OffsetSpec = {
  /** Not set: LATEST. */
  UNSPECIFIED: 0,
  /** The log start offset. */
  EARLIEST: 1,
  /** The high watermark: the offset the next consumed record will have. */
  LATEST: 2,
  /** The first offset whose timestamp is at or after the given one. */
  TIMESTAMP: 3,
} as const;

/**
 * Which records a read sees. The numbers are those of the wire contract's
 * `rill.v1.IsolationLevel` (the Kafka adapter maps Kafka's 0/1 to them).
 */
export const IsolationLevel = {
  /** Not set: READ_UNCOMMITTED. */
  UNSPECIFIED: 0,
  /** Every record below the high watermark, aborted or in an open transaction too (markers never). */
  READ_UNCOMMITTED: 1,
  /** Records below the last stable offset, aborted ones left out. */
  READ_COMMITTED: 2,
} as const;

/** An aborted transaction of a fetched range: the consumer drops `producerId`'s records from `firstOffset` to its ABORT marker. */
export interface AbortedTransaction {
  readonly producerId: number;
  readonly firstOffset: number;
}

/** One partition to read, from `offset`. */
export interface FetchPartitionInput {
  readonly topic: string;
  readonly partition: number;
  readonly offset: bigint;
  /** Bytes of this partition; 0: 1 MiB (Kafka's max.partition.fetch.bytes). */
  readonly maxBytes: number;
  /**
   * The leader epoch the caller knows (Kafka's current_leader_epoch, KIP-320); absent or -1: not
   * checked. Older than the replica's: FENCED_LEADER_EPOCH; newer: UNKNOWN_LEADER_EPOCH.
   */
  readonly currentLeaderEpoch?: number;
}

/** A Fetch: read, and wait up to `maxWaitMs` until `minBytes` are there. */
export interface FetchInput {
  readonly partitions: readonly FetchPartitionInput[];
  /** Longest wait for `minBytes`, at most 300 000. */
  readonly maxWaitMs: number;
  /** Bytes that end the wait; at least 1. */
  readonly minBytes: number;
  /** Bytes of the whole answer; 0: 50 MiB (Kafka's fetch.max.bytes). */
  readonly maxBytes: number;
  /** One of `RecordFormat`. */
  readonly format: number;
  /**
   * One of `IsolationLevel`: READ_COMMITTED reads stop at the last stable offset and leave out
   * aborted records (RECORDS) or list the aborted transactions (BATCHES). Any other number is
   * refused.
   */
  readonly isolationLevel: number;
  /**
   * The client's rack (Kafka's `client.rack`, KIP-392); absent or "": none. With the broker's
   * `replica.selector` = `rack-aware`, a partition led here that has an in-sync follower in this
   * rack (and a leader in another) answers no records and `preferredReadReplica`.
   */
  readonly clientRack?: string;
}

/** A Subscribe: follow the log end of each partition. */
export interface SubscribeInput {
  readonly partitions: readonly FetchPartitionInput[];
  /** Bytes of one message; 0: 50 MiB. */
  readonly maxBytes: number;
  /** Longest wait on a quiet log between checks; 0: 30 s. */
  readonly maxWaitMs: number;
  /** One of `RecordFormat`. */
  readonly format: number;
  /** One of `IsolationLevel`; absent: READ_UNCOMMITTED. */
  readonly isolationLevel?: number;
}

export type { FetchedHeader, FetchedRecord } from "./fetched-records.ts";

/** What one partition answers. A partition with nothing to read has neither records nor batches. */
export interface FetchPartitionResult {
  readonly topic: string;
  readonly partition: number;
  /** -1 when the partition could not be read at all. */
  readonly highWatermark: number;
  readonly logStartOffset: number;
  /** The high watermark, or the first offset of the oldest open transaction if lower. */
  readonly lastStableOffset: number;
  /** Where the next fetch of this partition starts. */
  readonly nextOffset: number;
  /** Why this partition was not read; null: it was. */
  readonly error: RillError | null;
  /** RECORDS format: the records at or after the asked offset. */
  readonly records: FetchedRecords | null;
  /** BATCHES format: the stored batches, as chunks (slices of one read) to send as they are. */
  readonly batches: readonly Uint8Array[] | null;
  /**
   * READ_COMMITTED in BATCHES format: the aborted transactions that overlap the returned
   * batches, by first offset (Kafka's `aborted_transactions`); an empty list when none. null for
   * READ_UNCOMMITTED and for RECORDS (the broker dropped the aborted records itself).
   */
  readonly abortedTransactions?: readonly AbortedTransaction[] | null;
  /**
   * The node to read this partition from instead (an in-sync follower in the client's rack,
   * KIP-392); absent: read where it was read. Set only on an answer with no data.
   */
  readonly preferredReadReplica?: number;
}

/** The answer to a Fetch, or one Subscribe message: partitions in request order. */
export interface FetchResult {
  readonly partitions: readonly FetchPartitionResult[];
}

/** One partition of a ListOffsets. */
export interface ListOffsetsPartitionInput {
  readonly topic: string;
  readonly partition: number;
  /** One of `OffsetSpec`. */
  readonly spec: number;
  /** For TIMESTAMP. */
  readonly timestampMs: bigint;
  /**
   * The leader epoch the caller knows (Kafka's current_leader_epoch); absent or -1: not checked.
   * Older than the partition's: FENCED_LEADER_EPOCH; newer: UNKNOWN_LEADER_EPOCH; below -1: INVALID_REQUEST.
   */
  readonly currentLeaderEpoch?: number | undefined;
}

/** One partition's answer to a ListOffsets. */
export interface ListedOffset {
  readonly topic: string;
  readonly partition: number;
  /** -1: none (no record that recent, or an error). */
  readonly offset: number;
  /** The found record's timestamp (TIMESTAMP), else -1. */
  readonly timestampMs: number;
  /** The partition's leader epoch (EARLIEST, LATEST); null: not reported. */
  readonly leaderEpoch: number | null;
  readonly error: RillError | null;
}

/**
 * A cancellation flag that also ends a pending wait: the adapter sets `aborted` and calls
 * `onabort` when its caller goes away. One wait at a time sets `onabort`.
 */
export interface Cancellation {
  aborted: boolean;
  onabort: (() => void) | null;
}

/**
 * The port through which a fetch reads partitions that have no replica here from their leader
 * (a thin client needs one address). The adapter marks the request forwarded, so the leader
 * never forwards it again. The answer has one result per partition of `input`, in order (a
 * missing one is reported as NOT_LEADER_OR_FOLLOWER); a failure rejects with a RillError.
 */
export interface FetchForwarder {
  /** A Fetch at `leader` (a long poll of `input.maxWaitMs` at most); `cancel` gives it up. */
  fetch(leader: number, input: FetchInput, cancel?: Cancellation): Promise<FetchResult>;
}

/**
 * Read buffers a Subscribe reuses: its disk reads fill buffers taken here, given back once the
 * message that holds them has been sent.
 */
export interface ReadBuffers {
  take(size: number): Buffer;
  give(buffer: Buffer): void;
}

/**
 * Where a Subscribe writes its messages: a transport stream with a bound on what waits to be
 * sent, so a slow client holds a bounded amount of the broker's memory.
 */
export interface SubscribeSink {
  /** Hands a message of about `bytes` bytes to the transport; `onSent` runs once it has been sent. */
  send(message: FetchResult, bytes: number, onSent: () => void): void;
  /** Resolves once the transport takes more, or when `cancel` fires. */
  room(cancel: Cancellation): Promise<void>;
}
