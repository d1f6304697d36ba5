import { describe, expect, it } from "vitest";
import { ManualClock } from "../../../src/base/clock.ts";
import { defaultTopicConfig } from "../../../src/config/schema.ts";
import { PartitionReplica } from "../../../src/replication/partition-replica.ts";
import { MemoryFileSystem } from "../../../src/storage/fs.ts";
import { PartitionLog } from "../../../src/storage/partition-log.ts";
import { encodeBatch } from "../../../src/protocol/record-batch.ts";

function newLog(fs = new MemoryFileSystem(), dir = "/p"): PartitionLog {
  return PartitionLog.open({ fs, dir, clock: new ManualClock(0), config: { ...defaultTopicConfig }, tailCacheBytes: 0, recover: true });
}

const batch = (n: number): Buffer =>
  encodeBatch(
    Array.from({ length: n }, (_, i) => ({ key: null, value: Buffer.from(`v${i}`), timestampMs: 1 })),
    { nowMs: 1 },
  );

describe("PartitionReplica (leader bookkeeping)", () => {
  it("the high watermark is the smallest log end over the ISR and never goes back", () => {
    const log = newLog();
    const r = new PartitionReplica("t", 0, log, 1);
    expect(r.update({ leader: 1, leaderEpoch: 0, partitionEpoch: 0, replicas: [1, 2, 3], isr: [1, 2, 3] }, 0)).toBe("leader");
    log.append(batch(10), 0);
    expect(r.maybeAdvanceHw()).toBe(false); // followers have fetched nothing
    expect(r.hw).toBe(0);
    expect(r.onFollowerFetch(2, 10, 1)).toBe(false); // 3 still at 0
    expect(r.onFollowerFetch(3, 4, 1)).toBe(true);
    expect(r.hw).toBe(4);
    r.onFollowerFetch(3, 10, 2);
    expect(r.hw).toBe(10);
    // A follower asking again from an older offset (a retry) does not move the HW back.
    r.onFollowerFetch(3, 2, 3);
    expect(r.hw).toBe(10);
  });

  it("a shrunken ISR lets the high watermark pass a dead follower", () => {
    const log = newLog();
    const r = new PartitionReplica("t", 0, log, 1);
    r.update({ leader: 1, leaderEpoch: 0, partitionEpoch: 0, replicas: [1, 2, 3], isr: [1, 2, 3] }, 0);
    log.append(batch(5), 0);
    r.onFollowerFetch(2, 5, 1);
    expect(r.hw).toBe(0);
    expect(r.update({ leader: 1, leaderEpoch: 0, partitionEpoch: 1, replicas: [1, 2, 3], isr: [1, 2] }, 2)).toBe("isr");
    expect(r.hw).toBe(5);
  });

  it("asks to drop a follower that lags longer than replica.lag.time.max.ms, and to re-add it once caught up", () => {
    const log = newLog();
    const r = new PartitionReplica("t", 0, log, 1);
    r.update({ leader: 1, leaderEpoch: 3, partitionEpoch: 7, replicas: [1, 2, 3], isr: [1, 2, 3] }, 0);
    log.append(batch(5), 3);
    r.onFollowerFetch(2, 5, 100);
    r.onFollowerFetch(3, 0, 100); // behind
    expect(r.wantedIsrChange(500, 1000, () => true)).toBeNull();
    r.onFollowerFetch(2, 5, 1150); // 2 keeps fetching at the end (a long-poll round)
    const shrink = r.wantedIsrChange(1200, 1000, () => true)!;
    expect(shrink).toEqual({ topic: "t", partition: 0, leaderEpoch: 3, partitionEpoch: 7, newIsr: [1, 2], newIsrBrokerEpochs: [-1, -1] });
    r.isrChangeInFlight = true;
    expect(r.wantedIsrChange(1300, 1000, () => true)).toBeNull(); // one change at a time
    r.update({ leader: 1, leaderEpoch: 3, partitionEpoch: 8, replicas: [1, 2, 3], isr: [1, 2] }, 1300);
    expect(r.hw).toBe(5);
    r.onFollowerFetch(3, 5, 1400); // caught up
    expect(r.wantedIsrChange(1400, 1000, () => false)).toBeNull(); // not eligible (fenced)
    expect(r.wantedIsrChange(1400, 1000, () => true)!.newIsr).toEqual([1, 2, 3]);
  });

  it("holds the high watermark while the ISR is smaller than min.insync.replicas (strict min ISR)", () => {
    const log = PartitionLog.open({
      fs: new MemoryFileSystem(),
      dir: "/p",
      clock: new ManualClock(0),
      config: { ...defaultTopicConfig, minInsyncReplicas: 2 },
      tailCacheBytes: 0,
      recover: true,
    });
    const r = new PartitionReplica("t", 0, log, 1);
    r.update({ leader: 1, leaderEpoch: 0, partitionEpoch: 0, replicas: [1, 2, 3], isr: [1, 2, 3] }, 0);
    log.append(batch(5), 0);
    r.onFollowerFetch(2, 5, 1);
    r.onFollowerFetch(3, 3, 1);
    expect(r.hw).toBe(3);
    // 3 leaves: the ISR {1, 2} still holds min.insync.replicas, and both have 5.
    expect(r.update({ leader: 1, leaderEpoch: 0, partitionEpoch: 1, replicas: [1, 2, 3], isr: [1, 2] }, 2)).toBe("isr");
    expect(r.hw).toBe(5);
    // The leader alone: what it appends now is on one replica only and is not committed.
    r.update({ leader: 1, leaderEpoch: 0, partitionEpoch: 2, replicas: [1, 2, 3], isr: [1] }, 3);
    log.append(batch(4), 0);
    expect(r.maybeAdvanceHw()).toBe(false);
    expect(r.hw).toBe(5);
    r.onFollowerFetch(2, 9, 4); // a follower out of the ISR does not count either
    expect(r.hw).toBe(5);
    r.update({ leader: 1, leaderEpoch: 0, partitionEpoch: 3, replicas: [1, 2, 3], isr: [1, 2] }, 5);
    expect(r.hw).toBe(9);
  });

  it("a new leader starts its epoch at its log end and keeps the high watermark it knew", () => {
    const log = newLog();
    const r = new PartitionReplica("t", 0, log, 2);
    expect(r.update({ leader: 1, leaderEpoch: 0, partitionEpoch: 0, replicas: [1, 2], isr: [1, 2] }, 0)).toBe("follower");
    log.appendWithOffsets(Buffer.from(batch(4)));
    r.hw = 3;
    expect(r.update({ leader: 2, leaderEpoch: 1, partitionEpoch: 1, replicas: [1, 2], isr: [2] }, 10)).toBe("leader");
    expect(r.epochStartOffset).toBe(4);
    expect(r.hw).toBe(4); // ISR is only itself
    expect(r.hwKnown).toBe(true);
  });

  it("a new leader knows its high watermark only once the ISR has fetched up to its epoch's start (KIP-207)", () => {
    const log = newLog();
    const r = new PartitionReplica("t", 0, log, 2);
    r.update({ leader: 1, leaderEpoch: 0, partitionEpoch: 0, replicas: [1, 2, 3], isr: [1, 2, 3] }, 0);
    log.appendWithOffsets(Buffer.from(batch(10)));
    r.hw = 6; // the old leader had 10 already; this follower learned only 6
    expect(r.hwKnown).toBe(true); // a follower's is its leader's, only forward
    r.update({ leader: 2, leaderEpoch: 1, partitionEpoch: 1, replicas: [1, 2, 3], isr: [2, 3] }, 10);
    expect([r.role, r.epochStartOffset, r.hw, r.hwKnown]).toEqual(["leader", 10, 6, false]);
    log.append(batch(2), 1); // appends of the new epoch do not make it known
    expect(r.hwKnown).toBe(false);
    r.onFollowerFetch(3, 10, 11); // an idle follower's fetch at its log end
    expect([r.hw, r.hwKnown]).toEqual([10, true]);
    r.onFollowerFetch(3, 12, 12);
    expect([r.hw, r.hwKnown]).toEqual([12, true]);
    // The same leader elected again (a new epoch) starts over from its log end.
    r.update({ leader: 1, leaderEpoch: 2, partitionEpoch: 2, replicas: [1, 2, 3], isr: [1, 2, 3] }, 13);
    expect(r.hwKnown).toBe(true);
    log.appendWithOffsets(
      Buffer.from(
        encodeBatch([{ key: null, value: Buffer.from("x"), timestampMs: 1 }], { nowMs: 1, baseOffset: 12, partitionLeaderEpoch: 2 }),
      ),
    );
    r.update({ leader: 2, leaderEpoch: 3, partitionEpoch: 3, replicas: [1, 2, 3], isr: [1, 2, 3] }, 14);
    expect([r.epochStartOffset, r.hw, r.hwKnown]).toEqual([13, 12, false]);
  });
});

