/**
 * Fuzz target "produce": whole Produce requests through the broker's own path — the client's
 * encoder (src/client/wire-codec.ts), sometimes byte-mutated, the server's hand-written decoder
 * (src/rpc/wire-codec.ts), `toProduceInput` and the ProduceHandler — on a fresh in-memory broker
 * per case (two partitions; a default, a compacted or a LogAppendTime topic). A case is a
 * sequence of one to three requests through one handler (its sticky partitions and producer
 * state carry over), through the unary codec or the ProduceStream one (request ids). The payload is a
 * fuzzed record batch (see batch-model.ts) or fuzzed plain records; the request fields (partition,
 * acks, timeout, producer id/epoch/sequence) take edge values too.
 *
 * Properties:
 * - decoding and producing throw nothing but catalog RillErrors (or the decoder's
 *   WireFormatError), and no promise rejects unhandled;
 * - a request refused as a whole leaves every stored byte unchanged (a snapshot of the whole
 *   in-memory file system before and after), and so does one whose every partition failed;
 * - an accepted record batch reads back byte for byte from its partition (the fields the leader
 *   rewrites — baseOffset, partitionLeaderEpoch, and for LogAppendTime the timestamp fields and
 *   CRC — excepted);
 * - with `strictStored` (the default, since produce.validation=full; `--lenient` turns it off),
 *   everything stored must also decode record by record: a poisoned partition fails.
 */
import fc from "fast-check";
import { ManualClock } from "../../../src/base/clock.ts";
import { encodeProduceRequest, encodeProduceStreamRequest, type ProduceRequestInput } from "../../../src/client/wire-codec.ts";
import type { ProduceRequest } from "../../../src/gen/rill/v1/produce_service_pb.ts";
import { LocalMetadataStore } from "../../../src/metadata/store.ts";
import { readBatchHeader } from "../../../src/protocol/record-batch.ts";
import { ReplicaManager } from "../../../src/replication/replica-manager.ts";
import { toProduceInput } from "../../../src/rpc/produce-service.ts";
import { decodeProduceRequest, decodeProduceStreamRequest, WireFormatError } from "../../../src/rpc/wire-codec.ts";
import { PRODUCER_METADATA_WAIT_MS_DEFAULT, ProduceHandler } from "../../../src/service/produce.ts";
import type { ProduceResult } from "../../../src/service/produce-types.ts";
import { MemoryFileSystem } from "../../../src/storage/fs.ts";
import { ManualTimers } from "../../unit/service/helpers.ts";
import { openMemoryLogs } from "../../unit/storage/helpers.ts";
import { applyEdits, type BatchInput, batchBytes, batchInput, byteEdits, type ByteEdit, edgyInt } from "../lib/batch-model.ts";
import { attempt, describeError, expectCatalogError, type FuzzTarget, hex, holds, PropertyFailure, showJson } from "../lib/harness.ts";
import { readAll } from "./batch.ts";

/** Turn on the "everything stored decodes" property (issue 14's poisoned partition). */
export const produceOptions = { strictStored: true };

const TOPIC_CONFIGS: Record<string, Record<string, string>> = {
  plain: {},
  compact: { "cleanup.policy": "compact" },
  appendTime: { "message.timestamp.type": "LogAppendTime" },
};

interface RecordIn {
  key: Uint8Array | undefined;
  value: Uint8Array | undefined;
  headers: Array<{ key: string; value: Uint8Array | undefined }>;
  timestampMs: bigint | undefined;
}

/** One request: its fields, and raw edits of its encoded bytes. */
export interface ProduceCase {
  readonly topic: string;
  readonly batch: BatchInput | null;
  readonly records: readonly RecordIn[];
  readonly partition: number | undefined;
  readonly acks: number;
  readonly timeoutMs: number;
  readonly producerId: bigint | undefined;
  readonly producerEpoch: number;
  readonly baseSequence: number;
  readonly requestEdits: readonly ByteEdit[];
}

const bytesOrNone = fc.option(fc.uint8Array({ maxLength: 16 }), { nil: undefined, freq: 4 });
const recordIn: fc.Arbitrary<RecordIn> = fc.record({
  key: bytesOrNone,
  value: bytesOrNone,
  headers: fc.array(fc.record({ key: fc.string({ maxLength: 6 }), value: bytesOrNone }), { maxLength: 2 }),
  timestampMs: fc.option(
    fc.oneof(
      fc.constantFrom(-2n, -1n, 0n, 1_700_000_000_000n, 2n ** 53n, 2n ** 63n - 1n, -(2n ** 63n)),
      fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
    ),
    { nil: undefined, freq: 3 },
  ),
});

