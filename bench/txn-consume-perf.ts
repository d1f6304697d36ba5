/**
 * READ_COMMITTED ÷ READ_UNCOMMITTED consume throughput (issue 17's goal: ≥ 0.9). Starts a broker
 * in this process on 127.0.0.1 with a fresh data dir, writes `--records` records of
 * `--record-size` bytes as transactions of `--txn-records` records, each a transactional batch
 * ended by a marker, the way the transaction coordinator writes them (every `--abort-every`-th
 * transaction aborted; 0: none), then reads the whole partition back with the SDK Consumer
 * (FetchService.Fetch, RECORD_FORMAT_BATCHES, pipelined), `--runs` times per isolation level,
 * interleaved. Both levels read the same log; READ_COMMITTED also pays for the last stable
 * offset, the aborted-transaction lookup and the client-side filter. Reports the median time
 * of each level over the log and the ratio (log offsets read per second, READ_COMMITTED ÷
 * READ_UNCOMMITTED), and the same ratio in CPU time of the process (broker and client both run
 * in it), which other work on a loaded machine disturbs far less than the wall clock.
 *
 *   bun bench/txn-consume-perf.ts --records 1000000 --record-size 100 --txn-records 1000 [--abort-every 0] [--runs 3] [--json FILE]
 */
import * as nodeFs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Broker } from "../src/broker/broker.ts";
import { Admin } from "../src/client/admin.ts";
import { Consumer } from "../src/client/consumer.ts";
import { type ProduceChecks, encodeBatch } from "../src/protocol/record-batch.ts";
import type { ReplicaManager } from "../src/replication/replica-manager.ts";
import { initProducerId } from "../src/service/producer-id.ts";
import { isMain, makeValues, median, parseArgs } from "./lib.ts";
import { runtimeName } from "./runtime.ts";

export const txnConsumePerfDefaults = {
  records: 1_000_000,
  recordSize: 100,
  txnRecords: 1000,
  /** Every n-th transaction is aborted; 0: all commit. */
  abortEvery: 0,
  runs: 3,
  json: "",
};
type Options = typeof txnConsumePerfDefaults;

const TXN: ProduceChecks = { validation: "structure", decompressedBytesMax: 64 << 20, transactional: true };
const TOPIC = "txn-consume-perf";

/** What one run measured. */
export interface TxnConsumeResult {
  readonly runtime: string;
  readonly records: number;
  readonly committedRecords: number;
  readonly readUncommittedSec: number[];
  readonly readCommittedSec: number[];
  /** CPU seconds of this process (broker + client) per run. */
  readonly readUncommittedCpuSec: number[];
  readonly readCommittedCpuSec: number[];
  /** Median CPU time, READ_UNCOMMITTED ÷ READ_COMMITTED (≥ 1: READ_COMMITTED costs no more). */
  readonly cpuRatio: number;
  /** Median log offsets per second, READ_COMMITTED ÷ READ_UNCOMMITTED. */
  readonly ratio: number;
  readonly readUncommittedRecordsPerSec: number;
  readonly readCommittedRecordsPerSec: number;
}

/** Writes the transactions; returns the offset after the last marker and how many records commit. */
async function writeTransactions(rm: ReplicaManager, o: Options): Promise<{ end: number; committed: number }> {
  const id = await initProducerId(rm, { transactionalId: "", producerId: undefined, producerEpoch: 0 });
  const values = makeValues(o.txnRecords, o.recordSize);
  let seq = 0;
  let committed = 0;
  const txns = Math.ceil(o.records / o.txnRecords);
  for (let t = 0; t < txns; t++) {
    const batch = encodeBatch(
      values.map((value, i) => ({ key: `k${i % 64}`, value })),
      { producerId: id.producerId, producerEpoch: id.producerEpoch, baseSequence: seq, isTransactional: true, nowMs: Date.now() },
    );
    seq = (seq + o.txnRecords) % 0x7fffffff;
    rm.append(TOPIC, 0, batch, "leader", TXN);
    const commit = o.abortEvery === 0 || (t + 1) % o.abortEvery !== 0;
    if (commit) committed += o.txnRecords;
    await rm.writeTxnMarker(TOPIC, 0, { producerId: id.producerId, producerEpoch: id.producerEpoch, commit, coordinatorEpoch: 0 });
  }
  return { end: rm.readLog(TOPIC, 0).logEndOffset, committed };
}

