/**
 * Followers pull from leaders (Kafka's ReplicaFetcherManager): one fetch loop per leader broker,
 * carrying every partition this broker follows from that leader, over one long-lived
 * ReplicaFetch stream (the transport is injected; src/rpc implements it over gRPC). Each round:
 * ask for every partition from its log end offset with the epoch of its last batch; the leader
 * long-polls when there is nothing new; append what arrives (offsets and epochs as the leader
 * wrote them), learn the high watermark, or truncate a divergent tail and ask again.
 *
 * The stream is a fetch session (fetch-session.ts, Kafka's KIP-227): after its first, full,
 * request a round lists only the partitions whose position changed (or that joined or left), and
 * the leader answers only the partitions with something new.
 *
 * A loop that fails (leader down, stream cut) backs off and reconnects; the metadata log tells
 * it when leadership moves, and the loops are rebuilt then.
 */
import { AssertionError } from "../base/assert.ts";
import { Backoff } from "../base/backoff.ts";
import type { RillError } from "../base/errors.ts";
import type { PartitionReplica } from "./partition-replica.ts";
import type { Timers } from "../base/timers.ts";
import type { ReplicaManager } from "./replica-manager.ts";
import { isThrottledReplica, type ReplicationThrottle } from "./throttle.ts";
import { type FetchPartitionRequest, type ForgottenPartition, FollowerFetchSession } from "./fetch-session.ts";

export type { FetchPartitionRequest } from "./fetch-session.ts";

/** One partition's answer. */
export interface FetchPartitionResponse {
  readonly topic: string;
  readonly partition: number;
  readonly highWatermark: number;
  readonly logStartOffset: number;
  readonly recordBatches: Buffer;
  readonly error: RillError | null;
  readonly diverging: { epoch: number; endOffset: number } | null;
}

/** One request on a ReplicaFetch stream. */
export interface ReplicaFetchRound {
  readonly replicaId: number;
  readonly brokerEpoch: number;
  /** The request's number on its stream, from 1 (fetch-session.ts); 0: no session. */
  readonly sessionEpoch: number;
  /** `partitions` lists only what changed since the previous request, `forgotten` what left. */
  readonly incremental: boolean;
  readonly partitions: readonly FetchPartitionRequest[];
  readonly forgotten: readonly ForgottenPartition[];
  readonly maxWaitMs: number;
  readonly maxBytes: number;
}

/** Its answer. */
export interface ReplicaFetchAnswer {
  /** Every requested partition in order (a full request), or those with something new (incremental). */
  readonly partitions: FetchPartitionResponse[];
  /** The leader keeps the stream's session: the next request may be incremental. */
  readonly sessionKept: boolean;
}

/** A ReplicaFetch stream to one leader. */
export interface ReplicaFetchSession {
  fetch(req: ReplicaFetchRound): Promise<ReplicaFetchAnswer>;
  close(): void;
}

/** Opens sessions; implemented over gRPC in src/rpc. */
export interface ReplicaFetchTransport {
  open(address: string): ReplicaFetchSession;
}

/** What the fetchers need. */
export interface FetcherOptions {
  readonly nodeId: number;
  readonly brokerEpoch: () => number;
  readonly addressOf: (nodeId: number) => string | null;
  readonly transport: ReplicaFetchTransport;
  readonly maxWaitMs: number;
  readonly maxBytes: number;
  readonly log: { warn(obj: object, msg?: string): void; info(obj: object, msg?: string): void };
  /** Timers for backoff, injected (this module does not read the clock). */
  readonly timers: Timers;
  /**
   * Reassignment (issue 21): the limit on what this follower fetches for the replicas it is being
   * added as and that are not in sync yet (`follower.replication.throttled.rate`); absent: none.
   */
  readonly throttle?: ReplicationThrottle;
}

/** Waits after a failed round: 50 ms doubling up to 1 s, back to 50 ms after a success. */
const FETCH_BACKOFF = { initialDelayMs: 50, delayMsMax: 1000 } as const;