const produceCase: fc.Arbitrary<ProduceCase> = fc.record({
  topic: fc.constantFrom("t", "t", "t", "missing", ""),
  batch: fc.option(batchInput, { nil: null, freq: 4 }),
  records: fc.array(recordIn, { maxLength: 4 }),
  partition: fc.oneof(fc.constant(undefined), fc.constantFrom(0, 1), fc.constantFrom(-1, 2, 2 ** 31 - 1)),
  acks: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(0, 1, 2, 3) }, { weight: 1, arbitrary: fc.constantFrom(-1, 4, 99) }),
  timeoutMs: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constantFrom(-1, 1, 300_001) }),
  producerId: fc.option(fc.constantFrom(-1n, 0n, 1n, 2n ** 62n), { nil: undefined, freq: 4 }),
  producerEpoch: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: edgyInt.map((v) => v | 0) }),
  baseSequence: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: edgyInt.map((v) => v | 0) }),
  requestEdits: fc.oneof({ weight: 5, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: byteEdits }),
});

function request(c: ProduceCase): ProduceRequestInput {
  return {
    topic: c.topic,
    partition: c.partition,
    records: c.records.map((r) => ({
      $typeName: "rill.v1.Record" as const,
      ...(r.key !== undefined ? { key: r.key } : {}),
      ...(r.value !== undefined ? { value: r.value } : {}),
      headers: r.headers.map((h) => ({
        $typeName: "rill.v1.Header" as const,
        key: h.key,
        ...(h.value !== undefined ? { value: h.value } : {}),
      })),
      ...(r.timestampMs !== undefined ? { timestampMs: r.timestampMs } : {}),
    })),
    recordBatch: c.batch === null ? undefined : batchBytes(c.batch),
    acks: c.acks as ProduceRequestInput["acks"],
    timeoutMs: c.timeoutMs,
    producerId: c.producerId,
    producerEpoch: c.producerEpoch,
    baseSequence: c.baseSequence,
  };
}

/** The request's bytes as the server receives them. */
function requestBytes(c: ProduceCase): Buffer {
  const b = encodeProduceRequest(request(c));
  return c.requestEdits.length === 0 ? b : applyEdits(b, c.requestEdits);
}

/** One broker on an in-memory file system, with topic "t" of two partitions led here. */
export interface Broker {
  readonly fs: MemoryFileSystem;
  readonly rm: ReplicaManager;
  /** The broker's timers: time passes only when the fuzzer moves it. */
  readonly timers: ManualTimers;
  close(): Promise<void>;
}

/** Opens a fresh in-memory broker with topic "t" (two partitions) of `configs`. */
export async function openBroker(configs: Record<string, string>): Promise<Broker> {
  const fs = new MemoryFileSystem();
  const clock = new ManualClock();
  const logs = openMemoryLogs(fs, clock);
  const store = LocalMetadataStore.open(fs, "/d", clock);
  const timers = new ManualTimers(clock);
  const rm = new ReplicaManager(logs, store, clock, timers, 1);
  await store.commit(() => [
    { type: "topic", v: 1, name: "t", topicId: "1".padStart(32, "0"), configs },
    ...[0, 1].map((partition) => ({
      type: "partition" as const,
      v: 1 as const,
      topic: "t",
      partition,
      replicas: [1],
      isr: [1],
      leader: 1,
      leaderEpoch: 0,
      partitionEpoch: 0,
    })),
  ]);
  return {
    fs,
    rm,
    timers,
    close: async () => {
      rm.close();
      await logs.close();
      await store.close();
    },
  };
}

/** Every file of the in-memory file system as hex, by path. */
export function snapshotAll(fs: MemoryFileSystem, dir = "/"): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of fs.readdir(dir)) {
    const p = fs.join(dir, name);
    if (fs.isDir(p)) for (const [k, v] of snapshotAll(fs, p)) out.set(k, v);
    else out.set(p, Buffer.from(fs.bytes(p)).toString("hex"));
  }
  return out;
}

function sameFiles(a: Map<string, string>, b: Map<string, string>): string | null {
  for (const [k, v] of a) if (b.get(k) !== v) return `${k} changed`;
  for (const k of b.keys()) if (!a.has(k)) return `${k} appeared`;
  return null;
}

/** The stored batches of t-`partition` from `offset`, whole. */
function storedBatches(rm: ReplicaManager, partition: number, offset: number): Buffer[] {
  const d = rm.readPartition({ topic: "t", partition, offset, maxBytes: 1 << 22 });
  if (d.error !== null) expectCatalogError(d.error);
  const out: Buffer[] = [];
  for (const chunk of d.read?.chunks ?? []) {
    for (let pos = 0; pos < chunk.length; ) {
      const size = readBatchHeader(chunk, pos).size;
      out.push(chunk.subarray(pos, pos + size));
      pos += size;
    }
  }
  return out;
}

function logEnd(rm: ReplicaManager, partition: number): number {
  return rm.readPartition({ topic: "t", partition, offset: 0, maxBytes: 1 }).highWatermark;
}

/** `b` with the bytes the leader may rewrite zeroed. */
function comparable(b: Buffer, appendTime: boolean): Buffer {
  const out = Buffer.from(b);
  out.fill(0, 0, 8); // baseOffset
  out.fill(0, 12, 16); // partitionLeaderEpoch
  if (appendTime) {
    out.fill(0, 17, 23); // crc, attributes (timestamp type)
    out.fill(0, 35, 43); // maxTimestamp
  }
  return out;
}

