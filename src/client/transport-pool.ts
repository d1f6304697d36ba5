/**
 * Where the SDK's connections live: one `Transport` (one grpc-js channel, one HTTP/2 connection)
 * per broker address, opened on first use and shared by everything a client does with that
 * broker (produce streams, fetches, metadata, group streams). `close()` closes them all.
 *
 * A pool is either *owning* (it made its transports with a factory, GrpcTransport by default,
 * and closes them) or *fixed* (the application gave one transport: every address maps to it, and
 * the pool never closes it — the single-broker setups and in-memory tests of before clusters).
 *
 * `parseBootstrap` reads the `bootstrap` option: "host:port" or a comma-separated list of them.
 */

import { ClientClosedError } from "./errors.ts";
import { GrpcTransport, checkAddress } from "./grpc-transport.ts";
import type { Transport } from "./transport.ts";

/** Makes the transport of one broker address. */
export type TransportFactory = (address: string) => Transport;

/** Splits `bootstrap` ("h:p" or "h1:p1,h2:p2") into checked, distinct addresses; RangeError when empty or malformed. */
export function parseBootstrap(bootstrap: string): string[] {
  const addresses = bootstrap
    .split(",")
    .map((a) => a.trim())
    .filter((a) => a !== "");
  if (addresses.length === 0) throw new RangeError(`bootstrap: "${bootstrap}" names no address`);
  return [...new Set(addresses.map(checkAddress))];
}

/** One transport per broker address. */
export class TransportPool {
  private readonly transports = new Map<string, Transport>();
  private closed = false;

  private constructor(
    private readonly factory: TransportFactory,
    /** The one transport of a fixed pool; null when the pool makes its own. */
    readonly fixedTransport: Transport | null,
  ) {}

  /** A pool that opens a transport per address with `factory` (default: GrpcTransport) and closes them. */
  static owning(factory: TransportFactory = (address) => new GrpcTransport(address)): TransportPool {
    return new TransportPool(factory, null);
  }

  /** A pool in which every address is reached through `transport` (not closed by the pool). */
  static fixed(transport: Transport): TransportPool {
    return new TransportPool(() => transport, transport);
  }

  /** True when every address maps to one transport given by the application. */
  get fixed(): boolean {
    return this.fixedTransport !== null;
  }

  /** The transport of `address`, opened now if it is the first use. */
  get(address: string): Transport {
    if (this.fixedTransport !== null) return this.fixedTransport;
    let t = this.transports.get(address);
    if (t === undefined) {
      if (this.closed) throw new ClientClosedError("client");
      t = this.factory(address);
      this.transports.set(address, t);
    }
    return t;
  }

  /** The addresses with an open transport. */
  get addresses(): string[] {
    return [...this.transports.keys()];
  }

  /** Closes every transport the pool opened (a fixed pool's transport stays open). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.transports.values()) t.close();
    this.transports.clear();
  }
}
