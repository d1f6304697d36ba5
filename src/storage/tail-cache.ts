/**
 * The tail cache of a partition log: the newest appended batches, kept as the very slices that
 * were appended, so a consumer (or follower) at the head of the log is answered from memory
 * without a disk read.
 *
 * Invariants: entries are in rising offset order (asserted on every push: reads binary-search
 * them) and end at the log end (the log clears the cache when an append is not cached, and cuts
 * it on truncation); the bytes held never exceed `capacity`, the oldest entries going first.
 * Removed head entries are compacted away in bulk, so `push` stays O(1) amortised.
 *
 * Every partition's cache also draws on one `TailCacheBudget` (`log.tail.cache.total.bytes`):
 * when the caches together hold more than the budget, the least recently used cache (by push or
 * read) gives up its oldest entries first, then the next one. A cache holds the appended slices
 * themselves; a slice that is a small part of a larger buffer (a produce request that carried
 * several partitions) is copied first, so what is counted is what is kept alive (small batches
 * packed into a slab of the cache's own, so at most one partly used 8 KiB slab per cache is not).
 */
import { assert } from "../base/assert.ts";

/** A read answered from the cache: whole batches back to back (the shape of a log read). */
export interface CachedRead {
  readonly chunks: Buffer[];
  readonly bytes: number;
  /** Offset after the last batch returned. */
  readonly nextOffset: number;
}

/**
 * Batches up to this size are copied into a slab the cache owns ({@link SLAB_BYTES}) rather than
 * each into memory of its own: an allocation of its own costs a few hundred bytes besides the
 * data (the ArrayBuffer, its backing store), several times a small batch.
 */
const SMALL_BATCH_BYTES = 1024;
/** Size of a cache's slab for small batches: at most one partly used slab per cache is uncounted. */
export const TAIL_CACHE_SLAB_BYTES = 8192;
/**
 * What an entry costs besides its bytes, charged to the cache's capacity and the shared budget:
 * its five numbers in the columns, with their room to grow (measured with 1,000,000 entries of
 * 100 B in 20 caches: 44 B outside the heap under Node; RSS per entry, data included, 169 B under
 * Node and 192 B under Bun, against 254 and 320 B when each entry was a Buffer view of its own).
 * Uncharged, a cache of 100-byte batches held about twice its count.
 */
export const TAIL_CACHE_ENTRY_BYTES = 64;

/**
 * A copy of `b` in memory of its own, exactly its size. Not `Buffer.from`: below 4 KiB it copies
 * into Node's shared 8 KiB allocation pool, and a cached batch of 100 bytes then keeps a whole
 * 8 KiB slab alive (the rest of it other, short-lived buffers), so the cache held several times
 * the bytes it counted (issue 14's soak: RSS rising 12–25 MiB/min while the caches filled).
 */
function ownCopy(b: Buffer): Buffer {
  const copy = Buffer.allocUnsafeSlow(b.length);
  b.copy(copy);
  return copy;
}

/**
 * One memory budget shared by the tail caches of every partition: the bytes they hold together
 * stay within `bytesMax`, the least recently used cache giving up its oldest entries first.
 */
export class TailCacheBudget {
  private used = 0;
  /** Caches holding bytes, least recently used first (a Map keeps insertion order). */
  private readonly lru = new Map<TailCache, true>();
  /** Entries given up to keep within the budget (for tests and metrics). */
  evictions = 0;

  /** `bytesMax`: bytes all caches may hold together. */
  constructor(readonly bytesMax: number) {
    assert(Number.isSafeInteger(bytesMax) && bytesMax >= 0, `tail cache budget: bad size ${bytesMax}`);
  }

  /** Bytes the caches hold together. */
  get bytesUsed(): number {
    return this.used;
  }

  /** Caches holding bytes. */
  get caches(): number {
    return this.lru.size;
  }

  /** `cache` was used: it becomes the most recently used. */
  touch(cache: TailCache): void {
    if (!this.lru.delete(cache)) return;
    this.lru.set(cache, true);
  }

  /** `cache` took `bytes` more; evicts from the least recently used caches until within budget. */
  charge(cache: TailCache, bytes: number): void {
    this.used += bytes;
    this.lru.delete(cache);
    this.lru.set(cache, true);
    while (this.used > this.bytesMax) {
      const oldest = this.lru.keys().next().value;
      assert(oldest !== undefined, "tail cache budget: over budget with no cache holding bytes");
      oldest.evictOldest();
      this.evictions++;
    }
  }

