/**
 * `Consumer` without groups: the application assigns partitions, seeks, and iterates records
 * with `for await`. Fetches ask for RECORD_FORMAT_BATCHES; records are decoded lazily from the
 * fetched batches (batch-reader.ts).
 *
 * Positions. Each assigned partition has a `position` (the next offset to give the application)
 * and a `fetchOffset` (the next offset to ask the broker for, at or after the position). A seek
 * to "earliest", "latest" or a timestamp is resolved with ListOffsets just before the next fetch.
 * A seek bumps the partition's epoch: fetched data that was asked for before it is dropped.
 *
 * Pipelining. As soon as a fetch response arrives, the fetch offsets move past it and the next
 * fetch is sent; the application consumes one response while the next is on the wire. So at
 * most two responses (each at most `maxBytes`) are held at a time.
 *
 * Errors. A whole-call failure is retried per the client's retry policy, then thrown from the
 * iterator. Per partition: OFFSET_OUT_OF_RANGE moves the partition to `autoOffsetReset`
 * (or throws with "none"); a retriable error keeps the partition out of fetches for a backoff
 * and throws after `retries` failures in a row; anything else throws.
 */

import { Errors, RillError } from "../base/errors.ts";
import { IsolationLevel, RecordFormat } from "../gen/rill/v1/common_pb.ts";
import type { FetchResponse, FetchedPartition } from "../gen/rill/v1/fetch_service_pb.ts";
import { asBuffer } from "../rpc/grpc-service.ts";
import { type ConsumerRecord, readRecords, scanBatches } from "./batch-reader.ts";
import { type ClientOptions, type Connection, connect } from "./connection.ts";
import { checkChoice, checkInt, toInt64, toNumber } from "./convert.ts";
import { ClientClosedError, fromErrorDetail, isRetriable } from "./errors.ts";
import { MetadataCache } from "./metadata.ts";
import { listOffsets } from "./offsets.ts";
import type { OffsetQuery } from "./offsets.ts";
import { backoffMs, withRetries } from "./retry.ts";

export type { ConsumerRecord } from "./batch-reader.ts";

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
  readonly partitionMaxBytes?: number | undefined;
  /** Where a partition without a position, or whose position is out of range, starts. Default "latest". */
  readonly autoOffsetReset?: "earliest" | "latest" | "none" | undefined;
  /** Check each batch's CRC32C before reading it. Default true. */
  readonly checkCrcs?: boolean | undefined;
  /** "read_committed" reads the same records as "read_uncommitted" until Rill has transactions. */
  readonly isolationLevel?: "read_uncommitted" | "read_committed" | undefined;
}

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
}

