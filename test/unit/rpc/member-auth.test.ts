/**
 * src/rpc/member-auth.ts over a real grpc-js server on 127.0.0.1: a test service named like an
 * internal one (`rill.v1.ControllerService`) and a client one, added with `memberDefinition`,
 * whose request deserializer counts its calls — so "refused before decoding" is measured, not
 * inferred. Covered: a non-member refused on internal paths (and everywhere on a members-only
 * listener) with UNAUTHENTICATED / CLUSTER_MEMBERSHIP_REQUIRED and nothing decoded; a signed
 * member served, keeping the principal, client host and forwarded marker it passes on, which a
 * client's call loses; a signed stream whose messages are each verified, one altered message
 * ending it before it is decoded; a single node refusing even a signed call; internal mutual TLS
 * making a member of a peer with a certificate of the cluster CA.
 */
import { randomBytes } from "node:crypto";
import * as nodeFs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { systemClock } from "../../../src/base/clock.ts";
import { defaultBrokerConfig, parseBrokerConfig } from "../../../src/config/schema.ts";
import { CLIENT_HOST_KEY, PRINCIPAL_KEY, requesterInterceptor, requesterOf } from "../../../src/rpc/call-context.ts";
import { FORWARDED_KEY, isForwarded } from "../../../src/rpc/forward.ts";
import { type MemberPolicy, memberDefinition, memberInterceptor, signingInterceptor, trustMembers } from "../../../src/rpc/member-auth.ts";
import { createServer } from "../../../src/rpc/server-options.ts";
import { internalChannelCredentials, internalServerCredentials } from "../../../src/rpc/tls.ts";
import { MemberSigner, MemberVerifier } from "../../../src/security/member-auth.ts";
import { type CertFiles, TestPki } from "../../fixtures/test-pki.ts";

const SECRET = "unit-test-cluster-secret-0123456789";
const nonce = (): string => randomBytes(16).toString("hex");
const id = (b: Buffer): Buffer => b;

/** How many request messages the server decoded. */
let decoded = 0;
const decode = (b: Buffer): Buffer => {
  decoded++;
  return b;
};

function method(service: string, name: string, stream: boolean): grpc.MethodDefinition<Buffer, Buffer> {
  return {
    path: `/${service}/${name}`,
    requestStream: stream,
    responseStream: stream,
    requestSerialize: (v: Buffer) => v,
    requestDeserialize: decode,
    responseSerialize: id,
    responseDeserialize: id,
  };
}

/** Stand-ins with the names the policy looks at. */
const INTERNAL = { echo: method("rill.v1.ControllerService", "Echo", false), chat: method("rill.v1.ControllerService", "Chat", true) };
const CLIENT = { echo: method("rill.v1.AdminService", "Echo", false) };

/** Answers what the handler saw: the body, the requester and whether the call counts as forwarded. */
function echo(call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>): void {
  const r = requesterOf(call);
  cb(
    null,
    Buffer.from(JSON.stringify({ body: call.request.toString(), principal: r.principal, host: r.host, forwarded: isForwarded(call) })),
  );
}

function chat(call: grpc.ServerDuplexStream<Buffer, Buffer>): void {
  call.on("data", (b: Buffer) => call.write(Buffer.from(`got ${b.toString()}`)));
  call.on("end", () => call.end());
}

interface Server {
  readonly port: number;
  readonly refused: string[];
  close(): void;
}

async function serve(policy: MemberPolicy, credentials = grpc.ServerCredentials.createInsecure()): Promise<Server> {
  const refused: string[] = [];
  const server = createServer(undefined, [
    memberInterceptor({ ...policy, onRefused: (p, _peer, reason) => refused.push(`${p}: ${reason}`) }),
    requesterInterceptor(trustMembers()),
  ]);
  server.addService(memberDefinition(INTERNAL), { echo, chat });
  server.addService(memberDefinition(CLIENT), { echo });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", credentials, (e, p) => (e ? reject(e) : resolve(p))),
  );
  return { port, refused, close: () => server.forceShutdown() };
}

type Unary = (req: Buffer, md: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Buffer) => void) => void;
type Client = grpc.Client & { echo: Unary; chat(md: grpc.Metadata, o: grpc.CallOptions): grpc.ClientDuplexStream<Buffer, Buffer> };
const InternalClient = grpc.makeGenericClientConstructor(INTERNAL, "ControllerService");
const ClientClient = grpc.makeGenericClientConstructor(CLIENT, "AdminService");

