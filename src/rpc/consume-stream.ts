/**
 * Consume: one bidirectional stream is a whole group member, so a generated client in any
 * language consumes in a group with no assignor and no heartbeat loop of its own.
 *
 * - The first message, `subscribe`, joins the group. The broker then heartbeats for the member
 *   (at the interval the coordinator asks for) while the stream is open.
 * - Ownership changes come as `assignment` {assigned, revoked}. A revoked partition's records
 *   stop before its revocation is sent, and the next heartbeat gives it back, so the new owner
 *   never overlaps the old one.
 * - `records` flow for owned partitions from the committed offset (or `auto_offset_reset`), at
 *   most `max_outstanding_records` beyond what the member has committed, plus any `flow` credit.
 *   The broker also waits for grpc-js's 'drain' before writing more.
 * - `commit` is answered by `commit_result`; a partition the member no longer owns gets an error
 *   there, never a silent commit.
 * - Ending or cancelling the stream leaves the group (a static member leaves for its session
 *   timeout and keeps its partitions).
 */
import { create } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { RillError, rillError } from "../base/errors.ts";
import { type GroupRuntime, validateGroupId } from "../coordinator/group-runtime.ts";
import { resolveStartOffset } from "../coordinator/offsets.ts";
import type { TopicPartitions } from "../coordinator/index.ts";
import { RecordFormat } from "../gen/rill/v1/common_pb.ts";
import {
  AutoOffsetReset,
  ConsumeResponseSchema,
  type ConsumeRequest,
  type ConsumeRequest_Commit,
  type ConsumeRequest_Subscribe,
  type ConsumeResponse,
} from "../gen/rill/v1/group_service_pb.ts";
import type { Timers } from "../base/timers.ts";
import type { ReplicaManager } from "../replication/replica-manager.ts";
import { HEADER_SIZE, readBatchHeader } from "../protocol/record-batch.ts";
import { toErrorDetail, toServiceError } from "./errors.ts";
import { decodeFetched } from "./fetch-service.ts";
import { commitChecked, currentAssignment } from "./group-service.ts";

/** Defaults when the subscribe message leaves them 0. */
const OUTSTANDING_RECORDS_DEFAULT = 1000;
const MESSAGE_BYTES_DEFAULT = 1 << 20;
const TOPICS_MAX = 1000;
/**
 * How long a revoked partition with uncommitted records waits for the client's commit before
 * it is given up anyway (the commit is still accepted until then).
 */
const REVOKE_GRACE_MS = 5000;
/** Session timeout when the subscribe message gives none (KIP-848's default 45 s). */
const SESSION_TIMEOUT_MS_DEFAULT = 45_000;

interface Owned {
  readonly topic: string;
  readonly partition: number;
  /** Next offset to send. */
  position: number;
  /** What the member has committed (or where it started). */
  committed: number;
  /** Messages sent and not yet committed: [offset after the message, bytes], oldest first. */
  sent: Array<[number, number]>;
}

/** Bytes of messages sent for `o` that the member has not committed. */
function uncommittedBytes(o: Owned): number {
  let n = 0;
  for (const [, bytes] of o.sent) n += bytes;
  return n;
}

const keyOf = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

class ConsumeSession {
  private memberId = "";
  private epoch = 0;
  private heartbeatMs = 3000;
  private readonly owned = new Map<string, Owned>();
  /** Revoked partitions whose sent records are not all committed yet: still reported as owned. */
  private readonly revoking = new Map<string, { o: Owned; timer: unknown }>();
  private extraCredit = 0;
  private extraBytes = 0;
  /** When the pump started waiting for 'drain' (a client that does not read), or -1. */
  private blockedSinceMs = -1;
  private closed = false;
  private timer: unknown = null;
  private readonly wake = { aborted: false, onabort: null as (() => void) | null };
  private sub!: ConsumeRequest_Subscribe;
  private unwatch: (() => void) | null = null;
  private nudged = false;

