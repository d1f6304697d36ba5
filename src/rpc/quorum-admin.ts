/**
 * The dynamic controller quorum's admin calls (issue 21; KIP-853's AddRaftVoter and
 * RemoveRaftVoter) over gRPC: run on the active controller, forwarded there from any other node.
 */
import { create } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { rillError } from "../base/errors.ts";
import {
  type AddRaftVoterRequest,
  type AddRaftVoterResponse,
  AddRaftVoterResponseSchema,
  type AdminService,
  type DescribeClusterResponse,
  type RemoveRaftVoterRequest,
  type RemoveRaftVoterResponse,
  RemoveRaftVoterResponseSchema,
} from "../gen/rill/v1/admin_service_pb.ts";
import type { VoterInfo } from "../raft/config.ts";
import type { Requester } from "../security/requester.ts";
import type { RequestAccess } from "../service/authorize.ts";
import { unary } from "./errors.ts";
import { type ControllerRoute, type Forwarder, isForwarded } from "./forward.ts";

/** A controller node's voter set and its changes (QuorumMetadataStore). */
export interface QuorumAdmin {
  addVoter(id: number, directoryId: string): Promise<readonly VoterInfo[]>;
  removeVoter(id: number): Promise<readonly VoterInfo[]>;
  voterSet(): readonly VoterInfo[];
  readonly directoryId: string;
}

type AnyUnaryCall = grpc.ServerUnaryCall<unknown, unknown>;

function nodeId(v: number): number {
  if (!Number.isSafeInteger(v) || v < 1) throw rillError("INVALID_REQUEST", `node_id: ${v} is not a node id (a positive integer)`);
  return v;
}

function voters(vs: readonly VoterInfo[]): Array<{ nodeId: number; directoryId: string }> {
  return [...vs].sort((a, b) => a.id - b.id).map((v) => ({ nodeId: v.id, directoryId: v.directoryId }));
}

/** The AddRaftVoter and RemoveRaftVoter handlers. */
export function quorumAdminHandlers(
  quorum: QuorumAdmin | null,
  route: ControllerRoute,
  fwd: Forwarder<typeof AdminService>,
  access: RequestAccess,
  who: (call: object) => Requester,
) {
  const local = (): QuorumAdmin => {
    if (quorum === null) throw rillError("NOT_CONTROLLER", "this node does not run the controller role and no controller was found");
    return quorum;
  };
  return {
    addRaftVoter: unary(async (req: AddRaftVoterRequest, call): Promise<AddRaftVoterResponse> => {
      access.cluster(who(call), "AdminService/AddRaftVoter");
      const id = nodeId(req.nodeId);
      if (req.directoryId.length > 64) throw rillError("INVALID_REQUEST", "directory_id: longer than 64 characters");
      if (!route.isActive() && !isForwarded(call)) return fwd.forward<AddRaftVoterResponse>("addRaftVoter", req, call as AnyUnaryCall);
      return create(AddRaftVoterResponseSchema, { voters: voters(await local().addVoter(id, req.directoryId)) });
    }),
    removeRaftVoter: unary(async (req: RemoveRaftVoterRequest, call): Promise<RemoveRaftVoterResponse> => {
      access.cluster(who(call), "AdminService/RemoveRaftVoter");
      const id = nodeId(req.nodeId);
      if (!route.isActive() && !isForwarded(call))
        return fwd.forward<RemoveRaftVoterResponse>("removeRaftVoter", req, call as AnyUnaryCall);
      return create(RemoveRaftVoterResponseSchema, { voters: voters(await local().removeVoter(id)) });
    }),
  };
}

/** DescribeCluster's node state with this node's view of the voters and its directory id. */
export function withQuorumView(res: DescribeClusterResponse, quorum: QuorumAdmin | null): DescribeClusterResponse {
  if (quorum === null || res.node === undefined) return res;
  res.node.logVoters = quorum
    .voterSet()
    .map((v) => v.id)
    .sort((a, b) => a - b);
  res.node.directoryId = quorum.directoryId;
  return res;
}
