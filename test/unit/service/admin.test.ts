/**
 * The protocol-neutral admin service on an assembled in-memory node: a MemoryFileSystem, a
 * LogManager, a LocalMetadataStore and a ReplicaManager, with no sockets and no gRPC. Each test
 * asserts both the answer and what the metadata image holds afterwards.
 */
import { openMemoryLogs } from "../storage/helpers.ts";
import { afterEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../../src/base/clock.ts";
import type { RillError } from "../../../src/base/errors.ts";
import { SeededRandom } from "../../../src/base/random.ts";
import { systemTimers } from "../../../src/base/timers.ts";
import { defaultBrokerConfig } from "../../../src/config/schema.ts";
import { LocalMetadataStore } from "../../../src/metadata/store.ts";
import { encodeBatch } from "../../../src/protocol/record-batch.ts";
import { ReplicaManager } from "../../../src/replication/replica-manager.ts";
import { AdminHandlers } from "../../../src/service/admin.ts";
import type { ControllerPort, LeaderOffsets } from "../../../src/service/admin-ports.ts";
import type { AdminChange, AdminChanges, AlterConfigOp, CreateTopicsInput, NewTopicSpec } from "../../../src/service/admin-types.ts";
import { MemoryFileSystem } from "../../../src/storage/fs.ts";

const NODE_ID = 1;

/** A ControllerPort of the active controller that counts the changes run here. */
class LocalController implements ControllerPort {
  forwarded = false;
  committed = 0;
  readonly forwardedChanges: AdminChange[] = [];
  active = true;
  answer: unknown = null;
  isActive(): boolean {
    return this.active;
  }
  async forward<K extends AdminChange>(change: K): Promise<AdminChanges[K]["result"]> {
    this.forwardedChanges.push(change);
    return this.answer as AdminChanges[K]["result"];
  }
  committedHere(): void {
    this.committed++;
  }
}

interface Node {
  readonly admin: AdminHandlers;
  readonly store: LocalMetadataStore;
  readonly rm: ReplicaManager;
  readonly controller: LocalController;
  /** Leaders DescribeTopics asked, in order. */
  readonly asked: number[];
}

const open: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of open.splice(0)) await close();
});

/**
 * A node (id 1) of a cluster whose registered, unfenced brokers are `brokers`. `leaderOffsets`
 * answers DescribeTopics' questions to other leaders.
 */
async function node(brokers: readonly number[] = [NODE_ID], leaderOffsets?: LeaderOffsets): Promise<Node> {
  const fs = new MemoryFileSystem();
  const clock = new ManualClock();
  const logs = openMemoryLogs(fs, clock);
  const store = LocalMetadataStore.open(fs, "/d", clock);
  await store.commit(() =>
    brokers.map((id) => ({ type: "broker", v: 1, nodeId: id, address: `127.0.0.1:${9000 + id}`, roles: ["broker"], fenced: false })),
  );
  const rm = new ReplicaManager(logs, store, clock, systemTimers, NODE_ID);
  open.push(async () => {
    rm.close();
    await logs.close();
    await store.close();
  });
  const asked: number[] = [];
  const admin = new AdminHandlers({
    rm,
    store,
    random: new SeededRandom(7),
    config: { ...defaultBrokerConfig, nodeId: NODE_ID, numPartitions: 2 },
    clusterId: "cluster-a",
    controllerId: () => NODE_ID,
    voters: [
      { id: 3, address: "127.0.0.1:9003" },
      { id: 1, address: "127.0.0.1:9001" },
    ],
    nodeState: () => ({ roles: ["broker", "controller"], raftRole: "leader", raftTerm: 4, commitOffset: 17, brokerState: "running" }),
    leaderOffsets: async (leader, parts) => {
      asked.push(leader);
      if (!leaderOffsets) throw new Error(`no broker ${leader} in this test`);
      return leaderOffsets(leader, parts);
    },
  });
  return { admin, store, rm, controller: new LocalController(), asked };
}

const topic = (name: string, extra: Partial<NewTopicSpec> = {}): NewTopicSpec => ({
  name,
  partitions: 1,
  replicationFactor: 1,
  configs: {},
  ...extra,
});

