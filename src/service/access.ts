/**
 * Authorization of requests, once for every listener (gRPC today, Kafka and HTTP next): the
 * operation table of src/security/operations.ts applied to a request's resources, with the
 * decisions of the authorizer (Kafka's ACL model, src/security/acl.ts) fed from the metadata
 * image (DESIGN.md "Security": Authorization).
 *
 * - `check(requester, rpc, named)` throws the catalog error of the first denied requirement
 *   (PERMISSION_DENIED: TOPIC_/GROUP_/CLUSTER_/TRANSACTIONAL_ID_AUTHORIZATION_FAILED) before the
 *   request does anything, so nothing changes when it is refused.
 * - `visible(requester, type, op, names)` filters an answer to what the caller may see.
 * - `watch(...)` re-checks an open stream whenever the ACLs change and ends it when a permission
 *   it relies on is gone (within the metadata propagation that carried the change).
 *
 * Decisions are cached per (principal, host, operation, resource); the cache and the authorizer
 * are rebuilt when a metadata change touches ACLs (or a snapshot replaces the image), so a
 * produce with ACLs on costs a map lookup per call.
 */
import { rillError, type RillError } from "../base/errors.ts";
import { MetadataImage } from "../metadata/image.ts";
import { type AclBinding, type AclOperation, CLUSTER_RESOURCE, type Principal, type ResourceType } from "../metadata/security-types.ts";
import type { MetadataChange } from "../metadata/store.ts";
import { deniedError, EXTRA_ACCESS, type PublicRpc, RPC_ACCESS, type Requirement, type RpcAccess } from "../security/operations.ts";
import type { Requester } from "../security/requester.ts";

/** The authorizer's decision (src/security/acl.ts `Authorizer`). */
export interface Decider {
  authorize(principal: Principal, host: string, operation: AclOperation, resourceType: ResourceType, resourceName: string): boolean;
  /** Allowed `operation` on at least one resource of the type (Kafka's authorizeByResourceType). */
  authorizeByResourceType(principal: Principal, host: string, operation: AclOperation, resourceType: ResourceType): boolean;
}

/** The resources a request names, by type. */
export type Named = Partial<Record<ResourceType, Iterable<string>>>;

/** What the access checks are built from. */
export interface AccessOptions {
  /** `authorizer.enable`: off → every caller may do everything. */
  readonly enabled: boolean;
  /** `super.users`. */
  readonly superUsers: readonly Principal[];
  /** The metadata: its image (the ACLs) and its changes. */
  readonly store: { readonly image: MetadataImage; onChange(fn: (c: MetadataChange) => void): () => void };
  /** The ACL bindings of an image. */
  readonly bindings: (image: MetadataImage) => readonly AclBinding[];
  /** Whether a change touches ACLs (a snapshot always does). */
  readonly touchesAcls: (change: MetadataChange) => boolean;
  /**
   * The image's ACL version (it grows with every ACL change): checked on each decision, so the
   * decisions are rebuilt even when a change reached the image without an event (a snapshot).
   */
  readonly aclVersion?: (image: MetadataImage) => number;
  /** Builds the authorizer over the bindings. */
  readonly authorizer: (bindings: readonly AclBinding[], superUsers: readonly Principal[]) => Decider;
}

/** Decisions cached at most (cleared whole past it: a bound, not an LRU). */
export const DECISIONS_CACHED_MAX = 100_000;

interface Watch {
  readonly check: () => void;
  readonly onDenied: (e: RillError) => void;
}

/** The access checks of one broker. */
export class Access {
  private decider: Decider | null = null;
  private readonly decisions = new Map<string, boolean>();
  private readonly supers: ReadonlySet<string>;
  private readonly watches = new Set<Watch>();
  private readonly unsubscribe: () => void;
  /** The image and ACL version the decisions were made on. */
  private seenImage: MetadataImage | null = null;
  private seenVersion = -1;

  constructor(private readonly o: AccessOptions) {
    this.supers = new Set(o.superUsers);
    this.unsubscribe = o.enabled ? o.store.onChange((c) => this.onMetadata(c)) : () => {};
  }

  /** No checks at all (authorizer.enable=false). */
  static allowAll(): Access {
    return new Access({
      enabled: false,
      superUsers: [],
      store: { image: new MetadataImage(), onChange: () => () => {} },
      bindings: () => [],
      touchesAcls: () => false,
      authorizer: () => ({ authorize: () => true, authorizeByResourceType: () => true }),
    });
  }

  get enabled(): boolean {
    return this.o.enabled;
  }

  /** Stops following the metadata. */
  close(): void {
    this.unsubscribe();
    this.watches.clear();
  }

  /** True when `r` may `op` the resource. */
  allowed(r: Requester, op: AclOperation, type: ResourceType, name: string): boolean {
    if (!this.o.enabled || this.supers.has(r.principal)) return true;
    this.follow();
    const key = `${r.principal}\u0000${r.host}\u0000${op}\u0000${type}\u0000${name}`;
    const known = this.decisions.get(key);
    if (known !== undefined) return known;
    this.decider ??= this.o.authorizer(this.o.bindings(this.o.store.image), this.o.superUsers);
    const yes = this.decider.authorize(r.principal, r.host, op, type, name);
    if (this.decisions.size >= DECISIONS_CACHED_MAX) this.decisions.clear();
    this.decisions.set(key, yes);
    return yes;
  }

