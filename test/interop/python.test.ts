/**
 * Interop: a Python client whose stubs are generated from proto/ at test time (Debian's system
 * `protoc` + `/usr/bin/grpc_python_plugin`, run by `/usr/bin/python3` with Debian's
 * python3-grpcio and python3-protobuf) talks to a broker started in this process.
 *
 * python_client.py creates `orders` (6 partitions) and `ticks`, produces keyed JSON records
 * through the `records` path, fetches them back (RECORD_FORMAT_RECORDS), looks offsets up by
 * timestamp, earliest and latest, and checks a bad-input status; it checks every answer itself and
 * prints one JSON report. Here the report is checked again and cross-checked from TypeScript:
 * routing against src/base/murmur2, what Python produced fetched through grpc-js in both formats,
 * ListOffsets repeated, and Python reading LZ4/gzip batches that TypeScript built.
 *
 * Missing protoc, plugin or Python packages FAIL the suite (never skip): run
 * scripts/install-test-deps.sh.
 */
import * as path from "node:path";
import { create } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { partitionForKey } from "../../src/base/murmur2.ts";
import { Broker } from "../../src/broker/broker.ts";
import { CreateTopicsRequestSchema, type CreateTopicsResponse } from "../../src/gen/rill/v1/admin_service_pb.ts";
import { OffsetSpec, RecordFormat } from "../../src/gen/rill/v1/common_pb.ts";
import {
  FetchRequestSchema,
  ListOffsetsRequestSchema,
  type FetchResponse,
  type ListOffsetsResponse,
} from "../../src/gen/rill/v1/fetch_service_pb.ts";
import { Acks, ProduceRequestSchema, type ProduceResponse } from "../../src/gen/rill/v1/produce_service_pb.ts";
import { Compression, decodeRecords, encodeBatch, readBatchHeader, type RecordInput } from "../../src/protocol/record-batch.ts";
import { call, clients, rmTmp, tmpDir } from "../integration/rpc-helpers.ts";
import { PYTHON, ROOT, pythonEnv, run, type RunResult, prepareStubs } from "./python-env.ts";

const CLIENT = path.join(ROOT, "test/interop/python_client.py");
const PYTHON_TIMEOUT_MS = 60_000;

/** The JSON line python_client.py prints. */
interface Report {
  ok: boolean;
  python: string;
  grpcio: string;
  protobuf: string;
  topic: string;
  partitions: number;
  produced: Array<{
    key: string | null;
    value: string | null;
    headers: Array<[string, string | null]>;
    timestamp_ms: number | null;
    partition: number;
    offset: number;
  }>;
  end_offsets: number[];
  fetched: Record<string, Array<{ offset: number; key: string | null; value: string | null; timestamp_ms: number }>>;
  list_offsets: { earliest: number[]; latest: number[]; unspecified: number[] };
  timestamps: {
    topic: string;
    lookups: Array<{ partition: number; timestamp_ms?: number; spec?: string; offset: number; record_timestamp_ms?: number }>;
  };
  bad_input: {
    topic: string;
    code: string;
    details: string;
    rill_error_name: string;
    rill_error_code: string;
    rill_error_retriable: string;
  };
  read?: {
    topic: string;
    records: Array<{
      partition: number;
      offset: number;
      timestamp_ms: number;
      key: string | null;
      value: string | null;
      headers: Array<[string, string | null]>;
    }>;
  };
  elapsed_ms: number;
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array | null | undefined): string | null => (b === undefined || b === null ? null : Buffer.from(b).toString("utf8"));

/** Batches TypeScript builds for Python to read: one LZ4, one gzip, on two partitions. */
const FROM_TS = "from-ts";
const FROM_TS_BATCHES: Array<{ partition: number; compression: number; records: RecordInput[] }> = [
  {
    partition: 0,
    compression: Compression.LZ4,
    records: Array.from({ length: 50 }, (_, i) => ({
      key: `ts-key-${i % 5}`,
      value: JSON.stringify({ n: i, from: "typescript", pad: "x".repeat(i * 3) }),
      headers: [
        { key: "codec", value: "lz4" },
        { key: "null-header", value: null },
      ],
      timestampMs: 5_000 + i,
    })),
  },
  {
    partition: 1,
    compression: Compression.GZIP,
    records: [
      { key: null, value: JSON.stringify({ n: 0, from: "typescript" }), timestampMs: 6_000 },
      { key: "", value: null, timestampMs: 6_001 },
      { key: "k", value: "", headers: [{ key: "codec", value: "gzip" }], timestampMs: 6_002 },
    ],
  },
];

let dataDir: string;
let genDir: string;
let broker: Broker | undefined;
let c: ReturnType<typeof clients> | undefined;
let py: RunResult;
let report: Report;
/** Why setup failed: the first test fails with it, the others fail pointing at it (none skip). */
let setupError: Error | undefined;

/** The report, or a failure when setup failed. */
function ready(): Report {
  if (setupError) throw new Error(`interop setup failed (see the first test): ${setupError.message.split("\n")[0]}`);
  return report;
}

