/**
 * AddPartitionsToTxn (key 24), versions 0–5 (3+ flexible): a transactional producer names the
 * partitions it is about to write before its first batch to each (TV1), over
 * `TransactionsService.addPartitions` on the transaction's coordinator (the node FindCoordinator
 * key type 1 named; any other answers NOT_COORDINATOR and the client looks again).
 *
 * - v0–3 (librdkafka 2.0 and kafkajs send v0–1): one transaction, its topics at the top level.
 *   As Kafka does, a partition that cannot join (an unknown topic or partition, a topic the
 *   caller may not WRITE) answers its own error and every other partition of the request
 *   OPERATION_NOT_ATTEMPTED (55): nothing joins. Otherwise each partition answers the
 *   coordinator's outcome for it.
 * - v4–5 (@platformatic/kafka sends v5; in Kafka, brokers' KIP-890 verification): several
 *   transactions, each with `verify_only` — true only checks that the partitions have joined
 *   (INVALID_TXN_STATE for one that has not) and adds nothing. Answered per transaction; the
 *   top-level error is for a request that could not be read at all.
 * - ACLs: WRITE on the transactional id (else TRANSACTIONAL_ID_AUTHORIZATION_FAILED for all its
 *   partitions) and WRITE on each topic (TOPIC_AUTHORIZATION_FAILED).
 */
import { RillError, rillError } from "../../base/errors.ts";
import { api, type KafkaRequestContext } from "../api.ts";
import { kafkaErrorCode } from "../error-codes.ts";
import { arrayOf, bool, int16, int32, int64, message, string, structs } from "../schema.ts";
import { authorizeTxnWrite, transactionsOf } from "./txn-common.ts";

const topicsField = () => structs({ name: string(), partitions: arrayOf(int32()) });
const topicResults = () =>
  structs({ name: string(), resultsByPartition: structs({ partitionIndex: int32(), partitionErrorCode: int16() }) });

export const AddPartitionsToTxnRequest = message("AddPartitionsToTxnRequest", "0-5", "3+", {
  transactions: structs({
    transactionalId: string(),
    producerId: int64(),
    producerEpoch: int16(),
    verifyOnly: bool(),
    topics: topicsField(),
  }).since(4),
  v3AndBelowTransactionalId: string().versions("0-3"),
  v3AndBelowProducerId: int64().versions("0-3"),
  v3AndBelowProducerEpoch: int16().versions("0-3"),
  v3AndBelowTopics: topicsField().versions("0-3"),
});

export const AddPartitionsToTxnResponse = message("AddPartitionsToTxnResponse", "0-5", "3+", {
  throttleTimeMs: int32(),
  errorCode: int16().since(4),
  resultsByTransaction: structs({ transactionalId: string(), topicResults: topicResults() }).since(4),
  resultsByTopicV3AndBelow: topicResults().versions("0-3"),
});

/** OPERATION_NOT_ATTEMPTED: another partition of the request failed, so this one was not added. */
const OPERATION_NOT_ATTEMPTED = 55;

interface OneTxn {
  readonly transactionalId: string;
  readonly producerId: bigint;
  readonly producerEpoch: number;
  readonly verifyOnly: boolean;
  readonly topics: readonly { readonly name: string; readonly partitions: readonly number[] }[];
}

type TopicResult = { name: string; resultsByPartition: { partitionIndex: number; partitionErrorCode: number }[] };

/** One transaction's partitions: joined (or verified) through the coordinator, each with its code. */
async function addOne(ctx: KafkaRequestContext, t: OneTxn): Promise<TopicResult[]> {
  const codes = new Map<string, number>();
  const key = (topic: string, p: number) => `${topic}\u0000${p}`;
  const all = t.topics.flatMap((x) => x.partitions.map((partition) => ({ topic: x.name, partition })));
  const answer = (): TopicResult[] =>
    t.topics.map((x) => ({
      name: x.name,
      resultsByPartition: x.partitions.map((p) => ({ partitionIndex: p, partitionErrorCode: codes.get(key(x.name, p)) ?? 0 })),
    }));
  const everyone = (code: number) => {
    for (const p of all) codes.set(key(p.topic, p.partition), code);
    return answer();
  };
  try {
    authorizeTxnWrite(ctx, t.transactionalId);
  } catch (e) {
    return everyone(kafkaErrorCode(RillError.from(e)));
  }
  // What the listener knows without the coordinator: the topic exists with that partition, WRITE on it.
  const image = ctx.deps.services.replicas.image;
  let refused = false;
  for (const p of all) {
    let err: RillError | null = null;
    const topic = image.topics.get(p.topic);
    if (topic === undefined || p.partition < 0 || p.partition >= topic.partitions.length) {
      err = rillError("UNKNOWN_TOPIC_OR_PARTITION", `topics: ${p.topic}-${p.partition} does not exist`);
    } else {
      try {
        ctx.deps.access.produce(ctx.session.requester, p.topic);
      } catch (e) {
        err = RillError.from(e);
      }
    }
    if (err !== null) {
      codes.set(key(p.topic, p.partition), kafkaErrorCode(err));
      refused = true;
    }
  }
  if (refused) {
    for (const p of all) if (!codes.has(key(p.topic, p.partition))) codes.set(key(p.topic, p.partition), OPERATION_NOT_ATTEMPTED);
    return answer();
  }
  try {
    const results = await transactionsOf(ctx).addPartitions({
      transactionalId: t.transactionalId,
      producerId: t.producerId,
      producerEpoch: t.producerEpoch,
      partitions: all,
      verifyOnly: t.verifyOnly,
    });
    for (const r of results) codes.set(key(r.topic, r.partition), kafkaErrorCode(r.error));
    return answer();
  } catch (e) {
    return everyone(kafkaErrorCode(RillError.from(e)));
  }
}

export const addPartitionsToTxn = api(24, "0-5", AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, async (req, ctx) => {
  if (ctx.apiVersion <= 3) {
    const results = await addOne(ctx, {
      transactionalId: req.v3AndBelowTransactionalId,
      producerId: req.v3AndBelowProducerId,
      producerEpoch: req.v3AndBelowProducerEpoch,
      verifyOnly: false,
      topics: req.v3AndBelowTopics,
    });
    return { throttleTimeMs: 0, resultsByTopicV3AndBelow: results };
  }
  const resultsByTransaction = [];
  for (const t of req.transactions) resultsByTransaction.push({ transactionalId: t.transactionalId, topicResults: await addOne(ctx, t) });
  return { throttleTimeMs: 0, errorCode: 0, resultsByTransaction };
});
