/**
 * The security admin requests, once for every protocol: ACL bindings (CreateAcls, DescribeAcls,
 * DeleteAcls) and SCRAM users (AlterUserScramCredentials, DescribeUserScramCredentials).
 *
 * The life of `rill user add alice` (AlterUserScramCredentials with a password), sent to any node:
 * 1. **Salt, here.** The receiving node checks each upsertion (name, mechanism, iterations,
 *    password), draws a random salt and computes SaltedPassword = PBKDF2(password, salt, i) off the
 *    event loop. From here on the password is gone: only salt and SaltedPassword travel.
 * 2. **Route.** Like every metadata change (src/service/admin.ts), the change runs on the active
 *    controller; any other node passes it there through the `ControllerPort`, as salt and
 *    SaltedPassword (Kafka's own wire form of the request).
 * 3. **Decide and commit.** The controller derives StoredKey and ServerKey and commits the
 *    credential records decided by src/security/decisions.ts, all of a user's changes or none.
 * 4. **Answer** one result per user in order of first mention: a user refused in step 1 keeps
 *    that error, the others the controller's.
 *
 * ACL changes go the same way without step 1; reads (DescribeAcls, DescribeUserScramCredentials)
 * answer from this node's image. Authorization of the caller is not decided here: the layer that
 * authorizes requests runs before these handlers.
 */
import { randomBytes } from "node:crypto";
import { RillError, rillError } from "../base/errors.ts";
import type { Random } from "../base/random.ts";
import type { MetadataRecord } from "../metadata/records.ts";
import type { AclBinding, ScramMechanism } from "../metadata/security-types.ts";
import type { MetadataStore } from "../metadata/store.ts";
import { type AclBindingFilter, validateBinding, validateFilter } from "../security/acl.ts";
import {
  decideAlterScramCredentials,
  decideCreateAcls,
  decideDeleteAcls,
  describeAcls,
  describeScramUsers,
  type ScramDelete,
  type ScramUpsert,
  usersInOrder,
} from "../security/decisions.ts";
import {
  credentialFromSaltedPassword,
  SCRAM_ITERATIONS_DEFAULT,
  SCRAM_SALT_BYTES,
  saltPassword,
  validateIterations,
  validateMechanism,
  validatePassword,
  validateUserName,
} from "../security/scram.ts";
import type { ControllerPort } from "./admin-ports.ts";
import type {
  AclBindingSpec,
  AclFilterSpec,
  AlterUserScramCredentialsInput,
  AlterUserScramCredentialsResult,
  CreateAclsInput,
  CreateAclsResult,
  DeleteAclsInput,
  DeleteAclsResult,
  DescribeAclsInput,
  DescribeAclsResult,
  DescribeUserScramCredentialsInput,
  DescribeUserScramCredentialsResult,
  ScramDeletionSpec,
  ScramUpsertionSpec,
  SecurityChanges,
} from "./admin-security-types.ts";

/** Most items one request may carry (bindings, filters, credential changes, users). */
export const SECURITY_REQUEST_ITEMS_MAX = 1000;

/** What the security handlers need from the node. */
export interface SecurityAdminDeps {
  readonly store: MetadataStore;
  /** Draws ACL record ids. */
  readonly random: Random;
  /** Draws a new credential's salt; default: SCRAM_SALT_BYTES from node:crypto. */
  readonly salt?: () => Uint8Array;
}

/** Prefixes a RillError's message with the field it concerns (same code). */
function at(field: string, e: unknown): RillError {
  const err = RillError.from(e);
  return new RillError(err.kind, `${field}: ${err.message}`);
}

function checkCount(items: readonly unknown[], field: string, required: boolean): void {
  if (required && items.length === 0) throw rillError("INVALID_REQUEST", `${field}: at least one is required`);
  if (items.length > SECURITY_REQUEST_ITEMS_MAX)
    throw rillError("INVALID_REQUEST", `${field}: ${items.length} items, at most ${SECURITY_REQUEST_ITEMS_MAX}`);
}

/** A request's binding as a checked AclBinding; INVALID_REQUEST naming the field otherwise. */
export function toBinding(spec: AclBindingSpec): AclBinding {
  for (const f of ["resourceType", "patternType", "operation", "permission"] as const)
    if (spec[f] === undefined) throw rillError("INVALID_REQUEST", `acl binding: ${f} is required`);
  const b = spec as AclBinding;
  validateBinding(b);
  return b;
}

