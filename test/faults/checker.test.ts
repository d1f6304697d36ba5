/**
 * The fault checker on synthetic histories: a clean history passes, and each anomaly class is
 * found when planted (a checker that never complains proves nothing). No cluster; fast.
 */
import { describe, expect, it } from "vitest";
import { check, FINAL_READER } from "./checker.ts";
import { checkOffsetReads, type Commit } from "./group-failover.ts";
import { newHistory, outcomeOfCallError, outcomeOfDetail, type History, type Outcome, type Read } from "./history.ts";

function write(h: History, value: string, partition: number, outcome: Outcome): void {
  h.writes.set(value, { value, producer: 1, partition, node: 1, sentAtMs: 0, doneAtMs: 1, outcome });
}

function read(h: History, partition: number, from: number, entries: [number, string][], reader = FINAL_READER, node = 1): void {
  const r: Read = { reader, node, partition, from, atMs: 0, offsets: entries.map((e) => e[0]), values: entries.map((e) => e[1]) };
  h.reads.push(r);
}

/** a@0 b@1 acknowledged in partition 0, c unknown (present at 2), read back through two nodes. */
function clean(): History {
  const h = newHistory();
  write(h, "a", 0, { kind: "ok", partition: 0, offset: 0 });
  write(h, "b", 0, { kind: "ok", partition: 0, offset: 1 });
  write(h, "c", 0, { kind: "unknown", reason: "grpc status 4: deadline" });
  write(h, "d", 0, { kind: "unknown", reason: "grpc status 14: unavailable" });
  write(h, "e", 0, { kind: "failed", code: 19, name: "NOT_ENOUGH_REPLICAS", message: "" });
  read(
    h,
    0,
    0,
    [
      [0, "a"],
      [1, "b"],
    ],
    "consumer 1",
    2,
  );
  for (const node of [1, 2, 3])
    read(
      h,
      0,
      0,
      [
        [0, "a"],
        [1, "b"],
        [2, "c"],
      ],
      FINAL_READER,
      node,
    );
  return h;
}

