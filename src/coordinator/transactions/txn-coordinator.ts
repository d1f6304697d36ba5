/**
 * The transaction coordinator of one `__transaction_state` partition, as a pure state machine
 * (Kafka's TransactionCoordinator / TransactionStateManager, KIP-98, KIP-890): handlers take the
 * request and `now`, check it against the replayed state and return the records to write and
 * the response; `replay(record)` is the only writer. No I/O, no clock.
 *
 * States: Empty → Ongoing (a partition or a group joined) → PrepareCommit / PrepareAbort (the
 * end is decided and durable; markers are being written) → CompleteCommit / CompleteAbort
 * (markers written) → Ongoing again at the next transaction. PrepareEpochFence is Kafka's name
 * for an abort forced by a new InitProducerId; here that abort is a PrepareAbort at a bumped
 * epoch. Dead: the id expired (a tombstone is written).
 *
 * Epochs: the producer's id comes from the controller (InitProducerId: `beginInit` says which
 * epoch the controller must issue at least, `completeInit` records it); after that the
 * coordinator bumps epochs itself: every TV2 end (KIP-890: the markers carry the bumped epoch,
 * so a late write of the old epoch is fenced by the partition), a fence and a timeout abort.
 * When an end's bump reaches PRODUCER_EPOCH_MAX, the markers are written at that epoch and the
 * producer continues with a fresh id from the controller at epoch 0 (`nextProducerId`).
 */
import { rillError } from "../../base/errors.ts";
import type { TxnPartition, TxnRecord, TxnState, TxnStateRecord } from "./txn-records.ts";

/** Largest producer epoch (int16). */
export const TXN_EPOCH_MAX = 0x7fff;
/** Longest transactional id (Kafka's topic-name-like bound). */
export const TRANSACTIONAL_ID_MAX_CHARS = 249;

/** What the coordinator is configured with. */
export interface TxnCoordinatorOptions {
  /** transaction.max.timeout.ms */
  readonly maxTimeoutMs: number;
  /** transactional.id.expiration.ms */
  readonly expirationMs: number;
}

/** Records to write, then the response (state unchanged until they are replayed). */
export interface TxnResult<T> {
  readonly records: TxnRecord[];
  readonly response: T;
}

/** A decided end whose markers must be written (to `partitions`, at this producer id/epoch). */
export interface TxnCompletion {
  readonly transactionalId: string;
  readonly producerId: number;
  readonly producerEpoch: number;
  readonly commit: boolean;
  readonly partitions: readonly TxnPartition[];
}

/** A producer id and epoch. */
export interface TxnIdentity {
  readonly producerId: number;
  readonly producerEpoch: number;
}

/** The next step of InitProducerId. */
export type InitPlan =
  /** An open transaction must be aborted first (the records fence it); then plan again. */
  | { readonly kind: "fence"; readonly result: TxnResult<TxnCompletion> }
  /** Ask the controller for the producer id at an epoch of at least `atLeastEpoch`. */
  | { readonly kind: "issue"; readonly atLeastEpoch: number };

/** What an end decides before anything is written. */
export type EndPlan =
  /** Already ended this way (a retry): answer this identity, write nothing. */
  | { readonly kind: "done"; readonly identity: TxnIdentity }
  /** Write the end; `freshId`: the bump overflows, ask the controller for a new producer id first. */
  | { readonly kind: "end"; readonly freshId: boolean };

function key(tp: TxnPartition): string {
  return `${tp.topic}\u0000${tp.partition}`;
}

/** Whether `ps` holds `topic`-`partition` (no key strings: the produce gate asks this for every transactional request). */
function hasPartition(ps: readonly TxnPartition[], topic: string, partition: number): boolean {
  for (const p of ps) if (p.partition === partition && p.topic === topic) return true;
  return false;
}

function sortPartitions(ps: Iterable<TxnPartition>): TxnPartition[] {
  const byKey = new Map<string, TxnPartition>();
  for (const p of ps) byKey.set(key(p), { topic: p.topic, partition: p.partition });
  return [...byKey.values()].sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
}

/** Throws INVALID_REQUEST unless `id` is a usable transactional id. */
export function validateTransactionalId(id: string, field = "transactional_id"): void {
  if (id.length === 0) throw rillError("INVALID_REQUEST", `${field}: the transactional id is empty`);
  if (id.length > TRANSACTIONAL_ID_MAX_CHARS)
    throw rillError("INVALID_REQUEST", `${field}: longer than ${TRANSACTIONAL_ID_MAX_CHARS} characters`);
}

