/**
 * Hand-written codecs of wire-codec.ts against protobuf-es toBinary/fromBinary, at 100 B and
 * 1 MiB of batch bytes. Not a test (no assertions on timing); run with any runtime:
 *
 *   npx tsx test/unit/rpc/bench/wire-codec.bench.ts
 *   node_modules/.bin/bun test/unit/rpc/bench/wire-codec.bench.ts
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { FetchResponseSchema } from "../../src/gen/rill/v1/fetch_service_pb.ts";
import { Acks, ProduceRequestSchema } from "../../src/gen/rill/v1/produce_service_pb.ts";
import { asBuffer } from "../../src/protocol/grpc-service.ts";
import { decodeProduceRequest, encodeFetchResponse } from "../../src/rpc/wire-codec.ts";
import { decodeFetchResponse, encodeProduceRequest } from "../../src/client/wire-codec.ts";

const runtime = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : `node ${process.version}`;
let sink = 0;

/** ns per operation of one round of `n` operations. */
function round(n: number, op: () => number): number {
  const start = performance.now();
  for (let i = 0; i < n; i++) sink += op();
  return ((performance.now() - start) * 1e6) / n;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

/**
 * Baseline and ours alternate round by round (so background load hits both alike); the table
 * shows the median ns per operation of each and the median of the per-round speed-ups.
 */
function row(name: string, size: number, n: number, baseline: () => number, ours: () => number): void {
  round(n, baseline);
  round(n, ours);
  const a: number[] = [];
  const b: number[] = [];
  const gains: number[] = [];
  for (let r = 0; r < 9; r++) {
    a.push(round(n, baseline));
    b.push(round(n, ours));
    gains.push(a[r]! / b[r]! - 1);
  }
  const mibs = (ns: number): string => (((size / ns) * 1e9) / 2 ** 20).toFixed(0);
  const [ma, mb] = [median(a), median(b)];
  console.log(
    `| ${name} | ${size >= 2 ** 20 ? "1 MiB" : `${size} B`} | ${ma.toFixed(0)} ns (${mibs(ma)} MiB/s) | ${mb.toFixed(0)} ns (${mibs(mb)} MiB/s) | ${(median(gains) * 100).toFixed(0)}% |`,
  );
}

function bench(size: number): void {
  const n = size >= 2 ** 20 ? 400 : 200_000;
  const batch = Buffer.alloc(size, 7);
  const produce = create(ProduceRequestSchema, { topic: "orders", partition: 3, recordBatch: batch, acks: Acks.ALL, timeoutMs: 30_000 });
  const produceWire = asBuffer(toBinary(ProduceRequestSchema, produce));

  row(
    "ProduceRequest encode (client)",
    size,
    n,
    () => asBuffer(toBinary(ProduceRequestSchema, produce)).length,
    () => encodeProduceRequest(produce).length,
  );
  row(
    "ProduceRequest decode (server)",
    size,
    n,
    () => fromBinary(ProduceRequestSchema, produceWire, { readUnknownFields: false }).recordBatch.length,
    () => decodeProduceRequest(produceWire).recordBatch.length,
  );

  // A fetch answer: the batches of one partition as 4 slices of a log read.
  const chunks = [0, 1, 2, 3].map((i) => batch.subarray((i * size) >> 2, ((i + 1) * size) >> 2));
  const meta = { topic: "orders", partition: 3, highWatermark: 123_456_789n, logStartOffset: 1000n, nextOffset: 123_456_000n };
  const fetchMessage = create(FetchResponseSchema, { partitions: [{ ...meta, recordBatches: batch }] });
  const fetchChunks = { partitions: [{ ...meta, recordBatches: chunks }] };
  row(
    "FetchResponse encode, 1 chunk (server)",
    size,
    n,
    () => asBuffer(toBinary(FetchResponseSchema, fetchMessage)).length,
    () => encodeFetchResponse(fetchMessage).length,
  );
  row(
    "FetchResponse encode, 4 chunks (server)",
    size,
    n,
    () => {
      fetchMessage.partitions[0]!.recordBatches = Buffer.concat(chunks); // protobuf-es needs one array
      return asBuffer(toBinary(FetchResponseSchema, fetchMessage)).length;
    },
    () => encodeFetchResponse(fetchChunks).length,
  );
  fetchMessage.partitions[0]!.recordBatches = batch;
  const fetchWire = encodeFetchResponse(fetchMessage);
  row(
    "FetchResponse decode (client)",
    size,
    n,
    () => fromBinary(FetchResponseSchema, fetchWire, { readUnknownFields: false }).partitions.length,
    () => decodeFetchResponse(fetchWire).partitions.length,
  );
}

console.log(`wire-codec vs protobuf-es, ${runtime}`);
console.log("| operation | batch | protobuf-es | hand-written | gain |\n|---|---|---|---|---|");
bench(100);
bench(2 ** 20);
if (sink === 42) console.log(sink);
