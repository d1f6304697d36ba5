/**
 * Prometheus metrics (prom-client) on an HTTP port of 127.0.0.1: process metrics, and per
 * partition the log end offset, log start offset, size and the storage counters the logs keep
 * themselves (appends, cache and disk reads, fsyncs, duplicate batches answered). Values are
 * read at scrape time, so the data path pays nothing for them. Events the service publishes
 * (service/corrupt-reads.ts) are counted as they come: `rill_corrupt_reads_total{topic,partition}`
 * (reads that met a stored batch they could not decode), and `logCorruptReads` logs each at error.
 *
 * `rill_process_heap_bytes` is the JavaScript engine's heap (V8 under Node and Deno,
 * JavaScriptCore under Bun), from `process.memoryUsage().heapTotal`. prom-client's default
 * metric of that name is the process's VmData — its reserved data segment, not a heap: about
 * 6 GB under Bun (JavaScriptCore reserves its address space up front) and above the resident
 * size under Node too — so it is replaced.
 */
import type { MemoryBudget } from "../base/memory-budget.ts";
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";
import { type CorruptRead, onCorruptRead } from "../service/corrupt-reads.ts";
import type { LogManager } from "../storage/log-manager.ts";
import { ReplicaManager } from "../replication/replica-manager.ts";
import type { BrokerLog, IsrCounters } from "./log.ts";
import { HttpListener } from "../http/server.ts";
import type { GroupRuntime } from "../coordinator/group-runtime.ts";
import { effectiveConfig } from "../metadata/controller.ts";
import type { LeaderOffsets } from "../service/admin-ports.ts";
import type { QuotaThrottle } from "../service/quota-throttle.ts";
import { DURATION_BUCKETS_SECONDS, type RequestMetrics } from "../service/request-metrics.ts";

/** The heap gauge, replacing prom-client's default of the same name (see the module comment). */
const PROCESS_HEAP = "rill_process_heap_bytes";

/** A running metrics endpoint. */
export interface MetricsServer {
  readonly port: number;
  close(): Promise<void>;
}

/** A corrupt batch is logged at most once per this long (a client retrying it would flood the log). */
export const CORRUPT_LOG_INTERVAL_MS = 60_000;
/** Batches remembered for that; beyond it the memory is cleared (and each is logged again). */
const CORRUPT_LOG_KEYS_MAX = 10_000;

/**
 * Logs the corrupt reads of `source` (the broker's ReplicaManager) at error, until the returned
 * function is called: each bad batch once per CORRUPT_LOG_INTERVAL_MS, with the number of reads
 * of it not logged since (`repeats`). The counter counts every read.
 */
export function logCorruptReads(source: object, log: BrokerLog, nowMs: () => number = Date.now): () => void {
  const last = new Map<string, { atMs: number; repeats: number }>();
  return onCorruptRead(source, (e: CorruptRead) => {
    const key = `${e.topic}\u0000${e.partition}\u0000${e.offset}`;
    const seen = last.get(key);
    const now = nowMs();
    if (seen && now - seen.atMs < CORRUPT_LOG_INTERVAL_MS) {
      seen.repeats++;
      return;
    }
    if (last.size >= CORRUPT_LOG_KEYS_MAX) last.clear();
    last.set(key, { atMs: now, repeats: 0 });
    log.error(
      {
        topic: e.topic,
        partition: e.partition,
        offset: e.offset,
        skipTo: e.skipTo,
        api: e.api,
        reason: e.reason,
        repeats: seen?.repeats ?? 0,
      },
      "stored batch cannot be read: its partition answers CORRUPT_MESSAGE",
    );
  });
}

/** The limits of issue 14 the metrics report (read at scrape time). */
export interface LimitReadings {
  /** The gRPC listener's connections: open now, refused so far, and `max.connections`. */
  readonly connections: { readonly open: number; readonly refused: number; readonly max: number };
  /** `max.partitions` as the open-file limit lowers it. */
  readonly partitionsMax: number;
}

