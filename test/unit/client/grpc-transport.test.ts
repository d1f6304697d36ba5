/** GrpcTransport against a tiny grpc-js server on 127.0.0.1: error mapping, streams, fetch views. */
import * as net from "node:net";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Errors, RillError } from "../../../src/base/errors.ts";
import { Admin } from "../../../src/client/admin.ts";
import { Consumer } from "../../../src/client/consumer.ts";
import { ConnectionError } from "../../../src/client/errors.ts";
import { GrpcTransport, checkAddress } from "../../../src/client/grpc-transport.ts";
import { Producer } from "../../../src/client/producer.ts";
import { AdminService } from "../../../src/gen/rill/v1/admin_service_pb.ts";
import { FetchService } from "../../../src/gen/rill/v1/fetch_service_pb.ts";
import { ProduceService } from "../../../src/gen/rill/v1/produce_service_pb.ts";
import { toServiceError } from "../../../src/rpc/errors.ts";
import { type ServiceImplementation, addService } from "../../../src/rpc/grpc-service.ts";
import { createServer } from "../../../src/rpc/server-options.ts";
import { fetchServiceCodecs, produceServiceCodecs } from "../../../src/rpc/wire-codec.ts";
import { decodeRecords, encodeBatch, readBatchHeader, setBaseOffset } from "../../../src/protocol/record-batch.ts";

const noRetry = { retry: { retries: 0 } };
const server = createServer();
let address = "";
const stored: Buffer[] = [];
let nextOffset = 0;
/** When true, InitProducerId answers UNIMPLEMENTED, as a broker without idempotence would. */
let noInitProducerId = false;

const unimplemented = (_call: unknown, cb: grpc.sendUnaryData<never>): void => cb({ code: grpc.status.UNIMPLEMENTED });

