/**
 * Consume over gRPC: the bidirectional stream's adapter onto `ConsumeSession`
 * (service/consume-session.ts), which holds what a session means (joining, heartbeats, credit,
 * revocation order, commits, leaving). This file only translates:
 *
 * - client messages → session events: `subscribe` → `subscribe`, `commit` → `commit`, `flow` →
 *   `flow`, `pause`/`resume` → `pause`, `seek` → `seek`; a message without a kind → `abort` (INVALID_REQUEST); 'end', 'cancelled', 'error'
 *   and 'close' of the call → `close` (the member leaves the group);
 * - session outputs → `ConsumeResponse` messages: `assignment`, `records` (stored batches, or
 *   decoded records with RECORD_FORMAT_RECORDS; a partition's CORRUPT_MESSAGE in its `error`)
 *   and `commit_result`; the end of the session →
 *   the call's end, or its status (the error's catalog code in the trailers);
 * - grpc-js back-pressure: a write that returns false makes the session wait for 'drain';
 * - client quotas (issue 13): records over the consumer quota make the session wait for the
 *   throttle time as for 'drain' (the message says how long in `throttle_time_ms`).
 */
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { type RillError, rillError } from "../base/errors.ts";
import type { Timers } from "../base/timers.ts";
import type { GroupRuntime } from "../coordinator/group-runtime.ts";
import { OffsetSpec, RecordFormat } from "../gen/rill/v1/common_pb.ts";
import {
  AutoOffsetReset,
  ConsumeResponseSchema,
  type ConsumeRequest,
  type ConsumeRequest_Subscribe,
} from "../gen/rill/v1/group_service_pb.ts";
import type { ReplicaManager } from "../replication/replica-manager.ts";
import type { FetchMemory } from "../service/fetch.ts";
import type { ReadBuffers } from "../service/fetch-types.ts";
import {
  type AssignmentChange,
  type CommitResultOutput,
  type ConsumeSink,
  type ConsumeRemote,
  ConsumeSession,
  type ConsumeSubscription,
  type DeliveredRecords,
} from "../service/consume-session.ts";
import { toErrorDetail, toServiceError } from "./errors.ts";
import { FetchedRecords } from "../service/fetched-records.ts";
import { type QuotaThrottle, RECORD_OVERHEAD_BYTES, type StreamPause } from "../service/quota-throttle.ts";
import type { Requester } from "../security/requester.ts";
import { requesterOf } from "./call-context.ts";
import type { ConsumeRecordsOutput, ConsumeResponseOutput } from "./wire-codec.ts";
import type { RequestAccess } from "../service/authorize.ts";

type Call = grpc.ServerDuplexStream<ConsumeRequest, ConsumeResponseOutput>;

/** A subscribe message as the session takes it (records are decoded unless it asks for batches). */
function toSubscription(
  sub: ConsumeRequest_Subscribe,
  clientHost: string,
  readable: ((topics: readonly string[]) => readonly string[]) | null,
): ConsumeSubscription {
  return {
    ...(sub.topicRegex !== "" ? { topicRegex: sub.topicRegex } : {}),
    ...(readable !== null ? { readable } : {}),
    decode: sub.format !== RecordFormat.BATCHES,
    isolationLevel: sub.isolationLevel,
    groupId: sub.groupId,
    topics: sub.topics,
    instanceId: sub.instanceId ?? null,
    // UNSPECIFIED means the documented default, LATEST (as Kafka's auto.offset.reset).
    autoOffsetReset:
      sub.autoOffsetReset === AutoOffsetReset.EARLIEST ? "earliest" : sub.autoOffsetReset === AutoOffsetReset.NONE ? "none" : "latest",
    maxOutstandingRecords: sub.maxOutstandingRecords,
    maxOutstandingBytes: Number(sub.maxOutstandingBytes),
    sessionTimeoutMs: sub.sessionTimeoutMs,
    assignor: sub.assignor,
    clientId: sub.clientId,
    clientHost,
  };
}

/** The session's outputs written to the call. */
class CallSink implements ConsumeSink {
  /** The first subscribe message's format (records are decoded unless it asks for batches). */
  format: RecordFormat | null = null;

