/**
 * End-to-end latency, like Kafka's EndToEndLatency tool but at a target rate: a producer sends
 * `--rate` records/s (batched every `--linger-ms`, pipelined on one ProduceStream), each record's
 * value starting with its send time; a consumer on a Subscribe stream (BATCHES, max_wait_ms 0)
 * in the same process reads each record's time and records now - time in an HDR histogram.
 * Reports p50/p95/p99/p99.9/max after a warm-up, and the achieved rate. Against a broker it
 * starts on 127.0.0.1 with a fresh data dir, or the first of `--brokers HOST:PORT,...`
 * (`--broker HOST:PORT` is the same).
 *
 *   bun bench/e2e-latency.ts [--rate 100000] [--seconds 10] [--record-size 100] [--linger-ms 1]
 *     [--compression none|lz4] [--acks leader|all|none] [--warmup-seconds 1]
 *     [--broker-runtime bun|node|deno] [--brokers HOST:PORT,...] [--json FILE]
 *
 * The time written is the record's *scheduled* send time (start + i / rate), not the time its
 * batch left, so lingering and a producer that falls behind count as latency (no coordinated
 * omission). Producer and consumer share one clock (`performance.now()`), so no clock skew.
 */
import * as nodeFs from "node:fs";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import * as hdr from "hdr-histogram-js";
import { RecordFormat } from "../src/gen/rill/v1/common_pb.ts";
import { FetchService, SubscribeRequestSchema, type FetchedPartition } from "../src/gen/rill/v1/fetch_service_pb.ts";
import { Acks, ProduceService, type ProduceStreamResponse } from "../src/gen/rill/v1/produce_service_pb.ts";
import { clientConstructor } from "../src/protocol/grpc-service.ts";
import { clientChannelOptions } from "../src/protocol/channel-options.ts";
import { fetchClientCodecs, produceClientCodecs } from "../src/client/wire-codec.ts";
import { Compression, RecordCursor, encodeBatch, forEachBatch } from "../src/protocol/record-batch.ts";
import { createTopic, creds, isMain, loadAverage, parseArgs, percentilesMs } from "./lib.ts";
import { startBrokerProcess } from "./producer-perf.ts";
import { runtimeName } from "./runtime.ts";

const defaults = {
  rate: 100_000,
  seconds: 10,
  recordSize: 100,
  lingerMs: 1,
  compression: "none" as "none" | "lz4",
  acks: "leader" as "leader" | "all" | "none",
  warmupSeconds: 1,
  maxBatchRecords: 10_000,
  brokerRuntime: "bun" as "bun" | "node" | "deno",
  broker: "",
  /** Running brokers, HOST:PORT,...: the tool talks to the first; empty: start one. */
  brokers: "",
  json: "",
};
type Options = typeof defaults;

