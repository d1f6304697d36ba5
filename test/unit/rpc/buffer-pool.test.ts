import { describe, expect, it } from "vitest";
import { BUFFER_POOL_BYTES_MIN, BufferPool } from "../../../src/rpc/buffer-pool.ts";

describe("BufferPool", () => {
  it("hands out power-of-two buffers and reuses the ones given back", () => {
    const pool = new BufferPool(1 << 20);
    const a = pool.take(100_000);
    expect(a.length).toBe(131_072);
    expect(pool.take(1).length).toBe(BUFFER_POOL_BYTES_MIN);
    pool.give(a);
    expect(pool.bytes).toBe(131_072);
    const b = pool.take(131_072);
    expect(b).toBe(a);
    expect(pool.bytes).toBe(0);
    expect(pool.take(100_000)).not.toBe(a); // nothing idle of that size any more
    expect(pool.stats).toMatchObject({ taken: 4, reused: 1, given: 1 });
  });

  it("keeps at most bytesMax of idle buffers and refuses what it did not hand out", () => {
    const pool = new BufferPool(256 * 1024);
    const bufs = [pool.take(128 * 1024), pool.take(128 * 1024), pool.take(128 * 1024)];
    bufs.forEach((b) => pool.give(b));
    expect(pool.bytes).toBe(256 * 1024);
    pool.give(Buffer.alloc(100_000)); // not a pool size
    pool.give(Buffer.alloc(2 * BUFFER_POOL_BYTES_MIN).subarray(BUFFER_POOL_BYTES_MIN)); // a view
    expect(pool.stats.dropped).toBe(3);
    pool.clear();
    expect(pool.bytes).toBe(0);
  });
});
