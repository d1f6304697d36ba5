/**
 * Bugs planted in partition reassignment (settings.reassignments) and in the metadata path of
 * broker-only nodes (settings.brokerOnlyNodes), to show their checks catch them (reassign.ts
 * `finalChecks`, broker-only.ts); numbered apart from plants.ts's own. Each wraps
 * one method of a real class for as long as it is planted and returns the function that puts
 * the real method back.
 */
import { MetadataImage } from "../../../src/metadata/image.ts";
import { QuorumMetadataStore } from "../../../src/metadata/quorum-store.ts";
import type { PartitionChangeRecord } from "../../../src/metadata/records.ts";
import { LogManager } from "../../../src/storage/log-manager.ts";

/** The planted reassignment bugs, by number. */
export const REASSIGN_PLANTED_BUGS: Readonly<Record<number, string>> = {
  12: "the metadata image drops a reassignment's completion (the partition stays reassigned)",
  13: "a completed reassignment keeps the replicas it removed in the replica set",
  14: "a broker that no longer holds a replica keeps its log on disk",
  15: "a voter that serves broker-only nodes no metadata entry past offset 40 (FetchMetadata)",
};

/** MetadataImage's private member the wrappers reach. */
interface ImagePrivate {
  applyPartitionChange(r: PartitionChangeRecord): void;
}

/** Wraps `proto[name]` with `wrap(original)`; returns the function that restores it. */
function wrap<F extends (...args: never[]) => unknown>(proto: object, name: string, make: (orig: F) => F): () => void {
  const p = proto as Record<string, unknown>;
  const orig = p[name];
  if (typeof orig !== "function") throw new Error(`planted bug: ${name} is no longer a method; update plants-reassign.ts`);
  p[name] = make(orig as F);
  return () => {
    p[name] = orig;
  };
}

/** A change that ends the reassignment of a partition being reassigned, with the target other than its original replicas (not a cancel). */
function isCompletion(img: MetadataImage, r: PartitionChangeRecord): readonly number[] | null {
  const before = img.topics.get(r.topic)?.partitions[r.partition];
  const removing = before?.removingReplicas ?? [];
  const adding = before?.addingReplicas ?? [];
  if (r.replicas === undefined || r.addingReplicas?.length !== 0 || r.removingReplicas?.length !== 0) return null;
  if (adding.length === 0 && removing.length === 0) return null;
  // a cancel drops the added replicas; a completion keeps them
  if (adding.length > 0 && !adding.every((a) => r.replicas!.includes(a))) return null;
  return removing;
}

/** Plants reassignment bug `n` (see REASSIGN_PLANTED_BUGS); returns the function that reverts it. */
export function plantReassignBug(n: number): () => void {
  type Apply = ImagePrivate["applyPartitionChange"];
  switch (n) {
    case 12:
      return wrap<Apply>(
        MetadataImage.prototype,
        "applyPartitionChange",
        (orig) =>
          function (this: MetadataImage, r: PartitionChangeRecord): void {
            if (isCompletion(this, r) === null) return orig.call(this, r);
            // planted: the completion's replica fields are dropped
            const { replicas: _r, addingReplicas: _a, removingReplicas: _m, ...rest } = r;
            return orig.call(this, rest);
          },
      );
    case 13:
      return wrap<Apply>(
        MetadataImage.prototype,
        "applyPartitionChange",
        (orig) =>
          function (this: MetadataImage, r: PartitionChangeRecord): void {
            const removing = isCompletion(this, r);
            if (removing === null || removing.length === 0) return orig.call(this, r);
            // planted: the removed replicas stay in the replica set
            return orig.call(this, { ...r, replicas: [...r.replicas!, ...removing] });
          },
      );
    case 14:
      // planted: deleting a log does nothing
      return wrap<(topic: string, partition: number) => boolean>(LogManager.prototype, "delete", () => () => false);
    case 15:
      return wrap<QuorumMetadataStore["readCommitted"]>(
        QuorumMetadataStore.prototype,
        "readCommitted",
        (orig) =>
          function (this: QuorumMetadataStore, after: number, maxBytes: number) {
            const r = orig.call(this, after, maxBytes);
            // planted: nothing past offset 40 is served
            return {
              snapshot: r.snapshot && r.snapshot.offset <= 40 ? r.snapshot : null,
              entries: r.entries.filter((e) => e.offset <= 40),
            };
          },
      );
    default:
      throw new Error(`no planted reassignment bug ${n}`);
  }
}
