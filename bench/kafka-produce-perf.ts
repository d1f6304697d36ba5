/**
 * Produce throughput over the Kafka listener ÷ over gRPC, against one broker it starts (with both
 * listeners) or the one `--broker`/`--kafka-broker` name: producer-perf's run with
 * `--protocol grpc` and with `--protocol kafka`, the same batches (100 B records by default,
 * `--compression`, `--batch-records` per request, `--in-flight` pipelined, `--acks`), each into
 * a fresh topic, interleaved `--runs` times; prints each run and the medians, and the ratio.
 *
 *   bun bench/kafka-produce-perf.ts [--records 2000000] [--record-size 100] [--batch-records 1000]
 *     [--compression none|lz4] [--acks leader|all|none] [--in-flight 8] [--producers 1] [--runs 3]
 *     [--broker-runtime bun|node|deno] [--json FILE]
 *
 * Optional rows (`--clients kafkajs,librdkafka,platformatic`): the same record count of the same
 * record size sent by kafkajs (npm, under Node), librdkafka (confluent-kafka, Debian's
 * /usr/bin/python3) and @platformatic/kafka (npm, under Bun: it needs Node >= 22.19) to the same
 * broker, each its own process, with their own batching (librdkafka: linger 5 ms, batch 1 MiB,
 * the same codec; kafkajs: 1000 records per send, 8 sends in flight, uncompressed — it has no LZ4
 * without a plugin; @platformatic/kafka: 1000 records per send, 8 sends in flight, the same
 * codec) and the same acks. `--client-records N` gives them a smaller count than `--records`.
 * Each times itself after the topic exists (librdkafka: list_topics first; kafkajs and
 * @platformatic/kafka: one record sent untimed first), so process start and auto-creation are
 * not counted.
 */
import { spawn } from "node:child_process";
import * as nodeFs from "node:fs";
import * as path from "node:path";
import { isMain, loadAverage, median, parseArgs } from "./lib.ts";
import { freePort } from "./lib.ts";
import { producerPerfDefaults, runProducerPerf, startBrokerProcess } from "./producer-perf.ts";
import { runtimeName } from "./runtime.ts";

const defaults = {
  records: 2_000_000,
  recordSize: 100,
  batchRecords: 1000,
  compression: "lz4" as "none" | "lz4",
  acks: "leader" as "leader" | "all" | "none",
  inFlight: 8,
  producers: 1,
  runs: 3,
  brokerRuntime: "bun" as "bun" | "node" | "deno",
  /** Real clients to add rows for: kafkajs, librdkafka, platformatic (comma-separated); empty: none. */
  clients: "",
  /** Records each real client sends (0: `--records`). */
  clientRecords: 0,
  json: "",
};
type Options = typeof defaults;

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");

/** Runs a client row's process; resolves with records/s from its JSON line. */
function clientRun(cmd: string, args: string[], timeoutMs: number): Promise<{ recordsPerSec: number; seconds: number }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const t = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
    p.once("exit", (code) => {
      clearTimeout(t);
      const line = out.trim().split("\n").pop() ?? "";
      try {
        const r = JSON.parse(line) as { recordsPerSec: number; seconds: number; error?: string };
        if (code !== 0 || r.error) reject(new Error(r.error ?? `exit ${code}`));
        else resolve(r);
      } catch {
        reject(new Error(`${cmd}: exit ${code}: ${line}`));
      }
    });
  });
}

const LIBRDKAFKA = `
import json, sys, time
from confluent_kafka import Producer
addr, topic, n, size, codec, acks = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
p = Producer({"bootstrap.servers": addr, "compression.codec": codec, "acks": acks, "linger.ms": 5,
              "batch.size": 1048576, "queue.buffering.max.messages": 1000000, "queue.buffering.max.kbytes": 1048576})
value = (b'{"user":1,"event":"click","seq":0}' + b"." * size)[:size]
errors = []
def cb(err, msg):
    if err is not None: errors.append(str(err))
p.list_topics(topic)  # auto-creates it
t0 = time.time()
for i in range(n):
    while True:
        try:
            p.produce(topic, value, on_delivery=cb); break
        except BufferError:
            p.poll(0.01)
    if i % 10000 == 0: p.poll(0)
p.flush(120)
secs = time.time() - t0
print(json.dumps({"recordsPerSec": n / secs, "seconds": secs, "error": errors[0] if errors else None}))
`;

const KAFKAJS = `
import kafkajs from "kafkajs";
const [addr, topic, n, size, , acks] = process.argv.slice(1); // node -e: no script path
const { Kafka, logLevel, CompressionTypes } = kafkajs;
const k = new Kafka({ brokers: [addr], clientId: "bench", logLevel: logLevel.NOTHING });
const p = k.producer({ allowAutoTopicCreation: true });
await p.connect();
const value = Buffer.from('{"user":1,"event":"click","seq":0}'.padEnd(Number(size), ".").slice(0, Number(size)));
const batch = 1000;
await p.send({ topic, acks: Number(acks), messages: [{ value }] }); // metadata and auto-creation, not timed
const t0 = performance.now();
const inflight = [];
for (let i = 0; i < Number(n); i += batch) {
  inflight.push(p.send({ topic, acks: Number(acks), compression: CompressionTypes.None, // kafkajs has no LZ4 without a plugin
    messages: Array.from({ length: Math.min(batch, Number(n) - i) }, () => ({ value })) }));
  if (inflight.length >= 8) await inflight.shift();
}
await Promise.all(inflight);
const secs = (performance.now() - t0) / 1000;
await p.disconnect();
console.log(JSON.stringify({ recordsPerSec: Number(n) / secs, seconds: secs }));
`;