const createInput = (topics: NewTopicSpec[], validateOnly = false): CreateTopicsInput => ({ topics, validateOnly, timeoutMs: 0 });

/** The catalog name and message of an error, for compact assertions. */
const named = (e: RillError | undefined): { name: string; message: string } | undefined =>
  e ? { name: e.kind.name, message: e.message } : undefined;

async function createTopic(n: Node, spec: NewTopicSpec): Promise<void> {
  const res = await n.admin.createTopics(createInput([spec]), n.controller);
  expect(res.topics[0]?.error).toBeUndefined();
}

describe("AdminHandlers.createTopics", () => {
  it("creates a valid topic with its partitions, replicas and config overrides", async () => {
    const n = await node();
    const res = await n.admin.createTopics(
      createInput([topic("orders", { partitions: 3, configs: { "retention.ms": "1000" } })]),
      n.controller,
    );
    expect(res.topics).toEqual([{ name: "orders", partitions: 3, replicationFactor: 1 }]);
    const t = n.store.image.topics.get("orders");
    expect(t?.partitions.map((p) => p.replicas)).toEqual([[1], [1], [1]]);
    expect(t?.configs).toEqual({ "retention.ms": "1000" });
    expect(n.controller.committed).toBe(1);
  });

  it("applies the broker's num.partitions when the count is 0", async () => {
    const n = await node();
    const res = await n.admin.createTopics(createInput([topic("d", { partitions: 0, replicationFactor: 0 })]), n.controller);
    expect(res.topics[0]).toEqual({ name: "d", partitions: 2, replicationFactor: 1 });
    expect(n.store.image.topics.get("d")?.partitions).toHaveLength(2);
  });

  it("refuses a topic that exists and a name given twice, creating the others", async () => {
    const n = await node();
    await createTopic(n, topic("a"));
    const res = await n.admin.createTopics(createInput([topic("a"), topic("b"), topic("b", { partitions: 5 })]), n.controller);
    expect(res.topics.map((t) => [t.name, named(t.error), t.partitions])).toEqual([
      ["a", { name: "TOPIC_ALREADY_EXISTS", message: 'name: topic "a" already exists' }, 0],
      ["b", undefined, 1],
      ["b", { name: "INVALID_REQUEST", message: 'topics: "b" is named twice' }, 0],
    ]);
    expect(n.store.image.topics.get("b")?.partitions).toHaveLength(1);
  });

  it("refuses bad names and reserved names, storing nothing", async () => {
    const n = await node();
    const before = n.store.image.offset;
    const res = await n.admin.createTopics(createInput([topic("bad name!"), topic("__mine"), topic("")]), n.controller);
    expect(res.topics.map((t) => t.error?.kind.name)).toEqual([
      "INVALID_TOPIC_EXCEPTION",
      "INVALID_TOPIC_EXCEPTION",
      "INVALID_TOPIC_EXCEPTION",
    ]);
    expect(res.topics[0]?.error?.message).toContain("may only contain ASCII letters");
    expect(res.topics[1]?.error?.message).toContain("reserved for internal topics");
    expect(n.store.image.topicNames()).toEqual([]);
    expect(n.store.image.offset).toBe(before);
  });

  it("refuses a bad config value with INVALID_CONFIG naming the key", async () => {
    const n = await node();
    const res = await n.admin.createTopics(createInput([topic("c", { configs: { "retention.ms": "soon" } })]), n.controller);
    expect(res.topics[0]?.error?.kind.name).toBe("INVALID_CONFIG");
    expect(res.topics[0]?.error?.message).toContain("retention.ms");
    expect(res.topics[0]?.partitions).toBe(0);
    expect(n.store.image.topics.has("c")).toBe(false);
  });

  it("with validateOnly answers what would be created and stores nothing", async () => {
    const n = await node();
    const before = n.store.image.offset;
    const res = await n.admin.createTopics(
      createInput([topic("v", { partitions: 4 }), topic("w", { configs: { "cleanup.policy": "never" } })], true),
      n.controller,
    );
    expect(res.topics[0]).toEqual({ name: "v", partitions: 4, replicationFactor: 1 });
    expect(res.topics[1]?.error?.kind.name).toBe("INVALID_CONFIG");
    expect(n.store.image.topicNames()).toEqual([]);
    expect(n.store.image.offset).toBe(before);
  });

  it("refuses an empty request and a negative timeout as a whole", async () => {
    const n = await node();
    await expect(n.admin.createTopics(createInput([]), n.controller)).rejects.toThrow("topics: at least one topic is required");
    await expect(n.admin.createTopics({ topics: [topic("x")], validateOnly: false, timeoutMs: -1 }, n.controller)).rejects.toThrow(
      "timeout_ms: -1 is negative",
    );
    expect(n.store.image.topics.has("x")).toBe(false);
    expect(n.controller.committed).toBe(0);
  });
});