  constructor(
    private readonly rt: GroupRuntime,
    private readonly rm: ReplicaManager,
    private readonly timers: Timers,
    private readonly call: grpc.ServerDuplexStream<ConsumeRequest, ConsumeResponse>,
  ) {}

  /** Handles the client's messages. */
  onMessage(msg: ConsumeRequest): void {
    try {
      switch (msg.kind.case) {
        case "subscribe":
          if (this.sub) throw rillError("INVALID_REQUEST", "subscribe: sent twice on one stream");
          this.start(msg.kind.value);
          return;
        case "commit":
          if (!this.sub) throw rillError("INVALID_REQUEST", "commit: the first message must be subscribe");
          this.commit(msg.kind.value);
          return;
        case "flow":
          if (!this.sub) throw rillError("INVALID_REQUEST", "flow: the first message must be subscribe");
          if (msg.kind.value.records < 0) throw rillError("INVALID_REQUEST", `flow.records: ${msg.kind.value.records} is negative`);
          if (msg.kind.value.bytes < 0n) throw rillError("INVALID_REQUEST", `flow.bytes: ${msg.kind.value.bytes} is negative`);
          this.extraCredit += msg.kind.value.records;
          this.extraBytes += Number(msg.kind.value.bytes);
          this.kick();
          return;
        default:
          throw rillError("INVALID_REQUEST", "kind: one of subscribe, commit or flow is required");
      }
    } catch (e) {
      this.fail(e);
    }
  }

  private start(sub: ConsumeRequest_Subscribe): void {
    validateGroupId(sub.groupId, "subscribe.group_id");
    if (sub.topics.length === 0) throw rillError("INVALID_REQUEST", "subscribe.topics: at least one topic is required");
    if (sub.topics.length > TOPICS_MAX) throw rillError("INVALID_REQUEST", `subscribe.topics: more than ${TOPICS_MAX}`);
    sub.topics.forEach((t, i) => this.rm.topic(t, `subscribe.topics[${i}]`));
    if (sub.maxOutstandingRecords < 0)
      throw rillError("INVALID_REQUEST", `subscribe.max_outstanding_records: ${sub.maxOutstandingRecords} is negative`);
    if (sub.maxOutstandingBytes < 0n)
      throw rillError("INVALID_REQUEST", `subscribe.max_outstanding_bytes: ${sub.maxOutstandingBytes} is negative`);
    this.sub = sub;
    this.unwatch = this.rt.watch(sub.groupId, () => this.nudge());
    this.heartbeat();
    void this.pump().catch((e: unknown) => this.fail(e));
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
    if (this.closed) return;
    this.timer = null;
    this.nudged = false;
    const stalledMs = this.blockedSinceMs < 0 ? 0 : this.rm.nowMs() - this.blockedSinceMs;
    const sessionMs = this.sub.sessionTimeoutMs || SESSION_TIMEOUT_MS_DEFAULT;
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
      const sub = this.sub;
      const res = this.rt.run(sub.groupId, (shard, now) =>
        shard.heartbeat(
          {
            groupId: sub.groupId,
            memberId: this.memberId,
            memberEpoch: this.epoch,
            ...(sub.instanceId !== undefined ? { instanceId: sub.instanceId } : {}),
            subscribedTopics: sub.topics,
            ownedPartitions: this.ownedList(),
            ...(sub.assignor === "uniform" || sub.assignor === "range" ? { assignor: sub.assignor } : {}),
            ...(sub.sessionTimeoutMs > 0 ? { sessionTimeoutMs: sub.sessionTimeoutMs } : {}),
            clientId: sub.clientId,
            clientHost: this.call.getPeer(),
          },
          now,
        ),
      );
      const joined = this.memberId === "";
      this.memberId = res.memberId;
      this.epoch = res.memberEpoch;
      this.heartbeatMs = res.heartbeatIntervalMs;
      const assignment = res.assignment ?? (joined ? currentAssignment(this.rt, sub.groupId, res.memberId) : null);
      if (assignment) this.apply(assignment, joined);
    } catch (e) {
      const err = RillError.from(e);
      if (err.kind.name === "FENCED_MEMBER_EPOCH" || err.kind.name === "UNKNOWN_MEMBER_ID") {
        // Fenced (e.g. a session timeout while the client stalled): give everything up, rejoin.
        this.apply([], false);
        this.memberId = "";
        this.epoch = 0;
      } else if (!err.retriable || err.kind.name === "NOT_COORDINATOR" || err.kind.name === "COORDINATOR_NOT_AVAILABLE") {
        // Not the coordinator (or none yet): the client must find it and join there.
        this.fail(err);
        return;
      }
    }
    this.timer = this.timers.setTimeout(() => this.heartbeat(), this.heartbeatMs);
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