/** Gauges and a counter of `limits`: connections open/refused/max, partitions max, log descriptors. */
function limitMetrics(registry: Registry, logs: LogManager, limits: LimitReadings): void {
  const gauge = (name: string, help: string, value: () => number | null): void => {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        const v = value();
        if (v !== null) this.set(v);
      },
    });
  };
  gauge("rill_connections_open", "Connections open on the gRPC listener.", () => limits.connections.open);
  gauge("rill_connections_max", "max.connections.", () => limits.connections.max);
  gauge("rill_partitions", "Partitions held by this broker.", () => logs.partitionCount);
  gauge("rill_partitions_max", "max.partitions, as the open-file limit lowers it.", () => limits.partitionsMax);
  gauge("rill_log_open_files", "Descriptors the partition logs hold (active segments and the handle pool).", () => logs.openFileHandles);
  new Counter({
    name: "rill_connections_refused_total",
    help: "Connections refused because max.connections were open.",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(limits.connections.refused);
    },
  });
}

/**
 * The memory budgets, by pool: `fetch` (fetch.memory.max.bytes: Fetch responses, Subscribe and
 * Consume messages, replica-fetch responses while built and sent) and `tail_cache`
 * (log.tail.cache.total.bytes), each as bytes held now and capacity.
 */
function memoryBudgetMetrics(registry: Registry, logs: LogManager, fetchBudget: MemoryBudget | undefined): void {
  const pools = (): Array<[string, { readonly bytesMax: number; readonly bytesUsed: number }]> => {
    const out: Array<[string, { readonly bytesMax: number; readonly bytesUsed: number }]> = [];
    if (fetchBudget) out.push(["fetch", fetchBudget]);
    // A LogManager always has it; a stand-in in tests may not.
    if ("tailCacheMemory" in logs) out.push(["tail_cache", logs.tailCacheMemory]);
    return out;
  };
  const gauge = (name: string, help: string, key: "bytesMax" | "bytesUsed"): void => {
    new Gauge({
      name,
      help,
      labelNames: ["pool"],
      registers: [registry],
      collect() {
        this.reset();
        for (const [pool, b] of pools()) this.set({ pool }, b[key]);
      },
    });
  };
  gauge("rill_memory_budget_used_bytes", "Bytes held now from a memory budget, by pool (fetch, tail_cache).", "bytesUsed");
  gauge(
    "rill_memory_budget_bytes",
    "Capacity of a memory budget, by pool (fetch.memory.max.bytes, log.tail.cache.total.bytes).",
    "bytesMax",
  );
  if (!fetchBudget) return;
  const counter = (name: string, help: string, key: "granted" | "waited" | "timedOut"): void => {
    new Counter({
      name,
      help,
      labelNames: ["pool"],
      registers: [registry],
      collect() {
        this.reset();
        this.inc({ pool: "fetch" }, fetchBudget.stats[key]);
      },
    });
  };
  counter("rill_memory_budget_reservations_total", "Reservations granted from the fetch budget.", "granted");
  counter("rill_memory_budget_waits_total", "Reservations that had to wait in line for room.", "waited");
  counter(
    "rill_memory_budget_wait_timeouts_total",
    "Waits that ended without room (a Fetch then fails FETCH_MEMORY_EXHAUSTED; streams wait again).",
    "timedOut",
  );
}

/**
 * Produce requests that waited for this node's metadata to apply their producer's
 * InitProducerId (a partition leader whose metadata lags the controller's): started, ended by
 * the bound without it, and waiting now.
 */
function producerWaitMetrics(registry: Registry, rm: ReplicaManager): void {
  const counter = (name: string, help: string, value: () => number): void => {
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(value());
      },
    });
  };
  counter(
    "rill_produce_producer_metadata_waits_total",
    "Produce requests that waited for this node's metadata to apply their producer's InitProducerId.",
    () => rm.producerMetadataWaits.started,
  );
  counter(
    "rill_produce_producer_metadata_wait_timeouts_total",
    "Of those, the ones whose producer this node still did not know after the wait (answered UNKNOWN_PRODUCER_ID or INVALID_PRODUCER_EPOCH).",
    () => rm.producerMetadataWaits.timedOut,
  );
  new Gauge({
    name: "rill_produce_producer_metadata_waiting",
    help: "Produce requests waiting now for this node's metadata to apply their producer's InitProducerId.",
    registers: [registry],
    collect() {
      this.set(rm.producerMetadataWaiting);
    },
  });
}

