/**
 * AdminService messages <-> the admin service's domain types (src/service/admin-types.ts).
 *
 * `decode*` turn a request message into the domain input and `encode*Result` turn the domain
 * answer into the response message. The five metadata-changing requests also go the other way
 * (`encode*Input`, `decode*Result`), because a node that is not the active controller passes
 * them on as messages and answers the controller's response (see `changeCodecs`).
 *
 * Per-item errors become ErrorDetail through `toErrorDetail` (src/rpc/errors.ts), and back
 * through `fromErrorDetail`. Offsets are int64 (bigint) on the wire and numbers in the domain.
 * Enum values outside the known ones travel as `Unrecognized`, so the service names them in its
 * error message exactly as the wire carried them.
 */
import { create } from "@bufbuild/protobuf";
import type { RillError } from "../base/errors.ts";
import { rillErrorFromDetail } from "../protocol/grpc-errors.ts";
import { type ErrorDetail, NodeRole } from "../gen/rill/v1/common_pb.ts";
import {
  type AlterConfigsRequest,
  AlterConfigsRequestSchema,
  type AlterConfigsResponse,
  AlterConfigsResponseSchema,
  ConfigOperation as ProtoConfigOperation,
  type ConfigResource as ProtoConfigResource,
  ConfigResourceSchema,
  ConfigResourceType as ProtoConfigResourceType,
  ConfigSource as ProtoConfigSource,
  type CreatePartitionsRequest,
  CreatePartitionsRequestSchema,
  type CreatePartitionsResponse,
  CreatePartitionsResponseSchema,
  type CreateTopicsRequest,
  CreateTopicsRequestSchema,
  type CreateTopicsResponse,
  CreateTopicsResponseSchema,
  type DeleteTopicsRequest,
  DeleteTopicsRequestSchema,
  type DeleteTopicsResponse,
  DeleteTopicsResponseSchema,
  type DescribeClusterResponse,
  DescribeClusterResponseSchema,
  type DescribeConfigsRequest,
  type DescribeConfigsResponse,
  DescribeConfigsResponseSchema,
  type DescribeTopicsRequest,
  type DescribeTopicsResponse,
  DescribeTopicsResponseSchema,
  type ElectLeadersRequest,
  ElectLeadersRequestSchema,
  type ElectLeadersResponse,
  ElectLeadersResponseSchema,
  type ListTopicsRequest,
  type ListTopicsResponse,
  ListTopicsResponseSchema,
} from "../gen/rill/v1/admin_service_pb.ts";
import type { AdminChange, AdminChanges } from "../service/admin-types.ts";
import type { AlterClientQuotasRequest, AlterClientQuotasResponse } from "../gen/rill/v1/admin_service_pb.ts";
import { decodeAlterClientQuotasResult, encodeAlterClientQuotasInput } from "./quota-codec.ts";
import type * as domain from "../service/admin-types.ts";
import { toErrorDetail } from "./errors.ts";
import { type SecurityChangeMessages, securityChangeCodecs } from "./admin-security-codec.ts";
import type { AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse } from "../gen/rill/v1/admin_service_pb.ts";
import { decodeAlterPartitionReassignmentsResult, encodeAlterPartitionReassignmentsInput } from "./reassign-codec.ts";
import type { AlterBrokerCordonsRequest, AlterBrokerCordonsResponse } from "../gen/rill/v1/admin_service_pb.ts";
import { decodeAlterBrokerCordonsResult, encodeAlterBrokerCordonsInput } from "./cordon-codec.ts";

// ---- errors and enums ------------------------------------------------------------------------

/** `{ error }` as an ErrorDetail when there is one, else `{}`. */
function errorField(error: RillError | undefined): { error?: ErrorDetail } {
  return error ? { error: toErrorDetail(error) } : {};
}

/** The RillError an ErrorDetail carries (an unknown code: UNKNOWN_SERVER_ERROR with the message). */
export function fromErrorDetail(d: ErrorDetail): RillError {
  return rillErrorFromDetail(d);
}

