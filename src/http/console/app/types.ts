/** The shapes of the API's answers the console reads (see src/http/api). */

export interface Overview {
  clusterId: string;
  controllerId: number;
  nodeId: number;
  raft: { role: string; term: number; commitOffset: number; metadataOffset: number };
  brokers: { nodeId: number; address: string; roles: string[]; fenced: boolean; rack: string; leaderPartitions: number }[];
  voters: { nodeId: number; address: string }[];
  topics: number;
  partitions: { total: number; offline: number; underReplicated: number; underMinIsr: number };
}

export interface TopicListing {
  name: string;
  partitions: number;
  replicationFactor: number;
  internal: boolean;
  underReplicated: number;
  offline: number;
}

export interface TopicDetail {
  name: string;
  internal: boolean;
  partitions: {
    partition: number;
    leader: number;
    replicas: number[];
    isr: number[];
    leaderEpoch: number;
    logStartOffset: number;
    highWatermark: number;
    logEndOffset: number | null;
    sizeBytes: number | null;
    underReplicated: boolean;
  }[];
}

export interface ConfigEntry {
  name: string;
  value: string;
  source: string;
  sensitive: boolean;
  doc: string;
}

export type Shown =
  | { text: string; binary?: true }
  | { json: unknown }
  | { hex: string }
  | { base64: string }
  | { text: string; json: false }
  | null;

export interface Messages {
  topic: string;
  format: string;
  partitions: {
    partition: number;
    from: number;
    highWatermark: number;
    nextOffset: number;
    error: { name: string; message: string } | null;
  }[];
  records: { partition: number; offset: number; timestampMs: number; key: Shown; value: Shown; headers: { key: string; value: Shown }[] }[];
  truncated: boolean;
}

export interface GroupListing {
  groupId: string;
  state: string;
  members: number;
  totalLag: number | null;
}

export interface TopicPartitions {
  topic: string;
  partitions: number[];
}

export interface GroupDetail {
  groupId: string;
  state: string;
  groupEpoch: number;
  assignor: string;
  coordinatorId: number;
  members: {
    memberId: string;
    clientId: string;
    clientHost: string;
    memberEpoch: number;
    topics: string[];
    assignment: TopicPartitions[];
  }[];
  offsets: { topic: string; partition: number; committedOffset: number; logEndOffset: number; lag: number; memberId: string }[];
  totalLag: number | null;
  history: { t: number[]; total: number[]; partitions: Record<string, (number | null)[]> };
}

export interface Traffic {
  intervalMs: number;
  windowMs: number;
  topics: {
    topic: string;
    t: number[];
    recordsIn: number[];
    bytesIn: number[];
    recordsOut: (number | null)[];
    bytesOut: (number | null)[];
  }[];
}
