/**
 * Consumer groups over the JSON API, cluster-wide: the groups of every broker (each lists the
 * groups it coordinates: this node's own answer, the others asked over GroupService on the
 * caller's behalf), each with its total lag; one group described by its coordinator (members,
 * their assignments, committed offsets and lag per partition) with its lag history. The lag of
 * a partition the coordinator does not lead is measured against the high watermark its leader
 * reports.
 *
 * ACLs as gRPC's ListGroups and DescribeGroups: a listing shows the groups the caller may
 * DESCRIBE (every group with DESCRIBE on the cluster); describing needs DESCRIBE on the group.
 * Other brokers apply the same rules to the caller, whose principal travels with the request.
 */
import { RillError, rillError } from "../../base/errors.ts";
import { OFFSETS_TOPIC, offsetsPartitionFor } from "../../coordinator/group-runtime.ts";
import { GROUPS_PER_REQUEST_MAX } from "../../coordinator/limits.ts";
import type { PartitionRef } from "../../metadata/controller.ts";
import type { Requester } from "../../security/requester.ts";
import type { DescribeGroupResult, GroupListingOutput, GroupsService, PartitionLagOutput } from "../../service/groups.ts";
import type { ApiCall, ApiContext } from "./deps.ts";
import type { GroupLag, LagSource } from "./traffic.ts";

/** Sum of the partitions' lag that is known (a partition without a commit has none). */
function totalLag(d: DescribeGroupResult | undefined): number | null {
  if (!d?.group) return null;
  return d.group.offsets.reduce((sum, o) => sum + Math.max(0, o.lag), 0);
}

/** Describes `ids` in requests of at most GROUPS_PER_REQUEST_MAX groups. */
function describeAll(groups: GroupsService, ids: readonly string[]): DescribeGroupResult[] {
  const out: DescribeGroupResult[] = [];
  for (let i = 0; i < ids.length; i += GROUPS_PER_REQUEST_MAX) out.push(...groups.describeGroups(ids.slice(i, i + GROUPS_PER_REQUEST_MAX)));
  return out;
}

/** The brokers other than this one that may coordinate groups (registered, not fenced). */
function otherBrokers(ctx: ApiContext): number[] {
  const me = ctx.rm.nodeIdOf();
  return [...ctx.rm.image.brokers.values()].filter((b) => b.nodeId !== me && !b.fenced && b.roles.includes("broker")).map((b) => b.nodeId);
}

/** One broker's groups, described there; its failure is reported, not thrown. */
async function groupsOf(
  ctx: ApiContext,
  who: Requester,
  nodeId: number,
): Promise<{ listed: GroupListingOutput[]; described: DescribeGroupResult[] }> {
  const listed = await ctx.ports.groups.list(nodeId, who);
  const ids = listed.map((g) => g.groupId);
  const described: DescribeGroupResult[] = [];
  for (let i = 0; i < ids.length; i += GROUPS_PER_REQUEST_MAX)
    described.push(...(await ctx.ports.groups.describe(nodeId, ids.slice(i, i + GROUPS_PER_REQUEST_MAX), who)));
  return { listed, described };
}

/** GET /groups: every broker's groups, by id, with their total lag; brokers that did not answer under `unreachable`. */
export async function listGroups(ctx: ApiContext, call: ApiCall) {
  const listed = ctx.access.listGroups(call.who, ctx.groups.listGroups([]));
  const described = new Map(
    describeAll(
      ctx.groups,
      listed.map((g) => g.groupId),
    ).map((d) => [d.groupId, d]),
  );
  const all = new Map(listed.map((g) => [g.groupId, g]));
  const unreachable: Array<{ nodeId: number; error: string }> = [];
  const others = otherBrokers(ctx);
  const answers = await Promise.allSettled(others.map((n) => groupsOf(ctx, call.who, n)));
  answers.forEach((a, i) => {
    if (a.status === "rejected") {
      unreachable.push({ nodeId: others[i]!, error: RillError.from(a.reason).message });
      return;
    }
    for (const g of a.value.listed) if (!all.has(g.groupId)) all.set(g.groupId, g);
    for (const d of a.value.described) if (!described.has(d.groupId)) described.set(d.groupId, d);
  });
  const lagged = new Map((await withLag(ctx, [...described.values()])).map((d) => [d.groupId, d]));
  const groups = [...all.values()].sort((a, b) => a.groupId.localeCompare(b.groupId));
  return {
    groups: groups.map((g) => ({ groupId: g.groupId, state: g.state, members: g.members, totalLag: totalLag(lagged.get(g.groupId)) })),
    unreachable,
  };
}