describe("PartitionReplica broker epochs (KIP-903)", () => {
  it("a follower's progress is its registration's: a new broker epoch starts it over, and a stale one is forgotten", () => {
    const log = newLog();
    const r = new PartitionReplica("t", 0, log, 1);
    r.update({ leader: 1, leaderEpoch: 0, partitionEpoch: 0, replicas: [1, 2, 3], isr: [1, 2, 3] }, 0);
    log.append(batch(10), 0);
    r.onFollowerFetch(2, 10, 1, 40);
    r.onFollowerFetch(3, 10, 1, 50);
    expect(r.hw).toBe(10);
    log.append(batch(5), 0);
    r.onFollowerFetch(2, 15, 2, 40);
    // Broker 3 registered again (epoch 60): what its epoch-50 process fetched no longer counts.
    r.dropStaleFollowers((id) => (id === 3 ? 60 : 40));
    expect(r.followers.get(3)).toMatchObject({ leo: -1, brokerEpoch: -1, lastCaughtUpMs: 1 });
    expect(r.followers.get(2)).toMatchObject({ leo: 15, brokerEpoch: 40 });
    expect(r.maybeAdvanceHw()).toBe(false);
    expect(r.hw).toBe(10); // 3 holds it back until it fetches again as epoch 60
    expect(r.onFollowerFetch(3, 15, 3, 60)).toBe(true);
    expect(r.hw).toBe(15);
    // A fetch under another epoch than the recorded one starts the follower's progress over.
    log.append(batch(5), 0);
    r.onFollowerFetch(2, 20, 4, 40);
    r.onFollowerFetch(3, 12, 4, 70);
    expect(r.followers.get(3)).toMatchObject({ leo: 12, brokerEpoch: 70, leaderLeoAtLastFetch: 20 });
    expect(r.hw).toBe(15);
  });

  it("proposes a caught-up follower for the ISR with the broker epoch its fetches carried", () => {
    const log = newLog();
    const r = new PartitionReplica("t", 0, log, 1);
    r.update({ leader: 1, leaderEpoch: 0, partitionEpoch: 0, replicas: [1, 2], isr: [1] }, 0);
    log.append(batch(5), 0);
    r.onFollowerFetch(2, 5, 10, 7);
    const seen: Array<[number, number]> = [];
    const eligible = (id: number, brokerEpoch: number): boolean => {
      seen.push([id, brokerEpoch]);
      return brokerEpoch === 9; // the image says broker 2 registered again as epoch 9
    };
    expect(r.wantedIsrChange(10, 1000, eligible)).toBeNull();
    expect(seen).toEqual([[2, 7]]);
    r.onFollowerFetch(2, 5, 20, 9);
    expect(r.wantedIsrChange(20, 1000, eligible)).toMatchObject({ newIsr: [1, 2], newIsrBrokerEpochs: [-1, 9] });
  });
});

