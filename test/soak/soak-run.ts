/**
 * The soak test's engine (run by scripts/soak.ts; see test/soak/README.md): a broker or a
 * 3-node cluster under steady load for a while, with faults injected at seeded times, sampled
 * each second, checked at the end.
 *
 * Load: idempotent acks=all producers at a bounded rate on topic `soak`; GroupConsumer members of
 * group `soak-g` joining and leaving; topics created, written and deleted; raw Fetch (long-poll
 * and loaded), Subscribe, Consume and ProduceStream calls cancelled at seeded random moments; an
 * idle connection per node that only the keepalive pings keep busy. Faults: broker restarts by
 * SIGTERM (graceful: GOAWAY) and kill -9, in the first quarter of the run (at least its first
 * minute, at most its first half: restartWindowS), so that the second half measures a steady state.
 */
import * as nodeFs from "node:fs";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { Admin, Consumer, GroupConsumer, Producer } from "../../src/client/index.ts";
import { AdminService, DescribeClusterRequestSchema } from "../../src/gen/rill/v1/admin_service_pb.ts";
import { RecordFormat } from "../../src/gen/rill/v1/common_pb.ts";
import { FetchRequestSchema, FetchService, SubscribeRequestSchema } from "../../src/gen/rill/v1/fetch_service_pb.ts";
import { AutoOffsetReset, ConsumeRequestSchema, GroupService } from "../../src/gen/rill/v1/group_service_pb.ts";
import { Acks, ProduceService, ProduceStreamRequestSchema } from "../../src/gen/rill/v1/produce_service_pb.ts";
import { clientChannelOptions } from "../../src/protocol/channel-options.ts";
import { clientConstructor } from "../../src/protocol/grpc-service.ts";
import { Cluster, type ClusterNode, freePort, type Runtime } from "../integration/cluster-harness.ts";
import { type FaultWindow, inFault, type Point, quantile, restartWindowS, SeededRandom, slopePerMinute, windowMinima } from "./stats.ts";

/** What a soak run takes (scripts/soak.ts fills it from the command line). */
export interface SoakOptions {
  readonly minutes: number;
  readonly runtime: Runtime;
  readonly cluster: boolean;
  readonly seed: number;
  /** Records per second over all producers. */
  readonly rate: number;
  readonly bounds: SoakBounds;
  /** Progress lines (one every 10 s and at each fault). */
  readonly log: (line: string) => void;
  /** Broker settings for every node besides the soak's own (`--set key=value`). */
  readonly set?: Readonly<Record<string, string>>;
}

/** The fixed bounds the end checks hold each node to. */
export interface SoakBounds {
  readonly rssMiBMax: number;
  readonly fdsMax: number;
  /** Least-squares slope over the second half of RSS less the tail caches' bytes, MiB per minute. */
  readonly rssSlopeMiBPerMinMax: number;
  /** The slopes are checked only when the second half lasts at least this long (shorter: warm-up, not a leak). */
  readonly slopeCheckedFromHalfS: number;
  /** Least-squares slope of open descriptors over the second half, per minute. */
  readonly fdSlopePerMinMax: number;
}

/** One node's numbers of one sample; null where the process was down. */
export interface NodeSample {
  readonly id: number;
  readonly rssMiB: number | null;
  readonly fds: number | null;
  /** The broker's event-loop lag (prom-client `nodejs_eventloop_lag_seconds`), ms. */
  readonly lagMs: number | null;
  /** The broker's JavaScript heap (`rill_process_heap_bytes`: heapTotal), MiB: tells a JS leak from native growth. */
  readonly heapMiB: number | null;
  /**
   * Produce requests the broker held until its metadata knew their producer id or epoch
   * (`rill_produce_producer_metadata_waits_total`, since the process started): a lagging leader.
   */
  readonly producerWaits: number | null;
  /** Bytes the tail caches hold (`rill_memory_budget_used_bytes{pool="tail_cache"}`), MiB: live memory that grows until log.tail.cache.total.bytes. */
  readonly tailCacheMiB?: number | null;
}

/** One sample, taken each second. */
export interface Sample {
  readonly t: number;
  readonly nodes: readonly NodeSample[];
  /** p99 of the produce latencies acknowledged in the last second, ms. */
  readonly produceP99Ms: number | null;
  /**
   * The longest event-loop delay of the soak's own process in the last second, ms: its clients
   * measure the produce latencies, so a stall here shows as broker latency that is not.
   */
  readonly harnessLagMaxMs: number;
  readonly acked: number;
  readonly consumed: number;
}

/** An error the soak saw, and whether a fault it injected explains it. */
export interface SoakError {
  readonly t: number;
  readonly source: string;
  readonly message: string;
  excused: boolean;
}