/** A request's filter as a checked AclBindingFilter; INVALID_REQUEST naming the field otherwise. */
export function toFilter(spec: AclFilterSpec): AclBindingFilter {
  const f = spec as AclBindingFilter;
  validateFilter(f);
  return f;
}

/** The mechanism of a request item; UNSUPPORTED_SASL_MECHANISM when missing or unknown. */
function mechanismOf(mechanism: string | undefined): ScramMechanism {
  if (mechanism === undefined) throw rillError("UNSUPPORTED_SASL_MECHANISM", "mechanism is required");
  validateMechanism(mechanism);
  return mechanism;
}

/** The protocol-neutral security admin requests. */
export class SecurityAdminHandlers {
  private readonly salt: () => Uint8Array;

  constructor(private readonly d: SecurityAdminDeps) {
    this.salt = d.salt ?? (() => randomBytes(SCRAM_SALT_BYTES));
  }

  /** CreateAcls: each binding is created (or found already there) or refused on its own. */
  createAcls(input: CreateAclsInput, controller: ControllerPort): Promise<CreateAclsResult> {
    return this.change("createAcls", input, controller, async () => {
      checkCount(input.creations, "creations", true);
      const checked = input.creations.map((spec, i): AclBinding | RillError => {
        try {
          return toBinding(spec);
        } catch (e) {
          return at(`creations[${i}]`, e);
        }
      });
      const valid = checked.filter((c): c is AclBinding => !(c instanceof RillError));
      let outcomes: readonly (RillError | undefined)[] = [];
      await this.commit((img) => {
        const decision = decideCreateAcls(img, valid, this.d.random);
        outcomes = decision.results;
        return decision.records;
      });
      let next = 0;
      return {
        results: input.creations.map((binding, i) => {
          const c = checked[i]!;
          const error = c instanceof RillError ? c : outcomes[next++];
          return error ? { binding, error } : { binding };
        }),
      };
    });
  }

  /** DescribeAcls: the bindings that match the filter, from this node's image. */
  describeAcls(input: DescribeAclsInput): DescribeAclsResult {
    let filter: AclBindingFilter;
    try {
      filter = toFilter(input.filter);
    } catch (e) {
      throw at("filter", e);
    }
    return { bindings: describeAcls(this.d.store.image, filter) };
  }

  /** DeleteAcls: each filter deletes the bindings it matches; a bad filter deletes nothing. */
  deleteAcls(input: DeleteAclsInput, controller: ControllerPort): Promise<DeleteAclsResult> {
    return this.change("deleteAcls", input, controller, async () => {
      checkCount(input.filters, "filters", true);
      const checked = input.filters.map((spec, i): AclBindingFilter | RillError => {
        try {
          return toFilter(spec);
        } catch (e) {
          return at(`filters[${i}]`, e);
        }
      });
      const valid = checked.filter((c): c is AclBindingFilter => !(c instanceof RillError));
      let outcomes: DeleteAclsResult["results"] = [];
      await this.commit((img) => {
        const decision = decideDeleteAcls(img, valid);
        outcomes = decision.results;
        return decision.records;
      });
      let next = 0;
      return { results: checked.map((c) => (c instanceof RillError ? { matched: [], error: c } : outcomes[next++]!)) };
    });
  }

  /**
   * AlterUserScramCredentials: passwords are salted here, then the change runs on the active
   * controller; each user's changes are applied together or not at all.
   */
  async alterUserScramCredentials(
    input: AlterUserScramCredentialsInput,
    controller: ControllerPort,
  ): Promise<AlterUserScramCredentialsResult> {
    checkCount([...input.upsertions, ...input.deletions], "upsertions and deletions", true);
    const users = usersInOrder(input.upsertions, input.deletions);
    const refused = new Map<string, RillError>();
    const upsertions: ScramUpsertionSpec[] = [];
    for (const [i, u] of input.upsertions.entries()) {
      if (refused.has(u.name)) continue;
      try {
        upsertions.push(await this.salted(u));
      } catch (e) {
        refused.set(u.name, at(`upsertions[${i}]`, e));
      }
    }
    const deletions: ScramDeletionSpec[] = [];
    for (const [i, d] of input.deletions.entries()) {
      try {
        validateUserName(d.name);
        deletions.push({ name: d.name, mechanism: mechanismOf(d.mechanism) });
      } catch (e) {
        if (!refused.has(d.name)) refused.set(d.name, at(`deletions[${i}]`, e));
      }
    }
    const prepared: AlterUserScramCredentialsInput = {
      upsertions: upsertions.filter((u) => !refused.has(u.name)),
      deletions: deletions.filter((d) => !refused.has(d.name)),
    };
    const decided = new Map<string, RillError | undefined>();
    if (prepared.upsertions.length + prepared.deletions.length > 0) {
      const answer = await this.change("alterUserScramCredentials", prepared, controller, () => this.applyScram(prepared));
      for (const r of answer.results) decided.set(r.user, r.error);
    }
    return {
      results: users.map((user) => {
        const error = refused.get(user) ?? decided.get(user);
        return error ? { user, error } : { user };
      }),
    };
  }

