import { describe, expect, it } from "vitest";
import { SeededRandom, seedFromEnv } from "../../../src/base/random.ts";
import { setBaseOffset, setPartitionLeaderEpoch } from "../../../src/protocol/record-batch.ts";
import { LEADER_EPOCH_FILE, LeaderEpochCache } from "../../../src/storage/leader-epoch-cache.ts";
import { Segment } from "../../../src/storage/segment.ts";
import { batch, ManualClock, MemoryFileSystem, openLog, readAll } from "./helpers.ts";

const DIR = "/data/t-0";

/** A log of `n` batches of 3 records each, closed cleanly; returns the active segment's path. */
async function buildLog(fs: MemoryFileSystem, n: number, segmentBytes = 1 << 20): Promise<{ active: string; batchEnds: number[] }> {
  const log = openLog(fs, new ManualClock(), { segmentBytes, maxMessageBytes: 4096 });
  for (let i = 0; i < n; i++) log.append(batch(3, { prefix: `b${i}` }));
  const base = log.segmentBaseOffsets.at(-1)!;
  await log.close();
  const active = Segment.paths(fs, DIR, base).log;
  // byte positions where each batch of the active segment ends
  const bytes = Buffer.from(fs.bytes(active));
  const ends: number[] = [];
  for (let pos = 0; pos < bytes.length; ) {
    pos += bytes.readInt32BE(pos + 8) + 12;
    ends.push(pos);
  }
  return { active, batchEnds: ends };
}

/** After a crash cut the active segment at `cut`, reopen with recovery and check the log. */
function checkCut(
  fs: MemoryFileSystem,
  active: string,
  original: Buffer,
  cut: number,
  totalRecordsBeforeActive: number,
  batchEnds: number[],
): void {
  fs.setBytes(active, original.subarray(0, cut));
  const log = openLog(fs, new ManualClock(), { segmentBytes: 1 << 20 }, true);
  const completeBatches = batchEnds.filter((e) => e <= cut).length;
  const expected = totalRecordsBeforeActive + completeBatches * 3;
  expect(log.logEndOffset, `cut at ${cut}`).toBe(expected);
  const offsets = readAll(log).map(([o]) => o);
  expect(offsets).toEqual(Array.from({ length: expected }, (_, i) => i));
  // nothing after the cut survives: the file ends at the last complete batch
  expect(Buffer.from(fs.bytes(active)).length).toBe(completeBatches === 0 ? 0 : batchEnds[completeBatches - 1]);
  // and the log accepts appends at the right offset again
  expect(log.append(batch(1)).baseOffset).toBe(expected);
}

