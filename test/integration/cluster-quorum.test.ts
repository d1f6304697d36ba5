/**
 * The controller quorum with three real broker processes on 127.0.0.1 (issue 5, "What it must
 * show"): each scenario starts its own 3-node cluster (cluster-harness.ts) with short timeouts —
 * a broker is fenced 2 s after its last heartbeat, a voter campaigns 0.8–1.6 s after it last
 * heard a leader, a snapshot every 20 metadata log entries.
 *
 * 1. kill -9 the active controller: the survivors elect a new one, fence the dead broker, move
 *    its partition leaderships, create topics on live brokers only; the killed node rejoins
 *    (registers again, unfenced) and catches up with what happened while it was down.
 * 2. SIGSTOP the active controller: the others elect a new one and keep working; on SIGCONT
 *    the old one (still believing it leads its old term) steps down and catches up.
 * 3. SIGTERM all three and start them again, then kill -9 all three and start them again:
 *    topics, partition assignments and configs are the same as before.
 * 4. the active controller is cut off from both others by per-link TCP proxies (once with
 *    packets dropped, once with connections reset): the majority elects a controller, keeps
 *    creating topics and fences only the isolated broker; the isolated node stops acting as
 *    controller and refuses a topic with a retriable error; once healed it catches up, the
 *    change it was asked for while isolated is nowhere, and no term ever had two leaders (from
 *    every node's "leader changed" log line and from DescribeCluster samples).
 * 5. a node stopped while enough metadata is written for both live voters to snapshot and
 *    truncate their logs past the node's last entry catches up on restart: only InstallSnapshot
 *    over gRPC can bring it there.
 *
 * Known failure (2. and 4. with dropped packets, the check of which brokers were fenced): a
 * broker's heartbeat in flight to the old controller hangs until ControllerChannel's 5 s call
 * deadline (hard-coded `callTimeoutMs: 5000` in src/broker/broker.ts), longer than the 2 s
 * session, so the new controller fences every live broker — itself included — 2 s after its
 * election, and they are unfenced again only when the stalled call ends. With reset links the
 * call fails at once and nothing is fenced wrongly. The scenarios go on (waiting for the brokers
 * to be unfenced again) so that the rest is still checked.
 *
 * SEED=n replays the seeded choices (which survivor is asked, topic shapes); the seed is
 * printed. Waits are bounded generously and report the time they took; no assertion rests on a
 * measured duration.
 */
import { describe, expect, it, onTestFinished } from "vitest";
import { create } from "@bufbuild/protobuf";
import type { TopicDescription } from "../../src/client/admin.ts";
import { RillError } from "../../src/base/errors.ts";
import { SeededRandom, seedFromEnv } from "../../src/base/random.ts";
import { CreateTopicsRequestSchema, type CreateTopicsResponse } from "../../src/gen/rill/v1/admin_service_pb.ts";
import { Cluster, raftDiskState, splitBrains, unaryCall, until, viewOf, type ClusterNode } from "./cluster-harness.ts";
import type * as grpc from "@grpc/grpc-js";
import { Metadata } from "@grpc/grpc-js";

const SEED = seedFromEnv();
const rnd = new SeededRandom(SEED);
console.log(`cluster-quorum SEED=${SEED}`);

const OFFSETS_TOPIC = "__consumer_offsets";
/**
 * Starts this test's cluster, waits until it is stable with its internal topic, and stops it
 * when the test ends, printing the tail of every node's log if the test failed (RILL_IT_KEEP=1
 * keeps the data and full logs).
 */
async function startCluster(o: Parameters<typeof Cluster.start>[0] = {}): Promise<Cluster> {
  const c = await Cluster.start({ name: "rill-quorum-", ...o });
  onTestFinished(async (ctx) => {
    if (ctx.task.result?.state === "fail") console.log(c.tails(25));
    await c.close();
  });
  await c.waitForStable(30_000);
  // The internal topic appears once all three brokers are unfenced; wait for it so that the
  // metadata stops moving before a scenario starts.
  await until(
    async () => (await c.nodes[0]!.admin().listTopics({ includeInternal: true })).some((t) => t.name === OFFSETS_TOPIC),
    30_000,
    `${OFFSETS_TOPIC} to exist`,
  );
  await c.waitForStable(30_000);
  return c;
}

