/**
 * A broker's core for service tests: in-memory files, a manual clock, timers that fire only when
 * the test moves time, and topics whose partitions are led by whichever broker the test says
 * (node 1 is "here"). No gRPC, no generated code.
 */
import { openMemoryLogs } from "../storage/helpers.ts";
import { ManualClock } from "../../../src/base/clock.ts";
import type { Timers } from "../../../src/base/timers.ts";
import type { MetadataRecord } from "../../../src/metadata/records.ts";
import { LocalMetadataStore } from "../../../src/metadata/store.ts";
import { ReplicaManager } from "../../../src/replication/replica-manager.ts";
import { MemoryFileSystem } from "../../../src/storage/fs.ts";

/** Timers on a ManualClock: `advance(ms)` moves the clock and fires what falls due, in order. */
export class ManualTimers implements Timers {
  private nextId = 1;
  private readonly pending = new Map<number, { at: number; fn: () => void; everyMs: number }>();

  constructor(private readonly clock: ManualClock) {}

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.pending.set(id, { at: this.clock.nowMs() + Math.max(0, ms), fn, everyMs: 0 });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }

  setInterval(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.pending.set(id, { at: this.clock.nowMs() + ms, fn, everyMs: Math.max(1, ms) });
    return id;
  }

  clearInterval(handle: unknown): void {
    this.pending.delete(handle as number);
  }

  /** Timers waiting to fire. */
  get size(): number {
    return this.pending.size;
  }

  /** Moves the clock by `ms`, firing each timer that falls due at its own time. */
  advance(ms: number): void {
    const until = this.clock.nowMs() + ms;
    for (;;) {
      let due: [number, { at: number; fn: () => void; everyMs: number }] | null = null;
      for (const e of this.pending) if (e[1].at <= until && (due === null || e[1].at < due[1].at)) due = e;
      if (due === null) break;
      const [id, t] = due;
      this.clock.set(Math.max(this.clock.nowMs(), t.at));
      if (t.everyMs > 0) t.at += t.everyMs;
      else this.pending.delete(id);
      t.fn();
    }
    this.clock.set(until);
  }
}

/** A partition to create: who leads it, and who else is in its replica set and ISR. */
export interface PartitionSpec {
  readonly leader: number;
  readonly followers?: readonly number[];
}

/** A single broker (node 1) with its replica manager. */
export interface Core {
  readonly rm: ReplicaManager;
  readonly clock: ManualClock;
  readonly timers: ManualTimers;
  /** Node 1's metadata store (commit records to change leaders, epochs, configs). */
  readonly store: LocalMetadataStore;
  /** Creates a topic; each partition as given (a number: led by that node, no followers). */
  topic(name: string, partitions: readonly (number | PartitionSpec)[], configs?: Record<string, string>): Promise<void>;
  /** Registers brokers in the image at broker epoch `epoch` (replica fetches count only under it, KIP-903). */
  brokers(nodeIds: readonly number[], epoch: number): Promise<void>;
  close(): Promise<void>;
}

/** The node id of the broker under test. */
export const HERE = 1;

/** Opens node 1's logs, metadata and replica manager on an in-memory file system. */
export function openCore(): Core {
  const fs = new MemoryFileSystem();
  const clock = new ManualClock();
  const timers = new ManualTimers(clock);
  const logs = openMemoryLogs(fs, clock);
  const store = LocalMetadataStore.open(fs, "/d", clock);
  const rm = new ReplicaManager(logs, store, clock, timers, HERE);
  let topics = 0;
  return {
    rm,
    clock,
    timers,
    store,
    topic: async (name, partitions, configs = {}) => {
      const topicId = (++topics).toString(16).padStart(32, "0");
      await store.commit(() => [
        { type: "topic", v: 1, name, topicId, configs },
        ...partitions.map((spec, partition) => {
          const p = typeof spec === "number" ? { leader: spec } : spec;
          const replicas = [p.leader, ...(p.followers ?? [])];
          return {
            type: "partition" as const,
            v: 1 as const,
            topic: name,
            partition,
            replicas,
            isr: replicas,
            leader: p.leader,
            leaderEpoch: 0,
            partitionEpoch: 0,
          };
        }),
      ]);
    },
    brokers: async (nodeIds, epoch) => {
      await store.commit(() => nodeIds.map((nodeId) => brokerRecord(nodeId, epoch)));
    },
    close: async () => {
      rm.close();
      await logs.close();
      await store.close();
    },
  };
}

/** A registered, unfenced broker `nodeId` at broker epoch `epoch`, as the metadata log holds it. */
export function brokerRecord(nodeId: number, epoch: number): MetadataRecord {
  return {
    type: "broker",
    v: 1,
    nodeId,
    address: `127.0.0.1:${9000 + nodeId}`,
    roles: ["broker"],
    fenced: false,
    incarnationId: `inc-${nodeId}-${epoch}`,
    epoch,
  };
}

/** Lets pending promise callbacks run. */
export const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
