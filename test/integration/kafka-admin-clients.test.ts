/**
 * Real Kafka admin clients, each its own process, against the Kafka listener: kafkajs's admin
 * (createTopics, createPartitions, describeConfigs, alterConfigs, describeCluster, ACLs,
 * deleteTopicRecords, deleteTopics), @platformatic/kafka's Admin (flexible versions) and
 * confluent-kafka-python's AdminClient (librdkafka 2.0.2: create/delete topics,
 * partitions, describe configs). With SASL: librdkafka (confluent-kafka-python, kcat) and kafkajs
 * log in with SCRAM-SHA-256/512 and PLAIN over TLS (a test CA made with openssl), a wrong password
 * is refused, and the SASL principal meets the same ACLs as over gRPC.
 */
import * as nodeFs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Broker } from "../../src/broker/broker.ts";
import type { MetadataImage } from "../../src/metadata/image.ts";
import { CreateAclsRequest, CreateAclsResponse } from "../../src/kafka/apis/create-acls.ts";
import { SaslAuthenticateRequest, SaslAuthenticateResponse } from "../../src/kafka/apis/sasl-authenticate.ts";
import { SaslHandshakeRequest, SaslHandshakeResponse } from "../../src/kafka/apis/sasl-handshake.ts";
import { TestPki } from "../fixtures/test-pki.ts";
import { bun, run } from "./kafka-clients.ts";
import { RawKafka } from "./kafka-helpers.ts";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";

const CLIENTS = path.join(import.meta.dirname, "kafka-clients");
const imageOf = (b: Broker) => (b as unknown as { parts: { meta: { store: { image: MetadataImage } } } }).parts.meta.store.image;

/** Runs kafkajs-admin.mjs; its JSON line. */
async function kafkajsAdmin(broker: string, scenario: string, arg: object): Promise<Record<string, unknown>> {
  const r = await run("node", [path.join(CLIENTS, "kafkajs-admin.mjs"), broker, scenario, JSON.stringify(arg)], { timeoutMs: 60_000 });
  return JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}") as Record<string, unknown>;
}

interface PyOut {
  results: unknown[];
  errors: string[];
}

