/**
 * How the CLI talks to the terminal: stdout writes that respect backpressure (a consumer piped
 * into a slow reader does not buffer without bound; a closed pipe, as with `| head`, ends the
 * command quietly), and errors as ONE line on stderr, `rill: <message>`, never a stack trace for
 * the conditions a user can cause (unknown topic, broker not running, bad flags).
 */

import { once } from "node:events";
import type { Writable } from "node:stream";
import { RillError } from "../base/errors.ts";
import { ClientClosedError, ConnectionError } from "../client/errors.ts";

/** A user error found by the CLI itself (bad flag values, malformed input lines). */
export class CliError extends Error {
  override name = "CliError";
}

/** Where a command writes. */
export interface Io {
  readonly stdout: Writable;
  readonly stderr: Writable;
  readonly stdin: NodeJS.ReadableStream;
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** The process's own streams and environment. */
export function processIo(): Io {
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env };
}

/** Writes `text` to `out`, waiting for 'drain' when its buffer is full. */
export async function write(out: Writable, text: string): Promise<void> {
  if (!out.write(text)) await once(out, "drain");
}

/** The one-line message for `e`: the error's own message for expected errors, else its name too. */
export function errorLine(e: unknown): string {
  if (e instanceof RillError || e instanceof ConnectionError || e instanceof CliError || e instanceof ClientClosedError) return e.message;
  if (e instanceof RangeError) return e.message;
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}

/** True for errors a user can cause (printed without a stack even with RILL_DEBUG unset or set). */
export function isExpected(e: unknown): boolean {
  return e instanceof RillError || e instanceof ConnectionError || e instanceof CliError || e instanceof RangeError;
}
