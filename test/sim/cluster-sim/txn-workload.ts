/**
 * The transactional workload of the cluster simulator (issue 19, transactions of issue 17):
 * transactional producers and READ_COMMITTED readers on their own topic (`sim-txn`, replication
 * factor 3, min.insync.replicas=2), against the real transaction coordinator of every node
 * (txn-node.ts), and the exactly-once checks over what they saw.
 *
 * A producer (`txn-K`) finds its coordinator (FindCoordinator at any node), gets its producer
 * id (InitProducerId with its transactional id), and runs transactions as a TV2 client does:
 * records sent to the partitions' leaders through the real produce handler with the
 * transactional bit and each partition's sequence (retried with it until acknowledged; the
 * gate adds the partition to the transaction), then EndTransaction commit or abort at random
 * (bumping the epoch). Sometimes a second instance of the same transactional id calls
 * InitProducerId mid-transaction: the open transaction is aborted, and the first instance's
 * next write and its commit must be refused (fenced). A transaction is `committed` when its
 * commit was answered, `aborted` when no commit was ever asked (an abort, a fence, a write
 * given up), `unknown` when a commit was asked and never answered.
 *
 * A reader per partition fetches from the leader with READ_COMMITTED (below the last stable
 * offset, with the aborted transactions' list, filtered as Kafka's consumer does,
 * `AbortedTxnFilter`).
 *
 * Checks: no record of an aborted transaction is ever returned to a READ_COMMITTED reader
 * (`txn-aborted-read`), and none above the last stable offset it was answered with
 * (`txn-read-above-lso`); the last stable offset a reader sees never goes backwards when a
 * settled leader answers (`txn-lso-backwards`, the rules of `hw-backwards`). After healing,
 * with the leader's log read as a READ_COMMITTED reader would: every acknowledged record of a
 * committed transaction is in the log (`txn-acked-lost`, unless min.insync.replicas nodes lost
 * power since it was acknowledged) and visible (`txn-torn`: in the log below the last stable
 * offset and skipped); a transaction whose outcome is unknown is all or nothing (`txn-torn`);
 * no value twice (`txn-duplicate`); what readers read is still there (`txn-read-lost`); the last
 * stable offset reached the high watermark, the readers reached it, and every producer
 * committed a transaction after healing (`liveness`).
 *
 * With `offsets` (settings.transactionalOffsets), half the transactions also commit an offset
 * of the producer's group `txg-K` (TxnOffsetCommit at the group's coordinator, no membership:
 * offset N of sim-txn-0 for the producer's N-th transaction), as consume-transform-produce
 * does. FetchOffsets of the group never answers the offset of an aborted transaction
 * (`txn-aborted-offset`) nor goes backwards (`txn-offset-backwards`; an answer of a deposed
 * coordinator, one whose image has not yet applied the move of its `__consumer_offsets`
 * partition, is late rather than lost and not compared: deposed.ts); after healing the group's
 * offset is its last committed transaction's (`txn-offset-lost`, unless min.insync.replicas nodes
 * lost power since that commit).
 */
import { RillError } from "../../../src/base/errors.ts";
import type { SeededRandom } from "../../../src/base/random.ts";
import { readRecords } from "../../../src/client/batch-reader.ts";
import { type GroupRuntime, OFFSETS_TOPIC } from "../../../src/coordinator/group-runtime.ts";
import { TXN_TOPIC } from "../../../src/coordinator/transactions/txn-runtime.ts";
import { decideAlterConfigs, decideCreateTopic } from "../../../src/metadata/controller.ts";
import type { MetadataImage } from "../../../src/metadata/image.ts";
import type { MetadataRecord } from "../../../src/metadata/records.ts";
import { encodeBatch } from "../../../src/protocol/record-batch.ts";
import type { ReplicaManager } from "../../../src/replication/replica-manager.ts";
import { ProduceAcks } from "../../../src/service/produce-types.ts";
import { deposedCoordinator } from "./deposed.ts";
import type { History } from "./history.ts";
import type { SimNode } from "./node.ts";
import type { World } from "./world.ts";

/** The transactional workload's topic. */
export const TXN_SIM_TOPIC = "sim-txn";
const PARTITIONS = 3;
/** The producers' transaction.timeout.ms. */
const TXN_TIMEOUT_MS = 10_000;
/** How long after the end of healing an open transaction may still end (the checks come 3 s after it). */
const END_GRACE_MS = 2000;

