/**
 * `Producer`: batches records per partition, encodes each batch as a Kafka RecordBatch v2 (LZ4
 * or gzip when asked) and sends it as `record_batch` bytes over a pipelined ProduceStream.
 *
 * Life of a record:
 * 1. `send(record)` checks it, stamps its timestamp (the producer's clock unless given) and
 *    queues it on the intake, a FIFO, so records keep the order of `send` calls even when the
 *    first send to a topic waits for its partition count (metadata.ts).
 * 2. The intake takes the record's size from the buffer budget (`bufferBytes`): while the
 *    buffer is full the record waits — the producer never holds more than `bufferBytes` of
 *    records in batches — and open batches are sealed at once, since lingering cannot help.
 * 3. The partitioner (partitioner.ts) picks the partition: explicit, murmur2 of the key, or the
 *    topic's sticky partition for null keys. The record joins that partition's open batch.
 * 4. A batch is sealed when it reaches `batchBytes` or has lingered `lingerMs`; it is encoded
 *    then and queued for its partition.
 * 5. Each partition has at most ONE batch in flight, so batches of a partition are written in
 *    order even across retries (idempotence, which would allow more, comes later). Batches of
 *    different partitions are pipelined on one stream, up to `maxInFlightRequests`.
 * 6. A retriable failure (errors.ts `isRetriable`: connection lost, NOT_LEADER_OR_FOLLOWER,
 *    REQUEST_TIMED_OUT, ...) re-sends the same bytes after a backoff (retry.ts), up to
 *    `retries` times; anything else fails the batch's records. Without idempotence a retry after
 *    a lost response may store the batch twice (at-least-once).
 * 7. The answer resolves each record's promise with its partition and offset (baseOffset + its
 *    index; -1 when the broker reports no offset, as acks "none" allows) and gives its bytes
 *    back to the budget.
 *
 * `flush()` seals every open batch and waits for everything sent before it; `close()` flushes,
 * refuses new records and closes the connection.
 */

import type { Clock } from "../base/clock.ts";
import { systemClock } from "../base/clock.ts";
import { Errors, RillError } from "../base/errors.ts";
import { Acks } from "../gen/rill/v1/produce_service_pb.ts";
import { Compression, HEADER_SIZE, encodeBatch } from "../storage/record-batch.ts";
import type { RecordHeaderInput, RecordInput } from "../storage/record-batch.ts";
import { ByteBudget } from "./byte-budget.ts";
import { type ClientOptions, type Connection, connect } from "./connection.ts";
import { checkChoice, checkInt, toNumber } from "./convert.ts";
import { ClientClosedError, fromErrorDetail, isRetriable } from "./errors.ts";
import { Fifo } from "./fifo.ts";
import { MetadataCache } from "./metadata.ts";
import { Partitioner } from "./partitioner.ts";
import { ProduceChannel } from "./produce-channel.ts";
import { backoffMs } from "./retry.ts";

const MiB = 1024 * 1024;

/** Producer settings; every field is optional. */
export interface ProducerOptions extends ClientOptions {
  /** How long a batch waits for more records before it is sent. Default 5 ms. */
  readonly lingerMs?: number | undefined;
  /** A batch is sent once it holds about this many bytes (a larger record gets its own batch). Default 1 MiB. */
  readonly batchBytes?: number | undefined;
  /** Records held by the producer (batching, in flight, retrying), at most. Default 32 MiB. */
  readonly bufferBytes?: number | undefined;
  /** Batch compression. Default "none". */
  readonly compression?: "none" | "gzip" | "lz4" | undefined;
  /** Acknowledgement level: all in-sync replicas, the leader only, or none. Default "all". */
  readonly acks?: "all" | "leader" | "none" | undefined;
  /** Produce requests on the connection awaiting an answer, at most. Default 5. */
  readonly maxInFlightRequests?: number | undefined;
  /** Clock for the timestamps of records sent without one. Default the system clock. */
  readonly clock?: Clock | undefined;
}

/** A record header; keys may repeat. */
export interface ProducerHeader {
  readonly key: string;
  readonly value: Uint8Array | string | null;
}

