/**
 * The security admin RPCs on a live node over gRPC (issue 13 items 3, 4 and 6, data side):
 * CreateAcls / DescribeAcls / DeleteAcls and AlterUserScramCredentials /
 * DescribeUserScramCredentials. Bad bindings and credentials get their specific error and
 * store nothing; what is stored survives a restart, from a metadata snapshot (the node snapshots
 * every 2 entries here) as well as from the log.
 */
import * as nodeFs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Broker } from "../../src/broker/broker.ts";
import {
  AclOperation,
  AclPatternType,
  AclPermission,
  AclResourceType,
  type AclBindingSchema,
  type AlterUserScramCredentialsResponse,
  AlterUserScramCredentialsRequestSchema,
  type CreateAclsResponse,
  CreateAclsRequestSchema,
  type DeleteAclsResponse,
  DeleteAclsRequestSchema,
  type DescribeAclsResponse,
  DescribeAclsRequestSchema,
  type DescribeUserScramCredentialsResponse,
  DescribeUserScramCredentialsRequestSchema,
  ScramMechanism,
} from "../../src/gen/rill/v1/security_pb.ts";
import { call, clients, errorName, msg, rmTmp, tmpDir } from "./rpc-helpers.ts";

type BindingInit = MessageInitShape<typeof AclBindingSchema>;

const readOrders: BindingInit = {
  principal: "User:alice",
  host: "*",
  resourceType: AclResourceType.TOPIC,
  resourceName: "orders",
  patternType: AclPatternType.LITERAL,
  operation: AclOperation.READ,
  permission: AclPermission.ALLOW,
};

let dir: string;
let broker: Broker;
let c: ReturnType<typeof clients>;

async function start(): Promise<void> {
  broker = await Broker.start({ dataDir: dir, listen: "127.0.0.1:0", config: { snapshotIntervalRecords: 2 } });
  c = clients(broker.address);
}

async function stop(): Promise<void> {
  c.close();
  await broker.close();
}

const createAcls = (creations: BindingInit[]) =>
  call<unknown, CreateAclsResponse>(c.admin, "createAcls", msg(CreateAclsRequestSchema, { creations }));
const describeAcls = (filter?: MessageInitShape<typeof DescribeAclsRequestSchema>["filter"]) =>
  call<unknown, DescribeAclsResponse>(c.admin, "describeAcls", msg(DescribeAclsRequestSchema, filter ? { filter } : {}));
const deleteAcls = (filters: NonNullable<MessageInitShape<typeof DeleteAclsRequestSchema>["filters"]>) =>
  call<unknown, DeleteAclsResponse>(c.admin, "deleteAcls", msg(DeleteAclsRequestSchema, { filters }));
const alterUsers = (init: MessageInitShape<typeof AlterUserScramCredentialsRequestSchema>) =>
  call<unknown, AlterUserScramCredentialsResponse>(c.admin, "alterUserScramCredentials", msg(AlterUserScramCredentialsRequestSchema, init));
const describeUsers = (users: string[] = []) =>
  call<unknown, DescribeUserScramCredentialsResponse>(
    c.admin,
    "describeUserScramCredentials",
    msg(DescribeUserScramCredentialsRequestSchema, { users }),
  );

/** The stored bindings as short strings, for comparisons. */
async function stored(): Promise<string[]> {
  const res = await describeAcls();
  return res.bindings.map((b) => `${b.principal} ${AclOperation[b.operation]} ${AclResourceType[b.resourceType]}:${b.resourceName}`);
}

beforeAll(async () => {
  dir = tmpDir("rill-sec-");
  await start();
});

afterAll(async () => {
  await stop().catch(() => {});
  rmTmp(dir);
});

