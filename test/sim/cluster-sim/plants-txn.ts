/**
 * Bugs planted in the transactional paths the cluster simulator's transactional workload runs
 * (txn-workload.ts), one for each of its checks that plants.ts's bugs 6-11 leave unshown:
 * `txn-fenced-write`, `txn-fenced-commit`, `txn-duplicate`, `txn-read-lost` and
 * `txn-offset-backwards`. Numbered after plants.ts's and plants-reassign.ts's (16-20). Each
 * replaces one method of a real class, for as long as it is planted, with a copy (20: a wrapper)
 * whose line marked "planted" is the bug; `plantTxnBug(n)` returns the function that puts the
 * real method back. They reach private members, so they are typed loosely on purpose.
 */
import { rillError } from "../../../src/base/errors.ts";
import type { GroupState } from "../../../src/coordinator/group-state.ts";
import { OffsetsManager } from "../../../src/coordinator/offsets-manager.ts";
import { TxnCoordinator } from "../../../src/coordinator/transactions/txn-coordinator.ts";
import type { TxnStateRecord } from "../../../src/coordinator/transactions/txn-records.ts";
import { readControlRecord } from "../../../src/protocol/control-record.ts";
import type { BatchHeader } from "../../../src/protocol/record-batch.ts";
import { PartitionLog } from "../../../src/storage/partition-log.ts";
import type { ProducerStateManager, SequencedBatch } from "../../../src/storage/producer-state.ts";

/** The planted transactional bugs, by number. */
export const TXN_PLANTED_BUGS: Readonly<Record<number, string>> = {
  16: "the produce gate checks a transactional id's producer epoch only while a transaction is open",
  17: "an EndTxn at an older epoch of the current producer id is taken for a retry of the last end",
  18: "the partition's sequence check skips transactional batches (a retried one is appended again)",
  19: "log recovery rebuilds the aborted-transaction index taking every marker for an ABORT",
  20: "FetchOffsets answers an offset pending in an open transaction (TxnOffsetCommit) over the committed one",
};

/** Replaces `proto[name]`; returns the function that restores it. */
function replace(proto: object, name: string, impl: unknown): () => void {
  const p = proto as Record<string, unknown>;
  const orig = p[name];
  if (typeof orig !== "function") throw new Error(`planted bug: ${name} is no longer a method; update plants-txn.ts`);
  p[name] = impl;
  return () => {
    p[name] = orig;
  };
}

/** TxnCoordinator's private members the planted copies use. */
interface TxnCoordPrivate {
  get(id: string): TxnStateRecord | undefined;
  current(id: string, producerId: number, producerEpoch: number): TxnStateRecord;
  join(
    m: TxnStateRecord,
    partitions: readonly { topic: string; partition: number }[],
    groups: readonly string[],
    v: 1 | 2,
    now: number,
  ): TxnStateRecord;
}

/** PartitionLog's private members the planted copies use. */
interface LogPrivate {
  producers: ProducerStateManager;
  stats: { duplicates: number };
  opts: { dir: string };
  indexAbort(seg: unknown, done: unknown): void;
}

/** Segment's members the planted copy of `replaySegment` uses. */
interface SegmentLike {
  positionOf(offset: number): number;
  headerAt(pos: number): BatchHeader | null;
  read(pos: number, size: number): Buffer;
}

/** OffsetsManager's private member the planted wrapper uses. */
interface OffsetsPrivate {
  groups: ReadonlyMap<string, GroupState>;
}

/** Whether `s` is a state with no open transaction (nothing joined). */
function idle(s: TxnStateRecord["state"]): boolean {
  return s === "Empty" || s === "CompleteCommit" || s === "CompleteAbort";
}

