/**
 * ProduceService: Produce (unary) and ProduceStream (bidi, pipelined, answers in request order).
 *
 * Two payload forms, exactly one per request:
 * - `record_batch`: Kafka RecordBatch v2 bytes, sliced out of the received message without a
 *   copy (wire-codec.ts) and appended as they are; the log validates them and rewrites only
 *   baseOffset and partitionLeaderEpoch. Goes to `partition`, or (absent) to the topic's sticky
 *   partition: a keyed batch must name its partition, the broker never decodes it.
 * - `records`: plain records for thin clients. The broker routes each one (explicit `partition`;
 *   else Kafka's murmur2 of the key; else one sticky partition per request), builds one batch
 *   per partition with the topic's `compression.type`, and answers each record's partition and
 *   offset in input order.
 */
import { create } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { rillError } from "../base/errors.ts";
import { partitionForKey } from "../base/murmur2.ts";
import {
  Acks,
  ProduceRequestSchema,
  InitProducerIdResponseSchema,
  type InitProducerIdRequest,
  ProduceResponseSchema,
  ProduceResponse_PartitionResultSchema,
  ProduceService,
  ProduceStreamResponseSchema,
  type ProduceRequest,
  type ProduceResponse,
  type ProduceStreamRequest,
  type ProduceStreamResponse,
} from "../gen/rill/v1/produce_service_pb.ts";
import type { Record as ProtoRecord } from "../gen/rill/v1/common_pb.ts";
import type { AckLevel, ReplicaManager } from "../replication/replica-manager.ts";
import { Compression, encodeBatch } from "../protocol/record-batch.ts";
import type { TopicConfig } from "../config/schema.ts";
import { toErrorDetail, toServiceError, unary } from "./errors.ts";
import type { ServiceImplementation } from "./grpc-service.ts";
import { Forwarder, LeaderClients, isForwarded, localRoute, type ControllerRoute } from "./forward.ts";
import type { produceServiceCodecs } from "./wire-codec.ts";

/** Largest `timeout_ms` accepted (as Kafka's request.timeout.ms bounds). */
const TIMEOUT_MS_MAX = 300_000;
/** Records one `records` request may carry. */
const RECORDS_MAX = 1_000_000;

/** Maps the proto enum to the replica manager's levels; rejects unknown values. */
function ackLevel(acks: number): AckLevel {
  switch (acks) {
    case Acks.UNSPECIFIED:
    case Acks.ALL:
      return "all";
    case Acks.LEADER:
      return "leader";
    case Acks.NONE:
      return "none";
    default:
      throw rillError("INVALID_REQUIRED_ACKS", `acks: ${acks} is not one of ACKS_NONE, ACKS_LEADER, ACKS_ALL`);
  }
}

/** Codec of batches built from `records`. */
function codecFor(cfg: TopicConfig): number {
  switch (cfg.compressionType) {
    case "lz4":
      return Compression.LZ4;
    case "gzip":
      return Compression.GZIP;
    default:
      return Compression.NONE;
  }
}

/** How long acks=ALL waits for the ISR when the request gives no timeout_ms (Kafka's 30 s). */
const ACKS_ALL_TIMEOUT_MS_DEFAULT = 30_000;

/** Produce logic shared by the unary and streaming calls. */
export class Producer {
  /** Per-topic sticky partition for requests that name none and carry no key. */
  private readonly sticky = new Map<string, number>();
  /** Each record's partition as routing chose it, for the local path of the same request. */
  private routedTargets: number[] | null = null;
  /** Last offset appended per partition by the request being executed (for acks=ALL waits). */
  private lastOffsets = new Map<number, number>();

  /**
   * @param forward sends a request to the leader of its partition (another broker), or null on
   *   a single node: a thin client needs one address, so requests for partitions led elsewhere
   *   are passed on whole (explicit partition or record_batch) or split by partition.
   */
  constructor(
    private readonly rm: ReplicaManager,
    private readonly forward: ((leader: number, req: ProduceRequest) => Promise<ProduceResponse>) | null = null,
  ) {}

  /** The leader of a partition when it is another broker (then the request is forwarded). */
  private remoteLeader(topic: string, partition: number): number | null {
    const p = this.rm.image.topics.get(topic)?.partitions[partition];
    if (!p || p.leader < 0 || p.leader === this.rm.nodeIdOf()) return null;
    return p.leader;
  }

