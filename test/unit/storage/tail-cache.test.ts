import * as v8 from "node:v8";
import * as vm from "node:vm";
import { describe, expect, it } from "vitest";
import { AssertionError } from "../../../src/base/assert.ts";
import { SeededRandom, seedFromEnv } from "../../../src/base/random.ts";
import { TAIL_CACHE_ENTRY_BYTES, TAIL_CACHE_SLAB_BYTES, TailCache, TailCacheBudget } from "../../../src/storage/tail-cache.ts";

/** A stand-in for the batches of offsets base..last: `size` bytes tagged with the base offset. */
const slice = (base: number, size = 10): Buffer => Buffer.alloc(size, base % 251);

/** The base offsets of the slices a read returned. */
const bases = (r: { chunks: Buffer[] } | null): number[] | null => (r === null ? null : r.chunks.map((c) => c[0]!));

describe("TailCache", () => {
  it("answers a read from the entry holding the offset, up to maxBytes and below the limit", () => {
    const c = new TailCache(1000, null, 0);
    c.push(slice(0), 0, 4);
    c.push(slice(5), 5, 9);
    c.push(slice(10), 10, 14);
    const r = c.read(7, 1000, Number.MAX_SAFE_INTEGER)!;
    expect(bases(r)).toEqual([5, 10]);
    expect(r.bytes).toBe(20);
    expect(r.nextOffset).toBe(15);
    expect(bases(c.read(0, 15, Number.MAX_SAFE_INTEGER))).toEqual([0]); // maxBytes stops after one
    expect(bases(c.read(0, 1, Number.MAX_SAFE_INTEGER))).toEqual([0]); // but at least one entry
    expect(bases(c.read(0, 1000, 10))).toEqual([0, 5]); // nothing at or past the limit
  });

  it("answers null when the offset is older than the cache holds, and empty at the end", () => {
    const c = new TailCache(1000, null, 0);
    expect(c.read(0, 100, 100)).toBeNull();
    c.push(slice(20), 20, 29);
    expect(c.read(19, 100, 100)).toBeNull();
    expect(c.read(30, 100, 100)).toEqual({ chunks: [], bytes: 0, nextOffset: 30 });
  });

  it("keeps at most `capacity` bytes, dropping the oldest first", () => {
    const c = new TailCache(25, null, 0);
    c.push(slice(0), 0, 0);
    c.push(slice(1), 1, 1);
    c.push(slice(2), 2, 2);
    expect(c.read(0, 100, 100)).toBeNull();
    expect(bases(c.read(1, 100, 100))).toEqual([1, 2]);
    c.push(slice(3, 30), 3, 3); // larger than the whole cache: nothing is kept
    expect(c.read(3, 100, 100)).toBeNull();
    const off = new TailCache(0, null, 0);
    off.push(slice(0), 0, 0);
    expect(off.read(0, 100, 100)).toBeNull();
  });

  it("truncateFrom cuts entries reaching the offset; dropBelow drops entries starting below it", () => {
    const c = new TailCache(1000, null, 0);
    for (let b = 0; b < 50; b += 10) c.push(slice(b), b, b + 9);
    c.truncateFrom(35);
    expect(bases(c.read(0, 1000, 1000))).toEqual([0, 10, 20]);
    c.push(slice(30), 30, 31); // the log appends again from its new end
    c.dropBelow(15);
    expect(c.read(10, 1000, 1000)).toBeNull();
    expect(bases(c.read(20, 1000, 1000))).toEqual([20, 30]);
    c.clear();
    expect(c.read(30, 1000, 1000)).toBeNull();
  });

  it("asserts that batches are pushed in rising offset order", () => {
    const c = new TailCache(1000, null, 0);
    c.push(slice(10), 10, 19);
    expect(() => c.push(slice(15), 15, 20)).toThrow(AssertionError);
    expect(() => c.push(slice(30), 30, 29)).toThrow(AssertionError);
    c.push(slice(25), 25, 29); // a gap (compacted batches on a follower) is fine
    expect(bases(c.read(20, 1000, 1000))).toEqual([25]);
  });

  it("matches a plain list through a random sequence of pushes, evictions, truncations and reads", () => {
    const seed = seedFromEnv();
    const rnd = new SeededRandom(seed);
    const capacity = 200;
    const c = new TailCache(capacity, null, 0);
    let model: Array<{ base: number; last: number; size: number }> = [];
    let end = 0;
    for (let step = 0; step < 20_000; step++) {
      const op = rnd.int(10);
      if (op < 6) {
        const size = 1 + rnd.int(60);
        const base = end + (rnd.int(5) === 0 ? rnd.int(3) : 0);
        const last = base + rnd.int(4);
        c.push(slice(base, size), base, last);
        end = last + 1;
        model.push({ base, last, size });
        let bytes = model.reduce((n, e) => n + e.size, 0);
        while (bytes > capacity) bytes -= model.shift()!.size;
      } else if (op === 6 && end > 0) {
        const at = Math.max(0, end - rnd.int(10));
        c.truncateFrom(at);
        model = model.filter((e) => e.last < at);
        end = at;
      } else if (op === 7 && model.length > 0) {
        const at = model[0]!.base + rnd.int(20);
        c.dropBelow(at);
        model = model.filter((e) => e.base >= at);
      } else {
        const from = Math.max(0, end - rnd.int(40));
        const maxBytes = 1 + rnd.int(150);
        const got = c.read(from, maxBytes, end);
        if (model.length === 0 || from < model[0]!.base) {
          expect(got, `SEED=${seed} step ${step}`).toBeNull();
          continue;
        }
        const want: number[] = [];
        let bytes = 0;
        for (const e of model) {
          if (e.last < from) continue;
          if (want.length > 0 && bytes + e.size > maxBytes) break;
          want.push(e.base % 251);
          bytes += e.size;
        }
        expect(bases(got), `SEED=${seed} step ${step}`).toEqual(want);
        expect(got!.bytes, `SEED=${seed} step ${step}`).toBe(bytes);
      }
    }
  });
});

