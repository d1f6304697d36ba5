import { describe, expect, it } from "vitest";
import { RillError } from "../../../src/base/errors.ts";
import type { AclBinding, AclOperation, Principal, ResourceType } from "../../../src/metadata/security-types.ts";
import {
  type AclBindingFilter,
  Authorizer,
  isIpAddress,
  matchesFilter,
  validateBinding,
  validateFilter,
} from "../../../src/security/acl.ts";

function bind(over: Partial<AclBinding>): AclBinding {
  return {
    principal: "User:alice",
    host: "*",
    resourceType: "TOPIC",
    resourceName: "orders",
    patternType: "LITERAL",
    operation: "READ",
    permission: "ALLOW",
    ...over,
  };
}

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return e instanceof RillError ? `${e.kind.name}: ${e.message}` : String(e);
  }
  return undefined;
}

type Case = [
  name: string,
  bindings: AclBinding[],
  principal: Principal,
  host: string,
  op: AclOperation,
  type: ResourceType,
  resource: string,
  allowed: boolean,
];

const CASES: Case[] = [
  ["no bindings: denied", [], "User:alice", "10.0.0.1", "READ", "TOPIC", "orders", false],
  ["literal allow", [bind({})], "User:alice", "10.0.0.1", "READ", "TOPIC", "orders", true],
  ["other principal", [bind({})], "User:bob", "10.0.0.1", "READ", "TOPIC", "orders", false],
  ["other topic", [bind({})], "User:alice", "10.0.0.1", "READ", "TOPIC", "orders2", false],
  ["other resource type, same name", [bind({})], "User:alice", "10.0.0.1", "READ", "GROUP", "orders", false],
  ["other operation", [bind({})], "User:alice", "10.0.0.1", "WRITE", "TOPIC", "orders", false],
  ["READ implies DESCRIBE", [bind({})], "User:alice", "10.0.0.1", "DESCRIBE", "TOPIC", "orders", true],
  ["WRITE implies DESCRIBE", [bind({ operation: "WRITE" })], "User:alice", "h", "DESCRIBE", "TOPIC", "orders", true],
  ["DELETE implies DESCRIBE", [bind({ operation: "DELETE" })], "User:alice", "h", "DESCRIBE", "TOPIC", "orders", true],
  ["ALTER implies DESCRIBE", [bind({ operation: "ALTER" })], "User:alice", "h", "DESCRIBE", "TOPIC", "orders", true],
  ["CREATE does not imply DESCRIBE", [bind({ operation: "CREATE" })], "User:alice", "h", "DESCRIBE", "TOPIC", "orders", false],
  ["DESCRIBE does not imply READ", [bind({ operation: "DESCRIBE" })], "User:alice", "h", "READ", "TOPIC", "orders", false],
  [
    "ALTER_CONFIGS implies DESCRIBE_CONFIGS",
    [bind({ operation: "ALTER_CONFIGS" })],
    "User:alice",
    "h",
    "DESCRIBE_CONFIGS",
    "TOPIC",
    "orders",
    true,
  ],
  [
    "ALTER_CONFIGS does not imply DESCRIBE",
    [bind({ operation: "ALTER_CONFIGS" })],
    "User:alice",
    "h",
    "DESCRIBE",
    "TOPIC",
    "orders",
    false,
  ],
  ["ALL allows everything", [bind({ operation: "ALL" })], "User:alice", "h", "ALTER_CONFIGS", "TOPIC", "orders", true],
  ["User:* matches everyone", [bind({ principal: "User:*" })], "User:zed", "h", "READ", "TOPIC", "orders", true],
  ["literal * matches every topic", [bind({ resourceName: "*" })], "User:alice", "h", "READ", "TOPIC", "x", true],
  ["literal * is per type", [bind({ resourceName: "*" })], "User:alice", "h", "READ", "GROUP", "x", false],
  ["prefixed matches", [bind({ patternType: "PREFIXED", resourceName: "ord" })], "User:alice", "h", "READ", "TOPIC", "orders", true],
  ["prefixed equal name", [bind({ patternType: "PREFIXED", resourceName: "orders" })], "User:alice", "h", "READ", "TOPIC", "orders", true],
  ["prefixed no match", [bind({ patternType: "PREFIXED", resourceName: "orx" })], "User:alice", "h", "READ", "TOPIC", "orders", false],
  [
    "prefix longer than name",
    [bind({ patternType: "PREFIXED", resourceName: "orders-eu" })],
    "User:alice",
    "h",
    "READ",
    "TOPIC",
    "orders",
    false,
  ],
  ["host matches", [bind({ host: "10.0.0.1" })], "User:alice", "10.0.0.1", "READ", "TOPIC", "orders", true],
  ["host IPv4-mapped matches", [bind({ host: "10.0.0.1" })], "User:alice", "::ffff:10.0.0.1", "READ", "TOPIC", "orders", true],
  ["other host", [bind({ host: "10.0.0.1" })], "User:alice", "10.0.0.2", "READ", "TOPIC", "orders", false],
  ["unknown host", [bind({ host: "10.0.0.1" })], "User:alice", "", "READ", "TOPIC", "orders", false],
  ["deny wins over allow", [bind({}), bind({ permission: "DENY" })], "User:alice", "h", "READ", "TOPIC", "orders", false],
  [
    "deny via wildcard principal wins",
    [bind({}), bind({ principal: "User:*", permission: "DENY" })],
    "User:alice",
    "h",
    "READ",
    "TOPIC",
    "orders",
    false,
  ],
  [
    "deny via prefix wins over literal allow",
    [bind({}), bind({ patternType: "PREFIXED", resourceName: "o", permission: "DENY" })],
    "User:alice",
    "h",
    "READ",
    "TOPIC",
    "orders",
    false,
  ],
  [
    "deny ALL wins over any allow",
    [bind({ operation: "ALL" }), bind({ operation: "ALL", permission: "DENY", resourceName: "*" })],
    "User:alice",
    "h",
    "DESCRIBE",
    "TOPIC",
    "orders",
    false,
  ],
  [
    "deny of one host only",
    [bind({}), bind({ host: "10.0.0.9", permission: "DENY" })],
    "User:alice",
    "10.0.0.1",
    "READ",
    "TOPIC",
    "orders",
    true,
  ],
  [
    "DENY READ does not deny DESCRIBE (no implication for deny)",
    [bind({ operation: "DESCRIBE" }), bind({ permission: "DENY" })],
    "User:alice",
    "h",
    "DESCRIBE",
    "TOPIC",
    "orders",
    true,
  ],
  [
    "DENY DESCRIBE does not deny READ",
    [bind({}), bind({ operation: "DESCRIBE", permission: "DENY" })],
    "User:alice",
    "h",
    "READ",
    "TOPIC",
    "orders",
    true,
  ],
  [
    "DENY DESCRIBE denies DESCRIBE implied by READ",
    [bind({}), bind({ operation: "DESCRIBE", permission: "DENY" })],
    "User:alice",
    "h",
    "DESCRIBE",
    "TOPIC",
    "orders",
    false,
  ],
  ["only deny: denied", [bind({ permission: "DENY", principal: "User:bob" })], "User:alice", "h", "READ", "TOPIC", "orders", false],
  [
    "cluster",
    [bind({ resourceType: "CLUSTER", resourceName: "kafka-cluster", operation: "IDEMPOTENT_WRITE" })],
    "User:alice",
    "h",
    "IDEMPOTENT_WRITE",
    "CLUSTER",
    "kafka-cluster",
    true,
  ],
  ["super user bypasses", [], "User:admin", "h", "ALTER", "CLUSTER", "kafka-cluster", true],
  [
    "super user bypasses a deny",
    [bind({ principal: "User:admin", permission: "DENY", operation: "ALL" })],
    "User:admin",
    "h",
    "READ",
    "TOPIC",
    "orders",
    true,
  ],
];

