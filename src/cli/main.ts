/**
 * Entry point of the `rill` command (bin/rill runs it under Bun by default; `tsx` or Deno run it
 * too). Runs the command, then exits with its code once stdout has drained — a few seconds at
 * most, so that a stray handle (a gRPC channel being torn down) cannot keep a finished command
 * alive. `rill broker start` keeps running until SIGTERM/SIGINT.
 */

import { processIo } from "./output.ts";
import { run } from "./program.ts";

const io = processIo();
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(0); // the reader went away (`rill consume ... | head`)
  throw e;
});

const outcome = await run(process.argv, io);
if (!outcome.keepAlive) {
  process.exitCode = outcome.exitCode;
  process.stdout.write("", () => {
    setTimeout(() => process.exit(outcome.exitCode), 2000).unref();
  });
}
