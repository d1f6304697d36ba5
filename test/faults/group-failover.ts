/**
 * Consumer groups across a coordinator failover (issue 6: "committed offsets survive the death
 * of the broker that led their __consumer_offsets partition").
 *
 * A fresh 3-node cluster; a group whose coordinator is the leader of `__consumer_offsets`
 * partition murmur2(group) % 50 (src/coordinator/group-runtime.ts offsetsPartitionFor; its leader
 * from DescribeTopics). A committer commits offset n = 1, 2, 3, ... for every partition of a
 * topic (GroupService.CommitOffsets without membership, sent to the coordinator it finds), one
 * commit in flight, recording each as acknowledged, failed (a definite error: "a failed commit is
 * never applied") or unknown (no answer, REQUEST_TIMED_OUT...). A reader asks the coordinator
 * FetchOffsets in a loop. `failovers` times: once enough commits were acknowledged, kill -9 the
 * coordinator (the first time; later a seeded choice of kill -9 or SIGSTOP, a zombie that comes
 * back with SIGCONT), wait for another broker to lead the partition, check FetchOffsets there,
 * restart (or resume) the old one and wait until the partition's ISR holds all three again.
 *
 * Every FetchOffsets answer is checked as a register read:
 * - it is at least the highest commit acknowledged before the read was sent (none lost);
 * - it is a value some commit tried to write, and not one whose commit failed definitely;
 * - it never moves backwards from an answer seen earlier (DESIGN.md: "committed offsets never
 *   move backwards"), which would mean a read of a commit that was not yet durable.
 */
import { SeededRandom } from "../../src/base/random.ts";
import { OFFSETS_TOPIC, offsetsPartitionFor } from "../../src/coordinator/group-runtime.ts";
import { Cluster, sleep, until } from "../integration/cluster-harness.ts";
import { NodeClients } from "./clients.ts";
import { FAULT_CLUSTER_SETTINGS } from "./engine.ts";
import { outcomeOfCallError, outcomeOfDetail, type FaultEvent, type Outcome } from "./history.ts";

export interface GroupOptions {
  readonly seed: number;
  /** How many coordinators are killed, one after the other. */
  readonly failovers: number;
  /** Commits acknowledged between two kills. */
  readonly commitsBetween: number;
  /** Longest wait for a step (a new leader, the ISR back to three). */
  readonly stepMs: number;
  readonly keep: boolean;
  readonly progress?: (line: string) => void;
}

export function groupOptions(o: Partial<GroupOptions> & { seed: number }): GroupOptions {
  return { failovers: 3, commitsBetween: 20, stepMs: 60_000, keep: false, ...o };
}

export interface GroupResult {
  readonly seed: number;
  readonly groupId: string;
  readonly offsetsTopic: string;
  readonly offsetsPartition: number;
  readonly commits: {
    acknowledged: number;
    failed: number;
    unknown: number;
    failedBy: Record<string, number>;
    unknownBy: Record<string, number>;
  };
  readonly events: readonly FaultEvent[];
  readonly violations: readonly string[];
  readonly totalMs: number;
  readonly keptAt: string | null;
}

const TOPIC = "orders";
const PARTITIONS = 4;

/** One CommitOffsets call: offset n for every partition. */
export interface Commit {
  readonly n: number;
  readonly node: number;
  readonly sentAtMs: number;
  doneAtMs: number;
  outcome: Outcome | null;
}

/** One FetchOffsets answer: the offset of each partition, in partition order. */
export interface OffsetsRead {
  readonly who: string;
  readonly node: number;
  readonly sentAtMs: number;
  readonly doneAtMs: number;
  readonly values: readonly number[];
}

/**
 * Judges every FetchOffsets answer once every commit's outcome is known (see the file
 * comment); one line per answer and kind of violation.
 */
export function checkOffsetReads(commits: readonly Commit[], reads: readonly OffsetsRead[]): string[] {
  const out: string[] = [];
  const acked = commits.filter((c) => c.outcome?.kind === "ok");
  for (const r of reads) {
    const at = `${r.who} FetchOffsets sent at +${r.sentAtMs} ms to node ${r.node} answered ${r.values.join(",")} (partitions 0..${r.values.length - 1})`;
    if (new Set(r.values).size > 1) out.push(`torn commit: ${at}, but every commit writes one offset to all partitions`);
    const ackedBefore = Math.max(-1, ...acked.filter((c) => c.doneAtMs <= r.sentAtMs).map((c) => c.n));
    const v = Math.min(...r.values);
    if (v < ackedBefore) out.push(`lost commit: ${at}, but commit ${ackedBefore} was acknowledged before the read was sent`);
    for (const x of new Set(r.values)) {
      if (x <= 0) continue;
      const c = commits[x - 1];
      if (!c) out.push(`${at}: no commit wrote ${x}`);
      else if (c.outcome?.kind === "failed")
        out.push(
          `aborted commit read: ${at}, but commit ${x} (sent at +${c.sentAtMs} ms to node ${c.node}) failed with ${c.outcome.name}: ${c.outcome.message}`,
        );
    }
    const earlier = reads.find((e) => e.doneAtMs < r.sentAtMs && Math.min(...e.values) > v);
    if (earlier)
      out.push(
        `committed offset moved backwards: ${at}, after node ${earlier.node} answered ${earlier.values.join(",")} at +${earlier.doneAtMs} ms`,
      );
  }
  return out;
}

