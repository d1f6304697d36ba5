import { describe, expect, it } from "vitest";
import { RillError } from "../../../src/base/errors.ts";
import { SeededRandom } from "../../../src/base/random.ts";
import { MetadataImage, snapshotRecords } from "../../../src/metadata/image.ts";
import { decodeMetadataRecord, encodeMetadataRecord, type MetadataRecord } from "../../../src/metadata/records.ts";
import type { AclBinding } from "../../../src/metadata/security-types.ts";
import { Authorizer, AuthorizerCache } from "../../../src/security/acl.ts";
import {
  decideAlterScramCredentials,
  decideCreateAcls,
  decideDeleteAcls,
  describeAcls,
  describeScramUsers,
} from "../../../src/security/decisions.ts";
import { scramCredential, verifyPassword } from "../../../src/security/scram.ts";

const SEED = 7;

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

/** Applies records the way the store does: encoded, decoded, at the next offsets. */
function apply(img: MetadataImage, records: readonly MetadataRecord[]): void {
  for (const r of records) img.apply(decodeMetadataRecord(encodeMetadataRecord(r)), img.offset + 1);
}

const cred = (password: string, mechanism: "SCRAM-SHA-256" | "SCRAM-SHA-512" = "SCRAM-SHA-256", iterations = 4096) =>
  scramCredential(password, mechanism, iterations, Buffer.from(`salt-of-${password}`));

describe("ACL decisions", () => {
  it("create valid bindings once, refuse bad ones on their own, and answer duplicates as created", () => {
    const img = new MetadataImage();
    const random = new SeededRandom(SEED);
    const first = decideCreateAcls(img, [bind({}), bind({ operation: "FLY" as never }), bind({}), bind({ operation: "WRITE" })], random);
    expect(first.results.map((e) => e?.kind.name)).toEqual([undefined, "INVALID_REQUEST", undefined, undefined]);
    expect(first.results[1]!.message).toMatch(/unknown operation "FLY"/);
    expect(first.records.map((r) => r.type)).toEqual(["acl", "acl"]);
    apply(img, first.records);
    const again = decideCreateAcls(img, [bind({})], random);
    expect(again.results).toEqual([undefined]);
    expect(again.records).toEqual([]);
    expect(img.aclBindings()).toEqual([bind({}), bind({ operation: "WRITE" })]);
    expect(img.aclVersion).toBe(2);
  });

  it("refuse bindings past the cluster's limit, still answering duplicates as created", () => {
    const img = new MetadataImage();
    const random = new SeededRandom(SEED);
    apply(img, decideCreateAcls(img, [bind({}), bind({ operation: "WRITE" })], random, 2).records);
    const more = decideCreateAcls(img, [bind({}), bind({ operation: "DELETE" })], random, 2);
    expect(more.results[0]).toBeUndefined();
    expect(more.results[1]?.message).toMatch(/already holds 2 bindings/);
    expect(more.records).toEqual([]);
  });

  it("delete by filters: each matched binding removed once, per-filter matches and errors", () => {
    const img = new MetadataImage();
    const all = [
      bind({}),
      bind({ operation: "WRITE" }),
      bind({ resourceName: "*" }),
      bind({ principal: "User:bob", patternType: "PREFIXED", resourceName: "ord" }),
    ];
    apply(img, decideCreateAcls(img, all, new SeededRandom(SEED)).records);
    const d = decideDeleteAcls(img, [
      { principal: "User:alice", resourceName: "orders" },
      { operation: "WRITE" },
      { patternType: "MATCH" },
      { resourceType: "GROUP" },
    ]);
    expect(d.results[0]).toEqual({ matched: [bind({}), bind({ operation: "WRITE" })] });
    expect(d.results[1]).toEqual({ matched: [bind({ operation: "WRITE" })] });
    expect(d.results[2]!.error?.kind.name).toBe("INVALID_REQUEST");
    expect(d.results[3]).toEqual({ matched: [] });
    expect(d.records).toHaveLength(2);
    apply(img, d.records);
    expect(img.aclBindings()).toEqual([all[2], all[3]]);
    expect(describeAcls(img, { resourceType: "TOPIC", resourceName: "orders", patternType: "MATCH" })).toEqual([all[2], all[3]]);
    expect(() => describeAcls(img, { patternType: "MATCH" })).toThrow(RillError);
  });

  it("feed the Authorizer from the image", () => {
    const img = new MetadataImage();
    apply(
      img,
      decideCreateAcls(img, [bind({}), bind({ permission: "DENY", principal: "User:*", resourceName: "secret" })], new SeededRandom(SEED))
        .records,
    );
    const auth = new Authorizer(img.aclBindings(), new Set());
    expect(auth.authorize("User:alice", "1.2.3.4", "DESCRIBE", "TOPIC", "orders")).toBe(true);
    expect(auth.authorize("User:alice", "1.2.3.4", "READ", "TOPIC", "secret")).toBe(false);
  });
});