/** A registry and the function that stops its event subscriptions. */
export interface BrokerRegistry {
  readonly exposition: Exposition;
  stop(): void;
}

/**
 * The registry of the storage and limit metrics: process metrics, per partition the log
 * gauges and counters, the memory budgets, the connection limits; `source` (the broker's
 * ReplicaManager) is whose corrupt reads are counted; `limits` are read at scrape time.
 */
export function storageRegistry(
  logs: LogManager,
  source: object | null = null,
  limits?: LimitReadings,
  fetchBudget?: MemoryBudget,
): BrokerRegistry {
  const exposition = new Exposition();
  const { registry } = exposition;
  if (limits) limitMetrics(registry, logs, limits);
  memoryBudgetMetrics(registry, logs, fetchBudget);
  collectDefaultMetrics({ register: registry, prefix: "rill_" });
  registry.removeSingleMetric(PROCESS_HEAP);
  new Gauge({
    name: PROCESS_HEAP,
    help: "Bytes of the JavaScript engine's heap (process.memoryUsage().heapTotal).",
    registers: [registry],
    collect() {
      this.set(process.memoryUsage().heapTotal);
    },
  });
  logMetrics(exposition, logs);
  const corrupt = new Counter({
    name: "rill_corrupt_reads_total",
    help: "Reads (fetch, subscribe, consume) that met a stored batch they could not decode; its partition answered CORRUPT_MESSAGE.",
    labelNames: ["topic", "partition"],
    registers: [registry],
  });
  if (source instanceof ReplicaManager) producerWaitMetrics(registry, source);
  const stop = source ? onCorruptRead(source, (e) => corrupt.inc({ topic: e.topic, partition: String(e.partition) })) : () => undefined;
  return { exposition, stop };
}

/**
 * Per partition: log end and start offsets, size, segments, and the storage counters. The
 * partitions and their label text are read once per scrape, before the families are written.
 */
function logMetrics(exp: Exposition, logs: LogManager): void {
  type Log = ReturnType<LogManager["all"]>[number]["log"];
  let partitions: Array<{ labels: string; log: Log }> = [];
  exp.beforeScrape(() => {
    partitions = logs.all().map(({ tp, log }) => ({ labels: `{topic="${labelText(tp.topic)}",partition="${tp.partition}"}`, log }));
  });
  const lines = (name: string, value: (l: Log) => number): string => {
    let out = "";
    for (const p of partitions) out += `${name}${p.labels} ${formatValue(value(p.log))}\n`;
    return out;
  };
  const gauge = (name: string, help: string, value: (l: Log) => number): void => exp.addText(name, help, "gauge", () => lines(name, value));
  gauge("rill_log_end_offset", "Offset the next appended record gets.", (l) => l.logEndOffset);
  gauge("rill_log_start_offset", "Earliest readable offset.", (l) => l.logStartOffset);
  gauge("rill_log_size_bytes", "Bytes on disk over all segments.", (l) => l.sizeBytes);
  gauge("rill_log_segments", "Segments of the partition.", (l) => l.segmentCount);
  const counter = (name: string, help: string, key: "appends" | "cacheReads" | "diskReads" | "fsyncs" | "duplicates"): void =>
    exp.addText(name, help, "counter", () => lines(name, (l) => l.stats[key]));
  counter("rill_log_appends_total", "Appends (each one or more batches).", "appends");
  counter("rill_log_cache_reads_total", "Reads answered from the tail cache.", "cacheReads");
  counter("rill_log_disk_reads_total", "Reads that went to the segment files.", "diskReads");
  counter("rill_log_fsyncs_total", "fsyncs started (one covers every append waiting for it).", "fsyncs");
  counter("rill_log_duplicate_batches_total", "Idempotent producer retries answered with their original offsets.", "duplicates");
}

