/**
 * The load of `producer-sweep.ts`: producers and Subscribe readers kept open across the steps of
 * a rate ladder, and one step at a time.
 *
 * The life of a record: producer p owns some partitions (those its broker leads). In a paced
 * step of R records/s, its share is R / producers, and its record i is *scheduled* at
 * t0 + i / share. Every `lingerMs` the producer sends what is due (several requests of at most
 * `batchRecords` when it fell behind), each record's value starting with its scheduled time
 * (f64, ms of `performance.now()`) and the step's number (u32). When `inFlightMax` requests
 * wait for their answers it sends nothing until one comes back, and the records keep falling
 * due: the schedule never waits for the broker (open loop), so no latency hides behind a
 * producer that slowed down (coordinated omission). A Subscribe stream per leader reads every
 * record back in the same process and clock.
 *
 * Per step, three HDR histograms (µs):
 * - request: from the time a request was due (its last record's scheduled time) to its answer
 *   — what the producer's caller waits, including time the request spent unsent behind others;
 * - service: from the request's write to its answer (what a closed-loop tool reports);
 * - end to end: from each record's scheduled time to the moment the reader decodes it.
 * Records and requests due in the first `warmupSeconds` of a step are not measured.
 *
 * A closed-loop step (`rate: null`) measures the maximum: each producer keeps `closedInFlight`
 * requests of `batchRecords` in flight for `seconds`, records scheduled when sent; its rate
 * counts the records answered after the warm-up, over the time from the warm-up's end.
 */
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import * as hdr from "hdr-histogram-js";
import { RecordFormat } from "../src/gen/rill/v1/common_pb.ts";
import { FetchService, SubscribeRequestSchema, type FetchedPartition } from "../src/gen/rill/v1/fetch_service_pb.ts";
import { Acks, ProduceService, type ProduceStreamResponse } from "../src/gen/rill/v1/produce_service_pb.ts";
import { fetchClientCodecs, produceClientCodecs } from "../src/client/wire-codec.ts";
import { clientConstructor } from "../src/protocol/grpc-service.ts";
import { Compression, RecordCursor, encodeBatch, forEachBatch } from "../src/protocol/record-batch.ts";
import { channelOptions, creds, percentilesMs } from "./lib.ts";

/** Bytes at the start of every value: scheduled time (f64) and step number (u32). */
export const VALUE_HEADER_BYTES = 12;

/** Who sends and who reads: producers with their partitions, readers with the partitions they read. */
export interface LoadTarget {
  readonly topic: string;
  readonly producers: readonly { readonly address: string; readonly partitions: readonly number[] }[];
  readonly readers: readonly { readonly address: string; readonly partitions: readonly number[] }[];
}

export interface LoadOptions {
  readonly recordSize: number;
  readonly batchRecords: number;
  readonly compression: "none" | "lz4";
  readonly acks: "leader" | "all" | "none";
  readonly lingerMs: number;
  /** Requests in flight per producer in a paced step. */
  readonly inFlightMax: number;
  /** Requests in flight per producer in the closed-loop step. */
  readonly closedInFlight: number;
}

export interface StepSpec {
  /** Records/s over all producers; null: closed loop, as fast as the broker answers. */
  readonly rate: number | null;
  readonly seconds: number;
  readonly warmupSeconds: number;
}

type Percentiles = ReturnType<typeof percentilesMs>;

export interface StepResult {
  offeredRecordsPerSec: number | null;
  achievedRecordsPerSec: number;
  records: number;
  seconds: number;
  requests: number;
  errors: number;
  firstError?: string;
  requestMs: Percentiles;
  serviceMs: Percentiles;
  e2eMs: Percentiles;
  /** Records whose end-to-end latency was measured (after the warm-up). */
  measuredRecords: number;
  /** The longest a due request waited to be written (the producer behind its schedule), ms. */
  sendLagMsMax: number;
}

const histogram = (): ReturnType<typeof hdr.build> =>
  hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });

/** What one step counts while it runs. */
interface StepState {
  readonly index: number;
  readonly t0: number;
  readonly measureFrom: number;
  readonly request: ReturnType<typeof hdr.build>;
  readonly service: ReturnType<typeof hdr.build>;
  readonly e2e: ReturnType<typeof hdr.build>;
  sentRecords: number;
  ackedRecords: number;
  /** Records answered after the warm-up (the closed loop's rate counts only these). */
  ackedMeasured: number;
  consumedRecords: number;
  requests: number;
  errors: number;
  firstError: string;
  lastAckAt: number;
  sendLagMsMax: number;
  /** Called when a reader has counted records (the step may be complete). */
  onConsumed: () => void;
}

interface InFlight {
  readonly dueAt: number;
  readonly sentAt: number;
  readonly records: number;
}

/** One producer connection and its ProduceStream, kept across steps. */
class PacedProducer {
  private readonly client: { close(): void };
  private readonly stream: { write(m: unknown): boolean; end(): void };
  private readonly inFlight = new Map<bigint, InFlight>();
  private nextId = 0n;
  private next = 0;
  private onAnswer: () => void = () => {};
  private failure: Error | null = null;
  private readonly template: Buffer;

  constructor(
    address: string,
    index: number,
    private readonly partitions: readonly number[],
    private readonly topic: string,
    private readonly o: LoadOptions,
    private readonly stepOf: () => StepState,
  ) {
    const Producer = clientConstructor(ProduceService, produceClientCodecs);
    // A local subchannel pool: each producer gets its own connection, not a shared one.
    const client = new Producer(address, creds(), { ...channelOptions(), "grpc.use_local_subchannel_pool": 1, "rill.bench.sweep": index });
    const stream = client.produceStream();
    this.client = client;
    this.stream = stream;
    this.template = Buffer.alloc(o.batchRecords * o.recordSize, ".");
    stream.on("data", (m: ProduceStreamResponse) => this.answered(m));
    stream.on("error", (e: Error) => {
      this.failure ??= e;
      this.onAnswer();
    });
  }

  private answered(m: ProduceStreamResponse): void {
    const f = this.inFlight.get(m.requestId);
    if (f === undefined) {
      this.failure ??= new Error(`answer to unknown request ${m.requestId}`);
      return this.onAnswer();
    }
    this.inFlight.delete(m.requestId);
    const s = this.stepOf();
    const now = performance.now();
    if (f.dueAt >= s.measureFrom) {
      s.request.recordValue(Math.max(1, Math.round((now - f.dueAt) * 1000)));
      s.service.recordValue(Math.max(1, Math.round((now - f.sentAt) * 1000)));
    }
    if (m.result.case !== "response" || m.result.value.partitions.some((p) => p.error)) {
      s.errors++;
      const e = m.result.case === "response" ? m.result.value.partitions.find((p) => p.error)?.error : m.result.value;
      s.firstError ||= e && "name" in e ? `${e.name}: ${e.message}` : `answer ${m.result.case ?? "empty"}`;
    }
    s.ackedRecords += f.records;
    if (now >= s.measureFrom) s.ackedMeasured += f.records;
    s.lastAckAt = now;
    this.onAnswer();
  }

  /** Sends records `first .. first + n - 1` of the step, scheduled at `timeOf(i)`. */
  private send(s: StepState, n: number, first: number, timeOf: (i: number) => number): void {
    const size = this.o.recordSize;
    const values = Buffer.from(this.template.subarray(0, n * size));
    const records = new Array<{ key: null; value: Buffer }>(n);
    for (let k = 0; k < n; k++) {
      values.writeDoubleLE(timeOf(first + k), k * size);
      values.writeUInt32LE(s.index, k * size + 8);
      records[k] = { key: null, value: values.subarray(k * size, (k + 1) * size) };
    }
    const batch = encodeBatch(records, {
      compression: this.o.compression === "lz4" ? Compression.LZ4 : Compression.NONE,
      nowMs: Date.now(),
    });
    const id = this.nextId++;
    const now = performance.now();
    const dueAt = timeOf(first + n - 1);
    s.sendLagMsMax = Math.max(s.sendLagMsMax, now - dueAt);
    this.inFlight.set(id, { dueAt, sentAt: now, records: n });
    const partition = this.partitions[this.next++ % this.partitions.length]!;
    const acks = this.o.acks === "all" ? Acks.ALL : this.o.acks === "none" ? Acks.NONE : Acks.LEADER;
    this.stream.write({ requestId: id, request: { topic: this.topic, partition, recordBatch: batch, acks } });
    s.sentRecords += n;
    s.requests++;
  }