  /** Moves to the new assignment: revoked partitions stop first, then the client is told. */
  private apply(assignment: readonly TopicPartitions[], announce: boolean): void {
    const next = new Set(assignment.flatMap((t) => t.partitions.map((p) => keyOf(t.topic, p))));
    const revoked: Array<{ topic: string; partition: number }> = [];
    let released = false;
    for (const [k, o] of this.owned) {
      if (!next.has(k)) {
        this.owned.delete(k);
        revoked.push({ topic: o.topic, partition: o.partition });
        if (o.position > o.committed) {
          // Records were sent and not committed: let the client commit them before giving up.
          this.revoking.set(k, { o, timer: this.timers.setTimeout(() => this.release(k), REVOKE_GRACE_MS) });
        } else released = true;
      }
    }
    const assigned: Array<{ topic: string; partition: number }> = [];
    for (const t of assignment) {
      for (const p of t.partitions) {
        const k = keyOf(t.topic, p);
        const back = this.revoking.get(k);
        if (back) {
          this.timers.clearTimeout(back.timer);
          this.revoking.delete(k);
          this.owned.set(k, back.o);
          continue;
        }
        if (this.owned.has(k)) continue;
        const start = this.startOffset(t.topic, p);
        this.owned.set(keyOf(t.topic, p), { topic: t.topic, partition: p, position: start, committed: start, sent: [] });
        assigned.push({ topic: t.topic, partition: p });
      }
    }
    if (assigned.length > 0 || revoked.length > 0 || announce) {
      this.send(
        create(ConsumeResponseSchema, {
          kind: { case: "assignment", value: { memberId: this.memberId, memberEpoch: this.epoch, assigned, revoked } },
        }),
      );
    }
    // A revocation is acknowledged by the next heartbeat: send it soon, not a whole interval later.
    if (released) this.nudge();
    this.kick();
  }

  /** Gives up a revoked partition (its records are committed, or the grace ran out). */
  private release(k: string): void {
    const r = this.revoking.get(k);
    if (!r) return;
    this.timers.clearTimeout(r.timer);
    this.revoking.delete(k);
    this.nudge();
  }

  private startOffset(topic: string, partition: number): number {
    const committed = this.rt.shardFor(this.sub.groupId).fetchOffsets(this.sub.groupId, [{ topic, partitions: [partition] }])[0];
    const range = {
      logStartOffset: this.rm.earliestOffset(topic, partition).offset,
      logEndOffset: this.rm.latestOffset(topic, partition).offset,
    };
    // UNSPECIFIED means the documented default, LATEST (as Kafka's auto.offset.reset).
    const policy =
      this.sub.autoOffsetReset === AutoOffsetReset.EARLIEST
        ? "earliest"
        : this.sub.autoOffsetReset === AutoOffsetReset.NONE
          ? "none"
          : "latest";
    return resolveStartOffset(committed && committed.offset >= 0 ? committed.offset : null, policy, range, `${topic}-${partition}`);
  }

