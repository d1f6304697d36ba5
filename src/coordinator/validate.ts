/**
 * Input checks of the group coordinator. Each throws a RillError whose message names the field
 * at fault (or returns one, for checks that concern one partition of a request).
 */
import { RillError, rillError } from "../base/errors.ts";
import { validateTopicName } from "../metadata/controller.ts";
import {
  CLIENT_ID_LENGTH_MAX,
  GROUP_ID_LENGTH_MAX,
  INSTANCE_ID_LENGTH_MAX,
  MEMBER_ID_LENGTH_MAX,
  OFFSET_METADATA_LENGTH_MAX,
  TOPICS_PER_SUBSCRIPTION_MAX,
} from "./limits.ts";
import type { TopicPartitions } from "./partitions.ts";

// biome-ignore lint/suspicious/noControlCharactersInRegex: this pattern finds control characters on purpose
const CONTROL = /[\u0000-\u001f\u007f]/;

/** A group id: 1 to GROUP_ID_LENGTH_MAX characters, no control characters; INVALID_GROUP_ID otherwise. */
export function validateGroupId(id: unknown, field = "groupId"): string {
  if (typeof id !== "string" || id.length === 0) throw rillError("INVALID_GROUP_ID", `${field}: group id is empty`);
  if (id.length > GROUP_ID_LENGTH_MAX)
    throw rillError("INVALID_GROUP_ID", `${field}: group id is longer than ${GROUP_ID_LENGTH_MAX} characters`);
  if (CONTROL.test(id)) throw rillError("INVALID_GROUP_ID", `${field}: group id holds a control character`);
  return id;
}

/** The error validateGroupId would throw, or null. */
export function groupIdError(id: unknown, field = "groupId"): RillError | null {
  try {
    validateGroupId(id, field);
    return null;
  } catch (e) {
    if (e instanceof RillError) return e;
    throw e;
  }
}

/** A client-visible id (member, instance, client id or host): a string of bounded length without control characters. */
export function validateId(id: unknown, field: string, max: number, allowEmpty: boolean): string {
  if (typeof id !== "string") throw rillError("INVALID_ARGUMENT", `${field}: must be a string`);
  if (!allowEmpty && id.length === 0) throw rillError("INVALID_ARGUMENT", `${field}: is empty`);
  if (id.length > max) throw rillError("INVALID_ARGUMENT", `${field}: is longer than ${max} characters`);
  if (CONTROL.test(id)) throw rillError("INVALID_ARGUMENT", `${field}: holds a control character`);
  return id;
}

/** A member id ("" allowed where `allowEmpty`). */
export function validateMemberId(id: unknown, allowEmpty: boolean, field = "memberId"): string {
  return validateId(id, field, MEMBER_ID_LENGTH_MAX, allowEmpty);
}

/** A static instance id. */
export function validateInstanceId(id: unknown, field = "instanceId"): string {
  return validateId(id, field, INSTANCE_ID_LENGTH_MAX, false);
}

/** A client id or host (may be empty). */
export function validateClientString(s: unknown, field: string): string {
  return validateId(s, field, CLIENT_ID_LENGTH_MAX, true);
}

/** An integer in [min, max]; INVALID_ARGUMENT naming `field` otherwise. */
export function validateInt(n: unknown, field: string, min: number, max: number): number {
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < min || n > max) {
    throw rillError("INVALID_ARGUMENT", `${field}: ${String(n)} is not an integer in [${min}, ${max}]`);
  }
  return n;
}

/** A subscription: valid topic names, at most TOPICS_PER_SUBSCRIPTION_MAX; returned sorted and deduplicated. */
export function validateSubscription(topics: unknown, field = "subscribedTopics"): string[] {
  if (!Array.isArray(topics)) throw rillError("INVALID_ARGUMENT", `${field}: must be a list of topic names`);
  const set = new Set<string>();
  topics.forEach((t: unknown, i) => {
    if (typeof t !== "string") throw rillError("INVALID_TOPIC", `${field}[${i}]: must be a string`);
    validateTopicName(t, `${field}[${i}]`);
    set.add(t);
  });
  if (set.size > TOPICS_PER_SUBSCRIPTION_MAX)
    throw rillError("INVALID_ARGUMENT", `${field}: ${set.size} topics, more than ${TOPICS_PER_SUBSCRIPTION_MAX}`);
  return [...set].sort();
}

/** A list of topic partitions (topic names valid, partitions non-negative integers). */
export function validateTopicPartitions(tps: unknown, field: string, partitionsMax: number): TopicPartitions[] {
  if (!Array.isArray(tps)) throw rillError("INVALID_ARGUMENT", `${field}: must be a list`);
  let n = 0;
  return tps.map((tp: unknown, i) => {
    const o = tp as { topic?: unknown; partitions?: unknown };
    if (typeof o !== "object" || o === null) throw rillError("INVALID_ARGUMENT", `${field}[${i}]: must be {topic, partitions}`);
    if (typeof o.topic !== "string") throw rillError("INVALID_TOPIC", `${field}[${i}].topic: must be a string`);
    validateTopicName(o.topic, `${field}[${i}].topic`);
    if (!Array.isArray(o.partitions)) throw rillError("INVALID_ARGUMENT", `${field}[${i}].partitions: must be a list`);
    n += o.partitions.length;
    if (n > partitionsMax) throw rillError("INVALID_ARGUMENT", `${field}: more than ${partitionsMax} partitions`);
    const partitions = o.partitions.map((p: unknown, j) => validateInt(p, `${field}[${i}].partitions[${j}]`, 0, 2 ** 31 - 1));
    return { topic: o.topic, partitions };
  });
}

/** Checks one offset to commit; returns the error for that partition, or null. */
export function offsetEntryError(
  o: { topic: unknown; partition: unknown; offset: unknown; metadata?: unknown; leaderEpoch?: unknown },
  field: string,
): RillError | null {
  try {
    if (typeof o.topic !== "string") throw rillError("INVALID_TOPIC", `${field}.topic: must be a string`);
    validateTopicName(o.topic, `${field}.topic`);
    validateInt(o.partition, `${field}.partition`, 0, 2 ** 31 - 1);
    validateInt(o.offset, `${field}.offset`, 0, Number.MAX_SAFE_INTEGER);
    if (o.leaderEpoch !== undefined) validateInt(o.leaderEpoch, `${field}.leaderEpoch`, -1, 2 ** 31 - 1);
    if (o.metadata !== undefined) {
      if (typeof o.metadata !== "string") throw rillError("INVALID_ARGUMENT", `${field}.metadata: must be a string`);
      if (o.metadata.length > OFFSET_METADATA_LENGTH_MAX) {
        throw rillError(
          "OFFSET_METADATA_TOO_LARGE",
          `${field}.metadata: ${o.metadata.length} characters, more than ${OFFSET_METADATA_LENGTH_MAX}`,
        );
      }
    }
    return null;
  } catch (e) {
    if (e instanceof RillError) return e;
    throw e;
  }
}

/** INVALID_ARGUMENT unless `list` is a list of at most `max` entries. */
export function checkListLength(list: unknown, field: string, max: number): void {
  if (!Array.isArray(list)) throw rillError("INVALID_ARGUMENT", `${field}: must be a list`);
  if (list.length > max) throw rillError("INVALID_ARGUMENT", `${field}: ${list.length} entries, more than ${max}`);
}
