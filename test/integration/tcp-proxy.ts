/**
 * A TCP proxy for fault tests: listens on 127.0.0.1 (a free port) and forwards every connection
 * to a broker on 127.0.0.1, byte for byte, with backpressure both ways. Faults:
 * - `cutAll()` destroys every open connection, both sides, at once: the client's calls in
 *   flight fail (grpc-js: UNAVAILABLE) and are retried on a new connection.
 * - `swallow(ms)` stops forwarding broker→client bytes on every open connection for `ms`, then
 *   cuts them. Requests keep flowing to the broker, which applies them, but the client never
 *   sees the answers: it retries requests that were in fact written. gRPC runs over HTTP/2, so
 *   forwarding again after dropping bytes would corrupt its framing; a swallow always ends with
 *   the connection cut. (Dropping "the response of one request" is not possible at the TCP level
 *   for a multiplexed connection; cutting it at random moments loses whatever was in flight.)
 * - `startChaos(options)` injects cuts and swallows at seeded random moments, bounded in count
 *   and time; print `options.seed` to replay the schedule (the broker's timing still varies).
 * - `block(mode)` cuts the link until `unblock()`: "reset" destroys every open connection and
 *   every new one at once (the peer sees connection refused/reset at once); "drop" black-holes
 *   them instead — open and new connections stay up but no byte passes either way, as behind a
 *   firewall that drops packets, so the peer only notices by its deadlines. `unblock()` cuts
 *   the black-holed connections (their HTTP/2 framing is lost) and forwards again.
 * Connections to the broker that fail (it is down) close the client's side at once.
 */
import * as net from "node:net";
import { SeededRandom } from "../../src/base/random.ts";

/** What the proxy did, for test output. */
export interface ProxyStats {
  connections: number;
  cuts: number;
  swallows: number;
  bytesToBroker: number;
  bytesToClient: number;
  bytesSwallowed: number;
  /** Connections refused (reset) or black-holed while blocked. */
  blockedConnections: number;
}

/** How a blocked proxy treats connections: reset them, or hold them and drop every byte. */
export type BlockMode = "reset" | "drop";

/** Random faults; every field bounded. */
export interface ChaosOptions {
  /** Seed of the schedule (print it). */
  readonly seed: number;
  /** Gap between two faults, drawn uniformly from [minGapMs, maxGapMs]. */
  readonly minGapMs: number;
  readonly maxGapMs: number;
  /** Share of faults that swallow answers before the cut (the rest cut at once). */
  readonly swallowShare: number;
  /** A swallow lasts up to this long before its cut. */
  readonly swallowMsMax: number;
  /** Faults at most. */
  readonly faultsMax: number;
  /** No fault starts after this long. */
  readonly durationMs: number;
}

interface Link {
  readonly client: net.Socket;
  readonly broker: net.Socket;
  swallowing: boolean;
}

const LOOPBACK = "127.0.0.1";

/** Forwards `from` to `to` unless `drop()` says otherwise; pauses `from` while `to` is full. */
function forward(from: net.Socket, to: net.Socket, count: (n: number) => void, drop: () => boolean, dropped: (n: number) => void): void {
  from.on("data", (chunk: Buffer) => {
    if (drop()) {
      dropped(chunk.length);
      return;
    }
    count(chunk.length);
    if (!to.write(chunk)) {
      from.pause();
      to.once("drain", () => from.resume());
    }
  });
}

/** The proxy; `TcpProxy.start` makes one. */
export class TcpProxy {
  readonly stats: ProxyStats = {
    connections: 0,
    cuts: 0,
    swallows: 0,
    bytesToBroker: 0,
    bytesToClient: 0,
    bytesSwallowed: 0,
    blockedConnections: 0,
  };
  private readonly links = new Set<Link>();
  /** Client sockets accepted while blocked in "drop" mode (never connected to the broker). */
  private readonly holes = new Set<net.Socket>();
  private blocked: BlockMode | null = null;
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();

  private constructor(
    private readonly server: net.Server,
    private readonly brokerPort: number,
    /** "127.0.0.1:port" clients connect to. */
    readonly address: string,
  ) {}

