/**
 * The server's side of a SCRAM exchange (RFC 5802, RFC 7677), as Kafka's SASL/SCRAM runs it: two
 * client messages, two answers, the password never sent.
 *
 *   client-first  n,,n=alice,r=<client nonce>
 *   server-first  r=<client nonce><server nonce>,s=<salt base64>,i=<iterations>
 *   client-final  c=biws,r=<both nonces>,p=<ClientProof base64>
 *   server-final  v=<ServerSignature base64>
 *
 * AuthMessage = client-first-bare "," server-first "," client-final-without-proof; the client
 * proves it knows SaltedPassword by ClientProof = ClientKey XOR HMAC(StoredKey, AuthMessage),
 * checked against the stored credential (scram.ts `verifyClientProof`); the server proves it
 * holds the credential with ServerSignature. A user without a credential gets a fake one
 * (`exchangeCredential`): the same shape of answer, failing at the proof like a wrong password.
 *
 * Not offered: channel binding (a `p=` header), an authorization id other than the user, and
 * Kafka's delegation-token extension (`tokenauth`). Each is refused with a message naming it.
 * Pure: the credential lookup, the fake-credential key and the nonce are given.
 */
import { type RillError, rillError } from "../base/errors.ts";
import type { ScramCredential, ScramMechanism } from "../metadata/security-types.ts";
import { exchangeCredential, serverSignature, verifyClientProof } from "./scram.ts";

/** Longest SCRAM message read (a user name of 255 characters and a proof fit many times over). */
export const SCRAM_MESSAGE_BYTES_MAX = 4096;

/** What an exchange needs from its listener. */
export interface ScramExchangeOptions {
  readonly mechanism: ScramMechanism;
  /** The user's stored credential for the mechanism, undefined when there is none. */
  readonly credential: (user: string) => ScramCredential | undefined;
  /** The secret the fake credentials of unknown users derive from (drawn once per listener). */
  readonly fakeKey: Uint8Array;
  /** A fresh server nonce (printable, no comma). */
  readonly nonce: () => string;
}

/** An answer to send, or the refusal that ends the exchange. */
export type ScramStep = { readonly reply: string } | { readonly error: RillError };

function failed(message: string): { readonly error: RillError } {
  return { error: rillError("SASL_AUTHENTICATION_FAILED", message) };
}

/** Decodes a SCRAM saslname (`=2C` is a comma, `=3D` an equals sign); null when malformed. */
function saslName(s: string): string | null {
  if (/=(?!2C|3D)/.test(s)) return null;
  return s.replace(/=2C/g, ",").replace(/=3D/g, "=");
}

/** One SCRAM exchange of one connection: `first`, then `final`, then `user` is authenticated. */
export class ScramExchange {
  private state: "first" | "final" | "done" | "failed" = "first";
  private clientFirstBare = "";
  private serverFirst = "";
  private gs2Header = "";
  private nonce = "";
  private clientNonce = "";
  private credential: ScramCredential | null = null;
  private name = "";

  constructor(private readonly o: ScramExchangeOptions) {}

  /** The authenticated user, once `final` succeeded. */
  get user(): string | null {
    return this.state === "done" ? this.name : null;
  }

  /** The user the client named in its first message ("" before it). */
  get claimedUser(): string {
    return this.name;
  }

  /** Whether the exchange waits for the client's final message. */
  get awaitingFinal(): boolean {
    return this.state === "final";
  }

  /** The client's first message; the server-first message to answer. */
  first(message: string): ScramStep {
    if (this.state !== "first") return { error: rillError("ILLEGAL_SASL_STATE", "SCRAM: the client-first message was already received") };
    this.state = "failed";
    if (message.length > SCRAM_MESSAGE_BYTES_MAX) return failed(`SCRAM: a client-first message of ${message.length} characters`);
    const m = /^([ny]|p=[^,]*),(a=[^,]*)?,(.*)$/.exec(message);
    if (m === null) return failed("SCRAM: the client-first message does not start with a GS2 header (n,,)");
    if ((m[1] as string).startsWith("p=")) return failed("SCRAM: channel binding is not supported; send n,, as the GS2 header");
    const bare = m[3] as string;
    const attrs = bare.split(",");
    if (attrs[0]?.startsWith("m=")) return failed("SCRAM: mandatory extensions are not supported");
    const n = attrs[0]?.startsWith("n=") ? saslName(attrs[0].slice(2)) : null;
    const r = attrs[1]?.startsWith("r=") ? attrs[1].slice(2) : "";
    if (n === null || n === "") return failed("SCRAM: the client-first message names no user (n=)");
    if (r === "" || /[^\x21-\x2b\x2d-\x7e]/.test(r)) return failed("SCRAM: the client-first message has no valid nonce (r=)");
    const extensions = attrs.slice(2);
    if (extensions.some((e) => e.startsWith("tokenauth="))) return failed("SCRAM: delegation tokens are not supported");
    const authzid = m[2] === undefined ? "" : saslName(m[2].slice(2));
    if (authzid !== "" && authzid !== n)
      return failed(`SCRAM: authorization id "${authzid ?? ""}" differs from the user "${n}"; Rill authorizes the user itself`);
    this.name = n;
    this.gs2Header = `${m[1]},${m[2] ?? ""},`;
    this.clientFirstBare = bare;
    this.credential = exchangeCredential(this.o.credential(n), n, this.o.mechanism, this.o.fakeKey);
    this.clientNonce = r;
    this.nonce = r + this.o.nonce();
    this.serverFirst = `r=${this.nonce},s=${this.credential.salt},i=${this.credential.iterations}`;
    this.state = "final";
    return { reply: this.serverFirst };
  }

  /** The client's final message; the server-final message to answer when its proof holds. */
  final(message: string): ScramStep {
    if (this.state !== "final")
      return { error: rillError("ILLEGAL_SASL_STATE", "SCRAM: a client-final message before the client-first one") };
    this.state = "failed";
    if (message.length > SCRAM_MESSAGE_BYTES_MAX) return failed(`SCRAM: a client-final message of ${message.length} characters`);
    const cut = message.lastIndexOf(",p=");
    if (cut < 0) return failed("SCRAM: the client-final message has no proof (p=)");
    const withoutProof = message.slice(0, cut);
    const attrs = withoutProof.split(",");
    if (attrs[0] !== `c=${Buffer.from(this.gs2Header).toString("base64")}`)
      return failed("SCRAM: the channel binding (c=) does not match the client-first message's GS2 header");
    // librdkafka before 2.2 sends its own nonce again in front of the agreed one; Kafka accepts
    // that (it checks only the end), so the exact form of that mistake is accepted too.
    if (attrs[1] !== `r=${this.nonce}` && attrs[1] !== `r=${this.clientNonce}${this.nonce}`)
      return failed("SCRAM: the nonce (r=) is not the one this exchange agreed");
    const proofText = message.slice(cut + 3);
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(proofText)) return failed("SCRAM: the proof (p=) is not base64");
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    const credential = this.credential as ScramCredential;
    if (!verifyClientProof(credential, authMessage, Buffer.from(proofText, "base64")))
      return failed(`authentication failed: unknown user or wrong password (${this.o.mechanism})`);
    this.state = "done";
    return { reply: `v=${serverSignature(credential, authMessage).toString("base64")}` };
  }
}
