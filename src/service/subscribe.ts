/**
 * Subscribe: follows the log end of each partition and sends a message whenever data arrives.
 * It reads more only once the sink has room, so a slow client holds a bounded amount of the
 * broker's memory; its disk reads fill buffers taken from `ReadBuffers`, given back once the
 * message that holds them has been sent. A partition with an error (CORRUPT_MESSAGE for a
 * stored batch that cannot be read, with the batch's offset) is answered once and dropped,
 * while the others go on; the loop ends when none are left, the caller cancels or the broker shuts down.
 */
import type { FetchPosition, ReplicaManager } from "../replication/replica-manager.ts";
import { partitionResult, planFetch, readAll } from "./fetch.ts";
import type { Cancellation, FetchPartitionResult, ReadBuffers, SubscribeInput, SubscribeSink } from "./fetch-types.ts";

/** How long an idle Subscribe waits between checks of a quiet log when `maxWaitMs` is 0. */
export const SUBSCRIBE_IDLE_MS = 30_000;

/** Runs a Subscribe until it ends (see above); whole-call errors (a bad request) are thrown. */
export async function subscribe(
  rm: ReplicaManager,
  input: SubscribeInput,
  sink: SubscribeSink,
  cancel: Cancellation,
  buffers: ReadBuffers,
): Promise<void> {
  const p = planFetch(input.partitions, input.maxBytes, 1, input.maxWaitMs, input.format, "subscribe");
  const idleMs = p.maxWaitMs || SUBSCRIBE_IDLE_MS;
  let positions = p.positions;
  while (!cancel.aborted && !rm.closed && positions.length > 0) {
    const taken: Buffer[] = [];
    const r = readAll(rm, { ...p, positions }, (size) => {
      const b = buffers.take(size);
      taken.push(b);
      return b;
    });
    const giveBack = (): void => taken.forEach((b) => buffers.give(b));
    if (r.bytes === 0 && r.errors === 0) {
      giveBack();
      await rm.waitForData(idleMs, cancel);
      continue;
    }
    const parts: FetchPartitionResult[] = [];
    const next: FetchPosition[] = [];
    r.data.forEach((d, i) => {
      const pos = positions[i]!;
      if (!d.error && !(d.read && d.read.bytes > 0)) return void next.push(pos);
      const res = partitionResult(d, pos, p.records, rm, "subscribe");
      parts.push(res);
      if (!res.error) next.push({ ...pos, offset: res.nextOffset });
    });
    positions = next;
    sink.send({ partitions: parts }, r.bytes, giveBack);
    await sink.room(cancel);
  }
}
