/**
 * Eligible leader replicas (KIP-966, issue 21) with real processes: one controller-only voter
 * and three brokers (observers of the quorum). A topic of RF 3 and min.insync.replicas 2 gets acknowledged
 * writes while its replicas die one by one (kill -9) until the ISR is empty:
 * - with ELR on (the default), the replica that left the ISR below min ISR stays eligible; the
 *   out-of-sync replica that comes back first is not elected, the eligible one is, and every
 *   acknowledged record is still there;
 * - with ELR off and unclean.leader.election.enable (the controller restarted with
 *   eligible.leader.replicas.enable=false), the out-of-sync replica is elected and the records
 *   acknowledged after it fell behind are gone.
 * Only 127.0.0.1; every process is stopped in afterAll.
 */
import * as nodeFs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Consumer } from "../../src/client/consumer.ts";
import { Producer } from "../../src/client/producer.ts";
import type { PartitionDescription } from "../../src/client/admin.ts";
import { ClusterNode, FAST_CLUSTER_SETTINGS, freePort, until, viewOf, writeSecretFile } from "./cluster-harness.ts";

const root = nodeFs.mkdtempSync(path.join(os.tmpdir(), "rill-elr-"));
const nodes = new Map<number, ClusterNode>();
const closers: Array<() => Promise<void>> = [];
let ports: number[] = [];
let voters = "";

function node(id: number, roles: string, set: Record<string, string> = {}): ClusterNode {
  const dataDir = path.join(root, `node-${id}`);
  const settings = {
    ...FAST_CLUSTER_SETTINGS,
    "cluster.id": "elr-test",
    "replica.lag.time.max.ms": "3000",
    "cluster.secret.file": writeSecretFile(root),
    ...set,
  };
  const args = [
    ...["broker", "start", "--node-id", String(id), "--listen", `127.0.0.1:${ports[id - 1]}`, "--data-dir", dataDir],
    ...["--roles", roles, "--controller-quorum", voters],
    ...Object.entries(settings).flatMap(([k, v]) => ["--set", `${k}=${v}`]),
  ];
  return new ClusterNode(id, ports[id - 1]!, dataDir, path.join(root, `node-${id}.log`), voters, args, "bun", 30_000);
}

const byId = (id: number): ClusterNode => nodes.get(id)!;
const BROKERS = [2, 3, 4];

beforeAll(async () => {
  ports = await Promise.all([1, 2, 3, 4].map(() => freePort()));
  voters = `1@127.0.0.1:${ports[0]}`;
  nodes.set(1, node(1, "controller"));
  // Brokers with the controller role, as observers of the quorum: their metadata is on disk, so
  // a restarted one knows its partitions at once.
  for (const id of BROKERS) nodes.set(id, node(id, "broker,controller"));
  await Promise.all([...nodes.values()].map((n) => n.start()));
}, 90_000);

afterAll(async () => {
  for (const c of closers) await c().catch(() => {});
  await Promise.all([...nodes.values()].map((n) => n.kill().catch(() => {})));
  await Promise.all([...nodes.values()].map((n) => n.closeClients().catch(() => {})));
  nodeFs.rmSync(root, { recursive: true, force: true });
}, 60_000);

/** A running broker other than `not`. */
function liveBroker(...not: number[]): ClusterNode {
  const n = BROKERS.map(byId).find((b) => b.running && !not.includes(b.id));
  if (!n) throw new Error("no running broker");
  return n;
}

async function partition(topic: string): Promise<PartitionDescription> {
  const [t] = await liveBroker().admin({ retries: 10 }).describeTopics([topic]);
  return t!.partitions[0]!;
}

async function waitFor(topic: string, what: string, ok: (p: PartitionDescription) => boolean): Promise<PartitionDescription> {
  return until(
    async () => {
      const p = await partition(topic).catch(() => null);
      return p && ok(p) ? p : null;
    },
    20_000,
    `${topic}: ${what}`,
  );
}

async function unfenced(id: number): Promise<void> {
  await until(async () => viewOf(await byId(1).describe()).fenced.get(id) === false || null, 20_000, `broker ${id} unfenced`);
}

async function produce(topic: string, values: readonly string[]): Promise<void> {
  const producer = new Producer({ bootstrap: liveBroker().address, acks: "all", requestTimeoutMs: 10_000, retry: { retries: 20 } });
  try {
    for (const value of values) await producer.send({ topic, partition: 0, value });
  } finally {
    await producer.close();
  }
}

