/**
 * The Kafka listener: a TCP server on `kafka.listen` whose connections speak Kafka's protocol
 * (connection.ts) to the APIs of `KAFKA_APIS` (apis/index.ts), over the same services as gRPC.
 * At most `max.connections` connections are open at once; one more is closed as it arrives,
 * with a log line. `close()` stops accepting, closes every connection and waits for the socket.
 */
import * as net from "node:net";
import * as tls from "node:tls";
import { rillError } from "../base/errors.ts";
import type { Principal } from "../security/requester.ts";
import { requestMetricsOf } from "../service/request-metrics.ts";
import { KAFKA_APIS } from "./apis/index.ts";
import type { KafkaApi } from "./api.ts";
import { type ConnectionEvents, KafkaConnection, type KafkaApis } from "./connection.ts";
import type { KafkaDeps } from "./deps.ts";

/** How a Kafka listener is set up. */
export interface KafkaServerOptions {
  /** HOST:PORT (port 0 picks a free one). */
  readonly listen: string;
  /** Largest request frame. */
  readonly requestBytesMax: number;
  /** Connections open at once. */
  readonly maxConnections: number;
  /** TLS on the listener (the `tls.*` keys); none: plaintext. */
  readonly tls?: tls.TlsOptions;
  /** Whether clients must complete SASL before other requests. */
  readonly saslRequired?: boolean;
  /** Certificate rotation: called once bound with the way to swap the TLS context; returns its stop. */
  readonly rotate?: (apply: (context: tls.SecureContextOptions) => void) => () => void;
  /** The principal of a TLS connection's verified client certificate (mTLS); none: SASL decides. */
  readonly principalOf?: (socket: tls.TLSSocket) => Principal | undefined;
  /** The APIs served (default: all of `KAFKA_APIS`). */
  readonly apis?: readonly KafkaApi[];
  readonly events?: ConnectionEvents;
}

/** A running Kafka listener. */
export class KafkaServer {
  private readonly server: net.Server;
  private readonly connections = new Set<KafkaConnection>();
  private readonly apis: KafkaApis;
  private nextId = 1;
  private stopRotation: (() => void) | null = null;
  private port = -1;
  /** Connections refused at `maxConnections`, since start. */
  refused = 0;

  constructor(
    private readonly options: KafkaServerOptions,
    private readonly deps: KafkaDeps,
  ) {
    this.apis = new Map((options.apis ?? KAFKA_APIS).map((a) => [a.key, a]));
    requestMetricsOf(deps.services.replicas).countConnections("kafka", () => this.connections.size);
    const onSocket = (socket: net.Socket) => this.accept(socket);
    this.server = options.tls ? tls.createServer(options.tls, onSocket) : net.createServer(onSocket);
  }

  /** Connections open now. */
  get open(): number {
    return this.connections.size;
  }

  /** HOST:PORT as configured until bound, then with the port actually bound. */
  get address(): string {
    return this.port < 0 ? this.options.listen : this.options.listen.replace(/:\d+$/, `:${this.port}`);
  }

  /** Listens; INVALID_CONFIG naming `kafka.listen` when the address cannot be bound. Returns the port. */
  bind(): Promise<number> {
    const m = /^\[?([^\]]*)\]?:(\d+)$/.exec(this.options.listen);
    if (m === null) return Promise.reject(rillError("INVALID_CONFIG", `kafka.listen: "${this.options.listen}" is not HOST:PORT`));
    return new Promise((resolve, reject) => {
      const fail = (e: Error) => reject(rillError("INVALID_CONFIG", `kafka.listen: cannot listen on ${this.options.listen}: ${e.message}`));
      this.server.once("error", fail);
      this.server.listen({ host: m[1], port: Number(m[2]) }, () => {
        this.server.off("error", fail);
        const a = this.server.address();
        this.port = typeof a === "object" && a !== null ? a.port : Number(m[2]);
        this.stopRotation = this.options.rotate?.((c) => this.setSecureContext(c)) ?? null;
        resolve(this.port);
      });
    });
  }

  private accept(socket: net.Socket): void {
    const id = `kafka-${this.nextId++}`;
    if (this.connections.size >= this.options.maxConnections) {
      this.refused++;
      this.deps.log.warn(
        { connection: id, client: socket.remoteAddress, limit: this.options.maxConnections },
        `kafka connection refused: max.connections (${this.options.maxConnections}) are open`,
      );
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    const c = new KafkaConnection(
      socket,
      this.apis,
      this.deps,
      {
        requestBytesMax: this.options.requestBytesMax,
        saslRequired: this.options.saslRequired ?? false,
        principal: socket instanceof tls.TLSSocket ? this.options.principalOf?.(socket) : undefined,
      },
      id,
      this.options.events,
    );
    this.connections.add(c);
    socket.once("close", () => this.connections.delete(c));
  }

  /** Replaces the TLS certificate, key and CA for the connections that follow (certificate rotation). */
  setSecureContext(options: tls.SecureContextOptions): void {
    if (this.server instanceof tls.Server) this.server.setSecureContext(options);
  }

  /** Stops accepting, closes every connection (long polls are cancelled). */
  async close(): Promise<void> {
    this.stopRotation?.();
    this.stopRotation = null;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const c of this.connections) c.close();
    this.connections.clear();
    if (this.port >= 0) await closed;
  }
}
