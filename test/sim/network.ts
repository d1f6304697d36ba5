/**
 * A simulated network: messages are dropped, duplicated and delayed (hence reordered) at
 * random, and cut by partitions, all from the simulation's seeded random stream.
 */
import type { SeededRandom } from "../../src/base/random.ts";
import { decodeMessage, encodeMessage } from "../../src/raft/codec.ts";
import type { Message, NodeId } from "../../src/raft/types.ts";
import { SIM_SLOW_DELAY } from "./settings.ts";

/** A message on the wire: decoded, or encoded bytes when the run uses the codec. */
type Packet = Message | Uint8Array;

/** The network's fault knobs; the simulator changes them (heal turns faults off). */
export interface NetworkFaults {
  dropRate: number;
  dupRate: number;
  slowRate: number;
  maxDelay: number;
}

/** Messages in flight between simulated nodes. */
export class SimNetwork {
  private readonly queue = new Map<number, Packet[]>();
  /** Directed links that are cut: `from * 1000 + to`. */
  private readonly cut = new Set<number>();
  private readonly random: SeededRandom;
  readonly faults: NetworkFaults;
  private readonly wire: boolean;
  sent = 0;
  dropped = 0;
  /** Messages sent, by type. */
  readonly byType: Record<string, number> = {};

  constructor(random: SeededRandom, faults: NetworkFaults, wire: boolean) {
    this.random = random;
    this.faults = faults;
    this.wire = wire;
  }

  /** Queues `m` sent at step `now`, unless a fault or partition eats it. */
  send(m: Message, now: number): void {
    this.sent++;
    this.byType[m.type] = (this.byType[m.type] ?? 0) + 1;
    const r = this.random;
    if (this.cut.has(m.from * 1000 + m.to) || r.next() < this.faults.dropRate) {
      this.dropped++;
      return;
    }
    const packet: Packet = this.wire ? encodeMessage(m) : m;
    this.enqueue(packet, now + this.delay());
    if (r.next() < this.faults.dupRate) this.enqueue(packet, now + this.delay());
  }

  private delay(): number {
    const f = this.faults;
    if (f.slowRate > 0 && this.random.next() < f.slowRate) return 1 + this.random.int(SIM_SLOW_DELAY);
    return 1 + this.random.int(f.maxDelay);
  }

  private enqueue(p: Packet, at: number): void {
    const q = this.queue.get(at);
    if (q === undefined) this.queue.set(at, [p]);
    else q.push(p);
  }

  /** The messages due at step `now`, in random order. */
  due(now: number): Message[] {
    const q = this.queue.get(now);
    if (q === undefined) return [];
    this.queue.delete(now);
    for (let i = q.length - 1; i > 0; i--) {
      const j = this.random.int(i + 1);
      const t = q[i]!;
      q[i] = q[j]!;
      q[j] = t;
    }
    return q.map((p) => (p instanceof Uint8Array ? decodeMessage(p) : p));
  }

  /** Cuts the link from `a` to `b` (one way). */
  cutLink(a: NodeId, b: NodeId): void {
    this.cut.add(a * 1000 + b);
  }

  /** Cuts both ways between every node of `side` and every other node. */
  partition(side: readonly NodeId[], all: readonly NodeId[]): void {
    for (const a of side) {
      for (const b of all) {
        if (side.includes(b)) continue;
        this.cutLink(a, b);
        this.cutLink(b, a);
      }
    }
  }

  /** Restores every link. */
  heal(): void {
    this.cut.clear();
  }

  /** Whether any link is cut. */
  partitioned(): boolean {
    return this.cut.size > 0;
  }

  /** Messages still in flight. */
  inFlight(): number {
    let n = 0;
    for (const q of this.queue.values()) n += q.length;
    return n;
  }
}
