/**
 * Issue 14's cluster soak bug, replayed deterministically: an idempotent producer writes right
 * after InitProducerId to a partition leader whose metadata has not applied the controller's
 * producer-id record yet. Before the fix that leader answered a final UNKNOWN_PRODUCER_ID
 * ("producer_id: N was never issued by InitProducerId"); now it waits (bounded) for its metadata
 * to catch up, then appends.
 *
 * Three real `rill broker start` processes (cluster-harness.ts) with a TcpProxy on every quorum
 * link. A topic of single-replica partitions; the lagging node L is the leader of one of them and
 * not the active controller C. The test cuts C↔L (L then applies no metadata record: it is a
 * voter that only the controller feeds), asks C for a producer id (C and the third node commit
 * it), checks that L's metadata offset is behind C's, sends the produce to L and waits until L's
 * metrics show the request waiting for its metadata; only then it heals the link. The produce
 * must then succeed. Once more for an epoch bump (INVALID_PRODUCER_EPOCH before the fix), and
 * an id that was never issued still gets its final UNKNOWN_PRODUCER_ID after the request's
 * timeout. No step depends on timing: each wait is for a state, bounded.
 *
 * The broker session timeout is long so the controller does not fence L while it is cut off, and
 * `producer.id.metadata.wait.ms` long so that the wait outlasts the heal on any machine.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import {
  InitProducerIdRequestSchema,
  type InitProducerIdResponse,
  Acks,
  ProduceRequestSchema,
  type ProduceResponse,
} from "../../src/gen/rill/v1/produce_service_pb.ts";
import { Cluster, freePort, until, viewOf } from "./cluster-harness.ts";
import { call, clients } from "./rpc-helpers.ts";

const TOPIC = "lagging";
const PARTITIONS = 6;

let cluster: Cluster | null = null;
const metricsPorts: number[] = [];
const open: Array<ReturnType<typeof clients>> = [];

afterEach((ctx) => {
  if (ctx.task.result?.state === "fail" && cluster !== null) console.log(cluster.tails(30));
});

afterAll(async () => {
  for (const c of open.splice(0)) c.close();
  await cluster?.close();
}, 60_000);

beforeAll(async () => {
  for (let i = 0; i < 3; i++) metricsPorts.push(await freePort());
  cluster = await Cluster.start({
    name: "rill-producer-id-lag-",
    nodes: 3,
    linkProxies: true,
    // A long producer wait: the heal and the catch-up after it may take their time on a busy machine.
    set: { "broker.session.timeout.ms": 60_000, "producer.id.metadata.wait.ms": 60_000 },
    nodeSet: (id) => ({ "metrics.port": metricsPorts[id - 1]! }),
  });
  await cluster.waitForStable(30_000);
}, 90_000);

/** One sample of a metric without labels on node `id`. */
async function metric(id: number, name: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${metricsPorts[id - 1]}/metrics`);
  const text = await res.text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  if (line === undefined) throw new Error(`node ${id} has no metric ${name}`);
  return Number(line.slice(name.length + 1));
}

function produceClient(address: string) {
  const c = clients(address);
  open.push(c);
  return c.produce;
}

describe("a partition leader whose metadata lags the controller's", () => {
  it("waits for the producer id (and a bumped epoch) an idempotent producer just got, instead of UNKNOWN_PRODUCER_ID", async () => {
    const c = cluster!;
    const { leader: controller } = await c.waitForStable(30_000);
    await c
      .node(controller)
      .admin()
      .createTopics([{ name: TOPIC, partitions: PARTITIONS, replicationFactor: 1 }]);
    await c.waitForStable(30_000);
    const [desc] = await c.node(controller).admin().describeTopics([TOPIC]);
    const led = desc!.partitions.find((p) => p.leader > 0 && p.leader !== controller);
    if (!led) throw new Error(`no partition of ${TOPIC} is led by a node other than the controller ${controller}: ${JSON.stringify(desc)}`);
    const lag = led.leader;
    const partition = led.partition;
    console.log(`controller ${controller}; lagging leader ${lag} of ${TOPIC}-${partition}`);
    const atController = produceClient(c.node(controller).address);
    const atLeader = produceClient(c.node(lag).address);

    const init = (producerId?: bigint, producerEpoch = 0): Promise<InitProducerIdResponse> =>
      call(
        atController,
        "initProducerId",
        create(InitProducerIdRequestSchema, { transactionalId: "", ...(producerId !== undefined ? { producerId } : {}), producerEpoch }),
      );
    const produce = (producerId: bigint, producerEpoch: number, value: string, timeoutMs = 30_000): Promise<ProduceResponse> =>
      call(
        atLeader,
        "produce",
        create(ProduceRequestSchema, {
          topic: TOPIC,
          partition,
          acks: Acks.LEADER,
          timeoutMs,
          producerId,
          producerEpoch,
          baseSequence: 0,
          records: [{ value: Buffer.from(value) }],
        }),
        timeoutMs + 10_000,
      );

    /**
     * With C↔L cut: `issue` commits a producer record at the controller; the produce of
     * `value` sent to L right after must wait there until the link is healed, then succeed.
     */
    const lagged = async (
      issue: () => Promise<InitProducerIdResponse>,
      value: string,
      round: number,
    ): Promise<{ got: InitProducerIdResponse; res: ProduceResponse }> => {
      c.cutBoth(controller, lag);
      const got = await issue();
      const [atC, atL] = await Promise.all([c.node(controller).describe(), c.node(lag).describe()]);
      expect(viewOf(atL).metadataOffset, "the cut-off leader must not have applied the producer record").toBeLessThan(
        viewOf(atC).metadataOffset,
      );
      let settled: string | null = null;
      const pending = produce(got.producerId, got.producerEpoch, value);
      pending.then(
        (r) => (settled = `answered ${JSON.stringify(r.partitions[0]?.error ?? null)}`),
        (e: unknown) => (settled = `failed: ${String(e)}`),
      );
      const seen = await until(
        async () => settled ?? (await metric(lag, "rill_produce_producer_metadata_waiting")) >= 1,
        20_000,
        `node ${lag} to hold the produce while its metadata lags (round ${round})`,
      );
      if (settled !== null) throw new Error(`the produce to node ${lag} did not wait for its metadata: ${seen}`);
      c.heal();
      return { got, res: await pending };
    };

    // A new producer id, written at once through the lagging leader.
    const first = await lagged(() => init(), "first", 1);
    expect(first.res.partitions[0]!.error ?? null).toBe(null);
    expect(first.res.partitions[0]!.baseOffset).toBe(0n);

    // Its epoch bumped (a new instance fencing the older one), written at once again.
    await c.waitForStable(30_000);
    const second = await lagged(() => init(first.got.producerId, first.got.producerEpoch), "second", 2);
    expect([second.got.producerId, second.got.producerEpoch]).toEqual([first.got.producerId, first.got.producerEpoch + 1]);
    expect(second.res.partitions[0]!.error ?? null).toBe(null);
    expect(second.res.partitions[0]!.baseOffset).toBe(1n);

    // An id never issued: after the request's timeout, the final answer (nothing appended).
    const bogus = await produce(1_000_000n, 0, "bogus", 300);
    expect(bogus.partitions[0]!.error?.name).toBe("UNKNOWN_PRODUCER_ID");
    expect(await metric(lag, "rill_produce_producer_metadata_waits_total")).toBe(3);
    expect(await metric(lag, "rill_produce_producer_metadata_wait_timeouts_total")).toBe(1);
    expect(await metric(lag, "rill_produce_producer_metadata_waiting")).toBe(0);
  }, 120_000);
});
