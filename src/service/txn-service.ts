/**
 * `TxnService`: the `TransactionsService` and `TxnProduceGate` of one broker (transactions.ts
 * has the contract and the life of a transaction), over the broker's `TxnRuntime`
 * (src/coordinator/transactions). Requests for an id this broker does not coordinate answer
 * NOT_COORDINATOR (gRPC forwards them to the coordinator, Kafka clients look it up with
 * FindCoordinator); the produce gate reaches a coordinator on another broker through the
 * `RemoteTxnCoordinator` port. `txnMarkerRouter` is the runtime's way to a partition's leader.
 */
import { RillError, rillError } from "../base/errors.ts";
import { validateTransactionalId } from "../coordinator/transactions/txn-coordinator.ts";
import type { TxnRecordState } from "./txn-views.ts";
import { describeOf, listingOf } from "./txn-views.ts";
import { TXN_TOPIC, type TxnMarkerSpec, type TxnRuntime } from "../coordinator/transactions/txn-runtime.ts";
import type { TxnPartition } from "../coordinator/transactions/txn-records.ts";
import { type GroupRuntime, OFFSETS_TOPIC, offsetsPartitionFor, validateGroupId } from "../coordinator/group-runtime.ts";
import type { ReplicaManager } from "../replication/replica-manager.ts";
import type { OffsetResult } from "./groups.ts";
import type {
  AbortTransactionInput,
  AddOffsetsInput,
  AddPartitionResult,
  AddPartitionsInput,
  EndTransactionInput,
  ListTransactionsFilter,
  RemoteTxnCoordinator,
  TransactionDescription,
  TransactionListing,
  TransactionsService,
  TxnInitProducerIdInput,
  TxnMarkerWriter,
  TxnOffsetCommitInput,
  TxnProduceGate,
  TxnProduceGateInput,
  TxnProducer,
} from "./transactions.ts";

/** Largest producer id the log can hold exactly (2^53 - 1). */
const PRODUCER_ID_MAX = BigInt(Number.MAX_SAFE_INTEGER);

/** INVALID_REQUEST unless `producerId`/`producerEpoch` can be a producer's (-1 allowed when `none`). */
export function checkProducerFields(
  producerId: bigint,
  producerEpoch: number,
  none: boolean,
): { producerId: number; producerEpoch: number } {
  const minId = none ? -1n : 0n;
  if (producerId < minId || producerId > PRODUCER_ID_MAX)
    throw rillError("INVALID_REQUEST", `producer_id: ${producerId} is not in [${minId}, ${PRODUCER_ID_MAX}]`);
  const minEpoch = none ? -1 : 0;
  if (!Number.isInteger(producerEpoch) || producerEpoch < minEpoch || producerEpoch > 0x7fff)
    throw rillError("INVALID_REQUEST", `producer_epoch: ${producerEpoch} is not in [${minEpoch}, 32767]`);
  return { producerId: Number(producerId), producerEpoch };
}

/** What a TxnService needs. */
export interface TxnServiceDeps {
  readonly runtime: TxnRuntime;
  readonly rm: ReplicaManager;
  /** The coordinator on another broker (gRPC); null on a single node. */
  readonly remote: RemoteTxnCoordinator | null;
  /** The default transaction timeout when a request gives 0 (Kafka's transaction.timeout.ms default). */
  readonly defaultTimeoutMs?: number;
  /** Asks the controller to create `__transaction_state` (it does once a transactional id holds a producer id). */
  readonly requestTopic?: (transactionalId: string) => Promise<unknown>;
  /** Waits `ms` (injected timers). */
  readonly sleep?: (ms: number) => Promise<void>;
  /** This broker's group coordinators, for transactional offset commits (TxnOffsetCommit). */
  readonly groups?: GroupRuntime;
}

/** The transactions service of one broker. */
export class TxnService implements TransactionsService, TxnProduceGate {
  constructor(private readonly d: TxnServiceDeps) {}

  /** This broker's node id. */
  get nodeId(): number {
    return this.d.runtime.nodeId;
  }

  /** Whether this broker coordinates `transactionalId` now (else NOT_COORDINATOR: gRPC forwards). */
  isLocal(transactionalId: string): boolean {
    return this.d.runtime.isLocal(transactionalId);
  }

