/**
 * Shared pieces of the benchmark tools (consumer-perf, e2e-latency, ceiling, suite, peers):
 * option parsing, record values, topic creation, pre-producing records over a pipelined
 * ProduceStream, broker RSS sampling, load average, medians. The broker itself is started with
 * `startBrokerProcess` from producer-perf.ts.
 */
import * as nodeFs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { AdminService, CreateTopicsRequestSchema } from "../src/gen/rill/v1/admin_service_pb.ts";
import { Acks, ProduceService, type ProduceStreamResponse } from "../src/gen/rill/v1/produce_service_pb.ts";
import { clientConstructor } from "../src/protocol/grpc-service.ts";
import { clientChannelOptions } from "../src/protocol/channel-options.ts";
import { produceClientCodecs } from "../src/client/wire-codec.ts";
import { Compression, encodeBatch } from "../src/protocol/record-batch.ts";
import { parseWithDefaults } from "../scripts/lib/command-line.ts";

export const MiB = 1 << 20;

/**
 * `--kebab-case value` pairs into a copy of `defaults` (numbers parsed as numbers, "true"/"false"
 * as booleans); `--help` prints the usage of the script at `moduleUrl` (its doc comment and every
 * option with its default) and exits 0; an unknown option or a bad value exits 2 naming it
 * (scripts/lib/command-line.ts).
 */
export function parseArgs<T extends object>(argv: readonly string[], defaults: T, moduleUrl: string): T {
  return parseWithDefaults(argv, defaults, moduleUrl);
}

/** A value of `size` bytes that changes per record (as producer-perf's: realistic for LZ4). */
export function makeValues(n: number, size: number): string[] {
  const words = ["click", "view", "purchase", "scroll", "signup", "search"];
  return Array.from({ length: n }, (_, i) =>
    `{"user":${(i * 7919) % 100000},"event":"${words[i % words.length]}","seq":${i}}`.padEnd(size, ".").slice(0, size),
  );
}

/** The TLS the tools' clients use (`--tls-ca`), or null for plaintext. */
let clientTls: { readonly credentials: grpc.ChannelCredentials; readonly serverName: string } | null = null;

/**
 * Makes the tools' clients connect with TLS, verifying brokers against the PEM CA bundle `caFile`
 * and naming them `serverName` (the certificates' DNS name: Bun refuses an IP address as server
 * name); an empty `caFile` goes back to plaintext.
 */
export function useClientTls(caFile: string, serverName: string): void {
  clientTls = caFile === "" ? null : { credentials: grpc.credentials.createSsl(nodeFs.readFileSync(caFile)), serverName };
}

/** Credentials of the tools' channels: plaintext, or TLS after `useClientTls`. */
export function creds(): grpc.ChannelCredentials {
  return clientTls?.credentials ?? grpc.credentials.createInsecure();
}

/** Channel options of the tools' clients: the SDK's (`clientChannelOptions`), and the TLS server name. */
export function channelOptions(): grpc.ChannelOptions {
  return { ...clientChannelOptions(), ...(clientTls ? { "grpc.ssl_target_name_override": clientTls.serverName } : {}) };
}

/**
 * Creates `topic` with `partitions` partitions (extra topic configs optional; replication factor
 * 0: the broker's default). A topic-level error in the answer is thrown.
 */
export async function createTopic(
  address: string,
  topic: string,
  partitions: number,
  configs: Record<string, string> = {},
  replicationFactor = 0,
): Promise<void> {
  const admin = new (clientConstructor(AdminService))(address, creds(), channelOptions());
  try {
    await new Promise<void>((resolve, reject) =>
      admin.createTopics(
        create(CreateTopicsRequestSchema, { topics: [{ name: topic, partitions, replicationFactor, configs }] }),
        (e, r) => {
          const failed = r?.topics.find((t) => t.error);
          if (e) reject(e);
          else if (failed) reject(new Error(`create topic ${topic}: ${failed.error!.name}: ${failed.error!.message}`));
          else resolve();
        },
      ),
    );
  } finally {
    admin.close();
  }
}

