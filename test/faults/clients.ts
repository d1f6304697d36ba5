/**
 * Raw gRPC clients of one node for the fault test, as a thin client in any language would use
 * them: ProduceService.Produce with plain `records`, FetchService.Fetch with RECORDS, and the
 * GroupService and AdminService calls the scenarios need. Every call has a deadline. Channels
 * reconnect quickly (a node that is killed and started again is reachable at once), and the
 * standard protobuf codecs are used on this side (the broker's hand-written encoders are then
 * checked against the generated decoders too).
 */
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { AdminService, DescribeTopicsRequestSchema, type DescribeTopicsResponse } from "../../src/gen/rill/v1/admin_service_pb.ts";
import { RecordFormat } from "../../src/gen/rill/v1/common_pb.ts";
import { FetchRequestSchema, FetchService, type FetchResponse } from "../../src/gen/rill/v1/fetch_service_pb.ts";
import {
  CommitOffsetsRequestSchema,
  FetchOffsetsRequestSchema,
  GroupService,
  type CommitOffsetsResponse,
  type FetchOffsetsResponse,
} from "../../src/gen/rill/v1/group_service_pb.ts";
import { Acks, ProduceRequestSchema, ProduceService, type ProduceResponse } from "../../src/gen/rill/v1/produce_service_pb.ts";
import { clientConstructor, type ServiceClient } from "../../src/protocol/grpc-service.ts";
import { clientChannelOptions } from "../../src/protocol/channel-options.ts";
import { unaryCall } from "../integration/cluster-harness.ts";

const ProduceClient = clientConstructor(ProduceService);
const FetchClient = clientConstructor(FetchService);
const GroupClient = clientConstructor(GroupService);
const AdminClient = clientConstructor(AdminService);

/** Channel options of the fault test's clients: reconnect quickly to a node started again. */
export const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  ...clientChannelOptions(),
  "grpc.initial_reconnect_backoff_ms": 100,
  "grpc.max_reconnect_backoff_ms": 500,
  "grpc.min_reconnect_backoff_ms": 100,
};

/** The clients of one node (one channel each), addressed directly (no proxy in between). */
export class NodeClients {
  private readonly produceClient: ServiceClient<typeof ProduceService>;
  private readonly fetchClient: ServiceClient<typeof FetchService>;
  private readonly groupClient: ServiceClient<typeof GroupService>;
  private readonly adminClient: ServiceClient<typeof AdminService>;

  constructor(
    readonly nodeId: number,
    readonly address: string,
  ) {
    const creds = grpc.credentials.createInsecure();
    this.produceClient = new ProduceClient(address, creds, CHANNEL_OPTIONS);
    this.fetchClient = new FetchClient(address, creds, CHANNEL_OPTIONS);
    this.groupClient = new GroupClient(address, creds, CHANNEL_OPTIONS);
    this.adminClient = new AdminClient(address, creds, CHANNEL_OPTIONS);
  }

  /** Produce `values` to one partition with acks=ALL; the broker waits at most `timeoutMs`. */
  produce(topic: string, partition: number, values: readonly string[], timeoutMs: number, deadlineMs: number): Promise<ProduceResponse> {
    const req = create(ProduceRequestSchema, {
      topic,
      partition,
      records: values.map((v) => ({ value: Buffer.from(v, "utf8") })),
      acks: Acks.ALL,
      timeoutMs,
    });
    return unaryCall((o, cb) => this.produceClient.produce(req, new grpc.Metadata(), o, cb), deadlineMs);
  }

  /** Fetch RECORDS from several partitions of one topic. */
  fetch(
    topic: string,
    positions: ReadonlyMap<number, number>,
    o: { maxWaitMs: number; deadlineMs: number; maxBytes?: number },
  ): Promise<FetchResponse> {
    const req = create(FetchRequestSchema, {
      partitions: [...positions].map(([partition, offset]) => ({ topic, partition, offset: BigInt(offset) })),
      maxWaitMs: o.maxWaitMs,
      minBytes: 1,
      maxBytes: o.maxBytes ?? 0,
      format: RecordFormat.RECORDS,
    });
    return unaryCall((opts, cb) => this.fetchClient.fetch(req, new grpc.Metadata(), opts, cb), o.deadlineMs);
  }

  /** DescribeTopics of these topics (this node's own view). */
  describeTopics(topics: readonly string[], deadlineMs: number): Promise<DescribeTopicsResponse> {
    const req = create(DescribeTopicsRequestSchema, { topics: [...topics], excludeConfigs: true });
    return unaryCall((o, cb) => this.adminClient.describeTopics(req, new grpc.Metadata(), o, cb), deadlineMs);
  }

  /** CommitOffsets without membership (accepted while the group has no members). */
  commitOffsets(
    groupId: string,
    offsets: readonly { topic: string; partition: number; offset: number }[],
    deadlineMs: number,
  ): Promise<CommitOffsetsResponse> {
    const req = create(CommitOffsetsRequestSchema, {
      groupId,
      memberId: "",
      memberEpoch: -1,
      offsets: offsets.map((x) => ({ topic: x.topic, partition: x.partition, offset: BigInt(x.offset) })),
    });
    return unaryCall((o, cb) => this.groupClient.commitOffsets(req, new grpc.Metadata(), o, cb), deadlineMs);
  }

  /** FetchOffsets of one topic's partitions. */
  fetchOffsets(groupId: string, topic: string, partitions: readonly number[], deadlineMs: number): Promise<FetchOffsetsResponse> {
    const req = create(FetchOffsetsRequestSchema, { groupId, partitions: [{ topic, partitions: [...partitions] }] });
    return unaryCall((o, cb) => this.groupClient.fetchOffsets(req, new grpc.Metadata(), o, cb), deadlineMs);
  }

  close(): void {
    this.produceClient.close();
    this.fetchClient.close();
    this.groupClient.close();
    this.adminClient.close();
  }
}
