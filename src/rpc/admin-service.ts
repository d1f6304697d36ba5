/**
 * AdminService: topics, partitions, configs and the cluster view. Every change goes through the
 * controller's decisions (src/metadata/controller.ts) and the MetadataStore, so a request either
 * becomes durable metadata records or changes nothing. Per-topic failures are answered in that
 * topic's result; `validate_only` runs the decisions and writes nothing.
 */
import { create } from "@bufbuild/protobuf";
import { rillError } from "../base/errors.ts";
import type { Random } from "../base/random.ts";
import { brokerKeys, describeTopicConfig, topicKeys, type BrokerConfig } from "../config/schema.ts";
import { NodeRole, OffsetSpec } from "../gen/rill/v1/common_pb.ts";
import {
  AdminService,
  ConfigOperation,
  ConfigResourceType,
  ConfigSource,
  CreatePartitionsResponseSchema,
  CreateTopicsResponseSchema,
  DeleteTopicsResponseSchema,
  DescribeClusterResponseSchema,
  ElectLeadersResponseSchema,
  type ElectLeadersRequest,
  DescribeConfigsResponseSchema,
  DescribeTopicsResponseSchema,
  ListTopicsResponseSchema,
  AlterConfigsResponseSchema,
  type AlterConfigsRequest,
  type CreatePartitionsRequest,
  type CreateTopicsRequest,
  type DeleteTopicsRequest,
  type DescribeConfigsRequest,
  type DescribeTopicsRequest,
  type ListTopicsRequest,
} from "../gen/rill/v1/admin_service_pb.ts";
import {
  decideAlterConfigs,
  decideCreatePartitions,
  decideCreateTopic,
  decideDeleteTopic,
  decidePreferredLeaderElection,
  effectiveConfig,
} from "../metadata/controller.ts";
import type { MetadataImage } from "../metadata/image.ts";
import type { MetadataRecord } from "../metadata/records.ts";
import type { MetadataStore } from "../metadata/store.ts";
import type { ReplicaManager } from "../replication/replica-manager.ts";
import { toErrorDetail, unary } from "./errors.ts";
import { Forwarder, LeaderClients, isForwarded, type ControllerRoute } from "./forward.ts";
import { FetchService, ListOffsetsRequestSchema, type ListOffsetsResponse } from "../gen/rill/v1/fetch_service_pb.ts";
import type { MethodName } from "./grpc-service.ts";
import type * as grpc from "@grpc/grpc-js";
import type { QuorumVoter } from "../config/schema.ts";
import type { ServiceImplementation } from "./grpc-service.ts";

/** What the admin service needs from the broker. */
export interface AdminDeps {
  readonly rm: ReplicaManager;
  readonly store: MetadataStore;
  readonly random: Random;
  readonly config: Readonly<BrokerConfig>;
  readonly clusterId: string;
  /** The address clients reach this node at. */
  readonly address: () => string;
  /** Where metadata changes are committed (this node, or forwarded to the active controller). */
  readonly route: ControllerRoute;
  /** The active controller's node id, -1 while none is elected. */
  readonly controllerId: () => number;
  /** The controller quorum. */
  readonly voters: readonly QuorumVoter[];
  /** This node's own view, for DescribeCluster. */
  readonly nodeState: () => { roles: string[]; raftRole: string; raftTerm: number; commitOffset: number; brokerState: string };
}

/** Topics whose names start with "__" are Rill's own. */
function isInternal(name: string): boolean {
  return name.startsWith("__");
}

/** Runs `decide` (validation only, or durably) and answers null or the error as ErrorDetail. */
async function attempt(store: MetadataStore, validateOnly: boolean, decide: (img: MetadataImage) => MetadataRecord[]) {
  try {
    if (validateOnly) decide(store.image);
    else await store.commit(decide);
    return undefined;
  } catch (e) {
    return toErrorDetail(e);
  }
}

function checkTimeout(timeoutMs: number): void {
  if (timeoutMs < 0) throw rillError("INVALID_REQUEST", `timeout_ms: ${timeoutMs} is negative`);
}

