/**
 * Transactions in one partition log: producer state with open transactions, the first unstable
 * offset, markers (appendControl), the per-segment aborted-transaction index (.txnindex) and how
 * it survives rolls, reopen, deletion or corruption of the file, crashes, followers, retention
 * and compaction.
 */
import { describe, expect, it } from "vitest";
import { RillError } from "../../../src/base/errors.ts";
import { SeededRandom, seedFromEnv } from "../../../src/base/random.ts";
import { AbortedTxnFilter, readControlRecord } from "../../../src/protocol/control-record.ts";
import { type ProduceChecks, encodeBatch, readBatchHeader, decodeRecords } from "../../../src/protocol/record-batch.ts";
import { compactLog } from "../../../src/storage/cleaner.ts";
import { encodeTxnIndex } from "../../../src/storage/txn-index.ts";
import { ManualClock, MemoryFileSystem, type PartitionLog, openLog } from "./helpers.ts";

const TS = 1_700_000_000_000;
const TXN: ProduceChecks = { validation: "full", decompressedBytesMax: 1 << 20, transactional: true };
const PLAIN: ProduceChecks = { validation: "full", decompressedBytesMax: 1 << 20 };
const DIR = "/data/t-0";
const noPause = (): Promise<void> => Promise.resolve();

/** A transactional batch of producer `pid` at `epoch`, sequences from `seq`, one record per value (keys `key-<value>` unless given). */
function txnBatch(pid: number, epoch: number, seq: number, values: string[], keys?: string[], ts = TS): Buffer {
  return encodeBatch(
    values.map((v, i) => ({ key: keys?.[i] ?? `key-${v}`, value: v, timestampMs: ts + i })),
    { producerId: pid, producerEpoch: epoch, baseSequence: seq, isTransactional: true, nowMs: ts },
  );
}

/** A plain batch (no producer). */
function plainBatch(values: string[], keys?: string[], ts = TS): Buffer {
  return encodeBatch(
    values.map((v, i) => ({ key: keys?.[i] ?? `key-${v}`, value: v, timestampMs: ts + i })),
    { nowMs: ts },
  );
}

function marker(
  pid: number,
  epoch: number,
  commit: boolean,
  coordinatorEpoch = 0,
): {
  producerId: number;
  producerEpoch: number;
  commit: boolean;
  coordinatorEpoch: number;
} {
  return { producerId: pid, producerEpoch: epoch, commit, coordinatorEpoch };
}

/** Every stored batch: [baseOffset, kind, producerId] with kind "data", "COMMIT" or "ABORT". */
function batches(log: PartitionLog): Array<[number, string, number]> {
  const out: Array<[number, string, number]> = [];
  let offset = log.logStartOffset;
  while (offset < log.logEndOffset) {
    const r = log.read(offset, 1 << 20);
    if (r.bytes === 0) break;
    for (const chunk of r.chunks) {
      for (let pos = 0; pos < chunk.length; ) {
        const h = readBatchHeader(chunk, pos);
        const m = h.isControl ? readControlRecord(chunk, pos) : null;
        out.push([h.baseOffset, m === null ? "data" : m.commit ? "COMMIT" : "ABORT", h.producerId]);
        pos += h.size;
      }
    }
    offset = r.nextOffset;
  }
  return out;
}

/** The data records' values in the log (control batches left out). */
function dataValues(log: PartitionLog): string[] {
  const out: string[] = [];
  let offset = log.logStartOffset;
  while (offset < log.logEndOffset) {
    const r = log.read(offset, 1 << 20);
    if (r.bytes === 0) break;
    for (const chunk of r.chunks) {
      for (let pos = 0; pos < chunk.length; ) {
        const h = readBatchHeader(chunk, pos);
        if (!h.isControl) for (const rec of decodeRecords(chunk.subarray(pos, pos + h.size))) out.push(Buffer.from(rec.value!).toString());
        pos += h.size;
      }
    }
    offset = r.nextOffset;
  }
  return out;
}

function rillErrorOf(f: () => unknown): RillError {
  try {
    f();
  } catch (e) {
    if (e instanceof RillError) return e;
    throw e;
  }
  throw new Error("expected a RillError");
}

