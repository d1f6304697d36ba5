/**
 * Issue 19's speed workload: 3 nodes, a topic of 6 partitions with replication factor 3, about
 * 1,000 records/s (`npm run sim -- --cluster --seed 7 --speed batched`; see README.md, "Speed").
 * What it pins: no broker-only node (the defaults add a 4th node) and no transactional producers
 * (their topic and `__transaction_state` would add 53 partitions and their own traffic); the rest
 * — faults, the admin, the consumer group, the idempotent and acks=leader/none producers — is the
 * defaults', as every sweep runs them.
 */
import type { ClusterSimSettings } from "./cluster.ts";

/** The two ways the workload writes its records. */
export type SpeedWorkload = "batched" | "single";

const PINNED: Partial<ClusterSimSettings> = { nodes: 3, brokerOnlyNodes: 0, transactionalProducers: 0, partitions: 6 };

export const SPEED_WORKLOADS: Readonly<Record<SpeedWorkload, Partial<ClusterSimSettings>>> = {
  /**
   * 10 batching producers (batch-producer.ts), each handed a record every 10 ms on average, with
   * linger.ms 5 (Kafka's default since 4.0): 1,000 records/s written, a few per request.
   */
  batched: { ...PINNED, producers: 10, produceEveryMs: 10, lingerMs: 5 },
  /**
   * 70 producers of one record per request, the next once it is answered, 20 ms apart on average:
   * about 1,100 records/s written (the round trip bounds each producer's rate), the most requests
   * and events per record.
   */
  single: { ...PINNED, producers: 70, produceEveryMs: 20, lingerMs: 0 },
};
