/**
 * Every API the Kafka listener serves. One line per API; ApiVersions advertises exactly these,
 * with the versions each declares as implemented.
 */
import type { KafkaApi } from "../api.ts";
import { apiVersions } from "./api-versions.ts";
import { metadata } from "./metadata.ts";
import { produce } from "./produce.ts";
import { listOffsets } from "./list-offsets.ts";
import { initProducerId } from "./init-producer-id.ts";

/** The APIs, by key order. */
export const KAFKA_APIS: readonly KafkaApi[] = [
  apiVersions,
  metadata,
  produce,
  listOffsets,
  initProducerId,
  // Each API adds one line here.
].sort((a, b) => a.key - b.key);
