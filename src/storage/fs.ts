/**
 * The disk, injected. Storage reaches files only through `FileSystem`, so tests and the
 * simulator can use `MemoryFileSystem`, whose `crash()` drops every write that was not synced.
 *
 * Reads and writes are synchronous: on the hot path they hit the page cache (a memcpy), and a
 * synchronous call costs a fraction of a promise round trip. Only `sync()` — the fsync that can
 * take milliseconds — is asynchronous, so it runs on libuv's pool and never blocks the loop.
 */
import * as nodeFs from "node:fs";
import * as nodePath from "node:path";

/** An open file. Positions are absolute; there is no implicit file pointer. */
export interface LogFile {
  readonly path: string;
  /** Current size in bytes. */
  size(): number;
  /** Writes all of `data` at `position`. */
  write(data: Uint8Array, position: number): void;
  /** Reads up to `length` bytes at `position` into `into[offset..]`; returns bytes read. */
  read(into: Uint8Array, offset: number, length: number, position: number): number;
  /** Shrinks (or grows with zeros) the file to `length`. */
  truncate(length: number): void;
  /** Makes every write so far durable. */
  sync(): Promise<void>;
  close(): void;
  /**
   * Keeps the file's descriptor open (`true`: the active segment) or lets a handle pool close it
   * while idle (`false`). Files not from a `FileHandlePool` ignore it.
   */
  setPinned?(pinned: boolean): void;
}

/** Files and folders. Paths are plain strings joined with `join`. */
export interface FileSystem {
  join(...parts: string[]): string;
  mkdirp(path: string): void;
  /** Names (not paths) in a folder; [] if it does not exist. */
  readdir(path: string): string[];
  exists(path: string): boolean;
  isDir(path: string): boolean;
  /** Removes a file, or a folder with everything in it. No error if absent. */
  rm(path: string): void;
  /** Atomic rename, replacing `to` if it exists. */
  rename(from: string, to: string): void;
  /** Opens for reading and writing; creates the file when `create` is set. */
  open(path: string, create: boolean): LogFile;
  readFile(path: string): Uint8Array;
  /** Writes a whole small file atomically and durably (temp file, fsync, rename). */
  writeFileAtomic(path: string, data: Uint8Array): void;
  /**
   * Creates `path` exclusively. Returns false if it already exists. Used for the data
   * directory's lock file.
   */
  createExclusive(path: string, data: Uint8Array): boolean;
}

/** The real disk, through node:fs (works on Node, Bun and Deno). */
export class NodeFileSystem implements FileSystem {
  join(...parts: string[]): string {
    return nodePath.join(...parts);
  }

  mkdirp(path: string): void {
    nodeFs.mkdirSync(path, { recursive: true });
  }

  readdir(path: string): string[] {
    try {
      return nodeFs.readdirSync(path);
    } catch (e) {
      if (isNotFound(e)) return [];
      throw e;
    }
  }

  exists(path: string): boolean {
    return nodeFs.existsSync(path);
  }

  isDir(path: string): boolean {
    try {
      return nodeFs.statSync(path).isDirectory();
    } catch {
      return false;
    }
  }

  rm(path: string): void {
    nodeFs.rmSync(path, { recursive: true, force: true });
  }

  rename(from: string, to: string): void {
    nodeFs.renameSync(from, to);
  }

  open(path: string, create: boolean): LogFile {
    const fd = nodeFs.openSync(path, create ? nodeFs.constants.O_RDWR | nodeFs.constants.O_CREAT : nodeFs.constants.O_RDWR, 0o644);
    return new NodeLogFile(path, fd);
  }

  readFile(path: string): Uint8Array {
    return nodeFs.readFileSync(path);
  }

  writeFileAtomic(path: string, data: Uint8Array): void {
    const tmp = `${path}.tmp`;
    const fd = nodeFs.openSync(tmp, "w", 0o644);
    try {
      writeAll(fd, data, 0);
      nodeFs.fsyncSync(fd);
    } finally {
      nodeFs.closeSync(fd);
    }
    nodeFs.renameSync(tmp, path);
  }

