/**
 * The admin service: what each AdminService request means, once, for every protocol.
 *
 * The life of an admin request: an adapter (the gRPC AdminService in src/rpc/admin-service.ts;
 * later the Kafka listener and the HTTP console) decodes its message into the domain input of
 * src/service/admin-types.ts and calls one method of `AdminHandlers`, giving it a
 * `ControllerPort` for that request (src/service/admin-ports.ts).
 *
 * - A request that changes metadata (CreateTopics, DeleteTopics, CreatePartitions,
 *   AlterConfigs, ElectLeaders) runs on the active controller. On any other node it is passed
 *   there through the port, unless another node already passed it here (a forwarded request is
 *   never forwarded again); the answer is the controller's, once this node has applied the
 *   change. On the controller the request is checked, each item is decided by the controller's
 *   pure decisions (src/metadata/controller.ts) and committed through the MetadataStore, and the
 *   port is told the change ran here (`committedHere`).
 * - Each topic or resource of a request succeeds or fails on its own: its failure is a RillError
 *   in its result, and nothing of it is stored. `validateOnly` runs the decisions on the current
 *   image and stores nothing. A malformed request as a whole (no topics, a negative timeout, an
 *   unknown topic in ElectLeaders) throws a RillError, which the adapter answers as a failed call.
 * - Reads (ListTopics, DescribeTopics, DescribeConfigs, DescribeCluster) answer from this node's
 *   metadata image. DescribeTopics asks each partition's leader for its offsets (through
 *   `LeaderOffsets`), because this node's own replica lags it or is absent; a leader that cannot
 *   be reached leaves this node's own view in the answer.
 *
 * Messages name the field at fault the way the gRPC contract spells it (`topics`,
 * `resources[2].operations[0].operation`), so every protocol answers the same words.
 * An AssertionError (a bug) is never turned into an answer: it is thrown on.
 *
 * This module imports base, config, metadata and replication only, never a transport.
 */
import { AssertionError } from "../base/assert.ts";
import { RillError, rillError } from "../base/errors.ts";
import { describeTopicConfig } from "../config/schema.ts";
import {
  decideAlterConfigs,
  decideCreatePartitions,
  decideCreateTopic,
  decideDeleteTopic,
  decidePreferredLeaderElection,
  effectiveConfig,
  type ElectionResult,
  type PartitionRef,
} from "../metadata/controller.ts";
import type { MetadataImage, PartitionState } from "../metadata/image.ts";
import type { MetadataRecord } from "../metadata/records.ts";
import {
  brokerConfigEntries,
  checkOwnBroker,
  configChanges,
  pickEntries,
  topicConfigEntries,
  unknownResourceType,
} from "./admin-configs.ts";
import type { AdminServiceDeps, ControllerPort, PartitionOffsets, RequestOrigin } from "./admin-ports.ts";
import { awaitsHw } from "./fetch.ts";
import type {
  AdminChange,
  AdminChanges,
  AlterConfigsInput,
  AlterConfigsResult,
  AlteredResource,
  ConfigEntry,
  ConfigResource,
  CreatedTopic,
  CreatePartitionsInput,
  CreatePartitionsResult,
  CreateTopicsInput,
  CreateTopicsResult,
  DeleteTopicsInput,
  DeleteTopicsResult,
  DescribeClusterResult,
  DescribeConfigsInput,
  DescribeConfigsResult,
  DescribeTopicsInput,
  DescribeTopicsResult,
  ElectLeadersInput,
  ElectLeadersResult,
  ListTopicsInput,
  ListTopicsResult,
  NewTopicSpec,
  NodeRole,
  PartitionDescription,
  ResourceAlteration,
  ResourceConfigs,
  TopicDescription,
  TopicPartitions,
} from "./admin-types.ts";

/** Topics whose names start with "__" are Rill's own. */
export function isInternalTopic(name: string): boolean {
  return name.startsWith("__");
}

/** The role names of the metadata image as domain roles. */
export function nodeRole(role: string): NodeRole {
  return role === "controller" ? "controller" : "broker";
}

/** `{ error }` when there is one, else `{}` (errors are left out of successful results). */
function withError(error: RillError | undefined): { error?: RillError } {
  return error ? { error } : {};
}

/** Throws INVALID_REQUEST unless `timeoutMs` is zero or more. */
function checkTimeout(timeoutMs: number): void {
  if (timeoutMs < 0) throw rillError("INVALID_REQUEST", `timeout_ms: ${timeoutMs} is negative`);
}

/** Throws INVALID_REQUEST naming `field` when `items` is empty. */
function requireSome(items: readonly unknown[], field: string, what: string): void {
  if (items.length === 0) throw rillError("INVALID_REQUEST", `${field}: at least one ${what} is required`);
}

