/**
 * ACL decisions, Kafka's model (KIP-11, KIP-290; the semantics of Kafka's StandardAuthorizer):
 * bindings in, allow or deny out. Nothing here reads the network, the clock or the metadata store:
 * the caller builds an `Authorizer` from the image's bindings and asks it.
 *
 * A request by `principal` from `host` to do `operation` on a resource is decided so:
 * 1. a super user is allowed everything;
 * 2. the bindings that apply are those whose resource pattern matches (LITERAL: the same name, or
 *    the name `*` = every resource of the type; PREFIXED: the name starts with the prefix), whose
 *    principal is the caller's or `User:*`, and whose host is the caller's or `*`;
 * 3. a DENY binding of the operation itself or of ALL denies — DENY wins over every ALLOW;
 * 4. otherwise an ALLOW binding of the operation, of ALL, or of an operation that implies it
 *    (READ, WRITE, DELETE, ALTER imply DESCRIBE; ALTER_CONFIGS implies DESCRIBE_CONFIGS) allows;
 * 5. no ALLOW binding = denied.
 * Implication works for ALLOW only, as in Kafka: DENY READ does not deny DESCRIBE, and DENY
 * DESCRIBE does not deny READ.
 */
import { rillError } from "../base/errors.ts";
import {
  ACL_OPERATIONS,
  ACL_PERMISSIONS,
  type AclBinding,
  type AclOperation,
  type AclPermission,
  CLUSTER_RESOURCE,
  PATTERN_TYPES,
  type PatternType,
  type Principal,
  RESOURCE_TYPES,
  type ResourceType,
} from "../metadata/security-types.ts";

/** The principal of a binding that matches every principal. */
export const WILDCARD_PRINCIPAL: Principal = "User:*";
/** The host of a binding that matches every client address. */
export const WILDCARD_HOST = "*";
/** The LITERAL resource name that matches every resource of its type. */
export const WILDCARD_RESOURCE = "*";

/** Longest principal name, resource name and host a binding may carry. */
export const ACL_PRINCIPAL_NAME_CHARS_MAX = 255;
export const ACL_RESOURCE_NAME_CHARS_MAX = 1024;

/** The operations an ALLOW of `operation` also allows (besides itself and ALL). */
const IMPLIED_BY: Readonly<Partial<Record<AclOperation, readonly AclOperation[]>>> = {
  DESCRIBE: ["READ", "WRITE", "DELETE", "ALTER"],
  DESCRIBE_CONFIGS: ["ALTER_CONFIGS"],
};

/**
 * The operations a binding may name per resource type (Kafka's `AclEntry.supportedOperations`,
 * without CLUSTER_ACTION, which Rill's members authenticate by membership instead).
 */
export const SUPPORTED_OPERATIONS: Readonly<Record<ResourceType, readonly AclOperation[]>> = {
  TOPIC: ["READ", "WRITE", "CREATE", "DESCRIBE", "DELETE", "ALTER", "DESCRIBE_CONFIGS", "ALTER_CONFIGS", "ALL"],
  GROUP: ["READ", "DESCRIBE", "DELETE", "ALL"],
  CLUSTER: ["CREATE", "DESCRIBE_CONFIGS", "ALTER_CONFIGS", "IDEMPOTENT_WRITE", "ALTER", "DESCRIBE", "ALL"],
  TRANSACTIONAL_ID: ["DESCRIBE", "WRITE", "ALL"],
};

/** Whether an ALLOW binding of `granted` allows `requested`. */
export function allowImplies(granted: AclOperation, requested: AclOperation): boolean {
  if (granted === "ALL" || granted === requested) return true;
  return IMPLIED_BY[requested]?.includes(granted) ?? false;
}

/** Whether a DENY binding of `denied` denies `requested` (no implication for DENY). */
export function denyCovers(denied: AclOperation, requested: AclOperation): boolean {
  return denied === "ALL" || denied === requested;
}

/** `::ffff:1.2.3.4` (an IPv4 client on a dual-stack socket) → `1.2.3.4`; other hosts unchanged. */
export function normalizeHost(host: string): string {
  const m = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(host);
  return m ? m[1]! : host;
}

/** The bindings of one resource type, indexed by how their pattern matches. */
interface TypeIndex {
  readonly literal: Map<string, AclBinding[]>;
  readonly wildcard: AclBinding[];
  readonly prefixed: Map<string, AclBinding[]>;
}

function push<K>(map: Map<K, AclBinding[]>, key: K, b: AclBinding): void {
  const list = map.get(key);
  if (list) list.push(b);
  else map.set(key, [b]);
}

