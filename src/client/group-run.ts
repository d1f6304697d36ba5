/**
 * `GroupConsumer.run`: handlers instead of an iterator, as kafkajs' `consumer.run`.
 *
 * The life of a batch: the consumer's queue (group-consumer.ts) holds what the Consume stream
 * brought — a Records message of one partition is one batch. A dispatcher takes the queue in
 * order and puts each batch in its partition's lane; up to `partitionsConsumedConcurrently`
 * lanes run at once, each handing its batches to `eachBatch` (or its records one by one to
 * `eachMessage`) strictly in offset order. A record is *resolved* once its handler returned
 * (or `resolveOffset` said so); only resolved records are ever committed:
 *
 * - `commit: "message"` commits after each record, awaited before the next of that partition;
 * - `"batch"` after each batch (awaited);
 * - `"interval"` (the default with `autoCommit`) every `autoCommitIntervalMs`, when the queue is
 *   drained, at half the broker's credit, on revocation and on close;
 * - `"manual"` (the default without `autoCommit`): only the application's `commit()` calls —
 *   which must come before `maxOutstandingRecords` records are held uncommitted, or the broker
 *   stops sending.
 *
 * Rebalances: the broker revokes (server-side assignment), and no record of a revoked partition
 * is handed over after its revocation arrives. The dispatcher waits for the partition's lane to
 * finish the record (or batch) in hand, commits what was resolved (unless "manual"), then runs
 * `onRevoked` — where `commit()` still covers the revoked partitions (the broker accepts
 * commits for a revoked partition until everything it sent is committed, or for 5 s) — and only
 * then forgets them. With "message" or "batch" no record of a revoked partition is therefore
 * handed to two members, unless a handler outlasts that grace.
 *
 * Pause, resume and seek (`payload.pause()`, `consumer.pause/resume/seek`) are the consumer's:
 * a lane stops at the next record of a partition paused, revoked or sought meanwhile
 * (`isStale()` tells an `eachBatch` handler so).
 *
 * Errors: a handler that throws (or a deserializer) stops `run`: the other lanes finish the
 * record in hand, resolved records are committed (unless "manual"), the consumer leaves the
 * group and `run` rejects with the error; the next owner starts at the failed record. A stream
 * failure that cannot be retried does the same.
 */

import { Errors, RillError } from "../base/errors.ts";
import type { CorruptBatchReport } from "./batch-reader.ts";
import { checkChoice, checkInt } from "./convert.ts";
import type { GroupOffset, GroupTopicPartition } from "./group-connection.ts";
import type { GroupRecord, Item, PartitionState } from "./group-types.ts";

/** The batch `eachBatch` gets: records of one partition, in offset order. */
export interface RunBatch<K, V> {
  readonly topic: string;
  readonly partition: number;
  /** The partition's high watermark when the batch was read. */
  readonly highWatermark: number;
  readonly messages: readonly GroupRecord<K, V>[];
  /** The first record's offset; null for an empty batch. */
  firstOffset(): number | null;
  /** The last record's offset; -1 for an empty batch. */
  lastOffset(): number;
  /** Records after this batch in the partition when it was read. */
  offsetLag(): number;
}

/** Helpers both payloads carry. */
interface PayloadHelpers {
  /** Pauses this partition (as `consumer.pause`); returns the function that resumes it. */
  pause(): () => void;
  /** False once `run` is stopping (close, or another handler failed). */
  isRunning(): boolean;
  /** True once the partition was revoked, paused or sought since the batch was read: stop working on it. */
  isStale(): boolean;
}

/** What `eachMessage` gets. */
export interface EachMessagePayload<K, V> extends PayloadHelpers {
  readonly topic: string;
  readonly partition: number;
  readonly message: GroupRecord<K, V>;
}

/** What `eachBatch` gets. */
export interface EachBatchPayload<K, V> extends PayloadHelpers {
  readonly batch: RunBatch<K, V>;
  /** Marks the records up to `offset` processed (committable). */
  resolveOffset(offset: number): void;
  /** Commits this partition's resolved position now (if ahead of the committed one). */
  commitOffsetsIfNecessary(): Promise<void>;
}

/** `run`'s settings: exactly one of `eachMessage`, `eachBatch`. */
export interface RunOptions<K, V> {
  readonly eachMessage?: ((payload: EachMessagePayload<K, V>) => void | Promise<void>) | undefined;
  readonly eachBatch?: ((payload: EachBatchPayload<K, V>) => void | Promise<void>) | undefined;
  /** Partitions handled at once (each in order). Default 1, at most 1000. */
  readonly partitionsConsumedConcurrently?: number | undefined;
  /** When resolved records are committed. Default "interval" with `autoCommit` (the default), else "manual". */
  readonly commit?: "message" | "batch" | "interval" | "manual" | undefined;
  /** With `eachBatch`: resolve the whole batch when the handler returns. Default true. */
  readonly eachBatchAutoResolve?: boolean | undefined;
}

