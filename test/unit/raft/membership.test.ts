/**
 * Single-server membership changes (thesis 4.2, KIP-853): observers catch up and are added one
 * at a time, voters are removed one at a time, the configuration takes effect when appended,
 * survives restarts and snapshots, and every refused change leaves the log as it was.
 */
import { describe, expect, it } from "vitest";
import { RillError } from "../../../src/base/errors.ts";
import { decodeMessage, encodeMessage } from "../../../src/raft/codec.ts";
import { decodeVoterSet, encodeVoterSet } from "../../../src/raft/config.ts";
import { DiskRaftStorage } from "../../../src/raft/disk-storage.ts";
import { MemoryStorage } from "../../../src/raft/storage.ts";
import type { Message, NodeId } from "../../../src/raft/types.ts";
import { MemoryFileSystem } from "../../../src/storage/fs.ts";
import { TestCluster } from "./harness.ts";

/** Voters 1-3 and, when asked, observers 4.. that started with the same static voters. */
function cluster(observers: readonly NodeId[] = [4]): TestCluster {
  const ids = [1, 2, 3, ...observers];
  const storages = new Map(ids.map((id) => [id, new MemoryStorage([1, 2, 3])] as const));
  const c = new TestCluster(ids, {}, storages);
  for (const id of ids) c.node(id).setObservers(ids);
  c.elect(1);
  c.propose(1, "a");
  return c;
}

function refused(
  r: ReturnType<TestCluster["node"]>["proposeConfChange"] extends (...a: never[]) => infer R ? R : never,
  code: string,
): void {
  expect(r.ok).toBe(false);
  if (!r.ok) {
    expect(r.error).toBeInstanceOf(RillError);
    expect(r.error.kind.name).toBe(code);
  }
}

