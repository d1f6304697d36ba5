/**
 * The transactional checker on hand-made histories: a clean history has no anomaly, and each
 * kind of anomaly is found when planted.
 */
import { describe, expect, it } from "vitest";
import { checkTxn, parseOutput, type TxnAttempt, type TxnHistory, type TxnOutcome } from "./txn-checker.ts";

const FINAL = "final";
const TOPICS = ["out-a", "out-b"];

function attempt(tag: string, inputs: string[], outcome: TxnOutcome): TxnAttempt {
  return {
    tag,
    worker: 1,
    inputs,
    outputs: inputs.flatMap((v, i) => TOPICS.map((topic) => ({ topic, partition: i % 2, value: `${topic.slice(-1)}|${v}|${tag}` }))),
    outcome,
    reason: "",
    retries: [],
    startedAtMs: 0,
    endedAtMs: 1,
  };
}

/** in-0-0..in-0-3 processed by t1 (committed) and t3 (committed); t2 aborted in between. */
function cleanHistory(): TxnHistory {
  const t1 = attempt("t1", ["in-0-0", "in-0-1"], "committed");
  const t2 = attempt("t2", ["in-0-2", "in-0-3"], "aborted");
  const t3 = attempt("t3", ["in-0-2", "in-0-3"], "committed");
  const finalValues = (topic: string): string[] => [t1, t3].flatMap((t) => t.outputs.filter((o) => o.topic === topic).map((o) => o.value));
  return {
    attempts: new Map([t1, t2, t3].map((t) => [t.tag, t])),
    reads: [
      { reader: "consumer 1", node: 1, topic: "out-a", partition: 0, atMs: 5, values: [t1.outputs[0]!.value] },
      ...TOPICS.map((topic) => ({ reader: FINAL, node: 2, topic, partition: 0, atMs: 9, values: finalValues(topic) })),
    ],
    lso: [
      { node: 1, incarnation: 0, topic: "out-a", partition: 0, atMs: 1, lso: 2 },
      { node: 1, incarnation: 0, topic: "out-a", partition: 0, atMs: 2, lso: 4 },
      { node: 1, incarnation: 1, topic: "out-a", partition: 0, atMs: 3, lso: 3 },
    ],
    outputTopics: TOPICS,
    input: new Map([[0, ["in-0-0", "in-0-1", "in-0-2", "in-0-3", "in-0-4"]]]),
    committed: new Map([[0, 4]]),
    finalReader: FINAL,
  };
}

describe("transactional checker", () => {
  it("parses an output value", () => {
    expect(parseOutput("a|in-3-7|w2-5")).toEqual({ input: "in-3-7", tag: "w2-5" });
    expect(parseOutput("garbage")).toBeNull();
  });

  it("finds nothing in a clean history (an aborted transaction redone, an LSO drop across a restart)", () => {
    const r = checkTxn(cleanHistory());
    expect(r.anomalies).toEqual({
      abortedRead: [],
      lostCommit: [],
      torn: [],
      duplicate: [],
      missing: [],
      beyondCommitted: [],
      phantom: [],
      lsoBackwards: [],
    });
    expect(r.total).toBe(0);
    expect(r.counts).toMatchObject({
      attempts: 3,
      committed: 2,
      aborted: 1,
      inputsCommitted: 4,
      inputsTotal: 5,
      finalRecords: 8,
      readsDuringRun: 1,
    });
  });

  it("finds an aborted read and an abandoned transaction's records", () => {
    const h = cleanHistory();
    const t2 = h.attempts.get("t2")!;
    h.reads.push({ reader: "consumer 2", node: 3, topic: "out-a", partition: 0, atMs: 7, values: [t2.outputs[0]!.value] });
    h.attempts.set("t4", attempt("t4", ["in-0-4"], "abandoned"));
    h.reads.push({
      reader: "consumer 2",
      node: 3,
      topic: "out-b",
      partition: 0,
      atMs: 8,
      values: [h.attempts.get("t4")!.outputs[1]!.value],
    });
    const r = checkTxn(h);
    expect(r.anomalies.abortedRead.map((x) => [x.tag, x.outcome])).toEqual([
      ["t2", "aborted"],
      ["t4", "abandoned"],
    ]);
  });

  it("finds a lost commit, a torn transaction, duplicates, a missing input and one beyond the committed offset", () => {
    const h = cleanHistory();
    // t3's out-b records are gone: a lost commit (t3 was acknowledged) and in-0-2/3 missing in out-b.
    const finalB = h.reads.find((r) => r.reader === FINAL && r.topic === "out-b")!;
    h.reads[h.reads.indexOf(finalB)] = { ...finalB, values: finalB.values.filter((v) => !v.endsWith("|t3")) };
    // An unknown-outcome t5 of in-0-4 half visible (torn), beyond the committed offset.
    const t5 = attempt("t5", ["in-0-4"], "unknown");
    h.attempts.set("t5", t5);
    h.reads.push({ reader: FINAL, node: 2, topic: "out-a", partition: 1, atMs: 9, values: [t5.outputs[0]!.value] });
    // in-0-0 twice in out-a.
    const t6 = attempt("t6", ["in-0-0"], "unknown");
    h.attempts.set("t6", t6);
    h.reads.push({ reader: FINAL, node: 2, topic: "out-a", partition: 1, atMs: 9, values: [t6.outputs[0]!.value] });
    const r = checkTxn(h);
    expect(r.anomalies.lostCommit.map((x) => x.tag)).toEqual(["t3"]);
    expect(r.anomalies.torn.map((x) => [x.tag, x.seen, x.of])).toEqual([
      ["t5", 1, 2],
      ["t6", 1, 2],
    ]);
    expect(r.anomalies.missing).toEqual([
      { topic: "out-b", input: "in-0-2" },
      { topic: "out-b", input: "in-0-3" },
    ]);
    expect(r.anomalies.duplicate).toEqual([{ topic: "out-a", input: "in-0-0", times: 2 }]);
    expect(r.anomalies.beyondCommitted).toEqual([{ topic: "out-a", input: "in-0-4", inputPartition: 0, committed: 4 }]);
  });

  it("finds a phantom value and an LSO that went down within one incarnation", () => {
    const h = cleanHistory();
    h.reads.push({ reader: "consumer 1", node: 1, topic: "out-a", partition: 0, atMs: 6, values: ["a|in-9-9|nobody"] });
    h.lso.push({ node: 1, incarnation: 1, topic: "out-a", partition: 0, atMs: 4, lso: 1 });
    const r = checkTxn(h);
    expect(r.anomalies.phantom.map((x) => x.value)).toEqual(["a|in-9-9|nobody"]);
    expect(r.anomalies.lsoBackwards).toEqual([{ node: 1, topic: "out-a", partition: 0, from: 3, to: 1, atMs: 4 }]);
    expect(r.total).toBe(2);
  });
});