  /**
   * Routes a request whose partitions are (partly) led by other brokers. Returns null when every
   * partition it writes is led here.
   */
  private routed(req: ProduceRequest): (() => Promise<ProduceResponse>) | null {
    this.routedTargets = null;
    if (!this.forward) return null;
    const topic = this.rm.topic(req.topic, "topic");
    const n = topic.partitions.length;
    if (req.recordBatch.length > 0 || req.partition !== undefined) {
      if (req.partition !== undefined && (req.partition < 0 || req.partition >= n)) return null; // the local path reports it
      const partition = req.partition ?? this.nextSticky(req.topic, n);
      const leader = this.remoteLeader(req.topic, partition);
      if (leader === null) {
        if (req.partition === undefined) req.partition = partition;
        return null;
      }
      const fwd = this.forward;
      return () => fwd(leader, { ...req, partition });
    }
    // The records path: split by partition; local ones here, the others to their leaders.
    const sticky = this.nextSticky(req.topic, n);
    const targets = req.records.map((r) => (r.key !== undefined ? partitionForKey(r.key, n) : sticky));
    if (targets.every((p) => this.remoteLeader(req.topic, p) === null)) {
      this.routedTargets = targets; // the local path uses the same partitions, not computed twice
      return null;
    }
    return () => this.split(req, targets);
  }

  /** Sends each partition's records of a request to its leader (or appends them here). */
  private async split(req: ProduceRequest, targets: number[]): Promise<ProduceResponse> {
    const groups = new Map<number, number[]>();
    targets.forEach((p, i) => {
      let g = groups.get(p);
      if (!g) groups.set(p, (g = []));
      g.push(i);
    });
    const parts = await Promise.all(
      [...groups].map(async ([partition, idx]) => {
        const sub: ProduceRequest = { ...req, partition, records: idx.map((i) => req.records[i]!), recordBatch: new Uint8Array(0) };
        const leader = this.remoteLeader(req.topic, partition);
        try {
          const res = leader === null ? await this.produce(sub, true) : await this.forward!(leader, sub);
          return { partition, idx, res, error: null };
        } catch (e) {
          return { partition, idx, res: null, error: e };
        }
      }),
    );
    const offsets = new Array<bigint>(req.records.length).fill(-1n);
    const results: ProduceResponse["partitions"] = [];
    for (const p of parts) {
      if (p.res) {
        results.push(...p.res.partitions);
        p.idx.forEach((i, k) => (offsets[i] = p.res!.records[k]?.offset ?? -1n));
      } else {
        results.push(
          create(ProduceResponse_PartitionResultSchema, {
            partition: p.partition,
            baseOffset: -1n,
            logAppendTimeMs: -1n,
            error: toErrorDetail(p.error),
          }),
        );
      }
    }
    results.sort((a, b) => a.partition - b.partition);
    return create(ProduceResponseSchema, {
      topic: req.topic,
      partitions: results,
      records: targets.map((partition, i) => ({ partition, offset: offsets[i]! })),
    });
  }

  /**
   * Validates and executes one request; resolves once its acks are satisfied (and, for topics
   * that fsync every append, once it is durable). Rejects with a RillError for whole-call errors.
   */
  async produce(req: ProduceRequest, forwarded = false): Promise<ProduceResponse> {
    if (!forwarded) {
      // Synchronous up to the append, so requests are appended in arrival order.
      const remote = this.routed(req);
      if (remote) return remote();
    }
    this.lastOffsets = new Map();
    let res: ProduceResponse;
    try {
      res = this.execute(req);
    } finally {
      this.routedTargets = null;
    }
    const lastOffsets = this.lastOffsets;
    if (req.acks === Acks.NONE) return unacknowledged(res);
    const ok = res.partitions.filter((p) => !p.error);
    const waits = ok.map((p) => this.rm.durable(req.topic, p.partition));
    if (waits.length > 0) await Promise.all(waits);
    if (req.acks === Acks.ALL) {
      // acks=ALL: answer once the ISR has the batch (the high watermark passed it).
      const timeoutMs = req.timeoutMs > 0 ? req.timeoutMs : ACKS_ALL_TIMEOUT_MS_DEFAULT;
      await Promise.all(
        ok.map((p) =>
          this.rm.replicated(req.topic, p.partition, lastOffsets.get(p.partition)!, timeoutMs).catch((e: unknown) => {
            p.error = toErrorDetail(e);
            p.baseOffset = -1n;
            for (const r of res.records) if (r.partition === p.partition) r.offset = -1n;
          }),
        ),
      );
    }
    return res;
  }