/** The numbers of one node over the run. */
export interface NodeSummary {
  readonly id: number;
  readonly rssMiB: { start: number | null; end: number | null; max: number | null };
  readonly fds: { start: number | null; end: number | null; max: number | null };
  readonly rssSlopeMiBPerMin: number;
  readonly fdSlopePerMin: number;
  readonly lagMs: { p99: number | null; max: number | null };
  readonly heapMiB: { start: number | null; end: number | null; max: number | null };
  /** Least-squares slope of the JS heap over the second half, MiB per minute (reported, not checked). */
  readonly heapSlopeMiBPerMin: number;
  /** The tail caches' bytes, and their slope over the second half (reported, not checked): RSS growth that is the caches filling. */
  readonly tailCacheMiB: { start: number | null; end: number | null; max: number | null };
  readonly tailCacheSlopeMiBPerMin: number;
  /**
   * Least-squares slope over the second half of RSS less the tail caches' bytes, MiB per minute:
   * the growth that is not the caches filling toward log.tail.cache.total.bytes (a bounded pool
   * that a 10-minute run at the default rate cannot fill). Reported beside the RSS slope.
   */
  readonly rssLessTailCacheSlopeMiBPerMin: number;
  /** The same slope over the lowest point of each 30 s (windowMinima): the floor the collector's sawtooth returns to (reported). */
  readonly rssLessTailCacheFloorSlopeMiBPerMin: number;
}

/** What a soak run found; `failures` empty means it passed. */
export interface SoakResult {
  readonly options: Omit<SoakOptions, "log">;
  readonly durationS: number;
  readonly nodes: readonly NodeSummary[];
  readonly produce: { acked: number; failed: number; p99Ms: number | null; maxSecondP99Ms: number | null };
  /** The soak process's own event-loop delay, ms: p99 and max of each second's longest (reported, not checked). */
  readonly harnessLagMs: { p99: number | null; max: number | null };
  readonly consumed: number;
  readonly readBack: { checked: number; missing: number; wrong: number };
  readonly counts: Record<string, number>;
  readonly faults: readonly FaultWindow[];
  readonly errors: readonly SoakError[];
  readonly failures: readonly string[];
  readonly samples: readonly Sample[];
}

/** Seconds after a restarted node serves again during which errors are still the fault's. */
const GRACE_S = 15;
const TOPIC = "soak";
const PARTITIONS = 6;
const IDLE_TOPIC = "soak-idle";
const CANCEL_TOPIC = "soak-cancel";
/** Produce calls one producer may have outstanding before it skips a tick (the bound of the rate). */
const OUTSTANDING_MAX = 2000;

const AdminClient = clientConstructor(AdminService);
const FetchClient = clientConstructor(FetchService);
const GroupClient = clientConstructor(GroupService);
const ProduceClient = clientConstructor(ProduceService);

interface Acked {
  readonly partition: number;
  readonly offset: number;
  readonly value: string;
}

/** The state one run shares between its loops. */
class Soak {
  readonly rnd: SeededRandom;
  readonly t0 = performance.now();
  /** Wall-clock ms at t0 (the brokers' log lines carry wall-clock times). */
  readonly wallT0 = Date.now();
  readonly durationS: number;
  readonly faults: FaultWindow[] = [];
  readonly errors: SoakError[] = [];
  readonly samples: Sample[] = [];
  readonly acked: Acked[] = [];
  readonly latencies: number[] = [];
  readonly allLatencies: number[] = [];
  readonly counts: Record<string, number> = {};
  consumed = 0;
  produceFailed = 0;
  stopping = false;
  readonly bootstrap: string;

  constructor(
    readonly o: SoakOptions,
    readonly cluster: Cluster,
    readonly metricsPorts: readonly number[],
  ) {
    this.rnd = new SeededRandom(o.seed);
    this.durationS = o.minutes * 60;
    this.bootstrap = cluster.nodes.map((n) => n.address).join(",");
  }

  /** Seconds since the start. */
  now(): number {
    return (performance.now() - this.t0) / 1000;
  }

  count(name: string, by = 1): void {
    this.counts[name] = (this.counts[name] ?? 0) + by;
  }

  error(source: string, e: unknown): void {
    const t = this.now();
    this.errors.push({ t, source, message: describe(e), excused: false });
    this.count(`errors.${source}`);
  }

  /** Sleeps `ms` or until the run stops; false once stopping. */
  async sleep(ms: number): Promise<boolean> {
    const end = performance.now() + ms;
    while (!this.stopping && performance.now() < end) await delay(Math.min(250, end - performance.now()));
    return !this.stopping;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, ms)));
}

function describe(e: unknown): string {
  const g = e as Partial<grpc.ServiceError>;
  const code = typeof g.code === "number" && !String(g.message).startsWith(`${g.code} `) ? `${grpc.status[g.code]} ` : "";
  return e instanceof Error ? `${code}${e.name}: ${e.message}` : String(e);
}

