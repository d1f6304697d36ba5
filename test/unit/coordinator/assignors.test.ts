import { describe, expect, it } from "vitest";
import { SeededRandom, seedFromEnv } from "../../../src/base/random.ts";
import type { AssignorInput, AssignorMember, TargetAssignment } from "../../../src/coordinator/assignors.ts";
import { rangeAssignor, uniformAssignor } from "../../../src/coordinator/assignors.ts";
import type { TopicPartitions } from "../../../src/coordinator/partitions.ts";
import { keysOf, parseTpKey } from "../../../src/coordinator/partitions.ts";

function member(memberId: string, topics: string[], instanceId: string | null = null): AssignorMember {
  return { memberId, instanceId, topics };
}

function input(members: AssignorMember[], counts: Record<string, number>, current: Record<string, TopicPartitions[]> = {}): AssignorInput {
  return { members, partitionCounts: new Map(Object.entries(counts)), current: new Map(Object.entries(current)) };
}

function sizes(t: TargetAssignment): number[] {
  return [...t.values()].map((tps) => keysOf(tps).size);
}

/** Every partition of a subscribed topic is given exactly once, to a member that subscribes to it. */
function expectComplete(inp: AssignorInput, out: TargetAssignment): void {
  const owner = new Map<string, string>();
  for (const [id, tps] of out) {
    const m = inp.members.find((x) => x.memberId === id);
    expect(m).toBeDefined();
    for (const k of keysOf(tps)) {
      expect(owner.has(k), `${k} given twice`).toBe(false);
      expect(m?.topics).toContain(parseTpKey(k).topic);
      owner.set(k, id);
    }
  }
  for (const [topic, n] of inp.partitionCounts) {
    if (!inp.members.some((m) => m.topics.includes(topic))) continue;
    for (let p = 0; p < n; p++) expect(owner.has(`${topic}:${p}`), `${topic}:${p} unassigned`).toBe(true);
  }
  expect([...out.keys()].sort()).toEqual(inp.members.map((m) => m.memberId).sort());
}

/** No partition could move to an eligible member with at least two fewer partitions. */
function expectBalanced(inp: AssignorInput, out: TargetAssignment): void {
  for (const x of inp.members) {
    for (const y of inp.members) {
      const lx = keysOf(out.get(x.memberId) ?? []).size;
      const ly = keysOf(out.get(y.memberId) ?? []).size;
      if (lx - ly < 2) continue;
      const movable = [...keysOf(out.get(x.memberId) ?? [])].filter((k) => y.topics.includes(parseTpKey(k).topic));
      expect(movable, `${x.memberId} (${lx}) could give ${y.memberId} (${ly}) one of ${movable}`).toEqual([]);
    }
  }
}

