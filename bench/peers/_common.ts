/**
 * Shared pieces of the peer benchmarks (bench/peers/*.ts): free ports, starting a server as a
 * child process in its own process group (so it and whatever it forks stop together, by PID),
 * waiting for its port, and the common command line / JSON result:
 *
 *   bun bench/peers/<peer>.ts [--records 1000000] [--record-size 100] [--runs 3] [--json FILE]
 *
 * Each run uses a fresh server and data dir. A peer whose server is not installed writes
 * `{"skipped": "..."}` (run scripts/install-peers.sh).
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from "node:child_process";
import * as nodeFs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { loadAverage, median, MiB, parseArgs, sampleRss } from "../lib.ts";
import { runtimeName } from "../runtime.ts";

export interface PeerOptions {
  records: number;
  recordSize: number;
  runs: number;
  json: string;
}

export const peerDefaults: PeerOptions = { records: 1_000_000, recordSize: 100, runs: 3, json: "" };

/** A free TCP port on 127.0.0.1 (asked of the kernel, then released). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once 127.0.0.1:port accepts a connection; rejects after `timeoutMs`. */
export async function waitForPort(port: number, timeoutMs: number, alive: () => boolean = () => true): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, "127.0.0.1");
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    if (!alive()) throw new Error(`server exited before port ${port} opened`);
    if (Date.now() > deadline) throw new Error(`port ${port} did not open within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface Server {
  proc: ChildProcess;
  pid: number;
  dataDir: string;
  /** SIGTERM to the server's process group (SIGKILL after `graceMs`), then removes the data dir. */
  stop: (graceMs?: number) => Promise<void>;
}

/** Starts `cmd args` in its own process group with a fresh data dir made by `mkDir`. */
export function startServer(cmd: string, args: string[], dataDir: string, opts: SpawnOptions = {}): Server {
  const proc = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"], detached: true, ...opts });
  let exited = false;
  proc.once("exit", () => (exited = true));
  let err = "";
  proc.stderr?.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const pid = proc.pid!;
  const stop = async (graceMs = 10_000): Promise<void> => {
    if (!exited) {
      try {
        process.kill(-pid, "SIGTERM");
      } catch {
        /* already gone */
      }
      const gone = await Promise.race([
        new Promise<boolean>((r) => proc.once("exit", () => r(true))),
        new Promise<boolean>((r) => setTimeout(() => r(false), graceMs)),
      ]);
      if (!gone && !exited) {
        try {
          process.kill(-pid, "SIGKILL");
        } catch {
          /* already gone */
        }
      }
    }
    nodeFs.rmSync(dataDir, { recursive: true, force: true });
  };
  Object.defineProperty(proc, "stderrTail", { get: () => err });
  return {
    proc,
    pid,
    dataDir,
    stop,
    get alive() {
      return !exited;
    },
  } as Server & { alive: boolean };
}

export function freshDir(prefix: string): string {
  return nodeFs.mkdtempSync(path.join(os.tmpdir(), `rill-peer-${prefix}-`));
}

/** True when `bin` is on PATH. */
export function installed(bin: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${bin}`]).status === 0;
}

/** A value of `size` bytes (as the Rill benchmarks': varied JSON padded with dots). */
export function value(i: number, size: number): Buffer {
  return Buffer.from(`{"user":${(i * 7919) % 100000},"event":"click","seq":${i}}`.padEnd(size, ".").slice(0, size));
}

export interface PeerRun {
  records: number;
  seconds: number;
  recordsPerSec: number;
  payloadMiBPerSec: number;
  serverRssPeakMiB: number | null;
  loadAverage: number[];
}

/**
 * The command line of the peer benchmark at `moduleUrl` (its doc comment is its `--help`):
 * `run(o, run)` starts a fresh server, pushes `o.records`
 * records, stops it, and returns the timed part; prints and writes the median.
 */
export async function peerMain(
  moduleUrl: string,
  info: { peer: string; server: string; mode: string; durability: string; bin: string },
  run: (o: PeerOptions, measure: (pid: number, fn: () => Promise<number>) => Promise<PeerRun>) => Promise<PeerRun>,
): Promise<void> {
  const o = parseArgs(process.argv.slice(2), peerDefaults, moduleUrl);
  const write = (r: unknown): void => {
    if (o.json) nodeFs.writeFileSync(o.json, JSON.stringify(r, null, 2) + "\n");
  };
  if (!installed(info.bin)) {
    process.stderr.write(`${info.peer}: ${info.bin} not installed (scripts/install-peers.sh); skipped\n`);
    return write({ skipped: `${info.bin} not installed`, peer: info.peer });
  }
  const measure = async (pid: number, fn: () => Promise<number>): Promise<PeerRun> => {
    const rss = sampleRss(pid, 100);
    const start = performance.now();
    const n = await fn();
    const seconds = (performance.now() - start) / 1000;
    const peak = rss.stop().peakMiB;
    return {
      records: n,
      seconds,
      recordsPerSec: n / seconds,
      payloadMiBPerSec: (n * o.recordSize) / seconds / MiB,
      serverRssPeakMiB: peak || null,
      loadAverage: loadAverage(),
    };
  };
  const runs: PeerRun[] = [];
  for (let i = 1; i <= o.runs; i++) {
    const r = await run(o, measure);
    runs.push(r);
    process.stderr.write(
      `  ${info.peer} run ${i}/${o.runs}: ${(r.recordsPerSec / 1e3).toFixed(0)}k records/s, ${r.payloadMiBPerSec.toFixed(1)} MiB/s, ${r.seconds.toFixed(2)} s, server RSS peak ${r.serverRssPeakMiB?.toFixed(0) ?? "?"} MiB\n`,
    );
  }
  const result = {
    tool: "peer",
    ...info,
    runtime: runtimeName(),
    records: o.records,
    recordSize: o.recordSize,
    recordsPerSec: median(runs.map((r) => r.recordsPerSec)),
    payloadMiBPerSec: median(runs.map((r) => r.payloadMiBPerSec)),
    rssPeakMiB: Math.max(...runs.map((r) => r.serverRssPeakMiB ?? 0)) || null,
    runResults: runs,
    loadAverage: loadAverage(),
  };
  console.log(
    `${info.peer} (${info.mode}; ${info.durability}): ${o.records} records of ${o.recordSize} B, median of ${o.runs}: ${(result.recordsPerSec / 1e3).toFixed(0)}k records/s, ${result.payloadMiBPerSec.toFixed(1)} MiB/s; load average ${result.loadAverage.join(", ")}`,
  );
  write(result);
}