function txnIndexFiles(fs: MemoryFileSystem): string[] {
  return fs
    .readdir(DIR)
    .filter((n) => n.endsWith(".txnindex"))
    .sort();
}

describe("producer state with transactions: the first unstable offset", () => {
  it("opens a transaction at its first batch and ends it at the marker; plain writes do not move it", () => {
    const log = openLog(new MemoryFileSystem(), new ManualClock(TS));
    log.append(plainBatch(["a", "b"]), 0, undefined, PLAIN); // 0-1
    expect(log.firstUnstableOffset).toBeNull();
    log.append(txnBatch(7, 0, 0, ["t1", "t2"]), 0, undefined, TXN); // 2-3
    expect(log.firstUnstableOffset).toBe(2);
    log.append(plainBatch(["c"]), 0, undefined, PLAIN); // 4
    log.append(txnBatch(7, 0, 2, ["t3"]), 0, undefined, TXN); // 5
    expect(log.firstUnstableOffset).toBe(2);
    expect(log.producers.openTransactions()).toEqual([{ producerId: 7, producerEpoch: 0, firstOffset: 2 }]);
    const m = log.appendControl(marker(7, 0, true), 0); // 6
    expect(m).toMatchObject({ baseOffset: 6, lastOffset: 6, recordCount: 1 });
    expect(log.firstUnstableOffset).toBeNull();
    expect(log.abortedTransactions(0, log.logEndOffset)).toEqual([]);
    expect(batches(log).map(([o, k]) => [o, k])).toEqual([
      [0, "data"],
      [2, "data"],
      [4, "data"],
      [5, "data"],
      [6, "COMMIT"],
    ]);
  });

  it("a transaction stays unstable under a high watermark that has not passed its marker (Kafka's unreplicated transactions)", () => {
    const fs = new MemoryFileSystem();
    const log = openLog(fs, new ManualClock(TS));
    log.append(plainBatch(["a"]), 0, undefined, PLAIN); // 0
    log.append(txnBatch(7, 0, 0, ["t1", "t2"]), 0, undefined, TXN); // 1-2
    log.append(txnBatch(8, 0, 0, ["u1"]), 0, undefined, TXN); // 3
    log.appendControl(marker(7, 0, true), 0); // 4
    log.appendControl(marker(8, 0, false), 0); // 5
    expect(log.firstUnstableOffset).toBeNull(); // both ended in this log...
    expect(log.firstUnstableOffsetAt(4)).toBe(1); // ...but a high watermark of 4 has neither marker below it
    expect(log.firstUnstableOffsetAt(5)).toBe(3); // 7's marker is below 5, 8's is not
    expect(log.firstUnstableOffsetAt(6)).toBeNull();
    log.highWatermarkMoved(5); // 7's transaction is replicated: forgotten
    expect(log.firstUnstableOffsetAt(4)).toBe(3);
    log.append(txnBatch(7, 0, 2, ["t3"]), 0, undefined, TXN); // 6: open
    expect([log.firstUnstableOffsetAt(5), log.firstUnstableOffsetAt(6)]).toEqual([3, 6]);
    log.highWatermarkMoved(6);
    expect(log.firstUnstableOffsetAt(5)).toBe(6);
    // Truncation (a follower's divergent tail) and reopening rebuild the producer state: the
    // markers still in the log count as replicated, those cut are gone with their transaction's end.
    log.truncateTo(5); // 8's ABORT and the open batch go
    expect([log.firstUnstableOffset, log.firstUnstableOffsetAt(0)]).toEqual([3, 3]);
  });

  it("with two open transactions the oldest one holds it; an abort is indexed with its first offset", () => {
    const log = openLog(new MemoryFileSystem(), new ManualClock(TS));
    log.append(txnBatch(1, 0, 0, ["a"]), 0, undefined, TXN); // 0
    log.append(txnBatch(2, 0, 0, ["b"]), 0, undefined, TXN); // 1
    log.append(txnBatch(1, 0, 1, ["c"]), 0, undefined, TXN); // 2
    expect(log.firstUnstableOffset).toBe(0);
    log.appendControl(marker(1, 0, false), 0); // 3: ABORT of producer 1
    expect(log.firstUnstableOffset).toBe(1);
    expect(log.abortedTransactions(0, 4)).toEqual([{ producerId: 1, firstOffset: 0 }]);
    expect(log.abortedTxnEntries(0, 4)).toEqual([{ producerId: 1, firstOffset: 0, lastOffset: 3, lastStableOffset: 1 }]);
    log.appendControl(marker(2, 0, true), 0); // 4
    expect(log.firstUnstableOffset).toBeNull();
    // a range before the transaction's end, or after its marker, does or does not overlap it
    expect(log.abortedTransactions(3, 5)).toEqual([{ producerId: 1, firstOffset: 0 }]);
    expect(log.abortedTransactions(4, 5)).toEqual([]);
    // TV1: the next transaction keeps the epoch and goes on with the sequence
    log.append(txnBatch(1, 0, 2, ["d"]), 0, undefined, TXN);
    expect(log.firstUnstableOffset).toBe(5);
  });

  it("refuses a non-transactional batch of a producer whose transaction is open (INVALID_TXN_STATE), nothing stored", () => {
    const log = openLog(new MemoryFileSystem(), new ManualClock(TS));
    log.append(txnBatch(3, 0, 0, ["a"]), 0, undefined, TXN);
    const idempotent = encodeBatch([{ key: "k", value: "x" }], { producerId: 3, producerEpoch: 0, baseSequence: 1, nowMs: TS });
    expect(rillErrorOf(() => log.append(idempotent, 0, undefined, PLAIN)).kind.name).toBe("INVALID_TXN_STATE");
    expect(log.logEndOffset).toBe(1);
  });

  it("refuses a transactional batch without a verified transaction and any control batch from a client, nothing stored", () => {
    const log = openLog(new MemoryFileSystem(), new ManualClock(TS));
    const e = rillErrorOf(() => log.append(txnBatch(3, 0, 0, ["a"]), 0, undefined, PLAIN));
    expect(e.kind.name).toBe("INVALID_RECORD");
    expect(e.message).toMatch(/transactional bit .* not produced in a verified transaction/);
    const forged = encodeBatch([{ key: Buffer.from([0, 0, 0, 1]), value: Buffer.from([0, 0, 0, 0, 0, 0]) }], {
      producerId: 3,
      producerEpoch: 0,
      isTransactional: true,
      isControl: true,
      nowMs: TS,
    });
    for (const checks of [PLAIN, TXN, undefined]) {
      const f = rillErrorOf(() => log.append(Buffer.from(forged), 0, undefined, checks));
      expect(f.kind.name).toBe("INVALID_RECORD");
      expect(f.message).toMatch(/a client can never write a control batch/);
    }
    expect(log.logEndOffset).toBe(0);
    expect(log.producers.producerCount).toBe(0);
  });
});

