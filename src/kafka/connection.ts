/**
 * One client connection of the Kafka listener: frames in, responses out, in request order.
 *
 * The life of a request:
 * 1. Framing. A request is `INT32 size` then `size` bytes. The size is checked against
 *    `request.bytes.max` before anything is buffered; a frame inside one received chunk is a
 *    view of it (a produce request's batches reach the log without a copy), a frame spread over
 *    chunks is gathered once into a buffer of its size.
 * 2. The header: api key, api version, correlation id, client id (header v1), and tagged fields
 *    when the API's version is flexible (header v2). An unknown API, a version not advertised,
 *    a body that does not parse, or bytes left over after it: the connection is closed with a
 *    log line naming the client, the API and the reason; nothing was handed to a service.
 *    ApiVersions of a version this broker does not know is the exception Kafka defines: it is
 *    answered with UNSUPPORTED_VERSION in the v0 layout, so the client can retry with a version
 *    from that answer.
 * 3. Dispatch. Requests are handed to their handlers in the order they arrived; a handler's
 *    synchronous part (validation, routing, a produce's place in its partition's queue) runs
 *    before the next request is dispatched, so pipelined produces append in order. Up to
 *    `INFLIGHT_MAX` requests may be waiting for their answers (a long-poll Fetch, a JoinGroup);
 *    then the socket stops being read until one is answered.
 * 4. Answers go out in request order: a response that is ready waits for the ones before it.
 *    `NO_RESPONSE` (acks=0) takes its turn and writes nothing. A handler's `afterSent` hooks
 *    run once the socket has written its answer's last chunk (a fetch's read buffers and memory
 *    go back then, not before: the socket refers to them until written), or when the
 *    connection closes first.
 * 5. Closing (by the client, by a malformed frame, by the broker stopping) cancels long polls.
 */
import type { Socket } from "node:net";
import { AssertionError } from "../base/assert.ts";
import { RillError } from "../base/errors.ts";
import { ANONYMOUS, type Principal, hostOfPeer } from "../security/requester.ts";
import type { Cancellation } from "../service/fetch-types.ts";
import { type RequestMetrics, requestMetricsOf } from "../service/request-metrics.ts";
import { type KafkaApi, type KafkaRequestContext, type KafkaSession, NO_RESPONSE } from "./api.ts";
import type { KafkaDeps } from "./deps.ts";
import { KAFKA_ERROR_NAMES } from "./error-codes.ts";
import { decode, encode } from "./schema.ts";
import { KafkaDecodeError, KafkaReader, KafkaWriter } from "./wire.ts";

/** Requests of one connection dispatched and not yet answered before the socket is paused. */
export const INFLIGHT_MAX = 32;
/** Smallest request: api key, api version, correlation id, client id length. */
const HEADER_BYTES_MIN = 10;
/** The key of ApiVersions, answered in the v0 layout when its version is unknown. */
const API_VERSIONS_KEY = 18;
/** UNSUPPORTED_VERSION. */
const UNSUPPORTED_VERSION = 35;

/** The APIs a listener serves, by key. */
export type KafkaApis = ReadonlyMap<number, KafkaApi>;

/** A response slot: filled when its handler is done; `null` chunks: no response. */
interface Slot {
  done: boolean;
  chunks: Buffer[] | null;
  /** What runs once the answer is written, or the connection closes first (`afterSent`). */
  readonly hooks: (() => void)[];
}

/** What the listener tells a connection about its limits. */
export interface ConnectionOptions {
  /** Largest request frame accepted (`request.bytes.max`). */
  readonly requestBytesMax: number;
  /** Whether requests other than ApiVersions and SASL need SASL to have completed first. */
  readonly saslRequired: boolean;
  /** The caller as its client certificate names it (mTLS): authenticated from the start, no SASL. */
  readonly principal?: Principal | undefined;
}