const clients: grpc.Client[] = [];
function client(
  ctor: typeof InternalClient,
  port: number,
  o: { signer?: MemberSigner; credentials?: grpc.ChannelCredentials; options?: grpc.ChannelOptions } = {},
): Client {
  const c = new ctor(`127.0.0.1:${port}`, o.credentials ?? grpc.credentials.createInsecure(), {
    ...o.options,
    interceptors: o.signer ? [signingInterceptor(o.signer)] : [],
  }) as unknown as Client;
  clients.push(c);
  return c;
}

function unary(
  c: Client,
  body: string,
  md = new grpc.Metadata(),
): Promise<{ body: string; principal: string; host: string; forwarded: boolean }> {
  return new Promise((resolve, reject) =>
    c.echo(Buffer.from(body), md, { deadline: Date.now() + 5000 }, (e, r) => (e ? reject(e) : resolve(JSON.parse(r!.toString())))),
  );
}

async function refusal(p: Promise<unknown>): Promise<{ code: string; name: string; details: string }> {
  try {
    await p;
  } catch (e) {
    const se = e as grpc.ServiceError;
    return { code: grpc.status[se.code]!, name: String(se.metadata?.get("rill-error-name")[0] ?? ""), details: se.details };
  }
  throw new Error("the call succeeded; it should have been refused");
}

const passedOn = (): grpc.Metadata => {
  const md = new grpc.Metadata();
  md.set(PRINCIPAL_KEY, "User:alice");
  md.set(CLIENT_HOST_KEY, "10.1.2.3");
  md.set(FORWARDED_KEY, "1");
  return md;
};

const signer = (secret = SECRET): MemberSigner => new MemberSigner(secret, 2, systemClock, nonce);
const clientPort = (): MemberPolicy => ({ verifier: new MemberVerifier(SECRET, systemClock), mtls: false, membersOnly: false });

afterAll(() => {
  for (const c of clients) c.close();
});

