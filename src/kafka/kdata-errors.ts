/** Kafka's error codes the data APIs (Metadata, Produce, ListOffsets, InitProducerId) answer by name, where no RillError stands behind them. */
export const KafkaCode = {
  NONE: 0,
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  LEADER_NOT_AVAILABLE: 5,
  NOT_LEADER_OR_FOLLOWER: 6,
  INVALID_TOPIC_EXCEPTION: 17,
  TOPIC_AUTHORIZATION_FAILED: 29,
  CLUSTER_AUTHORIZATION_FAILED: 31,
  UNSUPPORTED_FOR_MESSAGE_FORMAT: 43,
  TRANSACTIONAL_ID_AUTHORIZATION_FAILED: 53,
  UNKNOWN_TOPIC_ID: 100,
  INVALID_REQUEST: 42,
} as const;
