/**
 * The soak's RECORDS bursts in two minutes (issue 14): one Bun broker, topic `soak` (6 partitions)
 * filled with N records as the soak writes them (key `k<n % 97>`, value `p<id>-<n>`, one record
 * per request from 24 producers, so the batches are small), then the soak's cancelled RECORDS
 * reads from offset 0 — Subscribe of partition 1, and raw Consume of the topic with EARLIEST for
 * a group that never commits — from two loops, each call cancelled 0–800 ms after it starts,
 * for S seconds. Prints the broker's RSS (sampled every 100 ms) and JavaScript heap
 * (`rill_process_heap_bytes`, every 250 ms): what the 60-minute soak's late peaks were made of,
 * reproduced without the hour.
 *
 *   N=600000 S=75 npx tsx test/soak/records-probe.ts      [SET='{"key": value}' broker settings]
 *
 * With GROUP=1 it instead runs, for S seconds, the soak's SDK group: 1–3 GroupConsumer members of
 * `probe-g` (earliest), one joining or leaving every 4–10 s, while 200 records/s are produced,
 * and prints the RSS peaks (sampled every 50 ms) with the joins and leaves before them.
 *
 * With RESTARTS=k it then restarts the broker k times instead (kill -9 and SIGTERM in turn), and
 * prints each start's RSS peak (sampled every 20 ms from the new process's first sample until
 * it logs "broker started", and 2 s after) and how long it took: what recovery and the
 * producer-state replay of a filled log cost.
 *
 * A measurement, not a test: it checks nothing and exits 0.
 */
import * as fs from "node:fs";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { Admin, GroupConsumer, Producer } from "../../src/client/index.ts";
import { RecordFormat } from "../../src/gen/rill/v1/common_pb.ts";
import { FetchService, SubscribeRequestSchema } from "../../src/gen/rill/v1/fetch_service_pb.ts";
import { AutoOffsetReset, ConsumeRequestSchema, GroupService } from "../../src/gen/rill/v1/group_service_pb.ts";
import { clientChannelOptions } from "../../src/protocol/channel-options.ts";
import { clientConstructor } from "../../src/protocol/grpc-service.ts";
import { Cluster } from "../integration/cluster-harness.ts";

const RECORDS = Number(process.env.N ?? 300_000);
const SECONDS = Number(process.env.S ?? 90);
const FetchClient = clientConstructor(FetchService);
const GroupClient = clientConstructor(GroupService);
const rss = (pid: number): number => {
  const s = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(s)![1]) / 1024;
};
let seedState = 1414;
const rnd = (a: number, b: number): number => {
  seedState = (seedState * 1103515245 + 12345) % 2 ** 31;
  return a + (seedState % (b - a + 1));
};

