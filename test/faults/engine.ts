/**
 * One round of the produce/consume fault test: a fresh 3-node cluster (cluster-harness.ts, with
 * a TCP proxy on every quorum link and in front of every node), a topic with RF=3 and
 * min.insync.replicas=2, producers and consumers (workload.ts) under a seeded fault schedule
 * (nemesis.ts) for a bounded window; then everything is healed, the load stops, the cluster is
 * given time to settle (every partition led, ISR back to all three, the same high watermark on
 * every node), every partition is read from offset 0 to its high watermark through each node,
 * and the history is checked (checker.ts).
 *
 * Every process the round starts is stopped before it returns (Cluster.close, also on errors).
 * The data root (node logs: <root>/node-N.log) is kept when anomalies are found, or always with
 * `keep`, and its path is in the result.
 */
import { SeededRandom } from "../../src/base/random.ts";
import type { Admin } from "../../src/client/admin.ts";
import { Cluster, sleep, until } from "../integration/cluster-harness.ts";
import { check, FINAL_READER, type CheckResult } from "./checker.ts";
import { NodeClients } from "./clients.ts";
import { newHistory, outcomeOfCallError, outcomeOfDetail, type FaultEvent, type History, type Write } from "./history.ts";
import { planFaults, runNemesis, type NemesisOptions, type PlannedFault } from "./nemesis.ts";
import { startLoad, type LoadOptions } from "./workload.ts";

/** Broker settings that make failures show quickly (the suggestion). */
export const FAULT_CLUSTER_SETTINGS: Readonly<Record<string, string>> = {
  "broker.session.timeout.ms": "2000",
  "broker.heartbeat.interval.ms": "300",
  "replica.lag.time.max.ms": "2000",
  "controller.quorum.election.timeout.ms": "500",
};

/** Settings of one round; `roundOptions` fills the defaults. */
export interface RoundOptions {
  readonly seed: number;
  /** Length of the fault window (the load runs through it and a little after). */
  readonly windowMs: number;
  /** Load after the final heal, so writes are seen succeeding again. */
  readonly afterHealMs: number;
  /** Longest wait for the cluster to settle after the load stops. */
  readonly settleMs: number;
  readonly partitions: number;
  readonly load: Omit<LoadOptions, "topic" | "partitions">;
  readonly nemesis: Omit<NemesisOptions, "windowMs">;
  /** Keep the data root (logs) even without anomalies. */
  readonly keep: boolean;
  /** Progress lines (default: none). */
  readonly progress?: (line: string) => void;
}

export function roundOptions(o: Partial<RoundOptions> & { seed: number }): RoundOptions {
  return {
    windowMs: 25_000,
    afterHealMs: 3_000,
    settleMs: 90_000,
    partitions: 4,
    load: { producers: 3, consumers: 2, batchMax: 3, produceTimeoutMs: 2_000, produceDeadlineMs: 5_000, pauseMaxMs: 10 },
    nemesis: { faultMinMs: 1_000, faultMaxMs: 6_000, gapMinMs: 500, gapMaxMs: 3_000 },
    keep: false,
    ...o,
  };
}

/** What a round found. */
export interface RoundResult {
  readonly seed: number;
  readonly plan: readonly PlannedFault[];
  readonly faults: readonly FaultEvent[];
  readonly check: CheckResult;
  /** Null when the cluster settled; else what was last seen. */
  readonly unsettled: string | null;
  /** Partitions a node could not write to after the cluster settled (each tried for settleMs). */
  readonly probeFailures: readonly string[];
  /** Values acknowledged for requests sent after the final heal. */
  readonly acknowledgedAfterHeal: number;
  /** Final high watermark per partition (after settling). */
  readonly highWatermarks: readonly number[];
  readonly timings: {
    readonly startMs: number;
    readonly loadMs: number;
    readonly settleMs: number;
    readonly readMs: number;
    readonly totalMs: number;
  };
  /** Data root when kept (anomalies, unsettled, or `keep`). */
  readonly keptAt: string | null;
  /** Faults and node log lines around the first anomalies (for the report). */
  readonly nodeEvidence: string;
  /** Wall-clock time the load started (the "+ms" times count from it). */
  readonly loadStartedAt: string;
}

