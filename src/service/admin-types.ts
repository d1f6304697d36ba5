/**
 * The admin requests and their answers as domain types: what a topic, partition or
 * configuration request means, independent of the protocol that carried it.
 *
 * Every adapter (gRPC in `src/rpc/admin-service.ts`, later the Kafka listener and the HTTP
 * console) decodes its own messages into these shapes, calls `AdminHandlers`
 * (`src/service/admin.ts`) and encodes the answer back. The shapes follow the gRPC contract
 * (`proto/rill/v1/admin_service.proto`) field for field, with three differences:
 *
 * - offsets and epochs are plain numbers (every offset Rill stores is below 2^53);
 * - a per-topic or per-resource failure is a `RillError` (its catalog entry gives the code,
 *   name and retriability), left out when the item succeeded;
 * - enums are string unions; a protocol value the adapter does not recognise travels as
 *   `Unrecognized`, so the service can refuse it with a message that names the value.
 *
 * Results list one entry per requested item, in request order, unless a comment says otherwise.
 */
import type { RillError } from "../base/errors.ts";
import type { SecurityChanges } from "./admin-security-types.ts";
import type { ReassignmentChanges } from "./admin-reassign-types.ts";
import type { CordonChanges } from "./admin-cordon-types.ts";
import type { AlterClientQuotasInput, AlterClientQuotasResult } from "./quota-admin-types.ts";

/** A protocol enum value that matches none of the domain's choices (refused by the service). */
export interface Unrecognized {
  /** The number the protocol carried. */
  readonly unrecognized: number;
}

/** A node's role in the cluster. */
export type NodeRole = "broker" | "controller";

// ---- CreateTopics ----------------------------------------------------------------------------

/** One topic to create. */
export interface NewTopicSpec {
  readonly name: string;
  /** 0: the broker's `num.partitions`. */
  readonly partitions: number;
  /** 0: the default (up to 3, bounded by the live brokers). */
  readonly replicationFactor: number;
  /** Topic config keys that differ from the defaults. */
  readonly configs: Readonly<Record<string, string>>;
}

/** CreateTopics: each topic succeeds or fails on its own. */
export interface CreateTopicsInput {
  readonly topics: readonly NewTopicSpec[];
  /** Run every check (names, counts, configs, placement) and store nothing. */
  readonly validateOnly: boolean;
  /** Must not be negative; 0 is the broker default. */
  readonly timeoutMs: number;
}

/** The outcome for one requested topic. */
export interface CreatedTopic {
  readonly name: string;
  /** Why the topic was not created (absent: created, or valid with `validateOnly`). */
  readonly error?: RillError;
  /** Partitions the topic has (or would have), defaults applied; 0 on error. */
  readonly partitions: number;
  /** Replicas per partition, defaults applied; 0 on error. */
  readonly replicationFactor: number;
}

/** Answer of CreateTopics. */
export interface CreateTopicsResult {
  readonly topics: readonly CreatedTopic[];
}

// ---- DeleteTopics ----------------------------------------------------------------------------

/** DeleteTopics: topics by name. */
export interface DeleteTopicsInput {
  readonly topics: readonly string[];
  /** Must not be negative; 0 is the broker default. */
  readonly timeoutMs: number;
}

/** The outcome for one topic to delete. */
export interface DeletedTopic {
  readonly name: string;
  /** Why the topic was not deleted (absent: deleted). */
  readonly error?: RillError;
}

/** Answer of DeleteTopics. */
export interface DeleteTopicsResult {
  readonly topics: readonly DeletedTopic[];
}

// ---- ListTopics ------------------------------------------------------------------------------

/** ListTopics. */
export interface ListTopicsInput {
  /** Also list Rill's own topics (names starting with "__"). */
  readonly includeInternal: boolean;
}

/** A listed topic. */
export interface ListedTopic {
  readonly name: string;
  readonly partitions: number;
  readonly replicationFactor: number;
  readonly internal: boolean;
}

