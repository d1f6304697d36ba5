/**
 * The cluster overview: DescribeCluster (nodes, controller, this node's Raft term — the Raft
 * internals only with DESCRIBE on the cluster, as gRPC answers them) with the partition counts
 * of the topics the caller may describe: total, offline (no leader), under-replicated (ISR
 * smaller than the replicas) and under min ISR, and how many partitions each broker leads.
 */
import type { ApiCall, ApiContext } from "./deps.ts";

/** GET /cluster. */
export function clusterOverview(ctx: ApiContext, call: ApiCall) {
  const c = ctx.access.describeCluster(call.who, ctx.ports.admin.describeCluster());
  const image = ctx.rm.image;
  const visible = ctx.access.listTopics(call.who, {
    topics: image.topicNames().map((name) => ({ name, partitions: 0, replicationFactor: 0, internal: name.startsWith("__") })),
  }).topics;
  const counts = { total: 0, offline: 0, underReplicated: 0, underMinIsr: 0 };
  const leaders = new Map<number, number>();
  for (const { name } of visible) {
    const t = image.topics.get(name);
    if (!t) continue;
    const minIsr = ctx.rm.topicConfig(name).minInsyncReplicas;
    for (const p of t.partitions) {
      counts.total++;
      if (p.leader < 0) counts.offline++;
      else leaders.set(p.leader, (leaders.get(p.leader) ?? 0) + 1);
      if (p.isr.length < p.replicas.length) counts.underReplicated++;
      if (p.isr.length < minIsr) counts.underMinIsr++;
    }
  }
  return {
    clusterId: c.clusterId,
    controllerId: c.controllerId,
    nodeId: c.node.nodeId,
    raft: { role: c.node.raftRole, term: c.node.raftTerm, commitOffset: c.node.commitOffset, metadataOffset: c.node.metadataOffset },
    brokers: c.brokers.map((b) => ({ ...b, leaderPartitions: leaders.get(b.nodeId) ?? 0 })),
    voters: c.voters,
    topics: visible.filter((t) => !t.internal).length,
    partitions: counts,
  };
}
