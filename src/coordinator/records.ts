/**
 * Group records: the only way consumer-group state changes. A coordinator's state is what you
 * get by replaying them in order (GroupCoordinator.replay); they live in the internal compacted
 * topic `__consumer_offsets`, so each record has a `key` and a later record with the same key
 * replaces an earlier one. Every record sets exactly one part of the state (one group's
 * metadata, one member, one offset...), so replaying only the latest record per key gives the
 * same state as replaying everything.
 *
 * Keys (group and member ids are escaped: '%' → "%25", ':' → "%3A"; topic names never hold ':'):
 *
 *   group:<group>                          GroupMetadataRecord   (group epoch, assignor, partition counts)
 *   target-epoch:<group>                   TargetEpochRecord     (epoch of the target assignment)
 *   member:<group>:<member>                MemberRecord          (subscription, timeouts, client)
 *   target:<group>:<member>                TargetAssignmentRecord
 *   assignment:<group>:<member>            CurrentAssignmentRecord (member epoch, owned, revoking)
 *   offset:<group>:<topic>:<partition>     OffsetCommitRecord
 *   classic:<group>                        ClassicGroupRecord    (a classic group's generation: Kafka's GroupMetadataValue)
 *   txn-offset:<group>:<producer id>:<topic>:<partition>   TxnOffsetRecord (an offset pending in a transaction, issue 17)
 *
 * Each has a tombstone with the same key (`...-tombstone`). Removing a member writes three
 * (assignment, target, member); deleting a group writes one per offset plus target-epoch and
 * group — a key that never got its tombstone would outlive compaction and come back on replay.
 *
 * Bytes: either one JSON document per record (`encodeGroupRecord`, tombstones included), or the
 * compacted-topic form (`toKeyValue`): the key as UTF-8 and the JSON as the value, with a null
 * value for a tombstone, which `fromKeyValue` rebuilds from the key alone. Every record carries
 * `v: 1`; an unknown type or version fails loudly.
 */
import { rillError } from "../base/errors.ts";
import type { AssignorName } from "./assignors.ts";
import { ASSIGNOR_NAMES } from "./assignors.ts";
import type { TopicPartitions } from "./partitions.ts";
import { canonical, samePartitions } from "./partitions.ts";

/** Where a member is in reconciling its current assignment toward its target. */
export type MemberState = "stable" | "unrevoked-partitions" | "unreleased-partitions";

/** The member states, for validation. */
export const MEMBER_STATES: readonly MemberState[] = ["stable", "unrevoked-partitions", "unreleased-partitions"];

/** A group exists and has this epoch, assignor, and the partition counts its target was computed from. */
export interface GroupMetadataRecord {
  readonly type: "group";
  readonly v: 1;
  readonly key: string;
  readonly groupId: string;
  /** Group epoch: grows each time membership, subscriptions or subscribed topics change. */
  readonly epoch: number;
  readonly assignor: AssignorName;
  /** Partition count of every subscribed topic that exists, when the epoch was bumped. */
  readonly topicPartitions: Readonly<Record<string, number>>;
}

/** The target assignment (the TargetAssignmentRecords of the group) is complete for this epoch. */
export interface TargetEpochRecord {
  readonly type: "target-epoch";
  readonly v: 1;
  readonly key: string;
  readonly groupId: string;
  readonly assignmentEpoch: number;
}

/** A member: who it is and what it subscribes to. */
export interface MemberRecord {
  readonly type: "member";
  readonly v: 1;
  readonly key: string;
  readonly groupId: string;
  readonly memberId: string;
  /** Static membership id, null for a dynamic member. */
  readonly instanceId: string | null;
  /** Subscribed topics, sorted, no duplicates. */
  readonly subscribedTopics: readonly string[];
  readonly rebalanceTimeoutMs: number;
  readonly sessionTimeoutMs: number;
  readonly clientId: string;
  readonly clientHost: string;
}

/** The partitions the coordinator wants a member to own. */
export interface TargetAssignmentRecord {
  readonly type: "target";
  readonly v: 1;
  readonly key: string;
  readonly groupId: string;
  readonly memberId: string;
  readonly partitions: readonly TopicPartitions[];
}

