/**
 * Transactional ÷ idempotent produce throughput (issue 17's goals: ≥ 0.5 with 100 records per
 * transaction, ≥ 0.85 with 1,000). Starts a broker in this process on 127.0.0.1 with a fresh
 * data dir and sends `--records` records of `--record-size` bytes to one partition with the SDK
 * Producer: idempotent, then in transactions of 100 and of 1,000 records
 * (`producer.transaction`, committed: the records, the coordinator's records and the markers),
 * `--runs` times each, interleaved. Reports the median records/s of each and the ratios, and the
 * same ratios by the CPU time of the process (broker and client both run in it), which other
 * work on a loaded machine disturbs far less than the wall clock.
 * Both producers send the same way (lingerMs 0, awaiting each 1,000 records, or each transaction
 * and its records: `transaction()` resolves once they are acknowledged and the commit is):
 * until 2026-12-06 the idempotent one lingered 5 ms per 1,000 records, which capped it near
 * 200k records/s and made the ratios look 4-5x better than they are.
 *
 * With `--producers N`, N producers of each kind send at once (a share of the records each; each
 * transactional one with its own transactional id): one producer's transactions are serial — the
 * next begins once the last is committed — so one producer measures a transaction's round trip,
 * and several the broker's throughput of transactions.
 *
 * Under Bun it also reports the CPU time of the JavaScriptCore compiler threads (`JITWorker`) per
 * run of each kind. The code run once per transaction reaches the optimizing compiler (FTL) only
 * after thousands of transactions, so the first runs of the transactional kinds pay for compiling
 * it (bench/README.md, "Transactions"): `--warmup N` first runs all three kinds N times untimed, to
 * measure a broker that has been up a while rather than one just started.
 *
 *   bun bench/txn-produce-perf.ts --records 200000 --record-size 100 [--runs 3] [--producers 1] [--warmup 0] [--json FILE]
 */
import * as nodeFs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Broker } from "../src/broker/broker.ts";
import { Admin } from "../src/client/admin.ts";
import { Producer } from "../src/client/producer.ts";
import { isMain, jitWorkerCpuMs, makeValues, median, parseArgs } from "./lib.ts";

export const txnProducePerfDefaults = { records: 200_000, recordSize: 100, runs: 3, producers: 1, warmup: 0, json: "" };
type Options = typeof txnProducePerfDefaults;

/**
 * Records per second of wall-clock time, and per second of this process's CPU time (broker and
 * client); ms of CPU of the JIT's compiler threads (part of the process's).
 */
interface Rate {
  readonly wall: number;
  readonly cpu: number;
  readonly jitMs: number;
}

function rateSince(records: number, t0: number, cpu0: NodeJS.CpuUsage, jit0: number): Rate {
  const used = process.cpuUsage(cpu0);
  return {
    wall: records / ((performance.now() - t0) / 1000),
    cpu: records / ((used.user + used.system) / 1e6),
    jitMs: jitWorkerCpuMs() - jit0,
  };
}

/** `values` split into `n` shares, in order. */
function shares(values: string[], n: number): string[][] {
  const per = Math.ceil(values.length / n);
  return Array.from({ length: n }, (_, i) => values.slice(i * per, (i + 1) * per));
}

async function idempotent(address: string, topic: string, values: string[], producers: number): Promise<Rate> {
  const ps = Array.from({ length: producers }, () => new Producer({ bootstrap: address, lingerMs: 0 }));
  const jit0 = jitWorkerCpuMs();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    shares(values, producers).map(async (mine, k) => {
      const p = ps[k]!;
      for (let i = 0; i < mine.length; i += 1000) {
        await Promise.all(mine.slice(i, i + 1000).map((value) => p.send({ topic, partition: 0, value })));
      }
    }),
  );
  const rate = rateSince(values.length, t0, cpu0, jit0);
  await Promise.all(ps.map((p) => p.close()));
  return rate;
}

