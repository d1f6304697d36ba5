/**
 * A Consume session: one bidirectional stream is a whole group member, so a client in any
 * language consumes in a group with no assignor and no heartbeat loop of its own. This file is
 * the session's logic on domain types; a transport adapter (rpc/consume-stream.ts for gRPC)
 * decodes the client's messages into the calls below and encodes what the session hands its
 * `ConsumeSink`.
 *
 * The life of a session:
 * 1. `subscribe` (first and only once) joins the group. From then on the session heartbeats for
 *    the member at the interval the coordinator asks for, and at once when the group changes
 *    (`GroupRuntime.watch`), until the session ends.
 * 2. Ownership changes go to `sink.assignment` {assigned, revoked}. A revoked partition is
 *    dropped from the owned set before its revocation is handed to the sink, so no record of it
 *    follows the revocation. If records of it were sent and not committed, the session keeps
 *    reporting it as owned for REVOKE_GRACE_MS so the client can still commit them; the next
 *    heartbeat after that gives it back, so the new owner never overlaps the old one.
 * 3. The pump reads owned partitions from the committed offset (or `autoOffsetReset`) and hands
 *    whole batches to `sink.records`, at most `maxOutstandingRecords` records (and
 *    `maxOutstandingBytes` bytes) beyond what the member has committed, plus any `flow` credit.
 *    A batch that cannot be read is handed over as the partition's CORRUPT_MESSAGE (with its
 *    offset and the offset after it) and the partition pauses until the member commits past
 *    it; the other partitions go on. A partition whose new leader does not know its high
 *    watermark yet (ReplicaManager.hwKnown) delivers nothing, with no error, until it does; a
 *    start position resolved meanwhile ("latest", or a committed offset checked against the log
 *    end) takes the least that high watermark will be. A partition this broker holds no replica
 *    of (a topic whose replication factor is below the cluster's size, or a reassignment moved
 *    it away) is read at its leader through the `ConsumeRemote` port, as Fetch forwards: per
 *    leader one long-poll Fetch at a time for all the session's partitions it leads (asked only
 *    while credit is left; interrupted by a seek, a new assignment or a resume), and one
 *    ListOffsets for starts and seeks, so a committed offset is checked against the leader's
 *    log. Its answers go through the same credit, memory budget, quota, CORRUPT_MESSAGE and
 *    revocation rules as a local read; a failed read (NOT_LEADER_OR_FOLLOWER, an unreachable
 *    leader) is tried again after a doubling backoff (50 ms to 2 s), at whichever broker the
 *    metadata names then, and one that becomes local is read here. Without the port such a
 *    partition is owned and announced all the same and waits for a replica here. A committed
 *    offset past a local follower's high watermark waits for the follower (it is not out of
 *    range for that). An assignment is never half applied (issue 17: a start
 *    that failed half-way used to leave earlier partitions owned but never announced, and their
 *    records made the client fail). When the sink answers false (the transport's buffer is full) the pump waits for
 *    `drained()`; a client that reads nothing for longer than its session timeout is failed
 *    with REQUEST_TIMED_OUT, so it does not keep its partitions.
 *    Each message reserves its memory from the broker's `FetchMemory` (fetch.memory.max.bytes)
 *    before it reads, sized from the log first (a share of the budget at most, the first batch
 *    whole), and gives it back once the sink has written it (`onSent`) or the session ends. When
 *    the budget is spent the pump waits in line for room as long as the session lives: it sends
 *    later, never fails.
 * 3a. `pause`/`resume` stop and restart a partition's delivery; `seek` moves its position (credit
 *    counts from there, nothing is committed) and tags the records that follow with the seek's
 *    id. A `topicRegex` subscription is matched against the metadata image at every heartbeat
 *    (KIP-848's subscribed_topic_regex: the member's subscription lives broker-side, so a topic
 *    created later joins it without a new stream or a rejoin).
 * 4. `commit` is answered by `sink.commitResult`, once the commit is on every in-sync replica of
 *    the group's `__consumer_offsets` partition; a partition the member does not own gets an
 *    error there and is not committed.
 * 5. `close` (the client ended or cancelled, or the broker shuts down) leaves the group (a
 *    static member leaves for its session timeout and keeps its partitions) and calls
 *    `sink.end(null)`; `abort` or any failure ends it with `sink.end(error)`. `end` is called
 *    exactly once, and nothing is handed to the sink after it.
 *
 * Errors: a bad event (a commit before subscribe, a second subscribe, negative credit...) ends
 * the session with INVALID_REQUEST naming the field; NOT_COORDINATOR and other non-retriable
 * heartbeat errors end it too (the client must find the coordinator and join there); a fenced
 * member gives up everything and joins again. AssertionErrors (bugs) are never turned into an
 * `end(error)`: `RillError.from` rethrows them.
 */
import { requestMetricsOf } from "./request-metrics.ts";
import { RillError, rillError } from "../base/errors.ts";
import type { Timers } from "../base/timers.ts";
import { type GroupRuntime, validateGroupId } from "../coordinator/group-runtime.ts";
import { resolveStartOffset, type TopicPartition, type TopicPartitions } from "../coordinator/index.ts";
import type { ReplicaManager } from "../replication/replica-manager.ts";
import { publishCorruptRead } from "./corrupt-reads.ts";
import { type CorruptBatch, checkFetched, corruptError } from "./fetch-records.ts";
import {
  type AbortedTransaction,
  type Cancellation,
  type FetchInput,
  type FetchPartitionResult,
  type FetchResult,
  IsolationLevel,
  type ReadBuffers,
  RecordFormat,
} from "./fetch-types.ts";
import type { FetchedRecords } from "./fetched-records.ts";
import type { Reservation } from "../base/memory-budget.ts";
import { FETCH_MEMORY_WAIT_MS, type FetchMemory, RESPONSE_COPIES, UNBOUNDED_FETCH_MEMORY } from "./fetch.ts";
import { type CommitInput, type OffsetResult, checkCommitOffsets, commitChecked, currentAssignment } from "./groups.ts";

/** Longest wait of a read at another broker (a long poll: it answers as soon as there is data). */
export const REMOTE_WAIT_MS = 500;
/** First and longest pause before reading again from a leader that failed (doubling in between). */
const REMOTE_BACKOFF_MS = 50;
const REMOTE_BACKOFF_MAX_MS = 2000;

/** Where a `ConsumeRemote.listOffsets` looks. */
export type RemoteOffsetSpec = "earliest" | "latest" | { readonly timestampMs: number };

/**
 * Reads of partitions this broker holds no replica of, at their leaders: the session's port,
 * implemented by the transport adapter with forwarded calls (as Fetch forwards), on behalf of the
 * stream's caller (the leader checks its permissions). Both reject when the leader cannot be
 * reached; errors of one partition come back in its entry.
 */
export interface ConsumeRemote {
  /** A Fetch at `leader` (a long poll of `input.maxWaitMs` at most); `cancel` gives it up. */
  fetch(leader: number, input: FetchInput, cancel: Cancellation): Promise<FetchResult>;
  /**
   * ListOffsets at `leader`, one answer per entry in order (`offset` -1: no record that recent);
   * `readCommitted`: "latest" is the last stable offset.
   */
  listOffsets(
    leader: number,
    partitions: readonly { readonly topic: string; readonly partition: number; readonly spec: RemoteOffsetSpec }[],
    readCommitted: boolean,
    cancel: Cancellation,
  ): Promise<readonly { readonly offset: number; readonly error: RillError | null }[]>;
}

