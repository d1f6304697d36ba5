import { describe, expect, it } from "vitest";
import { ManualClock } from "../../../src/base/clock.ts";
import type { RillError } from "../../../src/base/errors.ts";
import { SeededRandom } from "../../../src/base/random.ts";
import type { ScramCredential } from "../../../src/metadata/security-types.ts";
import { Authenticator, type AuthMethod, type AuthResult, parseBasic } from "../../../src/security/authenticator.ts";
import { scramCredential, verifyPassword } from "../../../src/security/scram.ts";

const SEED = 1313;
const basic = (s: string) => `Basic ${Buffer.from(s, "utf8").toString("base64")}`;

function setup(methods: AuthMethod[] = ["password"], allowPlaintextPasswords = false) {
  const clock = new ManualClock();
  const users = new Map<string, ScramCredential>([["alice", scramCredential("s3cret", "SCRAM-SHA-256", 4096, Buffer.alloc(16, 7))]]);
  const verified: string[] = [];
  const auth = new Authenticator({
    methods,
    allowPlaintextPasswords,
    clock,
    random: new SeededRandom(SEED),
    credentials: (u) => {
      const c = users.get(u);
      return c ? [c] : [];
    },
    verify: (c, p) => {
      verified.push(c.storedKey);
      return verifyPassword(c, p);
    },
    rateLimit: { burst: 3, perSecond: 1 },
  });
  return { clock, users, verified, auth };
}

/** A result of the synchronous check (the tests' verify is synchronous, so no promise is expected). */
function now(r: AuthResult | Promise<AuthResult>): AuthResult {
  if (r instanceof Promise) throw new Error("expected a synchronous answer");
  return r;
}

function errorOf(res: AuthResult | Promise<AuthResult>): RillError {
  const r = now(res);
  if (!("error" in r)) throw new Error(`expected a refusal, got ${r.principal}`);
  return r.error;
}

describe("Authenticator", () => {
  it("everyone is anonymous without methods", () => {
    const { auth } = setup([]);
    expect(now(auth.authenticate({ authorization: basic("alice:wrong"), host: "10.0.0.1", tls: false }))).toEqual({
      principal: "User:ANONYMOUS",
    });
  });

  it("accepts the right password over TLS and caches the verification", () => {
    const { auth, verified } = setup();
    const req = { authorization: basic("alice:s3cret"), host: "10.0.0.1", tls: true };
    expect(auth.authenticate(req)).toEqual({ principal: "User:alice" });
    expect(auth.authenticate(req)).toEqual({ principal: "User:alice" });
    expect(verified).toHaveLength(1);
  });

  it("a changed credential makes the cached login worthless", () => {
    const { auth, users, verified } = setup();
    const req = { authorization: basic("alice:s3cret"), host: "10.0.0.1", tls: true };
    expect(auth.authenticate(req)).toEqual({ principal: "User:alice" });
    users.set("alice", scramCredential("n3w", "SCRAM-SHA-256", 4096, Buffer.alloc(16, 8)));
    expect(errorOf(auth.authenticate(req)).kind.name).toBe("SASL_AUTHENTICATION_FAILED");
    expect(auth.authenticate({ ...req, authorization: basic("alice:n3w") })).toEqual({ principal: "User:alice" });
    users.delete("alice");
    expect(errorOf(auth.authenticate({ ...req, authorization: basic("alice:n3w") })).kind.name).toBe("SASL_AUTHENTICATION_FAILED");
    expect(verified).toHaveLength(3 + 1);
  });

  it("answers an unknown user as a wrong password, after checking a fake credential", () => {
    const { auth, verified } = setup();
    const wrong = errorOf(auth.authenticate({ authorization: basic("alice:nope"), host: "a", tls: true }));
    const unknown = errorOf(auth.authenticate({ authorization: basic("mallory:nope"), host: "b", tls: true }));
    expect(unknown.kind.name).toBe("SASL_AUTHENTICATION_FAILED");
    expect(unknown.message).toBe(wrong.message);
    expect(unknown.kind.grpc).toBe(16);
    expect(verified).toHaveLength(2);
  });

  it("rate-limits failed logins per address without running PBKDF2, and refills with time", () => {
    const { auth, verified, clock } = setup();
    const bad = { authorization: basic("alice:nope"), host: "10.0.0.9", tls: true };
    for (let i = 0; i < 3; i++) expect(errorOf(auth.authenticate(bad)).message).toMatch(/unknown user or wrong password/);
    const limited = errorOf(auth.authenticate(bad));
    expect(limited.kind.name).toBe("SASL_AUTHENTICATION_FAILED");
    expect(limited.message).toMatch(/too many failed logins from 10\.0\.0\.9: retry in 1000 ms/);
    expect(verified).toHaveLength(3);
    // Even the right password waits (the address is limited), another address is not.
    expect(errorOf(auth.authenticate({ ...bad, authorization: basic("alice:s3cret") })).message).toMatch(/too many/);
    expect(auth.authenticate({ ...bad, host: "10.0.0.10", authorization: basic("alice:s3cret") })).toEqual({ principal: "User:alice" });
    clock.advance(1000);
    expect(auth.authenticate({ ...bad, authorization: basic("alice:s3cret") })).toEqual({ principal: "User:alice" });
  });

  it("refuses a password over plaintext unless allowed", () => {
    const req = { authorization: basic("alice:s3cret"), host: "h", tls: false };
    const refused = errorOf(setup().auth.authenticate(req));
    expect(refused.kind.name).toBe("PLAINTEXT_PASSWORD_REFUSED");
    expect(refused.message).toMatch(/auth\.allow\.plaintext\.passwords/);
    expect(setup(["password"], true).auth.authenticate(req)).toEqual({ principal: "User:alice" });
  });

  it("no credentials, mTLS CN, and a password when only mTLS is on", () => {
    expect(errorOf(setup().auth.authenticate({ authorization: undefined, host: "h", tls: true })).message).toMatch(/no credentials/);
    const m = setup(["mtls"]).auth;
    expect(m.authenticate({ authorization: undefined, host: "h", tls: true, peerCertificate: { subject: { CN: "svc-a" } } })).toEqual({
      principal: "User:svc-a",
    });
    expect(errorOf(m.authenticate({ authorization: undefined, host: "h", tls: true, peerCertificate: null })).message).toMatch(
      /no client certificate/,
    );
    expect(errorOf(m.authenticate({ authorization: basic("alice:s3cret"), host: "h", tls: true })).kind.name).toBe(
      "UNSUPPORTED_AUTH_SCHEME",
    );
    const both = setup(["password", "mtls"]).auth;
    expect(both.authenticate({ authorization: undefined, host: "h", tls: true, peerCertificate: { subject: { CN: ["x", "y"] } } })).toEqual(
      {
        principal: "User:x",
      },
    );
  });
});

