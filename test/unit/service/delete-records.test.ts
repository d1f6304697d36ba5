import { afterEach, describe, expect, it } from "vitest";
import { type RillError, rillError } from "../../../src/base/errors.ts";
import { encodeBatch } from "../../../src/protocol/record-batch.ts";
import {
  DELETE_RECORDS_PARTITIONS_MAX,
  type DeleteRecordsForwarder,
  type DeleteRecordsInput,
  deleteRecords,
} from "../../../src/service/delete-records.ts";
import { type Core, openCore } from "./helpers.ts";

const cores: Core[] = [];
afterEach(async () => {
  for (const c of cores.splice(0)) await c.close();
});

/** Node 1 with topic "t": partition 0 and 1 led here, partition 2 led by broker 2; 5 records in each led here. */
async function core(): Promise<Core> {
  const c = openCore();
  cores.push(c);
  await c.topic("t", [1, 1, 2]);
  for (const p of [0, 1])
    c.rm.append(
      "t",
      p,
      encodeBatch(
        [1, 2, 3, 4, 5].map((i) => ({ value: `v${i}` })),
        { nowMs: 1 },
      ),
      "leader",
    );
  return c;
}

const here = { forwarded: false };
const input = (...parts: [string, number, bigint][]): DeleteRecordsInput => ({
  partitions: parts.map(([topic, partition, offset]) => ({ topic, partition, offset })),
});

describe("deleteRecords", () => {
  it("raises the log start offset of a partition led here; reads below it are OFFSET_OUT_OF_RANGE", async () => {
    const c = await core();
    const res = await deleteRecords(c.rm, input(["t", 0, 3n]), here, null);
    expect(res.partitions).toEqual([{ topic: "t", partition: 0, lowWatermark: 3, error: null }]);
    expect(c.rm.earliestOffset("t", 0).offset).toBe(3);
    const below = c.rm.readPartition({ topic: "t", partition: 0, offset: 2, maxBytes: 1000 });
    expect((below.error as RillError).kind.name).toBe("OFFSET_OUT_OF_RANGE");
    // A lower offset later changes nothing: the log start offset never moves back.
    expect((await deleteRecords(c.rm, input(["t", 0, 1n]), here, null)).partitions[0]!.lowWatermark).toBe(3);
    expect(c.rm.earliestOffset("t", 1).offset).toBe(0);
  });

  it("-1 means the high watermark; past it (or below -1) is OFFSET_OUT_OF_RANGE and nothing changes", async () => {
    const c = await core();
    const res = await deleteRecords(c.rm, input(["t", 0, 6n], ["t", 0 + 1, -2n]), here, null);
    expect(res.partitions.map((p) => [p.lowWatermark, p.error?.kind.name])).toEqual([
      [-1, "OFFSET_OUT_OF_RANGE"],
      [-1, "OFFSET_OUT_OF_RANGE"],
    ]);
    expect(res.partitions[0]!.error!.message).toMatch(/offset: 6 is outside \[0, 5\]/);
    expect([c.rm.earliestOffset("t", 0).offset, c.rm.earliestOffset("t", 1).offset]).toEqual([0, 0]);
    const all = await deleteRecords(c.rm, input(["t", 1, -1n]), here, null);
    expect(all.partitions[0]).toMatchObject({ lowWatermark: 5, error: null });
    expect(c.rm.latestOffset("t", 1).offset).toBe(5);
  });

  it("refuses a compact-only topic with POLICY_VIOLATION (compact,delete is fine)", async () => {
    const c = await core();
    await c.topic("k", [1], { "cleanup.policy": "compact" });
    await c.topic("kd", [1], { "cleanup.policy": "compact,delete" });
    const res = await deleteRecords(c.rm, input(["k", 0, 0n], ["kd", 0, 0n]), here, null);
    expect(res.partitions.map((p) => p.error?.kind.name ?? null)).toEqual(["POLICY_VIOLATION", null]);
    expect(res.partitions[0]!.error!.message).toMatch(/cleanup\.policy compact cannot be deleted/);
  });

  it("answers unknown topics and partitions per partition, in request order", async () => {
    const c = await core();
    const res = await deleteRecords(c.rm, input(["nope", 0, 1n], ["t", 7, 1n], ["t", 0, 2n]), here, null);
    expect(res.partitions.map((p) => [p.topic, p.partition, p.lowWatermark, p.error?.kind.name ?? null])).toEqual([
      ["nope", 0, -1, "UNKNOWN_TOPIC_OR_PARTITION"],
      ["t", 7, -1, "UNKNOWN_TOPIC_OR_PARTITION"],
      ["t", 0, 2, null],
    ]);
  });

  it("passes partitions led elsewhere to their leader, one call per leader, and merges the answers in order", async () => {
    const c = await core();
    const calls: Array<[number, DeleteRecordsInput]> = [];
    const forwarder: DeleteRecordsForwarder = async (leader, req) => {
      calls.push([leader, req]);
      return { partitions: req.partitions.map((p) => ({ topic: p.topic, partition: p.partition, lowWatermark: 42, error: null })) };
    };
    const res = await deleteRecords(c.rm, input(["t", 2, 10n], ["t", 0, 1n]), here, forwarder);
    expect(calls).toEqual([[2, input(["t", 2, 10n])]]);
    expect(res.partitions.map((p) => [p.partition, p.lowWatermark])).toEqual([
      [2, 42],
      [0, 1],
    ]);
    // A leader that cannot be reached: its partitions carry the error, the others are done.
    const down: DeleteRecordsForwarder = () => Promise.reject(rillError("REQUEST_TIMED_OUT", "broker 2 did not answer"));
    const res2 = await deleteRecords(c.rm, input(["t", 2, 10n], ["t", 1, 1n]), here, down);
    expect(res2.partitions.map((p) => p.error?.kind.name ?? null)).toEqual(["REQUEST_TIMED_OUT", null]);
  });

  it("a forwarded request is answered here, never passed on: NOT_LEADER_OR_FOLLOWER where leadership moved", async () => {
    const c = await core();
    const never: DeleteRecordsForwarder = () => {
      throw new Error("must not forward");
    };
    const res = await deleteRecords(c.rm, input(["t", 2, 1n]), { forwarded: true }, never);
    expect(res.partitions[0]!.error?.kind.name).toBe("NOT_LEADER_OR_FOLLOWER");
  });

  it("refuses a whole call that names nothing, too much, or a partition twice", async () => {
    const c = await core();
    await expect(deleteRecords(c.rm, input(), here, null)).rejects.toThrow(/partitions: empty/);
    await expect(deleteRecords(c.rm, input(["t", 0, 1n], ["t", 0, 2n]), here, null)).rejects.toThrow(/partitions\[1\]: t-0 is named twice/);
    const many = input(...Array.from({ length: DELETE_RECORDS_PARTITIONS_MAX + 1 }, (_, i): [string, number, bigint] => ["t", i, 0n]));
    await expect(deleteRecords(c.rm, many, here, null)).rejects.toThrow(/more than the 10000 allowed/);
    expect(c.rm.earliestOffset("t", 0).offset).toBe(0);
  });
});
