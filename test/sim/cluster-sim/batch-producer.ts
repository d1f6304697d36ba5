/**
 * A batching acks=all producer (settings.lingerMs > 0), as Kafka's producer batches: its
 * application hands it one record every 1..2 × `produceEveryMs` (mean `produceEveryMs`), each
 * to a random partition of the topic; it keeps them per partition (its accumulator) and, with one
 * request in flight, sends the partition whose oldest record has waited longest, once that record
 * has waited `lingerMs` (linger.ms), as one batch of every record of the partition waiting then
 * (at most BATCH_RECORDS_MAX: batch.size). So its records per second are its application's,
 * not bounded by the acknowledgement's round trip, and its batches grow with that round trip.
 *
 * A request carries one partition's batch (Kafka's carries the ready batches of every partition
 * the broker leads; with one request in flight that changes how many records a request carries,
 * not how many requests a record costs). A batch that fails is given up, its records counted as
 * failed, as the single-record producer gives up its record (cluster.ts `producer`). Its values
 * are `p<id>-<n>`, as that producer's; the checks are the same, per record.
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
  /** When the application handed it over (simulated ms): its create time. */
  readonly atMs: number;
}

/** Runs batching producer `id` until the run stops. */
export async function batchProducer(env: BatchProducerEnv, id: number): Promise<void> {
  const { world, random } = env;
  const waiting: Pending[][] = Array.from({ length: env.partitions }, () => []);
  let n = 0;
  let nextArrival = world.now + 1 + random.int(2 * env.produceEveryMs);
  /** The application's records up to now, each to a random partition. */
  const arrive = (): void => {
    while (nextArrival <= world.now) {
      waiting[random.int(env.partitions)]!.push({ value: `p${id}-${n++}`, atMs: nextArrival });
      nextArrival += 1 + random.int(2 * env.produceEveryMs);
    }
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
    const batch = waiting[partition]!.splice(0, BATCH_RECORDS_MAX);
    env.history.produced += batch.length;
    const first = batch[0]!.value;
    const what = batch.length === 1 ? first : `${first} +${batch.length - 1}`;
    try {
      const { offset, decidedAt } = await env.call(leader, async (node) => {
        for (const r of batch) env.copies.handle(r.value);
        const run = node.running!;
        const bytes = encodeBatch(
          batch.map((r) => ({ value: r.value, timestampMs: SIM_EPOCH_MS + r.atMs })),
          { nowMs: world.clock.nowMs() },
        );
        const res = run.rm.append(env.topic, partition, bytes, "all");
        await run.rm.replicated(env.topic, partition, res.lastOffset, 5000);
        await run.rm.durable(env.topic, partition);
        return { offset: res.baseOffset, decidedAt: world.now };
      });
      batch.forEach((r, i) => env.history.acked({ partition, offset: offset + i, value: r.value, atMs: decidedAt }));
      env.trace(`ack ${what} -> ${env.topic}-${partition}@${offset} (leader ${leader})`);
      env.onAck(id);
    } catch (e) {
      env.history.failedProduces += batch.length;
      const why = e instanceof RillError ? e.kind.name : (e as Error).message;
      env.trace(`produce ${what} -> ${env.topic}-${partition} at node ${leader} failed: ${why}`);
      await env.refreshLeader(partition);
    }
  }
}
