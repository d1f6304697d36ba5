import { describe, expect, it } from "vitest";
import { compactLog } from "../../../src/storage/cleaner.ts";
import { batch, keyed, ManualClock, MemoryFileSystem, openLog, readAll } from "./helpers.ts";

const noPause = (): Promise<void> => Promise.resolve();
const DAY = 86_400_000;

describe("retention", () => {
  it("deletes whole segments whose max timestamp is older than retention.ms", () => {
    const fs = new MemoryFileSystem();
    const clock = new ManualClock(10 * DAY);
    const log = openLog(fs, clock, { segmentBytes: 512, retentionMs: DAY });
    for (let i = 0; i < 30; i++) log.append(batch(2, { ts: 8 * DAY + i })); // old
    const oldEnd = log.logEndOffset;
    for (let i = 0; i < 30; i++) log.append(batch(2, { ts: 10 * DAY - 1000 + i })); // recent
    const deleted = log.applyRetention(clock.nowMs());
    expect(deleted).toBeGreaterThan(0);
    // every remaining segment but possibly the one straddling the boundary is recent
    expect(log.logStartOffset).toBeGreaterThan(0);
    expect(log.logStartOffset).toBeLessThanOrEqual(oldEnd);
    const offsets = readAll(log).map(([o]) => o);
    expect(offsets[0]).toBe(log.logStartOffset);
    expect(offsets.at(-1)).toBe(log.logEndOffset - 1);
  });

  it("rolls and deletes an expired active segment, keeping the log end offset", () => {
    const fs = new MemoryFileSystem();
    const clock = new ManualClock(10 * DAY);
    const log = openLog(fs, clock, { retentionMs: DAY });
    log.append(batch(5, { ts: 1 }));
    log.applyRetention(clock.nowMs());
    expect(log.logStartOffset).toBe(5);
    expect(log.logEndOffset).toBe(5);
    expect(log.append(batch(1)).baseOffset).toBe(5);
  });

  it("deletes the oldest segments beyond retention.bytes", () => {
    const fs = new MemoryFileSystem();
    const clock = new ManualClock();
    const log = openLog(fs, clock, { segmentBytes: 512, retentionBytes: 1500, retentionMs: -1 });
    for (let i = 0; i < 60; i++) log.append(batch(2));
    expect(log.sizeBytes).toBeGreaterThan(1500);
    log.applyRetention(clock.nowMs());
    // as Kafka: delete the oldest segment only while what remains is still >= retention.bytes
    const sizes = log.segmentBaseOffsets.length;
    expect(log.sizeBytes).toBeGreaterThanOrEqual(1500);
    expect(sizes).toBeGreaterThan(1);
    const oldest = log.read(log.logStartOffset, 1 << 20).bytes;
    expect(log.sizeBytes - oldest).toBeLessThan(1500);
    expect(readAll(log)[0]![0]).toBe(log.logStartOffset);
  });

  it("does nothing for a compact-only topic", () => {
    const clock = new ManualClock(10 * DAY);
    const log = openLog(new MemoryFileSystem(), clock, { segmentBytes: 512, retentionMs: 1, cleanupPolicy: "compact" });
    for (let i = 0; i < 30; i++) log.append(batch(2, { ts: 1 }));
    expect(log.applyRetention(clock.nowMs())).toBe(0);
    expect(log.logStartOffset).toBe(0);
  });
});

