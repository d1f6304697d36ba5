/**
 * Metadata records: the only way cluster metadata changes. A MetadataImage is what you get by
 * replaying them in order (image.ts); the controller decides which records a request produces
 * (controller.ts); the Raft quorum of controller voters makes them durable (quorum-store.ts)
 * and a broker-only node follows them (observer-store.ts).
 *
 * Encoded as JSON with a `type` tag and a `v` version — the records of one commit as a JSON
 * array in one Raft entry (quorum-store.ts), one record per record-batch value in the local log
 * of data dirs older than the quorum (store.ts): small, rare, and readable with `rill` tools.
 * Unknown types fail loudly on replay.
 */
import { rillError } from "../base/errors.ts";
import type { AclBinding, ScramCredential, ScramMechanism } from "./security-types.ts";
import type { QuotaEntity, QuotaKey } from "./security-types.ts";

/** A topic came into being. Its partitions follow as PartitionRecords. */
export interface TopicRecord {
  readonly type: "topic";
  readonly v: 1;
  readonly name: string;
  /** Random 128-bit id (hex), so a re-created topic of the same name is a different topic. */
  readonly topicId: string;
  /** Topic-level config overrides (Kafka names → string values). */
  readonly configs: Readonly<Record<string, string>>;
}

/** A partition's placement and leadership. */
export interface PartitionRecord {
  readonly type: "partition";
  readonly v: 1;
  readonly topic: string;
  readonly partition: number;
  readonly replicas: readonly number[];
  readonly isr: readonly number[];
  readonly leader: number;
  readonly leaderEpoch: number;
  readonly partitionEpoch: number;
  // reassignment (issue 21, KIP-455): present only while the partition is being reassigned
  /** Replicas being added (in `replicas`, not in the original set); absent: none. */
  readonly addingReplicas?: readonly number[];
  /** Replicas being removed (in `replicas`, not in the target set); absent: none. */
  readonly removingReplicas?: readonly number[];
  // eligible leader replicas (KIP-966, issue 21)
  /** Replicas that left the ISR while it was below min.insync.replicas and hold every committed record; absent: none. */
  readonly elr?: readonly number[];
  /** Replicas that were in the ISR or ELR since the ISR fell below min.insync.replicas, but are in neither now; absent: none. */
  readonly lastKnownElr?: readonly number[];
  /** While the ISR is empty (ELR on): its last member, the only replica an unclean shutdown leaves eligible; absent: none. */
  readonly lastKnownLeader?: number;
}

/** A topic's full set of config overrides replaced. */
export interface ConfigRecord {
  readonly type: "config";
  readonly v: 1;
  readonly topic: string;
  readonly configs: Readonly<Record<string, string>>;
}

/** A topic and all its partitions are gone. */
export interface RemoveTopicRecord {
  readonly type: "remove-topic";
  readonly v: 1;
  readonly name: string;
  readonly topicId: string;
}

/**
 * A broker registered (joined, or re-joined after a restart). A registration comes in fenced;
 * the broker's heartbeats unfence it once it has caught up with the metadata log. The broker's
 * epoch is the metadata offset at which this record was applied, unless `epoch` is given: a
 * snapshot writes the broker with its epoch (and current `fenced`) so that replaying the snapshot
 * keeps it. A registration clears controlled shutdown.
 */
export interface BrokerRecord {
  readonly type: "broker";
  readonly v: 1;
  readonly nodeId: number;
  readonly address: string;
  readonly roles: readonly string[];
  readonly fenced: boolean;
  /** Random id of the broker process; a restart brings a new one. Absent in old records. */
  readonly incarnationId?: string;
  /** Failure domain the broker says it is in; absent or "" for none. */
  readonly rack?: string;
  /** Partition replicas the broker may hold (its `max.partitions`); absent: unknown. */
  readonly maxPartitions?: number;
  /** The broker's internal listener, HOST:PORT, where members call it; absent: none (members use `address`). */
  readonly internalAddress?: string;
  /** The broker's Kafka listener, HOST:PORT, as Kafka clients reach it; absent: none. */
  readonly kafkaAddress?: string;
  /** Only in snapshots: the broker's epoch, which apply() takes instead of the record's offset. */
  readonly epoch?: number;
  /** Only in snapshots: the offset of the `broker-fence` that last fenced it, when later than its epoch. */
  readonly fencedOffset?: number;
  /**
   * The broker's previous process may have lost writes it had acknowledged (it did not stop
   * cleanly and the machine restarted since: KIP-966's unclean shutdown). Informational: the
   * controller writes the ELR changes alongside. Absent: false.
   */
  readonly uncleanShutdown?: boolean;
}

