/**
 * A probe preloaded into the soak's Bun brokers: the collector's timing, second by second (issue 14).
 *
 *   BUN_OPTIONS="--preload $PWD/test/soak/bun-gc-probe.ts" RILL_IT_KEEP=1 npm run soak -- --minutes 15 --seed 1414
 *
 * It wraps `Bun.gc` (what the broker's pacer calls: `runtimeCollector` looks the method up at each
 * call) to count the synchronous collections and time them, and samples every 50 ms what the pacer
 * reads (`bun:jsc` `memoryUsage().current`) and how late that sampling timer ran. Once a second it
 * writes to its stderr (`<cluster root>/node-N.log` with `RILL_IT_KEEP=1`) a `### gcp` line:
 *
 *   t (s since the process started), rss (VmRSS, KiB), cur / curMin / curMax (memoryUsage().current
 *   now and its range over the second, KiB), heapUsed / heapTotal (process.memoryUsage(), KiB;
 *   heapStats() walks the heap, too dear each second),
 *   gcs / gcMs (Bun.gc(true) calls and their total ms, cumulative), lagMax (ms, the sampling
 *   timer's longest delay past its 50 ms in that second).
 *
 * Each Bun.gc call also writes a `### gcc` line: when, the reading before (KiB), the lowest reading
 * this probe saw since the call before (`mark`) and how far above it (`above`: about 64 MiB for a
 * collection of the pacer's step, less for one of its soft limit), the reading just after, and
 * how long it took (ms). When a collection left more than RILL_PROBE_LIVE_MIB (default 40) above
 * the mark, a `### gcl` line follows (at most once a minute): the heap's cells by type just after
 * it, top 30, i.e. what was live in the burst.
 *
 * Not part of any check; a tool for runs by hand.
 */
import * as fs from "node:fs";
import { createRequire } from "node:module";

interface Jsc {
  memoryUsage(): { current: number };
  heapStats(): { objectTypeCounts: Record<string, number> };
}

const bun = (globalThis as { Bun?: { gc(full: boolean): void } }).Bun;
if (bun !== undefined) {
  const jsc = createRequire(import.meta.url)("bun:jsc") as Jsc;
  const t0 = performance.now();
  const orig = bun.gc.bind(bun);
  let gcs = 0;
  let gcMs = 0;
  const kib = (b: number): number => Math.round(b / 1024);
  /** Lowest reading since the last Bun.gc call (the pacer's mark, as this probe's samples see it). */
  let mark = jsc.memoryUsage().current;
  const liveDumpBytes = Number(process.env["RILL_PROBE_LIVE_MIB"] ?? 40) * 1024 * 1024;
  let lastDump = Number.NEGATIVE_INFINITY;
  /** The reading after the last dumped collection: within the minute, one that leaves RILL_PROBE_LIVE_MIB more is dumped too. */
  let lastDumpAfter = Number.POSITIVE_INFINITY;
  bun.gc = (full: boolean): void => {
    const before = jsc.memoryUsage().current;
    const s = performance.now();
    orig(full);
    const ms = performance.now() - s;
    const after = jsc.memoryUsage().current;
    gcMs += ms;
    gcs++;
    fs.writeSync(
      2,
      `### gcc t=${((s - t0) / 1000).toFixed(2)} before=${kib(before)} mark=${kib(mark)} above=${kib(before - mark)} after=${kib(after)} ms=${ms.toFixed(1)}\n`,
    );
    // What a collection could not free: the cells by type, just after it (they are live), when
    // more than RILL_PROBE_LIVE_MIB (default 40) stayed above the mark; at most once a minute.
    // Within the minute, a collection that leaves RILL_PROBE_LIVE_MIB more than the last dumped one
    // is dumped too: a burst 15 s after a routine dump went unseen (session 12's soak: collections
    // 0.3 s apart left 250, then 282 MiB, with the mark following each).
    if ((after - mark > liveDumpBytes && s - lastDump > 60_000) || after > lastDumpAfter + liveDumpBytes) {
      lastDump = s;
      lastDumpAfter = after;
      const top = Object.entries(jsc.heapStats().objectTypeCounts)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 30)
        .map(([k, v]) => `${k}:${v}`)
        .join(",");
      fs.writeSync(2, `### gcl t=${((s - t0) / 1000).toFixed(2)} keptAboveMark=${kib(after - mark)} ${top}\n`);
    }
    mark = after;
  };
  const rssKiB = (): number => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync("/proc/self/status", "utf8"))?.[1] ?? -1);
  let curMin = Number.POSITIVE_INFINITY;
  let curMax = 0;
  let lagMax = 0;
  let last = performance.now();
  let lastReport = last;
  const timer = setInterval(() => {
    const now = performance.now();
    lagMax = Math.max(lagMax, now - last - 50);
    last = now;
    const cur = jsc.memoryUsage().current;
    curMin = Math.min(curMin, cur);
    mark = Math.min(mark, cur);
    curMax = Math.max(curMax, cur);
    if (now - lastReport < 1000) return;
    lastReport = now;
    const h = process.memoryUsage();
    fs.writeSync(
      2,
      `### gcp t=${((now - t0) / 1000).toFixed(1)} rss=${rssKiB()} cur=${kib(cur)} curMin=${kib(curMin)} curMax=${kib(curMax)} heapUsed=${kib(h.heapUsed)} heapTotal=${kib(h.heapTotal)} gcs=${gcs} gcMs=${gcMs.toFixed(0)} lagMax=${lagMax.toFixed(0)}\n`,
    );
    curMin = Number.POSITIVE_INFINITY;
    curMax = 0;
    lagMax = 0;
  }, 50);
  timer.unref();
}