  /** Validates and appends; synchronous, so requests are appended in arrival order. */
  private execute(req: ProduceRequest): ProduceResponse {
    const acks = ackLevel(req.acks);
    if (req.timeoutMs < 0 || req.timeoutMs > TIMEOUT_MS_MAX)
      throw rillError("INVALID_REQUEST", `timeout_ms: ${req.timeoutMs} is not in [0, ${TIMEOUT_MS_MAX}]`);
    const hasBatch = req.recordBatch.length > 0;
    const hasRecords = req.records.length > 0;
    if (hasBatch === hasRecords) {
      throw rillError(
        "INVALID_REQUEST",
        hasBatch ? "records, record_batch: send one of them, not both" : "records, record_batch: one of them is required (both are empty)",
      );
    }
    const topic = this.rm.topic(req.topic, "topic");
    if (req.partition !== undefined && (req.partition < 0 || req.partition >= topic.partitions.length)) {
      throw rillError(
        "UNKNOWN_TOPIC_OR_PARTITION",
        `partition: ${req.partition} is out of range for topic "${req.topic}" (partitions 0..${topic.partitions.length - 1})`,
      );
    }
    if (hasBatch) {
      const partition = req.partition ?? this.nextSticky(req.topic, topic.partitions.length);
      const res = this.rm.append(req.topic, partition, req.recordBatch as Buffer, acks);
      this.lastOffsets.set(partition, res.lastOffset);
      return create(ProduceResponseSchema, {
        topic: req.topic,
        partitions: [{ partition, baseOffset: BigInt(res.baseOffset), logAppendTimeMs: BigInt(res.logAppendTimeMs), logStartOffset: 0n }],
      });
    }
    return this.produceRecords(req, topic.partitions.length, acks);
  }

  private produceRecords(req: ProduceRequest, partitions: number, acks: AckLevel): ProduceResponse {
    if (req.records.length > RECORDS_MAX)
      throw rillError("RECORD_LIST_TOO_LARGE", `records: ${req.records.length} records is more than ${RECORDS_MAX}`);
    const cfg = this.rm.topicConfig(req.topic);
    const now = this.rm.nowMs();
    const idempotent = req.producerId !== undefined && req.producerId >= 0n;
    if (idempotent && req.partition === undefined) {
      throw rillError("INVALID_REQUEST", "partition: required with producer_id (sequence numbers count per partition)");
    }
    if (idempotent && (req.baseSequence < 0 || req.producerEpoch < 0)) {
      throw rillError(
        "INVALID_REQUEST",
        `base_sequence, producer_epoch: must not be negative with producer_id (got ${req.baseSequence}, ${req.producerEpoch})`,
      );
    }
    const producer = idempotent
      ? { producerId: Number(req.producerId), producerEpoch: req.producerEpoch, baseSequence: req.baseSequence }
      : {};
    const routed = this.routedTargets;
    const sticky = req.partition ?? (routed ? -1 : this.nextSticky(req.topic, partitions));
    const byPartition = new Map<number, number[]>();
    const target = req.records.map((r, i) => {
      const p = routed ? routed[i]! : (req.partition ?? (r.key !== undefined ? partitionForKey(r.key, partitions) : sticky));
      let list = byPartition.get(p);
      if (!list) byPartition.set(p, (list = []));
      list.push(i);
      validateRecord(r, i);
      return p;
    });
    const offsets = new Array<bigint>(req.records.length);
    const results: ProduceResponse["partitions"] = [];
    for (const [partition, indexes] of byPartition) {
      const batch = encodeBatch(
        indexes.map((i) => toRecordInput(req.records[i]!)),
        { compression: codecFor(cfg), nowMs: now, ...producer },
      );
      try {
        const res = this.rm.append(req.topic, partition, batch, acks);
        this.lastOffsets.set(partition, res.lastOffset);
        indexes.forEach((i, k) => (offsets[i] = BigInt(res.baseOffset + k)));
        results.push(
          create(ProduceResponse_PartitionResultSchema, {
            partition,
            baseOffset: BigInt(res.baseOffset),
            logAppendTimeMs: BigInt(res.logAppendTimeMs),
          }),
        );
      } catch (e) {
        indexes.forEach((i) => (offsets[i] = -1n));
        results.push(
          create(ProduceResponse_PartitionResultSchema, { partition, baseOffset: -1n, logAppendTimeMs: -1n, error: toErrorDetail(e) }),
        );
      }
    }
    results.sort((a, b) => a.partition - b.partition);
    return create(ProduceResponseSchema, {
      topic: req.topic,
      partitions: results,
      records: target.map((partition, i) => ({ partition, offset: offsets[i]! })),
    });
  }

  /** The next partition for records without key or partition: one this broker leads, if any. */
  private nextSticky(topic: string, partitions: number): number {
    const prev = this.sticky.get(topic) ?? -1;
    const led = this.rm.image.topics.get(topic)?.partitions;
    for (let k = 1; k <= partitions; k++) {
      const p = (prev + k) % partitions;
      if (!this.forward || led?.[p]?.leader === this.rm.nodeIdOf()) {
        this.sticky.set(topic, p);
        return p;
      }
    }
    const next = (prev + 1) % partitions;
    this.sticky.set(topic, next);
    return next;
  }
}

