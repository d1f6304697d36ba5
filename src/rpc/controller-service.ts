/**
 * ControllerService: the controller quorum's Raft transport (Vote, AppendEntries,
 * InstallSnapshot) and the broker lifecycle calls (RegisterBroker, BrokerHeartbeat,
 * AlterPartition) answered by the active controller.
 *
 * Raft messages travel one way (etcd style): a call delivers messages into the receiver's Raft
 * core and answers empty; the core's answers go back as calls of their own. Every message is
 * checked before any is stepped: the cluster id, the addressee, the sender, and the Raft codec
 * and the core's own validation (malformed → INVALID_ARGUMENT naming what is wrong, nothing
 * changed). Stale-term messages are well-formed and the core ignores or refuses them.
 */
import { create } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { rillError } from "../base/errors.ts";
import {
  AlterPartitionResponseSchema,
  FetchMetadataResponseSchema,
  AppendEntriesResponseSchema,
  BrokerHeartbeatResponseSchema,
  type ControllerService,
  InstallSnapshotResponseSchema,
  RegisterBrokerResponseSchema,
  VoteResponseSchema,
  type AlterPartitionRequest,
  type AlterPartitionResponse_Partition,
  type BrokerHeartbeatRequest,
  type BrokerHeartbeatResponse,
  type InstallSnapshotRequest,
  type InstallSnapshotResponse,
  type RegisterBrokerRequest,
} from "../gen/rill/v1/controller_service_pb.ts";
import { NodeRole } from "../gen/rill/v1/common_pb.ts";
import { decodeMessage } from "../raft/codec.ts";
import type { Message, MessageType, NodeId } from "../raft/types.ts";
import { crashOnBug, toErrorDetail, toServiceError, unary } from "./errors.ts";
import type { ServiceImplementation } from "./grpc-service.ts";

/** The Raft side: where delivered messages go. */
export interface RaftEndpoint {
  readonly nodeId: NodeId;
  readonly voters: readonly NodeId[];
  receive(messages: readonly Message[]): void;
  /**
   * Checks the sender of Raft messages and the directory id it announced; throws (e.g.
   * INVALID_VOTER_KEY) to refuse them (issue 21). Without it, only `voters` may send.
   */
  checkPeer?(from: NodeId, directoryId: string): void;
  /** Committed entries after an offset, for observers (see QuorumMetadataStore.readCommitted). */
  readCommitted(
    after: number,
    maxBytes: number,
  ): { snapshot: { offset: number; data: Uint8Array } | null; entries: Array<{ offset: number; records: Uint8Array }> };
  /** Resolves when an entry after `after` is applied, or after `ms`. */
  waitNewer(after: number, ms: number): Promise<void>;
  /** The active controller (0: unknown) and the commit offset this voter knows. */
  leader(): NodeId;
  commitOffset(): number;
}

/** One partition of an AlterPartition call: the ISR its leader wants, under the epochs it leads with. */
export interface AlterPartitionItem {
  topic: string;
  partition: number;
  leaderEpoch: number;
  partitionEpoch: number;
  newIsr: number[];
  /** Each new member's broker epoch (KIP-903), -1 for a member already in the ISR. */
  newIsrBrokerEpochs?: number[];
}

/** One partition's outcome of AlterPartition. */
export interface AlterPartitionOutcome {
  readonly topic: string;
  readonly partition: number;
  readonly leader: number;
  readonly leaderEpoch: number;
  readonly partitionEpoch: number;
  readonly isr: readonly number[];
  readonly error: Error | null;
}

/** A broker's registration, as the controller decides on it. */
export interface RegisterBrokerInput {
  nodeId: number;
  clusterId: string;
  incarnationId: string;
  address: string;
  rack: string;
  roles: string[];
  /** The broker's effective `max.partitions`; absent: unknown. */
  maxPartitions?: number;
  /** The broker's internal listener; absent: none. */
  internalAddress?: string;
  /** The broker's Kafka listener; absent: none. */
  kafkaAddress?: string;
  /** KIP-966: the broker's previous process may have lost writes it acknowledged; absent: false. */
  uncleanShutdown?: boolean;
  /** The last incarnation that registered from the broker's data dir; absent: unknown. */
  previousIncarnationId?: string;
}

