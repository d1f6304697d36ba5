/**
 * A raw Kafka-protocol client for tests: one socket, requests framed by hand (api key, version,
 * correlation id, client id, and the header's tag section for flexible versions), responses
 * matched by correlation id. It also sends frames that are wrong on purpose.
 */
import * as net from "node:net";
import * as tls from "node:tls";
import { parseKafkaAddress } from "../../src/kafka/deps.ts";
import { type Fields, type Input, type Message, type ValueOf, decode, encode } from "../../src/kafka/schema.ts";
import { KafkaReader, KafkaWriter } from "../../src/kafka/wire.ts";

/** A connection to a Kafka listener. */
export class RawKafka {
  private buf = Buffer.alloc(0);
  private nextCorrelation = 1;
  private readonly waiting = new Map<number, (body: Buffer) => void>();
  /** Resolves when the broker closes the connection. */
  readonly closed: Promise<void>;

  private constructor(readonly socket: net.Socket) {
    socket.on("data", (d: Buffer) => this.onData(d));
    this.closed = new Promise((resolve) => socket.once("close", () => resolve()));
    socket.on("error", () => {});
  }

  static connect(address: string): Promise<RawKafka> {
    const { host, port } = parseKafkaAddress(address);
    return new Promise((resolve, reject) => {
      const s = net.connect({ host, port }, () => resolve(new RawKafka(s)));
      s.once("error", reject);
    });
  }

  /** A TLS connection (`tls.connect` options: the CA, a client certificate, the server name). */
  static connectTls(address: string, options: tls.ConnectionOptions): Promise<RawKafka> {
    const { host, port } = parseKafkaAddress(address);
    return new Promise((resolve, reject) => {
      const s = tls.connect({ host, port, ...options }, () => resolve(new RawKafka(s)));
      s.once("error", reject);
    });
  }

  private onData(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    while (this.buf.length >= 4) {
      const size = this.buf.readInt32BE(0);
      if (this.buf.length < 4 + size) return;
      const frame = this.buf.subarray(4, 4 + size);
      this.buf = this.buf.subarray(4 + size);
      const id = frame.readInt32BE(0);
      this.waiting.get(id)?.(frame.subarray(4));
      this.waiting.delete(id);
    }
  }

  /** Sends a request body; resolves with the response after its correlation id (header tags included). */
  sendRaw(apiKey: number, version: number, body: Buffer, flexibleHeader: boolean, clientId: string | null = "raw-test"): Promise<Buffer> {
    const id = this.nextCorrelation++;
    const w = new KafkaWriter();
    w.int16(apiKey).int16(version).int32(id).string(clientId, false);
    if (flexibleHeader) w.uvarint(0);
    w.raw(body);
    const frame = w.toBuffer();
    const size = Buffer.alloc(4);
    size.writeInt32BE(frame.length);
    const answered = new Promise<Buffer>((resolve) => this.waiting.set(id, resolve));
    this.socket.write(Buffer.concat([size, frame]));
    return answered;
  }

  /** Encodes `req` as `version` of `request`, sends it, decodes the answer as `response`. */
  async request<Q extends Fields, S extends Fields>(
    apiKey: number,
    version: number,
    request: Message<Q>,
    req: Input<ValueOf<Q>>,
    response: Message<S>,
    responseHeaderTags = version >= response.flexibleFrom && apiKey !== 18,
  ): Promise<ValueOf<S>> {
    const w = new KafkaWriter();
    encode(request, req, version, w);
    const body = await this.sendRaw(apiKey, version, w.toBuffer(), version >= request.flexibleFrom);
    const r = new KafkaReader(body);
    if (responseHeaderTags) r.uvarint();
    const out = decode(response, r, version);
    if (r.remaining !== 0) throw new Error(`${r.remaining} bytes left after the ${response.name}`);
    return out;
  }

  /** Writes bytes as they are (frames broken on purpose). */
  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  close(): void {
    this.socket.destroy();
  }
}
