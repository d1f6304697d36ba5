/**
 * Followers pull from leaders (Kafka's ReplicaFetcherManager): one fetch loop per leader broker,
 * carrying every partition this broker follows from that leader, over one long-lived
 * ReplicaFetch stream (the transport is injected; src/rpc implements it over gRPC). Each round:
 * ask for every partition from its log end offset with the epoch of its last batch; the leader
 * long-polls when there is nothing new; append what arrives (offsets and epochs as the leader
 * wrote them), learn the high watermark, or truncate a divergent tail and ask again.
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

/** One partition in a fetch round. */
export interface FetchPartitionRequest {
  readonly topic: string;
  readonly partition: number;
  readonly fetchOffset: number;
  readonly lastFetchedEpoch: number;
  readonly currentLeaderEpoch: number;
  readonly logStartOffset: number;
}

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

/** A ReplicaFetch stream to one leader. */
export interface ReplicaFetchSession {
  fetch(req: {
    replicaId: number;
    brokerEpoch: number;
    partitions: FetchPartitionRequest[];
    maxWaitMs: number;
    maxBytes: number;
  }): Promise<FetchPartitionResponse[]>;
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
        }
        const fetching = this.session.fetch({
          replicaId: this.o.nodeId,
          brokerEpoch: this.o.brokerEpoch(),
          partitions: parts.map((r) => ({
            topic: r.topic,
            partition: r.partition,
            fetchOffset: r.log.logEndOffset,
            lastFetchedEpoch: r.log.latestEpoch,
            currentLeaderEpoch: r.leaderEpoch,
            logStartOffset: r.log.logStartOffset,
          })),
          maxWaitMs: this.o.maxWaitMs,
          maxBytes: this.o.maxBytes,
        });
        const res = await this.untilWoken(fetching);
        if (this.stopped) return;
        if (res === null) {
          // A partition was added while this fetch long-polls (a new topic, a leadership move):
          // ask again at once with it. The stream's next request ends the leader's long-poll of
          // this one (replication-service.ts), whose answer is dropped: nothing was applied
          // since, so the new request asks from the same offsets.
          fetching.catch(() => {});
          continue;
        }
        let waitForMetadata = false;
        res.forEach((p, i) => {
          const r = parts[i]!;
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
            // tell us; do not spin meanwhile.
            waitForMetadata = true;
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
