/**
 * What metrics cost (issue 16), two numbers:
 *
 * 1. Produce throughput with metrics on ÷ off: two brokers side by side on 127.0.0.1 under the
 *    same runtime, one serving its HTTP listener (`http.listen`: requests, bytes and records are
 *    counted per request and per append) and one without (nothing counted), runs interleaved
 *    (off first on even runs, on first on odd ones) so that load from elsewhere falls on both
 *    alike; medians of `--runs`. producer-perf: batches of 1,000 records, 8 in flight, acks=leader.
 *    The "on" broker is scraped every second meanwhile, as Prometheus would. Besides records/s
 *    (wall clock, which other load on the machine disturbs), the broker's CPU time per run
 *    (/proc/PID/stat) gives records per broker CPU-second, and each run's own on ÷ off ratio.
 * 2. Scrape time with `--partitions` partitions (in topics of 100) and `--groups` consumer groups
 *    (each with committed offsets on 40 partitions, so that every group has lag to compute):
 *    the median and the largest of `--scrapes` GET /metrics, timed by the client, and the
 *    broker's CPU time per scrape (Linux /proc/PID/stat), which a busy machine disturbs less.
 *
 *   bun bench/metrics.ts [--runs 5] [--records 500000] [--record-size 100] [--partitions 2000]
 *     [--groups 50] [--scrapes 20] [--broker-runtime bun|node|deno] [--json FILE]
 */
import * as nodeFs from "node:fs";
import { GroupAdmin } from "../src/client/group-admin.ts";
import { cpuSecondsOf, createTopic, freePort, isMain, loadAverage, median, parseArgs } from "./lib.ts";
import { producerPerfDefaults, runProducerPerf, startBrokerProcess } from "./producer-perf.ts";

const defaults = {
  runs: 5,
  records: 500_000,
  recordSize: 100,
  partitions: 2000,
  groups: 50,
  scrapes: 20,
  brokerRuntime: "bun" as "bun" | "node" | "deno",
  json: "",
};

type Side = "off" | "on";
/** Partitions per topic of the scrape-time setup. */
const TOPIC_PARTITIONS = 100;
/** Partitions each group commits offsets on. */
const GROUP_PARTITIONS = 40;

/** GET /metrics once; its time in ms and its size. */
async function timeScrape(base: string): Promise<{ ms: number; bytes: number }> {
  const t0 = performance.now();
  const res = await fetch(`${base}/metrics`);
  const body = await res.text();
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return { ms: performance.now() - t0, bytes: body.length };
}

interface OnOff {
  readonly medians: Record<Side, number>;
  readonly all: Record<Side, number[]>;
  /** Median on ÷ median off. */
  readonly ratio: number;
  /** The median of each run's own on ÷ off (the two sides of a run share the machine's load). */
  readonly pairedRatio: number;
  /** Records per CPU-second of the broker, medians, and their ratio on ÷ off. */
  readonly perCpuSecond: Record<Side, number>;
  readonly cpuRatio: number;
}

async function produceOnOff(o: typeof defaults): Promise<OnOff> {
  const port = await freePort();
  const off = await startBrokerProcess(o.brokerRuntime);
  const on = await startBrokerProcess(o.brokerRuntime, { args: ["--set", `http.listen=127.0.0.1:${port}`] });
  const all: Record<Side, number[]> = { off: [], on: [] };
  const perCpu: Record<Side, number[]> = { off: [], on: [] };
  const scraper = setInterval(() => void timeScrape(`http://127.0.0.1:${port}`).catch(() => {}), 1000);
  try {
    for (let run = 0; run < o.runs; run++) {
      const order: Side[] = run % 2 === 0 ? ["off", "on"] : ["on", "off"];
      for (const side of order) {
        const pid = (side === "on" ? on : off).proc.pid!;
        const cpu0 = cpuSecondsOf(pid);
        const p = await runProducerPerf({
          ...producerPerfDefaults,
          records: o.records,
          recordSize: o.recordSize,
          brokers: side === "on" ? on.address : off.address,
        });
        if ((p["errors"] as number) > 0) throw new Error(`${side} produce: ${p["errors"]} errors, first ${String(p["firstError"])}`);
        all[side].push(p["recordsPerSec"] as number);
        perCpu[side].push(o.records / (cpuSecondsOf(pid) - cpu0));
        console.log(
          `run ${run + 1} metrics ${side}: produce ${((p["recordsPerSec"] as number) / 1e6).toFixed(3)}M records/s, ${(perCpu[side].at(-1)! / 1e6).toFixed(3)}M records per broker CPU-second`,
        );
      }
    }
  } finally {
    clearInterval(scraper);
    await on.stop();
    await off.stop();
  }
  const medians = { off: median(all.off), on: median(all.on) };
  const perCpuSecond = { off: median(perCpu.off), on: median(perCpu.on) };
  return {
    medians,
    all,
    ratio: medians.on / medians.off,
    pairedRatio: median(all.on.map((v, i) => v / all.off[i]!)),
    perCpuSecond,
    cpuRatio: perCpuSecond.on / perCpuSecond.off,
  };
}

