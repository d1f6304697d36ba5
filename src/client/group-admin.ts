/**
 * `GroupAdmin`: consumer-group administration over GroupService's unary calls (the calls the
 * CLI's `rill group ...` uses) — list, describe and delete groups; read, reset and commit their
 * offsets. Calls go to each group's coordinator (group-connection.ts) and are retried per the
 * client's policy.
 */

import type { MessageInitShape } from "@bufbuild/protobuf";
import { Errors, RillError } from "../base/errors.ts";
import { type ErrorDetail, OffsetSpec } from "../gen/rill/v1/common_pb.ts";
import { GroupState } from "../gen/rill/v1/group_service_pb.ts";
import { checkInt, toInt64, toNumber } from "./convert.ts";
import { ClientClosedError, fromErrorDetail, isStaleMetadata } from "./errors.ts";
import {
  type GroupClientOptions,
  type GroupConnection,
  type GroupOffset,
  type GroupTopicPartition,
  checkGroupId,
  connectGroup,
  coordinatorOf,
  groupError,
  tpName,
} from "./group-connection.ts";
import type { GroupMethods, GroupTransport } from "./group-transport.ts";
import { withRetries } from "./retry.ts";

export type { GroupOffset, GroupTopicPartition } from "./group-connection.ts";

/** A group's lifecycle state. */
export type GroupStateName = "empty" | "assigning" | "reconciling" | "stable" | "dead" | "unknown";

const STATE_NAMES: Record<number, GroupStateName> = {
  [GroupState.UNSPECIFIED]: "unknown",
  [GroupState.EMPTY]: "empty",
  [GroupState.ASSIGNING]: "assigning",
  [GroupState.RECONCILING]: "reconciling",
  [GroupState.STABLE]: "stable",
  [GroupState.DEAD]: "dead",
};

function stateName(s: GroupState): GroupStateName {
  return STATE_NAMES[s] ?? "unknown";
}

/** A group as ListGroups lists it. */
export interface GroupListing {
  readonly groupId: string;
  readonly state: GroupStateName;
  readonly members: number;
}

/** Partitions of one topic. */
export interface GroupTopicPartitions {
  readonly topic: string;
  readonly partitions: readonly number[];
}

/** A member as DescribeGroups shows it. */
export interface GroupMemberDescription {
  readonly memberId: string;
  readonly instanceId: string | null;
  readonly clientId: string;
  readonly clientHost: string;
  readonly memberEpoch: number;
  readonly topics: readonly string[];
  readonly assignment: readonly GroupTopicPartitions[];
  readonly targetAssignment: readonly GroupTopicPartitions[];
}

/** A partition's committed offset and lag. */
export interface GroupPartitionLag {
  readonly topic: string;
  readonly partition: number;
  /** -1 when the group has none. */
  readonly committedOffset: number;
  readonly logEndOffset: number;
  /** -1 when there is no committed offset. */
  readonly lag: number;
  /** Owner's member id; "" when unassigned. */
  readonly memberId: string;
}

/** A described group. */
export interface GroupDescription {
  readonly groupId: string;
  readonly state: GroupStateName;
  readonly groupEpoch: number;
  readonly assignmentEpoch: number;
  readonly assignor: string;
  readonly coordinatorId: number;
  readonly members: readonly GroupMemberDescription[];
  readonly offsets: readonly GroupPartitionLag[];
}

/** A committed offset as FetchOffsets reads it. */
export interface GroupCommittedOffset extends GroupTopicPartition {
  /** -1 when the group has none. */
  readonly offset: number;
  readonly metadata: string;
}

/** Where ResetOffsets moves a group's offsets. */
export type ResetTarget = "earliest" | "latest" | { readonly offset: number } | { readonly timestampMs: number };

function checkTopicPartitions(list: readonly GroupTopicPartitions[] | undefined, field: string): { topic: string; partitions: number[] }[] {
  return (list ?? []).map((tp, i) => {
    if (typeof tp.topic !== "string" || tp.topic.length === 0)
      throw new RillError(Errors.INVALID_ARGUMENT, `${field}[${i}].topic: not a topic name`);
    return {
      topic: tp.topic,
      partitions: (tp.partitions ?? []).map((p, j) => checkInt(p, `${field}[${i}].partitions[${j}]`, 0, 0x7fffffff)),
    };
  });
}

