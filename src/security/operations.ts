/**
 * The one table of what each public RPC needs (DESIGN.md "Security": Authorization), taken from
 * Kafka's table for the same APIs (Kafka's wiki "Kafka Authorizations ACLs" and its docs'
 * "Operations and Resources on Protocols"), so an ACL written for Kafka means the same here.
 *
 * A requirement is one of:
 * - `cluster`: one check of `op` on the CLUSTER resource (`kafka-cluster`); denied → the whole call
 *   fails with CLUSTER_AUTHORIZATION_FAILED.
 * - `each`: `op` on every resource of `type` the request names (topics, groups, the transactional
 *   id); `orCluster`: the call also passes when the caller has that operation on the cluster
 *   (CreateTopics: CREATE on CLUSTER or on each topic). Denied → that resource's catalog code.
 * - `filter`: the answer lists only the resources the caller may `op` (ListTopics).
 * - `anyTopic`: `op` on at least one topic (InitProducerId's "WRITE on any topic").
 * - `authenticated`: any caller that got past authentication.
 * A list of requirements must all hold; `oneOf` holds when one of its lists holds.
 *
 * The implied operations are the authorizer's (READ, WRITE, DELETE, ALTER imply DESCRIBE;
 * ALTER_CONFIGS implies DESCRIBE_CONFIGS), so a table entry names the operation Kafka names.
 */
import type { AclOperation, ResourceType } from "../metadata/security-types.ts";

/** One requirement of an RPC (see the module comment). */
export type Requirement =
  | { readonly on: "cluster"; readonly op: AclOperation }
  | { readonly on: "each"; readonly type: ResourceType; readonly op: AclOperation; readonly orCluster?: AclOperation }
  | { readonly on: "filter"; readonly type: ResourceType; readonly op: AclOperation }
  | { readonly on: "anyTopic"; readonly op: AclOperation }
  | { readonly on: "authenticated" };

/** What an RPC needs: every requirement of `all`, or (when set) every one of some list of `oneOf`. */
export interface RpcAccess {
  readonly all: readonly Requirement[];
  readonly oneOf?: readonly (readonly Requirement[])[];
  /** Why, in Kafka's terms (docs and the table test). */
  readonly kafka: string;
}

const cluster = (op: AclOperation): Requirement => ({ on: "cluster", op });
const each = (type: ResourceType, op: AclOperation, orCluster?: AclOperation): Requirement =>
  orCluster ? { on: "each", type, op, orCluster } : { on: "each", type, op };
const filter = (type: ResourceType, op: AclOperation): Requirement => ({ on: "filter", type, op });

/**
 * Every public RPC, by `Service/Method` (the services of proto/rill/v1 that clients call;
 * ControllerService and ReplicationService are the members' own, authenticated by membership).
 */