describe("TailCache entries", () => {
  it("are not objects on the JavaScript heap (issue 14's soak: the caches' entries were all its heap grew by)", () => {
    // Each entry was a Buffer view (~96 B) plus ~27 B in three arrays, all on the heap, which V8
    // keeps a multiple of what is live: the soak's old space grew 2.5 MiB/min while the caches
    // filled. Now an entry is five numbers in typed-array columns, outside the heap.
    v8.setFlagsFromString("--expose-gc");
    const gc = vm.runInNewContext("gc") as () => void;
    const N = 200_000;
    const caches: TailCache[] = [];
    gc();
    const before = process.memoryUsage().heapUsed;
    const request = Buffer.alloc(20_000, 1);
    for (let c = 0; c < 10; c++) {
      const t = new TailCache(1 << 30, null);
      for (let i = 0; i < N / 10; i++) t.pushAppend(request.subarray(i % 100, (i % 100) + 100), [{ at: 0, baseOffset: i, lastOffset: i }]);
      caches.push(t);
    }
    gc();
    const perEntry = (process.memoryUsage().heapUsed - before) / N;
    expect(perEntry).toBeLessThan(16); // was ~120 B
    expect(caches.reduce((n, t) => n + t.entries, 0)).toBe(N);
  });

  it("let go of the memory of evicted batches (none is kept by the list of memories)", async () => {
    v8.setFlagsFromString("--expose-gc");
    const gc = vm.runInNewContext("gc") as () => void;
    const c = new TailCache(3 * 5000, null, 0);
    const refs: WeakRef<ArrayBufferLike>[] = [];
    for (let i = 0; i < 20; i++) {
      const own = Buffer.alloc(5000, i); // a batch alone in its memory, kept as it is (no copy)
      refs.push(new WeakRef(own.buffer));
      c.pushAppend(own, [{ at: 0, baseOffset: i, lastOffset: i }]);
    }
    await new Promise((r) => setImmediate(r)); // WeakRefs are kept through the job that made them
    gc();
    expect(refs.map((r) => r.deref() !== undefined)).toEqual([...Array(17).fill(false), true, true, true]);
    expect(c.read(17, 1 << 20, Number.MAX_SAFE_INTEGER)!.bytes).toBe(15_000);
  });

  it("read back as the bytes pushed, through slabs, appends, evictions, truncations and dropBelow (random, against a plain list)", () => {
    const seed = seedFromEnv();
    const rnd = new SeededRandom(seed);
    const capacity = 3000;
    const c = new TailCache(capacity, null, 16);
    let model: Array<{ base: number; last: number; bytes: Buffer }> = [];
    let end = 0;
    let tag = 0;
    const cost = (e: { bytes: Buffer }): number => e.bytes.length + 16;
    for (let step = 0; step < 20_000; step++) {
      const op = rnd.int(10);
      if (op < 6) {
        // One append of 1-4 batches, small (copied into the slab) or larger, alone in its memory or part of a bigger one.
        const n = 1 + rnd.int(4);
        const sizes = Array.from({ length: n }, () => (rnd.int(8) === 0 ? 1100 + rnd.int(400) : 1 + rnd.int(120)));
        const total = sizes.reduce((a, b) => a + b, 0);
        const pad = rnd.int(2) === 0 ? 0 : 3 * total;
        const mem = Buffer.alloc(total + pad);
        const buf = mem.subarray(pad, pad + total);
        const batches: Array<{ at: number; baseOffset: number; lastOffset: number }> = [];
        let at = 0;
        let base = end + (rnd.int(5) === 0 ? rnd.int(3) : 0);
        const added: typeof model = [];
        for (const size of sizes) {
          for (let k = 0; k < size; k++) buf[at + k] = (tag + k) & 0xff;
          tag++;
          const last = base + rnd.int(4);
          batches.push({ at, baseOffset: base, lastOffset: last });
          added.push({ base, last, bytes: Buffer.from(buf.subarray(at, at + size)) });
          at += size;
          base = last + 1;
        }
        c.pushAppend(buf, batches);
        end = base;
        // The model: the newest batches whose bytes and entries fit; then the oldest go past the capacity.
        let first = n;
        while (first > 0 && total - batches[first - 1]!.at + (n - first + 1) * 16 <= capacity) first--;
        if (first === n) model = [];
        else model.push(...added.slice(first));
        let bytes = model.reduce((x, e) => x + cost(e), 0);
        while (bytes > capacity) bytes -= cost(model.shift()!);
      } else if (op === 6 && end > 0) {
        const at = Math.max(0, end - rnd.int(10));
        c.truncateFrom(at);
        model = model.filter((e) => e.last < at);
        end = at;
      } else if (op === 7 && model.length > 0) {
        const at = model[0]!.base + rnd.int(20);
        c.dropBelow(at);
        model = model.filter((e) => e.base >= at);
      } else {
        const from = Math.max(0, end - rnd.int(40));
        const maxBytes = 1 + rnd.int(2000);
        const got = c.read(from, maxBytes, end);
        expect(c.readSize(from, maxBytes, end), `SEED=${seed} step ${step}`).toBe(got === null ? null : got.bytes);
        if (model.length === 0 || from < model[0]!.base) {
          expect(got, `SEED=${seed} step ${step}`).toBeNull();
          continue;
        }
        const want: Buffer[] = [];
        let bytes = 0;
        let next = from;
        for (const e of model) {
          if (e.last < from) continue;
          if (want.length > 0 && bytes + e.bytes.length > maxBytes) break;
          want.push(e.bytes);
          bytes += e.bytes.length;
          next = e.last + 1;
        }
        expect(Buffer.concat(got!.chunks).equals(Buffer.concat(want)), `SEED=${seed} step ${step}`).toBe(true);
        expect(got!.bytes, `SEED=${seed} step ${step}`).toBe(bytes);
        expect(got!.nextOffset, `SEED=${seed} step ${step}`).toBe(next);
        expect(c.size, `SEED=${seed} step ${step}`).toBe(model.reduce((x, e) => x + cost(e), 0));
      }
    }
  });
});