  coordinatorOf(transactionalId: string): number {
    validateTransactionalId(transactionalId);
    try {
      return this.d.runtime.coordinatorOf(transactionalId);
    } catch (e) {
      if (!this.d.rm.image.topics.has(TXN_TOPIC)) void this.d.requestTopic?.(transactionalId).catch(() => undefined);
      throw e;
    }
  }

  /**
   * Resolves once `transactionalId`'s coordinator is known and, when it is this broker, loaded;
   * creates `__transaction_state` first if it does not exist (the first transactional id of the
   * cluster). Rejects with COORDINATOR_NOT_AVAILABLE after `timeoutMs`.
   */
  async awaitCoordinator(transactionalId: string, timeoutMs = 15_000): Promise<void> {
    validateTransactionalId(transactionalId);
    if (!this.d.rm.image.topics.has(TXN_TOPIC) && this.d.requestTopic) await this.d.requestTopic(transactionalId);
    const sleep = this.d.sleep;
    for (let waited = 0; ; waited += 50) {
      try {
        const node = this.d.runtime.coordinatorOf(transactionalId);
        if (node !== this.d.runtime.nodeId || this.d.runtime.isLocal(transactionalId)) return;
      } catch (e) {
        if (!(e instanceof RillError) || waited >= timeoutMs || sleep === undefined) throw e;
      }
      if (waited >= timeoutMs || sleep === undefined) return; // answered NOT_COORDINATOR / loading by the call itself
      await sleep(50);
    }
  }

  async initProducerId(i: TxnInitProducerIdInput): Promise<TxnProducer> {
    if (i.transactionalId === null || i.transactionalId === "")
      throw rillError("INVALID_REQUEST", "transactional_id: empty; an idempotent producer's id comes from the controller's InitProducerId");
    const p = checkProducerFields(i.producerId, i.producerEpoch, true);
    const timeoutMs = i.transactionTimeoutMs === 0 ? (this.d.defaultTimeoutMs ?? 60_000) : i.transactionTimeoutMs;
    return this.d.runtime.initProducerId({ transactionalId: i.transactionalId, transactionTimeoutMs: timeoutMs, ...p });
  }

  async addPartitions(i: AddPartitionsInput): Promise<AddPartitionResult[]> {
    validateTransactionalId(i.transactionalId);
    const p = checkProducerFields(i.producerId, i.producerEpoch, false);
    const unknown = i.partitions.map((tp, n) => this.unknownPartition(tp, `partitions[${n}]`));
    const known = i.partitions.filter((_, n) => unknown[n] === null);
    const errors =
      known.length === 0
        ? []
        : await this.d.runtime.addPartitions({ transactionalId: i.transactionalId, ...p, partitions: known, verifyOnly: i.verifyOnly });
    let k = 0;
    return i.partitions.map((tp, n) => ({
      topic: tp.topic,
      partition: tp.partition,
      error: unknown[n] ?? (errors[k++] as RillError | null),
    }));
  }

  async addOffsets(i: AddOffsetsInput): Promise<void> {
    validateTransactionalId(i.transactionalId);
    validateGroupId(i.groupId);
    const p = checkProducerFields(i.producerId, i.producerEpoch, false);
    await this.d.runtime.addOffsets({
      transactionalId: i.transactionalId,
      ...p,
      groupId: i.groupId,
      offsetsPartition: { topic: OFFSETS_TOPIC, partition: offsetsPartitionFor(i.groupId) },
      txnVersion: 1,
    });
  }

  async txnOffsetCommit(i: TxnOffsetCommitInput): Promise<OffsetResult[]> {
    validateTransactionalId(i.transactionalId);
    validateGroupId(i.groupId);
    const p = checkProducerFields(i.producerId, i.producerEpoch, false);
    const rt = this.d.groups;
    if (rt === undefined) throw rillError("INVALID_REQUEST", "transactional offset commits are not served by this broker");
    rt.shardFor(i.groupId); // NOT_COORDINATOR before the transaction changes
    // The group's offsets partition joins the transaction (TV1 clients added it with AddOffsetsToTxn already).
    await this.ensure({
      transactionalId: i.transactionalId,
      ...p,
      topic: OFFSETS_TOPIC,
      partition: offsetsPartitionFor(i.groupId),
      mode: "add",
    });
    const unknown = i.offsets.map((o, n) => this.unknownPartition(o, `offsets[${n}]`));
    const known = i.offsets.filter((_, n) => unknown[n] === null);
    const res =
      known.length === 0
        ? { error: null, offsets: [] }
        : rt.run(i.groupId, (shard, now) =>
            shard.txnCommitOffsets(
              {
                groupId: i.groupId,
                memberId: i.memberId ?? "",
                memberEpoch: i.memberId ? i.generationOrEpoch : -1,
                offsets: known,
                producerId: p.producerId,
              },
              now,
            ),
          );
    await rt.replicated(i.groupId);
    let k = 0;
    return i.offsets.map((o, n) =>
      unknown[n] ? { topic: o.topic, partition: o.partition, offset: o.offset, error: unknown[n] } : res.offsets[k++]!,
    );
  }

