/**
 * Partition offsets asked of their leaders over gRPC (one ListOffsets call per leader), for the
 * broker shell, which may not import src/gen: the consumer-lag metric of a group whose
 * coordinator does not lead the group's partitions reads their high watermarks this way.
 */
import { FetchService } from "../gen/rill/v1/fetch_service_pb.ts";
import type { ReplicaManager } from "../replication/replica-manager.ts";
import type { LeaderOffsets } from "../service/admin-ports.ts";
import { grpcLeaderOffsets } from "./admin-service.ts";
import { LeaderClients } from "./forward.ts";
import type { InternalClients } from "./internal-clients.ts";

/** `LeaderOffsets` over the brokers `rm`'s metadata knows, through `clients` (the server's). */
export function leaderOffsetsVia(rm: ReplicaManager, clients: InternalClients): LeaderOffsets {
  return grpcLeaderOffsets(new LeaderClients(FetchService, rm, clients));
}