/** What must survive restarts: names, configs, partitions and their replica assignments. */
function shape(topics: readonly TopicDescription[]) {
  return [...topics]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((t) => ({
      name: t.name,
      configs: t.configs,
      partitions: t.partitions.map((p) => ({ partition: p.partition, replicas: [...p.replicas] })),
    }));
}

/** leader ∈ ISR ⊆ replicas (or leaderless). */
function expectSane(topics: readonly TopicDescription[]): void {
  for (const t of topics) {
    for (const p of t.partitions) {
      for (const r of p.isr) expect(p.replicas, `${t.name}-${p.partition} isr ${p.isr} ⊆ replicas`).toContain(r);
      if (p.leader >= 0) expect(p.isr, `${t.name}-${p.partition} leader ${p.leader} ∈ isr`).toContain(p.leader);
    }
  }
}

function pick<T>(xs: readonly T[]): T {
  return xs[rnd.int(xs.length)]!;
}

function timer(): () => number {
  const t0 = Date.now();
  return () => Date.now() - t0;
}

/** The catalog name of a failed admin call (RillError from the SDK). */
function errorNameOf(e: unknown): string {
  return e instanceof RillError ? e.kind.name : `${(e as Error).name}: ${(e as Error).message}`;
}

describe("kill -9 of the active controller", () => {
  it("elects a new controller, fences the dead broker, keeps creating topics on live brokers; the node rejoins and catches up", async () => {
    const c = await startCluster();
    const { leader: old, term } = await c.waitForStable(30_000);
    const survivors = c.nodes.filter((n) => n.id !== old);
    const seedAdmin = pick(survivors).admin();
    await seedAdmin.createTopics([{ name: "before-kill", partitions: 3, replicationFactor: 3 }]);
    await c.waitForStable(30_000);
    const ledByOld = (await seedAdmin.describeTopics(["before-kill"]))[0]!.partitions.filter((p) => p.leader === old).length;

    const elapsed = timer();
    await c.node(old).kill();
    const next = await c.waitForStable(20_000, { ids: survivors.map((n) => n.id), brokers: false });
    const electedMs = elapsed();
    expect(next.leader).not.toBe(old);
    expect(next.term).toBeGreaterThan(term);

    // The dead broker is fenced once its session expires on the new controller.
    await until(
      async () => {
        const views = await Promise.all(survivors.map((n) => n.describe().then(viewOf)));
        return views.every((v) => v.fenced.get(old) === true);
      },
      20_000,
      `broker ${old} to be fenced on both survivors`,
    );
    const fencedMs = elapsed();
    console.log(
      `kill -9 of controller ${old} (term ${term}): node ${next.leader} elected at term ${next.term} after ${electedMs} ms; broker ${old} fenced after ${fencedMs} ms; it led ${ledByOld} of 3 partitions of before-kill`,
    );

    // Its leaderships moved to live ISR members, and it left every ISR.
    const via = pick(survivors.filter((n) => n.id !== next.leader)); // not the controller: the create is forwarded
    const admin = via.admin();
    const before = (await admin.describeTopics(["before-kill"]))[0]!;
    for (const p of before.partitions) {
      expect(p.leader, `before-kill-${p.partition} leader`).not.toBe(old);
      expect(p.leader, `before-kill-${p.partition} has a leader`).toBeGreaterThan(0);
      expect(p.isr, `before-kill-${p.partition} isr`).not.toContain(old);
    }

    // Topic creation keeps working through a surviving node, with replicas on live brokers only.
    await admin.createTopics([{ name: "while-down", partitions: 4, replicationFactor: 2, configs: { "retention.ms": "3600000" } }]);
    const whileDown = (await admin.describeTopics(["while-down"]))[0]!;
    expect(whileDown.partitions).toHaveLength(4);
    for (const p of whileDown.partitions) {
      expect([...p.replicas].sort(), `while-down-${p.partition} replicas`).toEqual(survivors.map((n) => n.id).sort());
      expect(p.leader).not.toBe(old);
    }
    expectSane([before, whileDown]);
    // Three replicas cannot be placed on two live brokers.
    const rf3 = await admin.createTopics([{ name: "rf3-while-down", replicationFactor: 3 }]).then(
      () => null,
      (e: unknown) => e,
    );
    expect(errorNameOf(rf3)).toBe("INVALID_REPLICATION_FACTOR");

    // Restart: the node registers with the new controller, is unfenced and catches up.
    const back = timer();
    await c.node(old).start();
    const rejoined = await c.waitForStable(30_000);
    console.log(`node ${old} restarted: registered and caught up (metadata offset ${rejoined.offset}) in ${back()} ms`);
    expect(c.node(old).logs("registered with the controller", 2)).toHaveLength(1);
    const v = viewOf(await c.node(old).describe());
    expect(v.brokerState).toBe("running");
    expect(v.controllerId).toBe(rejoined.leader);
    const seen = await c.node(old).admin().listTopics();
    expect(seen.map((t) => t.name).sort()).toEqual(["before-kill", "while-down"]);
    expect(shape(await c.node(old).admin().describeTopics())).toEqual(shape(await admin.describeTopics()));
    expect(splitBrains(c.leaderClaimsFromLogs())).toEqual([]);
  }, 90_000);
});

