/**
 * Rill's own Kafka-protocol producer for the benchmarks: one socket to one broker's Kafka
 * listener, Produce requests encoded with src/kafka's schema (the same message descriptions the
 * listener decodes with), pipelined, answers matched in order. It sends exactly the record
 * batches producer-perf's gRPC path sends (magic 2, built per request by `encodeBatch`), so
 * Kafka ÷ gRPC compares the transports, not the payloads.
 *
 * - `KafkaProducerSocket.connect` negotiates the Produce version with ApiVersions (the highest
 *   both sides have, at most v11) and learns partition leaders with Metadata (`leaders`).
 * - `produce` writes one request (the batch goes to the socket as its own chunk, not copied into
 *   the frame) and resolves with each partition's error code and base offset; with acks 0 it
 *   resolves once the request is written (Kafka sends no answer).
 */
import * as net from "node:net";
import { ApiVersionsRequest, ApiVersionsResponse } from "../src/kafka/apis/api-versions.ts";
import { MetadataRequest, MetadataResponse } from "../src/kafka/apis/metadata.ts";
import { ProduceRequest, ProduceResponse } from "../src/kafka/apis/produce.ts";
import { decode, encode, type Fields, type Input, type Message, type ValueOf } from "../src/kafka/schema.ts";
import { KafkaReader, KafkaWriter } from "../src/kafka/wire.ts";

const CLIENT_ID = "rill-bench-producer";
/** Highest Produce version this producer speaks. */
const PRODUCE_VERSION_MAX = 11;

/** One partition's answer. */
export interface KafkaProduced {
  readonly errorCode: number;
  readonly baseOffset: bigint;
  readonly errorMessage: string | null;
}

/** A connection to one Kafka listener. */
export class KafkaProducerSocket {
  private readonly waiting: Array<{ resolve: (body: Buffer) => void; reject: (e: Error) => void }> = [];
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private nextId = 1;
  private produceVersion = 3;
  private failure: Error | null = null;

  private constructor(private readonly socket: net.Socket) {
    socket.on("data", (d: Buffer) => this.data(d));
    socket.on("error", (e) => this.fail(e));
    socket.on("close", () => this.fail(new Error("the broker closed the Kafka connection")));
  }

