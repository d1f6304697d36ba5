/**
 * A broker's way to the active controller: the broker lifecycle calls (RegisterBroker,
 * BrokerHeartbeat, AlterPartition) and forwarded requests go to whichever voter leads the
 * quorum. When this node is itself the active controller the call is made in-process; otherwise
 * over gRPC to the leader's address, learnt from the local Raft state or, on a broker that is
 * not a voter, by asking the voters in turn (a voter that does not lead answers NOT_CONTROLLER).
 */
import type { RegisterBrokerInput } from "./controller-service.ts";
import type * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import { RillError, rillError } from "../base/errors.ts";
import type { QuorumVoter } from "../config/schema.ts";
import {
  AlterPartitionRequestSchema,
  BrokerHeartbeatRequestSchema,
  ControllerService,
  FetchMetadataRequestSchema,
  RegisterBrokerRequestSchema,
} from "../gen/rill/v1/controller_service_pb.ts";
import { NodeRole } from "../gen/rill/v1/common_pb.ts";
import type { ServiceClient } from "../protocol/grpc-service.ts";
import type { AlterPartitionItem, AlterPartitionOutcome, BrokerControl } from "./controller-service.ts";
import { crashOnBug, fromPeerError } from "./errors.ts";
import type { MemberSigner } from "../security/member-auth.ts";
import { InternalClients } from "./internal-clients.ts";
import { rillErrorFromDetail } from "../protocol/grpc-errors.ts";
import type { MetadataFetchResult } from "../metadata/observer-store.ts";

/** What the channel needs to know about the local node. */
export interface ControllerChannelOptions {
  readonly voters: readonly QuorumVoter[];
  /** The in-process controller, when this node is a voter. */
  readonly local: BrokerControl | null;
  /** The active controller as this node knows it (0: unknown); voters know it from Raft. */
  readonly knownLeader: () => number;
  /** Whether this node is the active controller right now. */
  readonly isLocalLeader: () => boolean;
  readonly callTimeoutMs: number;
  /** Where the clients of the voters come from; by default the channel's own, closed by `close()`. */
  readonly clients?: InternalClients | undefined;
  /** Signs the calls of the transport's own clients (`cluster.secret`, member-auth.ts). */
  readonly signer?: MemberSigner | undefined;
  /** Credentials of the channel's own clients (tls.ts `internalChannelCredentials`); default plaintext. */
  readonly credentials?: grpc.ChannelCredentials | undefined;
  /** Controllers beyond `voters` (issue 21: voters added since), with their addresses. */
  readonly moreVoters?: () => readonly QuorumVoter[];
}

/** Calls the active controller, wherever it is. */
export class ControllerChannel implements BrokerControl {
  private readonly clients: InternalClients;
  private readonly ownsClients: boolean;
  private guess = 0;
  private hint = 0;

  constructor(private readonly o: ControllerChannelOptions) {
    this.ownsClients = o.clients === undefined;
    this.clients = o.clients ?? new InternalClients({ callTimeoutMs: o.callTimeoutMs, credentials: o.credentials, signer: o.signer });
  }

  /** The configured voters, then any controller added since. */
  private voters(): readonly QuorumVoter[] {
    const more = this.o.moreVoters?.() ?? [];
    return more.length === 0 ? this.o.voters : [...this.o.voters, ...more.filter((m) => !this.o.voters.some((v) => v.id === m.id))];
  }

  /** The voter the next remote call goes to. */
  private target(): QuorumVoter {
    const known = this.o.knownLeader() || this.hint;
    const voters = this.voters();
    const v = voters.find((x) => x.id === known);
    if (v) return v;
    this.guess = (this.guess + 1) % voters.length;
    return voters[this.guess]!;
  }

  /** The address of the active controller, if known. */
  leaderAddress(): string | null {
    const known = this.o.knownLeader() || this.hint;
    return this.voters().find((x) => x.id === known)?.address ?? null;
  }

  private client(v: QuorumVoter): ServiceClient<typeof ControllerService> {
    return this.clients.client(ControllerService, v.address);
  }