/** Counters of one listener's connections, for metrics and tests. */
export interface ConnectionEvents {
  /** A connection closed because of bad input (the reason as logged). */
  onMalformed?(reason: string): void;
}

/** Serves one socket until it closes. */
export class KafkaConnection {
  private readonly session: KafkaSession;
  /** The cancellations of the requests not answered yet (set when the connection closes). */
  private readonly cancels = new Set<Cancellation>();
  /** Received bytes of the frame being gathered. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Size of the frame being gathered (-1: its size has not arrived yet). */
  private frameSize = -1;
  private readonly slots: Slot[] = [];
  /** The broker's request counters (`rill_requests_total{protocol="kafka"}`). */
  private readonly metrics: RequestMetrics;
  /** Hooks of answers handed to the socket whose write has not completed yet. */
  private readonly writing = new Set<(() => void)[]>();
  private closed = false;

  constructor(
    private readonly socket: Socket,
    private readonly apis: KafkaApis,
    private readonly deps: KafkaDeps,
    private readonly options: ConnectionOptions,
    id: string,
    private readonly events: ConnectionEvents = {},
  ) {
    this.metrics = requestMetricsOf(deps.services.replicas);
    this.session = {
      requester: {
        principal: options.principal ?? ANONYMOUS,
        host: hostOfPeer(`${socket.remoteAddress ?? ""}:${socket.remotePort ?? 0}`),
        clientId: "",
      },
      authenticated: !options.saslRequired || options.principal !== undefined,
      saslMechanism: null,
      state: new Map(),
      id,
      tls: (socket as { encrypted?: boolean }).encrypted === true,
    };
    socket.on("data", (chunk: Buffer) => this.received(chunk));
    socket.on("close", () => this.closedBySocket());
    socket.on("error", () => {
      // "close" follows; a reset by the client is not worth a log line
    });
  }

  /** The connection's session (the authenticated principal after SASL). */
  get requester(): KafkaSession["requester"] {
    return this.session.requester;
  }

  /** Closes the connection (broker stopping or bad input). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.abortAll();
    this.socket.destroy();
    this.releaseAll();
  }

  private closedBySocket(): void {
    this.closed = true;
    this.abortAll();
    this.releaseAll();
  }

  /** The connection is gone: every answer's hooks run (none of them will be written now). */
  private releaseAll(): void {
    for (const slot of this.slots) runHooks(slot.hooks);
    for (const hooks of [...this.writing]) runHooks(hooks);
    this.writing.clear();
  }

  private abortAll(): void {
    const all = [...this.cancels];
    this.cancels.clear();
    for (const c of all) {
      c.aborted = true;
      c.onabort?.();
    }
  }

