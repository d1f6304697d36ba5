/**
 * The security admin requests (CreateAcls, DescribeAcls, DeleteAcls, AlterUserScramCredentials,
 * DescribeUserScramCredentials) as domain types, for every protocol: the gRPC AdminService
 * (src/rpc/admin-security-codec.ts) today, the Kafka listener's requests of the same names later.
 *
 * Enum fields of a request travel by name (`"TOPIC"`, `"READ"`, `"SCRAM-SHA-256"`): undefined when
 * the protocol left them unset (in a filter: any value), and an unknown value as its raw text, so
 * the service refuses it with a message that names it. Answers carry checked `AclBinding`s.
 * A per-item failure is a `RillError` in that item's result, left out when the item succeeded.
 */
import type { RillError } from "../base/errors.ts";
import type { AclBinding, ScramMechanism } from "../metadata/security-types.ts";

/** An ACL binding as a request carries it (checked by the service). */
export interface AclBindingSpec {
  readonly principal: string;
  readonly host: string;
  readonly resourceType?: string | undefined;
  readonly resourceName: string;
  readonly patternType?: string | undefined;
  readonly operation?: string | undefined;
  readonly permission?: string | undefined;
}

/** An ACL filter as a request carries it: an undefined field matches any value. */
export interface AclFilterSpec {
  readonly principal?: string | undefined;
  readonly host?: string | undefined;
  readonly resourceType?: string | undefined;
  readonly resourceName?: string | undefined;
  /** LITERAL, PREFIXED, ANY or MATCH; undefined = ANY. */
  readonly patternType?: string | undefined;
  readonly operation?: string | undefined;
  readonly permission?: string | undefined;
}

/** CreateAcls: each binding succeeds or fails on its own. */
export interface CreateAclsInput {
  readonly creations: readonly AclBindingSpec[];
}

/** Answer of CreateAcls: one result per creation, in order. */
export interface CreateAclsResult {
  readonly results: readonly { readonly binding: AclBindingSpec; readonly error?: RillError }[];
}

/** DescribeAcls. */
export interface DescribeAclsInput {
  readonly filter: AclFilterSpec;
}

/** Answer of DescribeAcls: the matching bindings, in the order they were created. */
export interface DescribeAclsResult {
  readonly bindings: readonly AclBinding[];
}

/** DeleteAcls: each filter deletes what it matches. */
export interface DeleteAclsInput {
  readonly filters: readonly AclFilterSpec[];
}

/** Answer of DeleteAcls: one result per filter, in order. */
export interface DeleteAclsResult {
  readonly results: readonly { readonly matched: readonly AclBinding[]; readonly error?: RillError }[];
}

/**
 * A credential to create or replace: with `password` (the receiving broker salts it), or with
 * `salt` and `saltedPassword` (Kafka's form, and how a broker passes a salted password on to the
 * controller).
 */
export interface ScramUpsertionSpec {
  readonly name: string;
  readonly mechanism?: string | undefined;
  /** 0: SCRAM_ITERATIONS_DEFAULT. */
  readonly iterations: number;
  /** "" when salt and saltedPassword are given. */
  readonly password: string;
  readonly salt: Uint8Array;
  readonly saltedPassword: Uint8Array;
}

/** A credential to delete. */
export interface ScramDeletionSpec {
  readonly name: string;
  readonly mechanism?: string | undefined;
}

/** AlterUserScramCredentials: each user's changes are applied together, or none of them. */
export interface AlterUserScramCredentialsInput {
  readonly upsertions: readonly ScramUpsertionSpec[];
  readonly deletions: readonly ScramDeletionSpec[];
}

/** Answer of AlterUserScramCredentials: one result per user, in order of first mention. */
export interface AlterUserScramCredentialsResult {
  readonly results: readonly { readonly user: string; readonly error?: RillError }[];
}

/** DescribeUserScramCredentials. */
export interface DescribeUserScramCredentialsInput {
  /** Empty: every user with a credential. */
  readonly users: readonly string[];
}

/** One user's credentials: mechanisms and iteration counts, never salts or keys. */
export interface DescribedScramUser {
  readonly user: string;
  readonly credentials: readonly { readonly mechanism: ScramMechanism; readonly iterations: number }[];
  readonly error?: RillError;
}

/** Answer of DescribeUserScramCredentials. */
export interface DescribeUserScramCredentialsResult {
  readonly results: readonly DescribedScramUser[];
}

/** The security requests that change metadata (they run on the active controller). */
export interface SecurityChanges {
  createAcls: { input: CreateAclsInput; result: CreateAclsResult };
  deleteAcls: { input: DeleteAclsInput; result: DeleteAclsResult };
  alterUserScramCredentials: { input: AlterUserScramCredentialsInput; result: AlterUserScramCredentialsResult };
}
