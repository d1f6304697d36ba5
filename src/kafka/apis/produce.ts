/**
 * Produce (key 0), versions 3–11 (9+ flexible): each partition's record batches — a view of the
 * received frame, never copied — appended as they are through `ProduceHandler` (the service
 * the gRPC ProduceService calls), one `ProduceInput` per partition with its `recordBatch`.
 *
 * - Order: every partition of the request is handed to `ProduceHandler.produce` before the
 *   handler first awaits, and `produce` routes and appends synchronously, so requests pipelined
 *   on one connection are appended in the order they arrived (src/kafka/README.md).
 * - No forwarding: Kafka never forwards a produce. A partition led by another broker is
 *   answered NOT_LEADER_OR_FOLLOWER by the log and the client re-reads Metadata; Kafka's
 *   handler has no `LeaderForwarder` (src/kafka/services.ts).
 * - acks 0 → NONE (no response at all), 1 → LEADER, -1 → ALL; any other value is refused by the
 *   service (INVALID_REQUIRED_ACKS per partition). `timeout_ms` bounds acks=-1 as Kafka's does;
 *   above the service's 300 000 ms it is clamped, negative is 0 (Kafka waits that long).
 * - Idempotent producers: the batch header carries producer id, epoch and base sequence; the
 *   log checks them against the producer state (a duplicate of one of the last five batches
 *   answers its original offsets; a gap OUT_OF_ORDER_SEQUENCE_NUMBER; an unknown producer
 *   UNKNOWN_PRODUCER_ID; an old epoch INVALID_PRODUCER_EPOCH).
 * - Errors per partition, with Kafka's codes (`kafkaErrorCode`) and, v8+, the message.
 * - ACLs: WRITE on the topic (`RequestAccess.produce`), else TOPIC_AUTHORIZATION_FAILED for its
 *   partitions; nothing of that topic is appended.
 * - Transactions: a request with a transactional id needs WRITE on it (else
 *   TRANSACTIONAL_ID_AUTHORIZATION_FAILED for every partition, nothing appended); its batches
 *   go to the service with the id and transaction version 1 (src/kafka/apis/txn-common.ts: TV1
 *   with KIP-890 part 1), so the leader appends a transactional batch only once the transaction
 *   coordinator confirms the client added the partition (AddPartitionsToTxn) — else
 *   INVALID_TXN_STATE, nothing stored. A control batch from a client is always refused.
 * - Quotas: the request's batch bytes are recorded against the requester's produce quota and
 *   the answer is held for the throttle time, which `throttle_time_ms` reports (as gRPC does).
 */
import { RillError, rillError } from "../../base/errors.ts";
import { ProduceAcks, type ProduceInput, type ProduceResult } from "../../service/produce-types.ts";
import { api, NO_RESPONSE } from "../api.ts";
import { kafkaErrorCode } from "../error-codes.ts";
import { type Encodable, int16, int32, int64, message, nested, records, string, structs } from "../schema.ts";
import { dataServices } from "../services.ts";
import { authorizeTxnWrite } from "./txn-common.ts";

export const ProduceRequest = message("ProduceRequest", "3-11", "9+", {
  transactionalId: string().nullable("3+").default(null),
  acks: int16(),
  timeoutMs: int32(),
  topicData: structs({
    name: string(),
    partitionData: structs({ index: int32(), records: records() }),
  }),
});

export const ProduceResponse = message("ProduceResponse", "3-11", "9+", {
  responses: structs({
    name: string(),
    partitionResponses: structs({
      index: int32(),
      errorCode: int16(),
      baseOffset: int64(),
      logAppendTimeMs: int64().default(-1n),
      logStartOffset: int64().since(5).default(-1n),
      recordErrors: structs({ batchIndex: int32(), batchIndexErrorMessage: string().nullable("8+").default(null) }).since(8),
      errorMessage: string().since(8).nullable("8+").default(null),
      currentLeader: nested({ leaderId: int32().default(-1), leaderEpoch: int32().default(-1) }).tagged(0, "10+"),
    }),
  }),
  throttleTimeMs: int32(),
  nodeEndpoints: structs({ nodeId: int32(), host: string(), port: int32(), rack: string().nullable("10+").default(null) }).tagged(0, "10+"),
});