/** @internal What `run` needs of the consumer (group-consumer.ts builds it). */
export interface RunHost {
  readonly groupId: string;
  readonly autoCommit: boolean;
  setAutoCommit(on: boolean): void;
  nextItem(stop: () => boolean): Promise<Item | null>;
  /** Wakes `nextItem`. */
  wake(): void;
  /** Every lane is idle: everything taken from the queue is handled (auto-commit gives the credit back). */
  idle(): void;
  /** Registers what `close()` calls to stop `run` (resolves once the lanes are done). */
  onStop(stop: () => Promise<void>): void;
  usable(st: PartitionState, seekId: bigint): boolean;
  dropped(st: PartitionState, offset: number, seekId: bigint): void;
  resolved(st: PartitionState, next: number, seekId: bigint): void;
  commitPartitions(states: readonly PartitionState[]): Promise<GroupOffset[]>;
  ownedStates(): PartitionState[];
  pause(tps: readonly GroupTopicPartition[]): void;
  resume(tps: readonly GroupTopicPartition[]): void;
  onAssigned(partitions: GroupTopicPartition[]): void | Promise<void>;
  onRevoked(partitions: GroupTopicPartition[]): void | Promise<void>;
  revokedStates(partitions: readonly GroupTopicPartition[]): PartitionState[];
  forgetRevoked(partitions: readonly GroupTopicPartition[]): void;
  onCorrupt(st: PartitionState, report: CorruptBatchReport): Promise<void>;
  close(): Promise<void>;
}

type LaneItem = Extract<Item, { kind: "records" | "corrupt" }>;

interface Lane {
  readonly st: PartitionState;
  queue: LaneItem[];
  /** The lane's run, while it runs. */
  running: Promise<void> | null;
  waiting: boolean;
}

type Policy = "message" | "batch" | "interval" | "manual";

