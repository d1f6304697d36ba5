/**
 * Consumer throughput, like kafka-consumer-perf-test: pre-produces `--records` records into a
 * fresh topic (not timed), then reads them all back, `--runs` times, and reports records/s and
 * MiB/s of each run and their median. Against a broker it starts on 127.0.0.1 with a fresh data
 * dir, or the first of `--brokers HOST:PORT,...` (`--broker HOST:PORT` is the same).
 * `--tls-ca FILE [--tls-server-name localhost]`: connect with TLS, verifying the broker against
 * the CA bundle (with `--brokers` started with `--tls-cert/--tls-key`).
 *
 *   bun bench/consumer-perf.ts --records 5000000 --record-size 100 [--batch-records 1000]
 *     [--compression none|lz4] [--partitions 1] [--mode fetch|subscribe] [--partition-max-bytes 4194304] [--max-bytes 16777216]
 *     [--crc true|false] [--runs 3] [--broker-runtime bun|node|deno] [--brokers HOST:PORT,... [--broker-pid PID]] [--json FILE]
 *
 * `fetch`: FetchService.Fetch with RECORD_FORMAT_BATCHES, pipelined: the next fetch (from the
 * response's next_offset) is sent before the current response is decoded, so one is always in
 * flight while the client decodes, as the SDK Consumer does. `subscribe`: one Subscribe stream
 * (BATCHES) from offset 0. Either way every record is decoded lazily to its offset with the
 * storage codec's `records()` cursor (no key/value objects), after a CRC32C check of each batch
 * (`--crc false` skips it); records below the requested offset are skipped and each
 * partition's offsets are checked to run without gaps or repeats.
 */
import * as nodeFs from "node:fs";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { crc32c } from "../src/base/crc32c.ts";
import { RecordFormat } from "../src/gen/rill/v1/common_pb.ts";
import {
  FetchRequestSchema,
  FetchService,
  SubscribeRequestSchema,
  type FetchResponse,
  type FetchedPartition,
} from "../src/gen/rill/v1/fetch_service_pb.ts";
import { clientConstructor } from "../src/protocol/grpc-service.ts";
import { fetchClientCodecs } from "../src/client/wire-codec.ts";
import { CRC_START, RecordCursor, forEachBatch } from "../src/protocol/record-batch.ts";
import {
  channelOptions,
  createTopic,
  creds,
  isMain,
  loadAverage,
  median,
  MiB,
  parseArgs,
  preProduce,
  sampleRss,
  useClientTls,
} from "./lib.ts";
import { startProgress } from "./progress.ts";
import { startBrokerProcess } from "./producer-perf.ts";
import { runtimeName } from "./runtime.ts";

export const consumerPerfDefaults = {
  records: 2_000_000,
  recordSize: 100,
  batchRecords: 1000,
  compression: "none" as "none" | "lz4",
  partitions: 1,
  mode: "fetch" as "fetch" | "subscribe",
  partitionBytesMax: 4 * MiB,
  /** Byte budget of a Fetch response / Subscribe message (the SDK Consumer's default). */
  maxBytes: 16 * MiB,
  crc: true,
  runs: 3,
  brokerRuntime: "bun" as "bun" | "node" | "deno",
  broker: "",
  /** Running brokers, HOST:PORT,...: the tool talks to the first; empty: start one. */
  brokers: "",
  /** With `--broker`: the broker's PID on this machine, so its RSS is sampled (0: not sampled). */
  brokerPid: 0,
  /** PEM CA bundle: connect with TLS, verifying the broker against it; empty: plaintext. */
  tlsCa: "",
  /** With `tlsCa`: the name the broker's certificate carries. */
  tlsServerName: "localhost",
  json: "",
};
export type ConsumerPerfOptions = typeof consumerPerfDefaults;
type Options = ConsumerPerfOptions;

/** Decodes the records of `bytes` from `position`; returns [records counted, next position]. */
export function decode(bytes: Buffer, position: number, crc: boolean, cursor: RecordCursor, where: string): [number, number] {
  let n = 0;
  let next = position;
  forEachBatch(bytes, (h, pos) => {
    if (h.lastOffset < next || h.isControl) return;
    if (crc && crc32c(bytes.subarray(pos + CRC_START, pos + h.size)) !== h.crc)
      throw new Error(`${where}: CRC mismatch in batch at offset ${h.baseOffset}`);
    cursor.reset(bytes, pos);
    while (cursor.next()) {
      const off = cursor.offset;
      if (off < next) continue;
      if (off !== next) throw new Error(`${where}: expected offset ${next}, got ${off}`);
      next = off + 1;
      n++;
    }
  });
  return [n, next];
}