/** Records credit when the subscription leaves `maxOutstandingRecords` 0. */
export const OUTSTANDING_RECORDS_DEFAULT = 1000;
/** Most bytes read from a partition for one `records` output. */
const MESSAGE_BYTES_DEFAULT = 1 << 20;
/** Most topics one subscription may name. */
export const TOPICS_MAX = 1000;
/**
 * How long a revoked partition with uncommitted records waits for the client's commit before
 * it is given up anyway (the commit is still accepted until then).
 */
export const REVOKE_GRACE_MS = 5000;
/** Session timeout when the subscription gives none (KIP-848's default 45 s). */
export const SESSION_TIMEOUT_MS_DEFAULT = 45_000;

/** What a session joins with (the first event). */
export interface ConsumeSubscription {
  readonly groupId: string;
  /** At least one, at most TOPICS_MAX, each an existing topic. */
  readonly topics: readonly string[];
  /** Static membership id; null for a dynamic member. */
  readonly instanceId: string | null;
  /** Where to start a partition without a usable committed offset (Kafka's auto.offset.reset). */
  readonly autoOffsetReset: "earliest" | "latest" | "none";
  /** Records credit; 0: OUTSTANDING_RECORDS_DEFAULT. */
  readonly maxOutstandingRecords: number;
  /** Bytes credit; 0: no limit. */
  readonly maxOutstandingBytes: number;
  /** 0: the coordinator's default (SESSION_TIMEOUT_MS_DEFAULT for a stalled-client check). */
  readonly sessionTimeoutMs: number;
  /** "uniform" or "range"; anything else: the group's. */
  readonly assignor: string;
  readonly clientId: string;
  /** Where the client connects from, for DescribeGroups. */
  readonly clientHost: string;
  /** Decode records for the sink (`DeliveredRecords.records`); else only whole batches go. Default false. */
  readonly decode?: boolean;
  /**
   * One of IsolationLevel; absent: READ_UNCOMMITTED. READ_COMMITTED reads stop at the last
   * stable offset; decoded records leave out aborted ones, batches come with their aborted
   * transactions. Control batches are never decoded as records.
   */
  readonly isolationLevel?: number;
  /**
   * Instead of `topics` (then empty): an ECMAScript regular expression the whole topic name must
   * match; evaluated again at every heartbeat, so topics created later join. Internal topics
   * ("__" first) never match. Default none.
   */
  readonly topicRegex?: string;
  /** With `topicRegex`: keeps the matching topics the member may read (the adapter's authorization). Default: all. */
  readonly readable?: (topics: readonly string[]) => readonly string[];
}

/** Where `seek` moves a partition: an offset, or earliest / latest / the first record at a time. */
export interface SeekInput {
  readonly topic: string;
  readonly partition: number;
  readonly to: number | "earliest" | "latest" | { readonly timestampMs: number };
  /** The client's id for this seek, echoed in `DeliveredRecords.seekId` of the records after it. */
  readonly seekId: bigint;
}

/** A change of the member's ownership. */
export interface AssignmentChange {
  readonly memberId: string;
  readonly memberEpoch: number;
  /** Newly owned partitions. */
  readonly assigned: readonly TopicPartition[];
  /** Partitions taken away: no record of them is handed to the sink after this. */
  readonly revoked: readonly TopicPartition[];
}

/** Records of one owned partition, as stored: whole batches, in offset order. */
export interface DeliveredRecords {
  readonly topic: string;
  readonly partition: number;
  /** The partition's high watermark when read. */
  readonly highWatermark: number;
  /** The first offset to process; the first batch may start before it (a batch is never split). */
  readonly firstOffset: number;
  /** The offset after the last record: what to commit once these are processed. */
  readonly nextOffset: number;
  /** Whole record batches (RecordBatch v2 bytes). */
  readonly chunks: readonly Buffer[];
  /** With `decode`: the records of `chunks` at or after `firstOffset`; else null. */
  readonly records: FetchedRecords | null;
  /** READ_COMMITTED without `decode`: the aborted transactions overlapping `chunks`; else absent or null. */
  readonly abortedTransactions?: readonly AbortedTransaction[] | null;
  /**
   * CORRUPT_MESSAGE when the batch at `firstOffset` cannot be read (no chunks then, and
   * `nextOffset` is the offset after the bad batch). Delivery of the partition pauses until the
   * member commits an offset past `firstOffset` (skipping the batch), or the partition moves.
   */
  readonly error: RillError | null;
  /** The id of the partition's last seek applied before these were read (0n: none). */
  readonly seekId?: bigint;
}

/** The answer to one commit. */
export interface CommitResultOutput {
  /** The id the client gave its commit, echoed. */
  readonly commitId: bigint;
  /** One entry per offset in the commit, in order (empty when `error` concerns the whole commit). */
  readonly offsets: readonly OffsetResult[];
  /** Why the whole commit failed, or null. */
  readonly error: RillError | null;
}

/** Where a session's outputs go; implemented by the transport adapter. */
export interface ConsumeSink {
  /** The member's ownership changed (also sent once after joining, even when empty). */
  assignment(change: AssignmentChange): void;
  /** Records to send; false when the transport's buffer is full (call `drained()` once it empties). */
  records(records: DeliveredRecords, onSent?: () => void): boolean;
  /**
   * True while the client is over its consumer quota (issue 13): the session pushes nothing and
   * waits for `drained()`, which the sink calls once the throttle time has passed.
   */
  throttled?(): boolean;
  /** The answer to a commit. */
  commitResult(result: CommitResultOutput): void;
  /** The session is over: null when it was closed, the reason when it failed. Called once. */
  end(error: RillError | null): void;
}

/** A partition the member owns, and what it was sent. */
interface Owned {
  readonly topic: string;
  readonly partition: number;
  /** Next offset to send; UNRESOLVED until its start is known (see `startOrUnresolved`). */
  position: number;
  /** What the member has committed (or where it started). */
  committed: number;
  /** Messages sent and not yet committed: [offset after the message, bytes], oldest first. */
  sent: Array<[number, number]>;
  /** The batch at `position` cannot be read: nothing is sent until a commit moves past it. */
  stuck: boolean;
  /** Paused by the client: nothing is sent until it resumes. */
  paused?: boolean;
  /** The last seek applied (0n: none). */
  seekId?: bigint;
  /** A partition read at its leader: the answer read from `at`, not sent yet. */
  fetched?: { readonly at: number; readonly p: FetchPartitionResult } | null;
  /** A seek of a partition read at its leader, to be looked up there (the position is UNRESOLVED meanwhile). */
  seekTo?: RemoteOffsetSpec | null;
}

/** Bytes of messages sent for `o` that the member has not committed. */
function uncommittedBytes(o: Owned): number {
  let n = 0;
  for (const [, bytes] of o.sent) n += bytes;
  return n;
}

/** An owned partition's position before its start could be resolved (no replica here yet). */
const UNRESOLVED = -1;

const keyOf = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

