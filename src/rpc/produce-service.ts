/**
 * ProduceService over gRPC: a thin adapter of src/service (produce.ts, producer-id.ts), where
 * what a Produce request means lives. Each call decodes its ProduceRequest into a ProduceInput
 * (`record_batch` stays a view of the received message, sliced without a copy by wire-codec.ts),
 * hands it to the ProduceHandler and encodes the ProduceResult; a whole-call error becomes a
 * gRPC status, a partition's error an ErrorDetail (errors.ts).
 *
 * - Produce (unary) and ProduceStream (bidi, pipelined, answers in request order) share one
 *   handler, so they share its sticky partitions.
 * - Forwarding to a partition's leader on another broker is the handler's `LeaderForwarder`
 *   port, implemented here with `LeaderClients` (forward.ts); a forwarded call is marked so and
 *   never forwarded again.
 * - InitProducerId is checked here, then forwarded to the active controller (`Forwarder`) or
 *   committed.
 */
import type { Requester } from "../security/requester.ts";
import { requesterOf } from "./call-context.ts";
import type { InternalClients } from "./internal-clients.ts";
import { create } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { rillError } from "../base/errors.ts";
import type { Record as ProtoRecord } from "../gen/rill/v1/common_pb.ts";
import {
  EndTransactionOutcomeSchema,
  EndTransactionResponseSchema,
  type EndTransactionRequest,
  type EndTransactionResponse,
  InitProducerIdRequestSchema,
  InitProducerIdResponseSchema,
  ProduceRequestSchema,
  ProduceResponseSchema,
  ProduceService,
  ProduceStreamResponseSchema,
  type InitProducerIdRequest,
  type InitProducerIdResponse,
  type ProduceRequest,
  type ProduceResponse,
  type ProduceStreamRequest,
  type ProduceStreamResponse,
} from "../gen/rill/v1/produce_service_pb.ts";
import type { ReplicaManager } from "../replication/replica-manager.ts";
import { HEADER_SIZE, type ProduceChecks, readBatchHeader } from "../protocol/record-batch.ts";
import { PRODUCE_CHECKS_DEFAULT, PRODUCER_METADATA_WAIT_MS_DEFAULT, ProduceHandler } from "../service/produce.ts";
import type { LeaderForwarder, ProduceInput, ProduceRecord, ProduceResult } from "../service/produce-types.ts";
import { checkInitProducerId, initProducerId, type InitProducerIdInput } from "../service/producer-id.ts";
import { rillErrorFromDetail as fromErrorDetail } from "../protocol/grpc-errors.ts";
import { toErrorDetail, toServiceError, unary } from "./errors.ts";
import { Forwarder, LeaderClients, isForwarded, localRoute, type ControllerRoute } from "./forward.ts";
import { asBuffer } from "../protocol/grpc-service.ts";
import type { ServiceImplementation } from "./grpc-service.ts";
import { type QuotaThrottle, recordBytes, throttled } from "../service/quota-throttle.ts";
import type { produceServiceCodecs } from "./wire-codec.ts";
import { RequestAccess } from "../service/authorize.ts";
import type { TxnService } from "../service/txn-service.ts";
import { TxnForwarding } from "./txn-rpc.ts";
import { Access } from "../service/access.ts";

/**
 * The ProduceService implementation; `clients`: the broker's shared internal clients (its own
 * otherwise); `checks`: how deeply producers' batches are validated (`produce.validation`);
 * `producerWaitMs`: how long a leader waits for its metadata to learn a producer id
 * (`producer.id.metadata.wait.ms`).
 */
