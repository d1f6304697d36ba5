/**
 * The MetadataImage: cluster metadata as of some offset of the metadata log, built only by
 * replaying MetadataRecords (`apply`). Brokers answer Admin and routing questions from it.
 *
 * A snapshot is the image written back as records (`snapshotRecords`) that `fromSnapshot`
 * replays into an equal image, so the log before it can be dropped.
 */
import { assert } from "../base/assert.ts";
import type {
  AclRecord,
  BrokerFenceRecord,
  BrokerRecord,
  BrokerShutdownRecord,
  MetadataRecord,
  PartitionChangeRecord,
  PartitionRecord,
  RemoveAclRecord,
  RemoveScramCredentialRecord,
  ScramCredentialRecord,
} from "./records.ts";
import type { AclBinding, ScramCredential, ScramMechanism } from "./security-types.ts";
import { applyClientQuota, type ClientQuotaState, clientQuotaSnapshot } from "./client-quotas.ts";

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
export interface BrokerState {
  readonly nodeId: number;
  readonly address: string;
  readonly roles: readonly string[];
  /** A fenced broker leads nothing and may not join an ISR. */
  readonly fenced: boolean;
  /** The metadata offset of the broker's latest registration. */
  readonly epoch: number;
  /**
   * The metadata offset of the record that last fenced this registration: the registration
   * itself, or a `broker-fence` (its session expired). The controller unfences the broker only
   * once its image has reached it, so that the image no longer names it leader of what the
   * fencing moved away (cluster-sim seed 6223).
   */
  readonly fencedOffset: number;
  /** The registered process's incarnation id; "" for records written before there was one. */
  readonly incarnationId: string;
  /** "" for none. */
  readonly rack: string;
  /** Set by a BrokerShutdownRecord; cleared by the next registration. */
  readonly inControlledShutdown: boolean;
  /** Partition replicas the broker may hold, as it registered (`max.partitions`); absent: unknown. */
  readonly maxPartitions?: number;
  /** Its internal listener, where members call it; absent: none (members use `address`). */
  readonly internalAddress?: string;
  /** Its Kafka listener, where Kafka clients reach it (Metadata); absent: none. */
  readonly kafkaAddress?: string;
}

/** Cluster metadata, replayed from records. */
export class MetadataImage {
  readonly topics = new Map<string, TopicState>();
  readonly brokers = new Map<number, BrokerState>();
  nextProducerId = 0;
  /** The newest epoch issued to each producer id. */
  readonly producerEpochs = new Map<number, number>();
  /** Stable (transactional-style) ids → the producer id they own. */
  readonly transactionalIds = new Map<string, number>();
  /** Client quotas by entity (client-quotas.ts `quotaEntityKey`). */
  readonly clientQuotas = new Map<string, ClientQuotaState>();
  /** Offset of the last record applied, -1 when empty. */
  offset = -1;
  // security (issue 13)
  /** ACL bindings by record id. */
  readonly acls = new Map<string, AclBinding>();
  /** SCRAM credentials: user name → mechanism → credential. */
  readonly scramUsers = new Map<string, Map<ScramMechanism, ScramCredential>>();
  /** Grows with every ACL change: decisions cached over the bindings are stale once it moved. */
  aclVersion = 0;
  /** Grows with every credential change: verified passwords cached are stale once it moved. */
  scramVersion = 0;
  // cordoned brokers (issue 21)
  /** Node ids of the cordoned brokers: no new replica goes there. Kept across their registrations. */
  readonly cordoned = new Set<number>();