  /**
   * Runs this producer's share of step `s`: `rate` records/s for `seconds` on the open-loop
   * schedule, or (rate null) closed loop. Resolves once every request it sent is answered.
   */
  run(s: StepState, rate: number | null, seconds: number): Promise<void> {
    const o = this.o;
    const total = rate === null ? Number.POSITIVE_INFINITY : Math.max(1, Math.round(rate * seconds));
    const endAt = s.t0 + seconds * 1000;
    const interval = rate === null ? 0 : 1000 / rate;
    let sent = 0;
    let timer: ReturnType<typeof setTimeout> | null = null;
    return new Promise<void>((resolve, reject) => {
      const finish = (): void => {
        if (timer) clearTimeout(timer);
        this.onAnswer = () => {};
        if (this.failure) reject(this.failure);
        else resolve();
      };
      const pump = (): void => {
        timer = null;
        if (this.failure) return finish();
        const now = performance.now();
        if (rate === null) {
          while (now < endAt && this.inFlight.size < o.closedInFlight) {
            const at = performance.now();
            this.send(s, o.batchRecords, sent, () => at);
            sent += o.batchRecords;
          }
          if (now >= endAt && this.inFlight.size === 0) return finish();
          return;
        }
        const due = Math.min(total, Math.floor((now - s.t0) / interval) + 1);
        while (sent < due && this.inFlight.size < o.inFlightMax) {
          const n = Math.min(due - sent, o.batchRecords);
          this.send(s, n, sent, (i) => s.t0 + i * interval);
          sent += n;
        }
        if (sent >= total) {
          if (this.inFlight.size === 0) finish();
          return;
        }
        // Behind and blocked by the in-flight limit: the next answer pumps; else the next tick.
        if (sent >= due || this.inFlight.size < o.inFlightMax) timer ??= setTimeout(pump, o.lingerMs);
      };
      this.onAnswer = () => {
        if (timer === null || this.failure) pump();
      };
      pump();
    });
  }

  close(): void {
    this.stream.end();
    this.client.close();
  }
}

/** A Subscribe stream over some partitions of one broker, counting records into their step. */
class Reader {
  private readonly client: { close(): void };
  private readonly call: { cancel(): void };
  private readonly cursor = new RecordCursor();
  private readonly next = new Map<number, number>();
  failure: Error | null = null;

  constructor(address: string, topic: string, partitions: readonly number[], stepOf: (index: number) => StepState | undefined) {
    const client = new (clientConstructor(FetchService, fetchClientCodecs))(address, creds(), channelOptions());
    for (const p of partitions) this.next.set(p, 0);
    const call = client.subscribe(
      create(SubscribeRequestSchema, {
        partitions: partitions.map((partition) => ({ topic, partition, offset: 0n })),
        format: RecordFormat.BATCHES,
        maxWaitMs: 0,
      }),
    );
    this.client = client;
    this.call = call;
    call.on("data", (m: { partitions: FetchedPartition[] }) => {
      const now = performance.now();
      const touched = new Set<StepState>();
      for (const p of m.partitions) {
        if (p.error) {
          this.failure ??= new Error(`subscribe ${topic}/${p.partition}: ${p.error.message}`);
          continue;
        }
        const bytes = p.recordBatches as Buffer;
        let expected = this.next.get(p.partition) ?? 0;
        forEachBatch(bytes, (h, pos) => {
          if (h.lastOffset < expected) return;
          this.cursor.reset(bytes, pos);
          while (this.cursor.next()) {
            if (this.cursor.offset < expected) continue;
            const at = this.cursor.valueStart;
            const s = stepOf(this.cursor.buf.readUInt32LE(at + 8));
            if (s) {
              const scheduled = this.cursor.buf.readDoubleLE(at);
              if (scheduled >= s.measureFrom) s.e2e.recordValue(Math.max(1, Math.round((now - scheduled) * 1000)));
              s.consumedRecords++;
              touched.add(s);
            }
            expected = this.cursor.offset + 1;
          }
        });
        this.next.set(p.partition, expected);
      }
      for (const s of touched) s.onConsumed();
    });
    call.on("error", (e: grpc.ServiceError) => {
      if (e.code !== grpc.status.CANCELLED) this.failure ??= e;
    });
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }
}

