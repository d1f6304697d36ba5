/**
 * The broker's internal gRPC clients: one channel per (service, address) in an InternalClients,
 * closed together; calls by method name; and what LeaderClients and Forwarder make of a peer's
 * answer, its catalog error, or a peer that cannot be reached.
 */
import * as net from "node:net";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Errors, RillError, rillError } from "../../../src/base/errors.ts";
import { AdminService, type ListTopicsResponse } from "../../../src/gen/rill/v1/admin_service_pb.ts";
import { FetchService } from "../../../src/gen/rill/v1/fetch_service_pb.ts";
import { unary } from "../../../src/rpc/errors.ts";
import { FORWARDED_KEY, Forwarder, LeaderClients, METADATA_OFFSET_KEY, type ControllerRoute } from "../../../src/rpc/forward.ts";
import { type ServiceImplementation, addService } from "../../../src/rpc/grpc-service.ts";
import { InternalClients, internalChannelOptions } from "../../../src/rpc/internal-clients.ts";
import { createServer } from "../../../src/rpc/server-options.ts";

const server = createServer();
let address = "";
let deadAddress = "";
/** The request metadata of the last ListTopics call. */
let lastMetadata: grpc.Metadata | null = null;
/** ListTopics calls so far, and how many of the next ones answer NOT_CONTROLLER (a controller that moved). */
let listTopicsCalls = 0;
let notControllerAnswers = 0;

const unimplemented = (_call: unknown, cb: grpc.sendUnaryData<never>): void => cb({ code: grpc.status.UNIMPLEMENTED });

const admin: ServiceImplementation<typeof AdminService> = {
  createTopics: unimplemented,
  deleteTopics: unimplemented,
  listTopics: unary((req, call) => {
    lastMetadata = call.metadata;
    listTopicsCalls++;
    if (notControllerAnswers > 0) {
      notControllerAnswers--;
      throw rillError("NOT_CONTROLLER", "node 3 is not the active controller");
    }
    if (req.includeInternal) throw rillError("NOT_LEADER_OR_FOLLOWER", "broker 2 does not lead t-0");
    const headers = new grpc.Metadata();
    headers.set(METADATA_OFFSET_KEY, "42");
    call.sendMetadata(headers);
    return create(AdminService.method.listTopics.output, { topics: [{ name: "t", partitions: 1 }] });
  }),
  describeTopics: unimplemented,
  createPartitions: unimplemented,
  describeConfigs: unimplemented,
  alterConfigs: unimplemented,
  describeCluster: unimplemented,
  electLeaders: unimplemented,
  // security (issue 13)
  createAcls: unimplemented,
  describeAcls: unimplemented,
  deleteAcls: unimplemented,
  alterUserScramCredentials: unimplemented,
  describeUserScramCredentials: unimplemented,
  alterClientQuotas: unimplemented,
  describeClientQuotas: unimplemented,
  deleteRecords: unimplemented,
  listTransactions: unimplemented,
  describeTransactions: unimplemented,
  abortTransaction: unimplemented,
  addRaftVoter: unimplemented,
  removeRaftVoter: unimplemented,
  alterPartitionReassignments: unimplemented,
  listPartitionReassignments: unimplemented,
  alterBrokerCordons: unimplemented,
};