  /** Client quotas (issue 13): over quota, records stop for the throttle time. */
  private readonly quota: { throttle: QuotaThrottle; pause: StreamPause; who: Requester } | null;
  /** Tells the session it may push again. */
  onRoom: () => void = () => {};

  constructor(
    private readonly call: Call,
    throttle?: QuotaThrottle,
  ) {
    this.quota = throttle ? { throttle, pause: throttle.streamPause(), who: requesterOf(call) } : null;
  }

  /** grpc-js emptied its buffer: the session may push again, unless a throttle still runs. */
  drained(): void {
    if (!this.quota?.pause.paused) this.onRoom();
  }

  /** Over the consumer quota: the session pushes nothing until `onRoom`. */
  throttled(): boolean {
    return this.quota?.pause.paused ?? false;
  }

  /** Records `r`'s bytes under the consumer quota; the throttle time (0: none). */
  private throttle(r: DeliveredRecords): number {
    if (!this.quota) return 0;
    const ms = this.quota.throttle.record(this.quota.who, "consume", () => {
      let bytes = 0;
      for (const c of r.chunks) bytes += c.length;
      if (this.format !== RecordFormat.BATCHES) bytes += r.records?.payloadBytes(RECORD_OVERHEAD_BYTES) ?? 0;
      return bytes;
    });
    // When the throttle ends the session pushes again; if the client is not reading, that write
    // blocks and the session's wait for 'drain' counts against its session timeout again.
    this.quota.pause.pause(
      ms,
      () => {},
      () => this.onRoom(),
    );
    return ms;
  }

  assignment(change: AssignmentChange): void {
    this.send({ case: "assignment", value: { ...change, assigned: [...change.assigned], revoked: [...change.revoked] } });
  }

  records(r: DeliveredRecords, onSent?: () => void): boolean {
    const base = {
      topic: r.topic,
      partition: r.partition,
      highWatermark: BigInt(r.highWatermark),
      nextOffset: BigInt(r.nextOffset),
      firstOffset: BigInt(r.firstOffset),
      seekId: r.seekId ?? 0n,
    };
    if (r.error) {
      onSent?.();
      return this.send({ case: "records", value: { ...base, error: toErrorDetail(r.error) } });
    }
    const throttleTimeMs = this.throttle(r);
    const value =
      this.format === RecordFormat.BATCHES
        ? {
            ...base,
            throttleTimeMs,
            recordBatches: r.chunks.length === 1 ? r.chunks[0]! : Buffer.concat(r.chunks),
            abortedTransactions: (r.abortedTransactions ?? []).map((a) => ({
              producerId: BigInt(a.producerId),
              firstOffset: BigInt(a.firstOffset),
            })),
          }
        : null;
    if (value === null) {
      // RECORDS: encoded by hand in the serializer (wire-codec.ts), no message per record.
      const out: ConsumeRecordsOutput = {
        topic: r.topic,
        partition: r.partition,
        highWatermark: r.highWatermark,
        nextOffset: r.nextOffset,
        firstOffset: r.firstOffset,
        seekId: r.seekId ?? 0n,
        throttleTimeMs,
        fetchedRecords: r.records ?? new FetchedRecords(),
      };
      return this.write(out, onSent) && throttleTimeMs === 0;
    }
    return this.send({ case: "records", value }, onSent) && throttleTimeMs === 0;
  }

  commitResult(r: CommitResultOutput): void {
    this.send({
      case: "commitResult",
      value: {
        commitId: r.commitId,
        offsets: r.offsets.map((o) => ({
          topic: o.topic,
          partition: o.partition,
          offset: BigInt(o.offset),
          ...(o.error ? { error: toErrorDetail(o.error) } : {}),
        })),
        ...(r.error ? { error: toErrorDetail(r.error) } : {}),
      },
    });
  }

  end(error: RillError | null): void {
    this.quota?.pause.cancel();
    // grpc-js sends a streaming call's status when the handler emits 'error' (destroy sends none).
    if (error) this.call.emit("error", toServiceError(error));
    else if (this.call.writable) this.call.end();
  }

