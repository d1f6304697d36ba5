/**
 * AlterClientQuotas and DescribeClientQuotas messages <-> the quota domain types
 * (src/service/quota-admin-types.ts), both ways for AlterClientQuotas (a node that is not the
 * active controller passes it on as a message; see `changeCodecs` in admin-codec.ts).
 * Enum values outside the known ones travel as `Unrecognized`, so the service names them.
 */
import { create } from "@bufbuild/protobuf";
import { rillErrorFromDetail } from "../protocol/grpc-errors.ts";
import {
  type AlterClientQuotasRequest,
  AlterClientQuotasRequestSchema,
  type AlterClientQuotasResponse,
  AlterClientQuotasResponseSchema,
  type ClientQuotaEntity,
  ClientQuotaEntitySchema,
  type DescribeClientQuotasRequest,
  type DescribeClientQuotasResponse,
  DescribeClientQuotasResponseSchema,
  QuotaEntityType as ProtoEntityType,
  QuotaMatchType as ProtoMatchType,
} from "../gen/rill/v1/admin_service_pb.ts";
import type { QuotaEntity } from "../metadata/security-types.ts";
import type {
  AlterClientQuotasInput,
  AlterClientQuotasResult,
  DescribeClientQuotasInput,
  DescribeClientQuotasResult,
  QuotaEntityPart,
  QuotaMatchType,
} from "../service/quota-admin-types.ts";
import { toErrorDetail } from "./errors.ts";

function entityType(t: ProtoEntityType): QuotaEntityPart["type"] {
  if (t === ProtoEntityType.USER) return "user";
  if (t === ProtoEntityType.CLIENT_ID) return "client-id";
  return { unrecognized: t };
}

function protoEntityType(t: QuotaEntityPart["type"]): ProtoEntityType {
  if (t === "user") return ProtoEntityType.USER;
  if (t === "client-id") return ProtoEntityType.CLIENT_ID;
  return t.unrecognized;
}

function matchType(t: ProtoMatchType): QuotaMatchType | { unrecognized: number } {
  if (t === ProtoMatchType.EXACT) return "exact";
  if (t === ProtoMatchType.DEFAULT) return "default";
  if (t === ProtoMatchType.ANY) return "any";
  return { unrecognized: t };
}

function parts(e: ClientQuotaEntity | undefined): QuotaEntityPart[] {
  return (e?.parts ?? []).map((p) => ({ type: entityType(p.type), name: p.name ?? null }));
}

function protoParts(list: readonly QuotaEntityPart[]): ClientQuotaEntity {
  return create(ClientQuotaEntitySchema, {
    parts: list.map((p) => ({ type: protoEntityType(p.type), ...(p.name !== null ? { name: p.name } : {}) })),
  });
}

/** A stored entity as its parts (user first). */
function entityParts(e: QuotaEntity): QuotaEntityPart[] {
  const out: QuotaEntityPart[] = [];
  if (e.user !== undefined) out.push({ type: "user", name: e.user });
  if (e.clientId !== undefined) out.push({ type: "client-id", name: e.clientId });
  return out;
}

export function decodeAlterClientQuotas(req: AlterClientQuotasRequest): AlterClientQuotasInput {
  return {
    entries: req.entries.map((e) => ({
      entity: parts(e.entity),
      ops: e.ops.map((o) => ({ key: o.key, value: o.value, remove: o.remove })),
    })),
    validateOnly: req.validateOnly,
  };
}

export function encodeAlterClientQuotasInput(input: AlterClientQuotasInput): AlterClientQuotasRequest {
  return create(AlterClientQuotasRequestSchema, {
    entries: input.entries.map((e) => ({ entity: protoParts(e.entity), ops: e.ops.map((o) => ({ ...o })) })),
    validateOnly: input.validateOnly,
  });
}

export function encodeAlterClientQuotasResult(r: AlterClientQuotasResult): AlterClientQuotasResponse {
  return create(AlterClientQuotasResponseSchema, {
    results: r.results.map((x) => ({ entity: protoParts(x.entity), ...(x.error ? { error: toErrorDetail(x.error) } : {}) })),
  });
}

export function decodeAlterClientQuotasResult(res: AlterClientQuotasResponse): AlterClientQuotasResult {
  return {
    results: res.results.map((x) => ({ entity: parts(x.entity), ...(x.error ? { error: rillErrorFromDetail(x.error) } : {}) })),
  };
}

export function decodeDescribeClientQuotas(req: DescribeClientQuotasRequest): DescribeClientQuotasInput {
  return {
    components: req.components.map((c) => ({ entityType: entityType(c.entityType), matchType: matchType(c.matchType), match: c.match })),
    strict: req.strict,
  };
}

export function encodeDescribeClientQuotasResult(r: DescribeClientQuotasResult): DescribeClientQuotasResponse {
  return create(DescribeClientQuotasResponseSchema, {
    entries: r.entries.map((e) => ({ entity: protoParts(entityParts(e.entity)), values: { ...e.values } })),
  });
}