describe("Authorizer", () => {
  for (const [name, bindings, principal, host, op, type, resource, allowed] of CASES) {
    it(`${name} → ${allowed ? "allowed" : "denied"}`, () => {
      const auth = new Authorizer(bindings, new Set<Principal>(["User:admin"]));
      expect(auth.authorize(principal, host, op, type, resource)).toBe(allowed);
    });
  }

  it("agrees with a direct scan of every binding on random sets of many prefixes and literals", () => {
    const seed = 1337;
    let x = seed;
    const rnd = (n: number): number => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      return (x >>> 8) % n;
    };
    console.log(`acl random seed ${seed}`);
    const names = ["a", "ab", "abc", "abd", "b", "*", "abcdef", "xyz"];
    const ops: AclOperation[] = ["READ", "WRITE", "DESCRIBE", "ALL", "ALTER", "DELETE"];
    for (let round = 0; round < 200; round++) {
      const bindings = Array.from({ length: 1 + rnd(12) }, () =>
        bind({
          principal: rnd(3) === 0 ? "User:*" : rnd(2) ? "User:alice" : "User:bob",
          resourceName: names[rnd(names.length)]!,
          patternType: rnd(2) ? "PREFIXED" : "LITERAL",
          operation: ops[rnd(ops.length)]!,
          permission: rnd(4) === 0 ? "DENY" : "ALLOW",
        }),
      ).filter((b) => !(b.patternType === "PREFIXED" && b.resourceName === "*"));
      const auth = new Authorizer(bindings, new Set());
      for (const topic of ["a", "abc", "abcdef", "b", "zz"]) {
        for (const op of ["READ", "DESCRIBE", "WRITE"] as const) {
          const applies = bindings.filter(
            (b) =>
              (b.principal === "User:alice" || b.principal === "User:*") &&
              (b.patternType === "PREFIXED" ? topic.startsWith(b.resourceName) : b.resourceName === topic || b.resourceName === "*"),
          );
          const denied = applies.some((b) => b.permission === "DENY" && (b.operation === "ALL" || b.operation === op));
          const allowedDirect = applies.some(
            (b) =>
              b.permission === "ALLOW" &&
              (b.operation === "ALL" ||
                b.operation === op ||
                (op === "DESCRIBE" && ["READ", "WRITE", "DELETE", "ALTER"].includes(b.operation))),
          );
          expect(auth.authorize("User:alice", "h", op, "TOPIC", topic), `seed ${seed} round ${round} ${topic} ${op}`).toBe(
            !denied && allowedDirect,
          );
        }
      }
    }
  });
});

