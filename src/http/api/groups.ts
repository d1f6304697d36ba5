/**
 * Consumer groups over the JSON API: the groups this node coordinates (list, with each group's
 * total lag) and one group described (members, their assignments, committed offsets and lag per
 * partition, and the group's lag history for the chart). ACLs as gRPC's ListGroups and
 * DescribeGroups: a listing shows the groups the caller may DESCRIBE (every group with DESCRIBE
 * on the cluster); describing needs DESCRIBE on the group.
 */
import { GROUPS_PER_REQUEST_MAX } from "../../coordinator/limits.ts";
import type { DescribeGroupResult, GroupsService } from "../../service/groups.ts";
import type { ApiCall, ApiContext } from "./deps.ts";
import type { GroupLag, LagSource } from "./traffic.ts";

/** Sum of the partitions' lag that is known (a partition without a commit has none). */
function totalLag(d: DescribeGroupResult): number | null {
  if (!d.group) return null;
  return d.group.offsets.reduce((sum, o) => sum + Math.max(0, o.lag), 0);
}

/** Describes `ids` in requests of at most GROUPS_PER_REQUEST_MAX groups. */
function describeAll(groups: GroupsService, ids: readonly string[]): DescribeGroupResult[] {
  const out: DescribeGroupResult[] = [];
  for (let i = 0; i < ids.length; i += GROUPS_PER_REQUEST_MAX) out.push(...groups.describeGroups(ids.slice(i, i + GROUPS_PER_REQUEST_MAX)));
  return out;
}

/** GET /groups. */
export function listGroups(ctx: ApiContext, call: ApiCall) {
  const listed = ctx.access.listGroups(call.who, ctx.groups.listGroups([]));
  const described = describeAll(
    ctx.groups,
    listed.map((g) => g.groupId),
  );
  return {
    groups: listed.map((g, i) => ({ groupId: g.groupId, state: g.state, members: g.members, totalLag: totalLag(described[i]!) })),
  };
}

/** GET /groups/{id}. */
export function describeGroup(ctx: ApiContext, call: ApiCall) {
  const id = call.params[0]!;
  ctx.access.describeGroups(call.who, [id]);
  const d = ctx.groups.describeGroups([id])[0]!;
  if (d.error) throw d.error;
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

/** Every group's lag per partition now, for the history. */
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
