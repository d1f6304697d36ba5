/**
 * Each public request's authorization, on its domain input (protocol-neutral: the gRPC adapters
 * call these before the handler, the Kafka and HTTP listeners will too). What each RPC needs is
 * the table of src/security/operations.ts; these functions only say which resources a request
 * names and filter the answers that list resources. A refused request throws before anything is
 * changed; the per-partition reads (Fetch, ListOffsets) answer TOPIC_AUTHORIZATION_FAILED for
 * the partitions of a denied topic and read the others, as Kafka does. Requests that change
 * several resources at once (CreateTopics, DeleteTopics, CommitOffsets, ...) are refused whole
 * when one resource is denied, so a refused request never changes part of what it names.
 */
import type { TopicPartitions } from "../coordinator/index.ts";
import type { AclOperation } from "../metadata/security-types.ts";
import { EXTRA_ACCESS, eachOp, type PublicRpc } from "../security/operations.ts";
import type { Requester } from "../security/requester.ts";
import type { Access } from "./access.ts";
import type {
  AlterConfigsInput,
  CreatePartitionsInput,
  CreateTopicsInput,
  DeleteTopicsInput,
  DescribeClusterResult,
  DescribeConfigsInput,
  DescribeTopicsResult,
  ElectLeadersInput,
  ListTopicsResult,
} from "./admin-types.ts";
import { type RillError, rillError } from "../base/errors.ts";
import type { DeleteRecordsInput } from "./delete-records.ts";
import type { FetchPartitionInput, FetchPartitionResult, ListedOffset, ListOffsetsPartitionInput } from "./fetch-types.ts";

/** A request's items split by permission: `allowed` go on; `merge` puts the answer back in request order. */
export interface Split<T, R> {
  readonly allowed: readonly T[];
  /** True when every item is allowed (the answer needs no merge). */
  readonly all: boolean;
  merge(results: readonly R[]): R[];
}

const topicsOf = (list: readonly { readonly topic: string }[]): string[] => [...new Set(list.map((p) => p.topic))];

/** The authorization of every public request of one broker. */
export class RequestAccess {
  constructor(readonly access: Access) {}

  createTopics(r: Requester, input: CreateTopicsInput): void {
    this.access.check(r, "AdminService/CreateTopics", { TOPIC: input.topics.map((t) => t.name) });
  }

  deleteTopics(r: Requester, input: DeleteTopicsInput): void {
    this.access.check(r, "AdminService/DeleteTopics", { TOPIC: input.topics });
  }

  /** DeleteRecords: DELETE on every topic it names; refused whole. */
  deleteRecords(r: Requester, input: DeleteRecordsInput): void {
    this.access.check(r, "AdminService/DeleteRecords", { TOPIC: topicsOf(input.partitions) });
  }

  /** ListTopics answers only the topics the caller may DESCRIBE. */
  listTopics(r: Requester, res: ListTopicsResult): ListTopicsResult {
    return { topics: this.access.visible(r, "TOPIC", "DESCRIBE", res.topics, (t) => t.name) };
  }

  /**
   * DescribeTopics: a topic the caller may not DESCRIBE is left out of an "every topic" answer;
   * named, it is answered with TOPIC_AUTHORIZATION_FAILED (as Kafka answers Metadata).
   */
  describeTopics(r: Requester, named: readonly string[], res: DescribeTopicsResult): DescribeTopicsResult {
    if (named.length === 0) return { topics: this.access.visible(r, "TOPIC", "DESCRIBE", res.topics, (t) => t.name) };
    return {
      topics: res.topics.map((t) =>
        this.access.allowed(r, "DESCRIBE", "TOPIC", t.name)
          ? t
          : {
              name: t.name,
              internal: false,
              configs: {},
              partitions: [],
              error: rillError("TOPIC_AUTHORIZATION_FAILED", `DescribeTopics: ${r.principal} may not DESCRIBE topic "${t.name}"`),
            },
      ),
    };
  }

  createPartitions(r: Requester, input: CreatePartitionsInput): void {
    this.access.check(r, "AdminService/CreatePartitions", { TOPIC: input.topics.map((t) => t.name) });
  }

  describeConfigs(r: Requester, input: DescribeConfigsInput): void {
    this.configs(r, "AdminService/DescribeConfigs", input.resources, "DESCRIBE_CONFIGS");
  }

