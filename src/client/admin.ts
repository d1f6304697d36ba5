/**
 * `Admin`: topic, configuration and cluster administration over AdminService, with friendly
 * TypeScript types (offsets as numbers, see convert.ts; enums as string literals; configs as
 * plain objects).
 *
 * Errors: a call that fails as a whole rejects with a RillError or ConnectionError (retried
 * first, per the client's retry policy, when retriable). A call over several items (topics,
 * resources) rejects with the first item's error, its message prefixed with the item's name
 * (`topic "orders": ...`); the other items were processed by the broker on their own, as in
 * Kafka, so some may have succeeded. Items of a metadata change answered NOT_CONTROLLER (the
 * controller moved while the request ran and did not take them) are sent again on their own
 * first, by the same retry policy, as Kafka's AdminClient does (`callItems`).
 */

import {
  ConfigOperation,
  ConfigResourceType,
  ConfigSource,
  type ClientQuotaEntity as ProtoQuotaEntity,
  QuotaEntityType,
  QuotaMatchType,
} from "../gen/rill/v1/admin_service_pb.ts";
import type { ConfigResource } from "../gen/rill/v1/admin_service_pb.ts";
import type { ErrorDetail } from "../gen/rill/v1/common_pb.ts";
import { NodeRole } from "../gen/rill/v1/common_pb.ts";
import { type ClientOptions, type Connection, connect } from "./connection.ts";
import { checkInt, toNumber } from "./convert.ts";
import { Errors, RillError } from "../base/errors.ts";
import { ClientClosedError, fromErrorDetail } from "./errors.ts";
import { type ListedOffset, type OffsetLookup, listOffsets } from "./offsets.ts";
import { withRetries } from "./retry.ts";
import {
  type AclBindingInfo,
  type AclFilter,
  fromProtoBinding,
  fromProtoMechanism,
  type ScramDeletion,
  type ScramUpsertion,
  type ScramUserInfo,
  toProtoBinding,
  toProtoFilter,
  toProtoMechanism,
} from "./acls.ts";

/** A topic to create. */
export interface NewTopic {
  readonly name: string;
  /** Partition count; default: the broker's `num.partitions`. */
  readonly partitions?: number | undefined;
  /** Replicas per partition; default: the broker's `default.replication.factor`. */
  readonly replicationFactor?: number | undefined;
  /** Topic config overrides, e.g. `{"cleanup.policy": "compact"}`. */
  readonly configs?: Readonly<Record<string, string>> | undefined;
}

/** A created (or, with validateOnly, validated) topic, defaults applied. */
export interface CreatedTopic {
  readonly name: string;
  readonly partitions: number;
  readonly replicationFactor: number;
}

/** A topic as ListTopics lists it. */
export interface TopicListing {
  readonly name: string;
  readonly partitions: number;
  readonly replicationFactor: number;
  readonly internal: boolean;
}

/** The state of one partition. */
export interface PartitionDescription {
  readonly partition: number;
  /** Node id of the leader; -1 when none. */
  readonly leader: number;
  readonly replicas: readonly number[];
  readonly isr: readonly number[];
  /** Eligible leader replicas (KIP-966): out of the ISR, holding every committed record; electable when the ISR is empty. */
  readonly eligibleLeaderReplicas: readonly number[];
  /** KIP-966's last known ELR: were in the ISR or ELR since it fell below min.insync.replicas, in neither now. */
  readonly lastKnownElr: readonly number[];
  readonly logStartOffset: number;
  readonly highWatermark: number;
  readonly leaderEpoch: number;
}

/** A described topic. */
export interface TopicDescription {
  readonly name: string;
  readonly internal: boolean;
  /** Effective config, defaults included (empty when described with `includeConfigs: false`). */
  readonly configs: Readonly<Record<string, string>>;
  readonly partitions: readonly PartitionDescription[];
}

/** A thing that has configuration: a topic, or a broker (name = node id, "" = cluster default). */
export interface ConfigResourceRef {
  readonly type: "topic" | "broker";
  readonly name: string;
}

/** Where a configuration value comes from. */
export type ConfigSourceName = "default" | "static-broker" | "dynamic-default-broker" | "dynamic-broker" | "dynamic-topic" | "unknown";

/** One configuration key with its effective value. */
export interface ConfigEntryDescription {
  readonly name: string;
  /** Null when sensitive or without a value. */
  readonly value: string | null;
  readonly source: ConfigSourceName;
  readonly readOnly: boolean;
  readonly sensitive: boolean;
  /** Filled with `includeDocumentation`; "" otherwise. */
  readonly documentation: string;
}

/** The configuration of one resource. */
export interface ResourceConfig {
  readonly resource: ConfigResourceRef;
  readonly entries: readonly ConfigEntryDescription[];
}