/** One coordinator shard. */
export class TxnCoordinator {
  private readonly txns = new Map<string, TxnStateRecord>();

  constructor(private readonly opts: TxnCoordinatorOptions) {}

  /** Applies a written record: the only writer of the state. */
  replay(r: TxnRecord): void {
    if (r.type === "txn-tombstone") this.txns.delete(r.transactionalId);
    else this.txns.set(r.transactionalId, r);
  }

  /** The state of `id` (undefined: unknown or expired). */
  get(id: string): TxnStateRecord | undefined {
    return this.txns.get(id);
  }

  /** Every transactional id of this shard. */
  all(): IterableIterator<TxnStateRecord> {
    return this.txns.values();
  }

  // ---------------------------------------------------------------------------------------------
  // InitProducerId

  /**
   * First step of InitProducerId: checks the request and says what comes next — fence and
   * abort an open transaction, or ask the controller for the id (CONCURRENT_TRANSACTIONS while
   * an end's markers are being written).
   */
  beginInit(
    req: { transactionalId: string; transactionTimeoutMs: number; producerId: number; producerEpoch: number },
    now: number,
  ): InitPlan {
    validateTransactionalId(req.transactionalId);
    this.checkTimeout(req.transactionTimeoutMs);
    const m = this.txns.get(req.transactionalId);
    // A new (or expired) transactional id takes any id the instance names (Kafka: KIP-360, a
    // producer recovering from UNKNOWN_PRODUCER_ID; @platformatic/kafka names 0/0 on its first
    // call): there is no current producer to fence, so it gets a fresh id at epoch 0.
    if (m === undefined) return { kind: "issue", atLeastEpoch: 0 };
    if (req.producerId >= 0) {
      // KIP-360: an instance that names its id may bump only its own current epoch.
      const own =
        (req.producerId === m.producerId && req.producerEpoch === m.producerEpoch) ||
        (req.producerId === m.lastProducerId && req.producerEpoch === m.lastProducerEpoch);
      if (!own)
        throw rillError(
          "PRODUCER_FENCED",
          `producer_id: ${req.producerId} at epoch ${req.producerEpoch} is not the current producer of "${req.transactionalId}" (${m.producerId} at ${m.producerEpoch})`,
        );
    }
    if (m.state === "PrepareCommit" || m.state === "PrepareAbort" || m.state === "PrepareEpochFence") throw this.concurrent(m);
    if (m.state === "Ongoing") return { kind: "fence", result: this.fenceAbort(m, now) };
    return { kind: "issue", atLeastEpoch: m.producerEpoch + 1 };
  }

  /** Second step: records the id and epoch the controller issued; the id starts Empty. */
  completeInit(req: { transactionalId: string; transactionTimeoutMs: number }, issued: TxnIdentity, now: number): TxnResult<TxnIdentity> {
    const m = this.txns.get(req.transactionalId);
    if (m !== undefined && m.state !== "Empty" && m.state !== "CompleteCommit" && m.state !== "CompleteAbort") throw this.concurrent(m);
    const changedId = m !== undefined && m.producerId !== issued.producerId;
    const rec: TxnStateRecord = {
      type: "txn",
      v: 1,
      transactionalId: req.transactionalId,
      producerId: issued.producerId,
      producerEpoch: issued.producerEpoch,
      lastProducerId: changedId ? m.producerId : (m?.lastProducerId ?? -1),
      lastProducerEpoch: -1,
      timeoutMs: req.transactionTimeoutMs,
      state: "Empty",
      partitions: [],
      groups: [],
      startTimeMs: -1,
      updateTimeMs: now,
      nextProducerId: -1,
      nextProducerEpoch: -1,
      txnVersion: m?.txnVersion ?? 2,
    };
    return { records: [rec], response: issued };
  }

  // ---------------------------------------------------------------------------------------------
  // Partitions and groups join

  /**
   * A transactional produce on a partition's leader: "add" (TV2) makes the partition join,
   * "verify" (TV1, KIP-890 part 1) refuses INVALID_TXN_STATE unless the client added it.
   */
  gate(
    req: { transactionalId: string; producerId: number; producerEpoch: number; topic: string; partition: number; mode: "add" | "verify" },
    now: number,
  ): TxnResult<void> {
    const m = this.current(req.transactionalId, req.producerId, req.producerEpoch);
    if (m.state === "Ongoing" && hasPartition(m.partitions, req.topic, req.partition)) return { records: [], response: undefined };
    if (req.mode === "verify")
      throw rillError(
        "INVALID_TXN_STATE",
        `${req.topic}-${req.partition}: the partition was not added to the transaction of "${req.transactionalId}" (AddPartitionsToTxn first)`,
      );
    return { records: [this.join(m, [{ topic: req.topic, partition: req.partition }], [], 2, now)], response: undefined };
  }

