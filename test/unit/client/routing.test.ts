/**
 * Routing to partition leaders, against an in-memory cluster of three brokers (the clients get
 * one transport per address through `transportFactory`): every broker answers metadata; only a
 * partition's leader accepts produce, fetch and ListOffsets for it (the others answer
 * NOT_LEADER_OR_FOLLOWER); a broker can die (ConnectionError on every call, open streams break)
 * or answer metadata from an older view. The brokers share one set of logs and producer state
 * (fake-transport.ts), as replicas would once replicated.
 */
import { create } from "@bufbuild/protobuf";
import { afterEach, describe, expect, it } from "vitest";
import { Errors } from "../../../src/base/errors.ts";
import { SeededRandom } from "../../../src/base/random.ts";
import { Admin } from "../../../src/client/admin.ts";
import { connect } from "../../../src/client/connection.ts";
import { Consumer } from "../../../src/client/consumer.ts";
import { ConnectionError } from "../../../src/client/errors.ts";
import { MetadataCache, OFFSETS_TOPIC } from "../../../src/client/metadata.ts";
import { Producer } from "../../../src/client/producer.ts";
import type { CallOptions, ProduceStream, ProduceStreamListener, Transport } from "../../../src/client/transport.ts";
import { offsetsPartitionFor } from "../../../src/coordinator/group-runtime.ts";
import { DescribeClusterResponseSchema, DescribeTopicsResponseSchema } from "../../../src/gen/rill/v1/admin_service_pb.ts";
import { FetchResponseSchema, FetchedPartitionSchema, ListOffsetsResponseSchema } from "../../../src/gen/rill/v1/fetch_service_pb.ts";
import type { ProduceStreamRequestInput } from "../../../src/client/wire-codec.ts";
import { decodeRecords, encodeBatch } from "../../../src/protocol/record-batch.ts";
import { FakeTransport, detail } from "./fake-transport.ts";

interface Leadership {
  leader: number;
  epoch: number;
}

/** Three brokers over one shared FakeTransport (the logs). */
class FakeCluster {
  readonly data = new FakeTransport();
  readonly nodes: FakeNode[];
  /** Current leaders: topic → partition → leader and epoch. */
  readonly leaders = new Map<string, Leadership[]>();
  /** Which node opened each produce stream of `data`. */
  readonly streamNode = new Map<number, number>();

  constructor(n = 3) {
    this.nodes = Array.from({ length: n }, (_, i) => new FakeNode(this, i + 1));
    this.data.produceHook = (r) => {
      const node = this.streamNode.get(r.stream)!;
      if (this.leaderOf(r.request.topic, r.request.partition ?? 0) !== node)
        return { kind: "partition-error", error: Errors.NOT_LEADER_OR_FOLLOWER };
      return { kind: "append" };
    };
  }

  /** The transport factory clients use: a node by its address. */
  readonly factory = (address: string): Transport => {
    const node = this.nodes.find((n) => n.address === address);
    if (!node) throw new Error(`no node at ${address}`);
    return node;
  };

  get bootstrap(): string {
    return this.nodes.map((n) => n.address).join(",");
  }

  createTopic(name: string, partitions: number, leaderOf: (p: number) => number): void {
    this.data.createTopic(name, partitions);
    this.leaders.set(
      name,
      Array.from({ length: partitions }, (_, p) => ({ leader: leaderOf(p), epoch: 0 })),
    );
  }

  leaderOf(topic: string, partition: number): number {
    return this.leaders.get(topic)?.[partition]?.leader ?? -1;
  }

  /** A leader change, as the controller makes it: a new leader and epoch + 1. */
  moveLeader(topic: string, partition: number, to: number): void {
    const l = this.leaders.get(topic)![partition]!;
    this.leaders.get(topic)![partition] = { leader: to, epoch: l.epoch + 1 };
  }

  node(id: number): FakeNode {
    return this.nodes[id - 1]!;
  }

  /** Values stored in a partition, in offset order. */
  values(topic: string, partition: number): string[] {
    return this.data.log(topic, partition).flatMap((b) => decodeRecords(b.bytes).map((r) => r.value!.toString()));
  }
}

