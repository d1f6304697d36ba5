/**
 * Fetch sessions on the ReplicaFetch stream (Kafka's incremental fetch sessions, KIP-227, with the
 * stream as the session): a follower's fetch loop asks a leader for every partition it follows
 * from it, round after round, and most of them (`__consumer_offsets`'s, idle topics') have
 * nothing new. The first request on a stream is full (every partition, from where the follower
 * stands); later ones list only the partitions added or whose position changed since the
 * previous request, and those that left. The leader keeps fetching every partition of the
 * session from where it was last told — so an idle follower still counts as caught up, and the
 * high watermark uses exactly the log end the follower last gave — and answers only partitions
 * with something new for the follower: records, an error, a divergence, a high watermark or log
 * start offset other than its previous answer on the stream gave.
 *
 * Both sides number the requests of a stream (`sessionEpoch`, from 1). An incremental request
 * must follow the previous one on its stream; anything else fails the stream
 * (FETCH_SESSION_ID_NOT_FOUND), and the follower starts again with a full request on a new one.
 * A full request starts the session anew on the same stream: the follower sends one after an
 * error in an answer, when it dropped an answer (a partition added while its fetch long-polled,
 * fetcher.ts), and when its broker epoch changed. A follower that never sees `sessionKept` (an
 * older leader) sends only full requests; a leader that gets a request without a session epoch
 * (an older follower) answers it in full and keeps nothing.
 *
 * Pure bookkeeping: no I/O, no time.
 */
import { rillError } from "../base/errors.ts";
import type { PartitionReplica } from "./partition-replica.ts";

/** One partition in a fetch round. */
export interface FetchPartitionRequest {
  readonly topic: string;
  readonly partition: number;
  readonly fetchOffset: number;
  readonly lastFetchedEpoch: number;
  readonly currentLeaderEpoch: number;
  readonly logStartOffset: number;
}

/** A partition of a leader's session: where the follower last said it stands, and what this leader last answered. */
export interface SessionPartition {
  readonly topic: string;
  readonly partition: number;
  fetchOffset: number;
  lastFetchedEpoch: number;
  currentLeaderEpoch: number;
  logStartOffset: number;
  /** The high watermark of the last answer on the stream that listed it; -1: none since its position last changed. */
  sentHw: number;
  /** The log start offset of that answer; -1 likewise. */
  sentLogStart: number;
  /**
   * What this leader's latest read of it found, when it found nothing to send (src/rpc's
   * ReplicaFetch handler reads it again only once that moved); null: read it. Reset whenever the
   * follower's position changes.
   */
  quiet: QuietRead | null;
}

/** The leader's state a read that found nothing saw (see `SessionPartition.quiet`). */
export interface QuietRead {
  readonly replica: PartitionReplica;
  readonly leaderEpoch: number;
  readonly partitionEpoch: number;
  readonly replicas: readonly number[];
  readonly logEnd: number;
  readonly logStart: number;
}

/** A partition that leaves a session. */
export interface ForgottenPartition {
  readonly topic: string;
  readonly partition: number;
}

/** The session fields of one ReplicaFetch request. */
export interface SessionRequest {
  readonly replicaId: number;
  /** The request's number on its stream, from 1; 0: the follower keeps no session. */
  readonly sessionEpoch: number;
  readonly incremental: boolean;
  readonly partitions: readonly FetchPartitionRequest[];
  readonly forgotten: readonly ForgottenPartition[];
}

/** What one request's answer covers. */
export interface SessionRound {
  /** The answer lists every partition of `partitions`, in order (a full request). */
  readonly full: boolean;
  /** Every partition to read this round: the request's (full), or the whole session's (incremental). */
  readonly partitions: readonly SessionPartition[];
  /** The request's session epoch (0: none, nothing is remembered of its answer). */
  readonly epoch: number;
}

const keyOf = (p: { topic: string; partition: number }): string => `${p.topic}\0${p.partition}`;