describe("markers: fencing and epochs", () => {
  it("refuses a marker older than the producer's epoch or coordinator epoch, with nothing written", () => {
    const log = openLog(new MemoryFileSystem(), new ManualClock(TS));
    log.append(txnBatch(5, 3, 0, ["a"]), 0, undefined, TXN);
    log.appendControl(marker(5, 3, true, 4), 0);
    const end = log.logEndOffset;
    expect(rillErrorOf(() => log.appendControl(marker(5, 2, false, 4), 0)).kind.name).toBe("INVALID_PRODUCER_EPOCH");
    expect(rillErrorOf(() => log.appendControl(marker(5, 3, false, 3), 0)).kind.name).toBe("TRANSACTION_COORDINATOR_FENCED");
    expect(rillErrorOf(() => log.appendControl(marker(-1, 0, true), 0)).kind.name).toBe("INVALID_RECORD");
    expect(log.logEndOffset).toBe(end);
  });

  it("TV2: a marker with the bumped epoch fences the old epoch's late batch and the next transaction starts at sequence 0", () => {
    const log = openLog(new MemoryFileSystem(), new ManualClock(TS));
    log.append(txnBatch(9, 0, 0, ["a", "b"]), 0, undefined, TXN);
    log.appendControl(marker(9, 1, true), 0); // the coordinator bumped the epoch at EndTxn
    expect(log.firstUnstableOffset).toBeNull();
    expect(rillErrorOf(() => log.append(txnBatch(9, 0, 2, ["late"]), 0, undefined, TXN)).kind.name).toBe("INVALID_PRODUCER_EPOCH");
    log.append(txnBatch(9, 1, 0, ["c"]), 0, undefined, TXN);
    expect(log.firstUnstableOffset).toBe(3);
    // a retried marker of the ended transaction ends nothing and indexes nothing
    log.appendControl(marker(9, 1, false), 0);
    log.appendControl(marker(9, 2, false), 0);
    expect(log.abortedTransactions(0, log.logEndOffset)).toEqual([{ producerId: 9, firstOffset: 3 }]);
  });

  it("a producer with an open transaction never expires", () => {
    const clock = new ManualClock(TS);
    const log = openLog(new MemoryFileSystem(), clock);
    log.append(txnBatch(1, 0, 0, ["a"]), 0, undefined, TXN);
    expect(log.expireProducers(TS + 10 * 86_400_000)).toBe(0);
    log.appendControl(marker(1, 0, true), 0);
    expect(log.expireProducers(TS + 10 * 86_400_000)).toBe(1);
  });
});

