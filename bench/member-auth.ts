/**
 * What cluster membership costs per internal call (issue 13): one `MemberSigner.signCall`, the
 * message MAC, `MemberVerifier.verifyCall` (window, MAC, nonce memory) and `open` (message MAC
 * over the raw bytes), for a small body (a Raft heartbeat) and a 1 MiB one (a forwarded produce).
 *
 *   node --import tsx bench/member-auth.ts      (or: bun bench/member-auth.ts [--small-calls N] [--large-calls N])
 */
import { randomBytes } from "node:crypto";
import { systemClock } from "../src/base/clock.ts";
import { type CallClaims, MemberSigner, MemberVerifier } from "../src/security/member-auth.ts";
import { parseArgs } from "./lib.ts";

const o = parseArgs(process.argv.slice(2), { smallCalls: 50_000, largeCalls: 300 }, import.meta.url);

const SECRET = "bench-cluster-secret-0123456789";
const claims: CallClaims = { path: "/rill.v1.ControllerService/AppendEntries", principal: "", clientHost: "", forwarded: false };

for (const [size, calls] of [
  [100, o.smallCalls],
  [1 << 20, o.largeCalls],
] as const) {
  const signer = new MemberSigner(SECRET, 1, systemClock, () => randomBytes(16).toString("hex"));
  const verifier = new MemberVerifier(SECRET, systemClock);
  const body = randomBytes(size);
  const start = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) {
    const call = signer.signCall(claims);
    const framed = Buffer.concat([call.messageMac(0, body), body]);
    const verdict = verifier.verifyCall(call.header, claims);
    if (!verdict.ok || verdict.call.open(0, framed) === null) throw new Error("a signed call did not verify");
  }
  const us = Number(process.hrtime.bigint() - start) / 1000 / calls;
  console.log(`body ${size} bytes: sign + verify ${us.toFixed(1)} µs per call (${calls} calls)`);
}