/** What the workload needs of the run. */
export interface TxnHost {
  readonly world: World;
  readonly random: SeededRandom;
  readonly nodes: ReadonlyMap<number, SimNode>;
  readonly history: History;
  readonly producers: number;
  /** Whether transactions commit a consumer group's offset too (consume-transform-produce). */
  readonly offsets: boolean;
  readonly faultMs: number;
  readonly healMs: number;
  trace(line: string): void;
  /** A client call to node `to`. */
  call<T>(to: number, fn: (n: SimNode) => T | Promise<T>, timeoutMs?: number): Promise<T>;
  /** Nodes whose power failed at or after `atMs`. */
  powerLossesSince(atMs: number): number;
  /** When the run healed (infinity before). */
  healedAt(): number;
}

type Outcome = "open" | "committed" | "aborted" | "unknown";

/** One transaction as its producer saw it. */
interface Txn {
  readonly name: string;
  outcome: Outcome;
  /** Its number (of its producer): the offset it commits for its producer's group, when `offset`. */
  readonly n: number;
  /** Whether it committed its producer's group's offset (TxnOffsetCommit answered). */
  offset: boolean;
  /** When its end was answered (-1: not). */
  endedAtMs: number;
  /** Its records: partition, value, and when acknowledged (-1: not). */
  readonly records: Array<{ partition: number; value: string; ackedAtMs: number }>;
}

/** What a reader was answered, decoded. */
interface ReadAnswer {
  readonly error: Error | null;
  readonly hw: number;
  readonly lso: number;
  readonly records: ReadonlyArray<{ offset: number; value: string }>;
  readonly settled: boolean;
  readonly servedAtMs: number;
  /** Where the next read starts (past markers and aborted records too). */
  readonly nextOffset: number;
}

function errName(e: unknown): string {
  return e instanceof RillError ? e.kind.name : (e as Error).message;
}

/** Errors after which the producer's identity is no good: fenced, or the transaction is gone. */
const FATAL = new Set([
  "PRODUCER_FENCED",
  "INVALID_PRODUCER_EPOCH",
  "INVALID_TXN_STATE",
  "UNKNOWN_PRODUCER_ID",
  "OUT_OF_ORDER_SEQUENCE_NUMBER",
  "INVALID_PRODUCER_ID_MAPPING",
  "TRANSACTIONAL_ID_NOT_FOUND",
  "TRANSACTION_ABORTABLE",
]);

/** Every READ_COMMITTED record of `bytes` (whole batches) at or after `from`, control batches and aborted transactions dropped. */
function committedRecords(
  partition: number,
  chunks: readonly Buffer[],
  from: number,
  aborted: readonly { producerId: number; firstOffset: number }[],
): Array<{ offset: number; value: string }> {
  const out: Array<{ offset: number; value: string }> = [];
  if (chunks.length === 0) return out;
  const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  for (const r of readRecords(TXN_SIM_TOPIC, partition, bytes, from, false, undefined, aborted))
    out.push({ offset: r.offset, value: r.value?.toString("utf8") ?? "" });
  return out;
}

/** Whether `rm` leads `partition` settled: past the by-design lag of a new leader's high watermark (KIP-207). */
function settledLeader(rm: ReplicaManager, partition: number): boolean {
  const r = rm.replica(TXN_SIM_TOPIC, partition);
  return r?.role === "leader" && rm.leading && r.hw >= r.epochStartOffset;
}

export class TxnWorkload {
  private readonly txns = new Map<string, Txn>();
  /** value → its transaction. */
  private readonly byValue = new Map<string, Txn>();
  private readonly leaders = new Map<number, { leader: number; epoch: number }>();
  /** Per partition: what its reader read (offset → value, when served) and its position. */
  private readonly readers = new Map<
    number,
    { offset: number; lso: number; lsoNode: number; lsoAtMs: number; read: Map<number, { value: string; atMs: number }> }
  >();
  private readonly committedAfterHeal = new Set<number>();
  /** Every FetchOffsets answer of the producers' groups. */
  private readonly fetchedOffsets: Array<{ k: number; offset: number; atMs: number; node: number }> = [];
  private ready = false;
  private readonly stopAt: number;

  constructor(private readonly h: TxnHost) {
    this.stopAt = h.faultMs + h.healMs;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((r) => this.h.world.schedule(ms, r, null));
  }

  private upNodes(): SimNode[] {
    return [...this.h.nodes.values()].filter((n) => n.up);
  }

  private pick<T>(xs: readonly T[]): T {
    return xs[this.h.random.int(xs.length)]!;
  }

  private violation(check: string, detail: string): void {
    this.h.history.violation(check, detail, this.h.world.now);
  }

