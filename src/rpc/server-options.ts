/**
 * The server's gRPC transport settings: message size limits, keepalive, concurrent streams and
 * HTTP/2 flow-control windows, from the `TransportConfig` that clients share
 * (src/protocol/channel-options.ts, with its defaults and `clientChannelOptions`).
 *
 * Windows: with HTTP/2's 64 KiB default a 1 MiB message waits for WINDOW_UPDATE round trips, so
 * Rill uses 16 MiB windows on both sides. Clients take grpc-js's
 * `grpc-node.flow_control_window` channel option (it sets the stream window in SETTINGS and
 * raises the connection window). The grpc-js Server has no such option: it creates its
 * `http2.Http2Server` itself, in one method, `createHttp2Server(credentials)`, used by both
 * `bindAsync` and `createConnectionInjector`. `installHttp2Settings` wraps that method on one
 * Server instance and, on each HTTP/2 server it creates,
 *  - calls `Http2Server.updateSettings({ initialWindowSize })`, so every new session's first
 *    SETTINGS frame advertises the 16 MiB stream window, and
 *  - on each `session` calls `Http2Session.setLocalWindowSize(window)`, which raises the
 *    connection-level window (not a SETTINGS value in HTTP/2) with a WINDOW_UPDATE.
 * Both are public `node:http2` APIs that Node 20, Bun and Deno 2 implement; the one private
 * touch point is the method name, checked at startup (a grpc-js upgrade that renames it fails
 * loudly, and test/unit/rpc/server-options.test.ts checks the windows a peer sees).
 *
 * Connections: grpc-js has no limit on them either. With a `ConnectionLimit`, the same hook
 * counts the HTTP/2 sessions (one per client connection) of every server it creates and answers
 * a session beyond `max.connections` with GOAWAY (ENHANCE_YOUR_CALM, debug data naming the
 * limit) and closes it, so the client's call fails UNAVAILABLE while the first connections keep
 * working; `open` and `refused` are read by the broker's metrics.
 *
 * Measured (test/unit/rpc/bench/transport.bench.ts, LATENCY_MS=5 so that round trips, not a
 * busy CPU, bound the result): sequential 1 MiB Produce calls went from 4 to 24 MiB/s on Node 20
 * and from 5 to 62 MiB/s on Bun with this hook; a Subscribe stream of 1 MiB messages from 4 to
 * 238 MiB/s with the client window (the server hook does not matter for downloads).
 */

import * as http2 from "node:http2";
import * as grpc from "@grpc/grpc-js";
import { type TransportConfig, checkTransportConfig, defaultTransportConfig } from "../protocol/channel-options.ts";
import { malformedMessageInterceptor } from "./grpc-service.ts";

// Re-exported for src/broker/broker.ts (owned elsewhere), which imports the defaults from here.
export { type TransportConfig, defaultTransportConfig } from "../protocol/channel-options.ts";

/**
 * grpc-js Server options: message limits, keepalive, concurrent streams, and the interceptors:
 * `interceptors` first, then the one that answers INVALID_ARGUMENT for malformed requests
 * (outermost, so the others see its status). Windows need `installHttp2Settings` as well.
 */
export function serverOptions(
  cfg: TransportConfig = defaultTransportConfig,
  interceptors: readonly grpc.ServerInterceptor[] = [],
): grpc.ServerOptions {
  checkTransportConfig(cfg);
  return {
    "grpc.max_receive_message_length": cfg.receiveMessageBytesMax,
    "grpc.max_send_message_length": cfg.sendMessageBytesMax,
    "grpc.keepalive_time_ms": cfg.keepaliveTimeMs,
    "grpc.keepalive_timeout_ms": cfg.keepaliveTimeoutMs,
    "grpc.max_concurrent_streams": cfg.concurrentStreamsMax,
    interceptors: [...interceptors, malformedMessageInterceptor()],
  };
}

type CreateHttp2Server = (credentials: grpc.ServerCredentials) => http2.Http2Server;
const installed = Symbol("rill.http2SettingsInstalled");

/** `max.connections` of one server: how many HTTP/2 sessions are open, and how many were refused. */
export class ConnectionLimit {
  private openSessions = 0;
  private refusedSessions = 0;

  /** `max`: sessions open at once (each client connection is one). */
  constructor(readonly max: number) {
    if (!Number.isSafeInteger(max) || max < 1) throw new Error(`ConnectionLimit: max ${max} is not a positive integer`);
  }

  /** Sessions open now. */
  get open(): number {
    return this.openSessions;
  }

  /** Sessions refused since the server started. */
  get refused(): number {
    return this.refusedSessions;
  }

  /** Counts a new session, or refuses it (GOAWAY, then closed) when `max` are open. */
  admit(session: http2.ServerHttp2Session): void {
    if (this.openSessions >= this.max) {
      this.refusedSessions++;
      const why = Buffer.from(`max.connections: ${this.max} connections are open`);
      try {
        session.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, 0, why);
      } catch {
        // already closing
      }
      setImmediate(() => session.destroy());
      return;
    }
    this.openSessions++;
    session.once("close", () => this.openSessions--);
  }
}

/**
 * Makes `server` use `cfg.flowControlWindowBytes` as its HTTP/2 stream and connection windows,
 * and, with `limit`, admit at most `limit.max` connections at once.
 * Call it before `bindAsync` (or `createConnectionInjector`); calling it twice is an error.
 */
export function installHttp2Settings(server: grpc.Server, cfg: TransportConfig = defaultTransportConfig, limit?: ConnectionLimit): void {
  checkTransportConfig(cfg);
  const target = server as unknown as { createHttp2Server?: CreateHttp2Server; [installed]?: true };
  const original = target.createHttp2Server;
  if (typeof original !== "function") {
    throw new Error("installHttp2Settings: grpc-js Server has no createHttp2Server method (grpc-js upgrade?)");
  }
  if (target[installed]) throw new Error("installHttp2Settings: already installed on this server");
  target[installed] = true;
  const window = cfg.flowControlWindowBytes;
  target.createHttp2Server = function (this: grpc.Server, credentials) {
    const h2 = original.call(this, credentials);
    h2.updateSettings({ initialWindowSize: window });
    h2.on("session", (session: http2.ServerHttp2Session) => {
      if (limit) limit.admit(session);
      if (!session.destroyed) session.setLocalWindowSize(window);
    });
    return h2;
  };
}

/** A grpc-js Server with `serverOptions(cfg, interceptors)` and `installHttp2Settings(cfg, limit)`. */
export function createServer(
  cfg: TransportConfig = defaultTransportConfig,
  interceptors: readonly grpc.ServerInterceptor[] = [],
  limit?: ConnectionLimit,
): grpc.Server {
  const server = new grpc.Server(serverOptions(cfg, interceptors));
  installHttp2Settings(server, cfg, limit);
  return server;
}

/** Stops `server` taking calls, lets those in flight finish, and cuts them after `graceMs`. */
export function shutdownGracefully(server: grpc.Server, graceMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
