import { describe, expect, it } from "vitest";
import { MemoryStorage } from "../../../src/raft/storage.ts";
import type { Entry } from "../../../src/raft/types.ts";

function ents(from: number, terms: number[]): Entry[] {
  return terms.map((term, k) => ({ index: from + k, term, kind: "data", data: new Uint8Array(10) }));
}

describe("MemoryStorage", () => {
  it("starts empty with the voters in its snapshot", () => {
    const s = new MemoryStorage([1, 2, 3]);
    expect(s.firstIndex()).toBe(1);
    expect(s.lastIndex()).toBe(0);
    expect(s.term(0)).toBe(0);
    expect(s.term(1)).toBeUndefined();
    expect(s.initialState()).toEqual({ hardState: { term: 0, vote: 0, commit: 0 }, voters: [1, 2, 3] });
  });

  it("appends, and truncates a conflicting suffix", () => {
    const s = new MemoryStorage([1]);
    s.append(ents(1, [1, 1, 1, 2]));
    s.append(ents(3, [3]));
    expect(s.lastIndex()).toBe(3);
    expect([1, 2, 3].map((i) => s.term(i))).toEqual([1, 1, 3]);
    expect(() => s.append(ents(5, [3]))).toThrow(/gap/);
  });

  it("limits reads by bytes but returns at least one entry", () => {
    const s = new MemoryStorage([1]);
    s.append(ents(1, [1, 1, 1, 1]));
    expect(s.entries(1, 5, 0)).toHaveLength(1);
    expect(s.entries(1, 5, 52)).toHaveLength(2);
    expect(s.entries(1, 5, 1 << 20)).toHaveLength(4);
  });

  it("snapshots and compacts, keeping the term of the last compacted entry", () => {
    const s = new MemoryStorage([1]);
    s.append(ents(1, [1, 1, 2, 2, 3]));
    s.setHardState({ term: 3, vote: 1, commit: 4 });
    const snap = s.createSnapshot(4, new Uint8Array([7]));
    expect(snap.meta).toEqual({ index: 4, term: 2, voters: [1] });
    expect(() => s.compact(5)).toThrow(/past the snapshot/);
    s.compact(3);
    expect(s.firstIndex()).toBe(4);
    expect(s.term(3)).toBe(2);
    expect(s.term(2)).toBeUndefined();
    expect(s.entries(4, 6, 1 << 20).map((e) => e.index)).toEqual([4, 5]);
    expect(() => s.createSnapshot(5, new Uint8Array())).toThrow(/uncommitted/);
  });

  it("replaces the log with a snapshot received from a leader", () => {
    const s = new MemoryStorage([1, 2]);
    s.append(ents(1, [1, 1]));
    s.applySnapshot({ meta: { index: 10, term: 4, voters: [1, 2] }, data: new Uint8Array() });
    expect(s.firstIndex()).toBe(11);
    expect(s.lastIndex()).toBe(10);
    expect(s.term(10)).toBe(4);
    s.append(ents(11, [4]));
    expect(s.lastIndex()).toBe(11);
  });
});
