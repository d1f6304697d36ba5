/**
 * The controller quorum's outgoing Raft traffic over ControllerService: one grpc-js channel per
 * peer voter (internal-clients.ts); vote messages go by Vote, append/heartbeat/timeout-now and
 * their answers by AppendEntries, snapshots by a client stream of InstallSnapshot chunks.
 *
 * Sends are fire-and-forget, as Raft expects of its network: a call that fails is dropped and
 * Raft's own timeouts resend. At most `inFlightMax` calls per peer are outstanding; messages
 * beyond that are dropped (a slow or dead peer must not pile up memory). A snapshot's outcome
 * is reported back so the leader can retry or move on.
 */
import { create } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { ControllerService, InstallSnapshotRequestSchema } from "../gen/rill/v1/controller_service_pb.ts";
import { encodeMessage } from "../raft/codec.ts";
import type { Message, NodeId, SnapshotMessage } from "../raft/types.ts";
import type { QuorumTransport } from "../metadata/quorum-store.ts";
import type { ServiceClient } from "../protocol/grpc-service.ts";
import type { MemberSigner } from "../security/member-auth.ts";
import { InternalClients } from "./internal-clients.ts";

/** Bytes per InstallSnapshot chunk. */
const SNAPSHOT_CHUNK_BYTES = 1 << 20;

/** What the transport needs. */
export interface GrpcQuorumTransportOptions {
  readonly clusterId: string;
  readonly nodeId: NodeId;
  /** Peer voters' addresses by node id. */
  readonly peers: ReadonlyMap<NodeId, string>;
  /** The address of a peer not in `peers` (a voter added since, an observer), if known (issue 21). */
  readonly peerAddress?: (id: NodeId) => string | undefined;
  /** This node's data-directory id, announced with every call (issue 21). */
  readonly directoryId?: string;
  /** Deadline of one delivery call. */
  readonly callTimeoutMs: number;
  /** Told whether a snapshot reached its voter. */
  readonly onSnapshot: (to: NodeId, ok: boolean) => void;
  readonly inFlightMax?: number;
  /** Where the clients of the peers come from; by default the transport's own, closed by `close()`. */
  readonly clients?: InternalClients | undefined;
  /** Signs the calls of the transport's own clients (`cluster.secret`, member-auth.ts). */
  readonly signer?: MemberSigner | undefined;
  /** Credentials of the transport's own clients (tls.ts `internalChannelCredentials`); default plaintext. */
  readonly credentials?: grpc.ChannelCredentials | undefined;
}

/** Raft messages to peer voters over gRPC. */
export class GrpcQuorumTransport implements QuorumTransport {
  private readonly clients: InternalClients;
  private readonly ownsClients: boolean;
  private readonly inFlight = new Map<NodeId, number>();
  private closed = false;

  constructor(private readonly o: GrpcQuorumTransportOptions) {
    this.ownsClients = o.clients === undefined;
    this.clients = o.clients ?? new InternalClients({ callTimeoutMs: o.callTimeoutMs, credentials: o.credentials, signer: o.signer });
  }

  private client(to: NodeId): ServiceClient<typeof ControllerService> | null {
    const address = this.o.peers.get(to) ?? this.o.peerAddress?.(to);
    return address === undefined ? null : this.clients.client(ControllerService, address);
  }

  send(to: NodeId, messages: readonly Message[]): void {
    if (this.closed) return;
    const c = this.client(to);
    if (!c) return;
    const votes: Uint8Array[] = [];
    const appends: Uint8Array[] = [];
    for (const m of messages) {
      if (m.type === "snapshot") this.sendSnapshot(c, m);
      else if (m.type === "prevote" || m.type === "vote" || m.type === "prevote-response" || m.type === "vote-response")
        votes.push(encodeMessage(m));
      else appends.push(encodeMessage(m));
    }
    const head = { clusterId: this.o.clusterId, fromNodeId: this.o.nodeId, toNodeId: to, fromDirectoryId: this.o.directoryId ?? "" };
    if (votes.length > 0 && this.acquire(to)) {
      c.vote({ $typeName: "rill.v1.VoteRequest", ...head, messages: votes }, { deadline: Date.now() + this.o.callTimeoutMs }, () =>
        this.release(to),
      );
    }
    if (appends.length > 0 && this.acquire(to)) {
      c.appendEntries(
        { $typeName: "rill.v1.AppendEntriesRequest", ...head, messages: appends },
        { deadline: Date.now() + this.o.callTimeoutMs },
        () => this.release(to),
      );
    }
  }

  private acquire(to: NodeId): boolean {
    const n = this.inFlight.get(to) ?? 0;
    if (n >= (this.o.inFlightMax ?? 64)) return false;
    this.inFlight.set(to, n + 1);
    return true;
  }

  private release(to: NodeId): void {
    this.inFlight.set(to, (this.inFlight.get(to) ?? 1) - 1);
  }

  private sendSnapshot(c: ServiceClient<typeof ControllerService>, m: SnapshotMessage): void {
    const data = m.snapshot.data;
    const head = encodeMessage({ ...m, snapshot: { meta: m.snapshot.meta, data: new Uint8Array(0) } });
    const call = c.installSnapshot({ deadline: Date.now() + Math.max(this.o.callTimeoutMs, 30_000) }, (err) => {
      if (!this.closed) this.o.onSnapshot(m.to, err === null);
    });
    let offset = 0;
    do {
      const piece = data.subarray(offset, offset + SNAPSHOT_CHUNK_BYTES);
      call.write(
        create(InstallSnapshotRequestSchema, {
          ...(offset === 0
            ? {
                clusterId: this.o.clusterId,
                fromNodeId: this.o.nodeId,
                toNodeId: m.to,
                message: head,
                fromDirectoryId: this.o.directoryId ?? "",
              }
            : {}),
          data: piece,
          offset: BigInt(offset),
        }),
      );
      offset += piece.length;
    } while (offset < data.length);
    call.end();
  }

  /** Stops sending; closes the clients when they are the transport's own. */
  close(): void {
    this.closed = true;
    if (this.ownsClients) this.clients.close();
  }
}
