/**
 * SASL and TLS on the Kafka listener against a real broker (RawKafka, with a SCRAM client written
 * here from RFC 5802): the users of `auth.bootstrap.users.file` log in with SCRAM-SHA-256/512 and,
 * over TLS, PLAIN; a wrong password and an unknown user get the same SASL_AUTHENTICATION_FAILED;
 * nothing but ApiVersions and SASL is served before; the principal then meets the same ACLs as
 * gRPC; a client certificate names the caller (mTLS) without SASL.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import * as nodeFs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Broker } from "../../src/broker/broker.ts";
import { CreateAclsRequest, CreateAclsResponse } from "../../src/kafka/apis/create-acls.ts";
import { CreateTopicsRequest, CreateTopicsResponse } from "../../src/kafka/apis/create-topics.ts";
import { SaslAuthenticateRequest, SaslAuthenticateResponse } from "../../src/kafka/apis/sasl-authenticate.ts";
import { SaslHandshakeRequest, SaslHandshakeResponse } from "../../src/kafka/apis/sasl-handshake.ts";
import { TestPki } from "../fixtures/test-pki.ts";
import { RawKafka } from "./kafka-helpers.ts";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";

let dir: string;
let broker: Broker;
let pki: TestPki;
let ca: { cert: string; key: string };
let plainAddress: string;

const PASSWORDS = { admin: "admin-secret", alice: "alice-secret", bob: "bob-secret" };

beforeAll(async () => {
  dir = tmpDir("rill-kafka-sasl-");
  pki = new TestPki(path.join(dir, "pki"));
  ca = pki.ca("test-ca");
  const server = pki.leaf(ca, { cn: "localhost", san: "DNS:localhost", serial: 1 });
  const users = path.join(dir, "users.txt");
  nodeFs.writeFileSync(
    users,
    Object.entries(PASSWORDS)
      .map(([u, p]) => `${u}:${p}`)
      .join("\n"),
  );
  broker = await Broker.start({
    dataDir: path.join(dir, "data"),
    listen: "127.0.0.1:0",
    config: {
      kafkaListen: "127.0.0.1:0",
      authMethods: ["password", "mtls"],
      authBootstrapUsersFile: users,
      authorizerEnable: true,
      superUsers: "User:admin",
      tlsCertFile: server.cert,
      tlsKeyFile: server.key,
      tlsCaFile: ca.cert,
      tlsClientAuth: "request",
    },
    shutdownGraceMs: 500,
  });
  plainAddress = broker.kafkaAddress as string;
}, 30_000);

afterAll(async () => {
  await broker?.close();
  rmTmp(dir);
});

/** A TLS connection to the Kafka listener, optionally with a client certificate. */
function connect(client?: { cert: string; key: string }): Promise<RawKafka> {
  return RawKafka.connectTls(plainAddress, {
    ca: nodeFs.readFileSync(ca.cert),
    servername: "localhost",
    ...(client ? { cert: nodeFs.readFileSync(client.cert), key: nodeFs.readFileSync(client.key) } : {}),
  });
}

const handshake = (c: RawKafka, mechanism: string) => c.request(17, 1, SaslHandshakeRequest, { mechanism }, SaslHandshakeResponse);
const authenticate = (c: RawKafka, bytes: Buffer, v = 2) =>
  c.request(36, v, SaslAuthenticateRequest, { authBytes: bytes }, SaslAuthenticateResponse);

/** The client's side of SCRAM (RFC 5802), written here from the RFC. */
async function scramLogin(c: RawKafka, mechanism: "SCRAM-SHA-256" | "SCRAM-SHA-512", user: string, password: string) {
  const h = mechanism === "SCRAM-SHA-256" ? "sha256" : "sha512";
  const bytes = h === "sha256" ? 32 : 64;
  expect((await handshake(c, mechanism)).errorCode).toBe(0);
  const nonce = randomBytes(16).toString("base64");
  const first = `n=${user},r=${nonce}`;
  const a1 = await authenticate(c, Buffer.from(`n,,${first}`));
  if (a1.errorCode !== 0) return a1;
  const serverFirst = a1.authBytes.toString();
  const attrs = Object.fromEntries(serverFirst.split(",").map((kv) => [kv[0], kv.slice(2)]));
  expect(attrs.r?.startsWith(nonce)).toBe(true);
  const salted = pbkdf2Sync(password, Buffer.from(attrs.s as string, "base64"), Number(attrs.i), bytes, h);
  const clientKey = createHmac(h, salted).update("Client Key").digest();
  const storedKey = createHash(h).update(clientKey).digest();
  const withoutProof = `c=biws,r=${attrs.r}`;
  const authMessage = `${first},${serverFirst},${withoutProof}`;
  const signature = createHmac(h, storedKey).update(authMessage).digest();
  const proof = Buffer.from(clientKey.map((b, i) => b ^ (signature[i] as number)));
  const a2 = await authenticate(c, Buffer.from(`${withoutProof},p=${proof.toString("base64")}`));
  if (a2.errorCode === 0) {
    const serverKey = createHmac(h, salted).update("Server Key").digest();
    expect(a2.authBytes.toString()).toBe(`v=${createHmac(h, serverKey).update(authMessage).digest("base64")}`);
  }
  return a2;
}