/** One member on one stream: a state machine driven by events, with effects through a sink. */
export class ConsumeSession {
  private memberId = "";
  private epoch = 0;
  private heartbeatMs = 3000;
  private readonly owned = new Map<string, Owned>();
  /** Revoked partitions whose sent records are not all committed yet: still reported as owned. */
  private readonly revoking = new Map<string, { o: Owned; timer: unknown }>();
  private extraCredit = 0;
  private extraBytes = 0;
  /** When the pump started waiting for `drained()` (a client that does not read), or -1. */
  private blockedSinceMs = -1;
  private closed = false;
  private timer: unknown = null;
  /** Ends the pump's current wait (for data or for `drained()`). */
  private readonly wake = { aborted: false, onabort: null as (() => void) | null };
  private drainWaiter: (() => void) | null = null;
  private sub: ConsumeSubscription | null = null;
  private unwatch: (() => void) | null = null;
  private readonly unlistenClose: () => void;
  private nudged = false;
  /** A regex subscription's pattern (anchored), or null. */
  private regex: RegExp | null = null;
  /** The topics the last heartbeat subscribed to (regex subscriptions). */
  private subscribedNow = new Set<string>();
  /** Memory held by messages handed to the sink and not yet written (released when the session ends). */
  private readonly held = new Set<Reservation>();
  /** Aborts a wait for memory when the session ends. */
  private readonly closing = { aborted: false, onabort: null as (() => void) | null };
  /** Remote reads in flight, by leader: one fetch, one offsets lookup each at most. */
  private readonly fetching = new Map<number, Cancellation>();
  private readonly looking = new Map<number, Cancellation>();
  /** Leaders that failed: the last pause, and the timer ending the current one (null: over). */
  private readonly backoff = new Map<number, { ms: number; timer: unknown }>();

  /**
   * A session of this broker's groups. When the broker is already shutting down, the session
   * ends at once with SHUTTING_DOWN; otherwise it closes itself when the broker shuts down.
   */
  constructor(
    private readonly rt: GroupRuntime,
    private readonly rm: ReplicaManager,
    private readonly timers: Timers,
    private readonly sink: ConsumeSink,
    private readonly memory: FetchMemory = UNBOUNDED_FETCH_MEMORY,
    private readonly buffers?: ReadBuffers,
    /** Reads of partitions with no replica here, at their leaders; none: they wait for a replica here. */
    private readonly remote?: ConsumeRemote,
  ) {
    if (rm.closed) {
      this.closed = true;
      this.unlistenClose = () => {};
      sink.end(rillError("SHUTTING_DOWN", "consume: the broker is shutting down; join again (through another broker, or once it is back)"));
      return;
    }
    this.unlistenClose = rm.onClose(() => this.close());
  }

  /** True once the session has ended (`sink.end` was called). */
  get ended(): boolean {
    return this.closed;
  }

  /** Joins the group: the first event, and only once. */
  subscribe(sub: ConsumeSubscription): void {
    if (this.closed) return;
    try {
      if (this.sub) throw rillError("INVALID_REQUEST", "subscribe: sent twice on one stream");
      this.start(sub);
    } catch (e) {
      this.fail(e);
    }
  }

  /** Commits offsets of owned partitions; answered by `sink.commitResult` with `commitId`. */
  commit(commitId: bigint, offsets: readonly CommitInput[]): void {
    if (this.closed) return;
    if (!this.sub) return this.fail(rillError("INVALID_REQUEST", "commit: the first message must be subscribe"));
    this.commitOffsets(this.sub, commitId, offsets);
  }

  /** Grants more credit: `records` and `bytes` the session may send in addition. */
  flow(records: number, bytes: number): void {
    if (this.closed) return;
    if (!this.sub) return this.fail(rillError("INVALID_REQUEST", "flow: the first message must be subscribe"));
    if (records < 0) return this.fail(rillError("INVALID_REQUEST", `flow.records: ${records} is negative`));
    if (bytes < 0) return this.fail(rillError("INVALID_REQUEST", `flow.bytes: ${bytes} is negative`));
    this.extraCredit += records;
    this.extraBytes += bytes;
    this.kick();
  }

  /** Stops (`paused` true) or resumes delivery of owned partitions; others are ignored. */
  pause(partitions: readonly TopicPartition[], paused: boolean): void {
    if (this.closed) return;
    if (!this.sub) return this.fail(rillError("INVALID_REQUEST", `${paused ? "pause" : "resume"}: the first message must be subscribe`));
    for (const tp of partitions) {
      const o = this.owned.get(keyOf(tp.topic, tp.partition));
      if (o) o.paused = paused;
    }
    // Either way the credit changed (a paused partition's records do not count): send again.
    if (!paused) this.interruptFetches();
    this.kick();
  }

  /**
   * Moves an owned partition's delivery position (a partition not owned is ignored). Nothing is
   * committed; the credit counts from the new position.
   */
  seek(input: SeekInput): void {
    if (this.closed) return;
    if (!this.sub) return this.fail(rillError("INVALID_REQUEST", "seek: the first message must be subscribe"));
    const o = this.owned.get(keyOf(input.topic, input.partition));
    if (!o) return;
    const { topic, partition, to } = input;
    let offset: number;
    if (typeof to !== "number" && this.leaderElsewhere(topic, partition) !== null) {
      // Read at its leader: looked up there (`pollRemotes`); nothing is sent meanwhile.
      o.position = o.committed = UNRESOLVED;
      o.seekTo = to;
      o.sent = [];
      o.stuck = false;
      o.fetched = null;
      o.seekId = input.seekId;
      this.interruptFetches();
      this.kick();
      return;
    }
    try {
      if (typeof to === "number") {
        if (!Number.isSafeInteger(to) || to < 0) throw rillError("INVALID_REQUEST", `seek.offset: ${to} is not an offset`);
        offset = to;
      } else offset = this.seekOffset(topic, partition, to);
    } catch (e) {
      return this.fail(e);
    }
    o.position = offset;
    o.committed = offset;
    o.sent = [];
    o.stuck = false;
    o.fetched = null;
    o.seekTo = null;
    o.seekId = input.seekId;
    this.kick();
  }

  /** The transport's buffer emptied after `sink.records` answered false: records flow again. */
  drained(): void {
    const w = this.drainWaiter;
    this.drainWaiter = null;
    w?.();
  }

  /** The client ended the stream, or it broke, or the broker stops: leave the group and end. */
  close(): void {
    if (this.closed) return;
    this.stop();
    this.sink.end(null);
  }

  /** Ends the session with `error` (e.g. a message the adapter could not make sense of). */
  abort(error: unknown): void {
    this.fail(error);
  }

