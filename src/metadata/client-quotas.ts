/**
 * Client quotas in the metadata image (issue 13, DESIGN.md "Security"): what the controller
 * decides for AlterClientQuotas, how a ClientQuotaRecord is replayed and snapshotted, and what
 * DescribeClientQuotas matches. Kafka's model: an entity is a user and/or a client id, each part
 * either a name or `<default>`; each entity holds `producer_byte_rate` and/or
 * `consumer_byte_rate` in bytes per second. Which entity applies to a connection
 * (the precedence) is src/security/quota.ts.
 *
 * Pure: the image in, records out; nothing here writes.
 */
import { rillError } from "../base/errors.ts";
import type { ClientQuotaRecord, MetadataRecord } from "./records.ts";
import { QUOTA_KEYS, type QuotaEntity, type QuotaKey, type QuotaValues } from "./security-types.ts";

/** An entity's quotas in the image. */
export interface ClientQuotaState {
  readonly entity: QuotaEntity;
  readonly values: QuotaValues;
}

/** The part of the MetadataImage these decisions read. */
export interface QuotaImage {
  readonly clientQuotas: ReadonlyMap<string, ClientQuotaState>;
}

/** Longest user name or client id a quota entity may name (Kafka bounds neither; we do). */
export const QUOTA_ENTITY_NAME_MAX = 255;
/** Largest quota value: bytes per second that still fit exactly in a double. */
export const QUOTA_VALUE_MAX = Number.MAX_SAFE_INTEGER;

/**
 * The image's key of an entity: `user` and `client-id` parts in that order, `<default>` for a
 * default part; e.g. `user=alice`, `user=<default>/client-id=app`. Names are JSON-quoted, so a
 * name that reads `<default>` is not the default.
 */
export function quotaEntityKey(e: QuotaEntity): string {
  const parts: string[] = [];
  if (e.user !== undefined) parts.push(`user=${e.user === null ? "<default>" : JSON.stringify(e.user)}`);
  if (e.clientId !== undefined) parts.push(`client-id=${e.clientId === null ? "<default>" : JSON.stringify(e.clientId)}`);
  return parts.join("/");
}

/** The entity as people read it: `user=alice/client-id=<default>` (names unquoted). */
export function describeQuotaEntity(e: QuotaEntity): string {
  const parts: string[] = [];
  if (e.user !== undefined) parts.push(`user=${e.user ?? "<default>"}`);
  if (e.clientId !== undefined) parts.push(`client-id=${e.clientId ?? "<default>"}`);
  return parts.join("/");
}

const VALUE_FIELD: Record<QuotaKey, keyof QuotaValues> = {
  producer_byte_rate: "producerByteRate",
  consumer_byte_rate: "consumerByteRate",
};

/** The QuotaValues field of a quota key. */
export function quotaValueField(key: QuotaKey): keyof QuotaValues {
  return VALUE_FIELD[key];
}

/** Replays a ClientQuotaRecord into the image's quotas; an entity left with no value is dropped. */
export function applyClientQuota(quotas: Map<string, ClientQuotaState>, r: ClientQuotaRecord): void {
  const k = quotaEntityKey(r.entity);
  const values: { -readonly [K in keyof QuotaValues]: QuotaValues[K] } = { ...quotas.get(k)?.values };
  if (r.value === null) delete values[VALUE_FIELD[r.key]];
  else values[VALUE_FIELD[r.key]] = r.value;
  if (Object.keys(values).length === 0) quotas.delete(k);
  else quotas.set(k, { entity: { ...r.entity }, values });
}

/** The records that rebuild `quotas` in a fresh image (one per entity and key). */
export function clientQuotaSnapshot(quotas: ReadonlyMap<string, ClientQuotaState>): ClientQuotaRecord[] {
  const out: ClientQuotaRecord[] = [];
  for (const q of quotas.values()) {
    for (const key of QUOTA_KEYS) {
      const value = q.values[VALUE_FIELD[key]];
      if (value !== undefined) out.push({ type: "client-quota", v: 1, entity: { ...q.entity }, key, value });
    }
  }
  return out;
}

/** One change of AlterClientQuotas: set `key` to `value`, or remove it. */
export interface QuotaOp {
  readonly key: string;
  /** Bytes per second; ignored with `remove`. */
  readonly value: number;
  readonly remove: boolean;
}

/** One entry of AlterClientQuotas: an entity and its changes. */
export interface QuotaAlteration {
  readonly entity: QuotaEntity;
  readonly ops: readonly QuotaOp[];
}

