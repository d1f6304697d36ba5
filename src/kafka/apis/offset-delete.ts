/**
 * OffsetDelete (key 47): deletes a group's committed offsets of some partitions
 * (GroupsService.deleteOffsets, gRPC's DeleteOffsets): GROUP_SUBSCRIBED_TO_TOPIC for a topic a
 * member reads, GROUP_ID_NOT_FOUND for an unknown group (top-level), per partition otherwise.
 */
import { api } from "../api.ts";
import { int16, int32, message, string, structs } from "../schema.ts";
import { errorCode, groupsOf, outcome } from "./group-common.ts";

export const OffsetDeleteRequest = message("OffsetDeleteRequest", "0", "none", {
  groupId: string(),
  topics: structs({ name: string(), partitions: structs({ partitionIndex: int32() }) }),
});

export const OffsetDeleteResponse = message("OffsetDeleteResponse", "0", "none", {
  errorCode: int16(),
  throttleTimeMs: int32(),
  topics: structs({ name: string(), partitions: structs({ partitionIndex: int32(), errorCode: int16() }) }),
});

export const offsetDelete = api(47, "0", OffsetDeleteRequest, OffsetDeleteResponse, async (req, ctx) => {
  const partitions = req.topics.map((t) => ({ topic: t.name, partitions: t.partitions.map((p) => p.partitionIndex) }));
  if (partitions.every((t) => t.partitions.length === 0)) return { errorCode: 0, throttleTimeMs: 0, topics: [] };
  const r = await outcome(() => {
    ctx.deps.access.deleteOffsets(ctx.session.requester, req.groupId, partitions);
    return groupsOf(ctx).deleteOffsets(
      req.groupId,
      partitions.filter((t) => t.partitions.length > 0),
    );
  });
  if (r.error !== null) return { errorCode: errorCode(r.error), throttleTimeMs: 0, topics: [] };
  const results = new Map(r.value.map((o) => [`${o.topic}\u0000${o.partition}`, o.error]));
  return {
    errorCode: 0,
    throttleTimeMs: 0,
    topics: req.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => ({
        partitionIndex: p.partitionIndex,
        errorCode: errorCode(results.get(`${t.name}\u0000${p.partitionIndex}`)),
      })),
    })),
  };
});