describe("compaction", () => {
  it("keeps the latest record per key at its original offset", async () => {
    const fs = new MemoryFileSystem();
    const clock = new ManualClock();
    const log = openLog(fs, clock, { segmentBytes: 256, cleanupPolicy: "compact", minCleanableDirtyRatio: 0 });
    const expected = new Map<string, [number, string]>();
    for (let i = 0; i < 60; i++) {
      const k = `k${i % 5}`;
      const r = log.append(keyed([[k, `v${i}`]]));
      expected.set(k, [r.baseOffset, `v${i}`]);
    }
    const activeBase = log.segmentBaseOffsets.at(-1)!;
    const res = await compactLog(log, clock.nowMs(), noPause);
    expect(res!.segments).toBeGreaterThan(0);
    expect(res!.recordsRemoved).toBeGreaterThan(0);
    const all = readAll(log);
    const compacted = all.filter(([o]) => o < activeBase);
    // every key appears at most once below the active segment, with its newest value there
    const seen = new Set<string>();
    for (const [o, v] of compacted) {
      const key = [...expected.entries()].find(([, [eo, ev]]) => ev === v && eo === o);
      const k = key ? key[0] : `stale:${v}`;
      expect(seen.has(k)).toBe(false);
      seen.add(k);
    }
    // the newest value of every key is still readable at the offset it was written at
    for (const [, [offset, value]] of expected) expect(all).toContainEqual([offset, value]);
    // offsets still increase (gaps allowed) and the end did not move
    for (let i = 1; i < all.length; i++) expect(all[i]![0]).toBeGreaterThan(all[i - 1]![0]);
    expect(log.logEndOffset).toBe(60);
  });

  it("drops tombstones only after delete.retention.ms", async () => {
    const fs = new MemoryFileSystem();
    const clock = new ManualClock(1_100_000); // records below are older than now
    const log = openLog(fs, clock, { segmentBytes: 256, cleanupPolicy: "compact", minCleanableDirtyRatio: 0, deleteRetentionMs: 200_000 });
    log.append(keyed([["a", "1"]], 1_000_000));
    log.append(keyed([["a", null]], 1_000_001)); // tombstone
    for (let i = 0; i < 20; i++) log.append(keyed([[`f${i}`, "x".repeat(40)]], 1_000_002 + i));
    await compactLog(log, clock.nowMs(), noPause, true);
    let values = readAll(log).filter(([o]) => o <= 1);
    expect(values).toEqual([[1, null]]); // the old value is gone, the tombstone stays for now
    clock.advance(200_000);
    await compactLog(log, clock.nowMs(), noPause, true);
    values = readAll(log).filter(([o]) => o <= 1);
    expect(values).toEqual([]);
  });

  it("appends go on while compaction pauses, and the result survives a reopen", async () => {
    const fs = new MemoryFileSystem();
    const clock = new ManualClock();
    const log = openLog(fs, clock, { segmentBytes: 256, cleanupPolicy: "compact", minCleanableDirtyRatio: 0 });
    for (let i = 0; i < 40; i++) log.append(keyed([[`k${i % 3}`, `v${i}`]]));
    let appendedDuring = 0;
    const pause = async (): Promise<void> => {
      log.append(keyed([["live", `x${appendedDuring++}`]]));
      await Promise.resolve();
    };
    const done = compactLog(log, clock.nowMs(), pause, true);
    log.append(keyed([["live", "during"]]));
    await done;
    const end = log.logEndOffset;
    await log.close();
    const reopened = openLog(fs, clock, { segmentBytes: 256, cleanupPolicy: "compact" }, true);
    expect(reopened.logEndOffset).toBe(end);
    expect(readAll(reopened).at(-1)![0]).toBe(end - 1);
  });

  it("`compact,delete` compacts and also deletes by retention", async () => {
    const clock = new ManualClock(10 * DAY);
    const log = openLog(new MemoryFileSystem(), clock, {
      segmentBytes: 256,
      cleanupPolicy: "compact,delete",
      retentionMs: DAY,
      minCleanableDirtyRatio: 0,
    });
    for (let i = 0; i < 30; i++) log.append(keyed([[`k${i % 2}`, `old${i}`]], 1000 + i));
    for (let i = 0; i < 30; i++) log.append(keyed([[`k${i % 2}`, `new${i}`]], 10 * DAY - 100 + i));
    await compactLog(log, clock.nowMs(), noPause, true);
    log.applyRetention(clock.nowMs());
    const values = readAll(log).map(([, v]) => v);
    expect(values.some((v) => v!.startsWith("old"))).toBe(false);
    expect(values).toContain("new29");
    expect(values).toContain("new28");
  });
});
