/**
 * Consume throughput over the Kafka listener ÷ over gRPC, the same partition of the same broker:
 * pre-produces `--records` records into a fresh topic (not timed), then reads them all back
 * `--runs` times each way, the two interleaved, and reports each run and the medians.
 *
 *   bun bench/kafka-consume-perf.ts [--records 2000000] [--record-size 100] [--batch-records 1000]
 *     [--compression none|lz4] [--partitions 1] [--partition-max-bytes 4194304] [--max-bytes 16777216]
 *     [--fetch-version 12] [--modes grpc,kafka,sdk,kcat,kafkajs,platformatic] [--client-records 0] [--runs 3] [--broker-runtime bun|node|deno] [--json FILE]
 *
 * gRPC: consumer-perf's pipelined FetchService.Fetch in BATCHES format (one fetch in flight
 * while the client decodes). Kafka: the same loop over Kafka's Fetch (`--fetch-version`, v12
 * by default: flexible, topic names) on one socket: the next fetch goes out as soon as the last
 * batch of each partition is known from the batch headers (what a Kafka client does: the
 * answer has no next offset), then the records are decoded. Both decode every record lazily to
 * its offset after a CRC32C check of each batch, and check that offsets run without gaps; the
 * same `max_bytes`, partition max bytes and `max_wait_ms` (500).
 *
 * Beside them: `sdk`, Rill's SDK Consumer over gRPC (records decoded into objects, as an
 * application gets them), and `kcat`, librdkafka's consumer over the Kafka listener (`kcat -C
 * -e -o 0` printing each offset to a pipe this tool counts lines from), both reading the same
 * records from offset 0. `kafkajs` (npm, under Node: a group consumer, `eachBatch`, from the
 * beginning) and `platformatic` (@platformatic/kafka, npm, under Bun: a group consumer from
 * offset 0 of each partition, records as Buffers) run in their own process each and time
 * themselves from their subscribe call (after connecting) to the last record, so their process
 * start is not counted (the broker runs with `group.initial.rebalance.delay.ms=0`); both ask for
 * the same `max_bytes` and partition max bytes. The real clients read `--client-records`
 * records (0: all of them) from offset 0.
 */
import { spawn } from "node:child_process";
import * as net from "node:net";
import * as nodeFs from "node:fs";
import * as path from "node:path";
import { Consumer } from "../src/client/consumer.ts";
import { FetchService } from "../src/gen/rill/v1/fetch_service_pb.ts";
import { clientConstructor } from "../src/protocol/grpc-service.ts";
import { fetchClientCodecs } from "../src/client/wire-codec.ts";
import { FetchRequest, FetchResponse } from "../src/kafka/apis/fetch.ts";
import { decode as decodeMessage, encode } from "../src/kafka/schema.ts";
import { KafkaReader, KafkaWriter } from "../src/kafka/wire.ts";
import { RecordCursor, forEachBatch } from "../src/protocol/record-batch.ts";
import { type ConsumerPerfOptions, consumeFetch, consumerPerfDefaults, decode } from "./consumer-perf.ts";
import { channelOptions, createTopic, creds, freePort, isMain, loadAverage, median, MiB, parseArgs, preProduce } from "./lib.ts";
import { startBrokerProcess } from "./producer-perf.ts";
import { runtimeName } from "./runtime.ts";

const defaults = {
  records: 2_000_000,
  recordSize: 100,
  batchRecords: 1000,
  compression: "none" as "none" | "lz4",
  partitions: 1,
  partitionBytesMax: 4 * MiB,
  maxBytes: 16 * MiB,
  fetchVersion: 12,
  /** Which consumers to run, each `--runs` times, interleaved. */
  modes: "grpc,kafka,sdk,kcat,kafkajs,platformatic",
  /** Records the real clients (kcat, kafkajs, platformatic) read; 0: all. */
  clientRecords: 0,
  runs: 3,
  brokerRuntime: "bun" as "bun" | "node" | "deno",
  json: "",
};
type Options = typeof defaults;

