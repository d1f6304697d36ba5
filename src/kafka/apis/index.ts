/**
 * Every API the Kafka listener serves. One line per API; ApiVersions advertises exactly these,
 * with the versions each declares as implemented.
 */
import type { KafkaApi } from "../api.ts";
import { apiVersions } from "./api-versions.ts";
import { fetch } from "./fetch.ts";
import { offsetForLeaderEpoch } from "./offset-for-leader-epoch.ts";

/** The APIs, by key order. */
export const KAFKA_APIS: readonly KafkaApi[] = [
  apiVersions,
  fetch,
  offsetForLeaderEpoch,
  // Each API adds one line here.
].sort((a, b) => a.key - b.key);
