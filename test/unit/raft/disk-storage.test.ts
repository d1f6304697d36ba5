import { describe, expect, it } from "vitest";
import { SeededRandom } from "../../../src/base/random.ts";
import { RillError } from "../../../src/base/errors.ts";
import { DiskRaftStorage, ENTRIES_FILE, HARD_STATE_FILE, SNAPSHOT_FILE } from "../../../src/raft/disk-storage.ts";
import { RaftNode } from "../../../src/raft/node.ts";
import { MemoryStorage, type RaftStorage } from "../../../src/raft/storage.ts";
import type { Entry, Snapshot } from "../../../src/raft/types.ts";
import { MemoryFileSystem, NodeFileSystem } from "../../../src/storage/fs.ts";
import * as os from "node:os";
import * as nodePath from "node:path";
import * as nodeFs from "node:fs";

const DIR = "/raft";
const VOTERS = [1, 2, 3];

function ents(from: number, terms: number[], size = 10): Entry[] {
  return terms.map((term, k) => ({
    index: from + k,
    term,
    kind: k % 3 === 2 ? "noop" : "data",
    data: new Uint8Array(k % 3 === 2 ? 0 : size).fill((from + k) & 0xff),
  }));
}

/** Everything a RaftStorage exposes, for comparison. */
function dump(s: RaftStorage): unknown {
  const first = s.firstIndex();
  const last = s.lastIndex();
  const terms: (number | undefined)[] = [];
  for (let i = first - 2; i <= last + 1; i++) terms.push(s.term(i));
  const snap = s.snapshot();
  const all = first <= last ? s.entries(first, last + 1, Number.MAX_SAFE_INTEGER) : [];
  const limited = first <= last ? s.entries(first, last + 1, 40).map((e) => e.index) : [];
  return {
    initial: s.initialState(),
    first,
    last,
    terms,
    snap: { meta: snap.meta, data: [...snap.data] },
    entries: all.map((e) => ({ ...e, data: [...e.data] })),
    limited,
  };
}

function open(fs: MemoryFileSystem): DiskRaftStorage {
  return DiskRaftStorage.open(fs, DIR, VOTERS);
}

function path(name: string): string {
  return `${DIR}/${name}`;
}

/** One random mutation applied to both storages (never an invalid one). */
function randomOp(r: SeededRandom, mem: MemoryStorage, disk: DiskRaftStorage, state: { term: number }): string {
  const first = mem.firstIndex();
  const last = mem.lastIndex();
  const snapIndex = mem.snapshot().meta.index;
  const hs = mem.hardState();
  const choice = r.int(10);
  if (choice < 5) {
    // Append, possibly truncating a suffix, possibly starting before firstIndex.
    // Never truncate a committed entry (Raft never does); sometimes resend compacted entries.
    const lo = Math.max(first, hs.commit + 1);
    let s = lo + r.int(last + 2 - lo);
    if (first > 3 && r.int(8) === 0) {
      const old = ents(first - 3, [0, 0]).map((e) => ({ ...e, term: 1 }));
      mem.append(old);
      disk.append(old);
      s = last + 1;
    }
    if (r.int(3) === 0) state.term++;
    const prev = Math.max(1, mem.term(Math.max(s - 1, first - 1)) ?? 1);
    const t = Math.max(prev, state.term);
    const n = 1 + r.int(4);
    const terms = Array.from({ length: n }, (_, k) => t + (k > 0 && r.int(4) === 0 ? 1 : 0));
    for (let k = 1; k < n; k++) terms[k] = Math.max(terms[k]!, terms[k - 1]!);
    state.term = Math.max(state.term, terms[n - 1]!);
    const es = ents(s, terms, r.int(30));
    mem.append(es);
    disk.append(es);
    return `append ${s}+${n}`;
  }
  if (choice < 7) {
    const h = { term: Math.max(hs.term, state.term), vote: r.int(4), commit: Math.max(hs.commit, Math.min(last, hs.commit + r.int(5))) };
    mem.setHardState(h);
    disk.setHardState(h);
    return `hardstate ${JSON.stringify(h)}`;
  }
  if (choice === 7) {
    const lo = Math.max(snapIndex, first - 1);
    const hi = Math.min(hs.commit, last);
    if (lo > hi) return "skip";
    const i = lo + r.int(hi - lo + 1);
    const data = new Uint8Array(r.int(8)).fill(i & 0xff);
    mem.createSnapshot(i, data);
    disk.createSnapshot(i, data);
    return `createSnapshot ${i}`;
  }
  if (choice === 8) {
    const i = first - 1 + r.int(snapIndex - (first - 1) + 1);
    mem.compact(i);
    disk.compact(i);
    return `compact ${i}`;
  }
  const index = Math.max(snapIndex, hs.commit, last + r.int(6) - 2);
  state.term = Math.max(state.term, mem.term(index) ?? state.term) + r.int(2);
  const snap: Snapshot = { meta: { index, term: Math.max(1, state.term), voters: VOTERS }, data: new Uint8Array([index & 0xff, 7]) };
  mem.applySnapshot(snap);
  disk.applySnapshot(snap);
  return `applySnapshot ${index}@${snap.meta.term}`;
}