  /** Creates the topic, sets min.insync.replicas=2 on `__transaction_state`, then starts the clients. */
  start(): void {
    void this.setUp().then(() => {
      this.ready = true;
      this.h.trace(`txn: ${TXN_SIM_TOPIC} and ${TXN_TOPIC} ready`);
    });
    for (let k = 0; k < this.h.producers; k++) void this.producer(k);
    for (let p = 0; p < PARTITIONS; p++) void this.reader(p);
    if (this.h.offsets) for (let k = 0; k < this.h.producers; k++) void this.offsetChecker(k);
  }

  private async atController(what: string, decide: (img: MetadataImage) => MetadataRecord[] | null): Promise<boolean> {
    const leader = this.upNodes().find((n) => n.running!.store.isLeader);
    if (!leader) return false;
    try {
      await this.h.call(leader.id, (n) => n.running!.store.commit((img) => decide(img) ?? []));
      this.h.trace(`txn: ${what}`);
      return true;
    } catch (e) {
      this.h.trace(`txn: ${what} failed: ${errName(e)}`);
      return false;
    }
  }

  private async setUp(): Promise<void> {
    while (
      !(await this.atController(`topic ${TXN_SIM_TOPIC} created`, (img) =>
        img.topics.has(TXN_SIM_TOPIC)
          ? []
          : decideCreateTopic(
              img,
              { name: TXN_SIM_TOPIC, partitions: PARTITIONS, replicationFactor: 3, configs: { "min.insync.replicas": "2" } },
              { partitions: PARTITIONS, brokers: img.unfencedBrokers(), random: this.h.random },
            ),
      ))
    )
      await this.sleep(500);
    // The controller creates __transaction_state once a transactional id holds a producer id
    // (FindCoordinator asks it to); then it gets min.insync.replicas=2, as __consumer_offsets does.
    for (;;) {
      const up = this.upNodes();
      const at = up.length > 0 ? this.pick(up) : null;
      if (at?.running?.store.image.topics.has(TXN_TOPIC)) {
        if (
          await this.atController(`${TXN_TOPIC}: min.insync.replicas 2`, (img) =>
            decideAlterConfigs(img, TXN_TOPIC, { "min.insync.replicas": "2" }, []),
          )
        )
          return;
      } else if (at) {
        try {
          await this.h.call(at.id, (n) => n.running!.txn!.service.coordinatorOf("txn-0"), 1000);
        } catch {
          // not there yet
        }
      }
      await this.sleep(500);
    }
  }

  private async refreshLeader(partition: number): Promise<void> {
    const up = this.upNodes();
    if (up.length === 0) return;
    try {
      const got = await this.h.call(
        this.pick(up).id,
        (n) => {
          const p = n.running!.store.image.topics.get(TXN_SIM_TOPIC)?.partitions[partition];
          return { leader: p?.leader ?? -1, epoch: p?.leaderEpoch ?? -1 };
        },
        1000,
      );
      if (got.leader > 0 && got.epoch >= (this.leaders.get(partition)?.epoch ?? -1)) this.leaders.set(partition, got);
    } catch {
      // later
    }
  }

  /** FindCoordinator at a random up node: the coordinator of `tid`, or -1. */
  private async findCoordinator(tid: string): Promise<number> {
    const up = this.upNodes();
    if (up.length === 0) return -1;
    try {
      return await this.h.call(this.pick(up).id, (n) => n.running!.txn!.service.coordinatorOf(tid), 1000);
    } catch {
      return -1;
    }
  }

  /** A call at `tid`'s coordinator (found again after an error); rejects with the coordinator's error. */
  private async atCoordinator<T>(tid: string, coord: { node: number }, fn: (n: SimNode) => Promise<T>): Promise<T> {
    if (coord.node < 0) coord.node = await this.findCoordinator(tid);
    if (coord.node < 0) throw new Error("no coordinator known");
    try {
      return await this.h.call(coord.node, fn, 6000);
    } catch (e) {
      const name = errName(e);
      if (name === "NOT_COORDINATOR" || name === "COORDINATOR_NOT_AVAILABLE" || !(e instanceof RillError)) coord.node = -1;
      throw e;
    }
  }

  /** InitProducerId for `tid` (retried until issued); null once the run stops. */
  private async initProducerId(tid: string, coord: { node: number }): Promise<{ producerId: number; producerEpoch: number } | null> {
    for (let attempt = 0; this.h.world.now < this.stopAt + END_GRACE_MS; attempt++) {
      try {
        return await this.atCoordinator(tid, coord, (n) =>
          n.running!.txn!.service.initProducerId({
            transactionalId: tid,
            transactionTimeoutMs: TXN_TIMEOUT_MS,
            producerId: -1n,
            producerEpoch: -1,
          }),
        );
      } catch (e) {
        if (attempt % 10 === 9) this.h.trace(`txn ${tid}: InitProducerId failed: ${errName(e)}`);
        await this.sleep(50 + this.h.random.int(150));
      }
    }
    return null;
  }

