/**
 * Every API the Kafka listener serves. One line per API; ApiVersions advertises exactly these,
 * with the versions each declares as implemented.
 */
import type { KafkaApi } from "../api.ts";
import { alterClientQuotas } from "./alter-client-quotas.ts";
import { alterConfigs } from "./alter-configs.ts";
import { alterUserScramCredentials } from "./alter-user-scram-credentials.ts";
import { apiVersions } from "./api-versions.ts";
import { consumerGroupDescribe } from "./consumer-group-describe.ts";
import { consumerGroupHeartbeat } from "./consumer-group-heartbeat.ts";
import { fetch } from "./fetch.ts";
import { offsetForLeaderEpoch } from "./offset-for-leader-epoch.ts";
import { deleteGroups } from "./delete-groups.ts";
import { describeGroups } from "./describe-groups.ts";
import { findCoordinator } from "./find-coordinator.ts";
import { heartbeat } from "./heartbeat.ts";
import { joinGroup } from "./join-group.ts";
import { leaveGroup } from "./leave-group.ts";
import { listGroups } from "./list-groups.ts";
import { offsetCommit } from "./offset-commit.ts";
import { offsetDelete } from "./offset-delete.ts";
import { offsetFetch } from "./offset-fetch.ts";
import { syncGroup } from "./sync-group.ts";
import { metadata } from "./metadata.ts";
import { produce } from "./produce.ts";
import { listOffsets } from "./list-offsets.ts";
import { initProducerId } from "./init-producer-id.ts";
import { createAcls } from "./create-acls.ts";
import { createPartitions } from "./create-partitions.ts";
import { createTopics } from "./create-topics.ts";
import { deleteAcls } from "./delete-acls.ts";
import { deleteRecordsApi } from "./delete-records.ts";
import { deleteTopics } from "./delete-topics.ts";
import { describeAcls } from "./describe-acls.ts";
import { describeClientQuotas } from "./describe-client-quotas.ts";
import { describeCluster } from "./describe-cluster.ts";
import { describeConfigs } from "./describe-configs.ts";
import { describeUserScramCredentials } from "./describe-user-scram-credentials.ts";
import { electLeaders } from "./elect-leaders.ts";
import { alterPartitionReassignments, listPartitionReassignments } from "./partition-reassignments.ts";
import { incrementalAlterConfigs } from "./incremental-alter-configs.ts";
import { saslAuthenticate } from "./sasl-authenticate.ts";
import { saslHandshake } from "./sasl-handshake.ts";
import { addOffsetsToTxn } from "./add-offsets-to-txn.ts";
import { addPartitionsToTxn } from "./add-partitions-to-txn.ts";
import { describeTransactions } from "./describe-transactions.ts";
import { endTxn } from "./end-txn.ts";
import { listTransactions } from "./list-transactions.ts";
import { txnOffsetCommit } from "./txn-offset-commit.ts";

/** The APIs, by key order. */
export const KAFKA_APIS: readonly KafkaApi[] = [
  apiVersions,
  fetch,
  offsetForLeaderEpoch,
  findCoordinator,
  joinGroup,
  syncGroup,
  heartbeat,
  leaveGroup,
  offsetCommit,
  offsetFetch,
  offsetDelete,
  describeGroups,
  listGroups,
  deleteGroups,
  metadata,
  produce,
  listOffsets,
  initProducerId,
  consumerGroupHeartbeat,
  consumerGroupDescribe,
  saslHandshake,
  createTopics,
  deleteTopics,
  deleteRecordsApi,
  describeAcls,
  createAcls,
  deleteAcls,
  describeConfigs,
  alterConfigs,
  saslAuthenticate,
  createPartitions,
  electLeaders,
  incrementalAlterConfigs,
  describeClientQuotas,
  alterClientQuotas,
  describeUserScramCredentials,
  alterUserScramCredentials,
  describeCluster,
  addPartitionsToTxn,
  addOffsetsToTxn,
  endTxn,
  txnOffsetCommit,
  describeTransactions,
  listTransactions,
  alterPartitionReassignments, // partition reassignment (issue 21)
  listPartitionReassignments,
  // Each API adds one line here.
].sort((a, b) => a.key - b.key);
