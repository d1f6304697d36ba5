/**
 * Raft stable storage in a folder, through the injected `FileSystem`: the file-backed twin of
 * `MemoryStorage` (same read interface, same mutation methods, same results).
 *
 * Durability contract. The mutation methods are synchronous and update the in-memory view at
 * once, but only some of them are durable when they return:
 *
 * - `setHardState`, `applySnapshot`, `createSnapshot` and `compact` write small files (or the
 *   rewritten log) with `writeFileAtomic`: durable on return;
 * - `append` writes the records (and truncates a conflicting suffix) but does NOT fsync: the
 *   entries are durable only once `await sync()` has resolved;
 * - what `open` reads from the entries file is NOT known to be durable either: a process killed
 *   after an append and before its fsync completed leaves the records in the OS page cache,
 *   where the next process reads them, and a later power loss still drops them. The storage
 *   counts them as unsynced until the next `sync()`.
 *
 * The broker shell should therefore call `await storage.persist(rd)` for each Ready and send
 * `rd.messages` only after it resolves: it applies the snapshot, appends the entries, awaits the
 * fsync, and only then writes the hard state — so a crash leaves a prefix of (snapshot, entries,
 * hard state), as the Ready contract in types.ts requires. `persist` fsyncs whenever the entries
 * file may hold unsynced bytes, even for a Ready with no entries: the first Ready after `open`
 * may acknowledge (or commit) entries only read back from the file, and a node must not
 * acknowledge an entry, nor record a commit index that covers it, before it is durable. A shell
 * that calls the mutation methods itself must `await sync()` after `append` (and after `open`)
 * before `setHardState` and before sending.
 *
 * Memory: only (term, file position) per entry is kept in memory; payloads are read back from
 * the entries file by `entries()`. `compact` and `applySnapshot` rewrite the entries file whole
 * (through a buffer the size of the remaining log): compaction is meant to be occasional.
 *
 * Files in the folder, all big-endian, every integer that holds a term/index/id a u64:
 * ```
 *  hardstate (36 B), replaced atomically:
 *  +------------------+--------+--------+--------+-----------------------+
 *  | "RILLRHS1" (8 B) | term   | vote   | commit | crc32c of bytes 0..32 |
 *  +------------------+--------+--------+--------+-----------------------+
 *
 *  snapshot, replaced atomically:
 *  +------------------+-------+------+-----------+---------------+-----------+------+--------+
 *  | "RILLRSN1" (8 B) | index | term | nVoters   | nVoters × u64 | dataLen   | data | crc32c |
 *  |                  | u64   | u64  | u32       | voter ids     | u32       |      | u32    |
 *  +------------------+-------+------+-----------+---------------+-----------+------+--------+
 *      crc32c covers every byte before it. When the voters have directory ids the magic is
 *      "RILLRSN2" and nVoters × { u8 length, utf-8 directory id } follow the voter ids.
 *
 *  entries: a header (created or replaced atomically), then records appended in place:
 *  +------------------+-----------+----------+------------------------+
 *  | "RILLRLG1" (8 B) | baseIndex | baseTerm | crc32c of bytes 0..24  |   28 B
 *  +------------------+-----------+----------+------------------------+
 *      the log holds entries baseIndex + 1, baseIndex + 2, ... (baseTerm is the term of
 *      baseIndex, the last compacted entry)
 *  record:
 *  +-------------+-------------+------------------------------------------------+
 *  | bodyLen u32 | crc32c u32  | body: index u64 | term u64 | kind u8 | data     |
 *  |             | of the body |       (kind 0 data, 1 noop, 2 config)                |
 *  +-------------+-------------+------------------------------------------------+
 * ```
 *
 * Recovery (`open`): the hard state and snapshot files are checked against their checksums and
 * a failure throws `KAFKA_STORAGE_ERROR` — never a fallback, because a wrong vote or a lost
 * snapshot silently used would break Raft's safety. The entries file is read record by record
 * and cut (truncated, then synced) at the first record that is torn (runs past the end of the
 * file), fails its checksum, or is not the next index with a term ≥ 1 and ≥ the previous one;
 * what `open` cut is reported in `recovery`. If the snapshot is newer than what the log can
 * prove consistent (a crash inside `applySnapshot`, between the snapshot file and the log
 * rewrite), the log is reset to start after the snapshot. Recovery never raises the commit
 * index or changes the hard state: if a cut removed committed entries (real disk corruption),
 * `recovery.commitBeyondLog` says so and the Raft core will refuse to start. It does not clamp
 * the commit index to the log either: the hard state is written only after every entry it
 * covers is durable, so a power loss alone never leaves it past the log, and when something else
 * did, this node cannot tell whether the lost entries were ones it acknowledged (and a leader
 * counted toward a quorum), which a clamp would silently turn into a lost committed entry.
 */