/** One broker of the FakeCluster. */
class FakeNode implements Transport {
  readonly address: string;
  down = false;
  /** Appends what it receives but never answers (the answers are lost when it dies). */
  loseAnswers = false;
  /** Metadata this node answers instead of the cluster's (an older view), when set. */
  staleView: Map<string, Leadership[]> | null = null;
  readonly calls = { fetch: 0, produce: 0, describeTopics: 0, listOffsets: 0 };
  /** The current_leader_epoch of each partition fetched here, as `topic-partition@epoch` (none: "-"). */
  readonly fetchedEpochs = new Set<string>();
  private readonly streams = new Set<{ dead: boolean; listener: ProduceStreamListener }>();

  constructor(
    private readonly cluster: FakeCluster,
    readonly id: number,
  ) {
    this.address = `10.0.0.${id}:9092`;
  }

  /** kill -9: every call fails to connect, open streams break. */
  kill(): void {
    this.down = true;
    for (const s of this.streams) {
      if (s.dead) continue;
      s.dead = true;
      setImmediate(() => s.listener.onError(new ConnectionError(this.address, "connection reset")));
    }
    this.streams.clear();
  }

  private checkUp(): void {
    if (this.down) throw new ConnectionError(this.address, "connection refused");
  }

  private leads(topic: string, partition: number): boolean {
    return this.cluster.leaderOf(topic, partition) === this.id;
  }

  readonly describeTopics: Transport["describeTopics"] = async (req) => {
    this.checkUp();
    this.calls.describeTopics++;
    const view = this.staleView ?? this.cluster.leaders;
    const names = req.topics?.length ? req.topics : [...view.keys()];
    const replicas = this.cluster.nodes.map((n) => n.id);
    return create(DescribeTopicsResponseSchema, {
      topics: names.map((name) => {
        const ls = view.get(name);
        if (ls === undefined) return { name, error: detail(Errors.UNKNOWN_TOPIC_OR_PARTITION, `topic "${name}" does not exist`) };
        return {
          name,
          partitions: ls.map((l, partition) => ({ partition, leader: l.leader, leaderEpoch: l.epoch, replicas, isr: replicas })),
        };
      }),
    });
  };

  readonly describeCluster: Transport["describeCluster"] = async () => {
    this.checkUp();
    return create(DescribeClusterResponseSchema, {
      clusterId: "fake",
      controllerId: 1,
      brokers: this.cluster.nodes.map((n) => ({ nodeId: n.id, address: n.address, fenced: n.down })),
    });
  };

  readonly fetch: Transport["fetch"] = async (req, options?: CallOptions) => {
    this.checkUp();
    this.calls.fetch++;
    const asked = req.partitions ?? [];
    for (const p of asked) this.fetchedEpochs.add(`${p.topic}-${p.partition}@${p.currentLeaderEpoch ?? "-"}`);
    const mine = asked.filter((p) => this.leads(p.topic!, p.partition!));
    const res = mine.length > 0 ? await this.cluster.data.fetch({ ...req, partitions: mine } as typeof req, options) : null;
    this.checkUp();
    return create(FetchResponseSchema, {
      partitions: asked.map(
        (p) =>
          res?.partitions.find((x) => x.topic === p.topic && x.partition === p.partition) ??
          create(FetchedPartitionSchema, { topic: p.topic!, partition: p.partition!, error: detail(Errors.NOT_LEADER_OR_FOLLOWER) }),
      ),
    });
  };

  readonly listOffsets: Transport["listOffsets"] = async (req) => {
    this.checkUp();
    this.calls.listOffsets++;
    const res = await this.cluster.data.listOffsets(req);
    return create(ListOffsetsResponseSchema, {
      partitions: res.partitions.map((p) =>
        this.leads(p.topic, p.partition)
          ? p
          : { topic: p.topic, partition: p.partition, offset: -1n, error: detail(Errors.NOT_LEADER_OR_FOLLOWER) },
      ),
    });
  };

