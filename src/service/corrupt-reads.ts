/**
 * Corrupt reads as events: the service never logs. When a read meets a batch it cannot decode
 * (fetch-records.ts), the handler publishes a `CorruptRead` on the `rill:corrupt-read`
 * diagnostics channel (node:diagnostics_channel, as undici does for its own events); the broker
 * shell subscribes and turns each into a log line at error and the counter
 * `rill_corrupt_reads_total{topic,partition}`. With no subscriber, publishing costs nothing.
 *
 * One process may host several brokers (tests): each event names its `source`, the
 * ReplicaManager that read it, and `onCorruptRead` delivers only the events of one source.
 */
import { channel } from "node:diagnostics_channel";
import type { CorruptBatch } from "./fetch-records.ts";

/** The diagnostics channel's name. */
export const CORRUPT_READ_CHANNEL = "rill:corrupt-read";

/** One read that met a bad batch. */
export interface CorruptRead extends CorruptBatch {
  /** The broker's ReplicaManager (or whatever read it): tells brokers of one process apart. */
  readonly source: object;
  readonly topic: string;
  readonly partition: number;
  /** Which request read it: "fetch", "subscribe" or "consume". */
  readonly api: string;
}

const corruptReads = channel(CORRUPT_READ_CHANNEL);

/** Publishes `event` to the channel's subscribers. */
export function publishCorruptRead(event: CorruptRead): void {
  if (corruptReads.hasSubscribers) corruptReads.publish(event);
}

/** Calls `fn` for each corrupt read of `source`; returns the function that stops it. */
export function onCorruptRead(source: object, fn: (event: CorruptRead) => void): () => void {
  const listener = (message: unknown): void => {
    const e = message as CorruptRead;
    if (e.source === source) fn(e);
  };
  corruptReads.subscribe(listener);
  return () => corruptReads.unsubscribe(listener);
}
