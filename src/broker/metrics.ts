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
import * as http from "node:http";
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";
import { type CorruptRead, onCorruptRead } from "../service/corrupt-reads.ts";
import type { LogManager } from "../storage/log-manager.ts";
import { ReplicaManager } from "../replication/replica-manager.ts";
import type { BrokerLog } from "./log.ts";

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

/**
 * Serves `/metrics` on 127.0.0.1:`port` (0 picks a free port); `source` (the broker's
 * ReplicaManager) is whose corrupt reads are counted; `limits` are read at scrape time.
 */
export async function startMetrics(
  port: number,
  logs: LogManager,
  source: object | null = null,
  limits?: LimitReadings,
  fetchBudget?: MemoryBudget,
): Promise<MetricsServer> {
  const registry = new Registry();
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
  const labels = ["topic", "partition"] as const;
  const gauge = (name: string, help: string, value: (l: ReturnType<LogManager["all"]>[number]["log"]) => number): void => {
    new Gauge({
      name,
      help,
      labelNames: labels,
      registers: [registry],
      collect() {
        this.reset();
        for (const { tp, log } of logs.all()) this.set({ topic: tp.topic, partition: String(tp.partition) }, value(log));
      },
    });
  };
  gauge("rill_log_end_offset", "Offset the next appended record gets.", (l) => l.logEndOffset);
  gauge("rill_log_start_offset", "Earliest readable offset.", (l) => l.logStartOffset);
  gauge("rill_log_size_bytes", "Bytes on disk over all segments.", (l) => l.sizeBytes);
  gauge("rill_log_segments", "Segments of the partition.", (l) => l.segmentCount);
  const counter = (name: string, help: string, key: "appends" | "cacheReads" | "diskReads" | "fsyncs" | "duplicates"): void => {
    new Counter({
      name,
      help,
      labelNames: labels,
      registers: [registry],
      collect() {
        this.reset();
        for (const { tp, log } of logs.all()) this.inc({ topic: tp.topic, partition: String(tp.partition) }, log.stats[key]);
      },
    });
  };
  counter("rill_log_appends_total", "Appends (each one or more batches).", "appends");
  counter("rill_log_cache_reads_total", "Reads answered from the tail cache.", "cacheReads");
  counter("rill_log_disk_reads_total", "Reads that went to the segment files.", "diskReads");
  counter("rill_log_fsyncs_total", "fsyncs started (one covers every append waiting for it).", "fsyncs");
  counter("rill_log_duplicate_batches_total", "Idempotent producer retries answered with their original offsets.", "duplicates");
  const corrupt = new Counter({
    name: "rill_corrupt_reads_total",
    help: "Reads (fetch, subscribe, consume) that met a stored batch they could not decode; its partition answered CORRUPT_MESSAGE.",
    labelNames: labels,
    registers: [registry],
  });
  if (source instanceof ReplicaManager) producerWaitMetrics(registry, source);
  const stopCounting = source
    ? onCorruptRead(source, (e) => corrupt.inc({ topic: e.topic, partition: String(e.partition) }))
    : () => undefined;

  const server = http.createServer((req, res) => {
    if (req.url !== "/metrics") {
      res.writeHead(404).end("not found: try /metrics\n");
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { "content-type": registry.contentType }).end(body),
      (e: unknown) => res.writeHead(500).end(String(e)),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e) => {
      stopCounting();
      reject(e);
    });
    server.listen(port, "127.0.0.1", () => resolve());
  });
  const bound = (server.address() as { port: number }).port;
  return {
    port: bound,
    close: () => {
      stopCounting();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