describe("AdminHandlers: the way to the active controller", () => {
  it("passes a change to the active controller and answers its result, storing nothing here", async () => {
    const n = await node();
    n.controller.active = false;
    n.controller.answer = { topics: [{ name: "f", partitions: 9, replicationFactor: 3 }] };
    const res = await n.admin.createTopics(createInput([topic("f")]), n.controller);
    expect(res).toBe(n.controller.answer);
    expect(n.controller.forwardedChanges).toEqual(["createTopics"]);
    expect(n.controller.committed).toBe(0);
    expect(n.store.image.topics.has("f")).toBe(false);
  });

  it("runs a forwarded change here even when this node is not the active controller", async () => {
    const n = await node();
    n.controller.active = false;
    n.controller.forwarded = true;
    const res = await n.admin.deleteTopics({ topics: ["nope"], timeoutMs: 0 }, n.controller);
    expect(res.topics[0]?.error?.kind.name).toBe("UNKNOWN_TOPIC_OR_PARTITION");
    expect(n.controller.forwardedChanges).toEqual([]);
    expect(n.controller.committed).toBe(1);
  });
});

describe("AdminHandlers.deleteTopics", () => {
  it("deletes a topic, and answers an unknown or internal topic in its own result", async () => {
    const n = await node();
    await createTopic(n, topic("gone"));
    const res = await n.admin.deleteTopics({ topics: ["gone", "unknown", "__consumer_offsets"], timeoutMs: 0 }, n.controller);
    expect(res.topics.map((t) => [t.name, named(t.error)])).toEqual([
      ["gone", undefined],
      ["unknown", { name: "UNKNOWN_TOPIC_OR_PARTITION", message: 'name: topic "unknown" does not exist' }],
      ["__consumer_offsets", { name: "INVALID_TOPIC_EXCEPTION", message: 'topics: internal topic "__consumer_offsets" cannot be deleted' }],
    ]);
    expect(n.store.image.topics.has("gone")).toBe(false);
  });
});

