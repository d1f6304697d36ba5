/**
 * A pipelined ProduceStream: `send(request)` returns the response as a promise, while up to
 * `inFlightMax` requests travel on one bidi stream at once. Requests carry a `request_id` and
 * responses are matched by it (the broker answers in order; a response for an id that is not
 * outstanding breaks the stream, like a lost connection).
 *
 * Failure model: a whole-request error answered in band (`ProduceStreamResponse.error`) rejects
 * that request only. When the stream itself fails (connection lost, broker gone, no response
 * within `responseTimeoutMs`), every outstanding request rejects with that error — a
 * ConnectionError or REQUEST_TIMED_OUT, both retriable — and the next `send` opens a new stream.
 * Requests still waiting for a slot were never written, so they go out on the new stream.
 *
 * `endTransaction` sends a transactional producer's EndTransaction on the same stream (issue 17):
 * answered in order like a produce, without a call of its own; `sendWithEnd` sends it in the
 * message of the transaction's last produce request (one message and one answer for both).
 */

import { Errors, RillError } from "../base/errors.ts";
import type { EndTransactionResponse, ProduceResponse, ProduceStreamResponse } from "../gen/rill/v1/produce_service_pb.ts";
import type { EndTransactionStreamInput, ProduceRequestInput } from "./wire-codec.ts";
import { ClientClosedError, ConnectionError, fromErrorDetail } from "./errors.ts";
import { Fifo } from "./fifo.ts";
import type { ProduceStream, Transport } from "./transport.ts";

/** Limits of a ProduceChannel. */
export interface ProduceChannelOptions {
  /** Requests written to the stream and not yet answered, at most. */
  readonly inFlightMax: number;
  /** How long the oldest outstanding request may go unanswered before the stream is given up. */
  readonly responseTimeoutMs: number;
}

type EndInput = EndTransactionStreamInput["endTransaction"];

/** How the end of a transaction sent with a produce request (`sendWithEnd`) is answered. */
interface EndAnswer {
  readonly resolve: (response: EndTransactionResponse) => void;
  readonly reject: (error: Error) => void;
}

type Pending =
  | {
      readonly request: ProduceRequestInput;
      /** The end of the transaction, in the same message (`sendWithEnd`). */
      readonly end?: EndInput | undefined;
      readonly endAnswer?: EndAnswer | undefined;
      readonly resolve: (response: ProduceResponse) => void;
      readonly reject: (error: Error) => void;
      sentAtMs: number;
    }
  | {
      readonly request?: undefined;
      readonly end: EndInput;
      readonly endAnswer?: undefined;
      readonly resolve: (response: EndTransactionResponse) => void;
      readonly reject: (error: Error) => void;
      sentAtMs: number;
    };

/** One pipelined ProduceStream, reopened on demand after a failure. */
export class ProduceChannel {
  private stream: ProduceStream | null = null;
  private nextRequestId = 1;
  /** Written and not yet answered, by request id, in write order. */
  private readonly outstanding = new Map<number, Pending>();
  private readonly waiting = new Fifo<Pending>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private closed = false;
  private onStreamDone: (() => void) | null = null;

  /** @param transport where streams are opened; @param options limits. */
  constructor(
    private readonly transport: Transport,
    private readonly options: ProduceChannelOptions,
  ) {}

  /** Requests written and not yet answered. */
  get inFlight(): number {
    return this.outstanding.size;
  }

  /** Sends `request` when a slot is free; resolves with its response. */
  send(request: ProduceRequestInput): Promise<ProduceResponse> {
    if (this.closed) return Promise.reject(new ClientClosedError("producer"));
    return new Promise((resolve, reject) => {
      this.waiting.push({ request, resolve, reject, sentAtMs: 0 });
      this.writeWaiting();
    });
  }

  /**
   * Sends `request` and the end of its transaction in one message (issue 17): the broker ends
   * the transaction once `request` is answered (refusing a commit after it failed). Two answers,
   * from the one response; a broken stream rejects both.
   */
  sendWithEnd(request: ProduceRequestInput, end: EndInput): { produced: Promise<ProduceResponse>; ended: Promise<EndTransactionResponse> } {
    if (this.closed) {
      const e = new ClientClosedError("producer");
      return { produced: Promise.reject(e), ended: Promise.reject(e) };
    }
    let endAnswer: EndAnswer | undefined;
    const ended = new Promise<EndTransactionResponse>((resolve, reject) => {
      endAnswer = { resolve, reject };
    });
    const produced = new Promise<ProduceResponse>((resolve, reject) => {
      this.waiting.push({ request, end, endAnswer, resolve, reject, sentAtMs: 0 });
      this.writeWaiting();
    });
    return { produced, ended };
  }

  /** Sends an EndTransaction when a slot is free; resolves with its answer. */
  endTransaction(end: EndTransactionStreamInput["endTransaction"]): Promise<EndTransactionResponse> {
    if (this.closed) return Promise.reject(new ClientClosedError("producer"));
    return new Promise((resolve, reject) => {
      this.waiting.push({ end, resolve, reject, sentAtMs: 0 });
      this.writeWaiting();
    });
  }

