/**
 * The console's API on a three-node cluster in this process: any node answers any request — a
 * topic created and its configs altered through a node that is not the active controller (the
 * change passed to the controller, src/rpc/listener-ports.ts), records browsed on every node
 * (each partition read at its leader), each partition's offsets as its leader reports them —
 * a group listed and described on every node whichever node coordinates it, with the lag of
 * partitions its coordinator holds no replica of — and the overview counts under-replicated
 * partitions once a node stops.
 */
import { randomBytes } from "node:crypto";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { GroupAdmin } from "../../src/client/group-admin.ts";
import { Producer } from "../../src/client/producer.ts";
import { freePort, until } from "./cluster-harness.ts";
import { call, type ConsoleBroker, startConsoleBrokers } from "./console-harness.ts";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";

let dir: string;
let nodes: ConsoleBroker[] = [];
const stopped = new Set<number>();

const get = (n: ConsoleBroker, p: string) => call(n.url, "GET", `/api/v1/${p}`);

beforeAll(async () => {
  dir = tmpDir("rill-console-cluster-");
  const ports = [await freePort(), await freePort(), await freePort()];
  const voters = ports.map((p, i) => `${i + 1}@127.0.0.1:${p}`).join(",");
  const clusterSecret = randomBytes(16).toString("hex");
  nodes = await startConsoleBrokers(
    ports.map((p, i) => ({
      dataDir: path.join(dir, `node-${i + 1}`),
      config: {
        nodeId: i + 1,
        listen: `127.0.0.1:${p}`,
        controllerQuorumVoters: voters,
        clusterSecret,
        brokerSessionTimeoutMs: 2000,
        brokerHeartbeatIntervalMs: 300,
        electionTimeoutMs: 800,
        raftHeartbeatIntervalMs: 100,
        replicaLagTimeMaxMs: 2000,
      },
    })),
    200,
  );
  await until(
    async () => {
      const c = await get(nodes[0]!, "cluster");
      return c.body.controllerId > 0 && c.body.brokers.length === 3 && c.body.brokers.every((b: { fenced: boolean }) => !b.fenced)
        ? c
        : null;
    },
    20_000,
    "three unfenced brokers and a controller",
  );
}, 60_000);

afterAll(async () => {
  await Promise.all(nodes.filter((_, i) => !stopped.has(i)).map((n) => n.close()));
  if (dir) rmTmp(dir);
});

it("any node creates, configures, describes and browses a replicated topic; a stopped node shows as under-replicated", async () => {
  const controller = (await get(nodes[0]!, "cluster")).body.controllerId as number;
  const via = nodes.find((_, i) => i + 1 !== controller)!;
  const created = await call(via.url, "POST", "/api/v1/topics", { name: "replicated", partitions: 3, replicationFactor: 2 });
  expect(created).toMatchObject({ status: 201, body: { name: "replicated", partitions: 3, replicationFactor: 2 } });
  // Read-your-writes through the node that forwarded the change.
  expect((await get(via, "topics")).body.topics.map((t: { name: string }) => t.name)).toEqual(["replicated"]);
  const altered = await call(via.url, "PATCH", "/api/v1/topics/replicated/configs", { set: { "retention.ms": "120000" } });
  expect(altered.status).toBe(200);
  expect(altered.body.configs.find((c: { name: string }) => c.name === "retention.ms").value).toBe("120000");

  const p = new Producer({ bootstrap: nodes.map((n) => n.broker.address).join(","), lingerMs: 0 });
  const t0 = Date.now() - 60_000;
  for (let i = 0; i < 30; i++)
    await p.send({ topic: "replicated", partition: i % 3, key: `k${i}`, value: `v${i}`, timestampMs: t0 + i * 1000 });
  await p.close();

  for (const [i, n] of nodes.entries()) {
    // Offsets as each partition's leader reports them, on every node.
    const d = await get(n, "topics/replicated");
    expect(
      d.body.partitions.map((x: { highWatermark: number }) => x.highWatermark),
      `node ${i + 1}`,
    ).toEqual([10, 10, 10]);
    expect(d.body.partitions.map((x: { replicas: number[] }) => x.replicas.length)).toEqual([2, 2, 2]);
    const m = await get(n, "topics/replicated/messages?newest=100&limit=100");
    expect(m.status).toBe(200);
    expect(m.body.partitions.map((x: { error: unknown }) => x.error)).toEqual([null, null, null]);
    const keys = new Set(m.body.records.map((r: { key: { text: string } }) => r.key.text));
    expect(keys, `node ${i + 1}`).toEqual(new Set(Array.from({ length: 30 }, (_, k) => `k${k}`)));
    // From a time: each partition's first offset at or after it, looked up at its leader.
    const since = await get(n, `topics/replicated/messages?timestamp=${t0 + 15_500}&limit=100`);
    expect(since.body.partitions.map((x: { error: unknown }) => x.error)).toEqual([null, null, null]);
    expect(since.body.records.map((r: { key: { text: string } }) => r.key.text)).toEqual(
      Array.from({ length: 14 }, (_, k) => `k${k + 16}`),
    );
  }

  // A group is listed and described on every node, by whichever node coordinates it; the lag of a
  // partition its coordinator holds no replica of comes from the partition's leader.
  const ga = new GroupAdmin({ bootstrap: nodes.map((n) => n.broker.address).join(",") });
  await ga.commitOffsets("cluster-readers", [
    { topic: "replicated", partition: 0, offset: 4 },
    { topic: "replicated", partition: 1, offset: 10 },
    { topic: "replicated", partition: 2, offset: 0 },
  ]);
  await ga.close();
  const coordinators = new Set<number>();
  for (const [i, n] of nodes.entries()) {
    const list = await get(n, "groups");
    expect(list.body.unreachable, `node ${i + 1}`).toEqual([]);
    expect(list.body.groups, `node ${i + 1}`).toContainEqual({ groupId: "cluster-readers", state: "empty", members: 0, totalLag: 16 });
    const g = await get(n, "groups/cluster-readers");
    expect(g.status, `node ${i + 1}`).toBe(200);
    expect(
      g.body.offsets.map((o: { lag: number }) => o.lag),
      `node ${i + 1}`,
    ).toEqual([6, 0, 10]);
    expect(g.body.offsets.map((o: { logEndOffset: number }) => o.logEndOffset)).toEqual([10, 10, 10]);
    coordinators.add(g.body.coordinatorId);
  }
  expect(coordinators.size).toBe(1);

  // Stop a node that is not the controller: the others count its partitions as under-replicated.
  const victim = nodes.findIndex((_, i) => i + 1 !== controller && nodes[i] !== via);
  const watcher = nodes.find((_, i) => i !== victim)!;
  const held = (await get(watcher, "topics/replicated")).body.partitions.filter((x: { replicas: number[] }) =>
    x.replicas.includes(victim + 1),
  );
  expect(held.length).toBeGreaterThan(0);
  stopped.add(victim);
  await nodes[victim]!.close();
  const overview = await until(
    async () => {
      const c = await get(watcher, "cluster");
      return c.body.partitions.underReplicated >= held.length ? c : null;
    },
    20_000,
    `at least ${held.length} under-replicated partitions after node ${victim + 1} stopped`,
  );
  expect(overview.body.partitions.offline).toBe(0);
  const after = (await get(watcher, "topics/replicated")).body.partitions;
  for (const x of after) expect(x.isr.includes(victim + 1), `partition ${x.partition}`).toBe(false);
}, 60_000);