/** Plants transactional bug `n` (see TXN_PLANTED_BUGS); returns the function that reverts it. */
export function plantTxnBug(n: number): () => void {
  switch (n) {
    case 16:
      // A new instance's InitProducerId fenced the old one and left the id Empty at a newer
      // epoch: the old instance's next write joins a transaction under the new epoch.
      return replace(
        TxnCoordinator.prototype,
        "gate",
        function (
          this: TxnCoordPrivate,
          req: {
            transactionalId: string;
            producerId: number;
            producerEpoch: number;
            topic: string;
            partition: number;
            mode: "add" | "verify";
          },
          now: number,
        ) {
          const known = this.get(req.transactionalId);
          // planted: with no transaction open there is "nothing to fence": the producer id is checked, its epoch is not
          const m =
            known !== undefined && idle(known.state) && known.producerId === req.producerId
              ? known
              : this.current(req.transactionalId, req.producerId, req.producerEpoch);
          if (m.state === "Ongoing" && m.partitions.some((p) => p.topic === req.topic && p.partition === req.partition))
            return { records: [], response: undefined };
          if (req.mode === "verify")
            throw rillError(
              "INVALID_TXN_STATE",
              `${req.topic}-${req.partition}: the partition was not added to the transaction of "${req.transactionalId}" (AddPartitionsToTxn first)`,
            );
          return { records: [this.join(m, [{ topic: req.topic, partition: req.partition }], [], 2, now)], response: undefined };
        },
      );
    case 17:
      return replace(
        TxnCoordinator.prototype,
        "retryOfEnd",
        (m: TxnStateRecord, req: { producerId: number; producerEpoch: number; commit: boolean; bumpEpoch: boolean }): boolean => {
          // planted: TV2 bumps the epoch at every end, so an end at an older epoch of the current
          // producer id "can only be" a retry of the last one (the state and the exact epoch are
          // not checked; a fence bumps the epoch too)
          return req.bumpEpoch && req.producerId === m.producerId && req.producerEpoch < m.producerEpoch;
        },
      );
    case 18:
      return replace(PartitionLog.prototype, "checkSequences", function (this: LogPrivate, sequenced: Array<SequencedBatch | null>) {
        // planted: transactional batches left to the coordinator's gate (not checked here)
        const batches = sequenced.filter((b): b is SequencedBatch => b !== null && b.isTransactional !== true);
        if (batches.length === 0) return null;
        const checks = this.producers.checkAll(batches, this.opts.dir);
        const dups = checks.filter((c) => c.kind === "duplicate");
        if (dups.length === 0) return null;
        if (dups.length !== sequenced.length)
          throw rillError("OUT_OF_ORDER_SEQUENCE_NUMBER", "record_batch: a request mixes batches already written with new ones");
        const first = dups[0]!;
        const last = dups[dups.length - 1]!;
        this.stats.duplicates++;
        return {
          baseOffset: first.baseOffset,
          lastOffset: last.lastOffset,
          logAppendTimeMs: -1,
          recordCount: 0,
          bytes: 0,
          duplicate: true,
        };
      });
    case 19:
      return replace(
        PartitionLog.prototype,
        "replaySegment",
        function (this: LogPrivate, seg: SegmentLike, from: number, nowMs: number, indexAborts: boolean): void {
          for (let pos = seg.positionOf(from); ; ) {
            const h = seg.headerAt(pos);
            if (!h) break;
            if (h.baseOffset >= from) {
              if (!h.isControl) this.producers.replay(h, nowMs);
              else {
                const marker = readControlRecord(seg.read(pos, h.size), 0);
                // planted: the marker's type not looked at: every rebuilt end is an abort
                const done = marker === null ? null : this.producers.replayMarker(h, { ...marker, commit: false }, nowMs);
                if (indexAborts) this.indexAbort(seg, done);
              }
            }
            pos += h.size;
          }
        },
      );
    case 20: {
      const orig = OffsetsManager.prototype.fetchOffsets;
      return replace(
        OffsetsManager.prototype,
        "fetchOffsets",
        function (this: OffsetsPrivate, groupId: string, partitions: Parameters<OffsetsManager["fetchOffsets"]>[1]) {
          const answer = orig.call(this as unknown as OffsetsManager, groupId, partitions);
          const pending = [...(this.groups.get(groupId)?.txnOffsets.values() ?? [])];
          return answer.map((a) => {
            // planted: an offset pending in an open transaction is answered over the committed one
            const p = pending.find((t) => t.topic === a.topic && t.partition === a.partition);
            return p === undefined
              ? a
              : { ...a, offset: p.offset, metadata: p.metadata, leaderEpoch: p.leaderEpoch, commitTimestampMs: p.commitTimestampMs };
          });
        },
      );
    }
    default:
      throw new Error(`no planted transactional bug ${n}`);
  }
}
