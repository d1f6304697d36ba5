/**
 * The metadata store of a broker that is not a controller voter (`process.roles=broker`, a KRaft
 * observer): it follows the committed metadata log by asking the voters (FetchMetadata, a
 * long-poll) and applies what they answer, in order, to its image. It never commits: changes
 * are forwarded to the active controller by the RPC layer, so `commit` answers NOT_CONTROLLER.
 *
 * It keeps nothing on disk: after a restart it catches up from the voters (a snapshot, then the
 * entries after it) before the broker registers — the controller unfences a broker only once
 * its metadata offset reaches its registration.
 */
import { AssertionError } from "../base/assert.ts";
import { Backoff } from "../base/backoff.ts";
import { rillError } from "../base/errors.ts";
import type { RaftStatus } from "../raft/node.ts";
import type { NodeId } from "../raft/types.ts";
import { MetadataImage } from "./image.ts";
import type { Timers } from "../base/timers.ts";
import { Listeners, Waiters } from "../base/waiters.ts";
import { decodeEntry, type QuorumLog } from "./quorum-store.ts";
import type { MetadataRecord } from "./records.ts";
import type { MetadataChange, MetadataStore } from "./store.ts";

/** One answer of a voter to FetchMetadata. */
export interface MetadataFetchResult {
  readonly snapshot: { offset: number; data: Uint8Array } | null;
  readonly entries: ReadonlyArray<{ offset: number; records: Uint8Array }>;
  readonly leader: NodeId;
  readonly commitOffset: number;
}

/** Asks one voter; implemented over gRPC in src/rpc. */
export type MetadataFetch = (voter: NodeId, afterOffset: number, maxWaitMs: number) => Promise<MetadataFetchResult>;

/** What an observer needs. */
export interface ObserverStoreOptions {
  readonly nodeId: NodeId;
  readonly voters: readonly NodeId[];
  readonly timers: Timers;
  readonly maxWaitMs: number;
  readonly log?: QuorumLog;
}

const silent: QuorumLog = { info() {}, warn() {}, error() {} };

/** Waits between failed fetches: 50 ms doubling up to 1 s, back to 50 ms after a success. */
const FETCH_BACKOFF = { initialDelayMs: 50, delayMsMax: 1000 } as const;

/**
 * A broker's view of the metadata log, pulled from the voters. Built in two steps because the
 * way to the voters (the controller channel) asks this store who leads: construct, then
 * `start(fetch)`.
 */
export class ObserverMetadataStore implements MetadataStore {
  private _image = new MetadataImage();
  private readonly listeners = new Listeners<[MetadataChange]>();
  private readonly leaderListeners = new Listeners<[NodeId, number]>();
  private readonly waiters: Waiters;
  private knownLeader: NodeId = 0;
  private commitOffset = -1;
  private closed = false;
  private running: Promise<void> = Promise.resolve();
  private readonly log: QuorumLog;
  private lastError = "";
  /** Whether the image has reached the voters' commit offset once since the start (see `complete`). */
  private caughtUp = false;

  constructor(private readonly o: ObserverStoreOptions) {
    this.log = o.log ?? silent;
    this.waiters = new Waiters(o.timers, {
      onTimeout: (what, ms) => rillError("REQUEST_TIMED_OUT", `timed out after ${ms} ms waiting for ${what}`),
      onClose: () => rillError("SHUTTING_DOWN", "the broker is shutting down"),
    });
  }

  /** Starts following the metadata log through `fetch` (once). */
  start(fetch: MetadataFetch): void {
    this.running = this.loop(fetch);
  }

  get image(): MetadataImage {
    return this._image;
  }

  /**
   * False from the start until the image first reaches the commit offset a voter reported: before
   * that, a partition missing from it may only not have been fetched yet (its log on disk must stay).
   */
  get complete(): boolean {
    return this.caughtUp;
  }

  /** The active controller as the voters report it (0: unknown). */
  get leader(): NodeId {
    return this.knownLeader;
  }

  /** An observer never leads. */
  get isLeader(): boolean {
    return false;
  }

  status(): RaftStatus {
    return {
      id: this.o.nodeId,
      term: 0,
      vote: 0,
      leader: this.knownLeader,
      role: "follower",
      commit: this.commitOffset,
      applied: this._image.offset,
      firstIndex: 0,
      lastIndex: this._image.offset,
      leadTransferee: 0,
      voters: this.o.voters,
      config: this.o.voters.map((id) => ({ id, directoryId: "" })),
      configIndex: 0,
      isVoter: false,
    };
  }