interface RunResult {
  records: number;
  bytes: number;
  seconds: number;
  recordsPerSec: number;
  payloadMiBPerSec: number;
  wireMiBPerSec: number;
  messages: number;
}

export type FetchClient = InstanceType<ReturnType<typeof clientConstructor<typeof FetchService, typeof fetchClientCodecs>>>;

export async function consumeFetch(
  client: FetchClient,
  o: Options,
  topic: string,
  total: number,
  perPartition: number[],
  counted: { records: number } = { records: 0 },
): Promise<{ records: number; wire: number; messages: number }> {
  const positions = perPartition.map(() => 0);
  const cursor = new RecordCursor();
  let records = 0;
  let wire = 0;
  let messages = 0;
  const request = (): Promise<FetchResponse> => {
    const req = create(FetchRequestSchema, {
      partitions: positions.flatMap((offset, partition) =>
        offset < perPartition[partition]! ? [{ topic, partition, offset: BigInt(offset), maxBytes: o.partitionBytesMax }] : [],
      ),
      maxWaitMs: 500,
      minBytes: 1,
      maxBytes: o.maxBytes,
      format: RecordFormat.BATCHES,
    });
    return new Promise((resolve, reject) => client.fetch(req, (e, r) => (e ? reject(e) : resolve(r!))));
  };
  let inFlight = request();
  while (records < total) {
    const res = await inFlight;
    messages++;
    // Positions advance by the response's next_offset, so the next fetch can go out before decoding.
    const from = positions.slice();
    for (const p of res.partitions) {
      if (p.error) throw new Error(`fetch ${topic}-${p.partition}: ${p.error.message}`);
      positions[p.partition] = Number(p.nextOffset);
    }
    if (positions.some((pos, i) => pos < perPartition[i]!)) inFlight = request();
    for (const p of res.partitions) {
      const bytes = p.recordBatches as Buffer;
      wire += bytes.length;
      const [n, next] = decode(bytes, from[p.partition]!, o.crc, cursor, `${topic}-${p.partition}`);
      if (next !== positions[p.partition])
        throw new Error(`${topic}-${p.partition}: decoded up to ${next}, next_offset says ${positions[p.partition]}`);
      records += n;
      counted.records = records;
    }
  }
  return { records, wire, messages };
}

async function consumeSubscribe(
  client: FetchClient,
  o: Options,
  topic: string,
  total: number,
  perPartition: number[],
  counted: { records: number } = { records: 0 },
): Promise<{ records: number; wire: number; messages: number }> {
  const positions = perPartition.map(() => 0);
  const cursor = new RecordCursor();
  let records = 0;
  let wire = 0;
  let messages = 0;
  const call = client.subscribe(
    create(SubscribeRequestSchema, {
      partitions: perPartition.map((_, partition) => ({ topic, partition, offset: 0n, maxBytes: o.partitionBytesMax })),
      maxBytes: o.maxBytes,
      format: RecordFormat.BATCHES,
    }),
  );
  try {
    await new Promise<void>((resolve, reject) => {
      call.on("data", (m: { partitions: FetchedPartition[] }) => {
        try {
          messages++;
          for (const p of m.partitions) {
            if (p.error) throw new Error(`subscribe ${topic}-${p.partition}: ${p.error.message}`);
            const bytes = p.recordBatches as Buffer;
            wire += bytes.length;
            const [n, next] = decode(bytes, positions[p.partition]!, o.crc, cursor, `${topic}-${p.partition}`);
            positions[p.partition] = next;
            records += n;
            counted.records = records;
          }
          if (records >= total) resolve();
        } catch (e) {
          reject(e);
        }
      });
      call.on("error", (e: grpc.ServiceError) => {
        if (e.code !== grpc.status.CANCELLED) reject(e);
      });
      call.on("end", () => (records >= total ? resolve() : reject(new Error(`subscribe ended after ${records} of ${total} records`))));
    });
  } finally {
    call.cancel();
  }
  return { records, wire, messages };
}

