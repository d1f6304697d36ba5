/**
 * GroupConsumer.run with eachBatch ÷ the GroupConsumer's async iterator (issue 18's goal: ≥ 0.95),
 * in the same process against the same broker and data: pre-produces `--records` records into
 * a fresh topic (not timed), then `--runs` times reads them all with each way in turn (a new
 * group each time, from the earliest offset, the default auto-commit), and reports records/s of
 * every read (after one untimed warm-up read each way), the median of each way and the ratio of the medians (and the median of the
 * per-run ratios), and the same by the client process's CPU time per record (which a loaded
 * machine disturbs less than the wall clock). The handlers count records and touch each value's length, nothing else.
 * A broker process is started on 127.0.0.1 with a fresh data dir (`--broker-runtime`), or the
 * one at `--broker HOST:PORT` is used.
 *
 *   bun bench/consumer-run.ts [--records 1000000] [--record-size 100] [--partitions 6]
 *     [--runs 5] [--max-outstanding 20000] [--concurrency 1] [--broker-runtime bun|node|deno]
 *     [--broker HOST:PORT] [--json FILE]
 */
import * as nodeFs from "node:fs";
import { GroupConsumer } from "../src/client/group-consumer.ts";
import { createTopic, isMain, median, parseArgs, preProduce } from "./lib.ts";
import { startBrokerProcess } from "./producer-perf.ts";
import { runtimeName } from "./runtime.ts";

export const consumerRunDefaults = {
  records: 1_000_000,
  recordSize: 100,
  partitions: 6,
  runs: 5,
  /** The member's credit (max_outstanding_records); the broker's default 1000 makes both ways wait on commits. */
  maxOutstanding: 20_000,
  /** partitionsConsumedConcurrently of the eachBatch way. */
  concurrency: 1,
  brokerRuntime: "bun" as "bun" | "node" | "deno",
  broker: "",
  json: "",
};

type Way = "iterator" | "eachBatch";

/** Records/s by the wall clock, and the client process's CPU µs per record (less sensitive to a loaded machine). */
interface Read {
  readonly perSec: number;
  readonly cpuUsPerRecord: number;
}

async function readAll(address: string, topic: string, group: string, way: Way, o: typeof consumerRunDefaults): Promise<Read> {
  const c = new GroupConsumer({ bootstrap: address, groupId: group, autoOffsetReset: "earliest", maxOutstandingRecords: o.maxOutstanding });
  c.subscribe([topic]);
  let n = 0;
  let bytes = 0;
  const started = performance.now();
  const cpu = process.cpuUsage();
  if (way === "iterator") {
    for await (const r of c) {
      bytes += r.value?.length ?? 0;
      if (++n === o.records) break;
    }
  } else {
    let done: () => void = () => undefined;
    const all = new Promise<void>((r) => {
      done = r;
    });
    const running = c.run({
      partitionsConsumedConcurrently: o.concurrency,
      eachBatch: ({ batch }) => {
        for (const m of batch.messages) bytes += m.value?.length ?? 0;
        n += batch.messages.length;
        if (n >= o.records) done();
      },
    });
    await Promise.race([all, running]);
  }
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  await c.close();
  if (n < o.records || bytes < n) throw new Error(`${way}: read ${n} of ${o.records} records`);
  return { perSec: o.records / seconds, cpuUsPerRecord: (used.user + used.system) / o.records };
}

export async function consumerRun(o: typeof consumerRunDefaults): Promise<Record<string, unknown>> {
  const broker = o.broker === "" ? await startBrokerProcess(o.brokerRuntime) : null;
  const address = broker?.address ?? o.broker;
  try {
    const topic = `consumer-run-${Date.now()}`;
    await createTopic(address, topic, o.partitions);
    await preProduce(address, {
      topic,
      records: o.records,
      recordSize: o.recordSize,
      batchRecords: 1000,
      partitions: o.partitions,
      compression: "none",
    });
    const rates: Record<Way, number[]> = { iterator: [], eachBatch: [] };
    const cpu: Record<Way, number[]> = { iterator: [], eachBatch: [] };
    const ratios: number[] = [];
    // One untimed read each way first: JIT and connections warm for both.
    await readAll(address, topic, `${topic}-warm-iterator`, "iterator", o);
    await readAll(address, topic, `${topic}-warm-eachBatch`, "eachBatch", o);
    for (let run = 0; run < o.runs; run++) {
      // Alternate which way goes first, so neither always reads a cold or a warm cache.
      const order: Way[] = run % 2 === 0 ? ["iterator", "eachBatch"] : ["eachBatch", "iterator"];
      for (const way of order) {
        const r = await readAll(address, topic, `${topic}-${way}-${run}`, way, o);
        rates[way].push(r.perSec);
        cpu[way].push(r.cpuUsPerRecord);
      }
      const [it, eb] = [rates.iterator[run]!, rates.eachBatch[run]!];
      ratios.push(eb / it);
      process.stderr.write(
        `run ${run + 1}/${o.runs}: iterator ${Math.round(it)} rec/s (${cpu.iterator[run]!.toFixed(2)} CPU µs/record), eachBatch ${Math.round(eb)} rec/s (${cpu.eachBatch[run]!.toFixed(2)} CPU µs/record), ratio ${(eb / it).toFixed(3)}\n`,
      );
    }
    const result = {
      client: runtimeName(),
      broker: broker ? o.brokerRuntime : address,
      records: o.records,
      recordSize: o.recordSize,
      partitions: o.partitions,
      maxOutstanding: o.maxOutstanding,
      concurrency: o.concurrency,
      iteratorRecordsPerSec: rates.iterator.map(Math.round),
      eachBatchRecordsPerSec: rates.eachBatch.map(Math.round),
      iteratorMedian: Math.round(median(rates.iterator)),
      eachBatchMedian: Math.round(median(rates.eachBatch)),
      ratioOfMedians: Number((median(rates.eachBatch) / median(rates.iterator)).toFixed(3)),
      medianOfRatios: Number(median(ratios).toFixed(3)),
      iteratorCpuUsPerRecordMedian: Number(median(cpu.iterator).toFixed(3)),
      eachBatchCpuUsPerRecordMedian: Number(median(cpu.eachBatch).toFixed(3)),
      /** Throughput ratio by client CPU: iterator CPU per record ÷ eachBatch CPU per record. */
      cpuRatio: Number((median(cpu.iterator) / median(cpu.eachBatch)).toFixed(3)),
    };
    return result;
  } finally {
    await broker?.stop();
  }
}

if (isMain(import.meta.url, "consumer-run.ts")) {
  const o = parseArgs(process.argv.slice(2), consumerRunDefaults, import.meta.url);
  const result = await consumerRun(o);
  console.log(JSON.stringify(result, null, 2));
  if (o.json !== "") nodeFs.writeFileSync(o.json, `${JSON.stringify(result, null, 2)}\n`);
  process.exit(0);
}
