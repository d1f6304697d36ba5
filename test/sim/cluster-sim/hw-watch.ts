/**
 * The omniscient observer's view of commitment: when a leader's high watermark passed each record
 * of the workload's topic. The checks excuse what min.insync.replicas (2) power losses after a
 * record was committed may take; for a record a consumer read (not an acknowledged acks=all
 * write) the client only knows when it read it, which may be after a power loss that came
 * after the commit (cluster-sim seed 42 with reassignments: offset 66 committed at 3,366 ms,
 * node 3 lost power at 3,372 ms, the record read after). The simulation sees the replicas, so it
 * dates the commit itself.
 *
 * It watches each partition log's `highWatermarkMoved` (called by `PartitionReplica`'s high
 * watermark setter, leader and follower alike) on the process's own LogManager instance (no
 * prototype is touched: other runs in the same process are not affected) and, when the replica is
 * the leader, reads the records its high watermark just passed (`DatedBatches`: a batch passed
 * before is not decoded again).
 */
import { forEachRecord } from "./history.ts";
import type { PartitionReplica } from "../../../src/replication/partition-replica.ts";
import type { LogManager } from "../../../src/storage/log-manager.ts";
import type { PartitionLog } from "../../../src/storage/partition-log.ts";

/** Told of every record of `topic` a leader's high watermark passed: its partition, offset and value. */
export type OnCommitted = (partition: number, offset: number, value: string) => void;

/**
 * The batches whose every record was told to `OnCommitted` already, by partition: base offset →
 * the batch's CRC (which covers its records, their offset deltas and values). A leader's high
 * watermark passing such a batch again (a restarted leader's starts at 0, so its first move passes
 * its whole log) would tell nothing new — the same offsets and values, later — and its records
 * are not decoded again. One per run, shared by every node's watch. A batch at the same base
 * offset with another CRC (the log lost it and holds another since) is decoded.
 */
export class DatedBatches {
  private readonly byPartition = new Map<number, Map<number, number>>();

  has(partition: number, baseOffset: number, crc: number): boolean {
    return this.byPartition.get(partition)?.get(baseOffset) === crc;
  }

  add(partition: number, baseOffset: number, crc: number): void {
    let m = this.byPartition.get(partition);
    if (m === undefined) this.byPartition.set(partition, (m = new Map()));
    m.set(baseOffset, crc);
  }
}

/**
 * Tells `onCommitted` every record of `log` in [from, to), in offset order, but for the batches
 * `dated` holds (wholly inside the range: the others are decoded); adds the batches wholly inside
 * to `dated`.
 */
function tellRecords(log: PartitionLog, partition: number, from: number, to: number, dated: DatedBatches, onCommitted: OnCommitted): void {
  forEachRecord(
    log,
    from,
    to,
    (offset, value) => {
      onCommitted(partition, offset, value);
      return true;
    },
    (base, crc) => {
      if (dated.has(partition, base, crc)) return false;
      dated.add(partition, base, crc);
      return true;
    },
  );
}

/**
 * Watches the logs of `topic` that `logs` holds or creates from now on; `replica(partition)` is
 * this process's replica of it (its role and leader epoch say whether a move is a leader's).
 */
export function watchHighWatermarks(
  logs: LogManager,
  topic: string,
  replica: (partition: number) => PartitionReplica | undefined,
  onCommitted: OnCommitted,
  dated: DatedBatches = new DatedBatches(),
): void {
  const watched = new WeakSet<PartitionLog>();
  const watch = (partition: number, log: PartitionLog): void => {
    if (watched.has(log)) return;
    watched.add(log);
    const moved = log.highWatermarkMoved.bind(log);
    // The high watermark at the last move (any role), and the leader epoch of the last leader move.
    let prev = 0;
    let leaderEpoch = -1;
    log.highWatermarkMoved = (hw: number): void => {
      moved(hw);
      const r = replica(partition);
      if (r?.role === "leader") {
        // A follower's log cut below its high watermark lowers it without a move (clampHwToLog):
        // a new leader epoch starts no higher than where the epoch's records begin. Below its
        // own high watermark a replica holds what its leader committed (already dated there).
        const from = Math.max(log.logStartOffset, r.leaderEpoch === leaderEpoch ? prev : Math.min(prev, r.epochStartOffset));
        leaderEpoch = r.leaderEpoch;
        if (from < hw) tellRecords(log, partition, from, hw, dated, onCommitted);
      }
      prev = hw;
    };
  };
  for (const { tp, log } of logs.all()) if (tp.topic === topic) watch(tp.partition, log);
  const create = logs.create.bind(logs);
  logs.create = (t, partition, config) => {
    const log = create(t, partition, config);
    if (t === topic) watch(partition, log);
    return log;
  };
}
