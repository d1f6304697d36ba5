/**
 * Partition reassignment (issue 21, Kafka's KIP-455) for every protocol: AlterPartitionReassignments
 * runs on the active controller (passed there like every metadata change, see admin.ts) and
 * decides each partition with `decideAlterReassignment` (src/metadata/reassignment.ts);
 * ListPartitionReassignments answers from this node's image.
 *
 * Each partition succeeds or fails on its own, its failure a RillError in its result, and a
 * failed partition changes nothing. A malformed request as a whole (no partitions, too many)
 * throws.
 */
import { RillError, rillError } from "../base/errors.ts";
import { decideAlterReassignment, listReassignments } from "../metadata/reassignment.ts";
import type { MetadataRecord } from "../metadata/records.ts";
import type { MetadataStore } from "../metadata/store.ts";
import type { ControllerPort } from "./admin-ports.ts";
import type {
  AlterPartitionReassignmentsInput,
  AlterPartitionReassignmentsResult,
  ListPartitionReassignmentsInput,
  ListPartitionReassignmentsResult,
} from "./admin-reassign-types.ts";

/** Most partitions one request may name. */
export const REASSIGN_REQUEST_PARTITIONS_MAX = 10_000;

/** The protocol-neutral reassignment requests. */
export class ReassignmentHandlers {
  constructor(private readonly d: { readonly store: MetadataStore }) {}

  /** AlterPartitionReassignments: each partition's move is started, replaced or cancelled, or refused on its own. */
  async alterPartitionReassignments(
    input: AlterPartitionReassignmentsInput,
    controller: ControllerPort,
  ): Promise<AlterPartitionReassignmentsResult> {
    if (!controller.isActive() && !controller.forwarded) return controller.forward("alterPartitionReassignments", input);
    const n = input.partitions.length;
    if (n === 0) throw rillError("INVALID_REQUEST", "partitions: at least one is required");
    if (n > REASSIGN_REQUEST_PARTITIONS_MAX)
      throw rillError("INVALID_REQUEST", `partitions: ${n} items, at most ${REASSIGN_REQUEST_PARTITIONS_MAX}`);
    const errors: (RillError | undefined)[] = [];
    await this.d.store.commit((img) => {
      errors.length = 0;
      const seen = new Set<string>();
      const records: MetadataRecord[] = [];
      input.partitions.forEach((p, i) => {
        const key = `${p.topic}\u0000${p.partition}`;
        if (seen.has(key)) {
          errors[i] = rillError("INVALID_REQUEST", `partitions[${i}]: ${p.topic}-${p.partition} is named twice`);
          return;
        }
        seen.add(key);
        try {
          records.push(...decideAlterReassignment(img, p));
        } catch (e) {
          if (!(e instanceof RillError)) throw e;
          errors[i] = e;
        }
      });
      return records;
    });
    controller.committedHere();
    return {
      results: input.partitions.map((p, i) => ({
        topic: p.topic,
        partition: p.partition,
        ...(errors[i] ? { error: errors[i] } : {}),
      })),
    };
  }

  /** ListPartitionReassignments, from this node's image; UNKNOWN_TOPIC_OR_PARTITION for a topic named that does not exist. */
  listPartitionReassignments(input: ListPartitionReassignmentsInput): ListPartitionReassignmentsResult {
    const img = this.d.store.image;
    if (input.partitions.length === 0) return { reassignments: listReassignments(img) };
    const named: { topic: string; partition: number }[] = [];
    for (const [i, tp] of input.partitions.entries()) {
      const t = img.topics.get(tp.topic);
      if (!t) throw rillError("UNKNOWN_TOPIC_OR_PARTITION", `partitions[${i}].topic: topic "${tp.topic}" does not exist`);
      const partitions = tp.partitions.length > 0 ? tp.partitions : t.partitions.map((_, p) => p);
      for (const partition of partitions) named.push({ topic: tp.topic, partition });
    }
    return { reassignments: listReassignments(img, named) };
  }
}