const createTopic = (c: RawKafka, name: string) =>
  c.request(
    19,
    5,
    CreateTopicsRequest,
    { topics: [{ name, numPartitions: 1, replicationFactor: 1 }], timeoutMs: 5000 },
    CreateTopicsResponse,
  );

describe("SASL on the Kafka listener", () => {
  it("offers PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 over TLS", async () => {
    const c = await connect();
    const res = await handshake(c, "GSSAPI");
    expect(res).toEqual({ errorCode: 33, mechanisms: ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] });
    c.close();
  });

  it("over plaintext offers SCRAM only (PLAIN would send the password in clear), and SCRAM works there", async () => {
    const own = tmpDir("rill-kafka-sasl-plain-");
    const users = path.join(own, "users.txt");
    nodeFs.writeFileSync(users, "carol:carol-secret\n");
    const b = await Broker.start({
      dataDir: path.join(own, "data"),
      listen: "127.0.0.1:0",
      config: { kafkaListen: "127.0.0.1:0", authMethods: ["password"], authBootstrapUsersFile: users },
      shutdownGraceMs: 500,
    });
    try {
      const c = await RawKafka.connect(b.kafkaAddress as string);
      expect(await handshake(c, "PLAIN")).toEqual({ errorCode: 33, mechanisms: ["SCRAM-SHA-256", "SCRAM-SHA-512"] });
      expect((await scramLogin(c, "SCRAM-SHA-256", "carol", "carol-secret")).errorCode).toBe(0);
      expect((await createTopic(c, "by-carol")).topics[0]?.errorCode).toBe(0);
      c.close();
    } finally {
      await b.close();
      rmTmp(own);
    }
  });

  it("closes a connection that sends another request before authenticating", async () => {
    const c = await connect();
    void createTopic(c, "early").catch(() => {});
    await c.closed;
  });

  it("logs in with SCRAM-SHA-256 and SCRAM-SHA-512 and acts as that user", async () => {
    for (const mechanism of ["SCRAM-SHA-256", "SCRAM-SHA-512"] as const) {
      const c = await connect();
      const res = await scramLogin(c, mechanism, "admin", PASSWORDS.admin);
      expect(res.errorCode).toBe(0);
      const created = await createTopic(c, `by-admin-${mechanism}`);
      expect(created.topics[0]?.errorCode).toBe(0);
      c.close();
    }
  });

  it("answers a wrong password and an unknown user alike: SASL_AUTHENTICATION_FAILED (58)", async () => {
    const wrong = await scramLogin(await connect(), "SCRAM-SHA-256", "alice", "not-her-password");
    const unknown = await scramLogin(await connect(), "SCRAM-SHA-256", "mallory", "whatever");
    expect(wrong.errorCode).toBe(58);
    expect(unknown.errorCode).toBe(58);
    expect(unknown.errorMessage).toBe(wrong.errorMessage);
    const badPlain = await connect();
    expect((await handshake(badPlain, "PLAIN")).errorCode).toBe(0);
    const res = await authenticate(badPlain, Buffer.from("\0alice\0wrong"), 0);
    expect(res.errorCode).toBe(58);
  });

  it("logs in with PLAIN over TLS; the principal meets the ACLs: bob is denied until allowed", async () => {
    const bob = await connect();
    expect((await handshake(bob, "PLAIN")).errorCode).toBe(0);
    expect((await authenticate(bob, Buffer.from("\0bob\0bob-secret"), 1)).errorCode).toBe(0);
    const denied = await createTopic(bob, "bobs");
    expect(denied.topics[0]?.errorCode).toBe(29);
    const admin = await connect();
    expect((await scramLogin(admin, "SCRAM-SHA-512", "admin", PASSWORDS.admin)).errorCode).toBe(0);
    const acl = await admin.request(
      30,
      3,
      CreateAclsRequest,
      {
        creations: [
          {
            resourceType: 2,
            resourceName: "bobs",
            resourcePatternType: 3,
            principal: "User:bob",
            host: "*",
            operation: 5,
            permissionType: 3,
          },
        ],
      },
      CreateAclsResponse,
    );
    expect(acl.results[0]?.errorCode).toBe(0);
    // Bob himself may not create ACLs: CLUSTER_AUTHORIZATION_FAILED.
    const bobAcl = await bob.request(
      30,
      3,
      CreateAclsRequest,
      { creations: [{ resourceType: 2, resourceName: "x", principal: "User:bob", host: "*", operation: 2, permissionType: 3 }] },
      CreateAclsResponse,
    );
    expect(bobAcl.results[0]?.errorCode).toBe(31);
    const allowed = await createTopic(bob, "bobs");
    expect(allowed.topics[0]?.errorCode).toBe(0);
    bob.close();
    admin.close();
  });

  it("takes a client certificate's CN as the principal (mTLS), without SASL", async () => {
    const cert = pki.leaf(ca, { cn: "admin", serial: 7 });
    const c = await connect(cert);
    const created = await createTopic(c, "by-cert");
    expect(created.topics[0]?.errorCode).toBe(0);
    c.close();
  });
});
