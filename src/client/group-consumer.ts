/**
 * `GroupConsumer`, a member of a consumer group, over `GroupService` only (group-transport.ts):
 * it joins the group through the one bidirectional `Consume` stream: the broker assigns
 * partitions (no client-side assignor), heartbeats for the member (no heartbeat loop here),
 * streams the records of the assigned partitions, and answers commits sent on the same stream.
 * Ending the stream leaves the group. (`GroupAdmin`, the unary calls, is in group-admin.ts.)
 *
 * Positions. For each owned partition the consumer tracks `consumed` (one past the last record
 * the iterator yielded) and `processed` (one past the last record the application has finished
 * with: it asked for the next record, or left the loop). `commit()` commits `consumed` — called
 * in the loop body after processing a record it covers that record. Auto-commit commits
 * `processed`, so a record is never committed while the application still holds it.
 *
 * Flow control. The broker delivers at most `maxOutstandingRecords` beyond the member's last
 * committed offsets (summed over its partitions); commits give credit back. With auto-commit the
 * consumer therefore also commits whenever it has drained what it received (and at half the
 * credit), not only every `autoCommitIntervalMs`; with manual commits the application must
 * commit before it has held `maxOutstandingRecords` uncommitted records, or delivery pauses.
 *
 * Rebalances. An `assignment` message adds and removes partitions. Records of a revoked
 * partition stop before the revocation arrives; buffered records of it that the application has
 * not seen yet are dropped (the next owner reads them from the committed offset), and with
 * auto-commit its processed position is committed at once. The broker keeps a revoked
 * partition with sent but uncommitted records for up to 5 s (REVOKE_GRACE_MS) and accepts its
 * commits meanwhile, so `commit()` — also from `onRevoked` — still covers it (the consumer keeps
 * its state in `revoking` until the hook has run). `onRevoked` and `onAssigned` run in the
 * iterator (or in `run`, after the partition's lane finished), in stream order with the
 * records, before the next record is handed over.
 *
 * Pause, resume, seek and regex subscriptions are messages of the same stream (the broker
 * stops a paused partition; records that arrive anyway are dropped and `resume` seeks back to
 * the first one dropped; records carry the `seek_id` of the last seek they follow; a RegExp
 * subscription is matched broker-side at every heartbeat). `run` is in group-run.ts.
 *
 * Coordinator. The Consume stream goes to the group's coordinator: the leader of partition
 * `murmur2(groupId) % 50` of `__consumer_offsets`, found in the metadata (metadata.ts), or any
 * bootstrap broker while it is not known. NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, a broker
 * that cannot be reached, or a join left unanswered for `requestTimeoutMs` refresh the metadata,
 * and the consumer joins again at the coordinator it then finds. With a `groupTransport` given,
 * every stream goes to it.
 *
 * Failures. When the stream breaks with a retriable error (broker restart, connection reset,
 * coordinator moved) the consumer loses its partitions (`onRevoked`) and joins again, per the
 * retry policy; other errors end the iterator with the error.
 *
 * Corrupt data. When the broker cannot read a stored batch of a partition it sends that
 * partition's CORRUPT_MESSAGE (with the batch's offset and the offset after it) and pauses the
 * partition; the others go on. The iterator throws it, or with `skipCorrupt` reports it to
 * `onCorrupt`, moves the partition's positions past the batch and commits there, which resumes
 * the partition's delivery after it.
 */

import { Errors, RillError } from "../base/errors.ts";
import { IsolationLevel, OffsetSpec, RecordFormat, type ConsumedRecord } from "../gen/rill/v1/common_pb.ts";
import {
  AutoOffsetReset,
  type ConsumeResponse,
  type ConsumeResponse_Assignment,
  type ConsumeResponse_CommitResult,
  type ConsumeResponse_Records,
  type OffsetCommitResult,
} from "../gen/rill/v1/group_service_pb.ts";
import { asBuffer } from "../protocol/grpc-service.ts";
import type { CorruptBatchReport } from "./batch-reader.ts";
import { checkChoice, checkInt, toInt64, toNumber } from "./convert.ts";
import { ClientClosedError, ConnectionError, fromErrorDetail, isRetriable, isStaleMetadata } from "./errors.ts";
import {
  type GroupClientOptions,
  type GroupConnection,
  type GroupOffset,
  type GroupTopicPartition,
  checkGroupId,
  connectGroup,
  coordinatorOf,
  groupError,
  tpName,
} from "./group-connection.ts";
import type { ConsumeStream, GroupTransport } from "./group-transport.ts";
import { type RunHost, type RunOptions, runConsumer } from "./group-run.ts";
import type { GroupRecord, Item, PartitionState } from "./group-types.ts";
import { backoffMs } from "./retry.ts";
import { type Deserializer, type Serde, deserializeWith } from "./serde.ts";
import { closeOnSignals, shutdownSignals } from "./shutdown.ts";

export type { ConsumerRecord, CorruptBatchReport } from "./batch-reader.ts";
export type { GroupOffset, GroupTopicPartition } from "./group-connection.ts";
export type { GroupRecord } from "./group-types.ts";
export type { EachBatchPayload, EachMessagePayload, RunBatch, RunOptions } from "./group-run.ts";

/** Where `seek` moves a partition. */
export type GroupSeekTarget = number | "earliest" | "latest" | { readonly timestampMs: number };