describe("Authenticator with a check off the event loop", () => {
  it("answers a promise on a cache miss, at once on a hit, and counts attempts in flight against the limit", async () => {
    const credential = scramCredential("s3cret", "SCRAM-SHA-256", 4096, Buffer.alloc(16, 7));
    const auth = new Authenticator({
      methods: ["password"],
      allowPlaintextPasswords: true,
      clock: new ManualClock(),
      random: new SeededRandom(SEED),
      credentials: (u) => (u === "alice" ? [credential] : []),
      verify: async (c, p) => verifyPassword(c, p),
      rateLimit: { burst: 2, perSecond: 1 },
    });
    const ok = { authorization: basic("alice:s3cret"), host: "h1", tls: false };
    const first = auth.authenticate(ok);
    expect(first).toBeInstanceOf(Promise);
    expect(await first).toEqual({ principal: "User:alice" });
    expect(auth.authenticate(ok)).toEqual({ principal: "User:alice" });
    const bad = { authorization: basic("alice:nope"), host: "h2", tls: false };
    const inFlight = [auth.authenticate(bad), auth.authenticate(bad), auth.authenticate(bad)];
    const answers = await Promise.all(inFlight);
    const messages = answers.map((a) => ("error" in a ? a.error.message : a.principal));
    expect(messages[0]).toMatch(/unknown user or wrong password/);
    expect(messages[1]).toMatch(/unknown user or wrong password/);
    expect(messages[2]).toMatch(/too many failed logins from h2/);
  });
});

describe("parseBasic", () => {
  const cases: [string, string, RegExp][] = [
    ["Bearer abc", "UNSUPPORTED_AUTH_SCHEME", /scheme Bearer is not supported/],
    ["Basic", "MALFORMED_CREDENTIALS", /Basic without credentials/],
    ["Basic !!!!", "MALFORMED_CREDENTIALS", /not valid base64/],
    ["Basic YWJj", "MALFORMED_CREDENTIALS", /no colon/],
    [basic(":pw"), "MALFORMED_CREDENTIALS", /user name before the colon is empty/],
    [`Basic ${Buffer.from([0x61, 0x3a, 0xff, 0xfe]).toString("base64")}`, "MALFORMED_CREDENTIALS", /not UTF-8/],
    [basic("a\u0001b:pw"), "MALFORMED_CREDENTIALS", /control character/],
    ["", "MALFORMED_CREDENTIALS", /expected `Basic/],
    [`Basic ${"A".repeat(5000)}`, "MALFORMED_CREDENTIALS", /more than 4096/],
    ["Basic YWJj, Basic YWJj", "MALFORMED_CREDENTIALS", /not valid base64/],
  ];
  it.each(cases)("%j → %s", (value, name, message) => {
    const r = parseBasic(value);
    expect("error" in r && r.error.kind.name).toBe(name);
    expect("error" in r && r.error.message).toMatch(message);
  });

  it("takes the name before the first colon, the scheme in any case", () => {
    expect(parseBasic(basic("bob:pa:ss"))).toEqual({ name: "bob", password: "pa:ss" });
    expect(parseBasic(`bAsIc ${Buffer.from("bob:x").toString("base64")}`)).toEqual({ name: "bob", password: "x" });
  });
});
