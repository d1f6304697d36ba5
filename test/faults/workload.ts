/**
 * The load of a fault round: producers that write unique values ("p<producer>-<n>") with
 * acks=ALL, each request to a random node (a thin client knows one address; the node forwards
 * to the leader), one request in flight per producer; and consumers that poll every partition
 * through a random node (a follower serves what is below its own high watermark). Everything
 * they learn goes into the round's History; the checker judges it afterwards.
 *
 * Choices (node, partition, batch size, pauses) come from seeded generators, one per producer
 * and consumer; what the cluster answers depends on timing, so a replay repeats the choices,
 * not the interleaving.
 */
import type { SeededRandom } from "../../src/base/random.ts";
import { sleep } from "../integration/cluster-harness.ts";
import type { NodeClients } from "./clients.ts";
import { outcomeOfCallError, outcomeOfDetail, type History, type Outcome, type Write } from "./history.ts";

/** Settings of the load; every field bounded. */
export interface LoadOptions {
  readonly topic: string;
  readonly partitions: number;
  readonly producers: number;
  readonly consumers: number;
  /** Values per Produce request, drawn from [1, batchMax]. */
  readonly batchMax: number;
  /** Broker-side acks=ALL wait (`timeout_ms`). */
  readonly produceTimeoutMs: number;
  /** Client deadline of a Produce call (beyond it the outcome is unknown). */
  readonly produceDeadlineMs: number;
  /** Pause between two requests of one producer, drawn from [0, pauseMaxMs]. */
  readonly pauseMaxMs: number;
}

/** Running producers and consumers; `stop()` ends them and waits for calls in flight. */
export interface Load {
  stop(): Promise<void>;
}

/** Starts the producers and consumers of `o` on `clients` (by node id). */
export function startLoad(o: LoadOptions, clients: ReadonlyMap<number, NodeClients>, h: History, t0: number, rnd: SeededRandom): Load {
  let stopped = false;
  const nodes = [...clients.keys()].sort((a, b) => a - b);
  const loops: Promise<void>[] = [];
  for (let i = 1; i <= o.producers; i++) loops.push(produceLoop(i, rnd.fork()));
  for (let i = 1; i <= o.consumers; i++) loops.push(consumeLoop(i, rnd.fork()));
  return {
    async stop() {
      stopped = true;
      await Promise.all(loops);
    },
  };

  async function produceLoop(id: number, r: SeededRandom): Promise<void> {
    let n = 0;
    while (!stopped) {
      const node = nodes[r.int(nodes.length)]!;
      const partition = r.int(o.partitions);
      const count = 1 + r.int(o.batchMax);
      const sentAtMs = Date.now() - t0;
      const writes: Write[] = [];
      for (let k = 0; k < count; k++) {
        const w: Write = { value: `p${id}-${n++}`, producer: id, partition, node, sentAtMs, doneAtMs: -1, outcome: null };
        h.writes.set(w.value, w);
        writes.push(w);
      }
      const outcomes = await produceOnce(
        clients.get(node)!,
        o,
        partition,
        writes.map((w) => w.value),
      );
      const doneAtMs = Date.now() - t0;
      writes.forEach((w, k) => {
        w.doneAtMs = doneAtMs;
        w.outcome = outcomes[k]!;
      });
      // A node that does not answer is not hammered: back off a little after no answer.
      const pause = r.int(o.pauseMaxMs + 1) + (outcomes[0]!.kind === "unknown" ? 50 : 0);
      if (pause > 0) await sleep(pause);
    }
  }

  async function consumeLoop(id: number, r: SeededRandom): Promise<void> {
    const positions = new Map<number, number>(Array.from({ length: o.partitions }, (_, p) => [p, 0]));
    while (!stopped) {
      const node = nodes[r.int(nodes.length)]!;
      const atMs = Date.now() - t0;
      const asked = new Map(positions);
      try {
        const res = await clients.get(node)!.fetch(o.topic, asked, { maxWaitMs: 50 + r.int(200), deadlineMs: 2_000 });
        for (const fp of res.partitions) {
          if (fp.error || fp.records.length === 0) continue;
          const from = asked.get(fp.partition)!;
          const offsets = fp.records.map((x) => Number(x.offset));
          h.reads.push({
            reader: `consumer ${id}`,
            node,
            partition: fp.partition,
            from,
            atMs,
            offsets,
            values: fp.records.map((x) => Buffer.from(x.value ?? new Uint8Array()).toString("utf8")),
          });
          positions.set(fp.partition, Math.max(from, offsets[offsets.length - 1]! + 1));
        }
      } catch {
        await sleep(50); // node down, paused or unreachable: another node next time
      }
    }
  }
}

/** One Produce call; the outcome of each value, in order. */
async function produceOnce(c: NodeClients, o: LoadOptions, partition: number, values: readonly string[]): Promise<Outcome[]> {
  try {
    const res = await c.produce(o.topic, partition, values, o.produceTimeoutMs, o.produceDeadlineMs);
    const pr = res.partitions.find((p) => p.partition === partition);
    return values.map((_, k): Outcome => {
      const rr = res.records[k];
      if (pr?.error) return outcomeOfDetail(pr.error);
      if (!rr || rr.offset < 0n)
        return {
          kind: "unknown",
          reason: `malformed answer: record ${k} has no offset (${JSON.stringify(rr ?? null, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v))})`,
        };
      return { kind: "ok", partition: rr.partition, offset: Number(rr.offset) };
    });
  } catch (e) {
    const out = outcomeOfCallError(e);
    return values.map(() => out);
  }
}