  /**
   * Ends the stream once nothing is outstanding or waiting (the producer flushes first), and waits
   * up to `timeoutMs` for the broker to end its side; then cancels. Idempotent.
   */
  async close(timeoutMs = 5000): Promise<void> {
    this.closed = true;
    const stream = this.stream;
    if (stream === null) return;
    if (this.outstanding.size > 0 || this.waiting.length > 0) {
      this.fail(new ClientClosedError("producer"));
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.fail(new ClientClosedError("producer"));
        resolve();
      }, timeoutMs);
      this.onStreamDone = () => {
        clearTimeout(timer);
        resolve();
      };
      stream.end();
    });
  }

  private writeWaiting(): void {
    while (this.outstanding.size < this.options.inFlightMax && this.waiting.length > 0) {
      const p = this.waiting.shift()!;
      const id = this.nextRequestId++;
      p.sentAtMs = Date.now();
      this.outstanding.set(id, p);
      this.openStream().write(
        p.request === undefined
          ? { requestId: id, endTransaction: p.end }
          : p.end === undefined
            ? { requestId: id, request: p.request }
            : { requestId: id, request: p.request, endTransaction: p.end },
      );
    }
    this.armTimer();
  }

  private openStream(): ProduceStream {
    if (this.stream !== null) return this.stream;
    const stream = this.transport.openProduceStream({
      onResponse: (m) => {
        if (this.stream === stream) this.onResponse(m);
      },
      onError: (e) => {
        if (this.stream === stream) this.fail(e);
      },
      onEnd: () => {
        if (this.stream !== stream) return;
        if (this.outstanding.size > 0) this.fail(new ConnectionError(this.transport.address, "ProduceStream ended by the broker"));
        else this.dropStream();
      },
    });
    this.stream = stream;
    return stream;
  }

  private onResponse(m: ProduceStreamResponse): void {
    const id = Number(m.requestId);
    const p = this.outstanding.get(id);
    if (p === undefined) {
      // A broken pairing: treat it as a broken stream, so its requests are retried on a new one.
      this.fail(new ConnectionError(this.transport.address, `ProduceStream answered request_id ${m.requestId}, which is not outstanding`));
      return;
    }
    this.outstanding.delete(id);
    const where = p.request === undefined ? "EndTransaction" : `${p.request.topic}-${p.request.partition ?? "?"}`;
    if (m.result.case === "response" && p.request !== undefined) p.resolve(m.result.value);
    else if (m.result.case === "endTransaction" && p.request === undefined) p.resolve(m.result.value);
    else if (m.result.case === "error") p.reject(fromErrorDetail(m.result.value, where));
    else p.reject(new RillError(Errors.UNKNOWN_SERVER_ERROR, `ProduceStream: response ${m.requestId} carries no result`));
    if (p.endAnswer !== undefined) {
      const outcome = m.endTransactionOutcome?.result;
      if (outcome?.case === "response") p.endAnswer.resolve(outcome.value);
      else if (outcome?.case === "error") p.endAnswer.reject(fromErrorDetail(outcome.value, "EndTransaction"));
      else if (m.result.case === "error") p.endAnswer.reject(fromErrorDetail(m.result.value, "EndTransaction"));
      else
        p.endAnswer.reject(
          new RillError(Errors.UNKNOWN_SERVER_ERROR, `ProduceStream: response ${m.requestId} carries no end_transaction_outcome`),
        );
    }
    this.writeWaiting();
  }

  /** The stream failed: outstanding requests reject with `error`; waiting ones go on a new stream. */
  private fail(error: Error): void {
    const stream = this.stream;
    this.dropStream();
    stream?.cancel();
    const failed = [...this.outstanding.values()];
    this.outstanding.clear();
    for (const p of failed) {
      p.reject(error);
      p.endAnswer?.reject(error);
    }
    if (this.closed) {
      for (const p of this.waiting.drain()) {
        p.reject(error);
        p.endAnswer?.reject(error);
      }
    } else {
      this.writeWaiting();
    }
  }

  private dropStream(): void {
    this.stream = null;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const done = this.onStreamDone;
    this.onStreamDone = null;
    done?.();
  }

  /** Keeps one timer, due when the oldest outstanding request times out. */
  private armTimer(): void {
    if (this.timer !== null || this.outstanding.size === 0) return;
    const oldest = this.outstanding.values().next().value!;
    const dueInMs = Math.max(0, oldest.sentAtMs + this.options.responseTimeoutMs - Date.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      const first = this.outstanding.values().next().value;
      if (first === undefined) return;
      if (Date.now() - first.sentAtMs >= this.options.responseTimeoutMs) {
        this.fail(new RillError(Errors.REQUEST_TIMED_OUT, `ProduceStream: no response within ${this.options.responseTimeoutMs} ms`));
      } else {
        this.armTimer();
      }
    }, dueInMs);
  }
}
