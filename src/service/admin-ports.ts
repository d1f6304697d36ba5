/**
 * The ports of the admin service: what `AdminHandlers` (`src/service/admin.ts`) needs from the
 * node it runs on and from the transport that carried a request, as interfaces the adapters
 * implement. The service itself never opens a connection.
 *
 * - `ControllerPort`, one per request: metadata changes run on the active controller. A node
 *   that is not the active controller passes a change there (`forward`) and answers what the
 *   controller answered, once its own image holds the change; the controller, after running a
 *   change, tells the caller which metadata offset holds it (`committedHere`), so the forwarding
 *   node can wait for it (read-your-writes through any node). A forwarded request is never
 *   forwarded again. The gRPC adapter implements this with `Forwarder` (src/rpc/forward.ts).
 * - `LeaderOffsets`: DescribeTopics answers each partition's offsets as its leader sees them;
 *   for partitions led by another broker the adapter asks that broker.
 * - `AdminServiceDeps`: the node's state (replicas, metadata store, config, quorum view).
 */
import type { Random } from "../base/random.ts";
import type { BrokerConfig, QuorumVoter } from "../config/schema.ts";
import type { PartitionLimits, PartitionRef } from "../metadata/controller.ts";
import type { MetadataStore } from "../metadata/store.ts";
import type { ReplicaManager } from "../replication/replica-manager.ts";
import type { AdminChange, AdminChanges } from "./admin-types.ts";

/** Where a request came from, as far as the service cares. */
export interface RequestOrigin {
  /** True when another node passed this request here: it is answered here, never passed on again. */
  readonly forwarded: boolean;
}

/** One request's way to the active controller (implemented by the adapter that received it). */
export interface ControllerPort extends RequestOrigin {
  /** Whether this node is the active controller now: it commits metadata changes itself. */
  isActive(): boolean;
  /**
   * Passes `change` to the active controller and resolves with its answer once this node's
   * image holds the change. Rejects with a RillError (NOT_CONTROLLER while none is elected or
   * it cannot be reached; the controller's own error for a whole-request failure).
   */
  forward<K extends AdminChange>(change: K, input: AdminChanges[K]["input"]): Promise<AdminChanges[K]["result"]>;
  /** Called once a change ran on this node: the adapter tells the caller the metadata offset that holds it. */
  committedHere(): void;
}

/** A partition's offsets as its leader reports them. */
export interface PartitionOffsets {
  readonly logStartOffset: number;
  readonly highWatermark: number;
}

/**
 * Asks broker `leader` for the offsets of `partitions` (all led by it): one answer per partition,
 * in order, null where the leader answered that partition with an error. Rejects when the leader
 * cannot be reached.
 */
export type LeaderOffsets = (leader: number, partitions: readonly PartitionRef[]) => Promise<readonly (PartitionOffsets | null)[]>;

/** This node's own state, for DescribeCluster. */
export interface NodeState {
  readonly roles: readonly string[];
  readonly raftRole: string;
  readonly raftTerm: number;
  readonly commitOffset: number;
  readonly brokerState: string;
}

/** What the admin service needs from the node. */
export interface AdminServiceDeps {
  /** This node's replicas: local offsets and the topic lookup. */
  readonly rm: ReplicaManager;
  /** Where metadata changes are committed (on the active controller). */
  readonly store: MetadataStore;
  /** Replica placement. */
  readonly random: Random;
  readonly config: Readonly<BrokerConfig>;
  readonly clusterId: string;
  /** The active controller's node id, -1 while none is elected. */
  readonly controllerId: () => number;
  /** The controller quorum. */
  readonly voters: readonly QuorumVoter[];
  readonly nodeState: () => NodeState;
  readonly leaderOffsets: LeaderOffsets;
  /** `max.partitions` of the brokers whose limit this controller knows (its own broker). */
  readonly partitionLimits?: () => PartitionLimits;
}
