/**
 * `auth.bootstrap.users.file`: the users a new cluster starts with. The file holds one
 * `name:password` per line (split at the first `:`; blank lines and lines starting with `#` are
 * skipped; a trailing `\r` is dropped). Each user gets a SCRAM-SHA-256 and a SCRAM-SHA-512
 * credential with a fresh salt; the records are committed once, by the first controller, before
 * the cluster's `__consumer_offsets` exists (src/broker/cluster-controller.ts), so a restarted
 * node or a later leader never writes them again, and users deleted later stay deleted.
 *
 * A bad line fails with INVALID_CONFIG naming the file and the line number — never echoing the
 * line, which holds a password.
 */
import { RillError, rillError } from "../base/errors.ts";
import type { ScramCredentialRecord } from "../metadata/records.ts";
import { SCRAM_MECHANISMS } from "../metadata/security-types.ts";
import { SCRAM_ITERATIONS_DEFAULT, scramCredential, validatePassword, validateUserName } from "./scram.ts";

/** The config key, for messages. */
export const BOOTSTRAP_USERS_KEY = "auth.bootstrap.users.file";
/** Most users the bootstrap file may hold. */
export const BOOTSTRAP_USERS_MAX = 1000;

/** One user of the bootstrap file. */
export interface BootstrapUser {
  readonly name: string;
  readonly password: string;
}

/** The users of a bootstrap file's text; INVALID_CONFIG naming `file` and the line at fault. */
export function parseBootstrapUsers(text: string, file: string): BootstrapUser[] {
  const users: BootstrapUser[] = [];
  const lineOf = new Map<string, number>();
  const lines = text.split("\n");
  for (const [i, raw] of lines.entries()) {
    const n = i + 1;
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line.trim() === "" || line.trimStart().startsWith("#")) continue;
    const fail = (why: string): never => {
      throw rillError("INVALID_CONFIG", `${BOOTSTRAP_USERS_KEY}: ${file} line ${n}: ${why}`);
    };
    const colon = line.indexOf(":");
    if (colon < 0) fail("not of the form name:password");
    const name = line.slice(0, colon);
    const password = line.slice(colon + 1);
    if (name !== name.trim()) fail("the user name has leading or trailing spaces");
    try {
      validateUserName(name);
      validatePassword(password);
    } catch (e) {
      const err = RillError.from(e);
      fail(err.message.replace(/^user name "(?:[^"\\]|\\.)*": /, "the user name "));
    }
    const first = lineOf.get(name);
    if (first !== undefined) fail(`user "${name}" is already on line ${first}`);
    lineOf.set(name, n);
    users.push({ name, password });
  }
  if (users.length > BOOTSTRAP_USERS_MAX)
    throw rillError("INVALID_CONFIG", `${BOOTSTRAP_USERS_KEY}: ${file}: more than ${BOOTSTRAP_USERS_MAX} users`);
  return users;
}

/**
 * The credential records of `users`: SCRAM-SHA-256 and SCRAM-SHA-512 each, at the default
 * iteration count, with a salt from `salt` (random bytes) per credential.
 */
export function bootstrapUserRecords(users: readonly BootstrapUser[], salt: () => Uint8Array): ScramCredentialRecord[] {
  return users.flatMap((u) =>
    SCRAM_MECHANISMS.map(
      (mechanism): ScramCredentialRecord => ({
        type: "scram-credential",
        v: 1,
        name: u.name,
        credential: scramCredential(u.password, mechanism, SCRAM_ITERATIONS_DEFAULT, salt()),
      }),
    ),
  );
}
