/**
 * AdminService's transaction calls over gRPC (issue 17): ListTransactions asks every live broker
 * (each answers the ids it coordinates), DescribeTransactions and AbortTransaction go to each
 * id's coordinator (forwarded, for the same caller); a forwarded call answers from this broker.
 */
import { create } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { RillError, rillError } from "../base/errors.ts";
import {
  type AbortTransactionRequest,
  AbortTransactionResponseSchema,
  type AbortTransactionResponse,
  AdminService,
  type DescribeTransactionsRequest,
  type DescribeTransactionsResponse,
  DescribeTransactionsResponseSchema,
  type DescribeTransactionsResponse_Transaction,
  type ListTransactionsRequest,
  type ListTransactionsResponse,
  ListTransactionsResponseSchema,
  type ListTransactionsResponse_Transaction,
} from "../gen/rill/v1/admin_service_pb.ts";
import type { ReplicaManager } from "../replication/replica-manager.ts";
import type { RequestAccess } from "../service/authorize.ts";
import type { TransactionDescription } from "../service/transactions.ts";
import type { TxnService } from "../service/txn-service.ts";
import { requesterOf } from "./call-context.ts";
import { toErrorDetail, unary } from "./errors.ts";
import { isForwarded, LeaderClients } from "./forward.ts";
import type { InternalClients } from "./internal-clients.ts";

const TXN_ADMIN_TIMEOUT_MS = 15_000;

type AnyCall = grpc.ServerUnaryCall<unknown, unknown>;

/** The three handlers (txn null: transactions not served, every call INVALID_REQUEST). */
export function txnAdminHandlers(rm: ReplicaManager, txn: TxnService | null, access: RequestAccess, clients?: InternalClients) {
  const peers = clients ? new LeaderClients(AdminService, rm, clients) : null;
  const need = (): TxnService => {
    if (txn === null) throw rillError("INVALID_REQUEST", "transactions are not served by this broker");
    return txn;
  };
  return {
    listTransactions: unary(async (req: ListTransactionsRequest, call): Promise<ListTransactionsResponse> => {
      const t = need();
      const who = requesterOf(call);
      const local = t
        .listTransactions({ states: req.states, producerIds: req.producerIds, durationFilterMs: Number(req.durationFilterMs) })
        .map((x) => ({ ...x, producerId: BigInt(x.producerId), durationMs: BigInt(x.durationMs) }));
      const rows: Omit<ListTransactionsResponse_Transaction, "$typeName" | "$unknown">[] = [...local];
      const errors = [];
      if (!isForwarded(call as AnyCall) && peers !== null) {
        const others = [...rm.image.brokers.values()].filter((b) => b.nodeId !== t.nodeId && !b.fenced);
        const answers = await Promise.all(
          others.map((b) =>
            peers
              .call<ListTransactionsResponse>(b.nodeId, "listTransactions", req, TXN_ADMIN_TIMEOUT_MS, who)
              .catch((e: unknown) => RillError.from(e)),
          ),
        );
        for (const a of answers) {
          if (a instanceof RillError) errors.push(toErrorDetail(a));
          else rows.push(...a.transactions);
        }
      }
      rows.sort((a, b) => (a.transactionalId < b.transactionalId ? -1 : a.transactionalId > b.transactionalId ? 1 : 0));
      return create(ListTransactionsResponseSchema, { transactions: access.listTransactions(who, rows), errors });
    }),
    describeTransactions: unary(async (req: DescribeTransactionsRequest, call): Promise<DescribeTransactionsResponse> => {
      const t = need();
      const who = requesterOf(call);
      access.describeTransactions(who, req.transactionalIds);
      const forwarded = isForwarded(call as AnyCall);
      const out = await Promise.all(
        req.transactionalIds.map(async (id): Promise<DescribeTransactionsResponse_Transaction> => {
          const local = t.describeTransactions([id])[0]!;
          const remote = !forwarded && peers !== null && local.error?.kind.name === "NOT_COORDINATOR";
          if (!remote) return toProto(local);
          try {
            const r = await peers.call<DescribeTransactionsResponse>(
              t.coordinatorOf(id),
              "describeTransactions",
              { ...req, transactionalIds: [id] },
              TXN_ADMIN_TIMEOUT_MS,
              who,
            );
            return r.transactions[0]!;
          } catch (e) {
            return toProto({ ...local, error: RillError.from(e) });
          }
        }),
      );
      return create(DescribeTransactionsResponseSchema, { transactions: out });
    }),
    abortTransaction: unary(async (req: AbortTransactionRequest, call): Promise<AbortTransactionResponse> => {
      const t = need();
      const who = requesterOf(call);
      const hasId = req.transactionalId !== "";
      if (hasId === (req.partition !== undefined))
        throw rillError("INVALID_REQUEST", "transactional_id, partition: give exactly one of the two");
      if (hasId) {
        access.abortTransaction(who, { transactionalId: req.transactionalId });
        if (!t.isLocal(req.transactionalId) && !isForwarded(call as AnyCall) && peers !== null) {
          await peers.call(t.coordinatorOf(req.transactionalId), "abortTransaction", req, TXN_ADMIN_TIMEOUT_MS, who);
          return create(AbortTransactionResponseSchema, {});
        }
        await t.abortTransaction({ kind: "transactional-id", transactionalId: req.transactionalId });
        return create(AbortTransactionResponseSchema, {});
      }
      const p = req.partition!;
      access.abortTransaction(who, { topic: p.topic });
      const leader = rm.image.topics.get(p.topic)?.partitions[p.partition]?.leader;
      if (leader !== undefined && leader !== t.nodeId && leader >= 0 && !isForwarded(call as AnyCall) && peers !== null) {
        await peers.call(leader, "abortTransaction", req, TXN_ADMIN_TIMEOUT_MS, who);
        return create(AbortTransactionResponseSchema, {});
      }
      await t.abortTransaction({
        kind: "partition",
        topic: p.topic,
        partition: p.partition,
        producerId: p.producerId,
        producerEpoch: p.producerEpoch,
        coordinatorEpoch: p.coordinatorEpoch,
      });
      return create(AbortTransactionResponseSchema, {});
    }),
  };
}

function toProto(d: TransactionDescription): DescribeTransactionsResponse_Transaction {
  return create(DescribeTransactionsResponseSchema, {
    transactions: [
      {
        transactionalId: d.transactionalId,
        ...(d.error ? { error: toErrorDetail(d.error) } : {}),
        state: d.error ? "" : d.state,
        producerId: BigInt(d.producerId),
        producerEpoch: d.producerEpoch,
        timeoutMs: d.timeoutMs,
        startTimeMs: BigInt(d.startTimeMs),
        partitions: d.partitions.map((p) => ({ topic: p.topic, partition: p.partition })),
        groups: [...d.groups],
        coordinatorId: d.coordinatorId,
      },
    ],
  }).transactions[0]!;
}