describe("SIGSTOP of the active controller", () => {
  it("lets the others elect a controller; resumed, the old one steps down and catches up; never two leaders in one term", async () => {
    const c = await startCluster();
    const { leader: old, term } = await c.waitForStable(30_000);
    const paused = c.node(old);
    const others = c.nodes.filter((n) => n !== paused);
    const sampler = c.sampleLeaders(100);
    const elapsed = timer();
    const linesBefore = new Map(others.map((n) => [n.id, n.lines.length]));
    paused.pause();
    expect(paused.isPaused).toBe(true);
    const next = await c.waitForStable(20_000, { ids: others.map((n) => n.id), brokers: false });
    const electedMs = elapsed();
    expect(next.leader).not.toBe(old);
    expect(next.term).toBeGreaterThan(term);
    // Paused past its session, its broker is fenced; topics are placed without it.
    await until(
      async () => {
        const views = await Promise.all(others.map((n) => n.describe().then(viewOf)));
        return views.every((v) => v.fenced.get(old) === true && others.every((o) => v.fenced.get(o.id) === false));
      },
      20_000,
      `broker ${old} fenced and brokers ${others.map((n) => n.id).join(",")} unfenced`,
    );
    await pick(others)
      .admin()
      .createTopics([{ name: "while-paused", partitions: 2, replicationFactor: 2 }]);
    // Only the paused broker may have been fenced (the same check, and the same known failure,
    // as with dropped packets below: a heartbeat in flight to the paused controller stalls 5 s).
    const wronglyFenced = others
      .flatMap((n) => n.lines.slice(linesBefore.get(n.id)).filter((l) => l.msg === "broker session expired: fenced"))
      .map((l) => Number(l["broker"]))
      .filter((b) => b !== old);
    expect.soft(wronglyFenced, "live brokers fenced by the new controller while the old one was paused").toEqual([]);
    // Resumed, it still believes it leads term `term` until it hears of the newer one; its broker
    // heartbeats again and is unfenced (waitForStable checks every broker).
    paused.resume();
    const st = await c.waitForStable(30_000);
    console.log(
      `SIGSTOP of controller ${old} (term ${term}): node ${next.leader} elected at term ${next.term} after ${electedMs} ms; after SIGCONT all agree on ${st.leader} at term ${st.term} (${elapsed()} ms)`,
    );
    expect(st.term).toBeGreaterThanOrEqual(next.term);
    expect((await paused.admin().listTopics()).map((t) => t.name)).toEqual(["while-paused"]);
    const claims = [...(await sampler.stop()), ...c.leaderClaimsFromLogs()];
    expect(splitBrains(claims)).toEqual([]);
  }, 90_000);
});