/** Changes to one resource's configuration, applied all or none. */
export interface ConfigAlteration {
  readonly resource: ConfigResourceRef;
  /** Keys to set. */
  readonly set?: Readonly<Record<string, string>> | undefined;
  /** Keys whose override to remove (back to the default). */
  readonly delete?: readonly string[] | undefined;
}

/** A node of the cluster. */
export interface BrokerDescription {
  readonly nodeId: number;
  readonly address: string;
  readonly roles: readonly ("broker" | "controller")[];
  readonly fenced: boolean;
  readonly rack: string;
  /** Cordoned (issue 21, `Admin.alterBrokerCordons`): given no new replicas. */
  readonly cordoned: boolean;
}

/** A voter of the controller quorum. */
export interface VoterDescription {
  readonly nodeId: number;
  /** The voter's gRPC address, "host:port". */
  readonly address: string;
}

/** What the node that answered DescribeCluster says about itself (each node answers for itself). */
export interface NodeStateDescription {
  readonly nodeId: number;
  readonly roles: readonly ("broker" | "controller")[];
  /** Offset of the last metadata record the node applied; -1 before the first. */
  readonly metadataOffset: number;
  /** "leader", "follower", "candidate", "precandidate", or "observer" (not a voter). */
  readonly raftRole: string;
  /** The node's current Raft term (0 on an observer). */
  readonly raftTerm: number;
  /** Highest metadata offset the node knows committed. */
  readonly commitOffset: number;
  /** "registering", "fenced", "running", "shutting-down", or "" when the node runs no broker. */
  readonly brokerState: string;
  /** The controller voters as this node's metadata log has them (issue 21); empty on a broker-only node. */
  readonly logVoters?: readonly number[];
  /** The node's data-directory id ("" when it does not report one). */
  readonly directoryId?: string;
}

/**
 * The cluster as one node sees it: id, active controller (-1: none), registered nodes, the
 * controller quorum's voters and the answering node's own state (null when the broker does not
 * report it).
 */
export interface ClusterDescription {
  readonly clusterId: string;
  readonly controllerId: number;
  readonly brokers: readonly BrokerDescription[];
  /** The controller quorum, sorted by node id. */
  readonly voters: readonly VoterDescription[];
  /** The answering node's own view of the metadata log. */
  readonly node: NodeStateDescription | null;
}

const sourceNames: Record<ConfigSource, ConfigSourceName> = {
  [ConfigSource.UNSPECIFIED]: "unknown",
  [ConfigSource.DEFAULT]: "default",
  [ConfigSource.STATIC_BROKER]: "static-broker",
  [ConfigSource.DYNAMIC_DEFAULT_BROKER]: "dynamic-default-broker",
  [ConfigSource.DYNAMIC_BROKER]: "dynamic-broker",
  [ConfigSource.DYNAMIC_TOPIC]: "dynamic-topic",
};

function resourceOf(r: ConfigResourceRef): { type: ConfigResourceType; name: string } {
  return { type: r.type === "topic" ? ConfigResourceType.TOPIC : ConfigResourceType.BROKER, name: r.name };
}

function refOf(r: ConfigResource | undefined, fallback: ConfigResourceRef): ConfigResourceRef {
  if (r === undefined) return fallback;
  return { type: r.type === ConfigResourceType.BROKER ? "broker" : "topic", name: r.name };
}

function roleNames(roles: readonly NodeRole[]): ("broker" | "controller")[] {
  return roles.filter((r) => r !== NodeRole.UNSPECIFIED).map((r) => (r === NodeRole.CONTROLLER ? "controller" : "broker"));
}

function describeRef(r: ConfigResourceRef): string {
  return `${r.type} "${r.name}"`;
}

/** Throws the first item error, naming the item (see `fromErrorDetail`). */
function throwFirst(items: readonly { error?: ErrorDetail | undefined }[], name: (i: number) => string): void {
  const i = items.findIndex((t) => t.error !== undefined);
  if (i >= 0) throw fromErrorDetail(items[i]!.error!, name(i));
}

// ---- delete records (issue 15) -----------------------------------------------------------------

/** A row of `Admin.listTransactions`. */
export interface TransactionListing {
  readonly transactionalId: string;
  readonly producerId: number;
  readonly state: string;
  /** How long its open transaction has run (ms); -1 when none is open. */
  readonly durationMs: number;
  readonly coordinatorId: number;
}

/** `Admin.describeTransactions`' answer for one id. */
export interface TransactionDescription {
  readonly transactionalId: string;
  readonly state: string;
  readonly producerId: number;
  readonly producerEpoch: number;
  readonly timeoutMs: number;
  /** When its open transaction started (ms since the epoch); -1 when none is open. */
  readonly startTimeMs: number;
  readonly partitions: readonly { topic: string; partition: number }[];
  readonly groups: readonly string[];
  readonly coordinatorId: number;
}

