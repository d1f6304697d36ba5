/**
 * Storage micro-benchmarks: `npm run bench:micro` (Bun), or `node --import tsx bench/micro.ts`
 * / `deno run -A bench/micro.ts` for the other runtimes. Runs every suite with the `benchmark`
 * package, prints a Markdown table, and writes JSON to bench/results/micro-<runtime>.json.
 *
 *   --filter WORD   only suites whose name contains WORD
 *   --time S        seconds per suite (default 3)
 */
import * as nodeFs from "node:fs";
import * as path from "node:path";
import Benchmark from "benchmark";
import { codecSuites, type CodecSuite } from "./micro/codec.ts";
import { logSuites } from "./micro/log.ts";
import { integer, scriptCommand } from "../scripts/lib/command-line.ts";
import { runtimeName } from "./runtime.ts";

interface Row {
  name: string;
  unit: string;
  perSecond: number;
  mibPerSecond: number | null;
  recordsPerSecond: number | null;
  rmePercent: number;
  samples: number;
}

function run(suites: CodecSuite[], seconds: number): Row[] {
  const rows: Row[] = [];
  for (const s of suites) {
    const bench = new Benchmark(s.name, s.fn, { maxTime: seconds, minSamples: 5 });
    bench.run();
    const hz = bench.hz;
    const units = hz * s.perOp;
    const row: Row = {
      name: s.name,
      unit: s.unit,
      perSecond: units,
      mibPerSecond: s.unit === "bytes" ? units / (1 << 20) : null,
      recordsPerSecond: s.unit === "records" ? units : null,
      rmePercent: bench.stats.rme,
      samples: bench.stats.sample.length,
    };
    rows.push(row);
    process.stderr.write(`  ${s.name}: ${fmt(row)}\n`);
  }
  return rows;
}

function fmt(r: Row): string {
  const v = r.mibPerSecond !== null ? `${r.mibPerSecond.toFixed(0)} MiB/s` : `${(r.recordsPerSecond! / 1e6).toFixed(2)}M records/s`;
  return `${v} ±${r.rmePercent.toFixed(1)}%`;
}

function ratio(rows: Row[], a: string, b: string): string {
  const x = rows.find((r) => r.name.startsWith(a));
  const y = rows.find((r) => r.name.startsWith(b));
  return x && y ? (x.perSecond / y.perSecond).toFixed(2) : "n/a";
}

async function main(): Promise<void> {
  const { filter, time: seconds } = scriptCommand(import.meta.url)
    .option("--filter <word>", "only suites whose name contains WORD")
    .option("--time <s>", "seconds per suite", integer(1), 3)
    .parse(process.argv.slice(2), { from: "user" })
    .opts<{ filter?: string; time: number }>();
  const runtime = runtimeName();
  process.stderr.write(`rill micro-benchmarks on ${runtime}, ${seconds}s per suite\n`);
  const log = logSuites();
  const all = [...codecSuites(), ...log.suites].filter((s) => !filter || s.name.includes(filter));
  const rows = run(all, seconds);
  await log.cleanup();
  const lines = [
    `| benchmark (${runtime}) | throughput | ±rme |`,
    "|---|---:|---:|",
    ...rows.map(
      (r) =>
        `| ${r.name} | ${r.mibPerSecond !== null ? `${r.mibPerSecond.toFixed(0)} MiB/s` : `${(r.recordsPerSecond! / 1e6).toFixed(2)} M records/s`} | ${r.rmePercent.toFixed(1)}% |`,
    ),
    "",
    `log append / raw fs append = ${ratio(rows, "log append", "raw fs append")}; log read / raw fs read = ${ratio(rows, "log read", "raw fs read (readSync, fresh")} (fresh buffer), ${ratio(rows, "log read", "raw fs read (readSync, reused")} (reused buffer)`,
  ];
  console.log(lines.join("\n"));
  const out = path.join(import.meta.dirname ?? path.dirname(new URL(import.meta.url).pathname), "results");
  nodeFs.mkdirSync(out, { recursive: true });
  nodeFs.writeFileSync(
    path.join(out, `micro-${runtime.split(" ")[0]}.json`),
    JSON.stringify({ runtime, date: new Date().toISOString(), seconds, rows }, null, 2) + "\n",
  );
}

await main();