  /** One transactional producer: transactions until the end of healing. */
  private async producer(k: number): Promise<void> {
    const tid = `txn-${k}`;
    const coord = { node: -1 };
    while (!this.ready) await this.sleep(200);
    let pid = await this.initProducerId(tid, coord);
    let seqs = new Map<number, number>();
    let n = 0;
    while (pid !== null && this.h.world.now < this.stopAt) {
      await this.sleep(1 + this.h.random.int(100));
      if (this.h.world.now >= this.stopAt) break;
      const txn: Txn = { name: `${tid}#${n}`, n, outcome: "open", offset: false, endedAtMs: -1, records: [] };
      n++;
      this.txns.set(txn.name, txn);
      const id = pid;
      this.h.trace(`txn ${txn.name}: begins (producer ${id.producerId} epoch ${id.producerEpoch})`);
      const writes = 1 + this.h.random.int(5);
      const fenceAt = this.h.random.int(6) === 0 ? this.h.random.int(writes) : -1;
      let ok = true;
      let fenced: { producerId: number; producerEpoch: number } | null = null;
      // At the end of the run (producers stop), the open transaction ends with the writes it has.
      for (let w = 0; w < writes && ok && this.h.world.now < this.stopAt; w++) {
        if (w === fenceAt) {
          // A second instance of the same transactional id: the open transaction is aborted, this
          // instance is fenced, its next write must be refused.
          fenced = await this.initProducerId(tid, coord);
          if (fenced === null) return;
          this.h.trace(`txn ${txn.name}: a new instance fences it (producer ${fenced.producerId} epoch ${fenced.producerEpoch})`);
        }
        const partition = this.h.random.int(PARTITIONS);
        const value = `${txn.name}.${w}`;
        ok = await this.send(txn, id, seqs, partition, value, fenced !== null);
      }
      if (ok && fenced === null && this.h.offsets && this.h.random.int(2) === 0) ok = await this.commitOffset(k, txn, id);
      const commit = ok && fenced === null && this.h.random.int(10) < 7;
      if (fenced !== null) {
        // The fenced instance tries to commit: refused, or a violation.
        try {
          await this.atCoordinator(tid, coord, (nd) =>
            nd.running!.txn!.service.endTransaction({
              transactionalId: tid,
              producerId: BigInt(id.producerId),
              producerEpoch: id.producerEpoch,
              commit: true,
              bumpEpoch: true,
            }),
          );
          this.violation("txn-fenced-commit", `${txn.name}: committed by an instance fenced by a newer InitProducerId`);
          txn.outcome = "unknown";
        } catch {
          txn.outcome = "aborted";
        }
        this.h.trace(`txn ${txn.name}: aborted (fenced)`);
        pid = fenced;
        seqs = new Map();
        continue;
      }
      if (!ok) {
        txn.outcome = "aborted";
        this.h.trace(`txn ${txn.name}: a write was given up; aborted by a new InitProducerId`);
        pid = await this.initProducerId(tid, coord);
        seqs = new Map();
        continue;
      }
      const next = await this.end(tid, coord, txn, id, commit);
      if (next === null) {
        pid = await this.initProducerId(tid, coord);
        seqs = new Map();
        continue;
      }
      if (next.producerId !== id.producerId || next.producerEpoch !== id.producerEpoch) seqs = new Map();
      pid = next;
      if (commit && this.h.world.now >= this.h.healedAt()) this.committedAfterHeal.add(k);
    }
  }