/** A partition of `Admin.deleteRecords` and the offset below which its records go (-1: the high watermark). */
export interface DeleteRecordsSpec {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
}

/** A partition's log start offset after `Admin.deleteRecords` (Kafka's low watermark). */
export interface DeletedRecords {
  readonly topic: string;
  readonly partition: number;
  readonly lowWatermark: number;
}

// ---- leader election (issue 18) ----------------------------------------------------------------

/** The outcome of `Admin.electLeaders` for one partition. */
export interface ElectedLeader {
  readonly topic: string;
  readonly partition: number;
  /** The partition's leader after the election. */
  readonly leader: number;
  /** Why it was not moved (ELECTION_NOT_NEEDED, PREFERRED_LEADER_NOT_AVAILABLE, ...); null: moved. */
  readonly error: RillError | null;
}

/** An ongoing partition reassignment (issue 21), as `Admin.listPartitionReassignments` answers it. */
export interface PartitionReassignment {
  readonly topic: string;
  readonly partition: number;
  /** The replica set during the move: the target, then the replicas being removed. */
  readonly replicas: readonly number[];
  readonly addingReplicas: readonly number[];
  readonly removingReplicas: readonly number[];
}

// ---- client quotas (issue 13) ------------------------------------------------------------------

/**
 * A client-quota entity: a user and/or a client id. A part that is null is the default entity of
 * its kind (Kafka's `<default>`): it applies to every user (client id) without a quota of its
 * own. A part left out is not in the entity.
 */
export interface QuotaEntity {
  readonly user?: string | null | undefined;
  readonly clientId?: string | null | undefined;
}

/** Quota keys, bytes per second. */
export type QuotaKey = "producer_byte_rate" | "consumer_byte_rate";

/** Changes to one entity's quotas: keys to set (bytes per second) and keys to remove. */
export interface QuotaAlteration {
  readonly entity: QuotaEntity;
  readonly set?: Partial<Record<QuotaKey, number>> | undefined;
  readonly remove?: readonly QuotaKey[] | undefined;
}

/** How `describeClientQuotas` matches one part: a name, the default entity, or any. */
export type QuotaMatch = { readonly name: string } | "default" | "any";

/** The filter of `describeClientQuotas`: unset parts match anything; `strict` excludes entities with other parts. */
export interface QuotaFilter {
  readonly user?: QuotaMatch | undefined;
  readonly clientId?: QuotaMatch | undefined;
  readonly strict?: boolean | undefined;
}

/** One entity's quotas. */
export interface ClientQuota {
  readonly entity: QuotaEntity;
  readonly values: Readonly<Partial<Record<QuotaKey, number>>>;
}

function protoQuotaEntity(e: QuotaEntity): { parts: { type: QuotaEntityType; name?: string }[] } {
  const parts: { type: QuotaEntityType; name?: string }[] = [];
  if (e.user !== undefined) parts.push({ type: QuotaEntityType.USER, ...(e.user !== null ? { name: e.user } : {}) });
  if (e.clientId !== undefined) parts.push({ type: QuotaEntityType.CLIENT_ID, ...(e.clientId !== null ? { name: e.clientId } : {}) });
  return { parts };
}

function quotaEntityOf(e: ProtoQuotaEntity | undefined): QuotaEntity {
  let out: { user?: string | null; clientId?: string | null } = {};
  for (const p of e?.parts ?? []) {
    if (p.type === QuotaEntityType.USER) out = { ...out, user: p.name ?? null };
    else if (p.type === QuotaEntityType.CLIENT_ID) out = { ...out, clientId: p.name ?? null };
  }
  return out;
}

/** The entity as people read it: `user=alice/client-id=<default>`. */
export function quotaEntityName(e: QuotaEntity): string {
  const parts: string[] = [];
  if (e.user !== undefined) parts.push(`user=${e.user ?? "<default>"}`);
  if (e.clientId !== undefined) parts.push(`client-id=${e.clientId ?? "<default>"}`);
  return parts.join("/");
}

function quotaComponent(type: QuotaEntityType, m: QuotaMatch): { entityType: QuotaEntityType; matchType: QuotaMatchType; match: string } {
  if (m === "default") return { entityType: type, matchType: QuotaMatchType.DEFAULT, match: "" };
  if (m === "any") return { entityType: type, matchType: QuotaMatchType.ANY, match: "" };
  return { entityType: type, matchType: QuotaMatchType.EXACT, match: m.name };
}

/** Topic, configuration and cluster administration. */
export class Admin {
  private readonly conn: Connection;
  private closed = false;

