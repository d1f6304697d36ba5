/**
 * What Kafka's Metadata request asks of a broker, as a read of this node's metadata image: the
 * brokers Kafka clients can reach (those registered with a Kafka listener and not fenced, at their
 * own advertised Kafka address), the cluster and controller ids, and per topic its id, whether it is internal,
 * and each partition's leader, leader epoch, replicas, ISR and offline replicas.
 *
 * The gRPC side answers the same facts through DescribeCluster and DescribeTopics; this read
 * leaves out what those add (configs, offsets asked of each leader), which Metadata never carries
 * and which would make every client's metadata refresh a round of calls to the other brokers.
 * Auto-creation of unknown topics is not here: the adapter asks `AdminHandlers.createTopics`,
 * exactly as CreateTopics does, and reads again.
 */
import type { MetadataImage, PartitionState } from "../metadata/image.ts";
import { isInternalTopic } from "./admin.ts";

/** A broker as Metadata lists it. */
export interface MetadataBroker {
  readonly nodeId: number;
  /** Its Kafka listener, HOST:PORT. */
  readonly kafkaAddress: string;
  /** null: no rack. */
  readonly rack: string | null;
}

/** A partition as Metadata lists it. */
export interface MetadataPartition {
  readonly partition: number;
  /** -1: none (LEADER_NOT_AVAILABLE). */
  readonly leader: number;
  readonly leaderEpoch: number;
  readonly replicas: readonly number[];
  readonly isr: readonly number[];
  /** Replicas on brokers that are fenced or not registered. */
  readonly offline: readonly number[];
}

/** A topic as Metadata lists it; absent from the image: `exists` false and nothing else. */
export interface MetadataTopic {
  readonly name: string;
  readonly exists: boolean;
  /** The image's topic id (32 hex digits); "" when the topic does not exist. */
  readonly topicId: string;
  readonly internal: boolean;
  readonly partitions: readonly MetadataPartition[];
}

/** The whole answer. */
export interface ClusterMetadata {
  readonly clusterId: string;
  /** -1 while none is elected. */
  readonly controllerId: number;
  /** Sorted by node id. */
  readonly brokers: readonly MetadataBroker[];
  readonly topics: readonly MetadataTopic[];
}

/**
 * Reads the cluster's metadata from `image`. `topics`: the names asked for (in that order,
 * unknown ones with `exists` false), or null for every topic (sorted by name).
 */
export function clusterMetadata(
  image: MetadataImage,
  ids: { readonly clusterId: string; readonly controllerId: number },
  topics: readonly string[] | null,
): ClusterMetadata {
  const brokers: MetadataBroker[] = [];
  for (const b of image.brokers.values()) {
    if (!b.kafkaAddress || b.fenced) continue;
    brokers.push({ nodeId: b.nodeId, kafkaAddress: b.kafkaAddress, rack: b.rack === "" ? null : b.rack });
  }
  brokers.sort((a, b) => a.nodeId - b.nodeId);
  const online = (id: number): boolean => {
    const b = image.brokers.get(id);
    return b !== undefined && !b.fenced;
  };
  const names = topics ?? image.topicNames();
  return {
    clusterId: ids.clusterId,
    controllerId: ids.controllerId,
    brokers,
    topics: names.map((name) => {
      const t = image.topics.get(name);
      if (!t) return { name, exists: false, topicId: "", internal: isInternalTopic(name), partitions: [] };
      return {
        name,
        exists: true,
        topicId: t.topicId,
        internal: isInternalTopic(name),
        partitions: t.partitions.map((p) => partition(p, online)),
      };
    }),
  };
}

function partition(p: PartitionState, online: (id: number) => boolean): MetadataPartition {
  return {
    partition: p.partition,
    leader: p.leader,
    leaderEpoch: p.leaderEpoch,
    replicas: [...p.replicas],
    isr: [...p.isr],
    offline: p.replicas.filter((r) => !online(r)),
  };
}
