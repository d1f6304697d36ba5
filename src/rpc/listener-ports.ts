/**
 * The service layer's ports for listeners other than gRPC (the HTTP console's JSON API): the
 * same `AdminHandlers` the gRPC AdminService calls, a `ControllerPort` per caller that passes
 * a metadata change to the active controller over the internal gRPC clients, and a
 * `FetchForwarder` that reads partitions with no replica here from their leaders. These need the
 * generated service descriptors, which only `src/rpc` may import; the listener itself then
 * sees domain types only.
 */
import { AdminService } from "../gen/rill/v1/admin_service_pb.ts";
import { FetchService } from "../gen/rill/v1/fetch_service_pb.ts";
import type { Requester } from "../security/requester.ts";
import { AdminHandlers } from "../service/admin.ts";
import type { ControllerPort } from "../service/admin-ports.ts";
import type { AdminChange, AdminChanges } from "../service/admin-types.ts";
import type { FetchForwarder } from "../service/fetch-types.ts";
import { changeCodecs, type ChangeMessages } from "./admin-codec.ts";
import { type AdminDeps, grpcLeaderOffsets } from "./admin-service.ts";
import { fetchForwarder } from "./fetch-service.ts";
import { Forwarder, LeaderClients } from "./forward.ts";

/** How long a change passed to the active controller may take, for a caller that gives no deadline. */
export const FORWARD_TIMEOUT_MS = 30_000;

/** What a non-gRPC listener calls the admin and fetch services through. */
export interface ListenerPorts {
  /** The admin service of this node. */
  readonly admin: AdminHandlers;
  /** The way to the active controller for one request of `requester`. */
  controllerPort(requester: Requester): ControllerPort;
  /** Reads partitions led elsewhere (and not replicated here) from their leaders, as `requester`. */
  fetchForwarder(requester: Requester): FetchForwarder;
  /** Closes the clients of other nodes, when they are these ports' own (no `d.clients`). */
  close(): void;
}

/** The ports of a node whose admin dependencies are `d` (the same ones the gRPC AdminService gets). */
export function listenerPorts(d: AdminDeps): ListenerPorts {
  const fwd = new Forwarder(AdminService, d.route, d.clients);
  const offsetClients = new LeaderClients(FetchService, d.rm, d.clients);
  const fetchClients = new LeaderClients(FetchService, d.rm, d.clients);
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
    leaderOffsets: grpcLeaderOffsets(offsetClients),
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
    close: () => {
      fwd.close();
      offsetClients.close();
      fetchClients.close();
    },
  };
}