  /** An image rebuilt from `snapshotRecords` output taken at metadata offset `offset`. */
  static fromSnapshot(records: readonly MetadataRecord[], offset: number): MetadataImage {
    const image = new MetadataImage();
    for (const r of records) image.apply(r, offset);
    image.offset = offset;
    return image;
  }

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
      case "partition-change":
        this.applyPartitionChange(r);
        break;
      case "config": {
        const t = this.topics.get(r.topic);
        assert(t, `config of unknown topic ${r.topic}`);
        t.configs = { ...r.configs };
        break;
      }
      case "remove-topic":
        this.topics.delete(r.name);
        break;
      case "broker":
        this.applyBroker(r, offset);
        break;
      case "broker-fence":
      case "broker-shutdown":
        this.applyBrokerChange(r, offset);
        break;
      case "producer-ids":
        this.nextProducerId = Math.max(this.nextProducerId, r.nextProducerId);
        break;
      case "producer-epoch":
        this.producerEpochs.set(r.producerId, r.producerEpoch);
        if (r.transactionalId !== "") this.transactionalIds.set(r.transactionalId, r.producerId);
        this.nextProducerId = Math.max(this.nextProducerId, r.producerId + 1);
        break;
      // security (issue 13)
      case "acl":
      case "remove-acl":
      case "scram-credential":
      case "remove-scram-credential":
        this.applySecurity(r);
        break;
      // client quotas (issue 13)
      case "client-quota":
        applyClientQuota(this.clientQuotas, r);
        break;
      // cordoned brokers (issue 21)
      case "broker-cordon":
        if (r.cordoned) this.cordoned.add(r.nodeId);
        else this.cordoned.delete(r.nodeId);
        break;
    }
    this.offset = offset;
  }

  /** Every ACL binding, in the order they were created. */
  aclBindings(): AclBinding[] {
    return [...this.acls.values()];
  }

  /** A user's credential for `mechanism`, undefined when there is none. */
  scramCredential(user: string, mechanism: ScramMechanism): ScramCredential | undefined {
    return this.scramUsers.get(user)?.get(mechanism);
  }

  private applySecurity(r: AclRecord | RemoveAclRecord | ScramCredentialRecord | RemoveScramCredentialRecord): void {
    switch (r.type) {
      case "acl":
        assert(!this.acls.has(r.id), `acl ${r.id} replayed twice`);
        this.acls.set(r.id, r.binding);
        this.aclVersion++;
        break;
      case "remove-acl":
        assert(this.acls.delete(r.id), `removal of unknown acl ${r.id}`);
        this.aclVersion++;
        break;
      case "scram-credential": {
        let byMechanism = this.scramUsers.get(r.name);
        if (!byMechanism) this.scramUsers.set(r.name, (byMechanism = new Map()));
        byMechanism.set(r.credential.mechanism, r.credential);
        this.scramVersion++;
        break;
      }
      case "remove-scram-credential": {
        const byMechanism = this.scramUsers.get(r.name) ?? new Map<ScramMechanism, ScramCredential>();
        assert(byMechanism.delete(r.mechanism), `removal of unknown credential ${r.mechanism} of ${r.name}`);
        if (byMechanism.size === 0) this.scramUsers.delete(r.name);
        this.scramVersion++;
        break;
      }
    }
  }

  /** Topic names, sorted. */
  topicNames(): string[] {
    return [...this.topics.keys()].sort();
  }

  /** Node ids of the registered brokers that are not fenced, sorted. */
  unfencedBrokers(): number[] {
    const out: number[] = [];
    for (const b of this.brokers.values()) if (!b.fenced) out.push(b.nodeId);
    return out.sort((a, b) => a - b);
  }

  /**
   * Node ids of the brokers new replicas may be placed on: registered, unfenced and not cordoned
   * (issue 21), sorted.
   */
  placementBrokers(): number[] {
    return this.unfencedBrokers().filter((b) => !this.cordoned.has(b));
  }

  private applyBroker(r: BrokerRecord, offset: number): void {
    this.brokers.set(r.nodeId, {
      nodeId: r.nodeId,
      address: r.address,
      roles: [...r.roles],
      fenced: r.fenced,
      epoch: r.epoch ?? offset,
      fencedOffset: r.fencedOffset ?? r.epoch ?? offset,
      incarnationId: r.incarnationId ?? "",
      rack: r.rack ?? "",
      inControlledShutdown: false,
      ...(r.maxPartitions !== undefined ? { maxPartitions: r.maxPartitions } : {}),
      ...(r.internalAddress ? { internalAddress: r.internalAddress } : {}),
      ...(r.kafkaAddress ? { kafkaAddress: r.kafkaAddress } : {}),
    });
  }

  /** Fence, unfence or controlled shutdown; a record for an earlier registration is ignored. */
  private applyBrokerChange(r: BrokerFenceRecord | BrokerShutdownRecord, offset: number): void {
    const b = this.brokers.get(r.nodeId);
    if (!b || b.epoch !== r.brokerEpoch) return;
    const next: BrokerState =
      r.type === "broker-fence"
        ? { ...b, fenced: r.fenced, ...(r.fenced ? { fencedOffset: offset } : {}) }
        : { ...b, inControlledShutdown: true };
    this.brokers.set(r.nodeId, next);
  }

  private applyPartitionChange(r: PartitionChangeRecord): void {
    const t = this.topics.get(r.topic);
    assert(t, `partition change of unknown topic ${r.topic}`);
    const p = t.partitions[r.partition];
    assert(p, `partition change of unknown partition ${r.topic}-${r.partition}`);
    assert(
      r.partitionEpoch > p.partitionEpoch,
      `partition epoch of ${r.topic}-${r.partition} goes from ${p.partitionEpoch} to ${r.partitionEpoch}`,
    );
    assert(r.leaderEpoch >= p.leaderEpoch, `leader epoch of ${r.topic}-${r.partition} goes from ${p.leaderEpoch} to ${r.leaderEpoch}`);
    const { elr: _e, lastKnownElr: _l, lastKnownLeader: _k, ...rest } = p;
    t.partitions[r.partition] = withReassignment(
      {
        ...rest,
        leader: r.leader,
        isr: [...r.isr],
        leaderEpoch: r.leaderEpoch,
        partitionEpoch: r.partitionEpoch,
        // eligible leader replicas (KIP-966, issue 21): the record carries the resulting sets
        ...(r.elr?.length ? { elr: [...r.elr] } : {}),
        ...(r.lastKnownElr?.length ? { lastKnownElr: [...r.lastKnownElr] } : {}),
        ...(r.lastKnownLeader !== undefined ? { lastKnownLeader: r.lastKnownLeader } : {}),
      },
      r,
    );
  }
}