  onChange(fn: (change: MetadataChange) => void): () => void {
    return this.listeners.add(fn);
  }

  onLeaderChange(fn: (leader: NodeId, term: number) => void): () => void {
    return this.leaderListeners.add(fn);
  }

  commit(): Promise<MetadataChange> {
    const l = this.knownLeader;
    return Promise.reject(
      rillError(
        "NOT_CONTROLLER",
        `node ${this.o.nodeId} is a broker, not a controller (${l === 0 ? "no controller is known yet" : `the active controller is node ${l}`})`,
      ),
    );
  }

  /** Resolves once `cond` holds (checked after every applied change), or rejects after `timeoutMs`. */
  waitUntil(cond: () => boolean, what: string, timeoutMs: number): Promise<void> {
    return this.waiters.waitUntil(cond, what, timeoutMs);
  }

  waitForOffset(offset: number, timeoutMs: number): Promise<void> {
    return this.waitUntil(() => this._image.offset >= offset, `metadata offset ${offset}`, timeoutMs);
  }

  private async loop(fetch: MetadataFetch): Promise<void> {
    const backoff = new Backoff(FETCH_BACKOFF);
    let voter = 0;
    while (!this.closed) {
      const target = this.o.voters.includes(this.knownLeader) ? this.knownLeader : this.o.voters[voter++ % this.o.voters.length]!;
      try {
        const res = await fetch(target, this._image.offset, this.o.maxWaitMs);
        if (this.closed) return;
        this.apply(res);
        backoff.reset();
      } catch (e) {
        // A bug (a failed assertion applying the records) stops the process, not the voter.
        if (e instanceof AssertionError) throw e;
        if (this.closed) return;
        const msg = (e as Error).message;
        if (msg !== this.lastError) this.log.warn({ voter: target, err: msg }, "metadata fetch failed; asking another voter");
        this.lastError = msg;
        if (target === this.knownLeader) this.setLeader(0);
        const ms = backoff.next();
        await new Promise<void>((r) => this.o.timers.setTimeout(() => r(), ms));
      }
    }
  }

  private setLeader(leader: NodeId): void {
    if (leader === this.knownLeader) return;
    this.knownLeader = leader;
    this.leaderListeners.emit(leader, 0);
  }

  private apply(res: MetadataFetchResult): void {
    this.commitOffset = Math.max(this.commitOffset, res.commitOffset);
    // Set before the change that reaches the commit offset is told, so its listeners see it complete.
    const reached = (offset: number): void => {
      if (offset >= this.commitOffset) this.caughtUp = true;
    };
    if (res.snapshot && res.snapshot.offset > this._image.offset) {
      const records = decodeEntry(res.snapshot.data);
      this._image = MetadataImage.fromSnapshot(records, res.snapshot.offset);
      reached(res.snapshot.offset);
      this.notify({ records, offset: res.snapshot.offset, snapshot: true });
    }
    for (const e of res.entries) {
      if (e.offset <= this._image.offset) continue;
      if (e.offset !== this._image.offset + 1 && this._image.offset >= 0)
        throw new Error(`metadata entries skip from ${this._image.offset} to ${e.offset}`);
      const records: MetadataRecord[] = decodeEntry(e.records);
      for (const r of records) this._image.apply(r, e.offset);
      this._image.offset = e.offset;
      reached(e.offset);
      if (records.length > 0) this.notify({ records, offset: e.offset });
    }
    reached(this._image.offset);
    this.setLeader(res.leader);
    this.waiters.notify();
  }

  /** Tells every listener; one that throws is logged, unless it failed an assertion (a bug). */
  private notify(change: MetadataChange): void {
    this.listeners.emitGuarded((e) => this.log.error({ err: e, offset: change.offset }, "metadata listener failed"), change);
  }

  // The Raft-facing calls of a voter's store, which an observer does not take.
  receive(): void {
    throw rillError("NOT_CONTROLLER", "this node does not run the controller role");
  }

  reportSnapshot(): void {}

  transferLeadership(): null {
    return null;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.waiters.close();
    await this.running.catch(() => {});
  }
}