  /** Writes one response; false when grpc-js wants 'drain' first. */
  /** `onSent`: called once the message is written (at once when the call is no longer writable). */
  private send(kind: NonNullable<MessageInitShape<typeof ConsumeResponseSchema>["kind"]>, onSent?: () => void): boolean {
    return this.write(create(ConsumeResponseSchema, { kind }), onSent);
  }

  private write(m: ConsumeResponseOutput, onSent?: () => void): boolean {
    if (!this.call.writable) {
      onSent?.();
      return true;
    }
    return this.call.write(m, onSent);
  }
}

/** The stream's group and topics, once subscribed (what its permissions are checked on). */
interface Subscribed {
  groupId: string;
  topics: readonly string[];
}

/** Hands one client message to the session. */
function onMessage(
  session: ConsumeSession,
  sink: CallSink,
  call: Call,
  msg: ConsumeRequest,
  check: (s: Subscribed) => void,
  readable: ((topics: readonly string[]) => readonly string[]) | null,
): void {
  switch (msg.kind.case) {
    case "subscribe":
      try {
        check(msg.kind.value);
      } catch (e) {
        session.abort(e);
        return;
      }
      sink.format ??= msg.kind.value.format;
      session.subscribe(toSubscription(msg.kind.value, call.getPeer(), readable));
      return;
    case "commit":
      session.commit(
        msg.kind.value.commitId,
        msg.kind.value.offsets.map((o) => ({
          topic: o.topic,
          partition: o.partition,
          offset: Number(o.offset),
          metadata: o.metadata,
          leaderEpoch: o.leaderEpoch,
        })),
      );
      return;
    case "flow":
      session.flow(msg.kind.value.records, Number(msg.kind.value.bytes));
      return;
    case "pause":
    case "resume":
      session.pause(msg.kind.value.partitions, msg.kind.case === "pause");
      return;
    case "seek": {
      const k = msg.kind.value;
      const to =
        k.offset !== undefined
          ? Number(k.offset)
          : k.spec === OffsetSpec.EARLIEST
            ? ("earliest" as const)
            : k.spec === OffsetSpec.TIMESTAMP
              ? { timestampMs: Number(k.timestampMs) }
              : ("latest" as const);
      session.seek({ topic: k.topic, partition: k.partition, to, seekId: k.seekId });
      return;
    }
    default:
      session.abort(rillError("INVALID_REQUEST", "kind: one of subscribe, commit, flow, pause, resume or seek is required"));
  }
}

/** Serves one Consume stream. */
export function serveConsume(
  rt: GroupRuntime,
  rm: ReplicaManager,
  timers: Timers,
  call: Call,
  access?: RequestAccess,
  quotas?: QuotaThrottle,
  memory?: FetchMemory,
  buffers?: ReadBuffers,
  remote?: (who: Requester) => ConsumeRemote,
): void {
  const sink = new CallSink(call, quotas);
  // Partitions with no replica here are read at their leaders, on behalf of this caller.
  const session = new ConsumeSession(rt, rm, timers, sink, memory, buffers, remote?.(requesterOf(call)));
  sink.onRoom = () => session.drained();
  if (session.ended) return;
  const who = requesterOf(call);
  let subscribed: Subscribed = { groupId: "", topics: [] };
  let unwatch = (): void => {};
  const check = (s: Subscribed): void => {
    if (!access) return;
    access.consume(who, s.groupId, s.topics);
    subscribed = { groupId: s.groupId, topics: [...s.topics] };
    unwatch();
    // A permission removed while the stream is open ends it with the denial.
    unwatch = access.access.watch(
      who,
      "GroupService/Consume",
      () => ({ GROUP: [subscribed.groupId], TOPIC: subscribed.topics }),
      (e) => session.abort(e),
    );
  };
  call.on("close", () => unwatch());
  // A regex subscription matches only the topics the member may READ (as Kafka's).
  const readable = access ? (topics: readonly string[]) => access.access.visible(who, "TOPIC", "READ", topics, (t) => t) : null;
  call.on("data", (m: ConsumeRequest) => onMessage(session, sink, call, m, check, readable));
  call.on("drain", () => sink.drained());
  call.on("end", () => session.close());
  call.on("cancelled", () => session.close());
  call.on("error", () => session.close());
  call.on("close", () => session.close());
}