/** The fetch loop toward one leader. */
class FetchLoop {
  private readonly partitions = new Set<PartitionReplica>();
  private session: ReplicaFetchSession | null = null;
  /** What the leader's side of `session` holds (fetch-session.ts). */
  private fetchSession = new FollowerFetchSession();
  private stopped = false;
  private lastError = "";
  /** The partitions the outstanding fetch (or the round being prepared) asks for. */
  private asked: ReadonlySet<PartitionReplica> = new Set();
  /** Ends the current wait (the outstanding fetch, or an idle sleep) early; null when none. */
  private wake: (() => void) | null = null;

  constructor(
    readonly leader: number,
    private readonly rm: ReplicaManager,
    private readonly o: FetcherOptions,
  ) {
    void this.run();
  }

  private async run(): Promise<void> {
    const backoff = new Backoff(FETCH_BACKOFF);
    while (!this.stopped) {
      const following = [...this.partitions].filter((r) => r.role === "follower" && r.leader === this.leader);
      // reassignment (issue 21): replicas being added wait while the follower throttle is exceeded
      const throttle = this.o.throttle?.limited ? this.o.throttle : null;
      const isThrottled = (r: PartitionReplica): boolean =>
        throttle !== null && isThrottledReplica(this.rm.image.topics.get(r.topic)?.partitions[r.partition], this.o.nodeId);
      const parts = throttle?.exceeded() ? following.filter((r) => !isThrottled(r)) : following;
      this.asked = new Set(parts);
      if (parts.length === 0) {
        await this.sleep(following.length > 0 && throttle ? Math.max(1, throttle.waitMs()) : 50, true);
        continue;
      }
      try {
        if (!this.session) {
          const address = this.o.addressOf(this.leader);
          if (address === null) throw new Error(`no address known for broker ${this.leader}`);
          this.session = this.o.transport.open(address);
          this.fetchSession = new FollowerFetchSession();
        }
        const brokerEpoch = this.o.brokerEpoch();
        const next = this.fetchSession.next(parts, brokerEpoch);
        const full = !next.incremental;
        const fetching = this.session.fetch({
          replicaId: this.o.nodeId,
          brokerEpoch,
          ...next,
          maxWaitMs: this.o.maxWaitMs,
          maxBytes: this.o.maxBytes,
        });
        const answer = await this.untilWoken(fetching);
        if (this.stopped) return;
        if (answer === null) {
          // A partition was added while this fetch long-polls (a new topic, a leadership move):
          // ask again at once with it. The stream's next request ends the leader's long-poll of
          // this one (replication-service.ts), whose answer is dropped: nothing was applied
          // since, so the new request asks from the same offsets — in full, as the leader's
          // session remembers what the dropped answer said.
          fetching.catch(() => {});
          this.fetchSession.restart();
          continue;
        }
        this.fetchSession.answered(answer.sessionKept);
        let waitForMetadata = false;
        // A full answer lists the request's partitions in order; an incremental one only those
        // with something new, each of the session's.
        const inRound = full ? null : new Set(parts);
        answer.partitions.forEach((p, i) => {
          const r = full ? parts[i] : this.rm.replica(p.topic, p.partition);
          if (r === undefined || (inRound !== null && !inRound.has(r))) return;
          if (r.role !== "follower" || r.leader !== this.leader) return;
          if (p.error && p.error.kind.name === "OFFSET_OUT_OF_RANGE" && p.logStartOffset > r.log.logEndOffset) {
            this.o.log.info(
              { topic: r.topic, partition: r.partition, from: r.log.logEndOffset, to: p.logStartOffset },
              "the leader's log starts after this follower's end: restarting the local log there",
            );
            this.rm.restartFollowerAt(r, p.logStartOffset);
            return;
          }
          if (p.error) {
            // A newer or older epoch than ours, or a leader that moved: the metadata log will
            // tell us; do not spin meanwhile. The session starts again in full.
            waitForMetadata = true;
            this.fetchSession.restart();
            const msg = `${r.topic}-${r.partition}: ${p.error.kind.name}: ${p.error.message}`;
            if (msg !== this.lastError) this.o.log.warn({ leader: this.leader, err: msg }, "replica fetch refused");
            this.lastError = msg;
            return;
          }
          if (p.diverging) {
            // The leader's epoch ends at `endOffset`; this log may have that epoch end earlier
            // (its next epoch came from a leader the new one never followed): cut at the lower
            // of the two, as Kafka's follower does. A log that lacks the epoch cuts at the end
            // of its largest epoch below it and asks again.
            const mine = p.diverging.epoch >= 0 ? r.log.endOffsetForEpoch(p.diverging.epoch) : null;
            const leaderEnd = Math.max(p.diverging.endOffset, 0);
            const to = mine !== null && mine.epoch >= 0 ? Math.min(leaderEnd, mine.endOffset) : leaderEnd;
            this.o.log.info(
              { topic: r.topic, partition: r.partition, from: r.log.logEndOffset, to, epoch: p.diverging.epoch },
              "follower log diverges from its leader: truncating",
            );
            this.rm.truncateFollower(r, to);
            return;
          }
          if (isThrottled(r)) throttle!.record(p.recordBatches.length);
          this.rm.applyFetched(r, p.recordBatches, p.highWatermark, p.logStartOffset);
        });
        backoff.reset();
        if (waitForMetadata) await this.sleep(100);
      } catch (e) {
        // A failed assertion (appending, truncating, the high watermark) is a bug: it stops the
        // process (this loop's rejection is unhandled on purpose) instead of being retried.
        if (e instanceof AssertionError) throw e;
        this.session?.close();
        this.session = null;
        const msg = (e as Error).message;
        if (msg !== this.lastError) this.o.log.warn({ leader: this.leader, err: msg }, "replica fetch failed; retrying");
        this.lastError = msg;
        await this.sleep(backoff.next());
      }
    }
  }