/** Runs one soak and returns what it found (it never throws for a failed check). */
export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const n = o.cluster ? 3 : 1;
  const metricsPorts: number[] = [];
  for (let i = 0; i < n; i++) metricsPorts.push(await freePort());
  const cluster = await Cluster.start({
    nodes: n,
    runtime: o.runtime,
    name: "rill-soak-",
    nodeSet: (id) => ({ ...o.set, "metrics.port": metricsPorts[id - 1]! }),
    startTimeoutMs: 60_000,
  });
  try {
    await cluster.waitForStable(60_000);
    const s = new Soak(o, cluster, metricsPorts);
    const admin = new Admin({ bootstrap: s.bootstrap });
    try {
      await admin.createTopics([
        { name: TOPIC, partitions: PARTITIONS, replicationFactor: n },
        { name: IDLE_TOPIC, partitions: 1, replicationFactor: n },
        { name: CANCEL_TOPIC, partitions: 2, replicationFactor: n },
      ]);
      await runLoops(s, admin);
      return await finish(s);
    } finally {
      await admin.close();
    }
  } finally {
    // A graceful end (SIGTERM) rather than close()'s SIGKILL: what a node's runtime writes at exit
    // (a CPU profile asked for with RILL_NODE_RUNTIME_ARGS) is written.
    await Promise.all(cluster.nodes.map((nd) => (nd.running ? nd.terminate().catch(() => null) : null)));
    await cluster.close();
  }
}

async function runLoops(s: Soak, admin: Admin): Promise<void> {
  const onUnhandled = (e: unknown): void => s.error("unhandled", e);
  process.on("unhandledRejection", onUnhandled);
  process.on("uncaughtException", onUnhandled);
  const idle = s.cluster.nodes.map((nd) => new AdminClient(nd.address, grpc.credentials.createInsecure(), clientChannelOptions()));
  try {
    const loops = [
      sampler(s),
      progress(s),
      restarts(s, idle),
      producerLoop(s, 0),
      producerLoop(s, 1),
      groupMembership(s),
      topicChurn(s, admin),
      cancellations(s, 0),
      cancellations(s, 1),
      idleConnections(s, idle),
    ];
    await s.sleep(s.durationS * 1000);
    s.stopping = true;
    await Promise.all(loops);
  } finally {
    for (const c of idle) c.close();
    process.off("unhandledRejection", onUnhandled);
    process.off("uncaughtException", onUnhandled);
  }
}

/** Every second: each node's RSS, descriptors and event-loop lag, and the last second's produce p99. */
async function sampler(s: Soak): Promise<void> {
  let lastAcked = 0;
  const waitsSeen = new Map<number, { pid: number; waits: number }>();
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  while (await s.sleep(1000 - ((performance.now() - s.t0) % 1000))) {
    const harnessLagMaxMs = loop.max / 1e6;
    loop.reset();
    const t = Math.round(s.now());
    const nodes = await Promise.all(s.cluster.nodes.map((nd, i) => sampleNode(nd, s.metricsPorts[i]!)));
    s.cluster.nodes.forEach((nd, i) => countProducerWaits(s, waitsSeen, nd, nodes[i]!));
    const lat = s.latencies.splice(0);
    s.samples.push({
      t,
      nodes,
      produceP99Ms: quantile(lat, 0.99),
      harnessLagMaxMs,
      acked: s.acked.length - lastAcked,
      consumed: s.consumed,
    });
    lastAcked = s.acked.length;
  }
  loop.disable();
}

/** Adds what a node's producer-wait counter grew by since the last sample (a restart starts it at 0) to `producer.metadata-waits`. */
function countProducerWaits(s: Soak, seen: Map<number, { pid: number; waits: number }>, nd: ClusterNode, sample: NodeSample): void {
  const pid = nd.pid;
  if (pid === undefined || sample.producerWaits === null) return;
  const last = seen.get(nd.id);
  const grew = last?.pid === pid ? sample.producerWaits - last.waits : sample.producerWaits;
  if (grew > 0) s.count("producer.metadata-waits", grew);
  seen.set(nd.id, { pid, waits: sample.producerWaits });
}

async function sampleNode(nd: ClusterNode, metricsPort: number): Promise<NodeSample> {
  const pid = nd.pid;
  if (pid === undefined || !nd.running)
    return { id: nd.id, rssMiB: null, fds: null, lagMs: null, heapMiB: null, producerWaits: null, tailCacheMiB: null };
  const m = await scrape(metricsPort);
  return { id: nd.id, rssMiB: rssMiB(pid), fds: fdCount(pid), ...m };
}