/** A log of small segments where producer 1's aborted transaction spans several of them. */
function spanningLog(fs: MemoryFileSystem, clock: ManualClock): PartitionLog {
  const log = openLog(fs, clock, { segmentBytes: 300 });
  log.append(txnBatch(1, 0, 0, ["a0"]), 0, undefined, TXN); // 0
  for (let i = 0; i < 6; i++) log.append(plainBatch([`p${i}`.padEnd(60, "x")]), 0, undefined, PLAIN); // 1..6
  log.append(txnBatch(2, 0, 0, ["b0"]), 0, undefined, TXN); // 7
  log.append(txnBatch(1, 0, 1, ["a1"]), 0, undefined, TXN); // 8
  log.appendControl(marker(1, 0, false), 0); // 9: ABORT 1 (first offset 0)
  log.appendControl(marker(2, 0, true), 0); // 10: COMMIT 2
  for (let i = 0; i < 4; i++) log.append(plainBatch([`q${i}`.padEnd(60, "x")]), 0, undefined, PLAIN); // 11..14
  log.append(txnBatch(2, 0, 1, ["b1"]), 0, undefined, TXN); // 15
  log.appendControl(marker(2, 0, false), 0); // 16: ABORT 2 (first offset 15)
  log.append(txnBatch(1, 0, 2, ["a2"]), 0, undefined, TXN); // 17: open
  return log;
}

const SPANNING_ABORTS = [
  { producerId: 1, firstOffset: 0 },
  { producerId: 2, firstOffset: 15 },
];