const PLATFORMATIC = `
import { Producer } from "@platformatic/kafka";
const [addr, topic, n, size, codec, acks] = process.argv.slice(1); // bun -e: no script path
const p = new Producer({ clientId: "bench", bootstrapBrokers: [addr], autocreateTopics: true, acks: Number(acks),
  compression: codec === "none" ? undefined : codec });
const value = Buffer.from('{"user":1,"event":"click","seq":0}'.padEnd(Number(size), ".").slice(0, Number(size)));
const batch = 1000;
await p.send({ messages: [{ topic, value }] }); // metadata and auto-creation, not timed
const t0 = performance.now();
const inflight = [];
for (let i = 0; i < Number(n); i += batch) {
  inflight.push(p.send({ messages: Array.from({ length: Math.min(batch, Number(n) - i) }, () => ({ topic, value })) }));
  if (inflight.length >= 8) await inflight.shift();
}
await Promise.all(inflight);
const secs = (performance.now() - t0) / 1000;
await p.close();
console.log(JSON.stringify({ recordsPerSec: Number(n) / secs, seconds: secs }));
`;

const BUN = path.join(root, "node_modules/.bin/bun");

async function main(): Promise<void> {
  const o: Options = parseArgs(process.argv.slice(2), defaults, import.meta.url);
  const kafkaPort = await freePort();
  const broker = await startBrokerProcess(o.brokerRuntime, { args: ["--set", `kafka.listen=127.0.0.1:${kafkaPort}`] });
  const kafkaAddress = `127.0.0.1:${kafkaPort}`;
  const rows: Record<string, Record<string, unknown>[]> = { grpc: [], kafka: [], kafkajs: [], librdkafka: [], platformatic: [] };
  const clients = o.clients.split(",").filter((c) => c !== "");
  for (const c of clients) if (!(c in rows) || c === "grpc" || c === "kafka") throw new Error(`--clients: unknown client "${c}"`);
  const clientRecords = o.clientRecords > 0 ? o.clientRecords : o.records;
  try {
    for (let run = 1; run <= o.runs; run++) {
      for (const protocol of ["grpc", "kafka"] as const) {
        process.stderr.write(`run ${run}/${o.runs}: ${protocol}\n`);
        const r = await runProducerPerf({
          ...producerPerfDefaults,
          records: o.records,
          recordSize: o.recordSize,
          batchRecords: o.batchRecords,
          compression: o.compression,
          acks: o.acks,
          inFlight: o.inFlight,
          producers: o.producers,
          protocol,
          brokers: protocol === "kafka" ? kafkaAddress : broker.address,
        });
        rows[protocol]!.push(r);
        process.stderr.write(`  ${((r["recordsPerSec"] as number) / 1e6).toFixed(2)}M records/s\n`);
      }
      const acks = o.acks === "all" ? "-1" : o.acks === "none" ? "0" : "1";
      const codec = o.compression;
      for (const c of clients) {
        const topic = `perf-${c}-${Date.now()}`;
        const args = [kafkaAddress, topic, String(clientRecords), String(o.recordSize), codec, acks];
        process.stderr.write(`run ${run}/${o.runs}: ${c}\n`);
        const r =
          c === "librdkafka"
            ? await clientRun("/usr/bin/python3", ["-c", LIBRDKAFKA, ...args], 300_000)
            : c === "platformatic"
              ? await clientRun(BUN, ["-e", PLATFORMATIC, ...args], 300_000)
              : await clientRun("node", ["--input-type=module", "-e", KAFKAJS, ...args], 300_000);
        rows[c]!.push(r);
        process.stderr.write(`  ${(r.recordsPerSec / 1e6).toFixed(2)}M records/s\n`);
      }
    }
  } finally {
    await broker.stop();
  }
  const med = (rs: Record<string, unknown>[], k: string): number => median(rs.map((r) => r[k] as number));
  const grpc = med(rows["grpc"]!, "recordsPerSec");
  const kafka = med(rows["kafka"]!, "recordsPerSec");
  const result = {
    tool: "kafka-produce-perf",
    runtime: runtimeName(),
    ...o,
    grpcRecordsPerSec: grpc,
    kafkaRecordsPerSec: kafka,
    kafkaOverGrpc: kafka / grpc,
    clients: Object.fromEntries(clients.map((c) => [c, med(rows[c]!, "recordsPerSec")])),
    clientRecords,
    runs: rows,
    loadAverage: loadAverage(),
  };
  console.log(
    `produce ${o.recordSize} B ${o.compression}, acks=${o.acks}, ${o.records} records, median of ${o.runs}: ` +
      `gRPC ${(grpc / 1e6).toFixed(2)}M records/s, Kafka ${(kafka / 1e6).toFixed(2)}M records/s, Kafka ÷ gRPC ${(kafka / grpc).toFixed(2)}` +
      clients.map((c) => `; ${c} ${((result.clients[c] as number) / 1e6).toFixed(2)}M records/s`).join("") +
      `; load average ${result.loadAverage.join(", ")}`,
  );
  if (o.json) nodeFs.writeFileSync(o.json, `${JSON.stringify(result, null, 2)}\n`);
}

if (isMain(import.meta.url, "kafka-produce-perf.ts")) await main();
