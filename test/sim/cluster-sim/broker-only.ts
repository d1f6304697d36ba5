/**
 * Broker-only nodes (settings.brokerOnlyNodes): the check that their metadata, pulled from the
 * voters (ObserverMetadataStore over FetchMetadata), reached the voters' after healing.
 */
import type { MetadataImage } from "../../../src/metadata/image.ts";
import type { History } from "./history.ts";
import type { SimNode } from "./node.ts";

/**
 * After healing (and the quiet seconds before the checks): every up broker-only node's image
 * shows `topics` as the voters' does — each partition's leader, leader epoch, partition epoch,
 * replicas and ISR (`observer-metadata`) — and the node is registered and unfenced.
 */
export function checkBrokerOnlyImages(
  voterImage: MetadataImage,
  nodes: Iterable<SimNode>,
  topics: readonly string[],
  h: History,
  now: number,
): void {
  for (const n of nodes) {
    if (n.voter || !n.up) continue;
    const img = n.running!.store.image;
    const b = voterImage.brokers.get(n.id);
    if (!b || b.fenced)
      h.violation("observer-metadata", `broker-only node ${n.id} is ${b ? "fenced" : "not registered"} after healing`, now);
    for (const topic of topics) {
      const want = voterImage.topics.get(topic)?.partitions ?? [];
      const got = img.topics.get(topic)?.partitions ?? [];
      const show = (p: (typeof want)[number] | undefined): string =>
        p
          ? `leader ${p.leader} epoch ${p.leaderEpoch} partition epoch ${p.partitionEpoch} replicas ${p.replicas.join(",")} isr ${p.isr.join(",")}`
          : "none";
      for (let i = 0; i < Math.max(want.length, got.length); i++) {
        if (show(want[i]) === show(got[i])) continue;
        h.violation(
          "observer-metadata",
          `${topic}-${i}: broker-only node ${n.id} (metadata offset ${img.offset}) has ${show(got[i])}, the voters ${show(want[i])} (offset ${voterImage.offset})`,
          now,
        );
      }
    }
  }
}