describe("the aborted-transaction index across segments", () => {
  it("markers survive segment rolls: each abort is in the segment of its marker, found from any offset of its transaction", async () => {
    const fs = new MemoryFileSystem();
    const clock = new ManualClock(TS);
    const log = spanningLog(fs, clock);
    expect(log.segmentCount).toBeGreaterThan(3);
    expect(log.firstUnstableOffset).toBe(17);
    expect(log.abortedTransactions(0, 18)).toEqual(SPANNING_ABORTS);
    expect(log.abortedTransactions(5, 9)).toEqual([{ producerId: 1, firstOffset: 0 }]); // inside the transaction, before its marker
    expect(log.abortedTransactions(10, 15)).toEqual([]); // between the two
    expect(log.abortedTransactions(16, 18)).toEqual([{ producerId: 2, firstOffset: 15 }]);
    await log.close();
    // one index file per segment, written at roll and close
    expect(txnIndexFiles(fs)).toHaveLength(log.segmentCount);
    const reopened = openLog(fs, clock, { segmentBytes: 300 });
    expect(reopened.abortedTransactions(0, 18)).toEqual(SPANNING_ABORTS);
    expect(reopened.firstUnstableOffset).toBe(17);
    expect(reopened.producers.toJSON()).toEqual(log.producers.toJSON());
  });

  it("is rebuilt when a .txnindex file is deleted, corrupted or stale", async () => {
    const fs = new MemoryFileSystem();
    const clock = new ManualClock(TS);
    const log = spanningLog(fs, clock);
    const expectedState = log.producers.toJSON();
    await log.close();
    const files = txnIndexFiles(fs);
    const withAbort = files.filter((n) => fs.bytes(`${DIR}/${n}`).length > 24);
    expect(withAbort.length).toBe(2);
    // deleted
    fs.rm(`${DIR}/${withAbort[0]}`);
    let again = openLog(fs, clock, { segmentBytes: 300 });
    expect(again.abortedTransactions(0, 18)).toEqual(SPANNING_ABORTS);
    expect(again.producers.toJSON()).toEqual(expectedState);
    await again.close();
    expect(txnIndexFiles(fs)).toEqual(files); // written again
    // corrupted: one byte of an entry flipped (the CRC catches it)
    const path = `${DIR}/${withAbort[1]}`;
    const bad = Buffer.from(fs.bytes(path));
    bad[30]! ^= 0x40;
    fs.setBytes(path, bad);
    again = openLog(fs, clock, { segmentBytes: 300 });
    expect(again.abortedTransactions(0, 18)).toEqual(SPANNING_ABORTS);
    await again.close();
    // stale: a well-formed file (good CRC) with no abort, covering fewer offsets than the segment holds
    const base = Number(withAbort[1]!.slice(0, 20));
    fs.setBytes(path, encodeTxnIndex([], base + 1));
    again = openLog(fs, clock, { segmentBytes: 300 });
    expect(again.abortedTransactions(0, 18)).toEqual(SPANNING_ABORTS);
    expect(again.firstUnstableOffset).toBe(17);
  });

  it("recovery after a crash rebuilds the open transactions and the aborts of the unsynced tail", async () => {
    const fs = new MemoryFileSystem();
    const clock = new ManualClock(TS);
    const log = spanningLog(fs, clock);
    await log.flush();
    const state = log.producers.toJSON();
    fs.crash(); // the active segment's .txnindex was never written
    const recovered = openLog(fs, clock, { segmentBytes: 300 }, true);
    expect(recovered.logEndOffset).toBe(18);
    expect(recovered.firstUnstableOffset).toBe(17);
    expect(recovered.abortedTransactions(0, 18)).toEqual(SPANNING_ABORTS);
    expect(recovered.producers.toJSON()).toEqual(state);
  });

  it("recovery replays a segment of several megabytes (read a chunk at a time) to the same producer state, open transactions and aborts", async () => {
    const fs = new MemoryFileSystem();
    const clock = new ManualClock(TS);
    const big = { segmentBytes: 64 << 20, maxMessageBytes: 1 << 20 };
    const log = openLog(fs, clock, big);
    const seed = seedFromEnv();
    console.log(`replay of a large segment SEED=${seed}`);
    const rnd = new SeededRandom(seed);
    const value = (n: number): string => `v${n}-`.padEnd(2_000 + rnd.int(9_000), "x");
    const seq = new Map<number, number>();
    const open = new Set<number>();
    // 400 batches of 2-11 KB (about 2.6 MB): plain, idempotent and transactional ones from 6
    // producers, markers ending transactions at random points, so the 1 MiB reads cut anywhere.
    for (let i = 0; i < 400; i++) {
      const pid = 1 + rnd.int(5);
      const s0 = seq.get(pid) ?? 0;
      const kind = rnd.int(3);
      if (kind === 0) log.append(plainBatch([value(i)]), 0);
      else if (kind === 1 && pid <= 3 && !open.has(pid)) {
        log.append(
          encodeBatch([{ value: value(i), timestampMs: TS }], { producerId: pid, producerEpoch: 0, baseSequence: s0, nowMs: TS }),
          0,
        );
        seq.set(pid, s0 + 1);
      } else if (pid > 3 && open.has(pid) && rnd.int(3) === 0) {
        log.appendControl(marker(pid, 0, rnd.int(2) === 0), 0);
        open.delete(pid);
        seq.set(pid, s0);
      } else if (pid > 3) {
        log.append(txnBatch(pid, 0, s0, [value(i)]), 0, undefined, TXN);
        seq.set(pid, s0 + 1);
        open.add(pid);
      }
    }
    expect(log.logEndOffset).toBeGreaterThan(300);
    const end = log.logEndOffset;
    const state = log.producers.toJSON();
    const unstable = log.firstUnstableOffset;
    const aborts = log.abortedTransactions(0, end);
    expect(aborts.length).toBeGreaterThan(0);
    await log.flush();
    fs.crash(); // no snapshot and no .txnindex: everything is replayed from the segment
    const recovered = openLog(fs, clock, big, true);
    expect(recovered.logEndOffset).toBe(end);
    expect(recovered.producers.toJSON()).toEqual(state);
    expect(recovered.firstUnstableOffset).toBe(unstable);
    expect(recovered.abortedTransactions(0, end)).toEqual(aborts);
  });

  it("truncation drops the aborts past the cut, and the transaction they ended is open again", () => {
    const fs = new MemoryFileSystem();
    const log = spanningLog(fs, new ManualClock(TS));
    log.truncateTo(16); // the ABORT of producer 2 at 16 goes
    expect(log.abortedTransactions(0, 16)).toEqual([{ producerId: 1, firstOffset: 0 }]);
    expect(log.firstUnstableOffset).toBe(15);
    log.truncateTo(9); // the ABORT of producer 1 goes as well
    expect(log.abortedTransactions(0, 9)).toEqual([]);
    expect(log.firstUnstableOffset).toBe(0);
  });

  it("a follower copying the leader's batches gets the same open transactions and aborts", () => {
    const clock = new ManualClock(TS);
    const leader = spanningLog(new MemoryFileSystem(), clock);
    const follower = openLog(new MemoryFileSystem(), clock, { segmentBytes: 300 });
    let offset = 0;
    while (offset < leader.logEndOffset) {
      const r = leader.read(offset, 200);
      for (const chunk of r.chunks) follower.appendWithOffsets(Buffer.from(chunk));
      offset = r.nextOffset;
    }
    expect(follower.logEndOffset).toBe(18);
    expect(follower.firstUnstableOffset).toBe(17);
    expect(follower.abortedTransactions(0, 18)).toEqual(SPANNING_ABORTS);
    expect(follower.producers.toJSON()).toEqual(leader.producers.toJSON());
  });
});

