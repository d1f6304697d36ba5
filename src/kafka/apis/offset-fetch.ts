/**
 * OffsetFetch (key 9): a group's committed offsets (GroupsService.fetchOffsets, gRPC's
 * FetchOffsets), of the named partitions or (topics null, v2+) of every partition with one;
 * offset -1 where none. v8+ asks for several groups at once. Topics the caller may not DESCRIBE
 * are left out, as over gRPC.
 */
import { api } from "../api.ts";
import type { CommittedOffsetOutput } from "../../service/groups.ts";
import { arrayOf, bool, int16, int32, int64, message, string, structs } from "../schema.ts";
import { errorCode, groupsOf, outcome } from "./group-common.ts";
import type { KafkaRequestContext } from "../api.ts";

const topicsRequest = () => structs({ name: string(), partitionIndexes: arrayOf(int32()) });

export const OffsetFetchRequest = message("OffsetFetchRequest", "0-9", "6+", {
  groupId: string().versions("0-7"),
  topics: topicsRequest().versions("0-7").nullable("2-7"),
  groups: structs({
    groupId: string(),
    memberId: string().since(9).nullable("9+").default(null),
    memberEpoch: int32().since(9).default(-1),
    topics: topicsRequest().nullable("8+"),
  }).since(8),
  requireStable: bool().since(7),
});

const partitionsResponse = () =>
  structs({
    partitionIndex: int32(),
    committedOffset: int64(),
    committedLeaderEpoch: int32().since(5).default(-1),
    metadata: string().nullable("0+"),
    errorCode: int16(),
  });

export const OffsetFetchResponse = message("OffsetFetchResponse", "0-9", "6+", {
  throttleTimeMs: int32().since(3),
  topics: structs({ name: string(), partitions: partitionsResponse() }).versions("0-7"),
  errorCode: int16().versions("2-7"),
  groups: structs({
    groupId: string(),
    topics: structs({ name: string(), partitions: partitionsResponse() }),
    errorCode: int16(),
  }).since(8),
});

type Topics = { readonly name: string; readonly partitionIndexes: readonly number[] }[] | null;

/** One group's answer: its topics, or the error (the topics then empty). */
async function fetchGroup(ctx: KafkaRequestContext, groupId: string, topics: Topics) {
  const wanted =
    topics === null
      ? null
      : topics.filter((t) => t.partitionIndexes.length > 0).map((t) => ({ topic: t.name, partitions: [...t.partitionIndexes] }));
  const r = await outcome(async (): Promise<CommittedOffsetOutput[]> => {
    if (wanted !== null && wanted.length === 0) return [];
    return ctx.deps.access.fetchOffsets(ctx.session.requester, groupId, () => groupsOf(ctx).fetchOffsets(groupId, wanted));
  });
  if (r.error !== null) return { errorCode: errorCode(r.error), topics: [] };
  const byTopic = new Map<string, CommittedOffsetOutput[]>();
  for (const o of r.value) {
    const list = byTopic.get(o.topic);
    if (list === undefined) byTopic.set(o.topic, [o]);
    else list.push(o);
  }
  return {
    errorCode: 0,
    topics: [...byTopic].map(([name, list]) => ({
      name,
      partitions: list.map((o) => ({
        partitionIndex: o.partition,
        committedOffset: BigInt(o.offset),
        committedLeaderEpoch: o.leaderEpoch,
        metadata: o.metadata,
        errorCode: 0,
      })),
    })),
  };
}

export const offsetFetch = api(9, "0-9", OffsetFetchRequest, OffsetFetchResponse, async (req, ctx) => {
  const v = ctx.apiVersion;
  if (v >= 8) {
    const groups = [];
    for (const g of req.groups) groups.push({ groupId: g.groupId, ...(await fetchGroup(ctx, g.groupId, g.topics)) });
    return { throttleTimeMs: 0, groups };
  }
  const res = await fetchGroup(ctx, req.groupId, req.topics);
  if (res.errorCode !== 0 && v < 2) {
    // No top-level error before v2: each asked partition carries it.
    return {
      topics: (req.topics ?? []).map((t) => ({
        name: t.name,
        partitions: t.partitionIndexes.map((p) => ({ partitionIndex: p, committedOffset: -1n, metadata: "", errorCode: res.errorCode })),
      })),
    };
  }
  return { throttleTimeMs: 0, topics: res.topics, errorCode: res.errorCode };
});
