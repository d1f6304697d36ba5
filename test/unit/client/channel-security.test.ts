/**
 * The SDK's `tls`, `credentials` and `clientId` options (src/client/channel-security.ts) against
 * a real grpc-js server on 127.0.0.1 that echoes the headers it received: the Basic
 * `authorization` and `rill-client-id` headers on every call, over TLS and plaintext, through the
 * transports the SDK opens (GrpcTransport's clients and a GroupService client sharing its
 * channel); and the options' bad values refused by name.
 */
import * as nodeFs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AUTHORIZATION_KEY, CLIENT_ID_KEY, type ChannelSecurity, channelSecurity } from "../../../src/client/channel-security.ts";
import { connect } from "../../../src/client/connection.ts";
import { GrpcGroupTransport } from "../../../src/client/group-transport.ts";
import { GrpcTransport } from "../../../src/client/grpc-transport.ts";
import { AdminService } from "../../../src/gen/rill/v1/admin_service_pb.ts";
import { GroupService } from "../../../src/gen/rill/v1/group_service_pb.ts";
import { serverCredentials } from "../../../src/rpc/tls.ts";
import { type CertFiles, TestPki } from "../../fixtures/test-pki.ts";

let dir: string;
let ca: CertFiles;
let server: CertFiles;

beforeAll(() => {
  dir = nodeFs.mkdtempSync(path.join(os.tmpdir(), "rill-sdk-tls-"));
  const pki = new TestPki(dir);
  ca = pki.ca("sdk-ca");
  server = pki.leaf(ca, { cn: "localhost", san: "DNS:localhost", serial: 7 });
});

afterAll(() => nodeFs.rmSync(dir, { recursive: true, force: true }));

/**
 * A server answering AdminService.DescribeCluster and GroupService.ListGroups with an error whose
 * details are the request headers it got (`key=value;...`): what the client sent, seen from the
 * other side of the wire.
 */
async function headerEcho(credentials: grpc.ServerCredentials): Promise<{ address: string; close: () => void }> {
  const s = new grpc.Server();
  const echo = (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>): void => {
    const md = call.metadata.getMap();
    const seen = [AUTHORIZATION_KEY, CLIENT_ID_KEY].map((k) => `${k}=${md[k] ?? ""}`).join(";");
    cb({ code: grpc.status.FAILED_PRECONDITION, details: seen });
  };
  const raw = (name: string, method: string) => ({
    [method]: {
      path: `/${name}/${method[0]!.toUpperCase()}${method.slice(1)}`,
      requestStream: false,
      responseStream: false,
      requestSerialize: (b: Buffer) => b,
      requestDeserialize: (b: Buffer) => b,
      responseSerialize: (b: Buffer) => b,
      responseDeserialize: (b: Buffer) => b,
    },
  });
  s.addService(raw(AdminService.typeName, "describeCluster"), { describeCluster: echo });
  s.addService(raw(GroupService.typeName, "listGroups"), { listGroups: echo });
  const port = await new Promise<number>((resolve, reject) =>
    s.bindAsync("127.0.0.1:0", credentials, (e, p) => (e ? reject(e) : resolve(p))),
  );
  return { address: `127.0.0.1:${port}`, close: () => s.forceShutdown() };
}

/** The headers the server saw on a DescribeCluster and a ListGroups through `security`. */
async function headersSeen(address: string, security: ChannelSecurity): Promise<string[]> {
  const t = new GrpcTransport(address, { security });
  const g = new GrpcGroupTransport(address, { channel: t.channel, security: t.security });
  try {
    const out: string[] = [];
    for (const p of [t.describeCluster({}, { timeoutMs: 5_000 }), g.listGroups({}, { timeoutMs: 5_000 })]) {
      out.push(
        await p.then(
          () => "answered",
          (e: Error) => e.message,
        ),
      );
    }
    return out;
  } finally {
    g.close();
    t.close();
  }
}

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

describe("credentials and clientId", () => {
  it("send authorization: Basic and rill-client-id on every call, over TLS", async () => {
    const s = await headerEcho(serverCredentials({ certFile: server.cert, keyFile: server.key }, "none"));
    try {
      const security = channelSecurity({ ca: ca.cert, serverName: "localhost" }, { user: "alice", password: "pä:ss word" }, "orders-app");
      const want = `authorization=${basic("alice", "pä:ss word")};rill-client-id=orders-app`;
      const seen = await headersSeen(s.address, security);
      expect(seen).toHaveLength(2);
      for (const m of seen) expect(m).toContain(want);
    } finally {
      s.close();
    }
  });

  it("are sent in plaintext too when no tls is given; nothing is sent without them", async () => {
    const s = await headerEcho(grpc.ServerCredentials.createInsecure());
    try {
      for (const m of await headersSeen(s.address, channelSecurity(undefined, { user: "bob", password: "pw" })))
        expect(m).toContain(`authorization=${basic("bob", "pw")};rill-client-id=`);
      for (const m of await headersSeen(s.address, channelSecurity(undefined))) expect(m).toContain("authorization=;rill-client-id=");
    } finally {
      s.close();
    }
  });

  it("reach the default transports a client opens through connect()", async () => {
    const s = await headerEcho(serverCredentials({ certFile: server.cert, keyFile: server.key }, "none"));
    try {
      const conn = connect({
        bootstrap: s.address,
        tls: { ca: nodeFs.readFileSync(ca.cert, "utf8"), serverName: "localhost" },
        credentials: { user: "carol", password: "secret" },
        clientId: "c1",
        retry: { retries: 0 },
      });
      const t = conn.pool.get(s.address) as GrpcTransport;
      const got = await t.describeCluster({}, { timeoutMs: 5_000 }).then(
        () => "answered",
        (e: Error) => e.message,
      );
      expect(got).toContain(`authorization=${basic("carol", "secret")};rill-client-id=c1`);
      conn.transport.close();
    } finally {
      s.close();
    }
  });
});

describe("bad options", () => {
  it("are refused by name", () => {
    expect(() => channelSecurity(undefined, { user: "a:b", password: "x" })).toThrow(
      /^credentials\.user: must be a non-empty name without ':'/,
    );
    expect(() => channelSecurity(undefined, { user: "", password: "x" })).toThrow(/^credentials\.user/);
    expect(() => channelSecurity(undefined, { user: "a", password: "" })).toThrow(/^credentials\.password: must not be empty/);
    expect(() => channelSecurity(undefined, undefined, "naïve")).toThrow(/^clientId: .* printable ASCII/);
    expect(() => channelSecurity({ ca: ca.cert, serverName: "127.0.0.1:1" })).toThrow(/^tls\.serverName: .* is not a DNS name/);
    expect(() => channelSecurity({ cert: server.cert })).toThrow(/^tls\.key: must be set with tls\.cert/);
    expect(() => channelSecurity({ ca: path.join(dir, "missing.pem") })).toThrow(/^tls\.ca: cannot read .*missing\.pem/);
    expect(() => channelSecurity({ ca: "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n" })).toThrow(
      /^tls\.ca: not a PEM certificate/,
    );
    expect(() => channelSecurity({ cert: server.cert, key: nodeFs.readFileSync(ca.key) })).toThrow(
      /^tls\.key: the private key does not match/,
    );
  });
});
