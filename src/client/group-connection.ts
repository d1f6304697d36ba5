/**
 * What the group clients (GroupConsumer, GroupAdmin) share: how they reach the brokers — a fixed
 * `groupTransport`, or each group's coordinator (the leader of partition `murmur2(groupId) % 50`
 * of `__consumer_offsets`) found through a MetadataCache, over a GroupService client that shares
 * the broker's channel with the metadata calls — and the checks and error wording both use.
 */

import { Errors, RillError } from "../base/errors.ts";
import type { Random } from "../base/random.ts";
import type { ErrorDetail } from "../gen/rill/v1/common_pb.ts";
import { type ClientOptions, connect } from "./connection.ts";
import { fromErrorDetail } from "./errors.ts";
import { GrpcGroupTransport, type GroupTransport } from "./group-transport.ts";
import { GrpcTransport } from "./grpc-transport.ts";
import { type Instrumentation, instrumentation } from "./instrumentation.ts";
import { MetadataCache } from "./metadata.ts";
import { type RetryPolicy, defaultRandom, retryPolicy } from "./retry.ts";

/** One partition of one topic. */
export interface GroupTopicPartition {
  readonly topic: string;
  readonly partition: number;
}

/** An offset to commit: the next offset to read, as in Kafka. */
export interface GroupOffset extends GroupTopicPartition {
  readonly offset: number;
}

/** Options of the group clients (besides ClientOptions). */
export interface GroupClientOptions extends ClientOptions {
  /** A GroupService transport to use instead of opening one (not closed by the client). */
  readonly groupTransport?: GroupTransport | undefined;
}

/**
 * How the group clients reach the brokers: with a `groupTransport` given, every call goes to it;
 * otherwise each call goes to the group's coordinator, found through a MetadataCache (the leader
 * of the group's `__consumer_offsets` partition), over a GroupService client that shares the
 * broker's channel with the metadata calls (one connection per broker).
 */
export interface GroupConnection {
  readonly retry: RetryPolicy;
  readonly random: Random;
  readonly requestTimeoutMs: number;
  /** The `logger` and `onEvent` hooks. */
  readonly instr: Instrumentation;
  /** Where coordinators are looked up; null with a fixed `groupTransport`. */
  readonly metadata: MetadataCache | null;
  /** The GroupService transport of a broker (the fixed one, whatever the address, when given). */
  transportFor(address: string): GroupTransport;
  /** Any broker's address: the bootstrap broker that last answered. */
  anyAddress(): string;
  /** Closes what the connection opened. */
  close(): void;
}

/** The connection `options` describe: a fixed GroupTransport, or coordinators found in the metadata. */
export function connectGroup(options: GroupClientOptions): GroupConnection {
  const fixed = options.groupTransport;
  if (fixed !== undefined) {
    const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    if (!Number.isInteger(requestTimeoutMs) || requestTimeoutMs <= 0) {
      throw new RangeError(`requestTimeoutMs: ${requestTimeoutMs} is not a positive integer`);
    }
    const base = {
      retry: retryPolicy(options.retry),
      random: options.random ?? defaultRandom(),
      requestTimeoutMs,
      instr: instrumentation(options),
    };
    return { ...base, metadata: null, transportFor: () => fixed, anyAddress: () => fixed.address, close: () => undefined };
  }
  const conn = connect(options);
  const groups = new Map<string, GroupTransport>();
  return {
    retry: conn.retry,
    random: conn.random,
    requestTimeoutMs: conn.requestTimeoutMs,
    instr: conn.instr,
    metadata: new MetadataCache(conn),
    transportFor(address) {
      let g = groups.get(address);
      if (g === undefined) {
        const t = conn.pool.get(address);
        g =
          t instanceof GrpcTransport
            ? new GrpcGroupTransport(address, { channel: t.channel, security: t.security })
            : new GrpcGroupTransport(t.address, { security: conn.security });
        groups.set(address, g);
      }
      return g;
    },
    anyAddress: () => conn.transport.address,
    close() {
      this.metadata?.close();
      for (const g of groups.values()) g.close();
      groups.clear();
      if (conn.owned) conn.transport.close();
    },
  };
}

/**
 * The address of `groupId`'s coordinator as the metadata knows it after any refresh under way;
 * any broker's when it is not known (that broker answers NOT_COORDINATOR or
 * COORDINATOR_NOT_AVAILABLE, which refreshes the metadata).
 */
export async function coordinatorOf(conn: GroupConnection, groupId: string): Promise<string> {
  if (conn.metadata === null) return conn.anyAddress();
  await conn.metadata.settled();
  try {
    return (await conn.metadata.coordinatorAddress(groupId)) ?? conn.anyAddress();
  } catch {
    return conn.anyAddress(); // no __consumer_offsets yet, or no broker answered: ask any broker
  }
}

/** "topic-partition", for messages. */
export function tpName(topic: string, partition: number): string {
  return `${topic}-${partition}`;
}

/** A group's ErrorDetail as a RillError, prefixed with `group "G"` unless the message names the group. */
export function groupError(detail: ErrorDetail, groupId: string): RillError {
  const e = fromErrorDetail(detail);
  return e.message.includes(groupId) ? e : new RillError(e.kind, `group "${groupId}": ${e.message}`);
}

/** Group ids: 1 to 249 characters (checked before anything is sent). */
export function checkGroupId(groupId: unknown, field: string): string {
  if (typeof groupId !== "string" || groupId.length === 0 || groupId.length > 249) {
    const what =
      typeof groupId !== "string"
        ? "is not a string"
        : groupId.length === 0
          ? "is empty"
          : `has ${groupId.length} characters (at most 249)`;
    throw new RillError(Errors.INVALID_GROUP_ID, `${field}: group id ${what}`);
  }
  return groupId;
}