/** `{ error }` as a RillError when the detail is there, else `{}`. */
function domainError(d: ErrorDetail | undefined): { error?: RillError } {
  return d ? { error: fromErrorDetail(d) } : {};
}

function resourceType(t: ProtoConfigResourceType): domain.ConfigResourceType | domain.Unrecognized {
  if (t === ProtoConfigResourceType.TOPIC) return "topic";
  if (t === ProtoConfigResourceType.BROKER) return "broker";
  return { unrecognized: t };
}

function protoResourceType(t: domain.ConfigResourceType | domain.Unrecognized): ProtoConfigResourceType {
  if (t === "topic") return ProtoConfigResourceType.TOPIC;
  if (t === "broker") return ProtoConfigResourceType.BROKER;
  return t.unrecognized;
}

function resource(r: ProtoConfigResource): domain.ConfigResource {
  return { type: resourceType(r.type), name: r.name };
}

function protoResource(r: domain.ConfigResource): ProtoConfigResource {
  return create(ConfigResourceSchema, { type: protoResourceType(r.type), name: r.name });
}

function operation(op: ProtoConfigOperation): domain.ConfigOperation | domain.Unrecognized {
  if (op === ProtoConfigOperation.SET) return "set";
  if (op === ProtoConfigOperation.DELETE) return "delete";
  return { unrecognized: op };
}

function protoOperation(op: domain.ConfigOperation | domain.Unrecognized): ProtoConfigOperation {
  if (op === "set") return ProtoConfigOperation.SET;
  if (op === "delete") return ProtoConfigOperation.DELETE;
  return op.unrecognized;
}

const protoSource: Record<domain.ConfigSource, ProtoConfigSource> = {
  default: ProtoConfigSource.DEFAULT,
  "static-broker": ProtoConfigSource.STATIC_BROKER,
  "dynamic-default-broker": ProtoConfigSource.DYNAMIC_DEFAULT_BROKER,
  "dynamic-broker": ProtoConfigSource.DYNAMIC_BROKER,
  "dynamic-topic": ProtoConfigSource.DYNAMIC_TOPIC,
};

const protoRole = (r: domain.NodeRole): NodeRole => (r === "controller" ? NodeRole.CONTROLLER : NodeRole.BROKER);

// ---- CreateTopics ----------------------------------------------------------------------------

/** CreateTopicsRequest -> domain. */
export function decodeCreateTopics(req: CreateTopicsRequest): domain.CreateTopicsInput {
  return {
    topics: req.topics.map((t) => ({ name: t.name, partitions: t.partitions, replicationFactor: t.replicationFactor, configs: t.configs })),
    validateOnly: req.validateOnly,
    timeoutMs: req.timeoutMs,
  };
}

/** Domain -> CreateTopicsRequest (to forward it). */
export function encodeCreateTopicsInput(input: domain.CreateTopicsInput): CreateTopicsRequest {
  return create(CreateTopicsRequestSchema, {
    topics: input.topics.map((t) => ({ ...t, configs: { ...t.configs } })),
    validateOnly: input.validateOnly,
    timeoutMs: input.timeoutMs,
  });
}

/** Domain -> CreateTopicsResponse. */
export function encodeCreateTopicsResult(r: domain.CreateTopicsResult): CreateTopicsResponse {
  return create(CreateTopicsResponseSchema, {
    topics: r.topics.map((t) => ({
      name: t.name,
      ...errorField(t.error),
      partitions: t.partitions,
      replicationFactor: t.replicationFactor,
    })),
  });
}

/** CreateTopicsResponse -> domain (a forwarded answer). */
export function decodeCreateTopicsResult(res: CreateTopicsResponse): domain.CreateTopicsResult {
  return {
    topics: res.topics.map((t) => ({
      name: t.name,
      ...domainError(t.error),
      partitions: t.partitions,
      replicationFactor: t.replicationFactor,
    })),
  };
}

