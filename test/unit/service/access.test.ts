import { describe, expect, it } from "vitest";
import type { RillError } from "../../../src/base/errors.ts";
import { MetadataImage } from "../../../src/metadata/image.ts";
import type { AclBinding, Principal } from "../../../src/metadata/security-types.ts";
import type { MetadataChange } from "../../../src/metadata/store.ts";
import { Authorizer } from "../../../src/security/acl.ts";
import { RPC_ACCESS } from "../../../src/security/operations.ts";
import type { Requester } from "../../../src/security/requester.ts";
import { Access } from "../../../src/service/access.ts";
import { RequestAccess } from "../../../src/service/authorize.ts";

const alice: Requester = { principal: "User:alice", host: "10.0.0.1", clientId: "" };
const root: Requester = { principal: "User:root", host: "10.0.0.1", clientId: "" };

function allow(
  principal: Principal,
  resourceType: AclBinding["resourceType"],
  resourceName: string,
  operation: AclBinding["operation"],
): AclBinding {
  return { principal, host: "*", resourceType, resourceName, patternType: "LITERAL", operation, permission: "ALLOW" };
}

/** An Access over a list of bindings that the test changes, announcing each change as the store would. */
function setup(initial: AclBinding[] = []) {
  let bindings = initial;
  const listeners = new Set<(c: MetadataChange) => void>();
  const image = new MetadataImage();
  let built = 0;
  const access = new Access({
    enabled: true,
    superUsers: ["User:root"],
    store: {
      image,
      onChange: (fn) => {
        listeners.add(fn);
        return () => listeners.delete(fn);
      },
    },
    bindings: () => bindings,
    touchesAcls: (c) => c.records.length > 0,
    authorizer: (b, s) => {
      built++;
      return new Authorizer(b, new Set(s));
    },
  });
  const change = (next: AclBinding[]) => {
    bindings = next;
    for (const fn of listeners) fn({ records: [{ type: "producer-ids", v: 0, nextProducerId: 1 } as never], offset: 1 });
  };
  return { access, change, built: () => built };
}

function denial(fn: () => void): RillError {
  try {
    fn();
  } catch (e) {
    return e as RillError;
  }
  throw new Error("expected a denial");
}

describe("Access", () => {
  it("decides by the table: each topic, the cluster alternative, super users", () => {
    const { access } = setup([allow("User:alice", "TOPIC", "a", "WRITE")]);
    access.check(alice, "ProduceService/Produce", { TOPIC: ["a"] });
    const e = denial(() => access.check(alice, "ProduceService/Produce", { TOPIC: ["a", "b"] }));
    expect(e.kind.name).toBe("TOPIC_AUTHORIZATION_FAILED");
    expect(e.kind.grpc).toBe(7);
    expect(e.message).toMatch(/User:alice from 10\.0\.0\.1 may not WRITE topic "b"/);
    expect(denial(() => access.check(alice, "AdminService/CreateTopics", { TOPIC: ["n"] })).kind.name).toBe("TOPIC_AUTHORIZATION_FAILED");
    expect(denial(() => access.check(alice, "AdminService/ElectLeaders")).kind.name).toBe("CLUSTER_AUTHORIZATION_FAILED");
    expect(denial(() => access.check(alice, "GroupService/DeleteGroups", { GROUP: ["g"] })).kind.name).toBe("GROUP_AUTHORIZATION_FAILED");
    access.check(root, "AdminService/ElectLeaders");
    access.check(alice, "AdminService/DescribeCluster");
  });

  it("CreateTopics passes with CREATE on the cluster; InitProducerId with WRITE on a topic or IDEMPOTENT_WRITE", () => {
    const { access, change } = setup([allow("User:alice", "CLUSTER", "kafka-cluster", "CREATE")]);
    access.check(alice, "AdminService/CreateTopics", { TOPIC: ["x", "y"] });
    expect(denial(() => access.check(alice, "ProduceService/InitProducerId")).kind.name).toBe("CLUSTER_AUTHORIZATION_FAILED");
    change([allow("User:alice", "TOPIC", "*", "WRITE")]);
    access.check(alice, "ProduceService/InitProducerId");
    change([allow("User:alice", "CLUSTER", "kafka-cluster", "IDEMPOTENT_WRITE")]);
    access.check(alice, "ProduceService/InitProducerId");
  });

  it("caches decisions and rebuilds them when the ACLs change", () => {
    const { access, change, built } = setup([allow("User:alice", "TOPIC", "a", "READ")]);
    for (let i = 0; i < 100; i++) access.check(alice, "FetchService/Fetch", { TOPIC: ["a"] });
    expect(built()).toBe(1);
    change([]);
    expect(denial(() => access.check(alice, "FetchService/Fetch", { TOPIC: ["a"] })).kind.name).toBe("TOPIC_AUTHORIZATION_FAILED");
    expect(built()).toBe(2);
  });

  it("ends a watched stream once its permission is removed, and only then", () => {
    const { access, change } = setup([allow("User:alice", "TOPIC", "a", "READ"), allow("User:alice", "TOPIC", "b", "READ")]);
    const ended: RillError[] = [];
    access.watch(
      alice,
      "FetchService/Subscribe",
      () => ({ TOPIC: ["a"] }),
      (e) => ended.push(e),
    );
    change([allow("User:alice", "TOPIC", "a", "READ")]);
    expect(ended).toEqual([]);
    change([]);
    expect(ended.map((e) => e.kind.name)).toEqual(["TOPIC_AUTHORIZATION_FAILED"]);
    change([]);
    expect(ended).toHaveLength(1);
  });

  it("filters answers to what the caller may DESCRIBE (READ implies it)", () => {
    const { access } = setup([allow("User:alice", "TOPIC", "a", "READ")]);
    expect(access.visible(alice, "TOPIC", "DESCRIBE", ["a", "b"], (t) => t)).toEqual(["a"]);
    expect(access.visible(root, "TOPIC", "DESCRIBE", ["a", "b"], (t) => t)).toEqual(["a", "b"]);
  });

  it("allows everything when disabled", () => {
    const access = Access.allowAll();
    for (const rpc of Object.keys(RPC_ACCESS) as (keyof typeof RPC_ACCESS)[]) access.check(alice, rpc, { TOPIC: ["t"], GROUP: ["g"] });
  });
});