describe("retention and compaction keep markers correct", () => {
  it("retention deletes whole segments with their .txnindex; aborts indexed in kept segments remain", () => {
    const fs = new MemoryFileSystem();
    const log = openLog(fs, new ManualClock(TS), { segmentBytes: 300, retentionBytes: 900 });
    log.append(txnBatch(1, 0, 0, ["a0"]), 0, undefined, TXN); // 0, first segment
    for (let i = 0; i < 8; i++) log.append(plainBatch([`p${i}`.padEnd(60, "x")]), 0, undefined, PLAIN);
    log.appendControl(marker(1, 0, false), 0); // 9
    for (let i = 0; i < 4; i++) log.append(plainBatch([`q${i}`.padEnd(60, "x")]), 0, undefined, PLAIN);
    const before = log.segmentCount;
    const deleted = log.applyRetention(TS);
    expect(deleted).toBeGreaterThan(0);
    expect(log.logStartOffset).toBeGreaterThan(0);
    expect(log.logStartOffset).toBeLessThanOrEqual(9);
    expect(fs.readdir(DIR).filter((n) => n.endsWith(".txnindex")).length).toBeLessThanOrEqual(before - deleted);
    // the marker's segment is kept: a reader from the new start still learns of the abort
    expect(log.abortedTransactions(log.logStartOffset, log.logEndOffset)).toEqual([{ producerId: 1, firstOffset: 0 }]);
    expect(batches(log).some(([o, k]) => o === 9 && k === "ABORT")).toBe(true);
  });

  it("compaction drops aborted records (they never shadow a committed value), keeps markers while their records remain, then after delete.retention.ms", async () => {
    const fs = new MemoryFileSystem();
    const clock = new ManualClock(TS + 1000);
    const cfg = { segmentBytes: 300, cleanupPolicy: "compact" as const, minCleanableDirtyRatio: 0, deleteRetentionMs: 100_000 };
    const log = openLog(fs, clock, cfg);
    log.append(txnBatch(1, 0, 0, ["committed"], ["a"]), 0, undefined, TXN); // 0
    log.appendControl(marker(1, 0, true), 0, TS); // 1: COMMIT
    log.append(txnBatch(2, 0, 0, ["aborted"], ["a"]), 0, undefined, TXN); // 2: a newer value of "a", aborted
    log.appendControl(marker(2, 0, false), 0, TS); // 3: ABORT
    log.append(txnBatch(1, 0, 1, ["old-b"], ["b"]), 0, undefined, TXN); // 4
    log.appendControl(marker(1, 0, true), 0, TS); // 5: COMMIT
    log.append(plainBatch(["new-b"], ["b"]), 0, undefined, PLAIN); // 6: makes "old-b" obsolete
    for (let i = 0; i < 8; i++) log.append(plainBatch([`f${i}`.padEnd(60, "x")], [`f${i}`]), 0, undefined, PLAIN);
    log.append(txnBatch(3, 0, 0, ["open"], ["a"]), 0, undefined, TXN); // an open transaction stops the cleaner
    for (let i = 0; i < 8; i++) log.append(plainBatch([`g${i}`.padEnd(60, "x")], [`g${i}`]), 0, undefined, PLAIN);
    const openAt = log.firstUnstableOffset!;
    await compactLog(log, clock.nowMs(), noPause, true);
    expect(dataValues(log)).toContain("committed"); // not shadowed by the aborted newer value
    expect(dataValues(log)).not.toContain("aborted");
    expect(dataValues(log)).not.toContain("old-b");
    expect(dataValues(log)).toContain("open"); // past the first unstable offset: not cleaned
    // markers stay within delete.retention.ms, and the COMMIT of "committed" while its record stays
    expect(batches(log).filter(([o]) => o <= 5)).toEqual([
      [0, "data", 1],
      [1, "COMMIT", 1],
      [3, "ABORT", 2],
      [5, "COMMIT", 1],
    ]);
    expect(log.abortedTransactions(0, openAt)).toEqual([{ producerId: 2, firstOffset: 2 }]);
    clock.advance(200_000);
    await compactLog(log, clock.nowMs(), noPause, true);
    // past the horizon, the markers whose records are all gone go; the one whose record stays does not
    expect(batches(log).filter(([o]) => o <= 5)).toEqual([
      [0, "data", 1],
      [1, "COMMIT", 1],
    ]);
    expect(log.firstUnstableOffset).toBe(openAt);
    // and the state rebuilt from the compacted log agrees
    const values = dataValues(log);
    await log.close();
    const reopened = openLog(fs, clock, cfg);
    expect(reopened.firstUnstableOffset).toBe(openAt);
    expect(dataValues(reopened)).toEqual(values);
  });
});

