/**
 * Reads `auth.bootstrap.users.file` at start (controllers only) and salts its users' passwords
 * into SCRAM credential records (src/security/bootstrap-users.ts); the active controller commits
 * them once, when the cluster is created (cluster-controller.ts). Nothing of the file is logged.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { rillError } from "../base/errors.ts";
import type { BrokerConfig } from "../config/schema.ts";
import type { ScramCredentialRecord } from "../metadata/records.ts";
import { BOOTSTRAP_USERS_KEY, bootstrapUserRecords, parseBootstrapUsers } from "../security/bootstrap-users.ts";
import { SCRAM_SALT_BYTES } from "../security/scram.ts";

/** The credential records of the bootstrap users file; none when the key is empty. */
export function loadBootstrapUsers(config: Readonly<BrokerConfig>): ScramCredentialRecord[] {
  const file = config.authBootstrapUsersFile;
  if (file === "") return [];
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw rillError("INVALID_CONFIG", `${BOOTSTRAP_USERS_KEY}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  return bootstrapUserRecords(parseBootstrapUsers(text, file), () => randomBytes(SCRAM_SALT_BYTES));
}