/** Producers and readers of one sweep; `step()` runs one step of the ladder. */
export class SweepLoad {
  private readonly steps = new Map<number, StepState>();
  private readonly producers: PacedProducer[];
  private readonly readers: Reader[];
  private current: StepState | null = null;
  private index = 0;

  private constructor(target: LoadTarget, o: LoadOptions) {
    if (o.recordSize < VALUE_HEADER_BYTES) throw new Error(`--record-size: at least ${VALUE_HEADER_BYTES} bytes, got ${o.recordSize}`);
    this.readers = target.readers.map((r) => new Reader(r.address, target.topic, r.partitions, (i) => this.steps.get(i)));
    this.producers = target.producers.map((p, i) => new PacedProducer(p.address, i, p.partitions, target.topic, o, () => this.current!));
  }

  /** Opens the producers' and readers' streams; waits `settleMs` for the Subscribe streams to reach their brokers. */
  static async open(target: LoadTarget, o: LoadOptions, settleMs = 300): Promise<SweepLoad> {
    const load = new SweepLoad(target, o);
    await new Promise((r) => setTimeout(r, settleMs));
    return load;
  }

  /**
   * Runs one step; resolves when every request is answered and every record sent has been read
   * back (within `drainSeconds` of the last answer, else it throws).
   */
  async step(spec: StepSpec, drainSeconds = 30): Promise<StepResult> {
    const t0 = performance.now() + 5;
    let wake: () => void = () => {};
    const s: StepState = {
      index: ++this.index,
      t0,
      measureFrom: t0 + spec.warmupSeconds * 1000,
      request: histogram(),
      service: histogram(),
      e2e: histogram(),
      sentRecords: 0,
      ackedRecords: 0,
      ackedMeasured: 0,
      consumedRecords: 0,
      requests: 0,
      errors: 0,
      firstError: "",
      lastAckAt: t0,
      sendLagMsMax: 0,
      onConsumed: () => wake(),
    };
    this.steps.set(s.index, s);
    this.current = s;
    await new Promise((r) => setTimeout(r, Math.max(0, t0 - performance.now())));
    const share = spec.rate === null ? null : spec.rate / this.producers.length;
    await Promise.all(this.producers.map((p) => p.run(s, share, spec.seconds)));
    const drainUntil = performance.now() + drainSeconds * 1000;
    while (s.consumedRecords < s.sentRecords && performance.now() < drainUntil) {
      const failed = this.readers.find((r) => r.failure);
      if (failed) throw failed.failure!;
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 50);
      });
    }
    if (s.consumedRecords < s.sentRecords)
      throw new Error(`step ${s.index}: read back ${s.consumedRecords} of ${s.sentRecords} records within ${drainSeconds} s`);
    this.steps.delete(s.index);
    const seconds = (s.lastAckAt - t0) / 1000;
    // Closed loop: the rate after the warm-up (a cold start is not the maximum); paced: the whole step.
    const measuredSeconds = (s.lastAckAt - s.measureFrom) / 1000;
    const achieved =
      spec.rate === null && s.ackedMeasured > 0 && measuredSeconds > 0 ? s.ackedMeasured / measuredSeconds : s.ackedRecords / seconds;
    return {
      offeredRecordsPerSec: spec.rate,
      achievedRecordsPerSec: achieved,
      records: s.ackedRecords,
      seconds,
      requests: s.requests,
      errors: s.errors,
      ...(s.firstError ? { firstError: s.firstError } : {}),
      requestMs: percentilesMs(s.request),
      serviceMs: percentilesMs(s.service),
      e2eMs: percentilesMs(s.e2e),
      measuredRecords: s.e2e.totalCount,
      sendLagMsMax: s.sendLagMsMax,
    };
  }

  close(): void {
    for (const p of this.producers) p.close();
    for (const r of this.readers) r.close();
  }
}
