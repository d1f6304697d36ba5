/**
 * The service layer's ports for listeners other than gRPC (the HTTP console's JSON API): the
 * same `AdminHandlers` the gRPC AdminService calls, a `ControllerPort` per caller that passes
 * a metadata change to the active controller over the internal gRPC clients, and a
 * `FetchForwarder` that reads partitions with no replica here from their leaders. These need the
 * generated service descriptors, which only `src/rpc` may import; the listener itself then
 * sees domain types only.
 */
import { create } from "@bufbuild/protobuf";
import { RillError, rillError } from "../base/errors.ts";
import type { GroupStateName } from "../coordinator/index.ts";
import { AdminService } from "../gen/rill/v1/admin_service_pb.ts";
import type { ErrorDetail } from "../gen/rill/v1/common_pb.ts";
import { OffsetSpec } from "../gen/rill/v1/common_pb.ts";
import { FetchService, ListOffsetsRequestSchema, type ListOffsetsResponse } from "../gen/rill/v1/fetch_service_pb.ts";
import {
  DescribeGroupsRequestSchema,
  type DescribeGroupsResponse,
  GroupService,
  GroupState,
  ListGroupsRequestSchema,
  type ListGroupsResponse,
} from "../gen/rill/v1/group_service_pb.ts";
import { kindOfCode } from "../protocol/grpc-errors.ts";
import type { ClassicStateName, DescribeGroupResult, GroupListingOutput } from "../service/groups.ts";
import type { Requester } from "../security/requester.ts";
import { AdminHandlers } from "../service/admin.ts";
import type { ControllerPort, LeaderOffsets } from "../service/admin-ports.ts";
import type { AdminChange, AdminChanges } from "../service/admin-types.ts";
import type { FetchForwarder, ListedOffset } from "../service/fetch-types.ts";
import { changeCodecs, type ChangeMessages } from "./admin-codec.ts";
import { type AdminDeps, grpcLeaderOffsets } from "./admin-service.ts";
import { fetchForwarder } from "./fetch-service.ts";
import { Forwarder, LeaderClients } from "./forward.ts";

/** How long a change passed to the active controller may take, for a caller that gives no deadline. */
export const FORWARD_TIMEOUT_MS = 30_000;
/** How long another broker may take to answer a group listing or description. */
export const GROUPS_CALL_TIMEOUT_MS = 5_000;

/** The groups other brokers coordinate, asked of them over GroupService on behalf of a caller (their ACLs apply). */
export interface RemoteGroups {
  /** The groups broker `nodeId` coordinates. Rejects when it cannot be reached. */
  list(nodeId: number, requester: Requester): Promise<GroupListingOutput[]>;
  /** Groups described by broker `nodeId` (their coordinator), in request order. Rejects when it cannot be reached. */
  describe(nodeId: number, groupIds: readonly string[], requester: Requester): Promise<DescribeGroupResult[]>;
}

/** What a non-gRPC listener calls the admin and fetch services through. */
export interface ListenerPorts {
  /** The admin service of this node. */
  readonly admin: AdminHandlers;
  /** The way to the active controller for one request of `requester`. */
  controllerPort(requester: Requester): ControllerPort;
  /** Reads partitions led elsewhere (and not replicated here) from their leaders, as `requester`. */
  fetchForwarder(requester: Requester): FetchForwarder;
  /** Partition offsets (log start, high watermark) as their leaders report them. */
  readonly leaderOffsets: LeaderOffsets;
  /**
   * Broker `leader`'s first offset at or after `timestampMs` in each of `partitions` (ListOffsets
   * TIMESTAMP), as `requester`; one answer per partition, in order. Rejects when it cannot be reached.
   */
  offsetsForTimestamp(
    leader: number,
    partitions: readonly { topic: string; partition: number }[],
    timestampMs: number,
    requester: Requester,
  ): Promise<ListedOffset[]>;
  /** The groups other brokers coordinate. */
  readonly groups: RemoteGroups;
  /** Closes the clients of other nodes, when they are these ports' own (no `d.clients`). */
  close(): void;
}