  /** `fetching`'s answer, or null when `wakeUp` comes first. */
  private untilWoken<T>(fetching: Promise<T>): Promise<T | null> {
    return new Promise<T | null>((resolve, reject) => {
      this.wake = () => resolve(null);
      fetching.then(resolve, reject);
    }).finally(() => {
      this.wake = null;
    });
  }

  /** Waits `ms` (injected timers); `wakeable`: `wakeUp` ends it early. */
  private sleep(ms: number, wakeable = false): Promise<void> {
    if (!wakeable) return new Promise((resolve) => this.o.timers.setTimeout(resolve, ms));
    return new Promise((resolve) => {
      const handle = this.o.timers.setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      this.wake = () => {
        this.o.timers.clearTimeout(handle);
        resolve();
      };
    });
  }

  /**
   * The partitions this loop fetches from now on. A partition the outstanding fetch does not ask
   * for (a new topic, a leadership move) ends the wait for it at once, as Kafka's fetcher thread
   * wakes when partitions are added: the next fetch starts now, not when the leader's long-poll
   * (up to replica.fetch.wait.max.ms) ends.
   */
  setPartitions(parts: readonly PartitionReplica[]): void {
    this.partitions.clear();
    for (const r of parts) this.partitions.add(r);
    if (parts.some((r) => !this.asked.has(r))) this.wakeUp();
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  stop(): void {
    this.stopped = true;
    this.wakeUp();
    this.session?.close();
    this.session = null;
  }
}

/** Every fetch loop of this broker. */
export class ReplicaFetcherManager {
  private readonly loops = new Map<number, FetchLoop>();
  private readonly unsubscribe: () => void;

  constructor(
    private readonly rm: ReplicaManager,
    private readonly o: FetcherOptions,
  ) {
    this.unsubscribe = rm.onRoleChange(() => this.rebuild());
    this.rebuild();
  }

  /** Recomputes which partitions each loop fetches (after leadership changes). */
  rebuild(): void {
    const byLeader = new Map<number, PartitionReplica[]>();
    for (const r of this.rm.followed()) {
      if (r.leader < 0) continue;
      let list = byLeader.get(r.leader);
      if (!list) byLeader.set(r.leader, (list = []));
      list.push(r);
    }
    for (const [leader, loop] of this.loops) {
      if (!byLeader.has(leader)) {
        loop.stop();
        this.loops.delete(leader);
      }
    }
    for (const [leader, parts] of byLeader) {
      let loop = this.loops.get(leader);
      if (!loop) this.loops.set(leader, (loop = new FetchLoop(leader, this.rm, this.o)));
      loop.setPartitions(parts);
    }
  }

  close(): void {
    this.unsubscribe();
    for (const l of this.loops.values()) l.stop();
    this.loops.clear();
  }
}
