/** What every CLI command gets: the streams, and how to build clients for `--bootstrap`. */

import type { ClientOptions } from "../client/connection.ts";
import type { Io } from "./output.ts";

/** A command's surroundings. */
export interface Context {
  readonly io: Io;
  /** "host:port" from --bootstrap, RILL_BOOTSTRAP or the default. */
  readonly bootstrap: string;
}

/**
 * Client options for the CLI: two quick retries, so that a broker that is not running is reported
 * within about half a second instead of after the SDK's default 22 s of retrying.
 */
export function clientOptions(ctx: Context): ClientOptions {
  return { bootstrap: ctx.bootstrap, retry: { retries: 2, initialBackoffMs: 100, backoffMsMax: 300 }, requestTimeoutMs: 15_000 };
}