async function transactional(
  address: string,
  topic: string,
  values: string[],
  perTxn: number,
  id: string,
  producers: number,
): Promise<Rate> {
  const ps = Array.from({ length: producers }, (_, k) => new Producer({ bootstrap: address, lingerMs: 0, transactionalId: `${id}-${k}` }));
  const jit0 = jitWorkerCpuMs();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    shares(values, producers).map(async (mine, k) => {
      const p = ps[k]!;
      for (let i = 0; i < mine.length; i += perTxn) {
        const chunk = mine.slice(i, i + perTxn);
        let sends: Promise<unknown>[] = [];
        // transaction() resolves once its records are acknowledged and committed; their promises are awaited too.
        await p.transaction(async (tx) => {
          sends = chunk.map((value) => tx.send({ topic, partition: 0, value }));
        });
        await Promise.all(sends);
      }
    }),
  );
  const rate = rateSince(values.length, t0, cpu0, jit0);
  await Promise.all(ps.map((p) => p.close()));
  return rate;
}

export async function txnProducePerf(o: Options): Promise<Record<string, number>> {
  const dir = nodeFs.mkdtempSync(path.join(os.tmpdir(), "rill-txn-produce-"));
  const broker = await Broker.start({ dataDir: dir, listen: "127.0.0.1:0" });
  const admin = new Admin({ bootstrap: broker.address });
  try {
    const values = makeValues(o.records, o.recordSize);
    const kinds = ["idempotent", "txn100", "txn1000"] as const;
    const rates: Record<string, Rate[]> = { idempotent: [], txn100: [], txn1000: [] };
    for (let run = -o.warmup; run < o.runs; run++) {
      const label = run < 0 ? `warm-up ${run + o.warmup + 1}` : `run ${run + 1}`;
      for (const kind of kinds) {
        const topic = `perf-${kind}-${run}`;
        await admin.createTopics([{ name: topic, partitions: 1 }]);
        const rate =
          kind === "idempotent"
            ? await idempotent(broker.address, topic, values, o.producers)
            : await transactional(broker.address, topic, values, kind === "txn100" ? 100 : 1000, `perf-${kind}-${run}`, o.producers);
        if (run >= 0) rates[kind]!.push(rate);
        console.log(
          `${label} ${kind}: ${Math.round(rate.wall)} records/s, ${Math.round(rate.cpu)} records per CPU second, JIT threads ${rate.jitMs} ms of CPU`,
        );
      }
    }
    const wall = (k: string) => median(rates[k]!.map((r) => r.wall));
    const cpu = (k: string) => median(rates[k]!.map((r) => r.cpu));
    const jit = (k: string) => median(rates[k]!.map((r) => r.jitMs));
    const m = { idempotent: wall("idempotent"), txn100: wall("txn100"), txn1000: wall("txn1000") };
    const out = {
      ...m,
      ratio100: m.txn100 / m.idempotent,
      ratio1000: m.txn1000 / m.idempotent,
      cpuRatio100: cpu("txn100") / cpu("idempotent"),
      cpuRatio1000: cpu("txn1000") / cpu("idempotent"),
      jitMsIdempotent: jit("idempotent"),
      jitMsTxn100: jit("txn100"),
      jitMsTxn1000: jit("txn1000"),
    };
    console.log(
      `idempotent ${Math.round(m.idempotent)}/s; 100 per txn ${Math.round(m.txn100)}/s (×${out.ratio100.toFixed(2)}, goal ≥ 0.5); ` +
        `1000 per txn ${Math.round(m.txn1000)}/s (×${out.ratio1000.toFixed(2)}, goal ≥ 0.85)`,
    );
    console.log(
      `by CPU time of the process (broker + client; less disturbed by other work on a loaded machine): 100 per txn ×${out.cpuRatio100.toFixed(2)}, 1000 per txn ×${out.cpuRatio1000.toFixed(2)}`,
    );
    console.log(
      `JIT compiler threads, median ms of CPU per run: idempotent ${out.jitMsIdempotent}, 100 per txn ${out.jitMsTxn100}, 1000 per txn ${out.jitMsTxn1000}` +
        (o.warmup > 0 ? ` (after ${o.warmup} untimed round(s) of all three)` : ""),
    );
    if (o.json !== "") nodeFs.writeFileSync(o.json, JSON.stringify(out, null, 2));
    return out;
  } finally {
    await admin.close();
    await broker.close();
    nodeFs.rmSync(dir, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url, "txn-produce-perf.ts")) {
  await txnProducePerf(parseArgs(process.argv.slice(2), txnProducePerfDefaults, import.meta.url));
}
