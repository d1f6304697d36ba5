/**
 * The controller's security decisions, as pure functions in the shape of
 * src/metadata/controller.ts: given the metadata image and a request, the records to append and
 * the answer per item. Nothing here writes; the caller commits the records through the metadata
 * store (so a decision always sees every earlier change) and every node replays them.
 *
 * - CreateAcls: each binding is validated on its own (INVALID_REQUEST naming the field); a
 *   binding equal to one already stored, or to an earlier one of the same request, is answered
 *   as created and stored once (Kafka does the same).
 * - DeleteAcls: each filter is validated on its own and matches bindings with Kafka's filter
 *   semantics; every matched binding is removed once, even when several filters match it.
 * - AlterUserScramCredentials: the changes are grouped by user and each user's changes are
 *   applied together or not at all: a bad name, mechanism or iteration count, a (user,
 *   mechanism) named twice, or a deletion of a credential that does not exist fails the user.
 *   Only credentials reach this point (salt, iterations, StoredKey, ServerKey): the broker that
 *   received a password salted it.
 */
import { RillError, rillError } from "../base/errors.ts";
import type { Random } from "../base/random.ts";
import type { MetadataImage } from "../metadata/image.ts";
import type { MetadataRecord } from "../metadata/records.ts";
import type { AclBinding, ScramCredential, ScramMechanism } from "../metadata/security-types.ts";
import { type AclBindingFilter, bindingKey, matchesFilter, validateBinding, validateFilter } from "./acl.ts";
import { validateIterations, validateMechanism, validateUserName } from "./scram.ts";

/** A random 128-bit id in hex (ACL record ids, like topic ids). */
function randomId(random: Random): string {
  let s = "";
  for (let i = 0; i < 4; i++) s += (random.int(2 ** 32) >>> 0).toString(16).padStart(8, "0");
  return s;
}

/** Most ACL bindings a cluster holds; a creation past it is refused (INVALID_REQUEST). */
export const ACL_BINDINGS_MAX = 100_000;
/** Most users with SCRAM credentials a cluster holds; a new user past it is refused (UNACCEPTABLE_CREDENTIAL). */
export const SCRAM_USERS_MAX = 100_000;

/** What a decision answers per item, with the records that carry it out. */
export interface Decision<R> {
  readonly records: MetadataRecord[];
  readonly results: R[];
}

/** One binding's outcome: undefined when created (or already there). */
export type CreateAclOutcome = RillError | undefined;

/** Records that create `bindings`, one answer per binding in order. */
export function decideCreateAcls(
  image: MetadataImage,
  bindings: readonly AclBinding[],
  random: Random,
  bindingsMax = ACL_BINDINGS_MAX,
): Decision<CreateAclOutcome> {
  const stored = new Set(image.aclBindings().map(bindingKey));
  const records: MetadataRecord[] = [];
  const results = bindings.map((binding): CreateAclOutcome => {
    try {
      validateBinding(binding);
    } catch (e) {
      return RillError.from(e);
    }
    const key = bindingKey(binding);
    if (stored.has(key)) return undefined;
    if (stored.size >= bindingsMax)
      return rillError("INVALID_REQUEST", `acl binding: the cluster already holds ${bindingsMax} bindings, the most it keeps`);
    stored.add(key);
    records.push({ type: "acl", v: 1, id: uniqueId(image, random), binding: copyBinding(binding) });
    return undefined;
  });
  return { records, results };
}

function uniqueId(image: MetadataImage, random: Random): string {
  for (;;) {
    const id = randomId(random);
    if (!image.acls.has(id)) return id;
  }
}

function copyBinding(b: AclBinding): AclBinding {
  return {
    principal: b.principal,
    host: b.host,
    resourceType: b.resourceType,
    resourceName: b.resourceName,
    patternType: b.patternType,
    operation: b.operation,
    permission: b.permission,
  };
}

/** One filter's outcome: the bindings it matched (and deleted), or why it deleted nothing. */
export interface DeleteAclsOutcome {
  readonly matched: readonly AclBinding[];
  readonly error?: RillError;
}

/** Records that delete the bindings `filters` match, one answer per filter in order. */
export function decideDeleteAcls(image: MetadataImage, filters: readonly AclBindingFilter[]): Decision<DeleteAclsOutcome> {
  const removed = new Set<string>();
  const records: MetadataRecord[] = [];
  const results = filters.map((filter): DeleteAclsOutcome => {
    try {
      validateFilter(filter);
    } catch (e) {
      return { matched: [], error: RillError.from(e) };
    }
    const matched: AclBinding[] = [];
    for (const [id, binding] of image.acls) {
      if (!matchesFilter(filter, binding)) continue;
      matched.push(binding);
      if (removed.has(id)) continue;
      removed.add(id);
      records.push({ type: "remove-acl", v: 1, id });
    }
    return { matched };
  });
  return { records, results };
}