describe("uniform assignor", () => {
  it("spreads 6 partitions over 3 members, 2 each, round-robin", () => {
    const inp = input([member("a", ["t"]), member("b", ["t"]), member("c", ["t"])], { t: 6 });
    const out = uniformAssignor(inp);
    expect(Object.fromEntries(out)).toEqual({
      a: [{ topic: "t", partitions: [0, 3] }],
      b: [{ topic: "t", partitions: [1, 4] }],
      c: [{ topic: "t", partitions: [2, 5] }],
    });
    expectComplete(inp, out);
    expect(uniformAssignor(inp)).toEqual(out);
  });

  it("is sticky: a new member takes only what it must, a leaving member's partitions go to the others", () => {
    const current = { a: [{ topic: "t", partitions: [0, 1, 2] }], b: [{ topic: "t", partitions: [3, 4, 5] }] };
    const grow = uniformAssignor(input([member("a", ["t"]), member("b", ["t"]), member("c", ["t"])], { t: 6 }, current));
    expect(sizes(grow)).toEqual([2, 2, 2]);
    for (const id of ["a", "b"] as const) {
      const kept = [...keysOf(grow.get(id) ?? [])];
      expect(kept.every((k) => keysOf(current[id]).has(k))).toBe(true);
    }
    const shrink = uniformAssignor(input([member("a", ["t"]), member("c", ["t"])], { t: 6 }, Object.fromEntries(grow)));
    for (const id of ["a", "c"]) {
      const before = keysOf(grow.get(id) ?? []);
      const after = keysOf(shrink.get(id) ?? []);
      expect([...before].every((k) => after.has(k))).toBe(true);
    }
    expect(sizes(shrink)).toEqual([3, 3]);
  });

  it("balances different subscriptions as far as they allow", () => {
    const inp = input([member("a", ["x"]), member("b", ["x", "y"]), member("c", ["y"])], { x: 4, y: 2 });
    const out = uniformAssignor(inp);
    expectComplete(inp, out);
    expectBalanced(inp, out);
    expect(sizes(out)).toEqual([2, 2, 2]);
  });

  it("ignores topics that do not exist and drops current partitions that no longer do", () => {
    const inp = input(
      [member("a", ["t", "ghost"])],
      { t: 2 },
      {
        a: [
          { topic: "t", partitions: [0, 1, 7] },
          { topic: "ghost", partitions: [0] },
        ],
      },
    );
    expect(Object.fromEntries(uniformAssignor(inp))).toEqual({ a: [{ topic: "t", partitions: [0, 1] }] });
  });

  it("keeps every partition once, balanced and sticky over random inputs", () => {
    const seed = seedFromEnv();
    const rnd = new SeededRandom(seed);
    const topics = ["t0", "t1", "t2", "t3"];
    let current = new Map<string, TopicPartitions[]>();
    for (let round = 0; round < 300; round++) {
      const n = 1 + rnd.int(8);
      const homogeneous = rnd.int(2) === 0;
      const shared = topics.filter(() => rnd.int(2) === 0);
      const members = Array.from({ length: n }, (_, i) =>
        member(`m${(i * 7 + round) % 11}`, homogeneous ? shared : topics.filter(() => rnd.int(2) === 0)),
      );
      const unique = [...new Map(members.map((m) => [m.memberId, m])).values()];
      const counts = Object.fromEntries(topics.map((t) => [t, rnd.int(10)]));
      const inp: AssignorInput = { members: unique, partitionCounts: new Map(Object.entries(counts)), current };
      const out = uniformAssignor(inp);
      const why = `seed ${seed} round ${round}`;
      try {
        expectComplete(inp, out);
        expectBalanced(inp, out);
        if (homogeneous && unique.length > 0) {
          const s = sizes(out);
          expect(Math.max(...s) - Math.min(...s)).toBeLessThanOrEqual(1);
        }
      } catch (e) {
        throw new Error(`${why}: ${(e as Error).message}`);
      }
      current = out;
    }
  });
});

describe("range assignor", () => {
  it("gives contiguous ranges per topic, the first members one more", () => {
    const inp = input([member("b", ["t", "u"]), member("a", ["t", "u"])], { t: 5, u: 2 });
    expect(Object.fromEntries(rangeAssignor(inp))).toEqual({
      a: [
        { topic: "t", partitions: [0, 1, 2] },
        { topic: "u", partitions: [0] },
      ],
      b: [
        { topic: "t", partitions: [3, 4] },
        { topic: "u", partitions: [1] },
      ],
    });
  });

  it("orders static members by instance id, and gives members only topics they subscribe to", () => {
    const inp = input([member("a", ["t"], "z"), member("b", ["t"], "y"), member("c", ["other"])], { t: 4 });
    const out = rangeAssignor(inp);
    expect(out.get("b")).toEqual([{ topic: "t", partitions: [0, 1] }]);
    expect(out.get("a")).toEqual([{ topic: "t", partitions: [2, 3] }]);
    expect(out.get("c")).toEqual([]);
    expectComplete(inp, out);
  });
});