  private start(sub: ConsumeSubscription): void {
    validateGroupId(sub.groupId, "subscribe.group_id");
    if (sub.topicRegex) {
      if (sub.topics.length > 0) throw rillError("INVALID_REQUEST", "subscribe: topics and topic_regex are exclusive");
      try {
        this.regex = new RegExp(`^(?:${sub.topicRegex})$`, "u");
      } catch (e) {
        throw rillError("INVALID_REQUEST", `subscribe.topic_regex: ${(e as Error).message}`);
      }
    } else if (sub.topics.length === 0) throw rillError("INVALID_REQUEST", "subscribe.topics: at least one topic is required");
    if (sub.topics.length > TOPICS_MAX) throw rillError("INVALID_REQUEST", `subscribe.topics: more than ${TOPICS_MAX}`);
    const isolation = sub.isolationLevel ?? IsolationLevel.UNSPECIFIED;
    if (
      isolation !== IsolationLevel.UNSPECIFIED &&
      isolation !== IsolationLevel.READ_UNCOMMITTED &&
      isolation !== IsolationLevel.READ_COMMITTED
    ) {
      throw rillError(
        "INVALID_REQUEST",
        `subscribe.isolation_level: ${isolation} is not ISOLATION_LEVEL_READ_UNCOMMITTED (1) or ISOLATION_LEVEL_READ_COMMITTED (2)`,
      );
    }
    sub.topics.forEach((t, i) => this.rm.topic(t, `subscribe.topics[${i}]`));
    if (sub.maxOutstandingRecords < 0)
      throw rillError("INVALID_REQUEST", `subscribe.max_outstanding_records: ${sub.maxOutstandingRecords} is negative`);
    if (sub.maxOutstandingBytes < 0)
      throw rillError("INVALID_REQUEST", `subscribe.max_outstanding_bytes: ${sub.maxOutstandingBytes} is negative`);
    this.sub = sub;
    const unwatchGroup = this.rt.watch(sub.groupId, () => this.nudge());
    // A regex subscription: a partition hosted here that appears (a new topic) is matched at
    // once; topics without a replica here are matched at the next heartbeat.
    const unwatchRoles = this.regex !== null ? this.rm.onRoleChange((r) => this.onNewPartition(r.topic)) : () => undefined;
    this.unwatch = () => {
      unwatchGroup();
      unwatchRoles();
    };
    this.heartbeat();
    void this.pump(sub).catch((e: unknown) => this.fail(e));
  }

  /** The group changed: heartbeat soon (once), to pick up or acknowledge assignments. */
  private nudge(): void {
    if (this.closed || this.nudged) return;
    this.nudged = true;
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = this.timers.setTimeout(() => this.heartbeat(), 0);
  }

  /** One heartbeat for the member; applies any new assignment and schedules the next. */
  private heartbeat(): void {
    const sub = this.sub;
    if (this.closed || !sub) return;
    this.timer = null;
    this.nudged = false;
    const stalledMs = this.blockedSinceMs < 0 ? 0 : this.rm.nowMs() - this.blockedSinceMs;
    const sessionMs = sub.sessionTimeoutMs || SESSION_TIMEOUT_MS_DEFAULT;
    if (stalledMs > sessionMs) {
      // The client stopped reading: it is as good as dead, so it must not keep its partitions.
      this.fail(
        rillError(
          "REQUEST_TIMED_OUT",
          `consume: the client read nothing for ${stalledMs} ms, more than its session timeout ${sessionMs} ms; it left the group`,
        ),
      );
      return;
    }
    try {
      this.heartbeatOnce(sub);
    } catch (e) {
      if (!this.heartbeatFailed(RillError.from(e))) return;
    }
    this.timer = this.timers.setTimeout(() => this.heartbeat(), this.heartbeatMs);
  }

  private heartbeatOnce(sub: ConsumeSubscription): void {
    const res = this.rt.run(sub.groupId, (shard, now) =>
      shard.heartbeat(
        {
          groupId: sub.groupId,
          memberId: this.memberId,
          memberEpoch: this.epoch,
          ...(sub.instanceId !== null ? { instanceId: sub.instanceId } : {}),
          subscribedTopics: this.subscribedTopics(sub),
          ownedPartitions: this.ownedList(),
          ...(sub.assignor === "uniform" || sub.assignor === "range" ? { assignor: sub.assignor } : {}),
          ...(sub.sessionTimeoutMs > 0 ? { sessionTimeoutMs: sub.sessionTimeoutMs } : {}),
          clientId: sub.clientId,
          clientHost: sub.clientHost,
        },
        now,
      ),
    );
    const joined = this.memberId === "";
    this.memberId = res.memberId;
    this.epoch = res.memberEpoch;
    this.heartbeatMs = res.heartbeatIntervalMs;
    const assignment = res.assignment ?? (joined ? currentAssignment(this.rt, sub.groupId, res.memberId) : null);
    if (assignment) this.apply(sub, assignment, joined);
  }

  /** A hosted partition of `topic` changed role: heartbeat now if a regex subscription gains the topic. */
  private onNewPartition(topic: string): void {
    const re = this.regex;
    if (re === null || topic.startsWith("__") || !re.test(topic) || this.subscribedNow.has(topic)) return;
    this.nudge();
  }

  /** The topics named, or those the regex matches now (and the member may read), at most TOPICS_MAX. */
  private subscribedTopics(sub: ConsumeSubscription): readonly string[] {
    const re = this.regex;
    if (re === null) return sub.topics;
    const matching = [...this.rm.image.topics.keys()].filter((t) => !t.startsWith("__") && re.test(t)).sort();
    const topics = (sub.readable ? sub.readable(matching) : matching).slice(0, TOPICS_MAX);
    this.subscribedNow = new Set(topics);
    return topics;
  }

  /** Handles a failed heartbeat; false when the session ended because of it. */
  private heartbeatFailed(err: RillError): boolean {
    if (err.kind.name === "FENCED_MEMBER_EPOCH" || err.kind.name === "UNKNOWN_MEMBER_ID") {
      // Fenced (e.g. a session timeout while the client stalled): give everything up, rejoin.
      if (this.sub) this.apply(this.sub, [], false);
      this.memberId = "";
      this.epoch = 0;
      return true;
    }
    if (!err.retriable || err.kind.name === "NOT_COORDINATOR" || err.kind.name === "COORDINATOR_NOT_AVAILABLE") {
      // Not the coordinator (or none yet): the client must find it and join there.
      this.fail(err);
      return false;
    }
    return true;
  }

  private ownedList(): TopicPartitions[] {
    const byTopic = new Map<string, number[]>();
    for (const o of [...this.owned.values(), ...[...this.revoking.values()].map((r) => r.o)]) {
      const list = byTopic.get(o.topic) ?? [];
      list.push(o.partition);
      byTopic.set(o.topic, list);
    }
    return [...byTopic].map(([topic, partitions]) => ({ topic, partitions: partitions.sort((a, b) => a - b) }));
  }

  /**
   * Moves to the new assignment: revoked partitions stop first, then the sink is told. The new
   * partitions' start positions are resolved before anything changes, so an error (OFFSET_OUT_OF_RANGE
   * under auto_offset_reset none) leaves the session as it was: it never owns a partition it has
   * not announced (the client refuses records of a partition it was not given).
   */
  private apply(sub: ConsumeSubscription, assignment: readonly TopicPartitions[], announce: boolean): void {
    const starts = this.startsOf(sub, assignment);
    const { revoked, released } = this.revokeAllBut(assignment);
    const assigned = this.takeNew(assignment, starts);
    if ((assigned.length > 0 || revoked.length > 0 || announce) && !this.closed)
      this.sink.assignment({ memberId: this.memberId, memberEpoch: this.epoch, assigned, revoked });
    // A revocation is acknowledged by the next heartbeat: send it soon, not a whole interval later.
    if (released) this.nudge();
    if (assigned.length > 0 || revoked.length > 0) this.interruptFetches();
    this.kick();
  }