/**
 * A broker was fenced (`fenced: true`: its session expired or it asked to be) or unfenced (it
 * heartbeats and has caught up). A record for an earlier registration of the node (`brokerEpoch`
 * not its current epoch) changes nothing. Partition leadership moves in PartitionChangeRecords
 * written alongside.
 */
export interface BrokerFenceRecord {
  readonly type: "broker-fence";
  readonly v: 1;
  readonly nodeId: number;
  readonly brokerEpoch: number;
  readonly fenced: boolean;
}

/**
 * A broker began a controlled shutdown: it may not lead or join an ISR until it registers again.
 * Like BrokerFenceRecord, it changes nothing when `brokerEpoch` is not the current epoch.
 */
export interface BrokerShutdownRecord {
  readonly type: "broker-shutdown";
  readonly v: 1;
  readonly nodeId: number;
  readonly brokerEpoch: number;
}

/**
 * A partition's leadership or ISR changed. Carries the resulting values (not deltas); the
 * replicas stay unless `replicas` is given (a reassignment). `leader` -1 means the partition has no leader. `partitionEpoch` grows with every
 * change, `leaderEpoch` with every change of leader.
 */
export interface PartitionChangeRecord {
  readonly type: "partition-change";
  readonly v: 1;
  readonly topic: string;
  readonly partition: number;
  readonly leader: number;
  readonly isr: readonly number[];
  readonly leaderEpoch: number;
  readonly partitionEpoch: number;
  // reassignment (issue 21, KIP-455): each absent field keeps its value
  /** The new replica set (during a reassignment: target ∪ original). */
  readonly replicas?: readonly number[];
  /** The replicas being added; [] ends the reassignment. */
  readonly addingReplicas?: readonly number[];
  /** The replicas being removed; [] ends the reassignment. */
  readonly removingReplicas?: readonly number[];
  // eligible leader replicas (KIP-966, issue 21): the resulting values, as `isr`; absent: none
  readonly elr?: readonly number[];
  readonly lastKnownElr?: readonly number[];
  readonly lastKnownLeader?: number;
}

/** `leader` of a partition that has none. */
export const NO_LEADER = -1;

/** The next block of producer ids handed out (idempotent producers). */
export interface ProducerIdsRecord {
  readonly type: "producer-ids";
  readonly v: 1;
  /** First id not yet handed out after this block. */
  readonly nextProducerId: number;
}

/**
 * A producer id was issued, or its epoch bumped (InitProducerId). With a `transactionalId`, the
 * stable id maps to this producer id, and the new epoch fences every older instance.
 */
export interface ProducerEpochRecord {
  readonly type: "producer-epoch";
  readonly v: 1;
  readonly producerId: number;
  readonly producerEpoch: number;
  readonly transactionalId: string;
}

// ---- security (issue 13): ACL bindings and SCRAM credentials ---------------------------------

/**
 * An ACL binding was created (Kafka's AccessControlEntryRecord). `id` (random, 128-bit hex) names
 * it, so a RemoveAclRecord removes exactly this binding.
 */
export interface AclRecord {
  readonly type: "acl";
  readonly v: 1;
  readonly id: string;
  readonly binding: AclBinding;
}

/** An ACL binding was deleted (Kafka's RemoveAccessControlEntryRecord). */
export interface RemoveAclRecord {
  readonly type: "remove-acl";
  readonly v: 1;
  readonly id: string;
}

