import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminService } from "../../../src/gen/rill/v1/admin_service_pb.ts";
import type { DescribeClusterResponse, ListTopicsResponse } from "../../../src/gen/rill/v1/admin_service_pb.ts";
import { ControllerService } from "../../../src/gen/rill/v1/controller_service_pb.ts";
import { RecordFormat } from "../../../src/gen/rill/v1/common_pb.ts";
import { FetchService } from "../../../src/gen/rill/v1/fetch_service_pb.ts";
import type { FetchResponse, SubscribeResponse } from "../../../src/gen/rill/v1/fetch_service_pb.ts";
import { GroupService } from "../../../src/gen/rill/v1/group_service_pb.ts";
import type { ConsumeRequest, ConsumeResponse } from "../../../src/gen/rill/v1/group_service_pb.ts";
import { ProduceService } from "../../../src/gen/rill/v1/produce_service_pb.ts";
import type { ProduceResponse, ProduceStreamResponse } from "../../../src/gen/rill/v1/produce_service_pb.ts";
import { ReplicationService } from "../../../src/gen/rill/v1/replication_service_pb.ts";
import { decodeFetchResponse, encodeProduceRequest, fetchClientCodecs, produceClientCodecs } from "../../../src/client/wire-codec.ts";
import { clientChannelOptions } from "../../../src/protocol/channel-options.ts";
import { asBuffer, clientConstructor, serviceDefinition } from "../../../src/protocol/grpc-service.ts";
import { MalformedMessage, type ServiceImplementation, addService, serverDefinition } from "../../../src/rpc/grpc-service.ts";
import { createServer } from "../../../src/rpc/server-options.ts";
import {
  decodeProduceRequest,
  encodeFetchResponseTransient,
  fetchServiceCodecs,
  produceServiceCodecs,
} from "../../../src/rpc/wire-codec.ts";

describe("serviceDefinition", () => {
  it("maps every rpc to its path and streaming flags, keyed by localName", () => {
    const def = serviceDefinition(ProduceService);
    expect(Object.keys(def)).toEqual(["produce", "produceStream", "initProducerId", "endTransaction"]);
    expect(def.produce).toMatchObject({ path: "/rill.v1.ProduceService/Produce", requestStream: false, responseStream: false });
    expect(def.produceStream).toMatchObject({ path: "/rill.v1.ProduceService/ProduceStream", requestStream: true, responseStream: true });
    expect(serviceDefinition(FetchService).subscribe).toMatchObject({ requestStream: false, responseStream: true });
    expect(serviceDefinition(ControllerService).installSnapshot).toMatchObject({ requestStream: true, responseStream: false });
  });

  it("uses overrides for their direction only", () => {
    const def = serviceDefinition(ProduceService, produceClientCodecs);
    expect(def.produce!.requestSerialize).toBe(encodeProduceRequest);
    const plain = serviceDefinition(ProduceService);
    expect(def.produce!.responseSerialize).not.toBe(plain.produce!.responseSerialize);
    expect(typeof def.produce!.responseSerialize).toBe("function");
    expect(serviceDefinition(ProduceService, produceServiceCodecs).produce!.requestDeserialize).toBe(decodeProduceRequest);
    expect(serviceDefinition(FetchService, fetchServiceCodecs).fetch!.responseSerialize).toBe(encodeFetchResponseTransient);
    expect(serviceDefinition(FetchService, fetchClientCodecs).fetch!.responseDeserialize).toBe(decodeFetchResponse);
  });

  it("wraps a Uint8Array as a Buffer over the same memory", () => {
    const backing = new Uint8Array(100);
    const view = backing.subarray(10, 20);
    const b = asBuffer(view);
    expect(b.buffer).toBe(backing.buffer);
    expect([b.byteOffset, b.byteLength]).toEqual([10, 10]);
    const buf = Buffer.alloc(4);
    expect(asBuffer(buf)).toBe(buf);
  });

  it("the server's definition returns a MalformedMessage instead of throwing on bad request bytes", () => {
    const bad = Buffer.from([0x0a, 0x05, 0x01]);
    expect(() => serviceDefinition(AdminService).listTopics!.requestDeserialize(bad)).toThrow();
    const decoded = serverDefinition(AdminService).listTopics!.requestDeserialize(bad);
    expect(decoded).toBeInstanceOf(MalformedMessage);
    expect(decoded).toMatchObject({ typeName: "rill.v1.ListTopicsRequest" });
    const produce = serverDefinition(ProduceService, produceServiceCodecs).produce!.requestDeserialize(Buffer.from([0x22, 0x64, 0x00]));
    expect((produce as MalformedMessage).details).toMatch(/^rill\.v1\.ProduceRequest\.record_batch: length 100 runs past the end/);
  });
});

