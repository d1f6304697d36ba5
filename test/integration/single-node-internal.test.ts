/**
 * A single node serves no internal call to anyone (issue 13): every method of ControllerService
 * and ReplicationService, unary and streaming, sent to an in-process single node — unsigned, or
 * signed with the very secret the node was given — is refused UNAUTHENTICATED with
 * CLUSTER_MEMBERSHIP_REQUIRED, and the node's metadata does not move. Its client services keep
 * serving.
 */
import { randomBytes } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { systemClock } from "../../src/base/clock.ts";
import { Broker } from "../../src/broker/broker.ts";
import { Admin } from "../../src/client/admin.ts";
import { ControllerService } from "../../src/gen/rill/v1/controller_service_pb.ts";
import { ReplicationService } from "../../src/gen/rill/v1/replication_service_pb.ts";
import { constructorOf } from "../../src/rpc/internal-clients.ts";
import { signingInterceptor } from "../../src/rpc/member-auth.ts";
import { MemberSigner } from "../../src/security/member-auth.ts";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";

const SECRET = "single-node-secret-0123456789";
let dir: string;
let broker: Broker;
const clients: grpc.Client[] = [];

beforeAll(async () => {
  dir = tmpDir("rill-single-internal-");
  broker = await Broker.start({ dataDir: dir, listen: "127.0.0.1:0", config: { clusterSecret: SECRET } });
}, 30_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await broker?.close();
  if (dir) rmTmp(dir);
});

type AnyClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

function clientOf(service: typeof ControllerService | typeof ReplicationService, signed: boolean): AnyClient {
  const Ctor = constructorOf(service);
  const signer = new MemberSigner(SECRET, 2, systemClock, () => randomBytes(16).toString("hex"));
  const c = new Ctor(broker.address, grpc.credentials.createInsecure(), { interceptors: signed ? [signingInterceptor(signer)] : [] });
  clients.push(c);
  return c as unknown as AnyClient;
}

/** Calls `method` (any kind) with an empty request and resolves with how it ended. */
function callEmpty(c: AnyClient, service: typeof ControllerService | typeof ReplicationService, name: string): Promise<grpc.StatusObject> {
  const m = service.methods.find((x) => x.localName === name)!;
  const req = create(m.input, {});
  const deadline = Date.now() + 5000;
  return new Promise((resolve) => {
    const done = (e: grpc.ServiceError | null): void =>
      resolve(e ? { code: e.code, details: e.details, metadata: e.metadata } : { code: 0, details: "", metadata: new grpc.Metadata() });
    const fn = c[name]!.bind(c) as (...args: unknown[]) => grpc.ClientWritableStream<unknown> & grpc.ClientReadableStream<unknown>;
    if (m.methodKind === "unary") fn(req, new grpc.Metadata(), { deadline }, done);
    else if (m.methodKind === "client_streaming") {
      const call = fn(new grpc.Metadata(), { deadline }, done);
      call.write(req);
      call.end();
    } else {
      const call = fn(new grpc.Metadata(), { deadline });
      call.on("data", () => {});
      call.on("error", done);
      call.on("status", (s: grpc.StatusObject) => s.code === 0 && resolve(s));
      call.write(req);
      call.end();
    }
  });
}

describe("a single node", () => {
  it("refuses every internal method, unsigned or signed with its own secret, and its metadata does not move", async () => {
    const admin = new Admin({ bootstrap: broker.address });
    try {
      const before = await admin.describeCluster();
      let calls = 0;
      for (const service of [ControllerService, ReplicationService]) {
        for (const signed of [false, true]) {
          const c = clientOf(service, signed);
          for (const m of service.methods) {
            const s = await callEmpty(c, service, m.localName);
            expect({ method: m.name, signed, code: grpc.status[s.code], name: s.metadata.get("rill-error-name")[0] }, s.details).toEqual({
              method: m.name,
              signed,
              code: "UNAUTHENTICATED",
              name: "CLUSTER_MEMBERSHIP_REQUIRED",
            });
            expect(s.details).toMatch(/a single node serves no internal call/);
            calls++;
          }
        }
      }
      expect(calls).toBe(2 * (ControllerService.methods.length + ReplicationService.methods.length));
      const after = await admin.describeCluster();
      expect(after.brokers).toEqual(before.brokers);
      expect(after.controllerId).toBe(before.controllerId);
      // The client services keep serving.
      await admin.createTopics([{ name: "still-serving", partitions: 1, replicationFactor: 1 }]);
      expect((await admin.listTopics()).map((t) => t.name)).toContain("still-serving");
    } finally {
      await admin.close();
    }
  }, 60_000);
});