  /**
   * Drops owned partitions that are not in `assignment`. Those with uncommitted records wait in
   * `revoking` for the client's commit; `released` tells whether any was given up at once.
   */
  private revokeAllBut(assignment: readonly TopicPartitions[]): { revoked: TopicPartition[]; released: boolean } {
    const next = new Set(assignment.flatMap((t) => t.partitions.map((p) => keyOf(t.topic, p))));
    const revoked: TopicPartition[] = [];
    let released = false;
    for (const [k, o] of this.owned) {
      if (next.has(k)) continue;
      this.owned.delete(k);
      revoked.push({ topic: o.topic, partition: o.partition });
      if (o.position > o.committed) {
        // Records were sent and not committed: let the client commit them before giving up.
        this.revoking.set(k, { o, timer: this.timers.setTimeout(() => this.release(k), REVOKE_GRACE_MS) });
      } else released = true;
    }
    return { revoked, released };
  }

  /**
   * Start positions of the partitions of `assignment` neither owned nor revoking, by key
   * (UNRESOLVED for one this broker holds no replica of now). Throws what `startOffset` throws
   * otherwise, having changed nothing.
   */
  private startsOf(sub: ConsumeSubscription, assignment: readonly TopicPartitions[]): Map<string, number> {
    const starts = new Map<string, number>();
    for (const t of assignment) {
      for (const p of t.partitions) {
        const k = keyOf(t.topic, p);
        if (!this.owned.has(k) && !this.revoking.has(k)) starts.set(k, this.startOrUnresolved(sub, t.topic, p));
      }
    }
    return starts;
  }

  /** Owns the partitions of `assignment` not owned yet (taking back ones still revoking) at `starts`; returns the new ones. */
  private takeNew(assignment: readonly TopicPartitions[], starts: ReadonlyMap<string, number>): TopicPartition[] {
    const assigned: TopicPartition[] = [];
    for (const t of assignment) {
      for (const p of t.partitions) {
        const k = keyOf(t.topic, p);
        const back = this.revoking.get(k);
        if (back) {
          // Given back while revoking: the client dropped it with its revocation, so it is
          // announced again and sent again from what was committed.
          this.timers.clearTimeout(back.timer);
          this.revoking.delete(k);
          back.o.position = back.o.committed;
          back.o.sent = [];
          back.o.paused = false;
          back.o.fetched = null;
          this.owned.set(k, back.o);
          assigned.push({ topic: t.topic, partition: p });
          continue;
        }
        const start = starts.get(k);
        if (this.owned.has(k) || start === undefined) continue;
        this.owned.set(k, { topic: t.topic, partition: p, position: start, committed: start, sent: [], stuck: false });
        assigned.push({ topic: t.topic, partition: p });
      }
    }
    return assigned;
  }

  /** Gives up a revoked partition (its records are committed, or the grace ran out). */
  private release(k: string): void {
    const r = this.revoking.get(k);
    if (!r) return;
    this.timers.clearTimeout(r.timer);
    this.revoking.delete(k);
    this.nudge();
  }

  /** Where a seek to `to` moves a partition read here. */
  private seekOffset(topic: string, partition: number, to: RemoteOffsetSpec): number {
    if (to === "earliest") return this.rm.earliestOffset(topic, partition).offset;
    if (to === "latest") return this.rm.startingLatestOffset(topic, partition);
    return this.offsetForTimestamp(topic, partition, to.timestampMs) ?? this.rm.startingLatestOffset(topic, partition);
  }

  /** A seek's timestamp lookup; null when no record is that recent, or none is known to be below the high watermark yet. */
  private offsetForTimestamp(topic: string, partition: number, ts: number): number | null {
    try {
      return this.rm.offsetForTimestamp(topic, partition, ts)?.offset ?? null;
    } catch (e) {
      if (e instanceof RillError && e.kind.name === "OFFSET_NOT_AVAILABLE") return null;
      throw e;
    }
  }

  /**
   * `startOffset`, or UNRESOLVED when it cannot be known here now (a retriable error: this broker
   * holds no replica of the partition at the moment, e.g. a reassignment moved it away, or it
   * is shutting down). The partition is owned and announced all the same; the pump resolves its
   * start once it can and sends nothing for it meanwhile. Other errors are thrown.
   */
  private startOrUnresolved(sub: ConsumeSubscription, topic: string, partition: number): number {
    try {
      return this.startOffset(sub, topic, partition);
    } catch (e) {
      if (RillError.from(e).retriable) return UNRESOLVED;
      throw e;
    }
  }

  /** Whether `o` has a start position, resolving it now if it can (see `startOrUnresolved`). */
  private resolved(sub: ConsumeSubscription, o: Owned): boolean {
    if (o.position !== UNRESOLVED) return true;
    // Read at its leader: its start is looked up there (`pollRemotes`).
    if (this.leaderElsewhere(o.topic, o.partition) !== null) return false;
    if (o.seekTo) {
      // A seek to look up at a leader, and the partition is read here now.
      try {
        o.position = o.committed = this.seekOffset(o.topic, o.partition, o.seekTo);
        o.seekTo = null;
        return true;
      } catch (e) {
        if (RillError.from(e).retriable) return false;
        throw e;
      }
    }
    const start = this.startOrUnresolved(sub, o.topic, o.partition);
    if (start === UNRESOLVED) return false;
    o.position = o.committed = start;
    return true;
  }

  private startOffset(sub: ConsumeSubscription, topic: string, partition: number): number {
    const committed = this.rt.shardFor(sub.groupId).fetchOffsets(sub.groupId, [{ topic, partitions: [partition] }])[0];
    const range = {
      logStartOffset: this.rm.earliestOffset(topic, partition).offset,
      // "latest" under READ_COMMITTED is the last stable offset, as Kafka's ListOffsets answers it;
      // while a new leader does not know it yet, the least it will be (nothing is delivered until then).
      logEndOffset: this.rm.startingLatestOffset(topic, partition, sub.isolationLevel === IsolationLevel.READ_COMMITTED),
    };
    const at = committed && committed.offset >= 0 ? committed.offset : null;
    if (at !== null && at > range.logEndOffset && this.rm.replica(topic, partition)?.role === "follower") {
      // A follower's high watermark lags the leader's: the committed offset is not out of range
      // for that (Kafka checks it against the leader's log). Resolved once the follower is there.
      throw rillError(
        "OFFSET_NOT_AVAILABLE",
        `${topic}-${partition}: the committed offset ${at} is past this follower's high watermark ${range.logEndOffset}; retry shortly`,
      );
    }
    return resolveStartOffset(at, sub.autoOffsetReset, range, `${topic}-${partition}`);
  }

  private commitOffsets(sub: ConsumeSubscription, commitId: bigint, offsets: readonly CommitInput[]): void {
    const answer = (result: CommitResultOutput): void => {
      if (!this.closed) this.sink.commitResult(result);
    };
    try {
      checkCommitOffsets(offsets, "commit.offsets");
      const res = commitChecked(this.rt, this.rm, sub.groupId, this.memberId, this.epoch, offsets);
      for (const o of res.offsets) if (!o.error) this.committed(o.topic, o.partition, o.offset);
      // Answered once the commit is on every in-sync replica of the group's partition.
      this.rt.replicated(sub.groupId).then(
        () => answer({ commitId, offsets: res.offsets, error: res.error }),
        (e: unknown) => answer({ commitId, offsets: [], error: RillError.from(e) }),
      );
    } catch (e) {
      answer({ commitId, offsets: [], error: RillError.from(e) });
    }
    this.kick();
  }