/** What a member owns now, and what it still has to give up. */
export interface CurrentAssignmentRecord {
  readonly type: "assignment";
  readonly v: 1;
  readonly key: string;
  readonly groupId: string;
  readonly memberId: string;
  /** The member's epoch; -2 while a static member is away (it keeps its partitions). */
  readonly memberEpoch: number;
  /** The epoch before the last change, accepted once more in case a response was lost. */
  readonly previousMemberEpoch: number;
  readonly state: MemberState;
  /** Partitions the member owns and keeps. */
  readonly assigned: readonly TopicPartitions[];
  /** Partitions the member still owns but must give up (it acks by leaving them out of `owned`). */
  readonly pendingRevocation: readonly TopicPartitions[];
}

/** A committed offset. */
export interface OffsetCommitRecord {
  readonly type: "offset";
  readonly v: 1;
  readonly key: string;
  readonly groupId: string;
  readonly topic: string;
  readonly partition: number;
  /** The next offset to read, as in Kafka. */
  readonly offset: number;
  readonly metadata: string;
  /** Leader epoch of the last record processed; -1 when unknown. */
  readonly leaderEpoch: number;
  readonly commitTimestampMs: number;
}

/** A member of a classic group as its generation's record holds it (binary fields base64). */
export interface ClassicMemberEntry {
  readonly memberId: string;
  readonly instanceId: string | null;
  readonly clientId: string;
  readonly clientHost: string;
  readonly rebalanceTimeoutMs: number;
  readonly sessionTimeoutMs: number;
  /** The member's metadata for the group's protocol (base64). */
  readonly metadata: string;
  /** What the leader assigned it (base64; empty before the leader's SyncGroup). */
  readonly assignment: string;
}

/**
 * A classic (JoinGroup/SyncGroup) group's current generation, as Kafka's GroupMetadataValue:
 * written when a generation's assignment is in (the leader's SyncGroup), when the group becomes
 * empty, and when a static member is replaced. The rebalance in between is not written (as in
 * Kafka): a coordinator that loads the group sees its last complete generation.
 */
export interface ClassicGroupRecord {
  readonly type: "classic-group";
  readonly v: 1;
  readonly key: string;
  readonly groupId: string;
  readonly protocolType: string;
  readonly generation: number;
  /** The protocol (assignor) chosen for the generation; null when the group is empty. */
  readonly protocol: string | null;
  readonly leader: string | null;
  /** Sorted by member id. */
  readonly members: readonly ClassicMemberEntry[];
}

/** Deletes a ClassicGroupRecord. */
export interface ClassicGroupTombstone {
  readonly type: "classic-group-tombstone";
  readonly v: 1;
  readonly key: string;
  readonly groupId: string;
}

/** Deletes a GroupMetadataRecord. */
export interface GroupTombstone {
  readonly type: "group-tombstone";
  readonly v: 1;
  readonly key: string;
  readonly groupId: string;
}

/** Deletes a TargetEpochRecord. */
export interface TargetEpochTombstone {
  readonly type: "target-epoch-tombstone";
  readonly v: 1;
  readonly key: string;
  readonly groupId: string;
}

/** Deletes a MemberRecord. */
export interface MemberTombstone {
  readonly type: "member-tombstone";
  readonly v: 1;
  readonly key: string;
  readonly groupId: string;
  readonly memberId: string;
}

/** Deletes a TargetAssignmentRecord. */
export interface TargetTombstone {
  readonly type: "target-tombstone";
  readonly v: 1;
  readonly key: string;
  readonly groupId: string;
  readonly memberId: string;
}

/** Deletes a CurrentAssignmentRecord. */
export interface AssignmentTombstone {
  readonly type: "assignment-tombstone";
  readonly v: 1;
  readonly key: string;
  readonly groupId: string;
  readonly memberId: string;
}

/** Deletes an OffsetCommitRecord. */
export interface OffsetTombstone {
  readonly type: "offset-tombstone";
  readonly v: 1;
  readonly key: string;
  readonly groupId: string;
  readonly topic: string;
  readonly partition: number;
}

/**
 * An offset committed inside a producer's transaction (TxnOffsetCommit, issue 17): pending until
 * the transaction's marker reaches this partition — then the commit writes it as an
 * OffsetCommitRecord and a tombstone of this record, the abort only the tombstone.
 */
export interface TxnOffsetRecord {
  readonly type: "txn-offset";
  readonly v: 1;
  readonly key: string;
  readonly groupId: string;
  readonly producerId: number;
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly metadata: string;
  readonly leaderEpoch: number;
  readonly commitTimestampMs: number;
}