/** Answer of ListTopics: topics sorted by name. */
export interface ListTopicsResult {
  readonly topics: readonly ListedTopic[];
}

// ---- DescribeTopics --------------------------------------------------------------------------

/** DescribeTopics. */
export interface DescribeTopicsInput {
  /** Empty: every topic except the internal ones, sorted by name. */
  readonly topics: readonly string[];
  /** Leave the configs out. */
  readonly excludeConfigs: boolean;
}

/** One partition as DescribeTopics answers it. */
export interface PartitionDescription {
  readonly partition: number;
  /** -1: no leader. */
  readonly leader: number;
  /** Preferred leader first. */
  readonly replicas: readonly number[];
  readonly isr: readonly number[];
  /** Eligible leader replicas (KIP-966): out of the ISR, holding every committed record. */
  readonly eligibleLeaderReplicas: readonly number[];
  /** KIP-966's last known ELR: were in the ISR or ELR since it fell below min.insync.replicas, in neither now. */
  readonly lastKnownElr: readonly number[];
  readonly leaderEpoch: number;
  /** From the leader when it answered, else this broker's own view (0 when it holds no replica). */
  readonly logStartOffset: number;
  /** From the leader when it answered, else this broker's own view (0 when it holds no replica). */
  readonly highWatermark: number;
}

/** One described topic. */
export interface TopicDescription {
  readonly name: string;
  /** Why the topic could not be described; the other fields are then empty. */
  readonly error?: RillError;
  readonly internal: boolean;
  /** Effective configuration, defaults included; empty with `excludeConfigs`. */
  readonly configs: Readonly<Record<string, string>>;
  readonly partitions: readonly PartitionDescription[];
}

/** Answer of DescribeTopics. */
export interface DescribeTopicsResult {
  readonly topics: readonly TopicDescription[];
}

// ---- CreatePartitions ------------------------------------------------------------------------

/** CreatePartitions: raise partition counts (never lower them). */
export interface CreatePartitionsInput {
  readonly topics: readonly { readonly name: string; readonly count: number }[];
  readonly validateOnly: boolean;
  /** Must not be negative; 0 is the broker default. */
  readonly timeoutMs: number;
}

/** Answer of CreatePartitions. */
export interface CreatePartitionsResult {
  readonly topics: readonly { readonly name: string; readonly error?: RillError }[];
}

// ---- DescribeConfigs / AlterConfigs ----------------------------------------------------------

/** What kind of thing a configuration belongs to. */
export type ConfigResourceType = "topic" | "broker";

/** A thing that has configuration. */
export interface ConfigResource {
  readonly type: ConfigResourceType | Unrecognized;
  /** A topic name; for a broker its node id in decimal, or "" for this node. */
  readonly name: string;
}

/** Where a configuration value comes from. */
export type ConfigSource = "default" | "static-broker" | "dynamic-default-broker" | "dynamic-broker" | "dynamic-topic";

/** One configuration key with its effective value. */
export interface ConfigEntry {
  readonly name: string;
  readonly value: string;
  readonly source: ConfigSource;
  readonly readOnly: boolean;
  readonly sensitive: boolean;
  /** The key's doc when asked for, else "". */
  readonly documentation: string;
}

/** DescribeConfigs. */
export interface DescribeConfigsInput {
  readonly resources: readonly ConfigResource[];
  /** Only these keys; empty: every key. */
  readonly names: readonly string[];
  readonly includeDocumentation: boolean;
}

/** The configuration of one resource. */
export interface ResourceConfigs {
  /** As requested. */
  readonly resource: ConfigResource;
  /** Empty when `error` is set. */
  readonly entries: readonly ConfigEntry[];
  readonly error?: RillError;
}

/** Answer of DescribeConfigs. */
export interface DescribeConfigsResult {
  readonly results: readonly ResourceConfigs[];
}

/** How AlterConfigs changes one key. */
export type ConfigOperation = "set" | "delete";