  /** `offset` of a partition was committed: frees its credit, or releases it if it was revoking. */
  private committed(topic: string, partition: number, offset: number): void {
    const k = keyOf(topic, partition);
    const owned = this.owned.get(k);
    if (owned && offset > owned.committed) {
      owned.committed = offset;
      while (owned.sent.length > 0 && owned.sent[0]![0] <= offset) owned.sent.shift();
    }
    if (owned?.stuck && offset > owned.position) {
      // The member skips a batch that cannot be read: delivery goes on where it committed.
      owned.position = offset;
      owned.stuck = false;
      owned.fetched = null;
      this.interruptFetches(); // a partition read at its leader joins the next fetch at once
    }
    const r = this.revoking.get(k);
    if (r && offset >= r.o.position) this.release(k);
  }

  /**
   * Records not yet committed, summed over owned partitions. A paused partition's do not count:
   * the client drops what it receives of it while paused and seeks back when it resumes.
   */
  private outstanding(): number {
    let n = 0;
    for (const o of this.owned.values()) if (!o.paused) n += Math.max(0, o.position - o.committed);
    return n;
  }

  private window(sub: ConsumeSubscription): number {
    return (sub.maxOutstandingRecords || OUTSTANDING_RECORDS_DEFAULT) + this.extraCredit;
  }

  /** Bytes the member may still be sent: maxOutstandingBytes (0: no limit) + flow credit. */
  private byteCredit(sub: ConsumeSubscription): number {
    const max = sub.maxOutstandingBytes;
    if (max === 0) return Number.MAX_SAFE_INTEGER;
    let used = 0;
    for (const o of this.owned.values()) if (!o.paused) used += uncommittedBytes(o);
    return max + this.extraBytes - used;
  }

  /** Sends records of owned partitions while credit lasts; waits for data or credit otherwise. */
  private async pump(sub: ConsumeSubscription): Promise<void> {
    while (!this.closed && !this.rm.closed) {
      if (this.sink.throttled?.()) {
        await this.waitForDrain(false);
        continue;
      }
      let sent = false;
      for (const o of [...this.owned.values()]) {
        if (this.closed || this.outstanding() >= this.window(sub) || this.byteCredit(sub) <= 0) break;
        if (this.owned.get(keyOf(o.topic, o.partition)) !== o) continue; // revoked meanwhile
        if (!this.resolved(sub, o)) continue; // no replica here to start from yet
        if (this.leaderElsewhere(o.topic, o.partition) !== null) {
          if (await this.sendFetched(sub, o)) sent = true;
          continue;
        }
        const reservation = await this.reserveFor(sub, o);
        if (this.closed) {
          reservation?.release();
          break;
        }
        if (this.owned.get(keyOf(o.topic, o.partition)) !== o) {
          reservation?.release(); // revoked while waiting for memory
          continue;
        }
        const taken: Buffer[] = [];
        const buffers = this.buffers;
        const alloc = buffers
          ? (size: number): Buffer => {
              const b = buffers.take(size);
              taken.push(b);
              return b;
            }
          : undefined;
        const giveBuffers = (): void => {
          for (const b of taken.splice(0)) buffers?.give(b);
        };
        const out = this.readOwned(sub, o, reservation ? Math.floor(reservation.bytes / RESPONSE_COPIES) : null, alloc);
        if (out === null) {
          reservation?.release();
          giveBuffers();
          continue;
        }
        sent = true;
        let onSent: (() => void) | undefined;
        if (reservation) {
          reservation.shrink(out.chunks.reduce((n, c) => n + c.length, 0) * RESPONSE_COPIES);
          this.held.add(reservation);
          onSent = () => {
            reservation.release();
            this.held.delete(reservation);
            giveBuffers();
          };
        } else if (taken.length > 0) onSent = giveBuffers;
        if (!this.sink.records(out, onSent)) await this.waitForDrain(!this.sink.throttled?.());
      }
      this.pollRemotes(sub);
      if (!sent) await this.rm.waitForData(this.heartbeatMs, this.wake);
    }
  }

  /**
   * The leader of a partition this broker holds no replica of (it is read there), or null: read
   * here (or waiting for a replica or a leader), or there is no `remote`.
   */
  private leaderElsewhere(topic: string, partition: number): number | null {
    if (!this.remote) return null;
    const role = this.rm.replica(topic, partition)?.role;
    if (role === "leader" || role === "follower") return null;
    const leader = this.rm.image.topics.get(topic)?.partitions[partition]?.leader ?? -1;
    return leader >= 0 && leader !== this.rm.nodeIdOf() ? leader : null;
  }

  /**
   * Starts the remote reads the owned partitions read at their leaders need: per leader, one
   * long-poll fetch of those with a start, nothing waiting to be sent and credit left, and one
   * offsets lookup of those without a start (or with a seek to look up). A leader that failed is
   * left alone until its backoff has passed.
   */
  private pollRemotes(sub: ConsumeSubscription): void {
    const remote = this.remote;
    if (!remote || this.closed) return;
    const toFetch = new Map<number, Owned[]>();
    const toLook = new Map<number, Owned[]>();
    for (const o of this.owned.values()) {
      const leader = this.leaderElsewhere(o.topic, o.partition);
      if (leader === null) continue;
      const into = o.position === UNRESOLVED ? toLook : !o.stuck && !o.paused && !o.fetched ? toFetch : null;
      if (!into) continue;
      const list = into.get(leader) ?? [];
      list.push(o);
      into.set(leader, list);
    }
    const ready = (leader: number): boolean => (this.backoff.get(leader)?.timer ?? null) === null;
    const credit = this.outstanding() < this.window(sub) && this.byteCredit(sub) > 0;
    for (const [leader, list] of toLook) if (!this.looking.has(leader) && ready(leader)) this.lookUp(sub, remote, leader, list);
    if (credit)
      for (const [leader, list] of toFetch) if (!this.fetching.has(leader) && ready(leader)) this.fetchFrom(sub, remote, leader, list);
  }

  /**
   * Ends the remote long polls in flight (what they read so far still counts), so the next ones
   * ask for the partitions as they are now (a seek, a new or resumed partition) at once.
   */
  private interruptFetches(): void {
    for (const c of this.fetching.values()) {
      c.aborted = true;
      c.onabort?.();
    }
  }

  /** A remote read at `leader` failed (or its partitions must wait): back off, doubling. */
  private failedAt(leader: number): void {
    if (this.closed) return;
    const last = this.backoff.get(leader);
    if (last && last.timer !== null) return; // already pausing
    const ms = Math.min(REMOTE_BACKOFF_MAX_MS, (last?.ms ?? REMOTE_BACKOFF_MS / 2) * 2);
    const b = { ms, timer: null as unknown };
    b.timer = this.timers.setTimeout(() => {
      b.timer = null;
      this.kick();
    }, ms);
    this.backoff.set(leader, b);
  }