const TOPIC = "faults";

/** Runs one round (see the file comment). */
export async function runRound(o: RoundOptions): Promise<RoundResult> {
  const say = o.progress ?? ((): void => {});
  const t00 = Date.now();
  const rnd = new SeededRandom(o.seed);
  const planRnd = rnd.fork();
  const loadRnd = rnd.fork();
  const plan = planFaults(planRnd, [1, 2, 3], { ...o.nemesis, windowMs: o.windowMs });
  const cluster = await Cluster.start({
    nodes: 3,
    set: FAULT_CLUSTER_SETTINGS,
    linkProxies: true,
    ingressProxies: true,
    name: "rill-faults-",
  });
  const clients = new Map(cluster.nodes.map((nd) => [nd.id, new NodeClients(nd.id, nd.address)]));
  let keep = o.keep;
  try {
    say(`cluster started in ${cluster.root}`);
    await cluster.waitForStable(60_000);
    await createTopic(cluster, o.partitions);
    await waitSettled(clients, o.partitions, 60_000);
    const startMs = Date.now() - t00;
    say(`topic ${TOPIC} ready; load and faults for ${o.windowMs} ms (${plan.length} faults planned)`);

    const h = newHistory();
    const t0 = Date.now();
    let stopped = false;
    const load = startLoad({ ...o.load, topic: TOPIC, partitions: o.partitions }, clients, h, t0, loadRnd);
    try {
      await runNemesis(cluster, plan, { t0, windowMs: o.windowMs, log: h.faults, stopped: () => stopped });
      h.faults.push({ atMs: Date.now() - t0, what: "fault window over, everything healed" });
      await sleep(o.afterHealMs);
    } finally {
      stopped = true;
      await load.stop();
    }
    const healedAtMs = h.faults[h.faults.length - 1]!.atMs;
    const loadMs = Date.now() - t0;
    say(`load stopped after ${loadMs} ms (${h.writes.size} values sent); settling`);

    const ts = Date.now();
    let unsettled: string | null = null;
    let hws: number[] = [];
    let probeFailures: string[] = [];
    try {
      await waitSettled(clients, o.partitions, o.settleMs);
      probeFailures = await probe(clients, o.partitions, h, t0, o.settleMs);
      hws = await waitSettled(clients, o.partitions, o.settleMs);
    } catch (e) {
      unsettled = e instanceof Error ? e.message : String(e);
      hws = await bestHighWatermarks(clients, o.partitions);
    }
    const settleMs = Date.now() - ts;
    say(unsettled ? `did not settle: ${unsettled}` : `settled in ${settleMs} ms; high watermarks ${hws.join(",")}`);

    const tr = Date.now();
    await finalRead(clients, h, hws, t0);
    const readMs = Date.now() - tr;
    const result = check(h);
    const acknowledgedAfterHeal = [...h.writes.values()].filter((w) => w.sentAtMs >= healedAtMs && w.outcome?.kind === "ok").length;
    if (result.total > 0 || unsettled !== null || probeFailures.length > 0) keep = true;
    return {
      seed: o.seed,
      plan,
      faults: h.faults,
      check: result,
      unsettled,
      probeFailures,
      acknowledgedAfterHeal,
      highWatermarks: hws,
      timings: { startMs, loadMs, settleMs, readMs, totalMs: Date.now() - t00 },
      keptAt: keep ? cluster.root : null,
      nodeEvidence: result.total > 0 ? evidence(cluster, result, h, t0) : "",
      loadStartedAt: new Date(t0).toISOString(),
    };
  } finally {
    for (const c of clients.values()) c.close();
    await cluster.close({ keep });
  }
}

async function createTopic(cluster: Cluster, partitions: number): Promise<void> {
  await createReplicatedTopic(cluster.nodes[0]!.admin({ retries: 10 }), TOPIC, partitions);
}

/**
 * Creates a topic of RF 3 with min.insync.replicas 2, retried for up to 60 s while the quorum
 * settles: a controller change may refuse a create (NOT_CONTROLLER), and one that a refused
 * attempt did create is there already (TOPIC_ALREADY_EXISTS). On a loaded machine the SDK's own
 * retries ran out before a slow election ended.
 */
