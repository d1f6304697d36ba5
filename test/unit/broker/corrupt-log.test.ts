/**
 * The broker's log of corrupt reads (metrics.ts `logCorruptReads`): each `rill:corrupt-read`
 * event of its own ReplicaManager becomes an error line naming the partition and the batch's
 * offset, once per CORRUPT_LOG_INTERVAL_MS per batch (a client retrying a bad batch must not
 * flood the log); events of another broker of the process are not its own.
 */
import { describe, expect, it } from "vitest";
import { CORRUPT_LOG_INTERVAL_MS, logCorruptReads } from "../../../src/broker/metrics.ts";
import { publishCorruptRead } from "../../../src/service/corrupt-reads.ts";

describe("logCorruptReads", () => {
  it("logs a bad batch at error, once per interval with the repeats counted, and only its own broker's", () => {
    const lines: Array<{ obj: Record<string, unknown>; msg: string | undefined }> = [];
    const log = {
      info() {},
      warn() {},
      error: (obj: object, msg?: string) => void lines.push({ obj: obj as Record<string, unknown>, msg }),
    };
    const mine = {};
    let now = 1000;
    const stop = logCorruptReads(mine, log, () => now);
    const read = (source: object, offset: number) =>
      publishCorruptRead({ source, topic: "t", partition: 3, offset, skipTo: offset + 5, reason: "gzip: bad", api: "fetch" });
    try {
      read(mine, 10);
      read(mine, 10);
      read(mine, 10);
      read({}, 10); // another broker's
      read(mine, 20);
      expect(lines.map((l) => [l.obj.offset, l.obj.repeats])).toEqual([
        [10, 0],
        [20, 0],
      ]);
      expect(lines[0]!.obj).toMatchObject({ topic: "t", partition: 3, skipTo: 15, api: "fetch", reason: "gzip: bad" });
      expect(lines[0]!.msg).toContain("CORRUPT_MESSAGE");
      now += CORRUPT_LOG_INTERVAL_MS;
      read(mine, 10);
      expect(lines.at(-1)!.obj).toMatchObject({ offset: 10, repeats: 2 });
    } finally {
      stop();
    }
    publishCorruptRead({ source: mine, topic: "t", partition: 3, offset: 30, skipTo: 31, reason: "r", api: "fetch" });
    expect(lines).toHaveLength(3);
  });
});
