/**
 * DeleteRecords (key 21), v0-2 (v2 flexible): the service's DeleteRecords
 * (src/service/delete-records.ts) — each partition's log start offset raised by its leader
 * (offset -1: the high watermark), a partition led by another broker passed to it over the
 * internal listener as gRPC's AdminService.DeleteRecords does (`grpcDeleteRecordsForwarder`).
 * Each topic needs DELETE (src/service/authorize.ts); a denied topic's partitions are answered
 * TOPIC_AUTHORIZATION_FAILED and the others are deleted. A request that cannot be carried out at
 * all (a partition named twice) is every partition's error.
 */
import { deleteRecordsForwarder } from "../../rpc/admin-service.ts";
import type { Requester } from "../../security/requester.ts";
import {
  type DeleteRecordsForwarder,
  type DeleteRecordsPartitionInput,
  type DeleteRecordsPartitionResult,
  deleteRecords,
} from "../../service/delete-records.ts";
import { api } from "../api.ts";
import { answerOrError, authorizeEach, errorCode, kafkaAdmin, onAllowed } from "../admin.ts";
import type { KafkaDeps } from "../deps.ts";
import { int16, int32, int64, message, string, structs } from "../schema.ts";

export const DeleteRecordsRequest = message("DeleteRecordsRequest", "0-2", "2+", {
  topics: structs({ name: string(), partitions: structs({ partitionIndex: int32(), offset: int64() }) }),
  timeoutMs: int32(),
});

export const DeleteRecordsResponse = message("DeleteRecordsResponse", "0-2", "2+", {
  throttleTimeMs: int32(),
  topics: structs({ name: string(), partitions: structs({ partitionIndex: int32(), lowWatermark: int64(), errorCode: int16() }) }),
});

const forwarders = new WeakMap<KafkaDeps, (requester: Requester) => DeleteRecordsForwarder>();

/**
 * The way to the partitions' leaders for `requester` (AdminService.DeleteRecords on their
 * internal listeners); null without clients of other nodes (every partition is answered here).
 */
function forwarderFor(deps: KafkaDeps, requester: Requester): DeleteRecordsForwarder | null {
  if (deps.clients === undefined) return null;
  let f = forwarders.get(deps);
  if (f === undefined) forwarders.set(deps, (f = deleteRecordsForwarder(deps.services.replicas, deps.clients)));
  return f(requester);
}

export const deleteRecordsApi = api(21, "0-2", DeleteRecordsRequest, DeleteRecordsResponse, async (req, ctx) => {
  const { access } = kafkaAdmin(ctx.deps);
  const who = ctx.session.requester;
  const partitions: DeleteRecordsPartitionInput[] = req.topics.flatMap((t) =>
    t.partitions.map((p) => ({ topic: t.name, partition: p.partitionIndex, offset: p.offset })),
  );
  const refusals = authorizeEach(partitions, (p) => access.deleteRecords(who, { partitions: [p] }));
  const failed = (p: DeleteRecordsPartitionInput, error: DeleteRecordsPartitionResult["error"]): DeleteRecordsPartitionResult => ({
    topic: p.topic,
    partition: p.partition,
    lowWatermark: -1,
    error,
  });
  const results = await onAllowed(
    partitions,
    refusals,
    (allowed) =>
      answerOrError(
        async () =>
          (await deleteRecords(ctx.deps.services.replicas, { partitions: allowed }, { forwarded: false }, forwarderFor(ctx.deps, who)))
            .partitions,
        (error) => allowed.map((p) => failed(p, error)),
      ),
    failed,
  );
  let next = 0;
  return {
    throttleTimeMs: 0,
    topics: req.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => {
        const r = results[next++] as DeleteRecordsPartitionResult;
        return { partitionIndex: p.partitionIndex, lowWatermark: BigInt(r.lowWatermark), errorCode: errorCode(r.error) };
      }),
    })),
  };
});