describe("random transactional workload against a model (seeded)", () => {
  it("aborted transactions, the first unstable offset and READ_COMMITTED records match the model, live and after rebuilding", async () => {
    const seed = seedFromEnv();
    console.log(`transactions workload SEED=${seed}`);
    const rnd = new SeededRandom(seed);
    const fs = new MemoryFileSystem();
    const clock = new ManualClock(TS);
    let log = openLog(fs, clock, { segmentBytes: 400 });
    const producers = [1, 2, 3];
    const open = new Map<number, number>(); // pid -> first offset
    const seqs = new Map<number, number>(producers.map((p) => [p, 0]));
    const aborted: Array<{ producerId: number; firstOffset: number; lastOffset: number }> = [];
    const txnOf = new Map<number, { pid: number; values: Array<[number, string]> }>(); // open txn's records
    const visible: Array<[number, string]> = []; // records READ_COMMITTED must see, in offset order once decided
    const decided: Array<[number, string]> = [];
    const counts = { plain: 0, txn: 0, commit: 0, abort: 0 };
    for (let step = 0; step < 300; step++) {
      const pid = producers[rnd.int(producers.length)]!;
      const roll = rnd.int(10);
      if (roll < 2) {
        const v = `p${step}`;
        const r = log.append(plainBatch([v]), 0, undefined, PLAIN);
        decided.push([r.baseOffset, v]);
        counts.plain++;
      } else if (roll < 7) {
        const vs = Array.from({ length: 1 + rnd.int(3) }, (_, i) => `t${step}.${i}`);
        const r = log.append(txnBatch(pid, 0, seqs.get(pid)!, vs), 0, undefined, TXN);
        seqs.set(pid, seqs.get(pid)! + vs.length);
        if (!open.has(pid)) open.set(pid, r.baseOffset);
        const t = txnOf.get(pid) ?? { pid, values: [] };
        vs.forEach((v, i) => t.values.push([r.baseOffset + i, v]));
        txnOf.set(pid, t);
        counts.txn++;
      } else if (open.has(pid)) {
        const commit = rnd.int(2) === 0;
        const m = log.appendControl(marker(pid, 0, commit), 0);
        if (commit) decided.push(...txnOf.get(pid)!.values);
        else aborted.push({ producerId: pid, firstOffset: open.get(pid)!, lastOffset: m.baseOffset });
        open.delete(pid);
        txnOf.delete(pid);
        counts[commit ? "commit" : "abort"]++;
      }
    }
    decided.sort((a, b) => a[0] - b[0]);
    const fuo = open.size === 0 ? null : Math.min(...open.values());
    const lso = fuo ?? log.logEndOffset;
    for (const r of decided) if (r[0] < lso) visible.push(r);
    console.log(`transactions workload: ${JSON.stringify(counts)}, ${log.segmentCount} segments, ${open.size} open`);
    expect(counts.abort).toBeGreaterThan(5);
    expect(log.segmentCount).toBeGreaterThan(5);

    const expectedAborts = (from: number, upTo: number) =>
      aborted
        .filter((a) => a.lastOffset >= from && a.firstOffset < upTo)
        .map((a) => ({ producerId: a.producerId, firstOffset: a.firstOffset }));
    /** The records READ_COMMITTED reads from `from`: batches up to the LSO, filtered with the listed aborts. */
    const readCommitted = (l: PartitionLog, from: number): Array<[number, string]> => {
      const out: Array<[number, string]> = [];
      let offset = from;
      while (offset < lso) {
        const r = l.read(offset, 300, lso);
        if (r.bytes === 0) break;
        const filter = new AbortedTxnFilter(l.abortedTransactions(offset, r.nextOffset));
        for (const chunk of r.chunks) {
          for (let pos = 0; pos < chunk.length; ) {
            const h = readBatchHeader(chunk, pos);
            if (!filter.drops(h)) {
              for (const rec of decodeRecords(chunk.subarray(pos, pos + h.size))) {
                if (rec.offset >= offset) out.push([rec.offset, Buffer.from(rec.value!).toString()]);
              }
            }
            pos += h.size;
          }
        }
        offset = r.nextOffset;
      }
      return out;
    };
    const check = (l: PartitionLog, what: string): void => {
      expect(l.firstUnstableOffset, what).toBe(fuo);
      for (let i = 0; i < 40; i++) {
        const from = rnd.int(l.logEndOffset);
        const upTo = from + 1 + rnd.int(l.logEndOffset - from);
        expect(l.abortedTransactions(from, upTo), `${what}: aborted in [${from}, ${upTo})`).toEqual(expectedAborts(from, upTo));
      }
      for (const from of [0, rnd.int(lso + 1), rnd.int(lso + 1)]) {
        expect(readCommitted(l, from), `${what}: read committed from ${from}`).toEqual(visible.filter(([o]) => o >= from));
      }
    };
    check(log, "live");
    await log.close();
    log = openLog(fs, clock, { segmentBytes: 400 });
    check(log, "reopened");
    await log.close();
    const files = txnIndexFiles(fs);
    for (const n of files) if (rnd.int(3) === 0) fs.rm(`${DIR}/${n}`);
    log = openLog(fs, clock, { segmentBytes: 400 });
    check(log, "some .txnindex files deleted");
    await log.close();
  });
});