/** A sequence of requests on one broker and one handler; through the stream's codec or the unary one. */
export interface ProduceSequence {
  readonly topicKind: keyof typeof TOPIC_CONFIGS;
  readonly viaStream: boolean;
  readonly requests: readonly ProduceCase[];
}

/** The request as the server decodes it (null: the decoder refused it, as it may). */
function decodeCase(c: ProduceCase, streamId: number | null): ProduceRequest | null {
  if (streamId === null) {
    const r = attempt(() => decodeProduceRequest(requestBytes(c)), [WireFormatError]);
    return "ok" in r ? r.ok : null;
  }
  const r = attempt(() => decodeProduceStreamRequest(streamBytes(c, streamId)), [WireFormatError]);
  if ("err" in r) return null;
  holds(r.ok.requestId === BigInt(streamId) || c.requestEdits.length > 0, "ProduceStream request id changed");
  return r.ok.request ?? null;
}

function streamBytes(c: ProduceCase, id: number): Buffer {
  const b = encodeProduceStreamRequest({ requestId: id, request: request(c) });
  return c.requestEdits.length === 0 ? b : applyEdits(b, c.requestEdits);
}

async function check(seq: ProduceSequence): Promise<void> {
  const broker = await openBroker(TOPIC_CONFIGS[seq.topicKind]!);
  try {
    const handler = new ProduceHandler(broker.rm);
    for (const [i, c] of seq.requests.entries()) await checkOne(c, seq.topicKind, broker, handler, seq.viaStream ? i + 1 : null);
  } finally {
    await broker.close();
  }
}

/** One request of a sequence, on `broker` through `handler` (shared by the sequence, as on one stream). */
async function checkOne(
  c: ProduceCase,
  topicKind: string,
  broker: Broker,
  handler: ProduceHandler,
  streamId: number | null,
): Promise<void> {
  const decoded = decodeCase(c, streamId);
  if (decoded === null) return;
  {
    const before = snapshotAll(broker.fs);
    const ends = [0, 1].map((p) => logEnd(broker.rm, p));
    const input = toProduceInput(decoded);
    let result: ProduceResult | null = null;
    try {
      const pending = handler.produce(input);
      // A producer id or epoch this broker never issued is waited for (a lagging leader's
      // metadata may not have it yet) until the bound, then refused: let that time pass.
      if (broker.rm.producerMetadataWaiting > 0) broker.timers.advance(PRODUCER_METADATA_WAIT_MS_DEFAULT);
      result = await withDeadline(pending, 5000);
    } catch (e) {
      if (e instanceof PropertyFailure) throw e;
      expectCatalogError(e);
    }
    const failedWhole = result === null || (result.partitions.length > 0 && result.partitions.every((p) => p.error !== null));
    for (const p of result?.partitions ?? []) if (p.error !== null) expectCatalogError(p.error);
    if (failedWhole) {
      const diff = sameFiles(before, snapshotAll(broker.fs));
      holds(diff === null, () => `a refused request changed stored bytes: ${diff}`);
    }
    if (result !== null && input.recordBatch !== null) {
      for (const p of result.partitions) {
        if (p.error !== null) continue;
        const stored = storedBatches(broker.rm, p.partition, ends[p.partition]!);
        holds(stored.length === 1, `accepted batch: ${stored.length} batches stored after it`);
        const appendTime = topicKind === "appendTime";
        holds(
          comparable(stored[0]!, appendTime).equals(comparable(input.recordBatch, appendTime)),
          () => `accepted batch did not read back byte for byte: sent ${hex(input.recordBatch!)}, stored ${hex(stored[0]!)}`,
        );
      }
    }
    if (produceOptions.strictStored) {
      for (const p of [0, 1]) {
        for (const b of storedBatches(broker.rm, p, 0)) {
          const r = attempt(() => readAll(b));
          holds("ok" in r, () => `partition ${p} stores a batch that cannot be read: ${describeError((r as { err: Error }).err)}`);
        }
      }
    }
  }
}

async function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new PropertyFailure(`produce did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** The "produce" target. */
export const produceTarget: FuzzTarget<ProduceSequence> = {
  name: "produce",
  doc: "Produce requests (batch of each codec or records; edge fields; mutated bytes) through decode + ProduceHandler on an in-memory broker",
  ciCases: 500,
  arbitrary: fc.record({
    topicKind: fc.constantFrom("plain", "plain", "compact", "appendTime"),
    viaStream: fc.boolean(),
    requests: fc.array(produceCase, { minLength: 1, maxLength: 3 }),
  }),
  open: () => null,
  check,
  show: (seq) =>
    `${seq.requests.map((c, i) => `request ${i + 1} ${hex(seq.viaStream ? streamBytes(c, i + 1) : requestBytes(c))}`).join("\n")}\nsequence ${showJson(seq)}`,
};