describe("Authorizer.authorizeByResourceType (Kafka's: allowed on at least one resource of the type)", () => {
  const decide = (bindings: AclBinding[], principal: Principal = "User:alice") =>
    new Authorizer(bindings, new Set<Principal>(["User:admin"])).authorizeByResourceType(principal, "10.0.0.1", "WRITE", "TOPIC");
  it.each<[string, AclBinding[], boolean]>([
    ["no bindings", [], false],
    ["a literal allow", [bind({ operation: "WRITE" })], true],
    ["an allow of another operation", [bind({ operation: "READ" })], false],
    ["an allow for another principal", [bind({ operation: "WRITE", principal: "User:bob" })], false],
    ["ALL allows", [bind({ operation: "ALL", resourceName: "t" })], true],
    ["a prefixed allow", [bind({ operation: "WRITE", patternType: "PREFIXED", resourceName: "ord" })], true],
    ["a literal allow denied by the same literal", [bind({ operation: "WRITE" }), bind({ operation: "WRITE", permission: "DENY" })], false],
    [
      "a literal allow denied by a covering prefix",
      [bind({ operation: "WRITE" }), bind({ operation: "WRITE", permission: "DENY", patternType: "PREFIXED", resourceName: "or" })],
      false,
    ],
    [
      "a prefixed allow not covered by a longer deny prefix",
      [
        bind({ operation: "WRITE", patternType: "PREFIXED", resourceName: "or" }),
        bind({ operation: "WRITE", permission: "DENY", patternType: "PREFIXED", resourceName: "orders" }),
      ],
      true,
    ],
    [
      "a wildcard deny denies everything",
      [bind({ operation: "WRITE" }), bind({ operation: "ALL", permission: "DENY", resourceName: "*" })],
      false,
    ],
    ["a wildcard allow", [bind({ operation: "WRITE", resourceName: "*" })], true],
    [
      "one allowed resource among denied ones",
      [bind({ operation: "WRITE" }), bind({ operation: "WRITE", permission: "DENY" }), bind({ operation: "WRITE", resourceName: "other" })],
      true,
    ],
  ])("%s", (_name, bindings, allowed) => {
    expect(decide(bindings)).toBe(allowed);
  });
  it("super users are allowed", () => {
    expect(decide([], "User:admin")).toBe(true);
  });
});