/** Deletes a TxnOffsetRecord. */
export interface TxnOffsetTombstone {
  readonly type: "txn-offset-tombstone";
  readonly v: 1;
  readonly key: string;
  readonly groupId: string;
  readonly producerId: number;
  readonly topic: string;
  readonly partition: number;
}

/** Every tombstone. */
export type GroupTombstoneRecord =
  | TxnOffsetTombstone
  | GroupTombstone
  | TargetEpochTombstone
  | MemberTombstone
  | TargetTombstone
  | AssignmentTombstone
  | OffsetTombstone
  | ClassicGroupTombstone;

/** Every kind of group record. */
export type GroupRecord =
  | GroupMetadataRecord
  | TargetEpochRecord
  | MemberRecord
  | TargetAssignmentRecord
  | CurrentAssignmentRecord
  | OffsetCommitRecord
  | ClassicGroupRecord
  | TxnOffsetRecord
  | GroupTombstoneRecord;

// ---------------------------------------------------------------------------------------------
// Keys

/** Escapes an id for use inside a key: '%' → "%25", ':' → "%3A". */
export function escapeKeyPart(id: string): string {
  return id.replace(/%/g, "%25").replace(/:/g, "%3A");
}

/** The inverse of escapeKeyPart. */
export function unescapeKeyPart(part: string): string {
  return part.replace(/%3A/g, ":").replace(/%25/g, "%");
}

const e = escapeKeyPart;

/** Key of a group's metadata record. */
export function groupKey(groupId: string): string {
  return `group:${e(groupId)}`;
}
/** Key of a group's target-epoch record. */
export function targetEpochKey(groupId: string): string {
  return `target-epoch:${e(groupId)}`;
}
/** Key of a member record. */
export function memberKey(groupId: string, memberId: string): string {
  return `member:${e(groupId)}:${e(memberId)}`;
}
/** Key of a member's target assignment record. */
export function targetKey(groupId: string, memberId: string): string {
  return `target:${e(groupId)}:${e(memberId)}`;
}
/** Key of a member's current assignment record. */
export function assignmentKey(groupId: string, memberId: string): string {
  return `assignment:${e(groupId)}:${e(memberId)}`;
}
/** Key of a committed offset. */
export function offsetKey(groupId: string, topic: string, partition: number): string {
  return `offset:${e(groupId)}:${topic}:${partition}`;
}

/** Key of a classic group's generation record. */
export function classicKey(groupId: string): string {
  return `classic:${e(groupId)}`;
}

export function txnOffsetKey(groupId: string, producerId: number, topic: string, partition: number): string {
  return `txn-offset:${e(groupId)}:${producerId}:${e(topic)}:${partition}`;
}

/** The compaction key of any record (tombstones share the key of what they delete). */
export function groupRecordKey(r: GroupRecord): string {
  switch (r.type) {
    case "group":
    case "group-tombstone":
      return groupKey(r.groupId);
    case "target-epoch":
    case "target-epoch-tombstone":
      return targetEpochKey(r.groupId);
    case "member":
    case "member-tombstone":
      return memberKey(r.groupId, r.memberId);
    case "target":
    case "target-tombstone":
      return targetKey(r.groupId, r.memberId);
    case "assignment":
    case "assignment-tombstone":
      return assignmentKey(r.groupId, r.memberId);
    case "offset":
    case "offset-tombstone":
      return offsetKey(r.groupId, r.topic, r.partition);
    case "classic-group":
    case "classic-group-tombstone":
      return classicKey(r.groupId);
    case "txn-offset":
    case "txn-offset-tombstone":
      return txnOffsetKey(r.groupId, r.producerId, r.topic, r.partition);
  }
}

/** True for tombstones. */
export function isTombstone(r: GroupRecord): r is GroupTombstoneRecord {
  return r.type.endsWith("-tombstone");
}

// ---------------------------------------------------------------------------------------------
// Constructors: the only way the coordinator builds records (they fill `v` and `key`).

type Body<T extends GroupRecord> = Omit<T, "type" | "v" | "key">;

