/**
 * The client's view of the cluster, asked of any broker (the bootstrap transport) and cached:
 * - per topic, its partitions' leaders: node id and leader epoch (DescribeTopics);
 * - per node id, its address (DescribeCluster brokers), so a client reaches a leader directly;
 * - per group, its coordinator: the leader of partition `murmur2(group) % partitions` of
 *   `__consumer_offsets` (Kafka's rule, src/coordinator/group-runtime.ts).
 *
 * Refreshes. `partitionCount(topic)` asks for a topic the cache does not hold yet (one lookup per
 * topic at a time; concurrent askers share it; a failed lookup is not cached; an unknown topic
 * fails at once, connection errors are retried with the client's policy). `requestRefresh()`
 * asks again for every topic held, and for the brokers: the producer and consumer call it when a
 * broker answers NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH, LEADER_NOT_AVAILABLE, ... or cannot
 * be reached (`isStaleMetadata`, errors.ts). Refreshes are coalesced (one at a time; askers
 * during one share it) and start at least the retry policy's `initialBackoffMs` apart (Kafka's
 * retry.backoff.ms serves both too); a failed refresh is dropped (the next error asks again).
 * Every `metadataMaxAgeMs` the cache refreshes on its own. With a fixed transport nothing can be
 * re-routed, so `requestRefresh` does nothing (`invalidate` still makes a topic asked again).
 *
 * Leader epochs only grow: a partition's entry is replaced only by one with an equal or newer
 * epoch, so a broker that has not applied the latest leader change yet cannot move a client back
 * to a deposed leader.
 *
 * Routing (`addressOf`): a partition's leader's address when both are known; otherwise the
 * bootstrap broker's (any broker answers: it forwards, or says NOT_LEADER_OR_FOLLOWER, which
 * refreshes the cache). A cluster of one broker is reached through the bootstrap address for
 * everything, as the SDK did before clusters: whatever address reached it (a proxy, a name the
 * broker does not advertise) reaches the only broker there is. With a fixed transport
 * (ClientOptions.transport) every partition routes to it and DescribeCluster is never asked.
 */

import { Errors, RillError } from "../base/errors.ts";
import { partitionForKey } from "../base/murmur2.ts";
import type { DescribeTopicsResponse_Partition } from "../gen/rill/v1/admin_service_pb.ts";
import { BootstrapTransport } from "./bootstrap-transport.ts";
import type { Connection } from "./connection.ts";
import { fromErrorDetail, isRetriable } from "./errors.ts";
import { sleep, withRetries } from "./retry.ts";

/** The internal topic whose partition leaders coordinate consumer groups. */
export const OFFSETS_TOPIC = "__consumer_offsets";

/** A partition's leader as the cache knows it. */
export interface PartitionLeader {
  /** Node id of the leader; -1 when the partition has none. */
  readonly nodeId: number;
  /** Grows at each leader change. */
  readonly leaderEpoch: number;
}

interface TopicEntry {
  /** Leaders by partition index. */
  readonly partitions: readonly PartitionLeader[];
  /** Invalidated: `partitionCount` asks the broker again (leaders stay usable meanwhile). */
  stale: boolean;
}

/** Topic partitions, their leaders, and broker addresses, cached; see the module comment. */
export class MetadataCache {
  private readonly topics = new Map<string, TopicEntry>();
  private readonly nodes = new Map<number, string>();
  /** Nodes the last DescribeCluster said are fenced. */
  private readonly fenced = new Set<number>();
  /** The last DescribeCluster listed exactly one broker. */
  private singleBroker = false;
  private readonly lookups = new Map<string, Promise<number>>();
  private readonly listeners = new Set<() => void>();
  private refreshing: Promise<void> | null = null;
  private lastRefreshMs = Number.NEGATIVE_INFINITY;
  private ageTimer: ReturnType<typeof setInterval> | null = null;
  private closed = false;
  /** Refreshes applied (lookups not counted); for tests and stats. */
  refreshes = 0;

  /** @param conn where to ask, how to retry, and how often to refresh. */
  constructor(private readonly conn: Connection) {}

  /** The cached partition count of `topic`, if any and not invalidated (no I/O). */
  cachedPartitionCount(topic: string): number | undefined {
    const t = this.topics.get(topic);
    return t === undefined || t.stale ? undefined : t.partitions.length;
  }