  readonly endTransaction: Transport["endTransaction"] = async () => {
    throw new Error("transactional_id: the fake node serves no transactions");
  };

  readonly initProducerId: Transport["initProducerId"] = async (req) => {
    this.checkUp();
    return this.cluster.data.initProducerId(req);
  };

  readonly listTopics: Transport["listTopics"] = async (req) => {
    this.checkUp();
    return this.cluster.data.listTopics(req);
  };

  readonly createTopics: Transport["createTopics"] = async () => {
    throw new Error("not in the fake");
  };
  readonly deleteTopics = this.createTopics as unknown as Transport["deleteTopics"];
  readonly createPartitions = this.createTopics as unknown as Transport["createPartitions"];
  readonly describeConfigs = this.createTopics as unknown as Transport["describeConfigs"];
  readonly alterConfigs = this.createTopics as unknown as Transport["alterConfigs"];
  // security (issue 13)
  readonly createAcls = this.createTopics as unknown as Transport["createAcls"];
  readonly describeAcls = this.createTopics as unknown as Transport["describeAcls"];
  readonly deleteAcls = this.createTopics as unknown as Transport["deleteAcls"];
  readonly alterUserScramCredentials = this.createTopics as unknown as Transport["alterUserScramCredentials"];
  readonly describeUserScramCredentials = this.createTopics as unknown as Transport["describeUserScramCredentials"];
  readonly alterClientQuotas = this.createTopics as unknown as Transport["alterClientQuotas"];
  readonly describeClientQuotas = this.createTopics as unknown as Transport["describeClientQuotas"];
  readonly deleteRecords = this.createTopics as unknown as Transport["deleteRecords"];
  readonly electLeaders = this.createTopics as unknown as Transport["electLeaders"];
  readonly listTransactions = this.createTopics as unknown as Transport["listTransactions"];
  readonly describeTransactions = this.createTopics as unknown as Transport["describeTransactions"];
  readonly abortTransaction = this.createTopics as unknown as Transport["abortTransaction"];
  readonly addRaftVoter = this.createTopics as unknown as Transport["addRaftVoter"];
  readonly removeRaftVoter = this.createTopics as unknown as Transport["removeRaftVoter"];
  readonly alterPartitionReassignments = this.createTopics as unknown as Transport["alterPartitionReassignments"];
  readonly listPartitionReassignments = this.createTopics as unknown as Transport["listPartitionReassignments"];
  readonly alterBrokerCordons = this.createTopics as unknown as Transport["alterBrokerCordons"];

  openProduceStream(listener: ProduceStreamListener): ProduceStream {
    if (this.down) {
      setImmediate(() => listener.onError(new ConnectionError(this.address, "connection refused")));
      return { write: () => undefined, end: () => undefined, cancel: () => undefined };
    }
    const s = { dead: false, listener };
    this.streams.add(s);
    const inner = this.cluster.data.openProduceStream({
      onResponse: (r) => {
        if (!s.dead && !this.loseAnswers) listener.onResponse(r);
      },
      onError: (e) => {
        if (s.dead) return;
        s.dead = true;
        listener.onError(e);
      },
      onEnd: () => {
        if (s.dead) return;
        s.dead = true;
        listener.onEnd();
      },
    });
    this.cluster.streamNode.set(this.cluster.data.streamsOpened, this.id);
    return {
      write: (m: ProduceStreamRequestInput) => {
        if (s.dead) return;
        this.calls.produce++;
        inner.write(m);
      },
      end: () => inner.end(),
      cancel: () => {
        s.dead = true;
        inner.cancel();
      },
    };
  }

  close(): void {}
}

const fastRetry = { retries: 30, initialBackoffMs: 1, backoffMsMax: 5, jitter: 0 };
const tick = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms));
const closers: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const c of closers.splice(0)) await c().catch(() => undefined);
});