/** A record to send. Strings are sent as UTF-8. */
export interface ProducerRecord {
  readonly topic: string;
  /** Null or absent: spread over partitions (sticky). */
  readonly key?: Uint8Array | string | null | undefined;
  /** Null is a tombstone on compacted topics. */
  readonly value: Uint8Array | string | null;
  /** Headers as a list (keys may repeat) or an object. */
  readonly headers?: readonly ProducerHeader[] | Readonly<Record<string, Uint8Array | string | null>> | undefined;
  /** Explicit partition; overrides the key. */
  readonly partition?: number | undefined;
  /** Create time in ms since the epoch; default the producer's clock at `send`. */
  readonly timestampMs?: number | undefined;
}

/** Where a record was stored. */
export interface RecordMetadata {
  readonly topic: string;
  readonly partition: number;
  /** Offset of the record; -1 when the broker does not report it (allowed with acks "none"). */
  readonly offset: number;
  /** The record's timestamp (the broker's append time on LogAppendTime topics). */
  readonly timestampMs: number;
}

/** Framing bytes a record may take besides its key, value and headers (length, attributes, deltas). */
const RECORD_OVERHEAD = 26;
/** Framing bytes per header besides its key and value (two length varints). */
const HEADER_OVERHEAD = 10;

const acksByName = { all: Acks.ALL, leader: Acks.LEADER, none: Acks.NONE } as const;
const codecByName = { none: Compression.NONE, gzip: Compression.GZIP, lz4: Compression.LZ4 } as const;

interface Delivery {
  readonly timestampMs: number;
  readonly resolve: (m: RecordMetadata) => void;
  readonly reject: (e: unknown) => void;
}

interface RecordItem {
  readonly kind: "record";
  readonly topic: string;
  readonly partition: number | undefined;
  /** Key bytes for the partitioner (null: sticky). */
  readonly keyBytes: Uint8Array | null;
  readonly input: RecordInput;
  readonly bytes: number;
  delivery: Delivery;
}

interface FlushItem {
  readonly kind: "flush";
  readonly resolve: (done: Promise<void>) => void;
}

type IntakeItem = RecordItem | FlushItem;

/** A batch of one partition: records until sealed, then their encoded bytes. */
class ProducerBatch {
  inputs: RecordInput[] = [];
  readonly deliveries: Delivery[] = [];
  bytes = HEADER_SIZE;
  encoded: Buffer | null = null;
  attempts = 0;
  readonly done: Promise<void>;
  markDone!: () => void;

  constructor(
    readonly topic: string,
    readonly partition: number,
  ) {
    this.done = new Promise((resolve) => (this.markDone = resolve));
  }
}

/** The batches of one partition: the open one, sealed ones in order, and the one in flight. */
interface PartitionQueue {
  readonly topic: string;
  readonly partition: number;
  open: ProducerBatch | null;
  lingerTimer: ReturnType<typeof setTimeout> | null;
  readonly sealed: Fifo<ProducerBatch>;
  /** The batch sent (or waiting to be re-sent) and not yet answered; at most one. */
  current: ProducerBatch | null;
  retryTimer: ReturnType<typeof setTimeout> | null;
}

function byteLength(x: Uint8Array | string | null | undefined): number {
  if (x === null || x === undefined) return 0;
  return typeof x === "string" ? Buffer.byteLength(x, "utf8") : x.byteLength;
}

function checkBytes(x: unknown, field: string): void {
  if (x !== null && x !== undefined && typeof x !== "string" && !(x instanceof Uint8Array)) {
    throw new RillError(Errors.INVALID_ARGUMENT, `${field}: must be a string, a Uint8Array or null`);
  }
}

function headersOf(h: ProducerRecord["headers"]): RecordHeaderInput[] | undefined {
  if (h === undefined) return undefined;
  const list = Array.isArray(h) ? (h as readonly ProducerHeader[]) : Object.entries(h).map(([key, value]) => ({ key, value }));
  return list.map((x, i) => {
    if (typeof x.key !== "string") throw new RillError(Errors.INVALID_ARGUMENT, `headers[${i}].key: must be a string`);
    checkBytes(x.value, `headers[${i}].value`);
    return { key: x.key, value: x.value ?? null };
  });
}

/** Sends records to topics in batches; see the module comment for the life of a record. */
export class Producer {
  private readonly conn: Connection;
  private readonly metadata: MetadataCache;
  private readonly partitioner: Partitioner;
  private readonly budget: ByteBudget;
  private readonly channel: ProduceChannel;
  private readonly clock: Clock;
  private readonly lingerMs: number;
  private readonly batchBytes: number;
  private readonly codec: number;
  private readonly acks: Acks;
  private readonly intake = new Fifo<IntakeItem>();
  /** Partition queues by topic, then partition. */
  private readonly queues = new Map<string, Map<number, PartitionQueue>>();
  private intakeWaiters: (() => void)[] = [];
  private pumping = false;
  private state: "open" | "closing" | "closed" = "open";
  private closing: Promise<void> | null = null;

