/**
 * Broker sessions on the active controller (src/broker/cluster-controller.ts) when the
 * controller's own process stalls. Found by the Bun soak (issue 14): a single-node broker whose
 * event loop was blocked for 2 s (a group shard reloading a 20 MiB `__consumer_offsets`
 * partition, on a loaded machine) fenced its own broker at the next check; the fence and the
 * unfence that followed moved every leader, which reloaded the shards and blocked the loop
 * again — a minute of "has no leader right now" and nothing acknowledged.
 *
 * A real single-voter quorum store on an in-memory file system; time is a ManualClock and the
 * checks are run by hand, so a stall is a clock jump between two checks.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../../src/base/clock.ts";
import { SeededRandom } from "../../../src/base/random.ts";
import { ManualTimers } from "../../../src/base/timers.ts";
import { ClusterController } from "../../../src/broker/cluster-controller.ts";
import { silentLog } from "../../../src/broker/log.ts";
import { QuorumMetadataStore } from "../../../src/metadata/quorum-store.ts";
import { MemoryFileSystem } from "../../../src/storage/fs.ts";

const SESSION_MS = 2000;
const CHECK_MS = 100;
const open: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  for (const close of open.splice(0).reverse()) await close();
});

/** Node 1 (a voter with a broker, incarnation "local") leads; broker 2 (incarnation "remote") is registered too; both unfenced. */
async function start() {
  const clock = new ManualClock();
  const store = QuorumMetadataStore.open({
    fs: new MemoryFileSystem(),
    dataDir: "/data",
    nodeId: 1,
    voters: [1],
    random: new SeededRandom(14),
    transport: { send() {} },
    timers: new ManualTimers(),
    tickMs: 100,
    electionTicks: 10,
    snapshotIntervalRecords: 1000,
  });
  open.push(() => store.close());
  expect(store.isLeader).toBe(true);
  const controller = new ClusterController({
    store,
    clock,
    random: new SeededRandom(15),
    clusterId: "c",
    sessionTimeoutMs: SESSION_MS,
    offsetsReplicationFactor: 1,
    checkIntervalMs: CHECK_MS,
    log: silentLog,
    localNodeId: 1,
    localIncarnation: "local",
  });
  open.push(() => controller.close());
  const epochs = new Map<number, number>();
  for (const [nodeId, incarnationId] of [
    [1, "local"],
    [2, "remote"],
  ] as const) {
    const r = await controller.register({
      nodeId,
      clusterId: "c",
      incarnationId,
      address: `127.0.0.1:${nodeId}`,
      rack: "",
      roles: ["broker"],
    });
    epochs.set(nodeId, r.brokerEpoch);
  }
  const heartbeat = (nodeId: number) =>
    controller.heartbeat({
      nodeId,
      brokerEpoch: epochs.get(nodeId)!,
      currentMetadataOffset: store.image.offset,
      wantFence: false,
      wantShutDown: false,
    });
  await heartbeat(1);
  await heartbeat(2);
  await controller.runChecks(); // the first check of the term gives every broker a fresh session
  const fenced = (nodeId: number) => store.image.brokers.get(nodeId)!.fenced;
  expect([fenced(1), fenced(2)]).toEqual([false, false]);
  /** `ms` of a responsive process: a check every CHECK_MS. */
  const run = async (ms: number) => {
    for (let t = 0; t < ms; t += CHECK_MS) {
      clock.advance(CHECK_MS);
      await controller.runChecks();
    }
  };
  return { clock, controller, heartbeat, fenced, run };
}

describe("broker sessions on a controller whose process stalls", () => {
  it("a stall longer than the session fences nobody: the heartbeats that arrived meanwhile are read after it", async () => {
    const { clock, controller, heartbeat, fenced, run } = await start();
    await run(1000);
    await heartbeat(1);
    await heartbeat(2);
    await run(500);
    // The process is blocked for 2.5 s (more than the 2 s session): no check, no heartbeat read.
    clock.advance(2500);
    await controller.runChecks();
    expect([fenced(1), fenced(2)]).toEqual([false, false]);
    // Then the heartbeats queued during the stall are read, and all goes on as before.
    await heartbeat(2);
    await run(1000);
    expect([fenced(1), fenced(2)]).toEqual([false, false]);
  });

  it("a remote broker that stops heartbeating is still fenced after its session of responsive time; the local broker never is", async () => {
    const started = await start();
    const { controller, heartbeat, fenced, run } = started;
    await run(SESSION_MS - 200);
    expect(fenced(2)).toBe(false);
    await run(400);
    expect(fenced(2)).toBe(true);
    // The controller's own broker sent nothing either (its heartbeat loop is as late as the
    // process), yet it serves: it is not fenced, and still leads what it led.
    expect(fenced(1)).toBe(false);
    await run(5000);
    expect(fenced(1)).toBe(false);
    // A stall does not hide a dead remote broker: its session counts the responsive time only.
    await heartbeat(2); // back: unfenced once it heartbeats
    expect(fenced(2)).toBe(false);
    const { clock } = started;
    clock.advance(1500); // a 1.5 s stall right after its last heartbeat
    await controller.runChecks();
    await run(SESSION_MS - 200); // 3.3 s since its heartbeat, 1.9 s of them responsive
    expect(fenced(2)).toBe(false);
    await run(400);
    expect(fenced(2)).toBe(true);
  });
});

