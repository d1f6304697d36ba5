/** What the broker reads from the OS: process liveness and start time, the open-file limit, and `max.partitions` from it. */
import { describe, expect, it } from "vitest";
import { RillError } from "../../../src/base/errors.ts";
import {
  BROKER_RESERVED_DESCRIPTORS,
  isProcessAlive,
  openFileLimit,
  parseOpenFileLimit,
  partitionLimit,
  processStartTime,
} from "../../../src/broker/process-info.ts";
import { startupError } from "../../../src/broker/run.ts";

const linux = process.platform === "linux";
const cfg = { maxPartitions: 10_000, maxConnections: 256, logFileHandlesMax: 128 };

describe("process-info", () => {
  it.runIf(linux)("this process is alive with a stable start time; a pid that does not exist is not", () => {
    const t = processStartTime(process.pid);
    expect(t).toMatch(/^\d+$/);
    expect(processStartTime(process.pid)).toBe(t);
    expect(isProcessAlive(process.pid)).toBe(true);
    expect(isProcessAlive(2 ** 22 + 7)).toBe(false);
    expect(processStartTime(2 ** 22 + 7)).toBeNull();
  });

  it("parses the soft open-file limit of /proc/<pid>/limits", () => {
    const text =
      "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 4096                 files\n";
    expect(parseOpenFileLimit(text)).toBe(1024);
    expect(parseOpenFileLimit(text.replace("1024 ", "unlimited "))).toBeNull();
    expect(parseOpenFileLimit("nothing")).toBeNull();
    if (linux) expect(openFileLimit()).toBeGreaterThan(0);
  });

  it("max.partitions is what the open-file limit leaves after the broker, connections and the handle pool", () => {
    const l = partitionLimit(cfg, 1024);
    expect(l.max).toBe(1024 - BROKER_RESERVED_DESCRIPTORS - 256 - 128);
    expect(l.why).toMatch(/open-file limit 1024/);
    expect(partitionLimit(cfg, 1_000_000)).toEqual({ max: 10_000, why: "10000 configured" });
    expect(partitionLimit(cfg, null).max).toBe(10_000);
    expect(() => partitionLimit(cfg, 256)).toThrow(/max\.partitions: the open-file limit \(ulimit -n\) 256 leaves no descriptor/);
  });

  it("a start that runs out of descriptors becomes one line naming the open-file limit", () => {
    const emfile = Object.assign(new Error("EMFILE: too many open files, open '/d/t-0/00000000000000000000.log'"), { code: "EMFILE" });
    const e = startupError(emfile, 1024);
    expect(e).toBeInstanceOf(RillError);
    expect((e as Error).message).toMatch(/open-file limit \(ulimit -n 1024\) was reached/);
    expect((e as Error).message).not.toContain("\n");
    const other = new Error("other");
    expect(startupError(other, 1024)).toBe(other);
  });
});