  /** AddPartitionsToTxn (TV1), or its verify-only form (every partition answered on its own). */
  addPartitions(
    req: { transactionalId: string; producerId: number; producerEpoch: number; partitions: readonly TxnPartition[]; verifyOnly: boolean },
    now: number,
  ): TxnResult<(Error | null)[]> {
    const m = this.current(req.transactionalId, req.producerId, req.producerEpoch);
    if (req.verifyOnly) {
      const have = new Set(m.state === "Ongoing" ? m.partitions.map(key) : []);
      return {
        records: [],
        response: req.partitions.map((p) =>
          have.has(key(p))
            ? null
            : rillError("INVALID_TXN_STATE", `${p.topic}-${p.partition}: not in the transaction of "${req.transactionalId}"`),
        ),
      };
    }
    const missing = req.partitions.filter((p) => !(m.state === "Ongoing" && hasPartition(m.partitions, p.topic, p.partition)));
    return {
      records: missing.length === 0 ? [] : [this.join(m, missing, [], 1, now)],
      response: req.partitions.map(() => null),
    };
  }

  /** AddOffsetsToTxn: the group's offsets partition joins the transaction. */
  addOffsets(
    req: {
      transactionalId: string;
      producerId: number;
      producerEpoch: number;
      groupId: string;
      offsetsPartition: TxnPartition;
      txnVersion: 1 | 2;
    },
    now: number,
  ): TxnResult<void> {
    const m = this.current(req.transactionalId, req.producerId, req.producerEpoch);
    const op = req.offsetsPartition;
    if (m.state === "Ongoing" && m.groups.includes(req.groupId) && hasPartition(m.partitions, op.topic, op.partition))
      return { records: [], response: undefined };
    return { records: [this.join(m, [req.offsetsPartition], [req.groupId], req.txnVersion, now)], response: undefined };
  }

  private join(
    m: TxnStateRecord,
    partitions: readonly TxnPartition[],
    groups: readonly string[],
    txnVersion: 1 | 2,
    now: number,
  ): TxnStateRecord {
    const starting = m.state !== "Ongoing";
    // The common start (one partition, no group: a TV2 produce's gate) needs no sorting.
    const single = starting && partitions.length === 1 && groups.length === 0;
    return {
      ...m,
      lastProducerEpoch: starting ? -1 : m.lastProducerEpoch,
      state: "Ongoing",
      partitions: single
        ? [{ topic: partitions[0]!.topic, partition: partitions[0]!.partition }]
        : sortPartitions([...(starting ? [] : m.partitions), ...partitions]),
      groups: single ? [] : [...new Set([...(starting ? [] : m.groups), ...groups])].sort(),
      startTimeMs: starting ? now : m.startTimeMs,
      updateTimeMs: now,
      txnVersion: starting ? txnVersion : m.txnVersion,
    };
  }

  // ---------------------------------------------------------------------------------------------
  // The end

  /** What an EndTransaction will do (checks it; writes nothing). */
  planEnd(req: { transactionalId: string; producerId: number; producerEpoch: number; commit: boolean; bumpEpoch: boolean }): EndPlan {
    const m = this.txns.get(req.transactionalId);
    if (m === undefined)
      throw rillError("TRANSACTIONAL_ID_NOT_FOUND", `transactional_id: "${req.transactionalId}" is not known (call InitProducerId first)`);
    const retry = this.retryOfEnd(m, req);
    if (retry) return { kind: "done", identity: { producerId: m.producerId, producerEpoch: m.producerEpoch } };
    const cur = this.current(req.transactionalId, req.producerId, req.producerEpoch);
    if (cur.state !== "Ongoing") {
      if (!req.bumpEpoch)
        throw rillError(
          "INVALID_TXN_STATE",
          `transactional_id: "${req.transactionalId}" has no open transaction to end (state ${cur.state})`,
        );
      return { kind: "end", freshId: cur.producerEpoch + 1 >= TXN_EPOCH_MAX };
    }
    return { kind: "end", freshId: req.bumpEpoch && cur.producerEpoch + 1 >= TXN_EPOCH_MAX };
  }

