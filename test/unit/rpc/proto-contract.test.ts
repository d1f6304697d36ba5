/**
 * The names DESIGN.md's "API — package rill.v1" promises to clients, checked on the generated
 * descriptors: services, rpcs and their kinds, the core messages' fields, enum values. Adding is
 * free; a rename or removal fails here (and `buf breaking` in CI).
 */
import { type DescEnum, type DescMessage, ScalarType } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import {
  AdminService,
  CreateTopicsRequest_TopicSchema,
  CreateTopicsRequestSchema,
  DescribeClusterResponse_BrokerSchema,
  DescribeClusterResponseSchema,
  DescribeTopicsResponse_PartitionSchema,
  DescribeTopicsResponse_TopicSchema,
} from "../../../src/gen/rill/v1/admin_service_pb.ts";
import {
  ConsumedRecordSchema,
  ErrorDetailSchema,
  HeaderSchema,
  IsolationLevelSchema,
  OffsetSpecSchema,
  RecordFormatSchema,
  RecordSchema,
} from "../../../src/gen/rill/v1/common_pb.ts";
import { ControllerService } from "../../../src/gen/rill/v1/controller_service_pb.ts";
import {
  FetchPartitionSchema,
  FetchRequestSchema,
  FetchResponseSchema,
  FetchService,
  FetchedPartitionSchema,
} from "../../../src/gen/rill/v1/fetch_service_pb.ts";
import {
  AutoOffsetResetSchema,
  ConsumeRequest_CommitSchema,
  ConsumeRequest_FlowSchema,
  ConsumeRequest_SubscribeSchema,
  ConsumeRequestSchema,
  ConsumeResponse_AssignmentSchema,
  ConsumeResponse_CommitResultSchema,
  ConsumeResponse_RecordsSchema,
  ConsumeResponseSchema,
  GroupService,
} from "../../../src/gen/rill/v1/group_service_pb.ts";
import {
  AcksSchema,
  ProduceRequestSchema,
  ProduceResponse_PartitionResultSchema,
  ProduceResponse_RecordResultSchema,
  ProduceResponseSchema,
  ProduceService,
} from "../../../src/gen/rill/v1/produce_service_pb.ts";
import { ReplicationService } from "../../../src/gen/rill/v1/replication_service_pb.ts";
import {
  AclBindingFilterSchema,
  AclBindingSchema,
  AclOperationSchema,
  AclPatternTypeSchema,
  AclPermissionSchema,
  AclResourceTypeSchema,
  AlterUserScramCredentialsRequest_DeletionSchema,
  AlterUserScramCredentialsRequest_UpsertionSchema,
  AlterUserScramCredentialsRequestSchema,
  CreateAclsRequestSchema,
  DeleteAclsRequestSchema,
  DescribeAclsRequestSchema,
  ScramMechanismSchema,
} from "../../../src/gen/rill/v1/security_pb.ts";
import { ACL_OPERATIONS, PATTERN_TYPES, RESOURCE_TYPES } from "../../../src/metadata/security-types.ts";

function rpcs(service: { methods: readonly { name: string; methodKind: string }[] }): Record<string, string> {
  return Object.fromEntries(service.methods.map((m) => [m.name, m.methodKind]));
}

function expectFields(message: DescMessage, names: readonly string[]): void {
  const actual = message.fields.map((f) => f.name);
  for (const name of names) expect(actual, `${message.typeName}.${name}`).toContain(name);
}

function enumValues(e: DescEnum): string[] {
  return e.values.map((v) => v.name);
}