describe("TailCacheBudget: one budget over every partition's cache", () => {
  const ALL = Number.MAX_SAFE_INTEGER;

  it("keeps the caches together within the budget, evicting the least recently used cache's oldest entries first", () => {
    const budget = new TailCacheBudget(30);
    const a = new TailCache(100, budget, 0);
    const b = new TailCache(100, budget, 0);
    const c = new TailCache(100, budget, 0);
    a.push(slice(0), 0, 0);
    a.push(slice(1), 1, 1);
    b.push(slice(0), 0, 0);
    expect(budget.bytesUsed).toBe(30);
    // `a` is read: `b` is now the least recently used, and gives up its entry first.
    expect(a.read(0, 100, ALL)).not.toBeNull();
    c.push(slice(0), 0, 0);
    expect(b.read(0, 100, ALL)).toBeNull();
    expect(budget.bytesUsed).toBe(30);
    // Next in line: `a` (read before `c` was pushed); its oldest entry goes, its newest stays.
    c.push(slice(1), 1, 1);
    expect(bases(a.read(0, 100, ALL))).toBeNull();
    expect(bases(a.read(1, 100, ALL))).toEqual([1]);
    expect(budget.bytesUsed).toBe(30);
    expect(budget.bytesUsed).toBe(a.size + b.size + c.size);
    expect(budget.evictions).toBe(2);
  });

  it("a cache alone gives up its own oldest entries; one entry larger than the budget is not kept", () => {
    const budget = new TailCacheBudget(25);
    const a = new TailCache(100, budget, 0);
    a.push(slice(0), 0, 0);
    a.push(slice(1), 1, 1);
    a.push(slice(2), 2, 2);
    expect(bases(a.read(1, 100, ALL))).toEqual([1, 2]);
    a.push(slice(3, 26), 3, 3);
    expect(a.size).toBe(0);
    expect(budget.bytesUsed).toBe(0);
  });

  it("gives its bytes back on truncation, dropBelow and clear", () => {
    const budget = new TailCacheBudget(1000);
    const a = new TailCache(1000, budget, 0);
    for (let i = 0; i < 5; i++) a.push(slice(i), i, i);
    a.truncateFrom(4);
    a.dropBelow(1);
    expect(budget.bytesUsed).toBe(30);
    a.clear();
    expect(budget.bytesUsed).toBe(0);
    expect(budget.caches).toBe(0);
  });

  it("pushAppend keeps the newest batches that fit, copied out of a much larger buffer", () => {
    const budget = new TailCacheBudget(1000);
    const a = new TailCache(25, budget, 0);
    const request = Buffer.alloc(10_000, 9); // a produce request carrying other partitions too
    const mine = request.subarray(100, 130);
    a.pushAppend(mine, [
      { at: 0, baseOffset: 0, lastOffset: 0 },
      { at: 10, baseOffset: 1, lastOffset: 1 },
      { at: 20, baseOffset: 2, lastOffset: 2 },
    ]);
    expect(a.read(0, 100, ALL)).toBeNull(); // the oldest did not fit in 25 bytes
    const r = a.read(1, 100, ALL)!;
    expect(r.bytes).toBe(20);
    expect(r.chunks[0]!.buffer).not.toBe(request.buffer); // the request itself is not kept alive
    const own = Buffer.alloc(30, 1);
    a.pushAppend(own, [{ at: 0, baseOffset: 3, lastOffset: 3 }]);
    expect(a.size).toBe(0); // larger than the cache: nothing kept
  });

  it("pushAppend copies small batches into a slab of the cache's own, not into Node's shared pool", () => {
    // Regression (issue 14's soak): the copy was Buffer.from, which puts anything under 4 KiB in
    // Node's shared 8 KiB pool, so each cached 100-byte batch kept a slab of mostly other,
    // short-lived buffers alive: the RSS grew several times faster than the bytes cached.
    const a = new TailCache(1 << 20, null, 0);
    const request = Buffer.alloc(20_000, 7);
    for (let i = 0; i < 150; i++) {
      Buffer.allocUnsafe(3000); // what other code takes from the pool meanwhile
      a.pushAppend(request.subarray(i * 100, i * 100 + 100), [{ at: 0, baseOffset: i, lastOffset: i }]);
    }
    const r = a.read(0, 1 << 20, ALL)!;
    expect(Buffer.concat(r.chunks)).toEqual(request.subarray(0, 15_000));
    expect(r.chunks.length).toBeLessThanOrEqual(3); // batches back to back in a slab come as one view
    const backing = new Set<ArrayBufferLike>();
    for (const c of r.chunks) {
      expect(c.buffer).not.toBe(request.buffer);
      backing.add(c.buffer);
    }
    let kept = 0;
    for (const b of backing) kept += b.byteLength;
    expect(a.size).toBe(15_000);
    expect(kept).toBeLessThanOrEqual(a.size + TAIL_CACHE_SLAB_BYTES); // what is kept alive is what is counted, but one slab
    // a batch above the small size gets memory of exactly its size
    const big = Buffer.alloc(50_000, 5).subarray(1000, 3000);
    a.pushAppend(big, [{ at: 0, baseOffset: 150, lastOffset: 150 }]);
    expect(a.read(150, 1 << 20, ALL)!.chunks[0]!.buffer.byteLength).toBe(2000);
  });

  it("pushAppend packs small batches alone in their memory into its slab too (one ArrayBuffer per slab, not per batch)", () => {
    // Issue 14's soak under Bun: offset commits and one-partition produce requests arrive as
    // small buffers of their own, which were kept as they were: an ArrayBuffer and an
    // allocation per cached batch (RSS 622 B per 100-byte batch, 375 B in a slab).
    const a = new TailCache(1 << 20, null, 0);
    const pushed: Buffer[] = [];
    for (let i = 0; i < 150; i++) {
      const own = Buffer.alloc(100, i); // exactly its size: nothing to cut away
      pushed.push(own);
      a.pushAppend(own, [{ at: 0, baseOffset: i, lastOffset: i }]);
    }
    const r = a.read(0, 1 << 20, ALL)!;
    expect(Buffer.concat(r.chunks)).toEqual(Buffer.concat(pushed));
    const backing = new Set(r.chunks.map((c) => c.buffer));
    for (const p of pushed) expect(backing.has(p.buffer)).toBe(false);
    expect(backing.size).toBeLessThanOrEqual(Math.ceil((150 * 100) / TAIL_CACHE_SLAB_BYTES) + 1); // was 150
    expect(r.chunks.length).toBe(backing.size); // back to back in a slab: one view per slab
    // a batch above the small size, alone in its memory, is still kept as it is
    const big = Buffer.alloc(2000, 3);
    a.pushAppend(big, [{ at: 0, baseOffset: 150, lastOffset: 150 }]);
    expect(a.read(150, 1 << 20, ALL)!.chunks[0]!.buffer).toBe(big.buffer);
  });

  it("charges each entry's object overhead to its capacity and to the shared budget, not its bytes alone", () => {
    // Issue 14's soak: 100-byte batches cost ~120 bytes of heap each besides their data (then a
    // Buffer view and two offsets; now five numbers in columns), so a cache counting bytes alone
    // held about twice its count.
    const budget = new TailCacheBudget(100 * (100 + TAIL_CACHE_ENTRY_BYTES));
    const a = new TailCache(1 << 20, budget);
    const batch = Buffer.alloc(100, 3);
    for (let i = 0; i < 150; i++) a.push(batch, i, i);
    expect(TAIL_CACHE_ENTRY_BYTES).toBeGreaterThanOrEqual(44); // measured: Node 44 B per entry outside the heap
    expect(a.size).toBe(100 * (100 + TAIL_CACHE_ENTRY_BYTES)); // the newest 100 entries, not 150
    expect(budget.bytesUsed).toBe(a.size);
    expect(a.read(0, 1 << 20, ALL)).toBeNull();
    expect(a.read(50, 1 << 20, ALL)!.chunks).toHaveLength(100);
    a.truncateFrom(140);
    expect(budget.bytesUsed).toBe(90 * (100 + TAIL_CACHE_ENTRY_BYTES));
    a.clear();
    expect(budget.bytesUsed).toBe(0);
    // pushAppend keeps only the batches whose bytes and entries fit
    const small = new TailCache(3 * (100 + TAIL_CACHE_ENTRY_BYTES));
    const request = Buffer.alloc(500, 1);
    small.pushAppend(
      request,
      [0, 100, 200, 300, 400].map((at, i) => ({ at, baseOffset: i, lastOffset: i })),
    );
    expect(small.size).toBe(3 * (100 + TAIL_CACHE_ENTRY_BYTES));
    expect(small.read(0, 1 << 20, ALL)).toBeNull();
    const kept = small.read(2, 1 << 20, ALL)!;
    expect(kept.bytes).toBe(300);
    expect(kept.chunks).toHaveLength(1); // three batches back to back in the request's memory: one view
  });

  it("readSize answers what read would return, without reading", () => {
    const a = new TailCache(1000, null, 0);
    a.push(slice(0), 0, 4);
    a.push(slice(5, 20), 5, 9);
    expect(a.readSize(3, 1000, ALL)).toBe(30);
    expect(a.readSize(3, 5, ALL)).toBe(10); // at least the first entry
    expect(a.readSize(6, 5, ALL)).toBe(20);
    expect(a.readSize(0, 1000, 5)).toBe(10);
    expect(a.readSize(10, 1000, ALL)).toBe(0);
  });
});