  /**
   * EndTransaction: an open transaction goes to PrepareCommit/PrepareAbort (the completion names
   * the markers to write, then `complete`); with TV2 the epoch is bumped first (markers at the
   * bumped epoch) and the answer is the identity to continue with. An empty transaction under
   * TV2 only bumps the epoch (nothing to mark). `fresh`: the controller's new id when `planEnd`
   * asked for one.
   */
  endTxn(
    req: { transactionalId: string; producerId: number; producerEpoch: number; commit: boolean; bumpEpoch: boolean },
    fresh: TxnIdentity | null,
    now: number,
  ): TxnResult<{ completion: TxnCompletion | null; identity: TxnIdentity }> {
    const plan = this.planEnd(req);
    if (plan.kind === "done") return { records: [], response: { completion: null, identity: plan.identity } };
    const m = this.current(req.transactionalId, req.producerId, req.producerEpoch);
    if (plan.freshId && fresh === null) throw new Error("endTxn: the epoch overflows and no fresh producer id was given");
    const markerEpoch = req.bumpEpoch ? m.producerEpoch + 1 : m.producerEpoch;
    const next: TxnIdentity = plan.freshId && fresh !== null ? fresh : { producerId: m.producerId, producerEpoch: markerEpoch };
    const prepared: TxnStateRecord = {
      ...m,
      producerEpoch: markerEpoch,
      lastProducerEpoch: m.producerEpoch,
      state: req.commit ? "PrepareCommit" : "PrepareAbort",
      updateTimeMs: now,
      nextProducerId: next.producerId,
      nextProducerEpoch: next.producerEpoch,
    };
    if (m.state !== "Ongoing") {
      // TV2, nothing joined: the end only bumps the epoch.
      return { records: [this.completed(prepared, now)], response: { completion: null, identity: next } };
    }
    const completion: TxnCompletion = {
      transactionalId: m.transactionalId,
      producerId: m.producerId,
      producerEpoch: markerEpoch,
      commit: req.commit,
      partitions: m.partitions,
    };
    return { records: [prepared], response: { completion, identity: next } };
  }

  /** Every marker of a PrepareCommit/PrepareAbort is written: CompleteCommit/CompleteAbort. */
  complete(transactionalId: string, now: number): TxnResult<void> {
    const m = this.txns.get(transactionalId);
    if (m === undefined || (m.state !== "PrepareCommit" && m.state !== "PrepareAbort")) return { records: [], response: undefined };
    return { records: [this.completed(m, now)], response: undefined };
  }

  private completed(m: TxnStateRecord, now: number): TxnStateRecord {
    const switched = m.nextProducerId >= 0 && m.nextProducerId !== m.producerId;
    return {
      ...m,
      producerId: m.nextProducerId >= 0 ? m.nextProducerId : m.producerId,
      producerEpoch: m.nextProducerId >= 0 ? m.nextProducerEpoch : m.producerEpoch,
      lastProducerId: switched ? m.producerId : m.lastProducerId,
      lastProducerEpoch: m.lastProducerEpoch,
      state: m.state === "PrepareCommit" ? "CompleteCommit" : "CompleteAbort",
      partitions: [],
      groups: [],
      startTimeMs: -1,
      updateTimeMs: now,
      nextProducerId: -1,
      nextProducerEpoch: -1,
    };
  }

  /** The decided ends whose markers are not all written (a new coordinator resumes them). */
  pendingCompletions(): TxnCompletion[] {
    const out: TxnCompletion[] = [];
    for (const m of this.txns.values())
      if (m.state === "PrepareCommit" || m.state === "PrepareAbort")
        out.push({
          transactionalId: m.transactionalId,
          producerId: m.producerId,
          producerEpoch: m.producerEpoch,
          commit: m.state === "PrepareCommit",
          partitions: m.partitions,
        });
    return out;
  }

  // ---------------------------------------------------------------------------------------------
  // Aborts by the coordinator: fencing, timeouts, admin

  /** Open transactions older than their timeout at `now`. */
  timedOut(now: number): string[] {
    const out: string[] = [];
    for (const m of this.txns.values()) if (m.state === "Ongoing" && now - m.startTimeMs > m.timeoutMs) out.push(m.transactionalId);
    return out;
  }

  /**
   * Aborts `id`'s open transaction from the coordinator's side (a timeout, an admin abort): the
   * epoch is bumped so the producer is fenced. Null when nothing is open.
   */
  abortOpen(id: string, now: number): TxnResult<TxnCompletion> | null {
    const m = this.txns.get(id);
    if (m === undefined || m.state !== "Ongoing") return null;
    return this.fenceAbort(m, now);
  }

