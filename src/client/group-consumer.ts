/**
 * Consumer groups in the SDK, over `GroupService` only:
 *
 * - `GroupConsumer` joins a group through the one bidirectional `Consume` stream: the broker
 *   assigns partitions (no client-side assignor), heartbeats for the member (no heartbeat loop
 *   here), streams the records of the assigned partitions, and answers commits sent on the same
 *   stream. Ending the stream leaves the group.
 * - `GroupAdmin` lists, describes, deletes groups and reads, resets or commits their offsets
 *   (the unary GroupService calls the CLI's `rill group ...` uses).
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
 * auto-commit its processed position is committed at once (best effort: the broker refuses it
 * if it no longer counts the partition as ours — today's broker acknowledges a revocation as it
 * sends it, so processed but uncommitted records of a revoked partition are delivered again to
 * the next owner). `onRevoked` and `onAssigned` run in the iterator, in stream order with the
 * records, before the next record is yielded; commits from `onRevoked` are refused for the
 * revoked partitions.
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
 */

import { create } from "@bufbuild/protobuf";
import type { DescMessage, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { GrpcTransport, checkAddress, duplexStream } from "./grpc-transport.ts";
import { Errors, RillError } from "../base/errors.ts";
import type { Random } from "../base/random.ts";
import { IsolationLevel, OffsetSpec, RecordFormat, type ConsumedRecord, type ErrorDetail } from "../gen/rill/v1/common_pb.ts";
import {
  AutoOffsetReset,
  ConsumeRequestSchema,
  type ConsumeResponse,
  type ConsumeResponse_Assignment,
  type ConsumeResponse_CommitResult,
  type ConsumeResponse_Records,
  GroupService,
  GroupState,
  type OffsetCommitResult,
} from "../gen/rill/v1/group_service_pb.ts";
import { asBuffer, clientConstructor } from "../rpc/grpc-service.ts";
import { clientChannelOptions } from "../rpc/server-options.ts";
import type { ConsumerRecord } from "./batch-reader.ts";
import { type ClientOptions, connect } from "./connection.ts";
import { checkChoice, checkInt, toInt64, toNumber } from "./convert.ts";
import { ClientClosedError, ConnectionError, fromErrorDetail, fromGrpcError, isRetriable, isStaleMetadata } from "./errors.ts";
import { MetadataCache } from "./metadata.ts";
import { type RetryPolicy, backoffMs, defaultRandom, retryPolicy, withRetries } from "./retry.ts";

export type { ConsumerRecord } from "./batch-reader.ts";

// ---------------------------------------------------------------------------------------------
// Transport: GroupService over grpc-js (its own channel; the SDK's Transport has no group calls)
// ---------------------------------------------------------------------------------------------

type GroupMethods = (typeof GroupService)["method"];
type UnaryGroupMethod = Exclude<keyof GroupMethods, "consume">;

/** A unary GroupService call, as a promise. */
export type GroupUnaryCall<K extends UnaryGroupMethod> = (
  request: MessageInitShape<GroupMethods[K]["input"]>,
  options?: { readonly timeoutMs?: number | undefined },
) => Promise<MessageShape<GroupMethods[K]["output"]>>;

/** The request messages of a Consume stream, as init shapes. */
export type ConsumeRequestInit = MessageInitShape<typeof ConsumeRequestSchema>;

/** Receives what a Consume stream sends. After `onError` or `onEnd` nothing more arrives. */
export interface ConsumeListener {
  onResponse(response: ConsumeResponse): void;
  /** The stream failed: a RillError (status with a catalog code) or a ConnectionError. */
  onError(error: Error): void;
  /** The broker ended the stream with OK. */
  onEnd(): void;
}

/** The client's half of an open Consume stream. */
export interface ConsumeStream {
  write(request: ConsumeRequestInit): void;
  /** Half-closes: the broker removes the member and ends its side. */
  end(): void;
  /** Abandons the stream; the listener hears nothing more. */
  cancel(): void;
}

/** The GroupService calls the group clients make (a seam: unit tests use an in-memory twin). */
export interface GroupTransport {
  readonly address: string;
  openConsume(listener: ConsumeListener): ConsumeStream;
  readonly heartbeat: GroupUnaryCall<"heartbeat">;
  readonly commitOffsets: GroupUnaryCall<"commitOffsets">;
  readonly fetchOffsets: GroupUnaryCall<"fetchOffsets">;
  readonly listGroups: GroupUnaryCall<"listGroups">;
  readonly describeGroups: GroupUnaryCall<"describeGroups">;
  readonly deleteGroups: GroupUnaryCall<"deleteGroups">;
  readonly resetOffsets: GroupUnaryCall<"resetOffsets">;
  close(): void;
}

const GroupClient = clientConstructor(GroupService);

/**
 * GroupService over one grpc-js channel to `address`, connecting lazily: its own channel, or
 * `options.channel` shared with the broker's GrpcTransport (then `close()` leaves the channel to
 * its owner).
 */
export class GrpcGroupTransport implements GroupTransport {
  readonly address: string;
  private readonly client: InstanceType<typeof GroupClient>;
  private readonly ownsChannel: boolean;

  constructor(address: string, options: { readonly channel?: grpc.Channel } = {}) {
    this.address = checkAddress(address);
    this.ownsChannel = options.channel === undefined;
    this.client =
      options.channel !== undefined
        ? new GroupClient(address, grpc.credentials.createInsecure(), { channelOverride: options.channel })
        : new GroupClient(address, grpc.credentials.createInsecure(), {
            ...clientChannelOptions(),
            // Rejoin quickly after a broker restart (grpc-js waits 1 s, growing to 120 s, by default).
            "grpc.initial_reconnect_backoff_ms": 100,
            "grpc.max_reconnect_backoff_ms": 1000,
          });
  }

  readonly heartbeat: GroupUnaryCall<"heartbeat"> = (r, o) => this.unary("heartbeat", r, o);
  readonly commitOffsets: GroupUnaryCall<"commitOffsets"> = (r, o) => this.unary("commitOffsets", r, o);
  readonly fetchOffsets: GroupUnaryCall<"fetchOffsets"> = (r, o) => this.unary("fetchOffsets", r, o);
  readonly listGroups: GroupUnaryCall<"listGroups"> = (r, o) => this.unary("listGroups", r, o);
  readonly describeGroups: GroupUnaryCall<"describeGroups"> = (r, o) => this.unary("describeGroups", r, o);
  readonly deleteGroups: GroupUnaryCall<"deleteGroups"> = (r, o) => this.unary("deleteGroups", r, o);
  readonly resetOffsets: GroupUnaryCall<"resetOffsets"> = (r, o) => this.unary("resetOffsets", r, o);

  openConsume(listener: ConsumeListener): ConsumeStream {
    return duplexStream(this.client.consume(), listener, this.address, (request: ConsumeRequestInit) =>
      create(ConsumeRequestSchema, request),
    );
  }

  close(): void {
    if (this.ownsChannel) this.client.close();
  }

  private unary<K extends UnaryGroupMethod>(
    method: K,
    request: MessageInitShape<GroupMethods[K]["input"]>,
    options: { readonly timeoutMs?: number | undefined } = {},
  ): Promise<MessageShape<GroupMethods[K]["output"]>> {
    const schema = GroupService.method[method].input as DescMessage;
    const callOptions: grpc.CallOptions = {};
    if (options.timeoutMs !== undefined) callOptions.deadline = Date.now() + options.timeoutMs;
    const fn = this.client[method] as unknown as (
      req: unknown,
      md: grpc.Metadata,
      o: grpc.CallOptions,
      cb: (e: grpc.ServiceError | null, r?: MessageShape<GroupMethods[K]["output"]>) => void,
    ) => grpc.ClientUnaryCall;
    return new Promise((resolve, reject) => {
      fn.call(this.client, create(schema, request as never), new grpc.Metadata(), callOptions, (e, r) => {
        if (e) reject(fromGrpcError(e, this.address));
        else resolve(r!);
      });
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Shared
// ---------------------------------------------------------------------------------------------

/** One partition of one topic. */
export interface GroupTopicPartition {
  readonly topic: string;
  readonly partition: number;
}

/** An offset to commit: the next offset to read, as in Kafka. */
export interface GroupOffset extends GroupTopicPartition {
  readonly offset: number;
}

/** Options of the group clients (besides ClientOptions). */
interface GroupClientOptions extends ClientOptions {
  /** A GroupService transport to use instead of opening one (not closed by the client). */
  readonly groupTransport?: GroupTransport | undefined;
}

/**
 * How the group clients reach the brokers: with a `groupTransport` given, every call goes to it;
 * otherwise each call goes to the group's coordinator, found through a MetadataCache (the leader
 * of the group's `__consumer_offsets` partition), over a GroupService client that shares the
 * broker's channel with the metadata calls (one connection per broker).
 */
interface GroupConnection {
  readonly retry: RetryPolicy;
  readonly random: Random;
  readonly requestTimeoutMs: number;
  /** Where coordinators are looked up; null with a fixed `groupTransport`. */
  readonly metadata: MetadataCache | null;
  /** The GroupService transport of a broker (the fixed one, whatever the address, when given). */
  transportFor(address: string): GroupTransport;
  /** Any broker's address: the bootstrap broker that last answered. */
  anyAddress(): string;
  /** Closes what the connection opened. */
  close(): void;
}

function connectGroup(options: GroupClientOptions): GroupConnection {
  const fixed = options.groupTransport;
  if (fixed !== undefined) {
    const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    if (!Number.isInteger(requestTimeoutMs) || requestTimeoutMs <= 0) {
      throw new RangeError(`requestTimeoutMs: ${requestTimeoutMs} is not a positive integer`);
    }
    const base = { retry: retryPolicy(options.retry), random: options.random ?? defaultRandom(), requestTimeoutMs };
    return { ...base, metadata: null, transportFor: () => fixed, anyAddress: () => fixed.address, close: () => undefined };
  }
  const conn = connect(options);
  const groups = new Map<string, GroupTransport>();
  return {
    retry: conn.retry,
    random: conn.random,
    requestTimeoutMs: conn.requestTimeoutMs,
    metadata: new MetadataCache(conn),
    transportFor(address) {
      let g = groups.get(address);
      if (g === undefined) {
        const t = conn.pool.get(address);
        g = t instanceof GrpcTransport ? new GrpcGroupTransport(address, { channel: t.channel }) : new GrpcGroupTransport(t.address);
        groups.set(address, g);
      }
      return g;
    },
    anyAddress: () => conn.transport.address,
    close() {
      this.metadata?.close();
      for (const g of groups.values()) g.close();
      groups.clear();
      if (conn.owned) conn.transport.close();
    },
  };
}

/**
 * The address of `groupId`'s coordinator as the metadata knows it after any refresh under way;
 * any broker's when it is not known (that broker answers NOT_COORDINATOR or
 * COORDINATOR_NOT_AVAILABLE, which refreshes the metadata).
 */
async function coordinatorOf(conn: GroupConnection, groupId: string): Promise<string> {
  if (conn.metadata === null) return conn.anyAddress();
  await conn.metadata.settled();
  try {
    return (await conn.metadata.coordinatorAddress(groupId)) ?? conn.anyAddress();
  } catch {
    return conn.anyAddress(); // no __consumer_offsets yet, or no broker answered: ask any broker
  }
}

function keyOf(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

function tpName(topic: string, partition: number): string {
  return `${topic}-${partition}`;
}

/** A group's ErrorDetail as a RillError, prefixed with `group "G"` unless the message names the group. */
function groupError(detail: ErrorDetail, groupId: string): RillError {
  const e = fromErrorDetail(detail);
  return e.message.includes(groupId) ? e : new RillError(e.kind, `group "${groupId}": ${e.message}`);
}

/** Group ids: 1 to 249 characters (checked before anything is sent). */
function checkGroupId(groupId: unknown, field: string): string {
  if (typeof groupId !== "string" || groupId.length === 0 || groupId.length > 249) {
    const what =
      typeof groupId !== "string"
        ? "is not a string"
        : groupId.length === 0
          ? "is empty"
          : `has ${groupId.length} characters (at most 249)`;
    throw new RillError(Errors.INVALID_GROUP_ID, `${field}: group id ${what}`);
  }
  return groupId;
}

const AUTO_OFFSET_RESET = {
  earliest: AutoOffsetReset.EARLIEST,
  latest: AutoOffsetReset.LATEST,
  none: AutoOffsetReset.NONE,
} as const;

// ---------------------------------------------------------------------------------------------
// GroupConsumer
// ---------------------------------------------------------------------------------------------

/** GroupConsumer settings. */
export interface GroupConsumerOptions extends GroupClientOptions {
  /** The group to join: 1 to 249 characters. */
  readonly groupId: string;
  /** Where a partition without a committed offset starts. Default "latest" (as Kafka). */
  readonly autoOffsetReset?: "earliest" | "latest" | "none" | undefined;
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
   * Called (in the iterator, awaited) when partitions are taken away, or lost because the
   * stream broke. They are no longer owned: commits for them are refused.
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
}

interface PartitionState {
  readonly topic: string;
  readonly partition: number;
  /** One past the last record yielded; -1 before the first. */
  consumed: number;
  /** One past the last record the application is done with; -1 before the first. */
  processed: number;
  /** The last offset the broker confirmed committed by this member; -1 when none. */
  committed: number;
  /** The highest offset sent in a commit not answered yet; -1 when none. */
  committing: number;
  /** `next_offset` of the last records message: where delivery continues. */
  delivered: number;
  /** The first offset yielded (where the broker started this partition); -1 before. */
  base: number;
  highWatermark: number;
}

type Item =
  | { readonly kind: "records"; readonly st: PartitionState; readonly records: Iterator<ConsumerRecord> }
  | { readonly kind: "assigned" | "revoked"; readonly partitions: GroupTopicPartition[] };

interface PendingCommit {
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

function* decodedRecords(m: ConsumeResponse_Records): Generator<ConsumerRecord, void, undefined> {
  for (const r of m.records as ConsumedRecord[]) {
    yield {
      topic: m.topic,
      partition: m.partition,
      offset: toNumber(r.offset, "offset"),
      timestampMs: toNumber(r.timestampMs, "timestamp_ms"),
      key: bufOrNull(r.key),
      value: bufOrNull(r.value),
      headers: r.headers.length === 0 ? NO_HEADERS : r.headers.map((h) => ({ key: h.key, value: bufOrNull(h.value) })),
    };
  }
}

/** A member of a consumer group, fed by one Consume stream; see the module comment. */
export class GroupConsumer implements AsyncIterable<ConsumerRecord> {
  readonly groupId: string;
  private readonly conn: GroupConnection;
  private readonly autoOffsetReset: "earliest" | "latest" | "none";
  private readonly autoCommit: boolean;
  private readonly autoCommitIntervalMs: number;
  private readonly maxOutstandingRecords: number;
  private readonly maxOutstandingBytes: number;
  private readonly sessionTimeoutMs: number;
  private readonly options: GroupConsumerOptions;

  private topics: string[] | null = null;
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
  constructor(options: GroupConsumerOptions) {
    this.groupId = checkGroupId(options.groupId, "groupId");
    this.autoOffsetReset = checkChoice(options.autoOffsetReset ?? "latest", "autoOffsetReset", ["earliest", "latest", "none"]);
    this.autoCommit = options.autoCommit ?? true;
    this.autoCommitIntervalMs = checkInt(options.autoCommitIntervalMs ?? 5000, "autoCommitIntervalMs", 1, 0x7fffffff);
    this.maxOutstandingRecords = checkInt(options.maxOutstandingRecords ?? 0, "maxOutstandingRecords", 0, 0x7fffffff);
    this.maxOutstandingBytes = checkInt(options.maxOutstandingBytes ?? 0, "maxOutstandingBytes", 0, Number.MAX_SAFE_INTEGER);
    this.sessionTimeoutMs = checkInt(options.sessionTimeoutMs ?? 0, "sessionTimeoutMs", 0, 0x7fffffff);
    if (options.assignor !== undefined) checkChoice(options.assignor, "assignor", ["uniform", "range"]);
    this.options = options;
    this.conn = connectGroup(options);
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

  /** Joins the group subscribed to `topics` (opens the Consume stream). Once per consumer. */
  subscribe(topics: readonly string[]): void {
    this.checkOpen();
    if (this.topics !== null)
      throw new RillError(Errors.INVALID_ARGUMENT, "subscribe: already subscribed (one subscription per GroupConsumer)");
    if (!Array.isArray(topics) || topics.length === 0)
      throw new RillError(Errors.INVALID_ARGUMENT, "subscribe: topics must be a non-empty list");
    topics.forEach((t, i) => {
      if (typeof t !== "string" || t.length === 0)
        throw new RillError(Errors.INVALID_ARGUMENT, `subscribe: topics[${i}] is not a topic name`);
    });
    this.topics = [...new Set(topics)];
    this.open();
    if (this.autoCommit) {
      this.autoCommitTimer = setInterval(() => this.autoCommitNow(), this.autoCommitIntervalMs);
      this.autoCommitTimer.unref?.();
    }
  }

  /** Records of the owned partitions, in offset order per partition, until `close()`. */
  [Symbol.asyncIterator](): AsyncGenerator<ConsumerRecord, void, undefined> {
    return this.records();
  }

  /** The same as `for await (const r of consumer)`; one iteration at a time. */
  async *records(): AsyncGenerator<ConsumerRecord, void, undefined> {
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
        if (item.kind !== "records") {
          if (item.kind === "assigned") await this.options.onAssigned?.(item.partitions);
          else await this.options.onRevoked?.(item.partitions);
          continue;
        }
        const { st, records } = item;
        for (;;) {
          release();
          if (this.closed || this.owned.get(keyOf(st.topic, st.partition)) !== st) break; // revoked meanwhile
          const n = records.next();
          if (n.done) break;
          const r = n.value;
          if (r.offset < st.consumed) continue; // delivered again (never expected)
          if (st.base < 0) st.base = r.offset;
          st.consumed = r.offset + 1;
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
    const list = offsets !== undefined ? this.checkOffsets(offsets) : this.positions("consumed");
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
    const out: GroupOffset[] = [];
    for (const st of this.owned.values()) {
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
        `Consume: no answer to subscribe (group "${this.groupId}", topics ${this.topics!.join(", ")}) from ${transport.address} within ${this.conn.requestTimeoutMs} ms`,
      );
      this.onStreamFailed(e, true);
    }, this.conn.requestTimeoutMs);
    this.joinTimer.unref?.();
    const sub = {
      groupId: this.groupId,
      topics: this.topics!,
      autoOffsetReset: AUTO_OFFSET_RESET[this.autoOffsetReset],
      maxOutstandingRecords: this.maxOutstandingRecords,
      maxOutstandingBytes: BigInt(this.maxOutstandingBytes),
      format: RecordFormat.RECORDS,
      isolationLevel: IsolationLevel.READ_UNCOMMITTED,
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
      });
      assigned.push({ topic: tp.topic, partition: tp.partition });
    }
    if (assigned.length > 0) this.push({ kind: "assigned", partitions: assigned });
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
    const next = toNumber(m.nextOffset, "next_offset");
    if (next > st.delivered) st.delivered = next;
    this.push({ kind: "records", st, records: decodedRecords(m) });
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
      const st = this.owned.get(keyOf(o.topic, o.partition));
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
    if (r.error !== undefined) p.reject(groupError(r.error, this.groupId));
    else if (firstError !== null) p.reject(firstError);
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
      this.pending.set(commitId, { offsets, resolve, reject, timer });
      for (const o of offsets) {
        const st = this.owned.get(keyOf(o.topic, o.partition));
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

  private push(item: Item): void {
    this.queue.push(item);
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** The next queued item; null once closed. Throws the stream's failure. */
  private async nextItem(): Promise<Item | null> {
    for (;;) {
      if (this.closed) return null;
      if (this.queueHead < this.queue.length) {
        const item = this.queue[this.queueHead++]!;
        if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
          this.queue.splice(0, this.queueHead);
          this.queueHead = 0;
        }
        return item;
      }
      if (this.failure !== null) throw this.failure;
      // Drained: with auto-commit, give the broker its credit back before waiting.
      if (this.autoCommit) this.autoCommitNow();
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
    if (this.autoCommitTimer !== null) clearInterval(this.autoCommitTimer);
    this.autoCommitTimer = null;
    let error: unknown = null;
    if (this.autoCommit && this.stream !== null && this.failure === null) {
      try {
        await this.sendCommit(this.positions("consumed"));
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
    this.notify();
    this.conn.close();
    if (error !== null) throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// GroupAdmin
// ---------------------------------------------------------------------------------------------

/** A group's lifecycle state. */
export type GroupStateName = "empty" | "assigning" | "reconciling" | "stable" | "dead" | "unknown";

const STATE_NAMES: Record<number, GroupStateName> = {
  [GroupState.UNSPECIFIED]: "unknown",
  [GroupState.EMPTY]: "empty",
  [GroupState.ASSIGNING]: "assigning",
  [GroupState.RECONCILING]: "reconciling",
  [GroupState.STABLE]: "stable",
  [GroupState.DEAD]: "dead",
};

function stateName(s: GroupState): GroupStateName {
  return STATE_NAMES[s] ?? "unknown";
}

/** A group as ListGroups lists it. */
export interface GroupListing {
  readonly groupId: string;
  readonly state: GroupStateName;
  readonly members: number;
}

/** Partitions of one topic. */
export interface GroupTopicPartitions {
  readonly topic: string;
  readonly partitions: readonly number[];
}

/** A member as DescribeGroups shows it. */
export interface GroupMemberDescription {
  readonly memberId: string;
  readonly instanceId: string | null;
  readonly clientId: string;
  readonly clientHost: string;
  readonly memberEpoch: number;
  readonly topics: readonly string[];
  readonly assignment: readonly GroupTopicPartitions[];
  readonly targetAssignment: readonly GroupTopicPartitions[];
}

/** A partition's committed offset and lag. */
export interface GroupPartitionLag {
  readonly topic: string;
  readonly partition: number;
  /** -1 when the group has none. */
  readonly committedOffset: number;
  readonly logEndOffset: number;
  /** -1 when there is no committed offset. */
  readonly lag: number;
  /** Owner's member id; "" when unassigned. */
  readonly memberId: string;
}

/** A described group. */
export interface GroupDescription {
  readonly groupId: string;
  readonly state: GroupStateName;
  readonly groupEpoch: number;
  readonly assignmentEpoch: number;
  readonly assignor: string;
  readonly coordinatorId: number;
  readonly members: readonly GroupMemberDescription[];
  readonly offsets: readonly GroupPartitionLag[];
}

/** A committed offset as FetchOffsets reads it. */
export interface GroupCommittedOffset extends GroupTopicPartition {
  /** -1 when the group has none. */
  readonly offset: number;
  readonly metadata: string;
}

/** Where ResetOffsets moves a group's offsets. */
export type ResetTarget = "earliest" | "latest" | { readonly offset: number } | { readonly timestampMs: number };

function checkTopicPartitions(list: readonly GroupTopicPartitions[] | undefined, field: string): { topic: string; partitions: number[] }[] {
  return (list ?? []).map((tp, i) => {
    if (typeof tp.topic !== "string" || tp.topic.length === 0)
      throw new RillError(Errors.INVALID_ARGUMENT, `${field}[${i}].topic: not a topic name`);
    return {
      topic: tp.topic,
      partitions: (tp.partitions ?? []).map((p, j) => checkInt(p, `${field}[${i}].partitions[${j}]`, 0, 0x7fffffff)),
    };
  });
}

function fromTopicPartitions(list: readonly { topic: string; partitions: number[] }[]): GroupTopicPartitions[] {
  return list.map((tp) => ({ topic: tp.topic, partitions: [...tp.partitions] }));
}

/**
 * Group administration over GroupService's unary calls. A call about one group goes to its
 * coordinator; a call over several groups goes to each group's coordinator and rejects with the
 * first group's error; ListGroups asks every broker that is not fenced (each lists the groups it
 * coordinates) and merges the answers. NOT_COORDINATOR and the like refresh the metadata and the
 * call is retried per the client's policy.
 */
export class GroupAdmin {
  private readonly conn: GroupConnection;
  private closed = false;

  constructor(options: GroupClientOptions = {}) {
    this.conn = connectGroup(options);
  }

  /** Groups (of the given states, or all), sorted by id. */
  async listGroups(states?: readonly GroupStateName[]): Promise<GroupListing[]> {
    const wanted = (states ?? []).map((s) => {
      const entry = Object.entries(STATE_NAMES).find(([, n]) => n === s);
      if (entry === undefined || s === "unknown") throw new RillError(Errors.INVALID_ARGUMENT, `states: "${s}" is not a group state`);
      return Number(entry[0]) as GroupState;
    });
    if (this.closed) throw new ClientClosedError("group admin");
    const addresses = (await this.conn.metadata?.brokerAddresses()) ?? [this.conn.anyAddress()];
    const answers = await Promise.all(addresses.map((a) => this.callAt(a, (t, o) => t.listGroups({ states: wanted }, o))));
    const byId = new Map<string, GroupListing>();
    for (const r of answers)
      for (const g of r.groups)
        if (!byId.has(g.groupId)) byId.set(g.groupId, { groupId: g.groupId, state: stateName(g.state), members: g.members });
    return [...byId.values()].sort((a, b) => (a.groupId < b.groupId ? -1 : a.groupId > b.groupId ? 1 : 0));
  }

  /** Members, assignments, committed offsets and lag of each group, in request order. */
  async describeGroups(groupIds: readonly string[]): Promise<GroupDescription[]> {
    groupIds.forEach((g, i) => checkGroupId(g, `groupIds[${i}]`));
    const groups = await this.perGroup(groupIds, async (t, ids, o) => (await t.describeGroups({ groupIds: ids }, o)).groups);
    return groups.map((g) => {
      if (g.error !== undefined) throw groupError(g.error, g.groupId);
      return {
        groupId: g.groupId,
        state: stateName(g.state),
        groupEpoch: g.groupEpoch,
        assignmentEpoch: g.assignmentEpoch,
        assignor: g.assignor,
        coordinatorId: g.coordinatorId,
        members: g.members.map((m) => ({
          memberId: m.memberId,
          instanceId: m.instanceId ?? null,
          clientId: m.clientId,
          clientHost: m.clientHost,
          memberEpoch: m.memberEpoch,
          topics: [...m.topics],
          assignment: fromTopicPartitions(m.assignment),
          targetAssignment: fromTopicPartitions(m.targetAssignment),
        })),
        offsets: g.offsets.map((o) => ({
          topic: o.topic,
          partition: o.partition,
          committedOffset: toNumber(o.committedOffset, "committed_offset"),
          logEndOffset: toNumber(o.logEndOffset, "log_end_offset"),
          lag: toNumber(o.lag, "lag"),
          memberId: o.memberId,
        })),
      };
    });
  }

  /** A group's committed offsets (of `partitions`; an entry without partitions means the whole topic; absent: all). */
  async fetchOffsets(groupId: string, partitions?: readonly GroupTopicPartitions[]): Promise<GroupCommittedOffset[]> {
    checkGroupId(groupId, "groupId");
    const req = { groupId, partitions: checkTopicPartitions(partitions, "partitions") };
    const r = await this.call(groupId, (t, o) => t.fetchOffsets(req, o));
    return r.offsets.map((c) => {
      if (c.error !== undefined) throw fromErrorDetail(c.error, `partition ${tpName(c.topic, c.partition)}`);
      return { topic: c.topic, partition: c.partition, offset: toNumber(c.offset, "offset"), metadata: c.metadata };
    });
  }

  /**
   * Moves a group's committed offsets (only while it has no members) for `partitions` (an
   * entry without partitions: the whole topic). With `dryRun`, returns the offsets without
   * committing them.
   */
  async resetOffsets(
    groupId: string,
    partitions: readonly GroupTopicPartitions[],
    target: ResetTarget,
    options: { dryRun?: boolean } = {},
  ): Promise<GroupOffset[]> {
    checkGroupId(groupId, "groupId");
    const parts = checkTopicPartitions(partitions, "partitions");
    if (parts.length === 0) throw new RillError(Errors.INVALID_ARGUMENT, "partitions: name at least one topic");
    let spec: MessageInitShape<GroupMethods["resetOffsets"]["input"]>;
    if (target === "earliest") spec = { spec: OffsetSpec.EARLIEST };
    else if (target === "latest") spec = { spec: OffsetSpec.LATEST };
    else if (typeof target === "object" && target !== null && "offset" in target)
      spec = { offset: toInt64(checkInt(target.offset, "target.offset", 0, Number.MAX_SAFE_INTEGER), "target.offset") };
    else if (typeof target === "object" && target !== null && "timestampMs" in target) {
      spec = {
        spec: OffsetSpec.TIMESTAMP,
        timestampMs: toInt64(checkInt(target.timestampMs, "target.timestampMs", 0, Number.MAX_SAFE_INTEGER), "target.timestampMs"),
      };
    } else throw new RillError(Errors.INVALID_ARGUMENT, `target: must be "earliest", "latest", {offset} or {timestampMs}`);
    const req = { ...spec, groupId, partitions: parts, dryRun: options.dryRun ?? false };
    const r = await this.call(groupId, (t, o) => t.resetOffsets(req, o));
    return r.offsets.map((x) => {
      if (x.error !== undefined) throw fromErrorDetail(x.error, `partition ${tpName(x.topic, x.partition)}`);
      return { topic: x.topic, partition: x.partition, offset: toNumber(x.offset, "offset") };
    });
  }

  /** Commits offsets without membership (only accepted while the group has no members). */
  async commitOffsets(groupId: string, offsets: readonly GroupOffset[]): Promise<void> {
    checkGroupId(groupId, "groupId");
    const list = offsets.map((o, i) => ({
      topic: o.topic,
      partition: checkInt(o.partition, `offsets[${i}].partition`, 0, 0x7fffffff),
      offset: toInt64(checkInt(o.offset, `offsets[${i}].offset`, 0, Number.MAX_SAFE_INTEGER), `offsets[${i}].offset`),
      leaderEpoch: -1,
    }));
    const r = await this.call(groupId, (t, o) => t.commitOffsets({ groupId, memberId: "", memberEpoch: -1, offsets: list }, o));
    for (const x of r.offsets) if (x.error !== undefined) throw fromErrorDetail(x.error, `partition ${tpName(x.topic, x.partition)}`);
  }

  /** Deletes groups (only groups without members) and their committed offsets. */
  async deleteGroups(groupIds: readonly string[]): Promise<void> {
    groupIds.forEach((g, i) => checkGroupId(g, `groupIds[${i}]`));
    const results = await this.perGroup(groupIds, async (t, ids, o) => (await t.deleteGroups({ groupIds: ids }, o)).results);
    for (const x of results) if (x.error !== undefined) throw groupError(x.error, x.groupId);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.conn.close();
  }

  /** A call about `groupId`, at its coordinator (looked up again before each retry). */
  private call<T>(groupId: string, f: (t: GroupTransport, o: { timeoutMs: number }) => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new ClientClosedError("group admin"));
    const attempt = async (): Promise<T> =>
      f(this.conn.transportFor(await coordinatorOf(this.conn, groupId)), { timeoutMs: this.conn.requestTimeoutMs });
    return withRetries(attempt, this.conn.retry, { random: this.conn.random, onRetry: (e) => this.onRetry(e) });
  }

  /** A call to the broker at `address`. */
  private callAt<T>(address: string, f: (t: GroupTransport, o: { timeoutMs: number }) => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new ClientClosedError("group admin"));
    return withRetries(() => f(this.conn.transportFor(address), { timeoutMs: this.conn.requestTimeoutMs }), this.conn.retry, {
      random: this.conn.random,
    });
  }

  /**
   * A call over several groups: each coordinator is asked about its groups; results come back
   * in `groupIds` order. A group answered with a routing error (NOT_COORDINATOR, ...) is asked
   * again at its coordinator after a refresh, per the retry policy; when retries run out its
   * error stays in its result.
   */
  private async perGroup<R extends { readonly groupId: string; readonly error?: ErrorDetail | undefined }>(
    groupIds: readonly string[],
    f: (t: GroupTransport, ids: string[], o: { timeoutMs: number }) => Promise<readonly R[]>,
  ): Promise<R[]> {
    if (this.closed) throw new ClientClosedError("group admin");
    const results = new Map<string, R>();
    const misrouted = (g: string): boolean => {
      const e = results.get(g)?.error;
      return e === undefined ? !results.has(g) : isStaleMetadata(fromErrorDetail(e));
    };
    const attempt = async (): Promise<void> => {
      const byAddress = new Map<string, string[]>();
      for (const g of new Set(groupIds.filter(misrouted))) {
        const address = await coordinatorOf(this.conn, g);
        byAddress.set(address, [...(byAddress.get(address) ?? []), g]);
      }
      await Promise.all(
        [...byAddress].map(async ([address, ids]) => {
          for (const r of await f(this.conn.transportFor(address), ids, { timeoutMs: this.conn.requestTimeoutMs }))
            results.set(r.groupId, r);
        }),
      );
      const left = groupIds.find((g) => results.has(g) && misrouted(g));
      if (left !== undefined) throw groupError(results.get(left)!.error!, left);
    };
    try {
      await withRetries(attempt, this.conn.retry, { random: this.conn.random, onRetry: (e) => this.onRetry(e) });
    } catch (e) {
      if (!groupIds.every((g) => results.has(g))) throw e; // the call failed as a whole
    }
    return groupIds.map((g) => results.get(g)!);
  }

  private onRetry(e: unknown): void {
    if (isStaleMetadata(e)) void this.conn.metadata?.requestRefresh();
  }
}
