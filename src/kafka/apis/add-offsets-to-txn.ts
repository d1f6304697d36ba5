/**
 * AddOffsetsToTxn (key 25), versions 0–4 (3+ flexible): a transactional producer about to send a
 * group's offsets with its transaction (sendOffsetsToTransaction) makes the group's
 * `__consumer_offsets` partition part of it, over `TransactionsService.addOffsets` on the
 * transaction's coordinator; the offsets themselves then go to the group's coordinator with
 * TxnOffsetCommit. ACLs: WRITE on the transactional id, READ on the group (Kafka's).
 */
import { RillError } from "../../base/errors.ts";
import { api } from "../api.ts";
import { kafkaErrorCode } from "../error-codes.ts";
import { int16, int32, int64, message, string } from "../schema.ts";
import { authorizeTxnWrite, transactionsOf } from "./txn-common.ts";

export const AddOffsetsToTxnRequest = message("AddOffsetsToTxnRequest", "0-4", "3+", {
  transactionalId: string(),
  producerId: int64(),
  producerEpoch: int16(),
  groupId: string(),
});

export const AddOffsetsToTxnResponse = message("AddOffsetsToTxnResponse", "0-4", "3+", {
  throttleTimeMs: int32(),
  errorCode: int16(),
});

export const addOffsetsToTxn = api(25, "0-4", AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, async (req, ctx) => {
  try {
    authorizeTxnWrite(ctx, req.transactionalId);
    ctx.deps.access.heartbeat(ctx.session.requester, req.groupId, null);
    await transactionsOf(ctx).addOffsets({
      transactionalId: req.transactionalId,
      producerId: req.producerId,
      producerEpoch: req.producerEpoch,
      groupId: req.groupId,
    });
    return { throttleTimeMs: 0, errorCode: 0 };
  } catch (e) {
    return { throttleTimeMs: 0, errorCode: kafkaErrorCode(RillError.from(e)) };
  }
});