  /**
   * One record of `txn` to `partition`, retried with its sequence until acknowledged. False when
   * given up (a fatal answer, or too many tries): the transaction cannot commit.
   */
  private async send(
    txn: Txn,
    id: { producerId: number; producerEpoch: number },
    seqs: Map<number, number>,
    partition: number,
    value: string,
    zombie: boolean,
  ): Promise<boolean> {
    const seq = seqs.get(partition) ?? 0;
    const rec = { partition, value, ackedAtMs: -1 };
    txn.records.push(rec);
    this.byValue.set(value, txn);
    const batch = encodeBatch([{ value }], {
      nowMs: this.h.world.clock.nowMs(),
      producerId: id.producerId,
      producerEpoch: id.producerEpoch,
      baseSequence: seq,
      isTransactional: true,
    });
    for (let attempt = 0; attempt < 30; attempt++) {
      if (attempt > 0 || !this.leaders.has(partition)) await this.refreshLeader(partition);
      const to = this.leaders.get(partition)?.leader;
      if (to === undefined) {
        await this.sleep(100);
        continue;
      }
      try {
        const { res, decidedAt } = await this.h.call(to, async (nd) => {
          const answer = await nd.running!.produce.produce({
            topic: TXN_SIM_TOPIC,
            partition,
            records: [],
            recordBatch: batch,
            acks: ProduceAcks.ALL,
            timeoutMs: 5000,
            producerId: BigInt(id.producerId),
            producerEpoch: id.producerEpoch,
            baseSequence: seq,
            transactionalId: txn.name.slice(0, txn.name.indexOf("#")),
          });
          return { res: answer, decidedAt: this.h.world.now };
        });
        const r = res.partitions[0]!;
        if (r.error) throw r.error;
        seqs.set(partition, seq + 1);
        rec.ackedAtMs = decidedAt;
        this.h.trace(`txn ack ${value} -> ${TXN_SIM_TOPIC}-${partition}@${r.baseOffset} (leader ${to})`);
        if (zombie) {
          this.violation("txn-fenced-write", `${value}: acknowledged to an instance fenced by a newer InitProducerId`);
          return false;
        }
        return true;
      } catch (e) {
        const why = errName(e);
        this.h.trace(`txn produce ${value} -> ${TXN_SIM_TOPIC}-${partition} at node ${to} failed (attempt ${attempt + 1}): ${why}`);
        if (FATAL.has(why) || zombie) return false;
        await this.sleep(50 + this.h.random.int(100));
      }
    }
    return false;
  }

  /**
   * EndTransaction (TV2: the epoch is bumped), retried as it is while its outcome is unknown.
   * Returns the identity to go on with, or null when the outcome stays unknown (or it was refused).
   */
  private async end(
    tid: string,
    coord: { node: number },
    txn: Txn,
    id: { producerId: number; producerEpoch: number },
    commit: boolean,
  ): Promise<{ producerId: number; producerEpoch: number } | null> {
    if (!commit) txn.outcome = "aborted"; // whatever happens to the abort: no commit was ever asked
    for (let attempt = 0; attempt < 20 && this.h.world.now < this.stopAt + END_GRACE_MS; attempt++) {
      try {
        const next = await this.atCoordinator(tid, coord, (nd) =>
          nd.running!.txn!.service.endTransaction({
            transactionalId: tid,
            producerId: BigInt(id.producerId),
            producerEpoch: id.producerEpoch,
            commit,
            bumpEpoch: true,
          }),
        );
        if (commit) txn.outcome = "committed";
        txn.endedAtMs = this.h.world.now;
        this.h.trace(`txn ${txn.name}: ${commit ? "committed" : "aborted"} (next epoch ${next.producerEpoch})`);
        return next;
      } catch (e) {
        const why = errName(e);
        this.h.trace(`txn ${txn.name}: end (${commit ? "commit" : "abort"}) failed (attempt ${attempt + 1}): ${why}`);
        if (FATAL.has(why)) break;
        await this.sleep(50 + this.h.random.int(150));
      }
    }
    if (commit) txn.outcome = "unknown";
    this.h.trace(`txn ${txn.name}: outcome ${txn.outcome}`);
    return null;
  }

  /**
   * TxnOffsetCommit at the coordinator of producer `k`'s group (`txg-K`): offset `txn.n` of
   * sim-txn-0, pending in the transaction until its marker (consume-transform-produce). False
   * when refused: the transaction cannot commit.
   */
  private async commitOffset(k: number, txn: Txn, id: { producerId: number; producerEpoch: number }): Promise<boolean> {
    const group = `txg-${k}`;
    for (let attempt = 0; attempt < 10; attempt++) {
      const at = await this.findGroupCoordinator(group);
      if (at < 0) {
        await this.sleep(100);
        continue;
      }
      try {
        const res = await this.h.call(at, (nd) =>
          nd.running!.txn!.service.txnOffsetCommit({
            transactionalId: `txn-${k}`,
            producerId: BigInt(id.producerId),
            producerEpoch: id.producerEpoch,
            groupId: group,
            memberId: null,
            generationOrEpoch: -1,
            offsets: [{ topic: TXN_SIM_TOPIC, partition: 0, offset: txn.n, metadata: "", leaderEpoch: -1 }],
          }),
        );
        const err = res[0]?.error;
        if (err) throw err;
        txn.offset = true;
        this.h.trace(`txn ${txn.name}: offset ${txn.n} of ${group} in the transaction (coordinator ${at})`);
        return true;
      } catch (e) {
        const why = errName(e);
        this.h.trace(`txn ${txn.name}: TxnOffsetCommit at node ${at} failed (attempt ${attempt + 1}): ${why}`);
        if (FATAL.has(why)) return false;
        await this.sleep(50 + this.h.random.int(100));
      }
    }
    return false;
  }

