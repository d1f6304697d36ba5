/**
 * TLS ÷ plaintext: produce and consume throughput through a broker whose client listener serves
 * TLS, against one that serves plaintext, both started side by side on 127.0.0.1 under the same
 * runtime; runs interleaved (plaintext first on even runs, TLS first on odd ones) so that load
 * from elsewhere falls on both alike; medians of `--runs`. The certificates (a CA and a
 * `localhost` server certificate, EC P-256) are made with /usr/bin/openssl in a temporary folder.
 *
 *   bun bench/tls.ts [--runs 5] [--records 500000] [--consume-records 1000000] [--record-size 100]
 *     [--broker-runtime bun|node|deno] [--json FILE]
 *
 * Produce: producer-perf (batches of 1,000 records, 8 in flight, acks=leader). Consume:
 * consumer-perf (pipelined BATCHES Fetch, CRC checked, each run on a freshly pre-produced topic).
 *
 * Besides records/s (wall clock, which other load on the machine disturbs), each run's CPU time
 * is measured — the broker's (Linux /proc/PID/stat, user + system) and this process's (the
 * client's, `process.cpuUsage`) — and reported as records per CPU-second of broker and client
 * together: what TLS costs in work, less sensitive to a busy machine than the wall clock.
 */
import * as nodeFs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { TestPki } from "../test/fixtures/test-pki.ts";
import { consumerPerfDefaults, runConsumerPerf } from "./consumer-perf.ts";
import { cpuSecondsOf, isMain, loadAverage, median, parseArgs } from "./lib.ts";

/** Runs `fn`, returning its result and the CPU seconds the broker `pid` and this process used meanwhile. */
async function withCpu<T>(pid: number, fn: () => Promise<T>): Promise<{ value: T; cpuSeconds: number }> {
  const b0 = cpuSecondsOf(pid);
  const c0 = process.cpuUsage();
  const value = await fn();
  const c = process.cpuUsage(c0);
  return { value, cpuSeconds: cpuSecondsOf(pid) - b0 + (c.user + c.system) / 1e6 };
}
import { producerPerfDefaults, runProducerPerf, startBrokerProcess } from "./producer-perf.ts";

const defaults = {
  runs: 5,
  records: 500_000,
  consumeRecords: 1_000_000,
  recordSize: 100,
  brokerRuntime: "bun" as "bun" | "node" | "deno",
  json: "",
};

type Side = "plaintext" | "tls";

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2), defaults, import.meta.url);
  const dir = nodeFs.mkdtempSync(path.join(os.tmpdir(), "rill-bench-tls-"));
  const pki = new TestPki(dir);
  const ca = pki.ca("bench-ca");
  const server = pki.leaf(ca, { cn: "localhost", san: "DNS:localhost", serial: 1 });
  const plain = await startBrokerProcess(o.brokerRuntime);
  const secure = await startBrokerProcess(o.brokerRuntime, { args: ["--tls-cert", server.cert, "--tls-key", server.key] });
  const produce: Record<Side, number[]> = { plaintext: [], tls: [] };
  const consume: Record<Side, number[]> = { plaintext: [], tls: [] };
  const producePerCpu: Record<Side, number[]> = { plaintext: [], tls: [] };
  const consumePerCpu: Record<Side, number[]> = { plaintext: [], tls: [] };
  try {
    for (let run = 0; run < o.runs; run++) {
      const order: Side[] = run % 2 === 0 ? ["plaintext", "tls"] : ["tls", "plaintext"];
      for (const side of order) {
        const address = side === "tls" ? secure.address : plain.address;
        const pid = (side === "tls" ? secure : plain).proc.pid!;
        const tlsCa = side === "tls" ? ca.cert : "";
        const produced = await withCpu(pid, () =>
          runProducerPerf({ ...producerPerfDefaults, records: o.records, recordSize: o.recordSize, brokers: address, tlsCa }),
        );
        const p = produced.value;
        if ((p["errors"] as number) > 0) throw new Error(`${side} produce: ${p["errors"]} errors, first ${String(p["firstError"])}`);
        produce[side].push(p["recordsPerSec"] as number);
        producePerCpu[side].push(o.records / produced.cpuSeconds);
        // consumer-perf pre-produces its topic (untimed) before reading it: the CPU measure of a
        // consume run covers both, so it is reported as "consume with its pre-produce".
        const consumed = await withCpu(pid, () =>
          runConsumerPerf({
            ...consumerPerfDefaults,
            records: o.consumeRecords,
            recordSize: o.recordSize,
            runs: 1,
            brokers: address,
            tlsCa,
          }),
        );
        const c = consumed.value;
        consume[side].push(c["recordsPerSec"] as number);
        consumePerCpu[side].push(o.consumeRecords / consumed.cpuSeconds);
        console.log(
          `run ${run + 1} ${side}: produce ${((p["recordsPerSec"] as number) / 1e6).toFixed(3)}M records/s, consume ${((c["recordsPerSec"] as number) / 1e6).toFixed(3)}M records/s`,
        );
      }
    }
  } finally {
    await secure.stop();
    await plain.stop();
    nodeFs.rmSync(dir, { recursive: true, force: true });
  }
  const result = {
    runtime: o.brokerRuntime,
    runs: o.runs,
    recordSize: o.recordSize,
    produceRecords: o.records,
    consumeRecords: o.consumeRecords,
    produceRecordsPerSec: { plaintext: median(produce.plaintext), tls: median(produce.tls), all: produce },
    consumeRecordsPerSec: { plaintext: median(consume.plaintext), tls: median(consume.tls), all: consume },
    produceRatio: median(produce.tls) / median(produce.plaintext),
    consumeRatio: median(consume.tls) / median(consume.plaintext),
    produceRecordsPerCpuSecond: { plaintext: median(producePerCpu.plaintext), tls: median(producePerCpu.tls), all: producePerCpu },
    consumeRecordsPerCpuSecond: { plaintext: median(consumePerCpu.plaintext), tls: median(consumePerCpu.tls), all: consumePerCpu },
    produceCpuRatio: median(producePerCpu.tls) / median(producePerCpu.plaintext),
    consumeCpuRatio: median(consumePerCpu.tls) / median(consumePerCpu.plaintext),
    loadAverage: loadAverage(),
  };
  console.log(
    `medians of ${o.runs} interleaved runs, ${o.recordSize} B records, broker on ${o.brokerRuntime}: ` +
      `produce TLS ${(result.produceRecordsPerSec.tls / 1e6).toFixed(3)}M / plaintext ${(result.produceRecordsPerSec.plaintext / 1e6).toFixed(3)}M records/s = ${result.produceRatio.toFixed(2)}; ` +
      `consume TLS ${(result.consumeRecordsPerSec.tls / 1e6).toFixed(3)}M / plaintext ${(result.consumeRecordsPerSec.plaintext / 1e6).toFixed(3)}M records/s = ${result.consumeRatio.toFixed(2)}; ` +
      `per CPU-second (broker + client): produce ${result.produceCpuRatio.toFixed(2)}, consume (with its pre-produce) ${result.consumeCpuRatio.toFixed(2)}; ` +
      `load average ${result.loadAverage.join(", ")}`,
  );
  if (o.json) nodeFs.writeFileSync(o.json, `${JSON.stringify(result, null, 2)}\n`);
}

if (isMain(import.meta.url, "tls.ts")) await main();
