/**
 * Cluster membership on gRPC: which calls only members may send, how a server tells a member
 * from anyone else before it decodes a byte of the request, and how internal clients sign.
 *
 * Server side. Every service of a server that checks membership is added with
 * `memberDefinition`: its request deserializer does not decode, it returns the raw bytes
 * (`RawRequest`). `memberInterceptor` — the first interceptor, so it sees headers and messages
 * before any other — decides per call:
 *  - a call with a `rill-member` header is a signed call (security/member-auth.ts): the header
 *    is verified (window, MAC over path, sender, nonce, and the principal, client host and
 *    forwarded marker passed on) when the headers arrive, and each message's MAC over its raw
 *    bytes before the bytes are decoded; a bad signature ends the call UNAUTHENTICATED;
 *  - on a listener with internal mutual TLS, a peer that presented a certificate is a member
 *    (the listener accepted it only when the cluster CA signed it);
 *  - anyone else is a client: on the internal listener, or for an internal service
 *    (ControllerService, ReplicationService) anywhere, the call is refused UNAUTHENTICATED
 *    (CLUSTER_MEMBERSHIP_REQUIRED) with a log line, before its message is read. A client's
 *    `rill-forwarded` header is removed, so `isForwarded` (forward.ts) holds only for members.
 * A single node (no other member can exist) refuses every internal call, whoever sends it.
 *
 * The original caller of a forwarded call: a member's `rill-principal` and `rill-client-host`
 * headers (covered by its signature) are kept for `requesterOf`; `trustMembers(authenticate)`
 * wraps the requester interceptor's hook so that, for a member's call, it answers them instead
 * of authenticating the forwarding node. Everyone else's are removed by that interceptor.
 *
 * Client side: `signingInterceptor(signer)` on every internal client signs each call's headers
 * and puts the message MAC before each request message.
 */
import * as grpc from "@grpc/grpc-js";
import { rillError } from "../base/errors.ts";
import { ControllerService } from "../gen/rill/v1/controller_service_pb.ts";
import { ReplicationService } from "../gen/rill/v1/replication_service_pb.ts";
import type { Principal } from "../metadata/security-types.ts";
import { errorStatus } from "../protocol/grpc-errors.ts";
import { ANONYMOUS } from "../security/requester.ts";
import type { CallClaims, MemberSigner, MemberVerifier, VerifiedCall } from "../security/member-auth.ts";
import { type Authenticate, CLIENT_HOST_KEY, PRINCIPAL_KEY } from "./call-context.ts";

/** Header of a signed call (security/member-auth.ts `SignedCall.header`). */
export const MEMBER_KEY = "rill-member";
/** Header that marks a forwarded request (forward.ts reads it). */
export const FORWARDED_HEADER = "rill-forwarded";

/** The services only cluster members may call. */
export const INTERNAL_SERVICES: readonly string[] = [ControllerService.typeName, ReplicationService.typeName];

/** Whether `path` (`/rill.v1.ControllerService/Vote`) is a method of an internal service. */
export function isInternalPath(path: string): boolean {
  const service = path.split("/")[1] ?? "";
  return INTERNAL_SERVICES.includes(service);
}

/** A request message as it arrived: not decoded until membership is settled. */
export class RawRequest {
  constructor(
    readonly bytes: Buffer,
    /** The method's own (lenient) deserializer. */
    readonly decode: (bytes: Buffer) => unknown,
  ) {}
}

/** `definition` with request deserializers that keep the raw bytes (`RawRequest`). */
export function memberDefinition(definition: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const out: { [name: string]: grpc.MethodDefinition<unknown, unknown> } = {};
  for (const [name, method] of Object.entries(definition)) {
    const decode = method.requestDeserialize as (bytes: Buffer) => unknown;
    out[name] = { ...method, requestDeserialize: (bytes: Buffer) => new RawRequest(bytes, decode) };
  }
  return out;
}

/** How one server tells members from everyone else. */
export interface MemberPolicy {
  /** Verifies signed calls; null without `cluster.secret` (a signed call is then refused). */
  readonly verifier: MemberVerifier | null;
  /** Whether a TLS peer certificate makes a member (the internal listener with mutual TLS). */
  readonly mtls: boolean;
  /** True on the internal listener: every call needs a member. Else only internal services do. */
  readonly membersOnly: boolean;
  /** Set on a single node: every internal call is refused, with this reason. */
  readonly refuseInternal?: string | undefined;
  /** Told each refused call (the broker logs it). */
  readonly onRefused?: ((path: string, peer: string, reason: string) => void) | undefined;
}

/** What `trustMembers` answers for a member's call: the original caller it passed on. */
const memberCalls = new WeakMap<grpc.Metadata, { principal: Principal; host: string | undefined }>();

/**
 * Whether the call with headers `md` was settled as coming from an authenticated member (by the
 * membership interceptor of the server it arrived on).
 */