describe("leader epoch cache", () => {
  it("records where each epoch starts, answers end offsets, is cut by truncation and survives a reopen", () => {
    const fs = new MemoryFileSystem();
    const log = newLog(fs);
    log.append(batch(3), 0); // 0..2 epoch 0
    log.append(batch(2), 2); // 3..4 epoch 2
    log.append(batch(2), 2); // 5..6
    log.append(batch(1), 5); // 7 epoch 5
    expect(log.leaderEpochs).toEqual([
      { epoch: 0, startOffset: 0 },
      { epoch: 2, startOffset: 3 },
      { epoch: 5, startOffset: 7 },
    ]);
    expect(log.endOffsetForEpoch(0)).toEqual({ epoch: 0, endOffset: 3 });
    expect(log.endOffsetForEpoch(1)).toEqual({ epoch: 0, endOffset: 3 }); // the largest epoch at or below
    expect(log.endOffsetForEpoch(2)).toEqual({ epoch: 2, endOffset: 7 });
    expect(log.endOffsetForEpoch(9)).toEqual({ epoch: 5, endOffset: 8 });
    expect(log.endOffsetForEpoch(-1)).toEqual({ epoch: -1, endOffset: -1 });
    log.truncateTo(5);
    expect(log.leaderEpochs).toEqual([
      { epoch: 0, startOffset: 0 },
      { epoch: 2, startOffset: 3 },
    ]);
    expect(log.latestEpoch).toBe(2);
    const again = newLog(fs);
    expect(again.leaderEpochs).toEqual([
      { epoch: 0, startOffset: 0 },
      { epoch: 2, startOffset: 3 },
    ]);
  });

  it("is rebuilt from the batches' leader epochs when its file is missing or corrupt", () => {
    const fs = new MemoryFileSystem();
    const log = newLog(fs);
    log.append(batch(2), 1);
    log.append(batch(2), 4);
    fs.writeFileAtomic("/p/leader-epoch-checkpoint", Buffer.from("garbage"));
    expect(newLog(fs).leaderEpochs).toEqual([
      { epoch: 1, startOffset: 0 },
      { epoch: 4, startOffset: 2 },
    ]);
    fs.rm("/p/leader-epoch-checkpoint");
    expect(newLog(fs).leaderEpochs).toEqual([
      { epoch: 1, startOffset: 0 },
      { epoch: 4, startOffset: 2 },
    ]);
  });

  it("a follower's appends carry the leader's epochs", () => {
    const leader = newLog(new MemoryFileSystem());
    const b1 = batch(2);
    leader.append(b1, 3);
    const b2 = batch(1);
    leader.append(b2, 6);
    const follower = newLog(new MemoryFileSystem());
    follower.appendWithOffsets(Buffer.concat([b1, b2]));
    expect(follower.leaderEpochs).toEqual(leader.leaderEpochs);
  });

  it("a follower restarts its log at the leader's log start when retention deleted what it never had", () => {
    const fs = new MemoryFileSystem();
    const leader = newLog(new MemoryFileSystem(), "/l");
    const batches: Buffer[] = [];
    for (let i = 0; i < 5; i++) {
      const b = batch(2);
      leader.append(b, 1);
      batches.push(b);
    }
    const follower = newLog(fs);
    follower.appendWithOffsets(Buffer.from(batches[0]!)); // 0..1
    follower.truncateFullyAndStartAt(6);
    expect([follower.logStartOffset, follower.logEndOffset, follower.leaderEpochs.length]).toEqual([6, 6, 0]);
    follower.appendWithOffsets(Buffer.concat(batches.slice(3))); // 6..9
    expect([follower.logStartOffset, follower.logEndOffset]).toEqual([6, 10]);
    expect(() => follower.read(0, 1 << 20)).toThrow(/outside the log/);
    expect(follower.read(6, 1 << 20).bytes).toBe(Buffer.concat(batches.slice(3)).length);
    const again = newLog(fs);
    expect([again.logStartOffset, again.logEndOffset]).toEqual([6, 10]);
    expect(again.leaderEpochs).toEqual([{ epoch: 1, startOffset: 6 }]);
  });
});