/** One Kafka connection: requests written whole, responses gathered into one buffer each, in order. */
class KafkaSocket {
  private readonly waiting: Array<(body: Buffer) => void> = [];
  private frame: Buffer | null = null;
  private have = 0;
  private head = Buffer.alloc(4);
  private headHave = 0;
  private nextId = 1;

  private constructor(private readonly socket: net.Socket) {
    socket.on("data", (d: Buffer) => this.data(d));
  }

  static connect(host: string, port: number): Promise<KafkaSocket> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host, port }, () => resolve(new KafkaSocket(s)));
      s.setNoDelay(true);
      s.once("error", reject);
    });
  }

  private data(d: Buffer): void {
    let at = 0;
    while (at < d.length) {
      if (this.frame === null) {
        const take = Math.min(4 - this.headHave, d.length - at);
        d.copy(this.head, this.headHave, at, at + take);
        this.headHave += take;
        at += take;
        if (this.headHave < 4) return;
        this.frame = Buffer.allocUnsafe(this.head.readInt32BE(0));
        this.have = 0;
        this.headHave = 0;
      }
      const take = Math.min(this.frame.length - this.have, d.length - at);
      d.copy(this.frame, this.have, at, at + take);
      this.have += take;
      at += take;
      if (this.have === this.frame.length) {
        const f = this.frame;
        this.frame = null;
        this.waiting.shift()!(f.subarray(4)); // after the correlation id
      }
    }
  }

  /** Sends a Fetch of `version`; resolves with the response body (header tags included for v12+). */
  fetch(version: number, body: Buffer): Promise<Buffer> {
    const w = new KafkaWriter();
    w.int32(0)
      .int16(1)
      .int16(version)
      .int32(this.nextId++)
      .string("kafka-consume-perf", false);
    if (version >= 12) w.uvarint(0);
    w.raw(body);
    const frame = w.toBuffer();
    frame.writeInt32BE(frame.length - 4, 0);
    const answered = new Promise<Buffer>((resolve) => this.waiting.push(resolve));
    this.socket.write(frame);
    return answered;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** The offset after the last batch of `bytes` (-1: none). */
function endOf(bytes: Buffer): number {
  let end = -1;
  forEachBatch(bytes, (h) => {
    end = h.lastOffset + 1;
  });
  return end;
}

/** Reads every record of `topic` over Kafka's Fetch, pipelined as consumer-perf's gRPC loop. */
async function consumeKafka(
  sock: KafkaSocket,
  o: Options,
  topic: string,
  total: number,
  perPartition: number[],
): Promise<{ records: number; wire: number; messages: number }> {
  const positions = perPartition.map(() => 0);
  const cursor = new RecordCursor();
  let records = 0;
  let wire = 0;
  let messages = 0;
  const request = (): Promise<Buffer> => {
    const w = new KafkaWriter();
    encode(
      FetchRequest,
      {
        replicaId: -1,
        maxWaitMs: 500,
        minBytes: 1,
        maxBytes: o.maxBytes,
        topics: [
          {
            topic,
            partitions: positions.flatMap((offset, partition) =>
              offset < perPartition[partition]! ? [{ partition, fetchOffset: BigInt(offset), partitionMaxBytes: o.partitionBytesMax }] : [],
            ),
          },
        ],
      },
      o.fetchVersion,
      w,
    );
    return sock.fetch(o.fetchVersion, w.toBuffer());
  };
  let inFlight = request();
  while (records < total) {
    const body = await inFlight;
    messages++;
    const r = new KafkaReader(body);
    if (o.fetchVersion >= 12) r.uvarint();
    const res = decodeMessage(FetchResponse, r, o.fetchVersion);
    const from = positions.slice();
    const parts = res.responses.flatMap((t) => t.partitions);
    for (const p of parts) {
      if (p.errorCode !== 0) throw new Error(`kafka fetch ${topic}-${p.partitionIndex}: error ${p.errorCode}`);
      const end = endOf(p.records as Buffer);
      if (end > positions[p.partitionIndex]!) positions[p.partitionIndex] = end;
    }
    if (positions.some((pos, i) => pos < perPartition[i]!)) inFlight = request();
    for (const p of parts) {
      const bytes = p.records as Buffer;
      wire += bytes.length;
      const [n, next] = decode(bytes, from[p.partitionIndex]!, true, cursor, `${topic}-${p.partitionIndex}`);
      if (n > 0 && next !== positions[p.partitionIndex]) throw new Error(`${topic}-${p.partitionIndex}: decoded up to ${next}`);
      records += n;
    }
  }
  return { records, wire, messages };
}

const MODES = ["grpc", "kafka", "sdk", "kcat", "kafkajs", "platformatic"] as const;
type Mode = (typeof MODES)[number];
const LABELS: Record<Mode, string> = {
  grpc: "gRPC Fetch (pipelined, ours)",
  kafka: "Kafka Fetch (pipelined, ours)",
  sdk: "SDK Consumer (gRPC)",
  kcat: "kcat -C (librdkafka, Kafka)",
  kafkajs: "kafkajs consumer (Kafka)",
  platformatic: "@platformatic/kafka consumer (Kafka)",
};

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const BUN = path.join(root, "node_modules/.bin/bun");

const KAFKAJS = `
import kafkajs from "kafkajs";
const [addr, topic, n, group, maxBytes, partitionMaxBytes] = process.argv.slice(1); // node -e: no script path
const { Kafka, logLevel } = kafkajs;
const k = new Kafka({ brokers: [addr], clientId: "bench", logLevel: logLevel.NOTHING });
const c = k.consumer({ groupId: group, maxWaitTimeInMs: 500, maxBytes: Number(maxBytes), maxBytesPerPartition: Number(partitionMaxBytes) });
await c.connect();
const t0 = performance.now();
await c.subscribe({ topic, fromBeginning: true });
let records = 0;
await new Promise((resolve, reject) => {
  c.run({ autoCommit: false, eachBatch: async ({ batch }) => { records += batch.messages.length; if (records >= Number(n)) resolve(); } }).catch(reject);
});
const seconds = (performance.now() - t0) / 1000;
await c.disconnect();
console.log(JSON.stringify({ records, seconds }));
`;

const PLATFORMATIC = `
import { Consumer, MessagesStreamModes } from "@platformatic/kafka";
const [addr, topic, n, group, maxBytes, partitionMaxBytes, partitions] = process.argv.slice(1); // bun -e: no script path
const c = new Consumer({ groupId: group, clientId: "bench", bootstrapBrokers: [addr], maxWaitTime: 500, autocommit: false,
  maxBytes: Number(maxBytes), maxBytesPerPartition: Number(partitionMaxBytes) });
const t0 = performance.now();
const stream = await c.consume({ topics: [topic], mode: MessagesStreamModes.MANUAL,
  offsets: Array.from({ length: Number(partitions) }, (_, partition) => ({ topic, partition, offset: 0n })) });
let records = 0;
for await (const _ of stream) if (++records >= Number(n)) break;
const seconds = (performance.now() - t0) / 1000;
await stream.close();
await c.close(true);
console.log(JSON.stringify({ records, seconds }));
process.exit(0);
`;

/** A real client's consumer in its own process; resolves with the records and seconds it reports. */
function consumeClient(cmd: string, args: string[]): Promise<{ records: number; messages: number; seconds: number }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => p.kill("SIGKILL"), 600_000);
    p.once("error", reject);
    p.once("exit", (code) => {
      clearTimeout(timer);
      const line = out.trim().split("\n").pop() ?? "";
      try {
        if (code !== 0) throw new Error();
        const r = JSON.parse(line) as { records: number; seconds: number };
        resolve({ records: r.records, seconds: r.seconds, messages: 0 });
      } catch {
        reject(new Error(`${path.basename(cmd)} consumer exited ${code}: ${line} ${err.trim().slice(-500)}`));
      }
    });
  });
}

