/**
 * The idempotent producer's identity and its error vocabulary (the idempotent half of Kafka's
 * TransactionManager). The per-partition rules that use them live in producer.ts.
 *
 * - `ProducerIdentity` holds the producer id and epoch from ProduceService.InitProducerId.
 *   `acquire()` asks for a fresh id the first time, and afterwards bumps the epoch of the id it
 *   holds (KIP-360: the broker then accepts sequence 0 on every partition again, and rejects the
 *   old epoch wherever the new one has written). When the broker no longer knows the id
 *   (UNKNOWN_PRODUCER_ID) it asks for a fresh one instead. Calls retry through retry.ts.
 * - `SequenceCounter`: the next sequence number of one partition, wrapping from 2^31-1 to 0 as
 *   Kafka does (protocol/sequence.ts, the broker's own rule).
 * - Error predicates and the two errors the producer makes itself: `fencedError` (a newer
 *   instance holds this producer id; nothing is retried) and `sequenceGapError` (records the
 *   broker refused because an earlier batch of their partition is missing).
 */

import { Errors, RillError } from "../base/errors.ts";
import { incrementSequence } from "../protocol/sequence.ts";
import type { Connection } from "./connection.ts";
import { toNumber } from "./convert.ts";
import { withRetries } from "./retry.ts";

/** A producer id and epoch from InitProducerId. */
export interface ProducerIdAndEpoch {
  readonly producerId: number;
  readonly producerEpoch: number;
}

/** True for the errors that mean a newer instance holds this producer id: never retried. */
export function isFencing(e: unknown): boolean {
  return e instanceof RillError && (e.kind === Errors.INVALID_PRODUCER_EPOCH || e.kind === Errors.PRODUCER_FENCED);
}

/** True for OUT_OF_ORDER_SEQUENCE_NUMBER: the broker is missing the sequences before a batch. */
export function isOutOfOrderSequence(e: unknown): boolean {
  return e instanceof RillError && e.kind === Errors.OUT_OF_ORDER_SEQUENCE_NUMBER;
}

/** True for DUPLICATE_SEQUENCE_NUMBER (older brokers' answer to a retry of a written batch). */
export function isDuplicateSequence(e: unknown): boolean {
  return e instanceof RillError && e.kind === Errors.DUPLICATE_SEQUENCE_NUMBER;
}

/** The error every pending and later send of a fenced producer fails with. */
export function fencedError(id: ProducerIdAndEpoch | null, cause: unknown): RillError {
  const who = id === null ? "producer" : `producer ${id.producerId} epoch ${id.producerEpoch}`;
  const why = cause instanceof Error ? cause.message : String(cause);
  return new RillError(
    Errors.PRODUCER_FENCED,
    `${who} is fenced: a newer instance holds its producer id, so nothing is retried and this producer sends no more (close it). Broker: ${why}`,
  );
}

/** The sequence range `[base, last]` of a batch of `count` records, for messages. */
export function sequenceRange(baseSequence: number, count: number): string {
  return `${baseSequence}..${incrementSequence(baseSequence, count - 1)}`;
}

/**
 * The error of a batch refused with OUT_OF_ORDER_SEQUENCE_NUMBER while no earlier batch of its
 * partition is unanswered: the gap cannot be filled by a retry. `cause` says what made it (an
 * earlier batch that failed), or null when every earlier batch was acknowledged.
 */
export function sequenceGapError(
  where: string,
  id: ProducerIdAndEpoch | null,
  range: string,
  cause: string | null,
  broker: unknown,
): RillError {
  const why =
    cause !== null
      ? `an earlier batch of the partition failed (${cause}), and the broker refuses later sequences rather than store them out of order`
      : "the broker lacks sequences before these although they were acknowledged (records lost on the broker, or its producer state truncated)";
  const who = id === null ? "" : `producer ${id.producerId} epoch ${id.producerEpoch}, `;
  const said = broker instanceof Error ? broker.message : String(broker);
  return new RillError(
    Errors.OUT_OF_ORDER_SEQUENCE_NUMBER,
    `${where}: records not written: ${why}; ${who}sequences ${range}. Broker: ${said}`,
  );
}

/** The next sequence number of one partition. */
export class SequenceCounter {
  /** @param next the first sequence to hand out (0 for a new producer id or epoch). */
  constructor(public next = 0) {}

  /** Hands out the base sequence of a batch of `count` records and moves past it, wrapping at 2^31-1. */
  take(count: number): number {
    const base = this.next;
    this.next = incrementSequence(base, count);
    return base;
  }
}

/** The producer id and epoch of one idempotent producer, obtained (and bumped) lazily. */
export class ProducerIdentity {
  private id: ProducerIdAndEpoch | null = null;

  /**
   * @param conn where to ask and how to retry;
   * @param transactionalId stable identity across restarts ("" for none): a new instance with the
   *   same value gets the same producer id with a higher epoch and fences this one.
   */
  constructor(
    private readonly conn: Connection,
    private readonly transactionalId: string,
    /** How long a transaction may stay open (0: the broker's default, 60 s). */
    private readonly transactionTimeoutMs = 0,
  ) {}

  /** Holds `id` from now on (the answer of EndTransaction: the epoch bumped, or a new id). */
  adopt(id: ProducerIdAndEpoch): void {
    this.id = id;
  }

  /** The id and epoch held, or null before the first `acquire` (and while one runs). */
  get current(): ProducerIdAndEpoch | null {
    return this.id;
  }

  /**
   * A new id the first time; then the held id with its epoch bumped (a fresh id when the broker
   * no longer knows the held one). Rejects with the broker's error (fencing errors included)
   * after the retry policy gave up; the held id is dropped then, so the next call asks afresh.
   */
  async acquire(): Promise<ProducerIdAndEpoch> {
    const held = this.id;
    this.id = null;
    let res: Awaited<ReturnType<typeof this.call>>;
    if (held === null) {
      res = await this.call(undefined);
    } else {
      try {
        res = await this.call(held);
      } catch (e) {
        if (!(e instanceof RillError && e.kind === Errors.UNKNOWN_PRODUCER_ID)) throw e;
        res = await this.call(undefined);
      }
    }
    this.id = { producerId: toNumber(res.producerId, "producer_id"), producerEpoch: res.producerEpoch };
    return this.id;
  }

  private call(held: ProducerIdAndEpoch | undefined) {
    const request = {
      transactionalId: this.transactionalId,
      transactionTimeoutMs: this.transactionTimeoutMs,
      ...(held === undefined ? {} : { producerId: BigInt(held.producerId), producerEpoch: held.producerEpoch }),
    };
    const attempt = () => this.conn.transport.initProducerId(request, { timeoutMs: this.conn.requestTimeoutMs });
    return withRetries(attempt, this.conn.retry, { random: this.conn.random }).catch((e: unknown) => {
      throw describeInitFailure(e);
    });
  }
}

/** Names the call in a RillError from InitProducerId (connection errors pass as they are). */
function describeInitFailure(e: unknown): unknown {
  if (!(e instanceof RillError) || isFencing(e)) return e;
  const hint = e.message.startsWith("UNIMPLEMENTED") ? " (the broker has no idempotent producer support: pass idempotent: false)" : "";
  return new RillError(e.kind, `InitProducerId: ${e.message}${hint}`);
}
