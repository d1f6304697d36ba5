/**
 * Child process of metrics.test.ts: serves the broker's metrics (with no partitions) under
 * whatever runtime runs this file, scrapes them once, and prints the process gauges as one JSON
 * line: {"runtime", "heap", "rss"}.
 */
import { startMetrics } from "../../src/broker/metrics.ts";
import type { LogManager } from "../../src/storage/log-manager.ts";

const runtime = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";
// Some live objects, so the engine's heap is not empty.
const keep = Array.from({ length: 100_000 }, (_, i) => ({ i, s: `record-${i}` }));
const server = await startMetrics(0, { all: () => [] } as unknown as LogManager);
const body = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
await server.close();
const gauge = (name: string): number => Number(new RegExp(`^${name} (\\d+(?:\\.\\d+)?(?:e\\+\\d+)?)$`, "m").exec(body)?.[1] ?? Number.NaN);
console.log(
  JSON.stringify({ runtime, heap: gauge("rill_process_heap_bytes"), rss: gauge("rill_process_resident_memory_bytes"), kept: keep.length }),
);