describe("ACL admin over gRPC", () => {
  it("creates bindings, answers duplicates as created, and refuses bad ones with INVALID_REQUEST naming the field", async () => {
    const res = await createAcls([
      readOrders,
      { ...readOrders, operation: AclOperation.WRITE },
      readOrders,
      { ...readOrders, principal: "alice" },
      { ...readOrders, resourceType: AclResourceType.CLUSTER, resourceName: "prod", operation: AclOperation.ALTER },
      { ...readOrders, operation: 42 as AclOperation },
      { ...readOrders, operation: AclOperation.UNSPECIFIED },
      { ...readOrders, resourceName: "" },
      { ...readOrders, patternType: AclPatternType.MATCH },
      { ...readOrders, host: "db.example.com" },
    ]);
    expect(res.results.map((r) => r.error?.name)).toEqual([
      undefined,
      undefined,
      undefined,
      "INVALID_REQUEST",
      "INVALID_REQUEST",
      "INVALID_REQUEST",
      "INVALID_REQUEST",
      "INVALID_REQUEST",
      "INVALID_REQUEST",
      "INVALID_REQUEST",
    ]);
    const messages = res.results.slice(3).map((r) => r.error?.message);
    expect(messages[0]).toMatch(/^creations\[3\]: acl binding: principal "alice" is not of the form User:<name>/);
    expect(messages[1]).toMatch(/creations\[4\].*only CLUSTER resource name is kafka-cluster/);
    expect(messages[2]).toMatch(/creations\[5\].*unknown operation "42"/);
    expect(messages[3]).toMatch(/creations\[6\].*operation is required/);
    expect(messages[4]).toMatch(/creations\[7\].*resource name is empty/);
    expect(messages[5]).toMatch(/creations\[8\].*unknown pattern type "MATCH"/);
    expect(messages[6]).toMatch(/creations\[9\].*not an IP address/);
    expect(res.results[3]!.binding?.principal).toBe("alice");
    expect(await stored()).toEqual(["User:alice READ TOPIC:orders", "User:alice WRITE TOPIC:orders"]);
  });

  it("describes with Kafka's filter semantics (MATCH: literal, wildcard and prefixes)", async () => {
    await createAcls([
      { ...readOrders, principal: "User:*", resourceName: "*" },
      { ...readOrders, principal: "User:bob", patternType: AclPatternType.PREFIXED, resourceName: "ord" },
      { ...readOrders, resourceType: AclResourceType.GROUP, resourceName: "g1" },
    ]);
    const match = await describeAcls({ resourceType: AclResourceType.TOPIC, resourceName: "orders-eu", patternType: AclPatternType.MATCH });
    expect(match.bindings.map((b) => `${b.principal}:${b.resourceName}`)).toEqual(["User:*:*", "User:bob:ord"]);
    const bob = await describeAcls({ principal: "User:bob" });
    expect(bob.bindings).toHaveLength(1);
    expect(bob.bindings[0]!.patternType).toBe(AclPatternType.PREFIXED);
    expect((await describeAcls({ resourceType: AclResourceType.GROUP })).bindings.map((b) => b.resourceName)).toEqual(["g1"]);
    const bad = await describeAcls({ patternType: AclPatternType.MATCH }).catch((e: unknown) => e);
    expect(errorName(bad)).toBe("INVALID_REQUEST");
    expect(String((bad as Error).message)).toMatch(/filter: acl filter: pattern type MATCH needs a resource name/);
  });

  it("deletes what each filter matches; a bad filter deletes nothing and says why", async () => {
    const before = await stored();
    const res = await deleteAcls([
      { principal: "User:alice", resourceType: AclResourceType.TOPIC, operation: AclOperation.WRITE },
      { principal: "nobody" },
      { resourceType: AclResourceType.GROUP },
      { resourceType: AclResourceType.GROUP },
    ]);
    expect(res.results.map((r) => [r.error?.name, r.matched.length])).toEqual([
      [undefined, 1],
      ["INVALID_REQUEST", 0],
      [undefined, 1],
      [undefined, 1],
    ]);
    expect(res.results[1]!.error?.message).toMatch(/^filters\[1\]: acl filter: principal "nobody"/);
    expect(await stored()).toEqual(before.filter((b) => !b.includes("WRITE") && !b.includes("GROUP")));
    const none = await deleteAcls([]).catch((e: unknown) => e);
    expect(errorName(none)).toBe("INVALID_REQUEST");
  });
});