  /** DescribeUserScramCredentials: mechanisms and iteration counts from this node's image. */
  describeUserScramCredentials(input: DescribeUserScramCredentialsInput): DescribeUserScramCredentialsResult {
    checkCount(input.users, "users", false);
    return { results: describeScramUsers(this.d.store.image, input.users) };
  }

  // ---- on the controller ---------------------------------------------------------------------

  /** An upsertion in Kafka's form (salt and SaltedPassword); the password, if any, salted here. */
  private async salted(u: ScramUpsertionSpec): Promise<ScramUpsertionSpec> {
    validateUserName(u.name);
    const mechanism = mechanismOf(u.mechanism);
    const iterations = u.iterations === 0 ? SCRAM_ITERATIONS_DEFAULT : u.iterations;
    validateIterations(iterations);
    const hasSalted = u.salt.length > 0 || u.saltedPassword.length > 0;
    if (u.password !== "" && hasSalted)
      throw rillError("UNACCEPTABLE_CREDENTIAL", "give a password, or salt and salted_password, not both");
    if (u.password === "") {
      if (!hasSalted) throw rillError("UNACCEPTABLE_CREDENTIAL", "password is empty");
      credentialFromSaltedPassword(mechanism, u.saltedPassword, u.salt, iterations); // checks lengths
      return { name: u.name, mechanism, iterations, password: "", salt: u.salt, saltedPassword: u.saltedPassword };
    }
    validatePassword(u.password);
    const salt = this.salt();
    const saltedPassword = await saltPassword(u.password, mechanism, iterations, salt);
    return { name: u.name, mechanism, iterations, password: "", salt, saltedPassword };
  }

  /** Runs a prepared credential change on the controller: credentials derived, one commit. */
  private async applyScram(prepared: AlterUserScramCredentialsInput): Promise<AlterUserScramCredentialsResult> {
    const upserts: ScramUpsert[] = [];
    const refused = new Map<string, RillError>();
    for (const [i, u] of prepared.upsertions.entries()) {
      try {
        const mechanism = mechanismOf(u.mechanism);
        validateUserName(u.name);
        upserts.push({ name: u.name, credential: credentialFromSaltedPassword(mechanism, u.saltedPassword, u.salt, u.iterations) });
      } catch (e) {
        if (!refused.has(u.name)) refused.set(u.name, at(`upsertions[${i}]`, e));
      }
    }
    const deletes: ScramDelete[] = [];
    for (const [i, d] of prepared.deletions.entries()) {
      try {
        deletes.push({ name: d.name, mechanism: mechanismOf(d.mechanism) });
      } catch (e) {
        if (!refused.has(d.name)) refused.set(d.name, at(`deletions[${i}]`, e));
      }
    }
    let outcomes: { user: string; error?: RillError }[] = [];
    await this.commit((img) => {
      const decision = decideAlterScramCredentials(
        img,
        upserts.filter((u) => !refused.has(u.name)),
        deletes.filter((d) => !refused.has(d.name)),
      );
      outcomes = decision.results;
      return decision.records;
    });
    const byUser = new Map(outcomes.map((o) => [o.user, o.error]));
    return {
      results: usersInOrder(prepared.upsertions, prepared.deletions).map((user) => {
        const error = refused.get(user) ?? byUser.get(user);
        return error ? { user, error } : { user };
      }),
    };
  }

  /** Commits the records `decide` returns (an empty decision writes nothing). */
  private async commit(decide: (img: MetadataStore["image"]) => MetadataRecord[]): Promise<void> {
    await this.d.store.commit(decide);
  }

  /** Runs a change here on the active controller (or when forwarded here), else passes it there. */
  private async change<K extends keyof SecurityChanges>(
    change: K,
    input: SecurityChanges[K]["input"],
    controller: ControllerPort,
    run: () => Promise<SecurityChanges[K]["result"]>,
  ): Promise<SecurityChanges[K]["result"]> {
    if (!controller.isActive() && !controller.forwarded) return controller.forward(change, input);
    const result = await run();
    controller.committedHere();
    return result;
  }
}