/** Rill's SDK Consumer from offset 0 of every partition until `total` records. */
async function consumeSdk(address: string, o: Options, topic: string, total: number): Promise<{ records: number; messages: number }> {
  const consumer = new Consumer({ bootstrap: address, maxBytes: o.maxBytes });
  consumer.assign(Array.from({ length: o.partitions }, (_, partition) => ({ topic, partition, offset: "earliest" as const })));
  let records = 0;
  try {
    for await (const _ of consumer) if (++records >= total) break;
  } finally {
    await consumer.close();
  }
  return { records, messages: 0 };
}

/** kcat reading every partition from offset 0 to its end; counts the lines it prints. */
function consumeKcat(
  address: string,
  topic: string,
  perPartition: number[],
  count: number,
): Promise<{ records: number; messages: number }> {
  return new Promise((resolve, reject) => {
    const args = ["-C", "-b", address, "-t", topic, "-o", "0", "-e", "-q", "-f", "%o\\n", "-X", `fetch.max.bytes=${16 * MiB}`];
    if (perPartition.length === 1) args.push("-p", "0");
    args.push("-c", String(count));
    const p = spawn("kcat", args, { stdio: ["ignore", "pipe", "pipe"] });
    let records = 0;
    let err = "";
    p.stdout.on("data", (d: Buffer) => {
      for (let i = d.indexOf(10); i >= 0; i = d.indexOf(10, i + 1)) records++;
    });
    p.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => p.kill("SIGKILL"), 600_000);
    p.once("error", reject);
    p.once("exit", (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`kcat exited ${code}: ${err.trim()}`));
      else resolve({ records, messages: 0 });
    });
  });
}

