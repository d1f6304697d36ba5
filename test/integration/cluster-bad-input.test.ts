/**
 * Bad input to ControllerService on a live 3-node cluster (issue 5, "What it must show": "Bad
 * input: malformed or stale-term Raft messages, a broker registering with a duplicate node id,
 * an AlterPartition with a stale epoch — rejected, state unchanged").
 *
 * One cluster for the file (cluster-harness.ts), moved past Raft term 1 by a controlled restart
 * of its first controller, with a replicated topic whose partition epochs have moved past 0.
 * Every case sends raw gRPC calls (a client from `clientConstructor(ControllerService)`) and
 * checks:
 * - the answer: the gRPC status and the catalog name in the `rill-error-name` trailer (or, for
 *   AlterPartition, the per-partition error), with a message naming the field at fault; or OK
 *   for a well-formed message from a stale term, which Raft ignores;
 * - that nothing changed: on every node the same controller, raft role, raft term, metadata
 *   offset and commit offset, the same fenced flags, the same topics, and the same leader, leader
 *   epoch and ISR of every partition of the test topic (DescribeCluster, DescribeTopics).
 *
 * The last cases send input that, accepted, would break the target for good — a batch whose
 * last message fails Raft's checks after a timeout-now (would start an election), an append
 * entry or a snapshot whose data is not metadata at the current term from the controller's id
 * (would be committed, then fail every replay: the node could not start again) — and check that
 * the node still runs and restarts. The last two run on clusters of their own.
 *
 * SEED=n replays the seeded choices (which follower is the target, which partition, the
 * garbage bytes); the seed is printed.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { SeededRandom, seedFromEnv } from "../../src/base/random.ts";
import { NodeRole } from "../../src/gen/rill/v1/common_pb.ts";
import {
  AlterPartitionRequestSchema,
  AppendEntriesRequestSchema,
  BrokerHeartbeatRequestSchema,
  InstallSnapshotRequestSchema,
  RegisterBrokerRequestSchema,
  VoteRequestSchema,
  type AlterPartitionResponse,
  type InstallSnapshotRequest,
  type InstallSnapshotResponse,
} from "../../src/gen/rill/v1/controller_service_pb.ts";
import { encodeEntry } from "../../src/metadata/quorum-store.ts";
import { encodeMessage } from "../../src/raft/codec.ts";
import { Cluster, raftDiskState, unaryCall, until, viewOf, type ClusterNode } from "./cluster-harness.ts";

const SEED = seedFromEnv();
const rnd = new SeededRandom(SEED);
console.log(`cluster-bad-input SEED=${SEED}`);

const TOPIC = "bad-input-t";
const OFFSETS_TOPIC = "__consumer_offsets";
/** Calm timings: nothing in this file should move the cluster but the input under test. */
const SETTINGS = {
  "controller.quorum.election.timeout.ms": 1500,
  "controller.quorum.heartbeat.interval.ms": 100,
  "broker.session.timeout.ms": 6000,
  "broker.heartbeat.interval.ms": 500,
};

let c: Cluster;
/** Clusters of the cases that may break a node for good (one each), closed after their case. */
const spare: Cluster[] = [];
/** The active controller, a follower that is the usual target, and the third node. */
let L: ClusterNode;
let F: ClusterNode;
let G: ClusterNode;
/** The current Raft term (> 1). */
let T: number;

beforeAll(async () => {
  c = await startCluster();
  const first = await c.waitForStable(30_000);
  // A controlled restart of the controller: leadership moves (term 2 or more), and the
  // partitions it led change leader and ISR (partition epochs > 0), then regain it.
  await c.node(first.leader).restart();
  await waitQuiet();
  const st = await c.waitForStable(30_000);
  T = st.term;
  expect(T).toBeGreaterThan(1);
  L = c.node(st.leader);
  const followers = c.nodes.filter((n) => n !== L);
  F = followers[rnd.int(2)]!;
  G = followers.find((n) => n !== F)!;
  console.log(
    `cluster ${c.clusterId}: controller ${L.id} at term ${T}, target follower ${F.id}, third node ${G.id}, metadata offset ${st.offset}`,
  );
}, 120_000);

afterEach((ctx) => {
  if (ctx.task.result?.state === "fail") for (const x of [c, ...spare]) console.log(x?.tails(25));
});

