/**
 * The MetadataImage: cluster metadata as of some offset of the metadata log, built only by
 * replaying MetadataRecords (`apply`). Brokers answer Admin and routing questions from it.
 */
import { assert } from "../base/assert.ts";
import type { BrokerRecord, MetadataRecord, PartitionRecord } from "./records.ts";

/** A partition's state in the image. */
export type PartitionState = Omit<PartitionRecord, "type" | "v">;

/** A topic in the image. */
export interface TopicState {
  readonly name: string;
  readonly topicId: string;
  configs: Record<string, string>;
  partitions: PartitionState[];
}

/** A broker in the image. */
export type BrokerState = Omit<BrokerRecord, "type" | "v">;

/** Cluster metadata, replayed from records. */
export class MetadataImage {
  readonly topics = new Map<string, TopicState>();
  readonly brokers = new Map<number, BrokerState>();
  nextProducerId = 0;
  /** The newest epoch issued to each producer id. */
  readonly producerEpochs = new Map<number, number>();
  /** Stable (transactional-style) ids → the producer id they own. */
  readonly transactionalIds = new Map<string, number>();
  /** Offset of the last record applied, -1 when empty. */
  offset = -1;

  /** Applies one record at `offset`. */
  apply(r: MetadataRecord, offset: number): void {
    switch (r.type) {
      case "topic":
        assert(!this.topics.has(r.name), `topic ${r.name} replayed twice`);
        this.topics.set(r.name, { name: r.name, topicId: r.topicId, configs: { ...r.configs }, partitions: [] });
        break;
      case "partition": {
        const t = this.topics.get(r.topic);
        assert(t, `partition of unknown topic ${r.topic}`);
        const { type: _t, v: _v, ...state } = r;
        assert(r.partition <= t.partitions.length, `partition ${r.partition} of ${r.topic} skips one`);
        t.partitions[r.partition] = state;
        break;
      }
      case "config": {
        const t = this.topics.get(r.topic);
        assert(t, `config of unknown topic ${r.topic}`);
        t.configs = { ...r.configs };
        break;
      }
      case "remove-topic":
        this.topics.delete(r.name);
        break;
      case "broker": {
        const { type: _t, v: _v, ...state } = r;
        this.brokers.set(r.nodeId, state);
        break;
      }
      case "producer-ids":
        this.nextProducerId = Math.max(this.nextProducerId, r.nextProducerId);
        break;
      case "producer-epoch":
        this.producerEpochs.set(r.producerId, r.producerEpoch);
        if (r.transactionalId !== "") this.transactionalIds.set(r.transactionalId, r.producerId);
        this.nextProducerId = Math.max(this.nextProducerId, r.producerId + 1);
        break;
    }
    this.offset = offset;
  }

  /** Topic names, sorted. */
  topicNames(): string[] {
    return [...this.topics.keys()].sort();
  }
}