describe("restart of all three nodes", () => {
  it("keeps every topic, partition assignment and config across SIGTERM of all and across kill -9 of all", async () => {
    const c = await startCluster();
    const admin = pick(c.nodes).admin();
    const topics = Array.from({ length: 4 }, (_, i) => ({
      name: `durable-${i}`,
      partitions: 1 + rnd.int(6),
      replicationFactor: 1 + rnd.int(3),
    }));
    await admin.createTopics([
      ...topics,
      { name: "compacted", partitions: 2, replicationFactor: 3, configs: { "cleanup.policy": "compact", "min.insync.replicas": "2" } },
      { name: "gone", partitions: 1 },
    ]);
    await admin.alterConfigs([
      {
        resource: { type: "topic", name: "durable-0" },
        set: { "retention.ms": String(60_000 + rnd.int(1_000_000)), "max.message.bytes": "65536" },
      },
    ]);
    await admin.deleteTopics(["gone"]);
    await c.waitForStable(30_000);
    const before = await admin.describeTopics();
    expect(before.map((t) => t.name).sort()).toEqual(["compacted", "durable-0", "durable-1", "durable-2", "durable-3"]);
    const internalBefore = (await admin.listTopics({ includeInternal: true })).find((t) => t.name === OFFSETS_TOPIC);
    console.log(`topics before: ${JSON.stringify(shape(before).map((t) => [t.name, t.partitions.map((p) => p.replicas.join(""))]))}`);

    const check = async (how: string): Promise<void> => {
      const elapsed = timer();
      await Promise.all(c.nodes.map((n) => n.start()));
      const st = await c.waitForStable(40_000);
      // Every partition gets a leader back once all brokers are unfenced.
      await until(
        async () => (await admin.describeTopics()).every((t) => t.partitions.every((p) => p.leader > 0)),
        30_000,
        "every partition to have a leader",
      );
      console.log(`after ${how}: controller ${st.leader} at term ${st.term}, metadata offset ${st.offset}, all led after ${elapsed()} ms`);
      for (const n of c.nodes) {
        const a = n.admin();
        const after = await a.describeTopics();
        expect(shape(after), `node ${n.id} after ${how}`).toEqual(shape(before));
        expectSane(after);
        expect(
          (await a.listTopics({ includeInternal: true })).find((t) => t.name === OFFSETS_TOPIC),
          `node ${n.id}: ${OFFSETS_TOPIC}`,
        ).toEqual(internalBefore);
      }
    };

    const codes = await Promise.all(c.nodes.map((n) => n.terminate()));
    expect(codes, "exit codes after SIGTERM").toEqual([0, 0, 0]);
    for (const n of c.nodes) expect(n.logs("broker stopped", 1), `node ${n.id} logged "broker stopped"`).toHaveLength(1);
    await check("SIGTERM of all three");

    await Promise.all(c.nodes.map((n) => n.kill()));
    await check("kill -9 of all three");
    expect(splitBrains(c.leaderClaimsFromLogs())).toEqual([]);
  }, 120_000);
});