afterAll(async () => {
  await Promise.all([c, ...spare].map((x) => x?.close()));
});

/** A 3-node cluster like the file's (stable, with its internal topic and TOPIC). */
async function startCluster(): Promise<Cluster> {
  const cl = await Cluster.start({ name: "rill-bad-input-", set: SETTINGS });
  const st = await cl.waitForStable(30_000);
  const admin = cl.node(st.leader).admin();
  await until(
    async () => (await admin.listTopics({ includeInternal: true })).some((t) => t.name === OFFSETS_TOPIC),
    30_000,
    `${OFFSETS_TOPIC} to exist`,
  );
  await admin.createTopics([{ name: TOPIC, partitions: 3, replicationFactor: 3 }]);
  await cl.waitForStable(30_000);
  return cl;
}

/** Waits until every partition (the internal topic's too) has its full ISR and a leader, and the nodes agree. */
async function waitQuiet(): Promise<void> {
  const admin = c.nodes[0]!.admin();
  await until(
    async () => {
      const ts = await admin.describeTopics([TOPIC, OFFSETS_TOPIC], { includeConfigs: false });
      return ts.every((t) => t.partitions.every((p) => p.leader > 0 && p.isr.length === p.replicas.length));
    },
    40_000,
    "every partition to have a leader and a full ISR",
  );
  await c.waitForStable(30_000);
}

/** Everything a rejected call must leave as it was. */
async function state(cl: Cluster) {
  const nodes = await Promise.all(
    cl.nodes.map(async (n) => {
      const v = viewOf(await n.describe());
      return {
        id: v.id,
        controller: v.controllerId,
        role: v.raftRole,
        term: v.raftTerm,
        offset: v.metadataOffset,
        commit: v.commitOffset,
        broker: v.brokerState,
        fenced: [...v.fenced],
      };
    }),
  );
  const admin = cl.nodes[0]!.admin();
  const topics = (await admin.listTopics({ includeInternal: true })).map((t) => t.name).sort();
  const partitions = (await admin.describeTopics([TOPIC], { includeConfigs: false }))[0]!.partitions.map((p) => ({
    p: p.partition,
    leader: p.leader,
    epoch: p.leaderEpoch,
    isr: [...p.isr],
  }));
  return { nodes, topics, partitions };
}

/** Runs `fn`, then checks that `state()` is what it was before (`soft`: and goes on if not). */
async function unchanged(fn: () => Promise<void>, o: { soft?: boolean; cluster?: Cluster } = {}): Promise<void> {
  const cl = o.cluster ?? c;
  const before = await state(cl);
  await fn();
  // Give anything a bad call may have set off (an election, a commit) time to show.
  await new Promise((r) => setTimeout(r, 300));
  (o.soft ? expect.soft : expect)(await state(cl), "cluster state after the call").toEqual(before);
}

/** A failed call's status code, catalog name, retriable flag and details. */
interface Failure {
  readonly code: number;
  readonly name: string;
  readonly retriable: string;
  readonly details: string;
}

async function failure(p: Promise<unknown>): Promise<Failure> {
  try {
    await p;
  } catch (e) {
    const se = e as grpc.ServiceError;
    return {
      code: se.code,
      name: String(se.metadata?.get("rill-error-name")[0] ?? ""),
      retriable: String(se.metadata?.get("rill-error-retriable")[0] ?? ""),
      details: se.details,
    };
  }
  throw new Error("the call succeeded; it should have been rejected");
}

async function expectRejected(p: Promise<unknown>, code: grpc.status, name: string, details: RegExp): Promise<void> {
  const f = await failure(p);
  expect({ code: grpc.status[f.code], name: f.name }, f.details).toEqual({ code: grpc.status[code], name });
  expect(f.details).toMatch(details);
}

// --- raw calls -----------------------------------------------------------------------------------

interface Envelope {
  clusterId?: string;
  from: number;
  to: number;
}

function vote(target: ClusterNode, env: Envelope, messages: Uint8Array[]): Promise<unknown> {
  const req = create(VoteRequestSchema, { clusterId: env.clusterId ?? c.clusterId, fromNodeId: env.from, toNodeId: env.to, messages });
  return unaryCall((o, cb) => target.controller().vote(req, new grpc.Metadata(), o, cb), 5000);
}