  /** The partition count of `topic`, from the cache or the broker. */
  partitionCount(topic: string): Promise<number> {
    const cached = this.cachedPartitionCount(topic);
    if (cached !== undefined) return Promise.resolve(cached);
    let lookup = this.lookups.get(topic);
    if (lookup === undefined) {
      lookup = this.lookup(topic).finally(() => this.lookups.delete(topic));
      this.lookups.set(topic, lookup);
    }
    return lookup;
  }

  /** Marks `topic` for asking again: the next `partitionCount` asks the broker (the topic may have grown or gone). */
  invalidate(topic: string): void {
    const t = this.topics.get(topic);
    if (t !== undefined) t.stale = true;
  }

  /** The cached leader of a partition (no I/O); undefined when the topic or partition is not cached. */
  leaderOf(topic: string, partition: number): PartitionLeader | undefined {
    return this.topics.get(topic)?.partitions[partition];
  }

  /** The address of the leader of a partition, when the leader and its address are known (no I/O). */
  leaderAddress(topic: string, partition: number): string | null {
    const l = this.leaderOf(topic, partition);
    if (l === undefined || l.nodeId < 0) return null;
    return this.nodes.get(l.nodeId) ?? null;
  }

  /** Where requests for a partition go: its leader, or the bootstrap broker when that is not known (no I/O). */
  addressOf(topic: string, partition: number): string {
    if (this.conn.pool.fixed || this.singleBroker) return this.conn.transport.address;
    return this.leaderAddress(topic, partition) ?? this.conn.transport.address;
  }

  /** The address of node `nodeId`, if known. */
  nodeAddress(nodeId: number): string | undefined {
    return this.nodes.get(nodeId);
  }

  /**
   * The addresses of the brokers that are not fenced (asking DescribeCluster first when no
   * broker is known): where to send a call that every broker answers for its own part, such as
   * ListGroups. One address (the bootstrap one) for a single broker or a fixed transport.
   */
  async brokerAddresses(): Promise<string[]> {
    if (this.conn.pool.fixed) return [this.conn.transport.address];
    if (this.nodes.size === 0) await this.describeCluster();
    if (this.singleBroker || this.nodes.size === 0) return [this.conn.transport.address];
    return [...this.nodes].filter(([id]) => !this.fenced.has(id)).map(([, address]) => address);
  }

  /**
   * The address of `groupId`'s coordinator, or null when it is not known (no `__consumer_offsets`
   * yet, no leader, or the leader's address unknown): then any broker is the place to ask.
   */
  async coordinatorAddress(groupId: string): Promise<string | null> {
    if (this.conn.pool.fixed || this.singleBroker) return this.conn.transport.address;
    const count = await this.partitionCount(OFFSETS_TOPIC);
    return this.leaderAddress(OFFSETS_TOPIC, partitionForKey(Buffer.from(groupId, "utf8"), count));
  }