/** The active controller's side of broker lifecycle calls. */
export interface BrokerControl {
  register(req: RegisterBrokerInput): Promise<{ brokerEpoch: number }>;
  heartbeat(req: {
    nodeId: number;
    brokerEpoch: number;
    currentMetadataOffset: number;
    wantFence: boolean;
    wantShutDown: boolean;
  }): Promise<{ isCaughtUp: boolean; isFenced: boolean; shouldShutDown: boolean }>;
  alterPartition(nodeId: number, brokerEpoch: number, partitions: ReadonlyArray<AlterPartitionItem>): Promise<AlterPartitionOutcome[]>;
}

/** What the service needs. */
export interface ControllerServiceDeps {
  readonly clusterId: string;
  /** Null on a node without the controller role: Raft calls answer NOT_CONTROLLER. */
  readonly raft: RaftEndpoint | null;
  readonly control: BrokerControl;
}

const VOTE_TYPES = new Set<MessageType>(["prevote", "vote", "prevote-response", "vote-response"]);
const APPEND_TYPES = new Set<MessageType>(["append", "append-response", "heartbeat", "heartbeat-response", "timeout-now"]);

/** Largest snapshot a voter accepts (the metadata image is small). */
const SNAPSHOT_MAX_BYTES = 512 * 1024 * 1024;

function checkRequest(
  d: ControllerServiceDeps,
  req: { clusterId: string; fromNodeId: number; toNodeId: number; fromDirectoryId?: string },
): RaftEndpoint {
  const raft = d.raft;
  if (!raft) throw rillError("NOT_CONTROLLER", "this node does not run the controller role");
  if (req.clusterId !== d.clusterId)
    throw rillError("INCONSISTENT_CLUSTER_ID", `cluster_id: "${req.clusterId}" is not this cluster's "${d.clusterId}"`);
  if (req.toNodeId !== raft.nodeId) throw rillError("INVALID_REQUEST", `to_node_id: ${req.toNodeId} is not this node (${raft.nodeId})`);
  if (raft.checkPeer !== undefined && req.fromNodeId > 0 && req.fromNodeId !== raft.nodeId) {
    // Voters change (issue 21): any other node of the cluster may talk Raft; the log decides
    // what its messages count for, and a voter id with another directory id is refused.
    raft.checkPeer(req.fromNodeId, req.fromDirectoryId ?? "");
  } else if (req.fromNodeId === raft.nodeId || !raft.voters.includes(req.fromNodeId)) {
    throw rillError(
      "INVALID_REQUEST",
      `from_node_id: ${req.fromNodeId} is not another voter of this quorum (voters: ${raft.voters.join(", ")})`,
    );
  }
  return raft;
}

/** Decodes every message (all or nothing) and checks its envelope against the call's. */
function decodeAll(raw: readonly Uint8Array[], from: number, to: number, allowed: ReadonlySet<MessageType>, what: string): Message[] {
  return raw.map((b, i) => {
    let m: Message;
    try {
      m = decodeMessage(b);
    } catch (e) {
      crashOnBug(e);
      throw rillError("INVALID_REQUEST", `messages[${i}]: ${(e as Error).message}`);
    }
    if (!allowed.has(m.type)) throw rillError("INVALID_REQUEST", `messages[${i}]: a ${m.type} message does not travel by ${what}`);
    if (m.from !== from || m.to !== to)
      throw rillError(
        "INVALID_REQUEST",
        `messages[${i}]: from ${m.from} to ${m.to} disagrees with the call's from_node_id ${from} / to_node_id ${to}`,
      );
    return m;
  });
}

function rolesOf(roles: readonly NodeRole[]): string[] {
  const out: string[] = [];
  for (const r of roles) {
    if (r === NodeRole.BROKER) out.push("broker");
    else if (r === NodeRole.CONTROLLER) out.push("controller");
    else throw rillError("INVALID_REQUEST", `roles: ${r} is not a node role`);
  }
  return out;
}