function fromTopicPartitions(list: readonly { topic: string; partitions: number[] }[]): GroupTopicPartitions[] {
  return list.map((tp) => ({ topic: tp.topic, partitions: [...tp.partitions] }));
}

/**
 * Group administration over GroupService's unary calls. A call about one group goes to its
 * coordinator; a call over several groups goes to each group's coordinator and rejects with the
 * first group's error; ListGroups asks every broker that is not fenced (each lists the groups it
 * coordinates) and merges the answers. NOT_COORDINATOR and the like refresh the metadata and the
 * call is retried per the client's policy.
 */
export class GroupAdmin {
  private readonly conn: GroupConnection;
  private closed = false;

  constructor(options: GroupClientOptions = {}) {
    this.conn = connectGroup(options);
  }

  /** Groups (of the given states, or all), sorted by id. */
  async listGroups(states?: readonly GroupStateName[]): Promise<GroupListing[]> {
    const wanted = (states ?? []).map((s) => {
      const entry = Object.entries(STATE_NAMES).find(([, n]) => n === s);
      if (entry === undefined || s === "unknown") throw new RillError(Errors.INVALID_ARGUMENT, `states: "${s}" is not a group state`);
      return Number(entry[0]) as GroupState;
    });
    if (this.closed) throw new ClientClosedError("group admin");
    const addresses = (await this.conn.metadata?.brokerAddresses()) ?? [this.conn.anyAddress()];
    const answers = await Promise.all(addresses.map((a) => this.callAt(a, (t, o) => t.listGroups({ states: wanted }, o))));
    const byId = new Map<string, GroupListing>();
    for (const r of answers)
      for (const g of r.groups)
        if (!byId.has(g.groupId)) byId.set(g.groupId, { groupId: g.groupId, state: stateName(g.state), members: g.members });
    return [...byId.values()].sort((a, b) => (a.groupId < b.groupId ? -1 : a.groupId > b.groupId ? 1 : 0));
  }

  /** Members, assignments, committed offsets and lag of each group, in request order. */
  async describeGroups(groupIds: readonly string[]): Promise<GroupDescription[]> {
    groupIds.forEach((g, i) => checkGroupId(g, `groupIds[${i}]`));
    const groups = await this.perGroup(groupIds, async (t, ids, o) => (await t.describeGroups({ groupIds: ids }, o)).groups);
    return groups.map((g) => {
      if (g.error !== undefined) throw groupError(g.error, g.groupId);
      return {
        groupId: g.groupId,
        state: stateName(g.state),
        groupEpoch: g.groupEpoch,
        assignmentEpoch: g.assignmentEpoch,
        assignor: g.assignor,
        coordinatorId: g.coordinatorId,
        members: g.members.map((m) => ({
          memberId: m.memberId,
          instanceId: m.instanceId ?? null,
          clientId: m.clientId,
          clientHost: m.clientHost,
          memberEpoch: m.memberEpoch,
          topics: [...m.topics],
          assignment: fromTopicPartitions(m.assignment),
          targetAssignment: fromTopicPartitions(m.targetAssignment),
        })),
        offsets: g.offsets.map((o) => ({
          topic: o.topic,
          partition: o.partition,
          committedOffset: toNumber(o.committedOffset, "committed_offset"),
          logEndOffset: toNumber(o.logEndOffset, "log_end_offset"),
          lag: toNumber(o.lag, "lag"),
          memberId: o.memberId,
        })),
      };
    });
  }

  /** A group's committed offsets (of `partitions`; an entry without partitions means the whole topic; absent: all). */
  async fetchOffsets(groupId: string, partitions?: readonly GroupTopicPartitions[]): Promise<GroupCommittedOffset[]> {
    checkGroupId(groupId, "groupId");
    const req = { groupId, partitions: checkTopicPartitions(partitions, "partitions") };
    const r = await this.call(groupId, (t, o) => t.fetchOffsets(req, o));
    return r.offsets.map((c) => {
      if (c.error !== undefined) throw fromErrorDetail(c.error, `partition ${tpName(c.topic, c.partition)}`);
      return { topic: c.topic, partition: c.partition, offset: toNumber(c.offset, "offset"), metadata: c.metadata };
    });
  }