  createExclusive(path: string, data: Uint8Array): boolean {
    let fd: number;
    try {
      fd = nodeFs.openSync(path, "wx", 0o644);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
      throw e;
    }
    try {
      writeAll(fd, data, 0);
    } finally {
      nodeFs.closeSync(fd);
    }
    return true;
  }
}

/**
 * Replaces a small file atomically (a temp file, then a rename over `path`) without an fsync:
 * after a power loss `path` holds the old bytes, the new ones, or a torn file. Only for files
 * whose reader detects a torn one and whose writer makes them durable later (the leader-epoch
 * checkpoint: leader-epoch-cache.ts says why that is safe). One writer per path at a time.
 */
export function replaceFileUnsynced(fs: FileSystem, path: string, data: Uint8Array): void {
  const tmp = `${path}.tmp`;
  const f = fs.open(tmp, true);
  try {
    f.truncate(0);
    f.write(data, 0);
  } finally {
    f.close();
  }
  fs.rename(tmp, path);
}

/**
 * `writeFileAtomic` with its fsync off the event loop (`LogFile.sync`, on libuv's pool): a temp
 * file, written, fsynced, then renamed over `path`. Many of these run at once — a broker closing
 * 1,000 partitions writes four or five such files for each — where `writeFileAtomic` would fsync
 * them one after another on the loop. One writer per path at a time.
 */
