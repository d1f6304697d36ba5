import { describe, expect, it } from "vitest";
import type { Entry } from "../../src/raft/types.ts";
import { SafetyChecker, Violation, mixHash } from "./checker.ts";

function entry(index: number, term: number, id: number): Entry {
  const data = new Uint8Array(4);
  new DataView(data.buffer).setUint32(0, id);
  return { index, term, kind: "data", data };
}

const noLog = (): number | undefined => undefined;

describe("sim safety checkers catch what they claim to", () => {
  it("two leaders in one term", () => {
    const c = new SafetyChecker();
    c.leader(1, 3, noLog, 1);
    c.leader(1, 3, noLog, 1);
    expect(() => c.leader(2, 3, noLog, 1)).toThrow(Violation);
  });

  it("one (index, term) with two values, or two predecessors", () => {
    const c = new SafetyChecker();
    c.append(1, [entry(1, 1, 7), entry(2, 1, 8)], 0);
    c.append(2, [entry(2, 1, 8)], 1);
    expect(() => c.append(3, [entry(2, 1, 9)], 1)).toThrow(/log matching/);
    expect(() => c.append(3, [entry(2, 1, 8)], 0)).toThrow(/log matching/);
  });

  it("a leader missing an entry committed in an earlier term", () => {
    const c = new SafetyChecker();
    const log = new Map([
      [1, 1],
      [2, 1],
    ]);
    c.commit(1, 1, 2, (i) => log.get(i));
    expect(() => c.leader(2, 2, (i) => (i === 1 ? 1 : 2), 1)).toThrow(/leader completeness/);
    c.leader(3, 3, (i) => log.get(i), 1);
  });

  it("different entries or states applied at one index", () => {
    const c = new SafetyChecker();
    c.apply(1, entry(1, 1, 5), mixHash(0, 1, 6));
    c.apply(2, entry(1, 1, 5), mixHash(0, 1, 6));
    expect(() => c.apply(3, entry(1, 1, 6), mixHash(0, 1, 7))).toThrow(/state-machine safety/);
    expect(() => c.restore(3, 1, 12345)).toThrow(/state-machine safety/);
  });
});