/** Every value of partition 0 below its high watermark, once the ISR is back at min ISR. */
async function readAll(topic: string): Promise<string[]> {
  const p = await waitFor(topic, "ISR back at 2", (q) => q.leader >= 0 && q.isr.length >= 2 && q.highWatermark > 0);
  const consumer = new Consumer({ bootstrap: byId(p.leader).address, maxWaitMs: 200, retry: { retries: 20 } });
  const got: string[] = [];
  try {
    consumer.assign([{ topic, partition: 0, offset: "earliest" }]);
    const deadline = setTimeout(() => void consumer.close(), 15_000);
    for await (const r of consumer) {
      got.push(r.value!.toString());
      if (r.offset + 1 >= p.highWatermark) break;
    }
    clearTimeout(deadline);
  } finally {
    await consumer.close();
  }
  return got;
}

/**
 * Acknowledged writes while the replicas of `topic` die until its ISR is empty: 10 with the full
 * ISR, 10 more after the last replica `c` died (ISR {a,b}); then `b` and `a` die. Returns the
 * replicas in the order [a, b, c] and the acknowledged values.
 */
async function emptyTheIsr(topic: string, configs: Record<string, string>): Promise<{ order: number[]; acked: string[] }> {
  const admin = liveBroker().admin({ retries: 20 });
  await admin.createTopics([{ name: topic, partitions: 1, replicationFactor: 3, configs: { "min.insync.replicas": "2", ...configs } }]);
  const full = await waitFor(topic, "full ISR", (p) => p.isr.length === 3 && p.leader === p.replicas[0]);
  const [a, b, c] = full.replicas as [number, number, number];
  const acked = Array.from({ length: 20 }, (_, i) => `${topic}-${i}`);
  await produce(topic, acked.slice(0, 10));
  await byId(c).kill();
  await waitFor(topic, `${c} out of the ISR`, (p) => p.isr.length === 2 && !p.isr.includes(c));
  await produce(topic, acked.slice(10)); // c misses these
  await byId(b).kill();
  await waitFor(topic, `${b} out of the ISR`, (p) => p.isr.length === 1 && p.leader === a);
  await byId(a).kill();
  return { order: [a, b, c], acked };
}

describe("eligible leader replicas", () => {
  it("RF 3, min ISR 2: the emptied ISR elects the eligible replica and keeps every acknowledged write", async () => {
    await Promise.all(BROKERS.map(unfenced));
    const { order, acked } = await emptyTheIsr("elr-on", {});
    const [a, b, c] = order as [number, number, number];
    // Read through the controller: every broker of the topic is down.
    const viaController = async (): Promise<PartitionDescription> => {
      const [t] = await byId(1).admin({ retries: 10 }).describeTopics(["elr-on"]);
      return t!.partitions[0]!;
    };
    const emptied = await until(async () => ((p) => (p.leader === -1 ? p : null))(await viaController()), 20_000, "ISR emptied");
    expect(emptied.isr).toEqual([]);
    expect([...emptied.eligibleLeaderReplicas].sort()).toEqual([a, b].sort());
    // The out-of-sync replica comes back first: it is not eligible, nobody is elected.
    await byId(c).start();
    await unfenced(c);
    expect(await viaController()).toMatchObject({ leader: -1, isr: [] });
    // The eligible replica comes back (killed on this machine's boot: a clean registration) and leads.
    await byId(b).start();
    const led = await waitFor("elr-on", `${b} elected from the ELR`, (p) => p.leader === b);
    expect(led.eligibleLeaderReplicas).not.toContain(b);
    expect(await readAll("elr-on")).toEqual(acked);
    await byId(a).start();
    await unfenced(a);
  }, 120_000);

  it("with ELR off and unclean leader election on, the same sequence elects the stale replica and loses acknowledged writes", async () => {
    await byId(1).terminate();
    nodes.set(1, node(1, "controller", { "eligible.leader.replicas.enable": "false" }));
    await byId(1).start();
    await Promise.all(BROKERS.map(unfenced));
    const { order, acked } = await emptyTheIsr("elr-off", { "unclean.leader.election.enable": "true" });
    const [, b, c] = order as [number, number, number];
    await byId(c).start();
    const led = await waitFor("elr-off", `${c} elected unclean`, (p) => p.leader === c);
    expect(led.isr).toEqual([c]);
    expect(led.eligibleLeaderReplicas).toEqual([]);
    await byId(b).start(); // it truncates to c's log and rejoins the ISR
    const read = await readAll("elr-off");
    expect(read).toEqual(acked.slice(0, 10)); // the 10 acknowledged after c fell behind are gone
  }, 120_000);
});
