/**
 * OffsetCommit (key 8): commits a group's offsets (GroupsService.commitOffsets, the call gRPC's
 * CommitOffsets makes): with a classic member id and generation, a KIP-848 member id and epoch,
 * or — generation -1, no member id, and always in v0 — without membership. A problem with the
 * whole commit is answered in every partition's error code.
 */
import type { RillError } from "../../base/errors.ts";
import { api } from "../api.ts";
import { int16, int32, int64, message, string, structs } from "../schema.ts";
import { errorCode, groupsOf, outcome } from "./group-common.ts";

export const OffsetCommitRequest = message("OffsetCommitRequest", "0-9", "8+", {
  groupId: string(),
  generationIdOrMemberEpoch: int32().since(1).default(-1),
  memberId: string().since(1),
  groupInstanceId: string().since(7).nullable("7+").default(null),
  retentionTimeMs: int64().versions("2-4").default(-1n),
  topics: structs({
    name: string(),
    partitions: structs({
      partitionIndex: int32(),
      committedOffset: int64(),
      committedLeaderEpoch: int32().since(6).default(-1),
      commitTimestamp: int64().versions("1").default(-1n),
      committedMetadata: string().nullable("0+"),
    }),
  }),
});

export const OffsetCommitResponse = message("OffsetCommitResponse", "0-9", "8+", {
  throttleTimeMs: int32().since(3),
  topics: structs({ name: string(), partitions: structs({ partitionIndex: int32(), errorCode: int16() }) }),
});

export const offsetCommit = api(8, "0-9", OffsetCommitRequest, OffsetCommitResponse, async (req, ctx) => {
  const offsets = req.topics.flatMap((t) =>
    t.partitions.map((p) => ({
      topic: t.name,
      partition: p.partitionIndex,
      offset: Number(p.committedOffset),
      metadata: p.committedMetadata ?? "",
      leaderEpoch: p.committedLeaderEpoch,
    })),
  );
  if (offsets.length === 0) return { throttleTimeMs: 0, topics: [] };
  const r = await outcome(() => {
    ctx.deps.access.commitOffsets(ctx.session.requester, req.groupId, offsets);
    return groupsOf(ctx).commitOffsets({
      groupId: req.groupId,
      memberId: req.memberId,
      memberEpoch: req.generationIdOrMemberEpoch,
      offsets,
    });
  });
  // Results come back in input order, one per offset.
  let i = 0;
  const next = (): RillError | null => (r.error !== null ? r.error : (r.value.offsets[i++]?.error ?? null));
  return {
    throttleTimeMs: 0,
    topics: req.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: errorCode(next()) })),
    })),
  };
});