describe("AdminHandlers.listTopics and describeTopics", () => {
  it("lists topics sorted, internal ones only when asked", async () => {
    const n = await node();
    await createTopic(n, topic("zeta", { partitions: 2 }));
    await createTopic(n, topic("alpha"));
    await n.store.commit(() => [{ type: "topic", v: 1, name: "__consumer_offsets", topicId: "0".repeat(32), configs: {} }]);
    expect(n.admin.listTopics({ includeInternal: false }).topics.map((t) => t.name)).toEqual(["alpha", "zeta"]);
    expect(n.admin.listTopics({ includeInternal: true }).topics).toEqual([
      { name: "__consumer_offsets", partitions: 0, replicationFactor: 0, internal: true },
      { name: "alpha", partitions: 1, replicationFactor: 1, internal: false },
      { name: "zeta", partitions: 2, replicationFactor: 1, internal: false },
    ]);
  });

  it("describes leader, replicas, ISR, epoch, offsets and configs of each partition", async () => {
    const n = await node();
    await createTopic(n, topic("t", { partitions: 2, configs: { "retention.ms": "5000" } }));
    for (let i = 0; i < 3; i++) n.rm.append("t", 1, encodeBatch([{ value: `v${i}` }], { nowMs: 1 }), "leader");
    const res = await n.admin.describeTopics({ topics: ["t", "missing"], excludeConfigs: false }, { forwarded: false });
    const [t, missing] = res.topics;
    expect(t?.error).toBeUndefined();
    expect(t?.internal).toBe(false);
    expect(t?.configs["retention.ms"]).toBe("5000");
    expect(t?.configs["cleanup.policy"]).toBe("delete");
    expect(t?.partitions).toEqual([
      {
        partition: 0,
        leader: 1,
        replicas: [1],
        isr: [1],
        eligibleLeaderReplicas: [],
        lastKnownElr: [],
        leaderEpoch: 0,
        logStartOffset: 0,
        highWatermark: 0,
      },
      {
        partition: 1,
        leader: 1,
        replicas: [1],
        isr: [1],
        eligibleLeaderReplicas: [],
        lastKnownElr: [],
        leaderEpoch: 0,
        logStartOffset: 0,
        highWatermark: 3,
      },
    ]);
    expect(named(missing?.error)).toEqual({ name: "UNKNOWN_TOPIC_OR_PARTITION", message: 'topics: topic "missing" does not exist' });
    expect(missing?.partitions).toEqual([]);
    expect(n.asked).toEqual([]);
  });

  it("leaves configs out when asked and describes every non-internal topic when none is named", async () => {
    const n = await node();
    await createTopic(n, topic("b"));
    await createTopic(n, topic("a"));
    const res = await n.admin.describeTopics({ topics: [], excludeConfigs: true }, { forwarded: false });
    expect(res.topics.map((t) => [t.name, t.configs])).toEqual([
      ["a", {}],
      ["b", {}],
    ]);
  });

  it("asks the leader of a partition led elsewhere for its offsets, unless the request was forwarded", async () => {
    const n = await node([1, 2], async (_leader, parts) => parts.map(() => ({ logStartOffset: 5, highWatermark: 9 })));
    await createTopic(n, topic("r", { partitions: 2 }));
    const leaders = n.store.image.topics.get("r")!.partitions.map((p) => p.leader);
    expect([...leaders].sort()).toEqual([1, 2]);
    const offsets = async (forwarded: boolean) =>
      (await n.admin.describeTopics({ topics: ["r"], excludeConfigs: true }, { forwarded })).topics[0]!.partitions.map((p) => [
        p.leader,
        p.logStartOffset,
        p.highWatermark,
      ]);
    expect(await offsets(false)).toEqual(leaders.map((l) => (l === 2 ? [2, 5, 9] : [1, 0, 0])));
    expect(n.asked).toEqual([2]);
    expect(await offsets(true)).toEqual(leaders.map((l) => [l, 0, 0]));
    expect(n.asked).toEqual([2]);
  });

  it("answers its own view when the other leader cannot be reached", async () => {
    const n = await node([1, 2]);
    await createTopic(n, topic("u", { partitions: 2 }));
    const res = await n.admin.describeTopics({ topics: ["u"], excludeConfigs: true }, { forwarded: false });
    expect(res.topics[0]?.partitions.map((p) => [p.logStartOffset, p.highWatermark])).toEqual([
      [0, 0],
      [0, 0],
    ]);
    expect(n.asked).toEqual([2]);
  });
});

describe("AdminHandlers.createPartitions", () => {
  it("grows a topic, refuses to shrink it or to grow an unknown one", async () => {
    const n = await node();
    await createTopic(n, topic("g", { partitions: 2 }));
    const grow = await n.admin.createPartitions({ topics: [{ name: "g", count: 4 }], validateOnly: false, timeoutMs: 0 }, n.controller);
    expect(grow.topics).toEqual([{ name: "g" }]);
    expect(n.store.image.topics.get("g")?.partitions.map((p) => p.partition)).toEqual([0, 1, 2, 3]);
    const refused = await n.admin.createPartitions(
      {
        topics: [
          { name: "g", count: 3 },
          { name: "h", count: 2 },
        ],
        validateOnly: false,
        timeoutMs: 0,
      },
      n.controller,
    );
    expect(refused.topics.map((t) => [t.name, named(t.error)])).toEqual([
      ["g", { name: "INVALID_PARTITIONS", message: "count: 3 must be larger than the current 4 and at most 100000" }],
      ["h", { name: "UNKNOWN_TOPIC_OR_PARTITION", message: 'topic: topic "h" does not exist' }],
    ]);
    expect(n.store.image.topics.get("g")?.partitions).toHaveLength(4);
  });

  it("with validateOnly checks the growth and changes nothing", async () => {
    const n = await node();
    await createTopic(n, topic("g", { partitions: 2 }));
    const res = await n.admin.createPartitions({ topics: [{ name: "g", count: 6 }], validateOnly: true, timeoutMs: 0 }, n.controller);
    expect(res.topics).toEqual([{ name: "g" }]);
    expect(n.store.image.topics.get("g")?.partitions).toHaveLength(2);
  });
});

