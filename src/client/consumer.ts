/**
 * `Consumer` without groups: the application assigns partitions, seeks, and iterates records
 * with `for await`. Fetches ask for RECORD_FORMAT_BATCHES; records are decoded lazily from the
 * fetched batches (batch-reader.ts).
 *
 * Positions. Each assigned partition has a `position` (the next offset to give the application)
 * and a `fetchOffset` (the next offset to ask the broker for, at or after the position). A seek
 * to "earliest", "latest" or a timestamp is resolved with ListOffsets at the partition's leader
 * just before the next fetch. A seek bumps the partition's epoch: fetched data that was asked
 * for before it is dropped.
 *
 * Routing. Each partition is fetched from its leader (metadata.ts; the bootstrap broker while the
 * leader is unknown). While the application iterates, there is one fetch loop per broker that
 * leads assigned partitions: it fetches all of them in one Fetch call. A partition is in at most
 * one fetch at a time. When a leader moves (a refresh after an error, or the periodic one), its
 * partitions move to the new leader's loop; a loop left without partitions ends.
 *
 * Pipelining. When the iterator takes a response, the fetch offsets move past it and that
 * broker's loop sends its next fetch; the application consumes one response while the next is
 * on the wire. So at most two responses (each at most `maxBytes`) per broker are held at a time.
 *
 * Errors. Per partition: OFFSET_OUT_OF_RANGE moves the partition to `autoOffsetReset` (or throws
 * with "none"); OFFSET_NOT_AVAILABLE (a new leader that does not know its high watermark yet)
 * is asked again after a short backoff, as long as it lasts; a retriable error — of the partition, or of the whole Fetch call to its broker —
 * keeps the partition out of fetches for a backoff, refreshes the metadata when the error says
 * the leader may have moved (errors.ts `isStaleMetadata`), and throws from the iterator after
 * `retries` failures in a row; anything else throws. A batch that cannot be read — CORRUPT_MESSAGE
 * from the broker (which names the batch's offset and gives the offset after it as
 * `next_offset`), or a batch that fails its CRC or does not decode here — throws at once; with
 * `skipCorrupt` it is reported to `onCorrupt` instead and the partition goes on after it.
 */

import { Errors, RillError } from "../base/errors.ts";
import { IsolationLevel, RecordFormat } from "../gen/rill/v1/common_pb.ts";
import type { FetchResponse, FetchedPartition } from "../gen/rill/v1/fetch_service_pb.ts";
import { initCodecs } from "../protocol/compression.ts";
import { asBuffer } from "../protocol/grpc-service.ts";
import { type ConsumerRecord, type CorruptBatchReport, readRecords, scanBatches } from "./batch-reader.ts";
import { type ClientOptions, type Connection, connect } from "./connection.ts";
import { checkChoice, checkInt, toInt64, toNumber } from "./convert.ts";
import { ClientClosedError, fromErrorDetail, isRetriable, isStaleMetadata } from "./errors.ts";

/** Tries of a fetch that answers UNKNOWN_TOPIC_OR_PARTITION before it is reported. */
const UNKNOWN_TOPIC_RETRIES = 4;
import { Fifo } from "./fifo.ts";
import { MetadataCache } from "./metadata.ts";
import { listLeaderOffsets } from "./offsets.ts";
import type { OffsetQuery } from "./offsets.ts";
import { backoffMs } from "./retry.ts";

export type { ConsumerRecord, CorruptBatchReport } from "./batch-reader.ts";

const MiB = 1024 * 1024;