/** Throws INVALID_REQUEST naming `field` unless `e` names a user and/or a client id properly. */
export function validateQuotaEntity(e: QuotaEntity, field: string): void {
  if (e.user === undefined && e.clientId === undefined)
    throw rillError("INVALID_REQUEST", `${field}: the entity names neither a user nor a client id`);
  for (const [part, v] of [
    ["user", e.user],
    ["client_id", e.clientId],
  ] as const) {
    if (v === undefined || v === null) continue;
    if (v.length === 0) throw rillError("INVALID_REQUEST", `${field}.${part}: empty; use the default entity instead`);
    if (v.length > QUOTA_ENTITY_NAME_MAX)
      throw rillError("INVALID_REQUEST", `${field}.${part}: longer than ${QUOTA_ENTITY_NAME_MAX} characters`);
  }
}

/** Throws INVALID_REQUEST naming `field` unless `op` is a known key with a legal value. */
function validateQuotaOp(op: QuotaOp, field: string): QuotaKey {
  if (!(QUOTA_KEYS as readonly string[]).includes(op.key))
    throw rillError("INVALID_REQUEST", `${field}.key: unknown quota "${op.key}" (known: ${QUOTA_KEYS.join(", ")})`);
  if (!op.remove && !(Number.isFinite(op.value) && op.value > 0 && op.value <= QUOTA_VALUE_MAX))
    throw rillError("INVALID_REQUEST", `${field}.value: ${op.value} is not a byte rate in (0, ${QUOTA_VALUE_MAX}]`);
  return op.key as QuotaKey;
}

/**
 * The records of one AlterClientQuotas entry (`field` names it in errors), or a RillError
 * INVALID_REQUEST: no entity, an unknown key, a value that is not a positive byte rate, a key
 * changed twice. Removing a key that is not set is no change, as in Kafka.
 */
export function decideAlterClientQuotas(image: QuotaImage, a: QuotaAlteration, field: string): MetadataRecord[] {
  validateQuotaEntity(a.entity, `${field}.entity`);
  if (a.ops.length === 0) throw rillError("INVALID_REQUEST", `${field}.ops: at least one operation is required`);
  const seen = new Set<string>();
  const current = image.clientQuotas.get(quotaEntityKey(a.entity))?.values ?? {};
  const out: MetadataRecord[] = [];
  for (const [i, op] of a.ops.entries()) {
    const key = validateQuotaOp(op, `${field}.ops[${i}]`);
    if (seen.has(key)) throw rillError("INVALID_REQUEST", `${field}.ops[${i}].key: "${key}" is changed twice`);
    seen.add(key);
    if (op.remove && current[VALUE_FIELD[key]] === undefined) continue;
    const entity: QuotaEntity = {
      ...(a.entity.user !== undefined ? { user: a.entity.user } : {}),
      ...(a.entity.clientId !== undefined ? { clientId: a.entity.clientId } : {}),
    };
    out.push({ type: "client-quota", v: 1, entity, key, value: op.remove ? null : op.value });
  }
  return out;
}

/** How a DescribeClientQuotas filter component matches one part of an entity. */
export type QuotaMatch =
  | { readonly type: "exact"; readonly name: string }
  /** The `<default>` entity of the part. */
  | { readonly type: "default" }
  /** Any name or the default, as long as the entity has the part. */
  | { readonly type: "any" };

/** DescribeClientQuotas: conditions on the parts; `strict`: entities with other parts do not match. */
export interface QuotaFilter {
  readonly user?: QuotaMatch;
  readonly clientId?: QuotaMatch;
  readonly strict: boolean;
}

function matchesPart(v: string | null | undefined, m: QuotaMatch | undefined): boolean {
  if (m === undefined) return true;
  if (v === undefined) return false;
  if (m.type === "any") return true;
  if (m.type === "default") return v === null;
  return v === m.name;
}

/** The entities of the image that `f` matches, sorted by their key (Kafka's filter semantics). */
export function describeClientQuotas(image: QuotaImage, f: QuotaFilter): ClientQuotaState[] {
  const out: Array<[string, ClientQuotaState]> = [];
  for (const [k, q] of image.clientQuotas) {
    if (!matchesPart(q.entity.user, f.user) || !matchesPart(q.entity.clientId, f.clientId)) continue;
    if (f.strict && ((q.entity.user !== undefined && !f.user) || (q.entity.clientId !== undefined && !f.clientId))) continue;
    out.push([k, q]);
  }
  return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([, q]) => q);
}