async function setup(): Promise<void> {
  genDir = tmpDir("rill-pygen-");
  await prepareStubs(genDir);

  dataDir = tmpDir("rill-interop-");
  broker = await Broker.start({ dataDir, listen: "127.0.0.1:0", shutdownGraceMs: 1000 });
  c = clients(broker.address);

  // Something TypeScript wrote, for Python to read: compressed batches through `record_batch`.
  const ct: CreateTopicsResponse = await call(
    c.admin,
    "createTopics",
    create(CreateTopicsRequestSchema, { topics: [{ name: FROM_TS, partitions: 2 }] }),
  );
  expect(ct.topics[0]!.error).toBeUndefined();
  for (const b of FROM_TS_BATCHES) {
    const recordBatch = encodeBatch(b.records, { compression: b.compression, nowMs: 1 });
    const r: ProduceResponse = await call(
      c.produce,
      "produce",
      create(ProduceRequestSchema, { topic: FROM_TS, partition: b.partition, recordBatch, acks: Acks.ALL }),
    );
    expect(r.partitions[0]!.error).toBeUndefined();
  }

  py = await run(PYTHON, [CLIENT, broker.address, genDir, "--read", FROM_TS], {
    cwd: ROOT,
    timeoutMs: PYTHON_TIMEOUT_MS,
    env: pythonEnv(),
  });
  const why = `${PYTHON} ${path.relative(ROOT, CLIENT)} ${broker.address} ${genDir} --read ${FROM_TS}: exit ${py.code}${py.signal ? ` signal ${py.signal}` : ""}${py.timedOut ? ` (timed out after ${PYTHON_TIMEOUT_MS} ms)` : ""}\nstderr:\n${py.stderr}\nstdout:\n${py.stdout.slice(0, 4000)}`;
  if (py.code !== 0) throw new Error(`the Python client failed: ${why}`);
  const last = py.stdout.trim().split("\n").pop() ?? "";
  try {
    report = JSON.parse(last) as Report;
  } catch {
    throw new Error(`the Python client printed no JSON report: ${why}`);
  }
  console.log(
    `python interop: Python ${report.python}, grpcio ${report.grpcio}, protobuf ${report.protobuf}; client ran ${py.ms} ms (${report.elapsed_ms} ms of calls)`,
  );
}

beforeAll(async () => {
  try {
    await setup();
  } catch (e) {
    setupError = e instanceof Error ? e : new Error(String(e));
  }
}, 120_000);

afterAll(async () => {
  c?.close();
  await broker?.close();
  if (dataDir) rmTmp(dataDir);
  if (genDir) rmTmp(genDir);
});

