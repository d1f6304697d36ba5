/**
 * AdminService over gRPC: a thin adapter over the protocol-neutral admin service
 * (src/service/admin.ts), which holds what each request means. Each handler decodes the request
 * message into the domain input (src/rpc/admin-codec.ts), calls the service, and encodes the
 * answer; a per-topic or per-resource RillError becomes an ErrorDetail, a thrown one a gRPC
 * status (src/rpc/errors.ts).
 *
 * The transport's part of the service's ports lives here: `ControllerPort` is implemented with
 * the `Forwarder` of src/rpc/forward.ts (a change is passed on as a message marked
 * `rill-forwarded`, and a change run here answers the metadata offset that holds it in the
 * response headers), and `LeaderOffsets` with a ListOffsets call to the partition's leader.
 */
import type { InternalClients } from "./internal-clients.ts";
import type { Requester } from "../security/requester.ts";
import { create } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import type { Random } from "../base/random.ts";
import type { BrokerConfig, QuorumVoter } from "../config/schema.ts";
import { OffsetSpec } from "../gen/rill/v1/common_pb.ts";
import { AdminService, type DeleteRecordsResponse } from "../gen/rill/v1/admin_service_pb.ts";
import { FetchService, ListOffsetsRequestSchema, type ListOffsetsResponse } from "../gen/rill/v1/fetch_service_pb.ts";
import type { PartitionLimits } from "../metadata/controller.ts";
import type { MetadataStore } from "../metadata/store.ts";
import type { ReplicaManager } from "../replication/replica-manager.ts";
import { AdminHandlers } from "../service/admin.ts";
import type { ControllerPort, LeaderOffsets } from "../service/admin-ports.ts";
import type { AdminChange, AdminChanges } from "../service/admin-types.ts";
import {
  changeCodecs,
  type ChangeMessages,
  decodeAlterConfigs,
  decodeCreatePartitions,
  decodeCreateTopics,
  decodeDeleteTopics,
  decodeDescribeConfigs,
  decodeDescribeTopics,
  decodeElectLeaders,
  decodeListTopics,
  encodeAlterConfigsResult,
  encodeCreatePartitionsResult,
  encodeCreateTopicsResult,
  encodeDeleteTopicsResult,
  encodeDescribeClusterResult,
  encodeDescribeConfigsResult,
  encodeDescribeTopicsResult,
  encodeElectLeadersResult,
  encodeListTopicsResult,
} from "./admin-codec.ts";
import {
  decodeAlterUserScramCredentials,
  decodeCreateAcls,
  decodeDeleteAcls,
  decodeDescribeAcls,
  decodeDescribeUserScramCredentials,
  encodeAlterUserScramCredentialsResult,
  encodeCreateAclsResult,
  encodeDeleteAclsResult,
  encodeDescribeAclsResult,
  encodeDescribeUserScramCredentialsResult,
} from "./admin-security-codec.ts";
import { SecurityAdminHandlers } from "../service/admin-security.ts";
import { ReassignmentHandlers } from "../service/admin-reassign.ts";
import {
  decodeAlterPartitionReassignments,
  decodeListPartitionReassignments,
  encodeAlterPartitionReassignmentsResult,
  encodeListPartitionReassignmentsResult,
} from "./reassign-codec.ts";
import { CordonHandlers } from "../service/admin-cordon.ts";
import { decodeAlterBrokerCordons, encodeAlterBrokerCordonsResult } from "./cordon-codec.ts";
import { unary } from "./errors.ts";
import { type ControllerRoute, Forwarder, LeaderClients, isForwarded } from "./forward.ts";
import type { ServiceImplementation } from "./grpc-service.ts";
import { QuotaAdmin } from "../service/quota-admin.ts";
import {
  decodeAlterClientQuotas,
  decodeDescribeClientQuotas,
  encodeAlterClientQuotasResult,
  encodeDescribeClientQuotasResult,
} from "./quota-codec.ts";
import { RequestAccess } from "../service/authorize.ts";
import { Access } from "../service/access.ts";
import { requesterOf } from "./call-context.ts";
import { type DeleteRecordsForwarder, deleteRecords } from "../service/delete-records.ts";
import type { TxnService } from "../service/txn-service.ts";
import { type QuorumAdmin, quorumAdminHandlers, withQuorumView } from "./quorum-admin.ts";
import { txnAdminHandlers } from "./txn-admin.ts";
import {
  decodeDeleteRecords,
  decodeDeleteRecordsResult,
  encodeDeleteRecordsInput,
  encodeDeleteRecordsResult,
} from "./delete-records-codec.ts";