/**
 * Decides requests against a fixed set of bindings. Build a new one when the bindings change
 * (the metadata image's ACLs); a decision looks up the resource's own name, the wildcard and the
 * name's prefixes, never every binding.
 */
export class Authorizer {
  private readonly byType = new Map<ResourceType, TypeIndex>();
  private readonly superUsers: ReadonlySet<Principal>;
  /** Number of bindings decided over. */
  readonly size: number;

  constructor(bindings: readonly AclBinding[], superUsers: ReadonlySet<Principal>) {
    this.superUsers = superUsers;
    this.size = bindings.length;
    for (const b of bindings) {
      let index = this.byType.get(b.resourceType);
      if (!index) {
        index = { literal: new Map(), wildcard: [], prefixed: new Map() };
        this.byType.set(b.resourceType, index);
      }
      if (b.patternType === "PREFIXED") push(index.prefixed, b.resourceName, b);
      else if (b.resourceName === WILDCARD_RESOURCE) index.wildcard.push(b);
      else push(index.literal, b.resourceName, b);
    }
  }

  /** Whether `principal` from `host` may do `operation` on the resource. */
  authorize(principal: Principal, host: string, operation: AclOperation, resourceType: ResourceType, resourceName: string): boolean {
    if (this.superUsers.has(principal)) return true;
    const index = this.byType.get(resourceType);
    if (!index) return false;
    const clientHost = normalizeHost(host);
    let allowed = false;
    for (const b of this.candidates(index, resourceName)) {
      if (b.principal !== principal && b.principal !== WILDCARD_PRINCIPAL) continue;
      if (b.host !== WILDCARD_HOST && b.host !== clientHost) continue;
      if (b.permission === "DENY") {
        if (denyCovers(b.operation, operation)) return false;
      } else if (!allowed && allowImplies(b.operation, operation)) {
        allowed = true;
      }
    }
    return allowed;
  }

  /**
   * Whether `principal` from `host` may do `operation` on at least one resource of the type —
   * Kafka's `authorizeByResourceType` (e.g. InitProducerId without IDEMPOTENT_WRITE on the cluster
   * is allowed with WRITE on any topic). Allowed when an applicable ALLOW binding names a
   * resource (literal name or prefix) that no applicable DENY covers: a DENY on LITERAL `*`
   * covers all, a DENY on a literal name covers that name, a DENY prefix covers the names and
   * longer prefixes that start with it.
   */
  authorizeByResourceType(principal: Principal, host: string, operation: AclOperation, resourceType: ResourceType): boolean {
    if (this.superUsers.has(principal)) return true;
    const index = this.byType.get(resourceType);
    if (!index) return false;
    const clientHost = normalizeHost(host);
    const applies = (b: AclBinding): boolean =>
      (b.principal === principal || b.principal === WILDCARD_PRINCIPAL) && (b.host === WILDCARD_HOST || b.host === clientHost);
    const all = [...index.wildcard, ...[...index.literal.values()].flat(), ...[...index.prefixed.values()].flat()].filter(applies);
    const denies = all.filter((b) => b.permission === "DENY" && denyCovers(b.operation, operation));
    if (denies.some((b) => b.patternType === "LITERAL" && b.resourceName === WILDCARD_RESOURCE)) return false;
    const deniedLiterals = new Set(denies.filter((b) => b.patternType === "LITERAL").map((b) => b.resourceName));
    const deniedPrefixes = denies.filter((b) => b.patternType === "PREFIXED").map((b) => b.resourceName);
    const coveredByPrefix = (name: string): boolean => deniedPrefixes.some((p) => name.startsWith(p));
    return all.some((b) => {
      if (b.permission !== "ALLOW" || !allowImplies(b.operation, operation)) return false;
      if (b.patternType === "PREFIXED") return !coveredByPrefix(b.resourceName);
      if (b.resourceName === WILDCARD_RESOURCE) return true;
      return !deniedLiterals.has(b.resourceName) && !coveredByPrefix(b.resourceName);
    });
  }

  /** Whether the principal is a super user. */
  isSuperUser(principal: Principal): boolean {
    return this.superUsers.has(principal);
  }

  private *candidates(index: TypeIndex, name: string): Generator<AclBinding> {
    const literal = index.literal.get(name);
    if (literal) yield* literal;
    yield* index.wildcard;
    if (index.prefixed.size === 0) return;
    if (index.prefixed.size < name.length) {
      for (const [prefix, list] of index.prefixed) if (name.startsWith(prefix)) yield* list;
    } else {
      for (let end = 1; end <= name.length; end++) {
        const list = index.prefixed.get(name.slice(0, end));
        if (list) yield* list;
      }
    }
  }
}