function sessionPartition(p: FetchPartitionRequest): SessionPartition {
  return {
    topic: p.topic,
    partition: p.partition,
    fetchOffset: p.fetchOffset,
    lastFetchedEpoch: p.lastFetchedEpoch,
    currentLeaderEpoch: p.currentLeaderEpoch,
    logStartOffset: p.logStartOffset,
    sentHw: -1,
    sentLogStart: -1,
    quiet: null,
  };
}

/** The leader's side of one stream's session. */
export class LeaderFetchSession {
  /** Whether the stream has a session (a full request with a session epoch came). */
  private open = false;
  private replicaId = -1;
  /** The session epoch of the latest request accepted. */
  private epoch = 0;
  private partitions = new Map<string, SessionPartition>();

  /** Partitions in the session now. */
  get size(): number {
    return this.partitions.size;
  }

  /**
   * Applies a request: a full one starts the session anew with its partitions, an incremental
   * one forgets `forgotten` first, then adds or moves what it lists. Throws (nothing changed)
   * FETCH_SESSION_ID_NOT_FOUND for an incremental request that does not follow the previous
   * request of this session, INVALID_REQUEST for a malformed one.
   */
  accept(req: SessionRequest): SessionRound {
    if (!req.incremental) {
      if (req.forgotten.length > 0)
        throw rillError("INVALID_REQUEST", "forgotten_partitions: a full request lists every partition it fetches and forgets none");
      const round = req.partitions.map(sessionPartition);
      if (req.sessionEpoch === 0) {
        // An older follower: every request is full, nothing is kept.
        this.open = false;
        this.partitions.clear();
        return { full: true, partitions: round, epoch: 0 };
      }
      if (this.open && req.sessionEpoch <= this.epoch)
        throw rillError(
          "FETCH_SESSION_ID_NOT_FOUND",
          `session_epoch: ${req.sessionEpoch} is not above ${this.epoch}, the epoch of this stream's previous request`,
        );
      this.open = true;
      this.replicaId = req.replicaId;
      this.epoch = req.sessionEpoch;
      this.partitions = new Map();
      for (const p of round) this.partitions.set(keyOf(p), p);
      return { full: true, partitions: round, epoch: req.sessionEpoch };
    }
    if (req.sessionEpoch === 0) throw rillError("INVALID_REQUEST", "incremental: a request without a session_epoch cannot be incremental");
    if (!this.open)
      throw rillError("FETCH_SESSION_ID_NOT_FOUND", "incremental: this stream has no fetch session (its first request must be full)");
    if (req.replicaId !== this.replicaId)
      throw rillError(
        "FETCH_SESSION_ID_NOT_FOUND",
        `replica_id: ${req.replicaId} is not ${this.replicaId}, whose session this stream holds`,
      );
    if (req.sessionEpoch !== this.epoch + 1)
      throw rillError(
        "FETCH_SESSION_ID_NOT_FOUND",
        `session_epoch: ${req.sessionEpoch} does not follow ${this.epoch}, the epoch of this stream's previous request`,
      );
    this.epoch = req.sessionEpoch;
    for (const f of req.forgotten) this.partitions.delete(keyOf(f));
    for (const p of req.partitions) {
      const key = keyOf(p);
      const had = this.partitions.get(key);
      if (!had) {
        this.partitions.set(key, sessionPartition(p));
        continue;
      }
      had.fetchOffset = p.fetchOffset;
      had.lastFetchedEpoch = p.lastFetchedEpoch;
      had.currentLeaderEpoch = p.currentLeaderEpoch;
      had.logStartOffset = p.logStartOffset;
      // The follower moved (appended, truncated, restarted its log): its next answer lists the
      // partition, so the follower learns the high watermark against its new log end.
      had.sentHw = -1;
      had.sentLogStart = -1;
      had.quiet = null;
    }
    return { full: false, partitions: [...this.partitions.values()], epoch: req.sessionEpoch };
  }

