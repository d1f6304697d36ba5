/** The group coordinator's public API (see README.md). */
export * from "./coordinator.ts";
export * from "./records.ts";
export * from "./assignors.ts";
export * from "./offsets.ts";
export * from "./limits.ts";
export type { TopicPartition, TopicPartitions } from "./partitions.ts";
export type { GroupStateName } from "./group-state.ts";
export { LEFT_STATIC_MEMBER_EPOCH } from "./group-state.ts";
export { consumerSubscriptionTopics } from "./classic.ts";
