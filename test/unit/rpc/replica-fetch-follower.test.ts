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
 * - Fetch sessions (src/replication/fetch-session.ts): after a full first request, a round lists
 *   only the partitions whose position changed, an answer only the partitions with something
 *   new; the leader keeps counting an unlisted partition's follower at the log end it was last
 *   told (the high watermark moves, the follower stays in the ISR); a partition that leaves the
 *   loop leaves the session; a stream that fails is replaced by one that starts in full. The
 *   rounds are watched at the transport (what the fetch loop hands the gRPC stream, and what it
 *   gets back).
 */
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ManualClock } from "../../../src/base/clock.ts";
import { ReplicationService } from "../../../src/gen/rill/v1/replication_service_pb.ts";
import type { MetadataRecord } from "../../../src/metadata/records.ts";
import { LocalMetadataStore } from "../../../src/metadata/store.ts";
import { encodeBatch } from "../../../src/protocol/record-batch.ts";
import {
  type ReplicaFetchAnswer,
  ReplicaFetcherManager,
  type ReplicaFetchRound,
  type ReplicaFetchTransport,
} from "../../../src/replication/fetcher.ts";
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
  readonly clock: ManualClock;
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
    clock,
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

function startFetchers(
  follower: Node,
  leaderAddress: string,
  transport: ReplicaFetchTransport = grpcReplicaFetchTransport,
): ReplicaFetcherManager {
  const fetchers = new ReplicaFetcherManager(follower.rm, {
    nodeId: 2,
    brokerEpoch: () => BROKER_EPOCH,
    addressOf: (id) => (id === 1 ? leaderAddress : null),
    transport,
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

/** One fetch round as the loop handed it to the gRPC stream, and how it ended. */
interface Round {
  readonly stream: number;
  readonly req: ReplicaFetchRound;
  answer?: ReplicaFetchAnswer;
  error?: Error;
}

/**
 * The gRPC transport, recording every round. `tamper` (once) changes the next incremental
 * request before it is sent.
 */
function recording(): { transport: ReplicaFetchTransport; rounds: Round[]; tamper: ((r: ReplicaFetchRound) => ReplicaFetchRound) | null } {
  const rec = {
    rounds: [] as Round[],
    tamper: null as ((r: ReplicaFetchRound) => ReplicaFetchRound) | null,
    transport: null as unknown as ReplicaFetchTransport,
  };
  let streams = 0;
  rec.transport = {
    open(address) {
      const inner = grpcReplicaFetchTransport.open(address);
      const stream = ++streams;
      return {
        fetch(req) {
          if (req.incremental && rec.tamper) {
            req = rec.tamper(req);
            rec.tamper = null;
          }
          const round: Round = { stream, req };
          rec.rounds.push(round);
          return inner.fetch(req).then(
            (a) => {
              round.answer = a;
              return a;
            },
            (e: Error) => {
              round.error = e;
              throw e;
            },
          );
        },
        close: () => inner.close(),
      };
    },
  };
  return rec;
}

const names = (ps: ReadonlyArray<{ topic: string; partition: number }>): string[] => ps.map((p) => `${p.topic}-${p.partition}`);

/** The first recorded round from `from` on that satisfies `pred`. */
async function roundWhere(rounds: Round[], pred: (r: Round) => boolean, from = 0): Promise<Round> {
  let found: Round | undefined;
  await vi.waitFor(
    () => {
      found = rounds.slice(from).find(pred);
      expect(found).toBeDefined();
    },
    { timeout: 10_000, interval: 5 },
  );
  return found!;
}

describe("ReplicaFetch: fetch sessions", () => {
  it("an incremental round lists only the partitions whose position changed; its answer only those with something new", async () => {
    const { leader, follower, address, commit } = await twoNodes();
    await commit([...topic("a", 1, [1, 2]), ...topic("b", 1, [1, 2]), ...topic("c", 1, [1, 2])]);
    const rec = recording();
    startFetchers(follower, address, rec.transport);
    await replicatedTo(leader, follower, "a", 1);
    // The first request is full (every partition) and so is its answer (in request order).
    const first = rec.rounds[0]!;
    expect([first.req.incremental, first.req.sessionEpoch, names(first.req.partitions)]).toEqual([false, 1, ["a-0", "b-0", "c-0"]]);
    expect(names(first.answer!.partitions)).toEqual(["a-0", "b-0", "c-0"]);
    expect(first.answer!.sessionKept).toBe(true);
    // The next one lists a-0 only: it moved to 1; b-0 and c-0 stand where they were.
    await longPolling(leader, "a", 1);
    const second = rec.rounds[1]!;
    expect([second.req.incremental, second.req.sessionEpoch, names(second.req.partitions), second.req.forgotten]).toEqual([
      true,
      2,
      ["a-0"],
      [],
    ]);
    expect(second.req.partitions[0]!.fetchOffset).toBe(1);
    // b-0 gets a record: the answer lists b-0 (records) and a-0 (its high watermark moved to 1
    // with the follower's fetch from 1), not c-0.
    await replicatedTo(leader, follower, "b", 1);
    expect(second.answer!.partitions.map((p) => [`${p.topic}-${p.partition}`, p.recordBatches.length > 0, p.highWatermark])).toEqual([
      ["a-0", false, 1],
      ["b-0", true, 0],
    ]);
    expect(follower.rm.replica("a", 0)!.hw).toBe(1);
    await longPolling(leader, "b", 1);
    expect(names(rec.rounds[2]!.req.partitions)).toEqual(["b-0"]);
    // The leader still holds all three: c-0 gets a record and reaches the follower though no
    // request since the first named it.
    await replicatedTo(leader, follower, "c", 1);
    expect(names(rec.rounds[2]!.answer!.partitions)).toEqual(["b-0", "c-0"]);
    expect(rec.rounds.every((r) => r.stream === 1 && r.error === undefined)).toBe(true);
  });

  it("an unlisted partition's follower counts at the log end it last gave: the high watermark moves, and it stays in the ISR", async () => {
    const { leader, follower, address, commit } = await twoNodes();
    // a-0's ISR has broker 3 too, which never fetches: its high watermark waits for it.
    await commit([...topic("a", 1, [1, 2, 3]), ...topic("b", 1, [1, 2])]);
    const rec = recording();
    startFetchers(follower, address, rec.transport);
    await replicatedTo(leader, follower, "a", 1);
    await longPolling(leader, "a", 1);
    expect(leader.rm.replica("a", 0)!.hw).toBe(0);
    // Two rounds on b-0 only: the follower's requests no longer name a-0.
    await replicatedTo(leader, follower, "b", 1);
    await longPolling(leader, "b", 1);
    await replicatedTo(leader, follower, "b", 2);
    await longPolling(leader, "b", 2);
    const since = rec.rounds.findIndex((r) => names(r.req.partitions).includes("a-0") && r.req.partitions[0]!.fetchOffset === 1);
    const later = rec.rounds.slice(since + 1);
    expect(later.length).toBeGreaterThanOrEqual(2);
    expect(later.every((r) => r.req.incremental && !names(r.req.partitions).includes("a-0"))).toBe(true);
    // Broker 3 leaves a-0's ISR: the high watermark moves to the log end the follower gave when
    // it last named a-0.
    await commit([
      { type: "partition", v: 1, topic: "a", partition: 0, replicas: [1, 2, 3], isr: [1, 2], leader: 1, leaderEpoch: 0, partitionEpoch: 1 },
    ]);
    expect(leader.rm.replica("a", 0)!.hw).toBe(1);
    // Time passes on the leader, longer than the lag allowed below; a round on b-0 alone still
    // counts the follower caught up on a-0 (fetched from its log end), so no ISR change wants it out.
    leader.clock.advance(20_000);
    const n = rec.rounds.length;
    await replicatedTo(leader, follower, "b", 3);
    await longPolling(leader, "b", 3);
    expect(leader.rm.isrChanges(10_000)).toEqual([]);
    // And the follower learns a-0's new high watermark from an answer that lists a-0 without records.
    const told = await roundWhere(rec.rounds, (r) => r.answer?.partitions.some((p) => p.topic === "a") === true, n - 1);
    expect(told.answer!.partitions.find((p) => p.topic === "a")).toMatchObject({ highWatermark: 1, recordBatches: Buffer.alloc(0) });
    expect(names(told.req.partitions)).not.toContain("a-0");
    await vi.waitFor(() => expect(follower.rm.replica("a", 0)!.hw).toBe(1), { timeout: 10_000, interval: 5 });
  });

  it("a partition the follower no longer fetches leaves the session: the leader neither reads nor answers it", async () => {
    const { leader, follower, address } = await twoNodes();
    const records = [...topic("a", 1, [1, 2]), ...topic("b", 1, [1, 2])];
    await follower.store.commit(() => records);
    await leader.store.commit(() => records);
    const rec = recording();
    startFetchers(follower, address, rec.transport);
    await replicatedTo(leader, follower, "a", 1);
    await replicatedTo(leader, follower, "b", 1);
    await longPolling(leader, "b", 1);
    // b-0 moves to brokers 1 and 3: the follower learns it first and drops its replica; the
    // leader then no longer counts broker 2 a follower of b-0 (reading it for 2 is an error).
    const moved: MetadataRecord = {
      type: "partition",
      v: 1,
      topic: "b",
      partition: 0,
      replicas: [1, 3],
      isr: [1, 3],
      leader: 1,
      leaderEpoch: 0,
      partitionEpoch: 1,
    };
    await follower.store.commit(() => [moved]);
    expect(follower.rm.replica("b", 0)).toBeUndefined();
    const n = rec.rounds.length;
    await leader.store.commit(() => [moved]);
    const forgetting = await roundWhere(rec.rounds, (r) => r.req.forgotten.length > 0, n);
    expect([forgetting.req.incremental, names(forgetting.req.forgotten), names(forgetting.req.partitions)]).toEqual([true, ["b-0"], []]);
    // From then on no answer lists b-0 (an error for it each round, were it still in the session).
    await replicatedTo(leader, follower, "a", 2);
    await replicatedTo(leader, follower, "a", 3);
    const after = rec.rounds.slice(rec.rounds.indexOf(forgetting));
    expect(after.length).toBeGreaterThanOrEqual(2);
    for (const r of after) if (r.answer) expect(names(r.answer.partitions)).not.toContain("b-0");
    expect(rec.rounds.every((r) => r.stream === 1 && r.error === undefined)).toBe(true);
  });

  it("an answer the follower drops (a partition added mid-poll) is not taken as told: the next request is full", async () => {
    const { leader, follower, address, commit } = await twoNodes();
    await commit(topic("a", 1, [1, 2, 3])); // broker 3 never fetches: a-0's high watermark waits
    const rec = recording();
    startFetchers(follower, address, rec.transport);
    await replicatedTo(leader, follower, "a", 1);
    await longPolling(leader, "a", 1);
    // a-0's high watermark moves while the follower's fetch long-polls (it does not end the poll) ...
    await commit([
      { type: "partition", v: 1, topic: "a", partition: 0, replicas: [1, 2, 3], isr: [1, 2], leader: 1, leaderEpoch: 0, partitionEpoch: 1 },
    ]);
    expect(leader.rm.replica("a", 0)!.hw).toBe(1);
    // ... and a new topic ends it: the answer saying so is dropped, and the next request is full.
    const n = rec.rounds.length;
    await commit(topic("c", 1, [1, 2]));
    await replicatedTo(leader, follower, "c", 1);
    const after = rec.rounds.slice(n);
    expect([after[0]!.req.incremental, names(after[0]!.req.partitions)]).toEqual([false, ["a-0", "c-0"]]);
    await vi.waitFor(() => expect(follower.rm.replica("a", 0)!.hw).toBe(1), { timeout: 10_000, interval: 5 });
  });

  it("a leader that never keeps a session (an older one: no session_kept) gets only full requests", async () => {
    const { leader, follower, address, commit } = await twoNodes();
    await commit([...topic("a", 1, [1, 2]), ...topic("b", 1, [1, 2])]);
    const rec = recording();
    const older: ReplicaFetchTransport = {
      open(address) {
        const inner = rec.transport.open(address);
        return { fetch: (req) => inner.fetch(req).then((a) => ({ ...a, sessionKept: false })), close: () => inner.close() };
      },
    };
    startFetchers(follower, address, older);
    await replicatedTo(leader, follower, "a", 1);
    await replicatedTo(leader, follower, "b", 1);
    await replicatedTo(leader, follower, "a", 2);
    expect(rec.rounds.length).toBeGreaterThanOrEqual(3);
    for (const r of rec.rounds) expect([r.req.incremental, names(r.req.partitions)]).toEqual([false, ["a-0", "b-0"]]);
  });

  it("after a stream error the next request is full, on a new stream", async () => {
    const { leader, follower, address, commit } = await twoNodes();
    await commit([...topic("a", 1, [1, 2]), ...topic("b", 1, [1, 2])]);
    const rec = recording();
    startFetchers(follower, address, rec.transport);
    await replicatedTo(leader, follower, "a", 1);
    await longPolling(leader, "a", 1);
    // The next incremental request skips a session epoch: the leader fails the stream.
    rec.tamper = (r) => ({ ...r, sessionEpoch: r.sessionEpoch + 1 });
    leader.rm.append("b", 0, record("b-1"), "leader");
    const failed = await roundWhere(rec.rounds, (r) => r.error !== undefined);
    expect(failed.req.incremental).toBe(true);
    expect(failed.error!.message).toMatch(/FETCH_SESSION_ID_NOT_FOUND|session_epoch/);
    // The loop backs off (its timers move only here), then opens a new stream: its first request
    // is full again, and replication goes on.
    follower.timers.advance(1_000);
    const next = await roundWhere(rec.rounds, (r) => r.stream === failed.stream + 1);
    expect([next.req.incremental, next.req.sessionEpoch, names(next.req.partitions)]).toEqual([false, 1, ["a-0", "b-0"]]);
    await vi.waitFor(() => expect(follower.rm.replica("b", 0)?.log.logEndOffset).toBe(1), { timeout: 10_000, interval: 5 });
    await replicatedTo(leader, follower, "a", 2);
    expect(rec.rounds.filter((r) => r.stream === failed.stream + 1 && r.req.incremental).length).toBeGreaterThan(0);
  });
});