function append(target: ClusterNode, env: Envelope, messages: Uint8Array[]): Promise<unknown> {
  const req = create(AppendEntriesRequestSchema, {
    clusterId: env.clusterId ?? c.clusterId,
    fromNodeId: env.from,
    toNodeId: env.to,
    messages,
  });
  return unaryCall((o, cb) => target.controller().appendEntries(req, new grpc.Metadata(), o, cb), 5000);
}

/** Streams InstallSnapshot chunks (as given) and resolves with the answer. */
function installSnapshot(
  target: ClusterNode,
  chunks: Array<Partial<Omit<InstallSnapshotRequest, "$typeName">>>,
): Promise<InstallSnapshotResponse> {
  return new Promise((resolve, reject) => {
    const call = target
      .controller()
      .installSnapshot(new grpc.Metadata(), { deadline: Date.now() + 5000 }, (e, r) => (e ? reject(e) : resolve(r!)));
    for (const ch of chunks) call.write(create(InstallSnapshotRequestSchema, ch));
    call.end();
  });
}

function heartbeatMsg(from: number, to: number, term: number, commit = 0): Uint8Array {
  return encodeMessage({ type: "heartbeat", from, to, term, commit });
}

function snapshotHead(from: number, to: number, term: number, index: number, snapTerm: number): Uint8Array {
  return encodeMessage({
    type: "snapshot",
    from,
    to,
    term,
    snapshot: { meta: { index, term: snapTerm, voters: [1, 2, 3] }, data: new Uint8Array(0) },
  });
}

function garbage(n: number): Uint8Array {
  return Uint8Array.from({ length: n }, () => rnd.int(256));
}

/** The broker epoch node `n` registered with last (from its "registered with the controller" log line). */
function brokerEpochOf(n: ClusterNode): number {
  const lines = n.logs("registered with the controller", n.runCount);
  expect(lines.length, `node ${n.id} registered in its current run`).toBeGreaterThan(0);
  return Number(lines[lines.length - 1]!["brokerEpoch"]);
}

// --- malformed Raft messages ---------------------------------------------------------------------