describe("DiskRaftStorage", () => {
  it("starts empty like MemoryStorage, and persists its voters", () => {
    const fs = new MemoryFileSystem();
    const d = open(fs);
    expect(dump(d)).toEqual(dump(new MemoryStorage(VOTERS)));
    d.close();
    expect(DiskRaftStorage.open(fs, DIR, [9]).initialState().voters).toEqual(VOTERS);
  });

  it("matches MemoryStorage through random operations and reopens", async () => {
    const base = Number(process.env.SEED ?? 20261125);
    console.log(`random operation seeds ${base}..${base + 59} (replay with SEED=${base})`);
    for (let seed = base; seed < base + 60; seed++) {
      const r = new SeededRandom(seed);
      const fs = new MemoryFileSystem();
      const mem = new MemoryStorage(VOTERS);
      let disk = open(fs);
      const state = { term: 1 };
      const log: string[] = [];
      try {
        for (let step = 0; step < 150; step++) {
          log.push(randomOp(r, mem, disk, state));
          const x = r.int(8);
          if (x === 0) {
            disk.close();
            disk = open(fs);
            log.push("reopen");
          } else if (x === 1) {
            await disk.sync();
            fs.crash();
            disk = open(fs);
            log.push("sync+crash");
          }
          expect(dump(disk)).toEqual(dump(mem));
        }
        disk.close();
        expect(dump(open(fs))).toEqual(dump(mem));
      } catch (e) {
        console.log(`seed ${seed} failed after: ${log.slice(-10).join("; ")}`);
        throw e;
      }
    }
  });

  it("keeps what persist made durable across a crash, and drops the rest", async () => {
    const base = Number(process.env.SEED ?? 7);
    console.log(`crash seeds ${base}..${base + 29} (replay with SEED=${base})`);
    for (let seed = base; seed < base + 30; seed++) {
      const r = new SeededRandom(seed);
      const fs = new MemoryFileSystem();
      const mem = new MemoryStorage(VOTERS);
      const disk = open(fs);
      let term = 1;
      for (let k = 0; k < 20; k++) {
        const start = Math.max(mem.firstIndex(), mem.lastIndex() + 1 - r.int(3));
        if (r.int(3) === 0) term++;
        const es = ents(start, [term, term], 5 + r.int(20));
        const hs = { term, vote: 1 + r.int(3), commit: Math.min(start - 1, mem.hardState().commit + r.int(3)) };
        const rd = { snapshot: null, entries: es, hardState: hs.commit >= mem.hardState().commit ? hs : null };
        await disk.persist(rd);
        mem.append(es);
        if (rd.hardState) mem.setHardState(rd.hardState);
      }
      // Writes never synced: gone after the crash.
      disk.append(ents(mem.lastIndex() + 1, [term + 1, term + 1, term + 1]));
      disk.append(ents(Math.max(mem.firstIndex(), mem.lastIndex() - 1), [term + 2]));
      expect(disk.lastIndex()).not.toBe(mem.lastIndex());
      fs.crash();
      const back = open(fs);
      expect(dump(back), `seed ${seed}`).toEqual(dump(mem));
    }
  });

  it("persists the hard state only after the entries are durable", async () => {
    const fs = new MemoryFileSystem();
    const disk = open(fs);
    await disk.persist({ snapshot: null, entries: ents(1, [1, 1]), hardState: { term: 1, vote: 1, commit: 0 } });
    // Crash before persist's fsync has been awaited: the entries may survive, the hard state
    // (written after the await) must not.
    const p = disk.persist({ snapshot: null, entries: ents(3, [2]), hardState: { term: 2, vote: 2, commit: 2 } });
    fs.crash();
    const mid = open(fs);
    expect(mid.hardState()).toEqual({ term: 1, vote: 1, commit: 0 });
    expect(mid.lastIndex()).toBe(3);
    mid.close();
    await p;
    fs.crash();
    const back = open(fs);
    expect(back.hardState()).toEqual({ term: 2, vote: 2, commit: 2 });
    expect(back.lastIndex()).toBe(3);

    const fs2 = new MemoryFileSystem();
    const d2 = open(fs2);
    d2.append(ents(1, [1, 1, 1]));
    const p2 = d2.persist({ snapshot: null, entries: [], hardState: { term: 1, vote: 3, commit: 0 } });
    await p2;
    fs2.crash();
    const b2 = open(fs2);
    expect(b2.hardState().vote).toBe(3);
    // persist syncs whatever is unsynced before the hard state, not only the Ready's own entries
    expect(b2.lastIndex()).toBe(3);

    const fs3 = new MemoryFileSystem();
    const d3 = open(fs3);
    d3.append(ents(1, [1, 1, 1]));
    d3.setHardState({ term: 1, vote: 3, commit: 0 });
    fs3.crash();
    expect(open(fs3).lastIndex()).toBe(0); // append without sync: not durable
  });

  it("syncs the entries a killed process left unsynced before the next Ready acknowledges or commits them (cluster-sim seed 799)", async () => {
    // Run 1 appends entry 3 and is killed before its fsync completes: the bytes stay in the page
    // cache, so run 2 reads entry 3 back, and its first Ready may acknowledge it to the leader
    // (messages only) or commit it (hard state only). A power loss after that Ready must keep it.
    for (const hardState of [null, { term: 1, vote: 2, commit: 3 }]) {
      const fs = new MemoryFileSystem();
      const run1 = open(fs);
      await run1.persist({ snapshot: null, entries: ents(1, [1, 1]), hardState: { term: 1, vote: 2, commit: 1 } });
      run1.append(ents(3, [1]));
      run1.close(); // killed: no crash(), the unsynced bytes are still in the file
      const run2 = open(fs);
      expect(run2.lastIndex()).toBe(3);
      await run2.persist({ snapshot: null, entries: [], hardState });
      fs.crash(); // power loss
      const run3 = open(fs);
      expect(run3.lastIndex(), `hard state ${JSON.stringify(hardState)}`).toBe(3);
      expect(run3.recovery.commitBeyondLog).toBe(false);
      expect(run3.hardState().commit).toBe(hardState?.commit ?? 1);
    }
  });

  function tenEntries(): { fs: MemoryFileSystem; bytes: Uint8Array; mem: MemoryStorage } {
    const fs = new MemoryFileSystem();
    const d = open(fs);
    const mem = new MemoryStorage(VOTERS);
    const es = ents(1, [1, 1, 2, 2, 2, 3, 3, 3, 3, 4], 13);
    d.append(es);
    mem.append(es);
    d.close();
    return { fs, bytes: fs.bytes(path(ENTRIES_FILE)), mem };
  }

  /** Record start positions in an entries file, from the format (28 B header, length-prefixed). */
  function recordStarts(bytes: Uint8Array): number[] {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const out: number[] = [];
    let p = 28;
    while (p < bytes.length) {
      out.push(p);
      p += 8 + dv.getUint32(p);
    }
    expect(p).toBe(bytes.length);
    return out;
  }

  it("recovers a torn last record, cut at every byte, to the previous record", () => {
    const { fs, bytes, mem } = tenEntries();
    const starts = recordStarts(bytes);
    const lastStart = starts[starts.length - 1]!;
    const want = new MemoryStorage(VOTERS);
    want.append(mem.entries(1, 10, Number.MAX_SAFE_INTEGER));
    for (let cut = lastStart; cut < bytes.length; cut++) {
      fs.setBytes(path(ENTRIES_FILE), bytes.slice(0, cut));
      const d = open(fs);
      expect(d.recovery.truncatedBytes, `cut at ${cut}`).toBe(cut - lastStart);
      expect(dump(d), `cut at ${cut}`).toEqual(dump(want));
      // The log goes on from there, and reopens the same.
      d.append(ents(10, [5]));
      d.close();
      const again = open(fs);
      expect(again.lastIndex()).toBe(10);
      expect(again.term(10)).toBe(5);
      again.close();
    }
  });

  it("cuts the log at a corrupted byte in the middle", () => {
    const { fs, bytes, mem } = tenEntries();
    const starts = recordStarts(bytes);
    // Every byte of the fifth record (entry 5), one at a time.
    for (let at = starts[4]!; at < starts[5]!; at++) {
      const bad = bytes.slice();
      bad[at]! ^= 0x5a;
      fs.setBytes(path(ENTRIES_FILE), bad);
      const d = open(fs);
      expect(d.lastIndex(), `byte ${at}`).toBe(4);
      expect(d.recovery.truncatedBytes).toBe(bytes.length - starts[4]!);
      expect(d.entries(1, 5, Number.MAX_SAFE_INTEGER)).toEqual(mem.entries(1, 5, Number.MAX_SAFE_INTEGER));
      d.close();
    }
  });

  it("reports a commit index beyond a log cut by corruption", () => {
    const fs = new MemoryFileSystem();
    const d = open(fs);
    d.append(ents(1, [1, 1, 1]));
    d.setHardState({ term: 1, vote: 1, commit: 3 });
    d.close();
    const bytes = fs.bytes(path(ENTRIES_FILE));
    bytes[bytes.length - 1]! ^= 1;
    fs.setBytes(path(ENTRIES_FILE), bytes);
    const back = open(fs);
    expect(back.lastIndex()).toBe(2);
    expect(back.recovery.commitBeyondLog).toBe(true);
    expect(back.hardState().commit).toBe(3);
  });

  it("refuses a corrupt hard state, snapshot or log header (never falls back)", () => {
    const fs = new MemoryFileSystem();
    const d = open(fs);
    d.append(ents(1, [1, 2]));
    d.setHardState({ term: 2, vote: 3, commit: 1 });
    d.createSnapshot(1, new Uint8Array([1, 2, 3]));
    d.close();
    for (const name of [HARD_STATE_FILE, SNAPSHOT_FILE]) {
      const good = fs.bytes(path(name));
      for (let at = 0; at < good.length; at++) {
        const bad = good.slice();
        bad[at]! ^= 0x01;
        fs.setBytes(path(name), bad);
        expect(() => open(fs), `${name} byte ${at}`).toThrow(RillError);
      }
      fs.setBytes(path(name), good.slice(0, good.length - 1));
      expect(() => open(fs)).toThrow(/checksum/);
      fs.setBytes(path(name), good);
    }
    const log = fs.bytes(path(ENTRIES_FILE));
    for (let at = 0; at < 28; at++) {
      const bad = log.slice();
      bad[at]! ^= 0x80;
      fs.setBytes(path(ENTRIES_FILE), bad);
      expect(() => open(fs), `header byte ${at}`).toThrow(RillError);
    }
    fs.setBytes(path(ENTRIES_FILE), log);
    const ok = open(fs);
    expect(ok.hardState()).toEqual({ term: 2, vote: 3, commit: 1 });
    expect(ok.snapshot().meta).toEqual({ index: 1, term: 1, voters: VOTERS });
    expect(ok.lastIndex()).toBe(2);
  });

  it("resets the log when a crash inside applySnapshot left an inconsistent old log", () => {
    const fs = new MemoryFileSystem();
    const d = open(fs);
    d.append(ents(1, [1, 1, 1, 1, 1]));
    d.close();
    // The snapshot file of the new snapshot, without the log rewrite that follows it.
    const other = DiskRaftStorage.open(fs, "/other", VOTERS);
    other.applySnapshot({ meta: { index: 8, term: 3, voters: VOTERS }, data: new Uint8Array([9]) });
    fs.setBytes(path(SNAPSHOT_FILE), fs.bytes(`/other/${SNAPSHOT_FILE}`));
    const back = open(fs);
    expect(back.recovery.logReset).toBe(true);
    expect(back.firstIndex()).toBe(9);
    expect(back.lastIndex()).toBe(8);
    expect(back.term(8)).toBe(3);
    back.close();
    expect(open(fs).recovery.logReset).toBe(false);
  });

  it("drives a single-voter RaftNode across restarts", async () => {
    const fs = new MemoryFileSystem();
    const applied: string[] = [];
    const run = async (storage: DiskRaftStorage, proposals: string[]): Promise<RaftNode> => {
      const node = new RaftNode({
        id: 1,
        storage,
        random: new SeededRandom(1),
        electionTicks: 10,
        heartbeatTicks: 1,
        applied: storage.snapshot().meta.index,
      });
      node.campaign();
      const drain = async (): Promise<void> => {
        for (let rd = node.ready(); rd !== null; rd = node.ready()) {
          await storage.persist(rd);
          for (const e of rd.committedEntries) if (e.kind === "data") applied.push(new TextDecoder().decode(e.data));
          node.advance(rd);
        }
      };
      await drain();
      for (const p of proposals) {
        expect(node.propose(new TextEncoder().encode(p)).ok).toBe(true);
        await drain();
      }
      return node;
    };
    let s = DiskRaftStorage.open(fs, DIR, [1]);
    await run(s, ["a", "b", "c"]);
    s.createSnapshot(s.hardState().commit, new Uint8Array([1]));
    s.compact(s.hardState().commit - 1);
    s.close();
    fs.crash();
    s = DiskRaftStorage.open(fs, DIR, [1]);
    expect(s.hardState().term).toBe(1);
    const node = await run(s, ["d"]);
    expect(applied).toEqual(["a", "b", "c", "d"]);
    expect(node.status().term).toBe(2);
    expect(node.status().commit).toBe(s.lastIndex());
  });

  it("works on the real disk", async () => {
    const dir = nodeFs.mkdtempSync(nodePath.join(os.tmpdir(), "rill-raft-"));
    try {
      const fs = new NodeFileSystem();
      const d = DiskRaftStorage.open(fs, dir, VOTERS);
      await d.persist({ snapshot: null, entries: ents(1, [1, 1, 2, 2]), hardState: { term: 2, vote: 1, commit: 3 } });
      d.createSnapshot(3, new Uint8Array([5]));
      d.compact(2);
      await d.persist({ snapshot: null, entries: ents(4, [3, 3]), hardState: null });
      const want = dump(d);
      d.close();
      const back = DiskRaftStorage.open(fs, dir, VOTERS);
      expect(dump(back)).toEqual(want);
      back.close();
    } finally {
      nodeFs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