describe("SCRAM users over gRPC", () => {
  it("adds users (the broker salts the password), lists mechanisms and iterations, never keys", async () => {
    const res = await alterUsers({
      upsertions: [
        { name: "alice", mechanism: ScramMechanism.SCRAM_SHA_256, password: "alice-secret" },
        { name: "alice", mechanism: ScramMechanism.SCRAM_SHA_512, iterations: 8192, password: "alice-secret" },
        { name: "bob", mechanism: ScramMechanism.SCRAM_SHA_512, password: "bob-secret" },
      ],
    });
    expect(res.results.map((r) => [r.user, r.error?.name])).toEqual([
      ["alice", undefined],
      ["bob", undefined],
    ]);
    const users = await describeUsers();
    expect(users.results.map((u) => [u.user, u.credentials.map((x) => `${ScramMechanism[x.mechanism]}/${x.iterations}`)])).toEqual([
      ["alice", ["SCRAM_SHA_256/4096", "SCRAM_SHA_512/8192"]],
      ["bob", ["SCRAM_SHA_512/4096"]],
    ]);
  });

  it("refuses bad credentials per user with Kafka's codes and changes none of that user's", async () => {
    const res = await alterUsers({
      upsertions: [
        { name: "carol", mechanism: ScramMechanism.SCRAM_SHA_256, password: "ok-password" },
        { name: "carol", mechanism: ScramMechanism.SCRAM_SHA_512, iterations: 100, password: "x" },
        { name: "dave", mechanism: ScramMechanism.UNSPECIFIED, password: "x" },
        { name: "erin", mechanism: ScramMechanism.SCRAM_SHA_256, password: "" },
        { name: "a:b", mechanism: ScramMechanism.SCRAM_SHA_256, password: "x" },
        { name: "bob", mechanism: ScramMechanism.SCRAM_SHA_256, password: "y" },
      ],
      deletions: [
        { name: "bob", mechanism: ScramMechanism.SCRAM_SHA_256 },
        { name: "frank", mechanism: ScramMechanism.SCRAM_SHA_256 },
      ],
    });
    expect(res.results.map((r) => [r.user, r.error?.name])).toEqual([
      ["carol", "UNACCEPTABLE_CREDENTIAL"],
      ["dave", "UNSUPPORTED_SASL_MECHANISM"],
      ["erin", "UNACCEPTABLE_CREDENTIAL"],
      ["a:b", "UNACCEPTABLE_CREDENTIAL"],
      ["bob", "DUPLICATE_RESOURCE"],
      ["frank", "RESOURCE_NOT_FOUND"],
    ]);
    expect(res.results[0]!.error?.message).toMatch(/^upsertions\[1\]: SCRAM iterations 100: must be an integer from 4096 to 16384/);
    expect((await describeUsers()).results.map((u) => u.user)).toEqual(["alice", "bob"]);
    const named = await describeUsers(["bob", "zed"]);
    expect(named.results.map((u) => [u.user, u.error?.name])).toEqual([
      ["bob", undefined],
      ["zed", "RESOURCE_NOT_FOUND"],
    ]);
  });

  it("deletes one mechanism of a user; the user goes with its last credential", async () => {
    const res = await alterUsers({ deletions: [{ name: "bob", mechanism: ScramMechanism.SCRAM_SHA_512 }] });
    expect(res.results).toHaveLength(1);
    expect(res.results[0]!.error).toBeUndefined();
    expect((await describeUsers()).results.map((u) => u.user)).toEqual(["alice"]);
  });

  it("keeps no password on disk", () => {
    const hits: string[] = [];
    const walk = (d: string): void => {
      for (const name of nodeFs.readdirSync(d)) {
        const full = path.join(d, name);
        if (nodeFs.statSync(full).isDirectory()) walk(full);
        else if (nodeFs.readFileSync(full).includes("alice-secret")) hits.push(full);
      }
    };
    walk(dir);
    expect(hits).toEqual([]);
  });
});

describe("after a restart", () => {
  it("keeps the ACLs and credentials (rebuilt from the metadata snapshot and log)", async () => {
    const acls = await stored();
    const users = (await describeUsers()).results;
    expect(acls.length).toBeGreaterThan(0);
    await stop();
    const raftDir = path.join(dir, "metadata", "raft");
    expect(nodeFs.readdirSync(raftDir).some((f) => f.includes("snapshot"))).toBe(true);
    await start();
    expect(await stored()).toEqual(acls);
    expect((await describeUsers()).results).toEqual(users);
  });
});

describe("auth.bootstrap.users.file", () => {
  it("creates its users once, when the cluster is created; a restart with another file changes nothing", async () => {
    const own = tmpDir("rill-sec-boot-");
    const file = path.join(own, "users.txt");
    nodeFs.writeFileSync(file, "# first admins\nadmin:adm1n-pw\nops:0ps-pw\n");
    const startOwn = () =>
      Broker.start({ dataDir: path.join(own, "data"), listen: "127.0.0.1:0", config: { authBootstrapUsersFile: file } });
    let b = await startOwn();
    let cl = clients(b.address);
    const users = async () =>
      (
        await call<unknown, DescribeUserScramCredentialsResponse>(
          cl.admin,
          "describeUserScramCredentials",
          msg(DescribeUserScramCredentialsRequestSchema, {}),
        )
      ).results.map((u) => `${u.user}:${u.credentials.map((x) => ScramMechanism[x.mechanism]).join("+")}`);
    try {
      expect(await users()).toEqual(["admin:SCRAM_SHA_256+SCRAM_SHA_512", "ops:SCRAM_SHA_256+SCRAM_SHA_512"]);
      const del = await call<unknown, AlterUserScramCredentialsResponse>(
        cl.admin,
        "alterUserScramCredentials",
        msg(AlterUserScramCredentialsRequestSchema, {
          deletions: [
            { name: "ops", mechanism: ScramMechanism.SCRAM_SHA_256 },
            { name: "ops", mechanism: ScramMechanism.SCRAM_SHA_512 },
          ],
        }),
      );
      expect(del.results[0]!.error).toBeUndefined();
      cl.close();
      await b.close();
      nodeFs.writeFileSync(file, "admin:adm1n-pw\nops:0ps-pw\nnewcomer:n3w-pw\n");
      b = await startOwn();
      cl = clients(b.address);
      expect(await users()).toEqual(["admin:SCRAM_SHA_256+SCRAM_SHA_512"]);
    } finally {
      cl.close();
      await b.close().catch(() => {});
    }
    // A bad line stops the start with INVALID_CONFIG naming the line, not the password in it.
    nodeFs.writeFileSync(file, "admin:adm1n-pw\nbad-line-s3cret\n");
    const err = await startOwn().then(
      async (started) => {
        await started.close();
        return null;
      },
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(/auth\.bootstrap\.users\.file: .*users\.txt line 2: not of the form name:password/);
    expect(err?.message).not.toMatch(/s3cret/);
    rmTmp(own);
  });
});