describe.each(["drop", "reset"] as const)("a partition that isolates the active controller (links %s)", (mode) => {
  it("lets the majority elect a controller and keep working; the isolated node refuses changes, then catches up; never two leaders in one term", async () => {
    // Dropped packets: 2 s sessions, as elsewhere in this file. Reset links: 5 s, because then
    // nothing should stall a heartbeat and only a loaded machine could fence a live broker.
    const c = await startCluster({ linkProxies: true, set: { "broker.session.timeout.ms": mode === "drop" ? 2000 : 5000 } });
    const { leader: iso, term } = await c.waitForStable(30_000);
    const isolated = c.node(iso);
    const majority = c.nodes.filter((n) => n.id !== iso);
    const sampler = c.sampleLeaders(100);
    // The isolated node is asked for a topic at once (it may still believe it leads) and once it
    // stepped down; both calls are single attempts (raw gRPC, no retries) sent to it directly.
    type Outcome = { ok: true } | { ok: false; name: string; retriable: boolean; details: string };
    const createOn = (n: ClusterNode, name: string): Promise<Outcome> =>
      unaryCall<CreateTopicsResponse>(
        (o, cb) =>
          n
            .adminRaw()
            .createTopics(
              create(CreateTopicsRequestSchema, { topics: [{ name, partitions: 1, replicationFactor: 1 }] }),
              new Metadata(),
              o,
              cb,
            ),
        30_000,
      ).then(
        (res): Outcome => {
          const e = res.topics[0]?.error;
          return e ? { ok: false, name: e.name, retriable: e.retriable, details: e.message } : { ok: true };
        },
        (e: grpc.ServiceError): Outcome => ({
          ok: false,
          name: String(e.metadata?.get("rill-error-name")[0] ?? `status ${e.code}`),
          retriable: e.metadata?.get("rill-error-retriable")[0] === "true",
          details: e.details,
        }),
      );

    const elapsed = timer();
    const linesBefore = new Map(majority.map((n) => [n.id, n.lines.length]));
    c.isolate(iso, mode);
    const early = createOn(isolated, "asked-of-isolated-early");

    const next = await c.waitForStable(20_000, { ids: majority.map((n) => n.id), brokers: false });
    const electedMs = elapsed();
    expect(next.leader).not.toBe(iso);
    expect(next.term).toBeGreaterThan(term);

    // The isolated node stops acting as controller (check-quorum) within a few election timeouts.
    await until(async () => viewOf(await isolated.describe()).raftRole !== "leader", 20_000, `node ${iso} to step down`);
    const steppedDownMs = elapsed();
    const late = createOn(isolated, "asked-of-isolated-late");

    // The majority keeps working: a topic through each majority node at once; it fences the
    // isolated broker, whose heartbeats cannot reach it, and then places replicas without it.
    const madm = majority.map((n) => n.admin());
    // Retried while it fails (the failover may briefly leave no live broker to place it on: see
    // the fencing check below); a retry after a timed-out attempt may find it created.
    await until(
      () =>
        madm[0]!.createTopics([{ name: "majority-1", partitions: 2, replicationFactor: 1 }]).then(
          () => true,
          (e: unknown) => (errorNameOf(e) === "TOPIC_ALREADY_EXISTS" ? true : Promise.reject(e)),
        ),
      20_000,
      "majority-1 to be created through the majority",
      250,
    );
    await until(
      async () => {
        const views = await Promise.all(majority.map((n) => n.describe().then(viewOf)));
        return views.every((v) => v.fenced.get(iso) === true && majority.every((m) => v.fenced.get(m.id) === false));
      },
      20_000,
      `broker ${iso} fenced and brokers ${majority.map((n) => n.id).join(",")} unfenced on the majority`,
    );
    await madm[1]!.createTopics([{ name: "majority-2", partitions: 2, replicationFactor: 2 }]);
    for (const p of (await madm[1]!.describeTopics(["majority-2"]))[0]!.partitions) {
      expect([...p.replicas].sort(), `majority-2-${p.partition} replicas`).toEqual(majority.map((n) => n.id).sort());
    }
    // The failover must not fence the brokers that kept heartbeating (only the isolated one).
    const wronglyFenced = majority
      .flatMap((n) => n.lines.slice(linesBefore.get(n.id)).filter((l) => l.msg === "broker session expired: fenced"))
      .map((l) => Number(l["broker"]))
      .filter((b) => b !== iso);
    expect.soft(wronglyFenced, `live brokers fenced by the new controller (links ${mode}); see the report in the file comment`).toEqual([]);

    const [e1, e2] = await Promise.all([early, late]);
    console.log(
      `isolated controller ${iso} (term ${term}): majority elected ${next.leader} at term ${next.term} after ${electedMs} ms; ${iso} stepped down after ${steppedDownMs} ms; topic asked of it early: ${JSON.stringify(e1)}, late: ${JSON.stringify(e2)}`,
    );
    for (const r of [e1, e2]) {
      expect(r.ok, "a topic create on the isolated node must fail").toBe(false);
      if (!r.ok) {
        expect(r.retriable, `${r.name} is retriable`).toBe(true);
        expect(["NOT_CONTROLLER", "REQUEST_TIMED_OUT"]).toContain(r.name);
      }
    }
    const isoView = viewOf(await isolated.describe());
    expect(isoView.raftRole).not.toBe("leader");

    // Heal: the isolated node follows the new controller and catches up.
    c.heal();
    const healed = timer();
    const st = await c.waitForStable(30_000);
    console.log(
      `healed: node ${iso} caught up to metadata offset ${st.offset} in ${healed()} ms (controller ${st.leader}, term ${st.term})`,
    );
    expect(st.leader).not.toBe(iso);
    const claims = await sampler.stop();
    for (const n of c.nodes) {
      const names = (await n.admin().listTopics()).map((t) => t.name).sort();
      // The change asked of the isolated node was never committed, even if it was appended there.
      expect(names, `node ${n.id} topics`).toEqual(["majority-1", "majority-2"]);
    }
    const all = [...claims, ...c.leaderClaimsFromLogs()];
    console.log(
      `leader claims: ${claims.length} samples of ${sampler.samples()} answers, ${all.length - claims.length} log lines; terms led: ${JSON.stringify([...new Set(all.map((x) => `${x.term}:${x.node}`))].sort())}`,
    );
    expect(splitBrains(all)).toEqual([]);
  }, 120_000);
});