export function produceService(
  rm: ReplicaManager,
  route: ControllerRoute = localRoute(() => rm.image.offset),
  clients?: InternalClients,
  checks: ProduceChecks = PRODUCE_CHECKS_DEFAULT,
  producerWaitMs: number = PRODUCER_METADATA_WAIT_MS_DEFAULT,
  quotas?: QuotaThrottle,
  access: RequestAccess = new RequestAccess(Access.allowAll()),
  txn: TxnService | null = null,
): ServiceImplementation<typeof ProduceService, typeof produceServiceCodecs> {
  const fwd = new Forwarder(ProduceService, route, clients);
  const handler = new ProduceHandler(rm, leaderForwarder(new LeaderClients(ProduceService, rm, clients)), checks, producerWaitMs, txn);
  const txnFwd = txn && clients ? new TxnForwarding(rm, clients) : null;
  // Authorized for the caller; the caller travels with a request passed to a partition's leader (ProduceInput.requester).
  const produce = async (req: ProduceRequest, forwarded: boolean, who: Requester): Promise<ProduceResponse> => {
    access.produce(who, req.topic);
    if (req.transactionalId !== "") access.transactionalWrite(who, "ProduceService/Produce", req.transactionalId);
    return toProduceResponse(await handler.produce(toProduceInput(req, who), forwarded));
  };
  // EndTransaction, unary or on a ProduceStream (issue 17): on the coordinator, or forwarded to it.
  const endTransaction = async (req: EndTransactionRequest, who: Requester, forwarded: boolean): Promise<EndTransactionResponse> => {
    access.transactionalWrite(who, "ProduceService/EndTransaction", req.transactionalId);
    if (txn === null) throw rillError("INVALID_REQUEST", "transactional_id: transactions are not served by this broker");
    const id = req.transactionalId;
    if (id !== "" && !(forwarded || txn.isLocal(id)) && txnFwd !== null)
      return txnFwd.call<EndTransactionResponse>(txn.coordinatorOf(id), "endTransaction", req, who);
    const r = await txn.endTransaction({
      transactionalId: id,
      producerId: req.producerId,
      producerEpoch: req.producerEpoch,
      commit: req.commit,
      bumpEpoch: true,
    });
    return create(EndTransactionResponseSchema, { producerId: BigInt(r.producerId), producerEpoch: r.producerEpoch });
  };
  return {
    produce: unary(async (req: ProduceRequest, call) => {
      // A forwarded call was counted where the client sent it.
      const forwarded = isForwarded(call);
      const run = () => produce(req, forwarded, requesterOf(call));
      const { answer, throttleTimeMs } = await throttled(
        forwarded ? undefined : quotas,
        () => requesterOf(call),
        "produce",
        run,
        () => produceRequestBytes(req),
      );
      answer.throttleTimeMs = throttleTimeMs;
      return answer;
    }),
    produceStream: (call) =>
      serveProduceStream(produce, rm, call, isForwarded(call), access, isForwarded(call) ? undefined : quotas, endTransaction),
    initProducerId: unary(async (req: InitProducerIdRequest, call) => {
      const c = call as grpc.ServerUnaryCall<unknown, unknown>;
      if (req.epochAtLeast !== undefined) {
        // A transaction coordinator asking the controller for its producer's id (issue 17).
        if (!isForwarded(c)) throw rillError("INVALID_REQUEST", "epoch_at_least: only a transaction coordinator of the cluster may set it");
        if (fwd.shouldForward(c)) return fwd.forward("initProducerId", req, c);
        const r = await rm.initProducerId({ transactionalId: req.transactionalId, producerEpoch: 0, epochAtLeast: req.epochAtLeast });
        fwd.markOffset(c);
        return create(InitProducerIdResponseSchema, { producerId: BigInt(r.producerId), producerEpoch: r.producerEpoch });
      }
      access.initProducerId(requesterOf(call), req.transactionalId);
      if (txn !== null && req.transactionalId !== "") {
        const id = req.transactionalId;
        await txn.awaitCoordinator(id);
        if (!TxnForwarding.runsHere(c, txn.isLocal(id)) && txnFwd !== null)
          return txnFwd.call<InitProducerIdResponse>(txn.coordinatorOf(id), "initProducerId", req, requesterOf(call));
        const r = await txn.initProducerId({
          transactionalId: id,
          transactionTimeoutMs: req.transactionTimeoutMs,
          producerId: req.producerId ?? -1n,
          producerEpoch: req.producerId === undefined ? -1 : req.producerEpoch,
        });
        return create(InitProducerIdResponseSchema, { producerId: BigInt(r.producerId), producerEpoch: r.producerEpoch });
      }
      const input: InitProducerIdInput = {
        transactionalId: req.transactionalId,
        producerId: req.producerId,
        producerEpoch: req.producerEpoch,
      };
      checkInitProducerId(input);
      if (fwd.shouldForward(c)) return fwd.forward("initProducerId", req, c);
      const r = await initProducerId(rm, input);
      fwd.markOffset(c); // a forwarding node answers once it has applied the new id too
      return create(InitProducerIdResponseSchema, { producerId: BigInt(r.producerId), producerEpoch: r.producerEpoch });
    }),
    endTransaction: unary((req: EndTransactionRequest, call) =>
      endTransaction(req, requesterOf(call), isForwarded(call as grpc.ServerUnaryCall<unknown, unknown>)),
    ),
  };
}

