/**
 * A/B of broker settings at one offered rate: for each round, each variant starts its own broker
 * process (Bun) with its `--set` arguments and environment, creates a one-partition topic and
 * runs one step of the sweep's open-loop load (sweep-load.ts: one producer, one Subscribe reader,
 * 100-byte records in requests of at most 1,000, linger 1 ms), then stops the broker. Variants
 * alternate within a round, so each pair shares the machine's state. Prints per run the achieved
 * rate, request and end-to-end p50/p99/p99.9 and the broker's peak RSS (VmRSS every 100 ms), then
 * the medians per variant. `--rate max` runs closed loop (the maximum) instead.
 *
 *   bun bench/settings-ab.ts --variants '{"a":{},"b":{"args":["--set","gc.bun.eden.ratio=0"]}}'
 *     [--rounds 3] [--rate 100000|max] [--seconds 20]
 *
 * A variant is `{ "args": [...], "env": {...}, "topic": {...} }`, all optional; `topic` adds topic
 * configs (e.g. `{"flush.ms": "100000000"}`) to the test topic's.
 */
import * as nodeFs from "node:fs";
import { createTopic, isMain, median, parseArgs } from "./lib.ts";
import { startBrokerProcess } from "./producer-perf.ts";
import { SweepLoad } from "./sweep-load.ts";

export const settingsAbDefaults = { variants: "{}", rounds: 3, rate: "100000", seconds: 20 };

interface Variant {
  readonly args?: string[];
  readonly env?: Record<string, string>;
  readonly topic?: Record<string, string>;
}

interface Run {
  readonly rate: number;
  readonly requestP99: number;
  readonly e2eP99: number;
  readonly e2eP999: number;
  readonly rssPeakMiB: number;
}

/** The peak VmRSS of `pid` from now until `stop()`, sampled every 100 ms. */
function rssPeak(pid: number): { stop(): number } {
  let peak = 0;
  const read = (): void => {
    try {
      const m = /VmRSS:\s+(\d+)/.exec(nodeFs.readFileSync(`/proc/${pid}/status`, "utf8"));
      if (m) peak = Math.max(peak, Number(m[1]) / 1024);
    } catch {
      // the process is gone
    }
  };
  const t = setInterval(read, 100);
  return {
    stop() {
      clearInterval(t);
      read();
      return peak;
    },
  };
}

async function runOnce(v: Variant, rate: number | null, seconds: number): Promise<Run> {
  const b = await startBrokerProcess("bun", { args: v.args ?? [], ...(v.env ? { env: v.env } : {}) });
  const rss = rssPeak(b.proc.pid!);
  try {
    const topic = `ab-${Date.now()}`;
    await createTopic(b.address, topic, 1, { "segment.bytes": String(64 << 20), "retention.bytes": String(256 << 20), ...v.topic }, 0);
    const load = await SweepLoad.open(
      { topic, producers: [{ address: b.address, partitions: [0] }], readers: [{ address: b.address, partitions: [0] }] },
      { recordSize: 100, batchRecords: 1000, compression: "none", acks: "leader", lingerMs: 1, inFlightMax: 64, closedInFlight: 8 },
    );
    try {
      const s = await load.step({ rate, seconds, warmupSeconds: 1 });
      return {
        rate: s.achievedRecordsPerSec,
        requestP99: s.requestMs.p99,
        e2eP99: s.e2eMs.p99,
        e2eP999: s.e2eMs.p999,
        rssPeakMiB: rss.stop(),
      };
    } finally {
      load.close();
    }
  } finally {
    rss.stop();
    await b.stop();
  }
}

export async function settingsAb(o: typeof settingsAbDefaults): Promise<Record<string, Run[]>> {
  const variants = JSON.parse(o.variants) as Record<string, Variant>;
  if (Object.keys(variants).length === 0) throw new Error("--variants: give at least one, as JSON");
  const rate = o.rate === "max" ? null : Number(o.rate);
  if (rate !== null && !(rate > 0)) throw new Error(`--rate: a positive number or max, got ${o.rate}`);
  const runs: Record<string, Run[]> = {};
  for (let round = 1; round <= o.rounds; round++) {
    for (const [name, v] of Object.entries(variants)) {
      const r = await runOnce(v, rate, o.seconds);
      (runs[name] ??= []).push(r);
      console.log(
        `round ${round} ${name}: ${Math.round(r.rate)} records/s, request p99 ${r.requestP99.toFixed(2)} ms, ` +
          `end-to-end p99 ${r.e2eP99.toFixed(2)} / p99.9 ${r.e2eP999.toFixed(2)} ms, RSS peak ${r.rssPeakMiB.toFixed(0)} MiB`,
      );
    }
  }
  for (const [name, rs] of Object.entries(runs)) {
    const m = (f: (r: Run) => number): string => median(rs.map(f)).toFixed(2);
    console.log(
      `${name}: medians of ${rs.length}: ${m((r) => r.rate)} records/s, request p99 ${m((r) => r.requestP99)} ms, ` +
        `end-to-end p99 ${m((r) => r.e2eP99)} ms, RSS peak ${m((r) => r.rssPeakMiB)} MiB`,
    );
  }
  return runs;
}

if (isMain(import.meta.url, "settings-ab.ts")) {
  await settingsAb(parseArgs(process.argv.slice(2), settingsAbDefaults, import.meta.url));
  process.exit(0);
}
