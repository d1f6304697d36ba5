/**
 * The cluster membership keys (issue 13): a node that can have other members must be able to
 * authenticate them; the secret is never shown (errors, DescribeConfigs); the secret file is
 * read and checked; the broker's membership follows the configuration (a single node refuses
 * internal calls, `internal.listen` makes a members-only listener, internal TLS makes members of
 * certified peers there).
 */
import * as nodeFs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { clusterSecretOf, membershipOf } from "../../../src/broker/membership.ts";
import { silentLog } from "../../../src/broker/log.ts";
import {
  type BrokerConfig,
  brokerConfigFromEnv,
  defaultBrokerConfig,
  parseBrokerConfig,
  validateBrokerConfig,
} from "../../../src/config/schema.ts";
import { brokerConfigEntries } from "../../../src/service/admin-configs.ts";

const SECRET = "s3cret-for-membership-tests";
const QUORUM = "1@127.0.0.1:9001,2@127.0.0.1:9002,3@127.0.0.1:9003";
const dir = nodeFs.mkdtempSync(path.join(os.tmpdir(), "rill-member-config-"));
afterAll(() => nodeFs.rmSync(dir, { recursive: true, force: true }));

const config = (raw: Record<string, string>): BrokerConfig => parseBrokerConfig(raw, defaultBrokerConfig);
const invalid = (fn: () => unknown, message: RegExp): void => {
  expect(fn).toThrow(
    expect.objectContaining({ kind: expect.objectContaining({ name: "INVALID_CONFIG" }), message: expect.stringMatching(message) }),
  );
};

describe("membership keys", () => {
  it("a node of a quorum needs a way to authenticate the other members", () => {
    invalid(
      () => validateBrokerConfig(config({ "node.id": "1", "controller.quorum.voters": QUORUM })),
      /^cluster\.secret: node 1 is part of a cluster .* set cluster\.secret \(or RILL_CLUSTER_SECRET, or cluster\.secret\.file\)/,
    );
    expect(() =>
      validateBrokerConfig(config({ "node.id": "1", "controller.quorum.voters": QUORUM, "cluster.secret": SECRET })),
    ).not.toThrow();
    expect(() =>
      validateBrokerConfig(config({ "node.id": "1", "controller.quorum.voters": QUORUM, "cluster.secret.file": "/some/file" })),
    ).not.toThrow();
    // Internal mutual TLS is a way too, on an internal listener only.
    const tls = { "internal.tls.cert.file": "/c", "internal.tls.key.file": "/k", "internal.tls.ca.file": "/ca" };
    invalid(() => validateBrokerConfig(config({ "node.id": "1", "controller.quorum.voters": QUORUM, ...tls })), /^cluster\.secret: /);
    expect(() =>
      validateBrokerConfig(config({ "node.id": "1", "controller.quorum.voters": QUORUM, ...tls, "internal.listen": "127.0.0.1:9101" })),
    ).not.toThrow();
    // A single node needs none.
    expect(() => validateBrokerConfig(config({}))).not.toThrow();
  });

  it("refuses both the secret and its file, and an internal advertised address without an internal listener", () => {
    invalid(
      () => validateBrokerConfig(config({ "cluster.secret": SECRET, "cluster.secret.file": "/f" })),
      /^cluster\.secret\.file: set either/,
    );
    invalid(
      () => validateBrokerConfig(config({ "internal.advertised.address": "h:1" })),
      /^internal\.advertised\.address: set, but internal\.listen is empty/,
    );
    invalid(() => config({ "internal.listen": "nope" }), /^internal\.listen: empty or HOST:PORT/);
  });

  it("never shows the secret: not in a parse error, not in DescribeConfigs", () => {
    const bad = "short secret";
    let message = "";
    try {
      config({ "cluster.secret": bad });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/^cluster\.secret: empty, or 16 to 1024 characters without spaces \(value not shown: it is a secret\)$/);
    expect(message).not.toContain(bad);
    const entry = brokerConfigEntries(config({ "cluster.secret": SECRET }), false).find((e) => e.name === "cluster.secret")!;
    expect(entry).toMatchObject({ value: "", sensitive: true });
    expect(JSON.stringify(brokerConfigEntries(config({ "cluster.secret": SECRET }), true))).not.toContain(SECRET);
  });

  it("reads RILL_CLUSTER_SECRET from the environment", () => {
    expect(brokerConfigFromEnv({ RILL_CLUSTER_SECRET: SECRET })).toEqual({ "cluster.secret": SECRET });
  });

  it("reads the secret file's first line, and names the key when the file is missing or holds no secret", () => {
    const good = path.join(dir, "good");
    nodeFs.writeFileSync(good, `${SECRET}\nignored\n`, { mode: 0o600 });
    expect(clusterSecretOf({ clusterSecret: "", clusterSecretFile: good })).toBe(SECRET);
    invalid(
      () => clusterSecretOf({ clusterSecret: "", clusterSecretFile: path.join(dir, "missing") }),
      /^cluster\.secret\.file: cannot read /,
    );
    const weak = path.join(dir, "weak");
    nodeFs.writeFileSync(weak, "short\n");
    invalid(
      () => clusterSecretOf({ clusterSecret: "", clusterSecretFile: weak }),
      /^cluster\.secret\.file: the first line of .* must be 16 to 1024 characters/,
    );
    expect(clusterSecretOf({ clusterSecret: SECRET, clusterSecretFile: "" })).toBe(SECRET);
  });
});

describe("membershipOf", () => {
  it("a single node refuses internal calls and signs nothing", () => {
    const m = membershipOf(config({ "cluster.secret": SECRET }), silentLog);
    expect(m.signer).toBeUndefined();
    expect(m.server.policy).toMatchObject({ verifier: null, refuseInternal: expect.stringMatching(/single node/) });
    expect(m.internal).toBeNull();
  });

  it("a member signs its calls, verifies others on both listeners, and serves members only on internal.listen", () => {
    const m = membershipOf(
      config({ "node.id": "2", "controller.quorum.voters": QUORUM, "cluster.secret": SECRET, "internal.listen": "127.0.0.1:0" }),
      silentLog,
    );
    expect(m.signer?.nodeId).toBe(2);
    expect(m.server.internalListener).toBe(true);
    expect(m.server.policy.membersOnly).toBe(false);
    expect(m.server.policy.refuseInternal).toBeUndefined();
    expect(m.internal).toMatchObject({ membersOnly: true, mtls: false });
    // One verifier (one nonce memory) for both listeners.
    expect(m.internal!.verifier).toBe(m.server.policy.verifier);
  });
});