/**
 * Serves the storage metrics (`storageRegistry`) at `/metrics` on 127.0.0.1:`port` (0 picks a
 * free port), with `/healthz` and `/readyz` always answering ready: a metrics endpoint alone.
 */
export async function startMetrics(
  port: number,
  logs: LogManager,
  source: object | null = null,
  limits?: LimitReadings,
  fetchBudget?: MemoryBudget,
): Promise<MetricsServer> {
  const { exposition, stop } = storageRegistry(logs, source, limits, fetchBudget);
  let listener: HttpListener;
  try {
    listener = await HttpListener.start({
      listen: `127.0.0.1:${port}`,
      metrics: exposition,
      health: () => ({ live: true, notReady: null }),
    });
  } catch (e) {
    stop();
    throw e;
  }
  return {
    port: listener.port,
    close: async () => {
      stop();
      await listener.close();
    },
  };
}

// ---- Observability (issue 16): requests, traffic, cluster state, groups ----------------------

/** One sample of a metric collected at scrape time. */
interface Sample {
  readonly labels?: Record<string, string | number>;
  readonly value: number;
  /** For histograms: `<name>_bucket`, `<name>_sum`, `<name>_count`. */
  readonly metricName?: string;
}

/** A metric family whose samples are built at scrape time. */
interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: "gauge" | "counter" | "histogram";
  /** The samples; or, for the families with the most samples, `text`: their lines already written. */
  readonly collect?: () => readonly Sample[] | Promise<readonly Sample[]>;
  readonly text?: () => string;
}

/**
 * The Prometheus text of a broker: prom-client's registry (process metrics, the few metrics
 * that keep their own state) followed by the families whose samples are built at scrape time,
 * written straight to text — no label hashing or per-sample objects in prom-client, so thousands
 * of partitions and groups stay cheap to scrape.
 */
export class Exposition {
  readonly registry = new Registry();
  private readonly families: Family[] = [];
  private readonly preparers: Array<() => void> = [];

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Adds a family (its name must be new). */
  add(name: string, help: string, type: Family["type"], collect: NonNullable<Family["collect"]>): void {
    this.push({ name, help, type, collect });
  }

  /** Adds a family whose sample lines `text` writes (label values escaped with `labelText`). */
  addText(name: string, help: string, type: Family["type"], text: () => string): void {
    this.push({ name, help, type, text });
  }

  /** Calls `fn` at the start of every scrape (to read what several families share once). */
  beforeScrape(fn: () => void): void {
    this.preparers.push(fn);
  }

  private push(f: Family): void {
    if (this.families.some((g) => g.name === f.name) || this.registry.getSingleMetric(f.name))
      throw new Error(`metric ${f.name} registered twice`);
    this.families.push(f);
  }

  /** The whole text. */
  async metrics(): Promise<string> {
    for (const fn of this.preparers) fn();
    const parts = [await this.registry.metrics()];
    const collected = await Promise.all(this.families.map((f) => f.collect?.() ?? []));
    this.families.forEach((f, i) => {
      parts.push(`# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`);
      if (f.text) parts.push(f.text());
      for (const s of collected[i]!) parts.push(sampleLine(s.metricName ?? f.name, s.labels, s.value));
    });
    return parts.join("");
  }
}

