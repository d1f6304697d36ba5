import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../../src/base/clock.ts";
import {
  type CallClaims,
  MEMBER_WINDOW_MS,
  MESSAGE_MAC_BYTES,
  MemberSigner,
  MemberVerifier,
  parseMemberHeader,
} from "../../../src/security/member-auth.ts";

const SECRET = "a-cluster-secret-for-tests";
const claims: CallClaims = { path: "/rill.v1.ControllerService/AppendEntries", principal: "", clientHost: "", forwarded: false };
const nonce = (): string => randomBytes(16).toString("hex");
const frame = (mac: Buffer, body: Buffer): Buffer => Buffer.concat([mac, body]);

function pair(clock = new ManualClock()) {
  return { clock, signer: new MemberSigner(SECRET, 2, clock, nonce), verifier: new MemberVerifier(SECRET, clock) };
}

describe("MemberSigner / MemberVerifier", () => {
  it("accepts a signed call and opens its messages, in order, to the exact bytes", () => {
    const { signer, verifier } = pair();
    const call = signer.signCall(claims);
    const v = verifier.verifyCall(call.header, claims);
    expect(v.ok).toBe(true);
    if (!v.ok) return;
    expect(v.call.node).toBe(2);
    const a = Buffer.from("first message");
    const b = Buffer.from("second message");
    expect(v.call.open(0, frame(call.messageMac(0, a), a))?.toString()).toBe("first message");
    expect(v.call.open(1, frame(call.messageMac(1, b), b))?.toString()).toBe("second message");
    // A message moved to another place of the stream does not verify.
    expect(v.call.open(2, frame(call.messageMac(1, b), b))).toBeNull();
  });

  it("refuses a tampered body, a truncated frame and a message of another call", () => {
    const { signer, verifier } = pair();
    const call = signer.signCall(claims);
    const v = verifier.verifyCall(call.header, claims);
    if (!v.ok) throw new Error(v.reason);
    const body = Buffer.from("remove-topic orders");
    const framed = frame(call.messageMac(0, body), body);
    framed.writeUInt8(framed.readUInt8(framed.length - 1) ^ 1, framed.length - 1);
    expect(v.call.open(0, framed)).toBeNull();
    expect(v.call.open(0, Buffer.alloc(MESSAGE_MAC_BYTES - 1))).toBeNull();
    const other = signer.signCall(claims);
    expect(v.call.open(0, frame(other.messageMac(0, body), body))).toBeNull();
  });

  it("refuses a replayed header (same nonce) within the window, and after it by the window", () => {
    const { clock, signer, verifier } = pair();
    const call = signer.signCall(claims);
    expect(verifier.verifyCall(call.header, claims).ok).toBe(true);
    const again = verifier.verifyCall(call.header, claims);
    expect(again).toEqual({ ok: false, reason: expect.stringContaining("already used") });
    clock.advance(MEMBER_WINDOW_MS + 1);
    const late = verifier.verifyCall(call.header, claims);
    expect(late).toEqual({ ok: false, reason: expect.stringContaining("more than") });
    // The expired nonce is forgotten once a later call verifies.
    expect(verifier.verifyCall(signer.signCall(claims).header, claims).ok).toBe(true);
    expect(verifier.nonces).toBe(1);
  });

  it("accepts clocks apart by up to the window, either way, and refuses beyond", () => {
    const senderClock = new ManualClock(1_700_000_000_000);
    const receiverClock = new ManualClock(1_700_000_000_000 + MEMBER_WINDOW_MS);
    const signer = new MemberSigner(SECRET, 1, senderClock, nonce);
    const verifier = new MemberVerifier(SECRET, receiverClock);
    expect(verifier.verifyCall(signer.signCall(claims).header, claims).ok).toBe(true);
    receiverClock.advance(1);
    expect(verifier.verifyCall(signer.signCall(claims).header, claims).ok).toBe(false);
    senderClock.advance(2 * MEMBER_WINDOW_MS + 1);
    expect(verifier.verifyCall(signer.signCall(claims).header, claims).ok).toBe(true);
    senderClock.advance(1);
    expect(verifier.verifyCall(signer.signCall(claims).header, claims).ok).toBe(false);
  });

  it("refuses a call signed with another secret", () => {
    const clock = new ManualClock();
    const signer = new MemberSigner("another-secret", 2, clock, nonce);
    const v = new MemberVerifier(SECRET, clock).verifyCall(signer.signCall(claims).header, claims);
    expect(v).toEqual({ ok: false, reason: expect.stringContaining("does not verify") });
  });

  it("binds the path, the passed-on principal, host and forwarded marker", () => {
    const { signer, verifier } = pair();
    const variants: CallClaims[] = [
      { ...claims, path: "/rill.v1.ControllerService/RegisterBroker" },
      { ...claims, principal: "User:admin" },
      { ...claims, clientHost: "10.0.0.1" },
      { ...claims, forwarded: true },
    ];
    for (const other of variants) {
      const v = verifier.verifyCall(signer.signCall(claims).header, other);
      expect(v.ok, JSON.stringify(other)).toBe(false);
    }
  });

  it("refuses malformed headers", () => {
    const { signer, verifier } = pair();
    const good = signer.signCall(claims).header;
    const [node, ts, n, mac] = good.split(".");
    for (const bad of [
      "",
      "x",
      `${node}.${ts}.${n}`,
      `-1.${ts}.${n}.${mac}`,
      `${node}.${ts}.${n}zz.${mac}`,
      `${node}.${ts}.${n}.${mac}=`,
      `${good}.x`,
    ]) {
      expect(verifier.verifyCall(bad, claims).ok, bad).toBe(false);
      expect(parseMemberHeader(bad), bad).toBeNull();
    }
  });

  it("refuses new calls, rather than growing, when noncesMax calls are live", () => {
    const clock = new ManualClock();
    const signer = new MemberSigner(SECRET, 2, clock, nonce);
    const verifier = new MemberVerifier(SECRET, clock, MEMBER_WINDOW_MS, 3);
    for (let i = 0; i < 3; i++) expect(verifier.verifyCall(signer.signCall(claims).header, claims).ok).toBe(true);
    expect(verifier.verifyCall(signer.signCall(claims).header, claims)).toEqual({
      ok: false,
      reason: expect.stringContaining("refusing more"),
    });
    clock.advance(MEMBER_WINDOW_MS + 1);
    expect(verifier.verifyCall(signer.signCall(claims).header, claims).ok).toBe(true);
    expect(verifier.nonces).toBe(1);
  });
});
