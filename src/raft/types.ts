/**
 * The data types of the Raft core: log entries, persisted and volatile state, snapshots, the
 * messages voters exchange, and the Ready batch of effects the core hands to its shell.
 *
 * Terms and indexes are JS numbers (exact up to 2^53). Node ids are positive integers; 0 means
 * "none" (no vote, no known leader).
 */

/** A voter's id: a positive integer. */
export type NodeId = number;

/** The id that means "nobody" (no vote cast, no leader known). */
export const NONE: NodeId = 0;

/**
 * What an entry carries: application data, the empty entry a new leader appends, or a voter set
 * (config.ts) that takes effect on each node as soon as it is appended there.
 */
export type EntryKind = "data" | "noop" | "config";

/** One log entry. `index` starts at 1; index 0 with term 0 is the empty log's sentinel. */
export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly kind: EntryKind;
  readonly data: Uint8Array;
}

/** The state that must be durable before any message that depends on it is sent. */
export interface HardState {
  readonly term: number;
  /** The candidate voted for in `term`, or NONE. */
  readonly vote: NodeId;
  /** The highest index known committed. */
  readonly commit: number;
}

/** A node's role. "precandidate" is the pre-vote phase: it campaigns without bumping its term. */
export type Role = "follower" | "precandidate" | "candidate" | "leader";

/** Volatile state the shell may want to observe (it need not be persisted). */
export interface SoftState {
  readonly leader: NodeId;
  readonly role: Role;
}

/** What a snapshot covers: the log up to and including `index` (whose term is `term`). */
export interface SnapshotMeta {
  readonly index: number;
  readonly term: number;
  /** The voter ids of the configuration at `index`. */
  readonly voters: readonly NodeId[];
  /** The voters' directory ids, parallel to `voters` (absent when none is known). */
  readonly directoryIds?: readonly string[];
}

/** An application snapshot: its metadata and the opaque state-machine image. */
export interface Snapshot {
  readonly meta: SnapshotMeta;
  readonly data: Uint8Array;
}

/** Fields every message carries. */
interface Envelope {
  readonly from: NodeId;
  readonly to: NodeId;
  /** The sender's term (for PreVote: the term the sender would campaign at). */
  readonly term: number;
}

/** Pre-vote request (Raft thesis 9.6): would you vote for me at `term`? Changes no state. */
export interface PreVoteMessage extends Envelope {
  readonly type: "prevote";
  readonly lastIndex: number;
  readonly lastTerm: number;
}

/** Vote request. `transfer` marks a campaign started by TimeoutNow: it overrides leader leases. */
export interface VoteMessage extends Envelope {
  readonly type: "vote";
  readonly lastIndex: number;
  readonly lastTerm: number;
  readonly transfer: boolean;
}

/** Answer to a PreVote or Vote. A granted pre-vote carries the requested term. */
export interface VoteResponseMessage extends Envelope {
  readonly type: "prevote-response" | "vote-response";
  readonly reject: boolean;
}

/** AppendEntries: entries after (prevIndex, prevTerm), and the leader's commit index. */
export interface AppendMessage extends Envelope {
  readonly type: "append";
  readonly prevIndex: number;
  readonly prevTerm: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
}

/**
 * Answer to an Append or InstallSnapshot. Accepted: `index` is the last index known to match the
 * leader. Rejected: `index` is the rejected prevIndex, and (`hintIndex`, `hintTerm`) is the
 * follower's largest entry with term <= the leader's prevTerm, so the leader can skip a whole
 * term of conflicting entries at once.
 */
export interface AppendResponseMessage extends Envelope {
  readonly type: "append-response";
  readonly index: number;
  readonly reject: boolean;
  readonly hintIndex: number;
  readonly hintTerm: number;
}

/** Leader liveness and commit propagation: `commit` is at most the follower's known match. */
export interface HeartbeatMessage extends Envelope {
  readonly type: "heartbeat";
  readonly commit: number;
}

/** Answer to a heartbeat. */
export interface HeartbeatResponseMessage extends Envelope {
  readonly type: "heartbeat-response";
}

/** InstallSnapshot: the leader's latest snapshot, for a follower whose next entry was compacted. */
export interface SnapshotMessage extends Envelope {
  readonly type: "snapshot";
  readonly snapshot: Snapshot;
}

/** Leadership transfer: the leader tells an up-to-date follower to campaign now. */
export interface TimeoutNowMessage extends Envelope {
  readonly type: "timeout-now";
}

/** Every message voters exchange. */
export type Message =
  | PreVoteMessage
  | VoteMessage
  | VoteResponseMessage
  | AppendMessage
  | AppendResponseMessage
  | HeartbeatMessage
  | HeartbeatResponseMessage
  | SnapshotMessage
  | TimeoutNowMessage;

/** The `type` tag of a message. */
export type MessageType = Message["type"];

/**
 * A batch of effects from the core. The shell must handle it in this order:
 *
 * 1. persist, durably (fsync) and in this order: `snapshot`, then `entries` (appending, and
 *    truncating any stored entries at or after the first one's index), then `hardState`;
 * 2. send `messages` (only now: they may promise what step 1 made durable, such as a vote or
 *    an acknowledged entry);
 * 3. apply `snapshot` (if any) and then `committedEntries`, in order, to the state machine;
 * 4. call `advance(ready)`.
 *
 * The core may be ticked and stepped while a Ready is being handled, but `ready()` must not be
 * called again before `advance`.
 */
export interface Ready {
  /** Present when leader or role changed since the last Ready. */
  readonly softState: SoftState | null;
  /** Present when term, vote or commit changed since the last Ready. */
  readonly hardState: HardState | null;
  /** Entries to append to stable storage (not yet durable). */
  readonly entries: readonly Entry[];
  /** A snapshot received from the leader, to persist and restore. */
  readonly snapshot: Snapshot | null;
  /** Entries known committed and durable here, to apply in order. */
  readonly committedEntries: readonly Entry[];
  /** Messages to send once the state above is durable. */
  readonly messages: readonly Message[];
}