  /** Connects and negotiates the Produce version. */
  static async connect(host: string, port: number): Promise<KafkaProducerSocket> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ host, port }, () => resolve(s));
      s.setNoDelay(true);
      s.once("error", reject);
    });
    const k = new KafkaProducerSocket(socket);
    const versions = await k.request(
      18,
      3,
      ApiVersionsRequest,
      { clientSoftwareName: CLIENT_ID, clientSoftwareVersion: "1" },
      ApiVersionsResponse,
    );
    const produce = versions.apiKeys.find((a) => a.apiKey === 0);
    if (versions.errorCode !== 0 || produce === undefined) throw new Error(`${host}:${port} does not serve Kafka's Produce`);
    k.produceVersion = Math.min(produce.maxVersion, PRODUCE_VERSION_MAX);
    if (k.produceVersion < 3) throw new Error(`${host}:${port}: Produce v${produce.maxVersion} is older than v3 (record batches)`);
    return k;
  }

  /** Partition → leader's "host:port" of `topic` (auto-created by Metadata when missing), once every partition has a leader. */
  async leaders(topic: string, timeoutMs = 10_000): Promise<Map<number, string>> {
    for (const deadline = Date.now() + timeoutMs; ; ) {
      const md = await this.request(3, 9, MetadataRequest, { topics: [{ name: topic }], allowAutoTopicCreation: true }, MetadataResponse);
      const t = md.topics[0];
      const hosts = new Map(md.brokers.map((b) => [b.nodeId, `${b.host}:${b.port}`]));
      if (t && t.errorCode === 0 && t.partitions.length > 0 && t.partitions.every((p) => hosts.has(p.leaderId))) {
        return new Map(t.partitions.map((p) => [p.partitionIndex, hosts.get(p.leaderId) as string]));
      }
      if (Date.now() > deadline) throw new Error(`${topic}: no leader for every partition after ${timeoutMs} ms (error ${t?.errorCode})`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /**
   * Sends one batch to `topic`-`partition`. acks -1, 1: resolves with the partition's answer;
   * 0: resolves when written (no answer comes).
   */
  produce(topic: string, partition: number, batch: Buffer, acks: number, timeoutMs = 30_000): Promise<KafkaProduced> {
    const v = this.produceVersion;
    const body = {
      transactionalId: null,
      acks,
      timeoutMs,
      topicData: [{ name: topic, partitionData: [{ index: partition, records: batch }] }],
    };
    if (acks === 0) {
      this.send(0, v, ProduceRequest, body, false);
      return Promise.resolve({ errorCode: 0, baseOffset: -1n, errorMessage: null });
    }
    return this.send(0, v, ProduceRequest, body, true).then((b) => {
      const r = new KafkaReader(b);
      if (v >= ProduceResponse.flexibleFrom) r.uvarint(); // response header tags
      const res = decode(ProduceResponse, r, v);
      const p = res.responses[0]?.partitionResponses[0];
      if (!p) throw new Error("a Produce answer without the partition");
      return { errorCode: p.errorCode, baseOffset: p.baseOffset, errorMessage: p.errorMessage };
    });
  }

  /** Sends a request and decodes its answer. */
  async request<Q extends Fields, S extends Fields>(
    key: number,
    version: number,
    req: Message<Q>,
    value: Input<ValueOf<Q>>,
    res: Message<S>,
  ): Promise<ValueOf<S>> {
    const body = await this.send(key, version, req, value, true);
    const r = new KafkaReader(body);
    if (version >= res.flexibleFrom && key !== 18) r.uvarint();
    return decode(res, r, version);
  }

  private send<Q extends Fields>(key: number, version: number, m: Message<Q>, value: Input<ValueOf<Q>>, answered: true): Promise<Buffer>;
  private send<Q extends Fields>(key: number, version: number, m: Message<Q>, value: Input<ValueOf<Q>>, answered: false): void;
  private send<Q extends Fields>(
    key: number,
    version: number,
    m: Message<Q>,
    value: Input<ValueOf<Q>>,
    answered: boolean,
  ): Promise<Buffer> | undefined {
    if (this.failure) return answered ? Promise.reject(this.failure) : undefined;
    const w = new KafkaWriter();
    w.int32(0)
      .int16(key)
      .int16(version)
      .int32(this.nextId++)
      .string(CLIENT_ID, false);
    if (version >= m.flexibleFrom) w.uvarint(0); // request header v2
    encode(m, value, version, w);
    const total = w.length;
    const chunks = w.finish();
    (chunks[0] as Buffer).writeInt32BE(total - 4, 0);
    const answer = answered ? new Promise<Buffer>((resolve, reject) => this.waiting.push({ resolve, reject })) : undefined;
    this.socket.cork();
    for (const c of chunks) this.socket.write(c);
    process.nextTick(() => this.socket.uncork());
    return answer;
  }

  /** Resolves when the socket can take more (backpressure for acks 0). */
  drained(): Promise<void> {
    if (!this.socket.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => this.socket.once("drain", () => resolve()));
  }

  private data(d: Buffer): void {
    this.pending.push(d);
    this.pendingBytes += d.length;
    for (;;) {
      if (this.pendingBytes < 4) return;
      if (this.pending.length > 1) this.pending = [Buffer.concat(this.pending)];
      const buf = this.pending[0] as Buffer;
      const size = buf.readInt32BE(0);
      if (buf.length < 4 + size) return;
      const frame = buf.subarray(4, 4 + size);
      const rest = buf.subarray(4 + size);
      this.pending = rest.length > 0 ? [rest] : [];
      this.pendingBytes = rest.length;
      this.waiting.shift()?.resolve(frame.subarray(4)); // after the correlation id
    }
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const w of this.waiting.splice(0)) w.reject(this.failure);
  }

  close(): void {
    this.failure ??= new Error("closed");
    this.socket.destroy();
  }
}