/** VmRSS of `pid` in MiB, null when it is gone. */
export function rssMiB(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(nodeFs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** Open descriptors of `pid`, null when it is gone. */
export function fdCount(pid: number): number | null {
  try {
    return nodeFs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}

/** Event-loop lag and heap from the broker's /metrics; nulls when it does not answer within 900 ms. */
async function scrape(
  port: number,
): Promise<{ lagMs: number | null; heapMiB: number | null; producerWaits: number | null; tailCacheMiB: number | null }> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(900) });
    const text = await res.text();
    const value = (name: string): number | null => {
      const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)`, "m").exec(text);
      return m ? Number(m[1]) : null;
    };
    const tail = /^rill_memory_budget_used_bytes\{[^}]*pool="tail_cache"[^}]*\} ([0-9.e+-]+)/m.exec(text);
    const lag = value("rill_nodejs_eventloop_lag_seconds");
    const heap = value("rill_process_heap_bytes");
    return {
      lagMs: lag === null ? null : lag * 1000,
      heapMiB: heap === null ? null : heap / 2 ** 20,
      producerWaits: value("rill_produce_producer_metadata_waits_total"),
      tailCacheMiB: tail ? Number(tail[1]) / 2 ** 20 : null,
    };
  } catch {
    return { lagMs: null, heapMiB: null, producerWaits: null, tailCacheMiB: null };
  }
}

async function progress(s: Soak): Promise<void> {
  while (await s.sleep(10_000)) {
    const last = s.samples.at(-1);
    const nodes = last?.nodes.map(
      (x) =>
        `n${x.id} rss ${x.rssMiB?.toFixed(0) ?? "-"} MiB heap ${x.heapMiB?.toFixed(0) ?? "-"} MiB fds ${x.fds ?? "-"} lag ${x.lagMs?.toFixed(1) ?? "-"} ms`,
    );
    s.o.log(
      `t=${Math.round(s.now())}s acked ${s.acked.length} consumed ${s.consumed} errors ${s.errors.length} p99 ${last?.produceP99Ms?.toFixed(1) ?? "-"} ms (own loop ${last?.harnessLagMaxMs.toFixed(0) ?? "-"} ms) | ${nodes?.join(" | ") ?? ""}`,
    );
  }
}

/**
 * Restarts at seeded times within restartWindowS (the first quarter of a long run, the first half
 * of a short one): SIGTERM (GOAWAY) and kill -9, both when there are two or more.
 */
async function restarts(s: Soak, idle: readonly InstanceType<typeof AdminClient>[]): Promise<void> {
  const window = restartWindowS(s.durationS);
  const times: number[] = [];
  for (let t = s.rnd.int(15, 25); t < window; t += s.rnd.int(30, 50)) times.push(t);
  let kill9 = s.rnd.next() < 0.5;
  for (const at of times) {
    if (!(await s.sleep((at - s.now()) * 1000))) return;
    const nd = s.rnd.pick(s.cluster.nodes);
    const fault: FaultWindow = { kind: kill9 ? "kill9" : "sigterm", node: nd.id, start: s.now(), end: Number.POSITIVE_INFINITY };
    s.faults.push(fault);
    s.o.log(`t=${Math.round(fault.start)}s fault: ${fault.kind} node ${nd.id}`);
    try {
      await nd.restart({ kill9 });
      if (s.cluster.nodes.length > 1) await s.cluster.waitForStable(60_000);
      fault.end = s.now();
      s.count(`restarts.${fault.kind}`);
      await reconnects(s, idle[s.cluster.nodes.indexOf(nd)]!, nd.id);
    } catch (e) {
      s.error("restart", e);
      fault.end = s.now();
    }
    kill9 = !kill9;
  }
}

/** The idle connection to a restarted node must serve again within the grace period (GOAWAY handled, reconnected). */
async function reconnects(s: Soak, client: InstanceType<typeof AdminClient>, id: number): Promise<void> {
  const start = s.now();
  for (;;) {
    try {
      await describeCluster(client, 2000);
      s.count("idle.reconnects");
      s.o.log(`t=${Math.round(s.now())}s node ${id} serving; idle connection reconnected in ${(s.now() - start).toFixed(1)} s`);
      return;
    } catch (e) {
      if (s.now() - start > GRACE_S - 2) {
        s.error("idle-reconnect", e);
        return;
      }
      await delay(250);
    }
  }
}

function describeCluster(client: InstanceType<typeof AdminClient>, deadlineMs: number): Promise<unknown> {
  return new Promise((resolve, reject) =>
    client.describeCluster(create(DescribeClusterRequestSchema, {}), new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (e, r) =>
      e ? reject(e) : resolve(r),
    ),
  );
}

/**
 * One idle connection per node, opened at the start and asked something once a minute only:
 * in between it carries nothing but keepalive pings (the SDK's channel options, the server's
 * keepalive), and it must stay READY outside the restarts.
 */
async function idleConnections(s: Soak, idle: readonly InstanceType<typeof AdminClient>[]): Promise<void> {
  await Promise.all(idle.map((c) => describeCluster(c, 5000).catch((e) => s.error("idle", e))));
  let lastAsk = s.now();
  while (await s.sleep(1000)) {
    const t = s.now();
    idle.forEach((c, i) => {
      const state = c.getChannel().getConnectivityState(false);
      if (state !== grpc.connectivityState.READY && !inFault(t, s.faults, 0)) {
        s.error("idle", new Error(`idle connection to node ${i + 1} is ${grpc.connectivityState[state]}`));
      }
    });
    if (t - lastAsk >= 60) {
      lastAsk = t;
      await Promise.all(
        idle.map((c) =>
          describeCluster(c, 5000).then(
            () => s.count("idle.calls"),
            (e) => s.error("idle", e),
          ),
        ),
      );
    }
  }
}

/** One idempotent acks=all producer at half the rate, in 50 ms ticks, skipping ticks when too much is outstanding. */
async function producerLoop(s: Soak, id: number): Promise<void> {
  const p = new Producer({ bootstrap: s.bootstrap, acks: "all", idempotent: true, lingerMs: 5 });
  const perTick = s.o.rate / 2 / 20;
  let owed = 0;
  let seq = 0;
  let outstanding = 0;
  const sends: Promise<void>[] = [];
  while (await s.sleep(50)) {
    owed += perTick;
    if (outstanding >= OUTSTANDING_MAX) {
      s.count("produce.skipped-ticks");
      continue;
    }
    for (; owed >= 1; owed--) {
      const value = `p${id}-${seq++}`;
      const started = performance.now();
      outstanding++;
      const done = p.send({ topic: TOPIC, key: `k${seq % 97}`, value }).then(
        (m) => {
          const ms = performance.now() - started;
          s.latencies.push(ms);
          s.allLatencies.push(ms);
          s.acked.push({ partition: m.partition, offset: m.offset, value });
        },
        (e) => {
          s.produceFailed++;
          s.error("produce", e);
        },
      );
      sends.push(done.finally(() => outstanding--));
      if (sends.length > 10_000) sends.splice(0, 5000);
    }
  }
  await p.close().catch((e) => s.error("produce", e));
  await Promise.all(sends);
}

/** Group `soak-g`: one to three GroupConsumer members, one joining or leaving every 4–10 s. */
async function groupMembership(s: Soak): Promise<void> {
  const members: { c: GroupConsumer; done: Promise<void> }[] = [];
  const join = (): void => {
    const c = new GroupConsumer({ bootstrap: s.bootstrap, groupId: "soak-g", autoOffsetReset: "earliest", sessionTimeoutMs: 10_000 });
    c.subscribe([TOPIC]);
    const done = (async () => {
      try {
        for await (const _r of c) s.consumed++;
      } catch (e) {
        if (!s.stopping) s.error("group", e);
      }
    })();
    members.push({ c, done });
    s.count("group.joins");
  };
  join();
  while (await s.sleep(s.rnd.int(4000, 10_000))) {
    const leave = members.length >= 3 || (members.length > 1 && s.rnd.next() < 0.5);
    if (!leave) {
      join();
      continue;
    }
    const m = members.splice(s.rnd.int(0, members.length - 1), 1)[0]!;
    await m.c.close().catch((e) => s.error("group", e));
    await m.done;
    s.count("group.leaves");
  }
  await Promise.all(
    members.map(async (m) => {
      await m.c.close().catch((e) => s.error("group", e));
      await m.done;
    }),
  );
}

/** Creates a topic every 3–8 s, writes to it, deletes it 1–4 s later. */
async function topicChurn(s: Soak, admin: Admin): Promise<void> {
  const p = new Producer({ bootstrap: s.bootstrap, acks: "all", idempotent: true });
  const n = s.cluster.nodes.length;
  let i = 0;
  while (await s.sleep(s.rnd.int(3000, 8000))) {
    const name = `soak-churn-${i++}`;
    try {
      await admin.createTopics([{ name, partitions: 2, replicationFactor: n }]);
      s.count("topics.created");
      await Promise.all(Array.from({ length: 10 }, (_, k) => p.send({ topic: name, value: `c${k}` })));
      await s.sleep(s.rnd.int(1000, 4000));
      await admin.deleteTopics([name]);
      s.count("topics.deleted");
    } catch (e) {
      s.error("topics", e);
    }
  }
  await p.close().catch((e) => s.error("topics", e));
}

type Kind = "fetch-wait" | "fetch-load" | "subscribe" | "consume" | "produce-stream";
const KINDS: readonly Kind[] = ["fetch-wait", "fetch-load", "subscribe", "consume", "produce-stream"];

/** Raw clients of one node, kept for the whole run (they reconnect across restarts). */
interface RawClients {
  readonly fetch: InstanceType<typeof FetchClient>;
  readonly group: InstanceType<typeof GroupClient>;
  readonly produce: InstanceType<typeof ProduceClient>;
}

/** Calls of every kind, cancelled at a seeded random moment (0–800 ms after they start); each must end CANCELLED or OK. */
async function cancellations(s: Soak, id: number): Promise<void> {
  const creds = grpc.credentials.createInsecure();
  const raw: RawClients[] = s.cluster.nodes.map((nd) => ({
    fetch: new FetchClient(nd.address, creds, clientChannelOptions()),
    group: new GroupClient(nd.address, creds, clientChannelOptions()),
    produce: new ProduceClient(nd.address, creds, clientChannelOptions()),
  }));
  try {
    while (await s.sleep(s.rnd.int(100, 600))) {
      const kind = s.rnd.pick(KINDS);
      const c = s.rnd.pick(raw);
      const afterMs = s.rnd.int(0, 800);
      const tag = `${id}-${s.counts["cancel.started"] ?? 0}`;
      let outcome = await cancelOne(kind, c, afterMs, tag);
      s.count("cancel.started");
      // A raw Consume must reach its group's coordinator: like a thin client, follow the answer once.
      const coordinator = outcome === null ? null : /the coordinator of "[^"]*" is broker (\d+)/.exec(outcome.message);
      if (coordinator !== null && raw[Number(coordinator[1]) - 1] !== undefined) {
        s.count("cancel.consume-redirected");
        outcome = await cancelOne(kind, raw[Number(coordinator[1]) - 1]!, afterMs, tag);
      }
      if (outcome === null) s.count(`cancel.${kind}`);
      else if (outcome.code === grpc.status.OK) s.count(`cancel.completed-first.${kind}`);
      else s.error(`cancel-${kind}`, new Error(outcome.message));
    }
  } finally {
    for (const r of raw) {
      r.fetch.close();
      r.group.close();
      r.produce.close();
    }
  }
}

/** Starts one call of `kind` and cancels it after `afterMs`; null when it ended CANCELLED, else how it ended. */
function cancelOne(kind: Kind, c: RawClients, afterMs: number, tag: string): Promise<{ code: number; message: string } | null> {
  return new Promise((resolve) => {
    const end = (e: grpc.ServiceError | null): void => {
      clearTimeout(timer);
      if (e === null) resolve({ code: grpc.status.OK, message: "completed" });
      else resolve(e.code === grpc.status.CANCELLED ? null : { code: e.code, message: describe(e) });
    };
    const call = startCall(kind, c, tag, end);
    const timer = setTimeout(() => call.cancel(), afterMs);
  });
}

function startCall(kind: Kind, c: RawClients, tag: string, end: (e: grpc.ServiceError | null) => void): { cancel(): void } {
  const md = new grpc.Metadata();
  const opts = { deadline: Date.now() + 30_000 };
  switch (kind) {
    case "fetch-wait":
    case "fetch-load": {
      const topic = kind === "fetch-wait" ? IDLE_TOPIC : TOPIC;
      const req = create(FetchRequestSchema, {
        partitions: [{ topic, partition: 0, offset: 0n }],
        maxWaitMs: kind === "fetch-wait" ? 10_000 : 0,
        minBytes: kind === "fetch-wait" ? 1 : 0,
        maxBytes: 4 << 20,
        format: RecordFormat.BATCHES,
      });
      return c.fetch.fetch(req, md, opts, (e) => end(e));
    }
    case "subscribe": {
      const call = c.fetch.subscribe(
        create(SubscribeRequestSchema, { partitions: [{ topic: TOPIC, partition: 1, offset: 0n }], format: RecordFormat.RECORDS }),
        md,
        opts,
      );
      return streamEnd(call, end);
    }
    case "consume": {
      const call = c.group.consume(md, opts);
      call.write(
        create(ConsumeRequestSchema, {
          kind: {
            case: "subscribe",
            value: {
              groupId: `soak-raw-${tag.split("-")[0]}`,
              topics: [TOPIC],
              autoOffsetReset: AutoOffsetReset.EARLIEST,
              sessionTimeoutMs: 6000,
            },
          },
        }),
      );
      return streamEnd(call, end);
    }
    case "produce-stream": {
      const call = c.produce.produceStream(md, opts);
      for (let i = 0; i < 5; i++) {
        const records = Array.from({ length: 20 }, (_, k) => ({ value: new TextEncoder().encode(`x${tag}-${i}-${k}`) }));
        call.write(
          create(ProduceStreamRequestSchema, {
            requestId: BigInt(i),
            request: { topic: CANCEL_TOPIC, records, acks: Acks.ALL, timeoutMs: 10_000 },
          }),
        );
      }
      return streamEnd(call, end);
    }
  }
}

/** Ends `end` once a stream call's status arrives; the call's data is read and dropped. */
function streamEnd(
  call: grpc.ClientReadableStream<unknown> | grpc.ClientDuplexStream<unknown, unknown>,
  end: (e: grpc.ServiceError | null) => void,
): { cancel(): void } {
  call.on("data", () => {});
  call.on("error", (e: grpc.ServiceError) => end(e));
  call.on("status", (st: grpc.StatusObject) => {
    if (st.code === grpc.status.OK) end(null);
  });
  return call;
}

/** Reads every acknowledged record back, excuses the faults' errors, summarizes and checks. */
async function finish(s: Soak): Promise<SoakResult> {
  const readBack = await readBackAcked(s);
  fencesFromLogs(s);
  for (const e of s.errors) e.excused = inFault(e.t, s.faults, GRACE_S);
  const half = s.durationS / 2;
  const nodes = s.cluster.nodes.map((nd) => summarizeNode(s, nd.id, half));
  const failures = checks(s, nodes, readBack);
  return {
    options: { minutes: s.o.minutes, runtime: s.o.runtime, cluster: s.o.cluster, seed: s.o.seed, rate: s.o.rate, bounds: s.o.bounds },
    durationS: s.durationS,
    nodes,
    produce: {
      acked: s.acked.length,
      failed: s.produceFailed,
      p99Ms: quantile(s.allLatencies, 0.99),
      maxSecondP99Ms: s.samples.reduce<number | null>((m, x) => (x.produceP99Ms === null ? m : Math.max(m ?? 0, x.produceP99Ms)), null),
    },
    harnessLagMs: {
      p99: quantile(
        s.samples.map((x) => x.harnessLagMaxMs),
        0.99,
      ),
      max: s.samples.length === 0 ? null : Math.max(...s.samples.map((x) => x.harnessLagMaxMs)),
    },
    consumed: s.consumed,
    readBack,
    counts: s.counts,
    faults: s.faults,
    errors: s.errors,
    failures,
    samples: s.samples,
  };
}

/**
 * Every broker the controller fenced for a lapsed session, as an error at the time it logged it:
 * outside a restart no broker may be fenced (the Bun soak's minute-long stall began with the
 * single broker fencing itself after a 2-second pause of its own event loop).
 */
function fencesFromLogs(s: Soak): void {
  for (const nd of s.cluster.nodes) {
    for (const l of nd.logs("broker session expired: fenced")) {
      const at = typeof l["time"] === "string" ? Date.parse(l["time"]) : Number.NaN;
      if (Number.isNaN(at)) continue;
      const t = (at - s.wallT0) / 1000;
      s.errors.push({
        t,
        source: "fence",
        message: `node ${nd.id}'s controller fenced broker ${String(l["broker"])}: its session expired`,
        excused: false,
      });
      s.count("errors.fence");
    }
  }
  s.errors.sort((a, b) => a.t - b.t);
}