/** The bindings that match `filter`, in the order they were created (DescribeAcls). */
export function describeAcls(image: MetadataImage, filter: AclBindingFilter): AclBinding[] {
  validateFilter(filter);
  return image.aclBindings().filter((b) => matchesFilter(filter, b));
}

/** A credential to store for a user. */
export interface ScramUpsert {
  readonly name: string;
  readonly credential: ScramCredential;
}

/** A credential to delete. */
export interface ScramDelete {
  readonly name: string;
  readonly mechanism: ScramMechanism;
}

/** One user's outcome: undefined error when every change of the user was applied. */
export interface ScramUserOutcome {
  readonly user: string;
  readonly error?: RillError;
}

/** The users named by upsertions then deletions, each once, in order of first mention. */
export function usersInOrder(upserts: readonly { name: string }[], deletes: readonly { name: string }[]): string[] {
  return [...new Set([...upserts.map((u) => u.name), ...deletes.map((d) => d.name)])];
}

/**
 * Records that apply the credential changes, one answer per user (in order of first mention).
 * A user's changes are all applied or, on the first problem, none.
 */
export function decideAlterScramCredentials(
  image: MetadataImage,
  upserts: readonly ScramUpsert[],
  deletes: readonly ScramDelete[],
  usersMax = SCRAM_USERS_MAX,
): Decision<ScramUserOutcome> {
  const records: MetadataRecord[] = [];
  let users = image.scramUsers.size;
  const results = usersInOrder(upserts, deletes).map((user): ScramUserOutcome => {
    try {
      const decided = decideUser(image, user, upserts, deletes);
      if (!image.scramUsers.has(user) && decided.some((r) => r.type === "scram-credential")) {
        if (users >= usersMax)
          throw rillError("UNACCEPTABLE_CREDENTIAL", `user "${user}": the cluster already holds ${usersMax} users, the most it keeps`);
        users++;
      }
      records.push(...decided);
      return { user };
    } catch (e) {
      return { user, error: RillError.from(e) };
    }
  });
  return { records, results };
}

function decideUser(
  image: MetadataImage,
  user: string,
  upserts: readonly ScramUpsert[],
  deletes: readonly ScramDelete[],
): MetadataRecord[] {
  validateUserName(user);
  const seen = new Set<string>();
  const once = (mechanism: string): void => {
    if (seen.has(mechanism)) throw rillError("DUPLICATE_RESOURCE", `user "${user}": ${mechanism} is named more than once in the request`);
    seen.add(mechanism);
  };
  const out: MetadataRecord[] = [];
  for (const u of upserts) {
    if (u.name !== user) continue;
    validateMechanism(u.credential.mechanism);
    validateIterations(u.credential.iterations);
    once(u.credential.mechanism);
    out.push({ type: "scram-credential", v: 1, name: user, credential: { ...u.credential } });
  }
  for (const d of deletes) {
    if (d.name !== user) continue;
    validateMechanism(d.mechanism);
    once(d.mechanism);
    if (!image.scramCredential(user, d.mechanism))
      throw rillError("RESOURCE_NOT_FOUND", `user "${user}" has no ${d.mechanism} credential to delete`);
    out.push({ type: "remove-scram-credential", v: 1, name: user, mechanism: d.mechanism });
  }
  return out;
}

/** One described user: its mechanisms and iteration counts (never salts or keys). */
export interface ScramUserDescription {
  readonly user: string;
  readonly credentials: readonly { readonly mechanism: ScramMechanism; readonly iterations: number }[];
  readonly error?: RillError;
}

/** DescribeUserScramCredentials: the named users in order, or every user sorted by name. */
export function describeScramUsers(image: MetadataImage, users: readonly string[]): ScramUserDescription[] {
  const describe = (user: string): ScramUserDescription => {
    const byMechanism = image.scramUsers.get(user);
    const credentials = [...(byMechanism?.values() ?? [])]
      .map((c) => ({ mechanism: c.mechanism, iterations: c.iterations }))
      .sort((a, b) => a.mechanism.localeCompare(b.mechanism));
    return { user, credentials };
  };
  if (users.length === 0) return [...image.scramUsers.keys()].sort().map(describe);
  const counts = new Map<string, number>();
  for (const u of users) counts.set(u, (counts.get(u) ?? 0) + 1);
  return users.map((user) => {
    if ((counts.get(user) ?? 0) > 1)
      return { user, credentials: [], error: rillError("DUPLICATE_RESOURCE", `users: "${user}" is named more than once`) };
    if (!image.scramUsers.has(user))
      return { user, credentials: [], error: rillError("RESOURCE_NOT_FOUND", `users: "${user}" has no SCRAM credential`) };
    return describe(user);
  });
}
