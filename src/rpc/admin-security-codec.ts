/**
 * AdminService's security messages (proto/rill/v1/security.proto) <-> the domain types of
 * src/service/admin-security-types.ts.
 *
 * Enums travel into the domain by name (`ACL_OPERATION_READ` → "READ", `SCRAM_MECHANISM_SCRAM_SHA_256`
 * → "SCRAM-SHA-256"); UNSPECIFIED becomes undefined (in a filter: any value), and a number the
 * contract does not know becomes its decimal text, which the service refuses by name. The three
 * changes (CreateAcls, DeleteAcls, AlterUserScramCredentials) also go the other way, because a
 * node that is not the active controller passes them on as messages (`securityChangeCodecs`); an
 * AlterUserScramCredentials passed on carries salt and salted_password, never a password.
 */
import { create } from "@bufbuild/protobuf";
import type { RillError } from "../base/errors.ts";
import { rillErrorFromDetail } from "../protocol/grpc-errors.ts";
import type { ErrorDetail } from "../gen/rill/v1/common_pb.ts";
import {
  AclOperation,
  AclPatternType,
  AclPermission,
  AclResourceType,
  type AclBinding as ProtoAclBinding,
  type AclBindingFilter as ProtoAclBindingFilter,
  AclBindingFilterSchema,
  AclBindingSchema,
  type AlterUserScramCredentialsRequest,
  AlterUserScramCredentialsRequestSchema,
  type AlterUserScramCredentialsResponse,
  AlterUserScramCredentialsResponseSchema,
  type CreateAclsRequest,
  CreateAclsRequestSchema,
  type CreateAclsResponse,
  CreateAclsResponseSchema,
  type DeleteAclsRequest,
  DeleteAclsRequestSchema,
  type DeleteAclsResponse,
  DeleteAclsResponseSchema,
  type DescribeAclsRequest,
  type DescribeAclsResponse,
  DescribeAclsResponseSchema,
  type DescribeUserScramCredentialsRequest,
  type DescribeUserScramCredentialsResponse,
  DescribeUserScramCredentialsResponseSchema,
  ScramMechanism,
} from "../gen/rill/v1/security_pb.ts";
import type { AclBinding, ScramMechanism as DomainMechanism } from "../metadata/security-types.ts";
import type * as domain from "../service/admin-security-types.ts";
import { toErrorDetail } from "./errors.ts";

// ---- enums -----------------------------------------------------------------------------------

type EnumObject = Record<string, string | number>;

/** A proto enum number as its domain name: undefined for 0 (UNSPECIFIED), the number's text when unknown. */
function nameOf(e: EnumObject, n: number): string | undefined {
  if (n === 0) return undefined;
  const name = e[n];
  return typeof name === "string" ? name : String(n);
}

/** A domain name as its proto enum number: 0 for undefined; a number's text back to the number. */
function numberOf(e: EnumObject, name: string | undefined): number {
  if (name === undefined) return 0;
  const n = e[name];
  if (typeof n === "number") return n;
  const raw = Number(name);
  return Number.isInteger(raw) ? raw : 0;
}

function mechanismName(n: ScramMechanism): string | undefined {
  return nameOf(ScramMechanism, n)?.replaceAll("_", "-");
}

function mechanismNumber(name: string | undefined): ScramMechanism {
  return numberOf(ScramMechanism, name?.replaceAll("-", "_"));
}

function errorField(error: RillError | undefined): { error?: ErrorDetail } {
  return error ? { error: toErrorDetail(error) } : {};
}

function domainError(d: ErrorDetail | undefined): { error?: RillError } {
  return d ? { error: rillErrorFromDetail(d) } : {};
}

// ---- bindings and filters --------------------------------------------------------------------

/** A proto binding as the domain's unchecked spec. */
export function bindingSpec(b: ProtoAclBinding): domain.AclBindingSpec {
  return {
    principal: b.principal,
    host: b.host,
    resourceType: nameOf(AclResourceType, b.resourceType),
    resourceName: b.resourceName,
    patternType: nameOf(AclPatternType, b.patternType),
    operation: nameOf(AclOperation, b.operation),
    permission: nameOf(AclPermission, b.permission),
  };
}