describe("RequestAccess", () => {
  it("InitProducerId with a transactional id needs WRITE on it, without one the table's row", () => {
    const { access } = setup([allow("User:alice", "TRANSACTIONAL_ID", "app-1", "WRITE")]);
    const ra = new RequestAccess(access);
    ra.initProducerId(alice, "app-1");
    expect(denial(() => ra.initProducerId(alice, "app-2")).kind.name).toBe("TRANSACTIONAL_ID_AUTHORIZATION_FAILED");
    expect(denial(() => ra.initProducerId(alice, "")).kind.name).toBe("CLUSTER_AUTHORIZATION_FAILED");
  });
});

describe("transactions' ACLs (issue 17): TRANSACTIONAL_ID WRITE and DESCRIBE", () => {
  it("EndTransaction and a transactional Produce need WRITE on the id; Describe needs DESCRIBE (implied by WRITE); List filters", () => {
    const { access } = setup([
      allow("User:alice", "TRANSACTIONAL_ID", "mine", "WRITE"),
      allow("User:alice", "TRANSACTIONAL_ID", "seen", "DESCRIBE"),
    ]);
    const ra = new RequestAccess(access);
    ra.transactionalWrite(alice, "ProduceService/EndTransaction", "mine");
    expect(denial(() => ra.transactionalWrite(alice, "ProduceService/EndTransaction", "theirs")).kind.name).toBe(
      "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
    );
    expect(denial(() => ra.transactionalWrite(alice, "ProduceService/Produce", "seen")).kind.name).toBe(
      "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
    );
    ra.describeTransactions(alice, ["mine", "seen"]);
    expect(denial(() => ra.describeTransactions(alice, ["mine", "theirs"])).kind.name).toBe("TRANSACTIONAL_ID_AUTHORIZATION_FAILED");
    const rows = [{ transactionalId: "mine" }, { transactionalId: "seen" }, { transactionalId: "theirs" }];
    expect(ra.listTransactions(alice, rows).map((r) => r.transactionalId)).toEqual(["mine", "seen"]);
    expect(ra.listTransactions(root, rows)).toHaveLength(3);
    ra.abortTransaction(alice, { transactionalId: "mine" });
    expect(denial(() => ra.abortTransaction(alice, { transactionalId: "seen" })).kind.name).toBe("TRANSACTIONAL_ID_AUTHORIZATION_FAILED");
    expect(denial(() => ra.abortTransaction(alice, { topic: "t" })).kind.name).toBe("CLUSTER_AUTHORIZATION_FAILED");
    expect(RPC_ACCESS["ProduceService/EndTransaction"].all).toEqual([{ on: "each", type: "TRANSACTIONAL_ID", op: "WRITE" }]);
  });
});