/** What the admin service needs from the broker. */
export interface AdminDeps {
  /** The controller quorum's voters and their changes (issue 21); null/absent on a broker-only node. */
  readonly quorum?: QuorumAdmin | null;
  /** Transactions (issue 17); none: the transaction calls answer INVALID_REQUEST. */
  readonly transactions?: TxnService | null;
  readonly rm: ReplicaManager;
  readonly store: MetadataStore;
  readonly random: Random;
  readonly config: Readonly<BrokerConfig>;
  readonly clusterId: string;
  /** The address clients reach this node at. */
  readonly address: () => string;
  /** Where metadata changes are committed (this node, or forwarded to the active controller). */
  readonly route: ControllerRoute;
  /** The active controller's node id, -1 while none is elected. */
  readonly controllerId: () => number;
  /** The controller quorum. */
  readonly voters: readonly QuorumVoter[];
  /** This node's own view, for DescribeCluster. */
  readonly nodeState: () => { roles: string[]; raftRole: string; raftTerm: number; commitOffset: number; brokerState: string };
  /** The broker's shared internal clients (the service makes its own without). */
  readonly clients?: InternalClients;
  /** `max.partitions` of the brokers whose limit this node knows (see AdminServiceDeps). */
  readonly partitionLimits?: () => PartitionLimits;
  /** Who may do what (authorizer.enable); default: everyone everything. */
  readonly access?: RequestAccess;
}

type AnyUnaryCall = grpc.ServerUnaryCall<unknown, unknown>;

/** How long DescribeTopics waits for a leader's offsets. */
const LEADER_OFFSETS_TIMEOUT_MS = 5000;

/**
 * The service's way to the active controller for one gRPC call: the route says whether this node
 * is the controller; the forwarder passes a change on as a message and marks a change run here.
 */
export function grpcControllerPort(fwd: Forwarder<typeof AdminService>, route: ControllerRoute, call: AnyUnaryCall): ControllerPort {
  return {
    forwarded: isForwarded(call),
    isActive: () => route.isActive(),
    forward: async <K extends AdminChange>(change: K, input: AdminChanges[K]["input"]): Promise<AdminChanges[K]["result"]> => {
      const codec = changeCodecs[change];
      const res = await fwd.forward<ChangeMessages[K]["response"]>(change, codec.encodeInput(input), call);
      return codec.decodeResult(res);
    },
    committedHere: () => fwd.markOffset(call),
  };
}

/**
 * The way to the active controller for a request that did not arrive over gRPC (the Kafka
 * listener): `requester` travels with a forwarded change, `timeoutMs` bounds the forward.
 * The returned function builds one port per request.
 */
export function requesterControllerPorts(
  route: ControllerRoute,
  clients?: InternalClients,
): (requester: Requester, timeoutMs: number) => ControllerPort {
  const fwd = new Forwarder(AdminService, route, clients);
  return (requester, timeoutMs) => ({
    forwarded: false,
    isActive: () => route.isActive(),
    forward: async <K extends AdminChange>(change: K, input: AdminChanges[K]["input"]): Promise<AdminChanges[K]["result"]> => {
      const codec = changeCodecs[change];
      const deadline = Date.now() + (timeoutMs > 0 ? timeoutMs : 60_000);
      return codec.decodeResult(await fwd.forwardAs<ChangeMessages[K]["response"]>(change, codec.encodeInput(input), requester, deadline));
    },
    committedHere: () => {},
  });
}

/** The protocol-neutral admin handlers over a broker's admin dependencies (what every adapter calls). */
export function adminHandlers(d: AdminDeps): AdminHandlers {
  return new AdminHandlers({
    rm: d.rm,
    store: d.store,
    random: d.random,
    config: d.config,
    clusterId: d.clusterId,
    controllerId: d.controllerId,
    voters: d.voters,
    nodeState: d.nodeState,
    ...(d.partitionLimits ? { partitionLimits: d.partitionLimits } : {}),
    leaderOffsets: grpcLeaderOffsets(new LeaderClients(FetchService, d.rm, d.clients)),
  });
}