export async function writeFileAtomicAsync(fs: FileSystem, path: string, data: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp`;
  const f = fs.open(tmp, true);
  try {
    f.truncate(0);
    f.write(data, 0);
    await f.sync();
  } finally {
    f.close();
  }
  fs.rename(tmp, path);
}

/**
 * Waits for every one of `writes`, then rejects with the first failure if any: a file's error
 * does not leave the others' writes running unawaited.
 */
export async function settleAll(writes: readonly Promise<void>[]): Promise<void> {
  const failed = (await Promise.allSettled(writes)).find((r) => r.status === "rejected");
  if (failed) throw failed.reason;
}

function isNotFound(e: unknown): boolean {
  return (e as NodeJS.ErrnoException)?.code === "ENOENT";
}

function writeAll(fd: number, data: Uint8Array, position: number): void {
  let done = 0;
  while (done < data.length) {
    done += nodeFs.writeSync(fd, data, done, data.length - done, position + done);
  }
}

class NodeLogFile implements LogFile {
  private bytes: number;

  constructor(
    readonly path: string,
    private readonly fd: number,
  ) {
    this.bytes = nodeFs.fstatSync(fd).size;
  }

  size(): number {
    return this.bytes;
  }

  write(data: Uint8Array, position: number): void {
    writeAll(this.fd, data, position);
    if (position + data.length > this.bytes) this.bytes = position + data.length;
  }

  read(into: Uint8Array, offset: number, length: number, position: number): number {
    let done = 0;
    while (done < length) {
      const n = nodeFs.readSync(this.fd, into, offset + done, length - done, position + done);
      if (n === 0) break;
      done += n;
    }
    return done;
  }

  truncate(length: number): void {
    nodeFs.ftruncateSync(this.fd, length);
    this.bytes = length;
  }

  sync(): Promise<void> {
    return new Promise((resolve, reject) => nodeFs.fsync(this.fd, (err) => (err ? reject(err) : resolve())));
  }

  close(): void {
    nodeFs.closeSync(this.fd);
  }
}

/**
 * One in-memory file: what was written (`data`, of which `size` bytes are the file), and what a
 * crash would leave (the first `durableSize` bytes of `durable`). An fsync copies only what may
 * differ from the durable bytes: from `dirtyFrom` (the lowest byte written or cut below
 * `durableSize` since the last sync) or the old durable end, whichever is lower — not the whole
 * file each time.
 */
interface MemFile {
  data: Uint8Array;
  size: number;
  durable: Uint8Array;
  durableSize: number;
  dirtyFrom: number;
}

/** A file whose bytes are all durable. */
function durableFile(data: Uint8Array): MemFile {
  return { data, size: data.length, durable: copyBytes(data), durableSize: data.length, dirtyFrom: Number.POSITIVE_INFINITY };
}

/**
 * An in-memory twin of the disk. Every write is visible at once; only synced bytes survive
 * `crash()` (renames and removals are treated as durable, as on a journaling filesystem with
 * its metadata flushed).
 */
export class MemoryFileSystem implements FileSystem {
  private readonly files = new Map<string, MemFile>();
  private readonly dirs = new Set<string>(["/"]);
  /**
   * What `readdir` lists, kept as paths come and go: per folder, each name under it with the
   * number of paths (files and folders, itself included) at or below it. A file may exist without
   * its folders (`writeFileAtomic` does not ask for them), and its ancestors still list it.
   */
  private readonly entries = new Map<string, Map<string, number>>();
  /** fsync calls, for tests of group commit. */
  syncCount = 0;

  join(...parts: string[]): string {
    return nodePath.posix.join(...parts);
  }

  mkdirp(path: string): void {
    let p = nodePath.posix.resolve("/", path);
    while (!this.dirs.has(p)) {
      this.addDir(p);
      p = nodePath.posix.dirname(p);
    }
  }

  private abs(path: string): string {
    // The broker's own paths are absolute and normal already; resolving each was a cost of its own.
    return isNormalAbsolute(path) ? path : nodePath.posix.resolve("/", path);
  }

  /** Counts `p` (a normal absolute path, not "/") in `entries` under each of its ancestors. */
  private index(p: string, delta: 1 | -1): void {
    let end = p.length;
    for (let slash = p.lastIndexOf("/"); slash >= 0; slash = p.lastIndexOf("/", slash - 1)) {
      const dir = slash === 0 ? "/" : p.slice(0, slash);
      const name = p.slice(slash + 1, end);
      let names = this.entries.get(dir);
      if (names === undefined) this.entries.set(dir, (names = new Map()));
      const n = (names.get(name) ?? 0) + delta;
      if (n > 0) names.set(name, n);
      else {
        names.delete(name);
        if (names.size === 0) this.entries.delete(dir);
      }
      if (slash === 0) break;
      end = slash;
    }
  }

  private setFile(p: string, file: MemFile): void {
    if (!this.files.has(p) && p !== "/") this.index(p, 1);
    this.files.set(p, file);
  }

  private deleteFile(p: string): void {
    if (this.files.delete(p) && p !== "/") this.index(p, -1);
  }

  private addDir(p: string): void {
    if (this.dirs.has(p)) return;
    this.dirs.add(p);
    if (p !== "/") this.index(p, 1);
  }

  private deleteDir(p: string): void {
    if (this.dirs.delete(p) && p !== "/") this.index(p, -1);
  }

  readdir(path: string): string[] {
    const names = this.entries.get(this.abs(path));
    return names === undefined ? [] : [...names.keys()].sort();
  }

  exists(path: string): boolean {
    const p = this.abs(path);
    return this.files.has(p) || this.dirs.has(p);
  }

  isDir(path: string): boolean {
    return this.dirs.has(this.abs(path));
  }

  rm(path: string): void {
    const p = this.abs(path);
    this.deleteFile(p);
    this.deleteDir(p);
    if (!this.entries.has(p)) return; // nothing below it
    const prefix = p + "/";
    for (const k of [...this.files.keys()]) if (k.startsWith(prefix)) this.deleteFile(k);
    for (const k of [...this.dirs]) if (k.startsWith(prefix)) this.deleteDir(k);
  }

  rename(from: string, to: string): void {
    const f = this.abs(from);
    const t = this.abs(to);
    const file = this.files.get(f);
    if (file) {
      this.deleteFile(f);
      this.setFile(t, file);
      return;
    }
    if (!this.dirs.has(f)) throw new Error(`ENOENT: rename ${from}`);
    const prefix = f + "/";
    for (const d of [...this.dirs]) {
      if (d === f || d.startsWith(prefix)) {
        this.deleteDir(d);
        this.addDir(t + d.slice(f.length));
      }
    }
    for (const [k, v] of [...this.files]) {
      if (k.startsWith(prefix)) {
        this.deleteFile(k);
        this.setFile(t + k.slice(f.length), v);
      }
    }
  }

  open(path: string, create: boolean): LogFile {
    const p = this.abs(path);
    let file = this.files.get(p);
    if (!file) {
      if (!create) throw new Error(`ENOENT: open ${path}`);
      if (!this.dirs.has(nodePath.posix.dirname(p))) throw new Error(`ENOENT: no folder for ${path}`);
      file = durableFile(new Uint8Array(0));
      this.setFile(p, file);
    }
    return new MemLogFile(path, file, this);
  }

  readFile(path: string): Uint8Array {
    const f = this.files.get(this.abs(path));
    if (!f) throw new Error(`ENOENT: ${path}`);
    return copyBytes(f.data.subarray(0, f.size));
  }

  writeFileAtomic(path: string, data: Uint8Array): void {
    this.setFile(this.abs(path), durableFile(copyBytes(data)));
  }

  createExclusive(path: string, data: Uint8Array): boolean {
    if (this.exists(path)) return false;
    this.writeFileAtomic(path, data);
    return true;
  }

  /** Simulates power loss: every file goes back to its last synced bytes. */
  crash(): void {
    for (const f of this.files.values()) {
      f.data = copyBytes(f.durable.subarray(0, f.durableSize));
      f.size = f.durableSize;
      f.dirtyFrom = Number.POSITIVE_INFINITY;
    }
  }

  /** Raw bytes of a file, for tests that corrupt or cut them. */
  bytes(path: string): Uint8Array {
    return this.readFile(path);
  }

  /** Replaces a file's bytes (durably), for tests. */
  setBytes(path: string, data: Uint8Array): void {
    this.writeFileAtomic(path, data);
  }
}

/** Whether `path` is what `posix.resolve("/", path)` returns for it: absolute, no empty, "." or ".." parts. */
function isNormalAbsolute(path: string): boolean {
  if (path === "/") return true;
  return (
    path.charCodeAt(0) === 47 &&
    path.charCodeAt(path.length - 1) !== 47 &&
    !path.includes("//") &&
    !path.includes("/./") &&
    !path.includes("/../") &&
    !path.endsWith("/.") &&
    !path.endsWith("/..")
  );
}

/** A real copy (Buffer#slice would return a view). */
function copyBytes(b: Uint8Array): Uint8Array {
  return new Uint8Array(b);
}

class MemLogFile implements LogFile {
  private closed = false;

  constructor(
    readonly path: string,
    private readonly f: MemFile,
    private readonly fs: MemoryFileSystem,
  ) {}

  size(): number {
    return this.f.size;
  }

  write(data: Uint8Array, position: number): void {
    this.check();
    const end = position + data.length;
    if (end > this.f.data.length) {
      const grown = new Uint8Array(Math.max(end, this.f.data.length * 2, 4096));
      grown.set(this.f.data.subarray(0, this.f.size));
      this.f.data = grown;
    }
    this.f.data.set(data, position);
    if (position < this.f.dirtyFrom) this.f.dirtyFrom = position;
    if (end > this.f.size) this.f.size = end;
  }

  read(into: Uint8Array, offset: number, length: number, position: number): number {
    this.check();
    const n = Math.max(0, Math.min(length, this.f.size - position));
    into.set(this.f.data.subarray(position, position + n), offset);
    return n;
  }

  truncate(length: number): void {
    this.check();
    if (length > this.f.data.length) {
      const grown = new Uint8Array(length);
      grown.set(this.f.data.subarray(0, this.f.size));
      this.f.data = grown;
    } else {
      this.f.data.fill(0, length, this.f.size);
    }
    this.f.dirtyFrom = Math.min(this.f.dirtyFrom, length, this.f.size);
    this.f.size = length;
  }

  sync(): Promise<void> {
    this.check();
    this.fs.syncCount++;
    const f = this.f;
    const from = Math.min(f.dirtyFrom, f.durableSize, f.size);
    if (f.durable.length < f.size) {
      const grown = new Uint8Array(Math.max(f.size, f.durable.length * 2));
      grown.set(f.durable.subarray(0, from));
      f.durable = grown;
    }
    f.durable.set(f.data.subarray(from, f.size), from);
    f.durableSize = f.size;
    f.dirtyFrom = Number.POSITIVE_INFINITY;
    return Promise.resolve();
  }

  close(): void {
    this.closed = true;
  }

  private check(): void {
    if (this.closed) throw new Error(`file is closed: ${this.path}`);
  }
}

/**
 * A LogFile that passes every call to `f` except those `over` replaces: what a wrapper that
 * changes a few calls (a fault, a failure watch) returns from its `open`.
 */
export function forwardFile(f: LogFile, over: Partial<Omit<LogFile, "path">> = {}): LogFile {
  const file: LogFile = {
    path: f.path,
    size: () => f.size(),
    write: (data, position) => f.write(data, position),
    read: (into, offset, length, position) => f.read(into, offset, length, position),
    truncate: (length) => f.truncate(length),
    sync: () => f.sync(),
    close: () => f.close(),
    ...over,
  };
  if (f.setPinned !== undefined && file.setPinned === undefined) file.setPinned = (pinned) => f.setPinned!(pinned);
  return file;
}

/**
 * A FileSystem that passes every call to another one; a wrapper extends it and overrides what it
 * changes (usually `open`).
 */
export abstract class ForwardingFileSystem implements FileSystem {
  constructor(protected readonly inner: FileSystem) {}

  join(...parts: string[]): string {
    return this.inner.join(...parts);
  }
  mkdirp(path: string): void {
    this.inner.mkdirp(path);
  }
  readdir(path: string): string[] {
    return this.inner.readdir(path);
  }
  exists(path: string): boolean {
    return this.inner.exists(path);
  }
  isDir(path: string): boolean {
    return this.inner.isDir(path);
  }
  rm(path: string): void {
    this.inner.rm(path);
  }
  rename(from: string, to: string): void {
    this.inner.rename(from, to);
  }
  readFile(path: string): Uint8Array {
    return this.inner.readFile(path);
  }
  writeFileAtomic(path: string, data: Uint8Array): void {
    this.inner.writeFileAtomic(path, data);
  }
  createExclusive(path: string, data: Uint8Array): boolean {
    return this.inner.createExclusive(path, data);
  }

  abstract open(path: string, create: boolean): LogFile;
}

/**
 * A FileSystem whose files hold a descriptor only while used: at most `max` unpinned files stay
 * open (one more just after an `open`), the least recently used closed first and reopened on their next read or write. A pinned
 * file (a partition's active segment) stays open. A file with an fsync in flight is never closed
 * under it. Every other call passes through to the wrapped FileSystem.
 */
export class FileHandlePool extends ForwardingFileSystem {
  /** Open, unpinned files, least recently used first (a Set keeps insertion order). */
  private readonly idle = new Set<PooledLogFile>();
  private pinnedOpen = 0;
  private reopens = 0;

  /** `max`: unpinned files kept open at once. */
  constructor(
    inner: FileSystem,
    readonly max: number,
  ) {
    super(inner);
    if (!(max >= 1)) throw new Error(`FileHandlePool: max ${max} must be at least 1`);
  }

  /** Descriptors the pool's files hold now (pinned and idle). */
  get openCount(): number {
    return this.idle.size + this.pinnedOpen;
  }

  /** Times a file closed by the pool was opened again. */
  get reopenCount(): number {
    return this.reopens;
  }

  open(path: string, create: boolean): LogFile {
    const file = this.inner.open(path, create);
    const pooled = new PooledLogFile(this, path, file);
    // Room is made before the new file joins (it may be pinned at once, as an active segment
    // is): idle files stay within `max`, plus the one just opened until the next use.
    this.evict();
    this.idle.add(pooled);
    return pooled;
  }

  /** Opens `path` again for a file the pool closed. */
  reopen(f: PooledLogFile): LogFile {
    this.reopens++;
    return this.inner.open(f.path, false);
  }

  /** A file was used (and is open): it becomes the most recently used. */
  used(f: PooledLogFile, reopened: boolean): void {
    if (f.pinned) {
      if (reopened) this.pinnedOpen++;
      return;
    }
    this.idle.delete(f);
    this.idle.add(f);
    if (reopened) this.evict(f);
  }

  /** A file was pinned or unpinned while open. */
  pinChanged(f: PooledLogFile, open: boolean): void {
    if (!open) return;
    if (f.pinned) {
      this.idle.delete(f);
      this.pinnedOpen++;
    } else {
      this.pinnedOpen--;
      this.idle.add(f);
      this.evict();
    }
  }

  /** An fsync ended: files it kept open may be closed now. */
  synced(): void {
    this.evict();
  }

  /** A file was closed for good. */
  closed(f: PooledLogFile, wasOpen: boolean): void {
    if (!wasOpen) return;
    if (f.pinned) this.pinnedOpen--;
    else this.idle.delete(f);
  }

  /** Closes the least recently used idle files beyond `max`, but not `keep` (in use) nor one syncing. */
  private evict(keep?: PooledLogFile): void {
    if (this.idle.size <= this.max) return;
    for (const f of this.idle) {
      if (this.idle.size <= this.max) break;
      if (f !== keep && f.release()) this.idle.delete(f);
    }
  }
}

/** A file of a FileHandlePool: its descriptor comes and goes; its size is kept here. */
class PooledLogFile implements LogFile {
  private file: LogFile | null;
  private bytes: number;
  private syncing = 0;
  private done = false;
  /** Kept open by its owner. */
  pinned = false;

  constructor(
    private readonly pool: FileHandlePool,
    readonly path: string,
    file: LogFile,
  ) {
    this.file = file;
    this.bytes = file.size();
  }

  private handle(): LogFile {
    if (this.done) throw new Error(`file is closed: ${this.path}`);
    const reopened = this.file === null;
    if (this.file === null) this.file = this.pool.reopen(this);
    this.pool.used(this, reopened);
    return this.file;
  }

  /** Closes the descriptor if nothing is in flight on it; true if it did. */
  release(): boolean {
    if (this.file === null || this.syncing > 0) return false;
    this.file.close();
    this.file = null;
    return true;
  }

  size(): number {
    return this.bytes;
  }

  write(data: Uint8Array, position: number): void {
    this.handle().write(data, position);
    if (position + data.length > this.bytes) this.bytes = position + data.length;
  }

  read(into: Uint8Array, offset: number, length: number, position: number): number {
    return this.handle().read(into, offset, length, position);
  }

  truncate(length: number): void {
    this.handle().truncate(length);
    this.bytes = length;
  }

  async sync(): Promise<void> {
    const f = this.handle();
    this.syncing++;
    try {
      await f.sync();
    } finally {
      this.syncing--;
      this.pool.synced();
    }
  }

  close(): void {
    if (this.done) return;
    this.done = true;
    const wasOpen = this.file !== null;
    this.pool.closed(this, wasOpen);
    this.file?.close();
    this.file = null;
  }

  setPinned(pinned: boolean): void {
    if (this.done || pinned === this.pinned) return;
    this.pinned = pinned;
    this.pool.pinChanged(this, this.file !== null);
  }
}