  alterConfigs(r: Requester, input: AlterConfigsInput): void {
    const resources = input.resources.flatMap((a) => (a.resource ? [a.resource] : []));
    this.configs(r, "AdminService/AlterConfigs", resources, "ALTER_CONFIGS");
  }

  private configs(r: Requester, rpc: PublicRpc, resources: readonly { type: unknown; name: string }[], op: AclOperation): void {
    this.access.check(r, rpc, { TOPIC: resources.filter((c) => c.type === "topic").map((c) => c.name) });
    if (resources.some((c) => c.type === "broker")) this.access.require(r, rpc, { on: "cluster", op });
  }

  /** The RPCs whose only requirement is on the cluster (ACLs, users). */
  cluster(r: Requester, rpc: PublicRpc): void {
    this.access.check(r, rpc);
  }

  electLeaders(r: Requester, _input: ElectLeadersInput): void {
    this.access.check(r, "AdminService/ElectLeaders");
  }

  /**
   * DescribeCluster: broker addresses for any authenticated caller (the SDK discovers brokers
   * with it); the controller internals (Raft role, term, commit offset) only with DESCRIBE on
   * CLUSTER — without it they are answered empty.
   */
  describeCluster(r: Requester, res: DescribeClusterResult): DescribeClusterResult {
    this.access.check(r, "AdminService/DescribeCluster");
    if (this.access.meets(r, EXTRA_ACCESS.clusterInternals)) return res;
    return { ...res, node: { ...res.node, raftRole: "", raftTerm: 0, commitOffset: 0 } };
  }

  produce(r: Requester, topic: string): void {
    this.access.check(r, "ProduceService/Produce", { TOPIC: [topic] });
  }

  /** InitProducerId: with a transactional id, WRITE on it (Kafka's); without, the table's row. */
  initProducerId(r: Requester, transactionalId: string): void {
    if (transactionalId !== "")
      this.access.require(r, "ProduceService/InitProducerId", EXTRA_ACCESS.transactionalId, { TRANSACTIONAL_ID: [transactionalId] });
    else this.access.check(r, "ProduceService/InitProducerId");
  }

  // transactions (issue 17)

  /** EndTransaction, and a Produce or CommitOffsets with a transactional id: WRITE on it. */
  transactionalWrite(r: Requester, rpc: PublicRpc, transactionalId: string): void {
    this.access.require(r, rpc, EXTRA_ACCESS.transactionalWrite, { TRANSACTIONAL_ID: [transactionalId] });
  }

  /** DescribeTransactions: DESCRIBE on each id. */
  describeTransactions(r: Requester, ids: readonly string[]): void {
    this.access.check(r, "AdminService/DescribeTransactions", { TRANSACTIONAL_ID: ids });
  }

  /** ListTransactions answers only the ids the caller may DESCRIBE. */
  listTransactions<T extends { readonly transactionalId: string }>(r: Requester, rows: readonly T[]): T[] {
    return this.access.visible(r, "TRANSACTIONAL_ID", "DESCRIBE", rows, (t) => t.transactionalId);
  }

  /** AbortTransaction: WRITE on the id; the partition form ALTER on CLUSTER and WRITE on the topic. */
  abortTransaction(r: Requester, input: { transactionalId: string } | { topic: string }): void {
    if ("transactionalId" in input) this.access.check(r, "AdminService/AbortTransaction", { TRANSACTIONAL_ID: [input.transactionalId] });
    else {
      this.access.require(r, "AdminService/AbortTransaction", EXTRA_ACCESS.abortPartition, {});
      this.access.check(r, "ProduceService/Produce", { TOPIC: [input.topic] });
    }
  }

  fetch(r: Requester, rpc: "FetchService/Fetch" | "FetchService/Subscribe", partitions: readonly { readonly topic: string }[]): void {
    this.access.check(r, rpc, { TOPIC: topicsOf(partitions) });
  }