export async function createReplicatedTopic(admin: Admin, name: string, partitions: number): Promise<void> {
  await until(
    () =>
      admin.createTopics([{ name, partitions, replicationFactor: 3, configs: { "min.insync.replicas": "2" } }]).then(
        () => true,
        (e: unknown) =>
          /TOPIC_ALREADY_EXISTS/.test(String(e)) || (/NOT_CONTROLLER|not applied/.test(String(e)) ? false : Promise.reject(e)),
      ),
    60_000,
    `topic ${name} created`,
    500,
  );
}

/**
 * Waits until every node answers DescribeTopics with every partition led by the same node,
 * the same ISR of all three, and the same high watermark; resolves with the high watermarks.
 */
export async function waitSettled(clients: ReadonlyMap<number, NodeClients>, partitions: number, ms: number): Promise<number[]> {
  let last = "no answer yet";
  try {
    return await until(
      async () => {
        const views = await Promise.all([...clients.values()].map((c) => c.describeTopics([TOPIC], 2_000)));
        const hws: number[] = [];
        for (let p = 0; p < partitions; p++) {
          const ps = views.map((v) => v.topics[0]!.partitions[p]!);
          const first = ps[0]!;
          const same = ps.every(
            (x) =>
              x.leader === first.leader &&
              [...x.isr].sort().join() === [...first.isr].sort().join() &&
              x.highWatermark === first.highWatermark,
          );
          if (!same || first.leader < 0 || first.isr.length !== clients.size) {
            last =
              `partition ${p}: ` +
              ps
                .map((x, i) => `node ${[...clients.keys()][i]} sees leader ${x.leader} isr [${x.isr.join(",")}] hw ${x.highWatermark}`)
                .join("; ");
            return false;
          }
          hws.push(Number(first.highWatermark));
        }
        return hws;
      },
      ms,
      `every partition of ${TOPIC} led, ISR of ${clients.size}, one high watermark on every node`,
      250,
    );
  } catch (e) {
    throw new Error(`${e instanceof Error ? e.message : String(e)}; last seen: ${last}`);
  }
}

/**
 * After settling, every node writes one value ("probe-<node>-<partition>", producer 0) to every
 * partition, retrying until acknowledged or `ms` passed: the healed cluster must take writes
 * again through any node. The values join the history (the checker then wants them read back).
 */
async function probe(clients: ReadonlyMap<number, NodeClients>, partitions: number, h: History, t0: number, ms: number): Promise<string[]> {
  const failures: string[] = [];
  await Promise.all(
    [...clients.values()].flatMap((c) =>
      Array.from({ length: partitions }, async (_, p) => {
        const deadline = Date.now() + ms;
        let last = "";
        for (let attempt = 0; Date.now() < deadline; attempt++) {
          const w: Write = {
            value: `probe-${c.nodeId}-${p}-${attempt}`,
            producer: 0,
            partition: p,
            node: c.nodeId,
            sentAtMs: Date.now() - t0,
            doneAtMs: -1,
            outcome: null,
          };
          h.writes.set(w.value, w);
          try {
            const res = await c.produce(TOPIC, p, [w.value], 2_000, 5_000);
            const err = res.partitions[0]?.error;
            w.outcome = err
              ? outcomeOfDetail(err)
              : { kind: "ok", partition: res.records[0]!.partition, offset: Number(res.records[0]!.offset) };
          } catch (e) {
            w.outcome = outcomeOfCallError(e);
          }
          w.doneAtMs = Date.now() - t0;
          if (w.outcome.kind === "ok") return;
          last = JSON.stringify(w.outcome);
          await sleep(250);
        }
        failures.push(`node ${c.nodeId} could not write to ${TOPIC}-${p} for ${ms} ms after the cluster settled (last: ${last})`);
      }),
    ),
  );
  return failures;
}

/** When the cluster did not settle: the highest high watermark any node reports, per partition. */
async function bestHighWatermarks(clients: ReadonlyMap<number, NodeClients>, partitions: number): Promise<number[]> {
  const hws = new Array<number>(partitions).fill(0);
  for (const c of clients.values()) {
    const v = await c.describeTopics([TOPIC], 2_000).catch(() => null);
    v?.topics[0]?.partitions.forEach((x) => (hws[x.partition] = Math.max(hws[x.partition]!, Number(x.highWatermark))));
  }
  return hws;
}