  private async findGroupCoordinator(group: string): Promise<number> {
    const up = this.upNodes();
    if (up.length === 0) return -1;
    try {
      return await this.h.call(this.pick(up).id, (n) => n.running!.groupsService.coordinatorOf(group), 1000);
    } catch {
      return -1;
    }
  }

  /**
   * FetchOffsets of producer `k`'s group now and then: every answer must be the offset of a
   * transaction that was not aborted, and never below an earlier answer (unless
   * min.insync.replicas nodes lost power since it was served).
   */
  private async offsetChecker(k: number): Promise<void> {
    const group = `txg-${k}`;
    let last = { offset: -1, node: 0, atMs: 0 };
    while (this.h.world.now < this.h.faultMs + this.h.healMs + 2000) {
      await this.sleep(300 + this.h.random.int(400));
      const at = await this.findGroupCoordinator(group);
      if (at < 0) continue;
      try {
        const { got, servedAt, deposed } = await this.h.call(
          at,
          async (n) => {
            // Judged when the coordinator reads its answer (fetchOffsets reads before it waits).
            const deposed = deposedCoordinator(this.h.nodes, n.id, group);
            return { got: await n.running!.groupsService.fetchOffsets(group, null), servedAt: this.h.world.now, deposed };
          },
          2000,
        );
        const o = got.find((c) => c.topic === TXN_SIM_TOPIC && c.partition === 0)?.offset ?? -1;
        if (o < 0) continue;
        this.fetchedOffsets.push({ k, offset: o, atMs: servedAt, node: at });
        if (o < last.offset && deposed !== null) {
          // A deposed coordinator's answer is late, not lost (deposed.ts): not compared.
          this.h.history.deposedCoordinatorReads++;
          this.h.trace(
            `txn: ${group}: node ${at} answered offset ${o} (after ${last.offset} from node ${last.node}) as a deposed coordinator: its ${OFFSETS_TOPIC}-${deposed.partition} at leader epoch ${deposed.epoch}, node ${deposed.by}'s at ${deposed.latestEpoch} (leader ${deposed.leader})`,
          );
          continue;
        }
        if (o < last.offset && this.h.powerLossesSince(last.atMs) < 2)
          this.violation(
            "txn-offset-backwards",
            `${group}: committed offset ${last.offset} from node ${last.node}, then ${o} from node ${at}`,
          );
        last = { offset: o, node: at, atMs: servedAt };
      } catch {
        // asked again
      }
    }
  }

  /** A READ_COMMITTED Fetch of `partition` from `offset` at node `at`, decoded. */
  private readAt(at: number, partition: number, offset: number): Promise<ReadAnswer> {
    return this.h.call(
      at,
      (n) => {
        const rm = n.running!.rm;
        const d = rm.readPartition({
          topic: TXN_SIM_TOPIC,
          partition,
          offset,
          maxBytes: 64 << 10,
          readCommitted: true,
          currentLeaderEpoch: this.leaders.get(partition)?.epoch ?? -1,
        });
        const settled = settledLeader(rm, partition);
        const servedAtMs = this.h.world.now;
        if (d.error) return { error: d.error, hw: -1, lso: -1, records: [], settled, servedAtMs, nextOffset: offset };
        const records = committedRecords(partition, d.read?.chunks ?? [], offset, d.abortedTransactions ?? []);
        const nextOffset = d.read?.nextOffset ?? offset;
        return { error: null, hw: d.highWatermark, lso: d.lastStableOffset ?? -1, records, settled, servedAtMs, nextOffset };
      },
      2000,
    );
  }