const metricsPort = 19000 + Math.floor(Math.random() * 1000);
const cluster = await Cluster.start({
  nodes: 1,
  runtime: "bun",
  name: "rill-records-probe-",
  set: { ...JSON.parse(process.env.SET ?? "{}"), "metrics.port": metricsPort },
});
const heaps: number[] = [];
const heapTimer = setInterval(() => {
  fetch(`http://127.0.0.1:${metricsPort}/metrics`)
    .then((r) => r.text())
    .then((t) => {
      const m = /^rill_process_heap_bytes(?:\{[^}]*\})? (\S+)/m.exec(t);
      if (m) heaps.push(Number(m[1]) / 2 ** 20);
    })
    .catch(() => {});
}, 250);
try {
  await cluster.waitForStable(30_000);
  const node = cluster.nodes[0]!;
  const admin = new Admin({ bootstrap: node.address });
  await admin.createTopics([{ name: "soak", partitions: 6, replicationFactor: 1 }]);
  const p = new Producer({ bootstrap: node.address, lingerMs: 0 });
  let seq = 0;
  const t0 = Date.now();
  await Promise.all(
    Array.from({ length: 24 }, async (_, id) => {
      while (seq < RECORDS) {
        const v = `p${id}-${seq++}`;
        await p.send({ topic: "soak", key: `k${seq % 97}`, value: v });
      }
    }),
  );
  await p.close();
  console.log(`filled ${RECORDS} records in ${((Date.now() - t0) / 1000).toFixed(1)} s; broker RSS ${rss(node.pid!).toFixed(0)} MiB`);
  const restarts = Number(process.env.RESTARTS ?? 0);
  for (let i = 0; i < restarts; i++) {
    const kill9 = i % 2 === 0;
    let peak = 0;
    let stop = false;
    const sample = async (): Promise<void> => {
      while (!stop) {
        try {
          if (node.pid !== undefined) peak = Math.max(peak, rss(node.pid));
        } catch {
          // between processes
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    if (kill9) await node.kill();
    else await node.terminate();
    const sampling = sample();
    const s0 = Date.now();
    await node.start();
    const startMs = Date.now() - s0;
    const atStart = peak;
    await new Promise((r) => setTimeout(r, 2000));
    stop = true;
    await sampling;
    console.log(
      `RESTART ${i + 1} (${kill9 ? "kill -9" : "SIGTERM"}): serving after ${startMs} ms, RSS peak ${atStart.toFixed(0)} MiB until then, ${peak.toFixed(0)} MiB within 2 s after; now ${rss(node.pid!).toFixed(0)}`,
    );
  }
  if (restarts > 0) {
    clearInterval(heapTimer);
    await admin.close();
  } else if (process.env.GROUP === "1") {
    await groupChurn(node.pid!, node.address);
    clearInterval(heapTimer);
    await admin.close();
    heaps.sort((a, b) => a - b);
    console.log(
      `HEAP MiB samples ${heaps.length}: median ${heaps[heaps.length >> 1]?.toFixed(0)} max ${heaps[heaps.length - 1]?.toFixed(0)}`,
    );
  } else await readBursts(node.pid!, admin);
} finally {
  await cluster.close();
}

/** The soak's SDK group churn for SECONDS beside 200 records/s; RSS peaks and the group's changes before them. */
async function groupChurn(pid: number, address: string): Promise<void> {
  const t0 = Date.now();
  const events: Array<[number, string]> = [];
  const samples: Array<[number, number]> = [];
  const sampler = setInterval(() => samples.push([Date.now() - t0, rss(pid)]), 50);
  const end = t0 + SECONDS * 1000;
  let consumed = 0;
  const p = new Producer({ bootstrap: address, lingerMs: 0 });
  const producing = (async () => {
    let n = 0;
    while (Date.now() < end) {
      await new Promise((r) => setTimeout(r, 5));
      void p.send({ topic: "soak", key: `k${n % 97}`, value: `g-${n++}` }).catch(() => {});
    }
  })();
  const members: Array<{ c: GroupConsumer; done: Promise<void> }> = [];
  const join = (): void => {
    const c = new GroupConsumer({ bootstrap: address, groupId: "probe-g", autoOffsetReset: "earliest", sessionTimeoutMs: 10_000 });
    c.subscribe(["soak"]);
    const done = (async () => {
      try {
        for await (const _r of c) consumed++;
      } catch {
        // closed
      }
    })();
    members.push({ c, done });
    events.push([Date.now() - t0, `join (${members.length})`]);
  };
  join();
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, rnd(4000, 10_000)));
    const leave = members.length >= 3 || (members.length > 1 && rnd(0, 1) === 0);
    if (!leave) {
      join();
      continue;
    }
    const m = members.splice(rnd(0, members.length - 1), 1)[0]!;
    await m.c.close().catch(() => {});
    await m.done;
    events.push([Date.now() - t0, `leave (${members.length})`]);
  }
  await producing;
  for (const m of members) {
    await m.c.close().catch(() => {});
    await m.done;
  }
  await p.close();
  clearInterval(sampler);
  const byRss = [...samples].sort((a, b) => b[1] - a[1]);
  const sorted = samples.map((x) => x[1]).sort((a, b) => a - b);
  console.log(
    `RESULT group churn: consumed ${consumed}; RSS MiB median ${sorted[sorted.length >> 1]!.toFixed(0)} p99 ${sorted[Math.floor(sorted.length * 0.99)]!.toFixed(0)} max ${sorted[sorted.length - 1]!.toFixed(0)}`,
  );
  for (const [t, r] of byRss.slice(0, 5)) {
    const before = events.filter(([e]) => e <= t && e > t - 10_000).map(([e, what]) => `${what} ${((t - e) / 1000).toFixed(1)} s before`);
    console.log(`  peak ${r.toFixed(0)} MiB at ${(t / 1000).toFixed(1)} s: ${before.join(", ") || "no change in the 10 s before"}`);
  }
}