describe("memberInterceptor with cluster.secret", () => {
  it("refuses a non-member's internal call before decoding it, and logs it", async () => {
    const s = await serve(clientPort());
    try {
      const before = decoded;
      const f = await refusal(unary(client(InternalClient, s.port), "remove-topic orders", passedOn()));
      expect(f).toMatchObject({ code: "UNAUTHENTICATED", name: "CLUSTER_MEMBERSHIP_REQUIRED" });
      expect(f.details).toMatch(/not an authenticated cluster member/);
      expect(decoded).toBe(before);
      expect(s.refused).toEqual([expect.stringMatching(/^\/rill\.v1\.ControllerService\/Echo: not an authenticated/)]);
      // Signed with another secret: refused too, nothing decoded.
      const wrong = await refusal(unary(client(InternalClient, s.port, { signer: signer("another-secret-0123456789") }), "x"));
      expect(wrong.details).toMatch(/does not verify/);
      expect(decoded).toBe(before);
    } finally {
      s.close();
    }
  });

  it("serves a member's signed call, keeping the caller it passes on; a client's call loses those headers", async () => {
    const s = await serve(clientPort());
    try {
      const member = client(InternalClient, s.port, { signer: signer() });
      expect(await unary(member, "hello", passedOn())).toEqual({
        body: "hello",
        principal: "User:alice",
        host: "10.1.2.3",
        forwarded: true,
      });
      const own = await unary(member, "own");
      expect(own).toMatchObject({ body: "own", principal: "User:ANONYMOUS", forwarded: false });
      // A client on the client port: served, but as itself — not forwarded, not alice.
      const plain = await unary(client(ClientClient, s.port), "hi", passedOn());
      expect(plain).toEqual({ body: "hi", principal: "User:ANONYMOUS", host: "127.0.0.1", forwarded: false });
    } finally {
      s.close();
    }
  });

  it("refuses everything from a non-member on a members-only (internal) listener", async () => {
    const s = await serve({ ...clientPort(), membersOnly: true });
    try {
      const before = decoded;
      expect(await refusal(unary(client(ClientClient, s.port), "x", passedOn()))).toMatchObject({ code: "UNAUTHENTICATED" });
      expect(decoded).toBe(before);
      const SignedClient = client(ClientClient, s.port, { signer: signer() });
      expect((await unary(SignedClient, "fwd", passedOn())).principal).toBe("User:alice");
    } finally {
      s.close();
    }
  });

  it("verifies every message of a signed stream; an altered one ends the call before it is decoded", async () => {
    const s = await serve(clientPort());
    try {
      const member = client(InternalClient, s.port, { signer: signer() });
      const call = member.chat(new grpc.Metadata(), { deadline: Date.now() + 5000 });
      const got: string[] = [];
      call.on("data", (b: Buffer) => got.push(b.toString()));
      const ended = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
      for (const m of ["a", "b", "c"]) call.write(Buffer.from(m));
      call.end();
      expect((await ended).code).toBe(grpc.status.OK);
      expect(got).toEqual(["got a", "got b", "got c"]);

      // The same stream, with the third message's bytes altered after it was signed (the
      // interceptor after the signing one sees the signed frame).
      const tamper: grpc.Interceptor = (options, next) => {
        let n = 0;
        return new grpc.InterceptingCall(next(options), {
          sendMessage: (m: Buffer, nextMsg) => nextMsg(++n === 3 ? Buffer.concat([m.subarray(0, m.length - 1), Buffer.from("X")]) : m),
        });
      };
      const c = new InternalClient(`127.0.0.1:${s.port}`, grpc.credentials.createInsecure(), {
        interceptors: [signingInterceptor(signer()), tamper],
      }) as unknown as Client;
      clients.push(c);
      const before = decoded;
      const bad = c.chat(new grpc.Metadata(), { deadline: Date.now() + 5000 });
      bad.on("data", () => {});
      const failed = new Promise<grpc.ServiceError>((resolve) => bad.on("error", resolve));
      for (const m of ["a", "b", "c", "d"]) bad.write(Buffer.from(m));
      bad.end();
      const e = await failed;
      expect(grpc.status[e.code]).toBe("UNAUTHENTICATED");
      expect(e.details).toMatch(/request message 2 does not match its signature/);
      expect(decoded - before).toBe(2);
    } finally {
      s.close();
    }
  });

  it("a single node refuses every internal call, signed or not", async () => {
    const s = await serve({ ...clientPort(), refuseInternal: "a single node serves no internal call" });
    try {
      const before = decoded;
      for (const c of [client(InternalClient, s.port), client(InternalClient, s.port, { signer: signer() })]) {
        const f = await refusal(unary(c, "x"));
        expect(f).toMatchObject({
          code: "UNAUTHENTICATED",
          name: "CLUSTER_MEMBERSHIP_REQUIRED",
          details: expect.stringMatching(/single node/),
        });
      }
      expect(decoded).toBe(before);
    } finally {
      s.close();
    }
  });
});

describe("memberInterceptor with internal mutual TLS", () => {
  let dir: string;
  let ca: CertFiles;
  let node1: CertFiles;
  let node2: CertFiles;
  beforeAll(() => {
    dir = nodeFs.mkdtempSync(path.join(os.tmpdir(), "rill-member-tls-"));
    const pki = new TestPki(dir);
    ca = pki.ca("cluster-ca");
    node1 = pki.leaf(ca, { cn: "node-1", san: "DNS:localhost", serial: 21 });
    node2 = pki.leaf(ca, { cn: "node-2", san: "DNS:localhost", serial: 22 });
  });
  afterAll(() => nodeFs.rmSync(dir, { recursive: true, force: true }));

  const cfg = (n: CertFiles) =>
    parseBrokerConfig(
      { "internal.tls.cert.file": n.cert, "internal.tls.key.file": n.key, "internal.tls.ca.file": ca.cert },
      defaultBrokerConfig,
    );

  it("makes a member of a peer with a certificate of the cluster CA, without a secret", async () => {
    const s = await serve({ verifier: null, mtls: true, membersOnly: true }, internalServerCredentials(cfg(node1)));
    try {
      const peer = client(InternalClient, s.port, {
        credentials: internalChannelCredentials(cfg(node2)),
        options: { "grpc.ssl_target_name_override": "localhost" },
      });
      expect(await unary(peer, "raft", passedOn())).toEqual({ body: "raft", principal: "User:alice", host: "10.1.2.3", forwarded: true });
      // A signed call where this node has no secret is refused, even over mutual TLS.
      const signed = client(InternalClient, s.port, {
        credentials: internalChannelCredentials(cfg(node2)),
        options: { "grpc.ssl_target_name_override": "localhost" },
        signer: signer(),
      });
      expect((await refusal(unary(signed, "x"))).details).toMatch(/no cluster.secret/);
    } finally {
      s.close();
    }
  });
});
