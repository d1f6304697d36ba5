/**
 * The security admin handlers on an in-memory metadata store, no sockets: a node that is not the
 * active controller salts a password itself and passes on only salt and SaltedPassword; the
 * controller stores only the credential; ACL changes are forwarded as they came.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../../src/base/clock.ts";
import { SeededRandom } from "../../../src/base/random.ts";
import { LocalMetadataStore } from "../../../src/metadata/store.ts";
import { verifyPassword } from "../../../src/security/scram.ts";
import type { ControllerPort } from "../../../src/service/admin-ports.ts";
import { SecurityAdminHandlers } from "../../../src/service/admin-security.ts";
import type { AdminChange, AdminChanges } from "../../../src/service/admin-types.ts";
import { MemoryFileSystem } from "../../../src/storage/fs.ts";

const open: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of open.splice(0)) await close();
});

function handlers(salt?: () => Uint8Array) {
  const store = LocalMetadataStore.open(new MemoryFileSystem(), "/d", new ManualClock());
  open.push(() => store.close());
  return { store, h: new SecurityAdminHandlers({ store, random: new SeededRandom(3), ...(salt ? { salt } : {}) }) };
}

/** The active controller's port, counting the changes that ran here. */
function activePort(): ControllerPort & { committed: number } {
  return {
    forwarded: false,
    committed: 0,
    isActive: () => true,
    forward: () => Promise.reject(new Error("the active controller forwards nothing")),
    committedHere() {
      this.committed++;
    },
  };
}

/** A follower's port: passes each change to `controller` as a forwarded request, recording what travelled. */
function followerPort(controller: SecurityAdminHandlers, sent: unknown[]): ControllerPort {
  const forwardedHere: ControllerPort = { ...activePort(), forwarded: true, isActive: () => false };
  return {
    forwarded: false,
    isActive: () => false,
    committedHere: () => {
      throw new Error("a follower commits nothing");
    },
    forward: async <K extends AdminChange>(change: K, input: AdminChanges[K]["input"]): Promise<AdminChanges[K]["result"]> => {
      sent.push(structuredClone(input));
      if (change === "alterUserScramCredentials")
        return (await controller.alterUserScramCredentials(
          input as AdminChanges["alterUserScramCredentials"]["input"],
          forwardedHere,
        )) as AdminChanges[K]["result"];
      if (change === "createAcls")
        return (await controller.createAcls(input as AdminChanges["createAcls"]["input"], forwardedHere)) as AdminChanges[K]["result"];
      return (await controller.deleteAcls(input as AdminChanges["deleteAcls"]["input"], forwardedHere)) as AdminChanges[K]["result"];
    },
  };
}

const empty = new Uint8Array();

