/**
 * One round of the transactional fault scenario (issue 17): a fresh 3-node cluster, an input
 * topic filled before the round, and consume–transform–produce workers that, in one transaction
 * each time, read a few input records, write one record per input record to each of two output
 * topics, and commit the input offsets with the transaction (exactly-once processing, Kafka's
 * "offset commit and output in the same transaction") — while a seeded nemesis kills, pauses,
 * restarts and isolates the brokers that matter most: a worker's transaction coordinator (leader
 * of its `__transaction_state` partition), the leaders of the output partitions, the group's
 * coordinator, or any node. Workers crash too: a worker drops its open transaction without ending
 * it and a new instance starts with the same transactional id (InitProducerId must fence the old
 * one and abort its transaction). Some transactions are aborted on purpose.
 *
 * Reads: two consumers poll the outputs with READ_COMMITTED through random nodes during the
 * round, recording values and the last stable offsets; after the faults are healed the workers
 * run until the input is processed, the round waits until no transaction is open (every output
 * partition's LSO equals its high watermark on every node), reads every output partition whole
 * through every node, and reads the group's committed offsets. txn-checker.ts judges it.
 *
 * A worker keeps its input position in memory (as a Kafka consumer does) and reads the group's
 * committed offset only when it (re)starts, after InitProducerId has completed any earlier
 * transaction of its id.
 */
import { murmur2, toPositive } from "../../src/base/murmur2.ts";
import { SeededRandom } from "../../src/base/random.ts";
import { Cluster, sleep, until } from "../integration/cluster-harness.ts";
import { NodeClients } from "./clients.ts";
import { createReplicatedTopic, FAULT_CLUSTER_SETTINGS } from "./engine.ts";
import type { FaultEvent } from "./history.ts";
import { applyFault, type FaultKind, heal, planFaults, type PlannedFault } from "./nemesis.ts";
import { checkTxn, type TxnAttempt, type TxnCheckResult, type TxnHistory } from "./txn-checker.ts";
import { callErrorText, TxnNodeClients, type TxnProducer } from "./txn-clients.ts";

export const TXN_INPUT = "txn-in";
export const TXN_OUTPUTS: readonly string[] = ["txn-out-a", "txn-out-b"];
export const TXN_GROUP = "txn-workers";
const FINAL = "final";

/** What a fault's target is resolved to when it starts. */
export type TxnTarget = "coordinator" | "output-leader" | "group-coordinator" | "any";
/** The kinds of fault aimed at a target (the links' own kinds are the produce scenario's business). */
const AIMED_KINDS: Readonly<Record<FaultKind, FaultKind>> = {
  kill: "kill",
  pause: "pause",
  isolate: "isolate",
  restart: "restart",
  "cut-ingress": "isolate",
  "cut-link": "pause",
  "cut-one-way": "kill",
};
const TARGETS: readonly TxnTarget[] = ["coordinator", "coordinator", "output-leader", "output-leader", "group-coordinator", "any"];

export interface TxnRoundOptions {
  readonly seed: number;
  readonly windowMs: number;
  /** Longest time the workers get, after the heal, to process the rest of the input. */
  readonly drainMs: number;
  /** Longest wait for the cluster to settle and every transaction to end. */
  readonly settleMs: number;
  readonly inputPartitions: number;
  readonly inputPerPartition: number;
  readonly outputPartitions: number;
  readonly workers: number;
  /** Input records per transaction, drawn from [1, batchMax]. */
  readonly batchMax: number;
  /** Chance (in %) that a worker aborts a transaction on purpose. */
  readonly abortPercent: number;
  /** Chance (in %) that a worker crashes in the middle of a transaction. */
  readonly crashPercent: number;
  readonly transactionTimeoutMs: number;
  readonly keep: boolean;
  readonly progress?: (line: string) => void;
}

export function txnRoundOptions(o: Partial<TxnRoundOptions> & { seed: number }): TxnRoundOptions {
  return {
    windowMs: 20_000,
    drainMs: 90_000,
    settleMs: 90_000,
    inputPartitions: 4,
    inputPerPartition: 60,
    outputPartitions: 2,
    workers: 4,
    batchMax: 4,
    abortPercent: 15,
    crashPercent: 5,
    transactionTimeoutMs: 5_000,
    keep: false,
    ...o,
  };
}

