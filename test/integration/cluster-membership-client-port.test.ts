/**
 * Cluster membership without `internal.listen` (issue 13): the members call each other on the
 * client port, every call signed with `cluster.secret`, so there the internal services answer
 * only members. A 3-node cluster of the test harness (its nodes share a secret file): the
 * issue's forged calls from a plain client on the client port are refused UNAUTHENTICATED
 * (CLUSTER_MEMBERSHIP_REQUIRED) and change nothing on any node; the same calls signed as a
 * member are served (the harness's `controller()` client signs); a signed call sent again byte
 * for byte is refused.
 */
import { randomBytes } from "node:crypto";
import { create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NodeRole } from "../../src/gen/rill/v1/common_pb.ts";
import {
  AppendEntriesRequestSchema,
  BrokerHeartbeatRequestSchema,
  ControllerService,
  FetchMetadataRequestSchema,
  type FetchMetadataResponse,
  RegisterBrokerRequestSchema,
} from "../../src/gen/rill/v1/controller_service_pb.ts";
import { encodeEntry } from "../../src/metadata/quorum-store.ts";
import { clientConstructor } from "../../src/protocol/grpc-service.ts";
import { encodeMessage } from "../../src/raft/codec.ts";
import { constructorOf } from "../../src/rpc/internal-clients.ts";
import { Cluster, memberSigner, raftDiskState, settled, unaryCall, until, viewOf } from "./cluster-harness.ts";

const TOPIC = "members-t";
const PlainController = clientConstructor(ControllerService);
const RawController = constructorOf(ControllerService);
let c: Cluster;
let L: number;
let F: number;
const clients: grpc.Client[] = [];

beforeAll(async () => {
  // Calm timings: nothing here should move the cluster but the calls under test, even on a busy machine.
  c = await Cluster.start({
    name: "rill-members-",
    set: {
      "controller.quorum.election.timeout.ms": 3000,
      "controller.quorum.heartbeat.interval.ms": 100,
      "broker.session.timeout.ms": 10000,
      "broker.heartbeat.interval.ms": 500,
    },
  });
  const st = await c.waitForStable(30_000);
  const admin = c.node(st.leader).admin();
  await admin.createTopics([{ name: TOPIC, partitions: 3, replicationFactor: 3 }]);
  await until(
    async () => (await admin.describeTopics([TOPIC], { includeConfigs: false }))[0]!.partitions.every((p) => p.isr.length === 3),
    30_000,
    "a full ISR everywhere",
  );
  await c.waitForStable(30_000);
  L = st.leader;
  F = c.nodes.find((n) => n.id !== L)!.id;
}, 90_000);

afterAll(async () => {
  for (const x of clients) x.close();
  await c?.close();
});

async function state() {
  const nodes = await Promise.all(
    c.nodes.map(async (n) => {
      const v = viewOf(await n.describe());
      return {
        id: v.id,
        controller: v.controllerId,
        term: v.raftTerm,
        offset: v.metadataOffset,
        commit: v.commitOffset,
        fenced: [...v.fenced],
      };
    }),
  );
  const topics = await Promise.all(
    c.nodes.map(async (n) => {
      const t = (await n.admin().describeTopics([TOPIC], { includeConfigs: false }))[0]!;
      return t.partitions.map((p) => ({ p: p.partition, leader: p.leader, epoch: p.leaderEpoch, isr: [...p.isr].sort() }));
    }),
  );
  return { nodes, topics };
}

async function refused(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    const se = e as grpc.ServiceError;
    expect({ code: grpc.status[se.code], name: se.metadata?.get("rill-error-name")[0] }, se.details).toEqual({
      code: "UNAUTHENTICATED",
      name: "CLUSTER_MEMBERSHIP_REQUIRED",
    });
    return se.details;
  }
  throw new Error("the call succeeded; it should have been refused");
}