describe("PartitionReplica (reassignment, issue 21)", () => {
  it("a replica added under the same leader epoch gets a follower entry, and one removed loses it", () => {
    const log = newLog();
    const r = new PartitionReplica("t", 0, log, 1);
    r.update({ leader: 1, leaderEpoch: 0, partitionEpoch: 0, replicas: [1, 2], isr: [1, 2] }, 0);
    log.append(batch(5), 0);
    r.onFollowerFetch(2, 5, 1);
    expect(r.update({ leader: 1, leaderEpoch: 0, partitionEpoch: 1, replicas: [3, 2, 1], isr: [1, 2] }, 2)).toBe("isr");
    expect([...r.followers.keys()].sort()).toEqual([2, 3]);
    r.onFollowerFetch(3, 5, 3);
    expect(r.wantedIsrChange(4, 1000, () => true)?.newIsr).toEqual([3, 2, 1]); // in replica order
    r.update({ leader: 1, leaderEpoch: 0, partitionEpoch: 2, replicas: [3, 1], isr: [3, 1] }, 5);
    expect([...r.followers.keys()]).toEqual([3]);
  });

  it("a proposal whose outcome is unknown stays pending and is asked again unchanged until the metadata settles it", () => {
    const log = newLog();
    const r = new PartitionReplica("t", 0, log, 1);
    r.update({ leader: 1, leaderEpoch: 0, partitionEpoch: 0, replicas: [3, 2, 1], isr: [1, 2] }, 0);
    log.append(batch(5), 0);
    r.onFollowerFetch(2, 5, 1);
    r.onFollowerFetch(3, 5, 1);
    const first = r.wantedIsrChange(2, 1000, () => true);
    expect(first?.newIsr).toEqual([3, 2, 1]);
    // The call failed (the controller may have committed it): 3 stays pending, and the same
    // change is asked again even though 3 has fallen behind since and 2 has gone quiet.
    log.append(batch(5), 0); // offsets 5..9
    r.onFollowerFetch(2, 10, 3);
    expect(r.hw).toBe(5);
    expect(r.wantedIsrChange(5_000, 1000, () => true)).toEqual(first);
    expect(r.pendingIsrAdds).toEqual([3]);
    expect(r.hw).toBe(5);
    // A refusal that proves it was not committed releases it; the next change is computed afresh.
    r.isrChangeRefused();
    expect(r.pendingIsrAdds).toEqual([]);
    r.onFollowerFetch(2, 10, 5_000);
    expect(r.hw).toBe(10);
    expect(r.wantedIsrChange(5_001, 1000, () => true)).toBeNull(); // 3 is behind: nothing to change
    // 3 catches up: proposed anew; the metadata settling it (a new partition epoch) releases it.
    r.onFollowerFetch(3, 10, 5_002);
    expect(r.wantedIsrChange(5_003, 1000, () => true)?.newIsr).toEqual([3, 2, 1]);
    expect(r.pendingIsrAdds).toEqual([3]);
    r.update({ leader: 1, leaderEpoch: 0, partitionEpoch: 1, replicas: [3, 2, 1], isr: [3, 2, 1] }, 5_004);
    expect(r.pendingIsrAdds).toEqual([]);
    expect(r.wantedIsrChange(5_005, 1000, () => true)).toBeNull();
  });

  it("the high watermark waits for a member proposed to join the ISR until the change is seen (maximal ISR)", () => {
    const log = newLog();
    const r = new PartitionReplica("t", 0, log, 1);
    r.update({ leader: 1, leaderEpoch: 0, partitionEpoch: 0, replicas: [3, 2, 1], isr: [1, 2] }, 0);
    log.append(batch(5), 0);
    r.onFollowerFetch(2, 5, 1);
    expect(r.hw).toBe(5);
    r.onFollowerFetch(3, 5, 1); // 3 caught up: the leader proposes it
    expect(r.wantedIsrChange(2, 1000, () => true)?.newIsr).toEqual([3, 2, 1]);
    log.append(batch(5), 0); // offsets 5..9
    r.onFollowerFetch(2, 10, 3);
    expect(r.hw).toBe(5); // 3 may be in the committed ISR (and leader) already: it holds the HW at its log end
    r.onFollowerFetch(3, 8, 3);
    expect(r.hw).toBe(8);
    // The change seen in the metadata: from then on the ISR itself counts.
    r.update({ leader: 1, leaderEpoch: 0, partitionEpoch: 1, replicas: [3, 2, 1], isr: [3, 2, 1] }, 4);
    expect(r.pendingIsrAdds).toEqual([]);
    // A later ISR without it no longer holds it back.
    r.update({ leader: 1, leaderEpoch: 0, partitionEpoch: 2, replicas: [3, 2, 1], isr: [2, 1] }, 5);
    r.onFollowerFetch(2, 10, 6);
    expect(r.hw).toBe(10);
  });
});