/** Drives `host` with the handlers of `options` until it is closed or a handler fails. */
export async function runConsumer(host: RunHost, options: RunOptions<unknown, unknown>): Promise<void> {
  const { eachMessage, eachBatch } = options;
  if ((eachMessage === undefined) === (eachBatch === undefined))
    throw new RillError(Errors.INVALID_ARGUMENT, "run: give exactly one of eachMessage and eachBatch");
  if (typeof (eachMessage ?? eachBatch) !== "function")
    throw new RillError(Errors.INVALID_ARGUMENT, `run: ${eachMessage !== undefined ? "eachMessage" : "eachBatch"} must be a function`);
  const concurrency = checkInt(options.partitionsConsumedConcurrently ?? 1, "partitionsConsumedConcurrently", 1, 1000);
  const policy: Policy = checkChoice(options.commit ?? (host.autoCommit ? "interval" : "manual"), "commit", [
    "message",
    "batch",
    "interval",
    "manual",
  ]);
  const autoResolve = options.eachBatchAutoResolve ?? true;
  host.setAutoCommit(policy === "interval");

  let stopped = false;
  let failure: { error: unknown } | null = null;
  const halt = (): boolean => stopped || failure !== null;
  const lanes = new Map<PartitionState, Lane>();
  const waiting: Lane[] = [];
  let active = 0;

  const tpOf = (st: PartitionState): GroupTopicPartition => ({ topic: st.topic, partition: st.partition });
  /** A commit after a record or batch; refused for a partition no longer ours: the next owner has it. */
  const commitAfter = async (st: PartitionState, seekId: bigint): Promise<void> => {
    try {
      await host.commitPartitions([st]);
    } catch (e) {
      if (host.usable(st, seekId)) throw e;
    }
  };
  const helpers = (st: PartitionState, seekId: bigint): PayloadHelpers => ({
    pause: () => {
      host.pause([tpOf(st)]);
      return () => host.resume([tpOf(st)]);
    },
    isRunning: () => !halt(),
    isStale: () => !host.usable(st, seekId),
  });

  const eachMessageBatch = async (st: PartitionState, seekId: bigint, messages: GroupRecord<unknown, unknown>[]): Promise<void> => {
    const base = helpers(st, seekId);
    for (const message of messages) {
      if (halt() || !host.usable(st, seekId)) {
        host.dropped(st, message.offset, seekId);
        break; // what was resolved is still committed below ("batch")
      }
      await eachMessage!({ ...base, topic: st.topic, partition: st.partition, message });
      host.resolved(st, message.offset + 1, seekId);
      if (policy === "message") await commitAfter(st, seekId);
    }
    if (policy === "batch") await commitAfter(st, seekId);
  };

  const eachBatchOf = async (
    st: PartitionState,
    seekId: bigint,
    first: number,
    messages: GroupRecord<unknown, unknown>[],
  ): Promise<void> => {
    const last = messages.length > 0 ? messages[messages.length - 1]!.offset : -1;
    const highWatermark = st.highWatermark;
    await eachBatch!({
      ...helpers(st, seekId),
      batch: {
        topic: st.topic,
        partition: st.partition,
        highWatermark,
        messages,
        firstOffset: () => (messages.length > 0 ? messages[0]!.offset : null),
        lastOffset: () => last,
        offsetLag: () => Math.max(0, highWatermark - (last + 1)),
      },
      resolveOffset: (offset) => host.resolved(st, checkInt(offset, "resolveOffset: offset", 0, Number.MAX_SAFE_INTEGER) + 1, seekId),
      commitOffsetsIfNecessary: async () => {
        await commitAfter(st, seekId);
      },
    });
    if (autoResolve && last >= 0) host.resolved(st, last + 1, seekId);
    if (st.processed < last + 1) host.dropped(st, Math.max(first, st.processed), seekId);
    if (policy === "message" || policy === "batch") await commitAfter(st, seekId);
  };

  const handle = async (item: LaneItem): Promise<void> => {
    if (item.kind === "corrupt") {
      await host.onCorrupt(item.st, item.report);
      return;
    }
    const { st, seekId } = item;
    if (!host.usable(st, seekId)) {
      host.dropped(st, Math.max(item.first, st.consumed), seekId);
      return;
    }
    // A record that does not deserialize fails the run, after the records before it are handled.
    const messages: GroupRecord<unknown, unknown>[] = [];
    let bad: { error: unknown } | null = null;
    try {
      for (let n = item.records.next(); n.done !== true; n = item.records.next()) {
        if (n.value.offset >= st.consumed) messages.push(n.value);
      }
    } catch (e) {
      bad = { error: e };
    }
    if (messages.length > 0 || bad === null) {
      if (eachMessage !== undefined) await eachMessageBatch(st, seekId, messages);
      else await eachBatchOf(st, seekId, item.first, messages);
    }
    if (bad !== null) throw bad.error;
  };

  const startLanes = (): void => {
    while (active < concurrency && waiting.length > 0 && !halt()) {
      const lane = waiting.shift()!;
      lane.waiting = false;
      runLane(lane);
    }
  };
  const runLane = (lane: Lane): void => {
    active++;
    lane.running = (async () => {
      while (lane.queue.length > 0 && !halt()) await handle(lane.queue.shift()!);
    })()
      .catch((e: unknown) => {
        failure ??= { error: e };
        host.wake();
      })
      .finally(() => {
        active--;
        lane.running = null;
        if (lane.queue.length > 0 && !halt()) {
          lane.waiting = true;
          waiting.push(lane);
        }
        startLanes();
        if (active === 0 && waiting.length === 0) host.idle();
      });
  };
  const enqueue = (item: LaneItem): void => {
    let lane = lanes.get(item.st);
    if (lane === undefined) {
      lane = { st: item.st, queue: [], running: null, waiting: false };
      lanes.set(item.st, lane);
    }
    lane.queue.push(item);
    if (lane.running === null && !lane.waiting) {
      lane.waiting = true;
      waiting.push(lane);
      startLanes();
    }
  };
  const drainLanes = async (states: readonly PartitionState[] | null): Promise<void> => {
    const chosen = states === null ? [...lanes.values()] : states.map((st) => lanes.get(st)).filter((l) => l !== undefined);
    for (const lane of chosen) {
      if (states !== null) {
        lane.queue = [];
        lanes.delete(lane.st);
        const i = waiting.indexOf(lane);
        if (i >= 0) waiting.splice(i, 1);
        lane.waiting = false;
      }
      await lane.running;
    }
  };
  const revoke = async (partitions: GroupTopicPartition[]): Promise<void> => {
    const states = host.revokedStates(partitions);
    await drainLanes(states);
    try {
      if (policy !== "manual") await host.commitPartitions(states).catch(() => undefined); // best effort
      await host.onRevoked(partitions);
    } finally {
      host.forgetRevoked(partitions);
    }
  };

  let lanesDone: (() => void) | null = null;
  const finished = new Promise<void>((resolve) => {
    lanesDone = resolve;
  });
  host.onStop(() => {
    stopped = true;
    host.wake();
    return finished;
  });
  try {
    for (;;) {
      const item = await host.nextItem(halt);
      if (item === null) break;
      if (item.kind === "records" || item.kind === "corrupt") enqueue(item);
      else if (item.kind === "assigned") await host.onAssigned(item.partitions);
      else await revoke(item.partitions);
    }
  } catch (e) {
    failure ??= { error: e };
  }
  // Let every lane finish the record or batch in hand; `lanes` may change while it waits.
  while ([...lanes.values()].some((l) => l.running !== null)) await drainLanes(null);
  // "message" and "batch" commit what was resolved last; "interval" does on close (after this).
  if (policy === "message" || policy === "batch" || (failure !== null && policy === "interval"))
    await host.commitPartitions(host.ownedStates()).catch(() => undefined);
  lanesDone!();
  if (failure === null) return;
  await host.close().catch(() => undefined);
  throw (failure as { error: unknown }).error;
}