/**
 * Writes `records` records of `recordSize` bytes to `topic`, `batchRecords` per batch,
 * round-robin over `partitions`, pipelined (`inFlight` requests) on one ProduceStream. Returns
 * the number of records written.
 */
export async function preProduce(
  address: string,
  o: {
    topic: string;
    records: number;
    recordSize: number;
    batchRecords: number;
    partitions: number;
    compression: "none" | "lz4";
    inFlight?: number;
  },
): Promise<number> {
  const Producer = clientConstructor(ProduceService, produceClientCodecs);
  const client = new Producer(address, creds(), channelOptions());
  try {
    const stream = client.produceStream();
    const values = makeValues(o.batchRecords, o.recordSize);
    const codec = o.compression === "lz4" ? Compression.LZ4 : Compression.NONE;
    const requests = Math.ceil(o.records / o.batchRecords);
    const inFlight = o.inFlight ?? 8;
    let sent = 0;
    let acked = 0;
    await new Promise<void>((resolve, reject) => {
      const pump = (): void => {
        while (sent < requests && sent - acked < inFlight) {
          const now = Date.now();
          const batch = encodeBatch(
            values.map((v) => ({ key: null, value: v, timestampMs: now })),
            { compression: codec, nowMs: now },
          );
          stream.write({
            requestId: BigInt(sent),
            request: { topic: o.topic, partition: sent % o.partitions, recordBatch: batch, acks: Acks.LEADER },
          });
          sent++;
        }
      };
      stream.on("data", (m: ProduceStreamResponse) => {
        if (m.result.case !== "response" || m.result.value.partitions.some((p) => p.error)) {
          reject(new Error(`pre-produce failed: ${JSON.stringify(m.result.value, (_, v) => (typeof v === "bigint" ? String(v) : v))}`));
          return;
        }
        if (++acked === requests) {
          stream.end();
          resolve();
        } else pump();
      });
      stream.on("error", reject);
      pump();
    });
    return requests * o.batchRecords;
  } finally {
    client.close();
  }
}