  /** `cache` gave back `bytes`; one that holds nothing leaves the LRU order. */
  release(cache: TailCache, bytes: number, empty: boolean): void {
    this.used -= bytes;
    assert(this.used >= 0, "tail cache budget: released more than charged");
    if (empty) this.lru.delete(cache);
  }
}

/** Grows `a` (by doubling) to hold at least `n` elements, keeping the first `keep`. */
function grown<T extends Float64Array | Uint32Array>(a: T, n: number, keep: number, make: (len: number) => T): T {
  if (n <= a.length) return a;
  const b = make(Math.max(n, a.length * 2, 64));
  b.set(a.subarray(0, keep));
  return b;
}

/**
 * The newest appended batches, kept as the very slices that were appended, so a consumer at the
 * head of the log is answered from memory. Bounded by bytes; the oldest entries go first.
 *
 * An entry is five numbers in typed-array columns (its offsets, where its bytes start in their
 * memory, their length, and which memory), not a Buffer view of its own: a view is an object on
 * the JavaScript heap (~96 B, plus ~27 B in three arrays per entry), and the runtime keeps its
 * heap a multiple of what is live (V8 1.5× with `gc.heap.growing.percent` 50). In issue 14's
 * soak the caches' entries were all the heap grew by between snapshots 3 and 6 minutes after the
 * last restart (+0.77 MiB/min live), and the old space grew 2.5 MiB/min with them: RSS beyond
 * the bytes the caches counted. The columns are memory outside the heap (`arrayBuffers`),
 * counted in `entryBytes`. A read returns one view per run of entries that lie back to back in
 * one memory (a slab of small batches, or the batches of one append): fewer chunks than entries.
 */
export class TailCache {
  /** Entry i (from `head` to `n`): offsets `bases[i]..lasts[i]`, bytes `starts[i]`, `lens[i]` long, in memory `mems[i]`. */
  private bases = new Float64Array(0);
  private lasts = new Float64Array(0);
  private starts = new Float64Array(0);
  private lens = new Uint32Array(0);
  /** The memory of entry i: `chunks[mems[i] - chunkBase]` (numbers rise with i). */
  private mems = new Uint32Array(0);
  private head = 0;
  private n = 0;
  /**
   * The memories entries refer to: number c is `chunks[c - chunkBase]`; those below `chunkHead`
   * are let go (null) and cut off in bulk when the columns are compacted, which also numbers
   * them from 0 again, so dropping the oldest entry stays O(1) whatever the number of memories.
   */
  private chunks: (ArrayBufferLike | null)[] = [];
  private chunkHead = 0;
  private chunkBase = 0;
  private bytes = 0;
  /** Where small batches are copied (entries are evicted oldest first, so a slab lives until its last entry goes). */
  private slab: Buffer | null = null;
  private slabUsed = 0;

  /**
   * `capacity`: bytes this cache keeps at most (0 keeps nothing); `budget`: the budget shared
   * with the other partitions' caches (none: this cache is bounded by its capacity alone).
   */
  constructor(
    private readonly capacity: number,
    private readonly budget: TailCacheBudget | null = null,
    /** What each entry costs besides its bytes (tests of the byte arithmetic pass 0). */
    private readonly entryBytes: number = TAIL_CACHE_ENTRY_BYTES,
  ) {}

  /** Bytes held, each entry's overhead (`entryBytes`) included. */
  get size(): number {
    return this.bytes;
  }

  /** Entries held (for tests). */
  get entries(): number {
    return this.n - this.head;
  }

  /** The most this cache may hold: its capacity, and no more than the shared budget. */
  private get limit(): number {
    return this.budget ? Math.min(this.capacity, this.budget.bytesMax) : this.capacity;
  }

  /**
   * Adds the batches of one append (`batches`: where each starts in `buf`, and its offsets),
   * keeping the newest that fit: a batch larger than the whole cache empties it. The kept part
   * of `buf` is copied when it is less than half of the memory it would keep alive, and always
   * when it is small (into the slab): a small buffer alone in its memory, kept as it is, costs an
   * ArrayBuffer and an allocation of its own besides its bytes (RSS 622 B per cached 100-byte
   * batch under Bun, 375 B in the slab). Issue 14's soak caches such batches (offset commits,
   * produce requests of one partition) at ~250 a second, and JavaScriptCore's external memory
   * grew 2.7 MiB/min through the second half where the caches counted 1.4.
   */
  pushAppend(buf: Buffer, batches: readonly { at: number; baseOffset: number; lastOffset: number }[]): void {
    let first = batches.length;
    while (first > 0 && buf.length - batches[first - 1]!.at + (batches.length - first + 1) * this.entryBytes <= this.limit) first--;
    if (first === batches.length) {
      this.clear();
      return;
    }
    const from = batches[first]!.at;
    let kept = buf.subarray(from);
    if (kept.length <= SMALL_BATCH_BYTES || kept.buffer.byteLength > 2 * kept.length) kept = this.copy(kept);
    for (let i = first; i < batches.length; i++) {
      const b = batches[i]!;
      const end = i + 1 < batches.length ? batches[i + 1]!.at : buf.length;
      this.push(kept.subarray(b.at - from, end - from), b.baseOffset, b.lastOffset);
    }
  }