export interface TxnRoundResult {
  readonly seed: number;
  readonly faults: readonly FaultEvent[];
  readonly check: TxnCheckResult;
  readonly attempts: readonly TxnAttempt[];
  /** Null when every input record was processed, the cluster settled and no transaction stayed open. */
  readonly unsettled: string | null;
  /** Output partitions whose final READ_COMMITTED read differed between nodes. */
  readonly divergent: readonly string[];
  readonly keptAt: string | null;
  readonly timings: { readonly loadMs: number; readonly drainMs: number; readonly totalMs: number };
  /** The readers' partition errors during the run, by name (OFFSET_NOT_AVAILABLE: a new leader before it knew its high watermark). */
  readonly readErrors: ReadonlyMap<string, number>;
  /**
   * How long readers were refused with OFFSET_NOT_AVAILABLE, per episode (a node and partition,
   * from its first such answer to its next answer with offsets), in ms: a lower bound of how long
   * new leaders did not know their high watermark.
   */
  readonly hwUnknownMs: readonly number[];
}

/** Runs one round (see the file comment). */
export async function runTxnRound(o: TxnRoundOptions): Promise<TxnRoundResult> {
  const say = o.progress ?? ((): void => {});
  const t00 = Date.now();
  const rnd = new SeededRandom(o.seed);
  const planRnd = rnd.fork();
  const targetRnd = rnd.fork();
  const workRnd = rnd.fork();
  const plan = planFaults(planRnd, [1, 2, 3], {
    windowMs: o.windowMs,
    faultMinMs: 1_000,
    faultMaxMs: 5_000,
    gapMinMs: 500,
    gapMaxMs: 2_500,
  }).map((f): PlannedFault => ({ ...f, kind: AIMED_KINDS[f.kind] }));
  const targets = plan.map(() => TARGETS[targetRnd.int(TARGETS.length)]!);
  const cluster = await Cluster.start({
    nodes: 3,
    set: FAULT_CLUSTER_SETTINGS,
    linkProxies: true,
    ingressProxies: true,
    name: "rill-txn-faults-",
  });
  const plain = new Map(cluster.nodes.map((nd) => [nd.id, new NodeClients(nd.id, nd.address)]));
  const txc = new Map(cluster.nodes.map((nd) => [nd.id, new TxnNodeClients(nd.id, nd.address)]));
  const nodes = [...txc.keys()].sort((a, b) => a - b);
  let keep = o.keep;
  const readErrors = new Map<string, number>();
  const hwUnknownSince = new Map<string, number>();
  const hwUnknownMs: number[] = [];
  const h: TxnHistory = {
    attempts: new Map(),
    reads: [],
    lso: [],
    outputTopics: TXN_OUTPUTS,
    input: new Map(),
    committed: new Map(),
    finalReader: FINAL,
  };
  const faults: FaultEvent[] = [];
  /** Each input partition's position: where its worker's next transaction reads. */
  const positions = new Map<number, number>(Array.from({ length: o.inputPartitions }, (_, p) => [p, 0] as const));
  try {
    await cluster.waitForStable(60_000);
    const admin = cluster.nodes[0]!.admin({ retries: 10 });
    for (const [name, partitions] of [
      [TXN_INPUT, o.inputPartitions],
      ...TXN_OUTPUTS.map((t) => [t, o.outputPartitions] as const),
    ] as const) {
      await createReplicatedTopic(admin, name, partitions);
    }
    await fillInput(plain, o, h);
    say(`cluster in ${cluster.root}; ${o.inputPartitions * o.inputPerPartition} input records; ${plan.length} faults planned`);

    const t0 = Date.now();
    let faultsOver = false;
    let stopped = false;
    const workers = Array.from({ length: o.workers }, (_, i) => runWorker(i + 1, workRnd.fork()));
    const readers = [1, 2].map((i) => runReader(i, workRnd.fork()));
    try {
      await runTargetedNemesis();
      faultsOver = true;
      const drainEnd = Date.now() + o.drainMs;
      while (Date.now() < drainEnd && !allProcessed()) await sleep(200);
    } finally {
      faultsOver = true;
      stopped = true;
      await Promise.all([...workers, ...readers]);
    }
    const loadMs = Date.now() - t0;
    say(`workers stopped after ${loadMs} ms: ${h.attempts.size} transactions`);

    let unsettled: string | null = allProcessed() ? null : `input not processed within ${o.drainMs} ms after the heal: ${progressText()}`;
    let ends: Map<string, number> = new Map();
    try {
      ends = await waitNoOpenTransaction(o.settleMs);
    } catch (e) {
      unsettled = (unsettled ? `${unsettled}; ` : "") + (e instanceof Error ? e.message : String(e));
    }
    const divergent = ends.size > 0 ? await finalRead(ends) : [];
    await readCommitted();
    const check = checkTxn(h);
    if (check.total > 0 || unsettled !== null || divergent.length > 0) keep = true;
    return {
      seed: o.seed,
      faults,
      check,
      attempts: [...h.attempts.values()],
      unsettled,
      divergent,
      keptAt: keep ? cluster.root : null,
      timings: { loadMs, drainMs: Date.now() - t0 - loadMs, totalMs: Date.now() - t00 },
      readErrors,
      hwUnknownMs,
    };

    // ---------------------------------------------------------------------------------------

    function progressText(): string {
      return [...positions].map(([p, pos]) => `${TXN_INPUT}-${p} at ${pos}/${o.inputPerPartition}`).join(", ");
    }

    function allProcessed(): boolean {
      return [...positions.values()].every((pos) => pos >= o.inputPerPartition);
    }

    /** The nemesis: the planned kinds and lengths, each aimed at its target when it starts. */
    async function runTargetedNemesis(): Promise<void> {
      const note = (what: string): void => {
        faults.push({ atMs: Date.now() - t0, what });
      };
      try {
        for (let i = 0; i < plan.length; i++) {
          const f = plan[i]!;
          if (Date.now() - t0 + f.gapMs >= o.windowMs) break;
          await sleep(f.gapMs);
          const node = await resolveTarget(targets[i]!, f.node);
          const aimed: PlannedFault = { ...f, node, peer: node === f.peer ? nodes.find((n) => n !== node)! : f.peer };
          note(`${targets[i]} is node ${node}`);
          await applyFault(cluster, aimed, note);
          const end = Math.min(Date.now() + f.durationMs, t0 + o.windowMs);
          while (Date.now() < end) await sleep(Math.min(100, end - Date.now()));
          await heal(cluster, note);
        }
      } finally {
        await heal(cluster, note);
        note("fault window over, everything healed");
      }
    }

    /** The node a target names now (the planned node when it cannot be told). */
    async function resolveTarget(t: TxnTarget, fallback: number): Promise<number> {
      if (t === "any") return fallback;
      const topic =
        t === "coordinator" ? "__transaction_state" : t === "group-coordinator" ? "__consumer_offsets" : TXN_OUTPUTS[workRnd.int(2)]!;
      const partition =
        t === "coordinator"
          ? coordinatorPartition(`txn-w${1 + targetRnd.int(o.workers)}`)
          : t === "group-coordinator"
            ? coordinatorPartition(TXN_GROUP)
            : targetRnd.int(o.outputPartitions);
      for (const c of plain.values()) {
        const v = await c.describeTopics([topic], 1_000).catch(() => null);
        const leader = v?.topics[0]?.partitions[partition]?.leader;
        if (leader !== undefined && leader > 0) return leader;
      }
      return fallback;
    }

    // ---------------------------------------------------------------------------------------
    // Workers

    async function runWorker(id: number, r: SeededRandom): Promise<void> {
      const transactionalId = `txn-w${id}`;
      const owned = Array.from({ length: o.inputPartitions }, (_, p) => p).filter((p) => p % o.workers === id - 1);
      let producer: TxnProducer | null = null;
      let n = 0;
      const pick = (): TxnNodeClients => txc.get(nodes[r.int(nodes.length)]!)!;
      while (!stopped) {
        if (faultsOver && owned.every((p) => (positions.get(p) ?? 0) >= o.inputPerPartition)) return;
        try {
          if (producer === null) {
            producer = await pick().initProducerId(transactionalId, o.transactionTimeoutMs, 5_000);
            // Positions from the group's committed offsets: InitProducerId completed any earlier transaction.
            const committed = await committedOffsets(owned);
            for (const p of owned) positions.set(p, committed.get(p) ?? 0);
          }
        } catch {
          producer = null;
          await sleep(100 + r.int(200));
          continue;
        }
        const p = owned[r.int(owned.length)]!;
        const from = positions.get(p) ?? 0;
        if (from >= o.inputPerPartition) {
          await sleep(50);
          continue;
        }
        const count = Math.min(1 + r.int(o.batchMax), o.inputPerPartition - from);
        const inputs = h.input.get(p)!.slice(from, from + count);
        const tag = `w${id}-${n++}`;
        const a: TxnAttempt = {
          tag,
          worker: id,
          inputs,
          outputs: [],
          outcome: "unknown",
          reason: "",
          retries: [],
          startedAtMs: Date.now() - t0,
          endedAtMs: -1,
        };
        h.attempts.set(tag, a);
        const crashAt = r.int(100) < o.crashPercent ? r.int(3) : -1;
        const abort = r.int(100) < o.abortPercent;
        // Every other transaction (not one that crashes) sends its records and its end on one
        // ProduceStream, the end right behind the records (as the SDK does): offsets first.
        // Of those, every other one sends the end in the message of its last records (one answer for both).
        const pipelined = crashAt < 0 && n % 2 === 0;
        const together = n % 4 === 0;
        let step = "produce";
        const partition = p % o.outputPartitions;
        const outputs = TXN_OUTPUTS.map((topic) => ({ topic, partition, values: inputs.map((v) => `${topic.slice(-1)}|${v}|${tag}`) }));
        // Retriable answers (the previous transaction's markers still being written, a leader
        // moving) are retried with the same sequence, as a client does: idempotence keeps one copy.
        const produceOutput = async (topic: string, values: string[], producer: TxnProducer): Promise<void> => {
          for (let attempt = 1; ; attempt++) {
            const res = await pick().produce(producer, topic, partition, values, 0, 2_000, 5_000);
            const err = res.partitions[0]?.error;
            if (!err) return;
            if (!err.retriable || attempt >= 5) throw new Error(`${err.name}: ${err.message}`);
            a.retries.push(err.name);
            await sleep(20 * attempt);
          }
        };
        // Group requests go to the group's coordinator (the leader of its __consumer_offsets
        // partition), as a client finds it; a move is retried there.
        const commitOffsets = async (producer: TxnProducer): Promise<void> => {
          for (let attempt = 1; ; attempt++) {
            const coordinator = txc.get(await resolveTarget("group-coordinator", nodes[r.int(nodes.length)]!))!;
            const answer = await coordinator
              .commitOffsets(producer, TXN_GROUP, [{ topic: TXN_INPUT, partition: p, offset: from + count }], 5_000)
              .then((x) => x.offsets.find((y) => y.error)?.error ?? null)
              .catch((e: unknown) => ({
                name: callErrorText(e),
                message: "",
                retriable: /NOT_COORDINATOR|COORDINATOR_/.test(callErrorText(e)),
              }));
            if (answer === null) return;
            if (!answer.retriable || attempt >= 5) throw new Error(`${answer.name}: ${answer.message}`);
            a.retries.push(answer.name.split(":")[0]!);
            await sleep(50 * attempt);
          }
        };
        try {
          if (pipelined) {
            step = "commit offsets";
            await commitOffsets(producer);
            for (const x of outputs) for (const value of x.values) a.outputs.push({ topic: x.topic, partition, value });
            step = abort ? "abort" : "commit";
            const res = await pick().produceAndEnd(producer, outputs, !abort, 2_000, 5_000, together);
            if ("producerEpoch" in res.end) {
              producer = res.end;
              a.outcome = abort ? "aborted" : "committed";
              if (!abort) positions.set(p, from + count);
              continue;
            }
            if (res.end.name !== "INVALID_TXN_STATE" || !/stays open/.test(res.end.message))
              throw new Error(`${res.end.name}: ${res.end.message}`);
            // A record failed (e.g. CONCURRENT_TRANSACTIONS: the previous markers were still being
            // written): the commit was refused and the transaction is open. Send them again, then end.
            a.retries.push(together ? "END_REFUSED (sent with its records)" : "END_REFUSED");
            step = "produce";
            for (const x of outputs) await produceOutput(x.topic, x.values, producer);
          } else {
            for (const [k, x] of outputs.entries()) {
              if (crashAt === k) break;
              for (const value of x.values) a.outputs.push({ topic: x.topic, partition, value });
              await produceOutput(x.topic, x.values, producer);
            }
            if (crashAt >= 0 && crashAt < 2) {
              // A crash: the transaction is dropped unended; a new instance starts with the same id.
              a.outcome = "abandoned";
              a.reason = `crashed after ${crashAt} of ${TXN_OUTPUTS.length} output topics`;
              producer = null;
              continue;
            }
            step = "commit offsets";
            await commitOffsets(producer);
            if (crashAt === 2) {
              a.outcome = "abandoned";
              a.reason = "crashed after committing offsets";
              producer = null;
              continue;
            }
          }
          step = abort ? "abort" : "commit";
          producer = await pick().endTransaction(producer, !abort, 5_000);
          a.outcome = abort ? "aborted" : "committed";
          if (!abort) positions.set(p, from + count);
        } catch (e) {
          a.reason = `${step}: ${e instanceof Error && !("code" in e) ? e.message : callErrorText(e)}`;
          if (step === "commit") {
            // The outcome of a commit that was asked for cannot be known: start again from the committed offsets.
            a.outcome = "unknown";
            producer = null;
          } else {
            // Nothing asked to commit it: it must end aborted, by this abort or by the next InitProducerId.
            try {
              if (producer !== null) producer = await pick().endTransaction(producer, false, 5_000);
              a.outcome = "aborted";
            } catch {
              a.outcome = "abandoned";
              producer = null;
            }
          }
          await sleep(50 + r.int(150));
        } finally {
          a.endedAtMs = Date.now() - t0;
        }
      }
    }

    async function committedOffsets(partitions: readonly number[]): Promise<Map<number, number>> {
      for (const node of nodes) {
        const res = await plain
          .get(node)!
          .fetchOffsets(TXN_GROUP, TXN_INPUT, partitions, 5_000)
          .catch(() => null);
        if (res === null) continue;
        const out = new Map<number, number>();
        for (const x of res.offsets) {
          if (x.error) throw new Error(`FetchOffsets ${TXN_INPUT}-${x.partition}: ${x.error.name}: ${x.error.message}`);
          if (x.topic === TXN_INPUT) out.set(x.partition, Math.max(0, Number(x.offset)));
        }
        return out;
      }
      throw new Error("no node answered FetchOffsets");
    }

    // ---------------------------------------------------------------------------------------
    // Readers

    async function runReader(id: number, r: SeededRandom): Promise<void> {
      const pos = new Map<string, number>();
      while (!stopped) {
        const node = nodes[r.int(nodes.length)]!;
        const topic = TXN_OUTPUTS[r.int(TXN_OUTPUTS.length)]!;
        const nd = cluster.node(node);
        const incarnation = nd.runCount;
        const from = new Map(Array.from({ length: o.outputPartitions }, (_, q) => [q, pos.get(`${topic}/${q}`) ?? 0] as const));
        try {
          const res = await txc.get(node)!.fetch(topic, from, { maxWaitMs: 100, deadlineMs: 3_000, readCommitted: true });
          const atMs = Date.now() - t0;
          for (const fp of res.partitions) {
            const episode = `${node}/${incarnation}/${topic}/${fp.partition}`;
            if (fp.error) {
              readErrors.set(fp.error.name, (readErrors.get(fp.error.name) ?? 0) + 1);
              if (fp.error.name === "OFFSET_NOT_AVAILABLE" && !hwUnknownSince.has(episode)) hwUnknownSince.set(episode, atMs);
              continue;
            }
            const since = hwUnknownSince.get(episode);
            if (since !== undefined) {
              hwUnknownMs.push(atMs - since);
              hwUnknownSince.delete(episode);
            }
            h.lso.push({ node, incarnation, topic, partition: fp.partition, atMs, lso: Number(fp.lastStableOffset) });
            if (fp.records.length > 0)
              h.reads.push({
                reader: `consumer ${id}`,
                node,
                topic,
                partition: fp.partition,
                atMs,
                values: fp.records.map((x) => Buffer.from(x.value ?? new Uint8Array()).toString("utf8")),
              });
            if (Number(fp.nextOffset) > (pos.get(`${topic}/${fp.partition}`) ?? 0))
              pos.set(`${topic}/${fp.partition}`, Number(fp.nextOffset));
          }
        } catch {
          await sleep(100);
        }
        await sleep(r.int(50));
      }
    }

    /**
     * Waits until every node reports, for every output partition, the same leader and high
     * watermark with the last stable offset equal to it (no transaction open); resolves with the
     * high watermarks.
     */
    async function waitNoOpenTransaction(ms: number): Promise<Map<string, number>> {
      let last = "no answer yet";
      try {
        return await until(
          async () => {
            const ends = new Map<string, number>();
            for (const topic of TXN_OUTPUTS) {
              for (let q = 0; q < o.outputPartitions; q++) {
                const seen: string[] = [];
                let hw = -1;
                for (const node of nodes) {
                  const res = await txc
                    .get(node)!
                    .fetch(topic, new Map([[q, 0]]), { maxWaitMs: 0, deadlineMs: 2_000, maxBytes: 1, readCommitted: true })
                    .catch((e: unknown) => callErrorText(e));
                  if (typeof res === "string") {
                    last = `${topic}-${q} at node ${node}: ${res}`;
                    return false;
                  }
                  const fp = res.partitions[0]!;
                  seen.push(`node ${node}: hw ${fp.highWatermark} lso ${fp.lastStableOffset}${fp.error ? ` ${fp.error.name}` : ""}`);
                  if (fp.error || fp.lastStableOffset !== fp.highWatermark || (hw >= 0 && Number(fp.highWatermark) !== hw)) {
                    last = `${topic}-${q}: ${seen.join("; ")}`;
                    return false;
                  }
                  hw = Number(fp.highWatermark);
                }
                ends.set(`${topic}/${q}`, hw);
              }
            }
            return ends;
          },
          ms,
          "every output partition with one high watermark on every node and no open transaction",
          250,
        );
      } catch (e) {
        throw new Error(`${e instanceof Error ? e.message : String(e)}; last seen: ${last}`);
      }
    }

    /** Reads every output partition whole (READ_COMMITTED) through every node; returns the partitions where nodes differ. */
    async function finalRead(ends: ReadonlyMap<string, number>): Promise<string[]> {
      const divergent: string[] = [];
      for (const topic of TXN_OUTPUTS) {
        for (let q = 0; q < o.outputPartitions; q++) {
          const end = ends.get(`${topic}/${q}`)!;
          const byNode: string[][] = [];
          for (const node of nodes) {
            const values: string[] = [];
            let offset = 0;
            let failures = 0;
            while (offset < end) {
              try {
                const res = await txc.get(node)!.fetch(topic, new Map([[q, offset]]), {
                  maxWaitMs: 0,
                  deadlineMs: 5_000,
                  maxBytes: 4 << 20,
                  readCommitted: true,
                });
                const fp = res.partitions[0]!;
                if (fp.error) throw new Error(`${fp.error.name}: ${fp.error.message}`);
                for (const x of fp.records) values.push(Buffer.from(x.value ?? new Uint8Array()).toString("utf8"));
                const next = Number(fp.nextOffset);
                if (next <= offset) throw new Error(`no progress at ${offset} below ${end}`);
                offset = next;
              } catch (e) {
                if (++failures >= 20) throw new Error(`final read of ${topic}-${q} through node ${node} at ${offset}: ${String(e)}`);
                await sleep(250);
              }
            }
            h.reads.push({
              reader: node === nodes[0] ? FINAL : `final read through node ${node}`,
              node,
              topic,
              partition: q,
              atMs: Date.now() - t0,
              values,
            });
            byNode.push(values);
          }
          if (byNode.some((v) => v.join("\n") !== byNode[0]!.join("\n"))) divergent.push(`${topic}-${q}`);
        }
      }
      return divergent;
    }

    async function readCommitted(): Promise<void> {
      const all = Array.from({ length: o.inputPartitions }, (_, p) => p);
      const c = await until(() => committedOffsets(all).catch(() => false as const), 30_000, "the group's committed offsets", 250);
      for (const [p, off] of c) h.committed.set(p, off);
    }
  } finally {
    for (const c of plain.values()) c.close();
    for (const c of txc.values()) c.close();
    await cluster.close({ keep });
  }
}