export const RPC_ACCESS = {
  // AdminService
  "AdminService/CreateTopics": { all: [each("TOPIC", "CREATE", "CREATE")], kafka: "CreateTopics: CREATE on CLUSTER or on the topic" },
  "AdminService/DeleteTopics": { all: [each("TOPIC", "DELETE")], kafka: "DeleteTopics: DELETE on the topic" },
  "AdminService/ListTopics": { all: [filter("TOPIC", "DESCRIBE")], kafka: "Metadata: DESCRIBE on the topic; others are left out" },
  "AdminService/DescribeTopics": {
    all: [filter("TOPIC", "DESCRIBE")],
    kafka: "Metadata / DescribeTopicPartitions: DESCRIBE on the topic; others are left out",
  },
  "AdminService/CreatePartitions": { all: [each("TOPIC", "ALTER")], kafka: "CreatePartitions: ALTER on the topic" },
  "AdminService/DescribeConfigs": {
    all: [each("TOPIC", "DESCRIBE_CONFIGS")],
    kafka: "DescribeConfigs: DESCRIBE_CONFIGS on the topic (CLUSTER for broker configs)",
  },
  "AdminService/AlterConfigs": {
    all: [each("TOPIC", "ALTER_CONFIGS")],
    kafka: "IncrementalAlterConfigs: ALTER_CONFIGS on the topic (CLUSTER for broker configs)",
  },
  "AdminService/DescribeCluster": {
    all: [{ on: "authenticated" }],
    kafka: "DescribeCluster / Metadata brokers: any authenticated caller; controller internals need DESCRIBE on CLUSTER",
  },
  "AdminService/ElectLeaders": { all: [cluster("ALTER")], kafka: "ElectLeaders: ALTER on CLUSTER" },
  // dynamic controller quorum (issue 21)
  "AdminService/AddRaftVoter": { all: [cluster("ALTER")], kafka: "AddRaftVoter: ALTER on CLUSTER" },
  "AdminService/RemoveRaftVoter": { all: [cluster("ALTER")], kafka: "RemoveRaftVoter: ALTER on CLUSTER" },
  // partition reassignment (issue 21)
  "AdminService/AlterPartitionReassignments": { all: [cluster("ALTER")], kafka: "AlterPartitionReassignments: ALTER on CLUSTER" },
  "AdminService/ListPartitionReassignments": { all: [cluster("DESCRIBE")], kafka: "ListPartitionReassignments: DESCRIBE on CLUSTER" },
  // cordoned brokers (issue 21)
  "AdminService/AlterBrokerCordons": {
    all: [cluster("ALTER")],
    kafka: "no such API (KIP-1066 cordons through broker configs); ALTER on CLUSTER, as AlterPartitionReassignments",
  },
  "AdminService/CreateAcls": { all: [cluster("ALTER")], kafka: "CreateAcls: ALTER on CLUSTER" },
  "AdminService/DescribeAcls": { all: [cluster("DESCRIBE")], kafka: "DescribeAcls: DESCRIBE on CLUSTER" },
  "AdminService/DeleteAcls": { all: [cluster("ALTER")], kafka: "DeleteAcls: ALTER on CLUSTER" },
  "AdminService/AlterUserScramCredentials": { all: [cluster("ALTER")], kafka: "AlterUserScramCredentials: ALTER on CLUSTER" },
  "AdminService/DescribeUserScramCredentials": { all: [cluster("DESCRIBE")], kafka: "DescribeUserScramCredentials: DESCRIBE on CLUSTER" },
  "AdminService/AlterClientQuotas": { all: [cluster("ALTER_CONFIGS")], kafka: "AlterClientQuotas: ALTER_CONFIGS on CLUSTER" },
  "AdminService/DescribeClientQuotas": { all: [cluster("DESCRIBE_CONFIGS")], kafka: "DescribeClientQuotas: DESCRIBE_CONFIGS on CLUSTER" },
  "AdminService/DeleteRecords": { all: [each("TOPIC", "DELETE")], kafka: "DeleteRecords: DELETE on the topic" },
  // transactions (issue 17)
  "AdminService/ListTransactions": {
    all: [filter("TRANSACTIONAL_ID", "DESCRIBE")],
    kafka: "ListTransactions: DESCRIBE on the transactional id; others are left out",
  },
  "AdminService/DescribeTransactions": {
    all: [each("TRANSACTIONAL_ID", "DESCRIBE")],
    kafka: "DescribeTransactions: DESCRIBE on the transactional id",
  },
  "AdminService/AbortTransaction": {
    all: [each("TRANSACTIONAL_ID", "WRITE")],
    kafka: "kafka-transactions.sh abort: WRITE on the transactional id (WriteTxnMarkers for a hanging partition: ALTER on CLUSTER)",
  },
  // ProduceService
  "ProduceService/Produce": { all: [each("TOPIC", "WRITE")], kafka: "Produce: WRITE on the topic (idempotent too, KIP-679)" },
  "ProduceService/ProduceStream": { all: [each("TOPIC", "WRITE")], kafka: "Produce: WRITE on the topic (idempotent too, KIP-679)" },
  "ProduceService/EndTransaction": {
    all: [each("TRANSACTIONAL_ID", "WRITE")],
    kafka: "EndTxn: WRITE on the transactional id",
  },
  "ProduceService/InitProducerId": {
    all: [],
    oneOf: [[cluster("IDEMPOTENT_WRITE")], [{ on: "anyTopic", op: "WRITE" }]],
    kafka: "InitProducerId: IDEMPOTENT_WRITE on CLUSTER or WRITE on any topic (KIP-679); with a transactional id WRITE on it",
  },
  // FetchService
  "FetchService/Fetch": { all: [each("TOPIC", "READ")], kafka: "Fetch (consumer): READ on the topic" },
  "FetchService/Subscribe": { all: [each("TOPIC", "READ")], kafka: "Fetch (consumer): READ on the topic" },
  "FetchService/ListOffsets": { all: [each("TOPIC", "DESCRIBE")], kafka: "ListOffsets: DESCRIBE on the topic" },
  // GroupService
  "GroupService/Heartbeat": {
    all: [each("GROUP", "READ"), each("TOPIC", "DESCRIBE")],
    kafka: "ConsumerGroupHeartbeat: READ on the group, DESCRIBE on the subscribed topics",
  },
  "GroupService/CommitOffsets": {
    all: [each("GROUP", "READ"), each("TOPIC", "READ")],
    kafka: "OffsetCommit: READ on the group and the topic",
  },
  "GroupService/FetchOffsets": {
    all: [each("GROUP", "DESCRIBE"), filter("TOPIC", "DESCRIBE")],
    kafka: "OffsetFetch: DESCRIBE on the group; topics without DESCRIBE are left out",
  },
  "GroupService/ListGroups": {
    all: [filter("GROUP", "DESCRIBE")],
    kafka: "ListGroups: DESCRIBE on CLUSTER, else the groups with DESCRIBE",
  },
  "GroupService/DescribeGroups": { all: [each("GROUP", "DESCRIBE")], kafka: "DescribeGroups: DESCRIBE on the group" },
  "GroupService/DeleteGroups": { all: [each("GROUP", "DELETE")], kafka: "DeleteGroups: DELETE on the group" },
  "GroupService/ResetOffsets": {
    all: [each("GROUP", "READ"), each("TOPIC", "READ")],
    kafka: "AlterConsumerGroupOffsets (an OffsetCommit): READ on the group and the topic",
  },
  "GroupService/Consume": {
    all: [each("GROUP", "READ"), each("TOPIC", "READ")],
    kafka: "JoinGroup/Heartbeat + Fetch: READ on the group and the topic",
  },
  "GroupService/DeleteOffsets": {
    all: [each("GROUP", "DELETE"), each("TOPIC", "READ")],
    kafka: "OffsetDelete: DELETE on the group, READ on the topic",
  },
} as const satisfies Record<string, RpcAccess>;