  /** `b` copied into memory only this cache holds: small batches packed into its slab. */
  private copy(b: Buffer): Buffer {
    if (b.length > SMALL_BATCH_BYTES) return ownCopy(b);
    if (!this.slab || this.slabUsed + b.length > this.slab.length) {
      this.slab = Buffer.allocUnsafeSlow(TAIL_CACHE_SLAB_BYTES);
      this.slabUsed = 0;
    }
    const at = this.slabUsed;
    b.copy(this.slab, at);
    this.slabUsed += b.length;
    return this.slab.subarray(at, at + b.length);
  }

  /**
   * Adds the batches just appended at the log end (`baseOffset`..`lastOffset`), dropping the
   * oldest entries past the capacity (and, through the shared budget, past the total). A slice
   * larger than the whole cache empties it. The cache keeps `buf`'s memory alive (all of it).
   */
  push(buf: Buffer, baseOffset: number, lastOffset: number): void {
    assert(baseOffset <= lastOffset, `tail cache: batch offsets ${baseOffset}..${lastOffset} run backwards`);
    const last = this.n > this.head ? this.lasts[this.n - 1]! : -1;
    assert(baseOffset > last, `tail cache: batch at ${baseOffset} pushed after one ending at ${last}`);
    const cost = buf.length + this.entryBytes;
    if (this.limit <= 0 || cost > this.limit) {
      this.clear();
      return;
    }
    if (this.n === this.bases.length) this.grow(this.n + 1); // may renumber the memories: first
    const mem = buf.buffer;
    const lastChunk = this.chunks.length - 1;
    if (this.n === this.head || lastChunk < this.chunkHead || this.chunks[lastChunk] !== mem) this.chunks.push(mem);
    const chunk = this.chunkBase + this.chunks.length - 1;
    const i = this.n++;
    this.bases[i] = baseOffset;
    this.lasts[i] = lastOffset;
    this.starts[i] = buf.byteOffset;
    this.lens[i] = buf.length;
    this.mems[i] = chunk;
    this.bytes += cost;
    while (this.bytes > this.capacity) this.dropHead();
    this.budget?.charge(this, cost);
  }

  /** Room for `need` entries: the live ones moved to the front when that frees half, else columns of twice the size. */
  private grow(need: number): void {
    const live = this.n - this.head;
    if (this.head > 0 && live + 1 <= this.bases.length / 2) {
      this.compact();
      return;
    }
    this.compact();
    this.bases = grown(this.bases, need, this.n, (l) => new Float64Array(l));
    this.lasts = grown(this.lasts, need, this.n, (l) => new Float64Array(l));
    this.starts = grown(this.starts, need, this.n, (l) => new Float64Array(l));
    this.lens = grown(this.lens, need, this.n, (l) => new Uint32Array(l));
    this.mems = grown(this.mems, need, this.n, (l) => new Uint32Array(l));
  }

  /** Moves the live entries to the front of the columns, and numbers their memories from 0 again (so numbers stay small). */
  private compact(): void {
    const { head, n } = this;
    if (this.chunkHead > 0) {
      this.chunks = this.chunks.slice(this.chunkHead);
      this.chunkBase += this.chunkHead;
      this.chunkHead = 0;
    }
    const chunkBase = this.chunkBase;
    if (head > 0) {
      this.bases.copyWithin(0, head, n);
      this.lasts.copyWithin(0, head, n);
      this.starts.copyWithin(0, head, n);
      this.lens.copyWithin(0, head, n);
      this.mems.copyWithin(0, head, n);
      this.n = n - head;
      this.head = 0;
    }
    if (chunkBase > 0) {
      for (let i = 0; i < this.n; i++) this.mems[i]! -= chunkBase;
      this.chunkBase = 0;
    }
  }

