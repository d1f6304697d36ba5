/**
 * The gRPC transport settings both ends share: HTTP/2 flow-control windows, message size limits
 * and keepalive (`TransportConfig` and its defaults), and the grpc-js channel options of every
 * Rill client built from them — the SDK's and a broker's calls to other brokers alike. The
 * server's side of the same settings (its options, the HTTP/2 window hook) is in
 * src/rpc/server-options.ts.
 *
 * Windows: with HTTP/2's 64 KiB default a 1 MiB message waits for WINDOW_UPDATE round trips, so
 * Rill uses 16 MiB windows on both sides. Clients take grpc-js's
 * `grpc-node.flow_control_window` channel option (it sets the stream window in SETTINGS and
 * raises the connection window).
 */

import type * as grpc from "@grpc/grpc-js";

const MiB = 1024 * 1024;

/** Transport settings; see `defaultTransportConfig` for the defaults and why. */
export interface TransportConfig {
  /** HTTP/2 flow-control window, per stream and per connection, in both directions. */
  readonly flowControlWindowBytes: number;
  /** Largest message a peer may send us; larger ones end the call with RESOURCE_EXHAUSTED. */
  readonly receiveMessageBytesMax: number;
  /** Largest message we send. */
  readonly sendMessageBytesMax: number;
  /** Interval of HTTP/2 keepalive pings that check that the peer is still there. */
  readonly keepaliveTimeMs: number;
  /** How long a keepalive ping may go unanswered before the connection is closed. */
  readonly keepaliveTimeoutMs: number;
  /** Concurrent calls per connection (server side; the HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS). */
  readonly concurrentStreamsMax: number;
}

/**
 * Defaults: 16 MiB windows (measured: 1 MiB calls run about twice as fast as with 64 KiB, see
 * DESIGN.md "Runtimes"); 64 MiB messages, above any batch (`max.message.bytes`) or fetch
 * (`fetch.max.bytes`) limit, so those limits answer with Rill's own errors first; a ping after
 * 30 s, answered within 10 s, so a dead consumer or broker is noticed in under a
 * minute even when its TCP connection does not close.
 */
export const defaultTransportConfig: TransportConfig = {
  flowControlWindowBytes: 16 * MiB,
  receiveMessageBytesMax: 64 * MiB,
  sendMessageBytesMax: 64 * MiB,
  keepaliveTimeMs: 30_000,
  keepaliveTimeoutMs: 10_000,
  concurrentStreamsMax: 1000,
};

/** The largest HTTP/2 window (2^31 - 1). */
const WINDOW_MAX = 2 ** 31 - 1;

/** Throws RangeError, naming the field, when `cfg` cannot be applied. */
export function checkTransportConfig(cfg: TransportConfig): void {
  const window = cfg.flowControlWindowBytes;
  if (!Number.isInteger(window) || window < 65_535 || window > WINDOW_MAX) {
    throw new RangeError(`flowControlWindowBytes: ${window} is not an integer in [65535, ${WINDOW_MAX}]`);
  }
}

/**
 * grpc-js channel options for Rill clients (the SDK, broker-to-broker and controller clients):
 * the same windows, limits and keepalive, with pings allowed while no call is active so that
 * long idle connections of a consumer are checked too.
 */
export function clientChannelOptions(cfg: TransportConfig = defaultTransportConfig): grpc.ChannelOptions {
  checkTransportConfig(cfg);
  return {
    "grpc-node.flow_control_window": cfg.flowControlWindowBytes,
    "grpc.max_receive_message_length": cfg.receiveMessageBytesMax,
    "grpc.max_send_message_length": cfg.sendMessageBytesMax,
    "grpc.keepalive_time_ms": cfg.keepaliveTimeMs,
    "grpc.keepalive_timeout_ms": cfg.keepaliveTimeoutMs,
    "grpc.keepalive_permit_without_calls": 1,
  };
}

/**
 * Reconnect quickly after a peer restarts: grpc-js waits 1 s (growing to 120 s) by default, far
 * longer than the SDK's retry policy keeps trying or a Raft election waits.
 */
export const reconnectChannelOptions: grpc.ChannelOptions = {
  "grpc.initial_reconnect_backoff_ms": 100,
  "grpc.max_reconnect_backoff_ms": 1000,
};
