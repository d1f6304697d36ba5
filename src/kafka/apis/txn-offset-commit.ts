/**
 * TxnOffsetCommit (key 28), versions 0–4 (3+ flexible; v5 is TV2's, not advertised — see
 * txn-common.ts): a group's offsets sent with a transaction, to the GROUP's coordinator, over
 * `TransactionsService.txnOffsetCommit`. They stay pending in the group coordinator until the
 * transaction's marker commits or aborts them. v3 adds the member id, generation and group
 * instance id (KIP-447): a zombie of an older generation cannot commit (ILLEGAL_GENERATION,
 * UNKNOWN_MEMBER_ID); v0–2 commit without membership. ACLs: WRITE on the transactional id, READ
 * on the group and on each topic (Kafka's). A problem with the whole commit is answered in every
 * partition's error code.
 */
import { RillError } from "../../base/errors.ts";
import type { CommitInput } from "../../service/groups.ts";
import { api } from "../api.ts";
import { kafkaErrorCode } from "../error-codes.ts";
import { int16, int32, int64, message, string, structs } from "../schema.ts";
import { authorizeTxnWrite, transactionsOf } from "./txn-common.ts";

export const TxnOffsetCommitRequest = message("TxnOffsetCommitRequest", "0-5", "3+", {
  transactionalId: string(),
  groupId: string(),
  producerId: int64(),
  producerEpoch: int16(),
  generationId: int32().since(3).default(-1),
  memberId: string().since(3),
  groupInstanceId: string().since(3).nullable("3+").default(null),
  topics: structs({
    name: string(),
    partitions: structs({
      partitionIndex: int32(),
      committedOffset: int64(),
      committedLeaderEpoch: int32().since(2).default(-1),
      committedMetadata: string().nullable("0+"),
    }),
  }),
});

export const TxnOffsetCommitResponse = message("TxnOffsetCommitResponse", "0-5", "3+", {
  throttleTimeMs: int32(),
  topics: structs({ name: string(), partitions: structs({ partitionIndex: int32(), errorCode: int16() }) }),
});

export const txnOffsetCommit = api(28, "0-4", TxnOffsetCommitRequest, TxnOffsetCommitResponse, async (req, ctx) => {
  const offsets: CommitInput[] = req.topics.flatMap((t) =>
    t.partitions.map((p) => ({
      topic: t.name,
      partition: p.partitionIndex,
      offset: Number(p.committedOffset),
      metadata: p.committedMetadata ?? "",
      leaderEpoch: p.committedLeaderEpoch,
    })),
  );
  if (offsets.length === 0) return { throttleTimeMs: 0, topics: [] };
  let whole: RillError | null = null;
  let results: readonly { readonly topic: string; readonly partition: number; readonly error: RillError | null }[] = [];
  try {
    authorizeTxnWrite(ctx, req.transactionalId);
    ctx.deps.access.commitOffsets(ctx.session.requester, req.groupId, offsets);
    results = await transactionsOf(ctx).txnOffsetCommit({
      transactionalId: req.transactionalId,
      producerId: req.producerId,
      producerEpoch: req.producerEpoch,
      groupId: req.groupId,
      // v0–2, and a v3 commit without a member id: no membership to check.
      memberId: ctx.apiVersion >= 3 && req.memberId !== "" ? req.memberId : null,
      generationOrEpoch: ctx.apiVersion >= 3 ? req.generationId : -1,
      offsets,
    });
  } catch (e) {
    whole = RillError.from(e);
  }
  // Results come back in input order, one per offset.
  let i = 0;
  const next = (): RillError | null => (whole !== null ? whole : (results[i++]?.error ?? null));
  return {
    throttleTimeMs: 0,
    topics: req.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: kafkaErrorCode(next()) })),
    })),
  };
});
