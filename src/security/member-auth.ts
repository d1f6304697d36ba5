/**
 * Authenticated cluster membership without TLS: every internal call is signed with an HMAC
 * keyed by `cluster.secret`, and a node serves an internal call only when the signature holds.
 *
 * The life of a signed call:
 *  1. The sender (`MemberSigner.signCall`) draws a random nonce and reads its clock, and MACs
 *     the call's claims — method path, its own node id, the timestamp, the nonce, and the
 *     original caller's principal, client host and forwarded marker that it passes on — into
 *     one header value: `rill-member: <node>.<timestampMs>.<nonce>.<callMac>`.
 *  2. Each request message it sends on that call (one for a unary call, any number on a stream)
 *     is the 32-byte message MAC followed by the serialized request: the message MAC is
 *     HMAC(secret, callMac ‖ u32 sequence number ‖ request bytes), so a message belongs to one
 *     call, at one place in it, with exactly those bytes.
 *  3. The receiver (`MemberVerifier.verifyCall`) checks the header when the call's headers
 *     arrive, before any message is read: the timestamp within ±`windowMs` of its own clock,
 *     the call MAC, and a nonce not seen within the window (a recorded call sent again is a
 *     replay). Then `VerifiedCall.open` checks each message's MAC over the raw bytes and only
 *     then hands back the bytes to decode — nothing of a forged call is ever decoded.
 *
 * Nonces are remembered until their timestamp leaves the window, at most `noncesMax` at once;
 * when that many are live, new calls are refused rather than the memory growing (fail closed).
 *
 * Limits: each node remembers the nonces it saw, so a call recorded on the wire to one member
 * could be sent once to another member within the window. The signature does not name the
 * receiving node (internal clients do not always know it, and the address they dial may be a
 * proxy's); Raft calls name it in their body (`to_node_id`, checked), broker lifecycle calls act
 * only on the active controller. Clocks of members must agree within the window. Without TLS the
 * calls are authenticated, not private: use internal mutual TLS where the network is not trusted.
 *
 * Pure: the clock and the nonces are injected; HMAC and SHA-256 come from node:crypto.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import type { Clock } from "../base/clock.ts";

/** How far a signed call's timestamp may be from the receiver's clock. */
export const MEMBER_WINDOW_MS = 30_000;
/** Nonces remembered at most (calls within one window); more calls are refused. */
export const MEMBER_NONCES_MAX = 1_000_000;
/** Bytes of the MAC before each signed request message. */
export const MESSAGE_MAC_BYTES = 32;

/** What a signed call claims; the MAC covers all of it. */
export interface CallClaims {
  /** gRPC method path, `/rill.v1.ControllerService/AppendEntries`. */
  readonly path: string;
  /** The original caller's principal the sender passes on ("" for none). */
  readonly principal: string;
  /** The original caller's host the sender passes on ("" for none). */
  readonly clientHost: string;
  /** Whether the call is marked forwarded. */
  readonly forwarded: boolean;
}

/** The header of a signed call, parsed. */
export interface MemberHeader {
  readonly node: number;
  readonly timestampMs: number;
  readonly nonce: string;
  readonly mac: Buffer;
}

/** A signed call on the sender's side: its header, and the MAC of each message it sends. */
export interface SignedCall {
  /** The value of the `rill-member` header. */
  readonly header: string;
  /** The 32-byte MAC to put before request message number `seq` (from 0) with bytes `body`. */
  messageMac(seq: number, body: Uint8Array): Buffer;
}

/** A call whose header verified: checks its messages. */
export interface VerifiedCall {
  /** The member that sent it. */
  readonly node: number;
  /**
   * The request bytes of message `seq` when `framed` (MAC then bytes) carries a valid MAC;
   * null when it does not (the call must then be refused).
   */
  open(seq: number, framed: Buffer): Buffer | null;
}

/** Why a call was refused, or the verified call. */
export type CallVerdict = { readonly ok: true; readonly call: VerifiedCall } | { readonly ok: false; readonly reason: string };

const NONCE = /^[0-9a-f]{32}$/;

function callMac(key: Buffer, claims: CallClaims, node: number, timestampMs: number, nonce: string): Buffer {
  // JSON of an array: unambiguous whatever the strings hold.
  const text = JSON.stringify([
    "rill-member-v1",
    claims.path,
    node,
    timestampMs,
    nonce,
    claims.principal,
    claims.clientHost,
    claims.forwarded,
  ]);
  return createHmac("sha256", key).update(text).digest();
}

function messageMac(key: Buffer, mac: Buffer, seq: number, body: Uint8Array): Buffer {
  const n = Buffer.alloc(4);
  n.writeUInt32BE(seq >>> 0);
  return createHmac("sha256", key).update(mac).update(n).update(body).digest();
}

