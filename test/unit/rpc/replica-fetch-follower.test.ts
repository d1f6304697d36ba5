/**
 * A follower's fetch loop (src/replication/fetcher.ts) against a leader's ReplicaFetch handler
 * (src/rpc/replication-service.ts) over a real gRPC stream on 127.0.0.1: two brokers' cores
 * (leader 1, follower 2), each on manual timers that the test never moves, so the leader's
 * long-poll of 30 s can only end by an append it waits for or by the follower's next request.
 *
 * - A partition the follower starts following (a new topic, a leadership move) is fetched at
 *   once, not after the loop's outstanding long-poll ends (replica.fetch.wait.max.ms): the loop
 *   sends a new request, which ends the leader's long-poll of the previous one. Before, the new
 *   partition's record never reached the follower here.
 * - A follower whose log diverges truncates to the lower of the leader's end of the epoch and
 *   its own, as Kafka's does. Before, it cut at the leader's end alone, which lay past its own
 *   log end: nothing was cut and it asked the same again forever.
 */
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ManualClock } from "../../../src/base/clock.ts";
import { ReplicationService } from "../../../src/gen/rill/v1/replication_service_pb.ts";
import type { MetadataRecord } from "../../../src/metadata/records.ts";
import { LocalMetadataStore } from "../../../src/metadata/store.ts";
import { encodeBatch } from "../../../src/protocol/record-batch.ts";
import { ReplicaFetcherManager } from "../../../src/replication/fetcher.ts";
import { ReplicaManager } from "../../../src/replication/replica-manager.ts";
import { addService } from "../../../src/rpc/grpc-service.ts";
import { replicationServiceCodecs } from "../../../src/rpc/replica-fetch-codec.ts";
import { grpcReplicaFetchTransport, replicationService } from "../../../src/rpc/replication-service.ts";
import { MemoryFileSystem } from "../../../src/storage/fs.ts";
import { ManualTimers, brokerRecord } from "../service/helpers.ts";
import { openMemoryLogs } from "../storage/helpers.ts";

const BROKER_EPOCH = 1;
/** The follower's long-poll: longer than any test may run (and the timers never move). */
const MAX_WAIT_MS = 30_000;

interface Node {
  readonly rm: ReplicaManager;
  readonly store: LocalMetadataStore;
  readonly timers: ManualTimers;
  close(): Promise<void>;
}