  private commit(c: ConsumeRequest_Commit): void {
    const answer = (offsets: ConsumeResponse["kind"] & { case: "commitResult" }): void => {
      this.send(create(ConsumeResponseSchema, { kind: offsets }));
    };
    try {
      c.offsets.forEach((o, i) => {
        if (o.offset < 0n) throw rillError("INVALID_REQUEST", `commit.offsets[${i}].offset: ${o.offset} is negative`);
      });
      const res = commitChecked(
        this.rt,
        this.rm,
        this.sub.groupId,
        this.memberId,
        this.epoch,
        c.offsets.map((o) => ({
          topic: o.topic,
          partition: o.partition,
          offset: Number(o.offset),
          metadata: o.metadata,
          leaderEpoch: o.leaderEpoch,
        })),
      );
      for (const o of res.offsets) {
        const k = keyOf(o.topic, o.partition);
        const owned = this.owned.get(k);
        if (!o.error && owned && o.offset > owned.committed) {
          owned.committed = o.offset;
          while (owned.sent.length > 0 && owned.sent[0]![0] <= o.offset) owned.sent.shift();
        }
        const r = this.revoking.get(k);
        if (!o.error && r && o.offset >= r.o.position) this.release(k);
      }
      const ok = {
        case: "commitResult",
        value: create(ConsumeResponseSchema.field.commitResult.message!, {
          commitId: c.commitId,
          offsets: res.offsets.map((o) => ({
            topic: o.topic,
            partition: o.partition,
            offset: BigInt(o.offset),
            ...(o.error ? { error: toErrorDetail(o.error) } : {}),
          })),
          ...(res.error ? { error: toErrorDetail(res.error) } : {}),
        }),
      } as never;
      // Answered once the commit is on every in-sync replica of the group's partition.
      this.rt.replicated(this.sub.groupId).then(
        () => answer(ok),
        (e: unknown) =>
          answer({
            case: "commitResult",
            value: create(ConsumeResponseSchema.field.commitResult.message!, { commitId: c.commitId, error: toErrorDetail(e) }),
          } as never),
      );
    } catch (e) {
      answer({
        case: "commitResult",
        value: create(ConsumeResponseSchema.field.commitResult.message!, { commitId: c.commitId, error: toErrorDetail(e) }),
      } as never);
    }
    this.kick();
  }

  /** Records not yet committed, summed over owned partitions. */
  private outstanding(): number {
    let n = 0;
    for (const o of this.owned.values()) n += Math.max(0, o.position - o.committed);
    return n;
  }

  private window(): number {
    return (this.sub.maxOutstandingRecords || OUTSTANDING_RECORDS_DEFAULT) + this.extraCredit;
  }

  /** Bytes the member may still be sent: max_outstanding_bytes (0: no limit) + flow credit. */
  private byteCredit(): number {
    const max = Number(this.sub.maxOutstandingBytes);
    if (max === 0) return Number.MAX_SAFE_INTEGER;
    let used = 0;
    for (const o of this.owned.values()) used += uncommittedBytes(o);
    return max + this.extraBytes - used;
  }

  /** Sends records of owned partitions while credit lasts; waits for data or credit otherwise. */
  private async pump(): Promise<void> {
    const asBatches = this.sub.format === RecordFormat.BATCHES;
    while (!this.closed && !this.rm.closed) {
      let sent = false;
      for (const o of [...this.owned.values()]) {
        if (this.closed || this.outstanding() >= this.window() || this.byteCredit() <= 0) break;
        if (this.owned.get(keyOf(o.topic, o.partition)) !== o) continue; // revoked meanwhile
        const d = this.rm.readPartition({
          topic: o.topic,
          partition: o.partition,
          offset: o.position,
          maxBytes: Math.max(1, Math.min(this.byteCredit(), MESSAGE_BYTES_DEFAULT)),
        });
        if (d.error) {
          if (RillError.from(d.error).kind.name === "OFFSET_OUT_OF_RANGE")
            o.position = o.committed = this.startOffset(o.topic, o.partition);
          continue;
        }
        if (!d.read || d.read.bytes === 0) continue;
        const cut = withinCredit(d.read.chunks, o.position, this.window() - this.outstanding());
        const base = {
          topic: o.topic,
          partition: o.partition,
          highWatermark: BigInt(d.highWatermark),
          nextOffset: BigInt(cut.nextOffset),
          firstOffset: BigInt(o.position),
        };
        o.sent.push([cut.nextOffset, cut.chunks.reduce((n, c) => n + c.length, 0)]);
        const value = asBatches
          ? { ...base, recordBatches: cut.chunks.length === 1 ? cut.chunks[0]! : Buffer.concat(cut.chunks) }
          : { ...base, records: decodeFetched(o.topic, o.partition, cut.chunks, o.position) };
        o.position = cut.nextOffset;
        sent = true;
        if (!this.send(create(ConsumeResponseSchema, { kind: { case: "records", value } }))) {
          this.blockedSinceMs = this.rm.nowMs();
          await new Promise<void>((resolve) => {
            this.call.once("drain", resolve);
            this.wake.onabort = resolve;
          });
          this.blockedSinceMs = -1;
        }
      }
      if (!sent) await this.rm.waitForData(this.heartbeatMs, this.wake);
    }
  }

