/**
 * The cost of the idempotent producer: the TypeScript SDK's `Producer` with idempotence on and
 * off, same records, same broker, in alternating runs (on, off, off, on, ...), so that drift in
 * the machine or the broker's log affects both alike. Reports records/s of every run, the median
 * per mode and their ratio, and the median of the on/off ratios of each round (a round runs
 * both modes back to back, so its ratio is the least affected by drift).
 *
 *   bun bench/idempotence-perf.ts [--records 2000000] [--record-size 100] [--partitions 4]
 *     [--rounds 5] [--compression none|lz4] [--linger-ms 5] [--batch-bytes 1048576]
 *     [--in-flight-per-partition default|N] [--broker-runtime bun|node|deno] [--broker HOST:PORT]
 *     [--json FILE]
 *
 * `--in-flight-per-partition default` compares the SDK's defaults (idempotent: 5 batches per
 * partition in flight; not idempotent: 1, so that retries keep order). A number gives both modes
 * the same bound (at most 5 with idempotence), to measure the idempotence bookkeeping alone.
 * Records are keyless (sticky partitioning, seeded the same in every run); each run writes to a
 * fresh topic. The clock starts after a first one-record send (connection, metadata and, with
 * idempotence, InitProducerId), whose time is reported apart.
 */
import * as nodeFs from "node:fs";
import { SeededRandom } from "../src/base/random.ts";
import { Admin } from "../src/client/admin.ts";
import { Producer } from "../src/client/producer.ts";
import { runtimeName } from "./runtime.ts";
import { parseWithDefaults } from "../scripts/lib/command-line.ts";
import { startBrokerProcess } from "./producer-perf.ts";

interface Options {
  records: number;
  recordSize: number;
  partitions: number;
  rounds: number;
  compression: "none" | "lz4";
  lingerMs: number;
  batchBytes: number;
  inFlightPerPartition: string;
  brokerRuntime: "bun" | "node" | "deno";
  broker: string | null;
  json: string | null;
}

/** The options and their defaults (`--kebab-case value` on the command line). */
const defaults: Options = {
  records: 2_000_000,
  recordSize: 100,
  partitions: 4,
  rounds: 5,
  compression: "none",
  lingerMs: 5,
  batchBytes: 1 << 20,
  inFlightPerPartition: "default",
  brokerRuntime: "bun",
  broker: null,
  json: null,
};

/** `n` distinct values of `size` bytes (JSON-ish, so LZ4 sees realistic data). */
function makeValues(n: number, size: number): Buffer[] {
  const words = ["click", "view", "purchase", "scroll", "signup", "search"];
  return Array.from({ length: n }, (_, i) =>
    Buffer.from(`{"user":${(i * 7919) % 100000},"event":"${words[i % words.length]}","seq":${i}}`.padEnd(size, ".").slice(0, size)),
  );
}

interface Run {
  mode: "on" | "off";
  round: number;
  seconds: number;
  recordsPerSec: number;
  /** The first send (one record) after connecting: with idempotence it includes InitProducerId. */
  firstSendMs: number;
  requests: number;
  inFlightPerPartitionPeak: number;
}