export function isMemberCall(md: grpc.Metadata): boolean {
  return memberCalls.has(md);
}

function first(md: grpc.Metadata, key: string): string | undefined {
  const v = md.get(key)[0];
  return typeof v === "string" ? v : undefined;
}

/** The claims of a call's headers, as the signature covers them. */
function claimsOf(path: string, md: grpc.Metadata): CallClaims {
  return {
    path,
    principal: first(md, PRINCIPAL_KEY) ?? "",
    clientHost: first(md, CLIENT_HOST_KEY) ?? "",
    forwarded: md.get(FORWARDED_HEADER).length > 0,
  };
}

function refusal(reason: string): grpc.StatusObject {
  const s = errorStatus(rillError("CLUSTER_MEMBERSHIP_REQUIRED", reason));
  return { code: s.code, details: s.details, metadata: s.metadata };
}

/** Whether the TLS handshake of the call carried a peer certificate. */
function presentedCertificate(auth: ReturnType<grpc.ServerInterceptingCallInterface["getAuthContext"]>): boolean {
  return auth.transportSecurityType === "ssl" && auth.sslPeerCertificate !== undefined && auth.sslPeerCertificate.raw !== undefined;
}

/**
 * The server interceptor of `policy` (see the file comment). Install it first, and add every
 * service with `memberDefinition`.
 */
export function memberInterceptor(policy: MemberPolicy): grpc.ServerInterceptor {
  return (method, call) => {
    const path = method.path;
    let signed: VerifiedCall | null = null;
    let seq = 0;
    let refused = false;
    const intercepting: grpc.ServerInterceptingCall = new grpc.ServerInterceptingCall(call, {
      start(next) {
        const refuse = (reason: string): void => {
          refused = true;
          policy.onRefused?.(path, call.getPeer(), reason);
          intercepting.sendStatus(refusal(`${path}: ${reason}`));
        };
        next({
          onReceiveMetadata(md, nextMetadata) {
            const internal = isInternalPath(path);
            if (internal && policy.refuseInternal !== undefined) return refuse(policy.refuseInternal);
            const header = first(md, MEMBER_KEY);
            md.remove(MEMBER_KEY);
            let member = false;
            if (header !== undefined) {
              if (policy.verifier === null) return refuse("signed call, but this node has no cluster.secret");
              const verdict = policy.verifier.verifyCall(header, claimsOf(path, md));
              if (!verdict.ok) return refuse(verdict.reason);
              signed = verdict.call;
              member = true;
            } else if (policy.mtls && presentedCertificate(call.getAuthContext())) {
              member = true;
            }
            if (!member && (internal || policy.membersOnly)) return refuse("not an authenticated cluster member");
            if (member) {
              const principal = (first(md, PRINCIPAL_KEY) as Principal | undefined) ?? ANONYMOUS;
              memberCalls.set(md, { principal: principal || ANONYMOUS, host: first(md, CLIENT_HOST_KEY) || undefined });
            } else {
              md.remove(FORWARDED_HEADER);
            }
            nextMetadata(md);
          },
          onReceiveMessage(message, nextMessage) {
            if (refused) return;
            if (!(message instanceof RawRequest)) return nextMessage(message);
            if (signed === null) return nextMessage(message.decode(message.bytes));
            const body = signed.open(seq, message.bytes);
            if (body === null) return refuse(`request message ${seq} does not match its signature (altered, or not signed)`);
            seq++;
            nextMessage(message.decode(body));
          },
        });
      },
    });
    return intercepting;
  };
}

/**
 * Wraps the requester interceptor's `authenticate` hook: a member's call keeps the principal
 * and client host it passed on (the original caller's); every other call goes to `authenticate`
 * (default: anonymous).
 */
export function trustMembers(authenticate?: Authenticate): Authenticate {
  return (headers, peer, auth) => {
    const member = memberCalls.get(headers);
    if (member !== undefined)
      return member.host === undefined ? { principal: member.principal } : { principal: member.principal, host: member.host };
    return authenticate ? authenticate(headers, peer, auth) : { principal: ANONYMOUS };
  };
}

/** A client interceptor that signs every call (headers) and every request message (MAC before the bytes). */
export function signingInterceptor(signer: MemberSigner): grpc.Interceptor {
  return (options, nextCall) => {
    const path = options.method_definition.path;
    const serialize = options.method_definition.requestSerialize as (value: unknown) => Buffer;
    let seq = 0;
    let macOf: ((seq: number, body: Uint8Array) => Buffer) | null = null;
    return new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        const call = signer.signCall(claimsOf(path, metadata));
        macOf = call.messageMac;
        metadata.set(MEMBER_KEY, call.header);
        next(metadata, listener);
      },
      sendMessage(message, next) {
        const body = serialize(message);
        const mac = macOf!(seq++, body);
        next(Buffer.concat([mac, body]));
      },
    });
  };
}
