/**
 * DescribeTransactions (key 65), version 0 (flexible): the state of transactional ids this node
 * coordinates, over `TransactionsService.describeTransactions` — state by Kafka's name (Empty,
 * Ongoing, PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort, Dead), producer id and
 * epoch, timeout, start time and the partitions of the open transaction (kafka-transactions.sh
 * describe). An id coordinated elsewhere answers NOT_COORDINATOR, an unknown one
 * TRANSACTIONAL_ID_NOT_FOUND. ACLs: DESCRIBE on each id (else TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
 * partitions of topics the caller may not DESCRIBE are left out, as Kafka does.
 */
import { RillError, rillError } from "../../base/errors.ts";
import type { TransactionDescription } from "../../service/transactions.ts";
import { api } from "../api.ts";
import { kafkaErrorCode } from "../error-codes.ts";
import { arrayOf, int16, int32, int64, message, string, structs } from "../schema.ts";
import { mayDescribeTxn, transactionsOf } from "./txn-common.ts";

export const DescribeTransactionsRequest = message("DescribeTransactionsRequest", "0", "0+", {
  transactionalIds: arrayOf(string()),
});

export const DescribeTransactionsResponse = message("DescribeTransactionsResponse", "0", "0+", {
  throttleTimeMs: int32(),
  transactionStates: structs({
    errorCode: int16(),
    transactionalId: string(),
    transactionState: string(),
    transactionTimeoutMs: int32(),
    transactionStartTimeMs: int64(),
    producerId: int64(),
    producerEpoch: int16(),
    topics: structs({ topic: string(), partitions: arrayOf(int32()) }),
  }),
});

export const describeTransactions = api(65, "0", DescribeTransactionsRequest, DescribeTransactionsResponse, async (req, ctx) => {
  const failed = (transactionalId: string, e: RillError) => ({
    errorCode: kafkaErrorCode(e),
    transactionalId,
    transactionState: "",
    transactionTimeoutMs: 0,
    transactionStartTimeMs: -1n,
    producerId: -1n,
    producerEpoch: -1,
    topics: [],
  });
  const allowed = req.transactionalIds.filter((id) => mayDescribeTxn(ctx, id));
  const found = new Map<string, TransactionDescription>();
  let whole: RillError | null = null;
  if (allowed.length > 0) {
    try {
      for (const d of transactionsOf(ctx).describeTransactions(allowed)) found.set(d.transactionalId, d);
    } catch (e) {
      whole = RillError.from(e);
    }
  }
  const who = ctx.session.requester;
  const transactionStates = req.transactionalIds.map((id) => {
    if (!allowed.includes(id))
      return failed(id, rillError("TRANSACTIONAL_ID_AUTHORIZATION_FAILED", `transactional_ids: no DESCRIBE on "${id}"`));
    if (whole !== null) return failed(id, whole);
    const d = found.get(id);
    if (d === undefined) return failed(id, rillError("TRANSACTIONAL_ID_NOT_FOUND", `transactional_ids: "${id}" is not known`));
    if (d.error !== null) return failed(id, d.error);
    const byTopic = new Map<string, number[]>();
    for (const p of d.partitions) {
      if (!ctx.deps.access.access.allowed(who, "DESCRIBE", "TOPIC", p.topic)) continue;
      let list = byTopic.get(p.topic);
      if (list === undefined) byTopic.set(p.topic, (list = []));
      list.push(p.partition);
    }
    return {
      errorCode: 0,
      transactionalId: id,
      transactionState: d.state,
      transactionTimeoutMs: d.timeoutMs,
      transactionStartTimeMs: BigInt(d.startTimeMs),
      producerId: BigInt(d.producerId),
      producerEpoch: d.producerEpoch,
      topics: [...byTopic].map(([topic, partitions]) => ({ topic, partitions })),
    };
  });
  return { throttleTimeMs: 0, transactionStates };
});