async function scrapeTime(
  o: typeof defaults,
): Promise<{ medianMs: number; maxMs: number; brokerCpuMsPerScrape: number; bytes: number; all: number[] }> {
  const port = await freePort();
  const broker = await startBrokerProcess(o.brokerRuntime, {
    args: ["--set", `http.listen=127.0.0.1:${port}`, "--set", `max.partitions=${o.partitions + 1000}`],
    startTimeoutMs: 60_000,
  });
  const base = `http://127.0.0.1:${port}`;
  const groups = new GroupAdmin({ bootstrap: broker.address, requestTimeoutMs: 30_000 });
  try {
    const topics = Math.ceil(o.partitions / TOPIC_PARTITIONS);
    for (let t = 0; t < topics; t++)
      await createTopic(broker.address, `scrape-${t}`, Math.min(TOPIC_PARTITIONS, o.partitions - t * TOPIC_PARTITIONS));
    for (let g = 0; g < o.groups; g++) {
      const topic = `scrape-${g % topics}`;
      const first = (g * GROUP_PARTITIONS) % TOPIC_PARTITIONS;
      const offsets = Array.from({ length: GROUP_PARTITIONS }, (_, i) => ({ topic, partition: (first + i) % TOPIC_PARTITIONS, offset: 0 }));
      await groups.commitOffsets(`scrape-group-${g}`, offsets);
    }
    await timeScrape(base); // warm
    const times: number[] = [];
    let bytes = 0;
    const cpu0 = cpuSecondsOf(broker.proc.pid!);
    for (let i = 0; i < o.scrapes; i++) {
      const s = await timeScrape(base);
      times.push(s.ms);
      bytes = s.bytes;
    }
    // The broker's CPU time per scrape: what a scrape costs, whatever else the machine runs.
    const brokerCpuMsPerScrape = ((cpuSecondsOf(broker.proc.pid!) - cpu0) * 1000) / o.scrapes;
    return { medianMs: median(times), maxMs: Math.max(...times), brokerCpuMsPerScrape, bytes, all: times };
  } finally {
    await groups.close();
    await broker.stop();
  }
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2), defaults, import.meta.url);
  const produce = await produceOnOff(o);
  const scrape = await scrapeTime(o);
  const result = {
    runtime: o.brokerRuntime,
    runs: o.runs,
    recordSize: o.recordSize,
    records: o.records,
    produceRecordsPerSec: { ...produce.medians, all: produce.all },
    produceRatio: produce.ratio,
    producePairedRatio: produce.pairedRatio,
    produceRecordsPerBrokerCpuSecond: produce.perCpuSecond,
    produceCpuRatio: produce.cpuRatio,
    scrape: { partitions: o.partitions, groups: o.groups, scrapes: o.scrapes, ...scrape },
    loadAverage: loadAverage(),
  };
  console.log(
    `medians of ${o.runs} interleaved runs, ${o.recordSize} B records, broker on ${o.brokerRuntime}: ` +
      `produce metrics on ${(produce.medians.on / 1e6).toFixed(3)}M / off ${(produce.medians.off / 1e6).toFixed(3)}M records/s = ${produce.ratio.toFixed(3)} (per run ${produce.pairedRatio.toFixed(3)}; per broker CPU-second ${produce.cpuRatio.toFixed(3)}); ` +
      `scrape with ${o.partitions} partitions and ${o.groups} groups: median ${scrape.medianMs.toFixed(1)} ms, max ${scrape.maxMs.toFixed(1)} ms over ${o.scrapes}, broker CPU ${scrape.brokerCpuMsPerScrape.toFixed(1)} ms per scrape (${(scrape.bytes / 1024).toFixed(0)} KiB); ` +
      `load average ${result.loadAverage.join(", ")}`,
  );
  if (o.json) nodeFs.writeFileSync(o.json, `${JSON.stringify(result, null, 2)}\n`);
}

if (isMain(import.meta.url, "metrics.ts")) await main();
