/**
 * SaslHandshake (key 17), v1: the client names the SASL mechanism it will use; the exchange itself
 * follows in SaslAuthenticate requests (sasl-authenticate.ts). Mechanisms offered, when password
 * authentication is on (`auth.methods` has `password`): SCRAM-SHA-256 and SCRAM-SHA-512 always,
 * PLAIN over TLS (or anywhere with `auth.allow.plaintext.passwords=true`). Another mechanism is
 * answered UNSUPPORTED_SASL_MECHANISM (33) with the list. Served before authentication.
 *
 * v0 is advertised (librdkafka requires it before it uses SASL at all) but its flow is not
 * offered: after a v0 handshake Kafka's clients send raw SASL tokens without a request header, a
 * framing this listener does not speak. A v0 handshake is answered UNSUPPORTED_VERSION (35) with
 * the mechanisms, so such a client reports the version instead of hanging; every current client
 * (librdkafka, kafkajs, kafka-python, @platformatic/kafka) sends v1 when the broker offers it.
 */
import { api, type KafkaSession } from "../api.ts";
import type { KafkaDeps } from "../deps.ts";
import { arrayOf, int16, message, string } from "../schema.ts";

export const SaslHandshakeRequest = message("SaslHandshakeRequest", "0-1", "none", {
  mechanism: string(),
});

export const SaslHandshakeResponse = message("SaslHandshakeResponse", "0-1", "none", {
  errorCode: int16(),
  mechanisms: arrayOf(string()),
});

/** UNSUPPORTED_SASL_MECHANISM, ILLEGAL_SASL_STATE, UNSUPPORTED_VERSION. */
const UNSUPPORTED_SASL_MECHANISM = 33;
const ILLEGAL_SASL_STATE = 34;
const UNSUPPORTED_VERSION = 35;

/** The mechanisms this connection may use. */
export function saslMechanisms(deps: KafkaDeps, session: KafkaSession): string[] {
  const a = deps.authenticator;
  if (a === undefined || !a.passwords) return [];
  const plain = session.tls === true || deps.config.authAllowPlaintextPasswords;
  return [...(plain ? ["PLAIN"] : []), "SCRAM-SHA-256", "SCRAM-SHA-512"];
}

export const saslHandshake = api(
  17,
  "0-1",
  SaslHandshakeRequest,
  SaslHandshakeResponse,
  async (req, ctx) => {
    const mechanisms = saslMechanisms(ctx.deps, ctx.session);
    if (ctx.apiVersion === 0) return { errorCode: UNSUPPORTED_VERSION, mechanisms };
    if (ctx.session.authenticated && ctx.session.saslMechanism === null && ctx.deps.authenticator !== undefined) {
      // Authenticated already (SASL done, or mTLS): re-authentication (KIP-368) is not offered.
      return { errorCode: ILLEGAL_SASL_STATE, mechanisms };
    }
    if (!mechanisms.includes(req.mechanism)) return { errorCode: UNSUPPORTED_SASL_MECHANISM, mechanisms };
    ctx.session.saslMechanism = req.mechanism;
    ctx.session.state.delete("sasl");
    return { errorCode: 0, mechanisms };
  },
  { beforeAuthentication: true },
);