describe("MetadataCache", () => {
  it("learns leaders, epochs and addresses; a refresh moves a leader; an older epoch never wins", async () => {
    const cluster = new FakeCluster();
    cluster.createTopic("t", 3, (p) => p + 1);
    const conn = connect({ bootstrap: cluster.bootstrap, transportFactory: cluster.factory, retry: fastRetry });
    const md = new MetadataCache(conn);
    closers.push(async () => md.close());
    expect(await md.partitionCount("t")).toBe(3);
    expect([0, 1, 2].map((p) => md.addressOf("t", p))).toEqual(["10.0.0.1:9092", "10.0.0.2:9092", "10.0.0.3:9092"]);

    const old = new Map([...cluster.leaders].map(([k, v]) => [k, v.map((l) => ({ ...l }))]));
    cluster.moveLeader("t", 0, 2);
    await md.requestRefresh();
    expect(md.leaderOf("t", 0)).toEqual({ nodeId: 2, leaderEpoch: 1 });
    expect(md.addressOf("t", 0)).toBe("10.0.0.2:9092");

    // Node 1 (the preferred bootstrap broker) answers from before the change: ignored.
    cluster.node(1).staleView = old;
    await md.requestRefresh();
    expect(md.leaderOf("t", 0)).toEqual({ nodeId: 2, leaderEpoch: 1 });
    conn.transport.close();
  });

  it("finds a group's coordinator: the leader of partition murmur2(group) % 50 of __consumer_offsets", async () => {
    const cluster = new FakeCluster();
    cluster.createTopic(OFFSETS_TOPIC, 50, (p) => (p % 3) + 1);
    const conn = connect({ bootstrap: cluster.bootstrap, transportFactory: cluster.factory, retry: fastRetry });
    const md = new MetadataCache(conn);
    closers.push(async () => md.close());
    for (const g of ["orders", "billing", "g", "a-much-longer-group-id-0123456789"]) {
      expect(await md.coordinatorAddress(g)).toBe(cluster.node((offsetsPartitionFor(g) % 3) + 1).address);
    }
    conn.transport.close();
  });
});

describe("bootstrap failover", () => {
  it("Admin calls go to the first reachable bootstrap address, and stay there", async () => {
    const cluster = new FakeCluster();
    cluster.createTopic("t", 1, () => 1);
    cluster.node(1).kill();
    const admin = new Admin({ bootstrap: cluster.bootstrap, transportFactory: cluster.factory, retry: { retries: 0 } });
    closers.push(() => admin.close());
    expect((await admin.listTopics()).map((t) => t.name)).toEqual(["t"]);
    const conn = (admin as unknown as { conn: { transport: Transport } }).conn;
    expect(conn.transport.address).toBe("10.0.0.2:9092");
    cluster.node(2).kill();
    expect((await admin.listTopics()).map((t) => t.name)).toEqual(["t"]);
    expect(conn.transport.address).toBe("10.0.0.3:9092");
    cluster.node(3).kill();
    await expect(admin.listTopics()).rejects.toBeInstanceOf(ConnectionError);
  });
});

