/**
 * Cordoned brokers (issue 21, as Kafka's KIP-1066 cordons log dirs): the controller places no new
 * replica on a cordoned broker — CreateTopics, CreatePartitions and the internal topics pass it
 * over (controller.ts `placementPool`) — while its replicas, and its leadership, stay. A
 * reassignment that names it explicitly is still allowed (the user chose it). `rill broker
 * decommission` cordons the broker first, so it receives nothing new while it is drained, and
 * `rill cluster rebalance` drains cordoned brokers.
 *
 * The state is the node id's, not one registration's: a BrokerCordonRecord survives the broker's
 * restarts (a new BrokerRecord) and is written into snapshots (image.ts).
 */
import { type RillError, rillError } from "../base/errors.ts";
import type { MetadataImage } from "./image.ts";
import type { MetadataRecord } from "./records.ts";

/** The outcome of AlterBrokerCordons for each broker named, in order: null when it is now as asked. */
export interface CordonDecision {
  readonly records: MetadataRecord[];
  readonly errors: readonly (RillError | null)[];
}

/**
 * Cordons (`cordoned` true) or uncordons `brokerIds`, each on its own: INVALID_REQUEST for an id
 * that is negative or not an integer, or named a second time; BROKER_ID_NOT_REGISTERED for a node
 * that never registered. A broker already as asked needs no record. Never fails for lack of
 * brokers: cordoning every one is allowed (placement then refuses, naming them).
 */
export function decideAlterBrokerCordons(image: MetadataImage, brokerIds: readonly number[], cordoned: boolean): CordonDecision {
  const records: MetadataRecord[] = [];
  const seen = new Set<number>();
  const errors = brokerIds.map((id, i): RillError | null => {
    if (!Number.isInteger(id) || id < 0) return rillError("INVALID_REQUEST", `broker_ids[${i}]: ${id} is not a node id`);
    if (seen.has(id)) return rillError("INVALID_REQUEST", `broker_ids[${i}]: broker ${id} is named twice`);
    seen.add(id);
    if (!image.brokers.has(id))
      return rillError("BROKER_ID_NOT_REGISTERED", `broker_ids[${i}]: no broker with node id ${id} ever registered`);
    if (image.cordoned.has(id) !== cordoned) records.push({ type: "broker-cordon", v: 1, nodeId: id, cordoned });
    return null;
  });
  return { records, errors };
}

/**
 * `brokers` (those that may hold replicas: unfenced) less the cordoned ones, and the cordoned ones
 * among them, for placement and its error messages.
 */
export function placementPool(image: MetadataImage, brokers: readonly number[]): { pool: number[]; cordoned: number[] } {
  const sorted = [...new Set(brokers)].sort((a, b) => a - b);
  return { pool: sorted.filter((b) => !image.cordoned.has(b)), cordoned: sorted.filter((b) => image.cordoned.has(b)) };
}

/** " (cordoned, given no new replicas: 3, 4)" when `cordoned` is not empty, else "". */
export function cordonedNote(cordoned: readonly number[]): string {
  return cordoned.length === 0 ? "" : `; cordoned, given no new replicas: ${cordoned.join(", ")}`;
}