  /** Wakes the pump (credit, assignment or commit changed). */
  private kick(): void {
    const w = this.wake.onabort;
    this.wake.onabort = null;
    w?.();
  }

  private send(msg: ConsumeResponse): boolean {
    if (this.closed || !this.call.writable) return true;
    return this.call.write(msg);
  }

  private fail(e: unknown): void {
    if (this.closed) return;
    this.stop();
    // grpc-js sends a streaming call's status when the handler emits 'error' (destroy sends none).
    this.call.emit("error", toServiceError(e));
  }

  /** The client ended the stream, or it broke: leave the group. */
  end(): void {
    if (this.closed) return;
    this.stop();
    if (this.call.writable) this.call.end();
  }

  private stop(): void {
    this.closed = true;
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    for (const r of this.revoking.values()) this.timers.clearTimeout(r.timer);
    this.revoking.clear();
    this.unwatch?.();
    this.kick();
    if (!this.sub || this.memberId === "") return;
    const leaveEpoch = this.sub.instanceId !== undefined ? -2 : -1;
    try {
      this.rt.run(this.sub.groupId, (shard, now) =>
        shard.heartbeat(
          {
            groupId: this.sub.groupId,
            memberId: this.memberId,
            memberEpoch: leaveEpoch,
            ...(this.sub.instanceId !== undefined ? { instanceId: this.sub.instanceId } : {}),
          },
          now,
        ),
      );
    } catch {
      // Leaving is best effort: the session timeout removes the member otherwise.
    }
  }
}

/**
 * The leading whole batches of `chunks` whose offsets from `from` fit in `credit` records (at
 * least one batch, so a consumer always progresses; a batch is never split).
 */
function withinCredit(chunks: readonly Buffer[], from: number, credit: number): { chunks: Buffer[]; nextOffset: number } {
  const out: Buffer[] = [];
  let next = from;
  for (const chunk of chunks) {
    let pos = 0;
    while (pos + HEADER_SIZE <= chunk.length) {
      const h = readBatchHeader(chunk, pos);
      if (out.length + pos > 0 && h.lastOffset + 1 - from > credit) break;
      next = h.lastOffset + 1;
      pos += h.size;
    }
    if (pos > 0) out.push(pos === chunk.length ? chunk : chunk.subarray(0, pos));
    if (pos < chunk.length) break;
  }
  return { chunks: out, nextOffset: next };
}

/** Serves one Consume stream. */
export function serveConsume(
  rt: GroupRuntime,
  rm: ReplicaManager,
  timers: Timers,
  call: grpc.ServerDuplexStream<ConsumeRequest, ConsumeResponse>,
): void {
  if (rm.closed) {
    call.emit(
      "error",
      toServiceError(
        rillError("SHUTTING_DOWN", "consume: the broker is shutting down; join again (through another broker, or once it is back)"),
      ),
    );
    return;
  }
  const session = new ConsumeSession(rt, rm, timers, call);
  const stopListening = rm.onClose(() => session.end());
  call.on("data", (m: ConsumeRequest) => session.onMessage(m));
  call.on("end", () => session.end());
  call.on("cancelled", () => session.end());
  call.on("error", () => session.end());
  call.on("close", () => {
    stopListening();
    session.end();
  });
}