const partitionKey = (topic: string, partition: number): string => `${topic}\0${partition}`;

/** The protocol-neutral AdminService: one method per request, on domain types. */
export class AdminHandlers {
  constructor(private readonly d: AdminServiceDeps) {}

  /** CreateTopics: each topic is created (or, with `validateOnly`, checked) on its own. */
  createTopics(input: CreateTopicsInput, controller: ControllerPort): Promise<CreateTopicsResult> {
    return this.change("createTopics", input, controller, async () => {
      checkTimeout(input.timeoutMs);
      requireSome(input.topics, "topics", "topic");
      const seen = new Set<string>();
      const topics: CreatedTopic[] = [];
      for (const t of input.topics) {
        const error = seen.has(t.name)
          ? rillError("INVALID_REQUEST", `topics: "${t.name}" is named twice`)
          : await this.attempt(input.validateOnly, (img) => this.decideNewTopic(img, t));
        seen.add(t.name);
        topics.push(this.createdTopic(t, error));
      }
      return { topics };
    });
  }

  /** DeleteTopics: each topic is deleted on its own; internal topics never are. */
  deleteTopics(input: DeleteTopicsInput, controller: ControllerPort): Promise<DeleteTopicsResult> {
    return this.change("deleteTopics", input, controller, async () => {
      checkTimeout(input.timeoutMs);
      requireSome(input.topics, "topics", "topic");
      const topics = [];
      for (const name of input.topics) {
        const error = isInternalTopic(name)
          ? rillError("INVALID_TOPIC", `topics: internal topic "${name}" cannot be deleted`)
          : await this.attempt(false, (img) => decideDeleteTopic(img, name));
        topics.push({ name, ...withError(error) });
      }
      return { topics };
    });
  }

  /** ListTopics: every topic (internal ones only when asked), sorted by name. */
  listTopics(input: ListTopicsInput): ListTopicsResult {
    const img = this.d.store.image;
    const names = img.topicNames().filter((n) => input.includeInternal || !isInternalTopic(n));
    return {
      topics: names.map((name) => {
        const t = img.topics.get(name)!;
        return {
          name,
          partitions: t.partitions.length,
          replicationFactor: t.partitions[0]?.replicas.length ?? 0,
          internal: isInternalTopic(name),
        };
      }),
    };
  }

  /**
   * DescribeTopics: configs and, per partition, leader, replicas, ISR, leader epoch and offsets.
   * Offsets of partitions led elsewhere come from their leaders, unless the request was itself
   * forwarded here by another broker.
   */
  async describeTopics(input: DescribeTopicsInput, origin: RequestOrigin): Promise<DescribeTopicsResult> {
    const names = input.topics.length > 0 ? input.topics : this.d.store.image.topicNames().filter((n) => !isInternalTopic(n));
    const fromLeaders = origin.forwarded ? new Map<string, PartitionOffsets>() : await this.offsetsFromLeaders(names);
    return { topics: names.map((name) => this.describeTopic(name, input.excludeConfigs, fromLeaders)) };
  }

  /** CreatePartitions: each topic grows (or, with `validateOnly`, is checked) on its own. */
  createPartitions(input: CreatePartitionsInput, controller: ControllerPort): Promise<CreatePartitionsResult> {
    return this.change("createPartitions", input, controller, async () => {
      checkTimeout(input.timeoutMs);
      const topics = [];
      for (const t of input.topics) {
        const error = await this.attempt(input.validateOnly, (img) =>
          decideCreatePartitions(img, t.name, t.count, this.brokers(), this.d.random, this.d.partitionLimits?.()),
        );
        topics.push({ name: t.name, ...withError(error) });
      }
      return { topics };
    });
  }

  /** DescribeConfigs: the effective configuration of topics, or of this broker. */
  describeConfigs(input: DescribeConfigsInput): DescribeConfigsResult {
    requireSome(input.resources, "resources", "resource");
    const want = new Set(input.names);
    return {
      results: input.resources.map((resource, i): ResourceConfigs => {
        try {
          return { resource, entries: pickEntries(this.configEntries(resource, i, input.includeDocumentation), want) };
        } catch (e) {
          return { resource, entries: [], error: RillError.from(e) };
        }
      }),
    };
  }

  /** AlterConfigs: each topic's changes are applied all together, or not at all. */
  alterConfigs(input: AlterConfigsInput, controller: ControllerPort): Promise<AlterConfigsResult> {
    return this.change("alterConfigs", input, controller, async () => {
      requireSome(input.resources, "resources", "resource");
      const results: AlteredResource[] = [];
      for (const [i, r] of input.resources.entries()) {
        const error = await this.alterResource(r, i, input.validateOnly);
        results.push({ ...(r.resource ? { resource: r.resource } : {}), ...withError(error) });
      }
      return { results };
    });
  }