describe("snapshot install", () => {
  it("brings a node back whose missing log entries every live voter has truncated away", async () => {
    const c = await startCluster({ set: { "metadata.snapshot.interval.records": 20 } });
    const st = await c.waitForStable(30_000);
    const down = pick(c.nodes.filter((n) => n.id !== st.leader));
    const live = c.nodes.filter((n) => n !== down);
    expect(await down.terminate()).toBe(0);
    const left = raftDiskState(down.dataDir);

    // Enough single-entry changes for two or more snapshots: topics, then config changes.
    const admin = pick(live).admin();
    const names = Array.from({ length: 30 }, (_, i) => `snap-${String(i).padStart(2, "0")}`);
    await admin.createTopics(names.map((name) => ({ name, partitions: 1 + rnd.int(3), replicationFactor: 1 + rnd.int(2) })));
    for (const name of names.slice(0, 15))
      await admin.alterConfigs([{ resource: { type: "topic", name }, set: { "retention.ms": String(1000 + rnd.int(10_000_000)) } }]);
    await admin.deleteTopics(names.slice(25));
    const disks = await until(
      () => {
        const d = live.map((n) => raftDiskState(n.dataDir));
        return d.every((x) => x.baseIndex > left.lastIndex + 1) ? d : false;
      },
      20_000,
      `both live voters to truncate their logs past index ${left.lastIndex}`,
    );
    console.log(
      `node ${down.id} stopped at log ${JSON.stringify(left)}; live voters now ${JSON.stringify(disks)}; ${live.map((n) => `node ${n.id}: ${n.logs("metadata quorum: wrote a snapshot").length} snapshots`).join(", ")}`,
    );

    const expected = shape(await admin.describeTopics());
    const elapsed = timer();
    await down.start();
    const after = await c.waitForStable(30_000);
    console.log(`node ${down.id} caught up (metadata offset ${after.offset}) in ${elapsed()} ms`);
    const got = raftDiskState(down.dataDir);
    expect(got.snapshotIndex, "the restarted node holds a snapshot past its old log").toBeGreaterThan(left.lastIndex);
    const dadm = down.admin();
    expect((await dadm.listTopics()).map((t) => t.name)).toEqual(names.slice(0, 25));
    expect(shape(await dadm.describeTopics())).toEqual(expected);
    expect(splitBrains(c.leaderClaimsFromLogs())).toEqual([]);
  }, 90_000);
});