/** One change to one key. */
export interface AlterConfigOp {
  readonly name: string;
  readonly operation: ConfigOperation | Unrecognized;
  /** The new value, for "set". */
  readonly value: string;
}

/** The changes to one resource: all applied, or none. */
export interface ResourceAlteration {
  /** Absent when the request left it out (refused). */
  readonly resource?: ConfigResource;
  readonly operations: readonly AlterConfigOp[];
}

/** AlterConfigs: each resource succeeds or fails as a whole, on its own. */
export interface AlterConfigsInput {
  readonly resources: readonly ResourceAlteration[];
  readonly validateOnly: boolean;
}

/** The outcome for one resource. */
export interface AlteredResource {
  /** As requested. */
  readonly resource?: ConfigResource;
  /** Why nothing was changed (absent: every change applied). */
  readonly error?: RillError;
}

/** Answer of AlterConfigs. */
export interface AlterConfigsResult {
  readonly results: readonly AlteredResource[];
}

// ---- ElectLeaders ----------------------------------------------------------------------------

/** Partitions of one topic; empty `partitions`: all of them. */
export interface TopicPartitions {
  readonly topic: string;
  readonly partitions: readonly number[];
}

/** ElectLeaders: move leadership back to the preferred replica. */
export interface ElectLeadersInput {
  /** Empty: every partition of the cluster. */
  readonly partitions: readonly TopicPartitions[];
}

/** The outcome for one partition. */
export interface ElectionOutcome {
  readonly topic: string;
  readonly partition: number;
  /** The leader after the election (-1: none). */
  readonly leader: number;
  /** Why the partition was not moved (absent: moved). */
  readonly error?: RillError;
}

/** Answer of ElectLeaders: one outcome per named partition, or per partition moved when none were named. */
export interface ElectLeadersResult {
  readonly results: readonly ElectionOutcome[];
}

// ---- DescribeCluster -------------------------------------------------------------------------

/** A registered node. */
export interface ClusterBroker {
  readonly nodeId: number;
  readonly address: string;
  readonly roles: readonly NodeRole[];
  readonly fenced: boolean;
  /** "" for none. */
  readonly rack: string;
  /** Cordoned (issue 21): given no new replicas. */
  readonly cordoned: boolean;
}

/** A voter of the controller quorum. */
export interface ClusterVoter {
  readonly nodeId: number;
  readonly address: string;
}

/** The answering node's own view of the metadata log. */
export interface NodeView {
  readonly nodeId: number;
  readonly roles: readonly NodeRole[];
  /** -1 before the first record. */
  readonly metadataOffset: number;
  readonly raftRole: string;
  readonly raftTerm: number;
  readonly commitOffset: number;
  /** "" when the node does not run the broker role. */
  readonly brokerState: string;
}

/** Answer of DescribeCluster. */
export interface DescribeClusterResult {
  readonly clusterId: string;
  /** -1 while none is elected. */
  readonly controllerId: number;
  /** Sorted by node id. */
  readonly brokers: readonly ClusterBroker[];
  /** Sorted by node id. */
  readonly voters: readonly ClusterVoter[];
  readonly node: NodeView;
}

// ---- Changes: the requests that run on the active controller ---------------------------------

/** The admin requests that change metadata, with their input and result (security's in admin-security-types.ts). */
export interface AdminChanges extends SecurityChanges, ReassignmentChanges, CordonChanges {
  createTopics: { input: CreateTopicsInput; result: CreateTopicsResult };
  deleteTopics: { input: DeleteTopicsInput; result: DeleteTopicsResult };
  createPartitions: { input: CreatePartitionsInput; result: CreatePartitionsResult };
  alterConfigs: { input: AlterConfigsInput; result: AlterConfigsResult };
  electLeaders: { input: ElectLeadersInput; result: ElectLeadersResult };
  // client quotas (issue 13)
  alterClientQuotas: { input: AlterClientQuotasInput; result: AlterClientQuotasResult };
}

/** The name of a metadata-changing admin request. */
export type AdminChange = keyof AdminChanges;
