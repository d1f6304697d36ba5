/**
 * InitProducerId through a node that is not the active controller: the node forwards it, and
 * answers only once its own metadata has applied the new producer id (the controller's answer
 * names the metadata offset that holds it, `rill-metadata-offset`, as Admin calls do). Two
 * ProduceService servers on 127.0.0.1 in this process: the "controller" over a real replica
 * manager and metadata store, and a forwarding node whose route records the offsets it is asked
 * to wait for.
 */
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InitProducerIdRequestSchema, type InitProducerIdResponse, ProduceService } from "../../../src/gen/rill/v1/produce_service_pb.ts";
import { clientChannelOptions } from "../../../src/protocol/channel-options.ts";
import { clientConstructor } from "../../../src/protocol/grpc-service.ts";
import { type ControllerRoute, localRoute } from "../../../src/rpc/forward.ts";
import { addService } from "../../../src/rpc/grpc-service.ts";
import { produceService } from "../../../src/rpc/produce-service.ts";
import { createServer } from "../../../src/rpc/server-options.ts";
import { produceServiceCodecs } from "../../../src/rpc/wire-codec.ts";
import { type Core, openCore } from "../service/helpers.ts";

const servers: grpc.Server[] = [];
let controller: Core;
let forwarding: Core;
let controllerAddress = "";
let forwardingAddress = "";
/** Offsets the forwarding node was asked to wait for. */
const waitedFor: number[] = [];

async function serve(impl: ReturnType<typeof produceService>): Promise<string> {
  const server = createServer();
  servers.push(server);
  addService(server, ProduceService, impl, produceServiceCodecs);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  return `127.0.0.1:${port}`;
}

beforeAll(async () => {
  controller = openCore();
  controllerAddress = await serve(
    produceService(
      controller.rm,
      localRoute(() => controller.rm.image.offset),
    ),
  );
  forwarding = openCore();
  const route: ControllerRoute = {
    isActive: () => false,
    leaderAddress: () => controllerAddress,
    metadataOffset: () => forwarding.rm.image.offset,
    waitForOffset: async (offset) => {
      waitedFor.push(offset);
    },
  };
  forwardingAddress = await serve(produceService(forwarding.rm, route));
});

afterAll(async () => {
  for (const s of servers) s.forceShutdown();
  await controller.close();
  await forwarding.close();
});

function initProducerId(address: string): Promise<InitProducerIdResponse> {
  const Client = clientConstructor(ProduceService);
  const client = new Client(address, grpc.credentials.createInsecure(), clientChannelOptions());
  return new Promise<InitProducerIdResponse>((resolve, reject) => {
    client.initProducerId(
      create(InitProducerIdRequestSchema, { transactionalId: "" }),
      new grpc.Metadata(),
      { deadline: Date.now() + 10_000 },
      (e: grpc.ServiceError | null, r?: InitProducerIdResponse) => (e ? reject(e) : resolve(r!)),
    );
  }).finally(() => client.close());
}

describe("InitProducerId through a node that is not the controller", () => {
  it("is committed by the controller, and the forwarding node waits for the offset that holds the new id", async () => {
    const before = controller.rm.image.offset;
    const r = await initProducerId(forwardingAddress);
    expect(r.producerId).toBe(0n);
    expect(controller.rm.image.producerEpochs.get(0)).toBe(0);
    expect(controller.rm.image.offset).toBeGreaterThan(before);
    expect(waitedFor).toEqual([controller.rm.image.offset]);
  });
});
