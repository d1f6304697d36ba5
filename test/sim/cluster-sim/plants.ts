/**
 * Bugs planted in the real modules, to show the cluster simulator's checkers catch them (issue 19,
 * "What it must show"). Each replaces one method of a real class for as long as it is planted;
 * `plantBug(n)` returns the function that puts the real method back. Used by the cluster-sim
 * test (each must be caught within the CI seed budget) and by `npm run sim -- --cluster --plant N`.
 *
 * The planted methods are copies of the real ones with the one line that makes the bug changed
 * (marked "planted"): they reach private members, so they are typed loosely on purpose.
 */
import { rillError } from "../../../src/base/errors.ts";
import { GroupRuntime, OFFSETS_TOPIC } from "../../../src/coordinator/group-runtime.ts";
import { fromKeyValue, type GroupRecord } from "../../../src/coordinator/records.ts";
import { HEADER_SIZE, readBatchHeader, records as recordCursor } from "../../../src/protocol/record-batch.ts";
import { type IsrChange, PartitionReplica } from "../../../src/replication/partition-replica.ts";
import type { HwPurgatory } from "../../../src/replication/hw-purgatory.ts";
import { type FetchPosition, ReplicaManager } from "../../../src/replication/replica-manager.ts";
import type { TxnMarker } from "../../../src/service/transactions.ts";
import { ProduceHandler } from "../../../src/service/produce.ts";
import { ProduceAcks, type ProduceInput } from "../../../src/service/produce-types.ts";
import { PartitionLog } from "../../../src/storage/partition-log.ts";
import { TXN_SIM_TOPIC } from "./txn-workload.ts";
import { plantReassignBug, REASSIGN_PLANTED_BUGS } from "./plants-reassign.ts";
import { plantTxnBug, TXN_PLANTED_BUGS } from "./plants-txn.ts";

/** The planted bugs, by number. */
export const PLANTED_BUGS: Readonly<Record<number, string>> = {
  1: "high watermark as the max over the ISR instead of the min",
  2: "a follower that skips truncation on a leader change",
  3: "acks=all answered before the ISR check (min.insync.replicas ignored)",
  4: "an ISR expansion that admits a follower behind the leader epoch's start",
  5: "a group coordinator that replays committed offsets out of order when it loads a shard",
  6: "an ABORT marker written to one partition of a committed transaction (sim-txn-1)",
  7: "READ_COMMITTED reads up to the high watermark (the last stable offset ignored)",
  8: "READ_COMMITTED answered without the aborted transactions (the index ignored)",
  9: "a transaction counts as ended once its marker is appended, before the marker is replicated",
  10: "transactional writes acknowledged once the leader holds them (acks=all taken as acks=leader)",
  11: "a group coordinator that takes a transaction's COMMIT marker as ABORT and ABORT as COMMIT for its pending offsets",
  ...REASSIGN_PLANTED_BUGS,
  ...TXN_PLANTED_BUGS,
};

/** Replaces `proto[name]`; returns the function that restores it. */
function replace(proto: object, name: string, impl: unknown): () => void {
  const p = proto as Record<string, unknown>;
  const orig = p[name];
  if (typeof orig !== "function") throw new Error(`planted bug: ${name} is no longer a method; update plants.ts`);
  p[name] = impl;
  return () => {
    p[name] = orig;
  };
}

/** ReplicaManager's private members the planted copies use. */
interface RmPrivate {
  hwWaiters: HwPurgatory<PartitionReplica>;
}

/** PartitionReplica's private members the planted copies use. */
interface PrPrivate {
  nodeId: number;
  followers: Map<number, { leo: number; lastCaughtUpMs: number; brokerEpoch: number }>;
}