  /**
   * Moves a group's committed offsets (only while it has no members) for `partitions` (an
   * entry without partitions: the whole topic). With `dryRun`, returns the offsets without
   * committing them.
   */
  async resetOffsets(
    groupId: string,
    partitions: readonly GroupTopicPartitions[],
    target: ResetTarget,
    options: { dryRun?: boolean } = {},
  ): Promise<GroupOffset[]> {
    checkGroupId(groupId, "groupId");
    const parts = checkTopicPartitions(partitions, "partitions");
    if (parts.length === 0) throw new RillError(Errors.INVALID_ARGUMENT, "partitions: name at least one topic");
    let spec: MessageInitShape<GroupMethods["resetOffsets"]["input"]>;
    if (target === "earliest") spec = { spec: OffsetSpec.EARLIEST };
    else if (target === "latest") spec = { spec: OffsetSpec.LATEST };
    else if (typeof target === "object" && target !== null && "offset" in target)
      spec = { offset: toInt64(checkInt(target.offset, "target.offset", 0, Number.MAX_SAFE_INTEGER), "target.offset") };
    else if (typeof target === "object" && target !== null && "timestampMs" in target) {
      spec = {
        spec: OffsetSpec.TIMESTAMP,
        timestampMs: toInt64(checkInt(target.timestampMs, "target.timestampMs", 0, Number.MAX_SAFE_INTEGER), "target.timestampMs"),
      };
    } else throw new RillError(Errors.INVALID_ARGUMENT, `target: must be "earliest", "latest", {offset} or {timestampMs}`);
    const req = { ...spec, groupId, partitions: parts, dryRun: options.dryRun ?? false };
    const r = await this.call(groupId, (t, o) => t.resetOffsets(req, o));
    return r.offsets.map((x) => {
      if (x.error !== undefined) throw fromErrorDetail(x.error, `partition ${tpName(x.topic, x.partition)}`);
      return { topic: x.topic, partition: x.partition, offset: toNumber(x.offset, "offset") };
    });
  }

  /** Commits offsets without membership (only accepted while the group has no members). */
  async commitOffsets(groupId: string, offsets: readonly GroupOffset[]): Promise<void> {
    checkGroupId(groupId, "groupId");
    const list = offsets.map((o, i) => ({
      topic: o.topic,
      partition: checkInt(o.partition, `offsets[${i}].partition`, 0, 0x7fffffff),
      offset: toInt64(checkInt(o.offset, `offsets[${i}].offset`, 0, Number.MAX_SAFE_INTEGER), `offsets[${i}].offset`),
      leaderEpoch: -1,
    }));
    const r = await this.call(groupId, (t, o) => t.commitOffsets({ groupId, memberId: "", memberEpoch: -1, offsets: list }, o));
    for (const x of r.offsets) if (x.error !== undefined) throw fromErrorDetail(x.error, `partition ${tpName(x.topic, x.partition)}`);
  }

  /**
   * Commits offsets with a producer's transaction (issue 17; `Producer.transaction`'s
   * `sendOffsets`): visible once the transaction commits. `memberId` "" and `memberEpoch` -1:
   * no membership check.
   */
  async commitOffsetsInTransaction(
    groupId: string,
    offsets: readonly GroupOffset[],
    txn: { transactionalId: string; producerId: number; producerEpoch: number; memberId: string; memberEpoch: number },
  ): Promise<void> {
    checkGroupId(groupId, "groupId");
    const list = offsets.map((o, i) => ({
      topic: o.topic,
      partition: checkInt(o.partition, `offsets[${i}].partition`, 0, 0x7fffffff),
      offset: toInt64(checkInt(o.offset, `offsets[${i}].offset`, 0, Number.MAX_SAFE_INTEGER), `offsets[${i}].offset`),
      leaderEpoch: -1,
    }));
    const req = {
      groupId,
      memberId: txn.memberId,
      memberEpoch: txn.memberEpoch,
      offsets: list,
      transactionalId: txn.transactionalId,
      producerId: BigInt(txn.producerId),
      producerEpoch: txn.producerEpoch,
    };
    const r = await this.call(groupId, (t, o) => t.commitOffsets(req, o));
    for (const x of r.offsets) if (x.error !== undefined) throw fromErrorDetail(x.error, `partition ${tpName(x.topic, x.partition)}`);
  }