// ---- DeleteTopics ----------------------------------------------------------------------------

/** DeleteTopicsRequest -> domain. */
export function decodeDeleteTopics(req: DeleteTopicsRequest): domain.DeleteTopicsInput {
  return { topics: [...req.topics], timeoutMs: req.timeoutMs };
}

/** Domain -> DeleteTopicsRequest (to forward it). */
export function encodeDeleteTopicsInput(input: domain.DeleteTopicsInput): DeleteTopicsRequest {
  return create(DeleteTopicsRequestSchema, { topics: [...input.topics], timeoutMs: input.timeoutMs });
}

/** Domain -> DeleteTopicsResponse. */
export function encodeDeleteTopicsResult(r: domain.DeleteTopicsResult): DeleteTopicsResponse {
  return create(DeleteTopicsResponseSchema, { topics: r.topics.map((t) => ({ name: t.name, ...errorField(t.error) })) });
}

/** DeleteTopicsResponse -> domain (a forwarded answer). */
export function decodeDeleteTopicsResult(res: DeleteTopicsResponse): domain.DeleteTopicsResult {
  return { topics: res.topics.map((t) => ({ name: t.name, ...domainError(t.error) })) };
}

// ---- ListTopics / DescribeTopics -------------------------------------------------------------

/** ListTopicsRequest -> domain. */
export function decodeListTopics(req: ListTopicsRequest): domain.ListTopicsInput {
  return { includeInternal: req.includeInternal };
}

/** Domain -> ListTopicsResponse. */
export function encodeListTopicsResult(r: domain.ListTopicsResult): ListTopicsResponse {
  return create(ListTopicsResponseSchema, { topics: r.topics.map((t) => ({ ...t })) });
}

/** DescribeTopicsRequest -> domain. */
export function decodeDescribeTopics(req: DescribeTopicsRequest): domain.DescribeTopicsInput {
  return { topics: [...req.topics], excludeConfigs: req.excludeConfigs };
}

/** Domain -> DescribeTopicsResponse. */
export function encodeDescribeTopicsResult(r: domain.DescribeTopicsResult): DescribeTopicsResponse {
  return create(DescribeTopicsResponseSchema, {
    topics: r.topics.map((t) => ({
      name: t.name,
      ...errorField(t.error),
      internal: t.internal,
      configs: { ...t.configs },
      partitions: t.partitions.map((p) => ({
        partition: p.partition,
        leader: p.leader,
        replicas: [...p.replicas],
        isr: [...p.isr],
        eligibleLeaderReplicas: [...p.eligibleLeaderReplicas],
        lastKnownElr: [...p.lastKnownElr],
        leaderEpoch: p.leaderEpoch,
        logStartOffset: BigInt(p.logStartOffset),
        highWatermark: BigInt(p.highWatermark),
      })),
    })),
  });
}

// ---- CreatePartitions ------------------------------------------------------------------------

/** CreatePartitionsRequest -> domain. */
export function decodeCreatePartitions(req: CreatePartitionsRequest): domain.CreatePartitionsInput {
  return { topics: req.topics.map((t) => ({ name: t.name, count: t.count })), validateOnly: req.validateOnly, timeoutMs: req.timeoutMs };
}

/** Domain -> CreatePartitionsRequest (to forward it). */
export function encodeCreatePartitionsInput(input: domain.CreatePartitionsInput): CreatePartitionsRequest {
  return create(CreatePartitionsRequestSchema, {
    topics: input.topics.map((t) => ({ name: t.name, count: t.count })),
    validateOnly: input.validateOnly,
    timeoutMs: input.timeoutMs,
  });
}

/** Domain -> CreatePartitionsResponse. */
export function encodeCreatePartitionsResult(r: domain.CreatePartitionsResult): CreatePartitionsResponse {
  return create(CreatePartitionsResponseSchema, { topics: r.topics.map((t) => ({ name: t.name, ...errorField(t.error) })) });
}