describe("interop: Python client generated from proto/", () => {
  it("has protoc, the gRPC Python plugin and Python's grpc; generated the stubs; ran the client, which reported success", () => {
    if (setupError) throw setupError;
    expect(report.ok).toBe(true);
    expect(report.topic).toBe("orders");
    expect(report.partitions).toBe(6);
    expect(report.produced.length).toBe(3 * 8 + 2);
  });

  it("routed every keyed record to the partition TypeScript's murmur2 gives, at consecutive offsets", () => {
    ready();
    const next = new Array<number>(report.partitions).fill(0);
    for (const r of report.produced) {
      expect(r.key, "every orders record has a key").not.toBeNull();
      expect(r.partition, `key ${JSON.stringify(r.key)}`).toBe(partitionForKey(enc(r.key!), report.partitions));
      expect(r.offset, `key ${JSON.stringify(r.key)} on partition ${r.partition}`).toBe(next[r.partition]!);
      next[r.partition]!++;
    }
    expect(report.end_offsets).toEqual(next);
    // The same key always lands on the same partition.
    const byKey = new Map<string, Set<number>>();
    for (const r of report.produced) byKey.set(r.key!, (byKey.get(r.key!) ?? new Set()).add(r.partition));
    for (const [k, ps] of byKey) expect(ps.size, `key ${JSON.stringify(k)}`).toBe(1);
  });

  it("fetched back in Python, per partition, in order, what it produced", () => {
    ready();
    for (let p = 0; p < report.partitions; p++) {
      const want = report.produced.filter((r) => r.partition === p).map((r) => [r.offset, r.key, r.value]);
      expect(
        report.fetched[String(p)]!.map((r) => [r.offset, r.key, r.value]),
        `partition ${p}`,
      ).toEqual(want);
    }
    const values = report.produced.filter((r) => r.value !== null).map((r) => JSON.parse(r.value!) as { order_id: number });
    expect(values.map((v) => v.order_id)).toEqual(Array.from({ length: values.length }, (_, i) => i + 1));
  });

  it("what Python produced reads the same from TypeScript, as RECORDS and as stored BATCHES", async () => {
    ready();
    const partitions = Array.from({ length: report.partitions }, (_, p) => ({ topic: report.topic, partition: p, offset: 0n }));
    const asRecords: FetchResponse = await call(
      c!.fetch,
      "fetch",
      create(FetchRequestSchema, { partitions, format: RecordFormat.RECORDS }),
    );
    const asBatches: FetchResponse = await call(
      c!.fetch,
      "fetch",
      create(FetchRequestSchema, { partitions, format: RecordFormat.BATCHES }),
    );
    for (let p = 0; p < report.partitions; p++) {
      const want = report.produced
        .filter((r) => r.partition === p)
        .map((r) => ({
          offset: r.offset,
          key: r.key,
          value: r.value,
          headers: r.headers,
          ...(r.timestamp_ms !== null ? { ts: r.timestamp_ms } : {}),
        }));
      const fp = asRecords.partitions[p]!;
      expect(fp.error).toBeUndefined();
      expect(fp.highWatermark).toBe(BigInt(report.end_offsets[p]!));
      const got = fp.records.map((r, i) => ({
        offset: Number(r.offset),
        key: dec(r.key),
        value: dec(r.value),
        headers: r.headers.map((h) => [h.key, dec(h.value)]),
        ...(want[i]?.ts !== undefined ? { ts: Number(r.timestampMs) } : {}),
      }));
      expect(got, `partition ${p} (RECORDS)`).toEqual(want);
      // The batches the broker built from Python's `records` are valid Kafka batches.
      const bytes = Buffer.from(asBatches.partitions[p]!.recordBatches);
      const fromBatches: Array<{ offset: number; key: string | null; value: string | null }> = [];
      for (let pos = 0; pos < bytes.length; pos += readBatchHeader(bytes, pos).size) {
        for (const r of decodeRecords(bytes, pos)) fromBatches.push({ offset: r.offset, key: dec(r.key), value: dec(r.value) });
      }
      expect(fromBatches, `partition ${p} (BATCHES)`).toEqual(want.map((w) => ({ offset: w.offset, key: w.key, value: w.value })));
    }
  });

  it("looked offsets up by timestamp: records at 1000, 2000, 3000, lookup 1500 -> the 2000 record; earliest, latest", async () => {
    const ts = ready().timestamps;
    expect(ts.topic).toBe("ticks");
    for (const p of [0, 1]) {
      const at = (t: number) => ts.lookups.find((l) => l.partition === p && l.timestamp_ms === t);
      expect(at(1500), `partition ${p}`).toMatchObject({ offset: 1, record_timestamp_ms: 2000 });
      expect(at(1000), `partition ${p}`).toMatchObject({ offset: 0, record_timestamp_ms: 1000 });
      expect(at(3001), `partition ${p}`).toMatchObject({ offset: -1, record_timestamp_ms: -1 });
      expect(ts.lookups.find((l) => l.partition === p && l.spec === "EARLIEST")?.offset).toBe(0);
      expect(ts.lookups.find((l) => l.partition === p && l.spec === "LATEST")?.offset).toBe(3);
    }
    // The same lookups from TypeScript agree.
    const r: ListOffsetsResponse = await call(
      c!.fetch,
      "listOffsets",
      create(ListOffsetsRequestSchema, {
        partitions: [0, 1].flatMap((partition) => [
          { topic: "ticks", partition, spec: OffsetSpec.TIMESTAMP, timestampMs: 1500n },
          { topic: "ticks", partition, spec: OffsetSpec.EARLIEST },
          { topic: "ticks", partition, spec: OffsetSpec.LATEST },
        ]),
      }),
    );
    expect(r.partitions.map((x) => [x.partition, Number(x.offset), x.error?.name])).toEqual([
      [0, 1, undefined],
      [0, 0, undefined],
      [0, 3, undefined],
      [1, 1, undefined],
      [1, 0, undefined],
      [1, 3, undefined],
    ]);
    expect(report.list_offsets.earliest).toEqual(new Array(report.partitions).fill(0));
    expect(report.list_offsets.latest).toEqual(report.end_offsets);
  });

  it("a Produce to an unknown topic is NOT_FOUND with rill-error-name UNKNOWN_TOPIC_OR_PARTITION in the trailers", () => {
    expect(ready().bad_input.code).toBe("NOT_FOUND");
    expect(report.bad_input.rill_error_name).toBe("UNKNOWN_TOPIC_OR_PARTITION");
    expect(report.bad_input.rill_error_code).toBe("3");
    expect(report.bad_input.details).toMatch(/topic/);
  });

  it("Python reads LZ4 and gzip batches that TypeScript built, decoded by the broker (RECORDS)", () => {
    expect(ready().read?.topic).toBe(FROM_TS);
    const want = FROM_TS_BATCHES.flatMap((b) =>
      b.records.map((r, i) => ({
        partition: b.partition,
        offset: i,
        timestamp_ms: r.timestampMs,
        key: r.key === undefined || r.key === null ? null : String(r.key),
        value: r.value === null ? null : String(r.value),
        headers: (r.headers ?? []).map((h) => [h.key, h.value === null ? null : String(h.value)]),
      })),
    );
    expect(report.read!.records).toEqual(want);
  });
});