/**
 * InitProducerId for a request that did not arrive over gRPC (the Kafka listener): checked here,
 * then committed on this node when it is the active controller, else passed to the controller's
 * ProduceService.InitProducerId for `requester` (answered once this node has applied the new id,
 * so the producer's first write here is not refused), bounded by `timeoutMs`.
 */
export function initProducerIdFor(
  rm: ReplicaManager,
  route: ControllerRoute,
  clients?: InternalClients,
): (input: InitProducerIdInput, requester: Requester, timeoutMs: number) => Promise<{ producerId: number; producerEpoch: number }> {
  const fwd = new Forwarder(ProduceService, route, clients);
  return async (input, requester, timeoutMs) => {
    checkInitProducerId(input);
    if (route.isActive()) return initProducerId(rm, input);
    const req = create(InitProducerIdRequestSchema, {
      transactionalId: input.transactionalId,
      ...(input.producerId !== undefined ? { producerId: input.producerId } : {}),
      producerEpoch: input.producerEpoch,
    });
    const res = await fwd.forwardAs<InitProducerIdResponse>("initProducerId", req, requester, Date.now() + timeoutMs);
    return { producerId: Number(res.producerId), producerEpoch: res.producerEpoch };
  };
}

/** The handler's LeaderForwarder over gRPC: the leader's ProduceService.Produce, marked forwarded, for the caller. */
function leaderForwarder(leaders: LeaderClients<typeof ProduceService>): LeaderForwarder {
  return {
    produce: async (leader, input) =>
      fromProduceResponse(
        await leaders.call<ProduceResponse>(leader, "produce", toProduceRequest(input), input.timeoutMs, input.requester),
      ),
  };
}

/** The domain input of a ProduceRequest. */
export function toProduceInput(req: ProduceRequest, requester?: Requester): ProduceInput {
  // One literal of one shape, the optional fields set after it: a literal that began with a
  // spread of `{ requester }` or `{}` took V8's slow path, ~5 µs a request (3.4% of a Node
  // broker's CPU under produce requests of 10 records; bench/README.md, session 14).
  const input: { -readonly [K in keyof ProduceInput]: ProduceInput[K] } = {
    topic: req.topic,
    partition: req.partition,
    records: req.records.map(toProduceRecord),
    recordBatch: req.recordBatch.length > 0 ? asBuffer(req.recordBatch) : null,
    acks: req.acks,
    timeoutMs: req.timeoutMs,
    producerId: req.producerId,
    producerEpoch: req.producerEpoch,
    baseSequence: req.baseSequence,
  };
  if (requester !== undefined) input.requester = requester;
  if (req.transactionalId !== "") {
    input.transactionalId = req.transactionalId;
    input.transactionVersion = 2;
  }
  return input;
}

function toProduceRecord(r: ProtoRecord): ProduceRecord {
  return {
    key: r.key ?? null,
    value: r.value ?? null,
    headers: r.headers.map((h) => ({ key: h.key, value: h.value ?? null })),
    timestampMs: r.timestampMs ?? null,
  };
}

/** The ProduceRequest that passes `input` on to another broker. */
function toProduceRequest(input: ProduceInput): ProduceRequest {
  return create(ProduceRequestSchema, {
    topic: input.topic,
    ...(input.partition !== undefined ? { partition: input.partition } : {}),
    records: input.records.map((r) => ({
      ...(r.key !== null ? { key: r.key } : {}),
      ...(r.value !== null ? { value: r.value } : {}),
      headers: r.headers.map((h) => ({ key: h.key, ...(h.value !== null ? { value: h.value } : {}) })),
      ...(r.timestampMs !== null ? { timestampMs: r.timestampMs } : {}),
    })),
    recordBatch: input.recordBatch ?? new Uint8Array(0),
    acks: input.acks,
    timeoutMs: input.timeoutMs,
    ...(input.producerId !== undefined ? { producerId: input.producerId } : {}),
    producerEpoch: input.producerEpoch,
    baseSequence: input.baseSequence,
    transactionalId: input.transactionalId ?? "",
  });
}