/**
 * A user's SCRAM credential for one mechanism was created or replaced (Kafka's
 * UserScramCredentialRecord): salt, iterations, StoredKey and ServerKey, never the password.
 */
export interface ScramCredentialRecord {
  readonly type: "scram-credential";
  readonly v: 1;
  readonly name: string;
  readonly credential: ScramCredential;
}

/** A user's SCRAM credential for one mechanism was deleted (Kafka's RemoveUserScramCredentialRecord). */
export interface RemoveScramCredentialRecord {
  readonly type: "remove-scram-credential";
  readonly v: 1;
  readonly name: string;
  readonly mechanism: ScramMechanism;
}

// ---- client quotas (issue 13) ------------------------------------------------------------------

/**
 * A client quota set or removed (Kafka's ClientQuotaRecord): `key` of `entity` becomes `value`
 * bytes per second, or is removed when `value` is null. The entity's parts as QuotaEntity: a
 * part that is null is the `<default>` entity of that part, an absent part is not in the entity.
 */
export interface ClientQuotaRecord {
  readonly type: "client-quota";
  readonly v: 1;
  readonly entity: QuotaEntity;
  readonly key: QuotaKey;
  readonly value: number | null;
}

// ---- cordoned brokers (issue 21, as Kafka's KIP-1066) ----------------------------------------

/**
 * A broker was cordoned (`cordoned: true`: the controller places no new replica on it) or
 * uncordoned. Unlike fencing, it belongs to the node id, not to one registration: a new
 * BrokerRecord (a restart) keeps it.
 */
export interface BrokerCordonRecord {
  readonly type: "broker-cordon";
  readonly v: 1;
  readonly nodeId: number;
  readonly cordoned: boolean;
}

/** Every kind of metadata record. */
export type MetadataRecord =
  | TopicRecord
  | PartitionRecord
  | ConfigRecord
  | RemoveTopicRecord
  | BrokerRecord
  | BrokerFenceRecord
  | BrokerShutdownRecord
  | PartitionChangeRecord
  | ProducerIdsRecord
  | ProducerEpochRecord
  // security (issue 13)
  | AclRecord
  | RemoveAclRecord
  | ScramCredentialRecord
  | RemoveScramCredentialRecord
  // client quotas (issue 13)
  | ClientQuotaRecord
  // cordoned brokers (issue 21)
  | BrokerCordonRecord;

const TYPES = new Set<MetadataRecord["type"]>([
  "topic",
  "partition",
  "config",
  "remove-topic",
  "broker",
  "broker-fence",
  "broker-shutdown",
  "partition-change",
  "producer-ids",
  "producer-epoch",
  // security (issue 13)
  "acl",
  "remove-acl",
  "scram-credential",
  "remove-scram-credential",
  "client-quota",
  // cordoned brokers (issue 21)
  "broker-cordon",
]);

/** Encodes a record for storage. */
export function encodeMetadataRecord(r: MetadataRecord): Buffer {
  return Buffer.from(JSON.stringify(r), "utf8");
}

/**
 * Decodes a stored record; throws RillError(CORRUPT_MESSAGE) on anything that is not a known
 * record (bytes that are not JSON included).
 */
export function decodeMetadataRecord(bytes: Uint8Array): MetadataRecord {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8");
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw rillError("CORRUPT_MESSAGE", `unknown metadata record: not JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  return metadataRecordOf(v);
}

/**
 * A record already parsed from JSON (an element of a Raft entry's array, quorum-store.ts); throws
 * as `decodeMetadataRecord` on anything that is not a known record.
 */
export function metadataRecordOf(parsed: unknown): MetadataRecord {
  const v = parsed as { type?: unknown; v?: unknown } | null;
  if (typeof v !== "object" || v === null || !TYPES.has(v.type as MetadataRecord["type"]) || v.v !== 1) {
    throw rillError("CORRUPT_MESSAGE", `unknown metadata record: ${JSON.stringify(v)?.slice(0, 200)}`);
  }
  return v as MetadataRecord;
}