/** A GroupMetadataRecord. */
export function groupRecord(b: Body<GroupMetadataRecord>): GroupMetadataRecord {
  const topicPartitions: Record<string, number> = {};
  for (const t of Object.keys(b.topicPartitions).sort()) topicPartitions[t] = b.topicPartitions[t]!;
  return { type: "group", v: 1, key: groupKey(b.groupId), groupId: b.groupId, epoch: b.epoch, assignor: b.assignor, topicPartitions };
}
/** A TargetEpochRecord. */
export function targetEpochRecord(groupId: string, assignmentEpoch: number): TargetEpochRecord {
  return { type: "target-epoch", v: 1, key: targetEpochKey(groupId), groupId, assignmentEpoch };
}
/** A MemberRecord (topics sorted and deduplicated). */
export function memberRecord(b: Body<MemberRecord>): MemberRecord {
  return { type: "member", v: 1, key: memberKey(b.groupId, b.memberId), ...b, subscribedTopics: [...new Set(b.subscribedTopics)].sort() };
}
/** A TargetAssignmentRecord (partitions made canonical). */
export function targetRecord(groupId: string, memberId: string, partitions: readonly TopicPartitions[]): TargetAssignmentRecord {
  return { type: "target", v: 1, key: targetKey(groupId, memberId), groupId, memberId, partitions: canonical(partitions) };
}
/** A CurrentAssignmentRecord (partitions made canonical). */
export function assignmentRecord(b: Body<CurrentAssignmentRecord>): CurrentAssignmentRecord {
  return {
    type: "assignment",
    v: 1,
    key: assignmentKey(b.groupId, b.memberId),
    ...b,
    assigned: canonical(b.assigned),
    pendingRevocation: canonical(b.pendingRevocation),
  };
}
/** An OffsetCommitRecord. */
export function offsetRecord(b: Body<OffsetCommitRecord>): OffsetCommitRecord {
  return { type: "offset", v: 1, key: offsetKey(b.groupId, b.topic, b.partition), ...b };
}
/** A ClassicGroupRecord (members sorted by id). */
export function classicGroupRecord(b: Body<ClassicGroupRecord>): ClassicGroupRecord {
  const members = [...b.members].sort((x, y) => (x.memberId < y.memberId ? -1 : x.memberId > y.memberId ? 1 : 0));
  return { type: "classic-group", v: 1, key: classicKey(b.groupId), ...b, members };
}
/** Tombstone of a classic group's generation record. */
export function classicGroupTombstone(groupId: string): ClassicGroupTombstone {
  return { type: "classic-group-tombstone", v: 1, key: classicKey(groupId), groupId };
}
/** Tombstone of a group's metadata. */
export function groupTombstone(groupId: string): GroupTombstone {
  return { type: "group-tombstone", v: 1, key: groupKey(groupId), groupId };
}
/** Tombstone of a group's target epoch. */
export function targetEpochTombstone(groupId: string): TargetEpochTombstone {
  return { type: "target-epoch-tombstone", v: 1, key: targetEpochKey(groupId), groupId };
}
/** Tombstone of a member record. */
export function memberTombstone(groupId: string, memberId: string): MemberTombstone {
  return { type: "member-tombstone", v: 1, key: memberKey(groupId, memberId), groupId, memberId };
}
/** Tombstone of a member's target assignment. */
export function targetTombstone(groupId: string, memberId: string): TargetTombstone {
  return { type: "target-tombstone", v: 1, key: targetKey(groupId, memberId), groupId, memberId };
}
/** Tombstone of a member's current assignment. */
export function assignmentTombstone(groupId: string, memberId: string): AssignmentTombstone {
  return { type: "assignment-tombstone", v: 1, key: assignmentKey(groupId, memberId), groupId, memberId };
}
/** Tombstone of a committed offset. */
export function offsetTombstone(groupId: string, topic: string, partition: number): OffsetTombstone {
  return { type: "offset-tombstone", v: 1, key: offsetKey(groupId, topic, partition), groupId, topic, partition };
}

// ---------------------------------------------------------------------------------------------
// Bytes

/** An offset pending in producer `producerId`'s transaction (issue 17). */
export function txnOffsetRecord(b: Body<TxnOffsetRecord>): TxnOffsetRecord {
  return { type: "txn-offset", v: 1, key: txnOffsetKey(b.groupId, b.producerId, b.topic, b.partition), ...b };
}