describe("rill.v1 contract", () => {
  it("has the services and rpcs of DESIGN.md", () => {
    expect(rpcs(AdminService)).toEqual({
      CreateTopics: "unary",
      DeleteTopics: "unary",
      ListTopics: "unary",
      DescribeTopics: "unary",
      CreatePartitions: "unary",
      DescribeConfigs: "unary",
      AlterConfigs: "unary",
      DescribeCluster: "unary",
      ElectLeaders: "unary",
      // security (issue 13)
      CreateAcls: "unary",
      DescribeAcls: "unary",
      DeleteAcls: "unary",
      AlterUserScramCredentials: "unary",
      DescribeUserScramCredentials: "unary",
      AlterClientQuotas: "unary",
      DescribeClientQuotas: "unary",
      // delete records (issue 15)
      DeleteRecords: "unary",
      ListTransactions: "unary",
      DescribeTransactions: "unary",
      AbortTransaction: "unary",
      // dynamic controller quorum (issue 21)
      AddRaftVoter: "unary",
      RemoveRaftVoter: "unary",
      // partition reassignment (issue 21)
      AlterPartitionReassignments: "unary",
      ListPartitionReassignments: "unary",
      // cordoned brokers (issue 21)
      AlterBrokerCordons: "unary",
    });
    expect(rpcs(ProduceService)).toEqual({
      Produce: "unary",
      ProduceStream: "bidi_streaming",
      InitProducerId: "unary",
      EndTransaction: "unary",
    });
    expect(rpcs(FetchService)).toEqual({ Fetch: "unary", Subscribe: "server_streaming", ListOffsets: "unary" });
    expect(rpcs(GroupService)).toEqual({
      Heartbeat: "unary",
      CommitOffsets: "unary",
      FetchOffsets: "unary",
      ListGroups: "unary",
      DescribeGroups: "unary",
      DeleteGroups: "unary",
      ResetOffsets: "unary",
      Consume: "bidi_streaming",
      // Kafka's OffsetDelete (issue 15)
      DeleteOffsets: "unary",
    });
    expect(rpcs(ReplicationService)).toEqual({
      ReplicaFetch: "bidi_streaming",
      OffsetsForLeaderEpoch: "unary",
      WriteTxnMarkers: "unary",
      TxnProduceGate: "unary",
    });
    expect(Object.keys(rpcs(ControllerService))).toEqual([
      "Vote",
      "AppendEntries",
      "InstallSnapshot",
      "RegisterBroker",
      "BrokerHeartbeat",
      "AlterPartition",
      "FetchMetadata",
    ]);
  });

  it("has the core message fields of DESIGN.md", () => {
    expectFields(RecordSchema, ["key", "value", "headers", "timestamp_ms"]);
    expectFields(HeaderSchema, ["key", "value"]);
    expectFields(ConsumedRecordSchema, ["topic", "partition", "offset", "timestamp_ms", "key", "value", "headers"]);
    expectFields(ErrorDetailSchema, ["code", "name", "message", "retriable"]);
    expectFields(CreateTopicsRequestSchema, ["topics", "validate_only"]);
    expectFields(CreateTopicsRequest_TopicSchema, ["name", "partitions", "replication_factor", "configs"]);
    expectFields(ProduceRequestSchema, [
      "topic",
      "partition",
      "records",
      "record_batch",
      "acks",
      "timeout_ms",
      "producer_id",
      "producer_epoch",
      "base_sequence",
    ]);
    expectFields(ProduceResponseSchema, ["topic", "partitions", "records"]);
    expectFields(ProduceResponse_PartitionResultSchema, ["partition", "base_offset", "log_append_time_ms", "error"]);
    expectFields(ProduceResponse_RecordResultSchema, ["partition", "offset"]);
    expectFields(FetchRequestSchema, ["partitions", "max_wait_ms", "min_bytes", "max_bytes", "format", "isolation_level"]);
    expectFields(FetchPartitionSchema, ["topic", "partition", "offset"]);
    expectFields(FetchResponseSchema, ["partitions"]);
    expectFields(FetchedPartitionSchema, [
      "topic",
      "partition",
      "high_watermark",
      "log_start_offset",
      "records",
      "record_batches",
      "error",
    ]);
    expectFields(DescribeTopicsResponse_TopicSchema, ["name", "configs", "partitions"]);
    expectFields(DescribeTopicsResponse_PartitionSchema, ["partition", "leader", "replicas", "isr", "log_start_offset", "high_watermark"]);
    expectFields(DescribeClusterResponseSchema, ["controller_id", "brokers"]);
    expectFields(DescribeClusterResponse_BrokerSchema, ["node_id", "address", "roles", "fenced"]);
    expectFields(ConsumeRequestSchema, ["subscribe", "commit", "flow"]);
    expectFields(ConsumeRequest_SubscribeSchema, [
      "group_id",
      "topics",
      "instance_id",
      "auto_offset_reset",
      "max_outstanding_records",
      "max_outstanding_bytes",
      "format",
    ]);
    expectFields(ConsumeRequest_CommitSchema, ["offsets"]);
    expectFields(ConsumeRequest_FlowSchema, ["records", "bytes"]);
    expectFields(ConsumeResponseSchema, ["assignment", "records", "commit_result"]);
    expectFields(ConsumeResponse_AssignmentSchema, ["member_id", "member_epoch", "assigned", "revoked"]);
    expectFields(ConsumeResponse_RecordsSchema, ["topic", "partition", "records", "high_watermark"]);
    expectFields(ConsumeResponse_CommitResultSchema, ["offsets", "error"]);
  });

  it("uses explicit presence where it matters and oneofs for Consume", () => {
    expect(ProduceRequestSchema.field.partition.proto.proto3Optional).toBe(true);
    expect(RecordSchema.field.key.proto.proto3Optional).toBe(true);
    expect(RecordSchema.field.value.proto.proto3Optional).toBe(true);
    expect(ConsumeRequest_SubscribeSchema.field.instanceId.proto.proto3Optional).toBe(true);
    expect(ConsumeRequestSchema.oneofs.map((o) => o.name)).toEqual(["kind"]);
    expect(ConsumeResponseSchema.oneofs.map((o) => o.name)).toEqual(["kind"]);
    for (const f of [
      FetchPartitionSchema.field.offset,
      FetchedPartitionSchema.field.highWatermark,
      ConsumedRecordSchema.field.timestampMs,
    ]) {
      expect(f.scalar).toBe(ScalarType.INT64);
    }
  });

  it("has buf-style enums with the values of DESIGN.md", () => {
    expect(enumValues(AcksSchema)).toEqual(["ACKS_UNSPECIFIED", "ACKS_NONE", "ACKS_LEADER", "ACKS_ALL"]);
    expect(enumValues(RecordFormatSchema)).toEqual(["RECORD_FORMAT_UNSPECIFIED", "RECORD_FORMAT_RECORDS", "RECORD_FORMAT_BATCHES"]);
    expect(enumValues(IsolationLevelSchema)).toEqual([
      "ISOLATION_LEVEL_UNSPECIFIED",
      "ISOLATION_LEVEL_READ_UNCOMMITTED",
      "ISOLATION_LEVEL_READ_COMMITTED",
    ]);
    expect(enumValues(OffsetSpecSchema)).toEqual([
      "OFFSET_SPEC_UNSPECIFIED",
      "OFFSET_SPEC_EARLIEST",
      "OFFSET_SPEC_LATEST",
      "OFFSET_SPEC_TIMESTAMP",
    ]);
    expect(enumValues(AutoOffsetResetSchema)).toEqual([
      "AUTO_OFFSET_RESET_UNSPECIFIED",
      "AUTO_OFFSET_RESET_EARLIEST",
      "AUTO_OFFSET_RESET_LATEST",
      "AUTO_OFFSET_RESET_NONE",
    ]);
  });

  it("has DESIGN.md's security shapes: AclBinding, filters, SCRAM upsertions and deletions", () => {
    const fields = ["principal", "host", "resource_type", "resource_name", "pattern_type", "operation", "permission"];
    expectFields(AclBindingSchema, fields);
    expectFields(AclBindingFilterSchema, fields);
    expectFields(CreateAclsRequestSchema, ["creations"]);
    expectFields(DescribeAclsRequestSchema, ["filter"]);
    expectFields(DeleteAclsRequestSchema, ["filters"]);
    expectFields(AlterUserScramCredentialsRequestSchema, ["upsertions", "deletions"]);
    expectFields(AlterUserScramCredentialsRequest_UpsertionSchema, ["name", "mechanism", "iterations", "password"]);
    expectFields(AlterUserScramCredentialsRequest_DeletionSchema, ["name", "mechanism"]);
    expect(enumValues(ScramMechanismSchema)).toEqual([
      "SCRAM_MECHANISM_UNSPECIFIED",
      "SCRAM_MECHANISM_SCRAM_SHA_256",
      "SCRAM_MECHANISM_SCRAM_SHA_512",
    ]);
    expect(enumValues(AclPermissionSchema)).toEqual(["ACL_PERMISSION_UNSPECIFIED", "ACL_PERMISSION_ALLOW", "ACL_PERMISSION_DENY"]);
    expect(enumValues(AclResourceTypeSchema).slice(1)).toEqual(RESOURCE_TYPES.map((t) => `ACL_RESOURCE_TYPE_${t}`));
    expect(enumValues(AclOperationSchema).slice(1)).toEqual(ACL_OPERATIONS.map((o) => `ACL_OPERATION_${o}`));
    expect(enumValues(AclPatternTypeSchema).slice(1, 3)).toEqual(PATTERN_TYPES.map((p) => `ACL_PATTERN_TYPE_${p}`));
    // Filters may leave a field unset (any): the strings are explicitly optional.
    for (const name of ["principal", "host", "resource_name"])
      expect(AclBindingFilterSchema.fields.find((f) => f.name === name)?.proto.proto3Optional, name).toBe(true);
  });
});