import { assert } from "../base/assert.ts";
import { crc32c } from "../base/crc32c.ts";
import { rillError } from "../base/errors.ts";
import type { FileSystem, LogFile } from "../storage/fs.ts";
import { storedConfigAt, voterMeta } from "./config.ts";
import { limitSize, type InitialState, type RaftStorage } from "./storage.ts";
import type { Entry, HardState, NodeId, Ready, Snapshot } from "./types.ts";

const HARD_MAGIC = new TextEncoder().encode("RILLRHS1");
const SNAP_MAGIC = new TextEncoder().encode("RILLRSN1");
/** A snapshot whose voters carry directory ids. */
const SNAP_MAGIC_2 = new TextEncoder().encode("RILLRSN2");
const LOG_MAGIC = new TextEncoder().encode("RILLRLG1");
const HARD_SIZE = 36;
const LOG_HEADER = 28;
/** bodyLen + crc. */
const REC_HEAD = 8;
/** index + term + kind. */
const BODY_FIXED = 17;

export const HARD_STATE_FILE = "hardstate";
export const SNAPSHOT_FILE = "snapshot";
export const ENTRIES_FILE = "entries";

/** What `open` found and repaired. */
export interface DiskRecovery {
  /** Bytes cut from the end of the entries file (a torn or corrupt tail). */
  readonly truncatedBytes: number;
  /** True when the log was reset to the snapshot because it could not prove consistent with it. */
  readonly logReset: boolean;
  /** True when the persisted commit index lies beyond the recovered log (corruption). */
  readonly commitBeyondLog: boolean;
}

/** Raft stable storage in a folder; see the file comment for formats and durability. */
export class DiskRaftStorage implements RaftStorage {
  private hard: HardState = { term: 0, vote: 0, commit: 0 };
  private snap!: Snapshot;
  private file!: LogFile;
  /** Index and term of the entry just before the first stored one. */
  private baseIndex = 0;
  private baseTerm = 0;
  /** Per stored entry baseIndex + 1 + k: its term and its record's file position. */
  private terms: number[] = [];
  private positions: number[] = [];
  /** End of the last valid record. */
  private end = LOG_HEADER;
  /** The fsync in flight, if any (a replaced file is closed only after it settles). */
  private syncing: Promise<void> | null = null;
  /**
   * Whether the entries file may hold bytes no fsync has covered: appends since the last sync
   * began, and whatever `open` read (a killed process's unsynced appends survive in the page
   * cache until a power loss) or cut.
   */
  private unsynced = false;
  private closed = false;
  /** What `open` repaired. */
  recovery: DiskRecovery = { truncatedBytes: 0, logReset: false, commitBeyondLog: false };

  private constructor(
    private readonly fs: FileSystem,
    private readonly dir: string,
  ) {}

  /**
   * Opens (or creates, with `voters` as the configuration) the storage in `dir`. Throws
   * `KAFKA_STORAGE_ERROR` when a checksummed file other than the entries tail is corrupt.
   */
  static open(fs: FileSystem, dir: string, voters: readonly NodeId[]): DiskRaftStorage {
    const s = new DiskRaftStorage(fs, dir);
    s.load(voters);
    return s;
  }

