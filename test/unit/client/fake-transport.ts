/**
 * An in-memory Transport that answers like a single broker, for SDK unit tests: topics with
 * partitions, logs of stored batches (baseOffset rewritten in place, as the broker does),
 * ProduceStream with in-order responses, long-polling Fetch in BATCHES format, ListOffsets.
 *
 * Fault injection: `produceHook` decides per produce request (append, per-partition error,
 * whole-request error, hold the response, break the stream, append and then break the stream so
 * the answer is lost, append and answer an error anyway (as a timed-out acks=all write), answer a
 * wrong request id); `fetchHook` can replace a fetch answer;
 * `initProducerIdHook` can fail InitProducerId. Everything received is recorded for assertions.
 *
 * Idempotence: InitProducerId issues ids and bumps epochs like the broker (controller.ts
 * decideInitProducerId), and appends go through the broker's own per-partition producer state
 * (src/storage/producer-state.ts): a retry of a written batch answers its original offsets, a
 * gap answers OUT_OF_ORDER_SEQUENCE_NUMBER, a stale epoch INVALID_PRODUCER_EPOCH.
 */

import { create } from "@bufbuild/protobuf";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { type ErrorKind, Errors, RillError } from "../../../src/base/errors.ts";
import {
  CreateTopicsResponseSchema,
  DeleteTopicsResponseSchema,
  DescribeTopicsResponseSchema,
  type DescribeTopicsRequestSchema,
  ListTopicsResponseSchema,
} from "../../../src/gen/rill/v1/admin_service_pb.ts";
import { ErrorDetailSchema, OffsetSpec } from "../../../src/gen/rill/v1/common_pb.ts";
import type { ErrorDetail } from "../../../src/gen/rill/v1/common_pb.ts";
import {
  type FetchRequestSchema,
  FetchResponseSchema,
  type ListOffsetsRequestSchema,
  ListOffsetsResponseSchema,
} from "../../../src/gen/rill/v1/fetch_service_pb.ts";
import {
  InitProducerIdResponseSchema,
  ProduceResponseSchema,
  ProduceStreamResponseSchema,
} from "../../../src/gen/rill/v1/produce_service_pb.ts";
import type { ProduceStreamResponse } from "../../../src/gen/rill/v1/produce_service_pb.ts";
import type { ProduceRequestInput, ProduceStreamRequestInput } from "../../../src/client/wire-codec.ts";
import { ConnectionError } from "../../../src/client/errors.ts";
import type { CallOptions, ProduceStream, ProduceStreamListener, Transport } from "../../../src/client/transport.ts";
import { ProducerStateManager, producerBatchOf } from "../../../src/storage/producer-state.ts";
import { readBatchHeader, setBaseOffset, validateBatch } from "../../../src/protocol/record-batch.ts";

/** An ErrorDetail for catalog entry `kind`. */
export function detail(kind: ErrorKind, message = kind.doc): ErrorDetail {
  return create(ErrorDetailSchema, { code: kind.code, name: kind.name, message, retriable: kind.retriable });
}

/** What the fake does with one produce request. */
export type ProduceDecision =
  | { kind: "append" }
  | { kind: "partition-error"; error: ErrorKind }
  | { kind: "request-error"; error: ErrorKind }
  | { kind: "hold" }
  | { kind: "break-stream" }
  | { kind: "append-and-break" }
  | { kind: "append-then-error"; error: ErrorKind }
  | { kind: "wrong-id" };

/** A produce request as the fake received it. */
export interface ReceivedProduce {
  readonly requestId: number;
  readonly stream: number;
  readonly request: ProduceRequestInput;
  /** A copy of the batch bytes as received (before the offset rewrite). */
  readonly batch: Buffer;
}

interface StoredBatch {
  readonly bytes: Buffer;
  readonly baseOffset: number;
  readonly lastOffset: number;
  readonly maxTimestamp: number;
}

interface FakePartition {
  batches: StoredBatch[];
  logStartOffset: number;
  next: number;
  producers: ProducerStateManager;
}

/** An InitProducerId request as the fake received it. */
export interface ReceivedInit {
  readonly transactionalId: string;
  readonly producerId: bigint | undefined;
  readonly producerEpoch: number;
}

interface Slot {
  readonly id: number;
  response: ProduceStreamResponse | null;
}