/** CreatePartitionsResponse -> domain (a forwarded answer). */
export function decodeCreatePartitionsResult(res: CreatePartitionsResponse): domain.CreatePartitionsResult {
  return { topics: res.topics.map((t) => ({ name: t.name, ...domainError(t.error) })) };
}

// ---- DescribeConfigs / AlterConfigs ----------------------------------------------------------

/** DescribeConfigsRequest -> domain. */
export function decodeDescribeConfigs(req: DescribeConfigsRequest): domain.DescribeConfigsInput {
  return { resources: req.resources.map(resource), names: [...req.names], includeDocumentation: req.includeDocumentation };
}

/** Domain -> DescribeConfigsResponse. */
export function encodeDescribeConfigsResult(r: domain.DescribeConfigsResult): DescribeConfigsResponse {
  return create(DescribeConfigsResponseSchema, {
    results: r.results.map((res) => ({
      resource: protoResource(res.resource),
      entries: res.entries.map((e) => ({ ...e, source: protoSource[e.source] })),
      ...errorField(res.error),
    })),
  });
}

/** AlterConfigsRequest -> domain. */
export function decodeAlterConfigs(req: AlterConfigsRequest): domain.AlterConfigsInput {
  return {
    resources: req.resources.map((r) => ({
      ...(r.resource ? { resource: resource(r.resource) } : {}),
      operations: r.operations.map((op) => ({ name: op.name, operation: operation(op.operation), value: op.value })),
    })),
    validateOnly: req.validateOnly,
  };
}

/** Domain -> AlterConfigsRequest (to forward it). */
export function encodeAlterConfigsInput(input: domain.AlterConfigsInput): AlterConfigsRequest {
  return create(AlterConfigsRequestSchema, {
    resources: input.resources.map((r) => ({
      ...(r.resource ? { resource: protoResource(r.resource) } : {}),
      operations: r.operations.map((op) => ({ name: op.name, operation: protoOperation(op.operation), value: op.value })),
    })),
    validateOnly: input.validateOnly,
  });
}

/** Domain -> AlterConfigsResponse. */
export function encodeAlterConfigsResult(r: domain.AlterConfigsResult): AlterConfigsResponse {
  return create(AlterConfigsResponseSchema, {
    results: r.results.map((res) => ({ ...(res.resource ? { resource: protoResource(res.resource) } : {}), ...errorField(res.error) })),
  });
}

/** AlterConfigsResponse -> domain (a forwarded answer). */
export function decodeAlterConfigsResult(res: AlterConfigsResponse): domain.AlterConfigsResult {
  return {
    results: res.results.map((r) => ({ ...(r.resource ? { resource: resource(r.resource) } : {}), ...domainError(r.error) })),
  };
}

// ---- ElectLeaders / DescribeCluster ----------------------------------------------------------

/** ElectLeadersRequest -> domain. */
export function decodeElectLeaders(req: ElectLeadersRequest): domain.ElectLeadersInput {
  return { partitions: req.partitions.map((tp) => ({ topic: tp.topic, partitions: [...tp.partitions] })) };
}

/** Domain -> ElectLeadersRequest (to forward it). */
export function encodeElectLeadersInput(input: domain.ElectLeadersInput): ElectLeadersRequest {
  return create(ElectLeadersRequestSchema, {
    partitions: input.partitions.map((tp) => ({ topic: tp.topic, partitions: [...tp.partitions] })),
  });
}

/** Domain -> ElectLeadersResponse. */
export function encodeElectLeadersResult(r: domain.ElectLeadersResult): ElectLeadersResponse {
  return create(ElectLeadersResponseSchema, {
    results: r.results.map((e) => ({ topic: e.topic, partition: e.partition, leader: e.leader, ...errorField(e.error) })),
  });
}