  private path(name: string): string {
    return this.fs.join(this.dir, name);
  }

  private load(voters: readonly NodeId[]): void {
    this.fs.mkdirp(this.dir);
    const hasHard = this.fs.exists(this.path(HARD_STATE_FILE));
    const hasSnap = this.fs.exists(this.path(SNAPSHOT_FILE));
    const hasLog = this.fs.exists(this.path(ENTRIES_FILE));
    if (!hasSnap) {
      if (hasHard || hasLog) throw corrupt(`${this.dir}: snapshot file missing`);
      assert(voters.length > 0, "a configuration needs at least one voter");
      // A fresh folder: the snapshot file first (it names the voters), then the log header.
      this.snap = { meta: { index: 0, term: 0, voters: [...voters] }, data: new Uint8Array(0) };
      this.fs.writeFileAtomic(this.path(SNAPSHOT_FILE), encodeSnapshot(this.snap));
      this.resetLog(0, 0, []);
      return;
    }
    this.snap = decodeSnapshot(this.fs.readFile(this.path(SNAPSHOT_FILE)), this.dir);
    if (hasHard) this.hard = decodeHardState(this.fs.readFile(this.path(HARD_STATE_FILE)), this.dir);
    if (!hasLog) {
      // Possible only after a crash while creating a fresh folder (the header is written next).
      if (this.snap.meta.index !== 0 || hasHard) throw corrupt(`${this.dir}: entries file missing`);
      this.resetLog(0, 0, []);
      return;
    }
    this.file = this.fs.open(this.path(ENTRIES_FILE), false);
    this.unsynced = true;
    this.scanLog();
    const S = this.snap.meta;
    let logReset = false;
    if (this.baseIndex > S.index) throw corrupt(`${this.dir}: log starts after ${this.baseIndex}, past the snapshot at ${S.index}`);
    if (this.baseIndex < S.index && this.term(S.index) !== S.term) {
      // A crash inside applySnapshot: the old log does not reach the snapshot consistently.
      this.resetLog(S.index, S.term, []);
      logReset = true;
    } else if (this.baseIndex === S.index && this.baseTerm !== S.term) {
      throw corrupt(`${this.dir}: log base term ${this.baseTerm} differs from the snapshot's ${S.term}`);
    }
    this.recovery = { ...this.recovery, logReset, commitBeyondLog: this.hard.commit > this.lastIndex() };
  }

  /** Reads the entries file, cutting it at the first torn or invalid record. */
  private scanLog(): void {
    const size = this.file.size();
    const head = new Uint8Array(LOG_HEADER);
    if (size < LOG_HEADER || this.file.read(head, 0, LOG_HEADER, 0) !== LOG_HEADER) throw corrupt(`${this.dir}: entries header torn`);
    const dv = view(head);
    if (!startsWith(head, LOG_MAGIC) || dv.getUint32(24) !== crc32c(head.subarray(0, 24))) {
      throw corrupt(`${this.dir}: entries header fails its checksum`);
    }
    this.baseIndex = getU64(dv, 8);
    this.baseTerm = getU64(dv, 16);
    this.terms = [];
    this.positions = [];
    const reader = new WindowReader(this.file, size);
    let pos = LOG_HEADER;
    let prevTerm = this.baseTerm;
    for (;;) {
      if (pos + REC_HEAD > size) break;
      const rh = reader.bytes(pos, REC_HEAD);
      const rv = view(rh);
      const len = rv.getUint32(0);
      const crc = rv.getUint32(4);
      if (len < BODY_FIXED || pos + REC_HEAD + len > size) break;
      const body = reader.bytes(pos + REC_HEAD, len);
      if (crc32c(body) !== crc) break;
      const bv = view(body);
      const index = getU64(bv, 0);
      const term = getU64(bv, 8);
      const kind = body[16]!;
      if (index !== this.baseIndex + this.terms.length + 1 || term < 1 || term < prevTerm || kind > 2) break;
      this.terms.push(term);
      this.positions.push(pos);
      prevTerm = term;
      pos += REC_HEAD + len;
    }
    this.end = pos;
    if (pos < size) {
      this.file.truncate(pos);
      // Made durable by the next sync, or by the rewrite/append that follows; a crash before
      // then just brings the same garbage back, which the next open cuts again.
      this.recovery = { ...this.recovery, truncatedBytes: size - pos };
    }
  }