  /** Connects lazily: nothing is sent until the first call. */
  constructor(options: ClientOptions = {}) {
    this.conn = connect(options);
  }

  /** Creates topics; rejects with the first topic's error (TOPIC_ALREADY_EXISTS, INVALID_CONFIG, ...). */
  async createTopics(topics: readonly NewTopic[], options: { validateOnly?: boolean } = {}): Promise<CreatedTopic[]> {
    const items = topics.map((t, i) => ({
      name: t.name,
      partitions: t.partitions === undefined ? 0 : checkInt(t.partitions, `topics[${i}].partitions`, 1, 0x7fffffff),
      replicationFactor: t.replicationFactor === undefined ? 0 : checkInt(t.replicationFactor, `topics[${i}].replicationFactor`, 1, 0x7fff),
      configs: { ...t.configs },
    }));
    const validateOnly = options.validateOnly ?? false;
    const res = await this.callItems(
      items,
      async (topics, o) => (await this.conn.transport.createTopics({ topics, validateOnly }, o)).topics,
    );
    throwFirst(res, (i) => `topic "${res[i]!.name}"`);
    return res.map((t) => ({ name: t.name, partitions: t.partitions, replicationFactor: t.replicationFactor }));
  }

  /** Deletes topics and their records; rejects with the first topic's error. */
  async deleteTopics(names: readonly string[]): Promise<void> {
    const res = await this.callItems(names, async (topics, o) => (await this.conn.transport.deleteTopics({ topics }, o)).topics);
    throwFirst(res, (i) => `topic "${res[i]!.name}"`);
  }