describe("internal calls on the client port (no internal.listen)", () => {
  it("from a plain client: every forged call of the issue refused, nothing changed on any node", async () => {
    const term = viewOf(await c.node(F).describe()).raftTerm;
    const d = raftDiskState(c.node(F).dataDir);
    const removal = encodeEntry([{ type: "remove-topic", v: 1, name: TOPIC, topicId: "0".repeat(32) }]);
    const append = create(AppendEntriesRequestSchema, {
      clusterId: c.clusterId,
      fromNodeId: L,
      toNodeId: F,
      messages: [
        encodeMessage({
          type: "append",
          from: L,
          to: F,
          term: term + 5,
          prevIndex: d.lastIndex,
          prevTerm: term,
          commit: d.lastIndex + 1,
          entries: [{ index: d.lastIndex + 1, term: term + 5, kind: "data", data: removal }],
        }),
      ],
    });
    const timeoutNow = create(AppendEntriesRequestSchema, {
      clusterId: c.clusterId,
      fromNodeId: L,
      toNodeId: F,
      messages: [encodeMessage({ type: "timeout-now", from: L, to: F, term })],
    });
    const phantom = create(RegisterBrokerRequestSchema, {
      nodeId: 7,
      clusterId: c.clusterId,
      incarnationId: "00000000-0000-4000-8000-000000000007",
      address: "127.0.0.1:1",
      roles: [NodeRole.BROKER],
    });
    const shutDown = create(BrokerHeartbeatRequestSchema, { nodeId: F, brokerEpoch: 1n, currentMetadataOffset: 1n, wantShutDown: true });
    const fetchAll = create(FetchMetadataRequestSchema, { clusterId: c.clusterId, nodeId: 4, afterOffset: -1n });
    const before = await settled(state);
    const toF = new PlainController(c.node(F).address, grpc.credentials.createInsecure());
    const toL = new PlainController(c.node(L).address, grpc.credentials.createInsecure());
    clients.push(toF, toL);
    const md = (): grpc.Metadata => {
      const m = new grpc.Metadata();
      m.set("rill-forwarded", "1");
      return m;
    };
    await refused(unaryCall((o, cb) => toF.appendEntries(append, md(), o, cb), 5000));
    await refused(unaryCall((o, cb) => toF.appendEntries(timeoutNow, md(), o, cb), 5000));
    await refused(unaryCall((o, cb) => toL.registerBroker(phantom, md(), o, cb), 5000));
    await refused(unaryCall((o, cb) => toL.brokerHeartbeat(shutDown, md(), o, cb), 5000));
    await refused(unaryCall((o, cb) => toF.fetchMetadata(fetchAll, md(), o, cb), 5000));
    await new Promise((r) => setTimeout(r, 1500));
    expect(await settled(state)).toEqual(before);
  }, 60_000);

  it("signed as a member: served; the same signed bytes sent again: refused as a replay", async () => {
    const req = create(FetchMetadataRequestSchema, { clusterId: c.clusterId, nodeId: F, afterOffset: -1n });
    const served = await unaryCall<FetchMetadataResponse>(
      (o, cb) => c.node(L).controller().fetchMetadata(req, new grpc.Metadata(), o, cb),
      5000,
    );
    expect(served.entries.length).toBeGreaterThan(0);

    const call = memberSigner(5).signCall({
      path: "/rill.v1.ControllerService/FetchMetadata",
      principal: "",
      clientHost: "",
      forwarded: false,
    });
    const body = Buffer.from(toBinary(FetchMetadataRequestSchema, req));
    const framed = Buffer.concat([call.messageMac(0, body), body]);
    const raw = new RawController(c.node(L).address, grpc.credentials.createInsecure());
    clients.push(raw);
    const send = (): Promise<FetchMetadataResponse> => {
      const md = new grpc.Metadata();
      md.set("rill-member", call.header);
      const fn = raw.fetchMetadata as unknown as (
        r: Buffer,
        md: grpc.Metadata,
        o: grpc.CallOptions,
        cb: (e: grpc.ServiceError | null, r?: FetchMetadataResponse) => void,
      ) => void;
      return unaryCall<FetchMetadataResponse>((o, cb) => fn.call(raw, framed, md, o, cb), 5000);
    };
    expect((await send()).entries.length).toBeGreaterThan(0);
    expect(await refused(send())).toMatch(/already used \(replayed call\)/);
    // Garbage under a fresh signature that does not cover it: refused before decoding.
    const other = memberSigner(5).signCall({
      path: "/rill.v1.ControllerService/FetchMetadata",
      principal: "",
      clientHost: "",
      forwarded: false,
    });
    const md = new grpc.Metadata();
    md.set("rill-member", other.header);
    const garbage = Buffer.concat([call.messageMac(0, body), randomBytes(40)]);
    const fn = raw.fetchMetadata as unknown as (
      r: Buffer,
      md: grpc.Metadata,
      o: grpc.CallOptions,
      cb: (e: grpc.ServiceError | null) => void,
    ) => void;
    expect(await refused(unaryCall((o, cb) => fn.call(raw, garbage, md, o, cb), 5000))).toMatch(/does not match its signature/);
  }, 60_000);
});
