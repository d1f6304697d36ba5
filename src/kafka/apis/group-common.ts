/**
 * What the group APIs share: the GroupsService of a listener (one per KafkaDeps, so its long polls
 * share the runtime's classic waiters with gRPC), a RillError as a Kafka error code, and topic ids
 * as Kafka's 16-byte UUIDs.
 */
import { RillError } from "../../base/errors.ts";
import { GroupsService } from "../../service/groups.ts";
import type { KafkaRequestContext } from "../api.ts";
import type { KafkaDeps } from "../deps.ts";
import { kafkaErrorCode } from "../error-codes.ts";

const services = new WeakMap<KafkaDeps, GroupsService>();

/** The group service of this listener. */
export function groupsOf(ctx: KafkaRequestContext): GroupsService {
  let s = services.get(ctx.deps);
  if (s === undefined) {
    const d = ctx.deps.services;
    s = new GroupsService(d.groups, d.replicas, d.timers);
    services.set(ctx.deps, s);
  }
  return s;
}

/** The Kafka error code of an outcome (0 for none), from the listener's one table (error-codes.ts). */
export function errorCode(e: RillError | null | undefined): number {
  return kafkaErrorCode(e ?? null);
}

/** Runs `fn`; a RillError it throws comes back as the error (anything else is a bug and is rethrown). */
export async function outcome<T>(fn: () => T | Promise<T>): Promise<{ value: T; error: null } | { value: null; error: RillError }> {
  try {
    return { value: await fn(), error: null };
  } catch (e) {
    return { value: null, error: RillError.from(e) };
  }
}

/** A topic id of the metadata image (32 hex digits) as Kafka's UUID bytes. */
export function topicUuid(topicId: string): Buffer {
  const b = Buffer.from(topicId, "hex");
  return b.length === 16 ? b : Buffer.alloc(16);
}

/** The topic of a Kafka UUID in the metadata image, or undefined. */
export function topicByUuid(ctx: KafkaRequestContext, id: Uint8Array): string | undefined {
  const hex = Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString("hex");
  for (const t of ctx.deps.services.replicas.image.topics.values()) if (t.topicId === hex) return t.name;
  return undefined;
}

/** A topic's Kafka UUID by name (zero when unknown). */
export function uuidOfTopic(ctx: KafkaRequestContext, topic: string): Buffer {
  const t = ctx.deps.services.replicas.image.topics.get(topic);
  return t === undefined ? Buffer.alloc(16) : topicUuid(t.topicId);
}

/** Where Kafka clients reach node `nodeId`: this node's advertised address, or another's registered Kafka address. */
export function kafkaAddressOf(ctx: KafkaRequestContext, nodeId: number): { host: string; port: number } | null {
  if (nodeId === ctx.deps.nodeId) return ctx.deps.advertised();
  const b = ctx.deps.services.replicas.image.brokers.get(nodeId) as { readonly kafkaAddress?: string } | undefined;
  const a = b?.kafkaAddress;
  if (a === undefined || a === "") return null;
  const m = /^\[?([^\]]*)\]?:(\d+)$/.exec(a);
  return m === null ? null : { host: m[1] as string, port: Number(m[2]) };
}

function int16be(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
}

function int32be(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}

function str16(s: string): Buffer {
  const bytes = Buffer.from(s, "utf8");
  return Buffer.concat([int16be(bytes.length), bytes]);
}

/** Kafka's ConsumerProtocolSubscription v0 (topics, no user data): how a KIP-848 member's subscription shows in DescribeGroups. */
export function consumerSubscriptionBytes(topics: readonly string[]): Buffer {
  return Buffer.concat([int16be(0), int32be(topics.length), ...topics.map(str16), int32be(-1)]);
}

/** Kafka's ConsumerProtocolAssignment v0 (partitions, no user data). */
export function consumerAssignmentBytes(tps: readonly { readonly topic: string; readonly partitions: readonly number[] }[]): Buffer {
  const parts: Buffer[] = [int16be(0), int32be(tps.length)];
  for (const t of tps) parts.push(str16(t.topic), int32be(t.partitions.length), ...t.partitions.map(int32be));
  parts.push(int32be(-1));
  return Buffer.concat(parts);
}

/** A consumer (KIP-848) group's state by Kafka's name. */
export function consumerStateName(state: string): string {
  return state === "" ? "" : state[0]!.toUpperCase() + state.slice(1);
}

/** 0 when `check` passes, else the Kafka code of the RillError it throws (an authorization check). */
export function deniedCode(check: () => void): number {
  try {
    check();
    return 0;
  } catch (e) {
    return errorCode(RillError.from(e));
  }
}