  private fenceAbort(m: TxnStateRecord, now: number): TxnResult<TxnCompletion> {
    const epoch = Math.min(m.producerEpoch + 1, TXN_EPOCH_MAX);
    const rec: TxnStateRecord = {
      ...m,
      producerEpoch: epoch,
      lastProducerEpoch: -1,
      state: "PrepareAbort",
      updateTimeMs: now,
      nextProducerId: m.producerId,
      nextProducerEpoch: epoch,
    };
    return {
      records: [rec],
      response: {
        transactionalId: m.transactionalId,
        producerId: m.producerId,
        producerEpoch: epoch,
        commit: false,
        partitions: m.partitions,
      },
    };
  }

  /** Ids idle (no open transaction) for transactional.id.expiration.ms: their tombstones. */
  expire(now: number): TxnRecord[] {
    const out: TxnRecord[] = [];
    for (const m of this.txns.values())
      if (
        (m.state === "Empty" || m.state === "CompleteCommit" || m.state === "CompleteAbort") &&
        now - m.updateTimeMs >= this.opts.expirationMs
      )
        out.push({ type: "txn-tombstone", v: 1, transactionalId: m.transactionalId });
    return out;
  }

  // ---------------------------------------------------------------------------------------------
  // Checks

  private checkTimeout(ms: number): void {
    if (!Number.isInteger(ms) || ms < 1 || ms > this.opts.maxTimeoutMs)
      throw rillError(
        "INVALID_TRANSACTION_TIMEOUT",
        `transaction_timeout_ms: ${ms} is not in [1, ${this.opts.maxTimeoutMs}] (transaction.max.timeout.ms)`,
      );
  }

  /**
   * The state of `id` if `producerId`/`producerEpoch` is its current producer, else Kafka's
   * error: an older epoch or a replaced id is PRODUCER_FENCED, an epoch from the future
   * INVALID_PRODUCER_EPOCH, another id INVALID_PRODUCER_ID_MAPPING; an end in progress
   * CONCURRENT_TRANSACTIONS (retriable).
   */
  private current(id: string, producerId: number, producerEpoch: number): TxnStateRecord {
    const m = this.txns.get(id);
    if (m === undefined)
      throw rillError("INVALID_PRODUCER_ID_MAPPING", `transactional_id: "${id}" is not known here (call InitProducerId first)`);
    if (producerId !== m.producerId) {
      if (producerId === m.lastProducerId || producerId === m.nextProducerId)
        throw rillError(
          producerId === m.nextProducerId ? "CONCURRENT_TRANSACTIONS" : "PRODUCER_FENCED",
          producerId === m.nextProducerId
            ? `producer_id: the previous transaction of "${id}" is still writing its markers; retry`
            : `producer_id: ${producerId} was replaced by ${m.producerId} for "${id}" (its epoch ran out): the producer is fenced`,
        );
      throw rillError("INVALID_PRODUCER_ID_MAPPING", `producer_id: ${producerId} is not the producer id of "${id}"`);
    }
    if (m.state === "PrepareCommit" || m.state === "PrepareAbort") {
      if (producerEpoch === m.nextProducerEpoch || producerEpoch === m.lastProducerEpoch) throw this.concurrent(m);
    }
    if (producerEpoch < m.producerEpoch)
      throw rillError(
        "PRODUCER_FENCED",
        `producer_epoch: ${producerEpoch} is older than the current epoch ${m.producerEpoch} of "${id}": a newer instance or an abort fenced this producer`,
      );
    if (producerEpoch > m.producerEpoch)
      throw rillError(
        "INVALID_PRODUCER_EPOCH",
        `producer_epoch: ${producerEpoch} is newer than the current epoch ${m.producerEpoch} of "${id}"`,
      );
    if (m.state === "PrepareCommit" || m.state === "PrepareAbort" || m.state === "PrepareEpochFence") throw this.concurrent(m);
    return m;
  }

  /** Whether an end is a retry of the end just made (TV2: the old epoch; TV1: the same epoch). */
  private retryOfEnd(m: TxnStateRecord, req: { producerId: number; producerEpoch: number; commit: boolean; bumpEpoch: boolean }): boolean {
    const done = req.commit ? "CompleteCommit" : "CompleteAbort";
    if (m.state !== done || (req.producerId !== m.producerId && req.producerId !== m.lastProducerId)) return false;
    return req.bumpEpoch ? req.producerEpoch === m.lastProducerEpoch : req.producerEpoch === m.producerEpoch;
  }

  private concurrent(m: TxnStateRecord): Error {
    return rillError(
      "CONCURRENT_TRANSACTIONS",
      `transactional_id: the previous transaction of "${m.transactionalId}" is still being completed (${m.state}); retry`,
    );
  }
}

export type { TxnState };