describe("validateBinding", () => {
  it("accepts good bindings", () => {
    for (const b of [
      bind({}),
      bind({ principal: "User:*", host: "10.1.2.3" }),
      bind({ host: "::1" }),
      bind({ host: "fe80::1:2" }),
      bind({ resourceName: "*" }),
      bind({ patternType: "PREFIXED", resourceName: "orders-" }),
      bind({ resourceType: "CLUSTER", resourceName: "kafka-cluster", operation: "ALTER" }),
      bind({ resourceType: "GROUP", resourceName: "g", operation: "DELETE", permission: "DENY" }),
      bind({ resourceType: "TRANSACTIONAL_ID", resourceName: "tx", operation: "WRITE" }),
    ])
      expect(
        codeOf(() => validateBinding(b)),
        JSON.stringify(b),
      ).toBeUndefined();
  });

  const bad: [string, Partial<AclBinding> | Record<string, unknown>, RegExp][] = [
    ["no principal type", { principal: "alice" }, /not of the form User:<name>/],
    ["group principal", { principal: "Group:devs" }, /type "Group" is not supported/],
    ["empty principal name", { principal: "User:" }, /name is empty/],
    ["unknown operation", { operation: "READWRITE" }, /unknown operation "READWRITE"/],
    ["unknown resource type", { resourceType: "BROKER" }, /unknown resource type "BROKER"/],
    ["unknown pattern type", { patternType: "MATCH" }, /unknown pattern type "MATCH"/],
    ["unknown permission", { permission: "MAYBE" }, /unknown permission "MAYBE"/],
    ["empty resource name", { resourceName: "" }, /resource name is empty/],
    ["empty host", { host: "" }, /host is empty/],
    ["host name", { host: "example.com" }, /not an IP address/],
    ["bad IPv4", { host: "10.0.0.256" }, /not an IP address/],
    ["cluster name", { resourceType: "CLUSTER", resourceName: "prod", operation: "ALTER" }, /only CLUSTER resource name is kafka-cluster/],
    [
      "prefixed cluster",
      { resourceType: "CLUSTER", resourceName: "kafka-cluster", patternType: "PREFIXED", operation: "ALTER" },
      /must be LITERAL/,
    ],
    ["prefixed *", { patternType: "PREFIXED", resourceName: "*" }, /use LITERAL "\*"/],
    ["operation not for type", { resourceType: "GROUP", resourceName: "g", operation: "WRITE" }, /WRITE does not apply to GROUP/],
  ];
  for (const [name, over, message] of bad) {
    it(`refuses ${name} with INVALID_REQUEST`, () => {
      const err = codeOf(() => validateBinding(bind(over as Partial<AclBinding>)));
      expect(err).toMatch(/^INVALID_REQUEST: acl binding: /);
      expect(err).toMatch(message);
    });
  }

  it("tells IP addresses from other strings", () => {
    expect(["1.2.3.4", "255.255.255.255", "::", "::1", "2001:db8::8a2e:370:7334", "::ffff:1.2.3.4"].every(isIpAddress)).toBe(true);
    expect(["1.2.3", "01.2.3.4", "1.2.3.4.5", "localhost", ":::", "1::2::3", "g::1", ""].some(isIpAddress)).toBe(false);
  });
});

describe("AclBindingFilter", () => {
  const all = [
    bind({}),
    bind({ resourceName: "*" }),
    bind({ patternType: "PREFIXED", resourceName: "ord" }),
    bind({ patternType: "PREFIXED", resourceName: "orders" }),
    bind({ patternType: "PREFIXED", resourceName: "x" }),
    bind({ principal: "User:bob", operation: "WRITE", permission: "DENY", host: "10.0.0.1" }),
    bind({ resourceType: "GROUP", resourceName: "orders", operation: "READ" }),
  ];
  const pick = (f: AclBindingFilter): number[] => all.flatMap((b, i) => (matchesFilter(f, b) ? [i] : []));

  it("matches everything when every field is unset", () => {
    expect(pick({})).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });
  it("ANY pattern type with a name = that exact name in any pattern type", () => {
    expect(pick({ resourceName: "orders" })).toEqual([0, 3, 5, 6]);
    expect(pick({ resourceName: "orders", patternType: "ANY", resourceType: "TOPIC" })).toEqual([0, 3, 5]);
  });
  it("a pattern type of its own selects only that type", () => {
    expect(pick({ resourceName: "orders", patternType: "LITERAL" })).toEqual([0, 5, 6]);
    expect(pick({ patternType: "PREFIXED" })).toEqual([2, 3, 4]);
  });
  it("MATCH = every binding that applies to the name: literal, wildcard and prefixes", () => {
    expect(pick({ resourceType: "TOPIC", resourceName: "orders", patternType: "MATCH" })).toEqual([0, 1, 2, 3, 5]);
    expect(pick({ resourceType: "TOPIC", resourceName: "xy", patternType: "MATCH" })).toEqual([1, 4]);
  });
  it("principal, host, operation and permission filter exactly (User:* is not every principal here)", () => {
    expect(pick({ principal: "User:bob" })).toEqual([5]);
    expect(pick({ host: "10.0.0.1" })).toEqual([5]);
    expect(pick({ operation: "WRITE" })).toEqual([5]);
    expect(pick({ permission: "ALLOW", resourceType: "GROUP" })).toEqual([6]);
  });
  it("validates its fields", () => {
    expect(codeOf(() => validateFilter({ patternType: "MATCH" }))).toMatch(/MATCH needs a resource name/);
    expect(codeOf(() => validateFilter({ principal: "alice" as Principal }))).toMatch(/INVALID_REQUEST/);
    expect(codeOf(() => validateFilter({ operation: "FLY" as AclOperation }))).toMatch(/unknown operation "FLY"/);
    expect(codeOf(() => validateFilter({ resourceName: "x", patternType: "MATCH" }))).toBeUndefined();
  });
});