/** `__transaction_state` / `__consumer_offsets` partition of an id (murmur2 % 50, Kafka's rule). */
function coordinatorPartition(id: string): number {
  return toPositive(murmur2(Buffer.from(id, "utf8"))) % 50;
}

/** Fills the input topic: `in-<partition>-<index>` at offsets 0..inputPerPartition-1. */
async function fillInput(plain: ReadonlyMap<number, NodeClients>, o: TxnRoundOptions, h: TxnHistory): Promise<void> {
  const c = [...plain.values()][0]!;
  for (let p = 0; p < o.inputPartitions; p++) {
    const values = Array.from({ length: o.inputPerPartition }, (_, k) => `in-${p}-${k}`);
    await until(
      async () => {
        const res = await c.produce(TXN_INPUT, p, values, 5_000, 10_000).catch(() => null);
        return res !== null && !res.partitions[0]?.error && Number(res.records[0]?.offset) === 0;
      },
      60_000,
      `${TXN_INPUT}-${p} filled`,
      500,
    );
    h.input.set(p, values);
  }
}

/** The text report of a round: counts, faults, anomalies with examples. */
export function formatTxnRound(r: TxnRoundResult, round: number): string {
  const c = r.check.counts;
  const lines = [
    `txn round ${round} SEED=${r.seed}: ${c.attempts} transactions (${c.committed} committed, ${c.aborted} aborted, ` +
      `${c.abandoned} abandoned by a crash or a failed abort, ${c.unknown} unknown); ${c.inputsCommitted}/${c.inputsTotal} input records ` +
      `committed; ${c.finalRecords} output records read at the end; ${c.readsDuringRun} READ_COMMITTED reads during the run; ` +
      `anomalies ${r.check.total}; load ${r.timings.loadMs} ms, settle and read ${r.timings.drainMs} ms, total ${r.timings.totalMs} ms`,
  ];
  const reasons = new Map<string, number>();
  for (const a of r.attempts) {
    if (a.reason !== "") {
      const k = a.reason.replace(/:.*?:/, ":").slice(0, 80);
      reasons.set(k, (reasons.get(k) ?? 0) + 1);
    }
    for (const x of a.retries) reasons.set(`retried ${x}`, (reasons.get(`retried ${x}`) ?? 0) + 1);
  }
  const top = [...reasons].sort((x, y) => y[1] - x[1]).slice(0, 8);
  if (top.length > 0) lines.push(`  why transactions ended early or retried: ${top.map(([k, n]) => `${n}× ${k}`).join("; ")}`);
  if (r.readErrors.size > 0) lines.push(`  readers' partition errors: ${[...r.readErrors].map(([k, n]) => `${n}× ${k}`).join("; ")}`);
  if (r.hwUnknownMs.length > 0) {
    const ms = [...r.hwUnknownMs].sort((a, b) => a - b);
    lines.push(
      `  new leaders' unknown high watermark as readers saw it: ${ms.length} episodes, median ${ms[Math.floor(ms.length / 2)]} ms, max ${ms[ms.length - 1]} ms`,
    );
  }
  if (r.unsettled) lines.push(`  UNSETTLED: ${r.unsettled}`);
  if (r.divergent.length > 0) lines.push(`  DIVERGENT final reads between nodes: ${r.divergent.join(", ")}`);
  for (const [kind, xs] of Object.entries(r.check.anomalies) as [string, unknown[]][])
    if (xs.length > 0)
      lines.push(
        `  ${kind}: ${xs.length}, e.g. ${xs
          .slice(0, 3)
          .map((x) => JSON.stringify(x))
          .join("; ")}`,
      );
  for (const f of r.faults) lines.push(`  fault +${f.atMs}: ${f.what}`);
  if (r.keptAt) lines.push(`  data and node logs kept in ${r.keptAt}`);
  return lines.join("\n");
}