/** The ports of a node whose admin dependencies are `d` (the same ones the gRPC AdminService gets). */
export function listenerPorts(d: AdminDeps): ListenerPorts {
  const fwd = new Forwarder(AdminService, d.route, d.clients);
  const offsetClients = new LeaderClients(FetchService, d.rm, d.clients);
  const fetchClients = new LeaderClients(FetchService, d.rm, d.clients);
  const groupClients = new LeaderClients(GroupService, d.rm, d.clients);
  const leaderOffsets = grpcLeaderOffsets(offsetClients);
  const admin = new AdminHandlers({
    rm: d.rm,
    store: d.store,
    random: d.random,
    config: d.config,
    clusterId: d.clusterId,
    controllerId: d.controllerId,
    voters: d.voters,
    nodeState: d.nodeState,
    ...(d.partitionLimits ? { partitionLimits: d.partitionLimits } : {}),
    leaderOffsets,
  });
  return {
    admin,
    controllerPort: (requester) => ({
      forwarded: false,
      isActive: () => d.route.isActive(),
      forward: async <K extends AdminChange>(change: K, input: AdminChanges[K]["input"]): Promise<AdminChanges[K]["result"]> => {
        const codec = changeCodecs[change];
        const res = await fwd.forwardAs<ChangeMessages[K]["response"]>(
          change,
          codec.encodeInput(input),
          requester,
          Date.now() + FORWARD_TIMEOUT_MS,
        );
        return codec.decodeResult(res);
      },
      // The caller waits on the change itself: there is no response header to carry the offset.
      committedHere: () => {},
    }),
    fetchForwarder: (requester) => fetchForwarder(fetchClients, requester),
    leaderOffsets,
    offsetsForTimestamp: async (leader, partitions, timestampMs, requester) => {
      const req = create(ListOffsetsRequestSchema, {
        partitions: partitions.map((p) => ({
          topic: p.topic,
          partition: p.partition,
          spec: OffsetSpec.TIMESTAMP,
          timestampMs: BigInt(timestampMs),
        })),
      });
      const res = await fetchClients.call<ListOffsetsResponse>(leader, "listOffsets", req, GROUPS_CALL_TIMEOUT_MS, requester);
      return partitions.map((p, i) => {
        const o = res.partitions[i];
        if (!o)
          return {
            ...p,
            offset: -1,
            timestampMs: -1,
            leaderEpoch: null,
            error: rillError("NOT_LEADER_OR_FOLLOWER", "the leader answered no offset for this partition"),
          };
        return {
          ...p,
          offset: Number(o.offset),
          timestampMs: Number(o.timestampMs),
          leaderEpoch: o.leaderEpoch >= 0 ? o.leaderEpoch : null,
          error: o.error ? fromErrorDetail(o.error) : null,
        };
      });
    },
    groups: {
      list: async (nodeId, requester) => {
        const req = create(ListGroupsRequestSchema, {});
        const res = await groupClients.call<ListGroupsResponse>(nodeId, "listGroups", req, GROUPS_CALL_TIMEOUT_MS, requester);
        return res.groups.map((g) => ({
          groupId: g.groupId,
          state: stateName(g.state),
          members: g.members,
          type: g.type === "classic" ? ("classic" as const) : ("consumer" as const),
          protocolType: g.protocolType,
          classicState: g.classicState === "" ? null : (g.classicState as ClassicStateName),
        }));
      },
      describe: async (nodeId, groupIds, requester) => {
        const req = create(DescribeGroupsRequestSchema, { groupIds: [...groupIds] });
        const res = await groupClients.call<DescribeGroupsResponse>(nodeId, "describeGroups", req, GROUPS_CALL_TIMEOUT_MS, requester);
        return res.groups.map(fromDescribedGroup);
      },
    },
    close: () => {
      fwd.close();
      offsetClients.close();
      fetchClients.close();
      groupClients.close();
    },
  };
}

const STATE_NAMES: ReadonlyMap<GroupState, GroupStateName> = new Map([
  [GroupState.EMPTY, "empty"],
  [GroupState.ASSIGNING, "assigning"],
  [GroupState.RECONCILING, "reconciling"],
  [GroupState.STABLE, "stable"],
  [GroupState.DEAD, "dead"],
]);

/** A group state of the wire as the service names it (an unknown one: "dead"). */
function stateName(s: GroupState): GroupStateName {
  return STATE_NAMES.get(s) ?? "dead";
}

/** A per-item ErrorDetail as a RillError (a code this node does not know keeps the peer's name). */
function fromErrorDetail(e: ErrorDetail): RillError {
  return new RillError(kindOfCode(e.code, e.name, e.retriable), e.message);
}

/** A described group of another broker's answer, as the service's result. */
function fromDescribedGroup(g: DescribeGroupsResponse["groups"][number]): DescribeGroupResult {
  if (g.error) return { groupId: g.groupId, error: fromErrorDetail(g.error), group: null };
  const parts = (list: readonly { topic: string; partitions: number[] }[]) =>
    list.map((t) => ({ topic: t.topic, partitions: [...t.partitions] }));
  return {
    groupId: g.groupId,
    error: null,
    group: {
      state: stateName(g.state),
      groupEpoch: g.groupEpoch,
      assignmentEpoch: g.assignmentEpoch,
      assignor: g.assignor,
      coordinatorId: g.coordinatorId,
      members: g.members.map((m) => ({
        memberId: m.memberId,
        instanceId: m.instanceId ?? null,
        clientId: m.clientId,
        clientHost: m.clientHost,
        memberEpoch: m.memberEpoch,
        topics: [...m.topics],
        assignment: parts(m.assignment),
        pendingRevocation: [],
        targetAssignment: parts(m.targetAssignment),
      })),
      offsets: g.offsets.map((o) => ({
        topic: o.topic,
        partition: o.partition,
        committedOffset: Number(o.committedOffset),
        logEndOffset: Number(o.logEndOffset),
        lag: Number(o.lag),
        memberId: o.memberId,
      })),
      // A classic group's protocol details (metadata and assignment bytes) are not in gRPC's DescribeGroups answer.
      classic: null,
    },
  };
}
