/**
 * ListTransactions (key 66), versions 0–1 (flexible): the transactional ids this node
 * coordinates, over `TransactionsService.listTransactions`, filtered by state (Kafka's names; a
 * name that is not one is echoed in `unknown_state_filters` and matches nothing), by producer id
 * and (v1, KIP-994) by how long the transaction has been open — kafka-transactions.sh list and
 * find-hanging ask every broker. Only ids the caller may DESCRIBE are listed (Kafka's). v2
 * (KIP-1152's id pattern) is not served.
 */
import { RillError } from "../../base/errors.ts";
import { TXN_STATES } from "../../service/transactions.ts";
import { api } from "../api.ts";
import { kafkaErrorCode } from "../error-codes.ts";
import { arrayOf, int16, int32, int64, message, string, structs } from "../schema.ts";
import { transactionsOf } from "./txn-common.ts";

export const ListTransactionsRequest = message("ListTransactionsRequest", "0-1", "0+", {
  stateFilters: arrayOf(string()),
  producerIdFilters: arrayOf(int64()),
  durationFilter: int64().since(1).default(-1n),
});

export const ListTransactionsResponse = message("ListTransactionsResponse", "0-1", "0+", {
  throttleTimeMs: int32(),
  errorCode: int16(),
  unknownStateFilters: arrayOf(string()),
  transactionStates: structs({ transactionalId: string(), producerId: int64(), transactionState: string() }),
});

const KNOWN_STATES: ReadonlySet<string> = new Set(TXN_STATES);

export const listTransactions = api(66, "0-1", ListTransactionsRequest, ListTransactionsResponse, async (req, ctx) => {
  const unknownStateFilters = req.stateFilters.filter((s) => !KNOWN_STATES.has(s));
  const states = req.stateFilters.filter((s) => KNOWN_STATES.has(s));
  // Only unknown states asked for: nothing can match.
  if (req.stateFilters.length > 0 && states.length === 0)
    return { throttleTimeMs: 0, errorCode: 0, unknownStateFilters, transactionStates: [] };
  try {
    const listed = transactionsOf(ctx).listTransactions({
      states,
      producerIds: req.producerIdFilters,
      durationFilterMs: Number(req.durationFilter),
    });
    const transactionStates = ctx.deps.access
      .listTransactions(ctx.session.requester, listed)
      .map((t) => ({ transactionalId: t.transactionalId, producerId: BigInt(t.producerId), transactionState: t.state }));
    return { throttleTimeMs: 0, errorCode: 0, unknownStateFilters, transactionStates };
  } catch (e) {
    return { throttleTimeMs: 0, errorCode: kafkaErrorCode(RillError.from(e)), unknownStateFilters, transactionStates: [] };
  }
});
