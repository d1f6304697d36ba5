/**
 * The coordinator's invariants crash (AssertionError) when a record would break them: each is
 * driven to fail through `replay` (the only writer) and through the assertion helper, next to
 * the legal move that passes.
 */
import { describe, expect, it } from "vitest";
import { AssertionError } from "../../../src/base/assert.ts";
import { SeededRandom } from "../../../src/base/random.ts";
import { GroupCoordinator } from "../../../src/coordinator/coordinator.ts";
import { LEFT_STATIC_MEMBER_EPOCH, assertMemberEpochRises } from "../../../src/coordinator/group-state.ts";
import { assignmentRecord, offsetRecord } from "../../../src/coordinator/records.ts";

const coordinator = (): GroupCoordinator =>
  new GroupCoordinator({ random: new SeededRandom(1), topics: { partitionCount: (t) => (t === "t" ? 4 : undefined) } });

const assignment = (memberId: string, memberEpoch: number, partitions: number[], previousMemberEpoch = memberEpoch - 1) =>
  assignmentRecord({
    groupId: "g",
    memberId,
    memberEpoch,
    previousMemberEpoch,
    state: "stable",
    assigned: partitions.length > 0 ? [{ topic: "t", partitions }] : [],
    pendingRevocation: [],
  });

const offset = (value: number) =>
  offsetRecord({ groupId: "g", topic: "t", partition: 0, offset: value, metadata: "", leaderEpoch: -1, commitTimestampMs: 1 });

describe("coordinator invariants", () => {
  it("a member epoch going backwards crashes", () => {
    const c = coordinator();
    c.replay(assignment("m", 3, [0]));
    c.replay(assignment("m", 4, [0, 1]));
    expect(() => c.replay(assignment("m", 2, [0]))).toThrow(AssertionError);
    expect(() => c.replay(assignment("m", 2, [0]))).toThrow("member m's epoch goes backwards from 4 to 2");
  });

  it("a static member leaving for a while and coming back is not a step backwards", () => {
    const c = coordinator();
    c.replay(assignment("m", 5, [0]));
    c.replay(assignment("m", LEFT_STATIC_MEMBER_EPOCH, [0], 5));
    c.replay(assignment("m", 5, [0], 5));
    expect(() => assertMemberEpochRises("g", "m", 5, LEFT_STATIC_MEMBER_EPOCH)).not.toThrow();
    expect(() => assertMemberEpochRises("g", "m", LEFT_STATIC_MEMBER_EPOCH, 1)).not.toThrow();
    expect(() => assertMemberEpochRises("g", "m", 5, 4)).toThrow(AssertionError);
  });

  it("a partition given to a second owner crashes", () => {
    const c = coordinator();
    c.replay(assignment("a", 1, [0, 1]));
    c.replay(assignment("b", 1, [2]));
    expect(() => c.replay(assignment("b", 2, [1, 2]))).toThrow(/partition t:1 given to b while a owns it/);
  });

  it("a negative committed offset crashes on replay; a commit asking for one is refused before a record exists", () => {
    const c = coordinator();
    c.replay(offset(0));
    c.replay(offset(42));
    expect(() => c.replay(offset(-1))).toThrow(AssertionError);
    const res = c.commitOffsets({ groupId: "g", memberId: "", memberEpoch: -1, offsets: [{ topic: "t", partition: 0, offset: -5 }] }, 1);
    expect(res.records).toEqual([]);
    expect(res.response.offsets[0]?.error?.kind.name).toBe("INVALID_ARGUMENT");
    expect(c.fetchOffsets("g", [{ topic: "t", partitions: [0] }])[0]?.offset).toBe(42);
  });
});