/** The VmRSS of a process, in MiB (Linux /proc); null when it cannot be read. */
export function rssMiB(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(nodeFs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** Samples a process's RSS every `everyMs` until stopped; `stop()` returns the peak and last values. */
export function sampleRss(pid: number, everyMs = 100): { stop: () => { peakMiB: number; lastMiB: number; samples: number } } {
  let peak = 0;
  let last = 0;
  let samples = 0;
  const tick = (): void => {
    const v = rssMiB(pid);
    if (v !== null) {
      peak = Math.max(peak, v);
      last = v;
      samples++;
    }
  };
  tick();
  const timer = setInterval(tick, everyMs);
  return {
    stop: () => {
      clearInterval(timer);
      tick();
      return { peakMiB: peak, lastMiB: last, samples };
    },
  };
}

/** Clock ticks (user + system, USER_HZ 100) of a /proc `stat` line, process or thread. */
function statTicks(stat: string): number {
  // Fields after the command name (which may hold spaces) start after the last ')': utime, stime are 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

/** CPU seconds (user + system) process `pid` has used so far (Linux /proc/PID/stat). */
export function cpuSecondsOf(pid: number): number {
  return statTicks(nodeFs.readFileSync(`/proc/${pid}/stat`, "utf8")) / 100; // USER_HZ
}

/**
 * CPU ms (user + system) used so far by this process's threads named `JITWorker*`: the
 * JavaScriptCore compiler threads under Bun (none under Node, whose compiler threads have other
 * names: 0 there). From /proc/self/task/N/stat, in 10 ms ticks.
 */
export function jitWorkerCpuMs(): number {
  let ticks = 0;
  let tasks: string[];
  try {
    tasks = nodeFs.readdirSync("/proc/self/task");
  } catch {
    return 0;
  }
  for (const t of tasks) {
    let stat: string;
    try {
      stat = nodeFs.readFileSync(`/proc/self/task/${t}/stat`, "utf8");
    } catch {
      continue; // the thread ended
    }
    const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    if (name.startsWith("JITWorker")) ticks += statTicks(stat);
  }
  return ticks * 10; // USER_HZ 100
}

/** The 1-minute load average, as `uptime` shows it. */
export function loadAverage(): number[] {
  return os.loadavg().map((x) => Math.round(x * 100) / 100);
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Latency percentiles (ms) of an hdr-histogram-js histogram that records microseconds. */
export function percentilesMs(hist: { mean: number; getValueAtPercentile(p: number): number; maxValue: number }): {
  avg: number;
  p50: number;
  p95: number;
  p99: number;
  p999: number;
  max: number;
} {
  return {
    avg: hist.mean / 1000,
    p50: hist.getValueAtPercentile(50) / 1000,
    p95: hist.getValueAtPercentile(95) / 1000,
    p99: hist.getValueAtPercentile(99) / 1000,
    p999: hist.getValueAtPercentile(99.9) / 1000,
    max: hist.maxValue / 1000,
  };
}

/** True when this module is the process's entry point (`bun bench/x.ts`, `node ... bench/x.ts`). */
export function isMain(metaUrl: string, file: string): boolean {
  return metaUrl === `file://${process.argv[1]}` || (process.argv[1]?.endsWith(file) ?? false);
}

/** The PIDs of every descendant of `pid` (Linux /proc: each process's parent is field 4 of its stat). */
export function descendantsOf(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of nodeFs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = nodeFs.readFileSync(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {
      // The process ended while we looked.
    }
  }
  const out: number[] = [];
  for (let todo = [pid]; todo.length > 0; ) {
    const next = todo.flatMap((p) => children.get(p) ?? []);
    out.push(...next);
    todo = next;
  }
  return out;
}

/**
 * Samples, every `everyMs`, the RSS of the brokers a tool started (descendants of `pid` whose
 * command line holds "broker start"); `stop()` returns the largest peak of any of them, or null
 * when the tool started none.
 */
export function sampleBrokerDescendantsRss(pid: number, everyMs = 200): { stop: () => number | null } {
  const peaks = new Map<number, number>();
  const isBroker = new Map<number, boolean>();
  const tick = (): void => {
    let pids: number[];
    try {
      pids = descendantsOf(pid);
    } catch {
      return;
    }
    for (const p of pids) {
      if (!isBroker.has(p)) {
        try {
          isBroker.set(p, nodeFs.readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0").join(" ").includes("broker start"));
        } catch {
          continue;
        }
      }
      if (!isBroker.get(p)) continue;
      const v = rssMiB(p);
      if (v !== null) peaks.set(p, Math.max(peaks.get(p) ?? 0, v));
    }
  };
  const timer = setInterval(tick, everyMs);
  return {
    stop: () => {
      clearInterval(timer);
      return peaks.size ? Math.max(...peaks.values()) : null;
    },
  };
}

/** Ports this process has handed out (never twice). */
const usedPorts = new Set<number>();

/**
 * A free TCP port on 127.0.0.1 for a broker to bind (bound, checked, released). Drawn from
 * 20000-31999, below Linux's ephemeral range (32768-60999): a port the kernel handed out to
 * `listen(0)` is one it may give an outgoing connection before the broker binds it (the suite's
 * 3-broker row of 2026-12-07 03:00 failed so: EADDRINUSE on 38727).
 */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (usedPorts.has(port)) continue;
    const ok = await new Promise<boolean>((resolve) => {
      const srv = net.createServer();
      srv.once("error", () => resolve(false)).listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
    });
    if (!ok) continue;
    usedPorts.add(port);
    return port;
  }
  throw new Error("freePort: no free port in 20000-31999 after 200 tries");
}
