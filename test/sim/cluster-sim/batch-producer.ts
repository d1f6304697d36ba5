/**
 * A batching acks=all producer (settings.lingerMs > 0), as Kafka's producer batches: its
 * application hands it one record every 1..2 × `produceEveryMs` (mean `produceEveryMs`), each
 * to a random partition of the topic; it keeps them per partition (its accumulator) and, with one
 * request in flight, sends the partition whose oldest record has waited longest, once that record
 * has waited `lingerMs` (linger.ms), as one batch of every record of the partition waiting then
 * (at most BATCH_RECORDS_MAX: batch.size). So its records per second are its application's,
 * not bounded by the acknowledgement's round trip, and its batches grow with that round trip.
 *
 * A failed request's records stay at the front of their partition's queue, to be sent again
 * (Kafka's producer retries until delivery.timeout.ms; without idempotence a retry may write a
 * record twice, which the write-copies check allows per copy handled), after a Metadata request
 * and a pause of RETRY_BACKOFF_MS (retry.backoff.ms), so a leader that just died is not asked
 * again every few milliseconds until the controller fences it. `failedProduces` counts the
 * records of failed requests; records still unacknowledged when producers stop are dropped.
 *
 * A request carries one partition's batch (Kafka's carries the ready batches of every partition
 * the broker leads; with one request in flight, a record waits for the requests before it either
 * way). Its values are `p<id>-<n>`, as the single-record producer's (cluster.ts `producer`); the
 * checks are the same, per record.
 *
 * The application's records need no event each: when the producer wakes it draws the arrivals
 * up to now from the run's randomness (in order, so a run is still a function of its seed).
 */
import { RillError } from "../../../src/base/errors.ts";
import type { SeededRandom } from "../../../src/base/random.ts";
import { encodeBatch } from "../../../src/protocol/record-batch.ts";
import type { WriteCopies } from "./duplicates.ts";
import type { History } from "./history.ts";
import type { SimNode } from "./node.ts";
import { SIM_EPOCH_MS, type World } from "./world.ts";

/** Records of one batch at most (batch.size: 16 KiB of these ~10-byte values would be more). */
export const BATCH_RECORDS_MAX = 500;
/** After a failed request, the producer waits this long before its next (Kafka's retry.backoff.ms default). */
export const RETRY_BACKOFF_MS = 100;

/** What a batching producer needs of its run (cluster.ts). */
export interface BatchProducerEnv {
  readonly world: World;
  readonly random: SeededRandom;
  readonly topic: string;
  readonly partitions: number;
  readonly produceEveryMs: number;
  readonly lingerMs: number;
  readonly history: History;
  readonly copies: WriteCopies;
  /** Whether producers stop (the run's end). */
  readonly stopping: () => boolean;
  /** The clients' belief of `partition`'s leader, and a Metadata request to refresh it. */
  readonly leaderOf: (partition: number) => number | undefined;
  readonly refreshLeader: (partition: number) => Promise<void>;
  readonly call: <T>(to: number, fn: (n: SimNode) => T | Promise<T>) => Promise<T>;
  readonly sleep: (ms: number) => Promise<void>;
  readonly trace: (line: string) => void;
  /** An acknowledgement of producer `id` (the liveness check counts those after healing). */
  readonly onAck: (id: number) => void;
}

interface Pending {
  readonly value: string;
  /** Its n: the value is `p<id>-<n>` (its count of handled requests is `counts.handled[n]`, WriteCopies). */
  readonly n: number;
  /** When the application handed it over (simulated ms): its create time. */
  readonly atMs: number;
  /** Whether a request carried it already (it is counted as produced once). */
  sent: boolean;
}