  /**
   * Asks the cluster again for every cached topic and the brokers (coalesced, at most one start
   * per the retry policy's `initialBackoffMs`). Resolves when done; never rejects (a failed
   * refresh is dropped).
   */
  requestRefresh(): Promise<void> {
    if (this.closed || this.conn.pool.fixed) return Promise.resolve();
    this.refreshing ??= this.refreshSoon().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  /** Resolves once no refresh is pending (at once when none is). */
  settled(): Promise<void> {
    return this.refreshing ?? Promise.resolve();
  }

  /** Calls `fn` after each refresh or lookup that was applied; returns the unsubscribe function. */
  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Stops the periodic refresh; pending lookups finish. Idempotent. */
  close(): void {
    this.closed = true;
    if (this.ageTimer !== null) clearInterval(this.ageTimer);
    this.ageTimer = null;
    this.listeners.clear();
  }

  // -------------------------------------------------------------------------------------------

  private async lookup(topic: string): Promise<number> {
    const { transport, retry, random, requestTimeoutMs } = this.conn;
    const unknownTopic = (e: unknown): boolean => e instanceof RillError && e.kind === Errors.UNKNOWN_TOPIC_OR_PARTITION;
    const count = await withRetries(
      async () => {
        const askNodes = !this.conn.pool.fixed && this.nodes.size === 0 ? this.describeCluster() : Promise.resolve();
        const [res] = await Promise.all([
          transport.describeTopics({ topics: [topic], excludeConfigs: true }, { timeoutMs: requestTimeoutMs }),
          askNodes,
        ]);
        const t = res.topics.find((x) => x.name === topic);
        if (t === undefined) throw new RillError(Errors.UNKNOWN_TOPIC_OR_PARTITION, `topic "${topic}" does not exist`);
        if (t.error !== undefined) throw fromErrorDetail(t.error, `topic "${topic}"`);
        if (t.partitions.length === 0) throw new RillError(Errors.LEADER_NOT_AVAILABLE, `topic "${topic}" has no partitions yet`);
        this.apply(topic, t.partitions);
        return t.partitions.length;
      },
      retry,
      { random, retryIf: (e) => !unknownTopic(e) && isRetriable(e) },
    );
    this.changed();
    return count;
  }

  private async refreshSoon(): Promise<void> {
    const waitMs = this.lastRefreshMs + this.conn.retry.initialBackoffMs - Date.now();
    if (waitMs > 0) await sleep(waitMs);
    if (this.closed) return;
    this.lastRefreshMs = Date.now();
    try {
      await this.refreshNow();
    } catch {
      // Dropped: the next error (or the periodic refresh) asks again.
      return;
    }
    this.refreshes++;
    this.changed();
  }

  private async refreshNow(): Promise<void> {
    const { transport, requestTimeoutMs } = this.conn;
    const names = [...this.topics.keys()];
    const askNodes = this.conn.pool.fixed ? Promise.resolve() : this.describeCluster();
    const [res] = await Promise.all([
      names.length > 0 ? transport.describeTopics({ topics: names, excludeConfigs: true }, { timeoutMs: requestTimeoutMs }) : null,
      askNodes,
    ]);
    for (const t of res?.topics ?? []) {
      if (t.error === undefined && t.partitions.length > 0) this.apply(t.name, t.partitions);
    }
  }

  /**
   * Learns the brokers' addresses. Failures are dropped: without addresses, requests go to the
   * bootstrap broker (a broker that does not answer DescribeCluster is a single broker).
   */
  private async describeCluster(): Promise<void> {
    const { transport, requestTimeoutMs } = this.conn;
    let res: Awaited<ReturnType<typeof transport.describeCluster>>;
    try {
      res = await transport.describeCluster({}, { timeoutMs: requestTimeoutMs });
    } catch {
      return;
    }
    for (const b of res.brokers) if (b.address !== "") this.nodes.set(b.nodeId, b.address);
    this.fenced.clear();
    for (const b of res.brokers) if (b.fenced) this.fenced.add(b.nodeId);
    this.singleBroker = res.brokers.length === 1;
    if (transport instanceof BootstrapTransport)
      transport.learn(res.brokers.filter((b) => !b.fenced && b.address !== "").map((b) => b.address));
  }

  /** Stores a topic's leaders, keeping a partition's cached leader when the answer's epoch is older. */
  private apply(topic: string, partitions: readonly DescribeTopicsResponse_Partition[]): void {
    const old = this.topics.get(topic);
    const sameShape = old !== undefined && old.partitions.length === partitions.length;
    const next: PartitionLeader[] = new Array<PartitionLeader>(partitions.length);
    partitions.forEach((p, i) => {
      const index = p.partition >= 0 && p.partition < partitions.length ? p.partition : i;
      const prev = sameShape ? old.partitions[index] : undefined;
      next[index] = prev !== undefined && p.leaderEpoch < prev.leaderEpoch ? prev : { nodeId: p.leader, leaderEpoch: p.leaderEpoch };
    });
    for (let i = 0; i < next.length; i++) next[i] ??= { nodeId: -1, leaderEpoch: -1 };
    this.topics.set(topic, { partitions: next, stale: false });
    this.startAgeTimer();
  }

  private startAgeTimer(): void {
    if (this.ageTimer !== null || this.closed || this.conn.pool.fixed) return;
    this.ageTimer = setInterval(() => void this.requestRefresh(), this.conn.metadataMaxAgeMs);
    this.ageTimer.unref?.();
  }

  private changed(): void {
    for (const fn of [...this.listeners]) fn();
  }
}