export async function runConsumerPerf(o: Options): Promise<Record<string, unknown>> {
  const given = (o.brokers.split(",")[0] ?? "").trim() || o.broker;
  useClientTls(o.tlsCa, o.tlsServerName);
  const broker = given ? null : await startBrokerProcess(o.brokerRuntime);
  try {
    const address = given || broker!.address;
    const topic = `consume-${Date.now()}`;
    await createTopic(address, topic, o.partitions);
    process.stderr.write(
      `pre-producing ${o.records} records of ${o.recordSize} B (${o.compression}) into ${o.partitions} partition(s)...\n`,
    );
    const pid = broker?.proc.pid ?? o.brokerPid;
    const produceRss = pid ? sampleRss(pid, 100) : null;
    const total = await preProduce(address, {
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
    const preProduceRss = produceRss?.stop() ?? null;
    const consumeRss = pid ? sampleRss(pid, 100) : null;
    const runs: RunResult[] = [];
    for (let run = 0; run < o.runs; run++) {
      const client = new (clientConstructor(FetchService, fetchClientCodecs))(address, creds(), channelOptions());
      try {
        const start = performance.now();
        const counted = { records: 0 };
        const progress = startProgress(`consumer run ${run + 1}/${o.runs}`, total, () => counted.records);
        const r = await (o.mode === "subscribe"
          ? consumeSubscribe(client, o, topic, total, perPartition, counted)
          : consumeFetch(client, o, topic, total, perPartition, counted)
        ).finally(() => progress.stop());
        const seconds = (performance.now() - start) / 1000;
        if (r.records !== total) throw new Error(`consumed ${r.records} of ${total} records`);
        const res: RunResult = {
          records: r.records,
          bytes: r.wire,
          seconds,
          recordsPerSec: r.records / seconds,
          payloadMiBPerSec: (r.records * o.recordSize) / seconds / MiB,
          wireMiBPerSec: r.wire / seconds / MiB,
          messages: r.messages,
        };
        runs.push(res);
        process.stderr.write(
          `  run ${run + 1}/${o.runs}: ${(res.recordsPerSec / 1e6).toFixed(2)}M records/s, ${res.payloadMiBPerSec.toFixed(1)} MiB/s payload, ${r.messages} responses, ${seconds.toFixed(2)} s\n`,
        );
      } finally {
        client.close();
      }
    }
    const rss = consumeRss?.stop() ?? null;
    return {
      tool: "consumer-perf",
      runtime: runtimeName(),
      ...o,
      brokerRuntime: given ? "external" : o.brokerRuntime,
      records: total,
      recordsPerSec: median(runs.map((r) => r.recordsPerSec)),
      payloadMiBPerSec: median(runs.map((r) => r.payloadMiBPerSec)),
      wireMiBPerSec: median(runs.map((r) => r.wireMiBPerSec)),
      runResults: runs,
      ...(preProduceRss && rss
        ? { brokerRssMiB: { preProducePeak: preProduceRss.peakMiB, consumePeak: rss.peakMiB, consumeLast: rss.lastMiB } }
        : {}),
      loadAverage: loadAverage(),
    };
  } finally {
    await broker?.stop();
  }
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2), consumerPerfDefaults, import.meta.url);
  const result = await runConsumerPerf(o);
  console.log(
    `${o.mode}: ${result["records"]} records of ${o.recordSize} B (${o.compression}), median of ${o.runs}: ${((result["recordsPerSec"] as number) / 1e6).toFixed(2)}M records/s, ` +
      `${(result["payloadMiBPerSec"] as number).toFixed(1)} MiB/s payload (${(result["wireMiBPerSec"] as number).toFixed(1)} MiB/s on the wire); load average ${(result["loadAverage"] as number[]).join(", ")}`,
  );
  const rss = result["brokerRssMiB"] as { preProducePeak: number; consumePeak: number } | undefined;
  if (rss)
    console.log(
      `broker RSS peak: ${rss.preProducePeak.toFixed(0)} MiB while pre-producing, ${rss.consumePeak.toFixed(0)} MiB while consuming`,
    );
  if (o.json) nodeFs.writeFileSync(o.json, JSON.stringify(result, null, 2) + "\n");
}

if (isMain(import.meta.url, "consumer-perf.ts")) await main();
