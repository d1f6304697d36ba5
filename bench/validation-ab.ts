/**
 * `produce.validation` full ÷ structure, side by side (issue 14's benchmark): brokers started at
 * once, one per variant, each warmed up with one run, then producer-perf runs alternated between
 * them; per run the records/s and the broker process's CPU time (user + system, /proc). Prints
 * the medians and full ÷ structure from the same run.
 *
 *   bun bench/validation-ab.ts [--runs 6] [--records 2000000] [--record-size 100]
 *     [--compression lz4|none] [--runtime bun|node] [--napi]
 *
 * `--napi` adds a third broker, `full` with RILL_LZ4_DECODER=lz4-napi (LZ4 blocks decoded by
 * lz4-napi as before liblz4 was used under Bun: src/protocol/lz4-liblz4.ts), so the decoders
 * compare in the same run. The machine is shared: read the medians, and the load average printed.
 */
import { spawnSync } from "node:child_process";
import * as nodeFs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { choice, integer, scriptCommand } from "../scripts/lib/command-line.ts";
import { startBrokerProcess } from "./producer-perf.ts";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");

const o = scriptCommand(import.meta.url)
  .option("--runs <n>", "runs per variant, after one warm-up run each", integer(1, 1000), 6)
  .option("--records <n>", "records per run", integer(1), 2_000_000)
  .option("--record-size <n>", "bytes per record", integer(1), 100)
  .option("--compression <c>", "the batches' codec", choice(["lz4", "none"] as const), "lz4")
  .option("--runtime <r>", "the brokers' runtime", choice(["bun", "node"] as const), "bun")
  .option("--napi", "also a full broker decoding LZ4 with lz4-napi")
  .parse()
  .opts<{ runs: number; records: number; recordSize: number; compression: string; runtime: "bun" | "node"; napi?: boolean }>();

interface Variant {
  name: string;
  validation: "full" | "structure";
  env: Record<string, string>;
}
const variants: Variant[] = [
  { name: "full", validation: "full", env: {} },
  { name: "structure", validation: "structure", env: {} },
  ...(o.napi ? [{ name: "full (lz4-napi)", validation: "full" as const, env: { RILL_LZ4_DECODER: "lz4-napi" } }] : []),
];

/** CPU seconds (user + system) the process has used so far. */
function cpuSeconds(pid: number): number {
  const f = nodeFs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = f.slice(f.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (100 Hz)
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const brokers = [];
for (const v of variants) {
  const saved = { ...process.env };
  Object.assign(process.env, v.env);
  brokers.push(await startBrokerProcess(o.runtime, { args: ["--set", `produce.validation=${v.validation}`] }));
  for (const k of Object.keys(v.env)) if (saved[k] === undefined) delete process.env[k];
}
const results = variants.map(() => ({ rps: [] as number[], cpu: [] as number[] }));
const tmp = nodeFs.mkdtempSync(path.join(os.tmpdir(), "rill-validation-ab-"));
const bun = path.join(root, "node_modules/.bin/bun");
console.log(
  `load average before: ${os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(" ")}`,
);
try {
  for (let run = 0; run <= o.runs; run++) {
    for (let i = 0; i < variants.length; i++) {
      const b = brokers[i]!;
      const json = path.join(tmp, "r.json");
      const cpu0 = cpuSeconds(b.proc.pid!);
      const r = spawnSync(
        bun,
        [
          "bench/producer-perf.ts",
          "--records",
          String(o.records),
          "--record-size",
          String(o.recordSize),
          "--compression",
          o.compression,
          "--brokers",
          b.address,
          "--json",
          json,
        ],
        { cwd: root, encoding: "utf8" },
      );
      if (r.status !== 0) throw new Error(`producer-perf failed: ${r.stderr}`);
      const cpu = cpuSeconds(b.proc.pid!) - cpu0;
      const rps = (JSON.parse(nodeFs.readFileSync(json, "utf8")) as { recordsPerSec: number }).recordsPerSec;
      if (run === 0) continue; // warm-up
      results[i]!.rps.push(rps);
      results[i]!.cpu.push(cpu);
      console.log(`run ${run} ${variants[i]!.name}: ${(rps / 1e6).toFixed(2)}M records/s, broker CPU ${cpu.toFixed(2)} s`);
    }
  }
} finally {
  await Promise.all(brokers.map((b) => b.stop()));
  nodeFs.rmSync(tmp, { recursive: true, force: true });
}
console.log(
  `load average after: ${os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(" ")}`,
);
const structure = results[1]!;
for (let i = 0; i < variants.length; i++) {
  const r = results[i]!;
  console.log(
    `${variants[i]!.name}: median ${(median(r.rps) / 1e6).toFixed(2)}M records/s (${r.rps.map((x) => (x / 1e6).toFixed(2)).join(", ")}), ` +
      `broker CPU median ${median(r.cpu).toFixed(2)} s; ÷ structure ${(median(r.rps) / median(structure.rps)).toFixed(2)}`,
  );
}