  /** A remote read at `leader` succeeded: the next failure pauses the least again. */
  private succeededAt(leader: number): void {
    const b = this.backoff.get(leader);
    if (b && b.timer === null) this.backoff.delete(leader);
  }

  /** Whether `o` is still owned as it was when a remote read of it started at `position`. */
  private current(o: Owned, position: number): boolean {
    return !this.closed && this.owned.get(keyOf(o.topic, o.partition)) === o && o.position === position;
  }

  /** One long-poll fetch of `list` at `leader`; its answers wait in `fetched` for the pump. */
  private fetchFrom(sub: ConsumeSubscription, remote: ConsumeRemote, leader: number, list: readonly Owned[]): void {
    const cancel: Cancellation = { aborted: false, onabort: null };
    this.fetching.set(leader, cancel);
    const maxBytes = this.messageBytes(sub);
    const asked = list.map((o) => ({ o, at: o.position }));
    const input: FetchInput = {
      partitions: asked.map(({ o, at }) => ({ topic: o.topic, partition: o.partition, offset: BigInt(at), maxBytes })),
      maxWaitMs: Math.min(REMOTE_WAIT_MS, this.heartbeatMs),
      minBytes: 1,
      maxBytes,
      format: RecordFormat.BATCHES,
      isolationLevel:
        sub.isolationLevel === IsolationLevel.READ_COMMITTED ? IsolationLevel.READ_COMMITTED : IsolationLevel.READ_UNCOMMITTED,
    };
    void remote
      .fetch(leader, input, cancel)
      .then(
        (res) => {
          let failed = false;
          asked.forEach(({ o, at }, i) => {
            const p = res.partitions[i];
            if (!p || !this.current(o, at)) return;
            const kind = p.error ? RillError.from(p.error).kind.name : null;
            if (kind === null || kind === "CORRUPT_MESSAGE") {
              if (kind !== null || (p.batches ?? []).some((b) => b.length > 0)) o.fetched = { at, p };
            } else if (kind === "OFFSET_OUT_OF_RANGE") {
              o.position = o.committed = UNRESOLVED; // its start is looked up again at the leader
            } else failed = true; // a leader change (NOT_LEADER_OR_FOLLOWER), no high watermark yet...: again shortly
          });
          if (failed) this.failedAt(leader);
          else this.succeededAt(leader);
        },
        () => {
          // Unreachable: again after a backoff (the image may name a new leader by then). Interrupted: again now.
          if (!cancel.aborted) this.failedAt(leader);
        },
      )
      .catch((e: unknown) => this.fail(e))
      .finally(() => {
        if (this.fetching.get(leader) === cancel) this.fetching.delete(leader);
        this.kick();
      });
  }

  /** Looks up the starts (or seeks) of `list` at `leader`: committed offsets checked against the leader's log. */
  private lookUp(sub: ConsumeSubscription, remote: ConsumeRemote, leader: number, list: readonly Owned[]): void {
    const cancel: Cancellation = { aborted: false, onabort: null };
    this.looking.set(leader, cancel);
    const asked = list.map((o) => ({ o, seekTo: o.seekTo ?? null }));
    const specs: RemoteOffsetSpec[] = [];
    for (const { seekTo } of asked) {
      if (seekTo === null || typeof seekTo === "object") specs.push("earliest", "latest");
      if (seekTo !== null) specs.push(seekTo);
    }
    const queries = [];
    let k = 0;
    for (const { o, seekTo } of asked) {
      const n = seekTo === null ? 2 : typeof seekTo === "object" ? 3 : 1;
      for (let j = 0; j < n; j++) queries.push({ topic: o.topic, partition: o.partition, spec: specs[k++]! });
    }
    const readCommitted = sub.isolationLevel === IsolationLevel.READ_COMMITTED;
    void remote
      .listOffsets(leader, queries, readCommitted, cancel)
      .then(
        (answers) => {
          let failed = false;
          let i = 0;
          for (const { o, seekTo } of asked) {
            const n = seekTo === null ? 2 : typeof seekTo === "object" ? 3 : 1;
            const mine = answers.slice(i, i + n);
            i += n;
            if (!this.current(o, UNRESOLVED) || (o.seekTo ?? null) !== seekTo) continue;
            if (mine.length < n || mine.some((a) => a.error !== null)) {
              failed = true;
              continue;
            }
            let start: number;
            if (seekTo === null) {
              const committed = this.rt.shardFor(sub.groupId).fetchOffsets(sub.groupId, [{ topic: o.topic, partitions: [o.partition] }])[0];
              const range = { logStartOffset: mine[0]!.offset, logEndOffset: mine[1]!.offset };
              start = resolveStartOffset(
                committed && committed.offset >= 0 ? committed.offset : null,
                sub.autoOffsetReset,
                range,
                `${o.topic}-${o.partition}`,
              );
            } else if (typeof seekTo === "object") start = mine[2]!.offset >= 0 ? mine[2]!.offset : mine[1]!.offset;
            else start = mine[0]!.offset;
            o.position = o.committed = start;
            o.seekTo = null;
          }
          if (failed) this.failedAt(leader);
        },
        () => this.failedAt(leader),
      )
      .catch((e: unknown) => this.fail(e)) // auto_offset_reset none and an offset out of range
      .finally(() => {
        if (this.looking.get(leader) === cancel) this.looking.delete(leader);
        this.kick();
      });
  }