  /**
   * The items of a per-partition request that `r` may act on (the table's TOPIC operation of
   * `rpc`); each denied one is answered `denied(item, error)` with TOPIC_AUTHORIZATION_FAILED in
   * its place, as Kafka answers per partition.
   */
  perTopic<T extends { readonly topic: string }, R>(
    r: Requester,
    rpc: PublicRpc,
    items: readonly T[],
    denied: (item: T, e: RillError) => R,
  ): Split<T, R> {
    const need = eachOp(rpc, "TOPIC");
    if (!this.access.enabled || !need) return { allowed: items, all: true, merge: (res) => [...res] };
    const ok = items.map((t) => this.access.allowed(r, need.op, "TOPIC", t.topic));
    if (ok.every(Boolean)) return { allowed: items, all: true, merge: (res) => [...res] };
    return {
      allowed: items.filter((_, i) => ok[i]),
      all: false,
      merge: (res) => {
        let next = 0;
        return items.map((t, i) =>
          ok[i]
            ? (res[next++] as R)
            : denied(t, rillError("TOPIC_AUTHORIZATION_FAILED", `${rpc}: ${r.principal} may not ${need.op} topic "${t.topic}"`)),
        );
      },
    };
  }

  /** Fetch: the partitions `r` may READ; the others answer TOPIC_AUTHORIZATION_FAILED. */
  fetchPartitions(r: Requester, partitions: readonly FetchPartitionInput[]): Split<FetchPartitionInput, FetchPartitionResult> {
    return this.perTopic(r, "FetchService/Fetch", partitions, (p, error) => ({
      topic: p.topic,
      partition: p.partition,
      highWatermark: -1,
      logStartOffset: -1,
      lastStableOffset: -1,
      nextOffset: Number(p.offset),
      error,
      records: null,
      batches: null,
    }));
  }

  /** ListOffsets: the partitions `r` may DESCRIBE; the others answer TOPIC_AUTHORIZATION_FAILED. */
  listOffsets(r: Requester, partitions: readonly ListOffsetsPartitionInput[]): Split<ListOffsetsPartitionInput, ListedOffset> {
    return this.perTopic(r, "FetchService/ListOffsets", partitions, (p, error) => ({
      topic: p.topic,
      partition: p.partition,
      offset: -1,
      timestampMs: -1,
      leaderEpoch: null,
      error,
    }));
  }

  heartbeat(r: Requester, groupId: string, topics: readonly string[] | null): void {
    this.access.check(r, "GroupService/Heartbeat", { GROUP: [groupId], TOPIC: topics ?? [] });
  }

  commitOffsets(r: Requester, groupId: string, offsets: readonly { readonly topic: string }[]): void {
    this.access.check(r, "GroupService/CommitOffsets", { GROUP: [groupId], TOPIC: topicsOf(offsets) });
  }

  /** FetchOffsets: DESCRIBE on the group; the answer keeps the topics the caller may DESCRIBE. */
  fetchOffsets<T extends { readonly topic: string }>(r: Requester, groupId: string, answer: () => Promise<T[]>): Promise<T[]> {
    this.access.check(r, "GroupService/FetchOffsets", { GROUP: [groupId] });
    return answer().then((list) => this.access.visible(r, "TOPIC", "DESCRIBE", list, (o) => o.topic));
  }

  /** ListGroups: every group with DESCRIBE on CLUSTER, else those the caller may DESCRIBE. */
  listGroups<T extends { readonly groupId: string }>(r: Requester, groups: readonly T[]): T[] {
    if (this.access.meets(r, EXTRA_ACCESS.listAllGroups)) return [...groups];
    return this.access.visible(r, "GROUP", "DESCRIBE", groups, (g) => g.groupId);
  }

  describeGroups(r: Requester, groupIds: readonly string[]): void {
    this.access.check(r, "GroupService/DescribeGroups", { GROUP: groupIds });
  }

  deleteGroups(r: Requester, groupIds: readonly string[]): void {
    this.access.check(r, "GroupService/DeleteGroups", { GROUP: groupIds });
  }

  /** DeleteOffsets (Kafka's OffsetDelete): DELETE on the group, READ on every topic named. */
  deleteOffsets(r: Requester, groupId: string, partitions: readonly TopicPartitions[]): void {
    this.access.check(r, "GroupService/DeleteOffsets", { GROUP: [groupId], TOPIC: topicsOf(partitions) });
  }

  resetOffsets(r: Requester, groupId: string, partitions: readonly TopicPartitions[]): void {
    this.access.check(r, "GroupService/ResetOffsets", { GROUP: [groupId], TOPIC: topicsOf(partitions) });
  }

  consume(r: Requester, groupId: string, topics: readonly string[]): void {
    this.access.check(r, "GroupService/Consume", { GROUP: [groupId], TOPIC: topics });
  }
}