  /** ElectLeaders: moves leadership back to each partition's preferred replica where it can. */
  electLeaders(input: ElectLeadersInput, controller: ControllerPort): Promise<ElectLeadersResult> {
    return this.change("electLeaders", input, controller, async () => {
      const named = input.partitions.length > 0 ? this.namedPartitions(input.partitions) : undefined;
      let results: readonly ElectionResult[] = [];
      await this.d.store.commit((img) => {
        const election = decidePreferredLeaderElection(img, named);
        results = election.results;
        return election.records;
      });
      const img = this.d.store.image;
      return {
        results: results.map((r) => ({
          topic: r.topic,
          partition: r.partition,
          leader: img.topics.get(r.topic)?.partitions[r.partition]?.leader ?? -1,
          ...withError(r.error ?? undefined),
        })),
      };
    });
  }

  /** DescribeCluster: the cluster as this node's image has it, and this node's own state. */
  describeCluster(): DescribeClusterResult {
    const img = this.d.store.image;
    const n = this.d.nodeState();
    return {
      clusterId: this.d.clusterId,
      controllerId: this.d.controllerId(),
      brokers: [...img.brokers.values()]
        .sort((a, b) => a.nodeId - b.nodeId)
        .map((b) => ({
          nodeId: b.nodeId,
          address: b.address,
          roles: b.roles.map(nodeRole),
          fenced: b.fenced,
          rack: b.rack ?? "",
          cordoned: img.cordoned.has(b.nodeId), // issue 21
        })),
      voters: this.d.voters.map((v) => ({ nodeId: v.id, address: v.address })).sort((a, b) => a.nodeId - b.nodeId),
      node: {
        nodeId: this.d.config.nodeId,
        roles: n.roles.map(nodeRole),
        metadataOffset: img.offset,
        raftRole: n.raftRole,
        raftTerm: n.raftTerm,
        commitOffset: n.commitOffset,
        brokerState: n.brokerState,
      },
    };
  }

  // ---- changes -------------------------------------------------------------------------------

  /**
   * Runs a metadata change here when this node is the active controller (or the request was
   * forwarded here), else passes it to the active controller and answers what it answered.
   */
  private async change<K extends AdminChange>(
    change: K,
    input: AdminChanges[K]["input"],
    controller: ControllerPort,
    run: () => Promise<AdminChanges[K]["result"]>,
  ): Promise<AdminChanges[K]["result"]> {
    if (!controller.isActive() && !controller.forwarded) return controller.forward(change, input);
    const result = await run();
    controller.committedHere();
    return result;
  }

  /** Runs `decide` on the current image (validation only) or commits it; the error, if any. */
  private async attempt(validateOnly: boolean, decide: (img: MetadataImage) => MetadataRecord[]): Promise<RillError | undefined> {
    try {
      if (validateOnly) decide(this.d.store.image);
      else await this.d.store.commit(decide);
      return undefined;
    } catch (e) {
      return RillError.from(e);
    }
  }

  /** The brokers that may hold new replicas: the unfenced ones. */
  private brokers(): number[] {
    return this.d.store.image.unfencedBrokers();
  }

  private decideNewTopic(img: MetadataImage, t: NewTopicSpec): MetadataRecord[] {
    return decideCreateTopic(
      img,
      { name: t.name, partitions: t.partitions, replicationFactor: t.replicationFactor, configs: t.configs },
      { partitions: this.d.config.numPartitions, brokers: this.brokers(), random: this.d.random, limits: this.d.partitionLimits?.() },
    );
  }

  /** The result for topic `t`: its partition count and replication factor as created (or requested, defaults applied). */
  private createdTopic(t: NewTopicSpec, error: RillError | undefined): CreatedTopic {
    if (error) return { name: t.name, error, partitions: 0, replicationFactor: 0 };
    const created = this.d.store.image.topics.get(t.name);
    return {
      name: t.name,
      partitions: created?.partitions.length ?? (t.partitions || this.d.config.numPartitions),
      replicationFactor: created?.partitions[0]?.replicas.length ?? (t.replicationFactor || 1),
    };
  }

  /** The error that stops the changes to resource `index`, or undefined once they are applied (or valid). */
  private async alterResource(r: ResourceAlteration, index: number, validateOnly: boolean): Promise<RillError | undefined> {
    const resource = r.resource;
    if (resource?.type !== "topic") {
      return rillError("INVALID_REQUEST", `resources[${index}].resource: only topic configs can be altered (broker configs are static)`);
    }
    const changes = configChanges(r.operations, index);
    if (changes instanceof RillError) return changes;
    return this.attempt(validateOnly, (img) => decideAlterConfigs(img, resource.name, changes.set, changes.remove));
  }

