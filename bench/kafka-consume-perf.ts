/**
 * Consume throughput over the Kafka listener ÷ over gRPC, the same partition of the same broker:
 * pre-produces `--records` records into a fresh topic (not timed), then reads them all back
 * `--runs` times each way, the two interleaved, and reports each run and the medians.
 *
 *   bun bench/kafka-consume-perf.ts [--records 2000000] [--record-size 100] [--batch-records 1000]
 *     [--compression none|lz4] [--partitions 1] [--partition-max-bytes 4194304] [--max-bytes 16777216]
 *     [--fetch-version 12] [--runs 3] [--broker-runtime bun|node|deno] [--json FILE]
 *
 * gRPC: consumer-perf's pipelined FetchService.Fetch in BATCHES format (one fetch in flight
 * while the client decodes). Kafka: the same loop over Kafka's Fetch (`--fetch-version`, v12
 * by default: flexible, topic names) on one socket: the next fetch goes out as soon as the last
 * batch of each partition is known from the batch headers (what a Kafka client does: the
 * answer has no next offset), then the records are decoded. Both decode every record lazily to
 * its offset after a CRC32C check of each batch, and check that offsets run without gaps; the
 * same `max_bytes`, partition max bytes and `max_wait_ms` (500).
 */
import * as net from "node:net";
import * as nodeFs from "node:fs";
import { FetchService } from "../src/gen/rill/v1/fetch_service_pb.ts";
import { clientConstructor } from "../src/protocol/grpc-service.ts";
import { fetchClientCodecs } from "../src/client/wire-codec.ts";
import { FetchRequest, FetchResponse } from "../src/kafka/apis/fetch.ts";
import { decode as decodeMessage, encode } from "../src/kafka/schema.ts";
import { KafkaReader, KafkaWriter } from "../src/kafka/wire.ts";
import { RecordCursor, forEachBatch } from "../src/protocol/record-batch.ts";
import { type ConsumerPerfOptions, consumeFetch, consumerPerfDefaults, decode } from "./consumer-perf.ts";
import { channelOptions, createTopic, creds, isMain, loadAverage, median, MiB, parseArgs, preProduce } from "./lib.ts";
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

/** A free port of 127.0.0.1 (the broker binds it right after). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
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
  const broker = await startBrokerProcess(o.brokerRuntime, { args: ["--set", `kafka.listen=127.0.0.1:${kafkaPort}`] });
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
    const runs: { grpc: Run[]; kafka: Run[] } = { grpc: [], kafka: [] };
    const measure = async (how: "grpc" | "kafka", run: number): Promise<void> => {
      const start = performance.now();
      let r: { records: number; messages: number };
      if (how === "grpc") {
        const client = new (clientConstructor(FetchService, fetchClientCodecs))(broker.address, creds(), channelOptions());
        try {
          r = await consumeFetch(client, grpcOptions, topic, total, perPartition);
        } finally {
          client.close();
        }
      } else {
        const sock = await KafkaSocket.connect("127.0.0.1", kafkaPort);
        try {
          r = await consumeKafka(sock, o, topic, total, perPartition);
        } finally {
          sock.close();
        }
      }
      const seconds = (performance.now() - start) / 1000;
      if (r.records !== total) throw new Error(`${how}: consumed ${r.records} of ${total} records`);
      const res = {
        recordsPerSec: total / seconds,
        payloadMiBPerSec: (total * o.recordSize) / seconds / MiB,
        seconds,
        messages: r.messages,
      };
      runs[how].push(res);
      process.stderr.write(
        `  ${how} run ${run + 1}/${o.runs}: ${(res.recordsPerSec / 1e6).toFixed(2)}M records/s, ${res.payloadMiBPerSec.toFixed(1)} MiB/s, ${r.messages} responses, ${seconds.toFixed(2)} s\n`,
      );
    };
    for (let run = 0; run < o.runs; run++) {
      // Interleaved, alternating which goes first, so a warming broker favours neither.
      const order: ("grpc" | "kafka")[] = run % 2 === 0 ? ["grpc", "kafka"] : ["kafka", "grpc"];
      for (const how of order) await measure(how, run);
    }
    const grpc = median(runs.grpc.map((r) => r.payloadMiBPerSec));
    const kafka = median(runs.kafka.map((r) => r.payloadMiBPerSec));
    return {
      tool: "kafka-consume-perf",
      runtime: runtimeName(),
      ...o,
      records: total,
      grpcMiBPerSec: grpc,
      kafkaMiBPerSec: kafka,
      grpcRecordsPerSec: median(runs.grpc.map((r) => r.recordsPerSec)),
      kafkaRecordsPerSec: median(runs.kafka.map((r) => r.recordsPerSec)),
      kafkaOverGrpc: kafka / grpc,
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
  const f = (x: unknown) => (x as number).toFixed(1);
  console.log(
    `${r["records"]} records of ${o.recordSize} B (${o.compression}), medians of ${o.runs}: ` +
      `gRPC Fetch ${f(r["grpcMiBPerSec"])} MiB/s (${((r["grpcRecordsPerSec"] as number) / 1e6).toFixed(2)}M records/s), ` +
      `Kafka Fetch v${o.fetchVersion} ${f(r["kafkaMiBPerSec"])} MiB/s (${((r["kafkaRecordsPerSec"] as number) / 1e6).toFixed(2)}M records/s), ` +
      `Kafka ÷ gRPC ${(r["kafkaOverGrpc"] as number).toFixed(2)}; load average ${(r["loadAverage"] as number[]).join(", ")}`,
  );
  if (o.json) nodeFs.writeFileSync(o.json, JSON.stringify(r, null, 2) + "\n");
}

if (isMain(import.meta.url, "kafka-consume-perf.ts")) await main();