/** Consumer settings; every field is optional. */
export interface ConsumerOptions extends ClientOptions {
  /** Longest time the broker holds a fetch waiting for `minBytes`. Default 500 ms. */
  readonly maxWaitMs?: number | undefined;
  /** Bytes a fetch waits for before it is answered. Default 1. */
  readonly minBytes?: number | undefined;
  /** Byte budget of one fetch response. Default 16 MiB. */
  readonly maxBytes?: number | undefined;
  /** Byte budget of one partition in a fetch (the first batch always comes whole). Default 1 MiB. */
  readonly partitionBytesMax?: number | undefined;
  /** Where a partition without a position, or whose position is out of range, starts. Default "latest". */
  readonly autoOffsetReset?: "earliest" | "latest" | "none" | undefined;
  /** Check each batch's CRC32C before reading it. Default true. */
  readonly checkCrcs?: boolean | undefined;
  /**
   * "read_committed": only records of committed transactions (and non-transactional ones), up to
   * the last stable offset; "read_uncommitted" (the default, as Kafka's Java client): every
   * record up to the high watermark, aborted ones too. Control batches are never records.
   */
  readonly isolation?: "read_uncommitted" | "read_committed" | undefined;
  /** The same as `isolation` (its first name); `isolation` wins when both are given. */
  readonly isolationLevel?: "read_uncommitted" | "read_committed" | undefined;
  /**
   * Skip a batch that cannot be read (CORRUPT_MESSAGE: damaged on the broker's disk, or not
   * decodable here) and go on after it, instead of throwing from the iterator. Default false.
   */
  readonly skipCorrupt?: boolean | undefined;
  /** With `skipCorrupt`: called (in the iterator) for each batch skipped. */
  readonly onCorrupt?: ((report: CorruptBatchReport) => void) | undefined;
  /**
   * This client's rack (Kafka's `client.rack`, KIP-392): sent with each fetch. A broker with
   * `replica.selector` = `rack-aware` then points a partition at an in-sync follower in this
   * rack, and the consumer reads it there (for `READ_REPLICA_LEASE_MS`, or until an error sends
   * it back to the leader). Default "": read from leaders.
   */
  readonly clientRack?: string | undefined;
}

/** How long a partition keeps reading from the replica its leader pointed at (Kafka: metadata.max.age.ms). */
export const READ_REPLICA_LEASE_MS = 5 * 60_000;

/** One partition of one topic. */
export interface TopicPartition {
  readonly topic: string;
  readonly partition: number;
}

/** Where to start reading: an offset, the first or next offset, or the first at a timestamp. */
export type SeekTarget = number | OffsetQuery;

/** A partition to assign, optionally with where to start (default: `autoOffsetReset`). */
export interface PartitionAssignment extends TopicPartition {
  readonly offset?: SeekTarget | undefined;
}

interface PartitionState {
  readonly topic: string;
  readonly partition: number;
  /** Next offset to give the application; -1 until resolved. */
  position: number;
  /** Next offset to fetch; -1 until resolved. */
  fetchOffset: number;
  /** A seek waiting for ListOffsets, or null. */
  pending: OffsetQuery | null;
  /** Bumped by each seek; fetched data of an older epoch is dropped. */
  epoch: number;
  /** Not fetched before this time (after a retriable partition error). */
  backoffUntilMs: number;
  /** Retriable errors in a row. */
  failures: number;
  highWatermark: number;
  /** The fetch loop whose fetch (or unread response) holds this partition; null when none does. */
  fetching: FetchLoop | null;
  /** The follower its leader pointed this partition at (KIP-392), until `untilMs`; null: its leader. */
  readReplica: { readonly address: string; readonly untilMs: number } | null;
}

/** The fetch loop of one broker, while the application iterates. */
interface FetchLoop {
  readonly address: string;
  /** Its last response waits for the iterator: no next fetch until the iterator takes it. */
  queued: boolean;
  /** Cancels the fetch in flight. */
  readonly abort: AbortController;
}

/** One fetch response, with the epochs its partitions were asked at. */
interface Fetched {
  readonly loop: FetchLoop;
  readonly response: FetchResponse;
  readonly epochs: ReadonlyMap<PartitionState, number>;
}

/** What a fetch loop hands the iterator: a response, or an error to throw. */
type Delivery = { readonly kind: "fetched"; readonly fetched: Fetched } | { readonly kind: "error"; readonly error: unknown };

/** A partition of a fetch response to read: its records end before `end`. */
interface Ready {
  readonly st: PartitionState;
  readonly part: FetchedPartition;
  readonly epoch: number;
  readonly end: number;
}