// ---- reassignment (issue 21, KIP-455) ---------------------------------------------------------

/**
 * `state` with the replica fields `r` carries: `replicas` replaced when given, `addingReplicas` /
 * `removingReplicas` replaced when given and left out when empty (a partition not being
 * reassigned has neither, as a freshly created one).
 */
function withReassignment(state: PartitionState, r: PartitionChangeRecord): PartitionState {
  if (r.replicas === undefined && r.addingReplicas === undefined && r.removingReplicas === undefined) return state;
  const { addingReplicas, removingReplicas, ...rest } = state;
  const adding = r.addingReplicas ?? addingReplicas ?? [];
  const removing = r.removingReplicas ?? removingReplicas ?? [];
  return {
    ...rest,
    replicas: [...(r.replicas ?? state.replicas)],
    ...(adding.length > 0 ? { addingReplicas: [...adding] } : {}),
    ...(removing.length > 0 ? { removingReplicas: [...removing] } : {}),
  };
}

/**
 * The records that rebuild `image` when replayed into a fresh one (MetadataImage.fromSnapshot):
 * topics with their configs and partition states, brokers with their epochs and fencing, the
 * producer id state, ACL bindings (with their ids), SCRAM credentials, client quotas and cordoned
 * brokers. Arrays are
 * copied, so the records do not alias the image.
 */
export function snapshotRecords(image: MetadataImage): MetadataRecord[] {
  const out: MetadataRecord[] = [];
  for (const t of image.topics.values()) {
    out.push({ type: "topic", v: 1, name: t.name, topicId: t.topicId, configs: { ...t.configs } });
    for (const p of t.partitions)
      out.push({
        type: "partition",
        v: 1,
        ...p,
        replicas: [...p.replicas],
        isr: [...p.isr],
        ...(p.addingReplicas ? { addingReplicas: [...p.addingReplicas] } : {}),
        ...(p.removingReplicas ? { removingReplicas: [...p.removingReplicas] } : {}),
        ...(p.elr ? { elr: [...p.elr] } : {}),
        ...(p.lastKnownElr ? { lastKnownElr: [...p.lastKnownElr] } : {}),
      });
  }
  for (const b of image.brokers.values()) {
    out.push({
      type: "broker",
      v: 1,
      nodeId: b.nodeId,
      address: b.address,
      roles: [...b.roles],
      fenced: b.fenced,
      incarnationId: b.incarnationId,
      rack: b.rack,
      epoch: b.epoch,
      ...(b.fencedOffset !== b.epoch ? { fencedOffset: b.fencedOffset } : {}),
      ...(b.maxPartitions !== undefined ? { maxPartitions: b.maxPartitions } : {}),
      ...(b.internalAddress ? { internalAddress: b.internalAddress } : {}),
      ...(b.kafkaAddress ? { kafkaAddress: b.kafkaAddress } : {}),
    });
    if (b.inControlledShutdown) out.push({ type: "broker-shutdown", v: 1, nodeId: b.nodeId, brokerEpoch: b.epoch });
  }
  for (const [producerId, producerEpoch] of image.producerEpochs)
    out.push({ type: "producer-epoch", v: 1, producerId, producerEpoch, transactionalId: "" });
  for (const [transactionalId, producerId] of image.transactionalIds) {
    const producerEpoch = image.producerEpochs.get(producerId);
    assert(producerEpoch !== undefined, `transactional id ${transactionalId} owns producer ${producerId}, which has no epoch`);
    out.push({ type: "producer-epoch", v: 1, producerId, producerEpoch, transactionalId });
  }
  out.push({ type: "producer-ids", v: 1, nextProducerId: image.nextProducerId });
  // security (issue 13)
  for (const [id, binding] of image.acls) out.push({ type: "acl", v: 1, id, binding: { ...binding } });
  for (const [name, byMechanism] of image.scramUsers)
    for (const credential of byMechanism.values()) out.push({ type: "scram-credential", v: 1, name, credential: { ...credential } });
  out.push(...clientQuotaSnapshot(image.clientQuotas));
  // cordoned brokers (issue 21)
  for (const nodeId of [...image.cordoned].sort((a, b) => a - b)) out.push({ type: "broker-cordon", v: 1, nodeId, cordoned: true });
  return out;
}
