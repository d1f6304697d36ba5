/**
 * Subscribe: follows the log end of each partition and sends a message whenever data arrives.
 * It reads more only once the sink has room, so a slow client holds a bounded amount of the
 * broker's memory; its disk reads fill buffers taken from `ReadBuffers`, given back once the
 * message that holds them has been sent. Each message reserves its memory from the broker's
 * `FetchMemory` before it reads and gives it back once sent (or when the stream ends). A
 * partition with an error (CORRUPT_MESSAGE for a stored batch that cannot be read, with the
 * batch's offset) is answered once and dropped, while the others go on; the loop ends when none
 * are left, the caller cancels or the broker shuts down. A partition whose new leader does not
 * know its high watermark yet (OFFSET_NOT_AVAILABLE, see fetch.ts `awaitsHw`) is no error here:
 * it sends nothing until the high watermark is known.
 */
import { RillError } from "../base/errors.ts";
import type { Reservation } from "../base/memory-budget.ts";
import type { FetchPosition, ReplicaManager } from "../replication/replica-manager.ts";
import { type FetchMemory, UNBOUNDED_FETCH_MEMORY, awaitsHw, partitionResult, planFetch, readWithinBudget } from "./fetch.ts";
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
  memory: FetchMemory = UNBOUNDED_FETCH_MEMORY,
): Promise<void> {
  const p = planFetch(input.partitions, input.maxBytes, 1, input.maxWaitMs, input.format, "subscribe", input.isolationLevel ?? 0);
  const held = new Set<Reservation>();
  try {
    await follow(rm, p, sink, cancel, buffers, memory, held);
  } finally {
    // Messages cancelled before they were sent never call back: what they held goes here.
    for (const r of held) r.release();
  }
}

async function follow(
  rm: ReplicaManager,
  p: ReturnType<typeof planFetch>,
  sink: SubscribeSink,
  cancel: Cancellation,
  buffers: ReadBuffers,
  memory: FetchMemory,
  held: Set<Reservation>,
): Promise<void> {
  const idleMs = p.maxWaitMs || SUBSCRIBE_IDLE_MS;
  let positions = p.positions;
  while (!cancel.aborted && !rm.closed && positions.length > 0) {
    const taken: Buffer[] = [];
    const r = await readWithinBudget(rm, { ...p, positions }, memory, cancel, (size) => {
      const b = buffers.take(size);
      taken.push(b);
      return b;
    }).catch((e: unknown) => {
      // A stream waits for memory as long as it lives: try again.
      if (e instanceof RillError && e.kind.name === "FETCH_MEMORY_EXHAUSTED") return null;
      throw e;
    });
    if (r === null) continue;
    const reservation = r.held;
    if (reservation) held.add(reservation);
    const giveBack = (): void => {
      taken.forEach((b) => buffers.give(b));
      reservation?.release();
      if (reservation) held.delete(reservation);
    };
    if (r.data.length === 0) break; // cancelled or shut down while waiting for memory
    if (r.bytes === 0 && r.errors === 0) {
      giveBack();
      await rm.waitForData(idleMs, cancel);
      continue;
    }
    const parts: FetchPartitionResult[] = [];
    const next: FetchPosition[] = [];
    r.data.forEach((d, i) => {
      const pos = positions[i]!;
      // Nothing read, or a new leader that does not know its high watermark yet: nothing to send, it stays.
      if (awaitsHw(d) || (!d.error && !(d.read && d.read.bytes > 0))) return void next.push(pos);
      const res = partitionResult(d, pos, p.records, rm, "subscribe");
      parts.push(res);
      if (!res.error) next.push({ ...pos, offset: res.nextOffset });
    });
    positions = next;
    sink.send({ partitions: parts }, r.bytes, giveBack);
    await sink.room(cancel);
  }
}
