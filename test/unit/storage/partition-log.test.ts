import { describe, expect, it } from "vitest";
import { crc32c } from "../../../src/base/crc32c.ts";
import { Errors } from "../../../src/base/errors.ts";
import { readBatchHeader } from "../../../src/protocol/record-batch.ts";
import { batch, codeOf, ManualClock, MemoryFileSystem, openLog, PartitionLog, readAll, snapshot, tinyTopicConfig } from "./helpers.ts";

describe("PartitionLog append and read", () => {
  it("assigns offsets by rewriting the batch header in place and reads the same bytes back", () => {
    const fs = new MemoryFileSystem();
    const log = openLog(fs, new ManualClock());
    const b1 = batch(3);
    const b2 = batch(2, { prefix: "w" });
    const r1 = log.append(b1, 7);
    const r2 = log.append(b2, 7);
    expect([r1.baseOffset, r1.lastOffset, r2.baseOffset, r2.lastOffset]).toEqual([0, 2, 3, 4]);
    expect(log.logEndOffset).toBe(5);
    // rewritten in the caller's buffer, no copy
    expect(readBatchHeader(b2, 0).baseOffset).toBe(3);
    expect(readBatchHeader(b2, 0).partitionLeaderEpoch).toBe(7);
    const read = log.read(3, 1 << 20);
    expect(Buffer.concat(read.chunks).equals(b2)).toBe(true);
    expect(read.nextOffset).toBe(5);
    expect(readAll(log)).toEqual([
      [0, "v-0"],
      [1, "v-1"],
      [2, "v-2"],
      [3, "w-0"],
      [4, "w-1"],
    ]);
  });

  it("fills disk reads into buffers from the caller's allocator; tail-cache reads allocate nothing", () => {
    const fs = new MemoryFileSystem();
    const log = openLog(fs, new ManualClock(), { segmentBytes: 1024 });
    for (let i = 0; i < 40; i++) log.append(batch(5, { prefix: `b${i}` }));
    const given: Buffer[] = [];
    const alloc = (size: number): Buffer => {
      const b = Buffer.alloc(size + 100, 0xee); // bigger than asked, as a pool's buffers are
      given.push(b);
      return b;
    };
    const tail = log.read(195, 1 << 20, log.logEndOffset, alloc);
    expect(tail.bytes).toBeGreaterThan(0);
    expect(given).toHaveLength(0); // answered from the tail cache
    log.close();
    const fresh = PartitionLog.open({
      fs,
      dir: "/data/t-0",
      clock: new ManualClock(),
      config: { ...tinyTopicConfig, segmentBytes: 1024 },
      tailCacheBytes: 0,
      recover: false,
    });
    const cold = fresh.read(0, 300, fresh.logEndOffset, alloc);
    expect(given).toHaveLength(1);
    expect(cold.chunks).toHaveLength(1);
    expect(cold.chunks[0]!.buffer).toBe(given[0]!.buffer); // a view of the given buffer, no copy
    expect(cold.chunks[0]!.byteOffset).toBe(given[0]!.byteOffset);
    const plain = fresh.read(0, 300);
    expect(cold.chunks[0]!.equals(plain.chunks[0]!)).toBe(true);
    expect(cold.nextOffset).toBe(plain.nextOffset);
    fresh.close();
  });

  it("appends several batches sent back to back as one write", () => {
    const fs = new MemoryFileSystem();
    const log = openLog(fs, new ManualClock());
    const r = log.append(Buffer.concat([batch(2), batch(3, { prefix: "x" })]));
    expect([r.baseOffset, r.lastOffset, r.recordCount]).toEqual([0, 4, 5]);
    expect(readAll(log).map(([o]) => o)).toEqual([0, 1, 2, 3, 4]);
  });

  it("rolls segments at segment.bytes with 20-digit names, and reads across them", () => {
    const fs = new MemoryFileSystem();
    const log = openLog(fs, new ManualClock(), { segmentBytes: 1024 });
    for (let i = 0; i < 40; i++) log.append(batch(5, { prefix: `b${i}` }));
    expect(log.segmentCount).toBeGreaterThan(3);
    const names = fs.readdir("/data/t-0").filter((n) => n.endsWith(".log"));
    expect(names[0]).toBe("00000000000000000000.log");
    for (const n of names) expect(n).toMatch(/^\d{20}\.log$/);
    const all = readAll(log);
    expect(all.length).toBe(200);
    expect(all.map(([o]) => o)).toEqual(Array.from({ length: 200 }, (_, i) => i));
  });

  it("rolls on segment.ms by the injected clock", () => {
    const fs = new MemoryFileSystem();
    const clock = new ManualClock();
    const log = openLog(fs, clock, { segmentMs: 1000 });
    log.append(batch(1));
    clock.advance(999);
    log.append(batch(1));
    expect(log.segmentCount).toBe(1);
    clock.advance(1);
    log.append(batch(1));
    expect(log.segmentBaseOffsets).toEqual([0, 2]);
  });

  it("returns at least one whole batch even when it exceeds maxBytes, and stops at maxOffset", () => {
    const fs = new MemoryFileSystem();
    const log = openLog(fs, new ManualClock(), {}, false);
    for (let i = 0; i < 5; i++) log.append(batch(4));
    // from disk (cache disabled by reading through a reopened log)
    const reopened = reopen(fs, log);
    const one = reopened.read(0, 1);
    expect(one.nextOffset).toBe(4);
    expect(one.chunks.length).toBe(1);
    const capped = reopened.read(0, 1 << 20, 8);
    expect(capped.nextOffset).toBe(8);
    expect(reopened.read(8, 1 << 20, 8).bytes).toBe(0);
    // a read from the middle of a batch returns the whole batch holding the offset
    expect(readBatchHeader(reopened.read(5, 100).chunks[0]!, 0).baseOffset).toBe(4);
  });

  it("answers tailing reads from the tail cache without touching the files", () => {
    const fs = new MemoryFileSystem();
    const log = openLog(fs, new ManualClock());
    log.append(batch(3));
    const b = batch(3, { prefix: "tail" });
    log.append(b);
    // Corrupt the bytes on disk: a read from the cache still returns what was appended.
    const path = "/data/t-0/00000000000000000000.log";
    const bytes = Buffer.from(fs.bytes(path));
    bytes.fill(0);
    fs.setBytes(path, bytes);
    const r = log.read(3, 1 << 20);
    expect(Buffer.concat(r.chunks).equals(b)).toBe(true);
    expect(log.stats.cacheReads).toBeGreaterThan(0);
  });

  it("rejects offsets outside [logStart, logEnd] with OFFSET_OUT_OF_RANGE", () => {
    const log = openLog(new MemoryFileSystem(), new ManualClock());
    log.append(batch(3));
    expect(codeOf(() => log.read(-1, 100))).toBe(Errors.OFFSET_OUT_OF_RANGE.code);
    expect(codeOf(() => log.read(4, 100))).toBe(Errors.OFFSET_OUT_OF_RANGE.code);
    expect(log.read(3, 100).bytes).toBe(0);
  });
});