/**
 * Two voters (nodes 1 and 2, each with its controller runtime) over an in-memory network, and
 * broker 3 (no controller role). Timers and clock move together by hand; the controllers' own
 * check timers run on them, so checks happen as in a process.
 */
async function startQuorum() {
  const clock = new ManualClock();
  const timers = new ManualTimers();
  const stores = new Map<number, QuorumMetadataStore>();
  const controllers = new Map<number, ClusterController>();
  for (const id of [1, 2]) {
    const store = QuorumMetadataStore.open({
      fs: new MemoryFileSystem(),
      dataDir: "/data",
      nodeId: id,
      voters: [1, 2],
      random: new SeededRandom(190 + id),
      transport: {
        send(to, messages) {
          queueMicrotask(() => stores.get(to)?.receive(messages));
        },
      },
      timers,
      tickMs: 50,
      electionTicks: 10,
      snapshotIntervalRecords: 1000,
    });
    stores.set(id, store);
    open.push(() => store.close());
    const controller = new ClusterController({
      store,
      clock,
      random: new SeededRandom(195 + id),
      clusterId: "c",
      sessionTimeoutMs: SESSION_MS,
      offsetsReplicationFactor: 3,
      checkIntervalMs: CHECK_MS,
      log: silentLog,
      localNodeId: id,
      localIncarnation: `node-${id}`,
      timers,
    });
    controllers.set(id, controller);
    open.push(() => controller.close());
  }
  /** `ms` of time, 10 ms at a time, letting every message and commit settle after each step. */
  const run = async (ms: number) => {
    for (let t = 0; t < ms; t += 10) {
      clock.advance(10);
      timers.advance(10);
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    }
  };
  const leader = () => [...stores.values()].find((s) => s.isLeader)?.status().id ?? 0;
  const moveLeadership = async (to: number) => {
    for (let i = 0; i < 100 && leader() !== to; i++) {
      const from = leader();
      if (from !== 0) stores.get(from)!.transferLeadership(to);
      await run(100);
    }
    expect(leader()).toBe(to);
  };
  await run(2000);
  expect(leader()).not.toBe(0);
  const epochs = new Map<number, number>();
  const register = async (nodeId: number, incarnationId: string) => {
    const r = await controllers.get(leader())!.register({
      nodeId,
      clusterId: "c",
      incarnationId,
      address: `127.0.0.1:${nodeId}`,
      rack: "",
      roles: nodeId === 3 ? ["broker"] : ["broker", "controller"],
    });
    epochs.set(nodeId, r.brokerEpoch);
  };
  const heartbeat = (nodeId: number) =>
    controllers.get(leader())!.heartbeat({
      nodeId,
      brokerEpoch: epochs.get(nodeId)!,
      currentMetadataOffset: stores.get(leader())!.image.offset,
      wantFence: false,
      wantShutDown: false,
    });
  const broker = (nodeId: number) => stores.get(leader())!.image.brokers.get(nodeId);
  return { run, leader, moveLeadership, register, heartbeat, broker };
}

describe("broker sessions across changes of the active controller", () => {
  it("a broker that stops heartbeating is fenced a session after a controller leads again, and its restart registers (cluster-sim seed 1183)", async () => {
    const q = await startQuorum();
    await q.moveLeadership(1);
    await q.register(1, "node-1");
    await q.register(2, "node-2");
    await q.register(3, "run-1");
    const alive = async (ms: number) => {
      for (let t = 0; t < ms; t += 500) {
        for (const id of [1, 2, 3]) await q.heartbeat(id);
        await q.run(500);
      }
    };
    await alive(1000);
    expect(q.broker(3)!.fenced).toBe(false);
    // Node 2 leads for a long while (far longer than a session); node 1's checks stop meanwhile.
    await q.moveLeadership(2);
    await alive(10_000);
    // Broker 3's process loses power; node 1 leads again.
    await q.moveLeadership(1);
    for (let t = 0; t < SESSION_MS + 1000; t += 500) {
      await q.heartbeat(1);
      await q.heartbeat(2);
      await q.run(500);
    }
    // Its session ran out: fenced, and the restarted process's registration replaces it. (It
    // was not: the time node 1 did not lead counted as a stall of its checks and extended
    // every session by it, so the restart was refused as a duplicate that long.)
    expect(q.broker(3)!.fenced).toBe(true);
    await q.register(3, "run-2");
    expect(q.broker(3)!.incarnationId).toBe("run-2");
  }, 30_000);
});