interface Run {
  recordsPerSec: number;
  payloadMiBPerSec: number;
  seconds: number;
  messages: number;
}

export async function runKafkaConsumePerf(o: Options): Promise<Record<string, unknown>> {
  const kafkaPort = await freePort();
  const broker = await startBrokerProcess(o.brokerRuntime, {
    args: ["--set", `kafka.listen=127.0.0.1:${kafkaPort}`, "--set", "group.initial.rebalance.delay.ms=0"],
  });
  try {
    const topic = `kconsume-${Date.now()}`;
    await createTopic(broker.address, topic, o.partitions);
    process.stderr.write(`pre-producing ${o.records} records of ${o.recordSize} B (${o.compression})...\n`);
    const total = await preProduce(broker.address, {
      topic,
      records: o.records,
      recordSize: o.recordSize,
      batchRecords: o.batchRecords,
      partitions: o.partitions,
      compression: o.compression,
    });
    const requests = total / o.batchRecords;
    const perPartition = Array.from(
      { length: o.partitions },
      (_, p) => (Math.floor(requests / o.partitions) + (p < requests % o.partitions ? 1 : 0)) * o.batchRecords,
    );
    const grpcOptions: ConsumerPerfOptions = {
      ...consumerPerfDefaults,
      partitionBytesMax: o.partitionBytesMax,
      maxBytes: o.maxBytes,
      crc: true,
    };
    const modes = o.modes.split(",").map((m) => m.trim()) as Mode[];
    for (const m of modes) if (!MODES.includes(m)) throw new Error(`--modes: "${m}" is not one of ${MODES.join(", ")}`);
    const runs: Record<Mode, Run[]> = { grpc: [], kafka: [], sdk: [], kcat: [], kafkajs: [], platformatic: [] };
    const clientTotal = o.clientRecords > 0 ? Math.min(o.clientRecords, total) : total;
    const isClient = (m: Mode): boolean => m === "kcat" || m === "kafkajs" || m === "platformatic";
    let groups = 0;
    const consume = async (how: Mode): Promise<{ records: number; messages: number; seconds?: number }> => {
      if (how === "grpc") {
        const client = new (clientConstructor(FetchService, fetchClientCodecs))(broker.address, creds(), channelOptions());
        try {
          return await consumeFetch(client, grpcOptions, topic, total, perPartition);
        } finally {
          client.close();
        }
      }
      if (how === "kafka") {
        const sock = await KafkaSocket.connect("127.0.0.1", kafkaPort);
        try {
          return await consumeKafka(sock, o, topic, total, perPartition);
        } finally {
          sock.close();
        }
      }
      if (how === "sdk") return consumeSdk(broker.address, o, topic, total);
      const kafkaAddress = `127.0.0.1:${kafkaPort}`;
      if (how === "kcat") return consumeKcat(kafkaAddress, topic, perPartition, clientTotal);
      const args = [
        kafkaAddress,
        topic,
        String(clientTotal),
        `bench-${Date.now()}-${groups++}`,
        String(o.maxBytes),
        String(o.partitionBytesMax),
      ];
      if (how === "kafkajs") return consumeClient("node", ["--input-type=module", "-e", KAFKAJS, ...args]);
      return consumeClient(BUN, ["-e", PLATFORMATIC, ...args, String(o.partitions)]);
    };
    for (let run = 0; run < o.runs; run++) {
      // Interleaved, rotating which goes first, so a warming broker favours none.
      const order = modes.map((_, i) => modes[(i + run) % modes.length]!);
      for (const how of order) {
        const start = performance.now();
        const r = await consume(how);
        const seconds = r.seconds ?? (performance.now() - start) / 1000;
        const want = isClient(how) ? clientTotal : total;
        if (r.records < want) throw new Error(`${how}: consumed ${r.records} of ${want} records`);
        const res = {
          recordsPerSec: want / seconds,
          payloadMiBPerSec: (want * o.recordSize) / seconds / MiB,
          seconds,
          messages: r.messages,
        };
        runs[how].push(res);
        process.stderr.write(
          `  ${how} run ${run + 1}/${o.runs}: ${(res.recordsPerSec / 1e6).toFixed(2)}M records/s, ${res.payloadMiBPerSec.toFixed(1)} MiB/s, ${seconds.toFixed(2)} s\n`,
        );
      }
    }
    const med = (m: Mode, k: "payloadMiBPerSec" | "recordsPerSec") => (runs[m].length > 0 ? median(runs[m].map((r) => r[k])) : null);
    const grpc = med("grpc", "payloadMiBPerSec");
    const kafka = med("kafka", "payloadMiBPerSec");
    return {
      tool: "kafka-consume-perf",
      runtime: runtimeName(),
      ...o,
      records: total,
      clientRecords: clientTotal,
      medians: Object.fromEntries(
        modes.map((m) => [m, { payloadMiBPerSec: med(m, "payloadMiBPerSec"), recordsPerSec: med(m, "recordsPerSec") }]),
      ),
      kafkaOverGrpc: grpc && kafka ? kafka / grpc : null,
      runResults: runs,
      loadAverage: loadAverage(),
    };
  } finally {
    await broker.stop();
  }
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2), defaults, import.meta.url);
  const r = await runKafkaConsumePerf(o);
  const medians = r["medians"] as Record<string, { payloadMiBPerSec: number; recordsPerSec: number }>;
  console.log(`${r["records"]} records of ${o.recordSize} B (${o.compression}), medians of ${o.runs} interleaved runs:`);
  for (const [m, x] of Object.entries(medians))
    console.log(
      `  ${LABELS[m as Mode].padEnd(38)} ${x.payloadMiBPerSec.toFixed(1).padStart(7)} MiB/s  ${(x.recordsPerSec / 1e6).toFixed(2)}M records/s`,
    );
  const ratio = r["kafkaOverGrpc"] as number | null;
  if (ratio !== null) console.log(`  Kafka Fetch ÷ gRPC Fetch: ${ratio.toFixed(2)}`);
  console.log(`  load average ${(r["loadAverage"] as number[]).join(", ")}`);
  if (o.json) nodeFs.writeFileSync(o.json, JSON.stringify(r, null, 2) + "\n");
}

if (isMain(import.meta.url, "kafka-consume-perf.ts")) await main();
