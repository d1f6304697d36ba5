/**
 * What the transaction APIs share (AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn,
 * DescribeTransactions, ListTransactions, FindCoordinator's key type 1, InitProducerId with a
 * transactional id, Produce with one): the listener's `TransactionsService` (src/service), the
 * authorization of a transactional id, and how a Kafka client's transaction version is chosen.
 *
 * Transaction version: the Kafka listener speaks TV1 with KIP-890 part 1 — a client adds its
 * partitions with AddPartitionsToTxn and the partition leader verifies each transactional batch
 * against the coordinator (`TxnProduceGate`, mode "verify"). TV2 (KIP-890 part 2: Produce v12,
 * EndTxn v5, TxnOffsetCommit v5 and the `transaction.version` feature at level 2 in
 * ApiVersions) is not advertised: none of the Kafka clients here (librdkafka 2.0, kafkajs,
 * @platformatic/kafka 1.x) speaks it, and a client that bumps no epoch per transaction must not
 * be handed one (its next transaction would be fenced). gRPC clients get TV2.
 */
import { rillError } from "../../base/errors.ts";
import type { KafkaRequestContext } from "../api.ts";
import type { TransactionsService } from "../../service/transactions.ts";

/** The transaction service of this listener; COORDINATOR_NOT_AVAILABLE when this broker runs none. */
export function transactionsOf(ctx: KafkaRequestContext): TransactionsService {
  const s = ctx.deps.services.transactions?.service;
  if (s === undefined) throw rillError("COORDINATOR_NOT_AVAILABLE", "transactions: this broker runs no transaction coordinator");
  return s;
}

/** Kafka's: WRITE on the TRANSACTIONAL_ID (else TRANSACTIONAL_ID_AUTHORIZATION_FAILED); an empty id is a malformed request. */
export function authorizeTxnWrite(ctx: KafkaRequestContext, transactionalId: string): void {
  if (transactionalId === "") throw rillError("INVALID_REQUEST", "transactional_id: empty");
  ctx.deps.access.initProducerId(ctx.session.requester, transactionalId);
}

/** Whether the caller may DESCRIBE the transactional id (Kafka's DescribeTransactions, ListTransactions, FindCoordinator). */
export function mayDescribeTxn(ctx: KafkaRequestContext, transactionalId: string): boolean {
  return ctx.deps.access.access.allowed(ctx.session.requester, "DESCRIBE", "TRANSACTIONAL_ID", transactionalId);
}