describe("malformed Raft messages", () => {
  it("are answered INVALID_ARGUMENT / INVALID_REQUEST naming what is wrong, and change nothing", async () => {
    await unchanged(async () => {
      const good = heartbeatMsg(L.id, F.id, T);
      const env = { from: L.id, to: F.id };
      await expectRejected(
        append(F, env, [good.subarray(0, good.length - 1)]),
        grpc.status.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        /messages\[0\].*commit: truncated/,
      );
      await expectRejected(
        append(F, env, [new Uint8Array(0)]),
        grpc.status.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        /messages\[0\].*version: truncated/,
      );
      const v2 = Uint8Array.from(good);
      v2[0] = 2;
      await expectRejected(append(F, env, [v2]), grpc.status.INVALID_ARGUMENT, "INVALID_REQUEST", /version 2 is not supported/);
      await expectRejected(
        append(F, env, [Uint8Array.from([...good, 0, 7])]),
        grpc.status.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        /2 trailing bytes/,
      );
      const unknownType = Uint8Array.from(good);
      unknownType[1] = 42;
      await expectRejected(append(F, env, [unknownType]), grpc.status.INVALID_ARGUMENT, "INVALID_REQUEST", /type code 42 is unknown/);
      // An append whose one entry claims more bytes than the message has.
      const app = encodeMessage({
        type: "append",
        from: L.id,
        to: F.id,
        term: T,
        prevIndex: 1,
        prevTerm: 1,
        commit: 1,
        entries: [{ index: 2, term: T, kind: "data", data: garbage(8) }],
      });
      await expectRejected(
        append(F, env, [app.subarray(0, app.length - 4)]),
        grpc.status.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        /entries\[0\]\.data: length 8 runs past the end/,
      );
      // Random bytes after a valid version byte.
      await expectRejected(
        append(F, env, [Uint8Array.from([1, ...garbage(12)])]),
        grpc.status.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        /messages\[0\]/,
      );
      // A well-formed message on the wrong RPC, and a batch with one bad message: all refused.
      const voteMsg = encodeMessage({
        type: "vote",
        from: L.id,
        to: F.id,
        term: T + 5,
        lastIndex: 1_000_000,
        lastTerm: T + 5,
        transfer: true,
      });
      await expectRejected(
        append(F, env, [voteMsg]),
        grpc.status.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        /a vote message does not travel by AppendEntries/,
      );
      await expectRejected(
        vote(F, env, [good]),
        grpc.status.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        /a heartbeat message does not travel by Vote/,
      );
      await expectRejected(vote(F, env, [voteMsg, v2]), grpc.status.INVALID_ARGUMENT, "INVALID_REQUEST", /messages\[1\]: .*version 2/);
    });
  });

  it("whose envelope disagrees with the call, or comes from another cluster, are refused and change nothing", async () => {
    await unchanged(async () => {
      const hb = heartbeatMsg(L.id, F.id, T);
      // The message says it is from G; the call says L.
      await expectRejected(
        append(F, { from: L.id, to: F.id }, [heartbeatMsg(G.id, F.id, T)]),
        grpc.status.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        /from \d+ to \d+ disagrees with the call's from_node_id/,
      );
      // The message is for G; the call (and the node) is F.
      await expectRejected(
        append(F, { from: L.id, to: F.id }, [heartbeatMsg(L.id, G.id, T)]),
        grpc.status.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        /disagrees with the call/,
      );
      // The call is addressed to G but reached F.
      await expectRejected(
        append(F, { from: L.id, to: G.id }, [heartbeatMsg(L.id, G.id, T)]),
        grpc.status.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        new RegExp(`to_node_id: ${G.id} is not this node`),
      );
      // From itself, and from a node that is no voter.
      await expectRejected(
        append(F, { from: F.id, to: F.id }, [heartbeatMsg(F.id, F.id, T)]),
        grpc.status.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        /from_node_id: \d+ is not another voter/,
      );
      await expectRejected(
        append(F, { from: 9, to: F.id }, [heartbeatMsg(9, F.id, T)]),
        grpc.status.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        /from_node_id: 9 is not another voter/,
      );
      // Another cluster's id (and none).
      await expectRejected(
        append(F, { clusterId: "another-cluster", from: L.id, to: F.id }, [hb]),
        grpc.status.FAILED_PRECONDITION,
        "INCONSISTENT_CLUSTER_ID",
        /cluster_id: "another-cluster"/,
      );
      await expectRejected(
        vote(L, { clusterId: "", from: F.id, to: L.id }, [
          encodeMessage({ type: "prevote", from: F.id, to: L.id, term: T + 1, lastIndex: 1_000_000, lastTerm: T }),
        ]),
        grpc.status.FAILED_PRECONDITION,
        "INCONSISTENT_CLUSTER_ID",
        /cluster_id: ""/,
      );
    });
  });

  it("that decode but break Raft's own rules (term 0, a last term above the term) are refused and change nothing", async () => {
    await unchanged(async () => {
      await expectRejected(
        append(F, { from: L.id, to: F.id }, [heartbeatMsg(L.id, F.id, 0)]),
        grpc.status.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        /term must be at least 1/,
      );
      await expectRejected(
        vote(L, { from: F.id, to: L.id }, [
          encodeMessage({ type: "vote", from: F.id, to: L.id, term: T + 1, lastIndex: 5, lastTerm: T + 2, transfer: false }),
        ]),
        grpc.status.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        /lastTerm is above term/,
      );
    });
  });
});

// --- stale-term Raft messages --------------------------------------------------------------------