/** Runs batching producer `id` until the run stops. */
export async function batchProducer(env: BatchProducerEnv, id: number): Promise<void> {
  const { world, random } = env;
  const waiting: Pending[][] = Array.from({ length: env.partitions }, () => []);
  let n = 0;
  /** What WriteCopies counts of this producer's values (`p<id>-<n>`). */
  const counts = env.copies.producer(id);
  let nextArrival = world.now + 1 + random.int(2 * env.produceEveryMs);
  /** The application's records up to now, each to a random partition. */
  const arrive = (): void => {
    while (nextArrival <= world.now) {
      counts.add(n);
      waiting[random.int(env.partitions)]!.push({ value: `p${id}-${n}`, n, atMs: nextArrival, sent: false });
      n++;
      nextArrival += 1 + random.int(2 * env.produceEveryMs);
    }
  };
  /**
   * The last batch encoded (its records fix its bytes: each has its create time), kept unsent: a
   * failed request's records go back to the front of their queue and, while nothing is
   * acknowledged, the next request of that partition carries the same ones again (up to
   * BATCH_RECORDS_MAX), often for seconds of faults.
   */
  let last: { first: Pending; end: Pending; n: number; bytes: Buffer } | null = null;
  /** A request's batch of `batch`: a copy of the last one's bytes when it carries the same records. */
  const encoded = (batch: readonly Pending[]): Buffer => {
    const first = batch[0]!;
    const end = batch[batch.length - 1]!;
    if (last !== null && last.first === first && last.end === end && last.n === batch.length) return Buffer.from(last.bytes);
    const bytes = encodeBatch(
      batch.map((r) => ({ value: r.value, timestampMs: SIM_EPOCH_MS + r.atMs })),
      { nowMs: world.clock.nowMs() },
    );
    last = { first, end, n: batch.length, bytes: Buffer.from(bytes) };
    return bytes;
  };
  while (!env.stopping()) {
    arrive();
    // The partition whose oldest record waited longest.
    let partition = -1;
    for (let p = 0; p < env.partitions; p++) {
      const w = waiting[p]!;
      if (w.length > 0 && (partition < 0 || w[0]!.atMs < waiting[partition]![0]!.atMs)) partition = p;
    }
    const sendAt = partition < 0 ? nextArrival + env.lingerMs : waiting[partition]![0]!.atMs + env.lingerMs;
    if (sendAt > world.now) {
      await env.sleep(sendAt - world.now);
      continue;
    }
    const leader = env.leaderOf(partition);
    if (leader === undefined) {
      await env.refreshLeader(partition);
      await env.sleep(1);
      continue;
    }
    // The batch stays at the front of its queue until acknowledged (nothing arrives meanwhile:
    // `arrive` runs between requests): a failed one is there to send again as it was.
    const batch = waiting[partition]!.slice(0, BATCH_RECORDS_MAX);
    for (const r of batch) {
      if (r.sent) continue;
      r.sent = true;
      env.history.produced++;
    }
    const first = batch[0]!.value;
    const what = batch.length === 1 ? first : `${first} +${batch.length - 1}`;
    try {
      const { offset, decidedAt } = await env.call(leader, async (node) => {
        for (const r of batch) counts.handled[r.n]!++;
        const run = node.running!;
        const bytes = encoded(batch);
        const res = run.rm.append(env.topic, partition, bytes, "all");
        await run.rm.replicated(env.topic, partition, res.lastOffset, 5000);
        await run.rm.durable(env.topic, partition);
        return { offset: res.baseOffset, decidedAt: world.now };
      });
      waiting[partition]!.splice(0, batch.length);
      batch.forEach((r, i) => env.history.acked({ partition, offset: offset + i, value: r.value, atMs: decidedAt }));
      env.trace(`ack ${what} -> ${env.topic}-${partition}@${offset} (leader ${leader})`);
      env.onAck(id);
    } catch (e) {
      env.history.failedProduces += batch.length;
      const why = e instanceof RillError ? e.kind.name : (e as Error).message;
      env.trace(`produce ${what} -> ${env.topic}-${partition} at node ${leader} failed: ${why}`);
      await env.refreshLeader(partition);
      await env.sleep(RETRY_BACKOFF_MS);
    }
  }
}
