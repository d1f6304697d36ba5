/**
 * Profiles: named connection settings in a config file, so `rill` reaches a cluster without
 * repeating `--bootstrap`, `--tls-*`, `--user` and `--password-file` (as rpk's profiles).
 *
 * The file is `$RILL_CONFIG`, else `$XDG_CONFIG_HOME/rill/config.json`, else
 * `~/.config/rill/config.json`: `{"current": NAME, "profiles": {NAME: {bootstrap, tlsCa, tlsCert,
 * tlsKey, tlsServerName, user, passwordFile}}}`, written with mode 0600. It never holds a
 * password: a profile names the file that does (`passwordFile`).
 *
 * Which profile applies: `--profile NAME` (or `RILL_PROFILE`), else the file's current one
 * (`rill profile use NAME`), else none. What applies, per setting: the command line, then the
 * environment (`RILL_BOOTSTRAP`, `RILL_USER`, `RILL_PASSWORD`), then the profile, then the
 * default (`127.0.0.1:50051`, plaintext, no credentials).
 */

import * as nodeFs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { SecurityFlags } from "./context.ts";
import { CliError, type Io } from "./output.ts";

/** The settings one profile holds. */
export interface Profile extends SecurityFlags {
  readonly bootstrap?: string | undefined;
}

/** The config file's content. */
export interface ProfileFile {
  current?: string | undefined;
  profiles: Record<string, Profile>;
}

const PROFILE_KEYS = ["bootstrap", "tlsCa", "tlsCert", "tlsKey", "tlsServerName", "user", "passwordFile"] as const;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Where the config file is for `env`. */
export function configPath(env: Io["env"]): string {
  if (env["RILL_CONFIG"]) return env["RILL_CONFIG"];
  const base = env["XDG_CONFIG_HOME"] || path.join(env["HOME"] || os.homedir(), ".config");
  return path.join(base, "rill", "config.json");
}

/** Reads the config file (an empty one when it does not exist); CliError when it cannot be read. */
export function readProfiles(file: string): ProfileFile {
  let text: string;
  try {
    text = nodeFs.readFileSync(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return { profiles: {} };
    throw new CliError(`${file}: cannot read: ${(e as Error).message}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new CliError(`${file}: not JSON: ${(e as Error).message}`);
  }
  const obj = v as Partial<ProfileFile> | null;
  if (typeof obj !== "object" || obj === null || typeof obj.profiles !== "object" || obj.profiles === null)
    throw new CliError(`${file}: expected {"current": NAME, "profiles": {NAME: {...}}}`);
  for (const [name, p] of Object.entries(obj.profiles)) {
    for (const [k, x] of Object.entries(p ?? {})) {
      if (!(PROFILE_KEYS as readonly string[]).includes(k)) throw new CliError(`${file}: profile "${name}": unknown key "${k}"`);
      if (typeof x !== "string") throw new CliError(`${file}: profile "${name}": ${k} must be a string`);
    }
  }
  return { current: typeof obj.current === "string" ? obj.current : undefined, profiles: obj.profiles };
}

/** Writes the config file (mode 0600, through a temporary file renamed over it). */
export function writeProfiles(file: string, content: ProfileFile): void {
  nodeFs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  nodeFs.writeFileSync(tmp, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o600 });
  nodeFs.renameSync(tmp, file);
}

/** The profile that applies (see the module comment), or undefined; CliError for an unknown named one. */
export function activeProfile(env: Io["env"], flag: string | undefined): { name: string; profile: Profile } | undefined {
  const file = configPath(env);
  const named = flag ?? (env["RILL_PROFILE"] || undefined);
  const content = readProfiles(file);
  const name = named ?? content.current;
  if (name === undefined) return undefined;
  const profile = content.profiles[name];
  if (profile === undefined) {
    if (named === undefined) throw new CliError(`${file}: the current profile "${name}" does not exist (rill profile use NAME)`);
    throw new CliError(`--profile: no profile "${name}" in ${file} (rill profile list)`);
  }
  return { name, profile };
}

/** `rill profile create NAME`: stores the settings given on the command line. */
export function createProfile(env: Io["env"], name: string, p: Profile, o: { force?: boolean; use?: boolean }): string {
  if (!NAME.test(name)) throw new CliError(`profile create: "${name}" is not a profile name (letters, digits, . _ -; at most 64)`);
  if ((p.tlsCert === undefined) !== (p.tlsKey === undefined)) throw new CliError("--tls-cert and --tls-key go together");
  if (p.passwordFile !== undefined && p.user === undefined) throw new CliError("profile create: --password-file needs --user");
  const file = configPath(env);
  const content = readProfiles(file);
  if (content.profiles[name] !== undefined && !o.force)
    throw new CliError(`profile create: "${name}" exists in ${file} (--force replaces it)`);
  const abs = (f: string | undefined): string | undefined => (f === undefined ? undefined : path.resolve(f));
  const stored: Profile = Object.fromEntries(
    Object.entries({
      bootstrap: p.bootstrap,
      tlsCa: abs(p.tlsCa),
      tlsCert: abs(p.tlsCert),
      tlsKey: abs(p.tlsKey),
      tlsServerName: p.tlsServerName,
      user: p.user,
      passwordFile: abs(p.passwordFile),
    }).filter(([, v]) => v !== undefined),
  );
  content.profiles[name] = stored;
  if (o.use || content.current === undefined) content.current = name;
  writeProfiles(file, content);
  return file;
}

/** `rill profile use NAME`. */
export function useProfile(env: Io["env"], name: string): string {
  const file = configPath(env);
  const content = readProfiles(file);
  if (content.profiles[name] === undefined) throw new CliError(`profile use: no profile "${name}" in ${file}`);
  content.current = name;
  writeProfiles(file, content);
  return file;
}

/** `rill profile delete NAME`. */
export function deleteProfile(env: Io["env"], name: string): string {
  const file = configPath(env);
  const content = readProfiles(file);
  if (content.profiles[name] === undefined) throw new CliError(`profile delete: no profile "${name}" in ${file}`);
  delete content.profiles[name];
  if (content.current === name) content.current = undefined;
  writeProfiles(file, content);
  return file;
}
