/**
 * Broker memory by hand: starts one broker process (Bun, the default runtime, default settings
 * unless `--set key=value`), creates a topic of `--partitions` partitions, writes
 * `--mib-per-partition` MiB into each (0.9 MiB appends), then six concurrent fetches of
 * `--fetch-mib` MiB, and prints the broker's RSS (from /proc) before, at its peak and after.
 *
 *   npx tsx scripts/memory-probe.ts --partitions 2000 --mib-per-partition 4.5
 */
import * as nodeFs from "node:fs";
import { create } from "@bufbuild/protobuf";
import { CreateTopicsRequestSchema } from "../src/gen/rill/v1/admin_service_pb.ts";
import { RecordFormat } from "../src/gen/rill/v1/common_pb.ts";
import { FetchRequestSchema, type FetchResponse } from "../src/gen/rill/v1/fetch_service_pb.ts";
import { Acks, ProduceRequestSchema } from "../src/gen/rill/v1/produce_service_pb.ts";
import { Cluster } from "../test/integration/cluster-harness.ts";
import { call, clients } from "../test/integration/rpc-helpers.ts";
import { scriptCommand } from "./lib/command-line.ts";

const MiB = 1024 * 1024;
const opts = scriptCommand(import.meta.url)
  .option("--partitions <n>", "partitions", "2000")
  .option("--mib-per-partition <n>", "MiB written to each partition", "4.5")
  .option("--fetch-mib <n>", "max_bytes of each of six concurrent fetches, in MiB", "60")
  .option("--set <k=v...>", "broker settings", [])
  .option("--runtime <name>", "bun or node", "bun")
  .parse(process.argv)
  .opts<{ partitions: string; mibPerPartition: string; fetchMib: string; set: string[]; runtime: "bun" | "node" }>();

const rssOf = (pid: number): number => Number(/^VmRSS:\s+(\d+) kB$/m.exec(nodeFs.readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024;
const mib = (n: number): string => `${(n / MiB).toFixed(0)} MiB`;

/** The broker's JavaScript heap from its metrics, when `metrics.port` is set. */
async function heap(): Promise<string> {
  const port = set["metrics.port"];
  if (!port) return "";
  const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return ` (JS heap ${mib(Number(/^rill_process_heap_bytes (\d+)/m.exec(body)?.[1]))})`;
}

const set = Object.fromEntries(opts.set.map((kv) => kv.split("=", 2) as [string, string]));
const cluster = await Cluster.start({ nodes: 1, name: "rill-memory-probe-", set, runtime: opts.runtime });
const node = cluster.nodes[0]!;
const pid = node.pid!;
let peak = 0;
const sampler = setInterval(() => (peak = Math.max(peak, rssOf(pid))), 50);
const c = clients(node.address);
try {
  await cluster.waitForStable(30_000);
  const partitions = Number(opts.partitions);
  await call(c.admin, "createTopics", create(CreateTopicsRequestSchema, { topics: [{ name: "probe", partitions }] }), 120_000);
  const idle = rssOf(pid);
  peak = idle;
  const appends = Math.round(Number(opts.mibPerPartition) / 0.9);
  const value = Buffer.alloc(0.9 * MiB, 5);
  const started = Date.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < partitions * appends) {
        const i = next++;
        const req = create(ProduceRequestSchema, { topic: "probe", partition: i % partitions, acks: Acks.LEADER, records: [{ value }] });
        await call(c.produce, "produce", req, 60_000);
      }
    }),
  );
  const written = rssOf(pid);
  const writePeak = peak;
  await new Promise((r) => setTimeout(r, 10_000));
  console.log(
    `${partitions} partitions x ${opts.mibPerPartition} MiB in ${((Date.now() - started) / 1000 - 10).toFixed(0)} s: RSS idle ${mib(idle)}, peak ${mib(writePeak)}, after ${mib(written)}, 10 s later ${mib(rssOf(pid))}${await heap()}`,
  );
  const maxBytes = Number(opts.fetchMib) * MiB;
  const before = rssOf(pid);
  peak = before;
  const fetches = await Promise.all(
    Array.from({ length: 6 }, (_, k) =>
      call<unknown, FetchResponse>(
        c.fetch,
        "fetch",
        create(FetchRequestSchema, {
          partitions: [{ topic: "probe", partition: k, offset: 0n, maxBytes }],
          maxBytes,
          format: RecordFormat.BATCHES,
        }),
        60_000,
      ),
    ),
  );
  const got = fetches.map((f) => f.partitions[0]!.recordBatches.length);
  console.log(
    `six ${opts.fetchMib} MiB fetches: got ${got.map(mib).join(", ")}; RSS ${mib(before)} -> peak ${mib(peak)}; RSS now ${mib(rssOf(pid))}`,
  );
} finally {
  clearInterval(sampler);
  c.close();
  await cluster.close();
}