/** Deletes a pending transactional offset (its transaction ended). */
export function txnOffsetTombstone(groupId: string, producerId: number, topic: string, partition: number): TxnOffsetTombstone {
  return {
    type: "txn-offset-tombstone",
    v: 1,
    key: txnOffsetKey(groupId, producerId, topic, partition),
    groupId,
    producerId,
    topic,
    partition,
  };
}

/** Encodes a record as one JSON document (tombstones included). */
export function encodeGroupRecord(r: GroupRecord): Buffer {
  return Buffer.from(JSON.stringify(r), "utf8");
}

/** Decodes `encodeGroupRecord` output; throws CORRUPT_MESSAGE on anything that is not a valid record. */
export function decodeGroupRecord(bytes: Uint8Array): GroupRecord {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"));
  } catch {
    throw rillError("CORRUPT_MESSAGE", "group record: not JSON");
  }
  return validateGroupRecord(v);
}

/** The compacted-topic form: key bytes' string, and the value (null for a tombstone). */
export function toKeyValue(r: GroupRecord): { key: string; value: Buffer | null } {
  return { key: r.key, value: isTombstone(r) ? null : encodeGroupRecord(r) };
}

/** Rebuilds a record from its compacted-topic form; a null value is a tombstone of `key`. */
export function fromKeyValue(key: string, value: Uint8Array | null): GroupRecord {
  if (value !== null) {
    const r = decodeGroupRecord(value);
    if (r.key !== key) throw rillError("CORRUPT_MESSAGE", `group record: key "${key}" does not match its value's "${r.key}"`);
    return r;
  }
  return tombstoneOfKey(key);
}

function tombstoneOfKey(key: string): GroupTombstoneRecord {
  const parts = key.split(":");
  const bad = (): never => {
    throw rillError("CORRUPT_MESSAGE", `group record: "${key.slice(0, 200)}" is not a group record key`);
  };
  const [kind, ...rest] = parts;
  const ids = rest.map(unescapeKeyPart);
  let r: GroupTombstoneRecord;
  if (kind === "group" && ids.length === 1) r = groupTombstone(ids[0]!);
  else if (kind === "target-epoch" && ids.length === 1) r = targetEpochTombstone(ids[0]!);
  else if (kind === "member" && ids.length === 2) r = memberTombstone(ids[0]!, ids[1]!);
  else if (kind === "target" && ids.length === 2) r = targetTombstone(ids[0]!, ids[1]!);
  else if (kind === "assignment" && ids.length === 2) r = assignmentTombstone(ids[0]!, ids[1]!);
  else if (kind === "classic" && ids.length === 1) r = classicGroupTombstone(ids[0]!);
  else if (kind === "offset" && ids.length === 3 && /^\d+$/.test(ids[2]!)) r = offsetTombstone(ids[0]!, ids[1]!, Number(ids[2]!));
  else if (kind === "txn-offset" && ids.length === 4 && /^\d+$/.test(ids[1]!) && /^\d+$/.test(ids[3]!))
    r = txnOffsetTombstone(ids[0]!, Number(ids[1]!), ids[2]!, Number(ids[3]!));
  else return bad();
  if (r.key !== key) bad();
  return r;
}

// ---------------------------------------------------------------------------------------------
// Validation of decoded JSON

type FieldKind = "string" | "int" | "nullable-string" | "strings" | "tps" | "counts" | "state" | "assignor" | "classic-members";

const COMMON: Record<string, FieldKind> = { groupId: "string" };
const MEMBER_ID: Record<string, FieldKind> = { ...COMMON, memberId: "string" };