  async endTransaction(i: EndTransactionInput): Promise<TxnProducer> {
    validateTransactionalId(i.transactionalId);
    const p = checkProducerFields(i.producerId, i.producerEpoch, false);
    return this.d.runtime.endTransaction({ transactionalId: i.transactionalId, ...p, commit: i.commit, bumpEpoch: i.bumpEpoch });
  }

  describeTransactions(ids: readonly string[]): TransactionDescription[] {
    return ids.map((id) => {
      try {
        validateTransactionalId(id);
        const { state } = this.d.runtime.describe(id);
        if (state === undefined)
          return describeOf(
            id,
            null,
            rillError("TRANSACTIONAL_ID_NOT_FOUND", `transactional_id: "${id}" is not known`),
            this.d.runtime.nodeId,
          );
        return describeOf(id, state as TxnRecordState, null, this.d.runtime.nodeId);
      } catch (e) {
        if (!(e instanceof RillError)) throw e;
        return describeOf(id, null, e, -1);
      }
    });
  }

  listTransactions(f: ListTransactionsFilter): TransactionListing[] {
    const now = this.d.runtime.nowMs();
    const states = new Set(f.states);
    const ids = new Set(f.producerIds.map((x) => Number(x)));
    return this.d.runtime
      .all()
      .map((s) => listingOf(s as TxnRecordState, now, this.d.runtime.nodeId))
      .filter((t) => (states.size === 0 || states.has(t.state)) && (ids.size === 0 || ids.has(t.producerId)))
      .filter((t) => f.durationFilterMs <= 0 || t.durationMs > f.durationFilterMs)
      .sort((a, b) => (a.transactionalId < b.transactionalId ? -1 : a.transactionalId > b.transactionalId ? 1 : 0));
  }

  async abortTransaction(i: AbortTransactionInput): Promise<void> {
    if (i.kind === "transactional-id") {
      validateTransactionalId(i.transactionalId);
      const { state } = this.d.runtime.describe(i.transactionalId);
      if (state === undefined) throw rillError("TRANSACTIONAL_ID_NOT_FOUND", `transactional_id: "${i.transactionalId}" is not known`);
      if (!(await this.d.runtime.abortOpen(i.transactionalId)))
        throw rillError("INVALID_TXN_STATE", `transactional_id: "${i.transactionalId}" has no open transaction (state ${state.state})`);
      return;
    }
    const p = checkProducerFields(i.producerId, i.producerEpoch, false);
    const err = this.unknownPartition(i, "partition");
    if (err) throw err;
    await this.d.rm.writeTxnMarker(i.topic, i.partition, { ...p, commit: false, coordinatorEpoch: i.coordinatorEpoch });
  }

  /** The produce gate (TxnProduceGate): here when this broker coordinates the id, else through the remote port. */
  async ensure(i: TxnProduceGateInput): Promise<void> {
    validateTransactionalId(i.transactionalId);
    if (this.d.runtime.isLocal(i.transactionalId)) return this.d.runtime.gate(i);
    const node = this.d.runtime.coordinatorOf(i.transactionalId);
    if (node === this.d.runtime.nodeId || this.d.remote === null) return this.d.runtime.gate(i); // NOT_COORDINATOR / loading
    return this.d.remote.ensure(node, i);
  }