  private async call<T>(
    local: (c: BrokerControl) => Promise<T>,
    remote: (c: ServiceClient<typeof ControllerService>, deadline: number, done: (e: grpc.ServiceError | null, v?: T) => void) => void,
  ): Promise<T> {
    if (this.o.local && this.o.isLocalLeader()) return local(this.o.local);
    const v = this.target();
    try {
      return await new Promise<T>((resolve, reject) => {
        remote(this.client(v), Date.now() + this.o.callTimeoutMs, (e, res) => (e ? reject(e) : resolve(res!)));
      });
    } catch (e) {
      crashOnBug(e);
      let answered = true;
      const err = fromPeerError(e, (details) => {
        answered = false;
        return rillError("NOT_CONTROLLER", `cannot reach controller ${v.id} at ${v.address}: ${details}`);
      });
      // A voter that does not lead names the one that does ("... node 2 is the active controller").
      const named = answered && err instanceof RillError && err.kind.name === "NOT_CONTROLLER" ? /node (\d+) is/.exec(err.message) : null;
      this.hint = named ? Number(named[1]) : 0;
      throw err;
    }
  }

  register(req: RegisterBrokerInput): Promise<{ brokerEpoch: number }> {
    return this.call(
      (c) => c.register(req),
      (c, deadline, done) =>
        c.registerBroker(
          create(RegisterBrokerRequestSchema, {
            ...req,
            roles: req.roles.map((r) => (r === "controller" ? NodeRole.CONTROLLER : NodeRole.BROKER)),
          }),
          { deadline },
          (e, res) => done(e, res ? { brokerEpoch: Number(res.brokerEpoch) } : undefined),
        ),
    );
  }

  heartbeat(req: {
    nodeId: number;
    brokerEpoch: number;
    currentMetadataOffset: number;
    wantFence: boolean;
    wantShutDown: boolean;
  }): Promise<{ isCaughtUp: boolean; isFenced: boolean; shouldShutDown: boolean }> {
    return this.call(
      (c) => c.heartbeat(req),
      (c, deadline, done) =>
        c.brokerHeartbeat(
          create(BrokerHeartbeatRequestSchema, {
            ...req,
            brokerEpoch: BigInt(req.brokerEpoch),
            currentMetadataOffset: BigInt(req.currentMetadataOffset),
          }),
          { deadline },
          (e, res) => done(e, res ? { isCaughtUp: res.isCaughtUp, isFenced: res.isFenced, shouldShutDown: res.shouldShutDown } : undefined),
        ),
    );
  }

  alterPartition(nodeId: number, brokerEpoch: number, partitions: ReadonlyArray<AlterPartitionItem>): Promise<AlterPartitionOutcome[]> {
    return this.call(
      (c) => c.alterPartition(nodeId, brokerEpoch, partitions),
      (c, deadline, done) =>
        c.alterPartition(
          create(AlterPartitionRequestSchema, {
            nodeId,
            brokerEpoch: BigInt(brokerEpoch),
            partitions: partitions.map((p) => ({ ...p, newIsrBrokerEpochs: (p.newIsrBrokerEpochs ?? []).map(BigInt) })),
          }),
          { deadline },
          (e, res) =>
            done(
              e,
              res?.partitions.map((p) => {
                return {
                  topic: p.topic,
                  partition: p.partition,
                  leader: p.leader,
                  leaderEpoch: p.leaderEpoch,
                  partitionEpoch: p.partitionEpoch,
                  isr: [...p.isr],
                  error: p.error ? rillErrorFromDetail(p.error) : null,
                };
              }),
            ),
        ),
    );
  }

  /** FetchMetadata from voter `voterId` (an observer following the metadata log). */
  fetchMetadata(clusterId: string, nodeId: number, voterId: number, afterOffset: number, maxWaitMs: number): Promise<MetadataFetchResult> {
    const v = this.voters().find((x) => x.id === voterId);
    if (!v) return Promise.reject(new Error(`voter ${voterId} is unknown`));
    return new Promise((resolve, reject) => {
      this.client(v).fetchMetadata(
        create(FetchMetadataRequestSchema, { clusterId, nodeId, afterOffset: BigInt(afterOffset), maxWaitMs }),
        { deadline: Date.now() + maxWaitMs + this.o.callTimeoutMs },
        (e, res) => {
          if (e) return reject(fromPeerError(e, (details) => new Error(`cannot reach voter ${v.id} at ${v.address}: ${details}`)));
          resolve({
            snapshot: Number(res!.snapshotOffset) >= 0 ? { offset: Number(res!.snapshotOffset), data: res!.snapshot } : null,
            entries: res!.entries.map((x) => ({ offset: Number(x.offset), records: x.records })),
            leader: res!.leaderId,
            commitOffset: Number(res!.commitOffset),
          });
        },
      );
    });
  }

  /** Closes the clients, when they are the channel's own. */
  close(): void {
    if (this.ownsClients) this.clients.close();
  }
}
