/**
 * DeleteRecords on a 3-node cluster (cluster-harness.ts: real `rill broker start` processes):
 * a request sent to a broker that does not lead the partition is passed to its leader; the
 * leader raises its log start offset and every follower raises its own (each node asked
 * directly, with ListOffsets EARLIEST, answers from its own log); a read below it is
 * OFFSET_OUT_OF_RANGE; after kill -9 of the leader the new leader starts at the same offset, and
 * the killed node, started again, still does (its checkpoint file). Every wait is bounded.
 */
import { create } from "@bufbuild/protobuf";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Producer } from "../../src/client/producer.ts";
import { OffsetSpec, RecordFormat } from "../../src/gen/rill/v1/common_pb.ts";
import {
  type FetchResponse,
  FetchRequestSchema,
  type ListOffsetsResponse,
  ListOffsetsRequestSchema,
} from "../../src/gen/rill/v1/fetch_service_pb.ts";
import { Cluster, type ClusterNode, until } from "./cluster-harness.ts";
import { call, clients } from "./rpc-helpers.ts";

const TOPIC = "dr";
let cluster: Cluster;

beforeAll(async () => {
  cluster = await Cluster.start({
    name: "rill-delete-records-",
    nodes: 3,
    set: { "broker.session.timeout.ms": 3000, "broker.heartbeat.interval.ms": 500, "replica.lag.time.max.ms": 3000 },
  });
  await cluster.waitForStable(30_000);
}, 90_000);

afterEach((ctx) => {
  if (ctx.task.result?.state === "fail") console.log(cluster.tails(30));
});

afterAll(async () => {
  await cluster?.close();
}, 60_000);

/** The log start offset node `n` answers from its own replica (null while it cannot answer). */
async function ownLogStart(n: ClusterNode): Promise<number | null> {
  const c = clients(n.address);
  try {
    const res: ListOffsetsResponse = await call(
      c.fetch,
      "listOffsets",
      create(ListOffsetsRequestSchema, { partitions: [{ topic: TOPIC, partition: 0, spec: OffsetSpec.EARLIEST }] }),
    );
    const p = res.partitions[0]!;
    return p.error ? null : Number(p.offset);
  } catch {
    return null;
  } finally {
    c.close();
  }
}

async function leaderOf(n: ClusterNode): Promise<number> {
  const [t] = await n.admin().describeTopics([TOPIC], { includeConfigs: false });
  return t!.partitions[0]!.leader;
}

describe("DeleteRecords on a 3-node cluster", () => {
  it("is passed to the leader, followed by the followers, refuses reads below, and survives kill -9 and restart", async () => {
    const first = cluster.nodes[0]!;
    await first.admin().createTopics([{ name: TOPIC, partitions: 1, replicationFactor: 3, configs: { "min.insync.replicas": "2" } }]);
    const producer = new Producer({ bootstrap: cluster.nodes.map((n) => n.address).join(","), acks: "all", lingerMs: 5 });
    await Promise.all(Array.from({ length: 100 }, (_, i) => producer.send({ topic: TOPIC, partition: 0, value: `v${i}` })));
    await producer.close();

    const leader = await until(
      async () => {
        const l = await leaderOf(first);
        return l >= 0 ? l : null;
      },
      15_000,
      "a leader",
    );
    const other = cluster.nodes.find((n) => n.id !== leader)!;
    // Sent to a broker that does not lead the partition: it passes the request on.
    const [res] = await other.admin().deleteRecords([{ topic: TOPIC, partition: 0, offset: 40 }]);
    expect(res).toEqual({ topic: TOPIC, partition: 0, lowWatermark: 40 });
    // Every replica raises its own log start offset.
    for (const n of cluster.nodes) await until(async () => (await ownLogStart(n)) === 40 || null, 15_000, `node ${n.id} at 40`);

    // Past the high watermark: OFFSET_OUT_OF_RANGE, nothing changes.
    await expect(other.admin().deleteRecords([{ topic: TOPIC, partition: 0, offset: 101 }])).rejects.toThrow(/OFFSET_OUT_OF_RANGE|outside/);

    // A read below the log start offset is refused.
    const lc = clients(cluster.node(leader).address);
    const below: FetchResponse = await call(
      lc.fetch,
      "fetch",
      create(FetchRequestSchema, {
        partitions: [{ topic: TOPIC, partition: 0, offset: 39n }],
        format: RecordFormat.RECORDS,
        maxBytes: 1 << 20,
      }),
    );
    lc.close();
    expect(below.partitions[0]!.error?.name).toBe("OFFSET_OUT_OF_RANGE");

    // kill -9 of the leader: the new leader's log starts at 40 too.
    await cluster.node(leader).kill();
    const survivor = cluster.nodes.find((n) => n.id !== leader)!;
    const next = await until(
      async () => {
        const l = await leaderOf(survivor).catch(() => -1);
        return l >= 0 && l !== leader ? l : null;
      },
      30_000,
      "a new leader",
    );
    const [described] = await survivor.admin().describeTopics([TOPIC], { includeConfigs: false });
    expect(described!.partitions[0]).toMatchObject({ leader: next, logStartOffset: 40, highWatermark: 100 });

    // The killed node, started again, still starts at 40 (its checkpoint), and follows a
    // second delete, of everything (-1: the high watermark).
    await cluster.node(leader).start();
    await until(async () => (await ownLogStart(cluster.node(leader))) === 40 || null, 30_000, "the restarted node at 40");
    const [all] = await survivor.admin().deleteRecords([{ topic: TOPIC, partition: 0, offset: -1 }]);
    expect(all!.lowWatermark).toBe(100);
    for (const n of cluster.nodes) await until(async () => (await ownLogStart(n)) === 100 || null, 30_000, `node ${n.id} at 100`);
  }, 180_000);
});