/**
 * Per partition, one past the highest acknowledged offset. A loop, not Math.max(...keys): a
 * 60-minute run acknowledges ~100,000 records per partition, more arguments than a call may take
 * (both 60-minute runs of the fifth session ended in "RangeError: Maximum call stack size
 * exceeded" here, after their last sample).
 */
export function endOffsets(byPartition: ReadonlyMap<number, ReadonlyMap<number, string>>): Map<number, number> {
  const ends = new Map<number, number>();
  for (const [p, m] of byPartition) {
    let last = -1;
    for (const offset of m.keys()) if (offset > last) last = offset;
    ends.set(p, last + 1);
  }
  return ends;
}

/** Reads topic `soak` from the start to its end and compares every acknowledged record. */
async function readBackAcked(s: Soak): Promise<{ checked: number; missing: number; wrong: number }> {
  const byPartition = new Map<number, Map<number, string>>();
  for (const a of s.acked) {
    let m = byPartition.get(a.partition);
    if (!m) byPartition.set(a.partition, (m = new Map()));
    m.set(a.offset, a.value);
  }
  const ends = endOffsets(byPartition);
  const consumer = new Consumer({ bootstrap: s.bootstrap });
  let checked = 0;
  let wrong = 0;
  const seen = new Set<string>();
  try {
    consumer.assign([...ends.keys()].map((partition) => ({ topic: TOPIC, partition, offset: 0 })));
    const deadline = performance.now() + 120_000;
    const remaining = new Set(ends.keys());
    for await (const r of consumer) {
      const want = byPartition.get(r.partition)?.get(r.offset);
      if (want !== undefined) {
        checked++;
        seen.add(`${r.partition}:${r.offset}`);
        if (r.value?.toString() !== want) wrong++;
      }
      if (r.offset + 1 >= ends.get(r.partition)!) remaining.delete(r.partition);
      if (remaining.size === 0 || performance.now() > deadline) break;
    }
  } catch (e) {
    s.error("read-back", e);
  } finally {
    await consumer.close();
  }
  return { checked, missing: s.acked.length - seen.size, wrong };
}