describe("recovery", () => {
  it("cut at every byte offset inside the last batch: complete batches survive, contiguous", async () => {
    const fs = new MemoryFileSystem();
    const { active, batchEnds } = await buildLog(fs, 20);
    const original = Buffer.from(fs.bytes(active));
    const lastStart = batchEnds.at(-2)!;
    for (let cut = lastStart; cut <= original.length; cut++) {
      checkCut(fs, active, original, cut, 0, batchEnds);
    }
  });

  it("cuts at seeded random offsets across a multi-segment log", async () => {
    const seed = seedFromEnv();
    console.log(`recovery random cuts: SEED=${seed}`);
    const rnd = new SeededRandom(seed);
    const fs = new MemoryFileSystem();
    const log = openLog(fs, new ManualClock(), { segmentBytes: 1024 });
    for (let i = 0; i < 60; i++) log.append(batch(3, { prefix: `b${i}` }));
    const activeBase = log.segmentBaseOffsets.at(-1)!;
    await log.close();
    const active = Segment.paths(fs, DIR, activeBase).log;
    const original = Buffer.from(fs.bytes(active));
    const ends: number[] = [];
    for (let pos = 0; pos < original.length; ) {
      pos += original.readInt32BE(pos + 8) + 12;
      ends.push(pos);
    }
    for (let i = 0; i < 200; i++) {
      const cut = rnd.int(original.length + 1);
      checkCut(fs, active, original, cut, activeBase, ends);
    }
  });

  it("truncates at a corrupt batch in the middle and drops everything after it", async () => {
    const fs = new MemoryFileSystem();
    const { active, batchEnds } = await buildLog(fs, 10);
    const bytes = Buffer.from(fs.bytes(active));
    bytes[batchEnds[4]! + 70]! ^= 0x55; // inside batch 5's records: CRC fails
    fs.setBytes(active, bytes);
    const log = openLog(fs, new ManualClock(), { segmentBytes: 1 << 20 }, true);
    expect(log.logEndOffset).toBe(15);
    expect(log.openReport.recovered[0]!.truncatedBytes).toBe(bytes.length - batchEnds[4]!);
  });

  it("a corrupt batch in an older segment removes the segments after it", async () => {
    const fs = new MemoryFileSystem();
    const log = openLog(fs, new ManualClock(), { segmentBytes: 1024 });
    for (let i = 0; i < 40; i++) log.append(batch(3));
    const bases = log.segmentBaseOffsets;
    expect(bases.length).toBeGreaterThan(3);
    // crash without a clean close: nothing checkpointed, so recovery scans every segment
    const second = Segment.paths(fs, DIR, bases[1]!).log;
    const bytes = Buffer.from(fs.bytes(second));
    bytes[bytes.length - 5]! ^= 0xff;
    fs.setBytes(second, bytes);
    const reopened = openLog(fs, new ManualClock(), { segmentBytes: 1024 }, true);
    expect(reopened.segmentBaseOffsets).toEqual(bases.slice(0, 2));
    expect(reopened.openReport.deletedSegments).toBe(bases.length - 2);
    const offsets = readAll(reopened).map(([o]) => o);
    expect(offsets).toEqual(Array.from({ length: reopened.logEndOffset }, (_, i) => i));
  });

  it("a corrupt or missing index file is rebuilt", async () => {
    const fs = new MemoryFileSystem();
    const log = openLog(fs, new ManualClock(), { segmentBytes: 2048, indexIntervalBytes: 128 });
    for (let i = 0; i < 40; i++) log.append(batch(3, { prefix: `b${i}`, ts: 1000 + i * 10 }));
    const bases = log.segmentBaseOffsets;
    await log.close();
    const expected = readAll(openLog(fs, new ManualClock(), { segmentBytes: 2048, indexIntervalBytes: 128 }));

    const p0 = Segment.paths(fs, DIR, bases[0]!);
    const idx = Buffer.from(fs.bytes(p0.index));
    expect(idx.length).toBeGreaterThan(24);
    idx.writeUInt32BE(999_999, idx.length - 4); // a position past the end; CRC now wrong too
    fs.setBytes(p0.index, idx);
    fs.rm(Segment.paths(fs, DIR, bases[1]!).timeindex);

    const reopened = openLog(fs, new ManualClock(), { segmentBytes: 2048, indexIntervalBytes: 128 });
    expect(readAll(reopened)).toEqual(expected);
    expect(reopened.offsetForTimestamp(1100)).toEqual({ offset: 30, timestampMs: 1100 });
    // the rebuilt index is valid again after a clean close
    await reopened.close();
    const rebuilt = Buffer.from(fs.bytes(p0.index));
    expect(rebuilt.equals(idx)).toBe(false);
    expect(rebuilt.subarray(0, 8).toString("latin1")).toBe("RILLOFX1");
  });

  it("a crash loses unsynced appends but never leaves a torn batch readable", async () => {
    const fs = new MemoryFileSystem();
    const log = openLog(fs, new ManualClock(), { flushMs: 1e12 });
    for (let i = 0; i < 5; i++) log.append(batch(2));
    await log.flush();
    for (let i = 0; i < 5; i++) log.append(batch(2));
    fs.crash();
    const after = openLog(fs, new ManualClock(), {}, true);
    expect(after.logEndOffset).toBe(10);
    expect(readAll(after).length).toBe(10);
  });

  it("a killed process's unsynced tail is fsynced by the next process's flush (no hole after a later power loss)", async () => {
    // cluster-sim seed 2086: a leader killed with offsets 67..82 in the page cache only; its next
    // process recovered them, rolled a segment at 83 (segment.bytes had shrunk), appended and
    // flushed, which synced only the segment it wrote to yet moved the recovery point past 83.
    // A power loss then took 67..82 back and kept 83.. : a hole in the log, acknowledged writes gone.
    const NO_FLUSH = { flushMs: 1e12, flushMessages: 1e9 };
    const fs = new MemoryFileSystem();
    const first = openLog(fs, new ManualClock(), NO_FLUSH);
    for (let i = 0; i < 5; i++) first.append(batch(1, { prefix: `a${i}` }));
    await first.flush();
    for (let i = 5; i < 8; i++) first.append(batch(1, { prefix: `a${i}` }));
    // killed: 5..7 only in the page cache
    const second = openLog(fs, new ManualClock(), { ...NO_FLUSH, segmentBytes: 64 }, true);
    expect(second.logEndOffset).toBe(8);
    for (let i = 8; i < 11; i++) second.append(batch(1, { prefix: `b${i}` }));
    expect(second.segmentBaseOffsets.length).toBeGreaterThan(1);
    await second.flush();
    expect(second.flushedOffset).toBe(11);
    fs.crash(); // power loss: only what the flush made durable survives
    const third = openLog(fs, new ManualClock(), NO_FLUSH, true);
    expect(third.logEndOffset).toBe(11);
    expect(readAll(third).map(([o, v]) => `${o}:${v}`)).toEqual([
      ...Array.from({ length: 8 }, (_, i) => `${i}:a${i}-0`),
      ...Array.from({ length: 3 }, (_, i) => `${i + 8}:b${i + 8}-0`),
    ]);
  });

  it("a power loss after a roll leaves a hole (the next segment's file survived the old one's tail): cut unless compacted", async () => {
    // cluster-sim seeds 5137 and 5480: the log ended past offsets it lacked, its fetches as a
    // follower counted as caught up, and it was elected.
    const NO_FLUSH = { flushMs: 1e12, flushMessages: 1e9, segmentBytes: 64 };
    const open = (fs: MemoryFileSystem) => {
      const log = openLog(fs, new ManualClock(), NO_FLUSH);
      for (let i = 0; i < 3; i++) log.append(batch(1, { prefix: `a${i}` }));
      return log;
    };
    for (const compacted of [false, true]) {
      const fs = new MemoryFileSystem();
      const log = open(fs);
      await log.flush();
      log.append(batch(1, { prefix: "a3" })); // unsynced
      log.append(batch(1, { prefix: "a4" })); // rolls first: a new segment file at 4
      expect(log.segmentBaseOffsets.at(-1)).toBe(4);
      fs.crash(); // power loss: 3 and 4 are gone, the file of the segment at 4 is not
      const after = openLog(fs, new ManualClock(), NO_FLUSH, true);
      expect(after.recoveryGap).toBe(3);
      expect(after.cutRecoveryGap(compacted)).toBe(!compacted);
      expect(after.recoveryGap).toBeNull();
      expect(after.logEndOffset).toBe(compacted ? 4 : 3);
      expect(readAll(after).map(([o, v]) => `${o}:${v}`)).toEqual(["0:a0-0", "1:a1-0", "2:a2-0"]);
      if (!compacted) {
        after.append(batch(1, { prefix: "b3" })); // offsets stay contiguous
        expect(readAll(after).at(-1)).toEqual([3, "b3-0"]);
      }
    }
  });

  it("a killed process's unsynced tail is fsynced after flush.ms even when nothing is appended", async () => {
    const fs = new MemoryFileSystem();
    const clock = new ManualClock();
    const first = openLog(fs, clock, { flushMs: 1000, flushMessages: 1e9 });
    for (let i = 0; i < 4; i++) first.append(batch(1, { prefix: `a${i}` }));
    const second = openLog(fs, clock, { flushMs: 1000, flushMessages: 1e9 }, true);
    expect(second.flushedOffset).toBe(0);
    expect(second.maybeFlush(clock.nowMs())).toBeNull();
    clock.advance(1000);
    await second.maybeFlush(clock.nowMs());
    expect(second.flushedOffset).toBe(4);
    fs.crash();
    expect(openLog(fs, clock, {}, true).logEndOffset).toBe(4);
  });

  describe("leader epochs after a power loss (the checkpoint is durable ahead of the segment data)", () => {
    const NO_FLUSH = { flushMs: 1e12, flushMessages: 1e9 };

    /** A batch of one record as a follower receives it: its offset and leader epoch set. */
    function replicated(offset: number, epoch: number, prefix: string): Buffer {
      const b = batch(1, { prefix });
      setBaseOffset(b, 0, offset);
      setPartitionLeaderEpoch(b, 0, epoch);
      return b;
    }

    it("a follower's truncation and new-epoch append lost to a power loss leave no epoch ahead of the data", async () => {
      // cluster-sim seed 31: the epoch-0 record at 5 is durable; the follower truncates it and
      // appends the new leader's epoch-1 record at 5, and the power goes before the next fsync.
      const fs = new MemoryFileSystem();
      const log = openLog(fs, new ManualClock(), NO_FLUSH);
      for (let i = 0; i < 6; i++) log.append(batch(1, { prefix: `e0r${i}` }), 0);
      await log.flush();
      log.truncateTo(5);
      log.appendWithOffsets(replicated(5, 1, "e1r5"));
      expect(log.leaderEpochs).toEqual([
        { epoch: 0, startOffset: 0 },
        { epoch: 1, startOffset: 5 },
      ]);
      fs.crash();
      const after = openLog(fs, new ManualClock(), NO_FLUSH, true);
      expect(readAll(after).at(-1)).toEqual([5, "e0r5-0"]);
      // The recovered record at 5 is epoch 0's: a fetch with last epoch 1 must diverge there.
      expect(after.leaderEpochs).toEqual([{ epoch: 0, startOffset: 0 }]);
      expect(after.endOffsetForEpoch(1)).toEqual({ epoch: 0, endOffset: 6 });
    });

    it("a follower's truncation reaches the disk before a flush moves the recovery point past it", async () => {
      // cluster-sim seed 2075: a follower truncated its full segment from 65 (epoch-0 records
      // 65..69 durable), rolled at once (segment.bytes had shrunk) and appended the new leader's
      // epoch-1 records at 65 in a new segment. The flush synced only the new segment, so a power
      // loss brought 65..69 back in the old one: reads from below 65 returned the stale epoch-0
      // records, and the recovered epochs hid the divergence from the leader.
      const fs = new MemoryFileSystem();
      const log = openLog(fs, new ManualClock(), NO_FLUSH);
      for (let i = 0; i < 8; i++) log.append(batch(1, { prefix: `e0r${i}` }), 0);
      await log.flush();
      log.updateConfig({ ...log.topicConfig, segmentBytes: 64 });
      log.truncateTo(5);
      const first = Segment.paths(fs, DIR, 0).log;
      const cut = fs.bytes(first).length;
      for (let i = 5; i < 8; i++) log.appendWithOffsets(replicated(i, 1, `e1r${i}`));
      expect(log.segmentBaseOffsets.slice(0, 2)).toEqual([0, 5]);
      await log.flush();
      fs.crash();
      expect(fs.bytes(first).length).toBe(cut); // the cut itself was made durable
      const after = openLog(fs, new ManualClock(), NO_FLUSH, true);
      expect(readAll(after).map(([o, v]) => `${o}:${v}`)).toEqual([
        ...Array.from({ length: 5 }, (_, i) => `${i}:e0r${i}-0`),
        ...Array.from({ length: 3 }, (_, i) => `${i + 5}:e1r${i + 5}-0`),
      ]);
      expect(after.leaderEpochs).toEqual([
        { epoch: 0, startOffset: 0 },
        { epoch: 1, startOffset: 5 },
      ]);
    });

    it("recovery cuts a segment's bytes that a truncation had removed when a later segment starts there", async () => {
      // The power goes before anything synced the truncation: the old segment comes back with
      // epoch-0 records 5..7 while the segment rolled at 5 exists. Offsets from 5 are the later
      // segment's; the earlier one must not serve its stale copy to a read that starts below 5.
      const fs = new MemoryFileSystem();
      const log = openLog(fs, new ManualClock(), NO_FLUSH);
      for (let i = 0; i < 8; i++) log.append(batch(1, { prefix: `e0r${i}` }), 0);
      await log.flush();
      log.updateConfig({ ...log.topicConfig, segmentBytes: 64 });
      log.truncateTo(5);
      log.appendWithOffsets(replicated(5, 1, "e1r5"));
      fs.crash();
      const after = openLog(fs, new ManualClock(), NO_FLUSH, true);
      expect(after.logEndOffset).toBe(5);
      for (let i = 5; i < 8; i++) after.appendWithOffsets(replicated(i, 2, `e2r${i}`));
      expect(readAll(after).map(([o, v]) => `${o}:${v}`)).toEqual([
        ...Array.from({ length: 5 }, (_, i) => `${i}:e0r${i}-0`),
        ...Array.from({ length: 3 }, (_, i) => `${i + 5}:e2r${i + 5}-0`),
      ]);
    });

    it("a process kill (page cache kept) keeps the new epoch's records and their entry", () => {
      const fs = new MemoryFileSystem();
      const log = openLog(fs, new ManualClock(), NO_FLUSH);
      for (let i = 0; i < 6; i++) log.append(batch(1, { prefix: `e0r${i}` }), 0);
      log.truncateTo(5);
      log.appendWithOffsets(replicated(5, 1, "e1r5"));
      log.appendWithOffsets(replicated(6, 3, "e3r6"));
      const after = openLog(fs, new ManualClock(), NO_FLUSH, true);
      expect(readAll(after).slice(-2)).toEqual([
        [5, "e1r5-0"],
        [6, "e3r6-0"],
      ]);
      expect(after.leaderEpochs).toEqual([
        { epoch: 0, startOffset: 0 },
        { epoch: 1, startOffset: 5 },
        { epoch: 3, startOffset: 6 },
      ]);
    });

    it("a new epoch's first append replaces the checkpoint without an fsync; the next flush makes it durable", async () => {
      const both = [
        { epoch: 0, startOffset: 0 },
        { epoch: 2, startOffset: 3 },
      ];
      /** Three epoch-0 records flushed, then one of epoch 2. */
      async function newEpoch(): Promise<{ fs: MemoryFileSystem; log: ReturnType<typeof openLog> }> {
        const fs = new MemoryFileSystem();
        const log = openLog(fs, new ManualClock(), NO_FLUSH);
        for (let i = 0; i < 3; i++) log.append(batch(1, { prefix: `e0r${i}` }), 0);
        await log.flush();
        log.append(batch(1, { prefix: "e2r3" }), 2);
        expect(LeaderEpochCache.load(fs, DIR)?.all()).toEqual(both); // in the page cache
        return { fs, log };
      }
      const flushed = await newEpoch();
      await flushed.log.flush();
      flushed.fs.crash();
      expect(LeaderEpochCache.load(flushed.fs, DIR)?.all()).toEqual(both); // durable with the flush
      // A power loss before that flush: the new file is torn (it fails its checksum), so the log
      // rebuilds the epochs from what survived, the records up to the last flush.
      const lost = await newEpoch();
      lost.fs.crash();
      expect(LeaderEpochCache.load(lost.fs, DIR)).toBeNull();
      const after = openLog(lost.fs, new ManualClock(), NO_FLUSH, true);
      expect(after.logEndOffset).toBe(3);
      expect(after.leaderEpochs).toEqual([{ epoch: 0, startOffset: 0 }]);
    });

    it("a power loss right after a truncation dropped epoch entries re-derives them from the records that came back", async () => {
      /** Loses power just after the epoch checkpoint is written, when armed. */
      class PowerCutFs extends MemoryFileSystem {
        armed = false;
        override writeFileAtomic(path: string, data: Uint8Array): void {
          super.writeFileAtomic(path, data);
          if (this.armed && path.endsWith(LEADER_EPOCH_FILE)) {
            this.crash();
            throw new Error("power loss");
          }
        }
      }
      const fs = new PowerCutFs();
      const log = openLog(fs, new ManualClock(), NO_FLUSH);
      for (let i = 0; i < 5; i++) log.append(batch(1, { prefix: `e0r${i}` }), 0);
      for (let i = 5; i < 8; i++) log.append(batch(1, { prefix: `e1r${i}` }), 1);
      await log.close(); // recovery point 8, durable
      const follower = openLog(fs, new ManualClock(), NO_FLUSH);
      fs.armed = true;
      expect(() => follower.truncateTo(5)).toThrow("power loss");
      fs.armed = false;
      // The segment's truncation never reached the disk: records 5..7 (epoch 1) are back.
      const after = openLog(fs, new ManualClock(), NO_FLUSH, true);
      expect(after.logEndOffset).toBe(8);
      expect(after.leaderEpochs).toEqual([
        { epoch: 0, startOffset: 0 },
        { epoch: 1, startOffset: 5 },
      ]);
    });
  });
});