  /** Lists topics, sorted by name; internal ones only with `includeInternal`. */
  async listTopics(options: { includeInternal?: boolean } = {}): Promise<TopicListing[]> {
    const res = await this.call((o) => this.conn.transport.listTopics({ includeInternal: options.includeInternal ?? false }, o));
    return res.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions,
      replicationFactor: t.replicationFactor,
      internal: t.internal,
    }));
  }

  /**
   * Describes topics (all non-internal ones when `names` is empty): partitions with leader,
   * replicas, ISR and offsets, and the effective config unless `includeConfigs` is false.
   */
  async describeTopics(names: readonly string[] = [], options: { includeConfigs?: boolean } = {}): Promise<TopicDescription[]> {
    const request = { topics: [...names], excludeConfigs: options.includeConfigs === false };
    const res = await this.call((o) => this.conn.transport.describeTopics(request, o));
    throwFirst(res.topics, (i) => `topic "${res.topics[i]!.name}"`);
    return res.topics.map((t) => ({
      name: t.name,
      internal: t.internal,
      configs: { ...t.configs },
      partitions: t.partitions.map((p) => ({
        partition: p.partition,
        leader: p.leader,
        replicas: p.replicas,
        isr: p.isr,
        eligibleLeaderReplicas: p.eligibleLeaderReplicas,
        lastKnownElr: p.lastKnownElr,
        logStartOffset: toNumber(p.logStartOffset, "logStartOffset"),
        highWatermark: toNumber(p.highWatermark, "highWatermark"),
        leaderEpoch: p.leaderEpoch,
      })),
    }));
  }

  /** Raises topics' partition counts to `count` (the new total). */
  async createPartitions(topics: readonly { name: string; count: number }[], options: { validateOnly?: boolean } = {}): Promise<void> {
    const items = topics.map((t, i) => ({ name: t.name, count: checkInt(t.count, `topics[${i}].count`, 1, 0x7fffffff) }));
    const validateOnly = options.validateOnly ?? false;
    const res = await this.callItems(
      items,
      async (topics, o) => (await this.conn.transport.createPartitions({ topics, validateOnly }, o)).topics,
    );
    throwFirst(res, (i) => `topic "${res[i]!.name}"`);
  }

  /** Reads the effective configuration of resources (only keys in `names`, when given). */
  async describeConfigs(
    resources: readonly ConfigResourceRef[],
    options: { names?: readonly string[]; includeDocumentation?: boolean } = {},
  ): Promise<ResourceConfig[]> {
    const request = {
      resources: resources.map(resourceOf),
      names: [...(options.names ?? [])],
      includeDocumentation: options.includeDocumentation ?? false,
    };
    const res = await this.call((o) => this.conn.transport.describeConfigs(request, o));
    throwFirst(res.results, (i) => describeRef(resources[i] ?? refOf(res.results[i]!.resource, { type: "topic", name: "?" })));
    return res.results.map((r, i) => ({
      resource: refOf(r.resource, resources[i]!),
      entries: r.entries.map((e) => ({
        name: e.name,
        value: e.value ?? null,
        source: sourceNames[e.source] ?? "unknown",
        readOnly: e.readOnly,
        sensitive: e.sensitive,
        documentation: e.documentation,
      })),
    }));
  }

  /** Sets and deletes configuration keys (incrementally); rejects with the first resource's error. */
  async alterConfigs(alterations: readonly ConfigAlteration[], options: { validateOnly?: boolean } = {}): Promise<void> {
    const items = alterations.map((a) => ({
      resource: resourceOf(a.resource),
      operations: [
        ...Object.entries(a.set ?? {}).map(([name, value]) => ({ name, value, operation: ConfigOperation.SET })),
        ...(a.delete ?? []).map((name) => ({ name, operation: ConfigOperation.DELETE })),
      ],
    }));
    const validateOnly = options.validateOnly ?? false;
    const res = await this.callItems(
      items,
      async (resources, o) => (await this.conn.transport.alterConfigs({ resources, validateOnly }, o)).results,
    );
    throwFirst(res, (i) => describeRef(alterations[i]?.resource ?? refOf(res[i]!.resource, { type: "topic", name: "?" })));
  }

  /**
   * The cluster as the bootstrap node sees it: id, active controller, registered nodes, the
   * controller voters, and that node's own state (ask each node for a cluster-wide picture).
   */
  async describeCluster(): Promise<ClusterDescription> {
    const res = await this.call((o) => this.conn.transport.describeCluster({}, o));
    const n = res.node;
    return {
      clusterId: res.clusterId,
      controllerId: res.controllerId,
      brokers: res.brokers.map((b) => ({
        nodeId: b.nodeId,
        address: b.address,
        roles: roleNames(b.roles),
        fenced: b.fenced,
        rack: b.rack,
        cordoned: b.cordoned,
      })),
      voters: res.voters.map((v) => ({ nodeId: v.nodeId, address: v.address })),
      node:
        n === undefined
          ? null
          : {
              nodeId: n.nodeId,
              roles: roleNames(n.roles),
              metadataOffset: toNumber(n.metadataOffset, "metadataOffset"),
              raftRole: n.raftRole,
              raftTerm: toNumber(n.raftTerm, "raftTerm"),
              commitOffset: toNumber(n.commitOffset, "commitOffset"),
              brokerState: n.brokerState,
              logVoters: [...n.logVoters],
              directoryId: n.directoryId,
            },
    };
  }

  // ---- security (issue 13): ACLs and SCRAM users ------------------------------------------------

  /** Creates ACL bindings (one equal to an existing binding is kept once); rejects with the first refused binding's error. */
  async createAcls(bindings: readonly AclBindingInfo[]): Promise<void> {
    const items = bindings.map((b, i) => toProtoBinding(b, `bindings[${i}]`));
    const res = await this.callItems(items, async (creations, o) => (await this.conn.transport.createAcls({ creations }, o)).results);
    throwFirst(res, (i) => `binding ${i}`);
  }

  /** The ACL bindings that match `filter` (default: all), in the order they were created. */
  async describeAcls(filter: AclFilter = {}): Promise<AclBindingInfo[]> {
    const request = { filter: toProtoFilter(filter, "filter") };
    const res = await this.call((o) => this.conn.transport.describeAcls(request, o));
    return res.bindings.map(fromProtoBinding);
  }

  /** Deletes the bindings each filter matches; answers them per filter. Rejects with the first refused filter's error. */
  async deleteAcls(filters: readonly AclFilter[]): Promise<AclBindingInfo[][]> {
    const items = filters.map((f, i) => toProtoFilter(f, `filters[${i}]`));
    const res = await this.callItems(items, async (filters, o) => (await this.conn.transport.deleteAcls({ filters }, o)).results);
    throwFirst(res, (i) => `filter ${i}`);
    return res.map((r) => r.matched.map(fromProtoBinding));
  }

  /**
   * Creates, replaces or deletes users' SCRAM credentials; the broker salts each password and
   * keeps only the credential. Rejects with the first refused user's error (each user's changes
   * are applied together or not at all).
   */
  async alterUserScramCredentials(changes: {
    upsertions?: readonly ScramUpsertion[];
    deletions?: readonly ScramDeletion[];
  }): Promise<void> {
    const request = {
      upsertions: (changes.upsertions ?? []).map((u, i) => ({
        name: u.name,
        mechanism: toProtoMechanism(u.mechanism, `upsertions[${i}].mechanism`),
        iterations: u.iterations === undefined ? 0 : checkInt(u.iterations, `upsertions[${i}].iterations`, 1, 0x7fffffff),
        password: u.password,
      })),
      deletions: (changes.deletions ?? []).map((d, i) => ({
        name: d.name,
        mechanism: toProtoMechanism(d.mechanism, `deletions[${i}].mechanism`),
      })),
    };
    const res = await this.call((o) => this.conn.transport.alterUserScramCredentials(request, o));
    throwFirst(res.results, (i) => `user "${res.results[i]!.user}"`);
  }

  /** Users with their SCRAM mechanisms and iteration counts (all users when `users` is empty). */
  async describeUserScramCredentials(users: readonly string[] = []): Promise<ScramUserInfo[]> {
    const res = await this.call((o) => this.conn.transport.describeUserScramCredentials({ users: [...users] }, o));
    throwFirst(res.results, (i) => `user "${res.results[i]!.user}"`);
    return res.results.map((r) => ({
      user: r.user,
      credentials: r.credentials.map((c) => ({ mechanism: fromProtoMechanism(c.mechanism), iterations: c.iterations })),
    }));
  }

  /**
   * Sets and removes client quotas (bytes per second); each entity's changes are stored all or
   * none. Rejects with the first entity's error (INVALID_REQUEST naming the field).
   */
  async alterClientQuotas(alterations: readonly QuotaAlteration[], options: { validateOnly?: boolean } = {}): Promise<void> {
    const request = {
      entries: alterations.map((a) => ({
        entity: protoQuotaEntity(a.entity),
        ops: [
          ...Object.entries(a.set ?? {}).map(([key, value]) => ({ key, value: value ?? 0, remove: false })),
          ...(a.remove ?? []).map((key) => ({ key, value: 0, remove: true })),
        ],
      })),
      validateOnly: options.validateOnly ?? false,
    };
    // Not resent item by item (callItems): the broker names a refused entry by its index.
    const res = await this.call((o) => this.conn.transport.alterClientQuotas(request, o));
    throwFirst(res.results, (i) => `quota entity "${quotaEntityName(alterations[i]?.entity ?? {})}"`);
  }

  /** The client quotas of the entities `filter` matches (default: every entity). */
  async describeClientQuotas(filter: QuotaFilter = {}): Promise<ClientQuota[]> {
    const components = [
      ...(filter.user !== undefined ? [quotaComponent(QuotaEntityType.USER, filter.user)] : []),
      ...(filter.clientId !== undefined ? [quotaComponent(QuotaEntityType.CLIENT_ID, filter.clientId)] : []),
    ];
    const res = await this.call((o) => this.conn.transport.describeClientQuotas({ components, strict: filter.strict ?? false }, o));
    return res.entries.map((e) => ({ entity: quotaEntityOf(e.entity), values: { ...e.values } as Partial<Record<QuotaKey, number>> }));
  }

  /** Looks offsets up: earliest, latest, or the first at or after a timestamp (-1: none that recent). */
  listOffsets(lookups: readonly OffsetLookup[]): Promise<ListedOffset[]> {
    this.checkOpen();
    return listOffsets(this.conn, lookups);
  }

  /**
   * Deletes the records of partitions below `offset` (-1: every committed record), as Kafka's
   * deleteRecords: each partition's leader raises its log start offset. Answers each partition's
   * log start offset afterwards (its low watermark), in order; rejects with the first
   * partition's error (OFFSET_OUT_OF_RANGE past the high watermark, UNKNOWN_TOPIC_OR_PARTITION,
   * POLICY_VIOLATION on a compact-only topic, ...), the others being done.
   */
  async deleteRecords(partitions: readonly DeleteRecordsSpec[]): Promise<DeletedRecords[]> {
    const request = {
      partitions: partitions.map((p, i) => ({
        topic: p.topic,
        partition: checkInt(p.partition, `partitions[${i}].partition`, 0, 0x7fffffff),
        offset: BigInt(checkInt(p.offset, `partitions[${i}].offset`, -1, Number.MAX_SAFE_INTEGER)),
      })),
    };
    const res = await this.call((o) => this.conn.transport.deleteRecords(request, o));
    throwFirst(res.results, (i) => `${res.results[i]!.topic}-${res.results[i]!.partition}`);
    return res.results.map((r) => ({ topic: r.topic, partition: r.partition, lowWatermark: toNumber(r.lowWatermark, "lowWatermark") }));
  }

  /**
   * Moves leadership of partitions back to their preferred replica (the first of the replicas),
   * as Kafka's preferred leader election: `partitions` names topics with their partitions (an
   * empty list: every partition of the topic); none: every partition of the cluster. Answers
   * each partition's outcome; a partition that was not moved carries its reason in `error`.
   */
  async electLeaders(partitions: readonly { topic: string; partitions?: readonly number[] }[] = []): Promise<ElectedLeader[]> {
    const request = {
      partitions: partitions.map((p, i) => ({
        topic: p.topic,
        partitions: (p.partitions ?? []).map((n, j) => checkInt(n, `partitions[${i}].partitions[${j}]`, 0, 0x7fffffff)),
      })),
    };
    const res = await this.call((o) => this.conn.transport.electLeaders(request, o));
    return res.results.map((r) => ({
      topic: r.topic,
      partition: r.partition,
      leader: r.leader,
      error: r.error === undefined ? null : fromErrorDetail(r.error, `${r.topic}-${r.partition}`),
    }));
  }

  // transactions (issue 17)

  /** The transactions the cluster's coordinators know (filters as Kafka's ListTransactions; none: all). */
  async listTransactions(
    filter: { states?: readonly string[]; producerIds?: readonly number[]; durationFilterMs?: number } = {},
  ): Promise<TransactionListing[]> {
    const request = {
      states: [...(filter.states ?? [])],
      producerIds: (filter.producerIds ?? []).map((x) => BigInt(x)),
      durationFilterMs: BigInt(checkInt(filter.durationFilterMs ?? 0, "durationFilterMs", 0, Number.MAX_SAFE_INTEGER)),
    };
    const res = await this.call((o) => this.conn.transport.listTransactions(request, o));
    return res.transactions.map((t) => ({
      transactionalId: t.transactionalId,
      producerId: toNumber(t.producerId, "producerId"),
      state: t.state,
      durationMs: toNumber(t.durationMs, "durationMs"),
      coordinatorId: t.coordinatorId,
    }));
  }

  /** Describes transactional ids (an unknown id throws TRANSACTIONAL_ID_NOT_FOUND). */
  async describeTransactions(transactionalIds: readonly string[]): Promise<TransactionDescription[]> {
    const res = await this.call((o) => this.conn.transport.describeTransactions({ transactionalIds: [...transactionalIds] }, o));
    return res.transactions.map((t) => {
      if (t.error !== undefined) throw fromErrorDetail(t.error, `transactional id "${t.transactionalId}"`);
      return {
        transactionalId: t.transactionalId,
        state: t.state,
        producerId: toNumber(t.producerId, "producerId"),
        producerEpoch: t.producerEpoch,
        timeoutMs: t.timeoutMs,
        startTimeMs: toNumber(t.startTimeMs, "startTimeMs"),
        partitions: t.partitions.map((p) => ({ topic: p.topic, partition: p.partition })),
        groups: [...t.groups],
        coordinatorId: t.coordinatorId,
      };
    });
  }

  /**
   * Aborts a transaction: a transactional id's open one, or a hanging one in one partition
   * (`{topic, partition, producerId, producerEpoch, coordinatorEpoch}`, as kafka-transactions.sh abort).
   */
  async abortTransaction(
    target:
      | { transactionalId: string }
      | { topic: string; partition: number; producerId: number; producerEpoch: number; coordinatorEpoch: number },
  ): Promise<void> {
    const request =
      "transactionalId" in target
        ? { transactionalId: target.transactionalId }
        : {
            partition: {
              topic: target.topic,
              partition: target.partition,
              producerId: BigInt(target.producerId),
              producerEpoch: target.producerEpoch,
              coordinatorEpoch: target.coordinatorEpoch,
            },
          };
    await this.call((o) => this.conn.transport.abortTransaction(request, o));
  }

  // dynamic controller quorum (issue 21)

  /**
   * Adds node `nodeId` as a controller voter (it must run the controller role and follow the
   * metadata log); `directoryId` ("" or absent: whichever the node announces) must match its
   * data directory's. Resolves with the voters once the change committed.
   */
  async addController(nodeId: number, directoryId = ""): Promise<Array<{ nodeId: number; directoryId: string }>> {
    const res = await this.call((o) =>
      this.conn.transport.addRaftVoter({ nodeId: checkInt(nodeId, "nodeId", 1, 0x7fffffff), directoryId }, o),
    );
    return res.voters.map((v) => ({ nodeId: v.nodeId, directoryId: v.directoryId }));
  }

  /** Removes controller voter `nodeId` (never the last). Resolves with the voters once the change committed. */
  async removeController(nodeId: number): Promise<Array<{ nodeId: number; directoryId: string }>> {
    const res = await this.call((o) => this.conn.transport.removeRaftVoter({ nodeId: checkInt(nodeId, "nodeId", 1, 0x7fffffff) }, o));
    return res.voters.map((v) => ({ nodeId: v.nodeId, directoryId: v.directoryId }));
  }

  // partition reassignment (issue 21)

  /**
   * Moves partitions to new replica lists, or cancels their move (`replicas: null`), as Kafka's
   * alterPartitionReassignments (KIP-455): the new replicas catch up first, then the replica set
   * switches. One result per partition, in order, `error` null when its move started (or, when
   * the target is already in sync, completed).
   */
  async alterPartitionReassignments(
    partitions: readonly { topic: string; partition: number; replicas: readonly number[] | null }[],
  ): Promise<Array<{ topic: string; partition: number; error: RillError | null }>> {
    const request = {
      partitions: partitions.map((p, i) => ({
        topic: p.topic,
        partition: checkInt(p.partition, `partitions[${i}].partition`, 0, 0x7fffffff),
        replicas: (p.replicas ?? []).map((r, j) => checkInt(r, `partitions[${i}].replicas[${j}]`, 0, 0x7fffffff)),
        cancel: p.replicas === null,
      })),
    };
    const res = await this.call((o) => this.conn.transport.alterPartitionReassignments(request, o));
    return res.results.map((r) => ({
      topic: r.topic,
      partition: r.partition,
      error: r.error === undefined ? null : fromErrorDetail(r.error, `${r.topic}-${r.partition}`),
    }));
  }

  /** The ongoing reassignments (of `partitions`, as in electLeaders; none: all), by topic and partition. */
  async listPartitionReassignments(
    partitions: readonly { topic: string; partitions?: readonly number[] }[] = [],
  ): Promise<PartitionReassignment[]> {
    const request = {
      partitions: partitions.map((p, i) => ({
        topic: p.topic,
        partitions: (p.partitions ?? []).map((n, j) => checkInt(n, `partitions[${i}].partitions[${j}]`, 0, 0x7fffffff)),
      })),
    };
    const res = await this.call((o) => this.conn.transport.listPartitionReassignments(request, o));
    return res.reassignments.map((r) => ({
      topic: r.topic,
      partition: r.partition,
      replicas: [...r.replicas],
      addingReplicas: [...r.addingReplicas],
      removingReplicas: [...r.removingReplicas],
    }));
  }

  // cordoned brokers (issue 21)

  /**
   * Cordons brokers (`cordoned` true: the controller places no new replica on them, their
   * replicas and leadership stay; a reassignment may still name them) or uncordons them. One
   * result per broker, in order, `error` null when it is now as asked (BROKER_ID_NOT_REGISTERED
   * for a node that never registered).
   */
  async alterBrokerCordons(brokerIds: readonly number[], cordoned: boolean): Promise<Array<{ brokerId: number; error: RillError | null }>> {
    const request = { brokerIds: brokerIds.map((b, i) => checkInt(b, `brokerIds[${i}]`, 0, 0x7fffffff)), cordoned };
    const res = await this.call((o) => this.conn.transport.alterBrokerCordons(request, o));
    return res.results.map((r) => ({
      brokerId: r.brokerId,
      error: r.error === undefined ? null : fromErrorDetail(r.error),
    }));
  }

  /** Closes the connection (when this Admin opened it). Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.conn.owned) this.conn.transport.close();
  }

  private checkOpen(): void {
    if (this.closed) throw new ClientClosedError("admin");
  }

  private call<T>(f: (options: { timeoutMs: number }) => Promise<T>): Promise<T> {
    this.checkOpen();
    const { retry, random, requestTimeoutMs } = this.conn;
    return withRetries(() => f({ timeoutMs: requestTimeoutMs }), retry, { random });
  }

  /**
   * A metadata change over several items, answered one result per item in the order sent. The
   * items answered NOT_CONTROLLER (the controller moved while the request ran, so it did not take
   * them) are sent again on their own, by the retry policy, as Kafka's AdminClient does; the
   * others keep their first answer. Once the retries are spent the last NOT_CONTROLLER stays.
   */
  private async callItems<I, R extends { error?: ErrorDetail | undefined }>(
    items: readonly I[],
    send: (items: I[], options: { timeoutMs: number }) => Promise<readonly R[]>,
  ): Promise<R[]> {
    const results: (R | undefined)[] = items.map(() => undefined);
    let pending = items.map((_, i) => i);
    // Thrown to the retry loop (NOT_CONTROLLER is retriable); caught below once the retries are spent.
    const again = new RillError(Errors.NOT_CONTROLLER, "some items were answered NOT_CONTROLLER");
    try {
      await this.call(async (o) => {
        const answers = await send(
          pending.map((i) => items[i]!),
          o,
        );
        if (answers.length !== pending.length) {
          throw new Error(`the broker answered ${answers.length} results for ${pending.length} items`);
        }
        const moved: number[] = [];
        for (const [k, r] of answers.entries()) {
          results[pending[k]!] = r;
          if (r.error?.code === Errors.NOT_CONTROLLER.code) moved.push(pending[k]!);
        }
        pending = moved;
        if (pending.length > 0) throw again;
      });
    } catch (e) {
      if (e !== again) throw e;
    }
    return results as R[];
  }
}