/** What an AuthorizerCache reads of the metadata image. */
export interface AclSource {
  readonly aclVersion: number;
  aclBindings(): AclBinding[];
}

/**
 * The Authorizer of the current metadata image, rebuilt only when the bindings changed: when
 * `aclVersion` moved, or when the image object itself was replaced (a snapshot installed on a
 * lagging node starts a new image, whose version count starts again).
 */
export class AuthorizerCache {
  private source: AclSource | null = null;
  private version = -1;
  private current: Authorizer | null = null;

  constructor(private readonly superUsers: ReadonlySet<Principal>) {}

  /** The Authorizer over `image`'s bindings. */
  of(image: AclSource): Authorizer {
    if (this.current === null || this.source !== image || this.version !== image.aclVersion) {
      this.current = new Authorizer(image.aclBindings(), this.superUsers);
      this.source = image;
      this.version = image.aclVersion;
    }
    return this.current;
  }
}

const CONTROL = /\p{Cc}/u;

/** A principal's problem, or undefined when it is `User:<name>` with a valid name. */
function principalProblem(principal: string): string | undefined {
  const colon = principal.indexOf(":");
  if (colon < 0) return `principal "${principal}" is not of the form User:<name>`;
  const type = principal.slice(0, colon);
  const name = principal.slice(colon + 1);
  if (type !== "User") return `principal "${principal}": type "${type}" is not supported (only User)`;
  if (name.length === 0) return `principal "${principal}": the name is empty`;
  if (name.length > ACL_PRINCIPAL_NAME_CHARS_MAX) return `principal: the name is longer than ${ACL_PRINCIPAL_NAME_CHARS_MAX} characters`;
  if (CONTROL.test(name)) return `principal "${principal}": the name has a control character`;
  return undefined;
}

/** Whether `host` is an IPv4 or IPv6 address. */
export function isIpAddress(host: string): boolean {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (v4) return v4.slice(1).every((p) => Number(p) <= 255 && (p === "0" || !p.startsWith("0")));
  return /^[0-9a-f:.]+$/i.test(host) && host.includes(":") && URL.canParse(`http://[${host}]/`);
}

/** Checks a principal given alone (e.g. a filter's): INVALID_REQUEST naming the problem. */
export function validatePrincipal(principal: string): asserts principal is Principal {
  const problem = principalProblem(principal);
  if (problem) throw rillError("INVALID_REQUEST", problem);
}

/**
 * Checks a binding before it is stored: INVALID_REQUEST naming the field at fault. A binding
 * that passes is one the authorizer can decide on.
 */
export function validateBinding(b: AclBinding): void {
  const fail = (msg: string): never => {
    throw rillError("INVALID_REQUEST", `acl binding: ${msg}`);
  };
  const problem = principalProblem(String(b.principal));
  if (problem) fail(problem);
  if (!(RESOURCE_TYPES as readonly string[]).includes(b.resourceType))
    fail(`unknown resource type "${String(b.resourceType)}" (one of ${RESOURCE_TYPES.join(", ")})`);
  if (!(PATTERN_TYPES as readonly string[]).includes(b.patternType))
    fail(`unknown pattern type "${String(b.patternType)}" (LITERAL or PREFIXED)`);
  if (!(ACL_OPERATIONS as readonly string[]).includes(b.operation))
    fail(`unknown operation "${String(b.operation)}" (one of ${ACL_OPERATIONS.join(", ")})`);
  if (!(ACL_PERMISSIONS as readonly string[]).includes(b.permission)) fail(`unknown permission "${String(b.permission)}" (ALLOW or DENY)`);
  if (b.host.length === 0) fail(`host is empty (an IP address, or * for every host)`);
  if (b.host !== WILDCARD_HOST && !isIpAddress(b.host)) fail(`host "${b.host}" is not an IP address or * (host names are not matched)`);
  if (b.resourceName.length === 0) fail("resource name is empty");
  if (b.resourceName.length > ACL_RESOURCE_NAME_CHARS_MAX) fail(`resource name is longer than ${ACL_RESOURCE_NAME_CHARS_MAX} characters`);
  if (CONTROL.test(b.resourceName)) fail("resource name has a control character");
  if (b.resourceType === "CLUSTER") {
    if (b.resourceName !== CLUSTER_RESOURCE) fail(`the only CLUSTER resource name is ${CLUSTER_RESOURCE}, not "${b.resourceName}"`);
    if (b.patternType !== "LITERAL") fail("a CLUSTER binding's pattern type must be LITERAL");
  }
  if (b.patternType === "PREFIXED" && b.resourceName === WILDCARD_RESOURCE)
    fail(`PREFIXED "*" matches only names starting with "*": use LITERAL "*" for every ${b.resourceType}`);
  if (!SUPPORTED_OPERATIONS[b.resourceType].includes(b.operation))
    fail(`operation ${b.operation} does not apply to ${b.resourceType} (one of ${SUPPORTED_OPERATIONS[b.resourceType].join(", ")})`);
}