describe("raft membership changes", () => {
  it("adds a caught-up observer as a voter; the change takes effect on append and commits", () => {
    const c = cluster();
    expect(c.node(4).status().isVoter).toBe(false);
    expect(c.node(4).status().commit).toBe(c.node(1).status().commit); // it followed as an observer
    // Hold the entry back from everyone: the leader uses the new set at once, the others not yet.
    c.intercept = () => null;
    const r = c.node(1).proposeConfChange({ type: "add-voter", id: 4, directoryId: "dir-4" });
    expect(r.ok).toBe(true);
    c.flush();
    expect(c.node(1).status().voters).toEqual([1, 2, 3, 4]);
    expect(c.node(1).status().configIndex).toBeGreaterThan(c.node(1).status().commit);
    expect(c.node(2).status().voters).toEqual([1, 2, 3]);
    c.heal();
    c.tick(2);
    for (const id of [1, 2, 3, 4]) {
      const st = c.node(id).status();
      expect(st.voters, `node ${id}`).toEqual([1, 2, 3, 4]);
      expect(st.config.find((v) => v.id === 4)?.directoryId).toBe("dir-4");
      expect(st.commit).toBeGreaterThanOrEqual(st.configIndex);
    }
    expect(c.node(4).status().isVoter).toBe(true);
    // Four voters: a quorum is three, so two down stop commits.
    c.stop(3);
    c.stop(4);
    const before = c.node(1).status().commit;
    c.propose(1, "b");
    expect(c.node(1).status().commit).toBe(before);
  });

  it("refuses bad changes with specific errors and leaves the log as it was", () => {
    const c = cluster([4, 5]);
    c.isolate(5);
    c.propose(1, "b"); // 5 falls behind
    const last = c.node(1).status().lastIndex;
    refused(c.node(1).proposeConfChange({ type: "add-voter", id: 2, directoryId: "" }), "DUPLICATE_VOTER");
    refused(c.node(1).proposeConfChange({ type: "remove-voter", id: 4 }), "VOTER_NOT_FOUND");
    refused(c.node(1).proposeConfChange({ type: "add-voter", id: 9, directoryId: "" }), "VOTER_NOT_FOUND");
    refused(c.node(1).proposeConfChange({ type: "add-voter", id: 5, directoryId: "" }), "REQUEST_TIMED_OUT");
    refused(c.node(2).proposeConfChange({ type: "remove-voter", id: 3 }), "NOT_LEADER_OR_FOLLOWER");
    expect(c.node(1).status().lastIndex).toBe(last);
    // One change at a time: the second waits for the first to commit.
    c.intercept = () => null;
    expect(c.node(1).proposeConfChange({ type: "add-voter", id: 4, directoryId: "" }).ok).toBe(true);
    refused(c.node(1).proposeConfChange({ type: "remove-voter", id: 3 }), "RECONFIGURATION_IN_PROGRESS");
    expect(c.node(1).status().lastIndex).toBe(last + 1);
  });

  it("a new leader changes nothing before it commits an entry of its own term", () => {
    const c = cluster();
    c.intercept = (m: Message) => (m.type === "append-response" && m.to === 2 ? null : m);
    c.node(1).transferLeadership(2);
    c.deliverAll();
    expect(c.node(2).status().role).toBe("leader");
    refused(c.node(2).proposeConfChange({ type: "remove-voter", id: 3 }), "REQUEST_TIMED_OUT");
    c.heal();
    c.tick(2);
    expect(c.node(2).proposeConfChange({ type: "remove-voter", id: 3 }).ok).toBe(true);
  });

  it("refuses to remove the last voter", () => {
    const c = new TestCluster([1]);
    c.elect(1);
    c.propose(1, "a");
    refused(c.node(1).proposeConfChange({ type: "remove-voter", id: 1 }), "INVALID_REQUEST");
  });

  it("a leader that removes itself leads until the removal commits, then steps down and never campaigns", () => {
    const c = cluster([]);
    expect(c.node(1).proposeConfChange({ type: "remove-voter", id: 1 }).ok).toBe(true);
    c.deliverAll();
    c.tick(30);
    const st1 = c.node(1).status();
    expect(st1.role).toBe("follower");
    expect(st1.isVoter).toBe(false);
    const leader = c.leader();
    expect([2, 3]).toContain(leader);
    expect(c.node(leader!).status().voters).toEqual([2, 3]);
    // The new leader keeps replicating to node 1 as an observer once told to.
    c.node(leader!).setObservers([1]);
    c.propose(leader!, "after");
    c.tick(2);
    expect(c.node(1).status().commit).toBe(c.node(leader!).status().commit);
    c.tick(100, [1]);
    expect(c.node(1).status().role).toBe("follower");
  });

  it("a restarted node takes its voters from its log, not from the storage it was created with", () => {
    const c = cluster();
    c.node(1).proposeConfChange({ type: "add-voter", id: 4, directoryId: "dir-4" });
    c.tick(2);
    c.stop(4);
    c.start(4);
    c.node(4).setObservers([]);
    expect(c.node(4).status().voters).toEqual([1, 2, 3, 4]);
    expect(c.node(4).status().isVoter).toBe(true);
    // A snapshot taken after the change carries it, directory ids included.
    const m = c.member(4);
    const snap = m.storage.createSnapshot(m.storage.hardState().commit, new Uint8Array(0));
    expect(snap.meta.voters).toEqual([1, 2, 3, 4]);
    expect(snap.meta.directoryIds).toEqual(["", "", "", "dir-4"]);
  });

  it("encodes voter sets, config entries and snapshots with directory ids on the wire and on disk", () => {
    const set = [
      { id: 1, directoryId: "" },
      { id: 7, directoryId: "8f0e-dir" },
    ];
    expect(decodeVoterSet(encodeVoterSet(set))).toEqual(set);
    expect(() => decodeVoterSet(new Uint8Array([1, 0]))).toThrow(RillError);
    const append: Message = {
      type: "append",
      from: 1,
      to: 2,
      term: 3,
      prevIndex: 4,
      prevTerm: 3,
      commit: 4,
      entries: [{ index: 5, term: 3, kind: "config", data: encodeVoterSet(set) }],
    };
    expect(decodeMessage(encodeMessage(append))).toEqual(append);
    const snap: Message = {
      type: "snapshot",
      from: 1,
      to: 2,
      term: 3,
      snapshot: { meta: { index: 5, term: 3, voters: [1, 7], directoryIds: ["", "8f0e-dir"] }, data: new Uint8Array([9]) },
    };
    expect(decodeMessage(encodeMessage(snap))).toEqual(snap);
    const fs = new MemoryFileSystem();
    const disk = DiskRaftStorage.open(fs, "/r", [1]);
    disk.append([{ index: 1, term: 1, kind: "config", data: encodeVoterSet(set) }]);
    disk.setHardState({ term: 1, vote: 1, commit: 1 });
    const s = disk.createSnapshot(1, new Uint8Array([1]));
    expect(s.meta).toEqual({ index: 1, term: 1, voters: [1, 7], directoryIds: ["", "8f0e-dir"] });
    disk.close();
    const again = DiskRaftStorage.open(fs, "/r", [1]);
    expect(again.snapshot().meta).toEqual(s.meta);
    expect(again.entries(1, 2, 1 << 20)[0]!.kind).toBe("config");
    again.close();
  });
});
