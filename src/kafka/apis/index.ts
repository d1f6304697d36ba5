/**
 * Every API the Kafka listener serves. One line per API; ApiVersions advertises exactly these,
 * with the versions each declares as implemented.
 */
import type { KafkaApi } from "../api.ts";
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
  // Each API adds one line here.
].sort((a, b) => a.key - b.key);