/** Runs the scenario (see the file comment). */
export async function runGroupFailover(o: GroupOptions): Promise<GroupResult> {
  const say = o.progress ?? ((): void => {});
  const t00 = Date.now();
  const rnd = new SeededRandom(o.seed);
  const groupId = `faults-group-${o.seed}-${rnd.int(1_000_000)}`;
  const p = offsetsPartitionFor(groupId);
  const cluster = await Cluster.start({ nodes: 3, set: FAULT_CLUSTER_SETTINGS, name: "rill-faults-groups-" });
  const clients = new Map(cluster.nodes.map((nd) => [nd.id, new NodeClients(nd.id, nd.address)]));
  const events: FaultEvent[] = [];
  const violations: string[] = [];
  const commits: Commit[] = [];
  const reads: OffsetsRead[] = [];
  let t0 = Date.now();
  const now = (): number => Date.now() - t0;
  const note = (what: string): void => {
    events.push({ atMs: now(), what });
    say(what);
  };
  let keep = o.keep;
  let stopped = false;
  const loops: Promise<void>[] = [];
  try {
    await cluster.waitForStable(60_000);
    await cluster.nodes[0]!.admin({ retries: 10 }).createTopics([
      { name: TOPIC, partitions: PARTITIONS, replicationFactor: 3, configs: { "min.insync.replicas": "2" } },
    ]);
    await fullIsr(cluster, clients, p, o.stepMs);
    t0 = Date.now();
    note(`group ${groupId} lives in ${OFFSETS_TOPIC}-${p}, led by node ${await leaderOf(cluster, clients, p)}`);

    let coordinator = -1;
    const route = async (): Promise<NodeClients> => {
      if (coordinator < 0 || !cluster.node(coordinator).running) coordinator = await leaderOf(cluster, clients, p);
      return clients.get(coordinator)!;
    };
    loops.push(
      (async () => {
        for (let n = 1; !stopped; n++) {
          const c: Commit = { n, node: -1, sentAtMs: now(), doneAtMs: -1, outcome: null };
          commits.push(c);
          try {
            const cl = await route();
            (c as { node: number }).node = cl.nodeId;
            const res = await cl.commitOffsets(
              groupId,
              Array.from({ length: PARTITIONS }, (_, q) => ({ topic: TOPIC, partition: q, offset: n })),
              5_000,
            );
            const err = res.offsets.find((x) => x.error)?.error;
            c.outcome = err ? outcomeOfDetail(err) : { kind: "ok", partition: -1, offset: n };
          } catch (e) {
            c.outcome = outcomeOfCallError(e);
          }
          c.doneAtMs = now();
          if (c.outcome.kind !== "ok") {
            coordinator = -1;
            await sleep(100);
          }
        }
      })(),
    );
    loops.push(
      (async () => {
        while (!stopped) {
          await readOnce(await route().catch(() => null), "reader");
          await sleep(20);
        }
      })(),
    );
    async function readOnce(cl: NodeClients | null, who: string): Promise<number | null> {
      if (!cl) return null;
      const sentAtMs = now();
      let res: Awaited<ReturnType<NodeClients["fetchOffsets"]>>;
      try {
        res = await cl.fetchOffsets(
          groupId,
          TOPIC,
          Array.from({ length: PARTITIONS }, (_, q) => q),
          3_000,
        );
      } catch {
        return null;
      }
      if (res.offsets.some((x) => x.error)) return null;
      const values = res.offsets.map((x) => Number(x.offset));
      reads.push({ who, node: cl.nodeId, sentAtMs, doneAtMs: now(), values });
      return Math.min(...values);
    }

    for (let k = 1; k <= o.failovers; k++) {
      await until(
        () => commits.filter((c) => c.outcome?.kind === "ok" && c.sentAtMs > (events.at(-1)?.atMs ?? 0)).length >= o.commitsBetween,
        o.stepMs,
        `${o.commitsBetween} commits acknowledged`,
      );
      const victim = await leaderOf(cluster, clients, p);
      const ackedBeforeKill = Math.max(0, ...commits.filter((c) => c.outcome?.kind === "ok").map((c) => c.n));
      const pause = k > 1 && rnd.int(2) === 0;
      note(
        `failover ${k}: ${pause ? "SIGSTOP" : "kill -9"} node ${victim} (the coordinator); highest acknowledged commit ${ackedBeforeKill}`,
      );
      if (pause) cluster.node(victim).pause();
      else await cluster.node(victim).kill();
      const next = await until(
        async () => {
          const l = await leaderOf(cluster, clients, p);
          return l !== victim ? l : false;
        },
        o.stepMs,
        `a new leader of ${OFFSETS_TOPIC}-${p}`,
      );
      note(`node ${next} leads ${OFFSETS_TOPIC}-${p}`);
      const v = await until(
        () => readOnce(clients.get(next)!, `after failover ${k},`),
        o.stepMs,
        `FetchOffsets answered by the new coordinator ${next}`,
      );
      note(`node ${next} answers FetchOffsets: ${v}`);
      if (v < ackedBeforeKill)
        violations.push(
          `failover ${k}: the new coordinator ${next} answered ${v} < ${ackedBeforeKill}, acknowledged before the ${pause ? "SIGSTOP" : "kill"}`,
        );
      if (pause) {
        note(`SIGCONT node ${victim}`);
        cluster.node(victim).resume();
      } else {
        note(`restarting node ${victim}`);
        await cluster.node(victim).start();
      }
      await fullIsr(cluster, clients, p, o.stepMs);
      note(`${OFFSETS_TOPIC}-${p} has all three replicas in its ISR again`);
    }
    await until(
      () => commits.filter((c) => c.outcome?.kind === "ok" && c.sentAtMs > (events.at(-1)?.atMs ?? 0)).length >= 3,
      o.stepMs,
      `commits acknowledged after the last failover`,
    );
    stopped = true;
    await Promise.all(loops);
    const last = Math.max(0, ...commits.filter((c) => c.outcome?.kind === "ok").map((c) => c.n));
    const final = await until(
      async () => readOnce(clients.get(await leaderOf(cluster, clients, p))!, "final"),
      o.stepMs,
      "a final FetchOffsets",
    );
    note(`final FetchOffsets: ${final}; highest acknowledged commit ${last}; ${reads.length} FetchOffsets answers checked`);
    violations.push(...checkOffsetReads(commits, reads));
    if (violations.length > 0) keep = true;
  } finally {
    stopped = true;
    await Promise.allSettled(loops);
    for (const c of clients.values()) c.close();
    await cluster.close({ keep });
  }
  const failedBy: Record<string, number> = {};
  const unknownBy: Record<string, number> = {};
  for (const c of commits) {
    if (c.outcome?.kind === "failed") failedBy[c.outcome.name] = (failedBy[c.outcome.name] ?? 0) + 1;
    if (c.outcome?.kind === "unknown") {
      const k = c.outcome.reason.split(":")[0]!;
      unknownBy[k] = (unknownBy[k] ?? 0) + 1;
    }
  }
  return {
    seed: o.seed,
    groupId,
    offsetsTopic: OFFSETS_TOPIC,
    offsetsPartition: p,
    commits: {
      acknowledged: commits.filter((c) => c.outcome?.kind === "ok").length,
      failed: commits.filter((c) => c.outcome?.kind === "failed").length,
      unknown: commits.filter((c) => c.outcome === null || c.outcome.kind === "unknown").length,
      failedBy,
      unknownBy,
    },
    events,
    violations: [...new Set(violations)],
    totalMs: Date.now() - t00,
    keptAt: keep ? cluster.root : null,
  };
}