describe("stale-term Raft messages", () => {
  it("are taken in (OK) and ignored: no term, leader or metadata change, and what they carry is not applied", async () => {
    await unchanged(async () => {
      const env = { from: L.id, to: F.id };
      // What a stale leader would replicate: a real topic, valid metadata records.
      const staleTopic = (name: string) =>
        encodeEntry([
          { type: "topic", v: 1, name, topicId: "0".repeat(32), configs: {} },
          {
            type: "partition",
            v: 1,
            topic: name,
            partition: 0,
            replicas: [F.id],
            isr: [F.id],
            leader: F.id,
            leaderEpoch: 0,
            partitionEpoch: 0,
          },
        ]);
      // From "the leader of term 1": a heartbeat claiming a high commit, an append of such entries
      // past the follower's log committing them, a timeout-now; a vote and a pre-vote of term 1 to
      // the controller.
      await append(F, env, [heartbeatMsg(L.id, F.id, 1, 1_000_000)]);
      const d = raftDiskState(F.dataDir);
      await append(F, env, [
        encodeMessage({
          type: "append",
          from: L.id,
          to: F.id,
          term: 1,
          prevIndex: d.lastIndex,
          prevTerm: 1,
          commit: d.lastIndex + 2,
          entries: [1, 2].map((k) => ({ index: d.lastIndex + k, term: 1, kind: "data" as const, data: staleTopic(`stale-append-${k}`) })),
        }),
      ]);
      await append(F, env, [encodeMessage({ type: "timeout-now", from: L.id, to: F.id, term: 1 })]);
      await vote(L, { from: F.id, to: L.id }, [
        encodeMessage({ type: "vote", from: F.id, to: L.id, term: 1, lastIndex: 1_000_000, lastTerm: 1, transfer: false }),
      ]);
      await vote(L, { from: F.id, to: L.id }, [
        encodeMessage({ type: "prevote", from: F.id, to: L.id, term: 1, lastIndex: 1_000_000, lastTerm: 1 }),
      ]);
      // A snapshot of term 1 far ahead of the log, a valid image holding one topic and no
      // brokers: received in full, then ignored (installed, it would replace everything).
      const data = staleTopic("stale-snapshot");
      const res = await installSnapshot(F, [
        { clusterId: c.clusterId, fromNodeId: L.id, toNodeId: F.id, message: snapshotHead(L.id, F.id, 1, 1_000_000, 1), data, offset: 0n },
      ]);
      expect(res.bytesReceived).toBe(BigInt(data.length));
    });
  });
});

// --- InstallSnapshot streams -----------------------------------------------------------------------

describe("bad InstallSnapshot streams", () => {
  it("are rejected (a gap or overlap in chunk offsets, no chunk, a bad head) and change nothing", async () => {
    await unchanged(async () => {
      const head = { clusterId: c.clusterId, fromNodeId: L.id, toNodeId: F.id, message: snapshotHead(L.id, F.id, T, 1_000_000, T) };
      await expectRejected(
        installSnapshot(F, [
          { ...head, data: garbage(10), offset: 0n },
          { data: garbage(10), offset: 20n },
        ]),
        grpc.status.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        /offset: chunk at 20, expected 10/,
      );
      await expectRejected(
        installSnapshot(F, [
          { ...head, data: garbage(10), offset: 0n },
          { data: garbage(10), offset: 5n },
        ]),
        grpc.status.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        /offset: chunk at 5, expected 10/,
      );
      await expectRejected(
        installSnapshot(F, [{ ...head, data: garbage(10), offset: 3n }]),
        grpc.status.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        /offset: chunk at 3, expected 0/,
      );
      await expectRejected(installSnapshot(F, []), grpc.status.INVALID_ARGUMENT, "INVALID_REQUEST", /carried no chunk/);
      await expectRejected(
        installSnapshot(F, [{ ...head, clusterId: "another-cluster", data: garbage(10), offset: 0n }]),
        grpc.status.FAILED_PRECONDITION,
        "INCONSISTENT_CLUSTER_ID",
        /cluster_id/,
      );
      await expectRejected(
        installSnapshot(F, [{ ...head, toNodeId: G.id, data: garbage(10), offset: 0n }]),
        grpc.status.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        /to_node_id/,
      );
      await expectRejected(
        installSnapshot(F, [{ ...head, message: head.message.subarray(0, 6), data: garbage(10), offset: 0n }]),
        grpc.status.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        /messages\[0\]: raft message/,
      );
      await expectRejected(
        installSnapshot(F, [{ ...head, message: heartbeatMsg(L.id, F.id, T), data: garbage(10), offset: 0n }]),
        grpc.status.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        /a heartbeat message does not travel by InstallSnapshot/,
      );
    });
  });
});

// --- broker lifecycle ------------------------------------------------------------------------------

