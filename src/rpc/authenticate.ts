/**
 * The gRPC side of authentication: the `Authenticate` hook of `requesterInterceptor`
 * (call-context.ts) over the protocol-neutral Authenticator (src/security/authenticator.ts). It
 * reads the `authorization` call metadata and the TLS auth context (is the connection TLS, the
 * client certificate) and answers the principal, or the refusal as a gRPC status with the catalog
 * code in its trailers — before the call's message is read.
 */
import type { AuthResult, Authenticator, PeerCertificateLike } from "../security/authenticator.ts";
import { hostOfPeer } from "../security/requester.ts";
import { errorStatus } from "../protocol/grpc-errors.ts";
import type { Authenticate, Authenticated } from "./call-context.ts";

/**
 * The interceptor's hook for `authenticator`. `listenerTls`: the listener serves only TLS
 * (`tls.cert.file`). grpc-js reports a TLS connection in the auth context only when a client
 * certificate was verified (`socket.authorized`), so under tls.client.auth=none every TLS
 * connection would otherwise look like plaintext and its password be refused.
 */
export function grpcAuthenticate(authenticator: Authenticator, listenerTls = false): Authenticate {
  return (headers, peer, auth) => {
    const values = headers.get("authorization");
    const first = values[0];
    const authorization = first === undefined ? undefined : typeof first === "string" ? first : first.toString("latin1");
    const host = hostOfPeer(peer);
    const result = authenticator.authenticate({
      authorization: values.length > 1 ? `${authorization ?? ""}, ${String(values[1])}` : authorization,
      host,
      tls: listenerTls || auth?.transportSecurityType === "ssl",
      peerCertificate: (auth?.sslPeerCertificate as PeerCertificateLike | undefined) ?? null,
    });
    const answer = (r: AuthResult): Authenticated => ("error" in r ? errorStatus(r.error) : { principal: r.principal, host });
    return result instanceof Promise ? result.then(answer) : answer(result);
  };
}