/** Runs python-admin.py under Debian's python3 (confluent_kafka). */
async function pyAdmin(conf: object, actions: object[]): Promise<PyOut> {
  const r = await run("/usr/bin/python3", [path.join(CLIENTS, "python-admin.py"), JSON.stringify(conf), JSON.stringify(actions)], {
    timeoutMs: 60_000,
  });
  if (r.code !== 0) throw new Error(`python-admin.py failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}") as PyOut;
}

describe("real admin clients, no authentication", () => {
  let dir: string;
  let broker: Broker;
  beforeAll(async () => {
    dir = tmpDir("rill-kafka-admin-clients-");
    broker = await Broker.start({ dataDir: dir, listen: "127.0.0.1:0", config: { kafkaListen: "127.0.0.1:0" }, shutdownGraceMs: 500 });
  });
  afterAll(async () => {
    await broker?.close();
    rmTmp(dir);
  });

  it("kafkajs admin: topics, partitions, configs, cluster and ACLs", async () => {
    const out = await kafkajsAdmin(broker.kafkaAddress as string, "admin", { topic: "kj-admin", produce: true });
    expect(out.error).toBeUndefined();
    expect(out).toMatchObject({
      created: true,
      createdAgain: false,
      partitions: 3,
      configs: { "retention.ms": "3600000", "cleanup.policy": "delete" },
      retentionAfter: "7200000",
      cluster: { clusterId: broker.clusterId, controller: 1, brokers: [broker.kafkaAddress] },
      acls: [
        {
          resourceType: 2,
          resourceName: "kj-admin",
          resourcePatternType: 3,
          acls: [{ principal: "User:reader", host: "*", operation: 3, permissionType: 3 }],
        },
      ],
      deletedAcls: [1],
      // Four records produced to partition 0, those below offset 2 deleted (deleteTopicRecords).
      offsetsAfterDelete: [["2", "4"]],
      topicsAfter: false,
    });
    expect(imageOf(broker).topics.has("kj-admin")).toBe(false);
    expect(imageOf(broker).aclBindings()).toEqual([]);
  }, 90_000);

  it("@platformatic/kafka Admin (flexible versions): create, grow, alter and describe configs, delete", async () => {
    const r = await bun(path.join(CLIENTS, "platformatic-admin.ts"), [broker.kafkaAddress as string, "pf-admin"]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}")).toEqual({
      created: [{ name: "pf-admin", partitions: 2, replicas: 1 }],
      retention: "7200000",
      before: true,
      after: false,
    });
    expect(imageOf(broker).topics.has("pf-admin")).toBe(false);
  }, 90_000);

  it("confluent-kafka-python AdminClient: create, grow, describe configs, delete", async () => {
    const out = await pyAdmin({ "bootstrap.servers": broker.kafkaAddress }, [
      { do: "create", topics: ["py-a", "py-b"], partitions: 2, config: { "retention.ms": "60000" } },
      { do: "create", topics: ["py-a"] },
      { do: "partitions", topic: "py-a", count: 4 },
      { do: "describe", topic: "py-a", keys: ["retention.ms", "cleanup.policy"] },
      { do: "delete", topics: ["py-b", "py-never"] },
      { do: "list" },
    ]);
    expect(out.results).toEqual([
      { "py-a": null, "py-b": null },
      { "py-a": "TOPIC_ALREADY_EXISTS" },
      { "py-a": null },
      { "retention.ms": "60000", "cleanup.policy": "delete" },
      { "py-b": null, "py-never": "UNKNOWN_TOPIC_OR_PART" },
      ["py-a"],
    ]);
    expect(imageOf(broker).topics.get("py-a")?.partitions.length).toBe(4);
  }, 90_000);
});

describe("real clients with SASL and TLS", () => {
  let dir: string;
  let broker: Broker;
  let caFile: string;
  const users = { admin: "admin-secret", bob: "bob-secret" };

  beforeAll(async () => {
    dir = tmpDir("rill-kafka-sasl-clients-");
    const pki = new TestPki(path.join(dir, "pki"));
    const ca = pki.ca("test-ca");
    caFile = ca.cert;
    const server = pki.leaf(ca, { cn: "localhost", san: "DNS:localhost,IP:127.0.0.1", serial: 1 });
    const file = path.join(dir, "users.txt");
    nodeFs.writeFileSync(
      file,
      Object.entries(users)
        .map(([u, p]) => `${u}:${p}`)
        .join("\n"),
    );
    broker = await Broker.start({
      dataDir: path.join(dir, "data"),
      listen: "127.0.0.1:0",
      config: {
        kafkaListen: "127.0.0.1:0",
        authMethods: ["password"],
        authBootstrapUsersFile: file,
        authorizerEnable: true,
        superUsers: "User:admin",
        tlsCertFile: server.cert,
        tlsKeyFile: server.key,
      },
      shutdownGraceMs: 500,
    });
  }, 30_000);
  afterAll(async () => {
    await broker?.close();
    rmTmp(dir);
  });

  const sasl = (mechanism: string, user: string, password: string) => ({
    "bootstrap.servers": broker.kafkaAddress,
    "security.protocol": "SASL_SSL",
    "ssl.ca.location": caFile,
    "sasl.mechanisms": mechanism,
    "sasl.username": user,
    "sasl.password": password,
  });

  it("librdkafka logs in with SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN; bob is denied what admin may do", async () => {
    const scram = await pyAdmin(sasl("SCRAM-SHA-256", "admin", users.admin), [{ do: "create", topics: ["sasl-a"] }, { do: "list" }]);
    expect(scram.results).toEqual([{ "sasl-a": null }, ["sasl-a"]]);
    const scram512 = await pyAdmin(sasl("SCRAM-SHA-512", "admin", users.admin), [{ do: "list" }]);
    expect(scram512.results).toEqual([["sasl-a"]]);
    const bob = await pyAdmin(sasl("PLAIN", "bob", users.bob), [{ do: "create", topics: ["bobs"] }, { do: "list" }]);
    // Bob may neither create a topic nor see one he has no DESCRIBE on.
    expect(bob.results).toEqual([{ bobs: "TOPIC_AUTHORIZATION_FAILED" }, []]);
    expect(bob.errors).toEqual([]);
  }, 90_000);

  it("librdkafka with a wrong password: authentication fails (SASL_AUTHENTICATION_FAILED)", async () => {
    const out = await pyAdmin(sasl("SCRAM-SHA-256", "admin", "wrong"), [{ do: "list", timeout: 5 }]);
    expect(out.errors, JSON.stringify(out)).toContain("_AUTHENTICATION");
    const kcat = await run(
      "kcat",
      [
        "-L",
        "-b",
        broker.kafkaAddress as string,
        "-X",
        "security.protocol=SASL_SSL",
        "-X",
        `ssl.ca.location=${caFile}`,
        "-X",
        "sasl.mechanisms=PLAIN",
        "-X",
        "sasl.username=bob",
        "-X",
        "sasl.password=nope",
        "-m",
        "5",
      ],
      { timeoutMs: 30_000 },
    );
    expect(kcat.code).not.toBe(0);
    expect(kcat.stderr).toMatch(/Authentication failed|SASL authentication error/i);
  }, 90_000);

  it("kcat -L with SCRAM-SHA-256 lists the brokers", async () => {
    const r = await run(
      "kcat",
      [
        "-L",
        "-b",
        broker.kafkaAddress as string,
        "-X",
        "security.protocol=SASL_SSL",
        "-X",
        `ssl.ca.location=${caFile}`,
        "-X",
        "sasl.mechanisms=SCRAM-SHA-256",
        "-X",
        "sasl.username=admin",
        "-X",
        `sasl.password=${users.admin}`,
        "-m",
        "10",
      ],
      { timeoutMs: 30_000 },
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`broker 1 at ${broker.kafkaAddress}`);
  }, 60_000);

  it("a SASL user produces and consumes what the ACLs allow, and is refused the rest", async () => {
    const admin = await RawKafka.connectTls(broker.kafkaAddress as string, { ca: nodeFs.readFileSync(caFile), servername: "localhost" });
    expect((await admin.request(17, 1, SaslHandshakeRequest, { mechanism: "PLAIN" }, SaslHandshakeResponse)).errorCode).toBe(0);
    const login = await admin.request(
      36,
      2,
      SaslAuthenticateRequest,
      { authBytes: Buffer.from(`\0admin\0${users.admin}`) },
      SaslAuthenticateResponse,
    );
    expect(login.errorCode).toBe(0);
    const allow = (resourceType: number, resourceName: string, operation: number) => ({
      resourceType,
      resourceName,
      resourcePatternType: 3,
      principal: "User:bob",
      host: "*",
      operation,
      permissionType: 3,
    });
    // bob may WRITE and READ topic bob-ok and READ group bob-group; nothing on bob-no.
    const acls = await admin.request(
      30,
      3,
      CreateAclsRequest,
      { creations: [allow(2, "bob-ok", 4), allow(2, "bob-ok", 3), allow(3, "bob-group", 3)] },
      CreateAclsResponse,
    );
    expect(acls.results.map((r) => r.errorCode)).toEqual([0, 0, 0]);
    admin.close();
    const created = await pyAdmin(sasl("SCRAM-SHA-256", "admin", users.admin), [{ do: "create", topics: ["bob-ok", "bob-no"] }]);
    expect(created.results).toEqual([{ "bob-ok": null, "bob-no": null }]);
    const pc = (topic: string) =>
      run(
        "/usr/bin/python3",
        [path.join(CLIENTS, "python-produce-consume.py"), JSON.stringify(sasl("SCRAM-SHA-256", "bob", users.bob)), topic, "bob-group"],
        { timeoutMs: 60_000 },
      );
    const ok = await pc("bob-ok");
    expect(JSON.parse(ok.stdout.trim()), ok.stderr).toEqual({ produce: [null], consume: "hello" });
    const no = await pc("bob-no");
    expect(JSON.parse(no.stdout.trim()), no.stderr).toEqual({
      produce: ["TOPIC_AUTHORIZATION_FAILED"],
      consume: "TOPIC_AUTHORIZATION_FAILED",
    });
  }, 120_000);

  it("kafkajs admin over SASL_SSL with SCRAM-SHA-512", async () => {
    const out = await kafkajsAdmin(broker.kafkaAddress as string, "admin", {
      topic: "kj-sasl",
      sasl: { mechanism: "scram-sha-512", username: "admin", password: users.admin },
      ssl: { ca: caFile },
    });
    expect(out.error).toBeUndefined();
    expect(out).toMatchObject({ created: true, partitions: 3, retentionAfter: "7200000", topicsAfter: false });
  }, 90_000);
});