describe("RegisterBroker and BrokerHeartbeat", () => {
  const register = (target: ClusterNode, o: { nodeId: number; clusterId?: string; incarnationId?: string; address?: string }) =>
    unaryCall(
      (opts, cb) =>
        target.controller().registerBroker(
          create(RegisterBrokerRequestSchema, {
            nodeId: o.nodeId,
            clusterId: o.clusterId ?? c.clusterId,
            incarnationId: o.incarnationId ?? `intruder-${SEED}-${rnd.int(1e9)}`,
            address: o.address ?? "127.0.0.1:1",
            roles: [NodeRole.BROKER, NodeRole.CONTROLLER],
          }),
          new grpc.Metadata(),
          opts,
          cb,
        ),
      5000,
    );

  it("a second incarnation of a live broker's node id gets DUPLICATE_BROKER_REGISTRATION; the live broker stays registered and unfenced", async () => {
    const victim = G;
    const addressBefore = (await L.describe()).brokers.find((b) => b.nodeId === victim.id)!.address;
    const registrations = victim.logs("registered with the controller").length;
    await unchanged(async () => {
      await expectRejected(
        register(L, { nodeId: victim.id }),
        grpc.status.ALREADY_EXISTS,
        "DUPLICATE_BROKER_REGISTRATION",
        new RegExp(`broker ${victim.id} is registered by another live process`),
      );
      // The controller's own broker too.
      await expectRejected(
        register(L, { nodeId: L.id }),
        grpc.status.ALREADY_EXISTS,
        "DUPLICATE_BROKER_REGISTRATION",
        /another live process/,
      );
    });
    for (const n of c.nodes) {
      const b = (await n.describe()).brokers.find((x) => x.nodeId === victim.id)!;
      expect({ address: b.address, fenced: b.fenced }, `broker ${victim.id} as node ${n.id} sees it`).toEqual({
        address: addressBefore,
        fenced: false,
      });
    }
    // The live broker's epoch still holds: it heartbeats on without registering again.
    await new Promise((r) => setTimeout(r, 1500));
    expect(victim.logs("registered with the controller")).toHaveLength(registrations);
    expect(victim.logs("fenced by the controller", victim.runCount)).toHaveLength(0);
    expect(viewOf(await victim.describe()).brokerState).toBe("running");
  });

  it("bad registrations and heartbeats are refused by field and change nothing", async () => {
    await unchanged(async () => {
      await expectRejected(
        register(L, { nodeId: 7, clusterId: "another-cluster" }),
        grpc.status.FAILED_PRECONDITION,
        "INCONSISTENT_CLUSTER_ID",
        /cluster_id/,
      );
      await expectRejected(
        register(L, { nodeId: 7, address: "nowhere" }),
        grpc.status.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        /address: "nowhere" is not HOST:PORT/,
      );
      await expectRejected(
        register(L, { nodeId: 7, incarnationId: "" }),
        grpc.status.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        /incarnation_id: empty/,
      );
      await expectRejected(register(L, { nodeId: -1 }), grpc.status.INVALID_ARGUMENT, "INVALID_REQUEST", /node_id: -1 is negative/);
      // A follower is not the controller: a retriable refusal that names the controller.
      const nc = await failure(register(F, { nodeId: 7 }));
      expect({ name: nc.name, retriable: nc.retriable, code: grpc.status[nc.code] }).toEqual({
        name: "NOT_CONTROLLER",
        retriable: "true",
        code: "UNAVAILABLE",
      });
      expect(nc.details).toContain(`node ${L.id} is`);
      const hb = (nodeId: number, brokerEpoch: number) =>
        unaryCall(
          (o, cb) =>
            L.controller().brokerHeartbeat(
              create(BrokerHeartbeatRequestSchema, {
                nodeId,
                brokerEpoch: BigInt(brokerEpoch),
                currentMetadataOffset: 0n,
                wantFence: true,
                wantShutDown: true,
              }),
              new grpc.Metadata(),
              o,
              cb,
            ),
          5000,
        );
      // wantFence / wantShutDown with a stale epoch must not fence or shut anything down.
      await expectRejected(hb(G.id, brokerEpochOf(G) - 1), grpc.status.FAILED_PRECONDITION, "STALE_BROKER_EPOCH", /broker_epoch/);
      await expectRejected(hb(99, 1), grpc.status.NOT_FOUND, "BROKER_ID_NOT_REGISTERED", /broker 99 is not registered/);
    });
  });
});

// --- AlterPartition --------------------------------------------------------------------------------