function keyOf(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

function checkTarget(target: SeekTarget, field: string): SeekTarget {
  if (typeof target === "number") return checkInt(target, field, 0, Number.MAX_SAFE_INTEGER);
  if (target === "earliest" || target === "latest") return target;
  if (typeof target === "object" && target !== null && typeof target.timestampMs === "number") {
    checkInt(target.timestampMs, `${field}.timestampMs`, 0, Number.MAX_SAFE_INTEGER);
    return target;
  }
  throw new RillError(Errors.INVALID_ARGUMENT, `${field}: must be an offset, "earliest", "latest" or {timestampMs}`);
}

/** Reads assigned partitions; see the module comment. */
export class Consumer implements AsyncIterable<ConsumerRecord> {
  private readonly conn: Connection;
  private readonly metadata: MetadataCache;
  private readonly maxWaitMs: number;
  private readonly minBytes: number;
  private readonly maxBytes: number;
  private readonly partitionBytesMax: number;
  private readonly autoOffsetReset: "earliest" | "latest" | "none";
  private readonly checkCrcs: boolean;
  /** With skipCorrupt: where a skipped batch is reported; null: a bad batch throws. */
  private readonly onCorrupt: ((report: CorruptBatchReport) => void) | null;
  private readonly isolationLevel: IsolationLevel;
  private readonly clientRack: string;
  private states = new Map<string, PartitionState>();
  private readonly abort = new AbortController();
  /** Fetch loops by broker address (while iterating). */
  private readonly loops = new Map<string, FetchLoop>();
  /** Responses and errors of the loops, for the iterator, in arrival order. */
  private readonly inbox = new Fifo<Delivery>();
  /** Woken by anything the loops and the iterator wait for (see `changed`). */
  private waiters = new Set<() => void>();
  /** The ListOffsets call resolving pending seeks, shared by whoever needs it. */
  private resolving: Promise<void> | null = null;
  /** Bumped when an iteration ends: loops of an older one stop. */
  private run = 0;
  private iterating = false;
  private closed = false;

  /** Checks the options (RillError naming the field); connects lazily. */
  constructor(options: ConsumerOptions = {}) {
    this.maxWaitMs = checkInt(options.maxWaitMs ?? 500, "maxWaitMs", 0, 0x7fffffff);
    this.minBytes = checkInt(options.minBytes ?? 1, "minBytes", 0, 0x7fffffff);
    this.maxBytes = checkInt(options.maxBytes ?? 16 * MiB, "maxBytes", 1, 0x7fffffff);
    this.partitionBytesMax = checkInt(options.partitionBytesMax ?? MiB, "partitionBytesMax", 1, 0x7fffffff);
    this.autoOffsetReset = checkChoice(options.autoOffsetReset ?? "latest", "autoOffsetReset", ["earliest", "latest", "none"]);
    this.checkCrcs = options.checkCrcs ?? true;
    this.onCorrupt = options.skipCorrupt === true ? (options.onCorrupt ?? (() => undefined)) : null;
    const isolation = checkChoice(options.isolation ?? options.isolationLevel ?? "read_uncommitted", "isolation", [
      "read_uncommitted",
      "read_committed",
    ]);
    this.isolationLevel = isolation === "read_committed" ? IsolationLevel.READ_COMMITTED : IsolationLevel.READ_UNCOMMITTED;
    this.clientRack = options.clientRack ?? "";
    if (typeof this.clientRack !== "string" || !/^[A-Za-z0-9._-]{0,64}$/.test(this.clientRack))
      throw new RillError(Errors.INVALID_ARGUMENT, "clientRack: must be up to 64 letters, digits, '.', '_' or '-'");
    this.conn = connect(options);
    this.metadata = new MetadataCache(this.conn);
    this.metadata.onChange(() => this.wake());
  }

  /** The partition count of `topic` (from the broker, cached): to assign a whole topic. */
  partitionCount(topic: string): Promise<number> {
    this.checkOpen();
    return this.metadata.partitionCount(topic);
  }

  /**
   * Replaces the assignment. Partitions already assigned keep their position unless the entry
   * gives an offset; new ones start at their `offset`, or at `autoOffsetReset`.
   */
  assign(partitions: readonly PartitionAssignment[]): void {
    this.checkOpen();
    const next = new Map<string, PartitionState>();
    partitions.forEach((p, i) => {
      checkInt(p.partition, `partitions[${i}].partition`, 0, 0x7fffffff);
      const key = keyOf(p.topic, p.partition);
      const st = this.states.get(key) ?? next.get(key) ?? this.newState(p.topic, p.partition);
      next.set(key, st);
      if (p.offset !== undefined) this.seekState(st, checkTarget(p.offset, `partitions[${i}].offset`));
    });
    this.states = next;
    // Learn the leaders of new topics now (until then their partitions go to the bootstrap broker).
    for (const topic of new Set(partitions.map((p) => p.topic))) {
      if (this.metadata.cachedPartitionCount(topic) === undefined) void this.metadata.partitionCount(topic).catch(() => undefined);
    }
    this.wake();
  }

  /** The assigned partitions. */
  assignment(): TopicPartition[] {
    return [...this.states.values()].map((s) => ({ topic: s.topic, partition: s.partition }));
  }

  /** Moves an assigned partition's position; takes effect at the next record the iterator yields. */
  seek(tp: TopicPartition, target: SeekTarget): void {
    this.checkOpen();
    const st = this.states.get(keyOf(tp.topic, tp.partition));
    if (st === undefined) throw new RillError(Errors.INVALID_ARGUMENT, `seek: ${tp.topic}-${tp.partition} is not assigned`);
    this.seekState(st, checkTarget(target, "target"));
    this.wake();
  }

  /** The next offset the iterator will yield for `tp` (resolving a pending seek first). */
  async position(tp: TopicPartition): Promise<number> {
    this.checkOpen();
    const st = this.states.get(keyOf(tp.topic, tp.partition));
    if (st === undefined) throw new RillError(Errors.INVALID_ARGUMENT, `position: ${tp.topic}-${tp.partition} is not assigned`);
    await this.resolvePending();
    return st.position;
  }

  /** The high watermark of `tp` as of the last fetch (-1 before any). */
  highWatermark(tp: TopicPartition): number {
    return this.states.get(keyOf(tp.topic, tp.partition))?.highWatermark ?? -1;
  }

  /** Iterates records of the assigned partitions, in offset order per partition, until `close()`. */
  [Symbol.asyncIterator](): AsyncGenerator<ConsumerRecord, void, undefined> {
    return this.records();
  }

  /** The same as `for await (const r of consumer)`; one iteration at a time. */
  async *records(): AsyncGenerator<ConsumerRecord, void, undefined> {
    if (this.iterating) throw new RillError(Errors.INVALID_ARGUMENT, "consumer: already being iterated");
    this.checkOpen();
    this.iterating = true;
    const run = this.run;
    try {
      for (;;) {
        if (this.closed) return;
        await this.resolvePending();
        // One clock reading for both: a backoff that ends between two readings would be neither
        // fetchable nor waited for, and the iterator would wait for good.
        const now = Date.now();
        this.startLoops(run, now);
        const d = this.inbox.shift();
        if (d === undefined) {
          await this.changed(this.nextBackoffEndMs(now)); // a partition out of its backoff may need a new loop
          continue;
        }
        if (d.kind === "error") throw d.error;
        const ready = this.advance(d.fetched);
        d.fetched.loop.queued = false; // its next fetch goes out while the application reads this one
        this.wake();
        for (const { st, part, epoch, end } of ready) {
          if (end > st.position) yield* this.recordsOf(st, part, epoch);
          // Past control batches and compacted gaps too, unless sought meanwhile.
          if (st.epoch === epoch && end > st.position) st.position = end;
        }
      }
    } finally {
      this.stopLoops();
      this.iterating = false;
    }
  }

  /** Stops fetching: the iterator ends, calls in progress are cancelled. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort(new ClientClosedError("consumer"));
    this.metadata.close();
    this.wake();
    if (this.conn.owned) this.conn.transport.close();
  }

  // -------------------------------------------------------------------------------------------

  private checkOpen(): void {
    if (this.closed) throw new ClientClosedError("consumer");
  }

  private newState(topic: string, partition: number): PartitionState {
    const st: PartitionState = {
      topic,
      partition,
      position: -1,
      fetchOffset: -1,
      pending: null,
      epoch: 0,
      backoffUntilMs: 0,
      failures: 0,
      highWatermark: -1,
      fetching: null,
      readReplica: null,
    };
    if (this.autoOffsetReset !== "none") st.pending = this.autoOffsetReset;
    return st;
  }

  private seekState(st: PartitionState, target: SeekTarget): void {
    st.epoch++;
    st.failures = 0;
    st.backoffUntilMs = 0;
    if (typeof target === "number") {
      st.position = st.fetchOffset = target;
      st.pending = null;
    } else {
      st.position = st.fetchOffset = -1;
      st.pending = target;
    }
  }

  /** Wakes whoever waits in `changed()`. */
  private wake(): void {
    const ws = this.waiters;
    this.waiters = new Set();
    for (const w of ws) w();
  }

  /** Resolves at the next `wake()`, or at `untilMs` (a time) when given, whichever comes first. */
  private changed(untilMs = Number.POSITIVE_INFINITY): Promise<void> {
    return new Promise((resolve) => {
      const timer = Number.isFinite(untilMs) ? setTimeout(done, Math.max(0, untilMs - Date.now())) : null;
      const waiters = this.waiters;
      function done(): void {
        if (timer !== null) clearTimeout(timer);
        waiters.delete(done);
        resolve();
      }
      waiters.add(done);
    });
  }

  /** Resolves pending seeks (one ListOffsets per leader; shared by concurrent callers). */
  private resolvePending(): Promise<void> {
    if (this.resolving !== null) return this.resolving;
    if (![...this.states.values()].some((s) => s.pending !== null)) return Promise.resolve();
    this.resolving = this.resolveNow().finally(() => {
      this.resolving = null;
      this.wake();
    });
    return this.resolving;
  }

  /** One round of pending seeks (a timestamp with no record that recent: the end). */
  private async resolveNow(): Promise<void> {
    for (;;) {
      const pending = [...this.states.values()].filter((s) => s.pending !== null);
      if (pending.length === 0) return;
      const epochs = pending.map((s) => s.epoch);
      const found = await listLeaderOffsets(
        this.conn,
        this.metadata,
        pending.map((s) => ({ topic: s.topic, partition: s.partition, query: s.pending! })),
      );
      pending.forEach((st, i) => {
        if (st.epoch !== epochs[i]) return; // sought again meanwhile
        const offset = found[i]!.offset;
        if (offset < 0) st.pending = "latest";
        else this.seekState(st, offset);
      });
    }
  }

  /** Partitions to fetch now (not waiting for a seek, a backoff, or another fetch), by broker address. */
  private fetchable(now = Date.now()): Map<string, PartitionState[]> {
    const out = new Map<string, PartitionState[]>();
    for (const s of this.states.values()) {
      if (s.pending !== null || s.fetchOffset < 0 || s.fetching !== null || s.backoffUntilMs > now) continue;
      const address = this.routeOf(s, now);
      out.set(address, [...(out.get(address) ?? []), s]);
    }
    return out;
  }

  /** Starts a fetch loop for every broker that has partitions to fetch and none yet. */
  private startLoops(run: number, now = Date.now()): void {
    for (const address of this.fetchable(now).keys()) {
      if (this.loops.has(address)) continue;
      const loop: FetchLoop = { address, queued: false, abort: new AbortController() };
      this.loops.set(address, loop);
      void this.runLoop(loop, run);
    }
  }

  /** Ends the loops of this iteration: fetches in flight are cancelled, unread responses dropped. */
  private stopLoops(): void {
    this.run++;
    for (const loop of this.loops.values()) loop.abort.abort(new ClientClosedError("fetch"));
    this.loops.clear();
    this.inbox.drain();
    // Re-fetch from what the application has seen.
    for (const st of this.states.values()) {
      st.fetchOffset = st.position;
      st.epoch++;
      st.fetching = null;
    }
    this.wake();
  }

  /**
   * One broker's loop: fetches the partitions it leads, hands each response to the iterator and
   * waits for the iterator to take it before the next fetch. Ends when the iteration ends, or
   * when no partition routes to this broker any more.
   */
  private async runLoop(loop: FetchLoop, run: number): Promise<void> {
    const live = (): boolean => this.run === run && !this.closed && this.loops.get(loop.address) === loop;
    // zstd batches need its WebAssembly loaded; if it cannot load, they fail saying why.
    await initCodecs().catch(() => undefined);
    while (live()) {
      if (loop.queued) {
        await this.changed();
        continue;
      }
      const now = Date.now();
      const states = this.fetchable(now).get(loop.address) ?? [];
      if (states.length === 0) {
        if (!this.routesTo(loop.address)) break;
        await this.changed(this.nextBackoffEndMs(now)); // the same reading as fetchable's (see records())
        continue;
      }
      const epochs = new Map(states.map((s) => [s, s.epoch] as const));
      for (const s of states) s.fetching = loop;
      let response: FetchResponse;
      try {
        response = await this.conn.pool.get(loop.address).fetch(this.fetchRequest(states), {
          timeoutMs: this.conn.requestTimeoutMs + this.maxWaitMs,
          signal: AbortSignal.any([this.abort.signal, loop.abort.signal]),
        });
      } catch (e) {
        for (const s of states) if (s.fetching === loop) s.fetching = null;
        if (!live()) break;
        this.onFetchFailed(states, epochs, e);
        continue;
      }
      if (!live()) break;
      loop.queued = true; // its partitions stay `fetching` until the iterator has applied the response
      this.inbox.push({ kind: "fetched", fetched: { loop, response, epochs } });
      this.wake();
    }
    if (this.loops.get(loop.address) === loop) this.loops.delete(loop.address);
  }

  /** True when an assigned partition that is (or will be, after its backoff) fetchable routes to `address`. */
  private routesTo(address: string): boolean {
    const now = Date.now();
    for (const s of this.states.values()) {
      if (s.pending === null && s.fetchOffset >= 0 && this.routeOf(s, now) === address) return true;
    }
    return false;
  }

  /** Where a partition is fetched: the follower its leader pointed it at while that lasts, else its leader. */
  private routeOf(s: PartitionState, now: number): string {
    if (s.readReplica !== null && s.readReplica.untilMs <= now) s.readReplica = null;
    return s.readReplica?.address ?? this.metadata.addressOf(s.topic, s.partition);
  }

  /**
   * The leader pointed `st` at another replica (KIP-392): read it there, when that node's
   * address is known and requests are not pinned to one address.
   */
  private onPreferredReplica(st: PartitionState, nodeId: number): void {
    const address = this.metadata.nodeAddress(nodeId);
    if (address === undefined) {
      void this.metadata.requestRefresh();
      return;
    }
    if (this.conn.pool.fixed) return;
    st.readReplica = { address, untilMs: Date.now() + READ_REPLICA_LEASE_MS };
  }

  private nextBackoffEndMs(now = Date.now()): number {
    let until = Number.POSITIVE_INFINITY;
    for (const s of this.states.values()) if (s.backoffUntilMs > now) until = Math.min(until, s.backoffUntilMs);
    return until;
  }

  /** A whole Fetch call failed: each of its partitions takes the failure (backoff, or the error for the iterator). */
  private onFetchFailed(states: readonly PartitionState[], epochs: ReadonlyMap<PartitionState, number>, e: unknown): void {
    try {
      if (!isRetriable(e)) throw e;
      for (const st of states) {
        // A follower that fails the call: back to the leader at once.
        if (st.readReplica !== null) {
          st.readReplica = null;
          continue;
        }
        if (this.states.get(keyOf(st.topic, st.partition)) === st && st.epoch === epochs.get(st)) this.onPartitionError(st, e as Error);
      }
    } catch (error) {
      this.inbox.push({ kind: "error", error });
      this.wake();
    }
  }

  private fetchRequest(states: readonly PartitionState[]) {
    return {
      partitions: states.map((s) => {
        // The leader epoch this client knows (KIP-320): a broker that still acts on an older one
        // (a fenced leader cut off from the cluster) answers UNKNOWN_LEADER_EPOCH, not its stale
        // high watermark; one that knows a newer epoch answers FENCED_LEADER_EPOCH. Both refresh.
        const epoch = this.metadata.leaderOf(s.topic, s.partition)?.leaderEpoch ?? -1;
        return {
          topic: s.topic,
          partition: s.partition,
          offset: toInt64(s.fetchOffset, "offset"),
          maxBytes: this.partitionBytesMax,
          ...(epoch >= 0 ? { currentLeaderEpoch: epoch } : {}),
        };
      }),
      maxWaitMs: this.maxWaitMs,
      minBytes: this.minBytes,
      maxBytes: this.maxBytes,
      format: RecordFormat.BATCHES,
      isolationLevel: this.isolationLevel,
      rackId: this.clientRack,
    };
  }

  /**
   * Applies a response: errors, high watermarks, and fetch offsets moved past the returned
   * batches; its partitions are free to be fetched again. Returns the partitions with records
   * to yield.
   */
  private advance(fetched: Fetched): Ready[] {
    for (const st of fetched.epochs.keys()) if (st.fetching === fetched.loop) st.fetching = null;
    const ready: Ready[] = [];
    for (const part of fetched.response.partitions) {
      const st = this.states.get(keyOf(part.topic, part.partition));
      const epoch = st === undefined ? undefined : fetched.epochs.get(st);
      if (st === undefined || epoch === undefined || st.epoch !== epoch) continue; // reassigned or sought since
      if (part.error !== undefined && st.readReplica !== null) {
        // A follower's error (behind, no longer a replica, out of range there): back to the leader,
        // which decides (KIP-392); the position stays.
        st.readReplica = null;
        continue;
      }
      if (part.error !== undefined) {
        const e = fromErrorDetail(part.error, `${part.topic}-${part.partition}`);
        if (e.kind === Errors.CORRUPT_MESSAGE) this.onCorruptBatch(st, e, toNumber(part.nextOffset, "nextOffset"));
        else this.onPartitionError(st, e);
        continue;
      }
      st.failures = 0;
      st.highWatermark = toNumber(part.highWatermark, "highWatermark");
      if (part.preferredReadReplica !== undefined) this.onPreferredReplica(st, part.preferredReadReplica);
      const bytes = asBuffer(part.recordBatches);
      const scan = scanBatches(bytes);
      let next = Math.max(st.fetchOffset, scan.nextOffset);
      const brokerNext = toNumber(part.nextOffset, "nextOffset");
      if (scan.whole && brokerNext > next) next = brokerNext; // records removed by compaction
      st.fetchOffset = next;
      ready.push({ st, part, epoch, end: next });
    }
    return ready;
  }

  /**
   * The broker could not read the batch at the partition's fetch offset: it is stored damaged,
   * so retrying cannot help. Thrown, or with skipCorrupt reported and skipped (`next` is the
   * offset after it).
   */
  private onCorruptBatch(st: PartitionState, e: RillError, next: number): void {
    if (this.onCorrupt === null || next <= st.fetchOffset) throw e;
    this.onCorrupt({ topic: st.topic, partition: st.partition, offset: st.fetchOffset, nextOffset: next, error: e });
    st.failures = 0;
    st.fetchOffset = next;
    st.position = next;
  }

  private onPartitionError(st: PartitionState, e: Error): void {
    if (e instanceof RillError && e.kind === Errors.OFFSET_OUT_OF_RANGE && this.autoOffsetReset !== "none") {
      this.seekState(st, this.autoOffsetReset);
      return;
    }
    if (e instanceof RillError && e.kind === Errors.OFFSET_NOT_AVAILABLE) {
      // A new leader whose followers have not reached the start of its epoch yet (issue 17,
      // KIP-207): nothing to read there yet, as after an empty fetch (the broker held the fetch
      // for maxWaitMs first). Asked again after the first backoff, without using up the retries.
      st.backoffUntilMs = Date.now() + backoffMs(this.conn.retry, 0, this.conn.random);
      return;
    }
    const unknownTopic = e instanceof RillError && e.kind === Errors.UNKNOWN_TOPIC_OR_PARTITION;
    // An unknown topic gets a few quick tries (a topic just created may not have reached every
    // broker yet), not the whole failover budget of the retry policy.
    if (
      !isRetriable(e) ||
      st.failures >= (unknownTopic ? Math.min(this.conn.retry.retries, UNKNOWN_TOPIC_RETRIES) : this.conn.retry.retries)
    )
      throw e;
    if (unknownTopic) this.metadata.invalidate(st.topic);
    if (isStaleMetadata(e)) void this.metadata.requestRefresh();
    st.backoffUntilMs = Date.now() + backoffMs(this.conn.retry, st.failures, this.conn.random);
    st.failures++;
  }

  private *recordsOf(st: PartitionState, part: FetchedPartition, epoch: number): Generator<ConsumerRecord, void, undefined> {
    const bytes = asBuffer(part.recordBatches);
    const onCorrupt = this.onCorrupt ?? undefined;
    const aborted = part.abortedTransactions.map((a) => ({
      producerId: toNumber(a.producerId, "producerId"),
      firstOffset: toNumber(a.firstOffset, "firstOffset"),
    }));
    for (const r of readRecords(part.topic, part.partition, bytes, st.position, this.checkCrcs, onCorrupt, aborted)) {
      if (st.epoch !== epoch || this.closed) return; // sought or closed while the application held a record
      st.position = r.offset + 1;
      yield r;
    }
  }
}
