/**
 * A one-broker world for the group service tests, all in memory: a LogManager on the in-memory
 * FileSystem, a LocalMetadataStore, a ReplicaManager, `__consumer_offsets` (50 partitions led by
 * this broker) and a GroupRuntime on a ManualClock. No sockets, no gRPC, no generated code.
 */
import { openMemoryLogs } from "../storage/helpers.ts";
import { ManualClock } from "../../../src/base/clock.ts";
import { SeededRandom } from "../../../src/base/random.ts";
import { systemTimers } from "../../../src/base/timers.ts";
import {
  GroupRuntime,
  type GroupRuntimeOptions,
  OFFSETS_PARTITIONS,
  OFFSETS_TOPIC,
  OFFSETS_TOPIC_CONFIGS,
} from "../../../src/coordinator/group-runtime.ts";
import { decideCreateTopic } from "../../../src/metadata/controller.ts";
import { LocalMetadataStore } from "../../../src/metadata/store.ts";
import { encodeBatch, readBatchHeader, records as recordCursor } from "../../../src/protocol/record-batch.ts";
import { ReplicaManager } from "../../../src/replication/replica-manager.ts";
import type { ConsumeSubscription } from "../../../src/service/consume-session.ts";
import { MemoryFileSystem } from "../../../src/storage/fs.ts";

/** The broker's parts the services take, and how to stop them. */
export interface GroupWorld {
  readonly rm: ReplicaManager;
  readonly rt: GroupRuntime;
  readonly clock: ManualClock;
  /** Appends one record per value to `topic`-`partition`, as a leader would. */
  produce(topic: string, partition: number, values: readonly string[]): void;
  close(): Promise<void>;
}

/** Creates the world with `topics` (name → partition count), each with replication factor 1. */
export async function groupWorld(topics: Record<string, number>, opts: GroupRuntimeOptions = {}): Promise<GroupWorld> {
  const fs = new MemoryFileSystem();
  const clock = new ManualClock(1_000_000);
  const logs = openMemoryLogs(fs, clock);
  const store = LocalMetadataStore.open(fs, "/d", clock);
  const rm = new ReplicaManager(logs, store, clock, systemTimers, 1);
  const random = new SeededRandom(7);
  await store.commit((img) =>
    decideCreateTopic(
      img,
      { name: OFFSETS_TOPIC, partitions: OFFSETS_PARTITIONS, replicationFactor: 1, configs: { ...OFFSETS_TOPIC_CONFIGS } },
      { partitions: OFFSETS_PARTITIONS, brokers: [1], random, internal: true },
    ),
  );
  for (const [name, partitions] of Object.entries(topics)) {
    await store.commit((img) =>
      decideCreateTopic(img, { name, partitions, replicationFactor: 1, configs: {} }, { partitions, brokers: [1], random }),
    );
  }
  const rt = GroupRuntime.start(rm, clock, random, 1, opts);
  return {
    rm,
    rt,
    clock,
    produce: (topic, partition, values) => {
      rm.append(
        topic,
        partition,
        encodeBatch(
          values.map((value) => ({ value })),
          { nowMs: clock.nowMs() },
        ),
        "leader",
      );
    },
    close: async () => {
      rm.close();
      await logs.close();
      await store.close();
    },
  };
}

/** The offsets and values of the records in `chunks` at or after `from`. */
export function recordsIn(chunks: readonly Buffer[], from: number): Array<{ offset: number; value: string }> {
  const out: Array<{ offset: number; value: string }> = [];
  for (const chunk of chunks) {
    for (let pos = 0; pos < chunk.length; ) {
      const c = recordCursor(chunk, pos);
      while (c.next()) if (c.offset >= from) out.push({ offset: c.offset, value: c.value()!.toString() });
      pos += readBatchHeader(chunk, pos).size;
    }
  }
  return out;
}

/** Resolves once `cond()` holds; fails naming `what` after `timeoutMs`. */
export async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A Consume subscription of group "cg" to topic "t" from the earliest offset; `over` changes fields. */
export const subscription = (over: Partial<ConsumeSubscription> = {}): ConsumeSubscription => ({
  groupId: "cg",
  topics: ["t"],
  instanceId: null,
  autoOffsetReset: "earliest",
  maxOutstandingRecords: 0,
  maxOutstandingBytes: 0,
  sessionTimeoutMs: 0,
  assignor: "",
  clientId: "unit",
  clientHost: "test-host",
  ...over,
});