function summarizeNode(s: Soak, id: number, half: number): NodeSummary {
  const mine = s.samples.map((x) => ({ t: x.t, n: x.nodes.find((y) => y.id === id)! }));
  const series = (f: (n: NodeSample) => number | null): Point[] =>
    mine.flatMap(({ t, n }) => {
      const v = f(n);
      return v === null ? [] : [{ t, v }];
    });
  const rss = series((n) => n.rssMiB);
  const fds = series((n) => n.fds);
  const lag = series((n) => n.lagMs).map((p) => p.v);
  const heap = series((n) => n.heapMiB);
  const tail = series((n) => n.tailCacheMiB ?? null);
  const rssLessTail = series((n) => (n.rssMiB === null || n.tailCacheMiB == null ? null : n.rssMiB - n.tailCacheMiB));
  const stats = (ps: Point[]) => ({
    start: ps[0]?.v ?? null,
    end: ps.at(-1)?.v ?? null,
    max: ps.length === 0 ? null : Math.max(...ps.map((p) => p.v)),
  });
  const secondHalf = (ps: Point[]) => ps.filter((p) => p.t >= half && !inFault(p.t, s.faults, GRACE_S));
  return {
    id,
    rssMiB: stats(rss),
    fds: stats(fds),
    rssSlopeMiBPerMin: slopePerMinute(secondHalf(rss)),
    fdSlopePerMin: slopePerMinute(secondHalf(fds)),
    lagMs: { p99: quantile(lag, 0.99), max: lag.length === 0 ? null : Math.max(...lag) },
    heapMiB: stats(heap),
    heapSlopeMiBPerMin: slopePerMinute(secondHalf(heap)),
    tailCacheMiB: stats(tail),
    tailCacheSlopeMiBPerMin: slopePerMinute(secondHalf(tail)),
    rssLessTailCacheSlopeMiBPerMin: slopePerMinute(secondHalf(rssLessTail)),
    rssLessTailCacheFloorSlopeMiBPerMin: slopePerMinute(windowMinima(secondHalf(rssLessTail), 30)),
  };
}