/** The in-memory broker. */
export class FakeTransport implements Transport {
  readonly address = "127.0.0.1:1";
  readonly topics = new Map<string, FakePartition[]>();
  readonly produced: ReceivedProduce[] = [];
  readonly fetches: MessageInitShape<typeof FetchRequestSchema>[] = [];
  describeTopicsCalls = 0;
  streamsOpened = 0;
  closed = false;
  /** Decides each produce request; default: append. */
  produceHook: (r: ReceivedProduce) => ProduceDecision = () => ({ kind: "append" });
  /** Replaces a fetch answer when it returns one. */
  fetchHook: ((req: MessageInitShape<typeof FetchRequestSchema>) => MessageInitShape<typeof FetchResponseSchema> | undefined) | null = null;
  /** Fails every call with a ConnectionError while true. */
  down = false;
  /** InitProducerId requests received. */
  readonly inits: ReceivedInit[] = [];
  /** Fails an InitProducerId with the error it returns. */
  initProducerIdHook: ((r: ReceivedInit) => Error | undefined) | null = null;
  /** Issued producer ids and their current epochs. */
  readonly producerEpochs = new Map<number, number>();
  private readonly transactionalIds = new Map<string, number>();
  private nextProducerId = 1000;
  private readonly held: (() => void)[] = [];
  private readonly appendWaiters = new Set<() => void>();

  /** Creates a topic with `partitions` empty partitions. */
  createTopic(name: string, partitions: number): void {
    this.topics.set(
      name,
      Array.from({ length: partitions }, () => ({
        batches: [],
        logStartOffset: 0,
        next: 0,
        producers: new ProducerStateManager({ producerIdExpirationMs: 86_400_000 }),
      })),
    );
  }

  /** Answers the held produce requests (in order). */
  releaseHeld(): void {
    for (const release of this.held.splice(0)) release();
  }

  /** Number of produce requests whose answer is held. */
  get heldCount(): number {
    return this.held.length;
  }

  /** Stored batches of one partition. */
  log(topic: string, partition: number): StoredBatch[] {
    return this.topics.get(topic)![partition]!.batches;
  }

  /**
   * Appends a batch as the broker would; returns its base offset (the original one for a retry
   * of a written idempotent batch). Throws the broker's RillError for producer errors.
   */
  append(topic: string, partition: number, batch: Buffer): number {
    const p = this.topics.get(topic)![partition]!;
    const h = validateBatch(batch);
    const sequenced = producerBatchOf(h, p.next);
    if (sequenced !== null) {
      const issued = this.producerEpochs.get(h.producerId);
      if (issued === undefined) throw new RillError(Errors.UNKNOWN_PRODUCER_ID, `producer_id: ${h.producerId} was never issued`);
      if (h.producerEpoch > issued)
        throw new RillError(Errors.INVALID_PRODUCER_EPOCH, `producer_epoch: ${h.producerEpoch} is newer than the issued epoch ${issued}`);
      const check = p.producers.check(sequenced, `${topic}-${partition}`);
      if (check.kind === "duplicate") return check.baseOffset;
      p.producers.record(sequenced, 0);
    }
    const bytes = Buffer.from(batch);
    setBaseOffset(bytes, 0, p.next);
    const base = p.next;
    p.batches.push({ bytes, baseOffset: base, lastOffset: base + h.lastOffsetDelta, maxTimestamp: h.maxTimestamp });
    p.next = base + h.lastOffsetDelta + 1;
    for (const wake of [...this.appendWaiters]) wake();
    return base;
  }

  private checkUp(): void {
    if (this.down) throw new ConnectionError(this.address, "connection refused");
  }

  readonly createTopics: Transport["createTopics"] = async (req) => {
    this.checkUp();
    const topics = (req.topics ?? []).map((t) => {
      const name = t.name ?? "";
      if (this.topics.has(name)) return { name, error: detail(Errors.TOPIC_ALREADY_EXISTS, `topics: topic "${name}" already exists`) };
      if (!req.validateOnly) this.createTopic(name, t.partitions || 1);
      return { name, partitions: t.partitions || 1, replicationFactor: t.replicationFactor || 1 };
    });
    return create(CreateTopicsResponseSchema, { topics });
  };

  readonly deleteTopics: Transport["deleteTopics"] = async (req) => {
    this.checkUp();
    const topics = (req.topics ?? []).map((name) =>
      this.topics.delete(name) ? { name } : { name, error: detail(Errors.UNKNOWN_TOPIC_OR_PARTITION) },
    );
    return create(DeleteTopicsResponseSchema, { topics });
  };

