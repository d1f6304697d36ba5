/**
 * Dedicated roles: three controller-only voters and two broker-only nodes (KRaft observers that
 * follow the committed metadata log through ControllerService.FetchMetadata). The brokers
 * register and are unfenced, partitions are placed only on them, records produced through one
 * broker are read through the other, and a broker killed with kill -9 is fenced, then — with no
 * metadata of its own on disk — catches up from the voters and is unfenced again on restart,
 * its partition logs kept (not deleted and fetched again).
 * Only 127.0.0.1; every process is stopped in afterAll.
 */
import * as nodeFs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FetchRequestSchema, FetchService, type FetchResponse } from "../../src/gen/rill/v1/fetch_service_pb.ts";
import { Acks, ProduceRequestSchema, ProduceService, type ProduceResponse } from "../../src/gen/rill/v1/produce_service_pb.ts";
import { RecordFormat } from "../../src/gen/rill/v1/common_pb.ts";
import { clientConstructor } from "../../src/protocol/grpc-service.ts";
import { ClusterNode, FAST_CLUSTER_SETTINGS, freePort, unaryCall, until, viewOf, writeSecretFile } from "./cluster-harness.ts";

const root = nodeFs.mkdtempSync(path.join(os.tmpdir(), "rill-roles-"));
const nodes: ClusterNode[] = [];
const clients: grpc.Client[] = [];

function node(id: number, port: number, roles: string, voters: string): ClusterNode {
  const dataDir = path.join(root, `node-${id}`);
  const settings = {
    ...FAST_CLUSTER_SETTINGS,
    "cluster.id": "roles-test",
    "replica.lag.time.max.ms": "3000",
    "cluster.secret.file": writeSecretFile(root),
  };
  const args = [
    "broker",
    "start",
    "--node-id",
    String(id),
    "--listen",
    `127.0.0.1:${port}`,
    "--data-dir",
    dataDir,
    "--roles",
    roles,
    "--controller-quorum",
    voters,
    ...Object.entries(settings).flatMap(([k, v]) => ["--set", `${k}=${v}`]),
  ];
  return new ClusterNode(id, port, dataDir, path.join(root, `node-${id}.log`), voters, args, "bun", 30_000);
}

beforeAll(async () => {
  const ports = await Promise.all([1, 2, 3, 4, 5].map(() => freePort()));
  const voters = [1, 2, 3].map((id) => `${id}@127.0.0.1:${ports[id - 1]}`).join(",");
  for (const id of [1, 2, 3]) nodes.push(node(id, ports[id - 1]!, "controller", voters));
  for (const id of [4, 5]) nodes.push(node(id, ports[id - 1]!, "broker", voters));
  await Promise.all(nodes.map((n) => n.start()));
}, 90_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all(nodes.map((n) => n.kill().catch(() => {})));
  await Promise.all(nodes.map((n) => n.closeClients().catch(() => {})));
  nodeFs.rmSync(root, { recursive: true, force: true });
}, 60_000);

const byId = (id: number): ClusterNode => nodes[id - 1]!;

async function unfencedBrokers(via: ClusterNode): Promise<number[]> {
  const v = viewOf(await via.describe());
  return [...v.fenced]
    .filter(([, fenced]) => !fenced)
    .map(([id]) => id)
    .sort();
}

describe("dedicated controllers and broker-only nodes", () => {
  it("brokers register, host every partition, and serve produce and fetch for each other", async () => {
    await until(async () => (await unfencedBrokers(byId(4)).catch(() => [])).join(",") === "4,5", 30_000, "brokers 4 and 5 unfenced");
    const d4 = await byId(4).describe();
    expect(d4.controllerId).toBeGreaterThanOrEqual(1);
    expect(d4.controllerId).toBeLessThanOrEqual(3);
    expect(d4.node!.raftRole).toBe("observer");
    expect((await byId(1).describe()).node!.raftRole).not.toBe("observer");

    const admin = byId(4).admin({ retries: 20 });
    await admin.createTopics([{ name: "roles", partitions: 4, replicationFactor: 2, configs: { "min.insync.replicas": "2" } }]);
    const [t] = await until(
      async () => {
        const r = await admin.describeTopics(["roles"]);
        return r[0]!.partitions.length === 4 && r[0]!.partitions.every((p) => p.isr.length === 2) ? r : null;
      },
      20_000,
      "topic roles with full ISRs",
    );
    for (const p of t!.partitions) expect([...p.replicas].sort()).toEqual([4, 5]); // controllers host nothing

    const produce = new (clientConstructor(ProduceService))(byId(5).address, grpc.credentials.createInsecure());
    const fetch = new (clientConstructor(FetchService))(byId(4).address, grpc.credentials.createInsecure());
    clients.push(produce, fetch);
    const values = Array.from({ length: 40 }, (_, i) => `v${i}`);
    const res = await unaryCall<ProduceResponse>(
      (o, cb) =>
        produce.produce(
          create(ProduceRequestSchema, {
            topic: "roles",
            acks: Acks.ALL,
            timeoutMs: 10_000,
            records: values.map((v, i) => ({ key: Buffer.from(`k${i}`), value: Buffer.from(v) })),
          }),
          o,
          cb,
        ),
      20_000,
    );
    expect(res.partitions.every((p) => p.error === undefined)).toBe(true);
    const read = new Set<string>();
    await until(
      async () => {
        const f = await unaryCall<FetchResponse>(
          (o, cb) =>
            fetch.fetch(
              create(FetchRequestSchema, {
                format: RecordFormat.RECORDS,
                maxWaitMs: 200,
                partitions: [0, 1, 2, 3].map((partition) => ({ topic: "roles", partition, offset: 0n })),
              }),
              o,
              cb,
            ),
          10_000,
        );
        for (const p of f.partitions) for (const r of p.records) read.add(Buffer.from(r.value!).toString());
        return read.size === values.length;
      },
      20_000,
      "every value read through broker 4",
    );
    expect([...read].sort()).toEqual([...values].sort());
  }, 90_000);

  it("a broker killed with kill -9 is fenced; restarted with no metadata of its own, it catches up, is unfenced and keeps its logs", async () => {
    // A marker in each of broker 4's partition folders: a log deleted and fetched again from the
    // leader would lose it (a broker-only node once deleted every log at restart: its image starts empty).
    const dirs = nodeFs.readdirSync(byId(4).dataDir).filter((d) => /^roles-\d+$/.test(d));
    expect(dirs.length).toBe(4);
    for (const d of dirs) nodeFs.writeFileSync(path.join(byId(4).dataDir, d, "marker"), "kept");
    await byId(4).kill();
    await until(async () => (await unfencedBrokers(byId(5))).join(",") === "5", 20_000, "broker 4 fenced");
    const admin = byId(5).admin({ retries: 20 });
    await admin.createTopics([{ name: "while-down", partitions: 1, replicationFactor: 1 }]);
    await byId(4).start();
    await until(async () => (await unfencedBrokers(byId(5))).join(",") === "4,5", 30_000, "broker 4 unfenced again");
    const v4 = await byId(4).describe();
    const v1 = await byId(1).describe();
    expect(v4.node!.metadataOffset).toBeGreaterThanOrEqual(v1.node!.metadataOffset - 5n); // heartbeats keep committing
    const topics = await byId(4).admin({ retries: 20 }).listTopics();
    expect(topics.map((t) => t.name)).toContain("while-down");
    for (const d of dirs) expect(nodeFs.existsSync(path.join(byId(4).dataDir, d, "marker")), `${d}/marker`).toBe(true);
  }, 90_000);
});