async function runOnce(o: Options, address: string, mode: "on" | "off", round: number, values: Buffer[]): Promise<Run> {
  const topic = `idem-perf-${Date.now()}-${round}-${mode}`;
  const admin = new Admin({ bootstrap: address });
  await admin.createTopics([{ name: topic, partitions: o.partitions }]);
  await admin.close();
  const perPartition = o.inFlightPerPartition === "default" ? undefined : Number(o.inFlightPerPartition);
  const producer = new Producer({
    bootstrap: address,
    idempotent: mode === "on",
    inFlightPerPartitionMax: perPartition,
    lingerMs: o.lingerMs,
    batchBytes: o.batchBytes,
    compression: o.compression,
    random: new SeededRandom(42),
  });
  // Outside the measured time: metadata, the connection and (idempotent) InitProducerId, which
  // the first send waits for; reported apart as `firstSendMs`.
  await producer.partitionCount(topic);
  const t0 = performance.now();
  await producer.send({ topic, value: values[0]! });
  const firstSendMs = performance.now() - t0;
  let acked = 0;
  let failed = 0;
  let firstError: unknown = null;
  const ok = (): void => void acked++;
  const fail = (e: unknown): void => {
    failed++;
    firstError ??= e;
  };
  const start = performance.now();
  for (let i = 0; i < o.records; i++) {
    if ((i & 1023) === 0) await producer.ready();
    producer.send({ topic, value: values[i % values.length]! }).then(ok, fail);
  }
  await producer.flush();
  const seconds = (performance.now() - start) / 1000;
  const stats = producer.stats;
  await producer.close();
  const cleanup = new Admin({ bootstrap: address });
  await cleanup.deleteTopics([topic]); // keep the broker's disk and page cache alike for every run
  await cleanup.close();
  if (failed > 0) throw new Error(`${mode} round ${round}: ${failed} sends failed, first: ${String(firstError)}`);
  if (acked !== o.records) throw new Error(`${mode} round ${round}: ${acked} of ${o.records} acknowledged`);
  return {
    mode,
    round,
    seconds,
    recordsPerSec: o.records / seconds,
    firstSendMs,
    requests: stats.requests,
    inFlightPerPartitionPeak: stats.inFlightPerPartitionPeak,
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function main(): Promise<void> {
  const o = parseWithDefaults(process.argv.slice(2), defaults, import.meta.url);
  const broker = o.broker ? null : await startBrokerProcess(o.brokerRuntime);
  const address = o.broker ?? broker!.address;
  const values = makeValues(10_000, o.recordSize);
  const runs: Run[] = [];
  try {
    await runOnce({ ...o, records: Math.min(o.records, 100_000) }, address, "on", -1, values); // warm-up
    await runOnce({ ...o, records: Math.min(o.records, 100_000) }, address, "off", -1, values);
    for (let round = 0; round < o.rounds; round++) {
      const order: ("on" | "off")[] = round % 2 === 0 ? ["on", "off"] : ["off", "on"];
      for (const mode of order) {
        const r = await runOnce(o, address, mode, round, values);
        runs.push(r);
        process.stderr.write(
          `  round ${round} idempotence ${mode.padEnd(3)}: ${(r.recordsPerSec / 1e6).toFixed(3)}M records/s (${r.seconds.toFixed(2)} s, ${r.requests} requests, ≤${r.inFlightPerPartitionPeak} in flight per partition; first send ${r.firstSendMs.toFixed(1)} ms)\n`,
        );
      }
    }
  } finally {
    await broker?.stop();
  }
  const on = median(runs.filter((r) => r.mode === "on").map((r) => r.recordsPerSec));
  const off = median(runs.filter((r) => r.mode === "off").map((r) => r.recordsPerSec));
  const pairRatios = Array.from({ length: o.rounds }, (_, round) => {
    const of = (mode: "on" | "off") => runs.find((r) => r.round === round && r.mode === mode)!.recordsPerSec;
    return of("on") / of("off");
  });
  const pairRatio = median(pairRatios);
  const firstOn = median(runs.filter((r) => r.mode === "on").map((r) => r.firstSendMs));
  const firstOff = median(runs.filter((r) => r.mode === "off").map((r) => r.firstSendMs));
  const result = {
    runtime: runtimeName(),
    ...o,
    brokerRuntime: o.broker ? "external" : o.brokerRuntime,
    runs,
    medianRecordsPerSec: { on, off },
    ratioOnOff: on / off,
    pairRatios,
    medianPairRatio: pairRatio,
    medianFirstSendMs: { on: firstOn, off: firstOff },
  };
  console.log(
    `idempotence on: ${(on / 1e6).toFixed(3)}M records/s, off: ${(off / 1e6).toFixed(3)}M records/s (medians of ${o.rounds}); on/off = ${(on / off).toFixed(3)}, median of the per-round on/off ratios ${pairRatio.toFixed(3)} ` +
      `(${o.records} records of ${o.recordSize} B, ${o.partitions} partitions, in flight per partition: ${o.inFlightPerPartition}); ` +
      `first send ${firstOn.toFixed(1)} ms on (InitProducerId included), ${firstOff.toFixed(1)} ms off`,
  );
  if (o.json) nodeFs.writeFileSync(o.json, JSON.stringify(result, null, 2) + "\n");
}

await main();