  /** True when `r` may `op` at least one resource of `type` (cached like `allowed`). */
  private allowedOnAny(r: Requester, op: AclOperation, type: ResourceType): boolean {
    this.follow();
    const key = `${r.principal}\u0000${r.host}\u0000${op}\u0000${type}\u0000\u0000any`;
    const known = this.decisions.get(key);
    if (known !== undefined) return known;
    this.decider ??= this.o.authorizer(this.o.bindings(this.o.store.image), this.o.superUsers);
    const yes = this.decider.authorizeByResourceType(r.principal, r.host, op, type);
    this.decisions.set(key, yes);
    return yes;
  }

  /** Throws the catalog error of the first requirement of `rpc` that `r` does not meet for `named`. */
  check(r: Requester, rpc: PublicRpc, named: Named = {}): void {
    if (!this.o.enabled || this.supers.has(r.principal)) return;
    const row: RpcAccess = RPC_ACCESS[rpc];
    for (const req of row.all) this.meet(r, rpc, req, named);
    if (!row.oneOf) return;
    let first: unknown = null;
    for (const list of row.oneOf) {
      try {
        for (const req of list) this.meet(r, rpc, req, named);
        return;
      } catch (e) {
        first ??= e;
      }
    }
    throw first;
  }

  /** Throws unless `r` meets one requirement (of EXTRA_ACCESS, or a table row's). */
  require(r: Requester, rpc: PublicRpc, req: Requirement, named: Named = {}): void {
    if (!this.o.enabled || this.supers.has(r.principal)) return;
    this.meet(r, rpc, req, named);
  }

  /** True when `r` meets `req` (no throw). */
  meets(r: Requester, req: Requirement, named: Named = {}): boolean {
    if (!this.o.enabled || this.supers.has(r.principal)) return true;
    return this.denial(r, req, named) === null;
  }

  /** The items of `items` whose resource (`nameOf`) `r` may `op`. */
  visible<T>(r: Requester, type: ResourceType, op: AclOperation, items: readonly T[], nameOf: (t: T) => string): T[] {
    if (!this.o.enabled || this.supers.has(r.principal)) return [...items];
    return items.filter((t) => this.allowed(r, op, type, nameOf(t)));
  }

  /**
   * Re-checks `rpc` for `r` on `named()` (the stream's resources as they are now) after every ACL
   * change, and calls `onDenied` once with the error when a permission is gone. Returns the
   * function that stops watching.
   */
  watch(r: Requester, rpc: PublicRpc, named: () => Named, onDenied: (e: RillError) => void): () => void {
    if (!this.o.enabled || this.supers.has(r.principal)) return () => {};
    const w: Watch = { check: () => this.check(r, rpc, named()), onDenied };
    this.watches.add(w);
    return () => this.watches.delete(w);
  }

  private meet(r: Requester, rpc: PublicRpc, req: Requirement, named: Named): void {
    const denied = this.denial(r, req, named);
    if (denied !== null)
      throw rillError(deniedError(denied.type), `${rpc}: ${r.principal} from ${r.host || "an unknown address"} may not ${denied.what}`);
  }

  /** What `r` is denied of `req`, or null. */
  private denial(r: Requester, req: Requirement, named: Named): { type: ResourceType; what: string } | null {
    switch (req.on) {
      case "authenticated":
      case "filter":
        return null;
      case "cluster":
        return this.allowed(r, req.op, "CLUSTER", CLUSTER_RESOURCE) ? null : { type: "CLUSTER", what: `${req.op} the cluster` };
      case "anyTopic":
        return this.allowedOnAny(r, req.op, "TOPIC") ? null : { type: "TOPIC", what: `${req.op} any topic` };
      case "each": {
        const orCluster = req.orCluster;
        if (orCluster && this.allowed(r, orCluster, "CLUSTER", CLUSTER_RESOURCE)) return null;
        for (const name of named[req.type] ?? []) {
          if (!this.allowed(r, req.op, req.type, name)) return { type: req.type, what: `${req.op} ${req.type.toLowerCase()} "${name}"` };
        }
        return null;
      }
    }
  }

  /** Forgets the decisions when the image or its ACL version moved since they were made. */
  private follow(): void {
    const version = this.o.aclVersion;
    if (!version) return;
    const image = this.o.store.image;
    const v = version(image);
    if (image === this.seenImage && v === this.seenVersion) return;
    this.seenImage = image;
    this.seenVersion = v;
    this.decider = null;
    this.decisions.clear();
  }

  private onMetadata(c: MetadataChange): void {
    if (!c.snapshot && !this.o.touchesAcls(c)) return;
    this.decider = null;
    this.decisions.clear();
    for (const w of [...this.watches]) {
      try {
        w.check();
      } catch (e) {
        this.watches.delete(w);
        w.onDenied(e as RillError);
      }
    }
  }
}

export { EXTRA_ACCESS };