const NEEDS_ESCAPE = /[\\"\n]/;

/** One sample line: `name{a="x",b="y"} value\n`. */
function sampleLine(name: string, labels: Sample["labels"], value: number): string {
  let line = name;
  if (labels) {
    let sep = "{";
    for (const k in labels) {
      const v = labels[k]!;
      const text =
        typeof v === "number" ? String(v) : NEEDS_ESCAPE.test(v) ? v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"') : v;
      line += `${sep}${k}="${text}"`;
      sep = ",";
    }
    if (sep === ",") line += "}";
  }
  return `${line} ${formatValue(value)}\n`;
}

/** A label value as Prometheus text writes it (backslash, quote and newline escaped). */
export function labelText(v: string): string {
  return NEEDS_ESCAPE.test(v) ? v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"') : v;
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Number.POSITIVE_INFINITY) return "+Inf";
  if (v === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(v);
}

function escapeHelp(help: string): string {
  return help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** Adds a family whose samples `collect` builds at scrape time (see Exposition). */
function scraped(exp: Exposition, name: string, help: string, type: Family["type"], collect: NonNullable<Family["collect"]>): void {
  exp.add(name, help, type, collect);
}

/**
 * `rill_requests_total{api,protocol,code}`, `rill_request_duration_seconds{api,protocol}`,
 * `rill_bytes_in_total`, `rill_records_in_total`, `rill_bytes_out_total` (by topic),
 * `rill_connections{listener}` and `rill_throttle_time_seconds_total{quota}`, from the counters
 * the listeners and the service keep (src/service/request-metrics.ts).
 */
export function requestMetricsOnScrape(registry: Exposition, m: RequestMetrics, quotas: QuotaThrottle | null): void {
  scraped(
    registry,
    "rill_requests_total",
    "Requests answered, by API, protocol and code (OK or the catalog error name).",
    "counter",
    () => {
      const out: Sample[] = [];
      for (const s of m.requests.values())
        for (const [code, n] of s.codes) out.push({ labels: { api: s.api, protocol: s.protocol, code }, value: n });
      return out;
    },
  );
  scraped(
    registry,
    "rill_request_duration_seconds",
    "Time from a request's arrival to its answer (a stream's whole life), by API and protocol.",
    "histogram",
    () => {
      const out: Sample[] = [];
      const name = "rill_request_duration_seconds";
      for (const s of m.requests.values()) {
        const labels = { api: s.api, protocol: s.protocol };
        let cumulative = 0;
        DURATION_BUCKETS_SECONDS.forEach((le, i) => {
          cumulative += s.buckets[i]!;
          out.push({ metricName: `${name}_bucket`, labels: { ...labels, le }, value: cumulative });
        });
        out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: "+Inf" }, value: s.count });
        out.push({ metricName: `${name}_sum`, labels, value: s.sumSeconds });
        out.push({ metricName: `${name}_count`, labels, value: s.count });
      }
      return out;
    },
  );
  const traffic = (name: string, help: string, key: "bytesIn" | "recordsIn" | "bytesOut" | "recordsOut"): void =>
    scraped(registry, name, help, "counter", () => [...m.topics].map(([topic, t]) => ({ labels: { topic }, value: t[key] })));
  traffic("rill_bytes_in_total", "Bytes appended by producers to partitions this broker leads, by topic.", "bytesIn");
  traffic("rill_records_in_total", "Records appended by producers to partitions this broker leads, by topic.", "recordsIn");
  traffic("rill_bytes_out_total", "Record bytes answered to consumers (fetch, subscribe, consume), by topic.", "bytesOut");
  traffic("rill_records_out_total", "Offsets answered to consumers (records, counting a compacted log's gaps), by topic.", "recordsOut");
  scraped(registry, "rill_connections", "Connections open now, by listener (grpc, kafka, http).", "gauge", () =>
    [...m.listeners].map(([listener, open]) => ({ labels: { listener }, value: open() })),
  );
  scraped(
    registry,
    "rill_throttle_time_seconds_total",
    "Time clients were throttled by their quotas, by quota (produce, consume).",
    "counter",
    () => (quotas ? Object.entries(quotas.throttledMs).map(([quota, ms]) => ({ labels: { quota }, value: ms / 1000 })) : []),
  );
}

/** What the cluster-state metrics read at scrape time. */
export interface ClusterReadings {
  readonly nodeId: number;
  readonly rm: ReplicaManager;
  readonly groups: GroupRuntime;
  /** The metadata store: whether this node is the active controller, and its Raft status. */
  readonly store: { readonly isLeader: boolean; status(): { readonly term: number; readonly commit: number } };
  /** True when this node is a voter of the controller quorum (raft_* are reported only there). */
  readonly voter: boolean;
  /** ISR shrinks and expands of partitions this node leads (log.ts `logMetadataChanges`). */
  readonly isr: IsrCounters;
  /** High watermarks of partitions led by other nodes (a ListOffsets call per leader); null: only what this node holds. */
  readonly leaderOffsets: LeaderOffsets | null;
  /** How long a scrape waits for other leaders' offsets. */
  readonly leaderOffsetsTimeoutMs?: number;
}