  /** Gives up the oldest entry (the shared budget calls this on the least recently used cache). */
  evictOldest(): void {
    if (this.head < this.n) this.dropHead();
  }

  private dropHead(): void {
    const cost = this.lens[this.head]! + this.entryBytes;
    this.bytes -= cost;
    this.head++;
    const empty = this.head >= this.n;
    if (empty) {
      this.head = this.n = 0;
      this.chunkBase = this.chunkHead = 0;
      this.chunks = [];
    } else this.dropChunksBelow(this.mems[this.head]!);
    this.budget?.release(this, cost, empty);
  }

  /** Lets go of the memories numbered below `chunk` (no entry from `head` on refers to them). */
  private dropChunksBelow(chunk: number): void {
    const to = chunk - this.chunkBase;
    while (this.chunkHead < to) this.chunks[this.chunkHead++] = null;
  }

  /**
   * Whole batches from the one holding `offset`, up to `maxBytes` (at least one entry) and below
   * `limit`, or null if the cache does not reach back to `offset`.
   */
  read(offset: number, maxBytes: number, limit: number): CachedRead | null {
    const n = this.n;
    if (this.head >= n || offset < this.bases[this.head]!) return null;
    this.budget?.touch(this);
    let i = this.find(offset);
    const chunks: Buffer[] = [];
    let bytes = 0;
    let next = offset;
    // A run of entries back to back in one memory becomes one view.
    let runMem = -1;
    let runStart = 0;
    let runEnd = 0;
    for (let first = true; i < n && this.bases[i]! < limit; i++, first = false) {
      const len = this.lens[i]!;
      if (!first && bytes + len > maxBytes) break;
      const mem = this.mems[i]!;
      const start = this.starts[i]!;
      if (mem === runMem && start === runEnd) runEnd += len;
      else {
        if (runMem >= 0) chunks.push(this.view(runMem, runStart, runEnd));
        runMem = mem;
        runStart = start;
        runEnd = start + len;
      }
      bytes += len;
      next = this.lasts[i]! + 1;
    }
    if (runMem >= 0) chunks.push(this.view(runMem, runStart, runEnd));
    return { chunks, bytes, nextOffset: next };
  }

  private view(mem: number, start: number, end: number): Buffer {
    return Buffer.from(this.chunks[mem - this.chunkBase]! as ArrayBuffer, start, end - start);
  }

  /** The bytes `read` would return (without touching the LRU order), or null where it answers null. */
  readSize(offset: number, maxBytes: number, limit: number): number | null {
    const n = this.n;
    if (this.head >= n || offset < this.bases[this.head]!) return null;
    let bytes = 0;
    for (let i = this.find(offset), first = true; i < n && this.bases[i]! < limit; i++, first = false) {
      const b = this.lens[i]!;
      if (!first && bytes + b > maxBytes) break;
      bytes += b;
    }
    return bytes;
  }

  /** First entry whose last offset is >= offset. */
  private find(offset: number): number {
    let lo = this.head;
    let hi = this.n - 1;
    let ans = this.n;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.lasts[mid]! >= offset) {
        ans = mid;
        hi = mid - 1;
      } else lo = mid + 1;
    }
    return ans;
  }

  /** Drops entries with any offset >= `offset`. */
  truncateFrom(offset: number): void {
    while (this.n > this.head && this.lasts[this.n - 1]! >= offset) {
      this.n--;
      const cost = this.lens[this.n]! + this.entryBytes;
      this.bytes -= cost;
      const empty = this.n <= this.head;
      if (empty) {
        this.head = this.n = 0;
        this.chunkBase = this.chunkHead = 0;
        this.chunks = [];
      } else {
        const keep = this.mems[this.n - 1]! - this.chunkBase + 1;
        if (keep < this.chunks.length) this.chunks.length = keep;
      }
      this.budget?.release(this, cost, empty);
    }
  }

  /** Drops entries that start below `offset`. */
  dropBelow(offset: number): void {
    while (this.head < this.n && this.bases[this.head]! < offset) this.dropHead();
  }

  /** Drops everything. */
  clear(): void {
    this.budget?.release(this, this.bytes, true);
    this.bases = new Float64Array(0);
    this.lasts = new Float64Array(0);
    this.starts = new Float64Array(0);
    this.lens = new Uint32Array(0);
    this.mems = new Uint32Array(0);
    this.head = this.n = 0;
    this.chunkBase = this.chunkHead = 0;
    this.chunks = [];
    this.bytes = 0;
    this.slab = null;
  }
}