/** The AdminService implementation. */
export function adminService(d: AdminDeps): ServiceImplementation<typeof AdminService> {
  const { rm, store } = d;
  const brokers = (): number[] => store.image.unfencedBrokers();
  const fwd = new Forwarder(AdminService, d.route);
  const offsetClients = new LeaderClients(FetchService, rm);
  /** A metadata-changing call: run on the active controller, forwarded from any other node. */
  const changing = <Req, Res>(method: MethodName<typeof AdminService>, fn: (req: Req) => Promise<Res>) =>
    unary(async (req: Req, call: grpc.ServerUnaryCall<Req, Res>) => {
      if (fwd.shouldForward(call as grpc.ServerUnaryCall<unknown, unknown>))
        return fwd.forward<Res>(method, req, call as grpc.ServerUnaryCall<unknown, unknown>);
      const res = await fn(req);
      fwd.markOffset(call as grpc.ServerUnaryCall<unknown, unknown>);
      return res;
    });
  const roleOf = (r: string): NodeRole => (r === "controller" ? NodeRole.CONTROLLER : NodeRole.BROKER);
  return {
    createTopics: changing("createTopics", async (req: CreateTopicsRequest) => {
      checkTimeout(req.timeoutMs);
      if (req.topics.length === 0) throw rillError("INVALID_REQUEST", "topics: at least one topic is required");
      const names = new Set<string>();
      const topics = [];
      for (const t of req.topics) {
        const dup = names.has(t.name);
        names.add(t.name);
        const error = dup
          ? toErrorDetail(rillError("INVALID_REQUEST", `topics: "${t.name}" is named twice`))
          : await attempt(store, req.validateOnly, (img) =>
              decideCreateTopic(
                img,
                { name: t.name, partitions: t.partitions, replicationFactor: t.replicationFactor, configs: t.configs },
                { partitions: d.config.numPartitions, brokers: brokers(), random: d.random },
              ),
            );
        const created = store.image.topics.get(t.name);
        topics.push({
          name: t.name,
          ...(error ? { error } : {}),
          partitions: error ? 0 : (created?.partitions.length ?? (t.partitions || d.config.numPartitions)),
          replicationFactor: error ? 0 : (created?.partitions[0]?.replicas.length ?? (t.replicationFactor || 1)),
        });
      }
      return create(CreateTopicsResponseSchema, { topics });
    }),

    deleteTopics: changing("deleteTopics", async (req: DeleteTopicsRequest) => {
      checkTimeout(req.timeoutMs);
      if (req.topics.length === 0) throw rillError("INVALID_REQUEST", "topics: at least one topic is required");
      const topics = [];
      for (const name of req.topics) {
        const error = isInternal(name)
          ? toErrorDetail(rillError("INVALID_TOPIC", `topics: internal topic "${name}" cannot be deleted`))
          : await attempt(store, false, (img) => decideDeleteTopic(img, name));
        topics.push({ name, ...(error ? { error } : {}) });
      }
      return create(DeleteTopicsResponseSchema, { topics });
    }),

    listTopics: unary((req: ListTopicsRequest) =>
      create(ListTopicsResponseSchema, {
        topics: store.image
          .topicNames()
          .filter((n) => req.includeInternal || !isInternal(n))
          .map((name) => {
            const t = store.image.topics.get(name)!;
            return {
              name,
              partitions: t.partitions.length,
              replicationFactor: t.partitions[0]?.replicas.length ?? 0,
              internal: isInternal(name),
            };
          }),
      }),
    ),

    describeTopics: unary(async (req: DescribeTopicsRequest, call) => {
      const names = req.topics.length > 0 ? req.topics : store.image.topicNames().filter((n) => !isInternal(n));
      // Offsets come from each partition's leader: this broker's own replica lags it (or is
      // absent). Leaders elsewhere are asked with ListOffsets, one call per leader.
      const remote = new Map<number, { topic: string; partition: number }[]>();
      if (!isForwarded(call)) {
        for (const name of names) {
          for (const p of store.image.topics.get(name)?.partitions ?? []) {
            if (p.leader < 0 || p.leader === d.config.nodeId) continue;
            let list = remote.get(p.leader);
            if (!list) remote.set(p.leader, (list = []));
            list.push({ topic: name, partition: p.partition });
          }
        }
      }
      const fromLeaders = new Map<string, { logStart: bigint; hw: bigint }>();
      await Promise.all(
        [...remote].map(async ([leader, parts]) => {
          try {
            const res = await offsetClients.call<ListOffsetsResponse>(
              leader,
              "listOffsets",
              create(ListOffsetsRequestSchema, {
                partitions: parts.flatMap((tp) => [
                  { ...tp, spec: OffsetSpec.EARLIEST },
                  { ...tp, spec: OffsetSpec.LATEST },
                ]),
              }),
              5000,
            );
            parts.forEach((tp, i) => {
              const e = res.partitions[2 * i];
              const l = res.partitions[2 * i + 1];
              if (e && l && !e.error && !l.error) fromLeaders.set(`${tp.topic}\0${tp.partition}`, { logStart: e.offset, hw: l.offset });
            });
          } catch {
            // the leader is unreachable: this broker's own view is answered below
          }
        }),
      );
      return create(DescribeTopicsResponseSchema, {
        topics: names.map((name) => {
          const t = store.image.topics.get(name);
          if (!t) return { name, error: toErrorDetail(rillError("UNKNOWN_TOPIC_OR_PARTITION", `topics: topic "${name}" does not exist`)) };
          return {
            name,
            internal: isInternal(name),
            configs: req.excludeConfigs ? {} : describeTopicConfig(effectiveConfig(t.configs)),
            partitions: t.partitions.map((p) => {
              const log = rm.readPartition({ topic: name, partition: p.partition, offset: 0, maxBytes: 0 });
              const lead = fromLeaders.get(`${name}\0${p.partition}`);
              return {
                partition: p.partition,
                leader: p.leader,
                replicas: [...p.replicas],
                isr: [...p.isr],
                leaderEpoch: p.leaderEpoch,
                logStartOffset: lead?.logStart ?? BigInt(Math.max(log.logStartOffset, 0)),
                highWatermark: lead?.hw ?? BigInt(Math.max(log.highWatermark, 0)),
              };
            }),
          };
        }),
      });
    }),

    createPartitions: changing("createPartitions", async (req: CreatePartitionsRequest) => {
      checkTimeout(req.timeoutMs);
      const topics = [];
      for (const t of req.topics) {
        const error = await attempt(store, req.validateOnly, (img) => decideCreatePartitions(img, t.name, t.count, brokers(), d.random));
        topics.push({ name: t.name, ...(error ? { error } : {}) });
      }
      return create(CreatePartitionsResponseSchema, { topics });
    }),

    describeConfigs: unary((req: DescribeConfigsRequest) => {
      if (req.resources.length === 0) throw rillError("INVALID_REQUEST", "resources: at least one resource is required");
      const want = new Set(req.names);
      const pick = <T extends { name: string }>(entries: T[]): T[] => (want.size === 0 ? entries : entries.filter((e) => want.has(e.name)));
      return create(DescribeConfigsResponseSchema, {
        results: req.resources.map((resource, i) => {
          try {
            if (resource.type === ConfigResourceType.TOPIC) {
              const t = rm.topic(resource.name, `resources[${i}].name`);
              const eff = describeTopicConfig(effectiveConfig(t.configs));
              const entries = topicKeys.map((k) => ({
                name: k.name,
                value: eff[k.name]!,
                source: k.name in t.configs ? ConfigSource.DYNAMIC_TOPIC : ConfigSource.DEFAULT,
                readOnly: false,
                sensitive: false,
                documentation: req.includeDocumentation ? k.doc : "",
              }));
              return { resource, entries: pick(entries) };
            }
            if (resource.type === ConfigResourceType.BROKER) {
              if (resource.name !== "" && resource.name !== String(d.config.nodeId)) {
                throw rillError("INVALID_REQUEST", `resources[${i}].name: broker "${resource.name}" is not this node (${d.config.nodeId})`);
              }
              const cfg = d.config as unknown as Record<string, unknown>;
              const entries = brokerKeys.map((k) => ({
                name: k.name,
                value: String(cfg[k.prop]),
                source: ConfigSource.STATIC_BROKER,
                readOnly: true,
                sensitive: false,
                documentation: req.includeDocumentation ? k.doc : "",
              }));
              return { resource, entries: pick(entries) };
            }
            throw rillError(
              "INVALID_REQUEST",
              `resources[${i}].type: ${resource.type} is not CONFIG_RESOURCE_TYPE_TOPIC or CONFIG_RESOURCE_TYPE_BROKER`,
            );
          } catch (e) {
            return { resource, error: toErrorDetail(e) };
          }
        }),
      });
    }),

    alterConfigs: changing("alterConfigs", async (req: AlterConfigsRequest) => {
      if (req.resources.length === 0) throw rillError("INVALID_REQUEST", "resources: at least one resource is required");
      const results = [];
      for (const [i, r] of req.resources.entries()) {
        const resource = r.resource;
        let error: ReturnType<typeof toErrorDetail> | undefined;
        if (!resource || resource.type !== ConfigResourceType.TOPIC) {
          error = toErrorDetail(
            rillError("INVALID_REQUEST", `resources[${i}].resource: only topic configs can be altered (broker configs are static)`),
          );
        } else {
          const set: Record<string, string> = {};
          const remove: string[] = [];
          for (const [j, op] of r.operations.entries()) {
            if (op.operation === ConfigOperation.SET) set[op.name] = op.value;
            else if (op.operation === ConfigOperation.DELETE) remove.push(op.name);
            else {
              error = toErrorDetail(
                rillError("INVALID_REQUEST", `resources[${i}].operations[${j}].operation: ${op.operation} is not SET or DELETE`),
              );
              break;
            }
          }
          error ??= await attempt(store, req.validateOnly, (img) => decideAlterConfigs(img, resource.name, set, remove));
        }
        results.push({ ...(resource ? { resource } : {}), ...(error ? { error } : {}) });
      }
      return create(AlterConfigsResponseSchema, { results });
    }),

    electLeaders: changing("electLeaders", async (req: ElectLeadersRequest) => {
      let named: { topic: string; partition: number }[] | undefined;
      if (req.partitions.length > 0) {
        named = [];
        for (const [i, tp] of req.partitions.entries()) {
          const t = store.image.topics.get(tp.topic);
          if (!t) throw rillError("UNKNOWN_TOPIC_OR_PARTITION", `partitions[${i}].topic: topic "${tp.topic}" does not exist`);
          const list = tp.partitions.length > 0 ? tp.partitions : t.partitions.map((_, p) => p);
          for (const p of list) named.push({ topic: tp.topic, partition: p });
        }
      }
      let results: { topic: string; partition: number; error: Error | null }[] = [];
      await store.commit((img) => {
        const d = decidePreferredLeaderElection(img, named);
        results = d.results;
        return d.records;
      });
      return create(ElectLeadersResponseSchema, {
        results: results.map((r) => ({
          topic: r.topic,
          partition: r.partition,
          leader: store.image.topics.get(r.topic)?.partitions[r.partition]?.leader ?? -1,
          ...(r.error ? { error: toErrorDetail(r.error) } : {}),
        })),
      });
    }),

    describeCluster: unary(() => {
      const img = store.image;
      const n = d.nodeState();
      return create(DescribeClusterResponseSchema, {
        clusterId: d.clusterId,
        controllerId: d.controllerId(),
        brokers: [...img.brokers.values()]
          .sort((a, b) => a.nodeId - b.nodeId)
          .map((b) => ({ nodeId: b.nodeId, address: b.address, roles: b.roles.map(roleOf), fenced: b.fenced, rack: b.rack ?? "" })),
        voters: d.voters.map((v) => ({ nodeId: v.id, address: v.address })).sort((a, b) => a.nodeId - b.nodeId),
        node: {
          nodeId: d.config.nodeId,
          roles: n.roles.map(roleOf),
          metadataOffset: BigInt(img.offset),
          raftRole: n.raftRole,
          raftTerm: BigInt(n.raftTerm),
          commitOffset: BigInt(n.commitOffset),
          brokerState: n.brokerState,
        },
      });
    }),
  };
}