describe("AlterPartition", () => {
  const alter = (
    target: ClusterNode,
    nodeId: number,
    brokerEpoch: number,
    p: { partition: number; leaderEpoch: number; partitionEpoch: number; newIsr: number[] },
  ) =>
    unaryCall<AlterPartitionResponse>(
      (o, cb) =>
        target
          .controller()
          .alterPartition(
            create(AlterPartitionRequestSchema, { nodeId, brokerEpoch: BigInt(brokerEpoch), partitions: [{ topic: TOPIC, ...p }] }),
            new grpc.Metadata(),
            o,
            cb,
          ),
      5000,
    );

  it("with a stale partition epoch (or leader epoch, or broker epoch) is refused per partition; the ISR stays", async () => {
    const parts = (await L.admin().describeTopics([TOPIC], { includeConfigs: false }))[0]!.partitions;
    const part = parts[rnd.int(parts.length)]!;
    const leader = c.node(part.leader);
    const epoch = brokerEpochOf(leader);
    const shrink = [part.leader]; // what the request asks for: the ISR down to the leader alone
    await unchanged(async () => {
      // Learn the current partition epoch from a refusal (a partition epoch from the future).
      const probe = (
        await alter(L, leader.id, epoch, {
          partition: part.partition,
          leaderEpoch: part.leaderEpoch,
          partitionEpoch: 1_000_000,
          newIsr: shrink,
        })
      ).partitions[0]!;
      expect(probe.error?.name).toBe("INVALID_UPDATE_VERSION");
      const current = probe.partitionEpoch;
      expect(current, "the partition epoch moved past 0 (controlled restart in beforeAll)").toBeGreaterThan(0);
      expect([...probe.isr].sort()).toEqual([...part.isr].sort());

      const stale = (
        await alter(L, leader.id, epoch, {
          partition: part.partition,
          leaderEpoch: part.leaderEpoch,
          partitionEpoch: current - 1,
          newIsr: shrink,
        })
      ).partitions[0]!;
      expect(
        { error: stale.error?.name, partitionEpoch: stale.partitionEpoch, leader: stale.leader, isr: [...stale.isr].sort() },
        stale.error?.message,
      ).toEqual({
        error: "INVALID_UPDATE_VERSION",
        partitionEpoch: current,
        leader: part.leader,
        isr: [...part.isr].sort(),
      });
      expect(stale.error?.message).toMatch(
        new RegExp(`partition_epoch: ${current - 1} is not ${TOPIC}-${part.partition}'s current partition epoch ${current}`),
      );
      expect(stale.error?.retriable).toBe(false);

      const staleLeader = (
        await alter(L, leader.id, epoch, {
          partition: part.partition,
          leaderEpoch: part.leaderEpoch - 1,
          partitionEpoch: current,
          newIsr: shrink,
        })
      ).partitions[0]!;
      expect(staleLeader.error?.name).toBe("FENCED_LEADER_EPOCH");
      const staleBroker = (
        await alter(L, leader.id, epoch - 1, {
          partition: part.partition,
          leaderEpoch: part.leaderEpoch,
          partitionEpoch: current,
          newIsr: shrink,
        })
      ).partitions[0]!;
      expect(staleBroker.error?.name, staleBroker.error?.message).toBe("STALE_BROKER_EPOCH");
      expect(staleBroker.error?.message).toMatch(/broker_epoch/);
      // From a broker that does not lead the partition, with its own current epoch.
      const other = c.nodes.find((n) => n.id !== part.leader)!;
      const notLeader = (
        await alter(L, other.id, brokerEpochOf(other), {
          partition: part.partition,
          leaderEpoch: part.leaderEpoch,
          partitionEpoch: current,
          newIsr: [other.id],
        })
      ).partitions[0]!;
      expect(notLeader.error?.name).toBe("NOT_LEADER_OR_FOLLOWER");
      // To a follower: not the controller.
      const nc = await failure(
        alter(F, leader.id, epoch, { partition: part.partition, leaderEpoch: part.leaderEpoch, partitionEpoch: current, newIsr: shrink }),
      );
      expect(nc.name).toBe("NOT_CONTROLLER");
    });
    const after = (await L.admin().describeTopics([TOPIC], { includeConfigs: false }))[0]!.partitions[part.partition]!;
    expect({ leader: after.leader, isr: after.isr, leaderEpoch: after.leaderEpoch }).toEqual({
      leader: part.leader,
      isr: part.isr,
      leaderEpoch: part.leaderEpoch,
    });
  });
});

