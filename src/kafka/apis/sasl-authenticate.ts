/**
 * SaslAuthenticate (key 36), v0-2 (v2 flexible): the SASL exchange of the mechanism SaslHandshake
 * chose, through the same authenticator and credentials as gRPC (src/security/authenticator.ts,
 * scram.ts): the users `rill user add` creates log in here too. Served before authentication.
 *
 * - PLAIN (RFC 4616): one message `authzid NUL user NUL password` (authzid empty or the user),
 *   checked as a gRPC Basic password is — PBKDF2 off the event loop, the verified-login cache, the
 *   failed-login rate limit per client address.
 * - SCRAM-SHA-256/512 (RFC 5802): two round trips (src/security/scram-exchange.ts); an unknown
 *   user is answered like a real one and fails at the proof. Each exchange takes a failed-login
 *   token of the client's address, given back when it succeeds.
 *
 * Success: the connection's requester carries `User:<name>` for every later request (the ACLs
 * decide on it) and the rest of the API opens. Failure: SASL_AUTHENTICATION_FAILED (58) with the
 * reason, the connection stays unauthenticated (a later request other than ApiVersions and SASL
 * closes it). Sessions do not expire (session lifetime 0: no re-authentication).
 */
import { randomBytes } from "node:crypto";
import { type RillError, rillError } from "../../base/errors.ts";
import type { AuthResult } from "../../security/authenticator.ts";
import { ScramExchange } from "../../security/scram-exchange.ts";
import { api, type KafkaRequestContext } from "../api.ts";
import type { KafkaDeps } from "../deps.ts";
import { kafkaErrorCode } from "../error-codes.ts";
import { bytes, int16, int64, message, string } from "../schema.ts";

export const SaslAuthenticateRequest = message("SaslAuthenticateRequest", "0-2", "2+", {
  authBytes: bytes(),
});

export const SaslAuthenticateResponse = message("SaslAuthenticateResponse", "0-2", "2+", {
  errorCode: int16(),
  errorMessage: string().nullable("0+").default(null),
  authBytes: bytes(),
  sessionLifetimeMs: int64().since(1),
});

/** Key of the SCRAM exchange in the session's state. */
const STATE = "sasl";

const fakeKeys = new WeakMap<KafkaDeps, Buffer>();

/** The secret unknown users' fake SCRAM credentials derive from: drawn once per listener. */
function fakeKey(deps: KafkaDeps): Buffer {
  let k = fakeKeys.get(deps);
  if (k === undefined) fakeKeys.set(deps, (k = randomBytes(32)));
  return k;
}

type Answer = { errorCode: number; errorMessage: string | null; authBytes: Buffer };

function refused(e: RillError): Answer {
  return { errorCode: kafkaErrorCode(e), errorMessage: e.message, authBytes: Buffer.alloc(0) };
}

/** The session now belongs to `user`. */
function authenticated(ctx: KafkaRequestContext, user: string, reply: Buffer): Answer {
  const s = ctx.session;
  s.requester = { ...s.requester, principal: `User:${user}` };
  s.authenticated = true;
  s.saslMechanism = null;
  s.state.delete(STATE);
  ctx.deps.log.info({ connection: s.id, client: s.requester.host, principal: s.requester.principal }, "kafka client authenticated");
  return { errorCode: 0, errorMessage: null, authBytes: reply };
}

/** PLAIN: `authzid NUL authcid NUL password`. */
async function plain(ctx: KafkaRequestContext, token: Buffer): Promise<Answer> {
  const parts = token.toString("utf8").split("\0");
  if (parts.length !== 3) return refused(rillError("SASL_AUTHENTICATION_FAILED", "PLAIN: expected authzid NUL user NUL password"));
  const [authzid, user, password] = parts as [string, string, string];
  if (user === "") return refused(rillError("SASL_AUTHENTICATION_FAILED", "PLAIN: the user name is empty"));
  if (authzid !== "" && authzid !== user)
    return refused(rillError("SASL_AUTHENTICATION_FAILED", `PLAIN: authorization id "${authzid}" differs from the user "${user}"`));
  const a = ctx.deps.authenticator;
  if (a === undefined) return refused(rillError("SASL_AUTHENTICATION_FAILED", "password authentication is off here"));
  const result: AuthResult = await a.authenticatePassword(user, password, {
    host: ctx.session.requester.host,
    tls: ctx.session.tls === true,
  });
  if ("error" in result) return refused(result.error);
  return authenticated(ctx, result.principal.slice("User:".length), Buffer.alloc(0));
}

/** SCRAM: the first message starts an exchange, the second ends it. */
function scram(ctx: KafkaRequestContext, mechanism: "SCRAM-SHA-256" | "SCRAM-SHA-512", token: Buffer): Answer {
  const a = ctx.deps.authenticator;
  if (a === undefined) return refused(rillError("SASL_AUTHENTICATION_FAILED", "password authentication is off here"));
  const host = ctx.session.requester.host;
  const current = ctx.session.state.get(STATE);
  if (current instanceof ScramExchange && current.awaitingFinal) {
    const step = current.final(token.toString("utf8"));
    if ("error" in step) {
      ctx.session.state.delete(STATE);
      return refused(step.error);
    }
    a.loginSucceeded(host);
    return authenticated(ctx, current.user as string, Buffer.from(step.reply));
  }
  const waitMs = a.beginLogin(host);
  if (waitMs > 0)
    return refused(rillError("SASL_AUTHENTICATION_FAILED", `too many failed logins from ${host || "this address"}: retry in ${waitMs} ms`));
  const image = () => ctx.deps.services.replicas.image;
  const exchange = new ScramExchange({
    mechanism,
    credential: (user) => image().scramCredential(user, mechanism),
    fakeKey: fakeKey(ctx.deps),
    nonce: () => randomBytes(18).toString("base64"),
  });
  const step = exchange.first(token.toString("utf8"));
  if ("error" in step) return refused(step.error);
  ctx.session.state.set(STATE, exchange);
  return { errorCode: 0, errorMessage: null, authBytes: Buffer.from(step.reply) };
}

export const saslAuthenticate = api(
  36,
  "0-2",
  SaslAuthenticateRequest,
  SaslAuthenticateResponse,
  async (req, ctx) => {
    const mechanism = ctx.session.saslMechanism;
    const answer =
      mechanism === null
        ? refused(rillError("ILLEGAL_SASL_STATE", "SaslAuthenticate before SaslHandshake chose a mechanism"))
        : mechanism === "PLAIN"
          ? await plain(ctx, req.authBytes)
          : mechanism === "SCRAM-SHA-256" || mechanism === "SCRAM-SHA-512"
            ? scram(ctx, mechanism, req.authBytes)
            : refused(rillError("UNSUPPORTED_SASL_MECHANISM", `mechanism ${mechanism} is not offered`));
    return { ...answer, sessionLifetimeMs: 0n };
  },
  { beforeAuthentication: true },
);