describe("Producer routing", () => {
  it("sends each partition's batches to its leader, one stream per broker", async () => {
    const cluster = new FakeCluster();
    cluster.createTopic("t", 3, (p) => p + 1);
    const producer = new Producer({
      bootstrap: cluster.bootstrap,
      transportFactory: cluster.factory,
      random: new SeededRandom(1),
      retry: fastRetry,
    });
    closers.push(() => producer.close());
    await Promise.all(Array.from({ length: 30 }, (_, i) => producer.send({ topic: "t", partition: i % 3, value: `v${i}` })));
    expect(cluster.nodes.map((n) => n.calls.produce)).toEqual([1, 1, 1]);
    expect(producer.stats.retries).toBe(0);
    for (const p of [0, 1, 2]) expect(cluster.values("t", p)).toEqual(Array.from({ length: 10 }, (_, k) => `v${3 * k + p}`));
  });

  it("re-sends to the new leader after the old one dies with batches in flight: every record once, in order, at its reported offset", async () => {
    const cluster = new FakeCluster();
    cluster.createTopic("t", 3, (p) => p + 1);
    const producer = new Producer({
      bootstrap: cluster.bootstrap,
      transportFactory: cluster.factory,
      random: new SeededRandom(2),
      retry: fastRetry,
      lingerMs: 1,
      batchBytes: 1024,
    });
    closers.push(() => producer.close());
    const sends: Promise<{ partition: number; offset: number }>[] = [];
    const send = (i: number): void => void sends.push(producer.send({ topic: "t", partition: i % 3, value: `v${i}` }));
    for (let i = 0; i < 300; i++) send(i);
    await producer.flush();
    // Node 2 (leader of partition 1) writes what it gets but its answers never come back; then it dies.
    cluster.node(2).loseAnswers = true;
    for (let i = 300; i < 900; i++) {
      send(i);
      if (i % 50 === 0) await tick(1);
    }
    await tick(20);
    cluster.node(2).kill();
    await tick(20); // the controller notices later: meanwhile re-sends find node 2 unreachable
    cluster.moveLeader("t", 1, 3);
    for (let i = 900; i < 1200; i++) send(i);
    const results = await Promise.all(sends);
    for (const p of [0, 1, 2]) {
      const values = cluster.values("t", p);
      expect(values).toEqual(Array.from({ length: 400 }, (_, k) => `v${3 * k + p}`));
    }
    results.forEach((r, i) => expect(r).toEqual(expect.objectContaining({ partition: i % 3, offset: Math.floor(i / 3) })));
    expect(producer.stats.retries).toBeGreaterThan(0);
    expect(producer.stats.producerIdsAcquired).toBe(1);
    expect(cluster.node(3).calls.produce).toBeGreaterThan(1); // partition 1's re-sends and later batches
  });
});

describe("Consumer routing", () => {
  it("fetches each partition from its leader and follows a leader change", async () => {
    const cluster = new FakeCluster();
    cluster.createTopic("t", 2, (p) => p + 1);
    const batch = (p: number, from: number, n: number): Buffer =>
      encodeBatch(Array.from({ length: n }, (_, k) => ({ value: `p${p}-${from + k}`, timestampMs: 1 })));
    cluster.data.append("t", 0, batch(0, 0, 5));
    cluster.data.append("t", 1, batch(1, 0, 5));
    const consumer = new Consumer({
      bootstrap: cluster.bootstrap,
      transportFactory: cluster.factory,
      random: new SeededRandom(3),
      maxWaitMs: 20,
      retry: fastRetry,
    });
    closers.push(() => consumer.close());
    consumer.assign([0, 1].map((partition) => ({ topic: "t", partition, offset: "earliest" as const })));
    const got: string[] = [];
    const it = consumer[Symbol.asyncIterator]();
    const take = async (n: number): Promise<void> => {
      for (let k = 0; k < n; k++) got.push((await it.next()).value!.value!.toString());
    };
    await take(10);
    expect(cluster.node(3).calls.fetch + cluster.node(3).calls.listOffsets).toBe(0);
    expect(cluster.node(1).calls.fetch).toBeGreaterThan(0);
    expect(cluster.node(2).calls.fetch).toBeGreaterThan(0);

    cluster.node(1).kill();
    cluster.moveLeader("t", 0, 3);
    cluster.data.append("t", 0, batch(0, 5, 5));
    cluster.data.append("t", 1, batch(1, 5, 5));
    await take(10);
    await it.return(undefined);
    const of = (p: number): string[] => got.filter((v) => v.startsWith(`p${p}-`));
    expect(of(0)).toEqual(Array.from({ length: 10 }, (_, k) => `p0-${k}`));
    expect(of(1)).toEqual(Array.from({ length: 10 }, (_, k) => `p1-${k}`));
    expect(cluster.node(3).calls.fetch).toBeGreaterThan(0);
    // Each fetch names the leader epoch the client's metadata holds (KIP-320): 0 at first, 1 at
    // partition 0's new leader.
    expect([...cluster.node(1).fetchedEpochs]).toEqual(["t-0@0"]);
    expect([...cluster.node(2).fetchedEpochs]).toEqual(["t-1@0"]);
    expect([...cluster.node(3).fetchedEpochs]).toEqual(["t-0@1"]);
  });
});
