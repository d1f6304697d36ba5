/**
 * The server side of a SCRAM exchange (src/security/scram-exchange.ts) against RFC 7677's
 * SCRAM-SHA-256 example: the server-first and server-final messages byte for byte, librdkafka's
 * doubled client nonce, and each refusal (wrong proof, unknown user alike, out of order, channel
 * binding, another authorization id, delegation tokens, a foreign nonce).
 */
import { describe, expect, it } from "vitest";
import type { ScramCredential } from "../../../src/metadata/security-types.ts";
import { ScramExchange } from "../../../src/security/scram-exchange.ts";
import { scramCredential } from "../../../src/security/scram.ts";

const SALT = Buffer.from("W22ZaJ0SNY7soEsUEjb6gQ==", "base64");
const CRED: ScramCredential = scramCredential("pencil", "SCRAM-SHA-256", 4096, SALT);
const SNONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
const CNONCE = "rOprNGfwEbeRWgbNEkqO";
const FINAL = `c=biws,r=${CNONCE}${SNONCE},p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=`;

const exchangeFor = (credential: ScramCredential | undefined) =>
  new ScramExchange({ mechanism: "SCRAM-SHA-256", credential: () => credential, fakeKey: Buffer.alloc(32, 9), nonce: () => SNONCE });
const exchange = () => exchangeFor(CRED);

describe("ScramExchange (RFC 7677)", () => {
  it("answers the RFC's server-first and server-final messages and names the user", () => {
    const x = exchange();
    expect(x.first(`n,,n=user,r=${CNONCE}`)).toEqual({ reply: `r=${CNONCE}${SNONCE},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096` });
    expect(x.user).toBeNull();
    expect(x.final(FINAL)).toEqual({ reply: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=" });
    expect(x.user).toBe("user");
  });

  it("refuses a wrong proof, and an unknown user with the same message", () => {
    const wrong = exchange();
    wrong.first(`n,,n=user,r=${CNONCE}`);
    const bad = wrong.final(FINAL.replace("p=dHzb", "p=eHzb"));
    const ghost = exchangeFor(undefined);
    const first = ghost.first(`n,,n=user,r=${CNONCE}`);
    expect("reply" in first && first.reply.startsWith(`r=${CNONCE}${SNONCE},s=`)).toBe(true);
    const unknown = ghost.final(FINAL);
    expect("error" in bad && bad.error.kind.name).toBe("SASL_AUTHENTICATION_FAILED");
    expect("error" in unknown && unknown.error.message).toBe("error" in bad && bad.error.message);
    expect(ghost.user).toBeNull();
  });

  it("accepts librdkafka's doubled client nonce (it is covered by the proof), nothing else", () => {
    const x = exchange();
    x.first(`n,,n=user,r=${CNONCE}`);
    const step = x.final(`c=biws,r=${CNONCE}${CNONCE}${SNONCE},p=AAAA`);
    // The nonce passes; the proof (computed for the RFC's AuthMessage) does not.
    expect("error" in step && step.error.message).toMatch(/unknown user or wrong password/);
    const y = exchange();
    y.first(`n,,n=user,r=${CNONCE}`);
    const foreign = y.final(`c=biws,r=other${SNONCE},p=AAAA`);
    expect("error" in foreign && foreign.error.message).toMatch(/nonce/);
  });

  it("refuses out-of-order messages and what it does not offer", () => {
    const early = exchange().final(FINAL);
    expect("error" in early && early.error.kind.name).toBe("ILLEGAL_SASL_STATE");
    const refusal = (m: string) => {
      const s = exchange().first(m);
      return "error" in s ? s.error.message : "accepted";
    };
    expect(refusal(`p=tls-unique,,n=user,r=${CNONCE}`)).toMatch(/channel binding/);
    expect(refusal(`n,a=admin,n=user,r=${CNONCE}`)).toMatch(/authorization id/);
    expect(refusal(`n,,n=user,r=${CNONCE},tokenauth=true`)).toMatch(/delegation tokens/);
    expect(refusal("n,,n=,r=x")).toMatch(/names no user/);
    expect(refusal("hello")).toMatch(/GS2 header/);
    const twice = exchange();
    twice.first(`n,,n=user,r=${CNONCE}`);
    const again = twice.first(`n,,n=user,r=${CNONCE}`);
    expect("error" in again && again.error.kind.name).toBe("ILLEGAL_SASL_STATE");
  });
});
