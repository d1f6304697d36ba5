/**
 * Forwarding of metadata-changing requests to the active controller, so that any node answers
 * any Admin call (and InitProducerId). The node that is not the active controller passes the
 * request unchanged to the controller's address, marked `rill-forwarded` (a forwarded request is
 * never forwarded again), and answers what the controller answered.
 *
 * Read-your-writes through the same node: the controller's answer carries the metadata offset
 * that holds the change (`rill-metadata-offset`, sent as response headers), and the forwarding
 * node waits until its own image has applied that offset before answering — so a client that
 * created a topic through node 2 finds it on node 2 at once.
 *
 * The clients of other nodes come from an `InternalClients` (internal-clients.ts): a shared one
 * when given, else each Forwarder and LeaderClients owns one and closes it in `close()`.
 */
import * as grpc from "@grpc/grpc-js";
import type { DescService } from "@bufbuild/protobuf";
import { RillError, rillError } from "../base/errors.ts";
import type { MethodName } from "../protocol/grpc-service.ts";
import type { Requester } from "../security/requester.ts";
import { CLIENT_HOST_KEY, PRINCIPAL_KEY, requesterOf } from "./call-context.ts";
import { fromPeerError } from "./errors.ts";
import { isMemberCall } from "./member-auth.ts";
import { InternalClients } from "./internal-clients.ts";

/**
 * Header that marks a forwarded request. Trusted only from an authenticated cluster member:
 * member-auth.ts removes it from everyone else's calls before a handler sees them.
 */
export const FORWARDED_KEY = "rill-forwarded";
/** Header with the metadata offset that holds the change. */
export const METADATA_OFFSET_KEY = "rill-metadata-offset";

/** What forwarding needs to know about the node. */
export interface ControllerRoute {
  /** Whether this node is the active controller now (it commits itself). */
  isActive(): boolean;
  /** The active controller's address, null while none is known. */
  leaderAddress(): string | null;
  /** The offset of the last metadata record applied here. */
  metadataOffset(): number;
  /** Resolves once the local image holds `offset`, or after `timeoutMs` in any case. */
  waitForOffset(offset: number, timeoutMs: number): Promise<void>;
}

/** The single-node route: this node is always the active controller. */
export const localRoute = (metadataOffset: () => number): ControllerRoute => ({
  isActive: () => true,
  leaderAddress: () => null,
  metadataOffset,
  waitForOffset: async () => {},
});

/** How long a forwarding node waits for a controller to be elected. */
const ELECTION_WAIT_MS = 10_000;
/** How long a forwarding node waits to apply the controller's change. */
const APPLY_WAIT_MS = 5_000;
/** The pause before asking the controller again after NOT_CONTROLLER, times the attempt, capped. */
const RETRY_BACKOFF_MS = 50;
const RETRY_BACKOFF_MAX_MS = 500;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Forwards calls of one service to the active controller. */
export class Forwarder<S extends DescService> {
  private readonly clients: InternalClients;
  private readonly ownsClients: boolean;

  /** @param clients where the clients of the controller come from; by default its own, closed by `close()`. */
  constructor(
    private readonly service: S,
    private readonly route: ControllerRoute,
    clients?: InternalClients,
  ) {
    this.ownsClients = clients === undefined;
    this.clients = clients ?? new InternalClients();
  }

  /** True when `call` should be forwarded rather than run here. */
  shouldForward(call: grpc.ServerUnaryCall<unknown, unknown>): boolean {
    return !this.route.isActive() && !isForwarded(call);
  }

  /** Marks a locally run change with the offset that holds it. */
  markOffset(call: grpc.ServerUnaryCall<unknown, unknown>): void {
    const md = new grpc.Metadata();
    md.set(METADATA_OFFSET_KEY, String(this.route.metadataOffset()));
    call.sendMetadata(md);
  }

  /** Passes `req` to the active controller and answers its response. */
  forward<Res>(method: MethodName<S>, req: unknown, call: grpc.ServerUnaryCall<unknown, unknown>): Promise<Res> {
    return this.forwardAs<Res>(method, req, requesterOf(call), call.getDeadline());
  }

  /**
   * Passes `req` to the active controller on behalf of `requester` (who asked, on any listener:
   * the Kafka listener, the HTTP console) with a deadline (a Date or ms since the epoch;
   * Infinity: 60 s), and answers its response once this node has applied the change.
   */
  async forwardAs<Res>(method: MethodName<S>, req: unknown, requester: Requester | undefined, deadline: grpc.Deadline): Promise<Res> {
    const deadlineMs = deadline === Infinity ? Date.now() + 60_000 : Number(deadline);
    const metadata = forwardedMetadata(requester);
    for (let attempt = 1; ; attempt++) {
      const address = await this.controllerAddress(deadlineMs);
      let offset = -1;
      try {
        const res = await this.clients.unary<S, Res>(this.service, address, method, req, {
          metadata,
          deadline: deadlineMs,
          onHeaders: (m) => {
            const v = Number(m.get(METADATA_OFFSET_KEY)[0]);
            if (Number.isSafeInteger(v)) offset = v;
          },
        });
        if (offset >= 0) await this.route.waitForOffset(offset, APPLY_WAIT_MS);
        return res;
      } catch (e) {
        const err = fromPeerError(e, (details) =>
          rillError("NOT_CONTROLLER", `forwarding to the active controller at ${address} failed: ${details}`),
        );
        // The controller moved (it answered NOT_CONTROLLER: it did not take the change) or could
        // not be reached: ask the one the route names next, as Kafka's forwarding does, while
        // the deadline leaves room for another try.
        const pause = Math.min(RETRY_BACKOFF_MS * attempt, RETRY_BACKOFF_MAX_MS);
        if (!(err instanceof RillError) || err.kind.name !== "NOT_CONTROLLER" || Date.now() + pause >= deadlineMs) throw err;
        await sleep(pause);
      }
    }
  }