type PartitionResponse = NonNullable<NonNullable<Encodable<typeof ProduceResponse>["responses"]>[number]["partitionResponses"]>[number];

/** Longest acks=-1 wait the service takes. */
const TIMEOUT_MAX_MS = 300_000;

/** Kafka's acks as the service's levels; null: not one Kafka defines. */
function ackLevel(acks: number): number | null {
  if (acks === 0) return ProduceAcks.NONE;
  if (acks === 1) return ProduceAcks.LEADER;
  if (acks === -1) return ProduceAcks.ALL;
  return null;
}

function failed(index: number, code: number, message: string | null): PartitionResponse {
  return { index, errorCode: code, baseOffset: -1n, logAppendTimeMs: -1n, logStartOffset: -1n, errorMessage: message };
}

export const produce = api(0, "3-11", ProduceRequest, ProduceResponse, async (req, ctx) => {
  const { deps, session } = ctx;
  const who = session.requester;
  const handler = dataServices(deps).produce;
  const acks = ackLevel(req.acks);
  const timeoutMs = Math.min(Math.max(req.timeoutMs, 0), TIMEOUT_MAX_MS);
  let bytes = 0;

  // Every partition reaches ProduceHandler.produce before anything is awaited (append order).
  const topics = req.topicData.map((t) => {
    let refused: RillError | null = null;
    if (acks === null) {
      refused = rillError("INVALID_REQUIRED_ACKS", `acks: ${req.acks} is not 0, 1 or -1`);
    } else {
      try {
        if (req.transactionalId !== null) authorizeTxnWrite(ctx, req.transactionalId);
        deps.access.produce(who, t.name);
      } catch (e) {
        refused = RillError.from(e);
      }
    }
    const parts = t.partitionData.map((p): Promise<PartitionResponse> => {
      if (refused !== null) return Promise.resolve(failed(p.index, kafkaErrorCode(refused), refused.message));
      const batch = p.records === null ? null : Buffer.isBuffer(p.records) ? p.records : Buffer.concat(p.records);
      bytes += batch?.length ?? 0;
      const input: ProduceInput = {
        requester: who,
        topic: t.name,
        partition: p.index,
        records: [],
        recordBatch: batch !== null && batch.length > 0 ? batch : null,
        acks: acks as number,
        timeoutMs,
        producerId: undefined,
        producerEpoch: 0,
        baseSequence: 0,
        ...(req.transactionalId !== null ? { transactionalId: req.transactionalId, transactionVersion: 1 as const } : {}),
      };
      let answer: Promise<ProduceResult>;
      try {
        answer = handler.produce(input, true);
      } catch (e) {
        answer = Promise.reject(e);
      }
      return answer.then(
        (r) => partitionResponse(p.index, r, deps.services.replicas),
        (e: unknown) => {
          const err = RillError.from(e);
          return failed(p.index, kafkaErrorCode(err), err.message);
        },
      );
    });
    return { name: t.name, parts };
  });

  if (req.acks === 0) {
    for (const t of topics) for (const p of t.parts) p.catch(() => {});
    if (deps.quotas.applies(who, "produce")) deps.quotas.record(who, "produce", () => bytes);
    return NO_RESPONSE;
  }
  const responses = await Promise.all(topics.map(async (t) => ({ name: t.name, partitionResponses: await Promise.all(t.parts) })));
  const throttleTimeMs = deps.quotas.applies(who, "produce") ? await deps.quotas.hold(who, "produce", bytes) : 0;
  return { responses, throttleTimeMs };
});

/** One partition's answer from the service's result for it. */
function partitionResponse(
  index: number,
  r: ProduceResult,
  rm: { replica(topic: string, partition: number): { log: { logStartOffset: number } } | undefined },
): PartitionResponse {
  const p = r.partitions.find((x) => x.partition === index) ?? r.partitions[0];
  if (p === undefined) return failed(index, -1, "no result for the partition");
  if (p.error !== null) return failed(index, kafkaErrorCode(p.error), p.error.message);
  return {
    index,
    errorCode: 0,
    baseOffset: BigInt(p.baseOffset),
    logAppendTimeMs: BigInt(p.logAppendTimeMs),
    logStartOffset: BigInt(rm.replica(r.topic, index)?.log.logStartOffset ?? -1),
  };
}