/** A domain binding (checked or not) as a proto binding. */
export function protoBinding(b: domain.AclBindingSpec | AclBinding): ProtoAclBinding {
  return create(AclBindingSchema, {
    principal: b.principal,
    host: b.host,
    resourceType: numberOf(AclResourceType, b.resourceType),
    resourceName: b.resourceName,
    patternType: numberOf(AclPatternType, b.patternType),
    operation: numberOf(AclOperation, b.operation),
    permission: numberOf(AclPermission, b.permission),
  });
}

/** A proto binding of a response as a domain binding (the controller checked it). */
function checkedBinding(b: ProtoAclBinding): AclBinding {
  return bindingSpec(b) as AclBinding;
}

/** A proto filter (absent: any binding) as the domain's filter spec. */
export function filterSpec(f: ProtoAclBindingFilter | undefined): domain.AclFilterSpec {
  if (!f) return {};
  return {
    principal: f.principal,
    host: f.host,
    resourceType: nameOf(AclResourceType, f.resourceType),
    resourceName: f.resourceName,
    patternType: nameOf(AclPatternType, f.patternType),
    operation: nameOf(AclOperation, f.operation),
    permission: nameOf(AclPermission, f.permission),
  };
}

/** A domain filter spec as a proto filter. */
export function protoFilter(f: domain.AclFilterSpec): ProtoAclBindingFilter {
  return create(AclBindingFilterSchema, {
    ...(f.principal !== undefined ? { principal: f.principal } : {}),
    ...(f.host !== undefined ? { host: f.host } : {}),
    ...(f.resourceName !== undefined ? { resourceName: f.resourceName } : {}),
    resourceType: numberOf(AclResourceType, f.resourceType),
    patternType: numberOf(AclPatternType, f.patternType),
    operation: numberOf(AclOperation, f.operation),
    permission: numberOf(AclPermission, f.permission),
  });
}

// ---- CreateAcls / DescribeAcls / DeleteAcls --------------------------------------------------

export function decodeCreateAcls(req: CreateAclsRequest): domain.CreateAclsInput {
  return { creations: req.creations.map(bindingSpec) };
}

export function encodeCreateAclsInput(input: domain.CreateAclsInput): CreateAclsRequest {
  return create(CreateAclsRequestSchema, { creations: input.creations.map(protoBinding) });
}

export function encodeCreateAclsResult(r: domain.CreateAclsResult): CreateAclsResponse {
  return create(CreateAclsResponseSchema, {
    results: r.results.map((x) => ({ binding: protoBinding(x.binding), ...errorField(x.error) })),
  });
}

export function decodeCreateAclsResult(res: CreateAclsResponse): domain.CreateAclsResult {
  return {
    results: res.results.map((x) => ({
      binding: x.binding ? bindingSpec(x.binding) : { principal: "", host: "", resourceName: "" },
      ...domainError(x.error),
    })),
  };
}

export function decodeDescribeAcls(req: DescribeAclsRequest): domain.DescribeAclsInput {
  return { filter: filterSpec(req.filter) };
}

export function encodeDescribeAclsResult(r: domain.DescribeAclsResult): DescribeAclsResponse {
  return create(DescribeAclsResponseSchema, { bindings: r.bindings.map(protoBinding) });
}

export function decodeDeleteAcls(req: DeleteAclsRequest): domain.DeleteAclsInput {
  return { filters: req.filters.map(filterSpec) };
}

export function encodeDeleteAclsInput(input: domain.DeleteAclsInput): DeleteAclsRequest {
  return create(DeleteAclsRequestSchema, { filters: input.filters.map(protoFilter) });
}

