/**
 * The nemesis of a fault round: a schedule of faults drawn from the round's seed before the
 * round starts (so `SEED=`/`--seed` replays the same schedule), applied one episode at a time
 * to a Cluster (test/integration/cluster-harness.ts), each healed before the next begins and
 * separated from it by its planned quiet time (a restart takes a moment, so episodes start a
 * little later than planned; the order, targets and lengths are the schedule's).
 *
 * Fault kinds:
 * - kill: kill -9 a node, start it again (same port and data dir) after the episode;
 * - pause: SIGSTOP a node, SIGCONT after the episode (a zombie: its sockets stay open);
 * - restart: SIGTERM (controlled shutdown) and start again at once;
 * - isolate: cut every quorum link into and out of a node (Raft, registration, heartbeats,
 *   controller forwarding) and its ingress proxy (replica fetches from it, produce forwarded
 *   to it), in "reset" or "drop" mode. Clients still reach every node directly, so the
 *   isolated node keeps being asked — the minority side of a partition. What the node itself
 *   sends to the others' ingress proxies (its own replica fetches) still passes: the proxies
 *   cannot tell which node a connection comes from;
 * - cut-ingress: cut only a node's ingress proxy: the others cannot fetch from it or forward to
 *   it, while it still talks to the controller (a data-path partition: the leader shrinks its
 *   ISR instead of being fenced);
 * - cut-link: cut the quorum links between two nodes, both ways or one way.
 * Between episodes the cluster runs unharmed for a while; at the end everything is healed.
 */
import type { SeededRandom } from "../../src/base/random.ts";
import { sleep, type Cluster } from "../integration/cluster-harness.ts";
import type { BlockMode } from "../integration/tcp-proxy.ts";
import type { FaultEvent } from "./history.ts";

export type FaultKind = "kill" | "pause" | "restart" | "isolate" | "cut-ingress" | "cut-link" | "cut-one-way";

/** One planned episode. */
export interface PlannedFault {
  /** When it would start if every step took no time, in ms after the load started. */
  readonly atMs: number;
  /** Quiet time before it, counted from the end of the previous episode's heal. */
  readonly gapMs: number;
  readonly kind: FaultKind;
  readonly node: number;
  /** The other end of a cut link. */
  readonly peer: number;
  readonly mode: BlockMode;
  /** How long the fault lasts before it is healed. */
  readonly durationMs: number;
}

/** Bounds of a schedule. */
export interface NemesisOptions {
  /** No episode starts after this many ms of load. */
  readonly windowMs: number;
  /** Episode length drawn from [faultMinMs, faultMaxMs]. */
  readonly faultMinMs: number;
  readonly faultMaxMs: number;
  /** Quiet time between episodes drawn from [gapMinMs, gapMaxMs]. */
  readonly gapMinMs: number;
  readonly gapMaxMs: number;
}

const KINDS: readonly { kind: FaultKind; weight: number }[] = [
  { kind: "kill", weight: 3 },
  { kind: "pause", weight: 2 },
  { kind: "isolate", weight: 2 },
  { kind: "cut-ingress", weight: 1 },
  { kind: "cut-link", weight: 1 },
  { kind: "cut-one-way", weight: 1 },
  { kind: "restart", weight: 1 },
];

function pickKind(r: SeededRandom): FaultKind {
  const total = KINDS.reduce((n, k) => n + k.weight, 0);
  let x = r.int(total);
  for (const k of KINDS) {
    if (x < k.weight) return k.kind;
    x -= k.weight;
  }
  return "kill";
}

/** The schedule of a round: a pure function of the generator's state and the options. */
export function planFaults(r: SeededRandom, nodeIds: readonly number[], o: NemesisOptions): PlannedFault[] {
  const plan: PlannedFault[] = [];
  const span = (lo: number, hi: number): number => lo + r.int(hi - lo + 1);
  let gapMs = span(o.gapMinMs, o.gapMaxMs);
  let t = gapMs;
  while (t < o.windowMs) {
    const kind = pickKind(r);
    const node = nodeIds[r.int(nodeIds.length)]!;
    const others = nodeIds.filter((n) => n !== node);
    const peer = others[r.int(others.length)]!;
    const mode: BlockMode = r.int(2) === 0 ? "reset" : "drop";
    const durationMs = kind === "restart" ? 0 : span(o.faultMinMs, o.faultMaxMs);
    plan.push({ atMs: t, gapMs, kind, node, peer, mode, durationMs });
    gapMs = span(o.gapMinMs, o.gapMaxMs);
    t += durationMs + gapMs;
  }
  return plan;
}