describe("PartitionLog bad input leaves the log unchanged", () => {
  const cases: Array<[string, (b: Buffer) => Buffer, number]> = [
    ["bad CRC", (b) => flip(b, b.length - 1), Errors.CORRUPT_MESSAGE.code],
    ["wrong magic", (b) => set(b, 16, 1), Errors.UNSUPPORTED_FOR_MESSAGE_FORMAT.code],
    ["length longer than the bytes", (b) => b.subarray(0, b.length - 3), Errors.BATCH_LENGTH_MISMATCH.code],
    ["trailing garbage after the batch", (b) => Buffer.concat([b, Buffer.from([1, 2, 3])]), Errors.BATCH_LENGTH_MISMATCH.code],
    ["header cut short", (b) => b.subarray(0, 40), Errors.BATCH_LENGTH_MISMATCH.code],
    ["record count disagrees", (b) => recrc(set32(b, 57, 5)), Errors.RECORD_COUNT_MISMATCH.code],
    ["lastOffsetDelta disagrees", (b) => recrc(set32(b, 23, 9)), Errors.RECORD_COUNT_MISMATCH.code],
    ["unsupported codec (5)", (b) => recrc(set16(b, 21, 5)), Errors.UNSUPPORTED_COMPRESSION_TYPE.code],
    ["unsupported codec (7)", (b) => recrc(set16(b, 21, 7)), Errors.UNSUPPORTED_COMPRESSION_TYPE.code],
    ["zstd attribute on records that are no zstd frame", (b) => recrc(set16(b, 21, 4)), Errors.CORRUPT_MESSAGE.code],
  ];
  for (const [name, mutate, want] of cases) {
    it(name, () => {
      const fs = new MemoryFileSystem();
      const log = openLog(fs, new ManualClock());
      log.append(batch(3));
      const leo = log.logEndOffset;
      const before = snapshot(fs, "/data/t-0");
      const bad = mutate(batch(4));
      expect(codeOf(() => log.append(bad))).toBe(want);
      expect(log.logEndOffset).toBe(leo);
      expect(snapshot(fs, "/data/t-0")).toEqual(before);
      expect(readAll(log).length).toBe(3);
    });
  }

  it("a bad batch after a good one in the same request rejects both", () => {
    const fs = new MemoryFileSystem();
    const log = openLog(fs, new ManualClock());
    const good = batch(2);
    const before = snapshot(fs, "/data/t-0");
    expect(codeOf(() => log.append(Buffer.concat([good, flip(batch(2), 70)])))).toBe(Errors.CORRUPT_MESSAGE.code);
    expect(log.logEndOffset).toBe(0);
    expect(snapshot(fs, "/data/t-0")).toEqual(before);
    // and the good batch's header was not rewritten either
    expect(readBatchHeader(good, 0).baseOffset).toBe(0);
  });

  it("rejects a batch larger than max.message.bytes", () => {
    const fs = new MemoryFileSystem();
    const log = openLog(fs, new ManualClock(), { maxMessageBytes: 200 });
    expect(codeOf(() => log.append(batch(20)))).toBe(Errors.MESSAGE_TOO_LARGE.code);
    expect(log.logEndOffset).toBe(0);
  });

  it("rejects an empty buffer", () => {
    const log = openLog(new MemoryFileSystem(), new ManualClock());
    expect(codeOf(() => log.append(Buffer.alloc(0)))).toBe(Errors.INVALID_REQUEST.code);
  });
});