describe("fault checker", () => {
  it("passes a clean history and counts outcomes", () => {
    const r = check(clean());
    expect(r.total).toBe(0);
    expect(r.counts).toMatchObject({
      attempted: 5,
      acknowledged: 2,
      failed: 1,
      unknown: 2,
      unknownPresent: 1,
      consumerRecords: 2,
      finalRecords: 9,
    });
  });

  it("finds an acknowledged value missing from the read-back (lost)", () => {
    const h = clean();
    write(h, "f", 1, { kind: "ok", partition: 1, offset: 0 });
    const r = check(h);
    expect(r.anomalies.lost.map((x) => x.value)).toEqual(["f"]);
  });

  it("finds a value a consumer read that the read-back no longer holds (lost)", () => {
    const h = clean();
    read(h, 0, 3, [[3, "d"]], "consumer 2", 3);
    const r = check(h);
    expect(r.anomalies.lost.map((x) => x.value)).toEqual(["d"]);
  });

  it("finds one value at two offsets (duplicate)", () => {
    const h = clean();
    read(h, 0, 3, [[3, "a"]], FINAL_READER, 1);
    const r = check(h);
    expect(r.anomalies.duplicate.map((x) => x.value)).toEqual(["a"]);
  });

  it("finds two values at one offset across nodes (inconsistent)", () => {
    const h = clean();
    read(h, 0, 2, [[2, "d"]], FINAL_READER, 3);
    const r = check(h);
    expect(r.anomalies.inconsistent.some((x) => x.partition === 0 && x.offset === 2 && Object.keys(x.values).sort().join() === "c,d")).toBe(
      true,
    );
  });

  it("finds an acknowledged offset holding another value (inconsistent)", () => {
    const h = newHistory();
    write(h, "a", 0, { kind: "ok", partition: 0, offset: 1 });
    write(h, "x", 0, { kind: "unknown", reason: "t" });
    read(h, 0, 0, [
      [0, "a"],
      [1, "x"],
    ]);
    const r = check(h);
    expect(r.anomalies.inconsistent.map((x) => x.what)).toContain("a was acknowledged at 0/1, which holds x");
  });

  it("finds a value whose produce definitely failed (aborted read)", () => {
    const h = clean();
    read(h, 0, 3, [[3, "e"]], "consumer 1", 1);
    const r = check(h);
    expect(r.anomalies.abortedRead.map((x) => x.value)).toEqual(["e"]);
  });

  it("finds offsets going backwards, and offsets jumped over, in one read", () => {
    const h = clean();
    read(
      h,
      0,
      0,
      [
        [0, "a"],
        [2, "c"],
        [1, "b"],
      ],
      "consumer 1",
      1,
    );
    const r = check(h);
    expect(r.anomalies.nonmonotonic).toHaveLength(1);
    expect(r.anomalies.skip).toHaveLength(1);
    const h2 = clean();
    read(h2, 0, 1, [[0, "a"]], "consumer 1", 1);
    expect(check(h2).anomalies.nonmonotonic).toHaveLength(1);
  });

  it("finds a value nobody wrote (inconsistent)", () => {
    const h = clean();
    read(h, 0, 3, [[3, "zz"]], FINAL_READER, 1);
    expect(check(h).anomalies.inconsistent.map((x) => x.what)).toContain('value "zz" read, but no producer sent it');
  });

  it("classifies errors: contract errors are definite, timeouts and lost connections unknown", () => {
    expect(outcomeOfDetail({ code: 19, name: "NOT_ENOUGH_REPLICAS", message: "m" }).kind).toBe("failed");
    expect(outcomeOfDetail({ code: 6, name: "NOT_LEADER_OR_FOLLOWER", message: "m" }).kind).toBe("failed");
    expect(outcomeOfDetail({ code: 7, name: "REQUEST_TIMED_OUT", message: "m" }).kind).toBe("unknown");
    expect(outcomeOfDetail({ code: 20, name: "NOT_ENOUGH_REPLICAS_AFTER_APPEND", message: "m" }).kind).toBe("unknown");
    expect(outcomeOfCallError(Object.assign(new Error("x"), { code: 14, details: "connection refused" })).kind).toBe("unknown");
  });
});

describe("committed-offset reads checker", () => {
  const ok = (n: number, doneAtMs: number): Commit => ({
    n,
    node: 1,
    sentAtMs: doneAtMs - 1,
    doneAtMs,
    outcome: { kind: "ok", partition: -1, offset: n },
  });
  const commits: Commit[] = [
    ok(1, 10),
    ok(2, 20),
    { n: 3, node: 1, sentAtMs: 25, doneAtMs: 40, outcome: { kind: "failed", code: 6, name: "NOT_LEADER_OR_FOLLOWER", message: "m" } },
    ok(4, 50),
  ];
  const read = (sentAtMs: number, doneAtMs: number, v: number, node = 2) => ({ who: "reader", node, sentAtMs, doneAtMs, values: [v, v] });

  it("passes reads that never go below an acknowledged commit nor backwards", () => {
    expect(checkOffsetReads(commits, [read(5, 6, -1), read(15, 16, 1), read(19, 21, 2), read(30, 31, 2), read(55, 56, 4)])).toEqual([]);
  });

  it("finds a lost commit, a failed commit read, a read going backwards and a torn commit", () => {
    const v = checkOffsetReads(commits, [
      read(25, 26, 1),
      read(41, 42, 3),
      read(43, 44, 2),
      { who: "r", node: 1, sentAtMs: 60, doneAtMs: 61, values: [4, 2] },
    ]);
    expect(v.filter((x) => x.startsWith("lost commit"))).toHaveLength(2); // 1 after 2 was acknowledged; min(4,2) after 4
    expect(v.some((x) => x.startsWith("aborted commit read"))).toBe(true);
    expect(v.some((x) => x.startsWith("committed offset moved backwards"))).toBe(true);
    expect(v.some((x) => x.startsWith("torn commit"))).toBe(true);
  });
});