/** Reads the partition from offset 0 until `expected` records came; wall and CPU seconds taken. */
async function consumeAll(
  bootstrap: string,
  isolation: "read_committed" | "read_uncommitted",
  expected: number,
): Promise<{ wall: number; cpu: number }> {
  const c = new Consumer({ bootstrap, isolation, maxWaitMs: 100, maxBytes: 16 << 20, partitionBytesMax: 4 << 20 });
  try {
    c.assign([{ topic: TOPIC, partition: 0, offset: "earliest" }]);
    const start = performance.now();
    const cpu = process.cpuUsage();
    let n = 0;
    for await (const _r of c) if (++n === expected) break;
    const used = process.cpuUsage(cpu);
    return { wall: (performance.now() - start) / 1000, cpu: (used.user + used.system) / 1e6 };
  } finally {
    await c.close();
  }
}

/** Runs the benchmark (see the module comment). */
export async function runTxnConsumePerf(o: Options): Promise<TxnConsumeResult> {
  const dir = nodeFs.mkdtempSync(path.join(os.tmpdir(), "rill-txn-bench-"));
  const broker = await Broker.start({ dataDir: dir, listen: "127.0.0.1:0" });
  try {
    const rm = (broker as unknown as { parts: { data: { rm: ReplicaManager } } }).parts.data.rm;
    const admin = new Admin({ bootstrap: broker.address });
    await admin.createTopics([{ name: TOPIC, partitions: 1 }]);
    await admin.close();
    for (let i = 0; i < 500; i++) {
      try {
        rm.leaderLog(TOPIC, 0);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    const { committed } = await writeTransactions(rm, o);
    const total = Math.ceil(o.records / o.txnRecords) * o.txnRecords;
    const ru: number[] = [];
    const rc: number[] = [];
    const ruCpu: number[] = [];
    const rcCpu: number[] = [];
    for (let i = 0; i < o.runs; i++) {
      const u = await consumeAll(broker.address, "read_uncommitted", total);
      const c = await consumeAll(broker.address, "read_committed", committed);
      ru.push(u.wall);
      ruCpu.push(u.cpu);
      rc.push(c.wall);
      rcCpu.push(c.cpu);
    }
    const ruSec = median(ru);
    const rcSec = median(rc);
    return {
      runtime: runtimeName(),
      records: total,
      committedRecords: committed,
      readUncommittedSec: ru,
      readCommittedSec: rc,
      readUncommittedCpuSec: ruCpu,
      readCommittedCpuSec: rcCpu,
      cpuRatio: median(ruCpu) / median(rcCpu),
      ratio: ruSec / rcSec,
      readUncommittedRecordsPerSec: total / ruSec,
      readCommittedRecordsPerSec: committed / rcSec,
    };
  } finally {
    await broker.close();
    nodeFs.rmSync(dir, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url, "txn-consume-perf.ts")) {
  const o = parseArgs(process.argv.slice(2), txnConsumePerfDefaults, import.meta.url);
  const r = await runTxnConsumePerf(o);
  const m = (x: number): string => `${(x / 1e6).toFixed(2)}M records/s`;
  console.log(
    `txn-consume-perf (${r.runtime}): ${r.records} records in transactions of ${o.txnRecords}` +
      `${o.abortEvery > 0 ? `, every ${o.abortEvery}th aborted` : ""}\n` +
      `  READ_UNCOMMITTED: median ${median(r.readUncommittedSec).toFixed(3)} s (${m(r.readUncommittedRecordsPerSec)}) runs ${r.readUncommittedSec.map((s) => s.toFixed(3)).join(", ")}\n` +
      `  READ_COMMITTED:   median ${median(r.readCommittedSec).toFixed(3)} s (${m(r.readCommittedRecordsPerSec)}) runs ${r.readCommittedSec.map((s) => s.toFixed(3)).join(", ")}\n` +
      `  ratio READ_COMMITTED ÷ READ_UNCOMMITTED (same log): ${r.ratio.toFixed(3)} (goal ≥ 0.9)\n` +
      `  CPU s (broker + client): READ_UNCOMMITTED median ${median(r.readUncommittedCpuSec).toFixed(3)}, READ_COMMITTED median ${median(r.readCommittedCpuSec).toFixed(3)}; ratio by CPU time ${r.cpuRatio.toFixed(3)}`,
  );
  if (o.json) nodeFs.writeFileSync(o.json, JSON.stringify({ options: o, ...r }, null, 2));
  process.exit(0);
}