describe("AdminHandlers: configs", () => {
  const alter = (n: Node, name: string, operations: AlterConfigOp[], validateOnly = false) =>
    n.admin.alterConfigs({ resources: [{ resource: { type: "topic", name }, operations }], validateOnly }, n.controller);

  it("sets and deletes topic keys together", async () => {
    const n = await node();
    await createTopic(n, topic("k", { configs: { "retention.ms": "1000", "cleanup.policy": "compact" } }));
    const res = await alter(n, "k", [
      { name: "retention.ms", operation: "set", value: "2000" },
      { name: "cleanup.policy", operation: "delete", value: "" },
    ]);
    expect(res.results).toEqual([{ resource: { type: "topic", name: "k" } }]);
    expect(n.store.image.topics.get("k")?.configs).toEqual({ "retention.ms": "2000" });
  });

  it("refuses the whole change for a bad key, a bad value or an unknown operation, changing nothing", async () => {
    const n = await node();
    await createTopic(n, topic("k", { configs: { "retention.ms": "1000" } }));
    const before = n.store.image.offset;
    const badKey = await alter(n, "k", [
      { name: "retention.ms", operation: "set", value: "3000" },
      { name: "no.such.key", operation: "set", value: "1" },
    ]);
    expect(badKey.results[0]?.error?.kind.name).toBe("INVALID_CONFIG");
    expect(badKey.results[0]?.error?.message).toContain("no.such.key");
    const badDelete = await alter(n, "k", [{ name: "no.such.key", operation: "delete", value: "" }]);
    expect(named(badDelete.results[0]?.error)).toEqual({ name: "INVALID_CONFIG", message: "no.such.key: unknown topic config key" });
    const badValue = await alter(n, "k", [{ name: "retention.ms", operation: "set", value: "-7" }]);
    expect(badValue.results[0]?.error?.kind.name).toBe("INVALID_CONFIG");
    const badOp = await alter(n, "k", [{ name: "retention.ms", operation: { unrecognized: 0 }, value: "1" }]);
    expect(named(badOp.results[0]?.error)).toEqual({
      name: "INVALID_REQUEST",
      message: "resources[0].operations[0].operation: 0 is not SET or DELETE",
    });
    expect(n.store.image.topics.get("k")?.configs).toEqual({ "retention.ms": "1000" });
    expect(n.store.image.offset).toBe(before);
  });

  it("validates without applying, and refuses broker resources and missing ones", async () => {
    const n = await node();
    await createTopic(n, topic("k"));
    const valid = await alter(n, "k", [{ name: "retention.ms", operation: "set", value: "2000" }], true);
    expect(valid.results[0]?.error).toBeUndefined();
    expect(n.store.image.topics.get("k")?.configs).toEqual({});
    const res = await n.admin.alterConfigs(
      { resources: [{ resource: { type: "broker", name: "1" }, operations: [] }, { operations: [] }], validateOnly: false },
      n.controller,
    );
    expect(res.results.map((r) => [r.resource, r.error?.message])).toEqual([
      [{ type: "broker", name: "1" }, "resources[0].resource: only topic configs can be altered (broker configs are static)"],
      [undefined, "resources[1].resource: only topic configs can be altered (broker configs are static)"],
    ]);
    await expect(n.admin.alterConfigs({ resources: [], validateOnly: false }, n.controller)).rejects.toThrow(
      "resources: at least one resource is required",
    );
  });

  it("describes topic and broker configs with their sources, and refuses other resources", async () => {
    const n = await node();
    await createTopic(n, topic("k", { configs: { "retention.ms": "1000" } }));
    const res = n.admin.describeConfigs({
      resources: [
        { type: "topic", name: "k" },
        { type: "broker", name: "" },
        { type: "broker", name: "2" },
        { type: "topic", name: "nope" },
        { type: { unrecognized: 7 }, name: "x" },
      ],
      names: ["retention.ms", "segment.bytes", "node.id"],
      includeDocumentation: false,
    });
    const [topicCfg, broker, otherBroker, unknown, badType] = res.results;
    expect(topicCfg?.entries.map((e) => [e.name, e.value, e.source, e.readOnly])).toEqual([
      ["retention.ms", "1000", "dynamic-topic", false],
      ["segment.bytes", String(1 << 30), "default", false],
    ]);
    expect(broker?.entries).toEqual([
      { name: "node.id", value: "1", source: "static-broker", readOnly: true, sensitive: false, documentation: "" },
    ]);
    expect(otherBroker?.error?.message).toBe('resources[2].name: broker "2" is not this node (1)');
    expect(named(unknown?.error)).toEqual({
      name: "UNKNOWN_TOPIC_OR_PARTITION",
      message: 'resources[3].name: topic "nope" does not exist',
    });
    expect(badType?.error?.message).toBe("resources[4].type: 7 is not CONFIG_RESOURCE_TYPE_TOPIC or CONFIG_RESOURCE_TYPE_BROKER");
    expect(badType?.entries).toEqual([]);
    expect(() => n.admin.describeConfigs({ resources: [], names: [], includeDocumentation: false })).toThrow(
      "resources: at least one resource is required",
    );
  });

  it("fills the documentation only when asked", async () => {
    const n = await node();
    await createTopic(n, topic("k"));
    const doc = (includeDocumentation: boolean) =>
      n.admin.describeConfigs({ resources: [{ type: "topic", name: "k" }], names: ["retention.ms"], includeDocumentation }).results[0]
        ?.entries[0]?.documentation;
    expect(doc(false)).toBe("");
    expect(doc(true)).not.toBe("");
  });
});

