/**
 * The checker of the Go and C++ interop scenario (orders-scenario.ts) on hand-made member
 * outputs: it passes a clean run and finds each kind of problem it is there for.
 */
import { describe, expect, it } from "vitest";
import { type Line, type MemberLog, type Produced, checkGroup, uncommittedOf } from "./orders-scenario.ts";

const produced: Produced[] = [0, 1, 2, 3].map((o) => ({ partition: 0, offset: o, key: `k${o}`, value: `v${o}` }));
const rec = (o: number): Line => ({ type: "record", partition: 0, offset: o, key: `k${o}`, value: `v${o}` });
const committed = (o: number): Line => ({ type: "committed", partition: 0, offset: o, commit_id: o });
const member = (name: string, lines: Line[]): MemberLog => ({ name, lines });

describe("the polyglot scenario's checker", () => {
  it("takes a member's uncommitted range from its last confirmed commit of each partition", () => {
    expect(uncommittedOf(member("a", [rec(0), rec(1), committed(2), rec(2), rec(3)]))).toEqual(new Set(["0:2", "0:3"]));
    expect(uncommittedOf(member("a", [rec(0), rec(1)]))).toEqual(new Set(["0:0", "0:1"]));
    expect(uncommittedOf(member("a", [rec(0), committed(1)]))).toEqual(new Set());
  });

  it("passes a run whose only duplicates are the killed member's uncommitted records", () => {
    const victim = member("victim", [rec(0), rec(1), committed(2), rec(2), rec(3)]);
    const survivor = member("survivor", [rec(2), committed(3), rec(3), committed(4)]);
    expect(checkGroup("g", [victim, survivor], produced, uncommittedOf(victim))).toEqual([]);
  });

  it("finds a lost record, a changed one, an unexpected duplicate, an expected one missing, and going backwards", () => {
    const a = member("a", [rec(0), committed(1), { ...rec(1), value: "changed" }, committed(2), committed(1)]);
    const b = member("b", [rec(0), rec(3), rec(1)]);
    const problems = checkGroup("g", [a, b], produced, new Set(["0:2"]));
    expect(problems).toEqual(
      expect.arrayContaining([
        "g: orders-0:2 was never delivered",
        "g: a got orders-0:1 = k1/changed, produced k1/v1",
        "g: orders-0:0 delivered 2 times (to a, b), expected 1",
        "g: orders-0:2 (expected twice) was never delivered",
        "g: a committed orders-0 at 1 after 2",
        "g: b got orders-0:1 after offset 3",
      ]),
    );
  });

  it("finds a record delivered three times where twice was expected", () => {
    const problems = checkGroup(
      "g",
      [member("a", [rec(0), rec(1), rec(2), rec(3)]), member("b", [rec(3)]), member("c", [rec(3)])],
      produced,
      new Set(["0:3"]),
    );
    expect(problems).toEqual(["g: orders-0:3 delivered 3 times (to a, b, c), expected 2"]);
  });
});
