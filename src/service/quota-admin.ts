/**
 * AlterClientQuotas and DescribeClientQuotas, once for every protocol (issue 13, DESIGN.md
 * "Security"). Like the other admin changes (admin.ts), AlterClientQuotas runs on the active
 * controller: another node passes it there through the request's ControllerPort. Each entry is
 * checked and decided by src/metadata/client-quotas.ts and committed on its own; a bad entry
 * (no entity, a part given twice, an unknown key, a value that is not a positive byte rate)
 * gets INVALID_REQUEST naming the field, and nothing of it is stored. DescribeClientQuotas
 * answers from this node's image.
 */
import { RillError, rillError } from "../base/errors.ts";
import {
  type QuotaFilter,
  type QuotaMatch,
  decideAlterClientQuotas,
  describeClientQuotas,
  quotaValueField,
} from "../metadata/client-quotas.ts";
import type { MetadataImage } from "../metadata/image.ts";
import type { MetadataRecord } from "../metadata/records.ts";
import { QUOTA_KEYS, type QuotaEntity } from "../metadata/security-types.ts";
import type { ControllerPort } from "./admin-ports.ts";
import type { MetadataStore } from "../metadata/store.ts";
import type {
  AlterClientQuotasInput,
  AlterClientQuotasResult,
  AlteredQuota,
  DescribeClientQuotasInput,
  DescribeClientQuotasResult,
  QuotaEntityPart,
} from "./quota-admin-types.ts";

/** Longest AlterClientQuotas request, in entries. */
export const QUOTA_ENTRIES_MAX = 1000;

function typeName(t: QuotaEntityPart["type"]): string {
  return typeof t === "string" ? t : `unknown entity type ${t.unrecognized}`;
}

/** The QuotaEntity of an entry's parts; INVALID_REQUEST naming `field` for no parts, a repeated or unknown type. */
export function quotaEntityOf(parts: readonly QuotaEntityPart[], field: string): QuotaEntity {
  if (parts.length === 0) throw rillError("INVALID_REQUEST", `${field}.parts: at least one part (user or client id) is required`);
  let user: string | null | undefined;
  let clientId: string | null | undefined;
  for (const [i, p] of parts.entries()) {
    if (typeof p.type !== "string")
      throw rillError("INVALID_REQUEST", `${field}.parts[${i}].type: ${typeName(p.type)} (known: user, client-id)`);
    if ((p.type === "user" ? user : clientId) !== undefined)
      throw rillError("INVALID_REQUEST", `${field}.parts[${i}].type: ${p.type} is given twice`);
    if (p.type === "user") user = p.name;
    else clientId = p.name;
  }
  return { ...(user !== undefined ? { user } : {}), ...(clientId !== undefined ? { clientId } : {}) };
}

/** The filter of DescribeClientQuotas; INVALID_REQUEST naming the component at fault. */
export function quotaFilterOf(input: DescribeClientQuotasInput): QuotaFilter {
  let user: QuotaMatch | undefined;
  let clientId: QuotaMatch | undefined;
  for (const [i, c] of input.components.entries()) {
    const field = `components[${i}]`;
    if (typeof c.entityType !== "string")
      throw rillError("INVALID_REQUEST", `${field}.entity_type: ${typeName(c.entityType)} (known: user, client-id)`);
    if (typeof c.matchType !== "string")
      throw rillError(
        "INVALID_REQUEST",
        `${field}.match_type: unknown match type ${c.matchType.unrecognized} (known: exact, default, any)`,
      );
    if ((c.entityType === "user" ? user : clientId) !== undefined)
      throw rillError("INVALID_REQUEST", `${field}.entity_type: ${c.entityType} is given twice`);
    if (c.matchType === "exact" && c.match === "") throw rillError("INVALID_REQUEST", `${field}.match: empty with an exact match`);
    const m: QuotaMatch = c.matchType === "exact" ? { type: "exact", name: c.match } : { type: c.matchType };
    if (c.entityType === "user") user = m;
    else clientId = m;
  }
  return { ...(user ? { user } : {}), ...(clientId ? { clientId } : {}), strict: input.strict };
}

/** The quota requests of the admin service. */
export class QuotaAdmin {
  constructor(private readonly store: MetadataStore) {}

  /** AlterClientQuotas: each entry is stored (or checked) on its own, on the active controller. */
  async alterClientQuotas(input: AlterClientQuotasInput, controller: ControllerPort): Promise<AlterClientQuotasResult> {
    if (!controller.isActive() && !controller.forwarded) return controller.forward("alterClientQuotas", input);
    if (input.entries.length === 0) throw rillError("INVALID_REQUEST", "entries: at least one entry is required");
    if (input.entries.length > QUOTA_ENTRIES_MAX)
      throw rillError("INVALID_REQUEST", `entries: ${input.entries.length} entries, at most ${QUOTA_ENTRIES_MAX}`);
    const results: AlteredQuota[] = [];
    for (const [i, e] of input.entries.entries()) {
      const field = `entries[${i}]`;
      const decide = (img: MetadataImage): MetadataRecord[] =>
        decideAlterClientQuotas(img, { entity: quotaEntityOf(e.entity, `${field}.entity`), ops: e.ops }, field);
      const error = await this.attempt(input.validateOnly, decide);
      results.push({ entity: e.entity, ...(error ? { error } : {}) });
    }
    controller.committedHere();
    return { results };
  }

  /** DescribeClientQuotas: the matching entities of this node's image. */
  describeClientQuotas(input: DescribeClientQuotasInput): DescribeClientQuotasResult {
    const found = describeClientQuotas(this.store.image, quotaFilterOf(input));
    return {
      entries: found.map((q) => {
        const values: Record<string, number> = {};
        for (const key of QUOTA_KEYS) {
          const v = q.values[quotaValueField(key)];
          if (v !== undefined) values[key] = v;
        }
        return { entity: q.entity, values };
      }),
    };
  }

  private async attempt(validateOnly: boolean, decide: (img: MetadataImage) => MetadataRecord[]): Promise<RillError | undefined> {
    try {
      if (validateOnly) decide(this.store.image);
      else await this.store.commit(decide);
      return undefined;
    } catch (e) {
      const err = RillError.from(e);
      if (!(e instanceof RillError)) throw e; // a bug (an AssertionError) is never an answer
      return err;
    }
  }
}