/** One fetch response, with the epochs its partitions were asked at. */
interface Fetched {
  readonly response: FetchResponse;
  readonly epochs: ReadonlyMap<PartitionState, number>;
}

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
  private readonly partitionMaxBytes: number;
  private readonly autoOffsetReset: "earliest" | "latest" | "none";
  private readonly checkCrcs: boolean;
  private readonly isolationLevel: IsolationLevel;
  private states = new Map<string, PartitionState>();
  private readonly abort = new AbortController();
  /** Cancels the fetch in flight (when the application leaves the loop, or on close). */
  private fetchAbort: AbortController | null = null;
  private assignmentChanged: (() => void) | null = null;
  private iterating = false;
  private closed = false;

  /** Checks the options (RillError naming the field); connects lazily. */
  constructor(options: ConsumerOptions = {}) {
    this.maxWaitMs = checkInt(options.maxWaitMs ?? 500, "maxWaitMs", 0, 0x7fffffff);
    this.minBytes = checkInt(options.minBytes ?? 1, "minBytes", 0, 0x7fffffff);
    this.maxBytes = checkInt(options.maxBytes ?? 16 * MiB, "maxBytes", 1, 0x7fffffff);
    this.partitionMaxBytes = checkInt(options.partitionMaxBytes ?? MiB, "partitionMaxBytes", 1, 0x7fffffff);
    this.autoOffsetReset = checkChoice(options.autoOffsetReset ?? "latest", "autoOffsetReset", ["earliest", "latest", "none"]);
    this.checkCrcs = options.checkCrcs ?? true;
    const isolation = checkChoice(options.isolationLevel ?? "read_uncommitted", "isolationLevel", ["read_uncommitted", "read_committed"]);
    this.isolationLevel = isolation === "read_committed" ? IsolationLevel.READ_COMMITTED : IsolationLevel.READ_UNCOMMITTED;
    this.conn = connect(options);
    this.metadata = new MetadataCache(this.conn);
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
    this.wakeIterator();
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
    this.wakeIterator();
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
    let next: Promise<Fetched | null> | null = null;
    try {
      for (;;) {
        next ??= this.fetchNext();
        const fetched = await next;
        next = null;
        if (fetched === null) return; // closed
        const ready = this.advance(fetched);
        if (!this.needsResolve()) {
          next = this.fetchNext(); // pipelined: on the wire while the application consumes
          next.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile
        }
        for (const { st, part, epoch, end } of ready) {
          if (end > st.position) yield* this.recordsOf(st, part, epoch);
          // Past control batches and compacted gaps too, unless sought meanwhile.
          if (st.epoch === epoch && end > st.position) st.position = end;
        }
      }
    } finally {
      this.iterating = false;
      // Re-fetch from what the application has seen; an in-flight fetch is dropped.
      for (const st of this.states.values()) {
        st.fetchOffset = st.position;
        st.epoch++;
      }
      if (next !== null) {
        next.catch(() => undefined);
        this.fetchAbort?.abort(new ClientClosedError("fetch"));
        this.fetchAbort = null;
      }
    }
  }

  /** Stops fetching: the iterator ends, calls in progress are cancelled. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort(new ClientClosedError("consumer"));
    this.wakeIterator();
    if (this.conn.owned) this.conn.transport.close();
  }

  // -------------------------------------------------------------------------------------------

  private checkOpen(): void {
    if (this.closed) throw new ClientClosedError("consumer");
  }

  private newState(topic: string, partition: number): PartitionState {
    const st: PartitionState = {
      topic, partition, position: -1, fetchOffset: -1, pending: null, epoch: 0, backoffUntilMs: 0, failures: 0, highWatermark: -1,
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

  private wakeIterator(): void {
    const wake = this.assignmentChanged;
    this.assignmentChanged = null;
    wake?.();
  }

  private needsResolve(): boolean {
    for (const st of this.states.values()) if (st.pending !== null) return true;
    return false;
  }

  /** Resolves pending seeks with one ListOffsets call (a timestamp with no record that recent: the end). */
  private async resolvePending(): Promise<void> {
    const pending = [...this.states.values()].filter((s) => s.pending !== null);
    if (pending.length === 0) return;
    const epochs = pending.map((s) => s.epoch);
    const found = await listOffsets(this.conn, pending.map((s) => ({ topic: s.topic, partition: s.partition, query: s.pending! })));
    const atEnd: PartitionState[] = [];
    pending.forEach((st, i) => {
      if (st.epoch !== epochs[i]) return; // sought again meanwhile
      const offset = found[i]!.offset;
      if (offset < 0) atEnd.push(st);
      else this.seekState(st, offset);
    });
    for (const st of atEnd) st.pending = "latest";
    if (atEnd.length > 0) await this.resolvePending();
  }

  /** Sends the next fetch (resolving seeks first); null once closed. */
  private async fetchNext(): Promise<Fetched | null> {
    for (;;) {
      if (this.closed) return null;
      try {
        await this.resolvePending();
        const states = this.fetchable();
        if (states.length === 0) {
          await this.idle();
          continue;
        }
        const epochs = new Map(states.map((s) => [s, s.epoch] as const));
        const abort = new AbortController();
        this.fetchAbort = abort;
        const signal = AbortSignal.any([this.abort.signal, abort.signal]);
        const request = this.fetchRequest(states);
        const response = await withRetries(() => this.conn.transport.fetch(request, {
          timeoutMs: this.conn.requestTimeoutMs + this.maxWaitMs,
          signal,
        }), this.conn.retry, { random: this.conn.random, signal });
        if (this.fetchAbort === abort) this.fetchAbort = null;
        return { response, epochs };
      } catch (e) {
        if (this.closed) return null;
        throw e;
      }
    }
  }

  /** Waits for an assignment change, a partition's backoff to end, or close. */
  private idle(): Promise<void> {
    const now = Date.now();
    let untilMs = Number.POSITIVE_INFINITY;
    for (const st of this.states.values()) if (st.backoffUntilMs > now) untilMs = Math.min(untilMs, st.backoffUntilMs);
    return new Promise((resolve) => {
      const timer = Number.isFinite(untilMs) ? setTimeout(done, untilMs - now) : null;
      function done(): void {
        if (timer !== null) clearTimeout(timer);
        resolve();
      }
      this.assignmentChanged = done;
    });
  }

  private fetchable(): PartitionState[] {
    const now = Date.now();
    return [...this.states.values()].filter((s) => s.pending === null && s.fetchOffset >= 0 && s.backoffUntilMs <= now);
  }

  private fetchRequest(states: readonly PartitionState[]) {
    return {
      partitions: states.map((s) => ({
        topic: s.topic,
        partition: s.partition,
        offset: toInt64(s.fetchOffset, "offset"),
        maxBytes: this.partitionMaxBytes,
      })),
      maxWaitMs: this.maxWaitMs,
      minBytes: this.minBytes,
      maxBytes: this.maxBytes,
      format: RecordFormat.BATCHES,
      isolationLevel: this.isolationLevel,
    };
  }

  /**
   * Applies a response: errors, high watermarks, and fetch offsets moved past the returned
   * batches. Returns the partitions with records to yield.
   */
  private advance(fetched: Fetched): Ready[] {
    const ready: Ready[] = [];
    for (const part of fetched.response.partitions) {
      const st = this.states.get(keyOf(part.topic, part.partition));
      const epoch = st === undefined ? undefined : fetched.epochs.get(st);
      if (st === undefined || epoch === undefined || st.epoch !== epoch) continue; // reassigned or sought since
      if (part.error !== undefined) {
        this.onPartitionError(st, fromErrorDetail(part.error, `${part.topic}-${part.partition}`));
        continue;
      }
      st.failures = 0;
      st.highWatermark = toNumber(part.highWatermark, "highWatermark");
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

  private onPartitionError(st: PartitionState, e: RillError): void {
    if (e.kind === Errors.OFFSET_OUT_OF_RANGE && this.autoOffsetReset !== "none") {
      this.seekState(st, this.autoOffsetReset);
      return;
    }
    if (!isRetriable(e) || st.failures >= this.conn.retry.retries) throw e;
    if (e.kind === Errors.UNKNOWN_TOPIC_OR_PARTITION) this.metadata.invalidate(st.topic);
    st.backoffUntilMs = Date.now() + backoffMs(this.conn.retry, st.failures, this.conn.random);
    st.failures++;
  }

  private *recordsOf(st: PartitionState, part: FetchedPartition, epoch: number): Generator<ConsumerRecord, void, undefined> {
    const bytes = asBuffer(part.recordBatches);
    for (const r of readRecords(part.topic, part.partition, bytes, st.position, this.checkCrcs)) {
      if (st.epoch !== epoch || this.closed) return; // sought or closed while the application held a record
      st.position = r.offset + 1;
      yield r;
    }
  }
}
