import { execFile } from "node:child_process";
import * as path from "node:path";
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { MemoryBudget } from "../../src/base/memory-budget.ts";
import { systemTimers } from "../../src/base/timers.ts";
import { Broker } from "../../src/broker/broker.ts";
import { startMetrics } from "../../src/broker/metrics.ts";
import type { LogManager } from "../../src/storage/log-manager.ts";
import { CreateTopicsRequestSchema } from "../../src/gen/rill/v1/admin_service_pb.ts";
import { ProduceRequestSchema } from "../../src/gen/rill/v1/produce_service_pb.ts";
import { call, clients, rmTmp, tmpDir } from "./rpc-helpers.ts";

describe("Prometheus metrics", () => {
  it("serves per-partition log metrics and process metrics on metrics.port", async () => {
    const dir = tmpDir();
    const b = await Broker.start({ dataDir: dir, listen: "127.0.0.1:0", config: { metricsPort: 0 } });
    const c = clients(b.address);
    try {
      await call(c.admin, "createTopics", create(CreateTopicsRequestSchema, { topics: [{ name: "m", partitions: 2 }] }));
      await call(
        c.produce,
        "produce",
        create(ProduceRequestSchema, { topic: "m", partition: 1, records: [{ value: Buffer.from("a") }, { value: Buffer.from("b") }] }),
      );
      const res = await fetch(`http://127.0.0.1:${b.metrics!.port}/metrics`);
      expect(res.status).toBe(200);
      const body = await res.text();
      expect(body).toMatch(/rill_log_end_offset\{topic="m",partition="1"\} 2/);
      expect(body).toMatch(/rill_log_end_offset\{topic="m",partition="0"\} 0/);
      expect(body).toMatch(/rill_log_appends_total\{topic="m",partition="1"\} 1/);
      expect(body).toMatch(/rill_process_resident_memory_bytes \d+/);
      const heap = Number(/^rill_process_heap_bytes (\d+)$/m.exec(body)?.[1]);
      const rss = Number(/^rill_process_resident_memory_bytes (\d+)$/m.exec(body)?.[1]);
      expect(heap).toBeGreaterThan(0);
      expect(heap).toBeLessThan(rss);
      expect((await fetch(`http://127.0.0.1:${b.metrics!.port}/nope`)).status).toBe(404);
    } finally {
      c.close();
      await b.close();
      rmTmp(dir);
    }
  });

  it("serves the memory budgets by pool: fetch and tail_cache, used bytes moving with what is held, and capacity", async () => {
    const dir = tmpDir();
    const b = await Broker.start({
      dataDir: dir,
      listen: "127.0.0.1:0",
      config: { metricsPort: 0, fetchMemoryBytesMax: 2 * 1024 * 1024, tailCacheTotalBytes: 8 * 1024 * 1024 },
    });
    const c = clients(b.address);
    const scrape = async (): Promise<Record<string, number>> => {
      const body = await (await fetch(`http://127.0.0.1:${b.metrics!.port}/metrics`)).text();
      const out: Record<string, number> = {};
      for (const m of body.matchAll(/^(rill_memory_budget_(?:used_)?bytes)\{pool="(\w+)"\} (\d+)$/gm))
        out[`${m[1]}/${m[2]}`] = Number(m[3]);
      return out;
    };
    try {
      const before = await scrape();
      expect(before["rill_memory_budget_bytes/fetch"]).toBe(2 * 1024 * 1024);
      expect(before["rill_memory_budget_bytes/tail_cache"]).toBe(8 * 1024 * 1024);
      expect(before["rill_memory_budget_used_bytes/fetch"]).toBe(0);
      await call(c.admin, "createTopics", create(CreateTopicsRequestSchema, { topics: [{ name: "mb", partitions: 1 }] }));
      await call(
        c.produce,
        "produce",
        create(ProduceRequestSchema, { topic: "mb", partition: 0, records: [{ value: Buffer.alloc(300_000) }] }),
      );
      const after = await scrape();
      expect(after["rill_memory_budget_used_bytes/tail_cache"]).toBeGreaterThanOrEqual(
        (before["rill_memory_budget_used_bytes/tail_cache"] ?? 0) + 300_000,
      );
    } finally {
      c.close();
      await b.close();
      rmTmp(dir);
    }
  });

  it('rill_memory_budget_used_bytes{pool="fetch"} reports what the fetch budget holds at scrape time', async () => {
    const budget = new MemoryBudget(1024 * 1024, systemTimers);
    const server = await startMetrics(0, { all: () => [] } as unknown as LogManager, null, undefined, budget);
    const used = async (): Promise<number> => {
      const body = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
      return Number(/^rill_memory_budget_used_bytes\{pool="fetch"\} (\d+)$/m.exec(body)?.[1]);
    };
    try {
      expect(await used()).toBe(0);
      const r = budget.tryReserve(300_000)!;
      expect(await used()).toBe(300_000);
      r.shrink(1000);
      expect(await used()).toBe(1000);
      r.release();
      expect(await used()).toBe(0);
    } finally {
      await server.close();
    }
  });

  it("is off by default (metrics.port -1)", async () => {
    const dir = tmpDir();
    const b = await Broker.start({ dataDir: dir, listen: "127.0.0.1:0" });
    expect(b.metrics).toBeNull();
    await b.close();
    rmTmp(dir);
  });
});

const ROOT = path.resolve(".");
const RUNTIMES: Record<string, string[]> = {
  bun: [path.join(ROOT, "node_modules/.bin/bun")],
  node: [process.execPath, "--import", "tsx"],
  deno: [path.join(ROOT, "node_modules/.bin/deno"), "run", "-A"],
};

describe("process heap gauge", () => {
  // prom-client's own rill_process_heap_bytes was VmData: ~6.4 GB under Bun for a 64 MB process,
  // and above the resident size under Node too.
  it.each(Object.keys(RUNTIMES))(
    "under %s, rill_process_heap_bytes is the engine's heap: above 0, below the resident size",
    async (runtime) => {
      const [cmd, ...args] = RUNTIMES[runtime]!;
      const out = await new Promise<string>((resolve, reject) =>
        execFile(cmd!, [...args, "test/integration/metrics-proc.ts"], { cwd: ROOT, timeout: 60_000 }, (e, stdout, stderr) =>
          e ? reject(new Error(`${runtime}: ${e.message}\n${stderr}`)) : resolve(stdout),
        ),
      );
      const r = JSON.parse(out.trim().split("\n").pop()!) as { runtime: string; heap: number; rss: number };
      expect(r.runtime).toBe(runtime);
      expect(r.heap).toBeGreaterThan(1 << 20);
      expect(r.heap).toBeLessThan(r.rss);
    },
  );
});