/** A port on 127.0.0.1 that nothing listens on. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

beforeAll(async () => {
  addService(server, AdminService, admin);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  address = `127.0.0.1:${port}`;
  deadAddress = `127.0.0.1:${await closedPort()}`;
});

afterAll(() => server.forceShutdown());

const listTopics = (includeInternal = false) => create(AdminService.method.listTopics.input, { includeInternal });

describe("InternalClients", () => {
  it("makes one client per (service, address): the same address gets the same client", () => {
    const clients = new InternalClients();
    const a = clients.client(AdminService, "127.0.0.1:1");
    expect(clients.client(AdminService, "127.0.0.1:1")).toBe(a);
    expect(clients.client(AdminService, "127.0.0.1:2")).not.toBe(a);
    expect(clients.client(FetchService, "127.0.0.1:1")).not.toBe(a);
    expect(clients.size).toBe(3);
    clients.close();
  });

  it("close() shuts every channel down; a later call opens a new one", () => {
    const clients = new InternalClients();
    const opened = [clients.client(AdminService, "127.0.0.1:1"), clients.client(FetchService, "127.0.0.1:2")];
    clients.close();
    expect(clients.size).toBe(0);
    for (const c of opened) expect(c.getChannel().getConnectivityState(false)).toBe(grpc.connectivityState.SHUTDOWN);
    const again = clients.client(AdminService, "127.0.0.1:1");
    expect(again).not.toBe(opened[0]);
    expect(again.getChannel().getConnectivityState(false)).not.toBe(grpc.connectivityState.SHUTDOWN);
    clients.close();
  });

  it("uses the SDK's windows and keepalive, fast reconnects and no message size limit", () => {
    expect(internalChannelOptions()).toMatchObject({
      "grpc-node.flow_control_window": 16 * 1024 * 1024,
      "grpc.keepalive_time_ms": 30_000,
      "grpc.initial_reconnect_backoff_ms": 100,
      "grpc.max_send_message_length": -1,
      "grpc.max_receive_message_length": -1,
    });
    expect(() => new InternalClients({ callTimeoutMs: 0 })).toThrow(/callTimeoutMs: 0/);
  });

  it("calls a method by name with request metadata, and hears the response headers", async () => {
    const clients = new InternalClients();
    const metadata = new grpc.Metadata();
    metadata.set("x-test", "1");
    let headers: grpc.Metadata | null = null;
    const res = await clients.unary<typeof AdminService, ListTopicsResponse>(AdminService, address, "listTopics", listTopics(), {
      metadata,
      onHeaders: (m) => (headers = m),
    });
    expect(res.topics.map((t) => t.name)).toEqual(["t"]);
    expect(lastMetadata?.get("x-test")).toEqual(["1"]);
    expect((headers as grpc.Metadata | null)?.get(METADATA_OFFSET_KEY)).toEqual(["42"]);
    clients.close();
  });

  it("rejects with the ServiceError the call failed with", async () => {
    const clients = new InternalClients({ callTimeoutMs: 2_000 });
    const e = await clients.unary(AdminService, address, "listTopics", listTopics(true)).catch((x: unknown) => x);
    expect((e as grpc.ServiceError).code).toBe(grpc.status.FAILED_PRECONDITION);
    expect((e as grpc.ServiceError).metadata.get("rill-error-name")).toEqual(["NOT_LEADER_OR_FOLLOWER"]);
    clients.close();
  });
});

describe("LeaderClients over a shared InternalClients", () => {
  const clients = new InternalClients({ callTimeoutMs: 2_000 });
  afterAll(() => clients.close());
  const directory = {
    image: {
      brokers: new Map([
        [1, { address: "" }],
        [2, { address: "" }],
      ]),
    },
  };
  beforeAll(() => {
    directory.image.brokers.set(1, { address });
    directory.image.brokers.set(2, { address: deadAddress });
  });

  it("marks the call as forwarded and answers the leader's response", async () => {
    const leaders = new LeaderClients(AdminService, directory, clients);
    const res = await leaders.call<ListTopicsResponse>(1, "listTopics", listTopics(), 1_000);
    expect(res.topics).toHaveLength(1);
    expect(lastMetadata?.get(FORWARDED_KEY)).toEqual(["1"]);
  });

  it("answers the leader's catalog error as it was sent", async () => {
    const leaders = new LeaderClients(AdminService, directory, clients);
    const e = await leaders.call(1, "listTopics", listTopics(true), 1_000).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RillError);
    expect([(e as RillError).kind, (e as RillError).message]).toEqual([Errors.NOT_LEADER_OR_FOLLOWER, "broker 2 does not lead t-0"]);
  });

  it("answers REQUEST_TIMED_OUT for a leader it cannot reach, and LEADER_NOT_AVAILABLE for an unknown one", async () => {
    const leaders = new LeaderClients(AdminService, directory, clients);
    const e = await leaders.call(2, "listTopics", listTopics(), 1_000).catch((x: unknown) => x);
    expect((e as RillError).kind).toBe(Errors.REQUEST_TIMED_OUT);
    expect((e as RillError).message).toMatch(/^forwarding to broker 2 at 127\.0\.0\.1:\d+ failed \(.*\); the request may or may not/);
    const unknown = await leaders.call(3, "listTopics", listTopics(), 1_000).catch((x: unknown) => x);
    expect((unknown as RillError).kind).toBe(Errors.LEADER_NOT_AVAILABLE);
  });

  it("leaves shared clients open when it closes", () => {
    const leaders = new LeaderClients(AdminService, directory, clients);
    const before = clients.size;
    leaders.close();
    expect(clients.size).toBe(before);
  });
});

describe("Forwarder", () => {
  const route = (leader: string | null, applied: number[] = []): ControllerRoute => ({
    isActive: () => false,
    leaderAddress: () => leader,
    metadataOffset: () => 0,
    waitForOffset: async (offset) => {
      applied.push(offset);
    },
  });
  const call = (metadata = new grpc.Metadata(), deadlineMs = 2_000) =>
    ({ metadata, getPeer: () => "127.0.0.1:40000", getDeadline: () => Date.now() + deadlineMs }) as unknown as grpc.ServerUnaryCall<
      unknown,
      unknown
    >;

  it("passes the call to the controller and waits for the metadata offset it answers with", async () => {
    const applied: number[] = [];
    const fwd = new Forwarder(AdminService, route(address, applied));
    expect(fwd.shouldForward(call())).toBe(true);
    const res = await fwd.forward<ListTopicsResponse>("listTopics", listTopics(), call());
    expect(res.topics).toHaveLength(1);
    expect(applied).toEqual([42]);
    fwd.close();
  });

  it("answers NOT_CONTROLLER when the controller cannot be reached, and the controller's own error otherwise", async () => {
    const dead = new Forwarder(AdminService, route(deadAddress));
    const e = await dead.forward("listTopics", listTopics(), call()).catch((x: unknown) => x);
    expect((e as RillError).kind).toBe(Errors.NOT_CONTROLLER);
    expect((e as RillError).message).toMatch(/^forwarding to the active controller at 127\.0\.0\.1:\d+ failed: /);
    dead.close();
    const live = new Forwarder(AdminService, route(address));
    const refused = await live.forward("listTopics", listTopics(true), call()).catch((x: unknown) => x);
    expect((refused as RillError).kind).toBe(Errors.NOT_LEADER_OR_FOLLOWER);
    live.close();
  });

  it("asks again when the controller answers NOT_CONTROLLER (it moved), and answers the next one's response", async () => {
    const applied: number[] = [];
    const fwd = new Forwarder(AdminService, route(address, applied));
    listTopicsCalls = 0;
    notControllerAnswers = 2;
    const res = await fwd.forward<ListTopicsResponse>("listTopics", listTopics(), call());
    expect(res.topics.map((t) => t.name)).toEqual(["t"]);
    expect(listTopicsCalls).toBe(3);
    expect(applied).toEqual([42]);
    fwd.close();
  });

  it("gives up with NOT_CONTROLLER at the call's deadline, and never repeats a call the controller refused otherwise", async () => {
    const fwd = new Forwarder(AdminService, route(address));
    listTopicsCalls = 0;
    notControllerAnswers = 1_000;
    const started = Date.now();
    const e = await fwd.forward("listTopics", listTopics(), call(new grpc.Metadata(), 600)).catch((x: unknown) => x);
    expect((e as RillError).kind).toBe(Errors.NOT_CONTROLLER);
    expect((e as RillError).message).toBe("node 3 is not the active controller");
    expect(listTopicsCalls).toBeGreaterThan(1);
    expect(Date.now() - started).toBeLessThan(5_000);
    notControllerAnswers = 0;
    listTopicsCalls = 0;
    const refused = await fwd.forward("listTopics", listTopics(true), call()).catch((x: unknown) => x);
    expect((refused as RillError).kind).toBe(Errors.NOT_LEADER_OR_FOLLOWER);
    expect(listTopicsCalls).toBe(1);
    fwd.close();
  });
});
