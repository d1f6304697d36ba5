/**
 * The JIT's share of transactional produce (issue 17). Starts a broker in this process and runs
 * `--blocks` blocks, alternating idempotent and transactional, each of `--records` records of
 * `--record-size` bytes sent by `--producers` producers (transactions of `--per-txn` records;
 * idempotent in awaited groups of `--idem-group` records, 1,000 as `txn-produce-perf.ts` does;
 * `--kinds txn` or `--kinds idempotent` runs one kind only, e.g. under strace). After each block it prints
 * the process's CPU time and that of Bun's `JITWorker` thread(s) (from /proc/self/task/N/stat),
 * per transaction (or per 100 idempotent records). Run with JavaScriptCore options such as
 * `BUN_JSC_reportFTLCompileTimes=true` or `BUN_JSC_printEachOSRExit=true` to see what compiles.
 *
 *   bun bench/txn-jit.ts --blocks 6 --records 200000 --producers 4 --per-txn 100
 */
import * as nodeFs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Broker } from "../src/broker/broker.ts";
import { Admin } from "../src/client/admin.ts";
import { Producer } from "../src/client/producer.ts";
import { isMain, jitWorkerCpuMs, makeValues, parseArgs } from "./lib.ts";

export const txnJitDefaults = {
  blocks: 6,
  records: 200_000,
  recordSize: 100,
  producers: 4,
  perTxn: 100,
  idemGroup: 1000,
  kinds: "both",
  json: "",
};
type Options = typeof txnJitDefaults;

function shares(values: string[], n: number): string[][] {
  const per = Math.ceil(values.length / n);
  return Array.from({ length: n }, (_, i) => values.slice(i * per, (i + 1) * per));
}

async function block(address: string, topic: string, values: string[], o: Options, txnId: string | null): Promise<void> {
  const ps = Array.from(
    { length: o.producers },
    (_, k) => new Producer({ bootstrap: address, lingerMs: 0, ...(txnId === null ? {} : { transactionalId: `${txnId}-${k}` }) }),
  );
  await Promise.all(
    shares(values, o.producers).map(async (mine, k) => {
      const p = ps[k]!;
      if (txnId === null) {
        for (let i = 0; i < mine.length; i += o.idemGroup) {
          await Promise.all(mine.slice(i, i + o.idemGroup).map((value) => p.send({ topic, partition: 0, value })));
        }
        return;
      }
      for (let i = 0; i < mine.length; i += o.perTxn) {
        const chunk = mine.slice(i, i + o.perTxn);
        let sends: Promise<unknown>[] = [];
        await p.transaction(async (tx) => {
          sends = chunk.map((value) => tx.send({ topic, partition: 0, value }));
        });
        await Promise.all(sends);
      }
    }),
  );
  await Promise.all(ps.map((p) => p.close()));
}

export async function txnJit(o: Options): Promise<void> {
  const dir = nodeFs.mkdtempSync(path.join(os.tmpdir(), "rill-txn-jit-"));
  const broker = await Broker.start({ dataDir: dir, listen: "127.0.0.1:0" });
  const admin = new Admin({ bootstrap: broker.address });
  const rows: Record<string, number | string>[] = [];
  try {
    const values = makeValues(o.records, o.recordSize);
    for (let b = 0; b < o.blocks; b++) {
      const kinds =
        o.kinds === "both" ? (["idempotent", "txn"] as const) : o.kinds === "txn" ? (["txn"] as const) : (["idempotent"] as const);
      for (const kind of kinds) {
        const topic = `jit-${kind}-${b}`;
        await admin.createTopics([{ name: topic, partitions: 1 }]);
        const cpu0 = process.cpuUsage();
        const jit0 = jitWorkerCpuMs();
        const t0 = performance.now();
        await block(broker.address, topic, values, o, kind === "txn" ? `jit-${b}` : null);
        const wallMs = performance.now() - t0;
        const used = process.cpuUsage(cpu0);
        const cpuMs = (used.user + used.system) / 1000;
        const jitMs = jitWorkerCpuMs() - jit0;
        const units = o.records / (kind === "txn" ? o.perTxn : 100);
        const row = {
          block: b,
          kind,
          wallMs: Math.round(wallMs),
          cpuMs: Math.round(cpuMs),
          jitMs,
          cpuUsPerUnit: (cpuMs * 1000) / units,
          jitUsPerUnit: (jitMs * 1000) / units,
        };
        rows.push(row);
        console.log(
          `block ${b} ${kind.padEnd(10)} wall ${Math.round(wallMs)} ms, cpu ${Math.round(cpuMs)} ms, JITWorker ${jitMs} ms; ` +
            `per ${kind === "txn" ? "txn" : "100 records"}: cpu ${row.cpuUsPerUnit.toFixed(0)} µs, JIT ${row.jitUsPerUnit.toFixed(0)} µs`,
        );
      }
    }
    if (o.json !== "") nodeFs.writeFileSync(o.json, JSON.stringify(rows, null, 2));
  } finally {
    await admin.close();
    await broker.close();
    nodeFs.rmSync(dir, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url, "txn-jit.ts")) {
  await txnJit(parseArgs(process.argv.slice(2), txnJitDefaults, import.meta.url));
}
