import { describe, expect, it } from "vitest";
import { RillError } from "../../../src/base/errors.ts";
import {
  SCRAM_ITERATIONS_MAX,
  SCRAM_ITERATIONS_MIN,
  credentialFromSaltedPassword,
  exchangeCredential,
  saltPassword,
  scramCredential,
  scramCredentialAsync,
  serverSignature,
  validateIterations,
  validateMechanism,
  validateUserName,
  verifyClientProof,
  verifyPassword,
  verifyPasswordAsync,
} from "../../../src/security/scram.ts";

/** RFC 7677 §3: user "user", password "pencil". */
const RFC7677 = {
  salt: Buffer.from("W22ZaJ0SNY7soEsUEjb6gQ==", "base64"),
  iterations: 4096,
  authMessage:
    "n=user,r=rOprNGfwEbeRWgbNEkqO," +
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096," +
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
  clientProof: "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
  serverSignature: "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
};

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return e instanceof RillError ? e.kind.name : String(e);
  }
  return undefined;
}

describe("SCRAM credentials", () => {
  it("reproduce RFC 7677's SCRAM-SHA-256 exchange: the client proof verifies and the server signature matches", () => {
    const cred = scramCredential("pencil", "SCRAM-SHA-256", RFC7677.iterations, RFC7677.salt);
    expect(cred.salt).toBe("W22ZaJ0SNY7soEsUEjb6gQ==");
    expect(cred.iterations).toBe(4096);
    expect(Buffer.from(cred.storedKey, "base64")).toHaveLength(32);
    expect(verifyClientProof(cred, RFC7677.authMessage, Buffer.from(RFC7677.clientProof, "base64"))).toBe(true);
    expect(serverSignature(cred, RFC7677.authMessage).toString("base64")).toBe(RFC7677.serverSignature);
  });

  it("refuse a proof that is one bit off, of the wrong length, or made for another message", () => {
    const cred = scramCredential("pencil", "SCRAM-SHA-256", RFC7677.iterations, RFC7677.salt);
    const proof = Buffer.from(RFC7677.clientProof, "base64");
    const flipped = Buffer.from(proof);
    flipped[0]! ^= 1;
    expect(verifyClientProof(cred, RFC7677.authMessage, flipped)).toBe(false);
    expect(verifyClientProof(cred, RFC7677.authMessage, proof.subarray(1))).toBe(false);
    expect(verifyClientProof(cred, `${RFC7677.authMessage}x`, proof)).toBe(false);
    const other = scramCredential("pencil2", "SCRAM-SHA-256", RFC7677.iterations, RFC7677.salt);
    expect(verifyClientProof(other, RFC7677.authMessage, proof)).toBe(false);
  });

  it("verify the right password and refuse a wrong one, for both mechanisms, sync and async", async () => {
    for (const mechanism of ["SCRAM-SHA-256", "SCRAM-SHA-512"] as const) {
      const salt = Buffer.from("0123456789abcdef0123456789abcdef");
      const cred = scramCredential("s3cret-ü", mechanism, 4096, salt);
      expect(Buffer.from(cred.serverKey, "base64")).toHaveLength(mechanism === "SCRAM-SHA-256" ? 32 : 64);
      expect(JSON.stringify(cred)).not.toContain("s3cret");
      expect(verifyPassword(cred, "s3cret-ü")).toBe(true);
      expect(verifyPassword(cred, "s3cret-u")).toBe(false);
      expect(verifyPassword(cred, "")).toBe(false);
      expect(await verifyPasswordAsync(cred, "s3cret-ü")).toBe(true);
      expect(await verifyPasswordAsync(cred, "S3cret-ü")).toBe(false);
      expect(await scramCredentialAsync("s3cret-ü", mechanism, 4096, salt)).toEqual(cred);
    }
  });

  it("come out the same from a SaltedPassword computed elsewhere (Kafka's AlterUserScramCredentials shape)", async () => {
    const salt = Buffer.from("0123456789abcdef");
    for (const mechanism of ["SCRAM-SHA-256", "SCRAM-SHA-512"] as const) {
      const salted = await saltPassword("pw", mechanism, 4096, salt);
      expect(credentialFromSaltedPassword(mechanism, salted, salt, 4096)).toEqual(scramCredential("pw", mechanism, 4096, salt));
      expect(codeOf(() => credentialFromSaltedPassword(mechanism, salted.subarray(1), salt, 4096))).toBe("UNACCEPTABLE_CREDENTIAL");
    }
  });

  it("differ for another salt or iteration count", () => {
    const a = scramCredential("pw", "SCRAM-SHA-512", 4096, Buffer.from("salt-a"));
    const b = scramCredential("pw", "SCRAM-SHA-512", 4096, Buffer.from("salt-b"));
    const c = scramCredential("pw", "SCRAM-SHA-512", 4097, Buffer.from("salt-a"));
    expect(new Set([a.storedKey, b.storedKey, c.storedKey]).size).toBe(3);
  });

  it("enforce Kafka's iteration bounds, known mechanisms and a non-empty password", () => {
    const salt = Buffer.from("salt");
    expect(codeOf(() => validateIterations(SCRAM_ITERATIONS_MIN))).toBeUndefined();
    expect(codeOf(() => validateIterations(SCRAM_ITERATIONS_MAX))).toBeUndefined();
    expect(codeOf(() => scramCredential("pw", "SCRAM-SHA-256", SCRAM_ITERATIONS_MIN - 1, salt))).toBe("UNACCEPTABLE_CREDENTIAL");
    expect(codeOf(() => scramCredential("pw", "SCRAM-SHA-256", SCRAM_ITERATIONS_MAX + 1, salt))).toBe("UNACCEPTABLE_CREDENTIAL");
    expect(codeOf(() => scramCredential("pw", "SCRAM-SHA-256", 4096.5, salt))).toBe("UNACCEPTABLE_CREDENTIAL");
    expect(codeOf(() => validateMechanism("SCRAM-SHA-1"))).toBe("UNSUPPORTED_SASL_MECHANISM");
    expect(codeOf(() => scramCredential("", "SCRAM-SHA-256", 4096, salt))).toBe("UNACCEPTABLE_CREDENTIAL");
    expect(codeOf(() => scramCredential("pw", "SCRAM-SHA-256", 4096, new Uint8Array()))).toBe("UNACCEPTABLE_CREDENTIAL");
  });

  it("validate user names: not empty, no ':', no control character, not '*', bounded", () => {
    expect(codeOf(() => validateUserName("alice"))).toBeUndefined();
    expect(codeOf(() => validateUserName("svc.orders-1@example"))).toBeUndefined();
    for (const bad of ["", "a:b", "a\nb", "*", "x".repeat(256)])
      expect(
        codeOf(() => validateUserName(bad)),
        JSON.stringify(bad),
      ).toBe("UNACCEPTABLE_CREDENTIAL");
  });

  it("answer an unknown user of a SCRAM exchange with a fake credential: a stable salt per user, no proof accepted", () => {
    const key = Buffer.alloc(32, 9);
    const real = scramCredential("pencil", "SCRAM-SHA-256", 4096, RFC7677.salt);
    expect(exchangeCredential(real, "user", "SCRAM-SHA-256", key)).toBe(real);
    const ghost = exchangeCredential(undefined, "ghost", "SCRAM-SHA-256", key);
    // The same salt on every attempt (a salt that changed would tell the user does not exist).
    expect(exchangeCredential(undefined, "ghost", "SCRAM-SHA-256", key)).toEqual(ghost);
    expect(Buffer.from(ghost.salt, "base64")).toHaveLength(32);
    expect(ghost.iterations).toBe(4096);
    expect(exchangeCredential(undefined, "ghost2", "SCRAM-SHA-256", key).salt).not.toBe(ghost.salt);
    expect(exchangeCredential(undefined, "ghost", "SCRAM-SHA-512", key).salt).not.toBe(ghost.salt);
    expect(exchangeCredential(undefined, "ghost", "SCRAM-SHA-256", Buffer.alloc(32, 8)).salt).not.toBe(ghost.salt);
    expect(Buffer.from(exchangeCredential(undefined, "ghost", "SCRAM-SHA-512", key).storedKey, "base64")).toHaveLength(64);
    // A client that derived its proof from some password over the fake salt is refused.
    const guess = scramCredential("pencil", "SCRAM-SHA-256", ghost.iterations, Buffer.from(ghost.salt, "base64"));
    const clientKey = Buffer.from(serverSignature({ ...guess, serverKey: guess.storedKey }, "x"));
    expect(verifyClientProof(ghost, RFC7677.authMessage, clientKey)).toBe(false);
    expect(verifyPassword(ghost, "pencil")).toBe(false);
  });
});