/** A server with a few services over every rpc kind, on 127.0.0.1. */
describe("grpc-js server and client built from descriptors", () => {
  const server = createServer();
  let address = "";
  let handlerCalls = 0;

  const admin: ServiceImplementation<typeof AdminService> = {
    createTopics: (call, cb) =>
      cb(
        null,
        create(AdminService.method.createTopics.output, {
          topics: call.request.topics.map((t) => ({ name: t.name, partitions: t.partitions })),
        }),
      ),
    deleteTopics: (_call, cb) => cb({ code: grpc.status.UNIMPLEMENTED }),
    listTopics: (call, cb) => {
      handlerCalls++;
      cb(
        null,
        create(AdminService.method.listTopics.output, {
          topics: [{ name: "orders", partitions: 6, internal: call.request.includeInternal }],
        }),
      );
    },
    describeTopics: (_call, cb) => cb({ code: grpc.status.UNIMPLEMENTED }),
    createPartitions: (_call, cb) => cb({ code: grpc.status.UNIMPLEMENTED }),
    describeConfigs: (_call, cb) => cb({ code: grpc.status.UNIMPLEMENTED }),
    alterConfigs: (_call, cb) => cb({ code: grpc.status.UNIMPLEMENTED }),
    describeCluster: (_call, cb) => cb(null, create(AdminService.method.describeCluster.output, { clusterId: "c1", controllerId: 1 })),
    electLeaders: (_call, cb) => cb({ code: grpc.status.UNIMPLEMENTED }),
    // security (issue 13)
    createAcls: (_call, cb) => cb({ code: grpc.status.UNIMPLEMENTED }),
    describeAcls: (_call, cb) => cb({ code: grpc.status.UNIMPLEMENTED }),
    deleteAcls: (_call, cb) => cb({ code: grpc.status.UNIMPLEMENTED }),
    alterUserScramCredentials: (_call, cb) => cb({ code: grpc.status.UNIMPLEMENTED }),
    describeUserScramCredentials: (_call, cb) => cb({ code: grpc.status.UNIMPLEMENTED }),
    alterClientQuotas: (_call, cb) => cb({ code: grpc.status.UNIMPLEMENTED }),
    describeClientQuotas: (_call, cb) => cb({ code: grpc.status.UNIMPLEMENTED }),
    deleteRecords: (_call, cb) => cb({ code: grpc.status.UNIMPLEMENTED }),
    listTransactions: (_call, cb) => cb({ code: grpc.status.UNIMPLEMENTED }),
    describeTransactions: (_call, cb) => cb({ code: grpc.status.UNIMPLEMENTED }),
    abortTransaction: (_call, cb) => cb({ code: grpc.status.UNIMPLEMENTED }),
    addRaftVoter: (_call, cb) => cb({ code: grpc.status.UNIMPLEMENTED }),
    removeRaftVoter: (_call, cb) => cb({ code: grpc.status.UNIMPLEMENTED }),
    alterPartitionReassignments: (_call, cb) => cb({ code: grpc.status.UNIMPLEMENTED }),
    listPartitionReassignments: (_call, cb) => cb({ code: grpc.status.UNIMPLEMENTED }),
    alterBrokerCordons: (_call, cb) => cb({ code: grpc.status.UNIMPLEMENTED }),
  };

  const produce: ServiceImplementation<typeof ProduceService, typeof produceServiceCodecs> = {
    produce: (call, cb) => {
      handlerCalls++;
      const req = call.request;
      cb(
        null,
        create(ProduceService.method.produce.output, {
          topic: req.topic,
          partitions: [{ partition: req.partition ?? -1, baseOffset: BigInt(req.recordBatch.length) }],
        }),
      );
    },
    produceStream: (call) => {
      call.on("data", (req) => {
        handlerCalls++;
        const response = create(ProduceService.method.produce.output, {
          topic: req.request?.topic ?? "",
          partitions: [{ baseOffset: BigInt(req.request?.recordBatch.length ?? 0) }],
        });
        call.write(
          create(ProduceService.method.produceStream.output, { requestId: req.requestId, result: { case: "response", value: response } }),
        );
      });
      call.on("end", () => call.end());
    },
    initProducerId: (_call, cb) => cb(null, create(ProduceService.method.initProducerId.output, { producerId: 1n, producerEpoch: 0 })),
    endTransaction: (_call, cb) => cb({ code: grpc.status.UNIMPLEMENTED }),
  };

  const chunks = [Buffer.alloc(1000, 1), Buffer.alloc(24, 2)];
  const fetch: ServiceImplementation<typeof FetchService, typeof fetchServiceCodecs> = {
    fetch: (call, cb) => {
      const p = call.request.partitions[0]!;
      // The hand-written serializer takes chunks and plain numbers.
      cb(null, {
        partitions: [{ topic: p.topic, partition: p.partition, highWatermark: 1024, recordBatches: chunks, nextOffset: p.offset + 2n }],
      });
    },
    subscribe: (call) => {
      for (let i = 0; i < 3; i++) call.write({ partitions: [{ topic: "t", partition: i, recordBatches: [Buffer.alloc(10, i)] }] });
      call.end();
    },
    listOffsets: (_call, cb) => cb(null, create(FetchService.method.listOffsets.output, {})),
  };

  const group: Pick<ServiceImplementation<typeof GroupService>, "consume"> = {
    consume: (call) => {
      call.on("data", (req: ConsumeRequest) => {
        if (req.kind.case === "subscribe") {
          const assigned = req.kind.value.topics.map((topic) => ({ topic, partition: 0 }));
          call.write(
            create(GroupService.method.consume.output, {
              kind: { case: "assignment", value: { memberId: "m1", memberEpoch: 1, assigned } },
            }),
          );
        } else if (req.kind.case === "commit") {
          const offsets = req.kind.value.offsets.map((o) => ({ topic: o.topic, partition: o.partition, offset: o.offset }));
          call.write(
            create(GroupService.method.consume.output, {
              kind: { case: "commitResult", value: { commitId: req.kind.value.commitId, offsets } },
            }),
          );
        }
      });
      call.on("end", () => call.end());
    },
  };

  const controller: Pick<ServiceImplementation<typeof ControllerService>, "installSnapshot"> = {
    installSnapshot: (call, cb) => {
      let received = 0n;
      call.on("data", (chunk) => (received += BigInt(chunk.data.length)));
      call.on("end", () => cb(null, create(ControllerService.method.installSnapshot.output, { bytesReceived: received })));
    },
  };

  beforeAll(async () => {
    addService(server, AdminService, admin);
    addService(server, ProduceService, produce, produceServiceCodecs);
    addService(server, FetchService, fetch, fetchServiceCodecs);
    server.addService(serverDefinition(GroupService), group as grpc.UntypedServiceImplementation);
    server.addService(serverDefinition(ControllerService), controller as grpc.UntypedServiceImplementation);
    addService(server, ReplicationService, {
      replicaFetch: (call) => call.end(),
      offsetsForLeaderEpoch: (_call, cb) => cb(null, create(ReplicationService.method.offsetsForLeaderEpoch.output, {})),
      writeTxnMarkers: (_call, cb) => cb({ code: grpc.status.UNIMPLEMENTED }),
      txnProduceGate: (_call, cb) => cb({ code: grpc.status.UNIMPLEMENTED }),
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    address = `127.0.0.1:${port}`;
  });

  afterAll(() => server.forceShutdown());

  const creds = grpc.credentials.createInsecure();
  const unary = <Res>(f: (cb: grpc.requestCallback<Res>) => void): Promise<Res> =>
    new Promise((resolve, reject) => f((err, res) => (err ? reject(err) : resolve(res!))));
  const statusOf = async (p: Promise<unknown>): Promise<grpc.ServiceError> => {
    try {
      await p;
    } catch (e) {
      return e as grpc.ServiceError;
    }
    throw new Error("call succeeded");
  };

  it("serves unary calls with protobuf-es codecs", async () => {
    const Admin = clientConstructor(AdminService);
    const client = new Admin(address, creds, clientChannelOptions());
    const res = await unary<ListTopicsResponse>((cb) =>
      client.listTopics(create(AdminService.method.listTopics.input, { includeInternal: true }), cb),
    );
    expect(res.topics).toEqual([expect.objectContaining({ name: "orders", partitions: 6, internal: true })]);
    client.close();
  });

  it("serves Produce through the hand-written codec on both ends", async () => {
    const Producer = clientConstructor(ProduceService, produceClientCodecs);
    const client = new Producer(address, creds, clientChannelOptions());
    const batch = Buffer.alloc(100_000, 7);
    const res = await unary<ProduceResponse>((cb) => client.produce({ topic: "orders", partition: 2, recordBatch: batch }, cb));
    expect(res).toMatchObject({ topic: "orders", partitions: [{ partition: 2, baseOffset: 100_000n }] });
    client.close();
  });

  it("pipelines ProduceStream with responses in order", async () => {
    const Producer = clientConstructor(ProduceService, produceClientCodecs);
    const client = new Producer(address, creds, clientChannelOptions());
    const stream = client.produceStream();
    const got: ProduceStreamResponse[] = [];
    const done = new Promise<void>((resolve, reject) => {
      stream.on("data", (m: ProduceStreamResponse) => got.push(m));
      stream.on("end", resolve);
      stream.on("error", reject);
    });
    for (let i = 1; i <= 5; i++) stream.write({ requestId: i, request: { topic: "t", partition: 0, recordBatch: Buffer.alloc(i * 10) } });
    stream.end();
    await done;
    expect(got.map((m) => m.requestId)).toEqual([1n, 2n, 3n, 4n, 5n]);
    expect(got.map((m) => (m.result.case === "response" ? m.result.value.partitions[0]!.baseOffset : -1n))).toEqual([
      10n,
      20n,
      30n,
      40n,
      50n,
    ]);
    client.close();
  });

  it("serves Fetch and Subscribe with batches written from chunks and read as views", async () => {
    const Fetcher = clientConstructor(FetchService, fetchClientCodecs);
    const client = new Fetcher(address, creds, clientChannelOptions());
    const req = create(FetchService.method.fetch.input, {
      partitions: [{ topic: "t", partition: 1, offset: 5n }],
      format: RecordFormat.BATCHES,
    });
    const res = await unary<FetchResponse>((cb) => client.fetch(req, cb));
    const p = res.partitions[0]!;
    expect(p).toMatchObject({ topic: "t", partition: 1, highWatermark: 1024n, nextOffset: 7n });
    expect(Buffer.from(p.recordBatches).equals(Buffer.concat(chunks))).toBe(true);

    const sub = client.subscribe(create(FetchService.method.subscribe.input, {}));
    const messages: SubscribeResponse[] = [];
    for await (const m of sub) messages.push(m as SubscribeResponse);
    expect(messages.map((m) => [m.partitions[0]!.partition, m.partitions[0]!.recordBatches.length])).toEqual([
      [0, 10],
      [1, 10],
      [2, 10],
    ]);
    client.close();
  });

  it("serves a bidi stream with oneofs (Consume)", async () => {
    const Group = clientConstructor(GroupService);
    const client = new Group(address, creds, clientChannelOptions());
    const stream = client.consume();
    const got: ConsumeResponse[] = [];
    const done = new Promise<void>((resolve, reject) => {
      stream.on("data", (m: ConsumeResponse) => got.push(m));
      stream.on("end", resolve);
      stream.on("error", reject);
    });
    stream.write(create(GroupService.method.consume.input, { kind: { case: "subscribe", value: { groupId: "g", topics: ["orders"] } } }));
    stream.write(
      create(GroupService.method.consume.input, {
        kind: { case: "commit", value: { commitId: 7n, offsets: [{ topic: "orders", partition: 0, offset: 42n }] } },
      }),
    );
    stream.end();
    await done;
    expect(got.map((m) => m.kind.case)).toEqual(["assignment", "commitResult"]);
    expect(got[1]!.kind.value).toMatchObject({ commitId: 7n, offsets: [{ topic: "orders", offset: 42n }] });
    client.close();
  });

  it("serves a client stream (InstallSnapshot)", async () => {
    const Controller = clientConstructor(ControllerService);
    const client = new Controller(address, creds, clientChannelOptions());
    const res = await unary<{ bytesReceived: bigint }>((cb) => {
      const stream = client.installSnapshot(cb);
      for (let i = 0; i < 3; i++)
        stream.write(create(ControllerService.method.installSnapshot.input, { data: Buffer.alloc(1000), offset: BigInt(i * 1000) }));
      stream.end();
    });
    expect(res.bytesReceived).toBe(3000n);
    client.close();
  });

  /** A client that sends raw bytes to any method of the server. */
  function rawClient(): grpc.Client {
    return new grpc.Client(address, creds);
  }
  const identity = (b: Buffer): Buffer => b;

  it("answers INVALID_ARGUMENT naming the field for a malformed request (hand-written codec)", async () => {
    const client = rawClient();
    const before = handlerCalls;
    // record_batch (field 4) says 100 bytes, 3 follow.
    const bad = Buffer.from([0x0a, 0x01, 0x74, 0x22, 0x64, 1, 2, 3]);
    const err = await statusOf(
      unary<Buffer>((cb) => client.makeUnaryRequest("/rill.v1.ProduceService/Produce", identity, identity, bad, cb)),
    );
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/^rill\.v1\.ProduceRequest\.record_batch: length 100 runs past the end/);
    expect(handlerCalls).toBe(before);
    client.close();
  });

  it("answers INVALID_ARGUMENT for a malformed request (protobuf-es codec)", async () => {
    const client = rawClient();
    const before = handlerCalls;
    const err = await statusOf(
      unary<Buffer>((cb) =>
        client.makeUnaryRequest("/rill.v1.AdminService/ListTopics", identity, identity, Buffer.from([0x0a, 0x05, 0x01]), cb),
      ),
    );
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/^rill\.v1\.ListTopicsRequest: /);
    expect(handlerCalls).toBe(before);
    client.close();
  });

  it("ends a bidi stream with INVALID_ARGUMENT at a malformed message", async () => {
    const client = rawClient();
    const before = handlerCalls;
    const stream = client.makeBidiStreamRequest("/rill.v1.ProduceService/ProduceStream", identity, identity);
    const err = new Promise<grpc.ServiceError>((resolve) => {
      stream.on("error", resolve);
      stream.on("data", () => {});
    });
    stream.write(Buffer.from(encodeStreamRequest(1)));
    stream.write(Buffer.from([0x12, 0x05, 0x22, 0x64, 0x00, 0x00, 0x00])); // request.record_batch: length 100, 3 bytes
    const status = await err;
    expect(status.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(status.details).toMatch(/^rill\.v1\.ProduceStreamRequest\.request\.record_batch: length 100/);
    expect(handlerCalls).toBe(before + 1);
    client.close();
  });

  it("keeps serving after malformed requests", async () => {
    const Admin = clientConstructor(AdminService);
    const client = new Admin(address, creds, clientChannelOptions());
    const res = await unary<DescribeClusterResponse>((cb) =>
      client.describeCluster(create(AdminService.method.describeCluster.input, {}), cb),
    );
    expect(res.clusterId).toBe("c1");
    client.close();
  });
});

function encodeStreamRequest(id: number): Uint8Array {
  return new Uint8Array([0x08, id, 0x12, 0x03, 0x0a, 0x01, 0x74]); // request_id, request { topic: "t" }
}