  /** Checks the options (RangeError or RillError naming the field); connects lazily. */
  constructor(options: ProducerOptions = {}) {
    this.lingerMs = checkInt(options.lingerMs ?? 5, "lingerMs", 0, 3_600_000);
    this.batchBytes = checkInt(options.batchBytes ?? MiB, "batchBytes", 1024, 1 << 30);
    const bufferBytes = checkInt(options.bufferBytes ?? 32 * MiB, "bufferBytes", 1024, 2 ** 40);
    const maxInFlight = checkInt(options.maxInFlightRequests ?? 5, "maxInFlightRequests", 1, 1000);
    this.codec = codecByName[checkChoice(options.compression ?? "none", "compression", ["none", "gzip", "lz4"])];
    this.acks = acksByName[checkChoice(options.acks ?? "all", "acks", ["all", "leader", "none"])];
    this.clock = options.clock ?? systemClock;
    this.conn = connect(options);
    this.metadata = new MetadataCache(this.conn);
    this.partitioner = new Partitioner(this.conn.random);
    this.budget = new ByteBudget(bufferBytes);
    // The broker answers REQUEST_TIMED_OUT after timeout_ms; the stream is given up a little later.
    this.channel = new ProduceChannel(this.conn.transport, { maxInFlight, responseTimeoutMs: this.conn.requestTimeoutMs + 5000 });
  }

  /** The partition count of `topic` (from the broker, cached); rejects for an unknown topic. */
  partitionCount(topic: string): Promise<number> {
    return this.metadata.partitionCount(topic);
  }

  /**
   * Bytes of records held by the producer (batching, in flight, retrying), as estimated from
   * their keys, values and headers plus a few bytes of framing each; never above `bufferBytes`.
   */
  get bufferedBytes(): number {
    return this.budget.usedBytes;
  }