export async function runE2eLatency(o: Options): Promise<Record<string, unknown>> {
  const given = (o.brokers.split(",")[0] ?? "").trim() || o.broker;
  const broker = given ? null : await startBrokerProcess(o.brokerRuntime);
  const produceClient: { close(): void }[] = [];
  let subscribeCall: grpc.ClientReadableStream<unknown> | null = null;
  let timer: ReturnType<typeof setTimeout> | null = null;
  try {
    const address = given || broker!.address;
    const topic = `e2e-${Date.now()}`;
    await createTopic(address, topic, 1);
    const total = Math.round(o.rate * o.seconds);
    const warmup = Math.min(total - 1, Math.round(o.rate * o.warmupSeconds));
    const hist = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
    const pad = Buffer.alloc(Math.max(0, o.recordSize - 8), ".");
    const codec = o.compression === "lz4" ? Compression.LZ4 : Compression.NONE;
    const acks = o.acks === "all" ? Acks.ALL : o.acks === "none" ? Acks.NONE : Acks.LEADER;

    const fetcher = new (clientConstructor(FetchService, fetchClientCodecs))(address, creds(), clientChannelOptions());
    const Producer = clientConstructor(ProduceService, produceClientCodecs);
    const producer = new Producer(address, creds(), clientChannelOptions());
    produceClient.push(fetcher, producer);

    let consumed = 0;
    let lastProgress = performance.now();
    const cursor = new RecordCursor();
    const consumerDone = new Promise<void>((resolve, reject) => {
      const call = fetcher.subscribe(
        create(SubscribeRequestSchema, { partitions: [{ topic, partition: 0, offset: 0n }], format: RecordFormat.BATCHES, maxWaitMs: 0 }),
      );
      subscribeCall = call as grpc.ClientReadableStream<unknown>;
      call.on("data", (m: { partitions: FetchedPartition[] }) => {
        const now = performance.now();
        for (const p of m.partitions) {
          if (p.error) return reject(new Error(`subscribe: ${p.error.message}`));
          const bytes = p.recordBatches as Buffer;
          forEachBatch(bytes, (h, pos) => {
            if (h.lastOffset < consumed) return;
            cursor.reset(bytes, pos);
            while (cursor.next()) {
              if (cursor.offset < consumed) continue;
              if (cursor.offset >= warmup)
                hist.recordValue(Math.max(1, Math.round((now - cursor.buf.readDoubleLE(cursor.valueStart)) * 1000)));
              consumed = cursor.offset + 1;
            }
          });
        }
        if (now - lastProgress > 2000) {
          lastProgress = now;
          process.stderr.write(
            `  consumed ${consumed}/${total}, p50 so far ${(hist.getValueAtPercentile(50) / 1000).toFixed(2)} ms, p99 ${(hist.getValueAtPercentile(99) / 1000).toFixed(2)} ms\n`,
          );
        }
        if (consumed >= total) resolve();
      });
      call.on("error", (e: grpc.ServiceError) => {
        if (e.code !== grpc.status.CANCELLED) reject(e);
      });
    });
    // Let the Subscribe stream reach the broker before the first record is due.
    await new Promise((r) => setTimeout(r, 300));

    const stream = producer.produceStream();
    let produceError: Error | null = null;
    let acked = 0;
    let requests = 0;
    stream.on("data", (m: ProduceStreamResponse) => {
      acked++;
      if (m.result.case !== "response" || m.result.value.partitions.some((p) => p.error))
        produceError ??= new Error(`produce failed: ${m.result.case}`);
    });
    stream.on("error", (e: Error) => (produceError ??= e));
    const start = performance.now();
    const interval = 1000 / o.rate;
    let sent = 0;
    let maxBacklog = 0;
    const producerDone = new Promise<void>((resolve, reject) => {
      const tick = (): void => {
        timer = null;
        if (produceError) return reject(produceError);
        const now = performance.now();
        const due = Math.min(total, Math.floor((now - start) / interval) + 1);
        maxBacklog = Math.max(maxBacklog, requests - acked);
        while (sent < due) {
          const n = Math.min(due - sent, o.maxBatchRecords);
          const recs = new Array(n);
          for (let i = 0; i < n; i++) {
            const v = Buffer.allocUnsafe(8 + pad.length);
            v.writeDoubleLE(start + (sent + i) * interval, 0);
            pad.copy(v, 8);
            recs[i] = { key: null, value: v };
          }
          const wallNow = Date.now();
          stream.write({
            requestId: BigInt(requests++),
            request: { topic, partition: 0, recordBatch: encodeBatch(recs, { compression: codec, nowMs: wallNow }), acks },
          });
          sent += n;
        }
        if (sent >= total) return resolve();
        timer = setTimeout(tick, o.lingerMs);
      };
      tick();
    });
    const deadline = new Promise<never>((_, reject) =>
      setTimeout(
        () => reject(new Error(`e2e-latency: not done within ${o.seconds + 30} s (consumed ${consumed}/${total})`)),
        (o.seconds + 30) * 1000,
      ).unref(),
    );
    await Promise.race([Promise.all([producerDone, consumerDone]), deadline]);
    const elapsed = (performance.now() - start) / 1000;
    stream.end();
    return {
      tool: "e2e-latency",
      runtime: runtimeName(),
      ...o,
      brokerRuntime: given ? "external" : o.brokerRuntime,
      records: total,
      measuredRecords: hist.totalCount,
      achievedRate: total / elapsed,
      produceRequests: requests,
      inFlightRequestsMax: maxBacklog,
      latencyMs: percentilesMs(hist),
      loadAverage: loadAverage(),
    };
  } finally {
    if (timer) clearTimeout(timer);
    (subscribeCall as grpc.ClientReadableStream<unknown> | null)?.cancel();
    for (const c of produceClient) c.close();
    await broker?.stop();
  }
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2), defaults, import.meta.url);
  const r = await runE2eLatency(o);
  const l = r["latencyMs"] as ReturnType<typeof percentilesMs>;
  console.log(
    `${r["records"]} records at ${Math.round(r["achievedRate"] as number)} records/s (target ${o.rate}), ${o.recordSize} B, ${o.compression}, linger ${o.lingerMs} ms: ` +
      `end-to-end avg ${l.avg.toFixed(2)} ms, p50 ${l.p50.toFixed(2)}, p95 ${l.p95.toFixed(2)}, p99 ${l.p99.toFixed(2)}, p99.9 ${l.p999.toFixed(2)}, max ${l.max.toFixed(2)} ms ` +
      `(${r["measuredRecords"]} after warm-up); load average ${(r["loadAverage"] as number[]).join(", ")}`,
  );
  if (o.json) nodeFs.writeFileSync(o.json, JSON.stringify(r, null, 2) + "\n");
}

if (isMain(import.meta.url, "e2e-latency.ts")) await main();