const admin: ServiceImplementation<typeof AdminService> = {
  createTopics: unimplemented,
  deleteTopics: unimplemented,
  listTopics: (_call, cb) => cb(toServiceError(new RillError(Errors.UNKNOWN_TOPIC_OR_PARTITION, 'topics: topic "x" does not exist'))),
  describeTopics: (call, cb) =>
    cb(
      null,
      create(AdminService.method.describeTopics.output, {
        topics: call.request.topics.map((name) => ({ name, partitions: [{ partition: 0, highWatermark: BigInt(nextOffset) }] })),
      }),
    ),
  createPartitions: unimplemented,
  describeConfigs: unimplemented,
  alterConfigs: unimplemented,
  describeCluster: (_call, cb) => cb({ code: grpc.status.INVALID_ARGUMENT, details: "no such thing" }),
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

const produce: ServiceImplementation<typeof ProduceService, typeof produceServiceCodecs> = {
  produce: unimplemented,
  produceStream: (call) => {
    call.on("data", (m) => {
      const batch = Buffer.from(m.request!.recordBatch);
      setBaseOffset(batch, 0, nextOffset);
      const base = nextOffset;
      nextOffset += readBatchHeader(batch).lastOffsetDelta + 1;
      stored.push(batch);
      const response = create(ProduceService.method.produce.output, {
        topic: m.request!.topic,
        partitions: [{ partition: m.request!.partition ?? 0, baseOffset: BigInt(base), logAppendTimeMs: -1n }],
      });
      call.write(
        create(ProduceService.method.produceStream.output, { requestId: m.requestId, result: { case: "response", value: response } }),
      );
    });
    call.on("end", () => call.end());
  },
  initProducerId: (_call, cb) =>
    noInitProducerId
      ? cb({ code: grpc.status.UNIMPLEMENTED, details: "" })
      : cb(null, create(ProduceService.method.initProducerId.output, { producerId: 7n, producerEpoch: 0 })),
  endTransaction: unimplemented,
};

const fetch: ServiceImplementation<typeof FetchService, typeof fetchServiceCodecs> = {
  fetch: (call, cb) => {
    const p = call.request.partitions[0]!;
    const from = Number(p.offset);
    const chunks = stored.filter((b) => readBatchHeader(b).lastOffset >= from);
    cb(null, { partitions: [{ topic: p.topic, partition: p.partition, highWatermark: nextOffset, recordBatches: chunks, nextOffset }] });
  },
  subscribe: (call) => call.end(),
  listOffsets: (call, cb) =>
    cb(
      null,
      create(FetchService.method.listOffsets.output, {
        partitions: call.request.partitions.map((q) => ({ topic: q.topic, partition: q.partition, offset: 0n, timestampMs: -1n })),
      }),
    ),
};

beforeAll(async () => {
  addService(server, AdminService, admin);
  addService(server, ProduceService, produce, produceServiceCodecs);
  addService(server, FetchService, fetch, fetchServiceCodecs);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  address = `127.0.0.1:${port}`;
});

afterAll(() => server.forceShutdown());

/** A port on 127.0.0.1 that nothing listens on. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

describe("GrpcTransport", () => {
  it("turns a status with rill-error-code into a RillError of that catalog entry", async () => {
    const a = new Admin({ bootstrap: address, ...noRetry });
    const e = await a.listTopics().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RillError);
    expect((e as RillError).kind).toBe(Errors.UNKNOWN_TOPIC_OR_PARTITION);
    expect((e as RillError).message).toBe('topics: topic "x" does not exist');
    await a.close();
  });

  it("maps a status without a code by its gRPC status", async () => {
    const a = new Admin({ bootstrap: address, ...noRetry });
    const e = await a.describeCluster().catch((x: unknown) => x);
    expect((e as RillError).kind).toBe(Errors.INVALID_ARGUMENT);
    await a.close();
  });

  it("reports a broker that is not running as a ConnectionError naming the address", async () => {
    const port = await closedPort();
    const a = new Admin({ bootstrap: `127.0.0.1:${port}`, retry: { retries: 1, initialBackoffMs: 10, backoffMsMax: 10 } });
    const e = await a.listTopics().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ConnectionError);
    expect((e as Error).message).toBe(`cannot reach broker at 127.0.0.1:${port}: connection refused`);
    await a.close();
  });

  it("checks the bootstrap address", () => {
    expect(checkAddress("127.0.0.1:50051")).toBe("127.0.0.1:50051");
    expect(checkAddress("[::1]:9")).toBe("[::1]:9");
    expect(() => new GrpcTransport("localhost")).toThrow(/bootstrap: "localhost" is not host:port/);
    expect(() => new GrpcTransport("h:99999")).toThrow(/host:port/);
  });

  it("produces over ProduceStream and reads back through the Fetch codec", async () => {
    const p = new Producer({ bootstrap: address, lingerMs: 1, batchBytes: 2048, ...noRetry });
    const values = Array.from({ length: 60 }, (_, i) => `value-${i}`.padEnd(100, "."));
    const results = await Promise.all(values.map((value) => p.send({ topic: "t", partition: 0, value })));
    expect(results.map((r) => r.offset)).toEqual(values.map((_, i) => i));
    expect(stored.length).toBeGreaterThan(1); // several batches, pipelined on one stream
    expect(stored.flatMap((b) => decodeRecords(b).map((r) => r.value!.toString()))).toEqual(values);
    expect(stored.map((b) => readBatchHeader(b).producerId)).toEqual(stored.map(() => 7)); // from InitProducerId
    await p.close();

    const c = new Consumer({ bootstrap: address, ...noRetry });
    c.assign([{ topic: "t", partition: 0, offset: 30 }]);
    const got: string[] = [];
    for await (const r of c) {
      got.push(r.value!.toString());
      if (got.length === 30) break;
    }
    expect(got).toEqual(values.slice(30));
    await c.close();
  });

  it("says how to go on when the broker has no InitProducerId", async () => {
    noInitProducerId = true;
    try {
      const p = new Producer({ bootstrap: address, ...noRetry });
      const e = await p.send({ topic: "t", partition: 0, value: "x" }).catch((x: unknown) => x);
      expect((e as Error).message).toMatch(
        /^InitProducerId: UNIMPLEMENTED: .*\(the broker has no idempotent producer support: pass idempotent: false\)$/,
      );
      await p.close();
    } finally {
      noInitProducerId = false;
    }
  });

  it("sends the batch bytes as encoded", async () => {
    const t = new GrpcTransport(address);
    const batch = encodeBatch([{ value: "raw", timestampMs: 5 }]);
    const responses: bigint[] = [];
    await new Promise<void>((resolve, reject) => {
      const s = t.openProduceStream({ onResponse: (m) => responses.push(m.requestId), onError: reject, onEnd: resolve });
      s.write({ requestId: 41, request: { topic: "t", partition: 0, recordBatch: batch } });
      s.write({ requestId: 42, request: { topic: "t", partition: 0, recordBatch: batch } });
      s.end();
    });
    expect(responses).toEqual([41n, 42n]);
    expect(decodeRecords(stored[stored.length - 1]!)[0]!.value!.toString()).toBe("raw");
    t.close();
  });
});