  /** Replaces the entries file atomically with a header and `ents`. */
  private resetLog(baseIndex: number, baseTerm: number, ents: readonly Entry[]): void {
    const head = new Uint8Array(LOG_HEADER);
    head.set(LOG_MAGIC, 0);
    const dv = view(head);
    setU64(dv, 8, baseIndex);
    setU64(dv, 16, baseTerm);
    dv.setUint32(24, crc32c(head.subarray(0, 24)));
    const recs = encodeRecords(ents);
    const all = new Uint8Array(LOG_HEADER + recs.bytes.length);
    all.set(head, 0);
    all.set(recs.bytes, LOG_HEADER);
    const old = this.file as LogFile | undefined;
    this.fs.writeFileAtomic(this.path(ENTRIES_FILE), all);
    if (old !== undefined) {
      const pending = this.syncing;
      if (pending === null) old.close();
      else
        void pending.then(
          () => old.close(),
          () => old.close(),
        );
    }
    this.file = this.fs.open(this.path(ENTRIES_FILE), false);
    this.baseIndex = baseIndex;
    this.baseTerm = baseTerm;
    this.terms = ents.map((e) => e.term);
    this.positions = recs.offsets.map((o) => o + LOG_HEADER);
    this.end = all.length;
    // writeFileAtomic made the whole file durable.
    this.unsynced = false;
  }

  // ---- RaftStorage (reads) ----

  initialState(): InitialState {
    return { hardState: this.hard, voters: this.snap.meta.voters };
  }

  hardState(): HardState {
    return this.hard;
  }

  firstIndex(): number {
    return this.baseIndex + 1;
  }

  lastIndex(): number {
    return this.baseIndex + this.terms.length;
  }

  term(i: number): number | undefined {
    if (i < this.baseIndex || i > this.lastIndex()) return undefined;
    return i === this.baseIndex ? this.baseTerm : this.terms[i - this.baseIndex - 1];
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    assert(lo > this.baseIndex && lo <= hi && hi <= this.lastIndex() + 1, `entries [${lo}, ${hi}) out of range`);
    if (lo === hi) return [];
    // Decide how many to read from the record lengths, as limitSize would on the entries.
    const first = lo - this.baseIndex - 1;
    const last = hi - this.baseIndex - 1;
    let n = 1;
    let size = this.dataLen(first) + 16;
    while (first + n < last) {
      size += this.dataLen(first + n) + 16;
      if (size > maxBytes) break;
      n++;
    }
    const from = this.positions[first]!;
    const to = first + n < this.terms.length ? this.positions[first + n]! : this.end;
    const buf = new Uint8Array(to - from);
    const got = this.file.read(buf, 0, buf.length, from);
    if (got !== buf.length) throw corrupt(`${this.dir}: entries file shorter than expected`);
    const out: Entry[] = [];
    let p = 0;
    for (let k = 0; k < n; k++) {
      const len = view(buf).getUint32(p);
      const body = buf.subarray(p + REC_HEAD, p + REC_HEAD + len);
      if (crc32c(body) !== view(buf).getUint32(p + 4)) throw corrupt(`${this.dir}: entry ${lo + k} fails its checksum`);
      out.push(decodeBody(body));
      p += REC_HEAD + len;
    }
    return limitSize(out, maxBytes);
  }