/** Offsets of partitions led by other brokers, asked with one ListOffsets call per leader. */
export function grpcLeaderOffsets(clients: LeaderClients<typeof FetchService>): LeaderOffsets {
  return async (leader, partitions) => {
    const req = create(ListOffsetsRequestSchema, {
      partitions: partitions.flatMap((tp) => [
        { topic: tp.topic, partition: tp.partition, spec: OffsetSpec.EARLIEST },
        { topic: tp.topic, partition: tp.partition, spec: OffsetSpec.LATEST },
      ]),
    });
    const res = await clients.call<ListOffsetsResponse>(leader, "listOffsets", req, LEADER_OFFSETS_TIMEOUT_MS);
    return partitions.map((_, i) => {
      const earliest = res.partitions[2 * i];
      const latest = res.partitions[2 * i + 1];
      if (!earliest || !latest || earliest.error || latest.error) return null;
      return { logStartOffset: Number(earliest.offset), highWatermark: Number(latest.offset) };
    });
  };
}

/** The AdminService implementation. */
export function adminService(d: AdminDeps): ServiceImplementation<typeof AdminService> {
  const fwd = new Forwarder(AdminService, d.route, d.clients);
  const admin = adminHandlers(d);
  const leaders = new LeaderClients(AdminService, d.rm, d.clients);
  const security = new SecurityAdminHandlers({ store: d.store, random: d.random });
  const reassignment = new ReassignmentHandlers({ store: d.store });
  const cordons = new CordonHandlers({ store: d.store }); // issue 21
  const quotas = new QuotaAdmin(d.store);
  /** The way to the controller for one call (gRPC types the call by its messages; the port needs none of them). */
  const via = (call: object): ControllerPort => grpcControllerPort(fwd, d.route, call as AnyUnaryCall);
  const access = d.access ?? new RequestAccess(Access.allowAll());
  /** The caller of a call (gRPC types the call by its messages; the requester needs none of them). */
  const who = (call: object) => requesterOf(call as AnyUnaryCall);
  return {
    createTopics: unary(async (req, call) => {
      const input = decodeCreateTopics(req);
      access.createTopics(who(call), input);
      return encodeCreateTopicsResult(await admin.createTopics(input, via(call)));
    }),
    deleteTopics: unary(async (req, call) => {
      const input = decodeDeleteTopics(req);
      access.deleteTopics(who(call), input);
      return encodeDeleteTopicsResult(await admin.deleteTopics(input, via(call)));
    }),
    listTopics: unary((req, call) => encodeListTopicsResult(access.listTopics(who(call), admin.listTopics(decodeListTopics(req))))),
    describeTopics: unary(async (req, call) => {
      const input = decodeDescribeTopics(req);
      const res = await admin.describeTopics(input, { forwarded: isForwarded(call) });
      return encodeDescribeTopicsResult(access.describeTopics(who(call), input.topics, res));
    }),
    createPartitions: unary(async (req, call) => {
      const input = decodeCreatePartitions(req);
      access.createPartitions(who(call), input);
      return encodeCreatePartitionsResult(await admin.createPartitions(input, via(call)));
    }),
    describeConfigs: unary((req, call) => {
      const input = decodeDescribeConfigs(req);
      access.describeConfigs(who(call), input);
      return encodeDescribeConfigsResult(admin.describeConfigs(input));
    }),
    alterConfigs: unary(async (req, call) => {
      const input = decodeAlterConfigs(req);
      access.alterConfigs(who(call), input);
      return encodeAlterConfigsResult(await admin.alterConfigs(input, via(call)));
    }),
    electLeaders: unary(async (req, call) => {
      const input = decodeElectLeaders(req);
      access.electLeaders(who(call), input);
      return encodeElectLeadersResult(await admin.electLeaders(input, via(call)));
    }),
    describeCluster: unary((_req, call) =>
      withQuorumView(encodeDescribeClusterResult(access.describeCluster(who(call), admin.describeCluster())), d.quorum ?? null),
    ),
    // dynamic controller quorum (issue 21)
    ...quorumAdminHandlers(d.quorum ?? null, d.route, fwd, access, who),
    // partition reassignment (issue 21)
    alterPartitionReassignments: unary(async (req, call) => {
      access.cluster(who(call), "AdminService/AlterPartitionReassignments");
      return encodeAlterPartitionReassignmentsResult(
        await reassignment.alterPartitionReassignments(decodeAlterPartitionReassignments(req), via(call)),
      );
    }),
    listPartitionReassignments: unary((req, call) => {
      access.cluster(who(call), "AdminService/ListPartitionReassignments");
      return encodeListPartitionReassignmentsResult(reassignment.listPartitionReassignments(decodeListPartitionReassignments(req)));
    }),
    // cordoned brokers (issue 21)
    alterBrokerCordons: unary(async (req, call) => {
      access.cluster(who(call), "AdminService/AlterBrokerCordons");
      return encodeAlterBrokerCordonsResult(await cordons.alterBrokerCordons(decodeAlterBrokerCordons(req), via(call)));
    }),
    // security (issue 13): ACLs and SCRAM users
    createAcls: unary(async (req, call) => {
      access.cluster(who(call), "AdminService/CreateAcls");
      return encodeCreateAclsResult(await security.createAcls(decodeCreateAcls(req), via(call)));
    }),
    describeAcls: unary((req, call) => {
      access.cluster(who(call), "AdminService/DescribeAcls");
      return encodeDescribeAclsResult(security.describeAcls(decodeDescribeAcls(req)));
    }),
    deleteAcls: unary(async (req, call) => {
      access.cluster(who(call), "AdminService/DeleteAcls");
      return encodeDeleteAclsResult(await security.deleteAcls(decodeDeleteAcls(req), via(call)));
    }),
    alterUserScramCredentials: unary(async (req, call) => {
      access.cluster(who(call), "AdminService/AlterUserScramCredentials");
      return encodeAlterUserScramCredentialsResult(
        await security.alterUserScramCredentials(decodeAlterUserScramCredentials(req), via(call)),
      );
    }),
    describeUserScramCredentials: unary((req, call) => {
      access.cluster(who(call), "AdminService/DescribeUserScramCredentials");
      return encodeDescribeUserScramCredentialsResult(security.describeUserScramCredentials(decodeDescribeUserScramCredentials(req)));
    }),
    // client quotas (issue 13)
    alterClientQuotas: unary(async (req, call) => {
      access.cluster(who(call), "AdminService/AlterClientQuotas");
      return encodeAlterClientQuotasResult(await quotas.alterClientQuotas(decodeAlterClientQuotas(req), via(call)));
    }),
    describeClientQuotas: unary((req, call) => {
      access.cluster(who(call), "AdminService/DescribeClientQuotas");
      return encodeDescribeClientQuotasResult(quotas.describeClientQuotas(decodeDescribeClientQuotas(req)));
    }),
    // delete records (issue 15)
    deleteRecords: unary(async (req, call) => {
      const input = decodeDeleteRecords(req);
      access.deleteRecords(who(call), input);
      const forwarder = grpcDeleteRecordsForwarder(leaders, who(call));
      return encodeDeleteRecordsResult(await deleteRecords(d.rm, input, { forwarded: isForwarded(call) }, forwarder));
    }),
    // transactions (issue 17)
    ...txnAdminHandlers(d.rm, d.transactions ?? null, access, d.clients),
  };
}

/** How long a DeleteRecords passed to a partition's leader may take. */
const DELETE_RECORDS_FORWARD_TIMEOUT_MS = 30_000;

/**
 * The DeleteRecords forwarder for any adapter of this broker (the Kafka listener too, which may
 * not import src/gen): built once over the broker's shared internal clients; call it with each
 * request's requester.
 */
export function deleteRecordsForwarder(rm: ReplicaManager, clients: InternalClients): (requester: Requester) => DeleteRecordsForwarder {
  const leaders = new LeaderClients(AdminService, rm, clients);
  return (requester) => grpcDeleteRecordsForwarder(leaders, requester);
}

/** DeleteRecords of partitions led by another broker: one AdminService.DeleteRecords call to it, marked forwarded. */
export function grpcDeleteRecordsForwarder(leaders: LeaderClients<typeof AdminService>, requester: Requester): DeleteRecordsForwarder {
  return async (leader, input) => {
    const res = await leaders.call<DeleteRecordsResponse>(
      leader,
      "deleteRecords",
      encodeDeleteRecordsInput(input),
      DELETE_RECORDS_FORWARD_TIMEOUT_MS,
      requester,
    );
    return decodeDeleteRecordsResult(res);
  };
}
