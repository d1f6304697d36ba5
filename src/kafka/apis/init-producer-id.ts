/**
 * InitProducerId (key 22), versions 0–5 (2+ flexible), for idempotent producers: a new producer
 * id at epoch 0, or (v3+, KIP-360) the epoch of the id the producer holds bumped — over
 * `initProducerId` (src/service/producer-id.ts), committed on the active controller and passed
 * there from any other node exactly as gRPC's ProduceService.InitProducerId does (answered once
 * this node has applied the new id, so the producer's first batch here is not refused).
 *
 * With a transactional id, the producer is a transactional one: the id's coordinator (the node
 * FindCoordinator key type 1 names; elsewhere NOT_COORDINATOR) gives it a producer id and epoch
 * through `TransactionsService.initProducerId` — the same id with the epoch bumped when the
 * transactional id is known, which fences the previous instance and aborts its open transaction;
 * `transaction_timeout_ms` above `transaction.max.timeout.ms` is INVALID_TRANSACTION_TIMEOUT;
 * v3+ (KIP-360) a producer recovering its own id and epoch passes them.
 *
 * ACLs: IDEMPOTENT_WRITE on the cluster or WRITE on any topic (`RequestAccess.initProducerId`),
 * else CLUSTER_AUTHORIZATION_FAILED; with a transactional id, WRITE on it, else
 * TRANSACTIONAL_ID_AUTHORIZATION_FAILED. `transaction_timeout_ms` matters only to transactions.
 */
import { RillError } from "../../base/errors.ts";
import { api } from "../api.ts";
import { kafkaErrorCode } from "../error-codes.ts";
import { KafkaCode } from "../kdata-errors.ts";
import { int16, int32, int64, message, string } from "../schema.ts";
import { dataServices } from "../services.ts";
import { transactionsOf } from "./txn-common.ts";

export const InitProducerIdRequest = message("InitProducerIdRequest", "0-5", "2+", {
  transactionalId: string().nullable("0+"),
  transactionTimeoutMs: int32(),
  producerId: int64().since(3).default(-1n),
  producerEpoch: int16().since(3).default(-1),
});

export const InitProducerIdResponse = message("InitProducerIdResponse", "0-5", "2+", {
  throttleTimeMs: int32(),
  errorCode: int16(),
  producerId: int64().default(-1n),
  producerEpoch: int16(),
});

/** How long a node waits for the controller's answer. */
const FORWARD_TIMEOUT_MS = 30_000;

export const initProducerId = api(22, "0-5", InitProducerIdRequest, InitProducerIdResponse, async (req, ctx) => {
  const refused = (code: number) => ({ throttleTimeMs: 0, errorCode: code, producerId: -1n, producerEpoch: -1 });
  // Kafka's: an empty transactional id is a malformed request; any other is a transactional producer.
  if (req.transactionalId === "") return refused(KafkaCode.INVALID_REQUEST);
  const who = ctx.session.requester;
  try {
    if (req.transactionalId !== null) {
      ctx.deps.access.initProducerId(who, req.transactionalId);
      const r = await transactionsOf(ctx).initProducerId({
        transactionalId: req.transactionalId,
        transactionTimeoutMs: req.transactionTimeoutMs,
        producerId: req.producerId,
        producerEpoch: req.producerEpoch,
      });
      return { throttleTimeMs: 0, errorCode: 0, producerId: BigInt(r.producerId), producerEpoch: r.producerEpoch };
    }
    ctx.deps.access.initProducerId(who, "");
    const holds = req.producerId >= 0n;
    const r = await dataServices(ctx.deps).initProducerId(
      { transactionalId: "", producerId: holds ? req.producerId : undefined, producerEpoch: holds ? req.producerEpoch : 0 },
      who,
      FORWARD_TIMEOUT_MS,
    );
    return { throttleTimeMs: 0, errorCode: 0, producerId: BigInt(r.producerId), producerEpoch: r.producerEpoch };
  } catch (e) {
    return refused(kafkaErrorCode(RillError.from(e)));
  }
});
