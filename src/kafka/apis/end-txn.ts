/**
 * EndTxn (key 26), versions 0–4 (3+ flexible): commit or abort the producer's transaction, over
 * `TransactionsService.endTransaction` on its coordinator. The coordinator answers once the
 * decision (PrepareCommit/PrepareAbort) is replicated; the markers then reach every partition of
 * the transaction. TV1: the epoch is not bumped (`bumpEpoch: false`), so the producer keeps its
 * id and epoch. v5 (TV2: the new producer id and epoch in the answer) is described here but not
 * advertised — see txn-common.ts. ACLs: WRITE on the transactional id.
 */
import { RillError } from "../../base/errors.ts";
import { api } from "../api.ts";
import { kafkaErrorCode } from "../error-codes.ts";
import { bool, int16, int32, int64, message, string } from "../schema.ts";
import { authorizeTxnWrite, transactionsOf } from "./txn-common.ts";

export const EndTxnRequest = message("EndTxnRequest", "0-5", "3+", {
  transactionalId: string(),
  producerId: int64(),
  producerEpoch: int16(),
  committed: bool(),
});

export const EndTxnResponse = message("EndTxnResponse", "0-5", "3+", {
  throttleTimeMs: int32(),
  errorCode: int16(),
  producerId: int64().since(5).default(-1n),
  producerEpoch: int16().since(5).default(-1),
});

export const endTxn = api(26, "0-4", EndTxnRequest, EndTxnResponse, async (req, ctx) => {
  try {
    authorizeTxnWrite(ctx, req.transactionalId);
    const r = await transactionsOf(ctx).endTransaction({
      transactionalId: req.transactionalId,
      producerId: req.producerId,
      producerEpoch: req.producerEpoch,
      commit: req.committed,
      bumpEpoch: ctx.apiVersion >= 5,
    });
    return { throttleTimeMs: 0, errorCode: 0, producerId: BigInt(r.producerId), producerEpoch: r.producerEpoch };
  } catch (e) {
    return { throttleTimeMs: 0, errorCode: kafkaErrorCode(RillError.from(e)) };
  }
});