  /**
   * Sends what was read of `o` at its leader (false: nothing to send), as `readOwned` sends a
   * local read: memory reserved first (waiting in line), cut to the credit, a bad batch reported.
   */
  private async sendFetched(sub: ConsumeSubscription, o: Owned): Promise<boolean> {
    const f = o.fetched;
    if (!f || o.stuck || o.paused) return false;
    if (f.at !== o.position) {
      o.fetched = null;
      return false;
    }
    const p = f.p;
    if (p.error) {
      o.fetched = null;
      // The leader reported the bad batch (its event was published there).
      o.stuck = true;
      this.sink.records({
        topic: o.topic,
        partition: o.partition,
        highWatermark: p.highWatermark,
        firstOffset: o.position,
        nextOffset: p.nextOffset,
        chunks: [],
        records: null,
        error: RillError.from(p.error),
      });
      return true;
    }
    const chunks = (p.batches ?? []).map((b) => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength)));
    const bytes = chunks.reduce((n, c) => n + c.length, 0) * RESPONSE_COPIES;
    let reservation = this.memory.budget.tryReserve(bytes);
    while (!reservation && !this.closed && !this.rm.closed)
      reservation = await this.memory.budget.reserve(bytes, FETCH_MEMORY_WAIT_MS, this.closing);
    if (!reservation) return false;
    if (o.fetched !== f || !this.current(o, f.at) || o.paused) {
      reservation.release(); // moved, revoked or paused while waiting for memory
      return false;
    }
    o.fetched = null;
    const out = this.deliverable(sub, o, chunks, p.nextOffset, p.highWatermark, p.abortedTransactions ?? null);
    if (out === null) {
      reservation.release();
      return false;
    }
    reservation.shrink(out.chunks.reduce((n, c) => n + c.length, 0) * RESPONSE_COPIES);
    this.held.add(reservation);
    const onSent = (): void => {
      reservation.release();
      this.held.delete(reservation);
    };
    if (!this.sink.records(out, onSent)) await this.waitForDrain(!this.sink.throttled?.());
    return true;
  }

  /** Most bytes of batches one message of `sub` asks for: credit, the default, a share of the budget. */
  private messageBytes(sub: ConsumeSubscription): number {
    const share = Math.min(this.memory.responseBytesMax, Math.floor(this.memory.budget.bytesMax / RESPONSE_COPIES));
    return Math.max(1, Math.min(this.byteCredit(sub), MESSAGE_BYTES_DEFAULT, share));
  }

  /**
   * Memory for the next message of `o`, sized from the log before reading (null: nothing to read
   * there, or an error the read reports, or the session ended). Waits in line for room, as long
   * as the session lives.
   */
  private async reserveFor(sub: ConsumeSubscription, o: Owned): Promise<Reservation | null> {
    if (o.stuck || o.paused) return null;
    let size: number;
    try {
      const log = this.rm.readLog(o.topic, o.partition);
      const known = this.rm.readableOffsets(log); // (a new leader that does not know them yet: nothing to send)
      const upTo = sub.isolationLevel === IsolationLevel.READ_COMMITTED ? known.lastStableOffset : known.highWatermark;
      size = log.readSize(o.position, this.messageBytes(sub), upTo);
    } catch {
      return null; // the read reports it
    }
    if (size === 0) return null;
    const bytes = size * RESPONSE_COPIES;
    const now = this.memory.budget.tryReserve(bytes);
    if (now) return now;
    while (!this.closed && !this.rm.closed) {
      const r = await this.memory.budget.reserve(bytes, FETCH_MEMORY_WAIT_MS, this.closing);
      if (r) return r;
    }
    return null;
  }

  /**
   * The next records of `o` within credit (advancing its position), or null when there are none;
   * `sized`: the bytes reserved for it (the log is read up to that, the first batch whole).
   */
  private readOwned(sub: ConsumeSubscription, o: Owned, sized: number | null, alloc?: (size: number) => Buffer): DeliveredRecords | null {
    if (o.stuck || o.paused) return null;
    const d = this.rm.readPartition(
      {
        topic: o.topic,
        partition: o.partition,
        offset: o.position,
        maxBytes: sized ?? this.messageBytes(sub),
        ...(sub.isolationLevel === IsolationLevel.READ_COMMITTED ? { readCommitted: true } : {}),
      },
      alloc,
    );
    if (d.error) {
      if (RillError.from(d.error).kind.name === "OFFSET_OUT_OF_RANGE")
        o.position = o.committed = this.startOrUnresolved(sub, o.topic, o.partition);
      return null;
    }
    if (!d.read || d.read.bytes === 0) return null;
    return this.deliverable(sub, o, d.read.chunks, d.read.nextOffset, d.highWatermark, d.abortedTransactions ?? null);
  }

  /**
   * The records message of batches read of `o` from its position (here or at its leader), cut to
   * the credit, advancing the position; a batch that cannot be read is reported (`corrupt`).
   */
  private deliverable(
    sub: ConsumeSubscription,
    o: Owned,
    chunks: readonly Buffer[],
    nextOffset: number,
    highWatermark: number,
    aborted: readonly AbortedTransaction[] | null,
  ): DeliveredRecords | null {
    if (chunks.length === 0) return null;
    // Checked and decoded only as far as the credit goes (the rest is read again next time).
    const credit = this.window(sub) - this.outstanding();
    // checkFetched cuts at the credit: whole batches, at least the first (a consumer always progresses).
    const cut = checkFetched(chunks, o.position, nextOffset, sub.decode === true, aborted, credit);
    if (cut.corrupt) return this.corrupt(o, highWatermark, cut.corrupt);
    const bytes = cut.bytes;
    o.sent.push([cut.nextOffset, bytes]);
    requestMetricsOf(this.rm).bytesOut(o.topic, bytes, cut.nextOffset - o.position);
    const out = {
      topic: o.topic,
      partition: o.partition,
      highWatermark,
      firstOffset: o.position,
      nextOffset: cut.nextOffset,
      chunks: cut.chunks,
      records: cut.records,
      abortedTransactions: sub.decode === true ? null : aborted,
      error: null,
      seekId: o.seekId ?? 0n,
    };
    o.position = cut.nextOffset;
    return out;
  }

  /** The batch at `o.position` cannot be read: report it once (event and output), then pause `o`. */
  private corrupt(o: Owned, highWatermark: number, c: CorruptBatch): DeliveredRecords {
    o.stuck = true;
    publishCorruptRead({ ...c, source: this.rm, topic: o.topic, partition: o.partition, api: "consume" });
    return {
      topic: o.topic,
      partition: o.partition,
      highWatermark,
      firstOffset: o.position,
      nextOffset: c.skipTo,
      chunks: [],
      records: null,
      error: corruptError(c, `${o.topic}-${o.partition}`),
    };
  }

  /**
   * Waits for `drained()` (or any wake-up: credit, assignment, commit, close). `stalls`: the wait
   * is the client's (it does not read), counted against its session timeout; a wait for the
   * client's quota throttle is the broker's own and is not.
   */
  private async waitForDrain(stalls = true): Promise<void> {
    if (stalls) this.blockedSinceMs = this.rm.nowMs();
    await new Promise<void>((resolve) => {
      this.drainWaiter = resolve;
      this.wake.onabort = resolve;
    });
    this.blockedSinceMs = -1;
  }

  /** Wakes the pump (credit, assignment or commit changed). */
  private kick(): void {
    const w = this.wake.onabort;
    this.wake.onabort = null;
    w?.();
  }

  private fail(e: unknown): void {
    if (this.closed) return;
    this.stop();
    this.sink.end(RillError.from(e));
  }

  private stop(): void {
    this.closed = true;
    this.closing.aborted = true;
    this.closing.onabort?.();
    // Messages the sink never wrote give their memory back here.
    for (const r of this.held) r.release();
    this.held.clear();
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    for (const b of this.backoff.values()) if (b.timer !== null) this.timers.clearTimeout(b.timer);
    this.backoff.clear();
    // Remote reads in flight are given up.
    for (const c of [...this.fetching.values(), ...this.looking.values()]) {
      c.aborted = true;
      c.onabort?.();
    }
    this.fetching.clear();
    this.looking.clear();
    for (const r of this.revoking.values()) this.timers.clearTimeout(r.timer);
    this.revoking.clear();
    this.unwatch?.();
    this.unlistenClose();
    this.kick();
    this.drained();
    if (this.sub) this.leave(this.sub);
  }

  /** Leaves the group (best effort: the session timeout removes the member otherwise). */
  private leave(sub: ConsumeSubscription): void {
    if (this.memberId === "") return;
    const leaveEpoch = sub.instanceId !== null ? -2 : -1;
    try {
      this.rt.run(sub.groupId, (shard, now) =>
        shard.heartbeat(
          {
            groupId: sub.groupId,
            memberId: this.memberId,
            memberEpoch: leaveEpoch,
            ...(sub.instanceId !== null ? { instanceId: sub.instanceId } : {}),
          },
          now,
        ),
      );
    } catch {
      // Leaving is best effort: the session timeout removes the member otherwise.
    }
  }
}