/** Partition counts of the cluster state, as Kafka's ReplicaManager and controller report them. */
interface PartitionCounts {
  leader: number;
  underReplicated: number;
  underMinIsr: number;
  offline: number;
}

/** Counts from the image: led by `nodeId` (leader, under-replicated, under min ISR) and, cluster-wide, offline. */
export function partitionCounts(image: ReplicaManager["image"], nodeId: number): PartitionCounts {
  const c: PartitionCounts = { leader: 0, underReplicated: 0, underMinIsr: 0, offline: 0 };
  for (const t of image.topics.values()) {
    let minIsr = -1;
    for (const p of t.partitions) {
      if (p.leader < 0 || image.brokers.get(p.leader)?.fenced === true) c.offline++;
      if (p.leader !== nodeId) continue;
      c.leader++;
      if (p.isr.length < p.replicas.length) c.underReplicated++;
      if (minIsr < 0) minIsr = effectiveConfig(t.configs).minInsyncReplicas;
      if (p.isr.length < minIsr) c.underMinIsr++;
    }
  }
  return c;
}

/**
 * The cluster's state as this node sees it: `rill_leader_partitions`,
 * `rill_under_replicated_partitions` and `rill_under_min_isr_partitions` (of the partitions this
 * node leads, so the sum over nodes is the cluster's), `rill_offline_partitions` (no leader; on
 * the active controller only, 0 elsewhere, as Kafka's controller reports it),
 * `rill_isr_shrinks_total`, `rill_isr_expands_total`, `rill_controller_active`, `rill_raft_term`,
 * `rill_raft_commit_offset`, and the consumer groups this node coordinates.
 */
export function clusterMetricsOnScrape(registry: Exposition, r: ClusterReadings): void {
  let counts: PartitionCounts | null = null;
  // One walk of the image per scrape, shared by the four partition gauges.
  const countsNow = (): PartitionCounts => (counts ??= partitionCounts(r.rm.image, r.nodeId));
  const gauge = (name: string, help: string, value: () => number, type: "gauge" | "counter" = "gauge"): void =>
    scraped(registry, name, help, type, () => [{ value: value() }]);
  gauge("rill_leader_partitions", "Partitions this node leads.", () => countsNow().leader);
  gauge(
    "rill_under_replicated_partitions",
    "Partitions this node leads whose ISR is smaller than their replica set.",
    () => countsNow().underReplicated,
  );
  gauge(
    "rill_under_min_isr_partitions",
    "Partitions this node leads whose ISR is smaller than min.insync.replicas (acks=all produce fails there).",
    () => countsNow().underMinIsr,
  );
  gauge("rill_offline_partitions", "Partitions without a live leader (reported by the active controller; 0 on other nodes).", () => {
    const v = r.store.isLeader ? countsNow().offline : 0;
    counts = null; // the last of the four: the next scrape walks the image again
    return v;
  });
  gauge("rill_isr_shrinks_total", "Followers removed from the ISR of partitions this node leads.", () => r.isr.shrinks, "counter");
  gauge("rill_isr_expands_total", "Followers added to the ISR of partitions this node leads.", () => r.isr.expands, "counter");
  gauge("rill_controller_active", "1 on the active controller (the Raft leader of the metadata quorum), 0 elsewhere.", () =>
    r.store.isLeader ? 1 : 0,
  );
  if (r.voter) {
    gauge("rill_raft_term", "Current Raft term of the metadata quorum, as this voter knows it.", () => r.store.status().term);
    gauge(
      "rill_raft_commit_offset",
      "Offset of the metadata log committed by the quorum, as this voter knows it.",
      () => r.store.status().commit,
    );
  }
  groupMetricsOnScrape(registry, r);
}