/** Two bindings are the same binding when every field is equal. */
export function sameBinding(a: AclBinding, b: AclBinding): boolean {
  return (
    a.principal === b.principal &&
    a.host === b.host &&
    a.resourceType === b.resourceType &&
    a.resourceName === b.resourceName &&
    a.patternType === b.patternType &&
    a.operation === b.operation &&
    a.permission === b.permission
  );
}

/** A key equal for equal bindings (for sets and maps of bindings). */
export function bindingKey(b: AclBinding): string {
  return JSON.stringify([b.principal, b.host, b.resourceType, b.resourceName, b.patternType, b.operation, b.permission]);
}

/**
 * Pattern types a filter may ask for: a binding's own (LITERAL, PREFIXED), ANY (a binding of any
 * pattern type with exactly the filter's name) or MATCH (every binding that would apply to a
 * resource of the filter's name: the literal one, the `*` wildcard and matching prefixes).
 */
export type PatternTypeFilter = PatternType | "ANY" | "MATCH";

/**
 * Kafka's AclBindingFilter: a field left undefined matches any value. Used by DescribeAcls and
 * DeleteAcls.
 */
export interface AclBindingFilter {
  readonly principal?: Principal | undefined;
  readonly host?: string | undefined;
  readonly resourceType?: ResourceType | undefined;
  readonly resourceName?: string | undefined;
  /** Undefined = ANY. */
  readonly patternType?: PatternTypeFilter | undefined;
  readonly operation?: AclOperation | undefined;
  readonly permission?: AclPermission | undefined;
}

/** The filter that matches every binding. */
export const ANY_BINDING: AclBindingFilter = {};

/** Checks a filter's fields: INVALID_REQUEST naming the field at fault. */
export function validateFilter(f: AclBindingFilter): void {
  const fail = (msg: string): never => {
    throw rillError("INVALID_REQUEST", `acl filter: ${msg}`);
  };
  if (f.principal !== undefined) {
    const problem = principalProblem(String(f.principal));
    if (problem) fail(problem);
  }
  if (f.resourceType !== undefined && !(RESOURCE_TYPES as readonly string[]).includes(f.resourceType))
    fail(`unknown resource type "${String(f.resourceType)}"`);
  if (f.patternType !== undefined && ![...PATTERN_TYPES, "ANY", "MATCH"].includes(f.patternType))
    fail(`unknown pattern type "${String(f.patternType)}" (LITERAL, PREFIXED, ANY or MATCH)`);
  if (f.operation !== undefined && !(ACL_OPERATIONS as readonly string[]).includes(f.operation))
    fail(`unknown operation "${String(f.operation)}"`);
  if (f.permission !== undefined && !(ACL_PERMISSIONS as readonly string[]).includes(f.permission))
    fail(`unknown permission "${String(f.permission)}"`);
  if (f.patternType === "MATCH" && f.resourceName === undefined) fail("pattern type MATCH needs a resource name to match against");
}

/** Whether `binding` matches `filter` (Kafka's AclBindingFilter.matches). */
export function matchesFilter(filter: AclBindingFilter, binding: AclBinding): boolean {
  if (filter.principal !== undefined && filter.principal !== binding.principal) return false;
  if (filter.host !== undefined && filter.host !== binding.host) return false;
  if (filter.operation !== undefined && filter.operation !== binding.operation) return false;
  if (filter.permission !== undefined && filter.permission !== binding.permission) return false;
  if (filter.resourceType !== undefined && filter.resourceType !== binding.resourceType) return false;
  return patternMatches(filter.patternType ?? "ANY", filter.resourceName, binding);
}

function patternMatches(patternType: PatternTypeFilter, name: string | undefined, b: AclBinding): boolean {
  if (patternType !== "ANY" && patternType !== "MATCH" && patternType !== b.patternType) return false;
  if (name === undefined) return true;
  if (patternType !== "MATCH") return name === b.resourceName;
  return b.patternType === "PREFIXED" ? name.startsWith(b.resourceName) : b.resourceName === name || b.resourceName === WILDCARD_RESOURCE;
}