/** The cancelled RECORDS reads from two loops for SECONDS, with RSS and heap printed. */
async function readBursts(pid: number, admin: Admin): Promise<void> {
  const node = { pid, address: cluster.nodes[0]!.address };
  const creds = grpc.credentials.createInsecure();
  const fc = new FetchClient(node.address, creds, clientChannelOptions());
  const gc = new GroupClient(node.address, creds, clientChannelOptions());
  const samples: number[] = [];
  const sampler = setInterval(() => samples.push(rss(node.pid!)), 100);
  const end = Date.now() + SECONDS * 1000;
  let calls = 0;
  let data = 0;
  const loop = async (id: number): Promise<void> => {
    while (Date.now() < end) {
      await new Promise((r) => setTimeout(r, rnd(100, 600)));
      const kind = rnd(0, 1) === 0 ? "subscribe" : "consume";
      const afterMs = rnd(0, 800);
      await new Promise<void>((resolve) => {
        const opts = { deadline: Date.now() + 30_000 };
        const call: grpc.ClientReadableStream<unknown> | grpc.ClientDuplexStream<unknown, unknown> =
          kind === "subscribe"
            ? fc.subscribe(
                create(SubscribeRequestSchema, { partitions: [{ topic: "soak", partition: 1, offset: 0n }], format: RecordFormat.RECORDS }),
                new grpc.Metadata(),
                opts,
              )
            : gc.consume(new grpc.Metadata(), opts);
        if (kind === "consume")
          (call as grpc.ClientDuplexStream<unknown, unknown>).write(
            create(ConsumeRequestSchema, {
              kind: {
                case: "subscribe",
                value: { groupId: `raw-${id}`, topics: ["soak"], autoOffsetReset: AutoOffsetReset.EARLIEST, sessionTimeoutMs: 6000 },
              },
            }),
          );
        call.on("data", () => void data++);
        call.on("error", () => resolve());
        call.on("status", () => resolve());
        setTimeout(() => call.cancel(), afterMs);
      });
      calls++;
    }
  };
  await Promise.all([loop(0), loop(1)]);
  clearInterval(sampler);
  fc.close();
  gc.close();
  await admin.close();
  clearInterval(heapTimer);
  heaps.sort((a, b) => a - b);
  console.log(
    `HEAP MiB samples ${heaps.length}: median ${heaps[heaps.length >> 1]?.toFixed(0)} max ${heaps[heaps.length - 1]?.toFixed(0)}`,
  );
  samples.sort((a, b) => a - b);
  const q = (x: number): number => samples[Math.min(samples.length - 1, Math.floor(x * samples.length))]!;
  console.log(
    `RESULT calls ${calls} messages ${data} RSS MiB: median ${q(0.5).toFixed(0)} p90 ${q(0.9).toFixed(0)} p99 ${q(0.99).toFixed(0)} max ${samples[samples.length - 1]!.toFixed(0)}`,
  );
}
