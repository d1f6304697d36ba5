/**
 * Where the time of a small transaction goes (issue 17's fixed cost per transaction). Starts a
 * broker in this process on 127.0.0.1 with a fresh data dir and runs `--txns` transactions of
 * `--per-txn` records on one partition with the SDK Producer, timing each phase on the client
 * (first record acknowledged, every record acknowledged, EndTransaction) and, by wrapping the
 * broker's methods in this process, on the broker (the produce gate, the coordinator's writes
 * to `__transaction_state`, EndTransaction, the markers). The records are not awaited inside the
 * transaction (its end follows them on their stream). Prints the mean per transaction of
 * each phase (ms). Use with `bun --cpu-prof` for a profile of the same loop.
 *
 *   bun bench/txn-phase-profile.ts --txns 2000 --per-txn 100
 */
import * as nodeFs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Broker } from "../src/broker/broker.ts";
import { Admin } from "../src/client/admin.ts";
import { Producer } from "../src/client/producer.ts";
import { TxnRuntime } from "../src/coordinator/transactions/txn-runtime.ts";
import { ReplicaManager } from "../src/replication/replica-manager.ts";
import { isMain, makeValues, parseArgs } from "./lib.ts";

export const txnPhaseProfileDefaults = { txns: 2000, perTxn: 100, recordSize: 100, warmup: 200 };
type Options = typeof txnPhaseProfileDefaults;

/** Total ms and calls per phase name. */
const phases = new Map<string, { ms: number; calls: number }>();
let recording = false;

function add(name: string, ms: number): void {
  if (!recording) return;
  const p = phases.get(name) ?? { ms: 0, calls: 0 };
  p.ms += ms;
  p.calls++;
  phases.set(name, p);
}

/** Wraps the async method `name` of `proto` so its time is added to phase `label`. */
function timeMethod(proto: object, name: string, label: string): void {
  const obj = proto as Record<string, unknown>;
  const orig = obj[name];
  if (typeof orig !== "function") return;
  obj[name] = function (this: unknown, ...args: unknown[]) {
    const t0 = performance.now();
    const r = (orig as (...a: unknown[]) => unknown).apply(this, args);
    if (r instanceof Promise)
      return r.finally(() => {
        add(label, performance.now() - t0);
      });
    add(label, performance.now() - t0);
    return r;
  };
}

export async function txnPhaseProfile(o: Options): Promise<void> {
  timeMethod(TxnRuntime.prototype, "gate", "broker: produce gate (TxnRuntime.gate)");
  timeMethod(TxnRuntime.prototype, "endTransaction", "broker: EndTransaction (TxnRuntime.endTransaction)");
  timeMethod(TxnRuntime.prototype, "commit", "broker:   coordinator write + replicated (TxnRuntime.commit)");
  timeMethod(TxnRuntime.prototype, "runCompletion", "broker:   markers + Complete* (TxnRuntime.runCompletion)");
  timeMethod(ReplicaManager.prototype, "writeTxnMarker", "broker:     one marker (ReplicaManager.writeTxnMarker)");
  const dir = nodeFs.mkdtempSync(path.join(os.tmpdir(), "rill-txn-phase-"));
  const broker = await Broker.start({ dataDir: dir, listen: "127.0.0.1:0" });
  const admin = new Admin({ bootstrap: broker.address });
  const topic = "phase";
  await admin.createTopics([{ name: topic, partitions: 1 }]);
  const p = new Producer({ bootstrap: broker.address, lingerMs: 0, transactionalId: "phase-profile" });
  try {
    const values = makeValues(o.perTxn, o.recordSize);
    let total = 0;
    for (let n = 0; n < o.warmup + o.txns; n++) {
      recording = n >= o.warmup;
      const t0 = performance.now();
      let tSent = 0;
      let tFirst = 0;
      let tAll = 0;
      let sends: Promise<unknown>[] = [];
      await p.transaction(async (tx) => {
        sends = values.map((value) => tx.send({ topic, partition: 0, value }));
        void sends[0]!.then(() => (tFirst = performance.now()));
        void Promise.all(sends).then(() => (tAll = performance.now()));
        tSent = performance.now();
      });
      await Promise.all(sends);
      const tEnd = performance.now();
      add("client: begin → records handed over (fn returned)", tSent - t0);
      add("client: begin → first record acknowledged", tFirst - t0);
      add("client: begin → last record acknowledged", tAll - t0);
      add("client: last record acknowledged → transaction() resolved", tEnd - tAll);
      if (recording) total += tEnd - t0;
    }
    console.log(`${o.txns} transactions of ${o.perTxn} records: ${(total / o.txns).toFixed(3)} ms each`);
    for (const [name, v] of phases)
      console.log(`${(v.ms / o.txns).toFixed(3).padStart(8)} ms/txn  ${(v.calls / o.txns).toFixed(2)} calls/txn  ${name}`);
  } finally {
    await p.close();
    await admin.close();
    await broker.close();
    nodeFs.rmSync(dir, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url, "txn-phase-profile.ts")) {
  await txnPhaseProfile(parseArgs(process.argv.slice(2), txnPhaseProfileDefaults, import.meta.url));
}
