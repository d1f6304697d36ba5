/** What every CLI command gets: the streams, and how to build clients for `--bootstrap`. */

import { readFileSync } from "node:fs";
import type { ClientCredentials, ClientTlsOptions } from "../client/channel-security.ts";
import type { ClientOptions } from "../client/connection.ts";
import { CliError, type Io } from "./output.ts";

/** A command's surroundings. */
export interface Context {
  readonly io: Io;
  /** "host:port" from --bootstrap, RILL_BOOTSTRAP or the default. */
  readonly bootstrap: string;
  /** TLS from --tls-ca, --tls-cert, --tls-key, --tls-server-name; absent: plaintext. */
  readonly tls?: ClientTlsOptions | undefined;
  /** From --user (or RILL_USER) and --password-file (or RILL_PASSWORD). */
  readonly credentials?: ClientCredentials | undefined;
}

/** The global options of the client commands that say how to reach and log in to the brokers. */
export interface SecurityFlags {
  readonly tlsCa?: string | undefined;
  readonly tlsCert?: string | undefined;
  readonly tlsKey?: string | undefined;
  readonly tlsServerName?: string | undefined;
  readonly user?: string | undefined;
  readonly passwordFile?: string | undefined;
}

/** `--tls-*` as the SDK's `tls` option (file paths, re-read when they change); undefined when none is given. */
export function tlsOf(flags: SecurityFlags): ClientTlsOptions | undefined {
  const { tlsCa, tlsCert, tlsKey, tlsServerName } = flags;
  if (tlsCa === undefined && tlsCert === undefined && tlsKey === undefined && tlsServerName === undefined) return undefined;
  if ((tlsCert === undefined) !== (tlsKey === undefined)) throw new CliError("--tls-cert and --tls-key go together");
  return { ca: tlsCa, cert: tlsCert, key: tlsKey, serverName: tlsServerName };
}

/**
 * The user and password: `--user` or RILL_USER, and the first line of `--password-file` or else
 * RILL_PASSWORD. Neither: undefined. One without the other: CliError.
 */
export function credentialsOf(flags: SecurityFlags, env: Io["env"]): ClientCredentials | undefined {
  const user = flags.user ?? (env["RILL_USER"] || undefined);
  let password: string | undefined;
  if (flags.passwordFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(flags.passwordFile, "utf8");
    } catch (e) {
      throw new CliError(`--password-file: cannot read ${flags.passwordFile}: ${(e as Error).message}`);
    }
    password = text.split(/\r?\n/, 1)[0] ?? "";
    if (password === "") throw new CliError(`--password-file: ${flags.passwordFile} holds no password on its first line`);
  } else {
    password = env["RILL_PASSWORD"] || undefined;
  }
  if (user === undefined && password === undefined) return undefined;
  if (user === undefined) throw new CliError("a password needs a user: give --user or RILL_USER");
  if (password === undefined) throw new CliError(`--user ${user} needs a password: give --password-file or RILL_PASSWORD`);
  return { user, password };
}

/**
 * Client options for the CLI: two quick retries, so that a broker that is not running is reported
 * within about half a second instead of after the SDK's default 22 s of retrying; TLS and
 * credentials as the global options say.
 */
export function clientOptions(ctx: Context): ClientOptions {
  return {
    bootstrap: ctx.bootstrap,
    retry: { retries: 2, initialBackoffMs: 100, backoffMsMax: 300 },
    requestTimeoutMs: 15_000,
    tls: ctx.tls,
    credentials: ctx.credentials,
  };
}
