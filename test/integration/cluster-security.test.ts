/**
 * ACLs and SCRAM users on a 3-node cluster started the documented way (cluster-harness.ts): the
 * bootstrap users file given to every node is written once, by the first controller; changes sent
 * to a node that is not the controller are forwarded there (a password as salt and SaltedPassword
 * only) and reach every node's image.
 */
import * as nodeFs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cluster, until } from "./cluster-harness.ts";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";

let c: Cluster;
let files: string;

beforeAll(async () => {
  files = tmpDir("rill-cluster-sec-");
  const usersFile = path.join(files, "users");
  nodeFs.writeFileSync(usersFile, "admin:b00tstrap-pw\n");
  c = await Cluster.start({ set: { "auth.bootstrap.users.file": usersFile }, name: "rill-cluster-sec-" });
  await c.waitForStable(30_000);
}, 60_000);

afterAll(async () => {
  await c?.close();
  rmTmp(files);
});

describe("security metadata on a 3-node cluster", () => {
  it("writes the bootstrap users once, whichever node leads", async () => {
    for (const nd of c.nodes) {
      const users = await until(
        async () => {
          const u = await nd.admin().describeUserScramCredentials();
          return u.length > 0 ? u : null;
        },
        10_000,
        `node ${nd.id} to know the bootstrap users`,
      );
      expect(users).toEqual([
        {
          user: "admin",
          credentials: [
            { mechanism: "SCRAM-SHA-256", iterations: 4096 },
            { mechanism: "SCRAM-SHA-512", iterations: 4096 },
          ],
        },
      ]);
    }
    const writes = c.nodes.flatMap((nd) => nd.logs("created the users of auth.bootstrap.users.file"));
    expect(writes).toHaveLength(1);
    expect(c.nodes.map((nd) => nd.tail(200)).join("\n")).not.toContain("b00tstrap-pw");
  });

  it("forwards ACL and user changes from a follower to the controller; every node sees them", async () => {
    const { leader } = await c.waitForStable(30_000);
    const follower = c.nodes.find((nd) => nd.id !== leader)!;
    const admin = follower.admin();
    await admin.createAcls([
      {
        principal: "User:alice",
        host: "*",
        resourceType: "TOPIC",
        resourceName: "orders-",
        patternType: "PREFIXED",
        operation: "WRITE",
        permission: "ALLOW",
      },
    ]);
    await admin.alterUserScramCredentials({ upsertions: [{ name: "alice", mechanism: "SCRAM-SHA-512", password: "f0rwarded-pw" }] });
    // Read-your-writes on the node that forwarded; the others follow the metadata log.
    expect((await admin.describeAcls()).map((b) => `${b.principal} ${b.operation} ${b.resourceName}`)).toEqual([
      "User:alice WRITE orders-",
    ]);
    for (const nd of c.nodes) {
      await until(
        async () => {
          const a = nd.admin();
          const [acls, users] = await Promise.all([a.describeAcls({ principal: "User:alice" }), a.describeUserScramCredentials(["alice"])]);
          return acls.length === 1 && users[0]?.credentials[0]?.mechanism === "SCRAM-SHA-512";
        },
        10_000,
        `node ${nd.id} to see alice's ACL and credential`,
      );
    }
    const removed = await admin.deleteAcls([{ principal: "User:alice" }]);
    expect(removed[0]).toHaveLength(1);
    for (const nd of c.nodes)
      await until(async () => (await nd.admin().describeAcls()).length === 0, 10_000, `node ${nd.id} to drop the ACL`);
    expect(c.nodes.map((nd) => nd.tail(200)).join("\n")).not.toContain("f0rwarded-pw");
  });
});