// --- batches and payloads (last: a failure here may disturb the cluster) ---------------------------

describe("Raft input that must be refused whole", () => {
  it("a batch whose last message breaks Raft's rules is refused without stepping the messages before it", async () => {
    // timeout-now from the controller would make F campaign at once (a new term); the batch is
    // refused for its second message, so the first must not have been stepped either.
    await unchanged(async () => {
      const batch = [encodeMessage({ type: "timeout-now", from: L.id, to: F.id, term: T }), heartbeatMsg(L.id, F.id, 0)];
      await expectRejected(
        append(F, { from: L.id, to: F.id }, batch),
        grpc.status.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        /term must be at least 1/,
      );
    });
  });

  /** A fresh cluster of its own: its controller, a follower and the follower's log end on disk. */
  async function ownCluster() {
    const cl = await startCluster();
    spare.push(cl);
    onTestFinished(() => cl.close());
    const st = await cl.waitForStable(30_000);
    const lead = cl.node(st.leader);
    const target = cl.nodes.filter((n) => n !== lead)[rnd.int(2)]!;
    return { cl, lead, target, term: st.term, disk: raftDiskState(target.dataDir) };
  }

  /** The target's Raft loop must not have died, and it must start again on its data and catch up. */
  async function expectAlive(cl: Cluster, target: ClusterNode): Promise<void> {
    await new Promise((r) => setTimeout(r, 500));
    const died = target.logs("metadata quorum: the Raft loop failed; this controller stops taking part", target.runCount);
    expect
      .soft(
        died.map((l) => JSON.stringify(l["err"]).slice(0, 300)),
        `node ${target.id}'s metadata quorum loop`,
      )
      .toEqual([]);
    await target.terminate();
    await target.start(); // throws, with the node's last log lines, if its data no longer opens
    await cl.waitForStable(30_000);
  }

  const answerOf = (p: Promise<unknown>): Promise<string> =>
    p.then(
      () => "OK",
      (e: grpc.ServiceError) => `${grpc.status[e.code]} ${String(e.metadata?.get("rill-error-name")[0])}: ${e.details}`,
    );

  it("an append whose entry is not metadata records is refused; the follower keeps working, also after a restart", async () => {
    const { cl, lead, target, term, disk } = await ownCluster();
    // Consistent with the follower's log, at the current term, from the controller's id: only
    // the payload is wrong (not a JSON list of metadata records).
    const msg = encodeMessage({
      type: "append",
      from: lead.id,
      to: target.id,
      term,
      prevIndex: disk.lastIndex,
      prevTerm: disk.lastTerm,
      commit: disk.lastIndex + 1,
      entries: [{ index: disk.lastIndex + 1, term, kind: "data", data: Buffer.from("this is not a metadata record") }],
    });
    await unchanged(
      async () => {
        const answer = await answerOf(append(target, { clusterId: cl.clusterId, from: lead.id, to: target.id }, [msg]));
        expect
          .soft(answer, "an entry that is not metadata records must be refused")
          .toMatch(/^INVALID_ARGUMENT INVALID_REQUEST: .*messages\[0\]/);
      },
      { soft: true, cluster: cl },
    );
    await expectAlive(cl, target);
  }, 90_000);

  it("a snapshot whose data is not a metadata image is refused; the follower keeps working, also after a restart", async () => {
    const { cl, lead, target, term, disk } = await ownCluster();
    const head = snapshotHead(lead.id, target.id, term, disk.lastIndex + 100, term);
    await unchanged(
      async () => {
        const answer = await answerOf(
          installSnapshot(target, [
            {
              clusterId: cl.clusterId,
              fromNodeId: lead.id,
              toNodeId: target.id,
              message: head,
              data: Buffer.from("this is not a metadata image"),
              offset: 0n,
            },
          ]),
        );
        expect
          .soft(answer, "a snapshot that is not a metadata image must be refused")
          .toMatch(/^INVALID_ARGUMENT INVALID_REQUEST: .*messages\[0\]/);
      },
      { soft: true, cluster: cl },
    );
    await expectAlive(cl, target);
  }, 90_000);
});
