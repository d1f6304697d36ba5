/**
 * OffsetForLeaderEpoch (key 23), versions 2-4 (v4 flexible): where a leader epoch ends in a
 * partition's log, over `src/service/leader-epoch.ts` — the call gRPC's
 * ReplicationService.OffsetsForLeaderEpoch answers followers with. Kafka consumers (librdkafka,
 * @platformatic/kafka) send it after a leader change to check that the position they hold, read
 * in some epoch, was not truncated away on the new leader: the answer is the largest epoch at or
 * below the asked one and the offset where it ends (the log end for the newest epoch), or -1 and
 * -1 when no epoch that old is known.
 *
 * Per partition: DESCRIBE on the topic (Kafka's rule for consumers; else
 * TOPIC_AUTHORIZATION_FAILED), the partition exists and is led here (UNKNOWN_TOPIC_OR_PARTITION,
 * NOT_LEADER_OR_FOLLOWER), and the caller's current leader epoch, when given, is this leader's
 * (FENCED_LEADER_EPOCH when older, UNKNOWN_LEADER_EPOCH when newer). Like Fetch, a request from
 * a Kafka follower (replica id >= 0) is refused: Rill's replicas use gRPC.
 */
import { type RillError, rillError } from "../../base/errors.ts";
import { type EpochEnd, type LeaderEpochQuery, offsetsForLeaderEpoch as serviceOffsets } from "../../service/leader-epoch.ts";
import { api } from "../api.ts";
import { int16, int32, int64, message, string, structs } from "../schema.ts";
import { kafkaErrorCode } from "../error-codes.ts";

export const OffsetForLeaderEpochRequest = message("OffsetForLeaderEpochRequest", "2-4", "4+", {
  replicaId: int32().since(3).default(-2),
  topics: structs({
    topic: string(),
    partitions: structs({
      partition: int32(),
      currentLeaderEpoch: int32().since(2).default(-1),
      leaderEpoch: int32(),
    }),
  }),
});

export const OffsetForLeaderEpochResponse = message("OffsetForLeaderEpochResponse", "2-4", "4+", {
  throttleTimeMs: int32().since(2),
  topics: structs({
    topic: string(),
    partitions: structs({
      errorCode: int16(),
      partition: int32(),
      leaderEpoch: int32().since(1).default(-1),
      endOffset: int64(),
    }),
  }),
});

export const offsetForLeaderEpoch = api(23, "2-4", OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, async (req, ctx) => {
  const queries: LeaderEpochQuery[] = req.topics.flatMap((t) =>
    t.partitions.map((p) => ({
      topic: t.topic,
      partition: p.partition,
      leaderEpoch: p.leaderEpoch,
      currentLeaderEpoch: p.currentLeaderEpoch,
    })),
  );
  let ends: EpochEnd[];
  if (req.replicaId >= 0) {
    const e = rillError("INVALID_REQUEST", `replica_id: ${req.replicaId}: Rill's replicas replicate over gRPC`);
    ends = queries.map((q) => failed(q, e));
  } else {
    const split = ctx.deps.access.perTopic(ctx.session.requester, "FetchService/ListOffsets", queries, failed);
    ends = split.merge(split.allowed.length > 0 ? serviceOffsets(ctx.deps.services.replicas, split.allowed) : []);
  }
  let next = 0;
  return {
    throttleTimeMs: 0,
    topics: req.topics.map((t) => ({
      topic: t.topic,
      partitions: t.partitions.map(() => {
        const e = ends[next++]!;
        return {
          errorCode: kafkaErrorCode(e.error),
          partition: e.partition,
          leaderEpoch: e.epoch,
          endOffset: BigInt(e.endOffset),
        };
      }),
    })),
  };
});

function failed(q: LeaderEpochQuery, error: RillError): EpochEnd {
  return { topic: q.topic, partition: q.partition, epoch: -1, endOffset: -1, error };
}