/** Plants bug `n` (see PLANTED_BUGS); returns the function that reverts it. */
export function plantBug(n: number): () => void {
  switch (n) {
    case 1:
      return replace(PartitionReplica.prototype, "maybeAdvanceHw", function (this: PartitionReplica): boolean {
        if (this.role !== "leader") return false;
        const hw = this.log.logEndOffset; // planted: ignores the followers
        if (hw > this.hw) {
          this.hw = hw;
          return true;
        }
        return false;
      });
    case 2:
      return replace(ReplicaManager.prototype, "truncateFollower", () => {});
    case 3: {
      // The leader takes acks=all writes with an ISR below min.insync.replicas, moves its high
      // watermark with that ISR (no strict min ISR) and answers them once that ISR holds them.
      const origAppend = ReplicaManager.prototype.append;
      const undoAppend = replace(
        ReplicaManager.prototype,
        "append",
        function (this: ReplicaManager, ...a: Parameters<ReplicaManager["append"]>) {
          const [topic, partition, batches, acks, checks] = a;
          return origAppend.call(this, topic, partition, batches, acks === "all" ? "leader" : acks, checks); // planted
        },
      );
      const undoHw = replace(PartitionReplica.prototype, "maybeAdvanceHw", function (this: PartitionReplica): boolean {
        if (this.role !== "leader") return false;
        // planted: no `this.isr.length < min.insync.replicas` check
        let hw = this.log.logEndOffset;
        for (const r of this.isr) {
          if (r === (this as unknown as PrPrivate).nodeId) continue;
          const f = (this as unknown as PrPrivate).followers.get(r);
          hw = Math.min(hw, f ? Math.max(f.leo, 0) : 0);
        }
        if (hw > this.hw) {
          this.hw = hw;
          return true;
        }
        return false;
      });
      const undoCheck = replace(ReplicaManager.prototype, "checkHwWaiters", function (this: RmPrivate, r: PartitionReplica): void {
        if (!this.hwWaiters.has(r)) return;
        this.hwWaiters.complete(
          r,
          { leading: r.role === "leader", hw: r.hw, isrSize: Number.MAX_SAFE_INTEGER }, // planted: no check of the ISR's size
          () => rillError("REQUEST_TIMED_OUT", `${r.topic}-${r.partition}: leadership moved`),
          () => rillError("NOT_ENOUGH_REPLICAS_AFTER_APPEND", `${r.topic}-${r.partition}: the ISR shrank`),
        );
      });
      return () => {
        undoAppend();
        undoHw();
        undoCheck();
      };
    }
    case 4:
      return replace(
        PartitionReplica.prototype,
        "wantedIsrChange",
        function (
          this: PartitionReplica,
          nowMs: number,
          lagMaxMs: number,
          eligible: (nodeId: number, brokerEpoch: number) => boolean,
        ): IsrChange | null {
          const self = this as unknown as PrPrivate;
          if (this.role !== "leader" || this.isrChangeInFlight) return null;
          const next = new Set(this.isr);
          for (const r of this.isr) {
            if (r === self.nodeId) continue;
            const f = self.followers.get(r);
            if (!f || nowMs - f.lastCaughtUpMs > lagMaxMs) next.delete(r);
          }
          for (const [r, f] of self.followers) {
            if (next.has(r) || !eligible(r, f.brokerEpoch)) continue;
            // planted: no `f.leo >= this.epochStartOffset`
            if (f.leo >= this.hw && nowMs - f.lastCaughtUpMs <= lagMaxMs) next.add(r);
          }
          if (next.size === this.isr.length && [...next].every((r) => this.isr.includes(r))) return null;
          const ordered = this.replicas.filter((r) => next.has(r));
          return {
            topic: this.topic,
            partition: this.partition,
            leaderEpoch: this.leaderEpoch,
            partitionEpoch: this.partitionEpoch,
            newIsr: ordered,
            newIsrBrokerEpochs: ordered.map((id) => (this.isr.includes(id) ? -1 : (self.followers.get(id)?.brokerEpoch ?? -1))),
          };
        },
      );
    case 5:
      return replace(
        GroupRuntime.prototype,
        "load",
        function (this: { rm: ReplicaManager; shards: Map<number, unknown>; newShard(): { replay(r: GroupRecord): void } }, p: number) {
          const shard = this.newShard();
          const log = this.rm.leaderLog(OFFSETS_TOPIC, p);
          const offsets: GroupRecord[] = [];
          let offset = log.logStartOffset;
          while (offset < log.logEndOffset) {
            const r = log.read(offset, 4 << 20);
            if (r.bytes === 0) break;
            for (const chunk of r.chunks) {
              for (let pos = 0; pos + HEADER_SIZE <= chunk.length; ) {
                const h = readBatchHeader(chunk, pos);
                if (h.isControl) {
                  pos += h.size;
                  continue;
                }
                const c = recordCursor(chunk, pos);
                while (c.next()) {
                  if (c.offset < offset || c.keyLength < 0) continue;
                  const rec = fromKeyValue(c.keyString()!, c.value());
                  if (rec.type === "offset") offsets.push(rec);
                  else shard.replay(rec);
                }
                pos += h.size;
              }
            }
            offset = r.nextOffset;
          }
          // planted: the offsets last, newest first (the oldest commit of a partition wins)
          for (const rec of offsets.reverse()) shard.replay(rec);
          this.shards.set(p, shard);
        },
      );
    case 6: {
      const orig = ReplicaManager.prototype.writeTxnMarker;
      return replace(
        ReplicaManager.prototype,
        "writeTxnMarker",
        function (this: ReplicaManager, topic: string, partition: number, marker: TxnMarker, timeoutMs?: number) {
          const m = topic === TXN_SIM_TOPIC && partition === 1 ? { ...marker, commit: false } : marker; // planted
          return orig.call(this, topic, partition, m, timeoutMs);
        },
      );
    }
    case 7:
    case 8: {
      const orig = ReplicaManager.prototype.readPartition;
      return replace(ReplicaManager.prototype, "readPartition", function (this: ReplicaManager, pos: FetchPosition, alloc?: unknown) {
        const d = orig.call(this, pos, alloc as Parameters<ReplicaManager["readPartition"]>[1]);
        if (pos.readCommitted !== true || d.error !== null || d.read === null) return d;
        if (n === 8) return { ...d, abortedTransactions: null }; // planted
        // planted: the read goes up to the high watermark; the answer still names the LSO
        const log = (this as unknown as { readLog(t: string, p: number): PartitionLog }).readLog(pos.topic, pos.partition);
        return { ...d, read: log.read(pos.offset, pos.maxBytes, d.highWatermark) };
      });
    }
    case 9:
      return replace(PartitionLog.prototype, "firstUnstableOffsetAt", function (this: unknown): number | null {
        return (this as { producers: { firstUnstableOffset: number | null } }).producers.firstUnstableOffset; // planted: unreplicated markers ignored
      });
    case 10: {
      const proto = ProduceHandler.prototype as unknown as { acknowledge(input: ProduceInput, appended: unknown): Promise<unknown> };
      const orig = proto.acknowledge;
      return replace(proto, "acknowledge", function (this: unknown, input: ProduceInput, appended: unknown) {
        const acks = input.transactionalId && input.acks === ProduceAcks.ALL ? ProduceAcks.LEADER : input.acks; // planted
        return orig.call(this, { ...input, acks }, appended);
      });
    }
    case 11: {
      const orig = GroupRuntime.prototype.completeTxnOffsets;
      return replace(
        GroupRuntime.prototype,
        "completeTxnOffsets",
        function (this: GroupRuntime, p: number, producerId: number, commit: boolean) {
          return orig.call(this, p, producerId, !commit); // planted
        },
      );
    }
    default:
      if (n in REASSIGN_PLANTED_BUGS) return plantReassignBug(n);
      if (n in TXN_PLANTED_BUGS) return plantTxnBug(n);
      throw new Error(`no planted bug ${n} (planted bugs: ${Object.keys(PLANTED_BUGS).join(", ")})`);
  }
}