/** ElectLeadersResponse -> domain (a forwarded answer). */
export function decodeElectLeadersResult(res: ElectLeadersResponse): domain.ElectLeadersResult {
  return { results: res.results.map((e) => ({ topic: e.topic, partition: e.partition, leader: e.leader, ...domainError(e.error) })) };
}

/** Domain -> DescribeClusterResponse. */
export function encodeDescribeClusterResult(r: domain.DescribeClusterResult): DescribeClusterResponse {
  const n = r.node;
  return create(DescribeClusterResponseSchema, {
    clusterId: r.clusterId,
    controllerId: r.controllerId,
    brokers: r.brokers.map((b) => ({ ...b, roles: b.roles.map(protoRole) })),
    voters: r.voters.map((v) => ({ ...v })),
    node: {
      nodeId: n.nodeId,
      roles: n.roles.map(protoRole),
      metadataOffset: BigInt(n.metadataOffset),
      raftRole: n.raftRole,
      raftTerm: BigInt(n.raftTerm),
      commitOffset: BigInt(n.commitOffset),
      brokerState: n.brokerState,
    },
  });
}

// ---- forwarding ------------------------------------------------------------------------------

/** The request and response messages of each metadata-changing method (security's in admin-security-codec.ts). */
export interface ChangeMessages extends SecurityChangeMessages {
  createTopics: { request: CreateTopicsRequest; response: CreateTopicsResponse };
  deleteTopics: { request: DeleteTopicsRequest; response: DeleteTopicsResponse };
  createPartitions: { request: CreatePartitionsRequest; response: CreatePartitionsResponse };
  alterConfigs: { request: AlterConfigsRequest; response: AlterConfigsResponse };
  electLeaders: { request: ElectLeadersRequest; response: ElectLeadersResponse };
  // client quotas (issue 13)
  alterClientQuotas: { request: AlterClientQuotasRequest; response: AlterClientQuotasResponse };
  // partition reassignment (issue 21)
  alterPartitionReassignments: { request: AlterPartitionReassignmentsRequest; response: AlterPartitionReassignmentsResponse };
  // cordoned brokers (issue 21)
  alterBrokerCordons: { request: AlterBrokerCordonsRequest; response: AlterBrokerCordonsResponse };
}

/** How one change travels to the active controller and back. */
export interface ChangeCodec<K extends AdminChange> {
  encodeInput(input: AdminChanges[K]["input"]): ChangeMessages[K]["request"];
  decodeResult(res: ChangeMessages[K]["response"]): AdminChanges[K]["result"];
}

/** The codec of each metadata-changing method, by method name. */
export const changeCodecs: { readonly [K in AdminChange]: ChangeCodec<K> } = {
  createTopics: { encodeInput: encodeCreateTopicsInput, decodeResult: decodeCreateTopicsResult },
  deleteTopics: { encodeInput: encodeDeleteTopicsInput, decodeResult: decodeDeleteTopicsResult },
  createPartitions: { encodeInput: encodeCreatePartitionsInput, decodeResult: decodeCreatePartitionsResult },
  alterConfigs: { encodeInput: encodeAlterConfigsInput, decodeResult: decodeAlterConfigsResult },
  electLeaders: { encodeInput: encodeElectLeadersInput, decodeResult: decodeElectLeadersResult },
  ...securityChangeCodecs,
  // client quotas (issue 13)
  alterClientQuotas: { encodeInput: encodeAlterClientQuotasInput, decodeResult: decodeAlterClientQuotasResult },
  // partition reassignment (issue 21)
  alterPartitionReassignments: {
    encodeInput: encodeAlterPartitionReassignmentsInput,
    decodeResult: decodeAlterPartitionReassignmentsResult,
  },
  // cordoned brokers (issue 21)
  alterBrokerCordons: { encodeInput: encodeAlterBrokerCordonsInput, decodeResult: decodeAlterBrokerCordonsResult },
};