function nonNegative(v: bigint, field: string): number {
  const n = Number(v);
  if (n < 0 && n !== -1) throw rillError("INVALID_REQUEST", `${field}: ${v} is negative`);
  return n;
}

/** The ControllerService implementation. */
export function controllerService(d: ControllerServiceDeps): ServiceImplementation<typeof ControllerService> {
  const deliver = (
    req: { clusterId: string; fromNodeId: number; toNodeId: number; fromDirectoryId?: string; messages: Uint8Array[] },
    allowed: ReadonlySet<MessageType>,
    what: string,
  ) => {
    const raft = checkRequest(d, req);
    const msgs = decodeAll(req.messages, req.fromNodeId, req.toNodeId, allowed, what);
    raft.receive(msgs);
  };
  return {
    vote: unary((req) => {
      deliver(req, VOTE_TYPES, "Vote");
      return create(VoteResponseSchema, {});
    }),
    appendEntries: unary((req) => {
      deliver(req, APPEND_TYPES, "AppendEntries");
      return create(AppendEntriesResponseSchema, {});
    }),
    installSnapshot: (
      call: grpc.ServerReadableStream<InstallSnapshotRequest, InstallSnapshotResponse>,
      callback: grpc.sendUnaryData<InstallSnapshotResponse>,
    ) => {
      let head: InstallSnapshotRequest | null = null;
      const chunks: Buffer[] = [];
      let received = 0;
      let failed = false;
      const fail = (e: unknown): void => {
        if (failed) return;
        failed = true;
        callback(toServiceError(e));
      };
      call.on("data", (chunk: InstallSnapshotRequest) => {
        if (failed) return;
        try {
          if (head === null) {
            checkRequest(d, chunk);
            head = chunk;
          }
          if (Number(chunk.offset) !== received)
            throw rillError("INVALID_REQUEST", `offset: chunk at ${chunk.offset}, expected ${received} (a chunk was lost or reordered)`);
          received += chunk.data.length;
          if (received > SNAPSHOT_MAX_BYTES) throw rillError("INVALID_REQUEST", `data: snapshot larger than ${SNAPSHOT_MAX_BYTES} bytes`);
          chunks.push(Buffer.from(chunk.data));
        } catch (e) {
          crashOnBug(e);
          fail(e);
        }
      });
      call.on("error", () => {
        failed = true;
      });
      call.on("end", () => {
        if (failed) return;
        try {
          if (head === null) throw rillError("INVALID_REQUEST", "the snapshot stream carried no chunk");
          const [m] = decodeAll(
            [(head as InstallSnapshotRequest).message],
            head.fromNodeId,
            head.toNodeId,
            new Set(["snapshot"]),
            "InstallSnapshot",
          );
          if (m!.type !== "snapshot") throw rillError("INVALID_REQUEST", "message: not a snapshot message");
          const full: Message = { ...m!, snapshot: { meta: m!.snapshot.meta, data: Buffer.concat(chunks) } };
          d.raft!.receive([full]);
          callback(null, create(InstallSnapshotResponseSchema, { bytesReceived: BigInt(received) }));
        } catch (e) {
          crashOnBug(e);
          fail(e);
        }
      });
    },
    fetchMetadata: unary(async (req) => {
      const raft = d.raft;
      if (!raft) throw rillError("NOT_CONTROLLER", "this node does not run the controller role; ask a voter");
      if (req.clusterId !== d.clusterId)
        throw rillError("INCONSISTENT_CLUSTER_ID", `cluster_id: "${req.clusterId}" is not this cluster's "${d.clusterId}"`);
      if (req.maxWaitMs < 0 || req.maxWaitMs > 30_000)
        throw rillError("INVALID_REQUEST", `max_wait_ms: ${req.maxWaitMs} is not in [0, 30000]`);
      const after = Number(req.afterOffset);
      if (!Number.isSafeInteger(after) || after < -1) throw rillError("INVALID_REQUEST", `after_offset: ${req.afterOffset} is below -1`);
      let r = raft.readCommitted(after, 4 << 20);
      if (r.snapshot === null && r.entries.length === 0 && req.maxWaitMs > 0) {
        await raft.waitNewer(after, req.maxWaitMs);
        r = raft.readCommitted(after, 4 << 20);
      }
      return create(FetchMetadataResponseSchema, {
        snapshot: r.snapshot?.data ?? new Uint8Array(0),
        snapshotOffset: BigInt(r.snapshot?.offset ?? -1),
        entries: r.entries.map((e) => ({ offset: BigInt(e.offset), records: e.records })),
        leaderId: raft.leader(),
        commitOffset: BigInt(Math.max(-1, raft.commitOffset())),
      });
    }),
    registerBroker: unary(async (req: RegisterBrokerRequest) => {
      if (req.nodeId < 0) throw rillError("INVALID_REQUEST", `node_id: ${req.nodeId} is negative`);
      if (req.clusterId !== d.clusterId)
        throw rillError("INCONSISTENT_CLUSTER_ID", `cluster_id: "${req.clusterId}" is not this cluster's "${d.clusterId}"`);
      if (req.incarnationId === "") throw rillError("INVALID_REQUEST", "incarnation_id: empty");
      if (!/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/.test(req.address))
        throw rillError("INVALID_REQUEST", `address: "${req.address}" is not HOST:PORT`);
      if (req.internalAddress !== "" && !/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/.test(req.internalAddress))
        throw rillError("INVALID_REQUEST", `internal_address: "${req.internalAddress}" is not HOST:PORT`);
      if (req.kafkaAddress !== "" && !/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/.test(req.kafkaAddress))
        throw rillError("INVALID_REQUEST", `kafka_address: "${req.kafkaAddress}" is not HOST:PORT`);
      const res = await d.control.register({
        nodeId: req.nodeId,
        clusterId: req.clusterId,
        incarnationId: req.incarnationId,
        address: req.address,
        rack: req.rack,
        roles: rolesOf(req.roles),
        ...(req.maxPartitions > 0 ? { maxPartitions: req.maxPartitions } : {}),
        ...(req.internalAddress !== "" ? { internalAddress: req.internalAddress } : {}),
        ...(req.kafkaAddress !== "" ? { kafkaAddress: req.kafkaAddress } : {}),
        ...(req.uncleanShutdown ? { uncleanShutdown: true } : {}),
        ...(req.previousIncarnationId !== "" ? { previousIncarnationId: req.previousIncarnationId } : {}),
      });
      return create(RegisterBrokerResponseSchema, { brokerEpoch: BigInt(res.brokerEpoch) });
    }),
    brokerHeartbeat: unary(async (req: BrokerHeartbeatRequest): Promise<BrokerHeartbeatResponse> => {
      const res = await d.control.heartbeat({
        nodeId: req.nodeId,
        brokerEpoch: nonNegative(req.brokerEpoch, "broker_epoch"),
        currentMetadataOffset: nonNegative(req.currentMetadataOffset, "current_metadata_offset"),
        wantFence: req.wantFence,
        wantShutDown: req.wantShutDown,
      });
      return create(BrokerHeartbeatResponseSchema, res);
    }),
    alterPartition: unary(async (req: AlterPartitionRequest) => {
      const outcomes = await d.control.alterPartition(
        req.nodeId,
        nonNegative(req.brokerEpoch, "broker_epoch"),
        req.partitions.map((p) => ({
          topic: p.topic,
          partition: p.partition,
          leaderEpoch: p.leaderEpoch,
          partitionEpoch: p.partitionEpoch,
          newIsr: [...p.newIsr],
          newIsrBrokerEpochs: p.newIsrBrokerEpochs.map(Number),
        })),
      );
      return create(AlterPartitionResponseSchema, {
        partitions: outcomes.map(
          (o): Omit<AlterPartitionResponse_Partition, "$typeName"> => ({
            topic: o.topic,
            partition: o.partition,
            leader: o.leader,
            leaderEpoch: o.leaderEpoch,
            partitionEpoch: o.partitionEpoch,
            isr: [...o.isr],
            ...(o.error ? { error: toErrorDetail(o.error) } : {}),
          }),
        ),
      });
    }),
  };
}