  /** One READ_COMMITTED reader per partition, from the leader. */
  private async reader(partition: number): Promise<void> {
    const c = { offset: 0, lso: 0, lsoNode: 0, lsoAtMs: 0, read: new Map<number, { value: string; atMs: number }>() };
    this.readers.set(partition, c);
    while (this.h.world.now < this.h.faultMs + this.h.healMs + 2000) {
      await this.sleep(10 + this.h.random.int(40));
      const leader = this.leaders.get(partition)?.leader;
      if (leader === undefined) {
        await this.refreshLeader(partition);
        continue;
      }
      let got: ReadAnswer;
      try {
        got = await this.readAt(leader, partition, c.offset);
      } catch {
        await this.refreshLeader(partition);
        continue;
      }
      if (got.error) {
        await this.refreshLeader(partition);
        continue;
      }
      if (got.lso < c.lso && (!got.settled || this.h.powerLossesSince(c.lsoAtMs) >= 2)) {
        // A replica not (yet) a settled leader, or min.insync.replicas (2) power losses since: followed from here.
        if (got.settled) [c.lso, c.lsoNode, c.lsoAtMs] = [got.lso, leader, got.servedAtMs];
      } else if (got.lso < c.lso)
        this.violation(
          "txn-lso-backwards",
          `${TXN_SIM_TOPIC}-${partition}: a READ_COMMITTED reader saw last stable offset ${c.lso} from node ${c.lsoNode}, then ${got.lso} from node ${leader}`,
        );
      if (got.lso > c.lso) [c.lso, c.lsoNode, c.lsoAtMs] = [got.lso, leader, got.servedAtMs];
      for (const r of got.records) {
        if (r.offset < c.offset) continue;
        if (r.offset >= got.lso) {
          this.violation(
            "txn-read-above-lso",
            `${TXN_SIM_TOPIC}-${partition}: offset ${r.offset} ("${r.value}") returned with last stable offset ${got.lso} by node ${leader}`,
          );
          break;
        }
        c.read.set(r.offset, { value: r.value, atMs: got.servedAtMs });
        c.offset = r.offset + 1;
      }
      // Past the read's markers and aborted records (a Kafka consumer goes on at the fetch's next offset), below the LSO.
      if (Math.min(got.nextOffset, got.lso) > c.offset) c.offset = Math.min(got.nextOffset, got.lso);
    }
  }

  /**
   * Offsets committed in transactions: no answer names the offset of an aborted transaction, and
   * after healing each group's offset is the last committed transaction's (or a later one's whose
   * outcome is unknown), unless min.insync.replicas nodes lost power since that commit.
   */
  private checkOffsets(): void {
    const byName = (k: number, n: number) => this.txns.get(`txn-${k}#${n}`);
    for (const f of this.fetchedOffsets) {
      const t = byName(f.k, f.offset);
      if (!t?.offset || t.outcome === "aborted")
        this.violation(
          "txn-aborted-offset",
          `txg-${f.k}: node ${f.node} answered offset ${f.offset} at ${f.atMs} ms, committed by ${t ? `${t.outcome} ${t.name}` : "no transaction"}`,
        );
    }
    for (let k = 0; k < this.h.producers; k++) {
      const group = `txg-${k}`;
      let want: Txn | null = null;
      for (const t of this.txns.values())
        if (t.name.startsWith(`txn-${k}#`) && t.offset && t.outcome === "committed" && (want === null || t.n > want.n)) want = t;
      if (want === null || this.h.powerLossesSince(want.endedAtMs) >= 2) continue;
      let got: ReturnType<ReturnType<GroupRuntime["shardFor"]>["fetchOffsets"]> | null = null;
      let node = -1;
      for (const n of this.h.nodes.values()) {
        try {
          if (n.running) [got, node] = [n.running.groups.shardFor(group).fetchOffsets(group, null), n.id];
        } catch {
          // not its coordinator
        }
      }
      if (got === null) {
        this.violation("liveness", `${group} has no coordinator after healing`);
        continue;
      }
      const o = got.find((c) => c.topic === TXN_SIM_TOPIC && c.partition === 0)?.offset ?? -1;
      const t = byName(k, o);
      if (o < want.n && !(t?.outcome === "unknown"))
        this.violation(
          "txn-offset-lost",
          `${group}: ${want.name} committed offset ${want.n} at ${want.endedAtMs} ms, its coordinator (node ${node}) has ${o}`,
        );
    }
  }