/** One line describing a planned fault. */
export function describeFault(f: PlannedFault): string {
  switch (f.kind) {
    case "kill":
      return `kill -9 node ${f.node}, restart after ${f.durationMs} ms`;
    case "pause":
      return `SIGSTOP node ${f.node}, SIGCONT after ${f.durationMs} ms`;
    case "restart":
      return `restart node ${f.node} (SIGTERM, start)`;
    case "isolate":
      return `isolate node ${f.node} (${f.mode}) for ${f.durationMs} ms`;
    case "cut-ingress":
      return `cut the ingress of node ${f.node} (${f.mode}) for ${f.durationMs} ms`;
    case "cut-link":
      return `cut quorum link ${f.node}<->${f.peer} (${f.mode}) for ${f.durationMs} ms`;
    case "cut-one-way":
      return `cut quorum link ${f.node}->${f.peer} (${f.mode}) for ${f.durationMs} ms`;
  }
}

/**
 * Applies `plan` to `cluster` until the window ends or `stopped()`, logging each step (start,
 * heal) into `log` with its time since `t0`. Heals everything before it returns.
 */
export async function runNemesis(
  cluster: Cluster,
  plan: readonly PlannedFault[],
  o: { t0: number; windowMs: number; log: FaultEvent[]; stopped: () => boolean },
): Promise<void> {
  const now = (): number => Date.now() - o.t0;
  const note = (what: string): void => {
    o.log.push({ atMs: now(), what });
  };
  try {
    for (const f of plan) {
      const startAt = now() + f.gapMs;
      if (o.stopped() || startAt >= o.windowMs) break;
      await sleep(f.gapMs);
      if (o.stopped()) break;
      await applyFault(cluster, f, note);
      const end = Math.min(now() + f.durationMs, o.windowMs);
      while (now() < end && !o.stopped()) await sleep(Math.min(100, end - now()));
      await heal(cluster, note);
    }
  } finally {
    await heal(cluster, note);
  }
}

/** Starts fault `f` (heal it with `heal`). */
export async function applyFault(cluster: Cluster, f: PlannedFault, note: (what: string) => void): Promise<void> {
  const nd = cluster.node(f.node);
  note(`start: ${describeFault(f)}`);
  switch (f.kind) {
    case "kill":
      await nd.kill();
      break;
    case "pause":
      nd.pause();
      break;
    case "restart": {
      const code = await nd.terminate();
      note(`node ${f.node} exited (${code}); starting it`);
      await nd.start();
      note(`node ${f.node} started (run ${nd.runCount})`);
      break;
    }
    case "isolate":
      cluster.isolate(f.node, f.mode);
      cluster.ingress(f.node).block(f.mode);
      break;
    case "cut-ingress":
      cluster.ingress(f.node).block(f.mode);
      break;
    case "cut-link":
      cluster.cutBoth(f.node, f.peer, f.mode);
      break;
    case "cut-one-way":
      cluster.cut(f.node, f.peer, f.mode);
      break;
  }
}

/** Resumes paused nodes, starts stopped ones, restores every link. */
export async function heal(cluster: Cluster, note: (what: string) => void): Promise<void> {
  for (const nd of cluster.nodes) {
    if (nd.isPaused) {
      nd.resume();
      note(`SIGCONT node ${nd.id}`);
    }
  }
  const blocked = cluster.nodes
    .flatMap((a) => [
      cluster.ingress(a.id).blockMode !== null ? `ingress ${a.id}` : null,
      ...cluster.nodes.filter((b) => b.id !== a.id && cluster.link(a.id, b.id).blockMode !== null).map((b) => `${a.id}->${b.id}`),
    ])
    .filter((x) => x !== null);
  if (blocked.length > 0) {
    cluster.heal();
    note(`healed links: ${blocked.join(", ")}`);
  }
  for (const nd of cluster.nodes) {
    if (!nd.running) {
      note(`starting node ${nd.id}`);
      await nd.start();
      note(`node ${nd.id} started (run ${nd.runCount})`);
    }
  }
}
