/**
 * `rill cluster status`: the cluster id and active controller as the bootstrap node sees them,
 * and a table of every node — the union of the controller voters, the registered brokers and the
 * bootstrap node itself — with what each node says about itself (DescribeCluster asked of every
 * node: broker state, Raft role and term, metadata offset). A node that does not answer is shown
 * as unreachable, with the reason under the table; only the bootstrap node must answer.
 */

import { Admin, type ClusterDescription } from "../client/admin.ts";
import { type Context, clientOptions } from "./context.ts";
import { table } from "./group-commands.ts";
import { errorLine, write } from "./output.ts";

/** Deadline of the DescribeCluster asked of each node (a stopped process answers far sooner). */
const NODE_REQUEST_TIMEOUT_MS = 3000;

type Role = "broker" | "controller";

/** One node of `cluster status`. Null fields: the node did not answer (or is not registered). */
export interface NodeStatus {
  readonly nodeId: number;
  /** Where the node was asked: its registered address, else its voter address. */
  readonly address: string;
  /** As the node reports them; else as registered; else ["controller"] for a voter. */
  readonly roles: readonly Role[];
  readonly voter: boolean;
  /** The controller's view (the bootstrap node's metadata): null when not registered as a broker. */
  readonly fenced: boolean | null;
  /** Cordoned (issue 21: given no new replicas), as `fenced`: null when not registered as a broker. */
  readonly cordoned: boolean | null;
  readonly reachable: boolean;
  /** Why the node did not answer; null when it did. */
  readonly error: string | null;
  /** The node's own broker state ("running", "fenced", ...; "" without the broker role). */
  readonly brokerState: string | null;
  readonly raftRole: string | null;
  readonly raftTerm: number | null;
  readonly metadataOffset: number | null;
  readonly commitOffset: number | null;
}

/** `cluster status --json`: DescribeCluster of the bootstrap node, plus `nodes`. */
export interface ClusterStatus extends ClusterDescription {
  readonly nodes: readonly NodeStatus[];
}

/** A node's answer, or why there is none. */
export type NodeAnswer = { readonly ok: true; readonly cluster: ClusterDescription } | { readonly ok: false; readonly error: string };

/** Node id → address of every node `c` knows of: registered brokers first, then voters. */
export function knownNodes(c: ClusterDescription, bootstrap: string): Map<number, string> {
  const nodes = new Map<number, string>();
  for (const b of c.brokers) nodes.set(b.nodeId, b.address);
  for (const v of c.voters) if (!nodes.has(v.nodeId)) nodes.set(v.nodeId, v.address);
  if (c.node !== null && !nodes.has(c.node.nodeId)) nodes.set(c.node.nodeId, bootstrap);
  return nodes;
}

/** Combines the bootstrap node's answer with each node's own (`answers`, by node id). */
export function mergeStatus(c: ClusterDescription, bootstrap: string, answers: ReadonlyMap<number, NodeAnswer>): ClusterStatus {
  const nodes: NodeStatus[] = [];
  const known = knownNodes(c, bootstrap);
  for (const nodeId of [...known.keys()].sort((a, b) => a - b)) {
    const registered = c.brokers.find((b) => b.nodeId === nodeId);
    const voter = c.voters.some((v) => v.nodeId === nodeId);
    const answer = nodeId === c.node?.nodeId ? ({ ok: true, cluster: c } as const) : answers.get(nodeId);
    const self = answer?.ok ? answer.cluster.node : null;
    nodes.push({
      nodeId,
      address: known.get(nodeId)!,
      roles: self?.roles ?? registered?.roles ?? (voter ? ["controller"] : []),
      voter,
      fenced: registered?.fenced ?? null,
      cordoned: registered?.cordoned ?? null,
      reachable: answer?.ok ?? false,
      error: answer === undefined ? "not asked" : answer.ok ? null : answer.error,
      brokerState: self?.brokerState ?? null,
      raftRole: self?.raftRole ?? null,
      raftTerm: self?.raftTerm ?? null,
      metadataOffset: self?.metadataOffset ?? null,
      commitOffset: self?.commitOffset ?? null,
    });
  }
  return { ...c, nodes };
}

/** DescribeCluster of the node at `address`: one quick retry, a short deadline, never a throw. */
async function askNode(ctx: Context, address: string): Promise<NodeAnswer> {
  const admin = new Admin({
    bootstrap: address,
    tls: ctx.tls,
    credentials: ctx.credentials,
    retry: { retries: 1, initialBackoffMs: 100, backoffMsMax: 100 },
    requestTimeoutMs: NODE_REQUEST_TIMEOUT_MS,
  });
  try {
    return { ok: true, cluster: await admin.describeCluster() };
  } catch (e) {
    return { ok: false, error: errorLine(e) };
  } finally {
    await admin.close();
  }
}

/** Asks the bootstrap node (its failure is the command's), then every other node at once. */
export async function gatherStatus(ctx: Context): Promise<ClusterStatus> {
  const admin = new Admin(clientOptions(ctx));
  let c: ClusterDescription;
  try {
    c = await admin.describeCluster();
  } finally {
    await admin.close();
  }
  const others = [...knownNodes(c, ctx.bootstrap)].filter(([id]) => id !== c.node?.nodeId);
  const answers = await Promise.all(others.map(async ([id, address]) => [id, await askNode(ctx, address)] as const));
  return mergeStatus(c, ctx.bootstrap, new Map(answers));
}

const orDash = (v: string | number | null): string | number => (v === null || v === "" ? "-" : v);

/** The text form: header lines, the node table, then why each unreachable node did not answer. */
export function formatStatus(s: ClusterStatus): string {
  const controller = s.nodes.find((n) => n.nodeId === s.controllerId);
  const head = [
    `Cluster: ${s.clusterId}`,
    `Controller: ${s.controllerId < 0 ? "none elected" : s.controllerId}${controller ? ` (${controller.address})` : ""}`,
    "",
  ];
  const rows = s.nodes.map((n) => [
    n.nodeId,
    n.address,
    n.roles.join(",") || "-",
    n.reachable ? orDash(n.brokerState) : "unreachable",
    n.fenced === null ? "-" : n.fenced ? "yes" : "no",
    orDash(n.raftRole),
    orDash(n.raftTerm),
    orDash(n.metadataOffset),
  ]);
  const nodes = table(["NODE", "ADDRESS", "ROLES", "STATE", "FENCED", "RAFT-ROLE", "TERM", "METADATA-OFFSET"], rows);
  const cordoned = s.nodes.filter((n) => n.cordoned === true).map((n) => n.nodeId);
  const notes = [
    ...(cordoned.length > 0 ? [`Cordoned (given no new replicas): ${cordoned.join(", ")}\n`] : []), // issue 21
    ...s.nodes.filter((n) => !n.reachable).map((n) => `Node ${n.nodeId} unreachable: ${n.error}\n`),
  ];
  return `${head.join("\n")}\n${nodes}${notes.length > 0 ? `\n${notes.join("")}` : ""}`;
}

/** `rill cluster status [--json]`: see the module comment. */
export async function clusterStatus(ctx: Context, o: { json?: boolean }): Promise<void> {
  const s = await gatherStatus(ctx);
  await write(ctx.io.stdout, o.json ? `${JSON.stringify(s)}\n` : formatStatus(s));
}