describe("PartitionLog truncation, timestamps and log start", () => {
  it("truncateTo removes whole batches from the holding one on, across segments", () => {
    const fs = new MemoryFileSystem();
    const log = openLog(fs, new ManualClock(), { segmentBytes: 512 });
    for (let i = 0; i < 30; i++) log.append(batch(2, { prefix: `b${i}` }));
    const segsBefore = log.segmentCount;
    expect(log.truncateTo(21)).toBe(20); // offset 21 sits in the batch [20, 21]
    expect(log.logEndOffset).toBe(20);
    expect(log.segmentCount).toBeLessThan(segsBefore);
    expect(readAll(log).map(([o]) => o)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    const r = log.append(batch(1, { prefix: "after" }));
    expect(r.baseOffset).toBe(20);
    expect(readAll(log).at(-1)).toEqual([20, "after-0"]);
  });

  it("keeps the newest two producer snapshots on disk across rolls, truncations and reopening", async () => {
    const fs = new MemoryFileSystem();
    const snapshots = (): number[] =>
      fs
        .readdir("/data/t-0")
        .filter((n) => n.endsWith(".snapshot"))
        .map((n) => Number(n.slice(0, 20)));
    const log = openLog(fs, new ManualClock(), { segmentBytes: 512 });
    for (let i = 0; i < 30; i++) log.append(batch(2, { prefix: `b${i}` }));
    const bases = log.segmentBaseOffsets;
    expect(bases.length).toBeGreaterThan(4);
    // A roll snapshots the producer state at the new segment's base offset.
    expect(snapshots()).toEqual(bases.slice(-2));
    // A truncation below them removes those past the new log end; the next rolls keep two again.
    log.truncateTo(bases.at(-2)! - 1);
    expect(snapshots().every((o) => o <= log.logEndOffset)).toBe(true);
    for (let i = 0; i < 30; i++) log.append(batch(2, { prefix: `c${i}` }));
    expect(snapshots()).toEqual(log.segmentBaseOffsets.slice(-2));
    // The reopened log keeps pruning what it finds.
    await log.close();
    expect(snapshots()).toEqual(log.segmentBaseOffsets.slice(-2));
    const again = openLog(fs, new ManualClock(), { segmentBytes: 512 });
    for (let i = 0; i < 30; i++) again.append(batch(2, { prefix: `d${i}` }));
    expect(snapshots()).toEqual(again.segmentBaseOffsets.slice(-2));
  });

  it("offsetForTimestamp finds the first record at or after a time", () => {
    const log = openLog(new MemoryFileSystem(), new ManualClock(), { segmentBytes: 512 });
    for (let i = 0; i < 20; i++) log.append(batch(3, { ts: 1000 + i * 10 })); // records at 1000+10i, +1, +2
    expect(log.offsetForTimestamp(0)).toEqual({ offset: 0, timestampMs: 1000 });
    expect(log.offsetForTimestamp(1001)).toEqual({ offset: 1, timestampMs: 1001 });
    expect(log.offsetForTimestamp(1003)).toEqual({ offset: 3, timestampMs: 1010 });
    expect(log.offsetForTimestamp(1192)).toEqual({ offset: 59, timestampMs: 1192 });
    expect(log.offsetForTimestamp(1193)).toBeNull();
  });

  it("advanceLogStartOffset hides earlier offsets and deletes whole segments below it", () => {
    const fs = new MemoryFileSystem();
    const log = openLog(fs, new ManualClock(), { segmentBytes: 512 });
    for (let i = 0; i < 30; i++) log.append(batch(2));
    const segs = log.segmentCount;
    log.advanceLogStartOffset(31);
    expect(log.logStartOffset).toBe(31);
    expect(log.segmentCount).toBeLessThan(segs);
    expect(codeOf(() => log.read(30, 100))).toBe(Errors.OFFSET_OUT_OF_RANGE.code);
    expect(readAll(log)[0]![0]).toBe(31);
    expect(codeOf(() => log.advanceLogStartOffset(61))).toBe(Errors.OFFSET_OUT_OF_RANGE.code);
    // survives a reopen
    expect(reopen(fs, log).logStartOffset).toBe(31);
  });

  it("LogAppendTime stamps batches with the broker clock and keeps a valid CRC", () => {
    const fs = new MemoryFileSystem();
    const clock = new ManualClock(5_000_000);
    const log = openLog(fs, clock, { timestampType: "LogAppendTime" });
    const r = log.append(batch(2, { ts: 1 }));
    expect(r.logAppendTimeMs).toBe(5_000_000);
    const reopened = reopen(fs, log, true); // recovery validates every CRC
    expect(reopened.logEndOffset).toBe(2);
    expect(readBatchHeader(reopened.read(0, 1000).chunks[0]!, 0).maxTimestamp).toBe(5_000_000);
  });
});

describe("PartitionLog durability", () => {
  it("one fsync covers every flush that was waiting (group commit)", async () => {
    const fs = new MemoryFileSystem();
    const log = openLog(fs, new ManualClock());
    const waits: Array<Promise<void>> = [];
    for (let i = 0; i < 50; i++) {
      log.append(batch(1));
      waits.push(log.flush());
    }
    await Promise.all(waits);
    // At most two rounds; the first also fsyncs the leader-epoch checkpoint its first append replaced.
    expect(log.stats.fsyncs).toBeLessThanOrEqual(2);
    expect(fs.syncCount).toBeLessThanOrEqual(3);
    expect(log.flushedOffset).toBe(50);
  });

  it("flush.messages triggers an fsync; a crash keeps what was synced", async () => {
    const fs = new MemoryFileSystem();
    const log = openLog(fs, new ManualClock(), { flushMessages: 4, flushMs: 1e12 });
    log.append(batch(4));
    await log.flush(); // wait for the triggered sync
    log.append(batch(2)); // below the threshold: not synced
    fs.crash();
    const after = reopen(fs, log, true);
    expect(after.logEndOffset).toBe(4);
    expect(readAll(after).length).toBe(4);
  });

  it("flush.ms: maybeFlush syncs once the oldest unflushed append is old enough", async () => {
    const fs = new MemoryFileSystem();
    const clock = new ManualClock();
    const log = openLog(fs, clock, { flushMs: 100 });
    log.append(batch(1));
    expect(log.maybeFlush(clock.nowMs() + 99)).toBeNull();
    await log.maybeFlush(clock.nowMs() + 100);
    expect(log.flushedOffset).toBe(1);
  });
});

function reopen(fs: MemoryFileSystem, _log: unknown, recover = false) {
  return openLog(fs, new ManualClock(), {}, recover);
}

function flip(b: Buffer, at: number): Buffer {
  const c = Buffer.from(b);
  c[at]! ^= 0xff;
  return c;
}
function set(b: Buffer, at: number, v: number): Buffer {
  const c = Buffer.from(b);
  c[at] = v;
  return c;
}
function set16(b: Buffer, at: number, v: number): Buffer {
  const c = Buffer.from(b);
  c.writeInt16BE(v, at);
  return c;
}
function set32(b: Buffer, at: number, v: number): Buffer {
  const c = Buffer.from(b);
  c.writeInt32BE(v, at);
  return c;
}
/** Recomputes the CRC so that only the field under test is wrong. */
function recrc(b: Buffer): Buffer {
  b.writeUInt32BE(crc32c(b.subarray(21)), 17);
  return b;
}