describe("AuthorizerCache", () => {
  it("rebuilds when the bindings change or the image is replaced (a snapshot), not otherwise", () => {
    const img = new MetadataImage();
    const cache = new AuthorizerCache(new Set());
    const first = cache.of(img);
    expect(cache.of(img)).toBe(first);
    apply(img, decideCreateAcls(img, [bind({})], new SeededRandom(SEED)).records);
    const second = cache.of(img);
    expect(second).not.toBe(first);
    expect(second.authorize("User:alice", "h", "READ", "TOPIC", "orders")).toBe(true);
    // A snapshot with other bindings but the same version count.
    const other = new MetadataImage();
    apply(other, decideCreateAcls(other, [bind({ principal: "User:bob" })], new SeededRandom(SEED)).records);
    expect(other.aclVersion).toBe(img.aclVersion);
    expect(cache.of(other).authorize("User:alice", "h", "READ", "TOPIC", "orders")).toBe(false);
  });
});

describe("SCRAM credential decisions", () => {
  it("upsert and delete per user, all or nothing for a user, answers in order of first mention", () => {
    const img = new MetadataImage();
    const first = decideAlterScramCredentials(
      img,
      [
        { name: "alice", credential: cred("a1") },
        { name: "alice", credential: cred("a2", "SCRAM-SHA-512") },
        { name: "bob", credential: cred("b1") },
        { name: "bob", credential: cred("b2") },
        { name: "bad:name", credential: cred("c") },
      ],
      [{ name: "carol", mechanism: "SCRAM-SHA-256" }],
    );
    expect(first.results.map((r) => [r.user, r.error?.kind.name])).toEqual([
      ["alice", undefined],
      ["bob", "DUPLICATE_RESOURCE"],
      ["bad:name", "UNACCEPTABLE_CREDENTIAL"],
      ["carol", "RESOURCE_NOT_FOUND"],
    ]);
    expect(first.records.map((r) => r.type)).toEqual(["scram-credential", "scram-credential"]);
    apply(img, first.records);
    expect(verifyPassword(img.scramCredential("alice", "SCRAM-SHA-256")!, "a1")).toBe(true);
    expect(verifyPassword(img.scramCredential("alice", "SCRAM-SHA-512")!, "a2")).toBe(true);
    expect(img.scramCredential("bob", "SCRAM-SHA-256")).toBeUndefined();

    // Replace one, delete the other: the user stays while it has a credential.
    const second = decideAlterScramCredentials(
      img,
      [{ name: "alice", credential: cred("a3") }],
      [{ name: "alice", mechanism: "SCRAM-SHA-512" }],
    );
    expect(second.results).toEqual([{ user: "alice" }]);
    apply(img, second.records);
    expect(verifyPassword(img.scramCredential("alice", "SCRAM-SHA-256")!, "a3")).toBe(true);
    expect(describeScramUsers(img, [])).toEqual([{ user: "alice", credentials: [{ mechanism: "SCRAM-SHA-256", iterations: 4096 }] }]);
    apply(img, decideAlterScramCredentials(img, [], [{ name: "alice", mechanism: "SCRAM-SHA-256" }]).records);
    expect(img.scramUsers.size).toBe(0);
    expect(img.scramVersion).toBe(5);
  });

  it("refuse a new user past the cluster's limit; existing users still change", () => {
    const img = new MetadataImage();
    apply(img, decideAlterScramCredentials(img, [{ name: "a", credential: cred("a") }], [], 1).records);
    const d = decideAlterScramCredentials(
      img,
      [
        { name: "b", credential: cred("b") },
        { name: "a", credential: cred("a2") },
      ],
      [],
      1,
    );
    expect(d.results.map((r) => r.error?.message)).toEqual(['user "b": the cluster already holds 1 users, the most it keeps', undefined]);
    expect(d.records).toHaveLength(1);
  });

  it("refuse bad iteration counts and mechanisms with Kafka's codes", () => {
    const img = new MetadataImage();
    const bad = { ...cred("x"), iterations: 100 };
    const d = decideAlterScramCredentials(img, [{ name: "a", credential: bad }], [{ name: "b", mechanism: "SCRAM-SHA-1" as never }]);
    expect(d.results.map((r) => r.error?.kind.name)).toEqual(["UNACCEPTABLE_CREDENTIAL", "UNSUPPORTED_SASL_MECHANISM"]);
    expect(d.records).toEqual([]);
  });

  it("describe named users: unknown = RESOURCE_NOT_FOUND, twice = DUPLICATE_RESOURCE; never keys", () => {
    const img = new MetadataImage();
    apply(
      img,
      decideAlterScramCredentials(
        img,
        [
          { name: "zed", credential: cred("z", "SCRAM-SHA-512", 8192) },
          { name: "amy", credential: cred("a") },
        ],
        [],
      ).records,
    );
    expect(describeScramUsers(img, [])).toEqual([
      { user: "amy", credentials: [{ mechanism: "SCRAM-SHA-256", iterations: 4096 }] },
      { user: "zed", credentials: [{ mechanism: "SCRAM-SHA-512", iterations: 8192 }] },
    ]);
    const named = describeScramUsers(img, ["zed", "nobody", "amy", "amy"]);
    expect(named.map((r) => [r.user, r.error?.kind.name])).toEqual([
      ["zed", undefined],
      ["nobody", "RESOURCE_NOT_FOUND"],
      ["amy", "DUPLICATE_RESOURCE"],
      ["amy", "DUPLICATE_RESOURCE"],
    ]);
    expect(JSON.stringify(named)).not.toMatch(/storedKey|serverKey|salt/);
  });
});

