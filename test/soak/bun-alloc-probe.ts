/**
 * A probe preloaded into the soak's Bun brokers: where their memory is, by allocator (issue 14).
 *
 *   BUN_OPTIONS="--preload $PWD/test/soak/bun-alloc-probe.ts" RILL_IT_KEEP=1 npm run soak -- --minutes 15 --seed 1414
 *
 * The brokers inherit the soak's environment (also through the in-place restart that sets the
 * collector options). Every `RILL_PROBE_MS` (default 60 s) each broker writes to its stderr, which
 * the harness keeps in `<cluster root>/node-N.log` (kept with `RILL_IT_KEEP=1`):
 *
 * - a `### probe` line: VmRSS, JavaScriptCore's `heapStats()` (heap size and capacity, the extra
 *   memory it was told of: buffers' contents), and the RSS of the anonymous mappings below
 *   0x7f0000000000 (`arenaRssKiB`: where Bun's mimalloc puts its arenas; the JavaScript heap's
 *   16 KiB blocks are allocated there too) against everything else (`otherRssKiB`: the binary,
 *   JIT code, thread stacks, glibc's heap and arenas);
 * - a `### types` line: live and dead cells by type (`objectTypeCounts`), top 25, then the buffer types;
 * - mimalloc's own statistics (`Bun.unsafe.mimallocDump()`): bytes in use per size class
 *   ("binned ... current"), pages, arenas committed and purged. Bun prints no statistics at exit
 *   (`MIMALLOC_SHOW_STATS` does nothing for the broker), so this is the way to see them.
 *
 * With `RILL_PROBE_GC=1` it then runs a full collection and writes the same again (`### probe-aftergc`):
 * what is live. Not part of any check; a tool for runs by hand.
 */
import * as fs from "node:fs";
import { createRequire } from "node:module";

interface Jsc {
  heapStats(): {
    heapSize: number;
    heapCapacity: number;
    extraMemorySize: number;
    objectCount: number;
    objectTypeCounts: Record<string, number>;
  };
}
interface BunUnsafe {
  mimallocDump(): void;
}

const bun = (globalThis as { Bun?: { unsafe: BunUnsafe; gc(full: boolean): void } }).Bun;
if (bun !== undefined) {
  const jsc = createRequire(import.meta.url)("bun:jsc") as Jsc;
  const t0 = Date.now();

  const rssKiB = (): number => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync("/proc/self/status", "utf8"))?.[1] ?? -1);

  /** RSS (KiB) of the anonymous mappings below 0x7f0000000000 (mimalloc's), and of the rest. */
  const arenaRss = (): string => {
    let arena = 0;
    let rest = 0;
    let inArena = false;
    for (const line of fs.readFileSync("/proc/self/smaps", "utf8").split("\n")) {
      const m = /^([0-9a-f]+)-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
      if (m) inArena = m[2] === "" && Number.parseInt(m[1]!, 16) < 0x7f0000000000;
      else if (line.startsWith("Rss:")) {
        const kib = Number(line.split(/\s+/)[1]);
        if (inArena) arena += kib;
        else rest += kib;
      }
    }
    return `arenaRssKiB=${arena} otherRssKiB=${rest}`;
  };

  const types = (): string => {
    const c = jsc.heapStats().objectTypeCounts;
    const top = Object.entries(c)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 25)
      .map(([k, v]) => `${k}:${v}`)
      .join(",");
    const buffers = ["Uint8Array", "ArrayBuffer", "Float64Array", "Uint32Array", "string"].map((k) => `${k}:${c[k] ?? 0}`).join(",");
    return `${top} | ${buffers}`;
  };

  const report = (label: string): void => {
    const h = jsc.heapStats();
    const t = ((Date.now() - t0) / 1000).toFixed(0);
    fs.writeSync(
      2,
      `\n### ${label} t=${t} pid=${process.pid} rssKiB=${rssKiB()} heapSize=${h.heapSize} heapCapacity=${h.heapCapacity} extraMemorySize=${h.extraMemorySize} objectCount=${h.objectCount} ${arenaRss()}\n`,
    );
    fs.writeSync(2, `### types ${types()}\n`);
    bun.unsafe.mimallocDump();
    fs.writeSync(2, "### probe end\n");
  };

  const timer = setInterval(
    () => {
      try {
        report("probe");
        if (process.env["RILL_PROBE_GC"] === "1") {
          bun.gc(true);
          report("probe-aftergc");
        }
      } catch (e) {
        fs.writeSync(2, `### probe error ${String(e)}\n`);
      }
    },
    Number(process.env["RILL_PROBE_MS"] ?? 60_000),
  );
  timer.unref();
}