  private dataLen(k: number): number {
    const next = k + 1 < this.terms.length ? this.positions[k + 1]! : this.end;
    return next - this.positions[k]! - REC_HEAD - BODY_FIXED;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  // ---- mutations (as MemoryStorage) ----

  /** Persists the hard state, atomically and durably. Entries it covers must be synced first. */
  setHardState(hs: HardState): void {
    this.check();
    this.fs.writeFileAtomic(this.path(HARD_STATE_FILE), encodeHardState(hs));
    this.hard = hs;
  }

  /**
   * Appends entries (contiguous, the first at most lastIndex() + 1), truncating stored entries
   * at or after the first one's index. Entries already compacted away are skipped. Not durable
   * until `sync()` resolves.
   */
  append(entries: readonly Entry[]): void {
    this.check();
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[entries.length - 1]!.index;
    if (last < first) return;
    const from = entries[0]!.index < first ? first - entries[0]!.index : 0;
    const start = entries[from]!.index;
    assert(start <= this.lastIndex() + 1, `append at ${start} leaves a gap after ${this.lastIndex()}`);
    const keep = start - this.baseIndex - 1;
    if (keep < this.terms.length) {
      this.end = this.positions[keep]!;
      this.terms.length = keep;
      this.positions.length = keep;
      this.file.truncate(this.end);
    }
    const recs = encodeRecords(entries.slice(from));
    this.unsynced = true;
    this.file.write(recs.bytes, this.end);
    for (let k = from; k < entries.length; k++) {
      this.terms.push(entries[k]!.term);
      this.positions.push(this.end + recs.offsets[k - from]!);
    }
    this.end += recs.bytes.length;
  }

  /** Makes every append so far, and every entry `open` found, durable. */
  async sync(): Promise<void> {
    this.check();
    // The fsync covers every write made before it starts; an append meanwhile sets the flag again.
    this.unsynced = false;
    const p = this.file.sync();
    this.syncing = p;
    try {
      await p;
    } catch (e) {
      this.unsynced = true;
      throw e;
    } finally {
      if (this.syncing === p) this.syncing = null;
    }
  }

  /**
   * Step 1 of the Ready contract: snapshot, then entries (synced), then hard state. Resolves
   * when all of it is durable; only then may `rd.messages` be sent. Syncs even a Ready without
   * entries while the file may hold unsynced ones (after `open`): its messages may acknowledge
   * them and its hard state may commit them.
   */
  async persist(rd: Pick<Ready, "snapshot" | "entries" | "hardState">): Promise<void> {
    if (rd.snapshot !== null) this.applySnapshot(rd.snapshot);
    if (rd.entries.length > 0) this.append(rd.entries);
    if (this.unsynced) await this.sync();
    else if (this.syncing !== null) await this.syncing;
    if (rd.hardState !== null) this.setHardState(rd.hardState);
  }

  /** Replaces the whole log with a snapshot received from a leader (durable on return). */
  applySnapshot(snap: Snapshot): void {
    this.check();
    assert(snap.meta.index >= this.snap.meta.index, "snapshot older than the stored one");
    this.fs.writeFileAtomic(this.path(SNAPSHOT_FILE), encodeSnapshot(snap));
    this.snap = snap;
    this.resetLog(snap.meta.index, snap.meta.term, []);
  }

  /**
   * Records (durably) a snapshot of the state machine as of entry `index`, which the shell has
   * applied. The log is not compacted: call `compact` for that.
   */
  createSnapshot(index: number, data: Uint8Array): Snapshot {
    this.check();
    const term = this.term(index);
    assert(term !== undefined, `createSnapshot(${index}) outside the log`);
    assert(index >= this.snap.meta.index, "snapshot older than the stored one");
    assert(index <= this.hard.commit, "snapshot of an uncommitted entry");
    const snap: Snapshot = { meta: { index, term, ...voterMeta(storedConfigAt(this, index)) }, data };
    this.fs.writeFileAtomic(this.path(SNAPSHOT_FILE), encodeSnapshot(snap));
    this.snap = snap;
    return snap;
  }

  /**
   * Drops the entries up to and including `index` (covered by the snapshot) by rewriting the
   * entries file atomically; the term of `index` stays known.
   */
  compact(index: number): void {
    this.check();
    if (index <= this.baseIndex) return;
    assert(index <= this.snap.meta.index, `compact(${index}) past the snapshot at ${this.snap.meta.index}`);
    const term = this.term(index)!;
    const rest = index < this.lastIndex() ? this.entries(index + 1, this.lastIndex() + 1, Number.MAX_SAFE_INTEGER) : [];
    this.resetLog(index, term, rest);
  }

  /** Closes the entries file (after any fsync in flight). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const f = this.file;
    if (this.syncing === null) f.close();
    else
      void this.syncing.then(
        () => f.close(),
        () => f.close(),
      );
  }

  private check(): void {
    if (this.closed) throw rillError("KAFKA_STORAGE_ERROR", `${this.dir}: raft storage is closed`);
  }
}

// ---- encoding ----

function corrupt(message: string): Error {
  return rillError("KAFKA_STORAGE_ERROR", message);
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function startsWith(b: Uint8Array, magic: Uint8Array): boolean {
  if (b.length < magic.length) return false;
  for (let i = 0; i < magic.length; i++) if (b[i] !== magic[i]) return false;
  return true;
}

function setU64(dv: DataView, at: number, v: number): void {
  assert(Number.isSafeInteger(v) && v >= 0, `not a u53: ${v}`);
  dv.setUint32(at, Math.floor(v / 2 ** 32));
  dv.setUint32(at + 4, v >>> 0);
}

/** A u64 as a number; values past 2^53 (never written) read as NaN so they fail validation. */
function getU64(dv: DataView, at: number): number {
  const hi = dv.getUint32(at);
  if (hi >= 2 ** 21) return Number.NaN;
  return hi * 2 ** 32 + dv.getUint32(at + 4);
}

function encodeHardState(hs: HardState): Uint8Array {
  const b = new Uint8Array(HARD_SIZE);
  b.set(HARD_MAGIC, 0);
  const dv = view(b);
  setU64(dv, 8, hs.term);
  setU64(dv, 16, hs.vote);
  setU64(dv, 24, hs.commit);
  dv.setUint32(32, crc32c(b.subarray(0, 32)));
  return b;
}

function decodeHardState(b: Uint8Array, dir: string): HardState {
  const dv = view(b);
  if (b.length !== HARD_SIZE || !startsWith(b, HARD_MAGIC) || dv.getUint32(32) !== crc32c(b.subarray(0, 32))) {
    throw corrupt(`${dir}: hard state fails its checksum`);
  }
  const hs = { term: getU64(dv, 8), vote: getU64(dv, 16), commit: getU64(dv, 24) };
  if (![hs.term, hs.vote, hs.commit].every(Number.isSafeInteger)) throw corrupt(`${dir}: hard state out of range`);
  return hs;
}

function encodeSnapshot(s: Snapshot): Uint8Array {
  const n = s.meta.voters.length;
  const dirs = s.meta.directoryIds?.map((d) => new TextEncoder().encode(d));
  const dirBytes = dirs === undefined ? 0 : dirs.reduce((t, d) => t + 1 + d.length, 0);
  const size = 8 + 16 + 4 + 8 * n + dirBytes + 4 + s.data.length + 4;
  const b = new Uint8Array(size);
  b.set(dirs === undefined ? SNAP_MAGIC : SNAP_MAGIC_2, 0);
  const dv = view(b);
  setU64(dv, 8, s.meta.index);
  setU64(dv, 16, s.meta.term);
  dv.setUint32(24, n);
  let p = 28;
  for (const v of s.meta.voters) {
    setU64(dv, p, v);
    p += 8;
  }
  for (const d of dirs ?? []) {
    assert(d.length <= 255, "directory id too long");
    b[p++] = d.length;
    b.set(d, p);
    p += d.length;
  }
  dv.setUint32(p, s.data.length);
  p += 4;
  b.set(s.data, p);
  p += s.data.length;
  dv.setUint32(p, crc32c(b.subarray(0, p)));
  return b;
}

function decodeSnapshot(b: Uint8Array, dir: string): Snapshot {
  const bad = (): Error => corrupt(`${dir}: snapshot fails its checksum`);
  const v2 = startsWith(b, SNAP_MAGIC_2);
  if (b.length < 36 || !(v2 || startsWith(b, SNAP_MAGIC))) throw bad();
  const dv = view(b);
  if (dv.getUint32(b.length - 4) !== crc32c(b.subarray(0, b.length - 4))) throw bad();
  const index = getU64(dv, 8);
  const term = getU64(dv, 16);
  const n = dv.getUint32(24);
  if (28 + 8 * n + 4 + 4 > b.length) throw bad();
  const voters: NodeId[] = [];
  let p = 28;
  for (let k = 0; k < n; k++) {
    voters.push(getU64(dv, p));
    p += 8;
  }
  let directoryIds: string[] | undefined;
  if (v2) {
    directoryIds = [];
    for (let k = 0; k < n; k++) {
      if (p + 1 > b.length - 8) throw bad();
      const len = b[p++]!;
      if (p + len > b.length - 8) throw bad();
      directoryIds.push(new TextDecoder().decode(b.subarray(p, p + len)));
      p += len;
    }
  }
  const len = dv.getUint32(p);
  p += 4;
  if (p + len + 4 !== b.length) throw bad();
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(term) || !voters.every((v) => Number.isSafeInteger(v) && v > 0) || n === 0)
    throw bad();
  const meta = directoryIds === undefined ? { index, term, voters } : { index, term, voters, directoryIds };
  return { meta, data: b.slice(p, p + len) };
}

/** Records for `ents`, back to back, and each record's offset in the result. */
function encodeRecords(ents: readonly Entry[]): { bytes: Uint8Array; offsets: number[] } {
  let total = 0;
  for (const e of ents) total += REC_HEAD + BODY_FIXED + e.data.length;
  const b = new Uint8Array(total);
  const dv = view(b);
  const offsets: number[] = [];
  let p = 0;
  for (const e of ents) {
    offsets.push(p);
    const len = BODY_FIXED + e.data.length;
    dv.setUint32(p, len);
    const body = p + REC_HEAD;
    setU64(dv, body, e.index);
    setU64(dv, body + 8, e.term);
    b[body + 16] = e.kind === "noop" ? 1 : e.kind === "config" ? 2 : 0;
    b.set(e.data, body + BODY_FIXED);
    dv.setUint32(p + 4, crc32c(b.subarray(body, body + len)));
    p = body + len;
  }
  return { bytes: b, offsets };
}

function decodeBody(body: Uint8Array): Entry {
  const dv = view(body);
  return {
    index: getU64(dv, 0),
    term: getU64(dv, 8),
    kind: body[16] === 1 ? "noop" : body[16] === 2 ? "config" : "data",
    data: body.slice(BODY_FIXED),
  };
}

/** Reads a file through a moving window, so recovery scans it with few reads. */
class WindowReader {
  private buf = new Uint8Array(0);
  private at = 0;

  constructor(
    private readonly file: LogFile,
    private readonly size: number,
  ) {}

  /** `length` bytes at `pos` (the caller checked they are inside the file). */
  bytes(pos: number, length: number): Uint8Array {
    if (pos < this.at || pos + length > this.at + this.buf.length) {
      const want = Math.min(Math.max(length, 1 << 20), this.size - pos);
      this.buf = new Uint8Array(want);
      this.at = pos;
      this.file.read(this.buf, 0, want, pos);
    }
    return this.buf.subarray(pos - this.at, pos - this.at + length);
  }
}