  /**
   * Whether an incremental round's answer lists a partition: it has records, an error or a
   * divergence, or its high watermark or log start offset differs from the previous answer's.
   */
  static lists(p: SessionPartition, highWatermark: number, logStartOffset: number, something: boolean): boolean {
    return something || highWatermark !== p.sentHw || logStartOffset !== p.sentLogStart;
  }

  /**
   * The answer of `round` listed `p` with these values. Remembered only while `round` is the
   * session's latest request: a follower that sent another while this one was unanswered drops
   * this answer (and its next request, full, starts the session anew anyway).
   */
  answered(round: SessionRound, p: SessionPartition, highWatermark: number, logStartOffset: number): void {
    if (round.epoch === 0 || round.epoch !== this.epoch) return;
    p.sentHw = highWatermark;
    p.sentLogStart = logStartOffset;
  }
}

/** Where a follower's partition stands, as its requests say. */
interface Position {
  fetchOffset: number;
  lastFetchedEpoch: number;
  currentLeaderEpoch: number;
  logStartOffset: number;
}

function positionOf(r: PartitionReplica): Position {
  return {
    fetchOffset: r.log.logEndOffset,
    lastFetchedEpoch: r.log.latestEpoch,
    currentLeaderEpoch: r.leaderEpoch,
    logStartOffset: r.log.logStartOffset,
  };
}

function request(r: PartitionReplica, p: Position): FetchPartitionRequest {
  return { topic: r.topic, partition: r.partition, ...p };
}

/** The session fields of a follower's next request. */
export interface NextRequest {
  readonly sessionEpoch: number;
  readonly incremental: boolean;
  readonly partitions: FetchPartitionRequest[];
  readonly forgotten: ForgottenPartition[];
}

/** The follower's side of one stream's session: what the leader holds of each partition. */
export class FollowerFetchSession {
  private epoch = 0;
  /** The leader keeps sessions (its latest answer on the stream said so). */
  private kept = false;
  /** The next request is full. */
  private full = true;
  private brokerEpoch = -1;
  /** What the leader's session holds (as of the latest request sent). */
  private readonly sent = new Map<PartitionReplica, Position>();

  /** Whether the latest request sent was full (its answer lists every partition in order). */
  lastWasFull = true;

  /** The next request for `parts`, as sent now: the session moves to it. */
  next(parts: readonly PartitionReplica[], brokerEpoch: number): NextRequest {
    this.epoch++;
    const incremental = this.kept && !this.full && brokerEpoch === this.brokerEpoch;
    this.lastWasFull = !incremental;
    this.full = false;
    this.brokerEpoch = brokerEpoch;
    if (!incremental) {
      this.sent.clear();
      const partitions = parts.map((r) => {
        const p = positionOf(r);
        this.sent.set(r, p);
        return request(r, p);
      });
      return { sessionEpoch: this.epoch, incremental: false, partitions, forgotten: [] };
    }
    const asked = new Set(parts);
    const forgotten: ForgottenPartition[] = [];
    for (const r of this.sent.keys()) {
      if (asked.has(r)) continue;
      forgotten.push({ topic: r.topic, partition: r.partition });
      this.sent.delete(r);
    }
    const partitions: FetchPartitionRequest[] = [];
    for (const r of parts) {
      const was = this.sent.get(r);
      const log = r.log;
      if (
        was !== undefined &&
        was.fetchOffset === log.logEndOffset &&
        was.lastFetchedEpoch === log.latestEpoch &&
        was.currentLeaderEpoch === r.leaderEpoch &&
        was.logStartOffset === log.logStartOffset
      )
        continue;
      const p = positionOf(r);
      this.sent.set(r, p);
      partitions.push(request(r, p));
    }
    return { sessionEpoch: this.epoch, incremental: true, partitions, forgotten };
  }

  /** The leader answered the latest request; `kept`: it keeps the session. */
  answered(kept: boolean): void {
    this.kept = kept;
  }

  /** The next request is full (an answer was dropped, or one had an error). */
  restart(): void {
    this.full = true;
  }
}