  readonly listTopics: Transport["listTopics"] = async () => {
    this.checkUp();
    const topics = [...this.topics.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, ps]) => ({ name, partitions: ps.length, replicationFactor: 1 }));
    return create(ListTopicsResponseSchema, { topics });
  };

  readonly describeTopics: Transport["describeTopics"] = async (req: MessageInitShape<typeof DescribeTopicsRequestSchema>) => {
    this.checkUp();
    this.describeTopicsCalls++;
    const names = req.topics?.length ? req.topics : [...this.topics.keys()];
    const topics = names.map((name) => {
      const ps = this.topics.get(name);
      if (ps === undefined) return { name, error: detail(Errors.UNKNOWN_TOPIC_OR_PARTITION, `topics: topic "${name}" does not exist`) };
      return {
        name,
        configs: req.excludeConfigs ? {} : { "cleanup.policy": "delete" },
        partitions: ps.map((p, i) => ({
          partition: i,
          leader: 1,
          replicas: [1],
          isr: [1],
          logStartOffset: BigInt(p.logStartOffset),
          highWatermark: BigInt(p.next),
        })),
      };
    });
    return create(DescribeTopicsResponseSchema, { topics });
  };

  readonly createPartitions: Transport["createPartitions"] = async () => {
    throw new Error("not in the fake");
  };
  readonly describeConfigs: Transport["describeConfigs"] = async () => {
    throw new Error("not in the fake");
  };
  readonly alterConfigs: Transport["alterConfigs"] = async () => {
    throw new Error("not in the fake");
  };
  readonly describeCluster: Transport["describeCluster"] = async () => {
    throw new Error("not in the fake");
  };
  // security (issue 13)
  readonly createAcls: Transport["createAcls"] = async () => {
    throw new Error("not in the fake");
  };
  readonly describeAcls: Transport["describeAcls"] = async () => {
    throw new Error("not in the fake");
  };
  readonly deleteAcls: Transport["deleteAcls"] = async () => {
    throw new Error("not in the fake");
  };
  readonly alterUserScramCredentials: Transport["alterUserScramCredentials"] = async () => {
    throw new Error("not in the fake");
  };
  readonly describeUserScramCredentials: Transport["describeUserScramCredentials"] = async () => {
    throw new Error("not in the fake");
  };
  readonly alterClientQuotas: Transport["alterClientQuotas"] = async () => {
    throw new Error("not in the fake");
  };
  readonly describeClientQuotas: Transport["describeClientQuotas"] = async () => {
    throw new Error("not in the fake");
  };
  readonly listTransactions: Transport["listTransactions"] = async () => {
    throw new RillError(Errors.INVALID_REQUEST, "the fake transport serves no transactions");
  };
  readonly describeTransactions: Transport["describeTransactions"] = async () => {
    throw new RillError(Errors.INVALID_REQUEST, "the fake transport serves no transactions");
  };
  readonly abortTransaction: Transport["abortTransaction"] = async () => {
    throw new RillError(Errors.INVALID_REQUEST, "the fake transport serves no transactions");
  };
  readonly addRaftVoter: Transport["addRaftVoter"] = async () => {
    throw new Error("not in the fake");
  };
  readonly removeRaftVoter: Transport["removeRaftVoter"] = async () => {
    throw new Error("not in the fake");
  };
  readonly alterPartitionReassignments: Transport["alterPartitionReassignments"] = async () => {
    throw new Error("not in the fake");
  };
  readonly listPartitionReassignments: Transport["listPartitionReassignments"] = async () => {
    throw new Error("not in the fake");
  };
  readonly alterBrokerCordons: Transport["alterBrokerCordons"] = async () => {
    throw new Error("not in the fake");
  };
  readonly deleteRecords: Transport["deleteRecords"] = async () => {
    throw new Error("not in the fake");
  };
  readonly electLeaders: Transport["electLeaders"] = async () => {
    throw new Error("not in the fake");
  };

  readonly fetch: Transport["fetch"] = async (req, options?: CallOptions) => {
    this.checkUp();
    this.fetches.push(req);
    const replaced = this.fetchHook?.(req);
    if (replaced !== undefined) return create(FetchResponseSchema, replaced);
    let answer = this.readFetch(req);
    const deadline = Date.now() + (req.maxWaitMs ?? 0);
    while (answer.bytes === 0 && Date.now() < deadline) {
      await this.waitForAppend(deadline - Date.now(), options?.signal);
      answer = this.readFetch(req);
    }
    return create(FetchResponseSchema, { partitions: answer.partitions });
  };

  private readFetch(req: MessageInitShape<typeof FetchRequestSchema>) {
    let bytes = 0;
    const partitions = (req.partitions ?? []).map((fp) => {
      const topic = fp.topic ?? "";
      const partition = fp.partition ?? 0;
      const offset = Number(fp.offset ?? 0n);
      const p = this.topics.get(topic)?.[partition];
      if (p === undefined) return { topic, partition, error: detail(Errors.UNKNOWN_TOPIC_OR_PARTITION) };
      if (offset < p.logStartOffset || offset > p.next)
        return { topic, partition, error: detail(Errors.OFFSET_OUT_OF_RANGE, `offset: ${offset}`) };
      const budget = fp.maxBytes || req.maxBytes || 1 << 20;
      const chunks: Buffer[] = [];
      let size = 0;
      for (const b of p.batches) {
        if (b.lastOffset < offset) continue;
        if (chunks.length > 0 && size + b.bytes.length > budget) break;
        chunks.push(b.bytes);
        size += b.bytes.length;
      }
      bytes += size;
      const last = chunks.length > 0 ? readBatchHeader(chunks[chunks.length - 1]!).lastOffset + 1 : offset;
      return {
        topic,
        partition,
        highWatermark: BigInt(p.next),
        logStartOffset: BigInt(p.logStartOffset),
        recordBatches: Buffer.concat(chunks),
        nextOffset: BigInt(last),
      };
    });
    return { bytes, partitions };
  }

  private waitForAppend(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const cleanup = (): void => {
        clearTimeout(timer);
        this.appendWaiters.delete(done);
      };
      const done = (): void => {
        cleanup();
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      this.appendWaiters.add(done);
      signal?.addEventListener(
        "abort",
        () => {
          cleanup();
          reject(signal.reason);
        },
        { once: true },
      );
    });
  }

  /** Transactions are the broker's (test/integration/transactions*.test.ts); this fake has none. */
  readonly endTransaction: Transport["endTransaction"] = async () => {
    throw new RillError(Errors.INVALID_REQUEST, "transactional_id: the fake transport serves no transactions");
  };

  readonly initProducerId: Transport["initProducerId"] = async (req) => {
    this.checkUp();
    const r: ReceivedInit = {
      transactionalId: req.transactionalId ?? "",
      producerId: req.producerId,
      producerEpoch: req.producerEpoch ?? 0,
    };
    this.inits.push(r);
    const failure = this.initProducerIdHook?.(r);
    if (failure !== undefined) throw failure;
    let id = r.transactionalId !== "" ? this.transactionalIds.get(r.transactionalId) : undefined;
    if (r.producerId !== undefined) {
      const issued = this.producerEpochs.get(Number(r.producerId));
      if (issued === undefined) throw new RillError(Errors.UNKNOWN_PRODUCER_ID, `producer_id: ${r.producerId} was never issued`);
      if (issued !== r.producerEpoch)
        throw new RillError(Errors.INVALID_PRODUCER_EPOCH, `producer_epoch: ${r.producerEpoch} is not the current epoch ${issued}`);
      id = Number(r.producerId);
    }
    if (id === undefined) {
      id = this.nextProducerId++;
      this.producerEpochs.set(id, 0);
    } else {
      this.producerEpochs.set(id, this.producerEpochs.get(id)! + 1);
    }
    if (r.transactionalId !== "") this.transactionalIds.set(r.transactionalId, id);
    return create(InitProducerIdResponseSchema, { producerId: BigInt(id), producerEpoch: this.producerEpochs.get(id)! });
  };

  /** Makes `producerId`'s current epoch `epoch` (another instance took over), as a bump by someone else. */
  bumpEpoch(producerId: number): void {
    this.producerEpochs.set(producerId, this.producerEpochs.get(producerId)! + 1);
  }

  readonly listOffsets: Transport["listOffsets"] = async (req: MessageInitShape<typeof ListOffsetsRequestSchema>) => {
    this.checkUp();
    const partitions = (req.partitions ?? []).map((q) => {
      const topic = q.topic ?? "";
      const partition = q.partition ?? 0;
      const p = this.topics.get(topic)?.[partition];
      if (p === undefined)
        return { topic, partition, offset: -1n, error: detail(Errors.UNKNOWN_TOPIC_OR_PARTITION, `topic "${topic}" does not exist`) };
      if (q.spec === OffsetSpec.EARLIEST) return { topic, partition, offset: BigInt(p.logStartOffset), timestampMs: -1n };
      if (q.spec === OffsetSpec.TIMESTAMP) {
        const ts = Number(q.timestampMs ?? 0n);
        const b = p.batches.find((x) => x.maxTimestamp >= ts);
        if (b === undefined) return { topic, partition, offset: -1n, timestampMs: -1n };
        return { topic, partition, offset: BigInt(b.baseOffset), timestampMs: BigInt(b.maxTimestamp) };
      }
      return { topic, partition, offset: BigInt(p.next), timestampMs: -1n };
    });
    return create(ListOffsetsResponseSchema, { partitions });
  };

  openProduceStream(listener: ProduceStreamListener): ProduceStream {
    const stream = ++this.streamsOpened;
    const slots: Slot[] = [];
    let open = true;
    const deliver = (): void => {
      while (open && slots.length > 0 && slots[0]!.response !== null) listener.onResponse(slots.shift()!.response!);
    };
    const breakStream = (): void => {
      if (!open) return;
      open = false;
      setImmediate(() => listener.onError(new ConnectionError(this.address, "connection reset")));
    };
    return {
      write: (m: ProduceStreamRequestInput) => {
        if (!open) return;
        if (this.down) {
          breakStream();
          return;
        }
        const requestId = Number(m.requestId);
        const received: ReceivedProduce = { requestId, stream, request: m.request, batch: Buffer.from(m.request.recordBatch!) };
        this.produced.push(received);
        const decision = this.produceHook(received);
        if (decision.kind === "break-stream") {
          breakStream();
          return;
        }
        const slot: Slot = { id: requestId, response: null };
        slots.push(slot);
        const answer = (): void => {
          if (!open) return;
          slot.response = this.answer(received, decision);
          deliver();
        };
        if (decision.kind === "hold") this.held.push(answer);
        else if (decision.kind === "append-and-break") {
          setImmediate(() => {
            this.answer(received, { kind: "append" }); // written, but the answer is lost
            breakStream();
          });
        } else setImmediate(answer);
      },
      end: () => {
        setImmediate(() => {
          if (open && slots.length === 0) {
            open = false;
            listener.onEnd();
          }
        });
      },
      cancel: () => {
        open = false;
      },
    };
  }

  private answer(r: ReceivedProduce, d: ProduceDecision): ProduceStreamResponse {
    const requestId = BigInt(d.kind === "wrong-id" ? r.requestId + 1000 : r.requestId);
    const topic = r.request.topic;
    const partition = r.request.partition ?? 0;
    if (d.kind === "request-error") {
      return create(ProduceStreamResponseSchema, { requestId, result: { case: "error", value: detail(d.error) } });
    }
    let partitionResult: { partition: number; baseOffset: bigint; logAppendTimeMs: bigint; error?: ReturnType<typeof detail> };
    if (d.kind === "append-then-error") {
      try {
        this.append(topic, partition, r.batch);
      } catch (e) {
        if (!(e instanceof RillError)) throw e;
      }
      partitionResult = { partition, baseOffset: -1n, logAppendTimeMs: -1n, error: detail(d.error) };
    } else if (d.kind === "partition-error") {
      partitionResult = { partition, baseOffset: -1n, logAppendTimeMs: -1n, error: detail(d.error) };
    } else if (!this.topics.get(topic)?.[partition]) {
      partitionResult = { partition, baseOffset: -1n, logAppendTimeMs: -1n, error: detail(Errors.UNKNOWN_TOPIC_OR_PARTITION) };
    } else {
      try {
        const base = this.append(topic, partition, r.batch);
        partitionResult = { partition, baseOffset: r.request.acks === 1 ? -1n : BigInt(base), logAppendTimeMs: -1n };
      } catch (e) {
        if (!(e instanceof RillError)) throw e;
        partitionResult = { partition, baseOffset: -1n, logAppendTimeMs: -1n, error: detail(e.kind, e.message) };
      }
    }
    const response = create(ProduceResponseSchema, { topic, partitions: [partitionResult] });
    return create(ProduceStreamResponseSchema, { requestId, result: { case: "response", value: response } });
  }

  close(): void {
    this.closed = true;
  }
}