/** The ProduceResponse of a result. */
export function toProduceResponse(res: ProduceResult): ProduceResponse {
  return create(ProduceResponseSchema, {
    topic: res.topic,
    partitions: res.partitions.map((p) => ({
      partition: p.partition,
      baseOffset: BigInt(p.baseOffset),
      logAppendTimeMs: BigInt(p.logAppendTimeMs),
      ...(p.error ? { error: toErrorDetail(p.error) } : {}),
    })),
    records: res.records.map((r) => ({ partition: r.partition, offset: BigInt(r.offset) })),
  });
}

/** The result another broker answered (a forwarded request). */
function fromProduceResponse(res: ProduceResponse): ProduceResult {
  return {
    topic: res.topic,
    partitions: res.partitions.map((p) => ({
      partition: p.partition,
      baseOffset: Number(p.baseOffset),
      logAppendTimeMs: Number(p.logAppendTimeMs),
      error: p.error ? fromErrorDetail(p.error) : null,
    })),
    records: res.records.map((r) => ({ partition: r.partition, offset: Number(r.offset) })),
  };
}

/**
 * Each request is handled as it arrives (so they are pipelined) and answered in arrival order;
 * an error in one request is answered in its own response and the stream goes on.
 */
function serveProduceStream(
  produce: (req: ProduceRequest, forwarded: boolean, who: Requester) => Promise<ProduceResponse>,
  rm: ReplicaManager,
  call: grpc.ServerDuplexStream<ProduceStreamRequest, ProduceStreamResponse>,
  forwarded: boolean,
  access: RequestAccess,
  quotas: QuotaThrottle | undefined,
  endTransaction: (req: EndTransactionRequest, who: Requester, forwarded: boolean) => Promise<EndTransactionResponse>,
): void {
  let chain: Promise<void> = Promise.resolve();
  let ended = false;
  const who = requesterOf(call);
  const txnRequests = new StreamTransactions();
  // The topics written so far: the stream ends when a permission on one of them is removed.
  const topics = new Set<string>();
  const unwatch = access.access.watch(
    who,
    "ProduceService/ProduceStream",
    () => ({ TOPIC: topics }),
    (e) => {
      ended = true;
      call.emit("error", toServiceError(e));
    },
  );
  call.on("close", unwatch);
  // Client quotas (issue 13): over quota, the stream is not read for the throttle time.
  const pause = quotas?.streamPause();
  const end = (): void => {
    if (ended) return;
    ended = true;
    pause?.cancel();
    void chain.then(() => call.end());
  };
  // On shutdown: answer what was received, then end the stream (clients reconnect elsewhere).
  const stopListening = rm.onClose(end);
  call.on("close", stopListening);
  // An end_transaction acts once this stream's earlier requests of its transaction are
  // answered; a commit after one of them failed is refused and ends nothing.
  const endAfterRequests = (req: EndTransactionRequest): Promise<EndTransactionResponse> =>
    txnRequests.settled(req).then((failure) => {
      if (failure !== null && req.commit)
        throw rillError(
          "INVALID_TXN_STATE",
          `end_transaction: not committed, because ${failure}; the transaction stays open: send its records again, then end it (or abort it)`,
        );
      return endTransaction(req, who, forwarded);
    });
  call.on("data", (msg: ProduceStreamRequest) => {
    if (ended) return;
    const requestId = msg.requestId;
    const throttleTimeMs = quotas && who && msg.request ? quotas.record(who, "produce", () => produceRequestBytes(msg.request!)) : 0;
    if (pause && throttleTimeMs > 0)
      pause.pause(
        throttleTimeMs,
        () => call.pause(),
        () => call.resume(),
      );
    const produced: Promise<ProduceResponse> | null = msg.request
      ? txnRequests.track(
          requestId,
          msg.request,
          produce(msg.request, forwarded, who).then((r) => {
            topics.add(r.topic);
            return r;
          }),
        )
      : null;
    const asResponse = (p: Promise<ProduceResponse>): Promise<ProduceStreamResponse> =>
      p.then(
        (value) => create(ProduceStreamResponseSchema, { requestId, result: { case: "response", value: { ...value, throttleTimeMs } } }),
        (e: unknown) => create(ProduceStreamResponseSchema, { requestId, result: { case: "error", value: toErrorDetail(e) } }),
      );
    let answer: Promise<ProduceStreamResponse>;
    if (msg.endTransaction && produced === null) {
      answer = endAfterRequests(msg.endTransaction).then(
        (value) => create(ProduceStreamResponseSchema, { requestId, result: { case: "endTransaction", value } }),
        (e: unknown) => create(ProduceStreamResponseSchema, { requestId, result: { case: "error", value: toErrorDetail(e) } }),
      );
    } else if (produced === null) {
      answer = asResponse(
        Promise.reject(rillError("INVALID_REQUEST", "request: missing in ProduceStreamRequest (or give end_transaction)")),
      );
    } else if (msg.endTransaction) {
      // The transaction's last records and its end in one message (issue 17): one answer for both.
      const outcome = endAfterRequests(msg.endTransaction).then(
        (value) => ({ result: { case: "response" as const, value } }),
        (e: unknown) => ({ result: { case: "error" as const, value: toErrorDetail(e) } }),
      );
      answer = Promise.all([asResponse(produced), outcome]).then(([res, endTransactionOutcome]) => {
        res.endTransactionOutcome = create(EndTransactionOutcomeSchema, endTransactionOutcome);
        return res;
      });
    } else {
      answer = asResponse(produced);
    }
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

/** A ProduceRequest's bytes as producer quotas count them: the batch as sent, or the records. */
export function produceRequestBytes(req: ProduceRequest): number {
  let n = req.recordBatch.length;
  for (const r of req.records) {
    n += recordBytes({
      key: r.key ?? null,
      value: r.value ?? null,
      headers: r.headers.map((h) => ({ key: h.key, value: h.value ?? null })),
    });
  }
  return n;
}

export { toServiceError };

/**
 * The transactional produce requests of one ProduceStream, so that an `end_transaction` sent
 * right behind them (without waiting for their answers: the SDK does so, issue 17) acts only
 * once they are settled, and commits only when all succeeded. Kept per transactional id, for
 * the producer id and epoch of its latest request: an end at another id or epoch (an earlier
 * transaction's requests, whose ends went elsewhere) waits for nothing here.
 */
class StreamTransactions {
  private readonly open = new Map<string, { producerId: bigint; producerEpoch: number; settled: Promise<void>; failure: string | null }>();

  /** Notes `req`'s outcome (when transactional) and returns `answer` unchanged. */
  track(requestId: bigint, req: ProduceRequest, answer: Promise<ProduceResponse>): Promise<ProduceResponse> {
    if (req.transactionalId === "") return answer;
    const [producerId, producerEpoch] = requestProducer(req);
    let t = this.open.get(req.transactionalId);
    if (t === undefined || t.producerId !== producerId || t.producerEpoch !== producerEpoch) {
      t = { producerId, producerEpoch, settled: Promise.resolve(), failure: null };
      this.open.set(req.transactionalId, t);
    }
    const entry = t;
    const where = `request ${requestId} (${req.topic}-${req.partition ?? "?"}) of the transaction on this stream`;
    const outcome = answer.then(
      (r) => {
        const bad = r.partitions.find((p) => p.error !== undefined);
        if (bad !== undefined) entry.failure ??= `${where} failed: ${bad.error!.name}: ${bad.error!.message}`;
      },
      (e: unknown) => {
        entry.failure ??= `${where} failed: ${e instanceof Error ? e.message : String(e)}`;
      },
    );
    entry.settled = entry.settled.then(() => outcome);
    return answer;
  }

  /**
   * Once the requests noted for `end`'s transactional id, producer id and epoch are settled: why
   * one of them failed, or null. Forgets them (the next transaction starts afresh).
   */
  async settled(end: EndTransactionRequest): Promise<string | null> {
    const t = this.open.get(end.transactionalId);
    if (t === undefined) return null;
    this.open.delete(end.transactionalId);
    if (t.producerId !== end.producerId || t.producerEpoch !== end.producerEpoch) return null;
    await t.settled;
    return t.failure;
  }
}

/** The producer id and epoch of a transactional request: its first batch's header, or its fields; -1 when unreadable. */
function requestProducer(req: ProduceRequest): [bigint, number] {
  if (req.recordBatch.length === 0) return [req.producerId ?? -1n, req.producerEpoch];
  if (req.recordBatch.length < HEADER_SIZE) return [-1n, -1];
  const h = readBatchHeader(asBuffer(req.recordBatch));
  return [BigInt(h.producerId), h.producerEpoch];
}
