import { describe, expect, it } from "vitest";
import { Errors, rillError } from "../../../src/base/errors.ts";
import { encodeBatch } from "../../../src/protocol/record-batch.ts";
import { codeOf, ManualClock, MemoryFileSystem, openLog, readAll, snapshot } from "./helpers.ts";

/** A batch of `n` records from producer `pid` at `epoch`, starting at sequence `seq`. */
function pbatch(pid: number, epoch: number, seq: number, n: number, tag = "v"): Buffer {
  return encodeBatch(
    Array.from({ length: n }, (_, i) => ({ value: `${tag}-${seq + i}` })),
    { producerId: pid, producerEpoch: epoch, baseSequence: seq, nowMs: 1000 },
  );
}

describe("idempotent appends", () => {
  it("a retried batch is answered with its original offsets and not appended again", () => {
    const fs = new MemoryFileSystem();
    const log = openLog(fs, new ManualClock());
    const first = log.append(pbatch(7, 0, 0, 3));
    log.append(pbatch(7, 0, 3, 2));
    const before = snapshot(fs, "/data/t-0");
    const retry = log.append(pbatch(7, 0, 0, 3));
    expect(retry.duplicate).toBe(true);
    expect([retry.baseOffset, retry.lastOffset]).toEqual([first.baseOffset, first.lastOffset]);
    expect(log.logEndOffset).toBe(5);
    expect(snapshot(fs, "/data/t-0")).toEqual(before);
  });

  it("a gap, a stale epoch and an unknown producer are rejected with nothing appended", () => {
    const fs = new MemoryFileSystem();
    const log = openLog(fs, new ManualClock());
    log.append(pbatch(7, 1, 0, 2));
    const before = snapshot(fs, "/data/t-0");
    expect(codeOf(() => log.append(pbatch(7, 1, 5, 1)))).toBe(Errors.OUT_OF_ORDER_SEQUENCE_NUMBER.code);
    expect(codeOf(() => log.append(pbatch(7, 0, 2, 1)))).toBe(Errors.INVALID_PRODUCER_EPOCH.code);
    const issued = (pid: number): void => {
      if (pid > 100) throw rillError("UNKNOWN_PRODUCER_ID", `producer_id: ${pid} was never issued`);
    };
    expect(codeOf(() => log.append(pbatch(500, 0, 0, 1), 0, issued))).toBe(Errors.UNKNOWN_PRODUCER_ID.code);
    expect(log.logEndOffset).toBe(2);
    expect(snapshot(fs, "/data/t-0")).toEqual(before);
    // the next sequence is still accepted
    expect(log.append(pbatch(7, 1, 2, 1)).baseOffset).toBe(2);
  });

  it("dedups after a clean restart (snapshot) and after a crash (rebuilt from batch headers)", async () => {
    for (const crash of [false, true]) {
      const fs = new MemoryFileSystem();
      const log = openLog(fs, new ManualClock(), { segmentBytes: 512, flushMs: 0 });
      for (let s = 0; s < 30; s += 3) log.append(pbatch(9, 0, s, 3));
      await log.flush();
      if (!crash) await log.close();
      else fs.crash();
      const again = openLog(fs, new ManualClock(), { segmentBytes: 512 }, crash);
      if (!crash) expect(fs.readdir("/data/t-0").some((n) => n.endsWith(".snapshot"))).toBe(true);
      const retry = again.append(pbatch(9, 0, 27, 3));
      expect(retry.duplicate, `crash=${crash}`).toBe(true);
      expect(retry.baseOffset).toBe(27);
      expect(codeOf(() => again.append(pbatch(9, 0, 31, 1)))).toBe(Errors.OUT_OF_ORDER_SEQUENCE_NUMBER.code);
      expect(again.append(pbatch(9, 0, 30, 1)).baseOffset).toBe(30);
    }
  });

  it("after truncation the truncated batch is no longer a duplicate: its retry is appended", () => {
    const fs = new MemoryFileSystem();
    const log = openLog(fs, new ManualClock(), { segmentBytes: 512 });
    for (let s = 0; s < 12; s += 3) log.append(pbatch(3, 0, s, 3));
    log.truncateTo(9);
    const r = log.append(pbatch(3, 0, 9, 3, "again"));
    expect(r.duplicate).toBeUndefined();
    expect(r.baseOffset).toBe(9);
    expect(
      readAll(log)
        .slice(-3)
        .map(([, v]) => v),
    ).toEqual(["again-9", "again-10", "again-11"]);
  });
});