/** One group described by its coordinator: here, or the broker that leads its __consumer_offsets partition. */
async function describeAnywhere(ctx: ApiContext, who: Requester, id: string): Promise<DescribeGroupResult> {
  const here = ctx.groups.describeGroups([id])[0]!;
  if (here.error?.kind.name !== "NOT_COORDINATOR") return here;
  const coordinator = ctx.rm.image.topics.get(OFFSETS_TOPIC)?.partitions[offsetsPartitionFor(id)]?.leader ?? -1;
  if (coordinator < 0 || coordinator === ctx.rm.nodeIdOf())
    throw rillError(
      "COORDINATOR_NOT_AVAILABLE",
      `group_id: group ${id} has no coordinator now (its ${OFFSETS_TOPIC} partition has no leader)`,
    );
  const [there] = await ctx.ports.groups.describe(coordinator, [id], who);
  return there ?? here;
}

/** GET /groups/{id}. */
export async function describeGroup(ctx: ApiContext, call: ApiCall) {
  const id = call.params[0]!;
  ctx.access.describeGroups(call.who, [id]);
  const [d] = await withLag(ctx, [await describeAnywhere(ctx, call.who, id)]);
  if (!d || d.error) throw d?.error ?? rillError("GROUP_ID_NOT_FOUND", `group_id: group ${id} does not exist`);
  const g = d.group;
  return {
    groupId: id,
    state: g.state,
    groupEpoch: g.groupEpoch,
    assignmentEpoch: g.assignmentEpoch,
    assignor: g.assignor,
    coordinatorId: g.coordinatorId,
    members: g.members.map((m) => ({
      memberId: m.memberId,
      instanceId: m.instanceId,
      clientId: m.clientId,
      clientHost: m.clientHost,
      memberEpoch: m.memberEpoch,
      topics: m.topics,
      assignment: m.assignment,
      pendingRevocation: m.pendingRevocation,
    })),
    offsets: g.offsets,
    totalLag: totalLag(d),
    history: ctx.history.groupLag(id),
  };
}

/**
 * The lag of each partition the coordinator does not lead, against the high watermark its leader
 * reports (the coordinator's own copy, if it holds one, can be a fetch behind; without one it
 * knows none); a leader that does not answer leaves the coordinator's answer.
 */
async function withLag(ctx: ApiContext, described: readonly DescribeGroupResult[]): Promise<DescribeGroupResult[]> {
  const missing = new Map<number, PartitionRef[]>();
  const leaderOf = (o: PartitionLagOutput): number => ctx.rm.image.topics.get(o.topic)?.partitions[o.partition]?.leader ?? -1;
  /** The coordinator's own high watermark is the leader's only when it leads the partition. */
  const stale = (d: DescribeGroupResult, o: PartitionLagOutput): boolean =>
    o.committedOffset >= 0 && leaderOf(o) >= 0 && (o.logEndOffset < 0 || leaderOf(o) !== d.group?.coordinatorId);
  for (const d of described)
    for (const o of d.group?.offsets ?? []) {
      if (!stale(d, o)) continue;
      const leader = leaderOf(o);
      const list = missing.get(leader) ?? [];
      if (!list.some((p) => p.topic === o.topic && p.partition === o.partition)) list.push({ topic: o.topic, partition: o.partition });
      missing.set(leader, list);
    }
  if (missing.size === 0) return [...described];
  const ends = new Map<string, number>();
  await Promise.all(
    [...missing].map(async ([leader, parts]) => {
      const offsets = await ctx.ports.leaderOffsets(leader, parts).catch(() => parts.map(() => null));
      parts.forEach((p, i) => {
        const o = offsets[i];
        if (o) ends.set(`${p.topic}\u0000${p.partition}`, o.highWatermark);
      });
    }),
  );
  return described.map((d) => {
    if (!d.group) return d;
    const offsets = d.group.offsets.map((o): PartitionLagOutput => {
      const end = stale(d, o) ? ends.get(`${o.topic}\u0000${o.partition}`) : undefined;
      return end === undefined ? o : { ...o, logEndOffset: end, lag: o.committedOffset < 0 ? -1 : Math.max(0, end - o.committedOffset) };
    });
    return { ...d, group: { ...d.group, offsets } };
  });
}

/** Every group's lag per partition now (the groups this node coordinates), for the history. */
export function groupsLag(groups: GroupsService): LagSource {
  return () => {
    const out: GroupLag[] = [];
    for (const d of describeAll(
      groups,
      groups.listGroups([]).map((g) => g.groupId),
    )) {
      if (!d.group) continue;
      const partitions = new Map<string, number>();
      for (const o of d.group.offsets) if (o.lag >= 0) partitions.set(`${o.topic}-${o.partition}`, o.lag);
      out.push({ group: d.groupId, partitions });
    }
    return out;
  };
}
