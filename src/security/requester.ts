/**
 * Who sent a request, as every listener (gRPC, internal, Kafka, HTTP) hands it to the service
 * layer: the authenticated principal, the client's address and the client id it gave. The
 * authorizer decides on the principal and host; quotas apply per principal and client id.
 */
import { ANONYMOUS, type Principal } from "../metadata/security-types.ts";

export { ANONYMOUS, type Principal } from "../metadata/security-types.ts";

/** The sender of one request. */
export interface Requester {
  readonly principal: Principal;
  /** The client's IP address (no port); "" when the transport does not know it. */
  readonly host: string;
  /** The client id the client gave (Kafka's client.id; gRPC metadata `rill-client-id`); "" for none. */
  readonly clientId: string;
}

/** An anonymous requester from `host`. */
export function anonymous(host = "", clientId = ""): Requester {
  return { principal: ANONYMOUS, host, clientId };
}

/**
 * The IP address of a grpc-js/Node peer string: `1.2.3.4:5678` → `1.2.3.4`, `[::1]:5678` → `::1`,
 * `ipv4:1.2.3.4:5` → `1.2.3.4`; anything else unchanged.
 */
export function hostOfPeer(peer: string): string {
  let p = peer.replace(/^ipv[46]:/, "");
  if (p.startsWith("[")) {
    const end = p.indexOf("]");
    return end > 0 ? p.slice(1, end) : p;
  }
  const colon = p.lastIndexOf(":");
  if (colon > 0 && p.indexOf(":") === colon) p = p.slice(0, colon);
  return p;
}
