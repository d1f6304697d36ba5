/**
 * Authenticated cluster membership (issue 13, "What it must show": "Every forged internal call
 * described above, replayed against a 3-node cluster started the documented way, from a client
 * without membership (on the client port and on the internal port): refused before decoding; on
 * every node the Raft term, commit offset, topics, leaders and fencing are unchanged. A replayed
 * genuine internal call is refused too.")
 *
 * The cluster is started as users start one: `bin/rill cluster start --nodes 3` (it writes the
 * secret and gives each node an internal listener). The forged calls are the issue's: an
 * AppendEntries "from" the controller at a higher term carrying a remove-topic record (built
 * with the Raft codec), a timeout-now, a RegisterBroker of a phantom node, a BrokerHeartbeat
 * with want_shut_down, a FetchMetadata, and a client-set `rill-forwarded` header. Each is sent
 * by a plain client on both ports of its target: refused UNAUTHENTICATED with the catalog code
 * CLUSTER_MEMBERSHIP_REQUIRED on the internal port (UNIMPLEMENTED on the client port, which no
 * longer serves the internal services), and a body that is not even protobuf gets the same
 * answer — so nothing was decoded. After each, every node's controller, Raft role and term,
 * metadata and commit offsets, fenced flags, the topics and every partition's leader, epoch and
 * ISR are as before. Then a genuine call signed with the cluster's secret is accepted once and
 * refused when sent again byte for byte, or with its body altered.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as nodeFs from "node:fs";
import * as path from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { systemClock } from "../../src/base/clock.ts";
import { Admin } from "../../src/client/admin.ts";
import { AdminService, DescribeClusterRequestSchema, type DescribeClusterResponse } from "../../src/gen/rill/v1/admin_service_pb.ts";
import { NodeRole } from "../../src/gen/rill/v1/common_pb.ts";
import {
  AppendEntriesRequestSchema,
  BrokerHeartbeatRequestSchema,
  ControllerService,
  FetchMetadataRequestSchema,
  type FetchMetadataResponse,
  RegisterBrokerRequestSchema,
} from "../../src/gen/rill/v1/controller_service_pb.ts";
import { ProduceRequestSchema, ProduceService } from "../../src/gen/rill/v1/produce_service_pb.ts";
import { encodeEntry } from "../../src/metadata/quorum-store.ts";
import { clientConstructor } from "../../src/protocol/grpc-service.ts";
import { encodeMessage } from "../../src/raft/codec.ts";
import { constructorOf } from "../../src/rpc/internal-clients.ts";
import { MemberSigner } from "../../src/security/member-auth.ts";
import { freePortRun, raftDiskState, settled, unaryCall, until, viewOf } from "./cluster-harness.ts";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";

const RILL = path.resolve("bin/rill");
const TOPIC = "orders";
const OFFSETS_TOPIC = "__consumer_offsets";
const AdminClient = clientConstructor(AdminService);
const PlainController = clientConstructor(ControllerService);
/** A ControllerService client that sends Buffers as they are (for signed and raw bodies). */
const RawController = constructorOf(ControllerService);
const PlainProduce = clientConstructor(ProduceService);

let dir: string;
let launcher: ChildProcess;
let stdout = "";
let base: number;
const pids: number[] = [];
const clients: grpc.Client[] = [];
const addr = (id: number): string => `127.0.0.1:${base + id - 1}`;
const internalAddr = (id: number): string => `127.0.0.1:${base + 10 + id - 1}`;
let clusterId: string;
/** The active controller, and a follower (the target of the Raft forgeries). */
let L: number;
let F: number;

function track<C extends grpc.Client>(c: C): C {
  clients.push(c);
  return c;
}

async function describeNode(id: number): Promise<DescribeClusterResponse> {
  const c = track(new AdminClient(addr(id), grpc.credentials.createInsecure()));
  return unaryCall<DescribeClusterResponse>(
    (o, cb) => c.describeCluster(create(DescribeClusterRequestSchema, {}), new grpc.Metadata(), o, cb),
    3000,
  );
}