describe("SCRAM users through a node that is not the controller", () => {
  it("salts the password where it arrived and forwards only salt and SaltedPassword", async () => {
    const controller = handlers();
    const follower = handlers(() => Buffer.from("fixed-salt-for-the-test"));
    const sent: unknown[] = [];
    const res = await follower.h.alterUserScramCredentials(
      {
        upsertions: [
          { name: "alice", mechanism: "SCRAM-SHA-256", iterations: 0, password: "pa55word", salt: empty, saltedPassword: empty },
          { name: "bad", mechanism: "SCRAM-SHA-256", iterations: 1, password: "x", salt: empty, saltedPassword: empty },
        ],
        deletions: [{ name: "ghost", mechanism: "SCRAM-SHA-512" }],
      },
      followerPort(controller.h, sent),
    );
    expect(res.results.map((r) => [r.user, r.error?.kind.name])).toEqual([
      ["alice", undefined],
      ["bad", "UNACCEPTABLE_CREDENTIAL"],
      ["ghost", "RESOURCE_NOT_FOUND"],
    ]);
    expect(sent).toHaveLength(1);
    expect(JSON.stringify(sent)).not.toContain("pa55word");
    const travelled = sent[0] as AdminChanges["alterUserScramCredentials"]["input"];
    expect(travelled.upsertions.map((u) => [u.name, u.password, u.iterations, Buffer.from(u.salt).toString()])).toEqual([
      ["alice", "", 4096, "fixed-salt-for-the-test"],
    ]);
    expect(travelled.upsertions[0]!.saltedPassword).toHaveLength(32);
    // The controller's image holds the credential; the follower's own store is untouched.
    const cred = controller.store.image.scramCredential("alice", "SCRAM-SHA-256")!;
    expect(Buffer.from(cred.salt, "base64").toString()).toBe("fixed-salt-for-the-test");
    expect(verifyPassword(cred, "pa55word")).toBe(true);
    expect(follower.store.image.scramUsers.size).toBe(0);
  });

  it("a user refused where the request arrived is not forwarded at all", async () => {
    const controller = handlers();
    const follower = handlers();
    const sent: unknown[] = [];
    const res = await follower.h.alterUserScramCredentials(
      {
        upsertions: [{ name: "x", mechanism: "SCRAM-SHA-1", iterations: 0, password: "p", salt: empty, saltedPassword: empty }],
        deletions: [],
      },
      followerPort(controller.h, sent),
    );
    expect(res.results.map((r) => r.error?.kind.name)).toEqual(["UNSUPPORTED_SASL_MECHANISM"]);
    expect(sent).toEqual([]);
  });

  it("accepts Kafka's form (salt and SaltedPassword) and refuses a password given with it", async () => {
    const { h, store } = handlers();
    const port = activePort();
    const salted = Buffer.alloc(64, 7);
    const res = await h.alterUserScramCredentials(
      {
        upsertions: [
          { name: "k", mechanism: "SCRAM-SHA-512", iterations: 4096, password: "", salt: Buffer.from("s"), saltedPassword: salted },
          { name: "both", mechanism: "SCRAM-SHA-512", iterations: 4096, password: "p", salt: Buffer.from("s"), saltedPassword: salted },
          {
            name: "short",
            mechanism: "SCRAM-SHA-512",
            iterations: 4096,
            password: "",
            salt: Buffer.from("s"),
            saltedPassword: salted.subarray(1),
          },
        ],
        deletions: [],
      },
      port,
    );
    expect(res.results.map((r) => [r.user, r.error?.kind.name])).toEqual([
      ["k", undefined],
      ["both", "UNACCEPTABLE_CREDENTIAL"],
      ["short", "UNACCEPTABLE_CREDENTIAL"],
    ]);
    expect(res.results[1]!.error?.message).toMatch(/not both/);
    expect(store.image.scramCredential("k", "SCRAM-SHA-512")?.iterations).toBe(4096);
    expect(port.committed).toBe(1);
  });
});

describe("ACLs through a node that is not the controller", () => {
  it("forwards creations and deletions as they came; the controller checks and stores them", async () => {
    const controller = handlers();
    const follower = handlers();
    const sent: unknown[] = [];
    const port = followerPort(controller.h, sent);
    const binding = {
      principal: "User:alice",
      host: "*",
      resourceType: "TOPIC",
      resourceName: "t",
      patternType: "LITERAL",
      operation: "WRITE",
      permission: "ALLOW",
    };
    const created = await follower.h.createAcls({ creations: [binding, { ...binding, resourceType: undefined }] }, port);
    expect(created.results.map((r) => r.error?.message)).toEqual([undefined, "creations[1]: acl binding: resourceType is required"]);
    expect(controller.h.describeAcls({ filter: {} }).bindings).toEqual([binding]);
    const deleted = await follower.h.deleteAcls({ filters: [{ operation: "WRITE" }] }, port);
    expect(deleted.results).toEqual([{ matched: [binding] }]);
    expect(controller.store.image.acls.size).toBe(0);
    expect(sent).toHaveLength(2);
  });
});