  /**
   * Sends one record; resolves once the broker has acknowledged it (as `acks` asks) with its
   * partition and offset, or rejects with why it could not be stored. Waits for buffer space
   * first when the producer holds `bufferBytes` already.
   */
  send(record: ProducerRecord): Promise<RecordMetadata> {
    if (this.state !== "open") return Promise.reject(new ClientClosedError("producer"));
    let item: RecordItem;
    try {
      item = this.prepare(record);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<RecordMetadata>((resolve, reject) => {
      item.delivery = { timestampMs: item.input.timestampMs!, resolve, reject };
      if (this.intake.length === 0 && this.tryAppendNow(item)) return;
      this.intake.push(item);
      void this.pump();
    });
  }

  /**
   * Resolves when a `send` would be taken without waiting: nothing queued before it and room in
   * the buffer. A loop that does not await each `send` awaits this instead, like a stream's
   * 'drain', so that the records it has not handed over yet stay its own, bounded, business.
   */
  async ready(): Promise<void> {
    while (this.state === "open") {
      if (this.intake.length > 0) await new Promise<void>((resolve) => this.intakeWaiters.push(resolve));
      else if (this.budget.usedBytes >= this.budget.capacity) await this.budget.whenFree();
      else return;
    }
  }

  /** Sends every open batch now and waits until all records sent before this call are answered. */
  async flush(): Promise<void> {
    if (this.state === "closed") return;
    const done = await new Promise<Promise<void>>((resolve) => {
      this.intake.push({ kind: "flush", resolve });
      void this.pump();
    });
    await done;
  }

  /** Flushes, then closes: later sends reject with ClientClosedError. Idempotent. */
  close(): Promise<void> {
    if (this.closing !== null) return this.closing;
    this.closing = (async () => {
      try {
        await this.flush();
      } finally {
        this.state = "closed";
        this.budget.failWaiters(new ClientClosedError("producer"));
        await this.channel.close();
        if (this.conn.owned) this.conn.transport.close();
      }
    })();
    this.state = "closing";
    return this.closing;
  }

  // -------------------------------------------------------------------------------------------
  // Intake

  private prepare(r: ProducerRecord): RecordItem {
    if (typeof r.topic !== "string" || r.topic === "") throw new RillError(Errors.INVALID_ARGUMENT, "topic: must be a non-empty string");
    checkBytes(r.key, "key");
    checkBytes(r.value, "value");
    const partition = r.partition === undefined ? undefined : checkInt(r.partition, "partition", 0, 0x7fffffff);
    const timestampMs = r.timestampMs === undefined ? this.clock.nowMs() : checkInt(r.timestampMs, "timestampMs", 0, Number.MAX_SAFE_INTEGER);
    const headers = headersOf(r.headers);
    const key = r.key ?? null;
    const value = r.value ?? null;
    let bytes = RECORD_OVERHEAD + byteLength(key) + byteLength(value);
    for (const h of headers ?? []) bytes += HEADER_OVERHEAD + byteLength(h.key) + byteLength(h.value);
    if (bytes > this.budget.capacity) {
      throw new RillError(Errors.MESSAGE_TOO_LARGE, `record: about ${bytes} bytes, more than bufferBytes (${this.budget.capacity})`);
    }
    const keyBytes = key === null ? null : typeof key === "string" ? Buffer.from(key, "utf8") : key;
    const input: RecordInput = { key, value, headers, timestampMs };
    return { kind: "record", topic: r.topic, partition, keyBytes, input, bytes, delivery: undefined as unknown as Delivery };
  }

  /** The record's partition if it can be known without I/O, else undefined. */
  private partitionNow(item: RecordItem): number | undefined {
    const count = this.metadata.cachedPartitionCount(item.topic);
    if (count === undefined) return undefined;
    if (item.partition !== undefined) return item.partition < count ? item.partition : undefined;
    return this.partitioner.partition(item.topic, item.keyBytes, count);
  }

  private async partitionLater(item: RecordItem): Promise<number> {
    let count = await this.metadata.partitionCount(item.topic);
    if (item.partition === undefined) return this.partitioner.partition(item.topic, item.keyBytes, count);
    if (item.partition >= count) {
      this.metadata.invalidate(item.topic); // the topic may have grown
      count = await this.metadata.partitionCount(item.topic);
    }
    if (item.partition >= count) {
      throw new RillError(Errors.UNKNOWN_TOPIC_OR_PARTITION, `partition: ${item.partition} is not in [0, ${count}) (topic "${item.topic}" has ${count} partitions)`);
    }
    return item.partition;
  }

  /** Appends at once when the partition is known and the buffer has room (the common case). */
  private tryAppendNow(item: RecordItem): boolean {
    const partition = this.partitionNow(item);
    if (partition === undefined || !this.budget.tryAcquire(item.bytes)) return false;
    this.append(item, partition);
    return true;
  }

  /** Works through the intake in order; only one pump runs at a time. */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (let item = this.intake.peek(); item !== undefined; item = this.intake.peek()) {
        if (item.kind === "flush") {
          this.intake.shift();
          item.resolve(this.sealAll());
        } else {
          if (!this.tryAppendNow(item)) await this.admit(item); // await only when it must wait
          this.intake.shift();
        }
      }
    } finally {
      this.pumping = false;
      for (const wake of this.intakeWaiters.splice(0)) wake();
    }
  }

  /** Resolves the partition and buffer space of the first intake record, then appends it. */
  private async admit(item: RecordItem): Promise<void> {
    let partition = this.partitionNow(item);
    try {
      if (partition === undefined) partition = await this.partitionLater(item);
      if (!this.budget.tryAcquire(item.bytes)) {
        void this.sealAll(); // lingering cannot help while the buffer is full
        await this.budget.acquire(item.bytes);
      }
    } catch (e) {
      item.delivery.reject(e);
      return;
    }
    this.append(item, partition);
  }

  // -------------------------------------------------------------------------------------------
  // Batching

  private queueOf(topic: string, partition: number): PartitionQueue {
    let byPartition = this.queues.get(topic);
    if (byPartition === undefined) {
      byPartition = new Map();
      this.queues.set(topic, byPartition);
    }
    let q = byPartition.get(partition);
    if (q === undefined) {
      q = { topic, partition, open: null, lingerTimer: null, sealed: new Fifo(), current: null, retryTimer: null };
      byPartition.set(partition, q);
    }
    return q;
  }

  private append(item: RecordItem, partition: number): void {
    const q = this.queueOf(item.topic, partition);
    if (q.open !== null && q.open.bytes + item.bytes > this.batchBytes) this.seal(q);
    let b = q.open;
    if (b === null) {
      b = new ProducerBatch(item.topic, partition);
      q.open = b;
      const batch = b;
      q.lingerTimer = setTimeout(() => {
        if (q.open === batch) this.seal(q);
      }, this.lingerMs);
    }
    b.inputs.push(item.input);
    b.deliveries.push(item.delivery);
    b.bytes += item.bytes;
    if (b.bytes >= this.batchBytes) this.seal(q);
  }

  /** Seals every open batch; resolves when every batch existing now is answered. */
  private sealAll(): Promise<void> {
    const done: Promise<void>[] = [];
    for (const q of [...this.queues.values()].flatMap((m) => [...m.values()])) {
      if (q.open !== null) this.seal(q);
      if (q.current !== null) done.push(q.current.done);
      for (const b of q.sealed.toArray()) done.push(b.done);
    }
    return Promise.all(done).then(() => undefined);
  }

  private seal(q: PartitionQueue): void {
    const b = q.open!;
    q.open = null;
    if (q.lingerTimer !== null) clearTimeout(q.lingerTimer);
    q.lingerTimer = null;
    this.partitioner.onBatchSealed(q.topic, q.partition, this.metadata.cachedPartitionCount(q.topic) ?? 1);
    try {
      b.encoded = encodeBatch(b.inputs, { compression: this.codec });
    } catch (e) {
      this.complete(b, e);
      return;
    }
    b.inputs = []; // the encoded bytes are all that is needed from here on
    q.sealed.push(b);
    this.sendNext(q);
  }

  // -------------------------------------------------------------------------------------------
  // Sending

  private sendNext(q: PartitionQueue): void {
    if (q.current !== null || q.sealed.length === 0) return;
    const b = q.sealed.shift()!;
    q.current = b;
    this.dispatch(q, b);
  }

  private dispatch(q: PartitionQueue, b: ProducerBatch): void {
    b.attempts++;
    const request = { topic: b.topic, partition: b.partition, recordBatch: b.encoded!, acks: this.acks, timeoutMs: this.conn.requestTimeoutMs };
    this.channel.send(request).then(
      (res) => {
        const r = res.partitions.find((p) => p.partition === b.partition) ?? res.partitions[0];
        if (r === undefined) this.onFailure(q, b, new RillError(Errors.UNKNOWN_SERVER_ERROR, `${b.topic}-${b.partition}: response has no partition result`));
        else if (r.error !== undefined) this.onFailure(q, b, fromErrorDetail(r.error, `${b.topic}-${b.partition}`));
        else this.onSuccess(q, b, toNumber(r.baseOffset, "baseOffset"), toNumber(r.logAppendTimeMs, "logAppendTimeMs"));
      },
      (e: unknown) => this.onFailure(q, b, e),
    );
  }

  private onSuccess(q: PartitionQueue, b: ProducerBatch, baseOffset: number, logAppendTimeMs: number): void {
    const { topic, partition } = b;
    b.deliveries.forEach((d, i) => {
      const offset = baseOffset < 0 ? -1 : baseOffset + i;
      d.resolve({ topic, partition, offset, timestampMs: logAppendTimeMs >= 0 ? logAppendTimeMs : d.timestampMs });
    });
    this.finish(q, b);
  }

  private onFailure(q: PartitionQueue, b: ProducerBatch, e: unknown): void {
    const retry = this.conn.retry;
    if (this.state !== "closed" && isRetriable(e) && b.attempts <= retry.retries) {
      if (e instanceof RillError && e.kind === Errors.UNKNOWN_TOPIC_OR_PARTITION) this.metadata.invalidate(b.topic);
      q.retryTimer = setTimeout(() => {
        q.retryTimer = null;
        this.dispatch(q, b);
      }, backoffMs(retry, b.attempts - 1, this.conn.random));
      return;
    }
    for (const d of b.deliveries) d.reject(e);
    this.finish(q, b);
  }

  private finish(q: PartitionQueue, b: ProducerBatch): void {
    q.current = null;
    this.complete(b);
    this.sendNext(q);
  }

  /** Gives the batch's bytes back, fails its records when `error` is given, and marks it done. */
  private complete(b: ProducerBatch, error?: unknown): void {
    if (error !== undefined) for (const d of b.deliveries) d.reject(error);
    this.budget.release(b.bytes - HEADER_SIZE);
    b.markDone();
  }
}