/** Reads every partition of the topic `faults` from 0 to its high watermark through every node of `clients`. */
export async function finalRead(clients: ReadonlyMap<number, NodeClients>, h: History, hws: readonly number[], t0: number): Promise<void> {
  for (const c of clients.values()) {
    for (let p = 0; p < hws.length; p++) {
      let offset = 0;
      let failures = 0;
      while (offset < hws[p]!) {
        try {
          const res = await c.fetch(TOPIC, new Map([[p, offset]]), { maxWaitMs: 0, deadlineMs: 5_000, maxBytes: 4 << 20 });
          const fp = res.partitions[0]!;
          if (fp.error) throw new Error(`${fp.error.name}: ${fp.error.message}`);
          if (fp.records.length === 0)
            throw new Error(`nothing at ${offset} below the high watermark ${hws[p]} (answered high watermark ${fp.highWatermark})`);
          const offsets = fp.records.map((x) => Number(x.offset));
          h.reads.push({
            reader: FINAL_READER,
            node: c.nodeId,
            partition: p,
            from: offset,
            atMs: Date.now() - t0,
            offsets,
            values: fp.records.map((x) => Buffer.from(x.value ?? new Uint8Array()).toString("utf8")),
          });
          offset = Math.max(offset + 1, offsets[offsets.length - 1]! + 1);
        } catch (e) {
          if (++failures >= 20)
            throw new Error(
              `final read of ${TOPIC}-${p} through node ${c.nodeId} at offset ${offset}: ${e instanceof Error ? e.message : String(e)}`,
            );
          await sleep(250);
        }
      }
    }
  }
}

/** A stretch of the round (ms since the load started) around an anomaly. */
interface Window {
  readonly fromMs: number;
  readonly toMs: number;
  readonly why: string;
}

function windowsOf(r: CheckResult): Window[] {
  const a = r.anomalies;
  const out: Window[] = [];
  const around = (w: { sentAtMs: number; doneAtMs: number }, why: string): Window => ({
    fromMs: w.sentAtMs - 1_000,
    toMs: w.doneAtMs + 1_000,
    why,
  });
  for (const x of a.abortedRead) out.push(around(x.write, `aborted read of ${x.value}`));
  for (const x of a.lost) if (x.write) out.push(around(x.write, `lost ${x.value}`));
  for (const x of [...a.nonmonotonic, ...a.skip])
    out.push({
      fromMs: x.atMs - 2_000,
      toMs: x.atMs + 1_000,
      why: `order fault in a read of partition ${x.partition} by ${x.reader}@n${x.node}`,
    });
  const seen = new Set<string>();
  return out.filter((w) => !seen.has(`${w.fromMs}/${w.toMs}`) && seen.add(`${w.fromMs}/${w.toMs}`)).slice(0, 3);
}

/**
 * For the first anomalies: the faults and the node log lines (except the __consumer_offsets
 * ones) of the stretch of time around them, with times in ms since the load started.
 */
function evidence(cluster: Cluster, r: CheckResult, h: History, t0: number): string {
  const out: string[] = [];
  for (const w of windowsOf(r)) {
    out.push(`--- around ${w.why}: +${w.fromMs}..+${w.toMs} ms`);
    for (const f of h.faults) if (f.atMs >= w.fromMs && f.atMs <= w.toMs) out.push(`  fault +${f.atMs}: ${f.what}`);
    for (const nd of cluster.nodes) {
      const lines = nd.lines.filter((l) => {
        const at = typeof l["time"] === "string" ? Date.parse(l["time"]) - t0 : NaN;
        return at >= w.fromMs && at <= w.toMs && !JSON.stringify(l).includes("__consumer_offsets");
      });
      for (const l of lines.slice(0, 25)) {
        const { time, level: _level, node: _node, ...rest } = l as Record<string, unknown>;
        out.push(`  node ${nd.id} +${Date.parse(String(time)) - t0}: ${JSON.stringify(rest)}`);
      }
      if (lines.length > 25) out.push(`  node ${nd.id}: ${lines.length - 25} more lines in ${nd.logFile}`);
    }
  }
  return out.join("\n");
}