/** The key of a secret (its UTF-8 bytes); an empty secret is a bug of the caller. */
function keyOf(secret: string): Buffer {
  if (secret === "") throw new RangeError("cluster.secret is empty");
  return Buffer.from(secret, "utf8");
}

/** Parses `node.timestampMs.nonce.mac`; null when it is not that shape. */
export function parseMemberHeader(value: string): MemberHeader | null {
  const parts = value.split(".");
  if (parts.length !== 4) return null;
  const [nodeText, tsText, nonce, macText] = parts as [string, string, string, string];
  if (!/^\d{1,10}$/.test(nodeText) || !/^\d{1,16}$/.test(tsText) || !NONCE.test(nonce)) return null;
  const mac = Buffer.from(macText, "base64url");
  if (mac.length !== 32 || mac.toString("base64url") !== macText) return null;
  return { node: Number(nodeText), timestampMs: Number(tsText), nonce, mac };
}

/** Signs the internal calls of node `nodeId`. */
export class MemberSigner {
  private readonly key: Buffer;

  /** `nonce`: 16 random bytes as 32 lowercase hex digits, different on every call. */
  constructor(
    secret: string,
    readonly nodeId: number,
    private readonly clock: Clock,
    private readonly nonce: () => string,
  ) {
    this.key = keyOf(secret);
  }

  /** Signs one call's claims. */
  signCall(claims: CallClaims): SignedCall {
    const ts = this.clock.nowMs();
    const nonce = this.nonce();
    if (!NONCE.test(nonce)) throw new RangeError(`nonce ${JSON.stringify(nonce)} is not 32 hex digits`);
    const mac = callMac(this.key, claims, this.nodeId, ts, nonce);
    const key = this.key;
    return {
      header: `${this.nodeId}.${ts}.${nonce}.${mac.toString("base64url")}`,
      messageMac: (seq, body) => messageMac(key, mac, seq, body),
    };
  }
}

/** Verifies signed calls: window, MAC, replay. */
export class MemberVerifier {
  private readonly key: Buffer;
  /** nonce → when it leaves the window; in insertion order. */
  private readonly seen = new Map<string, number>();

  constructor(
    secret: string,
    private readonly clock: Clock,
    readonly windowMs: number = MEMBER_WINDOW_MS,
    readonly noncesMax: number = MEMBER_NONCES_MAX,
  ) {
    this.key = keyOf(secret);
    if (!Number.isSafeInteger(windowMs) || windowMs <= 0) throw new RangeError(`windowMs ${windowMs} is not a positive integer`);
    if (!Number.isSafeInteger(noncesMax) || noncesMax <= 0) throw new RangeError(`noncesMax ${noncesMax} is not a positive integer`);
  }

  /** Nonces remembered now. */
  get nonces(): number {
    return this.seen.size;
  }

  /** Checks the header of a call that claims `claims`; remembers its nonce when it verifies. */
  verifyCall(headerValue: string, claims: CallClaims): CallVerdict {
    const h = parseMemberHeader(headerValue);
    if (h === null) return { ok: false, reason: "malformed rill-member header" };
    const now = this.clock.nowMs();
    if (Math.abs(now - h.timestampMs) > this.windowMs)
      return { ok: false, reason: `timestamp ${h.timestampMs} is more than ${this.windowMs} ms from this node's clock (${now})` };
    const expected = callMac(this.key, claims, h.node, h.timestampMs, h.nonce);
    if (!timingSafeEqual(expected, h.mac))
      return { ok: false, reason: "call signature does not verify (wrong cluster.secret, or altered)" };
    this.expire(now);
    if (this.seen.has(h.nonce)) return { ok: false, reason: `nonce ${h.nonce} was already used (replayed call)` };
    if (this.seen.size >= this.noncesMax)
      return { ok: false, reason: `${this.noncesMax} signed calls within ${this.windowMs} ms: refusing more` };
    this.seen.set(h.nonce, h.timestampMs + this.windowMs);
    const key = this.key;
    return {
      ok: true,
      call: {
        node: h.node,
        open: (seq, framed) => {
          if (framed.length < MESSAGE_MAC_BYTES) return null;
          const body = framed.subarray(MESSAGE_MAC_BYTES);
          const want = messageMac(key, h.mac, seq, body);
          return timingSafeEqual(want, framed.subarray(0, MESSAGE_MAC_BYTES)) ? body : null;
        },
      },
    };
  }

  /** Forgets nonces whose window has passed, oldest first (stops at the first live one). */
  private expire(now: number): void {
    for (const [nonce, until] of this.seen) {
      if (until >= now) break;
      this.seen.delete(nonce);
    }
  }
}
