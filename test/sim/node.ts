/**
 * One simulated voter: a RaftNode over a MemoryStorage that plays the disk, a tiny state
 * machine (a hash of applied entries), and a disk write in progress. Only what a completed
 * Ready wrote to storage survives a crash; a crash during a write keeps a random prefix of it
 * (snapshot, then entries, then hard state, the order the Ready contract prescribes).
 */
import type { SeededRandom } from "../../src/base/random.ts";
import { RaftNode } from "../../src/raft/node.ts";
import { MemoryStorage } from "../../src/raft/storage.ts";
import { DiskRaftStorage } from "../../src/raft/disk-storage.ts";
import { decodeVoterSet, snapshotVoters } from "../../src/raft/config.ts";
import { MemoryFileSystem } from "../../src/storage/fs.ts";
import type { NodeId, Ready } from "../../src/raft/types.ts";
import { entryKey, mixHash, Violation, type SafetyChecker } from "./checker.ts";
import { SIM_ELECTION_TICKS, SIM_HEARTBEAT_TICKS, type SimSettings } from "./settings.ts";

/** The state machine: how far it applied, the hash of what it applied, and the voters it applied last. */
interface AppState {
  applied: number;
  hash: number;
  voters: NodeId[];
}

function encodeApp(hash: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, hash);
  return b;
}

function decodeApp(data: Uint8Array): number {
  return data.length === 0 ? 0 : new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0);
}

/** A voter of the simulated cluster. */
export class SimNode {
  readonly id: NodeId;
  storage: MemoryStorage | DiskRaftStorage;
  /** With `settings.disk`: the voter's disk, which keeps only synced bytes through a crash. */
  private readonly fs: MemoryFileSystem | null;
  private readonly voters: readonly NodeId[];
  /** Every node of the simulation: the leader replicates to those that are not voters. */
  private readonly everyone: readonly NodeId[];
  raft: RaftNode | null = null;
  app: AppState = { applied: 0, hash: 0, voters: [] };
  /** A Ready whose writes complete at step `doneAt`. */
  io: { rd: Ready; doneAt: number } | null = null;
  /** When down: the step at which it restarts. */
  downUntil = 0;
  private readonly s: SimSettings;

  constructor(id: NodeId, voters: readonly NodeId[], s: SimSettings, everyone: readonly NodeId[] = voters) {
    this.id = id;
    this.voters = voters;
    this.everyone = everyone;
    this.fs = s.disk ? new MemoryFileSystem() : null;
    this.storage = this.fs ? DiskRaftStorage.open(this.fs, "/raft", voters) : new MemoryStorage(voters);
    this.s = s;
  }

  get up(): boolean {
    return this.raft !== null;
  }

  /** (Re)starts from what storage holds. */
  start(random: SeededRandom): void {
    const snap = this.storage.snapshot();
    this.app = { applied: snap.meta.index, hash: decodeApp(snap.data), voters: snapshotVoters(snap).map((v) => v.id) };
    this.raft = new RaftNode({
      id: this.id,
      storage: this.storage,
      random,
      electionTicks: SIM_ELECTION_TICKS,
      heartbeatTicks: SIM_HEARTBEAT_TICKS,
      msgBytesMax: this.s.msgBytesMax,
      inflightMsgsMax: this.s.inflightMax,
      preVote: this.s.preVote,
      checkQuorum: this.s.checkQuorum,
      applied: snap.meta.index,
    });
    this.raft.setObservers(this.everyone);
  }

  /** Crashes: memory is lost; a write in progress leaves a random prefix on disk. */
  crash(random: SeededRandom): void {
    if (this.io !== null && random.int(2) === 0) this.persistPrefix(this.io.rd, random);
    this.raft = null;
    this.io = null;
    if (this.fs && this.storage instanceof DiskRaftStorage) {
      // Power loss: unsynced bytes are gone; the restart reads the disk back from scratch.
      this.storage.close();
      this.fs.crash();
      this.storage = DiskRaftStorage.open(this.fs, "/raft", this.voters);
    }
  }

  /** Makes appended entries durable (DiskRaftStorage on the in-memory disk syncs at once). */
  private syncEntries(): void {
    if (this.storage instanceof DiskRaftStorage) void this.storage.sync();
  }

  private persistPrefix(rd: Ready, random: SeededRandom): void {
    const total = (rd.snapshot !== null ? 1 : 0) + rd.entries.length + (rd.hardState !== null ? 1 : 0);
    let k = random.int(total + 1);
    if (rd.snapshot !== null && k > 0) {
      this.storage.applySnapshot(rd.snapshot);
      k--;
    }
    const n = Math.min(k, rd.entries.length);
    this.storage.append(rd.entries.slice(0, n));
    this.syncEntries();
    k -= n;
    if (rd.hardState !== null && k > 0) this.storage.setHardState(rd.hardState);
  }

  /** Takes the next Ready, if any; returns it with checks done (the caller schedules the write). */
  takeReady(checker: SafetyChecker): Ready | null {
    const raft = this.raft!;
    const rd = raft.ready();
    if (rd === null) return null;
    if (rd.entries.length > 0) {
      checker.append(this.id, rd.entries, raft.termAt(rd.entries[0]!.index - 1));
    }
    if (rd.hardState !== null) {
      checker.commit(this.id, rd.hardState.term, rd.hardState.commit, (i) => raft.termAt(i));
    }
    return rd;
  }

  /** Completes a Ready: persist, (the caller sends), apply, advance. */
  persist(rd: Ready): void {
    if (rd.snapshot !== null) this.storage.applySnapshot(rd.snapshot);
    this.storage.append(rd.entries);
    this.syncEntries();
    if (rd.hardState !== null) this.storage.setHardState(rd.hardState);
  }

  /** Applies the Ready's snapshot and committed entries, advances, and maybe compacts. */
  applyAndAdvance(rd: Ready, checker: SafetyChecker): void {
    if (rd.snapshot !== null) {
      const hash = decodeApp(rd.snapshot.data);
      checker.restore(this.id, rd.snapshot.meta.index, hash);
      this.app = { applied: rd.snapshot.meta.index, hash, voters: [...rd.snapshot.meta.voters] };
    }
    for (const e of rd.committedEntries) {
      if (e.index !== this.app.applied + 1) {
        throw new Violation(`state-machine safety: node ${this.id} applies ${e.index} after ${this.app.applied}`);
      }
      this.app.hash = mixHash(this.app.hash, e.index, entryKey(e));
      this.app.applied = e.index;
      checker.apply(this.id, e, this.app.hash);
      if (e.kind === "config") {
        const next = decodeVoterSet(e.data).map((v) => v.id);
        checker.configApplied(this.id, e.index, this.app.voters, next);
        this.app.voters = next;
      }
    }
    this.raft!.advance(rd);
    this.maybeCompact();
  }

  private maybeCompact(): void {
    const st = this.storage;
    if (this.app.applied - st.snapshot().meta.index < this.s.snapshotEvery) return;
    st.createSnapshot(this.app.applied, encodeApp(this.app.hash));
    st.compact(Math.max(st.firstIndex() - 1, this.app.applied - this.s.compactKeep));
  }
}