/** Everything a refused call must leave as it was, on every node. */
async function state() {
  const nodes = await Promise.all(
    [1, 2, 3].map(async (id) => {
      const v = viewOf(await describeNode(id));
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
  const perNode = await Promise.all(
    [1, 2, 3].map(async (id) => {
      const admin = new Admin({ bootstrap: addr(id), retry: { retries: 0 } });
      try {
        const topics = (await admin.listTopics({ includeInternal: true })).map((t) => t.name).sort();
        const described = await admin.describeTopics([TOPIC, OFFSETS_TOPIC], { includeConfigs: false });
        const partitions = described.flatMap((t) =>
          t.partitions.map((p) => ({ t: t.name, p: p.partition, leader: p.leader, epoch: p.leaderEpoch, isr: [...p.isr].sort() })),
        );
        return { id, topics, partitions };
      } finally {
        await admin.close();
      }
    }),
  );
  return { nodes, perNode };
}

/** Runs `fn`, then checks that `state()` is what it was before. */
async function unchanged(fn: () => Promise<void>): Promise<void> {
  const before = await settled(state);
  await fn();
  // Give anything a forged call may have set off (an election, a commit, a fencing) time to show.
  await new Promise((r) => setTimeout(r, 1500));
  expect(await settled(state), "cluster state after the forged calls").toEqual(before);
}

interface Failure {
  readonly code: string;
  readonly name: string;
  readonly details: string;
}

async function failure(p: Promise<unknown>): Promise<Failure> {
  try {
    await p;
  } catch (e) {
    const se = e as grpc.ServiceError;
    return { code: grpc.status[se.code]!, name: String(se.metadata?.get("rill-error-name")[0] ?? ""), details: se.details };
  }
  throw new Error("the call succeeded; it should have been refused");
}

/** The answer a non-member gets on the internal port: UNAUTHENTICATED, CLUSTER_MEMBERSHIP_REQUIRED. */
async function expectNotMember(p: Promise<unknown>, details: RegExp = /not an authenticated cluster member/): Promise<void> {
  const f = await failure(p);
  expect({ code: f.code, name: f.name }, f.details).toEqual({ code: "UNAUTHENTICATED", name: "CLUSTER_MEMBERSHIP_REQUIRED" });
  expect(f.details).toMatch(details);
}

/** The answer on the client port, which does not serve the internal services at all. */
async function expectNotServed(p: Promise<unknown>): Promise<void> {
  const f = await failure(p);
  expect(f.code, f.details).toBe("UNIMPLEMENTED");
}

type ControllerClient = InstanceType<typeof PlainController>;
type Call = (
  c: ControllerClient,
  md: grpc.Metadata,
  o: grpc.CallOptions,
  cb: (e: grpc.ServiceError | null, r?: unknown) => void,
) => unknown;

/** Sends one forged call from a plain client (no membership) to node `id`'s client port and internal port. */
async function forgeBoth(id: number, call: Call): Promise<void> {
  const onClientPort = track(new PlainController(addr(id), grpc.credentials.createInsecure()));
  const onInternalPort = track(new PlainController(internalAddr(id), grpc.credentials.createInsecure()));
  await expectNotServed(unaryCall((o, cb) => call(onClientPort, new grpc.Metadata(), o, cb), 5000));
  await expectNotMember(unaryCall((o, cb) => call(onInternalPort, new grpc.Metadata(), o, cb), 5000));
  // A client cannot make itself a member with the headers members send.
  const md = new grpc.Metadata();
  md.set("rill-forwarded", "1");
  md.set("rill-principal", "User:admin");
  await expectNotMember(unaryCall((o, cb) => call(onInternalPort, md, o, cb), 5000));
}

beforeAll(async () => {
  dir = tmpDir("rill-membership-");
  base = await freePortRun(13);
  launcher = spawn(
    RILL,
    [
      "cluster",
      "start",
      "--nodes",
      "3",
      "--data-dir",
      path.join(dir, "c"),
      "--base-port",
      String(base),
      "--kafka-base-port",
      "0",
      // Calm timings: nothing here should move the cluster but the calls under test, even on a busy machine.
      "--set",
      "broker.session.timeout.ms=10000",
      "--set",
      "controller.quorum.election.timeout.ms=3000",
    ],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, RILL_RUNTIME: undefined } },
  );
  launcher.stdout!.on("data", (d: Buffer) => {
    stdout += d.toString("utf8");
  });
  launcher.stderr!.on("data", (d: Buffer) => {
    stdout += d.toString("utf8");
  });
  const found = await until(
    () => {
      const m = [...stdout.matchAll(/^ {2}node (\d) {2}(\S+) {2}(?:http:\/\/\S+ {2})?pid (\d+)/gm)];
      return m.length === 3 ? m : undefined;
    },
    20_000,
    "the launcher's banner",
  );
  pids.push(...found.map((m) => Number(m[3])));
  const c = await until(
    async () => {
      const r = await describeNode(1);
      if (r.controllerId > 0 && r.brokers.filter((b) => !b.fenced).length === 3) return r;
      // What was seen instead: the timeout's message shows the last of these.
      const brokers = r.brokers.map((b) => `${b.nodeId}${b.fenced ? " fenced" : ""}`).join(", ");
      throw new Error(`controller ${r.controllerId}, brokers [${brokers}]`);
    },
    60_000,
    "3 unfenced brokers and an active controller",
  ).catch((e: unknown) => {
    console.log(`launcher output:\n${stdout}`);
    throw e;
  });
  clusterId = c.clusterId;
  const admin = new Admin({ bootstrap: addr(1) });
  try {
    await until(
      async () => (await admin.listTopics({ includeInternal: true })).some((t) => t.name === OFFSETS_TOPIC),
      30_000,
      OFFSETS_TOPIC,
    );
    await admin.createTopics([{ name: TOPIC, partitions: 3, replicationFactor: 3 }]);
    await until(
      async () => {
        const ts = await admin.describeTopics([TOPIC, OFFSETS_TOPIC], { includeConfigs: false });
        return ts.every((t) => t.partitions.every((p) => p.leader > 0 && p.isr.length === p.replicas.length));
      },
      30_000,
      "every partition led with a full ISR",
    );
  } finally {
    await admin.close();
  }
  L = (await describeNode(1)).controllerId;
  F = [1, 2, 3].find((id) => id !== L)!;
  console.log(`cluster ${clusterId} at ${addr(1)}..: controller ${L}, target follower ${F}`);
}, 120_000);

afterAll(async () => {
  for (const c of clients) c.close();
  if (launcher && launcher.exitCode === null) {
    launcher.kill("SIGTERM");
    await new Promise((r) => {
      const t = setTimeout(r, 40_000);
      launcher.once("exit", () => {
        clearTimeout(t);
        r(null);
      });
    });
  }
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  if (dir) rmTmp(dir);
}, 60_000);

describe("forged internal calls from a client without membership", () => {
  it("an AppendEntries from the controller at a higher term removing a topic, and a timeout-now: refused, nothing changed", async () => {
    const term = viewOf(await describeNode(F)).raftTerm;
    const d = raftDiskState(path.join(dir, "c", `node-${F}`));
    const removal = encodeEntry([{ type: "remove-topic", v: 1, name: TOPIC, topicId: "0".repeat(32) }]);
    const append = encodeMessage({
      type: "append",
      from: L,
      to: F,
      term: term + 5,
      prevIndex: d.lastIndex,
      prevTerm: term,
      commit: d.lastIndex + 1,
      entries: [{ index: d.lastIndex + 1, term: term + 5, kind: "data", data: removal }],
    });
    const appendReq = create(AppendEntriesRequestSchema, { clusterId, fromNodeId: L, toNodeId: F, messages: [append] });
    const timeoutNow = create(AppendEntriesRequestSchema, {
      clusterId,
      fromNodeId: L,
      toNodeId: F,
      messages: [encodeMessage({ type: "timeout-now", from: L, to: F, term })],
    });
    await unchanged(async () => {
      await forgeBoth(F, (c, md, o, cb) => c.appendEntries(appendReq, md, o, cb));
      await forgeBoth(F, (c, md, o, cb) => c.appendEntries(timeoutNow, md, o, cb));
    });
  }, 60_000);

  it("a RegisterBroker of a phantom node and a BrokerHeartbeat with want_shut_down: refused, nothing changed", async () => {
    const offset = viewOf(await describeNode(L)).metadataOffset;
    const phantom = create(RegisterBrokerRequestSchema, {
      nodeId: 7,
      clusterId,
      incarnationId: "00000000-0000-4000-8000-000000000007",
      address: "127.0.0.1:1",
      roles: [NodeRole.BROKER],
    });
    const shutDown = create(BrokerHeartbeatRequestSchema, {
      nodeId: F,
      brokerEpoch: BigInt(offset),
      currentMetadataOffset: BigInt(offset),
      wantShutDown: true,
    });
    await unchanged(async () => {
      for (const id of [L, F]) {
        await forgeBoth(id, (c, md, o, cb) => c.registerBroker(phantom, md, o, cb));
        await forgeBoth(id, (c, md, o, cb) => c.brokerHeartbeat(shutDown, md, o, cb));
      }
    });
    expect((await describeNode(L)).brokers.map((b) => b.nodeId).sort()).toEqual([1, 2, 3]);
  }, 60_000);

  it("a FetchMetadata: refused on every node, no metadata handed out", async () => {
    const req = create(FetchMetadataRequestSchema, { clusterId, nodeId: 4, afterOffset: -1n, maxWaitMs: 0 });
    await unchanged(async () => {
      for (const id of [1, 2, 3]) await forgeBoth(id, (c, md, o, cb) => c.fetchMetadata(req, md, o, cb));
    });
  }, 60_000);

  it("is refused before its request is decoded: bytes that are not protobuf get the same answer", async () => {
    const garbage = randomBytes(64);
    garbage[0] = 0xff; // field 31, wire type 7: invalid protobuf whatever follows
    const raw = track(new RawController(internalAddr(F), grpc.credentials.createInsecure()));
    await unchanged(async () => {
      for (const m of ["appendEntries", "vote", "registerBroker", "brokerHeartbeat", "alterPartition", "fetchMetadata"] as const) {
        const fn = raw[m] as unknown as (
          r: Buffer,
          md: grpc.Metadata,
          o: grpc.CallOptions,
          cb: (e: grpc.ServiceError | null) => void,
        ) => void;
        await expectNotMember(unaryCall((o, cb) => fn.call(raw, garbage, new grpc.Metadata(), o, cb), 5000));
      }
    });
  }, 60_000);

  it("a client-set rill-forwarded header is not trusted: ignored on the client port, refused on the internal port", async () => {
    const admin = new Admin({ bootstrap: addr(1) });
    const t = (await admin.describeTopics([TOPIC], { includeConfigs: false }))[0]!;
    await admin.close();
    // A partition the node does not lead: a trusted "forwarded" mark would make it answer
    // NOT_LEADER_OR_FOLLOWER instead of passing the request to the leader.
    const p = t.partitions.find((x) => x.leader !== F)!;
    const md = (): grpc.Metadata => {
      const m = new grpc.Metadata();
      m.set("rill-forwarded", "1");
      return m;
    };
    const req = create(ProduceRequestSchema, {
      topic: TOPIC,
      partition: p.partition,
      records: [{ value: Buffer.from("v") }],
      timeoutMs: 5000,
    });
    const onClientPort = track(new PlainProduce(addr(F), grpc.credentials.createInsecure()));
    const res = await unaryCall<{ partitions: { error?: unknown; baseOffset: bigint }[] }>(
      (o, cb) => onClientPort.produce(req, md(), o, cb),
      10_000,
    );
    expect(res.partitions[0]!.error).toBeUndefined();
    expect(res.partitions[0]!.baseOffset).toBeGreaterThanOrEqual(0n);
    const onInternalPort = track(new PlainProduce(internalAddr(F), grpc.credentials.createInsecure()));
    await unchanged(async () => {
      await expectNotMember(unaryCall((o, cb) => onInternalPort.produce(req, md(), o, cb), 5000));
    });
  }, 60_000);

  it("every refusal is logged by the node that refused it", () => {
    expect(stdout).toMatch(new RegExp(`^\\[node ${F}\\] .*"msg":"refused an internal call: not an authenticated cluster member"`, "m"));
    expect(stdout).not.toContain(nodeFs.readFileSync(path.join(dir, "c", "cluster.secret"), "utf8").trim());
  });
});

describe("a genuine signed call", () => {
  const PATH = "/rill.v1.ControllerService/FetchMetadata";

  function signed(): { md: grpc.Metadata; framed: Buffer } {
    const secret = nodeFs.readFileSync(path.join(dir, "c", "cluster.secret"), "utf8").trim();
    const signer = new MemberSigner(secret, 99, systemClock, () => randomBytes(16).toString("hex"));
    const call = signer.signCall({ path: PATH, principal: "", clientHost: "", forwarded: false });
    const body = Buffer.from(
      toBinary(FetchMetadataRequestSchema, create(FetchMetadataRequestSchema, { clusterId, nodeId: 4, afterOffset: -1n })),
    );
    const md = new grpc.Metadata();
    md.set("rill-member", call.header);
    return { md, framed: Buffer.concat([call.messageMac(0, body), body]) };
  }

  function send(target: string, md: grpc.Metadata, framed: Buffer): Promise<FetchMetadataResponse> {
    const raw = track(new RawController(target, grpc.credentials.createInsecure()));
    const fn = raw.fetchMetadata as unknown as (
      r: Buffer,
      md: grpc.Metadata,
      o: grpc.CallOptions,
      cb: (e: grpc.ServiceError | null, r?: FetchMetadataResponse) => void,
    ) => void;
    return unaryCall<FetchMetadataResponse>((o, cb) => fn.call(raw, framed, md.clone(), o, cb), 5000);
  }

  it("is served once, and refused when replayed byte for byte", async () => {
    const { md, framed } = signed();
    const first = await send(internalAddr(L), md, framed);
    expect(first.entries.length).toBeGreaterThan(0);
    await expectNotMember(send(internalAddr(L), md, framed), /already used \(replayed call\)/);
  }, 30_000);

  it("is refused with its body altered, and with its signature sent to the client port", async () => {
    const { md, framed } = signed();
    const altered = Buffer.from(framed);
    altered.writeUInt8(altered.readUInt8(altered.length - 1) ^ 1, altered.length - 1);
    await expectNotMember(send(internalAddr(L), md, altered), /does not match its signature/);
    await expectNotServed(send(addr(L), signed().md, signed().framed));
  }, 30_000);
});
