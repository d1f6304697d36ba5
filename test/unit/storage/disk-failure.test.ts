/**
 * DiskFailureWatch: a partition log on a disk that runs out of space mid-write. The first
 * failure is reported once and every later change refused (fail-stop, even once space is back);
 * a new process recovers the directory as after a crash, without the short write's torn bytes.
 */
import { describe, expect, it } from "vitest";
import { DiskFailureWatch, isDiskFailure } from "../../../src/storage/disk-failure.ts";
import { ForwardingFileSystem, forwardFile, type LogFile } from "../../../src/storage/fs.ts";
import { batch, ManualClock, MemoryFileSystem, openLog, readAll } from "./helpers.ts";

/** A disk with `free` bytes left while `full`: a write past them writes what fits, then fails. */
class SmallDisk extends ForwardingFileSystem {
  full = false;
  free = 0;
  open(path: string, create: boolean): LogFile {
    const f = this.inner.open(path, create);
    return forwardFile(f, {
      write: (data, position) => {
        const grows = position + data.length - f.size();
        if (this.full && grows > this.free) {
          f.write(data.subarray(0, f.size() - position + this.free), position);
          this.free = 0;
          throw Object.assign(new Error("ENOSPC: no space left on device"), { code: "ENOSPC" });
        }
        if (this.full) this.free -= Math.max(0, grows);
        f.write(data, position);
      },
    });
  }
}

describe("DiskFailureWatch", () => {
  it("reports the first disk failure once, refuses every later write, and the next process recovers without the torn bytes", () => {
    const mem = new MemoryFileSystem();
    const clock = new ManualClock(1_700_000_000_000);
    const disk = new SmallDisk(mem);
    const failures: Error[] = [];
    const log = openLog(new DiskFailureWatch(disk, (e) => failures.push(e)), clock);
    log.append(batch(2, { prefix: "a" }));
    disk.full = true;
    disk.free = 30; // part of the next batch fits: a short write
    expect(() => log.append(batch(2, { prefix: "b" }))).toThrow(/ENOSPC/);
    expect(failures.map((e) => (e as NodeJS.ErrnoException).code)).toEqual(["ENOSPC"]);
    disk.full = false; // space is back, but this process writes nothing more
    expect(() => log.append(batch(1, { prefix: "c" }))).toThrow(/ENOSPC/);
    expect(failures).toHaveLength(1);
    expect(readAll(log)).toEqual([
      [0, "a-0"],
      [1, "a-1"],
    ]);
    // The short write's bytes are on the disk (page cache) past the last whole batch.
    const next = openLog(mem, clock, {}, true);
    expect(readAll(next)).toEqual([
      [0, "a-0"],
      [1, "a-1"],
    ]);
    next.append(batch(1, { prefix: "d" }));
    expect(readAll(next).map(([o, v]) => `${o}:${v}`)).toEqual(["0:a-0", "1:a-1", "2:d-0"]);
  });

  it("takes only a failing disk's errors (ENOSPC, EDQUOT, EIO, EROFS) as a failure", () => {
    const err = (code: string) => Object.assign(new Error(code), { code });
    expect(["ENOSPC", "EDQUOT", "EIO", "EROFS"].map((c) => isDiskFailure(err(c)))).toEqual([true, true, true, true]);
    expect([isDiskFailure(err("ENOENT")), isDiskFailure(new Error("x")), isDiskFailure(null)]).toEqual([false, false, false]);
    const failures: Error[] = [];
    const fs = new DiskFailureWatch(new MemoryFileSystem(), (e) => failures.push(e));
    expect(() => fs.open("/nowhere/f", false)).toThrow(/ENOENT/);
    fs.mkdirp("/d");
    fs.writeFileAtomic("/d/f", Buffer.from("x"));
    expect(failures).toEqual([]);
  });
});