  /**
   * The active controller's address, waiting up to ELECTION_WAIT_MS (and the deadline) for one to
   * be elected. NOT_CONTROLLER when none is, or when this node became the controller meanwhile
   * (the caller then commits the change itself on its retry).
   */
  private async controllerAddress(deadlineMs: number): Promise<string> {
    const until = Math.min(Date.now() + ELECTION_WAIT_MS, deadlineMs);
    let address = this.route.leaderAddress();
    while (address === null && !this.route.isActive()) {
      if (Date.now() >= until) throw rillError("NOT_CONTROLLER", `no active controller was elected within ${ELECTION_WAIT_MS} ms`);
      await sleep(50);
      address = this.route.leaderAddress();
    }
    if (address === null) throw rillError("NOT_CONTROLLER", "this node became the active controller while forwarding; retry");
    return address;
  }

  /** Closes the clients, when they are this Forwarder's own. */
  close(): void {
    if (this.ownsClients) this.clients.close();
  }
}

/**
 * Whether a call was forwarded by a cluster member (it is then never forwarded again). Holds
 * only for members: the marker counts only on a call the membership interceptor (member-auth.ts)
 * settled as a member's (whose signature covers it); it also removes it from anyone else's.
 */
export function isForwarded(call: { metadata: grpc.Metadata }): boolean {
  return call.metadata.get(FORWARDED_KEY).length > 0 && isMemberCall(call.metadata);
}

/** The headers of a forwarded call: the marker, and the original caller (principal, client host) when known. */
export function forwardedMetadata(requester?: Requester): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set(FORWARDED_KEY, "1");
  if (requester !== undefined) {
    metadata.set(PRINCIPAL_KEY, requester.principal);
    if (requester.host !== "") metadata.set(CLIENT_HOST_KEY, requester.host);
  }
  return metadata;
}

/** Where a broker's address comes from (the metadata image). */
export interface BrokerDirectory {
  readonly image: { brokers: ReadonlyMap<number, { address: string; internalAddress?: string | undefined }> };
}

/** The address other members reach a broker at: its internal listener when it has one, else its client address. */
export function peerAddress(broker: { address: string; internalAddress?: string | undefined }): string {
  return broker.internalAddress || broker.address;
}

/**
 * Clients of one service on other brokers, by node id: a broker that does not lead a partition
 * passes produce and fetch requests for it to the leader (marked `rill-forwarded`).
 */
export class LeaderClients<S extends DescService> {
  private readonly clients: InternalClients;
  private readonly ownsClients: boolean;

  /** @param clients where the clients of the leaders come from; by default its own, closed by `close()`. */
  constructor(
    private readonly service: S,
    private readonly dir: BrokerDirectory,
    clients?: InternalClients,
  ) {
    this.ownsClients = clients === undefined;
    this.clients = clients ?? new InternalClients();
  }

  /**
   * Calls `method` on broker `nodeId`: its answer, its catalog error, or REQUEST_TIMED_OUT
   * (retriable) when it could not be reached or did not answer in time.
   */
  call<Res>(
    nodeId: number,
    method: MethodName<S>,
    req: unknown,
    timeoutMs: number,
    requester?: Requester,
    cancel?: { aborted: boolean; onabort: (() => void) | null },
  ): Promise<Res> {
    const broker = this.dir.image.brokers.get(nodeId);
    const address = broker === undefined ? undefined : peerAddress(broker);
    if (address === undefined)
      return Promise.reject(rillError("LEADER_NOT_AVAILABLE", `broker ${nodeId} is not registered; its address is unknown`));
    const metadata = forwardedMetadata(requester);
    const deadline = Date.now() + (timeoutMs > 0 ? timeoutMs : 30_000) + 5_000;
    return this.clients.unary<S, Res>(this.service, address, method, req, { metadata, deadline, cancel }).catch((e: unknown) => {
      // The request may have reached the leader before the connection failed: its outcome is
      // unknown, so the answer must not say "not written" (REQUEST_TIMED_OUT is retriable
      // and promises nothing either way).
      throw fromPeerError(e, (details) =>
        rillError(
          "REQUEST_TIMED_OUT",
          `forwarding to broker ${nodeId} at ${address} failed (${details}); the request may or may not have been applied there`,
        ),
      );
    });
  }

  /** Closes the clients, when they are this LeaderClients' own. */
  close(): void {
    if (this.ownsClients) this.clients.close();
  }
}