  /** The checks after healing (see the module comment). */
  finalChecks(): void {
    const now = this.h.world.now;
    const seen = new Set<string>();
    for (const [p, c] of this.readers) {
      for (const [offset, r] of c.read) {
        const t = this.byValue.get(r.value);
        if (t?.outcome === "aborted")
          this.violation("txn-aborted-read", `${TXN_SIM_TOPIC}-${p}@${offset}: "${r.value}" of aborted ${t.name} read at ${r.atMs} ms`);
        if (!t) this.violation("txn-aborted-read", `${TXN_SIM_TOPIC}-${p}@${offset}: "${r.value}" was never written`);
      }
    }
    for (let p = 0; p < PARTITIONS; p++) {
      const node = [...this.h.nodes.values()].find((n) => n.running && settledLeader(n.running.rm, p));
      if (!node) {
        this.violation("liveness", `${TXN_SIM_TOPIC}-${p} has no settled leader after healing`);
        continue;
      }
      const rm = node.running!.rm;
      const replica = rm.replica(TXN_SIM_TOPIC, p)!;
      const log = replica.log;
      const hw = rm.highWatermark(log);
      const lso = rm.lastStableOffset(log);
      // Everything below the high watermark (markers and aborted records too are dropped by a plain read).
      const all = new Map<string, number>();
      const visible = new Map<number, string>();
      for (let o = log.logStartOffset; o < hw; ) {
        const r = log.read(o, 1 << 20, hw);
        if (r.bytes === 0) break;
        for (const rec of committedRecords(p, r.chunks, o, [])) {
          const prev = all.get(rec.value);
          if (prev !== undefined)
            this.violation("txn-duplicate", `${TXN_SIM_TOPIC}-${p}: "${rec.value}" at offsets ${prev} and ${rec.offset}`);
          all.set(rec.value, rec.offset);
        }
        if (r.nextOffset <= o) break;
        o = r.nextOffset;
      }
      for (let o = log.logStartOffset; o < lso; ) {
        const d = rm.readPartition({ topic: TXN_SIM_TOPIC, partition: p, offset: o, maxBytes: 1 << 20, readCommitted: true });
        if (d.error || !d.read || d.read.bytes === 0) break;
        for (const rec of committedRecords(p, d.read.chunks, o, d.abortedTransactions ?? [])) visible.set(rec.offset, rec.value);
        if (d.read.nextOffset <= o) break;
        o = d.read.nextOffset;
      }
      const visibleValues = new Set(visible.values());
      for (const v of visibleValues) seen.add(v);
      if (lso < hw)
        this.violation("liveness", `${TXN_SIM_TOPIC}-${p}: last stable offset ${lso} below the high watermark ${hw} after healing`);
      const c = this.readers.get(p);
      if (c && c.offset < lso)
        this.violation("liveness", `${TXN_SIM_TOPIC}-${p}: the READ_COMMITTED reader is at ${c.offset}, the LSO is ${lso}`);
      for (const [offset, r] of c?.read ?? []) {
        if (visible.get(offset) === r.value || this.h.powerLossesSince(r.atMs) >= 2) continue;
        this.violation(
          "txn-read-lost",
          `${TXN_SIM_TOPIC}-${p}@${offset}: "${r.value}" read at ${r.atMs} ms, the leader (node ${node.id}) now has ${visible.has(offset) ? `"${visible.get(offset)}"` : "nothing visible"}`,
        );
      }
      for (const t of this.txns.values()) {
        const mine = t.records.filter((r) => r.partition === p);
        if (mine.length === 0) continue;
        if (t.outcome === "committed") {
          for (const r of mine) {
            if (r.ackedAtMs < 0 || this.h.powerLossesSince(r.ackedAtMs) >= 2) continue;
            const at = all.get(r.value);
            if (at === undefined)
              this.violation(
                "txn-acked-lost",
                `${t.name}: "${r.value}" acknowledged at ${r.ackedAtMs} ms is not in ${TXN_SIM_TOPIC}-${p} (leader ${node.id})`,
              );
            else if (at < lso && !visibleValues.has(r.value))
              this.violation(
                "txn-torn",
                `${t.name} committed: "${r.value}" at ${TXN_SIM_TOPIC}-${p}@${at} is not visible to READ_COMMITTED (lso ${lso})`,
              );
          }
        }
      }
    }
    // A transaction whose outcome is unknown is all or nothing, over every partition it touched.
    for (const t of this.txns.values()) {
      if (t.outcome === "aborted") {
        for (const r of t.records)
          if (seen.has(r.value))
            this.violation("txn-aborted-read", `${t.name}: "${r.value}" of the aborted transaction is visible after healing`);
      }
      if (t.outcome !== "unknown") continue;
      const acked = t.records.filter((r) => r.ackedAtMs >= 0 && this.h.powerLossesSince(r.ackedAtMs) < 2);
      const shown = acked.filter((r) => seen.has(r.value)).length;
      if (shown > 0 && shown < acked.length)
        this.violation("txn-torn", `${t.name} (outcome unknown): ${shown} of its ${acked.length} acknowledged records are visible`);
    }
    if (this.h.offsets) this.checkOffsets();
    for (let k = 0; k < this.h.producers; k++)
      if (!this.committedAfterHeal.has(k)) this.violation("liveness", `transactional producer ${k} committed nothing after healing`);
    const counts = { committed: 0, aborted: 0, unknown: 0, open: 0 };
    for (const t of this.txns.values()) counts[t.outcome]++;
    this.h.trace(`txn: ${JSON.stringify(counts)} at ${now} ms`);
  }
}