function openNode(nodeId: number): Node {
  const fs = new MemoryFileSystem();
  const clock = new ManualClock();
  const timers = new ManualTimers(clock);
  const logs = openMemoryLogs(fs, clock);
  const store = LocalMetadataStore.open(fs, "/d", clock);
  const rm = new ReplicaManager(logs, store, clock, timers, nodeId);
  return {
    rm,
    store,
    timers,
    close: async () => {
      rm.close();
      await logs.close();
      await store.close();
    },
  };
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Leader 1 serving ReplicationService on 127.0.0.1, follower 2 with its fetch loops to it. */
async function twoNodes(): Promise<{
  leader: Node;
  follower: Node;
  address: string;
  commit: (records: MetadataRecord[]) => Promise<void>;
}> {
  const leader = openNode(1);
  const follower = openNode(2);
  cleanups.push(
    () => leader.close(),
    () => follower.close(),
  );
  const commit = async (records: MetadataRecord[]): Promise<void> => {
    await leader.store.commit(() => records);
    await follower.store.commit(() => records);
  };
  await commit([brokerRecord(1, BROKER_EPOCH), brokerRecord(2, BROKER_EPOCH), brokerRecord(3, BROKER_EPOCH)]);
  const server = new grpc.Server();
  addService(server, ReplicationService, replicationService(leader.rm), replicationServiceCodecs);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  cleanups.push(() => new Promise<void>((resolve) => server.tryShutdown(() => resolve())));
  return { leader, follower, address: `127.0.0.1:${port}`, commit };
}

function startFetchers(follower: Node, leaderAddress: string): ReplicaFetcherManager {
  const fetchers = new ReplicaFetcherManager(follower.rm, {
    nodeId: 2,
    brokerEpoch: () => BROKER_EPOCH,
    addressOf: (id) => (id === 1 ? leaderAddress : null),
    transport: grpcReplicaFetchTransport,
    maxWaitMs: MAX_WAIT_MS,
    maxBytes: 10 << 20,
    log: { warn: () => {}, info: () => {} },
    timers: follower.timers,
  });
  cleanups.push(() => fetchers.close());
  return fetchers;
}

let topicIds = 0;
function topic(name: string, leader: number, replicas: number[], leaderEpoch = 0): MetadataRecord[] {
  return [
    { type: "topic", v: 1, name, topicId: (++topicIds).toString(16).padStart(32, "0"), configs: {} },
    partition(name, leader, replicas, leaderEpoch),
  ];
}

function partition(name: string, leader: number, replicas: number[], leaderEpoch: number): MetadataRecord {
  return { type: "partition", v: 1, topic: name, partition: 0, replicas, isr: replicas, leader, leaderEpoch, partitionEpoch: leaderEpoch };
}

const record = (value: string): Buffer => encodeBatch([{ key: null, value: Buffer.from(value), timestampMs: 1 }], { nowMs: 1 });

/** Appends one record to `name`-0 on the leader and waits until the follower's log holds it. */
async function replicatedTo(leader: Node, follower: Node, name: string, endOffset: number): Promise<void> {
  leader.rm.append(name, 0, record(`${name}-${endOffset}`), "leader");
  await vi.waitFor(() => expect(follower.rm.replica(name, 0)?.log.logEndOffset).toBe(endOffset), { timeout: 10_000, interval: 5 });
}

/** Waits until the leader has the follower's fetch from `offset` of `name`-0: it now long-polls there. */
async function longPolling(leader: Node, name: string, offset: number): Promise<void> {
  await vi.waitFor(() => expect(leader.rm.replica(name, 0)?.followers.get(2)?.leo).toBe(offset), { timeout: 10_000, interval: 5 });
}

describe("ReplicaFetch: a partition added to a follower's fetch loop", () => {
  it("a new topic's first record reaches the follower while the loop's earlier fetch still long-polls", async () => {
    const { leader, follower, address, commit } = await twoNodes();
    await commit(topic("a", 1, [1, 2]));
    startFetchers(follower, address);
    await replicatedTo(leader, follower, "a", 1);
    await longPolling(leader, "a", 1); // the loop's fetch now waits up to 30 s on the leader
    await commit(topic("b", 1, [1, 2]));
    await replicatedTo(leader, follower, "b", 1);
    // The earlier topic still replicates over the same stream.
    await replicatedTo(leader, follower, "a", 2);
  });

  it("a partition whose leadership moves to the loop's leader is fetched at once", async () => {
    const { leader, follower, address, commit } = await twoNodes();
    await commit([...topic("a", 1, [1, 2]), ...topic("c", 3, [3, 2, 1])]);
    startFetchers(follower, address);
    await replicatedTo(leader, follower, "a", 1);
    await longPolling(leader, "a", 1);
    await commit([partition("c", 1, [1, 2, 3], 1)]); // broker 3 (never reachable here) hands c-0 to 1
    await replicatedTo(leader, follower, "c", 1);
  });
});

describe("ReplicaFetch: a follower whose log diverges", () => {
  it("truncates to its own end of the leader's epoch when the leader's end of it lies past its log end", async () => {
    const { leader, follower, address } = await twoNodes();
    // Each node's own image (two stores): node 1 writes offsets 0..2 in epoch 0, then 3 in epoch
    // 2; node 2 wrote 0..1 in epoch 0, then 2 in epoch 1 (a leadership node 1 never followed).
    const name = "d";
    const id = (++topicIds).toString(16).padStart(32, "0");
    const topicRecord: MetadataRecord = { type: "topic", v: 1, name, topicId: id, configs: {} };
    await leader.store.commit(() => [topicRecord, partition(name, 1, [1, 2], 0)]);
    for (let i = 0; i < 3; i++) leader.rm.append(name, 0, record(`leader-${i}`), "leader");
    await follower.store.commit(() => [topicRecord, partition(name, 2, [2, 1], 0)]);
    for (let i = 0; i < 2; i++) follower.rm.append(name, 0, record(`leader-${i}`), "leader");
    await follower.store.commit(() => [partition(name, 2, [2, 1], 1)]);
    follower.rm.append(name, 0, record("epoch-1"), "leader");
    await leader.store.commit(() => [partition(name, 1, [1, 2], 2)]);
    leader.rm.append(name, 0, record("leader-3"), "leader");
    const log = follower.rm.replica(name, 0)!.log;
    expect(log.leaderEpochs.map((e) => [e.epoch, e.startOffset])).toEqual([
      [0, 0],
      [1, 2],
    ]);
    startFetchers(follower, address);
    // Node 2 follows node 1 in epoch 2: it fetches from 3 with last epoch 1; node 1's epoch 0
    // (the largest up to 1) ends at 3, node 2's at 2.
    await follower.store.commit(() => [partition(name, 1, [1, 2], 2)]);
    await vi.waitFor(() => expect(log.logEndOffset).toBe(4), { timeout: 10_000, interval: 5 });
    expect(log.leaderEpochs.map((e) => [e.epoch, e.startOffset])).toEqual([
      [0, 0],
      [2, 3],
    ]);
  });
});