function checks(s: Soak, nodes: readonly NodeSummary[], readBack: { checked: number; missing: number; wrong: number }): string[] {
  const b = s.o.bounds;
  const out: string[] = [];
  const unexcused = s.errors.filter((e) => !e.excused);
  if (unexcused.length > 0)
    out.push(
      `${unexcused.length} error(s) outside the injected faults, first: t=${unexcused[0]!.t.toFixed(1)}s ${unexcused[0]!.source}: ${unexcused[0]!.message}`,
    );
  if (s.acked.length === 0) out.push("no record was acknowledged");
  if (readBack.missing > 0 || readBack.wrong > 0)
    out.push(`read back: ${readBack.missing} acknowledged record(s) missing, ${readBack.wrong} with another value`);
  if (s.consumed === 0) out.push("the group consumed nothing");
  const slopes = s.durationS / 2 >= b.slopeCheckedFromHalfS;
  for (const nd of nodes) {
    if ((nd.rssMiB.max ?? 0) > b.rssMiBMax) out.push(`node ${nd.id}: RSS peaked at ${nd.rssMiB.max!.toFixed(0)} MiB > ${b.rssMiBMax} MiB`);
    if ((nd.fds.max ?? 0) > b.fdsMax) out.push(`node ${nd.id}: ${nd.fds.max} open descriptors > ${b.fdsMax}`);
    // The tail caches are a bounded pool (log.tail.cache.total.bytes, entry overhead counted)
    // that a run refills after each restart at the rate the log is written: growth toward that
    // bound is not a leak, so the bound is held by RSS less the caches' bytes (both printed).
    if (slopes && nd.rssLessTailCacheSlopeMiBPerMin > b.rssSlopeMiBPerMinMax) {
      out.push(
        `node ${nd.id}: RSS less the tail caches grew ${nd.rssLessTailCacheSlopeMiBPerMin.toFixed(2)} MiB/min over the second half > ${b.rssSlopeMiBPerMinMax} (RSS itself ${nd.rssSlopeMiBPerMin.toFixed(2)})`,
      );
    }
    if (slopes && nd.fdSlopePerMin > b.fdSlopePerMinMax) {
      out.push(`node ${nd.id}: descriptors grew ${nd.fdSlopePerMin.toFixed(2)}/min over the second half > ${b.fdSlopePerMinMax}`);
    }
  }
  return out;
}
