/**
 * Rill's TypeScript SDK: `Admin`, `Producer`, `Consumer` (see README.md in this folder), published
 * as the npm package `@rill/client` (packages/client).
 *
 * ```ts
 * import { Admin, Consumer, Producer } from "@rill/client";
 * const producer = new Producer({ bootstrap: "127.0.0.1:50051", compression: "lz4" });
 * const { partition, offset } = await producer.send({ topic: "orders", key: "o-1", value: "{}" });
 * ```
 */

export { Admin } from "./admin.ts";
export type {
  BrokerDescription,
  ClusterDescription,
  ConfigAlteration,
  ConfigEntryDescription,
  ConfigResourceRef,
  ConfigSourceName,
  CreatedTopic,
  DeletedRecords,
  DeleteRecordsSpec,
  NewTopic,
  PartitionDescription,
  PartitionReassignment,
  ResourceConfig,
  TopicDescription,
  TopicListing,
} from "./admin.ts";
export type { ConsumerRecord } from "./batch-reader.ts";
export { type ChannelSecurity, type ClientCredentials, type ClientTlsOptions, channelSecurity } from "./channel-security.ts";
export { type ClientOptions, DEFAULT_BOOTSTRAP } from "./connection.ts";
export { Consumer } from "./consumer.ts";
export type { ConsumerOptions, PartitionAssignment, SeekTarget, TopicPartition } from "./consumer.ts";
export { ClientClosedError, ConnectionError, isRetriable } from "./errors.ts";
export { GrpcTransport } from "./grpc-transport.ts";
export {
  GroupAdmin,
  type GroupCommittedOffset,
  type GroupDescription,
  type GroupListing,
  type GroupMemberDescription,
  type GroupPartitionLag,
  type GroupStateName,
  type GroupTopicPartitions,
  type ResetTarget,
} from "./group-admin.ts";
export {
  GroupConsumer,
  type GroupConsumerOptions,
  type GroupRecord,
  type GroupSeekTarget,
  type EachBatchPayload,
  type EachMessagePayload,
  type RunBatch,
  type RunOptions,
} from "./group-consumer.ts";
export type { ClientEvent, EventTopicPartition, InstrumentationOptions, Logger } from "./instrumentation.ts";
export { type Deserializer, type Serde, type SerdeContext, type Serializer, json, protobuf, text } from "./serde.ts";
export { DEFAULT_SHUTDOWN_SIGNALS } from "./shutdown.ts";
export type { GroupOffset, GroupTopicPartition } from "./group-connection.ts";
export { GrpcGroupTransport, type GroupTransport } from "./group-transport.ts";
export type { ListedOffset, OffsetLookup, OffsetQuery } from "./offsets.ts";
export { Producer } from "./producer.ts";
export type { ProducerHeader, ProducerOptions, ProducerRecord, RecordBytes, RecordMetadata, Transaction } from "./producer.ts";
export { type RetryPolicy, defaultRetryPolicy } from "./retry.ts";
export type { CallOptions, ProduceStream, ProduceStreamListener, Transport } from "./transport.ts";
export type { TransportFactory } from "./transport-pool.ts";
export { RillError } from "../base/errors.ts";