  /** The partitions ElectLeaders names; an unknown topic fails the whole request. */
  private namedPartitions(list: readonly TopicPartitions[]): PartitionRef[] {
    const named: PartitionRef[] = [];
    for (const [i, tp] of list.entries()) {
      const t = this.d.store.image.topics.get(tp.topic);
      if (!t) throw rillError("UNKNOWN_TOPIC_OR_PARTITION", `partitions[${i}].topic: topic "${tp.topic}" does not exist`);
      const partitions = tp.partitions.length > 0 ? tp.partitions : t.partitions.map((_, p) => p);
      for (const partition of partitions) named.push({ topic: tp.topic, partition });
    }
    return named;
  }

  // ---- reads ---------------------------------------------------------------------------------

  /** The entries of one resource, or a thrown RillError for that resource. */
  private configEntries(resource: ConfigResource, index: number, includeDocumentation: boolean): ConfigEntry[] {
    if (resource.type === "topic")
      return topicConfigEntries(this.d.rm.topic(resource.name, `resources[${index}].name`), includeDocumentation);
    if (resource.type === "broker") {
      checkOwnBroker(resource, index, this.d.config.nodeId);
      return brokerConfigEntries(this.d.config, includeDocumentation);
    }
    throw unknownResourceType(resource, index);
  }

  /** Partitions of `names` led by another broker, grouped by leader. */
  private remotelyLed(names: readonly string[]): Map<number, PartitionRef[]> {
    const byLeader = new Map<number, PartitionRef[]>();
    for (const name of names) {
      for (const p of this.d.store.image.topics.get(name)?.partitions ?? []) {
        if (p.leader < 0 || p.leader === this.d.config.nodeId) continue;
        let list = byLeader.get(p.leader);
        if (!list) byLeader.set(p.leader, (list = []));
        list.push({ topic: name, partition: p.partition });
      }
    }
    return byLeader;
  }

  /** Offsets of the partitions of `names` led elsewhere, as their leaders answer them (one request per leader). */
  private async offsetsFromLeaders(names: readonly string[]): Promise<Map<string, PartitionOffsets>> {
    const out = new Map<string, PartitionOffsets>();
    const ask = async (leader: number, parts: readonly PartitionRef[]): Promise<void> => {
      try {
        const answers = await this.d.leaderOffsets(leader, parts);
        parts.forEach((tp, i) => {
          const a = answers[i];
          if (a) out.set(partitionKey(tp.topic, tp.partition), a);
        });
      } catch (e) {
        if (e instanceof AssertionError) throw e;
        // the leader is unreachable: this broker's own view is answered instead
      }
    };
    await Promise.all([...this.remotelyLed(names)].map(([leader, parts]) => ask(leader, parts)));
    return out;
  }

  private describeTopic(name: string, excludeConfigs: boolean, fromLeaders: ReadonlyMap<string, PartitionOffsets>): TopicDescription {
    const t = this.d.store.image.topics.get(name);
    if (!t) {
      const error = rillError("UNKNOWN_TOPIC_OR_PARTITION", `topics: topic "${name}" does not exist`);
      return { name, error, internal: false, configs: {}, partitions: [] };
    }
    return {
      name,
      internal: isInternalTopic(name),
      configs: excludeConfigs ? {} : describeTopicConfig(effectiveConfig(t.configs)),
      partitions: t.partitions.map((p) => this.describePartition(name, p, fromLeaders.get(partitionKey(name, p.partition)))),
    };
  }

  /** One partition, with the leader's offsets when it answered, else this broker's own. */
  private describePartition(topic: string, p: PartitionState, lead: PartitionOffsets | undefined): PartitionDescription {
    const own = lead ?? this.ownOffsets(topic, p.partition);
    return {
      partition: p.partition,
      leader: p.leader,
      replicas: [...p.replicas],
      isr: [...p.isr],
      eligibleLeaderReplicas: [...(p.elr ?? [])],
      lastKnownElr: [...(p.lastKnownElr ?? [])],
      leaderEpoch: p.leaderEpoch,
      logStartOffset: own.logStartOffset,
      highWatermark: own.highWatermark,
    };
  }

  /** This broker's own view of a partition's offsets (0 where it holds no replica). */
  private ownOffsets(topic: string, partition: number): PartitionOffsets {
    const log = this.d.rm.readPartition({ topic, partition, offset: 0, maxBytes: 0 });
    // A tool's view: a new leader's high watermark as it stands, even before consumers are told it (issue 17).
    const hw = awaitsHw(log) ? (this.d.rm.replica(topic, partition)?.hw ?? 0) : log.highWatermark;
    return { logStartOffset: Math.max(log.logStartOffset, 0), highWatermark: Math.max(hw, 0) };
  }
}