/** ACKS_NONE answers carry no offsets (-1), as the proto documents: the producer asked for none. */
function unacknowledged(res: ProduceResponse): ProduceResponse {
  for (const p of res.partitions) p.baseOffset = -1n;
  for (const r of res.records) r.offset = -1n;
  return res;
}

function validateRecord(r: ProtoRecord, i: number): void {
  if (r.timestampMs !== undefined && r.timestampMs < 0n)
    throw rillError("INVALID_TIMESTAMP", `records[${i}].timestamp_ms: ${r.timestampMs} is negative`);
  for (let h = 0; h < r.headers.length; h++) {
    if (r.headers[h]!.key.length === 0) throw rillError("INVALID_RECORD", `records[${i}].headers[${h}].key: header key is empty`);
  }
}

function toRecordInput(r: ProtoRecord): Parameters<typeof encodeBatch>[0][number] {
  return {
    key: r.key ?? null,
    value: r.value ?? null,
    headers: r.headers.map((h) => ({ key: h.key, value: h.value ?? null })),
    ...(r.timestampMs !== undefined ? { timestampMs: Number(r.timestampMs) } : {}),
  };
}

/** The ProduceService implementation. */
export function produceService(
  rm: ReplicaManager,
  route: ControllerRoute = localRoute(() => rm.image.offset),
): ServiceImplementation<typeof ProduceService, typeof produceServiceCodecs> {
  const fwd = new Forwarder(ProduceService, route);
  const leaders = new LeaderClients(ProduceService, rm);
  const producer = new Producer(rm, (leader, req) =>
    leaders.call<ProduceResponse>(leader, "produce", create(ProduceRequestSchema, { ...req, recordBatch: req.recordBatch }), req.timeoutMs),
  );
  return {
    produce: unary((req: ProduceRequest, call) => producer.produce(req, isForwarded(call))),
    produceStream: (call) => serveProduceStream(producer, rm, call, isForwarded(call)),
    initProducerId: unary(async (req: InitProducerIdRequest, call) => {
      if (req.producerEpoch < 0 || req.producerEpoch > 0x7fff)
        throw rillError("INVALID_REQUEST", `producer_epoch: ${req.producerEpoch} is not in [0, 32767]`);
      const c = call as grpc.ServerUnaryCall<unknown, unknown>;
      if (fwd.shouldForward(c)) return fwd.forward("initProducerId", req, c);
      const r = await rm.initProducerId({
        transactionalId: req.transactionalId,
        producerId: req.producerId === undefined ? undefined : Number(req.producerId),
        producerEpoch: req.producerEpoch,
      });
      return create(InitProducerIdResponseSchema, { producerId: BigInt(r.producerId), producerEpoch: r.producerEpoch });
    }),
  };
}

/**
 * Each request is executed as it arrives (so they are pipelined) and answered in arrival order;
 * an error in one request is answered in its own response and the stream goes on.
 */
function serveProduceStream(
  producer: Producer,
  rm: ReplicaManager,
  call: grpc.ServerDuplexStream<ProduceStreamRequest, ProduceStreamResponse>,
  forwarded: boolean,
): void {
  let chain: Promise<void> = Promise.resolve();
  let ended = false;
  const end = (): void => {
    if (ended) return;
    ended = true;
    void chain.then(() => call.end());
  };
  // On shutdown: answer what was received, then end the stream (clients reconnect elsewhere).
  const stopListening = rm.onClose(end);
  call.on("close", stopListening);
  call.on("data", (msg: ProduceStreamRequest) => {
    if (ended) return;
    const requestId = msg.requestId;
    const answer: Promise<ProduceStreamResponse> = (
      msg.request
        ? producer.produce(msg.request, forwarded)
        : Promise.reject(rillError("INVALID_REQUEST", "request: missing in ProduceStreamRequest"))
    ).then(
      (value) => create(ProduceStreamResponseSchema, { requestId, result: { case: "response", value } }),
      (e: unknown) => create(ProduceStreamResponseSchema, { requestId, result: { case: "error", value: toErrorDetail(e) } }),
    );
    chain = chain.then(async () => {
      const a = await answer;
      if (!call.writable) return;
      if (!call.write(a)) return new Promise<void>((resolve) => call.once("drain", resolve));
    });
  });
  call.on("end", end);
  call.on("error", () => {});
  call.on("cancelled", () => {});
}

export { toServiceError };