  /** Listens on 127.0.0.1 (a free port) and forwards to `127.0.0.1:brokerPort`. */
  static async start(brokerAddress: string): Promise<TcpProxy> {
    const m = /^127\.0\.0\.1:(\d+)$/.exec(brokerAddress);
    if (m === null) throw new Error(`tcp-proxy: the broker must be on 127.0.0.1, not ${brokerAddress}`);
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, LOOPBACK, () => resolve());
    });
    const port = (server.address() as net.AddressInfo).port;
    const proxy = new TcpProxy(server, Number(m[1]), `${LOOPBACK}:${port}`);
    server.on("connection", (client) => proxy.accept(client));
    return proxy;
  }

  /** Open connections. */
  get connectionCount(): number {
    return this.links.size;
  }

  /** How the proxy is blocked now, or null when it forwards. */
  get blockMode(): BlockMode | null {
    return this.blocked;
  }

  /** Cuts the link until `unblock()` (see the file comment for the two modes). */
  block(mode: BlockMode = "reset"): void {
    this.blocked = mode;
    if (mode === "reset") this.cutAll();
  }

  /** Forwards again; connections black-holed while blocked are cut first. */
  unblock(): void {
    if (this.blocked === "drop") this.cutAll();
    this.blocked = null;
    for (const s of this.holes) s.destroy();
    this.holes.clear();
  }

  private accept(client: net.Socket): void {
    this.stats.connections++;
    if (this.blocked !== null) {
      this.stats.blockedConnections++;
      if (this.blocked === "reset") {
        client.resetAndDestroy();
        return;
      }
      this.holes.add(client);
      client.on("data", (chunk: Buffer) => (this.stats.bytesSwallowed += chunk.length));
      client.on("error", () => client.destroy());
      client.on("close", () => this.holes.delete(client));
      return;
    }
    const broker = net.connect(this.brokerPort, LOOPBACK);
    const link: Link = { client, broker, swallowing: false };
    this.links.add(link);
    client.setNoDelay(true);
    broker.setNoDelay(true);
    const close = (): void => {
      if (!this.links.delete(link)) return;
      client.destroy();
      broker.destroy();
    };
    for (const s of [client, broker]) {
      s.on("error", close);
      s.on("close", close);
    }
    const dropping = (): boolean => this.blocked === "drop";
    forward(
      client,
      broker,
      (n) => (this.stats.bytesToBroker += n),
      dropping,
      (n) => (this.stats.bytesSwallowed += n),
    );
    forward(
      broker,
      client,
      (n) => (this.stats.bytesToClient += n),
      () => link.swallowing || dropping(),
      (n) => (this.stats.bytesSwallowed += n),
    );
  }

  /** Destroys every open connection (both sides); returns how many. */
  cutAll(): number {
    const n = this.links.size;
    for (const l of [...this.links]) {
      l.client.destroy();
      l.broker.destroy();
      this.links.delete(l);
    }
    if (n > 0) this.stats.cuts++;
    return n;
  }

  /** Drops broker→client bytes on every open connection for `ms`, then cuts those connections. */
  swallow(ms: number): number {
    const victims = [...this.links];
    for (const l of victims) l.swallowing = true;
    if (victims.length > 0) this.stats.swallows++;
    this.later(ms, () => {
      for (const l of victims) {
        l.client.destroy();
        l.broker.destroy();
        this.links.delete(l);
      }
    });
    return victims.length;
  }

  /**
   * Injects faults at seeded random moments until `faultsMax` faults or `durationMs` have passed,
   * or `stop()`; `done` resolves then with the number of faults injected.
   */
  startChaos(o: ChaosOptions): { stop: () => void; done: Promise<number> } {
    const rnd = new SeededRandom(o.seed);
    const until = Date.now() + o.durationMs;
    let faults = 0;
    let stopped = false;
    let finish!: (n: number) => void;
    const done = new Promise<number>((resolve) => (finish = resolve));
    const next = (): void => {
      if (stopped || faults >= o.faultsMax || Date.now() >= until) {
        finish(faults);
        return;
      }
      this.later(o.minGapMs + rnd.next() * (o.maxGapMs - o.minGapMs), () => {
        if (stopped) return next();
        faults++;
        if (rnd.next() < o.swallowShare) this.swallow(1 + rnd.next() * o.swallowMsMax);
        else this.cutAll();
        next();
      });
    };
    next();
    return {
      stop: () => {
        stopped = true;
        finish(faults);
      },
      done,
    };
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  /** Stops listening, cancels pending faults and cuts every connection. */
  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.unblock();
    this.cutAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