  /**
   * The produce gate for a request another broker passed here (ReplicationService.TxnProduceGate):
   * answered here — NOT_COORDINATOR when this broker does not coordinate the id — and never passed
   * on again. Two brokers whose metadata disagree on the coordinator (each naming the other while
   * a `__transaction_state` leadership moves) would otherwise pass the request back and forth
   * until its deadline (the cluster simulator's seed 110: with duplicated messages, the copies
   * doubled at each hop until the process ran out of memory). The producing broker's partition
   * leader retries NOT_COORDINATOR as any other retriable answer.
   */
  ensureHere(i: TxnProduceGateInput): Promise<void> {
    validateTransactionalId(i.transactionalId);
    return this.d.runtime.gate(i);
  }

  /** `ensureHere` as a TxnProduceGate: what the inter-broker handler runs. */
  get hereGate(): TxnProduceGate {
    return { ensure: (i) => this.ensureHere(i) };
  }

  private unknownPartition(tp: TxnPartition, field: string): RillError | null {
    const t = this.d.rm.image.topics.get(tp.topic);
    if (!t) return rillError("UNKNOWN_TOPIC_OR_PARTITION", `${field}.topic: topic "${tp.topic}" does not exist`);
    if (tp.partition < 0 || tp.partition >= t.partitions.length)
      return rillError("UNKNOWN_TOPIC_OR_PARTITION", `${field}.partition: ${tp.partition} is out of range for topic "${tp.topic}"`);
    return null;
  }
}

/**
 * The runtime's `writeMarker` port: the partition's leader per this broker's metadata — this
 * broker (`ReplicaManager.writeTxnMarker`; for a `__consumer_offsets` partition the group
 * coordinator's `offsetsMarker`) or another one (`TxnMarkerWriter`, an internal RPC). The
 * markers asked for in one turn of the event loop (a transaction's partitions, and those of
 * other transactions ending at once) go to each other leader in one WriteTxnMarkers request, as
 * Kafka's coordinator sends them per broker.
 */
export function txnMarkerRouter(
  rm: ReplicaManager,
  nodeId: number,
  remote: TxnMarkerWriter | null,
  offsetsMarker: ((partition: number, marker: TxnMarkerSpec) => Promise<void>) | null,
): (tp: TxnPartition, marker: TxnMarkerSpec) => Promise<void> {
  type Item = { topic: string; partition: number; marker: TxnMarkerSpec; resolve: () => void; reject: (e: unknown) => void };
  const toSend = new Map<number, Item[]>();
  const send = (writer: TxnMarkerWriter, leader: number): void => {
    const items = toSend.get(leader) ?? [];
    toSend.delete(leader);
    writer.writeMarkers(leader, items).then(
      (errors) =>
        items.forEach((it, i) => {
          const err = errors[i];
          if (err) it.reject(err);
          else it.resolve();
        }),
      (e: unknown) => {
        for (const it of items) it.reject(e);
      },
    );
  };
  return async (tp, marker) => {
    const st = rm.image.topics.get(tp.topic)?.partitions[tp.partition];
    if (st === undefined) throw rillError("UNKNOWN_TOPIC_OR_PARTITION", `${tp.topic}-${tp.partition} does not exist`);
    if (st.leader < 0) throw rillError("LEADER_NOT_AVAILABLE", `${tp.topic}-${tp.partition} has no leader right now`);
    if (st.leader === nodeId) return localMarker(rm, offsetsMarker, tp, marker);
    if (remote === null) throw rillError("NOT_LEADER_OR_FOLLOWER", `${tp.topic}-${tp.partition} is led by broker ${st.leader}`);
    const leader = st.leader;
    await new Promise<void>((resolve, reject) => {
      let items = toSend.get(leader);
      if (items === undefined) {
        items = [];
        toSend.set(leader, items);
        queueMicrotask(() => send(remote, leader));
      }
      items.push({ topic: tp.topic, partition: tp.partition, marker, resolve, reject });
    });
  };
}

/** Writes a marker into a partition this broker leads (the internal WriteTxnMarkers handler too). */
export async function localMarker(
  rm: ReplicaManager,
  offsetsMarker: ((partition: number, marker: TxnMarkerSpec) => Promise<void>) | null,
  tp: TxnPartition,
  marker: TxnMarkerSpec,
): Promise<void> {
  if (tp.topic === OFFSETS_TOPIC) {
    if (offsetsMarker === null) throw rillError("NOT_COORDINATOR", `${tp.topic}-${tp.partition}: no group coordinator here`);
    return offsetsMarker(tp.partition, marker);
  }
  await rm.writeTxnMarker(tp.topic, tp.partition, marker);
}