/** A public RPC, `Service/Method`. */
export type PublicRpc = keyof typeof RPC_ACCESS;

/** Extra checks beside the table's rows, also Kafka's. */
export const EXTRA_ACCESS = {
  /** DescribeCluster's controller internals (Raft role, term, commit offset). */
  clusterInternals: cluster("DESCRIBE"),
  /** InitProducerId with a transactional id: WRITE on that TRANSACTIONAL_ID. */
  transactionalId: each("TRANSACTIONAL_ID", "WRITE"),
  /** A hanging transaction aborted in one partition (a marker written by an admin): ALTER on CLUSTER, as WriteTxnMarkers. */
  abortPartition: cluster("ALTER"),
  /** Produce with a transactional id, and CommitOffsets in a transaction: WRITE on it too. */
  transactionalWrite: each("TRANSACTIONAL_ID", "WRITE"),
  /** ListGroups: DESCRIBE on CLUSTER shows every group. */
  listAllGroups: cluster("DESCRIBE"),
} as const;

/** The operation `rpc` needs on resources of `type` it names (the table's `each` row), or undefined. */
export function eachOp(rpc: PublicRpc, type: ResourceType): { op: AclOperation; orCluster?: AclOperation } | undefined {
  const row: RpcAccess = RPC_ACCESS[rpc];
  for (const r of row.all)
    if ((r.on === "each" || r.on === "filter") && r.type === type)
      return r.on === "each" && r.orCluster ? { op: r.op, orCluster: r.orCluster } : { op: r.op };
  return undefined;
}

/** The catalog error name of a denial on a resource of `type`. */
export function deniedError(
  type: ResourceType,
): "TOPIC_AUTHORIZATION_FAILED" | "GROUP_AUTHORIZATION_FAILED" | "CLUSTER_AUTHORIZATION_FAILED" | "TRANSACTIONAL_ID_AUTHORIZATION_FAILED" {
  switch (type) {
    case "TOPIC":
      return "TOPIC_AUTHORIZATION_FAILED";
    case "GROUP":
      return "GROUP_AUTHORIZATION_FAILED";
    case "CLUSTER":
      return "CLUSTER_AUTHORIZATION_FAILED";
    case "TRANSACTIONAL_ID":
      return "TRANSACTIONAL_ID_AUTHORIZATION_FAILED";
  }
}
