/**
 * The requester of a gRPC call (src/security/requester.ts), as handlers read it.
 *
 * The call's authentication happens in a server interceptor (`requesterInterceptor`), which is
 * the only code that sets the `rill-principal` header the handlers read: whatever a client sent
 * under the reserved names is removed first, so a client cannot claim a principal by setting a
 * header. Without authentication configured every caller is `User:ANONYMOUS`.
 */
import * as grpc from "@grpc/grpc-js";
import type { Principal } from "../metadata/security-types.ts";
import { ANONYMOUS, type Requester, hostOfPeer } from "../security/requester.ts";

/** Header set by the interceptor: the authenticated principal. */
export const PRINCIPAL_KEY = "rill-principal";
/** Header set by the interceptor: the client's address (the original caller's, on a forwarded call). */
export const CLIENT_HOST_KEY = "rill-client-host";
/** Header a client sets to name itself (Kafka's client.id). */
export const CLIENT_ID_KEY = "rill-client-id";

/** Headers only the broker itself may set; removed from what clients send. */
export const RESERVED_KEYS: readonly string[] = [PRINCIPAL_KEY, CLIENT_HOST_KEY];

/** What a handler's call offers: its headers and its peer. */
interface CallLike {
  readonly metadata: grpc.Metadata;
  getPeer(): string;
}

function first(md: grpc.Metadata, key: string): string | undefined {
  const v = md.get(key)[0];
  return typeof v === "string" ? v : undefined;
}

/** The requester of `call`, as the interceptor established it. */
export function requesterOf(call: CallLike): Requester {
  const md = call.metadata;
  const principal = (first(md, PRINCIPAL_KEY) as Principal | undefined) ?? ANONYMOUS;
  const host = first(md, CLIENT_HOST_KEY) ?? hostOfPeer(call.getPeer());
  const clientId = first(md, CLIENT_ID_KEY) ?? "";
  return { principal, host, clientId };
}

/** The outcome of authenticating a call: the principal, or the status that refuses it. */
export type Authenticated = { principal: Principal; host?: string } | grpc.StatusObject;

/**
 * Decides the requester of a call from its headers and peer: the principal, or a status that
 * refuses the call (UNAUTHENTICATED). `auth` holds the TLS peer certificate (mTLS). A promise
 * when the decision waits (a password checked off the event loop); the call waits with it.
 */
export type Authenticate = (
  headers: grpc.Metadata,
  peer: string,
  auth: ReturnType<grpc.ServerInterceptingCallInterface["getAuthContext"]>,
) => Authenticated | Promise<Authenticated>;

/**
 * A server interceptor that removes reserved headers clients sent, authenticates the call
 * (`authenticate`; default: everyone is anonymous) and sets `rill-principal` and
 * `rill-client-host` for the handlers — or refuses the call before its message is read.
 */
export function requesterInterceptor(authenticate?: Authenticate): grpc.ServerInterceptor {
  return (_method, call) => {
    const intercepting: grpc.ServerInterceptingCall = new grpc.ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMetadata(metadata, nextMetadata) {
            for (const k of RESERVED_KEYS) metadata.remove(k);
            const peer = call.getPeer();
            const proceed = (who: Authenticated): void => {
              if ("code" in who) {
                intercepting.sendStatus(who);
                return;
              }
              metadata.set(PRINCIPAL_KEY, who.principal);
              metadata.set(CLIENT_HOST_KEY, who.host ?? hostOfPeer(peer));
              nextMetadata(metadata);
            };
            const who = authenticate ? authenticate(metadata, peer, call.getAuthContext()) : { principal: ANONYMOUS };
            if (who instanceof Promise)
              who.then(proceed, (e: unknown) =>
                intercepting.sendStatus({
                  code: grpc.status.INTERNAL,
                  details: `authentication failed: ${String(e)}`,
                  metadata: new grpc.Metadata(),
                }),
              );
            else proceed(who);
          },
        });
      },
    });
    return intercepting;
  };
}