const SCHEMAS: Record<GroupRecord["type"], Record<string, FieldKind>> = {
  group: { ...COMMON, epoch: "int", assignor: "assignor", topicPartitions: "counts" },
  "target-epoch": { ...COMMON, assignmentEpoch: "int" },
  member: {
    ...MEMBER_ID,
    instanceId: "nullable-string",
    subscribedTopics: "strings",
    rebalanceTimeoutMs: "int",
    sessionTimeoutMs: "int",
    clientId: "string",
    clientHost: "string",
  },
  target: { ...MEMBER_ID, partitions: "tps" },
  assignment: { ...MEMBER_ID, memberEpoch: "int", previousMemberEpoch: "int", state: "state", assigned: "tps", pendingRevocation: "tps" },
  offset: { ...COMMON, topic: "string", partition: "int", offset: "int", metadata: "string", leaderEpoch: "int", commitTimestampMs: "int" },
  "group-tombstone": COMMON,
  "target-epoch-tombstone": COMMON,
  "member-tombstone": MEMBER_ID,
  "target-tombstone": MEMBER_ID,
  "assignment-tombstone": MEMBER_ID,
  "offset-tombstone": { ...COMMON, topic: "string", partition: "int" },
  "classic-group": {
    ...COMMON,
    protocolType: "string",
    generation: "int",
    protocol: "nullable-string",
    leader: "nullable-string",
    members: "classic-members",
  },
  "classic-group-tombstone": COMMON,
  "txn-offset": {
    ...COMMON,
    producerId: "int",
    topic: "string",
    partition: "int",
    offset: "int",
    metadata: "string",
    leaderEpoch: "int",
    commitTimestampMs: "int",
  },
  "txn-offset-tombstone": { ...COMMON, producerId: "int", topic: "string", partition: "int" },
};

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function classicMemberOk(x: unknown): boolean {
  const m = x as Record<string, unknown>;
  return (
    typeof m === "object" &&
    m !== null &&
    typeof m["memberId"] === "string" &&
    (m["instanceId"] === null || typeof m["instanceId"] === "string") &&
    typeof m["clientId"] === "string" &&
    typeof m["clientHost"] === "string" &&
    Number.isSafeInteger(m["rebalanceTimeoutMs"]) &&
    Number.isSafeInteger(m["sessionTimeoutMs"]) &&
    typeof m["metadata"] === "string" &&
    BASE64.test(m["metadata"]) &&
    typeof m["assignment"] === "string" &&
    BASE64.test(m["assignment"])
  );
}

function fieldOk(kind: FieldKind, x: unknown): boolean {
  switch (kind) {
    case "string":
      return typeof x === "string";
    case "int":
      return Number.isSafeInteger(x);
    case "nullable-string":
      return x === null || typeof x === "string";
    case "strings":
      return Array.isArray(x) && x.every((s) => typeof s === "string");
    case "tps":
      return (
        Array.isArray(x) &&
        x.every((tp: unknown) => {
          const o = tp as { topic?: unknown; partitions?: unknown };
          return (
            typeof o === "object" &&
            o !== null &&
            typeof o.topic === "string" &&
            Array.isArray(o.partitions) &&
            o.partitions.every((p) => Number.isSafeInteger(p) && (p as number) >= 0)
          );
        }) &&
        samePartitions(x as TopicPartitions[], canonical(x as TopicPartitions[]))
      );
    case "counts":
      return (
        typeof x === "object" &&
        x !== null &&
        !Array.isArray(x) &&
        Object.values(x).every((n) => Number.isSafeInteger(n) && (n as number) >= 0)
      );
    case "state":
      return MEMBER_STATES.includes(x as MemberState);
    case "assignor":
      return ASSIGNOR_NAMES.includes(x as AssignorName);
    case "classic-members":
      return Array.isArray(x) && x.every(classicMemberOk) && new Set(x.map((m: { memberId: string }) => m.memberId)).size === x.length;
  }
}

/** Checks that a parsed value is a well-formed group record with the right key; throws CORRUPT_MESSAGE. */
export function validateGroupRecord(v: unknown): GroupRecord {
  const o = v as Record<string, unknown>;
  const head = JSON.stringify(v)?.slice(0, 200) ?? String(v);
  if (typeof o !== "object" || o === null) throw rillError("CORRUPT_MESSAGE", `group record: not an object: ${head}`);
  const schema = SCHEMAS[o["type"] as GroupRecord["type"]];
  if (schema === undefined || !Object.hasOwn(SCHEMAS, o["type"] as string))
    throw rillError("CORRUPT_MESSAGE", `group record: unknown type: ${head}`);
  if (o["v"] !== 1) throw rillError("CORRUPT_MESSAGE", `group record: unknown version: ${head}`);
  for (const [field, kind] of Object.entries(schema)) {
    if (!fieldOk(kind, o[field])) throw rillError("CORRUPT_MESSAGE", `group record: ${field} is not a valid ${kind}: ${head}`);
  }
  const r = o as unknown as GroupRecord;
  if (o["key"] !== groupRecordKey(r)) throw rillError("CORRUPT_MESSAGE", `group record: key does not match its fields: ${head}`);
  return r;
}