export function encodeDeleteAclsResult(r: domain.DeleteAclsResult): DeleteAclsResponse {
  return create(DeleteAclsResponseSchema, {
    results: r.results.map((x) => ({ matched: x.matched.map(protoBinding), ...errorField(x.error) })),
  });
}

export function decodeDeleteAclsResult(res: DeleteAclsResponse): domain.DeleteAclsResult {
  return { results: res.results.map((x) => ({ matched: x.matched.map(checkedBinding), ...domainError(x.error) })) };
}

// ---- SCRAM users -----------------------------------------------------------------------------

export function decodeAlterUserScramCredentials(req: AlterUserScramCredentialsRequest): domain.AlterUserScramCredentialsInput {
  return {
    upsertions: req.upsertions.map((u) => ({
      name: u.name,
      mechanism: mechanismName(u.mechanism),
      iterations: u.iterations,
      password: u.password,
      salt: u.salt,
      saltedPassword: u.saltedPassword,
    })),
    deletions: req.deletions.map((d) => ({ name: d.name, mechanism: mechanismName(d.mechanism) })),
  };
}

export function encodeAlterUserScramCredentialsInput(input: domain.AlterUserScramCredentialsInput): AlterUserScramCredentialsRequest {
  return create(AlterUserScramCredentialsRequestSchema, {
    upsertions: input.upsertions.map((u) => ({
      name: u.name,
      mechanism: mechanismNumber(u.mechanism),
      iterations: u.iterations,
      password: u.password,
      salt: u.salt,
      saltedPassword: u.saltedPassword,
    })),
    deletions: input.deletions.map((d) => ({ name: d.name, mechanism: mechanismNumber(d.mechanism) })),
  });
}

export function encodeAlterUserScramCredentialsResult(r: domain.AlterUserScramCredentialsResult): AlterUserScramCredentialsResponse {
  return create(AlterUserScramCredentialsResponseSchema, {
    results: r.results.map((x) => ({ user: x.user, ...errorField(x.error) })),
  });
}

export function decodeAlterUserScramCredentialsResult(res: AlterUserScramCredentialsResponse): domain.AlterUserScramCredentialsResult {
  return { results: res.results.map((x) => ({ user: x.user, ...domainError(x.error) })) };
}

export function decodeDescribeUserScramCredentials(req: DescribeUserScramCredentialsRequest): domain.DescribeUserScramCredentialsInput {
  return { users: req.users };
}

export function encodeDescribeUserScramCredentialsResult(
  r: domain.DescribeUserScramCredentialsResult,
): DescribeUserScramCredentialsResponse {
  return create(DescribeUserScramCredentialsResponseSchema, {
    results: r.results.map((x) => ({
      user: x.user,
      credentials: x.credentials.map((c) => ({ mechanism: mechanismNumber(c.mechanism), iterations: c.iterations })),
      ...errorField(x.error),
    })),
  });
}

/** The mechanism name of a described credential (for clients of the domain types). */
export function describedMechanism(n: ScramMechanism): DomainMechanism | undefined {
  return mechanismName(n) as DomainMechanism | undefined;
}

// ---- forwarding ------------------------------------------------------------------------------

/** The request and response messages of each security change. */
export interface SecurityChangeMessages {
  createAcls: { request: CreateAclsRequest; response: CreateAclsResponse };
  deleteAcls: { request: DeleteAclsRequest; response: DeleteAclsResponse };
  alterUserScramCredentials: { request: AlterUserScramCredentialsRequest; response: AlterUserScramCredentialsResponse };
}

/** The codec of each security change, by method name (merged into admin-codec.ts's changeCodecs). */
export const securityChangeCodecs = {
  createAcls: { encodeInput: encodeCreateAclsInput, decodeResult: decodeCreateAclsResult },
  deleteAcls: { encodeInput: encodeDeleteAclsInput, decodeResult: decodeDeleteAclsResult },
  alterUserScramCredentials: {
    encodeInput: encodeAlterUserScramCredentialsInput,
    decodeResult: decodeAlterUserScramCredentialsResult,
  },
} as const;