function keyOf(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

const AUTO_OFFSET_RESET = {
  earliest: AutoOffsetReset.EARLIEST,
  latest: AutoOffsetReset.LATEST,
  none: AutoOffsetReset.NONE,
} as const;

/** GroupConsumer settings. `K`, `V`: what the `deserializers` return (Buffer without). */
export interface GroupConsumerOptions<K = Buffer, V = Buffer> extends GroupClientOptions {
  /** The group to join: 1 to 249 characters. */
  readonly groupId: string;
  /** Where a partition without a committed offset starts. Default "latest" (as Kafka). */
  readonly autoOffsetReset?: "earliest" | "latest" | "none" | undefined;
  /**
   * "read_committed": only records of committed transactions (and non-transactional ones), up to
   * the last stable offset (the broker leaves aborted records out); "read_uncommitted" (the
   * default, as Kafka's Java client): every record up to the high watermark.
   */
  readonly isolation?: "read_uncommitted" | "read_committed" | undefined;
  /** Commit processed positions every `autoCommitIntervalMs`, on revocation and on close. Default true. */
  readonly autoCommit?: boolean | undefined;
  /** Default 5000. */
  readonly autoCommitIntervalMs?: number | undefined;
  /** Records the broker may deliver beyond the committed offsets. Default: the broker's. */
  readonly maxOutstandingRecords?: number | undefined;
  /** Byte limit sent as `max_outstanding_bytes` (the broker today caps one records message with it). Default: the broker's. */
  readonly maxOutstandingBytes?: number | undefined;
  /** Called (in the iterator, awaited) when partitions are assigned to this member. */
  readonly onAssigned?: ((partitions: GroupTopicPartition[]) => void | Promise<void>) | undefined;
  /**
   * Called (in the iterator or `run`, awaited) when partitions are taken away, or lost because
   * the stream broke. No record of them is handed over any more, but `commit()` in the hook
   * still covers them: the broker accepts a revoked partition's commits until everything it sent
   * of it is committed, or for 5 s. (After a broken stream nothing can be committed.)
   */
  readonly onRevoked?: ((partitions: GroupTopicPartition[]) => void | Promise<void>) | undefined;
  /** Static membership: a member that comes back with the same id within its session timeout keeps its partitions. */
  readonly instanceId?: string | undefined;
  /** Session timeout the member asks for. Default: the broker's. */
  readonly sessionTimeoutMs?: number | undefined;
  /** "uniform" (sticky, the default) or "range"; all members must agree. */
  readonly assignor?: "uniform" | "range" | undefined;
  /** Client id shown by DescribeGroups. Default "rill-ts". */
  readonly clientId?: string | undefined;
  /**
   * Skip a batch the broker cannot read (CORRUPT_MESSAGE) — commit the offset after it and go
   * on — instead of throwing from the iterator. Default false.
   */
  readonly skipCorrupt?: boolean | undefined;
  /** With `skipCorrupt`: called (in the iterator, awaited) for each batch skipped. */
  readonly onCorrupt?: ((report: CorruptBatchReport) => void | Promise<void>) | undefined;
  /** Turn fetched keys and values into application values (serde.ts: `json()`, `protobuf(Schema)`); null stays null. Default: none (Buffers). */
  readonly deserializers?:
    | { readonly key?: Deserializer<K> | Serde<K> | undefined; readonly value?: Deserializer<V> | Serde<V> | undefined }
    | undefined;
  /** Commit, leave the group and close on SIGTERM/SIGINT (`true`) or the signals listed, then re-raise the signal (shutdown.ts). Default false. */
  readonly closeOnSignals?: boolean | readonly NodeJS.Signals[] | undefined;
}

interface PendingCommit {
  readonly startedMs: number;
  readonly offsets: readonly GroupOffset[];
  readonly resolve: (results: GroupOffset[]) => void;
  readonly reject: (e: Error) => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

/** The broker's `max_outstanding_records` when the subscription leaves it 0 (src/rpc/consume-stream.ts). */
const BROKER_DEFAULT_OUTSTANDING_RECORDS = 1000;

const NO_HEADERS: readonly { key: string; value: Buffer | null }[] = Object.freeze([]);

function bufOrNull(b: Uint8Array | undefined): Buffer | null {
  return b === undefined ? null : asBuffer(b);
}

type Deserializers = GroupConsumerOptions<unknown, unknown>["deserializers"];

function* decodedRecords(m: ConsumeResponse_Records, des: Deserializers): Generator<GroupRecord<unknown, unknown>, void, undefined> {
  for (const r of m.records as ConsumedRecord[]) {
    const offset = toNumber(r.offset, "offset");
    let key: unknown = bufOrNull(r.key);
    let value: unknown = bufOrNull(r.value);
    if (des !== undefined) {
      const where = { partition: m.partition, offset };
      if (key !== null && des.key !== undefined) key = deserializeWith(des.key, key as Buffer, { topic: m.topic, field: "key" }, where);
      if (value !== null && des.value !== undefined)
        value = deserializeWith(des.value, value as Buffer, { topic: m.topic, field: "value" }, where);
    }
    yield {
      topic: m.topic,
      partition: m.partition,
      offset,
      timestampMs: toNumber(r.timestampMs, "timestamp_ms"),
      key,
      value,
      headers: r.headers.length === 0 ? NO_HEADERS : r.headers.map((h) => ({ key: h.key, value: bufOrNull(h.value) })),
    };
  }
}

/** A member of a consumer group, fed by one Consume stream; see the module comment. */
export class GroupConsumer<K = Buffer, V = Buffer> implements AsyncIterable<GroupRecord<K, V>> {
  readonly groupId: string;
  private readonly conn: GroupConnection;
  private readonly autoOffsetReset: "earliest" | "latest" | "none";
  /** Auto-commit of processed positions (interval, drain, half credit, revocation, close); `run` may change it. */
  private autoCommit: boolean;
  private readonly autoCommitIntervalMs: number;
  private readonly maxOutstandingRecords: number;
  private readonly maxOutstandingBytes: number;
  private readonly sessionTimeoutMs: number;
  private readonly options: GroupConsumerOptions<K, V>;
  private readonly unregisterSignals: () => void;

  private topics: string[] | null = null;
  /** A regex subscription's pattern (its source), or null. */
  private topicRegex: string | null = null;
  /** Revoked partitions kept until the revocation hook has run, so it can still commit them. */
  private readonly revoking = new Map<string, PartitionState>();
  /** True while `run` drives the consumer. */
  private running = false;
  private stopRun: (() => Promise<void>) | null = null;
  private stream: ConsumeStream | null = null;
  /** The transport of the current (or last) stream: the coordinator's. */
  private transport: GroupTransport | null = null;
  /** Bumped per stream: messages of an older stream are ignored. */
  private generation = 0;
  private readonly owned = new Map<string, PartitionState>();
  private readonly queue: Item[] = [];
  private queueHead = 0;
  private wake: (() => void) | null = null;
  private failure: Error | null = null;
  private readonly pending = new Map<bigint, PendingCommit>();
  private nextCommitId = 1n;
  private autoCommitTimer: ReturnType<typeof setInterval> | null = null;
  private rejoinTimer: ReturnType<typeof setTimeout> | null = null;
  private joinTimer: ReturnType<typeof setTimeout> | null = null;
  /** Failed joins in a row (reset by the first message of a stream). */
  private rejoinFailures = 0;
  private iterating = false;
  private closing = false;
  private closed = false;
  private closePromise: Promise<void> | null = null;
  private streamEnded: (() => void) | null = null;
  private member = { memberId: "", memberEpoch: 0 };

  /** Checks the options (RillError / RangeError naming the field); nothing connects until `subscribe`. */
  constructor(options: GroupConsumerOptions<K, V>) {
    this.groupId = checkGroupId(options.groupId, "groupId");
    this.autoOffsetReset = checkChoice(options.autoOffsetReset ?? "latest", "autoOffsetReset", ["earliest", "latest", "none"]);
    this.autoCommit = options.autoCommit ?? true;
    this.autoCommitIntervalMs = checkInt(options.autoCommitIntervalMs ?? 5000, "autoCommitIntervalMs", 1, 0x7fffffff);
    this.maxOutstandingRecords = checkInt(options.maxOutstandingRecords ?? 0, "maxOutstandingRecords", 0, 0x7fffffff);
    this.maxOutstandingBytes = checkInt(options.maxOutstandingBytes ?? 0, "maxOutstandingBytes", 0, Number.MAX_SAFE_INTEGER);
    this.sessionTimeoutMs = checkInt(options.sessionTimeoutMs ?? 0, "sessionTimeoutMs", 0, 0x7fffffff);
    if (options.assignor !== undefined) checkChoice(options.assignor, "assignor", ["uniform", "range"]);
    if (options.isolation !== undefined) checkChoice(options.isolation, "isolation", ["read_uncommitted", "read_committed"]);
    this.options = options;
    const signals = shutdownSignals(options.closeOnSignals, "closeOnSignals");
    this.conn = connectGroup(options);
    this.unregisterSignals = closeOnSignals(this, signals);
  }

  /** The member id the broker gave this member ("" before the first assignment). */
  get memberId(): string {
    return this.member.memberId;
  }

  /** The member epoch of the last assignment (0 before the first). */
  get memberEpoch(): number {
    return this.member.memberEpoch;
  }

  /** The partitions this member owns now, sorted. */
  assignment(): GroupTopicPartition[] {
    return [...this.owned.values()]
      .map((s) => ({ topic: s.topic, partition: s.partition }))
      .sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
  }

  /** One past the last record yielded for `tp` (what `commit()` would commit); -1 when none or not owned. */
  position(tp: GroupTopicPartition): number {
    return this.owned.get(keyOf(tp.topic, tp.partition))?.consumed ?? -1;
  }

  /** The offset this member last committed for `tp` (confirmed by the broker); -1 when none or not owned. */
  committed(tp: GroupTopicPartition): number {
    return this.owned.get(keyOf(tp.topic, tp.partition))?.committed ?? -1;
  }

  /**
   * Joins the group subscribed to `topics` (opens the Consume stream). Once per consumer. A
   * RegExp subscribes to every topic whose whole name matches it, now and later (the broker
   * matches it at each heartbeat; internal topics never match; no flags but `u`).
   */
  subscribe(topics: readonly string[] | RegExp): void {
    this.checkOpen();
    if (this.topics !== null)
      throw new RillError(Errors.INVALID_ARGUMENT, "subscribe: already subscribed (one subscription per GroupConsumer)");
    if (topics instanceof RegExp) {
      if (topics.flags !== "" && topics.flags !== "u")
        throw new RillError(
          Errors.INVALID_ARGUMENT,
          `subscribe: regex flags "${topics.flags}" are not supported (the broker matches whole names, case-sensitively)`,
        );
      this.topicRegex = topics.source;
      this.topics = [];
    } else {
      if (!Array.isArray(topics) || topics.length === 0)
        throw new RillError(Errors.INVALID_ARGUMENT, "subscribe: topics must be a non-empty list or a RegExp");
      topics.forEach((t, i) => {
        if (typeof t !== "string" || t.length === 0)
          throw new RillError(Errors.INVALID_ARGUMENT, `subscribe: topics[${i}] is not a topic name`);
      });
      this.topics = [...new Set(topics)];
    }
    this.open();
    this.setAutoCommit(this.autoCommit);
  }

  /** Turns auto-commit (and its timer) on or off. */
  private setAutoCommit(on: boolean): void {
    this.autoCommit = on;
    if (!on && this.autoCommitTimer !== null) {
      clearInterval(this.autoCommitTimer);
      this.autoCommitTimer = null;
    }
    if (on && this.autoCommitTimer === null) {
      this.autoCommitTimer = setInterval(() => this.autoCommitNow(), this.autoCommitIntervalMs);
      this.autoCommitTimer.unref?.();
    }
  }

  /**
   * Stops handing over records of `partitions` (owned ones; others are ignored) until `resume`:
   * the broker stops sending them, and records of them already received are dropped here and
   * sent again after `resume`. Other partitions go on.
   */
  pause(partitions: readonly GroupTopicPartition[]): void {
    this.checkOpen();
    const tps = this.ownedStates(partitions, "pause").filter((st) => !st.paused);
    for (const st of tps) st.paused = true;
    if (tps.length > 0)
      this.stream?.write({
        kind: { case: "pause", value: { partitions: tps.map((st) => ({ topic: st.topic, partition: st.partition })) } },
      });
  }

  /** Hands over records of paused `partitions` again, from the first one not handed over. */
  resume(partitions: readonly GroupTopicPartition[]): void {
    this.checkOpen();
    const tps = this.ownedStates(partitions, "resume").filter((st) => st.paused);
    for (const st of tps) {
      st.paused = false;
      if (st.dropFrom >= 0) this.sendSeek(st, st.dropFrom);
    }
    if (tps.length > 0)
      this.stream?.write({
        kind: { case: "resume", value: { partitions: tps.map((st) => ({ topic: st.topic, partition: st.partition })) } },
      });
  }

  /** The partitions paused now, sorted. */
  paused(): GroupTopicPartition[] {
    return this.assignment().filter((tp) => this.owned.get(keyOf(tp.topic, tp.partition))!.paused);
  }

  /**
   * Moves an owned partition's position (Kafka's seek in a group): the next record handed over is
   * at `to` (an offset, "earliest", "latest" or the first at `{timestampMs}`); records received
   * before are dropped. Nothing is committed until the next commit, which commits from there (also
   * backwards). INVALID_ARGUMENT when `tp` is not owned.
   */
  seek(tp: GroupTopicPartition, to: GroupSeekTarget): void {
    this.checkOpen();
    const st = this.owned.get(keyOf(tp.topic, tp.partition));
    if (st === undefined)
      throw new RillError(Errors.INVALID_ARGUMENT, `seek: ${tpName(tp.topic, tp.partition)} is not assigned to this member`);
    if (typeof to === "number") checkInt(to, "seek: offset", 0, Number.MAX_SAFE_INTEGER);
    else if (typeof to === "object") checkInt(to.timestampMs, "seek: timestampMs", 0, Number.MAX_SAFE_INTEGER);
    else checkChoice(to, "seek: target", ["earliest", "latest"]);
    this.sendSeek(st, to);
  }

  private sendSeek(st: PartitionState, to: GroupSeekTarget): void {
    st.seekId++;
    st.dropFrom = -1;
    st.base = -1;
    st.committed = -1;
    const at = typeof to === "number" ? to : -1;
    st.consumed = at;
    st.processed = at;
    const where =
      typeof to === "number"
        ? { offset: toInt64(to, "offset") }
        : to === "earliest"
          ? { spec: OffsetSpec.EARLIEST }
          : to === "latest"
            ? { spec: OffsetSpec.LATEST }
            : { spec: OffsetSpec.TIMESTAMP, timestampMs: toInt64(to.timestampMs, "timestampMs") };
    this.stream?.write({ kind: { case: "seek", value: { topic: st.topic, partition: st.partition, seekId: st.seekId, ...where } } });
  }

  private ownedStates(partitions: readonly GroupTopicPartition[], what: string): PartitionState[] {
    if (!Array.isArray(partitions))
      throw new RillError(Errors.INVALID_ARGUMENT, `${what}: partitions must be a list of {topic, partition}`);
    const out: PartitionState[] = [];
    for (const tp of partitions) {
      const st = this.owned.get(keyOf(tp?.topic, tp?.partition));
      if (st !== undefined) out.push(st);
    }
    return out;
  }

  /** False when records of `st` from the message of `seekId` must not be handed over (revoked, paused, sought since). */
  private usable(st: PartitionState, seekId: bigint): boolean {
    return !this.closed && this.owned.get(keyOf(st.topic, st.partition)) === st && !st.paused && st.seekId === seekId;
  }

  /** Records of a paused partition from `offset` on (read after seek `seekId`) were dropped: resume there. */
  private dropped(st: PartitionState, offset: number, seekId: bigint): void {
    if (!st.paused || st.seekId !== seekId) return;
    if (st.dropFrom < 0 || offset < st.dropFrom) st.dropFrom = offset;
  }

  /**
   * Consumes with handlers, kafkajs-style: `eachMessage` or `eachBatch`, up to
   * `partitionsConsumedConcurrently` partitions at a time (each in order), committing as `commit`
   * says. Resolves once the consumer is closed; rejects with a handler's error (after committing
   * what was resolved and closing). See group-run.ts and the README.
   */
  run(options: RunOptions<K, V>): Promise<void> {
    if (this.iterating) return Promise.reject(new RillError(Errors.INVALID_ARGUMENT, "run: the consumer is already being iterated or run"));
    try {
      this.checkOpen();
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.topics === null) return Promise.reject(new RillError(Errors.INVALID_ARGUMENT, "run: subscribe(topics) first"));
    this.iterating = true;
    this.running = true;
    return runConsumer(this.runHost(), options as RunOptions<unknown, unknown>).finally(() => {
      this.iterating = false;
      this.running = false;
    });
  }

  /** What group-run.ts needs of the consumer's internals. */
  private runHost(): RunHost {
    return {
      groupId: this.groupId,
      autoCommit: this.autoCommit,
      setAutoCommit: (on) => this.setAutoCommit(on),
      nextItem: (stop) => this.nextItem(stop),
      wake: () => this.notify(),
      idle: () => {
        if (this.autoCommit) this.autoCommitNow();
      },
      onStop: (stop) => {
        this.stopRun = stop;
      },
      usable: (st, seekId) => this.usable(st, seekId),
      dropped: (st, offset, seekId) => this.dropped(st, offset, seekId),
      ownedStates: () => [...this.owned.values()],
      pause: (tps) => this.pause(tps),
      resume: (tps) => this.resume(tps),
      resolved: (st, next, seekId) => {
        if (st.seekId !== seekId) return; // sought since: these offsets are no longer the position
        if (next > st.consumed) st.consumed = next;
        if (next > st.processed) st.processed = next;
        if (st.base < 0) st.base = next - 1;
        if (this.autoCommit) this.maybeCommitForCredit();
      },
      commitPartitions: (states) => this.sendCommit(this.positionsOf(states, "processed")),
      onAssigned: (partitions) => this.options.onAssigned?.(partitions),
      onRevoked: (partitions) => this.options.onRevoked?.(partitions),
      revokedStates: (partitions) =>
        partitions.map((tp) => this.revoking.get(keyOf(tp.topic, tp.partition))).filter((st) => st !== undefined),
      forgetRevoked: (partitions) => {
        for (const tp of partitions) this.revoking.delete(keyOf(tp.topic, tp.partition));
      },
      onCorrupt: (st, report) => this.onCorruptBatch(st, report),
      close: () => this.close(),
    };
  }

  /** Records of the owned partitions, in offset order per partition, until `close()`. */
  [Symbol.asyncIterator](): AsyncGenerator<GroupRecord<K, V>, void, undefined> {
    return this.records();
  }

  /** The same as `for await (const r of consumer)`; one iteration at a time. */
  async *records(): AsyncGenerator<GroupRecord<K, V>, void, undefined> {
    if (this.iterating) throw new RillError(Errors.INVALID_ARGUMENT, "group consumer: already being iterated");
    this.checkOpen();
    if (this.topics === null) throw new RillError(Errors.INVALID_ARGUMENT, "group consumer: subscribe(topics) before iterating");
    this.iterating = true;
    let held: { st: PartitionState; next: number } | null = null;
    const release = (): void => {
      if (held === null) return;
      if (held.next > held.st.processed) held.st.processed = held.next;
      held = null;
      if (this.autoCommit) this.maybeCommitForCredit();
    };
    try {
      for (;;) {
        release();
        const item = await this.nextItem();
        if (item === null) return;
        if (item.kind === "corrupt") {
          await this.onCorruptBatch(item.st, item.report);
          continue;
        }
        if (item.kind !== "records") {
          if (item.kind === "assigned") await this.options.onAssigned?.(item.partitions);
          else {
            try {
              await this.options.onRevoked?.(item.partitions);
            } finally {
              for (const tp of item.partitions) this.revoking.delete(keyOf(tp.topic, tp.partition));
            }
          }
          continue;
        }
        const { st, records, seekId } = item;
        let next = Math.max(item.first, st.consumed);
        for (;;) {
          release();
          if (!this.usable(st, seekId)) {
            this.dropped(st, next, seekId); // paused meanwhile (revoked or sought: dropped for good)
            break;
          }
          const n = records.next();
          if (n.done) {
            // Every record of the message was handled: the position moves to the message's next
            // offset, past transaction markers and aborted records that end it (else a partition
            // that ends with a marker never reaches its end offset).
            if (item.next > st.consumed) st.consumed = item.next;
            if (item.next > st.processed) st.processed = item.next;
            break;
          }
          const r = n.value as GroupRecord<K, V>;
          if (r.offset < st.consumed) continue; // delivered again (never expected)
          if (st.base < 0) st.base = r.offset;
          st.consumed = r.offset + 1;
          next = st.consumed;
          held = { st, next: st.consumed };
          yield r;
        }
      }
    } finally {
      release();
      this.iterating = false;
    }
  }

  /**
   * Commits, for every owned partition, one past the last record yielded (or exactly `offsets`
   * when given). Resolves with what was committed once the broker confirms it; rejects with the
   * first partition's error (e.g. STALE_MEMBER_EPOCH for a partition no longer owned — that
   * partition is not committed) or the whole commit's. As in Kafka, partitions revoked since
   * their records were yielded are not included: their uncommitted records go to the next owner.
   */
  async commit(offsets?: readonly GroupOffset[]): Promise<GroupOffset[]> {
    this.checkOpen();
    const list =
      offsets !== undefined
        ? this.checkOffsets(offsets)
        : [...this.positions("consumed"), ...this.positionsOf([...this.revoking.values()], "consumed")];
    return this.sendCommit(list);
  }

  /**
   * Leaves the group: with auto-commit, commits the positions of every record yielded first;
   * then ends the stream (the broker removes the member) and closes the connection. The
   * iterator ends. Rejects with the final commit's error, if any (after closing).
   */
  close(): Promise<void> {
    this.closePromise ??= this.doClose();
    return this.closePromise;
  }

  // -------------------------------------------------------------------------------------------

  private checkOpen(): void {
    if (this.closed || this.closing) throw new ClientClosedError("group consumer");
  }

  private checkOffsets(offsets: readonly GroupOffset[]): GroupOffset[] {
    return offsets.map((o, i) => {
      if (typeof o.topic !== "string" || o.topic.length === 0)
        throw new RillError(Errors.INVALID_ARGUMENT, `offsets[${i}].topic: not a topic name`);
      checkInt(o.partition, `offsets[${i}].partition`, 0, 0x7fffffff);
      checkInt(o.offset, `offsets[${i}].offset`, 0, Number.MAX_SAFE_INTEGER);
      return { topic: o.topic, partition: o.partition, offset: o.offset };
    });
  }

  /** Owned partitions whose `which` position is ahead of what is committed. */
  private positions(which: "consumed" | "processed", skipInFlight = false): GroupOffset[] {
    return this.positionsOf(this.owned.values(), which, skipInFlight);
  }

  /** Of `states`, those whose `which` position is ahead of what is committed. */
  private positionsOf(states: Iterable<PartitionState>, which: "consumed" | "processed", skipInFlight = false): GroupOffset[] {
    const out: GroupOffset[] = [];
    for (const st of states) {
      const pos = st[which];
      if (pos < 0 || pos <= st.committed) continue;
      if (skipInFlight && pos <= st.committing) continue;
      out.push({ topic: st.topic, partition: st.partition, offset: pos });
    }
    return out;
  }

  /** Opens a Consume stream at the group's coordinator (found first, unless the transport is fixed). */
  private open(): void {
    const generation = ++this.generation;
    const mine = (): boolean => generation === this.generation && !this.closing && !this.closed;
    if (this.conn.metadata === null) {
      this.openAt(this.conn.transportFor(""), generation);
      return;
    }
    void coordinatorOf(this.conn, this.groupId).then((address) => {
      if (mine()) this.openAt(this.conn.transportFor(address), generation);
    });
  }

  private openAt(transport: GroupTransport, generation: number): void {
    const mine = (): boolean => generation === this.generation;
    this.transport = transport;
    const stream = transport.openConsume({
      onResponse: (m) => {
        if (!mine()) return;
        try {
          this.onResponse(m);
        } catch (e) {
          this.onStreamFailed(e instanceof Error ? e : new Error(String(e)), false);
        }
      },
      onError: (e) => {
        if (mine()) this.onStreamFailed(e, isRetriable(e));
      },
      onEnd: () => {
        if (!mine()) return;
        if (this.closing) this.onStreamClosed();
        else this.onStreamFailed(new ConnectionError(transport.address, "the broker ended the Consume stream"), true);
      },
    });
    this.stream = stream;
    // A join is answered by an assignment at once; a stream that stays silent is treated as
    // failed, retriably: a broker that is not the group's coordinator (metadata out of date)
    // keeps such a stream open without a word, so the consumer looks the coordinator up again.
    this.clearJoinTimer();
    this.joinTimer = setTimeout(() => {
      this.joinTimer = null;
      if (!mine()) return;
      const e = new RillError(
        Errors.REQUEST_TIMED_OUT,
        `Consume: no answer to subscribe (group "${this.groupId}", ${this.topicRegex !== null ? `topics matching /${this.topicRegex}/` : `topics ${this.topics!.join(", ")}`}) from ${transport.address} within ${this.conn.requestTimeoutMs} ms`,
      );
      this.onStreamFailed(e, true);
    }, this.conn.requestTimeoutMs);
    this.joinTimer.unref?.();
    const sub = {
      groupId: this.groupId,
      topics: this.topics!,
      topicRegex: this.topicRegex ?? "",
      autoOffsetReset: AUTO_OFFSET_RESET[this.autoOffsetReset],
      maxOutstandingRecords: this.maxOutstandingRecords,
      maxOutstandingBytes: BigInt(this.maxOutstandingBytes),
      format: RecordFormat.RECORDS,
      isolationLevel: this.options.isolation === "read_committed" ? IsolationLevel.READ_COMMITTED : IsolationLevel.READ_UNCOMMITTED,
      sessionTimeoutMs: this.sessionTimeoutMs,
      assignor: this.options.assignor ?? "",
      clientId: this.options.clientId ?? "rill-ts",
      ...(this.options.instanceId !== undefined ? { instanceId: this.options.instanceId } : {}),
    };
    stream.write({ kind: { case: "subscribe", value: sub } });
  }

  private clearJoinTimer(): void {
    if (this.joinTimer !== null) clearTimeout(this.joinTimer);
    this.joinTimer = null;
  }

  private onResponse(m: ConsumeResponse): void {
    this.rejoinFailures = 0;
    this.clearJoinTimer();
    switch (m.kind.case) {
      case "assignment":
        this.onAssignment(m.kind.value);
        break;
      case "records":
        this.onRecords(m.kind.value);
        break;
      case "commitResult":
        this.onCommitResult(m.kind.value);
        break;
      default:
        break; // a newer broker's message kind: ignored
    }
  }

  private onAssignment(a: ConsumeResponse_Assignment): void {
    this.member = { memberId: a.memberId, memberEpoch: a.memberEpoch };
    const revoked: GroupTopicPartition[] = [];
    for (const tp of a.revoked) {
      const st = this.owned.get(keyOf(tp.topic, tp.partition));
      if (st === undefined) continue;
      this.owned.delete(keyOf(tp.topic, tp.partition));
      this.revoking.set(keyOf(tp.topic, tp.partition), st);
      revoked.push({ topic: tp.topic, partition: tp.partition });
      // Best effort: the broker refuses it if it no longer counts the partition as ours.
      if (this.autoCommit && st.processed > st.committed && st.processed > st.committing) {
        this.sendCommit([{ topic: st.topic, partition: st.partition, offset: st.processed }]).catch(() => undefined);
      }
    }
    if (revoked.length > 0) this.push({ kind: "revoked", partitions: revoked });
    const assigned: GroupTopicPartition[] = [];
    for (const tp of a.assigned) {
      const key = keyOf(tp.topic, tp.partition);
      if (this.owned.has(key)) continue;
      this.owned.set(key, {
        topic: tp.topic,
        partition: tp.partition,
        consumed: -1,
        processed: -1,
        committed: -1,
        committing: -1,
        delivered: -1,
        base: -1,
        highWatermark: -1,
        paused: false,
        dropFrom: -1,
        seekId: 0n,
      });
      assigned.push({ topic: tp.topic, partition: tp.partition });
    }
    if (assigned.length > 0) this.push({ kind: "assigned", partitions: assigned });
    if (this.conn.instr.active && (assigned.length > 0 || revoked.length > 0)) {
      this.conn.instr.emit({
        type: "rebalance",
        groupId: this.groupId,
        memberId: a.memberId,
        memberEpoch: a.memberEpoch,
        assigned,
        revoked,
      });
    }
  }

  private onRecords(m: ConsumeResponse_Records): void {
    const st = this.owned.get(keyOf(m.topic, m.partition));
    if (st === undefined) {
      throw new RillError(
        Errors.UNKNOWN_SERVER_ERROR,
        `Consume: the broker sent records of ${tpName(m.topic, m.partition)}, which this member does not own`,
      );
    }
    st.highWatermark = toNumber(m.highWatermark, "high_watermark");
    if (m.error !== undefined) {
      const error = fromErrorDetail(m.error, tpName(m.topic, m.partition));
      const report = {
        topic: m.topic,
        partition: m.partition,
        offset: toNumber(m.firstOffset, "first_offset"),
        nextOffset: toNumber(m.nextOffset, "next_offset"),
        error,
      };
      this.push({ kind: "corrupt", st, report });
      return;
    }
    if (m.seekId < st.seekId) return; // read before the last seek
    const next = toNumber(m.nextOffset, "next_offset");
    if (next > st.delivered) st.delivered = next;
    const first = toNumber(m.firstOffset, "first_offset");
    if (st.paused) {
      this.dropped(st, Math.max(first, st.consumed), m.seekId);
      return;
    }
    this.push({
      kind: "records",
      st,
      records: decodedRecords(m, this.options.deserializers as Deserializers),
      first,
      next,
      seekId: m.seekId,
    });
  }

  /**
   * A batch the broker cannot read: thrown, or with skipCorrupt reported, skipped and committed
   * past (the broker resumes the partition after that commit). A partition revoked meanwhile
   * is left to its next owner.
   */
  private async onCorruptBatch(st: PartitionState, report: CorruptBatchReport): Promise<void> {
    if (this.owned.get(keyOf(st.topic, st.partition)) !== st) return;
    if (this.options.skipCorrupt !== true) throw report.error;
    await this.options.onCorrupt?.(report);
    const next = report.nextOffset;
    if (next > st.consumed) st.consumed = next;
    if (next > st.processed) st.processed = next;
    if (next > st.delivered) st.delivered = next;
    // Not awaited: the records of other partitions keep coming while the broker confirms it.
    this.sendCommit([{ topic: st.topic, partition: st.partition, offset: next }]).catch(() => undefined);
  }

  private onCommitResult(r: ConsumeResponse_CommitResult): void {
    const p = this.pending.get(r.commitId);
    if (p === undefined) return; // timed out already
    this.pending.delete(r.commitId);
    clearTimeout(p.timer);
    const results = r.offsets as OffsetCommitResult[];
    const committed: GroupOffset[] = [];
    let firstError: RillError | null = null;
    p.offsets.forEach((o, i) => {
      const res = results[i];
      const st = this.stateOf(o.topic, o.partition);
      if (st !== undefined && st.committing <= o.offset) st.committing = -1;
      if (r.error !== undefined) return;
      if (res === undefined) {
        firstError ??= new RillError(Errors.UNKNOWN_SERVER_ERROR, `commit: no result for ${tpName(o.topic, o.partition)}`);
      } else if (res.error !== undefined) {
        firstError ??= fromErrorDetail(res.error, `partition ${tpName(o.topic, o.partition)}`);
      } else {
        if (st !== undefined && o.offset > st.committed) st.committed = o.offset;
        committed.push(o);
      }
    });
    const error = r.error !== undefined ? groupError(r.error, this.groupId) : firstError;
    if (this.conn.instr.active) {
      const durationMs = Math.round((performance.now() - p.startedMs) * 1000) / 1000;
      this.conn.instr.emit({ type: "commit", groupId: this.groupId, offsets: p.offsets, durationMs, error: error?.message ?? null });
    }
    if (error !== null) p.reject(error);
    else p.resolve(committed);
    if (this.autoCommit) this.maybeCommitForCredit();
  }

  private sendCommit(offsets: GroupOffset[]): Promise<GroupOffset[]> {
    if (offsets.length === 0) return Promise.resolve([]);
    if (this.failure !== null) return Promise.reject(this.failure);
    const stream = this.stream;
    if (stream === null)
      return Promise.reject(
        new ConnectionError(this.transport?.address ?? this.conn.anyAddress(), "not connected (joining the group again)"),
      );
    const commitId = this.nextCommitId++;
    return new Promise<GroupOffset[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.pending.delete(commitId))
          reject(new RillError(Errors.REQUEST_TIMED_OUT, `commit: no commit_result within ${this.conn.requestTimeoutMs} ms`));
      }, this.conn.requestTimeoutMs);
      timer.unref?.();
      this.pending.set(commitId, { startedMs: performance.now(), offsets, resolve, reject, timer });
      for (const o of offsets) {
        const st = this.stateOf(o.topic, o.partition);
        if (st !== undefined && o.offset > st.committing) st.committing = o.offset;
      }
      stream.write({
        kind: {
          case: "commit",
          value: {
            commitId,
            offsets: offsets.map((o) => ({ topic: o.topic, partition: o.partition, offset: toInt64(o.offset, "offset"), leaderEpoch: -1 })),
          },
        },
      });
    });
  }

  private autoCommitNow(): void {
    if (this.closed || this.closing || this.stream === null) return;
    this.sendCommit(this.positions("processed", true)).catch(() => undefined);
  }

  /**
   * Auto-commit: commit early when half the credit is held by processed, uncommitted records
   * (so delivery does not pause until the application has drained everything).
   */
  private maybeCommitForCredit(): void {
    if (this.closing || this.closed) return;
    let held = 0;
    for (const st of this.owned.values()) {
      const from = Math.max(st.committed, st.committing, st.base);
      if (from >= 0 && st.processed > from) held += st.processed - from;
    }
    if (held * 2 >= (this.maxOutstandingRecords || BROKER_DEFAULT_OUTSTANDING_RECORDS)) this.autoCommitNow();
  }

  /** An owned partition's state, or a revoked one's until its revocation hook has run. */
  private stateOf(topic: string, partition: number): PartitionState | undefined {
    const k = keyOf(topic, partition);
    return this.owned.get(k) ?? this.revoking.get(k);
  }

  private push(item: Item): void {
    this.queue.push(item);
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** The next queued item; null once closed (or `stop()` says so). Throws the stream's failure. */
  private async nextItem(stop?: () => boolean): Promise<Item | null> {
    for (;;) {
      if (this.closed || stop?.() === true) return null;
      if (this.queueHead < this.queue.length) {
        const item = this.queue[this.queueHead++]!;
        if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
          this.queue.splice(0, this.queueHead);
          this.queueHead = 0;
        }
        return item;
      }
      if (this.failure !== null) throw this.failure;
      // Drained: with auto-commit, give the broker its credit back before waiting (`run` does
      // it when its lanes are idle: what it took from the queue may not be handled yet).
      if (this.autoCommit && !this.running) this.autoCommitNow();
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  /** The stream broke: partitions are lost; join again when `retriable`, else fail the iterator. */
  private onStreamFailed(e: Error, retriable: boolean): void {
    this.clearJoinTimer();
    const stream = this.stream;
    this.stream = null;
    this.generation++;
    stream?.cancel();
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(e);
      this.pending.delete(id);
    }
    const lost = this.assignment();
    for (const [k, st] of this.owned) this.revoking.set(k, st);
    this.owned.clear();
    if (lost.length > 0) this.push({ kind: "revoked", partitions: lost });
    // NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, a broker gone: the coordinator may have moved.
    if (isStaleMetadata(e)) void this.conn.metadata?.requestRefresh();
    if (this.closing || this.closed) {
      this.onStreamClosed();
      return;
    }
    if (retriable && this.rejoinFailures < this.conn.retry.retries) {
      const wait = backoffMs(this.conn.retry, this.rejoinFailures, this.conn.random);
      this.rejoinFailures++;
      this.rejoinTimer = setTimeout(() => {
        this.rejoinTimer = null;
        if (!this.closing && !this.closed) this.open();
      }, wait);
      return;
    }
    this.failure = e;
    this.notify();
  }

  private onStreamClosed(): void {
    this.stream = null;
    const done = this.streamEnded;
    this.streamEnded = null;
    done?.();
  }

  private async doClose(): Promise<void> {
    this.unregisterSignals();
    if (this.autoCommitTimer !== null) clearInterval(this.autoCommitTimer);
    this.autoCommitTimer = null;
    // `run` stops taking records and lets its handlers finish (it commits per its policy).
    const stopRun = this.stopRun;
    this.stopRun = null;
    await stopRun?.();
    let error: unknown = null;
    if (this.autoCommit && this.stream !== null && this.failure === null) {
      try {
        await this.sendCommit(this.positions(this.running ? "processed" : "consumed"));
      } catch (e) {
        error = e;
      }
    }
    this.closing = true;
    this.clearJoinTimer();
    if (this.rejoinTimer !== null) clearTimeout(this.rejoinTimer);
    const stream = this.stream;
    if (stream !== null) {
      const ended = new Promise<void>((resolve) => {
        this.streamEnded = resolve;
      });
      stream.end();
      const timer = setTimeout(() => this.onStreamClosed(), Math.min(5000, this.conn.requestTimeoutMs));
      await ended;
      clearTimeout(timer);
      stream.cancel();
    }
    this.generation++;
    this.closed = true;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new ClientClosedError("group consumer"));
    }
    this.pending.clear();
    this.owned.clear();
    this.revoking.clear();
    this.notify();
    this.conn.close();
    if (error !== null) throw error;
  }
}