/**
 * `rill_consumer_group_members{group}` and `rill_consumer_group_lag{group,topic,partition}` for
 * every group this node coordinates (whatever protocol its members use): lag = the partition's
 * high watermark − the group's committed offset (the last stable offset equals the high
 * watermark: Rill has no open transactions to hold it back). A partition this node leads or
 * follows gives its high watermark at once (a follower's trails the leader's by at most one
 * fetch); the others are asked of their leaders with one ListOffsets call per leader
 * (`leaderOffsets`), bounded by `leaderOffsetsTimeoutMs`; a partition no one answered for is
 * left out of that scrape rather than reported wrong.
 */
function groupMetricsOnScrape(registry: Exposition, r: ClusterReadings): void {
  scraped(registry, "rill_consumer_group_members", "Members of each consumer group this node coordinates.", "gauge", () => {
    const out: Sample[] = [];
    for (const shard of r.groups.allShards())
      for (const g of shard.listGroups()) out.push({ labels: { group: g.groupId }, value: g.members });
    return out;
  });
  scraped(
    registry,
    "rill_consumer_group_lag",
    "Records a consumer group has not committed yet: high watermark - committed offset, per partition, for the groups this node coordinates.",
    "gauge",
    () => groupLag(r),
  );
}

/** The lag samples of every group this node coordinates. */
async function groupLag(r: ClusterReadings): Promise<Sample[]> {
  const committed: Array<{ group: string; topic: string; partition: number; offset: number }> = [];
  for (const shard of r.groups.allShards())
    for (const g of shard.listGroups())
      for (const o of shard.fetchOffsets(g.groupId, null)) if (o.offset >= 0) committed.push({ group: g.groupId, ...o });
  if (committed.length === 0) return [];
  const hw = await highWatermarks(r, committed);
  const out: Sample[] = [];
  for (const c of committed) {
    const h = hw.get(`${c.topic}\u0000${c.partition}`);
    if (h === undefined) continue;
    out.push({ labels: { group: c.group, topic: c.topic, partition: c.partition }, value: Math.max(0, h - c.offset) });
  }
  return out;
}

/** High watermarks of `partitions`: local replicas first, then the leaders of the rest (see groupMetricsOnScrape). */
async function highWatermarks(
  r: ClusterReadings,
  partitions: readonly { readonly topic: string; readonly partition: number }[],
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const remote = new Map<number, Array<{ topic: string; partition: number }>>();
  const image = r.rm.image;
  for (const { topic, partition } of partitions) {
    const key = `${topic}\u0000${partition}`;
    if (out.has(key)) continue;
    const local = r.rm.replica(topic, partition);
    const leader = image.topics.get(topic)?.partitions[partition]?.leader ?? -1;
    if (local && (local.role === "leader" || local.role === "follower") && (leader === r.nodeId || !r.leaderOffsets)) {
      out.set(key, r.rm.highWatermark(local.log));
      continue;
    }
    if (local && local.role === "follower") out.set(key, local.hw); // replaced below by the leader's answer when it comes
    if (leader < 0 || !r.leaderOffsets) continue;
    let list = remote.get(leader);
    if (!list) remote.set(leader, (list = []));
    if (!list.some((p) => p.topic === topic && p.partition === partition)) list.push({ topic, partition });
  }
  const ask = r.leaderOffsets;
  if (!ask || remote.size === 0) return out;
  const timeoutMs = r.leaderOffsetsTimeoutMs ?? 2000;
  await Promise.all(
    [...remote].map(async ([leader, parts]) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<null>((resolve) => {
        timer = setTimeout(() => resolve(null), timeoutMs);
      });
      const answers = await Promise.race([ask(leader, parts).catch(() => null), timeout]);
      clearTimeout(timer);
      answers?.forEach((a, i) => {
        const p = parts[i]!;
        if (a) out.set(`${p.topic}\u0000${p.partition}`, a.highWatermark);
      });
    }),
  );
  return out;
}