describe("security records in snapshots", () => {
  it("a snapshot keeps ACLs (with their ids) and credentials, and replays into an equal image", () => {
    const img = new MetadataImage();
    const random = new SeededRandom(SEED);
    apply(
      img,
      decideCreateAcls(img, [bind({}), bind({ resourceType: "GROUP", resourceName: "g" }), bind({ operation: "WRITE" })], random).records,
    );
    apply(img, decideDeleteAcls(img, [{ resourceType: "GROUP" }]).records);
    apply(
      img,
      decideAlterScramCredentials(
        img,
        [
          { name: "alice", credential: cred("pw") },
          { name: "alice", credential: cred("pw5", "SCRAM-SHA-512") },
        ],
        [],
      ).records,
    );
    const records = snapshotRecords(img).map((r) => decodeMetadataRecord(encodeMetadataRecord(r)));
    const rebuilt = MetadataImage.fromSnapshot(records, img.offset);
    expect([...rebuilt.acls]).toEqual([...img.acls]);
    expect(rebuilt.aclBindings()).toEqual([bind({}), bind({ operation: "WRITE" })]);
    expect(rebuilt.scramCredential("alice", "SCRAM-SHA-512")).toEqual(img.scramCredential("alice", "SCRAM-SHA-512"));
    expect(verifyPassword(rebuilt.scramCredential("alice", "SCRAM-SHA-256")!, "pw")).toBe(true);
    expect(snapshotRecords(rebuilt)).toEqual(snapshotRecords(img));
    // A removal after the snapshot finds the binding by its id.
    apply(rebuilt, decideDeleteAcls(rebuilt, [{ operation: "WRITE" }]).records);
    expect(rebuilt.aclBindings()).toEqual([bind({})]);
  });

  it("an unknown record type still fails loudly on decode", () => {
    expect(() => decodeMetadataRecord(Buffer.from(JSON.stringify({ type: "acl-v9", v: 1 })))).toThrow(/unknown metadata record/);
  });
});