describe("AdminHandlers.electLeaders and describeCluster", () => {
  it("answers ELECTION_NOT_NEEDED where the preferred replica leads, and refuses an unknown topic as a whole", async () => {
    const n = await node();
    await createTopic(n, topic("e", { partitions: 2 }));
    const res = await n.admin.electLeaders({ partitions: [{ topic: "e", partitions: [] }] }, n.controller);
    expect(res.results.map((r) => [r.topic, r.partition, r.leader, r.error?.kind.name])).toEqual([
      ["e", 0, 1, "ELECTION_NOT_NEEDED"],
      ["e", 1, 1, "ELECTION_NOT_NEEDED"],
    ]);
    await expect(n.admin.electLeaders({ partitions: [{ topic: "none", partitions: [0] }] }, n.controller)).rejects.toThrow(
      'partitions[0].topic: topic "none" does not exist',
    );
  });

  it("describes the cluster: brokers and voters sorted, the controller and this node's state", async () => {
    const n = await node([3, 1, 2]);
    await n.store.commit(() => [{ type: "broker", v: 1, nodeId: 4, address: "h4:1", roles: ["controller"], fenced: true, rack: "r1" }]);
    const c = n.admin.describeCluster();
    expect(c.clusterId).toBe("cluster-a");
    expect(c.controllerId).toBe(1);
    expect(c.brokers.map((b) => [b.nodeId, b.roles, b.fenced, b.rack])).toEqual([
      [1, ["broker"], false, ""],
      [2, ["broker"], false, ""],
      [3, ["broker"], false, ""],
      [4, ["controller"], true, "r1"],
    ]);
    expect(c.voters).toEqual([
      { nodeId: 1, address: "127.0.0.1:9001" },
      { nodeId: 3, address: "127.0.0.1:9003" },
    ]);
    expect(c.node).toEqual({
      nodeId: 1,
      roles: ["broker", "controller"],
      metadataOffset: n.store.image.offset,
      raftRole: "leader",
      raftTerm: 4,
      commitOffset: 17,
      brokerState: "running",
    });
  });
});