  /** Gathers frames from the bytes received. */
  private received(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length && !this.closed) {
      if (this.frameSize < 0) {
        // The size prefix, possibly split over chunks.
        const need = 4 - this.pendingBytes;
        const take = Math.min(need, chunk.length - at);
        this.pending.push(chunk.subarray(at, at + take));
        this.pendingBytes += take;
        at += take;
        if (this.pendingBytes < 4) return;
        const size = Buffer.concat(this.pending, 4).readInt32BE(0);
        this.pending = [];
        this.pendingBytes = 0;
        if (size < HEADER_BYTES_MIN || size > this.options.requestBytesMax) {
          this.malformed(
            size < HEADER_BYTES_MIN
              ? `a request of ${size} bytes is shorter than a request header`
              : `a request of ${size} bytes is over request.bytes.max (${this.options.requestBytesMax})`,
          );
          return;
        }
        this.frameSize = size;
        continue;
      }
      const want = this.frameSize - this.pendingBytes;
      if (this.pendingBytes === 0 && chunk.length - at >= want) {
        // The whole frame is in this chunk: a view, no copy.
        const frame = chunk.subarray(at, at + want);
        at += want;
        this.frameSize = -1;
        this.frame(frame);
        continue;
      }
      const take = Math.min(want, chunk.length - at);
      this.pending.push(chunk.subarray(at, at + take));
      this.pendingBytes += take;
      at += take;
      if (this.pendingBytes === this.frameSize) {
        const frame = Buffer.concat(this.pending, this.frameSize);
        this.pending = [];
        this.pendingBytes = 0;
        this.frameSize = -1;
        this.frame(frame);
      }
    }
  }

  /** One whole request frame. */
  private frame(frame: Buffer): void {
    const r = new KafkaReader(frame);
    const key = r.int16();
    const version = r.int16();
    const correlationId = r.int32();
    const api = this.apis.get(key);
    if (api === undefined) return this.malformed(`unknown API key ${key} (version ${version})`);
    if (version < api.versions[0] || version > api.versions[1]) {
      if (key === API_VERSIONS_KEY) return this.unsupportedApiVersions(correlationId);
      return this.malformed(`${api.name} version ${version} is not supported (${api.versions[0]}-${api.versions[1]})`);
    }
    let req: unknown;
    let clientId: string | null;
    try {
      clientId = r.string(false);
      if (version >= api.request.flexibleFrom) skipTaggedFields(r);
      req = decode(api.request, r, version);
      if (r.remaining !== 0) throw new KafkaDecodeError(`${r.remaining} bytes left over after the request`);
    } catch (e) {
      if (e instanceof KafkaDecodeError) return this.malformed(`${api.name} v${version}: ${e.message}`);
      throw e;
    }
    if (!this.session.authenticated && api.beforeAuthentication !== true) {
      return this.malformed(`${api.name} before SASL authentication completed`);
    }
    if (clientId !== null && clientId !== this.session.requester.clientId) {
      this.session.requester = { ...this.session.requester, clientId };
    }
    const cancel: Cancellation = { aborted: false, onabort: null };
    const hooks: (() => void)[] = [];
    this.dispatch(
      api,
      req,
      {
        apiVersion: version,
        correlationId,
        clientId,
        session: this.session,
        deps: this.deps,
        cancel,
        apis: this.apis,
        afterSent: (fn) => hooks.push(fn),
      },
      hooks,
    );
  }

  private dispatch(api: KafkaApi, req: unknown, ctx: KafkaRequestContext, hooks: (() => void)[]): void {
    const slot: Slot = { done: false, chunks: null, hooks };
    this.slots.push(slot);
    this.cancels.add(ctx.cancel);
    if (this.slots.length >= INFLIGHT_MAX) this.socket.pause();
    const started = performance.now();
    const observe = (code: string) => this.metrics.observeRequest(api.name, "kafka", code, (performance.now() - started) / 1000);
    let answer: ReturnType<KafkaApi["handle"]>;
    try {
      answer = api.handle(req as never, ctx);
    } catch (e) {
      answer = Promise.reject(e);
    }
    answer.then(
      (res) => {
        this.cancels.delete(ctx.cancel);
        observe(codeOfAnswer(res));
        if (this.closed) return runHooks(hooks);
        if (res !== NO_RESPONSE) slot.chunks = this.encodeResponse(api, ctx, res);
        slot.done = true;
        this.flush();
      },
      (e: unknown) => {
        this.cancels.delete(ctx.cancel);
        observe(e instanceof RillError ? e.kind.name : "UNKNOWN_SERVER_ERROR");
        runHooks(hooks);
        this.failed(api, ctx, e);
      },
    );
  }

  /** A handler that threw: a bug is not answered (rethrown); anything else closes the connection with a log line. */
  private failed(api: KafkaApi, ctx: KafkaRequestContext, e: unknown): void {
    if (e instanceof AssertionError) {
      queueMicrotask(() => {
        throw e;
      });
      return;
    }
    const message = e instanceof Error ? e.message : String(e);
    this.deps.log.error(
      { connection: this.session.id, client: this.session.requester.host, api: api.name, version: ctx.apiVersion, err: message },
      "kafka request failed; closing the connection",
    );
    this.close();
  }

  private encodeResponse(api: KafkaApi, ctx: KafkaRequestContext, res: unknown): Buffer[] {
    const w = new KafkaWriter();
    w.int32(0).int32(ctx.correlationId);
    // Response header v1 (tagged fields) for flexible versions, except ApiVersions (always v0).
    if (ctx.apiVersion >= api.response.flexibleFrom && api.key !== API_VERSIONS_KEY) w.uvarint(0);
    encode(api.response, res as never, ctx.apiVersion, w);
    return sized(w);
  }

  /** Writes the answers that are ready, in request order. */
  private flush(): void {
    if (this.closed) return;
    let wrote = false;
    while (this.slots.length > 0 && (this.slots[0] as Slot).done) {
      const slot = this.slots.shift() as Slot;
      if (slot.chunks === null) {
        runHooks(slot.hooks);
        continue;
      }
      if (!wrote) this.socket.cork();
      wrote = true;
      this.write(slot.chunks, slot.hooks);
    }
    if (wrote) this.socket.uncork();
    if (this.slots.length < INFLIGHT_MAX && this.socket.isPaused()) this.socket.resume();
  }

  /** Writes one answer's chunks; its hooks run once the socket has written the last one. */
  private write(chunks: readonly Buffer[], hooks: (() => void)[]): void {
    const last = chunks.length - 1;
    for (let i = 0; i < last; i++) this.socket.write(chunks[i] as Buffer);
    if (hooks.length === 0) {
      this.socket.write(chunks[last] as Buffer);
      return;
    }
    this.writing.add(hooks);
    this.socket.write(chunks[last] as Buffer, () => {
      this.writing.delete(hooks);
      runHooks(hooks);
    });
  }

  /** ApiVersions of a version this broker does not know: error 35 and the supported ranges, in the v0 layout. */
  private unsupportedApiVersions(correlationId: number): void {
    const w = new KafkaWriter();
    w.int32(0).int32(correlationId).int16(UNSUPPORTED_VERSION);
    const apis = [...this.apis.values()].sort((a, b) => a.key - b.key);
    w.int32(apis.length);
    for (const a of apis) w.int16(a.key).int16(a.versions[0]).int16(a.versions[1]);
    const slot: Slot = { done: true, chunks: sized(w), hooks: [] };
    this.slots.push(slot);
    this.flush();
  }

  private malformed(reason: string): void {
    this.deps.log.warn(
      { connection: this.session.id, client: this.session.requester.host, reason },
      "kafka connection closed: malformed request",
    );
    this.events.onMalformed?.(reason);
    this.close();
  }
}

/** Runs (once) and forgets the hooks of an answer. */
function runHooks(hooks: (() => void)[]): void {
  for (const fn of hooks.splice(0)) fn();
}

/** The `code` label of an answer: "OK", or the name of its top-level `errorCode` when it has a non-zero one. */
function codeOfAnswer(res: unknown): string {
  const code = typeof res === "object" && res !== null ? (res as { errorCode?: unknown }).errorCode : undefined;
  if (typeof code !== "number" || code === 0) return "OK";
  return KAFKA_ERROR_NAMES.get(code) ?? String(code);
}

/** Skips a tagged-field section (the request header v2's; none is defined). */
function skipTaggedFields(r: KafkaReader): void {
  const n = r.uvarint();
  for (let i = 0; i < n; i++) {
    r.uvarint();
    r.skip(r.uvarint());
  }
}

/** The chunks of a writer whose first 4 bytes were reserved for the size, with the size filled in. */
function sized(w: KafkaWriter): Buffer[] {
  const total = w.length;
  const chunks = w.finish();
  (chunks[0] as Buffer).writeInt32BE(total - 4, 0);
  return chunks;
}