/** The leader of `__consumer_offsets`-p as the running nodes see it (the most common answer). */
async function leaderOf(cluster: Cluster, clients: ReadonlyMap<number, NodeClients>, p: number): Promise<number> {
  return until(
    async () => {
      const votes = new Map<number, number>();
      for (const nd of cluster.running) {
        const v = await clients
          .get(nd.id)!
          .describeTopics([OFFSETS_TOPIC], 2_000)
          .catch(() => null);
        const l = v?.topics[0]?.partitions[p]?.leader;
        if (l !== undefined && l >= 0 && cluster.node(l).running) votes.set(l, (votes.get(l) ?? 0) + 1);
      }
      const best = [...votes].sort((a, b) => b[1] - a[1])[0];
      return best ? best[0] : null;
    },
    30_000,
    `a leader of ${OFFSETS_TOPIC}-${p}`,
  );
}

/** Waits until every node sees `__consumer_offsets`-p led, with all three in its ISR. */
async function fullIsr(cluster: Cluster, clients: ReadonlyMap<number, NodeClients>, p: number, ms: number): Promise<void> {
  await until(
    async () => {
      const views = await Promise.all(cluster.nodes.map((nd) => clients.get(nd.id)!.describeTopics([OFFSETS_TOPIC], 2_000)));
      return views.every((v) => {
        const x = v.topics[0]?.partitions[p];
        return x !== undefined && !v.topics[0]!.error && x.leader >= 0 && x.isr.length === 3;
      });
    },
    ms,
    `${OFFSETS_TOPIC}-${p} led with an ISR of three on every node`,
    250,
  );
}
