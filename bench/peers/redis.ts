/**
 * Redis Streams (Debian redis-server 7.0): XADD of `--records` records of `--record-size` bytes,
 * pipelined with ioredis (1,000 commands per pipeline, 4 pipelines in flight), each reply
 * awaited. Durability: AOF with `appendfsync everysec` — acknowledged before fsync (up to ~1 s
 * of writes can be lost on a crash), RDB snapshots off.
 *
 *   bun bench/peers/redis.ts [--records 1000000] [--record-size 100] [--runs 3] [--json FILE]
 */
import { Redis } from "ioredis";
import { freePort, freshDir, peerMain, startServer, value, waitForPort } from "./_common.ts";

const PIPELINE = 1000;
const IN_FLIGHT = 4;

await peerMain(
  import.meta.url,
  {
    peer: "Redis Streams",
    server: "redis-server 7.0",
    mode: "XADD, ioredis pipelines of 1,000 (4 in flight)",
    durability: "AOF appendfsync everysec (ack before fsync)",
    bin: "redis-server",
  },
  async (o, measure) => {
    const port = await freePort();
    const dir = freshDir("redis");
    const server = startServer(
      "redis-server",
      [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--save",
        "",
        "--dir",
        dir,
        "--protected-mode",
        "no",
      ],
      dir,
    );
    let client: Redis | null = null;
    try {
      await waitForPort(port, 15_000);
      client = new Redis({ host: "127.0.0.1", port, lazyConnect: false, enableAutoPipelining: false });
      const values = Array.from({ length: PIPELINE }, (_, i) => value(i, o.recordSize));
      const c = client;
      return await measure(server.pid, async () => {
        let sent = 0;
        const worker = async (): Promise<void> => {
          while (sent < o.records) {
            const n = Math.min(PIPELINE, o.records - sent);
            sent += n;
            const p = c.pipeline();
            for (let i = 0; i < n; i++) p.xadd("bench", "*", "v", values[i]!);
            const res = await p.exec();
            const failed = res?.find(([e]) => e);
            if (failed) throw failed[0];
          }
        };
        await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
        const len = await c.xlen("bench");
        if (len !== o.records) throw new Error(`XLEN ${len}, expected ${o.records}`);
        return o.records;
      });
    } finally {
      client?.disconnect();
      await server.stop();
    }
  },
);
