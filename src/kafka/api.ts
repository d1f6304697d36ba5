/**
 * What one Kafka API is to the listener: its key, the versions Rill implements (and advertises
 * in ApiVersions), its request and response messages, and the handler that turns a decoded
 * request into a response by calling `src/service` — the same calls the gRPC adapter makes.
 *
 * A handler returns the response value (any field left out is its default), or `NO_RESPONSE`
 * when Kafka sends none (Produce with acks=0). Whole-request failures a Kafka client expects in
 * the body (an error code per partition or topic) are the handler's to encode; anything it throws
 * is a broken request: the connection logs it and closes, as Kafka does.
 */
import type { Requester } from "../security/requester.ts";
import type { Cancellation } from "../service/fetch-types.ts";
import type { KafkaDeps } from "./deps.ts";
import { type Encodable, type Message, type ValueOf, type Versions, versions } from "./schema.ts";

// biome-ignore lint/suspicious/noExplicitAny: a message of any fields
type AnyMessage = Message<any>;

/** The handler's answer when Kafka sends no response (acks=0). */
export const NO_RESPONSE: unique symbol = Symbol("no response");

/** What a connection knows about its client, shared by the requests on it. */
export interface KafkaSession {
  /** Who is asking (ANONYMOUS until SASL or mTLS says otherwise), from where, with which client.id. */
  requester: Requester;
  /** Whether SASL has completed (or is not required). */
  authenticated: boolean;
  /** The SASL mechanism chosen by SaslHandshake, until SaslAuthenticate ends. */
  saslMechanism: string | null;
  /** Per-connection state an API keeps between requests (a SCRAM exchange, fetch sessions), by API name. */
  readonly state: Map<string, unknown>;
  /** The connection's id in logs ("kafka-12"). */
  readonly id: string;
  /** Whether the connection is TLS (SASL PLAIN needs it unless plaintext passwords are allowed). */
  readonly tls?: boolean;
}

/** One request as a handler sees it. */
export interface KafkaRequestContext {
  readonly apiVersion: number;
  readonly correlationId: number;
  /** The request header's client id. */
  readonly clientId: string | null;
  readonly session: KafkaSession;
  readonly deps: KafkaDeps;
  /** Set when the connection closes: long polls stop waiting. */
  readonly cancel: Cancellation;
  /** The APIs this listener serves (what ApiVersions advertises). */
  readonly apis: ReadonlyMap<number, KafkaApi>;
  /**
   * Runs `fn` once this request's answer has been written to the socket (its bytes handed to
   * the kernel), or once the connection closed without writing it: where a handler gives back
   * what its answer's bytes refer to (a fetch's read buffers, its memory reservation). The
   * listener's connections always set it.
   */
  readonly afterSent?: (fn: () => void) => void;
}

/** One API of the Kafka listener. */
export interface KafkaApi<Q extends AnyMessage = AnyMessage, S extends AnyMessage = AnyMessage> {
  readonly key: number;
  readonly name: string;
  /** Versions implemented and advertised (within both messages' valid versions). */
  readonly versions: Versions;
  readonly request: Q;
  readonly response: S;
  /** Whether the API may be called before SASL completes (ApiVersions, SaslHandshake, SaslAuthenticate). */
  readonly beforeAuthentication?: boolean;
  handle(req: ValueOf<Q["body"]["fields"]>, ctx: KafkaRequestContext): Promise<Encodable<S> | typeof NO_RESPONSE>;
}

/** Declares an API (types inferred from the messages). `implemented`: "0-9" — the versions advertised. */
export function api<Q extends AnyMessage, S extends AnyMessage>(
  key: number,
  implemented: string,
  request: Q,
  response: S,
  handle: KafkaApi<Q, S>["handle"],
  options: { readonly beforeAuthentication?: boolean } = {},
): KafkaApi<Q, S> {
  const v = versions(implemented);
  for (const m of [request, response]) {
    if (v[0] < m.versions[0] || v[1] > m.versions[1]) {
      throw new Error(`${m.name}: implemented versions ${implemented} are outside its valid versions`);
    }
  }
  return { key, name: request.name.replace(/Request$/, ""), versions: v, request, response, handle, ...options };
}