  /** Deletes groups (only groups without members) and their committed offsets. */
  async deleteGroups(groupIds: readonly string[]): Promise<void> {
    groupIds.forEach((g, i) => checkGroupId(g, `groupIds[${i}]`));
    const results = await this.perGroup(groupIds, async (t, ids, o) => (await t.deleteGroups({ groupIds: ids }, o)).results);
    for (const x of results) if (x.error !== undefined) throw groupError(x.error, x.groupId);
  }

  /**
   * Deletes a group's committed offsets of `partitions` (Kafka's deleteConsumerGroupOffsets);
   * rejects with the first partition's error: GROUP_SUBSCRIBED_TO_TOPIC for a topic a live
   * member subscribes to (its offsets stay), UNKNOWN_TOPIC_OR_PARTITION; the others are deleted.
   */
  async deleteOffsets(groupId: string, partitions: readonly GroupTopicPartitions[]): Promise<void> {
    checkGroupId(groupId, "groupId");
    const parts = checkTopicPartitions(partitions, "partitions");
    if (parts.length === 0) throw new RillError(Errors.INVALID_ARGUMENT, "partitions: name at least one topic");
    const r = await this.call(groupId, (t, o) => t.deleteOffsets({ groupId, partitions: parts }, o));
    for (const x of r.results) if (x.error !== undefined) throw fromErrorDetail(x.error, `partition ${tpName(x.topic, x.partition)}`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.conn.close();
  }

  /** A call about `groupId`, at its coordinator (looked up again before each retry). */
  private call<T>(groupId: string, f: (t: GroupTransport, o: { timeoutMs: number }) => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new ClientClosedError("group admin"));
    const attempt = async (): Promise<T> =>
      f(this.conn.transportFor(await coordinatorOf(this.conn, groupId)), { timeoutMs: this.conn.requestTimeoutMs });
    return withRetries(attempt, this.conn.retry, { random: this.conn.random, onRetry: (e) => this.onRetry(e) });
  }

  /** A call to the broker at `address`. */
  private callAt<T>(address: string, f: (t: GroupTransport, o: { timeoutMs: number }) => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new ClientClosedError("group admin"));
    return withRetries(() => f(this.conn.transportFor(address), { timeoutMs: this.conn.requestTimeoutMs }), this.conn.retry, {
      random: this.conn.random,
    });
  }

  /**
   * A call over several groups: each coordinator is asked about its groups; results come back
   * in `groupIds` order. A group answered with a routing error (NOT_COORDINATOR, ...) is asked
   * again at its coordinator after a refresh, per the retry policy; when retries run out its
   * error stays in its result.
   */
  private async perGroup<R extends { readonly groupId: string; readonly error?: ErrorDetail | undefined }>(
    groupIds: readonly string[],
    f: (t: GroupTransport, ids: string[], o: { timeoutMs: number }) => Promise<readonly R[]>,
  ): Promise<R[]> {
    if (this.closed) throw new ClientClosedError("group admin");
    const results = new Map<string, R>();
    const misrouted = (g: string): boolean => {
      const e = results.get(g)?.error;
      return e === undefined ? !results.has(g) : isStaleMetadata(fromErrorDetail(e));
    };
    const attempt = async (): Promise<void> => {
      const byAddress = new Map<string, string[]>();
      for (const g of new Set(groupIds.filter(misrouted))) {
        const address = await coordinatorOf(this.conn, g);
        byAddress.set(address, [...(byAddress.get(address) ?? []), g]);
      }
      await Promise.all(
        [...byAddress].map(async ([address, ids]) => {
          for (const r of await f(this.conn.transportFor(address), ids, { timeoutMs: this.conn.requestTimeoutMs }))
            results.set(r.groupId, r);
        }),
      );
      const left = groupIds.find((g) => results.has(g) && misrouted(g));
      if (left !== undefined) throw groupError(results.get(left)!.error!, left);
    };
    try {
      await withRetries(attempt, this.conn.retry, { random: this.conn.random, onRetry: (e) => this.onRetry(e) });
    } catch (e) {
      if (!groupIds.every((g) => results.has(g))) throw e; // the call failed as a whole
    }
    return groupIds.map((g) => results.get(g)!);
  }

  private onRetry(e: unknown): void {
    if (isStaleMetadata(e)) void this.conn.metadata?.requestRefresh();
  }
}
